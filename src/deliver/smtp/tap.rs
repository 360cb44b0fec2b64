//! A TCP stream that remembers the first bytes the server sent, so the transcript can show
//! what lettre reads and throws away: the `220` greeting, and the TLS version and cipher
//! suite from the server's hello (which travels in the clear, even in TLS 1.3).
//!
//! Consumes nothing but the bytes passing through; produces [`TlsInfo`] and the greeting.
//! It never changes a byte, never records more than [`LIMIT`] bytes, and stops recording
//! once the TLS handshake is done. Parsing never panics on any input.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::deliver::receipt::TlsInfo;

/// At most this many bytes are kept: the greeting, EHLO reply and server hello fit easily.
const LIMIT: usize = 16 * 1024;

#[derive(Debug, Default)]
struct Log {
    bytes: Vec<u8>,
    /// Where the reply to STARTTLS (and then TLS) starts.
    tls_from: Option<usize>,
    stopped: bool,
}

/// The stream handed to lettre.
#[derive(Debug)]
pub(super) struct Tap {
    tcp: TcpStream,
    log: Arc<Mutex<Log>>,
}

/// What stays with us to read the log.
#[derive(Debug, Clone)]
pub(super) struct TapHandle(Arc<Mutex<Log>>);

pub(super) fn tap(tcp: TcpStream) -> (Tap, TapHandle) {
    let log = Arc::new(Mutex::new(Log::default()));
    (Tap { tcp, log: log.clone() }, TapHandle(log))
}

fn lock(log: &Mutex<Log>) -> MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl TapHandle {
    /// The server's first reply (its greeting), as `220 text`.
    pub(super) fn greeting(&self) -> Option<String> {
        first_reply(&lock(&self.0).bytes).map(|(text, _)| text)
    }

    /// Call right before sending STARTTLS.
    pub(super) fn mark_tls(&self) {
        let mut log = lock(&self.0);
        log.tls_from = Some(log.bytes.len());
    }

    /// The server hello after STARTTLS; stops recording.
    pub(super) fn finish_tls(&self) -> Option<TlsInfo> {
        let mut log = lock(&self.0);
        log.stopped = true;
        let after = log.bytes.get(log.tls_from?..)?;
        let (_, reply_end) = first_reply(after)?;
        server_hello(after.get(reply_end..)?)
    }

    pub(super) fn stop(&self) {
        lock(&self.0).stopped = true;
    }
}

impl AsyncRead for Tap {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let mut log = lock(&self.log);
            if !log.stopped {
                let new = &buf.filled()[before..];
                let room = LIMIT.saturating_sub(log.bytes.len());
                log.bytes.extend_from_slice(&new[..new.len().min(room)]);
            }
        }
        polled
    }
}

impl AsyncWrite for Tap {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Tap {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.peer_addr()
    }
}

/// The first complete SMTP reply in `bytes` as `code text…` (lines joined with spaces), and
/// the offset just after it.
fn first_reply(bytes: &[u8]) -> Option<(String, usize)> {
    let mut pos = 0;
    let mut code = None;
    let mut texts = Vec::new();
    loop {
        let rest = bytes.get(pos..)?;
        let len = rest.windows(2).position(|w| w == b"\r\n")?;
        let line = String::from_utf8_lossy(&rest[..len]);
        pos += len + 2;
        code.get_or_insert_with(|| line.chars().take(3).collect::<String>());
        texts.push(line.get(4..).unwrap_or("").to_owned());
        if line.as_bytes().get(3) != Some(&b'-') {
            let text = texts.join(" ");
            let code = code.unwrap_or_default();
            return Some((if text.is_empty() { code } else { format!("{code} {text}") }, pos));
        }
    }
}

