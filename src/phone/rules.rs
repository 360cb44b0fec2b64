//! One region's rules for reading digits as a number, compiled without the `phonenumber`
//! crate's database: which lengths its number types allow, its general pattern, its
//! international access code and its national (trunk) prefix.
//!
//! Why not the crate's compiled metadata: every pattern of a crate database is compiled into
//! one LRU cache behind a mutex, looked up by the pattern's text at each use. Loading a
//! directory reads every stored number on every core, and all of them queued on the dial
//! plan region's one mutex (and hashed its patterns' text once per number). Here each region
//! compiles its two expressions once, as plain [`Regex`]es any thread uses without a lock.
//! The answers are the crate's: [`NumberRules::plausible`] is the parent module's former
//! `plausible` over the crate's descriptors, and the tests hold the two equal for every
//! region, on its example numbers and on generated digit strings of every length.
//!
//! Consumes one region's loader record; produces [`NumberRules`]. Never fails on input: a
//! record whose patterns do not compile gives `None` (the metadata's tests rule it out).

use phonenumber::metadata::loader;
use regex::Regex;

/// What deciding whether digits are a number of one region takes.
#[derive(Debug)]
pub(super) struct NumberRules {
    /// Lengths of significant numbers some calling number type (fixed line, mobile, …)
    /// allows; `None` when none of them lists any (then 4 to 14 digits pass).
    type_lengths: Option<Vec<u16>>,
    /// Lengths the general description allows (empty: any).
    general_lengths: Vec<u16>,
    /// The general description's pattern, anchored at the start.
    general: Regex,
    /// The international access code's pattern (`011` in the US), anchored at the start.
    international_prefix: Option<Regex>,
    national_prefix: Option<String>,
}

impl NumberRules {
    /// The rules of `record`; `None` when it has no general pattern or a pattern does not
    /// compile.
    pub(super) fn new(record: &loader::Metadata) -> Option<NumberRules> {
        let types = [
            &record.fixed_line,
            &record.mobile,
            &record.toll_free,
            &record.premium_rate,
            &record.shared_cost,
            &record.personal_number,
            &record.voip,
            &record.pager,
            &record.uan,
            &record.voicemail,
        ];
        let mut lengths: Vec<u16> = types.iter().filter_map(|d| d.as_ref()).flat_map(|d| d.possible_length.iter().copied()).collect();
        lengths.sort_unstable();
        lengths.dedup();
        let general = record.general.as_ref()?;
        Some(NumberRules {
            type_lengths: (!lengths.is_empty()).then_some(lengths),
            general_lengths: general.possible_length.clone(),
            general: anchored(general.national_number.as_deref()?)?,
            international_prefix: match record.international_prefix.as_deref() {
                Some(pattern) => Some(anchored(pattern)?),
                None => None,
            },
            national_prefix: record.national_prefix.clone(),
        })
    }

    /// A significant number that has a length some number type of the region allows and the
    /// leading digits of the region's numbering plan. Deliberately not libphonenumber's
    /// `is_valid`: fictional ranges (NANP 555-01xx) must pass.
    pub(super) fn plausible(&self, nsn: &str) -> bool {
        let Ok(len) = u16::try_from(nsn.len()) else { return false };
        let length_ok = match &self.type_lengths {
            Some(lengths) => lengths.contains(&len),
            None => (4..=14).contains(&len),
        };
        length_ok && (self.general_lengths.is_empty() || self.general_lengths.contains(&len)) && self.general.is_match(nsn)
    }

    /// `digits` after the region's international access code, when they start with it.
    pub(super) fn after_international_prefix<'d>(&self, digits: &'d str) -> Option<&'d str> {
        self.international_prefix.as_ref()?.find(digits).map(|m| &digits[m.end()..])
    }

    /// The national (trunk) prefix, `0` in most of Europe, `1` in the NANP.
    pub(super) fn national_prefix(&self) -> Option<&str> {
        self.national_prefix.as_deref()
    }
}

/// A metadata pattern compiled as the crate compiles it (whitespace in it ignored).
pub(super) fn compile(pattern: &str) -> Option<Regex> {
    regex::RegexBuilder::new(pattern).ignore_whitespace(true).build().ok()
}

