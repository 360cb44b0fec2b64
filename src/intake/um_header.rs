//! The UM header grammar: text -> ordered `Key : Value` fields with their line numbers.
//!
//! Consumes decoded text; produces a [`Header`] borrowing from it. Grammar (spec §2.2,
//! "recommended tool grammar"): a key is a letter followed by letters, digits, `_` or `-`,
//! then optional spaces, a colon, and the value, trimmed on both sides (`Key:Value` works).
//! A key line with an empty value takes the next non-blank line as its value when that line
//! is not a key line itself (the blog's wrapped `RecipientAddress :`). Blank lines and lines
//! without a key are ignored, except that the first one starting with `<` is remembered as
//! the bare XML of a 2010 `OCSNotification`. Keys are compared without regard to case; a
//! repeated key is an error ([`IntakeErrorKind::DuplicateKey`] on the second occurrence's
//! line), never silently resolved, and found in one pass, linear in the text: by comparing
//! with the few fields before it, then (past [`SCAN`] fields) with a hash map.
//! Interprets no value; never panics.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use super::decode;
use super::error::{IntakeErrorKind, Problem};

/// One `Key : Value` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    /// 1-based line of the key.
    pub line: usize,
    /// As written.
    pub key: &'a str,
    /// Trimmed; may be empty (`CallId : `).
    pub value: &'a str,
}

/// A header file's fields, in file order.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Header<'a> {
    pub fields: Vec<Field<'a>>,
    /// The first line that is not a key line and starts with `<` (line, trimmed text).
    pub bare_xml: Option<(usize, &'a str)>,
}

/// Splits a key line into key and trimmed value; `None` when the line has no key.
pub(crate) fn split_line(line: &str) -> Option<(&str, &str)> {
    let s = line.trim_start();
    let bytes = s.as_bytes();
    if !bytes.first()?.is_ascii_alphabetic() {
        return None;
    }
    let end = bytes.iter().position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-')).unwrap_or(bytes.len());
    let value = s[end..].trim_start().strip_prefix(':')?;
    Some((&s[..end], value.trim()))
}

/// A key compared and hashed without regard to ASCII case (keys are ASCII by the grammar).
#[derive(Clone, Copy)]
struct Caseless<'a>(&'a str);

impl PartialEq for Caseless<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(other.0)
    }
}

impl Eq for Caseless<'_> {}

impl Hash for Caseless<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut lower = [0u8; 32];
        for chunk in self.0.as_bytes().chunks(lower.len()) {
            let lower = &mut lower[..chunk.len()];
            lower.copy_from_slice(chunk);
            lower.make_ascii_lowercase();
            state.write(lower);
        }
        state.write_u8(0xFF);
    }
}

/// Fields compared one by one before a hash map takes over: a real header has about 20, and
/// comparing a short key with 20 others costs less than hashing it.
const SCAN: usize = 32;

