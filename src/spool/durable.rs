//! File-system steps that are durable when they return: a rename, a new folder, a written
//! file, each followed by `fsync` of the file and of the folders whose entries changed, so
//! that a crash (or power loss) right after never undoes them.
//!
//! Consumes paths, produces `io::Result`; the callers wrap errors in [`super::SpoolError`]
//! with the path. Never copies a file where a rename would do, never leaves a half-written
//! file under its final name.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// `fsync` of a folder, making its entries (creates, renames, deletes) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Renames `from` to `to` and syncs both folders.
pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)?;
    sync_dir(parent(to))?;
    if parent(from) != parent(to) {
        sync_dir(parent(from))?;
    }
    Ok(())
}

/// Creates a folder (and missing parents) and syncs its parent.
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    sync_dir(parent(dir))
}

/// How much longer than its final name the temporary name of [`write_file`] is (`.NAME.tmp`).
pub(crate) const TEMP_EXTRA: usize = ".".len() + ".tmp".len();

/// Writes `bytes` to a temporary name beside `path`, syncs it, renames it over `path` and
/// syncs the folder.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = parent(path).join(format!(".{name}.tmp"));
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    sync_dir(parent(path))
}

/// Removes a folder and everything in it, then syncs its parent. A missing folder is fine.
pub(crate) fn remove_dir(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => sync_dir(parent(dir)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_rename_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        write_file(&a, b"one").unwrap();
        write_file(&a, b"two").unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"two");
        let sub = dir.path().join("x/y");
        create_dir(&sub).unwrap();
        rename(&a, &sub.join("a.txt")).unwrap();
        assert!(!a.exists());
        assert_eq!(std::fs::read(sub.join("a.txt")).unwrap(), b"two");
        remove_dir(&dir.path().join("x")).unwrap();
        remove_dir(&dir.path().join("x")).unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
