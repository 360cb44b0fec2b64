//! SMTP delivery against the real aiosmtpd started by `scripts/smtp-server.sh` (STARTTLS +
//! AUTH, implicit TLS, a plain listener, a certificate for the wrong name, scripted
//! 550/451/greylisted recipients). Each message is read back from the server's Maildir with
//! its envelope JSON, which says whether TLS and AUTH were used.
//! Skipped when the server's variables are not set (see `common::server_env`).

use std::path::PathBuf;

use callnote::config::{DeliverySettings, SecretSource, SmtpSettings, StartTls};
use callnote::deliver::{self, Deliver, DeliveryError, Outgoing, Step, TlsMode};
use rustls::CertificateError;
use serde_json::Value;

use super::{assert_mime, chain, message, smtp_settings, unique};
use crate::common::server_env;

struct Server {
    host: String,
    tls_name: String,
    port: u16,
    plain_port: u16,
    smtps_port: u16,
    badname_port: u16,
    user: String,
    ca: PathBuf,
    wrong_ca: PathBuf,
    maildir: PathBuf,
}

fn server() -> Option<Server> {
    let port = |var: &str| server_env(var).map(|p| p.parse::<u16>().expect("a port number"));
    Some(Server {
        host: server_env("SMTP_HOST")?,
        tls_name: server_env("SMTP_TLS_NAME")?,
        port: port("SMTP_PORT")?,
        plain_port: port("SMTP_PLAIN_PORT")?,
        smtps_port: port("SMTP_SMTPS_PORT")?,
        badname_port: port("SMTP_BADNAME_PORT")?,
        user: server_env("SMTP_USER")?,
        ca: server_env("SMTP_CA")?.into(),
        wrong_ca: server_env("SMTP_WRONG_CA")?.into(),
        maildir: server_env("SMTP_MAILDIR")?.into(),
    })
}

impl Server {
    /// STARTTLS required + AUTH with the password from `SMTP_PASS`, trusting the test CA.
    fn settings(&self) -> SmtpSettings {
        SmtpSettings {
            starttls: StartTls::Required,
            username: Some(self.user.clone()),
            password: Some(SecretSource::Env("SMTP_PASS".into())),
            ca_file: Some(self.ca.clone()),
            ..smtp_settings(&self.host, self.port)
        }
    }

    /// The envelope JSON and exact bytes of every message delivered to `rcpt`.
    fn delivered_to(&self, rcpt: &str) -> Vec<(Value, Vec<u8>)> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(self.maildir.join("envelope")).unwrap() {
            let path = entry.unwrap().path();
            let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            if json["rcpt_tos"].as_array().unwrap().iter().any(|r| r == rcpt) {
                let key = path.file_stem().unwrap();
                found.push((json, std::fs::read(self.maildir.join("new").join(key)).unwrap()));
            }
        }
        found
    }

    fn only_delivery(&self, rcpt: &str) -> (Value, Vec<u8>) {
        let mut all = self.delivered_to(rcpt);
        assert_eq!(all.len(), 1, "exactly one delivery to {rcpt}");
        all.remove(0)
    }
}

fn transport(settings: SmtpSettings) -> Box<dyn Deliver> {
    deliver::install_crypto_provider();
    deliver::from_settings(&DeliverySettings::Smtp(settings)).unwrap()
}

