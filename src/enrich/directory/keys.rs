//! Directory values and parties -> normalized lookup keys (spec §6.4 step 4): E.164,
//! extension, SIP address, mail address, trailing digits, objectGUID.
//!
//! The one place that decides what a stored value means, used both when the index is built
//! and when a hashed key is verified at lookup. A value that does not read under the dial
//! plan gives `Err(Unreadable)` and no key: it can never match.

use super::attributes::Role;
use super::{ValueView, guid};
use crate::phone::{self, DialPlan, Parsed, Source};

/// A normalized key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Key {
    /// `+14255550100`.
    E164(String),
    /// `4567` (from `;ext=`, `ipPhone`, an `EUM:` proxy, or a caller id).
    Extension(String),
    /// `kwame.mensah@contoso.com`, lower-case, no scheme.
    Sip(String),
    /// `kwame.mensah@contoso.com`, lower-case.
    Mail(String),
    /// The last `min_suffix_digits` digits of a number.
    Suffix(String),
    Guid(u128),
}

impl Key {
    /// The key as shown to admins (`e164 +14255550100`); GUIDs are never a caller's key.
    pub(super) fn shown(&self) -> Option<String> {
        let (name, value) = match self {
            Key::E164(v) => ("e164", v),
            Key::Extension(v) => ("extension", v),
            Key::Sip(v) => ("sip", v),
            Key::Mail(v) => ("mail", v),
            Key::Suffix(v) => ("trailing digits", v),
            Key::Guid(_) => return None,
        };
        Some(format!("{name} {value}"))
    }
}

/// A value that does not read as its attribute's role says (a number under the dial plan,
/// a SIP address, a GUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unreadable;

/// The keys of one stored value. Empty values and display attributes have none.
pub(super) fn of_value(role: Role, value: &ValueView<'_>, plan: &DialPlan) -> Result<Vec<Key>, Unreadable> {
    match value {
        ValueView::Text(text) => of_text(role, text, plan),
        ValueView::Binary(bytes) if role == Role::ObjectGuid => guid::from_bytes(bytes).map(|g| vec![Key::Guid(g)]).ok_or(Unreadable),
        ValueView::Binary(_) if role == Role::Display => Ok(Vec::new()),
        ValueView::Binary(bytes) => std::str::from_utf8(bytes).map_err(|_| Unreadable).and_then(|text| of_text(role, text, plan)),
    }
}

/// The keys of one stored text value.
pub(super) fn of_text(role: Role, text: &str, plan: &DialPlan) -> Result<Vec<Key>, Unreadable> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    match role {
        Role::Display => Ok(Vec::new()),
        Role::ObjectGuid => guid::from_text(text).map(|g| vec![Key::Guid(g)]).ok_or(Unreadable),
        Role::Mail => mail(text).map(|m| vec![Key::Sip(m.clone()), Key::Mail(m)]),
        Role::Sip => sip(text, plan).map(|s| vec![Key::Sip(s)]),
        Role::Phone(_) => of_number(phone::parse(text, plan, Source::Stored)),
        Role::Proxy => {
            let (kind, address) = text.split_once(':').ok_or(Unreadable)?;
            match kind.trim().to_ascii_lowercase().as_str() {
                "smtp" => mail(address).map(|m| vec![Key::Mail(m)]),
                "sip" => sip(address, plan).map(|s| vec![Key::Sip(s)]),
                // `EUM:4120;phone-context=…` or `EUM:user@host;phone-context=…`.
                "eum" => of_number(phone::parse(address, plan, Source::Stored)),
                _ => Ok(Vec::new()),
            }
        }
    }
}

/// The key of a caller-side SIP address or stored SIP value (`sip:` optional).
pub(super) fn sip(text: &str, plan: &DialPlan) -> Result<String, Unreadable> {
    match phone::parse(text, plan, Source::Stored) {
        Parsed::Sip(sip) => Ok(sip),
        _ => Err(Unreadable),
    }
}

/// The key of a mail address.
pub(super) fn mail(text: &str) -> Result<String, Unreadable> {
    let text = text.trim();
    let (local, domain) = text.split_once('@').ok_or(Unreadable)?;
    if local.is_empty() || domain.is_empty() || text.contains(char::is_whitespace) {
        return Err(Unreadable);
    }
    Ok(text.to_lowercase())
}

