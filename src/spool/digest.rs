//! `[digest]` settings: the raw TOML keys ([`RawDigest`]) -> [`DigestSettings`], every
//! problem reported with its line. What the relay holds back, and for how long:
//!
//! - `window`: after a missed call from a caller, further missed calls from the same caller
//!   to the same recipient within `window` of the previous one are held and sent together
//!   as one digest when the window closes. Unset (the default): off.
//! - `max_calls`, `max_hold`: a digest holding `max_calls` calls, or whose first call has
//!   been held `max_hold`, is sent at once.
//! - `merge_anonymous`: anonymous callers (no number) are never folded into one digest
//!   unless this is `true`.
//! - `hold_missed`: every missed call is held this long before it is sent alone, so that a
//!   voicemail of the same call can replace it. `0s` (the default): sent at once.
//! - `replace_same_caller`: a voicemail also replaces the held missed calls of the same
//!   caller within this long before it (not only those with its CallId). Unset: CallId only.
//!
//! Pure: never touches the file system or the clock.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::settings::{Problems, duration};

/// `[digest]`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDigest {
    pub window: Option<Spanned<String>>,
    pub max_calls: Option<Spanned<u32>>,
    pub max_hold: Option<Spanned<String>>,
    pub merge_anonymous: Option<bool>,
    pub hold_missed: Option<Spanned<String>>,
    pub replace_same_caller: Option<Spanned<String>>,
}

/// What the relay holds back (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestSettings {
    /// `None`: no digests.
    pub window: Option<Duration>,
    pub max_calls: usize,
    pub max_hold: Duration,
    pub merge_anonymous: bool,
    /// Zero: missed calls are not held for a voicemail to replace them.
    pub hold_missed: Duration,
    /// `None`: a voicemail replaces only the held missed calls with its CallId.
    pub replace_same_caller: Option<Duration>,
}

impl Default for DigestSettings {
    fn default() -> Self {
        DigestSettings {
            window: None,
            max_calls: 10,
            max_hold: Duration::from_secs(15 * 60),
            merge_anonymous: false,
            hold_missed: Duration::ZERO,
            replace_same_caller: None,
        }
    }
}

impl DigestSettings {
    /// Whether anything is ever held: with neither `window` nor `hold_missed`, the relay
    /// sends every item as it comes, as it always did.
    pub fn holds_anything(&self) -> bool {
        self.window.is_some() || !self.hold_missed.is_zero()
    }
}

impl RawDigest {
    /// Checks every key; problems go to `p`, defaults stand in for bad values.
    pub(crate) fn validate(self, p: &mut Problems<'_>) -> DigestSettings {
        let d = DigestSettings::default();
        // `Duration::MAX` stands for "not a duration" (already reported).
        let positive = |value: &Option<Spanned<String>>, key: &str, p: &mut Problems<'_>| {
            let got = duration(p, value, &format!("digest.{key}"), Duration::MAX);
            match value {
                Some(_) if got == Duration::MAX => None,
                Some(v) if got.is_zero() => {
                    p.at(v, format!("digest.{key}: must be longer than 0 (leave it out to turn it off)"));
                    None
                }
                Some(_) => Some(got),
                None => None,
            }
        };
        let window = positive(&self.window, "window", p);
        let max_hold = positive(&self.max_hold, "max_hold", p).unwrap_or(d.max_hold);
        let replace_same_caller = positive(&self.replace_same_caller, "replace_same_caller", p);
        let hold_missed = duration(p, &self.hold_missed, "digest.hold_missed", d.hold_missed);
        let max_calls = match &self.max_calls {
            Some(n) if (2..=1000).contains(n.get_ref()) => *n.get_ref() as usize,
            Some(n) => {
                p.at(n, "digest.max_calls: must be between 2 and 1000");
                d.max_calls
            }
            None => d.max_calls,
        };
        DigestSettings {
            window,
            max_calls,
            max_hold,
            merge_anonymous: self.merge_anonymous.unwrap_or(d.merge_anonymous),
            hold_missed,
            replace_same_caller,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{ConfigProblem, validate_section};

    fn read(text: &str) -> (DigestSettings, Vec<ConfigProblem>) {
        validate_section(text, |raw: RawDigest, p| raw.validate(p))
    }

    #[test]
    fn nothing_is_held_unless_configured() {
        let (digest, problems) = read("");
        assert_eq!((digest.clone(), problems), (DigestSettings::default(), vec![]));
        assert!(!digest.holds_anything());
    }

    #[test]
    fn keys_are_read() {
        let toml = "window = \"5m\"\nmax_calls = 4\nmax_hold = \"20m\"\nmerge_anonymous = true\nhold_missed = \"30s\"\nreplace_same_caller = \"2m\"\n";
        let (digest, problems) = read(toml);
        assert_eq!(problems, vec![]);
        assert_eq!(
            digest,
            DigestSettings {
                window: Some(Duration::from_secs(300)),
                max_calls: 4,
                max_hold: Duration::from_secs(1200),
                merge_anonymous: true,
                hold_missed: Duration::from_secs(30),
                replace_same_caller: Some(Duration::from_secs(120)),
            }
        );
        assert!(digest.holds_anything());
    }

    #[test]
    fn bad_values_are_reported_with_their_lines() {
        let (digest, problems) = read("window = \"0s\"\nmax_calls = 1\nmax_hold = \"soon\"\n");
        let got: Vec<_> = problems.iter().map(|p| (p.line, p.message.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (Some(1), "digest.window: must be longer than 0 (leave it out to turn it off)"),
                (Some(3), "digest.max_hold: `soon` is not a duration like 30s or 15m"),
                (Some(2), "digest.max_calls: must be between 2 and 1000"),
            ]
        );
        assert_eq!(digest.window, None);
    }
}
