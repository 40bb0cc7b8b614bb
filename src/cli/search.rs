//! `frameseek search TEXT [-k N]` and `frameseek search --image FILE`, optionally written as
//! a self-contained HTML page (`--html FILE`).

use std::path::PathBuf;

use anyhow::Context;
use base64::Engine;

use super::status::strip_ok;
use super::{connect, format_ms, print_table, Cli, EXIT_OK};
use crate::protocol::{Request, SearchReply, SearchRequest};

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
    /// Only footage recorded at or after this time (UTC, e.g. 2026-11-27T03:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub after: Option<i64>,
    /// Only footage recorded at or before this time (UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub before: Option<i64>,
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

/// A `--after`/`--before` argument that is not a UTC time.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a time like 2026-11-27T03:00:00Z")]
pub(super) struct BadTime(String);

/// Parses a UTC time argument into ms since the epoch.
pub(super) fn parse_time(text: &str) -> Result<i64, BadTime> {
    crate::clock::parse_iso8601(text).ok_or_else(|| BadTime(text.to_string()))
}

/// The `search` request the arguments describe.
pub(super) fn request(args: &QueryArgs, k: usize) -> anyhow::Result<SearchRequest> {
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
        after_wall_ms: args.after,
        before_wall_ms: args.before,
        min_confidence: None,
    })
}

pub fn run(cli: &Cli, args: &SearchArgs) -> anyhow::Result<u8> {
    let mut request = request(&args.query, args.k)?;
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
        let page = super::html::results_page(&mut client, &query, &reply.clips);
        std::fs::write(path, page)
            .with_context(|| format!("cannot write the HTML page {}", path.display()))?;
        if !cli.json {
            println!("wrote {} ({} clips)", path.display(), reply.clips.len());
        }
    }
    if cli.json {
        println!("{}", strip_ok(value));
        return Ok(EXIT_OK);
    }
    let reply: SearchReply = serde_json::from_value(value)?;
    if reply.clips.is_empty() {
        println!("no matching footage");
        return Ok(EXIT_OK);
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
                c.start_wall.clone().unwrap_or_else(|| "-".into()),
                c.source.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "#", "SCORE", "CONF", "FROM", "TO", "BEST", "RECORDED", "SOURCE",
        ],
        &rows,
    );
    Ok(EXIT_OK)
}
