//! Unit tests of the index: precedence, ambiguity, unreadable and shared values, the
//! trailing-digits step, recipients, and the memory budget.

use super::*;
use crate::event::PhoneLabel;

fn plan() -> DialPlan {
    DialPlan::new("US", Some("9"), 4, 7).expect("US")
}

fn entry(dn: &str, attributes: &[(&str, &str)]) -> Entry {
    let mut e = Entry::new(dn);
    for (name, value) in attributes {
        e.push_text(*name, *value);
    }
    e
}

fn party(raw: &str) -> Party {
    let mut p = Party::from_raw(Some(raw.to_owned()));
    phone::normalize_party(&mut p, &plan());
    p
}

fn kwame() -> Entry {
    entry(
        "uid=kmensah",
        &[
            ("displayName", "Kwame Mensah"),
            ("mail", "kwame.mensah@contoso.com"),
            ("telephoneNumber", "425.555.0102"),
            ("msRTCSIP-Line", "tel:+14255550102"),
            ("msRTCSIP-PrimaryUserAddress", "sip:kwame.mensah@contoso.com"),
            ("proxyAddresses", "SIP:kwame.mensah@contoso.com"),
        ],
    )
}

fn receptionists() -> [Entry; 2] {
    [
        entry("uid=ochen", &[("displayName", "Olivia Chen"), ("mail", "olivia.chen@contoso.com"), ("telephoneNumber", "+1 425 555 0100")]),
        entry(
            "uid=dbrooks",
            &[("displayName", "Darnell Brooks"), ("mail", "darnell.brooks@contoso.com"), ("otherTelephone", "(425) 555-0100")],
        ),
    ]
}

fn resolved(lookup: Lookup) -> (Person, Candidate) {
    match lookup {
        Lookup::Resolved(person, candidate) => (*person, candidate),
        other => panic!("expected resolved, got {other:?}"),
    }
}

#[test]
fn one_person_matching_through_several_attributes_is_one_candidate() {
    let index = DirectoryIndex::build([kwame()], &plan());
    let (person, candidate) = resolved(index.find(&party("+14255550102")));
    assert_eq!(person.display_name.as_deref(), Some("Kwame Mensah"));
    assert_eq!(
        candidate,
        Candidate {
            display_name: Some("Kwame Mensah".into()),
            mail: Some("kwame.mensah@contoso.com".into()),
            label: Some(PhoneLabel::Work),
            matched_attribute: "telephoneNumber".into(),
        }
    );
    let (_, by_sip) = resolved(index.find(&party("sip:Kwame.Mensah@contoso.com")));
    assert_eq!(by_sip.matched_attribute, "msRTCSIP-PrimaryUserAddress");
}

#[test]
fn two_people_are_ambiguous_with_every_candidate_sorted_by_name() {
    let index = DirectoryIndex::build(receptionists(), &plan());
    let Lookup::Ambiguous(candidates) = index.find(&party("+14255550100")) else { panic!("expected ambiguous") };
    let names: Vec<_> = candidates.iter().map(|c| (c.display_name.as_deref(), c.matched_attribute.as_str())).collect();
    assert_eq!(names, [(Some("Darnell Brooks"), "otherTelephone"), (Some("Olivia Chen"), "telephoneNumber")]);
    assert_eq!(
        index.warnings().iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "number +14255550100 is held by 2 entries: uid=ochen (telephoneNumber), uid=dbrooks (otherTelephone); lookups of it are ambiguous"
        ]
    );
}

#[test]
fn stored_values_that_do_not_read_never_match_and_are_reported() {
    let callum =
        entry("uid=cfraser", &[("displayName", "Callum Fraser"), ("otherMobile", "07700 900456"), ("mail", "callum.fraser@fabrikam.com")]);
    let index = DirectoryIndex::build([callum], &plan());
    assert_eq!(index.find(&party("+447700900456")), Lookup::Unresolved);
    // Not even through the trailing-digits step.
    assert_eq!(index.find(&party("7700900456")), Lookup::Unresolved);
    assert_eq!(
        index.warnings(),
        [LoadWarning::Unreadable {
            entry: "uid=cfraser".into(),
            attribute: "otherMobile".into(),
            value: "07700 900456".into(),
            region: "US".into()
        }]
    );
    assert_eq!(
        index.warnings()[0].to_string(),
        "uid=cfraser: otherMobile `07700 900456` does not read under the US dial plan; it will never match"
    );
}

#[test]
fn trailing_digits_only_for_callers_too_short_to_be_a_number() {
    let index = DirectoryIndex::build(receptionists().into_iter().take(1), &plan());
    let (_, candidate) = resolved(index.find(&party("555-0100")));
    assert_eq!(candidate.matched_attribute, "telephoneNumber");
    // A full number from elsewhere with the same last 7 digits is somebody else.
    assert_eq!(index.find(&party("+16045550100")), Lookup::Unresolved);
    assert_eq!(index.find(&party("550100")), Lookup::Unresolved);
}

