//! The decode and sample stages: FFmpeg demuxes and decodes a video file, frames are chosen
//! by presentation timestamp every `interval`, and each chosen frame is converted in one
//! swscale pass (right colour matrix and range) straight to the model's input geometry.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::Instant;

use ffmpeg::ffi;
use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use crate::embed::PixelGeometry;

/// Why a file could not be decoded (what decoded before the failure is kept).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// FFmpeg could not open or read the container.
    #[error("cannot open {path}: {reason}")]
    Open {
        /// The file.
        path: String,
        /// FFmpeg's reason.
        reason: String,
    },
    /// The file has no video stream (audio only, or not a video).
    #[error("{path} has no video stream")]
    NoVideo {
        /// The file.
        path: String,
    },
    /// No decoder for the stream's codec, or it refused the stream.
    #[error("cannot decode {path}: {reason}")]
    Codec {
        /// The file.
        path: String,
        /// FFmpeg's reason.
        reason: String,
    },
    /// Decoding failed part-way.
    #[error("{path}: decoding stopped at {at_ms} ms: {reason}")]
    Stream {
        /// The file.
        path: String,
        /// Offset of the last good frame.
        at_ms: u64,
        /// FFmpeg's reason.
        reason: String,
    },
}

/// One sampled frame, preprocessed for the model.
#[derive(Debug, Clone)]
pub struct SampledFrame {
    /// Presentation time relative to the start of the stream, in milliseconds.
    pub offset_ms: u64,
    /// Channels-first normalised pixels, `3 * crop * crop` values.
    pub pixels: Vec<f32>,
}

/// How to sample a source.
#[derive(Debug, Clone)]
pub struct SampleOptions {
    /// Seconds between samples.
    pub interval: f64,
    /// Skip frames at or before this offset (resume after a restart).
    pub resume_after_ms: Option<u64>,
    /// FFmpeg decoder threads, 0 = automatic.
    pub decoder_threads: usize,
    /// The model's input geometry.
    pub geometry: PixelGeometry,
    /// Hardware decoding policy (issue 9; see [`HwAccel`]).
    pub hwaccel: HwAccel,
    /// Which candidate frames are embedded.
    pub policy: SamplingPolicy,
}

/// How frames are chosen, per source.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase", tag = "policy")]
pub enum SamplingPolicy {
    /// The first frame at or after every multiple of the interval.
    #[default]
    Interval,
    /// Only keyframes are decoded (much cheaper), at most one per interval.
    Keyframes,
    /// Interval candidates, kept only when a small grey thumbnail changed by more than
    /// `threshold` (mean absolute difference, 0 to 1) since the last kept frame, or when
    /// `max_gap` seconds passed without one.
    Scene {
        /// Change needed to keep a frame.
        threshold: f32,
        /// Seconds after which a frame is kept anyway.
        max_gap: f64,
    },
}

/// A timestamp further back than this from the last frame is a discontinuity (smaller steps
/// back are jitter: that frame is placed one frame after the last).
const REANCHOR_BACK_MS: f64 = 1000.0;

/// In containers that allow discontinuities (MPEG-TS), a jump forward by more than this is
/// one too (the `ffmpeg` command uses the same threshold).
const REANCHOR_FORWARD_MS: f64 = 10_000.0;

/// Frames before a sample target from which every frame is decoded (judged by each packet's
/// own timestamp; the margin absorbs rounding and timestamp jitter).
const SKIP_MARGIN_FRAMES: f64 = 3.0;

/// Side of the grey thumbnail the scene test compares.
const THUMB: usize = 16;

/// A 16x16 grey thumbnail of an 8-bit YUV or grey frame (block means of the luma plane);
/// `None` for other pixel formats.
fn luma_thumbnail(frame: &ffmpeg::frame::Video) -> Option<[u8; THUMB * THUMB]> {
    let eight_bit_luma = matches!(
        frame.format(),
        Pixel::YUV420P
            | Pixel::YUVJ420P
            | Pixel::YUV422P
            | Pixel::YUVJ422P
            | Pixel::YUV444P
            | Pixel::YUVJ444P
            | Pixel::YUV440P
            | Pixel::YUVJ440P
            | Pixel::YUV411P
            | Pixel::YUV410P
            | Pixel::NV12
            | Pixel::NV21
            | Pixel::GRAY8
    );
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    if !eight_bit_luma || w < THUMB || h < THUMB {
        return None;
    }
    let stride = frame.stride(0);
    let luma = frame.data(0);
    let mut out = [0u8; THUMB * THUMB];
    for ty in 0..THUMB {
        for tx in 0..THUMB {
            // Mean of a 4x4 grid of points inside the cell: cheap, and steady under noise.
            let mut sum = 0u32;
            for sy in 0..4 {
                let y = (ty * h + (2 * sy + 1) * h / 8) / THUMB;
                let row = &luma[y.min(h - 1) * stride..];
                for sx in 0..4 {
                    let x = (tx * w + (2 * sx + 1) * w / 8) / THUMB;
                    sum += u32::from(row[x.min(w - 1)]);
                }
            }
            out[ty * THUMB + tx] = (sum / 16) as u8;
        }
    }
    Some(out)
}

