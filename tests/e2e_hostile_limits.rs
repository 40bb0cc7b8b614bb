//! What a socket client may make the daemon do, and the limits that keep it up (issue 15,
//! part B), against the real daemon: stream URLs only where the operator allows them, no
//! listening or binding for a client, a cap on live sources, image queries refused from
//! their header, an export folder cap, and resume under today's footage roots.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// One raw protocol line in, its reply out.
fn request(socket: &Path, line: &str) -> serde_json::Value {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.write_all(line.as_bytes()).unwrap();
    stream.write_all(b"\n").unwrap();
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).unwrap();
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {reply:?}"))
}

/// The lines of `ss -lnu` / `ss -lnt` that name `port` (empty when `ss` is missing).
fn ss_lines(flags: &str, port: u16) -> Vec<String> {
    let Ok(out) = Command::new("ss").arg(flags).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!(":{port} ")))
        .map(str::to_string)
        .collect()
}

fn status_has(d: &DaemonGuard, source: &str) -> bool {
    let s = d.cli_json(&["status"]);
    s["sources"]
        .as_array()
        .is_some_and(|list| list.iter().any(|x| x["source"] == source))
}

#[test]
fn client_stream_urls_are_refused_by_default_and_no_port_is_bound() {
    let env = TestEnv::new();
    let d = env.start("");
    let port = free_port();
    let udp = format!("udp://127.0.0.1:{port}");
    let http = "http://127.0.0.1:9/live.m3u8";
    let out = d.cli_json(&["ingest", &udp, http]);
    for (i, url) in [&udp as &str, http].iter().enumerate() {
        let o = &out["outcomes"][i];
        assert_eq!(o["result"], "error", "{url}: {out}");
        let message = o["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("ingest.client_streams") && message.contains("[[cameras]]"),
            "{url}: {message}"
        );
        assert!(!status_has(&d, url), "{url} became a source");
    }
    // Give a (wrongly) started live thread time to bind, then check nothing holds the port.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        ss_lines("-lnu", port).is_empty(),
        "{:?}",
        ss_lines("-lnu", port)
    );
    std::net::UdpSocket::bind(("0.0.0.0", port))
        .unwrap_or_else(|e| panic!("the daemon holds UDP {port}: {e}"));
    assert!(d.cli_json(&["status"])["sources"].is_array());
}

#[test]
fn a_listening_url_is_refused_even_when_its_host_is_allowed() {
    let env = TestEnv::new();
    let d = env.start("client_streams = [\"tcp://127.0.0.1:\", \"srt://127.0.0.1:\"]\n");
    let port = free_port();
    for url in [
        format!("tcp://127.0.0.1:{port}?listen=1"),
        format!("tcp://127.0.0.1:{port}?timeout=5&listen"),
        format!("srt://127.0.0.1:{port}?mode=listener"),
    ] {
        let out = d.cli_json(&["ingest", &url]);
        let o = &out["outcomes"][0];
        assert_eq!(o["result"], "error", "{url}: {out}");
        let message = o["message"].as_str().unwrap_or_default();
        assert!(message.contains("listen or bind"), "{url}: {message}");
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        ss_lines("-lnt", port).is_empty(),
        "{:?}",
        ss_lines("-lnt", port)
    );
    std::net::TcpListener::bind(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("the daemon listens on TCP {port}: {e}"));
    // An allowed URL that connects out is admitted.
    let out = d.cli_json(&["ingest", &format!("tcp://127.0.0.1:{port}")]);
    assert_eq!(out["outcomes"][0]["result"], "queued", "{out}");
}

#[test]
fn live_sources_are_capped_with_a_clear_error() {
    let env = TestEnv::new();
    let d = env.start(
        "live_timeout = 1.0\nreconnect_max = 1.0\nmax_live_sources = 1\nclient_streams = [\"udp://127.0.0.1:\"]\n",
    );
    let first = format!("udp://127.0.0.1:{}", free_port());
    let second = format!("udp://127.0.0.1:{}", free_port());
    let out = d.cli_json(&["ingest", &first]);
    assert_eq!(out["outcomes"][0]["result"], "queued", "{out}");
    let out = d.cli_json(&["ingest", &second]);
    assert_eq!(out["outcomes"][0]["result"], "error", "{out}");
    let message = out["outcomes"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("ingest.max_live_sources"), "{message}");
    // A slot frees when a live source is forgotten.
    let forgot = d.cli(&["forget", &first]);
    assert!(forgot.status.success(), "{forgot:?}");
    let out = d.cli_json(&["ingest", &second]);
    assert_eq!(out["outcomes"][0]["result"], "queued", "{out}");
}

