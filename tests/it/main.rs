//! The one integration-test binary: one module per pipeline stage, driven by the fixture
//! files in `tests/fixtures/` (copied from the project's shared fixtures; never read from
//! outside the repository).

mod cli;
mod common;
mod compose;
mod contacts;
mod deliver;
mod digest;
mod enrich;
mod examples;
mod fuzz_smoke;
mod hostile;
mod intake;
mod ldap;
mod preview;
mod relay;
mod render;
mod send_test;
mod spam;
mod team_call;
mod voice_preview;
mod voicemail_codec;