/// The scene test of the `scene` policy (a pass-through for the others): keeps a candidate
/// frame when its grey thumbnail changed enough since the last kept one, or enough time passed.
pub(crate) struct SceneFilter {
    policy: SamplingPolicy,
    last: Option<([u8; THUMB * THUMB], f64)>,
}

impl SceneFilter {
    /// A filter for `policy`.
    pub(crate) fn new(policy: SamplingPolicy) -> Self {
        Self { policy, last: None }
    }

    /// True when the candidate at `at_ms` is worth embedding (remembered as the last kept).
    pub(crate) fn keep(&mut self, frame: &ffmpeg::frame::Video, at_ms: f64) -> bool {
        let SamplingPolicy::Scene { threshold, max_gap } = self.policy else {
            return true;
        };
        let Some(thumb) = luma_thumbnail(frame) else {
            return true;
        };
        let keep = match &self.last {
            None => true,
            Some((prev, at)) => {
                thumbnail_change(prev, &thumb) > threshold || at_ms - at >= max_gap * 1000.0
            }
        };
        if keep {
            self.last = Some((thumb, at_ms));
        }
        keep
    }
}

/// Mean absolute difference of two thumbnails, 0 to 1.
pub fn thumbnail_change(a: &[u8], b: &[u8]) -> f32 {
    let total: u32 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u32::from(x.abs_diff(*y)))
        .sum();
    total as f32 / (a.len().max(1) as f32 * 255.0)
}

/// What one decode run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeSummary {
    /// Frames that came out of the decoder.
    pub decoded: u64,
    /// Frames sampled and handed on.
    pub kept: u64,
    /// Candidate frames the scene test found unchanged and skipped.
    pub skipped: u64,
    /// Packets the decoder rejected (corrupt data it skipped over).
    pub bad_packets: u64,
    /// Timestamp discontinuities bridged (the footage continued after the last frame).
    pub discontinuities: u64,
    /// Packets not decoded at all: they belong to a GOP before the one the next sample
    /// needs (MP4/MOV, whose index lists the keyframes), or are not keyframes under the
    /// keyframes policy.
    pub packets_skipped: u64,
    /// True when the run was stopped by the cancel flag or the consumer.
    pub stopped: bool,
    /// Time spent in pixel conversion (swscale + crop + normalise), microseconds.
    pub convert_us: u64,
    /// Time spent handing frames on (blocked on a full channel = back-pressure), microseconds.
    pub handoff_us: u64,
}

/// Facts about a file read from its container header.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    /// Duration in milliseconds when the container knows it.
    pub duration_ms: Option<u64>,
    /// Width x height of the video stream.
    pub width: u32,
    /// Height of the video stream.
    pub height: u32,
    /// Codec name.
    pub codec: String,
    /// The container's `creation_time`, ms since the epoch, when present.
    pub creation_time_ms: Option<i64>,
}

/// Initialises FFmpeg once and keeps its own logging quiet.
pub fn init_ffmpeg() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = ffmpeg::init();
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
    });
}

pub(crate) fn open(path: &Path) -> Result<(ffmpeg::format::context::Input, usize), DecodeError> {
    init_ffmpeg();
    let p = path.display().to_string();
    let ictx = ffmpeg::format::input(&path).map_err(|e| DecodeError::Open {
        path: p.clone(),
        reason: e.to_string(),
    })?;
    let index = best_video_stream(&ictx, &p)?;
    Ok((ictx, index))
}

/// The index of the best video stream of an opened input (`p` names it in errors).
pub(crate) fn best_video_stream(
    ictx: &ffmpeg::format::context::Input,
    p: &str,
) -> Result<usize, DecodeError> {
    let p = p.to_string();
    let stream = ictx
        .streams()
        .best(ffmpeg::media::Type::Video)
        .filter(|s| unsafe { (*s.parameters().as_ptr()).codec_type } == ffi::AVMediaType::AVMEDIA_TYPE_VIDEO)
        .ok_or(DecodeError::NoVideo { path: p.clone() })?;
    // Attached pictures (cover art in audio files) are not footage.
    if stream
        .disposition()
        .contains(ffmpeg::format::stream::Disposition::ATTACHED_PIC)
    {
        return Err(DecodeError::NoVideo { path: p });
    }
    Ok(stream.index())
}

