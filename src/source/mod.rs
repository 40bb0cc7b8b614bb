//! The source stage: what the daemon reads and how a source gets in. Files and folders
//! (checked against the footage roots), watched folders ([`watch`]), live streams and
//! growing files ([`live`], started by [`streams`]), cameras from the configuration
//! ([`camera`]), and the rules for URLs ([`url`]). [`Sources`] admits each one into the
//! store and hands files to the ingest queue and streams to their own threads.

pub mod camera;
pub mod folder;
pub mod live;
pub mod reindex;
mod reload;
mod streams;
pub mod url;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::decode::SourceSettings;
use crate::ingest::{Ingest, Job};
use crate::store::{Fingerprint, SourceRecord, SourceState, StoreError};

pub use camera::{CameraConfig, SamplingDefaults};
pub use folder::{walk_videos, VIDEO_EXTENSIONS};
pub use live::LiveSettings;
pub use reload::{ReloadError, SourceChanges};
pub use url::{has_secret, is_stream_url, redact, stream_source_id};
pub use watch::WatchState;

/// Why a path given to the daemon is refused.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    /// A relative path (the daemon's working folder means nothing to a client).
    #[error("{0}: paths must be absolute")]
    NotAbsolute(String),
    /// The path does not exist or cannot be resolved.
    #[error("{path}: {source}")]
    Missing {
        /// The path as given.
        path: String,
        /// Why it cannot be resolved.
        source: std::io::Error,
    },
    /// The path is a FIFO, a device or a socket: opening one can block a reader forever.
    #[error("{0} is not a regular file (a FIFO, device or socket); only video files are read")]
    NotRegular(String),
    /// The path resolves outside every footage root.
    #[error(
        "{path} is outside the footage roots ({roots}); add its folder to daemon.footage_roots"
    )]
    OutsideRoots {
        /// The resolved path.
        path: String,
        /// The roots, comma-separated.
        roots: String,
    },
}

/// Why the file of an indexed source cannot be read back (export, frame).
#[derive(Debug, thiserror::Error)]
pub enum IndexedFileError {
    /// The store has no such source.
    #[error("unknown source {0:?}: `frameseek status` lists the sources")]
    Unknown(String),
    /// The file is gone or unreadable since it was indexed.
    #[error("{id} is gone since it was indexed ({reason}); restore it or `frameseek forget` it")]
    Gone {
        /// Source id.
        id: String,
        /// Why it cannot be read.
        reason: String,
    },
    /// The path is no longer admitted (outside the roots, or not a path).
    #[error(transparent)]
    Refused(AdmitError),
    /// The file cannot be read now.
    #[error("cannot read {id}: {error}")]
    Unreadable {
        /// Source id.
        id: String,
        /// Why.
        error: std::io::Error,
    },
    /// A live stream: nothing of it was recorded, only its frames' embeddings.
    #[error("{0} is a live stream: frameseek keeps only its frames' embeddings, not the video, so there is nothing to export or show")]
    NotRecorded(String),
    /// The file changed since it was indexed.
    #[error("{0} changed since it was indexed (size or modification time differ), so its stored times may not match; ingest it again")]
    Changed(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The folders the daemon may read footage from, resolved once.
#[derive(Debug, Clone)]
pub struct FootageRoots(Vec<PathBuf>);

impl FootageRoots {
    /// The roots as configured, each resolved to its canonical form where it exists.
    pub fn new(roots: &[PathBuf]) -> Self {
        Self(
            roots
                .iter()
                .map(|r| r.canonicalize().unwrap_or_else(|_| r.clone()))
                .collect(),
        )
    }

    /// Checks that `path` is absolute, exists and lies under a root; returns its canonical
    /// form.
    pub fn admit(&self, path: &str) -> Result<PathBuf, AdmitError> {
        let p = Path::new(path);
        if !p.is_absolute() {
            return Err(AdmitError::NotAbsolute(path.to_string()));
        }
        let canonical = p.canonicalize().map_err(|source| AdmitError::Missing {
            path: path.to_string(),
            source,
        })?;
        if !self.0.iter().any(|root| canonical.starts_with(root)) {
            let roots: Vec<String> = self.0.iter().map(|r| r.display().to_string()).collect();
            return Err(AdmitError::OutsideRoots {
                path: canonical.display().to_string(),
                roots: roots.join(", "),
            });
        }
        Ok(canonical)
    }
}

/// Refuses what is not a regular file or a folder (a FIFO, a device, a socket): opening one
/// blocks until something writes to it, which would hold a decode worker forever.
fn regular_file(path: &Path) -> Result<(), AdmitError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(AdmitError::NotRegular(path.display().to_string())),
        Err(source) => Err(AdmitError::Missing {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// What became of one path or URL of an `ingest` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// Queued for ingest (or already queued, or a live source started or running).
    Queued,
    /// Changed since it was indexed: its frames were dropped and it is queued again.
    Requeued,
    /// Indexed already (or failed earlier) and unchanged since.
    Unchanged,
    /// Refused or failed; the message says why.
    Error,
}

impl Admitted {
    /// The name the protocol uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Requeued => "requeued",
            Self::Unchanged => "unchanged",
            Self::Error => "error",
        }
    }
}

/// The outcome of one path or URL of an `ingest` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The path or URL as given (a URL without its password).
    pub given: String,
    /// The source id it became, when it became one.
    pub source: Option<String>,
    /// What happened.
    pub result: Admitted,
    /// Details for the user.
    pub message: Option<String>,
}

