//! `[spool]` settings of the relay: raw TOML keys ([`crate::config::RawSpool`]) ->
//! [`SpoolSettings`], every problem reported with its line through the configuration's
//! problem list. Pure: never touches the file system (folders are created by the relay).

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::retry::RetryPolicy;
use crate::config::{Problems, RawSpool, parse_duration};

/// What happens to an item once the server has accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterSend {
    /// Moved (with its side file) into `archive/` (the default).
    Archive,
    /// Deleted.
    Remove,
}

/// The relay's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolSettings {
    /// Where the journal (and, in `tap` mode, the ledger and parked reports) live. `None`:
    /// `<spool.dir>/state` in `own` mode; required in `tap` mode.
    pub state_dir: Option<PathBuf>,
    /// Retry schedule for temporary failures.
    pub retry: RetryPolicy,
    pub after_send: AfterSend,
    /// Items processed at the same time.
    pub concurrency: usize,
    /// Full rescan interval of the long-running relay (file-system events are not
    /// delivered on SMB/NFS shares).
    pub rescan: Duration,
    /// `tap` mode: how long a file and its side file must stay unchanged before it is read.
    pub settle: Duration,
}

impl Default for SpoolSettings {
    fn default() -> Self {
        SpoolSettings {
            state_dir: None,
            retry: RetryPolicy::default(),
            after_send: AfterSend::Archive,
            concurrency: 4,
            rescan: Duration::from_secs(30),
            settle: Duration::from_secs(5),
        }
    }
}

/// Validates the relay's `[spool]` keys; problems go to `p`, defaults stand in for bad values.
pub(crate) fn validate(raw: &RawSpool, p: &mut Problems<'_>, rel: &dyn Fn(PathBuf) -> PathBuf) -> SpoolSettings {
    let d = SpoolSettings::default();
    let mut duration = |v: &Option<Spanned<String>>, key: &str, default: Duration| match v {
        Some(s) => parse_duration(s.get_ref()).unwrap_or_else(|| {
            p.at(
                s,
                format!("spool.{key}: `{}` is not a duration like 5m or 30s", s.get_ref()),
            );
            default
        }),
        None => default,
    };
    let min_backoff = duration(&raw.min_backoff, "min_backoff", d.retry.min_backoff);
    let max_backoff = duration(&raw.max_backoff, "max_backoff", d.retry.max_backoff);
    let max_age = duration(&raw.max_age, "max_age", d.retry.max_age);
    let rescan = duration(&raw.rescan, "rescan", d.rescan);
    let settle = duration(&raw.settle, "settle", d.settle);
    if let Some(s) = &raw.max_backoff
        && max_backoff < min_backoff
    {
        p.at(s, "spool.max_backoff: must not be shorter than spool.min_backoff");
    }
    if let Some(s) = &raw.min_backoff
        && min_backoff.is_zero()
    {
        p.at(s, "spool.min_backoff: must be longer than 0");
    }
    let after_send = match raw.after_send.as_ref().map(|a| (a, a.get_ref().as_str())) {
        None | Some((_, "archive")) => AfterSend::Archive,
        Some((_, "remove")) => AfterSend::Remove,
        Some((a, other)) => {
            p.at(a, format!("spool.after_send: `{other}` is not `archive` or `remove`"));
            AfterSend::Archive
        }
    };
    let concurrency = match &raw.concurrency {
        Some(c) if (1..=256).contains(c.get_ref()) => *c.get_ref() as usize,
        Some(c) => {
            p.at(c, "spool.concurrency: must be between 1 and 256");
            d.concurrency
        }
        None => d.concurrency,
    };
    SpoolSettings {
        state_dir: raw.state_dir.clone().map(rel),
        retry: RetryPolicy {
            min_backoff,
            max_backoff: max_backoff.max(min_backoff),
            max_age,
        },
        after_send,
        concurrency,
        rescan,
        settle,
    }
}

impl SpoolSettings {
    /// The state folder: the configured one, else `<spool>/state`.
    pub fn state_dir_for(&self, spool: &Path) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(|| spool.join("state"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError};

    #[test]
    fn defaults_are_postfix_like() {
        let c = Config::from_toml("", Path::new("c.toml")).unwrap();
        assert_eq!(c.spool, SpoolSettings::default());
        assert_eq!(c.spool.retry.min_backoff, Duration::from_secs(300));
        assert_eq!(c.spool.retry.max_backoff, Duration::from_secs(4000));
        assert_eq!(c.spool.retry.max_age, Duration::from_secs(5 * 86_400));
    }

    #[test]
    fn keys_are_read_and_paths_made_relative() {
        let toml = "[spool]\ndir = \"in\"\nstate_dir = \"st\"\nmin_backoff = \"100ms\"\nmax_backoff = \"2s\"\nmax_age = \"1m\"\nafter_send = \"remove\"\nconcurrency = 8\nrescan = \"1s\"\nsettle = \"200ms\"\n";
        let c = Config::from_toml(toml, Path::new("/etc/callnote/c.toml")).unwrap();
        assert_eq!(c.spool.state_dir, Some(PathBuf::from("/etc/callnote/st")));
        assert_eq!(
            c.spool.retry,
            RetryPolicy {
                min_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                max_age: Duration::from_secs(60)
            }
        );
        assert_eq!((c.spool.after_send, c.spool.concurrency), (AfterSend::Remove, 8));
        assert_eq!(
            (c.spool.rescan, c.spool.settle),
            (Duration::from_secs(1), Duration::from_millis(200))
        );
    }

    #[test]
    fn bad_values_are_reported_with_their_lines() {
        let toml = "[spool]\nmin_backoff = \"soon\"\nafter_send = \"shred\"\nconcurrency = 0\n";
        let ConfigError::Invalid { problems, .. } = Config::from_toml(toml, Path::new("c.toml")).unwrap_err() else {
            panic!("expected Invalid")
        };
        let got: Vec<_> = problems.iter().map(|p| (p.line, p.message.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (Some(2), "spool.min_backoff: `soon` is not a duration like 5m or 30s"),
                (Some(3), "spool.after_send: `shred` is not `archive` or `remove`"),
                (Some(4), "spool.concurrency: must be between 1 and 256"),
            ]
        );
    }
}
