//! `frameseek export`: the best clips of a search, or a source's time range, written by the
//! daemon into its export folder (stream copy, no re-encode) with a JPEG of the best frame.

use anyhow::Context;

use super::search::QueryArgs;
use super::{connect, format_ms, print_table, Cli, EXIT_OK};
use crate::protocol::{ExportReply, ExportRequest, Request, SearchReply};

/// Arguments of `export`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "With a text or an image, the best clips of that search are exported \
(--source, --from, --to, --after and --before filter it, as for `search`). Without one, \
--source names the source (its id, as `status` shows it) and --from/--to the range, in \
seconds.\n\nExamples:\n  frameseek export \"a white van at night\" -k 3\n  \
frameseek export --source /srv/footage/cam1/a.mp4 --from 60 --to 75"
)]
pub struct ExportArgs {
    /// The query and its filters, or (without a query) the source and range.
    #[command(flatten)]
    pub query: QueryArgs,
    /// Number of clips to export from a search.
    #[arg(short, long, default_value_t = 1)]
    pub k: usize,
    /// Range export: the frame for the thumbnail, seconds (default: `--from`).
    #[arg(long, value_name = "SECONDS")]
    pub best: Option<f64>,
}

fn to_ms(seconds: f64) -> u64 {
    (seconds.max(0.0) * 1000.0).round() as u64
}

/// The export requests the arguments describe: one per clip of the search, or the range.
fn requests(cli: &Cli, args: &ExportArgs) -> anyhow::Result<Vec<ExportRequest>> {
    let q = &args.query;
    if q.text.is_none() && q.image.is_none() {
        let (Some(source), Some(from), Some(to)) = (&q.source, q.from, q.to) else {
            anyhow::bail!(
                "give a query (text or --image), or a range: --source SOURCE --from SECONDS --to SECONDS"
            );
        };
        return Ok(vec![ExportRequest {
            source: source.clone(),
            start_ms: to_ms(from),
            end_ms: to_ms(to),
            best_ms: args.best.map(to_ms),
            // A zone given with a range is outlined in its JPEG.
            region: q.region.map(super::search::zone).transpose()?,
            node: q.node.clone(),
        }]);
    }
    if args.best.is_some() {
        anyhow::bail!("--best is for a range export; a search exports each clip's best frame");
    }
    let tz = super::client_settings::display(cli)?.tz;
    let reply: SearchReply =
        connect(cli)?.call_as(&Request::Search(super::search::request(q, args.k, &tz)?))?;
    if reply.clips.is_empty() {
        anyhow::bail!("no matching footage to export");
    }
    Ok(reply
        .clips
        .into_iter()
        .map(|c| ExportRequest {
            source: c.source,
            start_ms: c.start_ms,
            end_ms: c.end_ms,
            best_ms: Some(c.best_ms),
            // The JPEG outlines where the clip matched.
            region: c.region,
            node: c.node,
        })
        .collect())
}

pub fn run(cli: &Cli, args: &ExportArgs) -> anyhow::Result<u8> {
    let requests = requests(cli, args)?;
    let mut client = connect(cli)?;
    let mut done: Vec<ExportReply> = Vec::new();
    let total = requests.len();
    let bar = super::progress::bar(cli.json, total as u64);
    let started = std::time::Instant::now();
    for r in requests {
        let what = format!(
            "{} {}-{}",
            r.source,
            format_ms(r.start_ms),
            format_ms(r.end_ms)
        );
        let reply = client
            .call_as::<ExportReply>(&Request::Export(r))
            .with_context(|| format!("cannot export {what}"))?;
        done.push(reply);
        bar.set_position(done.len() as u64);
        bar.set_message(super::progress::format_progress(
            done.len() as u64,
            Some(done.len() as f64 / total as f64),
            "clips",
            started.elapsed(),
        ));
    }
    bar.finish_and_clear();
    if cli.json {
        println!("{}", serde_json::json!({ "exports": done }));
        return Ok(EXIT_OK);
    }
    let rows: Vec<Vec<String>> = done
        .iter()
        .map(|e| {
            vec![
                format!(
                    "{}-{}",
                    format_ms(e.requested_start_ms),
                    format_ms(e.requested_end_ms)
                ),
                format!("{}-{}", format_ms(e.start_ms), format_ms(e.end_ms)),
                e.codec.clone(),
                e.clip.clone(),
                e.thumbnail.clone(),
            ]
        })
        .collect();
    print_table(
        &["REQUESTED", "WRITTEN", "CODEC", "CLIP", "THUMBNAIL"],
        &rows,
    );
    println!(
        "Clips are copied without re-encoding, so each starts at the keyframe at or before the \
requested start (WRITTEN)."
    );
    Ok(EXIT_OK)
}
