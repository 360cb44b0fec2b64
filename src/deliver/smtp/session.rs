//! One SMTP connection, step by step: DNS, connect, greeting + EHLO, STARTTLS, AUTH, and
//! then transactions (MAIL FROM, one RCPT TO per recipient, DATA, the message).
//!
//! Consumes the validated [`Params`] and an [`Outgoing`]; produces an open [`Conn`] with
//! its [`SessionInfo`], or a [`Transaction`] with every reply. Drives lettre's
//! `AsyncSmtpConnection` one command at a time so each failure names its step and each
//! recipient gets its own reply (lettre's transport stops at the first refused recipient
//! and says neither). Every step has a timeout. Never sends credentials before TLS when
//! STARTTLS is required, and never logs them.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

use super::tap;
use crate::config::StartTls;
use crate::deliver::error::{Reply, SmtpCause, Step, find_io_kind, find_rustls_error};
use crate::deliver::receipt::{RecipientReply, SessionInfo, TlsMode};
use crate::deliver::{DeliveryError, Outgoing};

/// Everything needed to open connections; fixed at start-up.
pub(super) struct Params {
    pub host: String,
    pub port: u16,
    pub implicit_tls: bool,
    pub starttls: StartTls,
    /// `None` when TLS is off.
    pub tls: Option<TlsParameters>,
    /// User name (for messages) and credentials.
    pub credentials: Option<(String, Credentials)>,
    pub timeout: Duration,
    pub hello: ClientId,
}

/// An open, authenticated connection.
pub(super) struct Conn {
    pub conn: AsyncSmtpConnection,
    pub session: Arc<SessionInfo>,
    pub idle_since: Instant,
}

/// The replies of one successful transaction.
pub(super) struct Transaction {
    pub mail_from: Reply,
    pub recipients: Vec<RecipientReply>,
    pub final_reply: Reply,
}

/// A failed transaction, and whether the connection can serve the next one (after RSET).
pub(super) struct Failed {
    pub error: DeliveryError,
    pub reusable: bool,
}

impl Failed {
    fn broken(error: DeliveryError) -> Failed {
        Failed { error, reusable: false }
    }
    fn refused(error: DeliveryError, reply_code: u16) -> Failed {
        // 421: the server is closing the connection.
        Failed { error, reusable: reply_code != 421 }
    }
    /// The server dropped a pooled connection while it sat idle: nothing was sent, so a
    /// fresh connection may simply try again.
    pub fn is_stale_connection(&self) -> bool {
        match &self.error {
            DeliveryError::Connection { step: Step::MailFrom, .. } => true,
            DeliveryError::Refused { step: Step::MailFrom, reply, .. } => reply.code == 421,
            _ => false,
        }
    }
}

/// A positive reply, or the server's refusal; `Err` when there was no usable reply at all.
type Answer = Result<Result<Reply, Reply>, DeliveryError>;

impl Params {
    pub fn server(&self) -> String {
        if self.host.contains(':') { format!("[{}]:{}", self.host, self.port) } else { format!("{}:{}", self.host, self.port) }
    }

    /// Runs `fut` with the step timeout.
    async fn timed<T>(&self, step: Step, after: Duration, fut: impl Future<Output = T>) -> Result<T, DeliveryError> {
        tokio::time::timeout(after, fut)
            .await
            .map_err(|_| DeliveryError::Timeout { step, server: self.server(), after })
    }

    /// A lettre error at `step`, as the step's error.
    fn classify(&self, step: Step, err: lettre::transport::smtp::Error) -> DeliveryError {
        let server = self.server();
        if let Some(source) = find_rustls_error(&err) {
            return DeliveryError::Tls { server, name: self.host.clone(), source };
        }
        if let Some(reply) = Reply::from_error(&err) {
            return DeliveryError::Refused { step, server, reply };
        }
        DeliveryError::Connection { step, server, source: SmtpCause(err) }
    }

    /// Sends one command and reads its reply.
    async fn command(&self, conn: &mut AsyncSmtpConnection, step: Step, cmd: impl Display) -> Answer {
        match self.timed(step, self.timeout, conn.command(cmd)).await? {
            Ok(response) => Ok(Ok(Reply::from_response(&response))),
            Err(e) => match Reply::from_error(&e) {
                Some(reply) => Ok(Err(reply)),
                None => Err(self.classify(step, e)),
            },
        }
    }

    async fn resolve(&self) -> Result<Vec<SocketAddr>, DeliveryError> {
        let lookup = tokio::net::lookup_host((self.host.as_str(), self.port));
        let addrs: Vec<_> = self
            .timed(Step::Dns, self.timeout, lookup)
            .await?
            .map_err(|source| DeliveryError::Dns { host: self.host.clone(), source })?
            .collect();
        if addrs.is_empty() {
            let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no address found");
            return Err(DeliveryError::Dns { host: self.host.clone(), source });
        }
        Ok(addrs)
    }

