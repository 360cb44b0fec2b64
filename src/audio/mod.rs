//! Voicemail audio: the spool's raw recording -> the attachment in the dial plan's codec.
//!
//! Exchange compressed the recording to the header's `Codec` before mailing it; callnote does
//! the same ([`Output::for_codec`]):
//! - `Mp3` -> MP3 (`audio/mpeg`, [`mp3`], LAME);
//! - `G711` -> G.711 µ-law WAV at 8 kHz ([`g711`], resampled by [`resample`] when needed);
//! - `Gsm` -> the G.711 WAV: no maintained GSM 6.10 encoder exists for Rust (logged);
//! - `Wma` -> MP3: there is no WMA encoder (logged);
//!
//! and `[delivery] voicemail_codec` ([`CodecChoice`]) can force one output or keep the raw WAV.
//!
//! [`encode`] consumes a reader over the recording (the handle intake opened, from its start)
//! and reads it once, block by block, never more than the attachment limit: only the encoded
//! output grows (an MP3 is about an eighth of 8 kHz PCM, G.711 a half). A recording already
//! in G.711 or GSM 6.10 is kept as it is when G.711 is wanted. A file that is not readable
//! audio gives an [`AudioError`] naming why; the caller then attaches the file as it is.

pub mod g711;
pub mod mp3;
pub mod resample;
pub mod wav;

use std::io::{self, Read};

use crate::event::Codec;
use wav::{Format, WavError, WavReader};

/// Samples read per block (a little over a second at 8 kHz; 8 KiB of 16-bit PCM per channel).
const BLOCK: usize = 4096;
/// The rate of G.711.
const G711_RATE: u32 = 8_000;

/// What the attachment becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Mp3,
    /// G.711 µ-law in RIFF/WAVE, 8 kHz mono.
    G711,
    /// The recording as it is.
    Wav,
}

impl Output {
    /// The output for the header's codec and the configured choice, and a note for the log
    /// when it is not what the codec asks for (no encoder for it).
    pub fn for_codec(codec: Option<Codec>, choice: CodecChoice) -> (Output, Option<&'static str>) {
        match choice {
            CodecChoice::Mp3 => (Output::Mp3, None),
            CodecChoice::G711 => (Output::G711, None),
            CodecChoice::Wav => (Output::Wav, None),
            CodecChoice::Gsm => (Output::G711, Some(NO_GSM)),
            CodecChoice::Dialplan => match codec {
                Some(Codec::Mp3) => (Output::Mp3, None),
                Some(Codec::G711) => (Output::G711, None),
                Some(Codec::Gsm) => (Output::G711, Some(NO_GSM)),
                Some(Codec::Wma) => (Output::Mp3, Some("no WMA encoder: the recording is attached as MP3 instead")),
                None => (Output::Wav, None),
            },
        }
    }

    /// The file name extension, with its dot.
    pub fn extension(self) -> &'static str {
        match self {
            Output::Mp3 => ".mp3",
            Output::G711 | Output::Wav => ".wav",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Output::Mp3 => "audio/mpeg",
            Output::G711 | Output::Wav => "audio/wav",
        }
    }
}

const NO_GSM: &str = "no maintained GSM 6.10 encoder: the recording is attached as G.711 µ-law WAV instead";

/// `[delivery] voicemail_codec`: follow the header's codec, or force one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CodecChoice {
    /// What the header's `Codec` says (the dial plan's or the mailbox's codec).
    #[default]
    Dialplan,
    Mp3,
    G711,
    Gsm,
    /// Keep the recording as it is.
    Wav,
}

impl CodecChoice {
    /// The names the configuration takes.
    pub const NAMES: [&'static str; 5] = ["dialplan", "mp3", "g711", "gsm", "wav"];

    pub fn from_name(name: &str) -> Option<CodecChoice> {
        let all = [CodecChoice::Dialplan, CodecChoice::Mp3, CodecChoice::G711, CodecChoice::Gsm, CodecChoice::Wav];
        CodecChoice::NAMES.iter().position(|n| n.eq_ignore_ascii_case(name.trim())).map(|i| all[i])
    }
}

/// Longest attachment name kept, in characters, before the extension.
const MAX_NAME: usize = 100;

/// `stem` + the output's extension as a file name a mail client can save: path separators and
/// what a quoted header parameter or Windows cannot hold (`\ / * ? " < > |`, controls) become
/// spaces (a `:` stays, as in "(0:42)"; clients replace it when saving where they must), runs of
/// spaces one, and the stem is cut to [`MAX_NAME`] characters; an empty stem is `voicemail`.
pub fn file_name(stem: &str, output: Output) -> String {
    let cleaned: String = stem.chars().map(|c| if c.is_control() || "\\/*?\"<>|".contains(c) { ' ' } else { c }).collect();
    let mut name = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some((cut, _)) = name.char_indices().nth(MAX_NAME) {
        name.truncate(cut);
        name.truncate(name.trim_end().len());
    }
    let name = name.trim_end_matches('.');
    format!("{}{}", if name.is_empty() { "voicemail" } else { name }, output.extension())
}

/// Why a recording was not encoded.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// Not audio that can be encoded: attach the file as it is.
    #[error("{0}")]
    Format(WavError),
    #[error("{0}")]
    Encoder(String),
    /// It holds more than the attachment limit.
    #[error("the recording is over the attachment limit")]
    TooLarge,
    /// Reading failed (a retry may help).
    #[error(transparent)]
    Io(io::Error),
}

