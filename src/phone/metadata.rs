//! libphonenumber's metadata, compiled one region at a time.
//!
//! The `phonenumber` crate's own database compiles every region's patterns at first use
//! (it syntax-checks about 3,000 regular expressions: tens of milliseconds, most of a
//! one-event start-up). `build.rs` writes the same metadata out as the crate's loader
//! records, grouped by country calling code; here the records are decoded once (no pattern
//! is compiled for that) and each region is compiled the first time a dial plan or a number
//! needs it: its rules for reading numbers ([`NumberRules`], two expressions) when a number
//! is read, its [`Layout`] (two more, and each format when first reached) when a number of
//! a country code whose main region it is gets laid out. A run under a US dial plan with
//! US callers compiles the US region only; the other regions of +1 only when a number does
//! not read as a US one.
//!
//! Consumes nothing at run time (the records are in the binary); produces region facts
//! ([`region`], [`has_code`]), reading rules ([`region_rules`], [`code_rules`]) and layouts
//! ([`main_layout`]) living for the rest of the process (at most one of each per region,
//! about 250). The crate's own compilation of each region remains, in the tests only, as
//! the reference they hold these to. Never fails on input: an unknown region or code is
//! `None`.

use std::sync::{LazyLock, OnceLock};

#[cfg(test)]
use phonenumber::Metadata;
#[cfg(test)]
use phonenumber::metadata::Database;
use phonenumber::metadata::loader;

use super::layout::Layout;
use super::rules::NumberRules;

/// `[(country code, its regions' records, main region first)]`, written by `build.rs`.
static RECORDS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/phone_metadata.bin"));

/// One region's record and, once needed, its rules for reading numbers and (a main region's)
/// layout (`None` inside: it did not compile).
struct Region {
    record: loader::Metadata,
    rules: OnceLock<Option<NumberRules>>,
    /// Only for a country code's main region: how its numbers are laid out.
    layout: OnceLock<Option<Layout>>,
    /// The crate's own compilation, the reference the tests hold the rest to.
    #[cfg(test)]
    compiled: OnceLock<Option<Database>>,
}

/// The decoded records: by country code (main region first), and each two-letter region's
/// place, indexed by its letters (no hashing: dial plans look their region up per number).
struct Catalogue {
    /// Indexed by country calling code (below 1,000); empty for a code no region has.
    by_code: Vec<Vec<Region>>,
    /// [`letters`] of a region id (`US`) -> (the id as stored, its country code, its place
    /// in `by_code`).
    regions: Vec<Option<(String, u16, usize)>>,
}

/// The slot of a two-letter upper-case region id.
fn letters(id: &str) -> Option<usize> {
    match id.as_bytes() {
        &[a @ b'A'..=b'Z', b @ b'A'..=b'Z'] => Some(usize::from(a - b'A') * 26 + usize::from(b - b'A')),
        _ => None,
    }
}

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| {
    let by_code: Vec<(u16, Vec<loader::Metadata>)> = postcard::from_bytes(RECORDS).unwrap_or_else(|e| {
        tracing::error!("the built-in phone number metadata does not decode: {e}");
        Vec::new()
    });
    let mut regions = vec![None; 26 * 26];
    for (code, records) in &by_code {
        for (i, id) in records.iter().enumerate().filter_map(|(i, r)| Some((i, r.id.clone()?))) {
            if let Some(slot) = letters(&id).and_then(|l| regions.get_mut(l)) {
                *slot = Some((id, *code, i));
            }
        }
    }
    let mut indexed: Vec<Vec<Region>> = Vec::new();
    for (code, records) in by_code {
        let code = usize::from(code);
        if indexed.len() <= code {
            indexed.resize_with(code + 1, Vec::new);
        }
        indexed[code] = records
            .into_iter()
            .map(|record| Region {
                record,
                rules: OnceLock::new(),
                layout: OnceLock::new(),
                #[cfg(test)]
                compiled: OnceLock::new(),
            })
            .collect();
    }
    Catalogue { by_code: indexed, regions }
});

/// The region `id` (upper-case ISO 3166, `US`) as stored, and its country calling code.
/// Only two-letter regions: the non-geographic entities (`001`) are reached by code.
pub(super) fn region(id: &str) -> Option<(&'static str, u16)> {
    place(id).map(|(id, code, _)| (id.as_str(), *code))
}

fn place(id: &str) -> Option<&'static (String, u16, usize)> {
    CATALOGUE.regions.get(letters(id)?)?.as_ref()
}

