//! The allocator's settings for this process. mimalloc is the binary's global allocator
//! (`src/main.rs`); its defaults favour long-running throughput over a small footprint, and
//! two of them inflated what a directory load holds beyond the index it builds:
//!
//! - transparent huge pages: mimalloc asks the kernel for 2 MiB pages for its memory, so a
//!   page barely used still costs 2 MiB of resident memory. [`configure`] turns them off
//!   for the process (and `Cargo.toml` builds mimalloc without asking for them);
//! - purge delay: memory freed goes back to the system a second later, so the buffers of a
//!   load that ends in a few hundred milliseconds are all still resident when the next ones
//!   are allocated. [`PromptPurge`] returns freed memory at once while a directory loads,
//!   and only then: a voicemail's megabyte buffers come and go with every message, and
//!   giving them back each time would cost page faults for nothing.
//!
//! Measured on the 100,000-person directory, one `render` (default dial plan), the same
//! build with mimalloc's defaults and with these settings: peak RSS without the index cache
//! 151 → 105 MiB, from the cache 115 → 89 MiB (MIMALLOC_ALLOW_THP=0, MIMALLOC_PURGE_DELAY=0
//! in the environment, which is what these do); CPU the same within the noise for the
//! cold load, ~30 ms more from the cache (4 KiB pages fault more).
//!
//! Consumes nothing; calls mimalloc's `mi_option_set` and `prctl(PR_SET_THP_DISABLE)`. When
//! mimalloc is not the global allocator (tests) it changes nothing that matters.

use std::sync::Mutex;

// Links mimalloc into every build of the library (the binary uses it as its allocator).
use mimalloc as _;

/// mimalloc's option numbers (`mi_option_t` in its v3 `mimalloc.h`, the version the
/// `mimalloc` crate builds by default). The test checks them against mimalloc's documented
/// defaults.
const PURGE_DELAY: i32 = 15;
const ALLOW_THP: i32 = 43;

unsafe extern "C" {
    /// Sets one of mimalloc's options. Linked through the `mimalloc` crate, whose safe API
    /// does not offer it.
    fn mi_option_set(option: i32, value: std::ffi::c_long);
    fn mi_option_get(option: i32) -> std::ffi::c_long;
}

fn set(option: i32, value: i64) {
    // SAFETY: setting an option takes no pointers and is allowed at any time; mimalloc reads
    // these when it next maps, purges or frees memory.
    unsafe { mi_option_set(option, value) };
}

fn get(option: i32) -> i64 {
    // SAFETY: reading an option takes no pointers and is allowed at any time.
    unsafe { mi_option_get(option) }
}

/// Turns transparent huge pages off for the process (see the module doc); overrides
/// `MIMALLOC_ALLOW_THP`. Call it first thing in `main`, before threads start.
pub fn configure() {
    set(ALLOW_THP, 0);
    // What mimalloc does itself at start-up when the option is off (it has mapped memory
    // before `main`): no huge pages for the process, from the next page fault on.
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers; it fails harmlessly on old kernels.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// While one of these lives, freed memory goes back to the system at once; the delay in
/// force before the first one started comes back when the last one ends.
pub struct PromptPurge(());

/// How many [`PromptPurge`] live, and the purge delay to restore after the last.
static PROMPT: Mutex<(usize, i64)> = Mutex::new((0, 0));

impl PromptPurge {
    pub fn start() -> PromptPurge {
        let mut prompt = PROMPT.lock().unwrap_or_else(|e| e.into_inner());
        if prompt.0 == 0 {
            prompt.1 = get(PURGE_DELAY);
            set(PURGE_DELAY, 0);
        }
        prompt.0 += 1;
        PromptPurge(())
    }
}

impl Drop for PromptPurge {
    fn drop(&mut self) {
        let mut prompt = PROMPT.lock().unwrap_or_else(|e| e.into_inner());
        prompt.0 -= 1;
        if prompt.0 == 0 {
            set(PURGE_DELAY, prompt.1);
        }
    }
}

/// The option values now in effect, as `(allow THP, purge delay in ms)`.
pub fn settings() -> (i64, i64) {
    (get(ALLOW_THP), get(PURGE_DELAY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_numbers_are_mimallocs_and_the_settings_take() {
        // Nothing else in the tests configures the allocator: these are mimalloc's defaults
        // (THP allowed, purged a second after freeing), unless the environment sets them.
        let defaults = ["MIMALLOC_ALLOW_THP", "MIMALLOC_PURGE_DELAY"].iter().all(|v| std::env::var_os(v).is_none());
        if defaults {
            assert_eq!(settings(), (1, 1000));
        }
        let delay = settings().1;
        configure();
        assert_eq!(settings(), (0, delay));
        let outer = PromptPurge::start();
        let inner = PromptPurge::start();
        assert_eq!(settings(), (0, 0));
        drop(outer);
        assert_eq!(settings(), (0, 0), "one still lives");
        drop(inner);
        assert_eq!(settings(), (0, delay));
    }
}
