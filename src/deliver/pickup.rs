//! `[delivery] pickup = "…\Pickup"`: hands messages to Exchange's (or IIS SMTP's) pickup
//! folder, whose service sends every `*.eml` file that appears there and deletes it.
//!
//! Consumes an [`Outgoing`], produces a [`Receipt`] naming the file. The message is
//! written under a temporary name in the staging subfolder `.callnote-tmp` (pickup services
//! do not look into subfolders, and it is on the same volume), flushed to disk, and
//! published as `<stem>.eml` (the stem names the notification) in one step: the service
//! never sees half a message, even if callnote is killed mid-write. A different message whose name collides with one the service has not
//! taken yet gets `<stem>~2.eml` (never an overwrite); a resend of the same message replaces
//! its own file. The pickup folder must exist ([`DeliveryError::Config`] at start-up
//! otherwise: a missing folder means a wrong path, not one to create); a failed write is
//! [`DeliveryError::Io`] (transient).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Deliver, DeliverFuture, DeliveryError, Outgoing, atomic, eml_dir::file_receipt};

/// The staging subfolder inside the pickup folder.
pub(crate) const STAGING: &str = ".callnote-tmp";

/// Temporary files older than this in the staging folder are leftovers of a killed process.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// Writes messages into a pickup folder.
#[derive(Debug, Clone)]
pub struct PickupTransport {
    dir: PathBuf,
    staging: PathBuf,
}

impl PickupTransport {
    /// Checks the folder exists and takes files, creates the staging subfolder and clears
    /// leftovers of a killed process from it.
    pub fn new(dir: &Path) -> Result<PickupTransport, DeliveryError> {
        let config = |message: String| DeliveryError::Config { key: "delivery.pickup", message };
        if !dir.is_dir() {
            return Err(config(format!("`{}` is not an existing folder", dir.display())));
        }
        let staging = dir.join(STAGING);
        std::fs::create_dir_all(&staging)
            .and_then(|()| atomic::probe_writable(&staging))
            .map_err(|e| config(format!("cannot write into `{}`: {e}", staging.display())))?;
        let removed = atomic::remove_stale(&staging, STALE_AFTER);
        if removed > 0 {
            tracing::info!(folder = %staging.display(), removed, "removed half-written files left by an earlier run");
        }
        Ok(PickupTransport { dir: dir.to_owned(), staging })
    }
}

impl Deliver for PickupTransport {
    fn deliver<'a>(&'a self, mail: &'a Outgoing) -> DeliverFuture<'a> {
        Box::pin(async move {
            let path = atomic::write_message(&self.staging, &self.dir, &mail.stem, &mail.bytes).await?;
            Ok(file_receipt("dropped into pickup:", path, mail))
        })
    }

    fn describe(&self) -> String {
        format!("pickup folder {}", self.dir.display())
    }
}
