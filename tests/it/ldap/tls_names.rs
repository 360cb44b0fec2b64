//! Which name a directory server's certificate is checked against: an IPv6 address in the URL
//! (`ldaps://[::1]:PORT`, slapd from `scripts/ldap-server.sh`), and a certificate that names
//! no host at all (only a subject CN), served by a TLS listener in this test.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use callnote::config::LdapSettings;
use callnote::enrich::directory::ldap::{LdapDirectory, LdapError};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{env, plan, refused, resolved_name, settings, tls_pair};

#[test]
fn ldaps_and_starttls_to_an_ipv6_address() {
    let Some(pair) = tls_pair("LDAPS_V6_URL", "LDAP_V6_URL") else {
        return;
    };
    for settings in pair {
        let ldap = LdapDirectory::open_blocking(&settings, &plan()).unwrap_or_else(|e| panic!("{}: {e:#}", settings.url));
        assert_eq!(resolved_name("+12895550147", ldap.as_ref()).as_deref(), Some("Priya Raman"), "{}", settings.url);
    }
}

#[test]
fn a_certificate_from_an_unknown_ca_is_refused_at_an_ipv6_address_too() {
    let Some(mut ldaps) = settings("LDAPS_V6_URL") else {
        return;
    };
    ldaps.ca_file = Some(env("LDAP_WRONG_CA").into());
    let (error, chain) = refused(&ldaps);
    assert!(matches!(error, LdapError::Certificate { .. }), "{chain}");
    assert!(chain.contains("invalid peer certificate: UnknownIssuer"), "{chain}");
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is installed (scripts/test.sh)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A test CA and a server certificate with only `CN=localhost`: no subjectAltName.
fn cn_only_certificate(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let mut ca = vec!["req", "-x509", "-days", "2", "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=callnote test CA"];
    ca.extend(ec);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"];
    csr.extend(ec);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
}

/// Accepts one TLS connection with the given certificate and drives the handshake until
/// the client gives up.
fn serve_once(dir: &Path) -> u16 {
    callnote::deliver::install_crypto_provider();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut tcp, _)) = listener.accept() {
            let mut tls = rustls::ServerConnection::new(Arc::new(config)).unwrap();
            while tls.is_handshaking() && tls.complete_io(&mut tcp).is_ok() {}
        }
    });
    port
}

#[test]
fn a_certificate_that_names_no_host_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    cn_only_certificate(dir.path());
    let port = serve_once(dir.path());
    let settings = LdapSettings {
        url: format!("ldaps://localhost:{port}"),
        bind_dn: None,
        bind_password: None,
        base_dn: "dc=contoso,dc=com".into(),
        filter: None,
        starttls: false,
        ca_file: Some(dir.path().join("ca.pem")),
        refresh: std::time::Duration::from_secs(900),
        connect_timeout: std::time::Duration::from_secs(5),
        search_timeout: std::time::Duration::from_secs(5),
        snapshot: None,
    };
    let (error, chain) = refused(&settings);
    assert!(matches!(error, LdapError::Certificate { .. }), "{chain}");
    assert!(
        chain.starts_with(&format!(
            "ldaps://localhost:{port}: TLS certificate of the server refused: it names no host: it has no \
             subjectAltName extension, only a subject CN"
        )),
        "{chain}"
    );
    assert!(chain.contains("Give the server a certificate whose subjectAltName includes DNS:localhost"), "{chain}");
}
