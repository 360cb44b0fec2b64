//! [`Receipt`]: what a transport can say about a delivery that succeeded, and the short
//! transcript `send-test` prints.
//!
//! Pure data and formatting; [`queue_id`] recognises the queue id in the final reply of
//! Postfix, Exchange, Exim, Sendmail and Office 365 and returns `None` for anything else
//! (never a guess).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use lettre::Address;

use super::reply::{RecipientReply, Reply};

/// A delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// One line for logs: the server's final reply, or the file that was written.
    pub summary: String,
    /// The server's queue id, when its final reply names one.
    pub queue_id: Option<String>,
    /// Recipients the server accepted (all of them for the file transports).
    pub accepted: Vec<Address>,
    /// Recipients the server refused although others were accepted; each with its reply,
    /// which says whether a retry for that recipient is worthwhile.
    pub refused: Vec<RecipientReply>,
    /// The file written (`.eml` folder, pickup folder).
    pub file: Option<PathBuf>,
    /// The SMTP conversation, for SMTP.
    pub smtp: Option<SmtpReport>,
}

/// How the connection was protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    None,
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Implicit,
}

/// The negotiated TLS parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: String,
    /// IANA name, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
}

/// What was learnt when a connection was opened (shared by every message sent on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// `host:port` as configured.
    pub server: String,
    /// The address actually connected to.
    pub peer: String,
    /// The `220` welcome.
    pub greeting: String,
    /// The name the server gave in its `EHLO` reply.
    pub ehlo_name: String,
    pub tls_mode: TlsMode,
    /// `None` without TLS.
    pub tls: Option<TlsInfo>,
    /// How the server's certificate was checked, after the word "certificate": `verified for
    /// `mail.contoso.com``, `pinned by its SHA-256 fingerprint`, `not verified (…)`.
    pub certificate: Option<String>,
    /// AUTH mechanisms the server offered that callnote knows (`PLAIN`, `LOGIN`, `XOAUTH2`).
    pub auth_offered: Vec<String>,
    /// The mechanism used, the user name, and the server's reply; `None` without AUTH.
    pub auth: Option<(String, String, Reply)>,
}

/// One SMTP transaction, and the session it ran on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpReport {
    pub session: Arc<SessionInfo>,
    /// The connection came from the pool (its session was opened for an earlier message).
    pub reused_connection: bool,
    pub mail_from: Reply,
    /// Every recipient's reply, in envelope order.
    pub recipients: Vec<RecipientReply>,
    /// The reply to the message content.
    pub final_reply: Reply,
}

impl Receipt {
    /// The short transcript `send-test` prints: greeting, TLS, AUTH, every recipient's
    /// reply, the final reply and queue id. For the file transports: the file written.
    pub fn transcript(&self) -> String {
        let mut out = String::new();
        let Some(smtp) = &self.smtp else {
            let _ = writeln!(out, "{}", self.summary);
            for a in &self.accepted {
                let _ = writeln!(out, "recipient  <{a}>");
            }
            return out;
        };
        let s = &smtp.session;
        let line = |out: &mut String, label: &str, value: &str| {
            let _ = writeln!(out, "{label:<10} {value}");
        };
        line(&mut out, "server", &format!("{} ({}){}", s.server, s.peer, if smtp.reused_connection { ", pooled connection" } else { "" }));
        line(&mut out, "greeting", &s.greeting);
        line(&mut out, "ehlo", &s.ehlo_name);
        let tls = match (s.tls_mode, &s.tls) {
            (TlsMode::None, _) => "none".to_owned(),
            (mode, info) => format!(
                "{}{}{}",
                if mode == TlsMode::StartTls { "STARTTLS" } else { "implicit (smtps)" },
                info.as_ref().map(|i| format!(", {}, {}", i.version, i.cipher_suite)).unwrap_or_default(),
                s.certificate.as_ref().map(|c| format!(", certificate {c}")).unwrap_or_default()
            ),
        };
        line(&mut out, "tls", &tls);
        let offered = if s.auth_offered.is_empty() { "none".to_owned() } else { s.auth_offered.join(" ") };
        let auth = match &s.auth {
            Some((mechanism, user, reply)) => format!("{mechanism} as `{user}`: {reply} (offered: {offered})"),
            None => format!("not used (offered: {offered})"),
        };
        line(&mut out, "auth", &auth);
        line(&mut out, "mail from", &smtp.mail_from.to_string());
        for r in &smtp.recipients {
            line(&mut out, "rcpt to", &format!("<{}> {}", r.address, r.reply));
        }
        line(&mut out, "data", &smtp.final_reply.to_string());
        line(&mut out, "queue id", self.queue_id.as_deref().unwrap_or("(not given)"));
        out
    }
}

