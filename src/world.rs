//! A small synthetic world of fixed security cameras, defined once for training, footage and
//! tests: scene descriptions, a renderer that draws them as RGB images with simple shapes,
//! captions generated from a scene, a training-set writer, and footage with ground truth.
//!
//! Backgrounds (street, parking lot, corridor) are seen by day or at night; objects (a red
//! car, a white van, a blue truck, a person in green, a dog) stand on the left, in the
//! centre or on the right. Everything random comes from a seeded [`WorldRng`], so the same
//! seed renders the same pixels.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// A small deterministic random generator (SplitMix64): the same seed gives the same world
/// on every machine.
#[derive(Debug, Clone)]
pub struct WorldRng(u64);

impl WorldRng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_5EED)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform index below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }
}

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

/// An RGB24 image being drawn, with colours kept as floats until the end.
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<[f32; 3]>,
}

type Rgb = [f32; 3];

impl Canvas {
    fn new(width: usize, height: usize, colour: Rgb) -> Self {
        Self {
            width,
            height,
            pixels: vec![colour; width * height],
        }
    }

    fn rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, colour: Rgb) {
        let xa = x0.max(0.0).round() as usize;
        let xb = (x1.min(self.width as f32).round() as usize).min(self.width);
        let ya = y0.max(0.0).round() as usize;
        let yb = (y1.min(self.height as f32).round() as usize).min(self.height);
        for y in ya..yb {
            for x in xa..xb {
                self.pixels[y * self.width + x] = colour;
            }
        }
    }

    fn circle(&mut self, cx: f32, cy: f32, r: f32, colour: Rgb) {
        let ya = (cy - r).max(0.0) as usize;
        let yb = ((cy + r).ceil().max(0.0) as usize).min(self.height);
        let xa = (cx - r).max(0.0) as usize;
        let xb = ((cx + r).ceil().max(0.0) as usize).min(self.width);
        for y in ya..yb {
            for x in xa..xb {
                let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                if dx * dx + dy * dy <= r * r {
                    self.pixels[y * self.width + x] = colour;
                }
            }
        }
    }

    /// Fills rows `y0..y1` between two straight edges: left edge from `l0` (top) to `l1`
    /// (bottom), right edge from `r0` to `r1`.
    fn trapezoid(&mut self, y0: f32, y1: f32, (l0, l1): (f32, f32), (r0, r1): (f32, f32), c: Rgb) {
        let ya = y0.max(0.0) as usize;
        let yb = (y1.max(0.0) as usize).min(self.height);
        for y in ya..yb {
            let t = (y as f32 - y0) / (y1 - y0).max(1.0);
            let l = l0 + (l1 - l0) * t;
            let r = r0 + (r1 - r0) * t;
            self.rect(l, y as f32, r, y as f32 + 1.0, c);
        }
    }

    /// Multiplies every pixel by `factor` and adds `offset`.
    fn grade(&mut self, factor: Rgb, offset: Rgb) {
        for p in &mut self.pixels {
            for c in 0..3 {
                p[c] = p[c] * factor[c] + offset[c];
            }
        }
    }

    /// Brightens a soft disc (a lamp's glow).
    fn glow(&mut self, cx: f32, cy: f32, r: f32, strength: f32) {
        for y in 0..self.height {
            for x in 0..self.width {
                let (dx, dy) = (x as f32 - cx, y as f32 - cy);
                let d = (dx * dx + dy * dy).sqrt() / r;
                if d < 1.0 {
                    let k = strength * (1.0 - d) * (1.0 - d);
                    let p = &mut self.pixels[y * self.width + x];
                    p[0] += k * 255.0;
                    p[1] += k * 220.0;
                    p[2] += k * 150.0;
                }
            }
        }
    }

    fn into_rgb24(self, noise: f32, noise_seed: u64) -> Vec<u8> {
        let mut rng = WorldRng::new(noise_seed);
        let mut out = Vec::with_capacity(self.pixels.len() * 3);
        for p in self.pixels {
            for c in p {
                let n = if noise > 0.0 {
                    rng.range(-noise, noise)
                } else {
                    0.0
                };
                out.push((c + n).round().clamp(0.0, 255.0) as u8);
            }
        }
        out
    }
}

fn scale(c: Rgb, k: [f32; 3]) -> Rgb {
    [c[0] * k[0], c[1] * k[1], c[2] * k[2]]
}

