//! One item through the relay, in either mode: the [`Mode`] claims it (and prepares its
//! message, recording the attempt), [`process`] delivers it, then [`record`] writes the
//! server's answer to the journal before the mode finishes the item (archive, park, or
//! remember it). This order is the exactly-once promise: the outcome of a delivery is on
//! disk before anything moves on, so a crash can only ever repeat a delivery whose `250`
//! was not recorded yet (marked `resend`), never lose one.
//!
//! Consumes a source of the mode's listing, produces an [`ItemOutcome`]; file-system and
//! journal steps run on the blocking pool, the delivery on the runtime. Returns
//! [`SpoolError`] only when the spool itself fails; the item then stays where it was.

use std::sync::Arc;

use jiff::Timestamp;

use super::{Core, format_chain};
use crate::deliver::{DeliveryError, Receipt};
use crate::pipeline::{self, Prepared};
use crate::spool::retry::jitter_for;
use crate::spool::{Decision, ItemStatus, Journal, SpoolError, State};

/// How an item ended in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Accepted by the server; `resent` when a crash had interrupted an earlier attempt.
    Delivered { queue_id: Option<String>, resent: bool },
    /// Not a notification (HealthCheck, XSOVoiceMail, …): archived without a message.
    Skipped,
    /// Moved to `failed/` with the reason beside it.
    Parked { reason: String },
    /// A temporary failure; retried at `next_at`.
    Deferred { next_at: Timestamp, reason: String },
    /// Deferred earlier and its next attempt is not due yet, or (`tap`) the file or its
    /// side file is still changing.
    NotDue,
    /// `tap`: handled before (the ledger has it): nothing to do.
    Unchanged,
    /// Held back by `[digest]`: for a digest of the caller's missed calls, or for a voicemail
    /// that may replace it.
    Held,
    /// The file was gone before it could be claimed.
    Vanished,
}

/// What a pass does with a listed source before any task is spawned for it.
pub(crate) enum Screen {
    /// Process it.
    Take,
    /// Deferred and not due yet: counted as waiting.
    Waiting,
    /// Held back by `[digest]` and not due yet: counted as held.
    Held,
    /// Not the relay's (already reported): left alone.
    Leave,
}

/// How a claimed item ends in the mode's folders, after its last record is on disk.
pub(crate) enum Conclusion<'a> {
    /// Delivered (its `sent` record written) or skipped: archived or removed (`own`),
    /// remembered (`tap`).
    Handled,
    /// Its `failed` record written: parked with this report.
    Parked { report: &'a str },
}

