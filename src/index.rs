//! The index stage: a usearch HNSW index over the stored vectors, checkpointed to disk.
//!
//! The index file is a cache of the `vectors` tree: a checkpoint writes it to a temporary
//! file, syncs it, renames it into place and syncs the folder; only then are the pending
//! marks in sled dropped. On start the file is loaded, pending vectors it lacks are added,
//! and if it is missing, unreadable, of another precision than configured, or disagrees with
//! the store, it is rebuilt from sled.

use std::path::{Path, PathBuf};

use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::store::{Store, StoreError};

/// Errors of the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// usearch refused an operation.
    #[error("vector index: {0}")]
    Usearch(String),
    /// Writing the checkpoint failed.
    #[error("cannot write index checkpoint {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IndexError {
    /// The operating system's error under this one, when it is an I/O failure.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Store(e) => e.io_error(),
            Self::Usearch(_) => None,
        }
    }
}

fn us<E: std::fmt::Display>(e: E) -> IndexError {
    IndexError::Usearch(e.to_string())
}

/// How the index came up at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    /// Loaded the checkpoint, then re-added this many pending vectors.
    Loaded {
        /// Pending vectors re-added.
        readded: usize,
    },
    /// Rebuilt from the stored vectors, for the reason given.
    Rebuilt {
        /// Why.
        reason: String,
    },
    /// Unusable for the reason given, and left empty: a rebuild from the stored vectors is
    /// owed ([`VectorIndex::open_or_stale`]).
    Stale {
        /// Why.
        reason: String,
    },
}

/// The vector index plus the path it checkpoints to.
pub struct VectorIndex {
    index: Index,
    path: PathBuf,
    dim: usize,
    settings: IndexSettings,
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("path", &self.path)
            .field("size", &self.index.size())
            .finish()
    }
}

/// Searches that may run at once (usearch keeps one search context per concurrent caller;
/// the daemon runs at most 64 requests at once on its blocking pool).
pub const MAX_CONCURRENT_SEARCHES: usize = 128;

/// Stored vectors read per `add` call while rebuilding.
pub(crate) const REBUILD_CHUNK: usize = 16_384;

/// Vectors per thread below which an add stays on the calling thread.
const PARALLEL_ADD_MIN: usize = 512;

/// How the index stores each vector (`index.precision`). The raw vectors stay in sled
/// whatever this is (float16, or float32 while this is `F32`), so changing it only rebuilds
/// the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum IndexPrecision {
    /// 4 bytes a dimension.
    F32,
    /// 2 bytes a dimension: half the memory of f32, the same recall (BENCHMARKS.md).
    F16,
    /// 1 byte a dimension: a quarter of the memory, lower recall on near-duplicate frames.
    I8,
}

impl IndexPrecision {
    fn scalar(self) -> ScalarKind {
        match self {
            Self::F32 => ScalarKind::F32,
            Self::F16 => ScalarKind::F16,
            Self::I8 => ScalarKind::I8,
        }
    }
}

crate::setting::named_setting!(IndexPrecision, "f32, f16 or i8", {
    "f32" => F32,
    "f16" => F16,
    "i8" => I8,
});

/// Which engine holds the vectors searched (`[index] backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum Backend {
    /// The embedded usearch index of this daemon alone (the default).
    #[default]
    Usearch,
    /// One Milvus collection shared by every node.
    Milvus,
}

crate::setting::named_setting!(Backend, "usearch or milvus", {
    "usearch" => Usearch,
    "milvus" => Milvus,
});

/// Settings of the vector index (`[index]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSettings {
    /// Which engine searches: this daemon's usearch index, or a shared Milvus.
    #[serde(default)]
    pub backend: Backend,
    /// How vectors are stored.
    pub precision: IndexPrecision,
    /// Candidates a graph search keeps (usearch's `expansion_search`, HNSW's ef): higher
    /// finds more of the true nearest neighbours at a higher cost.
    pub expansion_search: usize,
}

impl Default for IndexSettings {
    fn default() -> Self {
        Self {
            backend: Backend::Usearch,
            precision: IndexPrecision::F16,
            expansion_search: DEFAULT_EXPANSION_SEARCH,
        }
    }
}

/// Default `index.expansion_search`.
pub const DEFAULT_EXPANSION_SEARCH: usize = 256;

/// The usearch options frameseek builds its index with (public so that benchmarks measure
/// the same index).
pub fn options(dim: usize, settings: &IndexSettings) -> IndexOptions {
    IndexOptions {
        dimensions: dim,
        metric: MetricKind::Cos,
        quantization: settings.precision.scalar(),
        connectivity: 16,
        expansion_add: 128,
        expansion_search: settings.expansion_search,
        multi: false,
    }
}

