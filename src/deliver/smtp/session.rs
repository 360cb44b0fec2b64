//! One SMTP connection, step by step: DNS, connect, greeting + EHLO, STARTTLS, AUTH, and
//! then transactions (MAIL FROM, one RCPT TO per recipient, DATA, the message).
//!
//! Consumes the validated [`Params`] and an [`Outgoing`]; produces an open [`Conn`] with
//! its [`SessionInfo`], or a [`Transaction`] with every reply. The connection and TLS are
//! ours ([`wire`](super::wire)); from EHLO on, lettre's `AsyncSmtpConnection` is driven one
//! command at a time so each failure names its step and each recipient gets its own reply
//! (lettre's transport stops at the first refused recipient and says neither). Every step
//! has a timeout. STARTTLS follows the TLS level ([`TlsLevel`]). Credentials are sent only
//! over TLS — or in clear under level `none` to a loopback address, which the configuration
//! had to say explicitly — and are never logged.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt, Rset, Starttls};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use rustls::pki_types::ServerName;

use super::tls_policy::{TlsLevel, TlsPolicy};
use super::wire::{Dialogue, WireError, offers_starttls};
use crate::deliver::error::{Reply, SmtpCause, Step, find_rustls_error};
use crate::deliver::receipt::{RecipientReply, SessionInfo, TlsInfo, TlsMode};
use crate::deliver::{DeliveryError, Outgoing};

