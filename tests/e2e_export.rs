//! Export and thumbnails on the real daemon: `frameseek export` writes a stream copy of the
//! clip (same codec parameters and packet bytes, from the keyframe at or before the start)
//! and a JPEG of the best frame; `frame` returns one frame inline; `search --html` writes a
//! self-contained page that a real headless browser renders with every image decoded.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;
use ffmpeg_next as ffmpeg;

/// A 10 s 320x240 H.264 file with a keyframe exactly every 2 s (and B-frames), and an AAC
/// audio track.
fn footage(env: &TestEnv, name: &str) -> std::path::PathBuf {
    let path = env.footage().join(name);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=10",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=10",
        "-c:a",
        "aac",
        "-c:v",
        "libx264",
        "-x264-params",
        "keyint=50:min-keyint=50:scenecut=0:bframes=2",
        "-pix_fmt",
        "yuv420p",
        path.to_str().unwrap(),
    ]);
    path
}

/// The video stream's codec id, size, extradata, time base, and packets as (dts, pts,
/// key, bytes), in file order.
struct VideoPackets {
    codec: ffmpeg::codec::Id,
    size: (i32, i32),
    extradata: Vec<u8>,
    time_base: f64,
    packets: Vec<(i64, i64, bool, Vec<u8>)>,
    duration_s: f64,
}

fn video_packets(path: &Path) -> VideoPackets {
    ffmpeg::init().unwrap();
    let mut ictx = ffmpeg::format::input(&path).unwrap();
    let stream = ictx.streams().best(ffmpeg::media::Type::Video).unwrap();
    let index = stream.index();
    let tb = stream.time_base();
    let (codec, size, extradata) = unsafe {
        let p = &*stream.parameters().as_ptr();
        let extra = if p.extradata.is_null() {
            Vec::new()
        } else {
            std::slice::from_raw_parts(p.extradata, p.extradata_size as usize).to_vec()
        };
        (
            ffmpeg::codec::Id::from(p.codec_id),
            (p.width, p.height),
            extra,
        )
    };
    let duration_s = ictx.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE);
    let mut packets = Vec::new();
    for (s, p) in ictx.packets() {
        if s.index() == index {
            packets.push((
                p.dts().unwrap_or(0),
                p.pts().unwrap_or(0),
                p.is_key(),
                p.data().unwrap_or(&[]).to_vec(),
            ));
        }
    }
    VideoPackets {
        codec,
        size,
        extradata,
        time_base: f64::from(tb.numerator()) / f64::from(tb.denominator()),
        packets,
        duration_s,
    }
}

fn audio_streams(path: &Path) -> usize {
    let ictx = ffmpeg::format::input(&path).unwrap();
    let n = ictx
        .streams()
        .filter(|s| s.parameters().medium() == ffmpeg::media::Type::Audio)
        .count();
    n
}

