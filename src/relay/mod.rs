//! The relay (docs/relay.md): watches the spool folder and turns each header file into
//! exactly one accepted message, or a parked file with the reason beside it.
//!
//! Consumes a [`Pipeline`] (parse, enrich, render, compose), a [`Deliver`] transport and
//! the `[spool]` settings; produces spool moves and journal records ([`crate::spool`]). A
//! pass first resumes the items left in `work/` that are due (by a crash, or deferred),
//! then claims what waits in the spool folder, at most `concurrency` × [`CLAIM_AHEAD`] items
//! at a time (`concurrency` of them being sent) and reading the folder lazily, so a backlog
//! of any size is drained in bounded memory. Every entry of the folder ends somewhere
//! visible ([`crate::spool::entry`]): a stray (a link, a
//! folder named like a header, a name that is not UTF-8) is parked as it is, anything else
//! that is not callnote's is logged once and left. What no retry can fix is parked at once
//! ([`crate::pipeline::Error::is_bad_input`], [`crate::pipeline::delivery_is_permanent`]).
//! At start-up, journal entries of items that already left `work/` are closed.
//!
//! The two modes (`own`: `relay/own.rs`, `tap`: `relay/tap.rs`) differ only in how an
//! item is claimed and finished (`item::Mode`); the delivery and its records are one path
//! for both (`item::process`). Kept state is bounded: archived items and rotated journals go after
//! `archive_keep`, tap-ledger entries of files gone from the folder after `ledger_keep`
//! (checked at start-up and then hourly on the relay's clock).
//!
//! Exactly once: every state change is durable before it is acted on. The one window that
//! remains is inherent to SMTP: the server has answered 250 but the `sent` record is not on
//! disk yet. An item whose last record is `attempt` is therefore sent again after a restart,
//! marked `resend` in the journal (at least once inside that window, never lost).
//!
//! Never guesses a recipient, never deletes an item it has not delivered or parked, never
//! runs two relays on one spool (a lock file). Returns [`RelayError`].

mod digest;
mod hold;
mod item;
pub mod memory;
pub mod metrics;
mod own;
pub mod service;
pub mod stream;
mod tap;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use tokio::task::JoinSet;

use crate::deliver::Deliver;
use crate::pipeline::Pipeline;
use crate::spool::SpoolMode;
use crate::spool::{self, Clock, ItemStatus, Journal, SpoolError, SpoolSettings, State};

pub use item::ItemOutcome;
use item::{Mode, Screen};

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
    /// Missed calls held back by `[digest]` (for a digest, or a voicemail that may replace
    /// them): normal operation, not a failure.
    pub held: usize,
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
            ItemOutcome::Held => self.held += 1,
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

/// The stages a reload replaces: the pipeline (configuration, directory, templates) and
/// the transport. Items in flight finish with the ones they started with.
#[derive(Clone)]
pub struct Stages {
    pub pipeline: Arc<Pipeline>,
    pub transport: Arc<dyn Deliver>,
}

/// What the item tasks of both modes share: the stages, the journal and its open items,
/// the retry policy, the clock and the counters. What differs by mode is a [`Mode`].
pub(crate) struct Core {
    stages: std::sync::RwLock<Stages>,
    journal: Journal,
    /// Journal status of every item not `done` (in `tap` mode: the ledger).
    open: Mutex<HashMap<String, ItemStatus>>,
    /// How many of `open` are claimed and not finished ([`is_active`]); changed only under
    /// `open`'s lock, mirrored in the `open_items` gauge.
    active: AtomicUsize,
    metrics: Arc<metrics::Metrics>,
    policy: spool::RetryPolicy,
    /// How long rotated journals are kept.
    archive_keep: std::time::Duration,
    /// The number of the pass under way.
    pass_number: AtomicU64,
    /// When the kept state was last trimmed ([`TRIM_EVERY`]).
    trimmed_at: Mutex<Option<Timestamp>>,
    /// What `[digest]` holds back.
    holds: hold::Holds,
    clock: Arc<dyn Clock>,
    /// One per message being handed to the server (`concurrency` of them): items are
    /// claimed and prepared ahead ([`CLAIM_AHEAD`]) but only this many are sent at once.
    send_slots: Arc<tokio::sync::Semaphore>,
}

