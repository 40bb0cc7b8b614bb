//! The batch worker: frames from every source become batches on the model's device.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Item;
use crate::decode::{DecodeError, DecodeSummary};
use crate::embed::{EmbedError, Embedder};

/// Why a batch got no embeddings.
#[derive(Debug, thiserror::Error)]
pub(super) enum EmbedFailure {
    /// The model returned an error.
    #[error("embedding failed: {0}")]
    Failed(#[from] EmbedError),
    /// The model panicked (caught: the daemon goes on).
    #[error("embedding panicked")]
    Panicked,
}

/// The batch worker: batches frames from every source and uploads each batch to the
/// model's device, one batch waiting while one computes.
pub(super) struct BatchWorker {
    pub(super) items: Receiver<Item>,
    pub(super) stages: SyncSender<Stage>,
    pub(super) embedder: Arc<Embedder>,
    /// Largest batch: at this size the batch is handed on even if that has to wait.
    pub(super) batch_size: usize,
    /// Smallest batch handed on early, when the commit thread has room for it.
    pub(super) min_batch: usize,
    /// Batches handed to the commit thread and not yet finished (queued + computing).
    pub(super) in_flight: Arc<AtomicUsize>,
    pub(super) cancel: Arc<AtomicBool>,
    /// Set by [`super::Ingest::shutdown`] once every decode worker has stopped or was left
    /// behind hung: the channel may then never close (a hung worker holds a sender), so an
    /// empty channel ends the loop.
    pub(super) decoders_done: Arc<AtomicBool>,
}

struct Pending {
    keys: Vec<(u64, String)>,
    pixels: Vec<f32>,
    /// The last frame in the batch has all its views there.
    whole_frames: bool,
    /// When the oldest frame of the batch arrived.
    since: Instant,
}

/// A partial batch older than this is handed on even when smaller than `min_batch` (slow
/// sources such as live streams must not wait for a full batch).
const MAX_BATCH_WAIT: Duration = Duration::from_millis(250);

/// What the batching thread hands the commit thread, in order.
pub(super) enum Stage {
    /// A batch on the model's device (or why it could not get there).
    Batch {
        keys: Vec<(u64, String)>,
        input: Result<candle_core::Tensor, EmbedFailure>,
        upload_us: u64,
    },
    /// A source's decoding ended; its frames were all in earlier batches.
    End {
        source: String,
        result: Result<DecodeSummary, DecodeError>,
    },
}

impl BatchWorker {
    pub(super) fn run(self) {
        let mut batch = Pending {
            keys: Vec::new(),
            pixels: Vec::new(),
            whole_frames: true,
            since: Instant::now(),
        };
        loop {
            let item = if batch.keys.is_empty() {
                match self.items.recv_timeout(Duration::from_millis(100)) {
                    Ok(item) => Some(item),
                    Err(RecvTimeoutError::Timeout) if self.decoders_done.load(Ordering::SeqCst) => {
                        break
                    }
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match self.items.recv_timeout(Duration::from_millis(20)) {
                    Ok(item) => Some(item),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            let sent = match item {
                Some(Item::Frame {
                    key,
                    source,
                    pixels,
                    frame_end,
                }) => {
                    if batch.keys.is_empty() {
                        batch.since = Instant::now();
                        batch.pixels.reserve(pixels.len() * self.batch_size);
                    }
                    batch.pixels.extend_from_slice(&pixels);
                    batch.keys.push((key, source));
                    batch.whole_frames = frame_end;
                    // Dynamic batching: a full batch always goes; from `min_batch` frames
                    // on it goes as soon as the commit thread can take it without waiting,
                    // so embedding overlaps decoding instead of waiting for a full batch.
                    // Never between two views of one frame.
                    if frame_end
                        && (batch.keys.len() >= self.batch_size
                            || (batch.keys.len() >= self.min_batch && self.has_room()))
                    {
                        self.flush(&mut batch)
                    } else {
                        true
                    }
                }
                Some(Item::End { source, result }) => {
                    self.flush(&mut batch)
                        && self.stages.send(Stage::End { source, result }).is_ok()
                }
                // No frame for a while: hand on what there is when the commit thread is
                // idle, or when the batch has waited long enough.
                None if batch.whole_frames
                    && (self.in_flight.load(Ordering::SeqCst) == 0
                        || batch.since.elapsed() >= MAX_BATCH_WAIT) =>
                {
                    self.flush(&mut batch)
                }
                None => true,
            };
            if !sent {
                break;
            }
        }
        self.flush(&mut batch);
        if self.cancel.load(Ordering::SeqCst) {
            tracing::info!("batch worker stopped");
        }
    }

    /// True when a batch handed on now would not wait in the channel (room for one queued
    /// batch beside the one computing).
    fn has_room(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) < 2
    }

    /// Uploads the pending batch and hands it on; false when the commit thread is gone.
    fn flush(&self, batch: &mut Pending) -> bool {
        if batch.keys.is_empty() {
            return true;
        }
        let t = Instant::now();
        let n = batch.keys.len();
        // The batch's buffer moves into the tensor (no copy on the CPU in float32).
        let pixels = std::mem::take(&mut batch.pixels);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.embedder.upload_pixel_vec(pixels, n)
        }));
        let input = match result {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) => Err(EmbedFailure::Failed(e)),
            Err(_) => Err(EmbedFailure::Panicked),
        };
        let keys = std::mem::take(&mut batch.keys);
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.stages
            .send(Stage::Batch {
                keys,
                input,
                upload_us: t.elapsed().as_micros() as u64,
            })
            .is_ok()
    }
}
