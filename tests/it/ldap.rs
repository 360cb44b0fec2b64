//! The LDAP directory source against a real OpenLDAP slapd (`scripts/ldap-server.sh`, started
//! by `scripts/test.sh`): the fixture directory gives exactly the LDIF file's answers; TLS
//! (ldaps and StartTLS) with the test CA, refusals of a wrong CA, host name or password;
//! paging past the server's size limit; crafted caller ids find nothing; `directory-check`;
//! the directory's threads (one worker, none per live query, none left after a drop).
//! Outages, refreshes and the live query are in [`outage`]. Without the server's variables
//! these tests are skipped (see `common::server_env`).

use std::path::PathBuf;
use std::time::Duration;

use callnote::config::{LdapSettings, SecretSource};
use callnote::enrich::directory::ldap::{
    LdapDirectory, LdapError, LdapOptions, ServerKind, check_entries, default_filter, directory_check,
};
use callnote::enrich::directory::{self, AttributeMap, Directory, DirectoryIndex, Value};
use callnote::enrich::{enrich, resolve_party};
use callnote::event::{CallerStatus, Party, PhoneLabel, Recipient};
use callnote::intake::{IntakeOptions, Parsed, read_file};
use callnote::phone::DialPlan;

use crate::common::{fixture, server_env};

mod outage;
mod tls_names;

/// The fixtures' dial plan (spec §6.4): US, outside line 9, 4-digit extensions.
fn plan() -> DialPlan {
    DialPlan::new("US", Some("9"), 4, 7).expect("US is a region")
}

fn ldif() -> DirectoryIndex {
    directory::load_file(&fixture("directory.ldif"), &plan()).expect("the fixture LDIF loads")
}

fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is set by scripts/ldap-server.sh start"))
}

/// Settings for the server at `$url_var`, bound as the service account, default filter.
fn settings(url_var: &str) -> Option<LdapSettings> {
    let url = server_env(url_var)?;
    callnote::deliver::install_crypto_provider();
    Some(LdapSettings {
        url,
        bind_dn: Some(env("LDAP_BIND_DN")),
        bind_password: Some(SecretSource::Env("LDAP_BIND_PW".into())),
        base_dn: env("LDAP_BASE"),
        filter: None,
        starttls: false,
        ca_file: None,
        refresh: Duration::from_secs(900),
        connect_timeout: Duration::from_secs(5),
        search_timeout: Duration::from_secs(10),
        snapshot: None,
    })
}

fn party(raw: &str, directory: &dyn Directory) -> Party {
    let mut party = Party::from_raw(Some(raw.to_owned()));
    resolve_party(&mut party, &plan(), Some(directory));
    party
}

fn resolved_name(raw: &str, directory: &dyn Directory) -> Option<String> {
    let party = party(raw, directory);
    assert_eq!(party.status, CallerStatus::Resolved, "{raw}: {party:?}");
    party.name
}

/// Syncs again now, from a synchronous test.
fn block_on_refresh(ldap: &LdapDirectory) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(ldap.refresh_now()).unwrap_or_else(|e| panic!("{}", e.with_causes()));
}

