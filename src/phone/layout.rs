//! An E.164 number laid out in national and international style, from the metadata of its
//! country code's main region, as libphonenumber reads it back and formats it.
//!
//! This is the `phonenumber` crate's `parse` of `+<code><digits>` (under the main region) and
//! its formatter, step for step, over plain [`Regex`]es compiled from the region's loader
//! record. Why not the crate itself: its database compiles and syntax-checks every pattern
//! of a region before the first number, then looks each pattern up by its text in one LRU
//! cache behind a mutex at every use, and its parser runs a general-purpose grammar over
//! digits that are already clean. Laying out a caller's number that way was about 70,000
//! instructions per missed call, a sixth of all the work (callgrind over the steady-rate
//! benchmark, 2,000 calls from 44 regions); here a region compiles its reading patterns the
//! first time one of its numbers is laid out, and each format the first time a number
//! reaches it in the list: about 27,000, most of it compiling each region's patterns once
//! (the bench's callers come from many countries). The tests hold the result to the crate's parse and formatter for
//! every region's example numbers, varied, and for generated digit strings.
//!
//! Consumes the main region's loader record and its [`NumberRules`]; produces the two
//! renderings ([`Layout::lay_out`]). Never fails or panics on input: digits the crate would
//! read back as another number (a trunk prefix it strips, an access code after the `+`) are
//! `None`; a number no format fits is written as its digits.

use std::borrow::Cow;
use std::sync::{LazyLock, OnceLock};

use phonenumber::metadata::loader;
use regex::Regex;

use super::rules::{NumberRules, anchored, compile};

/// The shortest and longest significant numbers the crate reads (its `MIN_LENGTH_FOR_NSN`
/// and `MAX_LENGTH_FOR_NSN`).
const NSN_LENGTHS: std::ops::RangeInclusive<usize> = 2..=17;

/// The crate stores a significant number in 56 bits (after its leading zeros).
const NSN_VALUE_LIMIT: u64 = 1 << 56;

/// The first `$n` group reference of a format (libphonenumber's FIRST_GROUP_PATTERN).
static FIRST_GROUP: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(\$[0-9])").expect("a valid pattern"));

/// What laying out numbers of one country calling code takes.
pub(super) struct Layout {
    code: u16,
    /// The main region's rules (its international access code is refused after a `+`).
    rules: &'static NumberRules,
    national_prefix: Option<String>,
    /// `national_prefix_for_parsing`, anchored: the crate searches it anywhere but keeps only
    /// a match at 0.
    prefix_for_parsing: Option<Regex>,
    transform_rule: Option<String>,
    /// The general description's pattern, unanchored (the crate's `is_match`).
    general: Regex,
    general_lengths: Vec<u16>,
    general_local_lengths: Vec<u16>,
    formats: Vec<LazyFormat>,
    /// Empty when the national formats serve both styles.
    international_formats: Vec<LazyFormat>,
}

/// One format, each of its patterns compiled the first time a number needs it (most
/// numbers are turned away by the leading digits of the formats before theirs).
struct LazyFormat {
    record: loader::Format,
    /// The last leading-digits pattern, if any.
    leading: OnceLock<Option<Regex>>,
    pattern: OnceLock<Option<Regex>>,
}

impl LazyFormat {
    fn new(record: &loader::Format) -> LazyFormat {
        LazyFormat { record: record.clone(), leading: OnceLock::new(), pattern: OnceLock::new() }
    }

    /// The pattern, anchored at the start when the format has leading digits: it is then
    /// only used on numbers it matches from the start (the leftmost match is that one). A
    /// format without leading digits fits every number, and the crate lays a number out by
    /// the pattern's leftmost match wherever it is.
    fn pattern(&self) -> Option<&Regex> {
        self.pattern
            .get_or_init(|| {
                let pattern = self.record.pattern.as_deref()?;
                if self.record.leading_digits.is_empty() { compile(pattern) } else { anchored(pattern) }
            })
            .as_ref()
    }

    /// Whether the format lays out `digits`: it has no leading-digits rule, or its last one
    /// matches at the start and its pattern matches the whole number. (A pattern that does
    /// not compile, which the metadata's tests rule out, fits nothing.)
    fn fits(&self, digits: &str) -> bool {
        let Some(last) = self.record.leading_digits.last() else { return self.pattern().is_some() };
        let leading = self.leading.get_or_init(|| anchored(last));
        leading.as_ref().is_some_and(|leading| leading.is_match(digits))
            && self.pattern().is_some_and(|pattern| pattern.find(digits).is_some_and(|m| m.start() == 0 && m.end() == digits.len()))
    }
}

