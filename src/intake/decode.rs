//! Bytes -> text: byte-order mark, encoding, size and line limits, line splitting.
//!
//! Consumes the raw bytes of a header or XML file; produces UTF-8 text (borrowed when the
//! file already is UTF-8) and an iterator over its numbered lines (CRLF, LF or CR). Reads
//! UTF-8 with or without BOM and UTF-16LE/BE with BOM; never guesses an encoding from
//! content (UTF-16 without a BOM shows up as a NUL character and is refused). Enforces the
//! file and line limits before any parsing, with bounded work. Returns [`Problem`]s
//! carrying [`IntakeErrorKind`]s; never panics.

use std::borrow::Cow;

use super::error::{IntakeErrorKind, Problem};

/// Largest file read (1 MiB); anything longer is refused.
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// Longest line accepted (64 KiB of UTF-8), well above the longest legitimate line
/// (`OCSNotificationData`, `ContactInfo`). A `TranscriptionData` line (a voice mail preview,
/// which grows with the message) is bounded by the file size only: the preview reader
/// refuses a value that is too long without failing the file.
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// The one key whose line may exceed [`MAX_LINE_BYTES`].
const LONG_KEY: &str = "TranscriptionData";
/// Most lines accepted. A header has a few dozen; a pretty-printed OCS XML file a few more.
pub const MAX_LINES: usize = 10_000;

const BOM_UTF8: &[u8] = b"\xEF\xBB\xBF";
const BOM_UTF16LE: &[u8] = b"\xFF\xFE";
const BOM_UTF16BE: &[u8] = b"\xFE\xFF";
const BOM_UTF32LE: &[u8] = b"\xFF\xFE\x00\x00";
const BOM_UTF32BE: &[u8] = b"\x00\x00\xFE\xFF";

/// Decodes a whole file to text, checking the size, encoding, NUL characters and line
/// lengths. Empty text (no bytes, or only a BOM) is [`IntakeErrorKind::Empty`].
pub(crate) fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, Problem> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(oversize(bytes));
    }
    let text = if bytes.starts_with(BOM_UTF32LE) || bytes.starts_with(BOM_UTF32BE) {
        let encoding = if bytes[0] == 0 { "UTF-32BE" } else { "UTF-32LE" };
        return Err(Problem::at(1, IntakeErrorKind::UnsupportedEncoding { encoding }));
    } else if let Some(rest) = bytes.strip_prefix(BOM_UTF8) {
        utf8(rest, BOM_UTF8.len())?
    } else if let Some(rest) = bytes.strip_prefix(BOM_UTF16LE) {
        Cow::Owned(utf16(rest, u16::from_le_bytes)?)
    } else if let Some(rest) = bytes.strip_prefix(BOM_UTF16BE) {
        Cow::Owned(utf16(rest, u16::from_be_bytes)?)
    } else {
        utf8(bytes, 0)?
    };
    if text.is_empty() {
        return Err(Problem::whole_file(IntakeErrorKind::Empty));
    }
    check_lines(&text)?;
    Ok(text)
}

/// The error for a file over [`MAX_FILE_BYTES`]: an over-long line inside the first
/// megabyte is named first (it comes first in reading order), else the file size.
fn oversize(bytes: &[u8]) -> Problem {
    let utf16 = bytes.starts_with(BOM_UTF16LE) || bytes.starts_with(BOM_UTF16BE);
    if !utf16 && let Some(line) = first_overlong_line(&bytes[..MAX_FILE_BYTES]) {
        return Problem::at(line, IntakeErrorKind::LineTooLong { limit: MAX_LINE_BYTES });
    }
    Problem::whole_file(IntakeErrorKind::FileTooLarge { limit: MAX_FILE_BYTES })
}

fn utf8(bytes: &[u8], bom_len: usize) -> Result<Cow<'_, str>, Problem> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(Cow::Borrowed(text)),
        Err(e) => {
            let valid = e.valid_up_to();
            let line = line_of(&bytes[..valid]);
            Err(Problem::at(line, IntakeErrorKind::InvalidUtf8 { offset: bom_len + valid }))
        }
    }
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, Problem> {
    let units = bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]));
    let mut text = String::with_capacity(bytes.len() / 2);
    let mut offset = 2; // after the BOM
    for decoded in char::decode_utf16(units) {
        match decoded {
            Ok(c) => {
                offset += 2 * c.len_utf16();
                text.push(c);
            }
            Err(_) => {
                let line = line_of(text.as_bytes());
                return Err(Problem::at(line, IntakeErrorKind::InvalidUtf16 { offset }));
            }
        }
    }
    if bytes.len() % 2 == 1 {
        let line = line_of(text.as_bytes());
        return Err(Problem::at(line, IntakeErrorKind::InvalidUtf16 { offset: bytes.len() + 1 }));
    }
    Ok(text)
}

