//! Relay throughput: drains a backlog of generated header files from an `own` spool to the
//! loopback SMTP test server, through the production path (parse, directory, render,
//! compose, claim/journal/archive with every fsync, SMTP).
//!
//! ```text
//! scripts/smtp-server.sh install && eval "$(scripts/smtp-server.sh start)"
//! cargo bench --bench relay                       # 10,000 items
//! BENCH_ITEMS=2000 BENCH_CONCURRENCY=8 cargo bench --bench relay
//! ```
//!
//! Prints messages/s for the whole drain, and p50/p99 of two latencies read from the
//! journal: from the file appearing in the spool to the server's 250 (for a backlog this
//! is mostly waiting in line), and from the claim to the 250 (one item's own work). Every
//! fifth item is a voicemail with its 0.5 s WAV side file, the rest missed calls. Without
//! the server's variables it says so and exits 0; run by `cargo test --benches` (no
//! `--bench` flag) it drains 20 items as a smoke test and checks they all arrived.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use callnote::config::{Config, SpoolMode};
use callnote::pipeline::Pipeline;
use callnote::relay::Relay;
use callnote::spool::{State, SystemClock, journal};

fn env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let Some(port) = env("SMTP_PLAIN_PORT") else {
        println!("relay bench skipped: SMTP_PLAIN_PORT not set (eval \"$(scripts/smtp-server.sh start)\" first)");
        return;
    };
    let items: usize = if benching {
        env("BENCH_ITEMS").and_then(|n| n.parse().ok()).unwrap_or(10_000)
    } else {
        20
    };
    let concurrency: usize = env("BENCH_CONCURRENCY").and_then(|n| n.parse().ok()).unwrap_or(8);
    callnote::deliver::install_crypto_provider();

    let tmp = tempfile::tempdir().expect("a temp folder");
    let spool = tmp.path().join("spool");
    std::fs::create_dir(&spool).expect("the spool folder");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let toml = format!(
        "[directory]\nsource = {:?}\n[mail]\nfrom = \"Voice Mail <vm@relay-bench.test>\"\n\
         [delivery]\nurl = \"smtp://127.0.0.1:{port}\"\nstarttls = \"off\"\npool_size = {concurrency}\n\
         [spool]\ndir = {spool:?}\nconcurrency = {concurrency}\nafter_send = \"remove\"\n",
        root.join("examples/directory.ldif"),
    );
    let config = Config::from_toml(&toml, &tmp.path().join("callnote.toml")).expect("a valid configuration");

    // The backlog: written elsewhere and renamed in, side file first, as a producer does.
    let missed = std::fs::read_to_string(root.join("tests/fixtures/mc-legacy-blog-shape.txt")).expect("fixture");
    let voicemail = std::fs::read_to_string(root.join("tests/fixtures/vm-legacy-blog-shape.txt")).expect("fixture");
    let wav = root.join("tests/fixtures/575a75dc-3e35-4640-97c2-4c7f3f274236.wav");
    let run = format!("{:x}", jiff::Timestamp::now().as_microsecond());
    let mut appeared: HashMap<String, jiff::Timestamp> = HashMap::with_capacity(items);
    for i in 0..items {
        let name = format!("bench{i:06}.txt");
        let call_id = format!("bench-{run}-{i:06}");
        let text = if i % 5 == 0 {
            let side = format!("bench{i:06}.wav");
            std::fs::copy(&wav, spool.join(&side)).expect("side file");
            voicemail
                .replace("1c941dfb-9165-4438-930c-f7e266e92d98", &call_id)
                .replace("575a75dc-3e35-4640-97c2-4c7f3f274236.wav", &side)
        } else {
            missed.replace("6e838afc-7d1a-4ad5-b1e3-fde1990e11e7", &call_id)
        };
        let staged = tmp.path().join(&name);
        std::fs::write(&staged, text).expect("header");
        std::fs::rename(&staged, spool.join(&name)).expect("rename into the spool");
        appeared.insert(name, jiff::Timestamp::now());
    }

    let directory = callnote::enrich::directory::load_file(&root.join("examples/directory.ldif"), &config.dialplan)
        .expect("the example directory");
    let delivery = config.delivery.clone().expect("delivery is configured");
    let transport = callnote::deliver::from_settings(&delivery).expect("a transport");
    let settings = config.spool.clone();
    let pipeline = Arc::new(Pipeline::new(
        config,
        callnote::render::Templates::builtin(),
        Some(Arc::new(directory)),
        None,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let start = Instant::now();
    let report = runtime.block_on(async {
        let relay = Relay::open(
            pipeline,
            Arc::from(transport),
            &spool,
            SpoolMode::Own,
            &settings,
            Arc::new(SystemClock),
        )
        .expect("the relay opens");
        relay.pass(None).await.expect("the pass runs")
    });
    let took = start.elapsed().as_secs_f64();
    assert_eq!(report.delivered, items, "every item delivered: {report:?}");

    let (mut names, mut claimed) = (HashMap::new(), HashMap::new());
    let (mut from_appearing, mut from_claim) = (Vec::with_capacity(items), Vec::with_capacity(items));
    journal::replay(&spool.join("state/journal.jsonl"), |r| match r.state {
        State::Claimed { name } => {
            names.insert(r.item.clone(), name);
            claimed.insert(r.item, r.at);
        }
        State::Sent { .. } => {
            let ms = |from: jiff::Timestamp| r.at.duration_since(from).as_secs_f64() * 1000.0;
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
    println!(
        "relay: {items} items ({} voicemails with a side file), concurrency {concurrency}: {took:.2} s, {:.0} messages/s",
        items.div_ceil(5),
        items as f64 / took.max(1e-9)
    );
    println!(
        "  file appearing -> 250: p50 {:.0} ms, p99 {:.0} ms (a backlog: mostly waiting in line)",
        percentile(&from_appearing, 0.5),
        percentile(&from_appearing, 0.99)
    );
    println!(
        "  claim -> 250:          p50 {:.1} ms, p99 {:.1} ms (one item's own work)",
        percentile(&from_claim, 0.5),
        percentile(&from_claim, 0.99)
    );
}
