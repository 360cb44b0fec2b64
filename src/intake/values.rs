//! Typed readings of single header and XML values: booleans, whole numbers, codecs, culture
//! names, GUIDs, times, OCS priorities.
//!
//! Consumes one trimmed value; produces the typed value or `None` when the value is not
//! valid (the caller turns `None` into an error that names the key, the value and the line).
//! Pure functions: no allocation on the happy path except the result, no panics.

use jiff::Timestamp;

/// Longest call id, caller, target or recipient (name or address) accepted, in characters.
/// These reach mail headers (`X-CallID`, `X-CallingTelephoneNumber`, `To`), whose lines
/// must stay under 998 bytes; a real one is under 100 (a SIP URI with its parameters).
pub const MAX_ID_CHARS: usize = 256;

/// `value` when it has at most `max` characters; else its length in characters.
pub(crate) fn within(value: &str, max: usize) -> Result<&str, usize> {
    // bytes >= characters: most values are decided without counting
    if value.len() <= max {
        return Ok(value);
    }
    match value.chars().count() {
        chars if chars <= max => Ok(value),
        chars => Err(chars),
    }
}

/// The first characters of an over-long value, to name it in an error.
pub(crate) fn beginning(value: &str) -> String {
    const SHOWN: usize = 32;
    let mut start: String = value.chars().take(SHOWN).collect();
    start.push('…');
    start
}
use jiff::tz::TimeZone;

use crate::event::{Codec, Importance};

/// `True`/`False` in any case, as .NET's `bool.Parse` accepts them.
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A non-negative whole number (`Duration`, `NumberOfPages`, `ProcessedCount`).
pub(crate) fn parse_uint(value: &str) -> Option<u32> {
    let digits = value.strip_prefix('+').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The dial-plan codec, matched without regard to case (`Gsm`, `gsm`).
pub(crate) fn parse_codec(value: &str) -> Option<Codec> {
    ["Gsm", "G711", "Wma", "Mp3"].into_iter().find(|name| name.eq_ignore_ascii_case(value)).and_then(Codec::from_name)
}

/// A .NET culture name: a 2–3 letter language, then optionally a 4-letter script and a
/// 2-letter or 3-digit region (`en-US`, `fr`, `zh-Hans-CN`, `es-419`). Any case.
pub(crate) fn is_culture_name(value: &str) -> bool {
    let mut parts = value.split('-');
    let alpha = |s: &str, lens: &[usize]| lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic());
    let region = |s: &str| alpha(s, &[2]) || (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()));
    let Some(language) = parts.next() else { return false };
    if !alpha(language, &[2, 3]) {
        return false;
    }
    match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => true,
        (Some(one), None, _) => alpha(one, &[4]) || region(one),
        (Some(script), Some(reg), None) => alpha(script, &[4]) && region(reg),
        _ => false,
    }
}

/// A GUID in .NET's default form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (any case).
pub(crate) fn is_guid(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `SentTime` (`MM/dd/yyyy HH:mm:ss`, server local time, no zone) read in `zone`; an ISO
/// `yyyy-MM-ddTHH:mm:ss` is accepted too.
pub(crate) fn parse_sent_time(value: &str, zone: &TimeZone) -> Option<Timestamp> {
    let civil = jiff::civil::DateTime::strptime("%m/%d/%Y %H:%M:%S", value).or_else(|_| value.parse::<jiff::civil::DateTime>()).ok()?;
    civil.to_zoned(zone.clone()).ok().map(|z| z.timestamp())
}

/// OCS `<Time>`: `yyyy-MM-dd HH:mm:ssZ` (UTC, "universal sortable"); an RFC 3339 time or
/// a zone-less one (read as UTC) is accepted too.
pub(crate) fn parse_ocs_time(value: &str) -> Option<Timestamp> {
    value.parse::<Timestamp>().ok().or_else(|| {
        let civil = value.parse::<jiff::civil::DateTime>().ok()?;
        civil.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp())
    })
}

