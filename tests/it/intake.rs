//! Integration tests for the intake stage: every good fixture parses to exactly what
//! tests/fixtures/README.md says, every `bad/` fixture fails with its kind, line and message.
//! The expectations per good fixture are in `intake/expected.rs`, the side-file rules in
//! `intake/side_files.rs`, the property tests (fuzz) in `intake/fuzz.rs`.

mod expected;
mod fuzz;
mod side_files;

use std::path::{Path, PathBuf};

use callnote::event::Event;
use callnote::intake::{self, FieldProblemKind, IntakeError, IntakeErrorKind, IntakeOptions, Parsed};

use crate::common::fixture;
use expected::{SKIPPED, check, good_fixtures};

fn read(name: &str) -> Result<Parsed, IntakeError> {
    intake::read_file(&fixture(name), &IntakeOptions::default())
}

fn event(name: &str) -> Event {
    match read(name) {
        Ok(Parsed::Event(e)) => *e,
        other => panic!("{name}: expected an event, got {other:?}"),
    }
}

fn error(name: &str) -> IntakeError {
    match read(name) {
        Err(e) => e,
        Ok(other) => panic!("{name}: expected an error, got {other:?}"),
    }
}

#[test]
fn every_good_fixture_parses_as_the_readme_says() {
    let wants = good_fixtures();
    assert_eq!(wants.len(), 30);
    for want in &wants {
        check(want, &event(want.file));
    }
}

#[test]
fn recognised_non_notifications_are_skipped() {
    for (file, message_type) in SKIPPED {
        assert_eq!(read(file).unwrap(), Parsed::Skipped(message_type.to_owned()), "{file}");
    }
}

#[test]
fn the_fixture_lists_cover_every_file() {
    let listed = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".txt"))
            .collect();
        names.sort();
        names
    };
    let mut covered: Vec<String> = good_fixtures().iter().map(|w| w.file.to_owned()).collect();
    covered.extend(SKIPPED.iter().map(|(f, _)| f.to_string()));
    covered.sort();
    assert_eq!(covered.len(), 32);
    assert_eq!(listed(&fixture("")), covered);
    let mut bad: Vec<String> = BAD.iter().map(|(f, ..)| f.trim_start_matches("bad/").to_owned()).collect();
    bad.sort();
    assert_eq!(listed(&fixture("bad")), bad);
}

#[test]
fn fields_are_kept_as_written_in_file_order() {
    let e = event("vm-legacy-extra-unknown-fields.txt");
    let keys: Vec<&str> = e.fields.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "MessageType",
            "CallId",
            "CallerId",
            "SenderAddress",
            "CallerName",
            "CallerIdDisplayName",
            "NDRRequired",
            "RecipientName",
            "RecipientAddress",
            "RecipientCulture",
            "X-Contoso-Trace",
            "Subject",
            "Codec",
            "Duration",
            "AttachmentName",
            "Important",
            "CallAnswering",
            "Private"
        ]
    );
    assert_eq!(e.fields["X-Contoso-Trace"], "relay=um01;hop=2");
    assert_eq!(e.fields["RecipientName"], "Hannah Whitaker");
    assert_eq!(e.fields["CallAnswering"], "TRUE");
    assert_eq!(e.fields["Important"], "false");
    assert!(!e.fields.values().any(|v| v.contains("must be ignored")));

    let e = event("mc-2013-retry-contactinfo-callername.txt");
    assert_eq!(e.fields["CallerNAme"], "Kwame Mensah");
    assert_eq!(e.fields["CallerAddress"], "kwame.mensah@contoso.com");
    assert_eq!(e.fields["ProcessedCount"], "3");
    assert_eq!(
        e.fields["ContactInfo"],
        "AAEAAAD/////AQAAAAAAAAAMAgAAAFmY9rUADlRkvsDKU0bF+eBdtk+xtSePLdKU4MWYD1fV9nwls2XSRuVEtK/f9wo336TpMZcWlfmUH67yewtvRoULqlq7DPwFQqVawVAyJ6Uc+533+Nb4DTjL4g=="
    );

    let e = event("vm-legacy-utf8-bom-fr-FR.txt");
    assert_eq!(e.fields.keys().next().map(String::as_str), Some("MessageType"), "the BOM must not leak into the key");
    let e = event("vm-legacy-wrapped-recipientaddress.txt");
    assert_eq!(e.fields["RecipientAddress"], "hannah.whitaker@contoso.com");
    assert_eq!(e.fields.len(), 12);
}

