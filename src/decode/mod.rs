//! The decode stage: FFmpeg opens a file or stream, demuxes and decodes its best video
//! stream; [`sample`] chooses frames by presentation timestamp; [`convert`] turns each chosen
//! frame into the model's input in one swscale pass. One path opens decoders and reads time
//! bases ([`stream`]) for files ([`file`]), live streams (`source::live`) and export (`media`).

use std::path::Path;
use std::sync::Once;

use ffmpeg::ffi;
use ffmpeg_next as ffmpeg;

use crate::embed::PixelGeometry;

pub(crate) mod convert;
mod file;
mod hw;
pub mod sample;
pub(crate) mod stream;

pub use file::decode_samples;
pub use hw::HwAccel;
pub use sample::{IntervalSampler, SamplingMode, SamplingPolicy};

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
    /// Reading the file (probe, metadata, decode) panicked; the panic was caught and the
    /// reader went on with the next source.
    #[error("{path}: reading the file panicked: {reason}")]
    Panicked {
        /// The file.
        path: String,
        /// The panic's message.
        reason: String,
    },
}

/// The message of a caught panic's payload (`panic!("...")` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// One sampled frame, preprocessed for the model.
#[derive(Debug, Clone)]
pub struct SampledFrame {
    /// Presentation time relative to the start of the stream, in milliseconds.
    pub offset_ms: u64,
    /// Channels-first normalised pixels, `3 * crop * crop` values per view, view after view.
    pub pixels: Vec<f32>,
    /// Where each view lies in the frame (one per block of `pixels`).
    pub regions: Vec<crate::embed::Region>,
}

/// A decode's sign of life: when it last read a packet (or started), for the watch that
/// tells a hung read (a dead network mount) from a slow one.
#[derive(Debug, Default)]
pub struct Heartbeat {
    /// Milliseconds since the Unix epoch of the last beat; 0 while idle.
    last_ms: std::sync::atomic::AtomicU64,
}

impl Heartbeat {
    /// Records a sign of life now.
    pub fn beat(&self) {
        let now = crate::clock::now_ms().max(1) as u64;
        self.last_ms
            .store(now, std::sync::atomic::Ordering::Relaxed);
    }

    /// Marks the decode as done: an idle worker is never silent.
    pub fn idle(&self) {
        self.last_ms.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long since the last beat, while busy; `None` while idle.
    pub fn silent_for(&self) -> Option<std::time::Duration> {
        let last = self.last_ms.load(std::sync::atomic::Ordering::Relaxed);
        (last > 0).then(|| {
            std::time::Duration::from_millis((crate::clock::now_ms() as u64).saturating_sub(last))
        })
    }
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
    /// Beaten at each packet read, when set.
    pub heartbeat: Option<std::sync::Arc<Heartbeat>>,
}

/// The sampling settings in force for one source: a camera's own, else `[ingest]`'s.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSettings {
    /// Seconds between samples.
    pub interval: f64,
    /// Which frames are embedded.
    pub policy: SamplingPolicy,
    /// Pattern finding a file's wall-clock time in its path (empty for none).
    pub time_pattern: String,
    /// The time zone of the times in file names.
    pub time_zone: jiff::tz::TimeZone,
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

/// The FFmpeg protocols a file source may open (`protocol_whitelist`).
pub const FILE_PROTOCOLS: &str = "file";

/// Opens a file with FFmpeg (file protocol only) and finds its best video stream.
pub(crate) fn open(path: &Path) -> Result<(ffmpeg::format::context::Input, usize), DecodeError> {
    init_ffmpeg();
    let p = path.display().to_string();
    // A file may only read files: a playlist or concat list under a footage root must not
    // make FFmpeg open network protocols.
    let mut options = ffmpeg::Dictionary::new();
    options.set("protocol_whitelist", FILE_PROTOCOLS);
    let ictx =
        ffmpeg::format::input_with_dictionary(&path, options).map_err(|e| DecodeError::Open {
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

/// Reads the container header: duration, size and codec of the best video stream. A panic
/// while reading it (a hostile header or tag) is caught and returned as
/// [`DecodeError::Panicked`], so no caller (a decode worker, a live source's thread) dies of it.
pub fn probe(path: &Path) -> Result<SourceInfo, DecodeError> {
    std::panic::catch_unwind(|| probe_header(path)).unwrap_or_else(|payload| {
        Err(DecodeError::Panicked {
            path: path.display().to_string(),
            reason: panic_message(&*payload),
        })
    })
}

fn probe_header(path: &Path) -> Result<SourceInfo, DecodeError> {
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

/// Wall-clock time of a file's offset 0, ms since the epoch: from its path (`time_pattern`,
/// read in `time_zone`),
/// else the container's `creation_time`, else its modification time minus its duration.
/// `None` when none is known; a panic while matching the path is caught and gives `None`.
pub fn wall_clock_start(
    path: &Path,
    settings: &SourceSettings,
    info: Option<&SourceInfo>,
) -> Option<i64> {
    std::panic::catch_unwind(|| wall_clock_of(path, settings, info)).unwrap_or_else(|payload| {
        tracing::warn!(path = %path.display(), reason = panic_message(&*payload), "cannot read the file's wall-clock start");
        None
    })
}

fn wall_clock_of(path: &Path, settings: &SourceSettings, info: Option<&SourceInfo>) -> Option<i64> {
    let path_text = path.to_string_lossy();
    if let Some(t) =
        crate::clock::time_from_path_in(&settings.time_pattern, &path_text, &settings.time_zone)
    {
        return Some(t);
    }
    if let Some(t) = info.and_then(|i| i.creation_time_ms) {
        return Some(t);
    }
    let mtime = std::fs::metadata(path)
        .ok()?
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let duration = info.and_then(|i| i.duration_ms).unwrap_or(0);
    Some(mtime.as_millis() as i64 - duration as i64)
}
