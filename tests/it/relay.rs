//! `callnote relay` against the real SMTP test server (scripts/smtp-server.sh, plain port):
//! every fixture delivered exactly once and read back by Message-ID, bad fixtures parked
//! with their reason, 451-then-250 delivered once, 550 parked, a server that is down then
//! back, the connection ended with QUIT, a SIGKILL crash test over a spool of 500+ items, and
//! a soak test under mixed faults (relay/soak.rs).
//!
//! Each test gets its own `mail.from` domain, so its Message-IDs
//! (`<callnote.HASH@DOMAIN>`) are told apart from every other test's in the shared Maildir.
//! A test learns the Message-ID of each item it puts in the spool ([`Spool::drop_item`],
//! [`Spool::expect`]) and looks it up by call id.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use callnote::compose::NotificationId;
use callnote::intake::Parsed;
use callnote::pipeline::Pipeline;
use callnote::spool::{State, journal};

use crate::common::{fixture, server_env};

mod digest;
mod service;
mod soak;
mod tap;

struct Server {
    port: String,
    maildir: PathBuf,
}

fn server() -> Option<Server> {
    Some(Server { port: server_env("SMTP_PLAIN_PORT")?, maildir: PathBuf::from(server_env("SMTP_MAILDIR")?) })
}

/// A spool, its configuration and a unique sender domain.
struct Spool {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    config: PathBuf,
    domain: String,
    started: SystemTime,
    /// Call id -> the Message-ID its notification carries, for every item the test added.
    ids: Mutex<HashMap<String, String>>,
}

fn unique(tag: &str) -> String {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    format!("{tag}-{}-{nanos:x}", std::process::id())
}

impl Spool {
    fn new(tag: &str, port: &str, concurrency: u32) -> Spool {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("spool");
        std::fs::create_dir(&dir).unwrap();
        let domain = format!("{}.test", unique(tag));
        let spool =
            Spool { config: tmp.path().join("callnote.toml"), _tmp: tmp, dir, domain, started: SystemTime::now(), ids: Mutex::default() };
        spool.write_config(port, concurrency);
        spool
    }

    fn write_config(&self, port: &str, concurrency: u32) {
        let toml = format!(
            "[directory]\nsource = {:?}\n[mail]\nfrom = \"Voice Mail <vm@{}>\"\n[delivery]\nurl = \"smtp://127.0.0.1:{port}\"\nstarttls = \"off\"\ntimeout = \"30s\"\n\
             [spool]\ndir = {:?}\nmode = \"own\"\nmin_backoff = \"100ms\"\nmax_backoff = \"200ms\"\nmax_age = \"1h\"\nconcurrency = {concurrency}\n",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/directory.ldif"),
            self.domain,
            self.dir,
        );
        std::fs::write(&self.config, toml).unwrap();
    }

    fn from(&self) -> lettre::message::Mailbox {
        format!("Voice Mail <vm@{}>", self.domain).parse().unwrap()
    }

    /// The Message-ID of the notification of call `call_id` added by this test.
    fn message_id(&self, call_id: &str) -> String {
        let ids = self.ids.lock().unwrap();
        ids.get(call_id).unwrap_or_else(|| panic!("call {call_id} was not added by this test")).clone()
    }

    fn note(&self, id: NotificationId) {
        let message_id = id.message_id(&self.from());
        self.ids.lock().unwrap().insert(id.call_id.to_owned(), message_id);
    }

    /// The call id of a header file the relay will deliver (none for a bad or skipped one),
    /// noting its Message-ID: parsed and enriched as the relay does, with this spool's
    /// configuration and directory.
    fn expect(&self, path: &Path) -> Option<String> {
        match self.pipeline().parse_file(path) {
            Ok(Parsed::Event(event)) => {
                self.note(NotificationId::of(&event));
                Some(event.call_id)
            }
            _ => None,
        }
    }

