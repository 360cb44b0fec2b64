//! The delivery journal: one append-only file of JSON lines, each record `fsync`ed before
//! the step it announces is taken. It is what makes the relay exactly-once across crashes:
//! on start-up it is replayed and every item still in `work/` resumes from its last record.
//!
//! Records (`state` field): `claimed` (the file was taken), `attempt` (about to hand the
//! message to the server; carries the call id and Message-ID), `deferred` (a temporary
//! failure, with the reason and the next attempt), `sent` (the server's 250 and queue id),
//! `skipped` (not a notification), `failed` (parked, with the reason), `done` (the item left
//! `work/`); with `[digest]`, `held` (waiting for a digest or a voicemail), `gathers` (the
//! held items a mail carries, before its attempt), `folded` / `replaced` (concluded inside
//! that mail, after its `sent`). A record torn by a crash (the last line without its newline) is cut off when
//! the journal is opened; a damaged line elsewhere is skipped with a warning.
//!
//! Never rewrites or reorders existing records; returns [`SpoolError`].

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::SpoolError;
use super::durable::fs;

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub at: Timestamp,
    /// The item id (its folder name under `work/`, or the ledger key in `tap` mode).
    pub item: String,
    #[serde(flatten)]
    pub state: State,
}

/// What happened to an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    Claimed {
        name: String,
    },
    Attempt {
        attempt: u32,
        call_id: String,
        message_id: String,
        /// The previous attempt was interrupted by a crash after it was recorded: the
        /// server may already have the message (the at-least-once window, see README).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resend: bool,
    },
    Deferred {
        attempt: u32,
        reason: String,
        next_at: Timestamp,
    },
    Sent {
        queue_id: Option<String>,
        reply: String,
    },
    Skipped {
        message_type: String,
    },
    Failed {
        reason: String,
    },
    /// Held back by `[digest]`: `key` names the (recipient, caller) it is held with; `alone`
    /// when it is held only for `hold_missed` (then sent alone unless a voicemail replaces
    /// it), else it waits for its digest.
    Held {
        key: String,
        call_id: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        alone: bool,
    },
    /// This item's mail carries these held items (a digest's first call, or the voicemail
    /// that replaces them); written before its attempt, so a resend carries the same ones.
    Gathers {
        members: Vec<String>,
    },
    /// Sent inside the digest of the item `into` (its `sent` record is on disk).
    Folded {
        into: String,
    },
    /// Replaced by the voicemail of the item `by` (its `sent` record is on disk).
    Replaced {
        by: String,
    },
    Done,
}

impl State {
    /// The record's `state` as written in the journal (`claimed`, `attempt`, …).
    pub fn name(&self) -> &'static str {
        match self {
            State::Claimed { .. } => "claimed",
            State::Attempt { .. } => "attempt",
            State::Deferred { .. } => "deferred",
            State::Sent { .. } => "sent",
            State::Skipped { .. } => "skipped",
            State::Failed { .. } => "failed",
            State::Held { .. } => "held",
            State::Gathers { .. } => "gathers",
            State::Folded { .. } => "folded",
            State::Replaced { .. } => "replaced",
            State::Done => "done",
        }
    }
}

/// What the journal says about an item that has not left `work/` yet.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemStatus {
    pub name: Option<String>,
    pub call_id: Option<String>,
    pub first_at: Timestamp,
    /// When its last record was written.
    pub last_at: Timestamp,
    pub attempts: u32,
    pub last: State,
    /// The held items this item's mail carries (its `gathers` record), if any.
    pub members: Vec<String>,
}

impl ItemStatus {
    /// An item whose first record, written `at`, is `state` (apply it to count it).
    pub fn new(at: Timestamp, state: State) -> ItemStatus {
        ItemStatus { name: None, call_id: None, first_at: at, last_at: at, attempts: 0, last: state, members: Vec::new() }
    }

    /// Applies one record, written `at`.
    pub fn apply(&mut self, at: Timestamp, state: &State) {
        self.last_at = at;
        match state {
            State::Claimed { name } => self.name = Some(name.clone()),
            State::Attempt { attempt, call_id, .. } => {
                self.attempts = *attempt;
                self.call_id = Some(call_id.clone());
            }
            State::Held { call_id, .. } => self.call_id = Some(call_id.clone()),
            State::Gathers { members } => self.members = members.clone(),
            _ => {}
        }
        self.last = state.clone();
    }
}

