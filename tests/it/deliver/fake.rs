//! SMTP against small scripted servers in this process, for what a real server will not do:
//! plaintext pushed after the `220` to STARTTLS (which must never be read as part of the TLS
//! session), a pooled connection the server closes while it is idle (replaced without the
//! message noticing), and a delivery abandoned in the middle of a transaction (its connection
//! must not serve the next message). Each server records the command lines it received.

use std::sync::Arc;

use callnote::config::{DeliverySettings, SmtpSettings, TlsLevel};
use callnote::deliver::{self, Deliver, Outgoing, TlsMode};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::{message, smtp_settings};
use crate::common::server_env;

/// How a scripted connection behaves.
#[derive(Clone)]
struct Script {
    /// The EHLO reply before TLS.
    ehlo: &'static str,
    /// The EHLO reply over TLS.
    ehlo_tls: &'static str,
    /// Written in one piece in answer to STARTTLS: the `220` and whatever follows it.
    starttls_reply: &'static str,
    /// Takes TLS after STARTTLS.
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// The queue id in the final reply.
    queue_id: &'static str,
    /// Hang up right after the first message's final reply (as a server whose idle timer ran out).
    hang_up_after_message: bool,
    /// At DATA: say so here, and never answer.
    stall_at_data: Option<tokio::sync::mpsc::UnboundedSender<()>>,
}

/// Answers commands until QUIT, the client hanging up, STARTTLS (then the stream is returned
/// for TLS) or, if the script says so, the end of the first message.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: BufReader<S>, script: &Script, ehlo: &str, seen: &mut Vec<String>) -> Option<S> {
    let mut line = String::new();
    while matches!(s.read_line(&mut line).await, Ok(n) if n > 0) {
        let command = std::mem::take(&mut line);
        let verb = command.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        seen.push(command.trim_end().to_owned());
        let reply = match verb.as_str() {
            "EHLO" => ehlo.to_owned(),
            "STARTTLS" => {
                s.write_all(script.starttls_reply.as_bytes()).await.ok()?;
                return Some(s.into_inner());
            }
            "MAIL" => "250 2.1.0 Ok\r\n".to_owned(),
            "RCPT" => "250 2.1.5 Ok\r\n".to_owned(),
            "DATA" if script.stall_at_data.is_some() => {
                let _ = script.stall_at_data.as_ref().map(|tx| tx.send(()));
                while matches!(s.read_line(&mut line).await, Ok(n) if n > 0) {
                    seen.push(std::mem::take(&mut line).trim_end().to_owned());
                }
                return None;
            }
            "DATA" => {
                s.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await.ok()?;
                while matches!(s.read_line(&mut line).await, Ok(n) if n > 0) && std::mem::take(&mut line) != ".\r\n" {}
                s.write_all(format!("250 2.0.0 Ok: queued as {}\r\n", script.queue_id).as_bytes()).await.ok()?;
                if script.hang_up_after_message {
                    return None;
                }
                continue;
            }
            "QUIT" => {
                let _ = s.write_all(b"221 2.0.0 Bye\r\n").await;
                return None;
            }
            _ => "500 5.5.2 Error: command not recognized\r\n".to_owned(),
        };
        s.write_all(reply.as_bytes()).await.ok()?;
    }
    None
}

/// One connection: greeting, commands, and after STARTTLS the TLS handshake and the commands
/// over TLS. Returns the command lines received, TLS ones after a `<tls>` line.
async fn serve(tcp: TcpStream, script: Script) -> Vec<String> {
    let mut seen = Vec::new();
    let mut tcp = BufReader::new(tcp);
    if tcp.write_all(b"220 fake.contoso.test ESMTP\r\n").await.is_err() {
        return seen;
    }
    let Some(tcp) = answer(tcp, &script, script.ehlo, &mut seen).await else { return seen };
    let Some(acceptor) = &script.tls else { return seen };
    match acceptor.accept(tcp).await {
        Ok(tls) => {
            seen.push("<tls>".into());
            answer(BufReader::new(tls), &script, script.ehlo_tls, &mut seen).await;
        }
        Err(e) => seen.push(format!("-- tls failed: {e} --")),
    }
    seen
}

/// A listener on loopback serving one connection after the other, each with its script; the
/// handle gives each connection's command lines.
async fn fake_server(scripts: Vec<Script>) -> (u16, tokio::task::JoinHandle<Vec<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut all = Vec::new();
        for script in scripts {
            let (tcp, _) = listener.accept().await.unwrap();
            all.push(serve(tcp, script).await);
        }
        all
    });
    (port, server)
}

fn transport(settings: SmtpSettings) -> Box<dyn Deliver> {
    deliver::install_crypto_provider();
    deliver::from_settings(&DeliverySettings::Smtp(settings)).unwrap()
}

