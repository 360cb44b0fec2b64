//! Relay decisions with the recording stub transport and a hand-moved clock: what is
//! delivered, deferred, parked and resumed. Real-server behaviour is in tests/it/relay.rs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;

use super::*;
use crate::config::Config;
use crate::deliver::stub::{Planned, StubTransport};
use crate::render::Templates;
use crate::spool::{EntryKind, SpoolMode};
use crate::spool::{Record, RetryPolicy};

struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap();
        *t = t.checked_add(by).unwrap();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

struct Setup {
    _dir: tempfile::TempDir,
    spool: PathBuf,
    stub: Arc<StubTransport>,
    clock: Arc<ManualClock>,
    settings: SpoolSettings,
}

impl Setup {
    fn new(files: &[&str], plan: Vec<Planned>) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        std::fs::create_dir(&spool).unwrap();
        for f in files {
            let name = Path::new(f).file_name().unwrap();
            std::fs::copy(fixture(f), spool.join(name)).unwrap();
        }
        let settings = SpoolSettings {
            retry: RetryPolicy {
                min_backoff: Duration::from_secs(60),
                max_backoff: Duration::from_secs(600),
                max_age: Duration::from_secs(3600),
            },
            ..SpoolSettings::default()
        };
        let clock = Arc::new(ManualClock(Mutex::new(Timestamp::from_second(1_800_000_000).unwrap())));
        Setup { _dir: dir, spool, stub: Arc::new(StubTransport::with_plan(plan)), clock, settings }
    }

    fn relay(&self) -> Relay {
        let config = Config::default();
        let directory = crate::enrich::directory::load_file(&fixture("directory.ldif"), &config.dialplan).unwrap();
        let pipeline = Pipeline::new(config, Templates::builtin(), Some(Arc::new(directory)), None);
        Relay::open(Arc::new(pipeline), self.stub.clone(), &self.spool, SpoolMode::Own, &self.settings, self.clock.clone()).unwrap()
    }

    fn ls(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(self.spool.join(sub)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    fn journal(&self) -> Vec<Record> {
        let mut out = Vec::new();
        crate::spool::journal::replay(&self.spool.join("state/journal.jsonl"), |r| out.push(r)).unwrap();
        out
    }
}

fn pass(relay: &Relay) -> PassReport {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(relay.pass(None)).unwrap()
}

#[test]
fn delivers_skips_and_parks_in_one_pass() {
    let s = Setup::new(
        &[
            "mc-legacy-blog-shape.txt",
            "vm-legacy-blog-shape.txt",
            "575a75dc-3e35-4640-97c2-4c7f3f274236.wav",
            "healthcheck-2013.txt",
            "bad/unknown-messagetype.txt",
        ],
        vec![],
    );
    let report = pass(&s.relay());
    assert_eq!(report, PassReport { delivered: 2, skipped: 1, parked: 1, ..PassReport::default() });
    assert!(!report.all_good());
    assert_eq!(s.ls(""), ["archive", "failed", "state", "work"]);
    assert_eq!(s.ls("work"), Vec::<String>::new());
    let archived = s.ls("archive");
    assert_eq!(archived.len(), 3);
    let vm = archived.iter().find(|id| id.ends_with("_vm-legacy-blog-shape.txt")).unwrap();
    assert_eq!(s.ls(&format!("archive/{vm}")), ["575a75dc-3e35-4640-97c2-4c7f3f274236.wav", "vm-legacy-blog-shape.txt"]);
    assert_eq!(s.ls("failed"), ["unknown-messagetype.txt", "unknown-messagetype.txt.error.txt"]);
    let report_text = std::fs::read_to_string(s.spool.join("failed/unknown-messagetype.txt.error.txt")).unwrap();
    let first = report_text.lines().next().unwrap();
    assert!(
        first.starts_with("reason: ") && first.ends_with("unknown-messagetype.txt:1: unknown MessageType `Telepathy`"),
        "{report_text}"
    );
    assert!(report_text.contains("\nattempts: 1\n"), "{report_text}");

    let mut sent: Vec<String> = s.stub.delivered().iter().map(|m| m.stem.clone()).collect();
    sent.sort();
    assert_eq!(
        sent,
        [
            "1c941dfb-9165-4438-930c-f7e266e92d98-hannah.whitaker_contoso.com-voicemail",
            "6e838afc-7d1a-4ad5-b1e3-fde1990e11e7-hannah.whitaker_contoso.com-missed_call"
        ]
    );
    let states: Vec<&str> = s.journal().iter().map(|r| r.state.name()).collect();
    assert_eq!(states.iter().filter(|s| **s == "sent").count(), 2);
    assert_eq!(states.iter().filter(|s| **s == "done").count(), 4);
    assert_eq!(states.len(), 4 + 2 * 3 + 2 + 2);
}

#[test]
fn a_temporary_failure_is_retried_when_due_and_delivered_once() {
    let s = Setup::new(&["mc-legacy-blog-shape.txt"], vec![Planned::RefuseRecipients(451)]);
    let relay = s.relay();
    let first = pass(&relay);
    assert_eq!(first, PassReport { deferred: 1, ..PassReport::default() });
    assert_eq!(s.ls("work").len(), 1);
    let due = relay.next_due().unwrap();
    let wait = due.duration_since(s.clock.now()).as_secs();
    assert!((45..=75).contains(&wait), "first retry after 60 s ± 25 %, got {wait}");
    assert_eq!(pass(&relay), PassReport { waiting: 1, ..PassReport::default() });
    s.clock.advance(Duration::from_secs(76));
    assert_eq!(pass(&relay), PassReport { delivered: 1, ..PassReport::default() });
    assert_eq!(s.stub.attempts().len(), 2);
    assert_eq!(s.stub.delivered().len(), 1);
    assert_eq!(s.ls("work"), Vec::<String>::new());
    let deferred = s.journal().into_iter().find_map(|r| match r.state {
        State::Deferred { attempt, reason, .. } => Some((attempt, reason)),
        _ => None,
    });
    assert_eq!(
        deferred,
        Some((1, "rcpt to: stub refused every recipient: <hannah.whitaker@contoso.com> 451 4.0.0 planned by the stub".to_owned()))
    );
}

#[test]
fn a_deferred_item_survives_a_restart_and_is_given_up_at_max_age() {
    let s = Setup::new(&["mc-legacy-blog-shape.txt"], vec![Planned::Unreachable; 50]);
    {
        let relay = s.relay();
        assert_eq!(pass(&relay).deferred, 1);
    }
    let mut passes = 0;
    let outcome = loop {
        s.clock.advance(Duration::from_secs(700));
        let relay = s.relay();
        let report = pass(&relay);
        passes += 1;
        if report.parked == 1 || passes > 20 {
            break report;
        }
        assert_eq!(report.deferred, 1, "pass {passes}");
    };
    assert_eq!(outcome, PassReport { parked: 1, ..PassReport::default() });
    let text = std::fs::read_to_string(s.spool.join("failed/mc-legacy-blog-shape.txt.error.txt")).unwrap();
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("reason: gave up after ") && first.contains(" s: connect: cannot connect to stub"), "{text}");
    assert!(text.contains("\ncall id: 6e838afc-7d1a-4ad5-b1e3-fde1990e11e7\n"), "{text}");
    assert!(s.stub.delivered().is_empty());
}

