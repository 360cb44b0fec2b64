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
//! The SMTP protocol is lettre's low-level connection ([`session`]); the pool is deadpool's,
//! newest connection first. lettre's own `AsyncSmtpTransport` and its pool are not used: they
//! cannot check the certificate as `fingerprint` (or a self-signed CA file) asks, would send
//! AUTH in clear under `may` when STARTTLS is not offered, and stop at the first refused
//! recipient; what remains ours is the stream below lettre ([`link`], the reason at its top).
//!
//! A connection is reused while it is healthy and has been idle less than [`IDLE_LIMIT`];
//! one the server closed while idle is replaced transparently (nothing was sent on it).
//! Idle connections end with QUIT on [`Deliver::close`], and when the transport is dropped
//! inside a tokio runtime (a reload replacing it): servers log a client that just hangs up.

mod link;
mod session;
pub mod tls_policy;

use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, Pool, PoolError, QueueMode, RecycleResult};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use rustls::pki_types::ServerName;

use self::session::{Conn, Params, Transaction, quit_all};
use self::tls_policy::{TlsLevel, TlsPolicy, TlsSetupError};
use super::SmtpSettings;
use super::receipt::{SmtpReport, queue_id};
use super::{Deliver, DeliverFuture, DeliveryError, Outgoing, Receipt};
use crate::settings::SecretSource;

/// Pooled connections not handed out for this long are closed instead of reused (servers
/// drop idle clients after a few minutes; Exchange's default is 5).
pub(crate) const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// The SMTP transport with its connection pool.
pub(crate) struct SmtpTransport {
    /// At most `pool_size` connections, and so deliveries, at once.
    pool: Pool<Params>,
    pool_size: usize,
    description: String,
}

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTransport").field("description", &self.description).finish_non_exhaustive()
    }
}

/// The pool opens connections with [`Params::open`]; a connection lettre marked broken, or
/// one left in the middle of a transaction, is not handed out again.
impl managed::Manager for Params {
    type Type = Conn;
    type Error = DeliveryError;

    async fn create(&self) -> Result<Conn, DeliveryError> {
        self.open().await
    }

    async fn recycle(&self, c: &mut Conn, _: &Metrics) -> RecycleResult<DeliveryError> {
        match (c.ready, c.conn.has_broken()) {
            (true, false) => Ok(()),
            (false, _) => Err(managed::RecycleError::message("left in the middle of a transaction")),
            (_, true) => Err(managed::RecycleError::message("the connection broke")),
        }
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
        let pool = Pool::builder(params)
            .max_size(pool_size)
            .queue_mode(QueueMode::Lifo)
            .build()
            .map_err(|e| config("delivery.pool_size", e.to_string()))?;
        Ok(SmtpTransport { pool, pool_size, description })
    }

    fn params(&self) -> &Params {
        self.pool.manager()
    }

    /// Takes the connections idle past [`IDLE_LIMIT`] out of the pool and says QUIT on them
    /// in the background.
    fn expire_idle(&self) {
        quit_in_background(self.pool.retain(|_, metrics| metrics.last_used() < IDLE_LIMIT).removed);
    }

    async fn send(&self, mail: &Outgoing) -> Result<Receipt, DeliveryError> {
        self.expire_idle();
        // A pooled connection the server dropped while idle fails at MAIL FROM with nothing
        // sent: it is discarded and the next one (in the end a new one) tries.
        let mut stale_allowed = self.pool_size;
        loop {
            let mut conn = self.pool.get().await.map_err(|e| self.pool_error(e))?;
            let reused = Object::metrics(&conn).recycle_count > 0;
            match self.params().transaction(&mut conn, mail).await {
                Ok(tx) => return Ok(receipt(&conn, tx, reused)),
                Err(failed) if reused && stale_allowed > 0 && failed.is_stale_connection() => {
                    tracing::debug!(error = %failed.error, "pooled connection went stale; trying another");
                    stale_allowed -= 1;
                    drop(Object::take(conn));
                }
                Err(failed) => {
                    // Kept (back to the pool on drop) only if RSET makes it ready again.
                    if !(failed.reusable && self.params().reset(&mut conn).await) {
                        drop(Object::take(conn));
                    }
                    return Err(failed.error);
                }
            }
        }
    }

    /// The pool's own errors besides the connection's: none can happen (no pool timeouts,
    /// never closed), but if one did, it is a transient connection failure.
    fn pool_error(&self, e: PoolError<DeliveryError>) -> DeliveryError {
        match e {
            PoolError::Backend(e) => e,
            other => DeliveryError::Connect { server: self.params().server(), source: format!("connection pool: {other}").into() },
        }
    }
}

fn receipt(conn: &Conn, tx: Transaction, reused: bool) -> Receipt {
    let (accepted, refused) = tx.recipients.iter().cloned().partition::<Vec<_>, _>(|r| r.is_accepted());
    Receipt {
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
    format!("{scheme}://{}, TLS level {} ({tls}{certificate}){auth}, pool of {}", p.server(), s.tls_level, s.pool_size.max(1))
}

impl Deliver for SmtpTransport {
    fn deliver<'a>(&'a self, mail: &'a Outgoing) -> DeliverFuture<'a> {
        Box::pin(self.send(mail))
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn close(&self) -> DeliverFuture<'_, ()> {
        let idle = self.pool.retain(|_, _| false).removed;
        Box::pin(async move {
            quit_all(idle).await;
            Ok(())
        })
    }
}

impl Drop for SmtpTransport {
    /// Says QUIT on the idle connections in the background when a runtime is there to run
    /// it (a reload dropped this transport); otherwise they are simply closed.
    fn drop(&mut self) {
        quit_in_background(self.pool.retain(|_, _| false).removed);
    }
}

/// QUIT on `conns` in a task of the current runtime; without one they are just closed.
fn quit_in_background(conns: Vec<Conn>) {
    if !conns.is_empty()
        && let Ok(runtime) = tokio::runtime::Handle::try_current()
    {
        runtime.spawn(quit_all(conns));
    }
}
