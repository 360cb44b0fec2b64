//! `[delivery]` settings: the raw TOML keys ([`RawDelivery`]) -> [`DeliverySettings`] (an
//! `.eml` folder, a pickup folder, or SMTP submission with its TLS level, pins and login)
//! the attachment limit and what a voicemail's recording is attached as, every problem reported with its line through the
//! configuration's problem list. `url` is read with the `url` crate, so IPv6 literals
//! (`smtp://[::1]:25`) work. Pure: nothing is connected or read here.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::smtp::tls_policy::{self, Fingerprint, TlsLevel};
use crate::audio::CodecChoice;
use crate::settings::{Problems, Resolve, SecretSource, duration, secret};

/// `[delivery]`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDelivery {
    pub url: Option<Spanned<String>>,
    pub dir: Option<PathBuf>,
    pub pickup: Option<PathBuf>,
    /// The old name of `tls_security_level` (its values `required`, `opportunistic`, `off`).
    pub starttls: Option<Spanned<String>>,
    pub tls_security_level: Option<Spanned<String>>,
    pub tls_fingerprint: Option<Spanned<String>>,
    pub username: Option<String>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<PathBuf>>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Option<Spanned<String>>,
    pub pool_size: Option<u32>,
    /// Largest side file attached, in MB (MiB); a larger one is left out and the mail says so.
    pub max_attachment_mb: Option<Spanned<u64>>,
    /// What a voicemail's recording is attached as: `dialplan` (the header's `Codec`), `mp3`,
    /// `g711`, `gsm` or `wav` (the recording as it is).
    pub voicemail_codec: Option<Spanned<String>>,
}

/// Default `[delivery] max_attachment_mb`: 20 MB of audio is about 27 MB once base64-encoded,
/// under the 35–36 MB that Exchange's connectors and Exchange Online accept by default, and
/// twice a 20-minute G.711 recording (Exchange's default longest voice message, ~9.6 MB).
pub(crate) const DEFAULT_MAX_ATTACHMENT_MB: u64 = 20;
/// Largest `max_attachment_mb` accepted: a message is built in memory.
pub(crate) const MAX_MAX_ATTACHMENT_MB: u64 = 100;

/// `[delivery]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliverySettings {
    /// Write `<call_id>.eml` files into a folder.
    Dir(PathBuf),
    /// Exchange/IIS pickup folder (temp name, then rename).
    Pickup(PathBuf),
    Smtp(SmtpSettings),
}

/// SMTP submission settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// A name or an IP address (an IPv6 one without brackets).
    pub host: String,
    pub port: u16,
    /// `smtps://`: TLS from the first byte.
    pub implicit_tls: bool,
    /// How much TLS, and how the certificate is checked (default `verify`).
    pub tls_level: TlsLevel,
    /// The certificates `fingerprint` accepts.
    pub tls_fingerprints: Vec<Fingerprint>,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    pub pool_size: u32,
}

/// Where `smtp://` / `smtps://` points.
#[derive(Debug, PartialEq, Eq)]
struct Endpoint {
    host: String,
    port: u16,
    implicit_tls: bool,
}

