//! Configuration: TOML text -> [`RawConfig`] (serde; unknown keys and wrong types collected
//! by [`document`]) -> [`RawConfig::validate`] -> typed [`Config`].
//!
//! Every problem is reported at once, each with the line of the offending key, before the
//! configuration is used (docs/configuration.md). Secrets are never stored here: only the *name* of the environment
//! variable or the path of the file that holds them ([`SecretSource`]); they are read at
//! the moment they are needed and never logged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::deliver::smtp::tls_policy;
use crate::phone::DialPlan;

mod document;

/// One configuration problem, with the line it was found on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub line: Option<usize>,
    pub message: String,
}

/// All problems found in one configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read configuration")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", format_problems(path, problems))]
    Invalid { path: PathBuf, problems: Vec<ConfigProblem> },
}

fn format_problems(path: &Path, problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|p| match p.line {
            Some(line) => format!("{}:{}: {}", path.display(), line, p.message),
            None => format!("{}: {}", path.display(), p.message),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------
// Raw, as written
// ---------------------------------------------------------------------------------------

/// The file as written. Every section and key is optional; unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub dialplan: RawDialPlan,
    #[serde(default)]
    pub directory: RawDirectory,
    #[serde(default)]
    pub templates: RawTemplates,
    #[serde(default)]
    pub mail: RawMail,
    #[serde(default)]
    pub delivery: RawDelivery,
    #[serde(default)]
    pub spool: RawSpool,
    #[serde(default)]
    pub server: RawServer,
}

/// `[dialplan]`: how bare numbers are read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDialPlan {
    /// ISO 3166 region for numbers without a country code (default `US`).
    pub region: Option<Spanned<String>>,
    /// Digits dialled to reach an outside line (`9`); stripped from caller ids.
    pub outside_line_code: Option<Spanned<String>>,
    /// Length of internal extensions (default 4).
    pub extension_digits: Option<Spanned<u32>>,
    /// Shortest trailing-digit match allowed (default 7).
    pub min_suffix_digits: Option<Spanned<u32>>,
}

/// `[directory]`: where callers are looked up.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDirectory {
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

/// `[templates]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplates {
    pub dir: Option<PathBuf>,
    pub default_locale: Option<Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
}

/// `[mail]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMail {
    pub from: Option<Spanned<String>>,
}

/// `[delivery]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelivery {
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
}

/// Default `[delivery] max_attachment_mb`: 20 MB of audio is about 27 MB once base64-encoded,
/// under the 35–36 MB that Exchange's connectors and Exchange Online accept by default, and
/// twice a 20-minute G.711 recording (Exchange's default longest voice message, ~9.6 MB).
pub const DEFAULT_MAX_ATTACHMENT_MB: u64 = 20;
/// Largest `max_attachment_mb` accepted: a message is built in memory.
pub const MAX_MAX_ATTACHMENT_MB: u64 = 100;

/// `[spool]` (the relay's keys are validated in [`crate::spool::settings`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpool {
    pub dir: Option<PathBuf>,
    pub mode: Option<Spanned<String>>,
    pub state_dir: Option<PathBuf>,
    pub min_backoff: Option<Spanned<String>>,
    pub max_backoff: Option<Spanned<String>>,
    pub max_age: Option<Spanned<String>>,
    pub after_send: Option<Spanned<String>>,
    pub concurrency: Option<Spanned<u32>>,
    pub rescan: Option<Spanned<String>>,
    pub settle: Option<Spanned<String>>,
}

/// `[server]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<Spanned<String>>,
}

// ---------------------------------------------------------------------------------------
// Validated
// ---------------------------------------------------------------------------------------

/// Where a secret comes from. The value itself is read only when needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

impl SecretSource {
    /// Reads the secret. The error names the variable or file, never the value.
    pub fn read(&self) -> Result<String, String> {
        match self {
            SecretSource::Env(var) => std::env::var(var)
                .map_err(|_| format!("environment variable `{var}` is not set")),
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
                .map_err(|e| format!("{}: cannot read secret file: {e}", path.display())),
        }
    }
}

/// `[directory]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectorySource {
    /// An LDIF or CSV export (chosen by extension: `.csv` is CSV, anything else LDIF).
    File(PathBuf),
    Ldap(LdapSettings),
}

/// LDAP connection and sync settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapSettings {
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

/// `[delivery]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliverySettings {
    /// Write `<call_id>.eml` files into a folder.
    Dir(PathBuf),
    /// Exchange/IIS pickup folder (temp name, then rename).
    Pickup(PathBuf),
    Smtp(SmtpSettings),
}

