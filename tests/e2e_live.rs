//! Live sources on the real daemon: an MPEG-TS camera over loopback UDP that is cut and
//! restored (and resumes after a restart), an HLS stream served over loopback HTTP, and a
//! file that grows while it is read.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use frameseek::store::{key_view, split_key, Store};

/// Sampling interval of the live tests, ms.
const INTERVAL_MS: u64 = 500;

fn kill(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Polls `status` until `pred` holds for the source's entry (`within`), returning it.
fn wait_for(
    d: &DaemonGuard,
    source: &str,
    within: Duration,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let entry = |status: &serde_json::Value| {
        status["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["source"] == source)
            .cloned()
    };
    let status = wait_status(d, within, what, |status| {
        entry(status).is_some_and(|s| pred(&s))
    });
    entry(&status).unwrap()
}

/// Stored frame offsets of a source (the daemon must be stopped).
fn stored_offsets(state: &Path, source: &str) -> (Vec<u64>, i64) {
    let store = Store::open(&state.join("db")).unwrap();
    let rec = store.source(source).unwrap().unwrap();
    let offsets = store
        .source_keys(rec.no)
        .unwrap()
        .into_iter()
        .filter(|&k| key_view(k) == 0)
        .map(|k| split_key(k).1)
        .collect();
    (offsets, rec.start_wall_ms.unwrap())
}

/// Asserts that a run of frame times (ms) is sampled every `INTERVAL_MS` (10 fps input:
/// each sample is the first frame at or after its target, so gaps are within a frame) and
/// returns how many there are.
fn assert_sampled(walls: &[i64], what: &str) -> usize {
    for w in walls.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            (INTERVAL_MS as i64 - 150..=INTERVAL_MS as i64 + 150).contains(&gap),
            "{what}: gap {gap} ms between samples: {walls:?}"
        );
    }
    walls.len()
}

