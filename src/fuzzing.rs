//! Fuzz harnesses: one function per input format, shared by the libFuzzer targets in `fuzz/`
//! and by the smoke test that replays their corpora in CI, so both exercise the same code.
//!
//! Consumes arbitrary bytes; runs them through the same entry point the product uses for
//! that format (and the pure stage after it), and returns an [`Outcome`] for assertions.
//! Panics only when a property that must hold for *every* input is broken (an error that
//! does not name the file or points past the end of the input, an event without a call id,
//! an output file name that is not one short plain path component, more entries than lines): that panic is what the fuzzer reports. Never touches the file
//! system beyond what the parsers themselves read (the time-zone database), never logs.
//!
//! Not a stable API: hidden from the docs, kept public only for the fuzz crate.

use std::path::Path;
use std::sync::OnceLock;

use crate::config::Config;
use crate::enrich::directory::{self, DirectoryIndex, Entry, SyntaxError};
use crate::event::Party;
use crate::intake::{self, IntakeError, IntakeOptions, Parsed};
use crate::phone::DialPlan;

/// The name every harness gives its input (a GUID stem, as Exchange names headers).
const HEADER_PATH: &str = "fuzz/0452b4d7-0ba5-4c52-bd6e-689c633e0ab4.txt";
const CONFIG_PATH: &str = "fuzz/callnote.toml";
/// Directory values looked up per export: enough to reach every match rule, bounded work.
const MAX_LOOKUPS: usize = 32;

/// What a harness saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Read: one event or configuration, or this many directory entries.
    Accepted(usize),
    /// Recognised but not a notification (e.g. a HealthCheck header).
    Skipped,
    /// Refused with an error naming the file, and the line where it gives one.
    Rejected(Option<usize>),
}

/// A UM header file (or a bare OCS XML file) as the spool reads it: decoding (BOM, UTF-16),
/// the header grammar, field values, then phone-number normalization of its parties.
pub fn header(bytes: &[u8]) -> Outcome {
    intake_outcome(bytes, intake::parse(bytes, Path::new(HEADER_PATH), intake_options()))
}

/// An OCS `UserNotification` document, both ways it arrives: as a whole file, and (when it
/// fits on one line) as the `OCSNotificationData` value of a 2013 header. Returns the
/// outcome of the whole-file read.
pub fn ocs_xml(bytes: &[u8]) -> Outcome {
    if let Ok(xml) = std::str::from_utf8(bytes)
        && !xml.contains(['\r', '\n'])
    {
        let wrapped = format!("MessageType : OCSNotification\r\nOCSNotificationData : {xml}\r\n");
        header(wrapped.as_bytes());
    }
    header(bytes)
}

/// An LDIF directory export: parse, index under the default dial plan, look values up.
pub fn ldif(bytes: &[u8]) -> Outcome {
    directory_outcome(bytes, directory::parse_ldif(bytes))
}

/// A CSV directory export: parse, index under the default dial plan, look values up.
pub fn csv(bytes: &[u8]) -> Outcome {
    directory_outcome(bytes, directory::parse_csv(bytes))
}

/// A configuration file: UTF-8 (as [`Config::load`] reads it), TOML, then validation.
pub fn config(bytes: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Outcome::Rejected(None);
    };
    match Config::from_toml(text, Path::new(CONFIG_PATH)) {
        Ok(_) => Outcome::Accepted(1),
        Err(err) => {
            let message = err.to_string();
            assert!(message.starts_with(CONFIG_PATH), "config error does not name the file: {message}");
            let line = message.lines().find_map(|l| l.strip_prefix(CONFIG_PATH)?.strip_prefix(':')?.split(':').next()?.parse().ok());
            check_line(line, bytes, &message);
            Outcome::Rejected(line)
        }
    }
}

/// Zone-less `SentTime` values are read in a zone with daylight saving, so that times in
/// its gaps and folds are exercised too.
fn intake_options() -> &'static IntakeOptions {
    static OPTIONS: OnceLock<IntakeOptions> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let zone = jiff::tz::TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap_or(jiff::tz::TimeZone::UTC);
        IntakeOptions { sent_time_zone: zone, ..IntakeOptions::default() }
    })
}

fn dial_plan() -> &'static DialPlan {
    static PLAN: OnceLock<DialPlan> = OnceLock::new();
    PLAN.get_or_init(|| DialPlan::new("US", Some("9"), 4, 7).expect("the US dial plan is valid"))
}

fn intake_outcome(bytes: &[u8], parsed: Result<Parsed, IntakeError>) -> Outcome {
    match parsed {
        Ok(Parsed::Event(mut event)) => {
            assert!(!event.call_id.is_empty(), "event without a call id");
            assert!(event.attachment.is_none(), "a pure parse found a side file");
            check_file_stem(&event.safe_call_id());
            crate::enrich::enrich(&mut event, dial_plan(), None);
            serde_json::to_string(&event).expect("an event always serializes");
            Outcome::Accepted(1)
        }
        Ok(Parsed::Skipped(message_type)) => {
            assert!(!message_type.is_empty(), "skipped without a MessageType");
            Outcome::Skipped
        }
        Err(err) => {
            let message = err.to_string();
            assert!(message.starts_with(HEADER_PATH), "intake error does not name the file: {message}");
            check_line(err.line, bytes, &message);
            Outcome::Rejected(err.line)
        }
    }
}

fn directory_outcome(bytes: &[u8], parsed: Result<Vec<Entry>, (usize, SyntaxError)>) -> Outcome {
    match parsed {
        Ok(entries) => {
            let count = entries.len();
            assert!(count <= line_bound(bytes), "{count} entries from {} lines", line_bound(bytes));
            let values = lookup_values(&entries);
            let index = DirectoryIndex::build(entries, dial_plan());
            for value in values {
                let mut party = Party::from_raw(Some(value));
                crate::enrich::resolve_party(&mut party, dial_plan(), Some(&index));
            }
            Outcome::Accepted(count)
        }
        Err((line, problem)) => {
            check_line(Some(line), bytes, &problem.to_string());
            Outcome::Rejected(Some(line))
        }
    }
}

/// The first [`MAX_LOOKUPS`] text values of the export, to be looked up as callers the way
/// a notification's caller id is resolved.
fn lookup_values(entries: &[Entry]) -> Vec<String> {
    let texts = entries.iter().flat_map(|e| &e.attributes).filter_map(|(_, value)| match value {
        directory::Value::Text(text) => Some(text.clone()),
        directory::Value::Binary(_) => None,
    });
    texts.take(MAX_LOOKUPS).collect()
}

/// The name output files get from the call id is one plain, short path component.
fn check_file_stem(stem: &str) {
    let plain = stem.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    assert!(plain && !stem.is_empty() && stem != "." && stem != "..", "unsafe file stem `{stem}`");
    assert!(stem.len() <= crate::event::MAX_STEM_BYTES, "file stem of {} bytes", stem.len());
}

/// One more than the number of line breaks of any kind, counted on the raw bytes (a bound
/// that holds for UTF-8 and UTF-16 alike).
fn line_bound(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n' || b == b'\r').count() + 1
}

fn check_line(line: Option<usize>, bytes: &[u8], message: &str) {
    if let Some(line) = line {
        assert!((1..=line_bound(bytes) + 1).contains(&line), "line {line} is outside the input: {message}");
    }
}
