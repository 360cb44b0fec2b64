//! File-system steps that are durable when they return: a rename, a new folder, a written
//! file, each followed by `fsync` of the file and of the folders whose entries changed, so
//! that a crash (or power loss) right after never undoes them.
//!
//! Consumes paths, produces `io::Result`; the callers wrap errors in [`super::SpoolError`]
//! with the path. Never copies a file where a rename would do, never leaves a half-written
//! file under its final name.
//!
//! Group commit ([`Group`], [`SharedDir`]): concurrent callers that each need their own
//! change on disk share one `fsync` instead of queueing for one each. A caller makes its
//! change, then waits for the first `fsync` that *starts* after that; whoever finds none
//! running runs it for everyone waiting. Each caller still returns only once its own change
//! is durable, so the order of every item's steps is unchanged.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Group commit over one `fsync`-able thing (a file, a folder): counts changes, and makes
/// every change counted before an `fsync` started durable when it ends.
#[derive(Debug, Default)]
pub(crate) struct Group {
    /// Changes counted so far (each caller's ticket).
    changed: AtomicU64,
    /// The tickets an ended `fsync` covers (all up to this one); held while one runs.
    synced: Mutex<u64>,
}

impl Group {
    /// Counts a change that has been made (call it after making the change); returns its
    /// ticket for [`wait`](Self::wait).
    pub(crate) fn changed(&self) -> u64 {
        self.changed.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Returns once the change with `ticket` is durable: at once if an `fsync` that started
    /// after it has ended, else after running `sync` (which then covers every change
    /// counted before it started).
    pub(crate) fn wait(&self, ticket: u64, sync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        if *synced >= ticket {
            return Ok(());
        }
        let upto = self.changed.load(Ordering::SeqCst);
        sync()?;
        *synced = upto;
        Ok(())
    }
}

/// A folder many items change at once (the spool folder, `work/`, `archive/`): kept open,
/// its entries made durable by group commit.
#[derive(Debug)]
pub(crate) struct SharedDir {
    path: PathBuf,
    handle: File,
    group: Group,
}

impl SharedDir {
    pub(crate) fn open(path: &Path) -> io::Result<SharedDir> {
        Ok(SharedDir { path: path.to_owned(), handle: File::open(path)?, group: Group::default() })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every change the caller has made to the folder's entries durable (sharing the
    /// `fsync` with concurrent callers).
    pub(crate) fn sync(&self) -> io::Result<()> {
        let ticket = self.group.changed();
        self.group.wait(ticket, || self.handle.sync_all())
    }
}

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
    write_from(path, &mut &*bytes)
}

/// Like [`write_file`], the content read from `content` (a copy).
pub(crate) fn write_from(path: &Path, content: &mut dyn io::Read) -> io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = parent(path).join(format!(".{name}.tmp"));
    let mut file = File::create(&tmp)?;
    io::copy(content, &mut file)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    sync_dir(parent(path))
}

/// Removes a folder and everything in it, then syncs its parent. A missing folder is fine.
pub(crate) fn remove_dir(dir: &Path) -> io::Result<()> {
    if remove_tree(dir)? { sync_dir(parent(dir)) } else { Ok(()) }
}

/// Removes a folder and everything in it without syncing its parent (the caller does);
/// false when it was missing.
pub(crate) fn remove_tree(dir: &Path) -> io::Result<bool> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
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

    #[test]
    fn one_sync_covers_every_change_counted_before_it_started() {
        let group = Group::default();
        let (a, b) = (group.changed(), group.changed());
        let mut syncs = 0;
        group
            .wait(a, || {
                syncs += 1;
                Ok(())
            })
            .unwrap();
        group
            .wait(b, || {
                syncs += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(syncs, 1, "b was counted before the sync for a started");
        let c = group.changed();
        group
            .wait(c, || {
                syncs += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(syncs, 2, "c came after it");
        let d = group.changed();
        assert!(group.wait(d, || Err(io::Error::other("disk gone"))).is_err());
        group
            .wait(d, || {
                syncs += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(syncs, 3, "a failed sync covers nothing");
    }

    #[test]
    fn concurrent_callers_share_syncs_of_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let shared = SharedDir::open(dir.path()).unwrap();
        std::thread::scope(|scope| {
            for t in 0..8 {
                let shared = &shared;
                scope.spawn(move || {
                    for n in 0..10 {
                        std::fs::write(shared.path().join(format!("{t}-{n}")), "x").unwrap();
                        shared.sync().unwrap();
                    }
                });
            }
        });
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 80);
    }
}
