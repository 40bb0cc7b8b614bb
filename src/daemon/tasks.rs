//! The daemon's background tasks, each a loop on the I/O runtime whose work runs on the
//! blocking pool: scans of the watched folders, retention runs, the full-disk check, and
//! the systemd watchdog. [`run`](super::run) starts them after the socket listens and aborts
//! them when the daemon stops.

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use super::Daemon;
use crate::protocol::Request;
use crate::source::WatchState;

/// Seconds between checks for free space while a full disk has ingest stopped.
const DISK_CHECK_S: u64 = 5;

/// Starts every background task the configuration asks for; returns their handles.
pub(super) fn spawn(runtime: &Runtime, daemon: &Arc<Daemon>) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    // Always started: a reload may add watched folders or retention (a scan of none, or a
    // run of an inactive policy, does nothing).
    {
        let every = Duration::from_secs_f64(daemon.config.ingest.watch_interval);
        let state = Arc::new(std::sync::Mutex::new(WatchState::default()));
        tasks.push(every_interval(
            runtime,
            daemon,
            every,
            Duration::ZERO,
            move |d| {
                if d.sources.has_watched_folders() {
                    d.sources
                        .scan_watched(&mut state.lock().expect("watch state"));
                }
            },
        ));
    }
    {
        let d = daemon.clone();
        tasks.push(runtime.spawn(async move {
            loop {
                let d2 = d.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    if d2.retention().policy().is_active() {
                        d2.run_retention();
                    }
                })
                .await;
                // `retention.interval` as in force now; a reload that changes `[retention]`
                // starts a run at once.
                let every = Duration::from_secs_f64(d.retention().interval);
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = d.reloadable.retention_changed.notified() => {}
                }
            }
        }));
    }
    let disk = Duration::from_secs(DISK_CHECK_S);
    tasks.push(every_interval(runtime, daemon, disk, disk, |d| {
        d.resume_after_full_disk();
    }));
    if let Some(every) = crate::notify::watchdog_interval() {
        let d = daemon.clone();
        tasks.push(runtime.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                // Ping only when a request can be answered end to end (blocking pool + store).
                let d = d.clone();
                // A pipeline that cannot progress while work is queued is not healthy either:
                // systemd restarts the daemon, which requeues every unfinished source.
                let health = tokio::task::spawn_blocking(move || {
                    d.handle(Request::Status(Default::default()))
                        .map(|_| d.ingest.health().stalled)
                })
                .await;
                match health {
                    Ok(Ok(None)) => crate::notify::notify("WATCHDOG=1"),
                    Ok(Ok(Some(reason))) => {
                        tracing::error!(reason, "ingest pipeline stalled; not pinging the watchdog")
                    }
                    _ => tracing::error!("health check failed; not pinging the watchdog"),
                }
            }
        }));
    }
    tasks
}

/// Runs `work` on the blocking pool after `first`, then again `every` after each run ends.
fn every_interval(
    runtime: &Runtime,
    daemon: &Arc<Daemon>,
    every: Duration,
    first: Duration,
    work: impl Fn(&Daemon) + Send + Sync + 'static,
) -> JoinHandle<()> {
    let daemon = daemon.clone();
    let work = Arc::new(work);
    runtime.spawn(async move {
        tokio::time::sleep(first).await;
        loop {
            let (d, w) = (daemon.clone(), work.clone());
            let _ = tokio::task::spawn_blocking(move || w(&d)).await;
            tokio::time::sleep(every).await;
        }
    })
}

impl Daemon {
    /// `[retention]` in force (the start's, or the last reload's).
    fn retention(&self) -> crate::config::RetentionConfig {
        self.reloadable.retention.read().expect("retention").clone()
    }

    /// One retention run (`[retention]`) at the current time; logs and returns frames removed.
    pub fn run_retention(&self) -> u64 {
        let policy = self.retention().policy();
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
    pub fn resume_after_full_disk(&self) -> bool {
        let Some(free) = self.ingest.halt().space_is_back() else {
            return false;
        };
        match self.catalog.recover_writes() {
            Ok(readded) => {
                self.ingest.halt().clear();
                tracing::info!(
                    free_mb = free / 1_000_000,
                    readded,
                    "disk space is back: ingest resumes"
                );
                if let Err(e) = self.sources.resume_unfinished() {
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
}
