//! Enrichment: an [`Event`] from intake -> the same event with every party normalized
//! (E.164, national/international formats, extension, SIP) and, with a directory, resolved
//! (status, name, label, person, candidates); the recipient completed from the directory.
//!
//! OWNER: enrich helper.

pub mod directory;
pub mod phone;

use crate::event::Event;
use directory::Directory;
use phone::DialPlan;

/// Normalizes every party of `event` and, when a directory is given, looks them up.
/// Never fails: a directory that cannot answer gives `directory_unavailable`.
pub fn enrich(_event: &mut Event, _plan: &DialPlan, _directory: Option<&dyn Directory>) {}
