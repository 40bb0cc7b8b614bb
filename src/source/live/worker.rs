//! A live source's thread: one connection after another, each opened with FFmpeg's
//! protocol options and time-outs, read, decoded and sampled; a drop is an outage recorded in
//! the source's record, followed by a back-off.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffmpeg::ffi;
use ffmpeg_next as ffmpeg;

use super::timeline::jitter;
use super::{Backoff, LiveKind, LiveSettings, LiveSpec, TimeLine};
use crate::catalog::Catalog;
use crate::clock::now_ms;
use crate::decode::convert::{FrameConverter, Rotation};
use crate::decode::sample::FrameSampler;
use crate::decode::stream::{open_decoder, DecoderSetup, StreamClock};
use crate::decode::{best_video_stream, init_ffmpeg, DecodeSummary, SamplingPolicy};
use crate::embed::PixelGeometry;
use crate::ingest::FrameSink;
use crate::source::url::redact;
use crate::store::{Fingerprint, Outage, SourceRecord, MAX_OUTAGES};

/// How one connection ended.
enum Ended {
    /// Stop requested (forget, shutdown, or the pipeline stopped).
    Stopped,
    /// A growing file stopped growing: the source is complete.
    Complete,
    /// The stream dropped or could not be opened.
    Lost {
        /// FFmpeg's reason.
        reason: String,
        /// Frames arrived on this connection.
        had_frames: bool,
    },
}

/// One live source's thread: connects, reads, decodes, samples, reconnects.
pub(super) struct LiveWorker {
    pub(super) spec: LiveSpec,
    pub(super) catalog: Arc<Catalog>,
    pub(super) sink: FrameSink,
    pub(super) geometry: PixelGeometry,
    pub(super) settings: LiveSettings,
    pub(super) stop: Arc<AtomicBool>,
}

/// Mutable state of a live source across its connections.
struct Progress {
    time: TimeLine,
    sampler: FrameSampler,
    /// Everything decoded since this thread started (reported when a growing file ends).
    total: DecodeSummary,
    /// The part of `total`'s decoded and skipped counts already added to the record.
    saved: (u64, u64),
    last_save: Instant,
    /// Wall clock of the last packet received.
    last_data_ms: Option<i64>,
    connections: u64,
}

