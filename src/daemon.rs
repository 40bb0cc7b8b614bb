//! The daemon's runtime state (opened store, loaded model, running pipeline) and the
//! handling of each request.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use base64::Engine;

use crate::catalog::{Catalog, SearchFilter};
use crate::config::CameraConfig;
use crate::config::Config;
use crate::embed::{EmbedError, Embedder};
use crate::index::OpenOutcome;
use crate::ingest::{Ingest, IngestSettings, Job};
use crate::live::{is_stream_url, redact, LiveKind, LiveSettings, LiveSources, LiveSpec};
use crate::protocol::*;
use crate::store::{Fingerprint, SourceRecord, SourceState};

/// File extensions picked up when a folder is ingested.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "ts", "mts", "m2ts", "mpg", "mpeg", "flv", "wmv",
    "3gp", "ogv", "dav", "h264", "h265", "hevc", "mjpeg", "y4m",
];

/// Everything the daemon holds open.
pub struct Daemon {
    config: Config,
    embedder: Arc<Embedder>,
    catalog: Arc<Catalog>,
    ingest: Ingest,
    live: LiveSources,
    roots: Vec<PathBuf>,
    started: Instant,
    searches: AtomicU64,
    search_ms: std::sync::Mutex<std::collections::VecDeque<f64>>,
    /// Queries' own rayon pool, at normal priority (ingest runs niced on the global pool).
    query_pool: rayon::ThreadPool,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("state_dir", &self.config.daemon.state_dir)
            .finish()
    }
}

fn err(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(code, message)
}

