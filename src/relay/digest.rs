//! Held items on the delivery path (`[digest]`; the book is [`super::hold`]): an item's
//! event is routed (sent, held, or sent carrying held calls) and a closed digest gets its
//! `gathers` record; once the mail that carries held calls is recorded `sent` (or parked)
//! each of them is concluded with it ([`super::item::conclude`]).
//!
//! Order, for exactly once: `held` before an item is left waiting; `gathers` (naming every
//! call the mail carries) before the carrier's attempt, so a resend after a crash carries
//! the same calls under the same Message-ID; `folded`/`replaced` only after the carrier's
//! `sent` record; the carrier finishes last. A crash anywhere leaves each held call either
//! still held, carried by a gathering item, or concluded.
//!
//! Consumes the relay's [`Core`] and a [`Mode`]; returns [`SpoolError`] only when the spool
//! fails, and a [`pipeline::Error`] for the caller to defer or park as usual.

use std::path::Path;

use super::Core;
use super::hold::Route;
use super::item::Mode;
use crate::event::{CallAttempt, Event};
use crate::intake::Parsed;
use crate::pipeline::{self, Prepared};
use crate::spool::{ItemStatus, SpoolError, State};

/// What became of an item's event.
pub(crate) enum Routed {
    /// Ready to send (alone, as a digest, or carrying the calls it replaces).
    Send(Box<Prepared>),
    /// Held (its `held` record is on disk), or held and not due yet.
    Held,
}

/// Routes item `key`'s parsed `event` (its header at `path`, its journal `status`): a
/// digest's leader or a voicemail already gathering is prepared with the same calls again;
/// an item with an attempt on record is sent as it was; a call held alone is sent once
/// released; anything else is asked of the book.
pub(crate) fn route<M: Mode>(
    core: &Core,
    mode: &M,
    item: &M::Item,
    status: &ItemStatus,
    event: Event,
    path: &Path,
) -> Result<Result<Routed, pipeline::Error>, SpoolError> {
    let key = M::key(item);
    let pipeline = core.current().pipeline;
    let send = |prepared: Result<Prepared, pipeline::Error>| prepared.map(|p| Routed::Send(Box::new(p)));
    if !status.members.is_empty() {
        return prepare_carrying(core, mode, key, &status.members, event, path);
    }
    // Once an attempt is on record the mail is what it was: a resend or a retry after a
    // deferral is never held or made to carry calls it did not carry.
    if status.attempts > 0 {
        return Ok(send(pipeline.prepare_event(event, path)));
    }
    let holds = &core.holds;
    if matches!(status.last, State::Held { .. }) {
        return Ok(if holds.take_released(key) { send(pipeline.prepare_event(event, path)) } else { Ok(Routed::Held) });
    }
    let now = core.now();
    if holds.would_replace(key, &event, now)
        && let Err(e) = mode.keep(item, &event)
    {
        tracing::warn!(item = %key, error = %super::format_chain(&e), "cannot keep a copy; the voicemail goes without replacing held calls");
        return Ok(send(pipeline.prepare_event(event, path)));
    }
    match holds.route(key, &event, now) {
        Route::Send => Ok(send(pipeline.prepare_event(event, path))),
        Route::Hold { key: with, alone } => {
            if let Err(e) = mode.keep(item, &event) {
                holds.unhold(key);
                tracing::warn!(item = %key, error = %super::format_chain(&e), "cannot keep a copy to hold it; sent at once");
                return Ok(send(pipeline.prepare_event(event, path)));
            }
            let held = State::Held { key: with.clone(), call_id: event.call_id.clone(), alone };
            if let Err(e) = core.note(key, held) {
                holds.unhold(key);
                return Err(e);
            }
            tracing::info!(item = %key, call_id = event.call_id, with, alone, "held");
            Ok(Ok(Routed::Held))
        }
        Route::Replace(taken) => {
            let members = taken.ids();
            if let Err(e) = core.note(key, State::Gathers { members: members.clone() }) {
                holds.give_back(taken);
                return Err(e);
            }
            tracing::info!(item = %key, call_id = event.call_id, replaces = ?members, "a voicemail replaces held missed calls");
            prepare_carrying(core, mode, key, &members, event, path)
        }
    }
}

/// Prepares the mail of item `key` that carries the held calls `members` (its `gathers`
/// record): a digest when `key` is among them (its leader), else `event` (a voicemail) with
/// them as its `earlier_attempts`.
fn prepare_carrying<M: Mode>(
    core: &Core,
    mode: &M,
    key: &str,
    members: &[String],
    mut event: Event,
    path: &Path,
) -> Result<Result<Routed, pipeline::Error>, SpoolError> {
    let pipeline = core.current().pipeline;
    let carried = match carried_events(core, mode, key, members)? {
        Ok(carried) => carried,
        Err(e) => return Ok(Err(e)),
    };
    let prepared = if members.iter().any(|m| m == key) {
        pipeline.prepare_digest(with_leader(event, carried), path)
    } else {
        event.earlier_attempts = carried.iter().map(CallAttempt::of).collect();
        pipeline.prepare_event(event, path)
    };
    Ok(prepared.map(|p| Routed::Send(Box::new(p))))
}

/// The leader's event first, then the other carried calls (already oldest first).
fn with_leader(leader: Event, carried: Vec<Event>) -> Vec<Event> {
    let mut events = vec![leader];
    events.extend(carried);
    events
}

/// The events of the held calls `members` carried by `key` (itself left out), read again
/// from their headers as the relay reads any item.
fn carried_events<M: Mode>(
    core: &Core,
    mode: &M,
    key: &str,
    members: &[String],
) -> Result<Result<Vec<Event>, pipeline::Error>, SpoolError> {
    let pipeline = core.current().pipeline;
    let mut events = Vec::new();
    for member in members.iter().filter(|m| *m != key) {
        let Some(item) = mode.held(core, member) else {
            tracing::warn!(item = %key, member, "a call this mail carries has left the spool; it is not listed");
            continue;
        };
        match pipeline.parse_file(&M::header(&item)) {
            Ok(Parsed::Event(event)) => events.push(*event),
            Ok(Parsed::Skipped(_)) => {}
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(events))
}

/// Closes the digests that are due: a `gathers` record on each leader. When a record cannot
/// be written, that digest and the ones not recorded yet go back to the book, to be closed
/// on the next pass.
pub(crate) fn close_due(core: &Core) -> Result<(), SpoolError> {
    let mut due = core.holds.close_due(core.now()).into_iter();
    while let Some(closed) = due.next() {
        let members = closed.members();
        if let Err(e) = core.note(&members[0], State::Gathers { members: members.clone() }) {
            core.holds.reopen(std::iter::once(closed).chain(due));
            return Err(e);
        }
        tracing::info!(item = %members[0], calls = members.len(), "digest closed");
    }
    Ok(())
}