/// The open journal. Appends are serialized; durable appends are group-committed
/// ([`super::durable::Group`]): one `fsync` makes every record written before it durable,
/// so items that finish together wait for one sync instead of queueing for one each.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    writer: Mutex<File>,
    /// A second handle on the file, for `fsync` outside the writer's lock.
    syncer: File,
    group: super::durable::Group,
}

impl Journal {
    /// Opens (or creates) the journal at `path`, repairs a torn last record and returns the
    /// status of every item whose last record is not `done`.
    pub fn open(path: &Path) -> Result<(Journal, HashMap<String, ItemStatus>), SpoolError> {
        Journal::open_rotating(path, ROTATE_AT)
    }

    /// [`open`](Self::open), rotating a journal longer than `rotate_at` bytes: its records
    /// move to `journal.<unix time in ns>.jsonl` beside it and the new journal starts with a
    /// snapshot of the open items (first record at their first time, attempts, last state).
    /// The snapshot is complete and synced before it replaces the journal, so a crash at
    /// any point leaves either journal whole.
    pub fn open_rotating(path: &Path, rotate_at: u64) -> Result<(Journal, HashMap<String, ItemStatus>), SpoolError> {
        let (journal, open) = Journal::open_plain(path)?;
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len <= rotate_at {
            return Ok((journal, open));
        }
        drop(journal);
        rotate(path, &open)?;
        let (journal, reopened) = Journal::open_plain(path)?;
        debug_assert_eq!(reopened.len(), open.len());
        Ok((journal, reopened))
    }

