//! LDIF export (`ldifde -f`, `ldapsearch -LLL` or plain `ldapsearch`) -> entries.
//!
//! Reads RFC 2849 content records: folded lines (a continuation starts with one space),
//! `attr:: base64`, comments (folded too), an optional `version: 1` at the start of the first
//! record, CRLF or LF, UTF-8 or UTF-16 with BOM, attribute options (`;binary`, `;lang-…`)
//! dropped, and the `search:`/`result:` trailer of plain `ldapsearch`. Refuses `attr:< url`
//! values and change records other than `changetype: add`. Errors carry the 1-based line;
//! never panics.
//!
//! The export streams in chunks of whole records ([`Chunks`]: about [`CHUNK_BYTES`] each, cut
//! after a blank line, where a record always ends), so each chunk parses on its own: a
//! 100,000-person export is never in memory whole, and [`for_each_mapped`] parses chunks on
//! every core while their entries are handed on in file order. Values are borrowed from the
//! chunk ([`EntryView`]); only unfolded lines and base64 values are copies. UTF-8 is checked
//! once per chunk.
//!
//! Hand-written: no LDIF reader is in the dependency tree. Measured (callgrind, one cold
//! `render` with the 100,000-person corpus, bench dial plan): parsing is 1.2 G of the whole
//! process's 4.75 G instructions, reading the entries under the dial plan 2.56 G.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::Read;

use base64::Engine as _;

use super::{Entry, EntryView, SyntaxError, ValueView, text};

/// Attributes whose base64 values are bytes even when they happen to be valid UTF-8.
const BINARY_ATTRIBUTES: [&str; 6] = ["objectguid", "objectsid", "thumbnailphoto", "jpegphoto", "usercertificate", "msexchmailboxguid"];

/// Bytes read for a chunk before it is cut at its last blank line (a record larger than this
/// makes a larger chunk: records are never split).
const CHUNK_BYTES: usize = 128 * 1024;

/// One logical (unfolded) line and the physical line it starts on (counted from the start of
/// its chunk).
struct Line<'a> {
    number: usize,
    text: Cow<'a, str>,
}

/// Parses a whole LDIF export held in memory.
pub(super) fn parse(bytes: &[u8]) -> Result<Vec<Entry>, (usize, SyntaxError)> {
    let mut entries = Vec::new();
    for_each_mapped(bytes, 1, |view| Entry::from(view), |entry| entries.push(entry))?;
    Ok(entries)
}