impl Daemon {
    /// Opens the state directory, loads the model, reconciles the index and starts the
    /// ingest pipeline, resuming sources that were not finished.
    pub fn start(config: Config) -> anyhow::Result<Self> {
        let state_dir = &config.daemon.state_dir;
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("cannot create state directory {}", state_dir.display()))?;
        let embedder = Arc::new(Embedder::load_with_text(
            &config.model.path,
            config.model.device,
            crate::embed::Precision::Auto,
            config.model.text_precision,
        )?);
        tracing::info!(model = %config.model.path, dim = embedder.dim(), device = embedder.device_name(), "model loaded");
        let opening = std::time::Instant::now();
        let (catalog, outcome) = Catalog::open(
            state_dir,
            embedder.identity(),
            &config.index.settings(),
            config.ingest.checkpoint_frames,
        )
        .with_context(|| format!("cannot open the store in {}", state_dir.display()))?;
        match outcome {
            OpenOutcome::Loaded { readded } => tracing::info!(
                frames = catalog.indexed(),
                readded,
                open_ms = opening.elapsed().as_millis() as u64,
                "index loaded"
            ),
            OpenOutcome::Rebuilt { reason } => {
                tracing::warn!(frames = catalog.indexed(), %reason, "index rebuilt from the stored vectors")
            }
        }
        let catalog = Arc::new(catalog);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let decoder_threads = config.ingest.decoder_threads_for(
            !matches!(embedder.device(), candle_core::Device::Cpu),
            cores,
        );
        let settings = IngestSettings {
            decode_workers: config.ingest.decode_workers,
            decoder_threads,
            batch_size: embedder.batch_size(config.model.batch_size),
            hwaccel: crate::decode::HwAccel::parse(&config.ingest.hwaccel)
                .map_err(anyhow::Error::msg)?,
            policy: config.ingest.policy(),
            time_pattern: config.ingest.time_pattern.clone(),
            state_dir: state_dir.clone(),
            resume_free_mb: config.ingest.resume_free_mb,
        };
        tracing::info!(
            batch_size = settings.batch_size,
            decoder_threads,
            embed_nice = config.ingest.embed_nice(),
            dtype = ?embedder.dtype(),
            hwaccel = %config.ingest.hwaccel,
            "embedding settings"
        );
        // The ingest threads are started from a thread at `ingest.nice`: threads inherit
        // their creator's priority, so the decode workers (and the FFmpeg threads they start)
        // and the embed worker all run niced, without the pipeline knowing about it.
        let nice = config.ingest.nice;
        let ingest = std::thread::scope(|s| {
            s.spawn(|| {
                crate::priority::lower_this_thread(nice);
                Ingest::start(settings, embedder.clone(), catalog.clone())
            })
            .join()
            .expect("ingest start thread")
        })
        .context("cannot start ingest threads")?;
        let query_pool = crate::priority::query_pool().context("cannot start the query pool")?;
        let live = LiveSources::new(
            catalog.clone(),
            ingest
                .frame_sink()
                .context("the ingest pipeline takes no frames")?,
            embedder.geometry().clone(),
            LiveSettings {
                timeout: std::time::Duration::from_secs_f64(config.ingest.live_timeout),
                reconnect_max: std::time::Duration::from_secs_f64(config.ingest.reconnect_max),
                rtsp_transport: config.ingest.rtsp_transport.clone(),
                decoder_threads,
                nice: config.ingest.nice,
            },
        );
        let roots = config
            .daemon
            .footage_roots
            .iter()
            .map(|r| r.canonicalize().unwrap_or_else(|_| r.clone()))
            .collect();
        let daemon = Self {
            config,
            embedder,
            catalog,
            ingest,
            live,
            roots,
            started: Instant::now(),
            searches: AtomicU64::new(0),
            search_ms: Default::default(),
            query_pool,
        };
        daemon.check_watched()?;
        daemon.resume_unfinished()?;
        daemon.start_cameras()?;
        daemon.requeue_after_reindex()?;
        Ok(daemon)
    }

    fn requeue_after_reindex(&self) -> anyhow::Result<()> {
        let path = self.config.daemon.state_dir.join(REQUEUE_FILE);
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(());
        };
        let sources: Vec<RequeueEntry> = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a list of sources", path.display()))?;
        for entry in &sources {
            let (source, floor) = match entry {
                RequeueEntry::Source(s) => (s, None),
                RequeueEntry::WithFloor {
                    source,
                    retain_from_ms,
                } => (source, *retain_from_ms),
            };
            match self.admit_path(source) {
                Ok(file) => {
                    let outcome = self.enqueue_file(source, &file, floor);
                    tracing::info!(source, result = outcome.result, "re-index");
                }
                Err(e) => tracing::warn!(source, error = %e.message, "re-index: source skipped"),
            }
        }
        std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        Ok(())
    }

    fn resume_unfinished(&self) -> anyhow::Result<()> {
        for r in self.catalog.store().sources()? {
            if !matches!(r.state, SourceState::Queued | SourceState::Ingesting) {
                continue;
            }
            tracing::info!(source = %r.source, watermark_ms = ?r.watermark_ms, "resuming");
            match &r.live {
                // Cameras start from the configuration.
                Some(l) if l.camera => {}
                Some(l) => {
                    let settings = self.config.ingest.source_settings(None);
                    self.start_live(&r, &l.url.clone(), false, settings)
                        .map_err(anyhow::Error::msg)?;
                }
                None => {
                    let path = PathBuf::from(r.path.as_deref().unwrap_or(&r.source));
                    let camera = self.camera_of_file(&r);
                    let mut job = self.job(&r.source, r.no, &path, camera);
                    job.resume_after_ms = r.watermark_ms;
                    job.interval = r.interval;
                    self.ingest.submit(job);
                }
            }
        }
        Ok(())
    }

    /// One retention run (`[retention]`) at the current time; logs and returns frames removed.
    pub fn run_retention(&self) -> u64 {
        let policy = self.config.retention.policy();
        match self
            .catalog
            .apply_retention(&policy, crate::clock::now_ms())
        {
            Ok(r) => {
                if r.removed > 0 {
                    tracing::info!(
                        removed = r.removed,
                        sources = r.sources,
                        total = self.catalog.store().retention_removed(),
                        "retention run"
                    );
                }
                r.removed
            }
            Err(e) => {
                tracing::error!(error = %e, "retention run failed; retried at the next run");
                0
            }
        }
    }

    /// While a full disk has ingest stopped: once `ingest.resume_free_mb` are free again,
    /// reopens the database, checkpoints, and queues every unfinished source again (they
    /// resume from their last committed frame). Returns true when ingest resumed.
    pub fn check_disk(&self) -> bool {
        let counters = self.ingest.counters();
        if !counters.halted.load(Ordering::SeqCst) {
            return false;
        }
        let dir = &self.config.daemon.state_dir;
        let need = (self.config.ingest.resume_free_mb * 1e6) as u64;
        let free = crate::ingest::free_bytes(dir).unwrap_or(0);
        if free < need {
            return false;
        }
        match self.catalog.recover_writes() {
            Ok(readded) => {
                *counters.halt_reason.lock().expect("halt lock") = None;
                counters.halted.store(false, Ordering::SeqCst);
                tracing::info!(
                    free_mb = free / 1_000_000,
                    readded,
                    "disk space is back: ingest resumes"
                );
                if let Err(e) = self.resume_unfinished() {
                    tracing::error!(error = %e, "cannot queue the unfinished sources again");
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "disk space is back but the store cannot write yet; retrying");
                false
            }
        }
    }

    /// The camera whose folder holds a file source (`NAME/relative/path`), if any.
    fn camera_of_file(&self, r: &SourceRecord) -> Option<&CameraConfig> {
        r.path.as_ref()?;
        self.config.camera(r.source.split('/').next()?)
    }

    /// A decode job for a file, with its camera's settings when it belongs to one.
    fn job(&self, source: &str, no: u32, file: &Path, camera: Option<&CameraConfig>) -> Job {
        let settings = self.config.ingest.source_settings(camera);
        Job {
            source: source.to_string(),
            no,
            path: file.to_path_buf(),
            resume_after_ms: None,
            interval: settings.interval,
            policy: camera.map(|_| settings.policy),
            time_pattern: camera.map(|_| settings.time_pattern),
        }
    }

    /// Starts the configured cameras (streams and growing files; folders are scanned with
    /// the watched folders), and retires cameras no longer in the configuration.
    fn start_cameras(&self) -> anyhow::Result<()> {
        let store = self.catalog.store();
        for c in &self.config.cameras {
            let settings = self.config.ingest.source_settings(Some(c));
            let url = if is_stream_url(&c.url) {
                c.url.clone()
            } else {
                let path = self
                    .admit_path(&c.url)
                    .map_err(|e| anyhow::anyhow!("camera {}: {}", c.name, e.message))?;
                if path.is_dir() {
                    continue;
                }
                path.display().to_string()
            };
            let record = self
                .live_record(&c.name, settings.interval)
                .map_err(anyhow::Error::msg)?;
            self.start_live(&record, &url, true, settings)
                .map_err(|e| anyhow::anyhow!("camera {}: {e}", c.name))?;
        }
        for r in store.sources()? {
            let retired = r.live.as_ref().is_some_and(|l| l.camera)
                && self.config.camera(&r.source).is_none()
                && r.state == SourceState::Ingesting;
            if retired {
                store.update_source(&r.source, |r| {
                    r.state = SourceState::Done;
                    r.error = Some("camera no longer in the configuration".into());
                    if let Some(l) = r.live.as_mut() {
                        l.connected = false;
                    }
                })?;
            }
        }
        Ok(())
    }

    /// The record of a live source, created when new.
    fn live_record(&self, source: &str, interval: f64) -> Result<SourceRecord, String> {
        let store = self.catalog.store();
        match store.source(source).map_err(|e| e.to_string())? {
            Some(r) => Ok(r),
            None => {
                store
                    .new_source(source, Fingerprint::default(), interval, None)
                    .map_err(|e| e.to_string())?;
                store
                    .update_source(source, |r| r.live = Some(Default::default()))
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Marks a source live (URL or growing file) and starts its thread; false when it was
    /// running already.
    fn start_live(
        &self,
        record: &SourceRecord,
        url: &str,
        camera: bool,
        settings: crate::config::SourceSettings,
    ) -> Result<bool, String> {
        if self.live.is_running(&record.source) {
            return Ok(false);
        }
        if record.live.is_none()
            && matches!(record.state, SourceState::Queued | SourceState::Ingesting)
        {
            return Err(format!(
                "{} is being ingested as a file; wait until it is done",
                record.source
            ));
        }
        let interval = settings.interval;
        self.catalog
            .store()
            .update_source(&record.source, |r| {
                r.state = SourceState::Ingesting;
                r.error = None;
                r.interval = interval;
                let l = r.live.get_or_insert_with(Default::default);
                l.url = url.to_string();
                l.camera = camera;
            })
            .map_err(|e| e.to_string())?;
        let kind = if is_stream_url(url) {
            LiveKind::Stream
        } else {
            LiveKind::GrowingFile
        };
        self.live
            .start(LiveSpec {
                source: record.source.clone(),
                no: record.no,
                url: url.to_string(),
                kind,
                settings,
            })
            .map_err(|e| format!("cannot start a thread: {e}"))
    }

    /// `ingest` of a stream URL or (`follow`) a growing file.
    fn ingest_live(&self, given: &str, source: &str, url: &str) -> IngestOutcome {
        let settings = self.config.ingest.source_settings(None);
        let started = self
            .live_record(source, settings.interval)
            .and_then(|r| self.start_live(&r, url, false, settings));
        let (result, message) = match started {
            Ok(true) => (
                "queued",
                format!("live: read continuously; `frameseek forget {source}` stops it"),
            ),
            Ok(false) => ("queued", "live: already being read".to_string()),
            Err(e) => ("error", e),
        };
        IngestOutcome {
            path: redact(given),
            source: Some(source.to_string()),
            result: result.into(),
            message: Some(message),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Answers one request. Runs blocking work (model, database, file system) in place:
    /// call it from a blocking thread.
    pub fn handle(&self, request: Request) -> Result<serde_json::Value, ErrorBody> {
        fn json(v: impl serde::Serialize) -> serde_json::Value {
            serde_json::to_value(v).expect("replies serialise")
        }
        match request {
            Request::Search(r) => self.search(r).map(json),
            Request::Ingest(r) => self.ingest(r).map(json),
            Request::Status => self.status().map(json),
            Request::Forget(r) => self.forget(r).map(json),
            Request::Stats => self.stats().map(json),
            Request::Export(r) => self.export(r).map(json),
            Request::Frame(r) => self.frame(r).map(json),
        }
    }

    fn internal(e: impl std::fmt::Display) -> ErrorBody {
        err(ErrorCode::Internal, e.to_string())
    }

    fn search(&self, r: SearchRequest) -> Result<SearchReply, ErrorBody> {
        let started = Instant::now();
        let k = r.k.unwrap_or(10);
        if k == 0 || k > MAX_K {
            return Err(err(
                ErrorCode::InvalidRequest,
                format!("k must be between 1 and {MAX_K}"),
            ));
        }
        if let (Some(a), Some(b)) = (r.start_ms, r.end_ms) {
            if a > b {
                return Err(err(ErrorCode::InvalidRequest, "start_ms is after end_ms"));
            }
        }
        let query = match (&r.text, &r.image) {
            (Some(text), None) => {
                if text.trim().is_empty() {
                    return Err(err(ErrorCode::EmptyQuery, "query text is empty"));
                }
                if text.len() > MAX_QUERY_BYTES {
                    return Err(err(
                        ErrorCode::InvalidRequest,
                        format!("query text is longer than {MAX_QUERY_BYTES} bytes"),
                    ));
                }
                self.query_pool
                    .install(|| self.embedder.embed_texts(&[text]))
                    .map_err(Self::internal)?
                    .remove(0)
            }
            (None, Some(image)) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(image.as_bytes())
                    .map_err(|e| {
                        err(
                            ErrorCode::BadImage,
                            format!("image is not valid base64: {e}"),
                        )
                    })?;
                self.query_pool
                    .install(|| self.embedder.embed_image_bytes(&bytes))
                    .map_err(|e| match e {
                        EmbedError::Input(m) => err(ErrorCode::BadImage, m),
                        other => Self::internal(other),
                    })?
            }
            (Some(_), Some(_)) => {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    "give either text or image, not both",
                ))
            }
            (None, None) => return Err(err(ErrorCode::EmptyQuery, "search needs text or image")),
        };
        let filter = SearchFilter {
            source: r.source,
            start_ms: r.start_ms,
            end_ms: r.end_ms,
            after_wall_ms: r.after_wall_ms,
            before_wall_ms: r.before_wall_ms,
        };
        let gap_ms = (self.config.ingest.clip_gap * 1000.0).round() as u64;
        let clips = self
            .catalog
            .search(&query, k, &filter, gap_ms)
            .map_err(Self::internal)?;
        self.searches.fetch_add(1, Ordering::Relaxed);
        let mut window = self.search_ms.lock().expect("latency lock");
        if window.len() == 1024 {
            window.pop_front();
        }
        window.push_back(started.elapsed().as_secs_f64() * 1000.0);
        Ok(SearchReply { clips })
    }

    /// Checks that `path` exists and lies under a footage root; returns its canonical form.
    pub fn admit_path(&self, path: &str) -> Result<PathBuf, ErrorBody> {
        let p = Path::new(path);
        if !p.is_absolute() {
            return Err(err(
                ErrorCode::InvalidRequest,
                format!("{path}: paths must be absolute"),
            ));
        }
        let canonical = p
            .canonicalize()
            .map_err(|e| err(ErrorCode::NotFound, format!("{path}: {e}")))?;
        if !self.roots.iter().any(|root| canonical.starts_with(root)) {
            let roots: Vec<String> = self.roots.iter().map(|r| r.display().to_string()).collect();
            return Err(err(
                ErrorCode::Forbidden,
                format!(
                    "{} is outside the footage roots ({}); add its folder to daemon.footage_roots",
                    canonical.display(),
                    roots.join(", ")
                ),
            ));
        }
        Ok(canonical)
    }

    fn ingest(&self, r: IngestRequest) -> Result<IngestReply, ErrorBody> {
        if r.paths.is_empty() {
            return Err(err(
                ErrorCode::InvalidRequest,
                "ingest needs at least one path",
            ));
        }
        let mut outcomes = Vec::new();
        for path in &r.paths {
            if is_stream_url(path) {
                outcomes.push(self.ingest_live(path, &redact(path), path));
                continue;
            }
            let canonical = match self.admit_path(path) {
                Ok(p) => p,
                Err(e) => {
                    outcomes.push(IngestOutcome {
                        path: path.clone(),
                        source: None,
                        result: "error".into(),
                        message: Some(e.message),
                    });
                    continue;
                }
            };
            if r.follow {
                let file = canonical.display().to_string();
                outcomes.push(if canonical.is_dir() {
                    IngestOutcome {
                        path: path.clone(),
                        source: None,
                        result: "error".into(),
                        message: Some(format!(
                            "{file} is a folder; follow files that are being written"
                        )),
                    }
                } else {
                    self.ingest_live(path, &file, &file)
                });
                continue;
            }
            let files = if canonical.is_dir() {
                walk_videos(&canonical)
            } else {
                vec![canonical]
            };
            for file in files {
                outcomes.push(self.enqueue_file(path, &file, None));
            }
        }
        Ok(IngestReply { outcomes })
    }

    /// One scan of the watched folders: files whose size and modification time did not
    /// change since the previous scan (so they are no longer being written) and that are new
    /// or changed since they were indexed are queued. `seen` carries fingerprints between scans.
    pub fn scan_watched(
        &self,
        seen: &mut std::collections::HashMap<PathBuf, Fingerprint>,
    ) -> usize {
        let mut queued = 0;
        let folders = self
            .config
            .ingest
            .watch
            .iter()
            .map(|f| (f.display().to_string(), None))
            .chain(
                self.config
                    .cameras
                    .iter()
                    .filter(|c| !is_stream_url(&c.url))
                    .map(|c| (c.url.clone(), Some(c))),
            );
        for (folder, camera) in folders {
            let Ok(folder) = self.admit_path(&folder) else {
                continue;
            };
            if !folder.is_dir() {
                continue;
            }
            for file in walk_videos(&folder) {
                let Ok(fingerprint) = Fingerprint::of(&file) else {
                    continue;
                };
                let source = match camera {
                    Some(c) => match file.strip_prefix(&folder) {
                        Ok(rel) => format!("{}/{}", c.name, rel.display()),
                        Err(_) => continue,
                    },
                    None => file.display().to_string(),
                };
                let known = self.catalog.store().source(&source).ok().flatten();
                if known.is_some_and(|r| r.fingerprint == fingerprint) {
                    seen.remove(&file);
                    continue;
                }
                if seen.get(&file) == Some(&fingerprint) {
                    seen.remove(&file);
                    let outcome = self.enqueue_file_as(&source, &source, &file, camera, None);
                    tracing::info!(
                        source,
                        result = outcome.result,
                        "watched folder: new or changed file"
                    );
                    queued += 1;
                } else {
                    seen.insert(file, fingerprint);
                }
            }
        }
        queued
    }

    /// Checks the watched folders at start: each must lie under a footage root.
    pub fn check_watched(&self) -> anyhow::Result<()> {
        for folder in &self.config.ingest.watch {
            self.admit_path(&folder.display().to_string())
                .map_err(|e| anyhow::anyhow!("ingest.watch: {}", e.message))?;
        }
        Ok(())
    }

    /// True when there are folders to scan (`ingest.watch`, or cameras that are folders).
    pub fn has_watched_folders(&self) -> bool {
        !self.config.ingest.watch.is_empty()
            || self.config.cameras.iter().any(|c| !is_stream_url(&c.url))
    }

    /// Queues one file; `floor` is a retention floor carried over by `reindex` (frames below
    /// it are not stored again).
    fn enqueue_file(&self, given: &str, file: &Path, floor: Option<u64>) -> IngestOutcome {
        self.enqueue_file_as(given, &file.display().to_string(), file, None, floor)
    }

    /// Queues `file` as source `source` (a camera folder's files: `NAME/relative/path`,
    /// with the camera's settings); `floor` as for [`Daemon::enqueue_file`].
    fn enqueue_file_as(
        &self,
        given: &str,
        source: &str,
        file: &Path,
        camera: Option<&CameraConfig>,
        floor: Option<u64>,
    ) -> IngestOutcome {
        let source = source.to_string();
        let path_field = (source != file.display().to_string()).then(|| file.display().to_string());
        let outcome = |result: &str, message: Option<String>| IngestOutcome {
            path: given.to_string(),
            source: Some(source.clone()),
            result: result.into(),
            message,
        };
        if let Some(reason) = self.ingest.counters().halted_because() {
            return outcome("error", Some(reason));
        }
        let fingerprint = match Fingerprint::of(file) {
            Ok(f) => f,
            Err(e) => return outcome("error", Some(format!("cannot read {source}: {e}"))),
        };
        let store = self.catalog.store();
        let interval = self.config.ingest.source_settings(camera).interval;
        let result = (|| -> Result<IngestOutcome, String> {
            match store.source(&source).map_err(|e| e.to_string())? {
                Some(rec) if rec.fingerprint == fingerprint => Ok(match rec.state {
                    SourceState::Done => outcome(
                        "unchanged",
                        Some(format!("already indexed ({} frames)", rec.frames)),
                    ),
                    SourceState::Failed => outcome(
                        "unchanged",
                        Some(format!(
                            "failed earlier and has not changed since: {}",
                            rec.error.unwrap_or_default()
                        )),
                    ),
                    SourceState::Queued | SourceState::Ingesting => {
                        outcome("queued", Some("already queued".into()))
                    }
                }),
                Some(rec) => {
                    self.catalog
                        .clear_source(rec.no)
                        .map_err(|e| e.to_string())?;
                    let mut fresh = rec.clone();
                    fresh.fingerprint = fingerprint;
                    fresh.state = SourceState::Queued;
                    fresh.watermark_ms = None;
                    fresh.frames = 0;
                    fresh.error = None;
                    fresh.interval = interval;
                    fresh.path = path_field.clone();
                    fresh.live = None;
                    store.put_source(&fresh).map_err(|e| e.to_string())?;
                    self.ingest
                        .submit(self.job(&source, fresh.no, file, camera));
                    Ok(outcome(
                        "requeued",
                        Some("the file changed since it was indexed".into()),
                    ))
                }
                None => {
                    let mut rec = store
                        .new_source(&source, fingerprint, interval, None)
                        .map_err(|e| e.to_string())?;
                    if floor.is_some() {
                        rec = store
                            .update_source(&source, |r| r.retain_from_ms = floor)
                            .map_err(|e| e.to_string())?;
                    }
                    if path_field.is_some() {
                        store
                            .update_source(&source, |r| r.path = path_field.clone())
                            .map_err(|e| e.to_string())?;
                    }
                    self.ingest.submit(self.job(&source, rec.no, file, camera));
                    Ok(outcome("queued", None))
                }
            }
        })();
        result.unwrap_or_else(|e| {
            let dir = &self.config.daemon.state_dir;
            let reserve = ((self.config.ingest.resume_free_mb * 1e6) as u64).min(16 << 20);
            if crate::ingest::is_disk_full(&e, dir, reserve) {
                let message =
                    crate::ingest::disk_full_message(dir, &e, self.config.ingest.resume_free_mb);
                self.ingest.counters().halt(message.clone());
                return outcome("error", Some(message));
            }
            outcome("error", Some(e))
        })
    }

    /// The file of an indexed source, checked: known to the store, still under a footage
    /// root, and unchanged since it was indexed (so stored times still point at the same
    /// pictures).
    fn indexed_file(&self, source: &str) -> Result<PathBuf, ErrorBody> {
        let record = self
            .catalog
            .store()
            .source(source)
            .map_err(Self::internal)?
            .ok_or_else(|| {
                err(
                    ErrorCode::NotFound,
                    format!("unknown source {source:?}: `frameseek status` lists the sources"),
                )
            })?;
        let file = self.admit_path(source).map_err(|e| match e.code {
            ErrorCode::NotFound => err(
                ErrorCode::NotFound,
                format!("{source} is gone since it was indexed ({}); restore it or `frameseek forget` it", e.message),
            ),
            _ => e,
        })?;
        let now = Fingerprint::of(&file)
            .map_err(|e| err(ErrorCode::NotFound, format!("cannot read {source}: {e}")))?;
        if now != record.fingerprint {
            return Err(err(
                ErrorCode::SourceChanged,
                format!(
                    "{source} changed since it was indexed (size or modification time differ), so its stored times may not match; ingest it again"
                ),
            ));
        }
        Ok(file)
    }

    fn media_error(e: crate::media::MediaError) -> ErrorBody {
        match e {
            crate::media::MediaError::OutOfRange { .. } => {
                err(ErrorCode::OutOfRange, e.to_string())
            }
            other => Self::internal(other),
        }
    }

    fn export(&self, r: ExportRequest) -> Result<ExportReply, ErrorBody> {
        if r.end_ms <= r.start_ms {
            return Err(err(
                ErrorCode::InvalidRequest,
                format!(
                    "end_ms ({}) must be after start_ms ({})",
                    r.end_ms, r.start_ms
                ),
            ));
        }
        let file = self.indexed_file(&r.source)?;
        let dir = self.config.daemon.export_dir();
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(&dir)
                .map_err(|e| {
                    Self::internal(format!(
                        "cannot create export folder {} ({e}); check daemon.export_dir",
                        dir.display()
                    ))
                })?;
        }
        let (stem, ext) = export_name(&r.source, r.start_ms, r.end_ms);
        let clip = dir.join(format!("{stem}.{ext}"));
        // Unique per export in flight, so two exports of one range do not write one file.
        static PARTIAL: AtomicU64 = AtomicU64::new(0);
        let n = PARTIAL.fetch_add(1, Ordering::Relaxed);
        let partial = dir.join(format!(".{stem}.{n}.partial.{ext}"));
        let thumb = dir.join(format!("{stem}.jpg"));
        let written =
            crate::media::remux_range(&file, &partial, r.start_ms, r.end_ms).map_err(|e| {
                let _ = std::fs::remove_file(&partial);
                Self::media_error(e)
            })?;
        let best_ms = r.best_ms.unwrap_or(r.start_ms);
        let frame = crate::media::frame_jpeg(&file, best_ms, None).map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            Self::media_error(e)
        })?;
        let write = |path: &Path, result: std::io::Result<()>| {
            result.map_err(|e| Self::internal(format!("cannot write {}: {e}", path.display())))
        };
        let thumb_partial = dir.join(format!(".{stem}.{n}.partial.jpg"));
        write(
            &thumb,
            std::fs::write(&thumb_partial, &frame.jpeg)
                .and_then(|()| set_private(&thumb_partial))
                .and_then(|()| std::fs::rename(&thumb_partial, &thumb)),
        )
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&thumb_partial);
            let _ = std::fs::remove_file(&partial);
        })?;
        write(
            &clip,
            set_private(&partial).and_then(|()| std::fs::rename(&partial, &clip)),
        )
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })?;
        let bytes = std::fs::metadata(&clip).map(|m| m.len()).unwrap_or(0);
        tracing::info!(source = %r.source, clip = %clip.display(), start_ms = written.start_ms, end_ms = written.end_ms, "exported");
        Ok(ExportReply {
            source: r.source,
            clip: clip.display().to_string(),
            thumbnail: thumb.display().to_string(),
            requested_start_ms: r.start_ms,
            requested_end_ms: written.requested_end_ms,
            start_ms: written.start_ms,
            end_ms: written.end_ms,
            best_ms: frame.at_ms,
            codec: written.codec,
            bytes,
        })
    }

    fn frame(&self, r: FrameRequest) -> Result<FrameReply, ErrorBody> {
        let file = self.indexed_file(&r.source)?;
        let frame =
            crate::media::frame_jpeg(&file, r.at_ms, r.max_width).map_err(Self::media_error)?;
        Ok(FrameReply {
            source: r.source,
            at_ms: frame.at_ms,
            width: frame.width,
            height: frame.height,
            jpeg: base64::engine::general_purpose::STANDARD.encode(&frame.jpeg),
        })
    }

    fn status(&self) -> Result<StatusReply, ErrorBody> {
        let sources = self
            .catalog
            .store()
            .sources()
            .map_err(Self::internal)?
            .into_iter()
            .map(|r| {
                let progress = match (r.state, r.duration_ms, r.watermark_ms) {
                    (SourceState::Done, _, _) => Some(1.0),
                    (_, Some(d), Some(w)) if d > 0 => Some((w as f64 / d as f64).min(1.0)),
                    (_, Some(_), None) => Some(0.0),
                    _ => None,
                };
                SourceStatus {
                    source: r.source,
                    state: r.state.as_str().into(),
                    frames: r.frames,
                    error: r.error,
                    watermark_ms: r.watermark_ms,
                    duration_ms: r.duration_ms,
                    progress,
                    decoded: r.decoded,
                    skipped: r.skipped,
                    start_wall: r.start_wall_ms.map(crate::clock::format_utc),
                    error_at: r.error_at_ms.map(crate::clock::format_utc),
                    live: r.live.map(|l| LiveStatus {
                        url: redact(&l.url),
                        camera: l.camera,
                        connected: l.connected,
                        reconnects: l.reconnects,
                        outages: l
                            .outages
                            .into_iter()
                            .map(|o| OutageStatus {
                                start: crate::clock::format_utc(o.start_ms),
                                end: o.end_ms.map(crate::clock::format_utc),
                                start_ms: o.start_ms,
                                end_ms: o.end_ms,
                                reason: o.reason,
                                attempts: o.attempts,
                            })
                            .collect(),
                    }),
                }
            })
            .collect();
        let identity = self.embedder.identity();
        Ok(StatusReply {
            version: env!("CARGO_PKG_VERSION").into(),
            protocol: PROTOCOL_VERSION,
            model: ModelInfo {
                id: identity.id.clone(),
                dim: identity.dim,
            },
            frames: self.catalog.store().frame_count() as u64,
            queue: self.ingest.counters().queued.load(Ordering::SeqCst),
            sources,
            ingest_error: self.ingest.counters().halted_because(),
            retention_removed: self.catalog.store().retention_removed(),
        })
    }

    fn forget(&self, r: ForgetRequest) -> Result<ForgetReply, ErrorBody> {
        if self.live.stop(&r.source) {
            tracing::info!(source = %r.source, "live source stopped by forget");
        }
        match self.catalog.forget(&r.source) {
            Ok(n) => Ok(ForgetReply {
                source: r.source,
                frames_removed: n,
            }),
            Err(crate::catalog::CatalogError::Store(crate::store::StoreError::UnknownSource(
                s,
            ))) => Err(err(
                ErrorCode::NotFound,
                format!("no source {s}; `frameseek status` lists the sources"),
            )),
            Err(e) => Err(Self::internal(e)),
        }
    }

    fn stats(&self) -> Result<StatsReply, ErrorBody> {
        let mut latencies: Vec<f64> = self
            .search_ms
            .lock()
            .expect("latency lock")
            .iter()
            .copied()
            .collect();
        latencies.sort_by(f64::total_cmp);
        let recent = Instant::now() - std::time::Duration::from_secs(60);
        let mut ingest_rates: Vec<IngestRate> = self
            .ingest
            .counters()
            .rates
            .lock()
            .expect("rates lock")
            .iter()
            .filter(|(_, r)| r.last >= recent)
            .map(|(source, r)| IngestRate {
                source: source.clone(),
                frames: r.frames,
                frames_per_s: r.frames_per_second(),
            })
            .collect();
        ingest_rates.sort_by(|a, b| a.source.cmp(&b.source));
        let c = self.ingest.counters();
        let batches = c.batches.load(Ordering::Relaxed);
        Ok(StatsReply {
            frames: self.catalog.store().frame_count() as u64,
            indexed: self.catalog.indexed() as u64,
            sources: self
                .catalog
                .store()
                .sources()
                .map_err(Self::internal)?
                .len() as u64,
            queue: c.queued.load(Ordering::SeqCst),
            frames_embedded: c.frames_embedded.load(Ordering::Relaxed),
            embed_batch_ms: if batches == 0 {
                0.0
            } else {
                c.embed_us.load(Ordering::Relaxed) as f64 / batches as f64 / 1000.0
            },
            searches: self.searches.load(Ordering::Relaxed),
            search_ms_p50: percentile(&latencies, 0.50),
            search_ms_p99: percentile(&latencies, 0.99),
            index_bytes: std::fs::metadata(self.config.daemon.state_dir.join("index.usearch"))
                .map(|m| m.len())
                .unwrap_or(0),
            ingest_rates,
            uptime_s: self.started.elapsed().as_secs_f64(),
            retention_removed: self.catalog.store().retention_removed(),
            stage_ms: StageTimes {
                decode: c.decode_us.load(Ordering::Relaxed) as f64 / 1000.0,
                convert: c.convert_us.load(Ordering::Relaxed) as f64 / 1000.0,
                handoff: c.handoff_us.load(Ordering::Relaxed) as f64 / 1000.0,
                embed: c.embed_us.load(Ordering::Relaxed) as f64 / 1000.0,
                commit: c.commit_us.load(Ordering::Relaxed) as f64 / 1000.0,
            },
        })
    }

    /// Stops the pipeline (committing what was decoded), checkpoints the index and flushes
    /// the database.
    pub fn shutdown(&self) -> anyhow::Result<()> {
        self.live.stop_all();
        self.ingest.shutdown();
        let written = self
            .catalog
            .checkpoint_if_changed()
            .context("final index checkpoint failed")?;
        self.catalog
            .store()
            .flush()
            .context("final database flush failed")?;
        tracing::info!(
            frames = self.catalog.indexed(),
            index_written = written,
            "state saved"
        );
        Ok(())
    }
}