/// Settings of the source stage, from the configuration.
#[derive(Debug, Clone)]
pub struct SourcesSettings {
    /// `daemon.footage_roots`.
    pub roots: Vec<PathBuf>,
    /// `[ingest]`'s sampling keys.
    pub defaults: SamplingDefaults,
    /// `[[cameras]]`.
    pub cameras: Vec<CameraConfig>,
    /// `ingest.watch`.
    pub watch: Vec<PathBuf>,
    /// Settings shared by every live source.
    pub live: LiveSettings,
    /// `ingest.client_streams`: the stream URLs socket clients may add.
    pub client_streams: url::ClientStreams,
}

/// The part of the settings a reload changes: `[[cameras]]` and `ingest.watch`.
#[derive(Debug, Clone)]
struct Configured {
    cameras: Vec<CameraConfig>,
    watch: Vec<PathBuf>,
}

/// The source stage of a running daemon: admits files, folders, streams and cameras, and
/// starts their reading.
pub struct Sources {
    catalog: Arc<Catalog>,
    ingest: Arc<Ingest>,
    live: live::LiveSources,
    roots: FootageRoots,
    settings: SourcesSettings,
    /// The cameras and watched folders in force: `settings`' at start, then a reload's
    /// ([`Sources::reconfigure`]).
    configured: std::sync::RwLock<Arc<Configured>>,
    /// Held while a source is looked up and created or reset, so that two admissions of
    /// one file (a watch scan and a client, or two clients) cannot both create it.
    admitting: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("roots", &self.roots)
            .field("live", &self.live)
            .finish()
    }
}

impl Sources {
    /// The source stage over an open catalog and a running pipeline; nothing is read yet
    /// ([`Sources::start`] resumes and starts what the store and configuration hold).
    pub fn new(
        catalog: Arc<Catalog>,
        ingest: Arc<Ingest>,
        geometry: crate::embed::PixelGeometry,
        settings: SourcesSettings,
    ) -> anyhow::Result<Self> {
        let sink = ingest
            .frame_sink()
            .ok_or_else(|| anyhow::anyhow!("the ingest pipeline takes no frames"))?;
        let live = live::LiveSources::new(catalog.clone(), sink, geometry, settings.live.clone());
        Ok(Self {
            roots: FootageRoots::new(&settings.roots),
            catalog,
            ingest,
            live,
            configured: std::sync::RwLock::new(Arc::new(Configured {
                cameras: settings.cameras.clone(),
                watch: settings.watch.clone(),
            })),
            settings,
            admitting: std::sync::Mutex::new(()),
        })
    }

