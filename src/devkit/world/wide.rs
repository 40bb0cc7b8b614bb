//! The wide world: 16:9 camera frames as real cameras see them. Objects stand anywhere
//! across the width (at the edges too, or cut by the frame's edge), large or small (small
//! ones further back), several at once; distractors that no query names (a traffic cone,
//! a rubbish bin, a person in red) and occluders in front (a pillar, a low wall) that hide
//! part of what stands behind them. [`WideScene::view_caption`] says what a square view of
//! such a frame shows, which is what the model is trained on.

use serde::{Deserialize, Serialize};

use super::canvas::{scale, Canvas};
use super::render::{draw_background, draw_object, draw_person, ground_y, object_extent};
use super::rng::WorldRng;
use super::scene::{
    is_held_out, Background, ObjectKind, PlacedObject, Position, RenderJitter, SceneSpec, TimeOfDay,
};

/// An object of the wide world: what, where and how large.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WideObject {
    /// What it is.
    pub kind: ObjectKind,
    /// Horizontal centre, fraction of the frame's width (may lie outside 0..1: cut by the
    /// frame's edge).
    pub x: f32,
    /// Size, in frame heights (1.0: the size of the 4:3 world's objects). Smaller objects
    /// stand further back.
    pub size: f32,
    /// Colour factors of this appearance.
    pub colour: [f32; 3],
}

/// Things in the wide world that no query names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropKind {
    /// An orange traffic cone (a distractor).
    Cone,
    /// A grey rubbish bin (a distractor).
    Bin,
    /// A person in red (a distractor: not the person in green).
    PersonInRed,
    /// A grey pillar from top to bottom, in front of everything (an occluder).
    Pillar,
    /// A low brick wall in the foreground (an occluder).
    LowWall,
}

impl PropKind {
    /// Whether it is drawn in front of the objects.
    pub fn occludes(self) -> bool {
        matches!(self, Self::Pillar | Self::LowWall)
    }
}

/// A prop at a place.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WideProp {
    /// What it is.
    pub kind: PropKind,
    /// Horizontal centre, fraction of the frame's width.
    pub x: f32,
    /// Size, in frame heights.
    pub size: f32,
}

/// A wide frame's content: background, lighting, objects and props.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WideScene {
    /// What the camera looks at.
    pub background: Background,
    /// Lighting.
    pub time: TimeOfDay,
    /// Objects that queries name.
    pub objects: Vec<WideObject>,
    /// Distractors and occluders.
    pub props: Vec<WideProp>,
}

/// An axis-aligned box in pixels: (x0, y0, x1, y1).
pub type PixelBox = (f32, f32, f32, f32);

fn area(b: PixelBox) -> f32 {
    (b.2 - b.0).max(0.0) * (b.3 - b.1).max(0.0)
}

fn intersect(a: PixelBox, b: PixelBox) -> PixelBox {
    (a.0.max(b.0), a.1.max(b.1), a.2.min(b.2), a.3.min(b.3))
}

/// The ground line of an object of `size` in `background`, fraction of the height: smaller
/// objects stand further back.
fn ground_of(background: Background, size: f32) -> f32 {
    ground_y(background) - (1.0 - size).clamp(0.0, 0.6) * 0.22
}

/// The size at which `kind`'s box covers `share` of a `width` x `height` frame.
pub fn size_for_area(kind: ObjectKind, share: f32, width: usize, height: usize) -> f32 {
    let (l, r, top) = object_extent(kind);
    let box_per_size2 = (r - l) * top * (height * height) as f32;
    (share * (width * height) as f32 / box_per_size2).sqrt()
}

/// The size at which `kind`'s box is `share` of a `width` x `height` frame's width wide.
pub fn size_for_width(kind: ObjectKind, share: f32, width: usize, height: usize) -> f32 {
    let (l, r, _) = object_extent(kind);
    share * width as f32 / ((r - l) * height as f32)
}

impl WideObject {
    /// The object's box in a `width` x `height` frame, pixels (may reach outside it).
    pub fn pixel_box(&self, background: Background, width: usize, height: usize) -> PixelBox {
        let (l, r, top) = object_extent(self.kind);
        let u = self.size * height as f32;
        let cx = self.x * width as f32;
        let gy = ground_of(background, self.size) * height as f32;
        (cx + l * u, gy - top * u, cx + r * u, gy)
    }
}

