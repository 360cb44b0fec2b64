//! The preview's routes. Every response but the HTML part is the embedded page or JSON; the
//! HTML part is served alone with a CSP that forbids scripts and sandboxes it. Requests must
//! name this server in `Host` (a page on another site cannot reach it through DNS
//! rebinding) and a POST must carry JSON or come from this server's own page (`Origin`).
//!
//! | route | answer |
//! |---|---|
//! | `GET /`, `/app.js`, `/style.css` | the embedded page |
//! | `GET /api/items` | `{generation, items: [{id, label, group}]}` |
//! | `GET /api/item?id=ID` | the view of one item (see [`Preview::view`]) |
//! | `GET /api/problems` | `{problems: [...]}` of the template folder |
//! | `GET /html?id=ID` | the item's HTML part |
//! | `GET /events` | server-sent events: `event: change` with the generation |
//! | `POST /api/upload?name=FILE` | body: a header file; `{id}` |
//! | `POST /api/send` | body `{id, to}`; `{transcript, accepted, transport}` |
//!
//! Never serves a file from disk; errors are answered as `{error}` JSON with a status.
//!
//! Connections are held to [`Limits`]: a permit per connection (taken before accepting, so
//! waiting clients stay in the listen backlog), a permit per live-update stream (none left:
//! 503 with `Retry-After`), a deadline for the request and for each write, a lifetime per
//! stream. Work that reads files, parses or renders runs through [`off_runtime`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::http::{self, Request, Response};
use super::state::{busy, off_runtime};
use super::{Limits, Preview};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The page's own policy: its script and style only, no outside requests, frames from here.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";
/// The HTML part's policy: inline styles and data: images only, no scripts, sandboxed.
const PART_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; base-uri 'none'; form-action 'none'";

/// Every connection's shared view of the caps.
struct Gates {
    limits: Limits,
    streams: Arc<Semaphore>,
}

