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

#[test]
fn contacts_check_counts_each_recipients_book_and_names_no_contact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("callnote.toml");
    let books = fixture("contacts/vcard4");
    std::fs::write(&config, format!("[contacts]\ndir = {:?}\n", books.display().to_string())).expect("config");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_callnote"))
        .args(["--config", &config.display().to_string(), "contacts-check", "--recipient", HANNAH, "--recipient", AMARA])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let folder = books.display();
    assert_eq!(
        stdout,
        format!(
            "{HANNAH}: export folder {folder}: 3 contact(s) with a number or address, 0 value(s) that do not read under the dial plan\n\
             {AMARA}: export folder {folder}: no export\n"
        )
    );
}

mod carddav {
    //! Against the real CardDAV server (Radicale) that `scripts/carddav-server.sh` starts:
    //! the service account reads Hannah's book; Amara has none. A loopback proxy in front
    //! of it stands for "the server went down".

    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use base64::Engine as _;
    use callnote::config::{CardDavSettings, SecretSource};
    use callnote::enrich::contacts::ContactBook;
    use callnote::enrich::contacts::carddav::CardDavBook;
    use callnote::event::{CallerStatus, PartySource, PhoneLabel};

    use super::{AMARA, HANNAH, call, plan};
    use crate::common::server_env;

    /// Forwards loopback connections to `upstream` until stopped; stopping closes every
    /// open connection too, so nothing pooled still reaches the server.
    struct Proxy {
        port: u16,
        stopped: Arc<AtomicBool>,
        open: Arc<Mutex<Vec<TcpStream>>>,
    }

    impl Proxy {
        fn start(upstream: String) -> Proxy {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let port = listener.local_addr().expect("addr").port();
            let stopped = Arc::new(AtomicBool::new(false));
            let open = Arc::new(Mutex::new(Vec::new()));
            let (flag, streams) = (Arc::clone(&stopped), Arc::clone(&open));
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if flag.load(Ordering::SeqCst) {
                        return;
                    }
                    let (Ok(client), Ok(server)) = (client, TcpStream::connect(&upstream)) else { continue };
                    let mut list = streams.lock().expect("lock");
                    list.extend([client.try_clone().expect("clone"), server.try_clone().expect("clone")]);
                    for (mut from, mut to) in [(client.try_clone().expect("clone"), server.try_clone().expect("clone")), (server, client)] {
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut to);
                            let _ = to.shutdown(Shutdown::Write);
                        });
                    }
                }
            });
            Proxy { port, stopped, open }
        }

        fn stop(&self) {
            self.stopped.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(("127.0.0.1", self.port));
            for stream in self.open.lock().expect("lock").drain(..) {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }

    /// Writes (or, with `None`, deletes) one card in Hannah's book as Hannah.
    fn put(base: &str, name: &str, card: Option<&str>) {
        let auth = format!("hannah.whitaker@contoso.com:{}", server_env("CARDDAV_OWNER_PASS").expect("owner password"));
        let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(auth));
        let url = format!("{base}/hannah.whitaker@contoso.com/contacts/{name}.vcf");
        let result = match card {
            Some(card) => ureq::put(&url).header("Authorization", &auth).header("Content-Type", "text/vcard").send(card).map(drop),
            None => ureq::delete(&url).header("Authorization", &auth).call().map(drop),
        };
        result.unwrap_or_else(|e| panic!("{url}: {e}"));
    }

    fn card(uid: &str, name: &str, tel: &str) -> String {
        format!(
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nORG:Fabrikam\r\nTITLE:Buyer\r\nTEL;TYPE=CELL:{tel}\r\nEND:VCARD\r\n"
        )
    }

    #[test]
    fn hannahs_address_book_resolves_for_her_moves_only_changes_and_outlives_the_server() {
        let Some(base) = server_env("CARDDAV_URL") else { return };
        let user = server_env("CARDDAV_USER").expect("user");
        put(&base, "q7-marisol", Some(&card("q7-marisol", "Marisol Vega", "+1 206 555 0142")));
        put(&base, "q7-dev", Some(&card("q7-dev", "Dev Patel", "+1 312 555 0177")));
        let proxy = Proxy::start(base.trim_start_matches("http://").to_owned());
        let settings = CardDavSettings {
            url: format!("http://127.0.0.1:{}/{{mail}}/contacts/", proxy.port),
            username: Some(user),
            password: Some(SecretSource::Env("CARDDAV_PASS".into())),
            ca_file: None,
            refresh: Duration::from_secs(900),
            timeout: Duration::from_secs(5),
        };
        let book = CardDavBook::new(&settings, &plan()).expect("client");
        assert!(book.of(HANNAH).is_none(), "nothing is fetched before the first refresh");
        let first = book.refresh(HANNAH).expect("first refresh");
        assert!(first.exists && first.changed >= 2 && first.contacts >= 2, "{first:?}");

        let marisol = call("+12065550142", HANNAH, &book);
        assert_eq!(
            (marisol.status, marisol.source, marisol.label),
            (CallerStatus::Resolved, Some(PartySource::Contacts), Some(PhoneLabel::Mobile))
        );
        assert_eq!(marisol.name.as_deref(), Some("Marisol Vega"));
        assert_eq!(marisol.person.and_then(|p| p.company).as_deref(), Some("Fabrikam"));

        let none = book.refresh(AMARA).expect("Amara has no book");
        assert!(!none.exists, "{none:?}");
        assert_eq!(call("+12065550142", AMARA, &book).status, CallerStatus::Unresolved);

        // One card changes, one goes: the next refresh moves exactly those.
        put(&base, "q7-marisol", Some(&card("q7-marisol", "Marisol Vega-Ortiz", "+1 206 555 0142")));
        put(&base, "q7-dev", None);
        let second = book.refresh(HANNAH).expect("second refresh");
        assert_eq!((second.changed, second.removed, second.contacts), (1, 1, first.contacts - 1), "{second:?}");
        assert_eq!(call("+12065550142", HANNAH, &book).name.as_deref(), Some("Marisol Vega-Ortiz"));
        assert_eq!(call("+13125550177", HANNAH, &book).status, CallerStatus::Unresolved);

        // A server without sync-collection: the ETag listing moves only the changed card.
        let by_etag =
            CardDavBook::new(&CardDavSettings { url: format!("{base}/{{mail}}/contacts/"), ..settings.clone() }, &plan()).expect("client");
        let listed = by_etag.refresh_by_etag(HANNAH).expect("etag refresh");
        assert_eq!((listed.changed, listed.contacts), (second.contacts, second.contacts), "{listed:?}");
        put(&base, "q7-marisol", Some(&card("q7-marisol", "Marisol Vega", "+1 206 555 0142")));
        let changed = by_etag.refresh_by_etag(HANNAH).expect("etag refresh");
        assert_eq!((changed.changed, changed.removed, changed.contacts), (1, 0, second.contacts), "{changed:?}");
        assert_eq!(call("+12065550142", HANNAH, &by_etag).name.as_deref(), Some("Marisol Vega"));

        // The server goes away: the refresh fails, the last copy answers.
        proxy.stop();
        assert!(book.refresh(HANNAH).is_err());
        assert_eq!(call("+12065550142", HANNAH, &book).name.as_deref(), Some("Marisol Vega-Ortiz"));
        put(&base, "q7-marisol", None);
    }
}
