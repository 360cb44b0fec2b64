//! The relay (docs/relay.md): watches the spool folder and turns each header file into
//! exactly one accepted message, or a parked file with the reason beside it.
//!
//! Consumes a [`Pipeline`] (parse, enrich, render, compose), a [`Deliver`] transport and
//! the `[spool]` settings; produces spool moves and journal records ([`crate::spool`]). A
//! pass first resumes the items left in `work/` that are due (by a crash, or deferred),
//! then claims what waits in the spool folder, at most `concurrency` items at a time and
//! reading the folder lazily, so a backlog of any size is drained in bounded memory. Every
//! entry of the folder ends somewhere visible ([`crate::spool::entry`]): a stray (a link, a
//! folder named like a header, a name that is not UTF-8) is parked as it is, anything else
//! that is not callnote's is logged once and left. What no retry can fix is parked at once
//! ([`crate::pipeline::Error::is_bad_input`], [`crate::pipeline::delivery_is_permanent`]).
//! At start-up, journal entries of items that already left `work/` are closed.
//!
//! Exactly once: every state change is durable before it is acted on. The one window that
//! remains is inherent to SMTP: the server has answered 250 but the `sent` record is not on
//! disk yet. An item whose last record is `attempt` is therefore sent again after a restart,
//! marked `resend` in the journal (at least once inside that window, never lost).
//!
//! Never guesses a recipient, never deletes an item it has not delivered or parked, never
//! runs two relays on one spool (a lock file). Returns [`RelayError`].

mod item;
pub mod memory;
pub mod metrics;
pub mod service;
mod tap;

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use tokio::task::JoinSet;

use crate::deliver::Deliver;
use crate::pipeline::Pipeline;
use crate::spool::SpoolMode;
use crate::spool::{self, Clock, EntryKind, ItemStatus, Journal, OwnSpool, SpoolError, SpoolSettings, State, TapFolder};

pub use item::ItemOutcome;

/// Why the relay cannot run (per-item problems are outcomes, not errors).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("{}: another relay is running on this spool (lock held)", path.display())]
    Locked { path: PathBuf },
    #[error("{}: spool.state_dir must be set, outside the tapped folder, in `tap` mode", dir.display())]
    TapNeedsStateDir { dir: PathBuf },
    #[error("server.listen: cannot listen on {addr}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch for signals")]
    Signals {
        #[source]
        source: std::io::Error,
    },
    #[error("an item's task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// What a pass did, item by item counted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub delivered: usize,
    pub skipped: usize,
    pub parked: usize,
    pub deferred: usize,
    /// Deferred items whose next attempt is not due yet.
    pub waiting: usize,
    /// Items sent again because a crash interrupted their last attempt.
    pub resent: usize,
    /// Items that hit a spool error (disk full, permissions); they stay where they were.
    pub errors: usize,
}

impl PassReport {
    fn count(&mut self, outcome: &ItemOutcome) {
        match outcome {
            ItemOutcome::Delivered { resent, .. } => {
                self.delivered += 1;
                self.resent += usize::from(*resent);
            }
            ItemOutcome::Skipped => self.skipped += 1,
            ItemOutcome::Parked { .. } => self.parked += 1,
            ItemOutcome::Deferred { .. } => self.deferred += 1,
            ItemOutcome::NotDue => self.waiting += 1,
            ItemOutcome::Vanished | ItemOutcome::Unchanged => {}
        }
    }

    /// True when nothing was parked, deferred or broken.
    pub fn all_good(&self) -> bool {
        self.parked == 0 && self.deferred == 0 && self.waiting == 0 && self.errors == 0
    }

    /// Items this pass acted on (delivered, skipped, parked, deferred, or hit an error);
    /// items only found not due yet are not counted.
    pub fn handled(&self) -> usize {
        self.delivered + self.skipped + self.parked + self.deferred + self.errors
    }
}

/// The spool folder, by mode.
pub(crate) enum Layout {
    Own(OwnSpool),
    Tap(TapFolder),
}

/// The stages a reload replaces: the pipeline (configuration, directory, templates) and
/// the transport. Items in flight finish with the ones they started with.
#[derive(Clone)]
pub struct Stages {
    pub pipeline: Arc<Pipeline>,
    pub transport: Arc<dyn Deliver>,
}

/// What the item tasks share.
pub(crate) struct Shared {
    stages: std::sync::RwLock<Stages>,
    layout: Layout,
    journal: Journal,
    /// Journal status of every item not `done` (in `tap` mode: the ledger).
    open: Mutex<HashMap<String, ItemStatus>>,
    /// How many of `open` are claimed and not finished ([`is_active`]); changed only under
    /// `open`'s lock, mirrored in the `open_items` gauge.
    active: AtomicUsize,
    metrics: Arc<metrics::Metrics>,
    /// Entries of the spool folder that are not callnote's, already logged once.
    reported: Mutex<HashSet<OsString>>,
    policy: spool::RetryPolicy,
    settle: std::time::Duration,
    /// `tap`: files already concluded, by path, with the signature they had then and the
    /// pass that last saw them (files gone from the folder are forgotten after a pass).
    seen: Mutex<HashMap<PathBuf, (spool::tap::Signature, u64)>>,
    /// The number of the pass under way.
    pass_number: AtomicU64,
    clock: Arc<dyn Clock>,
}

