//! `frameseek eval QUERIES.jsonl [-k N]`: measures search quality against the running
//! daemon. Each line of the file is a labelled query ([`crate::eval::LabelledQuery`]): a
//! text or an image, the expected source and time range, optional filters. A returned clip
//! is a hit when it comes from the expected source and overlaps the expected range. Prints
//! recall@1, recall@5, recall@10 and the mean reciprocal rank, over every query and per query
//! group (a query's optional "groups", such as `seen`, `held-out`, `edge`). This file reads the query
//! file and asks the daemon; the format and the scoring are [`crate::eval`]'s.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use base64::Engine;
use serde::Serialize;

use super::{connect, format_ms, print_table, Cli, EXIT_OK};
use crate::eval::{summaries_by_group, EvalSummary, Expected, LabelledQuery};
use crate::protocol::{Clip, Request, SearchReply, SearchRequest};

/// Arguments of `eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Labelled queries, one JSON object per line: {"query" or "image", "source",
    /// "start_s", "end_s", optional "filter_source", "from_s", "to_s", "groups"}.
    pub queries: PathBuf,
    /// Clips asked for per query; at least 10 are always asked for, so recall@10 is exact.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// Also write every returned clip of a wider search (k = 50) with its score, confidence
    /// and whether it is a hit, for calibration (`tools/reliability_diagram.py` reads it).
    #[arg(long, value_name = "FILE")]
    pub calibration_json: Option<PathBuf>,
    /// Search only this zone of the frame in every query: x,y,w,h as fractions (as
    /// `search --region`).
    #[arg(long, value_name = "X,Y,W,H", value_parser = super::alert::parse_region)]
    pub region: Option<[f32; 4]>,
}

/// Clips per query in the `--calibration-json` file.
const CALIBRATION_K: usize = 50;

/// One clip of the calibration file: what a confidence is fitted and judged on.
#[derive(Debug, Clone, Serialize)]
struct CalibrationClip {
    query: usize,
    rank: usize,
    score: f32,
    confidence: f32,
    hit: bool,
}

/// One query's outcome, as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
struct QueryOutcome {
    query: Option<String>,
    image: Option<String>,
    expected_source: String,
    start_s: f64,
    end_s: f64,
    rank: Option<usize>,
    top: Option<Clip>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
}

/// Reads a labelled query file, naming the line of any error.
pub fn read_queries(path: &Path) -> anyhow::Result<Vec<LabelledQuery>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read query file {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let q: LabelledQuery = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a labelled query", path.display(), i + 1))?;
        if q.query.is_none() == q.image.is_none() {
            bail!(
                "{}:{}: give exactly one of \"query\" and \"image\"",
                path.display(),
                i + 1
            );
        }
        if q.end_s < q.start_s {
            bail!("{}:{}: end_s is before start_s", path.display(), i + 1);
        }
        out.push(q);
    }
    if out.is_empty() {
        bail!("{} holds no queries", path.display());
    }
    Ok(out)
}

/// Seconds of a labelled query as milliseconds (negative is 0).
pub(super) fn seconds_to_ms(s: f64) -> u64 {
    (s.max(0.0) * 1000.0).round() as u64
}

