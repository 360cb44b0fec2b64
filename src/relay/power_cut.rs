//! The power-cut test: the relay drains a spool into the real SMTP test server while every
//! file-system step under the spool is recorded ([`crate::spool::durable::record`]); then,
//! for cut points chosen at random (several seeds) and right after some `250`s, the state
//! a POSIX-pessimistic file system could be left in is rebuilt (a file's content only as
//! of its last `fsync`, a folder's entries only as of its last `fsync`, nothing after the
//! cut), a new relay is started on it, and the test asserts that every item was delivered
//! at least once, that none is parked or left behind, and that an item is delivered twice
//! only when its `250` came before the cut while its `sent` record was not durable, then
//! under the same Message-ID and marked `resend`.
//!
//! Unlike a SIGKILL (tests/it/relay.rs), which keeps the page cache, this loses whatever
//! was not flushed. The model ([`Disk`]) is built from the recorded steps alone; after the
//! full run it must match the real folder, which shows that no step bypassed the record.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::deliver::{Deliver, DeliverFuture, Outgoing};
use crate::render::Templates;
use crate::spool::durable::record::{Recorded, Recording};
use crate::spool::{Record, State, SystemClock, journal};

use super::{PassReport, Pipeline, Relay, SpoolMode};

/// Items in the spool (every fourth a voicemail with its side file).
const ITEMS: usize = 24;
/// Random cut points, one per seed.
const SEEDS: u64 = 64;

/// A node of the rebuilt file system: a file's durable bytes, or a folder's entries as the
/// steps left them (`live`) and as of its last flush (`durable`).
#[derive(Clone)]
enum Node {
    File { durable: Vec<u8> },
    Dir { live: BTreeMap<OsString, usize>, durable: BTreeMap<OsString, usize> },
}

/// The spool folder as the recorded steps change it, with what each flush made durable.
#[derive(Clone)]
struct Disk {
    base: PathBuf,
    nodes: Vec<Node>,
    /// Steps naming a path the model does not know (a step that bypassed the record).
    unknown: Vec<String>,
}

const ROOT: usize = 0;

impl Disk {
    /// The folder `base` as it is now, all of it durable (written before the recording).
    fn snapshot(base: &Path) -> Disk {
        let mut disk = Disk { base: base.to_owned(), nodes: Vec::new(), unknown: Vec::new() };
        disk.read_tree(base);
        disk
    }

    fn read_tree(&mut self, path: &Path) -> usize {
        let meta = std::fs::symlink_metadata(path).unwrap();
        if !meta.is_dir() {
            return self.add(Node::File { durable: std::fs::read(path).unwrap() });
        }
        let id = self.add(Node::Dir { live: BTreeMap::new(), durable: BTreeMap::new() });
        for entry in std::fs::read_dir(path).unwrap() {
            let entry = entry.unwrap();
            let child = self.read_tree(&entry.path());
            if let Node::Dir { live, durable } = &mut self.nodes[id] {
                live.insert(entry.file_name(), child);
                durable.insert(entry.file_name(), child);
            }
        }
        id
    }