pub use crate::deliver::smtp::tls_policy::{Fingerprint, TlsLevel};

/// SMTP submission settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
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

/// `[spool] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolMode {
    Own,
    Tap,
}

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub dialplan: DialPlan,
    pub directory: Option<DirectorySource>,
    pub templates_dir: Option<PathBuf>,
    pub default_locale: String,
    /// Time zone for times shown in mail (and for reading zone-less `SentTime`).
    pub timezone: jiff::tz::TimeZone,
    pub from: lettre::message::Mailbox,
    pub delivery: Option<DeliverySettings>,
    /// `[delivery] max_attachment_mb` in bytes: a larger side file is not attached.
    pub max_attachment_bytes: u64,
    pub spool_dir: Option<PathBuf>,
    pub spool_mode: SpoolMode,
    /// The relay's `[spool]` settings (retry schedule, concurrency, …).
    pub spool: crate::spool::SpoolSettings,
    pub server_listen: Option<std::net::SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        RawConfig::default()
            .validate(None, "")
            .expect("the empty configuration is valid")
    }
}

impl Config {
    /// Reads and validates a configuration file; relative paths in it are taken
    /// relative to the file's folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Config::from_toml(&text, path)
    }

    /// Parses and validates TOML text; `path` is used for messages and relative paths. Every
    /// problem is collected before failing: unknown keys (with the nearest known name), values
    /// of the wrong type and invalid values, sorted by line.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |problems| ConfigError::Invalid { path: path.to_owned(), problems };
        let (raw, mut problems) = document::read(text).map_err(|p| invalid(vec![p]))?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty());
        let config = raw.validate(base, text).map_err(|more| problems.extend(more)).ok();
        problems.sort_by_key(|p| p.line);
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(invalid(problems)),
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// Collects problems while validating.
pub(crate) struct Problems<'a> {
    text: &'a str,
    list: Vec<ConfigProblem>,
}

impl Problems<'_> {
    pub(crate) fn at<T>(&mut self, spanned: &Spanned<T>, message: impl Into<String>) {
        let line = (!self.text.is_empty()).then(|| line_of(self.text, spanned.span().start));
        self.list.push(ConfigProblem { line, message: message.into() });
    }
    fn general(&mut self, message: impl Into<String>) {
        self.list.push(ConfigProblem { line: None, message: message.into() });
    }
}

/// Parses `15m`, `30s`, `2h`, `500ms`, `1d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = text.split_at(split);
    let n: u64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => return Some(Duration::from_millis(n)),
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

impl RawConfig {
    /// Checks every value; returns all problems at once.
    pub fn validate(self, base: Option<&Path>, text: &str) -> Result<Config, Vec<ConfigProblem>> {
        let mut p = Problems { text, list: Vec::new() };
        let rel = |path: PathBuf| match base {
            Some(b) if path.is_relative() => b.join(path),
            _ => path,
        };

        let dialplan = self.dialplan.validate(&mut p);
        let directory = self.directory.validate(&mut p, &rel);

        let default_locale = match &self.templates.default_locale {
            Some(l) if crate::render::locale::is_valid_culture(l.get_ref()) => l.get_ref().clone(),
            Some(l) => {
                p.at(l, format!("templates.default_locale: `{}` is not a culture name like `en-US`", l.get_ref()));
                "en-US".to_owned()
            }
            None => "en-US".to_owned(),
        };
        let timezone = match &self.templates.timezone {
            Some(tz) => jiff::tz::TimeZone::get(tz.get_ref()).unwrap_or_else(|_| {
                p.at(tz, format!("templates.timezone: unknown IANA time zone `{}`", tz.get_ref()));
                jiff::tz::TimeZone::UTC
            }),
            None => jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC),
        };
        let from = match &self.mail.from {
            Some(f) => f.get_ref().parse().unwrap_or_else(|e| {
                p.at(f, format!("mail.from: `{}` is not a mailbox: {e}", f.get_ref()));
                default_from()
            }),
            None => default_from(),
        };
        let max_attachment_mb = match &self.delivery.max_attachment_mb {
            Some(m) if *m.get_ref() > MAX_MAX_ATTACHMENT_MB => {
                let most = MAX_MAX_ATTACHMENT_MB;
                p.at(m, format!("delivery.max_attachment_mb: {} is more than {most} (messages are built in memory)", m.get_ref()));
                DEFAULT_MAX_ATTACHMENT_MB
            }
            Some(m) => *m.get_ref(),
            None => DEFAULT_MAX_ATTACHMENT_MB,
        };
        let delivery = self.delivery.validate(&mut p, &rel);
        let spool_mode = match self.spool.mode.as_ref().map(|m| (m, m.get_ref().as_str())) {
            None | Some((_, "own")) => SpoolMode::Own,
            Some((_, "tap")) => SpoolMode::Tap,
            Some((m, other)) => {
                p.at(m, format!("spool.mode: `{other}` is not `own` or `tap`"));
                SpoolMode::Own
            }
        };
        let spool = crate::spool::settings::validate(&self.spool, &mut p, &rel);
        let server_listen = self.server.listen.as_ref().and_then(|l| {
            l.get_ref().parse().map_err(|_| p.at(l, format!("server.listen: `{}` is not an address like 127.0.0.1:9925", l.get_ref()))).ok()
        });

