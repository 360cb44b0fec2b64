//! Compose: an enriched [`Event`] and its [`Rendered`] parts -> a `lettre::Message`.
//!
//! The message is `multipart/mixed[ multipart/alternative[text, html], side file ]` (or just
//! the alternative part when there is no side file), with:
//! - `Date`: when the message is composed (or the caller's fixed date, for reproducible
//!   output). Never the call time: a notification sent late (after an outage, from a late
//!   header file) must not look stale to spam filters (`DATE_IN_PAST_*`). The call time is in
//!   the body, the template context and `X-Callnote-Call-Time` (RFC 3339, UTC);
//! - a `Message-ID` per notification ([`NotificationId`]: call id + recipient + kind), the
//!   same for every resend (the relay and Exchange dedup by it), different for each member
//!   of a team call;
//! - `Importance` for high and low importance (what Exchange and Outlook read; no
//!   `X-Priority`, which spam filters score on unsigned mail), `Sensitivity: Private` for
//!   private voicemail;
//! - the Outlook UM headers of [MS-OXCMAIL] (`X-CallingTelephoneNumber`,
//!   `X-VoiceMessageSenderName`, `X-VoiceMessageDuration`, `X-CallID`, `X-FaxNumberOfPages`)
//!   and `Content-Class`, so Outlook shows the familiar voice mail form.
//!
//! - `X-Callnote-Transcript-Confidence` (`low`, `medium`, `high`) when the mail shows a voice
//!   mail preview, so a mail rule can sort out the unsure ones.
//!
//! [`mark_as_test`] turns a composed message into a test message (fresh Message-ID, dated
//! now, `X-Callnote-Test: yes`).
//!
//! No MIME is written by hand: lettre encodes every header (RFC 2047 for non-ASCII) and folds
//! it at spaces. Every value from the event is first made one line ([`one_line`]: control
//! characters flattened) and cut to [`MAX_HEADER_VALUE`] bytes, so nothing from an input can
//! start a header line of its own, and no header line passes 998 bytes (RFC 5322 §2.1.1)
//! even when a value has no space to fold at.
//! The part bodies are transfer-encoded by [`transfer`] (one pass each, for speed) and handed
//! to lettre ready. Compose never reads files: the side file comes in encoded ([`AttachmentBody`]).

mod transfer;

pub use transfer::AttachmentBody;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, MultiPartBuilder, SinglePart};
use sha2::{Digest, Sha256};

use crate::event::{ConfidenceBand, Event, Importance, Kind, flatten_controls};
use crate::render::Rendered;

/// Why a message could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("recipient has no mail address{}", hint(.0))]
    NoRecipientAddress(Option<String>),
    #[error("recipient address `{address}` is not a valid mailbox")]
    BadRecipientAddress {
        address: String,
        #[source]
        source: lettre::address::AddressError,
    },
    #[error("recipient address is too long: {0} bytes (at most 254)")]
    RecipientAddressTooLong(usize),
    #[error("content type `{0}` of the side file is not valid")]
    BadContentType(String),
    #[error("cannot build the message")]
    Build(#[source] lettre::error::Error),
}

fn hint(guid: &Option<String>) -> String {
    match guid {
        Some(g) => format!(" (RecipientObjectGuid {g} not found in the directory)"),
        None => String::new(),
    }
}

/// Settings that do not come from the event.
#[derive(Debug, Clone)]
pub struct ComposeSettings {
    pub from: Mailbox,
    /// Fixed `Date` for reproducible output (`--date`, `SOURCE_DATE_EPOCH`); none: now.
    pub fixed_date: Option<jiff::Timestamp>,
}

/// What makes one notification: the call, the mailbox it is for and what kind of notice it
/// is. A team call notifies every member under one call id; each member's notification has
/// its own id. The same notification composed again (a resend, Exchange's retry file) has
/// the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationId<'a> {
    pub call_id: &'a str,
    /// The recipient's mail address (compared without case and surrounding space).
    pub recipient: &'a str,
    pub kind: Kind,
}

/// The longest call id and recipient kept in a file name (the rest is cut).
const STEM_PART: usize = 64;

