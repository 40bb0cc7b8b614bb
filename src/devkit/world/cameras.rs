//! The script of the sample footage: four fixed cameras and what appears in front of them
//! when, the scene at any moment, and the labelled queries whose answers that script fixes.

use super::scene::{
    composition_group, Background, ObjectKind, PlacedObject, Position, SceneSpec, TimeOfDay,
};
use crate::eval::LabelledQuery;

/// An object's stay in front of a camera.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Appearance {
    /// What appears.
    pub kind: ObjectKind,
    /// Where it stands.
    pub position: Position,
    /// When it enters, seconds from the start of the video.
    pub start_s: f64,
    /// When it leaves, seconds.
    pub end_s: f64,
}

/// A fixed camera and what happens in front of it.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraScript {
    /// Camera name; the video is written to `NAME/footage.mp4`.
    pub name: &'static str,
    /// What the camera looks at.
    pub background: Background,
    /// Lighting.
    pub time: TimeOfDay,
    /// Length of the video, seconds.
    pub duration_s: f64,
    /// Every appearance.
    pub appearances: Vec<Appearance>,
}

fn appear(kind: ObjectKind, position: Position, start_s: f64, end_s: f64) -> Appearance {
    Appearance {
        kind,
        position,
        start_s,
        end_s,
    }
}

/// The cameras of the sample footage. Every (object, position, place, lighting) combination
/// happens once at most, so each complete caption has a single right answer.
pub fn sample_cameras() -> Vec<CameraScript> {
    use ObjectKind::*;
    use Position::*;
    vec![
        CameraScript {
            name: "cam1",
            background: Background::Street,
            time: TimeOfDay::Day,
            duration_s: 60.0,
            appearances: vec![
                appear(RedCar, Left, 4.0, 14.0),
                appear(PersonInGreen, Centre, 18.0, 27.0),
                appear(WhiteVan, Right, 31.0, 41.0),
                appear(Dog, Left, 45.0, 55.0),
            ],
        },
        CameraScript {
            name: "cam2",
            background: Background::ParkingLot,
            time: TimeOfDay::Night,
            duration_s: 60.0,
            appearances: vec![
                appear(WhiteVan, Left, 3.0, 13.0),
                appear(BlueTruck, Right, 17.0, 28.0),
                appear(RedCar, Centre, 32.0, 42.0),
                appear(PersonInGreen, Left, 46.0, 55.0),
            ],
        },
        CameraScript {
            name: "cam3",
            background: Background::Corridor,
            time: TimeOfDay::Day,
            duration_s: 60.0,
            appearances: vec![
                appear(PersonInGreen, Left, 4.0, 13.0),
                appear(Dog, Right, 17.0, 26.0),
                appear(PersonInGreen, Right, 31.0, 40.0),
                appear(Dog, Centre, 45.0, 54.0),
            ],
        },
        CameraScript {
            name: "cam4",
            background: Background::Street,
            time: TimeOfDay::Night,
            duration_s: 48.0,
            appearances: vec![
                appear(BlueTruck, Left, 4.0, 14.0),
                appear(RedCar, Right, 19.0, 29.0),
                appear(PersonInGreen, Centre, 34.0, 43.0),
            ],
        },
    ]
}

/// The scene a camera shows at `t` seconds.
pub fn scene_at(camera: &CameraScript, t: f64) -> SceneSpec {
    SceneSpec {
        background: camera.background,
        time: camera.time,
        objects: camera
            .appearances
            .iter()
            .filter(|a| a.start_s <= t && t < a.end_s)
            .map(|a| PlacedObject {
                kind: a.kind,
                position: a.position,
            })
            .collect(),
    }
}

/// Query group of the held-out phrasings ([`SceneSpec::paraphrases`]).
pub const PARAPHRASE_GROUP: &str = "paraphrase";
/// Query group of the filtered queries.
pub const FILTER_GROUP: &str = "filter";
/// Query group of the image query.
pub const IMAGE_GROUP: &str = "image";

