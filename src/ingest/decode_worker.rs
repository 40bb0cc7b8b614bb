//! Decode workers: one thread per file being read at a time, `ingest.decode_workers` of them.

use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use super::{IngestHalt, IngestStats, Item, Job};
use crate::catalog::Catalog;
use crate::decode::{self, DecodeError, DecodeSummary, HwAccel, SampleOptions};
use crate::store::SourceState;

/// One decode worker: takes jobs from the queue, decodes and samples each file, and hands
/// its frames and its end to the batch worker.
pub(super) struct DecodeWorker {
    pub(super) watch: Arc<super::WorkerWatch>,
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
    /// Serves jobs until the queue closes or ingest is cancelled. Nothing a file holds can end
    /// the thread: a panic while reading a file fails that source (inside [`Self::decode`]),
    /// and a panic anywhere else in the loop restarts the loop in place, failing the job in
    /// hand, so the worker goes on with the next job.
    pub(super) fn run(self) {
        let current: RefCell<Option<Job>> = RefCell::new(None);
        loop {
            match std::panic::catch_unwind(AssertUnwindSafe(|| self.serve(&current))) {
                Ok(()) => return,
                Err(payload) => {
                    self.watch.heartbeat.idle();
                    let reason = decode::panic_message(&*payload);
                    self.stats.worker_restarts.fetch_add(1, Ordering::SeqCst);
                    let job = current.borrow_mut().take();
                    tracing::error!(
                        source = job.as_ref().map(|j| j.source.as_str()),
                        reason,
                        "decode worker panicked; its job fails and the worker restarts"
                    );
                    if let Some(job) = job {
                        let result = Err(DecodeError::Panicked {
                            path: job.path.display().to_string(),
                            reason,
                        });
                        let end = Item::End {
                            source: job.source,
                            result,
                        };
                        if self.items.send(end).is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// The job loop; `current` holds the job in hand, for [`Self::run`] to fail if it panics.
    fn serve(&self, current: &RefCell<Option<Job>>) {
        loop {
            // A worker that panicked while holding the lock poisons it; the queue is still good.
            let next = self
                .jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .recv();
            let job = match next {
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
            *current.borrow_mut() = Some(job.clone());
            *self
                .watch
                .source
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(job.source.clone());
            self.watch.heartbeat.beat();
            let t = Instant::now();
            let stopped_by_halt = Cell::new(false);
            let result = self.decode(&job, &stopped_by_halt);
            self.watch.heartbeat.idle();
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
            current.borrow_mut().take();
            let stopped = matches!(&result, Ok(s) if s.stopped);
            if stopped && self.cancel.load(Ordering::SeqCst) {
                // Shutting down: leave the source `ingesting` so it resumes on the next start.
                return;
            }
            if stopped_by_halt.get() || self.halt.is_halted() {
                // Full disk: leave the source `ingesting`; it resumes when space returns. A
                // decode the halt stopped did not reach the end of the file, even when the
                // halt was lifted since: its end is never reported.
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

    /// Reads one file: probe, wall-clock start, then decode and sample. Everything that reads
    /// the file's bytes or metadata runs under one panic guard: a file that panics FFmpeg's
    /// wrapper or a parser fails its source with [`DecodeError::Panicked`].
    /// `stopped_by_halt` is set when a full disk stopped the decode.
    fn decode(
        &self,
        job: &Job,
        stopped_by_halt: &Cell<bool>,
    ) -> Result<DecodeSummary, DecodeError> {
        guarded(&job.path, || self.read(job, stopped_by_halt))
    }

    fn read(&self, job: &Job, stopped_by_halt: &Cell<bool>) -> Result<DecodeSummary, DecodeError> {
        let info = decode::probe(&job.path).ok();
        let duration = info.as_ref().and_then(|i| i.duration_ms);
        let wall = decode::wall_clock_start(&job.path, &job.settings, info.as_ref());
        if let Err(e) = self.catalog.store().update_source(&job.source, |r| {
            r.state = SourceState::Ingesting;
            if duration.is_some() {
                r.duration_ms = duration;
            }
            if r.start_wall_ms.is_none() {
                r.start_wall_ms = wall;
            }
        }) {
            // A full disk halts ingest (the decode then stops; the source resumes later).
            let e = crate::catalog::CatalogError::from(e);
            if self.halt.halt_if_disk_full(&e).is_none() {
                tracing::error!(source = %job.source, error = %e, "cannot mark source as ingesting");
            }
        }
        tracing::info!(source = %job.source, resume_after_ms = ?job.resume_after_ms, "decoding");
        let options = SampleOptions {
            interval: job.settings.interval,
            resume_after_ms: job.resume_after_ms,
            decoder_threads: self.decoder_threads,
            geometry: self.geometry.clone(),
            hwaccel: self.hwaccel,
            policy: job.settings.policy,
            heartbeat: Some(self.watch.heartbeat.clone()),
        };
        let items = &self.items;
        let mut views = super::ViewRecorder::new(self.catalog.store().clone());
        decode::decode_samples(&job.path, &options, &self.cancel, |frame| {
            if self.halt.is_halted() {
                stopped_by_halt.set(true);
                return false;
            }
            super::split_views(&mut views, job.no, &job.source, frame, |item| {
                items.send(item).is_ok()
            })
        })
    }
}

/// Runs `read` (the reading of `path`) and turns a panic into [`DecodeError::Panicked`] with
/// the panic's message.
fn guarded(
    path: &Path,
    read: impl FnOnce() -> Result<DecodeSummary, DecodeError>,
) -> Result<DecodeSummary, DecodeError> {
    std::panic::catch_unwind(AssertUnwindSafe(read)).unwrap_or_else(|payload| {
        Err(DecodeError::Panicked {
            path: path.display().to_string(),
            reason: decode::panic_message(&*payload),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_reading_fails_the_source_with_its_message() {
        let path = Path::new("/footage/x.nut");
        let result = guarded(path, || {
            let frac = "éé";
            // The slicing that panicked `clock::parse_iso8601` before issue 15.
            let _ = &frac[..1];
            unreachable!()
        });
        match result {
            Err(e @ DecodeError::Panicked { .. }) => {
                let text = e.to_string();
                assert!(text.contains("/footage/x.nut"), "{text}");
                assert!(text.contains("char boundary"), "{text}");
            }
            other => panic!("expected Panicked, got {other:?}"),
        }
        let ok = guarded(path, || Err(DecodeError::NoVideo { path: "p".into() }));
        assert!(matches!(ok, Err(DecodeError::NoVideo { .. })));
    }
}
