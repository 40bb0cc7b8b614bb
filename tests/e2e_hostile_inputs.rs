//! Hostile input against the real daemon (issue 15): files whose metadata once panicked a
//! decode worker. No input may kill a worker: every source ends `done` or `failed` with a
//! reason, the sources queued behind them are read, and `status` reports a healthy pipeline.

mod common;

use std::time::{Duration, Instant};

use common::*;
use frameseek::devkit::samples::render_scene_video;

/// Polls `status` until every source is done or failed, for at most `limit`; panics with the
/// last status (and the daemon's log) when some source is still queued or ingesting.
fn wait_terminal(d: &DaemonGuard, sources: &[&str], limit: Duration) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let status = d.cli_json(&["status"]);
        let finished = sources.iter().all(|s| {
            status["sources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["source"] == *s && (x["state"] == "done" || x["state"] == "failed"))
        });
        if finished {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "sources still not finished after {limit:?} (a decode worker died?): {status}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn multibyte_creation_time_kills_no_worker_and_later_files_are_read() {
    let env = TestEnv::new();
    let dir = env.footage();
    // Two files whose `creation_time` has a multi-byte fraction: before issue 15 each one
    // panicked a decode worker outside its guard, so two of them killed both workers.
    let mut hostile = Vec::new();
    for (name, stamp) in [
        ("a.nut", "2024-01-01T00:00:00.éé"),
        ("b.nut", "2024-01-01T00:00:00.1€"),
    ] {
        let path = dir.join(name);
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=3:size=320x240:rate=10",
            "-metadata",
            &format!("creation_time={stamp}"),
            path.to_str().unwrap(),
        ]);
        hostile.push(path);
    }
    let good = dir.join("later.mp4");
    render_scene_video(&good, &["testsrc2", "smptehdbars"], 3.0).unwrap();

    let d = env.start("decode_workers = 2");
    let hostile_args: Vec<&str> = hostile.iter().map(|p| p.to_str().unwrap()).collect();
    let mut args = vec!["ingest"];
    args.extend(&hostile_args);
    let out = d.cli(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Queued behind the hostile files, once their workers had taken them.
    std::thread::sleep(Duration::from_millis(500));
    let out = d.cli(&["ingest", good.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let ids: Vec<String> = hostile
        .iter()
        .chain(std::iter::once(&good))
        .map(|p| source_id(p))
        .collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let status = wait_terminal(&d, &id_refs, Duration::from_secs(120));

    // The unreadable creation time is ignored (the file's mtime is its wall clock instead);
    // the video itself is fine, so every file is indexed.
    for id in &id_refs {
        let s = source_status(&status, id);
        assert_eq!(s["state"], "done", "{id}: {s}\n{}", d.log_text());
        assert!(s["frames"].as_u64().unwrap() > 0, "{id}: {s}");
        assert!(s["start_wall"].is_string(), "{id}: {s}");
    }
    let pipeline = &status["pipeline"];
    assert_eq!(pipeline["stalled"], false, "{status}");
    assert!(pipeline["reason"].is_null(), "{status}");
    assert_eq!(pipeline["decode_workers"], 2, "{status}");
    assert_eq!(pipeline["decode_workers_alive"], 2, "{status}");
    assert_eq!(pipeline["worker_restarts"], 0, "{status}");
    assert!(!d.log_text().contains("panicked"), "{}", d.log_text());

    // The human table says nothing alarming about a healthy pipeline.
    let out = d.cli(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("STALLED"), "{text}");
}

/// `frameseek demo` with a model that cannot find anything: it must fail, not print a poor
/// recall and exit 0, and it must say loudly that the model is the random one.
#[test]
fn demo_fails_when_recall_misses_its_target() {
    let work = tempfile::Builder::new()
        .prefix("fs-demo-")
        .tempdir_in("/tmp")
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_frameseek"))
        .arg("demo")
        .arg("--model")
        .arg(test_model())
        .arg("--dir")
        .arg(work.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("demo failed: recall@5"), "{stderr}");
    assert!(stderr.contains("RANDOM weights"), "{stderr}");
    assert!(stdout.contains("MISSED"), "{stdout}");
    assert!(stdout.contains("RANDOM weights"), "{stdout}");
}

#[test]
fn a_fifo_named_like_a_video_is_refused_and_holds_no_worker() {
    let env = TestEnv::new();
    let fifo = env.footage().join("trap.mp4");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let good = env.footage().join("good.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=duration=3:size=160x120:rate=10",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        good.to_str().unwrap(),
    ]);
    // One decode worker: a FIFO it opened would block it until something wrote to it.
    let d = env.start("decode_workers = 1\n");
    for args in [vec!["ingest"], vec!["ingest", "--follow"]] {
        let mut args = args.clone();
        args.push(fifo.to_str().unwrap());
        let out = d.cli(&args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{args:?}: {text}");
        assert!(text.contains("not a regular file"), "{args:?}: {text}");
    }
    assert!(d.cli(&["ingest", good.to_str().unwrap()]).status.success());
    let id = source_id(&good);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let status = d.cli_json(&["status"]);
        if source_status(&status, &id)["state"] == "done" {
            assert!(
                status["sources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|s| !s["source"].as_str().unwrap().ends_with("trap.mp4")),
                "{status}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the only worker is held: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_decode_worker_that_reads_nothing_is_reported_hung_with_its_file() {
    // A read that never returns (a dead network mount) is made here by a file that becomes
    // a FIFO after it was admitted: the only decode worker, busy with a longer file first,
    // then opens the FIFO and blocks. No thread dies, so only the stall watch can tell.
    let env = TestEnv::new();
    let long = env.footage().join("long.mp4");
    test_pattern_video(&long, 20);
    let victim = env.footage().join("victim.mp4");
    test_pattern_video(&victim, 2);
    let d = env.start("decode_workers = 1\nstall_after = 2.0\nsample_interval = 0.2\n");
    let out = d.cli_json(&["ingest", long.to_str().unwrap(), victim.to_str().unwrap()]);
    assert!(
        out["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["result"] == "queued"),
        "{out}"
    );
    // Swapped while the worker is still on the long file.
    std::fs::remove_file(&victim).unwrap();
    let c = std::ffi::CString::new(victim.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let long_id = source_id(&long);
    let victim_id = source_id(&victim);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        let status = d.cli_json(&["status"]);
        let reason = status["pipeline"]["reason"].as_str().unwrap_or("");
        if status["pipeline"]["stalled"] == true && reason.contains("victim.mp4") {
            break status;
        }
        assert!(Instant::now() < deadline, "never reported: {status}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        source_status(&status, &long_id)["state"],
        "done",
        "{status}"
    );
    let reason = status["pipeline"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("read nothing") && reason.contains("hung"),
        "{reason}"
    );
    // The table says it too, and the exit code tells a health probe.
    let table = d.cli(&["status"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("INGEST STALLED") && text.contains("victim.mp4"),
        "{text}"
    );
    // Unblocked (writers open the FIFO and go away, each time the worker opens it), the
    // worker recovers: the source fails (nothing decodable) and the pipeline is not stalled.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&victim);
        let status = d.cli_json(&["status"]);
        if status["pipeline"]["stalled"] == false
            && source_status(&status, &victim_id)["state"] == "failed"
        {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered: {status}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_daemon_with_a_hung_decode_worker_still_stops() {
    let env = TestEnv::new();
    let victim = env.footage().join("victim.mp4");
    test_pattern_video(&victim, 2);
    let long = env.footage().join("long.mp4");
    test_pattern_video(&long, 10);
    let mut d = env.start("decode_workers = 1\nstall_after = 1.0\nsample_interval = 0.2\n");
    d.cli_json(&["ingest", long.to_str().unwrap(), victim.to_str().unwrap()]);
    std::fs::remove_file(&victim).unwrap();
    let c = std::ffi::CString::new(victim.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    // Blocked in the FIFO: the stall watch (1 s here) names it.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = d.cli_json(&["status"]);
        let reason = status["pipeline"]["reason"].as_str().unwrap_or("");
        if reason.contains("victim.mp4") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker never took the FIFO: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stopping = Instant::now();
    assert_eq!(d.stop(), Some(0), "{}", d.log_text());
    assert!(stopping.elapsed() < Duration::from_secs(20));
    assert!(
        d.log_text()
            .contains("blocked in a read that does not return"),
        "{}",
        d.log_text()
    );
}
