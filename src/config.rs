//! Configuration: TOML text -> [`RawConfig`] (serde; unknown keys and wrong types collected
//! by [`document`]) -> [`RawConfig::validate`] -> typed [`Config`].
//!
//! Every problem is reported at once, each with the line of the offending key, before the
//! configuration is used (docs/configuration.md). Secrets are never stored here: only the *name* of the environment
//! variable or the path of the file that holds them ([`SecretSource`]); they are read at
//! the moment they are needed and never logged.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::deliver::settings::RawDelivery;
pub use crate::deliver::settings::{DeliverySettings, SmtpSettings};
pub use crate::deliver::smtp::tls_policy::{Fingerprint, TlsLevel};
use crate::enrich::contacts::settings::RawContacts;
pub use crate::enrich::contacts::settings::{CardDavSettings, ContactsSettings};
use crate::enrich::directory::settings::RawDirectory;
pub use crate::enrich::directory::settings::{DirectorySource, LdapSettings};
use crate::phone::DialPlan;
use crate::phone::settings::RawDialPlan;
use crate::render::settings::RawTemplates;
pub(crate) use crate::settings::ConfigProblem;
pub use crate::settings::SecretSource;
use crate::settings::{Problems, line_of};
use crate::spool::settings::RawSpool;
pub use crate::spool::settings::SpoolMode;

mod document;

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
pub(crate) struct RawConfig {
    #[serde(default)]
    pub dialplan: RawDialPlan,
    #[serde(default)]
    pub directory: RawDirectory,
    #[serde(default)]
    pub contacts: RawContacts,
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
    #[serde(default)]
    pub digest: crate::spool::digest::RawDigest,
}

/// `[mail]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMail {
    pub from: Option<Spanned<String>>,
}

/// `[server]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub listen: Option<Spanned<String>>,
}

// ---------------------------------------------------------------------------------------
// Validated
// ---------------------------------------------------------------------------------------

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub dialplan: DialPlan,
    pub directory: Option<DirectorySource>,
    /// `[contacts]`: the recipients' own address books, if configured.
    pub contacts: Option<ContactsSettings>,
    pub templates_dir: Option<PathBuf>,
    pub default_locale: String,
    /// Time zone for times shown in mail (and for reading zone-less `SentTime`).
    pub timezone: jiff::tz::TimeZone,
    /// `[templates] transcript_low_confidence`: a voice mail preview at or under it is unsure.
    pub transcript_low_confidence: f64,
    pub from: lettre::message::Mailbox,
    pub delivery: Option<DeliverySettings>,
    /// `[delivery] max_attachment_mb` in bytes: a larger side file is not attached.
    pub max_attachment_bytes: u64,
    /// `[delivery] voicemail_codec`: what a voicemail's recording is attached as.
    pub voicemail_codec: crate::audio::CodecChoice,
    /// The relay's `[spool]` settings (folder, mode, retry schedule, concurrency, …).
    pub spool: crate::spool::SpoolSettings,
    pub server_listen: Option<std::net::SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        RawConfig::default().validate(None, "").expect("the empty configuration is valid")
    }
}

