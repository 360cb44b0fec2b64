//! The national and international renderings of a parsed number, from the metadata of its
//! country code's main region.
//!
//! This follows the `phonenumber` crate's formatter step for step (pick the first format
//! whose leading digits and pattern fit, apply the national prefix or carrier rule, add the
//! extension), because the crate's formatter loads the crate's whole database before it
//! looks at the database it is given, and that load is most of a one-event start-up (see
//! `metadata.rs`). The tests hold the output to the crate's own for every region's example
//! numbers. Never fails or panics: a number no format fits is written as its digits.

use std::sync::LazyLock;

use phonenumber::metadata::Format;
use phonenumber::{Metadata, PhoneNumber};

/// The first `$n` group reference of a format (libphonenumber's FIRST_GROUP_PATTERN).
static FIRST_GROUP: LazyLock<regex::Regex> = LazyLock::new(|| regex::Regex::new(r"(\$\d)").expect("a valid pattern"));

/// `(425) 555-0100`: national style, with the national prefix where the format asks for it.
pub(super) fn national(number: &PhoneNumber, meta: &Metadata) -> String {
    let digits = number.national().to_string();
    let mut out = match pick(&digits, meta.formats()) {
        None => digits,
        Some(format) => match (number.carrier(), format.domestic_carrier()) {
            (Some(carrier), Some(rule)) => replace(&digits, meta, format, Some(rule), Some(carrier.as_ref())),
            _ => replace(&digits, meta, format, format.national_prefix(), None),
        },
    };
    push_extension(&mut out, number, meta);
    out
}

/// `+1 425-555-0100`: international style.
pub(super) fn international(number: &PhoneNumber, meta: &Metadata) -> String {
    let digits = number.national().to_string();
    let formats = if meta.international_formats().is_empty() { meta.formats() } else { meta.international_formats() };
    let body = match pick(&digits, formats) {
        Some(format) => replace(&digits, meta, format, None, None),
        None => digits,
    };
    let mut out = format!("+{} {body}", number.code().value());
    push_extension(&mut out, number, meta);
    out
}

fn push_extension(out: &mut String, number: &PhoneNumber, meta: &Metadata) {
    if let Some(extension) = number.extension() {
        out.push_str(meta.preferred_extension_prefix().unwrap_or(" ext. "));
        out.push_str(extension.as_ref());
    }
}

/// The first format with no leading-digits rule, or whose last leading-digits pattern
/// matches at the start and whose pattern matches the whole number.
fn pick<'a>(digits: &str, formats: &'a [Format]) -> Option<&'a Format> {
    formats.iter().find(|format| {
        let at_start = |found: Option<regex::Match<'_>>| found.is_some_and(|m| m.start() == 0);
        match format.leading_digits().last() {
            None => true,
            Some(leading) => {
                at_start(leading.find(digits)) && format.pattern().find(digits).is_some_and(|m| m.start() == 0 && m.end() == digits.len())
            }
        }
    })
}

/// The number laid out by `format`; `transform` (a national prefix or carrier rule) is
/// applied to the format's first group.
fn replace(digits: &str, meta: &Metadata, format: &Format, transform: Option<&str>, carrier: Option<&str>) -> String {
    let first = FIRST_GROUP.captures(format.format()).and_then(|c| c.get(1)).map(|g| g.as_str());
    let layout = match (transform, first) {
        (Some(transform), Some(first)) => {
            let rule = transform
                .replace("$NP", meta.national_prefix().unwrap_or(""))
                .replace("$FG", &format!("${first}"))
                .replace("$CC", carrier.unwrap_or(""));
            FIRST_GROUP.replace(format.format(), rule.as_str()).into_owned()
        }
        _ => format.format().to_owned(),
    };
    format.pattern().replace(digits, layout.as_str()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonenumber::Mode;
    use phonenumber::metadata::DATABASE;

    /// Every example number of every region, rendered here and by the crate's formatter.
    #[test]
    fn the_same_as_the_crates_formatter_for_every_example_number() {
        let mut compared = 0;
        for meta in DATABASE.iter() {
            let code = meta.country_code();
            let Some(main) = DATABASE.by_code(&code).and_then(|m| m.first().copied()) else { continue };
            let d = meta.descriptors();
            let kinds = [d.fixed_line(), d.mobile(), d.toll_free(), d.premium_rate(), d.shared_cost(), d.personal_number()];
            let more = [d.voip(), d.pager(), d.uan(), d.voicemail(), d.short_code(), d.emergency()];
            let examples = kinds.into_iter().chain(more).flatten().filter_map(|d| d.example());
            for example in examples {
                let e164 = format!("+{code}{example}");
                let Ok(number) = phonenumber::parse(main.id().parse().ok(), &e164) else { continue };
                assert_eq!(national(&number, main), number.format().mode(Mode::National).to_string(), "{e164}");
                assert_eq!(international(&number, main), number.format().mode(Mode::International).to_string(), "{e164}");
                compared += 1;
            }
        }
        assert!(compared > 1_000, "only {compared} numbers compared");
    }
}