/// Resolves a path from the query file against the file's folder.
fn resolve(base: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Turns a labelled query into a search request; relative image paths and source filters
/// are taken from `base`, the query file's folder.
pub fn search_request(q: &LabelledQuery, base: &Path, k: usize) -> anyhow::Result<SearchRequest> {
    let image = match &q.image {
        Some(path) => {
            let file = resolve(base, path);
            let bytes = std::fs::read(&file)
                .with_context(|| format!("cannot read query image {}", file.display()))?;
            Some(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        None => None,
    };
    let source = q.filter_source.as_ref().map(|pattern| {
        let (path, star) = match pattern.strip_suffix('*') {
            Some(prefix) => (prefix, "*"),
            None => (pattern.as_str(), ""),
        };
        if Path::new(path).is_absolute() {
            pattern.clone()
        } else {
            let mut s = base.join(path).display().to_string();
            if path.ends_with('/') && !s.ends_with('/') {
                s.push('/');
            }
            format!("{s}{star}")
        }
    });
    Ok(SearchRequest {
        text: q.query.clone(),
        image,
        k: Some(k.max(10)),
        source,
        start_ms: q.from_s.map(seconds_to_ms),
        end_ms: q.to_s.map(seconds_to_ms),
        ..Default::default()
    })
}

/// Runs `eval`.
pub fn run(cli: &Cli, args: &EvalArgs) -> anyhow::Result<u8> {
    let queries = read_queries(&args.queries)?;
    let base = args
        .queries
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", args.queries.display()))?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let mut client = connect(cli)?;
    let mut outcomes = Vec::with_capacity(queries.len());
    let mut calibration = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        let mut request = search_request(q, &base, args.k)
            .with_context(|| format!("query {} of {}", i + 1, args.queries.display()))?;
        request.region = args.region.map(super::search::zone).transpose()?;
        let reply: SearchReply = client
            .call_as(&Request::Search(request))
            .with_context(|| format!("search for query {}", i + 1))?;
        let expected = Expected {
            source: q.source.clone(),
            start_ms: seconds_to_ms(q.start_s),
            end_ms: seconds_to_ms(q.end_s),
        };
        if args.calibration_json.is_some() {
            let request = search_request(q, &base, CALIBRATION_K)?;
            let wide: SearchReply = client
                .call_as(&Request::Search(request))
                .with_context(|| format!("calibration search for query {}", i + 1))?;
            calibration.extend(wide.clips.iter().enumerate().map(|(r, c)| CalibrationClip {
                query: i,
                rank: r + 1,
                score: c.score,
                confidence: c.confidence,
                hit: expected.is_hit(c),
            }));
        }
        outcomes.push(QueryOutcome {
            query: q.query.clone(),
            image: q.image.clone(),
            expected_source: q.source.clone(),
            start_s: q.start_s,
            end_s: q.end_s,
            rank: expected.first_hit_rank(&reply.clips),
            top: reply.clips.first().cloned(),
            groups: q.groups.clone(),
        });
    }
    if let Some(path) = &args.calibration_json {
        let doc = serde_json::json!({ "k": CALIBRATION_K, "clips": calibration });
        std::fs::write(path, format!("{doc}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let ranks: Vec<Option<usize>> = outcomes.iter().map(|o| o.rank).collect();
    let summary = EvalSummary::from_ranks(&ranks);
    let by_group = summaries_by_group(&queries, &ranks);
    if cli.json {
        let mut v = serde_json::to_value(&summary)?;
        v["k"] = serde_json::json!(args.k.max(10));
        v["groups"] = by_group
            .iter()
            .map(|(name, s)| Ok((name.clone(), serde_json::to_value(s)?)))
            .collect::<anyhow::Result<serde_json::Map<_, _>>>()?
            .into();
        v["results"] = serde_json::to_value(&outcomes)?;
        println!("{v}");
        return Ok(EXIT_OK);
    }
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            let what = match (&o.query, &o.image) {
                (Some(t), _) => t.clone(),
                (None, Some(img)) => format!("[image] {img}"),
                (None, None) => String::new(),
            };
            let top = o
                .top
                .as_ref()
                .map(|c| {
                    format!(
                        "{} {}-{}",
                        short_source(&c.source),
                        format_ms(c.start_ms),
                        format_ms(c.end_ms)
                    )
                })
                .unwrap_or_else(|| "-".into());
            vec![
                o.rank
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "miss".into()),
                format!("{} {:.0}-{:.0}s", o.expected_source, o.start_s, o.end_s),
                top,
                what,
            ]
        })
        .collect();
    print_table(&["RANK", "EXPECTED", "TOP CLIP", "QUERY"], &rows);
    for (name, s) in &by_group {
        println!("group {name}: {}", summary_line(s));
    }
    println!("all: {}", summary_line(&summary));
    Ok(EXIT_OK)
}

/// One line of recall figures.
fn summary_line(s: &EvalSummary) -> String {
    format!(
        "queries {}  recall@1 {:.3}  recall@5 {:.3}  recall@10 {:.3}  MRR {:.3}",
        s.queries, s.recall_at_1, s.recall_at_5, s.recall_at_10, s.mrr
    )
}

/// The last two components of a source path (`cam1/footage.mp4`), for tables.
fn short_source(source: &str) -> String {
    let parts: Vec<&str> = source.rsplitn(3, '/').collect();
    match parts.as_slice() {
        [file, dir, _] => format!("{dir}/{file}"),
        _ => source.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_filters_and_images_resolve_against_the_query_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("probe.png"), b"png").unwrap();
        let q = LabelledQuery {
            image: Some("probe.png".into()),
            source: "cam1/footage.mp4".into(),
            start_s: 1.0,
            end_s: 2.0,
            filter_source: Some("cam1/*".into()),
            from_s: Some(1.5),
            to_s: Some(9.0),
            ..Default::default()
        };
        let r = search_request(&q, dir.path(), 3).unwrap();
        assert_eq!(r.k, Some(10));
        assert_eq!(
            r.source.as_deref(),
            Some(format!("{}/cam1/*", dir.path().display()).as_str())
        );
        assert_eq!((r.start_ms, r.end_ms), (Some(1500), Some(9000)));
        assert_eq!(r.image.as_deref(), Some("cG5n"));
        assert!(r.text.is_none());
    }

    #[test]
    fn query_files_are_checked_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.jsonl");
        std::fs::write(
            &path,
            "{\"query\":\"a dog\",\"source\":\"a.mp4\",\"start_s\":1,\"end_s\":2}\n\n",
        )
        .unwrap();
        assert_eq!(read_queries(&path).unwrap().len(), 1);
        std::fs::write(&path, "{\"source\":\"a.mp4\",\"start_s\":1,\"end_s\":2}\n").unwrap();
        let e = format!("{:#}", read_queries(&path).unwrap_err());
        assert!(e.contains("q.jsonl:1"), "{e}");
    }
}
