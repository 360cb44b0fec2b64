//! Culture names and the locale fallback chain (`fr-CA` -> `fr` -> default -> `en`).
//!
//! Consumes .NET culture names as Exchange writes them (`RecipientCulture : fr-FR`) and the
//! configured default; produces the ordered list of template folders to try. Pure string
//! logic: never fails, never panics, never does I/O.

/// The folder every kind must have: the last link of every fallback chain.
pub const ROOT_LOCALE: &str = "en";

/// True for a syntactically valid .NET culture name: a 2–3 letter language, an optional
/// 4-letter script and an optional 2-letter or 3-digit region (`en`, `en-US`, `zh-Hans-CN`,
/// `es-419`). Case is not checked (`EN-us` is accepted, as .NET does).
pub fn is_valid_culture(name: &str) -> bool {
    let mut parts = name.split('-');
    let Some(language) = parts.next() else { return false };
    if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_alphabetic()) {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    let (script, region) = match rest.as_slice() {
        [] => (None, None),
        [one] if one.len() == 4 => (Some(*one), None),
        [one] => (None, Some(*one)),
        [script, region] => (Some(*script), Some(*region)),
        _ => return false,
    };
    let script_ok = script.is_none_or(|s| s.len() == 4 && s.bytes().all(|b| b.is_ascii_alphabetic()));
    let region_ok = region.is_none_or(|r| {
        (r.len() == 2 && r.bytes().all(|b| b.is_ascii_alphabetic())) || (r.len() == 3 && r.bytes().all(|b| b.is_ascii_digit()))
    });
    script_ok && region_ok
}

/// The language subtag, lower case (`fr-CA` -> `fr`); `en` for anything unusable.
pub fn language(culture: &str) -> String {
    match culture.split('-').next() {
        Some(lang) if is_valid_culture(lang) => lang.to_ascii_lowercase(),
        _ => ROOT_LOCALE.to_owned(),
    }
}

/// The folders to try, most specific first: the culture and its shorter prefixes, then the
/// default culture and its prefixes, then [`ROOT_LOCALE`]. Invalid names are skipped; no
/// entry appears twice (compared case-insensitively).
///
/// `fallback_chain(Some("fr-CA"), "en-US")` is `["fr-CA", "fr", "en-US", "en"]`.
pub fn fallback_chain(culture: Option<&str>, default: &str) -> Vec<String> {
    let mut chain: Vec<String> = Vec::new();
    for name in culture.into_iter().chain([default, ROOT_LOCALE]) {
        if !is_valid_culture(name) {
            continue;
        }
        let parts: Vec<&str> = name.split('-').collect();
        for len in (1..=parts.len()).rev() {
            let candidate = parts[..len].join("-");
            if !chain.iter().any(|c| c.eq_ignore_ascii_case(&candidate)) {
                chain.push(candidate);
            }
        }
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_cultures() {
        for ok in ["en", "en-US", "fr-CA", "ja-JP", "zh-Hans-CN", "es-419", "sr-Latn", "haw", "EN-us"] {
            assert!(is_valid_culture(ok), "{ok}");
        }
        for bad in ["", "x", "xx-INVALID", "en_US", "en-", "-US", "english", "en-US-x-1", "e1-US", "zh-Han-CN", "en-1"] {
            assert!(!is_valid_culture(bad), "{bad}");
        }
    }

    #[test]
    fn chain_goes_from_specific_to_root() {
        assert_eq!(fallback_chain(Some("fr-CA"), "en-US"), ["fr-CA", "fr", "en-US", "en"]);
        assert_eq!(fallback_chain(Some("zh-Hans-CN"), "de-DE"), ["zh-Hans-CN", "zh-Hans", "zh", "de-DE", "de", "en"]);
        assert_eq!(fallback_chain(None, "en-GB"), ["en-GB", "en"]);
        assert_eq!(fallback_chain(Some("EN-us"), "en-US"), ["EN-us", "EN"]);
        assert_eq!(fallback_chain(Some("xx-INVALID"), "es-ES"), ["es-ES", "es", "en"]);
        assert_eq!(fallback_chain(Some("ja-JP"), "bogus_"), ["ja-JP", "ja", "en"]);
    }

    #[test]
    fn language_subtag() {
        assert_eq!(language("fr-CA"), "fr");
        assert_eq!(language("JA"), "ja");
        assert_eq!(language("??"), "en");
    }
}
