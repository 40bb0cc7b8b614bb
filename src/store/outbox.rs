//! The outbox to a shared vector engine (issue 18): while it is on, every committed frame
//! gets a mark in `outbox` and every removed frame a mark in `outbox_removed`, in the same
//! transaction as the frame itself, so what the engine still owes survives any crash. Each
//! mark holds a generation number, so a drain that sent a frame clears its mark only if the
//! frame was not removed and committed again meanwhile.

use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::{decode_key, Abort, Store, StoreError};

/// The `meta` key present while the outbox is on (its value: the frames queued when it was
/// turned on).
const OUTBOX_ON: &str = "outbox_on";
/// The `meta` key present while the engine may hold this node's rows under frame ids of
/// an older key layout ([`Store::reset_outbox_for_new_keys`]): they are deleted before the
/// next write ([`Store::outbox_resync_owed`]).
const OUTBOX_RESYNC: &str = "outbox_resync";

/// One mark of the outbox: a frame key and the generation it was marked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxMark {
    /// The frame key.
    pub key: u64,
    /// The generation of the mark.
    pub generation: u64,
}

/// Which list of the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxList {
    /// Frames to write (insert or replace).
    Upserts,
    /// Frames to delete.
    Deletes,
}

/// Marks a committed frame as owed to the engine (inside the commit's transaction).
pub(super) fn mark(
    outbox: &TransactionalTree,
    key: [u8; 8],
) -> Result<(), ConflictableTransactionError<Abort>> {
    let generation = outbox.generate_id()?;
    outbox.insert(&key, &generation.to_be_bytes())?;
    Ok(())
}

/// Moves a removed frame from the owed writes to the owed deletes (inside the removal's
/// transaction).
pub(super) fn unmark(
    outbox: &TransactionalTree,
    removed: &TransactionalTree,
    key: [u8; 8],
) -> Result<(), ConflictableTransactionError<Abort>> {
    outbox.remove(&key)?;
    let generation = removed.generate_id()?;
    removed.insert(&key, &generation.to_be_bytes())?;
    Ok(())
}

impl Store {
    /// True while commits and removals write the outbox.
    pub(super) fn outbox_on(&self) -> bool {
        self.outbox_on.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Turns the outbox on (call before ingest starts). The first time, every frame already
    /// stored is queued, so a state that ran without a shared engine sends all it holds.
    /// Returns the frames queued now (0 when the outbox was already on).
    pub fn enable_outbox(&self) -> Result<u64, StoreError> {
        let _durable = self.gate.write().expect("store gate");
        let t = self.t()?;
        let mut queued = 0u64;
        if t.meta.get(OUTBOX_ON)?.is_none() {
            let mut batch = sled::Batch::default();
            for key in t.vectors.iter().keys() {
                let key = key?;
                batch.insert(key, &t.db.generate_id()?.to_be_bytes());
                queued += 1;
                if queued.is_multiple_of(10_000) {
                    t.outbox.apply_batch(std::mem::take(&mut batch))?;
                }
            }
            t.outbox.apply_batch(batch)?;
            t.meta.insert(OUTBOX_ON, &queued.to_be_bytes())?;
            t.db.flush()?;
        }
        self.outbox_on
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(queued)
    }

    /// Turns the outbox off and empties it (the daemon runs without a shared engine); a
    /// later [`Store::enable_outbox`] queues every stored frame again.
    pub fn disable_outbox(&self) -> Result<(), StoreError> {
        let _durable = self.gate.write().expect("store gate");
        let t = self.t()?;
        self.outbox_on
            .store(false, std::sync::atomic::Ordering::Release);
        if t.meta.remove(OUTBOX_ON)?.is_some() {
            t.outbox.clear()?;
            t.outbox_removed.clear()?;
            t.db.flush()?;
        }
        Ok(())
    }

    /// At the move to a new key layout (issue 16's views): the marks name old keys and the
    /// engine's rows old frame ids, so the outbox is emptied and turned off (the next
    /// [`Store::enable_outbox`] queues every frame under its new key), and the engine owes
    /// a delete of all this node's rows first. Does nothing when the outbox was never on.
    /// Safe to repeat after a crash: the flag is set before anything is emptied.
    pub(super) fn reset_outbox_for_new_keys(&self) -> Result<(), StoreError> {
        let t = self.t()?;
        if t.meta.get(OUTBOX_ON)?.is_none() {
            return Ok(());
        }
        t.meta.insert(OUTBOX_RESYNC, &[])?;
        t.db.flush()?;
        t.outbox.clear()?;
        t.outbox_removed.clear()?;
        t.meta.remove(OUTBOX_ON)?;
        t.db.flush()?;
        Ok(())
    }

    /// Whether the engine may still hold this node's rows under old frame ids: the drain
    /// deletes every row of this node, then calls [`Store::outbox_resync_done`], before it
    /// writes anything.
    pub fn outbox_resync_owed(&self) -> Result<bool, StoreError> {
        Ok(self.t()?.meta.get(OUTBOX_RESYNC)?.is_some())
    }

    /// The engine holds no rows of this node under old frame ids any more. Durable when
    /// this returns.
    pub fn outbox_resync_done(&self) -> Result<(), StoreError> {
        let t = self.t()?;
        t.meta.remove(OUTBOX_RESYNC)?;
        t.db.flush()?;
        Ok(())
    }

    /// Up to `limit` marks of one list, in key order.
    pub fn outbox_marks(
        &self,
        list: OutboxList,
        limit: usize,
    ) -> Result<Vec<OutboxMark>, StoreError> {
        let t = self.t()?;
        let tree = match list {
            OutboxList::Upserts => &t.outbox,
            OutboxList::Deletes => &t.outbox_removed,
        };
        tree.iter()
            .take(limit)
            .map(|kv| {
                let (k, v) = kv?;
                let generation = v
                    .as_ref()
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| super::corrupt("outbox", "bad generation"))?;
                Ok(OutboxMark {
                    key: decode_key(&k)?,
                    generation,
                })
            })
            .collect()
    }

