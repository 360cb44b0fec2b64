//! Reading a configuration file's TOML into a [`RawConfig`] while collecting *every* problem
//! instead of stopping at the first: unknown sections and keys (each with its line and the
//! nearest known name), and values of the wrong type (each with its line). A key with a
//! problem is left out, so the rest still deserializes and is validated too; a TOML syntax
//! error is the one problem that stops reading.
//!
//! Consumes the file's text; produces the raw configuration and the problems found. The
//! known keys are read from the `Raw*` structs themselves (their serde field lists), so a key
//! added there is known here without another list to keep in step. Never panics.

use serde::Deserialize;
use serde::de::{self, Visitor};
use toml::de::{DeTable, DeValue};

use super::{ConfigProblem, RawConfig, RawDelivery, RawDialPlan, RawDirectory, RawMail, RawServer, RawSpool, RawTemplates, line_of};

/// Reads `text`; `Err` is a syntax error (nothing else can be checked then).
pub(super) fn read(text: &str) -> Result<(RawConfig, Vec<ConfigProblem>), ConfigProblem> {
    let mut doc = DeTable::parse(text)
        .map_err(|e| ConfigProblem { line: e.span().map(|s| line_of(text, s.start)), message: e.message().to_owned() })?;
    let mut problems = Vec::new();
    remove_unknown_keys(doc.get_mut(), text, &mut problems);
    let raw = deserialize_collecting(doc, text, &mut problems);
    Ok((raw, problems))
}

/// The keys a section may hold, or `None` for a name that is not a section.
fn section_keys(section: &str) -> Option<&'static [&'static str]> {
    Some(match section {
        "dialplan" => fields_of::<RawDialPlan>(),
        "directory" => fields_of::<RawDirectory>(),
        "contacts" => fields_of::<crate::enrich::contacts::settings::RawContacts>(),
        "templates" => fields_of::<RawTemplates>(),
        "mail" => fields_of::<RawMail>(),
        "delivery" => fields_of::<RawDelivery>(),
        "spool" => fields_of::<RawSpool>(),
        "server" => fields_of::<RawServer>(),
        "digest" => fields_of::<crate::spool::digest::RawDigest>(),
        _ => return None,
    })
}

/// Drops (and reports) every top-level key that is not a section and every key of a section
/// that the section does not have.
fn remove_unknown_keys(doc: &mut DeTable<'_>, text: &str, problems: &mut Vec<ConfigProblem>) {
    let sections = fields_of::<RawConfig>();
    let mut unknown = Vec::new();
    for (key, value) in doc.iter_mut() {
        let name = key.get_ref().as_ref();
        let Some(known) = section_keys(name) else {
            unknown.push(key.get_ref().to_string());
            let message = match value.get_ref() {
                DeValue::Table(_) => format!("unknown section [{name}]{}", did_you_mean(name, sections, "[", "]")),
                _ => format!("unknown key `{name}` outside any section{}", home_of(name).unwrap_or_default()),
            };
            problems.push(ConfigProblem { line: Some(line_of(text, key.span().start)), message });
            continue;
        };
        let DeValue::Table(table) = value.get_mut() else {
            continue;
        };
        let mut strays = Vec::new();
        for key in table.keys().filter(|k| !known.contains(&k.get_ref().as_ref())) {
            let stray = key.get_ref().as_ref();
            let hint = Some(did_you_mean(stray, known, "`", "`")).filter(|h| !h.is_empty()).or_else(|| home_of(stray)).unwrap_or_default();
            let message = format!("unknown key `{stray}` in [{name}]{hint}");
            problems.push(ConfigProblem { line: Some(line_of(text, key.span().start)), message });
            strays.push(stray.to_owned());
        }
        for stray in strays {
            table.remove(stray.as_str());
        }
    }
    for name in unknown {
        doc.remove(name.as_str());
    }
}

/// `; did you mean `region`?` for the known name nearest to `word` (a few edits away, or the
/// same but for case), else nothing.
fn did_you_mean(word: &str, known: &[&str], open: &str, close: &str) -> String {
    let lower = word.to_ascii_lowercase();
    let budget = (word.chars().count() / 3).max(1);
    known
        .iter()
        .map(|k| (strsim::osa_distance(&lower, k), k))
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| format!("; did you mean {open}{k}{close}?"))
        .unwrap_or_default()
}

/// `; it belongs in [mail]` when `key` is a key of some section.
fn home_of(key: &str) -> Option<String> {
    let sections = fields_of::<RawConfig>();
    let home = sections.iter().find(|s| section_keys(s).is_some_and(|keys| keys.contains(&key)))?;
    Some(format!("; it belongs in [{home}]"))
}

