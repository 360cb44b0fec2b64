//! The intake error: which file, which line, what is wrong with it.
//!
//! Consumes nothing; produces [`IntakeError`] (displayed `PATH[:LINE]: message`, one line per
//! problem) and its parts. Decisions are made on [`IntakeErrorKind`] and
//! [`FieldProblemKind`], never on message text. Underlying causes (I/O, XML syntax) stay
//! reachable through [`std::error::Error::source`] instead of being copied into the message.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a file could not be read as an event. Display: `PATH[:LINE]: message`; a file with
/// several invalid field values shows one such line per problem.
#[derive(Debug)]
pub struct IntakeError {
    pub path: PathBuf,
    /// 1-based line of the problem, where there is one.
    pub line: Option<usize>,
    pub kind: IntakeErrorKind,
}

impl IntakeError {
    /// True when reading again later may succeed (I/O trouble, e.g. a file still locked or
    /// being written); false when the file itself is bad and will stay bad.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, IntakeErrorKind::Io(_) | IntakeErrorKind::SideFileIo { .. })
    }
}

fn write_located(f: &mut fmt::Formatter<'_>, path: &Path, line: Option<usize>) -> fmt::Result {
    match line {
        Some(line) => write!(f, "{}:{line}: ", path.display()),
        None => write!(f, "{}: ", path.display()),
    }
}

