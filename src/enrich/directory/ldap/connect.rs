//! Connecting to the directory server: [`LdapSettings`] -> a checked [`Endpoint`] (URL, TLS
//! trust, timeouts, credentials) -> an open, bound [`Session`].
//!
//! Certificate verification is always on: against the configured CA file (an enterprise CA)
//! or else the system roots. The bind password is read from its environment variable or
//! file at each connection and never logged or kept in an error. A plain `ldap://` URL
//! without StartTLS is refused unless the host is the loopback interface, so credentials
//! never cross the network in clear text. Errors: [`LdapError`].
//!
//! An IPv6 literal host (`ldaps://[::1]:636`) is connected by this module and verified
//! against its address: the LDAP library would hand the bracketed text `[::1]` to rustls,
//! which is no valid TLS server name ([`TlsTarget`]).

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, StdStream};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::LdapError;
use crate::enrich::directory::Value;
use crate::enrich::directory::settings::LdapSettings;
use crate::settings::SecretSource;

/// The rootDSE capability that only Active Directory announces (LDAP_CAP_ACTIVE_DIRECTORY_OID).
const AD_CAPABILITY: &str = "1.2.840.113556.1.4.800";

/// What kind of directory server answered (it chooses the default filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    ActiveDirectory,
    /// OpenLDAP or any other RFC 4512 server.
    Other,
}

/// A checked way to reach the server; cheap to reuse for every sync.
pub(crate) struct Endpoint {
    pub url: String,
    /// Set for TLS to an IPv6 literal host: connected and verified here.
    v6: Option<TlsTarget>,
    starttls: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
    connect_timeout: Duration,
    pub search_timeout: Duration,
    bind_dn: Option<String>,
    password: Option<SecretSource>,
}

