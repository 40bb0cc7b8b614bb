//! The frame trees: `vectors` (every stored frame's embedding) and `pending` (frames
//! committed since the last index checkpoint), written in transactions with the source
//! records and the frame counter.

use std::collections::HashMap;

use sled::transaction::{ConflictableTransactionError, Transactional};

use super::{
    abort, bump_count, corrupt, decode_key, frame_key, key_view, last_key, read_u64, split_key,
    tx_error, Abort, SourceRecord, SourceState, Store, StoreError, OFFSET_MASK,
};

/// Frames removed per transaction by [`Store::forget_source`] and [`Store::clear_frames`]
/// (as retention does): bounds the memory and the length of one sled transaction.
pub const REMOVE_CHUNK: usize = 10_000;

/// The `meta` key set once the orphan scan has run to the end ([`Store::orphans_checked`]).
const ORPHANS_CHECKED: &str = "orphans_checked";

/// The first byte of a vector stored as float16 (`1 + 2 × dim` bytes, an odd length).
/// Rows written before float16 storage are `4 × dim` bytes of float32 (an even length) and
/// still decode, so a state is never rewritten to read it.
const F16_TAG: u8 = 0xF1;

/// How a stored vector's bytes hold its values.
enum StoredVector<'a> {
    /// Float16, little-endian (after the tag byte).
    F16(&'a [u8]),
    /// Float32, little-endian (rows written by older versions).
    F32(&'a [u8]),
}

impl<'a> StoredVector<'a> {
    fn of(bytes: &'a [u8]) -> Self {
        match bytes.split_first() {
            Some((&F16_TAG, rest)) if bytes.len() % 2 == 1 => Self::F16(rest),
            _ => Self::F32(bytes),
        }
    }
}

/// The values of a stored vector (the bytes [`Store::visit_source_vectors`] passes),
/// whichever way it is stored.
pub fn stored_values(bytes: &[u8]) -> Vec<f32> {
    match StoredVector::of(bytes) {
        StoredVector::F16(b) => b
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        StoredVector::F32(b) => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    }
}

/// The dot product of a stored vector (the bytes [`Store::visit_source_vectors`] passes) with
/// `query`; 0 for the dimensions one of them lacks.
pub fn stored_dot(bytes: &[u8], query: &[f32]) -> f32 {
    match StoredVector::of(bytes) {
        StoredVector::F16(b) => dot_f16(b, query),
        StoredVector::F32(b) => dot_f32(b, query),
    }
}

fn dot_f16(bytes: &[u8], query: &[f32]) -> f32 {
    // Widen a block at a time with the slice conversion (F16C where the CPU has it), then
    // eight partial sums, so the compiler can keep them in one vector register.
    const BLOCK: usize = 64;
    let mut halves = [half::f16::ZERO; BLOCK];
    let mut wide = [0f32; BLOCK];
    let mut acc = [0f32; 8];
    let mut total = 0f32;
    for (b, q) in bytes.chunks(2 * BLOCK).zip(query.chunks(BLOCK)) {
        let n = (b.len() / 2).min(q.len());
        for (h, c) in halves[..n].iter_mut().zip(b.chunks_exact(2)) {
            *h = half::f16::from_le_bytes([c[0], c[1]]);
        }
        half::slice::HalfFloatSliceExt::convert_to_f32_slice(&halves[..n], &mut wide[..n]);
        let lanes = wide[..n].chunks_exact(8).zip(q[..n].chunks_exact(8));
        let whole = lanes.len();
        for (w, q) in lanes {
            for i in 0..8 {
                acc[i] += w[i] * q[i];
            }
        }
        total += wide[whole * 8..n]
            .iter()
            .zip(&q[whole * 8..n])
            .map(|(w, q)| w * q)
            .sum::<f32>();
    }
    acc.iter().sum::<f32>() + total
}

fn dot_f32(bytes: &[u8], query: &[f32]) -> f32 {
    // Eight partial sums, so the compiler can keep them in one vector register.
    let mut acc = [0f32; 8];
    let lanes = bytes.chunks_exact(32).zip(query.chunks_exact(8));
    let whole = lanes.len();
    for (b, q) in lanes {
        for i in 0..8 {
            let x = f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
            acc[i] += x * q[i];
        }
    }
    let tail: f32 = bytes[whole * 32..]
        .chunks_exact(4)
        .zip(&query[(whole * 8).min(query.len())..])
        .map(|(b, q)| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * q)
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// Stores `v` as float16 (a tag byte, then the values), or as float32 (the values alone,
/// as every version has read them) with `float32` ([`Store::keep_float32_vectors`]).
fn encode_vector(v: &[f32], float32: bool) -> Vec<u8> {
    if float32 {
        return v.iter().flat_map(|x| x.to_le_bytes()).collect();
    }
    let mut out = Vec::with_capacity(1 + 2 * v.len());
    out.push(F16_TAG);
    out.extend(v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()));
    out
}

/// Frames and source numbers no source record owns: left by two records created for one
/// id (the second took the id's record, the first number's frames were never seen again by
/// search, forget or retention), or by a crash between steps of an older version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Orphans {
    /// Source numbers whose entry in `source_nos` names no record with that number.
    pub numbers: Vec<u32>,
    /// Stored frames of source numbers that no record owns.
    pub frames: Vec<u64>,
}

