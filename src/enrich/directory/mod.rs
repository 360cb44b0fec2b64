//! The caller directory: sources (LDIF, CSV, LDAP) feed one normalized in-memory index;
//! lookups never scan.
//!
//! OWNER: enrich helper.

use crate::event::{Candidate, Party, Person, Recipient};

/// Why the directory could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory unavailable: {0}")]
    Unavailable(String),
}

/// The outcome of a lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Resolved(Box<Person>, Candidate),
    Ambiguous(Vec<Candidate>),
    Unresolved,
}

/// A source of people, looked up by a normalized party.
pub trait Directory: Send + Sync {
    /// Finds who owns the (already normalized) party's number, extension or SIP address.
    fn lookup(&self, party: &Party) -> Result<Lookup, DirectoryError>;
    /// Finds the recipient's entry by SMTP address, SIP address, EUM proxy or objectGUID.
    fn find_recipient(&self, recipient: &Recipient) -> Result<Option<Person>, DirectoryError>;
}
