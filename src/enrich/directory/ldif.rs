//! LDIF export (`ldifde -f`, `ldapsearch -LLL` or plain `ldapsearch`) -> [`Entry`] values.
//!
//! Reads RFC 2849 content records: folded lines (a continuation starts with one space),
//! `attr:: base64`, comments (folded too), an optional leading `version: 1`, CRLF or LF,
//! UTF-8 or UTF-16 with BOM, attribute options (`;binary`, `;lang-…`) dropped, and the
//! `search:`/`result:` trailer of plain `ldapsearch`. Refuses `attr:< url` values and change
//! records other than `changetype: add`. Errors carry the 1-based line; never panics.
//! [`Reader`] streams: it holds one record at a time, never the whole export.

use std::io::{BufRead, Read as _};

use base64::Engine as _;

use super::{Entry, SyntaxError, text};

/// Attributes whose base64 values are bytes even when they happen to be valid UTF-8.
const BINARY_ATTRIBUTES: [&str; 6] = ["objectguid", "objectsid", "thumbnailphoto", "jpegphoto", "usercertificate", "msexchmailboxguid"];

/// One logical (unfolded) line and the physical line it starts on.
struct Line {
    number: usize,
    text: String,
}

/// Parses a whole LDIF export held in memory.
pub(super) fn parse(bytes: &[u8]) -> Result<Vec<Entry>, (usize, SyntaxError)> {
    Reader::new(bytes)?.collect()
}

/// Reads an LDIF export entry by entry from `input`, holding one record at a time (a
/// 100,000-person export is never in memory whole). UTF-16 exports (with a BOM) are decoded
/// whole first; UTF-8 is read and checked line by line.
pub(super) struct Reader<R> {
    input: Lines<R>,
    /// No record read yet (only the first may start with `version: 1`).
    first_record: bool,
    /// An error was returned: nothing follows it.
    done: bool,
}

