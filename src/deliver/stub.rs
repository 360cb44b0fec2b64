//! A transport for tests of retry and error paths: it records every attempt and answers
//! from a plan (`451`, then `250`; unreachable; a timeout…), then accepts everything.
//!
//! Consumes [`Outgoing`] messages, produces the planned [`Receipt`] or [`DeliveryError`].
//! It never touches the network or the disk. Real-server behaviour is tested against a real
//! SMTP server; this is for the code that decides what to do with the answers.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::error::Step;
use super::reply::{RecipientReply, Reply};
use super::{Deliver, DeliverFuture, DeliveryError, Outgoing, Receipt};

const SERVER: &str = "stub";

/// One planned answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planned {
    /// `250 2.0.0 Ok: queued as STUB<n>`.
    Accept,
    /// Every recipient refused with this code (`451` transient, `550` permanent).
    RefuseRecipients(u16),
    /// The message content refused with this final reply code.
    RefuseMessage(u16),
    /// Connection refused (transient).
    Unreachable,
}

/// What the stub was asked to deliver, and what it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub mail: Outgoing,
    pub answer: Planned,
}

/// Records attempts; answers from a plan, then [`Planned::Accept`].
#[derive(Debug, Default)]
pub(crate) struct StubTransport {
    plan: Mutex<VecDeque<Planned>>,
    attempts: Mutex<Vec<Attempt>>,
}

impl StubTransport {
    /// Answers the first attempts from `plan`, in order; accepts once the plan is used up.
    pub(crate) fn with_plan(plan: impl IntoIterator<Item = Planned>) -> StubTransport {
        StubTransport { plan: Mutex::new(plan.into_iter().collect()), attempts: Mutex::default() }
    }

    /// Every attempt so far, in order.
    pub(crate) fn attempts(&self) -> Vec<Attempt> {
        lock(&self.attempts).clone()
    }

    /// The messages accepted so far, in order.
    pub fn delivered(&self) -> Vec<Outgoing> {
        lock(&self.attempts).iter().filter(|a| a.answer == Planned::Accept).map(|a| a.mail.clone()).collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking test thread must not hide what was recorded.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn answer(planned: Planned, mail: &Outgoing, n: usize) -> Result<Receipt, DeliveryError> {
    let server = SERVER.to_owned();
    let reply = |code: u16| Reply { code, text: format!("{}.0.0 planned by the stub", code / 100) };
    match planned {
        Planned::Accept => Ok(Receipt {
            summary: format!("250 2.0.0 Ok: queued as STUB{n}"),
            queue_id: Some(format!("STUB{n}")),
            accepted: mail.envelope.to().to_vec(),
            refused: Vec::new(),
            file: None,
            smtp: None,
        }),
        Planned::RefuseRecipients(code) => Err(DeliveryError::RecipientsRefused {
            server,
            replies: mail.envelope.to().iter().map(|a| RecipientReply { address: a.clone(), reply: reply(code) }).collect(),
        }),
        Planned::RefuseMessage(code) => Err(DeliveryError::Refused { step: Step::Message, server, reply: reply(code) }),
        Planned::Unreachable => {
            Err(DeliveryError::Connect { server, source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)) })
        }
    }
}

impl Deliver for StubTransport {
    fn deliver<'a>(&'a self, mail: &'a Outgoing) -> DeliverFuture<'a> {
        let planned = lock(&self.plan).pop_front().unwrap_or(Planned::Accept);
        let n = {
            let mut attempts = lock(&self.attempts);
            attempts.push(Attempt { mail: mail.clone(), answer: planned });
            attempts.len()
        };
        Box::pin(async move { answer(planned, mail, n) })
    }

    fn describe(&self) -> String {
        "stub transport (tests)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> Outgoing {
        let message = lettre::Message::builder()
            .from("Voice Mail <vm@contoso.com>".parse().unwrap())
            .to("Ann <ann@contoso.com>".parse().unwrap())
            .subject("Missed call")
            .body(String::from("hello"))
            .unwrap();
        Outgoing::new(&message, "call-1")
    }

    #[tokio::test]
    async fn follows_the_plan_then_accepts() {
        let stub = StubTransport::with_plan([Planned::RefuseRecipients(451), Planned::Unreachable]);
        let m = mail();
        let first = stub.deliver(&m).await.unwrap_err();
        assert!(first.is_transient());
        assert_eq!(first.to_string(), "rcpt to: stub refused every recipient: <ann@contoso.com> 451 4.0.0 planned by the stub");
        let second = stub.deliver(&m).await.unwrap_err();
        assert_eq!(second.step(), Some(Step::Connect));
        assert!(second.is_transient());
        let third = stub.deliver(&m).await.unwrap();
        assert_eq!(third.queue_id.as_deref(), Some("STUB3"));
        assert_eq!(stub.attempts().len(), 3);
        assert_eq!(stub.delivered(), vec![m]);
    }

    #[tokio::test]
    async fn permanent_refusals_are_permanent() {
        let stub = StubTransport::with_plan([Planned::RefuseMessage(554), Planned::RefuseRecipients(550)]);
        let m = mail();
        let e = stub.deliver(&m).await.unwrap_err();
        assert!(e.is_permanent());
        assert_eq!(e.reply().map(|r| r.code), Some(554));
        assert!(stub.deliver(&m).await.unwrap_err().is_permanent());
        assert!(stub.delivered().is_empty());
    }
}
