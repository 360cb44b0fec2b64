//! The SMTP TLS policy: the security levels SMTP admins know from Postfix's
//! `smtp_tls_security_level`, and the rustls client settings that carry each one out.
//!
//! | level         | TLS                                   | the server's certificate            |
//! |---------------|---------------------------------------|-------------------------------------|
//! | `none`        | never                                 | —                                   |
//! | `may`         | STARTTLS when offered                 | not verified                        |
//! | `encrypt`     | required                              | not verified                        |
//! | `verify`      | required                              | a trusted CA and the host's name    |
//! | `fingerprint` | required                              | its SHA-256 is one of the pins      |
//!
//! The old `starttls` values are aliases: `off` = none, `opportunistic` = may, `required` =
//! verify. With `smtps://` TLS starts with the first byte whatever the level (so `may` acts as
//! `encrypt`, and `none` is refused); the level only decides how the certificate is checked.
//!
//! Consumes a level, the optional CA file and the pinned fingerprints; produces a
//! [`TlsPolicy`] holding the `rustls::ClientConfig` to connect with. Every verifier checks the
//! handshake signature against the presented certificate, so the server must hold its key
//! whatever the level. Under `verify`, a certificate listed in the CA file is trusted as
//! that exact certificate (a self-signed one, which webpki would refuse as a CA used as an end
//! entity), its name still checked but not its dates (that certificate was chosen by hand, as a
//! pin is; `fingerprint` checks neither). [`check_settings`] holds the rules that keep credentials
//! off unencrypted connections; it is used when the configuration is read and again when a
//! transport is built. Reads the CA file once; no other I/O.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest as _, Sha256};

/// How much TLS an SMTP connection must have, Postfix's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsLevel {
    /// No TLS; STARTTLS is never sent.
    None,
    /// STARTTLS when the server offers it; the certificate is not verified.
    May,
    /// TLS required; the certificate is not verified.
    Encrypt,
    /// TLS required; the certificate chains to a trusted CA and names the host.
    Verify,
    /// TLS required; the certificate's SHA-256 is one of the pinned fingerprints.
    Fingerprint,
}

impl TlsLevel {
    /// The accepted values, for error messages.
    pub(crate) const CHOICES: &'static str = "none, may, encrypt, verify or fingerprint (or the older off, opportunistic, required)";

    /// A level by its name or by an old `starttls` value.
    pub fn parse(text: &str) -> Option<TlsLevel> {
        Some(match text {
            "none" | "off" => TlsLevel::None,
            "may" | "opportunistic" => TlsLevel::May,
            "encrypt" => TlsLevel::Encrypt,
            "verify" | "required" => TlsLevel::Verify,
            "fingerprint" => TlsLevel::Fingerprint,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            TlsLevel::None => "none",
            TlsLevel::May => "may",
            TlsLevel::Encrypt => "encrypt",
            TlsLevel::Verify => "verify",
            TlsLevel::Fingerprint => "fingerprint",
        }
    }

    /// A connection without TLS is refused.
    pub(crate) fn requires_tls(self) -> bool {
        matches!(self, TlsLevel::Encrypt | TlsLevel::Verify | TlsLevel::Fingerprint)
    }
}

impl fmt::Display for TlsLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The SHA-256 of a certificate's DER bytes; shown `sha256:AB:CD:…` as openssl prints it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn of(cert: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(cert).into())
    }

    /// Several fingerprints separated by commas.
    pub(crate) fn parse_list(text: &str) -> Result<Vec<Fingerprint>, String> {
        let list = text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::parse).collect::<Result<Vec<_>, _>>()?;
        if list.is_empty() {
            return Err("is empty".into());
        }
        Ok(list)
    }
}

impl FromStr for Fingerprint {
    type Err = String;

