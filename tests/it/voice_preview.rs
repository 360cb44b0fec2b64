//! The Voice Mail Preview end to end (intake -> enrich -> render -> compose, and the
//! `render` command): each preview fixture's mail is parsed back with a MIME parser and its
//! text and HTML parts must show the transcript, the low-confidence notice, the `tel:` link
//! and the failure reason exactly where they apply; a malformed preview still gives a mail
//! (without a preview) and a warning naming file and line. Also: no raw directory attribute
//! name reaches a recipient.

use std::process::Command;

use callnote::event::{CallerStatus, Kind, RecognitionResult};
use callnote::pipeline::Prepared;
use mail_parser::MessageParser;

use crate::common::fixture;
use crate::compose::{notification_fixtures, pipeline, prepare};

const PHONE: &str = "vm-2013-preview-mp3-phone-number.txt";
const LOW: &str = "vm-2013-preview-low-confidence.txt";
const FAILED: &str = "vm-2013-preview-failed-poor-audio.txt";

/// The text and HTML parts of a prepared mail.
fn parts(prepared: &Prepared) -> (String, String) {
    let bytes = prepared.message.formatted();
    let mail = MessageParser::default().parse(&bytes).expect("MIME");
    let text = mail.body_text(0).expect("text part").replace("\r\n", "\n");
    (text, mail.body_html(0).expect("html part").into_owned())
}

/// Whitespace collapsed, standalone dashes (a pause) dropped.
fn words(s: &str) -> String {
    s.split_whitespace().filter(|w| !matches!(*w, "--" | "–" | "—")).collect::<Vec<_>>().join(" ")
}

