//! The training set of the shipped tiny model, with several captions per image: 4:3 scenes
//! shrunk and centre-cropped as frameseek preprocesses still images, and square views of
//! 16:9 scenes (of any side, anywhere, or the whole frame padded to a square) shrunk to the
//! model's input, captioned with what each view shows. No image shows a held-out
//! composition ([`HELD_OUT_COMPOSITIONS`]).

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::render::{render_scene, FRAME_HEIGHT, FRAME_WIDTH};
use super::rng::WorldRng;
use super::scene::{RenderJitter, SceneSpec, HELD_OUT_COMPOSITIONS};
use super::wide::{PixelBox, WideScene};

/// Side of the wide (16:9) frames the training set cuts its views from, pixels.
pub const WIDE_TRAIN_WIDTH: usize = 512;
/// See [`WIDE_TRAIN_WIDTH`].
pub const WIDE_TRAIN_HEIGHT: usize = 288;

/// Share of the training images that are 4:3 frames centre-cropped (the rest are views of
/// wide frames).
const CENTRE_CROP_SHARE: f32 = 0.3;

/// JPEG-compresses (70 %) and blurs (25 %) a frame at random, so the model learns to ignore
/// codec artefacts.
fn degrade(mut img: image::RgbImage, rng: &mut WorldRng) -> anyhow::Result<image::RgbImage> {
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
    Ok(img)
}

/// Resizes to `width` x `height` with Catmull-Rom or bilinear at random.
fn resize(
    img: &image::RgbImage,
    width: usize,
    height: usize,
    rng: &mut WorldRng,
) -> image::RgbImage {
    let filter = if rng.chance(0.5) {
        image::imageops::FilterType::CatmullRom
    } else {
        image::imageops::FilterType::Triangle
    };
    image::imageops::resize(img, width as u32, height as u32, filter)
}

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
    let img = image::RgbImage::from_raw(width as u32, height as u32, rgb.to_vec())
        .context("rendered frame has the wrong length")?;
    let img = degrade(img, rng)?;
    let geometry = crate::embed::PixelGeometry::clip_default(size);
    let (rw, rh) = geometry.resized_dims(width, height);
    let resized = resize(&img, rw, rh, rng);
    let (top, left) = ((rh - size) / 2, (rw - size) / 2);
    let mut out = Vec::with_capacity(size * size * 3);
    for y in 0..size {
        let start = ((top + y) * rw + left) * 3;
        out.extend_from_slice(&resized.as_raw()[start..start + size * 3]);
    }
    Ok(out)
}

/// A square view of a wide frame, in pixels: the whole frame padded to a square (12 %),
/// a square around one object that it fills from about a third to all of (60 % where
/// there is an object), or a square of any side from a quarter of the height to all of it
/// anywhere in the frame (a quarter of those full height).
fn random_view(scene: &WideScene, width: usize, height: usize, rng: &mut WorldRng) -> PixelBox {
    let (w, h) = (width as f32, height as f32);
    if rng.chance(0.12) {
        let pad = (w - h) / 2.0;
        return (0.0, -pad, w, h + pad);
    }
    if !scene.objects.is_empty() && rng.chance(0.6) {
        let o = scene.objects[rng.below(scene.objects.len())];
        let b = o.pixel_box(scene.background, width, height);
        let extent = (b.2 - b.0).max(b.3 - b.1);
        let side = (extent / rng.range(0.3, 1.0)).clamp(0.2 * h, h).round();
        let x0 = ((b.0 + b.2) / 2.0 - side * rng.range(0.15, 0.85)).clamp(0.0, w - side);
        let y0 = ((b.1 + b.3) / 2.0 - side * rng.range(0.15, 0.85)).clamp(0.0, h - side);
        return (x0.round(), y0.round(), x0.round() + side, y0.round() + side);
    }
    let side = if rng.chance(0.25) {
        h
    } else {
        (rng.range(0.25, 1.0) * h).round()
    };
    let x0 = rng.range(0.0, w - side).round();
    let y0 = rng.range(0.0, h - side).round();
    (x0, y0, x0 + side, y0 + side)
}

