//! `frameseek status`, `frameseek stats` and `frameseek forget`.

use super::{connect, format_ms, print_table, Cli, EXIT_OK};
use crate::protocol::{
    ForgetReply, ForgetRequest, Request, StatsReply, StatusReply, StatusRequest,
};

/// Sources the table lists when `--limit` is not given (`--json` lists every source).
const TABLE_LIMIT: usize = 200;

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// List at most N sources (default: 200 in the table, all with --json).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// List only the sources matching this id or glob (as `search --source`).
    #[arg(long, value_name = "GLOB")]
    pub source: Option<String>,
}

pub fn run_status(cli: &Cli, args: &StatusArgs) -> anyhow::Result<u8> {
    let mut client = connect(cli)?;
    let request = StatusRequest {
        limit: args.limit.or((!cli.json).then_some(TABLE_LIMIT)),
        source: args.source.clone(),
    };
    let value = client.call(&Request::Status(request))?;
    if cli.json {
        println!("{}", strip_ok(value));
        return Ok(EXIT_OK);
    }
    let s: StatusReply = serde_json::from_value(value)?;
    println!(
        "frameseek {} (protocol {}), model {} ({}-d), {} frames, {} queued",
        s.version, s.protocol, s.model.id, s.model.dim, s.frames, s.queue
    );
    if let Some(e) = &s.ingest_error {
        println!("INGEST STOPPED: {e}");
    }
    if let Some(reason) = &s.pipeline.reason {
        println!("INGEST STALLED: {reason}");
    }
    if let Some(r) = &s.index_rebuild {
        println!(
            "INDEX REBUILDING: {} of {} frames ({}); searches wait until it is done",
            r.added, r.total, r.reason
        );
    }
    if s.pipeline.worker_restarts > 0 {
        println!(
            "decode workers restarted after a panic: {}",
            s.pipeline.worker_restarts
        );
    }
    if s.retention_removed > 0 {
        println!("{} frames removed by retention", s.retention_removed);
    }
    let st = &s.states;
    println!(
        "{} sources: {} done, {} ingesting, {} queued, {} failed",
        st.done + st.ingesting + st.queued + st.failed,
        st.done,
        st.ingesting,
        st.queued,
        st.failed
    );
    let rows: Vec<Vec<String>> = s
        .sources
        .iter()
        .map(|src| {
            let progress = src
                .progress
                .map(|p| format!("{:.0}%", p * 100.0))
                .unwrap_or_else(|| "-".into());
            let duration = src.duration_ms.map(format_ms).unwrap_or_else(|| "-".into());
            vec![
                src.state.clone(),
                progress,
                src.frames.to_string(),
                duration,
                src.source.clone(),
                match (&src.error, &src.error_at) {
                    (Some(e), Some(at)) => format!("{at}: {e}"),
                    (Some(e), None) => e.clone(),
                    _ => String::new(),
                },
            ]
        })
        .collect();
    if !rows.is_empty() {
        print_table(
            &["STATE", "DONE", "FRAMES", "DURATION", "SOURCE", "ERROR"],
            &rows,
        );
    }
    let shown = s.sources.len() as u64;
    if shown < s.sources_matching {
        println!(
            "showing {shown} of {} sources{}; --limit N or --source GLOB for the others",
            s.sources_matching,
            if args.source.is_some() {
                " that match"
            } else {
                ""
            }
        );
    }
    Ok(EXIT_OK)
}

pub fn run_stats(cli: &Cli) -> anyhow::Result<u8> {
    let mut client = connect(cli)?;
    let value = client.call(&Request::Stats)?;
    if cli.json {
        println!("{}", strip_ok(value));
        return Ok(EXIT_OK);
    }
    let s: StatsReply = serde_json::from_value(value)?;
    print_table(
        &[
            "FRAMES",
            "INDEXED",
            "SOURCES",
            "QUEUE",
            "EMBEDDED",
            "BATCH_MS",
            "SEARCHES",
            "SEARCH_P50_MS",
            "SEARCH_P99_MS",
            "INDEX_MB",
            "UPTIME_S",
        ],
        &[vec![
            s.frames.to_string(),
            s.indexed.to_string(),
            s.sources.to_string(),
            s.queue.to_string(),
            s.frames_embedded.to_string(),
            format!("{:.1}", s.embed_batch_ms),
            s.searches.to_string(),
            format!("{:.1}", s.search_ms_p50),
            format!("{:.1}", s.search_ms_p99),
            format!("{:.1}", s.index_bytes as f64 / 1e6),
            format!("{:.0}", s.uptime_s),
        ]],
    );
    if s.retention_removed > 0 {
        println!("{} frames removed by retention", s.retention_removed);
    }

    if !s.ingest_rates.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = s
            .ingest_rates
            .iter()
            .map(|r| {
                vec![
                    format!("{:.1}", r.frames_per_s),
                    r.frames.to_string(),
                    r.source.clone(),
                ]
            })
            .collect();
        print_table(&["FRAMES_PER_S", "FRAMES", "SOURCE"], &rows);
    }
    Ok(EXIT_OK)
}

pub fn run_forget(cli: &Cli, source: &str) -> anyhow::Result<u8> {
    let mut client = connect(cli)?;
    let r: ForgetReply = client.call_as(&Request::Forget(ForgetRequest {
        source: source.to_string(),
    }))?;
    if cli.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!("forgot {} ({} frames removed)", r.source, r.frames_removed);
    }
    Ok(EXIT_OK)
}

/// Drops the envelope field `ok` so `--json` prints the documented shape.
pub(crate) fn strip_ok(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("ok");
    }
    v
}
