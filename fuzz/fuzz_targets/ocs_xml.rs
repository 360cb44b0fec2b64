//! Fuzz target: an OCS UserNotification document, as a whole file and as a header's OCSNotificationData.
//! The harness (and the properties it checks) is `callnote::fuzzing::ocs_xml`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    callnote::fuzzing::ocs_xml(data);
});
