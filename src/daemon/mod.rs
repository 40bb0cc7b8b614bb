//! The daemon is wiring: [`Daemon::start`] opens the state, loads the model and starts each
//! stage (ingest, sources, query); [`Daemon::handle`] routes each request to the stage that
//! answers it ([`requests`], [`report`]); [`run`] is the whole life of `frameseek serve`:
//! start, listen, the background tasks ([`tasks`]), serve until shutdown, stop every part.

mod alerts;
mod reload;
mod report;
mod requests;
mod tasks;

pub use reload::ConfigLoader;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::Context;

use crate::alert::Alerts;
use crate::catalog::{Catalog, RebuildEnd};
use crate::config::Config;
use crate::embed::{Embedder, ModelIdentity};
use crate::index::OpenOutcome;
use crate::ingest::{Ingest, IngestSettings};
use crate::protocol::{ErrorBody, Request};
use crate::query::{Calibration, Searcher};
use crate::server::{Handler, Limits};
use crate::source::{LiveSettings, Sources, SourcesSettings};

/// Everything the daemon holds open: the model, the catalog (store + index) and the running
/// stages.
pub struct Daemon {
    config: Config,
    embedder: Arc<Embedder>,
    catalog: Arc<Catalog>,
    ingest: Arc<Ingest>,
    sources: Sources,
    searcher: Searcher,
    alerts: Arc<Alerts>,
    /// Each new incident's wire line, to every `alerts_follow` connection.
    followers: tokio::sync::broadcast::Sender<Arc<str>>,
    started: Instant,
    rebuild: IndexRebuild,
    /// What a reload (SIGHUP) changes besides the sources, and its last outcome.
    reloadable: reload::Reloadable,
    /// This server's node name (`[daemon] node`).
    node: String,
    /// The shared Milvus, with `[index] backend = "milvus"`.
    milvus: Option<Arc<crate::milvus::Milvus>>,
    /// The thread sending the outbox to `milvus`.
    drain: Option<crate::milvus::drain::Drain>,
}

/// The background rebuild of the index, when the one on disk could not be used.
#[derive(Default)]
struct IndexRebuild {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("state_dir", &self.config.daemon.state_dir)
            .finish()
    }
}

/// Where the daemon listens: the socket systemd passed (socket activation), else
/// `daemon.socket`, bound (with `daemon.socket_group`) only once the daemon is ready, so
/// that a connection that succeeds is answered.
#[derive(Debug, Clone)]
pub struct Listener {
    socket: std::path::PathBuf,
    group: String,
}

impl Listener {
    /// The socket named in the configuration.
    pub fn from_config(config: &Config) -> Self {
        Self {
            socket: config.daemon.socket.clone(),
            group: config.daemon.socket_group.clone(),
        }
    }
}

