//! Retention (`[retention]`): old frames and frames over a source's budget are removed for
//! good, behind a per-source floor that is stored first.

use super::{Catalog, CatalogError};
use crate::store::{key_view, split_key};

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

impl Catalog {
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
                // The budget counts frames (times), not views: each frame's views share
                // its offset, and view 0 is every frame's.
                let starts: Vec<u64> = keys
                    .iter()
                    .filter(|&&k| key_view(k) == 0)
                    .map(|&k| split_key(k).1)
                    .collect();
                if starts.len() as u64 > budget {
                    floor = floor.max(starts[starts.len() - budget as usize]);
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
                self.unindex(&gone)?;
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
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{open_test_catalog, unit};
    use super::*;
    use crate::index::OpenOutcome;
    use crate::store::{frame_key, Fingerprint};

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
        // No frame below a floor is in the index; every frame above one is.
        let check = |catalog: &Catalog| {
            assert_eq!(catalog.indexed(), 150);
            let index = catalog.read_index();
            for (no, floor) in [(old, 30_000), (young, 20_000)] {
                for i in 0..100u64 {
                    let key = frame_key(no, i * 1000);
                    assert_eq!(index.contains(key), i * 1000 >= floor, "{no} at {i} s");
                }
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
}
