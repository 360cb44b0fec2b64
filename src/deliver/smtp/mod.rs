//! SMTP submission: `smtp://host:port` (STARTTLS as the TLS level asks) or `smtps://host:port`
//! (implicit TLS), AUTH PLAIN/LOGIN, the certificate checked as the level says (see
//! [`tls_policy`]: by default verified against the system roots or only the configured CA
//! file), timeouts on every step, and a small pool of open connections so a burst of messages
//! does not open one connection each.
//!
//! Consumes [`SmtpSettings`] (checked at start-up: password readable, CA file parseable, host
//! usable as a TLS name, no credentials where they could go in clear) and [`Outgoing`]
//! messages; produces a [`Receipt`] with the [`SmtpReport`] of the conversation, or a
//! [`DeliveryError`] naming the failed step. Exchange / Office 365 submission is `url =
//! "smtp://smtp.office365.com:587"`, the default level `verify`, `username` and
//! `password_env`: nothing else is needed.
//!
//! A connection is reused while it is healthy and has been idle less than [`IDLE_LIMIT`];
//! one the server closed while idle is replaced transparently (nothing was sent on it).
//! Idle connections end with QUIT on [`Deliver::close`], and when the transport is dropped
//! inside a tokio runtime (a reload replacing it): servers log a client that just hangs up.

mod session;
pub mod tls_policy;
mod wire;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use rustls::pki_types::ServerName;
use tokio::sync::Semaphore;

use self::session::{Conn, Params, Transaction};
use self::tls_policy::{TlsLevel, TlsPolicy, TlsSetupError};
use super::receipt::{SmtpReport, queue_id};
use super::{DeliverFuture, Deliver, DeliveryError, Outgoing, Receipt};
use super::SmtpSettings;
use crate::settings::SecretSource;

/// Pooled connections idle longer than this are closed instead of reused (servers drop
/// idle clients after a few minutes; Exchange's default is 5).
pub const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// The SMTP transport with its connection pool.
pub struct SmtpTransport {
    params: Params,
    idle: Mutex<Vec<Conn>>,
    /// At most `pool_size` deliveries (and so connections) at once.
    permits: Semaphore,
    description: String,
}

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTransport").field("description", &self.description).finish_non_exhaustive()
    }
}

fn config(key: &'static str, message: String) -> DeliveryError {
    DeliveryError::Config { key, message }
}

fn secret_key(source: &SecretSource) -> &'static str {
    match source {
        SecretSource::Env(_) => "delivery.password_env",
        SecretSource::File(_) => "delivery.password_file",
    }
}

impl From<TlsSetupError> for DeliveryError {
    fn from(e: TlsSetupError) -> DeliveryError {
        config(e.key(), e.to_string())
    }
}

impl SmtpTransport {
    /// Checks the settings and prepares TLS and credentials; opens no connection.
    pub fn new(s: &SmtpSettings) -> Result<SmtpTransport, DeliveryError> {
        let credentials = match (&s.username, &s.password) {
            (Some(user), Some(source)) => {
                let password = source.read().map_err(|message| config(secret_key(source), message))?;
                Some((user.clone(), Credentials::new(user.clone(), password)))
            }
            (Some(_), None) => {
                return Err(config("delivery.username", "is set, but neither password_env nor password_file".into()));
            }
            (None, _) => None,
        };
        let username = credentials.as_ref().map(|(user, _)| user.as_str());
        tls_policy::check_settings(s.tls_level, s.implicit_tls, &s.host, username, &s.tls_fingerprints)?;
        let tls = match TlsPolicy::new(s.tls_level, s.ca_file.as_deref(), &s.tls_fingerprints)? {
            Some(policy) => {
                let name = ServerName::try_from(s.host.clone())
                    .map_err(|_| config("delivery.url", format!("`{}` cannot be checked against a certificate", s.host)))?;
                Some((policy, name))
            }
            None => None,
        };
        let params = Params {
            host: s.host.clone(),
            port: s.port,
            implicit_tls: s.implicit_tls,
            level: s.tls_level,
            tls,
            credentials,
            timeout: s.timeout,
            hello: ClientId::default(),
        };
        let description = describe(s, &params);
        let pool_size = usize::try_from(s.pool_size.max(1)).unwrap_or(1);
        Ok(SmtpTransport { params, idle: Mutex::new(Vec::new()), permits: Semaphore::new(pool_size), description })
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Conn>> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The most recently used healthy connection. Broken idle ones are dropped; those idle
    /// too long are ended with QUIT in the background.
    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.idle();
        idle.retain(|c| !c.conn.has_broken());
        let (fresh, stale): (Vec<Conn>, Vec<Conn>) = idle.drain(..).partition(|c| c.idle_since.elapsed() < IDLE_LIMIT);
        *idle = fresh;
        quit_in_background(stale);
        idle.pop()
    }

