//! The preview's HTTP policy, as axum middleware and helpers: who may ask (`Host` must name
//! this server, so a page elsewhere cannot reach it through DNS rebinding; a POST must come
//! from this server's own page when the browser says where it comes from), how large a body
//! may be and how long it may take to arrive, the headers every answer carries, and the
//! `{error}` JSON every refusal is.
//!
//! Consumes requests before the routes see them; produces either the request with its body
//! read into memory (at most [`MAX_UPLOAD`] for an uploaded header file, [`MAX_BODY`] for
//! anything else; a larger declared length is refused before a byte of the body is read) or
//! a refusal: 403, 408, 413 or 400, each closing the connection.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The largest request head (request line and headers) read.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// The largest request body read but for uploads (a `send` request is a few hundred bytes).
pub(crate) const MAX_BODY: usize = 64 * 1024;
/// The largest uploaded header file: intake's own limit, so nothing larger is even read.
pub(crate) const MAX_UPLOAD: usize = crate::intake::MAX_FILE_BYTES;

const JSON: &str = "application/json; charset=utf-8";

/// `value` as a JSON answer with `status`.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    (status, [(CONTENT_TYPE, JSON)], value.to_string()).into_response()
}

/// `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, [(CONTENT_TYPE, JSON)], error_body(message)).into_response()
}

/// The body of an error answer.
pub(crate) fn error_body(message: impl Into<String>) -> String {
    serde_json::json!({ "error": message.into() }).to_string()
}

/// The same answer, and the connection closed after it (the client is refused or has sent
/// something that cannot be followed by another request).
pub fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// What a client that sent no complete request in time is told.
pub(crate) fn too_slow(timeout: Duration) -> String {
    format!("no complete request within {timeout:?}")
}

/// Refuses a request whose `Host` or `Origin` is not this server (see [`check_origin`]).
pub(crate) async fn guard(State(addr): State<SocketAddr>, request: Request, next: Next) -> Response {
    match check_origin(request.method(), request.headers(), addr) {
        Ok(()) => next.run(request).await,
        Err(message) => closing(error(StatusCode::FORBIDDEN, message)),
    }
}

/// `Host` must name this server (by a loopback name when it listens on loopback); a POST
/// must come from this server's page when the browser says where it comes from.
fn check_origin(method: &Method, headers: &HeaderMap, addr: SocketAddr) -> Result<(), String> {
    let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let host = text(HOST).unwrap_or_default();
    if addr.ip().is_loopback() {
        let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
        if !matches!(name, "localhost" | "[::1]") && !name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback()) {
            return Err(format!("host `{host}`: the preview answers only to a loopback name"));
        }
    }
    if method == Method::POST
        && let Some(origin) = headers.get(ORIGIN)
    {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        if origin != format!("http://{host}") {
            return Err(format!("origin `{origin}`: not this preview's page"));
        }
    }
    Ok(())
}

/// The largest body accepted for a path: an upload is a header file, anything else small.
fn body_limit(path: &str) -> usize {
    if path == "/api/upload" { MAX_UPLOAD } else { MAX_BODY }
}

/// Reads the body into memory within its limit and `timeout`, so routes get it whole; a
/// declared length over the limit is refused at once, unread.
pub(crate) async fn bounded_body(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    let limit = body_limit(request.uri().path());
    let declared = request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(length) = declared
        && length > limit as u64
    {
        let message = format!("request too large: body of {length} bytes (at most {limit})");
        return closing(error(StatusCode::PAYLOAD_TOO_LARGE, message));
    }
    let (parts, body) = request.into_parts();
    let bytes: Bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => return closing(unreadable(&e, limit)),
        Err(_) => return closing(error(StatusCode::REQUEST_TIMEOUT, too_slow(timeout))),
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// The answer for a body that could not be read: over the limit (sent without a length), or
/// broken off.
fn unreadable(e: &axum::Error, limit: usize) -> Response {
    let over = std::iter::successors(std::error::Error::source(e), |cause| cause.source())
        .any(|cause| cause.is::<http_body_util::LengthLimitError>());
    if over {
        error(StatusCode::PAYLOAD_TOO_LARGE, format!("request too large: body over {limit} bytes"))
    } else {
        error(StatusCode::BAD_REQUEST, format!("cannot read the request: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            headers.insert(ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        headers
    }

    #[test]
    fn only_loopback_hosts_and_own_origins_pass() {
        let addr: SocketAddr = "127.0.0.1:8025".parse().unwrap();
        assert_eq!(check_origin(&Method::GET, &headers("127.0.0.1:8025", None), addr), Ok(()));
        assert_eq!(check_origin(&Method::GET, &headers("localhost:8025", None), addr), Ok(()));
        assert_eq!(
            check_origin(&Method::GET, &headers("evil.example:8025", None), addr),
            Err("host `evil.example:8025`: the preview answers only to a loopback name".into())
        );
        let own = headers("127.0.0.1:8025", Some("http://127.0.0.1:8025"));
        assert_eq!(check_origin(&Method::POST, &own, addr), Ok(()));
        assert_eq!(
            check_origin(&Method::POST, &headers("127.0.0.1:8025", Some("http://evil.example")), addr),
            Err("origin `http://evil.example`: not this preview's page".into())
        );
    }

    #[tokio::test]
    async fn a_body_over_the_limit_without_a_declared_length_is_too_large() {
        let e = axum::body::to_bytes(Body::from(vec![b'x'; 11]), 10).await.unwrap_err();
        let response = unreadable(&e, 10);
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body = axum::body::to_bytes(response.into_body(), 1000).await.unwrap();
        assert_eq!(body, r#"{"error":"request too large: body over 10 bytes"}"#);
    }

    #[test]
    fn uploads_may_be_larger_than_other_bodies() {
        assert_eq!(body_limit("/api/upload"), crate::intake::MAX_FILE_BYTES);
        assert_eq!(body_limit("/api/send"), 64 * 1024);
    }
}
