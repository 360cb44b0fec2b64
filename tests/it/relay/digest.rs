//! `[digest]` against the real SMTP server, the relay run in-process on a clock the test
//! moves: repeated missed calls become one immediate mail and one digest, callers are
//! never mixed, a voicemail replaces its held missed call, held items survive a restart,
//! and with no `[digest]` every call is sent as it comes. The crash test with holds runs
//! `callnote relay --once` and kills it (see [`killed_while_digests_are_open_every_call_is_accounted_for_once`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use callnote::relay::{PassReport, Relay, Stages};
use callnote::spool::{Clock, Record, State};
use jiff::Timestamp;

use super::{Rng, Server, Spool, server};

struct TestClock(Mutex<Timestamp>);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

const PRIYA: &str = "+12895550147";
const OTHER: &str = "+14165550123";
const HANNAH: &str = "hannah.whitaker@contoso.com";

/// A spool with `[digest]` settings, and a relay over it on a clock the test moves.
struct Digest {
    spool: Spool,
    server: Server,
    clock: Arc<TestClock>,
    runtime: tokio::runtime::Runtime,
}

impl Digest {
    fn new(tag: &str, digest: &str) -> Option<Digest> {
        let server = server()?;
        let spool = Spool::new(tag, &server.port, 4);
        if !digest.is_empty() {
            let mut toml = std::fs::read_to_string(&spool.config).unwrap();
            toml += &format!("[digest]\n{digest}");
            std::fs::write(&spool.config, toml).unwrap();
        }
        let clock = Arc::new(TestClock(Mutex::new(Timestamp::now())));
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        Some(Digest { spool, server, clock, runtime })
    }

    /// The stages the relay's configuration builds (as a start or a reload does).
    fn stages(&self) -> (Stages, callnote::spool::SpoolSettings) {
        let pipeline = self.spool.pipeline();
        callnote::deliver::install_crypto_provider();
        let transport = callnote::deliver::from_settings(pipeline.config().delivery.as_ref().unwrap()).unwrap();
        let settings = pipeline.config().spool.clone();
        (Stages { pipeline: Arc::new(pipeline), transport: Arc::from(transport) }, settings)
    }

    fn relay(&self) -> Relay {
        let (stages, settings) = self.stages();
        Relay::open(stages.pipeline, stages.transport, &self.spool.dir, settings.mode, &settings, self.clock.clone()).unwrap()
    }

    fn pass(&self, relay: &Relay) -> PassReport {
        self.runtime.block_on(async {
            let report = relay.pass(None).await.unwrap();
            relay.close().await;
            report
        })
    }

    fn advance(&self, secs: u64) {
        let mut now = self.clock.0.lock().unwrap();
        *now = now.checked_add(Duration::from_secs(secs)).unwrap();
    }

    /// Writes a missed call (or a voicemail) from `caller` to Hannah.
    fn call(&self, name: &str, call_id: &str, caller: &str, voicemail: bool) {
        self.spool.drop_call(name, call_id, HANNAH, caller, voicemail);
    }

    fn mails(&self) -> Vec<String> {
        mails(&self.spool, &self.server)
    }

    fn records(&self) -> Vec<Record> {
        self.spool.records()
    }
}

/// The full text of every message the server stored for `spool`, oldest first.
fn mails(spool: &Spool, server: &Server) -> Vec<String> {
    let suffix = format!("@{}>", spool.domain.to_ascii_lowercase());
    let mut found: Vec<(SystemTime, String)> = Vec::new();
    for entry in std::fs::read_dir(server.maildir.join("new")).unwrap() {
        let entry = entry.unwrap();
        let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
        let head = text.split("\r\n\r\n").next().unwrap_or("").to_ascii_lowercase();
        if head.lines().any(|l| l.starts_with("message-id:") && l.trim_end().ends_with(&suffix)) {
            found.push((entry.metadata().unwrap().modified().unwrap(), text));
        }
    }
    found.sort();
    found.into_iter().map(|(_, text)| text).collect()
}

/// The item id of each call id, from the journal.
fn items_by_call(records: &[Record]) -> HashMap<String, String> {
    records
        .iter()
        .filter_map(|r| match &r.state {
            State::Held { call_id, .. } | State::Attempt { call_id, .. } => Some((call_id.clone(), r.item.clone())),
            _ => None,
        })
        .collect()
}

fn states_of<'a>(records: &'a [Record], item: &str) -> Vec<&'a State> {
    records.iter().filter(|r| r.item == item).map(|r| &r.state).collect()
}

fn subject(mail: &str) -> String {
    mail_parser::MessageParser::default().parse(mail.as_bytes()).and_then(|m| m.subject().map(str::to_owned)).unwrap_or_default()
}