/// What differs between the spool modes (`own`: the relay moves items through its folder;
/// `tap`: it only reads someone else's and keeps a ledger). Everything else, the journal
/// records, the retry decision and the delivery, is [`process`] and [`record`].
pub(crate) trait Mode: Send + Sync + Sized + 'static {
    /// What the folder listing yields.
    type Source: Send + 'static;
    /// A claimed item.
    type Item: Send + 'static;

    /// The sources of one pass, read lazily.
    fn sources(&self) -> Result<Box<dyn Iterator<Item = Self::Source> + Send>, SpoolError>;

    /// Whether the pass spawns a task for `source` at all.
    fn screen(&self, _core: &Core, _source: &Self::Source) -> Screen {
        Screen::Take
    }

    /// Claims the source (blocking): an outcome already, or a prepared message holding a
    /// send slot, whose `attempt` record is on disk ([`Core::attempt`]).
    fn claim(&self, core: &Core, source: Self::Source) -> Result<Next<Self::Item>, SpoolError>;

    /// The item's journal key.
    fn key(item: &Self::Item) -> &str;

    /// A held item, by its journal key, to read its header again and finish it; `None`
    /// when it is gone.
    fn held(&self, core: &Core, key: &str) -> Option<Self::Item>;

    /// The item's header file.
    fn header(item: &Self::Item) -> std::path::PathBuf;

    /// Makes sure the item (of `event`) stays readable while it is held or carries held
    /// calls, before the record that says so: `tap` copies it into its state folder (the
    /// tapped folder may drop it); `own` already has it in `work/`.
    fn keep(&self, _item: &Self::Item, _event: &crate::event::Event) -> Result<(), SpoolError> {
        Ok(())
    }

    /// Ends the item in the mode's folders once its concluding record is on disk.
    fn finish(&self, core: &Core, item: &Self::Item, conclusion: Conclusion<'_>) -> Result<(), SpoolError>;

    /// At start-up: settles journal entries the folders contradict.
    fn recover(
        &self,
        _journal: &Journal,
        _open: &mut std::collections::HashMap<String, ItemStatus>,
        _now: Timestamp,
    ) -> Result<(), SpoolError> {
        Ok(())
    }

    /// After pass `number` read the whole listing.
    fn pass_complete(&self, _number: u64) {}

    /// Drops the kept state that has outlived its use (see [`Core::trim`]).
    fn trim(&self, core: &Core, now: Timestamp) -> Result<(), SpoolError>;

    /// Gives back memory a backlog made the mode hold.
    fn shrink(&self) {}

    /// Whether the mode claims files as they arrive ([`super::stream`]) rather than in
    /// whole passes; such a mode implements the four methods below.
    const STREAMS: bool = false;

    /// Streaming: the items claimed before (to resume), read lazily.
    fn resumable(&self) -> Result<Box<dyn Iterator<Item = Self::Source> + Send>, SpoolError> {
        self.sources()
    }

    /// Streaming: the files waiting in the folder, read lazily.
    fn arrivals(&self) -> Result<Box<dyn Iterator<Item = Self::Source> + Send>, SpoolError> {
        Ok(Box::new(std::iter::empty()))
    }

    /// Streaming: the source for the file at `path` (named by a file-system event), when
    /// it is one to claim.
    fn arrival(&self, _path: &std::path::Path) -> Option<Self::Source> {
        None
    }

    /// Streaming: the file or folder a source's task works on (so that one never has two
    /// tasks).
    fn claim_path(_source: &Self::Source) -> Option<&std::path::Path> {
        None
    }
}

/// What a claim hands to the delivery.
pub(crate) enum Next<I> {
    Done(ItemOutcome),
    Send(Pending<I>),
}

/// A prepared message whose attempt is on record, holding a send slot until it has been
/// handed to the server.
pub(crate) struct Pending<I> {
    pub item: I,
    pub prepared: Box<Prepared>,
    pub attempt: u32,
    pub first_at: Timestamp,
    pub resend: bool,
    pub slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Runs one item to the end of this pass: claim and prepare it, take a send slot and
/// record the attempt ([`Core::attempt`]: items are claimed ahead of the connections),
/// deliver on the transport in use now, give the slot back, record the result, finish.
pub(crate) async fn process<M: Mode>(core: Arc<Core>, mode: Arc<M>, source: M::Source) -> Result<ItemOutcome, SpoolError> {
    let (c, m) = (core.clone(), mode.clone());
    let mut pending = match blocking(move || m.claim(&c, source)).await? {
        Next::Done(outcome) => return Ok(outcome),
        Next::Send(pending) => pending,
    };
    let transport = core.current().transport;
    let result = pending.prepared.deliver(transport.as_ref()).await;
    drop(pending.slot.take());
    blocking(move || record(&core, mode.as_ref(), &pending, result)).await
}

async fn blocking<T: Send + 'static>(step: impl FnOnce() -> Result<T, SpoolError> + Send + 'static) -> Result<T, SpoolError> {
    tokio::task::spawn_blocking(step).await.map_err(join_error)?
}

/// A blocking step never fails but by panicking (a bug): pass the panic on.
fn join_error(e: tokio::task::JoinError) -> SpoolError {
    match e.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(e) => panic!("an item's blocking step was cancelled: {e}"),
    }
}

/// After the delivery: record the server's answer, then finish, defer or park the item.
fn record<M: Mode>(
    core: &Core,
    mode: &M,
    pending: &Pending<M::Item>,
    result: Result<Receipt, DeliveryError>,
) -> Result<ItemOutcome, SpoolError> {
    let (key, call_id) = (M::key(&pending.item), pending.prepared.event.call_id.as_str());
    match result {
        Ok(receipt) => {
            core.note(key, State::Sent { queue_id: receipt.queue_id.clone(), reply: receipt.summary.clone() })?;
            conclude(core, mode, &pending.item, Conclusion::Handled)?;
            tracing::info!(item = %key, call_id, reply = %receipt.summary, "delivered");
            Ok(ItemOutcome::Delivered { queue_id: receipt.queue_id, resent: pending.resend })
        }
        Err(e) => {
            let ending = Ending { core, mode, item: &pending.item, call_id: Some(call_id), attempt: pending.attempt };
            if pipeline::delivery_is_permanent(&e) { ending.fail(format_chain(&e), causes(&e)) } else { ending.defer(pending.first_at, &e) }
        }
    }
}

