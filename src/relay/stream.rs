//! Streaming claims for the long-running relay, in a mode that supports them
//! ([`Mode::STREAMS`]: `own`): one dispatcher keeps up to `in_flight` item tasks running
//! (`concurrency` × [`super::CLAIM_AHEAD`]) and claims a file as soon as one ends, instead
//! of waiting for a whole pass to end.
//! The files come from the file-system events (a bounded queue of names; when it is full,
//! a full listing stands in for what was dropped) and from full listings of the folder: at
//! start-up, at every rescan interval and after an overflow.
//!
//! Never two tasks on one item: a file with a task is not offered again until that task
//! has ended (then it is looked at once more, for a producer that reused its name), and
//! the items already claimed (`work/`) are listed only once every task has ended (at
//! start-up, when a deferred or held item falls due, after a spool error and at each
//! rescan), so that such a listing never meets an item a task is working on; the digests
//! that are due are closed at that moment too, as at the start of a pass.
//!
//! Consumes a [`Feed`] of names and [`Hooks`]; produces rounds: a [`PassReport`] of what
//! was done, at most every [`ROUND`] (and when the hooks ask for one), counted in
//! `/metrics` as passes and handed to the hooks. Returns [`RelayError`] only when the spool itself
//! cannot be read or a task panicked.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;

use super::item::{self, ItemOutcome, Mode, Screen};
use super::{Core, PassReport, RelayError};
use crate::spool::SpoolError;

/// How often a busy relay reports a round.
pub const ROUND: Duration = Duration::from_secs(1);

/// After a spool error, how long before the claimed items are listed again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);

/// What the dispatcher is fed: the names the file-system events carry, and the signals.
pub struct Feed {
    /// Names of changed entries of the folder; `None` without events (rescans only).
    pub names: Option<mpsc::Receiver<PathBuf>>,
    /// Set when a name did not fit in the queue: a full listing follows.
    pub overflow: Arc<AtomicBool>,
    /// Woken on an overflow and on `stop`.
    pub wake: Arc<Notify>,
    /// Stop claiming; the items in flight finish.
    pub stop: Arc<AtomicBool>,
}

/// What the service adds: the rescan interval and what it does with each round.
pub struct Hooks<'a> {
    pub rescan: Duration,
    /// When the earliest deferred item is due ([`super::Relay::next_due`]).
    pub next_due: &'a dyn Fn() -> Option<Timestamp>,
    /// Called with each round's report; returns how soon it wants another (empty) round.
    pub round: &'a mut dyn FnMut(&PassReport) -> Option<Duration>,
}

/// What a task works on: a file of the folder (an arrival) or a claimed item's folder.
struct Claim {
    path: Option<PathBuf>,
    arrival: bool,
}

type Joined = Result<(Claim, Result<ItemOutcome, SpoolError>), tokio::task::JoinError>;

/// After a listing of the claimed items, how soon another follows when the earliest due
/// item is one already running (or one the listing did not find).
const RESUME_AGAIN: Duration = Duration::from_secs(1);

/// The dispatcher's state: the tasks, the files they claim, and what is due.
struct Dispatcher<'a, M: Mode> {
    core: &'a Arc<Core>,
    mode: &'a Arc<M>,
    in_flight: usize,
    tasks: JoinSet<(Claim, Result<ItemOutcome, SpoolError>)>,
    /// The files and item folders a running task works on.
    claiming: HashSet<PathBuf>,
    /// Files whose task ended while a file of the same name was there again.
    again: Vec<PathBuf>,
    report: PassReport,
    /// When the claimed items are to be listed (start-up, a spool error, a rescan).
    resume_at: Option<Instant>,
    /// When the earliest deferred or held item is due.
    due: Option<Timestamp>,
    /// An item was held since `due` was last read: read it again.
    recheck_due: bool,
    /// When the claimed items were last listed.
    listed_at: Timestamp,
    /// Whether the folder is to be listed in full.
    list: bool,
}

