//! The normalized event: what intake produces, enrichment completes and templates see.
//!
//! `Event` serializes to exactly the JSON template context described in docs/template-context.md (what
//! `callnote parse` prints). Intake fills the raw facts (`raw` of each party, the
//! recipient as written, the header fields); enrichment fills the normalized numbers and
//! the directory outcome. Nothing here does I/O.
//!
//! [`flatten_controls`] is the one cleaning every shown value passes through where it enters
//! an event: header and OCS XML values (intake) and directory attributes (the index). It
//! turns line breaks, other control characters and bidi overrides into a space, so a value
//! can neither start a line of its own in a mail nor reorder the text around it.

use std::borrow::Cow;
use std::path::PathBuf;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

mod transcript;

pub use transcript::{
    ConfidenceBand, HIGH_CONFIDENCE, LOW_CONFIDENCE, PartKind, RecognitionError, RecognitionResult, Transcript, TranscriptPart,
    TranscriptProblem,
};

/// What kind of notification an event becomes (`kind` in docs/template-context.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Voicemail,
    MissedCall,
    CallForwarded,
    TeamPickup,
    CallNotForwarded,
    Fax,
    /// Further missed calls of one caller, held by the relay and sent as one mail
    /// ([`Event::digest`]). No input file is ever of this kind.
    MissedCallDigest,
}

impl Kind {
    /// Every kind, in a stable order (template folders, samples, `check`).
    pub const ALL: [Kind; 7] = [
        Kind::Voicemail,
        Kind::MissedCall,
        Kind::CallForwarded,
        Kind::TeamPickup,
        Kind::CallNotForwarded,
        Kind::Fax,
        Kind::MissedCallDigest,
    ];

    /// The snake_case name used in JSON and as the template folder name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Voicemail => "voicemail",
            Kind::MissedCall => "missed_call",
            Kind::CallForwarded => "call_forwarded",
            Kind::TeamPickup => "team_pickup",
            Kind::CallNotForwarded => "call_not_forwarded",
            Kind::Fax => "fax",
            Kind::MissedCallDigest => "missed_call_digest",
        }
    }

    /// Parses the snake_case name (`--kind missed_call`).
    pub(crate) fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Importance of the notification (header `Important`, OCS `Priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Importance {
    High,
    #[default]
    Normal,
    Low,
}

/// The dial plan's audio codec as Exchange writes it (`Codec : Gsm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Codec {
    Gsm,
    G711,
    Wma,
    Mp3,
}

impl Codec {
    /// Exact, case-sensitive name as Exchange writes it (`ToString("g")`).
    pub(crate) fn from_name(name: &str) -> Option<Codec> {
        match name {
            "Gsm" => Some(Codec::Gsm),
            "G711" => Some(Codec::G711),
            "Wma" => Some(Codec::Wma),
            "Mp3" => Some(Codec::Mp3),
            _ => None,
        }
    }
}

/// The side file (voicemail audio, fax image) that travels with a header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Base name, as attached to the mail (`575a75dc-….wav`).
    pub file_name: String,
    /// Where it was found: always inside the header file's own folder.
    pub path: PathBuf,
    /// `audio/wav`, `image/tiff`.
    pub content_type: String,
    /// Its size when it was opened (from the open handle).
    pub size_bytes: u64,
    /// The handle intake opened and checked; what the mail attaches is read from it, never
    /// from `path` again. `None` for events built elsewhere (samples, tests).
    #[serde(skip)]
    pub opened: Option<SideHandle>,
}

/// An open side file (see `intake::read_file`, which opens and checks it). Cloning shares the
/// handle; readers use positional reads, so clones do not disturb each other. Not part of the
/// event's value: it is never serialized, and two events are equal whatever handles they hold.
#[derive(Debug, Clone)]
pub struct SideHandle(std::sync::Arc<std::fs::File>);

impl SideHandle {
    pub fn new(file: std::fs::File) -> SideHandle {
        SideHandle(std::sync::Arc::new(file))
    }

    pub fn file(&self) -> &std::fs::File {
        &self.0
    }
}

impl PartialEq for SideHandle {
    fn eq(&self, _: &SideHandle) -> bool {
        true
    }
}

impl Eq for SideHandle {}

/// Why the side file was left out of the mail (which still goes out, and says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OmitReason {
    /// Larger than the configured attachment limit.
    TooLarge,
}

/// How a party identifies itself once normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    #[default]
    Number,
    Extension,
    Sip,
    Anonymous,
}

