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
        let embedder = Arc::new(Embedder::load(&config.model.path, device)?);
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
            batch_size: config.model.batch_size,
        };
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
        };
        daemon.resume_unfinished()?;
        Ok(daemon)
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
        };
        let gap_ms = (self.config.ingest.clip_gap * 1000.0).round() as u64;
        let clips = self
            .catalog
            .search(&query, k, &filter, gap_ms)
            .map_err(Self::internal)?;
        self.searches.fetch_add(1, Ordering::Relaxed);
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
