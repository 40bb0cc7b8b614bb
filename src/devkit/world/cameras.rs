//! The script of the sample footage: four fixed cameras and what appears in front of them
//! when, the scene at any moment, and the labelled queries whose answers that script fixes.

use super::scene::{Background, ObjectKind, PlacedObject, Position, SceneSpec, TimeOfDay};
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

/// The labelled queries for [`sample_cameras`]: complete captions of single appearances,
/// shorter captions with a camera or time filter, and an image query (a frame extracted
/// to `probe.png`).
pub fn sample_queries(cameras: &[CameraScript]) -> Vec<LabelledQuery> {
    let mut queries = Vec::new();
    for cam in cameras {
        for a in &cam.appearances {
            let scene = SceneSpec {
                background: cam.background,
                time: cam.time,
                objects: vec![PlacedObject {
                    kind: a.kind,
                    position: a.position,
                }],
            };
            queries.push(LabelledQuery {
                query: Some(scene.caption()),
                source: format!("{}/footage.mp4", cam.name),
                start_s: a.start_s,
                end_s: a.end_s,
                ..Default::default()
            });
        }
    }
    let camera = |name: &str| {
        cameras
            .iter()
            .find(|c| c.name == name)
            .expect("sample camera exists")
    };
    let find = |cam: &str, kind: ObjectKind, from: f64| {
        camera(cam)
            .appearances
            .iter()
            .find(|a| a.kind == kind && a.start_s >= from)
            .copied()
            .expect("sample appearance exists")
    };
    // A camera filter: any red car, but only on cam2.
    let a = find("cam2", ObjectKind::RedCar, 0.0);
    queries.push(LabelledQuery {
        query: Some("a red car".into()),
        source: "cam2/footage.mp4".into(),
        start_s: a.start_s,
        end_s: a.end_s,
        filter_source: Some("cam2/*".into()),
        ..Default::default()
    });
    // A time filter: the second person in green in the corridor.
    let a = find("cam3", ObjectKind::PersonInGreen, 20.0);
    queries.push(LabelledQuery {
        query: Some("a person in green in a corridor".into()),
        source: "cam3/footage.mp4".into(),
        start_s: a.start_s,
        end_s: a.end_s,
        from_s: Some(20.0),
        to_s: Some(60.0),
        ..Default::default()
    });
    // Both filters at once: a dog on cam1 after 30 s.
    let a = find("cam1", ObjectKind::Dog, 30.0);
    queries.push(LabelledQuery {
        query: Some("a dog".into()),
        source: "cam1/footage.mp4".into(),
        start_s: a.start_s,
        end_s: a.end_s,
        filter_source: Some("cam1/*".into()),
        from_s: Some(30.0),
        ..Default::default()
    });
    // An image query: a frame from the middle of the blue truck's stay on cam4.
    let a = find("cam4", ObjectKind::BlueTruck, 0.0);
    queries.push(LabelledQuery {
        image: Some("probe.png".into()),
        source: "cam4/footage.mp4".into(),
        start_s: a.start_s,
        end_s: a.end_s,
        ..Default::default()
    });
    queries
}

/// Where the image query's probe frame is taken from: (camera, seconds).
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
    }
}
