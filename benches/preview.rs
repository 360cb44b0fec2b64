//! The preview's speed as an admin feels it: how fast a selected event comes back rendered,
//! and how soon a saved template reaches an open page.
//!
//! ```text
//! cargo bench --bench preview
//! CALLNOTE_BIN=/path/to/other/callnote cargo bench --bench preview   # the same, another build
//! ```
//!
//! Starts `callnote preview` (this build's binary, or `CALLNOTE_BIN`) on a free loopback port
//! with a templates folder of its own, then, through hyper's client:
//!
//! - `GET /api/item?id=…` (parse, enrich, render, compose one sample voice mail) and
//!   `GET /html?id=…` (its HTML part), `BENCH_REQUESTS` times (default 2,000) from
//!   `BENCH_CONCURRENCY` clients (default 4), once over kept-alive connections and once with a
//!   new connection per request; prints requests/s, latency p50/p99 and the server's CPU time
//!   per request;
//! - save → page: rewrites a subject template `BENCH_EDITS` times (default 10) while following
//!   `/events`, and times each save until the `change` event has arrived and the item shows
//!   the new subject. The preview polls template files every 250 ms, so that is the floor.
//!
//! Run by `cargo test --benches` (no `--bench` flag) it makes 20 requests and one edit as a
//! smoke test.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

#[path = "support/env.rs"]
mod env;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// The preview process; killed when dropped.
struct Preview {
    child: Child,
    base: String,
}

impl Drop for Preview {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_preview(templates: &Path) -> Preview {
    let bin = env::var("CALLNOTE_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_callnote").to_owned());
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let child = Command::new(&bin)
        .args(["preview", "--listen", &format!("127.0.0.1:{port}"), "--templates"])
        .arg(templates)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let preview = Preview { child, base: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the preview did not start listening within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    preview
}

fn client(keep_alive: bool) -> HttpClient {
    let mut builder = Client::builder(TokioExecutor::new());
    if !keep_alive {
        builder.pool_max_idle_per_host(0);
    }
    builder.build_http()
}

/// GETs `url`; the status and the body as text.
async fn get(client: &HttpClient, url: &str) -> (u16, String) {
    let response = client.get(url.parse().expect("a URL")).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.expect("the body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The id of the first sample voice mail in the item list.
async fn voicemail_id(client: &HttpClient, base: &str) -> String {
    let (status, body) = get(client, &format!("{base}/api/items")).await;
    assert_eq!(status, 200, "/api/items: {body}");
    let list: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let items = list["items"].as_array().expect("an item list");
    let voicemail = items.iter().find(|i| i["label"].as_str().is_some_and(|l| l.to_lowercase().contains("voice")));
    voicemail.or(items.first()).and_then(|i| i["id"].as_str()).expect("an item").to_owned()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// CPU time (user + system) the process `pid` has used so far, from `/proc/PID/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|t| t.parse::<u64>().ok()).sum());
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// `requests` GETs of `url` from `concurrency` clients; prints the rate, the latencies and
/// the server's CPU time per request (steadier than the rate on a shared machine).
async fn load(label: &str, server: u32, url: &str, requests: usize, concurrency: usize, keep_alive: bool) {
    let client = client(keep_alive);
    let cpu_before = cpu_time(server);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (client, url) = (client.clone(), url.to_owned());
        let share = requests / concurrency + usize::from(worker < requests % concurrency);
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::with_capacity(share);
            for _ in 0..share {
                let t = Instant::now();
                let (status, body) = get(&client, &url).await;
                assert_eq!(status, 200, "{url}: {body}");
                times.push(t.elapsed());
            }
            times
        }));
    }
    let mut times = Vec::with_capacity(requests);
    for task in tasks {
        times.extend(task.await.expect("a client task"));
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time(server).saturating_sub(cpu_before);
    times.sort();
    println!(
        "{label:<34} {:>7.0} requests/s   p50 {:>6.2} ms   p99 {:>6.2} ms   server CPU {:>5.0} us/request",
        times.len() as f64 / elapsed.as_secs_f64(),
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e6 / times.len() as f64,
    );
}

/// Waits for the next `event: change` on an open `/events` body.
async fn next_change(body: &mut hyper::body::Incoming, seen: &mut String) {
    loop {
        if let Some(at) = seen.find("event: change") {
            // Drop everything up to the end of this event.
            let end = seen[at..].find("\n\n").map_or(seen.len(), |e| at + e + 2);
            seen.drain(..end);
            return;
        }
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("a change event within 10 s")
            .expect("the stream is open")
            .expect("a frame");
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
}

/// Saves a new subject `edits` times; prints save → change event and save → new rendering.
async fn edits(base: &str, templates: &Path, id: &str, edits: usize) {
    let client = client(true);
    let events = client.get(format!("{base}/events").parse().expect("a URL")).await.expect("GET /events");
    assert_eq!(events.status().as_u16(), 200, "/events");
    let mut body = events.into_body();
    let mut seen = String::new();
    next_change(&mut body, &mut seen).await; // the generation now
    let subject = templates.join("voicemail/en/subject.txt");
    let (mut to_event, mut to_render) = (Vec::new(), Vec::new());
    for n in 0..edits {
        let marker = format!("Bench edit {n}");
        let saved = Instant::now();
        std::fs::write(&subject, format!("{marker}: voice mail")).expect("write the subject template");
        next_change(&mut body, &mut seen).await;
        to_event.push(saved.elapsed());
        let (status, view) = get(&client, &format!("{base}/api/item?id={id}")).await;
        assert!(status == 200 && view.contains(&marker), "the item after edit {n}: {view}");
        to_render.push(saved.elapsed());
        // Edits closer together than the poll interval would be seen as one.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for (label, mut times) in [("save -> change event", to_event), ("save -> new rendering fetched", to_render)] {
        times.sort();
        println!(
            "{label:<34} p50 {:>6.1} ms   max {:>6.1} ms   ({} edits)",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
            times.len()
        );
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let requests = if full { env::usize_or("BENCH_REQUESTS", 2_000) } else { 20 };
    let concurrency = env::usize_or("BENCH_CONCURRENCY", 4).max(1);
    let edit_count = if full { env::usize_or("BENCH_EDITS", 10) } else { 1 };

    let templates = tempfile::tempdir().expect("a temp folder");
    std::fs::create_dir_all(templates.path().join("voicemail/en")).expect("a template folder");
    std::fs::write(templates.path().join("voicemail/en/subject.txt"), "Voice mail").expect("a template");
    let preview = start_preview(templates.path());
    println!("preview: {} ({requests} requests, {concurrency} clients)", preview.base);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let id = voicemail_id(&client(false), &preview.base).await;
        let item = format!("{}/api/item?id={id}", preview.base);
        let html = format!("{}/html?id={id}", preview.base);
        let pid = preview.child.id();
        load("GET /api/item, kept-alive", pid, &item, requests, concurrency, true).await;
        load("GET /api/item, new connections", pid, &item, requests, concurrency, false).await;
        load("GET /html, kept-alive", pid, &html, requests, concurrency, true).await;
        load("GET /html, new connections", pid, &html, requests, concurrency, false).await;
        edits(&preview.base, templates.path(), &id, edit_count).await;
    });
}
