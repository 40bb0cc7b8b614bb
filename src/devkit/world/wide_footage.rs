//! The wide (16:9) sample footage and its labelled queries, as `frameseek world
//! wide-footage` writes them: four fixed cameras, each showing every object kind once,
//! at the edge of the frame (its box inside the outer 20 % of the width), small (its box
//! covering 1/30 of the frame) or in the middle at the edge's size (the control), with two
//! objects in view at once, one partly hidden behind a pillar, and distractors (a cone, a
//! person in red). Each object's query is searched within its own camera's video only, and
//! is labelled with its placement (`edge`, `small`, `middle`) and its composition (`seen`,
//! `held-out`), so `frameseek eval` reports recall per group.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::footage::encode_h264;
use super::rng::WorldRng;
use super::scene::{composition_group, Background, ObjectKind, RenderJitter, TimeOfDay};
use super::wide::{
    finish, size_for_area, size_for_width, PropKind, WideObject, WideProp, WideScene,
};
use crate::eval::LabelledQuery;

/// Frames per second of the wide footage (sampled at 1 frame/s, so 4 is plenty).
pub const WIDE_FOOTAGE_FPS: u32 = 4;

/// Share of the frame's width an edge object's box spans; it stands in the outer 20 %.
const EDGE_WIDTH_SHARE: f32 = 0.18;
/// Share of the frame's area a small object's box covers.
const SMALL_AREA_SHARE: f32 = 1.0 / 30.0;

/// Where and how large an object of the wide footage is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Its box inside the left 20 % of the width.
    LeftEdge,
    /// Its box inside the right 20 % of the width.
    RightEdge,
    /// Its box covering 1/30 of the frame, centred at this share of the width (percent).
    Small(u8),
    /// The edge's size, in the middle of the frame (the control).
    Middle,
}

impl Placement {
    /// The query group of this placement.
    pub fn group(self) -> &'static str {
        match self {
            Self::LeftEdge | Self::RightEdge => "edge",
            Self::Small(_) => "small",
            Self::Middle => "middle",
        }
    }

    /// The object as placed in a `width` x `height` frame.
    fn object(self, kind: ObjectKind, colour: [f32; 3], width: usize, height: usize) -> WideObject {
        let edge_size = size_for_width(kind, EDGE_WIDTH_SHARE, width, height).min(1.0);
        let edge_half = EDGE_WIDTH_SHARE * edge_size
            / size_for_width(kind, EDGE_WIDTH_SHARE, width, height)
            / 2.0;
        let (x, size) = match self {
            Self::LeftEdge => (0.2 - edge_half - 0.01, edge_size),
            Self::RightEdge => (0.8 + edge_half + 0.01, edge_size),
            Self::Small(percent) => (
                f32::from(percent) / 100.0,
                size_for_area(kind, SMALL_AREA_SHARE, width, height),
            ),
            Self::Middle => (0.5, edge_size),
        };
        WideObject {
            kind,
            x,
            size,
            colour,
        }
    }
}

/// An object's stay in front of a wide camera.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WideAppearance {
    /// What appears.
    pub kind: ObjectKind,
    /// Where and how large.
    pub placement: Placement,
    /// When it enters, seconds.
    pub start_s: f64,
    /// When it leaves, seconds.
    pub end_s: f64,
    /// A pillar in front hides about a quarter of it.
    pub hidden: bool,
}

/// A fixed wide camera and what happens in front of it.
#[derive(Debug, Clone, PartialEq)]
pub struct WideCamera {
    /// Camera name; the video is written to `NAME/footage.mp4`.
    pub name: &'static str,
    /// What it looks at.
    pub background: Background,
    /// Lighting.
    pub time: TimeOfDay,
    /// Length, seconds.
    pub duration_s: f64,
    /// Every appearance (each object kind once, so each query has one right answer).
    pub appearances: Vec<WideAppearance>,
    /// Distractors: (what, centre as a share of the width, from, to seconds).
    pub distractors: Vec<(PropKind, f32, f64, f64)>,
}

/// Length of each wide camera's video, seconds.
const DURATION_S: f64 = 78.0;