/// The largest picture frameseek decodes, in pixels (8192 x 8192; 8K UHD is 7680 x 4320):
/// a bigger one is refused before the decoder allocates frames for it.
pub const MAX_PIXELS: u64 = 8192 * 8192;

/// Refuses, with a reason the user can act on, a stream no decoder in this FFmpeg build
/// handles or whose pictures are larger than [`MAX_PIXELS`].
fn check_decodable(path: &str, params: &ffmpeg::codec::Parameters) -> Result<(), DecodeError> {
    // SAFETY: `params` points at the stream's live AVCodecParameters.
    let (width, height, codec_id, tag) = unsafe {
        let p = &*params.as_ptr();
        (
            p.width.max(0) as u64,
            p.height.max(0) as u64,
            p.codec_id,
            p.codec_tag,
        )
    };
    let id = ffmpeg::codec::Id::from(codec_id);
    if id == ffmpeg::codec::Id::None || ffmpeg::decoder::find(id).is_none() {
        let fourcc: String = tag
            .to_le_bytes()
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect();
        return Err(DecodeError::Codec {
            path: path.to_string(),
            reason: format!(
                "unsupported codec ({}, tag {fourcc:?}): this FFmpeg build has no decoder \
                 for it; convert the file with the ffmpeg command (e.g. to H.264)",
                id.name()
            ),
        });
    }
    if width * height > MAX_PIXELS {
        return Err(DecodeError::Codec {
            path: path.to_string(),
            reason: format!(
                "pictures of {width}x{height} are larger than frameseek decodes (at most \
                 {MAX_PIXELS} pixels, e.g. 8192x8192); scale the file down with the ffmpeg \
                 command"
            ),
        });
    }
    Ok(())
}

/// Reads the container header: duration, size and codec of the best video stream.
pub fn probe(path: &Path) -> Result<SourceInfo, DecodeError> {
    let (ictx, index) = open(path)?;
    let stream = ictx.stream(index).expect("stream index from best()");
    let params = stream.parameters();
    // SAFETY: parameters() points at the stream's live AVCodecParameters.
    let (width, height, codec_id) = unsafe {
        let p = &*params.as_ptr();
        (p.width.max(0) as u32, p.height.max(0) as u32, p.codec_id)
    };
    let codec = ffmpeg::codec::Id::from(codec_id).name().to_string();
    let duration_ms = if ictx.duration() > 0 {
        Some((ictx.duration() as f64 * 1000.0 / ffi::AV_TIME_BASE as f64) as u64)
    } else {
        None
    };
    let creation_time_ms = ictx
        .metadata()
        .get("creation_time")
        .and_then(crate::clock::parse_iso8601)
        .or_else(|| {
            stream
                .metadata()
                .get("creation_time")
                .and_then(crate::clock::parse_iso8601)
        });
    Ok(SourceInfo {
        duration_ms,
        width,
        height,
        codec,
        creation_time_ms,
    })
}

/// Decides which frames to keep: the first frame at or after each multiple of the interval.
#[derive(Debug, Clone)]
pub struct IntervalSampler {
    interval_ms: f64,
    next_ms: f64,
    after_ms: Option<u64>,
}

impl IntervalSampler {
    /// A sampler every `interval` seconds, skipping offsets up to `resume_after_ms`.
    pub fn new(interval: f64, resume_after_ms: Option<u64>) -> Self {
        let interval_ms = interval * 1000.0;
        let next_ms = match resume_after_ms {
            Some(w) => ((w as f64 / interval_ms).floor() + 1.0) * interval_ms,
            None => 0.0,
        };
        Self {
            interval_ms,
            next_ms,
            after_ms: resume_after_ms,
        }
    }

    /// The offset the next kept frame must reach, ms.
    pub fn next_ms(&self) -> f64 {
        let after = self.after_ms.map_or(f64::MIN, |a| a as f64);
        self.next_ms.max(after)
    }

    /// True when a frame at `offset_ms` should be kept; advances past it when so.
    pub fn take(&mut self, offset_ms: f64) -> bool {
        if let Some(after) = self.after_ms {
            if offset_ms <= after as f64 {
                return false;
            }
        }
        // Half a millisecond of slack absorbs rounding in timestamp conversions.
        if offset_ms + 0.5 < self.next_ms {
            return false;
        }
        while self.next_ms <= offset_ms + 0.5 {
            self.next_ms += self.interval_ms;
        }
        true
    }
}

