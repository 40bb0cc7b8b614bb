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
    let d = env.start("time_pattern = \"%Y-%m-%d/%H-%M-%S\"\ntime_zone = \"UTC\"\n");
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
    let bad = d.cli(&["search", "x", "--after", "next tuesday"]);
    assert_eq!(bad.status.code(), Some(2), "a bad time is an error");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--since"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn glob_source_filters_return_full_pages_from_the_matching_sources_only() {
    let env = TestEnv::new();
    let lobby = env.footage().join("site/lobby");
    let garage = env.footage().join("site/garage");
    std::fs::create_dir_all(&lobby).unwrap();
    std::fs::create_dir_all(&garage).unwrap();
    let make = |path: &std::path::Path, src: &str, secs: u32| {
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &format!("{src}=s=160x120:r=5:d={secs}"),
            "-c:v",
            "libx264",
            path.to_str().unwrap(),
        ]);
    };
    let cam1 = env.footage().join("cam1.mp4");
    let cam2 = env.footage().join("cam2.mp4");
    let other = env.footage().join("other.mp4");
    let door = lobby.join("door.mp4");
    let gate = garage.join("gate.mp4");
    make(&cam1, "testsrc2", 60);
    make(&cam2, "yuvtestsrc", 60);
    make(&other, "testsrc", 60);
    make(&gate, "smptebars", 60);
    make(&door, "rgbtestsrc", 12);
    // Every frame its own clip (gap below the sample interval).
    let d = env.start("clip_gap = 0.1\n");
    d.ingest_wait(&[&env.footage()]);
    assert_eq!(d.cli_json(&["status"])["frames"], 252);
    let search = |pattern: &str, k: usize| -> Vec<serde_json::Value> {
        let r = d.cli_json(&[
            "search",
            "anything",
            "-k",
            &k.to_string(),
            "--source",
            pattern,
        ]);
        r["clips"].as_array().unwrap().clone()
    };
    let sources = |clips: &[serde_json::Value]| -> std::collections::BTreeSet<String> {
        clips
            .iter()
            .map(|c| c["source"].as_str().unwrap().to_string())
            .collect()
    };
    // File-name glob: 120 of 252 frames match (the filtered graph search), full page.
    let cams: std::collections::BTreeSet<String> =
        [source_id(&cam1), source_id(&cam2)].into_iter().collect();
    let clips = search("cam*", 40);
    assert_eq!(clips.len(), 40, "{clips:?}");
    assert!(sources(&clips).is_subset(&cams), "{clips:?}");
    // All 120 matching frames (each its own clip, whatever its views) are both cameras'.
    let clips = search("cam*", 120);
    assert_eq!(clips.len(), 120, "{clips:?}");
    assert_eq!(sources(&clips), cams);
    let clips = search("cam[2].mp4", 10);
    assert_eq!(clips.len(), 10);
    assert_eq!(sources(&clips), [source_id(&cam2)].into_iter().collect());
    // Whole-id glob across folders: 12 of 252 frames (the exact path), full page.
    let clips = search("*/lobby/*.mp4", 10);
    assert_eq!(clips.len(), 10, "{clips:?}");
    assert_eq!(sources(&clips), [source_id(&door)].into_iter().collect());
    let clips = search("*/site/*", 70);
    assert_eq!(clips.len(), 70);
    assert_eq!(
        sources(&clips),
        [source_id(&door), source_id(&gate)].into_iter().collect()
    );
    // A prefix still works, and fewer matches than k give all of them.
    let prefix = format!("{}/*", env.footage().canonicalize().unwrap().display());
    assert_eq!(search(&prefix, 300).len(), 252);
    assert_eq!(search("*/lobby/*", 50).len(), 12);
    assert!(search("*.mkv", 10).is_empty());
    // The same filter over the socket protocol.
    let mut c = d.client();
    let reply = c
        .call(&frameseek::protocol::Request::Search(
            frameseek::protocol::SearchRequest {
                text: Some("x".into()),
                k: Some(5),
                source: Some("*/garage/gate.mp4".into()),
                ..Default::default()
            },
        ))
        .unwrap();
    let clips = reply["clips"].as_array().unwrap();
    assert_eq!(clips.len(), 5, "{reply}");
    assert!(clips
        .iter()
        .all(|c| c["source"] == source_id(&gate).as_str()));
}

#[test]
fn each_camera_folder_reads_its_segment_names_in_its_own_time_zone() {
    let env = TestEnv::new();
    // The same segment name from two recorders: one in Paris (the camera's own zone), one
    // in the daemon's zone (UTC). 03:00 in Paris on 2026-11-27 is 02:00 UTC.
    for camera in ["paris", "here"] {
        test_pattern_video(
            &env.footage().join(camera).join("2026-11-27/03-00-00.mp4"),
            2,
        );
    }
    let folder = |camera: &str| env.footage().join(camera).display().to_string();
    let d = env.start(&format!(
        "time_pattern = \"%Y-%m-%d/%H-%M-%S\"\ntime_zone = \"UTC\"\nwatch_interval = 0.3\n\n\
         [[cameras]]\nname = \"paris\"\nurl = {:?}\ntime_zone = \"Europe/Paris\"\n\n\
         [[cameras]]\nname = \"here\"\nurl = {:?}\n",
        folder("paris"),
        folder("here")
    ));
    let (paris, here) = (
        "paris/2026-11-27/03-00-00.mp4",
        "here/2026-11-27/03-00-00.mp4",
    );
    let status = wait_finished(&d, &[paris, here]);
    assert_eq!(
        source_status(&status, paris)["start_wall"],
        "2026-11-27T02:00:00.000Z",
        "{status}"
    );
    assert_eq!(
        source_status(&status, here)["start_wall"],
        "2026-11-27T03:00:00.000Z",
        "{status}"
    );
}
