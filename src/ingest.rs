//! The ingest pipeline: decode workers (one thread per source being read) feed sampled,
//! preprocessed frames through a bounded channel to one embed worker, which batches frames
//! from all sources and uploads each batch to the model's device; a commit worker computes
//! the embeddings of one batch while the next is uploaded (on a GPU the copy and the compute
//! overlap), and commits them. A slow model applies back-pressure to the decoders instead of
//! growing memory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::catalog::Catalog;
use crate::decode::HwAccel;
use crate::decode::{self, DecodeError, DecodeSummary, SampleOptions};
use crate::embed::Embedder;
use crate::store::{frame_key, SourceState};

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
    /// Seconds between samples.
    pub interval: f64,
    /// The source's own sampling policy (a camera's), instead of the daemon's.
    pub policy: Option<crate::decode::SamplingPolicy>,
    /// The source's own time pattern (a camera's), instead of the daemon's.
    pub time_pattern: Option<String>,
}

enum Item {
    Frame {
        key: u64,
        source: String,
        pixels: Vec<f32>,
    },
    End {
        source: String,
        result: Result<DecodeSummary, DecodeError>,
    },
}

/// Counters shared with `stats` and `status`.
#[derive(Debug, Default)]
pub struct IngestCounters {
    /// Frames embedded and committed since start.
    pub frames_embedded: AtomicU64,
    /// Batches embedded.
    pub batches: AtomicU64,
    /// Total embed time, microseconds.
    pub embed_us: AtomicU64,
    /// Jobs waiting for a decode worker.
    pub queued: AtomicUsize,
    /// Per source: frames committed since start, first and last commit time.
    pub rates: Mutex<std::collections::HashMap<String, SourceRate>>,
    /// Decode-thread time in FFmpeg demux + decode (wall minus convert and hand-off), us.
    pub decode_us: AtomicU64,
    /// Decode-thread time in pixel conversion, us.
    pub convert_us: AtomicU64,
    /// Decode-thread time blocked handing frames to the embed worker, us.
    pub handoff_us: AtomicU64,
    /// Embed-worker time committing batches (sled transaction + flush + index add), us.
    pub commit_us: AtomicU64,
    /// Set when a full disk stopped ingest; cleared when it resumes.
    pub halted: AtomicBool,
    /// Why ingest is stopped (what, where, what to do), while `halted`.
    pub halt_reason: Mutex<Option<String>>,
}

impl IngestCounters {
    /// Stops ingest after a failed write: decoders stop, decoded frames are dropped (their
    /// sources stay unfinished and resume from their last committed frame).
    pub fn halt(&self, reason: String) {
        tracing::error!(reason, "ingest stopped");
        *self.halt_reason.lock().expect("halt lock") = Some(reason);
        self.halted.store(true, Ordering::SeqCst);
    }

    /// Why ingest is stopped, if it is.
    pub fn halted_because(&self) -> Option<String> {
        self.halt_reason.lock().expect("halt lock").clone()
    }
}

/// Free bytes for unprivileged users on the file system holding `path`.
pub fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// The status message while a full disk has ingest stopped: what, where, what to do.
pub fn disk_full_message(state_dir: &std::path::Path, error: &str, resume_free_mb: f64) -> String {
    format!(
        "disk full: cannot write to the state folder {} ({error}). Ingest is stopped; searches go on and every frame committed so far is kept. Free space on that file system (at least {resume_free_mb} MB, ingest.resume_free_mb): ingest then resumes on its own from where each source stopped",
        state_dir.display()
    )
}

/// True when a write error means the disk is full: ENOSPC in the message, or less than
/// `reserve` bytes free under `dir` now.
pub fn is_disk_full(error: &str, dir: &std::path::Path, reserve: u64) -> bool {
    error.contains("No space left")
        || error.contains("os error 28")
        || error.contains("ENOSPC")
        || free_bytes(dir).is_some_and(|free| free < reserve)
}

/// Ingest progress of one source since the daemon started.
#[derive(Debug, Clone, Copy)]
pub struct SourceRate {
    /// Frames committed.
    pub frames: u64,
    /// When the first batch of this source was committed.
    pub first: Instant,
    /// When the last batch was committed.
    pub last: Instant,
}