impl Endpoint {
    /// Checks the URL, TLS settings and CA file (read now, once).
    pub fn new(settings: &LdapSettings) -> Result<Endpoint, LdapError> {
        let url = settings.url.trim();
        let url = if url.ends_with("://") { url } else { url.strip_suffix('/').unwrap_or(url) }.to_owned();
        let bad = |reason: &str| LdapError::Url { url: url.clone(), reason: reason.to_owned() };
        let (tls_scheme, rest) = if let Some(rest) = url.strip_prefix("ldaps://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("ldap://") {
            (false, rest)
        } else {
            return Err(bad("must start with ldap:// or ldaps://"));
        };
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad("must be scheme://host[:port] only (base DN and filter are separate settings)"));
        }
        let host = host_of(rest).ok_or_else(|| bad("has no host name"))?;
        let encrypted = tls_scheme || settings.starttls;
        if !encrypted && settings.bind_dn.is_some() && !is_loopback(host) {
            return Err(bad("would send the bind password in clear text: use ldaps:// or set starttls = true"));
        }
        let v6 = match (encrypted, host.parse::<Ipv6Addr>()) {
            (true, Ok(ip)) => Some(TlsTarget::new(ip, rest, tls_scheme).ok_or_else(|| bad("has no valid port"))?),
            _ => None,
        };
        let roots = match (&settings.ca_file, encrypted) {
            (Some(path), true) => Some(read_roots(path)?),
            (None, true) if v6.is_some() => Some(system_roots()),
            _ => None,
        };
        let tls = match roots {
            Some(roots) => Some(Arc::new(client_config(roots, v6.as_ref()).map_err(|e| bad(&format!("cannot set up TLS: {e}")))?)),
            None => None,
        };
        Ok(Endpoint {
            url,
            v6,
            starttls: settings.starttls && !tls_scheme,
            tls,
            connect_timeout: settings.connect_timeout,
            search_timeout: settings.search_timeout,
            bind_dn: settings.bind_dn.clone().filter(|dn| !dn.trim().is_empty()),
            password: settings.bind_password.clone(),
        })
    }

    /// Connects (TCP, then TLS or StartTLS) and binds, each step bounded by its timeout.
    pub async fn open(&self) -> Result<Session, LdapError> {
        let mut conn_settings = LdapConnSettings::new().set_conn_timeout(self.connect_timeout).set_starttls(self.starttls);
        if let Some(config) = &self.tls {
            conn_settings = conn_settings.set_config(config.clone());
        }
        let mut url = self.url.as_str();
        if let Some(target) = &self.v6 {
            conn_settings = conn_settings.set_std_stream(StdStream::Tcp(self.connect_v6(target).await?));
            url = &target.library_url;
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(conn_settings, url).await.map_err(|e| self.connect_error(e))?;
        let url = self.url.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(url, error = %e, "ldap connection ended");
            }
        });
        if let Some(dn) = &self.bind_dn {
            let password = match &self.password {
                Some(source) => source.read().map_err(LdapError::Password)?,
                None => {
                    return Err(LdapError::Password(format!("bind_dn `{dn}` is set but neither bind_password_env nor bind_password_file")));
                }
            };
            if password.is_empty() {
                return Err(LdapError::Password("is empty; an empty password would bind anonymously".into()));
            }
            let result = ldap.with_timeout(self.search_timeout).simple_bind(dn, &password).await.map_err(|e| self.op_error(e, "bind"))?;
            if result.rc != 0 {
                return Err(LdapError::Bind { url: self.url.clone(), dn: dn.clone(), rc: result.rc, text: result.text });
            }
        }
        Ok(Session { ldap, url: self.url.clone(), timeout: self.search_timeout })
    }

    /// The TCP connection to an IPv6 literal host, bounded by the connect timeout.
    async fn connect_v6(&self, target: &TlsTarget) -> Result<std::net::TcpStream, LdapError> {
        let connect = tokio::net::TcpStream::connect(target.addr);
        let stream = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| LdapError::Timeout { url: self.url.clone(), step: "connection", after: self.connect_timeout })?
            .and_then(|s| s.into_std())
            .map_err(|source| LdapError::Connect { url: self.url.clone(), source: Box::new(ldap3::LdapError::Io { source }) })?;
        Ok(stream)
    }

    fn connect_error(&self, e: ldap3::LdapError) -> LdapError {
        let url = self.url.clone();
        match e {
            ldap3::LdapError::Timeout { .. } => LdapError::Timeout { url, step: "connection", after: self.connect_timeout },
            ldap3::LdapError::Io { source } if is_certificate_error(&source) => LdapError::Certificate { url, source },
            ldap3::LdapError::DNSName { .. } => LdapError::Url { url, reason: "host is not a valid TLS server name".into() },
            other => LdapError::Connect { url, source: Box::new(other) },
        }
    }

    fn op_error(&self, e: ldap3::LdapError, step: &'static str) -> LdapError {
        match e {
            ldap3::LdapError::Timeout { .. } => LdapError::Timeout { url: self.url.clone(), step, after: self.search_timeout },
            other => LdapError::Io { url: self.url.clone(), step, source: Box::new(other) },
        }
    }
}

/// An open, bound connection.
pub(crate) struct Session {
    pub ldap: Ldap,
    pub url: String,
    pub timeout: Duration,
}

impl Session {
    /// Reads the root DSE to tell Active Directory from other servers.
    pub(crate) async fn server_kind(&mut self) -> Result<ServerKind, LdapError> {
        let result = self
            .ldap
            .with_timeout(self.timeout)
            .search("", Scope::Base, "(objectClass=*)", vec!["supportedCapabilities"])
            .await
            .map_err(|e| match e {
            ldap3::LdapError::Timeout { .. } => LdapError::Timeout { url: self.url.clone(), step: "root DSE query", after: self.timeout },
            other => LdapError::Io { url: self.url.clone(), step: "root DSE query", source: Box::new(other) },
        })?;
        // The root DSE is a plain entry (never a referral); unreadable means "not AD".
        let is_ad = result.0.into_iter().filter(|e| !e.is_ref() && !e.is_intermediate()).any(|entry| {
            super::entry::decode(entry).is_some_and(|e| {
                e.attributes.iter().any(|(name, value)| {
                    name.eq_ignore_ascii_case("supportedCapabilities") && matches!(value, Value::Text(v) if v == AD_CAPABILITY)
                })
            })
        });
        Ok(if is_ad { ServerKind::ActiveDirectory } else { ServerKind::Other })
    }