/// Converts decoded frames to RGB24 at the model's resize geometry, rebuilding the scaler
/// when the stream's size or format changes.
/// Decode timestamps of the stream's keyframes from an MP4/MOV sample index (ascending),
/// or nothing for other containers: their indexes (when any) do not list decode
/// timestamps, so GOP skipping there is left out rather than guessed.
fn indexed_keyframes(ictx: &ffmpeg::format::context::Input, index: usize) -> Vec<i64> {
    // SAFETY: reads of the open input's format name and of its stream's index entries,
    // which libavformat owns and does not change while nothing reads from the input.
    unsafe {
        let name = std::ffi::CStr::from_ptr((*(*ictx.as_ptr()).iformat).name);
        if !name.to_bytes().starts_with(b"mov,mp4") {
            return Vec::new();
        }
        let stream = *(*ictx.as_ptr()).streams.add(index);
        let count = ffi::avformat_index_get_entries_count(stream);
        let mut out = Vec::new();
        for i in 0..count {
            let entry = ffi::avformat_index_get_entry(stream, i);
            if !entry.is_null() && (*entry).flags() & ffi::AVINDEX_KEYFRAME != 0 {
                out.push((*entry).timestamp);
            }
        }
        out.sort_unstable();
        out
    }
}

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

pub(crate) struct FrameConverter {
    geometry: PixelGeometry,
    rotation: Rotation,
    scaler: Option<(scaling::Context, (Pixel, u32, u32))>,
    rgb: ffmpeg::frame::Video,
    turned: Vec<u8>,
}

impl FrameConverter {
    pub(crate) fn new(geometry: PixelGeometry, rotation: Rotation) -> Self {
        Self {
            geometry,
            rotation,
            scaler: None,
            rgb: ffmpeg::frame::Video::empty(),
            turned: Vec::new(),
        }
    }

