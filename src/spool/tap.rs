//! The `tap` spool: the folder belongs to a live Exchange server. The relay only reads it:
//! files are opened read-only, never moved, renamed, rewritten or deleted, and a file is
//! taken only once it and its side file have not changed for `settle`.
//!
//! What was done is kept in the state folder instead: the journal doubles as the ledger,
//! keyed by (file GUID, CallId) — [`ledger_key`] — so a header that Exchange rewrites
//! (ProcessedCount grows) is not sent again; parked items get their `.error.txt` report in
//! `<state>/failed/`. Never writes inside the tapped folder; returns [`SpoolError`].

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::SpoolError;
use super::durable;
use super::entry::{Entry, EntryKind, entries};
use super::io;
use super::own::parked_name;

/// A folder tapped read-only, where its reports go, and where held items are kept.
#[derive(Debug)]
pub struct TapFolder {
    root: PathBuf,
    reports: PathBuf,
    /// `<state>/held/`: a copy of each item held back by `[digest]` (or carrying held
    /// calls), one folder per ledger key, since the tapped folder may drop the original.
    held: PathBuf,
}

/// A file's size and modification time: when it changes, the file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    pub len: u64,
    pub modified: SystemTime,
}

impl Signature {
    pub fn of(path: &Path) -> Result<Signature, SpoolError> {
        let meta = std::fs::metadata(path).map_err(io("cannot read the metadata of", path))?;
        let modified = meta.modified().map_err(io("cannot read the modification time of", path))?;
        Ok(Signature { len: meta.len(), modified })
    }

    /// Unchanged for at least `settle` before `now`.
    pub fn settled(&self, now: SystemTime, settle: Duration) -> bool {
        now.duration_since(self.modified).is_ok_and(|age| age >= settle)
    }
}

impl TapFolder {
    /// Taps `root`; reports go to `<state>/failed/` (created). `state` must not be inside
    /// `root`.
    pub fn open(root: &Path, state: &Path) -> Result<TapFolder, SpoolError> {
        let reports = state.join("failed");
        durable::create_dir(&reports).map_err(io("cannot create the report folder", &reports))?;
        let held = state.join("held");
        durable::create_dir(&held).map_err(io("cannot create the folder of held items", &held))?;
        Ok(TapFolder { root: root.to_owned(), reports, held })
    }

    /// The header files in the folder and its strays (see [`super::entry`]), read lazily;
    /// everything else in it is Exchange's business.
    pub fn headers(&self) -> Result<impl Iterator<Item = Entry> + Send + use<>, SpoolError> {
        Ok(entries(&self.root)?.filter(|e| matches!(e.kind, EntryKind::Header | EntryKind::Stray { .. })))
    }

    /// Writes the report of a parked file as `<state>/failed/<NAME>.error.txt` (a name that
    /// is not printable or too long made safe, see [`parked_name`]).
    pub fn write_report(&self, header: &Path, report: &str) -> Result<PathBuf, SpoolError> {
        let name = super::names::safe(header.file_name().unwrap_or_default(), super::names::NAME_MAX);
        let path = self.reports.join(format!("{}.error.txt", parked_name(&name)));
        durable::write_file(&path, report.as_bytes()).map_err(io("cannot write", &path))?;
        Ok(path)
    }
}

impl TapFolder {
    /// Keeps a copy of the item `key`: its header (`name`, `header` its bytes) and its side
    /// file (name, content), in `<state>/held/<hash of the key>/` beside a `.key` file naming
    /// it, written last: a folder without it is a copy a crash interrupted. Returns the
    /// copy's header. Every file and the folders are synced before it returns.
    pub fn keep(&self, key: &str, name: &str, header: &[u8], side: Option<(&str, &mut dyn std::io::Read)>) -> Result<PathBuf, SpoolError> {
        let dir = self.held.join(held_folder(key));
        durable::create_dir(&dir).map_err(io("cannot create", &dir))?;
        if let Some((side_name, content)) = side {
            let path = dir.join(side_name);
            durable::write_from(&path, content).map_err(io("cannot keep a copy as", &path))?;
        }
        let copy = dir.join(name);
        durable::write_file(&copy, header).map_err(io("cannot keep a copy as", &copy))?;
        let key_file = dir.join(KEY_FILE);
        durable::write_file(&key_file, key.as_bytes()).map_err(io("cannot write", &key_file))?;
        Ok(copy)
    }

