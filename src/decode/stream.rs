//! What files, live streams and export share once a container is open: the stream's clock
//! (time base and start) and one way to open its decoder.

use std::path::Path;

use ffmpeg::ffi;
use ffmpeg_next as ffmpeg;

use super::hw;

/// A video stream's clock: seconds per timestamp tick, and the timestamp of its start when
/// the container gives one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamClock {
    /// Seconds per tick (the stream's time base).
    pub(crate) tb: f64,
    /// The stream's start timestamp, when set.
    pub(crate) start: Option<i64>,
}

impl StreamClock {
    /// The clock of `stream`.
    pub(crate) fn of(stream: &ffmpeg::format::stream::Stream) -> Self {
        let t = stream.time_base();
        let start = stream.start_time();
        Self {
            tb: f64::from(t.numerator()) / f64::from(t.denominator()).max(1.0),
            start: (start != ffi::AV_NOPTS_VALUE).then_some(start),
        }
    }

    /// `ticks` timestamp units in milliseconds.
    pub(crate) fn ms(self, ticks: i64) -> f64 {
        ticks as f64 * self.tb * 1000.0
    }

    /// The timestamp `ms` milliseconds after the start (0 when the start is unknown),
    /// rounded down.
    pub(crate) fn ts_at(self, ms: u64) -> i64 {
        self.start.unwrap_or(0) + (ms as f64 / 1000.0 / self.tb).floor() as i64
    }

    /// Milliseconds from the start (0 when unknown) to timestamp `ts`.
    pub(crate) fn ms_at(self, ts: i64) -> f64 {
        self.ms(ts - self.start.unwrap_or(0))
    }
}

/// How a decoder is set up.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DecoderSetup {
    /// FFmpeg's threading: frame threads (throughput) or slice threads (no added latency),
    /// with a count (0 = automatic); `None` keeps FFmpeg's default.
    pub(crate) threads: Option<(ffmpeg::codec::threading::Type, usize)>,
    /// Only keyframes come out (the others are discarded inside the decoder).
    pub(crate) keyframes_only: bool,
    /// Try the CUDA hwaccel first (see [`super::HwAccel`]).
    pub(crate) cuda: bool,
}

/// Opens the decoder of stream `index` of `ictx` (`path` names it in logs). Returns the
/// decoder and whether it decodes on the GPU (then FFmpeg's frame threads are not used:
/// they would only queue surfaces).
pub(crate) fn open_decoder(
    ictx: &ffmpeg::format::context::Input,
    index: usize,
    path: &Path,
    setup: DecoderSetup,
) -> Result<(ffmpeg::decoder::Video, bool), ffmpeg::Error> {
    let params = ictx
        .stream(index)
        .expect("stream index from best_video_stream()")
        .parameters();
    let mut context = ffmpeg::codec::context::Context::from_parameters(params)?;
    let on_gpu = setup.cuda && hw::attach_cuda(&mut context, path);
    if let Some((kind, count)) = setup.threads {
        context.set_threading(ffmpeg::codec::threading::Config {
            kind,
            count: if on_gpu { 1 } else { count },
            ..Default::default()
        });
    }
    let mut decoder = context.decoder().video()?;
    if setup.keyframes_only {
        decoder.skip_frame(ffmpeg::codec::discard::Discard::NonKey);
    }
    Ok((decoder, on_gpu))
}
