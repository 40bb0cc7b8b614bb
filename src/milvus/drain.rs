//! The outbox drain: one thread sends what the store's outbox owes Milvus, deletes first
//! (a frame removed and committed again is then deleted before it is written back), then
//! writes, each batch's marks cleared only after Milvus accepted it. While Milvus is
//! unreachable the thread retries with a growing pause (up to [`MAX_PAUSE`]); ingest never
//! waits for it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{FrameRow, Milvus, MilvusError};
use crate::embed::Region;
use crate::store::{key_view, split_key, OutboxList, Store, StoreError};

/// Frames written per insert.
pub const WRITE_BATCH: usize = 512;
/// Frames deleted per delete.
pub const DELETE_BATCH: usize = 1024;
/// Longest pause between two tries while Milvus is unreachable.
pub const MAX_PAUSE: Duration = Duration::from_secs(10);
/// Pause when the outbox is empty.
const IDLE_PAUSE: Duration = Duration::from_millis(250);

/// Why one round of the drain stopped.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// From Milvus.
    #[error(transparent)]
    Milvus(#[from] MilvusError),
    /// From the local store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `status` shows of the drain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainStatus {
    /// Whether the last call to Milvus succeeded.
    pub reachable: bool,
    /// Frames written since start.
    pub written: u64,
    /// Frames deleted since start.
    pub deleted: u64,
    /// The last error, while it lasts.
    pub last_error: Option<String>,
}

/// The running drain thread.
#[derive(Debug)]
pub struct Drain {
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<DrainStatus>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drain {
    /// Starts draining `store`'s outbox into `milvus`.
    pub fn start(milvus: Arc<Milvus>, store: Store) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(DrainStatus::default()));
        let (s, st) = (stop.clone(), status.clone());
        let thread = std::thread::Builder::new()
            .name("milvus-drain".into())
            .spawn(move || run(&milvus, &store, &s, &st))?;
        Ok(Self {
            stop,
            status,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The drain's state.
    pub fn status(&self) -> DrainStatus {
        self.status.lock().expect("drain status").clone()
    }

    /// Stops the thread after its current batch (what is left stays in the outbox).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.lock().expect("drain thread").take() {
            let _ = t.join();
        }
    }
}

fn run(milvus: &Milvus, store: &Store, stop: &AtomicBool, status: &Mutex<DrainStatus>) {
    let mut pause = Duration::from_millis(500);
    while !stop.load(Ordering::Relaxed) {
        match drain_round(milvus, store, status) {
            Ok(0) => {
                pause = Duration::from_millis(500);
                sleep_unless(stop, IDLE_PAUSE);
            }
            Ok(_) => pause = Duration::from_millis(500),
            Err(e) => {
                let text = e.to_string();
                let mut st = status.lock().expect("drain status");
                if st.reachable || st.last_error.is_none() {
                    tracing::warn!(error = %text, "Milvus write failed; frames wait in the outbox and are retried");
                }
                st.reachable = false;
                st.last_error = Some(text);
                drop(st);
                sleep_unless(stop, pause);
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
}

fn sleep_unless(stop: &AtomicBool, total: Duration) {
    let step = Duration::from_millis(50);
    let mut slept = Duration::ZERO;
    while slept < total && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(step);
        slept += step;
    }
}

/// One batch of deletes, else one batch of writes. Returns the frames sent.
fn drain_round(
    milvus: &Milvus,
    store: &Store,
    status: &Mutex<DrainStatus>,
) -> Result<usize, DrainError> {
    let deletes = store.outbox_marks(OutboxList::Deletes, DELETE_BATCH)?;
    let writes = if deletes.is_empty() {
        store.outbox_marks(OutboxList::Upserts, WRITE_BATCH)?
    } else {
        Vec::new()
    };
    // Also when idle: creates the collection at start and tells `status` it is reachable.
    milvus.ensure_collection()?;
    // Rows under the frame ids of an older key layout go before any write (exactly once
    // across the move: every frame is queued again under its new key).
    if store.outbox_resync_owed()? {
        milvus.delete_node(milvus.node())?;
        store.outbox_resync_done()?;
        tracing::info!(
            node = milvus.node(),
            "deleted this node's rows written under the frame keys before views; the outbox writes them again"
        );
    }
    if deletes.is_empty() && writes.is_empty() {
        return Ok(0);
    }
    if !deletes.is_empty() {
        let keys: Vec<u64> = deletes.iter().map(|m| m.key).collect();
        milvus.delete_frames(&keys)?;
        store.clear_outbox(OutboxList::Deletes, &deletes)?;
        note_success(status, 0, keys.len() as u64);
        return Ok(keys.len());
    }
    // The source fields under the table's lock; the vectors read after it.
    #[allow(clippy::type_complexity)]
    let sources: Vec<Option<(String, Option<i64>, u64, Option<Region>)>> =
        store.with_sources(|table| {
            writes
                .iter()
                .map(|m| {
                    table.by_no(split_key(m.key).0).map(|rec| {
                        let interval_ms = (rec.interval * 1000.0).round().max(1.0) as u64;
                        // The key's view's place in the frame (none before views).
                        let region = rec
                            .views
                            .as_ref()
                            .and_then(|v| v.get(key_view(m.key)))
                            .copied();
                        (rec.source.clone(), rec.start_wall_ms, interval_ms, region)
                    })
                })
                .collect()
        })?;
    let mut rows = Vec::with_capacity(writes.len());
    for (m, source) in writes.iter().zip(sources) {
        // A frame whose source or vector went meanwhile: its removal owes a delete.
        let (Some((source, start_wall_ms, interval_ms, region)), Some(vector)) =
            (source, store.vector(m.key)?)
        else {
            continue;
        };
        rows.push(FrameRow {
            key: m.key,
            vector,
            source,
            start_wall_ms,
            interval_ms,
            region,
        });
    }
    milvus.write_frames(&rows)?;
    store.clear_outbox(OutboxList::Upserts, &writes)?;
    note_success(status, rows.len() as u64, 0);
    Ok(writes.len())
}

fn note_success(status: &Mutex<DrainStatus>, written: u64, deleted: u64) {
    let mut st = status.lock().expect("drain status");
    if !st.reachable && st.last_error.is_some() {
        tracing::info!("Milvus reachable again; draining the outbox");
    }
    st.reachable = true;
    st.last_error = None;
    st.written += written;
    st.deleted += deleted;
}