/// Runs the daemon until `shutdown` resolves (SIGTERM/SIGINT in production, a channel in
/// tests): starts every part, listens, tells systemd it is ready, runs the background tasks
/// and serves requests, reloading with `reload` on SIGHUP; then stops the tasks, the
/// connections, live sources and ingest (committing what was decoded), checkpoints the
/// index and flushes the database.
pub fn run(
    config: Config,
    listener: Listener,
    shutdown: impl Future<Output = ()>,
    reload: ConfigLoader,
) -> anyhow::Result<()> {
    // Before anything uses rayon: the global pool (ingest's image batches) runs niced, a
    // few steps below decoding.
    if !crate::priority::init_ingest_pool(config.ingest.embed_nice()) {
        tracing::warn!("rayon's global pool already existed; ingest runs at normal priority");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .enable_all()
        .thread_name("frameseek-io")
        .build()
        .context("cannot start the async runtime")?;
    let daemon = Arc::new(Daemon::start(config, reload)?);
    let hangup = reload::listen(&runtime, &daemon).context("cannot listen for SIGHUP")?;
    let (socket, owns_socket) = {
        let _guard = runtime.enter();
        crate::server::listen(&listener.socket, &listener.group)?
    };
    tracing::info!(socket = %listener.socket.display(), version = env!("CARGO_PKG_VERSION"), "listening");
    crate::notify::notify("READY=1");
    crate::notify::notify(&format!(
        "STATUS=serving {} frames",
        daemon.catalog.indexed()
    ));
    let mut background = tasks::spawn(&runtime, &daemon);
    background.push(hangup);
    let d = &daemon.config.daemon;
    let limits = Limits {
        max_connections: d.max_connections,
        max_request_bytes: d.max_request_bytes,
        idle_timeout: std::time::Duration::from_secs_f64(d.idle_timeout),
        max_request_bytes_total: d.max_request_bytes_total,
    };
    runtime.block_on(crate::server::run(socket, daemon.clone(), limits, shutdown));
    crate::notify::notify("STOPPING=1");
    tracing::info!("stopping: saving state");
    for task in background {
        task.abort();
    }
    if owns_socket {
        let _ = std::fs::remove_file(&listener.socket);
    }
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    daemon.shutdown()?;
    tracing::info!("stopped");
    Ok(())
}

/// The file in the state folder that remembers the model weights' digest between starts
/// (see [`ModelIdentity::read`]).
const MODEL_DIGEST_FILE: &str = "model-digest.json";

impl Daemon {
    /// Opens the state directory, loads the model, reconciles the index and starts the
    /// ingest pipeline, resuming sources that were not finished. `reload` reads the
    /// configuration again when the daemon is told to reload.
    pub fn start(config: Config, reload: ConfigLoader) -> anyhow::Result<Self> {
        let state_dir = &config.daemon.state_dir;
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("cannot create state directory {}", state_dir.display()))?;
        // The identity (with the weights' digest remembered in the state folder) is all the
        // store needs to check, so the weights load while the store and index open.
        let identity =
            ModelIdentity::read(&config.model.path, Some(&state_dir.join(MODEL_DIGEST_FILE)))?;
        let opening = Instant::now();
        let (embedder, opened) = std::thread::scope(|scope| {
            let loading = std::thread::Builder::new()
                .name("model-load".into())
                .spawn_scoped(scope, || {
                    let loaded = Embedder::load_identified(
                        identity.clone(),
                        config.model.device,
                        config.model.image_precision.precision(),
                        config.model.text_precision,
                    );
                    (loaded, opening.elapsed())
                })
                .expect("a thread can be spawned at start");
            let opened = Catalog::open_deferred(
                state_dir,
                &identity,
                &config.index,
                config.ingest.checkpoint_frames,
            )
            .map(|opened| (opened, opening.elapsed()));
            let loaded = loading
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (loaded, opened)
        });
        let (embedder, load_time) = embedder;
        let embedder = Arc::new(embedder?);
        // Loading freed the float32 copies of the quantised weights inside the loading
        // thread's malloc arena; hand those pages back (about 100–200 MB for a ViT-B/32).
        // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
        unsafe { libc::malloc_trim(0) };
        tracing::info!(model = %config.model.path, dim = embedder.dim(), device = embedder.device_name(), load_ms = load_time.as_millis() as u64, "model loaded");
        let ((catalog, outcome), open_time) =
            opened.with_context(|| format!("cannot open the store in {}", state_dir.display()))?;
        match outcome {
            OpenOutcome::Loaded { readded } => tracing::info!(
                frames = catalog.indexed(),
                readded,
                open_ms = open_time.as_millis() as u64,
                "index loaded"
            ),
            OpenOutcome::Stale { reason } | OpenOutcome::Rebuilt { reason } => tracing::warn!(
                frames = catalog.store().frame_count(),
                %reason,
                "the index is rebuilt from the stored vectors in the background; searches wait for it"
            ),
        }
        let catalog = Arc::new(catalog);
        let calibration = model_calibration(&config.model.path, embedder.logit_scale())?;
        let clip_gap_ms = (config.ingest.clip_gap * 1000.0).round() as u64;
        let (followers, _) = tokio::sync::broadcast::channel::<Arc<str>>(alerts::FOLLOW_BUFFER);
        let to_followers = followers.clone();
        let node = config.daemon.node_name();
        // Incidents name their node when daemons share one collection.
        let incident_node =
            (config.index.backend == crate::index::Backend::Milvus).then(|| node.clone());
        let alerts = Arc::new(
            Alerts::open(
                catalog.store().clone(),
                calibration,
                clip_gap_ms,
                config.alerts.clone(),
                Box::new(move |i| {
                    let _ = to_followers.send(alerts::follower_line(i, incident_node.as_deref()));
                }),
            )
            .context("cannot open the alerts")?,
        );
        // Frames committed before a crash but not yet evaluated, before ingest resumes.
        let caught_up = alerts.catch_up().context("cannot evaluate the alerts")?;
        if caught_up > 0 {
            tracing::info!(
                incidents = caught_up,
                "alerts caught up with the stored frames"
            );
        }
        let (milvus, drain) = start_milvus(&config, &node, embedder.dim(), &catalog)?;
        let rebuild = IndexRebuild::start(&catalog);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let decoder_threads = config.ingest.decoder_threads_for(
            !matches!(embedder.device(), candle_core::Device::Cpu),
            cores,
        );
        let settings = IngestSettings {
            decode_workers: config.ingest.decode_workers,
            decoder_threads,
            batch_size: embedder.batch_size(config.model.batch_size),
            hwaccel: config.ingest.hwaccel,
            state_dir: state_dir.clone(),
            resume_free_mb: config.ingest.resume_free_mb,
            alerts: Some(alerts.clone()),
            views: config.ingest.views,
            stall_after: (config.ingest.stall_after > 0.0)
                .then(|| std::time::Duration::from_secs_f64(config.ingest.stall_after)),
        };
        tracing::info!(
            batch_size = settings.batch_size,
            decoder_threads,
            embed_nice = config.ingest.embed_nice(),
            dtype = ?embedder.dtype(),
            hwaccel = config.ingest.hwaccel.as_str(),
            "embedding settings"
        );
        // The ingest threads are started from a thread at `ingest.nice`: threads inherit
        // their creator's priority, so the decode workers (and the FFmpeg threads they start)
        // and the batch and embed-commit workers all run niced, without the pipeline knowing.
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
        let ingest = Arc::new(ingest);
        let searcher = Searcher::new(
            embedder.clone(),
            catalog.clone(),
            config.ingest.clip_gap,
            calibration,
        )
        .context("cannot start the query pool")?;
        let searcher = match &milvus {
            Some(m) => searcher.with_remote(m.clone()),
            None => searcher,
        };
        let i = &config.ingest;
        let sources = Sources::new(
            catalog.clone(),
            ingest.clone(),
            crate::embed::PixelGeometry {
                views: config.ingest.views,
                ..embedder.geometry().clone()
            },
            SourcesSettings {
                roots: config.daemon.footage_roots.clone(),
                defaults: i.sampling_defaults(),
                cameras: config.cameras.clone(),
                watch: i.watch.clone(),
                live: LiveSettings {
                    timeout: std::time::Duration::from_secs_f64(i.live_timeout),
                    reconnect_max: std::time::Duration::from_secs_f64(i.reconnect_max),
                    rtsp_transport: i.rtsp_transport,
                    decoder_threads,
                    nice: i.nice,
                    max_sources: i.max_live_sources,
                },
                client_streams: crate::source::url::ClientStreams::new(&i.client_streams),
            },
        )?;
        sources.start(state_dir)?;
        let reloadable = reload::Reloadable::new(&config, reload);
        Ok(Self {
            reloadable,
            config,
            embedder,
            catalog,
            ingest,
            sources,
            searcher,
            alerts,
            followers,
            started: Instant::now(),
            rebuild,
            node,
            milvus,
            drain,
        })
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
            Request::Status(r) => self.status(r).map(json),
            Request::Forget(r) => self.forget(r).map(json),
            Request::Stats => self.stats().map(json),
            Request::Export(r) => self.export(r).map(json),
            Request::Frame(r) => self.frame(r).map(json),
            Request::AlertAdd(r) => self.alert_add(r).map(json),
            Request::AlertList => Ok(json(self.alert_list())),
            Request::AlertRemove(r) => self.alert_remove(r).map(json),
            Request::AlertsHistory(r) => self.alerts_history(r).map(json),
            // The server streams it (`Handler::follow`); it never reaches here otherwise.
            Request::AlertsFollow => Err(ErrorBody::new(
                crate::protocol::ErrorCode::InvalidRequest,
                "alerts_follow is answered by the socket server, which streams it",
            )),
        }
    }

    /// Stops live sources and the pipeline (committing what was decoded), checkpoints the
    /// index when it changed and flushes the database.
    pub fn shutdown(&self) -> anyhow::Result<()> {
        self.sources.stop_all();
        self.ingest.shutdown();
        self.alerts.stop();
        if let Some(d) = &self.drain {
            d.stop();
        }
        self.rebuild.stop();
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

/// With `[index] backend = "milvus"`: turns the store's outbox on and starts draining it
/// into Milvus (which may be down: the outbox waits). Otherwise turns the outbox off.
#[allow(clippy::type_complexity)]
fn start_milvus(
    config: &Config,
    node: &str,
    dim: usize,
    catalog: &Catalog,
) -> anyhow::Result<(
    Option<Arc<crate::milvus::Milvus>>,
    Option<crate::milvus::drain::Drain>,
)> {
    let store = catalog.store();
    if config.index.backend != crate::index::Backend::Milvus {
        store
            .disable_outbox()
            .context("cannot clear the Milvus outbox")?;
        return Ok((None, None));
    }
    let milvus = Arc::new(crate::milvus::Milvus::new(&config.milvus, node, dim)?);
    let queued = store
        .enable_outbox()
        .context("cannot start the Milvus outbox")?;
    if queued > 0 {
        tracing::info!(frames = queued, "stored frames queued for Milvus");
    }
    let drain = crate::milvus::drain::Drain::start(milvus.clone(), store.clone())
        .context("cannot start the Milvus drain thread")?;
    tracing::info!(
        node,
        uri = milvus.uri(),
        collection = milvus.collection(),
        "searches answer from Milvus"
    );
    Ok((Some(milvus), Some(drain)))
}

/// The model's confidence calibration (`calibration.json` in its folder), with a warn line
/// when it has none.
fn model_calibration(model: &str, logit_scale: f32) -> anyhow::Result<Calibration> {
    let folder = crate::embed::resolve_model_folder(model)?;
    let calibration = Calibration::for_model(&folder, logit_scale)?;
    if !calibration.is_fitted() {
        tracing::warn!(
            model,
            "the model has no calibration.json: confidences are uncalibrated (see docs/ARCHITECTURE.md, Confidence)"
        );
    }
    Ok(calibration)
}

impl IndexRebuild {
    /// Runs the catalog's owed rebuild, if it owes one, on a thread of its own. It runs at
    /// the daemon's priority, not ingest's: searches wait for it.
    fn start(catalog: &Arc<Catalog>) -> Self {
        let me = Self::default();
        if catalog.rebuild_progress().is_none() {
            return me;
        }
        let catalog = catalog.clone();
        let stop = me.stop.clone();
        let thread = std::thread::Builder::new()
            .name("index-rebuild".into())
            .spawn(move || {
                let report = RebuildReport::default();
                let end = catalog.rebuild(&|added, total| report.progress(added, total), &|| {
                    stop.load(Ordering::Relaxed)
                });
                match end {
                    Ok(RebuildEnd::Done { frames, .. }) => {
                        crate::notify::notify(&format!("STATUS=serving {frames} frames"));
                    }
                    Ok(RebuildEnd::Stopped { added, total }) => tracing::info!(
                        added,
                        total,
                        "index rebuild stopped by the shutdown; the next start goes on from here"
                    ),
                    Ok(RebuildEnd::NotOwed) => {}
                    Err(e) => tracing::error!(
                        error = %format!("{e:#}"),
                        "index rebuild failed; searches stay refused until a restart rebuilds it"
                    ),
                }
            })
            .expect("spawn the index rebuild thread");
        *me.thread.lock().expect("rebuild thread lock") = Some(thread);
        me
    }

    /// Stops a running rebuild between two chunks (it saves what it built) and waits for it.
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.lock().expect("rebuild thread lock").take() {
            let _ = thread.join();
        }
    }
}

/// Reports a rebuild of the index: every [`REBUILD_REPORT_EVERY`] it shows the progress in
/// `systemctl status` (`STATUS=`) and logs it.
#[derive(Debug, Default)]
struct RebuildReport {
    last: std::sync::Mutex<Option<Instant>>,
}

/// How often a rebuild in progress is reported.
const REBUILD_REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

impl RebuildReport {
    fn progress(&self, added: usize, total: usize) {
        let mut last = self.last.lock().expect("rebuild report lock");
        if last.is_some_and(|t| t.elapsed() < REBUILD_REPORT_EVERY) && added < total {
            return;
        }
        *last = Some(Instant::now());
        crate::notify::notify(&format!(
            "STATUS=rebuilding the index from the stored vectors: {added} of {total}"
        ));
        tracing::info!(added, total, "rebuilding the index");
    }
}

impl Handler for Daemon {
    fn handle(&self, request: Request) -> Result<serde_json::Value, ErrorBody> {
        Daemon::handle(self, request)
    }

    fn follow(&self) -> Option<tokio::sync::broadcast::Receiver<Arc<str>>> {
        Some(self.followers.subscribe())
    }
}
