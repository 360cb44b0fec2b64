//! The header's `TranscriptionData` (Exchange's Voice Mail Preview: the ASR XML of
//! [MS-OXOUM] 2.2.2.5, root `ASR`) -> [`Transcript`].
//!
//! Consumes the field's value (one line: `<?xml …?><ASR …>…</ASR>`) and its line number;
//! always produces a transcript, never an error: XML that cannot be read gives a transcript
//! that is `unreadable` (no preview, a reason line) with a [`TranscriptProblem`] for the
//! admin's log, so a bad preview never holds the voicemail back. Elements and attributes are
//! matched by local name without regard to case, in any namespace or none. `Text`, `Break`
//! and `Feature` are read in document order; `Text` content is kept verbatim (each word
//! carries its own spacing); a `PhoneNumber` feature becomes a number part, its leading and
//! trailing punctuation and spaces moved out into text; `Information` and `ErrorInformation`
//! are kept apart from the text. Refuses a DTD and expands no entity (see [`super::xml`]);
//! values over [`MAX_TRANSCRIPT_BYTES`] are not parsed. Control characters in the text
//! become spaces. Work is linear in the value. Numbers get their E.164 later (enrichment).

use quick_xml::events::BytesStart;
use quick_xml::{Reader, XmlVersion};

use super::values::{beginning, is_culture_name, within};
use super::xml::{Piece, XmlError, next_piece};
use crate::event::{
    ConfidenceBand, PartKind, RecognitionError, RecognitionResult, Transcript, TranscriptPart, TranscriptProblem, flatten_controls,
    is_flattened,
};

/// Largest `TranscriptionData` value read, in bytes: far above a real preview (a 3-minute
/// message is about 45 KiB of Exchange's XML, a 10-minute one about 150 KiB). A longer value
/// is not parsed: the voice mail goes out without a preview.
pub const MAX_TRANSCRIPT_BYTES: usize = 256 << 10;

/// The text shown between two sentences (a `Break` that does not end a paragraph).
const PAUSE: &str = " – ";

/// Languages written right to left (the first subtag of a culture name).
const RTL: [&str; 8] = ["ar", "he", "fa", "ur", "yi", "ps", "sd", "dv"];

/// The transcript of the `TranscriptionData` value on header line `line` (which names it in
/// the problem, if any); a confidence at or under `low_confidence` makes it unsure.
pub fn read(value: &str, line: usize, low_confidence: f64) -> Transcript {
    if value.len() > MAX_TRANSCRIPT_BYTES {
        return unreadable(line, format!("over {MAX_TRANSCRIPT_BYTES} bytes; not read"));
    }
    match parse(value) {
        Ok(asr) => asr.into_transcript(line, low_confidence),
        Err(message) => unreadable(line, message),
    }
}

/// A value from the XML as a problem message quotes it: at most [`QUOTED`] characters.
fn quoted(value: &str) -> String {
    within(value, QUOTED).map_or_else(|_| beginning(value), str::to_owned)
}

/// The longest value quoted whole in a problem message (a log line).
const QUOTED: usize = 40;

/// Longest problem message, in characters (a parser's message may quote a long name).
const MAX_MESSAGE_CHARS: usize = 300;

/// `message`, cut to [`MAX_MESSAGE_CHARS`] and cleaned of control characters.
fn bounded(message: String) -> String {
    let message = if message.chars().count() > MAX_MESSAGE_CHARS {
        message.chars().take(MAX_MESSAGE_CHARS).chain(['…']).collect()
    } else {
        message
    };
    flatten_controls(&message).into_owned()
}

/// No preview: the XML could not be read, for the reason in `message`.
fn unreadable(line: usize, message: String) -> Transcript {
    Transcript {
        result: RecognitionResult::Unreadable,
        error: RecognitionError::Unreadable,
        failed: true,
        reason: Some(RecognitionError::Unreadable.as_str().to_owned()),
        problem: Some(TranscriptProblem { line, message: bounded(message) }),
        ..Transcript::default()
    }
}

/// The `ASR` element's attributes, as written.
#[derive(Debug, Default)]
struct Attributes {
    lang: Option<String>,
    confidence: Option<String>,
    band: Option<String>,
    result: Option<String>,
    error: Option<String>,
    producer_id: Option<String>,
}

/// What the XML says.
#[derive(Debug, Default)]
struct Asr {
    attributes: Attributes,
    parts: Vec<TranscriptPart>,
    information: Option<String>,
    error_information: Option<String>,
}

