//! Frame conversion: one swscale pass per scale the views need, from the decoder's pixels
//! (with the stream's colour matrix and range) to RGB, turned upright, cut into the views
//! (`ingest.views`: the centre crop, squares across the frame, the padded frame, tiles) and
//! normalised.

use ffmpeg::ffi;
use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use crate::embed::{PixelGeometry, Region};

/// How a stored picture must be turned to be shown upright (the container's display
/// matrix, as phones write it), in the same way as the `ffmpeg` command's autorotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Rotation {
    /// Shown as stored.
    #[default]
    None,
    /// Turned 90 degrees clockwise.
    Clockwise,
    /// Turned 180 degrees.
    HalfTurn,
    /// Turned 90 degrees counter-clockwise.
    CounterClockwise,
}

impl Rotation {
    /// From the display matrix's rotation angle (`av_display_rotation_get`: degrees
    /// counter-clockwise); angles that are not a multiple of 90 are rounded to the nearest.
    fn from_matrix_degrees(degrees: f64) -> Self {
        if !degrees.is_finite() {
            return Self::None;
        }
        // The picture is turned by minus the matrix's angle to undo it.
        let turn = (-degrees / 90.0).round().rem_euclid(4.0) as u8;
        match turn {
            1 => Self::Clockwise,
            2 => Self::HalfTurn,
            3 => Self::CounterClockwise,
            _ => Self::None,
        }
    }

    /// The stream's rotation from its display-matrix side data.
    pub(crate) fn of_stream(stream: &ffmpeg::format::stream::Stream) -> Self {
        for side in stream.side_data() {
            if side.kind() == ffmpeg::packet::side_data::Type::DisplayMatrix
                && side.data().len() >= 9 * 4
            {
                let mut matrix = [0i32; 9];
                for (i, m) in matrix.iter_mut().enumerate() {
                    let b = &side.data()[i * 4..i * 4 + 4];
                    *m = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                }
                // SAFETY: `matrix` holds the 9 values the function reads.
                let degrees = unsafe { ffi::av_display_rotation_get(matrix.as_ptr()) };
                return Self::from_matrix_degrees(degrees);
            }
        }
        Self::None
    }

    /// Whether width and height trade places.
    pub(crate) fn swaps_sides(self) -> bool {
        matches!(self, Self::Clockwise | Self::CounterClockwise)
    }

    /// Turns a packed RGB24 picture of `width` x `height` (rows `stride` bytes apart) into
    /// `out`, packed without padding.
    pub(crate) fn apply_rgb24(
        self,
        rgb: &[u8],
        width: usize,
        height: usize,
        stride: usize,
        out: &mut Vec<u8>,
    ) {
        out.clear();
        out.resize(width * height * 3, 0);
        let (out_w, _) = if self.swaps_sides() {
            (height, width)
        } else {
            (width, height)
        };
        for y in 0..height {
            let row = &rgb[y * stride..y * stride + width * 3];
            for x in 0..width {
                let (ox, oy) = match self {
                    Self::None => (x, y),
                    Self::Clockwise => (height - 1 - y, x),
                    Self::HalfTurn => (width - 1 - x, height - 1 - y),
                    Self::CounterClockwise => (y, width - 1 - x),
                };
                let o = (oy * out_w + ox) * 3;
                out[o..o + 3].copy_from_slice(&row[x * 3..x * 3 + 3]);
            }
        }
    }
}

/// One scaler to one upright size, with its output picture.
struct Scaler {
    ctx: scaling::Context,
    /// Input format and size, output size (stored orientation).
    key: (Pixel, u32, u32, u32, u32),
    rgb: ffmpeg::frame::Video,
}

/// Converts decoded frames to the model's input, one block of pixels per view
/// ([`crate::embed::ViewSet`]), keeping one scaler per size the views need and rebuilding
/// them when the stream's size or format changes.
pub(crate) struct FrameConverter {
    geometry: PixelGeometry,
    rotation: Rotation,
    scalers: Vec<Scaler>,
    turned: Vec<u8>,
}