/// The labelled queries for [`sample_cameras`]: the complete caption of each appearance
/// (labelled `seen` or `held-out` by its composition), a held-out phrasing of each
/// (`paraphrase`), filtered queries whose filter admits several appearances so that the
/// text must pick the right one (`filter`), and an image query (`image`) whose picture,
/// `probe.png`, is rendered apart from the ingested videos.
pub fn sample_queries(cameras: &[CameraScript]) -> Vec<LabelledQuery> {
    let mut queries = Vec::new();
    let mut paraphrased = Vec::new();
    for cam in cameras {
        for (i, a) in cam.appearances.iter().enumerate() {
            let scene = SceneSpec {
                background: cam.background,
                time: cam.time,
                objects: vec![PlacedObject {
                    kind: a.kind,
                    position: a.position,
                }],
            };
            let expected = LabelledQuery {
                source: format!("{}/footage.mp4", cam.name),
                start_s: a.start_s,
                end_s: a.end_s,
                ..Default::default()
            };
            queries.push(LabelledQuery {
                query: Some(scene.caption()),
                groups: vec![composition_group(a.kind, cam.background, cam.time).into()],
                ..expected.clone()
            });
            let phrasings = scene.paraphrases();
            paraphrased.push(LabelledQuery {
                query: Some(phrasings[i % phrasings.len()].clone()),
                groups: vec![PARAPHRASE_GROUP.into()],
                ..expected
            });
        }
    }
    queries.extend(paraphrased);
    let camera = |name: &str| {
        cameras
            .iter()
            .find(|c| c.name == name)
            .expect("sample camera exists")
    };
    let find = |cam: &str, kind: ObjectKind, position: Position| {
        camera(cam)
            .appearances
            .iter()
            .find(|a| a.kind == kind && a.position == position)
            .copied()
            .expect("sample appearance exists")
    };
    let filtered = |text: &str, cam: &str, a: Appearance| LabelledQuery {
        query: Some(text.into()),
        source: format!("{cam}/footage.mp4"),
        start_s: a.start_s,
        end_s: a.end_s,
        groups: vec![FILTER_GROUP.into()],
        ..Default::default()
    };
    // A camera filter: cam3 shows a person in green twice; the text says which.
    queries.push(LabelledQuery {
        filter_source: Some("cam3/*".into()),
        ..filtered(
            "a person in green on the right",
            "cam3",
            find("cam3", ObjectKind::PersonInGreen, Position::Right),
        )
    });
    // A time filter: after 15 s, three dogs remain (two of them in the corridor).
    queries.push(LabelledQuery {
        from_s: Some(15.0),
        to_s: Some(60.0),
        ..filtered(
            "a dog in the centre",
            "cam3",
            find("cam3", ObjectKind::Dog, Position::Centre),
        )
    });
    // Both at once: cam2 after 10 s shows a van, a truck, a red car and a person.
    queries.push(LabelledQuery {
        filter_source: Some("cam2/*".into()),
        from_s: Some(10.0),
        ..filtered(
            "a red car",
            "cam2",
            find("cam2", ObjectKind::RedCar, Position::Centre),
        )
    });
    // An image query: a rendering of the blue truck's scene on cam4, apart from the video.
    let a = find("cam4", ObjectKind::BlueTruck, Position::Left);
    queries.push(LabelledQuery {
        image: Some("probe.png".into()),
        source: "cam4/footage.mp4".into(),
        start_s: a.start_s,
        end_s: a.end_s,
        groups: vec![IMAGE_GROUP.into()],
        ..Default::default()
    });
    queries
}

