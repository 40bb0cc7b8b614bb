//! The store and the index together: every write goes to sled first (durable), then to the
//! in-memory usearch index; checkpoints make the index file catch up.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use crate::embed::ModelIdentity;
use crate::index::{IndexError, OpenOutcome, VectorIndex};
use crate::protocol::Clip;
use crate::query::{group_clips, score_spread, source_matches};
use crate::store::{split_key, SourceRecord, Store, StoreError};

/// Errors of catalog operations.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// From the store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// From the index.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The database holds fewer frames than were committed at the last checkpoint.
    #[error("the database in {dir} holds {found} frames, but {expected} were committed at the last checkpoint: it is damaged or was rolled back. Restore the state folder from a backup, or move {dir}/db and {dir}/manifest.json aside to start empty and re-ingest")]
    Damaged {
        /// The state folder.
        dir: String,
        /// Frames recorded by the last checkpoint.
        expected: u64,
        /// Frames the database holds now.
        found: u64,
    },
    /// The manifest could not be written.
    #[error("cannot write {path}: {source}")]
    Manifest {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// `state_dir/manifest.json`: what the last checkpoint committed, kept outside sled so a
/// damaged or rolled-back database is noticed instead of silently starting empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Manifest {
    /// Frames in the database at the last checkpoint.
    frames: u64,
    /// True while frames are being removed (a lower count after a crash is then expected).
    removing: bool,
}

fn read_manifest(path: &Path) -> Option<Manifest> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn write_manifest(path: &Path, manifest: Manifest) -> Result<(), CatalogError> {
    let err = |source| CatalogError::Manifest {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec(&manifest).expect("manifest serialises"),
    )
    .map_err(err)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(err)?;
    }
    Ok(())
}

/// Filters applied inside the vector search.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    /// Exact source id, or a prefix ending in `*`.
    pub source: Option<String>,
    /// Lowest offset in ms.
    pub start_ms: Option<u64>,
    /// Highest offset in ms.
    pub end_ms: Option<u64>,
    /// Earliest wall-clock time, ms since the epoch.
    pub after_wall_ms: Option<i64>,
    /// Latest wall-clock time, ms since the epoch.
    pub before_wall_ms: Option<i64>,
}

/// The opened store and index.
pub struct Catalog {
    store: Store,
    index: RwLock<VectorIndex>,
    writer: Mutex<usize>,
    checkpoint_frames: usize,
    manifest: PathBuf,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("store", &self.store)
            .finish()
    }
}

impl Catalog {
    /// Opens `state_dir/db` and `state_dir/index.usearch`, checking the model and reconciling
    /// the index with the store.
    pub fn open(
        state_dir: &Path,
        model: &ModelIdentity,
        checkpoint_frames: usize,
    ) -> Result<(Self, OpenOutcome), CatalogError> {
        let store = Store::open(&state_dir.join("db"))?;
        let manifest = state_dir.join("manifest.json");
        if let Some(m) = read_manifest(&manifest) {
            let found = store.frame_count() as u64;
            if !m.removing && found < m.frames {
                return Err(CatalogError::Damaged {
                    dir: state_dir.display().to_string(),
                    expected: m.frames,
                    found,
                });
            }
        }
        store.check_model(model, state_dir)?;
        let (index, outcome) =
            VectorIndex::open(&state_dir.join("index.usearch"), model.dim, &store)?;
        let me = Self {
            store,
            index: RwLock::new(index),
            writer: Mutex::new(0),
            checkpoint_frames,
            manifest,
        };
        if matches!(outcome, OpenOutcome::Rebuilt { .. }) || !me.store.pending_keys()?.is_empty() {
            me.checkpoint()?;
        }
        Ok((me, outcome))
    }

    /// The store, for reads and source bookkeeping.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Vectors in the index.
    pub fn indexed(&self) -> usize {
        self.index.read().expect("index lock").len()
    }

    /// Commits frames durably, then indexes them; checkpoints every `checkpoint_frames`.
    /// Returns how many frames were new.
    pub fn commit(&self, frames: &[(u64, Vec<f32>)]) -> Result<usize, CatalogError> {
        let mut since = self.writer.lock().expect("writer lock");
        let refs: Vec<(u64, &[f32])> = frames.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        let added = self.store.commit_frames(&refs)?;
        let added_set: HashSet<u64> = added.iter().copied().collect();
        let new: Vec<(u64, &[f32])> = refs
            .into_iter()
            .filter(|(k, _)| added_set.contains(k))
            .collect();
        self.index.write().expect("index lock").add(&new)?;
        *since += new.len();
        if *since >= self.checkpoint_frames {
            self.checkpoint_locked()?;
            *since = 0;
        }
        Ok(new.len())
    }

