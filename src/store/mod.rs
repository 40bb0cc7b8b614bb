//! The store stage: sled is the source of truth for sources, frames and their vectors.
//!
//! Layout (trees):
//! - `meta`: `model` -> JSON [`ModelIdentity`], `next_source_no` -> u32 BE, `frame_count`
//!   -> u64 BE (the number of rows in `vectors`, changed in the same transaction as the rows),
//!   `frame_count_version` -> u32 BE ([`FRAME_COUNT_VERSION`]; a state without it was written
//!   by an older version and is recounted at open).
//! - `sources`: source id (UTF-8) -> JSON [`SourceRecord`].
//! - `source_nos`: source number (u32 BE) -> source id.
//! - `frames` (the `vectors` handle): frame key (u64 BE) -> the embedding. Every stored view
//!   of a frame has exactly one row here; the usearch index can always be rebuilt from it.
//! - `pending`: frame keys committed since the last index checkpoint.
//!
//! A frame key is `source_no << 42 | offset_ms << 4 | view` (key format 2, issue 16): one
//! key per (source, timestamp, view), so a view can never be stored twice, a source's frames
//! are one contiguous key range, and the views of one frame are neighbours in it. States
//! written before views (format 1: `source_no << 40 | offset_ms` in the tree `vectors`) are
//! moved to format 2 once, at open ([`Store::migrate_keys`]); their frames become view 0.

use std::collections::HashMap;
use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use crate::embed::ModelIdentity;

pub mod disk;
mod frames;
mod migrate;
mod outbox;
mod record;
mod table;

pub use frames::{stored_dot, stored_values, Orphans, REMOVE_CHUNK};
pub use outbox::{OutboxList, OutboxMark};
pub use table::SourceTable;

pub use record::{Fingerprint, LiveRecord, Outage, SourceRecord, SourceState, MAX_OUTAGES};

/// Bits of a frame key that hold the offset in milliseconds (about 8.7 years).
pub const OFFSET_BITS: u32 = 38;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;
/// Bits of a frame key that hold the view number.
pub const VIEW_BITS: u32 = 4;
pub use crate::embed::MAX_VIEWS;
const _: () = assert!(
    MAX_VIEWS == 1 << VIEW_BITS,
    "view numbers must fit VIEW_BITS"
);
const VIEW_MASK: u64 = (1 << VIEW_BITS) - 1;
/// Where the source number starts in a key.
const NO_SHIFT: u32 = OFFSET_BITS + VIEW_BITS;
/// The highest source number the key layout holds.
pub const MAX_SOURCE_NO: u32 = (1 << (64 - NO_SHIFT)) - 1;
/// The key layout this version writes (`meta` key `key_format`).
pub const KEY_FORMAT: u32 = 2;

/// Builds the key of view 0 of the frame of source `no` at `offset_ms`.
pub fn frame_key(no: u32, offset_ms: u64) -> u64 {
    view_key(no, offset_ms, 0)
}

/// Builds the key of view `view` (below [`MAX_VIEWS`]) of the frame of source `no` at
/// `offset_ms`.
pub fn view_key(no: u32, offset_ms: u64, view: usize) -> u64 {
    (u64::from(no) << NO_SHIFT)
        | ((offset_ms & OFFSET_MASK) << VIEW_BITS)
        | (view as u64 & VIEW_MASK)
}

/// Splits a frame key into (source number, offset in ms).
pub fn split_key(key: u64) -> (u32, u64) {
    ((key >> NO_SHIFT) as u32, (key >> VIEW_BITS) & OFFSET_MASK)
}

/// The view number of a frame key.
pub fn key_view(key: u64) -> usize {
    (key & VIEW_MASK) as usize
}

/// The last key of source `no` at `offset_ms` (its highest view): the end of a key range.
fn last_key(no: u32, offset_ms: u64) -> u64 {
    view_key(no, offset_ms, MAX_VIEWS - 1)
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
    /// A source with this id exists already (it keeps its number).
    #[error("source {0} exists already")]
    Exists(String),
    /// The database was closed after a failure and could not be reopened.
    #[error("the database {0} is closed after a failed write and could not be reopened; restart the daemon")]
    Closed(String),
    /// Too many sources for the key layout.
    #[error("source numbers exhausted")]
    Exhausted,
    /// A state written before views cannot be moved to the key layout with views.
    #[error("the database {dir} cannot be moved to the key format with views: {reason}; keep running the previous version on it, or start over with an empty daemon.state_dir and ingest again")]
    Migration {
        /// The database folder.
        dir: String,
        /// What stops it.
        reason: String,
    },
}