/// OCS `Event/Priority`, case-insensitive: normal, urgent, emergency, non-urgent.
pub(crate) fn parse_priority(value: &str) -> Option<Importance> {
    const TABLE: [(&str, Importance); 4] =
        [("normal", Importance::Normal), ("urgent", Importance::High), ("emergency", Importance::High), ("non-urgent", Importance::Low)];
    TABLE.into_iter().find(|(name, _)| name.eq_ignore_ascii_case(value)).map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bounds_count_characters() {
        assert_eq!(within("abc", 3), Ok("abc"));
        assert_eq!(within("abcd", 3), Err(4));
        assert_eq!(within("ééé", 3), Ok("ééé")); // 6 bytes, 3 characters
        assert_eq!(beginning(&"x".repeat(100)), format!("{}…", "x".repeat(32)));
    }

    #[test]
    fn booleans_any_case_only_true_false() {
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("No"), None);
        assert_eq!(parse_bool("Yes"), None);
        assert_eq!(parse_bool("1"), None);
        assert_eq!(parse_bool(""), None);
    }

    #[test]
    fn whole_numbers() {
        assert_eq!(parse_uint("0"), Some(0));
        assert_eq!(parse_uint("1187"), Some(1187));
        assert_eq!(parse_uint("+5"), Some(5));
        assert_eq!(parse_uint("abc"), None);
        assert_eq!(parse_uint("-1"), None);
        assert_eq!(parse_uint("+"), None);
        assert_eq!(parse_uint("1.5"), None);
        assert_eq!(parse_uint("99999999999"), None);
    }

    #[test]
    fn codecs() {
        assert_eq!(parse_codec("Gsm"), Some(Codec::Gsm));
        assert_eq!(parse_codec("mp3"), Some(Codec::Mp3));
        assert_eq!(parse_codec("G711"), Some(Codec::G711));
        assert_eq!(parse_codec("WMA"), Some(Codec::Wma));
        assert_eq!(parse_codec("Opus"), None);
    }

    #[test]
    fn culture_names() {
        for ok in ["en-US", "fr-FR", "ja-JP", "de-de", "fr", "haw-US", "zh-Hans", "zh-Hans-CN", "es-419"] {
            assert!(is_culture_name(ok), "{ok}");
        }
        for bad in ["xx-INVALID", "", "e", "english", "en-", "en_US", "en-U", "en-US-x", "1a-US", "en-Hans-CN-1"] {
            assert!(!is_culture_name(bad), "{bad}");
        }
    }

    #[test]
    fn guids() {
        assert!(is_guid("5e7bf87a-c77b-4f0f-820f-5f25609c7f58"));
        assert!(is_guid("5E7BF87A-C77B-4F0F-820F-5F25609C7F58"));
        assert!(!is_guid("not-a-guid}{1234"));
        assert!(!is_guid("{5e7bf87a-c77b-4f0f-820f-5f25609c7f58}"));
        assert!(!is_guid("5e7bf87a-c77b-4f0f-820f-5f25609c7f5g"));
    }

    #[test]
    fn sent_time_in_the_server_zone() {
        let utc = parse_sent_time("06/05/2014 17:20:44", &TimeZone::UTC).unwrap();
        assert_eq!(utc.to_string(), "2014-06-05T17:20:44Z");
        let toronto = TimeZone::get("America/Toronto").unwrap();
        let t = parse_sent_time("06/05/2014 17:20:44", &toronto).unwrap();
        assert_eq!(t.to_string(), "2014-06-05T21:20:44Z");
        assert_eq!(parse_sent_time("2014-06-05T17:20:44", &TimeZone::UTC), Some(utc));
        assert_eq!(parse_sent_time("13/45/2014 17:20:44", &TimeZone::UTC), None);
        assert_eq!(parse_sent_time("yesterday", &TimeZone::UTC), None);
    }

    #[test]
    fn ocs_time_is_utc() {
        assert_eq!(parse_ocs_time("2011-02-11 01:29:39Z").unwrap().to_string(), "2011-02-11T01:29:39Z");
        assert_eq!(parse_ocs_time("2011-02-11T01:29:39+01:00").unwrap().to_string(), "2011-02-11T00:29:39Z");
        assert_eq!(parse_ocs_time("2011-02-11 01:29:39").unwrap().to_string(), "2011-02-11T01:29:39Z");
        assert_eq!(parse_ocs_time("11 Feb 2011"), None);
    }

    #[test]
    fn priorities_any_case() {
        assert_eq!(parse_priority("urgent"), Some(Importance::High));
        assert_eq!(parse_priority("Emergency"), Some(Importance::High));
        assert_eq!(parse_priority("NON-URGENT"), Some(Importance::Low));
        assert_eq!(parse_priority("normal"), Some(Importance::Normal));
        assert_eq!(parse_priority("low"), None);
    }
}
