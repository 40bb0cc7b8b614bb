//! What a camera sees at one moment: a background, the lighting and placed objects
//! ([`SceneSpec`]), the captions that describe it, and the random variation of one rendering
//! ([`RenderJitter`]).

use serde::{Deserialize, Serialize};

use super::rng::WorldRng;

/// What a camera looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Background {
    /// Buildings, a pavement and a road with a dashed centre line.
    Street,
    /// Asphalt with white parking bays and a kerb.
    ParkingLot,
    /// Walls, a floor in perspective, doors, a ceiling light.
    Corridor,
}

impl Background {
    /// Every background.
    pub const ALL: [Background; 3] = [Self::Street, Self::ParkingLot, Self::Corridor];

    /// The noun phrase used in captions ("a street").
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Street => "a street",
            Self::ParkingLot => "a parking lot",
            Self::Corridor => "a corridor",
        }
    }

    /// The bare noun ("street").
    pub fn noun(self) -> &'static str {
        match self {
            Self::Street => "street",
            Self::ParkingLot => "parking lot",
            Self::Corridor => "corridor",
        }
    }
}

/// Day or night lighting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeOfDay {
    /// Daylight palette.
    Day,
    /// Dark, blue-tinted palette with a lamp glow.
    Night,
}

/// Things that enter and leave a camera's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A red car body with a cabin and wheels.
    RedCar,
    /// A tall white box on wheels.
    WhiteVan,
    /// A blue cab and a blue box on wheels.
    BlueTruck,
    /// A person with a green top and a head.
    PersonInGreen,
    /// A small brown four-legged shape.
    Dog,
}

impl ObjectKind {
    /// Every object kind.
    pub const ALL: [ObjectKind; 5] = [
        Self::RedCar,
        Self::WhiteVan,
        Self::BlueTruck,
        Self::PersonInGreen,
        Self::Dog,
    ];

    /// The noun phrase used in captions ("a red car").
    pub fn phrase(self) -> &'static str {
        match self {
            Self::RedCar => "a red car",
            Self::WhiteVan => "a white van",
            Self::BlueTruck => "a blue truck",
            Self::PersonInGreen => "a person in green",
            Self::Dog => "a dog",
        }
    }

    fn synonyms(self) -> &'static [&'static str] {
        match self {
            Self::RedCar => &["a red car", "a red car", "a small red car"],
            Self::WhiteVan => &["a white van", "a white van", "a white delivery van"],
            Self::BlueTruck => &["a blue truck", "a blue truck", "a blue lorry"],
            Self::PersonInGreen => &[
                "a person in green",
                "a person in green",
                "someone in green",
                "a person wearing green",
            ],
            Self::Dog => &["a dog", "a dog", "a brown dog"],
        }
    }
}

/// The compositions no training image shows: object × place × light, at every position
/// (so every object × place × light × position combination of them is held out too).
/// `frameseek world dataset` skips any scene that contains one; the sample footage shows
/// each of them, and its queries about them are labelled [`HELD_OUT_GROUP`].
pub const HELD_OUT_COMPOSITIONS: [(ObjectKind, Background, TimeOfDay); 5] = [
    (ObjectKind::Dog, Background::Street, TimeOfDay::Day),
    (ObjectKind::WhiteVan, Background::Street, TimeOfDay::Day),
    (ObjectKind::RedCar, Background::Street, TimeOfDay::Night),
    (
        ObjectKind::PersonInGreen,
        Background::ParkingLot,
        TimeOfDay::Night,
    ),
    (
        ObjectKind::BlueTruck,
        Background::ParkingLot,
        TimeOfDay::Night,
    ),
];

/// Query group of a query about a composition that training never showed.
pub const HELD_OUT_GROUP: &str = "held-out";
/// Query group of a query about a composition that training showed.
pub const SEEN_GROUP: &str = "seen";

/// Whether `kind` in `background` by `time` is one of [`HELD_OUT_COMPOSITIONS`].
pub fn is_held_out(kind: ObjectKind, background: Background, time: TimeOfDay) -> bool {
    HELD_OUT_COMPOSITIONS.contains(&(kind, background, time))
}

/// The composition group of `kind` in `background` by `time`: [`HELD_OUT_GROUP`] or
/// [`SEEN_GROUP`].
pub fn composition_group(
    kind: ObjectKind,
    background: Background,
    time: TimeOfDay,
) -> &'static str {
    if is_held_out(kind, background, time) {
        HELD_OUT_GROUP
    } else {
        SEEN_GROUP
    }
}

/// Where in the picture an object stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Left third.
    Left,
    /// Middle.
    Centre,
    /// Right third.
    Right,
}

impl Position {
    /// Every position.
    pub const ALL: [Position; 3] = [Self::Left, Self::Centre, Self::Right];