/// Keys of a number-like value: its E.164 and a `;ext=` extension, a bare extension, or a
/// SIP address. Written suffix extensions (`x123`) are PBX extensions behind a main number,
/// not internally dialled ones, so they are no key.
fn of_number(parsed: Parsed) -> Result<Vec<Key>, Unreadable> {
    match parsed {
        Parsed::Number(number) => {
            let extension = number.extension.filter(|_| number.uri_extension).map(Key::Extension);
            Ok(std::iter::once(Key::E164(number.e164)).chain(extension).collect())
        }
        Parsed::Extension(extension) => Ok(vec![Key::Extension(extension)]),
        Parsed::Sip(sip) => Ok(vec![Key::Sip(sip)]),
        Parsed::Anonymous | Parsed::Partial(_) | Parsed::Invalid => Err(Unreadable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::PhoneLabel;

    fn plan() -> DialPlan {
        DialPlan::new("US", Some("9"), 4, 7).expect("US")
    }

    fn keys(role: Role, text: &str) -> Result<Vec<Key>, Unreadable> {
        of_text(role, text, &plan())
    }

    const WORK: Role = Role::Phone(PhoneLabel::Work);

    #[test]
    fn numbers_and_extensions() {
        assert_eq!(keys(WORK, "+1 (425) 555-0101"), Ok(vec![Key::E164("+14255550101".into())]));
        assert_eq!(keys(WORK, "tel:+14255550110;ext=4567"), Ok(vec![Key::E164("+14255550110".into()), Key::Extension("4567".into())]));
        assert_eq!(keys(WORK, "289-555-0163 x123"), Ok(vec![Key::E164("+12895550163".into())]));
        assert_eq!(keys(WORK, "4120"), Ok(vec![Key::Extension("4120".into())]));
        assert_eq!(keys(WORK, "tel:+14255550131"), Ok(vec![Key::E164("+14255550131".into())]));
        assert_eq!(keys(Role::Phone(PhoneLabel::Mobile), "07700 900456"), Err(Unreadable));
        assert_eq!(keys(WORK, "   "), Ok(vec![]));
    }

    #[test]
    fn proxy_addresses_by_type() {
        assert_eq!(keys(Role::Proxy, "EUM:4120;phone-context=ContosoDP.contoso.com"), Ok(vec![Key::Extension("4120".into())]));
        assert_eq!(
            keys(Role::Proxy, "EUM:Hannah.Whitaker@contoso.com;phone-context=ContosoDP.contoso.com"),
            Ok(vec![Key::Sip("hannah.whitaker@contoso.com".into())])
        );
        assert_eq!(keys(Role::Proxy, "SIP:hannah.whitaker@contoso.com"), Ok(vec![Key::Sip("hannah.whitaker@contoso.com".into())]));
        assert_eq!(keys(Role::Proxy, "smtp:Hannah.Whitaker@contoso.com"), Ok(vec![Key::Mail("hannah.whitaker@contoso.com".into())]));
        assert_eq!(keys(Role::Proxy, "X500:/o=Contoso/ou=Exchange"), Ok(vec![]));
        assert_eq!(keys(Role::Proxy, "no type"), Err(Unreadable));
    }

    #[test]
    fn sip_mail_and_guid() {
        assert_eq!(keys(Role::Sip, "sip:Kwame.Mensah@contoso.com"), Ok(vec![Key::Sip("kwame.mensah@contoso.com".into())]));
        assert_eq!(keys(Role::Sip, "+14255550102"), Err(Unreadable));
        assert_eq!(
            keys(Role::Mail, "Olivia.Chen@contoso.com"),
            Ok(vec![Key::Sip("olivia.chen@contoso.com".into()), Key::Mail("olivia.chen@contoso.com".into())])
        );
        assert_eq!(keys(Role::Mail, "not an address"), Err(Unreadable));
        assert!(matches!(keys(Role::ObjectGuid, "5e7bf87a-c77b-4f0f-820f-5f25609c7f58").as_deref(), Ok([Key::Guid(_)])));
        assert_eq!(of_value(Role::ObjectGuid, &ValueView::Binary(vec![1; 15].into()), &plan()), Err(Unreadable));
        assert_eq!(of_value(Role::Display, &ValueView::Binary(vec![0xff].into()), &plan()), Ok(vec![]));
    }
}