impl Layout {
    /// The layout of `record` (a country code's main region). `None` when a reading pattern
    /// does not compile (the metadata's tests rule it out).
    pub(super) fn new(code: u16, record: &loader::Metadata, rules: &'static NumberRules) -> Option<Layout> {
        let general = record.general.as_ref()?;
        let lazy = |formats: &[loader::Format]| formats.iter().map(LazyFormat::new).collect();
        Some(Layout {
            code,
            rules,
            national_prefix: record.national_prefix.clone(),
            prefix_for_parsing: match record.national_prefix_for_parsing.as_deref() {
                Some(pattern) => Some(anchored(pattern)?),
                None => None,
            },
            transform_rule: record.national_prefix_transform_rule.clone(),
            general: compile(general.national_number.as_deref()?)?,
            general_lengths: general.possible_length.clone(),
            general_local_lengths: general.possible_local_length.clone(),
            formats: lazy(&record.formats),
            international_formats: lazy(&record.international_formats),
        })
    }

    /// `(national, international)` renderings of `+<digits>`, whose significant number is
    /// `nsn` (the digits after this layout's country code). `None` when the crate would not
    /// read the same number back.
    pub(super) fn lay_out(&self, digits: &str, nsn: &str) -> Option<(String, String)> {
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if digits.len() <= *NSN_LENGTHS.start() || !all_digits(digits) || !NSN_LENGTHS.contains(&nsn.len()) {
            return None;
        }
        // `+011 44 …`: after a `+`, the crate drops the region's access code and reads on.
        let after_access_code = self.rules.after_international_prefix(digits);
        if after_access_code.is_some_and(|after| after.len() < digits.len() && !after.starts_with('0')) {
            return None;
        }
        let carrier = self.read_back(nsn)?;
        let significant = nsn.trim_start_matches('0');
        if !significant.parse::<u64>().is_ok_and(|value| value < NSN_VALUE_LIMIT) {
            return None;
        }
        Some((self.national(nsn, carrier.as_deref()), self.international(nsn)))
    }

    /// The carrier code the crate reads from `nsn` when it reads `nsn` back unchanged
    /// (`Some(None)`: no carrier), `None` when it would read other digits (it strips a
    /// national prefix or transforms the number, as it does for digits dialled nationally).
    fn read_back(&self, nsn: &str) -> Option<Option<String>> {
        let (potential, carrier) = self.national_number(nsn);
        let potential = match &self.national_prefix {
            Some(prefix) if potential.starts_with(prefix.as_str()) => Cow::Owned(potential[prefix.len()..].to_owned()),
            _ => potential,
        };
        // The crate keeps its reading unless it is too short for the region.
        let len = u16::try_from(potential.len()).unwrap_or(u16::MAX);
        let too_short = self.general_lengths.first().is_some_and(|&min| len < min) && !self.general_local_lengths.contains(&len);
        if too_short {
            return Some(None);
        }
        (potential == nsn).then_some(carrier)
    }

    /// The crate's national-prefix step: the number with its national prefix (or carrier
    /// code) stripped or transformed, and the carrier code it found.
    fn national_number<'n>(&self, nsn: &'n str) -> (Cow<'n, str>, Option<String>) {
        let Some(parsing) = &self.prefix_for_parsing else {
            return match &self.national_prefix {
                Some(prefix) if nsn.starts_with(prefix.as_str()) => (Cow::Borrowed(&nsn[prefix.len()..]), None),
                _ => (Cow::Borrowed(nsn), None),
            };
        };
        let Some(end) = parsing.find(nsn).map(|m| m.end()) else { return (Cow::Borrowed(nsn), None) };
        let Some(captures) = parsing.captures(nsn) else { return (Cow::Borrowed(nsn), None) };
        let group = |i: usize| captures.get(i).map(|m| m.as_str().to_owned());
        let last = group(captures.len() - 1);
        match (&self.transform_rule, last) {
            (Some(transform), Some(_)) => {
                let transformed = parsing.replace(nsn, transform.as_str()).into_owned();
                if self.general.is_match(nsn) && !self.general.is_match(&transformed) {
                    return (Cow::Borrowed(nsn), None);
                }
                (Cow::Owned(transformed), group(1))
            }
            // (The crate's check here compares the number with itself: it never holds.)
            (_, last) => (Cow::Borrowed(&nsn[end..]), last),
        }
    }

    /// `(425) 555-0100`: national style, with the national prefix (or the carrier code) where
    /// the format asks for it.
    fn national(&self, nsn: &str, carrier: Option<&str>) -> String {
        match pick(nsn, &self.formats) {
            None => nsn.to_owned(),
            Some(format) => match (carrier, format.record.domestic_carrier.as_deref()) {
                (Some(carrier), Some(rule)) => self.replace(nsn, format, Some(rule), Some(carrier)),
                _ => self.replace(nsn, format, format.record.national_prefix_formatting_rule.as_deref(), None),
            },
        }
    }

    /// `+1 425-555-0100`: international style.
    fn international(&self, nsn: &str) -> String {
        let formats = if self.international_formats.is_empty() { &self.formats } else { &self.international_formats };
        let body = match pick(nsn, formats) {
            Some(format) => self.replace(nsn, format, None, None),
            None => nsn.to_owned(),
        };
        format!("+{} {body}", self.code)
    }

    /// The number laid out by `format`; `transform` (a national prefix or carrier rule) is
    /// applied to the format's first group.
    fn replace(&self, nsn: &str, format: &LazyFormat, transform: Option<&str>, carrier: Option<&str>) -> String {
        let (Some(pattern), Some(layout)) = (format.pattern(), format.record.format.as_deref()) else {
            return nsn.to_owned();
        };
        let first = FIRST_GROUP.captures(layout).and_then(|c| c.get(1)).map(|g| g.as_str());
        let layout = match (transform, first) {
            (Some(transform), Some(first)) => {
                let rule = transform
                    .replace("$NP", self.national_prefix.as_deref().unwrap_or(""))
                    .replace("$FG", &format!("${first}"))
                    .replace("$CC", carrier.unwrap_or(""));
                FIRST_GROUP.replace(layout, rule.as_str())
            }
            _ => Cow::Borrowed(layout),
        };
        pattern.replace(nsn, layout.as_ref()).into_owned()
    }
}

