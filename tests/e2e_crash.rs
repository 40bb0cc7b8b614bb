//! Crash consistency on the real daemon: SIGKILL at seeded random moments during ingest,
//! restart, and check that acknowledged frames survive and are searchable, nothing is stored
//! twice, ingest resumes from its watermark, and index and database agree.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use frameseek::devkit::samples::render_scene_video;
use frameseek::store::{key_view, split_key, Store};

const TRIALS: usize = 20;
const INTERVAL: &str = "sample_interval = 0.2\ncheckpoint_frames = 64\n";

/// A small deterministic generator (xorshift), so failures can be replayed by seed.
struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The offsets of a source's stored frames (view 0 of each), and the rows stored, after
/// checking that every frame has all of its views (issue 16: a frame's views are stored
/// whole, even when a kill split them between two commits).
fn stored_offsets(state: &std::path::Path, source: &str) -> (Vec<u64>, usize) {
    let store = Store::open(&state.join("db")).unwrap();
    let rec = store.source(source).unwrap().unwrap();
    let views = rec.views.as_ref().map_or(1, |v| v.len());
    let keys = store.source_keys(rec.no).unwrap();
    let mut per_offset: std::collections::BTreeMap<u64, Vec<usize>> = Default::default();
    for &k in &keys {
        per_offset
            .entry(split_key(k).1)
            .or_default()
            .push(key_view(k));
    }
    for (offset, got) in &per_offset {
        assert_eq!(
            *got,
            (0..views).collect::<Vec<_>>(),
            "views of the frame at {offset} ms"
        );
    }
    let offsets: Vec<u64> = keys
        .into_iter()
        .filter(|&k| key_view(k) == 0)
        .map(|k| split_key(k).1)
        .collect();
    (offsets, store.frame_count() / views)
}