impl Store {
    /// Finds the [`Orphans`]: numbers in `source_nos` whose record has another number (or
    /// none), and frames of numbers no record owns. Costs one read per source and one key
    /// lookup per distinct source number among the frames.
    pub fn orphans(&self) -> Result<Orphans, StoreError> {
        let t = self.t()?;
        let mut owned = std::collections::HashSet::new();
        for r in self.sources()? {
            owned.insert(r.no);
        }
        let mut out = Orphans::default();
        for entry in t.source_nos.iter() {
            let (k, _) = entry?;
            let no = u32::from_be_bytes(
                k.as_ref()
                    .try_into()
                    .map_err(|_| corrupt("source_nos", "bad key"))?,
            );
            if !owned.contains(&no) {
                out.numbers.push(no);
            }
        }
        let mut no = 0u32;
        loop {
            let lo = frame_key(no, 0).to_be_bytes();
            let Some(entry) = t.vectors.range(lo..).next() else {
                break;
            };
            let (k, _) = entry?;
            let found = split_key(decode_key(&k)?).0;
            if !owned.contains(&found) {
                out.frames.extend(self.source_keys(found)?);
            }
            match found.checked_add(1) {
                Some(next) => no = next,
                None => break,
            }
        }
        Ok(out)
    }

    /// `v` as a commit stores it and a read gives it back: rounded to float16 unless
    /// float32 is kept ([`Store::keep_float32_vectors`]). What scores a batch as it commits
    /// (standing alerts) scores these values, so that scoring the stored frames again after
    /// a crash gives the same answers.
    pub fn as_stored(&self, v: &[f32]) -> Vec<f32> {
        if self.float32.load(std::sync::atomic::Ordering::Relaxed) {
            return v.to_vec();
        }
        v.iter().map(|x| half::f16::from_f32(*x).to_f32()).collect()
    }

    /// Whether [`Store::orphans`] was run to the end on this database and its findings
    /// removed ([`Store::mark_orphans_checked`]): this version makes no orphans, so the scan
    /// (a seek per source, which at 200,000 sources reads most of the vectors tree) runs once.
    pub fn orphans_checked(&self) -> Result<bool, StoreError> {
        Ok(self.t()?.meta.get(ORPHANS_CHECKED)?.is_some())
    }
    /// Records that the orphans were found and removed (see [`Store::orphans_checked`]).
    pub fn mark_orphans_checked(&self) -> Result<(), StoreError> {
        let _durable = self.gate.write().expect("store gate");
        let t = self.t()?;
        t.meta.insert(ORPHANS_CHECKED, &[1u8])?;
        t.db.flush()?;
        Ok(())
    }
    /// Removes source-number entries that no record owns (after their frames are gone).
    pub fn drop_source_numbers(&self, numbers: &[u32]) -> Result<(), StoreError> {
        let _durable = self.gate.write().expect("store gate");
        let t = self.t()?;
        for no in numbers {
            t.source_nos.remove(no.to_be_bytes())?;
        }
        t.db.flush()?;
        Ok(())
    }

