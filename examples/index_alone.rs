//! The vector index alone, as frameseek configures it (`frameseek::index::options`), on an
//! index file a daemon wrote: per-query latency of usearch's plain `search` and of the
//! `filtered_search` with a pass-all filter that `VectorIndex::search` runs, one query at a
//! time on one thread, for the query vectors in a file. `tools/bench/query_vs_usearch.py`
//! runs it beside usearch's Python binding on the same file and the same queries.
//!
//! ```sh
//! cargo run --release --example index_alone -- INDEX_FILE QUERIES_F32 DIM [K] [ROUNDS]
//! ```
//!
//! `QUERIES_F32` holds the query vectors as little-endian float32, `DIM` values each. Prints
//! one JSON line: the index's size, the load time, p50/p99 in milliseconds for each way, and
//! the keys each query found (for checking both sides agree).

use std::time::Instant;

use frameseek::index::{options, IndexSettings};
use usearch::Index;

fn percentile(xs: &[f64], q: f64) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() >= 3,
        "usage: index_alone INDEX_FILE QUERIES_F32 DIM [K] [ROUNDS]"
    );
    let dim: usize = args[2].parse()?;
    let k: usize = args.get(3).map_or(Ok(10), |s| s.parse())?;
    let rounds: usize = args.get(4).map_or(Ok(1), |s| s.parse())?;
    let raw = std::fs::read(&args[1])?;
    anyhow::ensure!(
        raw.len() % (4 * dim) == 0,
        "{}: {} bytes is not a whole number of {dim}-d float32 rows",
        args[1],
        raw.len()
    );
    let queries: Vec<Vec<f32>> = raw
        .chunks_exact(4 * dim)
        .map(|row| {
            row.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
        .collect();
    let settings = IndexSettings::default();
    let index = Index::new(&options(dim, &settings))?;
    let started = Instant::now();
    index.load(&args[0])?;
    let load_s = started.elapsed().as_secs_f64();
    index.change_expansion_search(settings.expansion_search);
    let (mut plain, mut filtered) = (Vec::new(), Vec::new());
    let mut keys = Vec::new();
    for round in 0..rounds {
        for q in &queries {
            let t = Instant::now();
            let found = index.search(q, k)?;
            plain.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let through_filter = index.filtered_search(q, k, |_| true)?;
            filtered.push(t.elapsed().as_secs_f64() * 1e3);
            if round == 0 {
                anyhow::ensure!(
                    found.keys == through_filter.keys,
                    "search and filtered_search disagree"
                );
                keys.push(found.keys);
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "size": index.size(),
            "expansion_search": settings.expansion_search,
            "load_s": load_s,
            "search_ms": {"p50": percentile(&plain, 0.5), "p99": percentile(&plain, 0.99), "n": plain.len()},
            "filtered_search_ms": {"p50": percentile(&filtered, 0.5), "p99": percentile(&filtered, 0.99), "n": filtered.len()},
            "keys": keys,
        })
    );
    Ok(())
}
