//! vCard 2.1 / 3.0 / 4.0 text (Outlook, Apple, Google and CardDAV exports) -> one directory
//! [`Entry`] per card, under the attribute names the directory index knows: `FN` ->
//! `displayName`, `N` -> `sn` / `givenName`, `ORG` -> `company`, `TITLE` -> `title`, `EMAIL`
//! -> `mail`, and every `TEL` by its `TYPE`: work -> `telephoneNumber`, cell -> `mobile`,
//! home -> `homePhone`, fax -> `facsimileTelephoneNumber`, pager -> `pager`, anything else
//! -> `otherTelephone` (a work number, as Exchange labelled contact numbers without a type).
//!
//! Why a small reader here and not a crate: only these six properties are read, and the
//! maintained vCard crates either bring a calendar and time-zone stack with them (`calcard`)
//! or validate strictly against RFC 6350 and refuse the vCard 3.0 / 2.1 files Outlook and
//! phones export (`vcard_parser`). This reader unfolds lines, splits `group.NAME;params:value`,
//! reads `TYPE=` in every spelling (`TYPE=work,voice`, `TYPE="cell"`, 2.1's bare `;WORK`) and
//! unescapes text values; everything else is skipped.
//!
//! Errors name the line, never its text (a contact's name or number stays out of logs).
//! Bounded: a card over [`MAX_CARD_BYTES`] or a file with more than [`MAX_CONTACTS`] cards is
//! an error naming the line, never a partial book. Never panics.

use crate::enrich::directory::Entry;

/// Largest single card (text of its lines); photos are what make cards large.
pub const MAX_CARD_BYTES: usize = 256 * 1024;
/// Most contacts one recipient's book may hold.
pub const MAX_CONTACTS: usize = 20_000;

/// What is wrong at one line of a vCard file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VcardError {
    #[error("a property outside BEGIN:VCARD … END:VCARD")]
    OutsideCard,
    #[error("BEGIN:VCARD inside a card that is not ended")]
    NestedCard,
    #[error("the card starting here never ends (END:VCARD missing)")]
    Unterminated,
    #[error("a line that is not `NAME:value`")]
    NotAProperty,
    #[error("card larger than {MAX_CARD_BYTES} bytes")]
    CardTooLarge,
    #[error("more than {MAX_CONTACTS} contacts")]
    TooManyContacts,
}

/// One unfolded content line and the 1-based line it starts on.
struct Line<'t> {
    number: usize,
    text: std::borrow::Cow<'t, str>,
}

/// Parses vCard text into entries (`dn` = `contact at line N`). Errors carry the line.
pub fn parse(text: &str) -> Result<Vec<Entry>, (usize, VcardError)> {
    let mut entries = Vec::new();
    let mut card: Option<(Entry, usize, usize)> = None; // entry, first line, bytes so far
    for line in unfold(text) {
        let trimmed = line.text.trim();
        if trimmed.is_empty() {
            continue;
        }
        let (name, params, value) = split(trimmed).ok_or((line.number, VcardError::NotAProperty))?;
        match (name.as_str(), card.as_mut()) {
            ("BEGIN", _) if value.eq_ignore_ascii_case("VCARD") => {
                if card.is_some() {
                    return Err((line.number, VcardError::NestedCard));
                }
                if entries.len() >= MAX_CONTACTS {
                    return Err((line.number, VcardError::TooManyContacts));
                }
                card = Some((Entry::new(format!("contact at line {}", line.number)), line.number, 0));
            }
            ("END", Some(_)) if value.eq_ignore_ascii_case("VCARD") => entries.extend(card.take().map(|(entry, _, _)| entry)),
            (_, None) => return Err((line.number, VcardError::OutsideCard)),
            (_, Some((entry, _, bytes))) => {
                *bytes += trimmed.len();
                if *bytes > MAX_CARD_BYTES {
                    return Err((line.number, VcardError::CardTooLarge));
                }
                add_property(entry, &name, &params, value);
            }
        }
    }
    match card {
        Some((_, first, _)) => Err((first, VcardError::Unterminated)),
        None => Ok(entries),
    }
}

