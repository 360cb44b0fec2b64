//! Directory load benchmark: time and memory to load a large LDIF export into the index,
//! with and without the index cache, inside this process and as the `callnote` binary does
//! it for one event.
//!
//! `cargo bench --bench directory_load` prints, for each of the benchmark corpus's exports
//! (`BENCH_SIZES` people, default `10000,100000`, made by `bench/make_corpus.py` under
//! `$BENCH_DIR/callnote-bench`; or the one file in `BENCH_LDIF`):
//!
//! - in this process (counting allocator): the load time from the file (median of
//!   `BENCH_PASSES` passes, default 5, and the spread), the index's steady heap, the peak heap
//!   during the load and their ratio; then the same from the cache. Times are wall and the
//!   loading thread's CPU time (the parse runs on every core, so wall is the figure to read
//!   when the machine is quiet);
//! - whole processes: `callnote render` of one event with that directory (`CALLNOTE_BIN`, else
//!   this build's binary) under the same dial plan, cold (no index cache) and from the cache,
//!   in turn: wall time, CPU time (user + system, every thread) and peak RSS, with the peak
//!   RSS as a multiple of the index's steady heap (the aim: at most 2×).

use std::path::{Path, PathBuf};
use std::time::Instant;

use callnote::enrich::directory::{self, AttributeMap, CacheUse};
use callnote::phone::DialPlan;

#[path = "support/counting.rs"]
mod counting;

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// The benchmark corpus for `people` (made on first use): its export and its one event.
fn corpus(people: usize) -> (PathBuf, PathBuf) {
    let base = PathBuf::from(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/dev/shm".into())).join("callnote-bench");
    let out = base.join(format!("corpus-{people}-1"));
    if !out.join("corpus.json").exists() {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/make_corpus.py");
        let status = std::process::Command::new("python3")
            .args([script, "--out", &out.to_string_lossy(), "--count", "1", "--directory-size", &people.to_string(), "--all-missed-call"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("python3 runs");
        assert!(status.success(), "make_corpus.py failed");
    }
    let event = std::fs::read_dir(out.join("voicemail"))
        .expect("corpus events")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "txt"))
        .expect("one event");
    (out.join("directory.ldif"), event)
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

/// `median (min-max)` of `values`, each shown by `show`.
fn spread(mut values: Vec<f64>, show: impl Fn(f64) -> String) -> String {
    values.sort_by(f64::total_cmp);
    format!("{} ({}-{})", show(values[values.len() / 2]), show(values[0]), show(values[values.len() - 1]))
}

fn seconds(v: f64) -> String {
    format!("{v:.3} s")
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

/// One whole process: wall and CPU seconds, peak RSS bytes.
type Run = (f64, f64, f64);

/// The dial plan of every load measured here; the binary gets it in a configuration file, so
/// that its index is the one whose steady heap is measured in this process.
fn plan() -> DialPlan {
    DialPlan::new("US", Some("9"), 6, 7).expect("US")
}

const PLAN_CONFIG: &str = "[dialplan]\nregion = \"US\"\noutside_line_code = \"9\"\nextension_digits = 6\nmin_suffix_digits = 7\n";

/// One whole `callnote --config CONFIG render` of `event` with `directory`.
// The child is reaped by `wait4` (for its own peak RSS), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_binary(binary: &str, config: &Path, directory: &Path, event: &Path, cache_dir: &Path, out: &Path) -> Run {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).expect("output folder");
    let start = Instant::now();
    let child = std::process::Command::new(binary)
        .arg("--config")
        .arg(config)
        .args(["render", "--directory"])
        .arg(directory)
        .args(["--date", "2026-01-01T00:00:00Z", "--out"])
        .arg(out)
        .arg(event)
        .env("CALLNOTE_CACHE_DIR", cache_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("callnote runs");
    let pid = i32::try_from(child.id()).expect("pid");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not waited for by anyone else; both pointers are valid.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(waited, pid, "wait4");
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) <= 1, "callnote render failed: status {status}");
    let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    (wall, cpu(usage.ru_utime) + cpu(usage.ru_stime), usage.ru_maxrss as f64 * 1024.0)
}

/// Whole `callnote render` processes, one event with `path`: cold and cached runs in turn.
fn processes(path: &Path, event: &Path, passes: usize) -> (Vec<Run>, Vec<Run>) {
    let binary = std::env::var("CALLNOTE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_callnote").to_owned());
    let scratch = std::env::temp_dir().join(format!("callnote-bench-{}", std::process::id()));
    let (cache_dir, out, config) = (scratch.join("cache"), scratch.join("out"), scratch.join("callnote.toml"));
    std::fs::create_dir_all(&scratch).expect("scratch folder");
    std::fs::write(&config, PLAN_CONFIG).expect("configuration");
    let run_binary = |directory, event, cache_dir, out| run_binary(&binary, &config, directory, event, cache_dir, out);
    // One run to warm the page cache and the binary; then cold and cached runs in turn.
    run_binary(path, event, &cache_dir, &out);
    let (mut cold, mut warm): (Vec<Run>, Vec<Run>) = (Vec::new(), Vec::new());
    for _ in 0..passes {
        let _ = std::fs::remove_dir_all(&cache_dir);
        cold.push(run_binary(path, event, &cache_dir, &out));
        warm.push(run_binary(path, event, &cache_dir, &out));
    }
    let _ = std::fs::remove_dir_all(&scratch);
    (cold, warm)
}

