//! File-system steps that are durable when they return: a rename, a new folder, a written
//! file, each followed by `fsync` of the file and of the folders whose entries changed, so
//! that a crash (or power loss) right after never undoes them.
//!
//! Consumes paths, produces `io::Result`; the callers wrap errors in [`super::SpoolError`]
//! with the path. Never copies a file where a rename would do, never leaves a half-written
//! file under its final name.
//!
//! Every change the spool and its journal make to the file system, and every flush, goes
//! through [`fs`] (the plain steps this module builds on, also used directly where a caller
//! orders its own flushes). In a test, [`fs`] can record each step in the order it happened
//! (`record`), from which the power-cut test (`relay/power_cut.rs`) rebuilds what a cut at
//! any point could leave on disk; in a build without tests it is only the call.
//!
//! Group commit ([`Group`], [`SharedDir`]): concurrent callers that each need their own
//! change on disk share one `fsync` instead of queueing for one each. A caller makes its
//! change, then waits for the first `fsync` that *starts* after that; whoever finds none
//! running runs it for everyone waiting. Each caller still returns only once its own change
//! is durable, so the order of every item's steps is unchanged. An entry moved out of a
//! shared folder holds that folder's `fsync`s off ([`SharedDir::moving_out`]) until its new
//! place is durable: a flush run for another item must never make the removal durable
//! before the arrival (on a file system that keeps the two folders apart, the entry would
//! be in neither).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

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
    /// Held (shared) by whoever moves an entry out of this folder, until the entry's new
    /// place is durable; an `fsync` of this folder takes it exclusively.
    moving_out: RwLock<()>,
}

impl SharedDir {
    pub(crate) fn open(path: &Path) -> io::Result<SharedDir> {
        Ok(SharedDir { path: path.to_owned(), handle: File::open(path)?, group: Group::default(), moving_out: RwLock::new(()) })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every change the caller has made to the folder's entries durable (sharing the
    /// `fsync` with concurrent callers).
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.wait(self.changed())
    }

    /// Counts a change the caller has made to the folder's entries, to be made durable
    /// later with [`wait`](Self::wait).
    pub(crate) fn changed(&self) -> u64 {
        self.group.changed()
    }

    /// The changes counted so far (waiting for it covers every one of them).
    pub(crate) fn counted(&self) -> u64 {
        self.group.changed.load(Ordering::SeqCst)
    }

    /// Returns once the change with `ticket` is durable (often at once: an `fsync` run for
    /// someone else covered it).
    pub(crate) fn wait(&self, ticket: u64) -> io::Result<()> {
        self.group.wait(ticket, || {
            let _no_move_half_done = self.moving_out.write().unwrap_or_else(|e| e.into_inner());
            fs::sync_dir_handle(&self.handle, &self.path)
        })
    }

    /// Holds this folder's `fsync`s off while the caller moves an entry out of it and makes
    /// the entry's new place durable.
    pub(crate) fn moving_out(&self) -> RwLockReadGuard<'_, ()> {
        self.moving_out.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// `fsync` of a folder, making its entries (creates, renames, deletes) durable.
pub(crate) use fs::sync_dir;

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Renames `from` to `to` and syncs both folders (the new place first).
pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    sync_dir(parent(to))?;
    if parent(from) != parent(to) {
        sync_dir(parent(from))?;
    }
    Ok(())
}

/// Creates a folder (and missing parents) and syncs its parent.
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
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
    let mut file = fs::create_file(&tmp)?;
    fs::copy_into(content, &mut file, &tmp)?;
    fs::sync_file(&file, &tmp)?;
    drop(file);
    fs::rename(&tmp, path)?;
    sync_dir(parent(path))
}

/// Removes a folder and everything in it, then syncs its parent. A missing folder is fine.
pub(crate) fn remove_dir(dir: &Path) -> io::Result<()> {
    if remove_tree(dir)? { sync_dir(parent(dir)) } else { Ok(()) }
}

