//! Giving memory back after a backlog. The allocator (mimalloc, the binary's global
//! allocator) keeps freed pages per thread for reuse, so a backlog drained by many threads
//! leaves the process large long after it is idle. This module asks every thread of the
//! relay's runtime to return its free pages: the calling thread at once, each runtime
//! worker the next time it goes idle (a tokio `on_thread_park` hook, [`on_park`]), and the
//! blocking threads by ending soon after they fall idle ([`BLOCKING_KEEP_ALIVE`]; a thread
//! that ends hands its free pages back).
//!
//! Consumes nothing; produces calls to mimalloc's `mi_collect`. When mimalloc is not the
//! global allocator (unit tests) it has nothing to return and the calls are harmless.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

// Links mimalloc into every build of the library (the binary uses it as its allocator;
// tests and benches use the system allocator but call `mi_collect` all the same).
use mimalloc as _;

unsafe extern "C" {
    /// mimalloc's collection of the calling thread's free pages (`force`: all of them, and
    /// the purge of every arena's freed memory). Linked through the `mimalloc` crate, whose
    /// safe API does not offer it.
    fn mi_collect(force: bool);
}

/// How long an idle blocking thread of the relay's runtime lives (tokio's default is 10 s).
pub const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(1);

/// Incremented by every [`release`]; a worker that has not collected since, does.
static ASKED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static DONE: Cell<u64> = const { Cell::new(0) };
}

fn collect() {
    // SAFETY: `mi_collect` takes no pointers and may be called from any thread at any time.
    unsafe { mi_collect(true) }
}

/// Returns the calling thread's free pages and asks every runtime worker to do the same
/// when it next parks.
pub fn release() {
    let asked = ASKED.fetch_add(1, Ordering::Relaxed) + 1;
    DONE.with(|done| done.set(asked));
    collect();
}

/// For tokio's `on_thread_park`: collects once per [`release`] (a load and a compare
/// otherwise, so parking stays cheap).
pub fn on_park() {
    let asked = ASKED.load(Ordering::Relaxed);
    DONE.with(|done| {
        if done.get() != asked {
            done.set(asked);
            collect();
        }
    });
}

/// Sets up a runtime builder for the relay: workers collect when asked, idle blocking
/// threads end after [`BLOCKING_KEEP_ALIVE`].
pub fn tune(builder: &mut tokio::runtime::Builder) -> &mut tokio::runtime::Builder {
    builder.on_thread_park(on_park).thread_keep_alive(BLOCKING_KEEP_ALIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thread_collects_once_per_release() {
        release();
        let asked = ASKED.load(Ordering::Relaxed);
        assert_eq!(DONE.with(Cell::get), asked, "the releasing thread collected already");
        std::thread::spawn(move || {
            assert_ne!(DONE.with(Cell::get), asked);
            on_park();
            assert_eq!(DONE.with(Cell::get), asked);
        })
        .join()
        .unwrap();
    }
}
