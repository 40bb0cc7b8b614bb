//! The store stage: sled is the source of truth for sources, frames and their vectors.
//!
//! Layout (trees):
//! - `meta`: `model` -> JSON [`ModelIdentity`], `next_source_no` -> u32 BE.
//! - `sources`: source id (UTF-8) -> JSON [`SourceRecord`].
//! - `source_nos`: source number (u32 BE) -> source id.
//! - `vectors`: frame key (u64 BE) -> the embedding as little-endian f32s. Every stored
//!   frame has exactly one row here; the usearch index can always be rebuilt from it.
//! - `pending`: frame keys committed since the last index checkpoint.
//!
//! A frame key is `source_no << 40 | offset_ms`: one key per (source, timestamp), so a
//! frame can never be stored twice, and a source's frames are one contiguous key range.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use crate::embed::ModelIdentity;

/// Bits of a frame key that hold the offset in milliseconds (about 34 years).
pub const OFFSET_BITS: u32 = 40;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;

/// Builds the key of the frame of source `no` at `offset_ms`.
pub fn frame_key(no: u32, offset_ms: u64) -> u64 {
    (u64::from(no) << OFFSET_BITS) | (offset_ms & OFFSET_MASK)
}

/// Splits a frame key into (source number, offset in ms).
pub fn split_key(key: u64) -> (u32, u64) {
    ((key >> OFFSET_BITS) as u32, key & OFFSET_MASK)
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O error, corruption, full disk).
    #[error("database error: {0}")]
    Db(#[from] sled::Error),
    /// The database holds vectors of another model.
    #[error("the index in {state_dir} was built with model {stored} (dim {stored_dim}), but the configured model is {configured} (dim {configured_dim}); set model.path back, use another daemon.state_dir, or stop the daemon and run `frameseek reindex` to re-embed every source with the new model")]
    ModelMismatch {
        /// The state folder.
        state_dir: String,
        /// Model id recorded in the store.
        stored: String,
        /// Its dimension.
        stored_dim: usize,
        /// Model id configured now.
        configured: String,
        /// Its dimension.
        configured_dim: usize,
    },
    /// A stored row cannot be read back.
    #[error("corrupt record in tree {tree}: {reason}")]
    Corrupt {
        /// Tree name.
        tree: &'static str,
        /// What failed.
        reason: String,
    },
    /// No such source.
    #[error("unknown source {0}")]
    UnknownSource(String),
    /// Too many sources for the key layout.
    #[error("source numbers exhausted")]
    Exhausted,
}

/// Ingest state of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceState {
    /// Waiting for a decode worker.
    Queued,
    /// Being decoded and embedded.
    Ingesting,
    /// Every sampled frame is stored.
    Done,
    /// Decoding failed; `error` says why. Frames decoded before the failure are kept.
    Failed,
}

impl SourceState {
    /// The lowercase name used in the protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Ingesting => "ingesting",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

/// What identifies a file's content cheaply: size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Fingerprint {
    /// Bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
}

impl Fingerprint {
    /// Reads the fingerprint of a file.
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        Ok(Self {
            size: meta.len(),
            mtime_ns,
        })
    }
}

/// One source (a file) and how far its ingest got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// The source id: the canonical path.
    pub source: String,
    /// Number used in frame keys.
    pub no: u32,
    /// Fingerprint when ingest was queued.
    pub fingerprint: Fingerprint,
    /// Ingest state.
    pub state: SourceState,
    /// Offset of the last committed frame (resume point).
    pub watermark_ms: Option<u64>,
    /// Frames stored.
    pub frames: u64,
    /// Duration from the container, when known.
    pub duration_ms: Option<u64>,
    /// Seconds between samples used for this source.
    pub interval: f64,
    /// Why ingest failed, or a warning about skipped data.
    pub error: Option<String>,
    /// Wall-clock time of offset 0, ms since the epoch, when known.
    #[serde(default)]
    pub start_wall_ms: Option<i64>,
    /// Frames decoded so far.
    #[serde(default)]
    pub decoded: u64,
    /// Candidate frames the scene test skipped.
    #[serde(default)]
    pub skipped: u64,
    /// When `error` was last set, ms since the epoch (stamped by [`Store::update_source`]).
    #[serde(default)]
    pub error_at_ms: Option<i64>,
}

