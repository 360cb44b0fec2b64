//! Built-in sample events of every kind and outcome (resolved, mobile, ambiguous,
//! unresolved, anonymous, non-ASCII, each shipped locale), for `check`, `send-test` and
//! `preview`.
//!
//! OWNER: render helper.
