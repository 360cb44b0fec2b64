//! CardDAV address books, one per recipient (RFC 6352), read with one service account and
//! kept in memory: [`CardDavBook::refresh`] asks the server only for what changed since the
//! last refresh (RFC 6578 `sync-collection` with the collection's sync-token; without one,
//! every card is fetched once), applies the changed and removed cards, and swaps in a new
//! index of the recipient's contacts.
//!
//! Consumes [`CardDavSettings`] (URL template with `{mail}`, login, CA file, refresh,
//! timeout); produces per-recipient indexes through [`ContactBook`]. A lookup never waits on
//! the server: a recipient seen for the first time is fetched by the background refresher
//! (their first notification goes out without contacts), a server that is down leaves the
//! last good copy serving, and a recipient without an address book (404) simply has none.
//! Logs name the recipient's address and counts only, never a contact; the password is
//! read when the book is opened and never printed.
//!
//! Bounded: each response is read up to [`MAX_BOOK_BYTES`], a book holds at most
//! [`MAX_CONTACTS`] cards, a card at most `MAX_CARD_BYTES` (a larger or broken card is
//! skipped and counted). Multistatus replies are read with quick-xml; a DTD is refused.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use quick_xml::events::Event;

use super::settings::CardDavSettings;
use super::vcard::{self, MAX_CONTACTS};
use super::{ContactBook, ContactsError, MAX_BOOK_BYTES, book_stem};
use crate::enrich::directory::{DirectoryIndex, Entry};
use crate::phone::DialPlan;

/// The REPORT body asking for every change since `{token}` (empty: everything).
const SYNC_COLLECTION: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:sync-collection xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav">
  <d:sync-token>{token}</d:sync-token>
  <d:sync-level>1</d:sync-level>
  <d:prop><d:getetag/><card:address-data/></d:prop>
</d:sync-collection>"#;

/// The PROPFIND body listing every card's ETag.
const PROPFIND_ETAGS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>"#;

/// The REPORT body fetching the cards `{hrefs}` (`<d:href>…</d:href>` each).
const MULTIGET: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<card:addressbook-multiget xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav">
  <d:prop><d:getetag/><card:address-data/></d:prop>
  {hrefs}
</card:addressbook-multiget>"#;

/// Cards fetched per `addressbook-multiget`.
const MULTIGET_BATCH: usize = 100;

/// What one refresh of one recipient's book did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RefreshReport {
    /// Cards received (new or changed).
    pub changed: usize,
    /// Cards the server reported removed.
    pub removed: usize,
    /// Cards received that could not be read (skipped; the rest of the book is used).
    pub skipped: usize,
    /// Contacts in the book afterwards.
    pub contacts: usize,
    /// Whether the recipient has an address book at all.
    pub exists: bool,
}

/// One recipient's book as last synchronised.
#[derive(Default)]
struct Book {
    sync_token: Option<String>,
    /// Card resource (href) -> its ETag and contacts.
    cards: HashMap<String, Card>,
    index: Option<Arc<DirectoryIndex>>,
}

/// One card resource.
struct Card {
    etag: Option<String>,
    entries: Vec<Entry>,
}

/// Every recipient's CardDAV book, refreshed in the background.
pub struct CardDavBook {
    settings: CardDavSettings,
    plan: DialPlan,
    agent: ureq::Agent,
    authorization: Option<String>,
    books: Mutex<HashMap<String, Book>>,
    /// Recipients asked for but not fetched yet, and the refresher's wake-up.
    wanted: (Mutex<HashSet<String>>, Condvar),
}

impl CardDavBook {
    /// Sets up the HTTP client (TLS roots, timeout, login). Nothing is fetched yet.
    pub fn new(settings: &CardDavSettings, plan: &DialPlan) -> Result<CardDavBook, ContactsError> {
        let problem = |problem: String| ContactsError::CardDav { url: settings.url.clone(), problem };
        let password = settings.password.as_ref().map(|s| s.read()).transpose().map_err(problem)?;
        let authorization = settings.username.as_ref().map(|user| {
            use base64::Engine as _;
            let pair = format!("{user}:{}", password.as_deref().unwrap_or_default());
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
        });
        let agent = agent(settings).map_err(problem)?;
        Ok(CardDavBook {
            settings: settings.clone(),
            plan: plan.clone(),
            agent,
            authorization,
            books: Mutex::new(HashMap::new()),
            wanted: (Mutex::new(HashSet::new()), Condvar::new()),
        })
    }

