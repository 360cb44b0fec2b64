//! The preview's connections: accepts them on the bound socket and serves each with hyper's
//! HTTP/1.1 (keep-alive included) and the routes of [`super::routes`], held to [`Limits`].
//!
//! - At most `max_connections` at once: a permit is taken before accepting, so clients over
//!   the cap wait in the listen backlog and cost no file descriptor of ours.
//! - A request head must arrive within `request_timeout` (on a new connection, and between
//!   requests on a kept one). A client that sent nothing, or part of a head, is answered
//!   408 with the reason and closed; an idle kept connection is just closed.
//! - Each write must be taken within `write_timeout`; a client that stops reading is closed.
//!
//! No errors: a connection that fails is logged at debug level and dropped; one that cannot
//! be accepted is logged and retried after a pause.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service as _, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_io_timeout::TimeoutStream;

use super::http::{MAX_HEAD, error_body, too_slow};
use super::{Limits, Preview};

/// Accepts connections until the task is dropped, at most `max_connections` at once.
pub(super) async fn accept_loop(listener: TcpListener, preview: Arc<Preview>, addr: SocketAddr) {
    let limits = preview.settings().limits.clone();
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let router = super::routes::router(preview, addr);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.request_timeout).max_buf_size(MAX_HEAD);
    loop {
        // Taken before accepting: at the cap, new clients wait in the backlog instead of
        // costing a file descriptor each. The semaphore is never closed.
        let Ok(permit) = connections.clone().acquire_owned().await else { return };
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream, router.clone(), http.clone(), limits.clone(), permit));
            }
            Err(e) => {
                tracing::warn!("preview: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one connection until it ends; holds its connection `permit` throughout.
async fn serve(stream: TcpStream, router: Router, http: http1::Builder, limits: Limits, permit: OwnedSemaphorePermit) {
    let _permit = permit;
    let mut io = TimeoutStream::new(stream);
    io.set_write_timeout(Some(limits.write_timeout));
    // Whether a request got as far as the routes: a connection that times out after that
    // is an idle kept one, closed without a word.
    let served = Arc::new(AtomicBool::new(false));
    let service = {
        let (served, routes) = (served.clone(), TowerToHyperService::new(router));
        service_fn(move |request: hyper::Request<Incoming>| {
            served.store(true, Ordering::Relaxed);
            routes.call(request)
        })
    };
    let mut connection = http.serve_connection(TokioIo::new(Box::pin(io)), service);
    match Pin::new(&mut connection).await {
        Ok(()) => {}
        Err(e) if e.is_timeout() => {
            let parts = connection.into_parts();
            if !served.load(Ordering::Relaxed) || !parts.read_buf.is_empty() {
                let mut io = parts.io.into_inner();
                let answer = timeout_answer(limits.request_timeout);
                let _ = tokio::time::timeout(limits.write_timeout, io.write_all(answer.as_bytes())).await;
                let _ = tokio::time::timeout(limits.write_timeout, io.shutdown()).await;
            }
        }
        Err(e) => tracing::debug!("preview: connection ended: {e}"),
    }
}

/// The 408 for a client that sent no complete request head in time. Written on the socket
/// taken back from hyper, which closes such a connection without an answer.
fn timeout_answer(timeout: Duration) -> String {
    let body = error_body(too_slow(timeout));
    format!(
        "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\r\n{body}",
        body.len()
    )
}
