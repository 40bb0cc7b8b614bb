//! Load on the real daemon: 50 clients issue searches and status calls at once for a bounded
//! time while a file is being ingested. No errors, no dropped connections, bounded memory.

mod common;

use std::time::{Duration, Instant};

use common::*;
use frameseek::devkit::samples::render_scene_video;
use frameseek::protocol::{Request, SearchRequest};

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap()
}

#[test]
fn fifty_concurrent_clients_get_answers_while_ingest_runs() {
    let env = TestEnv::new();
    let video = env.footage().join("busy.mp4");
    render_scene_video(&video, &["testsrc2", "smptehdbars", "mandelbrot"], 10.0).unwrap();
    let d = env.start("sample_interval = 0.1\n");
    let pid = d.child.as_ref().unwrap().id();
    // Warm up, then measure memory before the load.
    d.cli_json(&["search", "warm up"]);
    let rss_before = rss_kb(pid);
    d.cli_json(&["ingest", video.to_str().unwrap()]);

    let deadline = Instant::now() + Duration::from_secs(8);
    let socket = d.socket.clone();
    let workers: Vec<_> = (0..50)
        .map(|i| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut client = frameseek::client::Client::connect(&socket).expect("connect");
                let mut answered = 0u32;
                let mut searches = 0u32;
                while Instant::now() < deadline {
                    let request = if i % 5 == 0 {
                        Request::Status(Default::default())
                    } else {
                        searches += 1;
                        Request::Search(SearchRequest {
                            text: Some(format!("query number {i} {answered}")),
                            k: Some(5),
                            ..Default::default()
                        })
                    };
                    client
                        .call(&request)
                        .unwrap_or_else(|e| panic!("client {i}: {e}"));
                    answered += 1;
                }
                (answered, searches)
            })
        })
        .collect();
    let counts: Vec<(u32, u32)> = workers
        .into_iter()
        .map(|w| w.join().expect("a client failed"))
        .collect();
    let answered: Vec<u32> = counts.iter().map(|c| c.0).collect();
    let searches: u32 = counts.iter().map(|c| c.1).sum();
    assert!(
        answered.iter().all(|&n| n > 0),
        "every client was served: {answered:?}"
    );
    let total: u32 = answered.iter().sum();
    let rss_after = rss_kb(pid);
    eprintln!("{total} requests from 50 clients in 8 s; RSS {rss_before} kB -> {rss_after} kB");
    assert!(
        rss_after < rss_before + 300 * 1024,
        "memory grew from {rss_before} kB to {rss_after} kB"
    );
    let stats = d.cli_json(&["stats"]);
    assert_eq!(
        stats["searches"].as_u64().unwrap(),
        u64::from(searches) + 1,
        "{stats}"
    );
    let (p50, p99) = (
        stats["search_ms_p50"].as_f64().unwrap(),
        stats["search_ms_p99"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p99 >= p50, "{stats}");
    eprintln!("search latency under load: p50 {p50:.1} ms, p99 {p99:.1} ms");
    // Ingest went on under the load.
    let status = wait_finished(&d, &[&source_id(&video)]);
    assert_eq!(status["sources"][0]["state"], "done", "{status}");
}

/// (thread name, nice value) of every thread of a process, from /proc.
fn thread_nice(pid: u32) -> Vec<(String, i32)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            let (head, rest) = stat.rsplit_once(") ")?;
            let name = head.split_once(" (")?.1.to_string();
            // After the name: state is field 3, nice is field 19.
            let nice = rest.split_whitespace().nth(16)?.parse().ok()?;
            Some((name, nice))
        })
        .collect()
}

#[test]
fn ingest_threads_run_niced_and_query_threads_do_not() {
    let env = TestEnv::new();
    let d = env.start("nice = 12\n");
    let pid = d.child.as_ref().unwrap().id();
    d.cli_json(&["search", "warm up"]);
    let threads = thread_nice(pid);
    // The main thread is named after the executable (the engine, which the client exec'd).
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    let base = threads
        .iter()
        .find(|(n, _)| n == comm.trim_end())
        .map(|t| t.1)
        .expect("main thread");
    let ingest = base.max(12);
    // The image tower's pool sits `ingest.embed_nice` (default nice + 5, at most 19) below.
    let tower = base.max(17);
    let of = |prefix: &str| -> Vec<i32> {
        threads
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|t| t.1)
            .collect()
    };
    for (prefix, want) in [
        ("decode-", ingest),
        ("batch", ingest),
        ("embed-commit", ingest),
        ("compute-", tower),
        ("query-", base),
        ("frameseek-io", base),
    ] {
        let found = of(prefix);
        assert!(!found.is_empty(), "no {prefix} thread: {threads:?}");
        assert!(
            found.iter().all(|n| *n == want),
            "{prefix} threads at nice {found:?}, want {want}: {threads:?}"
        );
    }
}
