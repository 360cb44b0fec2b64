//! Relay benchmark: the production path (`own` spool: claim, journal and archive with
//! every fsync, parse, directory, render, compose, SMTP) against an SMTP sink on loopback.
//!
//! ```text
//! cargo bench --bench relay                      # spool on the disk (temp folder)
//! BENCH_DIR=/dev/shm cargo bench --bench relay   # spool on tmpfs: callnote's own cost, no disk
//! BENCH_SIZES=1000,10000,100000 cargo bench --bench relay
//! ```
//!
//! Two measurements:
//! 1. **Backlog drain**: for each size in `BENCH_SIZES` (default 1,000 and 10,000) the
//!    backlog is written first, then one relay pass drains it. Prints messages/s, claim -> 250
//!    p50/p99 (one item's own work) and the peak heap during the drain (flat = memory does not
//!    grow with the backlog).
//! 2. **Steady arrival**: the relay runs as the service does (`relay::service::serve`:
//!    file-system events, rescans) while files appear at `BENCH_RATE` per second (default
//!    500) for `BENCH_SECS` seconds (default 5). Prints file appearing -> 250 p50/p99: the
//!    latency a user sees.
//!
//! Every fifth item is a voicemail with its 0.5 s WAV side file, the rest missed calls. The
//! sink ([`sink`]) accepts and discards; every run checks that the sink received every
//! item's Message-ID exactly once (count and a sum of hashes, so the check itself keeps
//! no per-message memory). `BENCH_CONCURRENCY` (default 8) is `[spool] concurrency`. Run by
//! `cargo test --benches` (no `--bench` flag) it is a smoke test: 20 items each way.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callnote::config::{Config, SpoolMode};
use callnote::pipeline::Pipeline;
use callnote::relay::Relay;
use callnote::relay::service::{ServiceOptions, serve};
use callnote::spool::{State, SystemClock, journal};
use jiff::Timestamp;

#[path = "support/counting.rs"]
mod counting;
#[path = "support/env.rs"]
mod env;
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

fn open_relay(setup: &Setup, corpus: &Corpus) -> Relay {
    let config = setup.config.clone();
    let directory = callnote::enrich::directory::load_file(&corpus.root.join("examples/directory.ldif"), &config.dialplan)
        .expect("the example directory");
    let delivery = config.delivery.clone().expect("delivery is configured");
    let transport = callnote::deliver::from_settings(&delivery).expect("a transport");
    let settings = config.spool.clone();
    let pipeline = Arc::new(Pipeline::new(config, callnote::render::Templates::builtin(), Some(Arc::new(directory)), None));
    Relay::open(pipeline, Arc::from(transport), &setup.spool, SpoolMode::Own, &settings, Arc::new(SystemClock)).expect("the relay opens")
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

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = if benching {
        env::var("BENCH_SIZES").unwrap_or_else(|| "1000,10000".into()).split(',').filter_map(|s| s.trim().parse().ok()).collect()
    } else {
        vec![20]
    };
    let (rate, secs) = if benching { (env::usize_or("BENCH_RATE", 500), env::usize_or("BENCH_SECS", 5)) } else { (50, 1) };
    let concurrency = env::usize_or("BENCH_CONCURRENCY", 8);
    let base = env::var("BENCH_DIR");
    callnote::deliver::install_crypto_provider();
    let corpus = Corpus::load();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let hasher = RandomState::new();
    let (sink_addr, received) = runtime.block_on(sink::start(hasher.clone()));
    let from: lettre::message::Mailbox = "Voice Mail <vm@relay-bench.test>".parse().expect("mailbox");
    let mut expected: Vec<String> = Vec::new();
    println!(
        "relay bench: spool in {}, concurrency {concurrency}, SMTP sink on {sink_addr}",
        base.as_deref().unwrap_or("the temp folder (disk)")
    );

    // 1. Backlog drains, after a small unreported one that builds what a relay builds once
    //    (templates, lazy tables, the SMTP pool), so the heap figures compare like with like.
    let warm_up = if benching { Some(200) } else { None };
    for (n, (items, report_it)) in warm_up.map(|w| (w, false)).into_iter().chain(sizes.iter().map(|&s| (s, true))).enumerate() {
        let setup = setup(base.as_deref(), sink_addr, concurrency, &corpus);
        let batch = format!("d{n}");
        for i in 0..items {
            corpus.add(&setup.spool, &setup.staging, &batch, i);
            expected.push(corpus.message_id(&batch, i, &from));
        }
        let relay = open_relay(&setup, &corpus);
        let before = received.count();
        counting::reset_peak();
        let heap_before = counting::live();
        let start = Instant::now();
        let report = runtime.block_on(relay.pass(None)).expect("the pass runs");
        let took = start.elapsed().as_secs_f64();
        let peak = counting::peak().saturating_sub(heap_before);
        assert_eq!(report.delivered, items, "every item delivered: {report:?}");
        assert_eq!(received.count() - before, items, "the sink received every item");
        let (_, from_claim) = latencies(relay.journal_path(), &HashMap::new());
        if !report_it {
            continue;
        }
        println!(
            "drain {items:>6} items ({} voicemails): {took:.2} s = {:.0} messages/s; claim -> 250 p50 {:.1} ms, p99 {:.1} ms; peak heap during the drain {:.1} MiB",
            items.div_ceil(5),
            items as f64 / took.max(1e-9),
            percentile(&from_claim, 0.5),
            percentile(&from_claim, 0.99),
            peak as f64 / (1024.0 * 1024.0),
        );
    }

    // 2. Steady arrival into the running service.
    let setup = setup(base.as_deref(), sink_addr, concurrency, &corpus);
    let relay = open_relay(&setup, &corpus);
    let items = rate * secs;
    let before = received.count();
    let producer = {
        let (spool, staging) = (setup.spool.clone(), setup.staging.clone());
        let corpus = corpus.clone();
        let received = received.clone();
        std::thread::spawn(move || {
            let mut appeared = HashMap::with_capacity(items);
            let start = Instant::now();
            for i in 0..items {
                let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let name = corpus.add(&spool, &staging, "s", i);
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
    let start = Instant::now();
    runtime.block_on(serve(&relay, options)).expect("the service runs");
    let took = start.elapsed().as_secs_f64();
    let appeared = producer.join().expect("the producer");
    expected.extend((0..items).map(|i| corpus.message_id("s", i, &from)));
    assert_eq!(received.count() - before, items, "the sink received every streamed item");
    let (from_appearing, _) = latencies(relay.journal_path(), &appeared);
    assert_eq!(from_appearing.len(), items, "every streamed item has a sent record");
    println!(
        "steady {rate}/s for {secs} s ({items} items, {took:.1} s): file appearing -> 250 p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&from_appearing, 0.5),
        percentile(&from_appearing, 0.99),
        from_appearing.last().copied().unwrap_or(0.0),
    );

    let sent = fingerprint(expected.iter().map(String::as_str), &hasher);
    let got = received.fingerprint();
    assert_eq!(got, sent, "the sink received each Message-ID exactly once");
    println!("sink: {} messages, each item's Message-ID exactly once", got.0);
}