/// The outcome of looking a party up in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallerStatus {
    /// Exactly one person matched.
    Resolved,
    /// Two or more different people matched; none is picked.
    Ambiguous,
    Unresolved,
    Anonymous,
    #[default]
    NotLookedUp,
    DirectoryUnavailable,
}

/// Which kind of number matched, as shown to the reader ("mobile").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhoneLabel {
    Work,
    Mobile,
    Home,
    Fax,
    Pager,
}

/// Where a resolved or ambiguous party was found (`caller.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartySource {
    /// The organisation's directory (file or LDAP).
    Directory,
    /// The recipient's own contacts (CardDAV address book or exported file).
    Contacts,
}

/// A directory entry as templates see it (`caller.person`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Person {
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub mail: Option<String>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub company: Option<String>,
    pub office: Option<String>,
    /// SIP address without scheme (`kwame.mensah@contoso.com`).
    pub sip: Option<String>,
    /// Preferred language (`preferredLanguage`), used for the recipient's culture.
    pub preferred_language: Option<String>,
    /// Every fetched attribute, by LDAP name, always as a list of values.
    pub attributes: IndexMap<String, Vec<String>>,
}

/// One person that matched a number (`caller.candidates[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub display_name: Option<String>,
    pub mail: Option<String>,
    pub label: Option<PhoneLabel>,
    pub matched_attribute: String,
}

/// A caller or a call target (a "party" in docs/template-context.md).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Party {
    /// As given: `+12892596319`, `sip:+1…@host;user=phone`, `4567`, `jdoe@contoso.com`.
    pub raw: Option<String>,
    pub kind: PartyKind,
    pub e164: Option<String>,
    pub national: Option<String>,
    pub international: Option<String>,
    pub extension: Option<String>,
    pub sip: Option<String>,
    pub status: CallerStatus,
    pub name: Option<String>,
    pub label: Option<PhoneLabel>,
    pub matched_attribute: Option<String>,
    pub person: Option<Person>,
    pub candidates: Vec<Candidate>,
    /// Where `person` / `candidates` came from; `None` unless resolved or ambiguous.
    #[serde(default)]
    pub source: Option<PartySource>,
    /// Why nobody was found (`unresolved`) or asked (`directory_unavailable`); `None` for
    /// every other status. For admins (`parse`, the preview's trace), not for recipients.
    pub reason: Option<Unmatched>,
}

/// Why a party was not resolved (`caller.reason`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Unmatched {
    /// One sentence an admin can act on.
    pub summary: String,
    /// The lookup keys tried, in order: `e164 +447700900456`, `extension 4567`, `sip …`,
    /// `suffix 0900456`.
    pub tried: Vec<String>,
    /// Directory values that look like this number but could not be read when the directory
    /// was loaded (entry, attribute, value and why), so could never match.
    pub unreadable: Vec<String>,
}

impl Party {
    /// A party as intake sees it: only the raw value, nothing normalized or looked up.
    /// A missing value is an anonymous caller.
    pub fn from_raw(raw: Option<String>) -> Party {
        let raw = raw.filter(|r| !r.trim().is_empty());
        let anonymous = raw.is_none();
        Party {
            raw,
            kind: if anonymous { PartyKind::Anonymous } else { PartyKind::Number },
            status: if anonymous { CallerStatus::Anonymous } else { CallerStatus::NotLookedUp },
            ..Party::default()
        }
    }
}

/// Whom the notification is for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Recipient {
    pub name: Option<String>,
    /// SMTP address; from the header, else from the directory (by SIP, EUM or GUID).
    pub address: Option<String>,
    /// .NET culture name (`fr-FR`): header, else directory `preferredLanguage`, else config.
    pub culture: Option<String>,
    /// SIP address without scheme (OCS `<User>`).
    pub sip: Option<String>,
    /// OCS `<EumProxyAddress>` as written.
    pub eum_proxy: Option<String>,
    /// `RecipientObjectGuid` (2013+ headers and OCS XML).
    pub object_guid: Option<String>,
}

