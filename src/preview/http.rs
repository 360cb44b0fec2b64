//! The little HTTP/1.1 the preview needs: reads one request (request line, headers, a body
//! given by `Content-Length` of at most the caller's limit for that path: [`MAX_UPLOAD`] for
//! an uploaded header file, [`MAX_BODY`] for anything else) and writes one response, then
//! the connection is closed (`Connection: close`). Server-sent events keep the connection
//! open and are written by the caller after [`sse_head`].
//!
//! Consumes bytes from a socket; produces a [`Request`] or an [`HttpError`] that names what
//! was wrong. Never panics on what a client sends, never reads more than the limits.

use std::collections::BTreeMap;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// The largest request head (request line and headers) read.
const MAX_HEAD: usize = 16 * 1024;
/// The largest request body read but for uploads (a `send` request is a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;
/// The largest uploaded header file: intake's own limit, so nothing larger is even read.
pub const MAX_UPLOAD: usize = crate::intake::MAX_FILE_BYTES;

/// What was wrong with a request; answered with `status`.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("request too large: {0}")]
    TooLarge(String),
    #[error("cannot read the request: {0}")]
    Io(#[from] std::io::Error),
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::TooLarge(_) => 413,
            _ => 400,
        }
    }
}

/// One parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path without the query, percent-decoded.
    pub path: String,
    /// Query parameters, percent-decoded (`+` is a space).
    pub query: BTreeMap<String, String>,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }
}

/// Reads one request from `stream`; `body_limit` gives the largest body accepted for a path.
pub async fn read_request<R: tokio::io::AsyncRead + Unpin>(
    stream: R,
    body_limit: impl Fn(&str) -> usize,
) -> Result<Request, HttpError> {
    let mut reader = BufReader::new(stream);
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let n = (&mut reader).take((MAX_HEAD + 1 - head.len()) as u64).read_until(b'\n', &mut head).await?;
        if n == 0 {
            return Err(HttpError::Malformed("connection closed before the end of the headers".into()));
        }
        if head.len() > MAX_HEAD {
            return Err(HttpError::TooLarge(format!("headers over {MAX_HEAD} bytes")));
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    let head = String::from_utf8(head).map_err(|_| HttpError::Malformed("headers are not UTF-8".into()))?;
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(HttpError::Malformed(format!("request line `{request_line}`")));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed(format!("version `{version}`")));
    }
    let mut headers = BTreeMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) =
            line.split_once(':').ok_or_else(|| HttpError::Malformed(format!("header line `{line}`")))?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length = match headers.get("content-length") {
        Some(v) => v.parse::<usize>().map_err(|_| HttpError::Malformed(format!("Content-Length `{v}`")))?,
        None => 0,
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = percent_decode(path, false);
    let limit = body_limit(&path);
    if length > limit {
        return Err(HttpError::TooLarge(format!("body of {length} bytes (at most {limit})")));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(Request { method: method.to_owned(), path, query: parse_query(query), headers, body })
}

/// `a=1&b=x%20y` -> {a: 1, b: x y}.
pub fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// Decodes `%XX` escapes (and `+` as a space in a query); invalid escapes stay as written,
/// invalid UTF-8 becomes U+FFFD.
pub fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One response: status, content type, extra headers, body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response { status, content_type, headers: Vec::new(), body: body.into() }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status, "application/json; charset=utf-8", value.to_string())
    }

    /// `{"error": message}` with `status`.
    pub fn error(status: u16, message: impl Into<String>) -> Response {
        Response::json(status, &serde_json::json!({ "error": message.into() }))
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    pub async fn write_to<W: AsyncWrite + Unpin>(&self, out: &mut W) -> std::io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.headers {
            head += &format!("{name}: {value}\r\n");
        }
        head += "\r\n";
        out.write_all(head.as_bytes()).await?;
        out.write_all(&self.body).await?;
        out.flush().await
    }
}

/// The head of a server-sent event stream; events follow as `event: …\ndata: …\n\n`.
pub const fn sse_head() -> &'static str {
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: keep-alive\r\nX-Content-Type-Options: nosniff\r\n\r\n"
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_a_get_with_query() {
        let raw = b"GET /api/item?id=sample%2Fmissed_call%2Fx&b=a+b HTTP/1.1\r\nHost: 127.0.0.1:8025\r\n\r\n";
        let r = read_request(&raw[..], |_| MAX_BODY).await.unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/api/item");
        assert_eq!(r.param("id"), Some("sample/missed_call/x"));
        assert_eq!(r.param("b"), Some("a b"));
        assert_eq!(r.header("host"), Some("127.0.0.1:8025"));
    }

    #[tokio::test]
    async fn reads_a_post_body() {
        let raw = b"POST /api/upload?name=a.txt HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        let r = read_request(&raw[..], |_| MAX_BODY).await.unwrap();
        assert_eq!(r.body, b"hello");
    }

    #[tokio::test]
    async fn refuses_oversized_bodies_and_bad_lines() {
        let limit = |path: &str| if path == "/api/upload" { MAX_UPLOAD } else { MAX_BODY };
        let raw = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1);
        let e = read_request(raw.as_bytes(), limit).await.unwrap_err();
        assert_eq!(e.status(), 413);
        assert_eq!(e.to_string(), format!("request too large: body of {} bytes (at most {MAX_BODY})", MAX_BODY + 1));
        let raw = format!("POST /api/upload HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_UPLOAD + 1);
        let e = read_request(raw.as_bytes(), limit).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("request too large: body of {} bytes (at most {MAX_UPLOAD})", MAX_UPLOAD + 1)
        );
        let e = read_request(&b"NONSENSE\r\n\r\n"[..], limit).await.unwrap_err();
        assert_eq!(e.to_string(), "malformed request: request line `NONSENSE`");
        let e = read_request(&b"GET / HTTP/1.1\r\nHost"[..], limit).await.unwrap_err();
        assert_eq!(e.to_string(), "malformed request: connection closed before the end of the headers");
    }

    #[test]
    fn percent_decoding_keeps_bad_escapes() {
        assert_eq!(percent_decode("a%2Fb%zz%4", false), "a/b%zz%4");
        assert_eq!(percent_decode("%C3%A9+x", true), "é x");
        assert_eq!(percent_decode("%", false), "%");
    }
}
