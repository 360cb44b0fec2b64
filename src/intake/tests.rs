//! Unit tests of the whole parse on small inline inputs (the fixture files are driven from
//! tests/it/intake.rs).

use std::path::Path;

use super::*;
use crate::event::{Codec, Importance, Kind, PartyKind};

const PATH: &str = "spool/h.txt";

fn event_of(text: &[u8]) -> Event {
    match parse(text, Path::new(PATH), &IntakeOptions::default()) {
        Ok(Parsed::Event(e)) => *e,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn error_of(text: &[u8]) -> IntakeError {
    match parse(text, Path::new(PATH), &IntakeOptions::default()) {
        Err(e) => e,
        Ok(other) => panic!("expected an error, got {other:?}"),
    }
}

const MISSED: &str = "MessageType : MissedCall\r\nCallerId : +14255550100\r\nRecipientAddress : a@contoso.com\r\nCallId : c-1\r\n";

#[test]
fn key_value_without_spaces_and_any_key_case() {
    let e = event_of(b"messagetype:MissedCall\ncallerid:+14255550100\nRECIPIENTADDRESS:a@contoso.com\nCallID:c-1\nimportant:tRuE");
    assert_eq!(e.kind, Kind::MissedCall);
    assert_eq!(e.message_type, "MissedCall");
    assert_eq!(e.caller.raw.as_deref(), Some("+14255550100"));
    assert_eq!(e.recipient.address.as_deref(), Some("a@contoso.com"));
    assert_eq!(e.call_id, "c-1");
    assert_eq!(e.importance, Importance::High);
    assert_eq!(e.fields.keys().collect::<Vec<_>>(), ["messagetype", "callerid", "RECIPIENTADDRESS", "CallID", "important"]);
}

#[test]
fn message_type_any_case_keeps_the_spelling() {
    let e = event_of(MISSED.replace("MissedCall", "MISSEDCALL").as_bytes());
    assert_eq!((e.kind, e.message_type.as_str()), (Kind::MissedCall, "MISSEDCALL"));
}

#[test]
fn cr_only_utf16be_and_utf16le_read_alike() {
    let plain = event_of(MISSED.as_bytes());
    assert_eq!(event_of(MISSED.replace("\r\n", "\r").as_bytes()), plain);
    assert_eq!(event_of(MISSED.replace("\r\n", "\n").as_bytes()), plain);
    let mut be = vec![0xFE, 0xFF];
    MISSED.encode_utf16().for_each(|u| be.extend_from_slice(&u.to_be_bytes()));
    assert_eq!(event_of(&be), plain);
    let mut le = vec![0xFF, 0xFE];
    MISSED.encode_utf16().for_each(|u| le.extend_from_slice(&u.to_le_bytes()));
    assert_eq!(event_of(&le), plain);
}

#[test]
fn anonymous_when_caller_id_is_missing_or_empty() {
    let e = event_of(MISSED.replace("CallerId : +14255550100", "CallerId : ").as_bytes());
    assert_eq!((e.caller.raw, e.caller.kind), (None, PartyKind::Anonymous));
    assert_eq!(e.fields.get("CallerId").map(String::as_str), Some(""));
}

#[test]
fn call_id_falls_back_to_message_id_then_guid_stem() {
    let no_call_id = MISSED.replace("CallId : c-1\r\n", "");
    let with_message_id = format!("{no_call_id}MessageID : m-9\r\n");
    assert_eq!(event_of(with_message_id.as_bytes()).call_id, "m-9");

    let guid_path = Path::new("spool/0452b4d7-0ba5-4c52-bd6e-689c633e0ab4.txt");
    match parse(no_call_id.as_bytes(), guid_path, &IntakeOptions::default()) {
        Ok(Parsed::Event(e)) => assert_eq!(e.call_id, "0452b4d7-0ba5-4c52-bd6e-689c633e0ab4"),
        other => panic!("{other:?}"),
    }
    let err = error_of(no_call_id.as_bytes());
    assert_eq!(err.line, None);
    assert_eq!(err.to_string(), "spool/h.txt: missing CallId (no MessageID either, and the file name is not a GUID)");
}

#[test]
fn recipient_is_required_for_header_types() {
    let err = error_of(MISSED.replace("RecipientAddress : a@contoso.com\r\n", "").as_bytes());
    assert_eq!(err.to_string(), "spool/h.txt: missing RecipientAddress or RecipientObjectGuid: nobody to notify");
    let e = event_of(
        MISSED.replace("RecipientAddress : a@contoso.com", "RecipientObjectGuid : 5E7BF87A-C77B-4F0F-820F-5F25609C7F58").as_bytes(),
    );
    assert_eq!(e.recipient.object_guid.as_deref(), Some("5E7BF87A-C77B-4F0F-820F-5F25609C7F58"));
    assert_eq!(e.recipient.address, None);
}

#[test]
fn sent_time_is_read_in_the_configured_zone() {
    let text = format!("{MISSED}SentTime : 06/05/2014 17:20:44\r\n");
    let opts = IntakeOptions { sent_time_zone: jiff::tz::TimeZone::get("Europe/Berlin").unwrap(), ..IntakeOptions::default() };
    match parse(text.as_bytes(), Path::new(PATH), &opts) {
        Ok(Parsed::Event(e)) => assert_eq!(e.time.map(|t| t.to_string()).as_deref(), Some("2014-06-05T15:20:44Z")),
        other => panic!("{other:?}"),
    }
    let err = error_of(format!("{MISSED}SentTime : last tuesday\r\n").as_bytes());
    assert_eq!(err.line, Some(5));
    assert_eq!(err.to_string(), "spool/h.txt:5: invalid time `last tuesday` for SentTime (expected MM/dd/yyyy HH:mm:ss)");
}

#[test]
fn voicemail_with_zero_duration_and_null_attachment_has_none() {
    let text = "MessageType : SMTPVoiceMail\r\nRecipientObjectGuid : e5caf65d-f722-41cb-b2f1-0b81c310d795\r\n\
                CallId : v\r\nAttachmentPath : null\r\nDuration : 0\r\nCodec : Mp3\r\n";
    let (parsed, side) = match build_of(text) {
        Ok(built) => (built.parsed, built.side),
        Err(e) => panic!("{e}"),
    };
    let Parsed::Event(e) = parsed else { panic!("{parsed:?}") };
    assert_eq!((e.kind, e.duration_secs, e.codec), (Kind::Voicemail, Some(0), Some(Codec::Mp3)));
    assert_eq!((e.attachment, side), (None, None));
}

fn build_of(text: &str) -> Result<build::Built, IntakeError> {
    parse_built(text.as_bytes(), Path::new(PATH), &IntakeOptions::default())
}

#[test]
fn voicemail_needs_duration_codec_and_a_wav() {
    let err = error_of(b"MessageType : VoiceMail\r\nRecipientAddress : a@b\r\nCallId : v\r\n");
    assert_eq!(err.line, None);
    assert_eq!(err.to_string(), "spool/h.txt: missing Duration\nspool/h.txt: missing Codec");

    let err = error_of(b"MessageType : VoiceMail\r\nRecipientAddress : a@b\r\nCallId : v\r\nDuration : 4\r\nCodec : Gsm\r\n");
    assert_eq!(err.to_string(), "spool/h.txt: missing AttachmentName");

    let err = error_of(
        b"MessageType : VoiceMail\r\nRecipientAddress : a@b\r\nCallId : v\r\nDuration : 4\r\nCodec : Gsm\r\nAttachmentName : C:\\vm\\..\r\n",
    );
    assert_eq!(err.to_string(), "spool/h.txt:6: unusable attachment file name in AttachmentName: `C:\\vm\\..`");
}

#[test]
fn voicemail_side_ref_is_the_base_name_on_its_line() {
    let text = "MessageType : VoiceMail\r\nRecipientAddress : a@b\r\nCallId : v\r\nDuration : 4\r\nCodec : gsm\r\n\
                AttachmentName : E:\\UM\\voicemail\\x.WAV\r\n";
    let built = build_of(text).unwrap();
    let side = built.side.unwrap();
    assert_eq!((side.name.as_str(), side.line, side.kind), ("x.WAV", 6, side_file::SideKind::Wav));
}

#[test]
fn fax_needs_pages_and_a_tif() {
    let base = "MessageType : Fax\r\nRecipientAddress : a@b\r\nCallId : f\r\n";
    let err = error_of(base.as_bytes());
    assert_eq!(err.to_string(), "spool/h.txt: missing NumberOfPages\nspool/h.txt: missing AttachmentPath");
    let err = error_of(format!("{base}NumberOfPages : -3\r\nAttachmentPath : C:\\x\\f.pdf\r\nInComplete : nope\r\n").as_bytes());
    assert_eq!(
        err.to_string(),
        "spool/h.txt:4: invalid whole number `-3` for NumberOfPages\n\
         spool/h.txt:5: attachment `C:\\x\\f.pdf` in AttachmentPath is not a .tif file\n\
         spool/h.txt:6: invalid boolean `nope` for InComplete (expected True or False)"
    );
    let built = build_of(&format!("{base}NumberOfPages : 2\r\nAttachmentPath : C:\\x\\f.tif\r\n")).unwrap();
    let Parsed::Event(e) = built.parsed else { panic!() };
    assert_eq!((e.kind, e.pages), (Kind::Fax, Some(2)));
    assert_eq!(built.side.map(|s| s.name), Some("f.tif".to_owned()));
}

#[test]
fn skipped_types_are_named_as_written() {
    for t in ["HealthCheck", "CDR", "IncomingCallLog", "OutgoingCallLog", "XSOVoiceMail", "PartnerTranscriptionRequest", "healthcheck"] {
        let parsed = parse(format!("MessageType : {t}\r\nCallId : \r\n").as_bytes(), Path::new(PATH), &IntakeOptions::default());
        assert_eq!(parsed.unwrap(), Parsed::Skipped(t.to_owned()));
    }
}

#[test]
fn unknown_and_missing_message_type() {
    let err = error_of(b"CallId : x\r\nMessageType : Telepathy\r\n");
    assert_eq!(err.to_string(), "spool/h.txt:2: unknown MessageType `Telepathy`");
    assert!(matches!(err.kind, IntakeErrorKind::UnknownMessageType { ref value } if value == "Telepathy"));
    let err = error_of(b"\r\n  \r\nCallId : x\r\n");
    assert_eq!(err.to_string(), "spool/h.txt: missing MessageType");
}

#[test]
fn no_header_is_ever_a_digest() {
    for message_type in ["MissedCallDigest", "missed_call_digest"] {
        let err = error_of(MISSED.replace("MissedCall", message_type).as_bytes());
        assert_eq!(err.to_string(), format!("spool/h.txt:1: unknown MessageType `{message_type}`"));
    }
}

const XML: &str = "<?xml version=\"1.0\"?><UserNotification><User>SIP:z@contoso.com</User><Event type=\"missed\">\
                   <CallId>x-1</CallId><From>sip:kwame.mensah@contoso.com</From><Subject>R\u{e9}union</Subject></Event></UserNotification>";

#[test]
fn ocs_header_2010_bare_line_and_2013_field_read_alike() {
    let bare = event_of(format!("MessageType : OCSNotification\r\n{XML}\r\n").as_bytes());
    let data = event_of(format!("MessageType : OCSNotification\r\nOCSNotificationData : {XML}\r\n").as_bytes());
    assert_eq!(bare, data);
    assert_eq!(bare.kind, Kind::MissedCall);
    assert_eq!(bare.call_id, "x-1");
    assert_eq!(bare.caller.raw.as_deref(), Some("sip:kwame.mensah@contoso.com"));
    assert_eq!(bare.recipient.sip.as_deref(), Some("z@contoso.com"));
    assert_eq!(bare.subject.as_deref(), Some("Réunion"));
    assert_eq!(bare.fields.keys().collect::<Vec<_>>(), ["MessageType", "OCSNotificationData"]);
    // wrapped onto the next line like the blog's RecipientAddress
    let wrapped = event_of(format!("MessageType : OCSNotification\r\nOCSNotificationData :\r\n{XML}\r\n").as_bytes());
    assert_eq!(wrapped, data);
}

#[test]
fn standalone_xml_file() {
    let pretty = XML.replace("><", ">\n  <");
    let e = event_of(format!("\u{feff}\r\n{pretty}\n").as_bytes());
    assert_eq!((e.kind, e.message_type.as_str(), e.call_id.as_str()), (Kind::MissedCall, "OCSNotification", "x-1"));
    assert!(e.fields.is_empty());
    let err = error_of(pretty.replace(" type=\"missed\"", "").as_bytes());
    assert_eq!(err.to_string(), "spool/h.txt:4: missing event type: `<Event>` has no `type` attribute");
}

#[test]
fn ocs_header_without_xml() {
    let err = error_of(b"ProcessedCount : 0\r\nMessageType : OCSNotification\r\n");
    assert_eq!(err.to_string(), "spool/h.txt:2: OCSNotification without XML: no OCSNotificationData and no line starting with `<`");
}

#[test]
fn ocs_xml_errors_name_the_header_line() {
    let text =
        format!("MessageType : OCSNotification\r\nProcessedCount : 0\r\nOCSNotificationData : {}\r\n", XML.replace("missed", "rang"));
    let err = error_of(text.as_bytes());
    assert_eq!(err.to_string(), "spool/h.txt:3: unknown event type `rang` (expected missed, answered or forbidden)");
}

#[test]
fn a_voice_mail_preview_never_fails_the_file_however_long_or_broken() {
    let header = |preview: &str| {
        format!(
            "MessageType : VoiceMail\r\nCallerId : +14255550100\r\nRecipientAddress : a@contoso.com\r\nCallId : c-1\r\n\
             Duration : 0\r\nCodec : Mp3\r\nAttachmentName : null\r\nTranscriptionData : {preview}\r\n"
        )
    };
    let asr = |words: usize| {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><ASR lang=\"en-US\" confidence=\"0.9\" recognitionResult=\"attempted\" \
             recognitionError=\"success\">{}</ASR>",
            "<Text c=\"0.9\">word </Text>".repeat(words)
        )
    };
    // longer than any other line may be (a long message's preview), still read
    let long = asr(5_000);
    assert!(long.len() > MAX_LINE_BYTES);
    let t = event_of(header(&long).as_bytes()).transcript.unwrap();
    assert_eq!((t.failed, t.text.matches("word").count()), (false, 5_000));
    // too long to read: the voice mail still goes out, without a preview
    let t = event_of(header(&asr(12_000)).as_bytes()).transcript.unwrap();
    assert_eq!((t.failed, t.reason.as_deref()), (true, Some("unreadable")));
    assert_eq!(t.problem.map(|p| (p.line, p.message)), Some((8, format!("over {MAX_TRANSCRIPT_BYTES} bytes; not read"))));
    // broken XML, or none at all
    let t = event_of(header("<ASR recognitionResult=\"attempted\"><Text>Hi").as_bytes()).transcript.unwrap();
    assert_eq!((t.failed, t.problem.map(|p| p.line)), (true, Some(8)));
    assert_eq!(event_of(header("").as_bytes()).transcript, None);
    // only a voice mail reads it
    let missed = format!("{MISSED}TranscriptionData : {}\r\n", asr(1));
    assert_eq!(event_of(missed.as_bytes()).transcript, None);
}
