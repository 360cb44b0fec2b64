//! The long-running relay against the real SMTP server: files dropped while it runs are
//! delivered, a broken template edited in keeps the last good set serving, a good one is
//! picked up, SIGHUP reloads templates and the configuration (a moved mail server), `/metrics` and `/healthz` answer, SIGTERM ends it with
//! status 0.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Server, Spool, server, unique};

pub(super) fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args([name, &child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill {name} failed");
}

pub(super) fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The Subject of the message with `message_id` in the server's Maildir, once it is there.
fn subject_of(server: &Server, message_id: &str) -> Option<String> {
    for entry in std::fs::read_dir(server.maildir.join("new")).ok()? {
        let text = std::fs::read_to_string(entry.ok()?.path()).unwrap_or_default();
        let head = text.split("\r\n\r\n").next().unwrap_or("");
        if head.lines().any(|l| l.to_ascii_lowercase().starts_with("message-id:") && l.contains(message_id)) {
            return head.lines().find_map(|l| l.strip_prefix("Subject: ").map(str::to_owned));
        }
    }
    None
}

pub(super) fn log_count(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log).unwrap_or_default().matches(needle).count()
}

#[test]
fn the_service_delivers_while_running_reloads_templates_on_sighup_and_stops_on_sigterm() {
    let Some(server) = server() else { return };
    let spool = Spool::new("relay-svc", &server.port, 2);
    let mut config = std::fs::read_to_string(&spool.config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    config.push_str(&format!("rescan = \"500ms\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n"));
    std::fs::write(&spool.config, config).unwrap();
    let templates = spool.dir.parent().unwrap().join("templates");
    let subject = templates.join("missed_call/en/subject.txt");
    std::fs::create_dir_all(subject.parent().unwrap()).unwrap();
    let log = spool.dir.parent().unwrap().join("relay.log");

    let mut child = Command::new(env!("CARGO_BIN_EXE_callnote"))
        .args(["relay", "--config"])
        .arg(&spool.config)
        .arg("--templates")
        .arg(&templates)
        .env("RUST_LOG", "callnote=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for("start-up", || log_count(&log, "relay started") == 1);

    let drop_and_wait = |tag: &str| {
        let call_id = unique(tag);
        spool.drop_item(tag, &call_id, "hannah.whitaker@contoso.com", false);
        let message_id = spool.message_id(&call_id);
        let mut subject = None;
        wait_for(tag, || {
            subject = subject_of(&server, &message_id);
            subject.is_some()
        });
        (call_id, subject.unwrap())
    };
    let (_, first) = drop_and_wait("first");
    assert!(first.starts_with("Missed call from "), "{first}");

    // A template edited while it runs is picked up by itself; a broken one is refused.
    let edit = |text: &str| {
        let tmp = spool.dir.parent().unwrap().join("subject.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &subject).unwrap();
    };
    edit("{{ call_id | no_such_filter }}");
    wait_for("the refused reload", || log_count(&log, "keeping the configuration and templates in use") >= 1);
    let (_, second) = drop_and_wait("second");
    assert_eq!(second, first, "the last good set keeps serving");
    assert_eq!(log_count(&log, "templates reloaded"), 0);

    edit("Custom {{ call_id }}");
    wait_for("the reload", || log_count(&log, "templates reloaded") >= 1);
    let (call_id, third) = drop_and_wait("third");
    assert_eq!(third, format!("Custom {call_id}"));

    // SIGHUP reloads too.
    let reloads = log_count(&log, "templates reloaded");
    signal(&child, "-HUP");
    wait_for("the SIGHUP reload", || log_count(&log, "templates reloaded") > reloads);

    // A configuration change is picked up on SIGHUP too: the mail server "moves" to a
    // closed port, so a new item waits; moved back, it goes.
    let good = std::fs::read_to_string(&spool.config).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let moved = good.replace(&format!("127.0.0.1:{}\"", server.port), &format!("127.0.0.1:{closed}\""));
    assert_ne!(moved, good);
    let reload = |text: &str| {
        std::fs::write(&spool.config, text).unwrap();
        let reloads = log_count(&log, "templates reloaded");
        signal(&child, "-HUP");
        wait_for("the configuration reload", || log_count(&log, "templates reloaded") > reloads);
    };
    reload(&moved);
    let fourth = unique("fourth");
    spool.drop_item("fourth", &fourth, "hannah.whitaker@contoso.com", false);
    wait_for("the deferral", || {
        let list = spool.cli(&["queue", "list"]).1;
        list.lines().any(|l| l.contains(&format!("call {fourth}\t")) && l.contains("\tdeferred until "))
    });
    reload(&good);
    wait_for("the fourth message", || subject_of(&server, &spool.message_id(&fourth)).is_some());

    // /metrics counts what the passes did; /healthz answers while it runs.
    let get = |path: &str| {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    wait_for("the metrics", || get("/metrics").contains("\ncallnote_relay_items_total{outcome=\"delivered\"} 4\n"));
    let metrics = get("/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4"), "{metrics}");
    assert!(metrics.contains("\ncallnote_relay_items_total{outcome=\"parked\"} 0\n"), "{metrics}");
    assert!(get("/healthz").ends_with("\r\n\r\nok\n"));

    signal(&child, "-TERM");
    let mut status = None;
    wait_for("exit after SIGTERM", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.unwrap().code(), Some(0), "{}", std::fs::read_to_string(&log).unwrap());
    assert_eq!(spool.delivered(&server).len(), 4);
    assert_eq!((spool.ls("work").len(), spool.ls("archive").len()), (0, 4));
}