/// Reads `smtp://host[:port]` or `smtps://host[:port]` (a trailing `/` is allowed); the
/// error says what is wrong, without the key.
fn parse_smtp_url(text: &str) -> Result<Endpoint, String> {
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    let implicit_tls = match url.scheme() {
        "smtps" => true,
        "smtp" => false,
        _ => return Err(format!("`{text}` must start with smtp:// or smtps://")),
    };
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(host) if !host.to_string().is_empty() => host.to_string(),
        _ => return Err("no host name".to_owned()),
    };
    let extra = !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some();
    if extra || !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{text}` must be only smtp://host:port (the login goes in username and password_env)"));
    }
    let port = url.port().unwrap_or(if implicit_tls { 465 } else { 587 });
    Ok(Endpoint { host, port, implicit_tls })
}

impl RawDelivery {
    /// `max_attachment_mb` in bytes (the default when missing; a bad value is reported).
    pub(crate) fn max_attachment_bytes(&self, p: &mut Problems<'_>) -> u64 {
        let mb = match &self.max_attachment_mb {
            Some(m) if *m.get_ref() > MAX_MAX_ATTACHMENT_MB => {
                let most = MAX_MAX_ATTACHMENT_MB;
                p.at(m, format!("delivery.max_attachment_mb: {} is more than {most} (messages are built in memory)", m.get_ref()));
                DEFAULT_MAX_ATTACHMENT_MB
            }
            Some(m) => *m.get_ref(),
            None => DEFAULT_MAX_ATTACHMENT_MB,
        };
        mb << 20
    }

    /// `voicemail_codec` (the default, `dialplan`, when missing; a bad value is reported).
    pub(crate) fn voicemail_codec(&self, p: &mut Problems<'_>) -> CodecChoice {
        let Some(name) = &self.voicemail_codec else { return CodecChoice::default() };
        CodecChoice::from_name(name.get_ref()).unwrap_or_else(|| {
            let names = CodecChoice::NAMES.join(", ");
            p.at(name, format!("delivery.voicemail_codec: `{}` is not one of {names}", name.get_ref()));
            CodecChoice::default()
        })
    }

    /// Checks every key; `None` when no delivery is configured (or `url` is unusable).
    pub(crate) fn validate(self, p: &mut Problems<'_>, rel: Resolve<'_>) -> Option<DeliverySettings> {
        let chosen = [self.url.is_some(), self.dir.is_some(), self.pickup.is_some()].iter().filter(|b| **b).count();
        if chosen > 1 {
            p.general("delivery: set only one of url, dir and pickup");
        }
        if let Some(dir) = self.dir {
            return Some(DeliverySettings::Dir(rel(dir)));
        }
        if let Some(pickup) = self.pickup {
            return Some(DeliverySettings::Pickup(rel(pickup)));
        }
        let url = self.url?;
        let Endpoint { host, port, implicit_tls } =
            parse_smtp_url(url.get_ref()).map_err(|e| p.at(&url, format!("delivery.url: {e}"))).ok()?;
        let (tls_level, tls_fingerprints) = tls(p, &self.tls_security_level, &self.starttls, &self.tls_fingerprint);
        let timeout = duration(p, &self.timeout, "delivery.timeout", Duration::from_secs(30));
        let password = secret(p, "delivery.password", self.password_env, self.password_file, rel);
        if password.is_some() && self.username.is_none() {
            p.at(&url, "delivery: a password is configured but no username");
        }
        let pins = tls_fingerprints.as_deref().unwrap_or_default();
        let username = self.username.as_deref().filter(|_| password.is_some());
        if let Err(e) = tls_policy::check_settings(tls_level, implicit_tls, &host, username, pins)
            // A bad fingerprint was reported already.
            && !(matches!(e, tls_policy::TlsSetupError::NoFingerprint) && self.tls_fingerprint.is_some())
        {
            let at = self.tls_security_level.as_ref().or(self.starttls.as_ref()).unwrap_or(&url);
            p.at(at, format!("{}: {e}", e.key()));
        }
        Some(DeliverySettings::Smtp(SmtpSettings {
            host,
            port,
            implicit_tls,
            tls_level,
            tls_fingerprints: tls_fingerprints.unwrap_or_default(),
            username: self.username,
            password,
            ca_file: self.ca_file.map(rel),
            timeout,
            pool_size: self.pool_size.unwrap_or(4).max(1),
        }))
    }
}

/// `[delivery] tls_security_level` (or its old name `starttls`; default `verify`, or
/// `fingerprint` when only `tls_fingerprint` is set) and the pins (`None` when missing or bad).
fn tls(
    p: &mut Problems<'_>,
    level: &Option<Spanned<String>>,
    starttls: &Option<Spanned<String>>,
    fingerprint: &Option<Spanned<String>>,
) -> (TlsLevel, Option<Vec<Fingerprint>>) {
    if let (Some(level), Some(_)) = (level, starttls) {
        p.at(level, "delivery: tls_security_level and its old name starttls are both set; keep tls_security_level");
    }
    let given = level.as_ref().map(|l| ("tls_security_level", l)).or(starttls.as_ref().map(|s| ("starttls", s)));
    let level = match given {
        Some((key, l)) => TlsLevel::parse(l.get_ref()).unwrap_or_else(|| {
            p.at(l, format!("delivery.{key}: `{}` is not one of {}", l.get_ref(), TlsLevel::CHOICES));
            TlsLevel::Verify
        }),
        None if fingerprint.is_some() => TlsLevel::Fingerprint,
        None => TlsLevel::Verify,
    };
    let pins = fingerprint.as_ref().and_then(|f| {
        if level != TlsLevel::Fingerprint {
            p.at(f, format!("delivery.tls_fingerprint: used only with tls_security_level = \"fingerprint\" (it is `{level}`)"));
        }
        Fingerprint::parse_list(f.get_ref()).map_err(|e| p.at(f, format!("delivery.tls_fingerprint: {e}"))).ok()
    });
    (level, pins)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(host: &str, port: u16, implicit_tls: bool) -> Result<Endpoint, String> {
        Ok(Endpoint { host: host.to_owned(), port, implicit_tls })
    }

    #[test]
    fn smtp_urls_with_names_addresses_and_default_ports() {
        assert_eq!(parse_smtp_url("smtp://mail.contoso.com"), endpoint("mail.contoso.com", 587, false));
        assert_eq!(parse_smtp_url("smtps://mail.contoso.com/"), endpoint("mail.contoso.com", 465, true));
        assert_eq!(parse_smtp_url("smtp://192.0.2.7:2525"), endpoint("192.0.2.7", 2525, false));
        assert_eq!(parse_smtp_url("smtp://[::1]:25"), endpoint("::1", 25, false));
        assert_eq!(parse_smtp_url("smtps://[2001:db8::25]"), endpoint("2001:db8::25", 465, true));
    }

    #[test]
    fn bad_smtp_urls_say_what_is_wrong() {
        assert_eq!(parse_smtp_url("http://x"), Err("`http://x` must start with smtp:// or smtps://".to_owned()));
        assert_eq!(parse_smtp_url("smtp://x:port"), Err("`smtp://x:port` is not a URL: invalid port number".to_owned()));
        assert_eq!(parse_smtp_url("smtp://[::1:25"), Err("`smtp://[::1:25` is not a URL: invalid IPv6 address".to_owned()));
        assert_eq!(parse_smtp_url("smtp://"), Err("no host name".to_owned()));
        assert!(parse_smtp_url("smtp://u:pw@x").is_err_and(|e| e.contains("only smtp://host:port")));
        assert!(parse_smtp_url("mail.contoso.com").is_err_and(|e| e.contains("is not a URL")));
    }
}