impl From<WavError> for AudioError {
    fn from(e: WavError) -> AudioError {
        match e {
            WavError::Io(io) => AudioError::Io(io),
            other => AudioError::Format(other),
        }
    }
}

impl From<io::Error> for AudioError {
    fn from(e: io::Error) -> AudioError {
        AudioError::Io(e)
    }
}

/// What [`encode`] made.
#[derive(Debug)]
pub enum Encoded {
    /// The attachment's bytes.
    Audio(Vec<u8>),
    /// The recording already is in the wanted form: attach it as it is.
    AsIs,
}

/// Encodes the recording `reader` holds (from its start) as `output` (`Mp3` or `G711`; `Wav`
/// is always [`Encoded::AsIs`]), reading at most `limit` bytes.
pub fn encode(reader: impl Read, limit: u64, output: Output) -> Result<Encoded, AudioError> {
    let mut bounded = reader.take(limit.saturating_add(1));
    let result = encode_all(&mut bounded, output, limit);
    if bounded.limit() == 0 {
        return Err(AudioError::TooLarge);
    }
    result
}

fn encode_all(reader: impl Read, output: Output, limit: u64) -> Result<Encoded, AudioError> {
    if output == Output::Wav {
        return Ok(Encoded::AsIs);
    }
    let wav = WavReader::describe(reader)?;
    if output == Output::G711 && is_narrowband_voice(&wav.format) {
        return Ok(Encoded::AsIs);
    }
    wav.format.check_decodable()?;
    match output {
        Output::Mp3 => to_mp3(wav).map(Encoded::Audio),
        _ => to_g711(wav, limit).map(Encoded::Audio),
    }
}

/// Already G.711 at 8 kHz mono, or GSM 6.10: what a G.711 or Gsm dial plan sends.
fn is_narrowband_voice(f: &Format) -> bool {
    let g711 = matches!(f.tag, wav::TAG_MULAW | wav::TAG_ALAW) && f.rate == G711_RATE && f.channels == 1;
    g711 || f.tag == wav::TAG_GSM610
}

fn to_mp3(mut wav: WavReader<impl Read>) -> Result<Vec<u8>, AudioError> {
    let mut encoder = mp3::Mp3::new(wav.format.rate)?;
    let mut out = Vec::new();
    let mut pcm = Vec::with_capacity(BLOCK);
    loop {
        wav.read_block(BLOCK, &mut pcm)?;
        if pcm.is_empty() {
            break;
        }
        encoder.encode(&pcm, &mut out)?;
    }
    encoder.finish(&mut out)?;
    Ok(out)
}