#[test]
fn ocs_headers_keep_their_xml_in_fields() {
    let legacy = event("ocs-legacy-blog-shape.txt");
    assert_eq!(legacy.fields.keys().collect::<Vec<_>>(), ["MessageType", "OCSNotificationData"]);
    assert!(legacy.fields["OCSNotificationData"].starts_with("<?xml version=\"1.0\" encoding=\"us-ascii\"?><UserNotification>"));
    assert!(legacy.fields["OCSNotificationData"].ends_with("</UserNotification>"));
    let modern = event("ocs-2013-ocsnotificationdata.txt");
    assert_eq!(modern.fields.keys().collect::<Vec<_>>(), ["MessageType", "ProcessedCount", "OCSNotificationData"]);
}

#[test]
fn sent_time_follows_the_configured_server_zone() {
    let opts = IntakeOptions { sent_time_zone: jiff::tz::TimeZone::get("America/Los_Angeles").unwrap(), ..IntakeOptions::default() };
    let parsed = intake::read_file(&fixture("fax-2013-three-pages.txt"), &opts).unwrap();
    let Parsed::Event(e) = parsed else { panic!("{parsed:?}") };
    assert_eq!(e.time.map(|t| t.to_string()).as_deref(), Some("2014-06-06T00:20:44Z"));
}

#[test]
fn parse_is_pure_and_leaves_the_attachment_to_read_file() {
    let path = fixture("vm-legacy-blog-shape.txt");
    let bytes = std::fs::read(&path).unwrap();
    let Parsed::Event(pure) = intake::parse(&bytes, &path, &IntakeOptions::default()).unwrap() else { panic!() };
    assert_eq!(pure.attachment, None);
    let mut full = event("vm-legacy-blog-shape.txt");
    assert!(full.attachment.is_some());
    full.attachment = None;
    assert_eq!(*pure, full);
}

#[test]
fn every_line_ending_and_encoding_gives_the_same_event() {
    for want in good_fixtures() {
        let path = fixture(want.file);
        let bytes = std::fs::read(&path).unwrap();
        let text = if want.file.contains("utf16le") {
            let units: Vec<u16> = bytes[2..].chunks_exact(2).map(|p| u16::from_le_bytes([p[0], p[1]])).collect();
            String::from_utf16(&units).unwrap()
        } else {
            String::from_utf8(bytes.clone()).unwrap()
        };
        let text = text.trim_start_matches('\u{feff}');
        let base = intake::parse(&bytes, &path, &IntakeOptions::default()).unwrap();
        let lf = text.replace("\r\n", "\n");
        for eol in ["\n", "\r\n", "\r"] {
            let text = lf.replace('\n', eol);
            let mut le = vec![0xFF, 0xFE];
            let mut be = vec![0xFE, 0xFF];
            text.encode_utf16().for_each(|u| {
                le.extend_from_slice(&u.to_le_bytes());
                be.extend_from_slice(&u.to_be_bytes());
            });
            let bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
            for (label, variant) in [("utf-8", text.as_bytes().to_vec()), ("utf-8 bom", bom), ("utf-16le", le), ("utf-16be", be)] {
                let got = intake::parse(&variant, &path, &IntakeOptions::default()).unwrap();
                assert_eq!(got, base, "{}: {label} with {eol:?}", want.file);
            }
        }
    }
}

/// Every bad fixture: (file, line, expected message after `PATH[:LINE]: `).
const BAD: [(&str, Option<usize>, &str); 11] = [
    ("bad/empty.txt", None, "empty file"),
    ("bad/binary-garbage.txt", Some(1), "not text: invalid UTF-8 at byte 0"),
    ("bad/missing-messagetype.txt", None, "missing MessageType"),
    ("bad/unknown-messagetype.txt", Some(1), "unknown MessageType `Telepathy`"),
    ("bad/one-mb-junk-line.txt", Some(3), "line too long: over 65536 bytes"),
    ("bad/duplicate-keys.txt", Some(4), "duplicate key `CallerId` (first on line 2)"),
    ("bad/ocs-truncated-xml.txt", Some(2), "malformed XML: unexpected end of input inside `<From>`"),
    ("bad/ocs-missing-event-type.txt", Some(2), "missing event type: `<Event>` has no `type` attribute"),
    ("bad/ocs-doctype-entity-expansion.txt", Some(2), "DTD not allowed in OCS XML (`<!DOCTYPE …>`); entities are never expanded"),
    ("bad/invalid-field-values.txt", Some(3), "invalid boolean `No` for NDRRequired (expected True or False) (and 5 more)"),
    ("bad/utf16le-no-bom.txt", Some(1), "encoding not detectable: NUL character in text (UTF-16 needs a byte-order mark)"),
];