fn draw_background(cv: &mut Canvas, bg: Background, shift: f32) {
    let (w, h) = (cv.width as f32, cv.height as f32);
    let sx = shift * w;
    match bg {
        Background::Street => {
            cv.rect(0.0, 0.0, w, 0.2 * h, [150.0, 185.0, 215.0]);
            let buildings: [(f32, f32, f32, Rgb); 5] = [
                (-0.1, 0.18, 0.08, [170.0, 150.0, 130.0]),
                (0.16, 0.4, 0.02, [190.0, 180.0, 165.0]),
                (0.38, 0.6, 0.12, [150.0, 140.0, 140.0]),
                (0.58, 0.82, 0.05, [185.0, 160.0, 125.0]),
                (0.8, 1.1, 0.1, [160.0, 165.0, 170.0]),
            ];
            for (x0, x1, top, colour) in buildings {
                cv.rect(x0 * w + sx, top * h, x1 * w + sx, 0.46 * h, colour);
                let mut wy = top * h + 0.04 * h;
                while wy < 0.4 * h {
                    let mut wx = x0 * w + sx + 0.025 * w;
                    while wx < x1 * w + sx - 0.04 * w {
                        cv.rect(wx, wy, wx + 0.03 * w, wy + 0.04 * h, [90.0, 105.0, 125.0]);
                        wx += 0.06 * w;
                    }
                    wy += 0.08 * h;
                }
            }
            cv.rect(0.0, 0.46 * h, w, 0.56 * h, [185.0, 185.0, 180.0]);
            cv.rect(0.0, 0.56 * h, w, 0.575 * h, [120.0, 120.0, 115.0]);
            cv.rect(0.0, 0.575 * h, w, h, [78.0, 78.0, 82.0]);
            let mut x = -0.1 * w + sx;
            while x < w {
                cv.rect(x, 0.74 * h, x + 0.1 * w, 0.76 * h, [235.0, 235.0, 225.0]);
                x += 0.18 * w;
            }
        }
        Background::ParkingLot => {
            cv.rect(0.0, 0.0, w, 0.3 * h, [140.0, 175.0, 205.0]);
            cv.rect(0.0, 0.18 * h, w, 0.34 * h, [60.0, 110.0, 60.0]);
            let mut x = -0.05 * w + sx;
            while x < w {
                cv.circle(x, 0.2 * h, 0.07 * h, [45.0, 95.0, 50.0]);
                x += 0.14 * w;
            }
            cv.rect(0.0, 0.34 * h, w, 0.37 * h, [210.0, 180.0, 40.0]);
            cv.rect(0.0, 0.37 * h, w, h, [105.0, 105.0, 110.0]);
            let mut x = -0.1 * w + sx;
            while x < 1.1 * w {
                cv.trapezoid(
                    0.42 * h,
                    0.62 * h,
                    (x, x - 0.02 * w),
                    (x + 0.012 * w, x - 0.005 * w),
                    [230.0, 230.0, 230.0],
                );
                x += 0.15 * w;
            }
            cv.rect(0.0, 0.62 * h, w, 0.635 * h, [230.0, 230.0, 230.0]);
        }
        Background::Corridor => {
            cv.rect(0.0, 0.0, w, h, [205.0, 195.0, 165.0]);
            cv.rect(0.0, 0.0, w, 0.12 * h, [225.0, 225.0, 215.0]);
            cv.rect(
                0.4 * w + sx,
                0.04 * h,
                0.6 * w + sx,
                0.08 * h,
                [255.0, 255.0, 235.0],
            );
            cv.rect(
                0.3 * w + sx,
                0.15 * h,
                0.7 * w + sx,
                0.55 * h,
                [180.0, 170.0, 145.0],
            );
            cv.rect(
                0.44 * w + sx,
                0.25 * h,
                0.56 * w + sx,
                0.55 * h,
                [120.0, 80.0, 50.0],
            );
            cv.trapezoid(
                0.55 * h,
                h,
                (0.3 * w + sx, -0.1 * w),
                (0.7 * w + sx, 1.1 * w),
                [150.0, 135.0, 120.0],
            );
            for y in [0.65, 0.78, 0.92] {
                cv.rect(0.0, y * h, w, y * h + 1.5, [120.0, 108.0, 95.0]);
            }
            cv.rect(
                0.08 * w + sx,
                0.2 * h,
                0.18 * w + sx,
                0.62 * h,
                [120.0, 80.0, 50.0],
            );
            cv.rect(
                0.82 * w + sx,
                0.2 * h,
                0.92 * w + sx,
                0.62 * h,
                [120.0, 80.0, 50.0],
            );
        }
    }
}

