//! The state folder's file system: free space, and whether a failed write means it is full.

use std::path::Path;

/// Free bytes for unprivileged users on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; all zeroes is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// True when an I/O error says the file system is full or the quota is spent (ENOSPC,
/// EDQUOT), judged by its errno, or by the kind those errnos map to when the errno was lost
/// on the way: sled hands every write after a failed one a copy of that first error, which
/// keeps its kind but not its errno.
pub fn is_full_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{QuotaExceeded, StorageFull};
    matches!(error.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
        || matches!(error.kind(), StorageFull | QuotaExceeded)
}

/// True when a failed write under `dir` means the disk is full: its I/O error says so
/// (errno), or, when the failing library gave no errno (usearch's writer), fewer than
/// `reserve` bytes are free there now.
pub fn write_failed_for_space(io: Option<&std::io::Error>, dir: &Path, reserve: u64) -> bool {
    io.is_some_and(is_full_error) || free_bytes(dir).is_some_and(|free| free < reserve)
}

/// Reserves `len` bytes for `file` (created or truncated) before a writer that reports no
/// errno fills it, so that a full disk is reported as ENOSPC. The reservation is released
/// when the writer truncates the file.
pub fn reserve(file: &Path, len: u64) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::File::create(file)?;
    if len == 0 {
        return Ok(());
    }
    // Linux's fallocate, not posix_fallocate: glibc emulates the latter by writing every
    // block where the file system has no fallocate, which would cost a whole extra write.
    // SAFETY: a valid open descriptor and a byte range.
    let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len as libc::off_t) };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        // File systems without fallocate: nothing reserved, the writer's own error stands.
        Some(libc::EOPNOTSUPP | libc::EINVAL) => Ok(()),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_disk_errors_are_told_by_errno_not_text() {
        assert!(is_full_error(&std::io::Error::from_raw_os_error(
            libc::ENOSPC
        )));
        assert!(is_full_error(&std::io::Error::from_raw_os_error(
            libc::EDQUOT
        )));
        let looks_like_it = std::io::Error::other("No space left on device (os error 28)");
        assert!(!is_full_error(&looks_like_it));
        assert!(!is_full_error(&std::io::Error::from_raw_os_error(
            libc::EACCES
        )));
    }

    #[test]
    fn a_reservation_larger_than_the_disk_fails_with_enospc() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r");
        reserve(&file, 4096).unwrap();
        assert!(std::fs::metadata(&file).unwrap().len() >= 4096);
        let free = free_bytes(dir.path()).unwrap();
        let e = reserve(&file, free.saturating_mul(4).max(1 << 50)).unwrap_err();
        assert!(
            is_full_error(&e) || e.raw_os_error() == Some(libc::EFBIG),
            "{e}"
        );
        assert!(write_failed_for_space(
            Some(&std::io::Error::from_raw_os_error(libc::ENOSPC)),
            dir.path(),
            0
        ));
        assert!(!write_failed_for_space(None, dir.path(), 0));
    }
}
