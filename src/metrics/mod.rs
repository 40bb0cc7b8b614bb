//! Prometheus metrics: the daemon's `stats` and `status` replies in the text exposition
//! format 0.0.4 (`frameseek stats --format prometheus`, for node_exporter's textfile
//! collector), and an optional loopback-only HTTP listener serving them at `/metrics`
//! ([`listener`]).

pub mod listener;

use std::fmt::Write;

use crate::protocol::{StatsReply, StatusReply};

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Kinds of metric in the exposition format.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
}

/// Writes metric families in the exposition format.
struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts the family `name` (`frameseek_` is prepended) with its HELP and TYPE lines.
    fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        let kind = match kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        let _ = writeln!(self.out, "# HELP frameseek_{name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE frameseek_{name} {kind}");
        self
    }

    /// One sample of the family `name`, with labels.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let _ = write!(self.out, "frameseek_{name}");
        if !labels.is_empty() {
            let parts: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            let _ = write!(self.out, "{{{}}}", parts.join(","));
        }
        let _ = writeln!(self.out, " {}", format_value(value));
        self
    }

    /// A family with one unlabelled sample.
    fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) -> &mut Self {
        self.family(name, kind, help).sample(name, &[], value)
    }
}

/// A sample value: integers without a fraction, `NaN`/`+Inf`/`-Inf` as the format writes them.
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Escapes a HELP text: backslash and line feed.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The metrics of a `stats` reply and, when given, of a `status` reply (source states,
/// stopped or stalled ingest), in the text exposition format.
pub fn render(stats: &StatsReply, status: Option<&StatusReply>) -> String {
    let mut e = Exposition { out: String::new() };
    let g = Kind::Gauge;
    let c = Kind::Counter;
    e.single("frames", g, "Frames stored.", stats.frames as f64)
        .single(
            "views",
            g,
            "Views stored (one vector each).",
            stats.views as f64,
        )
        .single(
            "index_vectors",
            g,
            "Vectors in the index.",
            stats.indexed as f64,
        )
        .single("sources", g, "Sources known.", stats.sources as f64)
        .single(
            "queued_sources",
            g,
            "Sources waiting to be ingested.",
            stats.queue as f64,
        )
        .single(
            "frames_embedded_total",
            c,
            "Frames embedded since the daemon started.",
            stats.frames_embedded as f64,
        )
        .single(
            "embed_batch_mean_seconds",
            g,
            "Mean time of one embedding batch since the daemon started.",
            stats.embed_batch_ms / 1000.0,
        )
        .single(
            "searches_total",
            c,
            "Searches answered since the daemon started.",
            stats.searches as f64,
        )
        .single(
            "search_latency_p50_seconds",
            g,
            "Median search latency over the last 1024 searches.",
            stats.search_ms_p50 / 1000.0,
        )
        .single(
            "search_latency_p99_seconds",
            g,
            "99th percentile search latency over the last 1024 searches.",
            stats.search_ms_p99 / 1000.0,
        )
        .single(
            "index_size_bytes",
            g,
            "Size of the index file at its last checkpoint.",
            stats.index_bytes as f64,
        )
        .single(
            "uptime_seconds",
            g,
            "Seconds since the daemon started.",
            stats.uptime_s,
        )
        .single(
            "retention_removed_frames_total",
            c,
            "Frames removed by retention since the state was created.",
            stats.retention_removed as f64,
        );
    e.family(
        "stage_seconds_total",
        c,
        "Time spent in each ingest stage since the daemon started.",
    );
    let st = &stats.stage_ms;
    for (stage, ms) in [
        ("decode", st.decode),
        ("convert", st.convert),
        ("handoff", st.handoff),
        ("embed", st.embed),
        ("commit", st.commit),
    ] {
        e.sample("stage_seconds_total", &[("stage", stage)], ms / 1000.0);
    }
    if !stats.ingest_rates.is_empty() {
        e.family(
            "source_ingest_frames_per_second",
            g,
            "Frames embedded and committed per second, per source active in the last minute.",
        );
        for r in &stats.ingest_rates {
            e.sample(
                "source_ingest_frames_per_second",
                &[("source", &r.source)],
                r.frames_per_s,
            );
        }
    }
    if let Some(s) = status {
        e.family("sources_by_state", g, "Sources in each state.");
        for (state, n) in [
            ("done", s.states.done),
            ("ingesting", s.states.ingesting),
            ("queued", s.states.queued),
            ("failed", s.states.failed),
        ] {
            e.sample("sources_by_state", &[("state", state)], n as f64);
        }
        e.single(
            "ingest_stopped",
            g,
            "1 when ingest stopped on an error (a full disk, a failing store), else 0.",
            f64::from(u8::from(s.ingest_error.is_some())),
        )
        .single(
            "ingest_stalled",
            g,
            "1 when the ingest pipeline is stalled, else 0.",
            f64::from(u8::from(s.pipeline.stalled)),
        )
        .single(
            "decode_worker_restarts_total",
            c,
            "Decode workers restarted after a panic.",
            s.pipeline.worker_restarts as f64,
        );
    }
    e.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_labels_are_written_as_the_format_wants() {
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn every_family_has_help_and_type_and_counters_end_in_total() {
        let stats = StatsReply {
            frames: 10,
            views: 10,
            indexed: 10,
            sources: 2,
            queue: 0,
            frames_embedded: 10,
            embed_batch_ms: 12.5,
            searches: 3,
            search_ms_p50: 1.0,
            search_ms_p99: 2.0,
            index_bytes: 4096,
            ingest_rates: vec![crate::protocol::IngestRate {
                source: "/srv/a \"b\".mp4".into(),
                frames: 10,
                frames_per_s: 2.5,
            }],
            uptime_s: 7.0,
            stage_ms: Default::default(),
            retention_removed: 0,
        };
        let text = render(&stats, None);
        let mut typed = std::collections::HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(name.starts_with("frameseek_"), "{line}");
                assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
                typed.insert(name.to_string(), kind.to_string());
            } else if !line.starts_with("# HELP ") {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(typed.contains_key(name), "untyped sample {line}");
                let value = line.rsplit(' ').next().unwrap();
                value.parse::<f64>().unwrap();
            }
        }
        assert!(
            text.contains("frameseek_embed_batch_mean_seconds 0.0125\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "frameseek_source_ingest_frames_per_second{source=\"/srv/a \\\"b\\\".mp4\"} 2.5\n"
            ),
            "{text}"
        );
    }
}