/// The y of the ground line where objects stand, per background, as a fraction of height.
fn ground_y(bg: Background) -> f32 {
    match bg {
        Background::Street => 0.86,
        Background::ParkingLot => 0.84,
        Background::Corridor => 0.9,
    }
}

fn draw_object(cv: &mut Canvas, kind: ObjectKind, cx: f32, gy: f32, u: f32, colour: [f32; 3]) {
    let c = |rgb: Rgb| scale(rgb, colour);
    let wheel = [25.0, 25.0, 28.0];
    match kind {
        ObjectKind::RedCar => {
            let half = 0.19 * u;
            cv.rect(
                cx - half,
                gy - 0.13 * u,
                cx + half,
                gy - 0.035 * u,
                c([205.0, 30.0, 30.0]),
            );
            cv.rect(
                cx - 0.11 * u,
                gy - 0.2 * u,
                cx + 0.1 * u,
                gy - 0.13 * u,
                c([185.0, 25.0, 25.0]),
            );
            cv.rect(
                cx - 0.09 * u,
                gy - 0.185 * u,
                cx + 0.08 * u,
                gy - 0.135 * u,
                c([160.0, 200.0, 230.0]),
            );
            cv.circle(cx - 0.12 * u, gy - 0.035 * u, 0.04 * u, wheel);
            cv.circle(cx + 0.12 * u, gy - 0.035 * u, 0.04 * u, wheel);
        }
        ObjectKind::WhiteVan => {
            let half = 0.2 * u;
            cv.rect(
                cx - half,
                gy - 0.36 * u,
                cx + half,
                gy - 0.04 * u,
                c([238.0, 238.0, 235.0]),
            );
            cv.rect(
                cx + half - 0.09 * u,
                gy - 0.32 * u,
                cx + half - 0.015 * u,
                gy - 0.22 * u,
                c([60.0, 80.0, 100.0]),
            );
            cv.rect(
                cx - half,
                gy - 0.1 * u,
                cx + half,
                gy - 0.085 * u,
                c([170.0, 170.0, 170.0]),
            );
            cv.circle(cx - 0.13 * u, gy - 0.04 * u, 0.045 * u, wheel);
            cv.circle(cx + 0.13 * u, gy - 0.04 * u, 0.045 * u, wheel);
        }
        ObjectKind::BlueTruck => {
            cv.rect(
                cx - 0.24 * u,
                gy - 0.34 * u,
                cx + 0.08 * u,
                gy - 0.06 * u,
                c([45.0, 85.0, 200.0]),
            );
            cv.rect(
                cx + 0.09 * u,
                gy - 0.24 * u,
                cx + 0.22 * u,
                gy - 0.06 * u,
                c([20.0, 45.0, 160.0]),
            );
            cv.rect(
                cx + 0.13 * u,
                gy - 0.21 * u,
                cx + 0.2 * u,
                gy - 0.15 * u,
                c([170.0, 210.0, 235.0]),
            );
            for dx in [-0.17, -0.04, 0.15] {
                cv.circle(cx + dx * u, gy - 0.045 * u, 0.045 * u, wheel);
            }
        }
        ObjectKind::PersonInGreen => {
            let legs = c([45.0, 45.0, 60.0]);
            cv.rect(cx - 0.045 * u, gy - 0.16 * u, cx - 0.008 * u, gy, legs);
            cv.rect(cx + 0.008 * u, gy - 0.16 * u, cx + 0.045 * u, gy, legs);
            cv.rect(
                cx - 0.06 * u,
                gy - 0.36 * u,
                cx + 0.06 * u,
                gy - 0.15 * u,
                c([40.0, 175.0, 60.0]),
            );
            cv.rect(
                cx - 0.085 * u,
                gy - 0.34 * u,
                cx - 0.06 * u,
                gy - 0.2 * u,
                c([35.0, 160.0, 55.0]),
            );
            cv.rect(
                cx + 0.06 * u,
                gy - 0.34 * u,
                cx + 0.085 * u,
                gy - 0.2 * u,
                c([35.0, 160.0, 55.0]),
            );
            cv.circle(cx, gy - 0.41 * u, 0.05 * u, c([230.0, 190.0, 150.0]));
        }
        ObjectKind::Dog => {
            let brown = c([135.0, 85.0, 40.0]);
            cv.rect(
                cx - 0.1 * u,
                gy - 0.13 * u,
                cx + 0.07 * u,
                gy - 0.06 * u,
                brown,
            );
            for dx in [-0.09, -0.06, 0.035, 0.06] {
                cv.rect(cx + dx * u, gy - 0.07 * u, cx + (dx + 0.022) * u, gy, brown);
            }
            cv.rect(
                cx + 0.05 * u,
                gy - 0.19 * u,
                cx + 0.12 * u,
                gy - 0.11 * u,
                c([120.0, 72.0, 35.0]),
            );
            cv.rect(
                cx + 0.1 * u,
                gy - 0.16 * u,
                cx + 0.14 * u,
                gy - 0.13 * u,
                c([60.0, 35.0, 20.0]),
            );
            cv.rect(
                cx - 0.14 * u,
                gy - 0.15 * u,
                cx - 0.1 * u,
                gy - 0.12 * u,
                brown,
            );
        }
    }
}

