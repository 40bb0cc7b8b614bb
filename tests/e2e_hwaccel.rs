//! Issue 9: `ingest.hwaccel = "cuda"` on a machine where FFmpeg cannot open a CUDA device
//! (no GPU, or a build without it) decodes every source in software, logs why, and gives the
//! same frames as `hwaccel = "none"`.

mod common;

use common::*;
use frameseek::devkit::samples::render_scene_video;

fn ingest_frames(hwaccel: &str) -> (u64, String) {
    let env = TestEnv::new();
    let video = env.footage().join("hw.mp4");
    render_scene_video(&video, &["testsrc2", "smptehdbars"], 4.0).unwrap();
    let source = video.canonicalize().unwrap().display().to_string();
    let mut d = env.start(&format!("sample_interval = 1.0\nhwaccel = \"{hwaccel}\"\n"));
    let out = d.cli(&["ingest", "--wait", video.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "ingest failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log_text()
    );
    let status = d.cli_json(&["status"]);
    let s = source_status(&status, &source);
    assert_eq!(s["state"], "done", "{status}\n{}", d.log_text());
    let frames = s["frames"].as_u64().unwrap();
    let log = d.log_text();
    d.stop();
    (frames, log)
}

#[test]
fn cuda_hwaccel_without_a_gpu_falls_back_to_software_and_says_so() {
    let gpu = std::path::Path::new("/dev/nvidia0").exists();
    let (software, _) = ingest_frames("none");
    let (hardware, log) = ingest_frames("cuda");
    assert_eq!(software, hardware, "{log}");
    assert!(
        (7..=9).contains(&software),
        "8 s at 1 frame/s gave {software}"
    );
    if !gpu {
        assert!(
            log.contains("hardware decoding unavailable, decoding in software"),
            "{log}"
        );
    }
}
