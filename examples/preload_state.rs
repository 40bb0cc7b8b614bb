//! Fills a frameseek state folder with N synthetic frames, so that a daemon started on that
//! folder (with the same `model.path`) opens it and answers queries over N stored vectors.
//! Used by `tools/bench/compare.py` for the query-latency benchmark.
//!
//! The frames go into the database with `Store::commit_frames` (ingest's commit, in batches
//! of 1,000); then the catalog is opened again, finds no index file for them and rebuilds it
//! from the stored vectors (the daemon's recovery path for a lost index, which adds from one
//! thread per core) and checkpoints it. Both times are printed.
//!
//! ```sh
//! cargo run --release --example preload_state -- --state DIR --model MODEL_DIR --n 100000
//! ```
//!
//! Vectors: L2-normalised, of the model's dimension, 4,096 centroids plus noise, one
//! centroid per 10 s scene, over `--sources` sources (default 100) of one frame a second,
//! named like an NVR's segments of 100 cameras (`/bench/synthetic/camCC/srcNNNNNN.mp4`),
//! following one another in wall-clock time up to 2026-01-01T00:00:00Z. Sources are marked
//! `done`, so the daemon does not try to ingest them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use frameseek::catalog::Catalog;
use frameseek::embed::{DeviceChoice, Embedder};
use frameseek::index::{IndexSettings, OpenOutcome};
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

/// The state's catalog as the daemon opens it (default index settings, no checkpoints
/// until asked), with how its index came up and the model's dimension.
fn open_catalog(state: &Path, model: &str) -> anyhow::Result<(Catalog, OpenOutcome, usize)> {
    let embedder = Embedder::load(model, DeviceChoice::Cpu)?;
    let (catalog, outcome) = Catalog::open(
        state,
        embedder.identity(),
        &IndexSettings::default(),
        usize::MAX,
    )?;
    Ok((catalog, outcome, embedder.dim()))
}

/// Where the preloaded library's wall-clock timeline ends: 2026-01-01T00:00:00Z (so the
/// "last hour" of `tools/bench/sources_scale.py` is the hour before it).
const WALL_END_MS: i64 = 1_767_225_600_000;

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
    let (catalog, _, dim) = open_catalog(&state, &model)?;

    let per_source = n.div_ceil(sources as usize) as u64;
    let mut nos = Vec::new();
    for s in 0..sources {
        // Like an NVR's segments: 100 cameras, each source a segment of one of them, one
        // after another in time so that the library ends at WALL_END_MS.
        let rec = catalog.store().new_source(
            &format!("/bench/synthetic/cam{:02}/src{s:06}.mp4", s % 100),
            Fingerprint::default(),
            1.0,
            Some(per_source * 1000),
        )?;
        let start = WALL_END_MS - i64::from(sources - s) * (per_source * 1000) as i64;
        catalog.store().update_source(&rec.source, |r| {
            r.state = SourceState::Done;
            r.start_wall_ms = Some(start);
        })?;
        nos.push(rec.no);
    }
    let mut rng = Rng(7);
    let centroids: Vec<Vec<f32>> = (0..4096).map(|_| unit(&mut rng, None, dim, 1.0)).collect();
    let noise = 0.6 / (dim as f32).sqrt();
    let t = Instant::now();
    // The database only: the index is rebuilt from it below, in one parallel pass.
    const BATCH: usize = 1_000;
    let mut batch: Vec<(u64, Vec<f32>)> = Vec::with_capacity(BATCH);
    for i in 0..n {
        let no = nos[i % nos.len()];
        let offset_ms = (i / nos.len()) as u64 * 1000;
        let mut scene = Rng(u64::from(no) << 32 | (offset_ms / 10_000));
        let c = &centroids[(scene.next() % 4096) as usize];
        let mut r = Rng(0xDA7A_0000_0000 + i as u64);
        batch.push((frame_key(no, offset_ms), unit(&mut r, Some(c), dim, noise)));
        if batch.len() == BATCH || i + 1 == n {
            let refs: Vec<(u64, &[f32])> = batch.iter().map(|(k, v)| (*k, v.as_slice())).collect();
            catalog.store().commit_frames(&refs)?;
            batch.clear();
            eprint!(
                "\r{} / {n} frames, {:.0} frames/s",
                i + 1,
                (i + 1) as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
    let stored_s = t.elapsed().as_secs_f64();
    drop(catalog);
    let t = Instant::now();
    let (catalog, outcome, _) = open_catalog(&state, &model)?;
    anyhow::ensure!(
        catalog.indexed() == n,
        "the rebuilt index holds {} of {n} frames",
        catalog.indexed()
    );
    eprintln!(
        "\npreloaded {n} frames over {sources} sources into {}: database {stored_s:.1} s, \
         index {:.1} s ({outcome:?})",
        state.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