/// Whether an item in this state is claimed and not finished (in flight or deferred).
fn is_active(state: &State) -> bool {
    !matches!(state, State::Sent { .. } | State::Skipped { .. } | State::Failed { .. } | State::Done)
}

/// How many names of entries that are not callnote's are remembered as already logged.
const REPORTED_MAX: usize = 10_000;

/// The relay over an `own` spool.
pub struct Relay {
    shared: Arc<Shared>,
    concurrency: usize,
    _lock: std::fs::File,
}

impl Relay {
    /// Opens the spool at `dir` (in `own` mode creating its folders), takes its lock and
    /// replays the journal.
    pub fn open(
        pipeline: Arc<Pipeline>,
        transport: Arc<dyn Deliver>,
        dir: &Path,
        mode: SpoolMode,
        settings: &SpoolSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Relay, RelayError> {
        let state = settings.state_dir_for(dir);
        let layout = match mode {
            SpoolMode::Own => Layout::Own(OwnSpool::open(dir, settings.after_send)?),
            SpoolMode::Tap => match &settings.state_dir {
                Some(state) if !state.starts_with(dir) => Layout::Tap(TapFolder::open(dir, state)?),
                _ => return Err(RelayError::TapNeedsStateDir { dir: dir.to_owned() }),
            },
        };
        spool::durable::create_dir(&state).map_err(|source| SpoolError::Io {
            action: "cannot create the state folder",
            path: state.clone(),
            source,
        })?;
        let lock_path = state.join("relay.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| SpoolError::Io { action: "cannot open the lock file", path: lock_path.clone(), source })?;
        // `File::try_lock` is Rust 1.89 (the crate says 1.88, set by notify; the toolchain
        // here is newer). The lock dies with the process, so a SIGKILL never leaves it stale.
        #[allow(clippy::incompatible_msrv)]
        let locked = lock.try_lock();
        if locked.is_err() {
            return Err(RelayError::Locked { path: lock_path });
        }
        let (journal, mut open) = Journal::open(&state.join("journal.jsonl"))?;
        if let Layout::Own(own) = &layout {
            close_finished(&journal, &mut open, own, clock.now())?;
        }
        let active = open.values().filter(|s| is_active(&s.last)).count();
        let metrics = Arc::new(metrics::Metrics::default());
        metrics.set_open_items(active);
        let shared = Shared {
            stages: std::sync::RwLock::new(Stages { pipeline, transport }),
            layout,
            journal,
            open: Mutex::new(open),
            active: AtomicUsize::new(active),
            metrics,
            reported: Mutex::default(),
            policy: settings.retry,
            settle: settings.settle,
            seen: Mutex::default(),
            pass_number: AtomicU64::new(0),
            clock,
        };
        Ok(Relay { shared: Arc::new(shared), concurrency: settings.concurrency, _lock: lock })
    }

    /// The journal file (for `callnote queue` and tests).
    pub fn journal_path(&self) -> &Path {
        self.shared.journal.path()
    }

    /// One pass: resumes the items in `work/` that are due, then claims every header
    /// waiting in the spool folder and parks its strays. Stops claiming when `stop` is set,
    /// but finishes the items in flight.
    pub async fn pass(&self, stop: Option<&AtomicBool>) -> Result<PassReport, RelayError> {
        let mut report = PassReport::default();
        let number = self.shared.pass_number.fetch_add(1, Ordering::Relaxed) + 1;
        let sources: Box<dyn Iterator<Item = item::Source> + Send> = match &self.shared.layout {
            Layout::Own(own) => Box::new(own.in_work()?.map(item::Source::Work).chain(own.incoming()?.map(item::Source::Incoming))),
            Layout::Tap(tap) => Box::new(tap.headers()?.map(item::Source::Tapped)),
        };
        let mut tasks = JoinSet::new();
        let mut complete = true;
        for source in sources {
            if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                complete = false;
                break;
            }
            match &source {
                item::Source::Work(item) if self.shared.waiting(&item.id) => {
                    report.waiting += 1;
                    continue;
                }
                item::Source::Incoming(entry) if entry.kind == EntryKind::Other => {
                    self.shared.report_other(&entry.path);
                    continue;
                }
                _ => {}
            }
            while tasks.len() >= self.concurrency {
                collect(tasks.join_next().await, &mut report)?;
            }
            tasks.spawn(item::process(self.shared.clone(), source));
        }
        while !tasks.is_empty() {
            collect(tasks.join_next().await, &mut report)?;
        }
        if complete {
            self.shared.forget_unseen(number);
        }
        let now = jiff::Timestamp::now().as_second().max(0) as u64;
        self.shared.metrics.record_pass(&report, now);
        Ok(report)
    }

    /// Gives memory the last passes no longer need back to the system: the item maps
    /// shrink to what they hold, and the allocator returns its free pages ([`memory`]).
    /// Cheap enough for the service to call whenever a busy spell ends.
    pub fn release_memory(&self) {
        self.shared.shrink();
        memory::release();
        tracing::debug!("memory released");
    }

    /// A handle that replaces the stages (reload) while the relay runs.
    pub fn stages(&self) -> StagesHandle {
        StagesHandle(self.shared.clone())
    }

    /// Ends the transport's pooled connections politely (QUIT); for when the relay stops.
    pub async fn close(&self) {
        if let Err(e) = self.shared.current().transport.close().await {
            tracing::warn!(error = %e, "closing the delivery connections failed");
        }
    }

    /// The counters `/metrics` shows.
    pub fn metrics(&self) -> Arc<metrics::Metrics> {
        self.shared.metrics.clone()
    }

    /// When the earliest deferred item is due, if any.
    pub fn next_due(&self) -> Option<Timestamp> {
        let open = self.shared.open.lock().unwrap_or_else(|e| e.into_inner());
        open.values()
            .filter_map(|s| match s.last {
                State::Deferred { next_at, .. } => Some(next_at),
                _ => None,
            })
            .min()
    }
}

/// Replaces the relay's [`Stages`]; the next item to start uses the new ones.
#[derive(Clone)]
pub struct StagesHandle(Arc<Shared>);

impl StagesHandle {
    pub fn replace(&self, stages: Stages) {
        *self.0.stages.write().unwrap_or_else(|e| e.into_inner()) = stages;
    }
}

impl Shared {
    /// The stages in use now.
    pub(crate) fn current(&self) -> Stages {
        self.stages.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Deferred, and its next attempt is not due yet: nothing to do in this pass.
    fn waiting(&self, id: &str) -> bool {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        matches!(open.get(id).map(|s| &s.last), Some(State::Deferred { next_at, .. }) if *next_at > self.clock.now())
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

    /// `tap`: forgets the files not seen in pass `number` (gone from the folder).
    fn forget_unseen(&self, number: u64) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.is_empty() {
            seen.retain(|_, (_, last)| *last >= number);
        }
    }

    /// Shrinks the maps a backlog made large.
    fn shrink(&self) {
        fn shrink<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
            if map.capacity() > 2 * map.len() + 64 {
                map.shrink_to_fit();
            }
        }
        shrink(&mut self.open.lock().unwrap_or_else(|e| e.into_inner()));
        shrink(&mut self.seen.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Mirrors a change of `id`'s journal state in the `active` count and the gauge;
    /// called with `open` locked, before (`was`) and after the change.
    fn count_active(&self, was: bool, is: bool) {
        let active = match (was, is) {
            (false, true) => self.active.fetch_add(1, Ordering::Relaxed) + 1,
            // Never below zero: a gauge is not worth a panic.
            (true, false) => match self.active.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)) {
                Ok(before) => before - 1,
                Err(_) => 0,
            },
            _ => return,
        };
        self.metrics.set_open_items(active);
    }
}

/// `own`: records `done` for every item the journal still has open but whose header has
/// left `work/` (a crash between archiving or parking it and its `done` record, or an
/// item removed by hand), so no finished item stays listed as open.
fn close_finished(
    journal: &Journal,
    open: &mut HashMap<String, ItemStatus>,
    own: &OwnSpool,
    now: jiff::Timestamp,
) -> Result<(), SpoolError> {
    let gone: Vec<String> = open.keys().filter(|id| !own.holds(id)).cloned().collect();
    for (n, id) in gone.iter().enumerate() {
        let status = open.remove(id).expect("listed above");
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

type TaskResult = Result<Result<ItemOutcome, SpoolError>, tokio::task::JoinError>;

fn collect(joined: Option<TaskResult>, report: &mut PassReport) -> Result<(), RelayError> {
    match joined {
        None => {}
        Some(Ok(Ok(outcome))) => report.count(&outcome),
        Some(Ok(Err(e))) => {
            tracing::error!(error = %format_chain(&e), "spool error; the item stays where it is");
            report.errors += 1;
        }
        Some(Err(e)) => return Err(RelayError::Task(e)),
    }
    Ok(())
}

/// An error and its causes, joined with `: `.
pub(crate) use crate::causes::line as format_chain;

#[cfg(test)]
mod tests;
