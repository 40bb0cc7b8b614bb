//! Reading footage back out of source files: a time range remuxed by stream copy (no
//! re-encode; it starts at the keyframe at or before the range, so the range actually written
//! is reported), and one frame as a JPEG image.
//!
//! Offsets are milliseconds from the video stream's start, as everywhere in frameseek.

use std::path::Path;

use ffmpeg::ffi;
use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use crate::decode::convert::{set_colour_matrix, Rotation};
use crate::decode::stream::{open_decoder, DecoderSetup, StreamClock};
use crate::decode::{open, read_packet, DecodeError};
use crate::embed::Region;

pub mod export;

/// Why a clip or a frame could not be read out of a file.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The file could not be opened or has no video.
    #[error(transparent)]
    Open(#[from] DecodeError),
    /// The requested time lies outside the file.
    #[error("{path}: {what} is outside the file, which lasts {duration_ms} ms")]
    OutOfRange {
        /// The file.
        path: String,
        /// The requested time or range, in words.
        what: String,
        /// The file's duration, ms.
        duration_ms: u64,
    },
    /// FFmpeg failed while reading, decoding or writing.
    #[error("{path}: {what}: {reason}")]
    Failed {
        /// The file being read or written.
        path: String,
        /// The step that failed.
        what: &'static str,
        /// FFmpeg's reason.
        reason: String,
    },
}

/// What a remux wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenClip {
    /// Offset of the first frame written (the keyframe at or before the requested start), ms.
    pub start_ms: u64,
    /// End of the last frame written, ms.
    pub end_ms: u64,
    /// The requested end, capped at the file's duration, ms.
    pub requested_end_ms: u64,
    /// Video packets written.
    pub video_packets: u64,
    /// The video codec (unchanged from the source).
    pub codec: String,
}

/// One frame, encoded as JPEG.
#[derive(Debug, Clone)]
pub struct FrameJpeg {
    /// Offset of the frame, ms (the first frame at or after the requested time).
    pub at_ms: u64,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// The JPEG bytes.
    pub jpeg: Vec<u8>,
}

fn failed<'a>(path: &'a Path, what: &'static str) -> impl Fn(ffmpeg::Error) -> MediaError + 'a {
    move |e| MediaError::Failed {
        path: path.display().to_string(),
        what,
        reason: e.to_string(),
    }
}

/// The container's duration in ms, when known.
fn duration_ms(ictx: &ffmpeg::format::context::Input) -> Option<u64> {
    (ictx.duration() > 0)
        .then(|| (ictx.duration() as f64 * 1000.0 / ffi::AV_TIME_BASE as f64) as u64)
}

/// Seeks the input so that the next video packet is the keyframe at or before `ts`.
fn seek_to_keyframe(
    ictx: &mut ffmpeg::format::context::Input,
    index: usize,
    ts: i64,
    path: &Path,
) -> Result<(), MediaError> {
    // SAFETY: a call on the live format context with one of its stream indices.
    let r =
        unsafe { ffi::avformat_seek_file(ictx.as_mut_ptr(), index as i32, i64::MIN, ts, ts, 0) };
    if r < 0 {
        return Err(failed(path, "seeking")(ffmpeg::Error::from(r)));
    }
    Ok(())
}

/// Checks a requested range against the file's duration; returns the end clamped to it.
fn check_range(
    path: &Path,
    duration: Option<u64>,
    start_ms: u64,
    end_ms: u64,
) -> Result<u64, MediaError> {
    match duration {
        Some(d) if start_ms >= d => Err(MediaError::OutOfRange {
            path: path.display().to_string(),
            what: format!("the range {start_ms}-{end_ms} ms"),
            duration_ms: d,
        }),
        Some(d) => Ok(end_ms.min(d)),
        None => Ok(end_ms),
    }
}

