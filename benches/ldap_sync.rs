//! LDAP sync benchmark against a real, local slapd: sync time and memory for a large
//! directory, and lookup latency (p50 / p99) once it is in memory.
//!
//! `cargo bench --bench ldap_sync` starts its own throwaway slapd through
//! `scripts/ldap-server.sh` (ports 3990–3992, its own temp folder, stopped afterwards) loaded
//! with `BENCH_PEOPLE` generated people (default 100,000; AD-like entries: telephoneNumber,
//! msRTCSIP-Line, every second person a mobile, every fifth an otherTelephone, SIP and SMTP
//! proxies, display attributes), then prints:
//! - sync: entries, wall time of the first sync and of `BENCH_SYNCS` refreshes (min, median),
//!   and the process CPU time (user + system, every thread) per refresh (median), which a busy
//!   machine disturbs less than the wall time;
//! - memory: the index's own estimate per person, and the process RSS growth per person
//!   (allocator overhead and freed-but-kept pages included, so an upper bound);
//! - lookups of pre-normalized callers (hits by work number, mobile and SIP; misses):
//!   p50 / p99 / max, and the same for normalize + lookup (what enrichment does);
//! - live queries: index misses of a small directory (the fixture people) with the live query
//!   on, each a different number nobody has, so each asks the server: p50 / p99 per lookup,
//!   and the process's threads before and after (they must not grow with the lookups).
//!
//! `cargo test --all-targets` runs this binary without `--bench`: a smoke run on 2,000 people
//! (skipped when slapd is not installed). `BENCH_LDAP_PORT` moves the ports (100 higher is
//! tried when they are busy).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callnote::config::{LdapSettings, SecretSource};
use callnote::enrich::directory::Directory;
use callnote::enrich::directory::ldap::{LdapDirectory, LdapOptions};
use callnote::enrich::resolve_party;
use callnote::event::{CallerStatus, Party};
use callnote::phone::{self, DialPlan};

#[path = "support/env.rs"]
mod env;

/// The throwaway server; stopped (and its folder removed) when dropped.
struct Server {
    vars: Vec<(String, String)>,
    port: String,
    state: std::path::PathBuf,
}

impl Server {
    /// Starts on `port` (and the two after it), or 100 higher when those are busy.
    fn start(people: usize, port: u16, state: std::path::PathBuf) -> Server {
        let mut port = port;
        let output = loop {
            let output = script(&["start"], &port.to_string(), &state, people);
            let stderr = String::from_utf8_lossy(&output.stderr);
            if output.status.success() || !stderr.contains("is busy") || port > 64_000 {
                assert!(output.status.success(), "ldap-server.sh start failed: {stderr}");
                break output;
            }
            port += 100;
        };
        let vars = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
            .collect();
        Server { vars, port: port.to_string(), state }
    }

