//! Outages and changes on the separate outage instance (`LDAP_OUTAGE_URL`): stopped, frozen
//! and restarted by `scripts/ldap-server.sh outage-*`, people added and removed as rootdn. One
//! test at a time holds the instance ([`OutageGuard`]), so the other LDAP tests, which use the
//! main instance, run in parallel undisturbed.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use callnote::config::{Config, LdapSettings};
use callnote::enrich::directory::ldap::{LdapDirectory, LdapError, LdapOptions, Origin};
use callnote::enrich::directory::{self, Directory, DirectoryError};
use callnote::event::{CallerStatus, Party, PhoneLabel};
use callnote::pipeline::{Outcome, Pipeline};

use super::{env, ldif, party, plan, resolved_name, settings};
use crate::common::fixture;

static OUTAGE: Mutex<()> = Mutex::new(());

/// Holds the outage instance for one test and brings it back up however the test ends.
struct OutageGuard(#[allow(dead_code)] MutexGuard<'static, ()>);

impl OutageGuard {
    fn take() -> OutageGuard {
        OutageGuard(OUTAGE.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Drop for OutageGuard {
    fn drop(&mut self) {
        let _ = server_script("outage-thaw", false);
        let _ = server_script("outage-start", false);
    }
}

fn server_script(command: &str, must_succeed: bool) -> bool {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ldap-server.sh");
    let output = std::process::Command::new("bash").arg(script).arg(command).output().expect("bash runs");
    if must_succeed {
        assert!(output.status.success(), "ldap-server.sh {command}: {}", String::from_utf8_lossy(&output.stderr));
    }
    output.status.success()
}

fn outage_settings() -> Option<LdapSettings> {
    let mut s = settings("LDAP_OUTAGE_URL")?;
    s.refresh = Duration::from_secs(1);
    s.connect_timeout = Duration::from_secs(2);
    s.search_timeout = Duration::from_secs(2);
    Some(s)
}

/// A rootdn session on the outage instance, and the DN `uid=<uid>` under People (removed
/// first, in case an interrupted run left it).
async fn admin_session(settings: &LdapSettings, uid: &str) -> (ldap3::Ldap, String) {
    let (conn, mut admin) = ldap3::LdapConnAsync::new(&settings.url).await.expect("connects");
    tokio::spawn(async move { conn.drive().await });
    let bound = admin.simple_bind(&env("LDAP_ROOT_DN"), &env("LDAP_ROOT_PW")).await.expect("bind");
    bound.success().expect("rootdn bound");
    let dn = format!("uid={uid},ou=People,{}", env("LDAP_BASE"));
    let _ = admin.delete(&dn).await;
    (admin, dn)
}

/// Adds a person (inetOrgPerson with the AD phone attributes) named `name`.
async fn add_person(admin: &mut ldap3::Ldap, dn: &str, name: &'static str, phones: &[(&'static str, &'static str)]) {
    let uid = dn.trim_start_matches("uid=").split(',').next().expect("uid=… DN").to_owned();
    let surname = name.rsplit(' ').next().expect("a name");
    let one = |v: &str| HashSet::from([v.to_owned()]);
    let mut attributes: Vec<(String, HashSet<String>)> = vec![
        ("objectClass".into(), HashSet::from(["inetOrgPerson".to_owned(), "adPhoneExtras".to_owned()])),
        ("uid".into(), one(&uid)),
        ("cn".into(), one(name)),
        ("sn".into(), one(surname)),
        ("displayName".into(), one(name)),
    ];
    attributes.extend(phones.iter().map(|(attr, value)| ((*attr).to_owned(), one(value))));
    admin.add(dn, attributes).await.expect("add").success().expect("added");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_at_start_gives_directory_unavailable_the_mail_still_goes_out_then_it_recovers() {
    let Some(settings) = outage_settings() else { return };
    let _guard = OutageGuard::take();
    server_script("outage-stop", true);

    let ldap = LdapDirectory::start(&settings, &plan()).await.unwrap_or_else(|e| panic!("a dead server is not a start failure: {e:#}"));
    let health = ldap.health();
    assert_eq!((health.origin, health.people, health.consecutive_failures), (Origin::None, 0, 1));
    let url = settings.url.trim_end_matches('/');
    let Err(DirectoryError::Unavailable(why)) = ldap.lookup(&Party::from_raw(Some("+12895550147".into()))) else {
        panic!("no index, yet an answer")
    };
    assert!(why.starts_with(&format!("{url}: no directory data yet: {url}: cannot connect")), "{why}");

    // the notification is still prepared, with the number
    let config = Config { dialplan: plan(), ..Config::default() };
    let pipeline = Pipeline::new(config, callnote::render::Templates::builtin(), Some(ldap.clone()), None);
    let Outcome::Prepared(prepared) = pipeline.prepare_file(&fixture("vm-legacy-blog-shape.txt")).unwrap_or_else(|e| panic!("{e:#}"))
    else {
        panic!("a voicemail is prepared")
    };
    assert_eq!(prepared.event.caller.status, CallerStatus::DirectoryUnavailable);
    assert_eq!(prepared.event.caller.e164.as_deref(), Some("+12895550147"));
    assert!(prepared.rendered.text.contains("555-0147"), "{}", prepared.rendered.text);

    server_script("outage-start", true);
    for _ in 0..200 {
        if matches!(ldap.health().origin, Origin::Sync { .. }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(matches!(ldap.health().origin, Origin::Sync { .. }), "{:?}", ldap.health());
    assert_eq!(resolved_name("+12895550147", ldap.as_ref()).as_deref(), Some("Priya Raman"));
    assert_eq!(ldap.health().last_error, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_mid_run_keeps_the_index_and_a_restart_serves_the_snapshot() {
    let Some(mut settings) = outage_settings() else { return };
    let _guard = OutageGuard::take();
    let dir = tempfile::tempdir().expect("temp dir");
    let snapshot = dir.path().join("directory-snapshot.ldif");
    settings.snapshot = Some(snapshot.clone());
    settings.refresh = Duration::from_secs(3600);

    let ldap = LdapDirectory::start(&settings, &plan()).await.unwrap_or_else(|e| panic!("{e:#}"));
    assert!(matches!(ldap.health().origin, Origin::Sync { .. }));
    // the snapshot is an LDIF file an admin can use as a directory
    let text = std::fs::read_to_string(&snapshot).expect("snapshot written");
    assert!(text.starts_with("# callnote LDAP directory snapshot\n# source: ldap://127.0.0.1:"), "{}", &text[..200]);
    assert_eq!(directory::load_file(&snapshot, &plan()).expect("snapshot is LDIF").len(), 31);

    server_script("outage-stop", true);
    let error = ldap.refresh_now().await.expect_err("the server is down");
    assert!(error.is_transient(), "{error:#}");
    assert_eq!(resolved_name("+12895550147", ldap.as_ref()).as_deref(), Some("Priya Raman"), "the previous index still answers");
    let health = ldap.health();
    assert_eq!((health.people, health.consecutive_failures), (31, 1));
    assert!(health.last_error.is_some_and(|e| e.contains("cannot connect")));

    // a restart while the server is down serves the snapshot, with the same answers
    let restarted = LdapDirectory::start(&settings, &plan()).await.unwrap_or_else(|e| panic!("{e:#}"));
    let Origin::Snapshot { path, .. } = restarted.health().origin else { panic!("{:?}", restarted.health()) };
    assert_eq!(path, snapshot);
    let file = ldif();
    for raw in ["+12895550147", "+14255550100", "4567", "kwame.mensah@contoso.com", "+16045550188"] {
        assert_eq!(party(raw, restarted.as_ref()), party(raw, &file), "{raw}");
    }

    server_script("outage-start", true);
    restarted.refresh_now().await.unwrap_or_else(|e| panic!("{e:#}"));
    assert!(matches!(restarted.health().origin, Origin::Sync { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_never_holds_a_lookup_hostage() {
    let Some(mut settings) = outage_settings() else { return };
    let _guard = OutageGuard::take();
    settings.refresh = Duration::from_secs(3600);
    let ldap = LdapDirectory::start(&settings, &plan()).await.unwrap_or_else(|e| panic!("{e:#}"));

    // the server accepts connections but never answers
    server_script("outage-freeze", true);
    let syncing = {
        let ldap = ldap.clone();
        tokio::spawn(async move { ldap.refresh_now().await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!syncing.is_finished(), "the sync waits for the frozen server");
    for _ in 0..100 {
        assert_eq!(resolved_name("+12895550147", ldap.as_ref()).as_deref(), Some("Priya Raman"));
    }
    assert!(!syncing.is_finished(), "every lookup was answered while the sync still waited");
    let error = syncing.await.expect("no panic").expect_err("the frozen server never answers");
    assert!(matches!(error, LdapError::Timeout { .. }), "{error:#}");
    // normally the bind; the root DSE query or the search if the stop landed a moment late
    let text = error.to_string();
    let url = settings.url.trim_end_matches('/');
    assert!(["bind", "root DSE query", "search"].iter().any(|step| text == format!("{url}: no answer to the {step} within 2s")), "{text}");

    server_script("outage-thaw", true);
    ldap.refresh_now().await.unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(ldap.health().consecutive_failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_picks_up_directory_changes_and_swaps_them_in_whole() {
    let Some(mut settings) = outage_settings() else { return };
    let _guard = OutageGuard::take();
    settings.refresh = Duration::from_secs(3600);
    let (mut admin, dn) = admin_session(&settings, "newhire").await;
    let new_number = "+14255550187";

    let ldap = LdapDirectory::start(&settings, &plan()).await.unwrap_or_else(|e| panic!("{}", e.with_causes()));
    assert_eq!(party(new_number, ldap.as_ref()).status, CallerStatus::Unresolved);
    add_person(&mut admin, &dn, "Noor Hire", &[("mobile", "+1 (425) 555-0187")]).await;

    let before = ldap.index().expect("synced");
    let report = ldap.refresh_now().await.unwrap_or_else(|e| panic!("{}", e.with_causes()));
    assert_eq!((report.entries, report.people), (32, 32));
    let hire = party(new_number, ldap.as_ref());
    assert_eq!((hire.name.as_deref(), hire.label), (Some("Noor Hire"), Some(PhoneLabel::Mobile)));
    assert_eq!(party(new_number, before.as_ref()).status, CallerStatus::Unresolved, "an index in use never changes");
    assert_eq!(resolved_name("+12895550147", ldap.as_ref()).as_deref(), Some("Priya Raman"));

    admin.delete(&dn).await.expect("delete").success().expect("deleted");
    let report = ldap.refresh_now().await.unwrap_or_else(|e| panic!("{}", e.with_causes()));
    assert_eq!(report.people, 31);
    assert_eq!(party(new_number, ldap.as_ref()).status, CallerStatus::Unresolved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_query_finds_someone_added_since_the_sync_and_never_waits_past_its_bound() {
    let Some(mut settings) = outage_settings() else { return };
    let _guard = OutageGuard::take();
    settings.refresh = Duration::from_secs(3600);
    let (mut admin, dn) = admin_session(&settings, "livehire").await;

    let bound = Duration::from_millis(1500);
    let options = LdapOptions { live_query: Some(bound), ..LdapOptions::default() };
    let ldap = LdapDirectory::start_with(&settings, &plan(), options).await.unwrap_or_else(|e| panic!("{}", e.with_causes()));
    add_person(&mut admin, &dn, "Lina Hire", &[("telephoneNumber", "+14255550166"), ("msRTCSIP-Line", "tel:+14255550166;ext=4166")]).await;

    // found live, before any refresh, with the index's own label and attribute
    let hire = tokio::task::spawn_blocking({
        let ldap = ldap.clone();
        move || party("+14255550166", ldap.as_ref())
    })
    .await
    .expect("no panic");
    assert_eq!(hire.status, CallerStatus::Resolved);
    assert_eq!(
        (hire.name.as_deref(), hire.label, hire.matched_attribute.as_deref()),
        (Some("Lina Hire"), Some(PhoneLabel::Work), Some("telephoneNumber"))
    );
    assert_eq!((ldap.health().people, ldap.health().live_queries), (31, 1), "served from the server, not a refresh");

    // nobody has this number: asked once, then remembered
    let lookup = |raw: &'static str| {
        let ldap = ldap.clone();
        tokio::task::spawn_blocking(move || party(raw, ldap.as_ref()).status)
    };
    assert_eq!(lookup("+14255550155").await.expect("no panic"), CallerStatus::Unresolved);
    assert_eq!(lookup("+14255550155").await.expect("no panic"), CallerStatus::Unresolved);
    assert_eq!(ldap.health().live_queries, 2);

    // a frozen server: the lookup gives up at the bound and nothing is remembered
    server_script("outage-freeze", true);
    let asked = std::time::Instant::now();
    assert_eq!(lookup("+14255550144").await.expect("no panic"), CallerStatus::Unresolved);
    let waited = asked.elapsed();
    server_script("outage-thaw", true);
    assert!(waited >= bound && waited < bound + Duration::from_secs(1), "waited {waited:?} for a bound of {bound:?}");
    assert_eq!(lookup("+14255550144").await.expect("no panic"), CallerStatus::Unresolved);
    assert_eq!(ldap.health().live_queries, 4, "the frozen attempt was not cached as \"nobody\"");

    admin.delete(&dn).await.expect("delete").success().expect("deleted");
}