    /// Clears the marks the engine has applied, each only if it still holds the same
    /// generation (a frame removed or committed again since keeps its new mark). Durable
    /// when this returns.
    pub fn clear_outbox(&self, list: OutboxList, marks: &[OutboxMark]) -> Result<(), StoreError> {
        let t = self.t()?;
        let tree = match list {
            OutboxList::Upserts => &t.outbox,
            OutboxList::Deletes => &t.outbox_removed,
        };
        for m in marks {
            let kb = m.key.to_be_bytes();
            // Removes only when unchanged; a changed mark stays for the next drain.
            let _ = tree.compare_and_swap(
                kb,
                Some(&m.generation.to_be_bytes()[..]),
                None as Option<&[u8]>,
            )?;
        }
        t.db.flush()?;
        Ok(())
    }

    /// Marks waiting in each list: (writes, deletes). Walks both trees (O(backlog)).
    pub fn outbox_backlog(&self) -> Result<(u64, u64), StoreError> {
        let t = self.t()?;
        Ok((t.outbox.len() as u64, t.outbox_removed.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_source(dir: &std::path::Path) -> (Store, u32) {
        let store = Store::open(dir).unwrap();
        let rec = store
            .new_source("/footage/a.mp4", Default::default(), 1.0, None)
            .unwrap();
        (store, rec.no)
    }

    #[test]
    fn commits_and_removals_fill_the_outbox_and_a_changed_mark_survives_a_clear() {
        let dir = tempfile::tempdir().unwrap();
        let (store, no) = store_with_source(dir.path());
        let v = [1.0f32, 0.0];
        let k0 = crate::store::frame_key(no, 0);
        store.commit_frames(&[(k0, &v[..])]).unwrap();
        // Off: nothing owed; turning it on queues what is stored.
        assert_eq!(store.outbox_backlog().unwrap(), (0, 0));
        assert_eq!(store.enable_outbox().unwrap(), 1);
        assert_eq!(store.enable_outbox().unwrap(), 0);
        let k1 = crate::store::frame_key(no, 1000);
        store.commit_frames(&[(k1, &v[..])]).unwrap();
        let marks = store.outbox_marks(OutboxList::Upserts, 10).unwrap();
        assert_eq!(marks.iter().map(|m| m.key).collect::<Vec<_>>(), [k0, k1]);
        // k1 is removed and committed again after the drain read it: its new mark stays.
        store.remove_frames(&[k1], false).unwrap();
        assert_eq!(store.outbox_backlog().unwrap(), (1, 1));
        store.commit_frames(&[(k1, &v[..])]).unwrap();
        store.clear_outbox(OutboxList::Upserts, &marks).unwrap();
        let left = store.outbox_marks(OutboxList::Upserts, 10).unwrap();
        assert_eq!(left.iter().map(|m| m.key).collect::<Vec<_>>(), [k1]);
        let deletes = store.outbox_marks(OutboxList::Deletes, 10).unwrap();
        store.clear_outbox(OutboxList::Deletes, &deletes).unwrap();
        assert_eq!(store.outbox_backlog().unwrap(), (1, 0));
        // Forgetting the source owes the delete of every frame it had.
        store.forget_source("/footage/a.mp4").unwrap();
        assert_eq!(store.outbox_backlog().unwrap(), (0, 2));
        store.disable_outbox().unwrap();
        assert_eq!(store.outbox_backlog().unwrap(), (0, 0));
    }
}