impl FrameConverter {
    /// A converter to `geometry` (and its views) for pictures stored turned by `rotation`.
    pub(crate) fn new(geometry: PixelGeometry, rotation: Rotation) -> Self {
        Self {
            geometry,
            rotation,
            scalers: Vec::new(),
            turned: Vec::new(),
        }
    }

    /// Values one converted view holds (`3 * crop * crop`).
    pub(crate) fn values_per_image(&self) -> usize {
        self.geometry.values_per_image()
    }

    /// Converts `frame` into `out`: for each view, channels-first normalised pixels of the
    /// model's input, one block after the other. Returns each view's region in the frame.
    pub(crate) fn convert(
        &mut self,
        frame: &ffmpeg::frame::Video,
        out: &mut Vec<f32>,
    ) -> Result<Vec<Region>, ffmpeg::Error> {
        let (fw, fh) = (frame.width() as usize, frame.height() as usize);
        let swaps = self.rotation.swaps_sides();
        // Sizes as shown (upright); each scaler works in the stored orientation, and only the
        // small scaled picture is turned.
        let (uw, uh) = if swaps { (fh, fw) } else { (fw, fh) };
        let g = &self.geometry;
        let cuts = g.views.cuts(uw, uh, g.crop, g.shortest_edge);
        let mut sizes: Vec<(usize, usize)> = Vec::new();
        for c in &cuts {
            if !sizes.contains(&c.scaled) {
                sizes.push(c.scaled);
            }
        }
        // Scalers of sizes no view needs now go (the stream changed size).
        let keep: Vec<_> = sizes
            .iter()
            .map(|&(sw, sh)| {
                let (rw, rh) = if swaps { (sh, sw) } else { (sw, sh) };
                (
                    frame.format(),
                    frame.width(),
                    frame.height(),
                    rw as u32,
                    rh as u32,
                )
            })
            .collect();
        self.scalers.retain(|s| keep.contains(&s.key));
        for (size, key) in sizes.iter().zip(keep) {
            let at = match self.scalers.iter().position(|s| s.key == key) {
                Some(i) => i,
                None => {
                    let flags = scaling::Flags::BICUBIC
                        | scaling::Flags::ACCURATE_RND
                        | scaling::Flags::FULL_CHR_H_INT;
                    let mut ctx = scaling::Context::get(
                        key.0,
                        key.1,
                        key.2,
                        Pixel::RGB24,
                        key.3,
                        key.4,
                        flags,
                    )?;
                    set_colour_matrix(&mut ctx, frame);
                    self.scalers.push(Scaler {
                        ctx,
                        key,
                        rgb: ffmpeg::frame::Video::empty(),
                    });
                    self.scalers.len() - 1
                }
            };
            let s = &mut self.scalers[at];
            s.ctx.run(frame, &mut s.rgb)?;
            let (rw, rh) = (key.3 as usize, key.4 as usize);
            let stride = s.rgb.stride(0);
            let (pixels, stride) = if self.rotation == Rotation::None {
                (s.rgb.data(0), stride)
            } else {
                self.rotation
                    .apply_rgb24(s.rgb.data(0), rw, rh, stride, &mut self.turned);
                (&self.turned[..], size.0 * 3)
            };
            for c in cuts.iter().filter(|c| c.scaled == *size) {
                self.geometry
                    .place_normalise_rgb24(pixels, *size, stride, c.origin, c.padded, out);
            }
        }
        // Blocks were appended size by size: put them back in view order.
        let vpi = self.geometry.values_per_image();
        let order: Vec<usize> = sizes
            .iter()
            .flat_map(|size| {
                cuts.iter()
                    .enumerate()
                    .filter(move |(_, c)| c.scaled == *size)
                    .map(|(i, _)| i)
            })
            .collect();
        if order.windows(2).any(|w| w[0] > w[1]) {
            let start = out.len() - order.len() * vpi;
            let blocks = out[start..].to_vec();
            for (block, &view) in order.iter().enumerate() {
                out[start + view * vpi..start + (view + 1) * vpi]
                    .copy_from_slice(&blocks[block * vpi..(block + 1) * vpi]);
            }
        }
        Ok(cuts.into_iter().map(|c| c.region).collect())
    }
}

