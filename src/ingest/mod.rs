//! The ingest pipeline, from sampled frames to committed vectors. Decode workers (one thread
//! per file being read, [`decode_worker`]) and live sources feed preprocessed frames through
//! one bounded channel to the batch worker ([`batch`]), which batches frames from all sources
//! and uploads each batch to the model's device; the embed-commit worker ([`embed_commit`])
//! runs the image tower on one batch while the next is uploaded (on a GPU the copy and the
//! compute overlap) and commits the vectors. A slow model applies back-pressure to the
//! decoders instead of growing memory. A full disk stops ingest ([`halt`]).

mod batch;
mod decode_worker;
mod embed_commit;
pub mod halt;
pub mod stats;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::catalog::Catalog;
use crate::decode::{DecodeError, DecodeSummary, HwAccel, SampledFrame, SourceSettings};
use crate::embed::{Embedder, PixelGeometry, Region};

use batch::{BatchWorker, Stage};
use decode_worker::DecodeWorker;
use embed_commit::EmbedCommitWorker;
pub use halt::IngestHalt;
pub use stats::{IngestStats, SourceRate};

/// A source to read.
#[derive(Debug, Clone)]
pub struct Job {
    /// Source id.
    pub source: String,
    /// Source number (key prefix).
    pub no: u32,
    /// File to decode.
    pub path: PathBuf,
    /// Resume after this offset.
    pub resume_after_ms: Option<u64>,
    /// Sampling settings in force for this source (a camera's own, else `[ingest]`'s).
    pub settings: SourceSettings,
}

/// What decoders and live sources hand the batch worker, in order per source.
pub(crate) enum Item {
    Frame {
        key: u64,
        source: String,
        pixels: Vec<f32>,
        /// The last view of its sampled frame: a batch is cut only after one, so a frame's
        /// views are committed (and evaluated by standing alerts) together.
        frame_end: bool,
    },
    End {
        source: String,
        result: Result<DecodeSummary, DecodeError>,
    },
}

/// Remembers the view regions a source's record holds, and writes them when a frame's differ
/// (its first frame, or a stream that changed shape).
#[derive(Debug)]
pub struct ViewRecorder {
    store: crate::store::Store,
    recorded: Option<Vec<Region>>,
}

impl ViewRecorder {
    /// A recorder for one source, writing through `store`.
    pub fn new(store: crate::store::Store) -> Self {
        Self {
            store,
            recorded: None,
        }
    }

    /// Stores `regions` in the source's record unless they are what it holds already.
    fn record(&mut self, source: &str, regions: &[Region]) {
        if self.recorded.as_deref() == Some(regions) {
            return;
        }
        let known = self
            .store
            .with_sources(|t| t.get(source).and_then(|r| r.views.clone()))
            .ok()
            .flatten();
        if known.as_deref() != Some(regions) {
            let write = self.store.update_source(source, |r| {
                r.views = Some(regions.to_vec());
            });
            if let Err(e) = write {
                tracing::warn!(source, error = %e, "cannot record the source's view regions");
                return;
            }
        }
        self.recorded = Some(regions.to_vec());
    }
}

/// Splits a sampled frame into one [`Item::Frame`] per view (keys `view_key(no, offset,
/// view)`), after recording the views' regions in the source's record (before any of its
/// frames can be searched). Stops at the first `send` that returns false.
fn split_views(
    views: &mut ViewRecorder,
    no: u32,
    source: &str,
    frame: SampledFrame,
    mut send: impl FnMut(Item) -> bool,
) -> bool {
    views.record(source, &frame.regions);
    let n = frame.regions.len().max(1);
    let per_view = frame.pixels.len() / n;
    let views = frame
        .pixels
        .chunks_exact(per_view.max(1))
        .take(crate::store::MAX_VIEWS);
    let last = views.len().saturating_sub(1);
    views.enumerate().all(|(view, pixels)| {
        send(Item::Frame {
            key: crate::store::view_key(no, frame.offset_ms, view),
            source: source.to_string(),
            pixels: pixels.to_vec(),
            frame_end: view == last,
        })
    })
}

