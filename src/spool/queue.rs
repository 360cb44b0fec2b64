//! What `callnote queue` reads and changes: the items the journal still has open, the
//! history of one call, the parked files, and putting a parked item back in the queue.
//!
//! Consumes the journal (read-only, [`super::journal::replay`]) and the spool folders;
//! produces views, and for `retry` moves a parked `own` item (side file first, then the
//! header, as a producer would) back into the spool folder, or in `tap` mode appends a
//! `done` record that makes the ledger forget the failure. Never rewrites the journal;
//! never changes a tap ledger while a relay holds the spool's lock. Returns [`SpoolError`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::entry::{EntryKind, entries};
use super::io;
use super::journal::{ItemStatus, Record, State, replay};
use super::{Journal, SpoolError, durable, names};

/// Every item whose last record is not `done`, oldest first.
pub fn open_items(journal: &Path) -> Result<Vec<(String, ItemStatus)>, SpoolError> {
    let (open, _) = super::journal::replay_open(journal)?;
    let mut items: Vec<_> = open.into_iter().collect();
    items.sort_by(|a, b| (a.1.first_at, &a.0).cmp(&(b.1.first_at, &b.0)));
    Ok(items)
}

/// Every record of every item that carried `call_id`, in journal order, the rotated
/// journals (`journal.<unix time in ns>.jsonl`) first; for a call held and then sent inside
/// a digest or replaced by a voicemail, that mail's item's records too.
pub fn history(journal: &Path, call_id: &str) -> Result<Vec<Record>, SpoolError> {
    let mut files: Vec<PathBuf> = super::journal::rotated(journal).into_iter().map(|(path, _)| path).collect();
    files.push(journal.to_owned());
    let mut items = HashSet::new();
    // item -> the item whose mail carried it (a digest, or the voicemail that replaced it)
    let mut carried_by = std::collections::HashMap::new();
    let ledger_suffix = format!("/{call_id}");
    for file in &files {
        replay(file, |r| {
            match &r.state {
                State::Attempt { call_id: c, .. } | State::Held { call_id: c, .. } if c == call_id => {
                    items.insert(r.item.clone());
                }
                State::Folded { into: by } | State::Replaced { by } => {
                    carried_by.insert(r.item.clone(), by.clone());
                }
                _ => {}
            }
            if r.item.ends_with(&ledger_suffix) {
                items.insert(r.item);
            }
        })?;
    }
    let carriers: Vec<String> = items.iter().filter_map(|item| carried_by.get(item).cloned()).collect();
    items.extend(carriers);
    let mut out = Vec::new();
    for file in &files {
        replay(file, |r| {
            if items.contains(&r.item) {
                out.push(r);
            }
        })?;
    }
    Ok(out)
}

/// The `.error.txt` reports in a `failed/` folder and in its item folders
/// (`failed/<id>/`, where a name parked twice goes): (parked name, first line), the name
/// as `retry` takes it (`NAME` or `<id>/NAME`).
pub fn parked(failed: &Path) -> Result<Vec<(String, String)>, SpoolError> {
    let mut out = Vec::new();
    reports_in(failed, "", &mut out)?;
    for entry in read_dir_or_empty(failed)? {
        if entry.file_type().is_ok_and(|t| t.is_dir())
            && let Ok(id) = entry.file_name().into_string()
        {
            reports_in(&entry.path(), &format!("{id}/"), &mut out)?;
        }
    }
    out.sort();
    Ok(out)
}

fn read_dir_or_empty(dir: &Path) -> Result<Vec<std::fs::DirEntry>, SpoolError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries.filter_map(|e| e.ok()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io("cannot list", dir)(e)),
    }
}

fn reports_in(dir: &Path, prefix: &str, out: &mut Vec<(String, String)>) -> Result<(), SpoolError> {
    for entry in read_dir_or_empty(dir)? {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if let Some(parked) = name.strip_suffix(".error.txt") {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            out.push((format!("{prefix}{parked}"), text.lines().next().unwrap_or("").to_owned()));
        }
    }
    Ok(())
}

