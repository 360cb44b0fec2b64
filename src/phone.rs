//! Number normalization under a dial plan: the only module that uses `phonenumber`.
//!
//! Consumes caller ids and directory values as written (`+12892596319`,
//! `sip:+1…@host;user=phone`, `tel:+1…;ext=4120`, `912895550163`, `4567`,
//! `+33 (0)1 99 00 12 34`, `jdoe@contoso.com`, `Anonymous`) and produces a [`Parsed`] value:
//! E.164, extension, SIP name, or anonymous. [`normalize_party`] fills a [`Party`]'s
//! `kind`, `e164`, `national`, `international`, `extension` and `sip` from its `raw`.
//! Also the reader-aware formatting the templates use ([`format_for_reader`],
//! [`region_of_culture`]).
//!
//! Plausibility is judged by the numbering plan's lengths and leading digits, never by
//! libphonenumber's `is_valid`: the fictional ranges (NANP 555-01xx, UK 07700 900xxx) are
//! "invalid" there yet must resolve. E.164 digits are computed here, not by
//! `phonenumber::parse`, which strips carrier codes from some foreign numbers (+55 11 …).
//! Nothing here fails or panics on input: what cannot be read is [`Parsed::Invalid`].
//! The only error is [`DialPlan::new`]'s, for an unknown region.

mod layout;
mod lexical;
mod metadata;
mod rules;
pub mod settings;

use crate::event::{CallerStatus, PartKind, Party, PartyKind, Transcript};
use lexical::Shape;

/// The dial plan numbers are read under (`[dialplan]` in docs/configuration.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialPlan {
    /// ISO 3166 region for numbers written without a country code (`US`).
    pub region: String,
    /// Digits dialled for an outside line (`9`), stripped from caller ids.
    pub outside_line_code: Option<String>,
    /// Length of internal extensions; bare digit strings this long or shorter are extensions.
    pub extension_digits: usize,
    /// Trailing digits compared when a caller id is too short to be a full number.
    pub min_suffix_digits: usize,
    /// The region's country calling code (1 for US).
    country_code: u16,
}

impl DialPlan {
    /// Validates the region (ISO 3166 alpha-2 known to libphonenumber, any case) and builds
    /// the plan. Error: ``unknown region `XX` ``.
    pub fn new(
        region: &str,
        outside_line_code: Option<&str>,
        extension_digits: usize,
        min_suffix_digits: usize,
    ) -> Result<DialPlan, String> {
        let upper = region.trim().to_ascii_uppercase();
        let (_, country_code) = (upper.len() == 2 && upper.bytes().all(|b| b.is_ascii_alphabetic()))
            .then(|| metadata::region(upper.as_str()))
            .flatten()
            .ok_or_else(|| format!("unknown region `{region}`"))?;
        Ok(DialPlan {
            country_code,
            region: upper,
            outside_line_code: outside_line_code.map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned),
            extension_digits,
            min_suffix_digits,
        })
    }

    /// The plan's country calling code (1 for US, 44 for GB).
    #[cfg(test)]
    fn country_code(&self) -> u16 {
        self.country_code
    }

    /// The region's rules for reading numbers (compiled on first use; `None` only if they do
    /// not compile, which the metadata's tests rule out).
    fn rules(&self) -> Option<&'static rules::NumberRules> {
        metadata::region_rules(self.region.as_str())
    }
}

/// Who reads a value: caller ids are dialled strings (an outside-line code may be left in
/// them); directory values are written by people (no outside-line code to strip).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Caller,
    Stored,
}

/// A number in E.164 with the extension written next to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    /// `+12895550163`.
    pub e164: String,
    /// From `;ext=` or an `x123` / `ext. 123` suffix.
    pub extension: Option<String>,
    /// True when the extension came from a `;ext=` URI parameter (an internally dialable
    /// extension), false for a written suffix (a PBX extension behind a main number).
    pub uri_extension: bool,
}

/// A caller id or directory value, read under a dial plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// No caller id: missing, withheld, `Anonymous`, `anonymous@anonymous.invalid`.
    Anonymous,
    /// A SIP name `user@host`, lower-cased, without scheme.
    Sip(String),
    Number(Number),
    /// Bare digits no longer than the plan's extension length.
    Extension(String),
    /// Digits that are not a full number under the plan (a local number without its area
    /// code): only good for a trailing-digits match.
    Partial(String),
    /// Letters in a number, an unknown country code, an impossible length.
    Invalid,
}

