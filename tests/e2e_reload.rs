//! Reload on the real daemon (SIGHUP, what systemd's `ExecReload=` sends): a live camera
//! keeps running without a gap while a reload adds a watched folder and a retention policy,
//! whose file is then ingested and whose policy applies; a setting that needs a restart is
//! reported and not applied; a broken configuration is refused with the reason and the one
//! in force keeps working.

mod common;

use std::time::Duration;

use common::*;

fn hangup(d: &DaemonGuard) {
    let pid = d.child.as_ref().unwrap().id() as i32;
    // SAFETY: signals the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
}

/// `frameseek --utc --color never status`, the human table.
fn status_table(d: &DaemonGuard) -> String {
    let out = d.cli(&["--utc", "--color", "never", "status"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The camera's entry: running, connected, never dropped.
fn camera_unbroken(status: &serde_json::Value) -> &serde_json::Value {
    let gate = source_status(status, "gate");
    assert_eq!(gate["state"], "ingesting", "{gate}");
    assert_eq!(gate["live"]["connected"], true, "{gate}");
    assert_eq!(gate["live"]["reconnects"], 0, "{gate}");
    assert!(
        gate["live"]["outages"].as_array().unwrap().is_empty(),
        "{gate}"
    );
    gate
}

#[test]
fn sighup_adds_a_watched_folder_and_retention_without_a_gap_and_refuses_a_broken_file() {
    let env = TestEnv::new();
    let port = free_port();
    let _sender = send_udp(port);
    let mut d = env.start(&format!(
        "sample_interval = 0.5\nwatch_interval = 0.5\nlive_timeout = 1.5\n\n[[cameras]]\nname = \"gate\"\nurl = \"udp://127.0.0.1:{port}\"\n"
    ));
    let first = wait_status(&d, Duration::from_secs(15), "camera never sent", |s| {
        s["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["source"] == "gate" && g["frames"].as_u64() >= Some(2))
    });
    camera_unbroken(&first);
    assert!(first["reload"].is_null(), "no reload yet: {first}");

    // A folder that is not watched yet, with a video in it.
    let folder = env.footage().join("nvr");
    std::fs::create_dir_all(&folder).unwrap();
    let video = folder.join("a.mp4");
    test_pattern_video(&video, 6);
    let config_text = std::fs::read_to_string(&d.config).unwrap();
    let reloaded = config_text
        .replace(
            "sample_interval = 0.5\n",
            &format!(
                "sample_interval = 0.5\nwatch = [{:?}]\n",
                folder.display().to_string()
            ),
        )
        .replace("batch_size = 16", "batch_size = 8")
        + "\n[retention]\nmax_frames_per_source = 4\ninterval = 1.0\n";
    std::fs::write(&d.config, &reloaded).unwrap();
    hangup(&d);
    let status = wait_status(&d, Duration::from_secs(10), "reload not reported", |s| {
        !s["reload"].is_null()
    });
    let reload = &status["reload"];
    assert_eq!(reload["outcome"], "applied", "{reload}");
    assert!(reload["error"].is_null(), "{reload}");
    let applied: Vec<&str> = reload["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        applied.contains(&format!("ingest.watch added: {}", folder.display()).as_str()),
        "{reload}"
    );
    assert!(applied.contains(&"retention"), "{reload}");
    assert!(
        !applied.iter().any(|a| a.contains("gate")),
        "the camera did not change: {reload}"
    );
    assert_eq!(
        reload["needs_restart"],
        serde_json::json!(["model"]),
        "{reload}"
    );
    assert!(reload["at"].as_str().unwrap().ends_with('Z'), "{reload}");
    // The human table says the same on one line, the time in the display zone.
    let table = status_table(&d);
    let line = table
        .lines()
        .find(|l| l.starts_with("configuration reloaded "))
        .unwrap_or_else(|| panic!("no reload line: {table}"));
    let at = reload["at"].as_str().unwrap();
    assert!(
        line.contains(&format!("{} {} UTC", &at[..10], &at[11..19])),
        "{line}"
    );
    assert!(
        line.contains(&format!("ingest.watch added: {}", folder.display())),
        "{line}"
    );
    assert!(line.ends_with("needs a restart: model"), "{line}");

    // The watched folder's file is ingested; retention keeps 4 frames of each source.
    let file = source_id(&video);
    let done = wait_status(&d, Duration::from_secs(60), "watched file not done", |s| {
        s["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["source"] == file.as_str() && x["state"] == "done")
    });
    let after = wait_status(
        &d,
        Duration::from_secs(20),
        "retention did not apply",
        |s| {
            s["retention_removed"].as_u64() > Some(0)
                && source_status(s, &file)["frames"].as_u64() <= Some(4)
        },
    );
    assert!(
        source_status(&done, &file)["frames"].as_u64() >= Some(1),
        "{done}"
    );
    // The camera ran on across the reload: the same thread and connection (started once,
    // never stopped), no outage, no reconnect.
    camera_unbroken(&after);
    let log = d.log_text();
    assert_eq!(log.matches("live source started").count(), 1, "{log}");
    assert!(!log.contains("live source stopped"), "{log}");

    // A broken file is refused with the reason; the configuration in force stays.
    std::fs::write(&d.config, reloaded.replace("[retention]", "[retention\n")).unwrap();
    hangup(&d);
    let refused = wait_status(&d, Duration::from_secs(10), "refusal not reported", |s| {
        s["reload"]["outcome"] == "refused"
    });
    let reason = refused["reload"]["error"].as_str().unwrap();
    assert!(
        reason.contains("frameseek.toml"),
        "names the file: {reason}"
    );
    assert!(refused["reload"]["applied"].as_array().unwrap().is_empty());
    let table = status_table(&d);
    assert!(
        table.contains(&format!(
            "the previous configuration stays in force: {}\n",
            reason.replace('\n', "\n  ")
        )),
        "{table}"
    );
    assert!(d.log_text().contains("configuration reload refused"));
    // A folder outside the footage roots is refused too, naming the setting.
    std::fs::write(
        &d.config,
        reloaded.replace(
            &format!("watch = [{:?}]", folder.display().to_string()),
            "watch = [\"/etc\"]",
        ),
    )
    .unwrap();
    hangup(&d);
    let outside = wait_status(&d, Duration::from_secs(10), "refusal not reported", |s| {
        s["reload"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("ingest.watch") && e != reason)
    });
    assert_eq!(outside["reload"]["outcome"], "refused", "{outside}");
    // The old folder is still watched: a second file there is ingested too.
    let second = folder.join("b.mp4");
    test_pattern_video(&second, 4);
    let second_id = source_id(&second);
    wait_status(
        &d,
        Duration::from_secs(60),
        "second watched file not done",
        |s| {
            s["sources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["source"] == second_id.as_str() && x["state"] == "done")
        },
    );
    camera_unbroken(&d.cli_json(&["status"]));
    assert_eq!(d.log_text().matches("live source started").count(), 1);
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn a_removed_camera_stops_an_added_one_starts_and_a_changed_one_restarts() {
    let env = TestEnv::new();
    let (a, b) = (free_port(), free_port());
    let (_send_a, _send_b) = (send_udp(a), send_udp(b));
    let camera = |name: &str, port: u16, interval: &str| {
        format!("\n[[cameras]]\nname = \"{name}\"\nurl = \"udp://127.0.0.1:{port}\"\n{interval}")
    };
    let mut d = env.start(&format!(
        "sample_interval = 0.5\nlive_timeout = 1.5\n{}{}",
        camera("gate", a, ""),
        camera("yard", b, "")
    ));
    let running = |s: &serde_json::Value, name: &str| {
        s["sources"].as_array().unwrap().iter().any(|x| {
            x["source"] == name && x["state"] == "ingesting" && x["frames"].as_u64() >= Some(1)
        })
    };
    wait_status(&d, Duration::from_secs(15), "cameras never sent", |s| {
        running(s, "gate") && running(s, "yard")
    });
    // yard removed, gate's interval changed, door added (on yard's sender).
    let text = std::fs::read_to_string(&d.config).unwrap();
    let head = &text[..text.find("\n[[cameras]]").unwrap()];
    std::fs::write(
        &d.config,
        format!(
            "{head}\n{}{}",
            camera("gate", a, "sample_interval = 1.0\n"),
            camera("door", b, "")
        ),
    )
    .unwrap();
    hangup(&d);
    let status = wait_status(&d, Duration::from_secs(15), "door never sent", |s| {
        !s["reload"].is_null() && running(s, "door")
    });
    let reload = &status["reload"];
    assert_eq!(reload["outcome"], "applied", "{reload}");
    assert_eq!(
        reload["applied"],
        serde_json::json!([
            "camera added: door",
            "camera restarted: gate",
            "camera removed: yard"
        ]),
        "{reload}"
    );
    let yard = source_status(&status, "yard");
    assert_eq!(yard["state"], "done", "{yard}");
    assert_eq!(
        yard["error"], "camera no longer in the configuration",
        "{yard}"
    );
    wait_status(&d, Duration::from_secs(15), "gate not restarted", |s| {
        running(s, "gate")
    });
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn the_unit_file_reloads_with_sighup() {
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/frameseek.service"),
    )
    .unwrap();
    assert!(
        unit.lines()
            .any(|l| l.trim() == "ExecReload=/bin/kill -HUP $MAINPID"),
        "{unit}"
    );
}
