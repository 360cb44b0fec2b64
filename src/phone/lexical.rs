//! The lexical half of number normalization: a caller id or a directory value as written
//! (`sip:+1…@host;user=phone`, `tel:+1…;ext=12`, `+33 (0)1 99 00 12 34`, `289-555-0163 x123`,
//! `kwame.mensah@contoso.com`, `Anonymous`) -> its parts (SIP name, digits, extension).
//!
//! Pure string work: it never consults numbering-plan data (that is the parent module's job,
//! the only user of `phonenumber`) and never fails; anything it cannot read is `Garbage`.

/// What a raw caller id or directory value looks like, before any dial-plan rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Shape<'a> {
    /// Empty, a withheld-number word (`Anonymous`, `Unavailable`, …) or `…@anonymous.invalid`.
    Anonymous,
    /// A SIP name: `user@host`, lower-cased, without scheme or parameters.
    Sip(String),
    /// A dialable number: `plus` when written with `+`, the digits, and an extension from
    /// `;ext=` (`uri_extension`) or from an `x123` / `ext. 123` / `#123` suffix.
    Digits { plus: bool, digits: String, extension: Option<&'a str>, uri_extension: bool },
    /// Letters mixed with digits, a misplaced `+`, or no digits at all after a scheme.
    Garbage,
}

/// Words gateways put in place of a withheld number (spec §6.1), compared case-insensitively.
const ANONYMOUS_WORDS: [&str; 8] =
    ["anonymous", "unavailable", "unknown", "restricted", "private", "withheld", "blocked", "unknown caller"];

/// Characters people and exports use between digits; skipped.
fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '.' | '-' | '/' | '(' | ')' | '\t' | '\u{a0}' | '\u{2010}'..='\u{2015}' | '\u{2212}')
}

/// Splits a raw value into its shape.
pub(super) fn shape(raw: &str) -> Shape<'_> {
    plain_number(raw).unwrap_or_else(|| shape_in_full(raw))
}

/// The shape of the most common directory value, a number written with digits, separators
/// and at most a leading `+` (`+1 (425) 555-0101`, `425.555.0101`, `tel:+14255550101`):
/// [`shape_in_full`]'s answer without its search for brackets, parameters, hosts and
/// extensions, which such a value cannot have. `None` for anything else (then the full
/// reading decides); the tests hold the two equal on generated values.
fn plain_number(raw: &str) -> Option<Shape<'_>> {
    let s = raw.trim();
    let s = match s.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("tel:") => s[4..].trim_start(),
        _ => s,
    };
    let (plus, body) = match s.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let bytes = body.as_bytes();
    // ASCII separators only (the others are multi-byte), and no `(0)` trunk notation.
    let plain = |b: &u8| b.is_ascii_digit() || matches!(b, b' ' | b'.' | b'-' | b'/' | b'(' | b')' | b'\t');
    if !bytes.iter().all(plain) || bytes.windows(3).any(|w| w == b"(0)") {
        return None;
    }
    // All ASCII here: the digits are kept byte by byte, into a string sized once (collected
    // from `chars()` it grew a push at a time: a tenth of a directory load's reading).
    let mut digits = String::with_capacity(body.len());
    digits.extend(bytes.iter().filter(|b| b.is_ascii_digit()).map(|&b| char::from(b)));
    (!digits.is_empty()).then_some(Shape::Digits { plus, digits, extension: None, uri_extension: false })
}

/// Splits any raw value into its shape.
fn shape_in_full(raw: &str) -> Shape<'_> {
    let mut s = raw.trim();
    // `"Display Name" <sip:…>`: the address is inside the angle brackets.
    if let (Some(open), Some(close)) = (s.find('<'), s.rfind('>'))
        && open < close
    {
        s = s[open + 1..close].trim();
    }
    let s = strip_scheme(s);

    // `user;user-params@host;uri-params` (SIP) or `number;params` (tel:, plain).
    let (user_part, host_part) = match s.split_once('@') {
        Some((user, rest)) => (user, Some(rest)),
        None => (s, None),
    };
    let mut user_params = user_part.split(';');
    let user = user_params.next().unwrap_or_default().trim();
    let (host, uri_params) = match host_part {
        Some(rest) => {
            let mut parts = rest.split(';');
            (parts.next().map(str::trim), Some(parts))
        }
        None => (None, None),
    };
    let mut user_is_phone = false;
    let mut ext_param = None;
    for param in user_params.chain(uri_params.into_iter().flatten()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        let key = key.trim();
        if key.eq_ignore_ascii_case("user") && value.trim().eq_ignore_ascii_case("phone") {
            user_is_phone = true;
        } else if key.eq_ignore_ascii_case("ext") && !value.trim().is_empty() {
            ext_param = Some(value.trim());
        }
    }

    let anonymous_host = host.is_some_and(|h| h.eq_ignore_ascii_case("anonymous.invalid"));
    if user.is_empty() || anonymous_host || ANONYMOUS_WORDS.iter().any(|w| user.eq_ignore_ascii_case(w)) {
        return Shape::Anonymous;
    }
    let has_digit = user.chars().any(|c| c.is_ascii_digit());
    match host {
        Some(host) if !user_is_phone && !looks_numeric(user) => {
            return Shape::Sip(sip_name(user, host));
        }
        // Non-numeric text without a host ("Restricted", "Payphone"): not a usable caller id.
        None if !has_digit => return Shape::Anonymous,
        _ => {}
    }
    digits(user, ext_param)
}