/// Renders a scene as RGB24 pixels (`width * height * 3` bytes, rows top to bottom).
pub fn render_scene(
    scene: &SceneSpec,
    jitter: &RenderJitter,
    width: usize,
    height: usize,
) -> Vec<u8> {
    let mut cv = Canvas::new(width, height, [0.0; 3]);
    draw_background(&mut cv, scene.background, jitter.background_shift);
    let night = scene.time == TimeOfDay::Night;
    if night {
        cv.grade([0.28, 0.3, 0.42], [4.0, 6.0, 22.0]);
        let (w, h) = (width as f32, height as f32);
        let lamp_x = (0.5 + jitter.background_shift * 4.0) * w;
        cv.glow(lamp_x, 0.1 * h, 0.45 * h, 0.35);
        cv.circle(lamp_x, 0.1 * h, 0.025 * h, [255.0, 240.0, 190.0]);
    }
    let mut order: Vec<usize> = (0..scene.objects.len()).collect();
    // Vehicles first, people and dogs in front of them.
    order.sort_by_key(|&i| {
        matches!(
            scene.objects[i].kind,
            ObjectKind::PersonInGreen | ObjectKind::Dog
        )
    });
    let u = height as f32;
    let gy = ground_y(scene.background) * height as f32;
    for i in order {
        let o = scene.objects[i];
        let shift = jitter.object_shift.get(i).copied().unwrap_or(0.0);
        let size = jitter.object_scale.get(i).copied().unwrap_or(1.0);
        let mut colour = jitter.object_colour.get(i).copied().unwrap_or([1.0; 3]);
        if night {
            colour = scale(colour, [0.72, 0.72, 0.8]);
        }
        let cx = (o.position.x_fraction() + shift) * width as f32;
        draw_object(&mut cv, o.kind, cx, gy, u * size, colour);
    }
    let b = jitter.brightness;
    cv.grade(
        [b * jitter.tint[0], b * jitter.tint[1], b * jitter.tint[2]],
        [0.0; 3],
    );
    cv.into_rgb24(jitter.noise, jitter.noise_seed)
}

/// Default rendering size of a camera frame (4:3, so a square centre crop keeps the left
/// and right positions).
pub const FRAME_WIDTH: usize = 256;
/// See [`FRAME_WIDTH`].
pub const FRAME_HEIGHT: usize = 192;