    pub(crate) fn convert(
        &mut self,
        frame: &ffmpeg::frame::Video,
        out: &mut Vec<f32>,
    ) -> Result<(), ffmpeg::Error> {
        let key = (frame.format(), frame.width(), frame.height());
        let (fw, fh) = (frame.width() as usize, frame.height() as usize);
        // Sizes as shown (upright); the scaler works in the stored orientation, and only the
        // small scaled picture is turned.
        let (rw, rh) = if self.rotation.swaps_sides() {
            let (w, h) = self.geometry.resized_dims(fh, fw);
            (h, w)
        } else {
            self.geometry.resized_dims(fw, fh)
        };
        if self.scaler.as_ref().map(|(_, k)| *k != key).unwrap_or(true) {
            let flags = scaling::Flags::BICUBIC
                | scaling::Flags::ACCURATE_RND
                | scaling::Flags::FULL_CHR_H_INT;
            let mut ctx = scaling::Context::get(
                key.0,
                key.1,
                key.2,
                Pixel::RGB24,
                rw as u32,
                rh as u32,
                flags,
            )?;
            set_colour_matrix(&mut ctx, frame);
            self.scaler = Some((ctx, key));
            self.rgb = ffmpeg::frame::Video::empty();
        }
        let (ctx, _) = self.scaler.as_mut().expect("scaler set above");
        ctx.run(frame, &mut self.rgb)?;
        let stride = self.rgb.stride(0);
        if self.rotation == Rotation::None {
            self.geometry
                .crop_normalise_rgb24(self.rgb.data(0), rw, rh, stride, out);
        } else {
            self.rotation
                .apply_rgb24(self.rgb.data(0), rw, rh, stride, &mut self.turned);
            let (tw, th) = if self.rotation.swaps_sides() {
                (rh, rw)
            } else {
                (rw, rh)
            };
            self.geometry
                .crop_normalise_rgb24(&self.turned, tw, th, tw * 3, out);
        }
        Ok(())
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

/// Reads the next packet, skipping over read errors (corrupt data) until more than 100 were
/// met in all; `Ok(false)` at the end of the file.
pub(crate) fn read_packet(
    packet: &mut ffmpeg::Packet,
    ictx: &mut ffmpeg::format::context::Input,
    errors: &mut u32,
) -> Result<bool, ffmpeg::Error> {
    loop {
        match packet.read(ictx) {
            Ok(()) => return Ok(true),
            Err(ffmpeg::Error::Eof) => return Ok(false),
            Err(e) => {
                *errors += 1;
                if *errors > 100 {
                    return Err(e);
                }
            }
        }
    }
}

/// Decodes `path`, sampling frames every `options.interval` seconds by presentation time,
/// and hands each preprocessed frame to `on_frame` (which returns false to stop).
/// Corrupt packets are skipped and counted; a failure part-way reports how far it got.
/// With hardware decoding allowed, a source the hardware cannot decode before its first
/// frame is decoded again in software (logged, never fatal).
pub fn decode_samples(
    path: &Path,
    options: &SampleOptions,
    cancel: &AtomicBool,
    mut on_frame: impl FnMut(SampledFrame) -> bool,
) -> Result<DecodeSummary, DecodeError> {
    if !options.hwaccel.wants_cuda() {
        return decode_run(path, options, cancel, &mut on_frame, false);
    }
    let mut handed_on = 0u64;
    let hw = decode_run(
        path,
        options,
        cancel,
        &mut |f| {
            handed_on += 1;
            on_frame(f)
        },
        true,
    );
    let failed_early = match &hw {
        Ok(s) => s.decoded == 0 && !s.stopped,
        Err(DecodeError::Open { .. } | DecodeError::NoVideo { .. }) => false,
        Err(_) => true,
    };
    if failed_early && handed_on == 0 {
        let reason = match &hw {
            Ok(_) => "no frame came out of the hardware decoder".to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(path = %path.display(), %reason, "hardware decoding failed, decoding in software");
        return decode_run(path, options, cancel, &mut on_frame, false);
    }
    hw
}

fn decode_run(
    path: &Path,
    options: &SampleOptions,
    cancel: &AtomicBool,
    on_frame: &mut dyn FnMut(SampledFrame) -> bool,
    try_hw: bool,
) -> Result<DecodeSummary, DecodeError> {
    let p = path.display().to_string();
    let (mut ictx, index) = open(path)?;
    let (time_base, start_pts, avg_rate, rotation) = {
        let stream = ictx.stream(index).expect("stream index from best()");
        (
            stream.time_base(),
            stream.start_time(),
            stream.avg_frame_rate(),
            Rotation::of_stream(&stream),
        )
    };
    let codec_err = |e: ffmpeg::Error| DecodeError::Codec {
        path: p.clone(),
        reason: e.to_string(),
    };
    let params = ictx
        .stream(index)
        .expect("stream index from best()")
        .parameters();
    check_decodable(&p, &params)?;
    let mut context =
        ffmpeg::codec::context::Context::from_parameters(params).map_err(codec_err)?;
    let hw = try_hw && hw::attach_cuda(&mut context, path);
    context.set_threading(ffmpeg::codec::threading::Config {
        kind: ffmpeg::codec::threading::Type::Frame,
        // The hardware decodes; FFmpeg's frame threads would only queue surfaces.
        count: if hw { 1 } else { options.decoder_threads },
        ..Default::default()
    });
    let mut decoder = context.decoder().video().map_err(codec_err)?;
    if options.policy == SamplingPolicy::Keyframes {
        decoder.skip_frame(ffmpeg::codec::discard::Discard::NonKey);
    }
    let mut scene = SceneFilter::new(options.policy);
    let tb = f64::from(time_base.numerator()) / f64::from(time_base.denominator()).max(1.0);
    let frame_ms = if avg_rate.numerator() > 0 && avg_rate.denominator() > 0 {
        1000.0 * f64::from(avg_rate.denominator()) / f64::from(avg_rate.numerator())
    } else {
        40.0
    };
    let mut origin: Option<i64> = (start_pts != ffi::AV_NOPTS_VALUE).then_some(start_pts);
    // Added to every timestamp-derived offset after a discontinuity was bridged (shared with
    // the packet loop, which skips whole GOPs by timestamp).
    let shift_ms = std::cell::Cell::new(0.0f64);
    let keyframes = indexed_keyframes(&ictx, index);
    // The largest presentation delay (pts - dts) of a keyframe so far: bounds the next
    // keyframe's pts (an encoder delays every keyframe by the same amount).
    let mut reorder: i64 = 0;
    // Containers whose timestamps may jump (MPEG-TS): a forward jump is a discontinuity too.
    // SAFETY: plain read of the open input's format flags.
    let discontinuous = unsafe { (*(*ictx.as_ptr()).iformat).flags & ffi::AVFMT_TS_DISCONT != 0 };
    let mut sampler = IntervalSampler::new(options.interval, options.resume_after_ms);
    let mut converter = FrameConverter::new(options.geometry.clone(), rotation);
    let mut summary = DecodeSummary::default();
    let mut last_ms: f64 = -1.0;
    let mut frame = ffmpeg::frame::Video::empty();
    let mut system_frame = ffmpeg::frame::Video::empty();
    let mut packet = ffmpeg::Packet::empty();
    let mut read_errors = 0u32;
    // (last decoded offset, next sample target), read by the packet loop to decide whether
    // frames nobody references can be skipped.
    let position = std::cell::Cell::new((-1.0f64, 0.0f64));

    let mut drain = |decoder: &mut ffmpeg::decoder::Video,
                     summary: &mut DecodeSummary|
     -> Result<bool, DecodeError> {
        while decoder.receive_frame(&mut frame).is_ok() {
            summary.decoded += 1;
            let offset_ms = match frame.timestamp() {
                Some(ts) => {
                    let origin = *origin.get_or_insert(ts);
                    (ts - origin) as f64 * tb * 1000.0 + shift_ms.get()
                }
                None => last_ms + frame_ms,
            };
            if last_ms < 0.0 {
                // Frames before the start time (edit lists, pre-roll) are not footage.
                if offset_ms < -0.5 {
                    continue;
                }
                last_ms = offset_ms.max(0.0);
            } else if offset_ms < last_ms - REANCHOR_BACK_MS
                || (discontinuous && offset_ms > last_ms + REANCHOR_FORWARD_MS)
            {
                // A timestamp discontinuity (concatenated or restarted MPEG-TS, a clock
                // reset): the footage goes on one frame after the last one, and the following
                // frames keep their spacing from this one.
                let next = last_ms + frame_ms;
                shift_ms.set(shift_ms.get() + next - offset_ms);
                summary.discontinuities += 1;
                last_ms = next;
            } else if offset_ms <= last_ms {
                // A small step back or a repeated timestamp: one frame after the last one.
                last_ms += frame_ms;
            } else {
                last_ms = offset_ms;
            }
            let taken = sampler.take(last_ms);
            position.set((last_ms, sampler.next_ms()));
            if !taken {
                continue;
            }
            let source = if hw::is_on_device(&frame) {
                // Only sampled frames leave the GPU.
                hw::download(&frame, &mut system_frame).map_err(|e| DecodeError::Stream {
                    path: p.clone(),
                    at_ms: last_ms as u64,
                    reason: format!("cannot copy a frame from the GPU: {e}"),
                })?;
                &system_frame
            } else {
                &frame
            };
            if !scene.keep(source, last_ms) {
                summary.skipped += 1;
                continue;
            }
            let mut pixels = Vec::with_capacity(options.geometry.values_per_image());
            let t = Instant::now();
            converter
                .convert(source, &mut pixels)
                .map_err(|e| DecodeError::Stream {
                    path: p.clone(),
                    at_ms: last_ms as u64,
                    reason: format!("pixel conversion failed: {e}"),
                })?;
            summary.convert_us += t.elapsed().as_micros() as u64;
            summary.kept += 1;
            let t = Instant::now();
            let go_on = on_frame(SampledFrame {
                offset_ms: last_ms.round() as u64,
                pixels,
            });
            summary.handoff_us += t.elapsed().as_micros() as u64;
            if !go_on {
                return Ok(false);
            }
        }
        Ok(true)
    };

    loop {
        if cancel.load(Ordering::Relaxed) {
            summary.stopped = true;
            return Ok(summary);
        }
        match read_packet(&mut packet, &mut ictx, &mut read_errors) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                return Err(DecodeError::Stream {
                    path: p.clone(),
                    at_ms: last_ms.max(0.0) as u64,
                    reason: e.to_string(),
                })
            }
        }
        if packet.stream() != index {
            continue;
        }
        // The offset of a packet's frame, ms (as the frames' offsets are computed).
        let packet_ms = |packet: &ffmpeg::Packet| {
            packet
                .pts()
                .filter(|_| start_pts != ffi::AV_NOPTS_VALUE)
                .map(|pts| (pts - start_pts) as f64 * tb * 1000.0 + shift_ms.get())
        };
        // A packet before a keyframe that is itself at or before the next sample target
        // belongs to a GOP no sample needs: it is not decoded at all (MP4/MOV index).
        if let (Some(dts), Some(pts), true) = (packet.dts(), packet.pts(), packet.is_key()) {
            reorder = reorder.max(pts - dts);
        }
        // Under the keyframes policy the decoder would discard every other packet anyway;
        // not sending them keeps its frame threads busy with keyframes only.
        if options.policy == SamplingPolicy::Keyframes && !packet.is_key() {
            summary.packets_skipped += 1;
            continue;
        }
        if !keyframes.is_empty() && !packet.is_key() && start_pts != ffi::AV_NOPTS_VALUE {
            let (seen, next) = position.get();
            if let Some(dts) = packet.dts().filter(|_| seen >= 0.0) {
                let after = keyframes.partition_point(|&k| k <= dts);
                if let Some(&k) = keyframes.get(after) {
                    // The keyframe's presentation offset is at most its decode time plus the
                    // largest presentation delay seen.
                    let latest_ms = (k + reorder - start_pts) as f64 * tb * 1000.0 + shift_ms.get();
                    if latest_ms <= next + 0.5 {
                        summary.packets_skipped += 1;
                        // The stream has moved on even though no frame came out.
                        if let Some(at) = packet_ms(&packet) {
                            position.set((seen.max(at), next));
                        }
                        continue;
                    }
                }
            }
        }
        // Between samples, frames no other frame references (most B-frames) need not be
        // decoded at all. The packet's own timestamp says where its frame is; near a sample
        // target every frame is decoded, so the sampled frames are exactly the same.
        if options.policy != SamplingPolicy::Keyframes {
            let (seen, next) = position.get();
            let far = match packet_ms(&packet) {
                // Only when the packet's offset is plausible next to what was decoded (around
                // a discontinuity it is not).
                Some(at) if seen >= 0.0 => {
                    next - at > SKIP_MARGIN_FRAMES * frame_ms
                        && at >= seen - REANCHOR_BACK_MS
                        && at <= seen + REANCHOR_FORWARD_MS
                }
                _ => false,
            };
            decoder.skip_frame(if far {
                ffmpeg::codec::discard::Discard::NonReference
            } else {
                ffmpeg::codec::discard::Discard::Default
            });
        }
        if decoder.send_packet(&packet).is_err() {
            summary.bad_packets += 1;
            continue;
        }
        if !drain(&mut decoder, &mut summary)? {
            summary.stopped = true;
            return Ok(summary);
        }
    }
    let _ = decoder.send_eof();
    if !drain(&mut decoder, &mut summary)? {
        summary.stopped = true;
    }
    Ok(summary)
}

// ---- issue 9 (branch `cuda`): hardware decoding through FFmpeg's CUDA hwaccel ----

/// Hardware decoding policy, `ingest.hwaccel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HwAccel {
    /// CUDA/NVDEC in a build with the `cuda` feature, software otherwise.
    #[default]
    Auto,
    /// Try CUDA/NVDEC in any build.
    Cuda,
    /// Software decoding only.
    None,
}

