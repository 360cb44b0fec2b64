//! National and international renderings of a parsed number, the same text as
//! libphonenumber's formatter writes, at a fraction of the cost.
//!
//! Consumes a `phonenumber::PhoneNumber` (parsed from an E.164 string) and produces
//! `(national, international)`, or `None` when the number has an extension or a carrier code
//! (the caller then uses the crate's formatter). Pure; no errors, no panics.
//!
//! The crate's formatter reaches each of its metadata's regular expressions through one
//! shared cache, locked and keyed by the expression's source text for every use, and applies a
//! format's national-prefix rule to the format anew for each number: for a new caller that
//! was half of formatting (about 20,000 instructions a number). Here each number format used
//! is prepared once ([`Prepared`]: its expressions compiled with the crate's options, each
//! text once and the whole-number pattern only when a number gets that far, as the crate
//! does; its national rule applied) and found again by its address in the static metadata. The choice
//! of format and the substitutions are the crate's, step by step; a test compares both
//! renderings with the crate's for every example number of every region.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use phonenumber::PhoneNumber;
use phonenumber::metadata::{DATABASE, Format, Metadata};
use regex::{Regex, RegexBuilder};

/// One number format, ready: its leading-digits expression compiled, its national
/// replacement worked out; its whole-number pattern compiled when a number first needs it
/// (most formats of a country are ruled out by their leading digits alone).
struct Prepared {
    format: &'static Format,
    /// The last of the format's leading-digits expressions (the one the formatter checks).
    leading: Option<Arc<Regex>>,
    /// The whole national number, in groups.
    pattern: OnceLock<Compiled>,
    /// What the groups become in a national rendering (the national-prefix rule applied).
    national: String,
}

impl Prepared {
    fn pattern(&self) -> Option<&Regex> {
        self.pattern.get_or_init(|| compiled(self.format.pattern().as_str())).as_deref()
    }

    /// What the groups become in an international rendering (the format as it is).
    fn international(&self) -> &'static str {
        self.format.format()
    }
}

/// `(\$\d)`: the first group reference of a format, where a national-prefix rule goes.
static FIRST_GROUP: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(\$\d)").expect("a valid expression"));

/// Prepared formats by the address of their `Format` in the static metadata (a few dozen
/// per country; the metadata never moves or changes).
static PREPARED: LazyLock<Mutex<HashMap<usize, Arc<Prepared>>>> = LazyLock::new(Default::default);

/// An expression of the metadata, compiled (`None`: it does not compile here).
type Compiled = Option<Arc<Regex>>;

/// Compiled expressions by their text: formats of both lists share many, compiled once.
static COMPILED: LazyLock<Mutex<HashMap<&'static str, Compiled>>> = LazyLock::new(Default::default);

/// An expression of the metadata compiled as the crate compiles it (whitespace ignored),
/// once.
fn compiled(source: &'static str) -> Compiled {
    let mut table = COMPILED.lock().unwrap_or_else(|e| e.into_inner());
    table.entry(source).or_insert_with(|| RegexBuilder::new(source).ignore_whitespace(true).build().ok().map(Arc::new)).clone()
}

/// `format`, prepared once.
fn prepared(format: &'static Format, meta: &Metadata) -> Option<Arc<Prepared>> {
    let key = std::ptr::from_ref(format) as usize;
    if let Some(hit) = PREPARED.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Some(hit.clone());
    }
    let leading = match format.leading_digits().last() {
        Some(expression) => Some(compiled(expression.as_str())?),
        None => None,
    };
    let national = match format.national_prefix() {
        Some(rule) => with_national_rule(format.format(), rule, meta)?,
        None => format.format().to_owned(),
    };
    let ready = Arc::new(Prepared { format, leading, pattern: OnceLock::new(), national });
    PREPARED.lock().unwrap_or_else(|e| e.into_inner()).insert(key, ready.clone());
    Some(ready)
}

/// The format's first group reference replaced by the national-prefix rule, its `$NP` the
/// country's national prefix and `$FG` that first group (no carrier: `$CC` is dropped).
fn with_national_rule(format: &str, rule: &str, meta: &Metadata) -> Option<String> {
    let first = FIRST_GROUP.captures(format)?.get(1)?.as_str();
    let rule = rule.replace("$NP", meta.national_prefix().unwrap_or(""));
    let rule = rule.replace("$FG", &format!("${first}"));
    let rule = rule.replace("$CC", "");
    Some(FIRST_GROUP.replace(format, rule.as_str()).into_owned())
}

/// The first format whose leading digits and whole pattern fit `national` (a format without
/// leading digits fits any number, as the crate has it). `None`: a format could not be
/// prepared; `Some(None)`: none fits.
fn choose(national: &str, formats: &'static [Format], meta: &Metadata) -> Option<Option<Arc<Prepared>>> {
    for format in formats {
        let ready = prepared(format, meta)?;
        let fits = match &ready.leading {
            None => true,
            Some(leading) => {
                leading.find(national).is_some_and(|m| m.start() == 0)
                    && ready.pattern()?.find(national).is_some_and(|m| m.start() == 0 && m.end() == national.len())
            }
        };
        if fits {
            return Some(Some(ready));
        }
    }
    Some(None)
}

/// `(national, international)` as libphonenumber writes them; `None` for a number with an
/// extension or a carrier code, or one whose format cannot be prepared.
pub(super) fn national_and_international(number: &PhoneNumber) -> Option<(String, String)> {
    if number.extension().is_some() || number.carrier().is_some() {
        return None;
    }
    let code = number.code().value();
    let meta: &'static Metadata = DATABASE.by_code(&code)?.into_iter().next()?;
    let digits = number.national().to_string();
    let national = match choose(&digits, meta.formats(), meta)? {
        Some(ready) => ready.pattern()?.replace(&digits, ready.national.as_str()).into_owned(),
        None => digits.clone(),
    };
    let international_formats = if meta.international_formats().is_empty() { meta.formats() } else { meta.international_formats() };
    let grouped = match choose(&digits, international_formats, meta)? {
        Some(ready) => ready.pattern()?.replace(&digits, ready.international()).into_owned(),
        None => digits.clone(),
    };
    Some((national, format!("+{code} {grouped}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonenumber::Mode;

    #[test]
    fn every_example_number_reads_as_libphonenumber_writes_it() {
        super::super::enlarge_regex_cache();
        let mut compared = 0;
        for code in 1..=999u16 {
            for meta in DATABASE.by_code(&code).unwrap_or_default() {
                let region = meta.id().parse().ok();
                for example in super::super::NUMBER_TYPES.iter().filter_map(|&t| meta.descriptors().get(t)).filter_map(|d| d.example()) {
                    let Ok(number) = phonenumber::parse(region, format!("+{code}{example}")) else { continue };
                    let Some(ours) = national_and_international(&number) else { continue };
                    let theirs = (number.format().mode(Mode::National).to_string(), number.format().mode(Mode::International).to_string());
                    assert_eq!(ours, theirs, "+{code}{example} ({})", meta.id());
                    compared += 1;
                }
            }
        }
        assert!(compared > 1_000, "only {compared} numbers compared");
    }

    #[test]
    fn extensions_are_left_to_the_crate() {
        let number = phonenumber::parse(None, "+14255550100 ext. 12").expect("a number");
        assert_eq!(national_and_international(&number), None);
    }
}
