//! Ingest's stop switch for a full disk: while the state folder's file system is full,
//! decoders stop, decoded frames are dropped (their sources resume from their last committed
//! frame) and new ingest requests are refused with the reason; searches go on.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::catalog::CatalogError;
use crate::store::disk;

/// Below this many free bytes a failed write without an errno counts as a full disk
/// (at most `ingest.resume_free_mb`).
const FULL_BELOW_BYTES: u64 = 16 << 20;

/// Whether ingest is stopped by a full disk, and why.
#[derive(Debug)]
pub struct IngestHalt {
    halted: AtomicBool,
    reason: Mutex<Option<String>>,
    state_dir: PathBuf,
    resume_free_mb: f64,
}

impl IngestHalt {
    /// Not halted; `state_dir` is the folder whose file system is watched, and ingest
    /// resumes once `resume_free_mb` MB are free there again.
    pub fn new(state_dir: &Path, resume_free_mb: f64) -> Self {
        Self {
            halted: AtomicBool::new(false),
            reason: Mutex::new(None),
            state_dir: state_dir.to_path_buf(),
            resume_free_mb,
        }
    }

    /// True while ingest is stopped.
    pub fn is_halted(&self) -> bool {
        self.halted.load(Ordering::SeqCst)
    }

    /// Why ingest is stopped (what, where, what to do), while it is.
    pub fn reason(&self) -> Option<String> {
        self.reason.lock().expect("halt lock").clone()
    }

    /// Stops ingest.
    pub fn halt(&self, reason: String) {
        tracing::error!(reason, "ingest stopped");
        *self.reason.lock().expect("halt lock") = Some(reason);
        self.halted.store(true, Ordering::SeqCst);
    }

    /// Lets ingest go on again.
    pub fn clear(&self) {
        *self.reason.lock().expect("halt lock") = None;
        self.halted.store(false, Ordering::SeqCst);
    }

    /// After a failed write: when it failed for lack of space (ENOSPC or EDQUOT, or no errno
    /// and almost no space left), stops ingest and returns the message; `None` otherwise.
    pub fn halt_if_disk_full(&self, error: &CatalogError) -> Option<String> {
        let reserve = ((self.resume_free_mb * 1e6) as u64).min(FULL_BELOW_BYTES);
        if !disk::write_failed_for_space(error.io_error(), &self.state_dir, reserve) {
            return None;
        }
        let message = format!(
            "disk full: cannot write to the state folder {} ({error}). Ingest is stopped; searches go on and every frame committed so far is kept. Free space on that file system (at least {} MB, ingest.resume_free_mb): ingest then resumes on its own from where each source stopped",
            self.state_dir.display(),
            self.resume_free_mb
        );
        self.halt(message.clone());
        Some(message)
    }

    /// While halted: the free bytes, once at least `ingest.resume_free_mb` MB are free.
    pub fn space_is_back(&self) -> Option<u64> {
        if !self.is_halted() {
            return None;
        }
        let need = (self.resume_free_mb * 1e6) as u64;
        let free = disk::free_bytes(&self.state_dir).unwrap_or(0);
        (free >= need).then_some(free)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    /// The error sled gives a write after one failed for lack of space: its copy of the
    /// first error, which keeps the kind and loses the errno.
    fn sled_after_enospc() -> CatalogError {
        let first = sled::Error::Io(std::io::Error::from_raw_os_error(libc::ENOSPC));
        CatalogError::Store(StoreError::Db(first.clone()))
    }

    #[test]
    fn a_write_refused_after_an_enospc_halts_ingest_even_once_space_is_back() {
        // Plenty of space here: only the error can tell the disk was full.
        let dir = tempfile::tempdir().unwrap();
        let halt = IngestHalt::new(dir.path(), 1.0);
        let e = sled_after_enospc();
        assert_eq!(e.io_error().and_then(|io| io.raw_os_error()), None);
        let message = halt.halt_if_disk_full(&e).expect("told as a full disk");
        assert!(message.starts_with("disk full"), "{message}");
        assert!(halt.is_halted());
        // So the resume (which reopens the database) follows as soon as space is there.
        assert!(halt.space_is_back().is_some());
        halt.clear();
        let other = CatalogError::Store(StoreError::Db(sled::Error::Io(
            std::io::Error::from_raw_os_error(libc::EACCES),
        )));
        assert!(halt.halt_if_disk_full(&other).is_none());
        assert!(!halt.is_halted());
    }
}
