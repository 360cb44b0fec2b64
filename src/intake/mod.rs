//! Intake: bytes of a UM header file (or a bare OCS `UserNotification` XML file) -> [`Event`].
//!
//! OWNER: intake helper. Public surface agreed with the other stages:
//! - [`read_file`]: read a file (bounded), parse it, find its side file. Used by every command.
//! - [`parse`]: pure parse of bytes already read.

use std::path::{Path, PathBuf};

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

/// Why a file could not be read as an event. Display: `PATH[:LINE]: message`.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {kind}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct IntakeError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub kind: IntakeErrorKind,
}

/// The problem itself.
#[derive(Debug, thiserror::Error)]
pub enum IntakeErrorKind {
    #[error("cannot read file")]
    Io(#[source] std::io::Error),
    #[error("missing MessageType")]
    MissingMessageType,
}

/// Pure parse of bytes already read from `path` (used for messages and the side-file folder).
pub fn parse(_bytes: &[u8], path: &Path, _opts: &IntakeOptions) -> Result<Parsed, IntakeError> {
    Err(IntakeError { path: path.to_owned(), line: None, kind: IntakeErrorKind::MissingMessageType })
}

/// Reads `path` (refusing files over the size limit), parses it and locates its side file.
pub fn read_file(path: &Path, opts: &IntakeOptions) -> Result<Parsed, IntakeError> {
    let bytes = std::fs::read(path)
        .map_err(|e| IntakeError { path: path.to_owned(), line: None, kind: IntakeErrorKind::Io(e) })?;
    parse(&bytes, path, opts)
}