/// An item about to be deferred or parked: what either needs to know of it.
pub(super) struct Ending<'a, M: Mode> {
    pub core: &'a Core,
    pub mode: &'a M,
    pub item: &'a M::Item,
    /// Its call id, when it has been read.
    pub call_id: Option<&'a str>,
    /// The attempt that failed (the attempts made so far).
    pub attempt: u32,
}

impl<M: Mode> Ending<'_, M> {
    /// A temporary failure: retry later, or park the item once it is older than `max_age`.
    pub(super) fn defer(&self, first_at: Timestamp, error: &dyn std::error::Error) -> Result<ItemOutcome, SpoolError> {
        let (core, key, attempt) = (self.core, M::key(self.item), self.attempt);
        let now = core.now();
        let reason = format_chain(error);
        match core.policy.decide(attempt, first_at, now, jitter_for(key, attempt)) {
            Decision::RetryAt(next_at) => {
                core.note(key, State::Deferred { attempt, reason: reason.clone(), next_at })?;
                tracing::warn!(item = %key, attempt, %next_at, reason, "deferred");
                Ok(ItemOutcome::Deferred { next_at, reason })
            }
            Decision::GiveUp => {
                let age = now.duration_since(first_at).unsigned_abs().as_secs();
                self.fail(format!("gave up after {attempt} attempts in {age} s: {reason}"), causes(error))
            }
        }
    }

    /// A permanent failure or bad input: record it, then park the item with its report.
    pub(super) fn fail(&self, reason: String, causes: Vec<String>) -> Result<ItemOutcome, SpoolError> {
        let (core, key) = (self.core, M::key(self.item));
        core.note(key, State::Failed { reason: reason.clone() })?;
        let call_id = self.call_id.map(str::to_owned).or_else(|| core.status(key).and_then(|s| s.call_id));
        let report = report(key, call_id.as_deref(), self.attempt, &reason, &causes, core.now());
        conclude(core, self.mode, self.item, Conclusion::Parked { report: &report })?;
        tracing::warn!(item = %key, reason, "parked");
        Ok(ItemOutcome::Parked { reason })
    }
}

