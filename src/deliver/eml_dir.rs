//! `[delivery] dir = "outbox"`: every message becomes `<stem>.eml` in a folder, the stem
//! naming the notification (`<call id>-<recipient>-<kind>`).
//!
//! Consumes an [`Outgoing`], produces a [`Receipt`] naming the file. The file is written
//! atomically (temporary name, flush, publish), so a reader never sees half a message;
//! delivering the same message again replaces its own file (idempotent), while a different
//! message whose name collides gets `<stem>~2.eml` and so on: never an overwrite (see
//! [`atomic`]). Creates the folder at start-up; returns [`DeliveryError::Config`] when it
//! cannot, [`DeliveryError::Io`] when a write fails. Never writes outside the folder (the
//! stem is a safe file name). `render --out` writes through the same code, the folder synced once
//! for the run ([`Self::open_for_run`]).

use std::path::{Path, PathBuf};

use super::{Deliver, DeliverFuture, DeliveryError, Outgoing, Receipt, atomic};

/// Writes `.eml` files into a folder.
#[derive(Debug, Clone)]
pub(crate) struct EmlDirTransport {
    dir: PathBuf,
}

impl EmlDirTransport {
    /// Creates the folder if needed and checks that files can be written in it.
    pub fn new(dir: &Path) -> Result<EmlDirTransport, DeliveryError> {
        std::fs::create_dir_all(dir)
            .and_then(|()| atomic::probe_writable(dir))
            .map_err(|e| DeliveryError::Config { key: "delivery.dir", message: format!("cannot write into `{}`: {e}", dir.display()) })?;
        Ok(EmlDirTransport { dir: dir.to_owned() })
    }
}

/// The receipt of a file transport: the file, and every envelope recipient as accepted.
pub(crate) fn file_receipt(verb: &str, path: PathBuf, mail: &Outgoing) -> Receipt {
    Receipt {
        summary: format!("{verb} {} ({} bytes)", path.display(), mail.bytes.len()),
        queue_id: None,
        accepted: mail.envelope.to().to_vec(),
        refused: Vec::new(),
        file: Some(path),
        smtp: None,
    }
}

impl EmlDirTransport {
    /// The folder opened for a run of writes without a runtime (`render --out`): each
    /// message is written as [`Deliver::deliver`] writes it, but the folder is synced once,
    /// by [`atomic::OpenFolder::sync`], which the run must call before it ends.
    pub fn open_for_run(&self) -> Result<atomic::OpenFolder, DeliveryError> {
        atomic::OpenFolder::open(&self.dir)
            .map_err(|e| DeliveryError::Config { key: "delivery.dir", message: format!("cannot open `{}`: {e}", self.dir.display()) })
    }
}

impl Deliver for EmlDirTransport {
    fn deliver<'a>(&'a self, mail: &'a Outgoing) -> DeliverFuture<'a> {
        Box::pin(async move {
            let path = atomic::write_message(&self.dir, &self.dir, &mail.stem, &mail.bytes).await?;
            Ok(file_receipt("wrote", path, mail))
        })
    }

    fn describe(&self) -> String {
        format!(".eml folder {}", self.dir.display())
    }
}
