//! [`DeliveryError`]: what went wrong, at which step, and whether retrying can help.
//!
//! Consumes lettre/rustls/io errors, produces typed errors whose message names the step and
//! the server or file, and whose cause chain (`#[source]`) keeps the underlying error.
//! Retry decisions are made with [`DeliveryError::is_transient`], never by reading text.

use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::reply::{RecipientReply, Reply};
use super::smtp::tls_policy::TlsLevel;

type BoxError = Box<dyn StdError + Send + Sync>;

/// The step of a delivery, as swaks would name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Dns,
    Connect,
    /// The server's `220` welcome and the reply to `EHLO`.
    Greeting,
    StartTls,
    Tls,
    Auth,
    MailFrom,
    RcptTo,
    Data,
    /// The message content and the server's final reply to it.
    Message,
    /// Writing a file (`.eml` folder, pickup folder).
    Write,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Dns => "dns",
            Step::Connect => "connect",
            Step::Greeting => "greeting",
            Step::StartTls => "starttls",
            Step::Tls => "tls",
            Step::Auth => "auth",
            Step::MailFrom => "mail from",
            Step::RcptTo => "rcpt to",
            Step::Data => "data",
            Step::Message => "message",
            Step::Write => "write",
        })
    }
}

/// Why a delivery failed. Messages name the step and the server or file; the cause, when
/// there is one, is the error's `source()`.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A setting that cannot work, found before anything was sent.
    #[error("{key}: {message}")]
    Config { key: &'static str, message: String },

    #[error("dns: cannot resolve `{host}`")]
    Dns {
        host: String,
        #[source]
        source: std::io::Error,
    },

    #[error("connect: cannot connect to {server}")]
    Connect {
        server: String,
        #[source]
        source: BoxError,
    },

    #[error("{step}: no answer from {server} within {}", seconds(after))]
    Timeout { step: Step, server: String, after: Duration },

    /// The TLS handshake failed: unknown CA, a certificate for another name, expired, a pin
    /// that does not match, …; `hint` says how to fix it when there is a known way.
    #[error("tls: handshake with {server} failed ({}){}", checked(*level, name), hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default())]
    Tls {
        server: String,
        /// The name the certificate was checked for (`verify`).
        name: String,
        level: TlsLevel,
        hint: Option<String>,
        /// Boxed: it is the largest cause, and every `Result` carries the error's size.
        #[source]
        source: Box<rustls::Error>,
    },

    #[error(
        "starttls: {server} does not offer STARTTLS, and delivery.tls_security_level `{level}` requires TLS; \
         turn STARTTLS on at the server, or use smtps:// if it has a TLS port"
    )]
    StartTlsNotOffered { server: String, level: TlsLevel },

    /// Credentials would have crossed without TLS; nothing was sent.
    #[error(
        "auth: {server} offers no TLS, so the password for `{username}` was not sent (credentials go only over TLS); \
         turn STARTTLS on at the server, or use smtps:// if it has a TLS port; if it takes mail without AUTH, \
         remove delivery.username and its password"
    )]
    CleartextAuth { server: String, username: String },

    #[error("auth: {server} offers no AUTH mechanism callnote can use (PLAIN, LOGIN){}", if *.tls { "" } else { " on an unencrypted connection" })]
    AuthUnsupported { server: String, tls: bool },

    #[error("auth: {server} refused {mechanism} for `{username}`: {reply}")]
    AuthRefused { server: String, mechanism: String, username: String, reply: Reply },

    /// A negative reply at `step` (greeting, STARTTLS, MAIL FROM, DATA, the final reply).
    #[error("{step}: {server} replied {reply}")]
    Refused { step: Step, server: String, reply: Reply },

    /// Every recipient was refused; each with its own reply.
    #[error("rcpt to: {server} refused every recipient: {}", list(replies))]
    RecipientsRefused { server: String, replies: Vec<RecipientReply> },

    /// The connection broke or the server said something that is not SMTP.
    #[error("{step}: connection to {server} failed")]
    Connection {
        step: Step,
        server: String,
        #[source]
        source: BoxError,
    },

    /// The message cannot be sent as it is (no recipient, 8-bit content the server cannot take).
    #[error("envelope: {0}")]
    Envelope(String),

    #[error("write: {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn checked(level: TlsLevel, name: &str) -> String {
    match level {
        TlsLevel::Verify => format!("certificate checked for `{name}`"),
        TlsLevel::Fingerprint => "certificate checked against delivery.tls_fingerprint".to_owned(),
        level => format!("certificate not verified, tls_security_level `{level}`"),
    }
}