/// Removes a folder and everything in it without syncing its parent (the caller does);
/// false when it was missing.
pub(crate) fn remove_tree(dir: &Path) -> io::Result<bool> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The plain file-system steps of the spool, one function per kind of change or flush;
/// nothing here syncs on its own. Each runs through [`step`], which a test can record.
pub(crate) mod fs {
    use std::fs::{File, OpenOptions};
    use std::io::{self, Write};
    use std::path::Path;

    /// One change or flush, named with the paths it touches (read by the recording only).
    #[derive(Debug, Clone, Copy)]
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) enum Step<'a> {
        CreateDir(&'a Path),
        CreateDirAll(&'a Path),
        /// A file opened for writing, created if missing (its content as it was).
        CreateFile(&'a Path),
        /// Bytes written to a file (its content is taken at its next flush).
        Write(&'a Path),
        Rename(&'a Path, &'a Path),
        HardLink(&'a Path, &'a Path),
        RemoveFile(&'a Path),
        RemoveDir(&'a Path),
        RemoveTree(&'a Path),
        /// `fsync` / `fdatasync` of a file: its content as of now is durable.
        SyncFile(&'a Path),
        /// `fsync` of a folder: its entries as of now are durable.
        SyncDir(&'a Path),
    }

    /// Runs `run`, the step `step`: recorded too while a test records under its paths.
    fn step<T>(step: Step<'_>, run: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        #[cfg(test)]
        if let Some(recording) = super::record::covering(&step) {
            return recording.run(step, run);
        }
        #[cfg(not(test))]
        let _ = step;
        run()
    }

    pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
        step(Step::CreateDir(dir), || std::fs::create_dir(dir))
    }

    pub(crate) fn create_dir_all(dir: &Path) -> io::Result<()> {
        step(Step::CreateDirAll(dir), || std::fs::create_dir_all(dir))
    }

    /// Creates (or truncates) a file to write.
    pub(crate) fn create_file(path: &Path) -> io::Result<File> {
        step(Step::CreateFile(path), || File::create(path))
    }

    /// Opens a file to write, created if missing, its content kept (`append` or not).
    pub(crate) fn open_or_create(path: &Path, append: bool) -> io::Result<File> {
        step(Step::CreateFile(path), || OpenOptions::new().create(true).truncate(false).write(true).append(append).open(path))
    }

    pub(crate) fn write_all(file: &mut File, path: &Path, bytes: &[u8]) -> io::Result<()> {
        step(Step::Write(path), || file.write_all(bytes))
    }

    pub(crate) fn copy_into(content: &mut dyn io::Read, file: &mut File, path: &Path) -> io::Result<u64> {
        step(Step::Write(path), || io::copy(content, file))
    }

    /// Cuts a file to `len` bytes.
    pub(crate) fn set_len(file: &File, path: &Path, len: u64) -> io::Result<()> {
        step(Step::Write(path), || file.set_len(len))
    }

    pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
        step(Step::Rename(from, to), || std::fs::rename(from, to))
    }

    pub(crate) fn hard_link(from: &Path, to: &Path) -> io::Result<()> {
        step(Step::HardLink(from, to), || std::fs::hard_link(from, to))
    }

    pub(crate) fn remove_file(path: &Path) -> io::Result<()> {
        step(Step::RemoveFile(path), || std::fs::remove_file(path))
    }

    /// Removes an empty folder.
    pub(crate) fn remove_dir(dir: &Path) -> io::Result<()> {
        step(Step::RemoveDir(dir), || std::fs::remove_dir(dir))
    }

    pub(crate) fn remove_dir_all(dir: &Path) -> io::Result<()> {
        step(Step::RemoveTree(dir), || std::fs::remove_dir_all(dir))
    }

    /// `fsync` of the file open as `file` at `path`.
    pub(crate) fn sync_file(file: &File, path: &Path) -> io::Result<()> {
        step(Step::SyncFile(path), || file.sync_all())
    }

    /// `fdatasync` of the file open as `file` at `path`.
    pub(crate) fn sync_data(file: &File, path: &Path) -> io::Result<()> {
        step(Step::SyncFile(path), || file.sync_data())
    }

    pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
        step(Step::SyncDir(dir), || File::open(dir)?.sync_all())
    }

    /// `fsync` of the folder at `dir`, kept open as `handle`.
    pub(crate) fn sync_dir_handle(handle: &File, dir: &Path) -> io::Result<()> {
        step(Step::SyncDir(dir), || handle.sync_all())
    }
}

/// The recording of [`fs`] steps for the power-cut test: while a [`Recording`] is started
/// for a folder, every step touching a path under it runs under one lock and is appended,
/// with what a flush made durable (a file's bytes), so that the log's order is the order
/// the steps took effect.
#[cfg(test)]
pub(crate) mod record {
    use std::io;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};

    use super::fs::Step;

    /// A recorded step, owning its paths; a flush of a file carries its bytes as of then.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) enum Recorded {
        CreateDir(PathBuf),
        CreateDirAll(PathBuf),
        CreateFile(PathBuf),
        Rename(PathBuf, PathBuf),
        HardLink(PathBuf, PathBuf),
        RemoveFile(PathBuf),
        RemoveDir(PathBuf),
        RemoveTree(PathBuf),
        SyncFile(PathBuf, Vec<u8>),
        SyncDir(PathBuf),
        /// Something the test itself notes in the order (a server's `250`).
        Mark(String),
    }

    /// The steps recorded under `root`, in order.
    #[derive(Debug)]
    pub(crate) struct Recording {
        root: PathBuf,
        log: Mutex<Vec<Recorded>>,
    }

    static ACTIVE: Mutex<Option<Arc<Recording>>> = Mutex::new(None);

    impl Recording {
        /// Starts recording the steps under `root` (one recording at a time).
        pub(crate) fn start(root: &Path) -> Arc<Recording> {
            let recording = Arc::new(Recording { root: root.to_owned(), log: Mutex::default() });
            let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
            assert!(active.is_none(), "one recording at a time");
            *active = Some(recording.clone());
            recording
        }

        /// Stops recording; returns the steps.
        pub(crate) fn stop(&self) -> Vec<Recorded> {
            ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).take();
            self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }

        /// Notes `what` at this point of the order.
        pub(crate) fn mark(&self, what: String) {
            self.log.lock().unwrap_or_else(|e| e.into_inner()).push(Recorded::Mark(what));
        }

        pub(super) fn run<T>(&self, step: Step<'_>, run: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
            let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            let out = run()?;
            let owned = |p: &Path| p.to_owned();
            let recorded = match step {
                Step::CreateDir(p) => Recorded::CreateDir(owned(p)),
                Step::CreateDirAll(p) => Recorded::CreateDirAll(owned(p)),
                Step::CreateFile(p) => Recorded::CreateFile(owned(p)),
                Step::Write(_) => return Ok(out),
                Step::Rename(a, b) => Recorded::Rename(owned(a), owned(b)),
                Step::HardLink(a, b) => Recorded::HardLink(owned(a), owned(b)),
                Step::RemoveFile(p) => Recorded::RemoveFile(owned(p)),
                Step::RemoveDir(p) => Recorded::RemoveDir(owned(p)),
                Step::RemoveTree(p) => Recorded::RemoveTree(owned(p)),
                Step::SyncFile(p) => Recorded::SyncFile(owned(p), std::fs::read(p)?),
                Step::SyncDir(p) => Recorded::SyncDir(owned(p)),
            };
            log.push(recorded);
            Ok(out)
        }
    }

    /// The recording whose folder `step` touches, if one is under way.
    pub(super) fn covering(step: &Step<'_>) -> Option<Arc<Recording>> {
        let active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        let recording = active.as_ref()?;
        let paths: [Option<&Path>; 2] = match *step {
            Step::Rename(a, b) | Step::HardLink(a, b) => [Some(a), Some(b)],
            Step::CreateDir(p)
            | Step::CreateDirAll(p)
            | Step::CreateFile(p)
            | Step::Write(p)
            | Step::RemoveFile(p)
            | Step::RemoveDir(p)
            | Step::RemoveTree(p)
            | Step::SyncFile(p)
            | Step::SyncDir(p) => [Some(p), None],
        };
        paths.into_iter().flatten().any(|p| p.starts_with(&recording.root)).then(|| recording.clone())
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
