//! One search result entry on the wire (BER) -> the directory's [`Entry`]: the DN and every
//! value in the order the server sent them; UTF-8 values as text, others as bytes (AD's
//! `objectGUID`), exactly as the LDIF reader delivers them.
//!
//! Replaces `ldap3::SearchEntry::construct`, which panics on anything that is not a
//! well-formed entry and loses the attribute order. This decoder never panics: a malformed
//! entry is `None`.

use ldap3::ResultEntry;
use ldap3::asn1::{PL, StructureTag, TagClass};

use crate::enrich::directory::{Entry, Value};

/// SearchResultEntry ::= [APPLICATION 4] (RFC 4511 §4.5.2).
const SEARCH_RESULT_ENTRY: u64 = 4;

/// Decodes a search result entry; `None` for referrals, intermediates or malformed data.
pub(crate) fn decode(entry: ResultEntry) -> Option<Entry> {
    decode_tag(entry.0)
}

fn decode_tag(tag: StructureTag) -> Option<Entry> {
    if tag.class != TagClass::Application || tag.id != SEARCH_RESULT_ENTRY {
        return None;
    }
    let mut parts = constructed(tag)?.into_iter();
    let mut entry = Entry::new(String::from_utf8(primitive(parts.next()?)?).ok()?);
    for attribute in constructed(parts.next()?)? {
        let mut pair = constructed(attribute)?.into_iter();
        let name = String::from_utf8(primitive(pair.next()?)?).ok()?;
        for value in constructed(pair.next()?)? {
            let value = match String::from_utf8(primitive(value)?) {
                Ok(text) => Value::Text(text),
                Err(e) => Value::Binary(e.into_bytes()),
            };
            entry.attributes.push((name.clone(), value));
        }
    }
    Some(entry)
}

fn constructed(tag: StructureTag) -> Option<Vec<StructureTag>> {
    match tag.payload {
        PL::C(inner) => Some(inner),
        PL::P(_) => None,
    }
}

fn primitive(tag: StructureTag) -> Option<Vec<u8>> {
    match tag.payload {
        PL::P(bytes) => Some(bytes),
        PL::C(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prim(bytes: &[u8]) -> StructureTag {
        StructureTag { class: TagClass::Universal, id: 4, payload: PL::P(bytes.to_vec()) }
    }
    fn cons(id: u64, inner: Vec<StructureTag>) -> StructureTag {
        StructureTag { class: TagClass::Universal, id, payload: PL::C(inner) }
    }
    fn attr(name: &str, values: &[&[u8]]) -> StructureTag {
        cons(16, vec![prim(name.as_bytes()), cons(17, values.iter().map(|v| prim(v)).collect())])
    }
    fn entry(dn: &str, attrs: Vec<StructureTag>) -> StructureTag {
        StructureTag { class: TagClass::Application, id: 4, payload: PL::C(vec![prim(dn.as_bytes()), cons(16, attrs)]) }
    }

    #[test]
    fn keeps_wire_order_text_and_binary_values() {
        let guid = [0x7a, 0xf8, 0x7b, 0x5e, 0x7b, 0xc7, 0x0f, 0x4f, 0x82, 0x0f, 0x5f, 0x25, 0x60, 0x9c, 0x7f, 0x58];
        let tag = entry(
            "uid=h,dc=x",
            vec![
                attr("telephoneNumber", &[b"+1 425 555 0120"]),
                attr("objectGUID", &[&guid]),
                attr("mobile", &["+1 206 555 0101".as_bytes(), "Zoë".as_bytes()]),
            ],
        );
        let e = decode_tag(tag).expect("a well-formed entry");
        assert_eq!(e.dn, "uid=h,dc=x");
        assert_eq!(
            e.attributes,
            vec![
                ("telephoneNumber".to_owned(), Value::Text("+1 425 555 0120".into())),
                ("objectGUID".to_owned(), Value::Binary(guid.to_vec())),
                ("mobile".to_owned(), Value::Text("+1 206 555 0101".into())),
                ("mobile".to_owned(), Value::Text("Zoë".into())),
            ]
        );
    }

    #[test]
    fn malformed_or_other_messages_are_none_not_a_panic() {
        // a referral (SearchResultReference is [APPLICATION 19])
        let referral = StructureTag { class: TagClass::Application, id: 19, payload: PL::C(vec![prim(b"ldap://other/")]) };
        assert_eq!(decode_tag(referral), None);
        // an entry without its attribute list
        let short = StructureTag { class: TagClass::Application, id: 4, payload: PL::C(vec![prim(b"dc=x")]) };
        assert_eq!(decode_tag(short), None);
        // a primitive where a constructed value belongs
        let flat = StructureTag { class: TagClass::Application, id: 4, payload: PL::P(b"junk".to_vec()) };
        assert_eq!(decode_tag(flat), None);
        // a DN that is not UTF-8
        let bad_dn = StructureTag { class: TagClass::Application, id: 4, payload: PL::C(vec![prim(&[0xff]), cons(16, vec![])]) };
        assert_eq!(decode_tag(bad_dn), None);
    }
}