fn bench(path: &Path, passes: usize, processes: Option<(Vec<Run>, Vec<Run>)>) {
    let size = std::fs::metadata(path).expect("export").len();
    let plan = plan();
    let cache = std::env::temp_dir().join(format!("callnote-bench-{}.callnote-index", std::process::id()));
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    let (mut steady, mut peak, mut warm_peak, mut people) = (0, 0, 0, 0);
    for _ in 0..passes {
        let _ = std::fs::remove_file(&cache);
        let from_file = measure(|| directory::load_with_cache(path, &plan, AttributeMap::default(), Some(&cache)).expect("loads"));
        assert!(matches!(from_file.4, CacheUse::Built { saved: Some(_), .. }), "{:?}", from_file.4);
        (steady, peak, people) = (from_file.1, from_file.2, from_file.3.len());
        cold.push(from_file.0);
        drop(from_file.3);
        let from_cache = measure(|| directory::load_with_cache(path, &plan, AttributeMap::default(), Some(&cache)).expect("loads"));
        assert!(matches!(from_cache.4, CacheUse::Hit(_)), "{:?}", from_cache.4);
        warm_peak = from_cache.2;
        warm.push(from_cache.0);
    }
    let _ = std::fs::remove_file(&cache);
    let times = |t: Vec<(f64, f64)>| {
        let (wall, cpu): (Vec<f64>, Vec<f64>) = t.into_iter().unzip();
        format!("wall {}, loading thread's CPU {}", spread(wall, seconds), spread(cpu, seconds))
    };
    let steady_mib = mib(steady as f64);
    println!("directory: {} ({:.0} MB), {people} people indexed, {passes} passes", path.display(), size as f64 / 1e6);
    println!(
        "  in this process, from the file:  {}; index steady heap {steady_mib:.1} MiB ({} B/person), peak heap {:.1} MiB = {:.2}x the steady heap",
        times(cold),
        steady / people.max(1),
        mib(peak as f64),
        peak as f64 / steady.max(1) as f64
    );
    println!(
        "  in this process, from the cache: {}; peak heap {:.1} MiB = {:.2}x the steady heap",
        times(warm),
        mib(warm_peak as f64),
        warm_peak as f64 / steady.max(1) as f64
    );
    let Some((cold, warm)) = processes else { return };
    let show = |runs: Vec<Run>| {
        let wall = spread(runs.iter().map(|r| r.0).collect(), seconds);
        let cpu = spread(runs.iter().map(|r| r.1).collect(), seconds);
        let rss = spread(runs.iter().map(|r| mib(r.2)).collect(), |v| format!("{v:.1}"));
        let ratio = spread(runs.iter().map(|r| mib(r.2) / steady_mib).collect(), |v| format!("{v:.2}x"));
        format!("wall {wall}, CPU {cpu}, peak RSS {rss} MiB = {ratio} the steady heap")
    };
    println!("  `callnote render`, one event, no cache:   {}", show(cold));
    println!("  `callnote render`, one event, from cache: {}", show(warm));
}

fn main() {
    // As the binary does (src/main.rs).
    callnote::allocator::configure();
    let passes: usize = std::env::var("BENCH_PASSES").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    if let Some(path) = std::env::var_os("BENCH_LDIF") {
        bench(Path::new(&path), passes, None);
        return;
    }
    let sizes = std::env::var("BENCH_SIZES").unwrap_or_else(|_| "10000,100000".into());
    let corpora: Vec<(PathBuf, PathBuf)> = sizes.split(',').filter_map(|s| s.trim().parse().ok()).map(corpus).collect();
    // Whole processes first, while this one is small: Linux counts in a child's peak RSS the
    // resident memory of the process it was started from (kept at `exec`), and this process
    // grows with every load it measures.
    let runs: Vec<_> = corpora.iter().map(|(path, event)| processes(path, event, passes)).collect();
    for ((path, _), runs) in corpora.iter().zip(runs) {
        bench(path, passes, Some(runs));
    }
}