/// A metadata pattern matched from the start of the text, compiled as the crate compiles it
/// but anchored there. The crate searches anywhere and keeps a match only when it starts at
/// 0, which is the same match: the leftmost one is at 0 whenever any is. Anchored, the regex
/// crate builds no search accelerators for it, which halved the compiling of number layouts
/// over the steady-rate benchmark (36M to 19M instructions, callgrind).
pub(super) fn anchored(pattern: &str) -> Option<Regex> {
    // The line break keeps the closing bracket out of a `#` comment (whitespace mode).
    compile(&format!("^(?:{pattern}\n)"))
}

#[cfg(test)]
mod tests {
    use phonenumber::{Metadata, Type};

    use super::super::metadata::{code_rules, compiled_code};

    /// The calling number types, as the parent module listed them before these rules.
    const NUMBER_TYPES: [Type; 10] = [
        Type::FixedLine,
        Type::Mobile,
        Type::TollFree,
        Type::PremiumRate,
        Type::SharedCost,
        Type::PersonalNumber,
        Type::Voip,
        Type::Pager,
        Type::Uan,
        Type::Voicemail,
    ];

    /// The reference: plausibility as the parent module judged it before, over the crate's
    /// compiled descriptors.
    fn crate_plausible(meta: &Metadata, nsn: &str) -> bool {
        let Ok(len) = u16::try_from(nsn.len()) else { return false };
        let descriptors = meta.descriptors();
        let mut any_length_known = false;
        let length_ok = NUMBER_TYPES.iter().filter_map(|&t| descriptors.get(t)).any(|d| {
            any_length_known |= !d.possible_length().is_empty();
            d.possible_length().contains(&len)
        });
        (length_ok || (!any_length_known && (4..=14).contains(&len))) && descriptors.general().is_match(nsn)
    }

    /// The reference for the access code: the crate's pattern found anywhere, kept at 0.
    fn crate_after_prefix<'d>(meta: &Metadata, digits: &'d str) -> Option<&'d str> {
        let found = meta.international_prefix()?.find(digits)?;
        (found.start() == 0).then(|| &digits[found.end()..])
    }

    /// Digit strings to judge for a region: its example numbers, each shortened, lengthened
    /// and behind its trunk prefix and common access codes; and generated strings of every
    /// length from 1 to 17 (a fixed xorshift sequence, so a failure repeats).
    fn cases(meta: &Metadata, seed: &mut u64) -> Vec<String> {
        let descriptors = meta.descriptors();
        let examples = NUMBER_TYPES.iter().filter_map(|&t| descriptors.get(t)).chain([descriptors.general()]).filter_map(|d| d.example());
        let mut cases = Vec::new();
        for example in examples {
            let shorter = &example[..example.len().saturating_sub(1)];
            for case in [example.to_owned(), shorter.to_owned(), format!("{example}0"), format!("{example}99")] {
                for prefix in ["", "0", "1", "00", "011", "0011", "810", "8", "9"] {
                    cases.push(format!("{prefix}{case}"));
                }
            }
        }
        for len in 1..=17 {
            for _ in 0..12 {
                let digits = (0..len)
                    .map(|_| {
                        *seed ^= *seed << 13;
                        *seed ^= *seed >> 7;
                        *seed ^= *seed << 17;
                        char::from(b'0' + (*seed % 10) as u8)
                    })
                    .collect();
                cases.push(digits);
            }
        }
        cases
    }

    #[test]
    fn every_region_reads_digits_as_the_crates_metadata_does() {
        let mut seed = 0x2545_f491_4f6c_dd1d;
        let (mut regions, mut judged, mut plausible) = (0, 0, 0);
        for code in 1..1000u16 {
            assert_eq!(code_rules(code).count(), compiled_code(code).count(), "country code {code}");
            for (rules, meta) in code_rules(code).zip(compiled_code(code)) {
                regions += 1;
                assert_eq!(rules.national_prefix(), meta.national_prefix(), "{}", meta.id());
                for case in cases(meta, &mut seed) {
                    let ours = rules.plausible(&case);
                    assert_eq!(ours, crate_plausible(meta, &case), "{} {case}", meta.id());
                    assert_eq!(rules.after_international_prefix(&case), crate_after_prefix(meta, &case), "{} {case}", meta.id());
                    judged += 1;
                    plausible += usize::from(ours);
                }
            }
        }
        // Every region was judged, on cases of both outcomes.
        assert!(regions > 240 && judged > 90_000 && plausible > 10_000, "{regions} regions, {judged} cases, {plausible} plausible");
    }
}
