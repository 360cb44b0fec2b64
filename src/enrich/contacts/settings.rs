//! `[contacts]` settings: the raw TOML keys ([`RawContacts`]) -> [`ContactsSettings`] (an
//! export folder and/or a CardDAV address book per recipient, with the service account's
//! login, CA file, refresh interval and timeout), every problem reported with its line.
//! Pure: nothing is connected or read here; the password is only named (variable or file).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::settings::{Problems, Resolve, SecretSource, duration, secret};

/// `[contacts]`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContacts {
    pub dir: Option<PathBuf>,
    pub carddav: Option<Spanned<String>>,
    pub username: Option<String>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<PathBuf>>,
    pub ca_file: Option<PathBuf>,
    pub refresh: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
}

/// `[contacts]`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactsSettings {
    /// Folder of exports, `<mail>.vcf` or `<mail>.csv` per recipient.
    pub dir: Option<PathBuf>,
    pub carddav: Option<CardDavSettings>,
}

/// A CardDAV address book per recipient, read with one service account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardDavSettings {
    /// `https://dav.contoso.com/{mail}/contacts/`: `{mail}` is the recipient's address.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    /// Trust only this CA (PEM) instead of the system's.
    pub ca_file: Option<PathBuf>,
    pub refresh: Duration,
    pub timeout: Duration,
}

impl RawContacts {
    /// Checks every key; `None` when neither source is configured.
    pub(crate) fn validate(self, p: &mut Problems<'_>, rel: Resolve<'_>) -> Option<ContactsSettings> {
        let carddav = self.carddav.as_ref().and_then(|url| match check_url(url.get_ref()) {
            Ok(()) => Some(url.get_ref().clone()),
            Err(e) => {
                p.at(url, format!("contacts.carddav: {e}"));
                None
            }
        });
        let refresh = duration(p, &self.refresh, "contacts.refresh", Duration::from_secs(900));
        let timeout = duration(p, &self.timeout, "contacts.timeout", Duration::from_secs(10));
        let password = secret(p, "contacts.password", self.password_env, self.password_file, rel);
        let carddav =
            carddav.map(|url| CardDavSettings { url, username: self.username, password, ca_file: self.ca_file.map(rel), refresh, timeout });
        let dir = self.dir.map(rel);
        (dir.is_some() || carddav.is_some()).then_some(ContactsSettings { dir, carddav })
    }
}

/// Checks that `text` is an `http(s)://host/…` URL holding `{mail}` once.
fn check_url(text: &str) -> Result<(), String> {
    if text.matches("{mail}").count() != 1 {
        return Err(format!("`{text}` must hold `{{mail}}` (the recipient's address) exactly once"));
    }
    let url = url::Url::parse(&text.replace("{mail}", "someone@example.com")).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` has no host name"));
    }
    let loopback = matches!(url.host(), Some(url::Host::Domain("localhost")))
        || matches!(url.host(), Some(url::Host::Ipv4(a)) if a.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(a)) if a.is_loopback());
    match url.scheme() {
        "https" => {}
        // The service account's password would cross the network in clear.
        "http" if loopback => {}
        _ => return Err(format!("`{text}` is not an https:// URL (http:// only on this machine's loopback)")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carddav_urls_need_one_mail_placeholder_and_a_host() {
        assert_eq!(check_url("https://dav.contoso.com/{mail}/contacts/"), Ok(()));
        assert_eq!(check_url("http://127.0.0.1:5232/{mail}/contacts/"), Ok(()));
        assert!(check_url("https://dav.contoso.com/contacts/").is_err_and(|e| e.contains("{mail}")));
        assert!(check_url("ftp://dav/{mail}/").is_err_and(|e| e.contains("https://")));
        assert!(check_url("http://dav.contoso.com/{mail}/").is_err_and(|e| e.contains("loopback")));
    }
}
