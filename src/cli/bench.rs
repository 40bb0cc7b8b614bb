//! `frameseek bench-embed` and `frameseek bench-text` (issue 9): image-embedding throughput
//! and text-query latency on a device, for a model folder or a random-weight ViT-B/32 or
//! ViT-L/14 built in memory (no checkpoint to carry to a GPU machine).

use std::sync::mpsc;
use std::time::Instant;

use anyhow::Context;

use super::{Cli, EXIT_OK};
use crate::embed::{DeviceChoice, Embedder, Precision};

/// Arguments of `bench-embed`.
#[derive(Debug, clap::Args)]
pub struct BenchEmbedArgs {
    /// Model folder (Hugging Face CLIP layout).
    #[arg(long, conflicts_with = "arch", required_unless_present = "arch")]
    pub model: Option<String>,
    /// Random weights in a standard shape instead of a folder: vit-b32 or vit-l14.
    #[arg(long)]
    pub arch: Option<String>,
    /// Images per forward pass; several as a comma-separated list (e.g. 32,64,128,256).
    #[arg(long, default_value = "64", value_delimiter = ',')]
    pub batch: Vec<usize>,
    /// Timed batches per batch size.
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
    /// Untimed batches first (kernel loading, autotuning).
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Device: auto, cpu or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Precision: auto (f16 on a GPU, f32 on the CPU), f32, f16, bf16 or int8 (CPU).
    #[arg(long, default_value = "auto")]
    pub dtype: String,
}

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

/// `config.json` of a random-weight ViT-B/32 CLIP (OpenAI's shapes).
pub const VIT_B32_CONFIG: &str = r#"{
  "projection_dim": 512,
  "text_config": {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
    "num_attention_heads": 8, "max_position_embeddings": 77, "vocab_size": 49408,
    "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "projection_dim": 512,
    "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 1},
  "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
    "num_attention_heads": 12, "num_channels": 3, "image_size": 224, "patch_size": 32,
    "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "projection_dim": 512}
}"#;

/// `config.json` of a random-weight ViT-L/14 CLIP (OpenAI's shapes).
pub const VIT_L14_CONFIG: &str = r#"{
  "projection_dim": 768,
  "text_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
    "num_attention_heads": 12, "max_position_embeddings": 77, "vocab_size": 49408,
    "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "projection_dim": 768,
    "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 1},
  "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
    "num_attention_heads": 16, "num_channels": 3, "image_size": 224, "patch_size": 14,
    "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "projection_dim": 768}
}"#;

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FRAMESEEK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn parse_device(device: &str, dtype: &str) -> anyhow::Result<(DeviceChoice, Precision)> {
    let d = DeviceChoice::parse(device).map_err(|e| anyhow::anyhow!("--device {device}: {e}"))?;
    let p = Precision::parse(dtype).map_err(|e| anyhow::anyhow!("--dtype {dtype}: {e}"))?;
    Ok((d, p))
}

/// Deterministic pixel values in the normalised range, `count` images.
fn synthetic_pixels(values_per_image: usize, count: usize) -> Vec<f32> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..values_per_image * count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

pub fn run_embed(cli: &Cli, args: &BenchEmbedArgs) -> anyhow::Result<u8> {
    init_logging();
    let (device, precision) = parse_device(&args.device, &args.dtype)?;
    let (label, embedder) = match (&args.model, args.arch.as_deref()) {
        (Some(model), _) => (
            model.clone(),
            Embedder::load_with(model, device, precision)?,
        ),
        (None, Some(arch)) => {
            let config = match arch {
                "vit-b32" => VIT_B32_CONFIG,
                "vit-l14" => VIT_L14_CONFIG,
                other => anyhow::bail!("--arch {other}: expected vit-b32 or vit-l14"),
            };
            (
                arch.to_string(),
                Embedder::random(config, device, precision)?,
            )
        }
        (None, None) => anyhow::bail!("give --model DIR or --arch vit-b32|vit-l14"),
    };
    let per_image = embedder.geometry().values_per_image();
    for &batch in &args.batch {
        anyhow::ensure!(batch > 0, "--batch must be at least 1");
        let pixels = synthetic_pixels(per_image, batch);
        let total = args.warmup + args.iters;
        // One thread uploads batch i+1 while this one computes batch i.
        let (tx, rx) = mpsc::sync_channel(1);
        let started = std::thread::scope(|scope| -> anyhow::Result<(f64, f64)> {
            let embedder = &embedder;
            let pixels = &pixels;
            scope.spawn(move || {
                for _ in 0..total {
                    if tx.send(embedder.upload_pixels(pixels, batch)).is_err() {
                        return;
                    }
                }
            });
            let mut timer = Instant::now();
            let mut latencies = Vec::with_capacity(args.iters);
            for i in 0..total {
                if i == args.warmup {
                    timer = Instant::now();
                }
                let t = Instant::now();
                let input = rx.recv().context("uploader stopped")??;
                let vectors = embedder.embed_uploaded(&input)?;
                anyhow::ensure!(vectors.len() == batch, "wrong number of vectors");
                if i >= args.warmup {
                    latencies.push(t.elapsed().as_secs_f64());
                }
            }
            let secs = timer.elapsed().as_secs_f64();
            latencies.sort_by(f64::total_cmp);
            let median = latencies.get(latencies.len() / 2).copied().unwrap_or(0.0);
            Ok((secs, median))
        })?;
        let (secs, median) = started;
        let images_per_s = (batch * args.iters) as f64 / secs.max(1e-9);
        if cli.json {
            println!(
                "{}",
                serde_json::json!({
                    "bench": "embed", "model": label, "device": embedder.device_name(),
                    "dtype": format!("{:?}", embedder.dtype()).to_lowercase(),
                    "batch": batch, "iters": args.iters, "seconds": secs,
                    "median_batch_ms": median * 1000.0, "images_per_s": images_per_s,
                })
            );
        } else {
            println!(
                "embed {label} {} {:?} batch {batch:>4}: {images_per_s:>9.1} images/s ({:.2} ms/batch median, {} batches)",
                embedder.device_name(),
                embedder.dtype(),
                median * 1000.0,
                args.iters
            );
        }
    }
    Ok(EXIT_OK)
}

pub fn run_text(cli: &Cli, args: &BenchTextArgs) -> anyhow::Result<u8> {
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
    if cli.json {
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
    Ok(EXIT_OK)
}
