//! A reload's part in the source stage: a new list of cameras and watched folders, checked
//! as a whole before anything changes, then applied camera by camera. A camera whose
//! settings are unchanged is not touched (its stream goes on without a gap); a changed one
//! restarts; a removed one stops; an added one starts. Watched folders take effect at the
//! next scan.

use std::path::PathBuf;
use std::sync::Arc;

use super::{is_stream_url, CameraConfig, Configured, Sources};
use crate::store::SourceState;

/// Why a new list of cameras and watched folders was refused (nothing was changed).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// A watched folder, or a camera that is a folder or file, is not under a footage root
    /// or cannot be read.
    #[error("{what}: {reason}")]
    Refused {
        /// The setting, as the user writes it (`ingest.watch`, `camera NAME`).
        what: String,
        /// Why, and what to do.
        reason: String,
    },
}

/// What a reload changed in the source stage, by name.
#[derive(Debug, Clone, Default)]
pub struct SourceChanges {
    /// Cameras started.
    pub cameras_added: Vec<String>,
    /// Cameras whose settings changed: restarted.
    pub cameras_changed: Vec<String>,
    /// Cameras stopped.
    pub cameras_removed: Vec<String>,
    /// Folders now watched.
    pub watch_added: Vec<PathBuf>,
    /// Folders no longer watched.
    pub watch_removed: Vec<PathBuf>,
}

impl Sources {
    /// Puts `cameras` and `watch` in force. Every watched folder and every camera that is a
    /// folder or file is checked first (under a footage root); one that fails refuses the
    /// whole change and keeps the old one.
    pub fn reconfigure(
        &self,
        cameras: Vec<CameraConfig>,
        watch: Vec<PathBuf>,
    ) -> Result<SourceChanges, ReloadError> {
        for folder in &watch {
            self.roots
                .admit(&folder.display().to_string())
                .map_err(|e| ReloadError::Refused {
                    what: "ingest.watch".into(),
                    reason: e.to_string(),
                })?;
        }
        for c in cameras.iter().filter(|c| !is_stream_url(&c.url)) {
            self.roots.admit(&c.url).map_err(|e| ReloadError::Refused {
                what: format!("camera {}", c.name),
                reason: e.to_string(),
            })?;
        }
        let new = Arc::new(Configured { cameras, watch });
        let old = std::mem::replace(
            &mut *self.configured.write().expect("configured sources"),
            new.clone(),
        );
        let named =
            |list: &[CameraConfig], name: &str| list.iter().find(|c| c.name == name).cloned();
        let mut changes = SourceChanges {
            watch_added: new
                .watch
                .iter()
                .filter(|f| !old.watch.contains(f))
                .cloned()
                .collect(),
            watch_removed: old
                .watch
                .iter()
                .filter(|f| !new.watch.contains(f))
                .cloned()
                .collect(),
            ..Default::default()
        };
        for was in &old.cameras {
            match named(&new.cameras, &was.name) {
                Some(now) if now == *was => {}
                Some(_) => {
                    self.live.stop(&was.name);
                    changes.cameras_changed.push(was.name.clone());
                }
                None => {
                    self.live.stop(&was.name);
                    changes.cameras_removed.push(was.name.clone());
                }
            }
        }
        for c in &new.cameras {
            let added = named(&old.cameras, &c.name).is_none();
            if !added && !changes.cameras_changed.contains(&c.name) {
                continue;
            }
            if added {
                changes.cameras_added.push(c.name.clone());
            }
            match self.start_camera(c) {
                // A camera that became a folder: its live source is done.
                Ok(false) if !is_stream_url(&c.url) => self.retire_live_camera(&c.name),
                Ok(_) => {}
                // Like a camera that cannot start at start: reported, the others go on.
                Err(e) => {
                    tracing::error!(camera = %c.name, error = %format!("{e:#}"), "camera not started")
                }
            }
        }
        for name in &changes.cameras_removed {
            self.retire_live_camera(name);
        }
        Ok(changes)
    }

    /// Marks a camera's live source done if it has one still being read.
    fn retire_live_camera(&self, name: &str) {
        let live = self
            .catalog
            .store()
            .source(name)
            .ok()
            .flatten()
            .is_some_and(|r| {
                r.live.as_ref().is_some_and(|l| l.camera) && r.state == SourceState::Ingesting
            });
        if live {
            if let Err(e) = self.retire_camera(name) {
                tracing::error!(camera = name, error = %e, "cannot mark the camera done");
            }
        }
    }
}
