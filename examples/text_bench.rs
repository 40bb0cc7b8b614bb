//! Text-tower latency and accuracy by weight precision (issue 8): loads a checkpoint twice,
//! text tower in float32 and with 8-bit linear-layer weights, and embeds the same queries
//! with both, alternating query by query. Prints p50/p99 latency of
//! `Embedder::embed_texts` for each and the cosine of the int8 vectors to the float32 ones.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release --example text_bench -- MODEL_DIR [QUERIES]
//! ```

use std::time::Instant;

use frameseek::embed::{DeviceChoice, Embedder, Precision};

const WORDS: &[&str] = &[
    "a", "red", "car", "dog", "running", "on", "the", "beach", "at", "night", "city", "street",
    "people", "walking", "snow", "mountain", "sunset", "boat", "water", "green", "forest", "man",
    "woman", "child", "playing", "football", "kitchen", "cooking", "bicycle", "bridge",
];

fn pct(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((p / 100.0) * (s.len() - 1) as f64).round() as usize]
}

fn main() -> anyhow::Result<()> {
    frameseek::embed::init_quantised_threads();
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: text_bench MODEL_DIR [QUERIES]"))?;
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(100);
    let f32m = Embedder::load_with(&model, DeviceChoice::Cpu, Precision::F32)?;
    let int8 =
        Embedder::load_with_text(&model, DeviceChoice::Cpu, Precision::F32, Precision::Int8)?;
    let texts: Vec<String> = (0..n + 5)
        .map(|i| {
            let k = 3 + i % 6;
            let words: Vec<&str> = (0..k)
                .map(|j| WORDS[(i * 7 + j * 11) % WORDS.len()])
                .collect();
            format!("{} {i}", words.join(" "))
        })
        .collect();
    for t in &texts[..5] {
        f32m.embed_texts(&[t])?;
        int8.embed_texts(&[t])?;
    }
    let (mut t32, mut t8, mut cos) = (Vec::new(), Vec::new(), Vec::new());
    for t in &texts[5..] {
        let s = Instant::now();
        let a = f32m.embed_texts(&[t])?.remove(0);
        t32.push(s.elapsed().as_secs_f64() * 1000.0);
        let s = Instant::now();
        let b = int8.embed_texts(&[t])?.remove(0);
        t8.push(s.elapsed().as_secs_f64() * 1000.0);
        cos.push(a.iter().zip(&b).map(|(x, y)| x * y).sum::<f32>());
    }
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| "unset".into());
    println!(
        "text tower, {n} queries alternating, RAYON_NUM_THREADS={}, CANDLE_NUM_THREADS={}",
        var("RAYON_NUM_THREADS"),
        var("CANDLE_NUM_THREADS")
    );
    println!("| text weights | p50 ms | p99 ms |");
    println!("|---|---|---|");
    println!("| f32 | {:.1} | {:.1} |", pct(&t32, 50.0), pct(&t32, 99.0));
    println!("| int8 | {:.1} | {:.1} |", pct(&t8, 50.0), pct(&t8, 99.0));
    let min = cos.iter().copied().fold(1f32, f32::min);
    let mean = cos.iter().sum::<f32>() / cos.len() as f32;
    println!("cosine int8 to f32: min {min:.6}, mean {mean:.6}");
    Ok(())
}
