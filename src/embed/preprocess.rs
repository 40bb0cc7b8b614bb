//! Pixel preprocessing in the manner of Hugging Face `CLIPImageProcessor`: shortest side to
//! the model's size, centre crop, rescale to [0, 1], CLIP mean/std, channels first.

use serde::Deserialize;

/// Why a `preprocessor_config.json` was refused.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessorConfigError {
    /// Not JSON, or a field of the wrong type (serde's message).
    #[error("preprocessor_config.json: {0}")]
    Json(serde_json::Error),
    /// `size` or `crop_size` is a rectangle; only square inputs are supported.
    #[error("preprocessor_config.json: {0} with height != width is not supported")]
    NotSquare(&'static str),
    /// The crop is not the size the vision tower takes.
    #[error("preprocessor_config.json: crop_size {crop} differs from the model's vision_config.image_size {image_size}")]
    CropSize {
        /// `crop_size` as read.
        crop: usize,
        /// `vision_config.image_size` of `config.json`.
        image_size: usize,
    },
    /// The resize would leave less than the crop.
    #[error("preprocessor_config.json: size.shortest_edge {shortest_edge} is smaller than crop_size {crop}")]
    ShortestEdge {
        /// `size.shortest_edge` as read.
        shortest_edge: usize,
        /// `crop_size` as read.
        crop: usize,
    },
}

/// Why a still image (from a client or a file) could not be preprocessed.
#[derive(Debug, thiserror::Error)]
pub enum ImageInputError {
    /// The bytes are not an image format this build decodes (PNG, JPEG).
    #[error("cannot decode image: {0}")]
    Decode(image::ImageError),
    /// The image decoded to zero pixels.
    #[error("image has no pixels")]
    Empty,
    /// The image is so elongated that resizing its shortest side to the model's would make a
    /// huge intermediate image (a 1 x 65535 PNG of a few hundred bytes asked for ~10 GB).
    #[error("image of {width}x{height} pixels is more than {MAX_ASPECT}:1; crop it first")]
    Elongated {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
    },
    /// The image declares more pixels than a query image may have.
    #[error("image declares {width} x {height} pixels, more than {MAX_IMAGE_PIXELS} in all; send a smaller image (the model sees a 224-pixel square)")]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
}

/// Most pixels a query image may declare (24 megapixels, 6000 x 4000). Checked from the
/// header before anything is decoded: a PNG of a few KB can declare 13,000 x 13,000 pixels.
pub const MAX_IMAGE_PIXELS: u64 = 24_000_000;

/// The most elongated still image (long side over short side) that is embedded.
pub const MAX_ASPECT: usize = 20;

/// Geometry and normalisation the model's image tower expects.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelGeometry {
    /// The shortest side is resized to this many pixels.
    pub shortest_edge: usize,
    /// The centre crop's side (square crops only).
    pub crop: usize,
    /// Per-channel mean subtracted after rescaling to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
    /// Which views of a video frame are embedded (`ingest.views`; still images and the
    /// model's own default are the centre crop).
    pub views: super::ViewSet,
}

impl PixelGeometry {
    /// OpenAI CLIP's values for a square input of `size` pixels.
    pub fn clip_default(size: usize) -> Self {
        Self {
            shortest_edge: size,
            crop: size,
            mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
            std: [0.268_629_54, 0.261_302_6, 0.275_777_1],
            views: super::ViewSet::Centre,
        }
    }