/// The first format that lays out `nsn`.
fn pick<'f>(nsn: &str, formats: &'f [LazyFormat]) -> Option<&'f LazyFormat> {
    formats.iter().find(|format| format.fits(nsn))
}

#[cfg(test)]
mod tests {
    use phonenumber::Mode;
    use phonenumber::metadata::DATABASE;

    /// libphonenumber's renderings of `+<digits>`, read under the country code's main
    /// region, when it reads the same number back.
    fn crates(main: &phonenumber::Metadata, e164: &str) -> Option<(String, String)> {
        let number = phonenumber::parse(main.id().parse().ok(), e164).ok()?;
        (format!("+{}{}", number.code().value(), number.national()) == e164)
            .then(|| (number.format().mode(Mode::National).to_string(), number.format().mode(Mode::International).to_string()))
    }

    /// Every region's example numbers, shortened, lengthened, behind a trunk prefix and
    /// with their last digits varied, and generated digit strings of every length, laid out
    /// here and by the crate.
    #[test]
    fn the_same_as_the_crates_parse_and_formatter() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next_digit = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            char::from(b'0' + (seed % 10) as u8)
        };
        let (mut compared, mut laid_out) = (0, 0);
        for code in 1..1000u16 {
            let Some(main) = DATABASE.by_code(&code).and_then(|m| m.first().copied()) else { continue };
            let regions = DATABASE.by_code(&code).unwrap_or_default();
            let examples: Vec<String> = regions
                .iter()
                .flat_map(|meta| {
                    let d = meta.descriptors();
                    let kinds = [d.fixed_line(), d.mobile(), d.toll_free(), d.premium_rate(), d.shared_cost(), d.personal_number()];
                    let more = [d.voip(), d.pager(), d.uan(), d.voicemail(), d.short_code(), d.emergency(), Some(d.general())];
                    kinds.into_iter().chain(more).flatten().filter_map(|d| d.example()).map(str::to_owned).collect::<Vec<_>>()
                })
                .collect();
            let mut cases = Vec::new();
            for example in &examples {
                let shorter = &example[..example.len().saturating_sub(2)];
                let varied: String = example[..example.len().saturating_sub(3)].chars().chain((0..3).map(|_| next_digit())).collect();
                for case in [example.clone(), shorter.to_owned(), format!("{example}1"), varied] {
                    for prefix in ["", "0", "1", "00", "8", "9"] {
                        cases.push(format!("{prefix}{case}"));
                    }
                }
            }
            for len in 0..=18 {
                cases.push((0..len).map(|_| next_digit()).collect());
            }
            for nsn in cases {
                let e164 = format!("+{code}{nsn}");
                let ours = super::super::format_uncached(&e164);
                assert_eq!(ours, crates(main, &e164), "{e164}");
                compared += 1;
                laid_out += usize::from(ours.is_some());
            }
        }
        assert!(compared > 20_000 && laid_out > 10_000, "{compared} compared, {laid_out} laid out");
    }

    /// No region's access code starts with its own country code, so the real metadata never
    /// shows it: were `12` dialled before international numbers in the US, `+1 2 125 …` would
    /// be a call to +1 for the crate, never the number +1 212 ….
    #[test]
    fn an_access_code_after_the_plus_is_not_part_of_the_number() {
        let mut record = super::super::metadata::record("US").expect("US").clone();
        record.international_prefix = Some("12".to_owned());
        let rules = Box::leak(Box::new(super::NumberRules::new(&record).expect("compiles")));
        let layout = super::Layout::new(1, &record, rules).expect("compiles");
        let database = phonenumber::metadata::Database::from(vec![record]).expect("compiles");
        for e164 in ["+14255550100", "+11445550100", "+110445550100", "+12125550100"] {
            let digits = &e164[1..];
            let crates = phonenumber::parse_with(&database, Some(phonenumber::country::US), e164)
                .ok()
                .filter(|n| format!("+{}{}", n.code().value(), n.national()) == e164);
            assert_eq!(layout.lay_out(digits, &digits[1..]).is_some(), crates.is_some(), "{e164}");
        }
        assert!(layout.lay_out("14255550100", "4255550100").is_some());
        assert!(layout.lay_out("12125550100", "2125550100").is_none());
    }
}