/// Version of the `frame_count` bookkeeping; a state with another (or none) is recounted.
pub const FRAME_COUNT_VERSION: u32 = 1;

/// The sled handles; replaced as a whole by [`Store::reopen`].
#[derive(Debug, Clone)]
struct Trees {
    db: sled::Db,
    meta: sled::Tree,
    sources: sled::Tree,
    source_nos: sled::Tree,
    vectors: sled::Tree,
    pending: sled::Tree,
    /// Frames owed to a shared vector engine ([`Store::enable_outbox`]).
    outbox: sled::Tree,
    /// Frames removed here whose copies the shared vector engine still holds.
    outbox_removed: sled::Tree,
}

/// Sled's page cache (its default is 1 GiB): filtered searches that scan stored vectors
/// would otherwise grow the daemon by up to that much on top of the index (issue 20: ≤ 1.5 GB
/// resident at 1M frames); pages past it are read again through the OS's file cache.
const SLED_CACHE_BYTES: u64 = 64 * 1024 * 1024;

impl Trees {
    fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(SLED_CACHE_BYTES)
            .open()?;
        Ok(Self {
            meta: db.open_tree("meta")?,
            sources: db.open_tree("sources")?,
            source_nos: db.open_tree("source_nos")?,
            vectors: db.open_tree("frames")?,
            pending: db.open_tree("pending")?,
            outbox: db.open_tree("outbox")?,
            outbox_removed: db.open_tree("outbox_removed")?,
            db,
        })
    }
}

/// How the frame counter came up at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterCheck {
    /// The stored counter was current.
    Current(u64),
    /// The counter was missing or from an older version and was set to the real count.
    Repaired {
        /// The value found (`None` when missing).
        found: Option<u64>,
        /// The real count now stored.
        counted: u64,
    },
}

/// The opened database.
#[derive(Debug, Clone)]
pub struct Store {
    dir: std::path::PathBuf,
    trees: std::sync::Arc<std::sync::RwLock<Option<Trees>>>,
    /// Writers hold it across their transaction and the flush that makes it durable, and
    /// `source`/`sources`/`frame_count` read under it, so what they report is on disk.
    gate: std::sync::Arc<std::sync::RwLock<()>>,
    /// The source records in memory (`None` until first read, and after a reopen).
    table: std::sync::Arc<std::sync::RwLock<Option<SourceTable>>>,
    /// Commits store float32 vectors rather than float16 ([`Store::keep_float32_vectors`]).
    float32: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Set by [`Store::enable_outbox`]: commits and removals also write the outbox.
    outbox_on: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn corrupt(tree: &'static str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        tree,
        reason: reason.to_string(),
    }
}

fn read_u64(v: &Option<sled::IVec>) -> Option<u64> {
    v.as_ref()
        .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
        .map(u64::from_be_bytes)
}

/// Adds `delta` to the frame counter inside a transaction.
fn bump_count(
    meta: &sled::transaction::TransactionalTree,
    delta: i64,
) -> Result<(), sled::transaction::UnabortableTransactionError> {
    let now = read_u64(&meta.get("frame_count")?).unwrap_or(0);
    let next = (now as i64 + delta).max(0) as u64;
    meta.insert("frame_count", &next.to_be_bytes())?;
    Ok(())
}

/// A `vectors` row key back to the frame key.
fn decode_key(bytes: &[u8]) -> Result<u64, StoreError> {
    Ok(u64::from_be_bytes(
        bytes
            .try_into()
            .map_err(|_| corrupt("vectors", "bad key"))?,
    ))
}

/// Why a store transaction gave up; [`tx_error`] turns it into a [`StoreError`].
#[derive(Debug)]
enum Abort {
    /// The named source has no record.
    UnknownSource(String),
    /// A new source's id has a record already.
    Exists(String),
    /// A source number names a source whose record is missing.
    MissingRecord(u32),
    /// A source record does not parse.
    BadRecord(serde_json::Error),
}

fn abort(reason: Abort) -> ConflictableTransactionError<Abort> {
    ConflictableTransactionError::Abort(reason)
}

