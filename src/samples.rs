//! Built-in sample events of every kind and outcome (resolved via a work number, resolved via
//! a mobile, ambiguous, unresolved, anonymous, SIP caller, extension caller, not looked up,
//! directory unavailable), with non-ASCII names, for recipients in every shipped language.
//!
//! Consumes nothing; produces fully enriched [`Event`]s built in code (no I/O, no lookups),
//! the same every time. Used by `check` (every template against every sample of its kind),
//! `send-test` (a realistic event of a chosen kind) and the preview. A sample's `attachment`
//! names a side file that does not exist: whoever sends one supplies the bytes. Most
//! voicemails carry a Voice Mail Preview (see `previews`), one of each shape a template draws.

mod people;
mod previews;

use indexmap::IndexMap;

use crate::event::{Attachment, CallAttempt, CallerStatus, Codec, Event, Importance, Kind, Party, PhoneLabel};

/// One sample event.
#[derive(Debug, Clone)]
pub struct Sample {
    /// `kind/outcome/culture`, e.g. `missed_call/resolved-mobile/en-US`.
    pub name: &'static str,
    pub event: Event,
}

/// Every sample: first grouped by kind in [`Kind::ALL`] order, each kind with every outcome
/// and recipients in en, fr, de, es and ja (with regional variants); then one sample for a
/// recipient in each further shipped language (pt, it, nl, zh, ko, ru, pl, sv, da, nb, fi);
/// then the digests of missed calls (every outcome, two to four calls each; `resolved-mobile`
/// holds calls from two numbers of the same person) and a voicemail whose caller also tried
/// twice before (`earlier-attempts`: once from the same number, once from their desk).
pub const NAMES: [&str; 77] = [
    "voicemail/resolved-work/en-US",
    "voicemail/resolved-mobile/fr-FR",
    "voicemail/ambiguous/de-DE",
    "voicemail/unresolved/es-ES",
    "voicemail/anonymous/ja-JP",
    "voicemail/sip/en-GB",
    "voicemail/extension/fr-CA",
    "voicemail/not-looked-up/de-CH",
    "voicemail/directory-unavailable/es-MX",
    "missed_call/resolved-work/es-MX",
    "missed_call/resolved-mobile/en-US",
    "missed_call/ambiguous/fr-FR",
    "missed_call/unresolved/de-DE",
    "missed_call/anonymous/es-ES",
    "missed_call/sip/ja-JP",
    "missed_call/extension/en-GB",
    "missed_call/not-looked-up/fr-CA",
    "missed_call/directory-unavailable/de-CH",
    "call_forwarded/resolved-work/de-CH",
    "call_forwarded/resolved-mobile/es-MX",
    "call_forwarded/ambiguous/en-US",
    "call_forwarded/unresolved/fr-FR",
    "call_forwarded/anonymous/de-DE",
    "call_forwarded/sip/es-ES",
    "call_forwarded/extension/ja-JP",
    "call_forwarded/not-looked-up/en-GB",
    "call_forwarded/directory-unavailable/fr-CA",
    "team_pickup/resolved-work/fr-CA",
    "team_pickup/resolved-mobile/de-CH",
    "team_pickup/ambiguous/es-MX",
    "team_pickup/unresolved/en-US",
    "team_pickup/anonymous/fr-FR",
    "team_pickup/sip/de-DE",
    "team_pickup/extension/es-ES",
    "team_pickup/not-looked-up/ja-JP",
    "team_pickup/directory-unavailable/en-GB",
    "call_not_forwarded/resolved-work/en-GB",
    "call_not_forwarded/resolved-mobile/fr-CA",
    "call_not_forwarded/ambiguous/de-CH",
    "call_not_forwarded/unresolved/es-MX",
    "call_not_forwarded/anonymous/en-US",
    "call_not_forwarded/sip/fr-FR",
    "call_not_forwarded/extension/de-DE",
    "call_not_forwarded/not-looked-up/es-ES",
    "call_not_forwarded/directory-unavailable/ja-JP",
    "fax/resolved-work/ja-JP",
    "fax/resolved-mobile/en-GB",
    "fax/ambiguous/fr-CA",
    "fax/unresolved/de-CH",
    "fax/anonymous/es-MX",
    "fax/sip/en-US",
    "fax/extension/fr-FR",
    "fax/not-looked-up/de-DE",
    "fax/directory-unavailable/es-ES",
    "voicemail/resolved-mobile/pt-BR",
    "missed_call/resolved-work/pt-PT",
    "call_forwarded/ambiguous/it-IT",
    "team_pickup/unresolved/nl-NL",
    "call_not_forwarded/anonymous/zh-CN",
    "fax/resolved-work/zh-TW",
    "voicemail/sip/ko-KR",
    "missed_call/ambiguous/ru-RU",
    "fax/ambiguous/pl-PL",
    "team_pickup/extension/sv-SE",
    "call_forwarded/not-looked-up/da-DK",
    "missed_call/directory-unavailable/nb-NO",
    "voicemail/resolved-work/fi-FI",
    "missed_call_digest/resolved-work/fr-FR",
    "missed_call_digest/resolved-mobile/en-US",
    "missed_call_digest/ambiguous/de-CH",
    "missed_call_digest/unresolved/es-ES",
    "missed_call_digest/anonymous/ja-JP",
    "missed_call_digest/sip/en-GB",
    "missed_call_digest/extension/fr-CA",
    "missed_call_digest/not-looked-up/de-DE",
    "missed_call_digest/directory-unavailable/es-MX",
    "voicemail/earlier-attempts/en-US",
];