/// Tuning of the pipeline.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// Sources decoded at once.
    pub decode_workers: usize,
    /// FFmpeg threads per decoder.
    pub decoder_threads: usize,
    /// Frames per embed batch (already resolved: not 0).
    pub batch_size: usize,
    /// Hardware decoding policy.
    pub hwaccel: HwAccel,
    /// The state folder (its file system is watched for a full disk).
    pub state_dir: PathBuf,
    /// MB that must be free again before ingest resumes after a full disk.
    pub resume_free_mb: f64,
    /// How long a decode worker may read nothing from its file before it is reported hung;
    /// `None`: never.
    pub stall_after: Option<std::time::Duration>,
    /// Standing queries evaluated against each committed batch.
    pub alerts: Option<Arc<crate::alert::Alerts>>,
    /// Which views of each sampled frame are embedded.
    pub views: crate::embed::ViewSet,
}

/// A handle through which a live source (on its own thread) feeds the batch worker; frames
/// wait in the same bounded channel as the decode workers' (back-pressure).
#[derive(Clone)]
pub struct FrameSink {
    tx: SyncSender<Item>,
}

impl FrameSink {
    /// Hands on every view of a sampled frame of source `no` (see [`split_views`]); false
    /// when the pipeline has stopped.
    pub fn send_sampled(
        &self,
        views: &mut ViewRecorder,
        no: u32,
        source: &str,
        frame: SampledFrame,
    ) -> bool {
        split_views(views, no, source, frame, |item| self.tx.send(item).is_ok())
    }

    /// Says a source ended (after its frames): the embed-commit worker records `done` or `failed`.
    pub fn send_end(&self, source: &str, result: Result<DecodeSummary, DecodeError>) -> bool {
        self.tx
            .send(Item::End {
                source: source.to_string(),
                result,
            })
            .is_ok()
    }
}

/// The running pipeline.
pub struct Ingest {
    jobs: Mutex<Option<Sender<Job>>>,
    sink: Mutex<Option<SyncSender<Item>>>,
    cancel: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stats: Arc<IngestStats>,
    halt: Arc<IngestHalt>,
    /// How many of `threads` (the first ones) are decode workers.
    decode_workers: usize,
    /// Each decode worker's sign of life and the source in its hands.
    watches: Vec<Arc<WorkerWatch>>,
    stall_after: Option<std::time::Duration>,
    decoders_done: Arc<AtomicBool>,
    /// The job queue's receiving end, kept here too: were every decode worker gone, jobs
    /// would still be queued and counted (and the pipeline reported stalled) rather than
    /// refused and lost silently.
    _jobs_rx: Arc<Mutex<mpsc::Receiver<Job>>>,
}

/// What a decode worker is doing, for the stall watch.
#[derive(Debug, Default)]
pub(crate) struct WorkerWatch {
    /// Beaten at each packet read; idle between jobs.
    pub(crate) heartbeat: Arc<crate::decode::Heartbeat>,
    /// The source in the worker's hands.
    pub(crate) source: Mutex<Option<String>>,
}

/// Whether the pipeline can still make progress, for `status` and the systemd watchdog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineHealth {
    /// Decode worker threads started.
    pub decode_workers: usize,
    /// Decode worker threads still running.
    pub decode_workers_alive: usize,
    /// Whether the batch and embed-commit workers are both running.
    pub committer_alive: bool,
    /// Times a decode worker's loop panicked and was restarted in place.
    pub worker_restarts: u64,
    /// Why queued work cannot progress; `None` while the pipeline can.
    pub stalled: Option<String>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("cancelled", &self.cancel.load(Ordering::Relaxed))
            .finish()
    }
}

