//! The byte stream under lettre's SMTP connection: the one part of SMTP delivery lettre
//! cannot do for us.
//!
//! Why it exists (lettre 0.11): lettre's TLS settings (`TlsParameters`) take no certificate
//! verifier of our own, so the `fingerprint` level, a self-signed certificate listed in the CA
//! file, and the fingerprint hint in a refusal cannot go through lettre's TLS. So the TCP
//! connection and the TLS handshake are made here, with the
//! [`TlsPolicy`](super::tls_policy::TlsPolicy)'s rustls settings, and lettre speaks SMTP over
//! the result through its public `AsyncSmtpConnection::connect_with_transport`. Connecting here
//! also sets `TCP_NODELAY` (lettre's connect does not, and each message's final dot then waits
//! ~40 ms for a delayed ACK) and tells the negotiated TLS version and cipher suite.
//!
//! Beyond passing bytes, a [`Link`] (shared between lettre and us) only:
//! - keeps the bytes the server sent before lettre's first command: its greeting, which
//!   lettre reads and drops; [`Link::greeting`] has lettre parse them again;
//! - hands its TCP stream back for STARTTLS ([`Link::start_tls`]). The lettre connection that
//!   read the `220` to STARTTLS is dropped first, with its read buffer, so nothing the server
//!   sent in clear can be read as part of the encrypted session;
//! - after STARTTLS, serves the greeting once more ([`Link::replay_greeting`]), re-encoded from
//!   the parsed reply, because `connect_with_transport` starts by reading one; lettre then says
//!   EHLO over TLS.
//!
//! Nothing here parses or writes SMTP.

use std::fmt::Debug;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use lettre::transport::smtp::client::AsyncTokioStream;
use lettre::transport::smtp::response::Response;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::deliver::receipt::TlsInfo;
use crate::deliver::reply::Reply;

/// The most of a greeting kept for the transcript (lettre's own limit for a reply is larger).
const MAX_GREETING: usize = 16 * 1024;

/// TCP, or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Io for T {}

#[derive(Debug, Default)]
struct State {
    /// `None` only while the TLS handshake has it.
    stream: Option<Box<dyn Io>>,
    /// Read by lettre before the stream (the greeting again, after STARTTLS).
    replay: Vec<u8>,
    /// The bytes the server sent before lettre's first command.
    greeting: Vec<u8>,
    /// lettre has written: the greeting is complete.
    spoken: bool,
}

/// One SMTP connection's stream; clones share it.
#[derive(Debug, Clone)]
pub(super) struct Link {
    state: Arc<Mutex<State>>,
    peer: SocketAddr,
}

impl Link {
    /// A connected TCP stream, with `TCP_NODELAY`: SMTP is request/reply, and Nagle would
    /// hold back each command's last bytes until the previous ones are acknowledged.
    pub fn new(tcp: TcpStream, peer: SocketAddr) -> Link {
        let _ = tcp.set_nodelay(true);
        let state = State { stream: Some(Box::new(tcp)), ..State::default() };
        Link { state: Arc::new(Mutex::new(state)), peer }
    }

    /// The address connected to.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The TLS handshake on the TCP stream: before anything else (`smtps://`), or once the
    /// lettre connection that received STARTTLS's `220` has been dropped.
    pub(crate) async fn start_tls(&self, config: Arc<rustls::ClientConfig>, name: ServerName<'static>) -> io::Result<TlsInfo> {
        let stream = self.state().stream.take().ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        let tls = tokio_rustls::TlsConnector::from(config).connect(name, stream).await?;
        let info = tls_info(tls.get_ref().1);
        let mut state = self.state();
        state.stream = Some(Box::new(tls));
        state.replay.clear();
        Ok(info)
    }

    /// The server's greeting as lettre parses it (`None` if it was longer than we keep).
    pub fn greeting(&self) -> Option<Reply> {
        let state = self.state();
        let text = std::str::from_utf8(&state.greeting).ok()?;
        text.parse::<Response>().ok().map(|r| Reply::from_response(&r))
    }

    /// Has lettre read the greeting again before the stream, as it does on a new connection:
    /// one line re-encoded from the parsed reply (a bare `220` if it was not kept), so nothing
    /// else the server sent comes with it.
    pub(crate) fn replay_greeting(&self) {
        let greeting = self.greeting().unwrap_or(Reply { code: 220, text: String::new() });
        self.state().replay = format!("{greeting}\r\n").into_bytes();
    }

    /// Runs `f` on the stream; an error once the stream is gone.
    fn io<T>(&self, f: impl FnOnce(Pin<&mut dyn Io>, &mut State) -> Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        let mut guard = self.state();
        let state = &mut *guard;
        match state.stream.take() {
            Some(mut stream) => {
                let poll = f(Pin::new(stream.as_mut()), state);
                state.stream = Some(stream);
                poll
            }
            None => Poll::Ready(Err(io::Error::from(io::ErrorKind::NotConnected))),
        }
    }
}

impl AsyncRead for Link {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        self.io(|stream, state| {
            if !state.replay.is_empty() {
                let n = buf.remaining().min(state.replay.len());
                buf.put_slice(&state.replay[..n]);
                state.replay.drain(..n);
                return Poll::Ready(Ok(()));
            }
            let poll = stream.poll_read(cx, buf);
            if !state.spoken {
                let new = &buf.filled()[before..];
                let room = MAX_GREETING.saturating_sub(state.greeting.len());
                state.greeting.extend_from_slice(&new[..new.len().min(room)]);
            }
            poll
        })
    }
}

impl AsyncWrite for Link {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io(|stream, state| {
            state.spoken = true;
            stream.poll_write(cx, buf)
        })
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io(|stream, _| stream.poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io(|stream, _| stream.poll_shutdown(cx))
    }
}

impl AsyncTokioStream for Link {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

fn tls_info(conn: &rustls::ClientConnection) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_owned(),
    };
    let cipher_suite = conn
        .negotiated_cipher_suite()
        .map(|s| s.suite().as_str().map(str::to_owned).unwrap_or_else(|| format!("{:?}", s.suite())))
        .unwrap_or_else(|| "unknown".to_owned());
    TlsInfo { version, cipher_suite }
}