    fn put_back(&self, mut conn: Conn) {
        conn.idle_since = std::time::Instant::now();
        self.idle().push(conn);
    }

    fn receipt(&self, conn: Conn, tx: Transaction, reused: bool) -> Receipt {
        let (accepted, refused) = tx.recipients.iter().cloned().partition::<Vec<_>, _>(|r| r.is_accepted());
        let receipt = Receipt {
            summary: tx.final_reply.to_string(),
            queue_id: queue_id(&tx.final_reply.text),
            accepted: accepted.into_iter().map(|r| r.address).collect(),
            refused,
            file: None,
            smtp: Some(SmtpReport {
                session: conn.session.clone(),
                reused_connection: reused,
                mail_from: tx.mail_from,
                recipients: tx.recipients,
                final_reply: tx.final_reply,
            }),
        };
        self.put_back(conn);
        receipt
    }

    async fn send(&self, mail: &Outgoing) -> Result<Receipt, DeliveryError> {
        let _permit = self.permits.acquire().await.expect("the pool's semaphore is never closed");
        if let Some(mut conn) = self.take_idle() {
            match self.params.transaction(&mut conn, mail).await {
                Ok(tx) => return Ok(self.receipt(conn, tx, true)),
                Err(failed) if failed.is_stale_connection() => {
                    tracing::debug!(error = %failed.error, "pooled connection went stale; opening a new one");
                }
                Err(failed) => return Err(self.recycle(conn, failed).await),
            }
        }
        let mut conn = self.params.open().await?;
        match self.params.transaction(&mut conn, mail).await {
            Ok(tx) => Ok(self.receipt(conn, tx, false)),
            Err(failed) => Err(self.recycle(conn, failed).await),
        }
    }

    /// Keeps a connection after a refused transaction if RSET works; returns the error.
    async fn recycle(&self, mut conn: Conn, failed: session::Failed) -> DeliveryError {
        if failed.reusable && self.params.reset(&mut conn).await {
            self.put_back(conn);
        }
        failed.error
    }
}

fn describe(s: &SmtpSettings, p: &Params) -> String {
    let scheme = if s.implicit_tls { "smtps" } else { "smtp" };
    let tls = match (s.implicit_tls, s.tls_level) {
        (_, TlsLevel::None) => "no TLS",
        (true, _) => "implicit TLS",
        (false, TlsLevel::May) => "STARTTLS if offered",
        (false, _) => "STARTTLS required",
    };
    let certificate = match &p.tls {
        Some((policy, _)) => format!(
            ", certificate {}{}",
            policy.check(&s.host),
            policy.ca_file().map(|ca| format!(" with CA {}", ca.display())).unwrap_or_default()
        ),
        None => String::new(),
    };
    let auth = match &p.credentials {
        Some((user, _)) => format!(", AUTH as `{user}`"),
        None => String::new(),
    };
    format!(
        "{scheme}://{}, TLS level {} ({tls}{certificate}){auth}, pool of {}",
        p.server(),
        s.tls_level,
        s.pool_size.max(1)
    )
}

impl Deliver for SmtpTransport {
    fn deliver<'a>(&'a self, mail: &'a Outgoing) -> DeliverFuture<'a> {
        Box::pin(self.send(mail))
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn close(&self) -> DeliverFuture<'_, ()> {
        let conns: Vec<Conn> = std::mem::take(&mut *self.idle());
        Box::pin(async move {
            session::quit_all(conns).await;
            Ok(())
        })
    }
}

impl Drop for SmtpTransport {
    /// Says QUIT on the idle connections in the background when a runtime is there to run
    /// it (a reload dropped this transport); otherwise they are simply closed.
    fn drop(&mut self) {
        quit_in_background(std::mem::take(self.idle.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner())));
    }
}

/// QUIT on `conns` in a task of the current runtime; without one they are just closed.
fn quit_in_background(conns: Vec<Conn>) {
    if !conns.is_empty()
        && let Ok(runtime) = tokio::runtime::Handle::try_current()
    {
        runtime.spawn(session::quit_all(conns));
    }
}
