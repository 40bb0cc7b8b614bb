//! `frameseek bench-text` (issue 9): text-query embedding latency on a device, for a model
//! folder.

use std::time::Instant;

use super::{init_logging, parse_device};
use crate::embed::Embedder;

/// Arguments of `bench-text`.
#[derive(Debug, clap::Args)]
pub struct BenchTextArgs {
    /// Model folder (Hugging Face CLIP layout, with its tokenizer).
    #[arg(long)]
    pub model: String,
    /// Timed queries.
    #[arg(long, default_value_t = 50)]
    pub iters: usize,
    /// Device: auto, cpu or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Precision: auto, f32, f16, bf16 or int8 (CPU).
    #[arg(long, default_value = "auto")]
    pub dtype: String,
}

/// Runs `bench-text`: the p50, p95 and maximum latency of one text query.
pub fn run(args: &BenchTextArgs, json: bool) -> anyhow::Result<()> {
    init_logging();
    let (device, precision) = parse_device(&args.device, &args.dtype)?;
    let embedder = Embedder::load_with(&args.model, device, precision)?;
    let queries = [
        "a dog running on a beach",
        "two people talking in a kitchen at night",
        "red car",
        "aerial view of a city with tall buildings and a river",
    ];
    for q in queries {
        embedder.embed_texts(&[q])?;
    }
    let mut latencies = Vec::with_capacity(args.iters);
    for i in 0..args.iters.max(1) {
        let q = queries[i % queries.len()];
        let t = Instant::now();
        embedder.embed_texts(&[q])?;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let (p50, p95, max) = (pick(0.5), pick(0.95), pick(1.0));
    if json {
        println!(
            "{}",
            serde_json::json!({
                "bench": "text", "model": args.model, "device": embedder.device_name(),
                "dtype": format!("{:?}", embedder.dtype()).to_lowercase(),
                "iters": latencies.len(), "p50_ms": p50, "p95_ms": p95, "max_ms": max,
            })
        );
    } else {
        println!(
            "text query {} {} {:?}: p50 {p50:.2} ms, p95 {p95:.2} ms, max {max:.2} ms ({} queries)",
            args.model,
            embedder.device_name(),
            embedder.dtype(),
            latencies.len()
        );
    }
    Ok(())
}
