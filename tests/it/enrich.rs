//! Integration tests for the enrich stage, driven by the fixture directory (`directory.ldif`,
//! and `directory.csv`: the same people as an `Export-Csv` export with objectGUIDs) and by
//! the caller ids of every good fixture header, built as intake gives them: the header
//! `CallerId` verbatim (absent when the header has none), or the OCS `<From>` / `<Target>`
//! URI verbatim. Expectations are the `→ dir:` lines of `tests/fixtures/README.md`.

use callnote::enrich::directory::{self, Directory, DirectoryError, DirectoryIndex, LoadWarning, Lookup};
use callnote::enrich::{enrich, resolve_party};
use callnote::event::{CallerStatus, Event, Kind, Party, PartyKind, PhoneLabel, Recipient};
use callnote::intake::{IntakeOptions, Parsed, read_file};
use callnote::phone::DialPlan;

use crate::common::fixture;

/// The fixtures' dial plan (spec §6.4): US, outside line 9, 4-digit extensions.
fn plan() -> DialPlan {
    DialPlan::new("US", Some("9"), 4, 7).expect("US is a region")
}

fn ldif() -> DirectoryIndex {
    directory::load_file(&fixture("directory.ldif"), &plan()).expect("the fixture LDIF loads")
}

fn csv() -> DirectoryIndex {
    directory::load_file(&fixture("directory.csv"), &plan()).expect("the fixture CSV loads")
}

/// What a party should come out as.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Display name, label, matched attribute.
    Resolved(&'static str, Option<PhoneLabel>, &'static str),
    /// Every candidate as (display name, matched attribute), sorted by name.
    Ambiguous(&'static [(&'static str, &'static str)]),
    Unresolved,
    Anonymous,
}

use Expect::{Ambiguous, Anonymous, Resolved, Unresolved};
use PhoneLabel::{Fax, Home, Mobile, Work};

