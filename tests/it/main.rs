//! The one integration-test binary: one module per pipeline stage, driven by the fixture
//! files in `tests/fixtures/` (copied from the project's shared fixtures; never read from
//! outside the repository).

mod common;
mod compose;
mod deliver;
mod enrich;
mod examples;
mod fuzz_smoke;
mod intake;
mod ldap;
mod preview;
mod relay;
mod render;
mod send_test;