/// Every header and OCS fixture at the top of `tests/fixtures`.
fn fixture_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture(""))
        .expect("fixtures folder")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_fixture_resolves_through_ldap_exactly_as_through_the_ldif_file() {
    let Some(settings) = settings("LDAP_URL") else { return };
    let ldap = LdapDirectory::open_blocking(&settings, &plan()).unwrap_or_else(|e| panic!("{e:#}"));
    let file = ldif();
    let served = ldap.index().expect("synced");
    assert_eq!((served.len(), file.len()), (31, 31));
    assert_eq!(served.warnings(), file.warnings(), "the same values are unreadable or shared");

    // every fixture event, enriched through each directory: the same template context
    let mut tally = std::collections::BTreeMap::new();
    for path in fixture_files() {
        let Parsed::Event(event) = read_file(&path, &IntakeOptions::default()).unwrap_or_else(|e| panic!("{e:#}")) else {
            continue;
        };
        let (mut through_file, mut through_ldap) = (event.clone(), event);
        enrich(&mut through_file, &plan(), Some(&file));
        enrich(&mut through_ldap, &plan(), Some(ldap.as_ref()));
        let json = |e| serde_json::to_value(e).expect("serializable");
        assert_eq!(json(&through_ldap), json(&through_file), "{}", path.display());
        for p in std::iter::once(&through_ldap.caller).chain(through_ldap.target.as_ref()) {
            *tally.entry(format!("{:?}", p.status)).or_insert(0) += 1;
        }
    }
    let tally: Vec<(String, i32)> = tally.into_iter().collect();
    let count = |s: &str| tally.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
    assert_eq!((count("Resolved"), count("Ambiguous"), count("Unresolved"), count("Anonymous")), (26, 1, 4, 2), "{tally:?}");

    // every number, extension and address stored in the directory, as a caller id
    let mut values = 0;
    for entry in directory::read_entries(&fixture("directory.ldif")).expect("LDIF") {
        for (name, value) in &entry.attributes {
            let Value::Text(text) = value else { continue };
            if AttributeMap::default().specs().iter().any(|s| s.name.eq_ignore_ascii_case(name) && s.role.label().is_some()) {
                assert_eq!(party(text, ldap.as_ref()), party(text, &file), "{}: {name} `{text}`", entry.dn);
                let recipient = Recipient { address: Some(text.clone()), sip: Some(text.clone()), ..Recipient::default() };
                assert_eq!(ldap.find_recipient(&recipient).ok(), file.find_recipient(&recipient).ok(), "{text}");
                values += 1;
            }
        }
    }
    assert_eq!(values, 141, "phone, SIP, mail and proxy values compared");
}

#[test]
fn ldaps_and_starttls_with_the_test_ca() {
    let Some(pair) = tls_pair("LDAPS_URL", "LDAP_URL") else {
        return;
    };
    for settings in pair {
        let ldap = LdapDirectory::open_blocking(&settings, &plan()).unwrap_or_else(|e| panic!("{}: {e:#}", settings.url));
        let health = ldap.health();
        let sync = health.last_sync.expect("synced");
        assert_eq!((sync.entries, sync.people, sync.server), (31, 31, ServerKind::Other), "{}", settings.url);
        assert_eq!(sync.filter, default_filter(ServerKind::Other, &AttributeMap::default()));
        assert_eq!(resolved_name("+12895550147", ldap.as_ref()).as_deref(), Some("Priya Raman"));
    }
}

/// The same server over `ldaps://` (`ldaps_var`) and over STARTTLS (`starttls_var`), both
/// trusting the test CA; `None` when the test is skipped.
fn tls_pair(ldaps_var: &str, starttls_var: &str) -> Option<[LdapSettings; 2]> {
    let (mut ldaps, mut starttls) = (settings(ldaps_var)?, settings(starttls_var)?);
    ldaps.ca_file = Some(env("LDAP_CA").into());
    starttls.ca_file = Some(env("LDAP_CA").into());
    starttls.starttls = true;
    Some([ldaps, starttls])
}

/// Opens a directory that must be refused, returning the error and its `{:#}` chain.
fn refused(settings: &LdapSettings) -> (LdapError, String) {
    match LdapDirectory::open_blocking(settings, &plan()) {
        Ok(_) => panic!("{}: accepted", settings.url),
        Err(e) => {
            let chain = e.with_causes();
            (e, chain)
        }
    }
}