impl WideProp {
    fn pixel_box(&self, background: Background, width: usize, height: usize) -> PixelBox {
        let (w, h) = (width as f32, height as f32);
        let cx = self.x * w;
        let u = self.size * h;
        match self.kind {
            PropKind::Pillar => (cx - 0.025 * u, 0.0, cx + 0.025 * u, h),
            PropKind::LowWall => (cx - 0.35 * u, h - 0.2 * u, cx + 0.35 * u, h),
            _ => {
                let gy = ground_of(background, self.size) * h;
                let (half, top) = match self.kind {
                    PropKind::Cone => (0.05, 0.14),
                    PropKind::Bin => (0.06, 0.18),
                    _ => (0.085, 0.46),
                };
                (cx - half * u, gy - top * u, cx + half * u, gy)
            }
        }
    }

    fn draw(&self, cv: &mut Canvas, background: Background, night: bool) {
        let dim = if night { [0.72, 0.72, 0.8] } else { [1.0; 3] };
        let b = self.pixel_box(background, cv.width, cv.height);
        let u = self.size * cv.height as f32;
        match self.kind {
            PropKind::Cone => {
                let orange = scale([235.0, 120.0, 20.0], dim);
                cv.trapezoid(
                    b.1,
                    b.3,
                    (b.0 + 0.035 * u, b.0),
                    (b.2 - 0.035 * u, b.2),
                    orange,
                );
                let band = b.1 + 0.06 * u;
                cv.rect(
                    b.0 + 0.02 * u,
                    band,
                    b.2 - 0.02 * u,
                    band + 0.02 * u,
                    scale([240.0; 3], dim),
                );
            }
            PropKind::Bin => {
                cv.rect(
                    b.0,
                    b.1 + 0.02 * u,
                    b.2,
                    b.3,
                    scale([110.0, 115.0, 112.0], dim),
                );
                cv.rect(
                    b.0 - 0.01 * u,
                    b.1,
                    b.2 + 0.01 * u,
                    b.1 + 0.025 * u,
                    scale([60.0; 3], dim),
                );
            }
            PropKind::PersonInRed => {
                let cx = (b.0 + b.2) / 2.0;
                draw_person(
                    cv,
                    cx,
                    b.3,
                    u,
                    [200.0, 35.0, 40.0],
                    [180.0, 30.0, 35.0],
                    dim,
                );
            }
            PropKind::Pillar => cv.rect(b.0, b.1, b.2, b.3, scale([128.0, 128.0, 132.0], dim)),
            PropKind::LowWall => {
                cv.rect(b.0, b.1, b.2, b.3, scale([150.0, 75.0, 55.0], dim));
                let mut y = b.1 + 0.05 * u;
                while y < b.3 {
                    cv.rect(
                        b.0,
                        y,
                        b.2,
                        y + 0.008 * u + 1.0,
                        scale([200.0, 190.0, 180.0], dim),
                    );
                    y += 0.05 * u;
                }
            }
        }
    }
}

/// What a square view shows of one object: how much of it, where and how large.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sighting {
    /// Share of its box inside the view and not behind an occluder.
    visible: f32,
    /// Its box's height, in view sides.
    height: f32,
    /// Centre of its visible part, fraction of the view's side.
    x: f32,
}

/// How a view's caption treats an object.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Naming {
    /// Clearly shown: named, at this position.
    Named(Position),
    /// Not there, or too little of it to see.
    Absent,
    /// Partly there or in between positions: a caption could go either way.
    Unclear,
}

impl WideScene {
    /// A random wide scene for training: any background and lighting, zero to three objects
    /// of different kinds anywhere across the width (some cut by the frame's edge), at
    /// random sizes, and zero to three props. Never one of the held-out compositions.
    pub fn random(rng: &mut WorldRng) -> Self {
        loop {
            let background = *rng.pick(&Background::ALL);
            let time = if rng.chance(0.5) {
                TimeOfDay::Day
            } else {
                TimeOfDay::Night
            };
            let count = match rng.unit() {
                u if u < 0.12 => 0,
                u if u < 0.55 => 1,
                u if u < 0.85 => 2,
                _ => 3,
            };
            let mut objects: Vec<WideObject> = Vec::new();
            let mut tries = 0;
            while objects.len() < count && tries < 50 {
                tries += 1;
                let kind = *rng.pick(&ObjectKind::ALL);
                if objects.iter().any(|o| o.kind == kind) {
                    continue;
                }
                let size = rng.range(0.4, 1.5);
                let x = rng.range(-0.06, 1.06);
                let base = rng.range(0.85, 1.12);
                let colour = [
                    base * rng.range(0.94, 1.06),
                    base * rng.range(0.94, 1.06),
                    base * rng.range(0.94, 1.06),
                ];
                let candidate = WideObject {
                    kind,
                    x,
                    size,
                    colour,
                };
                // Objects may touch but not stand in one another.
                let b = candidate.pixel_box(background, 16, 9);
                let crowded = objects.iter().any(|o| {
                    let ob = o.pixel_box(background, 16, 9);
                    area(intersect(b, ob)) > 0.25 * area(b).min(area(ob))
                });
                if !crowded {
                    objects.push(candidate);
                }
            }
            if objects
                .iter()
                .any(|o| is_held_out(o.kind, background, time))
            {
                continue;
            }
            let props = (0..rng.below(4))
                .map(|_| {
                    let kind = *rng.pick(&[
                        PropKind::Cone,
                        PropKind::Bin,
                        PropKind::PersonInRed,
                        PropKind::Pillar,
                        PropKind::LowWall,
                    ]);
                    WideProp {
                        kind,
                        x: rng.range(0.0, 1.0),
                        size: rng.range(0.5, 1.3),
                    }
                })
                .collect();
            return Self {
                background,
                time,
                objects,
                props,
            };
        }
    }