#[test]
fn an_image_query_declaring_huge_dimensions_is_refused_before_decoding() {
    let env = TestEnv::new();
    let png = env.dir().join("huge.png");
    // A valid 1-bit PNG of 13,000 x 13,000 pixels: about 20 KB on disk, 507 MB as RGB.
    let script = r#"
import struct, sys, zlib
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
n = 13000
raw = (b"\x00" + b"\x00" * ((n + 7) // 8)) * n
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", n, n, 1, 0, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
"#;
    let ok = Command::new("python3")
        .args(["-c", script, png.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(ok.success());
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.len() < 64 * 1024, "{} bytes", bytes.len());
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let d = env.start("");
    let started = Instant::now();
    let reply = request(
        &d.socket,
        &format!(r#"{{"op":"search","image":"{b64}","k":3}}"#),
    );
    assert_eq!(reply["ok"], false, "{reply}");
    assert_eq!(reply["error"]["code"], "bad_image", "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("13000 x 13000"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(d.cli_json(&["status"])["sources"].is_array());
}

#[test]
fn an_export_over_the_folder_cap_is_refused_and_leaves_nothing() {
    let env = TestEnv::new();
    let file = env.footage().join("cam.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=6",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        file.to_str().unwrap(),
    ]);
    // 20 KB of exports at most.
    let exports = env.dir().join("exports");
    let d = env.start_wrapped(
        "sample_interval = 1.0\n",
        &test_model(),
        &[
            "env".into(),
            format!("FRAMESEEK__DAEMON__EXPORT_DIR={}", exports.display()),
            "FRAMESEEK__DAEMON__EXPORT_MAX_MB=0.02".into(),
        ],
    );
    d.ingest_wait(&[&file]);
    let source = source_id(&file);
    let line = format!(r#"{{"op":"export","source":"{source}","start_ms":0,"end_ms":6000}}"#);
    let refused = |reply: &serde_json::Value| {
        assert_eq!(reply["ok"], false, "{reply}");
        assert_eq!(reply["error"]["code"], "export_full", "{reply}");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("daemon.export_max_mb"), "{message}");
    };
    let names = || -> Vec<String> {
        std::fs::read_dir(&exports)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    // A clip larger than the cap: written, measured, removed, refused.
    refused(&request(&d.socket, &line));
    assert!(names().is_empty(), "{:?}", names());
    // A folder at the cap already: refused before anything is written.
    std::fs::create_dir_all(&exports).unwrap();
    std::fs::write(exports.join("old.mp4"), vec![0u8; 30_000]).unwrap();
    refused(&request(&d.socket, &line.replace("6000", "1000")));
    assert_eq!(names(), ["old.mp4"]);
    assert!(d.cli_json(&["status"])["sources"].is_array());
}

#[test]
fn resume_marks_a_source_outside_todays_footage_roots_failed() {
    let env = TestEnv::new();
    let file = env.footage().join("long.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=120",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        file.to_str().unwrap(),
    ]);
    let source = source_id(&file);
    let mut d = env.start("sample_interval = 0.04\n");
    let out = d.cli_json(&["ingest", file.to_str().unwrap()]);
    assert_eq!(out["outcomes"][0]["result"], "queued", "{out}");
    let s = d.cli_json(&["status"]);
    let state = source_status(&s, &source)["state"].clone();
    assert!(state == "queued" || state == "ingesting", "{s}");
    d.kill9();
    let frames_before = {
        // The folder is now outside the roots: another folder is the only root.
        let other = env.dir().join("elsewhere");
        std::fs::create_dir_all(&other).unwrap();
        let d = env.start_wrapped(
            "sample_interval = 0.04\n",
            &test_model(),
            &[
                "env".into(),
                format!("FRAMESEEK__DAEMON__FOOTAGE_ROOTS={}", other.display()),
            ],
        );
        let s = d.cli_json(&["status"]);
        let src = source_status(&s, &source);
        assert_eq!(src["state"], "failed", "{s}");
        let error = src["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("not resumed") && error.contains("footage_roots"),
            "{error}"
        );
        let frames = src["frames"].as_u64();
        std::thread::sleep(Duration::from_millis(1500));
        let s = d.cli_json(&["status"]);
        assert_eq!(source_status(&s, &source)["frames"].as_u64(), frames, "{s}");
        frames
    };
    assert!(frames_before.is_some());
}

#[test]
fn request_bytes_of_all_connections_share_one_budget_and_the_daemon_stays_up() {
    let env = TestEnv::new();
    let d = env.start_wrapped(
        "",
        &test_model(),
        &[
            "env".into(),
            "FRAMESEEK__DAEMON__MAX_REQUEST_BYTES=1500000".into(),
            "FRAMESEEK__DAEMON__MAX_REQUEST_BYTES_TOTAL=2000000".into(),
        ],
    );
    let big = vec![b'a'; 1_200_000];
    // Connection A holds 1.2 MB of an unfinished line.
    let mut a = UnixStream::connect(&d.socket).unwrap();
    a.write_all(&big).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Connection B's 1.2 MB do not fit beside them: `busy`, and B is closed.
    let b = UnixStream::connect(&d.socket).unwrap();
    let mut b_write = b.try_clone().unwrap();
    let line = big.clone();
    let sender = std::thread::spawn(move || {
        let _ = b_write.write_all(&line);
        let _ = b_write.write_all(b"\n");
    });
    let mut reply = String::new();
    BufReader::new(b).read_line(&mut reply).unwrap();
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["error"]["code"], "busy", "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("daemon.max_request_bytes_total"),
        "{message}"
    );
    sender.join().unwrap();
    // A finishes its line and is answered; its bytes go back to the budget.
    a.write_all(b"\n").unwrap();
    let mut reply = String::new();
    BufReader::new(a.try_clone().unwrap())
        .read_line(&mut reply)
        .unwrap();
    assert!(reply.contains("invalid_json"), "{reply}");
    // A later request of the same size fits again.
    let mut c = UnixStream::connect(&d.socket).unwrap();
    c.write_all(&big).unwrap();
    c.write_all(b"\n").unwrap();
    let mut reply = String::new();
    BufReader::new(c).read_line(&mut reply).unwrap();
    assert!(reply.contains("invalid_json"), "{reply}");
    assert!(d.cli_json(&["status"])["sources"].is_array());
}

#[test]
fn an_http_url_serving_sdp_cannot_make_ffmpeg_bind_udp() {
    let env = TestEnv::new();
    // An HTTP "stream" whose body is an SDP description: FFmpeg probes it as SDP and, with
    // its default whitelist for HTTP children (which has rtp and udp), binds the RTP ports
    // on every interface (0.0.0.0). Checked by hand with ffprobe on Debian's FFmpeg 5.1;
    // the per-kind whitelist (`source::live::protocol_whitelist`) refuses rtp.
    let udp_port = free_port();
    let served = env.dir().join("www");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::write(
        served.join("cam.sdp"),
        format!(
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=video {udp_port} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
        ),
    )
    .unwrap();
    let (_server, port) = serve_http(&served);
    let d = env.start(
        "sample_interval = 0.5\nlive_timeout = 2.0\nreconnect_max = 1.0\nclient_streams = [\"http://127.0.0.1:\"]\n",
    );
    let url = format!("http://127.0.0.1:{port}/cam.sdp");
    let out = d.cli_json(&["ingest", &url]);
    assert_eq!(out["outcomes"][0]["result"], "queued", "{out}");
    // For 8 s (several connection attempts), the UDP port stays free.
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        if let Err(e) = std::net::UdpSocket::bind(("0.0.0.0", udp_port)) {
            panic!(
                "the daemon bound UDP {udp_port} for an SDP served over HTTP: {e}\n{}",
                d.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = d.cli_json(&["status"]);
    let src = source_status(&s, &url);
    assert!(
        src["live"]["outages"]
            .as_array()
            .is_some_and(|o| !o.is_empty()),
        "{s}"
    );
    assert_eq!(src["frames"].as_u64(), Some(0), "{s}");
}

#[test]
fn the_service_keeps_the_socket_units_folder_when_it_stops() {
    // frameseek.socket listens in /run/frameseek; the service's RuntimeDirectory= is that
    // folder, which systemd removes when the service stops unless it is preserved.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let service = std::fs::read_to_string(root.join("frameseek.service")).unwrap();
    let socket = std::fs::read_to_string(root.join("frameseek.socket")).unwrap();
    let value = |text: &str, key: &str| -> Option<String> {
        text.lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix(&format!("{key}=")))
            .map(str::to_string)
    };
    let runtime = value(&service, "RuntimeDirectory").unwrap();
    let listen = value(&socket, "ListenStream").unwrap();
    assert!(listen.starts_with(&format!("/run/{runtime}/")), "{listen}");
    assert_eq!(
        value(&service, "RuntimeDirectoryPreserve").as_deref(),
        Some("yes"),
        "the service would remove {listen}'s folder whenever it stops"
    );
}
