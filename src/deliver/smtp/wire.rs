//! The connection below lettre: TCP with `TCP_NODELAY`, TLS done here (tokio-rustls), and
//! the few SMTP exchanges that happen before lettre takes over (greeting, EHLO, STARTTLS).
//!
//! Why not let lettre connect: it sets no `TCP_NODELAY` (each message then waits ~40 ms
//! for a delayed ACK before its terminating dot leaves), it throws the greeting away, and
//! it does not say which TLS version was negotiated. So a [`Dialogue`] reads the greeting,
//! upgrades with STARTTLS when asked, and becomes a [`Wire`] that replays the greeting to
//! lettre's `connect_with_transport`, which then sends EHLO over the final (TLS) stream.
//!
//! Any plaintext the server sent after its reply to STARTTLS is discarded, never replayed
//! inside TLS (the STARTTLS command-injection class of bugs). Parsing never panics.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lettre::transport::smtp::client::AsyncTokioStream;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::deliver::error::Reply;
use crate::deliver::receipt::TlsInfo;

/// The longest reply we read before lettre takes over.
const MAX_REPLY: usize = 64 * 1024;

/// TCP, or TLS over TCP.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// What went wrong before lettre took over.
#[derive(Debug)]
pub(super) enum WireError {
    Io(io::Error),
    /// The bytes are not an SMTP reply.
    NotSmtp(String),
}

/// The SMTP exchanges before lettre: reads whole replies, sends command lines.
#[derive(Debug)]
pub(super) struct Dialogue {
    stream: Stream,
    peer: SocketAddr,
    /// Bytes read and not yet consumed by a reply.
    buf: Vec<u8>,
    /// The greeting's bytes, replayed to lettre.
    greeting: Vec<u8>,
}

impl Dialogue {
    pub fn new(tcp: TcpStream, peer: SocketAddr) -> Dialogue {
        Dialogue { stream: Stream::Plain(tcp), peer, buf: Vec::new(), greeting: Vec::new() }
    }

    /// Reads one complete reply (all its lines).
    pub async fn read_reply(&mut self) -> Result<(Reply, Vec<String>), WireError> {
        self.read_raw_reply().await.map(|(reply, lines, _)| (reply, lines))
    }

    /// Reads the greeting and keeps its bytes for lettre.
    pub async fn read_greeting(&mut self) -> Result<(Reply, Vec<String>), WireError> {
        let (reply, lines, raw) = self.read_raw_reply().await?;
        self.greeting = raw;
        Ok((reply, lines))
    }