    /// Commits a batch of frames of one or more sources atomically: each new frame's vector,
    /// its pending mark, the frame counter, and each source's frame count and watermark.
    /// Frames already stored are skipped. Returns the keys actually added. Durable when this
    /// returns.
    pub fn commit_frames(&self, frames: &[(u64, &[f32])]) -> Result<Vec<u64>, StoreError> {
        let _durable = self.gate.write().expect("store gate");
        let t = self.t()?;
        let float32 = self.float32.load(std::sync::atomic::Ordering::Relaxed);
        let outbox_on = self.outbox_on();
        let added = (
            &t.sources,
            &t.source_nos,
            &t.vectors,
            &t.pending,
            &t.meta,
            &t.outbox,
        )
            .transaction(|(sources, nos, vectors, pending, meta, outbox)| {
                let mut added = Vec::with_capacity(frames.len());
                let mut below_floor = 0u64;
                // Per source: its id, record, frames added, highest offset whose frame is
                // complete, whether anything was added; `None` for a source forgotten while
                // its frames were in flight (they are dropped).
                #[allow(clippy::type_complexity)]
                let mut per_source: HashMap<
                    u32,
                    Option<(sled::IVec, SourceRecord, u64, Option<u64>, bool)>,
                > = HashMap::new();
                for (key, vector) in frames {
                    let (no, offset) = split_key(*key);
                    let entry = match per_source.entry(no) {
                        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::hash_map::Entry::Vacant(e) => {
                            let record = match nos.get(no.to_be_bytes())? {
                                None => None,
                                Some(name) => {
                                    let bytes = sources
                                        .get(&name)?
                                        .ok_or_else(|| abort(Abort::MissingRecord(no)))?;
                                    let rec: SourceRecord = serde_json::from_slice(&bytes)
                                        .map_err(|e| abort(Abort::BadRecord(e)))?;
                                    Some((name, rec, 0, None, false))
                                }
                            };
                            e.insert(record)
                        }
                    };
                    let Some(entry) = entry else {
                        continue;
                    };
                    if entry.1.retain_from_ms.is_some_and(|floor| offset < floor) {
                        below_floor += u64::from(key_view(*key) == 0);
                        continue;
                    }
                    let kb = key.to_be_bytes();
                    if vectors.get(kb)?.is_some() {
                        continue;
                    }
                    vectors.insert(&kb, encode_vector(vector, float32))?;
                    pending.insert(&kb, &[])?;
                    if outbox_on {
                        super::outbox::mark(outbox, kb)?;
                    }
                    added.push(*key);
                    // A source counts frames (times), not views: view 0 is every frame's.
                    entry.2 += u64::from(key_view(*key) == 0);
                    // The watermark (where a restart resumes) moves past a frame only with
                    // its last view: a frame whose views were split by a crash is read again,
                    // and its stored views are skipped.
                    let views = entry.1.views.as_ref().map_or(1, |v| v.len().max(1));
                    if key_view(*key) + 1 >= views {
                        entry.3 = Some(entry.3.map_or(offset, |m: u64| m.max(offset)));
                    }
                    entry.4 = true;
                }
                let mut changed = Vec::new();
                for (name, mut rec, count, max_offset, any) in per_source.into_values().flatten() {
                    if !any {
                        continue;
                    }
                    rec.frames += count;
                    if let Some(max_offset) = max_offset {
                        rec.watermark_ms =
                            Some(rec.watermark_ms.map_or(max_offset, |w| w.max(max_offset)));
                    }
                    sources.insert(name, serde_json::to_vec(&rec).expect("record serialises"))?;
                    changed.push(rec);
                }
                bump_count(meta, added.len() as i64)?;
                if below_floor > 0 {
                    // Kept out by retention: counted as removed by it.
                    let before = read_u64(&meta.get("retention_removed")?).unwrap_or(0);
                    meta.insert("retention_removed", &(before + below_floor).to_be_bytes())?;
                }
                Ok((added, changed))
            })
            .map_err(tx_error)?;
        t.db.flush()?;
        let (added, changed) = added;
        self.table_put(changed);
        Ok(added)
    }
    /// Removes a source's frames, vectors and record, and lowers the frame counter: the
    /// record is first marked failed ("being forgotten"), the frames go in transactions of
    /// [`REMOVE_CHUNK`] (one huge transaction would hold every key of a large source in
    /// memory at once), then the record with any frame left in a last one. The caller
    /// (the catalog) sets the manifest's `removing` flag before and checkpoints after, so a
    /// crash in between is reconciled at the next start, and the record left behind says to
    /// forget it again. Returns the removed frame keys.
    pub fn forget_source(&self, source: &str) -> Result<Vec<u64>, StoreError> {
        let rec = self
            .source(source)?
            .ok_or_else(|| StoreError::UnknownSource(source.to_string()))?;
        self.update_source(source, |r| {
            r.state = SourceState::Failed;
            r.error =
                Some("being forgotten; if the daemon stopped meanwhile, forget it again".into());
        })?;
        let mut removed = self.remove_chunked(&self.source_keys(rec.no)?, REMOVE_CHUNK)?;
        let keys = self.source_keys(rec.no)?;
        let _durable = self.gate.write().expect("store gate");
        let t = self.t()?;
        let mut batch = sled::Batch::default();
        for k in &keys {
            batch.remove(&k.to_be_bytes());
        }
        let outbox_on = self.outbox_on();
        (
            &t.vectors,
            &t.pending,
            &t.sources,
            &t.source_nos,
            &t.meta,
            &t.outbox,
            &t.outbox_removed,
        )
            .transaction(|(vectors, pend, sources, nos, meta, outbox, removed)| {
                vectors.apply_batch(&batch)?;
                pend.apply_batch(&batch)?;
                if outbox_on {
                    for k in &keys {
                        super::outbox::unmark(outbox, removed, k.to_be_bytes())?;
                    }
                }
                sources.remove(source.as_bytes())?;
                nos.remove(&rec.no.to_be_bytes())?;
                bump_count(meta, -(keys.len() as i64))?;
                Ok::<_, ConflictableTransactionError<Abort>>(())
            })
            .map_err(tx_error)?;
        t.db.flush()?;
        self.table_remove(source);
        removed.extend(keys);
        Ok(removed)
    }
    /// Removes a source's frames but keeps its record (reset for re-ingest), in
    /// transactions of [`REMOVE_CHUNK`] frames (see [`Store::forget_source`] for crash
    /// safety).
    pub fn clear_frames(&self, no: u32) -> Result<Vec<u64>, StoreError> {
        self.remove_chunked(&self.source_keys(no)?, REMOVE_CHUNK)
    }
    /// [`Store::remove_frames`] in transactions of `chunk` frames each.
    fn remove_chunked(&self, keys: &[u64], chunk: usize) -> Result<Vec<u64>, StoreError> {
        let mut removed = Vec::with_capacity(keys.len());
        for part in keys.chunks(chunk.max(1)) {
            removed.extend(self.remove_frames(part, false)?);
        }
        Ok(removed)
    }
    /// Removes the given frames (vectors, pending marks), lowers each source's frame count
    /// and the frame counter, in one transaction. Keys not stored are ignored. Returns the
    /// keys actually removed. `retention` adds them to [`Store::retention_removed`].
    pub fn remove_frames(&self, keys: &[u64], retention: bool) -> Result<Vec<u64>, StoreError> {
        let _durable = self.gate.write().expect("store gate");
        let t = self.t()?;
        let outbox_on = self.outbox_on();
        let removed = (
            &t.vectors,
            &t.pending,
            &t.sources,
            &t.source_nos,
            &t.meta,
            &t.outbox,
            &t.outbox_removed,
        )
            .transaction(|(vectors, pend, sources, nos, meta, outbox, gone)| {
                let mut removed = Vec::with_capacity(keys.len());
                let mut per_source: HashMap<u32, u64> = HashMap::new();
                for k in keys {
                    let kb = k.to_be_bytes();
                    if vectors.remove(&kb)?.is_some() {
                        pend.remove(&kb)?;
                        if outbox_on {
                            super::outbox::unmark(outbox, gone, kb)?;
                        }
                        removed.push(*k);
                        *per_source.entry(split_key(*k).0).or_default() +=
                            u64::from(key_view(*k) == 0);
                    }
                }
                let mut changed = Vec::new();
                for (no, n) in per_source {
                    let Some(name) = nos.get(no.to_be_bytes())? else {
                        continue;
                    };
                    if let Some(bytes) = sources.get(&name)? {
                        let mut rec: SourceRecord = serde_json::from_slice(&bytes)
                            .map_err(|e| abort(Abort::BadRecord(e)))?;
                        // An orphaned number may name an id whose record has another number:
                        // those frames were never counted in it.
                        if rec.no != no {
                            continue;
                        }
                        rec.frames = rec.frames.saturating_sub(n);
                        sources
                            .insert(name, serde_json::to_vec(&rec).expect("record serialises"))?;
                        changed.push(rec);
                    }
                }
                bump_count(meta, -(removed.len() as i64))?;
                if retention {
                    let before = read_u64(&meta.get("retention_removed")?).unwrap_or(0);
                    // Frames (times), as the sources count them, not views.
                    let frames = removed.iter().filter(|&&k| key_view(k) == 0).count();
                    let after = before + frames as u64;
                    meta.insert("retention_removed", &after.to_be_bytes())?;
                }
                Ok((removed, changed))
            })
            .map_err(tx_error)?;
        t.db.flush()?;
        let (removed, changed) = removed;
        self.table_put(changed);
        Ok(removed)
    }
    /// Frame keys of one source, in time order.
    pub fn source_keys(&self, no: u32) -> Result<Vec<u64>, StoreError> {
        let t = self.t()?;
        let lo = frame_key(no, 0).to_be_bytes();
        let hi = last_key(no, OFFSET_MASK).to_be_bytes();
        t.vectors
            .range(lo..=hi)
            .keys()
            .map(|k| decode_key(&k?))
            .collect()
    }
    /// Calls `visit` with each stored frame of source `no` whose offset is in
    /// `lo_ms..=hi_ms` (one key range), in time order: its key and its vector as stored
    /// (little-endian f32, see [`stored_dot`]), without copying the vector.
    pub fn visit_source_vectors(
        &self,
        no: u32,
        lo_ms: u64,
        hi_ms: u64,
        visit: impl FnMut(u64, &[u8]),
    ) -> Result<(), StoreError> {
        self.visit_ranges_vectors(&[(no, lo_ms, hi_ms)], visit)
    }
    /// [`Store::visit_source_vectors`] over several `(source number, lowest offset, highest
    /// offset)` ranges, in the order given (key order reads neighbouring pages in turn).
    pub fn visit_ranges_vectors(
        &self,
        ranges: &[(u32, u64, u64)],
        mut visit: impl FnMut(u64, &[u8]),
    ) -> Result<(), StoreError> {
        let t = self.t()?;
        for &(no, lo_ms, hi_ms) in ranges {
            if lo_ms > hi_ms {
                continue;
            }
            let lo = frame_key(no, lo_ms.min(OFFSET_MASK)).to_be_bytes();
            let hi = last_key(no, hi_ms.min(OFFSET_MASK)).to_be_bytes();
            for kv in t.vectors.range(lo..=hi) {
                let (k, v) = kv?;
                visit(decode_key(&k)?, &v);
            }
        }
        Ok(())
    }
    /// The stored vector of a frame.
    pub fn vector(&self, key: u64) -> Result<Option<Vec<f32>>, StoreError> {
        let t = self.t()?;
        Ok(t.vectors.get(key.to_be_bytes())?.map(|b| stored_values(&b)))
    }
    /// The stored (key, vector)s with keys `from` or above, in key order (a rebuild that
    /// goes on where it stopped).
    pub fn vectors_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<(u64, Vec<f32>), StoreError>> {
        let (iter, err) = match self.t() {
            Ok(t) => (Some(t.vectors.range(from.to_be_bytes()..)), None),
            Err(e) => (None, Some(Err(e))),
        };
        err.into_iter().chain(iter.into_iter().flatten().map(|kv| {
            let (k, v) = kv?;
            Ok((decode_key(&k)?, stored_values(&v)))
        }))
    }
    /// Keys committed since the last checkpoint.
    pub fn pending_keys(&self) -> Result<Vec<u64>, StoreError> {
        let t = self.t()?;
        t.pending
            .iter()
            .keys()
            .map(|k| {
                Ok(u64::from_be_bytes(
                    k?.as_ref()
                        .try_into()
                        .map_err(|_| corrupt("pending", "bad key"))?,
                ))
            })
            .collect()
    }
    /// Drops pending marks once the index holding them is safely on disk.
    pub fn clear_pending(&self, keys: &[u64]) -> Result<(), StoreError> {
        let t = self.t()?;
        let mut batch = sled::Batch::default();
        for k in keys {
            batch.remove(&k.to_be_bytes());
        }
        t.pending.apply_batch(batch)?;
        t.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CounterCheck, Fingerprint};
    use super::*;