/// Copies the video stream (and audio streams) of `input` from the keyframe at or before
/// `start_ms` through `end_ms` into `output` (container chosen by its extension), without
/// re-encoding. Timestamps are shifted so the clip starts at zero.
pub fn remux_range(
    input: &Path,
    output: &Path,
    start_ms: u64,
    end_ms: u64,
) -> Result<WrittenClip, MediaError> {
    let (mut ictx, vindex) = open(input)?;
    let end_ms = check_range(input, duration_ms(&ictx), start_ms, end_ms)?;
    let clock = StreamClock::of(&ictx.stream(vindex).expect("index from open()"));
    let codec = {
        let params = ictx.stream(vindex).expect("index from open()").parameters();
        params.id().name().to_string()
    };
    let out_err = failed(output, "writing the clip");
    let mut octx = ffmpeg::format::output(&output).map_err(&out_err)?;
    // Input stream index -> (output stream index, input time base).
    let mut map: Vec<Option<(usize, ffmpeg::Rational)>> = vec![None; ictx.nb_streams() as usize];
    for ist in ictx.streams() {
        let medium = ist.parameters().medium();
        if ist.index() != vindex && medium != ffmpeg::media::Type::Audio {
            continue;
        }
        let mut ost = octx
            .add_stream(ffmpeg::encoder::find(ffmpeg::codec::Id::None))
            .map_err(&out_err)?;
        ost.set_parameters(ist.parameters());
        // SAFETY: the output stream's parameters are live; a zero tag lets the muxer choose.
        unsafe { (*ost.parameters().as_mut_ptr()).codec_tag = 0 };
        // SAFETY: `ost` is a live stream of the output context.
        copy_stream_side_data(&ist, unsafe { ost.as_mut_ptr() });
        map[ist.index()] = Some((ost.index(), ist.time_base()));
    }
    octx.set_metadata(ictx.metadata().to_owned());
    octx.write_header().map_err(&out_err)?;

    let end_ts = clock.ts_at(end_ms);
    seek_to_keyframe(&mut ictx, vindex, clock.ts_at(start_ms), input)?;
    let read_err = failed(input, "reading");
    let mut packet = ffmpeg::Packet::empty();
    // Timestamp (video time base) every stream is shifted by: the first keyframe's dts.
    let mut shift: Option<i64> = None;
    let mut first_pts: Option<i64> = None;
    let mut last_end: i64 = 0;
    let mut video_packets = 0u64;
    let mut read_errors = 0;
    let vtb = ictx.stream(vindex).expect("index from open()").time_base();
    loop {
        if !read_packet(&mut packet, &mut ictx, &mut read_errors).map_err(&read_err)? {
            break;
        }
        let Some((oindex, itb)) = map.get(packet.stream()).copied().flatten() else {
            continue;
        };
        let is_video = packet.stream() == vindex;
        if is_video {
            let dts = packet.dts().or(packet.pts()).unwrap_or(0);
            if shift.is_none() {
                if !packet.is_key() {
                    continue;
                }
                shift = Some(dts);
                first_pts = Some(packet.pts().unwrap_or(dts));
            }
            // Every frame shown before the end has its dts (and its references') before it.
            if dts >= end_ts {
                break;
            }
            let pts = packet.pts().unwrap_or(dts);
            last_end = last_end.max(pts + packet.duration().max(0));
            video_packets += 1;
        } else {
            let Some(shift) = shift else { continue };
            let pts = packet.pts().or(packet.dts()).unwrap_or(0);
            let pts_v = rescale(pts, itb, vtb);
            if pts_v < first_pts.unwrap_or(shift) || pts_v >= end_ts {
                continue;
            }
        }
        let shift_here = rescale(shift.expect("set by the first keyframe"), vtb, itb);
        if let Some(p) = packet.pts() {
            packet.set_pts(Some(p - shift_here));
        }
        if let Some(d) = packet.dts() {
            packet.set_dts(Some(d - shift_here));
        }
        let otb = octx.stream(oindex).expect("added above").time_base();
        packet.rescale_ts(itb, otb);
        packet.set_stream(oindex);
        packet.set_position(-1);
        packet.write_interleaved(&mut octx).map_err(&out_err)?;
    }
    octx.write_trailer().map_err(&out_err)?;
    let Some(first_pts) = first_pts else {
        return Err(MediaError::Failed {
            path: input.display().to_string(),
            what: "finding a keyframe",
            reason: format!("no video keyframe at or before {start_ms} ms"),
        });
    };
    Ok(WrittenClip {
        start_ms: clock.ms_at(first_pts).max(0.0).round() as u64,
        end_ms: clock.ms_at(last_end).max(0.0).round() as u64,
        requested_end_ms: end_ms,
        video_packets,
        codec,
    })
}