    /// [`CardDavBook::new`] with a background thread that fetches newly asked-for
    /// recipients at once and refreshes every known book on `refresh`. The thread ends when
    /// the book is dropped.
    pub fn open_refreshing(settings: &CardDavSettings, plan: &DialPlan) -> Result<Arc<CardDavBook>, ContactsError> {
        let book = Arc::new(CardDavBook::new(settings, plan)?);
        let weak = Arc::downgrade(&book);
        std::thread::Builder::new()
            .name("carddav-refresh".into())
            .spawn(move || refresher(weak))
            .map_err(|e| ContactsError::CardDav { url: settings.url.clone(), problem: format!("cannot start the refresher: {e}") })?;
        Ok(book)
    }

    /// The address book URL of a recipient.
    fn url_of(&self, stem: &str) -> String {
        self.settings.url.replace("{mail}", stem)
    }

    /// The recipient's book stem and URL.
    fn target(&self, mail: &str) -> Result<(String, String), ContactsError> {
        let stem = book_stem(mail)
            .ok_or_else(|| ContactsError::CardDav { url: self.settings.url.clone(), problem: "not a plain mail address".into() })?;
        let url = self.url_of(&stem);
        Ok((stem, url))
    }

    /// Fetches what changed in the recipient's book since the last refresh and swaps in the
    /// new index: by sync-token, or by ETag listing ([`CardDavBook::refresh_by_etag`]) when
    /// the server does not offer `sync-collection`. On any error the last good copy stays.
    pub fn refresh(&self, mail: &str) -> Result<RefreshReport, ContactsError> {
        let (stem, url) = self.target(mail)?;
        let token = self.lock_books().get(&stem).and_then(|b| b.sync_token.clone());
        let body = |token: Option<&str>| SYNC_COLLECTION.replace("{token}", &quick_xml::escape::escape(token.unwrap_or_default()));
        let reply = match self.send("REPORT", &url, body(token.as_deref()))? {
            // The token expired (RFC 6578 valid-sync-token): start over with everything.
            Reply::Refused(text) if token.is_some() && text.contains("valid-sync-token") => self.send("REPORT", &url, body(None))?,
            other => other,
        };
        match reply {
            Reply::Multistatus(changes) => Ok(self.store(stem, changes, token.is_none())),
            Reply::NotFound => Ok(self.store_absent(stem)),
            Reply::Refused(_) => self.refresh_by_etag(mail),
        }
    }

    /// Refreshes the recipient's book by listing every card's ETag (PROPFIND) and fetching
    /// only the new and changed cards (`addressbook-multiget`), for servers without
    /// `sync-collection`.
    pub fn refresh_by_etag(&self, mail: &str) -> Result<RefreshReport, ContactsError> {
        let (stem, url) = self.target(mail)?;
        let listed = match self.send("PROPFIND", &url, PROPFIND_ETAGS.to_owned())? {
            Reply::Multistatus(listed) => listed,
            Reply::NotFound => return Ok(self.store_absent(stem)),
            Reply::Refused(_) => return Err(ContactsError::CardDav { url, problem: "the server refused to list the address book".into() }),
        };
        let known: HashMap<String, Option<String>> = self
            .lock_books()
            .get(&stem)
            .map(|b| b.cards.iter().map(|(href, card)| (href.clone(), card.etag.clone())).collect())
            .unwrap_or_default();
        let (fetch, gone) = etag_changes(&known, &listed.responses);
        let mut changes = Multistatus {
            responses: gone.into_iter().map(|href| Response { href, gone: true, ..Response::default() }).collect(),
            ..Multistatus::default()
        };
        for batch in fetch.chunks(MULTIGET_BATCH) {
            let hrefs: String = batch.iter().map(|h| format!("<d:href>{}</d:href>", quick_xml::escape::escape(h.as_str()))).collect();
            match self.send("REPORT", &url, MULTIGET.replace("{hrefs}", &hrefs))? {
                Reply::Multistatus(cards) => changes.responses.extend(cards.responses),
                _ => return Err(ContactsError::CardDav { url, problem: "the server refused an addressbook-multiget REPORT".into() }),
            }
        }
        Ok(self.store(stem, changes, false))
    }