/// 1-based number of the line that follows `before` (CRLF, LF and CR each end a line).
fn line_of(before: &[u8]) -> usize {
    let mut line = 1;
    let mut prev_cr = false;
    for &b in before {
        match b {
            b'\n' if prev_cr => {}
            b'\n' | b'\r' => line += 1,
            _ => {}
        }
        prev_cr = b == b'\r';
    }
    line
}

/// The first line longer than [`MAX_LINE_BYTES`], counting raw bytes.
fn first_overlong_line(bytes: &[u8]) -> Option<usize> {
    let mut line = 1;
    let mut len = 0;
    let mut prev_cr = false;
    for &b in bytes {
        match b {
            b'\n' if prev_cr => {}
            b'\n' | b'\r' => {
                line += 1;
                len = 0;
            }
            _ => {
                len += 1;
                if len > MAX_LINE_BYTES {
                    return Some(line);
                }
            }
        }
        prev_cr = b == b'\r';
    }
    None
}

/// Refuses NUL characters, over-long lines and too many lines, naming the line.
fn check_lines(text: &str) -> Result<(), Problem> {
    for (number, line) in lines(text) {
        if number > MAX_LINES {
            return Err(Problem::at(number, IntakeErrorKind::TooManyLines { limit: MAX_LINES }));
        }
        if line.len() > MAX_LINE_BYTES && !is_long_key_line(line) {
            return Err(Problem::at(number, IntakeErrorKind::LineTooLong { limit: MAX_LINE_BYTES }));
        }
        if line.as_bytes().contains(&0) {
            return Err(Problem::at(number, IntakeErrorKind::NulCharacter));
        }
    }
    Ok(())
}

/// Whether `line` is a `TranscriptionData :` key line (any case, spaces before the colon).
fn is_long_key_line(line: &str) -> bool {
    let line = line.trim_start();
    line.get(..LONG_KEY.len()).is_some_and(|key| key.eq_ignore_ascii_case(LONG_KEY))
        && line[LONG_KEY.len()..].trim_start_matches([' ', '\t']).starts_with(':')
}

/// The numbered (1-based) lines of `text`, each without its terminator (CRLF, LF or CR).
pub(crate) fn lines(text: &str) -> Lines<'_> {
    Lines { rest: text, number: 0 }
}

/// Iterator returned by [`lines`].
#[derive(Clone)]
pub(crate) struct Lines<'a> {
    rest: &'a str,
    number: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<(usize, &'a str)> {
        if self.rest.is_empty() {
            return None;
        }
        self.number += 1;
        let bytes = self.rest.as_bytes();
        let (line, rest) = match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(end) => {
                let skip = if bytes[end] == b'\r' && bytes.get(end + 1) == Some(&b'\n') { 2 } else { 1 };
                (&self.rest[..end], &self.rest[end + skip..])
            }
            None => (self.rest, ""),
        };
        self.rest = rest;
        Some((self.number, line))
    }
}