/// An entry of an `own` spool folder that the journal does not know yet, for `queue list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// The name, escaped when it is not printable ([`names::shown`]).
    pub name: String,
    /// `waiting` (it will be taken) or `unhandled` (it will be parked, or left alone).
    pub label: &'static str,
    /// What will become of it.
    pub what: String,
}

/// What is in an `own` spool folder outside the journal: every entry but callnote's own
/// folders, with what will become of it ([`super::entry`]), sorted by name.
pub fn waiting(root: &Path) -> Result<Vec<Waiting>, SpoolError> {
    let mut out: Vec<Waiting> = entries(root)?
        .filter_map(|e| {
            let (label, what) = match e.kind {
                EntryKind::Own => return None,
                EntryKind::Header => ("waiting", "header, not claimed yet".to_owned()),
                EntryKind::SideFile => ("waiting", "side file: waits for the header that names it".to_owned()),
                EntryKind::InProgress => ("waiting", "hidden (being written?): taken once renamed".to_owned()),
                EntryKind::Stray { reason } => ("unhandled", format!("will be parked: {reason}")),
                EntryKind::Other => ("unhandled", "not a header (*.txt, *.xml) nor a side file: left alone".to_owned()),
            };
            let name = names::shown(e.path.file_name().unwrap_or_default());
            Some(Waiting { name, label, what })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `own`: moves `failed/NAME` (or `failed/<id>/NAME`) and the side files it names back into
/// the spool folder and removes its report. Returns the paths now in the spool folder (side
/// files first).
pub fn retry_own(root: &Path, name: &str) -> Result<Vec<PathBuf>, SpoolError> {
    let failed = root.join("failed");
    let not_parked = || SpoolError::NotParked { name: name.to_owned(), dir: failed.clone() };
    let (folder, file) = match name.split_once('/') {
        Some((id, file)) => (failed.join(id), file),
        None => (failed.clone(), name),
    };
    let plain = |n: &str| !n.is_empty() && n != "." && n != ".." && !n.contains('\\');
    let header = folder.join(file);
    let in_failed = name.split('/').all(plain) && name.split('/').count() <= 2;
    if !in_failed || !std::fs::symlink_metadata(&header).is_ok_and(|m| m.is_file()) {
        return Err(not_parked());
    }
    let mut moved = Vec::new();
    for side in side_files(&header) {
        let from = folder.join(&side);
        if std::fs::symlink_metadata(&from).is_ok_and(|m| m.is_file()) {
            durable::rename(&from, &root.join(&side)).map_err(io("cannot move", &from))?;
            moved.push(root.join(side));
        }
    }
    durable::rename(&header, &root.join(file)).map_err(io("cannot move", &header))?;
    moved.push(root.join(file));
    let report = folder.join(format!("{file}.error.txt"));
    std::fs::remove_file(&report).map_err(io("cannot remove", &report))?;
    if folder != failed {
        // Empty now unless something else was parked with it; then it stays.
        let _ = std::fs::remove_dir(&folder);
    }
    Ok(moved)
}

/// The side files a parked header refers to (`AttachmentName`/`AttachmentPath`/
/// `MessageFilePath`), read as text without parsing the header (it may be the reason it was
/// parked); only names a side file can have ([`names::is_side_file_name`]), never a header.
pub(crate) fn side_files(header: &Path) -> Vec<String> {
    let text = std::fs::read(header).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            let key = key.trim();
            ["AttachmentName", "AttachmentPath", "MessageFilePath"]
                .iter()
                .any(|k| key.eq_ignore_ascii_case(k))
                .then(|| value.trim().rsplit(['\\', '/']).next().unwrap_or("").to_owned())
        })
        .filter(|n| names::is_side_file_name(n))
        .collect()
}

/// `tap`: makes the ledger forget the failure of the file `name` (every key of its file
/// stem whose last record is `failed`) and removes its report, so the next pass takes it
/// again. Refused while a relay holds the lock of `state`. Returns the keys forgotten.
pub fn retry_tap(state: &Path, name: &str, now: jiff::Timestamp) -> Result<Vec<String>, SpoolError> {
    let lock_path = state.join("relay.lock");
    // Held until the ledger is changed, so no relay starts in between.
    let _guard = match std::fs::OpenOptions::new().write(true).open(&lock_path) {
        Ok(lock) => {
            #[allow(clippy::incompatible_msrv)]
            let taken = lock.try_lock();
            if taken.is_err() {
                return Err(SpoolError::Busy { path: lock_path });
            }
            Some(lock)
        }
        Err(_) => None,
    };
    let stem = Path::new(name).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let journal_path = state.join("journal.jsonl");
    let keys: Vec<String> = open_items(&journal_path)?
        .into_iter()
        .filter(|(key, s)| key.starts_with(&format!("{stem}/")) && matches!(s.last, State::Failed { .. }))
        .map(|(key, _)| key)
        .collect();
    if keys.is_empty() {
        return Err(SpoolError::NotParked { name: name.to_owned(), dir: state.join("failed") });
    }
    let (journal, _) = Journal::open(&journal_path)?;
    for key in &keys {
        journal.append(key, now, State::Done)?;
    }
    let report = state.join("failed").join(format!("{name}.error.txt"));
    if report.exists() {
        std::fs::remove_file(&report).map_err(io("cannot remove", &report))?;
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn open_items_and_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let (j, _) = Journal::open(&path).unwrap();
        let attempt = |c: &str| State::Attempt { attempt: 1, call_id: c.into(), message_id: "<m>".into(), resend: false };
        j.append("a", t(0), State::Claimed { name: "a.txt".into() }).unwrap();
        j.append("a", t(1), attempt("call-a")).unwrap();
        j.append("b", t(2), attempt("call-b")).unwrap();
        j.append("a", t(3), State::Deferred { attempt: 1, reason: "451".into(), next_at: t(60) }).unwrap();
        j.append("b", t(4), State::Sent { queue_id: None, reply: "250".into() }).unwrap();
        j.append("b", t(5), State::Done).unwrap();
        let open = open_items(&path).unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!((open[0].0.as_str(), open[0].1.attempts, open[0].1.call_id.as_deref()), ("a", 1, Some("call-a")));
        let h: Vec<(String, i64)> =
            history(&path, "call-b").unwrap().into_iter().map(|r| (r.item, r.at.as_second() - 1_800_000_000)).collect();
        assert_eq!(h, [("b".to_owned(), 2), ("b".to_owned(), 4), ("b".to_owned(), 5)]);
    }

    #[test]
    fn retry_moves_a_parked_item_back_with_its_side_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("failed")).unwrap();
        std::fs::write(root.join("failed/x.txt"), "MessageType : VoiceMail\r\nAttachmentName : C:\\vm\\x.wav\r\n").unwrap();
        std::fs::write(root.join("failed/x.wav"), "RIFF").unwrap();
        std::fs::write(root.join("failed/x.txt.error.txt"), "reason: rcpt to: 550 no such user\nitem: 1_x.txt\n").unwrap();
        assert_eq!(parked(&root.join("failed")).unwrap(), [("x.txt".to_owned(), "reason: rcpt to: 550 no such user".to_owned())]);
        let moved = retry_own(root, "x.txt").unwrap();
        assert_eq!(moved, [root.join("x.wav"), root.join("x.txt")]);
        assert_eq!(std::fs::read_dir(root.join("failed")).unwrap().count(), 0);
        let err = retry_own(root, "x.txt").unwrap_err();
        assert_eq!(err.to_string(), format!("`x.txt` is not parked in {}", root.join("failed").display()));
    }

    #[test]
    fn tap_retry_forgets_the_failure() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path();
        let (j, _) = Journal::open(&state.join("journal.jsonl")).unwrap();
        j.append("0b1c/call-1", t(0), State::Failed { reason: "550".into() }).unwrap();
        j.append("9f9f/call-2", t(0), State::Sent { queue_id: None, reply: "250".into() }).unwrap();
        drop(j);
        assert_eq!(retry_tap(state, "0b1c.txt", t(9)).unwrap(), ["0b1c/call-1"]);
        let open: Vec<String> = open_items(&state.join("journal.jsonl")).unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(open, ["9f9f/call-2"]);
        assert!(matches!(retry_tap(state, "9f9f.txt", t(9)), Err(SpoolError::NotParked { .. })));
    }
}
