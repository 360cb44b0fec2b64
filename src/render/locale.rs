//! Culture names and the locale fallback chain (`fr-CA` -> `fr` -> default -> `en`).
//!
//! Consumes .NET culture names as Exchange writes them (`RecipientCulture : fr-FR`) and the
//! configured default; produces the ordered list of template folders to try. Script and
//! region are both understood: Chinese goes by script (`zh-TW` -> `zh-Hant`, `zh-CN` and bare
//! `zh` -> `zh-Hans`; the legacy `zh-CHT`/`zh-CHS` names too), and Norwegian `no`/`nn` fall back
//! to `nb`. Pure string logic: never fails, never panics, never does I/O.

/// The folder every kind must have: the last link of every fallback chain.
pub const ROOT_LOCALE: &str = "en";

/// True for a syntactically valid .NET culture name: a 2–3 letter language, an optional
/// 4-letter script and an optional 2-letter or 3-digit region (`en`, `en-US`, `zh-Hans-CN`,
/// `es-419`), or one of the legacy names `zh-CHS`/`zh-CHT`. Case is not checked (`EN-us` is
/// accepted, as .NET does).
pub fn is_valid_culture(name: &str) -> bool {
    if LEGACY_NAMES.iter().any(|(old, _)| old.eq_ignore_ascii_case(name)) {
        return true;
    }
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

/// Legacy .NET names that stand for a script, not a region.
const LEGACY_NAMES: [(&str, &str); 2] = [("zh-CHS", "zh-Hans"), ("zh-CHT", "zh-Hant")];

/// Regions whose Chinese is written in Traditional characters; every other region, and no
/// region, reads Simplified.
const HANT_REGIONS: [&str; 3] = ["TW", "HK", "MO"];

/// Languages read by the speakers of another when their own folder is missing:
/// Norwegian (`no`) and Nynorsk (`nn`) readers read Bokmål (`nb`).
const PARENT_LANGUAGES: [(&str, &str); 2] = [("no", "nb"), ("nn", "nb")];

/// A culture name split into its subtags, as written.
struct Culture<'a> {
    language: &'a str,
    script: Option<&'a str>,
    region: Option<&'a str>,
}