/// Runs the dispatcher until `feed.stop`, then lets the items in flight finish.
pub(super) async fn dispatch<M: Mode>(
    core: &Arc<Core>,
    mode: &Arc<M>,
    in_flight: usize,
    mut feed: Feed,
    hooks: Hooks<'_>,
) -> Result<(), RelayError> {
    let mut d = Dispatcher {
        core,
        mode,
        in_flight: in_flight.max(1),
        tasks: JoinSet::new(),
        claiming: HashSet::new(),
        again: Vec::new(),
        report: PassReport::default(),
        resume_at: Some(Instant::now()),
        due: None,
        recheck_due: false,
        listed_at: Timestamp::MIN,
        list: true,
    };
    let (mut next_rescan, mut round_at, mut wants_round) = (Instant::now() + hooks.rescan, Instant::now(), None);
    while !feed.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= next_rescan {
            // A rescan is a round even when it finds nothing, as a pass was (so the last
            // pass time in `/metrics` stays fresh while the relay is idle).
            (d.list, d.resume_at, next_rescan, wants_round) = (true, Some(now), now + hooks.rescan, Some(now));
        }
        if d.resume_at.is_some_and(|at| at <= now) || d.due.is_some_and(|due| due <= Timestamp::now()) {
            d.resume(&feed.stop).await?;
            d.refresh_due((hooks.next_due)());
        } else if std::mem::take(&mut d.recheck_due) {
            d.refresh_due((hooks.next_due)());
        }
        if d.list || feed.overflow.swap(false, Ordering::SeqCst) {
            d.list_arrivals(&feed.stop).await?;
        }
        for path in std::mem::take(&mut d.again) {
            d.offer(&path).await?;
        }
        let acted = d.report != PassReport::default();
        if (acted && round_at.elapsed() >= ROUND) || wants_round.is_some_and(|at| at <= Instant::now()) {
            wants_round = d.round(&mut *hooks.round).map(|wait| Instant::now() + wait);
            round_at = Instant::now();
        }
        let report_at = (d.report != PassReport::default()).then_some(round_at + ROUND);
        let wait = [Some(next_rescan), d.resume_at, wants_round, report_at, d.due.map(instant_of)]
            .into_iter()
            .flatten()
            .min()
            .map_or(hooks.rescan, |at| at.saturating_duration_since(Instant::now()));
        match d.next_event(&mut feed, wait).await {
            Event::Finished(joined) => d.finished(joined)?,
            Event::Name(Some(path)) => d.offer(&path).await?,
            Event::Name(None) => feed.names = None,
            Event::Poke | Event::Timer => {}
        }
    }
    while !d.tasks.is_empty() {
        let joined = d.tasks.join_next().await;
        d.finished(joined)?;
    }
    d.round(&mut *hooks.round);
    Ok(())
}

/// What woke the dispatcher.
enum Event {
    Finished(Option<Joined>),
    Name(Option<PathBuf>),
    Poke,
    Timer,
}

/// The `Instant` a timestamp (on the system clock) falls at; now when it is past.
fn instant_of(at: Timestamp) -> Instant {
    let ahead = Duration::try_from(at.duration_since(Timestamp::now())).unwrap_or(Duration::ZERO);
    Instant::now() + ahead
}