    fn add(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn live(&mut self, dir: usize) -> &mut BTreeMap<OsString, usize> {
        match &mut self.nodes[dir] {
            Node::Dir { live, .. } => live,
            Node::File { .. } => panic!("not a folder"),
        }
    }

    /// The node at `path` (by the live entries).
    fn resolve(&self, path: &Path) -> Option<usize> {
        let mut at = ROOT;
        for part in path.strip_prefix(&self.base).ok()?.components() {
            let Node::Dir { live, .. } = &self.nodes[at] else { return None };
            at = *live.get(part.as_os_str())?;
        }
        Some(at)
    }

    /// The folder holding `path`, and its name there.
    fn parent(&mut self, path: &Path) -> Option<(usize, OsString)> {
        let dir = self.resolve(path.parent()?)?;
        matches!(self.nodes[dir], Node::Dir { .. }).then(|| (dir, path.file_name().unwrap().to_owned()))
    }

    fn apply(&mut self, step: &Recorded) {
        let missing = |what: &str, path: &Path| format!("{what} {}", path.display());
        let result = match step {
            Recorded::CreateDir(p) | Recorded::CreateDirAll(p) => self.create_dirs(p),
            Recorded::CreateFile(p) => match self.parent(p) {
                Some((dir, name)) if self.live(dir).contains_key(&name) => Ok(()),
                Some((dir, name)) => {
                    let file = self.add(Node::File { durable: Vec::new() });
                    self.live(dir).insert(name, file);
                    Ok(())
                }
                None => Err(missing("create in", p)),
            },
            Recorded::Rename(from, to) | Recorded::HardLink(from, to) => {
                let node = match (self.parent(from), matches!(step, Recorded::Rename(..))) {
                    (Some((dir, name)), true) => self.live(dir).remove(&name),
                    (Some(_), false) => self.resolve(from),
                    (None, _) => None,
                };
                match (node, self.parent(to)) {
                    (Some(node), Some((dir, name))) => {
                        self.live(dir).insert(name, node);
                        Ok(())
                    }
                    _ => Err(missing("move", from)),
                }
            }
            Recorded::RemoveFile(p) | Recorded::RemoveDir(p) | Recorded::RemoveTree(p) => match self.parent(p) {
                Some((dir, name)) => self.live(dir).remove(&name).map(|_| ()).ok_or_else(|| missing("remove", p)),
                None => Err(missing("remove", p)),
            },
            Recorded::SyncFile(p, bytes) => match self.resolve(p).map(|n| &mut self.nodes[n]) {
                Some(Node::File { durable }) => {
                    durable.clone_from(bytes);
                    Ok(())
                }
                _ => Err(missing("flush", p)),
            },
            Recorded::SyncDir(p) => match self.resolve(p).map(|n| &mut self.nodes[n]) {
                Some(Node::Dir { live, durable }) => {
                    durable.clone_from(live);
                    Ok(())
                }
                _ => Err(missing("flush", p)),
            },
            Recorded::Mark(_) => Ok(()),
        };
        if let Err(e) = result {
            self.unknown.push(e);
        }
    }

    fn create_dirs(&mut self, path: &Path) -> Result<(), String> {
        let mut at = ROOT;
        let relative = path.strip_prefix(&self.base).map_err(|_| format!("outside: {}", path.display()))?;
        for part in relative.components() {
            let name = part.as_os_str().to_owned();
            at = match self.live(at).get(&name) {
                Some(next) => *next,
                None => {
                    let dir = self.add(Node::Dir { live: BTreeMap::new(), durable: BTreeMap::new() });
                    self.live(at).insert(name, dir);
                    dir
                }
            };
        }
        Ok(())
    }

    /// Writes out what the flushes made durable into the new folder `to` (a file reached
    /// by two names is one file with two links).
    fn rebuild(&self, to: &Path) {
        let mut written = HashMap::new();
        std::fs::create_dir_all(to).unwrap();
        self.write_dir(ROOT, to, &mut written, 0);
    }

    fn write_dir(&self, dir: usize, to: &Path, written: &mut HashMap<usize, PathBuf>, depth: usize) {
        assert!(depth < 16, "a folder inside itself");
        let Node::Dir { durable, .. } = &self.nodes[dir] else { unreachable!() };
        for (name, &node) in durable {
            let path = to.join(name);
            match &self.nodes[node] {
                Node::File { durable } => match written.get(&node) {
                    Some(first) => std::fs::hard_link(first, &path).unwrap(),
                    None => {
                        std::fs::write(&path, durable).unwrap();
                        written.insert(node, path);
                    }
                },
                Node::Dir { .. } => {
                    std::fs::create_dir(&path).unwrap();
                    self.write_dir(node, &path, written, depth + 1);
                }
            }
        }
    }

    /// Every path the live entries hold, relative to the base.
    fn live_paths(&self) -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        let mut stack = vec![(ROOT, PathBuf::new())];
        while let Some((dir, at)) = stack.pop() {
            let Node::Dir { live, .. } = &self.nodes[dir] else { continue };
            for (name, &node) in live {
                out.insert(at.join(name));
                stack.push((node, at.join(name)));
            }
        }
        out
    }
}

/// Every path under `base`, relative to it.
fn real_paths(base: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![base.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            out.insert(path.strip_prefix(base).unwrap().to_owned());
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
        }
    }
    out
}

/// The real transport, noting the Message-ID of every message the server accepted (and,
/// while recording, marking the `250` in the order of the file-system steps).
struct Witness {
    inner: Box<dyn Deliver>,
    recording: Option<Arc<Recording>>,
    accepted: Mutex<Vec<String>>,
}

fn message_id(mail: &Outgoing) -> String {
    let text = String::from_utf8_lossy(&mail.bytes);
    let line = text.lines().find(|l| l.to_ascii_lowercase().starts_with("message-id:")).expect("a Message-ID");
    line["message-id:".len()..].trim().to_owned()
}

