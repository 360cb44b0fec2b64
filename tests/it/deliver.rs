//! Integration tests for the deliver stage: the `.eml` folder and pickup writers, start-up
//! checks, SMTP failures that need no server (down, silent, unresolvable), and — in
//! [`smtp`] — everything against the real aiosmtpd that `scripts/smtp-server.sh` starts.

mod smtp;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use callnote::config::{DeliverySettings, SecretSource, SmtpSettings, StartTls};
use callnote::deliver::{self, Deliver, DeliveryError, Outgoing, Step};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart};
use mail_parser::{MessageParser, MimeHeaders};

use crate::common::fixture;

const WAV: &str = "575a75dc-3e35-4640-97c2-4c7f3f274236.wav";

/// A recipient address no other test (or earlier run) uses.
pub fn unique(local: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{local}-{}-{nanos}-{}@contoso.test", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A realistic notification: text + HTML alternative and the WAV attachment.
pub fn message(to: &[&str], subject: &str) -> lettre::Message {
    let wav = std::fs::read(fixture(WAV)).expect("fixture wav");
    let mut builder = lettre::Message::builder()
        .from("Voice Mail <voicemail@contoso.test>".parse().unwrap())
        .subject(subject)
        .message_id(Some("<1c941dfb-9165-4438-930c-f7e266e92d98@callnote.test>".into()));
    for addr in to {
        builder = builder.to(addr.parse().unwrap());
    }
    builder
        .multipart(
            MultiPart::mixed()
                .multipart(MultiPart::alternative_plain_html(
                    "Voice message from Priya Raman (+1 289-555-0147), 1 second.".to_owned(),
                    "<p>Voice message from <b>Priya Raman</b></p>".to_owned(),
                ))
                .singlepart(Attachment::new("voicemail.wav".into()).body(wav, ContentType::parse("audio/wav").unwrap())),
        )
        .unwrap()
}

/// Checks the MIME content of a delivered message: subject, both bodies, the attachment.
pub fn assert_mime(bytes: &[u8], subject: &str) {
    let parsed = MessageParser::default().parse(bytes).expect("a parseable message");
    assert_eq!(parsed.subject(), Some(subject));
    assert_eq!(parsed.message_id(), Some("1c941dfb-9165-4438-930c-f7e266e92d98@callnote.test"));
    assert_eq!(parsed.body_text(0).as_deref().map(str::trim_end), Some("Voice message from Priya Raman (+1 289-555-0147), 1 second."));
    assert!(parsed.body_html(0).is_some_and(|h| h.contains("<b>Priya Raman</b>")));
    let attachments: Vec<_> = parsed.attachments().collect();
    assert_eq!(attachments.len(), 1);
    let wav = attachments[0];
    assert_eq!(wav.attachment_name(), Some("voicemail.wav"));
    let ct = wav.content_type().expect("content type");
    assert_eq!((ct.ctype(), ct.subtype()), ("audio", Some("wav")));
    assert_eq!(wav.contents(), std::fs::read(fixture(WAV)).unwrap().as_slice());
}

/// The whole cause chain, as `main` prints it.
pub fn chain(err: &DeliveryError) -> String {
    let mut text = err.to_string();
    let mut next = std::error::Error::source(err);
    while let Some(e) = next {
        text.push_str(": ");
        text.push_str(&e.to_string());
        next = e.source();
    }
    text
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------
// .eml folder and pickup folder
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn eml_dir_writes_stem_eml_idempotently() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("outbox"); // created at start-up
    let transport = deliver::from_settings(&DeliverySettings::Dir(out.clone())).unwrap();
    let mail = Outgoing::new(&message(&["hannah.whitaker@contoso.test"], "Voice mail from Priya Raman"), "not-a-guid}{1234");
    assert_eq!(mail.stem, "not-a-guid__1234");
    let receipt = transport.deliver(&mail).await.unwrap();
    let path = out.join("not-a-guid__1234.eml");
    assert_eq!(receipt.file.as_deref(), Some(path.as_path()));
    assert_eq!(receipt.accepted, vec!["hannah.whitaker@contoso.test".parse::<lettre::Address>().unwrap()]);
    assert_eq!(receipt.summary, format!("wrote {} ({} bytes)", path.display(), mail.bytes.len()));
    assert_eq!(std::fs::read(&path).unwrap(), mail.bytes);
    assert_mime(&mail.bytes, "Voice mail from Priya Raman");

    transport.deliver(&mail).await.unwrap(); // the same call again: same file, replaced
    assert_eq!(names(&out), vec!["not-a-guid__1234.eml"]);
    assert_eq!(transport.describe(), format!(".eml folder {}", out.display()));
}

#[tokio::test]
async fn pickup_drops_whole_files_and_leaves_no_temp() {
    let tmp = tempfile::tempdir().unwrap();
    let transport = deliver::from_settings(&DeliverySettings::Pickup(tmp.path().to_owned())).unwrap();
    let mail = Outgoing::new(&message(&["amara.okafor@contoso.test"], "Missed call"), "6e838afc-7d1a-4ad5-b1e3-fde1990e11e7");
    let receipt = transport.deliver(&mail).await.unwrap();
    let path = tmp.path().join("6e838afc-7d1a-4ad5-b1e3-fde1990e11e7.eml");
    assert_eq!(receipt.file.as_deref(), Some(path.as_path()));
    assert_eq!(std::fs::read(&path).unwrap(), mail.bytes);
    assert_eq!(names(tmp.path()), vec![".callnote-tmp", "6e838afc-7d1a-4ad5-b1e3-fde1990e11e7.eml"]);
    assert!(names(&tmp.path().join(".callnote-tmp")).is_empty());
}

#[tokio::test]
async fn pickup_write_cancelled_midway_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let transport = deliver::pickup::PickupTransport::new(tmp.path()).unwrap();
    let mut mail = Outgoing::new(&message(&["a@contoso.test"], "big"), "cancelled");
    mail.bytes = vec![b'x'; 256 << 20]; // 256 MiB: far more than can be written in 1 ms
    let outcome = tokio::time::timeout(Duration::from_millis(1), transport.deliver(&mail)).await;
    assert!(outcome.is_err(), "the write was interrupted");
    assert_eq!(names(tmp.path()), vec![".callnote-tmp"], "no .eml appeared");
    assert!(names(&tmp.path().join(".callnote-tmp")).is_empty(), "the temporary file was removed");
}

