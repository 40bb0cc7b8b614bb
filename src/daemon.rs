//! The daemon's runtime state (opened store, loaded model, running pipeline) and the
//! handling of each request.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use base64::Engine;

use crate::catalog::{Catalog, SearchFilter};
use crate::config::Config;
use crate::embed::{DeviceChoice, EmbedError, Embedder};
use crate::index::OpenOutcome;
use crate::ingest::{Ingest, IngestSettings, Job};
use crate::protocol::*;
use crate::store::{Fingerprint, SourceState};

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
    roots: Vec<PathBuf>,
    started: Instant,
    searches: AtomicU64,
    search_ms: std::sync::Mutex<std::collections::VecDeque<f64>>,
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
        let device = DeviceChoice::parse(&config.model.device).map_err(anyhow::Error::msg)?;
        let embedder = Arc::new(Embedder::load_with_text(
            &config.model.path,
            device,
            crate::embed::Precision::Auto,
            config.model.text_precision(),
        )?);
        tracing::info!(model = %config.model.path, dim = embedder.dim(), device = embedder.device_name(), "model loaded");
        let (catalog, outcome) = Catalog::open(
            state_dir,
            embedder.identity(),
            config.ingest.checkpoint_frames,
        )
        .with_context(|| format!("cannot open the store in {}", state_dir.display()))?;
        match outcome {
            OpenOutcome::Loaded { readded } => {
                tracing::info!(frames = catalog.indexed(), readded, "index loaded")
            }
            OpenOutcome::Rebuilt { reason } => {
                tracing::warn!(frames = catalog.indexed(), %reason, "index rebuilt from the stored vectors")
            }
        }
        let catalog = Arc::new(catalog);
        let settings = IngestSettings {
            decode_workers: config.ingest.decode_workers,
            decoder_threads: config.ingest.decoder_threads,
            batch_size: embedder.batch_size(config.model.batch_size),
            hwaccel: crate::decode::HwAccel::parse(&config.ingest.hwaccel)
                .map_err(anyhow::Error::msg)?,
            policy: config.ingest.policy(),
            time_pattern: config.ingest.time_pattern.clone(),
        };
        tracing::info!(
            batch_size = settings.batch_size,
            dtype = ?embedder.dtype(),
            hwaccel = %config.ingest.hwaccel,
            "embedding settings"
        );
        let ingest = Ingest::start(settings, embedder.clone(), catalog.clone())
            .context("cannot start ingest threads")?;
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
            roots,
            started: Instant::now(),
            searches: AtomicU64::new(0),
            search_ms: Default::default(),
        };
        daemon.check_watched()?;
        daemon.resume_unfinished()?;
        daemon.requeue_after_reindex()?;
        Ok(daemon)
    }

    fn requeue_after_reindex(&self) -> anyhow::Result<()> {
        let path = self.config.daemon.state_dir.join(REQUEUE_FILE);
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(());
        };
        let sources: Vec<String> = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a list of sources", path.display()))?;
        for source in &sources {
            match self.admit_path(source) {
                Ok(file) => {
                    let outcome = self.enqueue_file(source, &file);
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
            if matches!(r.state, SourceState::Queued | SourceState::Ingesting) {
                tracing::info!(source = %r.source, watermark_ms = ?r.watermark_ms, "resuming");
                self.ingest.submit(Job {
                    source: r.source.clone(),
                    no: r.no,
                    path: PathBuf::from(&r.source),
                    resume_after_ms: r.watermark_ms,
                    interval: r.interval,
                });
            }
        }
        Ok(())
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
                self.embedder
                    .embed_texts(&[text])
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
                self.embedder
                    .embed_image_bytes(&bytes)
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
            let files = if canonical.is_dir() {
                walk_videos(&canonical)
            } else {
                vec![canonical]
            };
            for file in files {
                outcomes.push(self.enqueue_file(path, &file));
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
        for folder in &self.config.ingest.watch {
            let Ok(folder) = self.admit_path(&folder.display().to_string()) else {
                continue;
            };
            for file in walk_videos(&folder) {
                let Ok(fingerprint) = Fingerprint::of(&file) else {
                    continue;
                };
                let source = file.display().to_string();
                let known = self.catalog.store().source(&source).ok().flatten();
                if known.is_some_and(|r| r.fingerprint == fingerprint) {
                    seen.remove(&file);
                    continue;
                }
                if seen.get(&file) == Some(&fingerprint) {
                    seen.remove(&file);
                    let outcome = self.enqueue_file(&source, &file);
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

    fn enqueue_file(&self, given: &str, file: &Path) -> IngestOutcome {
        let source = file.display().to_string();
        let outcome = |result: &str, message: Option<String>| IngestOutcome {
            path: given.to_string(),
            source: Some(source.clone()),
            result: result.into(),
            message,
        };
        let fingerprint = match Fingerprint::of(file) {
            Ok(f) => f,
            Err(e) => return outcome("error", Some(format!("cannot read {source}: {e}"))),
        };
        let store = self.catalog.store();
        let interval = self.config.ingest.sample_interval;
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
                    store.put_source(&fresh).map_err(|e| e.to_string())?;
                    self.ingest.submit(Job {
                        source: source.clone(),
                        no: fresh.no,
                        path: file.to_path_buf(),
                        resume_after_ms: None,
                        interval,
                    });
                    Ok(outcome(
                        "requeued",
                        Some("the file changed since it was indexed".into()),
                    ))
                }
                None => {
                    let rec = store
                        .new_source(&source, fingerprint, interval, None)
                        .map_err(|e| e.to_string())?;
                    self.ingest.submit(Job {
                        source: source.clone(),
                        no: rec.no,
                        path: file.to_path_buf(),
                        resume_after_ms: None,
                        interval,
                    });
                    Ok(outcome("queued", None))
                }
            }
        })();
        result.unwrap_or_else(|e| outcome("error", Some(e)))
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
        })
    }

    fn forget(&self, r: ForgetRequest) -> Result<ForgetReply, ErrorBody> {
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
        self.ingest.shutdown();
        self.catalog
            .checkpoint()
            .context("final index checkpoint failed")?;
        self.catalog
            .store()
            .flush()
            .context("final database flush failed")?;
        tracing::info!(frames = self.catalog.indexed(), "state saved");
        Ok(())
    }
}

/// File in the state folder listing sources to read again (written by `frameseek reindex`).
pub const REQUEUE_FILE: &str = "requeue.json";

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
    let sources: Vec<String> = {
        let store = crate::store::Store::open(&db)
            .with_context(|| format!("cannot open {}", db.display()))?;
        store.sources()?.into_iter().map(|r| r.source).collect()
    };
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
    std::fs::write(state_dir.join(REQUEUE_FILE), serde_json::to_vec(&sources)?)?;
    Ok(sources)
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
