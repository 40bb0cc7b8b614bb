//! Decode workers: one thread per file being read at a time, `ingest.decode_workers` of them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{IngestHalt, IngestStats, Item, Job};
use crate::catalog::Catalog;
use crate::decode::{self, DecodeError, DecodeSummary, HwAccel, SampleOptions};
use crate::store::{frame_key, SourceState};

/// One decode worker: takes jobs from the queue, decodes and samples each file, and hands
/// its frames and its end to the batch worker.
pub(super) struct DecodeWorker {
    pub(super) jobs: Arc<Mutex<Receiver<Job>>>,
    pub(super) items: SyncSender<Item>,
    pub(super) cancel: Arc<AtomicBool>,
    pub(super) catalog: Arc<Catalog>,
    pub(super) stats: Arc<IngestStats>,
    pub(super) halt: Arc<IngestHalt>,
    pub(super) geometry: crate::embed::PixelGeometry,
    pub(super) decoder_threads: usize,
    pub(super) hwaccel: HwAccel,
}

impl DecodeWorker {
    pub(super) fn run(self) {
        loop {
            let job = match self.jobs.lock().expect("jobs lock").recv() {
                Ok(job) => job,
                Err(_) => return,
            };
            self.stats.queued.fetch_sub(1, Ordering::SeqCst);
            if self.cancel.load(Ordering::SeqCst) {
                return;
            }
            if self.halt.is_halted() {
                // The source stays unfinished in the store and is queued again on resume.
                continue;
            }
            let t = Instant::now();
            let result = self.decode(&job);
            if let Ok(s) = &result {
                let wall = t.elapsed().as_micros() as u64;
                let c = &self.stats;
                c.convert_us.fetch_add(s.convert_us, Ordering::Relaxed);
                c.handoff_us.fetch_add(s.handoff_us, Ordering::Relaxed);
                c.decode_us.fetch_add(
                    wall.saturating_sub(s.convert_us + s.handoff_us),
                    Ordering::Relaxed,
                );
            }
            let stopped = matches!(&result, Ok(s) if s.stopped);
            if stopped && self.cancel.load(Ordering::SeqCst) {
                // Shutting down: leave the source `ingesting` so it resumes on the next start.
                return;
            }
            if self.halt.is_halted() {
                // Full disk: leave the source `ingesting`; it resumes when space returns.
                continue;
            }
            if self
                .items
                .send(Item::End {
                    source: job.source.clone(),
                    result,
                })
                .is_err()
            {
                return;
            }
        }
    }

    fn decode(&self, job: &Job) -> Result<DecodeSummary, DecodeError> {
        let info = decode::probe(&job.path).ok();
        let duration = info.as_ref().and_then(|i| i.duration_ms);
        let wall = decode::wall_clock_start(&job.path, &job.settings.time_pattern, info.as_ref());
        if let Err(e) = self.catalog.store().update_source(&job.source, |r| {
            r.state = SourceState::Ingesting;
            if duration.is_some() {
                r.duration_ms = duration;
            }
            if r.start_wall_ms.is_none() {
                r.start_wall_ms = wall;
            }
        }) {
            tracing::error!(source = %job.source, error = %e, "cannot mark source as ingesting");
        }
        tracing::info!(source = %job.source, resume_after_ms = ?job.resume_after_ms, "decoding");
        let options = SampleOptions {
            interval: job.settings.interval,
            resume_after_ms: job.resume_after_ms,
            decoder_threads: self.decoder_threads,
            geometry: self.geometry.clone(),
            hwaccel: self.hwaccel,
            policy: job.settings.policy,
        };
        let items = &self.items;
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            decode::decode_samples(&job.path, &options, &self.cancel, |frame| {
                if self.halt.is_halted() {
                    return false;
                }
                let key = frame_key(job.no, frame.offset_ms);
                items
                    .send(Item::Frame {
                        key,
                        source: job.source.clone(),
                        pixels: frame.pixels,
                    })
                    .is_ok()
            })
        }));
        match run {
            Ok(result) => result,
            Err(_) => Err(DecodeError::Stream {
                path: job.path.display().to_string(),
                at_ms: 0,
                reason: "decoder panicked".into(),
            }),
        }
    }
}
