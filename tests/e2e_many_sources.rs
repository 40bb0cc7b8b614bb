//! Thousands of sources (issue 15): `status` counts every source by state, and lists a page
//! (`--limit`, 200 by default in the table) or the sources matching a glob (`--source`).

mod common;

use common::*;
use frameseek::store::{Fingerprint, SourceRecord, SourceState, Store};

/// `n` finished file sources spread over 10 camera folders, written straight into the store.
fn state_with_sources(env: &TestEnv, n: u32) {
    let store = Store::open(&env.dir().join("state/db")).unwrap();
    for i in 0..n {
        store
            .put_source(&SourceRecord {
                state: if i % 100 == 7 {
                    SourceState::Failed
                } else {
                    SourceState::Done
                },
                error: (i % 100 == 7).then(|| "no video frame could be decoded".to_string()),
                ..SourceRecord::new(
                    &format!("/srv/footage/cam{}/seg{i:05}.mp4", i % 10),
                    i + 1,
                    Fingerprint::default(),
                    1.0,
                    Some(60_000),
                )
            })
            .unwrap();
    }
}

#[test]
fn status_counts_every_source_and_lists_a_page_or_a_glob() {
    let env = TestEnv::new();
    state_with_sources(&env, 3000);
    let d = env.start("");
    // The table: a summary line over every source, 200 rows, and what to do for the rest.
    // 1 source in 100 failed: status answers and exits 4 (needs attention).
    let out = d.cli(&["status"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("3000 sources: 2970 done, 0 ingesting, 0 queued, 30 failed"),
        "{text}"
    );
    let rows = text.lines().filter(|l| l.contains("/srv/footage/")).count();
    assert_eq!(rows, 200, "{text}");
    assert!(text.contains("showing 200 of 3000 sources"), "{text}");
    // JSON lists every source unless asked for less, and always counts them all.
    let all = d.cli_json(&["status"]);
    assert_eq!(all["sources"].as_array().unwrap().len(), 3000);
    assert_eq!(all["sources_matching"], 3000);
    assert_eq!(all["states"]["failed"], 30);
    let page = d.cli_json(&["status", "--limit", "5"]);
    assert_eq!(page["sources"].as_array().unwrap().len(), 5, "{page}");
    assert_eq!(page["sources_matching"], 3000);
    assert_eq!(page["states"]["done"], 2970);
    // A glob: one camera's 300 segments.
    let cam = d.cli_json(&["status", "--source", "/srv/footage/cam3/*"]);
    let listed = cam["sources"].as_array().unwrap();
    assert_eq!(listed.len(), 300, "{cam}");
    assert!(listed.iter().all(|s| s["source"]
        .as_str()
        .unwrap()
        .starts_with("/srv/footage/cam3/")));
    assert_eq!(cam["sources_matching"], 300);
    let out = d.cli(&["status", "--source", "/srv/footage/cam3/*", "--limit", "10"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("showing 10 of 300 sources that match"),
        "{text}"
    );
}
