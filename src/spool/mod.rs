//! The durable queue under the relay: claiming items, archiving them, parking failures
//! with their reason, the delivery journal, and the retry policy.
//!
//! Consumes a spool folder and the relay's decisions; produces durable state: every change
//! is on disk (file, folder entry and journal record `fsync`ed) before the next step is
//! taken, which is what lets the relay promise "exactly one accepted message or a parked
//! file with the reason" across crashes. Pure parts ([`retry`], [`settings`]) take the clock
//! as an argument. This module never parses, renders or sends; it returns [`SpoolError`].

pub mod digest;
pub(crate) mod durable;
pub mod entry;
pub mod journal;
pub mod names;
pub mod own;
pub mod queue;
pub mod retry;
pub mod settings;
pub mod tap;

use std::path::PathBuf;

pub use digest::DigestSettings;
pub use entry::{Entry, EntryKind};
pub use journal::{ItemStatus, Journal, Record, State};
pub use own::{OwnSpool, WorkItem};
pub use retry::{Decision, RetryPolicy};
pub use settings::{AfterSend, SpoolMode, SpoolSettings};
pub use tap::TapFolder;

/// A spool operation that failed: what was being done, and on which path.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("{action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{name}` is not parked in {}", dir.display())]
    NotParked { name: String, dir: PathBuf },
    #[error("{}: a relay is running on this spool; stop it before changing its ledger", path.display())]
    Busy { path: PathBuf },
}

/// Makes a failed `action` on `path` a [`SpoolError::Io`] (for `map_err`).
pub(crate) fn io<'a>(action: &'static str, path: &'a std::path::Path) -> impl FnOnce(std::io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io { action, path: path.to_owned(), source }
}

/// Where "now" comes from (the system clock, or a test's).
pub trait Clock: Send + Sync {
    fn now(&self) -> jiff::Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}
