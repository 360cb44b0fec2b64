//! Unit tests of the `TranscriptionData` reader, on the fixtures' own values and on
//! hand-made hostile ones.

use super::*;
use crate::event::LOW_CONFIDENCE;

/// The transcript under Exchange's default low-confidence threshold.
fn read(value: &str, line: usize) -> Transcript {
    super::read(value, line, LOW_CONFIDENCE)
}

#[test]
fn the_low_confidence_threshold_is_the_callers() {
    let xml = asr("", "<Text>maybe</Text>").replace("0.9", "0.45");
    assert!(!super::read(&xml, 1, LOW_CONFIDENCE).low_confidence);
    assert!(super::read(&xml, 1, 0.5).low_confidence);
    // the producer's own low band always counts
    let banded = asr(" confidenceBand=\"low\"", "<Text>maybe</Text>");
    assert!(super::read(&banded, 1, 0.1).low_confidence);
}

/// The `TranscriptionData` value of a fixture header.
fn value_of(header: &str) -> &str {
    header.lines().find_map(|l| l.strip_prefix("TranscriptionData : ")).expect("a TranscriptionData line").trim()
}

const PHONE: &str = include_str!("../../../tests/fixtures/vm-2013-preview-mp3-phone-number.txt");
const LOW: &str = include_str!("../../../tests/fixtures/vm-2013-preview-low-confidence.txt");
const FAILED: &str = include_str!("../../../tests/fixtures/vm-2013-preview-failed-poor-audio.txt");

fn asr(attrs: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><ASR lang=\"en-US\" confidence=\"0.9\" recognitionResult=\"attempted\" \
         recognitionError=\"success\" schemaVersion=\"1.0.0.0\"{attrs} xmlns=\"http://schemas.microsoft.com/exchange/um/2010/evm\">{body}</ASR>"
    )
}

fn collapsed(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn high_confidence_with_a_phone_number() {
    let t = read(value_of(PHONE), 15);
    assert_eq!(
        collapsed(&t.text),
        "Hi Hannah, it's Grace from facilities. The badge reader on the third floor is fixed. \
         If it acts up again call me at 425 555 0188. Thanks."
    );
    assert_eq!(t.paragraphs.len(), 2, "a high-weight break ends the paragraph: {:?}", t.paragraphs);
    assert!(t.paragraphs[1].starts_with("If it acts up"));
    assert_eq!((t.result, t.error, t.band), (RecognitionResult::Attempted, RecognitionError::Success, ConfidenceBand::High));
    assert_eq!(t.confidence, Some(0.8642));
    assert!(!t.low_confidence && !t.failed);
    assert_eq!(t.reason, None);
    assert_eq!(t.lang.as_deref(), Some("en-US"));
    assert_eq!(t.dir, "ltr");
    assert_eq!(t.producer_id, 925712);
    assert_eq!(t.information.as_deref(), Some("Preview provided by Microsoft Speech Technology."));
    assert_eq!(t.problem, None);
    let kinds: Vec<PartKind> = t.parts.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, [PartKind::Text, PartKind::Paragraph, PartKind::Text, PartKind::Number, PartKind::Text]);
    let number = &t.parts[3];
    assert_eq!((number.text.as_str(), number.reference.as_deref()), ("425 555 0188", Some("4255550188")));
    assert_eq!(number.class.as_deref(), Some("PhoneNumber"));
    assert_eq!(number.e164, None, "E.164 comes with the dial plan, in enrichment");
    assert!(!t.text.contains("Preview provided"), "the attribution is not preview text");
}

#[test]
fn low_confidence_keeps_the_text_and_a_break_is_never_glue() {
    let t = read(value_of(LOW), 15);
    assert_eq!(t.text, "Good day William Jack here about the shipment to Perth – give me a ring when you can.");
    assert!(t.low_confidence);
    assert!(!t.failed);
    assert_eq!(t.band, ConfidenceBand::Low);
    assert_eq!(t.reason, None);
}

#[test]
fn skipped_recognition_says_why_and_is_not_low_confidence() {
    let t = read(value_of(FAILED), 12);
    assert!(t.failed);
    assert!(!t.low_confidence, "a failure is not a low-confidence preview");
    assert_eq!((t.result, t.error), (RecognitionResult::Skipped, RecognitionError::AudioQualityPoor));
    assert_eq!(t.reason.as_deref(), Some("audioqualitypoor"));
    assert_eq!(t.error_information.as_deref(), Some("Too much background noise to transcribe."));
    assert_eq!(t.text, "");
    assert!(t.parts.is_empty());
}

#[test]
fn language_not_supported_shows_nothing_and_success_without_text_is_poor_audio() {
    let t = read(
        &asr("", "").replace("recognitionResult=\"attempted\"", "recognitionResult=\"skipped\"").replace("success", "languagenotsupported"),
        3,
    );
    assert!(t.failed);
    assert_eq!(t.reason, None);
    let t = read(&asr("", "<Text id=\"n0\" c=\"0.9\"> </Text><Break id=\"n0.5\" wt=\"high\"/>"), 3);
    assert_eq!((t.failed, t.error, t.reason.as_deref()), (true, RecognitionError::AudioQualityPoor, Some("audioqualitypoor")));
}

#[test]
fn text_is_verbatim_entities_decoded_once_and_controls_flattened() {
    let t = read(&asr("", "<Text>R&amp;D </Text><Text>東京</Text><Text>駅</Text><Text>&#10;ok&lt;b&gt;</Text>"), 1);
    assert_eq!(t.text, "R&D 東京駅 ok<b>");
    let t = read(&asr("", "<Text>Hannah</Text><Text>, </Text><Text>it's</Text>"), 1);
    assert_eq!(t.text, "Hannah, it's");
}