/// The regions of country calling code `code`, main region first (empty for an unknown code).
fn regions_of(code: u16) -> &'static [Region] {
    CATALOGUE.by_code.get(usize::from(code)).map_or(&[], Vec::as_slice)
}

/// Whether `code` is a country calling code.
pub(super) fn has_code(code: u16) -> bool {
    !regions_of(code).is_empty()
}

impl Region {
    /// The region's metadata as the crate compiles it (a database of it alone).
    #[cfg(test)]
    fn metadata(&'static self) -> Option<&'static Metadata> {
        self.compiled.get_or_init(|| Database::from(vec![self.record.clone()]).ok()).as_ref()?.iter().next()
    }

    /// The region's rules for reading numbers, compiled on first use (its database is not).
    fn rules(&'static self) -> Option<&'static NumberRules> {
        self.rules
            .get_or_init(|| {
                let rules = NumberRules::new(&self.record);
                if rules.is_none() {
                    tracing::error!("the phone number rules of region {:?} do not compile", self.record.id);
                }
                rules
            })
            .as_ref()
    }
}

/// The rules for reading numbers of region `id` (upper-case).
pub(super) fn region_rules(id: &str) -> Option<&'static NumberRules> {
    let (_, code, i) = place(id)?;
    regions_of(*code).get(*i)?.rules()
}

/// The rules of `code`'s regions, main region first, each compiled when the iteration
/// reaches it.
pub(super) fn code_rules(code: u16) -> impl Iterator<Item = &'static NumberRules> {
    regions_of(code).iter().filter_map(Region::rules)
}

/// The compiled metadata of region `id` (upper-case).
#[cfg(test)]
pub(super) fn compiled_region(id: &str) -> Option<&'static Metadata> {
    let (_, code, i) = place(id)?;
    regions_of(*code).get(*i)?.metadata()
}

/// The loader record of region `id` (upper-case).
#[cfg(test)]
pub(super) fn record(id: &str) -> Option<&'static loader::Metadata> {
    let (_, code, i) = place(id)?;
    Some(&regions_of(*code).get(*i)?.record)
}

/// The compiled metadata of `code`'s regions, main region first, each compiled when the
/// iteration reaches it.
#[cfg(test)]
pub(super) fn compiled_code(code: u16) -> impl Iterator<Item = &'static Metadata> {
    regions_of(code).iter().filter_map(Region::metadata)
}

/// How numbers of `code` are laid out: with its main region's metadata, as libphonenumber
/// does. Compiled on first use.
pub(super) fn main_layout(code: u16) -> Option<&'static Layout> {
    let main = regions_of(code).first()?;
    let rules = main.rules()?;
    main.layout
        .get_or_init(|| {
            let layout = Layout::new(code, &main.record, rules);
            if layout.is_none() {
                tracing::error!("the phone number formats of region {:?} do not compile", main.record.id);
            }
            layout
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonenumber::metadata::DATABASE;

    #[test]
    fn every_code_and_region_of_the_crate_is_here_in_the_same_order() {
        for code in 1..1000u16 {
            let crate_ids = DATABASE.region(&code);
            let ours: Vec<&str> = compiled_code(code).map(Metadata::id).collect();
            assert_eq!(Some(ours).filter(|o| !o.is_empty()), crate_ids, "country code {code}");
            assert_eq!(has_code(code), crate_ids.is_some());
            assert_eq!(main_layout(code).is_some(), crate_ids.is_some());
        }
        for meta in DATABASE.iter().filter(|m| m.id() != "001") {
            assert_eq!(region(meta.id()), Some((meta.id(), meta.country_code())));
        }
    }

    #[test]
    fn compiled_metadata_is_the_crates() {
        for meta in DATABASE.iter().filter(|m| m.id() != "001") {
            let ours = compiled_region(meta.id()).expect("compiles");
            // The crate's types have no equality; their debug form shows every field and
            // every pattern's source (where `build.rs` spells each `\d` as `[0-9]`).
            assert_eq!(format!("{ours:?}"), format!("{meta:?}").replace(r"\\d", "[0-9]"), "{}", meta.id());
        }
    }

    #[test]
    fn unknown_regions_and_codes_are_none() {
        assert_eq!(region("XX"), None);
        assert!(compiled_region("XX").is_none());
        assert!(!has_code(0) && !has_code(999) && compiled_code(0).next().is_none());
        assert!(main_layout(60_000).is_none());
    }
}