    /// Applies changes to the recipient's book (emptied first when `full`) and swaps in its
    /// new index.
    fn store(&self, stem: String, changes: Multistatus, full: bool) -> RefreshReport {
        let mut books = self.lock_books();
        let book = books.entry(stem).or_default();
        if full {
            book.cards.clear();
        }
        apply(book, changes, &self.plan)
    }

    /// Records that the recipient has no address book.
    fn store_absent(&self, stem: String) -> RefreshReport {
        self.lock_books().insert(stem, Book::default());
        RefreshReport::default()
    }

    fn lock_books(&self) -> std::sync::MutexGuard<'_, HashMap<String, Book>> {
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One WebDAV request (`Depth: 1`) and its reply, read up to [`MAX_BOOK_BYTES`].
    fn send(&self, method: &str, url: &str, body: String) -> Result<Reply, ContactsError> {
        let problem = |problem: String| ContactsError::CardDav { url: url.to_owned(), problem };
        let mut request = ureq::http::Request::builder()
            .method(ureq::http::Method::from_bytes(method.as_bytes()).map_err(|e| problem(e.to_string()))?)
            .uri(url)
            .header("Content-Type", "application/xml; charset=utf-8")
            .header("Depth", "1");
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let request = request.body(body).map_err(|e| problem(e.to_string()))?;
        let mut response = self.agent.run(request).map_err(|e| problem(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response.body_mut().with_config().limit(MAX_BOOK_BYTES).read_to_vec().map_err(|e| problem(e.to_string()))?;
        match status {
            207 => parse_multistatus(&bytes).map(Reply::Multistatus).map_err(problem),
            404 => Ok(Reply::NotFound),
            401 => Err(problem("the service account was refused (401): check username and password".into())),
            400 | 403 | 405 | 409 | 501 => Ok(Reply::Refused(String::from_utf8_lossy(&bytes).into_owned())),
            other => Err(problem(format!("the server answered {other} to {method}"))),
        }
    }

    /// Refreshes every recipient asked for so far (known ones and new ones); logs counts.
    fn refresh_all(&self, known_too: bool) {
        let mut stems: Vec<String> =
            std::mem::take(&mut *self.wanted.0.lock().unwrap_or_else(PoisonError::into_inner)).into_iter().collect();
        if known_too {
            stems.extend(self.lock_books().keys().cloned());
        }
        stems.sort();
        stems.dedup();
        for stem in stems {
            match self.refresh(&stem) {
                Ok(r) => {
                    tracing::debug!(recipient = %stem, changed = r.changed, removed = r.removed, skipped = r.skipped, contacts = r.contacts, "contacts refreshed")
                }
                Err(error) => tracing::warn!(recipient = %stem, error = %error, "contacts refresh failed; the last good copy is used"),
            }
        }
    }
}

impl ContactBook for CardDavBook {
    fn of(&self, mail: &str) -> Option<Arc<DirectoryIndex>> {
        let stem = book_stem(mail)?;
        if let Some(book) = self.lock_books().get(&stem) {
            return book.index.clone();
        }
        self.wanted.0.lock().unwrap_or_else(PoisonError::into_inner).insert(stem);
        self.wanted.1.notify_one();
        None
    }
}

/// The background loop: new recipients at once, everyone on `refresh`.
fn refresher(book: Weak<CardDavBook>) {
    let mut next_full = Instant::now();
    loop {
        let Some(strong) = book.upgrade() else { return };
        let full = Instant::now() >= next_full;
        strong.refresh_all(full);
        if full {
            next_full = Instant::now() + strong.settings.refresh;
        }
        let wait = next_full.saturating_duration_since(Instant::now()).min(Duration::from_secs(60));
        let guard = strong.wanted.0.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_empty() {
            drop(strong.wanted.1.wait_timeout(guard, wait).unwrap_or_else(PoisonError::into_inner));
        }
    }
}

/// A WebDAV reply.
enum Reply {
    Multistatus(Multistatus),
    /// No such collection: the recipient has no address book.
    NotFound,
    /// The request was refused (its body, which may name the precondition).
    Refused(String),
}

/// Which listed cards to fetch (new or changed ETag) and which known ones are gone. A
/// listed entry without an ETag, or ending in `/` (the collection itself), is neither.
fn etag_changes(known: &HashMap<String, Option<String>>, listed: &[Response]) -> (Vec<String>, Vec<String>) {
    let listed: HashMap<&str, &str> =
        listed.iter().filter(|r| !r.href.ends_with('/')).filter_map(|r| Some((r.href.as_str(), r.etag.as_deref()?))).collect();
    let mut fetch: Vec<String> = listed
        .iter()
        .filter(|(href, etag)| known.get(**href).is_none_or(|old| old.as_deref() != Some(**etag)))
        .map(|(href, _)| (*href).to_owned())
        .collect();
    let mut gone: Vec<String> = known.keys().filter(|href| !listed.contains_key(href.as_str())).cloned().collect();
    fetch.sort();
    gone.sort();
    (fetch, gone)
}

/// Applies a multistatus to a book and rebuilds its index; counts what happened.
fn apply(book: &mut Book, multistatus: Multistatus, plan: &DialPlan) -> RefreshReport {
    let mut report = RefreshReport { exists: true, ..RefreshReport::default() };
    for change in multistatus.responses {
        match change.card {
            None if change.gone => report.removed += usize::from(book.cards.remove(&change.href).is_some()),
            None => {}
            Some(card) => match vcard::parse(&card) {
                Ok(entries) if book.cards.len() < MAX_CONTACTS || book.cards.contains_key(&change.href) => {
                    book.cards.insert(change.href, Card { etag: change.etag, entries });
                    report.changed += 1;
                }
                _ => report.skipped += 1,
            },
        }
    }
    book.sync_token = multistatus.sync_token;
    let entries: Vec<Entry> = book.cards.values().flat_map(|c| &c.entries).take(MAX_CONTACTS).cloned().collect();
    report.contacts = entries.len();
    book.index = Some(Arc::new(super::index(entries, plan)));
    report
}

/// A parsed multistatus reply.
#[derive(Debug, Default, PartialEq)]
struct Multistatus {
    responses: Vec<Response>,
    sync_token: Option<String>,
}

/// One `<response>`: a card resource, its vCard text if sent, whether it is gone (404).
#[derive(Debug, Default, PartialEq)]
struct Response {
    href: String,
    etag: Option<String>,
    card: Option<String>,
    gone: bool,
}

/// Reads a `207 Multi-Status` body (namespace prefixes ignored; DTDs refused).
fn parse_multistatus(bytes: &[u8]) -> Result<Multistatus, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the reply is not UTF-8".to_owned())?;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut out = Multistatus::default();
    let mut path: Vec<String> = Vec::new();
    let mut current: Option<Response> = None;
    let mut text_buf = String::new();
    loop {
        let event = reader.read_event().map_err(|e| format!("malformed reply at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if name == "response" {
                    current = Some(Response::default());
                }
                path.push(name);
                text_buf.clear();
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                finish_element(&name, &path, std::mem::take(&mut text_buf), &mut current, &mut out);
            }
            Event::Text(t) => text_buf.push_str(&t.decode().map_err(|e| format!("malformed reply: {e}"))?),
            Event::CData(t) => text_buf.push_str(&t.decode().map_err(|e| format!("malformed reply: {e}"))?),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| format!("malformed reply: {e}"))? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| format!("malformed reply: {e}"))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| format!("undefined entity `&{name};`"))?
                            .to_owned()
                    }
                };
                text_buf.push_str(&resolved);
            }
            Event::DocType(_) => return Err("the reply holds a DTD, which is refused".into()),
            Event::Eof => break,
            Event::Empty(_) | Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
        if out.responses.len() > 2 * MAX_CONTACTS {
            return Err(format!("more than {} responses", 2 * MAX_CONTACTS));
        }
    }
    Ok(out)
}