/// One search hit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Frame key.
    pub key: u64,
    /// Cosine similarity.
    pub score: f32,
}

impl VectorIndex {
    /// Opens the index at `path` and reconciles it with the store (see module docs),
    /// rebuilding it from the stored vectors when it cannot be used.
    pub fn open(
        path: &Path,
        dim: usize,
        settings: &IndexSettings,
        store: &Store,
    ) -> Result<(Self, OpenOutcome), IndexError> {
        let (me, outcome) = Self::open_or_stale(path, dim, settings, store)?;
        match outcome {
            OpenOutcome::Stale { reason } => {
                me.build_from(store, 0, &|_, _| {}, &|| false)?;
                Ok((me, OpenOutcome::Rebuilt { reason }))
            }
            loaded => Ok((me, loaded)),
        }
    }

    /// [`VectorIndex::open`] without the rebuild: an index that cannot be used comes back
    /// empty, as [`OpenOutcome::Stale`], for the caller to rebuild when it chooses
    /// ([`VectorIndex::build_from`]).
    pub fn open_or_stale(
        path: &Path,
        dim: usize,
        settings: &IndexSettings,
        store: &Store,
    ) -> Result<(Self, OpenOutcome), IndexError> {
        let me = Self::empty(path, dim, settings)?;
        let stored = store.frame_count();
        let load = if path.exists() {
            match me.index.load(&path.to_string_lossy()) {
                Ok(()) if me.index.dimensions() != dim => Err(format!(
                    "index file has dimension {}, model has {dim}",
                    me.index.dimensions()
                )),
                Ok(()) if me.index.scalar_kind() != settings.precision.scalar() => Err(format!(
                    "index file stores {:?}, index.precision asks for {:?}",
                    me.index.scalar_kind(),
                    settings.precision
                )),
                Ok(()) => {
                    me.index.change_expansion_search(settings.expansion_search);
                    Ok(())
                }
                Err(e) => Err(format!("index file {} is unreadable ({e})", path.display())),
            }
        } else if stored > 0 {
            Err(format!("index file {} is missing", path.display()))
        } else {
            Ok(())
        };
        if let Err(reason) = load {
            return Ok((
                Self::empty(path, dim, settings)?,
                OpenOutcome::Stale { reason },
            ));
        }
        let pending = store.pending_keys()?;
        let mut readded = 0;
        let target = (me.index.size() + pending.len())
            .max(me.index.capacity())
            .max(1024);
        me.index
            .reserve_capacity_and_threads(target, MAX_CONCURRENT_SEARCHES)
            .map_err(us)?;
        for key in pending {
            if !me.index.contains(key) {
                if let Some(v) = store.vector(key)? {
                    me.index.add(key, &v).map_err(us)?;
                    readded += 1;
                }
            }
        }
        let mut stored = stored;
        if me.index.size() != stored {
            // Check the counter before blaming the index.
            let rows = store.count_rows()?;
            if rows != stored {
                tracing::warn!(
                    counter = stored,
                    rows,
                    "frame counter disagrees with the stored frames: recounted"
                );
                stored = store.recount()? as usize;
            }
        }
        if me.index.size() != stored {
            let reason = format!(
                "index holds {} vectors but the store holds {stored}",
                me.index.size()
            );
            return Ok((
                Self::empty(path, dim, settings)?,
                OpenOutcome::Stale { reason },
            ));
        }
        Ok((me, OpenOutcome::Loaded { readded }))
    }

    /// An empty index that checkpoints to `path`.
    pub fn empty(path: &Path, dim: usize, settings: &IndexSettings) -> Result<Self, IndexError> {
        Ok(Self {
            index: Index::new(&options(dim, settings)).map_err(us)?,
            path: path.to_path_buf(),
            dim,
            settings: *settings,
        })
    }

    /// An empty index with this one's path, dimension and settings.
    pub fn empty_like(&self) -> Result<Self, IndexError> {
        Self::empty(&self.path, self.dim, &self.settings)
    }

    /// Replaces the in-memory index with one built from every stored vector.
    pub fn rebuild(&mut self, store: &Store) -> Result<(), IndexError> {
        self.index = Index::new(&options(self.dim, &self.settings)).map_err(us)?;
        self.build_from(store, 0, &|_, _| {}, &|| false)?;
        Ok(())
    }