/// The outcomes every kind has a sample for, in order.
pub(crate) const OUTCOMES: [&str; 9] = [
    "resolved-work",
    "resolved-mobile",
    "ambiguous",
    "unresolved",
    "anonymous",
    "sip",
    "extension",
    "not-looked-up",
    "directory-unavailable",
];

/// Every sample event.
pub fn all() -> Vec<Sample> {
    NAMES.into_iter().enumerate().filter_map(|(index, name)| Some(Sample { name, event: build(index, name)? })).collect()
}

/// The samples of one kind.
pub(crate) fn of_kind(kind: Kind) -> Vec<Sample> {
    all().into_iter().filter(|s| s.event.kind == kind).collect()
}

/// The sample called `name`.
pub fn by_name(name: &str) -> Option<Sample> {
    all().into_iter().find(|s| s.name == name)
}

const OCS_TIME: &str = "2011-02-11T01:29:39Z";
const SENT_TIME: &str = "2014-06-05T21:20:44Z";
/// The first call of a digest sample; the next ones follow [`DIGEST_STEP_MINUTES`] apart.
const DIGEST_TIME: &str = "2014-06-05T14:05:00Z";
const DIGEST_STEP_MINUTES: i64 = 2;
/// How many calls each digest sample holds, by outcome.
const DIGEST_CALLS: [usize; 9] = [3, 3, 2, 4, 2, 3, 2, 3, 4];
/// The sample outcome that is another outcome's caller with more to show.
const EARLIER_ATTEMPTS: &str = "earlier-attempts";

fn build(index: usize, name: &str) -> Option<Event> {
    let mut parts = name.split('/');
    let (kind, outcome, culture) = (Kind::from_name(parts.next()?)?, parts.next()?, parts.next()?);
    match (kind, outcome) {
        (Kind::MissedCallDigest, _) => digest(index, outcome, culture),
        (Kind::Voicemail, EARLIER_ATTEMPTS) => with_earlier_attempts(build_one(index, kind, "resolved-mobile", culture)?, culture),
        _ => build_one(index, kind, outcome, culture),
    }
}

/// The digest sample: the missed call of this outcome, held two to four times, 2 minutes
/// apart. `resolved-mobile`'s last call comes from the same person's desk number;
/// `not-looked-up`'s first call has no time.
fn digest(index: usize, outcome: &str, culture: &str) -> Option<Event> {
    let o = OUTCOMES.iter().position(|x| *x == outcome)?;
    let first = build_one(index, Kind::MissedCall, outcome, culture)?;
    let start: jiff::Timestamp = DIGEST_TIME.parse().ok()?;
    let count = DIGEST_CALLS[o];
    let held = (0..count).map(|i| {
        let mut call = first.clone();
        call.call_id = format!("{}-{i}", first.call_id);
        call.time = start.checked_add(jiff::SignedDuration::from_mins(DIGEST_STEP_MINUTES * i as i64)).ok();
        if outcome == "resolved-mobile" && i + 1 == count {
            call.caller = desk_of_mobile_caller(culture.split('-').next().unwrap_or("en"));
        }
        if outcome == "not-looked-up" && i == 0 {
            call.time = None;
        }
        call
    });
    Some(Event::digest(held.collect()))
}

