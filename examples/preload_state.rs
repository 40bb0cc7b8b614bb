//! Fills a frameseek state folder with N synthetic frames, written through
//! `frameseek::catalog::Catalog` exactly as ingest would commit them, so that a daemon
//! started on that folder (with the same `model.path`) opens it and answers queries over N
//! stored vectors. Used by `tools/bench/compare.py` for the query-latency benchmark.
//!
//! ```sh
//! cargo run --release --example preload_state -- --state DIR --model MODEL_DIR --n 100000
//! ```
//!
//! Vectors: L2-normalised 512-d (the model's dimension), 4,096 centroids plus noise, one
//! centroid per 10 s scene, over 100 sources of one frame a second (sources are marked
//! `done`, so the daemon does not try to ingest them).

use std::path::PathBuf;
use std::time::Instant;

use frameseek::catalog::Catalog;
use frameseek::embed::{DeviceChoice, Embedder};
use frameseek::store::{frame_key, Fingerprint, SourceState};

#[path = "../benches/support/synthetic.rs"]
mod synthetic;
use synthetic::{normalise, Rng};

fn unit(rng: &mut Rng, base: Option<&[f32]>, dim: usize, std: f32) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim).map(|_| rng.normal_pair().0 * std).collect();
    if let Some(b) = base {
        v.iter_mut().zip(b).for_each(|(x, c)| *x += c);
    }
    normalise(&mut v);
    v
}

fn main() -> anyhow::Result<()> {
    let (mut state, mut model, mut n, mut sources) = (None, None, 100_000usize, 100u32);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--state" => state = Some(PathBuf::from(val)),
            "--model" => model = Some(val),
            "--n" => n = val.parse()?,
            "--sources" => sources = val.parse()?,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    let state = state.ok_or_else(|| anyhow::anyhow!("--state DIR is required"))?;
    let model = model.ok_or_else(|| anyhow::anyhow!("--model PATH is required"))?;
    std::fs::create_dir_all(&state)?;
    let embedder = Embedder::load(&model, DeviceChoice::Cpu)?;
    let dim = embedder.dim();
    let (catalog, _) = Catalog::open(&state, embedder.identity(), usize::MAX)?;
    drop(embedder);

    let per_source = n.div_ceil(sources as usize) as u64;
    let mut nos = Vec::new();
    for s in 0..sources {
        let rec = catalog.store().new_source(
            &format!("/bench/synthetic/src{s:03}.mp4"),
            Fingerprint::default(),
            1.0,
            Some(per_source * 1000),
        )?;
        catalog.store().update_source(&rec.source, |r| {
            r.state = SourceState::Done;
        })?;
        nos.push(rec.no);
    }
    let mut rng = Rng(7);
    let centroids: Vec<Vec<f32>> = (0..4096).map(|_| unit(&mut rng, None, dim, 1.0)).collect();
    let noise = 0.6 / (dim as f32).sqrt();
    let t = Instant::now();
    // Large commits: the index spreads a large batch over the cores (`VectorIndex::add`),
    // and the only checkpoint is the one at the end (`checkpoint_frames = usize::MAX`).
    const BATCH: usize = 20_000;
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..n {
        let no = nos[i % nos.len()];
        let offset_ms = (i / nos.len()) as u64 * 1000;
        let mut scene = Rng(u64::from(no) << 32 | (offset_ms / 10_000));
        let c = &centroids[(scene.next() % 4096) as usize];
        let mut r = Rng(0xDA7A_0000_0000 + i as u64);
        batch.push((frame_key(no, offset_ms), unit(&mut r, Some(c), dim, noise)));
        if batch.len() == BATCH || i + 1 == n {
            catalog.commit(&batch)?;
            batch.clear();
            eprint!(
                "\r{} / {n} frames, {:.0} frames/s",
                i + 1,
                (i + 1) as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
    catalog.checkpoint()?;
    eprintln!(
        "\npreloaded {n} frames over {sources} sources into {} in {:.1} s",
        state.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
