//! Intake: bytes of a UM header file (or a bare OCS `UserNotification` XML file) -> [`Event`].
//!
//! ```text
//! bytes ─decode─▶ text ─um_header─▶ fields ─build─▶ Event ─side_file─▶ Event + attachment
//!                   └──────(starts with `<`)──ocs_xml──┘        (read_file only)
//! ```
//!
//! - [`read_file`]: reads a file (at most [`MAX_FILE_BYTES`] + 1 bytes), parses it and opens
//!   its side file (`.wav`/`.tif`) in the header's own folder. Both are opened once, without
//!   following a link, and checked by handle; the event's attachment holds the side file's
//!   handle, which is all that is ever read of it. Used by every command.
//! - [`parse`]: the pure parse of bytes already read; it never touches the file system, so
//!   the event's `attachment` stays `None`.
//!
//! The event holds the facts as written: the caller's `raw` id is not normalized (that is
//! enrichment), `ContactInfo` is never decoded, unknown fields are kept in `fields`. Intake
//! never guesses an encoding, never expands XML entities, never reads outside the header's
//! folder, and never panics. Work is linear in the input and bounded: at most
//! [`MAX_FILE_BYTES`], [`MAX_LINES`] lines of at most [`MAX_LINE_BYTES`] (but for the
//! `TranscriptionData` line); ids, numbers,
//! names and addresses of at most [`MAX_ID_CHARS`] characters. Every value a template can
//! show is cleaned with [`crate::event::flatten_controls`] on the way in. Every failure is
//! an [`IntakeError`] naming the file, the line where there is one, and the problem.
//!
//! A voicemail's `TranscriptionData` (the Voice Mail Preview) is read by [`read_transcript`]
//! into `event.transcript`, up to [`MAX_TRANSCRIPT_BYTES`]; XML that cannot be read never
//! fails the file: the transcript says so, for the log.
//!
//! Call id: `CallId` (header) or `Event/CallId` (XML); when absent, the header's `MessageID`,
//! then the file's stem if it is a GUID (Exchange names headers `<GUID>.txt`); else an error,
//! because the call id keys the Message-ID and the output file name.

mod build;
mod decode;
mod error;
mod ocs_xml;
pub(crate) mod open;
mod side_file;
mod transcript;
mod um_header;
mod values;
mod xml;

use std::io::Read;
use std::path::Path;

pub use decode::{MAX_FILE_BYTES, MAX_LINE_BYTES, MAX_LINES};
pub use error::{FieldProblem, FieldProblemKind, IntakeError, IntakeErrorKind};
pub use open::{ReadAt, fill};
pub use side_file::side_file_name;
pub use transcript::{MAX_TRANSCRIPT_BYTES, read as read_transcript};
pub use values::MAX_ID_CHARS;

use crate::event::{Attachment, Event, SideHandle};

/// Options that change how a header is read.
#[derive(Debug, Clone)]
pub struct IntakeOptions {
    /// Zone in which the zone-less `SentTime` (server local time) is read.
    pub sent_time_zone: jiff::tz::TimeZone,
    /// A voice mail preview at or under this confidence is flagged `low_confidence`.
    pub low_confidence: f64,
}

impl Default for IntakeOptions {
    fn default() -> Self {
        IntakeOptions { sent_time_zone: jiff::tz::TimeZone::UTC, low_confidence: crate::event::LOW_CONFIDENCE }
    }
}

/// What a file turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Event(Box<Event>),
    /// Recognised but not a notification (HealthCheck, CDR, XSOVoiceMail, …): the MessageType
    /// as written. It has no side file: nothing it names is opened, and nothing may go with it.
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
/// more), parses it, and opens the side file it names in the same folder. The header is
/// opened without following a link and must be a regular file. A voicemail longer than 0
/// seconds or a fax fails when its side file is missing, not a regular file of its own, or
/// not RIFF/WAVE or TIFF.
pub fn read_file(path: &Path, opts: &IntakeOptions) -> Result<Parsed, IntakeError> {
    let bytes = read_header_bytes(path)?;
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

/// The bytes of the header file at `path`, opened once without following a link, checked to
/// be a regular file, and read to at most [`MAX_FILE_BYTES`] + 1 bytes (so an oversized file
/// is told by its length, never read whole).
pub fn read_header_bytes(path: &Path) -> Result<Vec<u8>, IntakeError> {
    let fail = |kind| IntakeError { path: path.to_owned(), line: None, kind };
    let file = match open::open(path) {
        Ok(file) => file,
        Err(e) if open::is_not_a_file(&e) => return Err(fail(IntakeErrorKind::NotRegularFile)),
        Err(e) => return Err(fail(IntakeErrorKind::Io(e))),
    };
    let meta = file.metadata().map_err(|e| fail(IntakeErrorKind::Io(e)))?;
    if !meta.is_file() {
        return Err(fail(IntakeErrorKind::NotRegularFile));
    }
    let limit = MAX_FILE_BYTES as u64 + 1;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len().min(limit)).unwrap_or(MAX_FILE_BYTES));
    file.take(limit).read_to_end(&mut bytes).map_err(|e| fail(IntakeErrorKind::Io(e)))?;
    Ok(bytes)
}

/// The open handle of `attachment`: the one intake opened, else the file opened again from
/// the attachment's folder with the same checks (for an event built without a handle).
/// `path` names the input in errors.
pub fn side_handle(attachment: &Attachment, path: &Path) -> Result<SideHandle, IntakeError> {
    match &attachment.opened {
        Some(handle) => Ok(handle.clone()),
        None => side_file::reopen(attachment).map_err(|kind| IntakeError { path: path.to_owned(), line: None, kind }),
    }
}

#[cfg(test)]
mod tests;
