//! `frameseek doctor` against the real daemon (issue 17): a sound setup is all ok (exit 0);
//! a missing model, an unreadable or missing footage root, a socket this user may not use,
//! and a disk reserve larger than the free space each fail (exit 1) with the fix named.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

use common::{DaemonGuard, TestEnv};

/// The uid and gid of `nobody` on Debian.
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The current user's name.
fn current_user() -> String {
    // SAFETY: getpwuid with our own uid; the entry is read at once.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        assert!(!pw.is_null());
        std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

fn doctor(d: &DaemonGuard, config: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frameseek"))
        .arg("--config")
        .arg(config)
        .arg("--socket")
        .arg(&d.socket)
        .arg("doctor")
        .args(extra)
        .output()
        .unwrap()
}

fn json_checks(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The human line of check `name` with status `fail`.
fn fail_line(out: &Output, name: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find(|l| l.starts_with("fail") && l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no failed {name} check:\n{stdout}"))
        .to_string()
}

/// The daemon's configuration with `from` replaced by `to`, written beside it.
fn variant(d: &DaemonGuard, name: &str, from: &str, to: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&d.config).unwrap();
    assert!(text.contains(from), "{from} not in {text}");
    let path = d.dir.join(name);
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

#[test]
fn a_sound_setup_is_all_ok() {
    let env = TestEnv::new();
    let d = env.start("");
    let user = current_user();
    let out = doctor(&d, &d.config, &["--json", "--service-user", &user]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report = json_checks(&out);
    assert_eq!(report["ok"], true);
    let checks = report["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for wanted in [
        "ffmpeg", "hwdecode", "config", "secrets", "socket", "model", "access", "disk", "index",
    ] {
        assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
    }
    for c in checks {
        assert_eq!(c["status"], "ok", "{c}");
        assert_eq!(c["fix"], "", "{c}");
    }
    let model = checks.iter().find(|c| c["name"] == "model").unwrap();
    assert!(
        model["detail"].as_str().unwrap().contains("running daemon"),
        "{model}"
    );
    let access = checks.iter().find(|c| c["name"] == "access").unwrap();
    assert!(
        access["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("user {user}")),
        "{access}"
    );
    // The human form: one line per check.
    let human = doctor(&d, &d.config, &["--service-user", &user]);
    assert_eq!(human.status.code(), Some(0));
    let lines = String::from_utf8_lossy(&human.stdout).lines().count();
    assert_eq!(lines, checks.len());
}

#[test]
fn a_missing_model_fails_and_names_the_fix() {
    let env = TestEnv::new();
    let d = env.start("");
    let model = common::test_model().display().to_string();
    let broken = variant(&d, "no-model.toml", &model, "/nonexistent/clip-model");
    let out = doctor(&d, &broken, &["--service-user", &current_user()]);
    assert_eq!(out.status.code(), Some(1));
    let line = fail_line(&out, "model");
    assert!(line.contains("/nonexistent/clip-model"), "{line}");
    assert!(line.contains("fix: set model.path"), "{line}");
}

#[test]
fn an_unreadable_or_missing_footage_root_fails_naming_the_path_and_the_user() {
    let env = TestEnv::new();
    let d = env.start("");
    let private = env.dir().join("private");
    std::fs::create_dir(&private).unwrap();
    let footage = env.footage().display().to_string();
    let broken = variant(
        &d,
        "private-root.toml",
        &format!("footage_roots = [{footage:?}]"),
        &format!(
            "footage_roots = [{:?}, {:?}]",
            private.display().to_string(),
            env.dir().join("absent").display().to_string()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    // Root reads everything: check for `nobody` (a service user without access) instead.
    let (mode, user) = if is_root() {
        (0o700, "nobody".to_string())
    } else {
        (0o000, current_user())
    };
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(mode)).unwrap();
    let out = doctor(&d, &broken, &["--service-user", &user]);
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let unreadable = stdout
        .lines()
        .find(|l| l.starts_with("fail") && l.contains("private"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        unreadable.contains(&format!("user {user} cannot read it")),
        "{unreadable}"
    );
    assert!(
        unreadable.contains("fix: create the folder, or give user"),
        "{unreadable}"
    );
    let absent = stdout
        .lines()
        .find(|l| l.starts_with("fail") && l.contains("absent"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(absent.contains("does not exist"), "{absent}");
}

#[test]
fn a_socket_this_user_may_not_use_fails_as_permission_denied() {
    let env = TestEnv::new();
    let d = env.start("");
    let mut command = Command::new(env!("CARGO_BIN_EXE_frameseek"));
    command.arg("--socket").arg(&d.socket).arg("doctor");
    if is_root() {
        // The test folder is 0700 root: `nobody` may not reach the socket in it.
        command.uid(NOBODY).gid(NOBODY).current_dir("/");
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let out = command.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let line = fail_line(&out, "socket");
    assert!(line.contains("permission denied"), "{line}");
    assert!(
        line.contains("fix: add the user to the socket's group"),
        "{line}"
    );
}

#[test]
fn a_disk_reserve_above_the_free_space_fails() {
    let env = TestEnv::new();
    let d = env.start("");
    // The config's [ingest] section is last and empty: a petabyte reserve there.
    let text = std::fs::read_to_string(&d.config).unwrap();
    let broken = d.dir.join("reserve.toml");
    std::fs::write(&broken, format!("{text}resume_free_mb = 1e9\n")).unwrap();
    let out = doctor(&d, &broken, &["--service-user", &current_user()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let line = fail_line(&out, "disk");
    assert!(line.contains("reserve 1000000000 MB"), "{line}");
    assert!(line.contains("fix: free space"), "{line}");
    let report = json_checks(&doctor(
        &d,
        &broken,
        &["--json", "--service-user", &current_user()],
    ));
    assert_eq!(report["ok"], false);
}

#[test]
fn config_names_the_layer_of_each_value() {
    let env = TestEnv::new();
    let file = env.dir().join("frameseek.toml");
    std::fs::write(&file, "[model]\ndevice = \"cpu\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_frameseek"))
        .arg("--config")
        .arg(&file)
        .args(["--socket", "/tmp/cli.sock", "--json", "config"])
        .env("FRAMESEEK__MODEL__BATCH_SIZE", "3")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let setting = |key: &str| {
        json["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("{key} not in {json}"))
            .clone()
    };
    assert_eq!(setting("model.batch_size")["layer"], "environment");
    assert_eq!(setting("model.batch_size")["value"], 3);
    assert_eq!(setting("model.device")["layer"], "file");
    assert_eq!(setting("model.device")["file"], file.display().to_string());
    assert_eq!(setting("daemon.socket")["layer"], "command_line");
    assert_eq!(setting("daemon.socket")["value"], "/tmp/cli.sock");
    assert_eq!(setting("ingest.nice")["layer"], "default");
}

#[test]
fn with_the_daemon_out_of_reach_its_locked_state_is_left_alone() {
    let env = TestEnv::new();
    let mut d = env.start("");
    let video = env.footage().join("a.mp4");
    common::test_pattern_video(&video, 3);
    d.ingest_wait(&[&video]);
    let user = current_user();
    let unreachable = d.dir.join("elsewhere.sock");
    let run = |d: &DaemonGuard| {
        let out = Command::new(env!("CARGO_BIN_EXE_frameseek"))
            .arg("--config")
            .arg(&d.config)
            .arg("--socket")
            .arg(&unreachable)
            .args(["--json", "doctor", "--service-user", &user])
            .output()
            .unwrap();
        let report = json_checks(&out);
        let check = |name: &str| {
            report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == name)
                .unwrap()
                .clone()
        };
        (check("model"), check("index"))
    };
    // The daemon runs but doctor cannot reach it: the state is locked, so doctor says it
    // cannot read the state's model and leaves the state alone; the daemon goes on.
    let (model, _) = run(&d);
    assert_eq!(model["status"], "warn", "{model}");
    assert!(
        model["detail"].as_str().unwrap().contains("cannot be read"),
        "{model}"
    );
    let status = d.cli_json(&["status"]);
    assert!(status["frames"].as_u64().unwrap() > 0, "{status}");
    let views = d.cli_json(&["stats"])["views"].as_u64().unwrap();
    // Stopped: the state's model is read and matches; the index is the last checkpoint's.
    d.stop();
    let (model, index) = run(&d);
    assert_eq!(model["status"], "ok", "{model}");
    assert!(
        model["detail"]
            .as_str()
            .unwrap()
            .contains("matches the state's"),
        "{model}"
    );
    assert_eq!(index["status"], "ok", "{index}");
    assert!(
        index["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{views} views at the last checkpoint")),
        "{index} (daemon said {views} views)"
    );
}
