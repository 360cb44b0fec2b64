//! The `tap` mode of the relay: one file of a tapped folder waits until it (and its side
//! file) has settled, is looked up in the ledger by (file GUID, CallId), then prepared and
//! handed to the shared delivery path ([`super::item`]). Nothing in the folder is ever
//! moved, renamed or written; parked files get a report in `<state>/failed/`.
//!
//! Kept state is bounded: files concluded are remembered by signature ([`Seen`]) only
//! while they are in the folder, and at most [`SEEN_MAX`] of them; a ledger entry is
//! forgotten once its file has left the folder and `ledger_keep` has passed since its last
//! record (by then the file cannot come back to be sent again).
//!
//! Consumes the tapped folder's listing ([`TapFolder`]); produces [`Next`] steps; returns
//! [`SpoolError`] only when the state folder fails.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use jiff::Timestamp;

use super::item::{Conclusion, Ending, ItemOutcome, Mode, Next, causes};
use super::{Core, format_chain};
use crate::pipeline::Outcome;
use crate::spool::tap::{Signature, ledger_key};
use crate::spool::{Entry, EntryKind, SpoolError, SpoolSettings, State, TapFolder};

/// How many concluded files [`Seen`] remembers at most.
pub(crate) const SEEN_MAX: usize = 200_000;

/// A claimed file of the tapped folder: its ledger key, and its signature when it was
/// read (`None` for a stray, which is never remembered).
pub(crate) struct TapItem {
    path: PathBuf,
    key: String,
    sig: Option<Signature>,
}

/// The `tap` mode: the folder, the files already concluded, and the ledger's retention.
pub(crate) struct TapMode {
    folder: TapFolder,
    settle: Duration,
    ledger_keep: Duration,
    seen: Mutex<Seen>,
}

/// Files already concluded, by path, with the signature they had then and the pass that
/// last saw them: a file seen unchanged is not read again. A cache of the ledger (which
/// decides), bounded: files gone from the folder are forgotten after a whole pass, and
/// when full the entries not seen in the current pass go (all of them if that is not
/// enough); a forgotten file is only read again and found in the ledger.
#[derive(Debug)]
pub(crate) struct Seen {
    files: HashMap<PathBuf, (Signature, u64)>,
    max: usize,
}

impl Seen {
    pub(crate) fn new(max: usize) -> Seen {
        Seen { files: HashMap::new(), max: max.max(1) }
    }

    fn remember(&mut self, path: &Path, sig: Signature, pass: u64) {
        if self.files.len() >= self.max && !self.files.contains_key(path) {
            self.files.retain(|_, (_, last)| *last >= pass);
            if self.files.len() >= self.max {
                self.files.clear();
            }
        }
        self.files.insert(path.to_owned(), (sig, pass));
    }

    /// Whether `path` was concluded with this signature; if so it counts as seen in `pass`.
    fn unchanged(&mut self, path: &Path, sig: Signature, pass: u64) -> bool {
        match self.files.get_mut(path) {
            Some((seen, last)) if *seen == sig => {
                *last = pass;
                true
            }
            _ => false,
        }
    }

    /// Forgets the files not seen in pass `number` (gone from the folder).
    fn forget_unseen(&mut self, number: u64) {
        if !self.files.is_empty() {
            self.files.retain(|_, (_, last)| *last >= number);
        }
    }
}