#[test]
fn extensions_from_ip_phone_eum_and_ext_parameter() {
    let mateo = entry(
        "uid=mgarcia",
        &[
            ("displayName", "Mateo García Núñez"),
            ("ipPhone", "4567"),
            ("msRTCSIP-Line", "tel:+14255550110;ext=4567"),
            ("proxyAddresses", "EUM:4567;phone-context=ContosoDP.contoso.com"),
        ],
    );
    let bjorn = entry("uid=bakesson", &[("displayName", "Björn Åkesson"), ("telephoneNumber", "289-555-0163 x123")]);
    let index = DirectoryIndex::build([mateo, bjorn], &plan());
    let (_, candidate) = resolved(index.find(&party("4567")));
    assert_eq!((candidate.matched_attribute.as_str(), candidate.label), ("proxyAddresses", Some(PhoneLabel::Work)));
    // A written `x123` is behind a main number, not an internal extension.
    assert_eq!(index.find(&party("123")), Lookup::Unresolved);
    let (person, _) = resolved(index.find(&party("912895550163")));
    assert_eq!(person.display_name.as_deref(), Some("Björn Åkesson"));
}

#[test]
fn anonymous_parties_and_entries_without_keys() {
    let mut org = entry("ou=People", &[("displayName", "People")]);
    org.push_text("objectClass", "organizationalUnit");
    let index = DirectoryIndex::build([org, kwame()], &plan());
    assert_eq!(index.len(), 1);
    assert_eq!(index.find(&party("Anonymous")), Lookup::Unresolved);
}

#[test]
fn recipients_by_guid_address_sip_and_eum() {
    let mut hannah = entry(
        "uid=hwhitaker",
        &[
            ("displayName", "Hannah Whitaker"),
            ("mail", "hannah.whitaker@contoso.com"),
            ("preferredLanguage", "en-US"),
            ("proxyAddresses", "EUM:hannah.whitaker@contoso.com;phone-context=ContosoDP.contoso.com"),
        ],
    );
    // Guid("5e7bf87a-c77b-4f0f-820f-5f25609c7f58").ToByteArray(), as ldifde exports it.
    hannah.push_binary("objectGUID", vec![0x7a, 0xf8, 0x7b, 0x5e, 0x7b, 0xc7, 0x0f, 0x4f, 0x82, 0x0f, 0x5f, 0x25, 0x60, 0x9c, 0x7f, 0x58]);
    let index = DirectoryIndex::build([hannah, kwame()], &plan());
    let find = |r: Recipient| index.recipient(&r).and_then(|p| p.display_name);

    let by_guid = Recipient { object_guid: Some("5E7BF87A-C77B-4F0F-820F-5F25609C7F58".into()), ..Recipient::default() };
    assert_eq!(find(by_guid).as_deref(), Some("Hannah Whitaker"));
    let person = index.recipient(&Recipient { object_guid: Some("5e7bf87a-c77b-4f0f-820f-5f25609c7f58".into()), ..Recipient::default() });
    // A recipient is completed from the fields alone: the attributes are not copied.
    assert_eq!(person.map(|p| (p.mail, p.attributes.len())), Some((Some("hannah.whitaker@contoso.com".to_owned()), 0)));
    assert_eq!(index.people[0].person(&index.map).attributes["objectGUID"], vec!["5e7bf87a-c77b-4f0f-820f-5f25609c7f58".to_owned()]);
    let by_eum =
        Recipient { eum_proxy: Some("EUM:hannah.whitaker@contoso.com;phone-context=ContosoDP.contoso.com".into()), ..Recipient::default() };
    assert_eq!(find(by_eum).as_deref(), Some("Hannah Whitaker"));
    let by_address = Recipient { address: Some("Kwame.Mensah@contoso.com".into()), ..Recipient::default() };
    assert_eq!(find(by_address).as_deref(), Some("Kwame Mensah"));
    // An unknown GUID falls through to the SIP address.
    let stale_guid = Recipient {
        object_guid: Some("72b4ce60-5154-42c5-9a45-1687d6511d8f".into()),
        sip: Some("sip:kwame.mensah@contoso.com".into()),
        ..Recipient::default()
    };
    assert_eq!(find(stale_guid).as_deref(), Some("Kwame Mensah"));
    assert_eq!(find(Recipient { sip: Some("nobody@contoso.com".into()), ..Recipient::default() }), None);
}

#[test]
fn a_recipient_address_on_two_people_finds_nobody() {
    let a = entry("uid=a", &[("displayName", "A"), ("proxyAddresses", "smtp:team@contoso.com")]);
    let b = entry("uid=b", &[("displayName", "B"), ("proxyAddresses", "smtp:team@contoso.com")]);
    let index = DirectoryIndex::build([a, b], &plan());
    assert_eq!(index.recipient(&Recipient { address: Some("team@contoso.com".into()), ..Recipient::default() }), None);
}

