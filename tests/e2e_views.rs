//! Views end to end (issue 16), through the real daemon on a real socket with footage made by
//! the `ffmpeg` command: a wide frame's far edge is searchable with views and not with the
//! old centre crop; clips carry the region of their best view in JSON, the table and the HTML
//! page; the exported JPEG outlines it; `--region` keeps only views in a zone (and a bad zone
//! is refused with what to give); and a state written before views opens, its frames moved
//! to the new key format without re-ingesting.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use common::*;

/// A clip's region as (x, y, w, h).
fn region(clip: &serde_json::Value) -> (f64, f64, f64, f64) {
    let r = &clip["region"];
    let f = |k: &str| {
        r[k].as_f64()
            .unwrap_or_else(|| panic!("no region.{k} in {clip}"))
    };
    (f("x"), f("y"), f("w"), f("h"))
}

/// Wide copies of the world's camera videos (768 x 192, 4:1): the 256 x 192 picture at the
/// far left (cameras 1 and 3) or far right (2 and 4) on grey. The old centre crop (the
/// middle 192 x 192) sees only grey. Returns the text queries without filters, as JSONL.
fn wide_world(env: &TestEnv) -> String {
    let world = env.dir().join("world");
    render_world_footage(&world);
    for cam in 1..=4 {
        let x = if cam % 2 == 1 { 0 } else { 512 };
        pad_video(
            &world.join(format!("cam{cam}/footage.mp4")),
            &env.footage().join(format!("cam{cam}/footage.mp4")),
            768,
            x,
        );
    }
    std::fs::read_to_string(world.join("queries.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| {
            let q: serde_json::Value = serde_json::from_str(l).unwrap();
            q["query"].is_string()
                && q["filter_source"].is_null()
                && q["from_s"].is_null()
                && q["to_s"].is_null()
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn an_object_at_the_far_edge_is_found_with_views_and_not_with_the_centre_crop() {
    let env = TestEnv::new();
    let queries = wide_world(&env);
    let queries_file = env.footage().join("queries.jsonl");
    std::fs::write(&queries_file, &queries).unwrap();
    let count = queries.lines().count();
    assert!(count >= 8, "{count} queries");

    let eval = |views: &str| -> serde_json::Value {
        let mut d = env.start_with_model(
            &format!("sample_interval = 1.0\nviews = {views:?}\n"),
            &world_model(),
        );
        d.ingest_wait(&[&env.footage()]);
        let report = d.cli_json(&["eval", queries_file.to_str().unwrap()]);
        d.stop();
        std::fs::remove_dir_all(env.dir().join("state")).unwrap();
        report
    };
    let cover = eval("cover");
    let centre = eval("centre");
    let r1 = |r: &serde_json::Value| r["recall_at_1"].as_f64().unwrap();
    eprintln!(
        "edge queries ({count}): recall@1 cover {:.3}, centre {:.3}; recall@5 cover {:.3}, centre {:.3}",
        r1(&cover),
        r1(&centre),
        cover["recall_at_5"],
        centre["recall_at_5"]
    );
    // The centre crop sees the same grey in every video: its ranking of the cameras is the
    // same for every query, right for about one camera's share of them.
    // The bundled model (issue 16's retrain, trained on views of any crop) measured 0.800 and
    // 0.867 in two runs with `cover` (five views of a 4:1 frame) against 0.267; the model
    // before it, which learned whole pictures only, measured 0.73 against 0.27.
    assert!(r1(&centre) <= 0.5, "centre crop: {centre:#}");
    assert!(r1(&cover) >= 0.6, "cover: {cover:#}");
    assert!(
        r1(&cover) >= r1(&centre) + 0.3,
        "cover {cover:#}\ncentre {centre:#}"
    );
    // Each found clip says where it was: on the side its camera's picture is.
    for r in cover["results"].as_array().unwrap() {
        if r["rank"] != 1 {
            continue;
        }
        let top = &r["top"];
        let (x, _, w, _) = region(top);
        let source = top["source"].as_str().unwrap();
        let left = source.contains("/cam1/") || source.contains("/cam3/");
        if left {
            assert!(x + w <= 0.5 + 1e-6, "{source} matched at {x}+{w}: {r}");
        } else {
            assert!(x >= 0.5 - 1e-6, "{source} matched at {x}: {r}");
        }
    }
}

/// One request line on a raw connection, and the reply line.
fn raw(stream: &mut std::os::unix::net::UnixStream, line: &str) -> serde_json::Value {
    stream.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(stream.try_clone().unwrap())
        .read_line(&mut reply)
        .unwrap();
    serde_json::from_str(&reply).unwrap()
}

#[test]
fn clips_carry_their_region_and_zones_filter_views_end_to_end() {
    let env = TestEnv::new();
    let video = env.footage().join("wide.mp4");
    // 16:9, a dark flat picture: the region's box is easy to see in the JPEG.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=0x203040:s=640x360:r=25:d=4",
        "-c:v",
        "libx264",
        "-g",
        "25",
        video.to_str().unwrap(),
    ]);
    let d = env.start("sample_interval = 1.0\nviews = \"cover\"\n");
    d.ingest_wait(&[&video]);
    let stats = d.cli_json(&["stats"]);
    assert_eq!(stats["frames"], 4, "{stats}");
    assert_eq!(stats["views"], 12, "three views per 16:9 frame: {stats}");
    assert_eq!(stats["indexed"], 12, "{stats}");

    // JSON: every clip has a region inside the frame, one of the three views'.
    let all = d.cli_json(&["search", "a dark picture", "-k", "5"]);
    let clips = all["clips"].as_array().unwrap();
    assert!(!clips.is_empty(), "{all}");
    for c in clips {
        let (x, y, w, h) = region(c);
        assert!((y, h) == (0.0, 1.0), "{c}");
        // A square of the 16:9 frame (to the model's pixel: the test model's input is small).
        assert!((w - 0.5625).abs() < 0.01, "a square of a 16:9 frame: {c}");
        let middle = (x + w / 2.0 - 0.5).abs() < 0.02;
        assert!(
            x.abs() < 1e-6 || middle || (x + w - 1.0).abs() < 1e-6,
            "at either end or the middle: {c}"
        );
    }

    // Zones: only views overlapping them.
    for (zone, left) in [("0,0,0.3,1", true), ("0.7,0,0.3,1", false)] {
        let r = d.cli_json(&["search", "a dark picture", "-k", "5", "--region", zone]);
        let clips = r["clips"].as_array().unwrap();
        assert!(!clips.is_empty(), "{zone}: {r}");
        for c in clips {
            let (x, _, w, _) = region(c);
            if left {
                assert!(x < 0.3, "{zone}: {c}");
            } else {
                assert!(x + w > 0.7, "{zone}: {c}");
            }
        }
    }

    // The table has the region column.
    let out = d.cli(&["search", "a dark picture", "-k", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().next().unwrap().contains("REGION"), "{text}");
    assert!(
        text.contains("0.00,0.00+0.56x1.00") || text.contains("0.44,0.00+0.56x1.00"),
        "{text}"
    );

    // A bad zone on the command line says what to give, and the daemon lives on.
    let out = d.cli(&["search", "a dark picture", "--region", "0.8,0,0.5,1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--region") && err.contains("x,y,w,h"), "{err}");

    // The protocol: a bad region is invalid_request naming the region; the connection and
    // the daemon go on.
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    let bad = raw(
        &mut s,
        r#"{"op":"search","text":"a dark picture","region":{"x":0.8,"y":0,"w":0.5,"h":1},"id":7}"#,
    );
    assert_eq!(bad["ok"], false, "{bad}");
    assert_eq!(bad["error"]["code"], "invalid_request", "{bad}");
    let message = bad["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("region") && message.contains("right or bottom edge"),
        "{message}"
    );
    assert_eq!(bad["id"], 7);
    let good = raw(
        &mut s,
        r#"{"op":"search","text":"a dark picture","k":3,"region":{"x":0.0,"y":0.0,"w":0.2,"h":0.2}}"#,
    );
    assert_eq!(good["ok"], true, "{good}");
    assert!(good["clips"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| region(c).0 < 0.2));
    let unknown = raw(
        &mut s,
        r#"{"op":"search","text":"x","region":{"x":0,"y":0,"w":1,"h":1,"z":1}}"#,
    );
    assert_eq!(unknown["error"]["code"], "invalid_request", "{unknown}");

    // The HTML page draws the box over the thumbnail.
    let page = env.dir().join("page.html");
    let out = d.cli(&[
        "search",
        "a dark picture",
        "-k",
        "1",
        "--region",
        "0.7,0,0.3,1",
        "--html",
        page.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    let right = d.cli_json(&[
        "search",
        "a dark picture",
        "-k",
        "1",
        "--region",
        "0.7,0,0.3,1",
    ]);
    let (x, _, w, _) = region(&right["clips"][0]);
    let drawn = format!(
        "<div class=\"region\" style=\"left:{:.2}%;top:0.00%;width:{:.2}%;height:100.00%\">",
        x * 100.0,
        w * 100.0
    );
    assert!(html.contains(&drawn), "{drawn} not in {html}");

    // The exported JPEG outlines the clip's region.
    let top = &d.cli_json(&[
        "search",
        "a dark picture",
        "-k",
        "1",
        "--region",
        "0.7,0,0.3,1",
    ])["clips"][0];
    let exported = d.cli_json(&[
        "export",
        "a dark picture",
        "-k",
        "1",
        "--region",
        "0.7,0,0.3,1",
    ]);
    let thumb = exported["exports"][0]["thumbnail"].as_str().unwrap();
    assert_eq!(
        exported["exports"][0]["best_ms"], top["best_ms"],
        "{exported}"
    );
    let picture = image::open(Path::new(thumb)).unwrap().to_rgb8();
    let (w, h) = picture.dimensions();
    let (x, _, rw, _) = region(top);
    let bright = |px: u32, py: u32| {
        let p = picture.get_pixel(px, py);
        u32::from(p[0]) + u32::from(p[1])
    };
    let (left_edge, middle) = (
        (x * f64::from(w)).round() as u32,
        ((x + rw / 2.0) * f64::from(w)) as u32,
    );
    assert!(bright(left_edge, h / 2) > 300, "box edge at x={left_edge}");
    assert!(bright(middle, 0) > 300, "box top at x={middle}");
    assert!(
        bright(middle, h / 2) < 150,
        "inside the box stays the picture"
    );
    assert!(
        bright(left_edge / 2, h / 2) < 150,
        "outside the box stays the picture"
    );
}

/// Copies a folder tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_state_written_before_views_opens_with_its_frames_and_is_not_reingested() {
    // The committed fixture is a state made by main before views (its README says how).
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/state-before-views");
    let env = TestEnv::new();
    copy_tree(&fixture.join("state"), &env.dir().join("state"));
    let before: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("search-a-test.json")).unwrap())
            .unwrap();

    let mut d = env.start("sample_interval = 1.0\n");
    let status = d.cli_json(&["status"]);
    assert_eq!(status["frames"], 10, "{status}");
    let sources = status["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2, "{status}");
    assert!(
        sources
            .iter()
            .all(|s| s["state"] == "done" && s["frames"] == 5),
        "{status}"
    );
    let log = d.log_text();
    assert!(
        log.contains("frame keys moved to the format with views"),
        "{log}"
    );
    // Searchable as before: the same frames, scores and order (view 0 is the old crop).
    let after = d.cli_json(&["search", "a test", "-k", "3"]);
    let (b, a) = (
        before["clips"].as_array().unwrap(),
        after["clips"].as_array().unwrap(),
    );
    assert_eq!(a.len(), b.len(), "{after}");
    for (a, b) in a.iter().zip(b) {
        assert_eq!((&a["source"], &a["best_ms"]), (&b["source"], &b["best_ms"]));
        let (sa, sb) = (a["score"].as_f64().unwrap(), b["score"].as_f64().unwrap());
        // The fixture's scores were taken with float32 token rows; today's int8 text tower
        // and int8 token rows move a cosine by up to a few thousandths on this random model.
        assert!((sa - sb).abs() < 5e-3, "{a} vs {b}");
        assert!(
            a.get("region").is_none(),
            "a frame from before views has no known region: {a}"
        );
    }
    let stats = d.cli_json(&["stats"]);
    assert_eq!(
        (&stats["views"], &stats["indexed"]),
        (&10.into(), &10.into()),
        "{stats}"
    );

    // A second start finds the new format: nothing moved again, nothing lost.
    d.stop();
    let d = env.start("sample_interval = 1.0\n");
    let status = d.cli_json(&["status"]);
    assert_eq!(status["frames"], 10, "{status}");
    assert!(
        !d.log_text().contains("frame keys moved"),
        "{}",
        d.log_text()
    );
    // New footage in the same state gets views and regions.
    let video = env.footage().join("new.mp4");
    test_pattern_video(&video, 3);
    d.ingest_wait(&[&video]);
    let r = d.cli_json(&[
        "search",
        "a test",
        "-k",
        "10",
        "--source",
        &source_id(&video),
    ]);
    assert!(
        r["clips"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("region").is_some()),
        "{r}"
    );
    assert_eq!(d.cli_json(&["status"])["frames"], 13);
}
