//! `frameseek search TEXT [-k N]` and `frameseek search --image FILE`, optionally written as
//! a self-contained HTML page (`--html FILE`).

use std::path::PathBuf;

use anyhow::Context;
use base64::Engine;

use super::output::bold_header;
use super::status::strip_ok;
use super::when::format_iso;
use super::{connect, format_ms, format_table, Cli, EXIT_NO_MATCH, EXIT_OK};
use crate::protocol::{Region, Request, SearchReply, SearchRequest};

/// What to look for and where: the query and filters shared by `search` and `export`.
#[derive(Debug, Clone, clap::Args)]
pub struct QueryArgs {
    /// What to look for, in words.
    #[arg(conflicts_with = "image")]
    pub text: Option<String>,
    /// Look for footage that resembles this image (PNG or JPEG).
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    /// Only these sources: an exact id, or a glob (`*` any run, `/` included; `?`; `[a-z]`):
    /// with a `/` it matches the whole id (`'/srv/cam1/*'`, `'*/lobby/*.mp4'`), without one
    /// the file name (`'cam*'`). Quote it so the shell leaves it alone.
    #[arg(long)]
    pub source: Option<String>,
    /// Only frames at or after this offset in their file, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub from: Option<f64>,
    /// Only frames at or before this offset in their file, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub to: Option<f64>,
    /// Only footage recorded at or after this time: a duration ago (`2h`, `3d`, `1h30m`),
    /// `today`, `yesterday`, a local time (`2024-05-01T10:00`, `2024-05-01`) or one with its
    /// offset (`2026-11-27T03:00:00Z`). `--after` is the same.
    #[arg(long, visible_alias = "after", value_name = "TIME")]
    pub since: Option<String>,
    /// Only footage recorded at or before this time (written as for `--since`). `--before`
    /// is the same.
    #[arg(long, visible_alias = "before", value_name = "TIME")]
    pub until: Option<String>,
    /// Only matches in this zone of the frame: x,y,w,h as fractions of the frame (each 0-1),
    /// e.g. `0.5,0,0.5,1` for the right half. Views overlapping it are searched.
    #[arg(long, value_name = "X,Y,W,H", value_parser = super::alert::parse_region)]
    pub region: Option<[f32; 4]>,
    /// Only footage ingested by this node (several daemons sharing one Milvus).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
}

/// `--region`'s numbers as the wire's region, checked to lie inside the frame.
pub(super) fn zone(values: [f32; 4]) -> anyhow::Result<Region> {
    let [x, y, w, h] = values;
    crate::embed::Region::checked(x, y, w, h).context("--region")?;
    Ok(Region { x, y, w, h })
}

/// Arguments of `search`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("query").args(["text", "image"]).required(true)))]
pub struct SearchArgs {
    /// The query and its filters.
    #[command(flatten)]
    pub query: QueryArgs,
    /// Number of clips.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// Also write the results as one self-contained HTML page (thumbnails inline).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Drop clips whose calibrated confidence is below this (0 to 1).
    #[arg(long, value_name = "X")]
    pub min_confidence: Option<f32>,
}

/// The `search` request the arguments describe; `tz` reads local times in `--since` and
/// `--until`.
pub(super) fn request(
    args: &QueryArgs,
    k: usize,
    tz: &jiff::tz::TimeZone,
) -> anyhow::Result<SearchRequest> {
    let now = crate::clock::now_ms();
    let when = |flag: &str, text: &Option<String>| -> anyhow::Result<Option<i64>> {
        text.as_deref()
            .map(|t| super::when::parse_when(t, now, tz))
            .transpose()
            .with_context(|| format!("--{flag}"))
    };
    let after_wall_ms = when("since", &args.since)?;
    let before_wall_ms = when("until", &args.until)?;
    let image = match &args.image {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read image {}", path.display()))?;
            Some(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        None => None,
    };
    let to_ms = |s: f64| (s.max(0.0) * 1000.0).round() as u64;
    Ok(SearchRequest {
        text: args.text.clone(),
        image,
        k: Some(k),
        source: args.source.clone(),
        start_ms: args.from.map(to_ms),
        end_ms: args.to.map(to_ms),
        after_wall_ms,
        before_wall_ms,
        min_confidence: None,
        region: args.region.map(zone).transpose()?,
        node: args.node.clone(),
    })
}

pub fn run(cli: &Cli, args: &SearchArgs) -> anyhow::Result<u8> {
    let display = super::client_settings::display(cli)?;
    let mut request = request(&args.query, args.k, &display.tz)?;
    request.min_confidence = args.min_confidence;
    let mut client = connect(cli)?;
    let value = client.call(&Request::Search(request))?;
    if let Some(path) = &args.html {
        let reply: SearchReply = serde_json::from_value(value.clone())?;
        let query = match (&args.query.text, &args.query.image) {
            (Some(t), _) => t.clone(),
            (None, Some(i)) => format!("image {}", i.display()),
            (None, None) => String::new(),
        };
        let page = super::html::results_page(&mut client, &query, &reply.clips, &display.tz);
        std::fs::write(path, page)
            .with_context(|| format!("cannot write the HTML page {}", path.display()))?;
        if !cli.json {
            println!("wrote {} ({} clips)", path.display(), reply.clips.len());
        }
    }
    let reply: SearchReply = serde_json::from_value(value.clone())?;
    // As grep: 0 when something matched, 1 when nothing did, 2 or more on errors.
    let code = if reply.clips.is_empty() {
        EXIT_NO_MATCH
    } else {
        EXIT_OK
    };
    if cli.json {
        println!("{}", strip_ok(value));
        return Ok(code);
    }
    if reply.clips.is_empty() {
        println!("no matching footage");
        return Ok(code);
    }
    let rows: Vec<Vec<String>> = reply
        .clips
        .iter()
        .enumerate()
        .map(|(i, c)| {
            vec![
                (i + 1).to_string(),
                format!("{:.3}", c.score),
                format!("{:.2}", c.confidence),
                format_ms(c.start_ms),
                format_ms(c.end_ms),
                format_ms(c.best_ms),
                c.start_wall
                    .as_deref()
                    .map(|w| format_iso(w, &display.tz))
                    .unwrap_or_else(|| "-".into()),
                super::html::region_cell(c.region.as_ref()),
                c.source.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        bold_header(
            &format_table(
                &["#", "SCORE", "CONF", "FROM", "TO", "BEST", "RECORDED", "REGION", "SOURCE"],
                &rows
            ),
            display.color
        )
    );
    Ok(code)
}
