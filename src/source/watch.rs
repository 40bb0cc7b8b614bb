//! Watched folders (`ingest.watch`, and cameras whose URL is a folder): scanned every
//! `ingest.watch_interval`; a file is queued once its size and modification time held still
//! between two scans (it is no longer being written) and it is new or changed since it was
//! indexed.

use std::collections::HashMap;
use std::path::PathBuf;

use super::{is_stream_url, walk_videos, CameraConfig, Sources};
use crate::store::Fingerprint;

/// What one scan saw, for the next: files whose fingerprint may still be changing.
#[derive(Debug, Default)]
pub struct WatchState {
    seen: HashMap<PathBuf, Fingerprint>,
}

impl Sources {
    /// Checks the watched folders at start: each must lie under a footage root.
    pub(super) fn check_watched(&self) -> anyhow::Result<()> {
        for folder in &self.configured().watch {
            self.roots
                .admit(&folder.display().to_string())
                .map_err(|e| anyhow::anyhow!("ingest.watch: {e}"))?;
        }
        Ok(())
    }

    /// True when there are folders to scan (`ingest.watch`, or cameras that are folders).
    pub fn has_watched_folders(&self) -> bool {
        let configured = self.configured();
        !configured.watch.is_empty() || configured.cameras.iter().any(|c| !is_stream_url(&c.url))
    }

    /// One scan of the watched folders; returns the files queued.
    pub fn scan_watched(&self, state: &mut WatchState) -> usize {
        let seen = &mut state.seen;
        let mut queued = 0;
        let configured = self.configured();
        let folders = configured
            .watch
            .iter()
            .map(|f| (f.display().to_string(), None::<&CameraConfig>))
            .chain(
                configured
                    .cameras
                    .iter()
                    .filter(|c| !is_stream_url(&c.url))
                    .map(|c| (c.url.clone(), Some(c))),
            );
        for (folder, camera) in folders {
            let Ok(folder) = self.roots.admit(&folder) else {
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
                        result = outcome.result.as_str(),
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
}