#[tokio::test]
async fn starttls_auth_delivery_is_read_back_from_the_maildir() {
    let Some(srv) = server() else { return };
    let to = unique("hannah.whitaker");
    let mail = Outgoing::new(&message(&[&to], "Voice mail from Priya Raman"), "1c941dfb");
    let receipt = transport(srv.settings()).deliver(&mail).await.unwrap();

    let (envelope, bytes) = srv.only_delivery(&to);
    assert_eq!(envelope["mail_from"], "voicemail@contoso.test");
    assert_eq!(envelope["rcpt_tos"], serde_json::json!([to]));
    assert_eq!(envelope["listener"], "main");
    assert_eq!(envelope["tls"], true, "STARTTLS was used");
    assert_eq!(envelope["auth"], srv.user.as_str(), "AUTH was used");
    assert!(bytes == mail.bytes, "the server got exactly our bytes ({} vs {} bytes)", bytes.len(), mail.bytes.len());
    assert_mime(&bytes, "Voice mail from Priya Raman");

    let queue_id = envelope["queue_id"].as_str().unwrap();
    assert_eq!(receipt.queue_id.as_deref(), Some(queue_id));
    assert_eq!(receipt.summary, format!("250 2.0.0 Ok: queued as {queue_id}"));
    assert_eq!(receipt.accepted, vec![to.parse::<lettre::Address>().unwrap()]);
    assert!(receipt.refused.is_empty());

    let smtp = receipt.smtp.as_ref().unwrap();
    let s = &smtp.session;
    assert_eq!(s.greeting, "220 localhost callnote-test-smtpd");
    assert_eq!(s.tls_mode, TlsMode::StartTls);
    let tls = s.tls.as_ref().expect("the server hello was read");
    assert_eq!(Some(tls.version.as_str()), envelope["tls_version"].as_str(), "same TLS version as the server saw");
    assert!(tls.cipher_suite.starts_with("TLS13_"), "{}", tls.cipher_suite);
    assert_eq!(s.auth_offered, vec!["PLAIN", "LOGIN"]);
    let (mechanism, user, reply) = s.auth.as_ref().unwrap();
    assert_eq!((mechanism.as_str(), user.as_str(), reply.code), ("PLAIN", srv.user.as_str(), 235));
    assert_eq!(smtp.recipients.len(), 1);
    assert_eq!(smtp.recipients[0].reply.to_string(), "250 2.1.5 Ok");

    let transcript = receipt.transcript();
    let lines: Vec<&str> = transcript.lines().collect();
    assert_eq!(lines[0], format!("server     {h}:{p} ({h}:{p})", h = srv.host, p = srv.port));
    assert_eq!(lines[1], "greeting   220 localhost callnote-test-smtpd");
    assert_eq!(lines[3], format!("tls        STARTTLS, {}, {}, certificate verified for `{}`", tls.version, tls.cipher_suite, srv.host));
    assert_eq!(lines[4], format!("auth       PLAIN as `{}`: 235 2.7.0 Authentication successful (offered: PLAIN LOGIN)", srv.user));
    assert_eq!(lines[6], format!("rcpt to    <{to}> 250 2.1.5 Ok"));
    assert_eq!(lines[8], format!("queue id   {queue_id}"));
}

#[tokio::test]
async fn implicit_tls_delivery() {
    let Some(srv) = server() else { return };
    let to = unique("oliver");
    let settings = SmtpSettings { implicit_tls: true, port: srv.smtps_port, ..srv.settings() };
    let receipt = transport(settings).deliver(&Outgoing::new(&message(&[&to], "smtps"), "smtps")).await.unwrap();
    let (envelope, bytes) = srv.only_delivery(&to);
    assert_eq!((envelope["listener"].as_str(), envelope["tls"].as_bool()), (Some("smtps"), Some(true)));
    assert_eq!(envelope["auth"], srv.user.as_str());
    assert_mime(&bytes, "smtps");
    let s = &receipt.smtp.as_ref().unwrap().session;
    assert_eq!((s.tls_mode, s.greeting.as_str()), (TlsMode::Implicit, "220 localhost callnote-test-smtpd"));
    assert_eq!(Some(s.tls.as_ref().unwrap().version.as_str()), envelope["tls_version"].as_str());
    assert_eq!(receipt.queue_id.as_deref(), envelope["queue_id"].as_str());
}

#[tokio::test]
async fn host_name_is_checked_against_the_dns_name_in_the_certificate() {
    let Some(srv) = server() else { return };
    let to = unique("liam");
    let settings = SmtpSettings { host: srv.tls_name.clone(), starttls: StartTls::Opportunistic, ..srv.settings() };
    let receipt = transport(settings).deliver(&Outgoing::new(&message(&[&to], "by name"), "by-name")).await.unwrap();
    let s = &receipt.smtp.as_ref().unwrap().session;
    assert_eq!((s.tls_mode, s.tls_name.as_deref()), (TlsMode::StartTls, Some("localhost")));
    assert_eq!(srv.only_delivery(&to).0["tls"], true, "opportunistic STARTTLS used when offered");
}

