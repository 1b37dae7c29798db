//! Transcription runs in the background while an interview may still be recording on a 2-core
//! laptop: the recording must never drop audio. So the work runs on a thread of lower priority
//! and with one core fewer than the machine has.

/// The nice value transcription threads run at (0 is normal, 19 the lowest).
pub const NICE: i32 = 10;

/// Threads for whisper.cpp: every core but one (the recorder's and the UI's), at least one.
pub fn worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

/// Lowers the calling thread's CPU priority by [`NICE`] (to at most 19, the lowest): relative,
/// so that an app already started at a lower priority (`nice -n 19 …`, as root too) never has
/// its worker raised above itself. Returns whether it did.
///
/// On Linux a nice value belongs to each thread (each is its own task to the scheduler), and
/// `setpriority(PRIO_PROCESS, tid, …)` with the thread's own id changes only that thread, not
/// the process (POSIX says process, Linux does threads; see setpriority(2), "BUGS"). Threads it
/// starts afterwards inherit the value: whisper.cpp's compute threads (GGML's thread pool, or
/// OpenMP's) are created from this thread, so they run at the same lower priority, and the
/// audio capture thread and the UI keep theirs. Raising it back would need privileges, so a
/// thread that called this should only do background work from then on.
///
/// Elsewhere this does nothing (on macOS `setpriority` would lower the whole process).
pub fn lower_current_thread_priority() -> bool {
    #[cfg(target_os = "linux")]
    {
        let Some(current) = current_thread_nice() else {
            return false;
        };
        // SAFETY: gettid has no preconditions; setpriority only reads its arguments.
        unsafe {
            let tid = libc::gettid();
            libc::setpriority(
                libc::PRIO_PROCESS,
                tid as libc::id_t,
                (current + NICE).min(19),
            ) == 0
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// The calling thread's nice value (Linux), for tests and diagnostics.
pub fn current_thread_nice() -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: as above. getpriority can return -1 legitimately, so errno is cleared first.
        unsafe {
            *libc::__errno_location() = 0;
            let v = libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t);
            (*libc::__errno_location() == 0).then_some(v)
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Runs `work` on a new thread that first lowers its own priority.
pub fn spawn_low_priority<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            lower_current_thread_priority();
            work()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn only_the_worker_thread_is_lowered() {
        let before = current_thread_nice().unwrap();
        let (worker, child) = spawn_low_priority("test", || {
            let own = current_thread_nice();
            // A thread started by the worker inherits its priority (as GGML's threads do).
            let child = std::thread::spawn(current_thread_nice).join().unwrap();
            (own, child)
        })
        .unwrap()
        .join()
        .unwrap();
        assert_eq!(worker, Some((before + NICE).min(19)));
        assert_eq!(child, worker);
        assert_eq!(
            current_thread_nice(),
            Some(before),
            "the calling thread keeps its priority"
        );
    }

    #[test]
    fn leaves_a_core() {
        let n = std::thread::available_parallelism().unwrap().get();
        assert_eq!(worker_threads(), (n - 1).max(1));
    }
}
