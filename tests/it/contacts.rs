//! Integration tests for the recipients' own contacts: the export folders in
//! `tests/fixtures/contacts/` (the same three people in Hannah Whitaker's book as vCard 3.0,
//! vCard 4.0 and Outlook CSV) resolve callers for Hannah only, after the directory's exact
//! steps (an AD match is never replaced by a contact).

use callnote::enrich::contacts::{ContactBook, ExportDir};
use callnote::enrich::directory::{self, DirectoryIndex};
use callnote::enrich::enrich_with;
use callnote::event::{CallerStatus, Event, Kind, Party, PartySource, PhoneLabel, Recipient};
use callnote::phone::DialPlan;

use crate::common::fixture;

fn plan() -> DialPlan {
    DialPlan::new("US", Some("9"), 4, 7).expect("US is a region")
}

fn directory() -> DirectoryIndex {
    directory::load_file(&fixture("directory.ldif"), &plan()).expect("the fixture LDIF loads")
}

/// A missed call from `caller` to the recipient with address `to`, enriched.
fn call(caller: &str, to: &str, book: &dyn ContactBook) -> Party {
    let mut event = Event::new(Kind::MissedCall, "MissedCall", "contacts-test");
    event.caller = Party::from_raw(Some(caller.to_owned()));
    event.recipient = Recipient { address: Some(to.to_owned()), ..Recipient::default() };
    enrich_with(&mut event, &plan(), Some(&directory()), Some(book));
    event.caller
}

const HANNAH: &str = "Hannah.Whitaker@contoso.com";
const AMARA: &str = "amara.okafor@contoso.com";

#[test]
fn vcard_3_vcard_4_and_outlook_csv_resolve_the_same_people_for_their_owner_only() {
    for folder in ["vcard3", "vcard4", "outlook"] {
        let book = ExportDir::new(fixture(&format!("contacts/{folder}")), &plan());

        let marisol = call("+12065550142", HANNAH, &book);
        assert_eq!((marisol.status, marisol.source), (CallerStatus::Resolved, Some(PartySource::Contacts)), "{folder}");
        assert_eq!((marisol.name.as_deref(), marisol.label), (Some("Marisol Vega"), Some(PhoneLabel::Mobile)), "{folder}");
        let person = marisol.person.expect("person");
        assert_eq!((person.company.as_deref(), person.title.as_deref()), (Some("Fabrikam, Inc."), Some("Buyer")), "{folder}");

        let dev = call("3125550177", HANNAH, &book);
        assert_eq!((dev.name.as_deref(), dev.label), (Some("Dev Patel"), Some(PhoneLabel::Home)), "{folder}");

        let for_amara = call("+12065550142", AMARA, &book);
        assert_eq!((for_amara.status, for_amara.name, for_amara.source), (CallerStatus::Unresolved, None, None), "{folder}");

        // Amara's directory number is in Hannah's book too: the directory answers.
        let amara = call("+14255550125", HANNAH, &book);
        assert_eq!((amara.name.as_deref(), amara.source), (Some("Amara Okafor"), Some(PartySource::Directory)), "{folder}");
    }
}

#[test]
fn a_changed_export_is_read_again_and_a_broken_one_keeps_the_last_good_copy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hannah.whitaker@contoso.com.vcf");
    let card = |name: &str| format!("BEGIN:VCARD\nVERSION:3.0\nFN:{name}\nTEL;TYPE=CELL:+1 206 555 0142\nEND:VCARD\n");
    std::fs::write(&path, card("Marisol Vega")).expect("write");
    let book = ExportDir::new(dir.path(), &plan());
    assert_eq!(call("+12065550142", HANNAH, &book).name.as_deref(), Some("Marisol Vega"));

    std::fs::write(&path, card("Marisol Vega-Ortiz")).expect("rewrite");
    assert_eq!(call("+12065550142", HANNAH, &book).name.as_deref(), Some("Marisol Vega-Ortiz"));

    std::fs::write(&path, "BEGIN:VCARD\nFN:half a card\n").expect("break");
    assert!(book.load(HANNAH).is_err_and(|e| e.to_string().ends_with(":1: the card starting here never ends (END:VCARD missing)")));
    assert_eq!(call("+12065550142", HANNAH, &book).name.as_deref(), Some("Marisol Vega-Ortiz"));
}

#[test]
fn a_link_or_a_crafted_address_never_reads_another_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let elsewhere = dir.path().join("elsewhere.vcf");
    std::fs::write(&elsewhere, "BEGIN:VCARD\nFN:Secret\nTEL:+1 206 555 0142\nEND:VCARD\n").expect("write");
    let books = dir.path().join("books");
    std::fs::create_dir(&books).expect("mkdir");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&elsewhere, books.join("hannah.whitaker@contoso.com.vcf")).expect("link");
    let book = ExportDir::new(&books, &plan());
    assert_eq!(call("+12065550142", HANNAH, &book).status, CallerStatus::Unresolved);
    assert!(book.of("../elsewhere@x").is_none());
}