/// Reads `raw` under `plan` (spec §6.4 steps 1-3).
pub fn parse(raw: &str, plan: &DialPlan, source: Source) -> Parsed {
    match lexical::shape(raw) {
        Shape::Anonymous => Parsed::Anonymous,
        Shape::Sip(sip) => Parsed::Sip(sip),
        Shape::Garbage => Parsed::Invalid,
        Shape::Digits { plus: true, digits, extension, uri_extension } => {
            let extension = extension.map(str::to_owned);
            e164_from_international(&digits).map_or(Parsed::Invalid, |e164| Parsed::Number(Number { e164, extension, uri_extension }))
        }
        Shape::Digits { plus: false, digits, extension, uri_extension } => {
            let extension = extension.map(str::to_owned);
            let read = |digits: &str| read_digits(digits, plan, &extension, uri_extension);
            // An outside-line code is only taken off when what follows is longer than an
            // extension, and kept when only the whole string is a number: `912895550163` is
            // +1 289…, but `9145550100` is the national 914 number.
            let after_code = plan
                .outside_line_code
                .as_deref()
                .filter(|_| source == Source::Caller)
                .and_then(|code| digits.strip_prefix(code))
                .filter(|rest| rest.len() > plan.extension_digits);
            let whole = read(&digits);
            match after_code.map(read) {
                Some(stripped @ Parsed::Number(_)) => stripped,
                Some(stripped) if !matches!(whole, Parsed::Number(_)) => stripped,
                _ => whole,
            }
        }
    }
}

/// Digits written without `+`: an access code, an extension, or a national number.
fn read_digits(digits: &str, plan: &DialPlan, extension: &Option<String>, uri_extension: bool) -> Parsed {
    let number = |e164| Parsed::Number(Number { e164, extension: extension.clone(), uri_extension });
    if let Some(after) = strip_international_prefix(digits, plan) {
        return e164_from_international(after).map_or(Parsed::Invalid, number);
    }
    if digits.len() <= plan.extension_digits {
        return Parsed::Extension(digits.to_owned());
    }
    e164_from_national(digits, plan).map_or_else(|| Parsed::Partial(digits.to_owned()), number)
}

/// Fills `party`'s `kind`, `e164`, `national`, `international`, `extension` and `sip` from
/// its `raw` value; an anonymous party gets status `anonymous`. Directory fields are left
/// alone (see `enrich::resolve_party`).
pub fn normalize_party(party: &mut Party, plan: &DialPlan) {
    party.e164 = None;
    party.national = None;
    party.international = None;
    party.extension = None;
    party.sip = None;
    let parsed = party.raw.as_deref().map_or(Parsed::Anonymous, |raw| parse(raw, plan, Source::Caller));
    party.kind = match parsed {
        Parsed::Anonymous => PartyKind::Anonymous,
        Parsed::Sip(sip) => {
            party.sip = Some(sip);
            PartyKind::Sip
        }
        Parsed::Extension(ext) => {
            party.extension = Some(ext);
            PartyKind::Extension
        }
        Parsed::Number(number) => {
            if let Some((national, international)) = formats(&number.e164) {
                party.national = Some(national);
                party.international = Some(international);
            }
            party.e164 = Some(number.e164);
            party.extension = number.extension;
            PartyKind::Number
        }
        Parsed::Partial(_) | Parsed::Invalid => PartyKind::Number,
    };
    if party.kind == PartyKind::Anonymous {
        party.status = CallerStatus::Anonymous;
    } else if party.status == CallerStatus::Anonymous {
        party.status = CallerStatus::NotLookedUp;
    }
}

