//! CPU priority of the daemon's threads, so that a search never waits behind ingest.
//!
//! Ingest (decode workers and the FFmpeg threads they start, the embed worker, and rayon's
//! global pool that runs the image tower's matrix products) runs at a raised nice value.
//! Queries run on their own rayon pool at the daemon's normal priority: their small matrix
//! products neither queue behind a batch of images in the global pool nor lose the CPU to it.

/// The calling thread's nice value (Linux keeps one per thread).
pub fn this_thread_nice() -> i32 {
    // SAFETY: getpriority on the calling thread only; -1 is a valid nice value, so errno is
    // cleared first and checked after.
    unsafe {
        *libc::__errno_location() = 0;
        let n = libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t);
        if n == -1 && *libc::__errno_location() != 0 {
            0
        } else {
            n
        }
    }
}

/// Lowers the calling thread's priority to `nice` (threads it starts afterwards inherit it).
/// Never raises it: a thread already nicer than `nice` keeps its value. Failures are logged.
pub fn lower_this_thread(nice: i32) {
    if nice <= this_thread_nice() {
        return;
    }
    // SAFETY: setpriority on the calling thread only.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice) };
    if r != 0 {
        tracing::warn!(nice, error = %std::io::Error::last_os_error(), "cannot lower thread priority");
    }
}

/// Builds rayon's global pool with threads at `nice` (the pool ingest's image batches run
/// on). Call before anything uses rayon; returns false when the pool already existed.
pub fn init_ingest_pool(nice: i32) -> bool {
    rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("compute-{i}"))
        .start_handler(move |_| lower_this_thread(nice))
        .build_global()
        .is_ok()
}

/// A rayon pool for queries, at the creating thread's priority, as many threads as the
/// global pool (`RAYON_NUM_THREADS`, else one per core). Work run in it with `install`
/// (including candle's and the kernels' parallel loops) stays in it.
pub fn query_pool() -> std::io::Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("query-{i}"))
        .build()
        .map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowering_is_per_thread_and_never_raises() {
        let before = this_thread_nice();
        let target = (before + 3).min(19);
        let (inside, after_raise_attempt) = std::thread::spawn(move || {
            lower_this_thread(target);
            let inside = this_thread_nice();
            lower_this_thread(before);
            (inside, this_thread_nice())
        })
        .join()
        .unwrap();
        assert_eq!(inside, target);
        assert_eq!(
            after_raise_attempt, target,
            "lowering never raises priority"
        );
        assert_eq!(this_thread_nice(), before, "other threads keep theirs");
    }

    #[test]
    fn threads_started_by_a_niced_thread_inherit_its_priority() {
        let before = this_thread_nice();
        let target = (before + 2).min(19);
        let child = std::thread::spawn(move || {
            lower_this_thread(target);
            std::thread::spawn(this_thread_nice).join().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(child, target);
    }
}