impl Core {
    pub(super) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(super) fn status(&self, id: &str) -> Option<ItemStatus> {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// Appends a record (durably, except `claimed` and `done`, whose loss is harmless) and
    /// mirrors it in the in-memory status.
    pub(super) fn note(&self, id: &str, state: State) -> Result<(), SpoolError> {
        let now = self.now();
        if matches!(state, State::Claimed { .. } | State::Done) {
            self.journal.append_unsynced(id, now, state.clone())?;
        } else {
            self.journal.append(id, now, state.clone())?;
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let was = open.get(id).is_some_and(|s| super::is_active(&s.last));
        self.count_active(was, super::is_active(&state));
        if state == State::Done {
            open.remove(id);
        } else {
            open.entry(id.to_owned()).or_insert_with(|| ItemStatus::new(now, state.clone())).apply(now, &state);
        }
        Ok(())
    }

    /// Waits for a send slot (blocking: called from a claim, on the blocking pool), then
    /// records the attempt about to be made with `prepared` (its call id and Message-ID)
    /// and returns it as pending delivery. Taking the slot first means an `attempt` on
    /// record is a message about to go out, not one waiting behind others.
    pub(super) fn attempt<I>(
        &self,
        key: &str,
        item: I,
        prepared: Box<Prepared>,
        attempt: u32,
        resend: bool,
    ) -> Result<Next<I>, SpoolError> {
        let slots = self.send_slots.clone().acquire_owned();
        let slot = tokio::runtime::Handle::current().block_on(slots).expect("the send slots are never closed");
        let call_id = prepared.event.call_id.clone();
        let message_id = prepared.message.headers().get_raw("Message-ID").unwrap_or_default().to_owned();
        self.note(key, State::Attempt { attempt, call_id, message_id, resend })?;
        let first_at = self.status(key).map_or_else(|| self.now(), |s| s.first_at);
        Ok(Next::Send(Pending { item, prepared, attempt, first_at, resend, slot: Some(slot) }))
    }
}

/// The text of a `.error.txt` report: the reason, the error's cause chain, then the facts.
pub(super) fn report(id: &str, call_id: Option<&str>, attempts: u32, reason: &str, causes: &[String], at: Timestamp) -> String {
    let mut report = format!("reason: {reason}\n");
    for (n, cause) in causes.iter().enumerate() {
        report += &format!("{}: {cause}\n", if n == 0 { "error" } else { "caused by" });
    }
    report + &format!("item: {id}\ncall id: {}\nattempts: {attempts}\nparked at: {at}\n", call_id.unwrap_or("(unknown)"))
}

/// The error and each of its causes, one per entry.
pub(super) use crate::causes::list as causes;

/// Ends `item` (journal key `key`) with `conclusion` in its mode's folders, first
/// concluding every held call its mail carried: `folded` into its digest or `replaced` by
/// it once it is sent, parked with it when it is parked.
pub(crate) fn conclude<M: Mode>(core: &Core, mode: &M, item: &M::Item, conclusion: Conclusion<'_>) -> Result<(), SpoolError> {
    let key = M::key(item);
    let members = core.status(key).map(|s| s.members).unwrap_or_default();
    let digest = members.iter().any(|m| m == key);
    for member in members.iter().filter(|m| *m != key) {
        let Some(status) = core.status(member) else { continue };
        let Some(held) = mode.held(core, member) else {
            core.note(member, State::Done)?;
            continue;
        };
        let last = match status.last {
            last @ (State::Folded { .. } | State::Replaced { .. } | State::Failed { .. }) => last,
            _ => {
                let last = match conclusion {
                    Conclusion::Parked { .. } => {
                        State::Failed { reason: format!("the mail that carried it ({key}) was parked; see its report") }
                    }
                    Conclusion::Handled if digest => State::Folded { into: key.to_owned() },
                    Conclusion::Handled => State::Replaced { by: key.to_owned() },
                };
                core.note(member, last.clone())?;
                last
            }
        };
        match last {
            State::Failed { reason } => {
                let report = report(member, status.call_id.as_deref(), status.attempts, &reason, &[], core.now());
                mode.finish(core, &held, Conclusion::Parked { report: &report })?;
            }
            _ => mode.finish(core, &held, Conclusion::Handled)?,
        }
    }
    mode.finish(core, item, conclusion)
}

/// Goes on with a claimed item from its journal status: concludes what a crash left
/// concluded (its outcome), waits for a deferral not due yet, or returns whether to send,
/// `true` when the last attempt was interrupted (`resend`).
pub(crate) fn resume<M: Mode>(core: &Core, mode: &M, item: &M::Item, status: &ItemStatus) -> Result<Result<bool, ItemOutcome>, SpoolError> {
    let key = M::key(item);
    let done = match &status.last {
        State::Sent { queue_id, .. } => ItemOutcome::Delivered { queue_id: queue_id.clone(), resent: false },
        State::Skipped { .. } | State::Folded { .. } | State::Replaced { .. } => ItemOutcome::Skipped,
        State::Failed { reason } => {
            let report = report(key, status.call_id.as_deref(), status.attempts, reason, &[], core.now());
            conclude(core, mode, item, Conclusion::Parked { report: &report })?;
            return Ok(Err(ItemOutcome::Parked { reason: reason.clone() }));
        }
        State::Deferred { next_at, .. } if *next_at > core.now() => return Ok(Err(ItemOutcome::NotDue)),
        State::Attempt { .. } => {
            tracing::warn!(item = %key, "the last attempt was interrupted; the server may have the message already, sending again");
            return Ok(Ok(true));
        }
        _ => return Ok(Ok(false)),
    };
    conclude(core, mode, item, Conclusion::Handled)?;
    Ok(Err(done))
}
