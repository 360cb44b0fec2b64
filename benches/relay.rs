//! Relay benchmark: the production path (`own` spool: claim, journal and archive with
//! every fsync, parse, directory, render, compose, SMTP) against an SMTP sink on loopback,
//! and beside it Postfix relaying the same messages to the same sink on the same disk.
//!
//! ```text
//! cargo bench --bench relay                      # spool and Postfix queue on the disk (temp folder)
//! BENCH_DIR=/dev/shm cargo bench --bench relay   # on tmpfs: callnote's own cost, no disk
//! BENCH_SIZES=1000,10000,100000 cargo bench --bench relay
//! ```
//!
//! Two measurements, each `BENCH_PASSES` times (default 3; printed as median (min–max)):
//! 1. **Backlog drain**: for each size in `BENCH_SIZES` (default 1,000 and 10,000) the
//!    backlog is written first, then one relay pass drains it. Prints messages/s, claim -> 250
//!    p50/p99 (one item's own work) and the peak heap during the drain (flat = memory does not
//!    grow with the backlog).
//! 2. **Steady arrival**: the relay runs as the service does (`relay::service::serve`:
//!    file-system events, rescans) while files appear at `BENCH_RATE` per second (default
//!    500) for `BENCH_SECS` seconds (default 5). Prints file appearing -> 250 p50/p99: the
//!    latency a user sees.
//!
//! **Postfix** (when installed and run as root; `BENCH_POSTFIX=0` skips it): a private
//! instance started by `scripts/bench-postfix.sh` with its queue in the same folder as the
//! spool, durability as shipped (the queue file is fsynced before its 250), relayhost = the
//! sink. The same items, prepared by callnote's pipeline into the same messages, are handed
//! to it over SMTP by `BENCH_CONCURRENCY` clients: for the drain as fast as it takes them
//! (messages/s from the first hand-over to the last arrival at the sink), for the steady
//! arrival at `BENCH_RATE` (hand-over -> arrival at the sink).
//!
//! Every fifth item is a voicemail with its 0.5 s WAV side file, the rest missed calls. The
//! sink ([`sink`]) accepts and discards; every run checks that the sink received every
//! item's Message-ID exactly once (count and a sum of hashes, so the check itself keeps
//! no per-message memory). `BENCH_CONCURRENCY` (default 8) is `[spool] concurrency`. Run by
//! `cargo test --benches` (no `--bench` flag) it is a smoke test: 20 items each way, one
//! pass, no Postfix.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callnote::config::{Config, SpoolMode};
use callnote::deliver::Outgoing;
use callnote::pipeline::{Outcome, Pipeline};
use callnote::relay::Relay;
use callnote::relay::service::{ServiceOptions, serve};
use callnote::spool::{State, SystemClock, journal};
use jiff::Timestamp;

#[path = "support/counting.rs"]
mod counting;
#[path = "support/env.rs"]
mod env;
#[path = "support/postfix.rs"]
mod postfix;
#[path = "support/sink.rs"]
mod sink;

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The inputs every item is made from.
#[derive(Clone)]
struct Corpus {
    root: PathBuf,
    missed: String,
    voicemail: String,
    wav: PathBuf,
    /// Unique per process, so call ids (and Message-IDs) never repeat across runs.
    run: String,
}

impl Corpus {
    fn load() -> Corpus {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let read = |name: &str| std::fs::read_to_string(root.join("tests/fixtures").join(name)).expect("fixture");
        Corpus {
            missed: read("mc-legacy-blog-shape.txt"),
            voicemail: read("vm-legacy-blog-shape.txt"),
            wav: root.join("tests/fixtures/575a75dc-3e35-4640-97c2-4c7f3f274236.wav"),
            run: format!("{:x}", Timestamp::now().as_microsecond()),
            root,
        }
    }

    fn call_id(&self, batch: &str, i: usize) -> String {
        format!("bench-{}-{batch}-{i:06}", self.run)
    }