    /// The cameras and watched folders in force.
    fn configured(&self) -> Arc<Configured> {
        self.configured.read().expect("configured sources").clone()
    }

    /// At start: checks the watched folders, resumes unfinished sources, starts the cameras
    /// and queues what `frameseek reindex` set aside.
    pub fn start(&self, state_dir: &Path) -> anyhow::Result<()> {
        self.check_watched()?;
        // Cameras first: resumed client streams must not take the slots of
        // `ingest.max_live_sources` that the configured cameras need.
        self.start_cameras()?;
        self.resume_unfinished()?;
        self.requeue_after_reindex(state_dir)?;
        Ok(())
    }

    /// The footage roots.
    pub fn roots(&self) -> &FootageRoots {
        &self.roots
    }

    /// Answers an `ingest` request: each path (a file, or a folder walked for videos), or
    /// stream URL; `follow` reads files that are still being written as live sources.
    pub fn ingest(&self, paths: &[String], follow: bool) -> Vec<Admission> {
        let mut outcomes = Vec::new();
        for path in paths {
            if is_stream_url(path) {
                outcomes.push(self.ingest_live(path, &stream_source_id(path), path));
                continue;
            }
            let canonical = match self.roots.admit(path) {
                Ok(p) => p,
                Err(e) => {
                    outcomes.push(Admission {
                        given: path.clone(),
                        source: None,
                        result: Admitted::Error,
                        message: Some(e.to_string()),
                    });
                    continue;
                }
            };
            if follow {
                let file = canonical.display().to_string();
                outcomes.push(if canonical.is_dir() {
                    Admission {
                        given: path.clone(),
                        source: None,
                        result: Admitted::Error,
                        message: Some(format!(
                            "{file} is a folder; follow files that are being written"
                        )),
                    }
                } else if let Err(e) = regular_file(&canonical) {
                    Admission {
                        given: path.clone(),
                        source: None,
                        result: Admitted::Error,
                        message: Some(e.to_string()),
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
        outcomes
    }

    /// Stops a live source's thread (before `forget`); false when none was running.
    pub fn stop_live(&self, source: &str) -> bool {
        self.live.stop(source)
    }

    /// Stops every live source (at shutdown; they resume at the next start).
    pub fn stop_all(&self) {
        self.live.stop_all();
    }

    /// Queues every file source still `queued` or `ingesting` (after its watermark) and
    /// starts every such live source that is not a camera (cameras start from the
    /// configuration). Each is admitted again under today's configuration: a file or
    /// followed file outside the footage roots, or a client stream that
    /// `ingest.client_streams` no longer allows, is marked failed with the reason instead of
    /// read; so is a live source over `ingest.max_live_sources`.
    pub fn resume_unfinished(&self) -> anyhow::Result<()> {
        let store = self.catalog.store();
        for r in store.sources()? {
            if !matches!(r.state, SourceState::Queued | SourceState::Ingesting) {
                continue;
            }
            let refused = match &r.live {
                Some(l) if l.camera => continue,
                Some(l) if is_stream_url(&l.url) => self
                    .settings
                    .client_streams
                    .check(&l.url)
                    .err()
                    .map(|e| e.to_string()),
                Some(l) => self.roots.admit(&l.url).err().map(|e| e.to_string()),
                None => self
                    .roots
                    .admit(r.path.as_deref().unwrap_or(&r.source))
                    .err()
                    .map(|e| e.to_string()),
            };
            if let Some(reason) = refused {
                tracing::warn!(source = %r.source, %reason, "not resumed");
                self.fail_source(&r.source, format!("not resumed: {reason}"))?;
                continue;
            }
            tracing::info!(source = %r.source, watermark_ms = ?r.watermark_ms, "resuming");
            match &r.live {
                Some(l) => {
                    let settings = self.settings.defaults.for_camera(None);
                    if let Err(e) = self.start_live(&r, &l.url.clone(), false, settings) {
                        tracing::warn!(source = %r.source, error = %e, "not resumed");
                        self.fail_source(&r.source, format!("not resumed: {e}"))?;
                    }
                }
                None => {
                    let path = PathBuf::from(r.path.as_deref().unwrap_or(&r.source));
                    let mut settings = self.settings_of(self.camera_of_file(&r).as_ref());
                    settings.interval = r.interval;
                    self.ingest.submit(Job {
                        source: r.source.clone(),
                        no: r.no,
                        path,
                        resume_after_ms: r.watermark_ms,
                        settings,
                    });
                }
            }
        }
        Ok(())
    }

    /// Marks a source failed with `reason` (shown by `status`); a live one as disconnected.
    fn fail_source(&self, source: &str, reason: String) -> Result<(), StoreError> {
        self.catalog.store().update_source(source, |r| {
            r.state = SourceState::Failed;
            r.error = Some(reason.clone());
            if let Some(l) = r.live.as_mut() {
                l.connected = false;
            }
        })?;
        Ok(())
    }

    /// The file of an indexed source, checked: known to the store, recorded in a file,
    /// still under a footage root, and unchanged since it was indexed (so stored times still
    /// point at the same pictures).
    ///
    /// The file is the record's `path` (a camera folder's file, `NAME/relative/path`), the
    /// live URL of a growing file (`ingest --follow`, a camera whose `url` is a file), or
    /// else the source id itself (files and folders given to `ingest`, watched folders). A
    /// live stream was never recorded: [`IndexedFileError::NotRecorded`].
    ///
    /// "Unchanged": a file's size and modification time equal those it had when queued. A
    /// growing file's are recorded when it stops growing; while it is still followed (or
    /// when none were recorded), only that it has not shrunk below them can be checked, which
    /// is what a file written by appending allows: the part already indexed stays as it was.
    pub fn indexed_file(&self, source: &str) -> Result<PathBuf, IndexedFileError> {
        let record = self
            .catalog
            .store()
            .source(source)?
            .ok_or_else(|| IndexedFileError::Unknown(source.to_string()))?;
        let (file, growing) = match (&record.live, &record.path) {
            (Some(l), _) if l.url.is_empty() || is_stream_url(&l.url) => {
                return Err(IndexedFileError::NotRecorded(source.to_string()))
            }
            (Some(l), _) => (l.url.as_str(), true),
            (None, Some(path)) => (path.as_str(), false),
            (None, None) => (source, false),
        };
        let file = self.roots.admit(file).map_err(|e| match e {
            AdmitError::Missing { .. } => IndexedFileError::Gone {
                id: source.to_string(),
                reason: e.to_string(),
            },
            other => IndexedFileError::Refused(other),
        })?;
        let now = Fingerprint::of(&file).map_err(|error| IndexedFileError::Unreadable {
            id: source.to_string(),
            error,
        })?;
        let followed = growing
            && (record.fingerprint == Fingerprint::default()
                || matches!(record.state, SourceState::Queued | SourceState::Ingesting));
        let unchanged = if followed {
            now.size >= record.fingerprint.size
        } else {
            now == record.fingerprint
        };
        if !unchanged {
            return Err(IndexedFileError::Changed(source.to_string()));
        }
        Ok(file)
    }

    /// The camera whose folder holds a file source (`NAME/relative/path`), if any.
    fn camera_of_file(&self, r: &SourceRecord) -> Option<CameraConfig> {
        r.path.as_ref()?;
        self.camera(r.source.split('/').next()?)
    }

    /// The camera named `name`.
    fn camera(&self, name: &str) -> Option<CameraConfig> {
        self.configured()
            .cameras
            .iter()
            .find(|c| c.name == name)
            .cloned()
    }

    /// The settings of a source of `camera` (or of none).
    fn settings_of(&self, camera: Option<&CameraConfig>) -> SourceSettings {
        self.settings.defaults.for_camera(camera)
    }

    /// Queues one file; `floor` is a retention floor carried over by `reindex` (frames below
    /// it are not stored again).
    fn enqueue_file(&self, given: &str, file: &Path, floor: Option<u64>) -> Admission {
        self.enqueue_file_as(given, &file.display().to_string(), file, None, floor)
    }

    /// Queues `file` as source `source` (a camera folder's files: `NAME/relative/path`,
    /// with the camera's settings); `floor` as for [`Sources::enqueue_file`].
    fn enqueue_file_as(
        &self,
        given: &str,
        source: &str,
        file: &Path,
        camera: Option<&CameraConfig>,
        floor: Option<u64>,
    ) -> Admission {
        let outcome = |result: Admitted, message: Option<String>| Admission {
            given: given.to_string(),
            source: Some(source.to_string()),
            result,
            message,
        };
        if let Some(reason) = self.ingest.halt().reason() {
            return outcome(Admitted::Error, Some(reason));
        }
        if let Err(e) = regular_file(file) {
            return outcome(Admitted::Error, Some(e.to_string()));
        }
        let fingerprint = match Fingerprint::of(file) {
            Ok(f) => f,
            Err(e) => return outcome(Admitted::Error, Some(format!("cannot read {source}: {e}"))),
        };
        let settings = self.settings_of(camera);
        let path_field = (source != file.display().to_string()).then(|| file.display().to_string());
        let job = |no| Job {
            source: source.to_string(),
            no,
            path: file.to_path_buf(),
            resume_after_ms: None,
            settings: settings.clone(),
        };
        let store = self.catalog.store();
        let _one_at_a_time = self.admitting.lock().expect("admission lock");
        let result = (|| -> Result<Admission, crate::catalog::CatalogError> {
            Ok(match store.source(source)? {
                Some(rec) if rec.fingerprint == fingerprint => match rec.state {
                    SourceState::Done => outcome(
                        Admitted::Unchanged,
                        Some(format!("already indexed ({} frames)", rec.frames)),
                    ),
                    SourceState::Failed => outcome(
                        Admitted::Unchanged,
                        Some(format!(
                            "failed earlier and has not changed since: {}",
                            rec.error.unwrap_or_default()
                        )),
                    ),
                    SourceState::Queued | SourceState::Ingesting => {
                        outcome(Admitted::Queued, Some("already queued".into()))
                    }
                },
                Some(rec) => {
                    self.catalog.clear_source(rec.no)?;
                    let mut fresh = rec.clone();
                    fresh.fingerprint = fingerprint;
                    fresh.state = SourceState::Queued;
                    fresh.watermark_ms = None;
                    fresh.frames = 0;
                    fresh.error = None;
                    fresh.interval = settings.interval;
                    fresh.path = path_field.clone();
                    fresh.live = None;
                    store.put_source(&fresh)?;
                    self.ingest.submit(job(fresh.no));
                    outcome(
                        Admitted::Requeued,
                        Some("the file changed since it was indexed".into()),
                    )
                }
                None => {
                    // One write: a record stored without its path or floor would not resume.
                    let rec = store.new_source_with(
                        source,
                        fingerprint,
                        settings.interval,
                        None,
                        |r| {
                            r.retain_from_ms = floor;
                            r.path = path_field.clone();
                        },
                    )?;
                    self.ingest.submit(job(rec.no));
                    outcome(Admitted::Queued, None)
                }
            })
        })();
        result.unwrap_or_else(|e| match self.ingest.halt().halt_if_disk_full(&e) {
            Some(message) => outcome(Admitted::Error, Some(message)),
            None => outcome(Admitted::Error, Some(e.to_string())),
        })
    }
}
