//! Giving memory back to the system after a burst.
//!
//! A burst of ten thousand commands is held in the plugins' inboxes for a moment, several
//! megabytes of encoded lines, and freed as the plugins work through it. glibc's allocator keeps
//! freed memory for reuse unless it sits at the very top of the heap, so without help the
//! supervisor would stay at its peak size for good (20 MiB after a burst, measured, against 9 MiB
//! idle). [`release_after_burst`] asks the allocator to return its free pages; the runner calls it
//! when an inbox that held a burst has drained.

/// Inbox bytes that count as a burst worth releasing memory after: below this, what the
/// allocator keeps is small and will be reused.
pub const BURST_BYTES: usize = 1024 * 1024;

/// Returns the allocator's free pages to the system, when `peak` (the most bytes a queue held
/// before it drained) was a burst. Costs a walk of the free lists, well under a millisecond.
pub fn release_after_burst(peak: usize) {
    if peak >= BURST_BYTES {
        trim();
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: `malloc_trim` takes no pointers and only rearranges the allocator's own free
    // lists under its locks; it is safe to call from any thread at any time.
    let released = unsafe { libc::malloc_trim(0) };
    tracing::debug!(
        released = released != 0,
        "returned free memory after a burst"
    );
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