    #[test]
    fn stored_dot_matches_the_plain_dot_product() {
        for dim in [1, 7, 8, 16, 19, 64, 65, 130, 512] {
            let a: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let magnitude: f32 = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum();
            let old = stored_dot(&encode_vector(&a, true), &b);
            assert!(
                (old - plain).abs() <= 1e-4 * magnitude.max(1.0),
                "f32 {dim}: {old} vs {plain}"
            );
            // float16 keeps 11 significant bits: a relative error of at most 2^-11 per value.
            let new = stored_dot(&encode_vector(&a, false), &b);
            assert!(
                (new - plain).abs() <= 1e-3 * magnitude.max(1.0),
                "f16 {dim}: {new} vs {plain}"
            );
        }
        // A shorter query scores over the dimensions both have.
        assert_eq!(
            stored_dot(&encode_vector(&[1.0, 2.0, 3.0], false), &[1.0, 1.0]),
            3.0
        );
        assert_eq!(
            stored_dot(&encode_vector(&[1.0, 2.0, 3.0], true), &[1.0, 1.0]),
            3.0
        );
    }

    #[test]
    fn vectors_are_stored_in_half_the_bytes_and_old_float32_rows_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rec = store
            .new_source("/a.mp4", Fingerprint::default(), 1.0, None)
            .unwrap();
        let v: Vec<f32> = (0..512).map(|i| ((i as f32) * 0.01).sin() * 0.09).collect();
        let (new_key, old_key) = (frame_key(rec.no, 0), frame_key(rec.no, 1000));
        store.commit_frames(&[(new_key, &v[..])]).unwrap();
        let t = store.t().unwrap();
        assert_eq!(
            t.vectors.get(new_key.to_be_bytes()).unwrap().unwrap().len(),
            1 + 2 * 512
        );
        // A row as versions before float16 storage wrote it.
        t.vectors
            .insert(old_key.to_be_bytes(), encode_vector(&v, true))
            .unwrap();
        // With float32 kept (an f32 index), a commit stores the values whole.
        store.keep_float32_vectors(true);
        let whole_key = frame_key(rec.no, 2000);
        store.commit_frames(&[(whole_key, &v[..])]).unwrap();
        assert_eq!(store.vector(whole_key).unwrap().unwrap(), v);
        assert_eq!(store.vector(old_key).unwrap().unwrap(), v);
        let new = store.vector(new_key).unwrap().unwrap();
        for (a, b) in new.iter().zip(&v) {
            assert!((a - b).abs() <= b.abs() / 1024.0 + 1e-7, "{a} vs {b}");
        }
        let mut seen = Vec::new();
        store
            .visit_source_vectors(rec.no, 0, u64::MAX, |key, bytes| {
                seen.push((key, stored_dot(bytes, &v)))
            })
            .unwrap();
        assert_eq!(seen.len(), 3);
        let exact: f32 = v.iter().map(|x| x * x).sum();
        for (key, score) in seen {
            assert!(
                (score - exact).abs() < 1e-3 * exact,
                "{key}: {score} vs {exact}"
            );
        }
    }

    #[test]
    fn commit_is_idempotent_and_updates_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rec = store
            .new_source("/a.mp4", Fingerprint::default(), 1.0, Some(3000))
            .unwrap();
        let v = [0.5f32, 0.5, 0.5, 0.5];
        let frames: Vec<(u64, &[f32])> = (0..3)
            .map(|i| (frame_key(rec.no, i * 1000), &v[..]))
            .collect();
        assert_eq!(store.commit_frames(&frames).unwrap().len(), 3);
        assert_eq!(store.commit_frames(&frames[1..]).unwrap().len(), 0);
        let rec = store.source("/a.mp4").unwrap().unwrap();
        assert_eq!((rec.frames, rec.watermark_ms), (3, Some(2000)));
        assert_eq!(store.frame_count(), 3);
        assert_eq!(store.pending_keys().unwrap().len(), 3);
        assert_eq!(store.vector(frames[0].0).unwrap().unwrap(), v.to_vec());
    }

    #[test]
    fn forget_removes_only_that_source() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store
            .new_source("/a.mp4", Fingerprint::default(), 1.0, None)
            .unwrap();
        let b = store
            .new_source("/b.mp4", Fingerprint::default(), 1.0, None)
            .unwrap();
        assert_ne!(a.no, b.no);
        let v = [1.0f32, 0.0, 0.0, 0.0];
        store
            .commit_frames(&[(frame_key(a.no, 0), &v[..]), (frame_key(b.no, 0), &v[..])])
            .unwrap();
        let removed = store.forget_source("/a.mp4").unwrap();
        assert_eq!(removed, vec![frame_key(a.no, 0)]);
        assert!(store.source("/a.mp4").unwrap().is_none());
        assert_eq!(store.frame_count(), 1);
        assert!(matches!(
            store.forget_source("/a.mp4"),
            Err(StoreError::UnknownSource(_))
        ));
    }

    #[test]
    fn forget_and_clear_go_in_chunks_and_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store
            .new_source("/a.mp4", Fingerprint::default(), 1.0, None)
            .unwrap();
        let v = [1.0f32, 0.0];
        let frames: Vec<(u64, &[f32])> = (0..25).map(|i| (frame_key(a.no, i), &v[..])).collect();
        store.commit_frames(&frames).unwrap();
        let keys: Vec<u64> = frames.iter().map(|f| f.0).collect();
        assert_eq!(store.remove_chunked(&keys[..12], 5).unwrap().len(), 12);
        assert_eq!(store.frame_count(), 13);
        assert_eq!(store.source("/a.mp4").unwrap().unwrap().frames, 13);
        assert_eq!(store.clear_frames(a.no).unwrap().len(), 13);
        assert_eq!(store.frame_count(), 0);
        store.commit_frames(&frames).unwrap();
        assert_eq!(store.forget_source("/a.mp4").unwrap().len(), 25);
        assert_eq!(store.frame_count(), 0);
        assert_eq!(store.count_rows().unwrap(), 0);
        assert!(store.source("/a.mp4").unwrap().is_none());
    }

    #[test]
    fn the_frame_counter_follows_every_change_and_is_repaired_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let (store, check) = Store::open_checked(dir.path()).unwrap();
        assert_eq!(
            check,
            CounterCheck::Repaired {
                found: None,
                counted: 0
            }
        );
        let a = store
            .new_source("/a.mp4", Fingerprint::default(), 1.0, None)
            .unwrap();
        let b = store
            .new_source("/b.mp4", Fingerprint::default(), 1.0, None)
            .unwrap();
        let v = [1.0f32, 0.0];
        let frames: Vec<(u64, &[f32])> = (0..10)
            .flat_map(|i| {
                [
                    (frame_key(a.no, i * 1000), &v[..]),
                    (frame_key(b.no, i * 1000), &v[..]),
                ]
            })
            .collect();
        store.commit_frames(&frames).unwrap();
        store.commit_frames(&frames[..4]).unwrap();
        let agree = |n: usize| {
            assert_eq!(store.frame_count(), n);
            assert_eq!(store.count_rows().unwrap(), n);
        };
        agree(20);
        let removed = store
            .remove_frames(
                &[
                    frame_key(a.no, 0),
                    frame_key(a.no, 1000),
                    frame_key(a.no, 99),
                ],
                true,
            )
            .unwrap();
        assert_eq!(removed.len(), 2);
        assert_eq!(store.source("/a.mp4").unwrap().unwrap().frames, 8);
        assert_eq!(store.retention_removed(), 2);
        agree(18);
        store.clear_frames(b.no).unwrap();
        agree(8);
        store.forget_source("/a.mp4").unwrap();
        agree(0);
        // Frames of a forgotten source still in flight are dropped, not stored.
        assert!(store.commit_frames(&frames[..1]).unwrap().is_empty()); // /a.mp4 is gone
        store.commit_frames(&frames[1..2]).unwrap();
        agree(1);
        drop(store);

        // Current counter: taken as is.
        let (store, check) = Store::open_checked(dir.path()).unwrap();
        assert_eq!(check, CounterCheck::Current(1));
        // State of an older version: no counter (or another version) -> counted again.
        let t = store.t().unwrap();
        t.meta.remove("frame_count_version").unwrap();
        t.meta.insert("frame_count", &77u64.to_be_bytes()).unwrap();
        t.db.flush().unwrap();
        drop((t, store));
        let (store, check) = Store::open_checked(dir.path()).unwrap();
        assert_eq!(
            check,
            CounterCheck::Repaired {
                found: Some(77),
                counted: 1
            }
        );
        assert_eq!(store.frame_count(), 1);
        let t = store.t().unwrap();
        t.meta.remove("frame_count").unwrap();
        t.db.flush().unwrap();
        drop((t, store));
        let (store, check) = Store::open_checked(dir.path()).unwrap();
        assert_eq!(
            check,
            CounterCheck::Repaired {
                found: None,
                counted: 1
            }
        );
        // Reopening in place keeps the data and the counter.
        store.reopen().unwrap();
        assert_eq!(store.frame_count(), 1);
        assert_eq!(store.source("/b.mp4").unwrap().unwrap().frames, 1);
    }

    #[test]
    fn one_id_never_gets_a_second_number() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let first = store
            .new_source("/a.mp4", Fingerprint::default(), 1.0, None)
            .unwrap();
        let e = store
            .new_source("/a.mp4", Fingerprint::default(), 1.0, None)
            .unwrap_err();
        assert!(
            matches!(&e, StoreError::Exists(s) if s == "/a.mp4"),
            "{e:?}"
        );
        assert_eq!(store.source("/a.mp4").unwrap().unwrap().no, first.no);
        assert_eq!(store.source_names().unwrap().len(), 1);
        assert_eq!(store.orphans().unwrap(), Default::default());
    }
}
