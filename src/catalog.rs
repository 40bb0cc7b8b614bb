//! The store and the index together: every write goes to sled first (durable), then to the
//! in-memory usearch index; checkpoints make the index file catch up.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use crate::embed::ModelIdentity;
use crate::index::{Hit, IndexError, IndexSettings, OpenOutcome, VectorIndex};
use crate::protocol::Clip;
use crate::query::{group_clips, score_spread, source_matches};
use crate::store::{split_key, stored_dot, SourceRecord, Store, StoreError};

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

/// Largest number of frames a source filter may select for an exact scan instead of a
/// graph search.
pub const EXACT_SCAN_MAX_FRAMES: u64 = 100_000;

/// Filters applied inside the vector search.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    /// Exact source id, or a glob (see [`crate::query::source_matches`]).
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

/// True when a source filter selecting `selected` of `total` indexed frames is scored
/// exactly (at most [`EXACT_SCAN_MAX_FRAMES`] and at most 5 % of the index).
pub fn exact_scan_applies(selected: u64, total: u64) -> bool {
    selected <= EXACT_SCAN_MAX_FRAMES && selected * 20 <= total
}

/// Scores every stored frame of the sources `nos` with an offset in `offsets` (inclusive)
/// that passes `pass` against a normalised `query` (dot product = cosine), best first: the
/// exact path of [`Catalog::search`], public so benchmarks measure the same code.
pub fn score_exactly(
    store: &Store,
    nos: impl IntoIterator<Item = u32>,
    offsets: (u64, u64),
    query: &[f32],
    pass: &dyn Fn(u64) -> bool,
) -> Result<Vec<Hit>, StoreError> {
    let mut hits = Vec::new();
    for no in nos {
        store.visit_source_vectors(no, offsets.0, offsets.1, |key, bytes| {
            if pass(key) {
                let score = stored_dot(bytes, query);
                hits.push(Hit { key, score });
            }
        })?;
    }
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(hits)
}

/// Frames removed per transaction by retention.
const RETENTION_CHUNK: usize = 10_000;

/// What retention removes (`[retention]` in the configuration); `None` = no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RetentionPolicy {
    /// Remove frames recorded (wall clock) more than this many days ago.
    pub max_age_days: Option<f64>,
    /// Keep at most this many frames per source, the newest.
    pub max_frames_per_source: Option<u64>,
}

impl RetentionPolicy {
    /// True when any limit is set.
    pub fn is_active(&self) -> bool {
        self.max_age_days.is_some() || self.max_frames_per_source.is_some()
    }
}