/// The `resolved-mobile` caller calling from their desk.
fn desk_of_mobile_caller(language: &str) -> Party {
    let [_, (person, _)] = people::work_and_mobile(language);
    let desk = people::desk_of_mobile_caller(language);
    people::resolve(
        people::number(desk.e164, &desk, CallerStatus::NotLookedUp),
        &person,
        PhoneLabel::Work,
        "telephoneNumber",
        desk.international,
    )
}

/// `voicemail` (a `resolved-mobile` one) with a time and the two calls its caller made before:
/// 8 minutes before from the same number, 4 minutes before from their desk.
fn with_earlier_attempts(mut voicemail: Event, culture: &str) -> Option<Event> {
    let time: jiff::Timestamp = SENT_TIME.parse().ok()?;
    voicemail.time = Some(time);
    let attempt = |minutes: i64, caller: Party, n: usize| CallAttempt {
        call_id: format!("{}-{n}", voicemail.call_id),
        time: time.checked_sub(jiff::SignedDuration::from_mins(minutes)).ok(),
        caller,
    };
    let desk = desk_of_mobile_caller(culture.split('-').next().unwrap_or("en"));
    voicemail.earlier_attempts = vec![attempt(8, voicemail.caller.clone(), 1), attempt(4, desk, 2)];
    voicemail.fields = header_fields(&voicemail);
    Some(voicemail)
}

/// The sample of one kind and outcome (one of [`OUTCOMES`]) for a recipient in `culture`.
fn build_one(index: usize, kind: Kind, outcome: &str, culture: &str) -> Option<Event> {
    let o = OUTCOMES.iter().position(|x| *x == outcome)?;
    let language = culture.split('-').next()?;
    let caller = caller(outcome, language)?;
    let call_id = format!("5a3c{index:04x}-0000-4000-8000-{:012x}", 0x00ca_11ed_0000_u64 + index as u64);
    // Missed calls alternate between the UM header (MissedCall) and OCS notifications.
    let um_missed_call = kind == Kind::MissedCall && o % 2 == 1;
    let ocs = !(matches!(kind, Kind::Voicemail | Kind::Fax) || um_missed_call);
    let time = if ocs || o % 3 == 0 { Some(if ocs { OCS_TIME } else { SENT_TIME }) } else { None };

    let mut event = Event {
        kind,
        message_type: match kind {
            Kind::Voicemail if o % 2 == 0 => "VoiceMail",
            Kind::Voicemail => "SMTPVoiceMail",
            Kind::Fax => "Fax",
            Kind::MissedCall if !ocs => "MissedCall",
            _ => "OCSNotification",
        }
        .to_owned(),
        call_id,
        time: time.and_then(|t| t.parse().ok()),
        subject: None,
        importance: Importance::Normal,
        private: false,
        duration_secs: None,
        codec: None,
        missed_reason: (kind == Kind::MissedCall && ocs).then(|| "CallerReleased".to_owned()),
        pages: None,
        attachment: None,
        attachment_omitted: None,
        transcript: None,
        caller,
        target: match kind {
            Kind::CallForwarded => Some(people::forwarding_target()),
            Kind::TeamPickup => Some(people::pickup_target()),
            Kind::CallNotForwarded => Some(people::blocked_target()),
            _ => None,
        },
        recipient: people::recipient(culture),
        fields: IndexMap::new(),
        calls: Vec::new(),
        earlier_attempts: Vec::new(),
    };
    match kind {
        Kind::Voicemail => {
            event.duration_secs = Some([42, 65, 1187, 7, 3, 18, 5, 23, 95][o]);
            event.codec = Some([Codec::Mp3, Codec::Gsm, Codec::Wma, Codec::G711][o % 4]);
            event.attachment = Some(side_file(&event.call_id, "wav", "audio/wav", 8_044));
            event.private = outcome == "sip";
            event.transcript = previews::preview(outcome).map(|(_, transcript)| transcript);
        }
        Kind::Fax => {
            event.pages = Some([3, 1, 2][o % 3]);
            event.attachment = Some(side_file(&event.call_id, "tif", "image/tiff", 1_210));
        }
        Kind::CallNotForwarded => event.importance = Importance::Low,
        _ => {}
    }
    match (kind, outcome) {
        (Kind::Voicemail, "resolved-work") => event.subject = Some("Re: Q3 numbers : please call back".to_owned()),
        (Kind::Voicemail, "resolved-mobile") | (Kind::MissedCall, "unresolved") => {
            event.importance = Importance::High;
            event.subject = Some(if language == "de" { "Rückruf bitte – Angebot Größe M" } else { "Réunion budget – rappel" }.to_owned());
        }
        (Kind::MissedCall, "sip") => event.subject = Some("会議の件".to_owned()),
        _ => {}
    }
    event.fields = header_fields(&event);
    if let Some((xml, _)) = previews::preview(outcome).filter(|_| kind == Kind::Voicemail) {
        event.fields.insert("TranscriptionData".to_owned(), xml);
    }
    Some(event)
}