    /// `sha256:AB:CD:…`, `AB:CD:…`, `abcd…`, or openssl's `sha256 Fingerprint=AB:CD:…`.
    fn from_str(text: &str) -> Result<Fingerprint, String> {
        let bad = |why: &str| {
            format!("`{text}` is not a SHA-256 fingerprint ({why}); write it as sha256:AB:CD:… (64 hex digits, colons optional)")
        };
        let lower = text.trim().to_ascii_lowercase();
        let hex = match lower.split_once([':', '=']) {
            Some((digest, rest)) if digest.starts_with("sha256") => rest,
            Some((digest, _)) if digest.starts_with("sha") || digest.starts_with("md5") => {
                return Err(bad("only SHA-256 is accepted"));
            }
            _ => lower.as_str(),
        };
        let digits: Vec<u8> = hex.bytes().filter(|b| *b != b':').collect();
        if digits.len() != 64 {
            return Err(bad(&format!("{} hex digits", digits.len())));
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad("not hex"))?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad("not hex"))?;
        }
        Ok(Fingerprint(bytes))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for (i, b) in self.0.iter().enumerate() {
            write!(f, "{}{b:02X}", if i == 0 { "" } else { ":" })?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A TLS setting that cannot work; [`key`](Self::key) names the configuration key to change.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsSetupError {
    #[error(
        "`none` would send the password for `{username}` in clear to `{host}`; credentials go only over TLS. \
         Use may, encrypt, verify (the default) or fingerprint; `none` with credentials is for a server on this machine (127.0.0.1)"
    )]
    CleartextCredentials { host: String, username: String },

    #[error("`none` cannot apply to smtps://, which is TLS from the first byte; use smtp:// for a server without TLS, or another level")]
    NoneWithImplicitTls,

    #[error(
        "tls_security_level = \"fingerprint\" needs the server certificate's SHA-256 here, e.g. from \
         `openssl x509 -in server.pem -noout -fingerprint -sha256`"
    )]
    NoFingerprint,

    #[error("`{}` {problem}", path.display())]
    CaFile { path: PathBuf, problem: String },

    #[error("not set, and this system has no trusted root certificates")]
    NoSystemRoots,

    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

impl TlsSetupError {
    /// The `[delivery]` key the message is about.
    pub fn key(&self) -> &'static str {
        match self {
            TlsSetupError::CleartextCredentials { .. } | TlsSetupError::NoneWithImplicitTls => "delivery.tls_security_level",
            TlsSetupError::NoFingerprint => "delivery.tls_fingerprint",
            TlsSetupError::CaFile { .. } | TlsSetupError::NoSystemRoots => "delivery.ca_file",
            TlsSetupError::Setup(_) => "delivery.url",
        }
    }
}

/// True for an IP loopback address, or `localhost`.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The combinations refused before anything is sent: credentials without TLS except on
/// loopback, `none` with `smtps://`, `fingerprint` without a fingerprint.
pub(crate) fn check_settings(
    level: TlsLevel,
    implicit_tls: bool,
    host: &str,
    username: Option<&str>,
    pins: &[Fingerprint],
) -> Result<(), TlsSetupError> {
    match level {
        TlsLevel::None if implicit_tls => Err(TlsSetupError::NoneWithImplicitTls),
        TlsLevel::None => match username {
            Some(user) if !is_loopback_host(host) => {
                Err(TlsSetupError::CleartextCredentials { host: host.to_owned(), username: user.to_owned() })
            }
            _ => Ok(()),
        },
        TlsLevel::Fingerprint if pins.is_empty() => Err(TlsSetupError::NoFingerprint),
        _ => Ok(()),
    }
}

/// The certificate the server presented the last time verification refused it, for the
/// hint in the error (every connection of a transport goes to the same server).
type Refused = Arc<Mutex<Option<Fingerprint>>>;

/// A level's TLS client settings. `None` level has none: [`TlsPolicy::new`] returns `None`.
#[derive(Debug, Clone)]
pub(crate) struct TlsPolicy {
    level: TlsLevel,
    ca_file: Option<PathBuf>,
    config: Arc<rustls::ClientConfig>,
    refused: Refused,
}