/// Copies stream-level side data (such as a phone video's display matrix, which players use
/// to show it upright) to an output stream. FFmpeg 6.1 and later keep it in the codec
/// parameters, which `set_parameters` copies; older versions keep it on the stream.
/// `av_stream_new_side_data` is looked up at run time, as FFmpeg 8 no longer has it.
fn copy_stream_side_data(ist: &ffmpeg::format::stream::Stream, ost: *mut ffi::AVStream) {
    // SAFETY: a plain version query.
    let version = unsafe { ffi::avformat_version() };
    if (version >> 16, (version >> 8) & 0xff) >= (60, 16) {
        return;
    }
    type NewSideData = unsafe extern "C" fn(*mut ffi::AVStream, std::ffi::c_int, usize) -> *mut u8;
    // SAFETY: dlsym with RTLD_DEFAULT (null on glibc) and a NUL-terminated name; the symbol,
    // when present, has the signature above (FFmpeg 5.0 to 7.1).
    let new_side_data: NewSideData = unsafe {
        let sym = libc::dlsym(std::ptr::null_mut(), c"av_stream_new_side_data".as_ptr());
        if sym.is_null() {
            return;
        }
        std::mem::transmute::<*mut std::ffi::c_void, NewSideData>(sym)
    };
    for side in ist.side_data() {
        let data = side.data();
        let kind: ffi::AVPacketSideDataType = side.kind().into();
        // SAFETY: the returned buffer holds `data.len()` bytes, owned by the stream.
        unsafe {
            let dst = new_side_data(ost, kind as std::ffi::c_int, data.len());
            if !dst.is_null() {
                std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len());
            }
        }
    }
}

fn rescale(ts: i64, from: ffmpeg::Rational, to: ffmpeg::Rational) -> i64 {
    // SAFETY: pure arithmetic.
    unsafe { ffi::av_rescale_q(ts, from.into(), to.into()) }
}

/// Decodes the first frame at or after `at_ms` (the last frame when `at_ms` falls after it)
/// and encodes it as JPEG, scaled to at most `max_width` pixels wide (aspect kept).
pub fn frame_jpeg(
    path: &Path,
    at_ms: u64,
    max_width: Option<u32>,
    outline: Option<Region>,
) -> Result<FrameJpeg, MediaError> {
    let (mut ictx, vindex) = open(path)?;
    check_range(path, duration_ms(&ictx), at_ms, at_ms)?;
    let stream = ictx.stream(vindex).expect("index from open()");
    let clock = StreamClock::of(&stream);
    let rotation = Rotation::of_stream(&stream);
    let codec_err = failed(path, "decoding");
    let (mut decoder, _) =
        open_decoder(&ictx, vindex, path, DecoderSetup::default()).map_err(&codec_err)?;
    seek_to_keyframe(&mut ictx, vindex, clock.ts_at(at_ms), path)?;
    let mut packet = ffmpeg::Packet::empty();
    let mut frame = ffmpeg::frame::Video::empty();
    let mut best: Option<(ffmpeg::frame::Video, f64)> = None;
    let mut eof = false;
    let mut read_errors = 0;
    'read: loop {
        if !eof {
            if read_packet(&mut packet, &mut ictx, &mut read_errors).map_err(&codec_err)? {
                if packet.stream() != vindex {
                    continue;
                }
                let _ = decoder.send_packet(&packet);
            } else {
                eof = true;
                let _ = decoder.send_eof();
            }
        }
        let mut got = false;
        while decoder.receive_frame(&mut frame).is_ok() {
            got = true;
            let ms = frame.timestamp().map(|ts| clock.ms_at(ts)).unwrap_or(0.0);
            let done = ms + 0.5 >= at_ms as f64;
            best = Some((frame.clone(), ms));
            if done {
                break 'read;
            }
        }
        if eof && !got {
            break;
        }
    }
    let Some((frame, ms)) = best else {
        return Err(MediaError::Failed {
            path: path.display().to_string(),
            what: "decoding",
            reason: format!("no frame could be decoded near {at_ms} ms"),
        });
    };
    let (w, h) = (frame.width().max(1), frame.height().max(1));
    // `max_width` bounds the width as shown (after rotation).
    let swap = rotation.swaps_sides();
    let (dw, dh) = if swap { (h, w) } else { (w, h) };
    let (tw, th) = match max_width {
        Some(m) if m > 0 && m < dw => (
            m,
            ((u64::from(dh) * u64::from(m) / u64::from(dw)).max(1)) as u32,
        ),
        _ => (dw, dh),
    };
    let (ow, oh) = if swap { (th, tw) } else { (tw, th) };
    let mut scaler = scaling::Context::get(
        frame.format(),
        w,
        h,
        Pixel::RGB24,
        ow,
        oh,
        scaling::Flags::BICUBIC | scaling::Flags::ACCURATE_RND | scaling::Flags::FULL_CHR_H_INT,
    )
    .map_err(failed(path, "converting the frame"))?;
    set_colour_matrix(&mut scaler, &frame);
    let mut rgb = ffmpeg::frame::Video::empty();
    scaler
        .run(&frame, &mut rgb)
        .map_err(failed(path, "converting the frame"))?;
    // Shown upright, as the `ffmpeg` command's autorotate does.
    let mut tight = Vec::new();
    rotation.apply_rgb24(
        rgb.data(0),
        ow as usize,
        oh as usize,
        rgb.stride(0),
        &mut tight,
    );
    let (ow, oh) = (tw, th);
    if let Some(r) = outline {
        draw_outline(&mut tight, ow as usize, oh as usize, r);
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 88)
        .encode(&tight, ow, oh, image::ExtendedColorType::Rgb8)
        .map_err(|e| MediaError::Failed {
            path: path.display().to_string(),
            what: "encoding the JPEG",
            reason: e.to_string(),
        })?;
    Ok(FrameJpeg {
        at_ms: ms.max(0.0).round() as u64,
        width: ow,
        height: oh,
        jpeg,
    })
}

