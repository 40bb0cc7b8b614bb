//! Issue 17, the client's habits, against the real daemon: a client finds the socket
//! without the daemon's configuration (and a bad daemon-only key never breaks it), times
//! as people write them (`--since 2h`, local times in `ingest.time_zone`, `--utc`), the
//! Prometheus text and the loopback metrics listener, JSON errors, grep-like exit codes,
//! a health-probe `status`, hidden dev commands, and clean non-terminal output.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `frameseek ARGS` with a clean environment for the socket lookup: no `--socket`, HOME and
/// XDG_CONFIG_HOME in `home`, and `env` added.
fn client(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_frameseek"));
    c.env_remove("FRAMESEEK_SOCKET")
        .env_remove("FRAMESEEK__DAEMON__SOCKET")
        .env_remove("NO_COLOR")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// An HTML results page without its inline pictures (for assertion messages).
fn html_without_images(html: &str) -> String {
    html.split("<img ")
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part
            } else {
                part.split_once('>').map_or("", |(_, rest)| rest)
            }
        })
        .collect()
}

/// Checks a Prometheus text exposition: every sample's metric has a TYPE line before it,
/// values parse as floats, names start with `frameseek_` and counters end in `_total`.
/// Returns the samples by name with labels.
fn parse_prometheus(body: &str) -> HashMap<String, f64> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = HashMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["gauge", "counter"].contains(&kind), "{line}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
        let name = line.split(['{', ' ']).next().unwrap();
        assert!(name.starts_with("frameseek_"), "{line}");
        assert!(types.contains_key(name), "no TYPE before {line}");
        let (key, value) = line.rsplit_once(' ').unwrap();
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        samples.insert(key.to_string(), v);
    }
    samples
}