/// Shrinks a rendered frame the way frameseek preprocesses still images (shortest side to
/// `size` with Catmull-Rom, then a centre crop), returning `size * size * 3` bytes. Before
/// shrinking, a random share of images is JPEG-compressed or blurred so the model learns to
/// ignore codec artefacts.
pub fn training_crop(
    rgb: &[u8],
    width: usize,
    height: usize,
    size: usize,
    rng: &mut WorldRng,
) -> anyhow::Result<Vec<u8>> {
    let mut img = image::RgbImage::from_raw(width as u32, height as u32, rgb.to_vec())
        .context("rendered frame has the wrong length")?;
    if rng.chance(0.7) {
        let quality = 20 + rng.below(70) as u8;
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality)
            .encode_image(&img)
            .context("JPEG-encoding a training frame")?;
        img = image::load_from_memory(&bytes)
            .context("decoding a JPEG training frame")?
            .to_rgb8();
    }
    if rng.chance(0.25) {
        img = image::imageops::blur(&img, rng.range(0.3, 1.2));
    }
    let geometry = crate::embed::PixelGeometry::clip_default(size);
    let (rw, rh) = geometry.resized_dims(width, height);
    let filter = if rng.chance(0.5) {
        image::imageops::FilterType::CatmullRom
    } else {
        image::imageops::FilterType::Triangle
    };
    let resized = image::imageops::resize(&img, rw as u32, rh as u32, filter);
    let (top, left) = ((rh - size) / 2, (rw - size) / 2);
    let mut out = Vec::with_capacity(size * size * 3);
    for y in 0..size {
        let start = ((top + y) * rw + left) * 3;
        out.extend_from_slice(&resized.as_raw()[start..start + size * 3]);
    }
    Ok(out)
}

/// One line of a training set's `captions.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// Index of the image in `images.u8`.
    pub index: usize,
    /// The canonical caption (identical for identical scenes).
    pub caption: String,
    /// Several random phrasings of the same scene.
    pub captions: Vec<String>,
    /// The scene itself.
    pub scene: SceneSpec,
}

/// Writes a training set to `out`: `images.u8` (`count` RGB images of `size * size` pixels,
/// back to back, already shrunk and cropped as frameseek does), `captions.jsonl` (one
/// [`DatasetRecord`] per image) and `meta.json`.
pub fn write_dataset(out: &Path, count: usize, seed: u64, size: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let create = |name: &str| {
        std::fs::File::create(out.join(name))
            .map(BufWriter::new)
            .with_context(|| format!("cannot create {}", out.join(name).display()))
    };
    let mut images = create("images.u8")?;
    let mut captions = create("captions.jsonl")?;
    let mut rng = WorldRng::new(seed);
    for index in 0..count {
        let scene = SceneSpec::random(&mut rng);
        let jitter = RenderJitter::random(&mut rng, scene.objects.len());
        let rgb = render_scene(&scene, &jitter, FRAME_WIDTH, FRAME_HEIGHT);
        let crop = training_crop(&rgb, FRAME_WIDTH, FRAME_HEIGHT, size, &mut rng)?;
        images.write_all(&crop)?;
        let record = DatasetRecord {
            index,
            caption: scene.caption(),
            captions: (0..6).map(|_| scene.random_caption(&mut rng)).collect(),
            scene,
        };
        serde_json::to_writer(&mut captions, &record)?;
        captions.write_all(b"\n")?;
    }
    images.flush()?;
    captions.flush()?;
    std::fs::write(
        out.join("meta.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "count": count, "seed": seed, "size": size,
            "frame_width": FRAME_WIDTH, "frame_height": FRAME_HEIGHT,
            "images": "images.u8", "layout": "count x size x size x 3, uint8 RGB",
        }))?,
    )?;
    Ok(())
}

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

/// One labelled query, as `frameseek eval` reads it (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LabelledQuery {
    /// Query text (absent for an image query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Query image path, relative to the query file's folder or absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The expected source: an absolute source id, or a path suffix such as
    /// `cam1/footage.mp4`.
    pub source: String,
    /// Expected time range start, seconds.
    pub start_s: f64,
    /// Expected time range end, seconds.
    pub end_s: f64,
    /// Only search this source (exact, or a prefix ending in `*`; relative paths are taken
    /// from the query file's folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_source: Option<String>,
    /// Only frames at or after this offset, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_s: Option<f64>,
    /// Only frames at or before this offset, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_s: Option<f64>,
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

