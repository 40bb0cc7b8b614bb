//! Retention on the real daemon: frames older than `retention.max_age_days` (by wall-clock
//! time from the path) and beyond `retention.max_frames_per_source` are removed on their own
//! and never come back: not after a restart, an index rebuild, or `frameseek reindex`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `footage/<cam>/YYYY-MM-DD/HH-MM-SS.mp4` starting at `start_ms`, `secs` long.
fn clip(footage: &Path, cam: &str, start_ms: i64, secs: u32) -> std::path::PathBuf {
    let t = frameseek::clock::format_utc(start_ms); // 2026-11-27T03:00:00.000Z
    let day = footage.join(cam).join(&t[..10]);
    std::fs::create_dir_all(&day).unwrap();
    let path = day.join(format!("{}.mp4", t[11..19].replace(':', "-")));
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=s=160x120:r=5:d={secs}"),
        "-c:v",
        "libx264",
        path.to_str().unwrap(),
    ]);
    path
}

struct Files {
    old: String,
    edge: String,
    recent: String,
    t0: i64,
}

/// Every frame is its own clip (clip_gap below the interval), so clips = indexed frames.
fn all_clips(d: &DaemonGuard) -> Vec<serde_json::Value> {
    let r = d.cli_json(&["search", "anything", "-k", "1000"]);
    r["clips"].as_array().unwrap().clone()
}

/// Checks what retention must have done; `counters` also checks the removal counters.
fn check(d: &DaemonGuard, f: &Files, counters: bool) {
    // Retention keeps running (the edge ages by a frame a second): take a search between
    // two equal statuses.
    let (status, clips) = loop {
        let before = d.cli_json(&["status"]);
        let clips = all_clips(d);
        let after = d.cli_json(&["status"]);
        if before["frames"] == after["frames"] {
            break (after, clips);
        }
    };
    let frames = |s: &str| source_status(&status, s)["frames"].as_u64().unwrap();
    // Edge: starts 1 day + 30 s before t0; its floor grows by 1 s per second since t0.
    let elapsed_s = ((now_ms() - f.t0) / 1000) as u64;
    assert_eq!(frames(&f.old), 0, "{status}");
    assert_eq!(frames(&f.recent), 40, "{status}");
    let edge = frames(&f.edge);
    assert!(
        edge <= 30 && edge + elapsed_s + 2 >= 30,
        "edge kept {edge} frames {elapsed_s} s after t0: {status}"
    );
    let total = status["frames"].as_u64().unwrap();
    assert_eq!(total, 40 + edge, "{status}");
    assert_eq!(clips.len() as u64, total, "index and store agree");
    for c in &clips {
        let (source, best) = (
            c["source"].as_str().unwrap(),
            c["best_ms"].as_u64().unwrap(),
        );
        assert_ne!(source, f.old, "an aged-out frame came back: {c}");
        if source == f.recent {
            assert!(best >= 20_000, "an over-budget frame came back: {c}");
        }
        if source == f.edge {
            assert!(best >= 30_000, "an aged-out frame came back: {c}");
        }
    }
    if counters {
        let removed = 130 - total;
        assert_eq!(status["retention_removed"], removed, "{status}");
        // stats is a separate request (retention may have run since): its own frames.
        let stats = d.cli_json(&["stats"]);
        let stats_frames = stats["frames"].as_u64().unwrap();
        assert_eq!(stats["retention_removed"], 130 - stats_frames, "{stats}");
    }
}

fn wait_retention(d: &DaemonGuard, f: &Files) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = d.cli_json(&["status"]);
        let done = status["sources"].as_array().unwrap().iter().all(|s| {
            s["state"] == "done"
                && (s["source"] != f.old.as_str() || s["frames"] == 0)
                && (s["source"] != f.recent.as_str() || s["frames"] == 40)
        });
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "retention did not run: {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn retention_removes_old_and_over_budget_frames_for_good() {
    let env = TestEnv::new();
    let t0 = now_ms();
    let old = clip(&env.footage(), "old", t0 - 3 * DAY_MS, 10);
    let edge = clip(&env.footage(), "edge", t0 - DAY_MS - 30_000, 60);
    let recent = clip(&env.footage(), "recent", t0 - 3_600_000, 60);
    let f = Files {
        old: source_id(&old),
        edge: source_id(&edge),
        recent: source_id(&recent),
        t0,
    };
    let settings = "clip_gap = 0.1\ntime_pattern = \"%Y-%m-%d/%H-%M-%S\"\n\n[retention]\nmax_age_days = 1\nmax_frames_per_source = 40\ninterval = 0.5\n";
    let mut d = env.start(settings);
    d.ingest_wait(&[&env.footage()]);
    wait_retention(&d, &f);
    check(&d, &f, true);
    assert!(
        d.log_text().contains("retention: frames removed"),
        "{}",
        d.log_text()
    );

    // Restart: the removal holds, and the counters are kept.
    d.stop();
    let d = env.start(settings);
    check(&d, &f, true);
    drop(d);

    // Index rebuilt from the stored vectors: the removed frames are not in them.
    std::fs::remove_file(env.dir().join("state/index.usearch")).unwrap();
    let mut d = env.start(settings);
    assert!(d.log_text().contains("index rebuilt"), "{}", d.log_text());
    check(&d, &f, true);
    d.stop();

    // `reindex` reads every file again: frames below each source's retention floor are not
    // stored again, even with retention now switched off (nothing would remove them).
    reindex(&d.config);
    let d = env.start("clip_gap = 0.1\ntime_pattern = \"%Y-%m-%d/%H-%M-%S\"\n");
    wait_finished(&d, &[&f.old, &f.edge, &f.recent]);
    wait_retention(&d, &f);
    check(&d, &f, false);
}