fn jpeg_size(path_or_bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory_with_format(path_or_bytes, image::ImageFormat::Jpeg)
        .expect("a valid JPEG");
    (img.width(), img.height())
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn export_copies_the_clip_from_the_keyframe_and_writes_a_thumbnail() {
    let env = TestEnv::new();
    let file = footage(&env, "cam1.mp4");
    // The same pictures tagged as filmed sideways (a phone's display matrix).
    let turned = env.footage().join("turned.mp4");
    ffmpeg(&[
        "-i",
        file.to_str().unwrap(),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        turned.to_str().unwrap(),
    ]);
    let d = env.start("sample_interval = 1.0\n");
    d.ingest_wait(&[&file, &turned]);
    let source = source_id(&file);

    let out = d.cli_json(&[
        "export", "--source", &source, "--from", "3", "--to", "5.5", "--best", "4",
    ]);
    let e = &out["exports"][0];
    assert_eq!(e["codec"], "h264", "{out}");
    assert_eq!(e["requested_start_ms"], 3000);
    assert_eq!(e["requested_end_ms"], 5500);
    assert_eq!(
        e["start_ms"], 2000,
        "starts at the keyframe before 3 s: {out}"
    );
    assert!(e["end_ms"].as_u64().unwrap() >= 5500, "{out}");
    assert_eq!(e["best_ms"], 4000);
    let clip = Path::new(e["clip"].as_str().unwrap()).to_path_buf();
    let thumb = Path::new(e["thumbnail"].as_str().unwrap()).to_path_buf();
    let exports = d.dir.join("state/exports");
    assert_eq!(
        clip.parent().unwrap(),
        exports,
        "written to the export folder"
    );
    assert_eq!(mode(&exports), 0o750);
    assert_eq!((mode(&clip), mode(&thumb)), (0o640, 0o640));
    assert_eq!(
        e["bytes"].as_u64().unwrap(),
        std::fs::metadata(&clip).unwrap().len()
    );

    // Not re-encoded: same codec parameters, and the packets are the source's own bytes,
    // from the keyframe at 2 s up to the end of the range.
    let src = video_packets(&file);
    let got = video_packets(&clip);
    assert_eq!(
        (got.codec, got.size, &got.extradata),
        (src.codec, src.size, &src.extradata)
    );
    let first = src
        .packets
        .iter()
        .position(|p| p.2 && (p.1 as f64 * src.time_base - 2.0).abs() < 0.01)
        .expect("a keyframe at 2 s");
    let end_ts = (5.5 / src.time_base).round() as i64;
    let want: Vec<&Vec<u8>> = src.packets[first..]
        .iter()
        .take_while(|p| p.0 < end_ts)
        .map(|p| &p.3)
        .collect();
    let have: Vec<&Vec<u8>> = got.packets.iter().map(|p| &p.3).collect();
    assert_eq!(have.len(), want.len(), "packet count");
    assert!(have == want, "packet bytes differ from the source's");
    assert!(got.packets[0].2, "the clip starts on a keyframe");
    assert_eq!(audio_streams(&clip), 1, "the audio track is copied along");
    // The clip covers the request: 2 s of lead-in plus 3 to 5.5 s.
    assert!(got.duration_s >= 3.5 - 0.05, "duration {}", got.duration_s);
    // And decodes cleanly.
    let check = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-i",
            clip.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ])
        .output()
        .unwrap();
    assert!(
        check.status.success() && check.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(jpeg_size(&std::fs::read(&thumb).unwrap()), (320, 240));

    // The `frame` op: one frame, inline, scaled down.
    let reply: serde_json::Value = d
        .client()
        .call(&frameseek::protocol::Request::Frame(
            frameseek::protocol::FrameRequest {
                source: source.clone(),
                at_ms: 6000,
                max_width: Some(160),
                node: None,
            },
        ))
        .unwrap();
    assert_eq!(
        (&reply["at_ms"], &reply["width"], &reply["height"]),
        (&6000.into(), &160.into(), &120.into())
    );
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(reply["jpeg"].as_str().unwrap())
        .unwrap();
    assert_eq!(jpeg_size(&bytes), (160, 120));
    // Thumbnails are shown upright, and `max_width` bounds the upright width.
    let frame = |max_width| -> serde_json::Value {
        d.client()
            .call(&frameseek::protocol::Request::Frame(
                frameseek::protocol::FrameRequest {
                    source: source_id(&turned),
                    at_ms: 1000,
                    max_width,
                    node: None,
                },
            ))
            .unwrap()
    };
    // The exported clip keeps the rotation tag, so players show it upright too.
    let out = d.cli_json(&[
        "export",
        "--source",
        &source_id(&turned),
        "--from",
        "0",
        "--to",
        "1",
    ]);
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream_side_data=rotation",
            "-of",
            "csv=p=0",
        ])
        .arg(out["exports"][0]["clip"].as_str().unwrap())
        .output()
        .unwrap();
    let rotation = String::from_utf8_lossy(&probe.stdout);
    assert!(
        rotation.trim().ends_with("90"),
        "rotation tag of the clip: {rotation:?}"
    );
    let upright = frame(None);
    assert_eq!(
        (&upright["width"], &upright["height"]),
        (&240.into(), &320.into())
    );
    let small = frame(Some(120));
    assert_eq!(
        (&small["width"], &small["height"]),
        (&120.into(), &160.into())
    );

    // Export by query: the top clips of a search, each with its thumbnail.
    let out = d.cli_json(&["export", "a test pattern", "-k", "2"]);
    let list = out["exports"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{out}");
    for e in list {
        assert!(Path::new(e["clip"].as_str().unwrap()).is_file(), "{e}");
        assert!(Path::new(e["thumbnail"].as_str().unwrap()).is_file(), "{e}");
        assert!(e["start_ms"].as_u64() <= e["requested_start_ms"].as_u64());
    }
    // The table form names both ranges.
    let table = d.cli(&["export", "--source", &source, "--from", "1", "--to", "2"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{text}");
    assert!(
        text.contains("0:00:00.000-") && text.contains("keyframe"),
        "{text}"
    );
}

#[test]
fn export_errors_are_clear_and_harmless() {
    let env = TestEnv::new();
    let file = footage(&env, "cam2.mp4");
    let d = env.start("sample_interval = 2.0\n");
    d.ingest_wait(&[&file]);
    let source = source_id(&file);
    let fails = |args: &[&str], want: &str| {
        let out = d.cli(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    };
    fails(
        &[
            "export",
            "--source",
            "/nope.mp4",
            "--from",
            "1",
            "--to",
            "2",
        ],
        "unknown source",
    );
    fails(
        &["export", "--source", &source, "--from", "20", "--to", "25"],
        "out_of_range",
    );
    fails(
        &["export", "--source", &source, "--from", "4", "--to", "3"],
        "must be after start_ms",
    );
    fails(&["export", "--source", &source], "give a query");
    // Changed since ingest: the stored times may not match the new content.
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    f.set_len(f.metadata().unwrap().len() + 10).unwrap();
    drop(f);
    fails(
        &["export", "--source", &source, "--from", "1", "--to", "2"],
        "source_changed",
    );
    // Gone.
    std::fs::remove_file(&file).unwrap();
    fails(
        &["export", "--source", &source, "--from", "1", "--to", "2"],
        "is gone",
    );
    // Nothing was half-written into the export folder, and the daemon still answers.
    let exports = d.dir.join("state/exports");
    let left: Vec<_> = std::fs::read_dir(&exports)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(d.cli_json(&["status"])["frames"], 5);
}

/// Runs headless Chromium on `page` with a checking script appended, and returns what the
/// script wrote: how many clips rendered, how many images, and how many decoded.
fn render_in_chromium(page: &Path) -> serde_json::Value {
    let html = std::fs::read_to_string(page).unwrap();
    let probe = page.with_file_name("probe.html");
    let script = "<script>window.addEventListener('load',()=>{const im=[...document.images];\
const r={clips:document.querySelectorAll('article.clip').length,images:im.length,\
decoded:im.filter(i=>i.complete&&i.naturalWidth>0).length,widths:im.map(i=>i.naturalWidth)};\
const o=document.createElement('pre');o.id='probe';o.textContent=JSON.stringify(r);\
document.body.appendChild(o);});</script>";
    std::fs::write(&probe, html.replace("</body>", &format!("{script}</body>"))).unwrap();
    let profile = page.with_file_name("chromium-profile");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", probe.display()))
        .output()
        .expect("chromium is not installed: run tools/setup.sh (Debian package `chromium`)");
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom.find("<pre id=\"probe\">").unwrap_or_else(|| {
        panic!(
            "no probe output: {dom}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    }) + "<pre id=\"probe\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    serde_json::from_str(&dom[start..end].replace("&quot;", "\"")).unwrap()
}

#[test]
fn search_html_is_self_contained_and_renders_in_a_browser() {
    let env = TestEnv::new();
    let a = footage(&env, "a.mp4");
    let b = footage(&env, "b <&> \"quoted\".mp4");
    let d = env.start("sample_interval = 1.0\nclip_gap = 0.0\n");
    d.ingest_wait(&[&a, &b]);
    let page = env.dir().join("results.html");
    let out = d.cli(&[
        "search",
        "a test pattern",
        "-k",
        "4",
        "--html",
        page.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: no URL of any kind except inline data.
    for bad in ["http:", "https:", "file:", "src=\"/", "<link", "<script"] {
        assert!(!html.contains(bad), "page refers to {bad}");
    }
    assert_eq!(html.matches("src=\"data:image/jpeg;base64,").count(), 4);
    assert!(
        html.contains("b &lt;&amp;&gt; &quot;quoted&quot;.mp4"),
        "escaped names"
    );
    let r = render_in_chromium(&page);
    assert_eq!(r["clips"], 4, "{r}");
    assert_eq!(r["images"], 4, "{r}");
    assert_eq!(r["decoded"], 4, "every thumbnail decoded: {r}");
    assert!(
        r["widths"].as_array().unwrap().iter().all(|w| w == 320),
        "{r}"
    );
}
