//! SMTP submission: `smtp://host:port` (STARTTLS required, opportunistic or off) or
//! `smtps://host:port` (implicit TLS), AUTH PLAIN/LOGIN, certificate verification on (system
//! roots, or only the configured CA file), timeouts on every step, and a small pool of
//! open connections so a burst of messages does not open one connection each.
//!
//! Consumes [`SmtpSettings`] (checked at start-up: password readable, CA file parseable,
//! host usable as a TLS name) and [`Outgoing`] messages; produces a [`Receipt`] with the
//! [`SmtpReport`] of the conversation, or a [`DeliveryError`] naming the failed step.
//! Exchange / Office 365 submission is `url = "smtp://smtp.office365.com:587"`, the default
//! `starttls = "required"`, `username` and `password_env`: nothing else is needed.
//!
//! A connection is reused while it is healthy and has been idle less than [`IDLE_LIMIT`];
//! one the server closed while idle is replaced transparently (nothing was sent on it).

mod session;
mod wire;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::sync::Semaphore;

use self::session::{Conn, Params, Transaction};
use super::receipt::{SmtpReport, queue_id};
use super::{DeliverFuture, Deliver, DeliveryError, Outgoing, Receipt};
use crate::config::{SecretSource, SmtpSettings, StartTls};

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

/// The certificates to trust: only those in the CA file when one is set, else the system's.
fn root_store(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, DeliveryError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let key = "delivery.ca_file";
            let pem = std::fs::read(path).map_err(|e| config(key, format!("cannot read `{}`: {e}", path.display())))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| config(key, format!("`{}` is not PEM: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(config(key, format!("`{}` holds no PEM certificate", path.display())));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| config(key, format!("`{}`: {e}", path.display())))?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if roots.is_empty() {
                return Err(config("delivery.ca_file", "not set, and this system has no trusted root certificates".into()));
            }
        }
    }
    Ok(roots)
}

/// TLS client settings: ring, TLS 1.2 and 1.3, certificates verified against `roots`.
fn tls_config(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, DeliveryError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config("delivery.url", format!("cannot set up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
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
        let uses_tls = s.implicit_tls || s.starttls != StartTls::Off;
        let tls = if uses_tls {
            let name = ServerName::try_from(s.host.clone())
                .map_err(|_| config("delivery.url", format!("`{}` cannot be checked against a certificate", s.host)))?;
            Some((tls_config(root_store(s.ca_file.as_deref())?)?, name))
        } else {
            None
        };
        let params = Params {
            host: s.host.clone(),
            port: s.port,
            implicit_tls: s.implicit_tls,
            starttls: s.starttls,
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

    /// The most recently used healthy connection; older idle ones are dropped.
    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.idle();
        idle.retain(|c| c.idle_since.elapsed() < IDLE_LIMIT && !c.conn.has_broken());
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
    let tls = match (s.implicit_tls, s.starttls) {
        (true, _) => "implicit TLS",
        (false, StartTls::Required) => "STARTTLS required",
        (false, StartTls::Opportunistic) => "STARTTLS if offered",
        (false, StartTls::Off) => "no TLS",
    };
    let auth = match &p.credentials {
        Some((user, _)) => format!(", AUTH as `{user}`"),
        None => String::new(),
    };
    let ca = match &s.ca_file {
        Some(ca) if p.tls.is_some() => format!(", CA {}", ca.display()),
        _ => String::new(),
    };
    format!("{scheme}://{}, {tls}{auth}{ca}, pool of {}", p.server(), s.pool_size.max(1))
}

impl Deliver for SmtpTransport {
    fn deliver<'a>(&'a self, mail: &'a Outgoing) -> DeliverFuture<'a> {
        Box::pin(self.send(mail))
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn close(&self) -> DeliverFuture<'_, ()> {
        Box::pin(async move {
            let conns: Vec<Conn> = std::mem::take(&mut *self.idle());
            for conn in conns {
                self.params.quit(conn).await;
            }
            Ok(())
        })
    }
}