    /// The pipeline the relay builds from this spool's configuration and directory.
    fn pipeline(&self) -> Pipeline {
        let config = callnote::config::Config::load(&self.config).unwrap();
        let Some(callnote::config::DirectorySource::File(directory)) = &config.directory else { panic!("a directory file") };
        let index = callnote::enrich::directory::load_file(directory, &config.dialplan).unwrap();
        Pipeline::new(config, callnote::render::Templates::builtin(), Some(Arc::new(index)), None)
    }

    /// Runs `callnote relay --once`; returns the exit code and stderr.
    fn run_once(&self) -> (i32, String) {
        let (code, _, stderr) = self.cli(&["relay", "--once"]);
        (code, stderr)
    }

    /// Runs `callnote relay --once` and SIGKILLs it at a random moment (up to `within_ms`)
    /// after it has started working (its first journal record), so no kill is wasted on
    /// start-up. True when it was killed, false when it finished first.
    fn run_once_and_kill(&self, rng: &mut Rng, within_ms: u64) -> bool {
        let mut child = Command::new(env!("CARGO_BIN_EXE_callnote"))
            .args(["relay", "--once", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let journal = self.dir.join("state/journal.jsonl");
        let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let before = len(&journal);
        let mut kill_at: Option<Instant> = None;
        let give_up = Instant::now() + Duration::from_secs(10);
        while Instant::now() < give_up {
            if child.try_wait().unwrap().is_some() {
                child.wait().unwrap();
                return false;
            }
            match kill_at {
                None if len(&journal) > before => kill_at = Some(Instant::now() + Duration::from_millis(rng.below(within_ms))),
                Some(at) if Instant::now() >= at => break,
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        true
    }

    /// Runs `callnote ARGS --config <this spool's config>`: exit code, stdout, stderr.
    fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_callnote")).args(args).arg("--config").arg(&self.config).output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
    }

    fn ls(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(self.dir.join(sub)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    fn records(&self) -> Vec<journal::Record> {
        let mut out = Vec::new();
        journal::replay(&self.dir.join("state/journal.jsonl"), |r| out.push(r)).unwrap();
        out
    }

    /// Message-ID -> how many messages the server stored with it, for this spool's domain.
    fn delivered(&self, server: &Server) -> HashMap<String, usize> {
        let suffix = format!("@{}>", self.domain.to_ascii_lowercase());
        let mut counts = HashMap::new();
        for entry in std::fs::read_dir(server.maildir.join("new")).unwrap() {
            let entry = entry.unwrap();
            if entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < self.started - Duration::from_secs(2)) {
                continue;
            }
            let Ok(bytes) = std::fs::read(entry.path()) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            let head = text.split("\r\n\r\n").next().unwrap_or("");
            for line in head.lines() {
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("message-id")
                    && value.trim().to_ascii_lowercase().ends_with(&suffix)
                {
                    *counts.entry(value.trim().to_owned()).or_insert(0) += 1;
                }
            }
        }
        counts
    }

    /// Writes a missed call (or, with `wav`, a voicemail and its side file) to `recipient`.
    fn drop_item(&self, name: &str, call_id: &str, recipient: &str, wav: bool) {
        self.drop_call(name, call_id, recipient, "+12895550147", wav);
    }

    /// [`Self::drop_item`] from `caller` (the header is whole before it is renamed in).
    fn drop_call(&self, name: &str, call_id: &str, recipient: &str, caller: &str, wav: bool) {
        let kind = if wav { callnote::Kind::Voicemail } else { callnote::Kind::MissedCall };
        self.note(NotificationId { call_id, recipient, kind });
        let (template, side) =
            if wav { ("vm-legacy-blog-shape.txt", Some(format!("{name}.wav"))) } else { ("mc-legacy-blog-shape.txt", None) };
        let mut text = std::fs::read_to_string(fixture(template))
            .unwrap()
            .replace("hannah.whitaker@contoso.com", recipient)
            .replace("6e838afc-7d1a-4ad5-b1e3-fde1990e11e7", call_id)
            .replace("1c941dfb-9165-4438-930c-f7e266e92d98", call_id)
            .replace("CallerId : +12895550147", &format!("CallerId : {caller}"));
        if let Some(side) = &side {
            text = text.replace("575a75dc-3e35-4640-97c2-4c7f3f274236.wav", side);
            std::fs::copy(fixture("575a75dc-3e35-4640-97c2-4c7f3f274236.wav"), self.dir.join(side)).unwrap();
        }
        let tmp = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(tmp, self.dir.join(format!("{name}.txt"))).unwrap();
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    v.sort();
    v
}

#[test]
fn every_fixture_is_delivered_once_and_bad_ones_are_parked_with_their_reason() {
    let Some(server) = server() else { return };
    let spool = Spool::new("relay-all", &server.port, 4);
    let mut expected = Vec::new();
    for path in files_in(&fixture("")) {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let is_item = name.ends_with(".txt") || name.ends_with(".wav") || name.ends_with(".tif");
        if !is_item || name == "README.md" {
            continue;
        }
        if name.ends_with(".txt")
            && let Some(call_id) = spool.expect(&path)
        {
            expected.push((name.clone(), call_id));
        }
        std::fs::copy(&path, spool.dir.join(&name)).unwrap();
    }
    let bad = files_in(&fixture("bad"));
    for path in &bad {
        std::fs::copy(path, spool.dir.join(path.file_name().unwrap())).unwrap();
    }
    assert_eq!((expected.len(), bad.len()), (30, 11), "the fixture set changed");

    let (code, stderr) = spool.run_once();
    assert_eq!(code, 1, "parked items make exit status 1: {stderr}");
    assert!(stderr.contains("relay: 30 delivered (0 sent again after a crash), 2 skipped, 11 parked, 0 deferred"), "{stderr}");

    let delivered = spool.delivered(&server);
    for (name, call_id) in &expected {
        assert_eq!(delivered.get(&spool.message_id(call_id)), Some(&1), "{name} (call {call_id}) must arrive exactly once");
    }
    assert_eq!(delivered.len(), 30);
    assert_eq!(spool.ls("work"), Vec::<String>::new());
    assert_eq!(spool.ls("archive").len(), 32, "30 delivered + HealthCheck + XSOVoiceMail");
    // A skipped header takes only side files named after itself: the XSOVoiceMail
    // fixture's audio has another name, so it stays, and `queue list` shows it.
    let xso_audio = "220f1eed-5b92-4853-80b9-a53dc794ffbf.wav";
    assert_eq!(spool.ls(""), [xso_audio, "archive", "failed", "state", "work"]);
    let xso = spool.ls("archive").into_iter().find(|id| id.ends_with("_xsovoicemail-2013.txt")).unwrap();
    assert_eq!(spool.ls(&format!("archive/{xso}")), ["xsovoicemail-2013.txt"]);
    let (_, list, _) = spool.cli(&["queue", "list"]);
    assert!(list.ends_with(&format!("waiting\t{xso_audio}\tside file: waits for the header that names it\n")), "{list}");

    let reasons: [(&str, &str); 11] = [
        ("binary-garbage.txt", "binary-garbage.txt:1: not text: invalid UTF-8 at byte 0"),
        ("duplicate-keys.txt", "duplicate-keys.txt:4: duplicate key `CallerId` (first on line 2)"),
        ("empty.txt", "empty.txt: empty file"),
        ("invalid-field-values.txt", "invalid-field-values.txt:3: invalid boolean `No` for NDRRequired (expected True or False)"),
        ("missing-messagetype.txt", "missing-messagetype.txt: missing MessageType"),
        ("ocs-doctype-entity-expansion.txt", "ocs-doctype-entity-expansion.txt:2: DTD not allowed in OCS XML"),
        ("ocs-missing-event-type.txt", "ocs-missing-event-type.txt:2: missing event type: `<Event>` has no `type` attribute"),
        ("ocs-truncated-xml.txt", "ocs-truncated-xml.txt:2: malformed XML: unexpected end of input inside `<From>`"),
        ("one-mb-junk-line.txt", "one-mb-junk-line.txt:3: line too long: over 65536 bytes"),
        ("unknown-messagetype.txt", "unknown-messagetype.txt:1: unknown MessageType `Telepathy`"),
        ("utf16le-no-bom.txt", "utf16le-no-bom.txt:1: encoding not detectable: NUL character in text"),
    ];
    let failed = spool.ls("failed");
    assert_eq!(failed.len(), 22, "{failed:?}");
    for (name, reason) in reasons {
        assert!(failed.contains(&name.to_owned()), "{name} not parked: {failed:?}");
        let report = std::fs::read_to_string(spool.dir.join("failed").join(format!("{name}.error.txt"))).unwrap();
        let first = report.lines().next().unwrap();
        assert!(first.starts_with("reason: ") && first.contains(reason), "{name}: {report}");
        assert!(report.contains("\nattempts: 1\n"), "{report}");
    }
}

#[test]
fn a_greylisting_server_gets_the_message_once_after_the_retry() {
    let Some(server) = server() else { return };
    let spool = Spool::new("relay-grey", &server.port, 2);
    let call_id = unique("grey");
    spool.drop_item("grey", &call_id, &format!("greylist-{}@contoso.com", unique("g")), false);

    let (code, stderr) = spool.run_once();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("relay: 0 delivered (0 sent again after a crash), 0 skipped, 0 parked, 1 deferred"), "{stderr}");
    assert_eq!(spool.ls("work").len(), 1);
    let deferred: Vec<String> = spool
        .records()
        .into_iter()
        .filter_map(|r| match r.state {
            State::Deferred { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(deferred.len(), 1);
    assert!(deferred[0].starts_with("rcpt to: ") && deferred[0].contains(" 451 "), "{deferred:?}");
    assert!(spool.delivered(&server).is_empty());

    std::thread::sleep(Duration::from_millis(300));
    let (code, stderr) = spool.run_once();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(spool.delivered(&server), HashMap::from([(spool.message_id(&call_id), 1)]));
    assert_eq!((spool.ls("work").len(), spool.ls("archive").len()), (0, 1));
}

#[test]
fn a_refused_recipient_is_parked_with_the_servers_reply() {
    let Some(server) = server() else { return };
    let spool = Spool::new("relay-550", &server.port, 2);
    let rcpt = format!("rejected-{}@contoso.com", unique("r"));
    let call_id = unique("refused");
    spool.drop_item("refused", &call_id, &rcpt, true);

    let (code, stderr) = spool.run_once();
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(spool.ls("failed"), ["refused.txt", "refused.txt.error.txt", "refused.wav"]);
    let report = std::fs::read_to_string(spool.dir.join("failed/refused.txt.error.txt")).unwrap();
    let first = report.lines().next().unwrap();
    let expected = format!("reason: rcpt to: 127.0.0.1:{} refused every recipient: <{rcpt}> 550", server.port);
    assert!(first.starts_with(&expected), "{report}");
    assert!(spool.delivered(&server).is_empty());

    // The journal, through `callnote queue`.
    let (code, list, _) = spool.cli(&["queue", "list"]);
    assert_eq!((code, list.lines().count()), (0, 1), "{list}");
    assert_eq!(list, format!("parked\trefused.txt\t{first}\n"));
    let (code, show, _) = spool.cli(&["queue", "show", &call_id]);
    let states: Vec<&str> = show.lines().map(|l| l.split("\"state\":\"").nth(1).unwrap().split('"').next().unwrap()).collect();
    assert_eq!((code, states), (0, vec!["claimed", "attempt", "failed", "done"]), "{show}");
    let (code, _, stderr) = spool.cli(&["queue", "show", "no-such-call"]);
    assert_eq!((code, stderr.as_str()), (1, "no-such-call: no journal record for this call\n"));
    let (code, retried, _) = spool.cli(&["queue", "retry", "refused.txt"]);
    assert_eq!(code, 0);
    assert_eq!(
        retried,
        format!("queued again: {}\nqueued again: {}\n", spool.dir.join("refused.wav").display(), spool.dir.join("refused.txt").display())
    );
    assert_eq!(spool.ls("failed"), Vec::<String>::new());
    assert_eq!(spool.ls(""), ["archive", "failed", "refused.txt", "refused.wav", "state", "work"]);
}

#[test]
fn the_relay_ends_its_smtp_connections_with_quit() {
    let Some(server) = server() else { return };
    let spool = Spool::new("relay-quit", &server.port, 1);
    spool.drop_item("quit", &unique("quit"), "hannah.whitaker@contoso.com", false);
    let (code, stderr) = spool.run_once();
    assert_eq!(code, 0, "{stderr}");
    // The envelope the server recorded for this spool's sender names the connection.
    let sender = format!("vm@{}", spool.domain);
    let connections: Vec<String> = std::fs::read_dir(server.maildir.join("envelope"))
        .unwrap()
        .filter_map(|e| {
            let json: serde_json::Value = serde_json::from_slice(&std::fs::read(e.unwrap().path()).ok()?).ok()?;
            (json["mail_from"] == sender.as_str()).then(|| json["connection"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(connections.len(), 1, "one delivery from {sender}");
    let quit = server.maildir.join("quit").join(&connections[0]);
    assert!(quit.exists(), "the relay said QUIT on connection {} before it exited", connections[0]);
}

#[test]
fn items_wait_while_the_server_is_down_and_all_go_once_it_is_back() {
    let Some(server) = server() else { return };
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let spool = Spool::new("relay-down", &closed, 4);
    let call_ids: Vec<String> = (0..6).map(|n| unique(&format!("down{n}"))).collect();
    for (n, call_id) in call_ids.iter().enumerate() {
        spool.drop_item(&format!("down{n}"), call_id, "hannah.whitaker@contoso.com", n % 2 == 0);
    }
    let (code, stderr) = spool.run_once();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("0 delivered (0 sent again after a crash), 0 skipped, 0 parked, 6 deferred"), "{stderr}");
    assert_eq!(spool.ls("work").len(), 6);
    let reasons: HashSet<String> = spool
        .records()
        .into_iter()
        .filter_map(|r| match r.state {
            State::Deferred { reason, .. } => Some(reason.split(':').next().unwrap().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, HashSet::from(["connect".to_owned()]));

    spool.write_config(&server.port, 4);
    std::thread::sleep(Duration::from_millis(300));
    let (code, stderr) = spool.run_once();
    assert_eq!(code, 0, "{stderr}");
    let want: HashMap<String, usize> = call_ids.iter().map(|c| (spool.message_id(c), 1)).collect();
    assert_eq!(spool.delivered(&server), want);
    assert_eq!((spool.ls("work").len(), spool.ls("archive").len()), (0, 6));
}

/// xorshift64*: enough randomness for kill timing without a crate.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[test]
fn killed_at_random_moments_the_relay_still_delivers_every_item_once() {
    let Some(server) = server() else { return };
    let spool = Spool::new("relay-crash", &server.port, 8);
    let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut rng = Rng(seed);
    let mut call_ids = Vec::new();
    let mut add = |spool: &Spool, n: usize| {
        for _ in 0..n {
            let i = call_ids.len();
            let call_id = format!("crash-{seed:x}-{i:05}");
            spool.drop_item(&format!("item{i:05}"), &call_id, "hannah.whitaker@contoso.com", i % 5 == 0);
            call_ids.push(call_id);
        }
    };
    add(&spool, 500);

    let started = Instant::now();
    let (mut kills, mut runs) = (0, 0);
    let sent = |spool: &Spool| spool.records().iter().filter(|r| matches!(r.state, State::Sent { .. })).count();
    // At least 20 kills, and enough of them landing on work that 100+ items got through
    // the killed runs (a loaded machine is slower; more runs then).
    while (kills < 20 || sent(&spool) < 100) && runs < 300 {
        runs += 1;
        let exited = !spool.run_once_and_kill(&mut rng, 400);
        if exited {
            // Drained before the kill: give it more to do, so every kill lands on work.
            add(&spool, 50);
        } else {
            kills += 1;
        }
    }
    let sent_while_killing = sent(&spool);
    assert!(sent_while_killing >= 100, "the kills must land on work: only {sent_while_killing} sent in {runs} runs");
    let mut last = (1, String::new());
    for _ in 0..5 {
        last = spool.run_once();
        if last.0 == 0 {
            break;
        }
    }
    assert_eq!(last.0, 0, "the final run must finish everything: {}", last.1);
    assert!(kills >= 20, "only {kills} kills in {runs} runs");

    let delivered = spool.delivered(&server);
    let records = spool.records();
    let resent: HashSet<String> = records
        .iter()
        .filter_map(|r| match &r.state {
            State::Attempt { message_id, resend: true, .. } => Some(message_id.clone()),
            _ => None,
        })
        .collect();
    let mut sent_per_call: HashMap<String, usize> = HashMap::new();
    let mut call_of_item: HashMap<&str, &str> = HashMap::new();
    for r in &records {
        match &r.state {
            State::Attempt { call_id, .. } => {
                call_of_item.insert(&r.item, call_id);
            }
            State::Sent { .. } => *sent_per_call.entry(call_of_item[r.item.as_str()].to_owned()).or_default() += 1,
            _ => {}
        }
    }
    let mut duplicates = Vec::new();
    for call_id in &call_ids {
        let message_id = spool.message_id(call_id);
        let n = delivered.get(&message_id).copied().unwrap_or(0);
        assert!(n >= 1, "{call_id} was never delivered");
        assert_eq!(sent_per_call.get(call_id), Some(&1), "{call_id}: exactly one `sent` record");
        if n > 1 {
            assert!(resent.contains(&message_id), "{call_id} arrived {n} times but was never in the at-least-once window");
            duplicates.push((call_id.clone(), n));
        }
    }
    assert_eq!(delivered.len(), call_ids.len());
    assert_eq!(spool.ls("work"), Vec::<String>::new());
    assert_eq!(spool.ls("failed"), Vec::<String>::new());
    assert_eq!(spool.ls(""), ["archive", "failed", "state", "work"]);
    // No phantom entries: a kill between archiving an item and its `done` record is
    // closed at the next start.
    let (code, list, _) = spool.cli(&["queue", "list"]);
    assert_eq!((code, list.as_str()), (0, ""));
    eprintln!(
        "crash test (seed {seed:x}): {} items, {kills} SIGKILLs in {runs} runs ({sent_while_killing} sent before the final run), {:.1} s; {} resent after an interrupted attempt, {} delivered twice: {duplicates:?}",
        call_ids.len(),
        started.elapsed().as_secs_f64(),
        resent.len(),
        duplicates.len()
    );
}

#[test]
fn a_header_naming_another_header_as_its_side_file_takes_nothing_and_every_item_arrives() {
    let Some(server) = server() else { return };
    let spool = Spool::new("relay-carry", &server.port, 4);
    let call_ids: Vec<String> = (0..20).map(|n| unique(&format!("carry{n:02}"))).collect();
    for (n, call_id) in call_ids.iter().enumerate() {
        spool.drop_item(&format!("item{n:02}"), call_id, "hannah.whitaker@contoso.com", n % 4 == 0);
    }
    // A HealthCheck (skipped) whose AttachmentName names a waiting header, and whose
    // AttachmentPath names another item's audio.
    let probe = "MessageType : HealthCheck\r\nCallId : \r\n\
                 AttachmentName : C:\\UnifiedMessaging\\voicemail\\item07.txt\r\n\
                 AttachmentPath : C:\\UnifiedMessaging\\voicemail\\item08.wav\r\n";
    std::fs::write(spool.dir.join("0000-probe.txt"), probe).unwrap();

    let (code, stderr) = spool.run_once();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("relay: 20 delivered (0 sent again after a crash), 1 skipped, 0 parked, 0 deferred"), "{stderr}");
    let want: HashMap<String, usize> = call_ids.iter().map(|c| (spool.message_id(c), 1)).collect();
    assert_eq!(spool.delivered(&server), want);
    let probe_id = spool.ls("archive").into_iter().find(|id| id.ends_with("_0000-probe.txt")).unwrap();
    assert_eq!(spool.ls(&format!("archive/{probe_id}")), ["0000-probe.txt"]);
    assert_eq!(spool.ls(""), ["archive", "failed", "state", "work"]);
    let journal_done = spool.records().iter().filter(|r| matches!(r.state, State::Done)).count();
    assert_eq!(journal_done, 21, "every item has its journal record");
}

#[test]
fn leftovers_are_listed_then_parked_or_reported_with_a_log_line() {
    use std::os::unix::ffi::OsStrExt as _;
    let Some(server) = server() else { return };
    let spool = Spool::new("relay-leftovers", &server.port, 2);
    let outside = spool.dir.parent().unwrap().join("outside.txt");
    std::fs::write(&outside, "MessageType : MissedCall\n").unwrap();
    std::os::unix::fs::symlink(&outside, spool.dir.join("link.txt")).unwrap();
    std::fs::create_dir(spool.dir.join("x.txt")).unwrap();
    std::fs::write(spool.dir.join(std::ffi::OsStr::from_bytes(b"r\xe9sum\xe9.txt")), "MessageType : MissedCall\n").unwrap();
    std::fs::write(spool.dir.join("notes.doc"), "minutes").unwrap();
    std::fs::write(spool.dir.join(".half.txt.tmp"), "MessageType : Missed").unwrap();
    let call_id = unique("leftover-ok");
    spool.drop_item("ok", &call_id, "hannah.whitaker@contoso.com", false);

    let (code, before, _) = spool.cli(&["queue", "list"]);
    assert_eq!(code, 0);
    assert_eq!(
        before,
        format!(
            "waiting\t.half.txt.tmp\thidden (being written?): taken once renamed\n\
             unhandled\tlink.txt\twill be parked: a symbolic link (to `{}`), not a header file: links are never followed\n\
             unhandled\tnotes.doc\tnot a header (*.txt, *.xml) nor a side file: left alone\n\
             waiting\tok.txt\theader, not claimed yet\n\
             unhandled\tr\\xe9sum\\xe9.txt\twill be parked: the file name is not UTF-8 (its bytes: `r\\xe9sum\\xe9.txt`)\n\
             unhandled\tx.txt\twill be parked: a folder, not a header file\n",
            outside.display()
        )
    );

    let (code, stderr) = spool.run_once();
    assert_eq!(code, 1, "parked strays make exit status 1: {stderr}");
    assert!(stderr.contains("relay: 1 delivered (0 sent again after a crash), 0 skipped, 3 parked, 0 deferred"), "{stderr}");
    for needle in ["link.txt", "x.txt", "/failed/r_sum_~"] {
        assert!(
            stderr.lines().any(|l| l.contains("WARN") && l.contains("parked") && l.contains(needle)),
            "no log line for {needle}: {stderr}"
        );
    }
    assert!(stderr.lines().any(|l| l.contains("WARN") && l.contains("notes.doc") && l.contains("left in the spool folder")), "{stderr}");
    assert_eq!(spool.delivered(&server), HashMap::from([(spool.message_id(&call_id), 1)]));
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "MessageType : MissedCall\n");
    assert_eq!(std::fs::read_link(spool.dir.join("failed/link.txt")).unwrap(), outside);

    let (_, after, _) = spool.cli(&["queue", "list"]);
    let lines: Vec<&str> = after.lines().collect();
    assert_eq!(lines.len(), 5, "{after}");
    assert!(lines[0].starts_with("parked\tlink.txt\treason: a symbolic link (to `"), "{after}");
    assert!(
        lines[1].starts_with("parked\tr_sum_~")
            && lines[1].ends_with(".txt\treason: the file name is not UTF-8 (its bytes: `r\\xe9sum\\xe9.txt`)"),
        "{after}"
    );
    assert_eq!(lines[2], "parked\tx.txt\treason: a folder, not a header file");
    assert_eq!(lines[3], "waiting\t.half.txt.tmp\thidden (being written?): taken once renamed");
    assert_eq!(lines[4], "unhandled\tnotes.doc\tnot a header (*.txt, *.xml) nor a side file: left alone");
}