        if !p.list.is_empty() {
            return Err(p.list);
        }
        Ok(Config {
            dialplan,
            directory,
            templates_dir: self.templates.dir.map(&rel),
            default_locale,
            timezone,
            from,
            delivery,
            max_attachment_bytes: max_attachment_mb << 20,
            spool_dir: self.spool.dir.map(&rel),
            spool_mode,
            spool,
            server_listen,
        })
    }
}

fn default_from() -> lettre::message::Mailbox {
    "Voice Mail <voicemail@localhost>".parse().expect("a valid literal mailbox")
}

impl RawDialPlan {
    fn validate(&self, p: &mut Problems<'_>) -> DialPlan {
        let region = self.region.as_ref().map(|r| r.get_ref().as_str()).unwrap_or("US");
        let outside = self.outside_line_code.as_ref().map(|o| o.get_ref().as_str());
        if let Some(o) = &self.outside_line_code
            && !o.get_ref().chars().all(|c| c.is_ascii_digit())
        {
            p.at(o, format!("dialplan.outside_line_code: `{}` must be digits", o.get_ref()));
        }
        let ext = self.extension_digits.as_ref().map(|e| *e.get_ref()).unwrap_or(4);
        if let Some(e) = &self.extension_digits
            && !(1..=10).contains(e.get_ref())
        {
            p.at(e, "dialplan.extension_digits: must be between 1 and 10");
        }
        let suffix = self.min_suffix_digits.as_ref().map(|s| *s.get_ref()).unwrap_or(7);
        if let Some(s) = &self.min_suffix_digits
            && !(4..=15).contains(s.get_ref())
        {
            p.at(s, "dialplan.min_suffix_digits: must be between 4 and 15");
        }
        match DialPlan::new(region, outside, ext as usize, suffix as usize) {
            Ok(plan) => plan,
            Err(message) => {
                match &self.region {
                    Some(r) => p.at(r, format!("dialplan.region: {message}")),
                    None => p.general(format!("dialplan: {message}")),
                }
                DialPlan::new("US", None, 4, 7).expect("the US default dial plan is valid")
            }
        }
    }
}

impl RawDirectory {
    fn validate(self, p: &mut Problems<'_>, rel: &dyn Fn(PathBuf) -> PathBuf) -> Option<DirectorySource> {
        let source = self.source?;
        let url = source.get_ref();
        if url.starts_with("ldap://") || url.starts_with("ldaps://") {
            let duration = |p: &mut Problems<'_>, v: &Option<Spanned<String>>, key: &str, default: u64| match v {
                Some(d) => parse_duration(d.get_ref()).unwrap_or_else(|| {
                    p.at(d, format!("directory.{key}: `{}` is not a duration like 15m or 30s", d.get_ref()));
                    Duration::from_secs(default)
                }),
                None => Duration::from_secs(default),
            };
            let refresh = duration(p, &self.refresh, "refresh", 900);
            let connect_timeout = duration(p, &self.connect_timeout, "connect_timeout", 5);
            let search_timeout = duration(p, &self.search_timeout, "search_timeout", 30);
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
        } else if url.contains("://") {
            p.at(&source, format!("directory.source: `{url}` is neither a file nor an ldap:// or ldaps:// URL"));
            None
        } else {
            Some(DirectorySource::File(rel(PathBuf::from(url))))
        }
    }
}

fn secret(
    p: &mut Problems<'_>,
    key: &str,
    env: Option<Spanned<String>>,
    file: Option<Spanned<PathBuf>>,
    rel: &dyn Fn(PathBuf) -> PathBuf,
) -> Option<SecretSource> {
    match (env, file) {
        (Some(e), Some(_)) => {
            p.at(&e, format!("{key}_env and {key}_file are both set; choose one"));
            None
        }
        (Some(e), None) => Some(SecretSource::Env(e.into_inner())),
        (None, Some(f)) => Some(SecretSource::File(rel(f.into_inner()))),
        (None, None) => None,
    }
}

