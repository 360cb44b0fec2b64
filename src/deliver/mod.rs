//! Delivery: a composed message -> a [`Receipt`], through SMTP, an `.eml` folder or an
//! Exchange/IIS pickup folder.
//!
//! Consumes an [`Outgoing`] (the envelope and RFC 5322 bytes of a `lettre::Message`, plus
//! the file stem the file transports name it by) and produces a [`Receipt`]: the server's
//! final reply, the queue id when the reply names one, the reply to every recipient, and
//! for SMTP the session details `send-test` prints (greeting, TLS version, AUTH).
//!
//! Every failure is a [`DeliveryError`] that names the step that failed (DNS, connect,
//! TLS, AUTH, a refused recipient, …) and answers [`DeliveryError::is_transient`]: 4xx
//! replies, lost connections, timeouts and file-system trouble are worth retrying; 5xx
//! replies and TLS/AUTH/configuration mismatches are not.
//!
//! This module must never look at templates or events (it sees bytes and an envelope),
//! never log or print a secret, and never leave a half-written file where a pickup
//! service could see it. [`from_settings`] does every check that can be done before the
//! first message (password present, CA file readable, folders usable), so configuration
//! errors surface at start-up.
//!
//! The seam is the small [`Deliver`] trait; lettre's own `Transport` traits stay inside
//! [`smtp`]. `stub::StubTransport` (tests only) records messages and fails on a schedule, for tests of
//! retry paths.

mod atomic;
pub mod eml_dir;
mod error;
pub mod pickup;
mod receipt;
mod reply;
pub mod settings;
pub mod smtp;
#[cfg(test)]
pub(crate) mod stub;

use std::future::Future;
use std::pin::Pin;

use lettre::address::Envelope;

pub use settings::{DeliverySettings, SmtpSettings};

pub use error::{DeliveryError, Step};
pub(crate) use receipt::Receipt;
pub use receipt::{TlsMode, queue_id};
pub use reply::Reply;

/// The future a [`Deliver`] returns (boxed, so transports can sit behind `dyn Deliver`).
pub(crate) type DeliverFuture<'a, T = Receipt> = Pin<Box<dyn Future<Output = Result<T, DeliveryError>> + Send + 'a>>;

/// One message ready to go: the envelope, the exact bytes, and the stem file transports
/// name it by (`<stem>.eml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// `MAIL FROM` and `RCPT TO`. Starts as the message's own envelope; a retry may narrow
    /// the recipients to the ones that were refused with a 4xx reply.
    pub envelope: Envelope,
    /// The RFC 5322 message, CRLF line endings, as `lettre::Message::formatted` gives it.
    pub bytes: Vec<u8>,
    /// The file stem, already safe for a file name (see [`crate::event::safe_file_stem`]).
    pub stem: String,
}

impl Outgoing {
    /// Takes the envelope and bytes of `message`; `stem` is made safe for a file name
    /// (normally it is [`crate::compose::NotificationId::file_stem`] already).
    pub fn new(message: &lettre::Message, stem: &str) -> Outgoing {
        Outgoing { envelope: message.envelope().clone(), bytes: message.formatted(), stem: crate::event::safe_file_stem(stem) }
    }
}

/// A way to hand a message on. One required method; implementations are cheap to share
/// (`&self`), so one transport serves every concurrent delivery.
pub trait Deliver: Send + Sync {
    /// Delivers one message, or says which step failed and whether a retry may help.
    fn deliver<'a>(&'a self, mail: &'a Outgoing) -> DeliverFuture<'a>;

    /// A short description for logs and `send-test` (`smtp://host:587, TLS level verify
    /// (STARTTLS required, certificate verified for `host`), AUTH as `user``, `pickup folder
    /// C:\…`). Never contains a secret.
    fn describe(&self) -> String;

    /// Ends pooled connections politely (QUIT). Delivering after `close` opens new ones.
    fn close(&self) -> DeliverFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}

/// Builds the transport `[delivery]` chose, checking everything that can be checked
/// without sending: the password variable or file, the CA file, the TLS name, the folder.
/// Reads no secret again later (a changed password needs a restart).
pub fn from_settings(settings: &DeliverySettings) -> Result<Box<dyn Deliver>, DeliveryError> {
    Ok(match settings {
        DeliverySettings::Dir(dir) => Box::new(eml_dir::EmlDirTransport::new(dir)?),
        DeliverySettings::Pickup(dir) => Box::new(pickup::PickupTransport::new(dir)?),
        DeliverySettings::Smtp(smtp) => Box::new(smtp::SmtpTransport::new(smtp)?),
    })
}

/// Makes ring the process-wide rustls crypto provider. Call it first thing in `main` and in
/// test set-up: libraries that ask rustls for "the" provider (ldap3) panic when none or two
/// are available. Calling it again is harmless.
pub fn install_crypto_provider() {
    // An error only means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
