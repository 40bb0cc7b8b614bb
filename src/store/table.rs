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
