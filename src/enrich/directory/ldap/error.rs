//! [`LdapError`]: why the LDAP source could not connect, bind, search or keep its snapshot.
//!
//! Messages name the thing and the value (URL, bind DN, base, filter, file) and never the
//! password. Callers decide by method ([`LdapError::is_transient`]), never by message text.

use std::path::PathBuf;
use std::time::Duration;

/// A failure of the LDAP directory source.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    /// The configured URL cannot be used.
    #[error("directory.source `{url}`: {reason}")]
    Url { url: String, reason: String },
    /// The CA file cannot be read.
    #[error("directory.ca_file {}: cannot read the CA certificates", path.display())]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("directory.ca_file {}: {reason}", path.display())]
    CaCertificate { path: PathBuf, reason: String },
    /// The bind password could not be read (the message names the variable or file).
    #[error("directory.bind_password: {0}")]
    Password(String),
    /// The TCP connection (or the StartTLS exchange) failed.
    #[error("{url}: cannot connect")]
    Connect {
        url: String,
        #[source]
        source: Box<ldap3::LdapError>,
    },
    /// The server's certificate was refused (unknown CA, wrong host name, expired …). A
    /// certificate that names no host at all gets what is missing and how to fix it.
    #[error("{url}: TLS certificate of the server refused{}", no_name_advice(source))]
    Certificate {
        url: String,
        #[source]
        source: std::io::Error,
    },
    /// The server did not answer in time.
    #[error("{url}: no answer to the {step} within {after:?}")]
    Timeout { url: String, step: &'static str, after: Duration },
    /// The simple bind was refused (wrong DN or password: result code 49).
    #[error("{url}: bind as `{dn}` refused: {} (result code {rc}){}", rc_name(*rc), detail(text))]
    Bind { url: String, dn: String, rc: u32, text: String },
    /// The server answered the search with an error result.
    #[error("{url}: search of `{base}` with filter `{filter}` failed: {} (result code {rc}){}", rc_name(*rc), detail(text))]
    Search { url: String, base: String, filter: String, rc: u32, text: String },
    /// The connection broke during an operation.
    #[error("{url}: connection lost during the {step}")]
    Io {
        url: String,
        step: &'static str,
        #[source]
        source: Box<ldap3::LdapError>,
    },
    /// The configured filter is not valid RFC 4515 syntax.
    #[error("directory.filter `{0}` is not a valid LDAP filter")]
    Filter(String),
    /// A search result entry could not be decoded.
    #[error("{url}: malformed search result entry: {reason}")]
    Malformed { url: String, reason: &'static str },
    /// The snapshot file could not be read or written.
    #[error("directory.snapshot {}: {what}", path.display())]
    Snapshot {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The snapshot file is not one this version wrote for this directory.
    #[error("directory.snapshot {}: {reason}", path.display())]
    SnapshotContent { path: PathBuf, reason: String },
    /// The directory's background worker (its thread and runtime) could not start or
    /// stopped before answering.
    #[error("LDAP worker {what}")]
    Worker {
        what: &'static str,
        #[source]
        source: Option<std::io::Error>,
    },
}

impl LdapError {
    /// True when trying again later may succeed (the server is down, busy or slow); false
    /// for configuration problems (URL, CA, password, refused bind or certificate, filter).
    pub fn is_transient(&self) -> bool {
        match self {
            LdapError::Connect { .. } | LdapError::Timeout { .. } | LdapError::Io { .. } => true,
            LdapError::Search { rc, .. } => matches!(rc, 3 | 11 | 51 | 52 | 80),
            LdapError::Bind { rc, .. } => matches!(rc, 51 | 52),
            LdapError::Malformed { .. } => true,
            LdapError::Url { .. }
            | LdapError::CaFile { .. }
            | LdapError::CaCertificate { .. }
            | LdapError::Password(_)
            | LdapError::Certificate { .. }
            | LdapError::Filter(_)
            | LdapError::Snapshot { .. }
            | LdapError::SnapshotContent { .. }
            | LdapError::Worker { .. } => false,
        }
    }
}

impl LdapError {
    /// True for problems in the `[directory]` settings themselves (URL, CA file, password
    /// source, filter syntax): an admin must edit the configuration.
    pub(crate) fn is_configuration(&self) -> bool {
        matches!(
            self,
            LdapError::Url { .. }
                | LdapError::CaFile { .. }
                | LdapError::CaCertificate { .. }
                | LdapError::Password(_)
                | LdapError::Filter(_)
        )
    }

    /// The message with every cause (`a: b: c`), a cause left out when the one before
    /// already says it (ldap3 repeats its I/O error's text). For logs and health reports.
    pub fn with_causes(&self) -> String {
        crate::causes::line(self)
    }
}

/// The RFC 4511 name of a result code.
pub(crate) fn rc_name(rc: u32) -> &'static str {
    match rc {
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        17 => "undefinedAttributeType",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        _ => "unknown result",
    }
}

/// For a certificate with no subjectAltName (only a subject CN, as Samba issues by default):
/// what is missing and how to fix it; empty for any other refusal.
fn no_name_advice(source: &std::io::Error) -> String {
    use rustls::CertificateError::NotValidForNameContext;
    let refusal = source.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
    let Some(rustls::Error::InvalidCertificate(NotValidForNameContext { expected, presented })) = refusal else {
        return String::new();
    };
    if !presented.is_empty() {
        return String::new();
    }
    let host = expected.to_str();
    let san = if host.parse::<std::net::IpAddr>().is_ok() { format!("IP:{host}") } else { format!("DNS:{host}") };
    format!(
        ": it names no host: it has no subjectAltName extension, only a subject CN (the default \
         of Samba and of older AD templates), and TLS clients no longer read the CN. Give the \
         server a certificate whose subjectAltName includes {san}"
    )
}

fn detail(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() { String::new() } else { format!(": {text}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_error_names_dn_code_and_server_text_not_password() {
        let e = LdapError::Bind {
            url: "ldaps://dc1.contoso.com".into(),
            dn: "cn=svc,dc=contoso,dc=com".into(),
            rc: 49,
            text: "80090308: LdapErr: DSID-0C09042A, data 52e".into(),
        };
        assert_eq!(
            e.to_string(),
            "ldaps://dc1.contoso.com: bind as `cn=svc,dc=contoso,dc=com` refused: invalidCredentials (result code 49): 80090308: LdapErr: DSID-0C09042A, data 52e"
        );
        assert!(!e.is_transient());
    }

    #[test]
    fn causes_are_shown_once() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = LdapError::Connect { url: "ldap://dc1".into(), source: Box::new(ldap3::LdapError::Io { source: refused }) };
        assert_eq!(e.with_causes(), "ldap://dc1: cannot connect: I/O error: connection refused");
    }

    #[test]
    fn a_certificate_naming_no_host_says_what_is_missing() {
        let refused = |presented: Vec<String>| {
            let name = rustls::pki_types::ServerName::try_from("dc1.contoso.com").unwrap();
            let cause = rustls::CertificateError::NotValidForNameContext { expected: name, presented };
            LdapError::Certificate {
                url: "ldaps://dc1.contoso.com".into(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::InvalidCertificate(cause)),
            }
        };
        assert_eq!(
            refused(Vec::new()).to_string(),
            "ldaps://dc1.contoso.com: TLS certificate of the server refused: it names no host: it has no \
             subjectAltName extension, only a subject CN (the default of Samba and of older AD templates), \
             and TLS clients no longer read the CN. Give the server a certificate whose subjectAltName \
             includes DNS:dc1.contoso.com"
        );
        let other = refused(vec!["DnsName(\"dc2.contoso.com\")".into()]);
        assert_eq!(other.to_string(), "ldaps://dc1.contoso.com: TLS certificate of the server refused");
    }

    #[test]
    fn busy_and_unavailable_are_transient() {
        let search = |rc| LdapError::Search { url: "u".into(), base: "b".into(), filter: "f".into(), rc, text: String::new() };
        assert!(search(51).is_transient());
        assert!(search(52).is_transient());
        assert!(!search(32).is_transient());
        assert_eq!(search(32).to_string(), "u: search of `b` with filter `f` failed: noSuchObject (result code 32)");
    }
}
