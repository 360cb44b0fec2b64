//! What an entry of the spool folder is, judged by its name and its own type (a link is
//! never followed): the one rule the relay (both modes) and `callnote queue list` apply, so
//! that every entry ends somewhere visible.
//!
//! Consumes a folder entry (name bytes, `lstat` type, and for a link its target); produces
//! an [`EntryKind`]. A header (`*.txt`/`*.xml`, a regular file) is taken; a side file waits
//! for the header that names it; a file being written (hidden name) is left for later; a
//! stray is an entry that can never become a notification (a link, a folder or a device
//! with a header's name, a name that is not UTF-8 or has control characters) and is parked
//! as it is with its reason; anything else is not callnote's and is left alone, but listed.

use std::ffi::OsStr;
use std::fs::FileType;
use std::path::{Path, PathBuf};

use super::SpoolError;
use super::io;
use super::names::{self, is_header_name, is_side_file_name};

/// The folders callnote keeps inside an `own` spool.
pub const OWN_FOLDERS: [&str; 4] = ["work", "archive", "failed", "state"];

/// What an entry of the spool folder is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A header file: claimed and read.
    Header,
    /// A `.wav`/`.tif`/`.msg`: taken by the header that names it.
    SideFile,
    /// Hidden (`.name`): a producer is still writing it; taken once renamed.
    InProgress,
    /// Can never become a notification: parked as it is, with this reason.
    Stray { reason: String },
    /// Not a header and not a side file: left alone (listed by `queue list`).
    Other,
    /// One of callnote's own folders (`work/`, `archive/`, `failed/`, `state/`).
    Own,
}

/// One entry of the spool folder and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub kind: EntryKind,
}

impl Entry {
    /// The entry's name as it can be shown or created: itself when it is plain UTF-8,
    /// otherwise printable with a hash ([`names::safe`]).
    pub fn display_name(&self) -> String {
        names::safe(self.path.file_name().unwrap_or_default(), names::NAME_MAX)
    }
}

/// Judges one entry by its name and its own type; `path` is only read for a link's target.
pub fn classify(name: &OsStr, file_type: FileType, path: &Path) -> EntryKind {
    let hidden = name.as_encoded_bytes().first() == Some(&b'.');
    let Some(text) = name.to_str().filter(|t| !t.chars().any(char::is_control)) else {
        if hidden {
            return EntryKind::InProgress;
        }
        let what = if name.to_str().is_some() { "has control characters" } else { "is not UTF-8" };
        return EntryKind::Stray { reason: format!("the file name {what} (its bytes: `{}`)", names::escaped(name)) };
    };
    if file_type.is_dir() && OWN_FOLDERS.contains(&text) {
        return EntryKind::Own;
    }
    if hidden {
        return EntryKind::InProgress;
    }
    if is_header_name(text) {
        return match what_else(file_type, path) {
            None => EntryKind::Header,
            Some(reason) => EntryKind::Stray { reason },
        };
    }
    if is_side_file_name(text) && file_type.is_file() {
        return EntryKind::SideFile;
    }
    EntryKind::Other
}

/// Why an entry with a header's name is not a header file, or `None` when it is one.
fn what_else(file_type: FileType, path: &Path) -> Option<String> {
    if file_type.is_file() {
        return None;
    }
    Some(if file_type.is_symlink() {
        let target = std::fs::read_link(path).map(|t| names::shown(t.as_os_str())).unwrap_or_else(|_| "?".to_owned());
        format!("a symbolic link (to `{target}`), not a header file: links are never followed")
    } else if file_type.is_dir() {
        "a folder, not a header file".to_owned()
    } else {
        "not a regular file (a named pipe, socket or device)".to_owned()
    })
}

/// Every entry of `dir` with its kind, read lazily (a backlog is never held in memory).
/// An entry that vanishes while it is looked at is left out.
pub fn entries(dir: &Path) -> Result<impl Iterator<Item = Entry> + Send + use<>, SpoolError> {
    let listing = std::fs::read_dir(dir).map_err(io("cannot list the spool folder", dir))?;
    Ok(listing.filter_map(|e| {
        let e = e.ok()?;
        let path = e.path();
        let kind = classify(&e.file_name(), e.file_type().ok()?, &path);
        Some(Entry { path, kind })
    }))
}

/// The entry at `path` with its kind (its own type: a link is not followed), or `None`
/// when it is gone.
pub fn entry_at(path: &Path) -> Option<Entry> {
    let file_type = std::fs::symlink_metadata(path).ok()?.file_type();
    let kind = classify(path.file_name()?, file_type, path);
    Some(Entry { path: path.to_owned(), kind })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt as _;

    #[test]
    fn every_kind_of_entry() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.txt"), "x").unwrap();
        std::fs::write(d.join("a.wav"), "x").unwrap();
        std::fs::write(d.join(".b.txt.tmp"), "x").unwrap();
        std::fs::write(d.join("notes.doc"), "x").unwrap();
        std::fs::create_dir(d.join("x.txt")).unwrap();
        std::fs::create_dir(d.join("work")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("link.txt")).unwrap();
        std::fs::write(d.join(OsStr::from_bytes(b"caf\xe9.txt")), "x").unwrap();
        std::fs::write(d.join("tab\there.txt"), "x").unwrap();
        let mut got: Vec<(String, EntryKind)> =
            entries(d).unwrap().map(|e| (names::escaped(e.path.file_name().unwrap()), e.kind)).collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let stray = |reason: &str| EntryKind::Stray { reason: reason.to_owned() };
        assert_eq!(
            got,
            vec![
                (".b.txt.tmp".to_owned(), EntryKind::InProgress),
                ("a.txt".to_owned(), EntryKind::Header),
                ("a.wav".to_owned(), EntryKind::SideFile),
                ("caf\\xe9.txt".to_owned(), stray("the file name is not UTF-8 (its bytes: `caf\\xe9.txt`)")),
                ("link.txt".to_owned(), stray("a symbolic link (to `/etc/passwd`), not a header file: links are never followed")),
                ("notes.doc".to_owned(), EntryKind::Other),
                ("tab\\x09here.txt".to_owned(), stray("the file name has control characters (its bytes: `tab\\x09here.txt`)")),
                ("work".to_owned(), EntryKind::Own),
                ("x.txt".to_owned(), stray("a folder, not a header file")),
            ]
        );
    }
}
