//! Compact storage of the attributes the index keeps for each person, and the [`Person`]
//! built from them on a hit.
//!
//! One person is one string holding every kept value back to back plus one `u32` per value
//! (attribute id in the top byte, end offset in the low 24 bits): two allocations per person
//! instead of a map of strings. Never fails; a person whose values pass 16 MiB keeps the
//! values that fit (the caller warns).

use indexmap::IndexMap;

use super::attributes::{AttributeMap, Role};
use crate::event::Person;

/// Bytes of values one person can hold (24-bit offsets).
const MAX_VALUE_BYTES: usize = (1 << 24) - 1;

/// The kept values of one person.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct StoredPerson {
    values: Box<str>,
    fields: Box<[u32]>,
}

impl StoredPerson {
    /// Packs `(attribute id, value)` pairs; returns the person and whether every value fit.
    pub(super) fn pack(values: &[(u8, impl AsRef<str>)]) -> (StoredPerson, bool) {
        let mut text = String::with_capacity(values.iter().map(|(_, v)| v.as_ref().len()).sum::<usize>().min(MAX_VALUE_BYTES));
        let mut fields = Vec::with_capacity(values.len());
        let mut complete = true;
        for (attr, value) in values {
            let value = value.as_ref();
            if text.len() + value.len() > MAX_VALUE_BYTES {
                complete = false;
                continue;
            }
            text.push_str(value);
            let end = u32::try_from(text.len()).expect("below 2^24");
            fields.push(u32::from(*attr) << 24 | end);
        }
        (StoredPerson { values: text.into_boxed_str(), fields: fields.into_boxed_slice() }, complete)
    }

    /// `(attribute id, value)` in the order they were packed.
    pub(super) fn values(&self) -> impl Iterator<Item = (u8, &str)> {
        let ends = self.fields.iter().map(|f| (f & 0x00FF_FFFF) as usize);
        let starts = std::iter::once(0).chain(ends.clone());
        self.fields.iter().zip(starts.zip(ends)).map(|(f, (start, end))| ((f >> 24) as u8, &self.values[start..end]))
    }

    /// The values of one attribute.
    pub(super) fn values_of(&self, attr: u8) -> impl Iterator<Item = &str> {
        self.values().filter(move |(a, _)| *a == attr).map(|(_, v)| v)
    }

    /// Whether every offset is in order, in range and on a character boundary, and every
    /// attribute id below `attributes` (a person read back from a cache file is checked so).
    pub(super) fn is_sound(&self, attributes: usize) -> bool {
        let mut start = 0;
        self.fields.iter().all(|f| {
            let (attr, end) = ((f >> 24) as usize, (f & 0x00FF_FFFF) as usize);
            let sound = attr < attributes && start <= end && self.values.is_char_boundary(end);
            start = end;
            sound
        })
    }

    /// Heap bytes held (values and offsets).
    pub(super) fn heap_bytes(&self) -> usize {
        self.values.len() + 4 * self.fields.len()
    }

    /// The person as templates see it: the display fields, the SIP address without scheme,
    /// and every kept attribute under the map's spelling, in the map's order.
    pub(super) fn person(&self, map: &AttributeMap) -> Person {
        self.build(map, true)
    }

    /// [`Self::person`] without `attributes` (left empty): a recipient is completed from
    /// four fields, and copying every attribute was a tenth of a missed call's cost.
    pub(super) fn fields(&self, map: &AttributeMap) -> Person {
        self.build(map, false)
    }

