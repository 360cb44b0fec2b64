//! Header fields (and OCS XML) -> [`Event`]: dispatch on `MessageType`, read every typed
//! field, and collect every invalid or missing value before failing.
//!
//! Consumes a [`Header`] (or a standalone XML text) and the file's path (for the GUID-stem
//! fallback of the call id); produces the [`Parsed`] result and the side file the event
//! needs ([`SideRef`]), without touching the file system. Values go into the event as
//! written, except that control characters are flattened ([`flatten_controls`]): numbers are not
//! normalized, names are not looked up, `ContactInfo` is never decoded. Ids, callers and
//! recipients longer than [`MAX_ID_CHARS`] are invalid. Invalid values become one [`IntakeErrorKind::InvalidFields`] listing all of
//! them in line order; a wrong `MessageType` or bad XML stops at once.

use std::path::Path;

use indexmap::IndexMap;

use super::IntakeOptions;
use super::Parsed;
use super::decode;
use super::error::{FieldProblem, FieldProblemKind, IntakeErrorKind, Problem};
use super::ocs_xml::{self, Notification};
use super::side_file::{self, SideKind, SideRef};
use super::transcript;
use super::um_header::{Field, Header};
use super::values::{self, MAX_ID_CHARS};
use crate::event::{Codec, Event, Importance, Kind, Party, Recipient, flatten_controls};

/// What parsing produced: the result, and the side file it still needs (read_file finds it).
pub(crate) struct Built {
    pub parsed: Parsed,
    pub side: Option<SideRef>,
}

/// How a MessageType is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Voice,
    Missed,
    Ocs,
    Fax,
    Skip,
}

/// Every MessageType known, as Exchange spells it (matched without regard to case).
const MESSAGE_TYPES: [(&str, Class); 11] = [
    ("VoiceMail", Class::Voice),
    ("SMTPVoiceMail", Class::Voice),
    ("MissedCall", Class::Missed),
    ("OCSNotification", Class::Ocs),
    ("Fax", Class::Fax),
    ("HealthCheck", Class::Skip),
    ("CDR", Class::Skip),
    ("IncomingCallLog", Class::Skip),
    ("OutgoingCallLog", Class::Skip),
    ("XSOVoiceMail", Class::Skip),
    ("PartnerTranscriptionRequest", Class::Skip),
];

/// The header keys this stage interprets; all others are only kept in `fields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    MessageType,
    CallerId,
    CallId,
    MessageId,
    SentTime,
    ProcessedCount,
    RecipientName,
    RecipientAddress,
    RecipientCulture,
    CultureInfo,
    RecipientObjectGuid,
    Subject,
    Important,
    Private,
    NdrRequired,
    CallAnswering,
    InComplete,
    AttachmentName,
    AttachmentPath,
    Duration,
    Codec,
    NumberOfPages,
    OcsNotificationData,
    TranscriptionData,
}

const KEYS: [(&str, Key); 24] = [
    ("MessageType", Key::MessageType),
    ("CallerId", Key::CallerId),
    ("CallId", Key::CallId),
    ("MessageID", Key::MessageId),
    ("SentTime", Key::SentTime),
    ("ProcessedCount", Key::ProcessedCount),
    ("RecipientName", Key::RecipientName),
    ("RecipientAddress", Key::RecipientAddress),
    ("RecipientCulture", Key::RecipientCulture),
    ("CultureInfo", Key::CultureInfo),
    ("RecipientObjectGuid", Key::RecipientObjectGuid),
    ("Subject", Key::Subject),
    ("Important", Key::Important),
    ("Private", Key::Private),
    ("NDRRequired", Key::NdrRequired),
    ("CallAnswering", Key::CallAnswering),
    ("InComplete", Key::InComplete),
    ("AttachmentName", Key::AttachmentName),
    ("AttachmentPath", Key::AttachmentPath),
    ("Duration", Key::Duration),
    ("Codec", Key::Codec),
    ("NumberOfPages", Key::NumberOfPages),
    ("OCSNotificationData", Key::OcsNotificationData),
    ("TranscriptionData", Key::TranscriptionData),
];

/// Booleans checked in every notification type though unused: a bad one is a bad file.
const UNUSED_BOOLEANS: [Key; 3] = [Key::NdrRequired, Key::CallAnswering, Key::InComplete];

impl Key {
    fn name(self) -> &'static str {
        KEYS[self as usize].0
    }
}

/// Reads typed values out of the known fields, recording each problem.
struct Reader<'h> {
    known: [Option<Field<'h>>; KEYS.len()],
    problems: Vec<FieldProblem>,
}