fn seconds(d: &Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn list(replies: &[RecipientReply]) -> String {
    replies.iter().map(|r| format!("<{}> {}", r.address, r.reply)).collect::<Vec<_>>().join("; ")
}

impl DeliveryError {
    /// Worth retrying later: a 4xx reply, a lost or refused connection, a timeout, a DNS
    /// failure, a file-system error. When every recipient was refused, transient if any
    /// one of them was refused with a 4xx.
    pub fn is_transient(&self) -> bool {
        match self {
            DeliveryError::Dns { .. }
            | DeliveryError::Connect { .. }
            | DeliveryError::Timeout { .. }
            | DeliveryError::Connection { .. }
            | DeliveryError::Io { .. } => true,
            DeliveryError::AuthRefused { reply, .. } | DeliveryError::Refused { reply, .. } => reply.is_transient(),
            DeliveryError::RecipientsRefused { replies, .. } => replies.iter().any(|r| r.reply.is_transient()),
            DeliveryError::Config { .. }
            | DeliveryError::Tls { .. }
            | DeliveryError::StartTlsNotOffered { .. }
            | DeliveryError::CleartextAuth { .. }
            | DeliveryError::AuthUnsupported { .. }
            | DeliveryError::Envelope(_) => false,
        }
    }

    /// The opposite of [`is_transient`](Self::is_transient): retrying the same message
    /// with the same settings cannot succeed.
    pub fn is_permanent(&self) -> bool {
        !self.is_transient()
    }

    /// The step that failed (`None` for configuration and envelope problems).
    pub fn step(&self) -> Option<Step> {
        Some(match self {
            DeliveryError::Config { .. } | DeliveryError::Envelope(_) => return None,
            DeliveryError::Dns { .. } => Step::Dns,
            DeliveryError::Connect { .. } => Step::Connect,
            DeliveryError::Timeout { step, .. } | DeliveryError::Refused { step, .. } | DeliveryError::Connection { step, .. } => *step,
            DeliveryError::Tls { .. } => Step::Tls,
            DeliveryError::StartTlsNotOffered { .. } => Step::StartTls,
            DeliveryError::AuthUnsupported { .. } | DeliveryError::AuthRefused { .. } | DeliveryError::CleartextAuth { .. } => Step::Auth,
            DeliveryError::RecipientsRefused { .. } => Step::RcptTo,
            DeliveryError::Io { .. } => Step::Write,
        })
    }

    /// The server's reply, when the failure was a reply (the first one, for refused
    /// recipients).
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            DeliveryError::AuthRefused { reply, .. } | DeliveryError::Refused { reply, .. } => Some(reply),
            DeliveryError::RecipientsRefused { replies, .. } => replies.first().map(|r| &r.reply),
            _ => None,
        }
    }
}

/// A lettre error shown by kind only; its own cause follows in the chain. (lettre's
/// `Display` repeats its cause, which would print every cause twice.)
pub(crate) struct SmtpCause(pub lettre::transport::smtp::Error);

impl fmt::Display for SmtpCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.0;
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_tls() {
            "tls error"
        } else if e.is_response() {
            "the server's reply is not SMTP"
        } else if e.is_client() {
            "client error"
        } else if e.is_transport_shutdown() {
            "transport shut down"
        } else if e.source().is_some() {
            "connection error"
        } else {
            "connection closed"
        };
        f.write_str(kind)
    }
}

impl fmt::Debug for SmtpCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl StdError for SmtpCause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

/// The rustls error somewhere in `err`'s cause chain (tokio-rustls hides it inside an
/// `io::Error`, whose own `source()` skips it).
pub(crate) fn find_rustls_error(err: &(dyn StdError + 'static)) -> Option<rustls::Error> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.clone());
        }
        if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref())
            && let Some(tls) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(tls.clone());
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16) -> Reply {
        Reply { code, text: format!("{code} text") }
    }

    #[test]
    fn reply_classes() {
        assert!(reply(250).is_positive() && reply(354).is_positive());
        assert!(reply(451).is_transient() && !reply(451).is_permanent());
        assert!(reply(550).is_permanent() && !reply(550).is_transient());
        assert_eq!(Reply { code: 421, text: String::new() }.to_string(), "421");
    }

    #[test]
    fn transient_or_permanent_by_kind() {
        let server = "mx:25".to_owned();
        let refused = |code| DeliveryError::Refused { step: Step::MailFrom, server: server.clone(), reply: reply(code) };
        assert!(refused(451).is_transient());
        assert!(refused(554).is_permanent());
        let timeout = DeliveryError::Timeout { step: Step::Data, server: server.clone(), after: Duration::from_secs(30) };
        assert!(timeout.is_transient());
        assert_eq!(timeout.to_string(), "data: no answer from mx:25 within 30.0 s");
        assert!(DeliveryError::StartTlsNotOffered { server: server.clone(), level: TlsLevel::Verify }.is_permanent());
        let cleartext = DeliveryError::CleartextAuth { server: server.clone(), username: "svc".into() };
        assert!(cleartext.is_permanent());
        assert_eq!(cleartext.step(), Some(Step::Auth));
        let rcpts = |codes: &[u16]| DeliveryError::RecipientsRefused {
            server: server.clone(),
            replies: codes.iter().map(|c| RecipientReply { address: format!("u{c}@x.test").parse().unwrap(), reply: reply(*c) }).collect(),
        };
        assert!(rcpts(&[550, 451]).is_transient(), "one 4xx makes a retry worthwhile");
        assert!(rcpts(&[550, 553]).is_permanent());
        assert_eq!(
            rcpts(&[550, 451]).to_string(),
            "rcpt to: mx:25 refused every recipient: <u550@x.test> 550 550 text; <u451@x.test> 451 451 text"
        );
        assert_eq!(rcpts(&[550]).step(), Some(Step::RcptTo));
    }

    #[test]
    fn rustls_error_found_inside_io_error() {
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert_eq!(find_rustls_error(&io), Some(rustls::Error::DecryptError));
        let plain = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(find_rustls_error(&plain), None);
    }
}