    fn open_plain(path: &Path) -> Result<(Journal, HashMap<String, ItemStatus>), SpoolError> {
        let io = |action: &'static str| move |source| SpoolError::Io { action, path: path.to_owned(), source };
        let (open, good_len) = replay_open(path)?;
        let file = fs::open_or_create(path, true).map_err(io("cannot open the journal"))?;
        if file.metadata().map_err(io("cannot read the journal"))?.len() > good_len {
            tracing::warn!(journal = %path.display(), "cutting off a record torn by a crash");
            fs::set_len(&file, path, good_len).map_err(io("cannot repair the journal"))?;
        }
        fs::sync_file(&file, path).map_err(io("cannot sync the journal"))?;
        if let Some(dir) = path.parent() {
            super::durable::sync_dir(dir).map_err(io("cannot sync the journal's folder"))?;
        }
        let sync_handle = file.try_clone().map_err(io("cannot open the journal"))?;
        let journal = Journal { path: path.to_owned(), writer: Mutex::new(file), syncer: sync_handle, group: Default::default() };
        Ok((journal, open))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and returns once it (and every record before it) is on disk.
    pub fn append(&self, item: &str, at: Timestamp, state: State) -> Result<(), SpoolError> {
        let ticket = self.write(item, at, state)?;
        self.group.wait(ticket, || fs::sync_data(&self.syncer, &self.path)).map_err(|source| self.error(source))
    }

    /// Appends one record without waiting for the disk: for records whose loss in a crash
    /// is harmless (`claimed`: the item is in `work/` anyway; `done`: it has left it). The
    /// next durable append makes it durable too.
    pub fn append_unsynced(&self, item: &str, at: Timestamp, state: State) -> Result<(), SpoolError> {
        self.write(item, at, state).map(|_| ())
    }

    fn write(&self, item: &str, at: Timestamp, state: State) -> Result<u64, SpoolError> {
        let record = Record { at, item: item.to_owned(), state };
        let mut line = serde_json::to_vec(&record).expect("a journal record always serializes");
        line.push(b'\n');
        let mut file = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let len = file.metadata().map_err(|e| self.error(e))?.len();
        if let Err(e) = fs::write_all(&mut file, &self.path, &line) {
            // Never leave half a line that the next record would be glued to.
            let _ = fs::set_len(&file, &self.path, len);
            return Err(self.error(e));
        }
        Ok(self.group.changed())
    }

    fn error(&self, source: std::io::Error) -> SpoolError {
        SpoolError::Io { action: "cannot append to the journal", path: self.path.clone(), source }
    }
}

/// Journals longer than this are rotated when opened.
pub const ROTATE_AT: u64 = 64 << 20;

/// Writes the snapshot of `open` as `<journal>.new`, syncs it, links the old journal to
/// `journal.<unix time in ns>.jsonl`, then renames the snapshot over the journal.
fn rotate(path: &Path, open: &HashMap<String, ItemStatus>) -> Result<(), SpoolError> {
    let io = |action: &'static str, p: &Path| {
        let p = p.to_owned();
        move |source| SpoolError::Io { action, path: p, source }
    };
    let mut items: Vec<(&String, &ItemStatus)> = open.iter().collect();
    items.sort_by(|a, b| (a.1.first_at, a.0).cmp(&(b.1.first_at, b.0)));
    let mut text = Vec::new();
    let mut push = |item: &str, at: Timestamp, state: State| {
        let record = Record { at, item: item.to_owned(), state };
        text.extend(serde_json::to_vec(&record).expect("a journal record always serializes"));
        text.push(b'\n');
    };
    for (item, s) in items {
        if let Some(name) = &s.name {
            push(item, s.first_at, State::Claimed { name: name.clone() });
        }
        if !s.members.is_empty() && !matches!(s.last, State::Gathers { .. }) {
            push(item, s.first_at, State::Gathers { members: s.members.clone() });
        }
        if s.attempts > 0 && !matches!(s.last, State::Attempt { .. }) {
            let call_id = s.call_id.clone().unwrap_or_default();
            push(item, s.first_at, State::Attempt { attempt: s.attempts, call_id, message_id: String::new(), resend: false });
        }
        push(item, s.last_at, s.last.clone());
    }
    let fresh = path.with_extension("jsonl.new");
    super::durable::write_file(&fresh, &text).map_err(io("cannot write", &fresh))?;
    let archived = path.with_file_name(format!("journal.{}.jsonl", Timestamp::now().as_nanosecond()));
    fs::hard_link(path, &archived).map_err(io("cannot keep the old journal as", &archived))?;
    super::durable::rename(&fresh, path).map_err(io("cannot replace", path))?;
    tracing::info!(journal = %path.display(), old = %archived.display(), open = open.len(), "journal rotated");
    Ok(())
}

/// Replays the journal at `path`: the status of every item whose last record is not
/// `done`, and the length of the well-formed part (see [`replay`]).
pub fn replay_open(path: &Path) -> Result<(HashMap<String, ItemStatus>, u64), SpoolError> {
    let mut open: HashMap<String, ItemStatus> = HashMap::new();
    let good_len = replay(path, |record| match record.state {
        State::Done => {
            open.remove(&record.item);
        }
        state => open.entry(record.item).or_insert_with(|| ItemStatus::new(record.at, state.clone())).apply(record.at, &state),
    })?;
    Ok((open, good_len))
}

/// The journals rotated out of the one at `path` (`journal.<unix time in ns>.jsonl` beside
/// it), oldest first, each with the time it was rotated.
pub fn rotated(path: &Path) -> Vec<(PathBuf, Timestamp)> {
    let Some(Ok(entries)) = path.parent().map(std::fs::read_dir) else { return Vec::new() };
    let mut out: Vec<(PathBuf, Timestamp)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let ns: i128 = name.strip_prefix("journal.")?.strip_suffix(".jsonl")?.parse().ok()?;
            let at = Timestamp::from_nanosecond(ns).ok()?;
            Some((p, at))
        })
        .collect();
    out.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    out
}

/// Deletes the rotated journals of the one at `path` that were rotated before `before`;
/// returns how many went.
pub fn prune_rotated(path: &Path, before: Timestamp) -> Result<usize, SpoolError> {
    let mut removed = 0;
    for (old, _) in rotated(path).into_iter().filter(|(_, at)| *at < before) {
        fs::remove_file(&old).map_err(|source| SpoolError::Io { action: "cannot delete the old journal", path: old.clone(), source })?;
        tracing::info!(journal = %old.display(), "old journal deleted ([spool] archive_keep)");
        removed += 1;
    }
    Ok(removed)
}