impl Config {
    /// Reads and validates a configuration file; relative paths in it are taken
    /// relative to the file's folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
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

impl RawConfig {
    /// Checks every value; returns all problems at once.
    pub(crate) fn validate(self, base: Option<&Path>, text: &str) -> Result<Config, Vec<ConfigProblem>> {
        let mut p = Problems::new(text);
        let rel = |path: PathBuf| match base {
            Some(b) if path.is_relative() => b.join(path),
            _ => path,
        };

        let dialplan = self.dialplan.validate(&mut p);
        let directory = self.directory.validate(&mut p, &rel);
        let contacts = self.contacts.validate(&mut p, &rel);
        let render = self.templates.validate(&mut p);
        let transcript_low_confidence = self.templates.transcript_low_confidence(&mut p);
        let from = match &self.mail.from {
            Some(f) => f.get_ref().parse().unwrap_or_else(|e| {
                p.at(f, format!("mail.from: `{}` is not a mailbox: {e}", f.get_ref()));
                default_from()
            }),
            None => default_from(),
        };
        let max_attachment_bytes = self.delivery.max_attachment_bytes(&mut p);
        let voicemail_codec = self.delivery.voicemail_codec(&mut p);
        let delivery = self.delivery.validate(&mut p, &rel);
        let mut spool = self.spool.validate(&mut p, &rel);
        spool.digest = self.digest.validate(&mut p);
        let server_listen = self.server.listen.as_ref().and_then(|l| {
            l.get_ref().parse().map_err(|_| p.at(l, format!("server.listen: `{}` is not an address like 127.0.0.1:9925", l.get_ref()))).ok()
        });

        let problems = p.into_list();
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Config {
            dialplan,
            directory,
            contacts,
            templates_dir: self.templates.dir.map(&rel),
            default_locale: render.default_locale,
            timezone: render.timezone,
            transcript_low_confidence,
            from,
            delivery,
            max_attachment_bytes,
            voicemail_codec,
            spool,
            server_listen,
        })
    }
}
fn default_from() -> lettre::message::Mailbox {
    "Voice Mail <voicemail@localhost>".parse().expect("a valid literal mailbox")
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
             c.toml:7: delivery.starttls: `of` is not one of none, may, encrypt, verify or fingerprint (or the older off, opportunistic, required)"
        );
    }

    #[test]
    fn transcript_low_confidence_is_a_number_from_0_to_1() {
        let c = Config::from_toml("[templates]\ntranscript_low_confidence = 0.5\n", Path::new("c.toml")).unwrap();
        assert_eq!(c.transcript_low_confidence, 0.5);
        let c = Config::from_toml("", Path::new("c.toml")).unwrap();
        assert_eq!(c.transcript_low_confidence, crate::event::LOW_CONFIDENCE);
        let err = Config::from_toml("[templates]\ntranscript_low_confidence = 30.0\n", Path::new("c.toml")).unwrap_err();
        assert_eq!(err.to_string(), "c.toml:2: templates.transcript_low_confidence: `30` is not a number from 0 to 1");
    }

    #[test]
    fn smtp_url_with_default_port() {
        let c = Config::from_toml(
            "[delivery]\nurl = \"smtp://mail.contoso.com\"\nusername = \"u\"\npassword_env = \"P\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let Some(DeliverySettings::Smtp(s)) = c.delivery else { panic!("smtp expected") };
        assert_eq!((s.host.as_str(), s.port, s.implicit_tls, s.tls_level), ("mail.contoso.com", 587, false, TlsLevel::Verify));
        assert_eq!(s.password, Some(SecretSource::Env("P".into())));
    }

    #[test]
    fn ipv6_literals_in_urls() {
        let c = Config::from_toml(
            "[delivery]\nurl = \"smtp://[::1]:25\"\ntls_security_level = \"none\"\n[directory]\nsource = \"ldaps://[::1]:636\"\nbase_dn = \"dc=contoso,dc=com\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let Some(DeliverySettings::Smtp(s)) = c.delivery else { panic!("smtp expected") };
        assert_eq!((s.host.as_str(), s.port, s.implicit_tls), ("::1", 25, false));
        let Some(DirectorySource::Ldap(l)) = c.directory else { panic!("ldap expected") };
        assert_eq!(l.url, "ldaps://[::1]:636");
    }

    #[test]
    fn a_bad_url_names_its_key_and_line() {
        let err =
            Config::from_toml("[delivery]\nurl = \"smtp://[::1:25\"\n[directory]\nsource = \"ldap://dc1:ldap\"\n", Path::new("c.toml"))
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.toml:2: delivery.url: `smtp://[::1:25` is not a URL: invalid IPv6 address\n\
             c.toml:4: directory.source: `ldap://dc1:ldap` is not a URL: invalid port number"
        );
    }

    #[test]
    fn attachment_limit_in_megabytes() {
        assert_eq!(Config::default().max_attachment_bytes, 20 << 20);
        let c = Config::from_toml("[delivery]\ndir = \"out\"\nmax_attachment_mb = 0\n", Path::new("c.toml")).unwrap();
        assert_eq!(c.max_attachment_bytes, 0);
        let err = Config::from_toml("[delivery]\n\nmax_attachment_mb = 101\n", Path::new("c.toml")).unwrap_err();
        let want = "c.toml:3: delivery.max_attachment_mb: 101 is more than 100 (messages are built in memory)";
        assert_eq!(err.to_string(), want);
        let c = Config::from_toml("[delivery]\nvoicemail_codec = \"G711\"\n", Path::new("c.toml")).unwrap();
        assert_eq!(
            (Config::default().voicemail_codec, c.voicemail_codec),
            (crate::audio::CodecChoice::Dialplan, crate::audio::CodecChoice::G711)
        );
        let err = Config::from_toml("[delivery]\n\nvoicemail_codec = \"opus\"\n", Path::new("c.toml")).unwrap_err();
        assert_eq!(err.to_string(), "c.toml:3: delivery.voicemail_codec: `opus` is not one of dialplan, mp3, g711, gsm, wav");
        let err = Config::from_toml("[delivery]\nmax_attachment_mb = -1\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().starts_with("c.toml:2: "), "{err}");
    }

    #[test]
    fn contacts_sources_with_paths_relative_to_the_file_and_problems_by_line() {
        let text = "[contacts]\ndir = \"contacts\"\ncarddav = \"https://dav.contoso.com/{mail}/contacts/\"\nusername = \"svc\"\npassword_env = \"CARDDAV_PW\"\nrefresh = \"5m\"\n";
        let c = Config::from_toml(text, Path::new("/etc/callnote/c.toml")).unwrap();
        let contacts = c.contacts.expect("contacts");
        assert_eq!(contacts.dir.as_deref(), Some(Path::new("/etc/callnote/contacts")));
        let dav = contacts.carddav.expect("carddav");
        assert_eq!((dav.url.as_str(), dav.refresh), ("https://dav.contoso.com/{mail}/contacts/", std::time::Duration::from_secs(300)));
        assert_eq!(dav.password, Some(SecretSource::Env("CARDDAV_PW".into())));
        assert!(Config::default().contacts.is_none());

        let err =
            Config::from_toml("[contacts]\ncarddav = \"https://dav/contacts/\"\ntimeout = \"soon\"\n", Path::new("c.toml")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.toml:2: contacts.carddav: `https://dav/contacts/` must hold `{mail}` (the recipient's address) exactly once\n\
             c.toml:3: contacts.timeout: `soon` is not a duration like 30s or 15m"
        );
    }
}
