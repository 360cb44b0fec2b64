//! Fuzz target: a UM header file (or bare OCS XML file), as the spool reads it.
//! The harness (and the properties it checks) is `callnote::fuzzing::header`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    callnote::fuzzing::header(data);
});