/// How many items are in flight per send slot: claimed and prepared while the slots are
/// busy, so that the flushes of their claims and records are shared among more items (a
/// drain with only `concurrency` in flight waited on the disk; 4 measured best, see README
/// "Performance").
pub(crate) const CLAIM_AHEAD: usize = 4;

/// Whether an item in this state is claimed and not finished (in flight or deferred).
fn is_active(state: &State) -> bool {
    !matches!(
        state,
        State::Sent { .. } | State::Skipped { .. } | State::Failed { .. } | State::Folded { .. } | State::Replaced { .. } | State::Done
    )
}

/// How often (on the relay's clock) the kept state is trimmed: old archived items, rotated
/// journals and, in `tap` mode, ledger entries of files long gone. Also done at start-up.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// The relay over a spool folder, in either mode.
pub struct Relay {
    core: Arc<Core>,
    mode: Box<dyn Passes>,
    /// Items claimed and not finished at once: `concurrency` × [`CLAIM_AHEAD`].
    in_flight: usize,
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
        let stages = Stages { pipeline, transport };
        match mode {
            SpoolMode::Own => Relay::with_mode(own::OwnMode::open(dir, settings)?, stages, dir, settings, clock),
            SpoolMode::Tap => match &settings.state_dir {
                Some(state) if !state.starts_with(dir) => {
                    Relay::with_mode(tap::TapMode::open(dir, state, settings)?, stages, dir, settings, clock)
                }
                _ => Err(RelayError::TapNeedsStateDir { dir: dir.to_owned() }),
            },
        }
    }

    fn with_mode<M: Mode>(
        mode: M,
        stages: Stages,
        dir: &Path,
        settings: &SpoolSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Relay, RelayError> {
        let state = settings.state_dir_for(dir);
        let lock = lock(&state)?;
        let (journal, mut open) = Journal::open(&state.join("journal.jsonl"))?;
        mode.recover(&journal, &mut open, clock.now())?;
        let active = open.values().filter(|s| is_active(&s.last)).count();
        let holds = hold::Holds::rebuild(settings.digest.clone(), &open);
        let metrics = Arc::new(metrics::Metrics::default());
        metrics.set_open_items(active);
        let core = Arc::new(Core {
            stages: std::sync::RwLock::new(stages),
            journal,
            open: Mutex::new(open),
            active: AtomicUsize::new(active),
            metrics,
            policy: settings.retry,
            archive_keep: settings.archive_keep,
            pass_number: AtomicU64::new(0),
            trimmed_at: Mutex::default(),
            holds,
            clock,
            send_slots: Arc::new(tokio::sync::Semaphore::new(settings.concurrency.max(1))),
        });
        let mode = Arc::new(mode);
        if core.trim_due() {
            core.trim(mode.as_ref())?;
        }
        let in_flight = settings.concurrency.max(1).saturating_mul(CLAIM_AHEAD);
        Ok(Relay { core, mode: Box::new(mode), in_flight, _lock: lock })
    }

    /// The journal file (for `callnote queue` and tests).
    pub fn journal_path(&self) -> &Path {
        self.core.journal.path()
    }

    /// One pass: resumes the items in `work/` that are due, then claims every header
    /// waiting in the spool folder and parks its strays. Stops claiming when `stop` is set,
    /// but finishes the items in flight.
    pub async fn pass(&self, stop: Option<&AtomicBool>) -> Result<PassReport, RelayError> {
        let report = self.mode.pass(&self.core, stop, self.in_flight).await?;
        self.core.record_pass(&report);
        Ok(report)
    }

    /// Whether the mode claims files as they arrive ([`stream`]) rather than in passes.
    pub fn streams(&self) -> bool {
        self.mode.streams()
    }

    /// Runs the streaming dispatcher ([`stream`]) until `feed.stop`; for a mode that
    /// [`streams`](Self::streams).
    pub async fn stream(&self, feed: stream::Feed, hooks: stream::Hooks<'_>) -> Result<(), RelayError> {
        self.mode.stream(&self.core, feed, hooks, self.in_flight).await
    }

    /// Gives memory the last passes no longer need back to the system: the item maps
    /// shrink to what they hold, and the allocator returns its free pages ([`memory`]).
    /// Cheap enough for the service to call whenever a busy spell ends.
    pub fn release_memory(&self) {
        shrink(&mut self.core.open.lock().unwrap_or_else(|e| e.into_inner()));
        self.mode.shrink();
        memory::release();
        tracing::debug!("memory released");
    }

    /// A handle that replaces the stages (reload) while the relay runs.
    pub fn stages(&self) -> StagesHandle {
        StagesHandle(self.core.clone())
    }

    /// Ends the transport's pooled connections politely (QUIT); for when the relay stops.
    pub async fn close(&self) {
        if let Err(e) = self.core.current().transport.close().await {
            tracing::warn!(error = %e, "closing the delivery connections failed");
        }
    }

    /// The counters `/metrics` shows.
    pub fn metrics(&self) -> Arc<metrics::Metrics> {
        self.core.metrics.clone()
    }

    /// When the earliest deferred item, or held one, is due, if any.
    pub fn next_due(&self) -> Option<Timestamp> {
        let held = self.core.holds.next_due();
        let open = self.core.open.lock().unwrap_or_else(|e| e.into_inner());
        open.values()
            .filter_map(|s| match s.last {
                State::Deferred { next_at, .. } => Some(next_at),
                _ => None,
            })
            .chain(held)
            .min()
    }
}