impl<'a> Reader<Box<dyn BufRead + Send + 'a>> {
    /// Reads from `input` (any encoding [`text::decode`] takes).
    pub(super) fn new(input: impl BufRead + Send + 'a) -> Result<Self, (usize, SyntaxError)> {
        let mut input: Box<dyn BufRead + Send + 'a> = Box::new(input);
        let start = input.fill_buf().map_err(|e| (1, SyntaxError::Io(e.to_string())))?;
        if start.starts_with(b"\xFF\xFE") || start.starts_with(b"\xFE\xFF") {
            let mut bytes = Vec::new();
            input.read_to_end(&mut bytes).map_err(|e| (1, SyntaxError::Io(e.to_string())))?;
            input = Box::new(std::io::Cursor::new(text::decode(&bytes)?.into_bytes()));
        } else if start.starts_with(b"\xEF\xBB\xBF") {
            input.consume(3);
        }
        Ok(Reader { input: Lines { input, number: 0, raw: Vec::new() }, first_record: true, done: false })
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Entry, (usize, SyntaxError)>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let record = match self.input.record() {
                Ok(Some(record)) => record,
                Ok(None) => return None,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            match entry(&record, &mut self.first_record) {
                Ok(None) => continue,
                Ok(Some(entry)) => return Some(Ok(entry)),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// The entry of one record; `None` for a `ldapsearch` trailer.
fn entry(record: &[Line], first_record: &mut bool) -> Result<Option<Entry>, (usize, SyntaxError)> {
    let mut lines = record;
    if *first_record
        && let Some((first, rest)) = lines.split_first()
        && attribute(first)?.0.eq_ignore_ascii_case("version")
    {
        lines = rest;
    }
    let Some((head, body)) = lines.split_first() else { return Ok(None) };
    *first_record = false;
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
    let mut entry = Entry::new(value.text(name).map_err(|p| (head.number, p))?);
    for line in body {
        let (name, value) = attribute(line)?;
        let at = |problem| (line.number, problem);
        match name.to_ascii_lowercase().as_str() {
            "changetype" => {
                let kind = value.text(name).map_err(at)?;
                if !kind.trim().eq_ignore_ascii_case("add") {
                    return Err(at(SyntaxError::ChangeRecord(kind.trim().to_owned())));
                }
            }
            "version" => return Err(at(SyntaxError::MisplacedVersion)),
            "control" => {}
            lower => match value {
                RawValue::Text(text) => entry.push_text(name, text),
                RawValue::Base64(_) => {
                    let bytes = value.bytes(name).map_err(at)?;
                    match String::from_utf8(bytes) {
                        Ok(text) if !BINARY_ATTRIBUTES.contains(&lower) => entry.push_text(name, text),
                        Ok(text) => entry.push_binary(name, text.into_bytes()),
                        Err(e) => entry.push_binary(name, e.into_bytes()),
                    }
                }
                RawValue::Url => return Err(at(SyntaxError::UrlValue(name.to_owned()))),
            },
        }
    }
    Ok(Some(entry))
}

/// A value as written after the colon(s).
enum RawValue<'a> {
    Text(&'a str),
    Base64(&'a str),
    Url,
}

impl RawValue<'_> {
    fn bytes(&self, name: &str) -> Result<Vec<u8>, SyntaxError> {
        match self {
            RawValue::Text(text) => Ok(text.as_bytes().to_vec()),
            RawValue::Base64(b64) => {
                let compact: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
                base64::engine::general_purpose::STANDARD.decode(compact).map_err(|_| SyntaxError::Base64(name.to_owned()))
            }
            RawValue::Url => Err(SyntaxError::UrlValue(name.to_owned())),
        }
    }

    fn text(&self, name: &str) -> Result<String, SyntaxError> {
        String::from_utf8(self.bytes(name)?).map_err(|_| SyntaxError::NotText)
    }
}

/// Splits `name[;options]: value` / `name:: base64` / `name:< url`.
fn attribute(line: &Line) -> Result<(&str, RawValue<'_>), (usize, SyntaxError)> {
    let bad = || (line.number, SyntaxError::NotAnAttribute(shorten(&line.text)));
    let (description, rest) = line.text.split_once(':').ok_or_else(bad)?;
    let name = description.split(';').next().unwrap_or_default();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
        return Err(bad());
    }
    let value = if let Some(b64) = rest.strip_prefix(':') {
        RawValue::Base64(b64.trim())
    } else if rest.starts_with('<') {
        RawValue::Url
    } else {
        RawValue::Text(rest.trim_start_matches(' '))
    };
    Ok((name, value))
}

/// Physical lines of UTF-8 input, unfolded and grouped into records.
struct Lines<R> {
    input: R,
    /// Physical lines read so far.
    number: usize,
    raw: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    /// The next physical line without its line break, or `None` at the end.
    fn line(&mut self) -> Result<Option<&str>, (usize, SyntaxError)> {
        self.raw.clear();
        let read = self.input.read_until(b'\n', &mut self.raw).map_err(|e| (self.number + 1, SyntaxError::Io(e.to_string())))?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        let mut line = self.raw.as_slice();
        line = line.strip_suffix(b"\n").unwrap_or(line);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        std::str::from_utf8(line).map(Some).map_err(|_| (self.number, SyntaxError::NotText))
    }

    /// The next record's logical lines (continuations unfolded, comments dropped), or `None`
    /// at the end.
    fn record(&mut self) -> Result<Option<Vec<Line>>, (usize, SyntaxError)> {
        let mut record: Vec<Line> = Vec::new();
        // Whether the last logical line was a comment (its continuations are dropped too).
        let mut in_comment = false;
        loop {
            let number = self.number + 1;
            let Some(line) = self.line()? else { break };
            if let Some(continued) = line.strip_prefix(' ') {
                match record.last_mut() {
                    _ if in_comment => {}
                    Some(last) => last.text.push_str(continued),
                    None => return Err((number, SyntaxError::StrayContinuation)),
                }
            } else if line.is_empty() {
                in_comment = false;
                if !record.is_empty() {
                    break;
                }
            } else if line.starts_with('#') {
                in_comment = true;
            } else {
                in_comment = false;
                record.push(Line { number, text: line.to_owned() });
            }
        }
        Ok((!record.is_empty()).then_some(record))
    }
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
        let input = std::io::BufReader::with_capacity(16, Failing(std::io::Cursor::new(b"dn: cn=a\ncn: a\n\ndn: cn=b\n")));
        let mut reader = Reader::new(input).expect("starts");
        assert_eq!(reader.next().expect("one").expect("first entry").dn, "cn=a");
        assert_eq!(reader.next().expect("an error").expect_err("read error"), (5, SyntaxError::Io("disk gone".into())));
        assert!(reader.next().is_none(), "nothing after an error");
    }

    #[test]
    fn utf16_exports_stream_too() {
        let utf16: Vec<u8> =
            [0xFF, 0xFE].into_iter().chain("dn: cn=\u{e9}\r\ncn: a\r\n".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        let entries: Vec<Entry> = Reader::new(utf16.as_slice()).expect("starts").collect::<Result<_, _>>().expect("valid");
        assert_eq!(entries[0].dn, "cn=\u{e9}");
    }

    #[test]
    fn empty_and_comment_only_files_have_no_entries() {
        assert_eq!(parse(b"").expect("empty is fine"), []);
        assert_eq!(parse(b"# nothing\n\n").expect("comments only"), []);
    }
}