/// Where collected text goes when its element ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Text,
    FeatureText,
    Information,
    ErrorInformation,
}

/// A `Feature` being read: its class, reference and words so far.
#[derive(Debug)]
struct Feature {
    class: String,
    reference: Option<String>,
    text: String,
}

#[derive(Default)]
struct Walk {
    depth: usize,
    root_seen: bool,
    root_closed: bool,
    /// The element whose text is collected, the depth it opened at, and the text.
    capture: Option<(Target, usize, String)>,
    feature: Option<Feature>,
    asr: Asr,
}

/// Reads the ASR document; `Err` is the reason it cannot be used, for the admin.
fn parse(xml: &str) -> Result<Asr, String> {
    let mut reader = Reader::from_str(xml);
    let mut walk = Walk::default();
    loop {
        let (_, piece) = next_piece(&mut reader).map_err(|(at, e)| describe(&e, at))?;
        match piece {
            Piece::Start(e) => walk.start(&e)?,
            Piece::Empty(e) => {
                walk.start(&e)?;
                walk.end();
            }
            Piece::End => walk.end(),
            Piece::Text(text) => walk.text(&text)?,
            Piece::Eof => break,
        }
    }
    if walk.depth > 0 {
        return Err("malformed XML: unexpected end of input inside `<ASR>`".to_owned());
    }
    if !walk.root_seen {
        return Err("no `<ASR>` element".to_owned());
    }
    Ok(walk.asr)
}

/// A reading error with its cause and where it was found.
fn describe(e: &XmlError, at: u64) -> String {
    match e {
        XmlError::Malformed(source) => format!("malformed XML at byte {at}: {source}"),
        XmlError::Dtd => "DTD not allowed (`<!DOCTYPE …>`); entities are never expanded".to_owned(),
        other => format!("{other} at byte {at}"),
    }
}

/// Whether `e`'s local name is `name`, without regard to case.
fn is(e: &BytesStart<'_>, name: &str) -> bool {
    e.local_name().as_ref().eq_ignore_ascii_case(name.as_bytes())
}

