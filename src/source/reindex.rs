//! `frameseek reindex`: the state set aside and the list of sources to read again, and the
//! queueing of that list at the next start.

use std::path::Path;

use anyhow::Context;

use super::Sources;

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

impl Sources {
    /// Queues the sources `frameseek reindex` listed in `state_dir/requeue.json`, each with
    /// its retention floor, then removes the list.
    pub(super) fn requeue_after_reindex(&self, state_dir: &Path) -> anyhow::Result<()> {
        let path = state_dir.join(REQUEUE_FILE);
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
            match self.roots.admit(source) {
                Ok(file) => {
                    let outcome = self.enqueue_file(source, &file, floor);
                    tracing::info!(source, result = outcome.result.as_str(), "re-index");
                }
                Err(e) => tracing::warn!(source, error = %e, "re-index: source skipped"),
            }
        }
        std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        Ok(())
    }
}