#[test]
fn a_udp_camera_that_drops_reconnects_reports_the_outage_and_resumes_after_a_restart() {
    let env = TestEnv::new();
    let port = free_port();
    let ingest = format!(
        "sample_interval = 0.5\nlive_timeout = 1.5\nreconnect_max = 1.0\n\n[[cameras]]\nname = \"gate\"\nurl = \"udp://127.0.0.1:{port}\"\n"
    );
    let sender = send_udp(port);
    let mut d = env.start(&ingest);
    let first = wait_for(&d, "gate", Duration::from_secs(15), "no frames", |s| {
        s["frames"].as_u64() >= Some(1) && s["live"]["connected"] == true
    });
    assert_eq!(first["state"], "ingesting");
    assert_eq!(first["live"]["camera"], true);
    std::thread::sleep(Duration::from_secs(5));
    drop(sender);
    let cut_ms = now_ms();
    // The drop is noticed within live_timeout and reported as an open outage.
    let down = wait_for(&d, "gate", Duration::from_secs(8), "no outage", |s| {
        s["live"]["outages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["end"].is_null())
    });
    assert_eq!(down["live"]["connected"], false, "{down}");
    // The daemon keeps answering searches while a camera is down.
    let found = d.cli_json(&["search", "a test pattern", "-k", "3", "--source", "gate"]);
    assert!(!found["clips"].as_array().unwrap().is_empty(), "{found}");
    std::thread::sleep(Duration::from_secs(1));
    let restore_ms = now_ms();
    let _sender = send_udp(port);
    let up = wait_for(&d, "gate", Duration::from_secs(10), "no reconnect", |s| {
        s["live"]["connected"] == true && s["live"]["reconnects"].as_u64() >= Some(1)
    });
    std::thread::sleep(Duration::from_secs(5));
    let outages: Vec<serde_json::Value> = up["live"]["outages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["start_ms"].as_i64().unwrap() >= cut_ms - 3000)
        .cloned()
        .collect();
    assert_eq!(outages.len(), 1, "one outage for the cut: {up}");
    let (o_start, o_end) = (
        outages[0]["start_ms"].as_i64().unwrap(),
        outages[0]["end_ms"].as_i64().unwrap(),
    );
    // It starts at the last data before the cut and ends when frames came again.
    assert!((cut_ms - 1500..=cut_ms + 500).contains(&o_start), "{up}");
    assert!(o_end >= restore_ms && o_end <= restore_ms + 8000, "{up}");
    assert!(outages[0]["start"].as_str().unwrap().ends_with('Z'), "{up}");
    // FFmpeg's reason, and that nothing came for live_timeout.
    assert!(
        outages[0]["reason"]
            .as_str()
            .unwrap()
            .contains("no data for"),
        "{up}"
    );

    // A clean stop; then the stored frames: two runs sampled every 500 ms around the outage.
    assert_eq!(d.stop(), Some(0));
    let (offsets, start_wall) = stored_offsets(&env.dir().join("state"), "gate");
    assert!(offsets.windows(2).all(|w| w[0] < w[1]));
    let walls: Vec<i64> = offsets.iter().map(|o| start_wall + *o as i64).collect();
    // One gap in the stored frames, and it spans the outage.
    let gaps: Vec<usize> = (1..walls.len())
        .filter(|&i| walls[i] - walls[i - 1] > 2000)
        .collect();
    assert_eq!(gaps.len(), 1, "{walls:?}");
    let (before, after) = walls.split_at(gaps[0]);
    // (Frames FFmpeg buffered while probing the stream are stamped by PTS after the first
    // frame's arrival: up to a probe's length ahead of when they came.)
    assert!(
        before.last().unwrap() - o_start < 2000,
        "{o_start} {walls:?}"
    );
    assert!((after[0] - o_end).abs() < 200, "{o_end} {walls:?}");
    // About 6 s of stream before the cut, 5 s after the restore: 2 samples a second (the
    // first sample after the restore is the first frame; the grid then goes on).
    let n_before = assert_sampled(before, "before the cut");
    let n_after = 1 + assert_sampled(&after[1..], "after the restore");
    assert!(after[1] - after[0] <= INTERVAL_MS as i64, "{after:?}");
    assert!(
        (9..=18).contains(&n_before),
        "{n_before} before: {before:?}"
    );
    assert!((8..=13).contains(&n_after), "{n_after} after: {after:?}");

    // The camera resumes after a restart; its offsets go on after the stored ones.
    let d = env.start(&ingest);
    let last = *offsets.last().unwrap();
    wait_for(&d, "gate", Duration::from_secs(15), "no resume", |s| {
        s["live"]["connected"] == true && s["watermark_ms"].as_u64() > Some(last)
    });
}

#[test]
fn an_hls_stream_over_http_is_read_continuously_until_forgotten() {
    let env = TestEnv::new();
    let hls = env.dir().join("hls");
    std::fs::create_dir_all(&hls).unwrap();
    let playlist = hls.join("live.m3u8");
    let _writer = ffmpeg_re(
        "testsrc2=s=160x120:r=10",
        "libx264",
        "10",
        &[
            "-f",
            "hls",
            "-hls_time",
            "1",
            "-hls_list_size",
            "4",
            "-hls_flags",
            "delete_segments",
            playlist.to_str().unwrap(),
        ],
    );
    let (_server, port) = serve_http(&hls);
    // Socket clients may add streams only where the operator allows them.
    let d = env.start(
        "sample_interval = 0.5\nlive_timeout = 3.0\nreconnect_max = 1.0\nclient_streams = [\"http://127.0.0.1:\"]\n",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !hls.join("live.m3u8").exists() {
        assert!(Instant::now() < deadline, "ffmpeg wrote no playlist");
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = format!("http://127.0.0.1:{port}/live.m3u8");
    let out = d.cli_json(&["ingest", &url]);
    assert_eq!(out["outcomes"][0]["result"], "queued", "{out}");
    assert_eq!(out["outcomes"][0]["source"], url.as_str(), "{out}");
    let first = wait_for(&d, &url, Duration::from_secs(15), "no HLS frames", |s| {
        s["frames"].as_u64() >= Some(2)
    });
    let (f0, w0) = (
        first["frames"].as_u64().unwrap(),
        first["watermark_ms"].as_u64().unwrap(),
    );
    // Continuously: four more seconds bring about eight more samples, later in time.
    std::thread::sleep(Duration::from_secs(4));
    let later = wait_for(&d, &url, Duration::from_secs(5), "status", |_| true);
    let (f1, w1) = (
        later["frames"].as_u64().unwrap(),
        later["watermark_ms"].as_u64().unwrap(),
    );
    assert!(
        (5..=12).contains(&(f1 - f0)),
        "{f0} -> {f1} frames: {later}"
    );
    assert!(
        w1 > w0 && (w1 - w0) / INTERVAL_MS + 2 >= f1 - f0,
        "{w0} -> {w1}: {later}"
    );
    assert_eq!(later["live"]["connected"], true, "{later}");
    // forget stops the stream's thread and removes its frames.
    let gone = d.cli_json(&["forget", &url]);
    assert!(gone["frames_removed"].as_u64().unwrap() >= f1, "{gone}");
    std::thread::sleep(Duration::from_secs(1));
    let status = d.cli_json(&["status"]);
    assert_eq!(status["frames"], 0, "{status}");
    assert!(status["sources"].as_array().unwrap().is_empty(), "{status}");
    assert!(
        d.log_text().contains("live source stopped"),
        "{}",
        d.log_text()
    );
}

#[test]
fn a_growing_file_is_followed_until_it_stops_growing() {
    let env = TestEnv::new();
    let file = env.footage().join("growing.ts");
    // Six seconds of 10 fps MPEG-TS written in real time.
    let mut writer = ffmpeg_re(
        "testsrc2=s=160x120:r=10:d=6",
        "mpeg2video",
        "5",
        &[
            "-f",
            "mpegts",
            "-flush_packets",
            "1",
            file.to_str().unwrap(),
        ],
    );
    let d = env.start("sample_interval = 0.5\nlive_timeout = 2.0\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) < 10_000 {
        assert!(Instant::now() < deadline, "ffmpeg wrote nothing");
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    let mut cli = Command::new(env!("CARGO_BIN_EXE_frameseek"))
        .arg("--socket")
        .arg(&d.socket)
        .args(["ingest", "--follow", "--wait"])
        .arg(&file)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let ok = loop {
        if let Some(status) = cli.try_wait().unwrap() {
            break status.success();
        }
        if started.elapsed() > Duration::from_secs(30) {
            kill(&mut cli);
            panic!("ingest --follow --wait did not end: {}", d.log_text());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(ok, "{}", d.log_text());
    // It was read while written: the wait lasted until the writer finished.
    assert!(
        writer.0.try_wait().unwrap().is_some(),
        "ingest ended before the file did"
    );
    assert!(started.elapsed() >= Duration::from_secs(3));
    let status = d.cli_json(&["status"]);
    let s = source_status(&status, &source_id(&file));
    assert_eq!(s["state"], "done", "{s}");
    // 6 s at 2 samples a second: offsets 0, 500, ... 5500.
    assert_eq!(s["frames"], 12, "{s}");
    assert_eq!(s["watermark_ms"], 5500, "{s}");
    assert!(s["decoded"].as_u64() >= Some(55), "{s}");
    writer.0.wait().unwrap();
}