#[tokio::test]
async fn plain_listener_without_tls_or_auth() {
    let Some(srv) = server() else { return };
    // starttls = off; and opportunistic, which the plain listener cannot honour. No AUTH.
    for starttls in [StartTls::Off, StartTls::Opportunistic] {
        let to = unique("amara");
        let settings = SmtpSettings { starttls, ca_file: Some(srv.ca.clone()), ..smtp_settings(&srv.host, srv.plain_port) };
        let receipt = transport(settings).deliver(&Outgoing::new(&message(&[&to], "plain"), "plain")).await.unwrap();
        let (envelope, _) = srv.only_delivery(&to);
        assert_eq!((envelope["tls"].as_bool(), envelope["auth"].is_null()), (Some(false), true));
        let transcript = receipt.transcript();
        assert!(transcript.contains("\ntls        none\n"), "{transcript}");
        assert!(transcript.contains("\nauth       not used (offered: none)\n"), "{transcript}");
    }
}

#[tokio::test]
async fn required_starttls_not_offered_is_a_clear_permanent_error() {
    let Some(srv) = server() else { return };
    let settings = SmtpSettings { port: srv.plain_port, ..srv.settings() };
    let to = unique("nobody");
    let err = transport(settings).deliver(&Outgoing::new(&message(&[&to], "x"), "x")).await.unwrap_err();
    assert!(matches!(err, DeliveryError::StartTlsNotOffered { .. }), "{err:?}");
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!("starttls: {}:{} does not offer STARTTLS, and delivery.starttls is `required`", srv.host, srv.plain_port)
    );
    assert!(srv.delivered_to(&to).is_empty());
}

#[tokio::test]
async fn wrong_ca_is_refused() {
    let Some(srv) = server() else { return };
    let settings = SmtpSettings { ca_file: Some(srv.wrong_ca.clone()), ..srv.settings() };
    let err = transport(settings).deliver(&Outgoing::new(&message(&[&unique("x")], "x"), "x")).await.unwrap_err();
    let DeliveryError::Tls { source, .. } = &err else { panic!("expected a TLS error, got {err:?}") };
    assert_eq!(*source, rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer));
    assert!(err.is_permanent());
    assert_eq!(
        chain(&err),
        format!(
            "tls: handshake with {h}:{p} failed (certificate checked for `{h}`): invalid peer certificate: UnknownIssuer",
            h = srv.host,
            p = srv.port
        )
    );
}

#[tokio::test]
async fn certificate_for_another_name_is_refused() {
    let Some(srv) = server() else { return };
    for settings in [
        SmtpSettings { port: srv.badname_port, ..srv.settings() },
        SmtpSettings { port: srv.badname_port, host: srv.tls_name.clone(), ..srv.settings() },
    ] {
        let err = transport(settings).deliver(&Outgoing::new(&message(&[&unique("x")], "x"), "x")).await.unwrap_err();
        let DeliveryError::Tls { source, .. } = &err else { panic!("expected a TLS error, got {err:?}") };
        assert!(
            matches!(source, rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { presented, .. }) if presented == &["DnsName(\"mail.invalid\")".to_owned()]),
            "{source:?}"
        );
        assert_eq!(err.step(), Some(Step::Tls));
        assert!(chain(&err).ends_with("is only valid for DnsName(\"mail.invalid\")"), "{}", chain(&err));
    }
}

#[tokio::test]
async fn wrong_password_is_535_and_permanent() {
    let Some(srv) = server() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("password");
    std::fs::write(&file, "not-the-password\n").unwrap();
    let settings = SmtpSettings { password: Some(SecretSource::File(file)), ..srv.settings() };
    let err = transport(settings).deliver(&Outgoing::new(&message(&[&unique("x")], "x"), "x")).await.unwrap_err();
    assert!(matches!(&err, DeliveryError::AuthRefused { reply, .. } if reply.code == 535), "{err:?}");
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!(
            "auth: {}:{} refused PLAIN for `{}`: 535 5.7.8 Authentication credentials invalid",
            srv.host, srv.port, srv.user
        )
    );
}

