//! Which directory attributes mean what: the attribute map shared by every directory source
//! (file and LDAP), with Active Directory / Exchange / Lync defaults (spec §6.4, §7).
//!
//! Consumes attribute names as sources spell them (case-insensitive); produces a small
//! attribute id and its [`Role`]. The order of the map is the precedence used when one person
//! matches through several attributes. Holds configuration only; never fails.

use std::collections::HashSet;

use crate::event::PhoneLabel;

/// What an attribute's values are used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A phone number or extension; a match through it carries this label.
    Phone(PhoneLabel),
    /// A SIP address (`sip:user@host`), e.g. `msRTCSIP-PrimaryUserAddress`.
    Sip,
    /// The SMTP address: finds recipients; also a SIP identity (Lync SIP addresses follow mail).
    Mail,
    /// `proxyAddresses`: `SMTP:` is a mail address, `SIP:` a SIP address, `EUM:` an extension
    /// or SIP address (its `;phone-context=` ignored); other types are kept, not indexed.
    Proxy,
    /// `objectGUID` (16 raw bytes or the string form): finds recipients named by GUID.
    ObjectGuid,
    /// Shown (`person`, `person.attributes`), never matched.
    Display,
}

impl Role {
    /// The label a match through this role carries: Exchange labels extension, SIP and EUM
    /// hits as business phone (`work`).
    pub fn label(self) -> Option<PhoneLabel> {
        match self {
            Role::Phone(label) => Some(label),
            Role::Sip | Role::Mail | Role::Proxy => Some(PhoneLabel::Work),
            Role::ObjectGuid | Role::Display => None,
        }
    }
}

/// One attribute: its LDAP name (the spelling shown in `person.attributes` and
/// `matched_attribute`) and its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeSpec {
    pub name: String,
    pub role: Role,
}

/// The attributes a directory source fetches and the index keeps, in precedence order.
///
/// Precedence (first wins when one person matches through several attributes of the same
/// lookup step): SIP identities, then the person's primary single-valued numbers as shown in
/// the address book (`telephoneNumber`, `mobile`, `homePhone`), then the UM/Lync line
/// attributes (`ipPhone`, `msRTCSIP-Line`, `msExchUMCallingLineIds`), then fax and pager,
/// then the multi-valued `other*` attributes. So Kwame Mensah, whose number is both his
/// `telephoneNumber` and his `msRTCSIP-Line`, matches via `telephoneNumber` (work), and an
/// extension held by `proxyAddresses` (EUM), `ipPhone` and `msRTCSIP-Line` matches via
/// `proxyAddresses`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeMap {
    specs: Vec<AttributeSpec>,
    /// The ids of the names of each length (index: the length in bytes), for [`Self::id`].
    by_length: Vec<Vec<u8>>,
}

impl AttributeMap {
    /// The most attributes a map can hold (ids are one byte).
    pub const MAX: usize = 255;

    /// A map from specs in precedence order. A name given twice (any case) keeps its first
    /// spec; specs past [`AttributeMap::MAX`] are ignored.
    pub fn new(specs: impl IntoIterator<Item = AttributeSpec>) -> AttributeMap {
        let mut map = AttributeMap { specs: Vec::new(), by_length: Vec::new() };
        let mut seen = HashSet::new();
        for spec in specs {
            let lower = spec.name.to_ascii_lowercase();
            if map.specs.len() < Self::MAX && !seen.contains(&lower) {
                let id = u8::try_from(map.specs.len()).expect("at most MAX specs");
                if map.by_length.len() <= lower.len() {
                    map.by_length.resize_with(lower.len() + 1, Vec::new);
                }
                map.by_length[lower.len()].push(id);
                seen.insert(lower);
                map.specs.push(spec);
            }
        }
        map
    }