/// One good fixture: its caller (raw, expected E.164, outcome) and its OCS target.
struct Case {
    fixture: &'static str,
    caller: Option<&'static str>,
    e164: Option<&'static str>,
    expect: Expect,
    target: Option<(&'static str, Expect)>,
}

const fn case(fixture: &'static str, caller: Option<&'static str>, e164: Option<&'static str>, expect: Expect) -> Case {
    Case { fixture, caller, e164, expect, target: None }
}

/// Every good fixture that is a notification (healthcheck-2013 and xsovoicemail-2013 are
/// skipped by intake and never enriched).
const CASES: &[Case] = &[
    case("vm-legacy-blog-shape.txt", Some("+12895550147"), Some("+12895550147"), Resolved("Priya Raman", Some(Mobile), "mobile")),
    case(
        "vm-legacy-wrapped-recipientaddress.txt",
        Some("+14255550110"),
        Some("+14255550110"),
        Resolved("Mateo García Núñez", Some(Work), "telephoneNumber"),
    ),
    case("vm-legacy-lf-line-endings.txt", Some("+61491570156"), Some("+61491570156"), Resolved("Jack Thompson", Some(Mobile), "mobile")),
    // Only because "+33 (0)1 99 00 12 34" loses its "(0)".
    case(
        "vm-legacy-utf8-bom-fr-FR.txt",
        Some("+33199001234"),
        Some("+33199001234"),
        Resolved("Élodie Marchand", Some(Work), "telephoneNumber"),
    ),
    case(
        "vm-legacy-utf16le-bom-de-DE.txt",
        Some("+41445550178"),
        Some("+41445550178"),
        Resolved("Lukas Brunner", Some(Work), "telephoneNumber"),
    ),
    // Callum Fraser's otherMobile "07700 900456" does not read under the US plan.
    case("vm-legacy-important-long-duration-en-GB.txt", Some("+447700900456"), Some("+447700900456"), Unresolved),
    case("vm-legacy-ja-JP-g711.txt", Some("+81355550123"), Some("+81355550123"), Resolved("佐藤 花子", Some(Work), "telephoneNumber")),
    // ipPhone, EUM:4567 and ;ext=4567 all match; proxyAddresses comes first in the map.
    case("vm-legacy-extension-caller.txt", Some("4567"), None, Resolved("Mateo García Núñez", Some(Work), "proxyAddresses")),
    case(
        "vm-legacy-sip-caller-internal-user.txt",
        Some("kwame.mensah@contoso.com"),
        None,
        Resolved("Kwame Mensah", Some(Work), "msRTCSIP-PrimaryUserAddress"),
    ),
    case("vm-legacy-anonymous-no-callerid.txt", None, None, Anonymous),
    // "425.555.0123" has no country code.
    case(
        "vm-legacy-extra-unknown-fields.txt",
        Some("+14255550123"),
        Some("+14255550123"),
        Resolved("Ingrid Solberg", Some(Work), "telephoneNumber"),
    ),
    // Outside-line 9 stripped; Björn's "289-555-0163 x123" matches without its extension.
    case(
        "vm-legacy-outside-line-prefix-caller.txt",
        Some("912895550163"),
        Some("+12895550163"),
        Resolved("Björn Åkesson", Some(Work), "telephoneNumber"),
    ),
    case("mc-legacy-blog-shape.txt", Some("+12895550147"), Some("+12895550147"), Resolved("Priya Raman", Some(Mobile), "mobile")),
    case(
        "mc-legacy-important-subject-de-DE.txt",
        Some("+493023125017"),
        Some("+493023125017"),
        Resolved("Anneliese Vogt", Some(Home), "homePhone"),
    ),
    case(
        "mc-legacy-minimal-fields.txt",
        Some("+14255550100"),
        Some("+14255550100"),
        Ambiguous(&[("Darnell Brooks", "otherTelephone"), ("Olivia Chen", "telephoneNumber")]),
    ),
    case("mc-legacy-callid-not-a-guid.txt", Some("+14255550199"), Some("+14255550199"), Unresolved),
    case(
        "ocs-legacy-blog-shape.txt",
        Some("sip:+12895550147@contoso.com;user=phone"),
        Some("+12895550147"),
        Resolved("Priya Raman", Some(Mobile), "mobile"),
    ),
    case("ocs-2013-ocsnotificationdata.txt", Some("sip:+16045550188@contoso.com;user=phone"), Some("+16045550188"), Unresolved),
    // Nadia's telephoneNumber is itself "tel:+14255550131".
    case(
        "ocs-legacy-tel-uri-from.txt",
        Some("tel:+14255550131"),
        Some("+14255550131"),
        Resolved("Nadia Haddad", Some(Work), "telephoneNumber"),
    ),
    case("ocs-legacy-anonymous-from.txt", Some("sip:anonymous@anonymous.invalid;user=phone"), None, Anonymous),
    case(
        "ocs-legacy-internal-sip-urgent-subject.txt",
        Some("sip:kwame.mensah@contoso.com"),
        None,
        Resolved("Kwame Mensah", Some(Work), "msRTCSIP-PrimaryUserAddress"),
    ),
    Case {
        target: Some(("sip:+447700900123@contoso.com;user=phone", Resolved("Siobhán Ní Bhriain", Some(Mobile), "mobile"))),
        ..case(
            "ocs-2013-answered-forwarded-primary.txt",
            Some("sip:+14255550177@contoso.com;user=phone"),
            Some("+14255550177"),
            Resolved("Chidi Eze", Some(Work), "msRTCSIP-Line"),
        )
    },
    Case {
        target: Some(("sip:olivia.chen@contoso.com", Resolved("Olivia Chen", Some(Work), "msRTCSIP-PrimaryUserAddress"))),
        ..case(
            "ocs-2013-answered-teampickup-secondary.txt",
            Some("sip:+14255550101@contoso.com;user=phone"),
            Some("+14255550101"),
            Resolved("Priya Raman", Some(Work), "telephoneNumber"),
        )
    },
    Case {
        target: Some(("sip:+16045550199@contoso.com;user=phone", Unresolved)),
        ..case(
            "ocs-2013-forbidden-not-forwarded.txt",
            Some("sip:+14255550150@contoso.com;user=phone"),
            Some("+14255550150"),
            Resolved("Rafael Costa", Some(Work), "msExchUMCallingLineIds"),
        )
    },
    // The README gives Exchange's label ("none"); the documented label for a fax number (docs/template-context.md) is `fax`.
    case(
        "fax-2013-three-pages.txt",
        Some("+14255550140"),
        Some("+14255550140"),
        Resolved("Grace Kim", Some(Fax), "facsimileTelephoneNumber"),
    ),
    case(
        "vm-2013-smtpvoicemail-private.txt",
        Some("+447700900123"),
        Some("+447700900123"),
        Resolved("Siobhán Ní Bhriain", Some(Mobile), "mobile"),
    ),
    // "425.555.0102" (telephoneNumber) and tel:+14255550102 (msRTCSIP-Line): one candidate.
    case(
        "mc-2013-retry-contactinfo-callername.txt",
        Some("+14255550102"),
        Some("+14255550102"),
        Resolved("Kwame Mensah", Some(Work), "telephoneNumber"),
    ),
];

/// An event as intake builds it, with only what enrichment reads filled in.
fn event(caller: Option<&str>, target: Option<&str>, recipient: Recipient) -> Event {
    let mut event = Event::new(Kind::MissedCall, "MissedCall", "test");
    event.caller = Party::from_raw(caller.map(str::to_owned));
    event.target = target.map(|t| Party::from_raw(Some(t.to_owned())));
    event.recipient = recipient;
    event
}

fn check(fixture: &str, role: &str, party: &Party, expect: Expect) {
    let at = format!("{fixture} {role} {:?}", party.raw);
    match expect {
        Resolved(name, label, attribute) => {
            assert_eq!(party.status, CallerStatus::Resolved, "{at}: {:?}", party.candidates);
            assert_eq!(party.name.as_deref(), Some(name), "{at}");
            assert_eq!(party.label, label, "{at}");
            assert_eq!(party.matched_attribute.as_deref(), Some(attribute), "{at}");
            assert_eq!(party.person.as_ref().and_then(|p| p.display_name.as_deref()), Some(name), "{at}");
            assert_eq!(party.candidates.len(), 1, "{at}");
        }
        Ambiguous(expected) => {
            assert_eq!(party.status, CallerStatus::Ambiguous, "{at}");
            assert_eq!((party.name.as_deref(), party.person.as_ref(), party.label), (None, None, None), "{at}: none is picked");
            let got: Vec<(&str, &str)> =
                party.candidates.iter().map(|c| (c.display_name.as_deref().unwrap_or(""), c.matched_attribute.as_str())).collect();
            assert_eq!(got, expected, "{at}");
        }
        Unresolved => {
            assert_eq!(party.status, CallerStatus::Unresolved, "{at}: {:?}", party.candidates);
            assert!(party.candidates.is_empty() && party.name.is_none(), "{at}");
        }
        Anonymous => {
            assert_eq!((party.kind, party.status), (PartyKind::Anonymous, CallerStatus::Anonymous), "{at}");
            assert_eq!((party.e164.as_deref(), party.name.as_deref()), (None, None), "{at}");
        }
    }
}

#[test]
fn every_good_fixture_caller_and_target_resolves_as_documented() {
    let directory = ldif();
    for case in CASES {
        let mut ev = event(case.caller, case.target.map(|t| t.0), Recipient::default());
        enrich(&mut ev, &plan(), Some(&directory));
        assert_eq!(ev.caller.e164.as_deref(), case.e164, "{}", case.fixture);
        check(case.fixture, "caller", &ev.caller, case.expect);
        if let Some((_, expect)) = case.target {
            check(case.fixture, "target", ev.target.as_ref().expect("target kept"), expect);
        }
    }
}

/// The fixture files themselves, through intake: the raw values intake gives are the ones
/// the table above assumes, and enrichment gives the same outcomes.
#[test]
fn every_good_fixture_file_through_intake_and_enrich() {
    let directory = ldif();
    for case in CASES {
        let parsed = read_file(&fixture(case.fixture), &IntakeOptions::default()).unwrap_or_else(|e| panic!("{e:#}"));
        let Parsed::Event(mut ev) = parsed else { panic!("{}: not an event", case.fixture) };
        assert_eq!(ev.caller.raw.as_deref(), case.caller, "{}", case.fixture);
        assert_eq!(ev.target.as_ref().and_then(|t| t.raw.as_deref()), case.target.map(|t| t.0), "{}", case.fixture);
        enrich(&mut ev, &plan(), Some(&directory));
        check(case.fixture, "caller", &ev.caller, case.expect);
        if let Some((_, expect)) = case.target {
            check(case.fixture, "target", ev.target.as_ref().expect("target kept"), expect);
        }
        assert!(ev.recipient.address.is_some() || ev.recipient.object_guid.is_some(), "{}: {:?}", case.fixture, ev.recipient);
    }
}

/// The same people exported with `Export-Csv` (BOM, `#TYPE`, quoted fields, `|`-joined
/// values, Get-ADUser property names) resolve every fixture number exactly like the LDIF.
#[test]
fn csv_export_resolves_every_fixture_number_like_the_ldif() {
    let (ldif, csv) = (ldif(), csv());
    assert_eq!((ldif.len(), csv.len()), (31, 31));
    let without_guid = |lookup: Lookup| match lookup {
        Lookup::Resolved(mut person, candidate) => {
            person.attributes.shift_remove("objectGUID");
            Lookup::Resolved(person, candidate)
        }
        other => other,
    };
    let raws = CASES.iter().flat_map(|c| c.caller.into_iter().chain(c.target.map(|t| t.0)));
    for raw in raws {
        let mut party = Party::from_raw(Some(raw.to_owned()));
        resolve_party(&mut party, &plan(), None);
        let from_ldif = ldif.lookup(&party).expect("in memory");
        assert_eq!(without_guid(csv.lookup(&party).expect("in memory")), from_ldif, "{raw}");
    }
}

#[test]
fn a_resolved_person_carries_the_directory_fields() {
    let mut party = Party::from_raw(Some("sip:+12895550147@contoso.com;user=phone".into()));
    resolve_party(&mut party, &plan(), Some(&ldif()));
    let person = party.person.expect("resolved");
    assert_eq!(person.given_name.as_deref(), Some("Priya"));
    assert_eq!(person.surname.as_deref(), Some("Raman"));
    assert_eq!(person.mail.as_deref(), Some("priya.raman@contoso.com"));
    assert_eq!(person.title.as_deref(), Some("Account Executive"));
    assert_eq!(person.department.as_deref(), Some("Sales"));
    assert_eq!(person.company.as_deref(), Some("Contoso Ltd"));
    assert_eq!(person.sip.as_deref(), Some("priya.raman@contoso.com"));
    assert_eq!(person.attributes["mobile"], ["+1 289 555 0147"]);
    assert_eq!(person.attributes["proxyAddresses"].len(), 4);
    // Attributes not in the map (objectClass, uid, cn, departmentNumber) are not kept.
    assert!(!person.attributes.contains_key("objectClass") && !person.attributes.contains_key("uid"));
    assert_eq!(party.national.as_deref(), Some("(289) 555-0147"));
    assert_eq!(party.international.as_deref(), Some("+1 289-555-0147"));
}

#[test]
fn the_template_context_of_an_ambiguous_caller() {
    let mut ev = event(Some("+14255550100"), None, Recipient::default());
    enrich(&mut ev, &plan(), Some(&ldif()));
    let json = serde_json::to_value(&ev.caller).expect("serializable");
    assert_eq!(json["status"], "ambiguous");
    assert_eq!(json["name"], serde_json::Value::Null);
    assert_eq!(
        json["candidates"][1],
        serde_json::json!({"display_name": "Olivia Chen", "mail": "olivia.chen@contoso.com", "label": "work", "matched_attribute": "telephoneNumber"})
    );
}

#[test]
fn recipients_named_by_sip_or_eum_are_completed_from_the_ldif() {
    let directory = ldif();
    let ocs = |user: &str| Recipient {
        sip: Some(user.to_owned()),
        eum_proxy: Some(format!("EUM:{user};phone-context=ContosoDP.contoso.com")),
        ..Recipient::default()
    };
    for (user, name, culture) in [
        ("hannah.whitaker@contoso.com", "Hannah Whitaker", "en-US"),
        ("zoe.lefevre-chateau@contoso.com", "Zoë Lefèvre-Château", "fr-FR"),
        ("oliver.pennington-smythe@contoso.com", "Oliver Pennington-Smythe", "en-GB"),
        ("liam.oconnor@contoso.com", "Liam O'Connor", "en-US"),
    ] {
        let mut ev = event(Some("+14255550199"), None, ocs(user));
        enrich(&mut ev, &plan(), Some(&directory));
        assert_eq!(ev.recipient.address.as_deref(), Some(user), "{user}");
        assert_eq!(ev.recipient.name.as_deref(), Some(name), "{user}");
        assert_eq!(ev.recipient.culture.as_deref(), Some(culture), "{user}");
    }
    // ocs-2013-ocsnotificationdata: its RecipientObjectGuid is in nobody's entry; the SIP
    // address still finds Hannah.
    let mut ev = event(
        None,
        None,
        Recipient { object_guid: Some("72b4ce60-5154-42c5-9a45-1687d6511d8f".into()), ..ocs("hannah.whitaker@contoso.com") },
    );
    enrich(&mut ev, &plan(), Some(&directory));
    assert_eq!(ev.recipient.address.as_deref(), Some("hannah.whitaker@contoso.com"));
    // mc-legacy-minimal-fields: address only; name and culture come from the directory.
    let mut ev = event(None, None, Recipient { address: Some("amara.okafor@contoso.com".into()), ..Recipient::default() });
    enrich(&mut ev, &plan(), Some(&directory));
    assert_eq!((ev.recipient.name.as_deref(), ev.recipient.culture.as_deref()), (Some("Amara Okafor"), Some("en-US")));
}

/// 2013 headers name the recipient by RecipientObjectGuid only: the CSV export has the
/// GUIDs (the LDIF fixture has none, so there the address stays unknown).
#[test]
fn recipients_named_by_object_guid_are_found_in_the_csv_export() {
    let by_guid = |guid: &str, name: &str| Recipient { object_guid: Some(guid.into()), name: Some(name.into()), ..Recipient::default() };
    for (fixture, guid, name, address, culture) in [
        ("fax-2013-three-pages.txt", "5e7bf87a-c77b-4f0f-820f-5f25609c7f58", "Hannah Whitaker", "hannah.whitaker@contoso.com", "en-US"),
        (
            "vm-2013-smtpvoicemail-private.txt",
            "e5caf65d-f722-41cb-b2f1-0b81c310d795",
            "Oliver Pennington-Smythe",
            "oliver.pennington-smythe@contoso.com",
            "en-GB",
        ),
        (
            "mc-2013-retry-contactinfo-callername.txt",
            "5179ea6e-6657-4e59-a162-d9c13a14c2fc",
            "Liam O'Connor",
            "liam.oconnor@contoso.com",
            "en-US",
        ),
    ] {
        let mut ev = event(None, None, by_guid(guid, name));
        enrich(&mut ev, &plan(), Some(&csv()));
        assert_eq!(ev.recipient.address.as_deref(), Some(address), "{fixture}");
        assert_eq!(ev.recipient.culture.as_deref(), Some(culture), "{fixture}");
        assert_eq!(ev.recipient.name.as_deref(), Some(name), "{fixture}");

        let mut ev = event(None, None, by_guid(guid, name));
        enrich(&mut ev, &plan(), Some(&ldif()));
        assert_eq!(ev.recipient, by_guid(guid, name), "{fixture}: nothing to find in the LDIF");
    }
}

#[test]
fn without_a_directory_parties_are_normalized_but_not_looked_up() {
    let mut ev = event(Some("912895550163"), Some("sip:olivia.chen@contoso.com"), Recipient::default());
    enrich(&mut ev, &plan(), None);
    let caller = &ev.caller;
    assert_eq!((caller.kind, caller.status), (PartyKind::Number, CallerStatus::NotLookedUp));
    assert_eq!(caller.raw.as_deref(), Some("912895550163"));
    assert_eq!(caller.e164.as_deref(), Some("+12895550163"));
    assert_eq!(caller.national.as_deref(), Some("(289) 555-0163"));
    assert_eq!(caller.international.as_deref(), Some("+1 289-555-0163"));
    let target = ev.target.as_ref().expect("target");
    assert_eq!(
        (target.kind, target.sip.as_deref(), target.status),
        (PartyKind::Sip, Some("olivia.chen@contoso.com"), CallerStatus::NotLookedUp)
    );

    let mut ev = event(Some("4567"), None, Recipient::default());
    enrich(&mut ev, &plan(), None);
    assert_eq!((ev.caller.kind, ev.caller.extension.as_deref(), ev.caller.e164.as_deref()), (PartyKind::Extension, Some("4567"), None));

    let mut ev = event(Some("sip:anonymous@anonymous.invalid;user=phone"), None, Recipient::default());
    enrich(&mut ev, &plan(), None);
    assert_eq!((ev.caller.kind, ev.caller.status), (PartyKind::Anonymous, CallerStatus::Anonymous));
}

#[test]
fn the_fixture_directory_load_warnings() {
    let shown: Vec<String> = ldif().warnings().iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "uid=cfraser,ou=People,dc=contoso,dc=com: otherMobile `07700 900456` does not read under the US dial plan; it will never match",
            "uid=felamrani,ou=People,dc=contoso,dc=com: otherMobile `06 61 00 00 02` does not read under the US dial plan; it will never match",
            "uid=divanov,ou=People,dc=contoso,dc=com: homePhone `8 (495) 555-01-99` does not read under the US dial plan; it will never match",
            "number +14255550100 is held by 2 entries: uid=ochen,ou=People,dc=contoso,dc=com (telephoneNumber), uid=dbrooks,ou=People,dc=contoso,dc=com (otherTelephone); lookups of it are ambiguous",
        ]
    );
    assert_eq!(csv().warnings().len(), 4);
    assert!(matches!(&ldif().warnings()[0], LoadWarning::Unreadable { attribute, .. } if attribute == "otherMobile"));
}

#[test]
fn bad_directory_files_name_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("written");
        path
    };
    let ldif = write("people.ldif", "dn: uid=a\ncn: a\n\ndn: uid=b\nchangetype: delete\n");
    let err = directory::load_file(&ldif, &plan()).expect_err("a change record");
    assert!(matches!(err, DirectoryError::Syntax { line: 5, .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "{}:5: `changetype: delete` records are not a directory export; only entries (or `changetype: add`) are read",
            ldif.display()
        )
    );

    let csv = write("people.CSV", "\"mail\",\"mobile\"\n\"a@contoso.com\",\"+1 425 555 0100\"\n\"b@contoso.com\"\n");
    let err = directory::load_file(&csv, &plan()).expect_err("a short row");
    assert_eq!(err.to_string(), format!("{}:3: expected 2 fields as in the header, found 1", csv.display()));

    let missing = dir.path().join("absent.ldif");
    let err = directory::load_file(&missing, &plan()).expect_err("no such file");
    assert!(matches!(&err, DirectoryError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound));
    assert_eq!(err.to_string(), format!("{}: cannot read directory file", missing.display()));
}
