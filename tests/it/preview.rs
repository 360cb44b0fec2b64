//! `callnote preview`: the server over real HTTP (sample list, a rendered sample, the HTML
//! part's policy, uploads, send test, template errors after an edit, what it refuses), and
//! end to end in headless Chromium through chromedriver (scripts/browser-server.sh): pick an
//! event, edit a template and watch the page follow, break it and read the inline error.
//! Screenshots land in tests/artifacts/.

mod client;
mod webdriver;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use callnote::config::{Config, DeliverySettings};
use callnote::pipeline::Pipeline;
use callnote::preview::{Limits, PreviewError, Server, Settings};
use callnote::render::Templates;
use client::{get, request};

use crate::common::{fixture, server_env};

const SAMPLE: &str = "sample/missed_call/resolved-mobile/en-US";
const SAMPLE_Q: &str = "sample%2Fmissed_call%2Fresolved-mobile%2Fen-US";
const SAMPLE_SUBJECT: &str = "Missed call from Priya Raman (mobile), (289) 555-0147";

/// A preview on a free loopback port, serving until the test ends.
/// A preview on a free loopback port with `limits`: no template or drop folder, no delivery.
fn settings_with(limits: Limits) -> Settings {
    Settings { listen: "127.0.0.1:0".parse().unwrap(), allow_remote: false, templates_dir: None, drop_dir: None, delivery: None, limits }
}

async fn start(templates: Option<&Path>, drop: Option<&Path>, delivery: Option<DeliverySettings>) -> SocketAddr {
    let settings = Settings {
        templates_dir: templates.map(Path::to_path_buf),
        drop_dir: drop.map(Path::to_path_buf),
        delivery,
        ..settings_with(Limits::default())
    };
    serve(settings, Pipeline::new(Config::default(), Templates::builtin(), None, None)).await
}

async fn serve(settings: Settings, pipeline: Pipeline) -> SocketAddr {
    let server = Server::bind(settings, pipeline, |_| Some(b"RIFF fake audio".to_vec())).await.expect("bind");
    let addr = server.addr;
    tokio::spawn(server.serve());
    addr
}

/// A template folder holding a copy of the built-in missed-call English templates.
fn template_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let en = dir.path().join("missed_call/en");
    std::fs::create_dir_all(&en).unwrap();
    for part in ["subject.txt", "body.txt", "body.html"] {
        let text = Templates::builtin().files().find(|(n, _)| *n == format!("missed_call/en/{part}")).map(|(_, t)| t.to_owned()).unwrap();
        std::fs::write(en.join(part), text).unwrap();
    }
    dir
}