    /// The Active Directory defaults: Exchange UM, Lync and the address-book attributes.
    pub fn active_directory() -> AttributeMap {
        use PhoneLabel::{Fax, Home, Mobile, Pager, Work};
        let specs = [
            ("msRTCSIP-PrimaryUserAddress", Role::Sip),
            ("proxyAddresses", Role::Proxy),
            ("mail", Role::Mail),
            ("telephoneNumber", Role::Phone(Work)),
            ("mobile", Role::Phone(Mobile)),
            ("homePhone", Role::Phone(Home)),
            ("ipPhone", Role::Phone(Work)),
            ("msRTCSIP-Line", Role::Phone(Work)),
            ("msExchUMCallingLineIds", Role::Phone(Work)),
            ("facsimileTelephoneNumber", Role::Phone(Fax)),
            ("pager", Role::Phone(Pager)),
            ("otherTelephone", Role::Phone(Work)),
            ("otherMobile", Role::Phone(Mobile)),
            ("otherHomePhone", Role::Phone(Home)),
            ("otherFacsimileTelephoneNumber", Role::Phone(Fax)),
            ("otherPager", Role::Phone(Pager)),
            ("objectGUID", Role::ObjectGuid),
            ("displayName", Role::Display),
            ("givenName", Role::Display),
            ("sn", Role::Display),
            ("title", Role::Display),
            ("department", Role::Display),
            ("company", Role::Display),
            ("physicalDeliveryOfficeName", Role::Display),
            ("manager", Role::Display),
            ("preferredLanguage", Role::Display),
        ];
        AttributeMap::new(specs.into_iter().map(|(name, role)| AttributeSpec { name: name.to_owned(), role }))
    }

    /// Every attribute name, in precedence order (what an LDAP search should request).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.specs.iter().map(|s| s.name.as_str())
    }

    /// Every spec, in precedence order.
    pub fn specs(&self) -> &[AttributeSpec] {
        &self.specs
    }

    /// The id of an attribute name, any case.
    pub(super) fn id(&self, name: &str) -> Option<u8> {
        // This runs for every attribute of every entry loaded: the few names of the same
        // length are compared, without hashing or lower-casing (names are ASCII; any other
        // byte compares as itself, as the map's lower-cased keys do).
        let same_length = self.by_length.get(name.len())?;
        same_length.iter().copied().find(|&id| self.specs[usize::from(id)].name.eq_ignore_ascii_case(name))
    }

    /// The spec of an id handed out by [`AttributeMap::id`].
    pub(super) fn spec(&self, id: u8) -> &AttributeSpec {
        &self.specs[usize::from(id)]
    }

    /// Approximate heap use of the map itself.
    pub(super) fn heap_bytes(&self) -> usize {
        self.specs.iter().map(|s| 2 * s.name.len() + std::mem::size_of::<AttributeSpec>() + 24).sum()
    }
}

impl Default for AttributeMap {
    fn default() -> Self {
        AttributeMap::active_directory()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_first_spec_wins() {
        let map = AttributeMap::new([
            AttributeSpec { name: "mobile".into(), role: Role::Phone(PhoneLabel::Mobile) },
            AttributeSpec { name: "MOBILE".into(), role: Role::Display },
        ]);
        assert_eq!(map.specs().len(), 1);
        assert_eq!(map.id("Mobile"), Some(0));
        assert_eq!(map.spec(0).role, Role::Phone(PhoneLabel::Mobile));
        assert_eq!(map.id("pager"), None);
    }

    #[test]
    fn active_directory_defaults() {
        let map = AttributeMap::default();
        let role = |name| map.id(name).map(|id| map.spec(id).role);
        assert_eq!(role("otherMobile"), Some(Role::Phone(PhoneLabel::Mobile)));
        assert_eq!(role("msexchumcallinglineids"), Some(Role::Phone(PhoneLabel::Work)));
        assert_eq!(role("otherFacsimileTelephoneNumber"), Some(Role::Phone(PhoneLabel::Fax)));
        assert_eq!(role("otherPager"), Some(Role::Phone(PhoneLabel::Pager)));
        assert_eq!(role("objectGUID"), Some(Role::ObjectGuid));
        assert_eq!(role("objectClass"), None);
        assert!(map.id("telephoneNumber") < map.id("msRTCSIP-Line"));
        assert!(map.id("msRTCSIP-PrimaryUserAddress") < map.id("mail"));
        assert_eq!(Role::Proxy.label(), Some(PhoneLabel::Work));
        assert_eq!(Role::Display.label(), None);
    }
}