impl<'a> Culture<'a> {
    /// Splits a name that [`is_valid_culture`] accepts (legacy names already replaced).
    fn parse(name: &'a str) -> Option<Culture<'a>> {
        if !is_valid_culture(name) {
            return None;
        }
        let mut parts = name.split('-');
        let language = parts.next()?;
        let (mut script, mut region) = (None, None);
        for part in parts {
            if part.len() == 4 { script = Some(part) } else { region = Some(part) }
        }
        Some(Culture { language, script, region })
    }

    /// The script the culture is written in: as written, or implied for Chinese by the region.
    fn script(&self) -> Option<String> {
        if let Some(script) = self.script {
            return Some(title_case(script));
        }
        if !self.language.eq_ignore_ascii_case("zh") {
            return None;
        }
        let traditional = self.region.is_some_and(|r| HANT_REGIONS.iter().any(|h| h.eq_ignore_ascii_case(r)));
        Some(if traditional { "Hant" } else { "Hans" }.to_owned())
    }

    /// The folders this culture reads, most specific first (may repeat; the caller dedups).
    /// Traditional Chinese (`zh-Hant`) does not fall back to the bare `zh`, which reads
    /// Simplified.
    fn candidates(&self, written: &str) -> Vec<String> {
        let lang = self.language;
        let mut out = vec![written.to_owned()];
        match self.script() {
            Some(script) => {
                if let Some(region) = self.region {
                    out.push(format!("{lang}-{script}-{region}"));
                }
                out.push(format!("{lang}-{script}"));
                if !lang.eq_ignore_ascii_case("zh") || script == "Hans" {
                    out.push(lang.to_owned());
                }
            }
            None => {
                if let Some(region) = self.region {
                    out.push(format!("{lang}-{region}"));
                }
                out.push(lang.to_owned());
            }
        }
        if let Some((_, parent)) = PARENT_LANGUAGES.iter().find(|(l, _)| l.eq_ignore_ascii_case(lang)) {
            if let Some(region) = self.region {
                out.push(format!("{parent}-{region}"));
            }
            out.push((*parent).to_owned());
        }
        out
    }
}

fn title_case(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    let mut chars = lower.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// `zh-CHS` -> `zh-Hans`, `zh-CHT` -> `zh-Hant`; any other name unchanged.
fn modern_name(name: &str) -> &str {
    LEGACY_NAMES.iter().find(|(old, _)| old.eq_ignore_ascii_case(name)).map_or(name, |(_, new)| new)
}

/// The language subtag with its script when the language is written in more than one and
/// this is not the usual one: `zh-TW` and `zh-Hant` give `zh-Hant`, `zh-CN` gives `zh`,
/// `fr-CA` gives `fr`. Picks the date and number formats.
pub fn language_and_script(culture: &str) -> String {
    let name = modern_name(culture);
    match Culture::parse(name) {
        Some(c) if c.script().as_deref() == Some("Hant") => format!("{}-Hant", c.language.to_ascii_lowercase()),
        _ => language(name),
    }
}

/// The folders to try, most specific first: the culture and its parents, then the default
/// culture and its parents, then [`ROOT_LOCALE`]. A culture's parents are its shorter
/// prefixes, with the script in between for Chinese (`zh-TW` -> `zh-Hant-TW`, `zh-Hant`;
/// `zh-CN` -> `zh-Hans-CN`, `zh-Hans`, `zh`) and `nb` after `no`/`nn`. Invalid names are
/// skipped; no entry appears twice (compared case-insensitively).
///
/// `fallback_chain(Some("fr-CA"), "en-US")` is `["fr-CA", "fr", "en-US", "en"]`.
pub fn fallback_chain(culture: Option<&str>, default: &str) -> Vec<String> {
    let mut chain: Vec<String> = Vec::new();
    for written in culture.into_iter().chain([default, ROOT_LOCALE]) {
        let name = modern_name(written);
        let Some(parsed) = Culture::parse(name) else { continue };
        for candidate in parsed.candidates(name) {
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
        for ok in ["en", "en-US", "fr-CA", "ja-JP", "zh-Hans-CN", "es-419", "sr-Latn", "haw", "EN-us", "zh-CHT"] {
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

    #[test]
    fn chinese_falls_back_by_script() {
        assert_eq!(fallback_chain(Some("zh-TW"), "en-US"), ["zh-TW", "zh-Hant-TW", "zh-Hant", "en-US", "en"]);
        assert_eq!(fallback_chain(Some("zh-HK"), "en-US"), ["zh-HK", "zh-Hant-HK", "zh-Hant", "en-US", "en"]);
        assert_eq!(fallback_chain(Some("zh-MO"), "en-US")[2], "zh-Hant");
        assert_eq!(fallback_chain(Some("zh-CN"), "en-US"), ["zh-CN", "zh-Hans-CN", "zh-Hans", "zh", "en-US", "en"]);
        assert_eq!(fallback_chain(Some("zh-SG"), "en-US"), ["zh-SG", "zh-Hans-SG", "zh-Hans", "zh", "en-US", "en"]);
        assert_eq!(fallback_chain(Some("zh"), "en-US"), ["zh", "zh-Hans", "en-US", "en"]);
        assert_eq!(fallback_chain(Some("zh-Hant"), "en-US"), ["zh-Hant", "en-US", "en"]);
        assert_eq!(fallback_chain(Some("zh-hant-tw"), "en-US"), ["zh-hant-tw", "zh-Hant", "en-US", "en"]);
        assert_eq!(fallback_chain(Some("zh-CHT"), "en-US"), ["zh-Hant", "en-US", "en"]);
        assert_eq!(fallback_chain(Some("zh-CHS"), "en-US"), ["zh-Hans", "zh", "en-US", "en"]);
        assert_eq!(fallback_chain(None, "zh-TW"), ["zh-TW", "zh-Hant-TW", "zh-Hant", "en"]);
    }

    #[test]
    fn portuguese_and_norwegian_fall_back_to_their_language() {
        assert_eq!(fallback_chain(Some("pt-PT"), "en-US"), ["pt-PT", "pt", "en-US", "en"]);
        assert_eq!(fallback_chain(Some("pt-BR"), "en-US"), ["pt-BR", "pt", "en-US", "en"]);
        assert_eq!(fallback_chain(Some("nb-NO"), "en-US"), ["nb-NO", "nb", "en-US", "en"]);
        assert_eq!(fallback_chain(Some("no-NO"), "en-US"), ["no-NO", "no", "nb-NO", "nb", "en-US", "en"]);
        assert_eq!(fallback_chain(Some("nn-NO"), "en-US"), ["nn-NO", "nn", "nb-NO", "nb", "en-US", "en"]);
        assert_eq!(fallback_chain(Some("sr-Latn-RS"), "en-US"), ["sr-Latn-RS", "sr-Latn", "sr", "en-US", "en"]);
    }

    #[test]
    fn formats_follow_language_and_script() {
        assert_eq!(language_and_script("zh-TW"), "zh-Hant");
        assert_eq!(language_and_script("zh-Hant"), "zh-Hant");
        assert_eq!(language_and_script("zh-CHT"), "zh-Hant");
        assert_eq!(language_and_script("zh-Hans"), "zh");
        assert_eq!(language_and_script("zh"), "zh");
        assert_eq!(language_and_script("pt-BR"), "pt");
        assert_eq!(language_and_script("??"), "en");
    }
}