impl LiveWorker {
    /// Reads the source until stopped (or, for a growing file, until it stops growing).
    pub(super) fn run(self) {
        let record = match self.catalog.store().source(&self.spec.source) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(source = %self.spec.source, error = %e, "live source: cannot read its record");
                return;
            }
        };
        let (watermark, mut start_wall) = (record.watermark_ms, record.start_wall_ms);
        if self.spec.kind == LiveKind::GrowingFile && start_wall.is_none() {
            let path = Path::new(&self.spec.url);
            let info = crate::decode::probe(path).ok();
            start_wall = crate::decode::wall_clock_start(path, &self.spec.settings, info.as_ref());
        }
        self.update(|r| {
            r.state = crate::store::SourceState::Ingesting;
            r.start_wall_ms = r.start_wall_ms.or(start_wall);
        });
        tracing::info!(source = %self.spec.source, url = %redact(&self.spec.url), resume_after_ms = ?watermark, "live source started");
        let mut p = Progress {
            time: TimeLine::new(self.spec.kind, start_wall, watermark),
            sampler: FrameSampler::new(
                self.spec.settings.interval,
                watermark,
                self.spec.settings.policy,
            ),
            total: DecodeSummary::default(),
            saved: (0, 0),
            last_save: Instant::now(),
            last_data_ms: None,
            connections: 0,
        };
        let mut backoff = Backoff::new(self.settings.reconnect_max);
        loop {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            let attempt_ms = now_ms();
            let ended = self.connection(&mut p);
            self.save_counts(&mut p);
            match ended {
                Ended::Stopped => break,
                Ended::Complete => {
                    tracing::info!(source = %self.spec.source, "growing file stopped growing");
                    // The complete file's size and time: what `export` and `frame` compare
                    // against from now on (`Sources::indexed_file`).
                    let fingerprint = Fingerprint::of(Path::new(&self.spec.url)).ok();
                    self.update(|r| {
                        if let Some(l) = r.live.as_mut() {
                            l.connected = false;
                        }
                        if let Some(f) = fingerprint {
                            r.fingerprint = f;
                        }
                    });
                    // The counts are in the record already; the end only sets the state.
                    let summary = DecodeSummary {
                        kept: p.total.kept,
                        ..Default::default()
                    };
                    let _ = self.sink.send_end(&self.spec.source, Ok(summary));
                    return;
                }
                Ended::Lost { reason, .. }
                    if self.spec.kind == LiveKind::GrowingFile
                        && !Path::new(&self.spec.url).exists() =>
                {
                    tracing::warn!(source = %self.spec.source, %reason, "growing file gone");
                    let error = crate::decode::DecodeError::Open {
                        path: self.spec.url.clone(),
                        reason,
                    };
                    let _ = self.sink.send_end(&self.spec.source, Err(error));
                    return;
                }
                Ended::Lost { reason, had_frames } => {
                    if had_frames {
                        backoff.reset();
                    }
                    let wait = backoff.next_wait(jitter());
                    tracing::warn!(source = %self.spec.source, %reason, retry_in_s = wait.as_secs_f64(), "live source down");
                    // Since the last data, or since this attempt began.
                    let start = if had_frames {
                        p.last_data_ms.unwrap_or(attempt_ms)
                    } else {
                        attempt_ms
                    };
                    self.update(|r| record_outage(r, start, &reason));
                    let until = Instant::now() + wait;
                    while Instant::now() < until && !self.stop.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        }
        self.update(|r| {
            if let Some(l) = r.live.as_mut() {
                l.connected = false;
            }
        });
        tracing::info!(source = %self.spec.source, "live source stopped");
    }

    /// Applies `f` to the source's record (a forgotten source has none: nothing to do).
    fn update(&self, f: impl Fn(&mut SourceRecord)) {
        if let Err(e) = self.catalog.store().update_source(&self.spec.source, f) {
            tracing::debug!(source = %self.spec.source, error = %e, "live source: record not updated");
        }
    }

    fn save_counts(&self, p: &mut Progress) {
        let (decoded, skipped) = (p.total.decoded - p.saved.0, p.total.skipped - p.saved.1);
        p.saved = (p.total.decoded, p.total.skipped);
        p.last_save = Instant::now();
        if decoded + skipped > 0 {
            self.update(|r| {
                r.decoded += decoded;
                r.skipped += skipped;
            });
        }
    }

    /// FFmpeg options of the source's protocol: time-outs so a dead stream is noticed,
    /// TCP for RTSP, a short probe so a stream starts quickly, `follow` for growing files.
    fn options(&self) -> ffmpeg::Dictionary<'static> {
        let us = self.settings.timeout.as_micros().to_string();
        let mut o = ffmpeg::Dictionary::new();
        let scheme = self
            .spec
            .url
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase())
            .unwrap_or_default();
        match (self.spec.kind, scheme.as_str()) {
            (LiveKind::GrowingFile, _) => {
                o.set("follow", "1");
                // Not seekable: FFmpeg must not look for the end (a growing file has none yet).
                o.set("seekable", "0");
            }
            (_, "rtsp" | "rtsps") => {
                o.set("rtsp_transport", self.settings.rtsp_transport.as_str());
                o.set("timeout", &us);
            }
            (_, "udp" | "rtp") => {
                o.set("timeout", &us);
                o.set("overrun_nonfatal", "1");
                o.set("fifo_size", "278876");
            }
            (_, "http" | "https") => {
                o.set("timeout", &us);
                o.set("reconnect", "1");
            }
            (_, "rtmp" | "rtmps" | "tcp" | "srt") => {
                o.set("rw_timeout", &us);
            }
            _ => {}
        }
        o.set(
            "protocol_whitelist",
            super::protocol_whitelist(self.spec.kind, &scheme),
        );
        // A short probe: frames FFmpeg buffered while probing are stamped ahead of their
        // arrival by up to this much (their PTS after the first frame's arrival).
        o.set("analyzeduration", "500000");
        o
    }

    /// One connection: open, read, decode and sample until it ends.
    fn connection(&self, p: &mut Progress) -> Ended {
        init_ffmpeg();
        let source = &self.spec.source;
        let timeout_ms = self.settings.timeout.as_millis() as i64;
        let clock = Instant::now();
        let elapsed = move || clock.elapsed().as_millis() as i64;
        // Reading stops when `deadline` (ms on `clock`) passes. While opening, the protocol's
        // own time-outs apply and this is only a backstop: an interrupt while FFmpeg probes
        // the stream would leave the connection failed for good. Then every packet moves it
        // to `live_timeout` ahead.
        let deadline = Arc::new(AtomicI64::new(3 * timeout_ms + 10_000));
        let stalled = {
            let deadline = deadline.clone();
            move || elapsed() > deadline.load(Ordering::Relaxed)
        };
        // Set once the interrupt gave up for lack of data: FFmpeg's I/O error that follows
        // sticks, and may surface only after a few buffered packets.
        let timed_out = Arc::new(AtomicBool::new(false));
        let interrupt = {
            let stop = self.stop.clone();
            let timed_out = timed_out.clone();
            move || {
                if stop.load(Ordering::Relaxed) {
                    return true;
                }
                if stalled() {
                    timed_out.store(true, Ordering::Relaxed);
                    return true;
                }
                false
            }
        };
        let stalled = || timed_out.load(Ordering::Relaxed);
        let lost = |reason: String, had_frames| Ended::Lost { reason, had_frames };
        // FFmpeg's reason, with how long nothing came when it gave up for lack of data.
        let since_data = Instant::now();
        let why = |e: ffmpeg::Error, what: &str, since: Instant| {
            let silent = since.elapsed().as_secs_f64();
            if stalled() || silent >= self.settings.timeout.as_secs_f64() {
                format!("{what}: no data for {silent:.1} s ({e})")
            } else {
                format!("{what}: {e}")
            }
        };
        let opened = ffmpeg::format::input_with_interrupt_and_dictionary(
            self.spec.url.as_str(),
            interrupt,
            self.options(),
        );
        let mut ictx = match opened {
            Ok(i) => i,
            Err(_) if self.stop.load(Ordering::SeqCst) => return Ended::Stopped,
            Err(e) if self.spec.kind == LiveKind::GrowingFile && stalled() => {
                tracing::debug!(source, error = %e, "growing file: nothing new");
                return Ended::Complete;
            }
            Err(e) => return lost(why(e, "cannot open", since_data), false),
        };
        let index = match best_video_stream(&ictx, &redact(&self.spec.url)) {
            Ok(i) => i,
            Err(e) => return lost(e.to_string(), false),
        };
        let (clock, realtime_us, rotation) = {
            let stream = ictx.stream(index).expect("stream index from best()");
            // SAFETY: a plain read of a field of the open format context.
            let rt = unsafe { (*ictx.as_ptr()).start_time_realtime };
            (
                StreamClock::of(&stream),
                (rt != ffi::AV_NOPTS_VALUE && rt > 0).then_some(rt),
                Rotation::of_stream(&stream),
            )
        };
        let mut converter = FrameConverter::new(self.geometry.clone(), rotation);
        let mut views = crate::ingest::ViewRecorder::new(self.catalog.store().clone());
        let setup = DecoderSetup {
            // Slice threads: no added latency, unlike frame threads.
            threads: Some((
                ffmpeg::codec::threading::Type::Slice,
                self.settings.decoder_threads,
            )),
            keyframes_only: self.spec.settings.policy == SamplingPolicy::Keyframes,
            cuda: false,
        };
        let mut decoder = match open_decoder(&ictx, index, Path::new(&self.spec.url), setup) {
            Ok((d, _)) => d,
            Err(e) => return lost(format!("cannot decode: {e}"), false),
        };
        p.time.connect(realtime_us);
        deadline.store(elapsed() + timeout_ms, Ordering::Relaxed);
        let mut packet = ffmpeg::Packet::empty();
        let mut frame = ffmpeg::frame::Video::empty();
        let mut had_frames = false;
        let mut last_packet = Instant::now();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ended::Stopped;
            }
            match packet.read(&mut ictx) {
                // Packets FFmpeg still had buffered after a time-out are used, but are not
                // news from the source.
                Ok(()) if !stalled() => {
                    last_packet = Instant::now();
                    deadline.store(elapsed() + timeout_ms, Ordering::Relaxed);
                    p.last_data_ms = Some(now_ms());
                }
                Ok(()) => {}
                Err(_) if self.stop.load(Ordering::Relaxed) => return Ended::Stopped,
                Err(_) if self.spec.kind == LiveKind::GrowingFile && stalled() => {
                    return Ended::Complete
                }
                Err(ffmpeg::Error::Eof) if self.spec.kind == LiveKind::GrowingFile => {
                    return Ended::Complete
                }
                Err(ffmpeg::Error::Eof) => return lost("end of stream".into(), had_frames),
                Err(ffmpeg::Error::Other { errno }) if errno == libc::EAGAIN && !stalled() => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                // Any other error sticks to FFmpeg's I/O context: this connection is over.
                Err(e) => return lost(why(e, "read failed", last_packet), had_frames),
            }
            if packet.stream() != index {
                continue;
            }
            if decoder.send_packet(&packet).is_err() {
                p.total.bad_packets += 1;
                continue;
            }
            while decoder.receive_frame(&mut frame).is_ok() {
                p.total.decoded += 1;
                if !had_frames {
                    had_frames = true;
                    self.connected(p);
                }
                let pts_ms = frame.timestamp().map(|ts| clock.ms(ts));
                let offset = p.time.offset(pts_ms, now_ms());
                if !p.sampler.due(offset as f64) {
                    continue;
                }
                let picked = p.sampler.pick(
                    &frame,
                    offset as f64,
                    &mut converter,
                    &mut p.total,
                    &mut |f| self.sink.send_sampled(&mut views, self.spec.no, source, f),
                );
                match picked {
                    Ok(true) => {}
                    Ok(false) => return Ended::Stopped,
                    Err(e) => tracing::warn!(source, error = %e, "live frame not converted"),
                }
            }
            if p.last_save.elapsed() > Duration::from_secs(5) {
                self.save_counts(p);
            }
        }
    }

    /// The first frame of a connection: an open outage ends, the source is connected.
    fn connected(&self, p: &mut Progress) {
        let now = now_ms();
        let again = p.connections > 0;
        p.connections += 1;
        let start_wall = p.time.start_wall_ms();
        self.update(|r| {
            if let Some(l) = r.live.as_mut() {
                l.connected = true;
                if again {
                    l.reconnects += 1;
                }
                if let Some(o) = l.outages.last_mut() {
                    if o.end_ms.is_none() {
                        o.end_ms = Some(now);
                    }
                }
            }
            if r.start_wall_ms.is_none() {
                // Streams: the first frame's wall clock is offset 0.
                r.start_wall_ms = start_wall.or(Some(now));
            }
        });
        tracing::info!(source = %self.spec.source, reconnect = again, "live source receiving");
    }
}

