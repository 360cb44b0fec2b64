//! A voicemail's recording goes out in the header's codec: real speech recordings
//! (`tests/fixtures/audio/`) through the whole pipeline, the mail parsed back, and the
//! attachment checked with an independent decoder (minimp3) or by its RIFF/WAVE header.

use std::path::{Path, PathBuf};

use callnote::config::Config;
use callnote::pipeline::{Outcome, Pipeline};
use callnote::render::Templates;
use mail_parser::{MessageParser, MimeHeaders};

use crate::common::fixture;

/// 5.80 s of en-US speech, 16-bit PCM mono 8 kHz.
const SPEECH: &str = "audio/a7b209e4-fa96-4219-9717-c5cabc82b4b8.wav";
/// 5.02 s.
const SPEECH_2: &str = "audio/4ce018f8-9547-4dfe-9b09-a5a7b1ae4f0e.wav";
/// 5.07 s of speech under loud noise.
const NOISY: &str = "audio/6f2542f5-0b16-4284-ad65-53fc6d77eb43.wav";

/// What the mail's attachment is.
struct Attached {
    name: String,
    content_type: String,
    bytes: Vec<u8>,
}

fn pipeline(extra_config: &str) -> Pipeline {
    let toml = format!("[dialplan]\nregion = \"US\"\n[mail]\nfrom = \"Voice Mail <voicemail@contoso.com>\"\n{extra_config}");
    let config = Config::from_toml(&toml, Path::new("test.toml")).expect("test config");
    Pipeline::new(config, Templates::builtin(), None, Some("2026-01-02T03:04:05Z".parse().unwrap()))
}

/// A voicemail header with `codec`, and `wav` beside it, in `dir`.
fn voicemail(dir: &Path, codec: &str, wav: &[u8]) -> PathBuf {
    let header = dir.join("vm.txt");
    let text = format!(
        "MessageType : VoiceMail\r\nCallerId : +12895550147\r\nRecipientAddress : hannah.whitaker@contoso.com\r\n\
         RecipientCulture : en-US\r\nCallId : 1c941dfb-9165-4438-930c-f7e266e92d98\r\n\
         AttachmentName : E:\\UnifiedMessaging\\voicemail\\rec.wav\r\nDuration : 5\r\nCodec : {codec}\r\n"
    );
    std::fs::write(&header, text).unwrap();
    std::fs::write(dir.join("rec.wav"), wav).unwrap();
    header
}

fn attached(p: &Pipeline, codec: &str, wav: &[u8]) -> Attached {
    let dir = tempfile::tempdir().unwrap();
    let header = voicemail(dir.path(), codec, wav);
    let Ok(Outcome::Prepared(prepared)) = p.prepare_file(&header) else { panic!("a message") };
    let bytes = prepared.message.formatted();
    let mail = MessageParser::default().parse(&bytes).expect("MIME");
    assert_eq!(mail.attachment_count(), 1);
    let att = mail.attachment(0).unwrap();
    let ct = att.content_type().map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default())).unwrap_or_default();
    Attached { name: att.attachment_name().unwrap_or_default().to_owned(), content_type: ct, bytes: att.contents().to_vec() }
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

/// Seconds of audio in a 16-bit PCM or 8-bit G.711 WAV: its data size over its byte rate.
fn wav_seconds(wav: &[u8]) -> f64 {
    let byte_rate = u32::from_le_bytes(wav[28..32].try_into().unwrap());
    let data = wav.windows(4).position(|w| w == b"data").expect("a data chunk");
    let len = u32::from_le_bytes(wav[data + 4..data + 8].try_into().unwrap());
    f64::from(len) / f64::from(byte_rate)
}

/// (format tag, channels, rate, bits) of a WAV's `fmt ` chunk (the canonical layout).
fn wav_format(wav: &[u8]) -> (u16, u16, u32, u16) {
    assert!(wav.starts_with(b"RIFF") && &wav[8..16] == b"WAVEfmt ", "a RIFF/WAVE file");
    let u16_at = |i: usize| u16::from_le_bytes([wav[i], wav[i + 1]]);
    (u16_at(20), u16_at(22), u32::from_le_bytes(wav[24..28].try_into().unwrap()), u16_at(34))
}

/// Seconds of audio an MP3 decodes to, with minimp3; every frame must decode.
fn mp3_seconds(mp3: &[u8]) -> f64 {
    let mut decoder = minimp3::Decoder::new(mp3);
    let mut seconds = 0.0;
    loop {
        match decoder.next_frame() {
            Ok(frame) => seconds += frame.data.len() as f64 / frame.channels as f64 / f64::from(frame.sample_rate),
            Err(minimp3::Error::Eof) => return seconds,
            Err(e) => panic!("the MP3 does not decode: {e}"),
        }
    }
}

/// A 16-bit PCM WAV of a 440 Hz tone.
fn tone_wav(rate: u32, channels: u16, seconds: f64) -> Vec<u8> {
    let frames = (f64::from(rate) * seconds) as u32;
    let data = frames * 2 * u32::from(channels);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt \x10\0\0\0\x01\0");
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2 * u32::from(channels)).to_le_bytes());
    out.extend_from_slice(&(2 * channels).to_le_bytes());
    out.extend_from_slice(b"\x10\0data");
    out.extend_from_slice(&data.to_le_bytes());
    for i in 0..frames {
        let s = (9000.0 * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / f64::from(rate)).sin()) as i16;
        (0..channels).for_each(|_| out.extend_from_slice(&s.to_le_bytes()));
    }
    out
}