#[test]
fn five_missed_calls_in_two_minutes_make_one_mail_at_once_and_one_digest_of_the_four_later_ones() {
    let Some(d) = Digest::new("digest-five", "window = \"5m\"\n") else { return };
    let relay = d.relay();
    for n in 0..5 {
        d.call(&format!("mc{n}"), &format!("five-{n}"), PRIYA, false);
        let report = d.pass(&relay);
        let expected = if n == 0 { (1, 0) } else { (0, n) };
        assert_eq!((report.delivered, report.held), expected, "call {n}: {report:?}");
        assert_eq!(d.mails().len(), 1, "only the first call is sent at once");
        d.advance(30);
    }
    d.advance(270 - 30);
    assert_eq!(d.pass(&relay).delivered, 0, "the window runs 5 minutes from the last call");
    assert_eq!(relay.next_due().map(|t| t.as_second()), Some(d.clock.now().as_second() + 30));
    d.advance(30);
    let report = d.pass(&relay);
    // the three other calls are still held when the pass lists them; the digest concludes them
    assert_eq!((report.delivered, report.held), (1, 3), "{report:?}");

    let mails = d.mails();
    assert_eq!(mails.len(), 2);
    let records = d.records();
    let item = items_by_call(&records);
    let leader = &item["five-1"];
    let members: Vec<String> = (1..5).map(|n| item[&format!("five-{n}")].clone()).collect();
    assert!(states_of(&records, leader).contains(&&State::Gathers { members: members.clone() }));
    for member in &members[1..] {
        let states = states_of(&records, member);
        assert_eq!(states.iter().filter(|s| matches!(s, State::Folded { into } if into == leader)).count(), 1, "{states:?}");
        assert!(!states.iter().any(|s| matches!(s, State::Attempt { .. } | State::Sent { .. })), "{states:?}");
    }
    assert_eq!(records.iter().filter(|r| matches!(r.state, State::Sent { .. })).count(), 2);
    assert_eq!(d.spool.ls("work"), Vec::<String>::new());
    assert_eq!(d.spool.ls("archive").len(), 5);
    assert_digest_lists(&mails[1], 4);

    // `queue show` of a folded call names the digest and shows the digest's own records.
    let (code, shown, _) = d.spool.cli(&["queue", "show", "five-3"]);
    assert_eq!(code, 0);
    assert!(shown.contains(&format!("\"state\":\"folded\",\"into\":\"{leader}\"")), "{shown}");
    assert!(shown.contains(&format!("\"item\":\"{leader}\"")) && shown.contains("\"state\":\"sent\""), "{shown}");
}

/// The digest mail says how many calls it carries and lists each (one `  - TIME – NUMBER`
/// line per call in the text part).
fn assert_digest_lists(mail: &str, calls: usize) {
    let subject = subject(mail);
    assert!(subject.starts_with(&format!("{calls} more calls from ")), "{subject}");
    let listed = mail.split("\r\n").filter(|line| line.starts_with("  - ")).count();
    assert_eq!(listed, calls, "{mail}");
}

#[test]
fn two_callers_interleaved_get_two_independent_digests() {
    let Some(d) = Digest::new("digest-two", "window = \"5m\"\n") else { return };
    let relay = d.relay();
    for n in 0..6 {
        let caller = if n % 2 == 0 { PRIYA } else { OTHER };
        d.call(&format!("mc{n}"), &format!("two-{n}"), caller, false);
        d.pass(&relay);
        d.advance(20);
    }
    assert_eq!(d.mails().len(), 2, "the first call of each caller at once");
    d.advance(300);
    assert_eq!(d.pass(&relay).delivered, 2);
    let records = d.records();
    let item = items_by_call(&records);
    for (leader, other) in [("two-2", "two-4"), ("two-3", "two-5")] {
        let expect = vec![item[leader].clone(), item[other].clone()];
        assert!(states_of(&records, &item[leader]).contains(&&State::Gathers { members: expect }), "{leader}");
    }
    let mails = d.mails();
    assert_eq!(mails.len(), 4);
    for mail in &mails[2..] {
        assert_digest_lists(mail, 2);
    }
}

