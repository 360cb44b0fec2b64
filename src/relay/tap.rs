//! The `tap` mode of the relay: one file of a tapped folder waits until it (and its side
//! file) has settled, is looked up in the ledger by (file GUID, CallId), then prepared and
//! handed to the shared delivery path ([`super::item`]). Nothing in the folder is ever
//! moved, renamed or written; parked files get a report in `<state>/failed/`.
//!
//! An item `[digest]` holds back (or a voicemail that carries held calls) is first copied,
//! header and side file, into `<state>/held/` ([`TapFolder::keep`]), since Exchange may take
//! the original away; from then on the copy is the item (listed before the folder, like
//! `work/` in `own` mode) and the copy goes once the item is concluded.
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

use super::digest::Routed;
use super::item::{Conclusion, Ending, ItemOutcome, Mode, Next, Screen, causes, resume};
use super::{Core, format_chain};
use crate::event::Event;
use crate::intake::Parsed;
use crate::spool::tap::{Signature, ledger_key};
use crate::spool::{Entry, EntryKind, ItemStatus, SpoolError, SpoolSettings, State, TapFolder};

/// Where an item of a `tap` spool comes from.
pub(crate) enum TapSource {
    /// A file of the tapped folder (a header, or a stray to report).
    Folder(Entry),
    /// The kept copy of an item held back by `[digest]` or carrying held calls
    /// (`<state>/held/`): its ledger key and header.
    Kept { key: String, header: PathBuf },
}

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
        let event = match core.current().pipeline.parse_file(&path) {
            Ok(Parsed::Skipped(_)) => {
                self.remember(core, &path, sig);
                return Ok(Next::Done(ItemOutcome::Skipped));
            }
            Ok(Parsed::Event(event)) => event,
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
        if let Some(att) = &event.attachment
            && self.settled(&att.path)?.is_none()
        {
            return Ok(Next::Done(ItemOutcome::NotDue));
        }
        let key = ledger_key(&path, Some(&event.call_id))?;
        let status = core.status(&key);
        let mut resend = false;
        match status.as_ref().map(|s| &s.last) {
            // Concluded, or held (its kept copy goes on from here): nothing to do with the file.
            Some(
                State::Sent { .. }
                | State::Skipped { .. }
                | State::Failed { .. }
                | State::Folded { .. }
                | State::Replaced { .. }
                | State::Held { .. }
                | State::Gathers { .. }
                | State::Done,
            ) => {
                self.remember(core, &path, sig);
                return Ok(Next::Done(ItemOutcome::Unchanged));
            }
            // A kept copy goes on from here (a voicemail that carried held calls and was
            // deferred or interrupted, a copy whose record a crash lost): the file itself is
            // never a second source of it.
            _ if self.folder.kept(&key).is_some() => {
                self.remember(core, &path, sig);
                return Ok(Next::Done(ItemOutcome::Unchanged));
            }
            Some(State::Deferred { next_at, .. }) if *next_at > core.now() => {
                return Ok(Next::Done(ItemOutcome::NotDue));
            }
            Some(State::Attempt { .. }) => resend = true,
            _ => {}
        }
        let status = status.unwrap_or_else(|| ItemStatus::new(core.now(), State::Claimed { name: String::new() }));
        let item = TapItem { path, key, sig: Some(sig) };
        self.route(core, item, &status, *event, resend)
    }

    /// Goes on with the kept copy of a held item (or of one carrying held calls) from its
    /// ledger status: concludes what a crash interrupted, or routes it again. A copy whose
    /// `held` record a crash lost is handled as a new item.
    fn claim_kept(&self, core: &Core, key: String, header: PathBuf) -> Result<Next<TapItem>, SpoolError> {
        let item = TapItem { path: header, key, sig: None };
        let status = core.status(&item.key).unwrap_or_else(|| ItemStatus::new(core.now(), State::Claimed { name: String::new() }));
        let resend = match resume(core, self, &item, &status)? {
            Ok(resend) => resend,
            Err(outcome) => return Ok(Next::Done(outcome)),
        };
        let ending = Ending { core, mode: self, item: &item, call_id: status.call_id.as_deref(), attempt: status.attempts + 1 };
        match core.current().pipeline.parse_file(&item.path) {
            Ok(Parsed::Event(event)) => self.route(core, item, &status, *event, resend),
            Ok(Parsed::Skipped(message_type)) => {
                Ok(Next::Done(ending.fail(format!("its kept copy is not a notification ({message_type})"), Vec::new())?))
            }
            Err(e) if e.is_bad_input() => Ok(Next::Done(ending.fail(format_chain(&e), causes(&e))?)),
            Err(e) => Ok(Next::Done(ending.defer(status.first_at, &e)?)),
        }
    }

    /// Sends, holds, or sends carrying held calls ([`super::digest::route`]) an item whose
    /// event has been read.
    fn route(&self, core: &Core, item: TapItem, status: &ItemStatus, event: Event, resend: bool) -> Result<Next<TapItem>, SpoolError> {
        let path = item.path.clone();
        let attempt = status.attempts + 1;
        match super::digest::route(core, self, &item, status, event, &path)? {
            Ok(Routed::Send(prepared)) => {
                let key = item.key.clone();
                core.attempt(&key, item, prepared, attempt, resend)
            }
            Ok(Routed::Held) => {
                if let Some(sig) = item.sig {
                    self.remember(core, &item.path, sig);
                }
                Ok(Next::Done(ItemOutcome::Held))
            }
            Err(e) if e.is_bad_input() => {
                let ending = Ending { core, mode: self, item: &item, call_id: None, attempt };
                Ok(Next::Done(ending.fail(format_chain(&e), causes(&e))?))
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %format_chain(&e), "cannot prepare yet; trying again on the next pass");
                Ok(Next::Done(ItemOutcome::NotDue))
            }
        }
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
    type Source = TapSource;
    type Item = TapItem;

    /// The kept copies first (like `work/` in `own` mode), then the tapped folder.
    fn sources(&self) -> Result<Box<dyn Iterator<Item = TapSource> + Send>, SpoolError> {
        let kept = self.folder.kept_items()?.into_iter().map(|(key, header)| TapSource::Kept { key, header });
        Ok(Box::new(kept.chain(self.folder.headers()?.map(TapSource::Folder))))
    }

    fn screen(&self, core: &Core, source: &TapSource) -> Screen {
        match source {
            TapSource::Kept { key, .. } if core.held(key) => Screen::Held,
            TapSource::Kept { key, .. } if core.waiting(key) => Screen::Waiting,
            _ => Screen::Take,
        }
    }

    fn claim(&self, core: &Core, source: TapSource) -> Result<Next<TapItem>, SpoolError> {
        match source {
            TapSource::Folder(entry) => match &entry.kind {
                EntryKind::Stray { reason } => self.stray(core, &entry, reason).map(Next::Done),
                _ => self.claim_file(core, entry.path),
            },
            TapSource::Kept { key, header } => self.claim_kept(core, key, header),
        }
    }

    fn key(item: &TapItem) -> &str {
        &item.key
    }

    fn header(item: &TapItem) -> PathBuf {
        item.path.clone()
    }

    fn held(&self, _core: &Core, key: &str) -> Option<TapItem> {
        self.folder.kept(key).map(|path| TapItem { path, key: key.to_owned(), sig: None })
    }

    /// Copies the header (read once more, with the same checks as intake) and the side file
    /// (from the handle intake opened) into `<state>/held/`, unless the item is a copy.
    fn keep(&self, item: &TapItem, event: &Event) -> Result<(), SpoolError> {
        if self.folder.kept(&item.key).is_some() {
            return Ok(());
        }
        let bytes = crate::intake::read_header_bytes(&item.path).map_err(|e| SpoolError::Io {
            action: "cannot read",
            path: item.path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let name = item.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let side = event.attachment.as_ref().and_then(|a| a.opened.as_ref().map(|handle| (a.file_name.as_str(), handle)));
        match side {
            Some((side_name, handle)) => {
                let mut content = crate::intake::ReadAt::new(handle.file());
                self.folder.keep(&item.key, &name, &bytes, Some((side_name, &mut content)))?;
            }
            None => {
                self.folder.keep(&item.key, &name, &bytes, None)?;
            }
        }
        Ok(())
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
        self.folder.release(&item.key)
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