fn caller(outcome: &str, language: &str) -> Option<Party> {
    let [(work_person, work), (mobile_person, mobile)] = people::work_and_mobile(language);
    Some(match outcome {
        "resolved-work" => {
            let party = people::number(work.e164, &work, CallerStatus::NotLookedUp);
            people::resolve(party, &work_person, PhoneLabel::Work, "telephoneNumber", work.international)
        }
        "resolved-mobile" => {
            let party = people::number(mobile.e164, &mobile, CallerStatus::NotLookedUp);
            people::resolve(party, &mobile_person, PhoneLabel::Mobile, "mobile", mobile.national)
        }
        "ambiguous" => people::ambiguous(),
        "unresolved" => people::unresolved(),
        "anonymous" => Party::from_raw(None),
        "sip" => people::sip_caller(),
        "extension" => people::extension_caller(),
        "not-looked-up" => people::number(mobile.e164, &mobile, CallerStatus::NotLookedUp),
        "directory-unavailable" => people::number(work.e164, &work, CallerStatus::DirectoryUnavailable),
        _ => return None,
    })
}

fn side_file(call_id: &str, extension: &str, content_type: &str, size_bytes: u64) -> Attachment {
    let file_name = format!("{call_id}.{extension}");
    Attachment { path: file_name.clone().into(), file_name, content_type: content_type.to_owned(), size_bytes, opened: None }
}