    /// Renders the scene as RGB24 pixels (`width * height * 3` bytes). `look` gives the
    /// lighting, tint, background shift and sensor noise (its per-object fields are unused:
    /// each [`WideObject`] carries its own colour).
    pub fn render(&self, look: &RenderJitter, width: usize, height: usize) -> Vec<u8> {
        let mut cv = self.render_background(look, width, height);
        self.draw_foreground(&mut cv);
        finish(cv, look)
    }

    /// The background with its lighting (no objects, no final grade, no noise): the part of
    /// a fixed camera's frame that does not change, so footage draws it once.
    pub(super) fn render_background(
        &self,
        look: &RenderJitter,
        width: usize,
        height: usize,
    ) -> Canvas {
        let mut cv = Canvas::new(width, height, [0.0; 3]);
        draw_background(&mut cv, self.background, look.background_shift);
        if self.time == TimeOfDay::Night {
            cv.grade([0.28, 0.3, 0.42], [4.0, 6.0, 22.0]);
            let (w, h) = (width as f32, height as f32);
            let lamps = (w / h / 1.4).round().max(1.0) as usize;
            for i in 0..lamps {
                let lamp_x = ((i as f32 + 0.5) / lamps as f32 + look.background_shift) * w;
                cv.glow(lamp_x, 0.1 * h, 0.45 * h, 0.35);
                cv.circle(lamp_x, 0.1 * h, 0.025 * h, [255.0, 240.0, 190.0]);
            }
        }
        cv
    }

    /// Draws the props behind, the objects (vehicles first) and the occluders in front.
    pub(super) fn draw_foreground(&self, cv: &mut Canvas) {
        let night = self.time == TimeOfDay::Night;
        for p in self.props.iter().filter(|p| !p.kind.occludes()) {
            p.draw(cv, self.background, night);
        }
        let mut order: Vec<&WideObject> = self.objects.iter().collect();
        order.sort_by(|a, b| {
            let person =
                |o: &WideObject| matches!(o.kind, ObjectKind::PersonInGreen | ObjectKind::Dog);
            person(a).cmp(&person(b)).then(a.size.total_cmp(&b.size))
        });
        for o in order {
            let mut colour = o.colour;
            if night {
                colour = scale(colour, [0.72, 0.72, 0.8]);
            }
            let u = o.size * cv.height as f32;
            let gy = ground_of(self.background, o.size) * cv.height as f32;
            draw_object(cv, o.kind, o.x * cv.width as f32, gy, u, colour);
        }
        for p in self.props.iter().filter(|p| p.kind.occludes()) {
            p.draw(cv, self.background, night);
        }
    }

    fn sighting(&self, o: &WideObject, view: PixelBox, width: usize, height: usize) -> Sighting {
        let b = o.pixel_box(self.background, width, height);
        let frame = (0.0, 0.0, width as f32, height as f32);
        let inside = intersect(intersect(b, view), frame);
        let hidden: f32 = self
            .props
            .iter()
            .filter(|p| p.kind.occludes())
            .map(|p| {
                area(intersect(
                    inside,
                    p.pixel_box(self.background, width, height),
                ))
            })
            .sum();
        let side = view.2 - view.0;
        Sighting {
            visible: ((area(inside) - hidden) / area(b).max(1e-6)).max(0.0),
            height: (b.3 - b.1) / side,
            x: ((inside.0 + inside.2) / 2.0 - view.0) / side,
        }
    }

    fn naming(&self, o: &WideObject, view: PixelBox, width: usize, height: usize) -> Naming {
        let s = self.sighting(o, view, width, height);
        if s.visible < 0.25 || s.height < 0.07 {
            return Naming::Absent;
        }
        if s.visible < 0.6 || s.height < 0.15 {
            return Naming::Unclear;
        }
        match Position::of_fraction(s.x) {
            Some(p) => Naming::Named(p),
            None => Naming::Unclear,
        }
    }