impl<'a> NotificationId<'a> {
    /// The id of the notification `event` becomes.
    pub fn of(event: &'a Event) -> NotificationId<'a> {
        NotificationId { call_id: &event.call_id, recipient: event.recipient.address.as_deref().unwrap_or(""), kind: event.kind }
    }

    /// 32 hex digits of SHA-256 over the three parts (each length-prefixed, so no two
    /// different triples hash the same input): the token behind Message-ID and boundaries.
    fn token(&self) -> String {
        let recipient = self.recipient.trim().to_lowercase();
        let mut hasher = Sha256::new();
        for part in [self.call_id, &recipient, self.kind.as_str()] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hex32(&hasher.finalize())
    }

    /// `<callnote.` + the token + `@domain>`, where the domain is the From address's.
    /// Stable across runs and machines.
    pub fn message_id(&self, from: &Mailbox) -> String {
        message_id_from_token(&self.token(), from)
    }

    /// The file name (without `.eml`) the file transports and `render --out` use:
    /// `<call id>-<recipient>-<kind>`, each part made safe for a file name (anything but
    /// letters, digits, `.`, `_`, `-` becomes `_`; `@` too) and cut to 64 characters.
    pub fn file_stem(&self) -> String {
        let part = |text: &str| {
            let mut safe = crate::event::safe_file_stem(text.trim());
            safe.truncate(STEM_PART);
            safe
        };
        format!("{}-{}-{}", part(self.call_id), part(&self.recipient.to_lowercase()), self.kind.as_str())
    }
}

fn hex32(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut token = String::with_capacity(32);
    for &b in &digest[..16] {
        token.push(char::from(HEX[usize::from(b >> 4)]));
        token.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    token
}

fn message_id_from_token(token: &str, from: &Mailbox) -> String {
    format!("<callnote.{token}@{}>", from.email.domain())
}

/// Makes `message` a test message: a fresh Message-ID on every call (a second test must not
/// be dropped as a duplicate of the first), `Date` now, and `X-Callnote-Test: yes` so a
/// reader (or a transport rule) can tell it from a real notification.
pub fn mark_as_test(message: &mut Message, from: &Mailbox) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now();
    let nanos = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let mut hasher = Sha256::new();
    hasher.update(message.headers().get_raw("Message-ID").unwrap_or_default().as_bytes());
    hasher.update(nanos.to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let id = format!("<callnote-test.{}@{}>", hex32(&hasher.finalize()), from.email.domain());
    let headers = message.headers_mut();
    headers.set(lettre::message::header::MessageId::from(id));
    headers.set(lettre::message::header::Date::new(now));
    headers.insert_raw(raw_header("X-Callnote-Test", "yes"));
}

/// Longest header value written, in bytes: with the longest header name we write and its
/// `: `, a value that cannot be folded (one long word) still fits a 998-byte line.
pub const MAX_HEADER_VALUE: usize = 900;
/// Longest display name in `To`, in bytes (quoting may double it).
const MAX_DISPLAY_NAME: usize = 256;
/// Longest mailbox address (RFC 5321 §4.5.3.1.3: a path of 256 octets with its `<>`).
const MAX_ADDRESS: usize = 254;

/// A header value: control characters (CR, LF, TAB, bidi overrides, …) flattened to spaces,
/// trimmed, and cut to [`MAX_HEADER_VALUE`] bytes.
fn one_line(value: &str) -> String {
    cut(flatten_controls(value).trim(), MAX_HEADER_VALUE)
}

/// `value` cut to at most `max` bytes at a character boundary, ending in `…` when cut.
fn cut(value: &str, max: usize) -> String {
    if value.len() <= max {
        return value.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}

fn raw_header(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), one_line(value))
}

/// `Content-Class` per [MS-OXCMAIL]; `None` leaves the default `IPM.Note`.
fn content_class(event: &Event) -> Option<&'static str> {
    match event.kind {
        Kind::Voicemail => {
            // CallAnswering False: composed by the owner through Outlook Voice Access.
            let composed_by_owner =
                event.fields.iter().any(|(k, v)| k.eq_ignore_ascii_case("CallAnswering") && v.trim().eq_ignore_ascii_case("false"));
            Some(if composed_by_owner { "voice" } else { "voice-ca" })
        }
        Kind::MissedCall | Kind::MissedCallDigest => Some("missedcall"),
        Kind::CallForwarded | Kind::TeamPickup => Some("voice-uc"),
        Kind::Fax => Some("fax-ca"),
        Kind::CallNotForwarded => None,
    }
}

/// How sure the voice mail preview shown in the mail is: `low` whenever the mail carries the
/// low-confidence notice, else the band; `None` when no preview is shown.
fn transcript_confidence(event: &Event) -> Option<&'static str> {
    let transcript = event.transcript.as_ref().filter(|t| !t.failed)?;
    Some(match (transcript.low_confidence, transcript.band) {
        (true, _) | (false, ConfidenceBand::Low) => "low",
        (false, ConfidenceBand::Medium) => "medium",
        (false, ConfidenceBand::High) => "high",
    })
}