    /// Opens a connection: every step up to and including AUTH.
    pub async fn open(&self) -> Result<Conn, DeliveryError> {
        let addrs = self.resolve().await?;
        let (mut conn, peer, greeting, tls_mode, tls) = if self.implicit_tls {
            self.open_implicit_tls(&addrs).await?
        } else {
            self.open_plain(&addrs).await?
        };
        let info = conn.server_info();
        let auth_offered = [Mechanism::Plain, Mechanism::Login, Mechanism::Xoauth2]
            .into_iter()
            .filter(|m| info.supports_auth_mechanism(*m))
            .map(|m| m.to_string())
            .collect();
        let ehlo_name = info.name().to_owned();
        let auth = match &self.credentials {
            Some((user, credentials)) => Some(self.authenticate(&mut conn, user, credentials).await?),
            None => None,
        };
        let session = SessionInfo {
            server: self.server(),
            peer: peer.to_string(),
            greeting,
            ehlo_name,
            tls_mode,
            tls,
            tls_name: (tls_mode != TlsMode::None).then(|| self.host.clone()),
            auth_offered,
            auth,
        };
        Ok(Conn { conn, session: Arc::new(session), idle_since: Instant::now() })
    }

    /// `smtp://`: TCP (through the tap), greeting, EHLO, then STARTTLS as configured.
    async fn open_plain(
        &self,
        addrs: &[SocketAddr],
    ) -> Result<(AsyncSmtpConnection, SocketAddr, Option<String>, TlsMode, Option<crate::deliver::TlsInfo>), DeliveryError> {
        let (tcp, peer) = self.connect_tcp(addrs).await?;
        let (stream, log) = tap::tap(tcp);
        let mut conn = self
            .timed(Step::Greeting, self.timeout, AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello))
            .await?
            .map_err(|e| self.classify(Step::Greeting, e))?;
        let greeting = log.greeting();
        let use_tls = match self.starttls {
            StartTls::Required if !conn.can_starttls() => {
                return Err(DeliveryError::StartTlsNotOffered { server: self.server() });
            }
            StartTls::Required => true,
            StartTls::Opportunistic => conn.can_starttls(),
            StartTls::Off => false,
        };
        let (Some(params), true) = (&self.tls, use_tls) else {
            log.stop();
            return Ok((conn, peer, greeting, TlsMode::None, None));
        };
        log.mark_tls();
        self.timed(Step::StartTls, self.timeout, conn.starttls(params.clone(), &self.hello))
            .await?
            .map_err(|e| self.classify(Step::StartTls, e))?;
        let tls = log.finish_tls();
        Ok((conn, peer, greeting, TlsMode::StartTls, tls))
    }

    /// `smtps://`: lettre connects and shakes hands itself, so neither the greeting nor the
    /// server hello can be observed.
    async fn open_implicit_tls(
        &self,
        addrs: &[SocketAddr],
    ) -> Result<(AsyncSmtpConnection, SocketAddr, Option<String>, TlsMode, Option<crate::deliver::TlsInfo>), DeliveryError> {
        let params = self.tls.clone();
        let connecting = AsyncSmtpConnection::connect_tokio1(addrs, Some(self.timeout), &self.hello, params, None);
        // Connect, handshake, greeting and EHLO: allow each step its timeout.
        let conn = self.timed(Step::Greeting, self.timeout * 4, connecting).await?.map_err(|e| {
            use std::io::ErrorKind::*;
            let connect_failed = find_rustls_error(&e).is_none()
                && e.status().is_none()
                && matches!(
                    find_io_kind(&e),
                    Some(ConnectionRefused | TimedOut | HostUnreachable | NetworkUnreachable | AddrNotAvailable)
                );
            if connect_failed {
                DeliveryError::Connect { server: self.server(), source: Box::new(SmtpCause(e)) }
            } else {
                self.classify(Step::Greeting, e)
            }
        })?;
        let peer = addrs[0];
        Ok((conn, peer, None, TlsMode::Implicit, None))
    }

    async fn connect_tcp(&self, addrs: &[SocketAddr]) -> Result<(tokio::net::TcpStream, SocketAddr), DeliveryError> {
        let mut last = None;
        for addr in addrs {
            match self.timed(Step::Connect, self.timeout, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => return Ok((tcp, *addr)),
                Ok(Err(source)) => {
                    let server = if addrs.len() > 1 || addr.ip().to_string() != self.host {
                        format!("{} ({addr})", self.server())
                    } else {
                        self.server()
                    };
                    last = Some(DeliveryError::Connect { server, source: Box::new(source) });
                }
                Err(timeout) => last = Some(timeout),
            }
        }
        Err(last.unwrap_or_else(|| DeliveryError::Connect {
            server: self.server(),
            source: Box::new(std::io::Error::from(std::io::ErrorKind::AddrNotAvailable)),
        }))
    }

    async fn authenticate(
        &self,
        conn: &mut AsyncSmtpConnection,
        user: &str,
        credentials: &Credentials,
    ) -> Result<(String, String, Reply), DeliveryError> {
        let server = self.server();
        let mechanism = conn
            .server_info()
            .get_auth_mechanism(&[Mechanism::Plain, Mechanism::Login])
            .ok_or_else(|| DeliveryError::AuthUnsupported { server: server.clone(), tls: conn.is_encrypted() })?;
        match self.timed(Step::Auth, self.timeout, conn.auth(&[mechanism], credentials)).await? {
            Ok(response) => Ok((mechanism.to_string(), user.to_owned(), Reply::from_response(&response))),
            Err(e) => Err(match Reply::from_error(&e) {
                Some(reply) => {
                    DeliveryError::AuthRefused { server, mechanism: mechanism.to_string(), username: user.to_owned(), reply }
                }
                None => self.classify(Step::Auth, e),
            }),
        }
    }

    /// One message: MAIL FROM, RCPT TO for each recipient (each reply kept), DATA, content.
    /// Succeeds when at least one recipient was accepted and the content was.
    pub async fn transaction(&self, c: &mut Conn, mail: &Outgoing) -> Result<Transaction, Failed> {
        let server = self.server();
        let conn = &mut c.conn;
        let info = conn.server_info();
        let mut params = Vec::new();
        let envelope_error = |m: &str| Failed { error: DeliveryError::Envelope(format!("{m} (server {server})")), reusable: true };
        if !mail.bytes.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Err(envelope_error("the message has 8-bit content and the server does not offer 8BITMIME"));
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let addresses = mail.envelope.from().into_iter().chain(mail.envelope.to());
        if addresses.clone().any(|a| !AsRef::<str>::as_ref(a).is_ascii()) {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Err(envelope_error("an address is not ASCII and the server does not offer SMTPUTF8"));
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        if mail.envelope.to().is_empty() {
            return Err(envelope_error("the message has no recipient"));
        }

        let mail_from = match self.command(conn, Step::MailFrom, Mail::new(mail.envelope.from().cloned(), params)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(reply)) => {
                let code = reply.code;
                return Err(Failed::refused(DeliveryError::Refused { step: Step::MailFrom, server, reply }, code));
            }
            Err(e) => return Err(Failed::broken(e)),
        };

        let mut recipients = Vec::with_capacity(mail.envelope.to().len());
        for address in mail.envelope.to() {
            let reply = match self.command(conn, Step::RcptTo, Rcpt::new(address.clone(), Vec::new())).await {
                Ok(Ok(reply)) | Ok(Err(reply)) if reply.code != 421 => reply,
                Ok(Ok(reply)) | Ok(Err(reply)) => {
                    return Err(Failed::broken(DeliveryError::Refused { step: Step::RcptTo, server, reply }));
                }
                Err(e) => return Err(Failed::broken(e)),
            };
            recipients.push(RecipientReply { address: address.clone(), reply });
        }
        if !recipients.iter().any(RecipientReply::is_accepted) {
            return Err(Failed { error: DeliveryError::RecipientsRefused { server, replies: recipients }, reusable: true });
        }

        match self.command(conn, Step::Data, Data).await {
            Ok(Ok(_)) => {}
            Ok(Err(reply)) => {
                let code = reply.code;
                return Err(Failed::refused(DeliveryError::Refused { step: Step::Data, server, reply }, code));
            }
            Err(e) => return Err(Failed::broken(e)),
        }

        // The content may be large: allow for a slow link (64 KiB/s) on top of the timeout.
        let allowance = self.timeout + Duration::from_secs_f64(mail.bytes.len() as f64 / 65_536.0);
        // lettre ends the data with CRLF.CRLF; a message that ends with CRLF already would
        // otherwise gain an empty line.
        let content = mail.bytes.strip_suffix(b"\r\n").unwrap_or(&mail.bytes);
        let final_reply = match self.timed(Step::Message, allowance, conn.message(content)).await {
            Ok(Ok(response)) => Reply::from_response(&response),
            Ok(Err(e)) => match Reply::from_error(&e) {
                Some(reply) => {
                    let code = reply.code;
                    return Err(Failed::refused(DeliveryError::Refused { step: Step::Message, server, reply }, code));
                }
                None => return Err(Failed::broken(self.classify(Step::Message, e))),
            },
            Err(e) => return Err(Failed::broken(e)),
        };
        Ok(Transaction { mail_from, recipients, final_reply })
    }

    /// Makes a connection ready for the next transaction after a refused one.
    pub async fn reset(&self, c: &mut Conn) -> bool {
        matches!(self.command(&mut c.conn, Step::MailFrom, Rset).await, Ok(Ok(_)))
    }

    /// Says goodbye (best effort).
    pub async fn quit(&self, mut c: Conn) {
        let _ = self.timed(Step::MailFrom, self.timeout, c.conn.quit()).await;
    }
}
