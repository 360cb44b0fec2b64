//! One SMTP connection through lettre's `AsyncSmtpConnection`, step by step: DNS, connect,
//! TLS as the level says, greeting + EHLO, STARTTLS, AUTH; then transactions (MAIL FROM, one
//! RCPT TO per recipient, DATA, the message) and QUIT.
//!
//! Consumes the validated [`Params`] and an [`Outgoing`]; produces an open [`Conn`] with its
//! [`SessionInfo`], or a [`Transaction`] with every reply. Every command is lettre's (its
//! encoding, its reply parser, its dot-stuffing); they are sent one at a time rather than
//! through lettre's `send`, because that stops at the first refused recipient without saying
//! which, and we report each recipient's reply and keep the connection (RSET) after a
//! refusal. Each step has its own timeout and names itself in errors. DNS, TCP and TLS are
//! ours for the reasons in [`link`](super::link). Credentials are sent only over TLS — or in
//! clear under level `none` to a loopback address, which the configuration had to say
//! explicitly — and are never logged.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset, Starttls};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::{self, client::AsyncSmtpConnection};
use rustls::pki_types::ServerName;

use super::link::Link;
use super::tls_policy::{TlsLevel, TlsPolicy};
use crate::deliver::error::{SmtpCause, Step, find_rustls_error};
use crate::deliver::receipt::{SessionInfo, TlsInfo, TlsMode};
use crate::deliver::reply::{RecipientReply, Reply};
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
    /// Between transactions. False from MAIL FROM until the final reply (or a working RSET):
    /// a delivery abandoned half-way (its future dropped) leaves the server mid-transaction,
    /// and such a connection must not serve another message.
    pub ready: bool,
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
    /// A negative reply at `step`; 421 means the server is closing the connection.
    fn refused(step: Step, server: String, reply: Reply) -> Failed {
        let reusable = reply.code != 421;
        Failed { error: DeliveryError::Refused { step, server, reply }, reusable }
    }
    /// The server dropped a pooled connection while it sat idle: nothing was sent, so a
    /// fresh connection may simply try again.
    pub(crate) fn is_stale_connection(&self) -> bool {
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
        tokio::time::timeout(after, fut).await.map_err(|_| DeliveryError::Timeout { step, server: self.server(), after })
    }

    /// A failed TLS handshake, with the hint of the policy on how to fix it.
    fn tls_error(&self, source: rustls::Error) -> DeliveryError {
        let hint = self.tls.as_ref().and_then(|(policy, _)| policy.hint(&source));
        DeliveryError::Tls { server: self.server(), name: self.host.clone(), level: self.level, hint, source: Box::new(source) }
    }

    /// A lettre error at `step`, as the step's error.
    fn classify(&self, step: Step, err: smtp::Error) -> DeliveryError {
        let server = self.server();
        if let Some(source) = find_rustls_error(&err) {
            return self.tls_error(source);
        }
        if let Some(reply) = Reply::from_error(&err) {
            return DeliveryError::Refused { step, server, reply };
        }
        DeliveryError::Connection { step, server, source: Box::new(SmtpCause(err)) }
    }

    /// Awaits one lettre exchange within `after`: `Ok(Ok)` a positive reply, `Ok(Err)` the
    /// server's refusal, `Err` no usable reply at all.
    async fn reply(&self, step: Step, after: Duration, exchange: impl Future<Output = Result<Response, smtp::Error>>) -> Answer {
        match self.timed(step, after, exchange).await? {
            Ok(response) => Ok(Ok(Reply::from_response(&response))),
            Err(e) => Reply::from_error(&e).map(Err).ok_or_else(|| self.classify(step, e)),
        }
    }

    /// An exchange of a transaction whose refusal ends the transaction.
    async fn required(
        &self,
        step: Step,
        after: Duration,
        exchange: impl Future<Output = Result<Response, smtp::Error>>,
    ) -> Result<Reply, Failed> {
        match self.reply(step, after, exchange).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(reply)) => Err(Failed::refused(step, self.server(), reply)),
            Err(e) => Err(Failed::broken(e)),
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

    /// The first address that accepts the connection.
    async fn connect(&self, addrs: &[SocketAddr]) -> Result<Link, DeliveryError> {
        let mut last = None;
        for addr in addrs {
            match self.timed(Step::Connect, self.timeout, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => return Ok(Link::new(tcp, *addr)),
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

    /// The TLS handshake on `link`, as the level checks the certificate.
    async fn start_tls(&self, link: &Link) -> Result<TlsInfo, DeliveryError> {
        let Some((policy, name)) = &self.tls else {
            // SmtpTransport::new sets `tls` for every level but `none`, which never gets here.
            let message = "TLS is needed but was not set up".into();
            return Err(DeliveryError::Config { key: "delivery.tls_security_level", message });
        };
        self.timed(Step::Tls, self.timeout, link.start_tls(policy.client_config(), name.clone())).await?.map_err(
            |e| match find_rustls_error(&e) {
                Some(source) => self.tls_error(source),
                None => DeliveryError::Connection { step: Step::Tls, server: self.server(), source: Box::new(e) },
            },
        )
    }

    /// lettre takes over `link`: it reads the greeting and says EHLO.
    async fn hello(&self, link: &Link) -> Result<AsyncSmtpConnection, DeliveryError> {
        let connect = AsyncSmtpConnection::connect_with_transport(Box::new(link.clone()), &self.hello);
        self.timed(Step::Greeting, self.timeout, connect).await?.map_err(|e| self.classify(Step::Greeting, e))
    }

    /// STARTTLS on a new connection when the level asks for it and the server offers it: the
    /// connection over TLS, or the same one without TLS where the level allows that.
    async fn starttls(&self, link: &Link, mut conn: AsyncSmtpConnection) -> Result<(AsyncSmtpConnection, Option<TlsInfo>), DeliveryError> {
        if self.level == TlsLevel::None {
            return Ok((conn, None));
        }
        if !conn.server_info().supports_feature(Extension::StartTls) {
            if self.level.requires_tls() {
                return Err(DeliveryError::StartTlsNotOffered { server: self.server(), level: self.level });
            }
            return Ok((conn, None));
        }
        if let Err(reply) = self.reply(Step::StartTls, self.timeout, conn.command(Starttls)).await? {
            return Err(DeliveryError::Refused { step: Step::StartTls, server: self.server(), reply });
        }
        drop(conn); // and with it anything the server sent after its `220`
        let info = self.start_tls(link).await?;
        link.replay_greeting();
        Ok((self.hello(link).await?, Some(info)))
    }

    /// Opens a connection: every step up to and including AUTH.
    pub async fn open(&self) -> Result<Conn, DeliveryError> {
        let link = self.connect(&self.resolve().await?).await?;
        let (mut conn, tls) = if self.implicit_tls {
            let info = self.start_tls(&link).await?;
            (self.hello(&link).await?, Some((TlsMode::Implicit, info)))
        } else {
            let (conn, info) = self.starttls(&link, self.hello(&link).await?).await?;
            (conn, info.map(|info| (TlsMode::StartTls, info)))
        };
        let tls_mode = tls.as_ref().map_or(TlsMode::None, |(mode, _)| *mode);
        if tls_mode == TlsMode::None {
            self.may_send_credentials_in_clear(&link)?;
        }
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
            peer: link.peer().to_string(),
            greeting: link.greeting().map(|g| g.to_string()).unwrap_or_default(),
            ehlo_name,
            tls_mode,
            certificate: self.tls.as_ref().filter(|_| tls.is_some()).map(|(policy, _)| policy.check(&self.host)),
            tls: tls.map(|(_, info)| info),
            auth_offered,
            auth,
        };
        Ok(Conn { conn, session: Arc::new(session), ready: true })
    }

    /// Without TLS, credentials go only under level `none` (configured explicitly, and
    /// refused at start-up for a host that is not loopback) to a loopback address: `may`
    /// against a server that did not offer STARTTLS stops here, before AUTH.
    fn may_send_credentials_in_clear(&self, link: &Link) -> Result<(), DeliveryError> {
        match &self.credentials {
            Some((user, _)) if self.level != TlsLevel::None || !link.peer().ip().is_loopback() => {
                Err(DeliveryError::CleartextAuth { server: self.server(), username: user.clone() })
            }
            _ => Ok(()),
        }
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
        match self.reply(Step::Auth, self.timeout, conn.auth(&[mechanism], credentials)).await? {
            Ok(reply) => Ok((mechanism.to_string(), user.to_owned(), reply)),
            Err(reply) => Err(DeliveryError::AuthRefused { server, mechanism: mechanism.to_string(), username: user.to_owned(), reply }),
        }
    }

    /// The MAIL FROM parameters the message needs, if the server offers them.
    fn mail_parameters(&self, conn: &AsyncSmtpConnection, mail: &Outgoing) -> Result<Vec<MailParameter>, Failed> {
        let info = conn.server_info();
        let mut params = Vec::new();
        let unsendable = |m: &str| Failed { error: DeliveryError::Envelope(format!("{m} (server {})", self.server())), reusable: true };
        if !mail.bytes.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Err(unsendable("the message has 8-bit content and the server does not offer 8BITMIME"));
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let mut addresses = mail.envelope.from().into_iter().chain(mail.envelope.to());
        if addresses.any(|a| !AsRef::<str>::as_ref(a).is_ascii()) {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Err(unsendable("an address is not ASCII and the server does not offer SMTPUTF8"));
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        if mail.envelope.to().is_empty() {
            return Err(unsendable("the message has no recipient"));
        }
        Ok(params)
    }

    /// One message: MAIL FROM, RCPT TO for each recipient (each reply kept), DATA, content.
    /// Succeeds when at least one recipient was accepted and the content was.
    pub async fn transaction(&self, c: &mut Conn, mail: &Outgoing) -> Result<Transaction, Failed> {
        let server = self.server();
        let params = self.mail_parameters(&c.conn, mail)?;
        c.ready = false;
        let conn = &mut c.conn;
        let mail_from = self.required(Step::MailFrom, self.timeout, conn.command(Mail::new(mail.envelope.from().cloned(), params))).await?;

        let mut recipients = Vec::with_capacity(mail.envelope.to().len());
        for address in mail.envelope.to() {
            let reply = match self.reply(Step::RcptTo, self.timeout, conn.command(Rcpt::new(address.clone(), Vec::new()))).await {
                Ok(Ok(reply) | Err(reply)) if reply.code != 421 => reply,
                Ok(Ok(reply) | Err(reply)) => return Err(Failed::refused(Step::RcptTo, server, reply)),
                Err(e) => return Err(Failed::broken(e)),
            };
            recipients.push(RecipientReply { address: address.clone(), reply });
        }
        if !recipients.iter().any(RecipientReply::is_accepted) {
            return Err(Failed { error: DeliveryError::RecipientsRefused { server, replies: recipients }, reusable: true });
        }

        self.required(Step::Data, self.timeout, conn.command(Data)).await?;

        // The content may be large: allow for a slow link (64 KiB/s) on top of the timeout.
        let allowance = self.timeout + Duration::from_secs_f64(mail.bytes.len() as f64 / 65_536.0);
        // lettre ends the data with CRLF.CRLF; a message that ends with CRLF already would
        // otherwise gain an empty line.
        let content = mail.bytes.strip_suffix(b"\r\n").unwrap_or(&mail.bytes);
        let final_reply = self.required(Step::Message, allowance, conn.message(content)).await?;
        c.ready = true;
        Ok(Transaction { mail_from, recipients, final_reply })
    }

    /// Makes a connection ready for the next transaction after a refused one.
    pub(crate) async fn reset(&self, c: &mut Conn) -> bool {
        c.ready = matches!(self.reply(Step::MailFrom, self.timeout, c.conn.command(Rset)).await, Ok(Ok(_)));
        c.ready
    }
}

/// How long a goodbye may take.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Says QUIT on each connection that is still sound (best effort: one that does not answer
/// in [`QUIT_TIMEOUT`] is just closed).
pub(super) async fn quit_all(conns: Vec<Conn>) {
    for mut c in conns.into_iter().filter(|c| !c.conn.has_broken()) {
        let _ = tokio::time::timeout(QUIT_TIMEOUT, c.conn.quit()).await;
    }
}