/// Renders one camera's video to `path` through the `ffmpeg` command (H.264, yuv420p).
pub fn render_camera_video(camera: &CameraScript, path: &Path, seed: u64) -> anyhow::Result<()> {
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo"])
        .args(["-pix_fmt", "rgb24", "-s"])
        .arg(format!("{FRAME_WIDTH}x{FRAME_HEIGHT}"))
        .args(["-r", &FOOTAGE_FPS.to_string(), "-i", "-"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "26"])
        .args(["-pix_fmt", "yuv420p", "-g", "48"])
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run ffmpeg (install it: apt-get install ffmpeg)")?;
    let mut rng = WorldRng::new(seed);
    // The camera's own look is fixed; objects get a fixed placement per appearance.
    let base = RenderJitter::random(&mut rng, 0);
    let per_appearance: Vec<RenderJitter> = camera
        .appearances
        .iter()
        .map(|_| RenderJitter::random(&mut rng, 1))
        .collect();
    let frames = (camera.duration_s * FOOTAGE_FPS as f64).round() as usize;
    let write_result = (|| -> anyhow::Result<()> {
        let mut stdin = child.stdin.take().context("ffmpeg stdin")?;
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
    })();
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

/// Renders the sample footage into `dir`: one `NAME/footage.mp4` per camera of
/// [`sample_cameras`], `ground_truth.jsonl`, `queries.jsonl` (for `frameseek eval`) and the
/// image query's `probe.png`.
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
    let (probe_cam, probe_t) = probe_frame_time(&cameras);
    crate::samples::extract_frame(
        &dir.join(probe_cam).join("footage.mp4"),
        probe_t,
        &dir.join("probe.png"),
    )
    .context("extracting the probe frame")?;
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

fn write_jsonl<T: Serialize>(path: &Path, items: &[T]) -> anyhow::Result<()> {
    let mut text = String::new();
    for item in items {
        text.push_str(&serde_json::to_string(item)?);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes a rendered RGB24 frame as a PNG (for looking at the world).
pub fn save_png(path: &Path, rgb: &[u8], width: usize, height: usize) -> anyhow::Result<()> {
    let img = image::RgbImage::from_raw(width as u32, height as u32, rgb.to_vec())
        .context("frame has the wrong length")?;
    img.save(path)
        .with_context(|| format!("cannot write {}", path.display()))
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

    #[test]
    fn the_same_seed_renders_the_same_pixels() {
        let mut a = WorldRng::new(7);
        let mut b = WorldRng::new(7);
        let (sa, sb) = (SceneSpec::random(&mut a), SceneSpec::random(&mut b));
        assert_eq!(sa, sb);
        let (ja, jb) = (
            RenderJitter::random(&mut a, sa.objects.len()),
            RenderJitter::random(&mut b, sb.objects.len()),
        );
        assert_eq!(
            render_scene(&sa, &ja, 64, 48),
            render_scene(&sb, &jb, 64, 48)
        );
    }

    #[test]
    fn objects_change_the_pixels_where_they_stand() {
        let empty = SceneSpec {
            background: Background::Street,
            time: TimeOfDay::Day,
            objects: vec![],
        };
        let mut car = empty.clone();
        car.objects.push(PlacedObject {
            kind: ObjectKind::RedCar,
            position: Position::Left,
        });
        let j0 = RenderJitter::none(0);
        let j1 = RenderJitter::none(1);
        let (w, h) = (FRAME_WIDTH, FRAME_HEIGHT);
        let a = render_scene(&empty, &j0, w, h);
        let b = render_scene(&car, &j1, w, h);
        let changed_columns: Vec<usize> = (0..w)
            .filter(|&x| (0..h).any(|y| a[(y * w + x) * 3] != b[(y * w + x) * 3]))
            .collect();
        assert!(!changed_columns.is_empty());
        assert!(
            *changed_columns.last().unwrap() < w / 2,
            "a car on the left stays in the left half"
        );
        // The car body is red.
        let (x, y) = (
            (Position::Left.x_fraction() * w as f32) as usize,
            (0.8 * h as f32) as usize,
        );
        let p = &b[(y * w + x) * 3..(y * w + x) * 3 + 3];
        assert!(p[0] > 150 && p[1] < 80 && p[2] < 80, "{p:?}");
    }

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

    #[test]
    fn training_crops_have_the_model_size() {
        let mut rng = WorldRng::new(1);
        let scene = SceneSpec::random(&mut rng);
        let jitter = RenderJitter::random(&mut rng, scene.objects.len());
        let rgb = render_scene(&scene, &jitter, FRAME_WIDTH, FRAME_HEIGHT);
        let crop = training_crop(&rgb, FRAME_WIDTH, FRAME_HEIGHT, 64, &mut rng).unwrap();
        assert_eq!(crop.len(), 64 * 64 * 3);
    }
}
