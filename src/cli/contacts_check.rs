//! `callnote contacts-check --recipient MAIL…`: reads each recipient's contacts the way
//! callnote will (their export in `[contacts] dir`, their CardDAV address book) and prints,
//! per recipient and source, whether it could be read and how many contacts it holds, never
//! a contact's name or number, nor the CardDAV password. Exit 0 when every source answered,
//! 1 when one could not be read, 2 when `[contacts]` is missing or unusable.

use std::fmt::Write as _;

use super::{Status, UsageError, common};
use crate::config::Config;
use crate::enrich::contacts::{ExportDir, carddav::CardDavBook};
use crate::enrich::directory::{DirectoryIndex, LoadWarning};

#[derive(Debug, clap::Args)]
pub struct ContactsCheckArgs {
    /// A recipient's mail address (repeat for several).
    #[arg(long = "recipient", value_name = "MAIL", required = true)]
    pub recipients: Vec<String>,
}

pub fn run(config: Config, args: ContactsCheckArgs) -> anyhow::Result<Status> {
    let settings = config.contacts.as_ref().ok_or_else(|| UsageError("contacts-check: no [contacts] dir or carddav in --config".into()))?;
    let carddav = match &settings.carddav {
        Some(carddav) => Some(CardDavBook::new(carddav, &config.dialplan).map_err(|e| UsageError(format!("contacts-check: {e}")))?),
        None => None,
    };
    let exports = settings.dir.as_ref().map(|dir| ExportDir::new(dir, &config.dialplan));
    let (mut out, mut failed) = (String::new(), false);
    for mail in &args.recipients {
        if let Some(exports) = &exports {
            let line = match exports.load(mail) {
                Ok(Some(index)) => counts(&index),
                Ok(None) => "no export".to_owned(),
                Err(e) => {
                    failed = true;
                    format!("cannot be read: {e}")
                }
            };
            let _ = writeln!(out, "{mail}: export folder {}: {line}", exports.dir().display());
        }
        if let Some(book) = &carddav {
            let line = match book.refresh(mail) {
                Ok(report) if !report.exists => "reachable, no address book".to_owned(),
                Ok(report) => format!("reachable, {} contact(s), {} card(s) unreadable", report.contacts, report.skipped),
                Err(e) => {
                    failed = true;
                    format!("cannot be read: {e}")
                }
            };
            let _ = writeln!(out, "{mail}: carddav: {line}");
        }
    }
    common::write_stdout(out.as_bytes());
    Ok(if failed { Status::SomeInputsFailed } else { Status::Ok })
}

/// `N contact(s)` and how many of their numbers never match.
fn counts(index: &DirectoryIndex) -> String {
    let unreadable = index.warnings().iter().filter(|w| matches!(w, LoadWarning::Unreadable { .. })).count();
    format!("{} contact(s) with a number or address, {unreadable} value(s) that do not read under the dial plan", index.len())
}
