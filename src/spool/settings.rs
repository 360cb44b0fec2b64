//! `[spool]` settings: the raw TOML keys ([`RawSpool`]) -> [`SpoolSettings`] (folder, mode,
//! retry schedule, concurrency, ...), every problem reported with its line through the
//! configuration's problem list. Pure: never touches the file system (folders are created by
//! the relay).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::retry::RetryPolicy;
use crate::settings::{Problems, Resolve, duration};

/// `[spool]`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSpool {
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
    pub archive_keep: Option<Spanned<String>>,
    pub ledger_keep: Option<Spanned<String>>,
}

/// `[spool] mode`: the relay owns the folder (`own`), or watches one that Exchange writes
/// and never changes it (`tap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolMode {
    Own,
    Tap,
}

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
    /// The spool folder (`None`: no relay configured).
    pub dir: Option<PathBuf>,
    pub mode: SpoolMode,
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
    /// How long archived items (`own` mode) and rotated journals are kept.
    pub archive_keep: Duration,
    /// `tap` mode: how long the ledger keeps a file's entry after its last record, once the
    /// file has left the folder.
    pub ledger_keep: Duration,
    /// `[digest]`: which missed calls are held, to be sent as one digest or replaced by
    /// their voicemail.
    pub digest: super::DigestSettings,
}

impl Default for SpoolSettings {
    fn default() -> Self {
        SpoolSettings {
            dir: None,
            mode: SpoolMode::Own,
            state_dir: None,
            retry: RetryPolicy::default(),
            after_send: AfterSend::Archive,
            concurrency: 4,
            rescan: Duration::from_secs(30),
            settle: Duration::from_secs(5),
            archive_keep: Duration::from_secs(30 * 86_400),
            ledger_keep: Duration::from_secs(30 * 86_400),
            digest: super::DigestSettings::default(),
        }
    }
}