/// 1-based line of byte `offset` in `text` (for errors found inside a multi-line value).
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    line_of(&text.as_bytes()[..offset.min(text.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_and_line(bytes: &[u8]) -> (String, Option<usize>) {
        let p = decode(bytes).unwrap_err();
        (p.kind.to_string(), p.line)
    }

    fn utf16le(s: &str) -> Vec<u8> {
        let mut out = BOM_UTF16LE.to_vec();
        s.encode_utf16().for_each(|u| out.extend_from_slice(&u.to_le_bytes()));
        out
    }

    fn utf16be(s: &str) -> Vec<u8> {
        let mut out = BOM_UTF16BE.to_vec();
        s.encode_utf16().for_each(|u| out.extend_from_slice(&u.to_be_bytes()));
        out
    }

    #[test]
    fn utf8_is_borrowed_and_bom_is_stripped() {
        assert!(matches!(decode(b"A : b").unwrap(), Cow::Borrowed("A : b")));
        assert_eq!(decode(b"\xEF\xBB\xBFMessageType : Fax").unwrap(), "MessageType : Fax");
    }

    #[test]
    fn utf16_both_byte_orders() {
        let text = "MessageType : VoiceMail\r\nRecipientName : Jürgen Größmann 山田\r\n";
        assert_eq!(decode(&utf16le(text)).unwrap(), text);
        assert_eq!(decode(&utf16be(text)).unwrap(), text);
        // a character outside the BMP (surrogate pair)
        assert_eq!(decode(&utf16be("Subject : 🎉")).unwrap(), "Subject : 🎉");
    }

    #[test]
    fn broken_utf16_names_byte_and_line() {
        let mut bytes = utf16le("A : b\r\nC : ");
        bytes.extend_from_slice(&0xD800u16.to_le_bytes()); // lone high surrogate
        bytes.extend_from_slice(&(b'x' as u16).to_le_bytes());
        assert_eq!(kind_and_line(&bytes), ("not text: invalid UTF-16 at byte 24".into(), Some(2)));
        let mut odd = utf16le("A : b");
        odd.push(b'c');
        assert_eq!(kind_and_line(&odd), ("not text: invalid UTF-16 at byte 12".into(), Some(1)));
    }

    #[test]
    fn utf32_is_refused_by_name() {
        let (msg, line) = kind_and_line(b"\xFF\xFE\x00\x00M\x00\x00\x00");
        assert_eq!(msg, "unsupported encoding UTF-32LE: only UTF-8 and UTF-16 with a byte-order mark are read");
        assert_eq!(line, Some(1));
        assert!(kind_and_line(b"\x00\x00\xFE\xFF\x00\x00\x00M").0.contains("UTF-32BE"));
    }

    #[test]
    fn invalid_utf8_names_byte_and_line() {
        assert_eq!(kind_and_line(b"\xC3\x28"), ("not text: invalid UTF-8 at byte 0".into(), Some(1)));
        assert_eq!(kind_and_line(b"A : b\r\nC : \xFF"), ("not text: invalid UTF-8 at byte 11".into(), Some(2)));
        assert_eq!(kind_and_line(b"\xEF\xBB\xBFA\r\xFF").0, "not text: invalid UTF-8 at byte 5");
    }

    #[test]
    fn utf16_without_bom_is_a_nul_character() {
        let bytes: Vec<u8> = "Message".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let (msg, line) = kind_and_line(&bytes);
        assert_eq!(msg, "encoding not detectable: NUL character in text (UTF-16 needs a byte-order mark)");
        assert_eq!(line, Some(1));
    }

    #[test]
    fn empty_and_bom_only() {
        assert_eq!(kind_and_line(b"").0, "empty file");
        assert_eq!(kind_and_line(BOM_UTF8).0, "empty file");
        assert_eq!(kind_and_line(BOM_UTF16BE).0, "empty file");
    }

    #[test]
    fn line_and_file_limits() {
        let mut long = b"A : b\nC : ".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES));
        assert_eq!(kind_and_line(&long), ("line too long: over 65536 bytes".into(), Some(2)));
        long.truncate(long.len() - 5); // exactly at the limit is fine
        assert!(decode(&long).is_ok());

        let big: Vec<u8> = b"A : b\n".iter().copied().cycle().take(MAX_FILE_BYTES + 1).collect();
        assert_eq!(kind_and_line(&big), ("file too large: over 1048576 bytes".into(), None));
        // a voice mail preview may be longer than any other line
        let preview = format!("A : b\ntranscriptiondata  :{}", "x".repeat(MAX_LINE_BYTES * 2));
        assert!(decode(preview.as_bytes()).is_ok());
        let other = format!("A : b\nTranscriptionDataX :{}", "x".repeat(MAX_LINE_BYTES));
        assert_eq!(kind_and_line(other.as_bytes()), ("line too long: over 65536 bytes".into(), Some(2)));
        let mut big_long_line = b"A : b\r\nB : c\r\n".to_vec();
        big_long_line.resize(MAX_FILE_BYTES + 10, b'y');
        assert_eq!(kind_and_line(&big_long_line), ("line too long: over 65536 bytes".into(), Some(3)));
    }

    #[test]
    fn line_count_limit() {
        let at_limit = "K : v\n".repeat(MAX_LINES);
        assert!(decode(at_limit.as_bytes()).is_ok());
        let over = format!("{at_limit}K : v");
        assert_eq!(kind_and_line(over.as_bytes()), ("too many lines: over 10000".into(), Some(MAX_LINES + 1)));
        // blank lines count too (CR-only line ends as well)
        let blank = "\r".repeat(MAX_LINES + 1);
        assert_eq!(kind_and_line(blank.as_bytes()).1, Some(MAX_LINES + 1));
    }

    #[test]
    fn lines_split_crlf_lf_and_cr() {
        let got: Vec<_> = lines("a\r\nb\nc\rd\r\r\ne").collect();
        assert_eq!(got, vec![(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, ""), (6, "e")]);
        let got: Vec<_> = lines("x\n").collect();
        assert_eq!(got, vec![(1, "x")]);
        assert_eq!(line_at("a\r\nb\rc", 5), 3);
        assert_eq!(line_at("a\r\nb\rc", 99), 3);
    }
}
