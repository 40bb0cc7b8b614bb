//! Search quality end to end, as a user sees it: the real `frameseek world footage` and
//! `frameseek world wide-footage` render camera videos with known ground truth, the real
//! daemon ingests them with the bundled world-trained model (`assets/models/frameseek-tiny`),
//! and the real `frameseek eval` measures the labelled queries, per group: compositions
//! training showed (`seen`) and compositions it never showed (`held-out`), phrasings it
//! never used (`paraphrase`), filtered queries the filter alone does not answer, an image
//! query rendered apart from the ingested videos; and on 16:9 footage, objects at the edges,
//! small, and in the middle as the control.

mod common;

use std::time::Instant;

use common::*;
use frameseek::eval::LabelledQuery;

/// Recall@5 of `group` in an `eval --json` report, with its query count.
fn group_recall(report: &serde_json::Value, group: &str) -> (f64, u64) {
    let g = &report["groups"][group];
    assert!(g.is_object(), "no group {group} in {report}");
    (
        g["recall_at_5"].as_f64().unwrap(),
        g["queries"].as_u64().unwrap(),
    )
}

/// Prints every group of an `eval --json` report.
fn print_groups(name: &str, report: &serde_json::Value) {
    for (group, s) in report["groups"].as_object().unwrap() {
        eprintln!(
            "{name} {group}: {} queries, recall@1 {:.3}, recall@5 {:.3}",
            s["queries"], s["recall_at_1"], s["recall_at_5"]
        );
    }
    eprintln!(
        "{name} all: {} queries, recall@1 {:.3}, recall@5 {:.3}",
        report["queries"], report["recall_at_1"], report["recall_at_5"]
    );
}

/// The results of an `eval --json` report that missed the first five clips.
fn misses(report: &serde_json::Value) -> Vec<&serde_json::Value> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["rank"].as_u64().is_none_or(|rank| rank > 5))
        .collect()
}