    /// Writes the index file and then drops the pending marks it covers.
    pub fn checkpoint(&self) -> Result<(), CatalogError> {
        let mut since = self.writer.lock().expect("writer lock");
        self.checkpoint_locked()?;
        *since = 0;
        Ok(())
    }

    fn checkpoint_locked(&self) -> Result<(), CatalogError> {
        let pending = self.store.pending_keys()?;
        self.index.read().expect("index lock").checkpoint()?;
        self.store.clear_pending(&pending)?;
        let frames = self.store.frame_count() as u64;
        write_manifest(
            &self.manifest,
            Manifest {
                frames,
                removing: false,
            },
        )?;
        Ok(())
    }

    /// Marks the manifest before frames are deleted, so a crash mid-removal is not taken
    /// for damage.
    fn begin_removal(&self) -> Result<(), CatalogError> {
        let frames = read_manifest(&self.manifest).map_or(0, |m| m.frames);
        write_manifest(
            &self.manifest,
            Manifest {
                frames,
                removing: true,
            },
        )
    }

    /// Removes a source entirely. Returns the number of frames removed.
    pub fn forget(&self, source: &str) -> Result<u64, CatalogError> {
        let _w = self.writer.lock().expect("writer lock");
        if self.store.source(source)?.is_none() {
            return Err(StoreError::UnknownSource(source.to_string()).into());
        }
        self.begin_removal()?;
        let keys = self.store.forget_source(source)?;
        self.index.write().expect("index lock").remove(&keys)?;
        self.checkpoint_locked()?;
        Ok(keys.len() as u64)
    }

    /// Removes a source's frames but keeps its record, for a re-ingest of a changed file.
    pub fn clear_source(&self, no: u32) -> Result<(), CatalogError> {
        let _w = self.writer.lock().expect("writer lock");
        self.begin_removal()?;
        let keys = self.store.clear_frames(no)?;
        self.index.write().expect("index lock").remove(&keys)?;
        self.checkpoint_locked()?;
        Ok(())
    }

    /// The best `k` clips for a normalised query vector, with the filter applied inside the
    /// vector search; widens the search until `k` clips are found or the matches run out.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: &SearchFilter,
        gap_ms: u64,
    ) -> Result<Vec<Clip>, CatalogError> {
        let sources: HashMap<u32, SourceRecord> = self
            .store
            .sources()?
            .into_iter()
            .map(|r| (r.no, r))
            .collect();
        let allowed: Option<HashSet<u32>> = filter.source.as_ref().map(|pattern| {
            sources
                .values()
                .filter(|r| source_matches(pattern, &r.source))
                .map(|r| r.no)
                .collect()
        });
        if allowed.as_ref().is_some_and(|a| a.is_empty()) || k == 0 {
            return Ok(Vec::new());
        }
        let (lo, hi) = (
            filter.start_ms.unwrap_or(0),
            filter.end_ms.unwrap_or(u64::MAX),
        );
        let pass = |key: u64| {
            let (no, offset) = split_key(key);
            if offset < lo || offset > hi || !allowed.as_ref().is_none_or(|a| a.contains(&no)) {
                return false;
            }
            let Some(record) = sources.get(&no) else {
                return false;
            };
            if filter.after_wall_ms.is_none() && filter.before_wall_ms.is_none() {
                return true;
            }
            // A wall-clock filter excludes sources whose time is unknown.
            let Some(start) = record.start_wall_ms else {
                return false;
            };
            let wall = start + offset as i64;
            filter.after_wall_ms.is_none_or(|a| wall >= a)
                && filter.before_wall_ms.is_none_or(|b| wall <= b)
        };
        let index = self.index.read().expect("index lock");
        let total = index.len();
        let mut count = (k * 8).max(64).min(total.max(1));
        loop {
            let hits = index.search(query, count, pass)?;
            let clips = group_clips(&hits, gap_ms, score_spread(&hits), |no| {
                sources.get(&no).map(|r| {
                    (
                        r.source.clone(),
                        (r.interval * 1000.0).round() as u64,
                        r.duration_ms,
                    )
                })
            });
            if clips.len() >= k || hits.len() < count || count >= total {
                let with_wall = |mut c: Clip| {
                    if let Some(start) = sources
                        .values()
                        .find(|r| r.source == c.source)
                        .and_then(|r| r.start_wall_ms)
                    {
                        c.start_wall = Some(crate::clock::format_utc(start + c.start_ms as i64));
                        c.end_wall = Some(crate::clock::format_utc(start + c.end_ms as i64));
                    }
                    c
                };
                return Ok(clips.into_iter().take(k).map(with_wall).collect());
            }
            count = (count * 4).min(total);
        }
    }
}