const CHILD_DIR: &str = "CALLNOTE_TEST_PICKUP_CHILD_DIR";
const CHILD_SIZE: usize = 8 << 20;

/// Runs as a child process of `pickup_survives_kill`: writes big messages until killed.
#[tokio::test]
#[ignore = "helper: started as a child process by pickup_survives_kill"]
async fn pickup_child_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR) else { return };
    let transport = deliver::pickup::PickupTransport::new(Path::new(&dir)).unwrap();
    let mut mail = Outgoing::new(&message(&["a@contoso.test"], "big"), "x");
    mail.bytes = vec![b'v'; CHILD_SIZE];
    for i in 0.. {
        mail.stem = format!("call-{i}");
        transport.deliver(&mail).await.unwrap();
    }
}

#[test]
fn pickup_survives_kill() {
    let exe = std::env::current_exe().unwrap();
    let mut caught_mid_write = 0;
    for _ in 0..10 {
        let tmp = tempfile::tempdir().unwrap();
        let staging = tmp.path().join(".callnote-tmp");
        let mut child = std::process::Command::new(&exe)
            .args(["deliver::pickup_child_writer", "--exact", "--ignored", "--test-threads=1"])
            .env(CHILD_DIR, tmp.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until a few messages went through and a new one is being written, then kill -9.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            let done = names(tmp.path()).iter().filter(|n| n.ends_with(".eml")).count();
            if done >= 2 && staging.is_dir() && !names(&staging).is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        for name in names(tmp.path()) {
            if name.ends_with(".eml") {
                let len = std::fs::metadata(tmp.path().join(&name)).unwrap().len();
                assert_eq!(len, CHILD_SIZE as u64, "{name} is complete");
            } else {
                assert_eq!(name, ".callnote-tmp", "nothing else in the pickup folder");
            }
        }
        if !names(&staging).is_empty() {
            caught_mid_write += 1;
            if caught_mid_write >= 2 {
                return;
            }
        }
    }
    panic!("the kill never landed mid-write ({caught_mid_write} times in 10 runs)");
}

// ---------------------------------------------------------------------------------------
// Start-up checks
// ---------------------------------------------------------------------------------------

pub fn smtp_settings(host: &str, port: u16) -> SmtpSettings {
    SmtpSettings {
        host: host.to_owned(),
        port,
        implicit_tls: false,
        starttls: StartTls::Off,
        username: None,
        password: None,
        ca_file: None,
        timeout: Duration::from_secs(10),
        pool_size: 2,
    }
}

fn startup_error(settings: DeliverySettings) -> String {
    match deliver::from_settings(&settings) {
        Ok(t) => panic!("expected a start-up error, got {}", t.describe()),
        Err(e) => {
            assert_eq!(e.step(), None, "a configuration error: {e}");
            assert!(e.is_permanent());
            e.to_string()
        }
    }
}

#[test]
fn startup_errors_name_the_setting() {
    let mut s = smtp_settings("mail.contoso.test", 587);
    s.username = Some("svc-callnote".into());
    s.password = Some(SecretSource::Env("CALLNOTE_TEST_UNSET_PASSWORD_VARIABLE".into()));
    assert_eq!(
        startup_error(DeliverySettings::Smtp(s.clone())),
        "delivery.password_env: environment variable `CALLNOTE_TEST_UNSET_PASSWORD_VARIABLE` is not set"
    );

    s.password = None;
    assert_eq!(
        startup_error(DeliverySettings::Smtp(s.clone())),
        "delivery.username: is set, but neither password_env nor password_file"
    );

    let tmp = tempfile::tempdir().unwrap();
    let not_pem = tmp.path().join("ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    s.username = None;
    s.starttls = StartTls::Required;
    s.ca_file = Some(not_pem.clone());
    assert_eq!(
        startup_error(DeliverySettings::Smtp(s.clone())),
        format!("delivery.ca_file: `{}` holds no PEM certificate", not_pem.display())
    );
    s.ca_file = Some(tmp.path().join("missing.pem"));
    assert!(startup_error(DeliverySettings::Smtp(s.clone())).starts_with(&format!(
        "delivery.ca_file: cannot read `{}`: ",
        tmp.path().join("missing.pem").display()
    )));

    s.ca_file = None;
    s.host = "bad host".into();
    assert_eq!(startup_error(DeliverySettings::Smtp(s)), "delivery.url: `bad host` cannot be checked against a certificate");

    let missing = tmp.path().join("Pickup");
    assert_eq!(
        startup_error(DeliverySettings::Pickup(missing.clone())),
        format!("delivery.pickup: `{}` is not an existing folder", missing.display())
    );
}

#[test]
fn office365_needs_nothing_but_the_delivery_section() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("smtp-password");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let toml = format!(
        "[delivery]\nurl = \"smtp://smtp.office365.com:587\"\nusername = \"svc-callnote@contoso.com\"\npassword_file = \"{}\"\n",
        secret.display()
    );
    let config = callnote::Config::from_toml(&toml, Path::new("callnote.toml")).unwrap();
    let transport = deliver::from_settings(config.delivery.as_ref().unwrap()).unwrap();
    assert_eq!(
        transport.describe(),
        "smtp://smtp.office365.com:587, STARTTLS required, AUTH as `svc-callnote@contoso.com`, pool of 4"
    );
    assert!(!transport.describe().contains("s3cret"), "the password never shows");
}

// ---------------------------------------------------------------------------------------
// SMTP failures that need no server
// ---------------------------------------------------------------------------------------

fn smtp(settings: SmtpSettings) -> Box<dyn Deliver> {
    deliver::install_crypto_provider();
    deliver::from_settings(&DeliverySettings::Smtp(settings)).unwrap()
}

#[tokio::test]
async fn server_down_is_transient() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again: nothing listens there now
    let mail = Outgoing::new(&message(&["a@contoso.test"], "down"), "down");
    let err = smtp(smtp_settings("127.0.0.1", port)).deliver(&mail).await.unwrap_err();
    assert_eq!(err.step(), Some(Step::Connect));
    assert!(err.is_transient());
    assert_eq!(chain(&err), format!("connect: cannot connect to 127.0.0.1:{port}: Connection refused (os error 111)"));
}

#[tokio::test]
async fn silent_server_times_out_transiently() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await; // accepts, never greets
        drop(socket);
    });
    let mut s = smtp_settings("127.0.0.1", port);
    s.timeout = Duration::from_millis(300);
    let mail = Outgoing::new(&message(&["a@contoso.test"], "silent"), "silent");
    let err = smtp(s).deliver(&mail).await.unwrap_err();
    held.abort();
    assert!(matches!(err, DeliveryError::Timeout { step: Step::Greeting, .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(err.to_string(), format!("greeting: no answer from 127.0.0.1:{port} within 0.3 s"));
}

#[tokio::test]
async fn unresolvable_host_fails_at_dns() {
    let mut s = smtp_settings("no-such-host.invalid", 587);
    s.timeout = Duration::from_secs(5);
    let mail = Outgoing::new(&message(&["a@contoso.test"], "dns"), "dns");
    let err = smtp(s).deliver(&mail).await.unwrap_err();
    assert_eq!(err.step(), Some(Step::Dns));
    assert!(err.is_transient());
    assert!(err.to_string().starts_with("dns: "), "{err}");
    assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
}
