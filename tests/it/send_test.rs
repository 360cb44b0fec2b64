//! `callnote send-test` as an admin runs it, against the real aiosmtpd (STARTTLS + AUTH with
//! the test CA): the enrichment outcome and SMTP transcript it prints, and the message the
//! server received, read back from its Maildir.

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
    let mut found = Vec::new();
    for entry in std::fs::read_dir(maildir.join("envelope")).unwrap() {
        let path = entry.unwrap().path();
        let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        if json["rcpt_tos"].as_array().unwrap().iter().any(|r| r == rcpt) {
            found.push((json, std::fs::read(maildir.join("new").join(path.file_stem().unwrap())).unwrap()));
        }
    }
    assert_eq!(found.len(), 1, "exactly one delivery to {rcpt}");
    found.remove(0)
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
        .arg("--config").arg(&config).args(["send-test", "--to", "admin@contoso.com"])
        .output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CALLNOTE_TEST_SMTP_PASSWORD") && stderr.contains("not set"), "{stderr}");
    assert!(stderr.contains("step: configure delivery"), "{stderr}");
}