/// Polls `GET path` until `ok` holds for its JSON (at most 5 s).
async fn wait_json(addr: SocketAddr, path: &str, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let start = std::time::Instant::now();
    loop {
        let v = get(addr, path).await.json();
        if ok(&v) {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{path} never got there: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn lists_every_sample_and_the_dropped_header_files() {
    let drop = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("mc-legacy-minimal-fields.txt"), drop.path().join("mc-legacy-minimal-fields.txt")).unwrap();
    std::fs::write(drop.path().join("notes.md"), "not a header").unwrap();
    let addr = start(None, Some(drop.path()), None).await;
    let reply = get(addr, "/api/items").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json; charset=utf-8"));
    let items = reply.json()["items"].as_array().unwrap().clone();
    let samples: Vec<&str> = items.iter().filter(|i| i["group"] == "sample").map(|i| i["label"].as_str().unwrap()).collect();
    assert_eq!(samples, callnote::samples::NAMES);
    let files: Vec<&str> = items.iter().filter(|i| i["group"] == "file").map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(files, ["file/mc-legacy-minimal-fields.txt"]);

    // A file dropped in later shows up without a restart.
    let tif = "5c94cd03-f225-4272-8071-81eb2e385e0c.tif";
    std::fs::copy(fixture(tif), drop.path().join(tif)).unwrap();
    std::fs::copy(fixture("fax-2013-three-pages.txt"), drop.path().join("fax.txt")).unwrap();
    wait_json(addr, "/api/items", |v| v["items"].as_array().unwrap().iter().any(|i| i["id"] == "file/fax.txt")).await;
    let fax = get(addr, "/api/item?id=file%2Ffax.txt").await.json();
    // Without a directory the recipient (known only by its GUID) has no address: the page
    // says so, as the relay would.
    let guid = "RecipientObjectGuid 5e7bf87a-c77b-4f0f-820f-5f25609c7f58 not found in the directory";
    let expected = format!(
        "{}: call e0179f19-a6e5-4581-8799-32524d688d70: cannot compose the message: recipient has no mail address ({guid})",
        drop.path().join("fax.txt").display()
    );
    assert_eq!(fax["error"]["text"], expected.as_str());
}

#[tokio::test]
async fn shows_a_rendered_sample_with_headers_and_trace() {
    let addr = start(None, None, None).await;
    let v = get(addr, &format!("/api/item?id={SAMPLE_Q}")).await.json();
    assert_eq!(v["subject"], SAMPLE_SUBJECT);
    assert_eq!(v["error"], serde_json::Value::Null);
    assert_eq!(v["stale"], false);
    assert_eq!(v["locale"], "en");
    assert!(v["text"].as_str().unwrap().starts_with("Missed call\n\nFrom: Priya Raman (mobile), (289) 555-0147\n"), "{}", v["text"]);
    let headers = v["headers"].as_array().unwrap();
    assert!(headers.contains(&serde_json::json!(["Subject", SAMPLE_SUBJECT])), "{headers:?}");
    assert!(headers.contains(&serde_json::json!(["X-CallingTelephoneNumber", "+12895550147"])), "{headers:?}");
    let caller = &v["trace"]["caller"];
    assert_eq!(caller["raw"], "+12895550147");
    assert_eq!(caller["e164"], "+12895550147");
    assert_eq!(caller["international"], "+1 289-555-0147");
    assert_eq!(caller["status"], "resolved");
    assert_eq!(caller["matched_attribute"], "mobile");
    assert_eq!(caller["candidates"][0]["display_name"], "Priya Raman");
    assert_eq!(v["attachments"], serde_json::json!([]));
    assert_eq!(v["html_url"], format!("/html?id={SAMPLE_Q}&g=1"));

    let voicemail = get(addr, "/api/item?id=sample%2Fvoicemail%2Fresolved-work%2Fen-US").await.json();
    let att = &voicemail["attachments"][0];
    assert_eq!(att["content_type"], "audio/wav", "{voicemail}");

    // The HTML part is served alone, sandboxed, without scripts.
    let html = get(addr, &format!("/html?id={SAMPLE_Q}")).await;
    assert_eq!(html.status, 200);
    let csp = html.header("content-security-policy").unwrap();
    assert!(csp.starts_with("default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox;"), "{csp}");
    assert!(html.text().contains("Priya Raman"));
    assert!(html.text().contains("(289) 555-0147"));

    // The page itself: embedded, with its own strict policy, and no outside address.
    let page = get(addr, "/").await;
    assert!(page.header("content-security-policy").unwrap().starts_with("default-src 'none'; script-src 'self';"));
    for asset in ["/", "/app.js", "/style.css"] {
        let text = get(addr, asset).await.text();
        assert!(!text.contains("http://") && !text.contains("https://"), "{asset} names an outside address");
    }
    assert!(!get(addr, "/app.js").await.text().contains("innerHTML"), "values go in with textContent");
}

#[tokio::test]
async fn a_broken_template_is_located_and_the_last_good_rendering_stays() {
    let templates = template_dir();
    let addr = start(Some(templates.path()), None, None).await;
    let first = get(addr, &format!("/api/item?id={SAMPLE_Q}")).await.json();
    assert_eq!(first["subject"], SAMPLE_SUBJECT);

    let subject = templates.path().join("missed_call/en/subject.txt");
    std::fs::write(&subject, "{#- edited -#}\nMissed: {{ caller.name }\n").unwrap();
    // Each wait is for the whole new file: the poller may catch a file half-written (an editor
    // saving in place), whose own problem would be a different one.
    let v = wait_json(addr, &format!("/api/item?id={SAMPLE_Q}"), |v| v["problems"][0]["line"] == 2).await;
    let problem = &v["problems"][0];
    assert_eq!(problem["file"], "missed_call/en/subject.txt");
    assert_eq!(problem["line"], 2);
    assert_eq!(problem["col"], 24);
    assert_eq!(problem["message"], "found `}` but expected }}.");
    assert_eq!(problem["excerpt"], "2 | Missed: {{ caller.name }\n  |                        ^");
    assert_eq!(v["stale"], true);
    assert_eq!(v["subject"], SAMPLE_SUBJECT, "the last good rendering stays");
    // The item's error is the located problem that broke it, not its knock-on effect.
    assert_eq!(v["error"]["text"], "missed_call/en/subject.txt:2:24: found `}` but expected }}.");
    assert_eq!(v["error"]["excerpt"], problem["excerpt"]);
    assert!(!v.to_string().contains("no complete template folder"), "{v}");
    let problems = get(addr, "/api/problems").await.json();
    assert_eq!(problems["problems"][0]["text"], "missed_call/en/subject.txt:2:24: found `}` but expected }}.");
    // The HTML part keeps the last good one too.
    assert!(get(addr, &format!("/html?id={SAMPLE_Q}")).await.text().contains("Priya Raman"));

    // A render-time problem (an unknown field) is located in the item's error.
    std::fs::write(&subject, "Missed: {{ caller.nmae }}\n").unwrap();
    let v = wait_json(addr, &format!("/api/item?id={SAMPLE_Q}"), |v| {
        v["error"]["message"].as_str().is_some_and(|m| m.starts_with("field `nmae`")) && v["problems"] == serde_json::json!([])
    })
    .await;
    assert_eq!(v["error"]["file"], "missed_call/en/subject.txt");
    assert_eq!((v["error"]["line"].as_u64(), v["error"]["col"].as_u64()), (Some(1), Some(19)));
    assert!(
        v["error"]["message"].as_str().unwrap().starts_with("field `nmae` is not defined. Available fields: candidates,"),
        "{}",
        v["error"]
    );
    assert_eq!(v["stale"], true);
    assert_eq!(v["problems"], serde_json::json!([]));

    std::fs::write(&subject, "Edited: {{ caller.name }}\n").unwrap();
    let v = wait_json(addr, &format!("/api/item?id={SAMPLE_Q}"), |v| v["subject"] == "Edited: Priya Raman").await;
    assert!(v["error"].is_null(), "{v}");
    assert_eq!(v["stale"], false);
}

#[tokio::test]
async fn uploads_are_parsed_in_memory_and_listed() {
    let addr = start(None, None, None).await;
    let bytes = std::fs::read(fixture("mc-legacy-minimal-fields.txt")).unwrap();
    let reply = request(addr, "POST", "/api/upload?name=..%2F..%2Fetc%2Fpasswd.txt", &[], &bytes).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(id, "upload/1-.._.._etc_passwd.txt");
    let items = get(addr, "/api/items").await.json();
    assert!(items["items"].as_array().unwrap().iter().any(|i| i["id"] == id.as_str() && i["group"] == "upload"));
    let v = get(addr, &format!("/api/item?id={}", id.replace('/', "%2F"))).await.json();
    assert_eq!(v["error"], serde_json::Value::Null, "{v}");
    assert_eq!(v["trace"]["message_type"], "MissedCall");

    let bad = request(addr, "POST", "/api/upload?name=x.txt", &[], b"MessageType : Telepathy\r\n").await;
    assert_eq!(bad.status, 422);
    assert!(bad.json()["error"].as_str().unwrap().contains("Telepathy"), "{}", bad.text());
}

#[tokio::test]
async fn refuses_unknown_ids_foreign_hosts_and_remote_binding() {
    let drop = tempfile::tempdir().unwrap();
    let addr = start(None, Some(drop.path()), None).await;
    let r = get(addr, "/api/item?id=file%2F..%2F..%2Fetc%2Fpasswd").await;
    assert_eq!((r.status, r.json()["error"].clone()), (404, serde_json::json!("no item `file/../../etc/passwd`")));
    let r = get(addr, "/html?id=file%2F%2Fetc%2Fpasswd").await;
    assert_eq!((r.status, r.text()), (404, "no rendering of `file//etc/passwd`".to_owned()));
    let r = get(addr, "/etc/passwd").await;
    assert_eq!((r.status, r.json()["error"].clone()), (404, serde_json::json!("no page `/etc/passwd`")));
    let r = request(addr, "DELETE", "/api/items", &[], b"").await;
    assert_eq!(r.status, 405);

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stream, b"GET / HTTP/1.1\r\nHost: attacker.example\r\n\r\n").await.unwrap();
    let mut raw = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut raw).await.unwrap();
    assert!(raw.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{raw}");
    assert!(raw.ends_with(r#"{"error":"host `attacker.example`: the preview answers only to a loopback name"}"#), "{raw}");

    let r = request(addr, "POST", "/api/send", &["Origin: http://attacker.example"], br#"{"id":"x","to":"a@b.c"}"#).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, serde_json::json!("origin `http://attacker.example`: not this preview's page"))
    );

    let settings = Settings { listen: "0.0.0.0:0".parse().unwrap(), ..settings_with(Limits::default()) };
    let pipeline = Pipeline::new(Config::default(), Templates::builtin(), None, None);
    let err = Server::bind(settings, pipeline, |_| None).await.err().expect("refused");
    assert!(matches!(err, PreviewError::NotLoopback(_)));
    assert_eq!(
        err.to_string(),
        "--listen 0.0.0.0:0: not a loopback address; pass --allow-remote to serve other machines (the page can send mail)"
    );
}

#[tokio::test]
async fn send_test_goes_through_the_configured_delivery() {
    let addr = start(None, None, None).await;
    let body = format!(r#"{{"id":"{SAMPLE}","to":"admin@contoso.com"}}"#);
    let r = request(addr, "POST", "/api/send", &["Content-Type: application/json"], body.as_bytes()).await;
    assert_eq!((r.status, r.json()["error"].clone()), (409, serde_json::json!("no [delivery] in the configuration: send test is off")));

    let outbox = tempfile::tempdir().unwrap();
    let addr = start(None, None, Some(DeliverySettings::Dir(outbox.path().to_path_buf()))).await;
    let r = request(addr, "POST", "/api/send", &["Content-Type: application/json"], b"{\"id\":\"x\",\"to\":\"not an address\"}").await;
    assert_eq!(r.status, 422);
    assert!(r.json()["error"].as_str().unwrap().starts_with("`not an address`: not a mail address"), "{}", r.text());

    let r = request(addr, "POST", "/api/send", &["Content-Type: application/json"], body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["accepted"], true);
    let files: Vec<PathBuf> = std::fs::read_dir(outbox.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1);
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    // Exactly the address typed (no directory here, so no name), marked as a test.
    assert!(eml.contains("\r\nTo: admin@contoso.com\r\n"), "{eml}");
    assert!(eml.contains("\r\nX-Callnote-Test: yes\r\n"), "{eml}");
    assert!(eml.contains(&format!("Subject: {SAMPLE_SUBJECT}\r\n")), "{eml}");

    // A voicemail sample gets its made-up audio attached.
    let body = r#"{"id":"sample/voicemail/resolved-work/en-US","to":"admin@contoso.com"}"#;
    let r = request(addr, "POST", "/api/send", &["Content-Type: application/json"], body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let newest = std::fs::read_dir(outbox.path()).unwrap().map(|e| e.unwrap().path()).find(|p| *p != files[0]).unwrap();
    let eml = std::fs::read_to_string(newest).unwrap();
    assert!(eml.contains("Content-Type: audio/wav"), "{eml}");
}

#[tokio::test]
async fn events_announce_the_generation() {
    let templates = template_dir();
    let addr = start(Some(templates.path()), None, None).await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stream, format!("GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    let mut touched = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    // The events as the page reads them: the body after the head, without its chunk framing.
    let events = |raw: &[u8]| {
        let text = String::from_utf8_lossy(raw);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        String::from_utf8_lossy(&client::dechunk(body.as_bytes())).into_owned()
    };
    while !events(&raw).contains("event: change\ndata: 2\n\n") {
        let n = tokio::time::timeout_at(deadline.into(), tokio::io::AsyncReadExt::read(&mut stream, &mut buf))
            .await
            .expect("an event in time")
            .unwrap();
        assert_ne!(n, 0, "the event stream ended: {}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
        if !touched && events(&raw).contains("data: 1\n\n") {
            std::fs::write(templates.path().join("missed_call/en/subject.txt"), "Changed {{ caller.name }}").unwrap();
            touched = true;
        }
    }
    let seen = String::from_utf8_lossy(&raw);
    let head = seen.split("\r\n\r\n").next().unwrap_or_default().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{seen}");
    assert!(head.contains("\r\ncontent-type: text/event-stream\r\n"), "{seen}");
    assert!(events(&raw).starts_with("retry: 2000\n\nevent: change\ndata: 1\n\n"), "{seen}");
}

/// Opens `GET /events` and reads until the first event.
async fn open_stream(addr: SocketAddr) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("event: change\ndata: 1\n\n") {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), tokio::io::AsyncReadExt::read(&mut stream, &mut buf))
            .await
            .expect("the first event")
            .unwrap();
        assert_ne!(n, 0, "the stream ended: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    stream
}

/// Everything the server still sends until it closes the connection (at most 10 s).
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> String {
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tokio::io::AsyncReadExt::read_to_end(stream, &mut rest))
        .await
        .expect("the server closes the connection")
        .unwrap();
    String::from_utf8_lossy(&rest).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_and_surplus_streams_cannot_starve_the_page() {
    let limits = Limits {
        max_connections: 6,
        max_streams: 2,
        request_timeout: Duration::from_millis(300),
        write_timeout: Duration::from_secs(1),
        stream_lifetime: Duration::from_millis(1500),
    };
    let settings = settings_with(limits);
    let addr = serve(settings, Pipeline::new(Config::default(), Templates::builtin(), None, None)).await;

    // Two pages follow changes; a third stream is refused at once, saying when to retry.
    let mut streams = vec![open_stream(addr).await, open_stream(addr).await];
    let refused = get(addr, "/events").await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("retry-after"), Some("5"));
    assert_eq!(refused.json()["error"], "2 pages are following changes already; close some and reload");

    // Twelve clients connect and send nothing: more than all the connections left.
    let mut idle = Vec::new();
    for _ in 0..12 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // The page still answers (once the idle ones before it have had their time).
    let page = get(addr, "/").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<html"), "{}", page.text());
    // Every idle client was told why and closed.
    for client in &mut idle {
        let reply = read_until_closed(client).await;
        assert!(reply.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{reply}");
        assert!(reply.ends_with(r#"{"error":"no complete request within 300ms"}"#), "{reply}");
    }
    // The streams end after their lifetime (a page reconnects by itself)…
    for stream in &mut streams {
        read_until_closed(stream).await;
    }
    // …which gives their places to new ones.
    open_stream(addr).await;
}

/// A preview that waits 300 ms for a request (the other limits as shipped).
async fn start_impatient() -> SocketAddr {
    let limits = Limits { request_timeout: Duration::from_millis(300), ..Limits::default() };
    let settings = settings_with(limits);
    serve(settings, Pipeline::new(Config::default(), Templates::builtin(), None, None)).await
}

#[tokio::test]
async fn a_kept_connection_serves_requests_in_turn_and_is_closed_when_idle() {
    let addr = start_impatient().await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    for path in ["/api/items", "/api/problems", "/style.css"] {
        let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes()).await.unwrap();
        let reply = client::read_reply(&mut stream).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        assert_eq!(reply.header("connection"), None, "{path}: the connection stays open");
    }
    // Nothing more is asked: after the wait for a request the server closes it, without a word
    // (this client was served; it is not left waiting for an answer).
    assert_eq!(read_until_closed(&mut stream).await, "");
}

#[tokio::test]
async fn a_request_that_stops_arriving_is_answered_408_and_closed() {
    let addr = start_impatient().await;
    let expected = r#"{"error":"no complete request within 300ms"}"#;
    // Part of a head, then nothing.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stream, format!("GET / HTTP/1.1\r\nHost: {addr}\r\n").as_bytes()).await.unwrap();
    let reply = read_until_closed(&mut stream).await;
    assert!(reply.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{reply}");
    assert!(reply.ends_with(expected), "{reply}");
    // A whole head, then part of the body it announced.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("POST /api/upload?name=slow.txt HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 100\r\n\r\nMessageType");
    tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes()).await.unwrap();
    let reply = read_until_closed(&mut stream).await;
    assert!(reply.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{reply}");
    assert!(reply.to_ascii_lowercase().contains("\r\nconnection: close\r\n"), "{reply}");
    assert!(reply.ends_with(expected), "{reply}");
    // Nothing was listed from it.
    let items = get(addr, "/api/items").await.json();
    assert!(!items["items"].as_array().unwrap().iter().any(|i| i["group"] == "upload"), "{items}");
}

/// A directory whose first lookup waits until the test lets it go: parsing an upload (which
/// looks the caller up) is then blocking work in progress.
struct Gate {
    entered: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl callnote::enrich::directory::Directory for Gate {
    fn lookup(&self, _: &callnote::Party) -> Result<callnote::enrich::directory::Lookup, callnote::enrich::directory::DirectoryError> {
        if let Some(entered) = self.entered.lock().unwrap().take() {
            entered.send(()).unwrap();
            // Bounded, so a server that blocks its runtime fails the test instead of hanging it.
            let _ = self.release.lock().unwrap().recv_timeout(Duration::from_secs(20));
        }
        Ok(callnote::enrich::directory::Lookup::Unresolved)
    }

    fn find_recipient(
        &self,
        _: &callnote::Recipient,
    ) -> Result<Option<callnote::event::Person>, callnote::enrich::directory::DirectoryError> {
        Ok(None)
    }
}

/// On a single-threaded runtime, so any blocking work done on it would stop every request.
#[tokio::test(flavor = "current_thread")]
async fn parsing_an_upload_does_not_hold_up_other_requests() {
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    let gate = Gate { entered: std::sync::Mutex::new(Some(entered_tx)), release: std::sync::Mutex::new(release_rx) };
    let settings = settings_with(Limits::default());
    let pipeline = Pipeline::new(Config::default(), Templates::builtin(), Some(std::sync::Arc::new(gate)), None);
    let addr = serve(settings, pipeline).await;

    let bytes = std::fs::read(fixture("mc-legacy-minimal-fields.txt")).unwrap();
    let upload = tokio::spawn(async move { request(addr, "POST", "/api/upload?name=slow.txt", &[], &bytes).await });
    tokio::task::spawn_blocking(move || entered_rx.recv().unwrap()).await.unwrap();
    // The upload's parse is stuck in the directory; the page and the list still answer.
    assert_eq!(get(addr, "/").await.status, 200);
    assert_eq!(get(addr, "/api/items").await.status, 200);
    assert!(!upload.is_finished(), "answered while the upload was still being parsed");
    release_tx.send(()).unwrap();
    let reply = upload.await.unwrap();
    assert_eq!((reply.status, reply.json()["id"].clone()), (200, serde_json::json!("upload/1-slow.txt")));
}

#[tokio::test]
async fn an_upload_larger_than_a_header_file_can_be_is_refused_unread() {
    let addr = start(None, None, None).await;
    // Only the head is sent: the size alone gets the answer, nothing of the body is read.
    let refused = |path: &'static str, length: usize| async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {length}\r\n\r\n");
        tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes()).await.unwrap();
        read_until_closed(&mut stream).await
    };
    let limit = callnote::intake::MAX_FILE_BYTES;
    let reply = refused("/api/upload?name=big.txt", limit + 1).await;
    assert!(reply.starts_with("HTTP/1.1 413 Payload Too Large\r\n"), "{reply}");
    assert!(reply.ends_with(&format!(r#"{{"error":"request too large: body of {} bytes (at most {limit})"}}"#, limit + 1)), "{reply}");
    let reply = refused("/api/send", 65 * 1024).await;
    assert!(reply.ends_with(r#"{"error":"request too large: body of 66560 bytes (at most 65536)"}"#), "{reply}");
}

/// The issue's end-to-end check, in headless Chromium.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_follows_template_edits_and_shows_errors_inline() {
    let Some(driver) = server_env("CHROMEDRIVER_URL") else {
        return;
    };
    let templates = template_dir();
    let outbox = tempfile::tempdir().unwrap();
    let addr = start(Some(templates.path()), None, Some(DeliverySettings::Dir(outbox.path().to_path_buf()))).await;
    let browser = webdriver::Browser::start(&driver).await;
    browser.goto(&format!("http://{addr}/")).await;

    let button = browser.wait_find(&format!("button[data-id=\"{SAMPLE}\"]"), 10).await;
    browser.click(&button).await;
    let (subject, _) = browser.wait_text("#subject", 5, |t| !t.is_empty()).await;
    assert_eq!(subject, SAMPLE_SUBJECT);
    browser.wait_text("#trace", 5, |t| t.contains("+12895550147")).await;
    let frame = browser.frame_text("iframe#html").await;
    assert!(frame.contains("Priya Raman"), "{frame}");
    assert!(frame.contains("(289) 555-0147"), "{frame}");
    browser.screenshot("preview-1-sample").await;

    // Edit the subject on disk: the open page follows.
    let subject_file = templates.path().join("missed_call/en/subject.txt");
    std::fs::write(&subject_file, "Call missed: {{ caller.name }} ({{ caller.international }})\n").unwrap();
    let (_, took) = browser.wait_text("#subject", 10, |t| t == "Call missed: Priya Raman (+1 289-555-0147)").await;
    eprintln!("the page showed the edited subject {} ms after the save", took.as_millis());
    browser.screenshot("preview-2-edited").await;

    // Break it: the inline error names the file, line and column; the last good stays.
    std::fs::write(&subject_file, "{#- a comment line -#}\nCall missed: {{ caller.name }\n").unwrap();
    let (problems, _) = browser.wait_text("#problems", 10, |t| t.contains("subject.txt")).await;
    assert!(problems.contains("missed_call/en/subject.txt:2:29 found `}` but expected }}."), "{problems}");
    assert!(problems.contains("2 | Call missed: {{ caller.name }"), "{problems}");
    assert_eq!(browser.text("#subject").await, "Call missed: Priya Raman (+1 289-555-0147)");
    assert_eq!(browser.text("#stale").await, "last good rendering");
    browser.screenshot("preview-3-error").await;

    // Fixed again: the error goes away.
    std::fs::write(&subject_file, "Fixed: {{ caller.name }}\n").unwrap();
    browser.wait_text("#subject", 10, |t| t == "Fixed: Priya Raman").await;
    assert_eq!(browser.text("#problems").await, "");

    // Send a test to a mailbox typed on the page.
    let to = browser.wait_find("#send-to", 5).await;
    browser.type_into(&to, "admin@contoso.com").await;
    let send = browser.wait_find("#send", 5).await;
    browser.click(&send).await;
    let (result, _) = browser.wait_text("#send-result", 10, |t| t.starts_with("accepted") || t.starts_with("not sent")).await;
    assert!(result.starts_with("accepted via "), "{result}");
    let sent: Vec<PathBuf> = std::fs::read_dir(outbox.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(sent.len(), 1);
    let eml = std::fs::read_to_string(&sent[0]).unwrap();
    assert!(eml.contains("Subject: Fixed: Priya Raman\r\n"), "{eml}");
    browser.screenshot("preview-4-sent").await;

    // Upload a header file on the page: it is parsed, listed and selected.
    let upload = browser.wait_find("#upload", 5).await;
    browser.type_into(&upload, fixture("mc-legacy-minimal-fields.txt").to_str().unwrap()).await;
    let id = "upload/1-mc-legacy-minimal-fields.txt";
    browser.wait_text("#item-id", 10, |t| t == id).await;
    // No directory here: the caller has no name, so the edited subject is "Fixed:" alone.
    assert_eq!(browser.text("#subject").await, "Fixed:");
    browser.wait_text("#text", 5, |t| t.contains("From: (425) 555-0100")).await;
    assert!(browser.find(&format!("button[data-id=\"{id}\"].selected")).await.is_some());
    browser.screenshot("preview-5-upload").await;
    browser.quit().await;
}

/// As an admin starts it: the command prints the address, the page answers; a remote
/// address without --allow-remote is a usage error (exit 2).
#[test]
fn the_command_serves_on_loopback_and_refuses_remote_without_the_flag() {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};

    let out = Command::new(env!("CARGO_BIN_EXE_callnote")).args(["preview", "--listen", "0.0.0.0:8025"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: --listen 0.0.0.0:8025: not a loopback address; pass --allow-remote to serve other machines (the page can send mail)\n"
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_callnote"))
        .args(["preview", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .strip_prefix("callnote preview: http://")
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("first line: {line:?}"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let items = runtime.block_on(get(addr, "/api/items"));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(items.status, 200);
    assert_eq!(items.json()["items"].as_array().unwrap().len(), callnote::samples::NAMES.len());
}
