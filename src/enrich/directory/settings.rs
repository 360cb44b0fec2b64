//! `[directory]` settings: the raw TOML keys ([`RawDirectory`]) -> [`DirectorySource`] (an
//! LDIF/CSV export, or an LDAP server with its login, base, filter, refresh and snapshot),
//! every problem reported with its line through the configuration's problem list. `source`
//! URLs are read with the `url` crate, so IPv6 literals (`ldaps://[::1]:636`) work. Pure:
//! nothing is connected or read here.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::settings::{Problems, Resolve, SecretSource, duration, secret};

/// `[directory]`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDirectory {
    pub source: Option<Spanned<String>>,
    pub bind_dn: Option<String>,
    pub bind_password_env: Option<Spanned<String>>,
    pub bind_password_file: Option<Spanned<PathBuf>>,
    pub base_dn: Option<String>,
    pub filter: Option<String>,
    pub starttls: Option<bool>,
    pub ca_file: Option<PathBuf>,
    pub refresh: Option<Spanned<String>>,
    pub connect_timeout: Option<Spanned<String>>,
    pub search_timeout: Option<Spanned<String>>,
    /// Where the last good LDAP snapshot is kept for restarts while the DC is down.
    pub snapshot: Option<PathBuf>,
}

/// `[directory]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant, reason = "built once per configuration; boxing would gain nothing")]
pub enum DirectorySource {
    /// An LDIF or CSV export (chosen by extension: `.csv` is CSV, anything else LDIF).
    File(PathBuf),
    Ldap(LdapSettings),
}

/// LDAP connection and sync settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapSettings {
    /// `ldap://` or `ldaps://`, with a host (checked), as written.
    pub url: String,
    pub bind_dn: Option<String>,
    pub bind_password: Option<SecretSource>,
    pub base_dn: String,
    /// `None`: the AD default filter.
    pub filter: Option<String>,
    pub starttls: bool,
    pub ca_file: Option<PathBuf>,
    pub refresh: Duration,
    pub connect_timeout: Duration,
    pub search_timeout: Duration,
    pub snapshot: Option<PathBuf>,
}

/// Checks that `text` is `ldap://host[:port]` or `ldaps://host[:port]`; the error says what
/// is wrong, without the key.
fn check_ldap_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "ldap" | "ldaps") {
        return Err(format!("`{text}` is neither a file nor an ldap:// or ldaps:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` has no host name"));
    }
    Ok(())
}

impl RawDirectory {
    /// Checks every key; `None` when no directory is configured (or `source` is unusable).
    pub(crate) fn validate(self, p: &mut Problems<'_>, rel: Resolve<'_>) -> Option<DirectorySource> {
        let source = self.source?;
        let url = source.get_ref();
        if !url.contains("://") {
            return Some(DirectorySource::File(rel(PathBuf::from(url))));
        }
        if let Err(e) = check_ldap_url(url) {
            p.at(&source, format!("directory.source: {e}"));
            return None;
        }
        let mut ldap_duration =
            |v: &Option<Spanned<String>>, key: &str, secs: u64| duration(p, v, &format!("directory.{key}"), Duration::from_secs(secs));
        let refresh = ldap_duration(&self.refresh, "refresh", 900);
        let connect_timeout = ldap_duration(&self.connect_timeout, "connect_timeout", 5);
        let search_timeout = ldap_duration(&self.search_timeout, "search_timeout", 30);
        let bind_password = secret(p, "directory.bind_password", self.bind_password_env, self.bind_password_file, rel);
        let base_dn = self.base_dn.unwrap_or_else(|| {
            p.at(&source, "directory.base_dn is required for an LDAP source");
            String::new()
        });
        Some(DirectorySource::Ldap(LdapSettings {
            url: url.clone(),
            bind_dn: self.bind_dn,
            bind_password,
            base_dn,
            filter: self.filter,
            starttls: self.starttls.unwrap_or(false),
            ca_file: self.ca_file.map(rel),
            refresh,
            connect_timeout,
            search_timeout,
            snapshot: self.snapshot.map(rel),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldap_urls_with_names_and_ipv6_addresses() {
        for good in ["ldap://dc1.contoso.com", "ldaps://dc1.contoso.com:636", "ldaps://[::1]:636", "ldap://192.0.2.10:389/"] {
            assert_eq!(check_ldap_url(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn bad_ldap_urls_say_what_is_wrong() {
        assert_eq!(check_ldap_url("ldaps://[::1:636"), Err("`ldaps://[::1:636` is not a URL: invalid IPv6 address".to_owned()));
        assert_eq!(check_ldap_url("https://dc1"), Err("`https://dc1` is neither a file nor an ldap:// or ldaps:// URL".to_owned()));
        assert_eq!(check_ldap_url("ldap://"), Err("`ldap://` has no host name".to_owned()));
    }
}