/// The pixels of a square `view` of `frame` (padded with black where it reaches past the
/// frame), shrunk to `size * size * 3` bytes.
fn view_pixels(
    frame: &image::RgbImage,
    view: PixelBox,
    size: usize,
    rng: &mut WorldRng,
) -> Vec<u8> {
    let side = (view.2 - view.0).round() as u32;
    let mut square = image::RgbImage::new(side, side);
    let (x0, y0) = (view.0.round() as i64, view.1.round() as i64);
    for y in 0..side {
        let fy = y0 + y as i64;
        if fy < 0 || fy >= frame.height() as i64 {
            continue;
        }
        for x in 0..side {
            let fx = x0 + x as i64;
            if fx >= 0 && fx < frame.width() as i64 {
                square.put_pixel(x, y, *frame.get_pixel(fx as u32, fy as u32));
            }
        }
    }
    resize(&square, size, size, rng).into_raw()
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
    /// What the image shows, as a one-position-per-object scene.
    pub scene: SceneSpec,
    /// What kind of picture it is: `centre` (a 4:3 frame, centre-cropped), `view` (a
    /// square view of a 16:9 frame) or `padded` (a whole 16:9 frame padded to a square).
    #[serde(default)]
    pub view: String,
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
    let mut index = 0;
    let mut write = |pixels: &[u8], scene: SceneSpec, view: &str, rng: &mut WorldRng| {
        images.write_all(pixels)?;
        let record = DatasetRecord {
            index,
            caption: scene.caption(),
            captions: (0..6).map(|_| scene.random_caption(rng)).collect(),
            scene,
            view: view.to_string(),
        };
        serde_json::to_writer(&mut captions, &record)?;
        captions.write_all(b"\n")?;
        index += 1;
        anyhow::Ok(index)
    };
    let mut written = 0;
    while written < count {
        if rng.chance(CENTRE_CROP_SHARE) {
            let scene = loop {
                let s = SceneSpec::random(&mut rng);
                if !s.shows_held_out() {
                    break s;
                }
            };
            let jitter = RenderJitter::random(&mut rng, scene.objects.len());
            let rgb = render_scene(&scene, &jitter, FRAME_WIDTH, FRAME_HEIGHT);
            let crop = training_crop(&rgb, FRAME_WIDTH, FRAME_HEIGHT, size, &mut rng)?;
            written = write(&crop, scene, "centre", &mut rng)?;
            continue;
        }
        let (w, h) = (WIDE_TRAIN_WIDTH, WIDE_TRAIN_HEIGHT);
        let scene = WideScene::random(&mut rng);
        let look = RenderJitter::random(&mut rng, 0);
        let rgb = scene.render(&look, w, h);
        let frame = image::RgbImage::from_raw(w as u32, h as u32, rgb)
            .context("rendered wide frame has the wrong length")?;
        let frame = degrade(frame, &mut rng)?;
        // Two views per wide frame; a view whose caption would be unclear is drawn again.
        for _ in 0..2 {
            let chosen = (0..12).find_map(|_| {
                let view = random_view(&scene, w, h, &mut rng);
                scene
                    .view_caption(view, w, h)
                    .map(|caption| (view, caption))
            });
            let Some((view, caption)) = chosen else {
                continue;
            };
            if written >= count {
                break;
            }
            let pixels = view_pixels(&frame, view, size, &mut rng);
            let kind = if view.2 - view.0 > h as f32 {
                "padded"
            } else {
                "view"
            };
            written = write(&pixels, caption, kind, &mut rng)?;
        }
    }
    images.flush()?;
    captions.flush()?;
    std::fs::write(
        out.join("meta.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "count": count, "seed": seed, "size": size,
            "frame_width": FRAME_WIDTH, "frame_height": FRAME_HEIGHT,
            "wide_width": WIDE_TRAIN_WIDTH, "wide_height": WIDE_TRAIN_HEIGHT,
            "centre_crop_share": CENTRE_CROP_SHARE,
            "held_out_compositions": HELD_OUT_COMPOSITIONS,
            "images": "images.u8", "layout": "count x size x size x 3, uint8 RGB",
        }))?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