#[test]
fn duplicate_guid_and_extension_are_reported() {
    let a = entry("uid=a", &[("ipPhone", "4101"), ("objectGUID", "5e7bf87a-c77b-4f0f-820f-5f25609c7f58")]);
    let b = entry("uid=b", &[("ipPhone", "4101"), ("objectGUID", "{5E7BF87A-C77B-4F0F-820F-5F25609C7F58}")]);
    let index = DirectoryIndex::build([a, b], &plan());
    let shown: Vec<String> = index.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "extension 4101 is held by 2 entries: uid=a (ipPhone), uid=b (ipPhone); lookups of it are ambiguous",
            "objectGUID 5e7bf87a-c77b-4f0f-820f-5f25609c7f58 is held by 2 entries: uid=a (objectGUID), uid=b (objectGUID); lookups of it are ambiguous",
        ]
    );
}

/// A realistic AD user: names, a title, numbers in the formats people type, the Lync and
/// Exchange attributes, four proxy addresses and a GUID.
fn synthetic(i: usize) -> Entry {
    let number = 2_000_000 + i;
    let (a, b) = (number / 10_000 % 1000, number % 10_000);
    let formats = [
        format!("+1 425 {a:03} {b:04}"),
        format!("(425) {a:03}-{b:04}"),
        format!("425.{a:03}.{b:04}"),
        format!("+1-425-{a:03}-{b:04} x{}", i % 900 + 100),
    ];
    let user = format!("user{i:05}.lastname");
    let mut e = entry(&format!("CN=User {i:05},OU=Staff,DC=contoso,DC=com"), &[]);
    for (name, value) in [
        ("displayName", format!("User {i:05} Lastname")),
        ("givenName", format!("User{i:05}")),
        ("sn", "Lastname".to_owned()),
        ("mail", format!("{user}@contoso.com")),
        ("title", "Senior Account Executive".to_owned()),
        ("department", "Sales North America".to_owned()),
        ("company", "Contoso Ltd".to_owned()),
        ("physicalDeliveryOfficeName", "Redmond B4".to_owned()),
        ("preferredLanguage", "en-US".to_owned()),
        ("telephoneNumber", formats[i % 4].clone()),
        ("mobile", format!("+1 206 {a:03} {b:04}")),
        ("ipPhone", format!("{:04}", i % 10_000)),
        ("msRTCSIP-Line", format!("tel:+1425{a:03}{b:04};ext={:04}", i % 10_000)),
        ("msRTCSIP-PrimaryUserAddress", format!("sip:{user}@contoso.com")),
        ("proxyAddresses", format!("SMTP:{user}@contoso.com")),
        ("proxyAddresses", format!("SIP:{user}@contoso.com")),
        ("proxyAddresses", format!("EUM:{:04};phone-context=ContosoDP.contoso.com", i % 10_000)),
        ("proxyAddresses", format!("EUM:{user}@contoso.com;phone-context=ContosoDP.contoso.com")),
        ("objectGUID", guid::to_text(0x5e7b_f87a_c77b_4f0f_820f_0000_0000_0000 + i as u128)),
    ] {
        e.push_text(name, value);
    }
    e.push_text("objectClass", "user");
    e
}

#[test]
fn ten_thousand_people_fit_in_one_kib_each() {
    let index = DirectoryIndex::build((0..10_000).map(synthetic), &plan());
    assert_eq!(index.len(), 10_000);
    let per_person = index.heap_bytes() / 10_000;
    assert!(per_person < 1024, "{per_person} bytes per person");
    let (person, candidate) = resolved(index.find(&party("+1 (206) 200-7777")));
    assert_eq!((person.display_name.as_deref(), candidate.label), (Some("User 07777 Lastname"), Some(PhoneLabel::Mobile)));
    let (person, _) = resolved(index.find(&party("tel:+14252001234")));
    assert_eq!(person.display_name.as_deref(), Some("User 01234 Lastname"));
}

#[test]
fn an_unresolved_caller_is_told_the_keys_tried_and_the_unreadable_look_alikes() {
    let callum =
        entry("uid=cfraser", &[("displayName", "Callum Fraser"), ("otherMobile", "07700 900456"), ("mail", "callum.fraser@fabrikam.com")]);
    let index = DirectoryIndex::build([callum, kwame()], &plan());
    let caller = party("+447700900456");
    let why = index.explain(&caller);
    assert_eq!(why.tried, ["e164 +447700900456"]);
    assert_eq!(why.unreadable, ["uid=cfraser: otherMobile `07700 900456` does not read under the US dial plan; it will never match"]);
    assert!(why.summary.starts_with("no directory entry holds e164 +447700900456; 1 directory value(s)"), "{}", why.summary);

    // A number with no look-alike: only the keys.
    let why = index.explain(&party("+14255550199"));
    assert_eq!((why.tried.as_slice(), why.unreadable.len()), (["e164 +14255550199".to_owned()].as_slice(), 0));
    assert_eq!(why.summary, "no directory entry holds e164 +14255550199");
}
