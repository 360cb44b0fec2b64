//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::PathBuf;

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Reads an environment variable a real-server test needs (set by `scripts/test.sh`, which
/// starts the servers). A missing variable fails the test, so a run without its servers can
/// never pass quietly. `CALLNOTE_SKIP_SERVER_TESTS=1` opts out on purpose (a quick local
/// `cargo test`): the test is then skipped, says so on stderr, and is counted in
/// `target/skipped-server-tests.txt`, which `scripts/test.sh` reports in its summary line.
pub fn server_env(var: &str) -> Option<String> {
    if let Ok(v) = std::env::var(var) {
        return Some(v);
    }
    if std::env::var("CALLNOTE_SKIP_SERVER_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED (CALLNOTE_SKIP_SERVER_TESTS=1): {var} not set");
        record_skip(var);
        return None;
    }
    panic!(
        "{var} is not set: start the real servers with scripts/test.sh, or set CALLNOTE_SKIP_SERVER_TESTS=1 to skip server tests on purpose"
    )
}

/// Appends one line per skipped server test, for the test script's summary.
fn record_skip(var: &str) {
    use std::io::Write;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/skipped-server-tests.txt");
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(file, "{test}: {var}");
    }
}