/// One notification-worthy event. Serializes to the template context (docs/template-context.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: Kind,
    /// The file's MessageType as written (`VoiceMail`, `SMTPVoiceMail`, …).
    pub message_type: String,
    pub call_id: String,
    /// OCS `<Time>`, else `SentTime`, else none. Serialized as RFC 3339 UTC.
    pub time: Option<jiff::Timestamp>,
    pub subject: Option<String>,
    pub importance: Importance,
    pub private: bool,
    pub duration_secs: Option<u32>,
    pub codec: Option<Codec>,
    pub missed_reason: Option<String>,
    pub pages: Option<u32>,
    pub attachment: Option<Attachment>,
    /// Set when the side file is not attached (the templates then say why, instead of
    /// "attached"); `attachment` still describes the file.
    pub attachment_omitted: Option<OmitReason>,
    /// The Voice Mail Preview (header `TranscriptionData`); `None` when the header has none.
    pub transcript: Option<Transcript>,
    pub caller: Party,
    pub target: Option<Party>,
    pub recipient: Recipient,
    /// Every raw header field as written (unknown ones included), in file order.
    pub fields: IndexMap<String, String>,
    /// A `missed_call_digest`: every missed call folded into it, oldest first (the relay's
    /// `[digest]`). Empty for every other kind.
    #[serde(default)]
    pub calls: Vec<CallAttempt>,
    /// A voicemail: the missed calls of the same caller it replaced (the relay's `[digest]`),
    /// oldest first. Empty otherwise.
    #[serde(default)]
    pub earlier_attempts: Vec<CallAttempt>,
}

/// The `message_type` of a [`Event::digest`]: no file is ever written with it.
pub const DIGEST_MESSAGE_TYPE: &str = "MissedCallDigest";

/// One call folded into another notification (a digest, or the voicemail that replaced it):
/// its call id, when it came and the number it came from (normalized and looked up like any
/// caller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallAttempt {
    pub call_id: String,
    pub time: Option<jiff::Timestamp>,
    pub caller: Party,
}

impl CallAttempt {
    /// The attempt `event` stands for.
    pub fn of(event: &Event) -> CallAttempt {
        CallAttempt { call_id: event.call_id.clone(), time: event.time, caller: event.caller.clone() }
    }
}

impl Event {
    /// An event with nothing known yet but its kind, MessageType and call id: anonymous
    /// caller, no target, normal importance, no fields.
    pub fn new(kind: Kind, message_type: impl Into<String>, call_id: impl Into<String>) -> Event {
        Event {
            kind,
            message_type: message_type.into(),
            call_id: call_id.into(),
            time: None,
            subject: None,
            importance: Importance::Normal,
            private: false,
            duration_secs: None,
            codec: None,
            missed_reason: None,
            pages: None,
            attachment: None,
            attachment_omitted: None,
            transcript: None,
            caller: Party::from_raw(None),
            target: None,
            recipient: Recipient::default(),
            fields: IndexMap::new(),
            calls: Vec::new(),
            earlier_attempts: Vec::new(),
        }
    }

    /// The one mail for further missed calls of one caller: `events` are the missed calls
    /// held, oldest first. Its call id, caller and recipient are the first call's (so its
    /// Message-ID stays the same when it is sent again), its time the latest call's, and
    /// `calls` lists every call. It is urgent when one of the calls was, private when one
    /// was, and shows the latest subject a caller gave. It has no header fields and no side
    /// file. An empty `events` gives a digest with no calls and an empty call id.
    pub fn digest(events: Vec<Event>) -> Event {
        let calls: Vec<CallAttempt> = events.iter().map(CallAttempt::of).collect();
        let importance = if events.iter().any(|e| e.importance == Importance::High) {
            Importance::High
        } else if !events.is_empty() && events.iter().all(|e| e.importance == Importance::Low) {
            Importance::Low
        } else {
            Importance::Normal
        };
        let private = events.iter().any(|e| e.private);
        let subject = events.iter().rev().find_map(|e| e.subject.clone());
        let mut digest = match events.into_iter().next() {
            Some(first) => {
                let mut e = Event::new(Kind::MissedCallDigest, DIGEST_MESSAGE_TYPE, first.call_id);
                (e.caller, e.recipient) = (first.caller, first.recipient);
                e
            }
            None => Event::new(Kind::MissedCallDigest, DIGEST_MESSAGE_TYPE, ""),
        };
        digest.time = calls.iter().filter_map(|c| c.time).max();
        (digest.importance, digest.private, digest.subject, digest.calls) = (importance, private, subject, calls);
        digest
    }

    /// The call id made safe for a file name or a Message-ID local part: anything but
    /// ASCII letters, digits, `.`, `_` and `-` becomes `_`; never empty, never `.`/`..`.
    pub fn safe_call_id(&self) -> String {
        safe_file_stem(&self.call_id)
    }
}