/// Fills `e164` and `tel` of every phone number heard in a voicemail's preview: its
/// `reference` digits (else the digits of its words) read under `plan` like a directory
/// value. A full number dials its E.164; one too short for E.164 (an extension, a local
/// number) dials its digits; one that cannot be read is not linked (`tel` stays `None`).
pub fn dial_transcript_numbers(transcript: &mut Transcript, plan: &DialPlan) {
    for part in transcript.parts.iter_mut().filter(|p| p.kind == PartKind::Number) {
        let words: String = part.text.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect();
        let read = [part.reference.as_deref(), Some(words.as_str())].into_iter().flatten().find_map(|raw| {
            match parse(raw, plan, Source::Stored) {
                Parsed::Number(n) => Some((Some(n.e164.clone()), n.e164)),
                Parsed::Extension(digits) | Parsed::Partial(digits) => Some((None, digits)),
                Parsed::Anonymous | Parsed::Sip(_) | Parsed::Invalid => None,
            }
        });
        let dialable = |tel: &String| !tel.is_empty() && tel.strip_prefix('+').unwrap_or(tel).bytes().all(|b| b.is_ascii_digit());
        (part.e164, part.tel) = match read {
            Some((e164, tel)) if dialable(&tel) => (e164, Some(tel)),
            _ => (None, None),
        };
    }
}

/// `+E164` as the reader should see it: in the number's national style when the reader's
/// region shares its country calling code (a Canadian reader and a US number both use +1),
/// else international. `None` when `e164` is not a number libphonenumber can format.
pub(crate) fn format_for_reader(e164: &str, reader_region: Option<&str>) -> Option<String> {
    let (national, international) = formats(e164)?;
    Some(if is_domestic_for(e164, reader_region) { national } else { international })
}

/// Whether a reader in `reader_region` shares the country calling code of `+E164` (and so
/// reads it in national style).
pub(crate) fn is_domestic_for(e164: &str, reader_region: Option<&str>) -> bool {
    let Some(number_code) = e164.strip_prefix('+').and_then(country_code_of).map(|(code, _)| code) else { return false };
    let reader_code = reader_region.and_then(|r| metadata::region(r.trim().to_ascii_uppercase().as_str())).map(|(_, code)| code);
    reader_code == Some(number_code)
}

/// The region of a .NET culture name (`fr-CA` -> `CA`, `zh-Hans-CN` -> `CN`), when it is a
/// region libphonenumber knows. `None` for a language-only culture (`de`) or `es-419`.
pub(crate) fn region_of_culture(culture: &str) -> Option<&'static str> {
    let region = culture.split(['-', '_']).skip(1).filter(|t| t.len() == 2 && t.bytes().all(|b| b.is_ascii_alphabetic())).last()?;
    metadata::region(region.to_ascii_uppercase().as_str()).map(|(id, _)| id)
}

/// The trailing `n` digits of an E.164 number or a digit string, when it has that many.
pub fn suffix(digits: &str, n: usize) -> Option<&str> {
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    (n > 0 && digits.len() >= n && digits.bytes().all(|b| b.is_ascii_digit())).then(|| &digits[digits.len() - n..])
}

/// `(national, international)` renderings of an E.164 number, checked to keep its digits.
///
/// libphonenumber's formatting runs several regular expressions, and the same number is
/// formatted once at enrichment and again by every `phone` filter in the templates, so the
/// results are memoized (bounded: the table is emptied when it reaches [`FORMAT_CACHE_MAX`]).
fn formats(e164: &str) -> Option<(String, String)> {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    type Table = HashMap<Box<str>, Option<(String, String)>>;
    static CACHE: LazyLock<Mutex<Table>> = LazyLock::new(|| Mutex::new(HashMap::new()));
    if let Some(hit) = CACHE.lock().unwrap_or_else(|e| e.into_inner()).get(e164) {
        return hit.clone();
    }
    let computed = format_uncached(e164);
    let mut table = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if table.len() >= FORMAT_CACHE_MAX {
        table.clear();
    }
    table.insert(e164.into(), computed.clone());
    computed
}

/// Most numbers [`formats`] remembers (about 100 bytes each).
const FORMAT_CACHE_MAX: usize = 16_384;

/// Laid out with the metadata of its country code's main region: formatting depends only on
/// the country code, as in libphonenumber.
fn format_uncached(e164: &str) -> Option<(String, String)> {
    let digits = e164.strip_prefix('+')?;
    let (code, nsn) = country_code_of(digits)?;
    metadata::main_layout(code)?.lay_out(digits, nsn)
}

/// Splits international digits (after `+` or an access code) into country code and rest.
fn country_code_of(digits: &str) -> Option<(u16, &str)> {
    if digits.starts_with('0') {
        return None;
    }
    (1..=3).filter(|&n| digits.len() > n).find_map(|n| {
        let code: u16 = digits[..n].parse().ok()?;
        metadata::has_code(code).then_some((code, &digits[n..]))
    })
}

