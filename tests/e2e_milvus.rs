//! Issue 18: two daemons, two state folders, one real Milvus (PyPI's `milvus` 2.3.5, the
//! standalone server with etcd embedded, installed by `tools/setup.sh` into `.venv-milvus`).
//!
//! Milvus listens on every interface, so each test starts it inside a network namespace of
//! its own that has only loopback (`unshare --net`, `ip link set lo up`), runs both daemons
//! in that namespace (`nsenter --net=…`), and moves its own thread into it to count rows.
//! The daemons' Unix sockets are files, reachable from any namespace. Milvus is stopped by
//! its process group. `FRAMESEEK_SKIP_MILVUS=1` skips these tests, loudly; nothing else does.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{source_id, test_pattern_video, wait_finished, DaemonGuard, TestEnv};
use frameseek::milvus::{Milvus, MilvusSettings};

/// One Milvus at a time: each needs about 1 GB and most of a core while it starts.
static ONE_MILVUS: std::sync::Mutex<()> = std::sync::Mutex::new(());

const COLLECTION: &str = "frameseek_e2e";

fn skip() -> bool {
    if std::env::var("FRAMESEEK_SKIP_MILVUS").as_deref() == Ok("1") {
        eprintln!("\n\n*** SKIPPED: the Milvus end-to-end tests (FRAMESEEK_SKIP_MILVUS=1) ***\n\n");
        return true;
    }
    false
}

/// The Python of `.venv-milvus` and `tools/milvus_server.py`, which starts Milvus keeping
/// its ports across restarts.
fn milvus_server() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = root.join(".venv-milvus/bin/milvus-server");
    assert!(
        exe.exists(),
        "{} is missing: run `bash tools/setup.sh` (it installs milvus 2.3.5 into .venv-milvus), or set FRAMESEEK_SKIP_MILVUS=1 to skip these tests",
        exe.display()
    );
    (
        root.join(".venv-milvus/bin/python"),
        root.join("tools/milvus_server.py"),
    )
}

/// A network namespace with only loopback, held open by a `sleep` inside it.
struct NetNs {
    holder: common::Proc,
}