    async fn read_raw_reply(&mut self) -> Result<(Reply, Vec<String>, Vec<u8>), WireError> {
        loop {
            match parse_reply(&self.buf) {
                Ok(Some((reply, lines, end))) => return Ok((reply, lines, self.buf.drain(..end).collect())),
                Ok(None) if self.buf.len() > MAX_REPLY => {
                    return Err(WireError::NotSmtp(format!("a reply longer than {MAX_REPLY} bytes")));
                }
                Ok(None) => {}
                Err(line) => return Err(WireError::NotSmtp(format!("`{line}` is not an SMTP reply"))),
            }
            let mut chunk = [0u8; 4096];
            let n = match &mut self.stream {
                Stream::Plain(s) => s.read(&mut chunk).await,
                Stream::Tls(s) => s.read(&mut chunk).await,
            }
            .map_err(WireError::Io)?;
            if n == 0 {
                return Err(WireError::Io(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection")));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn send(&mut self, line: &str) -> io::Result<()> {
        let bytes = line.as_bytes();
        match &mut self.stream {
            Stream::Plain(s) => s.write_all(bytes).await,
            Stream::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    /// The TLS handshake, as the first bytes (`smtps://`) or after STARTTLS's `220`.
    /// Plaintext read beyond the last reply is dropped.
    pub async fn start_tls(self, config: Arc<rustls::ClientConfig>, name: ServerName<'static>) -> io::Result<(Dialogue, TlsInfo)> {
        let Stream::Plain(tcp) = self.stream else {
            return Err(io::Error::other("TLS is on already"));
        };
        let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await?;
        let info = tls_info(tls.get_ref().1);
        Ok((Dialogue { stream: Stream::Tls(Box::new(tls)), peer: self.peer, buf: Vec::new(), greeting: self.greeting }, info))
    }

    /// Hands the connection to lettre: the greeting is read again from the start.
    pub fn into_wire(self) -> Wire {
        let mut prefix = self.greeting;
        prefix.extend_from_slice(&self.buf);
        Wire { prefix, pos: 0, stream: self.stream, peer: self.peer }
    }
}

/// The stream lettre reads and writes: the replayed greeting first, then the connection.
#[derive(Debug)]
pub(super) struct Wire {
    prefix: Vec<u8>,
    pos: usize,
    stream: Stream,
    peer: SocketAddr,
}

impl AsyncRead for Wire {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pos < this.prefix.len() {
            let n = buf.remaining().min(this.prefix.len() - this.pos);
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            return Poll::Ready(Ok(()));
        }
        match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Wire {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl AsyncTokioStream for Wire {
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

/// The first complete reply in `bytes`: the reply, its lines' texts, and the offset after it.
/// `Ok(None)` when more bytes are needed; `Err(line)` when a line is not an SMTP reply line.
fn parse_reply(bytes: &[u8]) -> Result<Option<(Reply, Vec<String>, usize)>, String> {
    let mut pos = 0;
    let mut code = None;
    let mut lines = Vec::new();
    loop {
        let Some(rest) = bytes.get(pos..) else { return Ok(None) };
        let Some(len) = rest.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
        let line = String::from_utf8_lossy(&rest[..len]).into_owned();
        pos += len + 2;
        let this_code = line.get(..3).filter(|c| c.bytes().all(|b| b.is_ascii_digit())).and_then(|c| c.parse::<u16>().ok());
        let separator = line.as_bytes().get(3).copied();
        let (Some(this_code), None | Some(b' ' | b'-')) = (this_code, separator) else { return Err(line) };
        if *code.get_or_insert(this_code) != this_code {
            return Err(line);
        }
        lines.push(line.get(4..).unwrap_or("").to_owned());
        if separator != Some(b'-') {
            let reply = Reply { code: this_code, text: lines.join(" ") };
            return Ok(Some((reply, lines, pos)));
        }
    }
}

/// True when an EHLO reply offers STARTTLS.
pub(super) fn offers_starttls(ehlo_lines: &[String]) -> bool {
    ehlo_lines.iter().skip(1).any(|l| l.split_whitespace().next().is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multi_line_replies() {
        let (reply, lines, end) = parse_reply(b"220 mx ESMTP ready\r\nrest").unwrap().unwrap();
        assert_eq!((reply.to_string(), lines, end), ("220 mx ESMTP ready".to_owned(), vec!["mx ESMTP ready".to_owned()], 20));
        let (reply, lines, _) = parse_reply(b"250-mx.contoso.com Hello\r\n250-SIZE 37748736\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(reply.code, 250);
        assert_eq!(reply.text, "mx.contoso.com Hello SIZE 37748736 STARTTLS 8BITMIME");
        assert!(offers_starttls(&lines));
        assert!(!offers_starttls(&["STARTTLS".to_owned(), "8BITMIME".to_owned()]), "the first line is the server name");
        assert_eq!(parse_reply(b"220\r\n").unwrap().unwrap().0.to_string(), "220");
    }

    #[test]
    fn incomplete_and_garbage() {
        assert_eq!(parse_reply(b"220 no end").unwrap(), None);
        assert_eq!(parse_reply(b"250-first\r\n").unwrap(), None);
        assert_eq!(parse_reply(b"HTTP/1.1 400 Bad Request\r\n").unwrap_err(), "HTTP/1.1 400 Bad Request");
        assert_eq!(parse_reply(b"250-a\r\n251 b\r\n").unwrap_err(), "251 b");
        assert_eq!(parse_reply(b"22").unwrap(), None);
        assert!(parse_reply(&[0xff, 0xfe, b'\r', b'\n']).is_err());
    }
}