/// The recording as G.711 µ-law WAV; the output is sized once from the `data` chunk's size
/// (never more than `limit` allows), so it is not copied while it grows.
fn to_g711(mut wav: WavReader<impl Read>, limit: u64) -> Result<Vec<u8>, AudioError> {
    let rate = wav.format.rate;
    let mut resampler = match rate {
        G711_RATE => None,
        _ => Some(resample::Resampler::new(rate, G711_RATE).ok_or_else(|| {
            AudioError::Format(WavError::Unsupported(format!("a sample rate of {rate} Hz (too far from 8000 Hz to convert)")))
        })?),
    };
    let format = Format { tag: wav::TAG_MULAW, channels: 1, rate: G711_RATE, bits: 8 };
    let mut out = wav::header(&format, 0, 0);
    let header_len = out.len();
    let frames = wav.frames_left().unwrap_or(0).min(limit) as f64;
    out.reserve((frames * f64::from(G711_RATE) / f64::from(rate)) as usize + 2);
    let (mut pcm, mut narrow) = (Vec::with_capacity(BLOCK), Vec::with_capacity(BLOCK));
    loop {
        wav.read_block(BLOCK, &mut pcm)?;
        if pcm.is_empty() {
            break;
        }
        let samples = match &mut resampler {
            Some(r) => {
                narrow.clear();
                r.process(&pcm, &mut narrow);
                &narrow
            }
            None => &pcm,
        };
        out.extend(samples.iter().map(|&s| g711::linear_to_mulaw(s)));
    }
    if let Some(r) = &mut resampler {
        narrow.clear();
        r.finish(&mut narrow);
        out.extend(narrow.iter().map(|&s| g711::linear_to_mulaw(s)));
    }
    let data_len = u32::try_from(out.len() - header_len).map_err(|_| AudioError::TooLarge)?;
    if data_len % 2 == 1 {
        out.push(0); // chunks are padded to an even size
    }
    out[..header_len].copy_from_slice(&wav::header(&format, data_len, data_len));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcm_wav(rate: u32, seconds: f64) -> Vec<u8> {
        let n = (f64::from(rate) * seconds) as usize;
        let format = Format { tag: wav::TAG_PCM, channels: 1, rate, bits: 16 };
        let mut out = wav::header(&format, (n * 2) as u32, 0);
        for i in 0..n {
            let s = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / f64::from(rate)).sin()) as i16;
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    fn audio(e: Result<Encoded, AudioError>) -> Vec<u8> {
        match e {
            Ok(Encoded::Audio(bytes)) => bytes,
            other => panic!("expected audio, got {other:?}"),
        }
    }

    #[test]
    fn file_names_are_safe_to_save() {
        assert_eq!(file_name("Voice mail from Priya Raman (0:42)", Output::Mp3), "Voice mail from Priya Raman (0:42).mp3");
        assert_eq!(file_name("a/b\\c \"d\"\r\n<e>|f?*", Output::Wav), "a b c d e f.wav");
        assert_eq!(file_name(" ..", Output::Wav), "voicemail.wav");
        assert_eq!(file_name("山田太郎 からのボイスメール (1:05)", Output::Mp3), "山田太郎 からのボイスメール (1:05).mp3");
        assert_eq!(file_name(&"x".repeat(300), Output::Mp3).chars().count(), MAX_NAME + 4);
    }

    #[test]
    fn the_header_codec_decides_unless_configured() {
        use CodecChoice::*;
        assert_eq!(Output::for_codec(Some(Codec::Mp3), Dialplan), (Output::Mp3, None));
        assert_eq!(Output::for_codec(Some(Codec::G711), Dialplan), (Output::G711, None));
        assert_eq!(Output::for_codec(Some(Codec::Gsm), Dialplan), (Output::G711, Some(NO_GSM)));
        assert_eq!(Output::for_codec(Some(Codec::Wma), Dialplan).0, Output::Mp3);
        assert_eq!(Output::for_codec(Some(Codec::Mp3), Wav), (Output::Wav, None));
        assert_eq!(Output::for_codec(Some(Codec::Mp3), G711), (Output::G711, None));
        assert_eq!(Output::for_codec(Some(Codec::G711), Mp3), (Output::Mp3, None));
        assert_eq!(CodecChoice::from_name(" MP3 "), Some(Mp3));
        assert_eq!(CodecChoice::from_name("opus"), None);
    }

    #[test]
    fn g711_of_16_khz_is_8_khz_mulaw_with_a_fact_chunk() {
        let bytes = audio(encode(&pcm_wav(16_000, 1.0)[..], 1 << 20, Output::G711));
        let reader = WavReader::describe(&bytes[..]).unwrap();
        assert_eq!(reader.format, Format { tag: wav::TAG_MULAW, channels: 1, rate: 8000, bits: 8 });
        assert_eq!(&bytes[38..42], b"fact");
        assert_eq!(bytes.len(), 58 + 8000);
        assert_eq!(u32::from_le_bytes(bytes[46..50].try_into().unwrap()), 8000);
    }

    #[test]
    fn mp3_is_small_and_framed() {
        let raw = pcm_wav(8000, 3.0);
        let mp3 = audio(encode(&raw[..], 1 << 20, Output::Mp3));
        assert_eq!((mp3[0], mp3[1] & 0xE0), (0xFF, 0xE0), "frame sync");
        assert!(mp3.len() * 100 <= raw.len() * 35, "{} of {}", mp3.len(), raw.len());
    }

    #[test]
    fn g711_and_gsm_recordings_stay_as_they_are_for_g711() {
        for tag in [wav::TAG_MULAW, wav::TAG_GSM610] {
            let bytes = wav::header(&Format { tag, channels: 1, rate: 8000, bits: 8 }, 0, 0);
            assert!(matches!(encode(&bytes[..], 1 << 20, Output::G711), Ok(Encoded::AsIs)));
        }
        let gsm = wav::header(&Format { tag: wav::TAG_GSM610, channels: 1, rate: 8000, bits: 0 }, 0, 0);
        let err = encode(&gsm[..], 1 << 20, Output::Mp3).unwrap_err();
        assert_eq!(err.to_string(), "GSM 6.10 audio (no GSM decoder)");
    }

    #[test]
    fn reading_stops_past_the_limit() {
        let raw = pcm_wav(8000, 1.0);
        assert!(matches!(encode(&raw[..], 1000, Output::Mp3), Err(AudioError::TooLarge)));
        assert!(matches!(encode(&raw[..], raw.len() as u64, Output::G711), Ok(Encoded::Audio(_))));
    }

    #[test]
    fn odd_files_say_why() {
        let err = encode(&b"RIFF\x24\xff\xff\xffWAVEfmt \0\0\0\0"[..], 1 << 20, Output::Mp3).unwrap_err();
        assert!(matches!(err, AudioError::Format(_)));
        assert_eq!(err.to_string(), "the `fmt ` chunk is 0 bytes (at least 16 expected)");
    }
}