#[test]
fn a_wrong_ca_or_host_name_is_refused() {
    let (Some(ldaps), Some(plain)) = (settings("LDAPS_URL"), settings("LDAP_URL")) else {
        return;
    };
    let wrong_host = settings("LDAPS_WRONG_HOST_URL").expect("set with LDAPS_URL");
    let ca = |mut s: LdapSettings, var: &str, starttls: bool| {
        s.ca_file = Some(env(var).into());
        s.starttls = starttls;
        s
    };
    let cases = [
        (ca(ldaps.clone(), "LDAP_WRONG_CA", false), "invalid peer certificate: UnknownIssuer"),
        (ca(plain, "LDAP_WRONG_CA", true), "invalid peer certificate: UnknownIssuer"),
        (ca(wrong_host.clone(), "LDAP_CA", false), "invalid peer certificate: certificate not valid for name \"127.0.0.2\""),
        // no CA file: the system roots, which do not know the test CA
        (ldaps.clone(), "invalid peer certificate: UnknownIssuer"),
    ];
    for (settings, reason) in cases {
        let (error, chain) = refused(&settings);
        assert!(matches!(error, LdapError::Certificate { .. }), "{chain}");
        assert!(!error.is_transient(), "{chain}");
        let url = settings.url.trim_end_matches('/');
        assert!(chain.starts_with(&format!("{url}: TLS certificate of the server refused: ")), "{chain}");
        assert!(chain.contains(reason), "{chain}");
    }
}

#[test]
fn a_wrong_password_is_a_clear_error_that_never_shows_the_password() {
    let Some(mut settings) = settings("LDAP_URL") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("password");
    std::fs::write(&secret, "not-the-Password-42\n").expect("written");
    settings.bind_password = Some(SecretSource::File(secret));
    let (error, chain) = refused(&settings);
    assert_eq!(chain, format!("{}: bind as `{}` refused: invalidCredentials (result code 49)", settings.url, env("LDAP_BIND_DN")));
    assert!(!error.is_transient());
    assert!(!format!("{error:?}").contains("not-the-Password-42"));

    settings.bind_password = Some(SecretSource::Env("CALLNOTE_TEST_UNSET_VARIABLE".into()));
    let (_, chain) = refused(&settings);
    assert_eq!(chain, "directory.bind_password: environment variable `CALLNOTE_TEST_UNSET_VARIABLE` is not set");
}

