//! One file of a tapped folder through the relay: wait until it (and its side file) has
//! settled, look its (file GUID, CallId) up in the ledger, prepare, record the attempt,
//! deliver, record the outcome. Nothing in the folder is ever moved, renamed or written;
//! parked files get a report in `<state>/failed/`.
//!
//! Consumes the path of a header, produces an [`ItemOutcome`]; returns [`SpoolError`] only
//! when the state folder fails.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use jiff::Timestamp;

use super::item::{ItemOutcome, Next, Pending, causes, deliver_then_record, join_error, message_id, report};
use super::{Layout, Shared, format_chain};
use crate::deliver::{DeliveryError, Receipt};
use crate::pipeline::{self, Outcome};
use crate::spool::tap::{Signature, ledger_key};
use crate::spool::{Entry, EntryKind, SpoolError, State, TapFolder};

/// Runs one tapped file to the end of this pass; reports a stray once.
pub(crate) async fn process(shared: Arc<Shared>, entry: Entry) -> Result<ItemOutcome, SpoolError> {
    if let EntryKind::Stray { reason } = &entry.kind {
        let (s, reason) = (shared.clone(), reason.clone());
        return tokio::task::spawn_blocking(move || s.tap_stray(&entry, &reason)).await.map_err(join_error)?;
    }
    let path = entry.path;
    let s = shared.clone();
    let p = path.clone();
    let next = tokio::task::spawn_blocking(move || s.tap_begin(&p)).await.map_err(join_error)??;
    deliver_then_record(shared, next, move |s: &Shared, key: &String, call_id, result, attempt, first_at, resend| {
        s.tap_record(&path, key, call_id, result, attempt, first_at, resend)
    })
    .await
}

impl Shared {
    fn tap(&self) -> &TapFolder {
        match &self.layout {
            Layout::Tap(tap) => tap,
            Layout::Own(_) => unreachable!("tapped files are only listed by a tap-mode relay"),
        }
    }

    /// Whether `path` has not changed for `settle` (judged on the system clock, as the
    /// modification times are).
    fn settled(&self, path: &Path) -> Result<Option<Signature>, SpoolError> {
        let sig = Signature::of(path)?;
        Ok(sig.settled(SystemTime::now(), self.settle).then_some(sig))
    }

