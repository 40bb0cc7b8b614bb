//! The store and the index together: every write goes to sled first (durable), then to the
//! in-memory usearch index; checkpoints make the index file catch up.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use crate::embed::ModelIdentity;
use crate::index::{IndexError, IndexSettings, OpenOutcome, VectorIndex};
use crate::store::{Store, StoreError};

mod manifest;
mod retention;

use manifest::{read_manifest, write_manifest, Manifest};
pub use retention::{RetentionPolicy, RetentionReport};

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

impl CatalogError {
    /// The operating system's error under this one, when it is an I/O failure.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            Self::Store(e) => e.io_error(),
            Self::Index(e) => e.io_error(),
            Self::Manifest { source, .. } => Some(source),
            Self::Damaged { .. } => None,
        }
    }
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
        index: &IndexSettings,
        checkpoint_frames: usize,
    ) -> Result<(Self, OpenOutcome), CatalogError> {
        Self::open_reporting(state_dir, model, index, checkpoint_frames, &|_, _| {})
    }

    /// [`Catalog::open`], calling `on_rebuild(added, total)` while the index is rebuilt from
    /// the stored vectors (the daemon tells systemd to wait, and logs the progress).
    pub fn open_reporting(
        state_dir: &Path,
        model: &ModelIdentity,
        index: &IndexSettings,
        checkpoint_frames: usize,
        on_rebuild: &dyn Fn(usize, usize),
    ) -> Result<(Self, OpenOutcome), CatalogError> {
        let store = Store::open(&state_dir.join("db"))?;
        let manifest = state_dir.join("manifest.json");
        let interrupted_removal = read_manifest(&manifest).is_some_and(|m| m.removing);
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
        let (mut index, mut outcome) = VectorIndex::open_reporting(
            &state_dir.join("index.usearch"),
            model.dim,
            index,
            &store,
            on_rebuild,
        )?;
        if interrupted_removal && !matches!(outcome, OpenOutcome::Rebuilt { .. }) {
            // The index file may still hold frames removed from the database.
            index.rebuild_reporting(&store, on_rebuild)?;
            outcome = OpenOutcome::Rebuilt {
                reason: "a removal (forget or retention) was interrupted".into(),
            };
        }
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
        me.remove_orphans()?;
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

    /// Checkpoints only when the index may differ from its file: frames are pending (every
    /// commit leaves marks until a checkpoint) or a removal has not been checkpointed (the
    /// manifest's `removing`). A daemon stopped without new frames does not rewrite a large
    /// index file. Returns whether it wrote one.
    pub fn checkpoint_if_changed(&self) -> Result<bool, CatalogError> {
        let mut since = self.writer.lock().expect("writer lock");
        let removing = read_manifest(&self.manifest).is_some_and(|m| m.removing);
        if !removing && self.store.pending_keys()?.is_empty() {
            return Ok(false);
        }
        self.checkpoint_locked()?;
        *since = 0;
        Ok(true)
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

    /// After a failed write (a full disk): reopens the database at its last durable state,
    /// indexes committed frames the index lacks, and checkpoints. Returns frames re-added.
    pub fn recover_writes(&self) -> Result<usize, CatalogError> {
        let mut since = self.writer.lock().expect("writer lock");
        self.store.reopen()?;
        let readded = self
            .index
            .read()
            .expect("index lock")
            .readd_pending(&self.store)?;
        self.checkpoint_locked()?;
        *since = 0;
        Ok(readded)
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

    /// Removes frames and source numbers no source record owns ([`crate::store::Orphans`]),
    /// from the database and the index, in chunks, behind the manifest's removal mark; logs
    /// what it removed. Returns the frames removed.
    fn remove_orphans(&self) -> Result<u64, CatalogError> {
        let orphans = self.store.orphans()?;
        if orphans.numbers.is_empty() && orphans.frames.is_empty() {
            return Ok(0);
        }
        let _w = self.writer.lock().expect("writer lock");
        let mut removed = 0u64;
        if !orphans.frames.is_empty() {
            self.begin_removal()?;
            for chunk in orphans.frames.chunks(crate::store::REMOVE_CHUNK) {
                let gone = self.store.remove_frames(chunk, false)?;
                self.index.write().expect("index lock").remove(&gone)?;
                removed += gone.len() as u64;
            }
            self.checkpoint_locked()?;
        }
        self.store.drop_source_numbers(&orphans.numbers)?;
        tracing::warn!(
            frames = removed,
            numbers = ?orphans.numbers,
            "orphaned frames removed: no source record owned them (two records made for one id by an older version)"
        );
        Ok(removed)
    }

    /// The index, read-locked (searches run concurrently; writers wait).
    pub fn read_index(&self) -> std::sync::RwLockReadGuard<'_, VectorIndex> {
        self.index.read().expect("index lock")
    }
}

/// Helpers for tests of the catalog and of what reads it (the query stage).
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A catalog in `dir` for a 16-d test model, with the default index settings.
    pub(crate) fn open_test_catalog(dir: &Path) -> (Catalog, OpenOutcome) {
        let model = ModelIdentity {
            id: "m".into(),
            dim: 16,
            digest: "d".into(),
        };
        Catalog::open(dir, &model, &IndexSettings::default(), 10_000).unwrap()
    }

    pub(crate) fn unit(seed: u64, dim: usize) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let mut v: Vec<f32> = (0..dim)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{open_test_catalog, unit};
    use super::*;
    use crate::store::{frame_key, Fingerprint};

    #[test]
    fn the_index_file_is_written_only_after_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, _) = open_test_catalog(dir.path());
        assert!(!catalog.checkpoint_if_changed().unwrap(), "nothing changed");
        let rec = catalog
            .store()
            .new_source("/a.mp4", Fingerprint::default(), 1.0, None)
            .unwrap();
        let frames: Vec<(u64, Vec<f32>)> = (0..5)
            .map(|i| (frame_key(rec.no, i * 1000), unit(i, 16)))
            .collect();
        catalog.commit(&frames).unwrap();
        assert!(catalog.checkpoint_if_changed().unwrap(), "new frames");
        let file = dir.path().join("index.usearch");
        let written = std::fs::metadata(&file).unwrap().modified().unwrap();
        assert!(!catalog.checkpoint_if_changed().unwrap(), "already written");
        assert_eq!(
            std::fs::metadata(&file).unwrap().modified().unwrap(),
            written
        );
        // A removal checkpoints on its own; nothing is left to write after it.
        catalog.forget("/a.mp4").unwrap();
        assert!(
            !catalog.checkpoint_if_changed().unwrap(),
            "forget checkpointed"
        );
        drop(catalog);
        let (catalog, outcome) = open_test_catalog(dir.path());
        assert_eq!(outcome, OpenOutcome::Loaded { readded: 0 });
        assert_eq!(catalog.indexed(), 0);
    }
}