#[tokio::test]
async fn paging_reads_past_the_server_size_limit() {
    let Some(mut settings) = settings("LDAP_PAGED_URL") else {
        return;
    };
    settings.base_dn = env("LDAP_PAGED_BASE");
    let count: usize = env("LDAP_PAGED_COUNT").parse().expect("a number");
    let limit: usize = env("LDAP_PAGED_SIZELIMIT").parse().expect("a number");
    assert!(count > limit, "the bulk suffix must hold more people than one search may return");

    // the limit is real: a plain search stops at it
    let (conn, mut plain) = ldap3::LdapConnAsync::new(&settings.url).await.expect("connects");
    tokio::spawn(async move { conn.drive().await });
    plain.simple_bind(&env("LDAP_BIND_DN"), &env("LDAP_BIND_PW")).await.expect("bind").success().expect("bound");
    let result = plain.search(&settings.base_dn, ldap3::Scope::Subtree, "(objectClass=inetOrgPerson)", vec!["uid"]).await.expect("search");
    assert_eq!((result.0.len(), result.1.rc), (limit, 4), "sizeLimitExceeded after {limit}");

    let ldap = LdapDirectory::start(&settings, &plan()).await.unwrap_or_else(|e| panic!("{e:#}"));
    let sync = ldap.health().last_sync.expect("synced");
    assert_eq!((sync.entries, sync.people), (count, count));
    let last = count - 1;
    let names =
        ["Ada", "Ben", "Chloe", "Dev", "Emil", "Fatima", "Goran", "Hana", "Ivan", "Jun", "Kofi", "Lena", "Mika", "Nora", "Omar", "Pia"];
    let surnames = ["Abbott", "Baker", "Chen", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito", "Jensen", "Kowalski", "Lopez"];
    let expected = format!("{} {} {last}", names[last % 16], surnames[(last / 16) % 12]);
    let number = format!("+1425{:03}{:04}", 300 + last / 10_000, last % 10_000);
    assert_eq!(resolved_name(&number, ldap.as_ref()), Some(expected));
    let mobile = party(&format!("+1206{:03}{:04}", 300 + (last - 1) / 10_000, (last - 1) % 10_000), ldap.as_ref());
    assert_eq!((mobile.label, mobile.matched_attribute.as_deref()), (Some(PhoneLabel::Mobile), Some("mobile")));
}

#[test]
fn crafted_caller_ids_find_nothing_and_break_nothing() {
    let Some(settings) = settings("LDAP_URL") else { return };
    // with the live query on, index misses reach the server: escaped, matched by an index
    let options = LdapOptions { live_query: Some(Duration::from_secs(5)), ..LdapOptions::default() };
    let ldap = LdapDirectory::open_blocking_with(&settings, &plan(), options).unwrap_or_else(|e| panic!("{e:#}"));
    let crafted = [
        "*",
        "*)(objectClass=*",
        "+1425*",
        ")(|(telephoneNumber=*))",
        "(|(mail=*))",
        "\\2a",
        "4567)(ipPhone=*",
        "sip:*@contoso.com",
        "*@contoso.com",
        "hannah.whitaker@contoso.com)(mail=*",
        "sip:*)(objectClass=*)@contoso.com",
        "sip:kwame*@contoso.com",
        "sip:+1425*@contoso.com;user=phone",
        "\u{0}",
    ];
    for raw in crafted {
        let p = party(raw, ldap.as_ref());
        assert!(matches!(p.status, CallerStatus::Unresolved | CallerStatus::Anonymous), "{raw}: {:?}", p.status);
        assert_eq!((p.name, p.candidates.len()), (None, 0), "{raw}");
        let recipient = Recipient { address: Some(raw.into()), sip: Some(raw.into()), eum_proxy: Some(raw.into()), ..Recipient::default() };
        assert_eq!(ldap.find_recipient(&recipient).expect("in memory"), None, "{raw}");
    }
    // nothing was broken: the index and the server still answer
    assert_eq!(resolved_name("+12895550147", ldap.as_ref()).as_deref(), Some("Priya Raman"));
    assert_eq!(ldap.index().expect("synced").len(), 31);
    let asked = ldap.health().live_queries;
    // the ones that normalize to a SIP address or number (sip:…@contoso.com, …@contoso.com)
    assert_eq!(asked, 4, "crafted values the server was asked about, escaped, finding nobody");
    block_on_refresh(&ldap);

    // a filter in the configuration is checked before anything is sent
    let mut bad = settings.clone();
    bad.filter = Some("(objectClass=inetOrgPerson".into());
    let (error, chain) = refused(&bad);
    assert!(matches!(error, LdapError::Filter(_)));
    assert_eq!(chain, "directory.filter `(objectClass=inetOrgPerson` is not a valid LDAP filter");
}

#[tokio::test]
async fn directory_check_counts_and_reports_what_an_admin_must_clean_up() {
    let Some(settings) = settings("LDAP_URL") else { return };
    let report = directory_check(&settings, &plan()).await.unwrap_or_else(|e| panic!("{e:#}"));
    let entries = directory::read_entries(&fixture("directory.ldif")).expect("LDIF");
    let from_file = check_entries("directory.ldif", entries, &plan(), AttributeMap::default());
    assert_eq!((report.entries, report.people, report.phone_values), (31, 31, 62));
    assert_eq!((from_file.entries, from_file.people, from_file.phone_values), (33, 31, 62));
    assert_eq!((&report.unreadable, &report.shared), (&from_file.unreadable, &from_file.shared));
    assert_eq!((report.unreadable.len(), report.shared.len()), (3, 1));
    let text = report.to_string();
    for line in [
        format!("source: {}", settings.url.trim_end_matches('/')),
        "server: LDAP (not Active Directory)".to_owned(),
        "entries: 31".to_owned(),
        "people indexed: 31 (0 without any number or address left out)".to_owned(),
        "phone values: 62".to_owned(),
        "values that do not read under the dial plan: 3".to_owned(),
        "  uid=cfraser,ou=People,dc=contoso,dc=com: otherMobile `07700 900456` does not read under the US dial plan; it will never match".to_owned(),
        "numbers held by several entries: 1".to_owned(),
        "  number +14255550100 is held by 2 entries: uid=ochen,ou=People,dc=contoso,dc=com (telephoneNumber), uid=dbrooks,ou=People,dc=contoso,dc=com (otherTelephone); lookups of it are ambiguous".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
    }
    assert!(!report.is_clean());
}

const THREADS_CHILD: &str = "CALLNOTE_TEST_LDAP_THREADS_CHILD";

/// The names of this process's threads, from /proc, sorted.
fn thread_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .map(|task| {
            let comm = task.expect("a task").path().join("comm");
            std::fs::read_to_string(comm).map(|n| n.trim_end().to_owned()).unwrap_or_default()
        })
        .collect();
    names.sort();
    names
}

