//! libphonenumber's metadata, compiled one country calling code at a time.
//!
//! The `phonenumber` crate's own database compiles every region's patterns at first use
//! (it syntax-checks about 3,000 regular expressions: tens of milliseconds, most of a
//! one-event start-up). `build.rs` writes the same metadata out as the crate's loader
//! records, grouped by country calling code; here the records are decoded once (no pattern
//! is compiled for that) and a country code's regions are compiled into a database of their
//! own the first time a number or a dial plan of that code needs them. A run under a US
//! dial plan with US callers compiles the North American regions only.
//!
//! Consumes nothing at run time (the records are in the binary); produces region facts
//! ([`region`], [`has_code`]) and compiled metadata ([`compiled_region`], [`compiled_code`])
//! living for the rest of the process (at most one database per country code, about 250).
//! Never fails on input: an unknown region or code is `None`.

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};

use phonenumber::Metadata;
use phonenumber::metadata::{Database, loader};

/// `[(country code, its regions' records, main region first)]`, written by `build.rs`.
static RECORDS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/phone_metadata.bin"));

/// How many compiled regular expressions of one country code's metadata stay compiled.
///
/// The expressions are compiled on first use into an LRU cache shared by the code's
/// regions, sized 100 by the crate; validating and formatting numbers of one country
/// already cycles through more than that, so every new number would recompile a dozen of
/// them. Each compiled expression is a few KiB and only used ones are compiled.
const REGEX_CACHE_SIZE: usize = 1_024;

/// The decoded records: by country code, and each region's code.
struct Catalogue {
    by_code: HashMap<u16, Vec<loader::Metadata>>,
    /// Region id (`US`) -> (the id as stored, its country code).
    regions: HashMap<String, (String, u16)>,
}

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| {
    let by_code: Vec<(u16, Vec<loader::Metadata>)> = postcard::from_bytes(RECORDS).unwrap_or_else(|e| {
        tracing::error!("the built-in phone number metadata does not decode: {e}");
        Vec::new()
    });
    let regions = by_code
        .iter()
        .flat_map(|(code, metas)| metas.iter().filter_map(move |m| m.id.clone().map(|id| (id, *code))))
        .map(|(id, code)| (id.clone(), (id, code)))
        .collect();
    Catalogue { by_code: by_code.into_iter().collect(), regions }
});

/// One compiled database per country code (`None`: no such code, or it did not compile).
static COMPILED: [OnceLock<Option<Database>>; 1000] = [const { OnceLock::new() }; 1000];

/// The region `id` (upper-case ISO 3166, `US`) as stored, and its country calling code.
pub(super) fn region(id: &str) -> Option<(&'static str, u16)> {
    CATALOGUE.regions.get(id).map(|(id, code)| (id.as_str(), *code))
}

/// Whether `code` is a country calling code.
pub(super) fn has_code(code: u16) -> bool {
    CATALOGUE.by_code.contains_key(&code)
}

/// The compiled database of `code`'s regions, compiled on first use.
fn database(code: u16) -> Option<&'static Database> {
    let slot = COMPILED.get(usize::from(code))?;
    slot.get_or_init(|| {
        let records = CATALOGUE.by_code.get(&code)?.clone();
        match Database::from(records) {
            Ok(database) => {
                *database.cache().lock().unwrap_or_else(|e| e.into_inner()) = regex_cache::RegexCache::new(REGEX_CACHE_SIZE);
                Some(database)
            }
            Err(e) => {
                tracing::error!("the phone number metadata of country code {code} does not compile: {e}");
                None
            }
        }
    })
    .as_ref()
}

/// The compiled metadata of region `id` (upper-case).
pub(super) fn compiled_region(id: &str) -> Option<&'static Metadata> {
    let (_, code) = region(id)?;
    database(code)?.by_id(id)
}

/// The compiled database of `code` and its regions' metadata, main region first.
pub(super) fn compiled_code(code: u16) -> Option<(&'static Database, Vec<&'static Metadata>)> {
    let database = database(code)?;
    Some((database, database.by_code(&code)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonenumber::metadata::DATABASE;

    #[test]
    fn every_code_and_region_of_the_crate_is_here_in_the_same_order() {
        for code in 1..1000u16 {
            let crate_ids = DATABASE.region(&code);
            let ours = compiled_code(code).map(|(_, metas)| metas.iter().map(|m| m.id()).collect::<Vec<_>>());
            assert_eq!(ours, crate_ids, "country code {code}");
            assert_eq!(has_code(code), crate_ids.is_some());
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
            // every pattern's source.
            assert_eq!(format!("{ours:?}"), format!("{meta:?}"), "{}", meta.id());
        }
    }

    #[test]
    fn unknown_regions_and_codes_are_none() {
        assert_eq!(region("XX"), None);
        assert!(compiled_region("XX").is_none());
        assert!(!has_code(0) && !has_code(999) && compiled_code(0).is_none());
        assert!(compiled_code(60_000).is_none());
    }
}