impl SourceRate {
    /// Frames per second between the first and the last commit (0 with a single commit).
    pub fn frames_per_second(&self) -> f64 {
        let secs = self.last.duration_since(self.first).as_secs_f64();
        if secs > 0.0 {
            self.frames as f64 / secs
        } else {
            0.0
        }
    }
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
    /// Which frames are embedded.
    pub policy: crate::decode::SamplingPolicy,
    /// Pattern finding a file's wall-clock time in its path.
    pub time_pattern: String,
    /// The state folder (named in the full-disk message).
    pub state_dir: PathBuf,
    /// MB that must be free again before ingest resumes after a full disk.
    pub resume_free_mb: f64,
}

/// A handle through which a live source (on its own thread) feeds the embed worker; frames
/// wait in the same bounded channel as the decode workers' (back-pressure).
#[derive(Clone)]
pub struct FrameSink {
    tx: SyncSender<Item>,
}

impl FrameSink {
    /// Hands one preprocessed frame on; false when the pipeline has stopped.
    pub fn send_frame(&self, key: u64, source: &str, pixels: Vec<f32>) -> bool {
        self.tx
            .send(Item::Frame {
                key,
                source: source.to_string(),
                pixels,
            })
            .is_ok()
    }

    /// Says a source ended (after its frames): the embed worker records `done` or `failed`.
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
    counters: Arc<IngestCounters>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("cancelled", &self.cancel.load(Ordering::Relaxed))
            .finish()
    }
}