impl<'h> Reader<'h> {
    fn new(header: &Header<'h>) -> Reader<'h> {
        let mut known = [None; KEYS.len()];
        for field in &header.fields {
            if let Some((_, key)) = KEYS.iter().find(|(name, _)| name.eq_ignore_ascii_case(field.key)) {
                known[*key as usize] = Some(*field);
            }
        }
        Reader { known, problems: Vec::new() }
    }

    /// The field, if present with a non-empty value.
    fn field(&self, key: Key) -> Option<Field<'h>> {
        self.known[key as usize].filter(|f| !f.value.is_empty())
    }

    /// A value a template may show, cleaned of control characters.
    fn string(&self, key: Key) -> Option<String> {
        self.field(key).map(|f| flatten_controls(f.value).into_owned())
    }

    /// [`Reader::string`] for a value that may reach a mail header: over [`MAX_ID_CHARS`]
    /// characters it is invalid (recorded) and `None`.
    fn bounded(&mut self, key: Key) -> Option<String> {
        let field = self.field(key)?;
        match values::within(field.value, MAX_ID_CHARS) {
            Ok(_) => self.string(key),
            Err(chars) => {
                let kind = FieldProblemKind::TooLong { chars, max: MAX_ID_CHARS };
                let value = Some(values::beginning(field.value));
                self.problems.push(FieldProblem { line: Some(field.line), key: field.key.to_owned(), value, kind });
                None
            }
        }
    }

    fn invalid(&mut self, field: Field<'h>, kind: FieldProblemKind) {
        let value = Some(field.value.to_owned());
        self.problems.push(FieldProblem { line: Some(field.line), key: field.key.to_owned(), value, kind });
    }

    fn missing(&mut self, key: &str, kind: FieldProblemKind) {
        self.problems.push(FieldProblem { line: None, key: key.to_owned(), value: None, kind });
    }

    /// Applies `read` to the field's value; `None` (absent, or invalid and recorded) else.
    fn typed<T>(&mut self, key: Key, kind: FieldProblemKind, read: impl Fn(&str) -> Option<T>) -> Option<T> {
        let field = self.field(key)?;
        let value = read(field.value);
        if value.is_none() {
            self.invalid(field, kind);
        }
        value
    }

    fn bool(&mut self, key: Key) -> Option<bool> {
        self.typed(key, FieldProblemKind::InvalidBool, values::parse_bool)
    }

    /// A required whole number: `Err(())` when missing or invalid (already recorded).
    fn required_uint(&mut self, key: Key) -> Result<u32, ()> {
        if self.field(key).is_none() {
            self.missing(key.name(), FieldProblemKind::Missing);
            return Err(());
        }
        self.typed(key, FieldProblemKind::InvalidInteger, values::parse_uint).ok_or(())
    }

    fn codec(&mut self) -> Option<Codec> {
        if self.field(Key::Codec).is_none() {
            self.missing(Key::Codec.name(), FieldProblemKind::Missing);
        }
        self.typed(Key::Codec, FieldProblemKind::UnknownCodec, values::parse_codec)
    }

    fn checked_str(&mut self, key: Key, kind: FieldProblemKind, valid: fn(&str) -> bool) -> Option<String> {
        self.typed(key, kind, |v| valid(v).then(|| v.to_owned()))
    }

    /// The side file named by `AttachmentPath` (2013) or `AttachmentName` (2007/2010).
    /// `Ok(None)`: absent, empty or `null`. `Err(())`: present but unusable (recorded).
    fn attachment(&mut self, kind: SideKind) -> Result<Option<SideRef>, ()> {
        let Some(field) = self.field(Key::AttachmentPath).or_else(|| self.field(Key::AttachmentName)) else {
            return Ok(None);
        };
        if field.value.eq_ignore_ascii_case("null") {
            return Ok(None);
        }
        let Some(name) = side_file::base_name(field.value) else {
            self.invalid(field, FieldProblemKind::UnusableFileName);
            return Err(());
        };
        if !kind.has_extension(name) {
            let wrong = if kind == SideKind::Wav { FieldProblemKind::NotWav } else { FieldProblemKind::NotTif };
            self.invalid(field, wrong);
            return Err(());
        }
        Ok(Some(SideRef { name: name.to_owned(), line: field.line, kind }))
    }

    /// Every problem, in line order (missing fields last), or nothing.
    fn finish(mut self) -> Result<(), Problem> {
        if self.problems.is_empty() {
            return Ok(());
        }
        self.problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        let line = self.problems[0].line;
        Err(Problem { line, kind: IntakeErrorKind::InvalidFields(self.problems) })
    }
}