/// Reads the version and cipher suite from a TLS ServerHello record at the start of `bytes`.
fn server_hello(bytes: &[u8]) -> Option<TlsInfo> {
    let u16_at = |b: &[u8], i: usize| Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]));
    // Record header: type 22 (handshake), version, length. Then handshake type 2 (ServerHello).
    if bytes.first() != Some(&22) || bytes.get(5) != Some(&2) {
        return None;
    }
    let hello = bytes.get(9..)?;
    let legacy_version = u16_at(hello, 0)?;
    let mut pos = 2 + 32; // version, random
    pos += 1 + usize::from(*hello.get(pos)?); // session id
    let suite = u16_at(hello, pos)?;
    pos += 2 + 1; // cipher suite, compression method
    let mut version = legacy_version;
    if let Some(ext_len) = u16_at(hello, pos) {
        let end = (pos + 2 + usize::from(ext_len)).min(hello.len());
        pos += 2;
        while pos + 4 <= end {
            let (kind, len) = (u16_at(hello, pos)?, usize::from(u16_at(hello, pos + 2)?));
            if kind == 0x002b && len == 2 {
                version = u16_at(hello, pos + 4)?; // supported_versions: the one chosen
            }
            pos += 4 + len;
        }
    }
    let version = match version {
        0x0304 => "TLSv1.3".to_owned(),
        0x0303 => "TLSv1.2".to_owned(),
        0x0302 => "TLSv1.1".to_owned(),
        0x0301 => "TLSv1.0".to_owned(),
        other => format!("0x{other:04x}"),
    };
    let cipher = rustls::CipherSuite::from(suite);
    let cipher_suite = cipher.as_str().map(str::to_owned).unwrap_or_else(|| format!("0x{suite:04x}"));
    Some(TlsInfo { version, cipher_suite })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ServerHello record with the given legacy version, suite and extensions.
    fn hello(legacy: u16, suite: u16, exts: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend(legacy.to_be_bytes());
        body.extend([7u8; 32]);
        body.push(32);
        body.extend([9u8; 32]);
        body.extend(suite.to_be_bytes());
        body.push(0);
        body.extend((exts.len() as u16).to_be_bytes());
        body.extend(exts);
        let mut hs = vec![2, 0, 0, 0];
        hs[1..4].copy_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend(body);
        let mut rec = vec![22, 3, 3];
        rec.extend((hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    #[test]
    fn tls13_from_supported_versions() {
        // key_share (empty for the test) then supported_versions = 0x0304
        let exts = [0x00, 0x33, 0x00, 0x00, 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04];
        let info = server_hello(&hello(0x0303, 0x1302, &exts)).unwrap();
        assert_eq!(info, TlsInfo { version: "TLSv1.3".into(), cipher_suite: "TLS13_AES_256_GCM_SHA384".into() });
    }

    #[test]
    fn tls12_from_legacy_version() {
        let info = server_hello(&hello(0x0303, 0xc02f, &[])).unwrap();
        assert_eq!(info.version, "TLSv1.2");
        assert_eq!(info.cipher_suite, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
    }

    #[test]
    fn garbage_is_not_a_hello() {
        assert_eq!(server_hello(b"220 hello\r\n"), None);
        assert_eq!(server_hello(&[22, 3, 3, 0, 4, 2, 0]), None);
        assert_eq!(server_hello(&[]), None);
        let full = hello(0x0303, 0x1301, &[0x00, 0x2b, 0x00, 0x02, 0x03, 0x04]);
        for cut in 0..full.len() {
            let _ = server_hello(&full[..cut]); // never panics on a truncated hello
        }
    }

    #[test]
    fn replies_single_and_multi_line() {
        assert_eq!(first_reply(b"220 mx ESMTP ready\r\nrest"), Some(("220 mx ESMTP ready".into(), 20)));
        assert_eq!(
            first_reply(b"220-mx.contoso.com Microsoft ESMTP\r\n220 ready\r\n").map(|r| r.0),
            Some("220 mx.contoso.com Microsoft ESMTP ready".into())
        );
        assert_eq!(first_reply(b"220 no end"), None);
        assert_eq!(first_reply(b"220\r\n").map(|r| r.0), Some("220".into()));
    }
}