    /// Ends the session politely; errors do not matter any more.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.ldap.unbind()).await;
    }
}

/// The host part of `host[:port]` or `[v6]:port`.
fn host_of(authority: &str) -> Option<&str> {
    let host = if let Some(rest) = authority.strip_prefix('[') { rest.split(']').next()? } else { authority.split(':').next()? };
    (!host.is_empty()).then_some(host)
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// True when an I/O error is rustls refusing the peer (certificate, name, protocol).
fn is_certificate_error(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
}

/// TLS to an IPv6 literal host: where to connect, the name its certificate must carry (the
/// address), and a URL for the LDAP library whose host is a placeholder (never resolved: the
/// library is handed the open connection).
struct TlsTarget {
    addr: SocketAddr,
    name: ServerName<'static>,
    library_url: String,
}

impl TlsTarget {
    /// `authority` is `[v6]` or `[v6]:port`.
    fn new(ip: Ipv6Addr, authority: &str, ldaps: bool) -> Option<TlsTarget> {
        let port = match authority.rsplit_once("]:") {
            Some((_, port)) => port.parse().ok()?,
            None if ldaps => 636,
            None => 389,
        };
        let scheme = if ldaps { "ldaps" } else { "ldap" };
        Some(TlsTarget {
            addr: SocketAddr::from((ip, port)),
            name: ServerName::IpAddress(std::net::IpAddr::V6(ip).into()),
            library_url: format!("{scheme}://ipv6-literal.invalid:{port}"),
        })
    }
}

/// Verifies the server's certificate for one fixed name, whatever name the TLS connector
/// was given; everything else is rustls's own WebPKI verification.
#[derive(Debug)]
struct VerifyFor {
    name: ServerName<'static>,
    inner: Arc<rustls::client::WebPkiServerVerifier>,
}

impl ServerCertVerifier for VerifyFor {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _placeholder: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The system's trusted roots (what the LDAP library uses when no CA file is configured).
fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    tracing::debug!(added, ignored, "system trust roots loaded for an IPv6 directory address");
    roots
}

/// A rustls client configuration trusting `roots`; for an IPv6 literal host, one that
/// verifies the certificate against the address and sends no SNI (none exists for an
/// address).
fn client_config(roots: rustls::RootCertStore, v6: Option<&TlsTarget>) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("no TLS protocol version available: {e}"))?;
    let Some(target) = v6 else {
        return Ok(builder.with_root_certificates(roots).with_no_client_auth());
    };
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| format!("no usable trust roots: {e}"))?;
    let verifier = Arc::new(VerifyFor { name: target.name.clone(), inner });
    let mut config = builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth();
    config.enable_sni = false;
    Ok(config)
}

/// The certificates in `path` (PEM), every one a trust anchor.
fn read_roots(path: &std::path::Path) -> Result<rustls::RootCertStore, LdapError> {
    let pem = std::fs::read(path).map_err(|source| LdapError::CaFile { path: path.to_owned(), source })?;
    let bad = |reason: String| LdapError::CaCertificate { path: path.to_owned(), reason };
    let mut roots = rustls::RootCertStore::empty();
    for (n, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let cert = cert.map_err(|e| bad(format!("certificate {} is not valid PEM: {e}", n + 1)))?;
        roots.add(cert).map_err(|e| bad(format!("certificate {} is not usable as a trust anchor: {e}", n + 1)))?;
    }
    if roots.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    Ok(roots)
}

