//! Bad input against the real daemon: broken files, paths outside the roots, garbage and
//! oversized requests. Each gets a clear error; the daemon and the other sources go on.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;

use common::*;
use frameseek::devkit::samples::render_scene_video;

fn request(
    stream: &mut UnixStream,
    reader: &mut BufReader<UnixStream>,
    line: &[u8],
) -> serde_json::Value {
    stream.write_all(line).unwrap();
    stream.write_all(b"\n").unwrap();
    let mut reply = String::new();
    reader.read_line(&mut reply).unwrap();
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {reply:?}"))
}

#[test]
fn broken_files_fail_with_reasons_and_good_ones_are_indexed() {
    let env = TestEnv::new();
    let dir = env.footage();
    let good = dir.join("good.mp4");
    render_scene_video(&good, &["testsrc2", "smptehdbars"], 5.0).unwrap();
    // Truncated: the first half of an MP4 whose index (moov) is at the end.
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(dir.join("truncated.mp4"), &bytes[..bytes.len() / 2]).unwrap();
    // A transport stream cut in half still decodes up to the cut.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=10",
        "-c:v",
        "libx264",
        dir.join("whole.ts").to_str().unwrap(),
    ]);
    let ts = std::fs::read(dir.join("whole.ts")).unwrap();
    std::fs::write(dir.join("cut.ts"), &ts[..ts.len() / 2]).unwrap();
    std::fs::remove_file(dir.join("whole.ts")).unwrap();
    std::fs::write(dir.join("empty.mp4"), b"").unwrap();
    std::fs::write(
        dir.join("notes.mp4"),
        b"this is not a video at all\n".repeat(100),
    )
    .unwrap();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=3",
        dir.join("audio.mkv").to_str().unwrap(),
    ]);
    // Random bytes in the middle of a valid stream.
    let mut corrupt = std::fs::read(&good).unwrap();
    let mid = corrupt.len() / 2;
    for (i, b) in corrupt[mid..mid + 20_000].iter_mut().enumerate() {
        *b = (i * 31 % 251) as u8;
    }
    std::fs::write(dir.join("corrupt.mp4"), corrupt).unwrap();

    let d = env.start("sample_interval = 1.0\n");
    let reply = d.cli_json(&["ingest", dir.to_str().unwrap()]);
    let outcomes = reply["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 7, "{reply}");
    let canon = |name: &str| source_id(&dir.join(name));
    let names = [
        "good.mp4",
        "truncated.mp4",
        "cut.ts",
        "empty.mp4",
        "notes.mp4",
        "audio.mkv",
        "corrupt.mp4",
    ];
    let status = wait_finished(
        &d,
        &names
            .iter()
            .map(|n| canon(n))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );

    let good_s = source_status(&status, &canon("good.mp4"));
    assert_eq!(good_s["state"], "done", "{status}");
    assert_eq!(good_s["frames"], 10);
    let cut = source_status(&status, &canon("cut.ts"));
    assert_eq!(cut["state"], "done", "what decodes is indexed: {status}");
    assert!((3..=6).contains(&cut["frames"].as_u64().unwrap()), "{cut}");
    for (name, needle) in [
        ("truncated.mp4", "cannot open"),
        ("empty.mp4", "cannot open"),
        ("notes.mp4", "cannot open"),
        ("audio.mkv", "no video stream"),
    ] {
        let s = source_status(&status, &canon(name));
        assert_eq!(s["state"], "failed", "{name}: {s}");
        let error = s["error"].as_str().unwrap();
        assert!(
            error.contains(needle) && error.contains(name),
            "{name}: error {error:?} should name the file and say {needle:?}"
        );
    }
    let corrupt = source_status(&status, &canon("corrupt.mp4"));
    assert!(
        corrupt["frames"].as_u64().unwrap() >= 5,
        "frames around the damage are kept: {corrupt}"
    );

    // A failed file is not retried until it changes.
    let again = d.cli_json(&["ingest", dir.join("notes.mp4").to_str().unwrap()]);
    assert_eq!(again["outcomes"][0]["result"], "unchanged", "{again}");

    // The daemon still answers.
    let r = d.cli_json(&["search", "a test pattern", "-k", "3"]);
    assert!(!r["clips"].as_array().unwrap().is_empty());
}

