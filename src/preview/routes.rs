//! The preview's routes, as an axum [`Router`]. Every answer but the HTML part is the
//! embedded page or JSON; the HTML part is served alone with a CSP that forbids scripts and
//! sandboxes it. The policy of [`super::http`] runs before every route.
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
//! Never serves a file from disk; errors (an unknown path or method included) are answered
//! as `{error}` JSON with a status. Live-update streams are capped ([`Limits::max_streams`]:
//! one more is answered 503 with `Retry-After`) and end after [`Limits::stream_lifetime`].
//! Work that reads files, parses or renders runs through [`off_runtime`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, RETRY_AFTER};
use axum::http::header::{HeaderName, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::middleware::from_fn_with_state;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::{Stream, StreamExt as _, stream};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower_http::set_header::SetResponseHeaderLayer;

use super::http::{self, closing, error};
use super::state::{busy, off_runtime};
use super::{Limits, Preview};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The page's own policy: its script and style only, no outside requests, frames from here.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";
/// The HTML part's policy: inline styles and data: images only, no scripts, sandboxed.
const PART_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; base-uri 'none'; form-action 'none'";
/// Everything else (JSON, script, style) is no document: it may load nothing and be framed nowhere.
const OTHER_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// What every route shares.
#[derive(Clone)]
struct App {
    preview: Arc<Preview>,
    limits: Limits,
    streams: Arc<Semaphore>,
}

/// The routes behind the policy of [`super::http`], for a server listening on `addr`.
pub(super) fn router(preview: Arc<Preview>, addr: SocketAddr) -> Router {
    let limits = preview.settings().limits.clone();
    let request_timeout = limits.request_timeout;
    let app = App { preview, streams: Arc::new(Semaphore::new(limits.max_streams)), limits };
    let header = |name: HeaderName, value: &'static str| SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value));
    Router::new()
        .route("/", get(page))
        .route("/app.js", get(|| async { ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS) }))
        .route("/style.css", get(|| async { ([(CONTENT_TYPE, "text/css; charset=utf-8")], STYLE_CSS) }))
        .route("/api/items", get(items))
        .route("/api/problems", get(problems))
        .route("/api/item", get(item))
        .route("/html", get(html))
        .route("/events", get(events))
        .route("/api/upload", post(upload))
        .route("/api/send", post(send))
        .fallback(|uri: Uri| async move { error(StatusCode::NOT_FOUND, format!("no page `{}`", uri.path())) })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            error(StatusCode::METHOD_NOT_ALLOWED, format!("{method} {}: method not allowed", uri.path()))
        })
        .with_state(app)
        // The last layer added runs first: headers on every answer, then who may ask, then the body.
        .layer(from_fn_with_state(request_timeout, http::bounded_body))
        .layer(from_fn_with_state(addr, http::guard))
        .layer(SetResponseHeaderLayer::if_not_present(CONTENT_SECURITY_POLICY, HeaderValue::from_static(OTHER_CSP)))
        .layer(header(CACHE_CONTROL, "no-store"))
        .layer(header(X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(REFERRER_POLICY, "no-referrer"))
}

/// `?id=…` (empty when missing).
#[derive(Deserialize)]
struct IdQuery {
    #[serde(default)]
    id: String,
}

/// `?name=…` of an upload.
#[derive(Deserialize)]
struct NameQuery {
    name: Option<String>,
}

fn bad_query(rejection: QueryRejection) -> Response {
    error(StatusCode::BAD_REQUEST, rejection.body_text())
}

async fn page() -> Response {
    ([(CONTENT_TYPE, "text/html; charset=utf-8"), (CONTENT_SECURITY_POLICY, PAGE_CSP)], INDEX_HTML).into_response()
}

async fn items(State(app): State<App>) -> Response {
    http::json(StatusCode::OK, &app.preview.items_json())
}

async fn problems(State(app): State<App>) -> Response {
    let problems: Vec<_> = app.preview.problems().iter().map(super::items::problem_json).collect();
    http::json(StatusCode::OK, &json!({ "problems": problems }))
}