/// Builds the event of a header file.
pub(crate) fn from_header(header: &Header<'_>, path: &Path, opts: &IntakeOptions) -> Result<Built, Problem> {
    let mut r = Reader::new(header);
    let message_type = r.field(Key::MessageType).ok_or_else(|| Problem::whole_file(IntakeErrorKind::MissingMessageType))?;
    let class = MESSAGE_TYPES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(message_type.value))
        .map(|(_, class)| *class)
        .ok_or_else(|| Problem::at(message_type.line, IntakeErrorKind::UnknownMessageType { value: message_type.value.to_owned() }))?;
    let notification = match class {
        Class::Skip => return Ok(Built { parsed: Parsed::Skipped(message_type.value.to_owned()), side: None }),
        Class::Ocs => Some(header_xml(header, &r, message_type.line)?),
        Class::Voice | Class::Missed | Class::Fax => None,
    };

    let mut event = common_fields(&mut r, message_type.value, opts);
    event.fields = raw_fields(header, class == Class::Ocs && r.field(Key::OcsNotificationData).is_none());
    if class != Class::Ocs && event.recipient.address.is_none() && r.field(Key::RecipientObjectGuid).is_none() {
        r.missing(Key::RecipientAddress.name(), FieldProblemKind::MissingRecipient);
    }
    let side = match class {
        Class::Voice => voicemail_fields(&mut r, &mut event, opts.low_confidence),
        Class::Fax => fax_fields(&mut r, &mut event),
        Class::Missed | Class::Ocs | Class::Skip => None,
    };
    let header_key = if r.field(Key::CallId).is_some() { Key::CallId } else { Key::MessageId };
    let too_long = r.field(header_key).is_some_and(|f| values::within(f.value, MAX_ID_CHARS).is_err());
    let given = match notification.as_ref().and_then(|n| n.call_id.clone()) {
        Some(id) => Some(id),
        None => r.bounded(header_key),
    };
    match call_id(given, path) {
        Some(id) => event.call_id = id,
        None if too_long => {} // recorded by `bounded`
        None => r.missing(Key::CallId.name(), FieldProblemKind::MissingCallId),
    }
    r.finish()?;
    if let Some(n) = notification {
        apply_notification(&mut event, n);
    }
    Ok(Built { parsed: Parsed::Event(Box::new(event)), side })
}

/// The fields every header type may carry; a missed call has nothing else.
fn common_fields(r: &mut Reader<'_>, message_type: &str, opts: &IntakeOptions) -> Event {
    let important = r.bool(Key::Important);
    let private = r.bool(Key::Private);
    for key in UNUSED_BOOLEANS {
        r.bool(key);
    }
    let _ = r.typed(Key::ProcessedCount, FieldProblemKind::InvalidInteger, values::parse_uint);
    let culture_key = if r.field(Key::RecipientCulture).is_some() { Key::RecipientCulture } else { Key::CultureInfo };
    let mut event = new_event(Kind::MissedCall, message_type.to_owned(), String::new());
    event.time = r.typed(Key::SentTime, FieldProblemKind::InvalidSentTime, |v| values::parse_sent_time(v, &opts.sent_time_zone));
    event.subject = r.string(Key::Subject);
    event.importance = if important == Some(true) { Importance::High } else { Importance::Normal };
    event.private = private == Some(true);
    event.caller = Party::from_raw(r.bounded(Key::CallerId));
    event.recipient = Recipient {
        name: r.bounded(Key::RecipientName),
        address: r.bounded(Key::RecipientAddress),
        culture: r.checked_str(culture_key, FieldProblemKind::InvalidCulture, values::is_culture_name),
        sip: None,
        eum_proxy: None,
        object_guid: r.checked_str(Key::RecipientObjectGuid, FieldProblemKind::InvalidGuid, values::is_guid),
    };
    event
}

/// `Duration`, `Codec`, the Voice Mail Preview (`TranscriptionData`, which never fails the
/// event) and the `.wav` (needed when the duration is over 0 seconds).
fn voicemail_fields(r: &mut Reader<'_>, event: &mut Event, low_confidence: f64) -> Option<SideRef> {
    event.kind = Kind::Voicemail;
    event.transcript = r.field(Key::TranscriptionData).map(|f| transcript::read(f.value, f.line, low_confidence));
    let duration = r.required_uint(Key::Duration);
    event.codec = r.codec();
    let attachment = r.attachment(SideKind::Wav);
    let (Ok(seconds), Ok(side)) = (duration, attachment) else { return None };
    event.duration_secs = Some(seconds);
    if seconds == 0 {
        return None;
    }
    if side.is_none() {
        let legacy = event.message_type.eq_ignore_ascii_case("VoiceMail");
        r.missing(if legacy { "AttachmentName" } else { "AttachmentPath" }, FieldProblemKind::Missing);
    }
    side
}