#[test]
fn a_permanent_refusal_is_parked_with_the_reply() {
    let s = Setup::new(&["mc-legacy-blog-shape.txt"], vec![Planned::RefuseRecipients(550)]);
    assert_eq!(pass(&s.relay()), PassReport { parked: 1, ..PassReport::default() });
    let text = std::fs::read_to_string(s.spool.join("failed/mc-legacy-blog-shape.txt.error.txt")).unwrap();
    assert!(
        text.starts_with("reason: rcpt to: stub refused every recipient: <hannah.whitaker@contoso.com> 550 5.0.0 planned by the stub\n"),
        "{text}"
    );
}

/// Puts `fixture` into `work/` as if a relay had claimed it and crashed after `states`.
fn crashed_item(s: &Setup, fixture_name: &str, states: Vec<State>) -> String {
    let id = format!("1a2b_{fixture_name}");
    let dir = s.spool.join("work").join(&id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture(fixture_name), dir.join(fixture_name)).unwrap();
    std::fs::create_dir_all(s.spool.join("state")).unwrap();
    let (journal, _) = Journal::open(&s.spool.join("state/journal.jsonl")).unwrap();
    journal.append(&id, s.clock.now(), State::Claimed { name: fixture_name.into() }).unwrap();
    for state in states {
        journal.append(&id, s.clock.now(), state).unwrap();
    }
    id
}

#[test]
fn after_a_crash_a_sent_item_is_archived_without_sending_again() {
    let s = Setup::new(&[], vec![]);
    let attempt =
        State::Attempt { attempt: 1, call_id: "6e838afc-7d1a-4ad5-b1e3-fde1990e11e7".into(), message_id: "<m>".into(), resend: false };
    let id =
        crashed_item(&s, "mc-legacy-blog-shape.txt", vec![attempt, State::Sent { queue_id: Some("Q9".into()), reply: "250 ok".into() }]);
    assert_eq!(pass(&s.relay()), PassReport { delivered: 1, ..PassReport::default() });
    assert!(s.stub.attempts().is_empty());
    assert_eq!(s.ls("archive"), [id]);
}