/// Creates the state folder and takes its lock file (held as long as the returned handle).
fn lock(state: &Path) -> Result<std::fs::File, RelayError> {
    spool::durable::create_dir(state).map_err(|source| SpoolError::Io {
        action: "cannot create the state folder",
        path: state.to_owned(),
        source,
    })?;
    let lock_path = state.join("relay.lock");
    let lock = spool::durable::fs::open_or_create(&lock_path, false).map_err(|source| SpoolError::Io {
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
    Ok(lock)
}

type PassFuture<'a> = Pin<Box<dyn Future<Output = Result<PassReport, RelayError>> + Send + 'a>>;

type StreamFuture<'a> = Pin<Box<dyn Future<Output = Result<(), RelayError>> + 'a>>;

/// A [`Mode`] as the (mode-blind) [`Relay`] drives it.
trait Passes: Send + Sync {
    fn pass<'a>(&'a self, core: &'a Arc<Core>, stop: Option<&'a AtomicBool>, in_flight: usize) -> PassFuture<'a>;
    fn streams(&self) -> bool;
    fn stream<'a, 'h: 'a>(
        &'a self,
        core: &'a Arc<Core>,
        feed: stream::Feed,
        hooks: stream::Hooks<'h>,
        in_flight: usize,
    ) -> StreamFuture<'a>;
    fn shrink(&self);
}

impl<M: Mode> Passes for Arc<M> {
    fn pass<'a>(&'a self, core: &'a Arc<Core>, stop: Option<&'a AtomicBool>, in_flight: usize) -> PassFuture<'a> {
        Box::pin(run_pass(core, self, stop, in_flight))
    }

    fn streams(&self) -> bool {
        M::STREAMS
    }

    fn stream<'a, 'h: 'a>(
        &'a self,
        core: &'a Arc<Core>,
        feed: stream::Feed,
        hooks: stream::Hooks<'h>,
        in_flight: usize,
    ) -> StreamFuture<'a> {
        Box::pin(stream::dispatch(core, self, in_flight, feed, hooks))
    }

    fn shrink(&self) {
        M::shrink(self);
    }
}

/// One pass of mode `M`: every source the mode lists, at most `in_flight` at a time,
/// each through [`item::process`]; then, if the listing was read to its end, the mode's
/// end-of-pass bookkeeping and (when due) the trim of kept state.
async fn run_pass<M: Mode>(core: &Arc<Core>, mode: &Arc<M>, stop: Option<&AtomicBool>, in_flight: usize) -> Result<PassReport, RelayError> {
    let mut report = PassReport::default();
    let number = core.pass_number.fetch_add(1, Ordering::Relaxed) + 1;
    let mut tasks = JoinSet::new();
    let mut complete = true;
    close_digests(core, &mut report).await?;
    for source in mode.sources()? {
        if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
            complete = false;
            break;
        }
        match mode.screen(core, &source) {
            Screen::Take => {}
            Screen::Waiting => {
                report.waiting += 1;
                continue;
            }
            Screen::Held => {
                report.held += 1;
                continue;
            }
            Screen::Leave => continue,
        }
        while tasks.len() >= in_flight {
            collect(tasks.join_next().await, &mut report)?;
        }
        tasks.spawn(item::process(core.clone(), mode.clone(), source));
    }
    while !tasks.is_empty() {
        collect(tasks.join_next().await, &mut report)?;
    }
    if complete {
        pass_complete(core, mode, number).await?;
    }
    Ok(report)
}

