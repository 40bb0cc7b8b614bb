//! CPU throughput of the CLIP image tower: `cargo run --release --example clip_bench --
//! MODEL_DIR [BATCH…]`. Prints images per second for each batch size, timed over several
//! batches after a warm-up. `RAYON_NUM_THREADS` sets the thread count; `CLIP_BENCH_SECONDS`
//! the minimum time per batch size (default 10); `CLIP_BENCH_PRECISION` = `f32` or `int8`;
//! `CLIP_BENCH_MICRO_BATCH` images per pass (0 = the whole batch at once).

use std::time::{Duration, Instant};

use frameseek::embed::{DeviceChoice, Embedder, Precision};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: clip_bench MODEL_DIR [BATCH…]"))?;
    let mut batches: Vec<usize> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
    if batches.is_empty() {
        batches = vec![1, 8, 32];
    }
    let seconds: f64 = std::env::var("CLIP_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let precision = match std::env::var("CLIP_BENCH_PRECISION").as_deref() {
        Ok("int8") => Precision::Int8,
        _ => Precision::F32,
    };
    let mut embedder = Embedder::load_with(&model, DeviceChoice::Cpu, precision)?;
    // CLIP_BENCH_MICRO_BATCH: images per pass (default: the library's; 0 = whole batch).
    let micro = std::env::var("CLIP_BENCH_MICRO_BATCH")
        .ok()
        .and_then(|s| s.parse::<usize>().ok());
    match micro {
        Some(0) => embedder.set_cpu_micro_batch(usize::MAX),
        Some(n) => embedder.set_cpu_micro_batch(n),
        None => {}
    }
    let micro_label = match micro {
        Some(0) => "whole".to_string(),
        Some(n) => n.to_string(),
        None => frameseek::embed::CPU_MICRO_BATCH.to_string(),
    };
    let per_image = embedder.geometry().values_per_image();
    let threads = rayon_threads();
    if std::env::var("CLIP_BENCH_COMPARE").is_ok() {
        return compare_precisions(&model, &embedder, per_image);
    }
    for &batch in &batches {
        // Deterministic, image-like values in the normalised range.
        let pixels: Vec<f32> = (0..batch * per_image)
            .map(|i| ((i * 2_654_435_761usize % 1000) as f32 / 500.0) - 1.0)
            .collect();
        embedder.embed_pixels(&pixels, batch)?;
        let start = Instant::now();
        let cpu_start = cpu_seconds();
        let mut images = 0usize;
        let mut runs = 0usize;
        while start.elapsed() < Duration::from_secs_f64(seconds) || runs < 2 {
            embedder.embed_pixels(&pixels, batch)?;
            images += batch;
            runs += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu_start;
        println!(
            "{{\"impl\": \"frameseek-candle\", \"precision\": \"{:?}\", \"batch\": {batch}, \"micro_batch\": \"{micro_label}\", \"threads\": {threads}, \"images_per_s\": {:.2}, \"images_per_cpu_s\": {:.2}, \"runs\": {runs}, \"load\": {:.2}}}",
            precision,
            images as f64 / secs,
            images as f64 / cpu,
            load_average()
        );
    }
    Ok(())
}

/// Prints the cosine between float32 and int8 embeddings of the same pseudo-random images.
fn compare_precisions(model: &str, f32_model: &Embedder, per_image: usize) -> anyhow::Result<()> {
    let int8 = Embedder::load_with(model, DeviceChoice::Cpu, Precision::Int8)?;
    // The parity fixtures' photographs, preprocessed for this model.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity/images");
    let mut pixels = Vec::new();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir)? {
        let bytes = std::fs::read(entry?.path())?;
        f32_model
            .geometry()
            .preprocess_image_bytes(&bytes, &mut pixels)
            .map_err(anyhow::Error::msg)?;
        n += 1;
    }
    debug_assert_eq!(pixels.len(), n * per_image);
    let a = f32_model.embed_pixels(&pixels, n)?;
    let b = int8.embed_pixels(&pixels, n)?;
    let cos: Vec<f32> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| p * q).sum())
        .collect();
    let min = cos.iter().copied().fold(f32::INFINITY, f32::min);
    let mean = cos.iter().sum::<f32>() / n as f32;
    println!("{{\"compare\": \"int8 vs f32 on the parity photos\", \"images\": {n}, \"cosine_min\": {min:.6}, \"cosine_mean\": {mean:.6}}}");
    Ok(())
}

/// User plus system CPU time of this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The one-minute load average, to see how busy the machine was.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}
