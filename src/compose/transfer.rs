//! Content-Transfer-Encoding of the parts we build, done once and handed to lettre ready
//! (`Body::dangerous_pre_encoded`).
//!
//! lettre's automatic `Body::new` is correct but generic: it normalises line endings in one
//! pass, scans the part twice to choose an encoding, then encodes byte by byte through a
//! formatter (base64 one 76-character line at a time through `fmt::Write`). For the
//! notification bodies and the voicemail audio that was a third of the time spent per message
//! (see the pipeline benchmark in the README), so the two encodings callnote needs are done
//! here in one pass each, into a buffer of the final size:
//!
//! - [`text`]: a text or HTML part. `7bit` when it already is (ASCII, no line of 76 bytes or
//!   more, the same rule lettre applies), otherwise `quoted-printable` (RFC 2045 §6.7): lines
//!   of at most 76 characters with soft breaks, `=` and every byte outside printable ASCII
//!   escaped, whitespace at a line's end escaped. Line ends become CRLF either way.
//! - [`binary`]: an attachment, `base64` in lines of 76 characters (RFC 2045 §6.8).
//! - [`AttachmentBody::read_from`]: the same, read from a file block by block and bounded, so
//!   only the encoded copy is ever held whole (never the raw bytes as well).
//!
//! Both are checked by decoding with an independent MIME parser (the unit tests here, and the
//! `.eml` parse-back tests under `tests/it`).

use std::io::{self, Read};

use base64::Engine as _;
use lettre::message::Body;
use lettre::message::header::ContentTransferEncoding;

use crate::intake::fill;

/// The longest encoded line, without its CRLF (RFC 2045).
const LINE: usize = 76;

/// A text or HTML part, as `7bit` when it can be, else `quoted-printable`.
pub fn text(content: &str) -> Body {
    match seven_bit(content) {
        Some(encoded) => Body::dangerous_pre_encoded(encoded, ContentTransferEncoding::SevenBit),
        None => Body::dangerous_pre_encoded(quoted_printable(content), ContentTransferEncoding::QuotedPrintable),
    }
}

/// An attachment's bytes as `base64`.
pub fn binary(content: &[u8]) -> Body {
    Body::dangerous_pre_encoded(base64_lines(content), ContentTransferEncoding::Base64)
}

/// An attachment's content, base64-encoded and ready for the message, and the name and type
/// it goes out under when they differ from the side file's (an encoded recording).
#[derive(Debug, Clone)]
pub struct AttachmentBody {
    pub(super) body: Body,
    pub(super) file_name: Option<String>,
    pub(super) content_type: Option<&'static str>,
}

impl AttachmentBody {
    fn new(body: Body) -> AttachmentBody {
        AttachmentBody { body, file_name: None, content_type: None }
    }

    /// From bytes already in memory (the generated audio of a sample, an encoded recording).
    pub fn from_bytes(content: &[u8]) -> AttachmentBody {
        AttachmentBody::new(binary(content))
    }

    /// Attached as `file_name` of `content_type` instead of the side file's name and type.
    pub fn named(self, file_name: String, content_type: &'static str) -> AttachmentBody {
        AttachmentBody { file_name: Some(file_name), content_type: Some(content_type), ..self }
    }

    /// Reads `reader` to its end, encoding each block as it arrives. `Ok(None)` when it holds
    /// more than `limit` bytes: reading stops at the first block past the limit. `size_hint`
    /// (the size the file had when opened) sizes the output once.
    pub fn read_from(mut reader: impl Read, limit: u64, size_hint: u64) -> io::Result<Option<AttachmentBody>> {
        // A whole number of 57-byte lines (and of base64 blocks), so pieces join seamlessly.
        const READ: usize = BLOCK * 16;
        let expected = usize::try_from(size_hint.min(limit)).unwrap_or(0);
        let mut out = Vec::with_capacity(base64_capacity(expected));
        let mut buf = vec![0u8; READ];
        let mut block = [0u8; ENCODED_BLOCK];
        let mut total = 0u64;
        loop {
            let filled = fill(&mut reader, &mut buf)?;
            total += filled as u64;
            if total > limit {
                return Ok(None);
            }
            push_base64(&buf[..filled], &mut block, &mut out);
            if filled < READ {
                return Ok(Some(AttachmentBody::new(Body::dangerous_pre_encoded(out, ContentTransferEncoding::Base64))));
            }
        }
    }
}

