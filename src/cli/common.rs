//! What every command shares: loading the configuration, applying command-line overrides,
//! opening the directory and the templates (problems with either are configuration errors,
//! exit status 2), logging, reporting per-input failures and writing to a closed pipe.

use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use super::{ConfigProblem, UsageError};
use crate::config::{Config, DirectorySource};
use crate::enrich::directory::{self, Directory};
use crate::phone::DialPlan;
use crate::render::Templates;

/// Sets up `tracing` (text or JSON to stderr; `RUST_LOG` filters, default `warn`). Text is
/// coloured only on a terminal and without `NO_COLOR`: a log file or the journal gets plain
/// text.
pub(crate) fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().with_ansi(false).try_init()
    } else {
        builder.with_ansi(colour_wanted(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR"))).try_init()
    };
}

/// Colour on a terminal, unless `NO_COLOR` is set to anything but the empty string.
fn colour_wanted(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// The configuration file, or the built-in defaults without one.
pub(crate) fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(path) => Ok(Config::load(path)?),
        None => Ok(Config::default()),
    }
}

/// The flags that choose how callers are looked up, shared by every command that enriches.
#[derive(Debug, Default, clap::Args)]
pub struct DirectoryArgs {
    /// Caller directory: an LDIF or CSV file, or an ldap:// / ldaps:// URL (bind and search
    /// settings from --config). Default: `[directory] source`.
    #[arg(long, value_name = "SRC")]
    pub directory: Option<String>,
    /// Dial-plan region for numbers without a country code (ISO 3166, e.g. US, GB).
    #[arg(long, value_name = "CC")]
    pub region: Option<String>,
}

impl DirectoryArgs {
    /// Lays the flags over the configuration (a flag wins over the file).
    pub fn apply(&self, config: &mut Config) -> anyhow::Result<()> {
        override_directory(config, self.directory.as_deref())?;
        override_region(config, self.region.as_deref())
    }
}

/// `--directory SRC`: a file path or an ldap(s):// URL (LDAP settings from the config file).
pub(crate) fn override_directory(config: &mut Config, source: Option<&str>) -> anyhow::Result<()> {
    let Some(source) = source else { return Ok(()) };
    config.directory = Some(if source.starts_with("ldap://") || source.starts_with("ldaps://") {
        match config.directory.clone() {
            Some(DirectorySource::Ldap(mut ldap)) => {
                ldap.url = source.to_owned();
                DirectorySource::Ldap(ldap)
            }
            _ => {
                return Err(UsageError(format!(
                    "--directory {source}: an LDAP source needs the [directory] bind and base_dn settings in --config"
                ))
                .into());
            }
        }
    } else {
        DirectorySource::File(PathBuf::from(source))
    });
    Ok(())
}

/// `--region CC`: the dial plan's region.
pub(crate) fn override_region(config: &mut Config, region: Option<&str>) -> anyhow::Result<()> {
    let Some(region) = region else { return Ok(()) };
    let plan = &config.dialplan;
    config.dialplan = DialPlan::new(region, plan.outside_line_code.as_deref(), plan.extension_digits, plan.min_suffix_digits)
        .map_err(|e| UsageError(format!("--region {region}: {e}")))?;
    Ok(())
}

/// Opens the configured directory, if any (loads a file, through its index cache; syncs LDAP).
pub(crate) fn open_directory(config: &Config) -> anyhow::Result<Option<Arc<dyn Directory>>> {
    open_directory_noting(config, |_, _| {})
}

/// Like [`open_directory`], and prints to stderr what loading a directory file found wrong,
/// one `PATH: warning: …` line each: values that do not read under the dial plan (they never
/// match, so a caller who has one shows as unresolved) and numbers several people share.
pub(crate) fn open_directory_with_warnings(config: &Config) -> anyhow::Result<Option<Arc<dyn Directory>>> {
    open_directory_noting(config, |path, index| {
        for warning in index.warnings() {
            eprintln!("{}: warning: {warning}", path.display());
        }
    })
}

