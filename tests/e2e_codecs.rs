//! The decode-and-sample stage on real files the `ffmpeg` command writes: every codec and
//! container of the issue-4 matrix, NTSC and variable frame rates, a rotated phone video,
//! MPEG-TS timestamp discontinuities and a truncated file. Each checks the number of
//! sampled frames and their offsets, not only that decoding did not fail.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use common::ffmpeg;
use frameseek::decode::{decode_samples, DecodeSummary, HwAccel, SampleOptions, SamplingPolicy};
use frameseek::embed::PixelGeometry;

/// Model input side used here: small, so conversion is cheap.
const SIDE: usize = 32;

fn options(interval: f64) -> SampleOptions {
    SampleOptions {
        interval,
        resume_after_ms: None,
        decoder_threads: 2,
        geometry: PixelGeometry::clip_default(SIDE),
        hwaccel: HwAccel::None,
        policy: SamplingPolicy::Interval,
        heartbeat: None,
    }
}

/// Sampled offsets (ms), pixels of each sample, and the summary.
fn sample(path: &Path, interval: f64) -> (Vec<u64>, Vec<Vec<f32>>, DecodeSummary) {
    let mut offsets = Vec::new();
    let mut pixels = Vec::new();
    let summary = decode_samples(path, &options(interval), &AtomicBool::new(false), |f| {
        offsets.push(f.offset_ms);
        pixels.push(f.pixels);
        true
    })
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (offsets, pixels, summary)
}

/// Checks one sample per second: sample k lies in [k s, k s + one frame).
fn assert_one_per_second(what: &str, offsets: &[u64], seconds: usize, frame_ms: f64) {
    assert_eq!(offsets.len(), seconds, "{what}: {offsets:?}");
    for (k, &o) in offsets.iter().enumerate() {
        let lo = k as f64 * 1000.0;
        assert!(
            (o as f64) >= lo - 0.5 && (o as f64) < lo + frame_ms + 0.5,
            "{what}: sample {k} at {o} ms, want [{lo}, {}) ms: {offsets:?}",
            lo + frame_ms
        );
    }
}

#[test]
fn every_codec_and_container_samples_once_per_second_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    // (file, encoder arguments); 6 s of 29.97 fps, 320x240.
    let cases: &[(&str, &[&str])] = &[
        ("h264.mp4", &["-c:v", "libx264", "-bf", "3"]),
        (
            "hevc8.mkv",
            &["-c:v", "libx265", "-x265-params", "log-level=error"],
        ),
        (
            "hevc10.mkv",
            &[
                "-c:v",
                "libx265",
                "-pix_fmt",
                "yuv420p10le",
                "-x265-params",
                "log-level=error",
            ],
        ),
        (
            "vp9.webm",
            &[
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
            ],
        ),
        ("mpeg2.ts", &["-c:v", "mpeg2video", "-q:v", "4"]),
        (
            "mjpeg.avi",
            &["-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p"],
        ),
        ("mpeg4.avi", &["-c:v", "mpeg4", "-q:v", "5"]),
        (
            "av1.mkv",
            &[
                "-c:v",
                "libaom-av1",
                "-cpu-used",
                "8",
                "-crf",
                "45",
                "-b:v",
                "0",
            ],
        ),
    ];
    let frame_ms = 1001.0 / 30.0;
    for (name, codec) in cases {
        let path = dir.path().join(name);
        let mut args = vec!["-f", "lavfi", "-i", "testsrc2=s=320x240:r=30000/1001:d=6"];
        args.extend_from_slice(codec);
        args.push(path.to_str().unwrap());
        ffmpeg(&args);
        let (offsets, pixels, summary) = sample(&path, 1.0);
        assert_one_per_second(name, &offsets, 6, frame_ms);
        assert!(
            summary.decoded >= 6 && summary.decoded <= 180,
            "{name}: {summary:?}"
        );
        assert_eq!(summary.bad_packets, 0, "{name}");
        // Real pictures: testsrc2 is colourful, so the pixels vary.
        let p = &pixels[0];
        let mean = p.iter().sum::<f32>() / p.len() as f32;
        let var = p.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / p.len() as f32;
        assert!(var > 0.05, "{name}: flat picture (variance {var})");
    }
}

