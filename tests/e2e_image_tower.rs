//! The daemon builds its image tower when it first needs it (issue 20: a daemon that only
//! answers text queries never holds it): serve, query, then ingest, then query again, on the
//! real binary with real footage.

mod common;

use common::{source_id, test_pattern_video, wait_finished, TestEnv};

const LOADED: &str = "image tower loaded";

#[test]
fn serve_query_then_ingest_builds_the_image_tower_at_the_first_ingest() {
    let env = TestEnv::new();
    let video = env.footage().join("pattern.mp4");
    test_pattern_video(&video, 6);
    let mut d = env.start("");
    let status = d.cli_json(&["status"]);
    assert!(status["model"]["id"]
        .as_str()
        .unwrap()
        .ends_with("tiny-random-clip"));
    let empty = d.cli_json(&["search", "a test pattern"]);
    assert_eq!(empty["clips"].as_array().unwrap().len(), 0, "{empty}");
    assert!(
        !d.log_text().contains(LOADED),
        "a text query built the image tower: {}",
        d.log_text()
    );

    d.ingest_wait(&[&video]);
    let status = wait_finished(&d, &[&source_id(&video)]);
    assert!(status["frames"].as_u64().unwrap() >= 5, "{status}");
    let found = d.cli_json(&["search", "a test pattern"]);
    assert!(!found["clips"].as_array().unwrap().is_empty(), "{found}");
    assert_eq!(
        d.log_text().matches(LOADED).count(),
        1,
        "built once, by the first ingest: {}",
        d.log_text()
    );
    assert_eq!(d.stop(), Some(0));

    // A fresh start again leaves the tower unbuilt until an image needs it; an image query
    // builds it.
    let d = env.start("");
    let log_before = d.log_text().matches(LOADED).count();
    let frame = env.dir().join("frame.png");
    common::ffmpeg(&[
        "-i",
        video.to_str().unwrap(),
        "-frames:v",
        "1",
        frame.to_str().unwrap(),
    ]);
    let by_image = d.cli_json(&["search", "--image", frame.to_str().unwrap()]);
    assert!(
        !by_image["clips"].as_array().unwrap().is_empty(),
        "{by_image}"
    );
    assert_eq!(d.log_text().matches(LOADED).count(), log_before + 1);
}