/// Whether `c` is flattened by [`flatten_controls`]: C0 and C1 controls, DEL, the line and
/// paragraph separators (U+2028, U+2029) and the bidi embeddings, overrides and isolates
/// (U+202A–U+202E, U+2066–U+2069).
pub fn is_flattened(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `value` with every run of [`is_flattened`] characters, and the spaces around it, turned
/// into one space; a run at either end is dropped. Borrowed (no copy) when there is nothing
/// to flatten, which is the usual case.
pub(crate) fn flatten_controls(value: &str) -> Cow<'_, str> {
    // Every flattened character is below U+0020, DEL, or starts with byte C2 (C1) or E2
    // (U+2028–U+2069): a byte scan rules most values out without decoding.
    if !value.bytes().any(|b| b < 0x20 || b == 0x7F || b == 0xC2 || b == 0xE2) || !value.chars().any(is_flattened) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut pending = false;
    for c in value.chars() {
        if is_flattened(c) {
            out.truncate(out.trim_end_matches(' ').len());
            pending = true;
        } else if pending && c == ' ' {
            // spaces after a flattened run are part of it
        } else {
            if pending && !out.is_empty() {
                out.push(' ');
            }
            pending = false;
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`flatten_controls`] for an owned value: returns it unchanged (no copy) when clean.
pub fn flattened(value: String) -> String {
    match flatten_controls(&value) {
        Cow::Borrowed(_) => value,
        Cow::Owned(clean) => clean,
    }
}

/// Longest file stem: far below the 255-byte name limit of common file systems, leaving
/// room for `.eml` and a temporary suffix.
pub(crate) const MAX_STEM_BYTES: usize = 128;

/// Makes any string safe as a file stem (see [`Event::safe_call_id`]). A stem that would be
/// longer than [`MAX_STEM_BYTES`] keeps its start and ends in 16 hex digits of SHA-256 of
/// the whole string, so two long ids still get two names.
pub(crate) fn safe_file_stem(raw: &str) -> String {
    // Sized once: collecting mapped chars grew the string a few times (a tenth of the cost
    // of handing a message to the `.eml` writer).
    let mut out = String::with_capacity(raw.len());
    out.extend(raw.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }));
    if out.chars().all(|c| c == '.') {
        out = out.replace('.', "_");
    }
    if out.is_empty() {
        out.push('_');
    }
    if out.len() > MAX_STEM_BYTES {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(raw.as_bytes());
        out.truncate(MAX_STEM_BYTES - 17); // ASCII only: any byte is a char boundary
        out.push('-');
        digest[..8].iter().for_each(|b| out.push_str(&format!("{b:02x}")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_file_stem_never_yields_a_path() {
        assert_eq!(safe_file_stem("not-a-guid}{1234"), "not-a-guid__1234");
        assert_eq!(safe_file_stem("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(safe_file_stem(".."), "__");
        assert_eq!(safe_file_stem(""), "_");
        assert_eq!(safe_file_stem("abc-123_x.y"), "abc-123_x.y");
    }

    #[test]
    fn controls_and_bidi_overrides_are_flattened() {
        assert!(matches!(flatten_controls("Priya Raman"), Cow::Borrowed("Priya Raman")));
        assert!(matches!(flatten_controls("Jürgen Größmann 山田 — ok"), Cow::Borrowed(_)));
        assert_eq!(flatten_controls("Kwame\r\nBcc: evil@x.example"), "Kwame Bcc: evil@x.example");
        assert_eq!(flatten_controls("a \r\n\t b"), "a b");
        assert_eq!(flatten_controls("\r\nlead and trail\n"), "lead and trail");
        assert_eq!(flatten_controls("evil\u{202E}gnp.exe"), "evil gnp.exe");
        assert_eq!(flatten_controls("a\u{2066}b\u{2069}c\u{2028}d\u{2029}e"), "a b c d e");
        assert_eq!(flatten_controls("nul\0del\u{7f}c1\u{85}\u{9b}x"), "nul del c1 x");
        assert_eq!(flatten_controls("\u{202A}\u{202B}\u{202C}\u{202D}"), "");
        // the neighbours of the flattened ranges are kept
        for kept in ["\u{2027}", "\u{202F}", "\u{2065}", "\u{206A}", "\u{A0}", "\u{200E}"] {
            assert_eq!(flatten_controls(kept), kept, "{kept:?}");
        }
        assert_eq!(flattened("clean".to_owned()), "clean");
        assert_eq!(flattened("two\nlines".to_owned()), "two lines");
    }

    #[test]
    fn long_stems_are_cut_and_stay_distinct() {
        let a = safe_file_stem(&"x".repeat(300));
        let b = safe_file_stem(&format!("{}y", "x".repeat(299)));
        assert_eq!(a.len(), MAX_STEM_BYTES);
        assert!(a.starts_with(&"x".repeat(MAX_STEM_BYTES - 17)), "{a}");
        assert_ne!(a, b);
        assert_eq!(safe_file_stem(&"x".repeat(MAX_STEM_BYTES)), "x".repeat(MAX_STEM_BYTES));
        assert_eq!(safe_file_stem(&"ü".repeat(200)).len(), MAX_STEM_BYTES);
    }

    fn missed(call_id: &str, raw: &str, time: &str) -> Event {
        let mut e = Event::new(Kind::MissedCall, "MissedCall", call_id);
        e.caller = Party::from_raw(Some(raw.to_owned()));
        e.time = Some(time.parse().unwrap());
        e.recipient.address = Some("hannah.whitaker@contoso.com".to_owned());
        e
    }

    #[test]
    fn a_digest_is_the_first_call_with_every_call_listed() {
        let mut second = missed("b", "+14255550110", "2026-12-05T10:07:00Z");
        second.importance = Importance::High;
        second.subject = Some("call back".to_owned());
        second.recipient.address = Some("other@contoso.com".to_owned());
        let held = vec![missed("a", "+12895550147", "2026-12-05T10:05:00Z"), second, missed("c", "+12895550147", "2026-12-05T10:09:00Z")];
        let d = Event::digest(held.clone());
        assert_eq!((d.kind, d.message_type.as_str(), d.call_id.as_str()), (Kind::MissedCallDigest, "MissedCallDigest", "a"));
        assert_eq!(d.caller, held[0].caller);
        assert_eq!(d.recipient.address.as_deref(), Some("hannah.whitaker@contoso.com"));
        assert_eq!(d.time, Some("2026-12-05T10:09:00Z".parse().unwrap()));
        assert_eq!(d.calls, held.iter().map(CallAttempt::of).collect::<Vec<_>>());
        assert_eq!(d.calls[1].caller.raw.as_deref(), Some("+14255550110"));
        assert_eq!((d.importance, d.private, d.subject.as_deref()), (Importance::High, false, Some("call back")));
        assert!(d.attachment.is_none() && d.target.is_none() && d.fields.is_empty() && d.earlier_attempts.is_empty());
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!((json["kind"].as_str(), json["calls"][2]["time"].as_str()), (Some("missed_call_digest"), Some("2026-12-05T10:09:00Z")));
    }

    #[test]
    fn a_digest_takes_the_latest_known_time_and_survives_no_calls() {
        let mut late = missed("a", "+12895550147", "2026-12-05T10:09:00Z");
        late.importance = Importance::Low;
        let mut undated = missed("b", "+12895550147", "2026-12-05T10:05:00Z");
        (undated.time, undated.importance) = (None, Importance::Low);
        let d = Event::digest(vec![late, undated]);
        assert_eq!((d.time, d.importance, d.calls.len()), (Some("2026-12-05T10:09:00Z".parse().unwrap()), Importance::Low, 2));
        let empty = Event::digest(Vec::new());
        assert_eq!((empty.kind, empty.call_id.as_str(), empty.calls.len(), empty.time), (Kind::MissedCallDigest, "", 0, None));
        assert_eq!(empty.importance, Importance::Normal);
    }

    #[test]
    fn the_digest_kind_has_its_own_name_and_folder() {
        assert_eq!(Kind::MissedCallDigest.as_str(), "missed_call_digest");
        assert_eq!(Kind::from_name("missed_call_digest"), Some(Kind::MissedCallDigest));
        assert!(Kind::ALL.contains(&Kind::MissedCallDigest));
    }

    #[test]
    fn anonymous_party_from_missing_raw() {
        let p = Party::from_raw(None);
        assert_eq!(p.kind, PartyKind::Anonymous);
        assert_eq!(p.status, CallerStatus::Anonymous);
        let p = Party::from_raw(Some("+14255550100".into()));
        assert_eq!(p.status, CallerStatus::NotLookedUp);
    }
}