impl TapMode {
    /// Taps `dir`, with reports and the ledger in `state`.
    pub(crate) fn open(dir: &Path, state: &Path, settings: &SpoolSettings) -> Result<TapMode, SpoolError> {
        Ok(TapMode {
            folder: TapFolder::open(dir, state)?,
            settle: settings.settle,
            ledger_keep: settings.ledger_keep,
            seen: Mutex::new(Seen::new(SEEN_MAX)),
        })
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `path` has not changed for `settle` (judged on the system clock, as the
    /// modification times are).
    fn settled(&self, path: &Path) -> Result<Option<Signature>, SpoolError> {
        let sig = Signature::of(path)?;
        Ok(sig.settled(SystemTime::now(), self.settle).then_some(sig))
    }

    fn remember(&self, core: &Core, path: &Path, sig: Signature) {
        self.seen().remember(path, sig, core.pass_number.load(Ordering::Relaxed));
    }

    /// A stray of the tapped folder (a link, a folder named like a header, a name that is
    /// not printable): reported once in the ledger and the report folder, never touched.
    fn stray(&self, core: &Core, entry: &Entry, reason: &str) -> Result<ItemOutcome, SpoolError> {
        let key = format!("{}/#stray", entry.display_name());
        if core.status(&key).is_some() {
            return Ok(ItemOutcome::Unchanged);
        }
        let item = TapItem { path: entry.path.clone(), key, sig: None };
        Ending { core, mode: self, item: &item, call_id: None, attempt: 0 }.fail(reason.to_owned(), Vec::new())
    }

    /// Reads a settled header; bad input is parked (once: the ledger keeps it), other
    /// trouble waits for the next pass.
    fn claim_file(&self, core: &Core, path: PathBuf) -> Result<Next<TapItem>, SpoolError> {
        let sig = match self.settled(&path) {
            Ok(Some(sig)) => sig,
            Ok(None) => return Ok(Next::Done(ItemOutcome::NotDue)),
            // Gone between the listing and now (Exchange picked it up): nothing to do.
            Err(_) if !path.exists() => return Ok(Next::Done(ItemOutcome::Vanished)),
            Err(e) => return Err(e),
        };
        if self.seen().unchanged(&path, sig, core.pass_number.load(Ordering::Relaxed)) {
            return Ok(Next::Done(ItemOutcome::Unchanged));
        }
        let prepared = match core.current().pipeline.prepare_file(&path) {
            Ok(Outcome::Skipped(_)) => {
                self.remember(core, &path, sig);
                return Ok(Next::Done(ItemOutcome::Skipped));
            }
            Ok(Outcome::Prepared(prepared)) => prepared,
            Err(e) if e.is_bad_input() => {
                let item = TapItem { key: ledger_key(&path, None)?, path, sig: Some(sig) };
                if core.status(&item.key).is_some() {
                    self.remember(core, &item.path, sig);
                    return Ok(Next::Done(ItemOutcome::Unchanged));
                }
                let ending = Ending { core, mode: self, item: &item, call_id: None, attempt: 1 };
                return Ok(Next::Done(ending.fail(format_chain(&e), causes(&e))?));
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %format_chain(&e), "cannot prepare yet; trying again on the next pass");
                return Ok(Next::Done(ItemOutcome::NotDue));
            }
        };
        if let Some(att) = &prepared.event.attachment
            && self.settled(&att.path)?.is_none()
        {
            return Ok(Next::Done(ItemOutcome::NotDue));
        }
        let key = ledger_key(&path, Some(&prepared.event.call_id))?;
        let status = core.status(&key);
        let mut resend = false;
        match status.as_ref().map(|s| &s.last) {
            Some(State::Sent { .. } | State::Skipped { .. } | State::Failed { .. } | State::Done) => {
                self.remember(core, &path, sig);
                return Ok(Next::Done(ItemOutcome::Unchanged));
            }
            Some(State::Deferred { next_at, .. }) if *next_at > core.now() => {
                return Ok(Next::Done(ItemOutcome::NotDue));
            }
            Some(State::Attempt { .. }) => resend = true,
            _ => {}
        }
        let attempt = status.as_ref().map_or(0, |s| s.attempts) + 1;
        core.attempt(&key.clone(), TapItem { path, key, sig: Some(sig) }, prepared, attempt, resend)
    }

    /// The ledger prefix of every header and stray in the folder (see [`ledger_prefix`]).
    fn present(&self) -> Result<HashSet<String>, SpoolError> {
        Ok(self
            .folder
            .headers()?
            .map(|entry| match entry.kind {
                EntryKind::Stray { .. } => entry.display_name(),
                _ => entry.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            })
            .collect())
    }
}

/// The part of a ledger key that names the file: its stem (a header) or its shown name (a
/// stray), before the first `/`.
fn ledger_prefix(key: &str) -> &str {
    key.split_once('/').map_or(key, |(prefix, _)| prefix)
}

impl Mode for TapMode {
    type Source = Entry;
    type Item = TapItem;