    /// The Message-ID of item `i`'s notification: both fixtures are for Hannah Whitaker;
    /// every fifth item is a voicemail (see [`Corpus::add`]).
    fn message_id(&self, batch: &str, i: usize, from: &lettre::message::Mailbox) -> String {
        let kind = if i.is_multiple_of(5) { callnote::Kind::Voicemail } else { callnote::Kind::MissedCall };
        let call_id = self.call_id(batch, i);
        callnote::compose::NotificationId { call_id: &call_id, recipient: "hannah.whitaker@contoso.com", kind }.message_id(from)
    }

    /// Puts item `i` into `spool` as a producer does: side file first, then the header
    /// written elsewhere and renamed in. Returns the header's name.
    fn add(&self, spool: &Path, staging: &Path, batch: &str, i: usize) -> String {
        let name = format!("{batch}{i:06}.txt");
        let call_id = self.call_id(batch, i);
        let text = if i.is_multiple_of(5) {
            let side = format!("{batch}{i:06}.wav");
            std::fs::copy(&self.wav, spool.join(&side)).expect("side file");
            self.voicemail
                .replace("1c941dfb-9165-4438-930c-f7e266e92d98", &call_id)
                .replace("575a75dc-3e35-4640-97c2-4c7f3f274236.wav", &side)
        } else {
            self.missed.replace("6e838afc-7d1a-4ad5-b1e3-fde1990e11e7", &call_id)
        };
        let staged = staging.join(&name);
        std::fs::write(&staged, text).expect("header");
        std::fs::rename(&staged, spool.join(&name)).expect("rename into the spool");
        name
    }
}

/// Order-independent fingerprint of a set of Message-IDs, as the sink keeps it: count and
/// wrapping sum of hashes.
fn fingerprint<'a>(ids: impl Iterator<Item = &'a str>, hasher: &RandomState) -> (usize, u64) {
    ids.fold((0, 0u64), |(n, sum), id| (n + 1, sum.wrapping_add(hasher.hash_one(id))))
}

/// A spool folder with its configuration and the relay's parts.
struct Setup {
    _tmp: tempfile::TempDir,
    spool: PathBuf,
    staging: PathBuf,
    config: Config,
}

