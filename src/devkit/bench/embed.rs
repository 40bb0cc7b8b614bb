//! `frameseek bench-embed` (issue 9): image-embedding throughput on a device, for a model
//! folder or a random-weight ViT-B/32 or ViT-L/14 built in memory (no checkpoint to carry to
//! a GPU machine).

use std::sync::mpsc;
use std::time::Instant;

use anyhow::Context;

use super::{init_logging, parse_device};
use crate::embed::Embedder;

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

/// Runs `bench-embed`: for each batch size, the images per second and the median batch time.
pub fn run(args: &BenchEmbedArgs, json: bool) -> anyhow::Result<()> {
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
        if json {
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
    Ok(())
}