impl TlsPolicy {
    /// Builds the client settings for `level`: loads the CA file (or the system's roots)
    /// for `verify`; needs `pins` for `fingerprint`. `None` for [`TlsLevel::None`].
    pub fn new(level: TlsLevel, ca_file: Option<&Path>, pins: &[Fingerprint]) -> Result<Option<TlsPolicy>, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let refused = Refused::default();
        let accept = match level {
            TlsLevel::None => return Ok(None),
            TlsLevel::May | TlsLevel::Encrypt => Accept::Any,
            TlsLevel::Fingerprint if pins.is_empty() => return Err(TlsSetupError::NoFingerprint),
            TlsLevel::Fingerprint => Accept::Pinned(pins.to_vec()),
            TlsLevel::Verify => {
                let (roots, listed) = trusted(ca_file)?;
                let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| TlsSetupError::Setup(e.to_string()))?;
                Accept::Verified { webpki, listed }
            }
        };
        let verifier = Arc::new(Verifier { accept, algorithms, refused: refused.clone() });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Setup(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        let ca_file = ca_file.filter(|_| level == TlsLevel::Verify).map(Path::to_owned);
        Ok(Some(TlsPolicy { level, ca_file, config: Arc::new(config), refused }))
    }

    /// The CA file in use (`verify` only).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    pub(crate) fn client_config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }

    /// How the certificate is checked, after the word "certificate": `verified for
    /// `mail.contoso.com``, `pinned by its SHA-256`, `not verified (tls_security_level may)`.
    pub fn check(&self, name: &str) -> String {
        match self.level {
            TlsLevel::Verify => format!("verified for `{name}`"),
            TlsLevel::Fingerprint => "pinned by its SHA-256 fingerprint".to_owned(),
            level => format!("not verified (tls_security_level {level})"),
        }
    }

    /// How to fix a refused certificate, when there is a way: a CA file or a pin for an
    /// unknown issuer (with the presented certificate's fingerprint), a name in the URL for a
    /// name mismatch, a renewal for an expired certificate; for `fingerprint`, the presented
    /// certificate's fingerprint.
    pub fn hint(&self, error: &rustls::Error) -> Option<String> {
        let rustls::Error::InvalidCertificate(cert) = error else { return None };
        let presented = self.refused.lock().unwrap_or_else(|p| p.into_inner()).take();
        match (self.level, presented) {
            (TlsLevel::Verify, _) => {}
            (TlsLevel::Fingerprint, Some(fp)) => {
                return Some(format!(
                    "the server's certificate is {fp}, not one of delivery.tls_fingerprint (if it was renewed, \
                     check the new one on the server and pin it)"
                ));
            }
            _ => return None,
        }
        let pin = match presented {
            Some(fp) => format!(
                "pin it with tls_security_level = \"fingerprint\" and tls_fingerprint = \"{fp}\" \
                 (the certificate this server presented; compare it with the server's)"
            ),
            None => "pin it with tls_security_level = \"fingerprint\" and its tls_fingerprint".to_owned(),
        };
        Some(match cert {
            // `Other` includes webpki's CaUsedAsEndEntity: a self-signed certificate marked CA.
            CertificateError::UnknownIssuer | CertificateError::BadSignature | CertificateError::Other(_) => {
                format!(
                    "fix: set delivery.ca_file to the CA that issued it (or to the certificate itself if self-signed), \
                     or {pin}"
                )
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("fix: use a name the certificate carries in delivery.url, or {pin}")
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => {
                "fix: renew the server's certificate, or check this machine's clock".to_owned()
            }
            _ => return None,
        })
    }
}