    fn var(&self, name: &str) -> String {
        self.vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("{name} not printed by start"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = script(&["stop"], &self.port, &self.state, 0);
    }
}

fn script(args: &[&str], port: &str, state: &std::path::Path, people: usize) -> std::process::Output {
    Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ldap-server.sh"))
        .args(args)
        .env("LDAP_PORT", port)
        .env("LDAP_STATE_DIR", state)
        .env("LDAP_BULK_COUNT", people.to_string())
        .output()
        .expect("bash runs")
}

/// Resident set size of this process, from /proc (0 where there is none).
fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// CPU time of this process so far (user + system, all threads), from /proc (0 where there is
/// none); /proc counts in USER_HZ ticks, 100 a second on Linux.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // the fields after the command name (which is in parentheses and may hold spaces)
    let fields: Vec<&str> = stat.rsplit_once(')').map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat(5); here, 1-based after the name, 12 and 13
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// The generated person `i`'s numbers and SIP address (see `generate_people` in the script).
fn work(i: usize) -> String {
    format!("+1425{:03}{:04}", 300 + i / 10_000, i % 10_000)
}
fn mobile(i: usize) -> String {
    format!("+1206{:03}{:04}", 300 + i / 10_000, i % 10_000)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn micros(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    if Command::new("slapd").arg("-VV").output().is_err() && !std::path::Path::new("/usr/sbin/slapd").exists() {
        println!("ldap_sync: skipped, slapd is not installed (scripts/ldap-server.sh install)");
        return;
    }
    let people = env::usize_or("BENCH_PEOPLE", if full { 100_000 } else { 2_000 });
    let syncs = env::usize_or("BENCH_SYNCS", if full { 3 } else { 1 });
    let port = env::usize_or("BENCH_LDAP_PORT", 3990) as u16;
    callnote::deliver::install_crypto_provider();
    let tmp = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let server = Server::start(people, port, tmp.path().join("slapd"));
    println!("ldap_sync: slapd with {people} generated people ready in {:.1} s", started.elapsed().as_secs_f64());

    let plan = DialPlan::new("US", None, 4, 7).expect("US");
    let password = tmp.path().join("bind-password");
    std::fs::write(&password, server.var("LDAP_BIND_PW")).expect("password file");
    let settings = LdapSettings {
        url: server.var("LDAP_PAGED_URL"),
        bind_dn: Some(server.var("LDAP_BIND_DN")),
        bind_password: Some(SecretSource::File(password)),
        base_dn: server.var("LDAP_PAGED_BASE"),
        filter: None,
        starttls: false,
        ca_file: None,
        refresh: Duration::from_secs(24 * 3600),
        connect_timeout: Duration::from_secs(5),
        search_timeout: Duration::from_secs(60),
        snapshot: None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");

    let rss_before = rss_bytes();
    let t = Instant::now();
    let ldap: Arc<LdapDirectory> =
        runtime.block_on(LdapDirectory::start(&settings, &plan)).unwrap_or_else(|e| panic!("{}", e.with_causes()));
    let first = t.elapsed();
    let rss_after = rss_bytes();
    let index = ldap.index().expect("synced");
    assert_eq!(index.len(), people, "every generated person indexed");
    let (mut times, mut cpu) = (Vec::with_capacity(syncs), Vec::with_capacity(syncs));
    for _ in 0..syncs {
        let cpu_before = cpu_seconds();
        times.push(runtime.block_on(ldap.refresh_now()).unwrap_or_else(|e| panic!("{}", e.with_causes())).elapsed);
        cpu.push(cpu_seconds() - cpu_before);
    }
    times.sort();
    cpu.sort_by(f64::total_cmp);
    println!(
        "sync: {people} entries; first sync {:.2} s ({:.0} entries/s); {syncs} refreshes: min {:.2} s, median {:.2} s; CPU per refresh: median {:.2} s",
        first.as_secs_f64(),
        people as f64 / first.as_secs_f64(),
        times[0].as_secs_f64(),
        times[times.len() / 2].as_secs_f64(),
        cpu[cpu.len() / 2]
    );
    println!(
        "memory: index {:.0} bytes per person (its own estimate, {} MiB); process RSS grew {:.0} bytes per person after the first sync (upper bound)",
        index.heap_bytes() as f64 / people as f64,
        index.heap_bytes() / (1024 * 1024),
        rss_after.saturating_sub(rss_before) as f64 / people as f64
    );
    drop(index);

    // Callers: work numbers, mobiles (even people), SIP addresses, and numbers nobody has.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % people as u64) as usize
    };
    let raws: Vec<String> = (0..if full { 100_000 } else { 4_000 })
        .map(|n| {
            let i = next();
            match n % 4 {
                0 => work(i),
                1 => mobile(i & !1),
                2 => format!("sip:u{i:06}@bulk.example"),
                _ => format!("+1312555{:04}", i % 10_000),
            }
        })
        .collect();
    let parties: Vec<Party> = raws
        .iter()
        .map(|raw| {
            let mut p = Party::from_raw(Some(raw.clone()));
            phone::normalize_party(&mut p, &plan);
            p
        })
        .collect();
    let directory: &dyn Directory = ldap.as_ref();
    let mut lookups = Vec::with_capacity(parties.len());
    let mut hits = 0;
    for party in &parties {
        let t = Instant::now();
        let found = directory.lookup(party);
        lookups.push(t.elapsed());
        hits += usize::from(matches!(found, Ok(callnote::enrich::directory::Lookup::Resolved(..))));
    }
    lookups.sort();
    assert_eq!(hits, parties.len() / 4 * 3, "every work, mobile and SIP caller resolves, no miss does");
    let mut enriched = Vec::with_capacity(raws.len());
    for raw in &raws {
        let mut p = Party::from_raw(Some(raw.clone()));
        let t = Instant::now();
        resolve_party(&mut p, &plan, Some(directory));
        enriched.push(t.elapsed());
        assert_ne!(p.status, CallerStatus::DirectoryUnavailable);
    }
    enriched.sort();
    println!(
        "lookup ({} callers, 3/4 hits): p50 {}, p99 {}, max {}; normalize + lookup: p50 {}, p99 {}",
        lookups.len(),
        micros(percentile(&lookups, 0.50)),
        micros(percentile(&lookups, 0.99)),
        micros(lookups[lookups.len() - 1]),
        micros(percentile(&enriched, 0.50)),
        micros(percentile(&enriched, 0.99)),
    );
    drop(ldap);

    live_queries(&server, &settings, &plan, if full { 2_000 } else { 100 });
    drop(runtime);
    drop(server);
}

/// Threads of this process, from /proc (0 where there is none).
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// `count` lookups that each go to the server (a miss, a number never asked before).
fn live_queries(server: &Server, settings: &LdapSettings, plan: &DialPlan, count: usize) {
    let mut settings = settings.clone();
    settings.url = server.var("LDAP_URL");
    settings.base_dn = server.var("LDAP_BASE");
    let options = LdapOptions { live_query: Some(Duration::from_secs(5)), ..LdapOptions::default() };
    let ldap = LdapDirectory::open_blocking_with(&settings, plan, options).unwrap_or_else(|e| panic!("{}", e.with_causes()));
    let before = threads();
    let mut times = Vec::with_capacity(count);
    for n in 0..count {
        let mut party = Party::from_raw(Some(format!("+1312{:07}", 5_550_000 + n)));
        phone::normalize_party(&mut party, plan);
        let t = Instant::now();
        let found = ldap.lookup(&party).expect("an index to ask");
        times.push(t.elapsed());
        assert_eq!(found, callnote::enrich::directory::Lookup::Unresolved);
    }
    let after = threads();
    assert_eq!(ldap.health().live_queries, count as u64, "every miss asked the server");
    times.sort();
    println!(
        "live query ({count} misses, each asked): p50 {}, p99 {}, max {}; threads {before} before, {after} after",
        micros(percentile(&times, 0.50)),
        micros(percentile(&times, 0.99)),
        micros(times[times.len() - 1]),
    );
}