/// A text's bytes with its lines found in the same pass that encodes them: a line ends at
/// LF, at CR LF, and at the end (one final LF is not a line of its own), and its line-ending
/// CR is dropped. (Splitting into lines first, then encoding each, cost as much again.)
struct Lines<'t> {
    bytes: &'t [u8],
}

/// How a line ends.
#[derive(Clone, Copy)]
enum Break {
    /// The text ends with it.
    Last,
    /// Another line starts after this many bytes (LF or CR LF).
    Next(usize),
}

impl<'t> Lines<'t> {
    fn of(text: &'t str) -> Lines<'t> {
        Lines { bytes: text.strip_suffix('\n').unwrap_or(text).as_bytes() }
    }

    /// The line break at `at`, if a line ends there.
    fn end(&self, at: usize) -> Option<Break> {
        match self.bytes.get(at) {
            None => Some(Break::Last),
            Some(b'\n') => Some(Break::Next(1)),
            Some(b'\r') => match self.bytes.get(at + 1) {
                None => Some(Break::Last),
                Some(b'\n') => Some(Break::Next(2)),
                Some(_) => None,
            },
            Some(_) => None,
        }
    }
}

/// The text with every line ended by CRLF when it is `7bit`: ASCII without NUL or a bare
/// CR, every line shorter than [`LINE`] bytes. `None` otherwise.
fn seven_bit(text: &str) -> Option<Vec<u8>> {
    let lines = Lines::of(text);
    let bytes = lines.bytes;
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16 + 2);
    let (mut start, mut at) = (0, 0);
    loop {
        // Eight bytes at a time while none is a control character or outside ASCII.
        while let Some(word) = word_at(bytes, at) {
            if control_or_high(word) != 0 {
                break;
            }
            at += 8;
        }
        match lines.end(at) {
            Some(line_break) => {
                if at - start >= LINE {
                    return None;
                }
                out.extend_from_slice(&bytes[start..at]);
                out.extend_from_slice(b"\r\n");
                let Break::Next(taken) = line_break else { return Some(out) };
                at += taken;
                start = at;
            }
            None if matches!(bytes[at], 0 | b'\r' | 0x80..) => return None,
            None => at += 1,
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Eight bytes as one word, the first in the lowest byte.
fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The bytes of `x` that are below a space or above `~` (DEL included), each marked by its
/// top bit. Only the lowest mark is exact (a borrow or carry can mark a byte above a marked
/// one).
fn control_or_high(x: u64) -> u64 {
    let below_space = x.wrapping_sub(ONES * 0x20) & !x;
    let above_tilde = x.wrapping_add(ONES) | x;
    (below_space | above_tilde) & HIGH
}

/// Bytes that stand for themselves in quoted-printable (whitespace only inside a line).
const LITERAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = matches!(b as u8, b'!'..=b'<' | b'>'..=b'~' | b' ' | b'\t');
        b += 1;
    }
    table
};

fn is_literal(b: u8) -> bool {
    LITERAL[usize::from(b)]
}

/// [`control_or_high`], and `=` marked as well.
fn marked(x: u64) -> u64 {
    let equals = x ^ (ONES * u64::from(b'='));
    control_or_high(x) | (equals.wrapping_sub(ONES) & !equals & HIGH)
}

/// How many bytes at the start of `bytes` are literal: eight at a time, the first byte that
/// may not be found from the word's marks (a tab is marked but literal: the scan goes on
/// after it), the last few bytes one by one.
fn literal_prefix(bytes: &[u8]) -> usize {
    let mut at = 0;
    while let Some(word) = word_at(bytes, at) {
        let marks = marked(word);
        if marks == 0 {
            at += 8;
            continue;
        }
        let first = at + (marks.trailing_zeros() / 8) as usize;
        if !is_literal(bytes[first]) {
            return first;
        }
        at = first + 1;
    }
    at + bytes[at..].iter().position(|&b| !is_literal(b)).unwrap_or(bytes.len() - at)
}

/// `b` as `=XX` (upper-case hex).
fn escaped(b: u8) -> [u8; 3] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    [b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0x0f)]]
}