/// Settings for unit tests: a bind DN with a password nobody reads, 5 s timeouts.
#[cfg(test)]
pub(super) fn test_settings(url: &str) -> LdapSettings {
    LdapSettings {
        url: url.into(),
        bind_dn: Some("cn=svc,dc=contoso,dc=com".into()),
        bind_password: Some(SecretSource::Env("NOT_READ_HERE".into())),
        base_dn: "dc=contoso,dc=com".into(),
        filter: None,
        starttls: false,
        ca_file: None,
        refresh: Duration::from_secs(900),
        connect_timeout: Duration::from_secs(5),
        search_timeout: Duration::from_secs(5),
        snapshot: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    use super::test_settings as settings;

    fn url_error(url: &str) -> String {
        match Endpoint::new(&settings(url)) {
            Err(e @ LdapError::Url { .. }) => e.to_string(),
            Err(other) => panic!("expected a URL error, got {other}"),
            Ok(_) => panic!("expected {url} to be refused"),
        }
    }

    #[test]
    fn clear_text_bind_is_refused_off_loopback() {
        assert_eq!(
            url_error("ldap://dc1.contoso.com"),
            "directory.source `ldap://dc1.contoso.com`: would send the bind password in clear text: use ldaps:// or set starttls = true"
        );
        assert!(Endpoint::new(&settings("ldap://127.0.0.1:3890")).is_ok());
        assert!(Endpoint::new(&settings("ldap://[::1]:3890")).is_ok());
        assert!(Endpoint::new(&settings("ldaps://dc1.contoso.com")).is_ok());
        let mut starttls = settings("ldap://dc1.contoso.com");
        starttls.starttls = true;
        assert!(Endpoint::new(&starttls).unwrap().starttls);
    }

    #[test]
    fn url_must_be_scheme_host_port() {
        assert_eq!(url_error("ldaps://"), "directory.source `ldaps://`: has no host name");
        assert_eq!(url_error("ldaps://:636"), "directory.source `ldaps://:636`: has no host name");
        assert_eq!(
            url_error("ldaps://dc1/dc=contoso,dc=com"),
            "directory.source `ldaps://dc1/dc=contoso,dc=com`: must be scheme://host[:port] only (base DN and filter are separate settings)"
        );
        assert_eq!(url_error("ldapi:///run/slapd"), "directory.source `ldapi:///run/slapd`: must start with ldap:// or ldaps://");
    }

    #[test]
    fn an_ipv6_host_is_connected_here_and_verified_against_its_address() {
        let target = TlsTarget::new("::1".parse().unwrap(), "[::1]:6360", true).unwrap();
        assert_eq!(target.addr, "[::1]:6360".parse().unwrap());
        assert_eq!(target.name, ServerName::try_from("::1").unwrap());
        assert_eq!(target.library_url, "ldaps://ipv6-literal.invalid:6360");
        let default_port = TlsTarget::new("fd00::5".parse().unwrap(), "[fd00::5]", false).unwrap();
        assert_eq!((default_port.addr.port(), default_port.library_url.as_str()), (389, "ldap://ipv6-literal.invalid:389"));

        let mut ldaps = settings("ldaps://[::1]:6360");
        let endpoint = Endpoint::new(&ldaps).unwrap();
        assert!(endpoint.v6.is_some() && endpoint.tls.is_some(), "system roots, verified for ::1");
        assert_eq!(endpoint.url, "ldaps://[::1]:6360", "messages keep the configured URL");
        ldaps.url = "ldap://[::1]:3890".into();
        assert!(Endpoint::new(&ldaps).unwrap().v6.is_none(), "no TLS: the library connects as usual");
    }

    #[test]
    fn ca_file_problems_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings("ldaps://dc1.contoso.com");
        s.ca_file = Some(dir.path().join("missing.pem"));
        let Err(e) = Endpoint::new(&s) else { panic!("missing CA file accepted") };
        assert!(matches!(e, LdapError::CaFile { .. }), "{e}");
        let empty: PathBuf = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        s.ca_file = Some(empty.clone());
        let Err(e) = Endpoint::new(&s) else { panic!("empty CA file accepted") };
        assert_eq!(e.to_string(), format!("directory.ca_file {}: holds no PEM certificate", empty.display()));
    }
}