/// Deserializes the document; a value of the wrong type is reported with its line and
/// removed, and the rest is tried again, until it deserializes.
fn deserialize_collecting(mut doc: toml::Spanned<DeTable<'_>>, text: &str, problems: &mut Vec<ConfigProblem>) -> RawConfig {
    // Each round removes one key, so this many rounds always suffice.
    let rounds = count_entries(doc.get_ref()) + 1;
    for _ in 0..rounds {
        let error = match RawConfig::deserialize(toml::de::Deserializer::from(doc.clone())) {
            Ok(raw) => return raw,
            Err(error) => error,
        };
        let offset = error.span().map(|s| s.start);
        let removed = offset.and_then(|at| remove_entry_at(doc.get_mut(), at, ""));
        match removed {
            Some(path) => {
                problems.push(ConfigProblem { line: offset.map(|at| line_of(text, at)), message: format!("{path}: {}", error.message()) })
            }
            None => {
                problems.push(ConfigProblem { line: offset.map(|at| line_of(text, at)), message: error.message().to_owned() });
                break;
            }
        }
    }
    RawConfig::default()
}

fn count_entries(table: &DeTable<'_>) -> usize {
    table
        .values()
        .map(|v| match v.get_ref() {
            DeValue::Table(inner) => 1 + count_entries(inner),
            _ => 1,
        })
        .sum()
}

/// Removes the innermost entry whose key or value covers byte `offset`; returns its dotted
/// path (`delivery.pool_size`).
fn remove_entry_at(table: &mut DeTable<'_>, offset: usize, prefix: &str) -> Option<String> {
    let mut hit = None;
    for (key, value) in table.iter_mut() {
        let path = if prefix.is_empty() { key.get_ref().to_string() } else { format!("{prefix}.{}", key.get_ref()) };
        if let DeValue::Table(inner) = value.get_mut()
            && let Some(found) = remove_entry_at(inner, offset, &path)
        {
            return Some(found);
        }
        if key.span().contains(&offset) || value.span().contains(&offset) {
            hit = Some((key.get_ref().to_string(), path));
        }
    }
    let (key, path) = hit?;
    table.remove(key.as_str());
    Some(path)
}

/// The field names of a `#[derive(Deserialize)]` struct, as serde hands them to a
/// deserializer (the derive passes its field list to `deserialize_struct`).
fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields = None;
    let _ = T::deserialize(FieldNames(&mut fields));
    fields.unwrap_or(&[])
}

/// A deserializer that only records the field list it is asked for.
struct FieldNames<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("field names recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<(Option<usize>, String)> {
        let (_, problems) = read(text).expect("valid TOML syntax");
        let mut list: Vec<_> = problems.into_iter().map(|p| (p.line, p.message)).collect();
        list.sort();
        list
    }

    #[test]
    fn every_section_has_its_keys() {
        for section in fields_of::<RawConfig>() {
            let keys = section_keys(section).unwrap_or_else(|| panic!("[{section}] has no key list"));
            assert!(!keys.is_empty(), "[{section}]");
        }
        assert!(fields_of::<RawDialPlan>().contains(&"region"));
    }

    #[test]
    fn unknown_keys_are_all_reported_with_the_nearest_name() {
        let text = "[dialplan]\nregoin = \"US\"\n[mail]\nform = \"a@b.c\"\n[delivry]\nurl = \"x\"\n[spool]\nfrom = \"x\"\nzzz = 1\n";
        assert_eq!(
            problems(text),
            vec![
                (Some(2), "unknown key `regoin` in [dialplan]; did you mean `region`?".to_owned()),
                (Some(4), "unknown key `form` in [mail]; did you mean `from`?".to_owned()),
                (Some(5), "unknown section [delivry]; did you mean [delivery]?".to_owned()),
                (Some(8), "unknown key `from` in [spool]; it belongs in [mail]".to_owned()),
                (Some(9), "unknown key `zzz` in [spool]".to_owned()),
            ]
        );
    }

    #[test]
    fn wrong_types_are_all_reported_and_the_rest_is_kept() {
        let text = "[delivery]\npool_size = \"four\"\ndir = \"out\"\n[spool]\nconcurrency = -1\n[dialplan]\nregion = 5\n";
        let (raw, found) = read(text).unwrap();
        let lines: Vec<_> = found.iter().map(|p| (p.line, p.message.split(':').next().unwrap().to_owned())).collect();
        assert_eq!(lines.len(), 3, "{found:?}");
        for expected in [(Some(2), "delivery.pool_size"), (Some(5), "spool.concurrency"), (Some(7), "dialplan.region")] {
            assert!(lines.contains(&(expected.0, expected.1.to_owned())), "{expected:?} in {found:?}");
        }
        assert_eq!(raw.delivery.dir, Some("out".into()), "the good key next to a bad one is kept");
    }

    #[test]
    fn a_syntax_error_stops_with_its_line() {
        let Err(problem) = read("[mail]\nfrom = \n") else { panic!("syntax error accepted") };
        assert_eq!(problem.line, Some(2));
    }
}
