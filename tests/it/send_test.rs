//! `callnote send-test` as an admin runs it, against the real aiosmtpd (STARTTLS + AUTH with
//! the test CA): the enrichment outcome and SMTP transcript it prints, and the message the
//! server received, read back from its Maildir. With `--dry-run` (no server): a test mail is
//! addressed to exactly the given address, dated now, marked as a test, and every run has
//! its own Message-ID.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mail_parser::{MessageParser, MimeHeaders};
use serde_json::Value;

use crate::common::{fixture, server_env};
use crate::deliver::unique;

struct Smtp {
    host: String,
    port: String,
    user: String,
    pass: String,
    ca: String,
    maildir: PathBuf,
}

fn smtp() -> Option<Smtp> {
    Some(Smtp {
        host: server_env("SMTP_TLS_NAME")?,
        port: server_env("SMTP_PORT")?,
        user: server_env("SMTP_USER")?,
        pass: server_env("SMTP_PASS")?,
        ca: server_env("SMTP_CA")?,
        maildir: server_env("SMTP_MAILDIR")?.into(),
    })
}

/// A configuration for the test server, with the fixture directory.
fn config(dir: &Path, smtp: &Smtp) -> PathBuf {
    let path = dir.join("callnote.toml");
    let text = format!(
        "[dialplan]\nregion = \"US\"\noutside_line_code = \"9\"\n[directory]\nsource = {:?}\n[mail]\nfrom = \"Voice Mail <voicemail@contoso.com>\"\n\
         [delivery]\nurl = \"smtp://{}:{}\"\nstarttls = \"required\"\nusername = {:?}\npassword_env = \"CALLNOTE_TEST_SMTP_PASSWORD\"\nca_file = {:?}\n",
        fixture("directory.ldif"),
        smtp.host,
        smtp.port,
        smtp.user,
        smtp.ca
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn send_test(config: &Path, password: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callnote"))
        .env("CALLNOTE_TEST_SMTP_PASSWORD", password)
        .arg("--config")
        .arg(config)
        .arg("send-test")
        .args(args)
        .output()
        .unwrap()
}

/// The envelope and bytes of the one message the server received for `rcpt`.
fn delivered(maildir: &Path, rcpt: &str) -> (Value, Vec<u8>) {
    let mut found = delivered_all(maildir, rcpt);
    assert_eq!(found.len(), 1, "exactly one delivery to {rcpt}");
    found.remove(0)
}

/// The envelope and bytes of every message the server received for `rcpt`.
fn delivered_all(maildir: &Path, rcpt: &str) -> Vec<(Value, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(maildir.join("envelope")).unwrap() {
        let path = entry.unwrap().path();
        let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        if json["rcpt_tos"].as_array().unwrap().iter().any(|r| r == rcpt) {
            found.push((json, std::fs::read(maildir.join("new").join(path.file_stem().unwrap())).unwrap()));
        }
    }
    found
}

/// The headers of a test message that must hold on every run: marked as a test, dated
/// within minutes of now. Returns its Message-ID.
fn assert_a_test_dated_now(bytes: &[u8]) -> String {
    let mail = MessageParser::default().parse(bytes).unwrap();
    assert_eq!(mail.header_raw("X-Callnote-Test").map(str::trim), Some("yes"));
    let date = mail.date().expect("a Date").to_timestamp();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - date).abs() < 300, "dated now, not the sample's call time: {:?}", mail.date());
    mail.message_id().expect("a Message-ID").to_owned()
}

/// The raw `To:` line of a message.
fn to_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.split("\r\n\r\n").next().unwrap().lines().find(|l| l.starts_with("To: ")).unwrap_or_default().to_owned()
}

/// `send-test ARGS --dry-run DIR/out` against the fixture directory (config in `dir`): what
/// it printed and the message it wrote.
fn dry_run(dir: &Path, args: &[&str]) -> (String, Vec<u8>) {
    let config = dir.join("callnote.toml");
    std::fs::write(&config, format!("[dialplan]\nregion = \"US\"\n[directory]\nsource = {:?}\n", fixture("directory.ldif"))).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_callnote"))
        .arg("--config")
        .arg(&config)
        .arg("send-test")
        .args(args)
        .arg("--dry-run")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let written =
        stdout.lines().find_map(|l| l.strip_prefix("wrote ")).and_then(|l| l.split(" (").next()).unwrap_or_else(|| panic!("{stdout}"));
    let bytes = std::fs::read(written).unwrap();
    (stdout, bytes)
}

#[test]
fn a_dry_run_is_for_exactly_the_given_address_dated_now_and_new_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = |to: &str| dry_run(dir.path(), &["--to", to, "--caller", "+1 289 555 0147"]).1;

    // The directory names the address: its own name, never the sample recipient's.
    let first = run("amara.okafor@contoso.com");
    assert_eq!(to_line(&first), "To: \"Amara Okafor\" <amara.okafor@contoso.com>");
    let second = run("amara.okafor@contoso.com");
    let (a, b) = (assert_a_test_dated_now(&first), assert_a_test_dated_now(&second));
    assert_ne!(a, b, "every test has its own Message-ID");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2, "the second test does not replace the first");

    // An address the directory does not know: the bare address.
    let unknown = run("admin@contoso.com");
    assert_eq!(to_line(&unknown), "To: admin@contoso.com");
    assert_a_test_dated_now(&unknown);
}

