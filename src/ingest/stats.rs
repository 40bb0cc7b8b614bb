//! Ingest's counters for `stats` and `status`: frames, batches, time per stage, and each
//! source's recent rate.

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Mutex;
use std::time::Instant;

/// Ingest's counters, shared with `stats` and `status`.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Frames embedded and committed since start.
    pub frames_embedded: AtomicU64,
    /// Batches embedded.
    pub batches: AtomicU64,
    /// Total embed time, microseconds.
    pub embed_us: AtomicU64,
    /// Jobs waiting for a decode worker.
    pub queued: AtomicUsize,
    /// Per source: frames committed since start, first and last commit time.
    pub rates: Mutex<std::collections::HashMap<String, SourceRate>>,
    /// Decode-thread time in FFmpeg demux + decode (wall minus convert and hand-off), us.
    pub decode_us: AtomicU64,
    /// Decode-thread time in pixel conversion, us.
    pub convert_us: AtomicU64,
    /// Decode-thread time blocked handing frames to the batch worker, us.
    pub handoff_us: AtomicU64,
    /// Embed-commit worker time committing batches (sled transaction + flush + index add), us.
    pub commit_us: AtomicU64,
    /// Times a decode worker's loop panicked outside a file's guard and was restarted.
    pub worker_restarts: AtomicU64,
}

/// Ingest progress of one source since the daemon started.
#[derive(Debug, Clone, Copy)]
pub struct SourceRate {
    /// Frames committed.
    pub frames: u64,
    /// When the first batch of this source was committed.
    pub first: Instant,
    /// When the last batch was committed.
    pub last: Instant,
}

impl SourceRate {
    /// Frames per second between the first and the last commit (0 with a single commit).
    pub fn frames_per_second(&self) -> f64 {
        let secs = self.last.duration_since(self.first).as_secs_f64();
        if secs > 0.0 {
            self.frames as f64 / secs
        } else {
            0.0
        }
    }
}