#[test]
fn an_mp3_voicemail_is_a_small_mp3_of_the_recordings_length_under_a_readable_name() {
    let wav = read(SPEECH);
    let a = attached(&pipeline(""), "Mp3", &wav);
    assert_eq!(a.content_type, "audio/mpeg");
    assert_eq!(a.name, "Voice mail from (289) 555-0147 (0:05).mp3");
    assert_eq!((a.bytes[0], a.bytes[1] & 0xE0), (0xFF, 0xE0), "starts with an MPEG frame sync");
    assert!(a.bytes.len() * 100 <= wav.len() * 35, "{} bytes of MP3 for {} of WAV", a.bytes.len(), wav.len());
    let (mp3, recorded) = (mp3_seconds(&a.bytes), wav_seconds(&wav));
    assert!((mp3 - recorded).abs() <= 0.5, "MP3 {mp3:.2} s, recording {recorded:.2} s");
}

#[test]
fn wma_falls_back_to_mp3() {
    let wav = read(SPEECH_2);
    let a = attached(&pipeline(""), "Wma", &wav);
    assert_eq!((a.content_type.as_str(), a.name.ends_with(".mp3")), ("audio/mpeg", true), "{}", a.name);
    assert!((mp3_seconds(&a.bytes) - wav_seconds(&wav)).abs() <= 0.5);
}

#[test]
fn g711_and_gsm_voicemails_are_8_khz_mulaw_wavs_of_the_recordings_length() {
    for (codec, name) in [("G711", SPEECH_2), ("Gsm", NOISY)] {
        let wav = read(name);
        let a = attached(&pipeline(""), codec, &wav);
        assert_eq!(a.content_type, "audio/wav", "{codec}");
        assert!(a.name.starts_with("Voice mail from ") && a.name.ends_with(".wav"), "{codec}: {}", a.name);
        assert_eq!(wav_format(&a.bytes), (7, 1, 8000, 8), "{codec}: G.711 µ-law, mono, 8 kHz");
        assert!((wav_seconds(&a.bytes) - wav_seconds(&wav)).abs() < 0.01, "{codec}: same length");
        assert!(a.bytes.len() * 100 <= wav.len() * 51, "{codec}: half the size of 16-bit PCM");
    }
}

#[test]
fn wideband_and_stereo_recordings_are_converted_too() {
    let wav = tone_wav(16_000, 2, 3.0);
    let g711 = attached(&pipeline(""), "G711", &wav);
    assert_eq!(wav_format(&g711.bytes), (7, 1, 8000, 8));
    assert!((wav_seconds(&g711.bytes) - 3.0).abs() < 0.01, "{}", wav_seconds(&g711.bytes));
    let mp3 = attached(&pipeline(""), "Mp3", &wav);
    assert!((mp3_seconds(&mp3.bytes) - 3.0).abs() <= 0.5);
    assert!(mp3.bytes.len() * 100 <= wav.len() * 35);
}

#[test]
fn the_configuration_can_force_a_codec_or_keep_the_recording() {
    let wav = read(SPEECH);
    let kept = attached(&pipeline("[delivery]\nvoicemail_codec = \"wav\"\n"), "Mp3", &wav);
    assert_eq!((kept.content_type.as_str(), kept.bytes == wav), ("audio/wav", true), "the recording as it is");
    assert_eq!(kept.name, "Voice mail from (289) 555-0147 (0:05).wav");
    let mp3 = attached(&pipeline("[delivery]\nvoicemail_codec = \"mp3\"\n"), "G711", &wav);
    assert_eq!(mp3.content_type, "audio/mpeg");
    let g711 = attached(&pipeline("[delivery]\nvoicemail_codec = \"g711\"\n"), "Mp3", &wav);
    assert_eq!(wav_format(&g711.bytes), (7, 1, 8000, 8));
}

#[test]
fn a_recording_that_cannot_be_encoded_is_attached_as_it_is() {
    // GSM 6.10 already (tag 0x31): nothing decodes it to MP3, so it goes as it is
    let mut gsm = b"RIFF\x3c\0\0\0WAVEfmt \x14\0\0\0\x31\0\x01\0\x40\x1f\0\0\x59\x06\0\0\x41\0\0\0\x02\0\x40\x01".to_vec();
    gsm.extend_from_slice(b"fact\x04\0\0\0\x40\x01\0\0data\x41\0\0\0");
    gsm.extend(std::iter::repeat_n(0u8, 65));
    let a = attached(&pipeline(""), "Mp3", &gsm);
    assert_eq!((a.content_type.as_str(), a.bytes == gsm), ("audio/wav", true));
    assert!(a.name.ends_with(".wav"), "{}", a.name);
    // and it is what a Gsm dial plan wants: kept for G711/Gsm as well
    assert_eq!(attached(&pipeline(""), "Gsm", &gsm).bytes, gsm);
}
