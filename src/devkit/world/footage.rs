//! Rendering the sample cameras to files: one H.264 video per camera through the `ffmpeg`
//! command, the ground truth, the labelled queries and the image query's probe frame.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::cameras::{probe_frame_time, sample_cameras, sample_queries, scene_at, CameraScript};
use super::render::{render_scene, save_png, FRAME_HEIGHT, FRAME_WIDTH};
use super::rng::WorldRng;
use super::scene::{
    Background, ObjectKind, PlacedObject, Position, RenderJitter, SceneSpec, TimeOfDay,
};
use crate::eval::LabelledQuery;

/// One line of `ground_truth.jsonl`: an object visible on a camera from one time to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruthEvent {
    /// Camera name.
    pub camera: String,
    /// Video path relative to the footage folder (`cam1/footage.mp4`).
    pub source: String,
    /// What was visible.
    pub object: ObjectKind,
    /// Where.
    pub position: Position,
    /// The camera's background.
    pub background: Background,
    /// Lighting.
    pub time: TimeOfDay,
    /// Visible from, seconds.
    pub start_s: f64,
    /// Visible until, seconds.
    pub end_s: f64,
    /// The complete caption of the object in that scene.
    pub caption: String,
}

impl GroundTruthEvent {
    /// The object as captions name it ("a red car").
    pub fn object_phrase(&self) -> &'static str {
        self.object.phrase()
    }

    /// The position as captions name it ("on the left").
    pub fn position_phrase(&self) -> &'static str {
        self.position.phrase()
    }
}

/// What [`render_footage`] wrote.
#[derive(Debug, Clone)]
pub struct Footage {
    /// The footage folder.
    pub dir: PathBuf,
    /// Every video written, in camera order.
    pub videos: Vec<PathBuf>,
    /// Every appearance with its times.
    pub ground_truth: Vec<GroundTruthEvent>,
    /// The labelled queries written to `queries.jsonl`.
    pub queries: Vec<LabelledQuery>,
}

/// Frames per second of the sample footage.
pub const FOOTAGE_FPS: u32 = 12;

