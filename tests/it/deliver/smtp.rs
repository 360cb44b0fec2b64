//! SMTP delivery against the real aiosmtpd started by `scripts/smtp-server.sh` (STARTTLS +
//! AUTH, implicit TLS, a plain listener, a certificate for the wrong name, a self-signed
//! certificate, AUTH offered in clear, scripted 550/451/greylisted recipients). Each message is
//! read back from the server's Maildir with its envelope JSON, which says whether TLS and AUTH
//! were used; the server also records every QUIT it receives.
//! Skipped when the server's variables are not set (see `common::server_env`).

use std::path::PathBuf;

use callnote::config::{DeliverySettings, Fingerprint, SecretSource, SmtpSettings, TlsLevel};
use callnote::deliver::{self, Deliver, DeliveryError, Outgoing, Step, TlsMode};
use rustls::CertificateError;
use rustls::pki_types::pem::PemObject as _;
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
    selfsigned_port: u16,
    cleartext_port: u16,
    user: String,
    ca: PathBuf,
    wrong_ca: PathBuf,
    selfsigned_cert: PathBuf,
    /// `sha256:AB:CD:…` as openssl prints it.
    server_fingerprint: String,
    selfsigned_fingerprint: String,
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
        selfsigned_port: port("SMTP_SELFSIGNED_PORT")?,
        cleartext_port: port("SMTP_CLEARTEXT_PORT")?,
        user: server_env("SMTP_USER")?,
        ca: server_env("SMTP_CA")?.into(),
        wrong_ca: server_env("SMTP_WRONG_CA")?.into(),
        selfsigned_cert: server_env("SMTP_SELFSIGNED_CERT")?.into(),
        server_fingerprint: server_env("SMTP_SERVER_FINGERPRINT")?,
        selfsigned_fingerprint: server_env("SMTP_SELFSIGNED_FINGERPRINT")?,
        maildir: server_env("SMTP_MAILDIR")?.into(),
    })
}