impl Store {
    /// Opens (or creates) the database in `dir` and checks its frame counter (see
    /// [`Store::counter_check`]).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Ok(Self::open_checked(dir)?.0)
    }

    /// Makes later commits store each vector in float32 (`yes`) or float16 (the default).
    /// Float16 halves the `vectors` tree and loses nothing an f16 or i8 index keeps; an f32
    /// index asks for float32, so that a rebuild from the stored vectors gives it back whole.
    /// Rows of either kind are read whatever this is.
    pub fn keep_float32_vectors(&self, yes: bool) {
        self.float32
            .store(yes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Like [`Store::open`], also saying whether the frame counter had to be repaired.
    pub fn open_checked(dir: &Path) -> Result<(Self, CounterCheck), StoreError> {
        let store = Self {
            dir: dir.to_path_buf(),
            trees: std::sync::Arc::new(std::sync::RwLock::new(Some(Trees::open(dir)?))),
            gate: Default::default(),
            table: Default::default(),
            float32: Default::default(),
            outbox_on: Default::default(),
        };
        let check = store.counter_check()?;
        if let CounterCheck::Repaired { found, counted } = check {
            if found.is_none() && counted == 0 {
                tracing::debug!(db = %dir.display(), "frame counter initialised");
                return Ok((store, check));
            }
            tracing::warn!(
                db = %dir.display(),
                found = ?found,
                counted,
                "frame counter missing, from an older version or wrong: set to the counted frames"
            );
        }
        Ok((store, check))
    }

    fn t(&self) -> Result<Trees, StoreError> {
        self.trees
            .read()
            .expect("store trees")
            .clone()
            .ok_or_else(|| StoreError::Closed(self.dir.display().to_string()))
    }

    /// Checks the stored frame counter: when it is missing or from another version, counts
    /// the `vectors` rows (O(n), once) and stores the count.
    pub fn counter_check(&self) -> Result<CounterCheck, StoreError> {
        let t = self.t()?;
        let version = t
            .meta
            .get("frame_count_version")?
            .and_then(|b| <[u8; 4]>::try_from(b.as_ref()).ok())
            .map(u32::from_be_bytes);
        let found = read_u64(&t.meta.get("frame_count")?);
        match (version, found) {
            (Some(FRAME_COUNT_VERSION), Some(n)) => Ok(CounterCheck::Current(n)),
            _ => {
                let counted = self.recount()?;
                Ok(CounterCheck::Repaired { found, counted })
            }
        }
    }

    /// Counts the `vectors` rows (O(n)) and stores the count as the frame counter. Returns it.
    pub fn recount(&self) -> Result<u64, StoreError> {
        let _durable = self.gate.write().expect("store gate");
        let t = self.t()?;
        let counted = t.vectors.len() as u64;
        t.meta.insert("frame_count", &counted.to_be_bytes())?;
        t.meta
            .insert("frame_count_version", &FRAME_COUNT_VERSION.to_be_bytes())?;
        t.db.flush()?;
        Ok(counted)
    }

    /// Closes the database and opens it again: after a write failed (a full disk), sled
    /// refuses further writes until it is reopened; reopening recovers it to the last
    /// durable state. Waits up to 10 s for other handles to let go of the files.
    pub fn reopen(&self) -> Result<(), StoreError> {
        let _durable = self.gate.write().expect("store gate");
        // The table first, and released before the trees are locked: a search holds the
        // table while it reads the trees.
        self.table.write().expect("source table").take();
        let mut slot = self.trees.write().expect("store trees");
        slot.take();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Trees::open(&self.dir) {
                Ok(t) => {
                    *slot = Some(t);
                    return Ok(());
                }
                Err(e) if std::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "database not reopened yet; retrying");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The model recorded by [`Store::check_model`], if any (nothing is written).
    pub fn stored_model(&self) -> Result<Option<ModelIdentity>, StoreError> {
        match self.t()?.meta.get("model")? {
            None => Ok(None),
            Some(bytes) => Ok(Some(
                serde_json::from_slice(&bytes).map_err(|e| corrupt("meta", e))?,
            )),
        }
    }

    /// Records the model on first use; refuses another model once a frame is stored (an
    /// empty store takes the new model's identity).
    pub fn check_model(&self, model: &ModelIdentity, state_dir: &Path) -> Result<(), StoreError> {
        let t = self.t()?;
        match t.meta.get("model")? {
            None => {
                let json = serde_json::to_vec(model).expect("identity serialises");
                t.meta.insert("model", json)?;
                t.db.flush()?;
                Ok(())
            }
            Some(bytes) => {
                let stored: ModelIdentity =
                    serde_json::from_slice(&bytes).map_err(|e| corrupt("meta", e))?;
                let same = stored.dim == model.dim && stored.digest == model.digest;
                if !same && self.frame_count() == 0 {
                    // No vector of the old model is stored: nothing to be incompatible with
                    // (a start whose model then failed to load records it too).
                    let json = serde_json::to_vec(model).expect("identity serialises");
                    t.meta.insert("model", json)?;
                    t.db.flush()?;
                    return Ok(());
                }
                if !same {
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
        self.with_sources(|t| t.get(source).cloned())
    }

    /// Every source record, in id order.
    pub fn sources(&self) -> Result<Vec<SourceRecord>, StoreError> {
        self.with_sources(|t| t.iter().cloned().collect())
    }

    /// Runs `f` on the source records in memory (read from sled on first use), without
    /// copying them: what searches and scans use. Writes wait while `f` runs, so `f` may
    /// read the trees but must not write to the store.
    pub fn with_sources<R>(&self, f: impl FnOnce(&SourceTable) -> R) -> Result<R, StoreError> {
        {
            let table = self.table.read().expect("source table");
            if let Some(t) = table.as_ref() {
                return Ok(f(t));
            }
        }
        let mut table = self.table.write().expect("source table");
        if table.is_none() {
            *table = Some(SourceTable::load(&self.t()?.sources)?);
        }
        Ok(f(table.as_ref().expect("loaded above")))
    }

    /// After a durable write: the records it changed, into the table (when loaded).
    fn table_put(&self, records: impl IntoIterator<Item = SourceRecord>) {
        if let Some(t) = self.table.write().expect("source table").as_mut() {
            for r in records {
                t.put(r);
            }
        }
    }

    /// After a durable write: a removed record, out of the table (when loaded).
    fn table_remove(&self, id: &str) {
        if let Some(t) = self.table.write().expect("source table").as_mut() {
            t.remove(id);
        }
    }

    pub fn source_names(&self) -> Result<HashMap<u32, String>, StoreError> {
        let t = self.t()?;
        let mut map = HashMap::new();
        for kv in t.source_nos.iter() {
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
        let t = self.t()?;
        let json = serde_json::to_vec(record).expect("record serialises");
        (&t.sources, &t.source_nos)
            .transaction(|(sources, nos)| {
                sources.insert(record.source.as_bytes(), json.clone())?;
                nos.insert(&record.no.to_be_bytes(), record.source.as_bytes())?;
                Ok::<_, ConflictableTransactionError<Abort>>(())
            })
            .map_err(tx_error)?;
        t.db.flush()?;
        self.table_put([record.clone()]);
        Ok(())
    }

    /// Creates a new source record with a fresh number, state `queued`; [`StoreError::Exists`]
    /// when the id has a record already (the check and the creation are one transaction).
    pub fn new_source(
        &self,
        source: &str,
        fingerprint: Fingerprint,
        interval: f64,
        duration_ms: Option<u64>,
    ) -> Result<SourceRecord, StoreError> {
        self.new_source_with(source, fingerprint, interval, duration_ms, |_| {})
    }

    /// [`Store::new_source`], with `fill` setting the record's other fields (a file's path,
    /// a retention floor, a live source's state) before it is written: the record is stored
    /// whole in one durable write, or not at all (a failed second write would leave a source
    /// that cannot resume).
    pub fn new_source_with(
        &self,
        source: &str,
        fingerprint: Fingerprint,
        interval: f64,
        duration_ms: Option<u64>,
        fill: impl FnOnce(&mut SourceRecord),
    ) -> Result<SourceRecord, StoreError> {
        let no = self.allocate_source_no()?;
        let mut record = SourceRecord::new(source, no, fingerprint, interval, duration_ms);
        fill(&mut record);
        record.no = no;
        let _durable = self.gate.write().expect("store gate");
        let t = self.t()?;
        let json = serde_json::to_vec(&record).expect("record serialises");
        (&t.sources, &t.source_nos)
            .transaction(|(sources, nos)| {
                // Check and create in one transaction: one id never gets two numbers.
                if sources.get(source.as_bytes())?.is_some() {
                    return Err(abort(Abort::Exists(source.to_string())));
                }
                sources.insert(source.as_bytes(), json.clone())?;
                nos.insert(&no.to_be_bytes(), source.as_bytes())?;
                Ok(())
            })
            .map_err(tx_error)?;
        t.db.flush()?;
        self.table_put([record.clone()]);
        Ok(record)
    }

    fn allocate_source_no(&self) -> Result<u32, StoreError> {
        let t = self.t()?;
        let prev = t.meta.fetch_and_update("next_source_no", |old| {
            let n = old
                .map(|b| u32::from_be_bytes(b.try_into().unwrap_or([0; 4])))
                .unwrap_or(1);
            Some(n.saturating_add(1).to_be_bytes().to_vec())
        })?;
        let no = prev
            .map(|b| u32::from_be_bytes(b.as_ref().try_into().unwrap_or([0; 4])))
            .unwrap_or(1);
        if no >= MAX_SOURCE_NO {
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
        let t = self.t()?;
        let out = t
            .sources
            .transaction(|tx| {
                let bytes = tx
                    .get(source.as_bytes())?
                    .ok_or_else(|| abort(Abort::UnknownSource(source.to_string())))?;
                let mut rec: SourceRecord =
                    serde_json::from_slice(&bytes).map_err(|e| abort(Abort::BadRecord(e)))?;
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
        t.db.flush()?;
        self.table_put([out.clone()]);
        Ok(out)
    }

    /// Frames removed by retention since the database was created, including frames below
    /// a source's retention floor dropped at commit.
    pub fn retention_removed(&self) -> u64 {
        self.t()
            .ok()
            .and_then(|t| read_u64(&t.meta.get("retention_removed").ok()?))
            .unwrap_or(0)
    }

    /// Number of stored frames: the counter kept with every change (O(1)); 0 when the
    /// database cannot be read.
    pub fn frame_count(&self) -> usize {
        let _durable = self.gate.read().expect("store gate");
        self.t()
            .ok()
            .and_then(|t| read_u64(&t.meta.get("frame_count").ok()?))
            .unwrap_or(0) as usize
    }

    /// Number of `vectors` rows, counted (O(n)): for checks against [`Store::frame_count`].
    pub fn count_rows(&self) -> Result<usize, StoreError> {
        let _durable = self.gate.read().expect("store gate");
        Ok(self.t()?.vectors.len())
    }

    /// A tree of this database that another stage keeps (the alerts' own records). Open it
    /// for each use: a handle kept across [`Store::reopen`] would hold the old files open.
    pub fn extra_tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.t()?.db.open_tree(name)?)
    }

    /// Flushes everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        let t = self.t()?;
        t.db.flush()?;
        Ok(())
    }
}

fn tx_error(e: TransactionError<Abort>) -> StoreError {
    match e {
        TransactionError::Abort(Abort::UnknownSource(source)) => StoreError::UnknownSource(source),
        TransactionError::Abort(Abort::Exists(source)) => StoreError::Exists(source),
        TransactionError::Abort(Abort::MissingRecord(no)) => {
            corrupt("sources", format!("source number {no} has no record"))
        }
        TransactionError::Abort(Abort::BadRecord(e)) => corrupt("sources", e),
        TransactionError::Storage(e) => StoreError::Db(e),
    }
}

impl StoreError {
    /// The operating system's error under this one, when it is an I/O failure.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            Self::Db(sled::Error::Io(e)) => Some(e),
            _ => None,
        }
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
        let v = view_key(7, 123_456, 5);
        assert_eq!((split_key(v), key_view(v)), ((7, 123_456), 5));
        assert!(view_key(7, 0, MAX_VIEWS - 1) < frame_key(7, 1));
        assert_eq!(last_key(7, 9), view_key(7, 9, 15));
        let k = frame_key(7, 123_456);
        assert_eq!(split_key(k), (7, 123_456));
        assert!(frame_key(7, 0) < frame_key(7, 1) && frame_key(7, OFFSET_MASK) < frame_key(8, 0));
    }

    #[test]
    fn updating_an_unknown_source_says_so_rather_than_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let e = store.update_source("/nope.mp4", |_| {}).unwrap_err();
        assert!(
            matches!(&e, StoreError::UnknownSource(s) if s == "/nope.mp4"),
            "{e:?}"
        );
        assert!(e.io_error().is_none());
    }

    #[test]
    fn another_model_is_refused_once_a_frame_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.check_model(&identity("x"), dir.path()).unwrap();
        store.check_model(&identity("x"), dir.path()).unwrap();
        // Nothing stored yet: the store takes the other model.
        store.check_model(&identity("y"), dir.path()).unwrap();
        assert_eq!(
            store.stored_model().unwrap().unwrap().digest,
            identity("y").digest
        );
        let a = store
            .new_source("/a.mp4", Fingerprint::default(), 1.0, None)
            .unwrap();
        store
            .commit_frames(&[(frame_key(a.no, 0), &[1.0f32, 0.0][..])])
            .unwrap();
        store.check_model(&identity("y"), dir.path()).unwrap();
        let e = store
            .check_model(&identity("x"), dir.path())
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