#[test]
fn after_a_crash_during_an_attempt_the_item_is_sent_again_and_marked() {
    let s = Setup::new(&[], vec![]);
    let attempt =
        State::Attempt { attempt: 1, call_id: "6e838afc-7d1a-4ad5-b1e3-fde1990e11e7".into(), message_id: "<m>".into(), resend: false };
    crashed_item(&s, "mc-legacy-blog-shape.txt", vec![attempt]);
    assert_eq!(pass(&s.relay()), PassReport { delivered: 1, resent: 1, ..PassReport::default() });
    assert_eq!(s.stub.delivered().len(), 1);
    let resend = s
        .journal()
        .into_iter()
        .filter_map(|r| match r.state {
            State::Attempt { attempt, resend, .. } => Some((attempt, resend)),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert_eq!(resend, [(1, false), (2, true)]);
}

#[test]
fn after_a_crash_while_parking_the_park_is_finished() {
    let s = Setup::new(&[], vec![]);
    crashed_item(&s, "mc-legacy-blog-shape.txt", vec![State::Failed { reason: "rcpt to: 550 no such user".into() }]);
    assert_eq!(pass(&s.relay()), PassReport { parked: 1, ..PassReport::default() });
    assert!(s.stub.attempts().is_empty());
    let text = std::fs::read_to_string(s.spool.join("failed/mc-legacy-blog-shape.txt.error.txt")).unwrap();
    assert!(text.starts_with("reason: rcpt to: 550 no such user\nitem: 1a2b_mc-legacy-blog-shape.txt\n"), "{text}");
}

#[test]
fn a_side_file_left_in_the_spool_folder_by_a_crash_is_adopted() {
    let s = Setup::new(&["575a75dc-3e35-4640-97c2-4c7f3f274236.wav"], vec![]);
    crashed_item(&s, "vm-legacy-blog-shape.txt", vec![]);
    assert_eq!(pass(&s.relay()), PassReport { delivered: 1, ..PassReport::default() });
    assert_eq!(s.ls(""), ["archive", "failed", "state", "work"]);
    assert_eq!(s.ls("archive/1a2b_vm-legacy-blog-shape.txt"), ["575a75dc-3e35-4640-97c2-4c7f3f274236.wav", "vm-legacy-blog-shape.txt"]);
}

#[test]
fn a_second_relay_on_the_same_spool_is_refused() {
    let s = Setup::new(&[], vec![]);
    let _first = s.relay();
    let config = Config::default();
    let pipeline = Arc::new(Pipeline::new(config, Templates::builtin(), None, None));
    let second = Relay::open(pipeline, s.stub.clone(), &s.spool, SpoolMode::Own, &s.settings, s.clock.clone());
    let Err(RelayError::Locked { path }) = second else { panic!("expected Locked") };
    assert_eq!(path, s.spool.join("state/relay.lock"));
}

// ------------------------------------------------------------------------------------------
// tap mode
// ------------------------------------------------------------------------------------------

fn age(path: &Path, secs: u64) {
    let file = std::fs::File::options().append(true).open(path).unwrap();
    file.set_modified(std::time::SystemTime::now() - Duration::from_secs(secs)).unwrap();
}

fn tap_relay(s: &Setup) -> Relay {
    let config = Config::default();
    let directory = crate::enrich::directory::load_file(&fixture("directory.ldif"), &config.dialplan).unwrap();
    let pipeline = Pipeline::new(config, Templates::builtin(), Some(Arc::new(directory)), None);
    let state = s.spool.parent().unwrap().join("tap-state");
    let settings = SpoolSettings { state_dir: Some(state), settle: Duration::from_secs(10), ..s.settings.clone() };
    Relay::open(Arc::new(pipeline), s.stub.clone(), &s.spool, SpoolMode::Tap, &settings, s.clock.clone()).unwrap()
}

#[test]
fn tap_mode_sends_once_per_file_guid_and_call_id_and_never_touches_the_folder() {
    let files = [
        "mc-legacy-blog-shape.txt",
        "vm-legacy-blog-shape.txt",
        "575a75dc-3e35-4640-97c2-4c7f3f274236.wav",
        "healthcheck-2013.txt",
        "bad/unknown-messagetype.txt",
    ];
    let s = Setup::new(&files, vec![]);
    for name in s.ls("") {
        age(&s.spool.join(name), 60);
    }
    let before = s.ls("");
    {
        let relay = tap_relay(&s);
        assert_eq!(pass(&relay), PassReport { delivered: 2, skipped: 1, parked: 1, ..PassReport::default() });
        assert_eq!(pass(&relay), PassReport::default(), "the same files again: nothing to do");
    }
    assert_eq!(s.ls(""), before, "nothing created, moved or removed in the tapped folder");
    let report = std::fs::read_to_string(s.spool.parent().unwrap().join("tap-state/failed/unknown-messagetype.txt.error.txt")).unwrap();
    assert!(report.lines().next().unwrap().ends_with("unknown-messagetype.txt:1: unknown MessageType `Telepathy`"), "{report}");

    // Exchange rewrites a header it is retrying (ProcessedCount grows): same GUID, same call.
    let header = s.spool.join("mc-legacy-blog-shape.txt");
    let text = std::fs::read_to_string(&header).unwrap() + "ProcessedCount : 1\n";
    std::fs::write(&header, text).unwrap();
    let relay = tap_relay(&s);
    assert_eq!(pass(&relay), PassReport { waiting: 1, skipped: 1, ..PassReport::default() }, "still changing");
    age(&header, 60);
    assert_eq!(pass(&relay), PassReport::default(), "rewritten, but sent already");
    assert_eq!(s.stub.delivered().len(), 2);
}

#[test]
fn tap_mode_needs_a_state_folder_outside_the_tapped_one() {
    let s = Setup::new(&[], vec![]);
    let pipeline = Arc::new(Pipeline::new(Config::default(), Templates::builtin(), None, None));
    let inside = SpoolSettings { state_dir: Some(s.spool.join("state")), ..s.settings.clone() };
    for settings in [&s.settings, &inside] {
        let r = Relay::open(pipeline.clone(), s.stub.clone(), &s.spool, SpoolMode::Tap, settings, s.clock.clone());
        let Err(e @ RelayError::TapNeedsStateDir { .. }) = r else { panic!("expected TapNeedsStateDir") };
        assert_eq!(e.to_string(), format!("{}: spool.state_dir must be set, outside the tapped folder, in `tap` mode", s.spool.display()));
    }
    assert_eq!(s.ls(""), Vec::<String>::new());
}

// ------------------------------------------------------------------------------------------
// what cannot heal, long names, leftovers, the journal after a crash, the gauge
// ------------------------------------------------------------------------------------------

/// A missed call to hannah.whitaker@contoso.com with `call_id`.
fn missed_call(call_id: &str) -> String {
    std::fs::read_to_string(fixture("mc-legacy-blog-shape.txt")).unwrap().replace("6e838afc-7d1a-4ad5-b1e3-fde1990e11e7", call_id)
}

fn relay_with(s: &Setup, transport: Arc<dyn crate::deliver::Deliver>) -> Relay {
    let pipeline = Pipeline::new(Config::default(), Templates::builtin(), None, None);
    Relay::open(Arc::new(pipeline), transport, &s.spool, SpoolMode::Own, &s.settings, s.clock.clone()).unwrap()
}

#[test]
fn a_failure_no_retry_can_heal_is_parked_in_the_same_pass() {
    // A call id so long that the .eml file named after it cannot be created: the file
    // system says "File name too long" on every try, so the item is finished in the first
    // pass (parked with that reason), never deferred for days.
    let s = Setup::new(&[], vec![]);
    std::fs::write(s.spool.join("long.txt"), missed_call(&"c".repeat(240))).unwrap();
    let outbox = s.spool.parent().unwrap().join("outbox");
    let transport = Arc::new(crate::deliver::eml_dir::EmlDirTransport::new(&outbox).unwrap());
    let report = pass(&relay_with(&s, transport));
    assert_eq!((report.deferred, report.waiting), (0, 0), "{report:?}");
    assert_eq!(report.parked + report.delivered, 1, "{report:?}");
    if report.parked == 1 {
        let text = std::fs::read_to_string(s.spool.join("failed/long.txt.error.txt")).unwrap();
        assert!(text.starts_with("reason: write: ") && text.contains("File name too long"), "{text}");
    }
    assert_eq!(s.ls("work"), Vec::<String>::new());
}

#[test]
fn only_failures_that_can_heal_are_retried() {
    use crate::deliver::DeliveryError;
    let io = |kind| DeliveryError::Io { path: "/outbox/x.eml".into(), source: std::io::Error::from(kind) };
    assert!(crate::pipeline::delivery_is_permanent(&io(std::io::ErrorKind::InvalidFilename)));
    assert!(crate::pipeline::delivery_is_permanent(&io(std::io::ErrorKind::NotADirectory)));
    assert!(!crate::pipeline::delivery_is_permanent(&io(std::io::ErrorKind::StorageFull)));
    assert!(!crate::pipeline::delivery_is_permanent(&io(std::io::ErrorKind::PermissionDenied)));
    let intake = |kind| crate::pipeline::Error::Intake(crate::intake::IntakeError { path: "h.txt".into(), line: None, kind });
    let read = |kind| intake(crate::intake::IntakeErrorKind::Io(std::io::Error::from(kind)));
    assert!(read(std::io::ErrorKind::IsADirectory).is_bad_input());
    assert!(!read(std::io::ErrorKind::PermissionDenied).is_bad_input());
    assert!(intake(crate::intake::IntakeErrorKind::Empty).is_bad_input());
}

#[test]
fn a_header_with_a_name_at_the_file_system_limit_is_delivered_and_one_that_is_bad_parked_under_a_bounded_name() {
    let s = Setup::new(&[], vec![]);
    let good = format!("{}.txt", "g".repeat(251));
    let bad = format!("{}.txt", "b".repeat(251));
    std::fs::write(s.spool.join(&good), missed_call("long-name-call")).unwrap();
    std::fs::write(s.spool.join(&bad), "MessageType : Telepathy\n").unwrap();
    let relay = s.relay();
    assert_eq!(pass(&relay), PassReport { delivered: 1, parked: 1, ..PassReport::default() });
    let archived = s.ls("archive");
    assert_eq!(archived.len(), 1);
    assert!(archived[0].len() <= 255, "{}", archived[0]);
    assert_eq!(s.ls(&format!("archive/{}", archived[0])), [good]);

    let failed = s.ls("failed");
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.iter().all(|n| n.len() <= 255 && n.starts_with("bbbb")), "{failed:?}");
    let report = failed.iter().find(|n| n.ends_with(".error.txt")).unwrap();
    let text = std::fs::read_to_string(s.spool.join("failed").join(report)).unwrap();
    assert!(text.starts_with("reason: ") && text.contains("unknown MessageType `Telepathy`"), "{text}");
    assert!(text.ends_with(&format!("original name: {bad}\n")), "{text}");
    assert_eq!(s.ls("work"), Vec::<String>::new());
    assert_eq!(pass(&relay), PassReport::default(), "nothing left to retry");
}

#[test]
fn a_skipped_header_takes_only_side_files_named_after_itself() {
    let s = Setup::new(&["mc-legacy-blog-shape.txt"], vec![]);
    // A HealthCheck whose fields name another item's header and a stranger's audio.
    let probe = "MessageType : HealthCheck\nCallId : \nAttachmentName : C:\\voicemail\\mc-legacy-blog-shape.txt\n\
                 AttachmentPath : C:\\voicemail\\stranger.wav\nMessageFilePath : C:\\voicemail\\stranger.msg\n";
    std::fs::write(s.spool.join("probe.txt"), probe).unwrap();
    for name in ["stranger.wav", "stranger.msg", "probe.msg"] {
        std::fs::write(s.spool.join(name), "RIFF").unwrap();
    }
    assert_eq!(pass(&s.relay()), PassReport { delivered: 1, skipped: 1, ..PassReport::default() });
    let probe_id = s.ls("archive").into_iter().find(|id| id.ends_with("_probe.txt")).unwrap();
    assert_eq!(s.ls(&format!("archive/{probe_id}")), ["probe.msg", "probe.txt"]);
    assert_eq!(s.ls(""), ["archive", "failed", "state", "stranger.msg", "stranger.wav", "work"]);
    assert_eq!(s.stub.delivered().len(), 1);
}

#[test]
fn strays_in_the_spool_folder_are_parked_as_they_are_with_their_reason() {
    use std::os::unix::ffi::OsStrExt as _;
    let s = Setup::new(&[], vec![]);
    let secret = s.spool.parent().unwrap().join("secret.txt");
    std::fs::write(&secret, missed_call("secret-call")).unwrap();
    std::os::unix::fs::symlink(&secret, s.spool.join("link.txt")).unwrap();
    std::fs::create_dir(s.spool.join("folder.txt")).unwrap();
    std::fs::write(s.spool.join("folder.txt/inside.txt"), "x").unwrap();
    let raw = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(s.spool.join(raw), missed_call("latin1-call")).unwrap();
    std::fs::write(s.spool.join("notes.doc"), "x").unwrap();
    let relay = s.relay();
    assert_eq!(pass(&relay), PassReport { parked: 3, ..PassReport::default() });
    assert!(s.stub.attempts().is_empty(), "nothing read through the link or the bad name");
    assert_eq!(s.ls(""), ["archive", "failed", "notes.doc", "state", "work"]);
    let failed = s.spool.join("failed");
    assert_eq!(std::fs::read_link(failed.join("link.txt")).unwrap(), secret, "moved, not followed");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), missed_call("secret-call"));
    assert_eq!(std::fs::read_to_string(failed.join("folder.txt/inside.txt")).unwrap(), "x");
    let first_line =
        |name: &str| std::fs::read_to_string(failed.join(format!("{name}.error.txt"))).unwrap().lines().next().unwrap().to_owned();
    assert_eq!(
        first_line("link.txt"),
        format!("reason: a symbolic link (to `{}`), not a header file: links are never followed", secret.display())
    );
    assert_eq!(first_line("folder.txt"), "reason: a folder, not a header file");
    let safe = crate::spool::names::safe(raw, crate::spool::names::NAME_MAX);
    assert!(safe.starts_with("caf_~") && safe.ends_with(".txt"), "{safe}");
    assert_eq!(first_line(&safe), "reason: the file name is not UTF-8 (its bytes: `caf\\xe9.txt`)");
    assert_eq!(std::fs::read_to_string(failed.join(&safe)).unwrap(), missed_call("latin1-call"));
    assert_eq!(pass(&relay), PassReport::default(), "the other file is left alone");
}

