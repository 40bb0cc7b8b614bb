//! The source records in memory: every search reads them (filters, clip times) and a
//! watch scan looks each file up, so they are read from here rather than parsed from sled
//! each time. The table follows the `sources` tree: every write updates it after the write
//! is durable, under the store's gate, and a reopen drops it (it is read again on first use).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{corrupt, SourceRecord, StoreError};

/// The source records by number, their numbers by id (in id order), and by wall-clock start.
#[derive(Debug, Default)]
pub struct SourceTable {
    by_no: HashMap<u32, SourceRecord>,
    by_id: BTreeMap<String, u32>,
    /// (wall-clock start in ms, number) of every source whose start is known.
    by_start: BTreeSet<(i64, u32)>,
    /// The longest footage of any source with a known start, in ms (never lowered: a bound).
    longest_ms: u64,
    /// The sum of every record's `frames` (sampled frames, whatever their views).
    frames: u64,
}

/// Slack added to [`SourceTable`]'s longest footage when it bounds a wall-clock lookup: a
/// growing source (a live stream, a followed file) may hold frames a little past the offsets
/// its record has caught up with.
const WALL_SLACK_MS: u64 = 10 * 60 * 1000;

impl SourceTable {
    /// Reads every record of the `sources` tree.
    pub(super) fn load(tree: &sled::Tree) -> Result<Self, StoreError> {
        let mut table = Self::default();
        for value in tree.iter().values() {
            let record: SourceRecord =
                serde_json::from_slice(&value?).map_err(|e| corrupt("sources", e))?;
            table.put(record);
        }
        Ok(table)
    }

    /// The record of source id `id`.
    pub fn get(&self, id: &str) -> Option<&SourceRecord> {
        self.by_id.get(id).and_then(|no| self.by_no.get(no))
    }

    /// The record of source number `no`.
    pub fn by_no(&self, no: u32) -> Option<&SourceRecord> {
        self.by_no.get(&no)
    }

    /// Every record, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &SourceRecord> {
        self.by_id.values().filter_map(|no| self.by_no.get(no))
    }

    /// Every (id, number), in id order (reads no record).
    pub fn ids(&self) -> impl Iterator<Item = (&str, u32)> {
        self.by_id.iter().map(|(id, no)| (id.as_str(), *no))
    }

    /// The records whose id starts with `prefix`, in id order (a range of the ordered ids:
    /// costs the matches, not the table).
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a SourceRecord> {
        self.by_id
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(id, _)| id.starts_with(prefix))
            .filter_map(|(_, no)| self.by_no.get(no))
    }

    /// The records whose footage can hold a wall-clock time in `after..=before` (either end
    /// open): the sources that started at most the longest footage's length before `after`,
    /// and not after `before`, in start order (a range of the start times: costs the
    /// candidates, not the table). Sources whose start is unknown are never among them.
    pub fn overlapping_wall(
        &self,
        after: Option<i64>,
        before: Option<i64>,
    ) -> impl Iterator<Item = &SourceRecord> {
        let reach = self.longest_ms.saturating_add(WALL_SLACK_MS);
        let lo = after.map_or(i64::MIN, |a| {
            a.saturating_sub(reach.min(i64::MAX as u64) as i64)
        });
        let hi = before.unwrap_or(i64::MAX);
        let range = (lo <= hi).then(|| self.by_start.range((lo, 0)..=(hi, u32::MAX)));
        range
            .into_iter()
            .flatten()
            .filter_map(|(_, no)| self.by_no.get(no))
    }

    /// Sources known.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when there is no source.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Adds or replaces a record (a record that changed its number drops the old one).
    pub(super) fn put(&mut self, record: SourceRecord) {
        if let Some(old) = self.by_id.insert(record.source.clone(), record.no) {
            self.drop_no(old);
        }
        self.drop_no(record.no);
        if let Some(start) = record.start_wall_ms {
            self.by_start.insert((start, record.no));
            let span = record.duration_ms.max(record.watermark_ms).unwrap_or(0);
            self.longest_ms = self.longest_ms.max(span);
        }
        self.frames += record.frames;
        self.by_no.insert(record.no, record);
    }

    /// Sampled frames stored, over every source (each counted once, whatever its views).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Drops the record numbered `no` from the maps by number and by start.
    fn drop_no(&mut self, no: u32) {
        if let Some(old) = self.by_no.remove(&no) {
            self.frames -= old.frames;
            if let Some(start) = old.start_wall_ms {
                self.by_start.remove(&(start, no));
            }
        }
    }

    /// Removes the record of `id`.
    pub(super) fn remove(&mut self, id: &str) {
        if let Some(no) = self.by_id.remove(id) {
            self.drop_no(no);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Fingerprint;

    fn record(id: &str, no: u32) -> SourceRecord {
        SourceRecord::new(id, no, Fingerprint::default(), 1.0, None)
    }

    #[test]
    fn ids_by_prefix_and_numbers_follow_puts_and_removes() {
        let mut t = SourceTable::default();
        for (i, id) in ["/b/y", "/a/x2", "/ab/x3", "/a/x1"].iter().enumerate() {
            t.put(record(id, i as u32 + 1));
        }
        let under_a: Vec<&str> = t.with_prefix("/a/").map(|r| r.source.as_str()).collect();
        assert_eq!(under_a, ["/a/x1", "/a/x2"]);
        assert_eq!(t.with_prefix("").count(), 4);
        assert_eq!(t.with_prefix("/c").count(), 0);
        // A record that changed its number leaves no trace of the old one.
        t.put(record("/a/x1", 40));
        assert!(t.by_no(4).is_none());
        assert_eq!(t.get("/a/x1").unwrap().no, 40);
        t.remove("/a/x2");
        assert!(t.get("/a/x2").is_none() && t.by_no(2).is_none());
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn wall_clock_candidates_are_the_sources_that_can_overlap_the_range() {
        let mut t = SourceTable::default();
        let hour = 3_600_000i64;
        // Hour-long segments, one after another, and one source of unknown time.
        for i in 0..10u32 {
            let mut r = record(&format!("/nvr/{i:02}.mp4"), i + 1);
            r.start_wall_ms = Some(i64::from(i) * hour);
            r.duration_ms = Some(hour as u64);
            t.put(r);
        }
        t.put(record("/unknown.mp4", 99));
        fn ids(t: &SourceTable, after: Option<i64>, before: Option<i64>) -> Vec<String> {
            t.overlapping_wall(after, before)
                .map(|r| r.source.clone())
                .collect()
        }
        // The last hour: the segment that began then and the one running into it.
        assert_eq!(
            ids(&t, Some(9 * hour + 1), None),
            ["/nvr/08.mp4", "/nvr/09.mp4"]
        );
        assert_eq!(ids(&t, None, Some(0)), ["/nvr/00.mp4"]);
        assert!(ids(&t, Some(20 * hour), Some(4 * hour)).is_empty());
        assert_eq!(
            ids(&t, None, None).len(),
            10,
            "unknown start: never a candidate"
        );
        // A source moved in time, and a removed one, leave no trace.
        let mut moved = record("/nvr/00.mp4", 1);
        moved.start_wall_ms = Some(20 * hour);
        t.put(moved);
        t.remove("/nvr/09.mp4");
        assert_eq!(
            ids(&t, Some(9 * hour + 1), None),
            ["/nvr/08.mp4", "/nvr/00.mp4"]
        );
        assert!(ids(&t, None, Some(0)).is_empty());
    }
}