    fn remember(&self, path: &Path, sig: Signature) {
        let pass = self.pass_number.load(std::sync::atomic::Ordering::Relaxed);
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).insert(path.to_owned(), (sig, pass));
    }

    /// Whether `path` was concluded with this signature; if so it counts as seen in this pass.
    fn unchanged(&self, path: &Path, sig: Signature) -> bool {
        let pass = self.pass_number.load(std::sync::atomic::Ordering::Relaxed);
        match self.seen.lock().unwrap_or_else(|e| e.into_inner()).get_mut(path) {
            Some((seen, last)) if *seen == sig => {
                *last = pass;
                true
            }
            _ => false,
        }
    }

    /// A stray of the tapped folder (a link, a folder named like a header, a name that is
    /// not printable): reported once in the ledger and the report folder, never touched.
    fn tap_stray(&self, entry: &Entry, reason: &str) -> Result<ItemOutcome, SpoolError> {
        let key = format!("{}/#stray", entry.display_name());
        if self.status(&key).is_some() {
            return Ok(ItemOutcome::Unchanged);
        }
        self.note(&key, State::Failed { reason: reason.to_owned() })?;
        self.tap().write_report(&entry.path, &report(&key, None, 0, reason, &[], self.now()))?;
        tracing::warn!(file = %entry.path.display(), reason, "not a header file; reported (the folder is left as it is)");
        Ok(ItemOutcome::Parked { reason: reason.to_owned() })
    }

    fn tap_begin(&self, path: &Path) -> Result<Next<String>, SpoolError> {
        let sig = match self.settled(path) {
            Ok(Some(sig)) => sig,
            Ok(None) => return Ok(Next::Done(ItemOutcome::NotDue)),
            // Gone between the listing and now (Exchange picked it up): nothing to do.
            Err(_) if !path.exists() => return Ok(Next::Done(ItemOutcome::Vanished)),
            Err(e) => return Err(e),
        };
        if self.unchanged(path, sig) {
            return Ok(Next::Done(ItemOutcome::Unchanged));
        }
        let prepared = match self.current().pipeline.prepare_file(path) {
            Ok(Outcome::Skipped(_)) => {
                self.remember(path, sig);
                return Ok(Next::Done(ItemOutcome::Skipped));
            }
            Ok(Outcome::Prepared(prepared)) => prepared,
            Err(e) if e.is_bad_input() => {
                let key = ledger_key(path, None)?;
                if self.status(&key).is_some() {
                    self.remember(path, sig);
                    return Ok(Next::Done(ItemOutcome::Unchanged));
                }
                let outcome = self.tap_fail(path, &key, None, 1, format_chain(&e), &causes(&e))?;
                self.remember(path, sig);
                return Ok(Next::Done(outcome));
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
        let call_id = prepared.event.call_id.clone();
        let key = ledger_key(path, Some(&call_id))?;
        let status = self.status(&key);
        let mut resend = false;
        match status.as_ref().map(|s| &s.last) {
            Some(State::Sent { .. } | State::Skipped { .. } | State::Failed { .. } | State::Done) => {
                self.remember(path, sig);
                return Ok(Next::Done(ItemOutcome::Unchanged));
            }
            Some(State::Deferred { next_at, .. }) if *next_at > self.now() => {
                return Ok(Next::Done(ItemOutcome::NotDue));
            }
            Some(State::Attempt { .. }) => resend = true,
            _ => {}
        }
        let attempt = status.as_ref().map_or(0, |s| s.attempts) + 1;
        let message_id = message_id(&prepared);
        self.note(&key, State::Attempt { attempt, call_id, message_id, resend })?;
        let first_at = self.status(&key).map_or_else(|| self.now(), |s| s.first_at);
        Ok(Next::Send(Pending { handle: key, prepared, attempt, first_at, resend }))
    }

    #[allow(clippy::too_many_arguments)]
    fn tap_record(
        &self,
        path: &Path,
        key: &str,
        call_id: &str,
        result: Result<Receipt, DeliveryError>,
        attempt: u32,
        first_at: Timestamp,
        resend: bool,
    ) -> Result<ItemOutcome, SpoolError> {
        let outcome = match result {
            Ok(receipt) => {
                self.note(key, State::Sent { queue_id: receipt.queue_id.clone(), reply: receipt.summary.clone() })?;
                tracing::info!(file = %path.display(), call_id, reply = %receipt.summary, "delivered");
                ItemOutcome::Delivered { queue_id: receipt.queue_id, resent: resend }
            }
            Err(e) if !pipeline::delivery_is_permanent(&e) => match self.try_defer(key, attempt, first_at, &e)? {
                Ok(deferred) => return Ok(deferred),
                Err(reason) => self.tap_fail(path, key, Some(call_id), attempt, reason, &causes(&e))?,
            },
            Err(e) => self.tap_fail(path, key, Some(call_id), attempt, format_chain(&e), &causes(&e))?,
        };
        if let Ok(sig) = Signature::of(path) {
            self.remember(path, sig);
        }
        Ok(outcome)
    }

    /// Records the failure in the ledger and writes the report; the file stays untouched.
    fn tap_fail(
        &self,
        path: &Path,
        key: &str,
        call_id: Option<&str>,
        attempts: u32,
        reason: String,
        causes: &[String],
    ) -> Result<ItemOutcome, SpoolError> {
        self.note(key, State::Failed { reason: reason.clone() })?;
        self.tap().write_report(path, &report(key, call_id, attempts, &reason, causes, self.now()))?;
        tracing::warn!(file = %path.display(), reason, "parked (the file stays where it is)");
        Ok(ItemOutcome::Parked { reason })
    }
}