#[test]
fn world_queries_find_the_right_clips() {
    let started = Instant::now();
    let env = TestEnv::new();
    let footage = env.footage();
    render_world_footage(&footage);

    let queries_file = footage.join("queries.jsonl");
    let queries: Vec<LabelledQuery> = std::fs::read_to_string(&queries_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut sources: Vec<&str> = queries.iter().map(|q| q.source.as_str()).collect();
    sources.sort();
    sources.dedup();
    assert!(sources.len() >= 3, "queries cover {sources:?}");
    // The image query's picture is not a frame of any ingested video.
    let probe = image::open(footage.join("probe.png")).unwrap().to_rgb8();
    assert_eq!((probe.width(), probe.height()), (256, 192));

    let d = env.start_with_model("sample_interval = 1.0\n", &world_model());
    d.ingest_wait(&[&footage]);
    let status = d.cli_json(&["status"]);
    assert_eq!(
        status["sources"].as_array().unwrap().len(),
        sources.len(),
        "{status}"
    );

    let report = d.cli_json(&["eval", queries_file.to_str().unwrap()]);
    print_groups("world", &report);
    eprintln!("world eval took {:.0} s", started.elapsed().as_secs_f64());
    assert_eq!(report["queries"].as_u64().unwrap() as usize, queries.len());
    let missed = misses(&report);
    let (seen, n_seen) = group_recall(&report, "seen");
    let (held_out, n_held_out) = group_recall(&report, "held-out");
    let (paraphrase, n_paraphrase) = group_recall(&report, "paraphrase");
    let (filter, n_filter) = group_recall(&report, "filter");
    let (image, n_image) = group_recall(&report, "image");
    assert_eq!((n_seen, n_held_out, n_paraphrase), (10, 5, 15));
    assert!(n_filter >= 3 && n_image == 1);
    // Floors below what the shipped model measures (tools/README.md), above chance (a
    // random-weight model scores about 0.37 over these clips).
    assert!(
        seen >= SEEN_FLOOR,
        "seen recall@5 {seen}; missed: {missed:#?}"
    );
    assert!(
        held_out >= HELD_OUT_FLOOR,
        "held-out recall@5 {held_out}; missed: {missed:#?}"
    );
    assert!(
        paraphrase >= PARAPHRASE_FLOOR,
        "paraphrase recall@5 {paraphrase}; missed: {missed:#?}"
    );
    assert!(
        filter >= FILTER_FLOOR,
        "filtered recall@5 {filter}; missed: {missed:#?}"
    );
    assert_eq!(image, 1.0, "image query missed: {missed:#?}");

    // The camera filter really confines a search to that camera.
    let cam2 = format!("{}/cam2/*", footage.canonicalize().unwrap().display());
    let r = d.cli_json(&["search", "a red car", "--source", &cam2, "-k", "5"]);
    let clips = r["clips"].as_array().unwrap();
    assert!(!clips.is_empty(), "{r}");
    assert!(
        clips
            .iter()
            .all(|c| c["source"].as_str().unwrap().contains("/cam2/")),
        "{r}"
    );
    // The time filter keeps every clip inside the range.
    let r = d.cli_json(&["search", "a dog", "--from", "30", "--to", "60", "-k", "5"]);
    for c in r["clips"].as_array().unwrap() {
        assert!(c["start_ms"].as_u64().unwrap() >= 30_000, "{r}");
    }
}

/// Recall@5 floors of the 4:3 footage's groups (the shipped model's figures are in
/// tools/README.md).
const SEEN_FLOOR: f64 = 0.9;
/// See [`SEEN_FLOOR`].
const HELD_OUT_FLOOR: f64 = 0.6;
/// See [`SEEN_FLOOR`].
const PARAPHRASE_FLOOR: f64 = 0.6;
/// See [`SEEN_FLOOR`].
const FILTER_FLOOR: f64 = 0.66;

/// The 16:9 footage (issue 16): every object searched within its own video and across all
/// of them, recall per group (edge, small, middle as the control, seen, held-out, hidden,
/// together), on the default views and then, on the same footage and a fresh state, on the
/// centre crop (`views = "centre"`, printed for the comparison). Issue 16's targets (item 8)
/// are asserted for the default views, within each object's own video.
#[test]
fn wide_footage_is_measured_per_placement() {
    let started = Instant::now();
    let env = TestEnv::new();
    let footage = env.footage();
    let wide = frameseek::devkit::world::render_wide_footage(&footage, 1, 1280, 720).unwrap();
    assert_eq!(wide.videos.len(), 4);
    let mut edge_first = Vec::new();
    for views in ["default views", "centre"] {
        let settings = match views {
            "centre" => "sample_interval = 1.0\nviews = \"centre\"\n",
            _ => "sample_interval = 1.0\n",
        };
        let mut d = env.start_with_model(settings, &world_model());
        d.ingest_wait(&[&footage]);
        for (name, file) in [
            ("own video", frameseek::devkit::world::WIDE_QUERIES_OWN),
            ("all videos", frameseek::devkit::world::WIDE_QUERIES_ALL),
        ] {
            let name = format!("wide, {name}, {views}");
            let report = d.cli_json(&["eval", footage.join(file).to_str().unwrap()]);
            print_groups(&name, &report);
            assert_eq!(report["queries"], 20);
            let counts: Vec<u64> = ["edge", "small", "middle", "held-out"]
                .iter()
                .map(|g| group_recall(&report, g).1)
                .collect();
            assert_eq!(counts, [7, 7, 6, 5]);
            let (middle, _) = group_recall(&report, "middle");
            assert!(
                middle >= MIDDLE_FLOOR,
                "{name}: middle recall@5 {middle}; missed: {:#?}",
                misses(&report)
            );
            if file != frameseek::devkit::world::WIDE_QUERIES_OWN {
                continue;
            }
            edge_first.push(report["groups"]["edge"]["recall_at_1"].as_f64().unwrap());
            if views == "centre" {
                continue;
            }
            for (group, floor) in [
                ("edge", EDGE_FLOOR),
                ("small", SMALL_FLOOR),
                ("held-out", WIDE_HELD_OUT_FLOOR),
            ] {
                let (recall, _) = group_recall(&report, group);
                assert!(
                    recall >= floor,
                    "{name}: {group} recall@5 {recall} below issue 16's {floor}; missed: {:#?}",
                    misses(&report)
                );
            }
        }
        assert_eq!(d.stop(), Some(0));
        std::fs::remove_dir_all(env.dir().join("state")).unwrap();
    }
    eprintln!(
        "wide footage, both view sets, took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    // Views see the edges: an object in the outer 20 % of the frame comes first more often
    // than with the centre crop, which sees at most a sliver of it.
    assert!(
        edge_first[0] > edge_first[1],
        "edge recall@1 within its own video: default views {}, centre crop {}",
        edge_first[0],
        edge_first[1]
    );
}

/// Recall@5 floor of the wide footage's middle objects (the control).
const MIDDLE_FLOOR: f64 = 0.8;
/// Issue 16's targets (item 8), recall@5 with the default views, each object searched
/// within its own video: objects in the outer 20 % of the frame's width ...
const EDGE_FLOOR: f64 = 0.9;
/// ... objects covering 1/30 of the frame ...
const SMALL_FLOOR: f64 = 0.9;
/// ... and the compositions training never showed.
const WIDE_HELD_OUT_FLOOR: f64 = 0.8;

/// The bundled model, loaded as the daemon loads it, matches rendered still scenes to their
/// captions. The renderings are new (another seed than the training set), but what they
/// show is not: most of these compositions are in the training set.
#[test]
fn the_bundled_model_matches_still_scenes_to_their_captions() {
    use frameseek::embed::{DeviceChoice, Embedder};
    let embedder = Embedder::load(world_model().to_str().unwrap(), DeviceChoice::Cpu).unwrap();
    let right = captions_matched(&embedder);
    assert!(
        right >= STILLS_FLOOR,
        "{right} of 40 still scenes matched their caption"
    );
}

/// Still scenes of 40 that the bundled model must match to their caption. The shipped model
/// (issue 16's retrain, 20 epochs) matches 40, in float32 and with int8 weights; the
/// random-weight `tiny-random-clip` matches 0 (chance: 1). A 5-epoch run of the same
/// training matched 34, its misses an object on the wrong side ("a red car on the left"
/// taken for "on the right"), so a floor of 36 fails a model trained that little.
const STILLS_FLOOR: usize = 36;

/// `model.text_precision = "int8"` (issue 8): with 8-bit text-tower weights the bundled model
/// still matches the scenes to their captions, and its text vectors stay within cosine 0.999
/// of the float32 ones (while differing from them: the weights really were quantised).
#[test]
fn int8_text_weights_keep_the_bundled_model_matching() {
    use frameseek::embed::{DeviceChoice, Embedder, Precision};
    frameseek::embed::init_quantised_threads();
    let model = world_model();
    let int8 = Embedder::load_with_text(
        model.to_str().unwrap(),
        DeviceChoice::Cpu,
        Precision::Auto,
        Precision::Int8,
    )
    .unwrap();
    let f32m = Embedder::load(model.to_str().unwrap(), DeviceChoice::Cpu).unwrap();
    let texts = ["a red car on a street", "two dogs in the snow at night"];
    let (a, b) = (
        int8.embed_texts(&texts).unwrap(),
        f32m.embed_texts(&texts).unwrap(),
    );
    for (x, y) in a.iter().zip(&b) {
        let cos: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
        assert!(cos >= 0.999, "int8 text cosine {cos}");
        assert_ne!(x, y, "the text tower was not quantised");
    }
    let right = captions_matched(&int8);
    assert!(
        right >= STILLS_FLOOR,
        "int8 text weights: {right} of 40 still scenes matched their caption"
    );
}

/// `model.image_precision = "int8"` (issue 20, the CPU default): with the image tower in
/// per-channel int8 the bundled model matches exactly as many still scenes to their captions
/// as in float32, and its image vectors stay within cosine 0.999 of the float32 ones.
#[test]
fn int8_image_tower_keeps_the_bundled_model_matching() {
    use frameseek::embed::{DeviceChoice, Embedder, Precision, TextPrecision};
    let model = world_model();
    let int8 = Embedder::load_with_text(
        model.to_str().unwrap(),
        DeviceChoice::Cpu,
        Precision::Int8,
        TextPrecision::F32,
    )
    .unwrap();
    let f32m = Embedder::load(model.to_str().unwrap(), DeviceChoice::Cpu).unwrap();
    let (right_int8, right_f32) = (captions_matched(&int8), captions_matched(&f32m));
    eprintln!("still scenes matched: int8 {right_int8} of 40, f32 {right_f32} of 40");
    assert_eq!(right_int8, right_f32, "int8 changed the matches");
    let texts = ["a red car on a street"];
    assert_eq!(
        int8.embed_texts(&texts).unwrap(),
        f32m.embed_texts(&texts).unwrap(),
        "the text tower stays float32"
    );
    let mut worst = 1f32;
    for seed in 0..8u8 {
        let px: Vec<f32> = (0..3 * 64 * 64)
            .map(|i| ((i * 7 + seed as usize * 131) % 255) as f32 / 64.0 - 2.0)
            .collect();
        let (a, b) = (
            int8.embed_pixels(&px, 1).unwrap().remove(0),
            f32m.embed_pixels(&px, 1).unwrap().remove(0),
        );
        worst = worst.min(a.iter().zip(&b).map(|(x, y)| x * y).sum());
    }
    eprintln!("int8 image vectors: min cosine {worst:.6} to f32");
    assert!(worst >= 0.999, "int8 image cosine {worst}");
}

/// How many of 40 rendered still scenes (new renderings: another seed than the training set;
/// their compositions may be in it) `embedder` matches to their own caption among the 40
/// captions.
fn captions_matched(embedder: &frameseek::embed::Embedder) -> usize {
    use frameseek::devkit::world::{render_scene, RenderJitter, SceneSpec, WorldRng};
    use frameseek::devkit::world::{FRAME_HEIGHT, FRAME_WIDTH};

    let mut rng = WorldRng::new(12_345);
    let mut scenes: Vec<SceneSpec> = Vec::new();
    while scenes.len() < 40 {
        let s = SceneSpec::random(&mut rng);
        if scenes.iter().all(|x| x.caption() != s.caption()) {
            scenes.push(s);
        }
    }
    let captions: Vec<String> = scenes.iter().map(SceneSpec::caption).collect();
    let refs: Vec<&str> = captions.iter().map(String::as_str).collect();
    let texts = embedder.embed_texts(&refs).unwrap();
    let mut right = 0;
    for (i, scene) in scenes.iter().enumerate() {
        let jitter = RenderJitter::random(&mut rng, scene.objects.len());
        let rgb = render_scene(scene, &jitter, FRAME_WIDTH, FRAME_HEIGHT);
        let img = image::RgbImage::from_raw(FRAME_WIDTH as u32, FRAME_HEIGHT as u32, rgb).unwrap();
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let v = embedder.embed_image_bytes(&png).unwrap();
        let best = texts
            .iter()
            .map(|t| t.iter().zip(&v).map(|(a, b)| a * b).sum::<f32>())
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap()
            .0;
        if best == i {
            right += 1;
        } else {
            eprintln!("{:?} taken for {:?}", captions[best], captions[i]);
        }
    }
    right
}