#[test]
fn variable_frame_rate_is_sampled_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vfr.mkv");
    // 10 s whose frames arrive at a rate that changes every 2.5 s (5, 30, 12, 25 fps): the
    // select/setpts pair keeps real timestamps and drops frames unevenly.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=160x120:r=30:d=10",
        "-vf",
        "select='if(lt(t,2.5),not(mod(n,6)),if(lt(t,5),1,if(lt(t,7.5),not(mod(n,5)),lt(mod(n,6),5))))'",
        "-fps_mode",
        "vfr",
        "-c:v",
        "libx264",
        path.to_str().unwrap(),
    ]);
    let (offsets, _, summary) = sample(&path, 1.0);
    // At 5 fps a frame is at most 200 ms after the mark.
    assert_one_per_second("vfr", &offsets, 10, 200.0);
    assert!(summary.decoded < 300, "frames were dropped: {summary:?}");
}

/// Mean R, G, B (normalised units) of the left, right, top and bottom halves of a sample.
fn halves(p: &[f32]) -> [[f32; 3]; 4] {
    let n = SIDE;
    let mut out = [[0f32; 3]; 4];
    for (c, plane) in p.chunks(n * n).enumerate() {
        for y in 0..n {
            for x in 0..n {
                let v = plane[y * n + x] / (n * n / 2) as f32;
                out[if x < n / 2 { 0 } else { 1 }][c] += v;
                out[if y < n / 2 { 2 } else { 3 }][c] += v;
            }
        }
    }
    out
}

#[test]
fn rotation_metadata_turns_the_picture_upright_like_the_ffmpeg_command() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.mp4");
    // Stored picture: red on top, blue below (a phone held sideways stores it like this).
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=red:s=128x64:d=2,format=yuv420p[a];color=blue:s=128x64:d=2,format=yuv420p[b];[a][b]vstack",
        "-r",
        "10",
        "-c:v",
        "libx264",
        plain.to_str().unwrap(),
    ]);
    let (plain_offsets, stored, _) = sample(&plain, 1.0);
    let h = halves(&stored[0]);
    assert!(
        h[2][0] > h[3][0] && h[3][2] > h[2][2],
        "not red over blue: {h:?}"
    );
    // (rotate tag, the half that must be red upright, as the ffmpeg command shows it)
    for (degrees, red_half) in [("90", 0usize), ("180", 3), ("270", 1)] {
        let turned = dir.path().join(format!("rot{degrees}.mp4"));
        ffmpeg(&[
            "-i",
            plain.to_str().unwrap(),
            "-c",
            "copy",
            "-metadata:s:v:0",
            &format!("rotate={degrees}"),
            turned.to_str().unwrap(),
        ]);
        // The reference: the ffmpeg command's autorotate, shrunk to 8x8 (corners sampled
        // one pixel in, away from the blend at the edges and the middle).
        let out = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-i"])
            .arg(&turned)
            .args([
                "-frames:v",
                "1",
                "-s",
                "8x8",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "-",
            ])
            .output()
            .unwrap();
        let px = out.stdout;
        assert_eq!(px.len(), 8 * 8 * 3, "ffmpeg reference for {degrees}");
        let red = |x: usize, y: usize| {
            let i = (y * 8 + x) * 3;
            px[i] > 128 && px[i + 2] < 128
        };
        let reference_half = match (red(1, 1), red(6, 1), red(1, 6), red(6, 6)) {
            (true, false, true, false) => 0,
            (false, true, false, true) => 1,
            (true, true, false, false) => 2,
            (false, false, true, true) => 3,
            other => panic!("ffmpeg reference for {degrees}: {other:?}"),
        };
        assert_eq!(
            reference_half, red_half,
            "ffmpeg's autorotate for {degrees}"
        );
        let (offsets, samples, _) = sample(&turned, 1.0);
        assert_eq!(
            offsets, plain_offsets,
            "rotate={degrees}: same samples as stored"
        );
        let h = halves(&samples[0]);
        let opposite = [1, 0, 3, 2][red_half];
        assert!(
            h[red_half][0] > h[opposite][0] + 1.0 && h[opposite][2] > h[red_half][2] + 1.0,
            "rotate={degrees}: red should be in half {red_half}: {h:?}"
        );
    }
}

