//! One item through the relay: claim, resume from the journal, prepare (adopting the side
//! file), record the attempt, deliver, record the outcome, then archive, defer or park; or
//! park a stray of the spool folder as it is. A header is only read once it is known to be
//! a regular file in the item's own folder; a side file is only ever a `.wav`/`.tif`/`.msg`
//! regular file (a skipped header takes only `<its stem>.*`), so no header carries off
//! another item's files.
//!
//! Consumes a [`Source`] (a header in the spool folder, or an item in `work/`), produces an
//! [`ItemOutcome`]; file-system and journal steps run on the blocking pool, the delivery on
//! the runtime. Every journal record is durable before the step it announces. Returns
//! [`SpoolError`] only when the spool itself fails; the item then stays where it was.

use std::sync::Arc;

use jiff::Timestamp;

use super::{Layout, Shared, format_chain};
use crate::deliver::{DeliveryError, Receipt};
use crate::intake::IntakeErrorKind;
use crate::pipeline::{self, Outcome, Prepared};
use crate::spool::names::{self, is_side_file_name};
use crate::spool::retry::jitter_for;
use crate::spool::{Decision, Entry, EntryKind, ItemStatus, OwnSpool, SpoolError, State, WorkItem};

/// Where an item comes from.
#[derive(Debug)]
pub enum Source {
    /// `own`: an entry of the spool folder (a header to claim, or a stray to park).
    Incoming(Entry),
    /// `own`: an item in `work/`.
    Work(WorkItem),
    /// `tap`: a header (or a stray) in the tapped folder.
    Tapped(Entry),
}

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
    /// The file was gone before it could be claimed.
    Vanished,
}

/// What the blocking first half of either mode hands to the delivery. `H` names the item
/// for the record step: a claimed [`WorkItem`] (own mode) or a ledger key (tap mode).
pub(super) enum Next<H> {
    Done(ItemOutcome),
    Send(Pending<H>),
}

/// A prepared message whose attempt is already on record, waiting to be delivered.
pub(super) struct Pending<H> {
    pub handle: H,
    pub prepared: Box<Prepared>,
    pub attempt: u32,
    pub first_at: Timestamp,
    pub resend: bool,
}

/// The second half both modes share: deliver on the transport in use now, then record the
/// result on a blocking thread with `record` (`Shared::record` or `Shared::tap_record`).
pub(super) async fn deliver_then_record<H: Send + 'static>(
    shared: Arc<Shared>,
    next: Next<H>,
    record: impl FnOnce(&Shared, &H, &str, Result<Receipt, DeliveryError>, u32, Timestamp, bool) -> Result<ItemOutcome, SpoolError>
    + Send
    + 'static,
) -> Result<ItemOutcome, SpoolError> {
    let pending = match next {
        Next::Done(outcome) => return Ok(outcome),
        Next::Send(pending) => pending,
    };
    let transport = shared.current().transport;
    let result = pending.prepared.deliver(transport.as_ref()).await;
    let call_id = pending.prepared.event.call_id.clone();
    tokio::task::spawn_blocking(move || {
        record(&shared, &pending.handle, &call_id, result, pending.attempt, pending.first_at, pending.resend)
    })
    .await
    .map_err(join_error)?
}

/// Runs one item to the end of this pass.
pub(crate) async fn process(shared: Arc<Shared>, source: Source) -> Result<ItemOutcome, SpoolError> {
    if let Source::Tapped(entry) = source {
        return super::tap::process(shared, entry).await;
    }
    let s = shared.clone();
    let next = tokio::task::spawn_blocking(move || s.begin(source)).await.map_err(join_error)??;
    deliver_then_record(shared, next, Shared::record).await
}

/// A blocking step never fails but by panicking (a bug): pass the panic on.
pub(super) fn join_error(e: tokio::task::JoinError) -> SpoolError {
    match e.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(e) => panic!("an item's blocking step was cancelled: {e}"),
    }
}