/// Records the text of a closed element where it belongs.
fn finish_element(name: &str, parents: &[String], text: String, current: &mut Option<Response>, out: &mut Multistatus) {
    let parent = parents.last().map(String::as_str);
    match (name, parent, current.as_mut()) {
        ("response", _, _) => out.responses.extend(current.take().filter(|r| !r.href.is_empty())),
        ("href", Some("response"), Some(r)) => r.href = text.trim().to_owned(),
        ("status", Some("response"), Some(r)) => r.gone = text.split_whitespace().nth(1) == Some("404"),
        ("address-data", _, Some(r)) => r.card = Some(text),
        ("getetag", _, Some(r)) => r.etag = Some(text.trim().to_owned()),
        ("sync-token", Some("multistatus"), _) => out.sync_token = Some(text.trim().to_owned()),
        _ => {}
    }
}

/// The HTTP client: TLS through rustls with ring, trusting the CA file or the system's
/// roots; no redirects (a book must not move to another host); errors as values.
fn agent(settings: &CardDavSettings) -> Result<ureq::Agent, String> {
    use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
    let roots = match &settings.ca_file {
        Some(path) => ca_file_roots(path)?,
        None => {
            let native = rustls_native_certs::load_native_certs().certs;
            native.iter().map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned()).collect()
        }
    };
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    let config = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(settings.timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        // REPORT is WebDAV, not one of the methods HTTP/1.1 itself defines.
        .allow_non_standard_methods(true)
        .user_agent(concat!("callnote/", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(config.into())
}

/// The certificates of a PEM CA file.
fn ca_file_roots(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: cannot read the CA file: {e}", path.display()))?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the CA file", path.display()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multistatus_with_cards_removals_and_token() {
        let xml = r#"<?xml version="1.0"?>
<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
 <response><href>/h/contacts/a.vcf</href><propstat><prop><getetag>"1"</getetag>
  <C:address-data>BEGIN:VCARD&#13;
FN:A &amp; B&#13;
END:VCARD</C:address-data></prop><status>HTTP/1.1 200 OK</status></propstat></response>
 <response><href>/h/contacts/b.vcf</href><status>HTTP/1.1 404 Not Found</status></response>
 <sync-token>http://radicale.org/ns/sync/abc</sync-token>
</multistatus>"#;
        let m = parse_multistatus(xml.as_bytes()).expect("parses");
        assert_eq!(m.sync_token.as_deref(), Some("http://radicale.org/ns/sync/abc"));
        assert_eq!(m.responses.len(), 2);
        assert_eq!(m.responses[0].card.as_deref(), Some("BEGIN:VCARD\r\nFN:A & B\r\nEND:VCARD"));
        assert!(!m.responses[0].gone && m.responses[1].gone && m.responses[1].card.is_none());
    }

    #[test]
    fn a_dtd_or_an_unknown_entity_is_refused() {
        let dtd = r#"<!DOCTYPE m [<!ENTITY x "y">]><multistatus xmlns="DAV:"/>"#;
        assert!(parse_multistatus(dtd.as_bytes()).is_err_and(|e| e.contains("DTD")));
        let entity = r#"<multistatus xmlns="DAV:"><sync-token>&x;</sync-token></multistatus>"#;
        assert!(parse_multistatus(entity.as_bytes()).is_err_and(|e| e.contains("&x;")));
    }

    #[test]
    fn etag_listing_fetches_new_and_changed_cards_and_drops_missing_ones() {
        let listed = |href: &str, etag: Option<&str>| Response { href: href.into(), etag: etag.map(Into::into), ..Response::default() };
        let known: HashMap<String, Option<String>> = [("/b/same.vcf", "\"1\""), ("/b/changed.vcf", "\"1\""), ("/b/gone.vcf", "\"1\"")]
            .map(|(h, e)| (h.to_owned(), Some(e.to_owned())))
            .into();
        let reply = [
            listed("/b/", Some("\"c\"")),
            listed("/b/same.vcf", Some("\"1\"")),
            listed("/b/changed.vcf", Some("\"2\"")),
            listed("/b/new.vcf", Some("\"1\"")),
            listed("/b/no-etag.vcf", None),
        ];
        let (fetch, gone) = etag_changes(&known, &reply);
        assert_eq!(fetch, ["/b/changed.vcf", "/b/new.vcf"]);
        assert_eq!(gone, ["/b/gone.vcf"]);
    }
}