    /// Reads `preprocessor_config.json` text, falling back to CLIP's defaults for the given
    /// input size where a field is absent.
    pub fn from_preprocessor_json(
        text: &str,
        image_size: usize,
    ) -> Result<Self, PreprocessorConfigError> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Size {
            Int(usize),
            Shortest { shortest_edge: usize },
            HeightWidth { height: usize, width: usize },
        }
        #[derive(Deserialize)]
        struct Raw {
            size: Option<Size>,
            crop_size: Option<Size>,
            image_mean: Option<[f32; 3]>,
            image_std: Option<[f32; 3]>,
        }
        let raw: Raw = serde_json::from_str(text).map_err(PreprocessorConfigError::Json)?;
        let mut g = Self::clip_default(image_size);
        match raw.size {
            Some(Size::Int(n)) | Some(Size::Shortest { shortest_edge: n }) => g.shortest_edge = n,
            Some(Size::HeightWidth { height, width }) if height == width => {
                g.shortest_edge = height
            }
            Some(Size::HeightWidth { .. }) => {
                return Err(PreprocessorConfigError::NotSquare("size"))
            }
            None => {}
        }
        match raw.crop_size {
            Some(Size::Int(n)) | Some(Size::Shortest { shortest_edge: n }) => g.crop = n,
            Some(Size::HeightWidth { height, width }) if height == width => g.crop = height,
            Some(Size::HeightWidth { .. }) => {
                return Err(PreprocessorConfigError::NotSquare("crop_size"))
            }
            None => {}
        }
        if let Some(m) = raw.image_mean {
            g.mean = m;
        }
        if let Some(s) = raw.image_std {
            g.std = s;
        }
        if g.crop != image_size {
            return Err(PreprocessorConfigError::CropSize {
                crop: g.crop,
                image_size,
            });
        }
        if g.shortest_edge < g.crop {
            return Err(PreprocessorConfigError::ShortestEdge {
                shortest_edge: g.shortest_edge,
                crop: g.crop,
            });
        }
        Ok(g)
    }

    /// The size an image of `width` x `height` is resized to before the crop: shortest side
    /// to `shortest_edge`, the other side scaled and truncated as `CLIPImageProcessor` does.
    pub fn resized_dims(&self, width: usize, height: usize) -> (usize, usize) {
        let s = self.shortest_edge;
        if width <= height {
            (
                s,
                ((s as f64 * height as f64 / width.max(1) as f64) as usize).max(s),
            )
        } else {
            (
                ((s as f64 * width as f64 / height.max(1) as f64) as usize).max(s),
                s,
            )
        }
    }

    /// Number of f32 values in one preprocessed image.
    pub fn values_per_image(&self) -> usize {
        3 * self.crop * self.crop
    }

    /// Centre-crops an already resized RGB24 image (`stride` bytes per row) and appends the
    /// normalised channels-first values to `out`.
    pub fn crop_normalise_rgb24(
        &self,
        rgb: &[u8],
        width: usize,
        height: usize,
        stride: usize,
        out: &mut Vec<f32>,
    ) {
        let c = self.crop;
        let origin = (width.saturating_sub(c) / 2, height.saturating_sub(c) / 2);
        self.place_normalise_rgb24(rgb, (width, height), stride, origin, false, out);
    }

    /// Appends one view of an RGB24 image of `size` (`stride` bytes per row) to `out` as
    /// normalised channels-first values: the `crop` square whose top-left corner is
    /// `origin`, or with `padded`, the whole image placed at `origin` in the square, the rest
    /// of the square at the mean colour (0 once normalised).
    pub fn place_normalise_rgb24(
        &self,
        rgb: &[u8],
        size: (usize, usize),
        stride: usize,
        origin: (usize, usize),
        padded: bool,
        out: &mut Vec<f32>,
    ) {
        let (width, height) = size;
        let c = self.crop;
        let start = out.len();
        out.resize(start + 3 * c * c, 0.0);
        let (r_plane, rest) = out[start..].split_at_mut(c * c);
        let (g_plane, b_plane) = rest.split_at_mut(c * c);
        let scale: [f32; 3] = [
            1.0 / (255.0 * self.std[0]),
            1.0 / (255.0 * self.std[1]),
            1.0 / (255.0 * self.std[2]),
        ];
        let offset: [f32; 3] = [
            self.mean[0] / self.std[0],
            self.mean[1] / self.std[1],
            self.mean[2] / self.std[2],
        ];
        // Source rectangle read and where its first pixel lands in the square.
        let (src, dst, n) = if padded {
            (
                (0, 0),
                origin,
                (
                    width.min(c - origin.0.min(c)),
                    height.min(c - origin.1.min(c)),
                ),
            )
        } else {
            (
                origin,
                (0, 0),
                (
                    c.min(width.saturating_sub(origin.0)),
                    c.min(height.saturating_sub(origin.1)),
                ),
            )
        };
        for y in 0..n.1 {
            let row = &rgb[(src.1 + y) * stride + src.0 * 3..];
            for x in 0..n.0 {
                let p = &row[x * 3..x * 3 + 3];
                let i = (dst.1 + y) * c + dst.0 + x;
                r_plane[i] = p[0] as f32 * scale[0] - offset[0];
                g_plane[i] = p[1] as f32 * scale[1] - offset[1];
                b_plane[i] = p[2] as f32 * scale[2] - offset[2];
            }
        }
    }

    /// Decodes a still image (PNG or JPEG bytes) and preprocesses it, appending to `out`.
    pub fn preprocess_image_bytes(
        &self,
        bytes: &[u8],
        out: &mut Vec<f32>,
    ) -> Result<(), ImageInputError> {
        let reader = || {
            image::ImageReader::new(std::io::Cursor::new(bytes))
                .with_guessed_format()
                .map_err(|e| ImageInputError::Decode(image::ImageError::IoError(e)))
        };
        let (width, height) = reader()?
            .into_dimensions()
            .map_err(ImageInputError::Decode)?;
        if u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS {
            return Err(ImageInputError::TooLarge { width, height });
        }
        let img = reader()?.decode().map_err(ImageInputError::Decode)?;
        let rgb = img.to_rgb8();
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        if w == 0 || h == 0 {
            return Err(ImageInputError::Empty);
        }
        if w.max(h) > w.min(h).saturating_mul(MAX_ASPECT) {
            return Err(ImageInputError::Elongated {
                width: w,
                height: h,
            });
        }
        let (rw, rh) = self.resized_dims(w, h);
        let resized = resize_bicubic_rgb24(rgb.as_raw(), w, h, rw, rh);
        self.crop_normalise_rgb24(&resized, rw, rh, rw * 3, out);
        Ok(())
    }
}

