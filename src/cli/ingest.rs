//! `frameseek ingest PATH|URL… [--follow] [--wait]`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use super::{absolute, connect, print_table, Cli, EXIT_FAILURE, EXIT_OK};
use crate::protocol::{IngestReply, IngestRequest, Request, StatusReply};

/// How often `--wait` asks the daemon for progress: a status request is cheap, and the
/// command returns within this long of the last file finishing.
const WAIT_POLL: Duration = Duration::from_millis(50);

/// Arguments of `ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Video files or folders (walked recursively), or live stream URLs (rtsp://, rtmp://,
    /// udp://, http(s):// HLS, ...), read continuously until forgotten.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The files are still being written: follow them as they grow, until they stop growing.
    #[arg(long)]
    pub follow: bool,
    /// Wait until every file is done, with a progress bar on a terminal (live streams are
    /// not waited for).
    #[arg(long)]
    pub wait: bool,
}

pub fn run(cli: &Cli, args: &IngestArgs) -> anyhow::Result<u8> {
    let mut client = connect(cli)?;
    let paths = args
        .paths
        .iter()
        .map(|p| {
            let text = p.to_string_lossy();
            if crate::source::is_stream_url(&text) {
                text.into_owned()
            } else {
                absolute(p).display().to_string()
            }
        })
        .collect();
    let reply: IngestReply = client.call_as(&Request::Ingest(IngestRequest {
        paths,
        follow: args.follow,
    }))?;
    let errors = reply
        .outcomes
        .iter()
        .filter(|o| o.result == "error")
        .count();
    if !cli.json {
        let rows: Vec<Vec<String>> = reply
            .outcomes
            .iter()
            .map(|o| {
                vec![
                    o.result.clone(),
                    o.source.clone().unwrap_or_else(|| o.path.clone()),
                    o.message.clone().unwrap_or_default(),
                ]
            })
            .collect();
        print_table(&["RESULT", "SOURCE", "NOTE"], &rows);
    }
    let wanted: HashSet<String> = reply
        .outcomes
        .iter()
        .filter(|o| o.result != "error")
        .filter_map(|o| o.source.clone())
        // A live stream never finishes: there is nothing to wait for.
        .filter(|s| !crate::source::is_stream_url(s))
        .collect();
    let mut failed = 0;
    let mut final_status = None;
    if args.wait && !wanted.is_empty() {
        let bar = super::progress::bar(cli.json, 1000);
        let started = std::time::Instant::now();
        let mut frames_at_start = None;
        loop {
            let status: StatusReply = client.call_as(&Request::Status(Default::default()))?;
            let mine: Vec<_> = status
                .sources
                .iter()
                .filter(|s| wanted.contains(&s.source))
                .collect();
            let finished = mine
                .iter()
                .filter(|s| s.state == "done" || s.state == "failed")
                .count();
            let progress: f64 = mine.iter().map(|s| s.progress.unwrap_or(0.0)).sum::<f64>()
                / mine.len().max(1) as f64;
            let frames: u64 = mine.iter().map(|s| s.frames).sum();
            // Frames of these files indexed before this command started do not count in
            // the rate.
            let base = *frames_at_start.get_or_insert(frames);
            bar.set_position((progress * 1000.0) as u64);
            bar.set_message(format!(
                "{finished}/{} files, {}",
                mine.len(),
                super::progress::format_progress(
                    frames.saturating_sub(base),
                    Some(progress),
                    "frames",
                    started.elapsed()
                )
            ));
            if let Some(e) = &status.ingest_error {
                bar.finish_and_clear();
                if cli.json {
                    let message = format!("ingest stopped: {e}");
                    eprintln!("{}", super::output::json_error("ingest_stopped", &message));
                } else {
                    eprintln!("ingest stopped: {e}");
                }
                return Ok(EXIT_FAILURE);
            }
            if finished == mine.len() {
                bar.finish_and_clear();
                failed = mine.iter().filter(|s| s.state == "failed").count();
                if !cli.json {
                    for s in mine.iter().filter(|s| s.state == "failed") {
                        eprintln!(
                            "failed: {}: {}",
                            s.source,
                            s.error.clone().unwrap_or_default()
                        );
                    }
                    println!("done: {finished} files, {frames} frames");
                }
                final_status = Some(status);
                break;
            }
            std::thread::sleep(WAIT_POLL);
        }
    }
    if cli.json {
        let mut out = serde_json::to_value(&reply)?;
        if let Some(status) = final_status {
            let sources: Vec<_> = status
                .sources
                .into_iter()
                .filter(|s| wanted.contains(&s.source))
                .collect();
            out["sources"] = serde_json::to_value(sources)?;
        }
        println!("{out}");
    }
    Ok(if errors > 0 || failed > 0 {
        EXIT_FAILURE
    } else {
        EXIT_OK
    })
}