#[test]
fn a_header_swapped_for_a_link_after_the_listing_is_parked_unread() {
    let s = Setup::new(&[], vec![]);
    let secret = s.spool.parent().unwrap().join("secret.txt");
    std::fs::write(&secret, missed_call("secret-call")).unwrap();
    std::fs::write(s.spool.join("swap.txt"), missed_call("swap-call")).unwrap();
    let listed = crate::spool::entry::entries(&s.spool).unwrap().find(|e| e.path.ends_with("swap.txt")).unwrap();
    assert_eq!(listed.kind, EntryKind::Header);
    std::fs::remove_file(s.spool.join("swap.txt")).unwrap();
    std::os::unix::fs::symlink(&secret, s.spool.join("swap.txt")).unwrap();
    let relay = s.relay();
    let mode = Arc::new(own::OwnMode::open(&s.spool, &s.settings).unwrap());
    let outcome =
        tokio::runtime::Runtime::new().unwrap().block_on(item::process(relay.core.clone(), mode, own::Source::Incoming(listed))).unwrap();
    assert_eq!(outcome, ItemOutcome::Parked { reason: "a symbolic link, not a header file: links are never followed".into() });
    assert!(s.stub.attempts().is_empty());
    assert!(std::fs::symlink_metadata(s.spool.join("failed/swap.txt")).unwrap().is_symlink());
}

