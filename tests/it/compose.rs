//! The whole file-to-mail path (intake -> enrich -> render -> compose) on every fixture,
//! and the `parse` / `render` commands as a user runs them: the .eml is parsed back with a
//! MIME parser, its structure and content asserted, and snapshots keep the context JSON and
//! the rendered message (Date filtered) under review.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use callnote::config::Config;
use callnote::enrich::directory;
use callnote::event::{CallerStatus, Codec, Kind};
use callnote::pipeline::{Error, Outcome, Pipeline, Prepared};
use callnote::render::Templates;
use mail_parser::{MessageParser, MimeHeaders};

use crate::common::fixture;

pub(crate) const CONFIG: &str = "[dialplan]\nregion = \"US\"\noutside_line_code = \"9\"\nextension_digits = 4\n\
[templates]\ntimezone = \"America/Toronto\"\n[mail]\nfrom = \"Voice Mail <voicemail@contoso.com>\"\n";

/// The fixture directory plus the objectGUIDs of the three people 2013 headers name only by
/// GUID: `examples/directory.ldif`.
pub(crate) fn pipeline() -> Pipeline {
    pipeline_with(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/directory.ldif"))
}

fn pipeline_with(directory_file: &Path) -> Pipeline {
    let config = Config::from_toml(CONFIG, Path::new("test.toml")).expect("test config");
    let index = directory::load_file(directory_file, &config.dialplan).expect("directory");
    Pipeline::new(config, Templates::builtin(), Some(Arc::new(index)), Some("2026-01-02T03:04:05Z".parse().unwrap()))
}

/// Every good fixture that is a notification.
pub(crate) fn notification_fixtures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture(""))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".txt") && !n.starts_with("healthcheck") && !n.starts_with("xsovoicemail"))
        .collect();
    names.sort();
    names
}

pub(crate) fn prepare(p: &Pipeline, name: &str) -> Result<Prepared, Error> {
    match p.prepare_file(&fixture(name))? {
        Outcome::Prepared(prepared) => Ok(*prepared),
        Outcome::Skipped(t) => panic!("{name} unexpectedly skipped as {t}"),
    }
}

/// The caller's number as some part of the mail may show it.
fn number_forms(p: &Prepared) -> Vec<String> {
    let c = &p.event.caller;
    [&c.national, &c.international, &c.e164, &c.extension, &c.sip].into_iter().flatten().cloned().collect()
}