/// File in the state folder listing sources to read again (written by `frameseek reindex`).
pub const REQUEUE_FILE: &str = "requeue.json";

/// One entry of [`REQUEUE_FILE`]: a source id (older files), or a source with the
/// retention floor it had, so frames retention removed are not stored again.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum RequeueEntry {
    /// Just the id.
    Source(String),
    /// The id and its retention floor.
    WithFloor {
        /// Source id.
        source: String,
        /// Retention floor, ms.
        #[serde(default)]
        retain_from_ms: Option<u64>,
    },
}

/// Moves the database, index and manifest into `state_dir/before-reindex/` and writes
/// `requeue.json` with every source of the old database. Returns the sources.
pub fn set_aside_for_reindex(state_dir: &Path) -> anyhow::Result<Vec<String>> {
    let db = state_dir.join("db");
    if !db.exists() {
        anyhow::bail!(
            "no database in {}: nothing to re-index",
            state_dir.display()
        );
    }
    let records = {
        let store = crate::store::Store::open(&db)
            .with_context(|| format!("cannot open {}", db.display()))?;
        store.sources()?
    };
    let sources: Vec<String> = records.iter().map(|r| r.source.clone()).collect();
    let entries: Vec<RequeueEntry> = records
        .into_iter()
        .map(|r| RequeueEntry::WithFloor {
            source: r.source,
            retain_from_ms: r.retain_from_ms,
        })
        .collect();
    let aside = state_dir.join("before-reindex");
    if aside.exists() {
        anyhow::bail!(
            "{} exists from an earlier re-index; move it away first",
            aside.display()
        );
    }
    std::fs::create_dir(&aside).with_context(|| format!("cannot create {}", aside.display()))?;
    for name in ["db", "index.usearch", "manifest.json"] {
        let from = state_dir.join(name);
        if from.exists() {
            std::fs::rename(&from, aside.join(name))
                .with_context(|| format!("cannot move {}", from.display()))?;
        }
    }
    std::fs::write(state_dir.join(REQUEUE_FILE), serde_json::to_vec(&entries)?)?;
    Ok(sources)
}