#[test]
fn a_crash_between_archiving_and_the_done_record_leaves_no_open_item() {
    let s = Setup::new(&[], vec![]);
    let attempt =
        State::Attempt { attempt: 1, call_id: "6e838afc-7d1a-4ad5-b1e3-fde1990e11e7".into(), message_id: "<m>".into(), resend: false };
    let sent = State::Sent { queue_id: Some("Q1".into()), reply: "250 ok".into() };
    let id = crashed_item(&s, "mc-legacy-blog-shape.txt", vec![attempt, sent]);
    // Archived, then killed before `done` reached the journal.
    std::fs::create_dir_all(s.spool.join("archive")).unwrap();
    std::fs::rename(s.spool.join("work").join(&id), s.spool.join("archive").join(&id)).unwrap();
    let journal = s.spool.join("state/journal.jsonl");
    assert_eq!(crate::spool::queue::open_items(&journal).unwrap().len(), 1);
    let relay = s.relay();
    assert!(crate::spool::queue::open_items(&journal).unwrap().is_empty());
    assert!(matches!(s.journal().last().unwrap().state, State::Done));
    assert_eq!(pass(&relay), PassReport::default());
    assert!(s.stub.attempts().is_empty(), "never sent again");
    assert!(relay.metrics().render().contains("\ncallnote_relay_open_items 0\n"));
}

