//! A rebuild of the index before the daemon is ready (after a change of `index.precision`,
//! an upgrade, or damage) asks systemd for more start time as it goes, so that a rebuild
//! longer than `TimeoutStartSec=` cannot put the service into a restart loop (issue 15).

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use frameseek::catalog::Catalog;
use frameseek::embed::{DeviceChoice, Embedder};
use frameseek::index::IndexSettings;
use frameseek::store::{frame_key, Fingerprint};

#[path = "../benches/support/synthetic.rs"]
mod synthetic;

/// A unit vector from a seed, `dim` long.
fn unit(seed: u64, dim: usize) -> Vec<f32> {
    let mut rng = synthetic::Rng(seed);
    let mut v: Vec<f32> = (0..dim).map(|_| rng.normal_pair().0).collect();
    synthetic::normalise(&mut v);
    v
}

#[test]
fn a_rebuild_before_ready_extends_systemds_start_timeout_and_reports_progress() {
    let env = TestEnv::new();
    let state = env.dir().join("state");
    let frames = 12_000u64;
    {
        let model = Embedder::load(test_model().to_str().unwrap(), DeviceChoice::Cpu).unwrap();
        let identity = model.identity().clone();
        let (catalog, _) =
            Catalog::open(&state, &identity, &IndexSettings::default(), 1 << 30).unwrap();
        let no = catalog
            .store()
            .new_source("/srv/footage/long.mp4", Fingerprint::default(), 1.0, None)
            .unwrap()
            .no;
        for batch in 0..frames / 4000 {
            let rows: Vec<(u64, Vec<f32>)> = (batch * 4000..(batch + 1) * 4000)
                .map(|i| (frame_key(no, i * 1000), unit(i, identity.dim)))
                .collect();
            catalog.commit(&rows).unwrap();
        }
        catalog.checkpoint().unwrap();
    }
    // Damage: the index is gone, the stored vectors are there.
    std::fs::remove_file(state.join("index.usearch")).unwrap();
    let notify_path = env.dir().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let socket = env.dir().join("fs.sock");
    let config = env.dir().join("frameseek.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nsocket = {:?}\nstate_dir = {:?}\nfootage_roots = [{:?}]\n[model]\npath = {:?}\ndevice = \"cpu\"\n",
            socket.display().to_string(),
            state.display().to_string(),
            env.footage().display().to_string(),
            test_model().display().to_string()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_frameseek"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("NOTIFY_SOCKET", &notify_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.iter().any(|m: &String| m == "READY=1") {
        let n = notify.recv(&mut buf).unwrap_or_else(|e| {
            let _ = child.kill();
            panic!("no READY=1 ({e}); got {got:?}")
        });
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let ready = got.iter().position(|m| m == "READY=1").unwrap();
    let before = &got[..ready];
    assert!(
        before.iter().any(|m| m.starts_with("EXTEND_TIMEOUT_USEC=")),
        "the rebuild asks systemd for time before READY=1: {got:?}"
    );
    assert!(
        before
            .iter()
            .any(|m| m.starts_with("STATUS=rebuilding the index")
                && m.ends_with(&format!("of {frames}"))),
        "progress shows in systemctl status: {got:?}"
    );
    // And the rebuild was complete: every stored vector is searchable.
    let out = Command::new(env!("CARGO_BIN_EXE_frameseek"))
        .args(["--socket", socket.to_str().unwrap(), "--json", "stats"])
        .output()
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["indexed"].as_u64(), Some(frames), "{stats}");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
}
