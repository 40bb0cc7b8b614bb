//! Reload (SIGHUP, systemd's `ExecReload=`): the configuration is read again the way
//! `serve` read it, and cameras, watched folders and retention are put in force without a
//! restart. A configuration that does not load or check is refused with the reason (logged,
//! and in `status`), and the one in force stays. Settings that only a restart can change
//! (the socket, the state folder, the model, the other sections) are reported as needing
//! one and are not applied.

use std::sync::{Arc, Mutex, RwLock};

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use super::Daemon;
use crate::config::{Config, RetentionConfig};
use crate::protocol::{ReloadOutcome, ReloadStatus};

/// Reads the configuration again (the files and environment `serve` started from).
pub type ConfigLoader = Box<dyn Fn() -> anyhow::Result<Config> + Send + Sync>;

/// The settings a reload changes outside the source stage, and the last reload's outcome.
pub(super) struct Reloadable {
    loader: ConfigLoader,
    /// `[retention]` in force.
    pub(super) retention: RwLock<RetentionConfig>,
    /// Wakes the retention task when a reload changed `[retention]`.
    pub(super) retention_changed: tokio::sync::Notify,
    last: Mutex<Option<ReloadStatus>>,
    /// One reload at a time.
    running: Mutex<()>,
}

impl Reloadable {
    pub(super) fn new(config: &Config, loader: ConfigLoader) -> Self {
        Self {
            loader,
            retention: RwLock::new(config.retention.clone()),
            retention_changed: tokio::sync::Notify::new(),
            last: Mutex::new(None),
            running: Mutex::new(()),
        }
    }

    /// The last reload's outcome, for `status`.
    pub(super) fn last(&self) -> Option<ReloadStatus> {
        self.last.lock().expect("reload status").clone()
    }
}

/// Listens for SIGHUP on the runtime and reloads on each. Install it before the daemon
/// says it is ready: SIGHUP's default action ends the process.
pub(super) fn listen(runtime: &Runtime, daemon: &Arc<Daemon>) -> anyhow::Result<JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = {
        let _guard = runtime.enter();
        signal(SignalKind::hangup())?
    };
    let daemon = daemon.clone();
    Ok(runtime.spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP received: reloading the configuration");
            let d = daemon.clone();
            let _ = tokio::task::spawn_blocking(move || d.reload()).await;
        }
    }))
}

/// Sections and keys that differ between `old` and `new` and need a restart, as the user
/// writes them. Cameras, `ingest.watch` and `[retention]` are left out: a reload applies
/// them.
fn needs_restart(old: &Config, new: &Config) -> Vec<String> {
    fn differ(a: &impl std::fmt::Debug, b: &impl std::fmt::Debug) -> bool {
        format!("{a:?}") != format!("{b:?}")
    }
    let mut out = Vec::new();
    let (d0, d1) = (&old.daemon, &new.daemon);
    for (key, changed) in [
        ("daemon.socket", d0.socket != d1.socket),
        ("daemon.state_dir", d0.state_dir != d1.state_dir),
        ("daemon.footage_roots", d0.footage_roots != d1.footage_roots),
    ] {
        if changed {
            out.push(key.to_string());
        }
    }
    let mut rest = d1.clone();
    rest.socket = d0.socket.clone();
    rest.state_dir = d0.state_dir.clone();
    rest.footage_roots = d0.footage_roots.clone();
    if differ(d0, &rest) {
        out.push("daemon (other keys)".into());
    }
    let mut ingest = new.ingest.clone();
    ingest.watch = old.ingest.watch.clone();
    if differ(&old.ingest, &ingest) {
        out.push("ingest (keys other than watch)".into());
    }
    for (section, changed) in [
        ("model", differ(&old.model, &new.model)),
        ("index", differ(&old.index, &new.index)),
        ("milvus", differ(&old.milvus, &new.milvus)),
        ("alerts", differ(&old.alerts, &new.alerts)),
        ("metrics", differ(&old.metrics, &new.metrics)),
        ("log", differ(&old.log, &new.log)),
    ] {
        if changed {
            out.push(section.to_string());
        }
    }
    out
}

impl Daemon {
    /// Reads the configuration again and applies what a reload may change; returns (and
    /// keeps, for `status`) the outcome.
    pub fn reload(&self) -> ReloadStatus {
        let _one = self.reloadable.running.lock().expect("reload lock");
        let status = match (self.reloadable.loader)() {
            Err(e) => self.refused(format!("{e:#}")),
            Ok(new) => self.apply(new),
        };
        *self.reloadable.last.lock().expect("reload status") = Some(status.clone());
        status
    }

    fn refused(&self, reason: String) -> ReloadStatus {
        tracing::error!(
            reason,
            "configuration reload refused; the configuration in force stays"
        );
        ReloadStatus {
            at: crate::clock::format_utc(crate::clock::now_ms()),
            outcome: ReloadOutcome::Refused,
            error: Some(reason),
            applied: Vec::new(),
            needs_restart: Vec::new(),
        }
    }

    fn apply(&self, new: Config) -> ReloadStatus {
        let restart = needs_restart(&self.config, &new);
        let changes = match self
            .sources
            .reconfigure(new.cameras.clone(), new.ingest.watch.clone())
        {
            Ok(c) => c,
            Err(e) => return self.refused(e.to_string()),
        };
        let mut applied = Vec::new();
        for (what, names) in [
            ("camera added", &changes.cameras_added),
            ("camera restarted", &changes.cameras_changed),
            ("camera removed", &changes.cameras_removed),
        ] {
            applied.extend(names.iter().map(|n| format!("{what}: {n}")));
        }
        for (what, folders) in [
            ("ingest.watch added", &changes.watch_added),
            ("ingest.watch removed", &changes.watch_removed),
        ] {
            applied.extend(folders.iter().map(|f| format!("{what}: {}", f.display())));
        }
        let retention_changed = {
            let mut r = self.reloadable.retention.write().expect("retention");
            let changed = format!("{:?}", *r) != format!("{:?}", new.retention);
            *r = new.retention.clone();
            changed
        };
        if retention_changed {
            applied.push("retention".into());
            // The new policy applies now, and its interval from now on.
            self.reloadable.retention_changed.notify_one();
        }
        for key in &restart {
            tracing::warn!(
                setting = key,
                "changed in the configuration but needs a restart; not applied"
            );
        }
        tracing::info!(
            applied = applied.join(", "),
            needs_restart = restart.join(", "),
            "configuration reloaded"
        );
        ReloadStatus {
            at: crate::clock::format_utc(crate::clock::now_ms()),
            outcome: ReloadOutcome::Applied,
            error: None,
            applied,
            needs_restart: restart,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_settings_a_reload_cannot_apply_need_a_restart() {
        let base = Config::from_toml_str("").unwrap();
        let mut new = base.clone();
        new.ingest.watch = vec!["/srv/footage/new".into()];
        new.retention.max_frames_per_source = 10;
        assert!(needs_restart(&base, &new).is_empty());
        new.daemon.socket = "/tmp/other.sock".into();
        new.model.batch_size += 1;
        new.ingest.sample_interval += 1.0;
        assert_eq!(
            needs_restart(&base, &new),
            vec![
                "daemon.socket".to_string(),
                "ingest (keys other than watch)".to_string(),
                "model".to_string()
            ]
        );
    }
}
