//! Drawing a [`SceneSpec`] as RGB24 pixels: each background, each object kind, night
//! lighting and the per-rendering jitter; and writing a frame as a PNG.

use std::path::Path;

use anyhow::Context;

use super::canvas::{scale, Canvas, Rgb};
use super::scene::{Background, ObjectKind, RenderJitter, SceneSpec, TimeOfDay};

pub(super) fn draw_background(cv: &mut Canvas, bg: Background, shift: f32) {
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
pub(super) fn ground_y(bg: Background) -> f32 {
    match bg {
        Background::Street => 0.86,
        Background::ParkingLot => 0.84,
        Background::Corridor => 0.9,
    }
}

pub(super) fn draw_object(
    cv: &mut Canvas,
    kind: ObjectKind,
    cx: f32,
    gy: f32,
    u: f32,
    colour: [f32; 3],
) {
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
        ObjectKind::PersonInGreen => draw_person(
            cv,
            cx,
            gy,
            u,
            c([40.0, 175.0, 60.0]),
            c([35.0, 160.0, 55.0]),
            colour,
        ),
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

/// A person: legs, a top of colour `top` with sleeves of colour `sleeves`, and a head.
pub(super) fn draw_person(
    cv: &mut Canvas,
    cx: f32,
    gy: f32,
    u: f32,
    top: Rgb,
    sleeves: Rgb,
    colour: [f32; 3],
) {
    let c = |rgb: Rgb| scale(rgb, colour);
    let legs = c([45.0, 45.0, 60.0]);
    cv.rect(cx - 0.045 * u, gy - 0.16 * u, cx - 0.008 * u, gy, legs);
    cv.rect(cx + 0.008 * u, gy - 0.16 * u, cx + 0.045 * u, gy, legs);
    cv.rect(
        cx - 0.06 * u,
        gy - 0.36 * u,
        cx + 0.06 * u,
        gy - 0.15 * u,
        top,
    );
    cv.rect(
        cx - 0.085 * u,
        gy - 0.34 * u,
        cx - 0.06 * u,
        gy - 0.2 * u,
        sleeves,
    );
    cv.rect(
        cx + 0.06 * u,
        gy - 0.34 * u,
        cx + 0.085 * u,
        gy - 0.2 * u,
        sleeves,
    );
    cv.circle(cx, gy - 0.41 * u, 0.05 * u, c([230.0, 190.0, 150.0]));
}

/// How far an object reaches from where it stands (`cx`, ground line), in units of its
/// size: (left, right, top), so its box is `cx + left·u .. cx + right·u` wide and
/// `gy - top·u .. gy` high.
pub(super) fn object_extent(kind: ObjectKind) -> (f32, f32, f32) {
    match kind {
        ObjectKind::RedCar => (-0.19, 0.19, 0.2),
        ObjectKind::WhiteVan => (-0.2, 0.2, 0.36),
        ObjectKind::BlueTruck => (-0.24, 0.22, 0.34),
        ObjectKind::PersonInGreen => (-0.085, 0.085, 0.46),
        ObjectKind::Dog => (-0.14, 0.14, 0.19),
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

/// Writes a rendered RGB24 frame as a PNG (for looking at the world).
pub fn save_png(path: &Path, rgb: &[u8], width: usize, height: usize) -> anyhow::Result<()> {
    let img = image::RgbImage::from_raw(width as u32, height as u32, rgb.to_vec())
        .context("frame has the wrong length")?;
    img.save(path)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::super::rng::WorldRng;
    use super::super::scene::{PlacedObject, Position};
    use super::*;

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
}