/// The roots to verify against (only the CA file's when one is set, else the system's) and
/// the CA file's certificates, any of which is also trusted as an exact server certificate.
fn trusted(ca_file: Option<&Path>) -> Result<(rustls::RootCertStore, Vec<CertificateDer<'static>>), TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    let Some(path) = ca_file else {
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if roots.is_empty() {
            return Err(TlsSetupError::NoSystemRoots);
        }
        return Ok((roots, Vec::new()));
    };
    let problem = |problem: String| TlsSetupError::CaFile { path: path.to_owned(), problem };
    let pem = std::fs::read(path).map_err(|e| problem(format!("cannot be read: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().map_err(|e| problem(format!("is not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(problem("holds no PEM certificate".into()));
    }
    for cert in &certs {
        roots.add(cert.clone()).map_err(|e| problem(format!("holds a certificate rustls cannot use: {e}")))?;
    }
    Ok((roots, certs))
}

/// Which server certificates a level accepts.
#[derive(Debug)]
enum Accept {
    /// `may`, `encrypt`: any (the handshake signature is still checked).
    Any,
    /// `fingerprint`: one whose SHA-256 is listed.
    Pinned(Vec<Fingerprint>),
    /// `verify`: one that chains to the roots and names the host, or one listed in the CA file
    /// that names the host.
    Verified { webpki: Arc<WebPkiServerVerifier>, listed: Vec<CertificateDer<'static>> },
}

#[derive(Debug)]
struct Verifier {
    accept: Accept,
    algorithms: WebPkiSupportedAlgorithms,
    refused: Refused,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let outcome = match &self.accept {
            Accept::Any => Ok(ServerCertVerified::assertion()),
            Accept::Pinned(pins) => {
                if pins.contains(&Fingerprint::of(end_entity)) {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
                }
            }
            Accept::Verified { webpki, listed } => {
                if listed.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
                    verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name).map(|()| ServerCertVerified::assertion())
                } else {
                    webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                }
            }
        };
        if outcome.is_err() {
            *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(Fingerprint::of(end_entity));
        }
        outcome
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "EC1F82B25030E0A48E56AD6633A647FECD32F6A84AB211D4C97C8814783522FF";

    #[test]
    fn levels_and_their_old_names() {
        for (text, level) in [
            ("none", TlsLevel::None),
            ("off", TlsLevel::None),
            ("may", TlsLevel::May),
            ("opportunistic", TlsLevel::May),
            ("encrypt", TlsLevel::Encrypt),
            ("verify", TlsLevel::Verify),
            ("required", TlsLevel::Verify),
            ("fingerprint", TlsLevel::Fingerprint),
        ] {
            assert_eq!(TlsLevel::parse(text), Some(level), "{text}");
        }
        assert_eq!(TlsLevel::parse("secure"), None);
        assert_eq!(TlsLevel::parse("Verify"), None, "exact names, as in the examples");
        assert!(!TlsLevel::May.requires_tls() && TlsLevel::Encrypt.requires_tls());
    }

    #[test]
    fn fingerprints_with_or_without_colons() {
        let colons: String = HEX.as_bytes().chunks(2).map(|p| std::str::from_utf8(p).unwrap()).collect::<Vec<_>>().join(":");
        let expected: Fingerprint = HEX.parse().unwrap();
        for text in [
            format!("sha256:{colons}"),
            colons.clone(),
            HEX.to_ascii_lowercase(),
            format!("SHA256:{}", HEX.to_ascii_lowercase()),
            format!("sha256 Fingerprint={colons}"),
        ] {
            assert_eq!(text.parse::<Fingerprint>(), Ok(expected), "{text}");
        }
        assert_eq!(expected.to_string(), format!("sha256:{colons}"));
        assert_eq!(Fingerprint::parse_list(&format!("{HEX}, sha256:{colons}")).unwrap().len(), 2);
        let short = "sha256:AB:CD".parse::<Fingerprint>().unwrap_err();
        assert_eq!(
            short,
            "`sha256:AB:CD` is not a SHA-256 fingerprint (4 hex digits); write it as sha256:AB:CD:… (64 hex digits, colons optional)"
        );
        assert!("sha1:AB".parse::<Fingerprint>().unwrap_err().contains("only SHA-256"));
        assert!(HEX.replace('E', "G").parse::<Fingerprint>().unwrap_err().contains("not hex"));
        assert_eq!(Fingerprint::parse_list(" , ").unwrap_err(), "is empty");
        assert_eq!(Fingerprint::of(b"abc").to_string()[..17], *"sha256:BA:78:16:B");
    }

    #[test]
    fn credentials_never_in_clear_except_on_loopback() {
        let check = |level, implicit, host, user| check_settings(level, implicit, host, user, &[]);
        let err = check(TlsLevel::None, false, "mail.contoso.com", Some("svc")).unwrap_err();
        assert_eq!(err.key(), "delivery.tls_security_level");
        assert!(err.to_string().starts_with("`none` would send the password for `svc` in clear to `mail.contoso.com`"), "{err}");
        assert!(check(TlsLevel::None, false, "10.0.0.5", Some("svc")).is_err());
        for host in ["127.0.0.1", "127.1.2.3", "::1", "localhost"] {
            assert!(check(TlsLevel::None, false, host, Some("svc")).is_ok(), "{host}");
        }
        assert!(check(TlsLevel::None, false, "mail.contoso.com", None).is_ok(), "no credentials: no secret to leak");
        assert!(check(TlsLevel::May, false, "mail.contoso.com", Some("svc")).is_ok(), "checked when connecting");
        assert!(matches!(check(TlsLevel::None, true, "127.0.0.1", None), Err(TlsSetupError::NoneWithImplicitTls)));
        assert!(matches!(check(TlsLevel::Fingerprint, false, "h", None), Err(TlsSetupError::NoFingerprint)));
    }

    #[test]
    fn each_level_builds_its_settings() {
        let pin: Fingerprint = HEX.parse().unwrap();
        assert!(TlsPolicy::new(TlsLevel::None, None, &[]).unwrap().is_none());
        for level in [TlsLevel::May, TlsLevel::Encrypt] {
            let policy = TlsPolicy::new(level, None, &[]).unwrap().unwrap();
            assert_eq!(policy.check("h"), format!("not verified (tls_security_level {level})"));
        }
        let pinned = TlsPolicy::new(TlsLevel::Fingerprint, None, &[pin]).unwrap().unwrap();
        assert_eq!(pinned.check("h"), "pinned by its SHA-256 fingerprint");
        assert!(matches!(TlsPolicy::new(TlsLevel::Fingerprint, None, &[]), Err(TlsSetupError::NoFingerprint)));
        let missing = Path::new("/nonexistent/ca.pem");
        let err = TlsPolicy::new(TlsLevel::Verify, Some(missing), &[]).unwrap_err();
        assert_eq!(err.key(), "delivery.ca_file");
        assert!(err.to_string().starts_with("`/nonexistent/ca.pem` cannot be read: "), "{err}");
        // Only `verify` reads the CA file.
        assert!(TlsPolicy::new(TlsLevel::Encrypt, Some(missing), &[]).unwrap().unwrap().ca_file().is_none());
    }
}