impl Ingest {
    /// Starts the decode workers, the batch worker and the embed-commit worker.
    pub fn start(
        settings: IngestSettings,
        embedder: Arc<Embedder>,
        catalog: Arc<Catalog>,
    ) -> std::io::Result<Self> {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let (items_tx, items_rx) = mpsc::sync_channel::<Item>(settings.batch_size * 2);
        let cancel = Arc::new(AtomicBool::new(false));
        let decoders_done = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(IngestStats::default());
        let halt = Arc::new(IngestHalt::new(
            &settings.state_dir,
            settings.resume_free_mb,
        ));
        let mut threads = Vec::new();
        let decode_workers = settings.decode_workers;
        let mut watches = Vec::new();
        for i in 0..decode_workers {
            let watch = Arc::new(WorkerWatch::default());
            watches.push(watch.clone());
            let ctx = DecodeWorker {
                watch,
                jobs: jobs_rx.clone(),
                items: items_tx.clone(),
                cancel: cancel.clone(),
                catalog: catalog.clone(),
                stats: stats.clone(),
                halt: halt.clone(),
                geometry: PixelGeometry {
                    views: settings.views,
                    ..embedder.geometry().clone()
                },
                decoder_threads: settings.decoder_threads,
                hwaccel: settings.hwaccel,
            };
            threads.push(
                std::thread::Builder::new()
                    .name(format!("decode-{i}"))
                    .spawn(move || ctx.run())?,
            );
        }
        let sink = Mutex::new(Some(items_tx));
        let batch_size = settings.batch_size.max(1);
        // On the CPU a batch is computed in micro-batches anyway, so a batch can start as soon
        // as one micro-batch is queued; on a GPU larger batches are what make it fast.
        let min_batch = if embedder.device().is_cpu() {
            embedder.cpu_micro_batch().min(batch_size)
        } else {
            batch_size
        };
        // One batch uploaded and waiting while one computes.
        let (stages_tx, stages_rx) = mpsc::sync_channel::<Stage>(1);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let batcher = BatchWorker {
            items: items_rx,
            stages: stages_tx,
            embedder: embedder.clone(),
            batch_size,
            min_batch,
            in_flight: in_flight.clone(),
            cancel: cancel.clone(),
            decoders_done: decoders_done.clone(),
        };
        let committer = EmbedCommitWorker {
            stages: stages_rx,
            embedder,
            catalog,
            stats: stats.clone(),
            halt: halt.clone(),
            in_flight,
            alerts: settings.alerts.clone(),
        };
        threads.push(
            std::thread::Builder::new()
                .name("batch".into())
                .spawn(move || batcher.run())?,
        );
        threads.push(
            std::thread::Builder::new()
                .name("embed-commit".into())
                .spawn(move || committer.run())?,
        );
        Ok(Self {
            jobs: Mutex::new(Some(jobs_tx)),
            sink,
            cancel,
            threads: Mutex::new(threads),
            stats,
            halt,
            decode_workers,
            watches,
            stall_after: settings.stall_after,
            decoders_done,
            _jobs_rx: jobs_rx,
        })
    }

