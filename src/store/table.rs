//! The source records in memory: every search reads them (filters, clip times) and a
//! watch scan looks each file up, so they are read from here rather than parsed from sled
//! each time. The table follows the `sources` tree: every write updates it after the write
//! is durable, under the store's gate, and a reopen drops it (it is read again on first use).

use std::collections::{BTreeMap, HashMap};

use super::{corrupt, SourceRecord, StoreError};

/// The source records by number, and their numbers by id (in id order).
#[derive(Debug, Default)]
pub struct SourceTable {
    by_no: HashMap<u32, SourceRecord>,
    by_id: BTreeMap<String, u32>,
}

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
            if old != record.no {
                self.by_no.remove(&old);
            }
        }
        self.by_no.insert(record.no, record);
    }

    /// Removes the record of `id`.
    pub(super) fn remove(&mut self, id: &str) {
        if let Some(no) = self.by_id.remove(id) {
            self.by_no.remove(&no);
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
}
