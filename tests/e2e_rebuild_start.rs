//! A rebuild of the index (after a change of `index.precision`, an upgrade, or damage) never
//! blocks the start (issue 15): the daemon tells systemd `READY=1` and answers while the
//! index is rebuilt in the background. Searches are refused with `rebuilding` until it is
//! done, `status` shows its progress, and a stop in the middle saves what was built, so the
//! next start goes on from there instead of beginning again.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use frameseek::catalog::Catalog;
use frameseek::embed::{DeviceChoice, Embedder};
use frameseek::index::IndexSettings;
use frameseek::store::{frame_key, Fingerprint, Store};

#[path = "../benches/support/synthetic.rs"]
mod synthetic;

/// A unit vector from a seed, `dim` long.
fn unit(seed: u64, dim: usize) -> Vec<f32> {
    let mut rng = synthetic::Rng(seed);
    let mut v: Vec<f32> = (0..dim).map(|_| rng.normal_pair().0).collect();
    synthetic::normalise(&mut v);
    v
}

/// Frames in the state: enough that rebuilding them takes seconds (several chunks of
/// 16,384), far longer than the daemon takes to become ready and answer a few requests.
const FRAMES: u64 = 60_000;

/// Writes a state of [`FRAMES`] stored vectors for the test model and no index file (as
/// after damage, or an upgrade that sets the index aside).
fn stale_state(state: &Path) {
    let model = Embedder::load(test_model().to_str().unwrap(), DeviceChoice::Cpu).unwrap();
    let identity = model.identity().clone();
    // The catalog records the model; the frames go straight to the store, so that writing
    // them builds no index.
    drop(Catalog::open(state, &identity, &IndexSettings::default(), 1 << 30).unwrap());
    let store = Store::open(&state.join("db")).unwrap();
    let no = store
        .new_source("/srv/footage/long.mp4", Fingerprint::default(), 1.0, None)
        .unwrap()
        .no;
    for batch in 0..FRAMES / 10_000 {
        let rows: Vec<(u64, Vec<f32>)> = (batch * 10_000..(batch + 1) * 10_000)
            .map(|i| (frame_key(no, i * 1000), unit(i, identity.dim)))
            .collect();
        let refs: Vec<(u64, &[f32])> = rows.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        store.commit_frames(&refs).unwrap();
    }
    store.flush().unwrap();
    let _ = std::fs::remove_file(state.join("index.usearch"));
}

/// `frameseek serve` on `config` with `NOTIFY_SOCKET` and its log in `log`.
fn serve(config: &Path, notify: &Path, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_frameseek"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("NOTIFY_SOCKET", notify)
        .env("FRAMESEEK_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Reads notifications until `READY=1`; returns those before it.
fn until_ready(notify: &UnixDatagram, child: &mut Child) -> Vec<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = notify.recv(&mut buf).unwrap_or_else(|e| {
            let _ = child.kill();
            panic!("no READY=1 ({e}); got {got:?}")
        });
        let message = String::from_utf8_lossy(&buf[..n]).into_owned();
        if message == "READY=1" {
            return got;
        }
        got.push(message);
    }
}

fn cli(socket: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_frameseek"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn stop(child: &mut Child) {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
}

#[test]
fn the_daemon_is_ready_and_answers_while_the_index_rebuilds_and_a_restart_goes_on_with_it() {
    let env = TestEnv::new();
    let state = env.dir().join("state");
    stale_state(&state);
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
    let first_log = env.dir().join("first.log");
    let mut child = serve(&config, &notify_path, &first_log);
    until_ready(&notify, &mut child);

    // Ready, and still rebuilding: status shows the progress, a search is refused with
    // `rebuilding` (exit 1, the reason on stderr), the other requests are answered.
    let status = json(&cli(&socket, &["--json", "status"]));
    let rebuild = &status["index_rebuild"];
    assert!(rebuild.is_object(), "rebuilding at READY: {status}");
    assert_eq!(rebuild["total"].as_u64(), Some(FRAMES), "{status}");
    assert!(
        rebuild["added"].as_u64().unwrap() < FRAMES,
        "not done: {status}"
    );
    assert!(
        rebuild["reason"].as_str().unwrap().contains("missing"),
        "{status}"
    );
    assert_eq!(status["frames"].as_u64(), Some(FRAMES), "{status}");
    let table = cli(&socket, &["status"]);
    let table_text = String::from_utf8_lossy(&table.stdout);
    assert!(
        table_text.contains("INDEX REBUILDING:") && table_text.contains(&format!("of {FRAMES}")),
        "{table_text}"
    );
    let search = cli(&socket, &["search", "anything"]);
    assert!(!search.status.success());
    let err = String::from_utf8_lossy(&search.stderr);
    assert!(
        err.contains("rebuilding") && err.contains("frameseek status"),
        "{err}"
    );
    let mut client = frameseek::client::Client::connect(&socket).unwrap();
    let request = frameseek::protocol::Request::Search(frameseek::protocol::SearchRequest {
        text: Some("x".into()),
        ..Default::default()
    });
    match client.call(&request) {
        Err(frameseek::client::ClientError::Refused(e)) => {
            assert_eq!(e.code, frameseek::protocol::ErrorCode::Rebuilding, "{e:?}")
        }
        other => panic!("not refused with `rebuilding`: {other:?}"),
    }

    // A stop in the middle saves the part built; the next start goes on from it.
    stop(&mut child);
    let log = std::fs::read_to_string(&first_log).unwrap();
    assert!(
        log.contains("index rebuild stopped by the shutdown"),
        "{log}"
    );
    assert!(!state.join("index.usearch").exists());
    let second_log = env.dir().join("second.log");
    let mut child = serve(&config, &notify_path, &second_log);
    until_ready(&notify, &mut child);
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let status = json(&cli(&socket, &["--json", "status"]));
        if status["index_rebuild"].is_null() {
            break;
        }
        assert!(Instant::now() < deadline, "rebuild never ends: {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = std::fs::read_to_string(&second_log).unwrap();
    assert!(
        log.contains("going on with the index rebuild where the last shutdown stopped it"),
        "{log}"
    );
    assert!(
        log.contains("index rebuilt from the stored vectors"),
        "{log}"
    );
    let stats = json(&cli(&socket, &["--json", "stats"]));
    assert_eq!(stats["indexed"].as_u64(), Some(FRAMES), "{stats}");
    let found = json(&cli(&socket, &["--json", "search", "anything", "-k", "1"]));
    assert_eq!(found["clips"].as_array().unwrap().len(), 1, "{found}");
    stop(&mut child);
    assert!(state.join("index.usearch").exists(), "checkpointed");
}