fn count(names: &[String], name: &str) -> usize {
    names.iter().filter(|n| *n == name).count()
}

/// Run alone in a child process by the test below, so that the threads it counts are its own
/// (the other tests of this binary run in parallel threads of the parent).
#[test]
#[ignore = "helper: started as a child process by live_queries_start_no_thread_per_call_and_a_dropped_directory_leaves_none"]
fn threads_child() {
    if std::env::var(THREADS_CHILD).is_err() {
        return;
    }
    let mut settings = settings("LDAP_URL").expect("the parent checked");
    let plan = plan();
    let baseline = thread_names();

    // Many misses, each a number never asked before, so each goes to the server.
    settings.refresh = Duration::from_secs(3600);
    let options = LdapOptions { live_query: Some(Duration::from_secs(10)), ..LdapOptions::default() };
    let ldap = LdapDirectory::open_refreshing(&settings, &plan, options.clone()).unwrap_or_else(|e| panic!("{e:#}"));
    let miss = |n: usize| {
        let mut party = Party::from_raw(Some(format!("+1312555{:04}", 1000 + n)));
        callnote::phone::normalize_party(&mut party, &plan);
        assert_eq!(ldap.lookup(&party).expect("in memory"), directory::Lookup::Unresolved);
    };
    miss(0);
    let after_first = thread_names();
    assert_eq!(count(&after_first, "ldap"), count(&baseline, "ldap") + 1, "one worker: {after_first:?}");
    for n in 1..=60 {
        miss(n);
    }
    let after_many = thread_names();
    assert_eq!(ldap.health().live_queries, 61, "every miss asked the server");
    assert!(after_many.len() <= after_first.len(), "60 more live queries, no more threads: {after_first:?} -> {after_many:?}");
    drop(ldap);
    assert_eq!(thread_names(), baseline, "the dropped directory left no thread behind");

    // A refresher that runs every second stops with its directory.
    settings.refresh = Duration::from_secs(1);
    let ldap = LdapDirectory::open_refreshing(&settings, &plan, options).unwrap_or_else(|e| panic!("{e:#}"));
    let first = ldap.health().origin;
    let mut refreshed = false;
    for _ in 0..600 {
        if ldap.health().origin != first {
            refreshed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(refreshed, "the refresher synced again: {:?}", ldap.health());
    drop(ldap);
    assert_eq!(thread_names(), baseline, "the refresher's worker ended with the directory");
    println!("threads: {} at start, {} after the first live query, {} after 60 more", baseline.len(), after_first.len(), after_many.len());
}

#[test]
fn live_queries_start_no_thread_per_call_and_a_dropped_directory_leaves_none() {
    if settings("LDAP_URL").is_none() {
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["ldap::threads_child", "--exact", "--ignored", "--test-threads=1", "--nocapture"])
        .env(THREADS_CHILD, "1")
        .output()
        .expect("the child runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed") && stdout.contains("threads: "), "{stdout}");
}