/// A server's plain 250.
fn accepted() -> crate::deliver::Receipt {
    crate::deliver::Receipt { summary: "250 ok".into(), queue_id: None, accepted: Vec::new(), refused: Vec::new(), file: None, smtp: None }
}

/// Accepts everything, noting the `open_items` gauge at the moment of each delivery.
struct GaugeProbe {
    metrics: std::sync::OnceLock<Arc<metrics::Metrics>>,
    seen: Mutex<Vec<u64>>,
}

impl crate::deliver::Deliver for GaugeProbe {
    fn deliver<'a>(&'a self, _: &'a crate::deliver::Outgoing) -> crate::deliver::DeliverFuture<'a> {
        let text = self.metrics.get().unwrap().render();
        let gauge = text.lines().find_map(|l| l.strip_prefix("callnote_relay_open_items ")).unwrap().parse().unwrap();
        self.seen.lock().unwrap().push(gauge);
        Box::pin(async { Ok(accepted()) })
    }

    fn describe(&self) -> String {
        "gauge probe".into()
    }
}

#[test]
fn the_open_items_gauge_counts_items_in_flight() {
    let s = Setup::new(&[], vec![]);
    for n in 0..6 {
        std::fs::write(s.spool.join(format!("m{n}.txt")), missed_call(&format!("gauge-{n}"))).unwrap();
    }
    let probe = Arc::new(GaugeProbe { metrics: std::sync::OnceLock::new(), seen: Mutex::default() });
    let relay = relay_with(&s, probe.clone());
    probe.metrics.set(relay.metrics()).unwrap();
    assert_eq!(pass(&relay).delivered, 6);
    let seen = probe.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 6);
    let in_flight = (s.settings.concurrency * CLAIM_AHEAD) as u64;
    assert!(seen.iter().all(|&n| (1..=in_flight).contains(&n)), "in flight: {seen:?}");
    assert!(relay.metrics().render().contains("\ncallnote_relay_open_items 0\n"));
}