/// Reads every field of a header file.
pub(crate) fn read(text: &str) -> Result<Header<'_>, Problem> {
    let mut header = Header { fields: Vec::with_capacity(24), bare_xml: None };
    // Each key's first line, to refuse a repeat, once there are more than SCAN fields.
    let mut seen: Option<HashMap<Caseless<'_>, usize>> = None;
    let mut lines = decode::lines(text);
    while let Some((line, raw)) = lines.next() {
        let Some((key, mut value)) = split_line(raw) else {
            let trimmed = raw.trim();
            if header.bare_xml.is_none() && trimmed.starts_with('<') {
                header.bare_xml = Some((line, trimmed));
            }
            continue;
        };
        if value.is_empty() {
            let mut ahead = lines.clone();
            if let Some((_, next)) = ahead.find(|(_, l)| !l.trim().is_empty())
                && split_line(next).is_none()
            {
                value = next.trim();
                lines = ahead;
            }
        }
        let first = match &seen {
            Some(seen) => seen.get(&Caseless(key)).copied(),
            None => header.fields.iter().find(|f| f.key.eq_ignore_ascii_case(key)).map(|f| f.line),
        };
        if let Some(first_line) = first {
            let kind = IntakeErrorKind::DuplicateKey { key: key.to_owned(), first_line };
            return Err(Problem::at(line, kind));
        }
        header.fields.push(Field { line, key, value });
        match &mut seen {
            Some(seen) => {
                seen.insert(Caseless(key), line);
            }
            None if header.fields.len() == SCAN => {
                seen = Some(header.fields.iter().map(|f| (Caseless(f.key), f.line)).collect());
            }
            None => {}
        }
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<(usize, &str, &str)> {
        read(text).unwrap().fields.iter().map(|f| (f.line, f.key, f.value)).collect()
    }

    #[test]
    fn key_value_shapes() {
        assert_eq!(split_line("MessageType : VoiceMail"), Some(("MessageType", "VoiceMail")));
        assert_eq!(split_line("MessageType:VoiceMail"), Some(("MessageType", "VoiceMail")));
        assert_eq!(split_line("  X-Contoso-Trace\t:  relay=um01;hop=2  "), Some(("X-Contoso-Trace", "relay=um01;hop=2")));
        assert_eq!(split_line("Subject : Re: Q3 numbers : please call back"), Some(("Subject", "Re: Q3 numbers : please call back")));
        assert_eq!(split_line("RecipientAddress :"), Some(("RecipientAddress", "")));
        assert_eq!(split_line("Duration : :5"), Some(("Duration", ":5")));
        assert_eq!(split_line("Message Type : X"), None);
        assert_eq!(split_line("this line has no separator and must be ignored"), None);
        assert_eq!(split_line("hannah.whitaker@contoso.com"), None);
        assert_eq!(split_line("<?xml version=\"1.0\"?><UserNotification/>"), None);
        assert_eq!(split_line("1Key : v"), None);
        assert_eq!(split_line(""), None);
    }

    #[test]
    fn lines_crlf_lf_cr_and_blank_lines() {
        let expected = vec![(1, "MessageType", "MissedCall"), (3, "CallId", "x")];
        assert_eq!(fields("MessageType : MissedCall\r\n\r\nCallId : x\r\n"), expected);
        assert_eq!(fields("MessageType : MissedCall\n\nCallId : x"), expected);
        assert_eq!(fields("MessageType : MissedCall\r\rCallId : x\r"), expected);
    }

    #[test]
    fn wrapped_value_is_joined() {
        let text = "RecipientName : Hannah\r\nRecipientAddress :\r\n\r\n  hannah.whitaker@contoso.com \r\nCallId : c";
        assert_eq!(
            fields(text),
            vec![(1, "RecipientName", "Hannah"), (2, "RecipientAddress", "hannah.whitaker@contoso.com"), (5, "CallId", "c")]
        );
        // an empty value followed by a key line stays empty
        assert_eq!(fields("CallId : \r\nTenantGuid : 0"), vec![(1, "CallId", ""), (2, "TenantGuid", "0")]);
        // nothing after it at all
        assert_eq!(fields("CallId :\r\n\r\n"), vec![(1, "CallId", "")]);
    }

    #[test]
    fn bare_xml_line_is_remembered() {
        let h = read("MessageType : OCSNotification\r\n <?xml version=\"1.0\"?><UserNotification/> \r\n<second/>").unwrap();
        assert_eq!(h.bare_xml, Some((2, "<?xml version=\"1.0\"?><UserNotification/>")));
        assert_eq!(h.fields.len(), 1);
    }

    #[test]
    fn many_keys_are_checked_for_repeats_in_one_pass() {
        // 9,000 distinct keys differing only in digits and case, then a repeat of one of them
        let mut text: String = (0..9_000).map(|i| format!("Key{i}x : {i}\n")).collect();
        assert_eq!(read(&text).unwrap().fields.len(), 9_000);
        text.push_str("KEY4500X : again\n");
        let p = read(&text).unwrap_err();
        assert_eq!(p.line, Some(9_001));
        assert_eq!(p.kind.to_string(), "duplicate key `KEY4500X` (first on line 4501)");
        // on either side of the switch from comparing to hashing, and across it
        for (repeat, first) in [(SCAN - 1, 1), (SCAN, 1), (SCAN + 1, SCAN), (SCAN + 5, SCAN + 2)] {
            let mut text: String = (0..repeat).map(|i| format!("K{i} : v\n")).collect();
            text.push_str(&format!("k{} : again\n", first - 1));
            let p = read(&text).unwrap_err();
            assert_eq!((p.line, p.kind.to_string()), (Some(repeat + 1), format!("duplicate key `k{}` (first on line {first})", first - 1)));
        }
    }

    #[test]
    fn duplicate_keys_any_case_are_refused() {
        let p = read("MessageType : MissedCall\r\nCallerId : 1\r\nX : y\r\ncallerid : 2\r\n").unwrap_err();
        assert_eq!(p.line, Some(4));
        assert_eq!(p.kind.to_string(), "duplicate key `callerid` (first on line 2)");
    }
}