fn plain_script() -> Script {
    Script {
        ehlo: "250-fake.contoso.test\r\n250 8BITMIME\r\n",
        ehlo_tls: "",
        starttls_reply: "",
        tls: None,
        queue_id: "Q1",
        hang_up_after_message: false,
        stall_at_data: None,
    }
}

/// The command verbs of each connection.
fn verbs(seen: &[Vec<String>]) -> Vec<Vec<&str>> {
    seen.iter().map(|c| c.iter().map(|l| l.split([' ', ':']).next().unwrap()).collect()).collect()
}

#[tokio::test]
async fn plaintext_after_the_starttls_220_never_reaches_the_tls_session() {
    // The self-signed certificate of the test SMTP server, and its key.
    let (Some(cert), Some(key)) = (server_env("SMTP_SELFSIGNED_CERT"), server_env("SMTP_SELFSIGNED_KEY")) else { return };
    deliver::install_crypto_provider();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from_pem_file(&cert).unwrap()], PrivateKeyDer::from_pem_file(&key).unwrap())
        .unwrap();
    let script = Script {
        ehlo: "250-fake.contoso.test\r\n250 STARTTLS\r\n",
        ehlo_tls: "250-fake-tls.contoso.test\r\n250 8BITMIME\r\n",
        // Sent with the 220 in one write: a forged EHLO reply that, were it read after the
        // handshake, would answer the EHLO sent over TLS and shift every reply after it.
        starttls_reply: "220 2.0.0 Ready to start TLS\r\n250-injected.invalid\r\n250 AUTH PLAIN\r\n",
        tls: Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        queue_id: "TLSQ1",
        ..plain_script()
    };
    let (port, server) = fake_server(vec![script]).await;
    let t = transport(SmtpSettings { tls_level: TlsLevel::Encrypt, ..smtp_settings("127.0.0.1", port) });
    let receipt = t.deliver(&Outgoing::new(&message(&["a@contoso.test"], "x"), "x")).await.unwrap();
    t.close().await.unwrap();

    let s = &receipt.smtp.as_ref().unwrap().session;
    assert_eq!((s.tls_mode, s.ehlo_name.as_str()), (TlsMode::StartTls, "fake-tls.contoso.test"), "the EHLO reply came over TLS");
    assert_eq!(s.greeting, "220 fake.contoso.test ESMTP");
    assert_eq!(receipt.queue_id.as_deref(), Some("TLSQ1"));
    let seen = server.await.unwrap();
    assert_eq!(verbs(&seen), [["EHLO", "STARTTLS", "<tls>", "EHLO", "MAIL", "RCPT", "DATA", "QUIT"]], "{seen:?}");
}

#[tokio::test]
async fn a_pooled_connection_closed_by_the_server_while_idle_is_replaced() {
    let script = Script { hang_up_after_message: true, ..plain_script() };
    let (port, server) = fake_server(vec![script.clone(), script]).await;
    let t = transport(SmtpSettings { pool_size: 1, ..smtp_settings("127.0.0.1", port) });
    let mail = Outgoing::new(&message(&["a@contoso.test"], "x"), "x");
    let first = t.deliver(&mail).await.unwrap();
    // The server hung up after its reply; the pooled connection fails at MAIL FROM having
    // sent nothing, and a new connection carries the message.
    let second = t.deliver(&mail).await.unwrap();
    assert_eq!((first.queue_id.as_deref(), second.queue_id.as_deref()), (Some("Q1"), Some("Q1")));
    assert!(!second.smtp.as_ref().unwrap().reused_connection, "delivered on the new connection");
    let seen = server.await.unwrap();
    assert_eq!(verbs(&seen), [["EHLO", "MAIL", "RCPT", "DATA"]; 2], "{seen:?}");
}

#[tokio::test]
async fn a_delivery_abandoned_mid_transaction_leaves_its_connection_out_of_the_pool() {
    let (data_sent, mut data_seen) = tokio::sync::mpsc::unbounded_channel();
    let stalls = Script { stall_at_data: Some(data_sent), ..plain_script() };
    let (port, server) = fake_server(vec![stalls, plain_script()]).await;
    let t = transport(SmtpSettings { pool_size: 1, ..smtp_settings("127.0.0.1", port) });
    let mail = Outgoing::new(&message(&["a@contoso.test"], "x"), "x");
    // The caller gives up (a shutdown, a timeout of its own) while the server holds DATA.
    tokio::select! {
        result = t.deliver(&mail) => panic!("the server never answers DATA, yet: {result:?}"),
        _ = data_seen.recv() => {}
    }
    // The next message does not go into the middle of that transaction: a new connection.
    let receipt = t.deliver(&mail).await.unwrap();
    assert!(!receipt.smtp.as_ref().unwrap().reused_connection);
    assert_eq!(receipt.queue_id.as_deref(), Some("Q1"));
    t.close().await.unwrap();
    let seen = server.await.unwrap();
    assert_eq!(verbs(&seen), [vec!["EHLO", "MAIL", "RCPT", "DATA"], vec!["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]], "{seen:?}");
}
