//! Where a text query's time goes, in-process: `Embedder::embed_texts` (tokenise + text
//! tower + normalise) vs `query::search::search` (usearch filtered search + clip grouping), on a
//! state folder written by `examples/preload_state.rs`, 2 rayon threads unless set.
//!
//! ```sh
//! cargo run --release --example query_breakdown -- STATE_DIR MODEL_DIR [QUERIES]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use frameseek::catalog::Catalog;
use frameseek::embed::{DeviceChoice, Embedder};
use frameseek::index::IndexSettings;
use frameseek::query::search::{self, Filter};

const WORDS: &[&str] = &[
    "a", "red", "car", "dog", "running", "on", "the", "beach", "at", "night", "city", "street",
    "people", "walking", "snow", "mountain", "sunset", "boat", "water", "green", "forest", "man",
];

fn pct(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[((p / 100.0) * (s.len() - 1) as f64).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() >= 2,
        "usage: query_breakdown STATE_DIR MODEL_DIR [QUERIES]"
    );
    let state = PathBuf::from(&args[0]);
    let n: usize = args.get(2).map_or(Ok(120), |s| s.parse())?;
    let embedder = Embedder::load(&args[1], DeviceChoice::Cpu)?;
    let (catalog, _) = Catalog::open(
        &state,
        embedder.identity(),
        &IndexSettings::default(),
        usize::MAX,
    )?;
    let (mut text, mut search, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n + 5 {
        let q: Vec<&str> = (0..3 + i % 6)
            .map(|j| WORDS[(i * 7 + j * 11) % WORDS.len()])
            .collect();
        let q = format!("{} {i}", q.join(" "));
        let t = Instant::now();
        let v = embedder.embed_texts(&[q.as_str()])?.remove(0);
        let t_text = t.elapsed().as_secs_f64() * 1000.0;
        let t2 = Instant::now();
        let clips = search::search(&catalog, &v, 10, &Filter::default(), 400)?;
        let t_search = t2.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(!clips.is_empty(), "no clips");
        if i >= 5 {
            text.push(t_text);
            search.push(t_search);
            total.push(t_text + t_search);
        }
    }
    println!(
        "{} stored vectors, {n} queries\n| part | p50 ms | p99 ms |\n|---|---|---|",
        catalog.indexed()
    );
    for (name, v) in [
        ("embed_texts (tokenise + text tower)", &text),
        ("query::search (usearch + grouping)", &search),
        ("sum", &total),
    ] {
        println!("| {name} | {:.1} | {:.1} |", pct(v, 50.0), pct(v, 99.0));
    }
    Ok(())
}
