//! What every stage's settings share: the problem list that validation writes to (each
//! problem with the line of the key it is about), durations (`15m`, `30s`), secrets named by
//! environment variable or file, and paths taken relative to the configuration's folder.
//!
//! Each stage keeps its own `[section]` keys, settings type and checks beside its code
//! (`spool/settings.rs`, `deliver/settings.rs`, ...); [`crate::config`] only reads the file
//! and assembles them. Nothing here touches the file system except [`SecretSource::read`].

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

/// One configuration problem, with the line it was found on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub line: Option<usize>,
    pub message: String,
}

/// The line (from 1) of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// Collects problems while validating; `text` is the file, for line numbers.
pub(crate) struct Problems<'a> {
    text: &'a str,
    list: Vec<ConfigProblem>,
}

impl<'a> Problems<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Problems { text, list: Vec::new() }
    }

    /// A problem with the value `spanned`, reported at its line.
    pub(crate) fn at<T>(&mut self, spanned: &Spanned<T>, message: impl Into<String>) {
        let line = (!self.text.is_empty()).then(|| line_of(self.text, spanned.span().start));
        self.list.push(ConfigProblem { line, message: message.into() });
    }

    /// A problem that belongs to no one line.
    pub(crate) fn general(&mut self, message: impl Into<String>) {
        self.list.push(ConfigProblem { line: None, message: message.into() });
    }

    pub(crate) fn into_list(self) -> Vec<ConfigProblem> {
        self.list
    }
}

/// Turns a path from the file into one relative to the configuration's folder.
pub(crate) type Resolve<'a> = &'a dyn Fn(PathBuf) -> PathBuf;

/// Parses `15m`, `30s`, `2h`, `500ms`, `1d`.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
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

/// The duration under `key` (`spool.rescan`), or `default` when missing or bad (reported).
pub(crate) fn duration(p: &mut Problems<'_>, value: &Option<Spanned<String>>, key: &str, default: Duration) -> Duration {
    let Some(text) = value else { return default };
    parse_duration(text.get_ref()).unwrap_or_else(|| {
        p.at(text, format!("{key}: `{}` is not a duration like 30s or 15m", text.get_ref()));
        default
    })
}

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
            SecretSource::Env(var) => std::env::var(var).map_err(|_| format!("environment variable `{var}` is not set")),
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
                .map_err(|e| format!("{}: cannot read secret file: {e}", path.display())),
        }
    }
}

/// The secret under `<key>_env` or `<key>_file` (`delivery.password`); both set is a problem.
pub(crate) fn secret(
    p: &mut Problems<'_>,
    key: &str,
    env: Option<Spanned<String>>,
    file: Option<Spanned<PathBuf>>,
    rel: Resolve<'_>,
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

/// For the stages' tests: reads one section's keys from `text` (without its `[header]`) and
/// validates them with `validate`; the problems come in the order they were found.
#[cfg(test)]
pub(crate) fn validate_section<R: serde::de::DeserializeOwned, T>(
    text: &str,
    validate: impl FnOnce(R, &mut Problems<'_>) -> T,
) -> (T, Vec<ConfigProblem>) {
    let raw = toml::from_str(text).expect("the test's TOML is valid");
    let mut p = Problems::new(text);
    let settings = validate(raw, &mut p);
    (settings, p.into_list())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
    }
}