fn quoted_printable(text: &str) -> Vec<u8> {
    let lines = Lines::of(text);
    let bytes = lines.bytes;
    let is_space = |b: u8| matches!(b, b' ' | b'\t');
    // Escapes take three bytes; most of a notification is ASCII, so a little headroom is
    // usually enough and the vector grows at most a few times otherwise.
    let mut out = Vec::with_capacity(text.len() + text.len() / 4 + 16);
    // Runs of literal bytes are copied whole; a soft break (`=` CRLF) goes where the next
    // byte would leave no room for one (column 75), except that a line's last byte may take
    // column 76. Whitespace at a line's end is escaped.
    let mut column = 0;
    let mut i = 0;
    loop {
        if let Some(line_break) = lines.end(i) {
            out.extend_from_slice(b"\r\n");
            let Break::Next(taken) = line_break else { return out };
            column = 0;
            i += taken;
            continue;
        }
        let last = || lines.end(i + 1).is_some();
        if is_literal(bytes[i]) && !(is_space(bytes[i]) && last()) {
            // Only the bytes that could still fit on this output line are looked at; a line
            // break is not literal, so the run never passes the line's end.
            let limit = (i + LINE.saturating_sub(column)).min(bytes.len());
            let mut end = i + literal_prefix(&bytes[i..limit]);
            let at_end = lines.end(end).is_some();
            if at_end && is_space(bytes[end - 1]) {
                end -= 1; // escaped on its own, below
            }
            let run = end - i;
            let take = if at_end { run } else { run.min((LINE - 1).saturating_sub(column)) };
            if take == 0 {
                out.extend_from_slice(b"=\r\n");
                column = 0;
                continue;
            }
            out.extend_from_slice(&bytes[i..i + take]);
            column += take;
            i += take;
        } else {
            let room = if last() { LINE } else { LINE - 1 };
            if column + 3 > room {
                out.extend_from_slice(b"=\r\n");
                column = 0;
            }
            out.extend_from_slice(&escaped(bytes[i]));
            column += 3;
            i += 1;
        }
    }
}

/// Input bytes that make one full base64 line.
const CHUNK: usize = LINE / 4 * 3;
/// Encoded a block of lines at a time (the engine is fastest on long input), then laid out
/// line by line with CRLF.
const BLOCK: usize = CHUNK * 64;
const ENCODED_BLOCK: usize = BLOCK / 3 * 4;

/// Bytes of the base64 lines (with their CRLFs) of `len` input bytes.
fn base64_capacity(len: usize) -> usize {
    base64::encoded_len(len, true).unwrap_or(0) + 2 * len.div_ceil(CHUNK)
}

fn base64_lines(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(base64_capacity(bytes.len()));
    push_base64(bytes, &mut [0u8; ENCODED_BLOCK], &mut out);
    out
}

