//! `frameseek status`, `frameseek stats` and `frameseek forget`.

use super::output::{paint, state_style, Style};
use super::{connect, format_ms, format_table, print_table, Cli, EXIT_OK, EXIT_UNHEALTHY};
use crate::protocol::{
    ForgetReply, ForgetRequest, ReloadOutcome, ReloadStatus, Request, StatsReply, StatusReply,
    StatusRequest,
};

/// Arguments of `stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Output format: `table`, or `prometheus` (the text exposition format, for
    /// node_exporter's textfile collector: `frameseek stats --format prometheus >
    /// /var/lib/node_exporter/textfile/frameseek.prom.$$ && mv … frameseek.prom`).
    #[arg(long, value_enum, default_value_t = StatsFormat::Table)]
    pub format: StatsFormat,
}

/// How `stats` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsFormat {
    /// Aligned columns (or JSON with `--json`).
    Table,
    /// Prometheus text exposition format 0.0.4.
    Prometheus,
}

/// Whether a status reply says ingest needs attention: stopped, stalled, or a failed
/// source (`status` then exits [`EXIT_UNHEALTHY`]).
fn unhealthy(s: &StatusReply) -> bool {
    s.ingest_error.is_some() || s.pipeline.stalled || s.states.failed > 0
}

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
    let s: StatusReply = serde_json::from_value(value.clone())?;
    // A health probe's answer: the daemon answers, but ingest needs attention.
    let code = if unhealthy(&s) {
        EXIT_UNHEALTHY
    } else {
        EXIT_OK
    };
    if cli.json {
        println!("{}", strip_ok(value));
        return Ok(code);
    }
    let display = super::client_settings::display(cli)?;
    let bad = |t: &str| paint(t, Style::Bad, display.color);
    println!(
        "frameseek {} (protocol {}), model {} ({}-d), {} frames, {} queued",
        s.version, s.protocol, s.model.id, s.model.dim, s.frames, s.queue
    );
    if let Some(e) = &s.ingest_error {
        println!("{}: {e}", bad("INGEST STOPPED"));
    }
    if let Some(reason) = &s.pipeline.reason {
        println!("{}: {reason}", bad("INGEST STALLED"));
    }
    if let Some(r) = &s.index_rebuild {
        println!(
            "INDEX REBUILDING: {} of {} frames ({}); searches wait until it is done",
            r.added, r.total, r.reason
        );
    }
    if let Some(m) = &s.milvus {
        let state = if m.reachable {
            "reachable"
        } else {
            "UNREACHABLE"
        };
        println!(
            "milvus {} ({}), node {}: {state}; backlog {} frames to write, {} to delete",
            m.uri, m.collection, m.node, m.backlog, m.backlog_deletes
        );
        if let Some(e) = &m.last_error {
            println!("{}: {e}", bad("MILVUS"));
        }
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
    if let Some(r) = &s.reload {
        println!("{}", reload_line(r, &display.tz, display.color));
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
                    (Some(e), Some(at)) => {
                        format!("{}: {e}", super::when::format_iso(at, &display.tz))
                    }
                    (Some(e), None) => e.clone(),
                    _ => String::new(),
                },
            ]
        })
        .collect();
    if !rows.is_empty() {
        let table = format_table(
            &["STATE", "DONE", "FRAMES", "DURATION", "SOURCE", "ERROR"],
            &rows,
        );
        let mut lines = table.lines();
        let head = lines.next().unwrap_or_default();
        println!("{}", paint(head, Style::Header, display.color));
        // STATE is the first column: each line starts with its state word.
        for (line, row) in lines.zip(&rows) {
            let state = &row[0];
            let rest = line.strip_prefix(state.as_str()).unwrap_or(line);
            println!("{}{rest}", paint(state, state_style(state), display.color));
        }
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
    Ok(code)
}

/// The `status` line of the last configuration reload: when (in `tz`), what it put in
/// force and what waits for a restart, or why it was refused (last, its own lines indented:
/// a TOML parse error spans several).
fn reload_line(r: &ReloadStatus, tz: &jiff::tz::TimeZone, color: bool) -> String {
    let at = super::when::format_iso(&r.at, tz);
    let restart = if r.needs_restart.is_empty() {
        String::new()
    } else {
        format!("; needs a restart: {}", r.needs_restart.join(", "))
    };
    match r.outcome {
        ReloadOutcome::Applied => {
            let what = if r.applied.is_empty() {
                "nothing changed".to_string()
            } else {
                r.applied.join(", ")
            };
            format!("configuration reloaded {at}: {what}{restart}")
        }
        ReloadOutcome::Refused => format!(
            "{} {at}, the previous configuration stays in force{restart}: {}",
            paint("RELOAD REFUSED", Style::Bad, color),
            r.error
                .as_deref()
                .unwrap_or("no reason given")
                .replace('\n', "\n  ")
        ),
    }
}

pub fn run_stats(cli: &Cli, args: &StatsArgs) -> anyhow::Result<u8> {
    let mut client = connect(cli)?;
    let value = client.call(&Request::Stats)?;
    if args.format == StatsFormat::Prometheus {
        let stats: StatsReply = serde_json::from_value(value)?;
        let status: StatusReply = client.call_as(&Request::Status(StatusRequest {
            limit: Some(0),
            source: None,
        }))?;
        print!("{}", crate::metrics::render(&stats, Some(&status)));
        return Ok(EXIT_OK);
    }
    if cli.json {
        println!("{}", strip_ok(value));
        return Ok(EXIT_OK);
    }
    let s: StatsReply = serde_json::from_value(value)?;
    let color = super::client_settings::display(cli)?.color;
    let table = format_table(
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
    print!("{}", super::output::bold_header(&table, color));
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

pub fn run_forget(cli: &Cli, source: Option<&str>, node: Option<&str>) -> anyhow::Result<u8> {
    let mut client = connect(cli)?;
    let r: ForgetReply = client.call_as(&Request::Forget(ForgetRequest {
        source: source.unwrap_or_default().to_string(),
        node: node.map(str::to_string),
    }))?;
    if cli.json {
        println!("{}", serde_json::to_string(&r)?);
    } else if let Some(node) = &r.node {
        println!(
            "forgot node {node} ({} frames removed from Milvus)",
            r.frames_removed
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reload(outcome: ReloadOutcome, error: Option<&str>) -> ReloadStatus {
        ReloadStatus {
            at: "2024-05-01T12:00:00.000Z".into(),
            outcome,
            error: error.map(str::to_string),
            applied: if error.is_none() {
                vec!["camera added: door".into(), "retention".into()]
            } else {
                vec![]
            },
            needs_restart: vec!["model.path".into()],
        }
    }

    #[test]
    fn the_reload_line_shows_when_what_and_why_in_the_display_zone() {
        let paris = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        assert_eq!(
            reload_line(&reload(ReloadOutcome::Applied, None), &paris, false),
            "configuration reloaded 2024-05-01 14:00:00 CEST: camera added: door, retention; \
             needs a restart: model.path"
        );
        let refused = reload_line(
            &reload(
                ReloadOutcome::Refused,
                Some("frameseek.toml: parse error\n  |\n1 | [x"),
            ),
            &jiff::tz::TimeZone::UTC,
            false,
        );
        assert_eq!(
            refused,
            "RELOAD REFUSED 2024-05-01 12:00:00 UTC, the previous configuration stays in force; \
             needs a restart: model.path: frameseek.toml: parse error\n    |\n  1 | [x"
        );
    }
}