fn open_directory_noting(
    config: &Config,
    note: impl FnOnce(&Path, &directory::DirectoryIndex),
) -> anyhow::Result<Option<Arc<dyn Directory>>> {
    match &config.directory {
        None => Ok(None),
        Some(DirectorySource::File(path)) => {
            // A missing or malformed directory file is the configuration's problem.
            let (index, used) = directory::load_file_cached(path, &config.dialplan).map_err(ConfigProblem::wrap)?;
            tracing::debug!("{}: directory index {used:?}", path.display());
            note(path, &index);
            Ok(Some(Arc::new(index)))
        }
        Some(DirectorySource::Ldap(settings)) => {
            // First sync (or the last good snapshot when the DC is down); a wrong password,
            // CA or host name is an error here, before any input is read.
            let directory =
                directory::ldap::LdapDirectory::open_blocking(settings, &config.dialplan).map_err(|e| ldap_open_error(&settings.url, e))?;
            Ok(Some(directory))
        }
    }
}

/// Unusable LDAP settings (bad URL, CA file, refused bind) are configuration errors (exit
/// 2); an unreachable server is not.
fn ldap_open_error(url: &str, e: directory::ldap::LdapError) -> anyhow::Error {
    let error = anyhow::anyhow!("{}", e.with_causes());
    let what = format!("{url}: cannot open the LDAP directory");
    if e.is_configuration() { error.context(UsageError(what)) } else { error.context(what) }
}

/// For long-running services (relay, preview): like [`open_directory`], but an LDAP
/// directory keeps refreshing in the background on `[directory] refresh`, swapping each
/// complete new index in atomically.
pub(crate) fn open_directory_for_service(config: &Config) -> anyhow::Result<Option<Arc<dyn Directory>>> {
    match &config.directory {
        Some(DirectorySource::Ldap(settings)) => {
            let options = directory::ldap::LdapOptions::default();
            let directory = directory::ldap::LdapDirectory::open_refreshing(settings, &config.dialplan, options)
                .map_err(|e| ldap_open_error(&settings.url, e))?;
            Ok(Some(directory))
        }
        _ => open_directory(config),
    }
}

/// What `--templates DIR` says in every command's help.
pub(crate) const TEMPLATES_HELP: &str = "Template folder laid over the built-in set, file by file (default: `[templates] dir`)";

/// `--templates DIR`, else `[templates] dir`, else the built-in set.
pub(crate) fn load_templates(config: &Config, dir: Option<&Path>) -> anyhow::Result<Templates> {
    match dir.or(config.templates_dir.as_deref()) {
        None => Ok(Templates::builtin()),
        Some(dir) => {
            check_templates_folder(dir)?;
            Templates::from_dir(dir).map_err(|problems| {
                let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
                anyhow::anyhow!("{}", lines.join("\n")).context(UsageError(format!("{}: templates do not load", dir.display())))
            })
        }
    }
}

/// A templates folder that cannot be listed (missing, a file, no permission) is a usage
/// problem named once, not a template problem at `.:1:1`.
pub(crate) fn check_templates_folder(dir: &Path) -> anyhow::Result<()> {
    std::fs::read_dir(dir)
        .map(drop)
        .map_err(|e| ConfigProblem::wrap(anyhow::Error::new(e).context(format!("{}: cannot read the templates folder", dir.display()))))
}

/// The fixed date for reproducible output: `--date` (RFC 3339), else `SOURCE_DATE_EPOCH`.
pub(crate) fn fixed_date(flag: Option<&str>) -> anyhow::Result<Option<jiff::Timestamp>> {
    if let Some(text) = flag {
        return text.parse().map(Some).map_err(|e| UsageError(format!("--date {text}: not an RFC 3339 time: {e}")).into());
    }
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(secs) => {
            let secs: i64 = secs.trim().parse().with_context(|| format!("SOURCE_DATE_EPOCH `{secs}` is not a number of seconds"))?;
            Ok(Some(jiff::Timestamp::from_second(secs)?))
        }
        Err(_) => Ok(None),
    }
}

/// Writes to stdout; a closed pipe (`| head`) ends the program quietly instead of panicking.
pub(crate) fn write_stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// Prints one input's failure (`PATH[:LINE]: message: cause: …`).
pub(crate) fn report_failure(error: impl Into<anyhow::Error>) {
    eprintln!("{}", super::output::error_line(&error.into()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some("".into())), "an empty NO_COLOR does not count");
        assert!(!colour_wanted(true, Some("1".into())));
        assert!(!colour_wanted(false, None));
    }
}
