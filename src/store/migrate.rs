//! The move from key format 1 (before views: `source_no << 40 | offset_ms` in the tree
//! `vectors`) to format 2 (`source_no << 42 | offset_ms << 4 | view` in the tree `frames`).
//!
//! Rows move in transactions of [`MIGRATE_CHUNK`]: each one inserts the new keys into
//! `frames` and removes the old ones from `vectors` atomically, so a kill at any moment
//! leaves every row in exactly one of the two trees, and the next open goes on from there.
//! The two layouts cannot share a tree: an old key can equal another frame's new key.

use sled::transaction::Transactional;

use super::{corrupt, tx_error, view_key, Store, StoreError, KEY_FORMAT, MAX_SOURCE_NO};

/// Rows moved per transaction.
pub const MIGRATE_CHUNK: usize = 10_000;
/// The tree format 1 kept its vectors in.
const LEGACY_TREE: &str = "vectors";
/// Bits of a format-1 key that held the offset.
const LEGACY_OFFSET_BITS: u32 = 40;

/// A format-1 key as (source number, offset in ms).
fn split_legacy(key: u64) -> (u32, u64) {
    (
        (key >> LEGACY_OFFSET_BITS) as u32,
        key & ((1 << LEGACY_OFFSET_BITS) - 1),
    )
}

impl Store {
    /// Whether the database holds frames in key format 1, to be moved by
    /// [`Store::migrate_keys`]. A new or empty database is stamped with [`KEY_FORMAT`] here.
    pub fn keys_need_migration(&self) -> Result<bool, StoreError> {
        let t = self.t()?;
        let format = t
            .meta
            .get("key_format")?
            .and_then(|b| <[u8; 4]>::try_from(b.as_ref()).ok())
            .map(u32::from_be_bytes);
        if format == Some(KEY_FORMAT) {
            return Ok(false);
        }
        let legacy =
            t.db.tree_names()
                .iter()
                .any(|n| n.as_ref() == LEGACY_TREE.as_bytes());
        if legacy && !t.db.open_tree(LEGACY_TREE)?.is_empty() {
            return Ok(true);
        }
        self.finish_migration()?;
        Ok(false)
    }

    /// Moves every format-1 row to format 2 (its frame becomes view 0), in crash-safe chunks,
    /// then stamps the format and recounts the frames. Pending marks are dropped: they name
    /// old keys, and the caller rebuilds the index from the moved rows. Returns the rows moved.
    pub fn migrate_keys(&self) -> Result<u64, StoreError> {
        let t = self.t()?;
        let dir = self.dir.display().to_string();
        let legacy = t.db.open_tree(LEGACY_TREE)?;
        t.pending.clear()?;
        // The outbox's marks name old keys too (a node of a shared Milvus).
        self.reset_outbox_for_new_keys()?;
        let mut moved = 0u64;
        loop {
            let mut chunk = Vec::with_capacity(MIGRATE_CHUNK);
            for kv in legacy.iter().take(MIGRATE_CHUNK) {
                let (k, v) = kv?;
                let key = u64::from_be_bytes(
                    k.as_ref()
                        .try_into()
                        .map_err(|_| corrupt("vectors", "bad key"))?,
                );
                let (no, offset) = split_legacy(key);
                if no > MAX_SOURCE_NO {
                    return Err(StoreError::Migration {
                        dir,
                        reason: format!(
                            "source number {no} is above {MAX_SOURCE_NO}, the most the new layout holds"
                        ),
                    });
                }
                chunk.push((k, view_key(no, offset, 0), v));
            }
            if chunk.is_empty() {
                break;
            }
            let _durable = self.gate.write().expect("store gate");
            (&legacy, &t.vectors)
                .transaction(|(old, new)| {
                    for (old_key, new_key, value) in &chunk {
                        new.insert(&new_key.to_be_bytes(), value.clone())?;
                        old.remove(old_key)?;
                    }
                    Ok::<_, sled::transaction::ConflictableTransactionError<super::Abort>>(())
                })
                .map_err(tx_error)?;
            t.db.flush()?;
            moved += chunk.len() as u64;
            tracing::info!(moved, "store: frame keys moved to the format with views");
        }
        self.finish_migration()?;
        self.recount()?;
        Ok(moved)
    }

    /// Stamps [`KEY_FORMAT`] and drops the emptied format-1 tree.
    fn finish_migration(&self) -> Result<(), StoreError> {
        let t = self.t()?;
        t.meta.insert("key_format", &KEY_FORMAT.to_be_bytes())?;
        t.db.flush()?;
        t.db.drop_tree(LEGACY_TREE)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{split_key, Fingerprint};

    #[test]
    fn format_one_rows_become_view_zero_and_a_new_state_needs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(!store.keys_need_migration().unwrap());
        let a = store
            .new_source("/a.mp4", Fingerprint::default(), 1.0, None)
            .unwrap();
        // Rows written as format 1 did (and a pending mark), with the format stamp removed.
        let t = store.t().unwrap();
        let legacy = t.db.open_tree(LEGACY_TREE).unwrap();
        for ms in [0u64, 1000, 2000] {
            let key = (u64::from(a.no) << 40) | ms;
            legacy.insert(key.to_be_bytes(), &[0u8; 8][..]).unwrap();
            t.pending.insert(key.to_be_bytes(), &[]).unwrap();
        }
        t.meta.remove("key_format").unwrap();
        assert!(store.keys_need_migration().unwrap());
        assert_eq!(store.migrate_keys().unwrap(), 3);
        assert!(!store.keys_need_migration().unwrap());
        let keys = store.source_keys(a.no).unwrap();
        let got: Vec<_> = keys.iter().map(|&k| split_key(k)).collect();
        assert_eq!(got, vec![(a.no, 0), (a.no, 1000), (a.no, 2000)]);
        assert!(keys.iter().all(|&k| crate::store::key_view(k) == 0));
        assert_eq!(store.frame_count(), 3);
        assert!(store.pending_keys().unwrap().is_empty());
    }

    #[test]
    fn an_outbox_of_old_keys_is_queued_again_under_the_new_ones_after_a_delete_of_the_node() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store
            .new_source("/a.mp4", Fingerprint::default(), 1.0, None)
            .unwrap();
        store.enable_outbox().unwrap();
        // A node of a shared Milvus before views: rows and outbox marks under format 1.
        let t = store.t().unwrap();
        let legacy = t.db.open_tree(LEGACY_TREE).unwrap();
        for ms in [0u64, 1000] {
            let key = ((u64::from(a.no) << 40) | ms).to_be_bytes();
            legacy.insert(key, &[0u8; 8][..]).unwrap();
            t.outbox.insert(key, &1u64.to_be_bytes()).unwrap();
            t.outbox_removed.insert(key, &1u64.to_be_bytes()).unwrap();
        }
        t.meta.remove("key_format").unwrap();
        assert!(!store.outbox_resync_owed().unwrap());
        assert_eq!(store.migrate_keys().unwrap(), 2);
        assert!(store.outbox_resync_owed().unwrap());
        assert_eq!(store.outbox_backlog().unwrap(), (0, 0));
        // The daemon turns the outbox on again: every frame is owed under its new key.
        assert_eq!(store.enable_outbox().unwrap(), 2);
        let marks = store
            .outbox_marks(crate::store::OutboxList::Upserts, 10)
            .unwrap();
        let keys: Vec<_> = marks.iter().map(|m| m.key).collect();
        assert_eq!(keys, [view_key(a.no, 0, 0), view_key(a.no, 1000, 0)]);
        store.outbox_resync_done().unwrap();
        assert!(!store.outbox_resync_owed().unwrap());
    }
}