    /// What a square view of a `width` x `height` frame shows, as a one-position-per-object
    /// [`SceneSpec`] whose captions describe the view: every object clearly in it (at least
    /// 60 % of it visible and at least 15 % of the view's side tall), at its position in the
    /// view. `view` is the square in pixels (it may reach past the frame: padding). `None`
    /// when an object is only partly there or stands between two positions, so that no
    /// caption would be clearly right.
    pub fn view_caption(&self, view: PixelBox, width: usize, height: usize) -> Option<SceneSpec> {
        let mut objects = Vec::new();
        for o in &self.objects {
            match self.naming(o, view, width, height) {
                Naming::Named(position) => objects.push(PlacedObject {
                    kind: o.kind,
                    position,
                }),
                Naming::Absent => {}
                Naming::Unclear => return None,
            }
        }
        Some(SceneSpec {
            background: self.background,
            time: self.time,
            objects,
        })
    }
}

/// The last grade and the sensor noise, as RGB24.
pub(super) fn finish(mut cv: Canvas, look: &RenderJitter) -> Vec<u8> {
    let b = look.brightness;
    cv.grade(
        [b * look.tint[0], b * look.tint[1], b * look.tint[2]],
        [0.0; 3],
    );
    cv.into_rgb24(look.noise, look.noise_seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(kind: ObjectKind, x: f32, size: f32) -> WideScene {
        WideScene {
            background: Background::Street,
            time: TimeOfDay::Day,
            objects: vec![WideObject {
                kind,
                x,
                size,
                colour: [1.0; 3],
            }],
            props: vec![],
        }
    }

    #[test]
    fn a_view_names_what_it_shows_where_it_shows_it() {
        let (w, h) = (1280, 720);
        let s = one(ObjectKind::RedCar, 0.1, 0.8);
        // The leftmost full-height square shows the car on its left.
        let left = s.view_caption((0.0, 0.0, 720.0, 720.0), w, h).unwrap();
        assert_eq!(left.objects[0].position, Position::Left);
        // The centre square does not show it at all.
        let centre = s.view_caption((280.0, 0.0, 1000.0, 720.0), w, h).unwrap();
        assert!(centre.objects.is_empty());
        // A tight square around it shows it in its centre.
        let b = s.objects[0].pixel_box(Background::Street, w, h);
        let cx = (b.0 + b.2) / 2.0;
        let side = 1.3 * (b.2 - b.0);
        let tight = (cx - side / 2.0, b.3 - side, cx + side / 2.0, b.3);
        let t = s.view_caption(tight, w, h).unwrap();
        assert_eq!(t.objects[0].position, Position::Centre);
        // A square that cuts it in half names nothing for sure.
        let half = (cx, b.3 - side, cx + side, b.3);
        assert!(s.view_caption(half, w, h).is_none());
    }

    #[test]
    fn a_pillar_in_front_hides_what_stands_behind() {
        let (w, h) = (1280, 720);
        let mut s = one(ObjectKind::PersonInGreen, 0.5, 1.0);
        let view = (280.0, 0.0, 1000.0, 720.0);
        assert_eq!(s.view_caption(view, w, h).unwrap().objects.len(), 1);
        s.props.push(WideProp {
            kind: PropKind::Pillar,
            x: 0.5,
            size: 3.0,
        });
        assert!(s.view_caption(view, w, h).unwrap().objects.is_empty());
    }

    #[test]
    fn sizes_for_an_area_and_a_width_are_what_they_say() {
        let (w, h) = (1280, 720);
        for kind in ObjectKind::ALL {
            let size = size_for_area(kind, 1.0 / 30.0, w, h);
            let o = WideObject {
                kind,
                x: 0.5,
                size,
                colour: [1.0; 3],
            };
            let share = area(o.pixel_box(Background::Street, w, h)) / (w * h) as f32;
            assert!((share - 1.0 / 30.0).abs() < 1e-4, "{kind:?}: {share}");
            let size = size_for_width(kind, 0.18, w, h);
            let b = WideObject { size, ..o }.pixel_box(Background::Street, w, h);
            assert!(((b.2 - b.0) / w as f32 - 0.18).abs() < 1e-4);
        }
    }

    #[test]
    fn random_wide_scenes_never_show_a_held_out_composition() {
        let mut rng = WorldRng::new(3);
        for _ in 0..2000 {
            let s = WideScene::random(&mut rng);
            assert!(s
                .objects
                .iter()
                .all(|o| !is_held_out(o.kind, s.background, s.time)));
        }
    }
}