async fn item(State(app): State<App>, query: Result<Query<IdQuery>, QueryRejection>) -> Response {
    let id = match query {
        Ok(Query(q)) => q.id,
        Err(rejection) => return bad_query(rejection),
    };
    let (preview, key) = (app.preview, id.clone());
    match off_runtime(move || preview.view(&key)).await {
        Some(Some(view)) => http::json(StatusCode::OK, &view),
        Some(None) => error(StatusCode::NOT_FOUND, format!("no item `{id}`")),
        None => failed(),
    }
}

async fn html(State(app): State<App>, query: Result<Query<IdQuery>, QueryRejection>) -> Response {
    let id = match query {
        Ok(Query(q)) => q.id,
        Err(rejection) => return bad_query(rejection),
    };
    let (preview, key) = (app.preview, id.clone());
    let (status, body) = match off_runtime(move || preview.html(&key)).await {
        Some(Some(html)) => (StatusCode::OK, html),
        Some(None) => (StatusCode::NOT_FOUND, format!("no rendering of `{id}`")),
        None => return failed(),
    };
    let content_type = if status == StatusCode::OK { "text/html; charset=utf-8" } else { "text/plain; charset=utf-8" };
    (status, [(CONTENT_TYPE, content_type), (CONTENT_SECURITY_POLICY, PART_CSP)], body).into_response()
}

async fn upload(State(app): State<App>, query: Result<Query<NameQuery>, QueryRejection>, body: Bytes) -> Response {
    let name = match query {
        Ok(Query(q)) => q.name.unwrap_or_else(|| "upload.txt".to_owned()),
        Err(rejection) => return bad_query(rejection),
    };
    let preview = app.preview;
    match off_runtime(move || preview.upload(&name, &body)).await {
        Some(Ok(id)) => http::json(StatusCode::OK, &json!({ "id": id })),
        Some(Err(message)) => error(StatusCode::UNPROCESSABLE_ENTITY, message),
        None => failed(),
    }
}

async fn send(State(app): State<App>, body: Bytes) -> Response {
    let body: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("send: body is not JSON: {e}")),
    };
    let (Some(id), Some(to)) = (body["id"].as_str(), body["to"].as_str()) else {
        return error(StatusCode::BAD_REQUEST, "send: the body needs `id` and `to`");
    };
    match app.preview.send(id, to).await {
        Ok(result) => http::json(StatusCode::OK, &result),
        Err((status, message)) => error(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY), message),
    }
}

fn failed() -> Response {
    let (status, message) = busy();
    error(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), message)
}

/// A live-update stream while a place is free (else 503 with `Retry-After`), on a connection
/// of its own that closes when the stream ends.
async fn events(State(app): State<App>) -> Response {
    let Ok(permit) = app.streams.clone().try_acquire_owned() else {
        let message = format!("{} pages are following changes already; close some and reload", app.limits.max_streams);
        let refused = error(StatusCode::SERVICE_UNAVAILABLE, message);
        return closing(([(RETRY_AFTER, "5")], refused).into_response());
    };
    let events = change_events(app.preview.subscribe(), app.limits.stream_lifetime, permit);
    let keep_alive = KeepAlive::new().interval(Duration::from_secs(15)).text("keep-alive");
    closing(Sse::new(events).keep_alive(keep_alive).into_response())
}

/// `retry` (how soon the page reconnects when the stream ends), then `event: change` with the
/// generation now and at every change, until `lifetime` has passed. Holds `permit` throughout.
fn change_events(
    changes: watch::Receiver<u64>,
    lifetime: Duration,
    permit: OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let end = tokio::time::Instant::now() + lifetime;
    let retry = Event::default().retry(Duration::from_secs(2));
    let changes = stream::unfold((changes, true, permit), move |(mut changes, first, permit)| async move {
        if !first {
            tokio::select! {
                changed = changes.changed() => changed.ok()?,
                () = tokio::time::sleep_until(end) => return None,
            }
        }
        let generation = *changes.borrow_and_update();
        Some((Event::default().event("change").data(generation.to_string()), (changes, false, permit)))
    });
    stream::once(async { retry }).chain(changes).map(Ok)
}
