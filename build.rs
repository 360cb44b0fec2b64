//! Embeds the shipped templates (`templates/**/*.{txt,html,toml}`) into the binary: writes
//! `$OUT_DIR/builtin_templates.rs`, a sorted `&[(relative_path, include_str!(…))]` list that
//! `src/render/templates.rs` includes. Fails the build if a template cannot be listed.
//!
//! Also writes `$OUT_DIR/phone_metadata.bin`: libphonenumber's metadata (the `phonenumber`
//! crate's own, read back through its public API) as postcard-encoded loader records, grouped
//! by country calling code in the crate's order, so that `src/phone/metadata.rs` can compile
//! only the countries a run needs instead of the crate's whole database at start-up.

use std::path::{Path, PathBuf};

use phonenumber::metadata::{DATABASE, Descriptor, Format, Metadata, loader};

fn collect(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        println!("cargo::warning=no templates folder at {}: the built-in template set is empty", dir.display());
        return;
    };
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        let name = entry.file_name().into_string().unwrap_or_else(|n| panic!("template name {n:?} is not UTF-8"));
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let rel = format!("{prefix}{name}");
        if path.is_dir() {
            collect(&path, &format!("{rel}/"), out);
        } else if [".txt", ".html", ".toml"].iter().any(|ext| name.ends_with(ext)) {
            out.push((rel, path));
        }
    }
}

/// `pattern` with each `\d` spelled `[0-9]` (`0-9` inside a bracket class).
///
/// Same matches on the ASCII digits numbers are read as (they are normalised to ASCII before
/// any pattern sees them), but `\d` means every Unicode decimal digit to the `regex` crate:
/// about 60 ranges, which its compiler turns into a UTF-8 automaton at every occurrence. A
/// region's patterns hold hundreds of them; spelled in ASCII they compile several times
/// faster, and the first number of each region in a run pays that compile.
fn ascii_digits(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut class_depth = 0usize;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('d') if class_depth > 0 => out.push_str("0-9"),
                Some('d') => out.push_str("[0-9]"),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            '[' => {
                class_depth += 1;
                out.push(c);
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// A compiled descriptor back as the loader record it was compiled from.
fn descriptor(d: &Descriptor) -> loader::Descriptor {
    loader::Descriptor {
        national_number: Some(ascii_digits(d.national_number().as_str())),
        possible_length: d.possible_length().to_vec(),
        possible_local_length: d.possible_local_length().to_vec(),
        example: d.example().map(str::to_owned),
    }
}

fn format(f: &Format) -> loader::Format {
    loader::Format {
        pattern: Some(ascii_digits(f.pattern().as_str())),
        format: Some(f.format().to_owned()),
        leading_digits: f.leading_digits().iter().map(|r| ascii_digits(r.as_str())).collect(),
        national_prefix_formatting_rule: f.national_prefix().map(str::to_owned),
        national_prefix_optional_when_formatting: f.is_national_prefix_optional(),
        domestic_carrier: f.domestic_carrier().map(str::to_owned),
    }
}

/// Every field `phonenumber::metadata::Database::from` reads, so compiling the record gives
/// the crate's own metadata back.
fn metadata(m: &Metadata) -> loader::Metadata {
    let d = m.descriptors();
    let some = |d: Option<&Descriptor>| d.map(descriptor);
    let owned = |s: Option<&str>| s.map(str::to_owned);
    loader::Metadata {
        general: Some(descriptor(d.general())),
        fixed_line: some(d.fixed_line()),
        mobile: some(d.mobile()),
        toll_free: some(d.toll_free()),
        premium_rate: some(d.premium_rate()),
        shared_cost: some(d.shared_cost()),
        personal_number: some(d.personal_number()),
        voip: some(d.voip()),
        pager: some(d.pager()),
        uan: some(d.uan()),
        emergency: some(d.emergency()),
        voicemail: some(d.voicemail()),
        short_code: some(d.short_code()),
        standard_rate: some(d.standard_rate()),
        carrier: some(d.carrier()),
        no_international: some(d.no_international()),
        id: Some(m.id().to_owned()),
        country_code: Some(m.country_code()),
        international_prefix: m.international_prefix().map(|r| ascii_digits(r.as_str())),
        preferred_international_prefix: owned(m.preferred_international_prefix()),
        national_prefix: owned(m.national_prefix()),
        preferred_extension_prefix: owned(m.preferred_extension_prefix()),
        national_prefix_for_parsing: m.national_prefix_for_parsing().map(|r| ascii_digits(r.as_str())),
        national_prefix_transform_rule: owned(m.national_prefix_transform_rule()),
        formats: m.formats().iter().map(format).collect(),
        international_formats: m.international_formats().iter().map(format).collect(),
        main_country_for_code: m.is_main_country_for_code(),
        leading_digits: m.leading_digits().map(|r| ascii_digits(r.as_str())),
        mobile_number_portable: m.is_mobile_number_portable(),
        defaults: loader::Defaults::default(),
    }
}

/// `[(country code, its regions' records, main region first)]`, by code.
fn phone_metadata(out_dir: &Path) {
    let by_code: Vec<(u16, Vec<loader::Metadata>)> =
        (1..1000u16).filter_map(|code| DATABASE.by_code(&code).map(|metas| (code, metas.into_iter().map(metadata).collect()))).collect();
    let bytes = postcard::to_allocvec(&by_code).unwrap_or_else(|e| panic!("cannot encode the phone metadata: {e}"));
    write_replacing(&out_dir.join("phone_metadata.bin"), &bytes);
}

/// Written beside and renamed over, never rewritten in place: a build folder copied with
/// hard links (a second checkout's warm target/) must not see this checkout's files.
fn write_replacing(out: &Path, bytes: &[u8]) {
    let tmp = out.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", tmp.display()));
    std::fs::rename(&tmp, out).unwrap_or_else(|e| panic!("cannot rename {} to {}: {e}", tmp.display(), out.display()));
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("templates");
    println!("cargo::rerun-if-changed=templates");
    let mut files = Vec::new();
    collect(&root, "", &mut files);
    files.sort();
    let mut code = String::from("&[\n");
    for (rel, path) in files {
        let abs = path.to_str().unwrap_or_else(|| panic!("template path {} is not UTF-8", path.display()));
        code.push_str(&format!("    ({rel:?}, include_str!({abs:?})),\n"));
    }
    code.push_str("]\n");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    write_replacing(&out_dir.join("builtin_templates.rs"), code.as_bytes());
    phone_metadata(&out_dir);
}