impl Server {
    /// Level `verify` + AUTH with the password from `SMTP_PASS`, trusting the test CA.
    fn settings(&self) -> SmtpSettings {
        SmtpSettings {
            tls_level: TlsLevel::Verify,
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

    /// True when the connection (its id in the envelope JSON) said QUIT.
    fn said_quit(&self, connection: &str) -> bool {
        self.maildir.join("quit").join(connection).exists()
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
    let settings = SmtpSettings { host: srv.tls_name.clone(), ..srv.settings() };
    let receipt = transport(settings).deliver(&Outgoing::new(&message(&[&to], "by name"), "by-name")).await.unwrap();
    let s = &receipt.smtp.as_ref().unwrap().session;
    assert_eq!((s.tls_mode, s.certificate.as_deref()), (TlsMode::StartTls, Some("verified for `localhost`")));
    assert_eq!(srv.only_delivery(&to).0["tls"], true);
}

#[tokio::test]
async fn plain_listener_without_tls_or_auth() {
    let Some(srv) = server() else { return };
    // Level none; and may, which the plain listener cannot honour. No AUTH.
    for tls_level in [TlsLevel::None, TlsLevel::May] {
        let to = unique("amara");
        let settings = SmtpSettings { tls_level, ca_file: Some(srv.ca.clone()), ..smtp_settings(&srv.host, srv.plain_port) };
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
        format!(
            "starttls: {}:{} does not offer STARTTLS, and delivery.tls_security_level `verify` requires TLS; \
             turn STARTTLS on at the server, or use smtps:// if it has a TLS port",
            srv.host, srv.plain_port
        )
    );
    assert!(srv.delivered_to(&to).is_empty());
}

#[tokio::test]
async fn wrong_ca_is_refused() {
    let Some(srv) = server() else { return };
    let settings = SmtpSettings { ca_file: Some(srv.wrong_ca.clone()), ..srv.settings() };
    let err = transport(settings).deliver(&Outgoing::new(&message(&[&unique("x")], "x"), "x")).await.unwrap_err();
    let DeliveryError::Tls { source, .. } = &err else { panic!("expected a TLS error, got {err:?}") };
    assert_eq!(**source, rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer));
    assert!(err.is_permanent());
    assert_eq!(
        chain(&err),
        format!(
            "tls: handshake with {h}:{p} failed (certificate checked for `{h}`); fix: set delivery.ca_file to the CA \
             that issued it (or to the certificate itself if self-signed), or pin it with tls_security_level = \
             \"fingerprint\" and tls_fingerprint = \"{fp}\" (the certificate this server presented; compare it with \
             the server's): invalid peer certificate: UnknownIssuer",
            h = srv.host,
            p = srv.port,
            fp = srv.server_fingerprint,
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
            matches!(source.as_ref(), rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { presented, .. }) if presented == &["DnsName(\"mail.invalid\")".to_owned()]),
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
        format!("auth: {}:{} refused PLAIN for `{}`: 535 5.7.8 Authentication credentials invalid", srv.host, srv.port, srv.user)
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

// ---------------------------------------------------------------------------------------
// TLS levels
// ---------------------------------------------------------------------------------------

impl Server {
    /// The self-signed listener, with AUTH, at `level`.
    fn selfsigned(&self, tls_level: TlsLevel) -> SmtpSettings {
        SmtpSettings { tls_level, port: self.selfsigned_port, ca_file: None, ..self.settings() }
    }
}

fn pin(text: &str) -> Vec<Fingerprint> {
    vec![text.parse().unwrap()]
}

/// Delivers one message with `settings`; checks it arrived over TLS with AUTH; the transcript.
async fn delivered_over_tls(srv: &Server, settings: SmtpSettings, listener: &str) -> String {
    let to = unique("tls-level");
    let receipt = transport(settings).deliver(&Outgoing::new(&message(&[&to], "level"), "level")).await.unwrap();
    let (envelope, _) = srv.only_delivery(&to);
    assert_eq!(envelope["listener"], listener);
    assert_eq!((envelope["tls"].as_bool(), envelope["auth"].as_str()), (Some(true), Some(srv.user.as_str())));
    receipt.transcript()
}

#[tokio::test]
async fn self_signed_certificate_pinned_by_its_fingerprint_with_or_without_colons() {
    let Some(srv) = server() else { return };
    let der = rustls::pki_types::CertificateDer::from_pem_file(&srv.selfsigned_cert).unwrap();
    let ours = Fingerprint::of(&der);
    assert_eq!(ours.to_string(), srv.selfsigned_fingerprint, "the same SHA-256 as openssl's");
    let bare: String = srv.selfsigned_fingerprint.trim_start_matches("sha256:").replace(':', "").to_ascii_lowercase();
    for written in [srv.selfsigned_fingerprint.clone(), bare] {
        let settings = SmtpSettings { tls_fingerprints: pin(&written), ..srv.selfsigned(TlsLevel::Fingerprint) };
        let transcript = delivered_over_tls(&srv, settings, "selfsigned").await;
        assert!(transcript.contains(", certificate pinned by its SHA-256 fingerprint\n"), "{transcript}");
    }
}

#[tokio::test]
async fn self_signed_certificate_is_accepted_unverified_by_may_and_encrypt() {
    let Some(srv) = server() else { return };
    for level in [TlsLevel::May, TlsLevel::Encrypt] {
        let transcript = delivered_over_tls(&srv, srv.selfsigned(level), "selfsigned").await;
        assert!(transcript.contains(&format!(", certificate not verified (tls_security_level {level})\n")), "{transcript}");
    }
}

#[tokio::test]
async fn self_signed_certificate_is_refused_by_verify_with_how_to_fix() {
    let Some(srv) = server() else { return };
    // The system's roots, and a CA file that did not sign it.
    for ca_file in [None, Some(srv.ca.clone())] {
        let settings = SmtpSettings { ca_file, ..srv.selfsigned(TlsLevel::Verify) };
        let err = transport(settings).deliver(&Outgoing::new(&message(&[&unique("x")], "x"), "x")).await.unwrap_err();
        let DeliveryError::Tls { source, .. } = &err else { panic!("expected a TLS error, got {err:?}") };
        assert!(matches!(**source, rustls::Error::InvalidCertificate(_)), "{source:?}");
        assert!(err.is_permanent());
        assert_eq!(
            err.to_string(),
            format!(
                "tls: handshake with {h}:{p} failed (certificate checked for `{h}`); fix: set delivery.ca_file to the \
                 CA that issued it (or to the certificate itself if self-signed), or pin it with tls_security_level = \
                 \"fingerprint\" and tls_fingerprint = \"{fp}\" (the certificate this server presented; compare it with \
                 the server's)",
                h = srv.host,
                p = srv.selfsigned_port,
                fp = srv.selfsigned_fingerprint,
            )
        );
    }
}

#[tokio::test]
async fn self_signed_certificate_given_as_ca_file_is_trusted_by_verify() {
    let Some(srv) = server() else { return };
    // webpki alone refuses it (a CA certificate used as the server's own); as the exact
    // certificate listed in the CA file it is trusted, its name still checked.
    for host in [srv.host.clone(), srv.tls_name.clone()] {
        let settings = SmtpSettings { host: host.clone(), ca_file: Some(srv.selfsigned_cert.clone()), ..srv.selfsigned(TlsLevel::Verify) };
        let transcript = delivered_over_tls(&srv, settings, "selfsigned").await;
        assert!(transcript.contains(&format!(", certificate verified for `{host}`\n")), "{transcript}");
    }
    // Listed, but presented by another server: verified the usual way (and refused).
    let settings = SmtpSettings { ca_file: Some(srv.selfsigned_cert.clone()), ..srv.settings() };
    let err = transport(settings).deliver(&Outgoing::new(&message(&[&unique("x")], "x"), "x")).await.unwrap_err();
    assert!(matches!(&err, DeliveryError::Tls { .. }), "{err:?}");
}

#[tokio::test]
async fn a_certificate_that_is_not_pinned_is_refused_naming_its_fingerprint() {
    let Some(srv) = server() else { return };
    let settings = SmtpSettings { tls_fingerprints: pin(&srv.server_fingerprint), ..srv.selfsigned(TlsLevel::Fingerprint) };
    let to = unique("x");
    let err = transport(settings).deliver(&Outgoing::new(&message(&[&to], "x"), "x")).await.unwrap_err();
    assert!(matches!(&err, DeliveryError::Tls { .. }) && err.is_permanent(), "{err:?}");
    assert_eq!(
        chain(&err),
        format!(
            "tls: handshake with {}:{} failed (certificate checked against delivery.tls_fingerprint); the server's \
             certificate is {}, not one of delivery.tls_fingerprint (if it was renewed, check the new one on the server \
             and pin it): invalid peer certificate: ApplicationVerificationFailure",
            srv.host, srv.selfsigned_port, srv.selfsigned_fingerprint
        )
    );
    assert!(srv.delivered_to(&to).is_empty());
}

#[tokio::test]
async fn smtps_is_tls_from_the_first_byte_and_the_level_decides_the_check() {
    let Some(srv) = server() else { return };
    let smtps = |tls_level| SmtpSettings { tls_level, implicit_tls: true, port: srv.smtps_port, ca_file: None, ..srv.settings() };
    for (settings, check) in [
        (smtps(TlsLevel::May), "not verified (tls_security_level may)".to_owned()),
        (smtps(TlsLevel::Encrypt), "not verified (tls_security_level encrypt)".to_owned()),
        (
            SmtpSettings { tls_fingerprints: pin(&srv.server_fingerprint), ..smtps(TlsLevel::Fingerprint) },
            "pinned by its SHA-256 fingerprint".to_owned(),
        ),
        (SmtpSettings { ca_file: Some(srv.ca.clone()), ..smtps(TlsLevel::Verify) }, format!("verified for `{}`", srv.host)),
    ] {
        let transcript = delivered_over_tls(&srv, settings, "smtps").await;
        assert!(transcript.contains("tls        implicit (smtps), "), "{transcript}");
        assert!(transcript.contains(&format!(", certificate {check}\n")), "{transcript}");
    }
    // verify without the test CA: the system's roots do not know it.
    let err = transport(smtps(TlsLevel::Verify)).deliver(&Outgoing::new(&message(&[&unique("x")], "x"), "x")).await.unwrap_err();
    let DeliveryError::Tls { source, .. } = &err else { panic!("expected a TLS error, got {err:?}") };
    assert_eq!(**source, rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer));
    // none cannot apply to smtps://.
    let err = deliver::from_settings(&DeliverySettings::Smtp(smtps(TlsLevel::None))).err().expect("refused");
    assert_eq!(
        err.to_string(),
        "delivery.tls_security_level: `none` cannot apply to smtps://, which is TLS from the first byte; use smtp:// for \
         a server without TLS, or another level"
    );
}

#[tokio::test]
async fn none_said_explicitly_sends_credentials_in_clear_only_to_loopback() {
    let Some(srv) = server() else { return };
    let cleartext = |tls_level| SmtpSettings { tls_level, port: srv.cleartext_port, ..srv.settings() };
    let to = unique("cleartext");
    let receipt = transport(cleartext(TlsLevel::None)).deliver(&Outgoing::new(&message(&[&to], "clear"), "clear")).await.unwrap();
    let (envelope, _) = srv.only_delivery(&to);
    assert_eq!((envelope["listener"].as_str(), envelope["tls"].as_bool()), (Some("cleartext"), Some(false)));
    assert_eq!(envelope["auth"], srv.user.as_str(), "AUTH in clear, as level none allows on loopback");
    assert!(receipt.transcript().contains("\ntls        none\n"));

    // may: the server offers AUTH but no STARTTLS, so the password stays here.
    let to = unique("cleartext");
    let err = transport(cleartext(TlsLevel::May)).deliver(&Outgoing::new(&message(&[&to], "x"), "x")).await.unwrap_err();
    assert!(matches!(&err, DeliveryError::CleartextAuth { .. }) && err.is_permanent(), "{err:?}");
    assert!(srv.delivered_to(&to).is_empty());

    // none with credentials for a host that is not loopback: refused before anything is sent.
    let err =
        deliver::from_settings(&DeliverySettings::Smtp(SmtpSettings { host: "mail.contoso.com".into(), ..cleartext(TlsLevel::None) }))
            .err()
            .expect("refused");
    assert_eq!(err.step(), None);
    assert!(
        err.to_string()
            .starts_with("delivery.tls_security_level: `none` would send the password for `relay` in clear to `mail.contoso.com`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connections_end_with_quit_on_close_and_on_drop() {
    let Some(srv) = server() else { return };
    let connection_of = |to: &str| srv.only_delivery(to).0["connection"].as_str().unwrap().to_owned();

    // close(): the QUIT is answered before close returns.
    let t = transport(srv.settings());
    let to = unique("quit-close");
    t.deliver(&Outgoing::new(&message(&[&to], "q"), "q")).await.unwrap();
    let connection = connection_of(&to);
    assert!(!srv.said_quit(&connection), "the connection stays open in the pool");
    t.close().await.unwrap();
    assert!(srv.said_quit(&connection), "close said QUIT on connection {connection}");

    // Dropped (as a reload drops the old transport): QUIT in the background.
    let t = transport(SmtpSettings { implicit_tls: true, port: srv.smtps_port, ..srv.settings() });
    let to = unique("quit-drop");
    t.deliver(&Outgoing::new(&message(&[&to], "q"), "q")).await.unwrap();
    let connection = connection_of(&to);
    drop(t);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !srv.said_quit(&connection) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(srv.said_quit(&connection), "dropping the transport said QUIT on connection {connection}");
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
