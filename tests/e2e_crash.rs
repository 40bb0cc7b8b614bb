//! Crash consistency on the real daemon: SIGKILL at seeded random moments during ingest,
//! restart, and check that acknowledged frames survive and are searchable, nothing is stored
//! twice, ingest resumes from its watermark, and index and database agree.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use frameseek::samples::render_scene_video;
use frameseek::store::{split_key, Store};

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

fn stored_offsets(state: &std::path::Path, source: &str) -> (Vec<u64>, usize) {
    let store = Store::open(&state.join("db")).unwrap();
    let rec = store.source(source).unwrap().unwrap();
    let offsets: Vec<u64> = store.source_keys(rec.no).unwrap().into_iter().map(|k| split_key(k).1).collect();
    (offsets, store.frame_count())
}

#[test]
fn sigkill_during_ingest_loses_and_duplicates_nothing() {
    let footage_env = TestEnv::new();
    let video = footage_env.dir().join("long.mp4");
    render_scene_video(&video, &["testsrc2", "smptehdbars", "mandelbrot", "rgbtestsrc"], 15.0).unwrap();

    // Reference: one uninterrupted ingest gives the exact set of frame offsets.
    let reference_env = TestEnv::new();
    let ref_video = reference_env.footage().join("long.mp4");
    std::fs::copy(&video, &ref_video).unwrap();
    let ref_source = ref_video.canonicalize().unwrap().display().to_string();
    let t0 = Instant::now();
    let mut d = reference_env.start(INTERVAL);
    let out = d.cli(&["ingest", "--wait", ref_video.to_str().unwrap()]);
    assert!(out.status.success());
    let ingest_time = t0.elapsed();
    assert_eq!(d.stop(), Some(0));
    let (reference, _) = stored_offsets(&reference_env.dir().join("state"), &ref_source);
    assert!((295..=305).contains(&reference.len()), "60 s at 0.2 s gave {}", reference.len());
    let reference: BTreeSet<u64> = reference.into_iter().collect();

    let mut rng = Rng(0x5eed_f00d);
    let mut resumed_mid_file = 0;
    for trial in 0..TRIALS {
        let env = TestEnv::new();
        let v = env.footage().join("long.mp4");
        std::fs::copy(&video, &v).unwrap();
        let source = v.canonicalize().unwrap().display().to_string();
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
            acked = (src["frames"].as_u64().unwrap(), src["watermark_ms"].as_u64());
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
                let r = d.cli_json(&["search", "x", "-k", "1", "--from", &format!("{}", o as f64 / 1000.0), "--to", &format!("{}", o as f64 / 1000.0)]);
                assert_eq!(r["clips"][0]["best_ms"].as_u64(), Some(o), "{context}: acknowledged frame at {o} ms not searchable: {r}");
            }
        }
        let status = wait_finished(&d, &[&source]);
        assert_eq!(source_status(&status, &source)["state"], "done", "{context}");
        // (c) Ingest resumed after the watermark instead of starting over.
        let log = d.log_text();
        if acked.1.is_some() && !acked_done {
            resumed_mid_file += 1;
        }
        if let (Some(w), false) = (acked.1, acked_done) {
            let line = log.lines().find(|l| l.contains("decoding")).unwrap_or_else(|| panic!("{context}: no resume in log:\n{log}"));
            let resumed_at: u64 = line
                .split("resume_after_ms=Some(")
                .nth(1)
                .and_then(|r| r.split(')').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{context}: did not resume from a watermark: {line}"));
            assert!(resumed_at >= w, "{context}: resumed at {resumed_at} < acknowledged {w}");
        }
        // (d) Index and database agree.
        let stats = d.cli_json(&["stats"]);
        assert_eq!(stats["frames"], stats["indexed"], "{context}: {stats}");
        drop(d);
        // (b) Exactly the reference frames: none lost, none twice.
        let (offsets, total) = stored_offsets(&env.dir().join("state"), &source);
        let set: BTreeSet<u64> = offsets.iter().copied().collect();
        assert_eq!(set.len(), offsets.len(), "{context}: duplicate offsets");
        assert_eq!(set, reference, "{context}: stored frames differ from an uninterrupted run");
        assert_eq!(total, reference.len(), "{context}");
        assert_eq!(stats["frames"].as_u64().unwrap() as usize, reference.len(), "{context}");
    }
    assert!(resumed_mid_file >= 5, "only {resumed_mid_file} of {TRIALS} kills landed mid-file; the test is not exercising resume");
}