impl Deliver for Witness {
    fn deliver<'a>(&'a self, mail: &'a Outgoing) -> DeliverFuture<'a> {
        Box::pin(async move {
            let receipt = self.inner.deliver(mail).await?;
            let id = message_id(mail);
            if let Some(recording) = &self.recording {
                recording.mark(id.clone());
            }
            self.accepted.lock().unwrap().push(id);
            Ok(receipt)
        })
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// A spool with its configuration, delivering to the test server on `port`.
struct Site {
    spool: PathBuf,
    config: Config,
}

impl Site {
    fn new(spool: &Path, port: &str, domain: &str) -> Site {
        let toml = format!(
            "[mail]\nfrom = \"Voice Mail <vm@{domain}>\"\n[delivery]\nurl = \"smtp://127.0.0.1:{port}\"\nstarttls = \"off\"\npool_size = 2\n\
             [spool]\ndir = {spool:?}\nconcurrency = 2\n",
        );
        Site { spool: spool.to_owned(), config: Config::from_toml(&toml, &spool.with_extension("toml")).unwrap() }
    }

    fn relay(&self, witness: Arc<Witness>) -> Relay {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let directory = crate::enrich::directory::load_file(&fixtures.join("directory.ldif"), &self.config.dialplan).unwrap();
        let pipeline = Pipeline::new(self.config.clone(), Templates::builtin(), Some(Arc::new(directory)), None);
        let settings = self.config.spool.clone();
        Relay::open(Arc::new(pipeline), witness, &self.spool, SpoolMode::Own, &settings, Arc::new(SystemClock)).unwrap()
    }

    fn witness(&self, recording: Option<Arc<Recording>>) -> Arc<Witness> {
        let inner = crate::deliver::from_settings(self.config.delivery.as_ref().unwrap()).unwrap();
        Arc::new(Witness { inner, recording, accepted: Mutex::default() })
    }

    fn journal(&self) -> Vec<Record> {
        let mut out = Vec::new();
        journal::replay(&self.spool.join("state/journal.jsonl"), |r| out.push(r)).unwrap();
        out
    }

    fn names(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(self.spool.join(sub)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }
}

fn pass(relay: &Relay) -> PassReport {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(relay.pass(None)).unwrap()
}

/// Puts the items into `spool` as a producer does: side file first, header renamed in.
fn fill(spool: &Path, run: &str) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let missed = std::fs::read_to_string(fixtures.join("mc-legacy-blog-shape.txt")).unwrap();
    let voicemail = std::fs::read_to_string(fixtures.join("vm-legacy-blog-shape.txt")).unwrap();
    let staging = spool.with_extension("staging");
    std::fs::create_dir_all(&staging).unwrap();
    for i in 0..ITEMS {
        let call_id = format!("cut-{run}-{i:03}");
        let text = if i % 4 == 0 {
            let side = format!("vm{i:03}.wav");
            std::fs::copy(fixtures.join("575a75dc-3e35-4640-97c2-4c7f3f274236.wav"), spool.join(&side)).unwrap();
            voicemail.replace("1c941dfb-9165-4438-930c-f7e266e92d98", &call_id).replace("575a75dc-3e35-4640-97c2-4c7f3f274236.wav", &side)
        } else {
            missed.replace("6e838afc-7d1a-4ad5-b1e3-fde1990e11e7", &call_id)
        };
        std::fs::write(staging.join("h.txt"), text).unwrap();
        std::fs::rename(staging.join("h.txt"), spool.join(format!("item{i:03}.txt"))).unwrap();
    }
}

/// The item keys whose `sent` record is in `records`, and the Message-ID each item's
/// attempts carried.
fn sent_and_ids(records: &[Record]) -> (BTreeSet<String>, HashMap<String, String>) {
    let mut sent = BTreeSet::new();
    let mut ids = HashMap::new();
    for r in records {
        match &r.state {
            State::Sent { .. } => {
                sent.insert(r.item.clone());
            }
            State::Attempt { message_id, .. } => {
                ids.insert(message_id.clone(), r.item.clone());
            }
            _ => {}
        }
    }
    (sent, ids)
}

/// Cut points: one at random per seed (xorshift), and right after a few `250`s (the
/// window the promise allows a resend in).
fn cut_points(steps: &[Recorded]) -> Vec<usize> {
    let mut cuts: Vec<usize> = (1..=SEEDS)
        .map(|seed| {
            let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % (steps.len() as u64 + 1)) as usize
        })
        .collect();
    let marks: Vec<usize> = steps.iter().enumerate().filter(|(_, s)| matches!(s, Recorded::Mark(_))).map(|(n, _)| n + 1).collect();
    cuts.extend(marks.iter().step_by((marks.len() / 4).max(1)));
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

#[test]
fn a_power_cut_at_any_step_loses_nothing_and_resends_only_an_unrecorded_250() {
    let Some(port) = smtp_plain_port() else { return };
    crate::deliver::install_crypto_provider();
    let tmp = tempfile::tempdir().unwrap();
    let run = format!("{:x}", jiff::Timestamp::now().as_microsecond());
    let domain = format!("power-cut-{run}.test");
    let first = Site::new(&tmp.path().join("spool"), &port, &domain);
    std::fs::create_dir(&first.spool).unwrap();
    fill(&first.spool, &run);

    let recording = Recording::start(&first.spool);
    let before = Disk::snapshot(&first.spool);
    let witness = first.witness(Some(recording.clone()));
    let report = {
        let relay = first.relay(witness.clone());
        pass(&relay)
    };
    let steps = recording.stop();
    assert_eq!(report, PassReport { delivered: ITEMS, ..PassReport::default() });
    let all: BTreeSet<String> = witness.accepted.lock().unwrap().iter().cloned().collect();
    assert_eq!(all.len(), ITEMS, "one Message-ID per item");

    let mut replayed = before.clone();
    for step in &steps {
        replayed.apply(step);
    }
    assert_eq!(replayed.unknown, Vec::<String>::new(), "every step names a path the record knows");
    assert_eq!(replayed.live_paths(), real_paths(&first.spool), "the record saw every change of the spool");

    let cuts = cut_points(&steps);
    let mut resends = 0;
    for cut in cuts {
        let mut disk = before.clone();
        for step in &steps[..cut] {
            disk.apply(step);
        }
        let site = Site::new(&tmp.path().join(format!("cut{cut}")), &port, &domain);
        disk.rebuild(&site.spool);
        let durable = site.journal();
        let (sent_before, _) = sent_and_ids(&durable);
        let accepted_before: BTreeSet<String> =
            steps[..cut].iter().filter_map(|s| if let Recorded::Mark(id) = s { Some(id.clone()) } else { None }).collect();

        let witness = site.witness(None);
        let relay = site.relay(witness.clone());
        let report = pass(&relay);
        assert_eq!(pass(&relay), PassReport::default(), "cut {cut}: one pass finishes everything");
        drop(relay);
        let after = witness.accepted.lock().unwrap().clone();
        let (_, keys) = sent_and_ids(&site.journal());
        let journal = site.journal();
        for id in &all {
            let again = after.iter().filter(|a| *a == id).count();
            let first_time = accepted_before.contains(id);
            assert!(again <= 1, "cut {cut} of {}: {id} sent {again} times after the restart", steps.len());
            assert!(first_time || again == 1, "cut {cut} of {}: {id} lost", steps.len());
            if first_time && again == 1 {
                resends += 1;
                let key = &keys[id];
                assert!(!sent_before.contains(key), "cut {cut}: {id} sent again although its `sent` record was durable");
                let marked = journal
                    .iter()
                    .any(|r| r.item == *key && matches!(&r.state, State::Attempt { message_id, resend: true, .. } if message_id == id));
                assert!(marked, "cut {cut}: {id} resent without being marked `resend` under its Message-ID");
            }
        }
        assert_eq!(report.parked, 0, "cut {cut}: nothing parked");
        assert_eq!(site.names("work"), Vec::<String>::new(), "cut {cut}: nothing left in work/");
        assert_eq!(site.names("failed"), Vec::<String>::new(), "cut {cut}: nothing parked");
        assert_eq!(site.names(""), ["archive", "failed", "state", "work"], "cut {cut}: nothing left in the spool folder");
        assert_eq!(site.names("archive").len(), ITEMS, "cut {cut}: every item archived once");
    }
    assert!(resends > 0, "the cuts right after a `250` exercise the resend window");
}

/// The plain SMTP port of the test server (scripts/smtp-server.sh), or `None` when server
/// tests are skipped on purpose (`CALLNOTE_SKIP_SERVER_TESTS=1`).
fn smtp_plain_port() -> Option<String> {
    if let Ok(port) = std::env::var("SMTP_PLAIN_PORT") {
        return Some(port);
    }
    if std::env::var("CALLNOTE_SKIP_SERVER_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED (CALLNOTE_SKIP_SERVER_TESTS=1): SMTP_PLAIN_PORT not set");
        return None;
    }
    panic!("SMTP_PLAIN_PORT is not set: start the real servers with scripts/test.sh, or set CALLNOTE_SKIP_SERVER_TESTS=1")
}