/// `user@host`, lower-cased. Nearly every name is ASCII: lower-cased into one string sized
/// once, without `format!` (a directory load makes one per SIP address it reads).
fn sip_name(user: &str, host: &str) -> String {
    if !(user.is_ascii() && host.is_ascii()) {
        return format!("{}@{}", user.to_lowercase(), host.to_lowercase());
    }
    let mut name = String::with_capacity(user.len() + 1 + host.len());
    name.push_str(user);
    name.push('@');
    name.push_str(host);
    name.make_ascii_lowercase();
    name
}

/// Strips `sip:`, `sips:`, `tel:` (any case).
fn strip_scheme(s: &str) -> &str {
    for scheme in ["sips:", "sip:", "tel:"] {
        if s.len() >= scheme.len() && s.is_char_boundary(scheme.len()) && s[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return s[scheme.len()..].trim_start();
        }
    }
    s
}

/// A SIP user part that is really a number (`+12895550147`, `4567`).
fn looks_numeric(user: &str) -> bool {
    let body = user.strip_prefix('+').unwrap_or(user);
    !body.is_empty() && body.chars().all(|c| c.is_ascii_digit() || is_separator(c))
}

/// The number path: extension suffix, `(0)` trunk notation, separators.
fn digits<'a>(text: &'a str, ext_param: Option<&'a str>) -> Shape<'a> {
    let (body, suffix_ext) = split_extension_suffix(text);
    let (extension, uri_extension) = match (ext_param, suffix_ext) {
        (Some(param), _) if param.chars().all(|c| c.is_ascii_digit()) => (Some(param), true),
        (Some(_), _) => return Shape::Garbage,
        (None, ext) => (ext, false),
    };
    // "+33 (0)1 99 00 12 34": the bracketed trunk 0 is not dialled from abroad.
    let body = body.replace("(0)", "");
    let mut plus = false;
    let mut out = String::with_capacity(body.len());
    for c in body.chars() {
        match c {
            '+' | '\u{ff0b}' if out.is_empty() && !plus => plus = true,
            '0'..='9' => out.push(c),
            c if is_separator(c) => {}
            _ => return Shape::Garbage,
        }
    }
    if out.is_empty() {
        return Shape::Garbage;
    }
    Shape::Digits { plus, digits: out, extension, uri_extension }
}