/// Opens an outage (or, when one is open, counts the failed attempt and keeps its reason
/// current) in a live source's record.
fn record_outage(r: &mut SourceRecord, start_ms: i64, reason: &str) {
    let Some(l) = r.live.as_mut() else {
        return;
    };
    l.connected = false;
    match l.outages.last_mut() {
        Some(o) if o.end_ms.is_none() => {
            o.attempts += 1;
            o.reason = reason.to_string();
        }
        _ => {
            l.outages.push(Outage {
                start_ms,
                end_ms: None,
                reason: reason.to_string(),
                attempts: 1,
            });
            let excess = l.outages.len().saturating_sub(MAX_OUTAGES);
            l.outages.drain(..excess);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_open_once_count_attempts_and_stay_bounded() {
        let mut r = SourceRecord {
            state: crate::store::SourceState::Ingesting,
            live: Some(Default::default()),
            ..SourceRecord::new("cam", 1, Default::default(), 1.0, None)
        };
        record_outage(&mut r, 10, "Connection refused");
        record_outage(&mut r, 20, "no data for 2 s");
        let l = r.live.as_ref().unwrap();
        assert_eq!(l.outages.len(), 1);
        assert_eq!(
            (l.outages[0].start_ms, l.outages[0].attempts),
            (10, 2),
            "{l:?}"
        );
        assert_eq!(l.outages[0].reason, "no data for 2 s");
        for i in 0..150 {
            r.live.as_mut().unwrap().outages.last_mut().unwrap().end_ms = Some(i);
            record_outage(&mut r, i, "x");
        }
        assert_eq!(r.live.unwrap().outages.len(), MAX_OUTAGES);
    }
}
