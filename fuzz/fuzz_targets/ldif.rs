//! Fuzz target: an LDIF directory export, parsed, indexed and looked up.
//! The harness (and the properties it checks) is `callnote::fuzzing::ldif`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    callnote::fuzzing::ldif(data);
});