/// Colour of the box drawn around a region (bright yellow: rare in footage, seen on any).
pub const OUTLINE_RGB: [u8; 3] = [255, 230, 0];

/// Draws the outline of `region` (fractions of the picture) into a packed RGB24 picture of
/// `width` x `height`, lines about 1/150 of the short side thick (at least 2 pixels), inside
/// the region's edges.
pub fn draw_outline(rgb: &mut [u8], width: usize, height: usize, region: Region) {
    if width == 0 || height == 0 {
        return;
    }
    let thick = (width.min(height) / 150).max(2);
    let px = |f: f32, n: usize| ((f.clamp(0.0, 1.0) * n as f32).round() as usize).min(n);
    let (x0, x1) = (px(region.x, width), px(region.x + region.w, width));
    let (y0, y1) = (px(region.y, height), px(region.y + region.h, height));
    if x1 <= x0 || y1 <= y0 {
        return;
    }
    for y in y0..y1 {
        for x in x0..x1 {
            let edge = x < x0 + thick || x + thick >= x1 || y < y0 + thick || y + thick >= y1;
            if edge {
                let i = (y * width + x) * 3;
                rgb[i..i + 3].copy_from_slice(&OUTLINE_RGB);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outline_is_drawn_on_the_regions_edges_only() {
        let (w, h) = (300, 200);
        let mut rgb = vec![0u8; w * h * 3];
        let region = Region {
            x: 0.5,
            y: 0.0,
            w: 0.5,
            h: 1.0,
        };
        draw_outline(&mut rgb, w, h, region);
        let at = |x: usize, y: usize| &rgb[(y * w + x) * 3..(y * w + x) * 3 + 3];
        assert_eq!(at(150, 100), OUTLINE_RGB, "left edge of the box");
        assert_eq!(at(299, 100), OUTLINE_RGB, "right edge");
        assert_eq!(at(200, 0), OUTLINE_RGB, "top edge");
        assert_eq!(at(225, 100), [0, 0, 0], "inside stays");
        assert_eq!(at(100, 100), [0, 0, 0], "outside stays");
    }

    #[test]
    fn ranges_past_the_end_are_refused_and_long_ends_clamped() {
        let p = Path::new("/x.mp4");
        assert_eq!(check_range(p, Some(10_000), 2_000, 50_000).unwrap(), 10_000);
        assert_eq!(check_range(p, None, 2_000, 50_000).unwrap(), 50_000);
        let e = check_range(p, Some(10_000), 10_000, 12_000).unwrap_err();
        assert!(e.to_string().contains("lasts 10000 ms"), "{e}");
    }

    #[test]
    fn the_stream_clock_converts_both_ways() {
        let c = StreamClock {
            tb: 1.0 / 12_800.0,
            start: Some(1024),
        };
        assert_eq!(c.ts_at(1000), 1024 + 12_800);
        assert_eq!(c.ms_at(1024 + 6_400), 500.0);
        let unknown = StreamClock {
            tb: 1.0 / 1000.0,
            start: None,
        };
        assert_eq!(unknown.ts_at(250), 250);
    }
}