    /// Whether work that is queued can still progress. A slow but working pipeline is never
    /// called stalled: the pipeline is stalled when sources wait in the queue and no decode
    /// worker thread is running (a decode worker restarts itself after a panic, so this means
    /// one died some other way), when the batch or embed-commit worker has stopped (nothing
    /// can be committed), or when a decode worker has read nothing from its file for
    /// `stall_after` (a hung read: a dead network mount; a slow read still reads). After
    /// [`Ingest::shutdown`] it is never stalled.
    pub fn health(&self) -> PipelineHealth {
        let threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        let running = !self.cancel.load(Ordering::SeqCst) && !threads.is_empty();
        let n = self.decode_workers.min(threads.len());
        let decode_workers_alive = threads[..n].iter().filter(|t| !t.is_finished()).count();
        let committer_alive = threads[n..].iter().all(|t| !t.is_finished());
        let queued = self.stats.queued.load(Ordering::SeqCst);
        let hung: Vec<(String, u64)> = self
            .stall_after
            .map(|limit| {
                self.watches
                    .iter()
                    .filter_map(|w| {
                        let silent = w.heartbeat.silent_for().filter(|s| *s >= limit)?;
                        let source = w.source.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
                        Some((source, silent.as_secs()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let stalled = running
            .then(|| {
                stall_reason(
                    queued,
                    self.decode_workers,
                    decode_workers_alive,
                    committer_alive,
                )
                .or_else(|| hung_reason(&hung))
            })
            .flatten();
        PipelineHealth {
            decode_workers: self.decode_workers,
            decode_workers_alive: if running { decode_workers_alive } else { 0 },
            committer_alive: running && committer_alive,
            worker_restarts: self.stats.worker_restarts.load(Ordering::SeqCst),
            stalled,
        }
    }

    /// Queues a source for decoding.
    pub fn submit(&self, job: Job) {
        if let Some(tx) = self.jobs.lock().expect("jobs lock").as_ref() {
            self.stats.queued.fetch_add(1, Ordering::SeqCst);
            if tx.send(job).is_err() {
                self.stats.queued.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// A sink for live sources; `None` once shut down. Stop every live source before
    /// [`Ingest::shutdown`]: the batch worker ends when the last sink is dropped.
    pub fn frame_sink(&self) -> Option<FrameSink> {
        self.sink
            .lock()
            .expect("sink lock")
            .as_ref()
            .map(|tx| FrameSink { tx: tx.clone() })
    }

    /// Counters for `stats` and `status`.
    pub fn stats(&self) -> &IngestStats {
        &self.stats
    }

    /// The full-disk stop switch.
    pub fn halt(&self) -> &IngestHalt {
        &self.halt
    }

    /// Stops decoding, lets the batch and embed-commit workers commit what was already decoded, and waits for
    /// every thread. Sources cut short stay `ingesting` and resume from their watermark.
    pub fn shutdown(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.jobs.lock().expect("jobs lock").take();
        self.sink.lock().expect("sink lock").take();
        let mut threads: Vec<_> = self
            .threads
            .lock()
            .expect("threads lock")
            .drain(..)
            .collect();
        let rest = threads.split_off(self.decode_workers.min(threads.len()));
        for (t, watch) in threads.into_iter().zip(&self.watches) {
            // A worker blocked in a read that never returns is left behind (the process's
            // exit ends it): joining it would hang the stop. A working one beats at each
            // packet and sees the cancel within one.
            loop {
                if t.is_finished() {
                    let _ = t.join();
                    break;
                }
                if watch
                    .heartbeat
                    .silent_for()
                    .is_some_and(|s| s >= HUNG_AT_SHUTDOWN)
                {
                    let source = watch
                        .source
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    tracing::warn!(
                        source,
                        "a decode worker is blocked in a read that does not return; stopping without it (its source resumes at the next start)"
                    );
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        self.decoders_done.store(true, Ordering::SeqCst);
        for t in rest {
            let _ = t.join();
        }
    }
}

/// How long a decode worker still running at shutdown may have read nothing before the stop
/// goes on without it.
const HUNG_AT_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(2);

/// Why a running pipeline cannot progress, from its threads alone (see [`Ingest::health`]).
fn stall_reason(
    queued: usize,
    decode_workers: usize,
    decode_workers_alive: usize,
    committer_alive: bool,
) -> Option<String> {
    if !committer_alive {
        Some("the batch or embed-commit worker has stopped: no frame can be committed".into())
    } else if queued > 0 && decode_workers_alive == 0 {
        Some(format!(
            "{queued} sources queued and none of the {decode_workers} decode workers is running"
        ))
    } else {
        None
    }
}

/// Why the pipeline is stalled when decode workers hang: `hung` holds each hung worker's
/// source and the seconds it has read nothing; `None` when none hangs.
fn hung_reason(hung: &[(String, u64)]) -> Option<String> {
    let (source, secs) = hung.first()?;
    let others = match hung.len() {
        1 => String::new(),
        n => format!(" (and {} more decode workers)", n - 1),
    };
    Some(format!(
        "a decode worker has read nothing from {source} for {secs} s{others}: a hung read (a dead network mount or device?); fix or unmount it, then restart the daemon"
    ))
}

#[cfg(test)]
mod tests {
    use super::{hung_reason, stall_reason};

    #[test]
    fn a_hung_worker_is_named_with_its_source() {
        assert_eq!(hung_reason(&[]), None);
        let r = hung_reason(&[("/mnt/nfs/a.mp4".into(), 301)]).unwrap();
        assert!(r.contains("/mnt/nfs/a.mp4") && r.contains("301 s"), "{r}");
        let r = hung_reason(&[("/a".into(), 5), ("/b".into(), 6)]).unwrap();
        assert!(r.contains("and 1 more"), "{r}");
    }

    #[test]
    fn only_a_pipeline_that_cannot_progress_is_stalled() {
        // Healthy, however slow: a worker alive, or nothing queued.
        assert_eq!(stall_reason(5, 2, 1, true), None);
        assert_eq!(stall_reason(0, 2, 0, true), None);
        let r = stall_reason(3, 2, 0, true).unwrap();
        assert!(
            r.contains("3 sources queued") && r.contains("2 decode workers"),
            "{r}"
        );
        assert!(stall_reason(0, 2, 2, false)
            .unwrap()
            .contains("embed-commit"));
    }
}