    fn sources(&self) -> Result<Box<dyn Iterator<Item = Entry> + Send>, SpoolError> {
        Ok(Box::new(self.folder.headers()?))
    }

    fn claim(&self, core: &Core, entry: Entry) -> Result<Next<TapItem>, SpoolError> {
        match &entry.kind {
            EntryKind::Stray { reason } => self.stray(core, &entry, reason).map(Next::Done),
            _ => self.claim_file(core, entry.path),
        }
    }

    fn key(item: &TapItem) -> &str {
        &item.key
    }

    fn header(item: &TapItem) -> PathBuf {
        item.path.clone()
    }

    /// Writes the report of a parked file; remembers a concluded one. The folder is never
    /// touched.
    fn finish(&self, core: &Core, item: &TapItem, conclusion: Conclusion<'_>) -> Result<(), SpoolError> {
        if let Conclusion::Parked { report } = conclusion {
            self.folder.write_report(&item.path, report)?;
        }
        if let Some(sig) = item.sig {
            self.remember(core, &item.path, sig);
        }
        Ok(())
    }

    fn pass_complete(&self, number: u64) {
        self.seen().forget_unseen(number);
    }

    /// Forgets the ledger entries whose last record is older than `ledger_keep` and whose
    /// file is no longer in the folder (a `done` record each).
    fn trim(&self, core: &Core, now: Timestamp) -> Result<(), SpoolError> {
        let before = now.checked_sub(self.ledger_keep).unwrap_or(Timestamp::MIN);
        let old: Vec<String> = {
            let open = core.open.lock().unwrap_or_else(|e| e.into_inner());
            open.iter().filter(|(_, s)| s.last_at < before).map(|(key, _)| key.clone()).collect()
        };
        if old.is_empty() {
            return Ok(());
        }
        let present = self.present()?;
        let mut forgotten = 0;
        for key in old.iter().filter(|key| !present.contains(ledger_prefix(key))) {
            core.note(key, State::Done)?;
            forgotten += 1;
        }
        if forgotten > 0 {
            tracing::info!(forgotten, "ledger entries of files long gone forgotten ([spool] ledger_keep)");
        }
        Ok(())
    }

    fn shrink(&self) {
        super::shrink(&mut self.seen().files);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(len: u64) -> Signature {
        Signature { len, modified: SystemTime::UNIX_EPOCH }
    }

    #[test]
    fn seen_forgets_files_gone_from_the_folder_and_never_holds_more_than_its_cap() {
        let mut seen = Seen::new(3);
        let p = |n: u32| PathBuf::from(format!("/t/{n}.txt"));
        for n in 0..3 {
            seen.remember(&p(n), sig(1), 1);
        }
        assert!(seen.unchanged(&p(0), sig(1), 2), "seen again in pass 2");
        assert!(!seen.unchanged(&p(1), sig(2), 2), "changed");
        seen.forget_unseen(2);
        assert_eq!(seen.files.len(), 1, "only the file seen in pass 2 is kept");
        for n in 3..5 {
            seen.remember(&p(n), sig(1), 2);
        }
        assert_eq!(seen.files.len(), 3);
        seen.remember(&p(5), sig(1), 3);
        assert_eq!(seen.files.len(), 1, "full: the files not seen in pass 3 made room");
        for n in 6..9 {
            seen.remember(&p(n), sig(1), 3);
        }
        assert_eq!(seen.files.len(), 1, "full of files seen in this pass: cleared");
        assert!(seen.unchanged(&p(8), sig(1), 3));
    }

    #[test]
    fn a_ledger_key_names_its_file_before_the_first_slash() {
        assert_eq!(ledger_prefix("0b1c/call/with/slashes"), "0b1c");
        assert_eq!(ledger_prefix("link.txt/#stray"), "link.txt");
    }
}