/// The wide cameras: every kind once per camera, 7 at an edge, 7 small and 6 in the middle
/// overall; the fifth object of each camera enters while the fourth is still there, and
/// distractors fill the time between objects, so a video holds many candidate clips.
pub fn wide_cameras() -> Vec<WideCamera> {
    use ObjectKind::*;
    use Placement::*;
    // Objects enter at 10, 26, 42, 58 and 62 s and stay 6 s; between them, distractors.
    let a = |kind, placement, start_s: f64, hidden| WideAppearance {
        kind,
        placement,
        start_s,
        end_s: start_s + 6.0,
        hidden,
    };
    let distractors = vec![
        (PropKind::Cone, 0.62, 0.0, DURATION_S),
        (PropKind::PersonInRed, 0.5, 2.0, 8.0),
        (PropKind::PersonInRed, 0.1, 18.0, 24.0),
        (PropKind::Bin, 0.7, 34.0, 40.0),
        (PropKind::PersonInRed, 0.85, 50.0, 56.0),
        (PropKind::Bin, 0.3, 70.0, 76.0),
    ];
    vec![
        WideCamera {
            name: "wide1",
            background: Background::Street,
            time: TimeOfDay::Day,
            duration_s: DURATION_S,
            appearances: vec![
                a(RedCar, LeftEdge, 10.0, false),
                a(Dog, Small(40), 26.0, false),
                a(PersonInGreen, Middle, 42.0, true),
                a(WhiteVan, RightEdge, 58.0, false),
                a(BlueTruck, Small(45), 62.0, false),
            ],
            distractors: distractors.clone(),
        },
        WideCamera {
            name: "wide2",
            background: Background::ParkingLot,
            time: TimeOfDay::Night,
            duration_s: DURATION_S,
            appearances: vec![
                a(PersonInGreen, RightEdge, 10.0, false),
                a(WhiteVan, Middle, 26.0, true),
                a(BlueTruck, LeftEdge, 42.0, false),
                a(RedCar, Small(60), 58.0, false),
                a(Dog, Middle, 62.0, false),
            ],
            distractors: distractors.clone(),
        },
        WideCamera {
            name: "wide3",
            background: Background::Corridor,
            time: TimeOfDay::Day,
            duration_s: DURATION_S,
            appearances: vec![
                a(Dog, LeftEdge, 10.0, false),
                a(BlueTruck, Middle, 26.0, false),
                a(RedCar, RightEdge, 42.0, true),
                a(PersonInGreen, Small(55), 58.0, false),
                a(WhiteVan, Small(30), 62.0, false),
            ],
            distractors: distractors.clone(),
        },
        WideCamera {
            name: "wide4",
            background: Background::Street,
            time: TimeOfDay::Night,
            duration_s: DURATION_S,
            appearances: vec![
                a(WhiteVan, LeftEdge, 10.0, false),
                a(PersonInGreen, Small(50), 26.0, false),
                a(RedCar, Middle, 42.0, false),
                a(Dog, Small(70), 58.0, true),
                a(BlueTruck, Middle, 62.0, false),
            ],
            distractors,
        },
    ]
}

/// What a wide camera shows at `t` seconds in a `width` x `height` frame; `colours` holds
/// each appearance's colour factors.
pub fn wide_scene_at(
    camera: &WideCamera,
    t: f64,
    colours: &[[f32; 3]],
    width: usize,
    height: usize,
) -> WideScene {
    let mut objects = Vec::new();
    let mut props: Vec<WideProp> = camera
        .distractors
        .iter()
        .filter(|d| d.2 <= t && t < d.3)
        .map(|&(kind, x, _, _)| WideProp {
            kind,
            x,
            size: 0.55,
        })
        .collect();
    for (i, a) in camera.appearances.iter().enumerate() {
        if !(a.start_s <= t && t < a.end_s) {
            continue;
        }
        let o = a.placement.object(
            a.kind,
            colours.get(i).copied().unwrap_or([1.0; 3]),
            width,
            height,
        );
        if a.hidden {
            // A pillar over the object's right quarter.
            let b = o.pixel_box(camera.background, width, height);
            let pillar_width = 0.05 * 3.0 * height as f32;
            let x = (b.2 - 0.25 * (b.2 - b.0) + pillar_width / 2.0) / width as f32;
            props.push(WideProp {
                kind: PropKind::Pillar,
                x,
                size: 3.0,
            });
        }
        objects.push(o);
    }
    WideScene {
        background: camera.background,
        time: camera.time,
        objects,
        props,
    }
}