/// Content lines with folding undone (a line starting with a space or tab continues the
/// previous one), each with the line it starts on.
fn unfold(text: &str) -> Vec<Line<'_>> {
    let mut lines: Vec<Line<'_>> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match (raw.strip_prefix([' ', '\t']), lines.last_mut()) {
            (Some(rest), Some(last)) => last.text.to_mut().push_str(rest),
            _ => lines.push(Line { number: i + 1, text: raw.into() }),
        }
    }
    lines
}

/// `group.NAME;p1;p2=v:value` -> (`NAME` upper-case, params, value). Colons inside quoted
/// parameter values do not end the name part.
fn split(line: &str) -> Option<(String, Vec<&str>, &str)> {
    let mut quoted = false;
    let colon = line.char_indices().find_map(|(i, c)| match c {
        '"' => {
            quoted = !quoted;
            None
        }
        ':' if !quoted => Some(i),
        _ => None,
    })?;
    let (head, value) = (&line[..colon], &line[colon + 1..]);
    let mut parts = head.split(';');
    let name = parts.next()?.rsplit('.').next()?.trim().to_ascii_uppercase();
    if name.is_empty() {
        return None;
    }
    Some((name, parts.collect(), value))
}

/// Adds the directory attribute(s) one property stands for; other properties are skipped.
fn add_property(entry: &mut Entry, name: &str, params: &[&str], value: &str) {
    let first = |v: &str| unescape(split_components(v).first().copied().unwrap_or_default());
    match name {
        "FN" => push(entry, "displayName", unescape(value)),
        "N" => {
            let parts = split_components(value);
            push(entry, "sn", unescape(parts.first().copied().unwrap_or_default()));
            push(entry, "givenName", unescape(parts.get(1).copied().unwrap_or_default()));
        }
        "ORG" => push(entry, "company", first(value)),
        "TITLE" => push(entry, "title", unescape(value)),
        "EMAIL" => push(entry, "mail", unescape(value)),
        "TEL" => push(entry, tel_attribute(&types(params)), unescape(value)),
        _ => {}
    }
}

fn push(entry: &mut Entry, attribute: &str, value: String) {
    if !value.trim().is_empty() {
        entry.push_text(attribute, value.trim());
    }
}

/// Every `TYPE` of a property, lower-case: `TYPE=a,b`, `TYPE="a,b"`, repeated `TYPE=`, and
/// vCard 2.1's bare parameters (`TEL;WORK;VOICE:`).
fn types(params: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for param in params {
        let values = match param.split_once('=') {
            Some((key, value)) if key.trim().eq_ignore_ascii_case("TYPE") => value,
            Some(_) => continue,
            None => param,
        };
        out.extend(values.trim_matches('"').split(',').map(|t| t.trim().trim_matches('"').to_ascii_lowercase()));
    }
    out
}

/// The directory attribute of a `TEL` with these types (fax and pager before cell, home and
/// work: `TYPE=work,fax` is a fax).
fn tel_attribute(types: &[String]) -> &'static str {
    let has = |t: &str| types.iter().any(|x| x == t);
    if has("fax") {
        "facsimileTelephoneNumber"
    } else if has("pager") {
        "pager"
    } else if has("cell") || has("mobile") || has("iphone") {
        "mobile"
    } else if has("home") {
        "homePhone"
    } else if has("work") {
        "telephoneNumber"
    } else {
        "otherTelephone"
    }
}