#[test]
fn a_voicemail_replaces_its_held_missed_call() {
    let Some(d) = Digest::new("digest-vm", "hold_missed = \"1m\"\n") else { return };
    let relay = d.relay();
    d.call("mc", "vm-call", PRIYA, false);
    d.call("other", "other-call", OTHER, false);
    assert_eq!(d.pass(&relay).held, 2);
    d.advance(20);
    d.call("vm", "vm-call", PRIYA, true);
    let report = d.pass(&relay);
    // `mc` was counted held when the pass listed work/, before the voicemail took it.
    assert_eq!((report.delivered, report.held), (1, 2), "{report:?}");
    let mails = d.mails();
    assert_eq!(mails.len(), 1);
    assert!(subject(&mails[0]).to_lowercase().contains("voice"), "{}", subject(&mails[0]));
    assert!(mails[0].contains("Also called"), "the voicemail tells of the replaced call: {}", mails[0]);
    let records = d.records();
    let item = items_by_call(&records);
    let voicemail = records.iter().find(|r| matches!(&r.state, State::Attempt { call_id, .. } if call_id == "vm-call")).unwrap();
    let missed = records.iter().find(|r| matches!(&r.state, State::Held { call_id, .. } if call_id == "vm-call")).unwrap();
    assert!(states_of(&records, &missed.item).contains(&&State::Replaced { by: voicemail.item.clone() }));
    assert!(!states_of(&records, &missed.item).iter().any(|s| matches!(s, State::Sent { .. })));

    // The other caller's missed call goes alone once its minute is over.
    d.advance(40);
    assert_eq!(d.pass(&relay).delivered, 1);
    assert_eq!(d.mails().len(), 2);
    assert!(states_of(&d.records(), &item["other-call"]).iter().any(|s| matches!(s, State::Sent { .. })));
    assert_eq!(d.spool.ls("work"), Vec::<String>::new());
}

#[test]
fn held_calls_survive_a_restart_and_their_digest_goes_once() {
    let Some(d) = Digest::new("digest-restart", "window = \"2m\"\n") else { return };
    {
        let relay = d.relay();
        for n in 0..3 {
            d.call(&format!("mc{n}"), &format!("restart-{n}"), PRIYA, false);
            d.pass(&relay);
            d.advance(10);
        }
    }
    assert_eq!(d.mails().len(), 1);
    d.advance(200);
    let relay = d.relay();
    assert_eq!(d.pass(&relay).delivered, 1, "the digest of the two held calls, after the restart");
    assert_eq!(d.pass(&relay).delivered, 0);
    assert_eq!(d.mails().len(), 2);
    assert_digest_lists(&d.mails()[1], 2);
    assert_eq!(d.spool.ls("work"), Vec::<String>::new());
}

#[test]
fn a_reload_keeps_the_held_calls() {
    let Some(d) = Digest::new("digest-reload", "window = \"2m\"\n") else { return };
    let relay = d.relay();
    for n in 0..3 {
        d.call(&format!("mc{n}"), &format!("reload-{n}"), PRIYA, false);
        d.pass(&relay);
        d.advance(10);
    }
    relay.stages().replace(d.stages().0);
    assert_eq!(d.pass(&relay).held, 2, "still held after the reload");
    d.advance(200);
    assert_eq!(d.pass(&relay).delivered, 1);
    assert_digest_lists(&d.mails()[1], 2);
}

