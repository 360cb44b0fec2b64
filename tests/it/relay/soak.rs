//! The soak test: the long-running relay under mixed faults while files keep arriving, then
//! a backlog after a graceful restart. Built on the crash test's bookkeeping (every
//! Message-ID counted in the real server's Maildir, every resend matched to its journal
//! record).
//!
//! Faults (seeded, the seed printed): SIGKILL and restart at random moments; SIGHUP
//! reloads; one fault at a time for 1-3 s with 3-6 s of health between — the relay
//! reloaded onto a dead port and back, or a fault proxy in front of the real server turning
//! slow (each reply held back) or dropping new connections; recipients the real server
//! answers 451 once (greylisting), 451 always (parked when `max_age` runs out) or 550
//! (parked at once). It ends with everything
//! accepted once (more only for an item whose attempt a SIGKILL interrupted, marked
//! `resend` in the journal, under its first Message-ID) or parked with its reason; `queue
//! list` with nothing open or waiting; a clean SIGTERM; and the relay's RSS back near where
//! it started once the backlog has drained.
//!
//! `CALLNOTE_SOAK_SECS` (default 30) is the length of the fault phase, `CALLNOTE_SOAK_RATE`
//! (default 25) the files dropped per second, `CALLNOTE_SOAK_BACKLOG` (default 1,000) the
//! backlog of the memory phase. The numbers are printed at the end.

use std::collections::{HashMap, HashSet};
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use callnote::spool::State;

use super::service::{log_count, signal};

/// Counts log lines as the log grows, reading only what was appended since the last call
/// (the log of a long run is large).
struct LogScan {
    offset: u64,
    partial: Vec<u8>,
    started: usize,
    reloaded: usize,
}

impl LogScan {
    fn update(&mut self, log: &Path) {
        use std::io::{Seek as _, SeekFrom};
        let Ok(mut file) = std::fs::File::open(log) else { return };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut fresh = Vec::new();
        let Ok(n) = file.read_to_end(&mut fresh) else { return };
        self.offset += n as u64;
        self.partial.extend_from_slice(&fresh);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let whole: Vec<u8> = self.partial.drain(..=end).collect();
        let text = String::from_utf8_lossy(&whole);
        self.started += text.matches("relay started").count();
        self.reloaded += text.matches("configuration and templates reloaded").count();
    }
}
use super::{Rng, Spool, server};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What the real server is asked to do with an item's recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Missed,
    Voicemail,
    /// 451 on the first RCPT, 250 after.
    Greylist,
    /// 451 always: parked once `max_age` runs out.
    Tempfail,
    /// 550: parked at once.
    Rejected,
}

struct Item {
    name: String,
    call_id: String,
    kind: Kind,
}

/// A proxy in front of the real server: passes bytes through, holds each reply back
/// (slow), or drops new connections (before a message can be accepted, so a drop never
/// makes a duplicate).
struct FaultProxy {
    port: u16,
    mode: Arc<AtomicU8>,
}

/// The fault under way in the fault phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Slow,
    Drop,
    /// The relay reloaded onto a closed port.
    Dead,
}

const PASS: u8 = 0;
const SLOW: u8 = 1;
const DROP: u8 = 2;

impl FaultProxy {
    fn start(upstream: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(PASS));
        let m = mode.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if m.load(Ordering::SeqCst) == DROP {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let slow = m.clone();
                std::thread::spawn(move || pipe(client, server, None));
                std::thread::spawn(move || pipe(s2, c2, Some(slow)));
            }
        });
        FaultProxy { port, mode }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until either end closes; with `slow` set to [`SLOW`], each chunk
/// waits 150 ms first.
fn pipe(mut from: TcpStream, mut to: TcpStream, slow: Option<Arc<AtomicU8>>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if slow.as_ref().is_some_and(|m| m.load(Ordering::SeqCst) == SLOW) {
            std::thread::sleep(Duration::from_millis(150));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// Resident set size of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()
}

/// The last lines of the relay's log, for a failure message.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The relay processes of the run, one at a time, logging into one file.
struct Service<'a> {
    spool: &'a Spool,
    log: &'a Path,
    child: Child,
    starts: usize,
    scan: LogScan,
}