/// Closes the digests that are due (before any item task of the pass runs); a failure is
/// counted as an error and tried again on the next pass.
async fn close_digests(core: &Arc<Core>, report: &mut PassReport) -> Result<(), RelayError> {
    let closing = core.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || digest::close_due(&closing)).await.map_err(RelayError::Task)? {
        tracing::error!(error = %format_chain(&e), "cannot close the digests that are due; trying again on the next pass");
        report.errors += 1;
    }
    Ok(())
}

/// After pass `number` read the whole listing: the mode's bookkeeping and, when due, the
/// trim of kept state.
async fn pass_complete<M: Mode>(core: &Arc<Core>, mode: &Arc<M>, number: u64) -> Result<(), RelayError> {
    mode.pass_complete(number);
    if core.trim_due() {
        let (core, mode) = (core.clone(), mode.clone());
        if let Err(e) = tokio::task::spawn_blocking(move || core.trim(mode.as_ref())).await.map_err(RelayError::Task)? {
            tracing::error!(error = %format_chain(&e), "cannot trim the kept state; trying again in an hour");
        }
    }
    Ok(())
}

/// Shrinks a map a backlog made large.
pub(crate) fn shrink<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 2 * map.len() + 64 {
        map.shrink_to_fit();
    }
}

/// Replaces the relay's [`Stages`]; the next item to start uses the new ones.
#[derive(Clone)]
pub struct StagesHandle(Arc<Core>);

impl StagesHandle {
    pub fn replace(&self, stages: Stages) {
        *self.0.stages.write().unwrap_or_else(|e| e.into_inner()) = stages;
    }
}

impl Core {
    /// Counts a pass (or a round of the streaming dispatcher) in `/metrics`.
    fn record_pass(&self, report: &PassReport) {
        let now = jiff::Timestamp::now().as_second().max(0) as u64;
        self.metrics.record_pass(report, now);
        self.metrics.set_held_items(self.holds.count());
    }

    /// The stages in use now.
    pub(crate) fn current(&self) -> Stages {
        self.stages.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Held back by `[digest]`, and not released: nothing to do in this pass.
    fn held(&self, id: &str) -> bool {
        let held = matches!(self.open.lock().unwrap_or_else(|e| e.into_inner()).get(id).map(|s| &s.last), Some(State::Held { .. }));
        held && !self.holds.is_released(id)
    }

    /// Deferred, and its next attempt is not due yet: nothing to do in this pass.
    fn waiting(&self, id: &str) -> bool {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        matches!(open.get(id).map(|s| &s.last), Some(State::Deferred { next_at, .. }) if *next_at > self.clock.now())
    }

    /// Whether [`TRIM_EVERY`] has passed since the last trim (or there was none); if so,
    /// the trim about to be done counts from now.
    fn trim_due(&self) -> bool {
        let now = self.clock.now();
        let mut at = self.trimmed_at.lock().unwrap_or_else(|e| e.into_inner());
        if at.is_some_and(|at| at <= now && now.duration_since(at).unsigned_abs() < TRIM_EVERY) {
            return false;
        }
        *at = Some(now);
        true
    }

    /// Trims the kept state: rotated journals older than `archive_keep`, then the mode's
    /// own ([`Mode::trim`]).
    fn trim<M: Mode>(&self, mode: &M) -> Result<(), SpoolError> {
        let now = self.clock.now();
        let before = now.checked_sub(self.archive_keep).unwrap_or(Timestamp::MIN);
        spool::journal::prune_rotated(self.journal.path(), before)?;
        mode.trim(self, now)
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
mod power_cut;
#[cfg(test)]
mod tests;
