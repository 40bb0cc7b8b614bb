//! The store and the index together: every write goes to sled first (durable), then to the
//! in-memory usearch index; checkpoints make the index file catch up.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use crate::embed::ModelIdentity;
use crate::index::{IndexError, IndexPrecision, IndexSettings, OpenOutcome, VectorIndex};
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
    /// Set while the index is owed a rebuild from the stored vectors
    /// ([`Catalog::open_deferred`], [`Catalog::rebuild`]).
    rebuild: Mutex<Option<OwedRebuild>>,
    /// The owed rebuild's progress: vectors added so far, and the stored total.
    rebuild_added: AtomicUsize,
    rebuild_total: AtomicUsize,
}

/// A rebuild of the index that is owed or running.
struct OwedRebuild {
    /// Why the index could not be used.
    reason: String,
    /// Keys removed from the store since the rebuild began: the rebuilt index may have read
    /// them before they went, so they are removed from it before it serves.
    removed: Vec<u64>,
    /// Where a rebuild stopped by an earlier shutdown left off, if it did.
    resume: Option<(VectorIndex, u64)>,
}

/// A rebuild of the index in progress, for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildProgress {
    /// Why the index is rebuilt.
    pub reason: String,
    /// Vectors in the new index so far.
    pub added: usize,
    /// Vectors stored.
    pub total: usize,
}