fn setup(base: Option<&str>, sink: std::net::SocketAddr, concurrency: usize, corpus: &Corpus) -> Setup {
    let tmp = match base {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .expect("a temp folder");
    let spool = tmp.path().join("spool");
    let staging = tmp.path().join("staging");
    std::fs::create_dir(&spool).expect("the spool folder");
    std::fs::create_dir(&staging).expect("the staging folder");
    let toml = format!(
        "[directory]\nsource = {:?}\n[mail]\nfrom = \"Voice Mail <vm@relay-bench.test>\"\n\
         [delivery]\nurl = \"smtp://{sink}\"\nstarttls = \"off\"\npool_size = {concurrency}\n\
         [spool]\ndir = {spool:?}\nconcurrency = {concurrency}\nafter_send = \"remove\"\n",
        corpus.root.join("examples/directory.ldif"),
    );
    let config = Config::from_toml(&toml, &tmp.path().join("callnote.toml")).expect("a valid configuration");
    Setup { _tmp: tmp, spool, staging, config }
}

/// The pipeline a relay on `setup` runs: its configuration, the built-in templates and the
/// example directory.
fn pipeline(setup: &Setup, corpus: &Corpus) -> Arc<Pipeline> {
    let config = setup.config.clone();
    let directory = callnote::enrich::directory::load_file(&corpus.root.join("examples/directory.ldif"), &config.dialplan)
        .expect("the example directory");
    Arc::new(Pipeline::new(config, callnote::render::Templates::builtin(), Some(Arc::new(directory)), None))
}

/// The transport `setup`'s `[delivery]` names.
fn transport(setup: &Setup) -> Arc<dyn callnote::deliver::Deliver> {
    let delivery = setup.config.delivery.clone().expect("delivery is configured");
    Arc::from(callnote::deliver::from_settings(&delivery).expect("a transport"))
}

fn open_relay(setup: &Setup, corpus: &Corpus) -> Relay {
    let settings = setup.config.spool.clone();
    Relay::open(pipeline(setup, corpus), transport(setup), &setup.spool, SpoolMode::Own, &settings, Arc::new(SystemClock))
        .expect("the relay opens")
}

/// Milliseconds from each header's appearance, and from each claim, to the `sent` record.
fn latencies(journal_path: &Path, appeared: &HashMap<String, Timestamp>) -> (Vec<f64>, Vec<f64>) {
    let (mut names, mut claimed) = (HashMap::new(), HashMap::new());
    let (mut from_appearing, mut from_claim) = (Vec::new(), Vec::new());
    journal::replay(journal_path, |r| match r.state {
        State::Claimed { name } => {
            names.insert(r.item.clone(), name);
            claimed.insert(r.item, r.at);
        }
        State::Sent { .. } => {
            let ms = |from: Timestamp| r.at.duration_since(from).as_secs_f64() * 1000.0;
            if let Some(at) = names.get(&r.item).and_then(|n| appeared.get(n)) {
                from_appearing.push(ms(*at));
            }
            if let Some(at) = claimed.get(&r.item) {
                from_claim.push(ms(*at));
            }
        }
        _ => {}
    })
    .expect("the journal reads");
    from_appearing.sort_by(f64::total_cmp);
    from_claim.sort_by(f64::total_cmp);
    (from_appearing, from_claim)
}

/// Waits until the sink has `count` messages (or a minute passed).
fn wait_for(received: &sink::Received, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.count() < count && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `median (min–max)` of `values`, with `digits` decimals.
fn spread(values: &[f64], digits: usize) -> String {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match (v.first(), v.last()) {
        (Some(lo), Some(hi)) if v.len() > 1 => format!("{:.digits$} ({lo:.digits$}–{hi:.digits$})", percentile(&v, 0.5)),
        (Some(only), _) => format!("{only:.digits$}"),
        _ => "-".into(),
    }
}

/// What the bench shares across measurements.
struct Bench {
    corpus: Corpus,
    runtime: tokio::runtime::Runtime,
    received: Arc<sink::Received>,
    sink: std::net::SocketAddr,
    base: Option<String>,
    concurrency: usize,
    from: lettre::message::Mailbox,
    /// Every Message-ID the sink must have received, once each.
    expected: Vec<String>,
}

/// One drain: messages/s, claim -> 250 p50 and p99 (ms), peak heap (MiB).
struct Drain {
    rate: f64,
    p50: f64,
    p99: f64,
    heap: f64,
}

/// Latencies of one steady run (ms): p50, p99, max; for callnote also claim -> 250 p50 and
/// p99 (the rest of the wait is before the claim).
struct Steady {
    p50: f64,
    p99: f64,
    max: f64,
    claim_p50: f64,
    claim_p99: f64,
}

impl Steady {
    fn of(sorted: &[f64], from_claim: &[f64]) -> Steady {
        Steady {
            p50: percentile(sorted, 0.5),
            p99: percentile(sorted, 0.99),
            max: sorted.last().copied().unwrap_or(0.0),
            claim_p50: percentile(from_claim, 0.5),
            claim_p99: percentile(from_claim, 0.99),
        }
    }
}

impl Bench {
    fn setup(&self, smtp: std::net::SocketAddr) -> Setup {
        setup(self.base.as_deref(), smtp, self.concurrency, &self.corpus)
    }

    /// Writes `items` items of `batch` into the spool of `setup` and expects them at the sink.
    fn fill(&mut self, setup: &Setup, batch: &str, items: usize) {
        for i in 0..items {
            self.corpus.add(&setup.spool, &setup.staging, batch, i);
            self.expected.push(self.corpus.message_id(batch, i, &self.from));
        }
    }

    /// callnote drains a backlog of `items` written before it starts.
    fn drain_callnote(&mut self, batch: &str, items: usize) -> Drain {
        let setup = self.setup(self.sink);
        self.fill(&setup, batch, items);
        let relay = open_relay(&setup, &self.corpus);
        let before = self.received.count();
        counting::reset_peak();
        let heap_before = counting::live();
        let start = Instant::now();
        let report = self.runtime.block_on(relay.pass(None)).expect("the pass runs");
        let took = start.elapsed().as_secs_f64();
        let peak = counting::peak().saturating_sub(heap_before);
        assert_eq!(report.delivered, items, "every item delivered: {report:?}");
        assert_eq!(self.received.count() - before, items, "the sink received every item");
        let (_, from_claim) = latencies(relay.journal_path(), &HashMap::new());
        Drain {
            rate: items as f64 / took.max(1e-9),
            p50: percentile(&from_claim, 0.5),
            p99: percentile(&from_claim, 0.99),
            heap: peak as f64 / (1024.0 * 1024.0),
        }
    }

    /// The same items as callnote's, prepared by callnote's pipeline into the messages
    /// callnote would send, ready to hand to Postfix.
    fn prepared(&mut self, postfix: &postfix::Postfix, batch: &str, items: usize) -> (Setup, Vec<(String, Outgoing)>) {
        let setup = self.setup(postfix.addr);
        self.fill(&setup, batch, items);
        let pipeline = pipeline(&setup, &self.corpus);
        let mails = (0..items)
            .map(|i| {
                let header = setup.spool.join(format!("{batch}{i:06}.txt"));
                let Ok(Outcome::Prepared(p)) = pipeline.prepare_file(&header) else { panic!("{} prepares", header.display()) };
                (self.corpus.message_id(batch, i, &self.from), Outgoing::new(&p.message, "bench"))
            })
            .collect();
        (setup, mails)
    }

    /// Postfix relays `items` messages handed to it over SMTP by `concurrency` clients as
    /// fast as it takes them: messages/s from the first hand-over to the last arrival at the
    /// sink, and hand-over -> sink p50 and p99.
    fn drain_postfix(&mut self, postfix: &postfix::Postfix, batch: &str, items: usize) -> Drain {
        let (setup, mails) = self.prepared(postfix, batch, items);
        let transport = transport(&setup);
        let before = self.received.count();
        self.received.track();
        let workers = self.concurrency;
        let start = Instant::now();
        let handed: Vec<(String, Instant)> = self.runtime.block_on(async {
            let mails = Arc::new(mails);
            let tasks: Vec<_> = (0..workers)
                .map(|w| {
                    let (mails, transport) = (mails.clone(), transport.clone());
                    tokio::spawn(async move {
                        let mut handed = Vec::new();
                        for (id, mail) in mails.iter().skip(w).step_by(workers) {
                            let at = Instant::now();
                            transport.deliver(mail).await.expect("Postfix takes the message");
                            handed.push((id.clone(), at));
                        }
                        handed
                    })
                })
                .collect();
            let mut all = Vec::new();
            for task in tasks {
                all.extend(task.await.expect("a sender"));
            }
            all
        });
        wait_for(&self.received, before + items);
        let took = start.elapsed().as_secs_f64();
        assert_eq!(self.received.count() - before, items, "the sink received every message Postfix took");
        let lat = sink_latencies(&handed, &self.received.arrivals());
        Drain { rate: items as f64 / took.max(1e-9), p50: percentile(&lat, 0.5), p99: percentile(&lat, 0.99), heap: 0.0 }
    }

    /// callnote's service while files appear at `rate` per second for `secs` seconds:
    /// file appearing -> 250.
    fn steady_callnote(&mut self, batch: &str, rate: usize, secs: usize) -> Steady {
        let setup = self.setup(self.sink);
        let relay = open_relay(&setup, &self.corpus);
        let items = rate * secs;
        let before = self.received.count();
        let producer = {
            let (spool, staging) = (setup.spool.clone(), setup.staging.clone());
            let corpus = self.corpus.clone();
            let received = self.received.clone();
            let batch = batch.to_owned();
            std::thread::spawn(move || {
                let mut appeared = HashMap::with_capacity(items);
                let start = Instant::now();
                for i in 0..items {
                    pace(start, i, rate);
                    let name = corpus.add(&spool, &staging, &batch, i);
                    appeared.insert(name, Timestamp::now());
                }
                wait_for(&received, before + items);
                // The service stops on SIGTERM, as under systemd.
                let _ = std::process::Command::new("kill").args(["-s", "TERM", &std::process::id().to_string()]).status();
                appeared
            })
        };
        let options =
            ServiceOptions { dir: setup.spool.clone(), rescan: Duration::from_secs(2), templates_dir: None, reload: None, listen: None };
        self.runtime.block_on(serve(&relay, options)).expect("the service runs");
        let appeared = producer.join().expect("the producer");
        self.expected.extend((0..items).map(|i| self.corpus.message_id(batch, i, &self.from)));
        assert_eq!(self.received.count() - before, items, "the sink received every streamed item");
        let (from_appearing, from_claim) = latencies(relay.journal_path(), &appeared);
        assert_eq!(from_appearing.len(), items, "every streamed item has a sent record");
        Steady::of(&from_appearing, &from_claim)
    }

    /// Postfix while messages are handed to it at `rate` per second for `secs` seconds:
    /// hand-over -> arrival at the sink.
    fn steady_postfix(&mut self, postfix: &postfix::Postfix, batch: &str, rate: usize, secs: usize) -> Steady {
        let items = rate * secs;
        let (setup, mails) = self.prepared(postfix, batch, items);
        let transport = transport(&setup);
        let before = self.received.count();
        self.received.track();
        let handed: Vec<(String, Instant)> = self.runtime.block_on(async {
            let start = Instant::now();
            let mut tasks = Vec::with_capacity(items);
            for (i, (id, mail)) in mails.into_iter().enumerate() {
                let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
                let transport = transport.clone();
                tasks.push(tokio::spawn(async move {
                    let at = Instant::now();
                    transport.deliver(&mail).await.expect("Postfix takes the message");
                    (id, at)
                }));
            }
            let mut all = Vec::with_capacity(items);
            for task in tasks {
                all.push(task.await.expect("a sender"));
            }
            all
        });
        wait_for(&self.received, before + items);
        assert_eq!(self.received.count() - before, items, "the sink received every message Postfix took");
        Steady::of(&sink_latencies(&handed, &self.received.arrivals()), &[])
    }
}

/// Sleeps until item `i` of a stream at `rate` per second that began at `start` is due.
fn pace(start: Instant, i: usize, rate: usize) {
    let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
    if let Some(wait) = due.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
}

/// Milliseconds from each hand-over to the arrival of that Message-ID at the sink, sorted.
fn sink_latencies(handed: &[(String, Instant)], arrivals: &HashMap<String, Instant>) -> Vec<f64> {
    let mut ms: Vec<f64> = handed
        .iter()
        .map(|(id, at)| {
            let arrived = arrivals.get(id).unwrap_or_else(|| panic!("{id} arrived at the sink"));
            arrived.saturating_duration_since(*at).as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = if benching {
        env::var("BENCH_SIZES").unwrap_or_else(|| "1000,10000".into()).split(',').filter_map(|s| s.trim().parse().ok()).collect()
    } else {
        vec![20]
    };
    let (rate, secs) = if benching { (env::usize_or("BENCH_RATE", 500), env::usize_or("BENCH_SECS", 5)) } else { (50, 1) };
    let passes = if benching { env::usize_or("BENCH_PASSES", 3).max(1) } else { 1 };
    let concurrency = env::usize_or("BENCH_CONCURRENCY", 8);
    callnote::deliver::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let hasher = RandomState::new();
    let (sink, received) = runtime.block_on(sink::start(hasher.clone()));
    let mut bench = Bench {
        corpus: Corpus::load(),
        runtime,
        received,
        sink,
        base: env::var("BENCH_DIR"),
        concurrency,
        from: "Voice Mail <vm@relay-bench.test>".parse().expect("mailbox"),
        expected: Vec::new(),
    };
    // Postfix only when benching and asked for (default: yes), never in the smoke run.
    let postfix = match (benching && env::var("BENCH_POSTFIX").as_deref() != Some("0")).then(postfix::unavailable) {
        Some(None) => Some(postfix::Postfix::start(&bench.corpus.root, bench.base.as_deref(), sink)),
        Some(Some(why)) => {
            println!("Postfix comparison skipped: {why}");
            None
        }
        None => None,
    };
    println!(
        "relay bench: spool{} in {}, concurrency {concurrency}, SMTP sink on {sink}; median (min–max) of {passes} passes",
        if postfix.is_some() { " and Postfix queue" } else { "" },
        bench.base.as_deref().unwrap_or("the temp folder (disk)")
    );

    // 1. Backlog drains, after a small unreported one that builds what a relay builds once
    //    (templates, lazy tables, the SMTP pool), so the heap figures compare like with like.
    if benching {
        bench.drain_callnote("w", 200);
    }
    for (n, &items) in sizes.iter().enumerate() {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for pass in 0..passes {
            ours.push(bench.drain_callnote(&format!("d{n}p{pass}"), items));
            if let Some(postfix) = &postfix {
                theirs.push(bench.drain_postfix(postfix, &format!("x{n}p{pass}"), items));
            }
        }
        let col = |d: &[Drain], f: fn(&Drain) -> f64, digits| spread(&d.iter().map(f).collect::<Vec<_>>(), digits);
        println!(
            "drain {items:>6} items ({} voicemails): callnote {} messages/s; claim -> 250 p50 {} ms, p99 {} ms; peak heap {} MiB",
            items.div_ceil(5),
            col(&ours, |d| d.rate, 0),
            col(&ours, |d| d.p50, 1),
            col(&ours, |d| d.p99, 1),
            col(&ours, |d| d.heap, 1),
        );
        if postfix.is_some() {
            println!(
                "drain {items:>6} items  through Postfix: {} messages/s; handed to Postfix -> sink p50 {} ms, p99 {} ms",
                col(&theirs, |d| d.rate, 0),
                col(&theirs, |d| d.p50, 1),
                col(&theirs, |d| d.p99, 1),
            );
        }
    }

    // 2. Steady arrival into the running service (and into Postfix).
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for pass in 0..passes {
        ours.push(bench.steady_callnote(&format!("s{pass}"), rate, secs));
        if let Some(postfix) = &postfix {
            theirs.push(bench.steady_postfix(postfix, &format!("y{pass}"), rate, secs));
        }
    }
    let col = |d: &[Steady], f: fn(&Steady) -> f64| spread(&d.iter().map(f).collect::<Vec<_>>(), 1);
    println!(
        "steady {rate}/s for {secs} s ({} items): callnote file appearing -> 250 p50 {} ms, p99 {} ms, max {} ms (of which claim -> 250 p50 {} ms, p99 {} ms)",
        rate * secs,
        col(&ours, |s| s.p50),
        col(&ours, |s| s.p99),
        col(&ours, |s| s.max),
        col(&ours, |s| s.claim_p50),
        col(&ours, |s| s.claim_p99),
    );
    if postfix.is_some() {
        println!(
            "steady {rate}/s for {secs} s through Postfix: handed to Postfix -> sink p50 {} ms, p99 {} ms, max {} ms",
            col(&theirs, |s| s.p50),
            col(&theirs, |s| s.p99),
            col(&theirs, |s| s.max),
        );
    }
    drop(postfix);

    let sent = fingerprint(bench.expected.iter().map(String::as_str), &hasher);
    let got = bench.received.fingerprint();
    assert_eq!(got, sent, "the sink received each Message-ID exactly once");
    println!("sink: {} messages, each item's Message-ID exactly once", got.0);
}