#[test]
fn every_fixture_becomes_a_well_formed_mail_with_number_and_name() {
    let p = pipeline();
    let mut composed = 0;
    for name in notification_fixtures() {
        let prepared = prepare(&p, &name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let bytes = prepared.message.formatted();
        let mail = MessageParser::default().parse(&bytes).unwrap_or_else(|| panic!("{name}: not parseable MIME"));

        assert_eq!(mail.from().and_then(|a| a.first()).and_then(|a| a.address()), Some("voicemail@contoso.com"), "{name}");
        assert_eq!(mail.to().and_then(|a| a.first()).and_then(|a| a.address()), prepared.event.recipient.address.as_deref(), "{name}");
        assert_eq!(mail.subject(), Some(prepared.rendered.subject.as_str()), "{name}: subject survives encoding");
        assert_eq!(mail.header_raw("X-CallID").map(str::trim), Some(prepared.event.call_id.as_str()), "{name}");
        let text = mail.body_text(0).unwrap_or_else(|| panic!("{name}: no text part")).into_owned();
        let html = mail.body_html(0).unwrap_or_else(|| panic!("{name}: no html part")).into_owned();

        let caller = &prepared.event.caller;
        if caller.status == CallerStatus::Anonymous {
            assert!(caller.raw.is_none() || caller.e164.is_none(), "{name}");
        } else {
            let forms = number_forms(&prepared);
            assert!(forms.iter().any(|f| text.contains(f.as_str())), "{name}: text lacks the caller's number {forms:?}:\n{text}");
            let html_has = forms.iter().any(|f| html.contains(f.as_str()) || html.contains(&f.replace('\'', "&#39;")));
            assert!(html_has, "{name}: html lacks the caller's number {forms:?}");
        }
        if let Some(name_shown) = &caller.name {
            assert!(text.contains(name_shown.as_str()), "{name}: text lacks the caller's name {name_shown}");
            assert!(html.contains(name_shown.as_str()), "{name}: html lacks the caller's name {name_shown}");
        }
        let attachments: Vec<_> = mail.attachments().collect();
        match prepared.event.kind {
            Kind::Voicemail => {
                assert_eq!(attachments.len(), 1, "{name}: one audio attachment");
                // in the header's codec: MP3 for Mp3 (and Wma), G.711 µ-law WAV for G711 (and Gsm)
                let audio = attachments[0].contents();
                let mp3 = matches!(prepared.event.codec, Some(Codec::Mp3 | Codec::Wma));
                let subtype = if mp3 { "mpeg" } else { "wav" };
                assert_eq!(attachments[0].content_type().map(|c| (c.ctype(), c.subtype())), Some(("audio", Some(subtype))), "{name}");
                if mp3 {
                    assert!(audio.len() > 100 && audio[0] == 0xFF && audio[1] & 0xE0 == 0xE0, "{name}: MP3 frame sync");
                } else {
                    assert!(audio.starts_with(b"RIFF") && audio[20..22] == [7, 0], "{name}: G.711 µ-law WAV");
                }
                let file = attachments[0].attachment_name().unwrap_or_default();
                assert!(file.ends_with(if mp3 { ".mp3" } else { ".wav" }) && !file.contains('/'), "{name}: {file}");
            }
            Kind::Fax => {
                assert_eq!(attachments.len(), 1, "{name}: one fax image");
                assert_eq!(attachments[0].content_type().map(|c| (c.ctype(), c.subtype())), Some(("image", Some("tiff"))), "{name}");
                assert!(attachments[0].contents().starts_with(b"II*\0") || attachments[0].contents().starts_with(b"MM\0*"), "{name}");
            }
            _ => assert!(attachments.is_empty(), "{name}: no attachment expected"),
        }
        composed += 1;
    }
    assert_eq!(composed, 30, "every notification fixture");
}

#[test]
fn outlook_headers_importance_and_class() {
    let p = pipeline();
    let vm = prepare(&p, "vm-legacy-important-long-duration-en-GB.txt").unwrap();
    let bytes = vm.message.formatted();
    let mail = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(mail.header_raw("Importance").map(str::trim), Some("high"));
    assert_eq!(mail.header_raw("X-Priority"), None, "Importance is what Exchange reads; X-Priority costs spam score");
    assert_eq!(mail.header_raw("Content-Class").map(str::trim), Some("voice-ca"));
    assert_eq!(mail.header_raw("X-VoiceMessageDuration").map(str::trim), Some("1187"));
    assert_eq!(mail.header_raw("X-CallingTelephoneNumber").map(str::trim), Some("+447700900456"));

    let low = prepare(&p, "ocs-2013-forbidden-not-forwarded.txt").unwrap();
    let mail_bytes = low.message.formatted();
    let mail = MessageParser::default().parse(&mail_bytes).unwrap();
    assert_eq!(mail.header_raw("Importance").map(str::trim), Some("low"));
    assert_eq!(mail.header_raw("Content-Class"), None, "call not forwarded keeps the default class");
    assert_eq!(mail.header_raw("X-VoiceMessageSenderName").map(str::trim), Some("Rafael Costa"));

    let private = prepare(&p, "vm-2013-smtpvoicemail-private.txt").unwrap();
    let bytes = private.message.formatted();
    let mail = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(mail.header_raw("Sensitivity").map(str::trim), Some("Private"));
    assert_eq!(
        mail.to().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("oliver.pennington-smythe@contoso.com"),
        "recipient found by objectGUID"
    );
}

#[test]
fn guid_only_recipient_missing_from_directory_is_a_clear_error() {
    let err = prepare(&pipeline_with(&fixture("directory.ldif")), "fax-2013-three-pages.txt").unwrap_err();
    assert!(err.is_bad_input());
    let text = format!("{:#}", anyhow::Error::from(err));
    assert!(text.contains("fax-2013-three-pages.txt: call e0179f19-a6e5-4581-8799-32524d688d70: cannot compose the message"), "{text}");
    assert!(
        text.contains(
            "recipient has no mail address (RecipientObjectGuid 5e7bf87a-c77b-4f0f-820f-5f25609c7f58 not found in the directory)"
        ),
        "{text}"
    );
}

#[test]
fn date_is_when_composed_and_the_call_time_has_its_own_header() {
    let p = pipeline();
    let late = prepare(&p, "vm-2013-smtpvoicemail-private.txt").unwrap();
    let call_time = late.event.time.expect("the fixture has a SentTime");
    let bytes = late.message.formatted();
    let mail = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(mail.header_raw("Date").map(str::trim), Some("Fri, 02 Jan 2026 03:04:05 +0000"), "the fixed date, not the call time");
    assert_eq!(mail.header_raw("X-Callnote-Call-Time").map(str::trim), Some(call_time.to_string().as_str()));
    assert!(call_time < "2026-01-01T00:00:00Z".parse().unwrap(), "the call is older than the message");

    // Without a fixed date, Date is now.
    let config = Config::from_toml(CONFIG, Path::new("test.toml")).unwrap();
    let now = Pipeline::new(config, Templates::builtin(), None, None); // no fixed date
    let before = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    let bytes = prepare(&now, "vm-legacy-blog-shape.txt").unwrap().message.formatted();
    let mail = MessageParser::default().parse(&bytes).unwrap();
    let date = mail.date().expect("a Date");
    assert!(date.to_timestamp() >= before.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64, "{date}");
}

#[test]
fn message_id_is_stable_and_call_id_made_safe() {
    let p = pipeline();
    let a = prepare(&p, "mc-legacy-callid-not-a-guid.txt").unwrap();
    let b = prepare(&p, "mc-legacy-callid-not-a-guid.txt").unwrap();
    assert_eq!(a.message.formatted(), b.message.formatted(), "same input, same bytes");
    assert_eq!(a.event.safe_call_id(), "not-a-guid__1234");
    let bytes = a.message.formatted();
    let mail = MessageParser::default().parse(&bytes).unwrap();
    let id = mail.message_id().unwrap();
    assert!(id.starts_with("callnote.") && id.ends_with("@contoso.com") && !id.contains('{'), "{id}");
}

#[test]
fn no_input_value_can_add_a_header_line() {
    let dir = tempfile::tempdir().unwrap();
    let header = "MessageType : MissedCall\r\nCallerId : +14255550199\r\nRecipientName : Eve\rBcc: victim@evil.example\r\n\
                  RecipientAddress : amara.okafor@contoso.com\r\nSubject : hi\u{b}\u{c}Bcc: other@evil.example\r\nCallId : inj-1\r\n";
    let path = dir.path().join("inj.txt");
    std::fs::write(&path, header).unwrap();
    let p = pipeline();
    let Outcome::Prepared(prepared) = p.prepare_file(&path).unwrap() else { panic!("skipped") };
    let bytes = prepared.message.formatted();
    let head = String::from_utf8_lossy(&bytes);
    let head = head.split("\r\n\r\n").next().unwrap();
    assert!(!head.lines().any(|l| l.to_ascii_lowercase().starts_with("bcc:")), "{head}");
    assert_eq!(prepared.message.envelope().to().len(), 1);
}

#[test]
fn context_json_snapshots() {
    let p = pipeline();
    for name in notification_fixtures() {
        let callnote::intake::Parsed::Event(event) = p.parse_file(&fixture(&name)).unwrap() else { panic!("{name} skipped") };
        let mut value = serde_json::to_value(&event).unwrap();
        // the absolute checkout path differs between machines
        if let Some(att) = value.get_mut("attachment").and_then(|a| a.as_object_mut()) {
            att.insert("path".into(), serde_json::Value::String("<fixtures>/…".into()));
        }
        insta::assert_json_snapshot!(format!("context__{}", name.trim_end_matches(".txt")), value);
    }
}

#[test]
fn eml_snapshots() {
    let p = pipeline();
    for name in [
        "mc-legacy-blog-shape.txt",
        "mc-legacy-minimal-fields.txt",
        "ocs-legacy-anonymous-from.txt",
        "ocs-2013-answered-forwarded-primary.txt",
        "mc-legacy-important-subject-de-DE.txt",
    ] {
        let prepared = prepare(&p, name).unwrap();
        let text = String::from_utf8(prepared.message.formatted()).unwrap();
        insta::with_settings!({filters => vec![(r"(?m)^Date: .*$", "Date: [date]"), (r"=_callnote_(alt|mix)_[0-9a-f]{32}", "=_callnote_$1_[boundary]")]}, {
            insta::assert_snapshot!(format!("eml__{}", name.trim_end_matches(".txt")), text);
        });
    }
}

// ----- the commands, as a user runs them -----

fn callnote() -> Command {
    Command::new(env!("CARGO_BIN_EXE_callnote"))
}

#[test]
fn parse_prints_one_json_line_per_input_and_skips_probes() {
    let out = callnote()
        .args(["parse", "--directory"])
        .arg(fixture("directory.ldif"))
        .arg(fixture("mc-legacy-blog-shape.txt"))
        .arg(fixture("healthcheck-2013.txt"))
        .arg(fixture("ocs-legacy-blog-shape.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["caller"]["name"], "Priya Raman");
    assert_eq!(lines[0]["caller"]["label"], "mobile");
    assert_eq!(lines[1]["kind"], "missed_call");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("healthcheck-2013.txt: skipped: HealthCheck"), "{stderr}");

    let out = callnote().arg("parse").arg(fixture("mc-legacy-blog-shape.txt")).output().unwrap();
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["caller"]["status"], "not_looked_up");
    assert_eq!(line["caller"]["e164"], "+12895550147");
}

#[test]
fn render_continues_past_bad_inputs_and_exits_1() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = callnote()
        .args(["render", "--date", "2026-01-02T03:04:05Z", "--directory"])
        .arg(fixture("directory.ldif"))
        .arg("--out")
        .arg(out_dir.path())
        .arg(fixture("bad/duplicate-keys.txt"))
        .arg(fixture("mc-legacy-blog-shape.txt"))
        .arg(fixture("bad/empty.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(lines[0].contains("bad/duplicate-keys.txt:") && lines[0].contains("duplicate key `CallerId`"), "{stderr}");
    assert!(lines[1].contains("bad/empty.txt"), "{stderr}");
    assert_eq!(lines[2], "render: 1 written, 0 skipped, 2 failed");
    let written: Vec<_> = std::fs::read_dir(out_dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(written, vec![std::ffi::OsString::from("6e838afc-7d1a-4ad5-b1e3-fde1990e11e7-hannah.whitaker_contoso.com-missed_call.eml")]);
}

#[test]
fn render_is_reproducible_with_source_date_epoch() {
    let run = || {
        callnote()
            .env("SOURCE_DATE_EPOCH", "1767322800")
            .args(["render", "--out", "-", "--directory"])
            .arg(fixture("directory.ldif"))
            .arg(fixture("mc-legacy-blog-shape.txt"))
            .arg(fixture("vm-legacy-blog-shape.txt"))
            .output()
            .unwrap()
    };
    let (a, b) = (run(), run());
    assert_eq!(a.status.code(), Some(0), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(a.stdout, b.stdout);
    let text = String::from_utf8_lossy(&a.stdout);
    assert!(text.contains("Date: Fri, 02 Jan 2026 03:00:00 +0000"), "SOURCE_DATE_EPOCH dates events without a time");
}

#[test]
fn configuration_errors_exit_2_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[dialplan]\nregion = \"US\"\n\n[delivery]\nurl = \"smtp://mail:587\"\nsmarthost = \"x\"\n").unwrap();
    let out = callnote().arg("--config").arg(&config).arg("parse").arg(fixture("mc-legacy-blog-shape.txt")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("c.toml:6: unknown key `smarthost` in [delivery]"), "{stderr}");
}
