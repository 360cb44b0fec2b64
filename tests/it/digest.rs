//! The one mail for further missed calls of one caller, end to end below the relay: real
//! missed-call header files parsed and looked up in the example directory, folded by
//! `Pipeline::prepare_digest`, rendered by the shipped templates and composed; and the
//! voice mail that tells of the calls before it.

use std::path::{Path, PathBuf};

use callnote::event::{CallAttempt, Event, Kind};
use callnote::intake::Parsed;
use callnote::pipeline::{Error, Pipeline};
use mail_parser::MessageParser;

use crate::compose::{pipeline, prepare};

/// A missed call from `caller` at `sent` (Toronto time, as the header writes it), for Hannah.
fn missed_call(dir: &Path, call_id: &str, caller: &str, sent: &str) -> PathBuf {
    let path = dir.join(format!("{call_id}.txt"));
    let header = format!(
        "MessageType : MissedCall\r\nCallerId : {caller}\r\nRecipientName : Hannah Whitaker\r\n\
         RecipientAddress : hannah.whitaker@contoso.com\r\nRecipientCulture : en-US\r\nCallId : {call_id}\r\n\
         SentTime : {sent}\r\nImportant : False\r\n"
    );
    std::fs::write(&path, header).unwrap();
    path
}

fn parsed(p: &Pipeline, path: &Path) -> Event {
    match p.parse_file(path).unwrap() {
        Parsed::Event(event) => *event,
        other => panic!("{}: {other:?}", path.display()),
    }
}

/// Priya Raman's mobile twice, then her desk.
fn held(p: &Pipeline, dir: &Path) -> Vec<Event> {
    [
        ("d-1", "+12895550147", "12/05/2026 10:05:00"),
        ("d-2", "+12895550147", "12/05/2026 10:07:00"),
        ("d-3", "+14255550101", "12/05/2026 10:09:00"),
    ]
    .into_iter()
    .map(|(id, caller, sent)| parsed(p, &missed_call(dir, id, caller, sent)))
    .collect()
}

#[test]
fn a_digest_lists_each_call_with_its_time_and_number() {
    let p = pipeline();
    let dir = tempfile::tempdir().unwrap();
    let events = held(&p, dir.path());
    let digest = p.prepare_digest(events.clone(), &dir.path().join("digest")).unwrap();
    assert_eq!((digest.event.kind, digest.event.call_id.as_str()), (Kind::MissedCallDigest, "d-1"));
    assert_eq!(digest.event.calls, events.iter().map(CallAttempt::of).collect::<Vec<_>>());
    assert_eq!(digest.rendered.subject, "3 more calls from Priya Raman (mobile), (289) 555-0147");
    assert!(
        digest.rendered.text.contains(
            "\nTime: Saturday, December 5, 2026, 10:09 AM (EST)\nCalls:\n  - 10:05 AM – (289) 555-0147 (mobile)\n  \
             - 10:07 AM – (289) 555-0147 (mobile)\n  - 10:09 AM – (425) 555-0101 (work)\n"
        ),
        "{}",
        digest.rendered.text
    );
    assert!(
        digest.rendered.html.contains(
            "<div>10:09 AM – <a href=\"tel:+14255550101\" style=\"color:#0b62d6;text-decoration:none;\">(425) 555-0101</a> \
             <span style=\"color:#57606a;\">(work)</span></div>"
        ),
        "{}",
        digest.rendered.html
    );

    let bytes = digest.message.formatted();
    let mail = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(mail.subject(), Some(digest.rendered.subject.as_str()));
    assert_eq!(mail.header_raw("Content-Class").map(str::trim), Some("missedcall"));
    assert_eq!(mail.attachment_count(), 0);
    assert_eq!(digest.outgoing().stem, "d-1-hannah.whitaker_contoso.com-missed_call_digest");
}

#[test]
fn a_resent_digest_keeps_its_message_id_and_differs_from_the_first_call() {
    let p = pipeline();
    let dir = tempfile::tempdir().unwrap();
    let message_id = |prepared: &callnote::pipeline::Prepared| {
        let bytes = prepared.message.formatted();
        MessageParser::default().parse(&bytes).unwrap().message_id().unwrap().to_owned()
    };
    let first = p.prepare_digest(held(&p, dir.path()), Path::new("digest")).unwrap();
    let again = p.prepare_digest(held(&p, dir.path()), Path::new("digest")).unwrap();
    assert_eq!(first.message.formatted(), again.message.formatted(), "same calls, same bytes");
    let first_call = p.prepare_event(parsed(&p, &dir.path().join("d-1.txt")), Path::new("d-1.txt")).unwrap();
    assert_ne!(message_id(&first), message_id(&first_call));
}

#[test]
fn a_digest_of_no_calls_is_bad_input_named_by_its_path() {
    let err = pipeline().prepare_digest(Vec::new(), Path::new("spool/work/d-1.digest")).unwrap_err();
    assert!(matches!(err, Error::EmptyDigest { .. }) && err.is_bad_input(), "{err:?}");
    assert_eq!(err.to_string(), "spool/work/d-1.digest: a digest of missed calls needs at least one call");
}

#[test]
fn a_voice_mail_tells_of_the_calls_it_replaced() {
    let p = pipeline();
    let dir = tempfile::tempdir().unwrap();
    let attempts: Vec<CallAttempt> = held(&p, dir.path()).iter().map(CallAttempt::of).collect();
    let plain = prepare(&p, "vm-legacy-blog-shape.txt").unwrap();
    let mut event = plain.event.clone();
    let voicemail_number = event.caller.national.clone().unwrap();
    event.earlier_attempts = attempts;
    let with = p.prepare_event(event, Path::new("vm-legacy-blog-shape.txt")).unwrap();
    assert!(!plain.rendered.text.contains("Also called"), "{}", plain.rendered.text);
    assert!(with.rendered.text.contains("\nAlso called:\n  - "), "{}", with.rendered.text);
    for number in ["(289) 555-0147 (mobile)", "(425) 555-0101 (work)"] {
        let shown = !number.starts_with(&voicemail_number);
        assert_eq!(with.rendered.text.contains(number), shown, "{number} shown only when not the voice mail's own: {}", with.rendered.text);
    }
    assert_eq!(with.rendered.subject, plain.rendered.subject);
}