/// The header lines an event like this would have come with.
fn header_fields(event: &Event) -> IndexMap<String, String> {
    let mut fields = IndexMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            fields.insert(k.to_owned(), v);
        }
    };
    put("MessageType", Some(event.message_type.clone()));
    if event.message_type == "OCSNotification" {
        return fields;
    }
    put("CallerId", event.caller.raw.clone());
    put("RecipientName", event.recipient.name.clone());
    put("RecipientAddress", event.recipient.address.clone());
    put("RecipientCulture", event.recipient.culture.clone());
    put("CallId", Some(event.call_id.clone()));
    put("Duration", event.duration_secs.map(|d| d.to_string()));
    put("NumberOfPages", event.pages.map(|p| p.to_string()));
    put("Subject", event.subject.clone());
    put("Important", Some(if event.importance == Importance::High { "True" } else { "False" }.to_owned()));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::PartyKind;

    #[test]
    fn every_name_builds_and_names_are_unique() {
        let samples = all();
        assert_eq!(samples.len(), NAMES.len());
        let unique: std::collections::BTreeSet<_> = samples.iter().map(|s| s.name).collect();
        assert_eq!(unique.len(), NAMES.len());
        for s in &samples {
            assert_eq!(s.name.split('/').next(), Some(s.event.kind.as_str()), "{}", s.name);
            assert_eq!(s.name.rsplit('/').next(), s.event.recipient.culture.as_deref(), "{}", s.name);
        }
    }

    #[test]
    fn every_kind_has_every_outcome_and_language() {
        for kind in Kind::ALL {
            let of_kind = of_kind(kind);
            for outcome in OUTCOMES {
                assert!(of_kind.iter().any(|s| s.name.contains(&format!("/{outcome}/"))), "{kind} {outcome}");
            }
            for language in ["en", "fr", "de", "es", "ja"] {
                assert!(of_kind.iter().any(|s| s.name.contains(&format!("/{language}-"))), "{kind} {language}");
            }
        }
    }

    #[test]
    fn every_shipped_language_has_a_recipient() {
        for culture in ["pt-BR", "pt-PT", "it-IT", "nl-NL", "zh-CN", "zh-TW", "ko-KR", "ru-RU", "pl-PL", "sv-SE", "da-DK", "nb-NO", "fi-FI"]
        {
            let sample = all().into_iter().find(|s| s.name.ends_with(&format!("/{culture}"))).unwrap_or_else(|| panic!("{culture}"));
            assert_ne!(sample.event.recipient.name.as_deref(), Some("Hannah Whitaker"), "{culture} has its own recipient");
        }
    }

    #[test]
    fn outcomes_are_what_their_names_say() {
        let s = by_name("missed_call/resolved-mobile/en-US").unwrap().event;
        assert_eq!(
            (s.caller.status, s.caller.name.as_deref(), s.caller.label),
            (CallerStatus::Resolved, Some("Priya Raman"), Some(PhoneLabel::Mobile))
        );
        assert_eq!(s.caller.national.as_deref(), Some("(289) 555-0147"));
        assert_eq!(s.message_type, "MissedCall");
        let s = by_name("voicemail/ambiguous/de-DE").unwrap().event;
        assert_eq!((s.caller.status, s.caller.candidates.len()), (CallerStatus::Ambiguous, 2));
        let s = by_name("fax/anonymous/es-MX").unwrap().event;
        assert_eq!((s.caller.kind, s.caller.status, s.caller.raw), (PartyKind::Anonymous, CallerStatus::Anonymous, None));
        let s = by_name("team_pickup/sip/de-DE").unwrap().event;
        assert_eq!(s.caller.kind, PartyKind::Sip);
        assert_eq!(s.target.as_ref().and_then(|t| t.name.as_deref()), Some("Olivia Chen"));
        let s = by_name("call_forwarded/extension/ja-JP").unwrap().event;
        assert_eq!((s.caller.kind, s.caller.extension.as_deref()), (PartyKind::Extension, Some("4567")));
        let s = by_name("voicemail/resolved-work/en-US").unwrap().event;
        let t = s.transcript.expect("a preview");
        assert_eq!(t.paragraphs, ["Hi, it's about the R&D budget.", "Please call me back at 425 555 0188 before Friday."]);
        assert_eq!(t.parts.iter().filter_map(|p| p.tel.as_deref()).collect::<Vec<_>>(), ["+14255550188"]);
        assert!(s.fields["TranscriptionData"].contains("R&amp;D"));
        let t = by_name("voicemail/resolved-mobile/fr-FR").unwrap().event.transcript.unwrap();
        assert!(t.low_confidence && !t.failed, "{t:?}");
        let t = by_name("voicemail/anonymous/ja-JP").unwrap().event.transcript.unwrap();
        assert_eq!(t.text, "お疲れ様です。明日の会議は10時からです。 03-5555-0123までご連絡ください。");
        let t = by_name("voicemail/extension/fr-CA").unwrap().event.transcript.unwrap();
        assert_eq!((t.failed, t.reason.as_deref()), (true, Some("unreadable")));
        assert_eq!(by_name("voicemail/sip/en-GB").unwrap().event.transcript.unwrap().reason, None);
        assert!(by_name("voicemail/not-looked-up/de-CH").unwrap().event.transcript.is_none());
        let s = by_name("fax/resolved-work/ja-JP").unwrap().event;
        assert_eq!((s.caller.name.as_deref(), s.pages), (Some("佐藤 花子"), Some(3)));
        assert_eq!(s.attachment.map(|a| a.content_type), Some("image/tiff".to_owned()));
    }

    #[test]
    fn samples_are_deterministic() {
        assert_eq!(
            format!("{:?}", all().iter().map(|s| &s.event).collect::<Vec<_>>()),
            format!("{:?}", all().iter().map(|s| &s.event).collect::<Vec<_>>())
        );
    }
}
