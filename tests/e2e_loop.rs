//! The whole loop on the real daemon process: ingest generated footage, check frame count
//! and timestamps in the real database, search by image, restart, re-ingest.

mod common;

use common::*;
use frameseek::devkit::samples::{extract_frame, render_scene_video};
use frameseek::store::{key_view, split_key, Store};

#[test]
fn ingest_search_restart_and_dedup() {
    let env = TestEnv::new();
    let video = env.footage().join("cam1.mp4");
    let scenes = render_scene_video(
        &video,
        &[
            "testsrc2",
            "smptehdbars",
            "mandelbrot",
            "rgbtestsrc",
            "color",
            "gradients",
        ],
        10.0,
    )
    .unwrap();
    let source = source_id(&video);

    let mut d = env.start("sample_interval = 1.0\n");
    d.ingest_wait(&[&video]);

    let status = d.cli_json(&["status"]);
    assert_eq!(status["protocol"], 1);
    assert_eq!(status["model"]["dim"], 64);
    let s = source_status(&status, &source);
    assert_eq!(s["state"], "done", "{status}");
    let frames = s["frames"].as_u64().unwrap();
    assert!(
        (59..=61).contains(&frames),
        "60 s at 1 frame/s gave {frames} frames"
    );
    assert_eq!(status["frames"].as_u64().unwrap(), frames);

    // An image query made from a frame at a known time finds that source and time.
    for (t, scene) in [(35.0, 3usize), (14.0, 1)] {
        let png = env.dir().join(format!("probe-{t}.png"));
        extract_frame(&video, t, &png).unwrap();
        let r = d.cli_json(&["search", "--image", png.to_str().unwrap(), "-k", "3"]);
        let top = &r["clips"][0];
        assert_eq!(top["source"], source.as_str(), "{r}");
        let (start, end, best) = (
            top["start_ms"].as_u64().unwrap(),
            top["end_ms"].as_u64().unwrap(),
            top["best_ms"].as_u64().unwrap(),
        );
        let at = (t * 1000.0) as u64;
        assert!(
            start <= at && at <= end,
            "clip {start}..{end} does not contain {at}: {r}"
        );
        let sc = &scenes[scene];
        assert!(
            (sc.start * 1000.0) as u64 <= best && best < (sc.end * 1000.0) as u64,
            "best frame {best} outside scene {sc:?}: {r}"
        );
        assert!(
            top["score"].as_f64().unwrap() > 0.99,
            "an identical frame should score ~1: {r}"
        );
    }

    // A text query answers with clips, best first.
    let r = d.cli_json(&["search", "a red car", "-k", "5"]);
    let clips = r["clips"].as_array().unwrap();
    assert!(!clips.is_empty());
    assert!(
        clips
            .windows(2)
            .all(|w| w[0]["score"].as_f64() >= w[1]["score"].as_f64()),
        "{r}"
    );

    // The same unchanged file is not ingested twice.
    let again = d.cli_json(&["ingest", video.to_str().unwrap()]);
    assert_eq!(again["outcomes"][0]["result"], "unchanged", "{again}");
    assert_eq!(d.cli_json(&["status"])["frames"].as_u64().unwrap(), frames);

    // SIGTERM: exit 0, socket removed.
    assert_eq!(d.stop(), Some(0), "{}", d.log_text());
    assert!(!d.socket.exists(), "socket left behind");

    // The stored timestamps, read from the real database: one per second by PTS.
    {
        let store = Store::open(&env.dir().join("state/db")).unwrap();
        let rec = store.source(&source).unwrap().unwrap();
        let offsets: Vec<u64> = store
            .source_keys(rec.no)
            .unwrap()
            .into_iter()
            .filter(|&k| key_view(k) == 0)
            .map(|k| split_key(k).1)
            .collect();
        assert_eq!(offsets.len() as u64, frames);
        for (i, ms) in offsets.iter().enumerate() {
            let target = i as u64 * 1000;
            assert!(
                *ms >= target && *ms < target + 34,
                "sample {i} at {ms} ms (29.97 fps, 1 s interval)"
            );
        }
        assert!(
            store.pending_keys().unwrap().is_empty(),
            "a clean stop checkpoints the index"
        );
    }

    // Restart: the same index with the same count, and searches still work.
    let d2 = env.start("sample_interval = 1.0\n");
    let stats = d2.cli_json(&["stats"]);
    assert_eq!(stats["frames"].as_u64().unwrap(), frames);
    assert_eq!(
        stats["indexed"], stats["views"],
        "every view is indexed: {stats}"
    );
    assert!(d2.log_text().contains("index loaded"), "{}", d2.log_text());
    let png = env.dir().join("probe-35.png");
    let r = d2.cli_json(&["search", "--image", png.to_str().unwrap()]);
    assert_eq!(r["clips"][0]["source"], source.as_str());
}
