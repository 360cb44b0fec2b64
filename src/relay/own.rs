//! The `own` mode of the relay: claim a header by renaming it into `work/` (or resume an
//! item there), prepare it (adopting its side file), and once its last record is on disk
//! archive it or park it in `failed/` with its report; park a stray of the spool folder as
//! it is. A header is only read once it is known to be a regular file in the item's own
//! folder; a side file is only ever a `.wav`/`.tif`/`.msg` regular file (a skipped header
//! takes only `<its stem>.*`), so no header carries off another item's files.
//!
//! Consumes the spool folder's listing ([`OwnSpool`]); produces [`Next`] steps for
//! [`super::item::process`]; returns [`SpoolError`] only when the spool itself fails.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::Path;
use std::sync::Mutex;

use jiff::Timestamp;

use super::digest::Routed;
use super::item::{Conclusion, Ending, ItemOutcome, Mode, Next, Screen, causes, report, resume};
use super::{Core, format_chain};
use crate::intake::IntakeErrorKind;
use crate::intake::Parsed;
use crate::pipeline;
use crate::spool::names::{self, is_side_file_name};
use crate::spool::{Entry, EntryKind, ItemStatus, Journal, OwnSpool, SpoolError, SpoolSettings, State, WorkItem};

/// Where an item of an `own` spool comes from.
#[derive(Debug)]
pub(crate) enum Source {
    /// An entry of the spool folder (a header to claim, or a stray to park).
    Incoming(Entry),
    /// An item in `work/`.
    Work(WorkItem),
}

/// How many names of entries that are not callnote's are remembered as already logged.
const REPORTED_MAX: usize = 10_000;

/// The `own` mode: the spool's folders, and what it has logged.
pub(crate) struct OwnMode {
    spool: OwnSpool,
    /// Entries of the spool folder that are not callnote's, already logged once.
    reported: Mutex<HashSet<OsString>>,
    archive_keep: std::time::Duration,
}

impl OwnMode {
    pub(crate) fn open(dir: &Path, settings: &SpoolSettings) -> Result<OwnMode, SpoolError> {
        Ok(OwnMode { spool: OwnSpool::open(dir, settings.after_send)?, reported: Mutex::default(), archive_keep: settings.archive_keep })
    }

    /// Logs, once per name, an entry of the spool folder that is neither a header nor a
    /// side file (it stays where it is; `queue list` shows it).
    fn report_other(&self, path: &Path) {
        let Some(name) = path.file_name() else { return };
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        if reported.contains(name) {
            return;
        }
        if reported.len() >= REPORTED_MAX {
            reported.clear();
        }
        reported.insert(name.to_owned());
        tracing::warn!(file = %path.display(), "not a header (*.txt, *.xml) nor a side file: left in the spool folder");
    }

    /// Claims a header of the spool folder; for a stray, or a file gone meanwhile, the
    /// outcome instead.
    fn take(&self, core: &Core, entry: Entry) -> Result<Result<WorkItem, ItemOutcome>, SpoolError> {
        if let EntryKind::Stray { reason } = &entry.kind {
            return self.park_stray(core, &entry, reason).map(Err);
        }
        match self.spool.claim(&entry.path) {
            Ok(Some(item)) => Ok(Ok(item)),
            Ok(None) => Ok(Err(ItemOutcome::Vanished)),
            // A name the file system refuses in work/ can never be claimed.
            Err(e) if pipeline::cannot_heal(&e) => {
                self.park_stray(core, &entry, &format!("cannot be claimed: {}", format_chain(&e))).map(Err)
            }
            Err(e) => Err(e),
        }
    }

    /// Parse and enrich; a side file still in the spool folder is moved into the item's
    /// folder first.
    fn parse(&self, core: &Core, item: &WorkItem) -> Result<Result<Parsed, pipeline::Error>, SpoolError> {
        for _ in 0..3 {
            match core.current().pipeline.parse_file(&item.header()) {
                Err(pipeline::Error::Intake(e)) if matches!(&e.kind, IntakeErrorKind::SideFileMissing { name, .. } if self.spool.adopt_side_file(item, name)?) =>
                    {}
                other => return Ok(other),
            }
        }
        Ok(core.current().pipeline.parse_file(&item.header()))
    }