#[test]
fn two_tests_to_one_mailbox_both_arrive_each_with_its_own_message_id() {
    let Some(smtp) = smtp() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &smtp);
    let to = unique("admin");
    for _ in 0..2 {
        let out = send_test(&config, &smtp.pass, &["--to", &to, "--caller", "+1 289 555 0147"]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut ids = Vec::new();
    for (_, bytes) in delivered_all(&smtp.maildir, &to) {
        assert_eq!(to_line(&bytes), format!("To: {to}"), "exactly the given address, no borrowed name");
        ids.push(assert_a_test_dated_now(&bytes));
    }
    assert_eq!(ids.len(), 2, "both tests arrived");
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn a_built_missed_call_reaches_the_mailbox_with_number_and_resolved_name() {
    let Some(smtp) = smtp() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &smtp);
    let to = unique("admin");
    let out = send_test(&config, &smtp.pass, &["--to", &to, "--caller", "+1 289 555 0147"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("caller     +1 289 555 0147 -> resolved, Priya Raman via mobile"), "{stdout}");
    assert!(stdout.contains("tls        STARTTLS, TLS"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("auth ") && l.contains(&format!("as `{}`", smtp.user)) && l.contains("235")), "{stdout}");
    assert!(stdout.contains(&format!("rcpt to    <{to}> 250")), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("queue id") && !l.contains("not given")), "{stdout}");

    let (envelope, bytes) = delivered(&smtp.maildir, &to);
    assert_eq!(envelope["tls"], true);
    assert_eq!(envelope["auth"], smtp.user.as_str());
    assert_a_test_dated_now(&bytes);
    assert_eq!(to_line(&bytes), format!("To: {to}"), "the sample recipient's name is not borrowed");
    let mail = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(mail.subject(), Some("Missed call from Priya Raman (mobile), (289) 555-0147"));
    let text = mail.body_text(0).unwrap();
    assert!(text.contains("Priya Raman") && text.contains("(289) 555-0147"), "{text}");
}

#[test]
fn a_real_voicemail_header_is_redirected_with_its_audio() {
    let Some(smtp) = smtp() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &smtp);
    let to = unique("admin");
    let header = fixture("vm-legacy-blog-shape.txt");
    let out = send_test(&config, &smtp.pass, &["--to", &to, "--file", header.to_str().unwrap(), "--locale", "fr-FR"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, bytes) = delivered(&smtp.maildir, &to);
    let mail = MessageParser::default().parse(&bytes).unwrap();
    assert!(mail.subject().unwrap().starts_with("Message vocal"), "{:?}", mail.subject());
    let attachments: Vec<_> = mail.attachments().collect();
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0].content_type().map(|c| (c.ctype(), c.subtype())), Some(("audio", Some("wav"))));
    assert_eq!(mail.to().and_then(|a| a.first()).and_then(|a| a.address()), Some(to.as_str()), "redirected to --to");
}

#[test]
fn a_wrong_password_names_the_step_and_says_permanent() {
    let Some(smtp) = smtp() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &smtp);
    let out = send_test(&config, "not-the-password", &["--to", &unique("admin")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("step: deliver (permanent failure)") && stderr.contains("535"), "{stderr}");
    assert!(!stderr.contains("not-the-password"), "the password never appears");
}

#[test]
fn a_missing_password_variable_is_a_configuration_error_before_anything_is_sent() {
    let Some(smtp) = smtp() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &smtp);
    let out = Command::new(env!("CARGO_BIN_EXE_callnote"))
        .env_remove("CALLNOTE_TEST_SMTP_PASSWORD")
        .arg("--config")
        .arg(&config)
        .args(["send-test", "--to", "admin@contoso.com"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CALLNOTE_TEST_SMTP_PASSWORD") && stderr.contains("not set"), "{stderr}");
    assert!(stderr.contains("step: configure delivery"), "{stderr}");
}

#[test]
fn a_dry_run_digest_lists_every_call_from_the_given_caller() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, bytes) =
        dry_run(dir.path(), &["--to", "admin@contoso.com", "--kind", "missed_call_digest", "--caller", "+1 289 555 0147"]);
    assert!(stdout.contains("kind       missed_call_digest\n"), "{stdout}");
    let mail = MessageParser::default().parse(&bytes).unwrap();
    let text = mail.body_text(0).unwrap();
    assert!(mail.subject().unwrap().starts_with("3 more calls from "), "{:?}", mail.subject());
    assert_eq!(text.matches("  - 2:0").count(), 3, "{text}");
    assert_eq!(text.matches("(289) 555-0147").count(), 4, "the From row and every call: {text}");
}
