//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::PathBuf;

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Reads an environment variable a real-server test needs. When the test script started the
/// servers (`CALLNOTE_REQUIRE_SERVERS=1`) a missing variable is a failure; otherwise the test
/// is skipped with a note, so `cargo test` alone still runs everything that needs no server.
pub fn server_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) => Some(v),
        Err(_) if std::env::var("CALLNOTE_REQUIRE_SERVERS").is_ok() => {
            panic!("{var} is not set although CALLNOTE_REQUIRE_SERVERS is: the test script did not start the server")
        }
        Err(_) => {
            eprintln!("skipped: {var} not set (run scripts/test.sh to start the real servers)");
            None
        }
    }
}