impl<'a> Service<'a> {
    fn start(spool: &'a Spool, log: &'a Path) -> Service<'a> {
        let child = Self::spawn(spool, log);
        let scan = LogScan { offset: 0, partial: Vec::new(), started: 0, reloaded: 0 };
        let mut service = Service { spool, log, child, starts: 1, scan };
        service.wait_started();
        service
    }

    fn spawn(spool: &Spool, log: &Path) -> Child {
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        Command::new(env!("CARGO_BIN_EXE_callnote"))
            .args(["relay", "--config"])
            .arg(&spool.config)
            .env("RUST_LOG", "callnote=info")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap()
    }

    /// Waits for the `relay started` line of the current process (signals before it would
    /// find no handler: SIGHUP would end the process).
    fn wait_started(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while {
            self.scan.update(self.log);
            self.scan.started < self.starts
        } {
            assert!(Instant::now() < deadline, "relay start {} timed out:\n{}", self.starts, tail(self.log));
            assert!(self.child.try_wait().unwrap().is_none(), "the relay exited at start-up:\n{}", tail(self.log));
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = Self::spawn(self.spool, self.log);
        self.starts += 1;
        self.wait_started();
    }

    /// SIGTERM, then waits for the exit; returns its status code.
    fn stop(&mut self) -> Option<i32> {
        signal(&self.child, "-TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn restart_gracefully(&mut self) {
        assert_eq!(self.stop(), Some(0), "a graceful stop exits 0");
        self.child = Self::spawn(self.spool, self.log);
        self.starts += 1;
        self.wait_started();
    }

    /// Writes `config` and sends SIGHUP; waits until the reload is logged.
    fn reload(&mut self, config: &str) {
        std::fs::write(&self.spool.config, config).unwrap();
        self.scan.update(self.log);
        let before = self.scan.reloaded;
        signal(&self.child, "-HUP");
        let deadline = Instant::now() + Duration::from_secs(30);
        while {
            self.scan.update(self.log);
            self.scan.reloaded <= before
        } {
            assert!(Instant::now() < deadline, "reload not logged; the log ends:\n{}", tail(self.log));
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn rss(&self) -> Option<u64> {
        rss_kib(self.child.id())
    }
}

/// Every journal record, the rotated journals (`journal.<ns>.jsonl`) first.
fn all_records(spool: &Spool) -> Vec<callnote::spool::Record> {
    let state = spool.dir.join("state");
    let mut files: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("journal.") && n.ends_with(".jsonl") && n != "journal.jsonl")
        .collect();
    files.sort();
    files.push("journal.jsonl".to_owned());
    let mut out = Vec::new();
    for file in files {
        callnote::spool::journal::replay(&state.join(file), |r| out.push(r)).unwrap();
    }
    out
}

/// `queue list` lines that are not parked files: what is still open or waiting.
fn unfinished(spool: &Spool) -> Vec<String> {
    let (code, list, stderr) = spool.cli(&["queue", "list"]);
    assert_eq!(code, 0, "{stderr}");
    list.lines().filter(|l| !l.starts_with("parked\t")).map(str::to_owned).collect()
}

fn wait_drained(spool: &Spool, within: Duration, mut sample: impl FnMut()) {
    let deadline = Instant::now() + within;
    loop {
        let left = unfinished(spool);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "not drained: {} left, e.g. {:?}", left.len(), &left[..left.len().min(5)]);
        sample();
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn under_mixed_faults_every_file_is_accepted_once_or_parked_and_memory_comes_back() {
    let Some(server) = server() else { return };
    let secs = env_number("CALLNOTE_SOAK_SECS", 30);
    let rate = env_number("CALLNOTE_SOAK_RATE", 25).max(1);
    let backlog = env_number("CALLNOTE_SOAK_BACKLOG", 1_000) as usize;
    let max_age = 20;
    let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut rng = Rng(seed);

    let spool = Spool::new("relay-soak", &server.port, 8);
    let proxy = FaultProxy::start(server.port.parse().unwrap());
    let metrics_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = std::fs::read_to_string(&spool.config)
        .unwrap()
        .replace("max_age = \"1h\"", &format!("max_age = \"{max_age}s\""))
        .replace("max_backoff = \"200ms\"", "max_backoff = \"1s\"")
        + &format!("rescan = \"1s\"\n[server]\nlisten = \"127.0.0.1:{metrics_port}\"\n");
    let at_port = |port: u16| base.replace(&format!("127.0.0.1:{}\"", server.port), &format!("127.0.0.1:{port}\""));
    let (good, dead) = (at_port(proxy.port), at_port(dead_port));
    assert!(good != base && dead != good);
    std::fs::write(&spool.config, &good).unwrap();
    let log = spool.dir.parent().unwrap().join("relay.log");

    let items: Mutex<Vec<Item>> = Mutex::default();
    let drop_one = |n: usize, rng: &mut Rng| {
        let kind = match rng.below(100) {
            0..=79 => Kind::Missed,
            80..=89 => Kind::Voicemail,
            90..=94 => Kind::Greylist,
            95..=96 => Kind::Tempfail,
            _ => Kind::Rejected,
        };
        let tag = format!("soak-{seed:x}-{n:06}");
        let recipient = match kind {
            Kind::Missed | Kind::Voicemail => "hannah.whitaker@contoso.com".to_owned(),
            Kind::Greylist => format!("greylist-{tag}@contoso.com"),
            Kind::Tempfail => format!("tempfail-{tag}@contoso.com"),
            Kind::Rejected => format!("rejected-{tag}@contoso.com"),
        };
        let name = format!("item{n:06}");
        spool.drop_item(&name, &tag, &recipient, kind == Kind::Voicemail);
        items.lock().unwrap().push(Item { name, call_id: tag, kind });
    };

    let mut service = Service::start(&spool, &log);
    std::thread::sleep(Duration::from_millis(500));
    let rss_first = service.rss().unwrap();
    let mut rss_peak = rss_first;
    let (mut kills, mut reloads, mut dead_spells, mut slow_spells, mut drop_spells) = (0, 0, 0, 0, 0);

    // The fault phase: arrivals on one thread, faults on this one.
    let started = Instant::now();
    let arriving = AtomicBool::new(true);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut rng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
            let mut n = 0;
            let every = Duration::from_secs(1) / rate as u32;
            let mut next = Instant::now();
            while arriving.load(Ordering::SeqCst) {
                // Now and then a burst: a backlog builds while a fault lasts.
                let burst = if rng.below(200) == 0 { rate as usize * 5 } else { 1 };
                for _ in 0..burst {
                    drop_one(n, &mut rng);
                    n += 1;
                }
                next += every * burst as u32;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        });
        // Faults come one at a time, 1-3 s each, with 3-6 s of health after each: an item
        // retried every second at most always meets a healthy server well before
        // `max_age`, so only the 451-always and 550 recipients end parked.
        let ms = |rng: &mut Rng, from: u64, to: u64| Duration::from_millis(from + rng.below(to - from));
        let mut next_kill = Instant::now() + ms(&mut rng, 3_000, 9_000);
        let mut next_reload = Instant::now() + ms(&mut rng, 2_000, 6_000);
        let mut fault = Fault::None;
        let mut fault_until = Instant::now() + ms(&mut rng, 3_000, 6_000);
        while started.elapsed() < Duration::from_secs(secs) {
            std::thread::sleep(Duration::from_millis(100));
            rss_peak = rss_peak.max(service.rss().unwrap_or(0));
            if Instant::now() >= next_kill {
                // A restarted relay reads the configuration as it is on disk.
                service.kill_and_restart();
                kills += 1;
                next_kill = Instant::now() + ms(&mut rng, 3_000, 10_000);
            }
            if Instant::now() >= fault_until {
                fault = match fault {
                    Fault::None => match rng.below(3) {
                        0 => {
                            proxy.set(SLOW);
                            slow_spells += 1;
                            Fault::Slow
                        }
                        1 => {
                            proxy.set(DROP);
                            drop_spells += 1;
                            Fault::Drop
                        }
                        _ => {
                            service.reload(&dead);
                            reloads += 1;
                            dead_spells += 1;
                            Fault::Dead
                        }
                    },
                    Fault::Slow | Fault::Drop => {
                        proxy.set(PASS);
                        Fault::None
                    }
                    Fault::Dead => {
                        service.reload(&good);
                        reloads += 1;
                        Fault::None
                    }
                };
                fault_until = match fault {
                    Fault::None => Instant::now() + ms(&mut rng, 3_000, 6_000),
                    _ => Instant::now() + ms(&mut rng, 1_000, 3_000),
                };
            }
            if Instant::now() >= next_reload {
                // A reload that changes nothing (or keeps the dead port during a dead spell).
                service.reload(if fault == Fault::Dead { &dead } else { &good });
                reloads += 1;
                next_reload = Instant::now() + ms(&mut rng, 2_000, 6_000);
            }
        }
        arriving.store(false, Ordering::SeqCst);
    });

    // Faults off; everything drains (the 451-always items are parked at max_age).
    proxy.set(PASS);
    service.reload(&good);
    reloads += 1;
    let fault_phase = started.elapsed();
    wait_drained(&spool, Duration::from_secs(max_age + 120), || {
        rss_peak = rss_peak.max(service.rss().unwrap_or(0));
    });
    let drained_after = started.elapsed() - fault_phase;

    // The memory phase: a graceful restart, a few items to warm it up (caches, pooled
    // connections), then a backlog dropped at once.
    service.restart_gracefully();
    let mut rng = Rng(seed ^ 0x5555);
    let warm_up = items.lock().unwrap().len();
    for n in warm_up..warm_up + 20 {
        drop_one(n, &mut rng);
    }
    wait_drained(&spool, Duration::from_secs(max_age + 60), || {});
    std::thread::sleep(Duration::from_secs(4));
    let rss_start = service.rss().unwrap();
    let first_backlog_item = items.lock().unwrap().len();
    for n in first_backlog_item..first_backlog_item + backlog {
        drop_one(n, &mut rng);
    }
    let backlog_started = Instant::now();
    let mut rss_backlog_peak = rss_start;
    wait_drained(&spool, Duration::from_secs(max_age + 300), || {
        rss_backlog_peak = rss_backlog_peak.max(service.rss().unwrap_or(0));
    });
    let backlog_secs = backlog_started.elapsed().as_secs_f64();
    // The service gives memory back once a busy spell is over (2 s without work).
    std::thread::sleep(Duration::from_secs(4));
    let rss_end = (0..6)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(500));
            service.rss().unwrap()
        })
        .min()
        .unwrap();
    rss_peak = rss_peak.max(rss_backlog_peak);

    let metrics = {
        let mut s = TcpStream::connect(("127.0.0.1", metrics_port)).unwrap();
        write!(s, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    assert!(metrics.contains("\ncallnote_relay_open_items 0\n"), "{metrics}");
    assert_eq!(service.stop(), Some(0), "the final SIGTERM ends the relay cleanly");

    // Every input accepted once (or resent in the window), or parked with its reason.
    let items = items.into_inner().unwrap();
    let delivered = spool.delivered(&server);
    let records = all_records(&spool);
    let resent: HashSet<&str> = records
        .iter()
        .filter_map(|r| match &r.state {
            State::Attempt { message_id, resend: true, .. } => Some(message_id.as_str()),
            _ => None,
        })
        .collect();
    let mut call_of_item: HashMap<&str, &str> = HashMap::new();
    let mut sent_per_call: HashMap<&str, usize> = HashMap::new();
    for r in &records {
        match &r.state {
            State::Attempt { call_id, .. } => {
                call_of_item.insert(&r.item, call_id);
            }
            State::Sent { .. } => *sent_per_call.entry(call_of_item[r.item.as_str()]).or_default() += 1,
            _ => {}
        }
    }
    let parked: HashMap<String, String> = std::fs::read_dir(spool.dir.join("failed"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let header = name.strip_suffix(".txt.error.txt")?.to_owned();
            let text = std::fs::read_to_string(spool.dir.join("failed").join(&name)).unwrap();
            Some((header, text.lines().next().unwrap().to_owned()))
        })
        .collect();
    let (mut duplicates, mut parked_count) = (0, 0);
    let mut problems: Vec<String> = Vec::new();
    for item in &items {
        let message_id = spool.message_id(&item.call_id);
        let n = delivered.get(&message_id).copied().unwrap_or(0);
        match item.kind {
            Kind::Tempfail | Kind::Rejected => {
                let expected = if item.kind == Kind::Rejected { " 550 " } else { "gave up after " };
                match parked.get(&item.name) {
                    _ if n > 0 => problems.push(format!("{}: refused by the server, yet delivered", item.name)),
                    Some(reason) if reason.contains(expected) => parked_count += 1,
                    other => problems.push(format!("{} ({:?}): parked with {other:?}", item.name, item.kind)),
                }
            }
            _ if n == 0 => {
                problems.push(format!("{} ({:?}) was never delivered; parked: {:?}", item.name, item.kind, parked.get(&item.name)))
            }
            _ => {
                if sent_per_call.get(item.call_id.as_str()) != Some(&1) {
                    problems.push(format!("{}: not exactly one `sent` record", item.name));
                }
                if n > 1 {
                    duplicates += 1;
                    if !resent.contains(message_id.as_str()) {
                        problems.push(format!("{} arrived {n} times but no crash interrupted its attempt", item.name));
                    }
                }
            }
        }
    }
    if parked.len() != parked_count {
        problems.push(format!("{} parked, {parked_count} of them expected", parked.len()));
    }
    let work = spool.ls("work");
    let left = unfinished(&spool);
    // A pass is logged at info only when it handled items.
    let passes_logged = log_count(&log, "pass done");

    eprintln!(
        "soak (seed {seed:x}): {} s of faults at {rate}/s, {} items ({backlog} of them the final backlog); \
         {kills} SIGKILLs, {reloads} reloads ({dead_spells} to a dead port), {slow_spells} slow and {drop_spells} dropping spells, \
         {} starts; drained {:.1} s after the faults, backlog drained in {backlog_secs:.1} s; \
         {} resent after an interrupted attempt, {duplicates} delivered twice, {parked_count} parked; \
         {passes_logged} passes logged; RSS first {} MiB, peak {} MiB; memory phase: start {} MiB, peak {} MiB, end {} MiB; \
         {} problems",
        secs,
        items.len(),
        service.starts,
        drained_after.as_secs_f64(),
        resent.len(),
        rss_first / 1024,
        rss_peak / 1024,
        rss_start / 1024,
        rss_backlog_peak / 1024,
        rss_end / 1024,
        problems.len(),
    );
    assert_eq!(problems, Vec::<String>::new());
    assert_eq!(work, Vec::<String>::new());
    assert_eq!(left, Vec::<String>::new(), "queue list: nothing open or waiting");
    assert!(passes_logged <= items.len() * 3, "{passes_logged} passes logged for {} items", items.len());
    let grown = rss_backlog_peak.saturating_sub(rss_start);
    assert!(
        rss_end <= rss_start + grown / 4 + 8 * 1024,
        "RSS not back after the backlog: start {rss_start} KiB, peak {rss_backlog_peak} KiB, end {rss_end} KiB"
    );
}
