//! The relay (docs/relay.md): watches the spool folder and turns each header file into
//! exactly one accepted message, or a parked file with the reason beside it.
//!
//! Consumes a [`Pipeline`] (parse, enrich, render, compose), a [`Deliver`] transport and
//! the `[spool]` settings; produces spool moves and journal records ([`crate::spool`]). A
//! pass first resumes the items left in `work/` (by a crash, or deferred), then claims what
//! waits in the spool folder, at most `concurrency` items at a time and reading the folder
//! lazily, so a backlog of any size is drained in bounded memory.
//!
//! Exactly once: every state change is durable before it is acted on. The one window that
//! remains is inherent to SMTP: the server has answered 250 but the `sent` record is not on
//! disk yet. An item whose last record is `attempt` is therefore sent again after a restart,
//! marked `resend` in the journal (at least once inside that window, never lost).
//!
//! Never guesses a recipient, never deletes an item it has not delivered or parked, never
//! runs two relays on one spool (a lock file). Returns [`RelayError`].

mod item;
pub mod metrics;
pub mod service;
mod tap;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use tokio::task::JoinSet;

use crate::spool::SpoolMode;
use crate::deliver::Deliver;
use crate::pipeline::Pipeline;
use crate::spool::{self, Clock, ItemStatus, Journal, OwnSpool, SpoolError, SpoolSettings, State, TapFolder};

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
    policy: spool::RetryPolicy,
    settle: std::time::Duration,
    /// `tap`: files already concluded, by path, with the signature they had then.
    seen: Mutex<HashMap<PathBuf, spool::tap::Signature>>,
    clock: Arc<dyn Clock>,
}

/// The relay over an `own` spool.
pub struct Relay {
    shared: Arc<Shared>,
    metrics: Arc<metrics::Metrics>,
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
            .map_err(|source| SpoolError::Io {
                action: "cannot open the lock file",
                path: lock_path.clone(),
                source,
            })?;
        // `File::try_lock` is Rust 1.89 (the crate says 1.88, set by notify; the toolchain
        // here is newer). The lock dies with the process, so a SIGKILL never leaves it stale.
        #[allow(clippy::incompatible_msrv)]
        let locked = lock.try_lock();
        if locked.is_err() {
            return Err(RelayError::Locked { path: lock_path });
        }
        let (journal, open) = Journal::open(&state.join("journal.jsonl"))?;
        let shared = Shared {
            stages: std::sync::RwLock::new(Stages { pipeline, transport }),
            layout,
            journal,
            open: Mutex::new(open),
            policy: settings.retry,
            settle: settings.settle,
            seen: Mutex::default(),
            clock,
        };
        Ok(Relay {
            shared: Arc::new(shared),
            metrics: Arc::default(),
            concurrency: settings.concurrency,
            _lock: lock,
        })
    }

    /// The journal file (for `callnote queue` and tests).
    pub fn journal_path(&self) -> &Path {
        self.shared.journal.path()
    }

    /// One pass: resumes the items in `work/`, then claims every header waiting in the
    /// spool folder. Stops claiming when `stop` is set, but finishes the items in flight.
    pub async fn pass(&self, stop: Option<&AtomicBool>) -> Result<PassReport, RelayError> {
        let mut report = PassReport::default();
        let sources: Box<dyn Iterator<Item = item::Source> + Send> = match &self.shared.layout {
            Layout::Own(own) => Box::new(
                own.in_work()?
                    .map(item::Source::Work)
                    .chain(own.incoming()?.map(item::Source::Incoming)),
            ),
            Layout::Tap(tap) => Box::new(tap.headers()?.map(item::Source::Tapped)),
        };
        let mut tasks = JoinSet::new();
        for source in sources {
            if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                break;
            }
            while tasks.len() >= self.concurrency {
                collect(tasks.join_next().await, &mut report)?;
            }
            tasks.spawn(item::process(self.shared.clone(), source));
        }
        while !tasks.is_empty() {
            collect(tasks.join_next().await, &mut report)?;
        }
        let open = {
            let open = self.shared.open.lock().unwrap_or_else(|e| e.into_inner());
            open.values()
                .filter(|s| {
                    !matches!(
                        s.last,
                        State::Sent { .. } | State::Skipped { .. } | State::Failed { .. }
                    )
                })
                .count()
        };
        let now = jiff::Timestamp::now().as_second().max(0) as u64;
        self.metrics.record_pass(&report, open, now);
        Ok(report)
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
        self.metrics.clone()
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