    /// The kept copy of the item `key`'s header, if there is one.
    pub fn kept(&self, key: &str) -> Option<PathBuf> {
        let dir = self.held.join(held_folder(key));
        kept_header(&dir).filter(|_| std::fs::read(dir.join(KEY_FILE)).is_ok_and(|k| k == key.as_bytes()))
    }

    /// Every kept item: (ledger key, its header's copy). A copy a crash interrupted (no
    /// `.key` yet: its item was never recorded as held) is removed.
    pub fn kept_items(&self) -> Result<Vec<(String, PathBuf)>, SpoolError> {
        let listing = std::fs::read_dir(&self.held).map_err(io("cannot list", &self.held))?;
        let mut out = Vec::new();
        for entry in listing.filter_map(|e| e.ok()) {
            let dir = entry.path();
            match (std::fs::read_to_string(dir.join(KEY_FILE)), kept_header(&dir)) {
                (Ok(key), Some(header)) => out.push((key, header)),
                _ => {
                    tracing::info!(copy = %dir.display(), "removing a copy a crash interrupted");
                    durable::remove_dir(&dir).map_err(io("cannot remove", &dir))?;
                }
            }
        }
        Ok(out)
    }

    /// Removes the kept copy of the item `key` (there may be none).
    pub fn release(&self, key: &str) -> Result<(), SpoolError> {
        let dir = self.held.join(held_folder(key));
        durable::remove_dir(&dir).map_err(io("cannot remove", &dir))
    }
}

/// The file in a kept copy's folder that names its ledger key.
const KEY_FILE: &str = ".key";

/// The folder of the item `key`'s copy: its [`short_hash`] (a ledger key holds a CallId,
/// which may hold anything).
fn held_folder(key: &str) -> String {
    short_hash(key.as_bytes())
}

/// The hex of the first 16 bytes of the SHA-256 of `bytes`.
fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The header in a kept copy's folder (`.txt` or `.xml`).
fn kept_header(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        !name.starts_with('.') && (name.ends_with(".txt") || name.ends_with(".xml"))
    })
}

/// The ledger key of a header: `<file stem>/<CallId>` (Exchange names headers
/// `<GUID>.txt`). A file that cannot be read as an event has no call id: its key is
/// `<file stem>/#<SHA-256 of its bytes>`, so a rewritten file is looked at again.
pub fn ledger_key(header: &Path, call_id: Option<&str>) -> Result<String, SpoolError> {
    let stem = header.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(match call_id {
        Some(call_id) => format!("{stem}/{call_id}"),
        None => {
            let bytes = std::fs::read(header).map_err(io("cannot read", header))?;
            format!("{stem}/#{}", short_hash(&bytes))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_settling() {
        let dir = tempfile::tempdir().unwrap();
        let h = dir.path().join("0b1c.txt");
        std::fs::write(&h, "MessageType : Telepathy\n").unwrap();
        assert_eq!(ledger_key(&h, Some("call-1")).unwrap(), "0b1c/call-1");
        assert_eq!(ledger_key(&h, None).unwrap(), "0b1c/#40a65e46e9ce41f253e9a4e05eee5e4d");
        let sig = Signature::of(&h).unwrap();
        assert_eq!(sig.len, 24);
        assert!(sig.settled(sig.modified + Duration::from_secs(5), Duration::from_secs(5)));
        assert!(!sig.settled(sig.modified + Duration::from_secs(4), Duration::from_secs(5)));
        assert!(!sig.settled(sig.modified - Duration::from_secs(1), Duration::ZERO), "modified in the future");
    }

    #[test]
    fn reports_go_to_the_state_folder() {
        let dir = tempfile::tempdir().unwrap();
        let tap = TapFolder::open(&dir.path().join("spool"), &dir.path().join("state")).unwrap();
        let path = tap.write_report(Path::new("/x/a.txt"), "reason: r\n").unwrap();
        assert_eq!(path, dir.path().join("state/failed/a.txt.error.txt"));
        assert_eq!(std::fs::read_to_string(path).unwrap(), "reason: r\n");
    }
}