/// Bits of fixed-point precision in the resampling weights, as Pillow uses for 8-bit images.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's bicubic kernel (`a = -0.5`), support 2.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Per output pixel along one axis: the first input index, and fixed-point weights for the
/// inputs from there on.
struct Taps {
    first: Vec<usize>,
    weights: Vec<Vec<i32>>,
}

/// The resampling taps for `in_size` -> `out_size`, computed as Pillow computes them: the
/// kernel is widened by the scale when shrinking, sampled at pixel centres, normalised in
/// double precision, then rounded to fixed point (half away from zero).
fn taps(in_size: usize, out_size: usize) -> Taps {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = 2.0 * filter_scale;
    let inv_filter_scale = 1.0 / filter_scale;
    let mut first = Vec::with_capacity(out_size);
    let mut weights = Vec::with_capacity(out_size);
    for i in 0..out_size {
        let centre = (i as f64 + 0.5) * scale;
        let lo = ((centre - support + 0.5) as i64).max(0) as usize;
        let hi = ((centre + support + 0.5) as i64)
            .min(in_size as i64)
            .max(lo as i64) as usize;
        let raw: Vec<f64> = (lo..hi)
            .map(|x| bicubic((x as f64 - centre + 0.5) * inv_filter_scale))
            .collect();
        let total: f64 = raw.iter().sum();
        let unit = f64::from(1u32 << PRECISION_BITS);
        let fixed = raw
            .iter()
            .map(|&w| {
                let w = if total != 0.0 { w / total } else { w };
                if w < 0.0 {
                    (w * unit - 0.5) as i32
                } else {
                    (w * unit + 0.5) as i32
                }
            })
            .collect();
        first.push(lo);
        weights.push(fixed);
    }
    Taps { first, weights }
}

