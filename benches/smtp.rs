//! SMTP throughput: messages/s over one pooled connection to the loopback test server.
//!
//! ```text
//! scripts/smtp-server.sh install && eval "$(scripts/smtp-server.sh start)"
//! cargo bench --bench smtp
//! ```
//!
//! Sends a realistic notification (text + HTML + a 0.5 s WAV, about 12 KB) `BENCH_MESSAGES`
//! times (default 500), one after the other through a transport with `pool_size = 1`, so
//! every message after the first reuses the one connection: over STARTTLS + AUTH, over
//! implicit TLS (smtps) + AUTH, and over the plain listener. Prints the connection set-up time and messages/s for each.
//! The server (Python aiosmtpd) is the slower side; the figure is a floor for callnote.
//!
//! Without the server's variables it says so and exits 0. Run by `cargo test --benches`
//! (no `--bench` flag) it sends 5 messages as a smoke test.

use std::time::{Duration, Instant};

use callnote::config::{DeliverySettings, SecretSource, SmtpSettings, TlsLevel};
use callnote::deliver::{self, Outgoing};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart};

#[path = "support/env.rs"]
mod env;

fn message() -> Outgoing {
    let wav_path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/575a75dc-3e35-4640-97c2-4c7f3f274236.wav");
    let wav = std::fs::read(wav_path).expect("the fixture WAV");
    let message = lettre::Message::builder()
        .from("Voice Mail <voicemail@contoso.test>".parse().expect("a mailbox"))
        .to("Hannah Whitaker <bench@contoso.test>".parse().expect("a mailbox"))
        .subject("Voice mail from Priya Raman (+1 289-555-0147)")
        .multipart(
            MultiPart::mixed()
                .multipart(MultiPart::alternative_plain_html(
                    "Voice message from Priya Raman (+1 289-555-0147), 1 second.".to_owned(),
                    "<p>Voice message from <b>Priya Raman</b> (+1 289-555-0147), 1 second.</p>".to_owned(),
                ))
                .singlepart(Attachment::new("voicemail.wav".into()).body(wav, ContentType::parse("audio/wav").expect("a type"))),
        )
        .expect("a valid message");
    Outgoing::new(&message, "bench")
}

async fn run(label: &str, settings: SmtpSettings, count: usize) {
    let transport = deliver::from_settings(&DeliverySettings::Smtp(settings)).expect("valid settings");
    let mail = message();
    let start = Instant::now();
    transport.deliver(&mail).await.expect("first message delivered");
    let setup = start.elapsed();
    let start = Instant::now();
    for _ in 0..count {
        let receipt = transport.deliver(&mail).await.expect("message delivered");
        assert!(receipt.smtp.as_ref().is_some_and(|s| s.reused_connection), "the pooled connection was reused");
    }
    let took = start.elapsed().max(Duration::from_micros(1));
    transport.close().await.expect("closed");
    println!(
        "{label:<16} first message (opens the connection) {:>6.1} ms; then {count} messages of {} bytes in {:.2} s = {:.0} messages/s",
        setup.as_secs_f64() * 1000.0,
        mail.bytes.len(),
        took.as_secs_f64(),
        count as f64 / took.as_secs_f64()
    );
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let (Some(host), Some(port), Some(plain_port), Some(smtps_port), Some(user), Some(ca)) = (
        env::var("SMTP_HOST"),
        env::var("SMTP_PORT"),
        env::var("SMTP_PLAIN_PORT"),
        env::var("SMTP_SMTPS_PORT"),
        env::var("SMTP_USER"),
        env::var("SMTP_CA"),
    ) else {
        println!("smtp bench skipped: SMTP_PORT etc. not set (eval \"$(scripts/smtp-server.sh start)\" first)");
        return;
    };
    let count = if benching { env::var("BENCH_MESSAGES").and_then(|n| n.parse().ok()).unwrap_or(500) } else { 5 };
    deliver::install_crypto_provider();
    let plain = SmtpSettings {
        host,
        port: plain_port.parse().expect("SMTP_PLAIN_PORT is a port"),
        implicit_tls: false,
        tls_level: TlsLevel::None,
        tls_fingerprints: Vec::new(),
        username: None,
        password: None,
        ca_file: None,
        timeout: Duration::from_secs(30),
        pool_size: 1,
    };
    let tls = SmtpSettings {
        port: port.parse().expect("SMTP_PORT is a port"),
        tls_level: TlsLevel::Verify,
        username: Some(user),
        password: Some(SecretSource::Env("SMTP_PASS".into())),
        ca_file: Some(ca.into()),
        ..plain.clone()
    };
    let smtps = SmtpSettings { port: smtps_port.parse().expect("SMTP_SMTPS_PORT is a port"), implicit_tls: true, ..tls.clone() };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        run("STARTTLS + AUTH", tls, count).await;
        run("smtps + AUTH", smtps, count).await;
        run("plain", plain, count).await;
    });
}