/// The unescaped value of attribute `name` (local name, any case), if any.
fn attribute(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, String> {
    for attr in e.attributes() {
        let attr = attr.map_err(|err| format!("malformed XML: {err}"))?;
        if attr.key.local_name().as_ref().eq_ignore_ascii_case(name.as_bytes()) {
            let value = attr.normalized_value(XmlVersion::Implicit1_0).map_err(|err| format!("malformed XML: {err}"))?;
            return Ok(Some(flatten_controls(value.trim()).into_owned()));
        }
    }
    Ok(None)
}

impl Walk {
    fn start(&mut self, e: &BytesStart<'_>) -> Result<(), String> {
        match self.depth {
            0 => self.root(e)?,
            1 if self.capture.is_none() => self.child(e)?,
            2 if self.capture.is_none() && self.feature.is_some() && is(e, "Text") => {
                self.capture = Some((Target::FeatureText, 2, String::new()));
            }
            _ => {}
        }
        self.depth += 1;
        Ok(())
    }

    fn root(&mut self, e: &BytesStart<'_>) -> Result<(), String> {
        if self.root_closed {
            return Err("malformed XML: content after the `<ASR>` element".to_owned());
        }
        if !is(e, "ASR") {
            let found = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
            return Err(format!("root element is `<{}>`, expected `<ASR>`", quoted(&found)));
        }
        self.root_seen = true;
        self.asr.attributes = Attributes {
            lang: attribute(e, "lang")?,
            confidence: attribute(e, "confidence")?,
            band: attribute(e, "confidenceBand")?,
            result: attribute(e, "recognitionResult")?,
            error: attribute(e, "recognitionError")?,
            producer_id: attribute(e, "productID")?,
        };
        Ok(())
    }

    /// A child of `ASR`; unknown elements are skipped with their content.
    fn child(&mut self, e: &BytesStart<'_>) -> Result<(), String> {
        let capture = |target| Some((target, 1, String::new()));
        if is(e, "Text") {
            self.capture = capture(Target::Text);
        } else if is(e, "Information") {
            self.capture = capture(Target::Information);
        } else if is(e, "ErrorInformation") {
            self.capture = capture(Target::ErrorInformation);
        } else if is(e, "Break") {
            let paragraph = attribute(e, "wt")?.is_some_and(|w| w.eq_ignore_ascii_case("high"));
            let part = if paragraph { TranscriptPart::new(PartKind::Paragraph, "") } else { TranscriptPart::new(PartKind::Pause, PAUSE) };
            self.asr.parts.push(part);
        } else if is(e, "Feature") {
            let class = attribute(e, "class")?.unwrap_or_default();
            self.feature = Some(Feature { class, reference: attribute(e, "reference")?, text: String::new() });
        }
        Ok(())
    }

    fn end(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        if self.capture.as_ref().is_some_and(|(_, depth, _)| *depth == self.depth)
            && let Some((target, _, text)) = self.capture.take()
        {
            self.close(target, text);
        }
        if self.depth == 1
            && let Some(feature) = self.feature.take()
        {
            push_feature(&mut self.asr.parts, feature);
        }
        if self.depth == 0 {
            self.root_closed = true;
        }
    }

    fn close(&mut self, target: Target, text: String) {
        let text = spaced(text);
        match target {
            Target::Text => push_text(&mut self.asr.parts, &text),
            Target::FeatureText => {
                if let Some(f) = self.feature.as_mut() {
                    f.text.push_str(&text);
                }
            }
            Target::Information => self.asr.information = Some(text.trim().to_owned()).filter(|t| !t.is_empty()),
            Target::ErrorInformation => self.asr.error_information = Some(text.trim().to_owned()).filter(|t| !t.is_empty()),
        }
    }

    fn text(&mut self, text: &str) -> Result<(), String> {
        if self.depth == 0 && !text.trim().is_empty() {
            return Err("malformed XML: text outside the `<ASR>` element".to_owned());
        }
        if let Some((_, _, collected)) = self.capture.as_mut() {
            collected.push_str(text);
        }
        Ok(())
    }
}

/// `text` with every control character (a line break, a bidi override) turned into a space,
/// keeping the spacing around it.
fn spaced(text: String) -> String {
    if text.chars().any(is_flattened) { text.chars().map(|c| if is_flattened(c) { ' ' } else { c }).collect() } else { text }
}

/// Appends words, joined to the text part before them when there is one.
fn push_text(parts: &mut Vec<TranscriptPart>, text: &str) {
    if text.is_empty() {
        return;
    }
    match parts.last_mut() {
        Some(last) if last.kind == PartKind::Text => last.text.push_str(text),
        _ => parts.push(TranscriptPart::new(PartKind::Text, text)),
    }
}

/// Appends a feature: a phone number between the punctuation and spaces around it, any
/// other class as a feature part.
fn push_feature(parts: &mut Vec<TranscriptPart>, feature: Feature) {
    let edge = |c: char| c.is_whitespace() || matches!(c, '.' | ',' | ';' | ':');
    let core = feature.text.trim_matches(edge);
    if core.is_empty() {
        push_text(parts, &feature.text);
        return;
    }
    let start = feature.text.len() - feature.text.trim_start_matches(edge).len();
    let phone = feature.class.eq_ignore_ascii_case("PhoneNumber");
    push_text(parts, &feature.text[..start]);
    let mut part = TranscriptPart::new(if phone { PartKind::Number } else { PartKind::Feature }, core);
    part.class = Some(feature.class.clone());
    part.reference = feature.reference.clone().filter(|r| !r.is_empty());
    parts.push(part);
    push_text(parts, &feature.text[start + core.len()..]);
}

/// `value` read without regard to case among `names`.
fn named<T: Copy>(value: &str, names: &[(&str, T)]) -> Option<T> {
    names.iter().find(|(name, _)| name.eq_ignore_ascii_case(value)).map(|(_, v)| *v)
}

const RESULTS: [(&str, RecognitionResult); 3] =
    [("attempted", RecognitionResult::Attempted), ("partial", RecognitionResult::Partial), ("skipped", RecognitionResult::Skipped)];
const BANDS: [(&str, ConfidenceBand); 3] =
    [("low", ConfidenceBand::Low), ("medium", ConfidenceBand::Medium), ("high", ConfidenceBand::High)];

impl Asr {
    fn into_transcript(self, line: usize, low_confidence: f64) -> Transcript {
        let a = &self.attributes;
        let Some(result) = a.result.as_deref().and_then(|r| named(r, &RESULTS)) else {
            let message = match &a.result {
                Some(r) => format!("unknown recognitionResult `{}` (expected attempted, partial or skipped)", quoted(r)),
                None => "`<ASR>` has no recognitionResult".to_owned(),
            };
            return unreadable(line, message);
        };
        let mut notes = Vec::new();
        let error = match a.error.as_deref() {
            None => RecognitionError::Success,
            Some(e) => named(e, &RecognitionError::NAMED).unwrap_or_else(|| {
                notes.push(format!("unknown recognitionError `{}`, read as `other`", quoted(e)));
                RecognitionError::Other
            }),
        };
        let confidence = a.confidence.as_deref().and_then(|c| {
            let value = c.parse::<f64>().ok().filter(|v| (0.0..=1.0).contains(v));
            if value.is_none() {
                notes.push(format!("confidence `{}` is not a number from 0 to 1; ignored", quoted(c)));
            }
            value
        });
        let given_band = a.band.as_deref().and_then(|b| named(b, &BANDS));
        let lang = a.lang.clone().filter(|l| is_culture_name(l));
        let dir = match lang.as_deref().and_then(|l| l.split('-').next()) {
            Some(primary) if RTL.iter().any(|r| r.eq_ignore_ascii_case(primary)) => "rtl",
            _ => "ltr",
        };
        let mut transcript = Transcript {
            parts: trim_breaks(self.parts),
            lang,
            dir: dir.to_owned(),
            result,
            error,
            confidence,
            band: confidence.map(ConfidenceBand::of).or(given_band).unwrap_or(ConfidenceBand::Medium),
            low_confidence: false,
            failed: false,
            reason: None,
            error_information: self.error_information,
            information: self.information,
            producer_id: a.producer_id.as_deref().and_then(|p| p.parse().ok()).unwrap_or(0),
            problem: (!notes.is_empty()).then(|| TranscriptProblem { line, message: notes.join("; ") }),
            ..Transcript::default()
        };
        settle(&mut transcript, given_band, low_confidence);
        transcript
    }
}

/// Breaks at the start or end of the text separate nothing: dropped.
fn trim_breaks(mut parts: Vec<TranscriptPart>) -> Vec<TranscriptPart> {
    let is_break = |p: &TranscriptPart| matches!(p.kind, PartKind::Pause | PartKind::Paragraph);
    while parts.last().is_some_and(is_break) {
        parts.pop();
    }
    let leading = parts.iter().take_while(|p| is_break(p)).count();
    parts.drain(..leading);
    parts
}

/// Decides what the reader sees: the text (none for a skipped result, or one without a
/// visible word, which is read as poor audio as Exchange does), the low-confidence notice
/// (the producer's band says low, or the confidence is at or under `low_confidence`), and
/// the failure reason.
fn settle(t: &mut Transcript, given_band: Option<ConfidenceBand>, low_confidence: f64) {
    let visible = t.parts.iter().any(|p| p.kind != PartKind::Pause && p.kind != PartKind::Paragraph && !p.text.trim().is_empty());
    if t.result != RecognitionResult::Skipped && !visible {
        t.result = RecognitionResult::Skipped;
        t.error = RecognitionError::AudioQualityPoor;
    }
    t.failed = t.result == RecognitionResult::Skipped;
    if t.failed {
        t.parts.clear();
        t.reason = match t.error {
            RecognitionError::LanguageNotSupported => None,
            RecognitionError::Success => Some(RecognitionError::Other.as_str().to_owned()),
            other => Some(other.as_str().to_owned()),
        };
        return;
    }
    t.low_confidence = given_band == Some(ConfidenceBand::Low) || t.confidence.is_some_and(|c| c <= low_confidence);
    t.paragraphs = paragraphs(&t.parts);
    t.text = t.paragraphs.join(" ");
}

/// The parts as plain text, one string per paragraph: no space left before a pause or a
/// paragraph end, none at either end of a paragraph.
fn paragraphs(parts: &[TranscriptPart]) -> Vec<String> {
    let mut out = vec![String::new()];
    for part in parts {
        let current = out.last_mut().expect("never empty");
        if matches!(part.kind, PartKind::Pause | PartKind::Paragraph) {
            current.truncate(current.trim_end().len());
        }
        if part.kind == PartKind::Paragraph {
            out.push(String::new());
        } else {
            current.push_str(&part.text);
        }
    }
    out.into_iter().map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect()
}

#[cfg(test)]
mod tests;
