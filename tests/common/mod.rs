//! A fixture that runs the real `frameseek serve` process on a temporary state folder and
//! socket, plus helpers to drive it through the real client and CLI.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use frameseek::client::Client;

/// The repository's tiny random-weight CLIP checkpoint.
pub fn test_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/tiny-random-clip")
}

/// The repository's tiny CLIP trained on the synthetic camera world (`frameseek world`).
pub fn world_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/frameseek-tiny")
}

/// A running daemon; stopped with SIGTERM (then SIGKILL) when dropped.
pub struct DaemonGuard {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
}

/// A work folder with `footage/`, a config file, and room for the state.
pub struct TestEnv {
    pub tmp: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("fs-e2e-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::create_dir_all(tmp.path().join("footage")).unwrap();
        Self { tmp }
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    pub fn footage(&self) -> PathBuf {
        self.tmp.path().join("footage")
    }

    /// Writes the config (with `extra` TOML appended to `[ingest]`) and starts the daemon
    /// on the random-weight test model.
    pub fn start(&self, extra_ingest: &str) -> DaemonGuard {
        self.start_with_model(extra_ingest, &test_model())
    }

    /// Like [`TestEnv::start`], with the given model folder.
    pub fn start_with_model(&self, extra_ingest: &str, model: &Path) -> DaemonGuard {
        self.start_wrapped(extra_ingest, model, &[])
    }

    /// Like [`TestEnv::start_with_model`], running `wrapper… frameseek serve …` (e.g. inside
    /// `unshare`); the wrapper must end by exec'ing its arguments.
    pub fn start_wrapped(
        &self,
        extra_ingest: &str,
        model: &Path,
        wrapper: &[String],
    ) -> DaemonGuard {
        let dir = self.dir().to_path_buf();
        let socket = dir.join("fs.sock");
        let config = dir.join("frameseek.toml");
        std::fs::write(
            &config,
            format!(
                "[daemon]\nsocket = {:?}\nstate_dir = {:?}\nfootage_roots = [{:?}]\n\n[model]\npath = {:?}\ndevice = \"cpu\"\nbatch_size = 16\n\n[ingest]\n{extra_ingest}\n",
                socket.display().to_string(),
                dir.join("state").display().to_string(),
                self.footage().display().to_string(),
                model.display().to_string(),
            ),
        )
        .unwrap();
        let log = dir.join(format!(
            "daemon-{}.log",
            Instant::now().elapsed().as_nanos() ^ rand_suffix()
        ));
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(env!("CARGO_BIN_EXE_frameseek"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_frameseek")),
        };
        let child = command
            .args(["serve", "--config"])
            .arg(&config)
            .env("FRAMESEEK_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut guard = DaemonGuard {
            child: Some(child),
            dir,
            socket,
            config,
            log,
        };
        guard.wait_ready();
        guard
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

impl DaemonGuard {
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                self.wait_index(deadline);
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("daemon exited early ({status}): {}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("daemon not ready: {}", self.log_text());
    }

    /// Waits until no index rebuild runs (the daemon answers during one, refusing searches;
    /// the tests that use this want the whole index).
    fn wait_index(&mut self, deadline: Instant) {
        let request = frameseek::protocol::Request::Status(Default::default());
        while Instant::now() < deadline {
            let status = self.client().call(&request).unwrap();
            if status["index_rebuild"].is_null() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("index rebuild never ended: {}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.socket).unwrap()
    }

    /// Runs the CLI against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_frameseek"))
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }

    /// `frameseek ingest --wait PATH…`, asserting that every file was indexed.
    pub fn ingest_wait(&self, paths: &[&Path]) {
        let mut args = vec!["ingest", "--wait"];
        args.extend(paths.iter().map(|p| p.to_str().unwrap()));
        let out = self.cli(&args);
        assert!(
            out.status.success(),
            "ingest failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
    }

    /// Runs the CLI with `--json` and parses its stdout.
    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_frameseek"))
            .arg("--socket")
            .arg(&self.socket)
            .arg("--json")
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "bad JSON from {args:?} ({e}): {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// SIGTERM and wait; returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        panic!("daemon did not stop within 30 s: {}", self.log_text());
    }

    /// SIGKILL, no cleanup.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
    }
}

/// Waits until every named source is done or failed; returns the final status.
pub fn wait_finished(d: &DaemonGuard, sources: &[&str]) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let status = d.cli_json(&["status"]);
        let all = sources.iter().all(|s| {
            status["sources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["source"] == *s && (x["state"] == "done" || x["state"] == "failed"))
        });
        if all {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "sources not finished: {status}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The status entry of one source.
pub fn source_status<'a>(status: &'a serde_json::Value, source: &str) -> &'a serde_json::Value {
    status["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["source"] == source)
        .unwrap_or_else(|| panic!("{source} not in {status}"))
}

/// The source id the daemon gives a file: its canonical path.
pub fn source_id(path: &Path) -> String {
    path.canonicalize().unwrap().display().to_string()
}

/// Renders the test world's sample footage into `footage` with the real
/// `frameseek world footage` (videos, `ground_truth.jsonl`, `queries.jsonl`, `probe.png`).
pub fn render_world_footage(footage: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_frameseek"))
        .args(["world", "footage", "--out"])
        .arg(footage)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "world footage failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the `ffmpeg` command, panicking with its output on failure.
/// Runs `frameseek reindex` on the state of `config` (daemon stopped) and checks it succeeded.
pub fn reindex(config: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_frameseek"))
        .args(["reindex", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reindex: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `seconds` of 320x240 25 fps H.264 test pattern to `path` (its extension names the
/// container), creating its folder.
pub fn test_pattern_video(path: &Path, seconds: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let source = format!("testsrc2=s=320x240:r=25:d={seconds}");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &source,
        "-c:v",
        "libx264",
        "-g",
        "25",
        path.to_str().unwrap(),
    ]);
}

/// A wide copy of a video (H.264, creating `to`'s folder): its picture, at its own size, on
/// grey `width` pixels wide (the same height), its left edge at column `x`.
pub fn pad_video(from: &Path, to: &Path, width: u32, x: u32) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    ffmpeg(&[
        "-i",
        from.to_str().unwrap(),
        "-vf",
        &format!("pad={width}:ih:{x}:0:color=0x808080"),
        "-c:v",
        "libx264",
        "-g",
        "25",
        to.to_str().unwrap(),
    ]);
}

/// `ffmpeg -re` encoding the lavfi `source` (10 fps) with `codec` and a GOP of `gop` frames
/// to the output arguments `out`, in real time; killed when dropped.
pub fn ffmpeg_re(source: &str, codec: &str, gop: &str, out: &[&str]) -> Proc {
    Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi"])
            .args(["-i", source, "-c:v", codec, "-g", gop])
            .args(out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// A 10 fps test pattern sent as MPEG-TS over loopback UDP until dropped.
pub fn send_udp(port: u16) -> Proc {
    let url = format!("udp://127.0.0.1:{port}?pkt_size=1316");
    ffmpeg_re(
        "testsrc2=s=160x120:r=10",
        "mpeg2video",
        "5",
        &["-f", "mpegts", &url],
    )
}

/// Polls `status` until `pred` holds (`within`), returning it; fails with `what`, the last
/// status and the daemon's log.
pub fn wait_status(
    d: &DaemonGuard,
    within: Duration,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let status = d.cli_json(&["status"]);
        if pred(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {status}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed when dropped (a failed assertion leaves no stray server or
/// ffmpeg behind).
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port that was free a moment ago (on every interface, UDP and TCP).
pub fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

/// Python's HTTP server on 127.0.0.1 serving `dir`, once it accepts connections; its port.
pub fn serve_http(dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let child = Proc(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "http server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}