/// The labelled queries of the wide cameras: each object named with its place and lighting,
/// searched within its own camera's video (`own_video`) or across every wide video (each
/// place and lighting has one camera, so the answer is still unique), labelled with its placement group, its
/// composition group and `hidden` or `together` where it is partly hidden or in view with
/// another object.
pub fn wide_queries(cameras: &[WideCamera], own_video: bool) -> Vec<LabelledQuery> {
    let mut out = Vec::new();
    for cam in cameras {
        let night = if cam.time == TimeOfDay::Night {
            " at night"
        } else {
            ""
        };
        for (i, a) in cam.appearances.iter().enumerate() {
            let mut groups = vec![
                a.placement.group().to_string(),
                composition_group(a.kind, cam.background, cam.time).to_string(),
            ];
            if a.hidden {
                groups.push("hidden".into());
            }
            let together = cam
                .appearances
                .iter()
                .enumerate()
                .any(|(j, b)| j != i && b.start_s < a.end_s && a.start_s < b.end_s);
            if together {
                groups.push("together".into());
            }
            let video = format!("{}/footage.mp4", cam.name);
            out.push(LabelledQuery {
                query: Some(format!(
                    "{} in {}{night}",
                    a.kind.phrase(),
                    cam.background.phrase()
                )),
                source: video.clone(),
                start_s: a.start_s,
                end_s: a.end_s,
                filter_source: own_video.then_some(video),
                groups,
                ..Default::default()
            });
        }
    }
    out
}

/// What [`render_wide_footage`] wrote.
#[derive(Debug, Clone)]
pub struct WideFootage {
    /// Every video written, in camera order.
    pub videos: Vec<PathBuf>,
    /// The labelled queries written to `queries.jsonl` (each within its own video).
    pub queries: Vec<LabelledQuery>,
}

/// The query file of the wide footage whose queries search within their own video.
pub const WIDE_QUERIES_OWN: &str = "queries.jsonl";
/// The query file of the wide footage whose queries search across every wide video.
pub const WIDE_QUERIES_ALL: &str = "queries-all.jsonl";

/// Renders one wide camera to `path` (H.264, `width` x `height`, [`WIDE_FOOTAGE_FPS`]).
pub fn render_wide_camera(
    camera: &WideCamera,
    path: &Path,
    seed: u64,
    width: usize,
    height: usize,
) -> anyhow::Result<()> {
    let mut rng = WorldRng::new(seed);
    let mut look = RenderJitter::random(&mut rng, 0);
    look.noise = 4.0;
    let colours: Vec<[f32; 3]> = camera
        .appearances
        .iter()
        .map(|_| RenderJitter::random(&mut rng, 1).object_colour[0])
        .collect();
    let empty = WideScene {
        background: camera.background,
        time: camera.time,
        objects: vec![],
        props: vec![],
    };
    let background = empty.render_background(&look, width, height);
    let frames = (camera.duration_s * f64::from(WIDE_FOOTAGE_FPS)).round() as usize;
    encode_h264(path, (width, height), WIDE_FOOTAGE_FPS, 16, |stdin| {
        for f in 0..frames {
            let t = f as f64 / f64::from(WIDE_FOOTAGE_FPS);
            let scene = wide_scene_at(camera, t, &colours, width, height);
            let mut canvas = background.clone();
            scene.draw_foreground(&mut canvas);
            look.noise_seed = rng.next_u64();
            stdin
                .write_all(&finish(canvas, &look))
                .context("writing a frame to ffmpeg")?;
        }
        Ok(())
    })
}

