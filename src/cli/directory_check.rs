//! `callnote directory-check [--directory SRC] [--region CC]`: reads the directory the way
//! callnote will (an LDAP bind and paged search, or an LDIF/CSV file) and prints what an admin
//! needs to clean it up: entries, people indexed, phone values, the values that do not read
//! under the dial plan and the numbers held by several people. Exit 0 when there is nothing
//! to clean up, 1 when there is, 2 when the settings are unusable; a server that cannot be
//! reached or refuses the bind is an error (exit 1) that says why.

use anyhow::Context as _;

use super::{Status, UsageError, common};
use crate::config::{Config, DirectorySource};
use crate::enrich::directory::{self, AttributeMap, ldap};

#[derive(Debug, clap::Args)]
pub struct DirectoryCheckArgs {
    #[command(flatten)]
    pub lookup: common::DirectoryArgs,
}

pub fn run(mut config: Config, args: DirectoryCheckArgs) -> anyhow::Result<Status> {
    args.lookup.apply(&mut config)?;
    let report = match &config.directory {
        None => {
            return Err(UsageError(
                "directory-check: no directory to check: give --directory SRC or [directory] source in --config".into(),
            )
            .into());
        }
        Some(DirectorySource::File(path)) => {
            let entries = directory::read_entries(path)?;
            ldap::check_entries(&path.display().to_string(), entries, &config.dialplan, AttributeMap::default())
        }
        Some(DirectorySource::Ldap(settings)) => match ldap::directory_check_blocking(settings, &config.dialplan) {
            Ok(report) => report,
            Err(e) if e.is_configuration() => {
                return Err(UsageError(format!("directory-check: {}", e.with_causes())).into());
            }
            Err(e) => return Err(e).context("directory-check: cannot read the directory"),
        },
    };
    common::write_stdout(report.to_string().as_bytes());
    Ok(if report.is_clean() { Status::Ok } else { Status::SomeInputsFailed })
}