    /// The phrase used in captions ("on the left").
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Left => "on the left",
            Self::Centre => "in the centre",
            Self::Right => "on the right",
        }
    }

    fn synonyms(self) -> &'static [&'static str] {
        match self {
            Self::Left => &["on the left", "on the left", "on the left side"],
            Self::Centre => &["in the centre", "in the centre", "in the middle"],
            Self::Right => &["on the right", "on the right", "on the right side"],
        }
    }

    /// The position of a horizontal centre at `x` (fraction of the picture's width), or
    /// `None` near the borders between thirds, where a caption could say either.
    pub fn of_fraction(x: f32) -> Option<Self> {
        if x < 0.3 {
            Some(Self::Left)
        } else if (0.38..=0.62).contains(&x) {
            Some(Self::Centre)
        } else if x > 0.7 {
            Some(Self::Right)
        } else {
            None
        }
    }

    /// Horizontal centre as a fraction of the image width. The positions stay inside the
    /// centre square of a 4:3 frame, which is what a square CLIP crop keeps.
    pub fn x_fraction(self) -> f32 {
        match self {
            Self::Left => 0.29,
            Self::Centre => 0.5,
            Self::Right => 0.71,
        }
    }
}

/// An object at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlacedObject {
    /// What it is.
    pub kind: ObjectKind,
    /// Where it stands.
    pub position: Position,
}

/// A whole scene: what the camera sees at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SceneSpec {
    /// The camera's background.
    pub background: Background,
    /// Lighting.
    pub time: TimeOfDay,
    /// Objects in view, drawn in order (at most one per position).
    pub objects: Vec<PlacedObject>,
}

impl SceneSpec {
    /// The canonical, complete caption ("a white van on the left of a parking lot at
    /// night"); every scene has exactly one.
    pub fn caption(&self) -> String {
        let mut objects: Vec<&PlacedObject> = self.objects.iter().collect();
        objects.sort_by_key(|o| o.position as u8);
        let night = if self.time == TimeOfDay::Night {
            " at night"
        } else {
            ""
        };
        if objects.is_empty() {
            return format!("an empty {}{night}", self.background.noun());
        }
        let parts: Vec<String> = objects
            .iter()
            .map(|o| format!("{} {}", o.kind.phrase(), o.position.phrase()))
            .collect();
        format!(
            "{} of {}{night}",
            parts.join(" and "),
            self.background.phrase()
        )
    }

    /// A random caption of this scene in one of several phrasings: complete, without the
    /// positions, without the place, or only the objects. Used for training.
    pub fn random_caption(&self, rng: &mut WorldRng) -> String {
        let night = match self.time {
            TimeOfDay::Night => *rng.pick(&[" at night", " at night", " by night"]),
            TimeOfDay::Day => *rng.pick(&["", "", "", " by day", " during the day"]),
        };
        let place = self.background.phrase();
        if self.objects.is_empty() {
            let noun = self.background.noun();
            return match rng.below(4) {
                0 => format!("an empty {noun}{night}"),
                1 => format!("{place} with nobody in it{night}"),
                2 => format!("an empty {noun}, nothing there{night}"),
                _ => format!("nothing in {place}{night}"),
            };
        }
        let mut objects: Vec<&PlacedObject> = self.objects.iter().collect();
        if rng.chance(0.5) {
            objects.sort_by_key(|o| o.position as u8);
        } else {
            objects.reverse();
        }
        let with_pos: Vec<String> = objects
            .iter()
            .map(|o| {
                format!(
                    "{} {}",
                    rng.pick(o.kind.synonyms()),
                    rng.pick(o.position.synonyms())
                )
            })
            .collect();
        let bare: Vec<String> = objects
            .iter()
            .map(|o| rng.pick(o.kind.synonyms()).to_string())
            .collect();
        let preposition = match self.background {
            Background::Street => *rng.pick(&["of", "on", "in"]),
            _ => *rng.pick(&["of", "in"]),
        };
        match rng.below(10) {
            0..=4 => format!("{} {preposition} {place}{night}", with_pos.join(" and ")),
            5 => format!("{} {preposition} {place}{night}", bare.join(" and ")),
            6 => format!("{place}{night} with {}", with_pos.join(" and ")),
            7 => format!("{}{night}", with_pos.join(" and ")),
            8 => format!("{} in {place}", bare.join(" and ")),
            _ => bare.join(" and "),
        }
    }

    /// Whether the scene shows one of [`HELD_OUT_COMPOSITIONS`].
    pub fn shows_held_out(&self) -> bool {
        self.objects
            .iter()
            .any(|o| is_held_out(o.kind, self.background, self.time))
    }