/// The queue id in a final `250` reply, when the server's wording is one we know:
/// Postfix `Ok: queued as 4F2A1C`, Exim `OK id=1tVx5A-0001Xy-2B`, Exchange
/// `[InternalId=1234, Hostname=…] Queued mail for delivery`, Sendmail
/// `2.0.0 5AQ1xyz012345 Message accepted for delivery`.
pub fn queue_id(reply_text: &str) -> Option<String> {
    let token = |rest: &str| {
        let id: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@')).collect();
        let id = id.trim_end_matches('.');
        (!id.is_empty()).then(|| id.to_owned())
    };
    let lower = reply_text.to_ascii_lowercase();
    for marker in ["queued as ", "internalid=", " id="] {
        if let Some(at) = lower.find(marker)
            && let Some(id) = token(&reply_text[at + marker.len()..])
        {
            return Some(id);
        }
    }
    // Sendmail: "2.0.0 <id> Message accepted for delivery"
    let mut words = reply_text.split_whitespace();
    let first = words.next()?;
    let first_is_status = first.split('.').count() == 3 && first.chars().all(|c| c.is_ascii_digit() || c == '.');
    let candidate = if first_is_status { words.next()? } else { first };
    if lower.contains("message accepted for delivery") && !candidate.eq_ignore_ascii_case("message") {
        return token(candidate);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_ids_of_known_servers() {
        assert_eq!(queue_id("2.0.0 Ok: queued as 4F2A1C3B9D").as_deref(), Some("4F2A1C3B9D"));
        assert_eq!(queue_id("OK id=1tVx5A-0001Xy-2B").as_deref(), Some("1tVx5A-0001Xy-2B"));
        assert_eq!(
            queue_id(
                "2.6.0 <abc@contoso.com> [InternalId=27122305531910, Hostname=EX01.contoso.com] 1234 bytes in 0.123, 9.6 KB/sec Queued mail for delivery"
            )
            .as_deref(),
            Some("27122305531910")
        );
        assert_eq!(queue_id("2.0.0 5AQ1xyz012345 Message accepted for delivery").as_deref(), Some("5AQ1xyz012345"));
    }

    #[test]
    fn no_queue_id_is_made_up() {
        assert_eq!(queue_id("OK"), None);
        assert_eq!(queue_id("2.0.0 OK <msgid@host> [Hostname=AM0PR01MB1234.eurprd01.prod.exchangelabs.com]"), None);
        assert_eq!(queue_id("2.6.0 <abc@contoso.com> Queued mail for delivery"), None);
        assert_eq!(queue_id("Message accepted for delivery"), None);
        assert_eq!(queue_id(""), None);
    }

    fn report() -> Receipt {
        let session = SessionInfo {
            server: "mail.contoso.com:587".into(),
            peer: "192.0.2.10:587".into(),
            greeting: "220 mail.contoso.com ESMTP".into(),
            ehlo_name: "mail.contoso.com".into(),
            tls_mode: TlsMode::StartTls,
            tls: Some(TlsInfo { version: "TLSv1.3".into(), cipher_suite: "TLS13_AES_256_GCM_SHA384".into() }),
            certificate: Some("verified for `mail.contoso.com`".into()),
            auth_offered: vec!["PLAIN".into(), "LOGIN".into()],
            auth: Some(("PLAIN".into(), "svc".into(), Reply { code: 235, text: "2.7.0 Authentication successful".into() })),
        };
        let ok = |t: &str| Reply { code: 250, text: t.into() };
        let a: Address = "a@contoso.com".parse().unwrap();
        let b: Address = "b@contoso.com".parse().unwrap();
        let refused = RecipientReply { address: b.clone(), reply: Reply { code: 550, text: "5.1.1 unknown".into() } };
        Receipt {
            summary: "250 2.0.0 Ok: queued as ABC".into(),
            queue_id: Some("ABC".into()),
            accepted: vec![a.clone()],
            refused: vec![refused.clone()],
            file: None,
            smtp: Some(SmtpReport {
                session: Arc::new(session),
                reused_connection: false,
                mail_from: ok("2.1.0 Ok"),
                recipients: vec![RecipientReply { address: a, reply: ok("2.1.5 Ok") }, refused],
                final_reply: ok("2.0.0 Ok: queued as ABC"),
            }),
        }
    }

    #[test]
    fn transcript_lists_every_step() {
        assert_eq!(
            report().transcript(),
            "server     mail.contoso.com:587 (192.0.2.10:587)\n\
             greeting   220 mail.contoso.com ESMTP\n\
             ehlo       mail.contoso.com\n\
             tls        STARTTLS, TLSv1.3, TLS13_AES_256_GCM_SHA384, certificate verified for `mail.contoso.com`\n\
             auth       PLAIN as `svc`: 235 2.7.0 Authentication successful (offered: PLAIN LOGIN)\n\
             mail from  250 2.1.0 Ok\n\
             rcpt to    <a@contoso.com> 250 2.1.5 Ok\n\
             rcpt to    <b@contoso.com> 550 5.1.1 unknown\n\
             data       250 2.0.0 Ok: queued as ABC\n\
             queue id   ABC\n"
        );
    }
}