#[test]
fn every_bad_fixture_fails_naming_file_line_and_problem() {
    for (file, line, message) in BAD {
        let err = error(file);
        let path = fixture(file);
        assert_eq!(err.path, path, "{file}");
        assert_eq!(err.line, line, "{file}");
        assert_eq!(err.kind.to_string(), message, "{file}");
        assert!(!err.is_transient(), "{file}: a bad file stays bad");
        if !matches!(err.kind, IntakeErrorKind::InvalidFields(_)) {
            let located = match line {
                Some(l) => format!("{}:{l}: {message}", path.display()),
                None => format!("{}: {message}", path.display()),
            };
            assert_eq!(err.to_string(), located, "{file}");
        }
    }
}

#[test]
fn bad_fixture_kinds() {
    assert!(matches!(error("bad/empty.txt").kind, IntakeErrorKind::Empty));
    assert!(matches!(error("bad/binary-garbage.txt").kind, IntakeErrorKind::InvalidUtf8 { offset: 0 }));
    assert!(matches!(error("bad/missing-messagetype.txt").kind, IntakeErrorKind::MissingMessageType));
    assert!(matches!(error("bad/unknown-messagetype.txt").kind, IntakeErrorKind::UnknownMessageType { value } if value == "Telepathy"));
    assert!(matches!(error("bad/one-mb-junk-line.txt").kind, IntakeErrorKind::LineTooLong { limit: 65536 }));
    assert!(matches!(
        error("bad/duplicate-keys.txt").kind,
        IntakeErrorKind::DuplicateKey { key, first_line: 2 } if key == "CallerId"
    ));
    assert!(matches!(error("bad/ocs-truncated-xml.txt").kind, IntakeErrorKind::XmlUnexpectedEnd { inside } if inside == "From"));
    assert!(matches!(error("bad/ocs-missing-event-type.txt").kind, IntakeErrorKind::MissingEventType));
    assert!(matches!(error("bad/ocs-doctype-entity-expansion.txt").kind, IntakeErrorKind::DtdNotAllowed));
    assert!(matches!(error("bad/utf16le-no-bom.txt").kind, IntakeErrorKind::NulCharacter));
}

#[test]
fn invalid_field_values_lists_every_problem_with_its_line() {
    let err = error("bad/invalid-field-values.txt");
    let IntakeErrorKind::InvalidFields(problems) = &err.kind else { panic!("{:?}", err.kind) };
    let got: Vec<(Option<usize>, &str, Option<&str>, FieldProblemKind)> =
        problems.iter().map(|p| (p.line, p.key.as_str(), p.value.as_deref(), p.kind)).collect();
    let mp3 = r"C:\Program Files\Microsoft\Exchange Server\UnifiedMessaging\voicemail\b7ffdb66-99d4-4ca3-afbe-7cfdae597a0d.mp3";
    assert_eq!(
        got,
        [
            (Some(3), "NDRRequired", Some("No"), FieldProblemKind::InvalidBool),
            (Some(6), "RecipientCulture", Some("xx-INVALID"), FieldProblemKind::InvalidCulture),
            (Some(8), "AttachmentName", Some(mp3), FieldProblemKind::NotWav),
            (Some(9), "Duration", Some("abc"), FieldProblemKind::InvalidInteger),
            (Some(10), "Important", Some("Yes"), FieldProblemKind::InvalidBool),
            (Some(12), "Codec", Some("Opus"), FieldProblemKind::UnknownCodec),
        ]
    );
    let p = fixture("bad/invalid-field-values.txt").display().to_string();
    assert_eq!(
        err.to_string(),
        format!(
            "{p}:3: invalid boolean `No` for NDRRequired (expected True or False)\n\
             {p}:6: invalid culture name `xx-INVALID` for RecipientCulture (expected e.g. en-US)\n\
             {p}:8: attachment `{mp3}` in AttachmentName is not a .wav file\n\
             {p}:9: invalid whole number `abc` for Duration\n\
             {p}:10: invalid boolean `Yes` for Important (expected True or False)\n\
             {p}:12: unknown codec `Opus` for Codec (expected Gsm, G711, Wma or Mp3)"
        )
    );
}

#[test]
fn malformed_xml_keeps_the_parser_error_as_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.txt");
    std::fs::write(&path, "MessageType : OCSNotification\r\n<UserNotification><User>u</Event></UserNotification>\r\n").unwrap();
    let err = intake::read_file(&path, &IntakeOptions::default()).unwrap_err();
    assert_eq!(err.to_string(), format!("{}:2: malformed XML", path.display()));
    let source = std::error::Error::source(&err).map(|s| s.to_string());
    assert_eq!(source.as_deref(), Some("ill-formed document: expected `</User>`, but `</Event>` was found"));
}

#[test]
fn snapshots_of_every_parsed_event() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for want in good_fixtures() {
        let mut e = event(want.file);
        if let Some(a) = &mut e.attachment {
            a.path = a.path.strip_prefix(&root).unwrap().to_path_buf();
        }
        let name = want.file.trim_end_matches(".txt");
        insta::assert_json_snapshot!(name, e);
    }
}