impl RawSpool {
    /// Checks every key; problems go to `p`, defaults stand in for bad values.
    pub(crate) fn validate(self, p: &mut Problems<'_>, rel: Resolve<'_>) -> SpoolSettings {
        let d = SpoolSettings::default();
        let mut spool_duration =
            |v: &Option<Spanned<String>>, key: &str, default: Duration| duration(p, v, &format!("spool.{key}"), default);
        let min_backoff = spool_duration(&self.min_backoff, "min_backoff", d.retry.min_backoff);
        let max_backoff = spool_duration(&self.max_backoff, "max_backoff", d.retry.max_backoff);
        let max_age = spool_duration(&self.max_age, "max_age", d.retry.max_age);
        let rescan = spool_duration(&self.rescan, "rescan", d.rescan);
        let settle = spool_duration(&self.settle, "settle", d.settle);
        let archive_keep = spool_duration(&self.archive_keep, "archive_keep", d.archive_keep);
        let ledger_keep = spool_duration(&self.ledger_keep, "ledger_keep", d.ledger_keep);
        if let Some(s) = &self.ledger_keep
            && ledger_keep < max_age
        {
            p.at(s, "spool.ledger_keep: must not be shorter than spool.max_age");
        }
        if let Some(s) = &self.max_backoff
            && max_backoff < min_backoff
        {
            p.at(s, "spool.max_backoff: must not be shorter than spool.min_backoff");
        }
        if let Some(s) = &self.min_backoff
            && min_backoff.is_zero()
        {
            p.at(s, "spool.min_backoff: must be longer than 0");
        }
        let mode = match self.mode.as_ref().map(|m| (m, m.get_ref().as_str())) {
            None | Some((_, "own")) => SpoolMode::Own,
            Some((_, "tap")) => SpoolMode::Tap,
            Some((m, other)) => {
                p.at(m, format!("spool.mode: `{other}` is not `own` or `tap`"));
                SpoolMode::Own
            }
        };
        let after_send = match self.after_send.as_ref().map(|a| (a, a.get_ref().as_str())) {
            None | Some((_, "archive")) => AfterSend::Archive,
            Some((_, "remove")) => AfterSend::Remove,
            Some((a, other)) => {
                p.at(a, format!("spool.after_send: `{other}` is not `archive` or `remove`"));
                AfterSend::Archive
            }
        };
        let concurrency = match &self.concurrency {
            Some(c) if (1..=256).contains(c.get_ref()) => *c.get_ref() as usize,
            Some(c) => {
                p.at(c, "spool.concurrency: must be between 1 and 256");
                d.concurrency
            }
            None => d.concurrency,
        };
        SpoolSettings {
            dir: self.dir.map(rel),
            mode,
            state_dir: self.state_dir.map(rel),
            retry: RetryPolicy { min_backoff, max_backoff: max_backoff.max(min_backoff), max_age },
            after_send,
            concurrency,
            rescan,
            settle,
            archive_keep,
            ledger_keep: ledger_keep.max(max_age),
            digest: super::DigestSettings::default(),
        }
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
    use crate::settings::{ConfigProblem, validate_section};

    fn read(text: &str) -> (SpoolSettings, Vec<ConfigProblem>) {
        let rel = |path: PathBuf| Path::new("/etc/callnote").join(path);
        validate_section(text, |raw: RawSpool, p| raw.validate(p, &rel))
    }

    #[test]
    fn defaults_are_postfix_like() {
        let (spool, problems) = read("");
        assert_eq!((spool.clone(), problems), (SpoolSettings::default(), vec![]));
        assert_eq!((spool.dir, spool.mode), (None, SpoolMode::Own));
        assert_eq!(spool.retry.min_backoff, Duration::from_secs(300));
        assert_eq!(spool.retry.max_backoff, Duration::from_secs(4000));
        assert_eq!(spool.retry.max_age, Duration::from_secs(5 * 86_400));
    }

    #[test]
    fn keys_are_read_and_paths_made_relative() {
        let toml = "dir = \"in\"\nmode = \"tap\"\nstate_dir = \"st\"\nmin_backoff = \"100ms\"\nmax_backoff = \"2s\"\nmax_age = \"1m\"\nafter_send = \"remove\"\nconcurrency = 8\nrescan = \"1s\"\nsettle = \"200ms\"\narchive_keep = \"7d\"\nledger_keep = \"90d\"\n";
        let (spool, problems) = read(toml);
        assert_eq!(problems, vec![]);
        assert_eq!((spool.dir, spool.mode), (Some(PathBuf::from("/etc/callnote/in")), SpoolMode::Tap));
        assert_eq!(spool.state_dir, Some(PathBuf::from("/etc/callnote/st")));
        assert_eq!(
            spool.retry,
            RetryPolicy { min_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(2), max_age: Duration::from_secs(60) }
        );
        assert_eq!((spool.after_send, spool.concurrency), (AfterSend::Remove, 8));
        assert_eq!((spool.rescan, spool.settle), (Duration::from_secs(1), Duration::from_millis(200)));
        assert_eq!((spool.archive_keep, spool.ledger_keep), (Duration::from_secs(7 * 86_400), Duration::from_secs(90 * 86_400)));
    }

    #[test]
    fn bad_values_are_reported_with_their_lines() {
        let toml = "mode = \"grab\"\nmin_backoff = \"soon\"\nafter_send = \"shred\"\nconcurrency = 0\nledger_keep = \"1h\"\n";
        let (_, problems) = read(toml);
        let got: Vec<_> = problems.iter().map(|p| (p.line, p.message.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (Some(2), "spool.min_backoff: `soon` is not a duration like 30s or 15m"),
                (Some(5), "spool.ledger_keep: must not be shorter than spool.max_age"),
                (Some(1), "spool.mode: `grab` is not `own` or `tap`"),
                (Some(3), "spool.after_send: `shred` is not `archive` or `remove`"),
                (Some(4), "spool.concurrency: must be between 1 and 256"),
            ]
        );
    }
}