#[test]
fn paths_outside_the_roots_are_refused() {
    let env = TestEnv::new();
    let outside = env.dir().join("outside.mp4");
    render_scene_video(&outside, &["testsrc2"], 2.0).unwrap();
    std::os::unix::fs::symlink(&outside, env.footage().join("link.mp4")).unwrap();
    let d = env.start("");
    let sneaky = format!("{}/../outside.mp4", env.footage().display());
    for path in [
        outside.to_str().unwrap(),
        sneaky.as_str(),
        env.footage().join("link.mp4").to_str().unwrap(),
        "/etc/passwd",
    ] {
        let out = d.cli(&["--json", "ingest", path]);
        assert_eq!(out.status.code(), Some(1), "{path}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["outcomes"][0]["result"], "error", "{path}: {v}");
        assert!(
            v["outcomes"][0]["message"]
                .as_str()
                .unwrap()
                .contains("outside the footage roots"),
            "{v}"
        );
    }
    let missing = d.cli_json(&["ingest", env.footage().join("nope.mp4").to_str().unwrap()]);
    assert_eq!(missing["outcomes"][0]["result"], "error");
    assert_eq!(
        d.cli_json(&["status"])["sources"].as_array().unwrap().len(),
        0
    );
}

#[test]
fn garbage_requests_get_error_codes_and_the_connection_lives_on() {
    let env = TestEnv::new();
    let d = env.start("");
    let mut stream = UnixStream::connect(&d.socket).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let cases: [(&[u8], &str); 12] = [
        (b"hello", "invalid_json"),
        (b"\xff\xfe\x00garbage", "invalid_json"),
        (b"{\"op\":", "invalid_json"),
        (b"[1,2,3]", "invalid_request"),
        (b"{}", "invalid_request"),
        (b"{\"op\":\"teleport\"}", "unknown_op"),
        (b"{\"op\":\"search\",\"text\":\"\"}", "empty_query"),
        (b"{\"op\":\"search\",\"text\":\"   \"}", "empty_query"),
        (
            b"{\"op\":\"search\",\"text\":\"x\",\"k\":0}",
            "invalid_request",
        ),
        (b"{\"op\":\"search\",\"text\":5}", "invalid_request"),
        (
            b"{\"op\":\"search\",\"image\":\"!!notbase64\"}",
            "bad_image",
        ),
        (b"{\"op\":\"forget\",\"source\":\"/nope\"}", "not_found"),
    ];
    for (line, code) in cases {
        let v = request(&mut stream, &mut reader, line);
        assert_eq!(v["ok"], false, "{v}");
        assert_eq!(
            v["error"]["code"],
            code,
            "{}: {v}",
            String::from_utf8_lossy(line)
        );
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    let v = request(&mut stream, &mut reader, b"{\"op\":\"status\",\"id\":42}");
    assert_eq!(
        (v["ok"].clone(), v["id"].clone()),
        (serde_json::Value::Bool(true), serde_json::Value::from(42))
    );

    // A half-sent line followed by a hang-up does not disturb the daemon.
    {
        let mut half = UnixStream::connect(&d.socket).unwrap();
        half.write_all(b"{\"op\":\"sta").unwrap();
    }
    // An oversized line gets `too_large` and the connection is closed.
    let mut big = UnixStream::connect(&d.socket).unwrap();
    let mut big_reader = BufReader::new(big.try_clone().unwrap());
    let payload = vec![b'x'; 17 * 1024 * 1024];
    let _ = big.write_all(&payload);
    let mut reply = String::new();
    big_reader.read_line(&mut reply).unwrap();
    let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(v["error"]["code"], "too_large");
    let mut rest = Vec::new();
    assert_eq!(
        big_reader.read_to_end(&mut rest).unwrap_or(0),
        0,
        "connection closed after too_large"
    );

    // And the daemon serves the next client.
    assert_eq!(d.cli_json(&["status"])["protocol"], 1);
}

#[test]
fn forget_removes_a_source_from_results() {
    let env = TestEnv::new();
    let a = env.footage().join("a.mp4");
    let b = env.footage().join("b.mp4");
    render_scene_video(&a, &["testsrc2"], 4.0).unwrap();
    render_scene_video(&b, &["mandelbrot"], 4.0).unwrap();
    let d = env.start("");
    d.ingest_wait(&[&a, &b]);
    let a_s = source_id(&a);
    let before = d.cli_json(&["status"])["frames"].as_u64().unwrap();
    let f = d.cli_json(&["forget", &a_s]);
    assert_eq!(f["frames_removed"], 4, "{f}");
    let stats = d.cli_json(&["stats"]);
    assert_eq!(stats["frames"].as_u64().unwrap(), before - 4);
    // Every view of the remaining frames is indexed, and nothing of the forgotten source.
    assert_eq!(stats["indexed"], stats["views"], "{stats}");
    assert!(stats["views"].as_u64().unwrap() >= before - 4, "{stats}");
    let r = d.cli_json(&["search", "anything", "-k", "10"]);
    assert!(
        r["clips"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["source"] != a_s.as_str()),
        "{r}"
    );
    let again = d.cli(&["forget", &a_s]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not_found"));
}

#[test]
fn the_client_explains_a_missing_daemon() {
    let env = TestEnv::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_frameseek"))
        .args([
            "--socket",
            env.dir().join("none.sock").to_str().unwrap(),
            "status",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("daemon not running at"));
}

#[test]
fn unsupported_codecs_and_enormous_pictures_are_refused_with_reasons() {
    let env = TestEnv::new();
    let dir = env.footage();
    // An AVI whose codec tag no decoder knows (MJPEG relabelled).
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=160x120:r=10:d=2",
        "-c:v",
        "mjpeg",
        dir.join("mjpeg.avi").to_str().unwrap(),
    ]);
    let avi = std::fs::read(dir.join("mjpeg.avi")).unwrap();
    let relabelled: Vec<u8> = {
        let mut out = avi.clone();
        for i in 0..out.len().saturating_sub(4) {
            if &out[i..i + 4] == b"MJPG" {
                out[i..i + 4].copy_from_slice(b"ZZZZ");
            }
        }
        out
    };
    assert_ne!(avi, relabelled);
    std::fs::write(dir.join("unknown.avi"), relabelled).unwrap();
    std::fs::remove_file(dir.join("mjpeg.avi")).unwrap();
    // One 8200x8200 picture: more than the 8192x8192 frameseek decodes.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=s=8200x8200:r=5:d=0.2",
        "-c:v",
        "mjpeg",
        "-pix_fmt",
        "yuvj420p",
        dir.join("huge.avi").to_str().unwrap(),
    ]);
    let good = dir.join("good.mp4");
    render_scene_video(&good, &["testsrc2"], 3.0).unwrap();
    let d = env.start("sample_interval = 1.0\n");
    let ids: Vec<String> = ["unknown.avi", "huge.avi", "good.mp4"]
        .iter()
        .map(|n| source_id(&dir.join(n)))
        .collect();
    d.cli_json(&["ingest", dir.to_str().unwrap()]);
    let status = wait_finished(&d, &ids.iter().map(String::as_str).collect::<Vec<_>>());
    for (id, needle) in [(&ids[0], "unsupported codec"), (&ids[1], "8200x8200")] {
        let s = source_status(&status, id);
        assert_eq!(s["state"], "failed", "{s}");
        let error = s["error"].as_str().unwrap();
        assert!(
            error.contains(needle) && error.contains(id.as_str()),
            "error {error:?} should name the file and say {needle:?}"
        );
        // When it failed, as an RFC 3339 time.
        let at = s["error_at"].as_str().unwrap_or_default();
        assert!(at.len() >= 20 && at.ends_with('Z'), "error_at {at:?}");
    }
    let good = source_status(&status, &ids[2]);
    assert_eq!(good["state"], "done", "{status}");
    assert_eq!(good["frames"], 3, "{good}");
}