/// `289-555-0163 x123`, `+34 91 555 01 23 ext. 2210`, `…#77` -> (number, extension digits).
fn split_extension_suffix(text: &str) -> (&str, Option<&str>) {
    let trimmed = text.trim_end();
    let digits_start = trimmed.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits_start == trimmed.len() {
        return (text, None);
    }
    let ext = &trimmed[digits_start..];
    let before = trimmed[..digits_start].trim_end().trim_end_matches(['.', ':', '=']).trim_end();
    for marker in ["extension", "extn", "ext", "x", "#"] {
        // Compared without case and without a lower-cased copy; a match is ASCII, so the
        // cut before it is a character boundary.
        let Some(cut) = before.len().checked_sub(marker.len()) else { continue };
        if before.as_bytes()[cut..].eq_ignore_ascii_case(marker.as_bytes()) {
            // The marker must stand on its own: "…0163x123" yes, "fax123" no.
            if before[..cut].chars().last().is_none_or(|c| !c.is_alphabetic()) {
                return (&before[..cut], Some(ext));
            }
        }
    }
    (text, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits_of(raw: &str) -> (bool, String, Option<&str>, bool) {
        match shape(raw) {
            Shape::Digits { plus, digits, extension, uri_extension } => (plus, digits, extension, uri_extension),
            other => panic!("{raw}: expected digits, got {other:?}"),
        }
    }

    #[test]
    fn sip_and_tel_uris_are_unwrapped() {
        assert_eq!(digits_of("sip:+12895550147@contoso.com;user=phone"), (true, "12895550147".into(), None, false));
        assert_eq!(digits_of("tel:+14255550131"), (true, "14255550131".into(), None, false));
        assert_eq!(digits_of("tel:+14255550120;ext=4120"), (true, "14255550120".into(), Some("4120"), true));
        assert_eq!(digits_of("TEL:+1-425-555-0101;EXT=4101"), (true, "14255550101".into(), Some("4101"), true));
        assert_eq!(digits_of("<sip:4567@contoso.com>"), (false, "4567".into(), None, false));
        assert_eq!(digits_of("sip:+14255550100;phone-context=contoso.com@contoso.com;user=phone").1, "14255550100");
    }

    #[test]
    fn sip_names_are_lower_cased_without_scheme_or_parameters() {
        assert_eq!(shape("sip:Kwame.Mensah@Contoso.com"), Shape::Sip("kwame.mensah@contoso.com".into()));
        assert_eq!(shape("kwame.mensah@contoso.com"), Shape::Sip("kwame.mensah@contoso.com".into()));
        assert_eq!(shape("\"Olivia\" <sip:olivia.chen@contoso.com;transport=tls>"), Shape::Sip("olivia.chen@contoso.com".into()));
    }

    #[test]
    fn sip_names_are_lower_cased_as_str_to_lowercase_does() {
        for (user, host) in [("Kwame.Mensah", "Contoso.COM"), ("ÅSA.Öberg", "Contoso.se"), ("a", "Ω.example"), ("", "")] {
            assert_eq!(sip_name(user, host), format!("{}@{}", user.to_lowercase(), host.to_lowercase()));
        }
    }

    #[test]
    fn withheld_numbers_are_anonymous() {
        for raw in
            ["", "  ", "Anonymous", "sip:anonymous@anonymous.invalid;user=phone", "UNAVAILABLE", "Restricted", "sip:@contoso.com", "sip:"]
        {
            assert_eq!(shape(raw), Shape::Anonymous, "{raw:?}");
        }
    }

    #[test]
    fn trunk_zero_separators_and_suffix_extensions() {
        assert_eq!(digits_of("+33 (0)1 99 00 12 34"), (true, "33199001234".into(), None, false));
        assert_eq!(digits_of("289-555-0163 x123"), (false, "2895550163".into(), Some("123"), false));
        assert_eq!(digits_of("+34 91 555 01 23 ext. 2210"), (true, "34915550123".into(), Some("2210"), false));
        assert_eq!(digits_of("425.555.0123 #77"), (false, "4255550123".into(), Some("77"), false));
        assert_eq!(digits_of("+1 (425) 555\u{2011}0100"), (true, "14255550100".into(), None, false));
        assert_eq!(digits_of("＋44 7700 900123").1, "447700900123");
    }

    #[test]
    fn letters_in_numbers_are_garbage() {
        assert_eq!(shape("1-800-FLOWERS"), Shape::Garbage);
        assert_eq!(shape("+1 425 + 555"), Shape::Garbage);
        assert_eq!(shape("tel:+1425;ext=12a"), Shape::Garbage);
        assert_eq!(shape("fax123"), Shape::Garbage);
    }

    proptest::proptest! {
        /// Whenever the plain-number reading answers, it answers as the full reading does:
        /// values built from digits, every separator, `+`, `tel:` / `sip:`, `(0)`, extension
        /// markers, parameters and letters.
        #[test]
        fn the_plain_number_reading_agrees_with_the_full_one(
            value in "[ \t]?(tel:|TEL: |sip:)?[+＋]?[0-9 .()/\t-]{0,6}(\\(0\\))?[0-9 .()/-]{0,12}( ?x| ext\\. |#|;ext=|@host|a)?[0-9]{0,4}[ \u{a0}]?"
        ) {
            if let Some(plain) = plain_number(&value) {
                proptest::prop_assert_eq!(plain, shape_in_full(&value), "{:?}", value);
            }
        }
    }

    #[test]
    fn plain_numbers_agree_with_the_full_reading() {
        let values = [
            "+1 425 555 0101",
            "+1 (425) 555-0101",
            "(425) 555-0101",
            "425.555.0101",
            "425-555-0101",
            "1-425-555-0101",
            "+14255550101",
            "+1 425-555-0101",
            "tel:+14255550101",
            "TEL: +1 425 555 0101",
            " +44 20 7946 0123 ",
            "4120",
            "+",
            "()",
            "+33 (0)1 99 00 12 34",
            "+1 425 + 555",
            "\t425/555/0101",
            "00 44 20 7946 0123",
            "+1 425 555 0101 x12",
        ];
        let mut answered = 0;
        for value in values {
            if let Some(plain) = plain_number(value) {
                assert_eq!(plain, shape_in_full(value), "{value:?}");
                answered += 1;
            }
        }
        assert_eq!(answered, 14);
    }
}