/// Accepts connections until the task is dropped, at most `max_connections` at once.
pub(super) async fn accept_loop(listener: TcpListener, preview: Arc<Preview>, addr: SocketAddr) {
    let limits = preview.settings().limits.clone();
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let gates = Arc::new(Gates { streams: Arc::new(Semaphore::new(limits.max_streams)), limits });
    loop {
        // Taken before accepting: at the cap, new clients wait in the backlog instead of
        // costing a file descriptor each. The semaphore is never closed.
        let Ok(permit) = connections.clone().acquire_owned().await else { return };
        match listener.accept().await {
            Ok((stream, _)) => {
                let (preview, gates) = (preview.clone(), gates.clone());
                tokio::spawn(async move {
                    handle(stream, preview, addr, &gates).await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!("preview: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The largest body accepted for a path: an upload is a header file, anything else small.
fn body_limit(path: &str) -> usize {
    if path == "/api/upload" { http::MAX_UPLOAD } else { http::MAX_BODY }
}

async fn handle(mut stream: TcpStream, preview: Arc<Preview>, addr: SocketAddr, gates: &Gates) {
    let limits = &gates.limits;
    let reading = http::read_request(&mut stream, body_limit);
    let request = match tokio::time::timeout(limits.request_timeout, reading).await {
        Ok(Ok(request)) => request,
        Ok(Err(e)) => return send(&mut stream, Response::error(e.status(), e.to_string()), limits).await,
        Err(_) => {
            let message = format!("no complete request within {:?}", limits.request_timeout);
            return send(&mut stream, Response::error(408, message), limits).await;
        }
    };
    if let Err(message) = check_origin(&request, addr) {
        return send(&mut stream, Response::error(403, message), limits).await;
    }
    if request.method == "GET" && request.path == "/events" {
        let Ok(permit) = gates.streams.clone().try_acquire_owned() else {
            let message = format!("{} pages are following changes already; close some and reload", limits.max_streams);
            let response = Response::error(503, message).with_header("Retry-After", "5");
            return send(&mut stream, response, limits).await;
        };
        let _ = tokio::time::timeout(limits.stream_lifetime, events(&mut stream, &preview, limits, permit)).await;
        return;
    }
    let response = route(request, preview).await;
    send(&mut stream, response, limits).await;
}

/// Writes a response, giving up on a client that does not take it in time.
async fn send(stream: &mut TcpStream, response: Response, limits: &Limits) {
    let _ = tokio::time::timeout(limits.write_timeout, response.write_to(stream)).await;
}

async fn route(request: Request, preview: Arc<Preview>) -> Response {
    let id = request.param("id").unwrap_or_default().to_owned();
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/") => {
            Response::new(200, "text/html; charset=utf-8", INDEX_HTML).with_header("Content-Security-Policy", PAGE_CSP)
        }
        ("GET", "/app.js") => Response::new(200, "text/javascript; charset=utf-8", APP_JS),
        ("GET", "/style.css") => Response::new(200, "text/css; charset=utf-8", STYLE_CSS),
        ("GET", "/api/items") => Response::json(200, &preview.items_json()),
        ("GET", "/api/problems") => {
            let problems: Vec<_> = preview.problems().iter().map(super::items::problem_json).collect();
            Response::json(200, &json!({ "problems": problems }))
        }
        ("GET", "/api/item") => {
            let view = {
                let id = id.clone();
                off_runtime(move || preview.view(&id)).await
            };
            match view {
                Some(Some(view)) => Response::json(200, &view),
                Some(None) => Response::error(404, format!("no item `{id}`")),
                None => failed(),
            }
        }
        ("GET", "/html") => {
            let html = {
                let id = id.clone();
                off_runtime(move || preview.html(&id)).await
            };
            match html {
                Some(Some(html)) => Response::new(200, "text/html; charset=utf-8", html)
                    .with_header("Content-Security-Policy", PART_CSP),
                Some(None) => Response::new(404, "text/plain; charset=utf-8", format!("no rendering of `{id}`"))
                    .with_header("Content-Security-Policy", PART_CSP),
                None => failed(),
            }
        }
        ("POST", "/api/upload") => {
            let name = request.param("name").unwrap_or("upload.txt").to_owned();
            let body = request.body;
            match off_runtime(move || preview.upload(&name, &body)).await {
                Some(Ok(id)) => Response::json(200, &json!({ "id": id })),
                Some(Err(message)) => Response::error(422, message),
                None => failed(),
            }
        }
        ("POST", "/api/send") => {
            let body: serde_json::Value = match serde_json::from_slice(&request.body) {
                Ok(v) => v,
                Err(e) => return Response::error(400, format!("send: body is not JSON: {e}")),
            };
            let (Some(id), Some(to)) = (body["id"].as_str(), body["to"].as_str()) else {
                return Response::error(400, "send: the body needs `id` and `to`");
            };
            match preview.send(id, to).await {
                Ok(result) => Response::json(200, &result),
                Err((status, message)) => Response::error(status, message),
            }
        }
        (
            _,
            "/" | "/app.js" | "/style.css" | "/api/items" | "/api/problems" | "/api/item" | "/html" | "/api/upload"
            | "/api/send",
        ) => Response::error(405, format!("{} {}: method not allowed", request.method, request.path)),
        _ => Response::error(404, format!("no page `{}`", request.path)),
    }
}

fn failed() -> Response {
    let (status, message) = busy();
    Response::error(status, message)
}

/// `Host` must name this server (by a loopback name when it listens on loopback); a POST
/// must come from this server's page when the browser says where it comes from.
fn check_origin(request: &Request, addr: SocketAddr) -> Result<(), String> {
    let host = request.header("host").unwrap_or_default();
    if addr.ip().is_loopback() {
        let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
        if !matches!(name, "localhost" | "[::1]")
            && !name.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        {
            return Err(format!("host `{host}`: the preview answers only to a loopback name"));
        }
    }
    if request.method == "POST"
        && let Some(origin) = request.header("origin")
        && origin != format!("http://{host}")
    {
        return Err(format!("origin `{origin}`: not this preview's page"));
    }
    Ok(())
}

/// Streams `event: change` with the generation now and at every change, with a comment
/// every 15 s to keep the connection open, until the page goes away, a write is not taken
/// in time, or the caller's lifetime for the stream ends. Holds a stream `permit` throughout.
async fn events(stream: &mut TcpStream, preview: &Preview, limits: &Limits, permit: OwnedSemaphorePermit) {
    let _permit = permit;
    let mut changes = preview.subscribe();
    // `retry`: how soon the page reconnects when the stream ends (its lifetime, a restart).
    if !write(stream, format!("{}retry: 2000\n\n", http::sse_head()).as_bytes(), limits).await {
        return;
    }
    loop {
        let generation = *changes.borrow_and_update();
        if !write(stream, format!("event: change\ndata: {generation}\n\n").as_bytes(), limits).await {
            return;
        }
        loop {
            match tokio::time::timeout(Duration::from_secs(15), changes.changed()).await {
                Ok(Ok(())) => break,
                Ok(Err(_)) => return,
                Err(_) => {
                    if !write(stream, b": keep-alive\n\n", limits).await {
                        return;
                    }
                }
            }
        }
    }
}

/// Writes all of `bytes` in time; false when the client is gone or does not read.
async fn write(stream: &mut TcpStream, bytes: &[u8], limits: &Limits) -> bool {
    matches!(tokio::time::timeout(limits.write_timeout, stream.write_all(bytes)).await, Ok(Ok(())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, host: &str, origin: Option<&str>) -> Request {
        let mut headers = std::collections::BTreeMap::from([("host".to_owned(), host.to_owned())]);
        if let Some(o) = origin {
            headers.insert("origin".into(), o.into());
        }
        Request { method: method.into(), path: "/".into(), query: Default::default(), headers, body: Vec::new() }
    }

    #[test]
    fn only_loopback_hosts_and_own_origins_pass() {
        let addr: SocketAddr = "127.0.0.1:8025".parse().unwrap();
        assert_eq!(check_origin(&request("GET", "127.0.0.1:8025", None), addr), Ok(()));
        assert_eq!(check_origin(&request("GET", "localhost:8025", None), addr), Ok(()));
        assert_eq!(
            check_origin(&request("GET", "evil.example:8025", None), addr),
            Err("host `evil.example:8025`: the preview answers only to a loopback name".into())
        );
        assert_eq!(check_origin(&request("POST", "127.0.0.1:8025", Some("http://127.0.0.1:8025")), addr), Ok(()));
        assert_eq!(
            check_origin(&request("POST", "127.0.0.1:8025", Some("http://evil.example")), addr),
            Err("origin `http://evil.example`: not this preview's page".into())
        );
    }
}