/// Everything needed to open connections; fixed at start-up.
pub(super) struct Params {
    pub host: String,
    pub port: u16,
    pub implicit_tls: bool,
    pub level: TlsLevel,
    /// The TLS policy and the name the certificate must carry; `None` under level `none`.
    pub tls: Option<(TlsPolicy, ServerName<'static>)>,
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

    /// A failed TLS handshake, with the hint of the policy on how to fix it.
    fn tls_error(&self, source: rustls::Error) -> DeliveryError {
        let hint = self.tls.as_ref().and_then(|(policy, _)| policy.hint(&source));
        DeliveryError::Tls { server: self.server(), name: self.host.clone(), level: self.level, hint, source: Box::new(source) }
    }

    /// A lettre error at `step`, as the step's error.
    fn classify(&self, step: Step, err: lettre::transport::smtp::Error) -> DeliveryError {
        let server = self.server();
        if let Some(source) = find_rustls_error(&err) {
            return self.tls_error(source);
        }
        if let Some(reply) = Reply::from_error(&err) {
            return DeliveryError::Refused { step, server, reply };
        }
        DeliveryError::Connection { step, server, source: Box::new(SmtpCause(err)) }
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

    /// An error from below lettre at `step`.
    fn wire_error(&self, step: Step, err: WireError) -> DeliveryError {
        let server = self.server();
        match err {
            WireError::Io(e) => match find_rustls_error(&e) {
                Some(source) => self.tls_error(source),
                None => DeliveryError::Connection { step, server, source: Box::new(e) },
            },
            WireError::NotSmtp(what) => DeliveryError::Connection { step, server, source: what.into() },
        }
    }

    /// Sends one command line before lettre takes over; a negative reply is `Refused`.
    async fn exchange(&self, d: &mut Dialogue, step: Step, line: impl Display) -> Result<(Reply, Vec<String>), DeliveryError> {
        let line = line.to_string();
        let (reply, lines) = self
            .timed(step, self.timeout, async {
                d.send(&line).await.map_err(WireError::Io)?;
                d.read_reply().await
            })
            .await?
            .map_err(|e| self.wire_error(step, e))?;
        if !reply.is_positive() {
            return Err(DeliveryError::Refused { step, server: self.server(), reply });
        }
        Ok((reply, lines))
    }

    async fn handshake(&self, d: Dialogue) -> Result<(Dialogue, TlsInfo), DeliveryError> {
        let Some((policy, name)) = &self.tls else {
            // SmtpTransport::new sets `tls` for every level but `none`, which never gets here.
            let message = "TLS is needed but was not set up".into();
            return Err(DeliveryError::Config { key: "delivery.tls_security_level", message });
        };
        self.timed(Step::Tls, self.timeout, d.start_tls(policy.client_config(), name.clone()))
            .await?
            .map_err(|e| self.wire_error(Step::Tls, WireError::Io(e)))
    }

    /// Opens a connection: every step up to and including AUTH.
    pub async fn open(&self) -> Result<Conn, DeliveryError> {
        let addrs = self.resolve().await?;
        let (tcp, peer) = self.connect_tcp(&addrs).await?;
        let mut d = Dialogue::new(tcp, peer);
        let (mut tls_mode, mut tls) = (TlsMode::None, None);
        if self.implicit_tls {
            let (upgraded, info) = self.handshake(d).await?;
            (d, tls_mode, tls) = (upgraded, TlsMode::Implicit, Some(info));
        }
        let (greeting, _) = self
            .timed(Step::Greeting, self.timeout, d.read_greeting())
            .await?
            .map_err(|e| self.wire_error(Step::Greeting, e))?;
        if !greeting.is_positive() {
            return Err(DeliveryError::Refused { step: Step::Greeting, server: self.server(), reply: greeting });
        }
        if !self.implicit_tls && self.level != TlsLevel::None {
            let (_, ehlo) = self.exchange(&mut d, Step::Greeting, Ehlo::new(self.hello.clone())).await?;
            if offers_starttls(&ehlo) {
                self.exchange(&mut d, Step::StartTls, Starttls).await?;
                let (upgraded, info) = self.handshake(d).await?;
                (d, tls_mode, tls) = (upgraded, TlsMode::StartTls, Some(info));
            } else if self.level.requires_tls() {
                return Err(DeliveryError::StartTlsNotOffered { server: self.server(), level: self.level });
            }
        }
        if tls_mode == TlsMode::None {
            self.may_send_credentials_in_clear(peer)?;
        }
        // lettre reads the greeting again (replayed) and sends EHLO on the final stream.
        let mut conn = self
            .timed(Step::Greeting, self.timeout, AsyncSmtpConnection::connect_with_transport(Box::new(d.into_wire()), &self.hello))
            .await?
            .map_err(|e| self.classify(Step::Greeting, e))?;
        let info = conn.server_info();
        let auth_offered = [Mechanism::Plain, Mechanism::Login, Mechanism::Xoauth2]
            .into_iter()
            .filter(|m| info.supports_auth_mechanism(*m))
            .map(|m| m.to_string())
            .collect();
        let ehlo_name = info.name().to_owned();
        let auth = match &self.credentials {
            Some((user, credentials)) => Some(self.authenticate(&mut conn, user, credentials, tls_mode).await?),
            None => None,
        };
        let session = SessionInfo {
            server: self.server(),
            peer: peer.to_string(),
            greeting: greeting.to_string(),
            ehlo_name,
            tls_mode,
            tls,
            certificate: self.tls.as_ref().filter(|_| tls_mode != TlsMode::None).map(|(policy, _)| policy.check(&self.host)),
            auth_offered,
            auth,
        };
        Ok(Conn { conn, session: Arc::new(session), idle_since: Instant::now() })
    }

    /// Without TLS, credentials go only under level `none` (configured explicitly, and
    /// refused at start-up for a host that is not loopback) to a loopback address: `may`
    /// against a server that did not offer STARTTLS stops here, before AUTH.
    fn may_send_credentials_in_clear(&self, peer: SocketAddr) -> Result<(), DeliveryError> {
        match &self.credentials {
            Some((user, _)) if self.level != TlsLevel::None || !peer.ip().is_loopback() => {
                Err(DeliveryError::CleartextAuth { server: self.server(), username: user.clone() })
            }
            _ => Ok(()),
        }
    }

    async fn connect_tcp(&self, addrs: &[SocketAddr]) -> Result<(tokio::net::TcpStream, SocketAddr), DeliveryError> {
        let mut last = None;
        for addr in addrs {
            match self.timed(Step::Connect, self.timeout, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => {
                    // SMTP is request/reply: without this, Nagle holds the data terminator
                    // back until the content is acknowledged (a delayed ACK: ~40 ms a message).
                    let _ = tcp.set_nodelay(true);
                    return Ok((tcp, *addr));
                }
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
        tls_mode: TlsMode,
    ) -> Result<(String, String, Reply), DeliveryError> {
        let server = self.server();
        let mechanism = conn
            .server_info()
            .get_auth_mechanism(&[Mechanism::Plain, Mechanism::Login])
            .ok_or_else(|| DeliveryError::AuthUnsupported { server: server.clone(), tls: tls_mode != TlsMode::None })?;
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

}

/// How long a goodbye may take.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Says QUIT on each connection (best effort: a connection that does not answer in
/// [`QUIT_TIMEOUT`] is just closed).
pub(super) async fn quit_all(conns: Vec<Conn>) {
    for mut c in conns {
        let _ = tokio::time::timeout(QUIT_TIMEOUT, c.conn.quit()).await;
    }
}