impl HwAccel {
    /// Parses `auto`, `cuda` or `none`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "auto" => Ok(Self::Auto),
            "cuda" => Ok(Self::Cuda),
            "none" => Ok(Self::None),
            _ => Err("expected auto, cuda or none".into()),
        }
    }

    /// True when decoding should try the CUDA hwaccel first.
    pub fn wants_cuda(self) -> bool {
        match self {
            Self::Auto => cfg!(feature = "cuda"),
            Self::Cuda => true,
            Self::None => false,
        }
    }
}

mod hw {
    use std::path::Path;

    use super::{ffi, ffmpeg};

    /// Attaches a CUDA device to the decoder when the decoder has a CUDA hwaccel and FFmpeg
    /// can open the device; logs and returns false (software decoding) otherwise.
    pub(super) fn attach_cuda(context: &mut ffmpeg::codec::context::Context, path: &Path) -> bool {
        match try_attach(context) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "hardware decoding (cuda)");
                true
            }
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "hardware decoding unavailable, decoding in software");
                false
            }
        }
    }

    fn try_attach(context: &mut ffmpeg::codec::context::Context) -> Result<(), String> {
        // SAFETY: FFmpeg calls on the live, not yet opened codec context; the device
        // reference is handed to the context, which releases it when freed.
        unsafe {
            let ctx = context.as_mut_ptr();
            let codec = ffi::avcodec_find_decoder((*ctx).codec_id);
            if codec.is_null() {
                return Err("no decoder for this codec".into());
            }
            let mut supported = false;
            for i in 0.. {
                let config = ffi::avcodec_get_hw_config(codec, i);
                if config.is_null() {
                    break;
                }
                let by_device = (*config).methods
                    & ffi::AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX as libc::c_int
                    != 0;
                if by_device && (*config).device_type == ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_CUDA
                {
                    supported = true;
                    break;
                }
            }
            if !supported {
                let name = std::ffi::CStr::from_ptr((*codec).name).to_string_lossy();
                return Err(format!(
                    "FFmpeg's {name} decoder has no CUDA hwaccel in these libraries"
                ));
            }
            let mut device: *mut ffi::AVBufferRef = std::ptr::null_mut();
            let rc = ffi::av_hwdevice_ctx_create(
                &mut device,
                ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_CUDA,
                std::ptr::null(),
                std::ptr::null_mut(),
                0,
            );
            if rc < 0 || device.is_null() {
                return Err(format!(
                    "cannot open a CUDA device: {}",
                    ffmpeg::Error::from(rc)
                ));
            }
            (*ctx).hw_device_ctx = device;
            (*ctx).get_format = Some(pick_format);
        }
        Ok(())
    }

    /// FFmpeg's format negotiation: CUDA surfaces when offered (the hwaccel accepted the
    /// stream), else FFmpeg's default software format.
    unsafe extern "C" fn pick_format(
        ctx: *mut ffi::AVCodecContext,
        formats: *const ffi::AVPixelFormat,
    ) -> ffi::AVPixelFormat {
        let mut p = formats;
        // SAFETY: FFmpeg passes a list terminated by AV_PIX_FMT_NONE.
        unsafe {
            while *p != ffi::AVPixelFormat::AV_PIX_FMT_NONE {
                if *p == ffi::AVPixelFormat::AV_PIX_FMT_CUDA {
                    return *p;
                }
                p = p.add(1);
            }
            tracing::warn!("the hardware decoder refused this stream, decoding in software");
            ffi::avcodec_default_get_format(ctx, formats)
        }
    }

    /// True when the frame's pixels are in GPU memory.
    pub(super) fn is_on_device(frame: &ffmpeg::frame::Video) -> bool {
        // SAFETY: a plain read of the frame's format field.
        unsafe { (*frame.as_ptr()).format == ffi::AVPixelFormat::AV_PIX_FMT_CUDA as libc::c_int }
    }

    /// Copies a GPU frame to system memory (NV12 or P010), keeping its timing and colour tags.
    pub(super) fn download(
        frame: &ffmpeg::frame::Video,
        out: &mut ffmpeg::frame::Video,
    ) -> Result<(), ffmpeg::Error> {
        // SAFETY: both frames are live; FFmpeg allocates `out`'s buffers.
        unsafe {
            ffi::av_frame_unref(out.as_mut_ptr());
            let rc = ffi::av_hwframe_transfer_data(out.as_mut_ptr(), frame.as_ptr(), 0);
            if rc < 0 {
                return Err(ffmpeg::Error::from(rc));
            }
            let rc = ffi::av_frame_copy_props(out.as_mut_ptr(), frame.as_ptr());
            if rc < 0 {
                return Err(ffmpeg::Error::from(rc));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn sample_times(interval: f64, frames: &[f64], resume: Option<u64>) -> Vec<f64> {
        let mut s = IntervalSampler::new(interval, resume);
        frames.iter().copied().filter(|&t| s.take(t)).collect()
    }

    #[test]
    fn ntsc_rate_samples_once_per_second_by_timestamp() {
        let frames: Vec<f64> = (0..1798).map(|i| i as f64 * 1001.0 / 30.0).collect();
        let kept = sample_times(1.0, &frames, None);
        assert_eq!(kept.len(), 60);
        for (k, t) in kept.iter().enumerate() {
            assert!(
                *t >= k as f64 * 1000.0 - 0.5 && *t < k as f64 * 1000.0 + 34.0,
                "sample {k} at {t}"
            );
        }
    }

    #[test]
    fn variable_frame_rate_gaps_do_not_cause_bursts() {
        // 10 fps for 2 s, a 3.5 s gap, then 10 fps again.
        let mut frames: Vec<f64> = (0..20).map(|i| i as f64 * 100.0).collect();
        frames.extend((0..20).map(|i| 5500.0 + i as f64 * 100.0));
        assert_eq!(
            sample_times(1.0, &frames, None),
            vec![0.0, 1000.0, 5500.0, 6000.0, 7000.0]
        );
    }

    #[test]
    fn thumbnail_change_is_a_mean_absolute_difference() {
        assert_eq!(thumbnail_change(&[0, 0], &[0, 0]), 0.0);
        assert!((thumbnail_change(&[0, 255], &[255, 255]) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn resume_skips_what_was_committed() {
        let frames: Vec<f64> = (0..100).map(|i| i as f64 * 100.0).collect();
        assert_eq!(
            sample_times(1.0, &frames, Some(5000)),
            vec![6000.0, 7000.0, 8000.0, 9000.0]
        );
    }
}
