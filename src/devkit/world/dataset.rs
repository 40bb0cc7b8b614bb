//! The training set of the shipped tiny model: random scenes rendered, shrunk and cropped as
//! frameseek preprocesses images, with several captions each.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::render::{render_scene, FRAME_HEIGHT, FRAME_WIDTH};
use super::rng::WorldRng;
use super::scene::{RenderJitter, SceneSpec};

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
