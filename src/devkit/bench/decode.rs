//! `frameseek bench-decode` (issue 4): the decode-and-sample stage alone on one file, with
//! the model's input geometry, so it can be timed against the `ffmpeg` command doing the
//! same sampling and scaling (`tools/bench/decode_bench.py`).

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Context;

use crate::decode::{decode_samples, HwAccel, SampleOptions};
use crate::embed::PixelGeometry;

/// Arguments of `bench-decode`.
#[derive(Debug, clap::Args)]
pub struct BenchDecodeArgs {
    /// The video file.
    pub file: std::path::PathBuf,
    /// Seconds between samples.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// Sampling policy: interval, keyframes or scene.
    #[arg(long, default_value = "interval")]
    pub policy: crate::decode::SamplingMode,
    /// FFmpeg decoder threads (0 = FFmpeg's choice).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Side of the square model input the frames are converted to.
    #[arg(long, default_value_t = 224)]
    pub size: usize,
}

/// Decodes and samples the file once and prints one JSON line of figures.
pub fn run(args: &BenchDecodeArgs) -> anyhow::Result<()> {
    let policy = args.policy.policy(0.04, 30.0);
    let options = SampleOptions {
        interval: args.interval,
        resume_after_ms: None,
        decoder_threads: args.threads,
        geometry: PixelGeometry::clip_default(args.size),
        hwaccel: HwAccel::None,
        policy,
        heartbeat: None,
    };
    let start = Instant::now();
    let mut checksum = 0f64;
    let summary = decode_samples(&args.file, &options, &AtomicBool::new(false), |frame| {
        // Touch the output so the conversion cannot be skipped.
        checksum += f64::from(frame.pixels[frame.pixels.len() / 2]);
        true
    })
    .with_context(|| format!("decoding {}", args.file.display()))?;
    let wall = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "bench": "decode",
            "policy": args.policy.as_str(),
            "interval": args.interval,
            "threads": args.threads,
            "decoded": summary.decoded,
            "kept": summary.kept,
            "packets_skipped": summary.packets_skipped,
            "wall_s": wall,
            "convert_s": summary.convert_us as f64 / 1e6,
            "checksum": checksum,
        })
    );
    Ok(())
}
