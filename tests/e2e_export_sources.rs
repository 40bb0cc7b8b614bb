//! Reading footage back (`export`, `frame`, `search --html`) for every kind of source that
//! has a file, on the real daemon: a camera folder's file (`NAME/relative/path`), a watched
//! folder's file, a followed file (`ingest --follow`), a camera whose url is a file (read as
//! it grows), and the clear `not_recorded` error for a live stream.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use frameseek::protocol::{FrameRequest, Request};

/// `frame` of `source` at `at_ms`: the reply, or the error code.
fn frame(d: &DaemonGuard, source: &str, at_ms: u64) -> Result<serde_json::Value, String> {
    d.client()
        .call(&Request::Frame(FrameRequest {
            source: source.to_string(),
            at_ms,
            max_width: Some(160),
            node: None,
        }))
        .map_err(|e| e.to_string())
}

/// `frameseek export --source SOURCE --from 1 --to 2` succeeds and writes a playable clip
/// and a thumbnail; `frame` at 1 s returns a 160x120 picture.
fn assert_reads_back(d: &DaemonGuard, source: &str) {
    let out = d.cli(&[
        "--json", "export", "--source", source, "--from", "1", "--to", "2",
    ]);
    assert!(
        out.status.success(),
        "export of {source}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log_text()
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = &v["exports"][0];
    assert_eq!(e["source"], source, "{v}");
    for file in [&e["clip"], &e["thumbnail"]] {
        let len = std::fs::metadata(file.as_str().unwrap()).unwrap().len();
        assert!(len > 1000, "{file} is {len} bytes");
    }
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
        .arg("-show_entries")
        .args(["stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(e["clip"].as_str().unwrap())
        .output()
        .unwrap();
    let counted = String::from_utf8_lossy(&probe.stdout);
    let packets: u64 = counted
        .trim()
        .trim_end_matches(',')
        .parse()
        .unwrap_or_else(|_| panic!("ffprobe: {counted:?} {probe:?}"));
    assert!(packets >= 25, "{packets} packets in the clip of {source}");
    let f = frame(d, source, 1000).unwrap_or_else(|e| panic!("frame of {source}: {e}"));
    assert_eq!(
        (&f["width"], &f["height"]),
        (&160.into(), &120.into()),
        "{f}"
    );
    // `search --html` shows a thumbnail of every clip of the source (through `frame`).
    let page = d.dir.join("page.html");
    let args = ["search", "a test pattern", "--source", source, "-k", "3"];
    let clips = d.cli_json(&args)["clips"].as_array().unwrap().len();
    assert!(clips > 0);
    let out = d.cli(&[&args[..], &["--html", page.to_str().unwrap()]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "{stderr}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(
        html.matches("<img src=\"data:image/jpeg;base64,").count(),
        clips,
        "{html}"
    );
    assert!(!html.contains("no thumbnail"));
}

#[test]
fn a_camera_folders_file_is_exported_and_shown() {
    let env = TestEnv::new();
    let folder = env.footage().join("yard");
    let file = folder.join("day1/a.mp4");
    test_pattern_video(&file, 4);
    let d = env.start(&format!(
        "watch_interval = 0.3\n\n[[cameras]]\nname = \"yard\"\nurl = {:?}\n",
        folder.display().to_string()
    ));
    let id = "yard/day1/a.mp4";
    let status = wait_finished(&d, &[id]);
    assert_eq!(source_status(&status, id)["state"], "done", "{status}");
    assert_reads_back(&d, id);
}

#[test]
fn a_watched_folders_file_is_exported_and_shown() {
    let env = TestEnv::new();
    let watched = env.footage().join("nvr");
    std::fs::create_dir_all(&watched).unwrap();
    let d = env.start(&format!(
        "watch = [{:?}]\nwatch_interval = 0.3\n",
        watched.display().to_string()
    ));
    let staging = env.dir().join("seg.mp4");
    test_pattern_video(&staging, 4);
    let target = watched.join("seg.mp4");
    std::fs::rename(&staging, &target).unwrap();
    let id = source_id(&target);
    let status = wait_finished(&d, &[&id]);
    assert_eq!(source_status(&status, &id)["state"], "done", "{status}");
    assert_reads_back(&d, &id);
}

#[test]
fn a_followed_file_is_exported_once_complete_and_a_later_change_is_caught() {
    let env = TestEnv::new();
    // Matroska: a container that can be read while it is written.
    let file = env.footage().join("follow.mkv");
    test_pattern_video(&file, 4);
    let d = env.start("sample_interval = 0.5\nlive_timeout = 1.0\n");
    let out = d.cli(&["ingest", "--follow", "--wait", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log_text()
    );
    let id = source_id(&file);
    let status = d.cli_json(&["status"]);
    let s = source_status(&status, &id);
    assert_eq!(s["state"], "done", "{s}");
    assert!(s["frames"].as_u64() >= Some(6), "{s}");
    assert_reads_back(&d, &id);
    // The complete file's size and time were recorded: a change after it was indexed is
    // refused, as for any file.
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(&[0u8; 188])
        .unwrap();
    let e = frame(&d, &id, 1000).unwrap_err();
    assert!(e.contains("source_changed"), "{e}");
    let out = d.cli(&["export", "--source", &id, "--from", "1", "--to", "2"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("changed since it was indexed"), "{stderr}");
}

#[test]
fn a_camera_whose_url_is_a_file_is_exported_under_its_name() {
    let env = TestEnv::new();
    let file = env.footage().join("door/live.mkv");
    test_pattern_video(&file, 4);
    let d = env.start(&format!(
        "sample_interval = 0.5\nlive_timeout = 1.0\n\n[[cameras]]\nname = \"door\"\nurl = {:?}\n",
        file.display().to_string()
    ));
    let status = wait_finished(&d, &["door"]);
    assert_eq!(source_status(&status, "door")["state"], "done", "{status}");
    assert_reads_back(&d, "door");
}

#[test]
fn a_live_stream_has_nothing_recorded_and_says_so() {
    let env = TestEnv::new();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = env.start(&format!(
        "sample_interval = 0.5\nlive_timeout = 2.0\n\n[[cameras]]\nname = \"gate\"\nurl = \"udp://127.0.0.1:{port}\"\n"
    ));
    let url = format!("udp://127.0.0.1:{port}?pkt_size=1316");
    let _sender = Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi"])
            .args(["-i", "testsrc2=s=160x120:r=10", "-c:v", "mpeg2video"])
            .args(["-g", "5", "-f", "mpegts", &url])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = d.cli_json(&["status"]);
        if source_status(&status, "gate")["frames"].as_u64() > Some(1) {
            break;
        }
        assert!(Instant::now() < deadline, "{status}\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    let e = frame(&d, "gate", 0).unwrap_err();
    assert!(e.contains("not_recorded"), "{e}");
    let out = d.cli(&["export", "--source", "gate", "--from", "0", "--to", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("gate is a live stream") && stderr.contains("nothing to export"),
        "{stderr}"
    );
    // The raw reply carries the documented code.
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    use std::io::{BufRead, Write};
    s.write_all(b"{\"op\":\"frame\",\"source\":\"gate\",\"at_ms\":0}\n")
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(&s).read_line(&mut line).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["error"]["code"], "not_recorded", "{v}");
}