    /// An item that could not be prepared: parked when the input is at fault, else deferred.
    fn unprepared(&self, ending: &Ending<'_, Self>, first_at: Timestamp, e: pipeline::Error) -> Result<ItemOutcome, SpoolError> {
        if e.is_bad_input() { ending.fail(format_chain(&e), causes(&e)) } else { ending.defer(first_at, &e) }
    }

    /// Parks an entry of the spool folder that can never be an item, as it is, with its
    /// report (no journal record: it never was an item).
    fn park_stray(&self, core: &Core, entry: &Entry, reason: &str) -> Result<ItemOutcome, SpoolError> {
        let name = entry.display_name();
        let report = report(&name, None, 0, reason, &[], core.now());
        match self.spool.park_stray(entry, &report)? {
            Some(parked) => {
                tracing::warn!(file = %entry.path.display(), parked = %parked.display(), reason, "parked");
                Ok(ItemOutcome::Parked { reason: reason.to_owned() })
            }
            None => Ok(ItemOutcome::Vanished),
        }
    }
}

impl Mode for OwnMode {
    type Source = Source;
    type Item = WorkItem;

    fn sources(&self) -> Result<Box<dyn Iterator<Item = Source> + Send>, SpoolError> {
        Ok(Box::new(self.spool.in_work()?.map(Source::Work).chain(self.spool.incoming()?.map(Source::Incoming))))
    }

    fn screen(&self, core: &Core, source: &Source) -> Screen {
        match source {
            Source::Work(item) if core.waiting(&item.id) => Screen::Waiting,
            Source::Work(item) if core.held(&item.id) => Screen::Held,
            Source::Incoming(entry) if entry.kind == EntryKind::Other => {
                self.report_other(&entry.path);
                Screen::Leave
            }
            _ => Screen::Take,
        }
    }

    fn claim(&self, core: &Core, source: Source) -> Result<Next<WorkItem>, SpoolError> {
        let item = match source {
            Source::Incoming(entry) => match self.take(core, entry)? {
                Ok(item) => item,
                Err(outcome) => return Ok(Next::Done(outcome)),
            },
            Source::Work(item) => item,
        };
        let status = match core.status(&item.id) {
            Some(status) => status,
            None => {
                core.note(&item.id, State::Claimed { name: item.name.clone() })?;
                core.status(&item.id).expect("just recorded")
            }
        };
        let resend = match resume(core, self, &item, &status)? {
            Ok(resend) => resend,
            Err(outcome) => return Ok(Next::Done(outcome)),
        };
        let attempt = status.attempts + 1;
        let ending = Ending { core, mode: self, item: &item, call_id: None, attempt };
        // Swapped for a link or a folder between the listing and the claim: never read.
        if let Some(reason) = not_a_header_file(&item) {
            return Ok(Next::Done(ending.fail(reason, Vec::new())?));
        }
        let event = match self.parse(core, &item)? {
            Ok(Parsed::Skipped(message_type)) => {
                // Takes only the side files named after itself (`<stem>.wav`, as Exchange
                // names an XSOVoiceMail's audio), never what its fields name: a skipped
                // header cannot carry off another item's files.
                for side in own_side_files(&item.name) {
                    self.spool.adopt_side_file(&item, &side)?;
                }
                core.note(&item.id, State::Skipped { message_type })?;
                self.finish(core, &item, Conclusion::Handled)?;
                return Ok(Next::Done(ItemOutcome::Skipped));
            }
            Ok(Parsed::Event(event)) => event,
            Err(e) => return Ok(Next::Done(self.unprepared(&ending, status.first_at, e)?)),
        };
        match super::digest::route(core, self, &item, &status, *event, &item.header())? {
            Ok(Routed::Send(prepared)) => {
                let id = item.id.clone();
                core.attempt(&id, item, prepared, attempt, resend)
            }
            Ok(Routed::Held) => Ok(Next::Done(ItemOutcome::Held)),
            Err(e) => Ok(Next::Done(self.unprepared(&ending, status.first_at, e)?)),
        }
    }

    fn key(item: &WorkItem) -> &str {
        &item.id
    }