#[test]
fn sigkill_during_ingest_loses_and_duplicates_nothing() {
    let footage_env = TestEnv::new();
    let video = footage_env.dir().join("long.mp4");
    render_scene_video(
        &video,
        &["testsrc2", "smptehdbars", "mandelbrot", "rgbtestsrc"],
        15.0,
    )
    .unwrap();

    // Reference: one uninterrupted ingest gives the exact set of frame offsets.
    let reference_env = TestEnv::new();
    let ref_video = reference_env.footage().join("long.mp4");
    std::fs::copy(&video, &ref_video).unwrap();
    let ref_source = source_id(&ref_video);
    let t0 = Instant::now();
    let mut d = reference_env.start(INTERVAL);
    d.ingest_wait(&[&ref_video]);
    let ingest_time = t0.elapsed();
    assert_eq!(d.stop(), Some(0));
    let (reference, _) = stored_offsets(&reference_env.dir().join("state"), &ref_source);
    assert!(
        (295..=305).contains(&reference.len()),
        "60 s at 0.2 s gave {}",
        reference.len()
    );
    let reference: BTreeSet<u64> = reference.into_iter().collect();

    let mut rng = Rng(0x5eed_f00d);
    let mut resumed_mid_file = 0;
    for trial in 0..TRIALS {
        let env = TestEnv::new();
        let v = env.footage().join("long.mp4");
        std::fs::copy(&video, &v).unwrap();
        let source = source_id(&v);
        let mut d = env.start(INTERVAL);
        let queued = d.cli_json(&["ingest", v.to_str().unwrap()]);
        assert_eq!(queued["outcomes"][0]["result"], "queued");
        let delay = ingest_time.mul_f64(rng.next_f64() * 1.1);
        let until = Instant::now() + delay;
        // Poll status until the kill moment; the last answer is what was acknowledged.
        let mut acked = (0u64, None::<u64>);
        let mut acked_done = false;
        while Instant::now() < until {
            let s = d.cli_json(&["status"]);
            let src = source_status(&s, &source);
            acked = (
                src["frames"].as_u64().unwrap(),
                src["watermark_ms"].as_u64(),
            );
            acked_done = src["state"] == "done";
            std::thread::sleep(Duration::from_millis(5));
        }
        d.kill9();
        let context = format!("trial {trial}: killed after {delay:?} with {acked:?} acknowledged");

        let d = env.start(INTERVAL);
        // (a) Every acknowledged frame is searchable right after the restart.
        if let Some(w) = acked.1 {
            let mut probes: Vec<u64> = reference.iter().copied().filter(|&o| o <= w).collect();
            let n = probes.len();
            probes = vec![probes[0], probes[n / 2], probes[n - 1]];
            for o in probes {
                let r = d.cli_json(&[
                    "search",
                    "x",
                    "-k",
                    "1",
                    "--from",
                    &format!("{}", o as f64 / 1000.0),
                    "--to",
                    &format!("{}", o as f64 / 1000.0),
                ]);
                assert_eq!(
                    r["clips"][0]["best_ms"].as_u64(),
                    Some(o),
                    "{context}: acknowledged frame at {o} ms not searchable: {r}"
                );
            }
        }
        let status = wait_finished(&d, &[&source]);
        assert_eq!(
            source_status(&status, &source)["state"],
            "done",
            "{context}"
        );
        // (c) Ingest resumed after the watermark instead of starting over. (When the source
        // finished between the last status poll and the kill, nothing is decoded again.)
        let log = d.log_text();
        let decoding = log.lines().find(|l| l.contains("decoding"));
        if let (Some(line), Some(w)) = (decoding, acked.1) {
            resumed_mid_file += 1;
            let resumed_at: u64 = line
                .split("resume_after_ms=Some(")
                .nth(1)
                .and_then(|r| r.split(')').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{context}: did not resume from a watermark: {line}"));
            assert!(
                resumed_at >= w,
                "{context}: resumed at {resumed_at} < acknowledged {w}"
            );
        }
        if decoding.is_none() {
            assert!(
                acked.1.is_some() || acked_done,
                "{context}: nothing was committed yet the source was not resumed:\n{log}"
            );
        }
        // (d) Index and database agree.
        let stats = d.cli_json(&["stats"]);
        assert_eq!(stats["views"], stats["indexed"], "{context}: {stats}");
        drop(d);
        // (b) Exactly the reference frames: none lost, none twice.
        let (offsets, total) = stored_offsets(&env.dir().join("state"), &source);
        let set: BTreeSet<u64> = offsets.iter().copied().collect();
        assert_eq!(set.len(), offsets.len(), "{context}: duplicate offsets");
        assert_eq!(
            set, reference,
            "{context}: stored frames differ from an uninterrupted run"
        );
        assert_eq!(total, reference.len(), "{context}");
        assert_eq!(
            stats["frames"].as_u64().unwrap() as usize,
            reference.len(),
            "{context}"
        );
    }
    assert!(resumed_mid_file >= 5, "only {resumed_mid_file} of {TRIALS} kills landed mid-file; the test is not exercising resume");
}

#[test]
fn a_damaged_index_file_is_rebuilt_from_the_stored_vectors() {
    let env = TestEnv::new();
    let v = env.footage().join("a.mp4");
    render_scene_video(&v, &["testsrc2", "mandelbrot"], 5.0).unwrap();
    let mut d = env.start("");
    d.ingest_wait(&[&v]);
    let stats = d.cli_json(&["stats"]);
    assert_eq!(stats["frames"], 10, "{stats}");
    // Every view is a vector of the index.
    let views = stats["views"].as_u64().unwrap();
    assert!(views >= 10, "{stats}");
    assert_eq!(d.stop(), Some(0));
    let index = env.dir().join("state/index.usearch");
    let good = std::fs::read(&index).unwrap();
    let damages: [(&str, Option<Vec<u8>>); 3] = [
        ("missing", None),
        ("truncated", Some(good[..good.len() / 3].to_vec())),
        (
            "corrupt",
            Some(
                good.iter()
                    .enumerate()
                    .map(|(i, b)| if i > 64 { b ^ 0x5a } else { *b })
                    .collect(),
            ),
        ),
    ];
    for (what, bytes) in damages {
        match &bytes {
            None => std::fs::remove_file(&index).unwrap(),
            Some(b) => std::fs::write(&index, b).unwrap(),
        }
        let mut d = env.start("");
        assert!(
            d.log_text()
                .contains("index rebuilt from the stored vectors"),
            "{what}: {}",
            d.log_text()
        );
        let stats = d.cli_json(&["stats"]);
        assert_eq!(
            (stats["views"].as_u64(), stats["indexed"].as_u64()),
            (Some(views), Some(views)),
            "{what}: {stats}"
        );
        let r = d.cli_json(&["search", "x", "-k", "1", "--from", "2", "--to", "2.1"]);
        assert_eq!(r["clips"][0]["best_ms"], 2002, "{what}: {r}");
        assert_eq!(d.stop(), Some(0));
    }
    // A change of `index.precision` rebuilds the index from the stored vectors (no
    // re-embedding), and going back rebuilds it again.
    for precision in ["i8", "f32", "f16"] {
        let mut d = env.start(&format!("\n[index]\nprecision = \"{precision}\"\n"));
        let log = d.log_text();
        assert!(
            log.contains("index rebuilt from the stored vectors") && log.contains("precision"),
            "{precision}: {log}"
        );
        let stats = d.cli_json(&["stats"]);
        assert_eq!(
            stats["indexed"].as_u64(),
            Some(views),
            "{precision}: {stats}"
        );
        let r = d.cli_json(&["search", "x", "-k", "1", "--from", "2", "--to", "2.1"]);
        assert_eq!(r["clips"][0]["best_ms"], 2002, "{precision}: {r}");
        assert_eq!(d.stop(), Some(0));
    }
}

#[test]
fn a_corrupt_database_is_reported_not_reset() {
    let env = TestEnv::new();
    let v = env.footage().join("a.mp4");
    render_scene_video(&v, &["testsrc2"], 3.0).unwrap();
    let mut d = env.start("");
    d.ingest_wait(&[&v]);
    assert_eq!(d.stop(), Some(0));
    let db = env.dir().join("state/db/db");
    let mut bytes = std::fs::read(&db).unwrap();
    for b in bytes.iter_mut().skip(16) {
        *b = !*b;
    }
    std::fs::write(&db, &bytes).unwrap();
    // Twice: the refusal must not depend on the first attempt leaving the files as they were.
    for attempt in 0..2 {
        refuse_to_start(&env, attempt);
    }
}

fn refuse_to_start(env: &TestEnv, attempt: usize) {
    let log = env.dir().join(format!("corrupt-{attempt}.log"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_frameseek"))
        .args([
            "serve",
            "--config",
            env.dir().join("frameseek.toml").to_str().unwrap(),
        ])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        status.is_some_and(|s| !s.success()),
        "the daemon must not start on a corrupt database: {stderr}"
    );
    assert!(
        stderr.contains("cannot open the store") && stderr.contains("damaged"),
        "{stderr}"
    );
}

#[test]
fn another_model_is_refused_until_reindex_re_embeds_every_source() {
    let env = TestEnv::new();
    let v = env.footage().join("a.mp4");
    render_scene_video(&v, &["testsrc2"], 4.0).unwrap();
    let mut d = env.start("");
    d.ingest_wait(&[&v]);
    assert_eq!(d.stop(), Some(0));

    // The config now names another model: the daemon refuses to start and says what to do.
    let config = env.dir().join("frameseek.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let switched = text.replace(
        &test_model().display().to_string(),
        &world_model().display().to_string(),
    );
    std::fs::write(&config, &switched).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_frameseek"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("frameseek reindex")
            && stderr.contains("tiny-random-clip")
            && stderr.contains("frameseek-tiny"),
        "{stderr}"
    );

    reindex(&config);
    let d = env.start_with_model("", &world_model());
    let status = wait_finished(&d, &[&source_id(&v)]);
    assert_eq!(
        status["model"]["id"],
        world_model().display().to_string().as_str()
    );
    assert_eq!(status["frames"], 4, "{status}");
    assert!(env.dir().join("state/before-reindex/db").exists());
}