#[test]
fn mpeg_ts_timestamp_discontinuities_continue_the_footage() {
    let dir = tempfile::tempdir().unwrap();
    let seg = |name: &str, offset: &str| {
        let path = dir.path().join(name);
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=160x120:r=25:d=4",
            "-c:v",
            "libx264",
            "-output_ts_offset",
            offset,
            "-f",
            "mpegts",
            path.to_str().unwrap(),
        ]);
        std::fs::read(path).unwrap()
    };
    let first = seg("a.ts", "0");
    // The same clock again (a restarted encoder), and one that jumped 1000 s ahead.
    let again = seg("b.ts", "0");
    let ahead = seg("c.ts", "1000");
    let joined = dir.path().join("joined.ts");
    std::fs::write(&joined, [first.clone(), again, ahead].concat()).unwrap();
    let (offsets, _, summary) = sample(&joined, 1.0);
    // 12 s of footage, one sample per second, no burst at the joins and no 1000 s gap.
    assert_one_per_second("joined ts", &offsets, 12, 40.0 + 40.0);
    assert_eq!(summary.discontinuities, 2, "{summary:?}");
    // Non-reference frames far from a sample may be skipped, never more than all 300.
    assert!(
        summary.decoded <= 300 && summary.decoded >= 12,
        "{summary:?}"
    );
}

#[test]
fn a_truncated_file_yields_the_frames_before_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.ts");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=160x120:r=25:d=10",
        "-c:v",
        "libx264",
        "-g",
        "25",
        whole.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.ts");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (offsets, _, _) = sample(&cut, 1.0);
    // Roughly the first half: at least 4 of the 10 seconds, none past the cut, in order.
    assert!(
        (4..=6).contains(&offsets.len()),
        "{} samples: {offsets:?}",
        offsets.len()
    );
    assert!(offsets.windows(2).all(|w| w[1] > w[0]), "{offsets:?}");
    assert_one_per_second("truncated", &offsets, offsets.len(), 40.0);
}

#[test]
fn gops_no_sample_needs_are_not_decoded_and_the_samples_stay_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let mp4 = dir.path().join("gop.mp4");
    // 12 s at 30 fps with B-frames and a keyframe every 2 s.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=30:d=12",
        "-c:v",
        "libx264",
        "-g",
        "60",
        "-keyint_min",
        "60",
        "-sc_threshold",
        "0",
        mp4.to_str().unwrap(),
    ]);
    // The same packets in Matroska, where frameseek does not skip GOPs.
    let mkv = dir.path().join("gop.mkv");
    ffmpeg(&[
        "-i",
        mp4.to_str().unwrap(),
        "-c",
        "copy",
        mkv.to_str().unwrap(),
    ]);
    // Keyframes a few frames before sample targets (every 40 frames at 29.97 fps, three
    // B-frames): the frames right after such a keyframe must still be decoded.
    let odd = dir.path().join("odd-gop.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=30000/1001:d=12",
        "-c:v",
        "libx264",
        "-bf",
        "3",
        "-g",
        "40",
        "-keyint_min",
        "40",
        "-sc_threshold",
        "0",
        odd.to_str().unwrap(),
    ]);
    let odd_mkv = dir.path().join("odd-gop.mkv");
    ffmpeg(&[
        "-i",
        odd.to_str().unwrap(),
        "-c",
        "copy",
        odd_mkv.to_str().unwrap(),
    ]);
    for interval in [1.0, 0.5] {
        let (mp4_offsets, mp4_pixels, _) = sample(&odd, interval);
        let (mkv_offsets, mkv_pixels, _) = sample(&odd_mkv, interval);
        assert_eq!(mp4_offsets, mkv_offsets, "odd GOP, interval {interval}");
        assert_eq!(mp4_pixels, mkv_pixels, "odd GOP, interval {interval}");
        for (k, &o) in mp4_offsets.iter().enumerate() {
            let lo = k as f64 * interval * 1000.0;
            assert!(
                (o as f64) >= lo - 0.5 && (o as f64) < lo + 1001.0 / 30.0 + 0.5,
                "sample {k} at {o} ms, interval {interval}: {mp4_offsets:?}"
            );
        }
    }
    for interval in [1.0, 2.0, 3.0] {
        let (mp4_offsets, mp4_pixels, mp4_summary) = sample(&mp4, interval);
        let (mkv_offsets, mkv_pixels, mkv_summary) = sample(&mkv, interval);
        assert_eq!(mp4_offsets, mkv_offsets, "interval {interval}");
        assert_eq!(mp4_pixels, mkv_pixels, "interval {interval}: same pictures");
        assert_eq!(mkv_summary.packets_skipped, 0);
        // At 1 s half of every GOP follows the last sample it holds; at 2 s and 3 s every
        // sample but the first sits on or just after a keyframe.
        assert!(
            mp4_summary.packets_skipped > 100,
            "interval {interval}: {mp4_summary:?}"
        );
        assert!(
            mp4_summary.decoded < mkv_summary.decoded,
            "interval {interval}: {mp4_summary:?} vs {mkv_summary:?}"
        );
    }
}
