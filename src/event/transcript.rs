//! The Voice Mail Preview of a voicemail as templates see it (`transcript` in
//! docs/template-context.md): the speech-recognition text in order, split into parts a
//! template can print or link without `| safe`, its confidence, and why there is no text.
//!
//! Intake fills it from the header's `TranscriptionData` (see `intake::transcript`);
//! enrichment fills each number part's `e164` and `tel` under the dial plan. Nothing here
//! does I/O or fails.

use serde::{Deserialize, Serialize};

/// Exchange's default upper bound of the low confidence band: a preview whose confidence is
/// at or below it gets the "confidence is low" notice.
pub const LOW_CONFIDENCE: f64 = 0.30;
/// Exchange's default lower bound of the high confidence band (exclusive).
pub const HIGH_CONFIDENCE: f64 = 0.75;

/// What the recognizer did (`recognitionResult`), plus callnote's own `unreadable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecognitionResult {
    Attempted,
    Partial,
    Skipped,
    /// The XML could not be read: no preview, and the admin's log says why.
    Unreadable,
}

/// Why recognition failed (`recognitionError`), as Exchange names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecognitionError {
    Success,
    AudioQualityPoor,
    LanguageNotSupported,
    Rejected,
    BadRequest,
    SystemError,
    Timeout,
    MessageTooLong,
    ProtectedVoiceMail,
    Throttled,
    ErrorReadingSettings,
    Other,
    /// callnote's own: the XML could not be read.
    Unreadable,
}

impl RecognitionError {
    /// Every value Exchange writes, by its XML name (matched without regard to case).
    pub const NAMED: [(&'static str, RecognitionError); 12] = [
        ("success", RecognitionError::Success),
        ("audioqualitypoor", RecognitionError::AudioQualityPoor),
        ("languagenotsupported", RecognitionError::LanguageNotSupported),
        ("rejected", RecognitionError::Rejected),
        ("badrequest", RecognitionError::BadRequest),
        ("systemerror", RecognitionError::SystemError),
        ("timeout", RecognitionError::Timeout),
        ("messagetoolong", RecognitionError::MessageTooLong),
        ("protectedvoicemail", RecognitionError::ProtectedVoiceMail),
        ("throttled", RecognitionError::Throttled),
        ("errorreadingsettings", RecognitionError::ErrorReadingSettings),
        ("other", RecognitionError::Other),
    ];

    /// The name templates look the reason text up by (`t.transcript.reasons[...]`).
    pub fn as_str(self) -> &'static str {
        match self {
            RecognitionError::Unreadable => "unreadable",
            other => RecognitionError::NAMED.iter().find(|(_, e)| *e == other).map_or("other", |(name, _)| name),
        }
    }
}

/// The confidence band: high above [`HIGH_CONFIDENCE`], low at or below [`LOW_CONFIDENCE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfidenceBand {
    Low,
    Medium,
    High,
}

impl ConfidenceBand {
    /// The band of an overall confidence, as Exchange computes it.
    pub fn of(confidence: f64) -> ConfidenceBand {
        if confidence > HIGH_CONFIDENCE {
            ConfidenceBand::High
        } else if confidence > LOW_CONFIDENCE {
            ConfidenceBand::Medium
        } else {
            ConfidenceBand::Low
        }
    }
}

/// What a part of the text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    /// Words and punctuation, verbatim (each word carries its own trailing space).
    Text,
    /// A phone number the recognizer understood: `text` as spoken, `tel` to link to.
    Number,
    /// Another recognized entity (a contact's name): plain text, `class` says which.
    Feature,
    /// A short pause between sentences.
    Pause,
    /// The end of a paragraph.
    Paragraph,
}

/// One part of the preview text, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptPart {
    pub kind: PartKind,
    /// What to print: ` – ` for a pause, empty for a paragraph end. No control characters.
    pub text: String,
    /// The feature's class as written (`PhoneNumber`, `Contact`); `None` for plain text.
    pub class: Option<String>,
    /// A number's digits as the recognizer understood them (`4255550188`).
    pub reference: Option<String>,
    /// A number in E.164 under the dial plan (`+14255550188`); `None` when too short.
    pub e164: Option<String>,
    /// What a `tel:` link dials: the E.164, else the digits of a short (internal) number;
    /// `None`: no link. Only `+` and digits.
    pub tel: Option<String>,
}

impl TranscriptPart {
    pub fn new(kind: PartKind, text: impl Into<String>) -> TranscriptPart {
        TranscriptPart { kind, text: text.into(), class: None, reference: None, e164: None, tel: None }
    }
}

/// Where reading `TranscriptionData` went wrong, for the admin's log (never for the reader).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptProblem {
    /// The header line of `TranscriptionData`.
    pub line: usize,
    pub message: String,
}

/// The Voice Mail Preview of one voicemail (`transcript`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// The whole text on one line: parts in order, a pause as ` – `, a paragraph end as a
    /// space. Empty when there is no preview.
    pub text: String,
    /// The same text cut at each paragraph end (a plain-text body prints them apart).
    pub paragraphs: Vec<String>,
    pub parts: Vec<TranscriptPart>,
    /// The transcript's language (`en-US`), when a valid culture name.
    pub lang: Option<String>,
    /// `rtl` for right-to-left languages, else `ltr`.
    pub dir: String,
    pub result: RecognitionResult,
    pub error: RecognitionError,
    /// Overall confidence 0.0–1.0, when given.
    pub confidence: Option<f64>,
    pub band: ConfidenceBand,
    /// The preview is shown, and it is unsure: templates put a notice above it.
    pub low_confidence: bool,
    /// No preview: skipped by the recognizer, empty, or unreadable.
    pub failed: bool,
    /// The reason line to show when `failed` (`audioqualitypoor`, `unreadable`, …): a key
    /// of `t.transcript.reasons`. `None`: show nothing at all (the language has no
    /// recognizer, as Exchange does), or the preview did not fail.
    pub reason: Option<String>,
    /// The producer's own words about a failure (`ErrorInformation`).
    pub error_information: Option<String>,
    /// The producer's attribution (`Information`), e.g. "Preview provided by …".
    pub information: Option<String>,
    /// `productID`: 925712 is Exchange's own recognizer.
    pub producer_id: u32,
    /// What went wrong reading it (malformed XML, an unknown value): logged as a warning.
    pub problem: Option<TranscriptProblem>,
}

impl Default for Transcript {
    /// An attempted transcript with no text yet: no confidence, medium band, no problem.
    fn default() -> Transcript {
        Transcript {
            text: String::new(),
            paragraphs: Vec::new(),
            parts: Vec::new(),
            lang: None,
            dir: "ltr".to_owned(),
            result: RecognitionResult::Attempted,
            error: RecognitionError::Success,
            confidence: None,
            band: ConfidenceBand::Medium,
            low_confidence: false,
            failed: false,
            reason: None,
            error_information: None,
            information: None,
            producer_id: 0,
            problem: None,
        }
    }
}

/// `confidence` is never NaN (intake keeps only values in 0.0–1.0), so equality is total.
impl Eq for Transcript {}