#[test]
fn client_habits_against_the_real_daemon() {
    let env = TestEnv::new();
    // An NVR segment named in Paris time: 03:00 on 2026-11-27 there is 02:00 UTC.
    let named = env.footage().join("cam1/2026-11-27/03-00-00.mp4");
    test_pattern_video(&named, 4);
    let d = env.start(
        "time_pattern = \"%Y-%m-%d/%H-%M-%S\"\ntime_zone = \"Europe/Paris\"\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n[log]\nformat = \"json\"\n",
    );
    let home = env.dir().join("home");
    std::fs::create_dir_all(home.join(".config/frameseek")).unwrap();
    let sock = d.socket.to_str().unwrap().to_string();

    // --- Item 8: progress goes to a terminal only; into a pipe the output stays clean.
    let out = d.cli(&["ingest", "--wait", named.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        out.stderr.is_empty(),
        "stderr not clean: {:?}",
        text(&out.stderr)
    );
    assert!(!text(&out.stdout).contains('\r'));

    // --- Item 4: the socket from FRAMESEEK_SOCKET, then client.toml, then --config.
    let out = client(&home, &[("FRAMESEEK_SOCKET", &sock)], &["status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let client_toml = home.join(".config/frameseek/client.toml");
    std::fs::write(
        &client_toml,
        format!("socket = {sock:?}\ntime_zone = \"Europe/Paris\"\ncolor = \"never\"\n"),
    )
    .unwrap();
    let out = client(&home, &[], &["status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A configuration whose daemon-only keys are wrong: clients use its socket, `serve`
    // refuses it with the reason.
    std::fs::remove_file(&client_toml).unwrap();
    let bad = env.dir().join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "[daemon]\nsocket = {sock:?}\n[ingest]\nsample_interval = -1\nno_such_key = 3\n[metrics]\nlisten = \"0.0.0.0:9464\"\n"
        ),
    )
    .unwrap();
    let out = client(&home, &[], &["--config", bad.to_str().unwrap(), "status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = client(&home, &[], &["--config", bad.to_str().unwrap(), "serve"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no_such_key") || stderr.contains("ingest.sample_interval"),
        "{stderr}"
    );
    // The metrics listener refuses any address but loopback.
    std::fs::write(
        &bad,
        format!("[daemon]\nsocket = {sock:?}\n[metrics]\nlisten = \"0.0.0.0:9464\"\n"),
    )
    .unwrap();
    let out = client(&home, &[], &["--config", bad.to_str().unwrap(), "serve"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("metrics.listen") && stderr.contains("not a loopback address"),
        "{stderr}"
    );

    // --- Item 6: the NVR name was read in Paris time; JSON stays UTC.
    let status = d.cli_json(&["status"]);
    assert_eq!(
        source_status(&status, &source_id(&named))["start_wall"],
        "2026-11-27T02:00:00.000Z",
        "{status}"
    );
    let search = |extra: &[&str]| -> Output {
        let mut args = vec!["search", "a test pattern", "-k", "3"];
        args.extend_from_slice(extra);
        d.cli(&args)
    };
    // Local times in --since/--until (Paris, from client.toml or --utc), offsets, durations.
    std::fs::write(
        &client_toml,
        format!("socket = {sock:?}\ntime_zone = \"Europe/Paris\"\n"),
    )
    .unwrap();
    let in_paris = |args: &[&str]| -> Output {
        let mut all = vec!["search", "a test pattern", "-k", "3"];
        all.extend_from_slice(args);
        client(&home, &[], &all)
    };
    // Tables and the --html page show local times (Paris, from client.toml), or UTC under
    // --utc; the page names the zone and keeps each UTC instant in its <time datetime>.
    let page = env.dir().join("results.html");
    let paris_hour = ["--since", "2026-11-27T03:00", "--until", "2026-11-27 03:01"];
    let utc_hour = [
        "--utc",
        "--since",
        "2026-11-27T02:00",
        "--until",
        "2026-11-27T02:01",
    ];
    for (flags, shown, zone, named) in [
        (&paris_hour[..], "2026-11-27 03:00:0", "CET", "Europe/Paris"),
        (&utc_hour[..], "2026-11-27 02:00:0", "UTC", "UTC"),
    ] {
        let mut args = flags.to_vec();
        args.extend(["--html", page.to_str().unwrap()]);
        let out = in_paris(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let table = text(&out.stdout);
        assert!(table.contains(shown), "local times: {table}");
        assert!(table.contains(&format!(" {zone} ")), "{table}");
        let summary = html_without_images(&std::fs::read_to_string(&page).unwrap());
        assert!(summary.contains(&format!("times in {named}.")), "{summary}");
        assert!(
            summary.contains("<time datetime=\"2026-11-27T02:00:0"),
            "{summary}"
        );
        assert!(summary.contains(&format!("\">{shown}")), "{summary}");
        assert!(summary.contains(&format!(" {zone}</time>")), "{summary}");
    }
    // 03:30 Paris is after the 4 s of footage: nothing matches, exit 1 as grep.
    let out = in_paris(&["--since", "2026-11-27T03:30"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "no matching footage\n");
    // Durations and days count from now: the footage is from 2026-11-27T02:00Z, so whether
    // it is within the last 2 hours or before yesterday depends on today's date.
    let recorded_ms: i64 = 1_795_744_800_000;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    const DAYS_3: i64 = 3 * 86_400_000;
    let (recent, before_yesterday) = if now_ms > recorded_ms + DAYS_3 {
        (Some(1), Some(0))
    } else if now_ms < recorded_ms - DAYS_3 {
        (Some(0), Some(1))
    } else {
        (None, None)
    };
    if let (Some(recent), Some(before_yesterday)) = (recent, before_yesterday) {
        assert_eq!(search(&["--since", "2h"]).status.code(), Some(recent));
        assert_eq!(
            search(&["--until", "yesterday"]).status.code(),
            Some(before_yesterday)
        );
    }
    assert_eq!(search(&["--since", "100000d"]).status.code(), Some(0));
    let json = d.cli_json(&[
        "search",
        "a test pattern",
        "--since",
        "2026-11-27T02:00:00Z",
    ]);
    let clip = &json["clips"][0];
    assert!(
        clip["start_wall"].as_str().unwrap().ends_with('Z'),
        "{json}"
    );
    // A bad time: exit 2 and what to write.
    let out = search(&["--since", "the day before"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("yesterday"),
        "{}",
        text(&out.stderr)
    );

    // --- Item 8: --json errors carry the protocol's code; exit codes unchanged.
    let out = d.cli(&["--json", "forget", "/no/such/source"]);
    assert_eq!(out.status.code(), Some(1));
    let e: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(e["error"]["code"], "not_found", "{e}");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/no/such/source"));
    let out = d.cli(&["--json", "search", ""]);
    assert_eq!(out.status.code(), Some(2));
    let e: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(e["error"]["code"], "empty_query", "{e}");
    let out = client(
        &home,
        &[],
        &["--json", "--socket", "/nonexistent/fs.sock", "stats"],
    );
    assert_eq!(out.status.code(), Some(3));
    let e: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(e["error"]["code"], "not_running", "{e}");
    let out = d.cli(&["--json", "search", "x", "-k", "many"]);
    assert_eq!(out.status.code(), Some(2));
    let e: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(e["error"]["code"], "usage", "{e}");

    // --- Item 7: the Prometheus text, from the command and from the listener.
    let out = d.cli(&["stats", "--format", "prometheus"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let samples = parse_prometheus(&text(&out.stdout));
    assert_eq!(samples["frameseek_frames"], 4.0, "{samples:?}");
    assert_eq!(samples["frameseek_sources_by_state{state=\"done\"}"], 1.0);
    assert_eq!(samples["frameseek_ingest_stopped"], 0.0);
    assert!(samples["frameseek_searches_total"] >= 5.0, "{samples:?}");
    // --- Item 7: JSON logs, one object per line; the listener's address is in one.
    let log = d.log_text();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines
        .iter()
        .all(|l| l["level"].is_string() && l["timestamp"].is_string()));
    let addr = lines
        .iter()
        .find(|l| l["fields"]["message"] == "metrics listener on GET /metrics")
        .and_then(|l| l["fields"]["address"].as_str())
        .unwrap_or_else(|| panic!("no metrics listener in the log:\n{log}"))
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let get = |request: &str| -> String {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let reply = get("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let samples = parse_prometheus(body);
    assert_eq!(samples["frameseek_frames"], 4.0);
    assert!(get("GET /admin HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    assert!(get(&"x".repeat(20_000)).starts_with("HTTP/1.1 431"));
    // Still serving after the hostile ones.
    assert!(get("GET /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200"));

    // --- Item 7: colour only when asked (or on a terminal without NO_COLOR).
    let out = d.cli(&["status"]);
    assert!(!text(&out.stdout).contains('\x1b'), "no colour into a pipe");
    let out = d.cli(&["--color", "always", "status"]);
    assert!(
        text(&out.stdout).contains("\x1b[1mSTATE"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stdout).contains("\x1b[32mdone\x1b[0m"));

    // --- Item 8: status is a health probe: a failed source makes it exit 4.
    assert_eq!(d.cli(&["status"]).status.code(), Some(0));
    let broken = env.footage().join("broken.mp4");
    std::fs::write(&broken, b"not a video at all").unwrap();
    let out = d.cli(&["ingest", "--wait", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(d.cli(&["status"]).status.code(), Some(4));
    assert_eq!(
        Command::new(env!("CARGO_BIN_EXE_frameseek"))
            .args(["--socket", &sock, "--json", "status"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(4)
    );
}

#[test]
fn dev_commands_are_hidden_but_run_and_embed_takes_the_configured_model() {
    let out = Command::new(env!("CARGO_BIN_EXE_frameseek"))
        .arg("--help")
        .output()
        .unwrap();
    let help = text(&out.stdout);
    for hidden in ["bench-embed", "bench-text", "bench-decode", "world"] {
        assert!(!help.contains(hidden), "{hidden} in --help:\n{help}");
        let out = Command::new(env!("CARGO_BIN_EXE_frameseek"))
            .args([hidden, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{hidden} --help");
    }
    for shown in ["search", "status", "embed", "eval", "demo"] {
        assert!(help.contains(shown), "{shown} missing from --help");
    }
    // embed without --model: model.path from the configuration.
    let env = TestEnv::new();
    let config = env.dir().join("c.toml");
    std::fs::write(
        &config,
        format!("[model]\npath = {:?}\n", test_model().display().to_string()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_frameseek"))
        .args(["--json", "--config", config.to_str().unwrap()])
        .args(["embed", "--device", "cpu", "--text", "a dog"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "text");
    assert!(!v["vector"].as_array().unwrap().is_empty());
}
