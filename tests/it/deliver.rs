//! Integration tests for the deliver stage: the `.eml` folder and pickup writers, start-up
//! checks, the TLS settings of `[delivery]`, SMTP failures that need no server (down, silent,
//! unresolvable, a server that offers AUTH without STARTTLS), — in [`smtp`] — everything
//! against the real aiosmtpd that `scripts/smtp-server.sh` starts, and — in [`fake`] — what only
//! a scripted server does.

mod fake;
mod smtp;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use callnote::config::{DeliverySettings, SecretSource, SmtpSettings, TlsLevel};
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
        tls_level: TlsLevel::None,
        tls_fingerprints: Vec::new(),
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
    assert_eq!(startup_error(DeliverySettings::Smtp(s.clone())), "delivery.username: is set, but neither password_env nor password_file");

    let tmp = tempfile::tempdir().unwrap();
    let not_pem = tmp.path().join("ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    s.username = None;
    s.tls_level = TlsLevel::Verify;
    s.ca_file = Some(not_pem.clone());
    assert_eq!(
        startup_error(DeliverySettings::Smtp(s.clone())),
        format!("delivery.ca_file: `{}` holds no PEM certificate", not_pem.display())
    );
    s.ca_file = Some(tmp.path().join("missing.pem"));
    assert!(
        startup_error(DeliverySettings::Smtp(s.clone()))
            .starts_with(&format!("delivery.ca_file: `{}` cannot be read: ", tmp.path().join("missing.pem").display()))
    );

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
        "smtp://smtp.office365.com:587, TLS level verify (STARTTLS required, certificate verified for \
         `smtp.office365.com`), AUTH as `svc-callnote@contoso.com`, pool of 4"
    );
    assert!(!transport.describe().contains("s3cret"), "the password never shows");
}

