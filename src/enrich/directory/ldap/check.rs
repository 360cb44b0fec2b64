//! `directory-check`: what an admin needs to clean up the directory. Binds and reads the
//! directory exactly as a sync does (or takes a file's entries), then reports counts, the
//! phone values that do not read under the dial plan and the numbers shared by several
//! people, as the index found them (its [`LoadWarning`]s: one source of truth).
//!
//! Consumes settings or entries; produces a [`DirectoryReport`] (its `Display` is the text
//! the command prints). Writes no snapshot. Errors: [`LdapError`].

use std::fmt;

use super::sync::{self, SyncReport, SyncSpec};
use super::worker::Worker;
use super::{LdapError, connect};
use crate::enrich::directory::settings::LdapSettings;
use crate::enrich::directory::{AttributeMap, DirectoryIndex, Entry, LoadWarning};
use crate::phone::DialPlan;

/// The findings of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryReport {
    /// The URL or file checked.
    pub source: String,
    /// For LDAP: the server kind, filter, entry count and time of the search.
    pub sync: Option<SyncReport>,
    /// Entries read.
    pub entries: usize,
    /// Entries kept by the index (with at least one number or address).
    pub people: usize,
    /// Phone attribute values read (each value of a multi-valued attribute counts).
    pub phone_values: usize,
    /// Values that do not read under the dial plan (they never match).
    pub unreadable: Vec<LoadWarning>,
    /// Numbers, extensions or GUIDs held by several entries (their lookups are ambiguous).
    pub shared: Vec<LoadWarning>,
    /// Anything else the index reported (oversized or too many entries).
    pub other: Vec<LoadWarning>,
    /// Estimated memory of the index.
    pub heap_bytes: usize,
}

impl DirectoryReport {
    /// True when nothing needs an admin's attention.
    pub fn is_clean(&self) -> bool {
        self.unreadable.is_empty() && self.shared.is_empty() && self.other.is_empty()
    }
}

/// Binds to the configured server, reads the directory as a sync would, and reports.
pub async fn directory_check(settings: &LdapSettings, plan: &DialPlan) -> Result<DirectoryReport, LdapError> {
    let mut settings = settings.clone();
    settings.snapshot = None;
    let spec = SyncSpec::new(&settings, plan, AttributeMap::default())?;
    let (index, report) = sync::run(&spec).await?;
    let mut checked = check_index(&spec.endpoint.url, &index, report.entries, report.phone_values);
    checked.sync = Some(report);
    Ok(checked)
}

/// [`directory_check`] for synchronous callers (the `directory-check` command): the check
/// runs on an LDAP worker of its own, stopped when the report is there.
pub(crate) fn directory_check_blocking(settings: &LdapSettings, plan: &DialPlan) -> Result<DirectoryReport, LdapError> {
    let (settings, plan) = (settings.clone(), plan.clone());
    Worker::start()?.wait(async move { directory_check(&settings, &plan).await })?
}

/// Reports on entries read from a file (LDIF or CSV), indexed with `map` under `plan`.
pub fn check_entries(source: &str, entries: Vec<Entry>, plan: &DialPlan, map: AttributeMap) -> DirectoryReport {
    let count = entries.len();
    let phone_values = entries.iter().map(|e| sync::phone_values(e, &map)).sum();
    let index = DirectoryIndex::build_with(entries, plan, map);
    check_index(source, &index, count, phone_values)
}

/// Sorts an index's warnings into a report.
pub(crate) fn check_index(source: &str, index: &DirectoryIndex, entries: usize, phone_values: usize) -> DirectoryReport {
    let mut report = DirectoryReport {
        source: source.to_owned(),
        sync: None,
        entries,
        people: index.len(),
        phone_values,
        unreadable: Vec::new(),
        shared: Vec::new(),
        other: Vec::new(),
        heap_bytes: index.heap_bytes(),
    };
    for warning in index.warnings() {
        match warning {
            LoadWarning::Unreadable { .. } => report.unreadable.push(warning.clone()),
            LoadWarning::Shared { .. } => report.shared.push(warning.clone()),
            _ => report.other.push(warning.clone()),
        }
    }
    report
}

impl fmt::Display for DirectoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "source: {}", self.source)?;
        if let Some(sync) = &self.sync {
            let server = match sync.server {
                connect::ServerKind::ActiveDirectory => "Active Directory",
                connect::ServerKind::Other => "LDAP (not Active Directory)",
            };
            writeln!(f, "server: {server}")?;
            writeln!(f, "filter: {}", sync.filter)?;
            writeln!(f, "read in: {:.2} s", sync.elapsed.as_secs_f64())?;
            if sync.referrals_skipped > 0 {
                writeln!(f, "referrals skipped: {}", sync.referrals_skipped)?;
            }
            if sync.malformed_skipped > 0 {
                writeln!(f, "malformed entries skipped: {}", sync.malformed_skipped)?;
            }
        }
        writeln!(f, "entries: {}", self.entries)?;
        writeln!(
            f,
            "people indexed: {} ({} without any number or address left out)",
            self.people,
            self.entries.saturating_sub(self.people)
        )?;
        writeln!(f, "phone values: {}", self.phone_values)?;
        writeln!(f, "index memory: {} KiB", self.heap_bytes.div_ceil(1024))?;
        let sections = [
            ("values that do not read under the dial plan", &self.unreadable),
            ("numbers held by several entries", &self.shared),
            ("other problems", &self.other),
        ];
        for (title, warnings) in sections {
            writeln!(f, "{title}: {}", warnings.len())?;
            for warning in warnings {
                writeln!(f, "  {warning}")?;
            }
        }
        Ok(())
    }
}