#[test]
fn phone_feature_punctuation_moves_outside_the_number() {
    let t = read(
        &asr(
            "",
            "<Text>at </Text><Feature class=\"phonenumber\" reference=\"4567\"><Text>45</Text><Text>67. </Text></Feature><Text>Bye</Text>",
        ),
        1,
    );
    let parts: Vec<(PartKind, &str)> = t.parts.iter().map(|p| (p.kind, p.text.as_str())).collect();
    assert_eq!(parts, [(PartKind::Text, "at "), (PartKind::Number, "4567"), (PartKind::Text, ". Bye")]);
    let t = read(&asr("", "<Feature class=\"Contact\" reference=\"AAAA\"><Text>Grace Kim</Text></Feature>"), 1);
    assert_eq!((t.parts[0].kind, t.parts[0].class.as_deref()), (PartKind::Feature, Some("Contact")));
}

#[test]
fn namespace_and_case_do_not_matter() {
    let xml = "<e:asr xmlns:e=\"urn:x\" lang=\"he-IL\" CONFIDENCE=\"0.5\" recognitionresult=\"PARTIAL\"><e:text>שלום</e:text></e:asr>";
    let t = read(xml, 1);
    assert_eq!((t.text.as_str(), t.result, t.dir.as_str(), t.band), ("שלום", RecognitionResult::Partial, "rtl", ConfidenceBand::Medium));
    assert_eq!(t.problem, None);
}

#[test]
fn unknown_values_are_noted_not_fatal() {
    let t = read(&asr("", "<Text>hello</Text>").replace("\"success\"", "\"gremlins\"").replace("0.9", "lots"), 7);
    assert_eq!((t.failed, t.error, t.confidence), (false, RecognitionError::Other, None));
    let problem = t.problem.expect("noted");
    assert_eq!(problem.line, 7);
    assert_eq!(
        problem.message,
        "unknown recognitionError `gremlins`, read as `other`; confidence `lots` is not a number from 0 to 1; ignored"
    );
}

#[test]
fn unreadable_xml_gives_no_preview_and_a_reason_for_the_admin() {
    let cases = [
        (
            "<?xml version=\"1.0\"?><!DOCTYPE ASR [<!ENTITY a \"aaaa\">]><ASR recognitionResult=\"attempted\"><Text>&a;</Text></ASR>",
            "DTD not allowed (`<!DOCTYPE …>`); entities are never expanded",
        ),
        ("<ASR recognitionResult=\"attempted\"><Text>&nbsp;</Text></ASR>", "undefined entity `&nbsp;` at byte 41"),
        ("<ASR recognitionResult=\"attempted\"><Text>cut", "malformed XML: unexpected end of input inside `<ASR>`"),
        ("<Notes/>", "root element is `<Notes>`, expected `<ASR>`"),
        ("not xml at all", "malformed XML: text outside the `<ASR>` element"),
        ("<ASR><Text>x</Text></ASR>", "`<ASR>` has no recognitionResult"),
        ("<ASR recognitionResult=\"maybe\"/>", "unknown recognitionResult `maybe` (expected attempted, partial or skipped)"),
        ("<ASR recognitionResult=\"skipped\"/><ASR/>", "malformed XML: content after the `<ASR>` element"),
        ("", "no `<ASR>` element"),
    ];
    for (xml, message) in cases {
        let t = read(xml, 9);
        assert!(t.failed, "{xml}");
        assert_eq!((t.result, t.reason.as_deref()), (RecognitionResult::Unreadable, Some("unreadable")), "{xml}");
        assert_eq!(t.problem, Some(TranscriptProblem { line: 9, message: message.to_owned() }), "{xml}");
    }
    let t = read("<ASR><Text>x</Ask></ASR>", 2);
    let message = t.problem.unwrap().message;
    assert!(message.starts_with("malformed XML at byte 12: ill-formed document: expected `</Text>`"), "{message}");
}

#[test]
fn attribute_values_and_quoted_values_are_clean_and_short() {
    let body = "<Feature class=\"Phone&#10;Number\" reference=\"42&#13;&#10;55\"><Text>4255</Text></Feature>";
    let t = read(&asr("", body), 1);
    assert_eq!((t.parts[0].class.as_deref(), t.parts[0].reference.as_deref()), (Some("Phone Number"), Some("42 55")));
    let long = "x".repeat(5000);
    let t = read(&format!("<ASR recognitionResult=\"{long}&#10;\"/>"), 1);
    let message = t.problem.unwrap().message;
    assert_eq!(message, format!("unknown recognitionResult `{}…` (expected attempted, partial or skipped)", "x".repeat(32)));
    let name = "y".repeat(5000);
    let message = read(&format!("<ASR recognitionResult=\"skipped\"><{name}></ASR>"), 1).problem.unwrap().message;
    assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1, "{message}");
}

#[test]
fn oversized_values_are_not_parsed() {
    let huge = asr("", &"<Text>word </Text>".repeat(MAX_TRANSCRIPT_BYTES / 18 + 1));
    let t = read(&huge, 4);
    assert_eq!(t.problem.unwrap().message, "over 262144 bytes; not read");
    // just under the bound is read in full
    let fits = asr("", &"<Text>word </Text>".repeat((MAX_TRANSCRIPT_BYTES - 400) / 18));
    let t = read(&fits, 4);
    assert_eq!(t.text.matches("word").count(), (MAX_TRANSCRIPT_BYTES - 400) / 18);
}