impl Shared {
    pub(super) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn own(&self) -> &OwnSpool {
        match &self.layout {
            Layout::Own(own) => own,
            Layout::Tap(_) => unreachable!("own-mode items are only made by an own-mode relay"),
        }
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
            open.entry(id.to_owned())
                .or_insert_with(|| ItemStatus { name: None, call_id: None, first_at: now, attempts: 0, last: state.clone() })
                .apply(&state);
        }
        Ok(())
    }

    /// Claims (or resumes) the item and prepares its message; parks a stray.
    fn begin(&self, source: Source) -> Result<Next<WorkItem>, SpoolError> {
        let item = match source {
            Source::Incoming(entry) => match entry.kind {
                EntryKind::Stray { ref reason } => {
                    return self.park_stray(&entry, reason).map(Next::Done);
                }
                _ => match self.own().claim(&entry.path) {
                    Ok(Some(item)) => item,
                    Ok(None) => return Ok(Next::Done(ItemOutcome::Vanished)),
                    // A name the file system refuses in work/ can never be claimed.
                    Err(e) if pipeline::cannot_heal(&e) => {
                        return self.park_stray(&entry, &format!("cannot be claimed: {}", format_chain(&e))).map(Next::Done);
                    }
                    Err(e) => return Err(e),
                },
            },
            Source::Work(item) => item,
            Source::Tapped(_) => unreachable!("tapped files are handled by relay::tap"),
        };
        let status = match self.status(&item.id) {
            Some(status) => status,
            None => {
                self.note(&item.id, State::Claimed { name: item.name.clone() })?;
                self.status(&item.id).expect("just recorded")
            }
        };
        let mut resend = false;
        match &status.last {
            State::Sent { queue_id, .. } => {
                let queue_id = queue_id.clone();
                self.finish(&item)?;
                return Ok(Next::Done(ItemOutcome::Delivered { queue_id, resent: false }));
            }
            State::Skipped { .. } => {
                self.finish(&item)?;
                return Ok(Next::Done(ItemOutcome::Skipped));
            }
            State::Failed { reason } => {
                let reason = reason.clone();
                self.park(&item, status.call_id.as_deref(), status.attempts, &reason, &[])?;
                return Ok(Next::Done(ItemOutcome::Parked { reason }));
            }
            State::Deferred { next_at, .. } if *next_at > self.now() => return Ok(Next::Done(ItemOutcome::NotDue)),
            State::Attempt { .. } => {
                tracing::warn!(item = %item.id, "the last attempt was interrupted; the server may have the message already, sending again");
                resend = true;
            }
            _ => {}
        }
        let attempt = status.attempts + 1;
        // Swapped for a link or a folder between the listing and the claim: never read.
        if let Some(reason) = not_a_header_file(&item) {
            return Ok(Next::Done(self.fail_with(&item, None, attempt, reason, Vec::new())?));
        }
        match self.prepare(&item)? {
            Ok(Outcome::Skipped(message_type)) => {
                // Takes only the side files named after itself (`<stem>.wav`, as Exchange
                // names an XSOVoiceMail's audio), never what its fields name: a skipped
                // header cannot carry off another item's files.
                for side in own_side_files(&item.name) {
                    self.own().adopt_side_file(&item, &side)?;
                }
                self.note(&item.id, State::Skipped { message_type })?;
                self.finish(&item)?;
                Ok(Next::Done(ItemOutcome::Skipped))
            }
            Ok(Outcome::Prepared(prepared)) => {
                let call_id = prepared.event.call_id.clone();
                let message_id = message_id(&prepared);
                self.note(&item.id, State::Attempt { attempt, call_id, message_id, resend })?;
                Ok(Next::Send(Pending { handle: item, prepared, attempt, first_at: status.first_at, resend }))
            }
            Err(e) if e.is_bad_input() => {
                let reason = format_chain(&e);
                Ok(Next::Done(self.fail(&item, None, attempt, reason, &e)?))
            }
            Err(e) => Ok(Next::Done(self.defer(&item, None, attempt, status.first_at, &e)?)),
        }
    }

    /// Parse, enrich, render and compose; a side file still in the spool folder is moved
    /// into the item's folder first.
    fn prepare(&self, item: &WorkItem) -> Result<Result<Outcome, pipeline::Error>, SpoolError> {
        for _ in 0..3 {
            match self.current().pipeline.prepare_file(&item.header()) {
                Err(pipeline::Error::Intake(e)) if matches!(&e.kind, IntakeErrorKind::SideFileMissing { name, .. } if self.own().adopt_side_file(item, name)?) =>
                    {}
                other => return Ok(other),
            }
        }
        Ok(self.current().pipeline.prepare_file(&item.header()))
    }

    /// After the delivery: record the outcome, then archive, defer or park.
    fn record(
        &self,
        item: &WorkItem,
        call_id: &str,
        result: Result<Receipt, DeliveryError>,
        attempt: u32,
        first_at: Timestamp,
        resend: bool,
    ) -> Result<ItemOutcome, SpoolError> {
        match result {
            Ok(receipt) => {
                self.note(&item.id, State::Sent { queue_id: receipt.queue_id.clone(), reply: receipt.summary.clone() })?;
                self.finish(item)?;
                tracing::info!(item = %item.id, call_id, reply = %receipt.summary, "delivered");
                Ok(ItemOutcome::Delivered { queue_id: receipt.queue_id, resent: resend })
            }
            Err(e) if !pipeline::delivery_is_permanent(&e) => self.defer(item, Some(call_id), attempt, first_at, &e),
            Err(e) => {
                let reason = format_chain(&e);
                self.fail(item, Some(call_id), attempt, reason, &e)
            }
        }
    }

    fn finish(&self, item: &WorkItem) -> Result<(), SpoolError> {
        self.own().finish(item)?;
        self.note(&item.id, State::Done)
    }

    /// A temporary failure: retry later, or park the item once it is too old.
    fn defer(
        &self,
        item: &WorkItem,
        call_id: Option<&str>,
        attempt: u32,
        first_at: Timestamp,
        error: &dyn std::error::Error,
    ) -> Result<ItemOutcome, SpoolError> {
        match self.try_defer(&item.id, attempt, first_at, error)? {
            Ok(deferred) => Ok(deferred),
            Err(reason) => self.fail(item, call_id, attempt, reason, error),
        }
    }

    /// After a temporary failure: records `deferred` and returns the outcome, or, when the
    /// item is older than `max_age`, returns the reason to park it with (both modes).
    pub(super) fn try_defer(
        &self,
        id: &str,
        attempt: u32,
        first_at: Timestamp,
        error: &dyn std::error::Error,
    ) -> Result<Result<ItemOutcome, String>, SpoolError> {
        let now = self.now();
        let reason = format_chain(error);
        match self.policy.decide(attempt, first_at, now, jitter_for(id, attempt)) {
            Decision::RetryAt(next_at) => {
                self.note(id, State::Deferred { attempt, reason: reason.clone(), next_at })?;
                tracing::warn!(item = %id, attempt, %next_at, reason, "deferred");
                Ok(Ok(ItemOutcome::Deferred { next_at, reason }))
            }
            Decision::GiveUp => {
                let age = now.duration_since(first_at).unsigned_abs().as_secs();
                Ok(Err(format!("gave up after {attempt} attempts in {age} s: {reason}")))
            }
        }
    }

    /// A permanent failure or bad input: record it, then park the item with its report.
    fn fail(
        &self,
        item: &WorkItem,
        call_id: Option<&str>,
        attempts: u32,
        reason: String,
        error: &dyn std::error::Error,
    ) -> Result<ItemOutcome, SpoolError> {
        self.fail_with(item, call_id, attempts, reason, causes(error))
    }

    /// [`fail`](Self::fail) with the causes already listed.
    fn fail_with(
        &self,
        item: &WorkItem,
        call_id: Option<&str>,
        attempts: u32,
        reason: String,
        causes: Vec<String>,
    ) -> Result<ItemOutcome, SpoolError> {
        self.note(&item.id, State::Failed { reason: reason.clone() })?;
        let call_id = call_id.map(str::to_owned).or_else(|| self.status(&item.id).and_then(|s| s.call_id));
        self.park(item, call_id.as_deref(), attempts, &reason, &causes)?;
        tracing::warn!(item = %item.id, reason, "parked");
        Ok(ItemOutcome::Parked { reason })
    }

    /// Parks an entry of the spool folder that can never be an item, as it is, with its
    /// report (no journal record: it never was an item).
    fn park_stray(&self, entry: &Entry, reason: &str) -> Result<ItemOutcome, SpoolError> {
        let name = entry.display_name();
        let report = report(&name, None, 0, reason, &[], self.now());
        match self.own().park_stray(entry, &report)? {
            Some(parked) => {
                tracing::warn!(file = %entry.path.display(), parked = %parked.display(), reason, "parked");
                Ok(ItemOutcome::Parked { reason: reason.to_owned() })
            }
            None => Ok(ItemOutcome::Vanished),
        }
    }

    fn park(&self, item: &WorkItem, call_id: Option<&str>, attempts: u32, reason: &str, causes: &[String]) -> Result<(), SpoolError> {
        let report = report(&item.id, call_id, attempts, reason, causes, self.now());
        self.own().park(item, &report)?;
        self.note(&item.id, State::Done)
    }
}

/// The Message-ID the message carries (one per notification, see `compose::NotificationId`).
pub(super) fn message_id(prepared: &Prepared) -> String {
    prepared.message.headers().get_raw("Message-ID").unwrap_or_default().to_owned()
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