#[test]
fn a_tapped_folder_gets_its_digest_even_when_the_held_files_leave_it() {
    let Some(d) = Digest::new("digest-tap", "window = \"5m\"\n") else { return };
    let state = d.spool.dir.parent().unwrap().join("state");
    let config = std::fs::read_to_string(&d.spool.config)
        .unwrap()
        .replace("mode = \"own\"", &format!("mode = \"tap\"\nstate_dir = {state:?}\nsettle = \"1s\""));
    std::fs::write(&d.spool.config, config).unwrap();
    let old = SystemTime::now() - Duration::from_secs(60);
    for n in 0..3 {
        d.call(&format!("mc{n}"), &format!("tap-{n}"), PRIYA, false);
        let path = d.spool.dir.join(format!("mc{n}.txt"));
        std::fs::File::options().append(true).open(&path).unwrap().set_modified(old).unwrap();
    }
    let relay = d.relay();
    let report = d.pass(&relay);
    assert_eq!((report.delivered, report.held), (1, 2), "{report:?}");
    let ledger = || {
        let mut out = Vec::new();
        callnote::spool::journal::replay(&state.join("journal.jsonl"), |r| out.push(r)).unwrap();
        out
    };
    let held: Vec<String> = ledger()
        .iter()
        .filter_map(|r| match &r.state {
            State::Held { call_id, .. } => Some(call_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(std::fs::read_dir(state.join("held")).unwrap().count(), 2, "a copy of each held call");
    // Exchange takes the held files away; the copies are what the digest is made of.
    for n in 0..3 {
        if held.contains(&format!("tap-{n}")) {
            std::fs::remove_file(d.spool.dir.join(format!("mc{n}.txt"))).unwrap();
        }
    }
    assert_eq!(d.pass(&relay).delivered, 0);
    d.advance(300);
    assert_eq!(d.pass(&relay).delivered, 1);
    assert_eq!(d.pass(&relay).delivered, 0, "the digest goes once; the file still in the folder is not sent again");
    let mails = d.mails();
    assert_eq!(mails.len(), 2);
    assert_digest_lists(&mails[1], 2);
    assert_eq!(held.len(), 2);
    let records = ledger();
    assert_eq!(records.iter().filter(|r| matches!(r.state, State::Folded { .. })).count(), 1, "the ledger records the folded call");
    assert_eq!(std::fs::read_dir(state.join("held")).unwrap().count(), 0, "the copies go once the digest is sent");
}

/// The running service (streaming claims, woken by file-system events and by the next hold
/// falling due, never by the rescan here): a caller's first call held for its voicemail
/// then sent alone, the next two in one digest; another caller's missed call replaced by
/// its voicemail.
#[test]
fn the_running_service_sends_digests_and_replacements_on_time() {
    let Some(server) = server() else { return };
    let spool = Spool::new("digest-svc", &server.port, 4);
    let mut toml = std::fs::read_to_string(&spool.config).unwrap();
    toml += "rescan = \"5m\"\n[digest]\nwindow = \"1500ms\"\nhold_missed = \"700ms\"\n";
    std::fs::write(&spool.config, toml).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_callnote"))
        .args(["relay", "--config"])
        .arg(&spool.config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    super::service::wait_for("the relay's journal", || spool.dir.join("state/journal.jsonl").exists());
    let call = |name: &str, call_id: &str, caller: &str, voicemail: bool| spool.drop_call(name, call_id, HANNAH, caller, voicemail);
    let held = |call_id: &str| spool.records().iter().any(|r| matches!(&r.state, State::Held { call_id: c, .. } if c == call_id));
    call("other-missed", "svc-x", OTHER, false);
    call("mc0", "svc-0", PRIYA, false);
    super::service::wait_for("the missed call held", || held("svc-x"));
    call("other-vm", "svc-x", OTHER, true);
    for n in 1..3 {
        std::thread::sleep(Duration::from_millis(200));
        call(&format!("mc{n}"), &format!("svc-{n}"), PRIYA, false);
    }
    super::service::wait_for("three mails", || mails(&spool, &server).len() >= 3);
    std::thread::sleep(Duration::from_secs(2));
    super::service::signal(&child, "-TERM");
    assert!(child.wait().unwrap().success());
    let mails = mails(&spool, &server);
    let subjects: Vec<String> = mails.iter().map(|m| subject(m)).collect();
    assert_eq!(mails.len(), 3, "{subjects:?}");
    assert_eq!(subjects.iter().filter(|s| s.to_lowercase().contains("voice")).count(), 1, "{subjects:?}");
    let journal = || spool.records().iter().map(|r| format!("{} {} {:?}", r.at, r.item, r.state)).collect::<Vec<_>>().join("\n");
    let digest =
        mails.iter().find(|m| subject(m).starts_with("2 more calls")).unwrap_or_else(|| panic!("a digest: {subjects:?}\n{}", journal()));
    assert_digest_lists(digest, 2);
    assert_eq!(spool.ls("work"), Vec::<String>::new());
    let records = spool.records();
    assert_eq!(records.iter().filter(|r| matches!(r.state, State::Replaced { .. })).count(), 1);
    assert_eq!(records.iter().filter(|r| matches!(r.state, State::Folded { .. })).count(), 1);
}

#[test]
fn without_a_digest_section_every_call_is_sent_as_it_comes() {
    let Some(d) = Digest::new("digest-off", "") else { return };
    let relay = d.relay();
    for n in 0..3 {
        d.call(&format!("mc{n}"), &format!("off-{n}"), PRIYA, false);
        assert_eq!(d.pass(&relay).delivered, 1);
    }
    assert_eq!(d.mails().len(), 3);
    let records = d.records();
    let names: HashSet<&str> = records.iter().map(|r| r.state.name()).collect();
    assert_eq!(names, HashSet::from(["claimed", "attempt", "sent", "done"]));
}

/// Every call ends once: sent alone, folded into a digest, replaced by a voicemail, or
/// parked; a digest (or any mail) goes twice only after a crash in its attempt.
#[test]
fn killed_while_digests_are_open_every_call_is_accounted_for_once() {
    let Some(server) = server() else { return };
    let spool = Spool::new("digest-crash", &server.port, 8);
    let mut toml = std::fs::read_to_string(&spool.config).unwrap();
    toml += "[digest]\nwindow = \"300ms\"\nmax_calls = 4\nmax_hold = \"1s\"\nhold_missed = \"200ms\"\nreplace_same_caller = \"2s\"\n";
    std::fs::write(&spool.config, toml).unwrap();
    let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut rng = Rng(seed);
    let callers: Vec<String> = (0..12).map(|n| format!("+1289555{:04}", 100 + n)).collect();
    let mut calls: Vec<String> = Vec::new();
    let mut add = |spool: &Spool, rng: &mut Rng, n: usize| {
        for _ in 0..n {
            let i = calls.len();
            let caller = &callers[rng.below(callers.len() as u64) as usize];
            // One in six is a voicemail; half of them for the call just before (its missed call).
            let voicemail = i % 6 == 5;
            let call_id = if voicemail && i % 12 == 5 { format!("dc-{seed:x}-{:05}", i - 1) } else { format!("dc-{seed:x}-{i:05}") };
            let name = format!("item{i:05}");
            spool.drop_call(&name, &call_id, HANNAH, caller, voicemail);
            calls.push(name);
        }
    };
    add(&spool, &mut rng, 500);

    let (mut kills, mut runs) = (0, 0);
    let started = Instant::now();
    while kills < 20 && runs < 300 {
        runs += 1;
        let exited = !spool.run_once_and_kill(&mut rng, 300);
        if exited {
            std::thread::sleep(Duration::from_millis(rng.below(400)));
            if spool.ls("").len() <= 4 {
                add(&spool, &mut rng, 30);
            }
        } else {
            kills += 1;
        }
    }
    assert!(kills >= 20, "only {kills} kills in {runs} runs");
    // Drain: the holds close on the clock, so run until nothing is left in work/.
    for _ in 0..60 {
        let (code, stderr) = spool.run_once();
        assert!(code == 0 || stderr.contains("held"), "{stderr}");
        if spool.ls("work").is_empty() && spool.ls("").len() == 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    assert_eq!(spool.ls("work"), Vec::<String>::new(), "every held call ends");

    let records = spool.records();
    let mut name_of: HashMap<&str, &str> = HashMap::new();
    let mut ends: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut resent_message_ids = HashSet::new();
    let mut message_id_of: HashMap<&str, &str> = HashMap::new();
    for r in &records {
        match &r.state {
            State::Claimed { name } => {
                name_of.insert(&r.item, name);
            }
            State::Attempt { message_id, resend, .. } => {
                message_id_of.insert(&r.item, message_id);
                if *resend {
                    resent_message_ids.insert(message_id.clone());
                }
            }
            State::Sent { .. } | State::Folded { .. } | State::Replaced { .. } | State::Failed { .. } => {
                ends.entry(&r.item).or_default().push(r.state.name())
            }
            _ => {}
        }
    }
    let mut by_name: HashMap<&str, Vec<&str>> = HashMap::new();
    for (item, name) in &name_of {
        by_name.entry(name.trim_end_matches(".txt")).or_default().extend(ends.get(item).cloned().unwrap_or_default());
    }
    let (mut folded, mut replaced) = (0, 0);
    for name in &calls {
        let got = by_name.get(name.as_str()).cloned().unwrap_or_default();
        assert_eq!(got.len(), 1, "{name} must end exactly once: {got:?}");
        assert_ne!(got[0], "failed", "{name} was parked");
        folded += usize::from(got[0] == "folded");
        replaced += usize::from(got[0] == "replaced");
    }
    let delivered = spool.delivered(&server);
    let sent_items: Vec<&str> = ends.iter().filter(|(_, e)| e.contains(&"sent")).map(|(i, _)| *i).collect();
    assert_eq!(delivered.len(), sent_items.len(), "one message per `sent` record");
    for item in sent_items {
        let message_id = message_id_of[item];
        let n = delivered.get(message_id).copied().unwrap_or(0);
        assert!(n >= 1, "{item}: {message_id} never arrived");
        assert!(n == 1 || resent_message_ids.contains(message_id), "{item}: {message_id} arrived {n} times outside the crash window");
    }
    assert!(folded > 0 && replaced > 0, "the run must exercise digests ({folded} folded) and replacements ({replaced})");
    eprintln!(
        "digest crash test (seed {seed:x}): {} calls, {kills} SIGKILLs in {runs} runs, {:.1} s; {folded} folded into digests, {replaced} replaced by voicemails, {} mails, {} resent",
        calls.len(),
        started.elapsed().as_secs_f64(),
        delivered.len(),
        resent_message_ids.len()
    );
}
