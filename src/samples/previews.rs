//! The Voice Mail Previews of the sample voicemails: one per kind of outcome a template must
//! draw (a sure preview with a phone number, an unsure one, a partial one, one in a language
//! written without spaces, a skipped one, one for a language without a recognizer, and one
//! whose XML cannot be read).
//!
//! Consumes a sample's outcome name; produces the `TranscriptionData` value the header would
//! carry and the transcript intake reads from it, with its numbers made dialable under a
//! US dial plan as enrichment would. Pure and deterministic; no I/O.

use crate::event::{LOW_CONFIDENCE, Transcript};
use crate::intake;
use crate::phone::{self, DialPlan};

const NS: &str = "http://schemas.microsoft.com/exchange/um/2010/evm";

/// The ASR XML of a preview on one line, as Exchange writes it.
fn asr(lang: &str, confidence: &str, result: &str, error: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><ASR lang=\"{lang}\" confidence=\"{confidence}\" recognitionResult=\"{result}\" \
         recognitionError=\"{error}\" schemaVersion=\"1.0.0.0\" productID=\"925712\" xmlns=\"{NS}\">{body}</ASR>"
    )
}

/// Words as `Text` elements, each carrying its own spacing.
fn words(words: &[&str]) -> String {
    words.iter().map(|w| format!("<Text c=\"0.9\">{w}</Text>")).collect()
}

/// A phone number heard as `spoken`, understood as `reference`.
fn number(reference: &str, spoken: &[&str]) -> String {
    format!("<Feature class=\"PhoneNumber\" reference=\"{reference}\">{}</Feature>", words(spoken))
}

fn pause(weight: &str) -> String {
    format!("<Break c=\"1\" wt=\"{weight}\"/>")
}

/// The `TranscriptionData` value of the voicemail sample with this outcome, if it has one.
fn xml(outcome: &str) -> Option<String> {
    Some(match outcome {
        "resolved-work" => asr(
            "en-US",
            "0.9120",
            "attempted",
            "success",
            &[
                "<Information lang=\"en-US\">Preview provided by Microsoft Speech Technology.</Information>".to_owned(),
                words(&["Hi", ", ", "it's ", "about ", "the ", "R&amp;D ", "budget", "."]),
                pause("high"),
                words(&["Please ", "call ", "me ", "back ", "at "]),
                number("4255550188", &["425 ", "555 ", "0188"]),
                words(&[" ", "before ", "Friday", "."]),
            ]
            .concat(),
        ),
        "resolved-mobile" => asr(
            "fr-FR",
            "0.2400",
            "attempted",
            "success",
            &[
                words(&["Bonjour", ", ", "c'est ", "pour ", "la ", "réunion ", "budget"]),
                pause("low"),
                words(&["rappelez-moi ", "demain", "."]),
            ]
            .concat(),
        ),
        "ambiguous" => asr("de-DE", "0.0000", "skipped", "messagetoolong", ""),
        "unresolved" => asr(
            "es-ES",
            "0.5500",
            "partial",
            "throttled",
            &[
                words(&["Hola", ", ", "soy ", "de ", "la ", "oficina ", "de ", "Madrid", ". ", "Llámame ", "al "]),
                number("+34915550123", &["91 ", "555 ", "01 ", "23"]),
            ]
            .concat(),
        ),
        "anonymous" => asr(
            "ja-JP",
            "0.8200",
            "attempted",
            "success",
            &[
                words(&["お疲れ様です", "。", "明日", "の", "会議", "は", "10時", "から", "です", "。"]),
                pause("high"),
                number("+81355550123", &["03-5555-0123"]),
                words(&["まで", "ご連絡", "ください", "。"]),
            ]
            .concat(),
        ),
        "sip" => asr("en-GB", "0.0000", "skipped", "languagenotsupported", ""),
        "extension" => {
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><ASR lang=\"fr-CA\" recognitionResult=\"attempted\"><Text>Allô".to_owned()
        }
        _ => return None,
    })
}

/// The `TranscriptionData` value and its transcript for the voicemail sample with `outcome`.
pub fn preview(outcome: &str) -> Option<(String, Transcript)> {
    let xml = xml(outcome)?;
    let mut transcript = intake::read_transcript(&xml, 12, LOW_CONFIDENCE);
    let plan = DialPlan::new("US", Some("9"), 4, 7).ok()?;
    phone::dial_transcript_numbers(&mut transcript, &plan);
    Some((xml, transcript))
}
