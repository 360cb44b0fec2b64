//! Fuzz target: a configuration file, parsed and validated.
//! The harness (and the properties it checks) is `callnote::fuzzing::config`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    callnote::fuzzing::config(data);
});
