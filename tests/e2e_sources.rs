//! Sources and time on the real daemon: watched folders, the keyframes and scene sampling
//! policies, and wall-clock time from the path or the container.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn a_file_dropped_into_a_watched_folder_is_indexed() {
    let env = TestEnv::new();
    let watched = env.footage().join("nvr");
    std::fs::create_dir_all(&watched).unwrap();
    let d = env.start(&format!(
        "watch = [{:?}]\nwatch_interval = 0.3\n",
        watched.display().to_string()
    ));
    // Written elsewhere, then moved in whole (as an NVR closes a segment).
    let staging = env.dir().join("seg.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=4",
        "-c:v",
        "libx264",
        staging.to_str().unwrap(),
    ]);
    let target = watched.join("seg.mp4");
    std::fs::rename(&staging, &target).unwrap();
    let status = wait_finished(&d, &[&source_id(&target)]);
    let s = source_status(&status, &source_id(&target));
    assert_eq!(
        (s["state"].as_str(), s["frames"].as_u64()),
        (Some("done"), Some(4)),
        "{status}"
    );
    // Still there after more scans: not ingested twice.
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(d.cli_json(&["status"])["frames"], 4);
}

#[test]
fn scene_sampling_skips_a_still_camera_but_not_a_busy_one() {
    let env = TestEnv::new();
    let still = env.footage().join("still.mp4");
    let busy = env.footage().join("busy.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=gray:s=320x240:r=25:d=30",
        "-c:v",
        "libx264",
        still.to_str().unwrap(),
    ]);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "mandelbrot=s=320x240:r=25",
        "-t",
        "30",
        "-c:v",
        "libx264",
        busy.to_str().unwrap(),
    ]);
    let d = env.start("sampling = \"scene\"\nscene_threshold = 0.02\nscene_max_gap = 10.0\n");
    d.cli_json(&["ingest", still.to_str().unwrap(), busy.to_str().unwrap()]);
    let status = wait_finished(&d, &[&source_id(&still), &source_id(&busy)]);
    let s = source_status(&status, &source_id(&still));
    assert_eq!(
        s["frames"], 3,
        "a still scene is kept once per max gap (0, 10, 20 s): {s}"
    );
    assert_eq!(s["skipped"], 27, "{s}");
    // 750 frames; non-reference frames far from a sample target are not decoded at all.
    let decoded = s["decoded"].as_u64().unwrap();
    assert!((30..=750).contains(&decoded), "{s}");
    let b = source_status(&status, &source_id(&busy));
    assert!(
        b["frames"].as_u64().unwrap() >= 20,
        "a changing scene is kept: {b}"
    );
}

#[test]
fn keyframe_sampling_decodes_only_keyframes() {
    let env = TestEnv::new();
    let video = env.footage().join("gop.mp4");
    // 20 s at 25 fps with a keyframe every 2 s.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=20",
        "-c:v",
        "libx264",
        "-g",
        "50",
        "-keyint_min",
        "50",
        "-sc_threshold",
        "0",
        video.to_str().unwrap(),
    ]);
    let d = env.start("sampling = \"keyframes\"\n");
    d.ingest_wait(&[&video]);
    let status = d.cli_json(&["status"]);
    let s = source_status(&status, &source_id(&video));
    assert_eq!(s["frames"], 10, "{s}");
    assert!(
        s["decoded"].as_u64().unwrap() <= 12,
        "only keyframes decoded: {s}"
    );
}

#[test]
fn wall_clock_time_comes_from_the_path_or_the_container() {
    let env = TestEnv::new();
    let day = env.footage().join("cam1/2026-11-27");
    std::fs::create_dir_all(&day).unwrap();
    let named = day.join("03-00-00.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=10",
        "-c:v",
        "libx264",
        named.to_str().unwrap(),
    ]);
    let tagged = env.footage().join("export.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "smptehdbars=s=320x240:r=25:d=10",
        "-c:v",
        "libx264",
        "-metadata",
        "creation_time=2025-01-02T10:00:00Z",
        tagged.to_str().unwrap(),
    ]);
    let d = env.start("time_pattern = \"%Y-%m-%d/%H-%M-%S\"\n");
    d.ingest_wait(&[&env.footage()]);
    let status = d.cli_json(&["status"]);
    assert_eq!(
        source_status(&status, &source_id(&named))["start_wall"],
        "2026-11-27T03:00:00.000Z"
    );
    assert_eq!(
        source_status(&status, &source_id(&tagged))["start_wall"],
        "2025-01-02T10:00:00.000Z"
    );

    let r = d.cli_json(&[
        "search",
        "anything",
        "-k",
        "20",
        "--after",
        "2026-11-27T03:00:05Z",
        "--before",
        "2026-11-27T03:00:07Z",
    ]);
    let clips = r["clips"].as_array().unwrap();
    assert!(!clips.is_empty(), "{r}");
    for c in clips {
        assert_eq!(c["source"], source_id(&named).as_str(), "{r}");
        let best = c["best_ms"].as_u64().unwrap();
        assert!((5000..=7000).contains(&best), "{r}");
        assert!(
            c["start_wall"]
                .as_str()
                .unwrap()
                .starts_with("2026-11-27T03:00:0"),
            "{r}"
        );
    }
    let bad = d.cli(&["search", "x", "--after", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2), "a bad time is a usage error");
}