/// What one retention run removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Frames removed.
    pub removed: u64,
    /// Sources that lost frames.
    pub sources: u64,
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
        let (mut index, mut outcome) =
            VectorIndex::open(&state_dir.join("index.usearch"), model.dim, index, &store)?;
        if interrupted_removal && !matches!(outcome, OpenOutcome::Rebuilt { .. }) {
            // The index file may still hold frames removed from the database.
            index.rebuild(&store)?;
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

    /// Applies the retention policy at wall-clock time `now_ms`: per source, raises its
    /// retention floor (durably, first: searches and commits honour it at once), then
    /// removes the frames below it from the database and the index in chunks, then
    /// checkpoints. A crash at any point leaves the floor in place; the next run (at start)
    /// finishes the removal, and the index is rebuilt from the database.
    pub fn apply_retention(
        &self,
        policy: &RetentionPolicy,
        now_ms: i64,
    ) -> Result<RetentionReport, CatalogError> {
        let mut report = RetentionReport::default();
        if !policy.is_active() {
            return Ok(report);
        }
        let _w = self.writer.lock().expect("writer lock");
        let mut begun = false;
        for rec in self.store.sources()? {
            let keys = self.store.source_keys(rec.no)?;
            let mut floor = rec.retain_from_ms.unwrap_or(0);
            if let (Some(days), Some(start)) = (policy.max_age_days, rec.start_wall_ms) {
                let cutoff = now_ms - (days * 86_400_000.0) as i64;
                floor = floor.max((cutoff - start).max(0) as u64);
            }
            if let Some(budget) = policy.max_frames_per_source {
                if keys.len() as u64 > budget {
                    floor = floor.max(split_key(keys[keys.len() - budget as usize]).1);
                }
            }
            let doomed: Vec<u64> = keys
                .iter()
                .copied()
                .take_while(|k| split_key(*k).1 < floor)
                .collect();
            if rec.retain_from_ms.unwrap_or(0) < floor {
                self.store.update_source(&rec.source, |r| {
                    r.retain_from_ms = Some(r.retain_from_ms.unwrap_or(0).max(floor));
                })?;
            }
            if doomed.is_empty() {
                continue;
            }
            if !begun {
                self.begin_removal()?;
                begun = true;
            }
            let mut removed = 0;
            for chunk in doomed.chunks(RETENTION_CHUNK) {
                let gone = self.store.remove_frames(chunk, true)?;
                self.index.write().expect("index lock").remove(&gone)?;
                removed += gone.len() as u64;
            }
            tracing::info!(
                source = %rec.source,
                removed,
                kept = keys.len() as u64 - removed,
                retain_from_ms = floor,
                "retention: frames removed"
            );
            report.removed += removed;
            report.sources += 1;
        }
        if begun {
            self.checkpoint_locked()?;
        }
        Ok(report)
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
            if record.retain_from_ms.is_some_and(|floor| offset < floor) {
                return false;
            }
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
        let source_of = |no: u32| {
            sources.get(&no).map(|r| {
                (
                    r.source.clone(),
                    (r.interval * 1000.0).round() as u64,
                    r.duration_ms,
                )
            })
        };
        let finish = |clips: Vec<Clip>| -> Vec<Clip> {
            clips
                .into_iter()
                .take(k)
                .map(|mut c| {
                    if let Some(start) = sources
                        .values()
                        .find(|r| r.source == c.source)
                        .and_then(|r| r.start_wall_ms)
                    {
                        c.start_wall = Some(crate::clock::format_utc(start + c.start_ms as i64));
                        c.end_wall = Some(crate::clock::format_utc(start + c.end_ms as i64));
                    }
                    c
                })
                .collect()
        };
        let index = self.index.read().expect("index lock");
        let total = index.len();
        // A selective source filter: score that footage exactly instead of making the graph
        // search wade through the other sources (exact, and faster below a few percent).
        if let Some(allowed) = &allowed {
            let selected: u64 = allowed
                .iter()
                .filter_map(|no| sources.get(no))
                .map(|r| r.frames)
                .sum();
            if exact_scan_applies(selected, total as u64) {
                let hits =
                    score_exactly(&self.store, allowed.iter().copied(), (lo, hi), query, &pass)?;
                return Ok(finish(group_clips(
                    &hits,
                    gap_ms,
                    score_spread(&hits),
                    source_of,
                )));
            }
        }
        let mut count = (k * 8).max(64).min(total.max(1));
        loop {
            let hits = index.search(query, count, pass)?;
            let clips = group_clips(&hits, gap_ms, score_spread(&hits), source_of);
            if clips.len() >= k || count >= total {
                return Ok(finish(clips));
            }
            if hits.len() < count {
                // The graph search came back short: the filter is sparse (few frames pass),
                // and a graph walk can miss some of them. Score the frames in the filter's
                // key ranges exactly instead: few by construction, and exact.
                let nos: Vec<u32> = match &allowed {
                    Some(a) => a.iter().copied().collect(),
                    None => sources.keys().copied().collect(),
                };
                let hits = score_exactly(&self.store, nos, (lo, hi), query, &pass)?;
                return Ok(finish(group_clips(
                    &hits,
                    gap_ms,
                    score_spread(&hits),
                    source_of,
                )));
            }
            count = (count * 4).min(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{frame_key, Fingerprint};

    /// A catalog in `dir` for a 16-d test model, with the default index settings.
    fn open_test_catalog(dir: &Path) -> (Catalog, OpenOutcome) {
        let model = ModelIdentity {
            id: "m".into(),
            dim: 16,
            digest: "d".into(),
        };
        Catalog::open(dir, &model, &IndexSettings::default(), 10_000).unwrap()
    }

    fn unit(seed: u64, dim: usize) -> Vec<f32> {
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

    #[test]
    fn retention_removes_old_and_over_budget_frames_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let day = 86_400_000i64;
        let now = 100 * day;
        let frames_of = |no: u32, n: u64| -> Vec<(u64, Vec<f32>)> {
            (0..n)
                .map(|i| (frame_key(no, i * 1000), unit(u64::from(no) * 1000 + i, 16)))
                .collect()
        };
        let (old, young);
        {
            let (catalog, _) = open_test_catalog(dir.path());
            let store = catalog.store();
            old = store
                .new_source("/old.mp4", Fingerprint::default(), 1.0, None)
                .unwrap()
                .no;
            young = store
                .new_source("/young.mp4", Fingerprint::default(), 1.0, None)
                .unwrap()
                .no;
            // /old.mp4 starts 2 days + 30 s ago: its first 30 frames are older than 2 days.
            store
                .update_source("/old.mp4", |r| {
                    r.start_wall_ms = Some(now - 2 * day - 30_000)
                })
                .unwrap();
            store
                .update_source("/young.mp4", |r| r.start_wall_ms = Some(now - 1000))
                .unwrap();
            catalog.commit(&frames_of(old, 100)).unwrap();
            catalog.commit(&frames_of(young, 100)).unwrap();
            let policy = RetentionPolicy {
                max_age_days: Some(2.0),
                max_frames_per_source: Some(80),
            };
            let report = catalog.apply_retention(&policy, now).unwrap();
            assert_eq!(
                report,
                RetentionReport {
                    removed: 30 + 20,
                    sources: 2
                }
            );
            // Idempotent.
            assert_eq!(catalog.apply_retention(&policy, now).unwrap().removed, 0);
            assert_eq!(store.source("/old.mp4").unwrap().unwrap().frames, 70);
            assert_eq!(store.source("/young.mp4").unwrap().unwrap().frames, 80);
            assert_eq!(store.frame_count(), 150);
            assert_eq!(catalog.indexed(), 150);
            assert_eq!(store.retention_removed(), 50);
            // Re-committing removed frames (a re-ingest) stores nothing; the 20 below the
            // floor count as kept out by retention.
            assert_eq!(catalog.commit(&frames_of(young, 100)).unwrap(), 0);
            assert_eq!(store.retention_removed(), 70);
        }
        let check = |catalog: &Catalog| {
            let clips = catalog
                .search(&unit(7, 16), 1000, &SearchFilter::default(), 100)
                .unwrap();
            assert_eq!(clips.len(), 150);
            for c in &clips {
                let floor = if c.source == "/old.mp4" {
                    30_000
                } else {
                    20_000
                };
                assert!(c.best_ms >= floor, "{c:?}");
            }
        };
        // After a restart, and after a rebuild of the index from the stored vectors.
        let (catalog, _) = open_test_catalog(dir.path());
        check(&catalog);
        drop(catalog);
        std::fs::remove_file(dir.path().join("index.usearch")).unwrap();
        let (catalog, outcome) = open_test_catalog(dir.path());
        assert!(matches!(outcome, OpenOutcome::Rebuilt { .. }));
        check(&catalog);
    }

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

    #[test]
    fn a_selective_source_filter_returns_a_full_page_of_exact_results() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, _) = open_test_catalog(dir.path());
        let mut nos = Vec::new();
        for s in 0..40 {
            let rec = catalog
                .store()
                .new_source(
                    &format!("/cam{s:02}.mp4"),
                    Fingerprint::default(),
                    1.0,
                    None,
                )
                .unwrap();
            nos.push(rec.no);
            // Frames 10 s apart: every frame is its own clip.
            let frames: Vec<(u64, Vec<f32>)> = (0..20)
                .map(|i| {
                    (
                        frame_key(rec.no, i * 10_000),
                        unit(u64::from(rec.no) * 1000 + i, 16),
                    )
                })
                .collect();
            catalog.commit(&frames).unwrap();
        }
        let query = unit(424_242, 16);
        let filter = SearchFilter {
            source: Some("/cam07.mp4".into()),
            ..Default::default()
        };
        let clips = catalog.search(&query, 5, &filter, 2000).unwrap();
        assert_eq!(clips.len(), 5);
        assert!(clips.iter().all(|c| c.source == "/cam07.mp4"));
        // Exactly the best frame of that source, by brute force.
        let best = (0..20u64)
            .map(|i| {
                (
                    i * 10_000,
                    unit(u64::from(nos[7]) * 1000 + i, 16)
                        .iter()
                        .zip(&query)
                        .map(|(a, b)| a * b)
                        .sum::<f32>(),
                )
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        assert_eq!(clips[0].best_ms, best.0);
        assert!((clips[0].score - best.1).abs() < 1e-5);
        // A time range inside the filter still fills the page when enough frames match.
        let ranged = SearchFilter {
            source: Some("/cam07.mp4".into()),
            start_ms: Some(50_000),
            end_ms: Some(150_000),
            ..Default::default()
        };
        let clips = catalog.search(&query, 5, &ranged, 2000).unwrap();
        assert_eq!(clips.len(), 5);
        assert!(clips
            .iter()
            .all(|c| (50_000..=150_000).contains(&c.best_ms)));
        // A sparse time filter (one frame per source, 40 of 800) gets every passing frame,
        // the best one first, even where a graph walk would miss some.
        let sparse = SearchFilter {
            start_ms: Some(50_000),
            end_ms: Some(50_000),
            ..Default::default()
        };
        let clips = catalog.search(&query, 100, &sparse, 2000).unwrap();
        assert_eq!(clips.len(), 40);
        assert!(clips.iter().all(|c| c.best_ms == 50_000));
        let best = nos
            .iter()
            .map(|&no| {
                let v = unit(u64::from(no) * 1000 + 5, 16);
                (no, v.iter().zip(&query).map(|(a, b)| a * b).sum::<f32>())
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        let top = catalog.search(&query, 1, &sparse, 2000).unwrap();
        assert_eq!(top[0].source, format!("/cam{:02}.mp4", best.0 - nos[0]));
        // Unfiltered searches use the graph and also fill the page.
        assert_eq!(
            catalog
                .search(&query, 10, &SearchFilter::default(), 2000)
                .unwrap()
                .len(),
            10
        );
    }
}