/// Rounds a fixed-point accumulator (which started at one half) to an 8-bit value.
fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes packed RGB24 (`width * 3` bytes per row) with Pillow's `Image.resize(...,
/// BICUBIC)` arithmetic: a horizontal pass into an 8-bit intermediate covering only the rows
/// the vertical pass reads, then a vertical pass, each skipped when that axis keeps its size.
/// The result equals Pillow's byte for byte (tested against it within ±1).
pub fn resize_bicubic_rgb24(
    rgb: &[u8],
    width: usize,
    height: usize,
    out_width: usize,
    out_height: usize,
) -> Vec<u8> {
    let half: i64 = 1 << (PRECISION_BITS - 1);
    let vert = taps(height, out_height);
    // Rows of the source the vertical pass reads.
    let row_lo = vert.first.first().copied().unwrap_or(0);
    let row_hi = vert
        .first
        .iter()
        .zip(&vert.weights)
        .map(|(f, w)| f + w.len())
        .max()
        .unwrap_or(height);
    let (horizontal, h_first_row): (Vec<u8>, usize) = if out_width != width {
        let hz = taps(width, out_width);
        let (lo, hi) = if out_height != height {
            (row_lo, row_hi)
        } else {
            (0, height)
        };
        let mut out = vec![0u8; (hi - lo) * out_width * 3];
        for (y, orow) in (lo..hi).zip(out.chunks_exact_mut(out_width * 3)) {
            let irow = &rgb[y * width * 3..(y + 1) * width * 3];
            for x in 0..out_width {
                let first = hz.first[x];
                let mut acc = [half; 3];
                for (k, &w) in hz.weights[x].iter().enumerate() {
                    let p = &irow[(first + k) * 3..(first + k) * 3 + 3];
                    for c in 0..3 {
                        acc[c] += i64::from(p[c]) * i64::from(w);
                    }
                }
                for c in 0..3 {
                    orow[x * 3 + c] = clip8(acc[c]);
                }
            }
        }
        (out, lo)
    } else {
        (rgb.to_vec(), 0)
    };
    if out_height == height {
        return horizontal;
    }
    let stride = out_width * 3;
    let mut out = vec![0u8; out_height * stride];
    for (y, orow) in out.chunks_exact_mut(stride).enumerate() {
        let first = vert.first[y] - h_first_row;
        let mut acc = vec![half; stride];
        for (k, &w) in vert.weights[y].iter().enumerate() {
            let irow = &horizontal[(first + k) * stride..(first + k + 1) * stride];
            for (a, &p) in acc.iter_mut().zip(irow) {
                *a += i64::from(p) * i64::from(w);
            }
        }
        for (o, a) in orow.iter_mut().zip(acc) {
            *o = clip8(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_keeps_aspect_with_shortest_side_at_size() {
        let g = PixelGeometry::clip_default(224);
        assert_eq!(g.resized_dims(1280, 720), (398, 224));
        assert_eq!(g.resized_dims(720, 1280), (224, 398));
        assert_eq!(g.resized_dims(500, 500), (224, 224));
    }

    #[test]
    fn crop_takes_the_centre_and_normalises_with_clip_statistics() {
        let g = PixelGeometry::clip_default(2);
        // 4x2 image: columns 0..4, centre crop is columns 1..3.
        let mut rgb = vec![0u8; 4 * 2 * 3];
        for y in 0..2 {
            for x in 0..4 {
                let v = (x * 60) as u8;
                rgb[(y * 4 + x) * 3..(y * 4 + x) * 3 + 3].copy_from_slice(&[v, v, v]);
            }
        }
        let mut out = Vec::new();
        g.crop_normalise_rgb24(&rgb, 4, 2, 12, &mut out);
        assert_eq!(out.len(), 12);
        let expect = |v: f32, c: usize| (v / 255.0 - g.mean[c]) / g.std[c];
        assert!((out[0] - expect(60.0, 0)).abs() < 1e-5);
        assert!((out[1] - expect(120.0, 0)).abs() < 1e-5);
        assert!((out[4 + 1] - expect(120.0, 1)).abs() < 1e-5);
        assert!((out[8] - expect(60.0, 2)).abs() < 1e-5);
    }

    #[test]
    fn bicubic_resize_keeps_flat_images_flat_and_same_size_images_unchanged() {
        let (w, h) = (37, 23);
        let img: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(resize_bicubic_rgb24(&img, w, h, w, h), img);
        let flat = vec![200u8; w * h * 3];
        for (ow, oh) in [(10, 7), (37, 9), (5, 23), (80, 50)] {
            let out = resize_bicubic_rgb24(&flat, w, h, ow, oh);
            assert_eq!(out.len(), ow * oh * 3);
            assert!(out.iter().all(|&v| v == 200), "{ow}x{oh}");
        }
    }

    #[test]
    fn bicubic_taps_follow_pillow() {
        // Halving: the kernel is widened to support 4, weights sum to one in fixed point.
        let t = taps(8, 4);
        assert_eq!(t.first, vec![0, 0, 1, 3]);
        for w in &t.weights {
            let sum: i64 = w.iter().map(|&v| i64::from(v)).sum();
            assert!(
                (sum - (1 << PRECISION_BITS)).abs() <= w.len() as i64,
                "{sum}"
            );
        }
        // Upscaling 2 -> 4: support 2, clamped to the image.
        let t = taps(2, 4);
        assert_eq!(t.first, vec![0, 0, 0, 0]);
        assert!(t.weights.iter().all(|w| w.len() == 2));
    }

    #[test]
    fn preprocessor_json_is_read() {
        let g = PixelGeometry::from_preprocessor_json(
            r#"{"size": {"shortest_edge": 64}, "crop_size": {"height": 64, "width": 64}, "image_mean": [0.5,0.5,0.5], "image_std": [0.5,0.5,0.5]}"#,
            64,
        )
        .unwrap();
        assert_eq!((g.shortest_edge, g.crop, g.mean[0]), (64, 64, 0.5));
        assert!(PixelGeometry::from_preprocessor_json(r#"{"crop_size": 32}"#, 64).is_err());
    }
}

#[cfg(test)]
mod fuzz {
    //! Property tests of the image-query decoder: random bytes and truncated or damaged PNG
    //! and JPEG files give an error, never a panic; whole files give one image's values.
    use super::*;
    use proptest::prelude::*;

    fn encoded(format: image::ImageFormat, w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut bytes = std::io::Cursor::new(Vec::new());
        img.write_to(&mut bytes, format).unwrap();
        bytes.into_inner()
    }

    #[test]
    fn elongated_images_are_refused_before_resizing() {
        let g = PixelGeometry::clip_default(224);
        let mut out = Vec::new();
        let thin = encoded(image::ImageFormat::Png, 1, 4000);
        let e = g.preprocess_image_bytes(&thin, &mut out).unwrap_err();
        assert!(
            matches!(
                e,
                ImageInputError::Elongated {
                    width: 1,
                    height: 4000
                }
            ),
            "{e}"
        );
        assert!(out.is_empty());
        // 20:1 is still embedded.
        let wide = encoded(image::ImageFormat::Png, 200, 10);
        g.preprocess_image_bytes(&wide, &mut out).unwrap();
        assert_eq!(out.len(), g.values_per_image());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn random_bytes_are_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut out = Vec::new();
            prop_assert!(PixelGeometry::clip_default(16).preprocess_image_bytes(&bytes, &mut out).is_err());
        }

        #[test]
        fn truncated_or_damaged_files_never_panic(
            png in any::<bool>(),
            w in 2u32..40,
            h in 2u32..40,
            cut in 0.0f64..1.0,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        ) {
            let format = if png { image::ImageFormat::Png } else { image::ImageFormat::Jpeg };
            let whole = encoded(format, w, h);
            let g = PixelGeometry::clip_default(16);
            let mut out = Vec::new();
            g.preprocess_image_bytes(&whole, &mut out).unwrap();
            prop_assert_eq!(out.len(), g.values_per_image());
            let mut bytes = whole[..(whole.len() as f64 * cut) as usize].to_vec();
            if !bytes.is_empty() {
                for (at, v) in flips {
                    let i = at.index(bytes.len());
                    bytes[i] ^= v;
                }
            }
            let mut out = Vec::new();
            match g.preprocess_image_bytes(&bytes, &mut out) {
                Ok(()) => prop_assert_eq!(out.len(), g.values_per_image()),
                Err(_) => prop_assert!(out.is_empty()),
            }
        }
    }
}
