//! The drawing surface the renderer paints on: an RGB image kept as floats, with rectangles,
//! discs, trapezoids, colour grading and a lamp's glow, turned into RGB24 bytes (with sensor
//! noise) at the end.

use super::rng::WorldRng;

/// An RGB24 image being drawn, with colours kept as floats until the end.
#[derive(Clone)]
pub(super) struct Canvas {
    /// Width, pixels.
    pub(super) width: usize,
    /// Height, pixels.
    pub(super) height: usize,
    pixels: Vec<[f32; 3]>,
}

/// A colour: red, green, blue in 0..255 units (may stray outside until the end).
pub(super) type Rgb = [f32; 3];

impl Canvas {
    /// A canvas filled with `colour`.
    pub(super) fn new(width: usize, height: usize, colour: Rgb) -> Self {
        Self {
            width,
            height,
            pixels: vec![colour; width * height],
        }
    }

    /// Fills the rectangle from (`x0`, `y0`) to (`x1`, `y1`), clipped to the canvas.
    pub(super) fn rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, colour: Rgb) {
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

    /// Fills the disc of radius `r` around (`cx`, `cy`), clipped to the canvas.
    pub(super) fn circle(&mut self, cx: f32, cy: f32, r: f32, colour: Rgb) {
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
    pub(super) fn trapezoid(
        &mut self,
        y0: f32,
        y1: f32,
        (l0, l1): (f32, f32),
        (r0, r1): (f32, f32),
        c: Rgb,
    ) {
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
    pub(super) fn grade(&mut self, factor: Rgb, offset: Rgb) {
        for p in &mut self.pixels {
            for c in 0..3 {
                p[c] = p[c] * factor[c] + offset[c];
            }
        }
    }

    /// Brightens a soft disc (a lamp's glow).
    pub(super) fn glow(&mut self, cx: f32, cy: f32, r: f32, strength: f32) {
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

    /// The finished image as RGB24 bytes, with uniform noise of amplitude `noise` seeded
    /// by `noise_seed`.
    pub(super) fn into_rgb24(self, noise: f32, noise_seed: u64) -> Vec<u8> {
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

/// Multiplies a colour channel by channel.
pub(super) fn scale(c: Rgb, k: [f32; 3]) -> Rgb {
    [c[0] * k[0], c[1] * k[1], c[2] * k[2]]
}
