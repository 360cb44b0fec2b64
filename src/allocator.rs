//! The allocator's settings for this process. mimalloc is the binary's global allocator
//! (`src/main.rs`); its defaults favour long-running throughput over a small footprint, and
//! two of them doubled what a directory load holds beyond the index it builds:
//!
//! - transparent huge pages: mimalloc asks the kernel for 2 MiB pages for its memory, so a
//!   page barely used still costs 2 MiB of resident memory;
//! - purge delay: memory freed goes back to the system a second later, so the buffers of a
//!   load that ends in a few hundred milliseconds are all still resident when the next ones
//!   are allocated.
//!
//! [`configure`] turns huge pages off and returns freed memory at once. Measured on the
//! 100,000-person directory (README, Performance): peak RSS of a cold load 160 → 105 MiB
//! and from the index cache 115 → 89 MiB, for the same CPU time within the noise.
//!
//! Consumes nothing; calls mimalloc's `mi_option_set` and `prctl(PR_SET_THP_DISABLE)`. Call it
//! first thing in `main`, before threads start. When mimalloc is not the global allocator
//! (tests) it changes nothing that matters.

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

/// Sets the allocator up for a small footprint (see the module doc). Options the
/// environment sets (`MIMALLOC_ALLOW_THP`, `MIMALLOC_PURGE_DELAY`, …) are overridden.
pub fn configure() {
    for (option, value) in [(ALLOW_THP, 0), (PURGE_DELAY, 0)] {
        // SAFETY: setting an option takes no pointers and is allowed at any time; mimalloc
        // reads these when it next maps, purges or frees memory.
        unsafe { mi_option_set(option, value) };
    }
    // mimalloc reserved its first arena (and asked for huge pages there) before `main`; this
    // is what it does itself at start-up when the option is off: no huge pages for the
    // process, from the next page fault on, in every mapping.
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers; it fails harmlessly on old kernels.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// The option values now in effect, as `(allow THP, purge delay in ms)`.
pub fn settings() -> (i64, i64) {
    // SAFETY: reading an option takes no pointers and is allowed at any time.
    let get = |option| -> i64 { unsafe { mi_option_get(option) } };
    (get(ALLOW_THP), get(PURGE_DELAY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_numbers_are_mimallocs_and_the_settings_take() {
        // Nothing else in the tests configures the allocator: these are mimalloc's defaults
        // (THP allowed, purged a second after freeing), unless the environment sets them.
        if ["MIMALLOC_ALLOW_THP", "MIMALLOC_PURGE_DELAY"].iter().all(|v| std::env::var_os(v).is_none()) {
            assert_eq!(settings(), (1, 1000));
        }
        configure();
        assert_eq!(settings(), (0, 0));
    }
}