/// The opened database.
#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    sources: sled::Tree,
    source_nos: sled::Tree,
    vectors: sled::Tree,
    pending: sled::Tree,
    /// Writers hold it across their transaction and the flush that makes it durable, and
    /// `source`/`sources`/`frame_count` read under it, so what they report is on disk.
    gate: std::sync::Arc<std::sync::RwLock<()>>,
}

fn corrupt(tree: &'static str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        tree,
        reason: reason.to_string(),
    }
}

fn decode_vector(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn encode_vector(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn abort<E: std::fmt::Display>(e: E) -> ConflictableTransactionError<String> {
    ConflictableTransactionError::Abort(e.to_string())
}

impl Store {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .open()?;
        Ok(Self {
            meta: db.open_tree("meta")?,
            sources: db.open_tree("sources")?,
            source_nos: db.open_tree("source_nos")?,
            vectors: db.open_tree("vectors")?,
            pending: db.open_tree("pending")?,
            gate: Default::default(),
            db,
        })
    }

    /// Records the model on first use; refuses another model afterwards.
    pub fn check_model(&self, model: &ModelIdentity, state_dir: &Path) -> Result<(), StoreError> {
        match self.meta.get("model")? {
            None => {
                let json = serde_json::to_vec(model).expect("identity serialises");
                self.meta.insert("model", json)?;
                self.db.flush()?;
                Ok(())
            }
            Some(bytes) => {
                let stored: ModelIdentity =
                    serde_json::from_slice(&bytes).map_err(|e| corrupt("meta", e))?;
                if stored.dim != model.dim || stored.digest != model.digest {
                    return Err(StoreError::ModelMismatch {
                        state_dir: state_dir.display().to_string(),
                        stored: stored.id,
                        stored_dim: stored.dim,
                        configured: model.id.clone(),
                        configured_dim: model.dim,
                    });
                }
                Ok(())
            }
        }
    }

    /// Looks a source up by id.
    pub fn source(&self, source: &str) -> Result<Option<SourceRecord>, StoreError> {
        let _durable = self.gate.read().expect("store gate");
        match self.sources.get(source.as_bytes())? {
            None => Ok(None),
            Some(b) => Ok(Some(
                serde_json::from_slice(&b).map_err(|e| corrupt("sources", e))?,
            )),
        }
    }

    /// All sources, ordered by id.
    pub fn sources(&self) -> Result<Vec<SourceRecord>, StoreError> {
        let _durable = self.gate.read().expect("store gate");
        self.sources
            .iter()
            .values()
            .map(|v| serde_json::from_slice(&v?).map_err(|e| corrupt("sources", e)))
            .collect()
    }

    /// Map from source number to source id.
    pub fn source_names(&self) -> Result<HashMap<u32, String>, StoreError> {
        let mut map = HashMap::new();
        for kv in self.source_nos.iter() {
            let (k, v) = kv?;
            let no = u32::from_be_bytes(
                k.as_ref()
                    .try_into()
                    .map_err(|_| corrupt("source_nos", "bad key"))?,
            );
            map.insert(no, String::from_utf8_lossy(&v).into_owned());
        }
        Ok(map)
    }

    /// Writes a source record (creating or replacing it).
    pub fn put_source(&self, record: &SourceRecord) -> Result<(), StoreError> {
        let _durable = self.gate.write().expect("store gate");
        let json = serde_json::to_vec(record).expect("record serialises");
        (&self.sources, &self.source_nos)
            .transaction(|(sources, nos)| {
                sources.insert(record.source.as_bytes(), json.clone())?;
                nos.insert(&record.no.to_be_bytes(), record.source.as_bytes())?;
                Ok::<_, ConflictableTransactionError<String>>(())
            })
            .map_err(tx_error)?;
        self.db.flush()?;
        Ok(())
    }

    /// Creates a new source record with a fresh number, state `queued`.
    pub fn new_source(
        &self,
        source: &str,
        fingerprint: Fingerprint,
        interval: f64,
        duration_ms: Option<u64>,
    ) -> Result<SourceRecord, StoreError> {
        let no = self.allocate_source_no()?;
        let record = SourceRecord {
            source: source.to_string(),
            no,
            fingerprint,
            state: SourceState::Queued,
            watermark_ms: None,
            frames: 0,
            duration_ms,
            interval,
            error: None,
            start_wall_ms: None,
            decoded: 0,
            skipped: 0,
            error_at_ms: None,
        };
        self.put_source(&record)?;
        Ok(record)
    }

    fn allocate_source_no(&self) -> Result<u32, StoreError> {
        let prev = self.meta.fetch_and_update("next_source_no", |old| {
            let n = old
                .map(|b| u32::from_be_bytes(b.try_into().unwrap_or([0; 4])))
                .unwrap_or(1);
            Some(n.saturating_add(1).to_be_bytes().to_vec())
        })?;
        let no = prev
            .map(|b| u32::from_be_bytes(b.as_ref().try_into().unwrap_or([0; 4])))
            .unwrap_or(1);
        if no >= (1 << (64 - OFFSET_BITS)) - 1 {
            return Err(StoreError::Exhausted);
        }
        Ok(no)
    }

    /// Updates a source record in place with `f`.
    pub fn update_source(
        &self,
        source: &str,
        f: impl Fn(&mut SourceRecord),
    ) -> Result<SourceRecord, StoreError> {
        let _durable = self.gate.write().expect("store gate");
        let out = self
            .sources
            .transaction(|tx| {
                let bytes = tx
                    .get(source.as_bytes())?
                    .ok_or_else(|| abort(format!("unknown source {source}")))?;
                let mut rec: SourceRecord = serde_json::from_slice(&bytes).map_err(abort)?;
                let error_before = rec.error.clone();
                f(&mut rec);
                if rec.error.is_some() && rec.error != error_before {
                    rec.error_at_ms = Some(crate::clock::now_ms());
                }
                tx.insert(
                    source.as_bytes(),
                    serde_json::to_vec(&rec).expect("record serialises"),
                )?;
                Ok(rec)
            })
            .map_err(tx_error)?;
        self.db.flush()?;
        Ok(out)
    }

    /// Commits a batch of frames of one or more sources atomically: each new frame's vector,
    /// its pending mark, and each source's frame count and watermark. Frames already stored
    /// are skipped. Returns the keys actually added. Durable when this returns.
    pub fn commit_frames(&self, frames: &[(u64, &[f32])]) -> Result<Vec<u64>, StoreError> {
        let _durable = self.gate.write().expect("store gate");
        let added = (
            &self.sources,
            &self.source_nos,
            &self.vectors,
            &self.pending,
        )
            .transaction(|(sources, nos, vectors, pending)| {
                let mut added = Vec::with_capacity(frames.len());
                let mut per_source: HashMap<u32, (u64, u64)> = HashMap::new();
                for (key, vector) in frames {
                    let kb = key.to_be_bytes();
                    if vectors.get(kb)?.is_some() {
                        continue;
                    }
                    vectors.insert(&kb, encode_vector(vector))?;
                    pending.insert(&kb, &[])?;
                    added.push(*key);
                    let (no, offset) = split_key(*key);
                    let e = per_source.entry(no).or_insert((0, 0));
                    e.0 += 1;
                    e.1 = e.1.max(offset);
                }
                for (no, (count, max_offset)) in per_source {
                    let name = nos
                        .get(no.to_be_bytes())?
                        .ok_or_else(|| abort(format!("no source with number {no}")))?;
                    let bytes = sources
                        .get(&name)?
                        .ok_or_else(|| abort("source record missing"))?;
                    let mut rec: SourceRecord = serde_json::from_slice(&bytes).map_err(abort)?;
                    rec.frames += count;
                    rec.watermark_ms =
                        Some(rec.watermark_ms.map_or(max_offset, |w| w.max(max_offset)));
                    sources.insert(name, serde_json::to_vec(&rec).expect("record serialises"))?;
                }
                Ok(added)
            })
            .map_err(tx_error)?;
        self.db.flush()?;
        Ok(added)
    }

    /// Removes a source's frames, vectors and record. Returns the removed frame keys.
    pub fn forget_source(&self, source: &str) -> Result<Vec<u64>, StoreError> {
        let rec = self
            .source(source)?
            .ok_or_else(|| StoreError::UnknownSource(source.to_string()))?;
        let keys = self.source_keys(rec.no)?;
        let mut batch = sled::Batch::default();
        let mut pending = sled::Batch::default();
        for k in &keys {
            batch.remove(&k.to_be_bytes());
            pending.remove(&k.to_be_bytes());
        }
        (
            &self.vectors,
            &self.pending,
            &self.sources,
            &self.source_nos,
        )
            .transaction(|(vectors, pend, sources, nos)| {
                vectors.apply_batch(&batch)?;
                pend.apply_batch(&pending)?;
                sources.remove(source.as_bytes())?;
                nos.remove(&rec.no.to_be_bytes())?;
                Ok::<_, ConflictableTransactionError<String>>(())
            })
            .map_err(tx_error)?;
        self.db.flush()?;
        Ok(keys)
    }

    /// Removes a source's frames but keeps its record (reset for re-ingest).
    pub fn clear_frames(&self, no: u32) -> Result<Vec<u64>, StoreError> {
        let keys = self.source_keys(no)?;
        let _durable = self.gate.write().expect("store gate");
        for k in &keys {
            self.vectors.remove(k.to_be_bytes())?;
            self.pending.remove(k.to_be_bytes())?;
        }
        self.db.flush()?;
        Ok(keys)
    }

    /// Frame keys of one source, in time order.
    pub fn source_keys(&self, no: u32) -> Result<Vec<u64>, StoreError> {
        let lo = frame_key(no, 0).to_be_bytes();
        let hi = frame_key(no, OFFSET_MASK).to_be_bytes();
        self.vectors
            .range(lo..=hi)
            .keys()
            .map(|k| {
                Ok(u64::from_be_bytes(
                    k?.as_ref()
                        .try_into()
                        .map_err(|_| corrupt("vectors", "bad key"))?,
                ))
            })
            .collect()
    }

    /// Every stored (key, vector) of one source, in time order.
    pub fn source_vectors(&self, no: u32) -> Result<Vec<(u64, Vec<f32>)>, StoreError> {
        let lo = frame_key(no, 0).to_be_bytes();
        let hi = frame_key(no, OFFSET_MASK).to_be_bytes();
        self.vectors
            .range(lo..=hi)
            .map(|kv| {
                let (k, v) = kv?;
                let key = u64::from_be_bytes(
                    k.as_ref()
                        .try_into()
                        .map_err(|_| corrupt("vectors", "bad key"))?,
                );
                Ok((key, decode_vector(&v)))
            })
            .collect()
    }

    /// Number of stored frames.
    pub fn frame_count(&self) -> usize {
        let _durable = self.gate.read().expect("store gate");
        self.vectors.len()
    }

    /// The stored vector of a frame.
    pub fn vector(&self, key: u64) -> Result<Option<Vec<f32>>, StoreError> {
        Ok(self
            .vectors
            .get(key.to_be_bytes())?
            .map(|b| decode_vector(&b)))
    }

    /// Every stored (key, vector), for rebuilding the index.
    pub fn all_vectors(&self) -> impl Iterator<Item = Result<(u64, Vec<f32>), StoreError>> + '_ {
        self.vectors.iter().map(|kv| {
            let (k, v) = kv?;
            let key = u64::from_be_bytes(
                k.as_ref()
                    .try_into()
                    .map_err(|_| corrupt("vectors", "bad key"))?,
            );
            Ok((key, decode_vector(&v)))
        })
    }

    /// Keys committed since the last checkpoint.
    pub fn pending_keys(&self) -> Result<Vec<u64>, StoreError> {
        self.pending
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
        let mut batch = sled::Batch::default();
        for k in keys {
            batch.remove(&k.to_be_bytes());
        }
        self.pending.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Flushes everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

fn tx_error(e: TransactionError<String>) -> StoreError {
    match e {
        TransactionError::Abort(reason) => corrupt("transaction", reason),
        TransactionError::Storage(e) => StoreError::Db(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(digest: &str) -> ModelIdentity {
        ModelIdentity {
            id: "m".into(),
            dim: 4,
            digest: digest.into(),
        }
    }

    #[test]
    fn keys_round_trip() {
        let k = frame_key(7, 123_456);
        assert_eq!(split_key(k), (7, 123_456));
        assert!(frame_key(7, 0) < frame_key(7, 1) && frame_key(7, OFFSET_MASK) < frame_key(8, 0));
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
    fn another_model_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.check_model(&identity("x"), dir.path()).unwrap();
        store.check_model(&identity("x"), dir.path()).unwrap();
        let e = store
            .check_model(&identity("y"), dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("reindex"), "{e}");
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let a = store
                .new_source("/a.mp4", Fingerprint::default(), 1.0, None)
                .unwrap();
            store
                .commit_frames(&[(frame_key(a.no, 5), &[1.0f32, 0.0][..])])
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.frame_count(), 1);
        let b = store
            .new_source("/b.mp4", Fingerprint::default(), 1.0, None)
            .unwrap();
        assert_eq!(b.no, 2, "source numbers are not reused after reopen");
    }
}