/// Appends the base64 lines of `input` to `out`. Only the last piece of an input may be
/// anything but a whole number of lines ([`CHUNK`] bytes).
fn push_base64(input: &[u8], block: &mut [u8; ENCODED_BLOCK], out: &mut Vec<u8>) {
    let engine = &base64::engine::general_purpose::STANDARD;
    for piece in input.chunks(BLOCK) {
        let written = engine.encode_slice(piece, &mut block[..]).expect("the block buffer fits a block");
        for line in block[..written].chunks(LINE) {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoded(body: &Body) -> &str {
        std::str::from_utf8(body.as_ref()).expect("encoded bodies are ASCII")
    }

    /// Decodes quoted-printable the RFC 2045 way: soft breaks removed, `=XX` to the byte.
    fn decode_qp(encoded: &str) -> Vec<u8> {
        let joined = encoded.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' {
                out.push(u8::from_str_radix(&joined[i + 1..i + 3], 16).expect("hex escape"));
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }

    fn assert_lines_fit(encoded: &str) {
        for line in encoded.split("\r\n") {
            assert!(line.len() <= LINE, "line of {} characters: {line:?}", line.len());
            assert!(!line.contains('\n') && !line.contains('\r'), "bare line break in {line:?}");
        }
    }

    #[test]
    fn short_ascii_stays_seven_bit_with_crlf() {
        let body = text("Missed call\nfrom Jane\n");
        assert_eq!(body.encoding(), ContentTransferEncoding::SevenBit);
        assert_eq!(encoded(&body), "Missed call\r\nfrom Jane\r\n");
        assert_eq!(encoded(&text("a\r\nb")), "a\r\nb\r\n");
    }

    #[test]
    fn non_ascii_and_long_lines_are_quoted_printable() {
        let body = text("Appel manqué = 3 €\n");
        assert_eq!(body.encoding(), ContentTransferEncoding::QuotedPrintable);
        assert_eq!(encoded(&body), "Appel manqu=C3=A9 =3D 3 =E2=82=AC\r\n");

        let long = "x".repeat(200);
        let body = text(&long);
        assert_eq!(body.encoding(), ContentTransferEncoding::QuotedPrintable);
        assert_eq!(encoded(&body), format!("{}=\r\n{}=\r\n{}\r\n", "x".repeat(75), "x".repeat(75), "x".repeat(50)));
    }

    #[test]
    fn whitespace_at_a_line_end_is_escaped_but_not_inside() {
        let body = text("tab\t and space \né\n");
        assert_eq!(encoded(&body), "tab\t and space=20\r\n=C3=A9\r\n");
    }

    #[test]
    fn a_line_of_exactly_76_needs_no_soft_break() {
        let line = format!("{}é", "y".repeat(70)); // 70 + 6 = 76 encoded characters
        assert_eq!(encoded(&text(&line)), format!("{}=C3=A9\r\n", "y".repeat(70)));
    }

    #[test]
    fn base64_lines_are_76_characters() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect(); // several blocks
        let body = binary(&bytes);
        assert_eq!(body.encoding(), ContentTransferEncoding::Base64);
        let text = encoded(&body);
        assert_lines_fit(text);
        assert!(text.ends_with("\r\n"));
        assert_eq!(text.split("\r\n").next().map(str::len), Some(LINE));
        let joined = text.replace("\r\n", "");
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(joined).unwrap(), bytes);
        assert!(encoded(&binary(b"")).is_empty());
    }

    #[test]
    fn read_from_encodes_like_binary_and_stops_past_the_limit() {
        // several reads, the last one short, and reads that return less than asked
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(1000);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let bytes: Vec<u8> = (0..=255u8).cycle().take(3 * BLOCK * 16 + 1234).collect();
        let body = AttachmentBody::read_from(Trickle(&bytes), bytes.len() as u64, 10).unwrap().unwrap();
        assert_eq!(encoded(&body.body), encoded(&binary(&bytes)));
        assert_eq!(body.body.encoding(), ContentTransferEncoding::Base64);

        assert!(AttachmentBody::read_from(Trickle(&bytes), bytes.len() as u64 - 1, 0).unwrap().is_none());
        let exact = &bytes[..BLOCK * 16];
        assert!(AttachmentBody::read_from(Trickle(exact), exact.len() as u64, 0).unwrap().is_some());
        assert!(AttachmentBody::read_from(Trickle(b""), 0, 0).unwrap().is_some());
        assert!(AttachmentBody::read_from(Trickle(b"x"), 0, 0).unwrap().is_none());
    }

    #[test]
    fn literal_prefix_stops_at_the_first_byte_to_escape() {
        assert_eq!(literal_prefix(b"abcdefghijklmnop"), 16);
        assert_eq!(literal_prefix(b"abcdefgh=jklmnop"), 8);
        assert_eq!(literal_prefix(b"abc\tdefghijk\x7fmn"), 12);
        assert_eq!(literal_prefix(b"abcdefghij\xc3\xa9"), 10);
        assert_eq!(literal_prefix(b"\x1f"), 0);
        assert_eq!(literal_prefix(b""), 0);
    }

    /// The encoder as it was before lines were found in the encoding pass (split first, then
    /// each line encoded): the reference the one-pass encoder must match byte for byte.
    mod reference {
        use super::super::{LINE, escaped, is_literal};

        pub fn lines(text: &str) -> impl Iterator<Item = &[u8]> {
            let body = text.strip_suffix('\n').unwrap_or(text);
            body.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line).as_bytes())
        }

        pub fn seven_bit(text: &str) -> Option<Vec<u8>> {
            let ok = lines(text).all(|line| line.len() < LINE && line.iter().all(|&b| b.is_ascii() && b != 0 && b != b'\r'));
            ok.then(|| lines(text).flat_map(|line| [line, b"\r\n"]).flatten().copied().collect())
        }

        pub fn quoted_printable(text: &str) -> Vec<u8> {
            let mut out = Vec::new();
            for line in lines(text) {
                let mut column = 0;
                let mut i = 0;
                while i < line.len() {
                    let last = i + 1 == line.len();
                    if is_literal(line[i]) && !(last && matches!(line[i], b' ' | b'\t')) {
                        let room = if last { LINE } else { LINE - 1 };
                        if column + 1 > room {
                            out.extend_from_slice(b"=\r\n");
                            column = 0;
                        }
                        out.push(line[i]);
                        column += 1;
                    } else {
                        let room = if last { LINE } else { LINE - 1 };
                        if column + 3 > room {
                            out.extend_from_slice(b"=\r\n");
                            column = 0;
                        }
                        out.extend_from_slice(&escaped(line[i]));
                        column += 3;
                    }
                    i += 1;
                }
                out.extend_from_slice(b"\r\n");
            }
            out
        }
    }

    #[test]
    fn line_ends_as_before() {
        for text in ["", "\n", "a", "a\n", "a\r", "a\r\n", "a\n\n", "a\r\r\n", "\r\n\r\n", "a\rb\n", "x \n\t\n"] {
            assert_eq!(seven_bit(text), reference::seven_bit(text), "{text:?}");
            assert_eq!(quoted_printable(text), reference::quoted_printable(text), "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn literal_prefix_agrees_with_a_byte_by_byte_scan(bytes in proptest::collection::vec(prop_oneof![12 => 0x20u8..0x7f, 1 => any::<u8>()], 0..64)) {
            let expected = bytes.iter().position(|&b| !is_literal(b)).unwrap_or(bytes.len());
            prop_assert_eq!(literal_prefix(&bytes), expected);
        }

        #[test]
        fn text_round_trips(content in "[a-zé€ =\t\r\n<>\"&日本-]{0,300}") {
            let body = text(&content);
            let wire = encoded(&body);
            assert_lines_fit(wire);
            let decoded = match body.encoding() {
                ContentTransferEncoding::SevenBit => wire.as_bytes().to_vec(),
                _ => decode_qp(wire),
            };
            // What goes out is the text with CRLF line ends and a final line break.
            let mut expected: Vec<u8> = reference::lines(&content).flat_map(|line| [line, b"\r\n"]).flatten().copied().collect();
            if content.is_empty() { expected.clear(); expected.extend_from_slice(b"\r\n"); }
            prop_assert_eq!(String::from_utf8_lossy(&decoded), String::from_utf8_lossy(&expected));
        }

        #[test]
        fn long_lines_round_trip(content in "[a-z =\t<>é]{0,600}") {
            let wire_body = text(&content);
            let wire = encoded(&wire_body);
            assert_lines_fit(wire);
            if wire_body.encoding() == ContentTransferEncoding::QuotedPrintable {
                let decoded = decode_qp(wire);
                prop_assert_eq!(String::from_utf8_lossy(&decoded), format!("{content}\r\n"));
            }
        }

        #[test]
        fn one_pass_encodes_as_line_by_line(content in "([a-zé€ =\t\r\n<>\"&日本\x00\x7f-]{0,90}\n?){0,6}") {
            prop_assert_eq!(seven_bit(&content), reference::seven_bit(&content));
            prop_assert_eq!(quoted_printable(&content), reference::quoted_printable(&content));
        }

        #[test]
        fn binary_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let body = binary(&bytes);
            let wire = encoded(&body);
            assert_lines_fit(wire);
            let joined = wire.replace("\r\n", "");
            prop_assert_eq!(base64::engine::general_purpose::STANDARD.decode(joined).unwrap(), bytes);
        }
    }
}