#[test]
fn tap_mode_reports_a_stray_once_and_leaves_it() {
    let s = Setup::new(&[], vec![]);
    std::os::unix::fs::symlink("/etc/hostname", s.spool.join("link.txt")).unwrap();
    let relay = tap_relay(&s);
    assert_eq!(pass(&relay), PassReport { parked: 1, ..PassReport::default() });
    assert_eq!(pass(&relay), PassReport::default(), "reported once");
    assert!(std::fs::symlink_metadata(s.spool.join("link.txt")).unwrap().is_symlink());
    let report = std::fs::read_to_string(s.spool.parent().unwrap().join("tap-state/failed/link.txt.error.txt")).unwrap();
    assert!(report.starts_with("reason: a symbolic link (to `/etc/hostname`), not a header file"), "{report}");
}

// ------------------------------------------------------------------------------------------
// bounded state: archived items, rotated journals, the tap ledger
// ------------------------------------------------------------------------------------------

const DAY: Duration = Duration::from_secs(86_400);

#[test]
fn archived_items_and_old_journals_are_deleted_after_archive_keep() {
    let s = Setup::new(&["mc-legacy-blog-shape.txt"], vec![]);
    let state = s.spool.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let rotated = |at: Timestamp| state.join(format!("journal.{}.jsonl", at.as_nanosecond()));
    let (old, recent) = (rotated(s.clock.now() - 31 * DAY), rotated(s.clock.now() - 29 * DAY));
    std::fs::write(&old, "").unwrap();
    std::fs::write(&recent, "").unwrap();
    let relay = s.relay();
    assert!(!old.exists() && recent.exists(), "a journal rotated more than archive_keep ago is deleted at start-up");
    assert_eq!(pass(&relay).delivered, 1);
    assert_eq!(s.ls("archive").len(), 1);

    s.clock.advance(29 * DAY);
    std::fs::write(s.spool.join("second.txt"), missed_call("second-call")).unwrap();
    assert_eq!(pass(&relay).delivered, 1);
    assert_eq!(s.ls("archive").len(), 2, "29 days old: kept");
    s.clock.advance(2 * DAY);
    assert_eq!(pass(&relay), PassReport::default());
    assert_eq!(s.ls("archive").len(), 1, "31 days old: deleted; the one archived 2 days ago stays");
    assert!(!recent.exists());
    assert_eq!(s.stub.delivered().len(), 2, "nothing sent again");
}