impl fmt::Display for IntakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let IntakeErrorKind::InvalidFields(problems) = &self.kind {
            for (i, problem) in problems.iter().enumerate() {
                if i > 0 {
                    f.write_str("\n")?;
                }
                write_located(f, &self.path, problem.line)?;
                write!(f, "{problem}")?;
            }
            if !problems.is_empty() {
                return Ok(());
            }
        }
        write_located(f, &self.path, self.line)?;
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for IntakeError {
    /// The cause of the kind (an I/O or XML error), not the kind itself: the kind's text is
    /// already part of this error's message.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

/// The problem itself.
#[derive(Debug, thiserror::Error)]
pub enum IntakeErrorKind {
    // --- reading and decoding ------------------------------------------------------------
    #[error("cannot read file")]
    Io(#[source] std::io::Error),
    #[error("file too large: over {limit} bytes")]
    FileTooLarge { limit: usize },
    #[error("empty file")]
    Empty,
    #[error("unsupported encoding {encoding}: only UTF-8 and UTF-16 with a byte-order mark are read")]
    UnsupportedEncoding { encoding: &'static str },
    #[error("not text: invalid UTF-8 at byte {offset}")]
    InvalidUtf8 { offset: usize },
    #[error("not text: invalid UTF-16 at byte {offset}")]
    InvalidUtf16 { offset: usize },
    #[error("encoding not detectable: NUL character in text (UTF-16 needs a byte-order mark)")]
    NulCharacter,
    #[error("line too long: over {limit} bytes")]
    LineTooLong { limit: usize },
    #[error("too many lines: over {limit}")]
    TooManyLines { limit: usize },
    #[error("not a regular file (a link, folder, FIFO or device is never read)")]
    NotRegularFile,

    // --- header grammar and fields ---------------------------------------------------------
    #[error("duplicate key `{key}` (first on line {first_line})")]
    DuplicateKey { key: String, first_line: usize },
    #[error("missing MessageType")]
    MissingMessageType,
    #[error("unknown MessageType `{value}`")]
    UnknownMessageType { value: String },
    /// Every invalid or missing field value, in line order (missing ones last).
    #[error("{}", summarize(.0))]
    InvalidFields(Vec<FieldProblem>),
    #[error("OCSNotification without XML: no OCSNotificationData and no line starting with `<`")]
    MissingXml,

    // --- OCS UserNotification XML ----------------------------------------------------------
    #[error("DTD not allowed in OCS XML (`<!DOCTYPE …>`); entities are never expanded")]
    DtdNotAllowed,
    #[error("undefined entity `&{name};` in OCS XML")]
    UndefinedEntity { name: String },
    #[error("malformed XML")]
    MalformedXml(#[source] quick_xml::Error),
    #[error("malformed XML: unexpected end of input inside `<{inside}>`")]
    XmlUnexpectedEnd { inside: String },
    #[error("malformed XML: content outside the root element")]
    XmlOutsideRoot,
    #[error("root element is `<{found}>`, expected `<UserNotification>`")]
    WrongRootElement { found: String },
    #[error("duplicate element `<{name}>` in OCS XML")]
    DuplicateElement { name: &'static str },
    #[error("missing element `<{name}>` in OCS XML")]
    MissingElement { name: &'static str },
    #[error("missing event type: `<Event>` has no `type` attribute")]
    MissingEventType,
    #[error("unknown event type `{value}` (expected missed, answered or forbidden)")]
    UnknownEventType { value: String },
    #[error("answered event without `<TargetClass>` (Primary or Secondary)")]
    MissingTargetClass,
    #[error("unknown TargetClass `{value}` (expected Primary or Secondary)")]
    UnknownTargetClass { value: String },
    #[error("unknown Priority `{value}` (expected normal, urgent, emergency or non-urgent)")]
    UnknownPriority { value: String },
    #[error("invalid Time `{value}` (expected yyyy-MM-dd HH:mm:ssZ)")]
    InvalidTime { value: String },
    #[error("`<{name}>` in OCS XML is too long: {chars} characters (at most {max})")]
    XmlValueTooLong { name: &'static str, chars: usize, max: usize },

    // --- the side file ---------------------------------------------------------------------
    #[error("side file `{name}` not found in {}", dir.display())]
    SideFileMissing { name: String, dir: PathBuf },
    #[error("side file `{name}` is not a regular file")]
    SideFileNotRegular { name: String },
    #[error("side file `{name}` has {links} names (hard links); only a file of its own is attached")]
    SideFileLinked { name: String, links: u64 },
    #[error("side file `{name}` is not a {expected} file (its first bytes do not match)")]
    SideFileWrongMagic { name: String, expected: &'static str },
    #[error("cannot read side file `{name}`")]
    SideFileIo {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

fn summarize(problems: &[FieldProblem]) -> String {
    match problems {
        [] => "invalid field values".to_owned(),
        [only] => only.to_string(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    }
}

/// One invalid or missing header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// Line of the field; none for a field that is missing.
    pub line: Option<usize>,
    /// The key as written (or, when missing, as Exchange spells it).
    pub key: String,
    /// The offending value as written (trimmed); none for a missing field.
    pub value: Option<String>,
    pub kind: FieldProblemKind,
}

/// What is wrong with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldProblemKind {
    /// Not `True`/`False` (any case).
    InvalidBool,
    /// Not a non-negative whole number.
    InvalidInteger,
    /// Not one of `Gsm`, `G711`, `Wma`, `Mp3`.
    UnknownCodec,
    /// Not shaped like a .NET culture name (`en-US`, `zh-Hans-CN`).
    InvalidCulture,
    /// Not a GUID (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`).
    InvalidGuid,
    /// `SentTime` not `MM/dd/yyyy HH:mm:ss`.
    InvalidSentTime,
    /// The attachment is not a `.wav` (voicemail) file.
    NotWav,
    /// The attachment is not a `.tif` (fax) file.
    NotTif,
    /// The attachment's base name is empty, `.`, `..` or has control characters.
    UnusableFileName,
    /// A field the message type requires is absent or empty.
    Missing,
    /// Neither `RecipientAddress` nor `RecipientObjectGuid`: nobody to notify.
    MissingRecipient,
    /// No `CallId`, no `MessageID`, and the file name is not a GUID.
    MissingCallId,
    /// Longer than the field allows (the value kept in the problem is cut short).
    TooLong { chars: usize, max: usize },
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        let value = self.value.as_deref().unwrap_or("");
        match self.kind {
            FieldProblemKind::InvalidBool => {
                write!(f, "invalid boolean `{value}` for {key} (expected True or False)")
            }
            FieldProblemKind::InvalidInteger => {
                write!(f, "invalid whole number `{value}` for {key}")
            }
            FieldProblemKind::UnknownCodec => {
                write!(f, "unknown codec `{value}` for {key} (expected Gsm, G711, Wma or Mp3)")
            }
            FieldProblemKind::InvalidCulture => {
                write!(f, "invalid culture name `{value}` for {key} (expected e.g. en-US)")
            }
            FieldProblemKind::InvalidGuid => write!(f, "invalid GUID `{value}` for {key}"),
            FieldProblemKind::InvalidSentTime => {
                write!(f, "invalid time `{value}` for {key} (expected MM/dd/yyyy HH:mm:ss)")
            }
            FieldProblemKind::NotWav => write!(f, "attachment `{value}` in {key} is not a .wav file"),
            FieldProblemKind::NotTif => write!(f, "attachment `{value}` in {key} is not a .tif file"),
            FieldProblemKind::UnusableFileName => {
                write!(f, "unusable attachment file name in {key}: `{value}`")
            }
            FieldProblemKind::Missing => write!(f, "missing {key}"),
            FieldProblemKind::MissingRecipient => f.write_str("missing RecipientAddress or RecipientObjectGuid: nobody to notify"),
            FieldProblemKind::MissingCallId => f.write_str("missing CallId (no MessageID either, and the file name is not a GUID)"),
            FieldProblemKind::TooLong { chars, max } => {
                write!(f, "{key} is too long: {chars} characters (at most {max}), starting `{value}`")
            }
        }
    }
}

/// A problem found while parsing, before the path is attached.
#[derive(Debug)]
pub(crate) struct Problem {
    pub line: Option<usize>,
    pub kind: IntakeErrorKind,
}

impl Problem {
    pub(crate) fn at(line: usize, kind: IntakeErrorKind) -> Problem {
        Problem { line: Some(line), kind }
    }

    pub(crate) fn whole_file(kind: IntakeErrorKind) -> Problem {
        Problem { line: None, kind }
    }

    pub(crate) fn into_error(self, path: &Path) -> IntakeError {
        IntakeError { path: path.to_owned(), line: self.line, kind: self.kind }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(line: Option<usize>, key: &str, value: Option<&str>, kind: FieldProblemKind) -> FieldProblem {
        FieldProblem { line, key: key.into(), value: value.map(Into::into), kind }
    }

    #[test]
    fn located_display() {
        let e = IntakeError { path: "a/b.txt".into(), line: Some(4), kind: IntakeErrorKind::MissingEventType };
        assert_eq!(e.to_string(), "a/b.txt:4: missing event type: `<Event>` has no `type` attribute");
        let e = IntakeError { path: "a/b.txt".into(), line: None, kind: IntakeErrorKind::Empty };
        assert_eq!(e.to_string(), "a/b.txt: empty file");
    }

    #[test]
    fn several_field_problems_one_per_line() {
        let kind = IntakeErrorKind::InvalidFields(vec![
            problem(Some(3), "NDRRequired", Some("No"), FieldProblemKind::InvalidBool),
            problem(None, "Codec", None, FieldProblemKind::Missing),
        ]);
        assert_eq!(kind.to_string(), "invalid boolean `No` for NDRRequired (expected True or False) (and 1 more)");
        let e = IntakeError { path: "x.txt".into(), line: Some(3), kind };
        assert_eq!(e.to_string(), "x.txt:3: invalid boolean `No` for NDRRequired (expected True or False)\nx.txt: missing Codec");
    }

    #[test]
    fn source_is_the_cause_not_the_kind() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let e = IntakeError { path: "x".into(), line: None, kind: IntakeErrorKind::Io(io) };
        assert!(e.is_transient());
        assert_eq!(std::error::Error::source(&e).map(|s| s.to_string()), Some("denied".into()));
        let e = IntakeError { path: "x".into(), line: None, kind: IntakeErrorKind::Empty };
        assert!(!e.is_transient());
        assert!(std::error::Error::source(&e).is_none());
    }
}