/// Container extensions an export keeps; other sources are exported as Matroska.
const EXPORT_EXTENSIONS: &[&str] = &["mp4", "m4v", "mov", "mkv", "webm", "ts", "avi"];

/// The file name (without extension) and extension of an export: the source's file stem,
/// a short hash of its full path (two cameras may both write `footage.mp4`) and the range.
fn export_name(source: &str, start_ms: u64, end_ms: u64) -> (String, String) {
    use sha2::Digest;
    let path = Path::new(source);
    let stem: String = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let hash = sha2::Sha256::digest(source.as_bytes());
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .filter(|e| EXPORT_EXTENSIONS.contains(&e.as_str()))
        .unwrap_or_else(|| "mkv".into());
    (
        format!(
            "{stem}-{:02x}{:02x}{:02x}{:02x}-{start_ms}-{end_ms}",
            hash[0], hash[1], hash[2], hash[3]
        ),
        ext,
    )
}

/// Gives a file written by the daemon mode 0640 (owner and the daemon's group).
fn set_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o640))
}

/// The value at fraction `q` of sorted samples (nearest rank), 0 when empty.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Video files under `dir`, recursively, sorted; hidden entries are skipped.
pub fn walk_videos(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => {
                    let ext = path
                        .extension()
                        .map(|x| x.to_string_lossy().to_lowercase())
                        .unwrap_or_default();
                    if VIDEO_EXTENSIONS.contains(&ext.as_str()) {
                        out.push(path);
                    }
                }
                _ => {}
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
    }

    #[test]
    fn export_names_keep_the_container_and_tell_same_named_files_apart() {
        let (a, ext) = export_name("/srv/cam1/footage.mp4", 1000, 5000);
        let (b, _) = export_name("/srv/cam2/footage.mp4", 1000, 5000);
        assert_eq!(ext, "mp4");
        assert!(
            a.starts_with("footage-") && a.ends_with("-1000-5000"),
            "{a}"
        );
        assert_ne!(a, b);
        assert_eq!(export_name("/srv/x/rec.DAV", 0, 1).1, "mkv");
        assert!(export_name("/srv/a b;c.mkv", 0, 1).0.starts_with("a_b_c-"));
    }

    #[test]
    fn folders_are_walked_for_videos_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("cam1/2026")).unwrap();
        std::fs::create_dir_all(dir.path().join(".hidden")).unwrap();
        for f in [
            "cam1/a.MP4",
            "cam1/2026/b.mkv",
            "cam1/notes.txt",
            ".hidden/c.mp4",
            "d.ts",
        ] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let found: Vec<String> = walk_videos(dir.path())
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(found, vec!["cam1/2026/b.mkv", "cam1/a.MP4", "d.ts"]);
    }
}