    /// Adds the stored vectors whose keys are `from` or above, in key order, calling
    /// `on_progress(indexed, stored)` after each chunk. Between chunks it asks `stop`;
    /// when that says yes it returns the key to go on from, and `None` once every stored
    /// vector from `from` on was added.
    pub fn build_from(
        &self,
        store: &Store,
        from: u64,
        on_progress: &dyn Fn(usize, usize),
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<u64>, IndexError> {
        let total = store.frame_count();
        self.reserve(total)?;
        on_progress(self.index.size(), total);
        // In chunks, so that `add` spreads them over the cores.
        let mut chunk: Vec<(u64, Vec<f32>)> = Vec::with_capacity(REBUILD_CHUNK);
        let flush = |chunk: &mut Vec<(u64, Vec<f32>)>| {
            let refs: Vec<(u64, &[f32])> = chunk.iter().map(|(k, v)| (*k, v.as_slice())).collect();
            let added = self.add(&refs);
            chunk.clear();
            on_progress(self.index.size(), total);
            added
        };
        for row in store.vectors_from(from) {
            let (key, v) = row?;
            if v.len() == self.dim {
                chunk.push((key, v));
                if chunk.len() == REBUILD_CHUNK {
                    flush(&mut chunk)?;
                    if stop() {
                        return Ok(key.checked_add(1));
                    }
                }
            }
        }
        flush(&mut chunk)?;
        Ok(None)
    }

    /// Saves an index that [`VectorIndex::build_from`] stopped building at `next` beside
    /// the index file (`index.partial.NEXT.usearch`, written to a temporary name and
    /// renamed), so that the next start can go on from there ([`VectorIndex::take_partial`]).
    pub fn save_partial(&self, next: u64) -> Result<(), IndexError> {
        let io = |source| IndexError::Io {
            path: self.path.display().to_string(),
            source,
        };
        remove_partials(&self.path);
        let tmp = self.path.with_extension("partial.tmp");
        self.index.save(&tmp.to_string_lossy()).map_err(us)?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        std::fs::rename(&tmp, partial_path(&self.path, next)).map_err(io)
    }

    /// Deletes any partial index saved beside `path` by [`VectorIndex::save_partial`].
    pub fn discard_partials(path: &Path) {
        remove_partials(path);
    }

    /// Loads and deletes a partial index saved by [`VectorIndex::save_partial`] for `path`,
    /// with the key to go on from; `None` when there is none, or it does not match `dim`
    /// and `settings` (it is deleted then too).
    pub fn take_partial(path: &Path, dim: usize, settings: &IndexSettings) -> Option<(Self, u64)> {
        let (file, next) = find_partial(path)?;
        let me = Self::empty(path, dim, settings).ok()?;
        let loaded = me.index.load(&file.to_string_lossy()).is_ok()
            && me.index.dimensions() == dim
            && me.index.scalar_kind() == settings.precision.scalar();
        remove_partials(path);
        if !loaded {
            tracing::warn!(file = %file.display(), "partial index from an earlier rebuild does not match: starting over");
            return None;
        }
        me.index.change_expansion_search(settings.expansion_search);
        Some((me, next))
    }

    fn reserve(&self, needed: usize) -> Result<(), IndexError> {
        if needed > self.index.capacity() || self.index.capacity() == 0 {
            let target = needed.max(self.index.capacity() * 2).max(1024);
            self.index
                .reserve_capacity_and_threads(target, MAX_CONCURRENT_SEARCHES)
                .map_err(us)?;
        }
        Ok(())
    }

    /// Adds vectors (keys already present are skipped). Large batches (a rebuild, a bulk
    /// load) are added from one thread per core: usearch's graph takes concurrent adds.
    pub fn add(&self, items: &[(u64, &[f32])]) -> Result<(), IndexError> {
        self.reserve(self.index.size() + items.len())?;
        let todo: Vec<&(u64, &[f32])> = items
            .iter()
            .filter(|(key, _)| !self.index.contains(*key))
            .collect();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = cores
            .min(todo.len() / PARALLEL_ADD_MIN)
            .min(MAX_CONCURRENT_SEARCHES);
        if threads <= 1 {
            for (key, v) in todo {
                self.index.add(*key, v).map_err(us)?;
            }
            return Ok(());
        }
        let chunk = todo.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let workers: Vec<_> = todo
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .try_for_each(|(key, v)| self.index.add(*key, v).map_err(us))
                    })
                })
                .collect();
            workers
                .into_iter()
                .try_for_each(|w| w.join().expect("index add thread panicked"))
        })
    }

    /// Adds the store's pending vectors that the index lacks (after the database was
    /// reopened); returns how many.
    pub fn readd_pending(&self, store: &Store) -> Result<usize, IndexError> {
        let mut n = 0;
        for key in store.pending_keys()? {
            if !self.index.contains(key) {
                if let Some(v) = store.vector(key)? {
                    self.reserve(self.index.size() + 1)?;
                    self.index.add(key, &v).map_err(us)?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Removes vectors.
    pub fn remove(&self, keys: &[u64]) -> Result<(), IndexError> {
        for k in keys {
            self.index.remove(*k).map_err(us)?;
        }
        Ok(())
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.index.size()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the key is indexed.
    pub fn contains(&self, key: u64) -> bool {
        self.index.contains(key)
    }

    /// The `count` nearest vectors whose key passes `filter`, best first.
    pub fn search(
        &self,
        query: &[f32],
        count: usize,
        filter: impl Fn(u64) -> bool,
    ) -> Result<Vec<Hit>, IndexError> {
        if self.index.size() == 0 || count == 0 {
            return Ok(Vec::new());
        }
        let m = self
            .index
            .filtered_search(query, count, filter)
            .map_err(us)?;
        Ok(m.keys
            .iter()
            .zip(&m.distances)
            .map(|(&key, &d)| Hit {
                key,
                score: 1.0 - d,
            })
            .collect())
    }

    /// Writes the index durably: temporary file, fsync, rename, fsync of the folder.
    pub fn checkpoint(&self) -> Result<(), IndexError> {
        let io = |source| IndexError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let tmp = self.path.with_extension("usearch.tmp");
        // usearch's writer reports no errno: reserving the file's size first makes a full
        // disk fail here, as ENOSPC.
        let written = crate::store::disk::reserve(&tmp, self.index.serialized_length() as u64)
            .map_err(io)
            .and_then(|()| self.index.save(&tmp.to_string_lossy()).map_err(us))
            .and_then(|()| {
                std::fs::File::open(&tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(io)
            });
        if let Err(e) = written {
            // A partial file would keep holding the space (a full disk).
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|f| f.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }
}

/// The partial index saved when a rebuild stopped at key `next`.
fn partial_path(index: &Path, next: u64) -> PathBuf {
    index.with_file_name(format!("index.partial.{next}.usearch"))
}

/// The partial index saved beside `index`, with its key, if there is one.
fn find_partial(index: &Path) -> Option<(PathBuf, u64)> {
    let dir = index.parent()?;
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let name = e.file_name().into_string().ok()?;
        let next = name
            .strip_prefix("index.partial.")?
            .strip_suffix(".usearch")?
            .parse()
            .ok()?;
        Some((e.path(), next))
    })
}

/// Deletes every partial index beside `index`.
fn remove_partials(index: &Path) {
    while let Some((file, _)) = find_partial(index) {
        if std::fs::remove_file(&file).is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{frame_key, Fingerprint};

    fn unit(seed: u32, dim: usize) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        let mut v: Vec<f32> = (0..dim)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) - 0.5
            })
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= n);
        v
    }

    #[test]
    fn a_large_batch_is_added_in_parallel_completely() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let (idx, _) = VectorIndex::open(
            &dir.path().join("i.usearch"),
            16,
            &IndexSettings::default(),
            &store,
        )
        .unwrap();
        let n = 4 * PARALLEL_ADD_MIN + 7;
        let vs: Vec<Vec<f32>> = (0..n as u32).map(|i| unit(i, 16)).collect();
        let items: Vec<(u64, &[f32])> = vs
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u64, v.as_slice()))
            .collect();
        idx.add(&items).unwrap();
        // Adding the same keys again changes nothing.
        idx.add(&items[..PARALLEL_ADD_MIN * 2]).unwrap();
        assert_eq!(idx.len(), n);
        // Every vector is in the graph and reachable. HNSW is approximate and a parallel
        // build is not deterministic, so a vector is looked for among its 10 nearest
        // rather than as the single nearest (which failed once in a fresh-clone test run).
        for i in (0..n).step_by(97) {
            assert!(idx.contains(i as u64));
            let top = idx.search(&vs[i], 10, |_| true).unwrap();
            assert!(
                top.iter().any(|hit| hit.key == i as u64),
                "vector {i} not among its 10 nearest: {:?}",
                top.iter().map(|h| h.key).collect::<Vec<_>>()
            );
        }
    }

    /// A store holding `n` 16-d unit vectors of one source, one a second; with the vectors
    /// and their keys.
    fn stored(dir: &Path, n: u32) -> (Store, Vec<Vec<f32>>, Vec<u64>) {
        let store = Store::open(&dir.join("db")).unwrap();
        let rec = store
            .new_source("/a.mp4", Fingerprint::default(), 1.0, None)
            .unwrap();
        let vs: Vec<Vec<f32>> = (0..n).map(|i| unit(i, 16)).collect();
        let keys: Vec<u64> = (0..n)
            .map(|i| frame_key(rec.no, u64::from(i) * 1000))
            .collect();
        let items: Vec<(u64, &[f32])> = keys.iter().zip(&vs).map(|(k, v)| (*k, &v[..])).collect();
        store.commit_frames(&items).unwrap();
        (store, vs, keys)
    }

    #[test]
    fn checkpoint_reload_and_rebuild_after_damage() {
        let dir = tempfile::tempdir().unwrap();
        let (store, vs, keys) = stored(dir.path(), 50);
        let path = dir.path().join("index.usearch");
        let (idx, outcome) =
            VectorIndex::open(&path, 16, &IndexSettings::default(), &store).unwrap();
        assert!(
            matches!(outcome, OpenOutcome::Rebuilt { .. }),
            "{outcome:?}"
        );
        assert_eq!(idx.len(), 50);
        let top = idx.search(&vs[7], 1, |_| true).unwrap();
        assert_eq!(top[0].key, keys[7]);
        assert!((top[0].score - 1.0).abs() < 2e-3);
        idx.checkpoint().unwrap();
        store.clear_pending(&store.pending_keys().unwrap()).unwrap();

        let (idx, outcome) =
            VectorIndex::open(&path, 16, &IndexSettings::default(), &store).unwrap();
        assert_eq!(outcome, OpenOutcome::Loaded { readded: 0 });
        assert_eq!(idx.len(), 50);
        // A filter that excludes the best match still returns the requested count.
        let filtered = idx.search(&vs[7], 5, |k| k != keys[7]).unwrap();
        assert_eq!(filtered.len(), 5);
        assert!(filtered.iter().all(|h| h.key != keys[7]));

        std::fs::write(&path, b"garbage").unwrap();
        let (idx, outcome) =
            VectorIndex::open(&path, 16, &IndexSettings::default(), &store).unwrap();
        assert!(
            matches!(outcome, OpenOutcome::Rebuilt { .. }),
            "{outcome:?}"
        );
        assert_eq!(idx.len(), 50);
    }

    #[test]
    fn a_change_of_precision_rebuilds_from_the_stored_vectors() {
        let dir = tempfile::tempdir().unwrap();
        let (store, vs, keys) = stored(dir.path(), 40);
        let path = dir.path().join("index.usearch");
        let f32s = IndexSettings {
            precision: IndexPrecision::F32,
            expansion_search: 32,
            ..IndexSettings::default()
        };
        let (idx, _) = VectorIndex::open(&path, 16, &f32s, &store).unwrap();
        idx.checkpoint().unwrap();
        store.clear_pending(&store.pending_keys().unwrap()).unwrap();
        let (idx, outcome) = VectorIndex::open(&path, 16, &f32s, &store).unwrap();
        assert_eq!(outcome, OpenOutcome::Loaded { readded: 0 });
        assert_eq!(idx.index.scalar_kind(), ScalarKind::F32);

        let f16s = IndexSettings {
            precision: IndexPrecision::F16,
            expansion_search: 200,
            ..IndexSettings::default()
        };
        let (idx, outcome) = VectorIndex::open(&path, 16, &f16s, &store).unwrap();
        match outcome {
            OpenOutcome::Rebuilt { reason } => assert!(reason.contains("precision"), "{reason}"),
            other => panic!("not rebuilt: {other:?}"),
        }
        assert_eq!(idx.index.scalar_kind(), ScalarKind::F16);
        assert_eq!(idx.index.expansion_search(), 200);
        assert_eq!(idx.len(), 40);
        let top = idx.search(&vs[3], 1, |_| true).unwrap();
        assert_eq!(top[0].key, keys[3]);
        // f16 keeps the cosine to about three decimals.
        assert!((top[0].score - 1.0).abs() < 2e-3, "{}", top[0].score);
        // The rebuilt file is f16 too, and a load keeps the configured expansion.
        idx.checkpoint().unwrap();
        let (idx, outcome) = VectorIndex::open(&path, 16, &f16s, &store).unwrap();
        assert_eq!(outcome, OpenOutcome::Loaded { readded: 0 });
        assert_eq!(idx.index.expansion_search(), 200);
    }
}
