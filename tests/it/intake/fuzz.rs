//! Property tests (the fuzz target): the parser never panics on any input, answers the same
//! way twice, every error names the file (and a plausible line), and no value of an event
//! holds a control character or bidi override. Inputs: random bytes, random mutations of
//! every fixture, header-shaped and XML-shaped random text. A round-trip property checks
//! that generated valid headers come back with their values as written.
//!
//! Run more cases with `PROPTEST_CASES=20000 cargo test --test it intake::fuzz`.

use std::path::Path;

use callnote::event::{Kind, is_flattened};
use callnote::intake::{self, IntakeOptions, Parsed};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::common::fixture;

const PATH: &str = "fuzz/0452b4d7-0ba5-4c52-bd6e-689c633e0ab4.txt";

/// Every string (keys of `fields` included) holding a character templates must never see.
fn unclean_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) if s.chars().any(is_flattened) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| unclean_strings(v, out)),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if k.chars().any(is_flattened) {
                    out.push(k.clone());
                }
                unclean_strings(v, out);
            }
        }
        _ => {}
    }
}

/// What must hold for any input at all.
fn holds_for(bytes: &[u8]) -> Result<(), TestCaseError> {
    let path = Path::new(PATH);
    let opts = IntakeOptions::default();
    let first = intake::parse(bytes, path, &opts);
    let again = intake::parse(bytes, path, &opts);
    prop_assert_eq!(format!("{first:?}"), format!("{again:?}"), "not deterministic");
    match first {
        Ok(Parsed::Event(e)) => {
            prop_assert!(!e.call_id.is_empty());
            prop_assert!(e.attachment.is_none(), "parse must not touch the file system");
            let json = serde_json::to_value(&e).expect("an event serializes");
            let mut dirty = Vec::new();
            unclean_strings(&json, &mut dirty);
            prop_assert!(dirty.is_empty(), "control characters reach the template context: {:?}", dirty);
        }
        Ok(Parsed::Skipped(message_type)) => prop_assert!(!message_type.is_empty()),
        Err(err) => {
            let text = err.to_string();
            prop_assert!(text.starts_with(PATH), "error does not name the file: {}", text);
            if let Some(line) = err.line {
                prop_assert!(line >= 1 && line <= bytes.len() + 1, "implausible line {} in {}", line, text);
            }
        }
    }
    Ok(())
}

/// Every fixture header (not the 1 MiB one: mutating it is slow and adds nothing).
fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for dir in [fixture(""), fixture("bad")] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let small = std::fs::metadata(&path).unwrap().len() < 64 * 1024;
            if path.extension().is_some_and(|e| e == "txt") && small {
                seeds.push(std::fs::read(&path).unwrap());
            }
        }
    }
    seeds.sort();
    seeds
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop_oneof![
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b" : ".to_vec()),
        Just(b"\0".to_vec()),
        Just(b"<".to_vec()),
        Just(b"&e;".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\xFF\xFE".to_vec()),
        Just("ü–山".as_bytes().to_vec()),
        vec(any::<u8>(), 1..16),
    ];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), interesting).prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 1..64usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), 1..200usize, any::<usize>()).prop_map(|(i, n, at)| Mutation::Duplicate(i, n, at)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        let at = |i: usize| if len == 0 { 0 } else { i % (len + 1) };
        match m {
            Mutation::Set(i, b) if len > 0 => bytes[i % len] = *b,
            Mutation::Set(..) => {}
            Mutation::Insert(i, v) => {
                let i = at(*i);
                bytes.splice(i..i, v.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let i = at(*i);
                bytes.drain(i..(i + n).min(len));
            }
            Mutation::Duplicate(i, n, to) => {
                let i = at(*i);
                let piece = bytes[i..(i + n).min(len)].to_vec();
                let to = at(*to);
                bytes.splice(to..to, piece);
            }
            Mutation::Truncate(i) => bytes.truncate(at(*i)),
        }
    }
    bytes
}

const KEYS: [&str; 16] = [
    "MessageType",
    "CallerId",
    "CallId",
    "RecipientAddress",
    "RecipientName",
    "RecipientCulture",
    "CultureInfo",
    "Duration",
    "Codec",
    "AttachmentName",
    "AttachmentPath",
    "Important",
    "NumberOfPages",
    "SentTime",
    "OCSNotificationData",
    "X-Unknown",
];
const VALUES: [&str; 16] = [
    "VoiceMail",
    "SMTPVoiceMail",
    "MissedCall",
    "Fax",
    "OCSNotification",
    "HealthCheck",
    "True",
    "false",
    "12",
    "-1",
    "Gsm",
    "en-US",
    r"C:\vm\x.wav",
    r"C:\vm\x.tif",
    "06/05/2014 17:20:44",
    "null",
];

fn header_line() -> impl Strategy<Value = String> {
    let key = prop_oneof![proptest::sample::select(&KEYS[..]).prop_map(str::to_owned), "[A-Za-z][A-Za-z0-9_-]{0,12}"];
    let sep = proptest::sample::select(&[" : ", ":", " :", "\t:\t", " : :", " ", ""][..]);
    let value = prop_oneof![proptest::sample::select(&VALUES[..]).prop_map(str::to_owned), xml_text(), "[^\r\n]{0,30}",];
    prop_oneof![
        8 => (key, sep, value).prop_map(|(k, s, v)| format!("{k}{s}{v}")),
        1 => Just(String::new()),
        1 => xml_text(),
        1 => "[^\r\n]{0,40}",
    ]
}