/// How [`Catalog::rebuild`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebuildEnd {
    /// No rebuild was owed.
    NotOwed,
    /// The new index serves; it holds `frames` vectors.
    Done {
        /// Why the index was rebuilt.
        reason: String,
        /// Vectors in the new index.
        frames: usize,
    },
    /// Stopped on request (a shutdown) with `added` of `total` vectors in the new index,
    /// which was saved for the next start to go on from.
    Stopped {
        /// Vectors in the saved partial index.
        added: usize,
        /// Vectors stored.
        total: usize,
    },
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
    /// the index with the store; an index that cannot be used is rebuilt before this returns.
    pub fn open(
        state_dir: &Path,
        model: &ModelIdentity,
        index: &IndexSettings,
        checkpoint_frames: usize,
    ) -> Result<(Self, OpenOutcome), CatalogError> {
        let (me, outcome) = Self::open_deferred(state_dir, model, index, checkpoint_frames)?;
        match me.rebuild(&|_, _| {}, &|| false)? {
            RebuildEnd::Done { reason, .. } => Ok((me, OpenOutcome::Rebuilt { reason })),
            _ => Ok((me, outcome)),
        }
    }

    /// [`Catalog::open`], leaving an index that cannot be used empty and owed a rebuild
    /// ([`OpenOutcome::Stale`]): the caller runs [`Catalog::rebuild`] when it chooses (the
    /// daemon, in the background while it answers). Until then searches find nothing,
    /// [`Catalog::rebuild_progress`] says why, and checkpoints wait.
    pub fn open_deferred(
        state_dir: &Path,
        model: &ModelIdentity,
        index: &IndexSettings,
        checkpoint_frames: usize,
    ) -> Result<(Self, OpenOutcome), CatalogError> {
        let store = Store::open(&state_dir.join("db"))?;
        let manifest = state_dir.join("manifest.json");
        if store.keys_need_migration()? {
            // Frame keys written before views (issue 16) move to the layout with a view number.
            // The index holds the old keys: the manifest's removal mark, set first and
            // cleared by the checkpoint after the rebuild, makes every start until then
            // rebuild it, and a kill mid-move resumes the move.
            let frames = read_manifest(&manifest).map_or(0, |m| m.frames);
            write_manifest(
                &manifest,
                Manifest {
                    frames,
                    removing: true,
                },
            )?;
            let moved = store.migrate_keys()?;
            tracing::warn!(
                frames = moved,
                "store: frame keys moved to the format with views (issue 16); the index is rebuilt from the stored vectors, nothing is re-ingested"
            );
        }
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
        store.keep_float32_vectors(index.precision == IndexPrecision::F32);
        let path = state_dir.join("index.usearch");
        let (mut vectors, mut outcome) =
            VectorIndex::open_or_stale(&path, model.dim, index, &store)?;
        if interrupted_removal && !matches!(outcome, OpenOutcome::Stale { .. }) {
            // The index file may still hold frames removed from the database.
            vectors = VectorIndex::empty(&path, model.dim, index)?;
            outcome = OpenOutcome::Stale {
                reason: "a removal (forget or retention) was interrupted".into(),
            };
        }
        // A partial index saved by a stopped rebuild is only good for the rebuild it was
        // saved by: an interrupted removal since then may have taken frames it holds.
        let rebuild = match &outcome {
            OpenOutcome::Stale { reason } => Some(OwedRebuild {
                reason: reason.clone(),
                removed: Vec::new(),
                resume: VectorIndex::take_partial(&path, model.dim, index)
                    .filter(|_| !interrupted_removal),
            }),
            _ => {
                // The index file serves: a partial rebuild left beside it is of no use.
                VectorIndex::discard_partials(&path);
                None
            }
        };
        let me = Self {
            store,
            index: RwLock::new(vectors),
            writer: Mutex::new(0),
            checkpoint_frames,
            manifest,
            rebuild_added: AtomicUsize::new(0),
            rebuild_total: AtomicUsize::new(0),
            rebuild: Mutex::new(rebuild),
        };
        if !me.store.pending_keys()?.is_empty() {
            me.checkpoint()?;
        }
        me.remove_orphans()?;
        Ok((me, outcome))
    }

    /// Runs the owed rebuild of the index from the stored vectors, if one is owed, while
    /// the catalog goes on taking commits and removals. The new index is built apart from
    /// the serving one, without the writer lock; then, under it, the removals made meanwhile
    /// are taken out of it, the frames committed meanwhile (still pending: no checkpoint runs
    /// while a rebuild is owed) are added, and it replaces the serving index and is
    /// checkpointed. `on_progress(added, total)` follows it; when `stop` says yes between two
    /// chunks, the partial index is saved for the next start to go on from
    /// ([`RebuildEnd::Stopped`]).
    pub fn rebuild(
        &self,
        on_progress: &dyn Fn(usize, usize),
        stop: &dyn Fn() -> bool,
    ) -> Result<RebuildEnd, CatalogError> {
        let started = std::time::Instant::now();
        let resume = match &mut *self.rebuild.lock().expect("rebuild lock") {
            None => return Ok(RebuildEnd::NotOwed),
            Some(owed) => owed.resume.take(),
        };
        let (fresh, from) = match resume {
            Some((partial, next)) => {
                tracing::info!(
                    added = partial.len(),
                    total = self.store.frame_count(),
                    "going on with the index rebuild where the last shutdown stopped it"
                );
                (partial, next)
            }
            None => (self.read_index().empty_like()?, 0),
        };
        let progress = |added: usize, total: usize| {
            self.rebuild_added.store(added, Ordering::Relaxed);
            self.rebuild_total.store(total, Ordering::Relaxed);
            on_progress(added, total);
        };
        let next = fresh.build_from(&self.store, from, &progress, stop)?;
        let mut since = self.writer.lock().expect("writer lock");
        let mut owed = self.rebuild.lock().expect("rebuild lock");
        let log = owed.as_mut().expect("one rebuild at a time");
        fresh.remove(&log.removed)?;
        log.removed.clear();
        if let Some(next) = next {
            fresh.save_partial(next)?;
            return Ok(RebuildEnd::Stopped {
                added: fresh.len(),
                total: self.store.frame_count(),
            });
        }
        fresh.readd_pending(&self.store)?;
        let reason = log.reason.clone();
        drop(owed);
        *self.index.write().expect("index lock") = fresh;
        self.write_checkpoint()?;
        *since = 0;
        let frames = self.indexed();
        let stored = self.store.frame_count();
        if frames != stored {
            tracing::warn!(
                frames,
                stored,
                "the rebuilt index disagrees with the store; the next start rebuilds it again"
            );
        }
        tracing::warn!(
            frames,
            %reason,
            seconds = started.elapsed().as_secs_f64(),
            "index rebuilt from the stored vectors"
        );
        // Only now do searches go to it (and does `status` stop showing the rebuild).
        self.rebuild.lock().expect("rebuild lock").take();
        Ok(RebuildEnd::Done { reason, frames })
    }

    /// The rebuild of the index that is owed or running, with its progress; `None` while
    /// the index serves every stored frame.
    pub fn rebuild_progress(&self) -> Option<RebuildProgress> {
        let owed = self.rebuild.lock().expect("rebuild lock");
        owed.as_ref().map(|o| RebuildProgress {
            reason: o.reason.clone(),
            added: self.rebuild_added.load(Ordering::Relaxed),
            total: self.rebuild_total.load(Ordering::Relaxed),
        })
    }

    fn rebuilding(&self) -> bool {
        self.rebuild.lock().expect("rebuild lock").is_some()
    }

    /// Removes keys, already deleted from the store, from the index; while a rebuild is
    /// owed, notes them for the rebuilt index too.
    fn unindex(&self, keys: &[u64]) -> Result<(), CatalogError> {
        if let Some(owed) = &mut *self.rebuild.lock().expect("rebuild lock") {
            owed.removed.extend_from_slice(keys);
        }
        self.index.write().expect("index lock").remove(keys)?;
        Ok(())
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
        if !self.rebuilding() {
            // While a rebuild is owed the frames wait, pending, for the rebuilt index.
            self.index.write().expect("index lock").add(&new)?;
        }
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
        if self.rebuilding() || (!removing && self.store.pending_keys()?.is_empty()) {
            return Ok(false);
        }
        self.checkpoint_locked()?;
        *since = 0;
        Ok(true)
    }

    fn checkpoint_locked(&self) -> Result<(), CatalogError> {
        if self.rebuilding() {
            // The serving index is incomplete: writing it would lose the pending marks of
            // frames only the rebuilt index will hold.
            return Ok(());
        }
        self.write_checkpoint()
    }

    /// [`Catalog::checkpoint_locked`] whether or not a rebuild is owed (the rebuild's own
    /// last step).
    fn write_checkpoint(&self) -> Result<(), CatalogError> {
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
        let readded = if self.rebuilding() {
            0
        } else {
            self.index
                .read()
                .expect("index lock")
                .readd_pending(&self.store)?
        };
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
        self.unindex(&keys)?;
        self.checkpoint_locked()?;
        Ok(keys
            .iter()
            .filter(|&&k| crate::store::key_view(k) == 0)
            .count() as u64)
    }

    /// Removes a source's frames but keeps its record, for a re-ingest of a changed file.
    pub fn clear_source(&self, no: u32) -> Result<(), CatalogError> {
        let _w = self.writer.lock().expect("writer lock");
        self.begin_removal()?;
        let keys = self.store.clear_frames(no)?;
        self.unindex(&keys)?;
        self.checkpoint_locked()?;
        Ok(())
    }

    /// Removes frames and source numbers no source record owns ([`crate::store::Orphans`]),
    /// from the database and the index, in chunks, behind the manifest's removal mark; logs
    /// what it removed. Returns the frames removed.
    fn remove_orphans(&self) -> Result<u64, CatalogError> {
        if self.store.orphans_checked()? {
            return Ok(0);
        }
        let orphans = self.store.orphans()?;
        if orphans.numbers.is_empty() && orphans.frames.is_empty() {
            self.store.mark_orphans_checked()?;
            return Ok(0);
        }
        let _w = self.writer.lock().expect("writer lock");
        let mut removed = 0u64;
        if !orphans.frames.is_empty() {
            self.begin_removal()?;
            for chunk in orphans.frames.chunks(crate::store::REMOVE_CHUNK) {
                let gone = self.store.remove_frames(chunk, false)?;
                self.unindex(&gone)?;
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
        self.store.mark_orphans_checked()?;
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

    /// A catalog in `dir` with `frames` frames of one source `/a.mp4` (keys 0..frames),
    /// checkpointed, whose index file is then deleted: it reopens owing a rebuild.
    fn stale_catalog(dir: &Path, frames: u64) -> Catalog {
        let model = ModelIdentity {
            id: "m".into(),
            dim: 16,
            digest: "d".into(),
        };
        {
            let (catalog, _) = open_test_catalog(dir);
            let no = catalog
                .store()
                .new_source("/a.mp4", Fingerprint::default(), 1.0, None)
                .unwrap()
                .no;
            let rows: Vec<(u64, Vec<f32>)> = (0..frames)
                .map(|i| (frame_key(no, i), unit(i, 16)))
                .collect();
            catalog.commit(&rows).unwrap();
            catalog.checkpoint().unwrap();
        }
        std::fs::remove_file(dir.join("index.usearch")).unwrap();
        let (catalog, outcome) =
            Catalog::open_deferred(dir, &model, &IndexSettings::default(), 10_000).unwrap();
        assert!(matches!(outcome, OpenOutcome::Stale { .. }), "{outcome:?}");
        catalog
    }

    #[test]
    fn an_owed_rebuild_takes_in_what_was_committed_and_removed_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = stale_catalog(dir.path(), 40_000);
        let progress = catalog.rebuild_progress().expect("owed");
        assert!(progress.reason.contains("missing"), "{progress:?}");
        // While it is owed: a new source commits, and `/a.mp4` loses nothing yet.
        let b = catalog
            .store()
            .new_source("/b.mp4", Fingerprint::default(), 1.0, None)
            .unwrap()
            .no;
        let b_rows: Vec<(u64, Vec<f32>)> = (0..10)
            .map(|i| (frame_key(b, i), unit(100_000 + i, 16)))
            .collect();
        catalog.commit(&b_rows).unwrap();
        assert_eq!(catalog.indexed(), 0, "frames wait for the rebuilt index");
        // The rebuild runs; after its first chunk a removal of `/a.mp4` happens (the
        // rebuild has already read some of its frames).
        let removed = std::sync::atomic::AtomicBool::new(false);
        let end = catalog
            .rebuild(
                &|added, _| {
                    if added > 0 && !removed.swap(true, Ordering::SeqCst) {
                        catalog.forget("/a.mp4").unwrap();
                    }
                },
                &|| false,
            )
            .unwrap();
        assert!(removed.load(Ordering::SeqCst));
        assert_eq!(
            end,
            RebuildEnd::Done {
                reason: progress.reason,
                frames: 10
            }
        );
        assert!(catalog.rebuild_progress().is_none());
        let top = catalog
            .read_index()
            .search(&b_rows[3].1, 1, |_| true)
            .unwrap();
        assert_eq!(top[0].key, b_rows[3].0);
        // Written: a restart loads it, with nothing owed.
        drop(catalog);
        let (catalog, outcome) = open_test_catalog(dir.path());
        assert_eq!(outcome, OpenOutcome::Loaded { readded: 0 });
        assert_eq!(catalog.indexed(), 10);
    }

    #[test]
    fn a_stopped_rebuild_goes_on_where_it_stopped_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = stale_catalog(dir.path(), 40_000);
        let end = catalog.rebuild(&|_, _| {}, &|| true).unwrap();
        let RebuildEnd::Stopped { added, total } = end else {
            panic!("{end:?}")
        };
        assert_eq!((added, total), (crate::index::REBUILD_CHUNK, 40_000));
        // Stopped: nothing is checkpointed, searches still wait.
        assert!(!catalog.checkpoint_if_changed().unwrap());
        assert!(catalog.rebuild_progress().is_some());
        drop(catalog);
        assert!(!dir.path().join("index.usearch").exists());
        let model = ModelIdentity {
            id: "m".into(),
            dim: 16,
            digest: "d".into(),
        };
        let (catalog, _) =
            Catalog::open_deferred(dir.path(), &model, &IndexSettings::default(), 10_000).unwrap();
        let first = std::sync::Mutex::new(None);
        let end = catalog
            .rebuild(
                &|added, _| {
                    first.lock().unwrap().get_or_insert(added);
                },
                &|| false,
            )
            .unwrap();
        assert_eq!(
            *first.lock().unwrap(),
            Some(crate::index::REBUILD_CHUNK),
            "went on from the saved part"
        );
        assert!(
            matches!(end, RebuildEnd::Done { frames: 40_000, .. }),
            "{end:?}"
        );
        let probe = unit(39_999, 16);
        let top = catalog.read_index().search(&probe, 1, |_| true).unwrap();
        assert_eq!(crate::store::split_key(top[0].key).1, 39_999);
    }
}