#[tokio::test]
async fn rejected_recipient_is_550_permanent_and_the_connection_is_kept() {
    let Some(srv) = server() else { return };
    let t = transport(SmtpSettings { pool_size: 1, ..srv.settings() });
    let rejected = unique("rejected");
    let err = t.deliver(&Outgoing::new(&message(&[&rejected], "x"), "x")).await.unwrap_err();
    let DeliveryError::RecipientsRefused { replies, .. } = &err else { panic!("expected refused recipients, got {err:?}") };
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].reply.code, 550);
    assert!(replies[0].is_permanent() && err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!(
            "rcpt to: {}:{} refused every recipient: <{rejected}> 550 5.1.1 <{rejected}>: Recipient address rejected: User unknown",
            srv.host, srv.port
        )
    );

    // One good and one refused recipient: delivered to the good one, the refusal reported.
    let good = unique("hannah");
    let receipt = t.deliver(&Outgoing::new(&message(&[&good, &rejected], "mixed"), "mixed")).await.unwrap();
    assert_eq!(receipt.accepted, vec![good.parse::<lettre::Address>().unwrap()]);
    assert_eq!(receipt.refused.len(), 1);
    assert_eq!((receipt.refused[0].address.to_string(), receipt.refused[0].reply.code), (rejected.clone(), 550));
    assert!(receipt.smtp.as_ref().unwrap().reused_connection, "RSET kept the connection after the refusal");
    assert_eq!(srv.only_delivery(&good).0["rcpt_tos"], serde_json::json!([good]));
    assert!(srv.delivered_to(&rejected).is_empty());
}

#[tokio::test]
async fn recipient_refused_with_451_is_transient() {
    let Some(srv) = server() else { return };
    let to = unique("tempfail");
    let err = transport(srv.settings()).deliver(&Outgoing::new(&message(&[&to], "x"), "x")).await.unwrap_err();
    assert!(err.is_transient());
    assert_eq!(err.reply().map(|r| r.code), Some(451));
    assert_eq!(err.step(), Some(Step::RcptTo));
}

#[tokio::test]
async fn greylisted_451_then_250_is_delivered_once() {
    let Some(srv) = server() else { return };
    let t = transport(srv.settings());
    let to = unique("greylist");
    let mail = Outgoing::new(&message(&[&to], "greylisted"), "greylisted");
    let first = t.deliver(&mail).await.unwrap_err();
    assert!(first.is_transient(), "{first}");
    assert_eq!(first.reply().map(|r| r.code), Some(451));
    assert!(srv.delivered_to(&to).is_empty());
    let receipt = t.deliver(&mail).await.unwrap();
    let (envelope, bytes) = srv.only_delivery(&to);
    assert_eq!(receipt.queue_id.as_deref(), envelope["queue_id"].as_str());
    assert_mime(&bytes, "greylisted");
}

#[tokio::test]
async fn a_burst_shares_the_pooled_connections() {
    let Some(srv) = server() else { return };
    let t = transport(SmtpSettings { pool_size: 2, ..srv.settings() });
    let recipients: Vec<String> = (0..12).map(|_| unique("burst")).collect();
    let mails: Vec<Outgoing> = recipients.iter().map(|r| Outgoing::new(&message(&[r], "burst"), "burst")).collect();
    let receipts = futures_join(mails.iter().map(|m| t.deliver(m))).await;
    let mut peers = std::collections::BTreeSet::new();
    for (rcpt, receipt) in recipients.iter().zip(&receipts) {
        let receipt = receipt.as_ref().unwrap();
        let (envelope, _) = srv.only_delivery(rcpt);
        assert_eq!(receipt.queue_id.as_deref(), envelope["queue_id"].as_str());
        peers.insert(envelope["peer"].as_str().unwrap().to_owned());
    }
    assert!(peers.len() <= 2, "12 messages over at most 2 connections, got {peers:?}");
    let reused = receipts.iter().filter(|r| r.as_ref().unwrap().smtp.as_ref().unwrap().reused_connection).count();
    assert_eq!(reused, 12 - peers.len());
    t.close().await.unwrap();
}

/// Polls the futures concurrently on this task; their outputs in order.
async fn futures_join<F: std::future::Future + Unpin>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Option<F>> = futures.map(Some).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (slot, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if let Some(fut) = slot
                && let std::task::Poll::Ready(out) = std::pin::Pin::new(fut).poll(cx)
            {
                *output = Some(out);
                *slot = None;
            }
        }
        if pending.iter().all(Option::is_none) { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("every future finished")).collect()
}