/// `+<country code><significant number>` when the rest is plausible for that country. A
/// national trunk prefix written after the country code (`+44 020 …`) is dropped.
fn e164_from_international(digits: &str) -> Option<String> {
    let (code, rest) = country_code_of(digits)?;
    let code_len = digits.len() - rest.len();
    let fits = |nsn: &str| code_len + nsn.len() <= 15 && metadata::code_rules(code).any(|rules| rules.plausible(nsn));
    let nsn = if fits(rest) {
        rest
    } else {
        let prefix = metadata::code_rules(code).next().and_then(rules::NumberRules::national_prefix)?;
        rest.strip_prefix(prefix).filter(|nsn| fits(nsn))?
    };
    Some(e164_of(code, nsn))
}

/// A national number under the plan's region, with or without its trunk prefix.
fn e164_from_national(digits: &str, plan: &DialPlan) -> Option<String> {
    let rules = plan.rules()?;
    let without_prefix = rules.national_prefix().and_then(|p| digits.strip_prefix(p)).filter(|nsn| rules.plausible(nsn));
    let nsn = without_prefix.or_else(|| rules.plausible(digits).then_some(digits))?;
    Some(e164_of(plan.country_code, nsn))
}

/// `+<code><nsn>`, as `format!` would write it but without its machinery: a directory
/// load makes one for every number it reads.
fn e164_of(code: u16, nsn: &str) -> String {
    let mut digits = [0u8; 5];
    let (mut rest, mut start) = (code, digits.len());
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut e164 = String::with_capacity(1 + digits.len() - start + nsn.len());
    e164.push('+');
    e164.extend(digits[start..].iter().map(|&d| char::from(d)));
    e164.push_str(nsn);
    e164
}

