//! Directory load benchmark: time and memory to load a large LDIF export into the index,
//! with and without the index cache.
//!
//! `cargo bench --bench directory_load` prints, for the benchmark corpus's 100,000-person
//! export (made by `bench/make_corpus.py` under `$BENCH_DIR/callnote-bench`, or the file in
//! `BENCH_LDIF`): the load time from the file (median of `BENCH_PASSES` passes, default 5,
//! and the spread), the index's steady heap, the peak heap during the load and their ratio
//! (counting allocator), then the load time from the cache and its peak heap. Times are wall
//! and this thread's CPU time (on a busy machine the CPU time is the steadier figure).

use std::path::PathBuf;
use std::time::Instant;

use callnote::enrich::directory::{self, AttributeMap, CacheUse};
use callnote::phone::DialPlan;

#[path = "support/counting.rs"]
mod counting;

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// The export to load: `BENCH_LDIF`, else the benchmark corpus's (made on first use).
fn export() -> PathBuf {
    if let Some(path) = std::env::var_os("BENCH_LDIF") {
        return path.into();
    }
    let people: usize = std::env::var("BENCH_PEOPLE").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let base = PathBuf::from(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/dev/shm".into())).join("callnote-bench");
    let out = base.join(format!("corpus-{people}-1"));
    if !out.join("corpus.json").exists() {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/make_corpus.py");
        let status = std::process::Command::new("python3")
            .args([script, "--out", &out.to_string_lossy(), "--count", "1", "--directory-size", &people.to_string(), "--all-missed-call"])
            .stderr(std::process::Stdio::null())
            .status()
            .expect("python3 runs");
        assert!(status.success(), "make_corpus.py failed");
    }
    out.join("directory.ldif")
}

/// CPU seconds this thread has used (a shared machine stretches wall time, not this).
fn thread_cpu() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// One load: wall and CPU seconds, steady heap, peak heap during it.
type Measured = ((f64, f64), usize, usize, directory::DirectoryIndex, CacheUse);

fn measure(load: impl FnOnce() -> (directory::DirectoryIndex, CacheUse)) -> Measured {
    let before = counting::live();
    counting::reset_peak();
    let (start, cpu) = (Instant::now(), thread_cpu());
    let (index, used) = load();
    let secs = (start.elapsed().as_secs_f64(), thread_cpu() - cpu);
    (secs, counting::live() - before, counting::peak() - before, index, used)
}

fn median_and_spread(times: Vec<(f64, f64)>) -> String {
    let show = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        format!("{:.3} s ({:.3}-{:.3})", v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let (wall, cpu): (Vec<f64>, Vec<f64>) = times.into_iter().unzip();
    format!("wall {}, CPU {}", show(wall), show(cpu))
}

fn main() {
    let passes: usize = std::env::var("BENCH_PASSES").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let path = export();
    let size = std::fs::metadata(&path).expect("export").len();
    let plan = DialPlan::new("US", Some("9"), 6, 7).expect("US");
    let cache = std::env::temp_dir().join(format!("callnote-bench-{}.callnote-index", std::process::id()));
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    let (mut steady, mut peak, mut warm_peak, mut people) = (0, 0, 0, 0);
    for _ in 0..passes {
        let _ = std::fs::remove_file(&cache);
        let from_file = measure(|| directory::load_with_cache(&path, &plan, AttributeMap::default(), Some(&cache)).expect("loads"));
        assert!(matches!(from_file.4, CacheUse::Built { saved: Some(_), .. }), "{:?}", from_file.4);
        (steady, peak, people) = (from_file.1, from_file.2, from_file.3.len());
        cold.push(from_file.0);
        drop(from_file.3);
        let from_cache = measure(|| directory::load_with_cache(&path, &plan, AttributeMap::default(), Some(&cache)).expect("loads"));
        assert!(matches!(from_cache.4, CacheUse::Hit(_)), "{:?}", from_cache.4);
        warm_peak = from_cache.2;
        warm.push(from_cache.0);
    }
    let _ = std::fs::remove_file(&cache);
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    println!("directory: {} ({:.0} MB), {people} people indexed, {passes} passes", path.display(), size as f64 / 1e6);
    println!(
        "load from the file:  {}; index steady heap {:.1} MiB ({} B/person), peak heap during the load {:.1} MiB = {:.2}x the steady heap",
        median_and_spread(cold),
        mib(steady),
        steady / people.max(1),
        mib(peak),
        peak as f64 / steady.max(1) as f64
    );
    println!(
        "load from the cache: {}; peak heap {:.1} MiB = {:.2}x the steady heap",
        median_and_spread(warm),
        mib(warm_peak),
        warm_peak as f64 / steady.max(1) as f64
    );
}