/// What a reader sees of HTML: inline tags gone, a `<br>` or block tag read as a space, the
/// entities the autoescape writes decoded, whitespace collapsed.
fn visible(html: &str) -> String {
    const BLOCKS: [&str; 7] = ["br", "p", "div", "td", "tr", "table", "li"];
    let mut out = String::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else { break };
        let tag = &rest[open + 1..open + close];
        let name: String = tag.trim_start_matches('/').chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        if BLOCKS.contains(&name.to_ascii_lowercase().as_str()) {
            out.push(' ');
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    words(&out.replace("&#39;", "'").replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
}

/// A line of the text part is a low-confidence notice (in any shipped language).
fn has_notice(text: &str) -> bool {
    let confidence = ["confidence", "konfidenz", "confiance", "confianza", "信頼"];
    let low = ["low", "niedrig", "faible", "baja", "低"];
    text.lines().any(|l| {
        let l = l.to_lowercase();
        confidence.iter().any(|c| l.contains(c)) && low.iter().any(|w| l.contains(w))
    })
}

#[test]
fn high_confidence_preview_comes_first_with_its_number_linked() {
    let p = pipeline();
    let prepared = prepare(&p, PHONE).unwrap();
    let (text, html) = parts(&prepared);
    let preview = "Hi Hannah, it's Grace from facilities. The badge reader on the third floor is fixed. \
                   If it acts up again call me at 425 555 0188. Thanks.";
    assert!(words(&text).contains(preview), "{text}");
    assert!(visible(&html).contains(preview), "{html}");
    assert!(text.contains("fixed.\n\nIf it acts up"), "the paragraph break is kept: {text}");
    // above the caller block, as Outlook showed it
    assert!(text.find("Hi Hannah").unwrap() < text.find("From: ").unwrap(), "{text}");
    assert!(html.find("Hi Hannah").unwrap() < html.find("Grace Kim").unwrap());
    // the number links to its E.164 under the dial plan; the words stay as spoken
    assert!(html.contains("<a href=\"tel:+14255550188\" style=\"color:#0b62d6;text-decoration:none;\">425 555 0188</a>"), "{html}");
    assert!(html.contains("lang=\"en-US\" dir=\"ltr\""), "{html}");
    assert!(!has_notice(&text), "no notice for a high-confidence preview: {text}");
    assert!(!text.contains("Preview provided by"), "the attribution is not preview text: {text}");
    let transcript = prepared.event.transcript.as_ref().unwrap();
    assert_eq!(transcript.parts.iter().filter_map(|p| p.e164.as_deref()).collect::<Vec<_>>(), ["+14255550188"]);
}

#[test]
fn low_confidence_preview_is_shown_under_a_notice() {
    let p = pipeline();
    let (text, html) = parts(&prepare(&p, LOW).unwrap());
    let preview = "Good day William Jack here about the shipment to Perth give me a ring when you can.";
    assert!(words(&text).contains(preview), "{text}");
    assert!(visible(&html).contains(preview), "{html}");
    assert!(!text.contains("Perthgive") && !html.contains("Perthgive"), "a break is never glue");
    assert!(has_notice(&text), "{text}");
    assert!(text.contains("Confidence is low\nGood day William"), "the notice sits above the text: {text}");
    assert!(html.contains(">Confidence is low</p>"), "{html}");
    assert_eq!(html.matches("href=\"tel:").count(), 1, "no number was heard: the caller's is the only link: {html}");
}

#[test]
fn failed_recognition_says_why_and_has_no_notice() {
    let p = pipeline();
    let (text, html) = parts(&prepare(&p, FAILED).unwrap());
    let lines = [
        "Voice Mail Preview isn't available for this message.",
        "This voice message can't be transcribed. Either the audio quality is poor or the caller left the message in a language that couldn't be recognized.",
        "Too much background noise to transcribe.",
    ];
    for line in lines {
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        assert!(visible(&html).contains(line), "{line}\n{html}");
    }
    assert!(!has_notice(&text), "a skipped preview is a failure, not a low-confidence preview: {text}");
    assert!(!html.contains("Confidence is low"));
}

#[test]
fn only_the_low_confidence_voicemail_has_a_notice() {
    let p = pipeline();
    for name in notification_fixtures() {
        let prepared = prepare(&p, &name).unwrap();
        if prepared.event.kind != Kind::Voicemail {
            continue;
        }
        let (text, _) = parts(&prepared);
        assert_eq!(has_notice(&text), name == LOW, "{name}:\n{text}");
        let bytes = prepared.message.formatted();
        let mail = MessageParser::default().parse(&bytes).unwrap();
        let header = mail.header_raw("X-Callnote-Transcript-Confidence").map(str::trim);
        let want = match name.as_str() {
            LOW => Some("low"),
            PHONE => Some("high"),
            _ => None,
        };
        assert_eq!(header, want, "{name}: a mail rule can sort the unsure previews out");
        assert_eq!(prepared.event.transcript.is_some(), name.starts_with("vm-2013-preview-"), "{name}");
    }
}

#[test]
fn no_raw_directory_attribute_name_reaches_a_recipient() {
    let p = pipeline();
    let mut resolved = 0;
    for name in notification_fixtures() {
        let prepared = prepare(&p, &name).unwrap();
        let (text, html) = parts(&prepared);
        assert!(!text.contains("Directory match") && !html.contains("Directory match"), "{name}");
        let caller = &prepared.event.caller;
        if caller.status != CallerStatus::Resolved {
            continue;
        }
        let attribute = caller.matched_attribute.as_deref().expect("a resolved caller keeps its attribute for the trace");
        // "mobile" is both an attribute and the label a reader is meant to see
        if attribute != "mobile" {
            assert!(!text.contains(attribute) && !html.contains(attribute), "{name}: `{attribute}` shown\n{text}");
            resolved += 1;
        }
    }
    assert!(resolved >= 5, "the check saw enough callers matched by a work number: {resolved}");
}

#[test]
fn malformed_preview_still_delivers_and_logs_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let header = std::fs::read_to_string(fixture(PHONE)).unwrap();
    let cut = header.find("<Text id=\"n5\"").unwrap();
    let end = header[cut..].find("\r\n").unwrap() + cut;
    let broken = format!("{}<Text id=\"n5\"{}", &header[..cut], &header[end..]);
    let input = dir.path().join("04e4da05-2778-4ea1-aecf-c9171399ff70.txt");
    std::fs::write(&input, broken).unwrap();
    std::fs::copy(fixture("a7b209e4-fa96-4219-9717-c5cabc82b4b8.wav"), dir.path().join("a7b209e4-fa96-4219-9717-c5cabc82b4b8.wav"))
        .unwrap();

    let event = match pipeline().parse_file(&input).unwrap() {
        callnote::intake::Parsed::Event(event) => event,
        other => panic!("{other:?}"),
    };
    let transcript = event.transcript.as_ref().unwrap();
    assert_eq!(transcript.result, RecognitionResult::Unreadable);
    assert_eq!(transcript.problem.as_ref().map(|p| p.line), Some(15));

    let out_dir = dir.path().join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_callnote"))
        .args(["render", "--date", "2026-01-02T03:04:05Z", "--directory"])
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/directory.ldif"))
        .arg("--out")
        .arg(&out_dir)
        .arg(&input)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let logged = format!("{}:15: TranscriptionData: malformed XML", input.display());
    assert!(stderr.contains(&logged) && stderr.contains("without a preview"), "{logged}\n{stderr}");
    let eml = std::fs::read_dir(&out_dir).unwrap().next().unwrap().unwrap().path();
    let bytes = std::fs::read(eml).unwrap();
    let mail = MessageParser::default().parse(&bytes).unwrap();
    let text = mail.body_text(0).unwrap().replace("\r\n", "\n");
    assert!(
        text.contains("Voice Mail Preview isn't available for this message.\nThe preview that came with the message could not be read."),
        "{text}"
    );
    assert!(!text.contains("Hi Hannah"), "{text}");
    assert!(text.contains("From: Grace Kim (work), (425) 555-0141"), "{text}");
    assert_eq!(mail.attachments().count(), 1, "the recording still goes with it");
}
