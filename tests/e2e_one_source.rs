//! One file, one source (issue 15): concurrent admissions of the same files by many clients
//! and a watch scan make one source number per file, and frames that no source record owns
//! (left by an older version's race) are removed when the daemon opens its state.

mod common;

use std::collections::HashSet;

use common::*;
use frameseek::protocol::{IngestRequest, Request};
use frameseek::store::Store;

/// Short, small test files in `dir`, named `clip-N.mp4`.
fn small_files(dir: &std::path::Path, n: usize) -> Vec<std::path::PathBuf> {
    (0..n)
        .map(|i| {
            let path = dir.join(format!("clip-{i}.mp4"));
            ffmpeg(&[
                "-f",
                "lavfi",
                "-i",
                &format!("testsrc=duration=2:size=160x120:rate=10,hue=h={}", i * 30),
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                path.to_str().unwrap(),
            ]);
            path
        })
        .collect()
}

#[test]
fn concurrent_ingests_and_a_watch_scan_make_one_source_per_file() {
    let env = TestEnv::new();
    let files = small_files(&env.footage(), 24);
    let mut d = env.start(&format!(
        "watch = [{:?}]\nwatch_interval = 0.1\n",
        env.footage().display().to_string()
    ));
    let ids: Vec<String> = files.iter().map(|f| source_id(f)).collect();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (d, ids) = (&d, &ids);
            s.spawn(move || {
                let mut client = d.client();
                for k in 0..ids.len() {
                    // Each client walks the files from a different start.
                    let id = &ids[(k + t) % ids.len()];
                    let reply = client
                        .call(&Request::Ingest(IngestRequest {
                            paths: vec![id.clone()],
                            follow: false,
                        }))
                        .unwrap();
                    let result = reply["outcomes"][0]["result"].as_str().unwrap().to_string();
                    assert!(
                        ["queued", "unchanged", "requeued"].contains(&result.as_str()),
                        "{reply}"
                    );
                }
            });
        }
    });
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let status = wait_finished(&d, &refs);
    assert_eq!(
        status["sources"].as_array().unwrap().len(),
        ids.len(),
        "{status}"
    );
    d.stop();
    let store = Store::open(&env.dir().join("state/db")).unwrap();
    let names = store.source_names().unwrap();
    let distinct: HashSet<&String> = names.values().collect();
    assert_eq!(
        names.len(),
        ids.len(),
        "one source number per file, got {names:?}"
    );
    assert_eq!(distinct.len(), ids.len());
    let orphans = store.orphans().unwrap();
    assert!(
        orphans.numbers.is_empty() && orphans.frames.is_empty(),
        "{orphans:?}"
    );
    // Rows are views: each source's frames times its views (issue 16).
    let counted: u64 = store
        .sources()
        .unwrap()
        .iter()
        .map(|r| r.frames * r.views.as_ref().map_or(1, |v| v.len() as u64))
        .sum();
    assert_eq!(store.frame_count() as u64, counted);
}

#[test]
fn frames_no_source_owns_are_removed_at_open_with_a_log_line() {
    let env = TestEnv::new();
    let file = small_files(&env.footage(), 1).remove(0);
    let id = source_id(&file);
    let mut d = env.start("");
    d.ingest_wait(&[&file]);
    let before = d.cli_json(&["stats"]);
    // Every view of every frame is a row the orphan scan must find (issue 16).
    let frames = before["views"].as_u64().unwrap();
    assert!(frames > 0, "{before}");
    d.stop();
    // What the race left behind: the id's record now has a second number, and the frames
    // of the first are owned by no record.
    {
        let store = Store::open(&env.dir().join("state/db")).unwrap();
        let mut second = store.source(&id).unwrap().unwrap();
        second.no += 1000;
        second.frames = 0;
        store.put_source(&second).unwrap();
        let orphans = store.orphans().unwrap();
        assert_eq!(orphans.frames.len() as u64, frames, "{orphans:?}");
        assert!(store.orphans_checked().unwrap(), "the first start scanned");
    }
    // An older version's database has no mark of a finished scan (this version scans once).
    {
        let db = sled::open(env.dir().join("state/db")).unwrap();
        db.open_tree("meta")
            .unwrap()
            .remove("orphans_checked")
            .unwrap();
        db.flush().unwrap();
    }
    let d = env.start("");
    let stats = d.cli_json(&["stats"]);
    assert_eq!(stats["frames"], 0, "orphaned frames still counted: {stats}");
    assert_eq!(
        stats["indexed"], 0,
        "orphaned frames still indexed: {stats}"
    );
    assert!(
        d.log_text().contains("orphaned frames removed"),
        "{}",
        d.log_text()
    );
    let status = d.cli_json(&["status"]);
    assert_eq!(status["frames"], 0, "{status}");
    // The next start finds nothing more to remove.
    drop(d);
    let d = env.start("");
    assert!(
        !d.log_text().contains("orphaned frames removed"),
        "{}",
        d.log_text()
    );
}