/// Reads every complete record of the journal at `path` in order (a missing file has
/// none); returns the length of the well-formed part (a torn last line is not included).
pub fn replay(path: &Path, mut each: impl FnMut(Record)) -> Result<u64, SpoolError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(SpoolError::Io { action: "cannot read the journal", path: path.to_owned(), source });
        }
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let (mut good, mut number) = (0u64, 0usize);
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(|source| SpoolError::Io {
            action: "cannot read the journal",
            path: path.to_owned(),
            source,
        })?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(good);
        }
        number += 1;
        good += n as u64;
        match serde_json::from_slice::<Record>(&line) {
            Ok(record) => each(record),
            Err(e) => {
                tracing::warn!(journal = %path.display(), line = number, error = %e, "skipping a damaged journal record")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn replays_open_items_and_forgets_done_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        {
            let (j, open) = Journal::open(&path).unwrap();
            assert!(open.is_empty());
            j.append("a", t(0), State::Claimed { name: "a.txt".into() }).unwrap();
            j.append("b", t(1), State::Claimed { name: "b.txt".into() }).unwrap();
            let attempt = State::Attempt { attempt: 1, call_id: "c-a".into(), message_id: "<m@x>".into(), resend: false };
            j.append("a", t(2), attempt).unwrap();
            j.append("b", t(3), State::Sent { queue_id: Some("Q1".into()), reply: "250 ok".into() }).unwrap();
            j.append("b", t(4), State::Done).unwrap();
        }
        let (_, open) = Journal::open(&path).unwrap();
        assert_eq!(open.len(), 1);
        let a = &open["a"];
        assert_eq!((a.name.as_deref(), a.call_id.as_deref(), a.first_at, a.attempts), (Some("a.txt"), Some("c-a"), t(0), 1));
        assert!(matches!(a.last, State::Attempt { attempt: 1, resend: false, .. }));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().nth(2).unwrap(),
            r#"{"at":"2027-01-15T08:00:02Z","item":"a","state":"attempt","attempt":1,"call_id":"c-a","message_id":"<m@x>"}"#
        );
    }

    #[test]
    fn a_torn_last_record_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let (j, _) = Journal::open(&path).unwrap();
        j.append("a", t(0), State::Claimed { name: "a.txt".into() }).unwrap();
        drop(j);
        let whole = std::fs::read(&path).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(br#"{"at":"2027-01-15T08:00:01Z","item":"a","sta"#);
        std::fs::write(&path, &torn).unwrap();
        let (j, open) = Journal::open(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), whole);
        assert_eq!(open["a"].last, State::Claimed { name: "a.txt".into() });
        j.append("a", t(1), State::Done).unwrap();
        let (_, open) = Journal::open(&path).unwrap();
        assert!(open.is_empty());
    }

    #[test]
    fn concurrent_appends_are_whole_lines_in_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let (j, _) = Journal::open(&path).unwrap();
        std::thread::scope(|scope| {
            for thread in 0..8 {
                let j = &j;
                scope.spawn(move || {
                    for n in 0..25 {
                        let item = format!("t{thread}-{n}");
                        j.append_unsynced(&item, t(n), State::Claimed { name: item.clone() }).unwrap();
                        j.append(&item, t(n), State::Failed { reason: "r".into() }).unwrap();
                    }
                });
            }
        });
        let mut count = 0;
        replay(&path, |_| count += 1).unwrap();
        assert_eq!(count, 400);
        let (_, open) = Journal::open(&path).unwrap();
        assert_eq!(open.len(), 200);
        assert_eq!(open["t7-24"].name.as_deref(), Some("t7-24"));
    }

    #[test]
    fn a_long_journal_is_rotated_to_a_snapshot_of_its_open_items() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        {
            let (j, _) = Journal::open(&path).unwrap();
            j.append("a", t(0), State::Claimed { name: "a.txt".into() }).unwrap();
            let attempt = State::Attempt { attempt: 2, call_id: "c-a".into(), message_id: "<m>".into(), resend: false };
            j.append("a", t(1), attempt).unwrap();
            j.append("a", t(2), State::Deferred { attempt: 2, reason: "451".into(), next_at: t(99) }).unwrap();
            for n in 0..20 {
                let item = format!("done{n}");
                j.append(&item, t(3), State::Claimed { name: format!("{item}.txt") }).unwrap();
                j.append(&item, t(4), State::Done).unwrap();
            }
            j.append("k/call", t(5), State::Failed { reason: "550".into() }).unwrap();
        }
        let whole = std::fs::read(&path).unwrap();
        let (_, before) = Journal::open(&path).unwrap();
        let (j, after) = Journal::open_rotating(&path, 100).unwrap();
        assert_eq!(after, before);
        assert_eq!(after["a"].attempts, 2);
        assert_eq!(after["a"].first_at, t(0));
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 4, "claimed + attempt + deferred, failed");
        let archived: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_str().unwrap();
                name.starts_with("journal.") && name.ends_with(".jsonl") && name != "journal.jsonl"
            })
            .collect();
        assert_eq!(archived.len(), 1, "{archived:?}");
        assert_eq!(std::fs::read(&archived[0]).unwrap(), whole);
        j.append("a", t(6), State::Done).unwrap();
        let (_, open) = Journal::open(&path).unwrap();
        assert_eq!(open.keys().collect::<Vec<_>>(), ["k/call"]);
    }

    #[test]
    fn a_rotation_keeps_what_is_held_and_what_a_deferred_digest_carries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        {
            let (j, _) = Journal::open(&path).unwrap();
            let held = |call_id: &str| State::Held { key: "to | from".into(), call_id: call_id.into(), alone: false };
            for item in ["lead", "m1", "m2"] {
                j.append(item, t(0), State::Claimed { name: format!("{item}.txt") }).unwrap();
                j.append(item, t(1), held(&format!("c-{item}"))).unwrap();
            }
            j.append("lead", t(2), State::Gathers { members: vec!["lead".into(), "m1".into()] }).unwrap();
            let attempt = State::Attempt { attempt: 1, call_id: "c-lead".into(), message_id: "<m>".into(), resend: false };
            j.append("lead", t(3), attempt).unwrap();
            j.append("lead", t(4), State::Deferred { attempt: 1, reason: "451".into(), next_at: t(99) }).unwrap();
            for n in 0..20 {
                j.append(&format!("done{n}"), t(5), State::Done).unwrap();
            }
        }
        let (_, before) = Journal::open(&path).unwrap();
        let (_, after) = Journal::open_rotating(&path, 100).unwrap();
        assert_eq!(after, before);
        assert_eq!(after["lead"].members, ["lead", "m1"]);
        assert_eq!((after["m2"].call_id.as_deref(), after["m2"].last_at), (Some("c-m2"), t(1)));
    }

    #[test]
    fn rotated_journals_older_than_the_cutoff_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        std::fs::write(&path, "").unwrap();
        let old = |s: i64| dir.path().join(format!("journal.{}.jsonl", t(s).as_nanosecond()));
        for s in [0, 10, 20] {
            std::fs::write(old(s), "").unwrap();
        }
        std::fs::write(dir.path().join("journal.notatime.jsonl"), "").unwrap();
        assert_eq!(rotated(&path).iter().map(|r| r.1).collect::<Vec<_>>(), [t(0), t(10), t(20)]);
        assert_eq!(prune_rotated(&path, t(10)).unwrap(), 1);
        assert_eq!(rotated(&path).into_iter().map(|r| r.0).collect::<Vec<_>>(), [old(10), old(20)]);
        assert!(path.exists() && dir.path().join("journal.notatime.jsonl").exists(), "only rotated journals are deleted");
    }

    #[test]
    fn a_damaged_middle_record_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        std::fs::write(&path, "garbage\n{\"at\":\"2027-01-15T08:00:00Z\",\"item\":\"x\",\"state\":\"failed\",\"reason\":\"r\"}\n").unwrap();
        let (_, open) = Journal::open(&path).unwrap();
        assert_eq!(open["x"].last, State::Failed { reason: "r".into() });
    }
}
