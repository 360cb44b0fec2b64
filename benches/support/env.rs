//! Benchmark settings from the environment. Included by the benches with
//! `#[path = "support/env.rs"] mod env;` (so not every bench uses every function).
#![allow(dead_code)]

/// The variable's value, when set and valid UTF-8.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The variable as a number, or `default` when unset or not a number.
pub fn usize_or(name: &str, default: usize) -> usize {
    var(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}