/// The international access code of the plan's region (`011` in the US) or `00`.
fn strip_international_prefix<'a>(digits: &'a str, plan: &DialPlan) -> Option<&'a str> {
    let by_region = plan.rules().and_then(|rules| rules.after_international_prefix(digits));
    by_region.or_else(|| digits.strip_prefix("00")).filter(|rest| !rest.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> DialPlan {
        DialPlan::new("US", Some("9"), 4, 7).expect("US is a region")
    }

    fn e164(raw: &str) -> Option<String> {
        match parse(raw, &us(), Source::Caller) {
            Parsed::Number(n) => Some(n.e164),
            _ => None,
        }
    }

    #[test]
    fn e164_is_written_as_format_writes_it() {
        for code in [0, 1, 7, 9, 10, 44, 99, 100, 353, 999, 1000, 9999, 10_000, u16::MAX] {
            for nsn in ["", "4255550101", "0"] {
                assert_eq!(e164_of(code, nsn), format!("+{code}{nsn}"));
            }
        }
    }

    #[test]
    fn numbers_heard_in_a_preview_dial_their_e164_or_their_digits() {
        use crate::event::TranscriptPart;
        let number = |text: &str, reference: Option<&str>| TranscriptPart {
            reference: reference.map(str::to_owned),
            ..TranscriptPart::new(PartKind::Number, text)
        };
        let mut t = Transcript {
            parts: vec![
                number("425 555 0188", Some("4255550188")),
                number("plus 44 7700 900456", Some("+447700900456")),
                number("4567", Some("4567")),
                number("555 0199", None),
                number("four two", Some("sip:x@y")),
                TranscriptPart::new(PartKind::Text, "425 555 0100"),
            ],
            ..Transcript::default()
        };
        dial_transcript_numbers(&mut t, &us());
        let dialled: Vec<(Option<&str>, Option<&str>)> = t.parts.iter().map(|p| (p.e164.as_deref(), p.tel.as_deref())).collect();
        assert_eq!(
            dialled,
            [
                (Some("+14255550188"), Some("+14255550188")),
                (Some("+447700900456"), Some("+447700900456")),
                (None, Some("4567")),
                (None, Some("5550199")),
                (None, None),
                (None, None),
            ]
        );
    }

    #[test]
    fn dial_plan_rejects_unknown_regions_by_name() {
        assert_eq!(DialPlan::new("XX", None, 4, 7).unwrap_err(), "unknown region `XX`");
        assert_eq!(DialPlan::new("001", None, 4, 7).unwrap_err(), "unknown region `001`");
        let gb = DialPlan::new("gb", Some(" "), 4, 7).expect("gb is GB");
        assert_eq!((gb.region.as_str(), gb.country_code(), gb.outside_line_code.as_deref()), ("GB", 44, None));
    }

    #[test]
    fn every_fixture_caller_shape() {
        assert_eq!(e164("+12895550147").as_deref(), Some("+12895550147"));
        assert_eq!(e164("sip:+12895550147@contoso.com;user=phone").as_deref(), Some("+12895550147"));
        assert_eq!(e164("tel:+14255550131").as_deref(), Some("+14255550131"));
        assert_eq!(e164("912895550163").as_deref(), Some("+12895550163"));
        assert_eq!(e164("+33199001234").as_deref(), Some("+33199001234"));
        assert_eq!(e164("+551155550150").as_deref(), Some("+551155550150"));
        assert_eq!(e164("+447700900456").as_deref(), Some("+447700900456"));
        assert_eq!(parse("4567", &us(), Source::Caller), Parsed::Extension("4567".into()));
        assert_eq!(parse("kwame.mensah@contoso.com", &us(), Source::Caller), Parsed::Sip("kwame.mensah@contoso.com".into()));
        assert_eq!(parse("sip:anonymous@anonymous.invalid;user=phone", &us(), Source::Caller), Parsed::Anonymous);
    }

    #[test]
    fn national_numbers_access_codes_and_trunk_prefixes() {
        assert_eq!(e164("425.555.0123").as_deref(), Some("+14255550123"));
        assert_eq!(e164("1 (425) 555-0100").as_deref(), Some("+14255550100"));
        assert_eq!(e164("011 44 7700 900123").as_deref(), Some("+447700900123"));
        assert_eq!(e164("0044 7700 900123").as_deref(), Some("+447700900123"));
        assert_eq!(e164("9011447700900123").as_deref(), Some("+447700900123"));
        assert_eq!(e164("+44 020 7946 0321").as_deref(), Some("+442079460321"));
        assert_eq!(e164("+33 (0)1 99 00 12 34").as_deref(), Some("+33199001234"));
        let gb = DialPlan::new("GB", None, 4, 7).expect("GB is a region");
        assert!(matches!(parse("07700 900456", &gb, Source::Stored), Parsed::Number(n) if n.e164 == "+447700900456"));
    }

    #[test]
    fn values_that_do_not_fit_the_plan_are_not_numbers() {
        // A UK national mobile under a US plan: never +1…, never +44… (no country to assume).
        assert_eq!(parse("07700 900456", &us(), Source::Stored), Parsed::Partial("07700900456".into()));
        assert_eq!(parse("8 (495) 555-01-99", &us(), Source::Stored), Parsed::Partial("84955550199".into()));
        assert_eq!(parse("06 61 00 00 02", &us(), Source::Stored), Parsed::Partial("0661000002".into()));
        assert_eq!(parse("5550100", &us(), Source::Caller), Parsed::Partial("5550100".into()));
        assert_eq!(parse("+999 1234 5678", &us(), Source::Caller), Parsed::Invalid);
        assert_eq!(parse("+1 425 555", &us(), Source::Caller), Parsed::Invalid);
        assert_eq!(parse("1-800-FLOWERS", &us(), Source::Caller), Parsed::Invalid);
    }

    #[test]
    fn outside_line_code_only_for_callers_and_only_before_long_numbers() {
        assert_eq!(parse("94567", &us(), Source::Caller), Parsed::Partial("94567".into()));
        assert_eq!(parse("9123", &us(), Source::Caller), Parsed::Extension("9123".into()));
        assert_eq!(parse("914255550100", &us(), Source::Stored), Parsed::Partial("914255550100".into()));
        assert_eq!(e164("94255550100").as_deref(), Some("+14255550100"));
        assert_eq!(e164("9145550100").as_deref(), Some("+19145550100"));
    }

    #[test]
    fn extensions_next_to_numbers() {
        let parsed = parse("tel:+14255550110;ext=4567", &us(), Source::Stored);
        assert_eq!(parsed, Parsed::Number(Number { e164: "+14255550110".into(), extension: Some("4567".into()), uri_extension: true }));
        let parsed = parse("289-555-0163 x123", &us(), Source::Stored);
        assert_eq!(parsed, Parsed::Number(Number { e164: "+12895550163".into(), extension: Some("123".into()), uri_extension: false }));
    }

    #[test]
    fn normalize_party_fills_the_contract_fields() {
        let mut party = Party::from_raw(Some("sip:+12895550147@contoso.com;user=phone".into()));
        normalize_party(&mut party, &us());
        assert_eq!(party.kind, PartyKind::Number);
        assert_eq!(party.e164.as_deref(), Some("+12895550147"));
        assert_eq!(party.national.as_deref(), Some("(289) 555-0147"));
        assert_eq!(party.international.as_deref(), Some("+1 289-555-0147"));
        assert_eq!((party.sip.as_deref(), party.extension.as_deref()), (None, None));
        assert_eq!(party.status, CallerStatus::NotLookedUp);

        let mut party = Party::from_raw(Some("Anonymous".into()));
        normalize_party(&mut party, &us());
        assert_eq!((party.kind, party.status), (PartyKind::Anonymous, CallerStatus::Anonymous));

        let mut party = Party::from_raw(Some("4567".into()));
        normalize_party(&mut party, &us());
        assert_eq!((party.kind, party.extension.as_deref(), party.e164.as_deref()), (PartyKind::Extension, Some("4567"), None));

        let mut party = Party::from_raw(Some("sip:Kwame.Mensah@contoso.com".into()));
        normalize_party(&mut party, &us());
        assert_eq!((party.kind, party.sip.as_deref()), (PartyKind::Sip, Some("kwame.mensah@contoso.com")));

        let mut party = Party::from_raw(Some("+447700900123".into()));
        normalize_party(&mut party, &us());
        assert_eq!(party.national.as_deref(), Some("07700 900123"));
        assert_eq!(party.international.as_deref(), Some("+44 7700 900123"));
    }

    #[test]
    fn reader_aware_formatting() {
        assert_eq!(format_for_reader("+14255550100", Some("US")).as_deref(), Some("(425) 555-0100"));
        assert_eq!(format_for_reader("+14255550100", Some("CA")).as_deref(), Some("(425) 555-0100"));
        assert_eq!(format_for_reader("+14255550100", Some("FR")).as_deref(), Some("+1 425-555-0100"));
        assert_eq!(format_for_reader("+33199001234", Some("fr")).as_deref(), Some("01 99 00 12 34"));
        assert_eq!(format_for_reader("+33199001234", None).as_deref(), Some("+33 1 99 00 12 34"));
        assert_eq!(format_for_reader("4567", Some("US")), None);
    }

    #[test]
    fn regions_of_cultures() {
        assert_eq!(region_of_culture("fr-CA"), Some("CA"));
        assert_eq!(region_of_culture("en-gb"), Some("GB"));
        assert_eq!(region_of_culture("zh-Hans-CN"), Some("CN"));
        assert_eq!(region_of_culture("de"), None);
        assert_eq!(region_of_culture("es-419"), None);
        assert_eq!(region_of_culture("xx-ZZ"), None);
    }

    #[test]
    fn suffixes() {
        assert_eq!(suffix("+14255550100", 7), Some("5550100"));
        assert_eq!(suffix("5550100", 7), Some("5550100"));
        assert_eq!(suffix("550100", 7), None);
        assert_eq!(suffix("+1425", 0), None);
    }

    proptest::proptest! {
        /// Any input reads without panicking, and a number is always `+` and 2-15 digits
        /// that its international format (when there is one) keeps.
        #[test]
        fn any_input_reads_to_a_well_formed_value(raw in "\\PC{0,40}|[+0-9 ()x;=@a-z:.-]{0,30}") {
            match parse(&raw, &us(), Source::Caller) {
                Parsed::Number(n) => {
                    let digits = n.e164.strip_prefix('+').expect("leading +");
                    proptest::prop_assert!((2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()), "{}", n.e164);
                    if let Some((_, international)) = formats(&n.e164) {
                        let kept: String = international.chars().filter(char::is_ascii_digit).collect();
                        proptest::prop_assert_eq!(kept, digits);
                    }
                }
                Parsed::Extension(d) => proptest::prop_assert!(!d.is_empty() && d.len() <= 4),
                Parsed::Sip(s) => proptest::prop_assert!(s.contains('@') && s == s.to_lowercase()),
                Parsed::Partial(d) => proptest::prop_assert!(d.bytes().all(|b| b.is_ascii_digit())),
                Parsed::Anonymous | Parsed::Invalid => {}
            }
        }
    }
}
