//! `/metrics` (Prometheus text format 0.0.4) and `/healthz` of the running relay, on the
//! configured `[server] listen` address (loopback by intent).
//!
//! Consumes each pass's [`PassReport`] and the journal's live count of open items; produces the
//! counters and an HTTP/1.1 answer per connection (GET only, one request, then close).
//! Never exposes file names, addresses or any content of a notification; never blocks the
//! relay (a slow client holds only its own task). Errors of a connection are logged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::PassReport;

/// Counters since start.
#[derive(Debug, Default)]
pub struct Metrics {
    delivered: AtomicU64,
    skipped: AtomicU64,
    parked: AtomicU64,
    deferred: AtomicU64,
    resent: AtomicU64,
    errors: AtomicU64,
    passes: AtomicU64,
    open_items: AtomicU64,
    held_items: AtomicU64,
    last_pass_unix: AtomicU64,
}

impl Metrics {
    /// Adds one pass.
    pub fn record_pass(&self, r: &PassReport, now_unix: u64) {
        let add = |c: &AtomicU64, n: usize| c.fetch_add(n as u64, Ordering::Relaxed);
        add(&self.delivered, r.delivered);
        add(&self.skipped, r.skipped);
        add(&self.parked, r.parked);
        add(&self.deferred, r.deferred);
        add(&self.resent, r.resent);
        add(&self.errors, r.errors);
        self.passes.fetch_add(1, Ordering::Relaxed);
        self.last_pass_unix.store(now_unix, Ordering::Relaxed);
    }

    /// The items claimed and not finished, as the journal has them now (kept current by
    /// every journal record, not only at the end of a pass).
    pub fn set_open_items(&self, n: usize) {
        self.open_items.store(n as u64, Ordering::Relaxed);
    }

    /// The missed calls `[digest]` holds back now (after the last pass).
    pub fn set_held_items(&self, n: usize) {
        self.held_items.store(n as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::from(
            "# HELP callnote_relay_items_total Items finished by the relay, by outcome.\n\
             # TYPE callnote_relay_items_total counter\n",
        );
        for (outcome, c) in
            [("delivered", &self.delivered), ("skipped", &self.skipped), ("parked", &self.parked), ("deferred", &self.deferred)]
        {
            out += &format!("callnote_relay_items_total{{outcome=\"{outcome}\"}} {}\n", get(c));
        }
        let one = |out: &mut String, name: &str, kind: &str, help: &str, value: u64| {
            *out += &format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
        };
        one(
            &mut out,
            "callnote_relay_resent_total",
            "counter",
            "Items sent again after a crash interrupted their attempt.",
            get(&self.resent),
        );
        one(&mut out, "callnote_relay_spool_errors_total", "counter", "Items that hit a spool (file-system) error.", get(&self.errors));
        one(&mut out, "callnote_relay_passes_total", "counter", "Passes over the spool.", get(&self.passes));
        one(
            &mut out,
            "callnote_relay_open_items",
            "gauge",
            "Items claimed and not finished (in flight or deferred).",
            get(&self.open_items),
        );
        one(
            &mut out,
            "callnote_relay_held_items",
            "gauge",
            "Missed calls held back for a digest or a voicemail that may replace them ([digest]).",
            get(&self.held_items),
        );
        one(
            &mut out,
            "callnote_relay_last_pass_timestamp_seconds",
            "gauge",
            "When the last pass ended (Unix time).",
            get(&self.last_pass_unix),
        );
        out
    }
}

/// Answers `/metrics` and `/healthz` on `listener` until the runtime ends.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, &metrics).await {
                        tracing::debug!(%peer, error = %e, "metrics connection failed");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a metrics connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Binds the metrics address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

async fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    let read = async {
        while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < buf.len() {
            let n = stream.read(&mut buf[len..]).await?;
            if n == 0 {
                break;
            }
            len += n;
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), read).await.map_err(std::io::Error::other)??;
    let request = String::from_utf8_lossy(&buf[..len]);
    let mut words = request.split_whitespace();
    let (status, content_type, body) = match (words.next(), words.next()) {
        (Some("GET"), Some("/metrics")) => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.render()),
        (Some("GET"), Some("/healthz")) => ("200 OK", "text/plain; charset=utf-8", "ok\n".to_owned()),
        (Some("GET"), Some(_)) => ("404 Not Found", "text/plain; charset=utf-8", "not found\n".to_owned()),
        _ => ("405 Method Not Allowed", "text/plain; charset=utf-8", "only GET\n".to_owned()),
    };
    let head = format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_in_prometheus_text_format() {
        let m = Metrics::default();
        let report = PassReport { delivered: 3, parked: 1, resent: 1, ..PassReport::default() };
        m.set_open_items(2);
        m.record_pass(&report, 1_800_000_000);
        m.set_open_items(0);
        m.record_pass(&PassReport { delivered: 1, ..PassReport::default() }, 1_800_000_005);
        let text = m.render();
        assert!(text.contains("callnote_relay_items_total{outcome=\"delivered\"} 4\n"), "{text}");
        assert!(text.contains("callnote_relay_items_total{outcome=\"parked\"} 1\n"), "{text}");
        assert!(text.contains("# TYPE callnote_relay_open_items gauge\ncallnote_relay_open_items 0\n"), "{text}");
        assert!(text.contains("callnote_relay_passes_total 2\n"), "{text}");
        assert!(text.contains("callnote_relay_last_pass_timestamp_seconds 1800000005\n"), "{text}");
        assert!(text.lines().all(|l| l.starts_with('#') || l.split(' ').count() == 2), "{text}");
    }

    async fn get(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn answers_metrics_healthz_and_refuses_the_rest() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        tokio::spawn(serve(listener, metrics));
        let health = get(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(
            health,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
        );
        let metrics = get(addr, "GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(metrics.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4"), "{metrics}");
        assert!(metrics.contains("callnote_relay_passes_total 0\n"));
        assert!(get(addr, "GET /nope HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(get(addr, "POST /metrics HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
    }
}