/// Tells swscale which YUV matrix and range the source uses: the stream's own tags, or when
/// untagged, BT.709 for HD sizes and BT.601 below, limited range unless a full-range format.
pub(crate) fn set_colour_matrix(ctx: &mut scaling::Context, frame: &ffmpeg::frame::Video) {
    // SAFETY: plain reads of the frame's fields and a call on the live scaler context.
    unsafe {
        let f = &*frame.as_ptr();
        let pix = frame.format();
        let full_range_format = matches!(
            pix,
            Pixel::YUVJ420P | Pixel::YUVJ422P | Pixel::YUVJ444P | Pixel::YUVJ440P
        );
        let src_full = full_range_format || f.color_range == ffi::AVColorRange::AVCOL_RANGE_JPEG;
        let space = f.colorspace as i32;
        let sws_space = match space {
            1 | 4 | 5 | 6 | 7 | 9 | 10 => space,
            _ => {
                if f.height >= 720 {
                    1
                } else {
                    5
                }
            }
        };
        let inv_table = ffi::sws_getCoefficients(sws_space);
        let table = ffi::sws_getCoefficients(5);
        ffi::sws_setColorspaceDetails(
            ctx.as_mut_ptr(),
            inv_table,
            src_full as i32,
            table,
            1,
            0,
            1 << 16,
            1 << 16,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::init_ffmpeg;

    /// A flat frame of one Y'CbCr colour, tagged with a matrix and range.
    fn flat_frame(
        format: Pixel,
        yuv: [u8; 3],
        space: ffmpeg::color::Space,
        range: ffmpeg::color::Range,
        size: u32,
    ) -> ffmpeg::frame::Video {
        init_ffmpeg();
        let mut f = ffmpeg::frame::Video::new(format, size, size);
        for (plane, value) in yuv.iter().enumerate() {
            let len = f.data(plane).len();
            f.data_mut(plane)[..len].fill(*value);
        }
        f.set_color_space(space);
        f.set_color_range(range);
        f
    }

    /// The 8-bit RGB the converter produced for a flat frame (centre pixel).
    fn rgb_of(frame: &ffmpeg::frame::Video) -> [i32; 3] {
        let g = PixelGeometry::clip_default(16);
        let mut conv = FrameConverter::new(g.clone(), Rotation::None);
        let mut out = Vec::new();
        conv.convert(frame, &mut out).unwrap();
        let i = 8 * 16 + 8;
        let plane = 16 * 16;
        std::array::from_fn(|c| {
            ((out[c * plane + i] * g.std[c] + g.mean[c]) * 255.0).round() as i32
        })
    }

    fn assert_near(got: [i32; 3], want: [i32; 3], what: &str) {
        for c in 0..3 {
            assert!(
                (got[c] - want[c]).abs() <= 3,
                "{what}: got {got:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn yuv_matrix_and_range_follow_the_stream_tags() {
        use ffmpeg::color::{Range, Space};
        // Pure red (255, 0, 0) encoded four ways, and mid grey.
        let cases = [
            (
                "BT.601 limited",
                Pixel::YUV420P,
                [81, 90, 240],
                Space::BT470BG,
                Range::MPEG,
            ),
            (
                "SMPTE 170M limited",
                Pixel::YUV420P,
                [81, 90, 240],
                Space::SMPTE170M,
                Range::MPEG,
            ),
            (
                "BT.709 limited",
                Pixel::YUV420P,
                [63, 102, 240],
                Space::BT709,
                Range::MPEG,
            ),
            (
                "BT.601 full",
                Pixel::YUV420P,
                [76, 85, 255],
                Space::BT470BG,
                Range::JPEG,
            ),
            (
                "BT.709 full",
                Pixel::YUV420P,
                [54, 99, 255],
                Space::BT709,
                Range::JPEG,
            ),
            (
                "BT.601 yuvj420p",
                Pixel::YUVJ420P,
                [76, 85, 255],
                Space::BT470BG,
                Range::Unspecified,
            ),
        ];
        for (what, format, yuv, space, range) in cases {
            let f = flat_frame(format, yuv, space, range, 32);
            assert_near(rgb_of(&f), [255, 0, 0], what);
        }
        let grey = flat_frame(
            Pixel::YUV420P,
            [126, 128, 128],
            Space::BT709,
            Range::MPEG,
            32,
        );
        assert_near(rgb_of(&grey), [128, 128, 128], "grey limited");
        // The tags matter: BT.709 red read as BT.601 is visibly off.
        let wrong = flat_frame(
            Pixel::YUV420P,
            [63, 102, 240],
            Space::BT470BG,
            Range::MPEG,
            32,
        );
        let got = rgb_of(&wrong);
        let off = (got[0] - 255).abs() + got[1].abs() + got[2].abs();
        assert!(off > 10, "BT.709 red read as BT.601 gave {got:?}");
    }

    #[test]
    fn views_come_out_in_order_with_their_regions() {
        use crate::embed::ViewSet;
        init_ffmpeg();
        // 64 x 32: the left half red, the right half blue (BT.601 limited).
        let mut f = ffmpeg::frame::Video::new(Pixel::YUV444P, 64, 32);
        for (plane, (left, right)) in [(81u8, 41u8), (90, 240), (240, 110)].iter().enumerate() {
            let stride = f.stride(plane);
            for y in 0..32 {
                for x in 0..64 {
                    f.data_mut(plane)[y * stride + x] = if x < 32 { *left } else { *right };
                }
            }
        }
        f.set_color_space(ffmpeg::color::Space::BT470BG);
        f.set_color_range(ffmpeg::color::Range::MPEG);
        let red_of = |g: &PixelGeometry, pixels: &[f32], view: usize, x: usize, y: usize| {
            let c = g.crop;
            let v = pixels[view * 3 * c * c + y * c + x];
            ((v * g.std[0] + g.mean[0]) * 255.0).round() as i32
        };
        let cover = PixelGeometry {
            views: ViewSet::Cover,
            ..PixelGeometry::clip_default(16)
        };
        let mut out = Vec::new();
        let regions = FrameConverter::new(cover.clone(), Rotation::None)
            .convert(&f, &mut out)
            .unwrap();
        // Three views of a 2:1 frame: left, middle, right.
        assert_eq!(regions.len(), 3);
        assert_eq!(out.len(), 3 * cover.values_per_image());
        assert_eq!((regions[0].x, regions[2].x + regions[2].w), (0.0, 1.0));
        assert!((regions[1].x - 0.25).abs() < 0.02, "{regions:?}");
        assert!(
            red_of(&cover, &out, 0, 4, 8) > 240,
            "view 0 is the left: red"
        );
        assert!(
            red_of(&cover, &out, 2, 12, 8) < 20,
            "view 2 is the right: blue"
        );
        let pad = PixelGeometry {
            views: ViewSet::Pad,
            ..PixelGeometry::clip_default(16)
        };
        let mut out = Vec::new();
        let regions = FrameConverter::new(pad.clone(), Rotation::None)
            .convert(&f, &mut out)
            .unwrap();
        assert_eq!(regions, vec![crate::embed::Region::WHOLE]);
        // The frame fills rows 4..12 of the square; the rest is the mean colour (0).
        assert_eq!(out[0], 0.0, "padding");
        assert!(red_of(&pad, &out, 0, 2, 8) > 240 && red_of(&pad, &out, 0, 13, 8) < 20);
    }

    #[test]
    fn untagged_streams_use_bt601_below_720_lines_and_bt709_from_720() {
        use ffmpeg::color::{Range, Space};
        let sd = flat_frame(
            Pixel::YUV420P,
            [81, 90, 240],
            Space::Unspecified,
            Range::Unspecified,
            64,
        );
        assert_near(rgb_of(&sd), [255, 0, 0], "untagged SD as BT.601");
        let hd = flat_frame(
            Pixel::YUV420P,
            [63, 102, 240],
            Space::Unspecified,
            Range::Unspecified,
            720,
        );
        assert_near(rgb_of(&hd), [255, 0, 0], "untagged HD as BT.709");
    }
}