    fn held(&self, _core: &Core, key: &str) -> Option<WorkItem> {
        self.spool.work_item(key)
    }

    fn header(item: &WorkItem) -> std::path::PathBuf {
        item.header()
    }

    fn finish(&self, core: &Core, item: &WorkItem, conclusion: Conclusion<'_>) -> Result<(), SpoolError> {
        match conclusion {
            Conclusion::Handled => self.spool.finish(item, core.now())?,
            Conclusion::Parked { report } => {
                self.spool.park(item, report)?;
            }
        }
        core.note(&item.id, State::Done)
    }

    /// Removes from the spool folder the names of files claimed before a power cut
    /// ([`OwnSpool::resolve_double_claims`]), then records `done` for every item the journal
    /// still has open but whose header has left `work/` (a crash between archiving or
    /// parking it and its `done` record, or an item removed by hand), so no finished item
    /// stays listed as open.
    fn recover(&self, journal: &Journal, open: &mut HashMap<String, ItemStatus>, now: Timestamp) -> Result<(), SpoolError> {
        self.spool.resolve_double_claims()?;
        let gone: Vec<String> = open.keys().filter(|id| !self.spool.holds(id)).cloned().collect();
        for (n, id) in gone.iter().enumerate() {
            let Some(status) = open.remove(id) else { continue };
            match status.last {
                State::Sent { .. } | State::Skipped { .. } | State::Failed { .. } => {
                    tracing::info!(item = %id, "finished before a restart; its `done` record is written now")
                }
                _ => {
                    tracing::warn!(item = %id, "gone from work/ without being finished (removed by hand?); closing it in the journal")
                }
            }
            if n + 1 == gone.len() {
                journal.append(id, now, State::Done)?;
            } else {
                journal.append_unsynced(id, now, State::Done)?;
            }
        }
        Ok(())
    }

    /// Deletes archived items older than `archive_keep`.
    fn trim(&self, _core: &Core, now: Timestamp) -> Result<(), SpoolError> {
        let before = now.checked_sub(self.archive_keep).unwrap_or(Timestamp::MIN);
        self.spool.prune_archive(before).map(|_| ())
    }

    const STREAMS: bool = true;

    fn resumable(&self) -> Result<Box<dyn Iterator<Item = Source> + Send>, SpoolError> {
        Ok(Box::new(self.spool.in_work()?.map(Source::Work)))
    }

    fn arrivals(&self) -> Result<Box<dyn Iterator<Item = Source> + Send>, SpoolError> {
        Ok(Box::new(self.spool.incoming()?.map(Source::Incoming)))
    }

    /// A header or a stray of the spool folder, by the name of `path` (side files wait
    /// for their header; the rest is for the next full listing to report).
    fn arrival(&self, path: &Path) -> Option<Source> {
        let entry = crate::spool::entry::entry_at(&self.spool.root().join(path.file_name()?))?;
        matches!(entry.kind, EntryKind::Header | EntryKind::Stray { .. }).then_some(Source::Incoming(entry))
    }

    fn claim_path(source: &Source) -> Option<&Path> {
        match source {
            Source::Incoming(entry) => Some(&entry.path),
            Source::Work(item) => Some(&item.dir),
        }
    }
}

/// Why the claimed header of `item` is not a regular file, if it is not one.
fn not_a_header_file(item: &WorkItem) -> Option<String> {
    match std::fs::symlink_metadata(item.header()) {
        Ok(meta) if meta.is_file() => None,
        Ok(meta) if meta.is_symlink() => Some("a symbolic link, not a header file: links are never followed".to_owned()),
        Ok(meta) if meta.is_dir() => Some("a folder, not a header file".to_owned()),
        Ok(_) => Some("not a regular file (a named pipe, socket or device)".to_owned()),
        // Reading it will tell (and retry, or park) with the cause.
        Err(_) => None,
    }
}

/// The side files a skipped header takes along: `<its stem>.wav`, `.tif`, `.tiff`, `.msg`.
fn own_side_files(header: &str) -> impl Iterator<Item = String> + '_ {
    ["wav", "tif", "tiff", "msg"].into_iter().map(move |ext| format!("{}.{ext}", names::stem(header))).filter(|n| is_side_file_name(n))
}
