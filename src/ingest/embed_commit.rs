//! The embed-commit worker: the image tower, then the commit of each batch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;

use super::batch::{EmbedFailure, Stage};
use super::{IngestHalt, IngestStats, SourceRate};
use crate::alert::Alerts;
use crate::catalog::Catalog;
use crate::decode::{DecodeError, DecodeSummary};
use crate::embed::Embedder;
use crate::store::SourceState;

/// The embed-commit worker: runs the image tower on each uploaded batch, commits the
/// vectors (one sled transaction, then the index) and records each source's end.
pub(super) struct EmbedCommitWorker {
    pub(super) stages: Receiver<Stage>,
    pub(super) embedder: Arc<Embedder>,
    pub(super) catalog: Arc<Catalog>,
    pub(super) stats: Arc<IngestStats>,
    pub(super) halt: Arc<IngestHalt>,
    pub(super) in_flight: Arc<AtomicUsize>,
    pub(super) alerts: Option<Arc<Alerts>>,
}

impl EmbedCommitWorker {
    pub(super) fn run(self) {
        while let Ok(stage) = self.stages.recv() {
            match stage {
                Stage::Batch {
                    keys,
                    input,
                    upload_us,
                } => {
                    self.commit(keys, input, upload_us);
                    self.in_flight.fetch_sub(1, Ordering::SeqCst);
                }
                Stage::End { source, result } => {
                    // While a full disk has ingest stopped, the source stays unfinished and
                    // resumes from its watermark.
                    if !self.halt.is_halted() {
                        self.finish(&source, result)
                    }
                }
            }
        }
    }

    fn commit(
        &self,
        mut keys: Vec<(u64, String)>,
        input: Result<candle_core::Tensor, EmbedFailure>,
        upload_us: u64,
    ) {
        if self.halt.is_halted() {
            // Not committed: the sources resume from their watermark when space returns.
            return;
        }
        let t = Instant::now();
        let n = keys.len();
        let input = match input {
            Ok(input) => input,
            Err(e) => return self.fail_sources(&mut keys, &e.to_string()),
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.embedder.embed_uploaded(&input)
        }));
        drop(input);
        let vectors = match result {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                self.fail_sources(&mut keys, &format!("embedding failed: {e}"));
                return;
            }
            Err(_) => {
                self.fail_sources(&mut keys, "embedding panicked");
                return;
            }
        };
        let embed_us = t.elapsed().as_micros() as u64 + upload_us;
        let frames: Vec<(u64, Vec<f32>)> = keys.iter().map(|(k, _)| *k).zip(vectors).collect();
        let t = Instant::now();
        let committed = self.catalog.commit(&frames);
        self.stats
            .commit_us
            .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
        match committed {
            Ok(_) => {
                self.stats
                    .frames_embedded
                    .fetch_add(n as u64, Ordering::Relaxed);
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                self.stats.embed_us.fetch_add(embed_us, Ordering::Relaxed);
                let now = Instant::now();
                let mut rates = self.stats.rates.lock().expect("rates lock");
                for (_, source) in &keys {
                    let r = rates.entry(source.clone()).or_insert(SourceRate {
                        frames: 0,
                        first: now,
                        last: now,
                    });
                    r.frames += 1;
                    r.last = now;
                }
                drop(rates);
                tracing::debug!(frames = n, embed_ms = embed_us / 1000, "batch committed");
                // The batch is durable: evaluate it against every alert (issue 19).
                if let Some(alerts) = &self.alerts {
                    alerts.on_commit(&frames);
                }
            }
            Err(e) => {
                if self.halt.halt_if_disk_full(&e).is_none() {
                    self.fail_sources(&mut keys, &format!("cannot store frames: {e}"));
                }
            }
        }
    }

    fn fail_sources(&self, keys: &mut Vec<(u64, String)>, message: &str) {
        tracing::error!(error = message, "batch lost");
        let mut sources: Vec<&String> = keys.iter().map(|(_, s)| s).collect();
        sources.dedup();
        for s in sources {
            let failed = self.catalog.store().update_source(s, |r| {
                r.state = SourceState::Failed;
                r.error = Some(message.to_string());
            });
            if let Err(e) = failed {
                self.store_write_failed(s, "cannot mark the source failed", e);
            }
        }
        keys.clear();
    }

    fn finish(&self, source: &str, result: Result<DecodeSummary, DecodeError>) {
        if let Some(alerts) = &self.alerts {
            alerts.source_finished(source);
        }
        let update = self.catalog.store().update_source(source, |r| {
            if r.state == SourceState::Failed {
                return;
            }
            match &result {
                Ok(summary) => {
                    r.decoded += summary.decoded;
                    r.skipped += summary.skipped;
                    r.state = SourceState::Done;
                    r.error = (summary.bad_packets > 0)
                        .then(|| format!("{} corrupt packets skipped", summary.bad_packets));
                    if r.frames == 0 && summary.decoded == 0 {
                        r.state = SourceState::Failed;
                        r.error = Some("no video frame could be decoded".into());
                    }
                }
                Err(e) => {
                    r.state = SourceState::Failed;
                    r.error = Some(e.to_string());
                }
            }
        });
        match (update, &result) {
            (Ok(r), Ok(summary)) => tracing::info!(
                source,
                frames = r.frames,
                decoded = summary.decoded,
                kept = summary.kept,
                discontinuities = summary.discontinuities,
                convert_ms = summary.convert_us / 1000,
                handoff_ms = summary.handoff_us / 1000,
                state = r.state.as_str(),
                "source finished"
            ),
            (Ok(r), Err(e)) => {
                tracing::warn!(source, frames = r.frames, error = %e, "source failed")
            }
            (Err(e), _) => self.store_write_failed(source, "cannot record the end of a source", e),
        }
    }

    /// A source record's write failed. On a full disk, ingest halts: the resume reopens the
    /// database (sled refuses every write after a failed one until then) and queues the
    /// source again, still unfinished. Logging alone would leave the source `ingesting` with
    /// nothing to finish it, and the database refusing writes after space is back.
    fn store_write_failed(&self, source: &str, what: &str, e: crate::store::StoreError) {
        let e = crate::catalog::CatalogError::from(e);
        if self.halt.halt_if_disk_full(&e).is_none() {
            tracing::error!(source, error = %e, "{what}");
        }
    }
}