fn to_system_time(ts: jiff::Timestamp) -> SystemTime {
    let secs = ts.as_second();
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// A `multipart/<subtype>` builder with `boundary`, made in one step: lettre's
/// `MultiPart::alternative().boundary(..)` first makes a random boundary, then reads its own
/// header back to replace it (about 9,000 instructions a message). The header written is the
/// same.
fn multipart(subtype: &str, boundary: &str) -> Result<MultiPartBuilder, ComposeError> {
    let content_type = format!("multipart/{subtype}; boundary=\"{boundary}\"");
    let parsed = ContentType::parse(&content_type).map_err(|_| ComposeError::BadContentType(content_type.clone()))?;
    Ok(MultiPart::builder().header(parsed))
}

/// Builds the message. `side_file` is the attachment's content when the event has one (under
/// the side file's name and type unless it names its own).
pub fn compose(
    event: &Event,
    rendered: &Rendered,
    settings: &ComposeSettings,
    side_file: Option<AttachmentBody>,
) -> Result<Message, ComposeError> {
    let address = event
        .recipient
        .address
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ComposeError::NoRecipientAddress(event.recipient.object_guid.clone()))?;
    if address.len() > MAX_ADDRESS {
        return Err(ComposeError::RecipientAddressTooLong(address.len()));
    }
    let email = address.parse().map_err(|source| ComposeError::BadRecipientAddress { address: address.to_owned(), source })?;
    let name = event.recipient.name.as_deref().map(|n| cut(&one_line(n), MAX_DISPLAY_NAME)).filter(|n| !n.is_empty());
    let to = Mailbox::new(name, email);

    // Given explicitly, so lettre does not parse From and To back out of the headers.
    let envelope =
        lettre::address::Envelope::new(Some(settings.from.email.clone()), vec![to.email.clone()]).map_err(ComposeError::Build)?;
    // Boundaries derived from the notification (not random) keep the output reproducible.
    let token = NotificationId::of(event).token();
    let date = settings.fixed_date.map(to_system_time).unwrap_or_else(SystemTime::now);
    let mut builder = Message::builder()
        .from(settings.from.clone())
        .to(to)
        .subject(one_line(&rendered.subject))
        .date(date)
        .message_id(Some(message_id_from_token(&token, &settings.from)))
        .envelope(envelope)
        .raw_header(raw_header("X-CallID", &event.call_id))
        .raw_header(raw_header("X-Mailer", concat!("callnote ", env!("CARGO_PKG_VERSION"))));

    if let Some(time) = event.time {
        builder = builder.raw_header(raw_header("X-Callnote-Call-Time", &time.to_string()));
    }
    match event.importance {
        Importance::High => builder = builder.raw_header(raw_header("Importance", "high")),
        Importance::Low => builder = builder.raw_header(raw_header("Importance", "low")),
        Importance::Normal => {}
    }
    if event.private {
        builder = builder.raw_header(raw_header("Sensitivity", "Private"));
    }
    if let Some(class) = content_class(event) {
        builder = builder.raw_header(raw_header("Content-Class", class));
    }
    let caller = &event.caller;
    if let Some(number) = caller.e164.as_deref().or(caller.sip.as_deref()).or(caller.extension.as_deref()).or(caller.raw.as_deref()) {
        builder = builder.raw_header(raw_header("X-CallingTelephoneNumber", number));
    }
    if let Some(name) = caller.name.as_deref() {
        builder = builder.raw_header(raw_header("X-VoiceMessageSenderName", name));
    }
    if let Some(secs) = event.duration_secs {
        builder = builder.raw_header(raw_header("X-VoiceMessageDuration", &secs.to_string()));
    }
    if let Some(pages) = event.pages {
        builder = builder.raw_header(raw_header("X-FaxNumberOfPages", &pages.to_string()));
    }
    if let Some(confidence) = transcript_confidence(event) {
        builder = builder.raw_header(raw_header("X-Callnote-Transcript-Confidence", confidence));
    }

    let alternative = multipart("alternative", &format!("=_callnote_alt_{token}"))?
        .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(transfer::text(&rendered.text)))
        .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(transfer::text(&rendered.html)));
    let body = match (&event.attachment, side_file) {
        (Some(att), Some(side)) => {
            let content_type = side.content_type.unwrap_or(&att.content_type);
            let content_type = ContentType::parse(content_type).map_err(|_| ComposeError::BadContentType(content_type.to_owned()))?;
            let file_name = side.file_name.unwrap_or_else(|| att.file_name.clone());
            multipart("mixed", &format!("=_callnote_mix_{token}"))?
                .multipart(alternative)
                .singlepart(Attachment::new(file_name).body(side.body, content_type))
        }
        _ => alternative,
    };
    builder.multipart(body).map_err(ComposeError::Build)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id<'a>(call_id: &'a str, recipient: &'a str, kind: Kind) -> NotificationId<'a> {
        NotificationId { call_id, recipient, kind }
    }

    #[test]
    fn message_id_is_stable_and_one_per_notification() {
        let from: Mailbox = "Voice Mail <vm@contoso.com>".parse().unwrap();
        let a = id("not-a-guid}{1234", "amara.okafor@contoso.com", Kind::MissedCall).message_id(&from);
        assert_eq!(
            a,
            id("not-a-guid}{1234", " Amara.Okafor@contoso.com ", Kind::MissedCall).message_id(&from),
            "case and space do not count"
        );
        assert!(a.starts_with("<callnote.") && a.ends_with("@contoso.com>"));
        assert_eq!(a.len(), "<callnote.".len() + 32 + "@contoso.com>".len());
        let others = [
            id("other", "amara.okafor@contoso.com", Kind::MissedCall),
            id("not-a-guid}{1234", "olivia.chen@contoso.com", Kind::MissedCall),
            id("not-a-guid}{1234", "amara.okafor@contoso.com", Kind::Voicemail),
            // Length-prefixed parts: moving text from one part to the next changes the id.
            id("not-a-guid}{1234a", "mara.okafor@contoso.com", Kind::MissedCall),
        ];
        for other in others {
            assert_ne!(a, other.message_id(&from), "{other:?}");
        }
    }

    #[test]
    fn file_stem_names_call_recipient_and_kind_safely() {
        assert_eq!(
            id("6e838afc-7d1a-4ad5-b1e3-fde1990e11e7", "Hannah.Whitaker@contoso.com", Kind::MissedCall).file_stem(),
            "6e838afc-7d1a-4ad5-b1e3-fde1990e11e7-hannah.whitaker_contoso.com-missed_call"
        );
        assert_eq!(id("../x}{", "", Kind::Fax).file_stem(), ".._x__-_-fax");
        let long = "x".repeat(500);
        assert_eq!(id(&long, &long, Kind::Voicemail).file_stem().len(), 64 + 1 + 64 + 1 + "voicemail".len());
    }

    #[test]
    fn a_test_message_gets_a_fresh_id_a_date_and_a_marker() {
        let from: Mailbox = "Voice Mail <vm@contoso.com>".parse().unwrap();
        let build = || {
            Message::builder()
                .from(from.clone())
                .to("a@contoso.com".parse().unwrap())
                .date(SystemTime::UNIX_EPOCH)
                .message_id(Some("<callnote.x@contoso.com>".into()))
                .body(String::from("x"))
                .unwrap()
        };
        let (mut a, mut b) = (build(), build());
        mark_as_test(&mut a, &from);
        mark_as_test(&mut b, &from);
        let id = |m: &Message| m.headers().get_raw("Message-ID").unwrap().to_owned();
        assert_ne!(id(&a), id(&b));
        assert!(id(&a).starts_with("<callnote-test.") && id(&a).ends_with("@contoso.com>"), "{}", id(&a));
        assert_eq!(a.headers().get_raw("X-Callnote-Test"), Some("yes"));
        let date = a.headers().get::<lettre::message::header::Date>().unwrap();
        let age = SystemTime::now().duration_since(SystemTime::from(date)).unwrap_or_default();
        assert!(age < Duration::from_secs(60), "dated now: {age:?}");
    }

    #[test]
    fn one_line_removes_line_breaks() {
        assert_eq!(one_line("a\r\nBcc: evil@x\t"), "a Bcc: evil@x");
        assert_eq!(one_line("evil\u{202E}txt.exe"), "evil txt.exe");
    }

    #[test]
    fn long_values_are_cut_at_a_character_boundary() {
        assert_eq!(one_line(&"x".repeat(5_000)).len(), MAX_HEADER_VALUE);
        assert!(one_line(&"x".repeat(5_000)).ends_with("x…"));
        let accented = one_line(&"é".repeat(600)); // 1,200 bytes
        assert!(accented.len() <= MAX_HEADER_VALUE && accented.ends_with("é…"), "{}", accented.len());
        assert_eq!(one_line(&"y".repeat(MAX_HEADER_VALUE)), "y".repeat(MAX_HEADER_VALUE));
    }
}