impl NetNs {
    fn new() -> Self {
        let holder = Command::new("unshare")
            .args(["--net", "--", "sleep", "infinity"])
            .spawn()
            .expect("unshare (util-linux) runs");
        let ns = Self {
            holder: common::Proc(holder),
        };
        // `unshare` execs `sleep` once the namespace exists.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_link(format!("/proc/{}/exe", ns.pid()))
            .map_or(true, |p| !p.to_string_lossy().contains("sleep"))
        {
            assert!(Instant::now() < deadline, "unshare --net did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let up = Command::new("nsenter")
            .arg(ns.net_arg())
            .args(["ip", "link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(up.success(), "ip link set lo up failed");
        ns
    }

    fn pid(&self) -> u32 {
        self.holder.0.id()
    }

    fn net_arg(&self) -> String {
        format!("--net=/proc/{}/ns/net", self.pid())
    }

    /// Moves the calling thread into the namespace (its TCP connections then reach Milvus).
    fn enter_this_thread(&self) {
        let f = std::fs::File::open(format!("/proc/{}/ns/net", self.pid())).unwrap();
        let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
    }

    /// The wrapper that runs a daemon named `node` inside the namespace.
    fn daemon_wrapper(&self, node: &str) -> Vec<String> {
        vec![
            "nsenter".into(),
            self.net_arg(),
            "env".into(),
            format!("FRAMESEEK__DAEMON__NODE={node}"),
        ]
    }
}

/// The Milvus server in the namespace, in a process group of its own.
struct MilvusProcess {
    child: Option<std::process::Child>,
    data: PathBuf,
}

impl MilvusProcess {
    fn start(ns: &NetNs, data: &Path) -> Self {
        use std::os::unix::process::CommandExt;
        std::fs::create_dir_all(data).unwrap();
        let log = std::fs::File::create(data.join("server.log")).unwrap();
        let (python, script) = milvus_server();
        let child = Command::new("nsenter")
            .arg(ns.net_arg())
            .arg(python)
            .arg(script)
            .arg("--data")
            .arg(data)
            .process_group(0)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let me = Self {
            child: Some(child),
            data: data.to_path_buf(),
        };
        let m = client(64);
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            // Any answer of Milvus's own (a missing collection too) means the proxy serves.
            match m.count(None) {
                Ok(_) | Err(frameseek::milvus::MilvusError::Refused { .. }) => break,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "Milvus did not start within 180 s ({e}); its log: {}\n...{}",
                    std::fs::read_to_string(data.join("server.log")).unwrap_or_default(),
                    log_tail(&data.join("logs/milvus-stdout.log"))
                ),
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        me
    }

    /// Stops the whole process group: SIGTERM, then SIGKILL after 20 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pgid = child.id() as i32;
        // The launcher dies at once; the server (its child, same group) shuts down slower.
        let group_alive = || unsafe { libc::kill(-pgid, 0) } == 0;
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let _ = child.wait();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && group_alive() {
            std::thread::sleep(Duration::from_millis(100));
        }
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while group_alive() {
            assert!(
                Instant::now() < deadline,
                "Milvus's processes outlived SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for MilvusProcess {
    fn drop(&mut self) {
        self.stop();
        let _ = &self.data;
    }
}

/// The last lines of a log file, for a failure's message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A client of the test's own (from a thread inside the namespace).
fn client(dim: usize) -> Milvus {
    let settings = MilvusSettings {
        uri: "http://127.0.0.1:19530".into(),
        collection: COLLECTION.into(),
        timeout: 5.0,
        ..Default::default()
    };
    Milvus::new(&settings, "test", dim).unwrap()
}

/// The `[index]`/`[milvus]` sections appended after `[ingest]`'s `extra` lines.
fn milvus_config(extra_ingest: &str) -> String {
    format!(
        "{extra_ingest}\n\n[index]\nbackend = \"milvus\"\n\n[milvus]\nuri = \"http://127.0.0.1:19530\"\ncollection = \"{COLLECTION}\"\ntimeout = 3.0\n"
    )
}

fn start_node(env: &TestEnv, ns: &NetNs, node: &str, extra_ingest: &str) -> DaemonGuard {
    env.start_wrapped(
        &milvus_config(extra_ingest),
        &common::test_model(),
        &ns.daemon_wrapper(node),
    )
}

fn milvus_status(d: &DaemonGuard) -> serde_json::Value {
    let s = d.cli_json(&["status"]);
    assert!(s["milvus"].is_object(), "no milvus in status: {s}");
    s
}

/// Waits until the node's outbox is empty and Milvus reachable; returns its frame count.
fn wait_drained(d: &DaemonGuard, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let s = milvus_status(d);
        let m = &s["milvus"];
        if m["reachable"] == true && m["backlog"] == 0 && m["backlog_deletes"] == 0 {
            return s["frames"].as_u64().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "outbox not drained: {m}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The vectors a node stores: one per view of each frame (issue 16), each a row in Milvus.
fn stored_views(d: &DaemonGuard) -> u64 {
    let s = d.cli_json(&["stats"]);
    s["views"]
        .as_u64()
        .unwrap_or_else(|| panic!("no views in stats: {s}"))
}

/// Waits until Milvus counts `expected` rows (of `node`, or all), then checks the count
/// stays there (no late duplicate).
fn assert_count_settles(m: &Milvus, node: Option<&str>, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        let n = m.count(node).ok();
        if n == Some(expected) {
            std::thread::sleep(Duration::from_secs(2));
            assert_eq!(m.count(node).unwrap(), expected, "the count moved on");
            return;
        }
        last = n;
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("Milvus counts {last:?} rows of {node:?}, expected {expected}");
}

fn search(d: &DaemonGuard, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["search", "test pattern"];
    if !extra.contains(&"-k") {
        args.extend(["-k", "5"]);
    }
    args.extend_from_slice(extra);
    let r = d.cli_json(&args);
    r["clips"]
        .as_array()
        .unwrap_or_else(|| panic!("no clips: {r}"))
        .clone()
}

#[test]
fn two_daemons_search_one_milvus_with_filters_inside_it() {
    if skip() {
        return;
    }
    let _one = ONE_MILVUS.lock().unwrap_or_else(|e| e.into_inner());
    let (env_a, env_b) = (TestEnv::new(), TestEnv::new());
    let ns = NetNs::new();
    ns.enter_this_thread();
    let _milvus = MilvusProcess::start(&ns, &env_a.dir().join("milvus"));
    let (va, vb) = (
        env_a.footage().join("lobby/a.mp4"),
        env_b.footage().join("yard/b.mp4"),
    );
    test_pattern_video(&va, 6);
    test_pattern_video(&vb, 8);
    let a = start_node(&env_a, &ns, "node-a", "sample_interval = 0.5");
    let b = start_node(&env_b, &ns, "node-b", "sample_interval = 0.5");
    a.ingest_wait(&[&va]);
    b.ingest_wait(&[&vb]);
    let (ida, idb) = (source_id(&va), source_id(&vb));
    wait_finished(&a, &[&ida]);
    wait_finished(&b, &[&idb]);
    let (fa, fb) = (
        wait_drained(&a, Duration::from_secs(120)),
        wait_drained(&b, Duration::from_secs(120)),
    );
    assert!(fa >= 10 && fb >= 14, "frames: {fa}, {fb}");
    // One row per view of each frame.
    let (rows_a, rows_b) = (stored_views(&a), stored_views(&b));
    assert!(rows_a >= fa && rows_b >= fb, "views: {rows_a}, {rows_b}");
    let m = client(64);
    assert_count_settles(&m, None, rows_a + rows_b);
    assert_count_settles(&m, Some("node-a"), rows_a);

    // Alerts stay each node's own (it evaluates what it ingests); its incidents name it.
    let added = a.cli(&[
        "alert",
        "add",
        "any",
        "test pattern",
        "--backfill",
        "--min-confidence",
        "0",
    ]);
    assert!(added.status.success(), "{added:?}");
    let history = a.cli_json(&["alerts", "--since", "1h"]);
    let incidents = history["incidents"].as_array().expect("incidents");
    assert!(!incidents.is_empty(), "{history}");
    assert!(
        incidents
            .iter()
            .all(|i| i["node"] == "node-a" && i["source"] == ida.as_str()),
        "{history}"
    );

    // A search on either node answers from both; each clip names its node.
    for d in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let clips = search(d, &["-k", "20"]);
            let nodes: std::collections::HashSet<&str> =
                clips.iter().filter_map(|c| c["node"].as_str()).collect();
            let sources: std::collections::HashSet<&str> =
                clips.iter().filter_map(|c| c["source"].as_str()).collect();
            if nodes.len() == 2 {
                assert_eq!(
                    sources,
                    [ida.as_str(), idb.as_str()].into_iter().collect(),
                    "{clips:?}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "clips of one node only: {clips:?}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    // Filters run inside Milvus; a full page comes back whenever k clips match.
    let all_b = search(&a, &["--node", "node-b", "-k", "50"]);
    assert!(all_b.len() >= 3, "{all_b:?}");
    let node_b = search(&a, &["--node", "node-b", "-k", "3"]);
    assert_eq!(node_b.len(), 3, "{node_b:?}");
    assert!(node_b
        .iter()
        .all(|c| c["node"] == "node-b" && c["source"] == idb.as_str()));
    let ranged = search(&a, &["--node", "node-b", "--from", "1", "--to", "4"]);
    assert!(!ranged.is_empty());
    for c in &ranged {
        let (s, e) = (
            c["start_ms"].as_u64().unwrap(),
            c["best_ms"].as_u64().unwrap(),
        );
        assert!(s >= 1000 && e <= 4000, "{c}");
    }
    let glob = format!(
        "{}/yard/*",
        env_b.footage().canonicalize().unwrap().display()
    );
    let by_glob = search(&a, &["--source", &glob]);
    assert!(!by_glob.is_empty() && by_glob.iter().all(|c| c["source"] == idb.as_str()));
    let by_name = search(&b, &["--source", "a.mp*"]);
    assert!(!by_name.is_empty() && by_name.iter().all(|c| c["node"] == "node-a"));
    let none = search(&a, &["--node", "node-c"]);
    assert!(none.is_empty(), "{none:?}");

    // Another node's footage: a clear error naming that node.
    let out = a.cli(&[
        "--json", "export", "--source", &idb, "--from", "0", "--to", "1",
    ]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("node-b") && text.contains("other_node"),
        "{text}"
    );
    let raw = a.client().call(&frameseek::protocol::Request::Frame(
        frameseek::protocol::FrameRequest {
            source: ida.clone(),
            at_ms: 0,
            max_width: None,
            node: Some("node-b".into()),
        },
    ));
    match raw {
        Err(frameseek::client::ClientError::Refused(e)) => {
            assert_eq!(e.code, frameseek::protocol::ErrorCode::OtherNode);
            assert!(e.message.contains("node-b"), "{}", e.message);
        }
        other => panic!("frame of node-b's clip: {other:?}"),
    }

    // Forget deletes in Milvus too; forget --node removes a retired server's rows.
    let forgot = a.cli_json(&["forget", &ida]);
    assert_eq!(forgot["frames_removed"].as_u64().unwrap(), fa);
    wait_drained(&a, Duration::from_secs(60));
    assert_count_settles(&m, Some("node-a"), 0);
    assert_count_settles(&m, None, rows_b);
    let own = a.cli(&["forget", "--node", "node-a"]);
    assert!(
        !own.status.success(),
        "forgetting its own node must be refused"
    );
    let retired = a.cli_json(&["forget", "--node", "node-b"]);
    assert_eq!(retired["node"], "node-b");
    assert_eq!(retired["frames_removed"].as_u64().unwrap(), rows_b);
    assert_count_settles(&m, None, 0);

    filtered_searches_equal_the_exact_answer(&m);
    views_keep_their_regions_and_a_zone_filters_them_inside_milvus(&m);
}

/// Rows of views (issue 16) carry the view and its region: a frame is found by its best
/// view, whose region the clip carries; a zone filter, run by Milvus, keeps only views
/// overlapping it, and frames stored before views (no region) pass it.
fn views_keep_their_regions_and_a_zone_filters_them_inside_milvus(m: &Milvus) {
    use frameseek::embed::Region;
    use frameseek::milvus::FrameRow;
    use frameseek::query::{remote::search_remote, Filter};
    use frameseek::store::view_key;
    let dim = 64;
    let axis = |weights: &[(usize, f32)]| {
        let mut v = vec![0.0f32; dim];
        for &(i, w) in weights {
            v[i] = w;
        }
        v
    };
    let region = |x, w| Region {
        x,
        y: 0.0,
        w,
        h: 1.0,
    };
    let (whole, left, right) = (region(0.0, 1.0), region(0.0, 0.5), region(0.5, 0.5));
    let row = |no: u32, view: usize, vector: Vec<f32>, region: Option<Region>| FrameRow {
        key: view_key(no, 0, view),
        vector,
        source: format!("views/{no}.mp4"),
        start_wall_ms: None,
        interval_ms: 1000,
        region,
    };
    let h = std::f32::consts::FRAC_1_SQRT_2;
    let rows = [
        // Source 0 with views: the right half matches the query best.
        row(0, 0, axis(&[(0, h), (1, h)]), Some(whole)),
        row(0, 1, axis(&[(1, 1.0)]), Some(left)),
        row(0, 2, axis(&[(0, 1.0)]), Some(right)),
        // Source 1, stored before views: one view, no region.
        row(1, 0, axis(&[(0, 0.6), (2, 0.8)]), None),
    ];
    m.write_frames(&rows).unwrap();
    assert_count_settles(m, Some("test"), rows.len() as u64);
    let query = axis(&[(0, 1.0)]);
    let by_source = |clips: &[frameseek::query::Clip], s: &str| {
        clips
            .iter()
            .find(|c| c.source == s)
            .cloned()
            .unwrap_or_else(|| panic!("no clip of {s}: {clips:?}"))
    };
    // Scored exactly (a selective filter): Milvus's approximate search over a growing
    // segment may miss a row, which is not what this checks.
    let every = Filter {
        source: Some("views/*".into()),
        ..Default::default()
    };
    let all = search_remote(m, &query, 10, &every, 0).unwrap();
    assert_eq!(
        all.len(),
        2,
        "one clip per frame, however many views: {all:?}"
    );
    let best = by_source(&all, "views/0.mp4");
    assert_eq!((best.view, best.region), (2, Some(right)), "{all:?}");
    assert_eq!(by_source(&all, "views/1.mp4").region, None);
    // A zone in the left part: the right view is out, the whole frame and the old frame in.
    let zoned = search_remote(
        m,
        &query,
        10,
        &Filter {
            region: Some(region(0.0, 0.4)),
            ..every.clone()
        },
        0,
    )
    .unwrap();
    assert_eq!(zoned.len(), 2, "{zoned:?}");
    let best = by_source(&zoned, "views/0.mp4");
    assert_eq!((best.view, best.region), (0, Some(whole)), "{zoned:?}");
    assert_eq!(by_source(&zoned, "views/1.mp4").region, None);
    // A zone touching the right view only at its edge (x = 0.5) leaves it out, as locally.
    let touching = search_remote(
        m,
        &query,
        10,
        &Filter {
            region: Some(region(0.0, 0.5)),
            ..every.clone()
        },
        0,
    )
    .unwrap();
    assert!(
        touching.iter().all(|c| c.view != 2),
        "the right view only touches the zone: {touching:?}"
    );
    m.delete_node("test").unwrap();
    assert_count_settles(m, None, 0);
}

/// A filtered search over enough rows for Milvus to build its interim (IVF) index on the
/// growing segment returns the exact top 10: 40 sources of 500 random frames written
/// straight into Milvus, one source and an offset range (by id and by glob) against a
/// brute-force scan of the same vectors.
fn filtered_searches_equal_the_exact_answer(m: &Milvus) {
    use frameseek::milvus::FrameRow;
    use frameseek::query::{remote::search_remote, Filter};
    let dim = 64;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut unit = move || {
        let mut v: Vec<f32> = (0..dim)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 11) as f32 / (1u64 << 53) as f32 - 0.5
            })
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        v
    };
    let rows: Vec<FrameRow> = (0..40u32)
        .flat_map(|no| (0..500u64).map(move |i| (no, i * 40)))
        .map(|(no, off)| FrameRow {
            key: frameseek::store::frame_key(no, off),
            vector: unit(),
            source: format!("syn/s{no:02}.mp4"),
            start_wall_ms: None,
            interval_ms: 40,
            region: None,
        })
        .collect();
    for batch in rows.chunks(2000) {
        m.write_frames(batch).unwrap();
    }
    assert_count_settles(m, Some("test"), rows.len() as u64);
    let query = unit();
    let mut exact: Vec<(f32, u64)> = rows
        .iter()
        .filter(|r| r.source == "syn/s07.mp4")
        .map(|r| (frameseek::store::split_key(r.key).1, &r.vector))
        .filter(|(off, _)| (2000..=16_000).contains(off))
        .map(|(off, v)| (v.iter().zip(&query).map(|(a, b)| a * b).sum(), off))
        .collect();
    exact.sort_by(|a, b| b.0.total_cmp(&a.0));
    let expected: Vec<u64> = exact.iter().take(10).map(|e| e.1).collect();
    for source in ["syn/s07.mp4", "syn/s07*"] {
        let filter = Filter {
            source: Some(source.into()),
            start_ms: Some(2000),
            end_ms: Some(16_000),
            ..Default::default()
        };
        let clips = search_remote(m, &query, 10, &filter, 0).unwrap();
        let got: Vec<u64> = clips.iter().map(|c| c.best_ms).collect();
        assert_eq!(got, expected, "filter {source}: {clips:?}");
    }
    // What Milvus's own approximate search gives under the same filter (for the log).
    let ann = m
        .search(
            &query,
            10,
            &frameseek::query::remote::milvus_filter(&Filter {
                source: Some("syn/s07.mp4".into()),
                start_ms: Some(2000),
                end_ms: Some(16_000),
                ..Default::default()
            }),
        )
        .unwrap();
    let found = ann
        .iter()
        .filter(|h| expected.contains(&h.offset_ms))
        .count();
    eprintln!("Milvus's approximate search under the filter: {found}/10 of the exact top 10");
    m.delete_node("test").unwrap();
}

#[test]
fn milvus_outage_and_kill9_during_a_drain_lose_nothing_and_duplicate_nothing() {
    if skip() {
        return;
    }
    let _one = ONE_MILVUS.lock().unwrap_or_else(|e| e.into_inner());
    let (env_a, env_b) = (TestEnv::new(), TestEnv::new());
    let ns = NetNs::new();
    ns.enter_this_thread();
    let data = env_a.dir().join("milvus");
    let mut milvus = MilvusProcess::start(&ns, &data);
    // Every frame of 25 fps footage: thousands of frames, several drain batches.
    let interval = "sample_interval = 0.04";
    let a = start_node(&env_a, &ns, "node-a", interval);
    let mut b = start_node(&env_b, &ns, "node-b", interval);
    let va = env_a.footage().join("a1.mp4");
    test_pattern_video(&va, 40);
    a.ingest_wait(&[&va]);
    wait_drained(&a, Duration::from_secs(120));

    // Milvus goes down during ingest: ingest goes on, status shows the backlog.
    let vb = env_b.footage().join("b1.mp4");
    test_pattern_video(&vb, 120);
    let va2 = env_a.footage().join("a2.mp4");
    test_pattern_video(&va2, 20);
    let queued = a.cli(&["ingest", va2.to_str().unwrap()]);
    assert!(queued.status.success());
    milvus.stop();
    b.ingest_wait(&[&vb]);
    wait_finished(&a, &[&source_id(&va2)]);
    wait_finished(&b, &[&source_id(&vb)]);
    let s = milvus_status(&a);
    assert_eq!(s["milvus"]["reachable"], false, "{s}");
    assert!(s["milvus"]["backlog"].as_u64().unwrap() > 0, "{s}");
    assert!(
        s["milvus"]["last_error"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{s}"
    );
    let refused = a.cli(&["--json", "search", "test pattern"]);
    assert!(
        String::from_utf8_lossy(&refused.stdout).contains("unavailable")
            || String::from_utf8_lossy(&refused.stderr).contains("unavailable"),
        "a search while Milvus is down says so"
    );
    let backlog_b = milvus_status(&b)["milvus"]["backlog"].as_u64().unwrap();
    assert!(
        backlog_b > 2 * frameseek::milvus::drain::WRITE_BATCH as u64,
        "backlog {backlog_b}"
    );

    // Milvus returns; node b is killed with SIGKILL in the middle of its drain.
    let milvus = MilvusProcess::start(&ns, &data);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = milvus_status(&b)["milvus"]["backlog"].as_u64().unwrap();
        if left < backlog_b && left > 0 {
            b.kill9();
            break;
        }
        assert!(left > 0, "the drain ended before the kill could land");
        assert!(Instant::now() < deadline, "node b's drain never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let b = start_node(&env_b, &ns, "node-b", interval);
    wait_drained(&a, Duration::from_secs(180));
    wait_drained(&b, Duration::from_secs(180));
    // One row per view of each frame: the collection holds what the nodes store.
    let (fa, fb) = (stored_views(&a), stored_views(&b));
    let m = client(64);
    assert_count_settles(&m, Some("node-a"), fa);
    assert_count_settles(&m, Some("node-b"), fb);
    assert_count_settles(&m, None, fa + fb);
    drop(milvus);
}
