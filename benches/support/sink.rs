//! An SMTP sink for the relay benchmark: accepts every message on loopback and discards
//! it, like Postfix's `smtp-sink`, so the figures measure callnote rather than the test
//! server (the Python aiosmtpd of the tests tops out near 550 messages/s).
//!
//! It speaks enough ESMTP for a real client (EHLO with PIPELINING, 8BITMIME and SIZE; MAIL,
//! RCPT, DATA with the end-of-data line, RSET, NOOP, QUIT), answers DATA with
//! `250 2.0.0 Ok: queued as <n>`, and keeps a fingerprint of the accepted `Message-ID`s (their
//! count and the wrapping sum of their hashes: no memory per message) so the bench can check
//! that every item arrived exactly once. While [`Received::track`] is on, it also notes when
//! each Message-ID arrived (for latencies measured at the sink, e.g. through Postfix).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the sink has accepted so far.
pub struct Received {
    messages: AtomicUsize,
    hasher: RandomState,
    /// Message-IDs seen and the wrapping sum of their hashes.
    ids: Mutex<(usize, u64)>,
    /// When each Message-ID arrived, while tracking.
    arrivals: Mutex<Option<HashMap<String, Instant>>>,
}

impl Received {
    /// Messages accepted.
    pub fn count(&self) -> usize {
        self.messages.load(Ordering::SeqCst)
    }

    /// (Message-IDs seen, wrapping sum of their hashes under the hasher given to [`start`]).
    pub fn fingerprint(&self) -> (usize, u64) {
        *self.ids.lock().unwrap()
    }

    /// Starts noting when each Message-ID arrives (forgetting earlier notes).
    pub fn track(&self) {
        *self.arrivals.lock().unwrap() = Some(HashMap::new());
    }

    /// Stops noting arrivals and returns the notes.
    pub fn arrivals(&self) -> HashMap<String, Instant> {
        self.arrivals.lock().unwrap().take().unwrap_or_default()
    }
}

/// Binds 127.0.0.1 on a free port and serves until the runtime ends; Message-IDs are hashed
/// with `hasher`.
pub async fn start(hasher: RandomState) -> (SocketAddr, Arc<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the sink");
    let addr = listener.local_addr().expect("the sink's address");
    let received = Arc::new(Received { messages: AtomicUsize::new(0), hasher, ids: Mutex::new((0, 0)), arrivals: Mutex::new(None) });
    let shared = received.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            tokio::spawn(session(socket, shared.clone()));
        }
    });
    (addr, received)
}

async fn session(socket: tokio::net::TcpStream, received: Arc<Received>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP bench sink\r\n").await?;
    let mut line = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).map(|v| v.to_ascii_uppercase()).unwrap_or_default();
        let reply: &[u8] = match verb.as_slice() {
            b"EHLO" => b"250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n",
            b"HELO" => b"250 sink.test\r\n",
            b"MAIL" | b"RCPT" | b"RSET" | b"NOOP" => b"250 2.0.0 Ok\r\n",
            b"QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            b"DATA" => {
                write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let mut message_id = None;
                let mut in_headers = true;
                loop {
                    line.clear();
                    if lines.read_until(b'\n', &mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                    if in_headers {
                        if line == b"\r\n" || line == b"\n" {
                            in_headers = false;
                        } else if line.len() > 11 && line[..11].eq_ignore_ascii_case(b"message-id:") {
                            message_id = Some(String::from_utf8_lossy(&line[11..]).trim().to_owned());
                        }
                    }
                }
                let n = received.messages.fetch_add(1, Ordering::SeqCst) + 1;
                if let Some(id) = message_id {
                    if let Some(arrivals) = received.arrivals.lock().unwrap().as_mut() {
                        arrivals.insert(id.clone(), Instant::now());
                    }
                    let hash = received.hasher.hash_one(id.as_str());
                    let mut ids = received.ids.lock().unwrap();
                    *ids = (ids.0 + 1, ids.1.wrapping_add(hash));
                }
                write.write_all(format!("250 2.0.0 Ok: queued as S{n}\r\n").as_bytes()).await?;
                continue;
            }
            _ => b"502 5.5.2 Command not recognized\r\n",
        };
        write.write_all(reply).await?;
    }
}
