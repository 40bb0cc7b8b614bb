//! Camera secrets (issue 17): URLs from `url_file` and systemd credentials, and passwords
//! that never show — not in the daemon's log, `status` (JSON and table), `config` or
//! `doctor` — for an inline URL, a URL file, a credential and a client stream. The cameras
//! point at a closed local port, so each goes through the connect-fail-report path.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{test_model, DaemonGuard, TestEnv};

/// Each secret appears once in the setup and must never appear in any output.
const SECRETS: &[&str] = &["inlinepw11", "tok44", "filepw22", "credpw33", "clientpw55"];

fn frameseek(d: &DaemonGuard, credentials: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frameseek"))
        .arg("--config")
        .arg(&d.config)
        .arg("--socket")
        .arg(&d.socket)
        .args(args)
        .env("CREDENTIALS_DIRECTORY", credentials)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn camera_passwords_from_every_origin_never_show() {
    let env = TestEnv::new();
    let secrets = env.dir().join("secrets");
    let credentials = env.dir().join("credentials");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::create_dir_all(&credentials).unwrap();
    let url_file = secrets.join("gate2.url");
    std::fs::write(&url_file, "  rtsp://viewer:filepw22@127.0.0.1:9/s2\n").unwrap();
    std::fs::write(
        credentials.join("gate3"),
        "rtsp://viewer:credpw33@127.0.0.1:9/s3",
    )
    .unwrap();
    let extra = format!(
        "live_timeout = 1.0\nreconnect_max = 1.0\nclient_streams = [\"rtsp://127.0.0.1:\"]\n\n\
         [[cameras]]\nname = \"gate1\"\nurl = \"rtsp://viewer:inlinepw11@127.0.0.1:9/s1?token=tok44\"\n\n\
         [[cameras]]\nname = \"gate2\"\nurl_file = {:?}\n\n\
         [[cameras]]\nname = \"gate3\"\nurl_credential = \"gate3\"\n",
        url_file.display().to_string()
    );
    let wrapper = vec![
        "env".to_string(),
        format!("CREDENTIALS_DIRECTORY={}", credentials.display()),
    ];
    let mut d = env.start_wrapped(&extra, &test_model(), &wrapper);
    let client = frameseek(
        &d,
        &credentials,
        &["ingest", "rtsp://viewer:clientpw55@127.0.0.1:9/s5"],
    );
    assert!(client.status.success(), "{}", text(&client));
    let client_id = "rtsp://viewer@127.0.0.1:9/s5";

    // Every live source has tried, failed and reported an outage.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = d.cli_json(&["status"]);
        let sources = status["sources"].as_array().unwrap();
        let down = ["gate1", "gate2", "gate3", client_id].iter().all(|name| {
            sources.iter().any(|s| {
                s["source"] == *name
                    && s["live"]["outages"]
                        .as_array()
                        .is_some_and(|o| !o.is_empty())
            })
        });
        if down {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "no outages: {status}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // The URLs were read from their file and credential, and are shown redacted.
    let url_of = |name: &str| {
        common::source_status(&status, name)["live"]["url"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        url_of("gate1"),
        "rtsp://viewer:***@127.0.0.1:9/s1?token=***"
    );
    assert_eq!(url_of("gate2"), "rtsp://viewer:***@127.0.0.1:9/s2");
    assert_eq!(url_of("gate3"), "rtsp://viewer:***@127.0.0.1:9/s3");
    assert_eq!(url_of(client_id), "rtsp://viewer:***@127.0.0.1:9/s5");

    let mut outputs = vec![
        ("client ingest", text(&client)),
        ("status --json", status.to_string()),
        ("status", text(&frameseek(&d, &credentials, &["status"]))),
        ("config", text(&frameseek(&d, &credentials, &["config"]))),
        (
            "config --json",
            text(&frameseek(&d, &credentials, &["--json", "config"])),
        ),
        ("doctor", text(&frameseek(&d, &credentials, &["doctor"]))),
        (
            "doctor --json",
            text(&frameseek(&d, &credentials, &["--json", "doctor"])),
        ),
    ];
    let config = text(&frameseek(&d, &credentials, &["config"]));
    assert!(
        config.contains("rtsp://viewer:***@127.0.0.1:9/s1?token=***"),
        "{config}"
    );
    assert!(config.contains("cameras[1].url_file"), "{config}");
    let status_table = &outputs[2].1;
    assert!(status_table.contains("gate2"), "{status_table}");
    d.stop();
    outputs.push(("daemon log", d.log_text()));
    assert!(
        outputs[7].1.contains("live source down"),
        "the log shows the outages: {}",
        outputs[7].1
    );
    // The configuration file (0644, as written) holds gate1's inline password: the daemon
    // warns at start, and doctor warns too.
    let log = &outputs[7].1;
    let warning = log
        .lines()
        .find(|l| l.contains("a camera URL with a password is in a file every user may read"))
        .unwrap_or_else(|| panic!("no warning about the readable file: {log}"));
    assert!(
        warning.contains("gate1") && warning.contains("frameseek.toml"),
        "{warning}"
    );
    assert!(
        outputs[5].1.contains("warn  secrets") && outputs[5].1.contains("\"gate1\""),
        "{}",
        outputs[5].1
    );
    assert!(
        outputs[7].1.contains("rtsp://viewer:***@127.0.0.1:9/s2"),
        "the log names the URL from the file, redacted: {}",
        outputs[7].1
    );
    for (what, out) in &outputs {
        for secret in SECRETS {
            assert!(!out.contains(secret), "{secret} appears in {what}:\n{out}");
        }
    }
}

#[test]
fn a_missing_url_file_stops_the_daemon_with_the_path_and_the_fix() {
    let env = TestEnv::new();
    let config = env.dir().join("frameseek.toml");
    let missing = env.dir().join("nope.url");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nsocket = {:?}\nstate_dir = {:?}\nfootage_roots = [{:?}]\n[model]\npath = {:?}\ndevice = \"cpu\"\n\n[[cameras]]\nname = \"gate\"\nurl_file = {:?}\n",
            env.dir().join("fs.sock").display().to_string(),
            env.dir().join("state").display().to_string(),
            env.footage().display().to_string(),
            test_model().display().to_string(),
            missing.display().to_string(),
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_frameseek"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cameras[0].url_file") && stderr.contains("nope.url"),
        "{stderr}"
    );
    assert!(stderr.contains("daemon's user may read it"), "{stderr}");
}