/// `NumberOfPages` and the `.tif` (always needed).
fn fax_fields(r: &mut Reader<'_>, event: &mut Event) -> Option<SideRef> {
    event.kind = Kind::Fax;
    event.pages = r.required_uint(Key::NumberOfPages).ok();
    let side = r.attachment(SideKind::Tif).ok()?;
    if side.is_none() {
        r.missing(Key::AttachmentPath.name(), FieldProblemKind::Missing);
    }
    side
}

/// Builds the event of a standalone `UserNotification` XML file.
pub(crate) fn from_xml_file(text: &str, path: &Path) -> Result<Built, Problem> {
    let n = ocs_xml::parse(text).map_err(|p| Problem::at(decode::line_at(text, p.offset), p.kind))?;
    let Some(call_id) = call_id(n.call_id.clone(), path) else {
        let missing = FieldProblem { line: None, key: "CallId".into(), value: None, kind: FieldProblemKind::MissingCallId };
        return Err(Problem::whole_file(IntakeErrorKind::InvalidFields(vec![missing])));
    };
    let mut event = new_event(n.kind, "OCSNotification".to_owned(), call_id);
    apply_notification(&mut event, n);
    Ok(Built { parsed: Parsed::Event(Box::new(event)), side: None })
}

/// An event with nothing known yet but its kind, type and call id.
fn new_event(kind: Kind, message_type: String, call_id: String) -> Event {
    Event::new(kind, message_type, call_id)
}

/// The XML of an `OCSNotification` header: `OCSNotificationData`, else the bare XML line.
fn header_xml(header: &Header<'_>, r: &Reader<'_>, type_line: usize) -> Result<Notification, Problem> {
    let (line, xml) = match r.field(Key::OcsNotificationData) {
        Some(f) => (f.line, f.value),
        None => header.bare_xml.ok_or_else(|| Problem::at(type_line, IntakeErrorKind::MissingXml))?,
    };
    ocs_xml::parse(xml).map_err(|p| Problem::at(line + decode::line_at(xml, p.offset) - 1, p.kind))
}

/// The XML's facts win over the header's; the header fills what the XML lacks.
fn apply_notification(event: &mut Event, n: Notification) {
    event.kind = n.kind;
    event.time = n.time.or(event.time);
    if n.subject.is_some() {
        event.subject = n.subject;
    }
    if let Some(priority) = n.priority {
        event.importance = priority;
    }
    if n.from.is_some() {
        event.caller = Party::from_raw(n.from);
    }
    event.target = n.target.map(|t| Party::from_raw(Some(t)));
    event.missed_reason = n.missed_reason;
    let user = n.user.as_str();
    let sip = match user.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("sip:") => &user[4..],
        _ => user,
    };
    event.recipient.sip = Some(sip.to_owned());
    event.recipient.eum_proxy = n.eum_proxy;
    if n.object_guid.is_some() {
        event.recipient.object_guid = n.object_guid;
    }
}

/// The call id: the given one, else the header file's stem when it is a GUID (Exchange
/// names header files `<GUID>.txt`).
fn call_id(given: Option<String>, path: &Path) -> Option<String> {
    given.filter(|id| !id.is_empty()).or_else(|| {
        let stem = path.file_stem()?.to_str()?;
        values::is_guid(stem).then(|| stem.to_owned())
    })
}

/// Every field as written, in file order; a 2010 OCS header's bare XML line is kept under
/// `OCSNotificationData`, where a 2013 header has it.
fn raw_fields(header: &Header<'_>, with_bare_xml: bool) -> IndexMap<String, String> {
    let mut fields = IndexMap::with_capacity(header.fields.len() + 1);
    let mut xml = header.bare_xml.filter(|_| with_bare_xml);
    for f in &header.fields {
        if let Some((_, text)) = xml.filter(|(line, _)| *line < f.line) {
            fields.insert("OCSNotificationData".to_owned(), flatten_controls(text).into_owned());
            xml = None;
        }
        fields.insert(f.key.to_owned(), flatten_controls(f.value).into_owned());
    }
    if let Some((_, text)) = xml {
        fields.insert("OCSNotificationData".to_owned(), flatten_controls(text).into_owned());
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_table_matches_the_enum() {
        for (i, (name, key)) in KEYS.iter().enumerate() {
            assert_eq!(*key as usize, i, "{name}");
            assert_eq!(key.name(), *name);
        }
    }
}
