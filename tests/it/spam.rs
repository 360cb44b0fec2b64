//! A notification delivered late must not look like spam. Every notification fixture is
//! composed as the relay composes it (Date: now) with its call time now ("on time") and
//! five days ago ("late": after an outage, or a late header file), gets the Received line
//! of the server that delivers it, and is scored by SpamAssassin with local tests only
//! (`spamassassin -L -t`, Debian package `spamassassin`): every score must stay under 2.0
//! (mail is junk at 5.0). ALL_TRUSTED (-1.0 for a relay on a private address) is scored 0
//! so that it cannot hide a problem.
//!
//! Without spamassassin the test is skipped with a note, unless CALLNOTE_REQUIRE_SERVERS is
//! set (scripts/test.sh installs it): then it fails.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use callnote::config::Config;
use callnote::enrich::directory;
use callnote::intake::Parsed;
use callnote::pipeline::Pipeline;
use callnote::render::Templates;

use crate::common::fixture;
use crate::compose::{CONFIG, notification_fixtures};

/// The highest score a notification may get.
const LIMIT: f64 = 2.0;

/// True when spamassassin runs; a failure when it is missing but required.
fn spamassassin_available() -> bool {
    let found = Command::new("spamassassin").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CALLNOTE_REQUIRE_SERVERS").is_err(),
            "spamassassin is not installed although CALLNOTE_REQUIRE_SERVERS is set (scripts/test.sh installs the Debian package)"
        );
        eprintln!("skipped: spamassassin is not installed (Debian package spamassassin; scripts/test.sh installs it)");
    }
    found
}

/// The relay's pipeline: the example directory, no fixed date.
fn pipeline() -> Pipeline {
    let config = Config::from_toml(CONFIG, Path::new("test.toml")).expect("test config");
    let directory_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/directory.ldif");
    let index = directory::load_file(&directory_file, &config.dialplan).expect("directory");
    Pipeline::new(config, Templates::builtin(), Some(std::sync::Arc::new(index)), None)
}

/// The message as the receiving server stores it: its Received line first, as mbox text
/// (LF line ends, `From ` lines quoted).
fn as_delivered(message: &[u8], received_at: jiff::Timestamp) -> String {
    let stamp = jiff::fmt::rfc2822::to_string(&received_at.to_zoned(jiff::tz::TimeZone::UTC)).unwrap();
    let mut text = format!(
        "From callnote@contoso.com Thu Jan  1 00:00:00 1970\nReceived: from relay.contoso.com (relay.contoso.com [10.20.30.40])\n\tby mx.contoso.com with ESMTPS; {stamp}\n"
    );
    for line in String::from_utf8_lossy(message).split("\r\n") {
        if line.trim_start_matches('>').starts_with("From ") {
            text.push('>');
        }
        text += line;
        text.push('\n');
    }
    text
}

/// One scored message of spamassassin's mbox output: (call id, call time) -> (score, report).
fn scores(output: &str) -> BTreeMap<(String, String), (f64, String)> {
    let mut out = BTreeMap::new();
    for message in output.split("\nFrom callnote@contoso.com ").filter(|m| !m.trim().is_empty()) {
        let head = message.split("\n\n").next().unwrap_or_default().replace("\n\t", " ").replace("\n ", " ");
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned()))
                .unwrap_or_default()
        };
        let status = header("X-Spam-Status");
        let score = status
            .split("score=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no score in `{status}`"));
        // The rules that hit: ` 2.6 DATE_IN_PAST_96_XX   Date: is 96 hours or more …`.
        let report = message.split("Content analysis details:").nth(1).unwrap_or_default();
        let rule = |l: &&str| l.split_whitespace().next().is_some_and(|pts| pts.parse::<f64>().is_ok());
        let report: String = report.lines().skip(1).filter(rule).map(|l| format!("\n  {}", l.trim())).collect();
        out.insert((header("X-CallID"), header("X-Callnote-Call-Time")), (score, report));
    }
    out
}

#[test]
fn every_fixture_scores_under_2_in_spamassassin_on_time_and_late() {
    if !spamassassin_available() {
        return;
    }
    let pipeline = pipeline();
    let now = jiff::Timestamp::now();
    let days_ago = now - jiff::SignedDuration::from_hours(5 * 24);
    let mut mbox = String::new();
    let mut cases = BTreeMap::new();
    for name in notification_fixtures() {
        let path = fixture(&name);
        let Ok(Parsed::Event(event)) = pipeline.parse_file(&path) else { panic!("{name}: not a notification") };
        for (label, time) in [("on time", now), ("late", days_ago)] {
            let mut event = (*event).clone();
            event.time = Some(time);
            let prepared = pipeline.prepare_event(event, &path).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            mbox += &as_delivered(&prepared.message.formatted(), now);
            cases.insert((prepared.event.call_id.clone(), time.to_string()), format!("{name} ({label})"));
        }
    }
    assert_eq!(cases.len(), 30 * 2, "every fixture, on time and late");

    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new("spamassassin")
        .args(["-L", "-t", "--mbox", "--cf", "score ALL_TRUSTED 0", "--cf", "use_bayes 0"])
        .env("HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spamassassin runs");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(mbox.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "spamassassin failed: {}", String::from_utf8_lossy(&output.stderr));

    let scored = scores(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(scored.keys().collect::<Vec<_>>(), cases.keys().collect::<Vec<_>>(), "every message scored once");
    if let Some((key, (score, report))) = scored.iter().max_by(|a, b| a.1.0.total_cmp(&b.1.0)) {
        eprintln!("spamassassin: {} messages, highest {score}: {}{report}", scored.len(), cases[key]);
    }
    let mut too_high = Vec::new();
    for (key, (score, report)) in &scored {
        if *score >= LIMIT {
            too_high.push(format!("{}: {score}{report}", cases[key]));
        }
    }
    assert!(too_high.is_empty(), "scored {LIMIT} or more:\n{}", too_high.join("\n\n"));
}
