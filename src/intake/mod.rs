//! Intake: bytes of a UM header file (or a bare OCS `UserNotification` XML file) -> [`Event`].
//!
//! ```text
//! bytes ─decode─▶ text ─um_header─▶ fields ─build─▶ Event ─side_file─▶ Event + attachment
//!                   └──────(starts with `<`)──ocs_xml──┘        (read_file only)
//! ```
//!
//! - [`read_file`]: reads a file (at most [`MAX_FILE_BYTES`] + 1 bytes), parses it and finds
//!   its side file (`.wav`/`.tif`) in the header's own folder. Used by every command.
//! - [`parse`]: the pure parse of bytes already read; it never touches the file system, so
//!   the event's `attachment` stays `None`.
//!
//! The event holds the facts as written: the caller's `raw` id is not normalized (that is
//! enrichment), `ContactInfo` is never decoded, unknown fields are kept in `fields`. Intake
//! never guesses an encoding, never expands XML entities, never reads outside the header's
//! folder, and never panics. Every failure is an [`IntakeError`] naming the file, the line
//! where there is one, and the problem.
//!
//! Call id: `CallId` (header) or `Event/CallId` (XML); when absent, the header's `MessageID`,
//! then the file's stem if it is a GUID (Exchange names headers `<GUID>.txt`); else an error,
//! because the call id keys the Message-ID and the output file name.

mod build;
mod decode;
mod error;
mod ocs_xml;
mod side_file;
mod um_header;
mod values;

use std::io::Read;
use std::path::Path;

pub use decode::{MAX_FILE_BYTES, MAX_LINE_BYTES};
pub use error::{FieldProblem, FieldProblemKind, IntakeError, IntakeErrorKind};

use crate::event::Event;

/// Options that change how a header is read.
#[derive(Debug, Clone)]
pub struct IntakeOptions {
    /// Zone in which the zone-less `SentTime` (server local time) is read.
    pub sent_time_zone: jiff::tz::TimeZone,
}

impl Default for IntakeOptions {
    fn default() -> Self {
        IntakeOptions { sent_time_zone: jiff::tz::TimeZone::UTC }
    }
}

/// What a file turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Event(Box<Event>),
    /// Recognised but not a notification (HealthCheck, CDR, …): the MessageType as written.
    Skipped(String),
}

/// Pure parse of bytes already read from `path` (the path names the file in errors and
/// gives the GUID-stem fallback for the call id). Does not look for the side file.
pub fn parse(bytes: &[u8], path: &Path, opts: &IntakeOptions) -> Result<Parsed, IntakeError> {
    parse_built(bytes, path, opts).map(|built| built.parsed)
}

fn parse_built(bytes: &[u8], path: &Path, opts: &IntakeOptions) -> Result<build::Built, IntakeError> {
    let fail = |problem: error::Problem| problem.into_error(path);
    let text = decode::decode(bytes).map_err(fail)?;
    if text.trim_start().starts_with('<') {
        return build::from_xml_file(&text, path).map_err(fail);
    }
    let header = um_header::read(&text).map_err(fail)?;
    build::from_header(&header, path, opts).map_err(fail)
}

/// Reads `path` (refusing files over [`MAX_FILE_BYTES`] after reading at most one byte
/// more), parses it, and finds the side file it names in the same folder. A voicemail with
/// `Duration` > 0 or a fax whose side file is missing, or is not RIFF/WAVE or TIFF, fails.
pub fn read_file(path: &Path, opts: &IntakeOptions) -> Result<Parsed, IntakeError> {
    let io = |e| IntakeError { path: path.to_owned(), line: None, kind: IntakeErrorKind::Io(e) };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let limit = MAX_FILE_BYTES as u64 + 1;
    let mut bytes = Vec::with_capacity(usize::try_from(size.min(limit)).unwrap_or(MAX_FILE_BYTES));
    file.take(limit).read_to_end(&mut bytes).map_err(io)?;

    let built = parse_built(&bytes, path, opts)?;
    match (built.parsed, built.side) {
        (Parsed::Event(mut event), Some(side)) => {
            let attachment = side_file::locate(path, &side).map_err(|p| p.into_error(path))?;
            event.attachment = Some(attachment);
            Ok(Parsed::Event(event))
        }
        (parsed, _) => Ok(parsed),
    }
}

#[cfg(test)]
mod tests;