/// Hands `map` of each entry of the export read from `input` to `each`, in file order, the
/// chunks parsed (and mapped) on `threads` threads besides this one, which reads and hands on
/// (on this thread alone when `threads` is below 2). Stops at the first error in file order;
/// chunks in flight are at most a few per thread, so memory stays flat.
pub(super) fn for_each_mapped<T: Send>(
    input: impl Read + Send,
    threads: usize,
    map: impl Fn(EntryView<'_>) -> T + Sync,
    each: impl FnMut(T),
) -> Result<(), (usize, SyntaxError)> {
    for_each_mapped_in_chunks_of(CHUNK_BYTES, input, threads, map, each)
}

/// [`for_each_mapped`] with chunks cut after `chunk_bytes` (the tests cut tiny ones).
fn for_each_mapped_in_chunks_of<T: Send>(
    chunk_bytes: usize,
    input: impl Read + Send,
    threads: usize,
    map: impl Fn(EntryView<'_>) -> T + Sync,
    mut each: impl FnMut(T),
) -> Result<(), (usize, SyntaxError)> {
    let mut chunks = Chunks::new(input, chunk_bytes)?;
    let lines_before = std::cell::Cell::new(0);
    let mut hand_on = |parsed: Parsed<T>| {
        parsed.items.into_iter().for_each(&mut each);
        if let Some((line, problem)) = parsed.error {
            return Err((lines_before.get() + line, problem));
        }
        lines_before.set(lines_before.get() + parsed.newlines);
        Ok(())
    };
    if threads < 2 {
        while let Some(chunk) = chunks.next(Vec::new()) {
            hand_on(parse_chunk(&chunk, &map))?;
        }
        return Ok(());
    }
    let in_flight_max = threads + 2;
    let (work, queue) = std::sync::mpsc::channel::<Chunk>();
    let queue = std::sync::Mutex::new(queue);
    let (done, results) = std::sync::mpsc::channel::<(Chunk, Parsed<T>)>();
    std::thread::scope(|scope| {
        // Owned here, so that leaving this closure (an error) ends the threads' loops.
        let work = work;
        for _ in 0..threads {
            let (queue, done, map) = (&queue, done.clone(), &map);
            scope.spawn(move || {
                while let Ok(chunk) = queue.lock().map_err(drop).and_then(|queue| queue.recv().map_err(drop)) {
                    // A panic would lose the chunk and leave the reader waiting for it: it
                    // becomes the chunk's error instead.
                    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse_chunk(&chunk, map)))
                        .unwrap_or_else(|_| Parsed::failed(SyntaxError::Io("the parsing thread panicked".into())));
                    if done.send((chunk, parsed)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        // Results by chunk index, from the next one to hand on; spent buffers for new chunks.
        let mut waiting: VecDeque<Option<Parsed<T>>> = VecDeque::new();
        let mut spare: Vec<Vec<u8>> = Vec::new();
        let (mut sent, mut handed_on, mut input_done) = (0, 0, false);
        loop {
            while !input_done && sent - handed_on < in_flight_max {
                let Some(chunk) = chunks.next(spare.pop().unwrap_or_default()) else {
                    input_done = true;
                    break;
                };
                if work.send(chunk).is_err() {
                    input_done = true;
                } else {
                    sent += 1;
                }
            }
            if handed_on == sent {
                return Ok(());
            }
            let Ok((chunk, parsed)) = results.recv() else {
                return Err((lines_before.get() + 1, SyntaxError::Io("the parsing threads ended early".into())));
            };
            let slot = chunk.index - handed_on;
            if waiting.len() <= slot {
                waiting.resize_with(slot + 1, || None);
            }
            waiting[slot] = Some(parsed);
            spare.push(chunk.bytes);
            while let Some(Some(parsed)) = waiting.front_mut().map(Option::take) {
                waiting.pop_front();
                handed_on += 1;
                hand_on(parsed)?;
            }
        }
    })
}

/// What parsing one chunk gave: `map` of each entry in order, the chunk's line breaks, and
/// the first error (nothing after it was parsed), its line counted from the chunk's start.
struct Parsed<T> {
    items: Vec<T>,
    newlines: usize,
    error: Option<(usize, SyntaxError)>,
}

impl<T> Parsed<T> {
    fn failed(problem: SyntaxError) -> Parsed<T> {
        Parsed { items: Vec::new(), newlines: 0, error: Some((1, problem)) }
    }
}

/// Whole records of the export (the first chunk from the file's start).
struct Chunk {
    /// Place in the export: 0 for the first chunk.
    index: usize,
    bytes: Vec<u8>,
    /// The read error that ended the input right after these bytes: their unfinished last
    /// record is dropped and the error reported after the records before it.
    failure: Option<String>,
}

/// The export cut into [`Chunk`]s.
struct Chunks<'a> {
    input: Box<dyn Read + Send + 'a>,
    /// Bytes read past the last cut: the start of the next chunk.
    carry: Vec<u8>,
    /// Bytes read before a chunk is cut.
    chunk_bytes: usize,
    /// Chunks handed out so far.
    count: usize,
    /// The input ended, failed, or its reader stopped: no chunk follows.
    done: bool,
}

impl<'a> Chunks<'a> {
    /// Starts reading `input`: a UTF-16 export (with a BOM) is decoded whole here, a UTF-8
    /// BOM dropped.
    fn new(input: impl Read + Send + 'a, chunk_bytes: usize) -> Result<Self, (usize, SyntaxError)> {
        let mut input: Box<dyn Read + Send + 'a> = Box::new(input);
        let io = |e: std::io::Error| (1, SyntaxError::Io(e.to_string()));
        let mut start = Vec::with_capacity(3);
        input.by_ref().take(3).read_to_end(&mut start).map_err(io)?;
        if start.starts_with(b"\xFF\xFE") || start.starts_with(b"\xFE\xFF") {
            input.read_to_end(&mut start).map_err(io)?;
            let decoded = text::decode(&start)?.into_bytes();
            (input, start) = (Box::new(std::io::Cursor::new(decoded)), Vec::new());
        } else if start.starts_with(b"\xEF\xBB\xBF") {
            start.clear();
        }
        Ok(Chunks { input, carry: start, chunk_bytes: chunk_bytes.max(1), count: 0, done: false })
    }

    /// The next chunk, written into `buffer` (a spent chunk's, to reuse its memory), or
    /// `None` at the end.
    fn next(&mut self, mut buffer: Vec<u8>) -> Option<Chunk> {
        if self.done {
            return None;
        }
        buffer.clear();
        buffer.append(&mut self.carry);
        // Blank lines ending before `searched` were looked for already.
        let mut searched = 0;
        let failure = loop {
            match self.input.by_ref().take(self.chunk_bytes as u64).read_to_end(&mut buffer) {
                Ok(read) if read < self.chunk_bytes => {
                    self.done = true;
                    if buffer.is_empty() {
                        return None;
                    }
                    break None;
                }
                Ok(_) => {
                    if let Some(cut) = last_record_end(&buffer, searched) {
                        self.carry.extend_from_slice(&buffer[cut..]);
                        buffer.truncate(cut);
                        break None;
                    }
                    searched = buffer.len();
                }
                Err(e) => {
                    self.done = true;
                    break Some(e.to_string());
                }
            }
        };
        self.count += 1;
        Some(Chunk { index: self.count - 1, bytes: buffer, failure })
    }
}

/// Where the last blank line in `bytes` whose line break is at or after `from` ends: a record
/// boundary (`bytes` starts at a line start).
fn last_record_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut end = bytes.len();
    while let Some(newline) = memchr::memrchr(b'\n', &bytes[..end]) {
        if newline < from {
            return None;
        }
        let start = memchr::memrchr(b'\n', &bytes[..newline]).map_or(0, |p| p + 1);
        if matches!(&bytes[start..newline], b"" | b"\r") {
            return Some(newline + 1);
        }
        end = start;
    }
    None
}

/// Parses one chunk's records, handing `map` each entry. As a line-by-line reader would, it
/// reports the first problem in file order: a record's syntax, or bad UTF-8 / a read error in
/// a record not yet complete (which is then dropped).
fn parse_chunk<T>(chunk: &Chunk, map: &impl Fn(EntryView<'_>) -> T) -> Parsed<T> {
    let bytes = chunk.bytes.as_slice();
    let newlines = memchr::memchr_iter(b'\n', bytes).count();
    // After a read error only whole lines count: the rest of the line was never read.
    let whole = match chunk.failure {
        Some(_) => &bytes[..memchr::memrchr(b'\n', bytes).map_or(0, |p| p + 1)],
        None => bytes,
    };
    let (text, ended_by) = match std::str::from_utf8(whole) {
        Ok(text) => (text, chunk.failure.clone().map(|e| (newlines + 1, SyntaxError::Io(e)))),
        Err(e) => {
            let valid = &whole[..e.valid_up_to()];
            let line_start = memchr::memrchr(b'\n', valid).map_or(0, |p| p + 1);
            let line = 1 + memchr::memchr_iter(b'\n', valid).count();
            (std::str::from_utf8(&valid[..line_start]).unwrap_or_default(), Some((line, SyntaxError::NotText)))
        }
    };
    let mut items = Vec::new();
    let error = parse_records(text, chunk.index == 0, ended_by.is_none(), &mut |entry| items.push(map(entry))).err().or(ended_by);
    Parsed { items, newlines, error }
}

/// Parses the records of `text` (whole lines; `at_end`: the export ends with it, so a last
/// record without a blank line after it is complete, else it is dropped), handing each entry
/// to `each`. `first_chunk`: its first record may start with `version: 1`.
fn parse_records<'t>(
    text: &'t str,
    first_chunk: bool,
    at_end: bool,
    each: &mut dyn FnMut(EntryView<'_>),
) -> Result<(), (usize, SyntaxError)> {
    let mut record: Vec<Line<'t>> = Vec::new();
    let mut first_record = first_chunk;
    // Whether the last logical line was a comment (its continuations are dropped too).
    let mut in_comment = false;
    let mut finish = |record: &mut Vec<Line<'t>>, first_record: &mut bool| {
        let parsed = entry(record, first_record).map(|entry| entry.map(&mut *each));
        record.clear();
        parsed.map(drop)
    };
    // Physical lines, found with one vectorised scan of the chunk (`str::split` looks for
    // each line break anew).
    let mut starts = std::iter::once(0).chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|newline| newline + 1));
    let mut start = starts.next().unwrap_or_default();
    let mut number = 0;
    while start < text.len() {
        let next = starts.next().unwrap_or(text.len());
        // A line break is ASCII, so these are character boundaries.
        let raw = text.get(start..next).unwrap_or_default();
        start = next;
        number += 1;
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(continued) = line.strip_prefix(' ') {
            match record.last_mut() {
                _ if in_comment => {}
                Some(last) => last.text.to_mut().push_str(continued),
                None => return Err((number, SyntaxError::StrayContinuation)),
            }
        } else if line.is_empty() {
            in_comment = false;
            if !record.is_empty() {
                finish(&mut record, &mut first_record)?;
            }
        } else if line.starts_with('#') {
            in_comment = true;
        } else {
            in_comment = false;
            record.push(Line { number, text: Cow::Borrowed(line) });
        }
    }
    if at_end && !record.is_empty() {
        finish(&mut record, &mut first_record)?;
    }
    Ok(())
}

/// The entry of one record; `None` for a `ldapsearch` trailer. Only the export's first record
/// may start with `version: 1`.
fn entry<'r>(record: &'r [Line<'_>], first_record: &mut bool) -> Result<Option<EntryView<'r>>, (usize, SyntaxError)> {
    let mut lines = record;
    if std::mem::take(first_record)
        && let Some((first, rest)) = lines.split_first()
        && attribute(first)?.0.eq_ignore_ascii_case("version")
    {
        lines = rest;
    }
    let Some((head, body)) = lines.split_first() else { return Ok(None) };
    let (name, value) = attribute(head)?;
    if !name.eq_ignore_ascii_case("dn") {
        // Plain `ldapsearch` ends with a `search: 2` / `result: 0 Success` record.
        let trailer =
            lines.iter().all(|l| attribute(l).is_ok_and(|(n, _)| n.eq_ignore_ascii_case("search") || n.eq_ignore_ascii_case("result")));
        if trailer {
            return Ok(None);
        }
        return Err((head.number, SyntaxError::MissingDn(shorten(&head.text))));
    }
    let dn = value.text(name).map_err(|p| (head.number, p))?;
    let mut attributes = Vec::with_capacity(body.len());
    for line in body {
        let (name, value) = attribute(line)?;
        let at = |problem| (line.number, problem);
        let is = |keyword: &str| name.eq_ignore_ascii_case(keyword);
        if is("changetype") {
            let kind = value.text(name).map_err(at)?;
            if !kind.trim().eq_ignore_ascii_case("add") {
                return Err(at(SyntaxError::ChangeRecord(kind.trim().to_owned())));
            }
        } else if is("version") {
            return Err(at(SyntaxError::MisplacedVersion));
        } else if !is("control") {
            let value = match value {
                RawValue::Text(text) => ValueView::Text(Cow::Borrowed(text)),
                RawValue::Base64(_) => {
                    let bytes = value.bytes(name).map_err(at)?;
                    let binary = BINARY_ATTRIBUTES.iter().any(|b| b.eq_ignore_ascii_case(name));
                    match String::from_utf8(bytes) {
                        Ok(text) if !binary => ValueView::Text(Cow::Owned(text)),
                        Ok(text) => ValueView::Binary(Cow::Owned(text.into_bytes())),
                        Err(e) => ValueView::Binary(Cow::Owned(e.into_bytes())),
                    }
                }
                RawValue::Url => return Err(at(SyntaxError::UrlValue(name.to_owned()))),
            };
            attributes.push((name, value));
        }
    }
    Ok(Some(EntryView { dn, attributes }))
}

/// A value as written after the colon(s).
enum RawValue<'a> {
    Text(&'a str),
    Base64(&'a str),
    Url,
}

impl<'a> RawValue<'a> {
    fn bytes(&self, name: &str) -> Result<Vec<u8>, SyntaxError> {
        match self {
            RawValue::Text(text) => Ok(text.as_bytes().to_vec()),
            RawValue::Base64(b64) => {
                let decode = |b64: &[u8]| base64::engine::general_purpose::STANDARD.decode(b64);
                // Nearly always without white space (folded lines are joined already):
                // decoded as it is, not first copied a character at a time.
                let decoded = if b64.chars().any(char::is_whitespace) {
                    decode(b64.chars().filter(|c| !c.is_whitespace()).collect::<String>().as_bytes())
                } else {
                    decode(b64.as_bytes())
                };
                decoded.map_err(|_| SyntaxError::Base64(name.to_owned()))
            }
            RawValue::Url => Err(SyntaxError::UrlValue(name.to_owned())),
        }
    }

    fn text(&self, name: &str) -> Result<Cow<'a, str>, SyntaxError> {
        match self {
            RawValue::Text(text) => Ok(Cow::Borrowed(text)),
            _ => String::from_utf8(self.bytes(name)?).map(Cow::Owned).map_err(|_| SyntaxError::NotText),
        }
    }
}

/// Splits `name[;options]: value` / `name:: base64` / `name:< url`.
fn attribute<'l>(line: &'l Line<'_>) -> Result<(&'l str, RawValue<'l>), (usize, SyntaxError)> {
    let bad = || (line.number, SyntaxError::NotAnAttribute(shorten(&line.text)));
    let text: &str = &line.text;
    // One pass over the name, a few bytes long (this runs for every line of the export:
    // two `memchr` calls, a check of the name and a `char` trim were most of its cost). The
    // name is letters, digits, `-` and `.`; `;` starts its options, which end at the first `:`.
    let bytes = text.as_bytes();
    let name_end = bytes.iter().position(|&c| !(c.is_ascii_alphanumeric() || c == b'-' || c == b'.')).unwrap_or(bytes.len());
    let colon = match bytes.get(name_end) {
        Some(b':') => name_end,
        Some(b';') => name_end + memchr::memchr(b':', &bytes[name_end..]).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if name_end == 0 {
        return Err(bad());
    }
    // `:` and `;` are ASCII: the cuts are character boundaries.
    let (name, rest) = (&text[..name_end], &text[colon + 1..]);
    let value = if let Some(b64) = rest.strip_prefix(':') {
        RawValue::Base64(b64.trim())
    } else if rest.starts_with('<') {
        RawValue::Url
    } else {
        RawValue::Text(&rest[rest.bytes().take_while(|&b| b == b' ').count()..])
    };
    Ok((name, value))
}

/// The start of an offending line, for a message.
fn shorten(line: &str) -> String {
    match line.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Value;
    use super::*;

    #[test]
    fn folded_lines_base64_comments_and_crlf() {
        let ldif = "version: 1\r\n# exported\r\n#  folded comment\r\n continued comment\r\ndn: uid=zlefevre,ou=People,\r\n dc=contoso,dc=com\r\n\
                    displayName:: Wm/DqyBMZWbDqHZyZS1DaMOidGVhdQ==\r\ntelephoneNumber: +33 1 99 \r\n 00 21 47\r\n\
                    proxyAddresses: SMTP:zoe@contoso.com\r\nproxyAddresses: SIP:zoe@contoso.com\r\n\r\n\r\n";
        let entries = parse(ldif.as_bytes()).expect("valid LDIF");
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(e.dn, "uid=zlefevre,ou=People,dc=contoso,dc=com");
        assert_eq!(e.texts("displayName"), ["Zoë Lefèvre-Château"]);
        assert_eq!(e.texts("telephoneNumber"), ["+33 1 99 00 21 47"]);
        assert_eq!(e.texts("proxyAddresses"), ["SMTP:zoe@contoso.com", "SIP:zoe@contoso.com"]);
    }

    #[test]
    fn object_guid_stays_binary_and_options_are_dropped() {
        // 16 bytes that happen to be ASCII must still be bytes.
        let ldif = "dn: cn=a\nobjectGUID:: QUJDREVGR0hJSktMTU5PUA==\ncn;lang-en: A\nchangetype: add\n";
        let entries = parse(ldif.as_bytes()).expect("valid LDIF");
        assert_eq!(entries[0].attributes[0], ("objectGUID".to_owned(), Value::Binary(b"ABCDEFGHIJKLMNOP".to_vec())));
        assert_eq!(entries[0].attributes[1], ("cn".to_owned(), Value::Text("A".into())));
    }

    #[test]
    fn white_space_inside_a_base64_value_is_skipped() {
        let entries = parse(b"dn: cn=a\ncn:: QUJD REVG\tR0g=\ndescription:: QUJDREVGR0g=\n").expect("parses");
        assert_eq!(entries[0].texts("cn"), ["ABCDEFGH"]);
        assert_eq!(entries[0].texts("description"), ["ABCDEFGH"]);
    }

    /// [`attribute`] as it was written before its one-pass scan, to hold the two equal.
    fn attribute_by_memchr(text: &str) -> Option<(&str, RawValue<'_>)> {
        let colon = memchr::memchr(b':', text.as_bytes())?;
        let (description, rest) = (&text[..colon], &text[colon + 1..]);
        let name = &description[..memchr::memchr(b';', description.as_bytes()).unwrap_or(description.len())];
        if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.') {
            return None;
        }
        let value = if let Some(b64) = rest.strip_prefix(':') {
            RawValue::Base64(b64.trim())
        } else if rest.starts_with('<') {
            RawValue::Url
        } else {
            RawValue::Text(rest.trim_start_matches(' '))
        };
        Some((name, value))
    }

    fn shown<'a>(parsed: Option<(&'a str, RawValue<'a>)>) -> Option<(&'a str, &'static str, &'a str)> {
        parsed.map(|(name, value)| match value {
            RawValue::Text(text) => (name, "text", text),
            RawValue::Base64(b64) => (name, "base64", b64),
            RawValue::Url => (name, "url", ""),
        })
    }

    proptest::proptest! {
        /// Names, options, colons, spaces and stray bytes: the one-pass scan reads every line
        /// as the two `memchr` calls did.
        #[test]
        fn attribute_lines_split_as_before(
            text in "([a-zA-Z0-9.-]{0,6}|[a-zA-Z0-9.;:<é _=-]{0,8})(;[a-z0-9;:é -]{0,5})?(::?|:<)?( {0,2})[a-zA-Z0-9:;<é =]{0,6}"
        ) {
            let line = Line { number: 7, text: Cow::Borrowed(&text) };
            let now = attribute(&line).map_err(|(number, error)| {
                assert_eq!((number, &error), (7, &SyntaxError::NotAnAttribute(shorten(&text))));
            });
            proptest::prop_assert_eq!(shown(now.ok()), shown(attribute_by_memchr(&text)), "{:?}", text);
        }
    }

    #[test]
    fn ldapsearch_trailer_is_skipped() {
        let ldif = "# extended LDIF\n\ndn: cn=a\ncn: a\n\n# search result\nsearch: 2\nresult: 0 Success\n\n# numResponses: 2\n";
        let entries = parse(ldif.as_bytes()).expect("valid LDIF");
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn errors_name_the_line() {
        let err = |ldif: &str| parse(ldif.as_bytes()).expect_err("invalid LDIF");
        assert_eq!(err("dn: cn=a\ncn: a\n\ncn: b\n"), (4, SyntaxError::MissingDn("cn: b".into())));
        assert_eq!(err(" leading continuation\n"), (1, SyntaxError::StrayContinuation));
        assert_eq!(err("dn: cn=a\njpegPhoto:< file:///etc/passwd\n"), (2, SyntaxError::UrlValue("jpegPhoto".into())));
        assert_eq!(err("dn: cn=a\r\ncn:: !!notbase64\r\n"), (2, SyntaxError::Base64("cn".into())));
        assert_eq!(err("dn: cn=a\nchangetype: modify\nreplace: mail\n"), (2, SyntaxError::ChangeRecord("modify".into())));
        assert_eq!(err("dn: cn=a\nno colon here\n"), (2, SyntaxError::NotAnAttribute("no colon here".into())));
        assert_eq!(err("dn: cn=a\n\nversion: 1\ndn: cn=b\n"), (3, SyntaxError::MissingDn("version: 1".into())));
        assert_eq!(err("dn: cn=a\nversion: 1\n"), (2, SyntaxError::MisplacedVersion));
        assert_eq!(parse(b"dn: cn=a\n\xFF"), Err((2, SyntaxError::NotText)));
    }

    #[test]
    fn entries_come_out_before_the_rest_is_read() {
        /// One record, then a read error: the record must already be out.
        struct Failing(std::io::Cursor<&'static [u8]>);
        impl std::io::Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                match self.0.read(buf)? {
                    0 => Err(std::io::Error::other("disk gone")),
                    n => Ok(n),
                }
            }
        }
        let input = Failing(std::io::Cursor::new(b"dn: cn=a\ncn: a\n\ndn: cn=b\n"));
        let mut entries = Vec::new();
        let outcome = for_each_mapped(input, 1, |view| Entry::from(view), |entry| entries.push(entry));
        assert_eq!(outcome, Err((5, SyntaxError::Io("disk gone".into()))));
        assert_eq!(entries.iter().map(|e| e.dn.as_str()).collect::<Vec<_>>(), ["cn=a"]);
    }

    #[test]
    fn utf16_exports_stream_too() {
        let utf16: Vec<u8> =
            [0xFF, 0xFE].into_iter().chain("dn: cn=\u{e9}\r\ncn: a\r\n".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        let entries = parse(&utf16).expect("valid");
        assert_eq!(entries[0].dn, "cn=\u{e9}");
    }

    #[test]
    fn empty_and_comment_only_files_have_no_entries() {
        assert_eq!(parse(b"").expect("empty is fine"), []);
        assert_eq!(parse(b"# nothing\n\n").expect("comments only"), []);
    }

    /// An export with every kind of line: LF and CRLF, folded values and comments, base64,
    /// runs of blank lines, a leading `version: 1` record and an `ldapsearch` trailer ending
    /// the file without a blank line.
    fn varied_export(people: usize) -> Vec<u8> {
        let mut out = String::from("version: 1\r\n# exported\r\n continued comment\r\n\r\n");
        for i in 0..people {
            let eol = if i % 3 == 0 { "\r\n" } else { "\n" };
            let name = base64::engine::general_purpose::STANDARD.encode(format!("Zoë {i}"));
            out.push_str(&format!(
                "dn: uid=u{i},ou=People,{eol} dc=contoso,dc=com{eol}displayName:: {name}{eol}telephoneNumber: +1 425 555 {i:04}{eol}\
                 # note{eol}  folded note{eol}mail: u{i}@contoso.com{eol}description: folded{eol}  value {i}{eol}{eol}"
            ));
            if i % 5 == 0 {
                out.push_str(eol);
            }
        }
        out.push_str("# search result\nsearch: 2\nresult: 0 Success\n");
        out.into_bytes()
    }

    /// Every entry handed on before the outcome, reading `input` in chunks of `chunk_bytes`
    /// on `threads` threads.
    fn chunked(input: impl Read + Send, chunk_bytes: usize, threads: usize) -> (Vec<Entry>, Result<(), (usize, SyntaxError)>) {
        let mut entries = Vec::new();
        let outcome = for_each_mapped_in_chunks_of(chunk_bytes, input, threads, |view| Entry::from(view), |e| entries.push(e));
        (entries, outcome)
    }

    /// The 1-based line on which `needle` first starts.
    fn line_of(bytes: &[u8], needle: &[u8]) -> usize {
        let at = bytes.windows(needle.len()).position(|w| w == needle).expect("needle present");
        1 + bytes[..at].iter().filter(|&&b| b == b'\n').count()
    }

    #[test]
    fn any_chunk_size_and_thread_count_reads_the_same_entries() {
        let export = varied_export(40);
        let whole = chunked(export.as_slice(), 1 << 30, 1);
        assert_eq!((whole.0.len(), &whole.1), (40, &Ok(())));
        assert_eq!(whole.0[39].dn, "uid=u39,ou=People,dc=contoso,dc=com");
        assert_eq!(whole.0[39].texts("description"), ["folded value 39"]);
        assert_eq!(whole.0[3].texts("displayName"), ["Zoë 3"]);
        for chunk_bytes in (1..=120).chain([500, 4096]) {
            for threads in [1, 3] {
                assert_eq!(chunked(export.as_slice(), chunk_bytes, threads), whole, "chunks of {chunk_bytes}, {threads} threads");
            }
        }
    }

    #[test]
    fn the_first_error_in_file_order_wins_whatever_the_chunks() {
        let export = varied_export(30);
        let at = |needle: &[u8]| export.windows(needle.len()).position(|w| w == needle).expect("present");
        let insert = |before: &[u8], what: &[u8]| [&export[..at(before)], what, &export[at(before)..]].concat();
        let cases = [
            // A syntax error in record 21, bad UTF-8 in record 25 (and in a comment), a stray
            // continuation after a blank line: each reported at its own line.
            (insert(b"dn: uid=u21,", b"dn: cn=bad\nno colon\n\n"), b"no colon".as_slice(), SyntaxError::NotAnAttribute("no colon".into())),
            (insert(b"mail: u25@", b"cn: \xFF\n"), b"cn: \xFF".as_slice(), SyntaxError::NotText),
            (insert(b"# note\r\n  folded note\r\nmail: u27", b"# \xFE\r\n"), b"# \xFE".as_slice(), SyntaxError::NotText),
            (insert(b"dn: uid=u11,", b" stray\n"), b" stray".as_slice(), SyntaxError::StrayContinuation),
            // Two errors: the syntax error comes first in the file, so it wins.
            (
                insert(b"dn: uid=u9,", b"dn: cn=first\nversion: 1\n\n").into_iter().chain(b"\xFF".iter().copied()).collect(),
                b"version: 1\n\n".as_slice(),
                SyntaxError::MisplacedVersion,
            ),
        ];
        for (broken, needle, problem) in cases {
            let expected = (line_of(&broken, needle), problem);
            let whole = chunked(broken.as_slice(), 1 << 30, 1);
            assert_eq!(whole.1, Err(expected.clone()));
            for chunk_bytes in (1..=90).step_by(7).chain([300, 4096]) {
                for threads in [1, 3] {
                    let (entries, outcome) = chunked(broken.as_slice(), chunk_bytes, threads);
                    assert_eq!(outcome, Err(expected.clone()), "chunks of {chunk_bytes}, {threads} threads");
                    if threads == 1 {
                        assert_eq!(entries, whole.0, "entries before the error, chunks of {chunk_bytes}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_read_error_anywhere_drops_only_the_unfinished_record() {
        /// `bytes`, then a read error.
        struct FailingAfter<'a>(&'a [u8]);
        impl Read for FailingAfter<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Err(std::io::Error::other("disk gone"));
                }
                let n = buf.len().min(self.0.len()).min(13);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let export = varied_export(12);
        for cut in (0..export.len()).step_by(37) {
            let read = &export[..cut];
            let line = 1 + read.iter().filter(|&&b| b == b'\n').count();
            let whole = chunked(FailingAfter(read), 1 << 30, 1);
            assert_eq!(whole.1, Err((line, SyntaxError::Io("disk gone".into()))), "cut at {cut}");
            // Only records followed by their blank line were read whole.
            let finished = read.windows(2).filter(|w| **w == *b"\n\n").count() + read.windows(3).filter(|w| **w == *b"\n\r\n").count();
            assert!(whole.0.len() <= finished, "cut at {cut}: {} entries", whole.0.len());
            for chunk_bytes in [1, 5, 64, 300] {
                assert_eq!(chunked(FailingAfter(read), chunk_bytes, 3), whole, "cut at {cut}, chunks of {chunk_bytes}");
            }
        }
    }
}
