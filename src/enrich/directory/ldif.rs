//! LDIF export (`ldifde -f`, `ldapsearch -LLL` or plain `ldapsearch`) -> [`Entry`] values.
//!
//! Reads RFC 2849 content records: folded lines (a continuation starts with one space),
//! `attr:: base64`, comments (folded too), an optional leading `version: 1`, CRLF or LF,
//! UTF-8 or UTF-16 with BOM, attribute options (`;binary`, `;lang-…`) dropped, and the
//! `search:`/`result:` trailer of plain `ldapsearch`. Refuses `attr:< url` values and change
//! records other than `changetype: add`. Errors carry the 1-based line; never panics.

use base64::Engine as _;

use super::{Entry, SyntaxError, text};

/// Attributes whose base64 values are bytes even when they happen to be valid UTF-8.
const BINARY_ATTRIBUTES: [&str; 6] = ["objectguid", "objectsid", "thumbnailphoto", "jpegphoto", "usercertificate", "msexchmailboxguid"];

/// One logical (unfolded) line and the physical line it starts on.
struct Line {
    number: usize,
    text: String,
}

/// Parses an LDIF export.
pub(super) fn parse(bytes: &[u8]) -> Result<Vec<Entry>, (usize, SyntaxError)> {
    let text = text::decode(bytes)?;
    let mut entries = Vec::new();
    let mut first_record = true;
    for record in records(&text)? {
        let mut lines = record.as_slice();
        if first_record
            && let Some((first, rest)) = lines.split_first()
            && attribute(first)?.0.eq_ignore_ascii_case("version")
        {
            lines = rest;
        }
        let Some((head, body)) = lines.split_first() else { continue };
        first_record = false;
        let (name, value) = attribute(head)?;
        if !name.eq_ignore_ascii_case("dn") {
            // Plain `ldapsearch` ends with a `search: 2` / `result: 0 Success` record.
            let trailer =
                lines.iter().all(|l| attribute(l).is_ok_and(|(n, _)| n.eq_ignore_ascii_case("search") || n.eq_ignore_ascii_case("result")));
            if trailer {
                continue;
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
        entries.push(entry);
    }
    Ok(entries)
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

/// Unfolds lines and splits them into records at blank lines; comments are dropped.
fn records(text: &str) -> Result<Vec<Vec<Line>>, (usize, SyntaxError)> {
    let mut records: Vec<Vec<Line>> = vec![Vec::new()];
    // Whether the last logical line was a comment (its continuations are dropped too).
    let mut in_comment = false;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let record = records.last_mut().expect("never empty");
        if let Some(continued) = line.strip_prefix(' ') {
            match record.last_mut() {
                _ if in_comment => {}
                Some(last) => last.text.push_str(continued),
                None => return Err((number, SyntaxError::StrayContinuation)),
            }
        } else if line.is_empty() {
            in_comment = false;
            if !record.is_empty() {
                records.push(Vec::new());
            }
        } else if line.starts_with('#') {
            in_comment = true;
        } else {
            in_comment = false;
            record.push(Line { number, text: line.to_owned() });
        }
    }
    records.retain(|r| !r.is_empty());
    Ok(records)
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
    fn empty_and_comment_only_files_have_no_entries() {
        assert_eq!(parse(b"").expect("empty is fine"), []);
        assert_eq!(parse(b"# nothing\n\n").expect("comments only"), []);
    }
}