/// The scene the image query's picture shows: (camera, seconds) of the ingested footage
/// whose scene it renders again with its own rendering seed.
pub fn probe_frame_time(cameras: &[CameraScript]) -> (&'static str, f64) {
    let cam = cameras
        .iter()
        .find(|c| c.name == "cam4")
        .expect("cam4 exists");
    let a = cam
        .appearances
        .iter()
        .find(|a| a.kind == ObjectKind::BlueTruck)
        .expect("cam4 has a blue truck");
    (cam.name, (a.start_s + a.end_s) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::super::rng::WorldRng;
    use super::*;

    #[test]
    fn sample_queries_have_unique_complete_captions() {
        let cams = sample_cameras();
        let queries = sample_queries(&cams);
        assert!(queries.len() >= 12);
        let mut captions: Vec<&str> = queries
            .iter()
            .filter(|q| q.filter_source.is_none() && q.from_s.is_none())
            .filter_map(|q| q.query.as_deref())
            .collect();
        let n = captions.len();
        captions.sort();
        captions.dedup();
        assert_eq!(captions.len(), n, "every unfiltered query has one answer");
        assert!(queries.iter().any(|q| q.image.is_some()));
        for group in [
            "seen",
            "held-out",
            PARAPHRASE_GROUP,
            FILTER_GROUP,
            IMAGE_GROUP,
        ] {
            assert!(
                queries.iter().any(|q| q.groups.iter().any(|g| g == group)),
                "no {group} query"
            );
        }
    }

    /// Whether a camera's appearance passes a query's filters.
    fn admitted(q: &LabelledQuery, cam: &CameraScript, a: &Appearance) -> bool {
        let camera_ok = q
            .filter_source
            .as_deref()
            .is_none_or(|f| f.trim_end_matches('*') == format!("{}/", cam.name));
        camera_ok
            && q.from_s.is_none_or(|from| a.end_s > from)
            && q.to_s.is_none_or(|to| a.start_s < to)
    }

    #[test]
    fn no_filter_decides_its_query_alone() {
        let cams = sample_cameras();
        let filtered: Vec<LabelledQuery> = sample_queries(&cams)
            .into_iter()
            .filter(|q| q.filter_source.is_some() || q.from_s.is_some() || q.to_s.is_some())
            .collect();
        assert!(filtered.len() >= 3);
        for q in &filtered {
            let passing: Vec<(&str, Appearance)> = cams
                .iter()
                .flat_map(|c| c.appearances.iter().map(move |a| (c, a)))
                .filter(|(c, a)| admitted(q, c, a))
                .map(|(c, a)| (c.name, *a))
                .collect();
            assert!(
                passing.len() >= 3,
                "{:?}: the filter leaves {passing:?}",
                q.query
            );
            let same_kind = passing
                .iter()
                .filter(|(_, a)| q.query.as_deref().unwrap().starts_with(a.kind.phrase()))
                .count();
            assert!(same_kind >= 1, "{:?}", q.query);
        }
    }

    #[test]
    fn paraphrases_are_never_training_captions() {
        let mut rng = WorldRng::new(11);
        for cam in sample_cameras() {
            for a in &cam.appearances {
                let scene = SceneSpec {
                    background: cam.background,
                    time: cam.time,
                    objects: vec![PlacedObject {
                        kind: a.kind,
                        position: a.position,
                    }],
                };
                let phrasings = scene.paraphrases();
                assert_eq!(phrasings.len(), 2);
                for _ in 0..3000 {
                    let c = scene.random_caption(&mut rng);
                    assert!(!phrasings.contains(&c), "{c:?} is a training caption");
                }
            }
        }
    }

    #[test]
    fn the_sample_footage_shows_held_out_and_seen_compositions() {
        let cams = sample_cameras();
        let triples: Vec<(ObjectKind, Background, TimeOfDay)> = cams
            .iter()
            .flat_map(|c| {
                c.appearances
                    .iter()
                    .map(move |a| (a.kind, c.background, c.time))
            })
            .collect();
        let held: Vec<_> = triples
            .iter()
            .filter(|t| super::super::scene::is_held_out(t.0, t.1, t.2))
            .collect();
        assert_eq!(held.len(), 5, "{held:?}");
        assert!(triples.len() - held.len() >= 10);
    }
}