/// The `;`-separated components of a structured value (`\;` does not separate).
fn split_components(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ';' => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// A text value with vCard escapes undone (`\,` `\;` `\\` `\n`).
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n' | 'N') => out.push(' '),
                Some(other) => out.push(other),
                None => {}
            },
            (c, false) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'e>(entry: &'e Entry, name: &str) -> Vec<&'e str> {
        entry.texts(name)
    }

    #[test]
    fn vcard_3_and_4_and_2_1_read_the_same_fields() {
        let v3 = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Marisol Vega\r\nN:Vega;Marisol;;;\r\nORG:Fabrikam\\, Inc.;Purchasing\r\nTITLE:Buyer\r\nTEL;TYPE=CELL,VOICE:+1 206 555 0142\r\nTEL;TYPE=WORK,FAX:+1 206 555 0143\r\nEND:VCARD\r\n";
        let v4 = "BEGIN:VCARD\nVERSION:4.0\nFN:Marisol Vega\nORG:Fabrikam\\, Inc.\nTITLE:Buyer\nTEL;VALUE=uri;TYPE=\"cell,voice\":tel:+1-206-555-0142\nitem1.TEL;TYPE=work;TYPE=fax:+1 206 555 0143\nEND:VCARD\n";
        let v21 = "BEGIN:VCARD\nVERSION:2.1\nFN:Marisol\n  Vega\nORG:Fabrikam\\, Inc.\nTITLE:Buyer\nTEL;CELL;VOICE:+1 206 555 0142\nTEL;WORK;FAX:+1 206 555 0143\nEND:VCARD\n";
        for text in [v3, v4, v21] {
            let entries = parse(text).expect("parses");
            let [entry] = entries.as_slice() else { panic!("one card: {entries:?}") };
            assert_eq!(texts(entry, "displayName"), ["Marisol Vega"], "{text}");
            assert_eq!(texts(entry, "company"), ["Fabrikam, Inc."]);
            assert_eq!(texts(entry, "title"), ["Buyer"]);
            assert_eq!(texts(entry, "mobile").len(), 1);
            assert_eq!(texts(entry, "facsimileTelephoneNumber").len(), 1);
        }
    }

    #[test]
    fn types_map_to_directory_attributes() {
        let t = |list: &[&str]| tel_attribute(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(t(&["home", "voice"]), "homePhone");
        assert_eq!(t(&["work"]), "telephoneNumber");
        assert_eq!(t(&["pager"]), "pager");
        assert_eq!(t(&[]), "otherTelephone");
        assert_eq!(types(&["TYPE=\"work,voice\"", "PREF=1", "HOME"]), ["work", "voice", "home"]);
    }

    #[test]
    fn bad_files_name_the_line() {
        assert_eq!(parse("FN:x\n").map(|_| ()), Err((1, VcardError::OutsideCard)));
        assert_eq!(parse("\nBEGIN:VCARD\nFN:x\n").map(|_| ()), Err((2, VcardError::Unterminated)));
        assert_eq!(parse("BEGIN:VCARD\nBEGIN:VCARD\n").map(|_| ()), Err((2, VcardError::NestedCard)));
        assert_eq!(parse("BEGIN:VCARD\nno colon\nEND:VCARD").map(|_| ()), Err((2, VcardError::NotAProperty)));
        let big = format!("BEGIN:VCARD\nPHOTO:{}\nEND:VCARD\n", "A".repeat(MAX_CARD_BYTES));
        assert_eq!(parse(&big).map(|_| ()), Err((2, VcardError::CardTooLarge)));
        let many = "BEGIN:VCARD\nFN:x\nEND:VCARD\n".repeat(MAX_CONTACTS + 1);
        assert_eq!(parse(&many).map(|_| ()), Err((3 * MAX_CONTACTS + 1, VcardError::TooManyContacts)));
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_fails_at_a_real_line(text in "[A-Za-z:;=,\"\\\\. \\r\\n]{0,200}") {
            let lines = 1 + text.matches('\n').count();
            if let Err((line, _)) = parse(&text) {
                proptest::prop_assert!((1..=lines).contains(&line));
            }
        }
    }
}