/// Renders the wide footage into `dir`: `NAME/footage.mp4` per camera of [`wide_cameras`]
/// at `width` x `height`, and the query files for `frameseek eval`: [`WIDE_QUERIES_OWN`]
/// (each within its own video) and [`WIDE_QUERIES_ALL`] (across every wide video).
pub fn render_wide_footage(
    dir: &Path,
    seed: u64,
    width: usize,
    height: usize,
) -> anyhow::Result<WideFootage> {
    if width < 64 || height < 64 || width * 9 != height * 16 {
        bail!("wide footage is 16:9 and at least 64 pixels high; got {width}x{height} (try 1280x720 or 1920x1080)");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cameras = wide_cameras();
    let mut videos = Vec::new();
    for (i, cam) in cameras.iter().enumerate() {
        let folder = dir.join(cam.name);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        let video = folder.join("footage.mp4");
        let cam_seed = seed.wrapping_mul(31).wrapping_add(100 + i as u64);
        render_wide_camera(cam, &video, cam_seed, width, height)?;
        videos.push(video);
    }
    let queries = wide_queries(&cameras, true);
    for (name, set) in [
        (WIDE_QUERIES_OWN, &queries),
        (WIDE_QUERIES_ALL, &wide_queries(&cameras, false)),
    ] {
        let mut text = String::new();
        for q in set {
            text.push_str(&serde_json::to_string(q)?);
            text.push('\n');
        }
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(WideFootage { videos, queries })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_objects_stand_in_the_outer_fifth_and_small_ones_cover_a_thirtieth() {
        let (w, h) = (1280, 720);
        let mut groups = std::collections::HashMap::new();
        for cam in wide_cameras() {
            let kinds: std::collections::HashSet<ObjectKind> =
                cam.appearances.iter().map(|a| a.kind).collect();
            assert_eq!(
                kinds.len(),
                cam.appearances.len(),
                "{}: one of each kind",
                cam.name
            );
            for a in &cam.appearances {
                *groups.entry(a.placement.group()).or_insert(0) += 1;
                let o = a.placement.object(a.kind, [1.0; 3], w, h);
                let b = o.pixel_box(cam.background, w, h);
                let (x0, x1) = (b.0 / w as f32, b.2 / w as f32);
                match a.placement {
                    Placement::LeftEdge => assert!(x0 >= 0.0 && x1 <= 0.2, "{a:?}: {x0}..{x1}"),
                    Placement::RightEdge => assert!(x0 >= 0.8 && x1 <= 1.0, "{a:?}: {x0}..{x1}"),
                    Placement::Small(_) => {
                        let share = (b.2 - b.0) * (b.3 - b.1) / (w * h) as f32;
                        assert!((share - SMALL_AREA_SHARE).abs() < 1e-3, "{a:?}: {share}");
                    }
                    Placement::Middle => assert!(x0 > 0.2 && x1 < 0.8, "{a:?}"),
                }
                assert!(b.1 >= 0.0 && b.3 <= h as f32, "{a:?} fits the height");
            }
        }
        assert_eq!(
            (groups["edge"], groups["small"], groups["middle"]),
            (7, 7, 6)
        );
    }

    #[test]
    fn wide_queries_are_searched_within_their_own_video_and_cover_every_group() {
        let queries = wide_queries(&wide_cameras(), true);
        assert_eq!(queries.len(), 20);
        assert!(wide_queries(&wide_cameras(), false)
            .iter()
            .all(|q| q.filter_source.is_none()));
        for q in &queries {
            assert_eq!(q.filter_source.as_deref(), Some(q.source.as_str()));
        }
        for group in [
            "edge", "small", "middle", "seen", "held-out", "hidden", "together",
        ] {
            assert!(
                queries.iter().any(|q| q.groups.iter().any(|g| g == group)),
                "no {group} query"
            );
        }
    }

    #[test]
    fn a_hidden_object_has_a_pillar_over_part_of_it() {
        let (w, h) = (1280, 720);
        let cam = &wide_cameras()[0];
        let a = cam.appearances.iter().find(|a| a.hidden).unwrap();
        let s = wide_scene_at(cam, a.start_s + 1.0, &[], w, h);
        let o = s.objects.iter().find(|o| o.kind == a.kind).unwrap();
        let b = o.pixel_box(cam.background, w, h);
        let pillar = s.props.iter().find(|p| p.kind == PropKind::Pillar).unwrap();
        let px = pillar.x * w as f32;
        assert!(
            px > b.0 && px < b.2 + 0.1 * w as f32,
            "pillar at {px}, object {b:?}"
        );
    }
}