/// The `[delivery]` settings of a configuration, or its problems one a line.
fn delivery_toml(keys: &str) -> Result<SmtpSettings, String> {
    let toml = format!("[delivery]\n{keys}");
    match callnote::Config::from_toml(&toml, Path::new("c.toml")) {
        Ok(config) => match config.delivery {
            Some(DeliverySettings::Smtp(s)) => Ok(s),
            other => panic!("SMTP settings expected, got {other:?}"),
        },
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn tls_levels_and_the_old_starttls_values() {
    let level = |keys: &str| delivery_toml(&format!("url = \"smtp://mail.contoso.test\"\n{keys}")).map(|s| s.tls_level);
    assert_eq!(level(""), Ok(TlsLevel::Verify), "verify by default");
    for (old, new) in [("off", TlsLevel::None), ("opportunistic", TlsLevel::May), ("required", TlsLevel::Verify)] {
        assert_eq!(level(&format!("starttls = \"{old}\"")), Ok(new), "starttls = {old}");
    }
    for new in [TlsLevel::None, TlsLevel::May, TlsLevel::Encrypt, TlsLevel::Verify] {
        assert_eq!(level(&format!("tls_security_level = \"{new}\"")), Ok(new));
    }
    assert_eq!(
        level("tls_security_level = \"secure\""),
        Err("c.toml:3: delivery.tls_security_level: `secure` is not one of none, may, encrypt, verify or fingerprint \
             (or the older off, opportunistic, required)"
            .into())
    );
    assert_eq!(
        level("starttls = \"required\"\ntls_security_level = \"verify\""),
        Err("c.toml:4: delivery: tls_security_level and its old name starttls are both set; keep tls_security_level".into())
    );
}

#[test]
fn tls_fingerprint_pins_the_certificate() {
    let hex = "EC1F82B25030E0A48E56AD6633A647FECD32F6A84AB211D4C97C8814783522FF";
    let url = "url = \"smtps://mail.contoso.test\"\n";
    let s = delivery_toml(&format!(
        "{url}tls_fingerprint = \"sha256:{}\"\n",
        hex.as_bytes().chunks(2).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(":")
    ))
    .unwrap();
    assert_eq!((s.tls_level, s.tls_fingerprints.len()), (TlsLevel::Fingerprint, 1), "a fingerprint alone means level fingerprint");
    let two = delivery_toml(&format!("{url}tls_security_level = \"fingerprint\"\ntls_fingerprint = \"{hex}, {}\"\n", hex.to_lowercase()))
        .unwrap();
    assert_eq!(two.tls_fingerprints, vec![hex.parse().unwrap(); 2], "several, for a certificate being renewed");
    assert_eq!(
        delivery_toml(&format!("{url}tls_security_level = \"fingerprint\"\n")).unwrap_err(),
        "c.toml:3: delivery.tls_fingerprint: tls_security_level = \"fingerprint\" needs the server certificate's SHA-256 \
         here, e.g. from `openssl x509 -in server.pem -noout -fingerprint -sha256`"
    );
    assert_eq!(
        delivery_toml(&format!("{url}tls_security_level = \"verify\"\ntls_fingerprint = \"{hex}\"\n")).unwrap_err(),
        "c.toml:4: delivery.tls_fingerprint: used only with tls_security_level = \"fingerprint\" (it is `verify`)"
    );
    assert_eq!(
        delivery_toml(&format!("{url}tls_fingerprint = \"sha256:AB:CD\"\n")).unwrap_err(),
        "c.toml:3: delivery.tls_fingerprint: `sha256:AB:CD` is not a SHA-256 fingerprint (4 hex digits); write it as \
         sha256:AB:CD:… (64 hex digits, colons optional)"
    );
}

#[test]
fn credentials_in_clear_are_refused_at_config_time_except_to_loopback() {
    let creds = "username = \"svc-callnote\"\npassword_env = \"CALLNOTE_SMTP_PASSWORD\"\n";
    let err = delivery_toml(&format!("url = \"smtp://mail.contoso.test\"\ntls_security_level = \"none\"\n{creds}")).unwrap_err();
    assert_eq!(
        err,
        "c.toml:3: delivery.tls_security_level: `none` would send the password for `svc-callnote` in clear to \
         `mail.contoso.test`; credentials go only over TLS. Use may, encrypt, verify (the default) or fingerprint; `none` \
         with credentials is for a server on this machine (127.0.0.1)"
    );
    assert!(delivery_toml(&format!("url = \"smtp://mail.contoso.test\"\nstarttls = \"off\"\n{creds}")).is_err(), "the old name too");
    let local = delivery_toml(&format!("url = \"smtp://127.0.0.1:25\"\ntls_security_level = \"none\"\n{creds}")).unwrap();
    assert_eq!((local.tls_level, local.username.as_deref()), (TlsLevel::None, Some("svc-callnote")));
    assert!(
        delivery_toml("url = \"smtp://mail.contoso.test\"\ntls_security_level = \"none\"\n").is_ok(),
        "no credentials, nothing to leak"
    );
    assert_eq!(
        delivery_toml("url = \"smtps://mail.contoso.test\"\nstarttls = \"off\"\n").unwrap_err(),
        "c.toml:3: delivery.tls_security_level: `none` cannot apply to smtps://, which is TLS from the first byte; use \
         smtp:// for a server without TLS, or another level"
    );
}

/// A fake SMTP server on loopback that offers AUTH and no STARTTLS, for one connection:
/// its port, and a handle that gives every line it received once the client hung up.
fn cleartext_auth_server() -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut out = stream;
        out.write_all(b"220 fake.contoso.test ESMTP\r\n").unwrap();
        let mut received = Vec::new();
        let mut line = String::new();
        while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" => b"250-fake.contoso.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n",
                "AUTH" => b"235 2.7.0 Authentication successful\r\n",
                "QUIT" => b"221 2.0.0 Bye\r\n",
                _ => b"250 2.0.0 Ok\r\n",
            };
            received.push(std::mem::take(&mut line));
            if out.write_all(reply).is_err() {
                break;
            }
        }
        received
    });
    (port, server)
}

#[tokio::test]
async fn may_never_sends_the_password_to_a_server_without_starttls() {
    let (port, server) = cleartext_auth_server();
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("smtp-password");
    std::fs::write(&secret, "n0t-in-clear\n").unwrap();
    let settings = SmtpSettings {
        tls_level: TlsLevel::May,
        username: Some("svc-callnote".into()),
        password: Some(SecretSource::File(secret)),
        ..smtp_settings("127.0.0.1", port)
    };
    let mail = Outgoing::new(&message(&["a@contoso.test"], "x"), "x");
    let err = smtp(settings).deliver(&mail).await.unwrap_err();
    assert!(matches!(err, DeliveryError::CleartextAuth { .. }), "{err:?}");
    assert!(err.is_permanent() && err.step() == Some(Step::Auth));
    assert_eq!(
        err.to_string(),
        format!(
            "auth: 127.0.0.1:{port} offers no TLS, so the password for `svc-callnote` was not sent (credentials go only \
             over TLS); turn STARTTLS on at the server, or use smtps:// if it has a TLS port; if it takes mail without \
             AUTH, remove delivery.username and its password"
        )
    );
    let received = server.join().unwrap();
    assert_eq!(received.len(), 1, "EHLO and nothing else: {received:?}");
    assert!(received[0].starts_with("EHLO "), "{received:?}");
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