impl Ingest {
    /// Starts the decode workers and the embed worker.
    pub fn start(
        settings: IngestSettings,
        embedder: Arc<Embedder>,
        catalog: Arc<Catalog>,
    ) -> std::io::Result<Self> {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let (items_tx, items_rx) = mpsc::sync_channel::<Item>(settings.batch_size * 2);
        let cancel = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(IngestCounters::default());
        let mut threads = Vec::new();
        for i in 0..settings.decode_workers {
            let ctx = DecodeWorker {
                jobs: jobs_rx.clone(),
                items: items_tx.clone(),
                cancel: cancel.clone(),
                catalog: catalog.clone(),
                counters: counters.clone(),
                geometry: embedder.geometry().clone(),
                decoder_threads: settings.decoder_threads,
                hwaccel: settings.hwaccel,
                policy: settings.policy,
                time_pattern: settings.time_pattern.clone(),
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
        let worker = EmbedWorker {
            items: items_rx,
            stages: stages_tx,
            embedder: embedder.clone(),
            batch_size,
            min_batch,
            in_flight: in_flight.clone(),
            cancel: cancel.clone(),
        };
        let committer = CommitWorker {
            stages: stages_rx,
            embedder,
            catalog,
            counters: counters.clone(),
            state_dir: settings.state_dir.clone(),
            resume_free_mb: settings.resume_free_mb,
            in_flight,
        };
        threads.push(
            std::thread::Builder::new()
                .name("embed".into())
                .spawn(move || worker.run())?,
        );
        threads.push(
            std::thread::Builder::new()
                .name("commit".into())
                .spawn(move || committer.run())?,
        );
        Ok(Self {
            jobs: Mutex::new(Some(jobs_tx)),
            sink,
            cancel,
            threads: Mutex::new(threads),
            counters,
        })
    }

    /// Queues a source for decoding.
    pub fn submit(&self, job: Job) {
        if let Some(tx) = self.jobs.lock().expect("jobs lock").as_ref() {
            self.counters.queued.fetch_add(1, Ordering::SeqCst);
            if tx.send(job).is_err() {
                self.counters.queued.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// A sink for live sources; `None` once shut down. Stop every live source before
    /// [`Ingest::shutdown`]: the embed worker ends when the last sink is dropped.
    pub fn frame_sink(&self) -> Option<FrameSink> {
        self.sink
            .lock()
            .expect("sink lock")
            .as_ref()
            .map(|tx| FrameSink { tx: tx.clone() })
    }

    /// Counters for `stats`.
    pub fn counters(&self) -> &Arc<IngestCounters> {
        &self.counters
    }

    /// Stops decoding, lets the embed worker commit what was already decoded, and waits for
    /// every thread. Sources cut short stay `ingesting` and resume from their watermark.
    pub fn shutdown(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.jobs.lock().expect("jobs lock").take();
        self.sink.lock().expect("sink lock").take();
        let threads: Vec<_> = self
            .threads
            .lock()
            .expect("threads lock")
            .drain(..)
            .collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

/// Wall-clock time of a file's offset 0: from its path (`time_pattern`), else the
/// container's `creation_time`, else its modification time minus its duration.
pub fn wall_clock_start(
    path: &std::path::Path,
    time_pattern: &str,
    info: Option<&decode::SourceInfo>,
) -> Option<i64> {
    if let Some(t) = crate::clock::time_from_path(time_pattern, &path.to_string_lossy()) {
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

struct DecodeWorker {
    jobs: Arc<Mutex<Receiver<Job>>>,
    items: SyncSender<Item>,
    cancel: Arc<AtomicBool>,
    catalog: Arc<Catalog>,
    counters: Arc<IngestCounters>,
    geometry: crate::embed::PixelGeometry,
    decoder_threads: usize,
    hwaccel: HwAccel,
    policy: crate::decode::SamplingPolicy,
    time_pattern: String,
}

impl DecodeWorker {
    fn run(self) {
        loop {
            let job = match self.jobs.lock().expect("jobs lock").recv() {
                Ok(job) => job,
                Err(_) => return,
            };
            self.counters.queued.fetch_sub(1, Ordering::SeqCst);
            if self.cancel.load(Ordering::SeqCst) {
                return;
            }
            if self.counters.halted.load(Ordering::SeqCst) {
                // The source stays unfinished in the store and is queued again on resume.
                continue;
            }
            let t = Instant::now();
            let result = self.decode(&job);
            if let Ok(s) = &result {
                let wall = t.elapsed().as_micros() as u64;
                let c = &self.counters;
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
            if self.counters.halted.load(Ordering::SeqCst) {
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
        let pattern = job.time_pattern.as_deref().unwrap_or(&self.time_pattern);
        let wall = wall_clock_start(&job.path, pattern, info.as_ref());
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
            interval: job.interval,
            resume_after_ms: job.resume_after_ms,
            decoder_threads: self.decoder_threads,
            geometry: self.geometry.clone(),
            hwaccel: self.hwaccel,
            policy: job.policy.unwrap_or(self.policy),
        };
        let items = &self.items;
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            decode::decode_samples(&job.path, &options, &self.cancel, |frame| {
                if self.counters.halted.load(Ordering::Relaxed) {
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

struct EmbedWorker {
    items: Receiver<Item>,
    stages: SyncSender<Stage>,
    embedder: Arc<Embedder>,
    /// Largest batch: at this size the batch is handed on even if that has to wait.
    batch_size: usize,
    /// Smallest batch handed on early, when the commit thread has room for it.
    min_batch: usize,
    /// Batches handed to the commit thread and not yet finished (queued + computing).
    in_flight: Arc<AtomicUsize>,
    cancel: Arc<AtomicBool>,
}

struct Pending {
    keys: Vec<(u64, String)>,
    pixels: Vec<f32>,
    /// When the oldest frame of the batch arrived.
    since: Instant,
}

/// A partial batch older than this is handed on even when smaller than `min_batch` (slow
/// sources such as live streams must not wait for a full batch).
const MAX_BATCH_WAIT: Duration = Duration::from_millis(250);

/// What the batching thread hands the commit thread, in order.
enum Stage {
    /// A batch on the model's device (or why it could not get there).
    Batch {
        keys: Vec<(u64, String)>,
        input: Result<candle_core::Tensor, String>,
        upload_us: u64,
    },
    /// A source's decoding ended; its frames were all in earlier batches.
    End {
        source: String,
        result: Result<DecodeSummary, DecodeError>,
    },
}

impl EmbedWorker {
    fn run(self) {
        let mut batch = Pending {
            keys: Vec::new(),
            pixels: Vec::new(),
            since: Instant::now(),
        };
        loop {
            let item = if batch.keys.is_empty() {
                match self.items.recv() {
                    Ok(item) => Some(item),
                    Err(_) => break,
                }
            } else {
                match self.items.recv_timeout(Duration::from_millis(20)) {
                    Ok(item) => Some(item),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            let sent = match item {
                Some(Item::Frame {
                    key,
                    source,
                    pixels,
                }) => {
                    if batch.keys.is_empty() {
                        batch.since = Instant::now();
                        batch.pixels.reserve(pixels.len() * self.batch_size);
                    }
                    batch.pixels.extend_from_slice(&pixels);
                    batch.keys.push((key, source));
                    // Dynamic batching: a full batch always goes; from `min_batch` frames
                    // on it goes as soon as the commit thread can take it without waiting,
                    // so embedding overlaps decoding instead of waiting for a full batch.
                    if batch.keys.len() >= self.batch_size
                        || (batch.keys.len() >= self.min_batch && self.has_room())
                    {
                        self.flush(&mut batch)
                    } else {
                        true
                    }
                }
                Some(Item::End { source, result }) => {
                    self.flush(&mut batch)
                        && self.stages.send(Stage::End { source, result }).is_ok()
                }
                // No frame for a while: hand on what there is when the commit thread is
                // idle, or when the batch has waited long enough.
                None if self.in_flight.load(Ordering::SeqCst) == 0
                    || batch.since.elapsed() >= MAX_BATCH_WAIT =>
                {
                    self.flush(&mut batch)
                }
                None => true,
            };
            if !sent {
                break;
            }
        }
        self.flush(&mut batch);
        if self.cancel.load(Ordering::SeqCst) {
            tracing::info!("embed worker stopped");
        }
    }

    /// True when a batch handed on now would not wait in the channel (room for one queued
    /// batch beside the one computing).
    fn has_room(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) < 2
    }

    /// Uploads the pending batch and hands it on; false when the commit thread is gone.
    fn flush(&self, batch: &mut Pending) -> bool {
        if batch.keys.is_empty() {
            return true;
        }
        let t = Instant::now();
        let n = batch.keys.len();
        // The batch's buffer moves into the tensor (no copy on the CPU in float32).
        let pixels = std::mem::take(&mut batch.pixels);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.embedder.upload_pixel_vec(pixels, n)
        }));
        let input = match result {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) => Err(format!("embedding failed: {e}")),
            Err(_) => Err("embedding panicked".to_string()),
        };
        let keys = std::mem::take(&mut batch.keys);
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.stages
            .send(Stage::Batch {
                keys,
                input,
                upload_us: t.elapsed().as_micros() as u64,
            })
            .is_ok()
    }
}

struct CommitWorker {
    stages: Receiver<Stage>,
    embedder: Arc<Embedder>,
    catalog: Arc<Catalog>,
    counters: Arc<IngestCounters>,
    state_dir: PathBuf,
    resume_free_mb: f64,
    in_flight: Arc<AtomicUsize>,
}

impl CommitWorker {
    fn run(self) {
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
                    if !self.counters.halted.load(Ordering::SeqCst) {
                        self.finish(&source, result)
                    }
                }
            }
        }
    }

    fn commit(
        &self,
        mut keys: Vec<(u64, String)>,
        input: Result<candle_core::Tensor, String>,
        upload_us: u64,
    ) {
        if self.counters.halted.load(Ordering::SeqCst) {
            // Not committed: the sources resume from their watermark when space returns.
            return;
        }
        let t = Instant::now();
        let n = keys.len();
        let input = match input {
            Ok(input) => input,
            Err(e) => return self.fail_sources(&mut keys, &e),
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
        self.counters
            .commit_us
            .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
        match committed {
            Ok(_) => {
                self.counters
                    .frames_embedded
                    .fetch_add(n as u64, Ordering::Relaxed);
                self.counters.batches.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .embed_us
                    .fetch_add(embed_us, Ordering::Relaxed);
                let now = Instant::now();
                let mut rates = self.counters.rates.lock().expect("rates lock");
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
            }
            Err(e) => {
                let message = e.to_string();
                let reserve = (self.resume_free_mb * 1e6) as u64;
                if is_disk_full(&message, &self.state_dir, reserve.min(16 << 20)) {
                    self.counters.halt(disk_full_message(
                        &self.state_dir,
                        &message,
                        self.resume_free_mb,
                    ));
                } else {
                    self.fail_sources(&mut keys, &format!("cannot store frames: {message}"));
                }
            }
        }
    }

    fn fail_sources(&self, keys: &mut Vec<(u64, String)>, message: &str) {
        tracing::error!(error = message, "batch lost");
        let mut sources: Vec<&String> = keys.iter().map(|(_, s)| s).collect();
        sources.dedup();
        for s in sources {
            let _ = self.catalog.store().update_source(s, |r| {
                r.state = SourceState::Failed;
                r.error = Some(message.to_string());
            });
        }
        keys.clear();
    }

    fn finish(&self, source: &str, result: Result<DecodeSummary, DecodeError>) {
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
            (Err(e), _) => tracing::error!(source, error = %e, "cannot record the end of a source"),
        }
    }
}