#[test]
fn a_tap_ledger_entry_is_forgotten_only_when_its_file_is_gone_and_ledger_keep_has_passed() {
    let s = Setup::new(&["mc-legacy-blog-shape.txt"], vec![]);
    std::fs::write(s.spool.join("stays.txt"), missed_call("stays-call")).unwrap();
    for name in s.ls("") {
        age(&s.spool.join(name), 60);
    }
    let ledger = || {
        let (open, _) = crate::spool::journal::replay_open(&s.spool.parent().unwrap().join("tap-state/journal.jsonl")).unwrap();
        let mut keys: Vec<String> = open.into_keys().collect();
        keys.sort();
        keys
    };
    let relay = tap_relay(&s);
    assert_eq!(pass(&relay).delivered, 2);
    let both = ledger();
    assert_eq!(both.len(), 2);
    let header = s.spool.join("mc-legacy-blog-shape.txt");
    let text = std::fs::read(&header).unwrap();

    // Gone from the folder, but not for long: the entry stays, and the file coming back is
    // not sent again.
    std::fs::remove_file(&header).unwrap();
    s.clock.advance(2 * 3600 * Duration::from_secs(1));
    assert_eq!(pass(&relay), PassReport::default());
    assert_eq!(ledger(), both);
    std::fs::write(&header, &text).unwrap();
    age(&header, 60);
    assert_eq!(pass(&relay), PassReport::default(), "back again: found in the ledger");

    // Long past ledger_keep: only the entry of the file that left the folder goes.
    s.clock.advance(31 * DAY);
    assert_eq!(pass(&relay), PassReport::default());
    assert_eq!(ledger(), both, "both files are still in the folder");
    std::fs::remove_file(&header).unwrap();
    s.clock.advance(2 * 3600 * Duration::from_secs(1));
    assert_eq!(pass(&relay), PassReport::default());
    let stays: Vec<String> = both.iter().filter(|k| k.starts_with("stays/")).cloned().collect();
    assert_eq!(ledger(), stays);
    assert_eq!(s.stub.delivered().len(), 2);
}

/// Holds the first delivery until released; accepts the rest at once.
#[derive(Default)]
struct Gate {
    first_taken: std::sync::atomic::AtomicBool,
    entered: tokio::sync::Notify,
    release: tokio::sync::Notify,
    delivered: tokio::sync::Notify,
}

impl crate::deliver::Deliver for Gate {
    fn deliver<'a>(&'a self, _: &'a crate::deliver::Outgoing) -> crate::deliver::DeliverFuture<'a> {
        let first = !self.first_taken.swap(true, Ordering::SeqCst);
        Box::pin(async move {
            if first {
                self.entered.notify_one();
                self.release.notified().await;
            }
            self.delivered.notify_one();
            Ok(accepted())
        })
    }

    fn describe(&self) -> String {
        "gate".into()
    }
}

#[test]
fn streaming_claims_a_new_file_while_another_item_is_still_being_delivered() {
    let s = Setup::new(&[], vec![]);
    std::fs::write(s.spool.join("slow.txt"), missed_call("stream-slow")).unwrap();
    let gate = Arc::new(Gate::default());
    let relay = relay_with(&s, gate.clone());
    assert!(relay.streams());
    let (names, received) = tokio::sync::mpsc::channel(4);
    let (stop, wake) = (Arc::new(AtomicBool::new(false)), Arc::new(tokio::sync::Notify::new()));
    let feed = stream::Feed { names: Some(received), overflow: Arc::default(), wake: wake.clone(), stop: stop.clone() };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let mut rounds = |_: &PassReport| None;
        let hooks = stream::Hooks { rescan: Duration::from_secs(3600), next_due: &|| None, round: &mut rounds };
        let drive = async {
            gate.entered.notified().await;
            let fast = s.spool.join("fast.txt");
            std::fs::write(&fast, missed_call("stream-fast")).unwrap();
            names.send(fast.clone()).await.unwrap();
            names.send(fast).await.unwrap();
            // Only the new file can be delivered while the first is held: a relay that
            // waited for the first item (the end of a pass) would never get here.
            let second = tokio::time::timeout(Duration::from_secs(60), gate.delivered.notified()).await;
            assert!(second.is_ok(), "the new file waited for the item held by the server");
            gate.release.notify_one();
            gate.delivered.notified().await;
            stop.store(true, Ordering::SeqCst);
            wake.notify_one();
        };
        let (served, ()) = tokio::join!(relay.stream(feed, hooks), drive);
        served.unwrap();
    });
    let mut sent: Vec<String> = s
        .journal()
        .into_iter()
        .filter(|r| matches!(r.state, State::Sent { .. }))
        .map(|r| r.item.rsplit_once('_').unwrap().1.to_owned())
        .collect();
    sent.sort();
    assert_eq!(sent, ["fast.txt", "slow.txt"], "each sent once");
    assert_eq!(s.ls("work"), Vec::<String>::new());
    assert_eq!(s.ls("archive").len(), 2);
    assert!(s.journal().iter().all(|r| !matches!(&r.state, State::Attempt { resend: true, .. })));
}