impl<M: Mode> Dispatcher<'_, M> {
    /// Waits for a task to end, a name (only while a slot is free), a poke or `wait`.
    async fn next_event(&mut self, feed: &mut Feed, wait: Duration) -> Event {
        let free = self.tasks.len() < self.in_flight;
        let names = async {
            match feed.names.as_mut() {
                Some(names) => names.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            joined = self.tasks.join_next(), if !self.tasks.is_empty() => Event::Finished(joined),
            name = names, if free => Event::Name(name),
            _ = feed.wake.notified() => Event::Poke,
            _ = tokio::time::sleep(wait) => Event::Timer,
        }
    }

    /// Counts an ended task; a spool error has the claimed items listed again soon, a
    /// file of the folder that is there again (its name reused) is offered again.
    fn finished(&mut self, joined: Option<Joined>) -> Result<(), RelayError> {
        let Some(joined) = joined else { return Ok(()) };
        let (claim, result) = joined.map_err(RelayError::Task)?;
        match &result {
            Ok(ItemOutcome::Deferred { next_at, .. }) => self.due = Some(self.due.map_or(*next_at, |due| due.min(*next_at))),
            Ok(ItemOutcome::Held) => self.recheck_due = true,
            Err(_) => self.resume_at = Some(Instant::now() + RETRY_AFTER_ERROR),
            Ok(_) => {}
        }
        let failed = result.is_err();
        super::collect(Some(Ok(result)), &mut self.report)?;
        if let Some(path) = claim.path {
            self.claiming.remove(&path);
            if claim.arrival && !failed && std::fs::symlink_metadata(&path).is_ok() {
                self.again.push(path);
            }
        }
        Ok(())
    }

    /// Spawns a task for the file at `path` if it is one to claim and has none yet.
    async fn offer(&mut self, path: &Path) -> Result<(), RelayError> {
        if self.claiming.contains(path) {
            return Ok(());
        }
        match self.mode.arrival(path) {
            Some(source) => self.spawn(source, true).await,
            None => Ok(()),
        }
    }

    /// Spawns a task for `source` (a file of the folder when `arrival`) once a slot is
    /// free, unless what it works on has one already or the mode screens it out.
    async fn spawn(&mut self, source: M::Source, arrival: bool) -> Result<(), RelayError> {
        let path = M::claim_path(&source).map(Path::to_owned);
        if path.as_ref().is_some_and(|p| self.claiming.contains(p)) {
            return Ok(());
        }
        match self.mode.screen(self.core, &source) {
            Screen::Take => {}
            Screen::Waiting => {
                self.report.waiting += 1;
                return Ok(());
            }
            Screen::Held => {
                self.report.held += 1;
                return Ok(());
            }
            Screen::Leave => return Ok(()),
        }
        while self.tasks.len() >= self.in_flight {
            let joined = self.tasks.join_next().await;
            self.finished(joined)?;
        }
        if let Some(path) = &path {
            self.claiming.insert(path.clone());
        }
        let (core, mode) = (self.core.clone(), self.mode.clone());
        self.tasks.spawn(async move { (Claim { path, arrival }, item::process(core, mode, source).await) });
        Ok(())
    }

    /// Takes `next_due` (the earliest due item) as the next time to resume. One due before
    /// the last listing is running already (or was not found by it): listed again soon.
    fn refresh_due(&mut self, next_due: Option<Timestamp>) {
        self.due = next_due.filter(|due| *due > self.listed_at);
        if next_due.is_some_and(|due| due <= self.listed_at) {
            let again = Instant::now() + RESUME_AGAIN;
            self.resume_at = Some(self.resume_at.map_or(again, |at| at.min(again)));
        }
    }

    /// Once no task runs: closes the digests that are due, then lists the claimed items
    /// and spawns a task for each one to resume.
    async fn resume(&mut self, stop: &AtomicBool) -> Result<(), RelayError> {
        self.resume_at = None;
        while !self.tasks.is_empty() {
            let joined = self.tasks.join_next().await;
            self.finished(joined)?;
        }
        self.listed_at = Timestamp::now();
        super::close_digests(self.core, &mut self.report).await?;
        for source in self.mode.resumable()? {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            self.spawn(source, false).await?;
        }
        Ok(())
    }

    /// Lists the folder in full and spawns a task for every file not claimed yet; when the
    /// listing was read to its end, the end-of-pass bookkeeping follows.
    async fn list_arrivals(&mut self, stop: &AtomicBool) -> Result<(), RelayError> {
        self.list = false;
        let number = self.core.pass_number.fetch_add(1, Ordering::Relaxed) + 1;
        for source in self.mode.arrivals()? {
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            self.spawn(source, true).await?;
        }
        super::pass_complete(self.core, self.mode, number).await
    }

    /// Hands the report so far to the hooks (and `/metrics`) and starts a new one.
    fn round(&mut self, hook: &mut dyn FnMut(&PassReport) -> Option<Duration>) -> Option<Duration> {
        let report = std::mem::take(&mut self.report);
        self.core.record_pass(&report);
        hook(&report)
    }
}