    fn build(&self, map: &AttributeMap, with_attributes: bool) -> Person {
        let mut person = Person::default();
        let mut attributes: IndexMap<String, Vec<String>> = IndexMap::new();
        let mut primary_smtp = None;
        let mut proxy_sip = None;
        // Attribute-map order, not source order: the same person reads the same from any source.
        let mut values: Vec<(u8, &str)> = self.values().collect();
        values.sort_by_key(|&(attr, _)| attr);
        for (attr, value) in values {
            let spec = map.spec(attr);
            if with_attributes {
                attributes.entry(spec.name.clone()).or_default().push(value.to_owned());
            }
            let first = |slot: &mut Option<String>, v: &str| {
                if slot.is_none() {
                    *slot = Some(v.to_owned());
                }
            };
            match spec.role {
                Role::Mail => first(&mut person.mail, value),
                Role::Sip => first(&mut person.sip, strip_prefix_ci(value, "sip:").unwrap_or(value)),
                Role::Proxy => {
                    if let Some(smtp) = value.strip_prefix("SMTP:") {
                        first(&mut primary_smtp, smtp);
                    } else if let Some(sip) = strip_prefix_ci(value, "sip:") {
                        first(&mut proxy_sip, sip);
                    }
                }
                Role::Display => {
                    if let Some(slot) = display_slot(&mut person, &spec.name) {
                        first(slot, value);
                    }
                }
                Role::Phone(_) | Role::ObjectGuid => {}
            }
        }
        person.mail = person.mail.or(primary_smtp);
        person.sip = person.sip.or(proxy_sip).map(|s| s.to_lowercase());
        person.attributes = attributes;
        person
    }
}

/// `value` without `prefix`, compared case-insensitively.
pub(super) fn strip_prefix_ci<'v>(value: &'v str, prefix: &str) -> Option<&'v str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &value[prefix.len()..])
}

/// The [`Person`] field a display attribute fills (names compared without case).
fn display_slot<'p>(person: &'p mut Person, attribute: &str) -> Option<&'p mut Option<String>> {
    let is = |name: &str| attribute.eq_ignore_ascii_case(name);
    Some(if is("displayName") {
        &mut person.display_name
    } else if is("givenName") {
        &mut person.given_name
    } else if is("sn") {
        &mut person.surname
    } else if is("title") {
        &mut person.title
    } else if is("department") {
        &mut person.department
    } else if is("company") {
        &mut person.company
    } else if is("physicalDeliveryOfficeName") {
        &mut person.office
    } else if is("preferredLanguage") {
        &mut person.preferred_language
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks_in_order() {
        let (p, complete) = StoredPerson::pack(&[(3, "+1 425"), (0, "sip:a@b"), (3, ""), (3, "x")]);
        assert!(complete);
        assert_eq!(p.values().collect::<Vec<_>>(), [(3, "+1 425"), (0, "sip:a@b"), (3, ""), (3, "x")]);
        assert_eq!(p.values_of(3).collect::<Vec<_>>(), ["+1 425", "", "x"]);
        assert_eq!(p.heap_bytes(), 14 + 16);
    }

    #[test]
    fn person_fields_from_the_map() {
        let map = AttributeMap::default();
        let id = |name| map.id(name).expect("in the default map");
        let (p, _) = StoredPerson::pack(&[
            (id("displayName"), "Kwame Mensah"),
            (id("proxyAddresses"), "smtp:old@contoso.com"),
            (id("proxyAddresses"), "SMTP:kwame.mensah@contoso.com"),
            (id("proxyAddresses"), "SIP:Kwame.Mensah@contoso.com"),
            (id("telephoneNumber"), "425.555.0102"),
            (id("physicalDeliveryOfficeName"), "Building 4"),
        ]);
        let person = p.person(&map);
        assert_eq!(person.display_name.as_deref(), Some("Kwame Mensah"));
        assert_eq!(person.mail.as_deref(), Some("kwame.mensah@contoso.com"));
        assert_eq!(person.sip.as_deref(), Some("kwame.mensah@contoso.com"));
        assert_eq!(person.office.as_deref(), Some("Building 4"));
        assert_eq!(person.attributes["proxyAddresses"].len(), 3);
        assert_eq!(person.attributes["telephoneNumber"], ["425.555.0102"]);
    }
}