/// Encodes the RGB frames `write` gives (`size` = width x height, rgb24) into `path` at
/// `fps` through the `ffmpeg` command: H.264, yuv420p, a keyframe every `gop` frames. The
/// one encoder of the world's footage (4:3 and wide).
pub(super) fn encode_h264(
    path: &Path,
    size: (usize, usize),
    fps: u32,
    gop: u32,
    write: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo"])
        .args(["-pix_fmt", "rgb24", "-s"])
        .arg(format!("{}x{}", size.0, size.1))
        .args(["-r", &fps.to_string(), "-i", "-"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "26"])
        .args(["-pix_fmt", "yuv420p", "-g", &gop.to_string()])
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run ffmpeg (install it: apt-get install ffmpeg)")?;
    // The frames, then end of input (stdin dropped) before waiting.
    let write_result = match child.stdin.take().context("ffmpeg stdin") {
        Ok(mut stdin) => write(&mut stdin),
        Err(e) => Err(e),
    };
    let out = child.wait_with_output().context("waiting for ffmpeg")?;
    if !out.status.success() {
        bail!(
            "ffmpeg failed writing {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    write_result
}

/// Renders one camera's video to `path` through the `ffmpeg` command (H.264, yuv420p).
pub fn render_camera_video(camera: &CameraScript, path: &Path, seed: u64) -> anyhow::Result<()> {
    let mut rng = WorldRng::new(seed);
    // The camera's own look is fixed; objects get a fixed placement per appearance.
    let base = RenderJitter::random(&mut rng, 0);
    let per_appearance: Vec<RenderJitter> = camera
        .appearances
        .iter()
        .map(|_| RenderJitter::random(&mut rng, 1))
        .collect();
    let frames = (camera.duration_s * FOOTAGE_FPS as f64).round() as usize;
    let size = (FRAME_WIDTH, FRAME_HEIGHT);
    encode_h264(path, size, FOOTAGE_FPS, 48, |stdin| {
        for f in 0..frames {
            let t = f as f64 / FOOTAGE_FPS as f64;
            let visible: Vec<usize> = (0..camera.appearances.len())
                .filter(|&i| {
                    let a = &camera.appearances[i];
                    a.start_s <= t && t < a.end_s
                })
                .collect();
            let scene = SceneSpec {
                background: camera.background,
                time: camera.time,
                objects: visible
                    .iter()
                    .map(|&i| PlacedObject {
                        kind: camera.appearances[i].kind,
                        position: camera.appearances[i].position,
                    })
                    .collect(),
            };
            let mut jitter = base.clone();
            jitter.noise = 4.0;
            jitter.noise_seed = rng.next_u64();
            for &i in &visible {
                let a = &camera.appearances[i];
                let j = &per_appearance[i];
                // A slow sway, as if the object shifted its weight or crept forward.
                let sway = 0.012 * ((t - a.start_s) * 0.8).sin() as f32;
                jitter.object_shift.push(j.object_shift[0] * 0.5 + sway);
                jitter.object_scale.push(j.object_scale[0]);
                jitter.object_colour.push(j.object_colour[0]);
            }
            let rgb = render_scene(&scene, &jitter, FRAME_WIDTH, FRAME_HEIGHT);
            stdin.write_all(&rgb).context("writing a frame to ffmpeg")?;
        }
        Ok(())
    })
}

/// Renders the sample footage into `dir`: one `NAME/footage.mp4` per camera of
/// [`sample_cameras`], `ground_truth.jsonl`, `queries.jsonl` (for `frameseek eval`) and the
/// image query's `probe.png` (rendered apart from the videos, not a frame of them).
pub fn render_footage(dir: &Path, seed: u64) -> anyhow::Result<Footage> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cameras = sample_cameras();
    let mut videos = Vec::new();
    let mut ground_truth = Vec::new();
    for (i, cam) in cameras.iter().enumerate() {
        let folder = dir.join(cam.name);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        let video = folder.join("footage.mp4");
        render_camera_video(cam, &video, seed.wrapping_mul(31).wrapping_add(i as u64))?;
        videos.push(video);
        for a in &cam.appearances {
            let scene = SceneSpec {
                background: cam.background,
                time: cam.time,
                objects: vec![PlacedObject {
                    kind: a.kind,
                    position: a.position,
                }],
            };
            ground_truth.push(GroundTruthEvent {
                camera: cam.name.to_string(),
                source: format!("{}/footage.mp4", cam.name),
                object: a.kind,
                position: a.position,
                background: cam.background,
                time: cam.time,
                start_s: a.start_s,
                end_s: a.end_s,
                caption: scene.caption(),
            });
        }
    }
    write_probe(&dir.join("probe.png"), &cameras, seed)?;
    let queries = sample_queries(&cameras);
    write_jsonl(&dir.join("ground_truth.jsonl"), &ground_truth)?;
    write_jsonl(&dir.join("queries.jsonl"), &queries)?;
    Ok(Footage {
        dir: dir.to_path_buf(),
        videos,
        ground_truth,
        queries,
    })
}

/// Writes the image query's picture: the probe scene ([`probe_frame_time`]) rendered with
/// its own lighting, placement and noise, so it is not a frame of any ingested video.
fn write_probe(path: &Path, cameras: &[CameraScript], seed: u64) -> anyhow::Result<()> {
    let (name, t) = probe_frame_time(cameras);
    let camera = cameras
        .iter()
        .find(|c| c.name == name)
        .context("the probe's camera is missing")?;
    let scene = scene_at(camera, t);
    let mut rng = WorldRng::new(seed ^ 0x0050_524F_4245);
    let jitter = RenderJitter::random(&mut rng, scene.objects.len());
    let rgb = render_scene(&scene, &jitter, FRAME_WIDTH, FRAME_HEIGHT);
    save_png(path, &rgb, FRAME_WIDTH, FRAME_HEIGHT).context("writing the probe picture")
}

fn write_jsonl<T: Serialize>(path: &Path, items: &[T]) -> anyhow::Result<()> {
    let mut text = String::new();
    for item in items {
        text.push_str(&serde_json::to_string(item)?);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