impl RawDelivery {
    fn validate(self, p: &mut Problems<'_>, rel: &dyn Fn(PathBuf) -> PathBuf) -> Option<DeliverySettings> {
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
        let (implicit_tls, rest) = if let Some(rest) = url.get_ref().strip_prefix("smtps://") {
            (true, rest)
        } else if let Some(rest) = url.get_ref().strip_prefix("smtp://") {
            (false, rest)
        } else {
            p.at(&url, format!("delivery.url: `{}` must start with smtp:// or smtps://", url.get_ref()));
            return None;
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, port)) if !h.ends_with(']') || rest.starts_with('[') => match port.parse::<u16>() {
                Ok(port) => (h.trim_matches(['[', ']']).to_owned(), port),
                Err(_) => {
                    p.at(&url, format!("delivery.url: `{port}` is not a port number"));
                    return None;
                }
            },
            _ => (rest.to_owned(), if implicit_tls { 465 } else { 587 }),
        };
        if host.is_empty() {
            p.at(&url, "delivery.url: no host name");
            return None;
        }
        let (tls_level, tls_fingerprints) = tls(p, &self.tls_security_level, &self.starttls, &self.tls_fingerprint);
        let timeout = match &self.timeout {
            Some(t) => parse_duration(t.get_ref()).unwrap_or_else(|| {
                p.at(t, format!("delivery.timeout: `{}` is not a duration like 30s", t.get_ref()));
                Duration::from_secs(30)
            }),
            None => Duration::from_secs(30),
        };
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

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = Config::from_toml("[dialplan]\nregion = \"US\"\nprot = 1\n", Path::new("c.toml")).unwrap_err();
        let text = err.to_string();
        assert_eq!(text, "c.toml:3: unknown key `prot` in [dialplan]");
    }

    #[test]
    fn all_problems_reported_at_once() {
        let toml = "[templates]\ntimezone = \"Mars/Olympus\"\n[delivery]\nurl = \"http://x\"\n[spool]\nmode = \"grab\"\n";
        let err = Config::from_toml(toml, Path::new("c.toml")).unwrap_err();
        let ConfigError::Invalid { problems, .. } = err else { panic!("expected Invalid") };
        let lines: Vec<_> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![Some(2), Some(4), Some(6)]);
    }

    #[test]
    fn unknown_keys_and_invalid_values_come_together_in_line_order() {
        let toml = "[dialplan]\nregoin = \"US\"\n[mail]\nform = \"a@b.c\"\n[delivery]\nurl = \"smtp://x:25\"\nstarttls = \"of\"\n";
        let err = Config::from_toml(toml, Path::new("c.toml")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.toml:2: unknown key `regoin` in [dialplan]; did you mean `region`?\n\
             c.toml:4: unknown key `form` in [mail]; did you mean `from`?\n\
             c.toml:7: delivery.starttls: `of` is not required, opportunistic or off"
        );
    }

    #[test]
    fn smtp_url_with_default_port() {
        let c = Config::from_toml("[delivery]\nurl = \"smtp://mail.contoso.com\"\nusername = \"u\"\npassword_env = \"P\"\n", Path::new("c.toml")).unwrap();
        let Some(DeliverySettings::Smtp(s)) = c.delivery else { panic!("smtp expected") };
        assert_eq!((s.host.as_str(), s.port, s.implicit_tls, s.tls_level), ("mail.contoso.com", 587, false, TlsLevel::Verify));
        assert_eq!(s.password, Some(SecretSource::Env("P".into())));
    }

    #[test]
    fn attachment_limit_in_megabytes() {
        assert_eq!(Config::default().max_attachment_bytes, 20 << 20);
        let c = Config::from_toml("[delivery]\ndir = \"out\"\nmax_attachment_mb = 0\n", Path::new("c.toml")).unwrap();
        assert_eq!(c.max_attachment_bytes, 0);
        let err = Config::from_toml("[delivery]\n\nmax_attachment_mb = 101\n", Path::new("c.toml")).unwrap_err();
        let want = "c.toml:3: delivery.max_attachment_mb: 101 is more than 100 (messages are built in memory)";
        assert_eq!(err.to_string(), want);
        let err = Config::from_toml("[delivery]\nmax_attachment_mb = -1\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().starts_with("c.toml:2: "), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
    }
}