    /// Held-out phrasings of a one-object scene, in word orders and with joining words that
    /// [`SceneSpec::random_caption`] never produces ("on the right of a street at night,
    /// a red car"; "in a corridor, there is a dog on the left"). Used only by the
    /// evaluation; empty for other scenes.
    pub fn paraphrases(&self) -> Vec<String> {
        let [o] = self.objects.as_slice() else {
            return Vec::new();
        };
        let night = if self.time == TimeOfDay::Night {
            " at night"
        } else {
            ""
        };
        let (object, position, place) = (
            o.kind.phrase(),
            o.position.phrase(),
            self.background.phrase(),
        );
        vec![
            format!("{position} of {place}{night}, {object}"),
            format!("in {place}{night}, there is {object} {position}"),
        ]
    }

    /// A random scene for training: any background and lighting, zero to two objects of
    /// different kinds at different positions.
    pub fn random(rng: &mut WorldRng) -> Self {
        let background = *rng.pick(&Background::ALL);
        let time = if rng.chance(0.5) {
            TimeOfDay::Day
        } else {
            TimeOfDay::Night
        };
        let u = rng.unit();
        let count = if u < 0.14 {
            0
        } else if u < 0.72 {
            1
        } else {
            2
        };
        let mut objects: Vec<PlacedObject> = Vec::new();
        while objects.len() < count {
            let kind = *rng.pick(&ObjectKind::ALL);
            let position = *rng.pick(&Position::ALL);
            if objects
                .iter()
                .all(|o| o.kind != kind && o.position != position)
            {
                objects.push(PlacedObject { kind, position });
            }
        }
        Self {
            background,
            time,
            objects,
        }
    }
}

/// Random variation of one rendering: lighting, colours, object placement and sensor noise.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderJitter {
    /// Global brightness factor.
    pub brightness: f32,
    /// Per-channel tint factors.
    pub tint: [f32; 3],
    /// Horizontal shift of the background structure, fraction of the width.
    pub background_shift: f32,
    /// Per-object horizontal offsets, fraction of the width (indexed like the objects).
    pub object_shift: Vec<f32>,
    /// Per-object size factors.
    pub object_scale: Vec<f32>,
    /// Per-object colour factors.
    pub object_colour: Vec<[f32; 3]>,
    /// Amplitude of uniform per-pixel noise, in 0..255 units.
    pub noise: f32,
    /// Seed of the per-pixel noise.
    pub noise_seed: u64,
}

impl RenderJitter {
    /// No variation at all.
    pub fn none(objects: usize) -> Self {
        Self {
            brightness: 1.0,
            tint: [1.0; 3],
            background_shift: 0.0,
            object_shift: vec![0.0; objects],
            object_scale: vec![1.0; objects],
            object_colour: vec![[1.0; 3]; objects],
            noise: 0.0,
            noise_seed: 0,
        }
    }

    /// Random variation for `objects` objects.
    pub fn random(rng: &mut WorldRng, objects: usize) -> Self {
        let mut colour = || {
            let base = rng.range(0.85, 1.12);
            [
                base * rng.range(0.94, 1.06),
                base * rng.range(0.94, 1.06),
                base * rng.range(0.94, 1.06),
            ]
        };
        let object_colour = (0..objects).map(|_| colour()).collect();
        Self {
            brightness: rng.range(0.8, 1.15),
            tint: [
                rng.range(0.93, 1.07),
                rng.range(0.93, 1.07),
                rng.range(0.93, 1.07),
            ],
            background_shift: rng.range(-0.04, 0.04),
            object_shift: (0..objects).map(|_| rng.range(-0.05, 0.05)).collect(),
            object_scale: (0..objects).map(|_| rng.range(0.85, 1.15)).collect(),
            object_colour,
            noise: rng.range(0.0, 10.0),
            noise_seed: rng.next_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_describe_the_scene() {
        let scene = SceneSpec {
            background: Background::ParkingLot,
            time: TimeOfDay::Night,
            objects: vec![PlacedObject {
                kind: ObjectKind::WhiteVan,
                position: Position::Left,
            }],
        };
        assert_eq!(
            scene.caption(),
            "a white van on the left of a parking lot at night"
        );
        let two = SceneSpec {
            background: Background::Street,
            time: TimeOfDay::Day,
            objects: vec![
                PlacedObject {
                    kind: ObjectKind::Dog,
                    position: Position::Right,
                },
                PlacedObject {
                    kind: ObjectKind::RedCar,
                    position: Position::Left,
                },
            ],
        };
        assert_eq!(
            two.caption(),
            "a red car on the left and a dog on the right of a street"
        );
        let empty = SceneSpec {
            background: Background::Corridor,
            time: TimeOfDay::Day,
            objects: vec![],
        };
        assert_eq!(empty.caption(), "an empty corridor");
    }
}
