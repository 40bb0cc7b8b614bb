//! The daemon under systemd's protocols, without systemd: readiness and watchdog
//! notifications on `$NOTIFY_SOCKET`, and a listening socket passed as fd 3 (`LISTEN_FDS`).

mod common;

use std::os::unix::net::{UnixDatagram, UnixListener};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Kills the daemon if a test fails before stopping it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_config(env: &TestEnv, socket: &std::path::Path) -> std::path::PathBuf {
    let config = env.dir().join("frameseek.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nsocket = {:?}\nstate_dir = {:?}\nfootage_roots = [{:?}]\n[model]\npath = {:?}\ndevice = \"cpu\"\n",
            socket.display().to_string(),
            env.dir().join("state").display().to_string(),
            env.footage().display().to_string(),
            test_model().display().to_string()
        ),
    )
    .unwrap();
    config
}

#[test]
fn ready_watchdog_and_stopping_are_sent_to_systemd() {
    let env = TestEnv::new();
    let notify_path = env.dir().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let socket = env.dir().join("run/fs.sock");
    let config = write_config(&env, &socket);
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_frameseek"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .env("NOTIFY_SOCKET", &notify_path)
            .env("WATCHDOG_USEC", "200000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !(got.contains(&"READY=1".to_string()) && got.contains(&"WATCHDOG=1".to_string())) {
        let n = notify
            .recv(&mut buf)
            .expect("no notification from the daemon");
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(socket.exists(), "READY=1 is sent once the socket listens");
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    loop {
        let n = notify.recv(&mut buf).expect("no STOPPING=1");
        if &buf[..n] == b"STOPPING=1" {
            break;
        }
    }
    assert!(child.0.wait().unwrap().success());
}

#[test]
fn a_socket_passed_by_systemd_is_used_and_left_in_place() {
    let env = TestEnv::new();
    let socket = env.dir().join("activated.sock");
    let config = write_config(&env, &env.dir().join("unused/fs.sock"));
    let listener = UnixListener::bind(&socket).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
    // `sh` sets LISTEN_PID to its own pid and then execs the daemon, which keeps that pid.
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "LISTEN_PID=$$ exec \"$0\" serve --config \"$1\"",
        env!("CARGO_BIN_EXE_frameseek"),
        config.to_str().unwrap(),
    ])
    .env("LISTEN_FDS", "1")
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(env.dir().join("activated.log")).unwrap());
    // SAFETY: only dup2/fcntl between fork and exec. The socket must be fd 3 without
    // close-on-exec (dup2 onto itself would keep the flag, so clear it explicitly).
    unsafe {
        cmd.pre_exec(move || {
            if fd != 3 && libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    drop(listener);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(mut c) = frameseek::client::Client::connect(&socket) {
            if let Ok(v) = c.call(&frameseek::protocol::Request::Status(Default::default())) {
                break v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not answer on the passed socket"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status["protocol"], 1);
    assert!(
        !env.dir().join("unused/fs.sock").exists(),
        "the configured path is not bound under activation"
    );
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let exit = child.0.wait().unwrap();
    let log = std::fs::read_to_string(env.dir().join("activated.log")).unwrap();
    assert!(exit.success(), "{exit}: {log}");
    assert!(log.contains("using the socket passed by systemd"), "{log}");
    assert!(
        socket.exists(),
        "a socket owned by systemd is not removed by the daemon"
    );
}