fn header_text() -> impl Strategy<Value = String> {
    let eol = proptest::sample::select(&["\r\n", "\n", "\r"][..]);
    (vec(header_line(), 0..24), eol).prop_map(|(lines, eol)| lines.join(eol))
}

const XML_TOKENS: [&str; 32] = [
    "<?xml version=\"1.0\" encoding=\"us-ascii\"?>",
    "<UserNotification>",
    "</UserNotification>",
    "<User>",
    "</User>",
    "sip:u@contoso.com",
    "<EumProxyAddress>",
    "</EumProxyAddress>",
    "<Time>",
    "</Time>",
    "2011-02-11 01:29:39Z",
    "<Event type=\"missed\">",
    "<Event type='Answered'>",
    "<Event type=\"forbidden\">",
    "<Event>",
    "</Event>",
    "<From>",
    "</From>",
    "<Target>",
    "</Target>",
    "<TargetClass>Secondary</TargetClass>",
    "<Priority>urgent</Priority>",
    "<CallId>c</CallId>",
    "&amp;",
    "&#233;",
    "&#xD800;",
    "&e;",
    "<![CDATA[<x>]]>",
    "<!DOCTYPE UserNotification [<!ENTITY e \"y\">]>",
    "<!-- c -->",
    "<Event type=\"missed\"/>",
    "<From/>",
];

fn xml_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![4 => proptest::sample::select(&XML_TOKENS[..]).prop_map(str::to_owned), 1 => "[^\r\n]{0,8}"];
    vec(token, 0..30).prop_map(|t| t.concat())
}

/// A value that survives the grammar unchanged: non-empty, trimmed, on one line, without
/// characters that are flattened (the property above covers those).
fn plain_value() -> impl Strategy<Value = String> {
    "[^\\p{Cc}\u{2028}-\u{202E}\u{2066}-\u{2069}]{1,40}"
        .prop_map(|v| v.trim().to_owned())
        .prop_filter("empty after trimming", |v| !v.is_empty() && !v.chars().any(is_flattened))
}

proptest! {
    #[test]
    fn any_bytes(bytes in vec(any::<u8>(), 0..4096)) {
        holds_for(&bytes)?;
    }

    #[test]
    fn mutated_fixtures(seed in proptest::sample::select(seeds()), mutations in vec(mutation(), 1..8)) {
        holds_for(&apply(seed, &mutations))?;
    }

    #[test]
    fn header_shaped_text(text in header_text(), utf16 in any::<bool>()) {
        holds_for(text.as_bytes())?;
        if utf16 {
            let mut le = vec![0xFF, 0xFE];
            text.encode_utf16().for_each(|u| le.extend_from_slice(&u.to_le_bytes()));
            holds_for(&le)?;
        }
    }

    #[test]
    fn xml_shaped_text(xml in xml_text()) {
        holds_for(xml.as_bytes())?;
        holds_for(format!("MessageType : OCSNotification\r\nOCSNotificationData : {xml}\r\n").as_bytes())?;
        holds_for(format!("MessageType : OCSNotification\r\n{xml}").as_bytes())?;
    }

    /// Generated valid missed-call headers, in any order, come back as written.
    #[test]
    fn valid_headers_round_trip(
        caller in plain_value(),
        address in plain_value(),
        call_id in plain_value(),
        subject in plain_value(),
        extra in plain_value(),
        order in Just((0..6).collect::<Vec<usize>>()).prop_shuffle(),
        eol in proptest::sample::select(&["\r\n", "\n", "\r"][..]),
    ) {
        let lines = [
            "MessageType : MissedCall".to_owned(),
            format!("CallerId : {caller}"),
            format!("RecipientAddress:{address}"),
            format!("CallId :  {call_id}"),
            format!("Subject\t: {subject} "),
            format!("X-Extra : {extra}"),
        ];
        let text: Vec<&str> = order.iter().map(|&i| lines[i].as_str()).collect();
        let parsed = intake::parse(text.join(eol).as_bytes(), Path::new(PATH), &IntakeOptions::default());
        let Ok(Parsed::Event(e)) = parsed else { return Err(TestCaseError::fail(format!("{parsed:?}"))) };
        prop_assert_eq!(e.kind, Kind::MissedCall);
        prop_assert_eq!(e.caller.raw.as_deref(), Some(caller.as_str()));
        prop_assert_eq!(e.recipient.address.as_deref(), Some(address.as_str()));
        prop_assert_eq!(&e.call_id, &call_id);
        prop_assert_eq!(e.subject.as_deref(), Some(subject.as_str()));
        prop_assert_eq!(e.fields.get("X-Extra"), Some(&extra));
        let keys: Vec<&str> = e.fields.keys().map(String::as_str).collect();
        let want: Vec<&str> = order.iter().map(|&i| ["MessageType", "CallerId", "RecipientAddress", "CallId", "Subject", "X-Extra"][i]).collect();
        prop_assert_eq!(keys, want);
    }
}
