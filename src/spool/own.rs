//! The `own` spool layout: the relay owns the folder and moves items through it.
//!
//! ```text
//! <dir>/NAME.txt                 dropped here (side file NAME.wav / .tif beside it, first)
//! <dir>/work/<id>/NAME.txt       claimed by one atomic rename; the side file follows
//! <dir>/archive/<id>/            accepted by the server (or removed, by config)
//! <dir>/failed/NAME.txt          parked, with NAME.txt.error.txt holding the reason
//! <dir>/failed/<id>/NAME.txt     parked when NAME is parked already
//! ```
//!
//! `<id>` is `<unique>_<NAME>`, shortened with a hash to fit the file system
//! ([`names::bounded`]): unique per claim, so a name reused by the producer never collides
//! with an item still in `work/`. A parked name too long for its `.error.txt` is shortened
//! the same way, the original recorded in the report. Every move is a rename followed by
//! `fsync` of the folders involved ([`super::durable`]), the new place first; the folders
//! all items share (the spool folder, `work/`, `archive/`) are kept open and their `fsync`s
//! group-committed, so items claimed or finished together share one, and none of them is
//! flushed while an entry moving out of it is not durable in its new place yet. A claim's
//! removal from the spool folder is flushed lazily, before the item leaves `work/`; a
//! header that a power cut leaves in both places is resolved at start-up. What is taken from the folder is
//! decided by [`super::entry`]: headers are the regular `*.txt` and `*.xml` files (not
//! starting with `.`); producers must write elsewhere and rename into the folder, side file
//! first; a stray (a link, a folder named like a header, an unreadable name) is parked as
//! it is, never followed or opened. Never copies or rewrites an item's bytes; returns
//! [`SpoolError`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;

use super::durable::{self, fs};
use super::entry::{Entry, EntryKind, entries};
use super::names::{self, NAME_MAX, is_header_name, is_side_file_name};
use super::settings::AfterSend;
use super::{SpoolError, io};

/// An item that has been claimed: its folder under `work/` and its header's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkItem {
    pub id: String,
    pub dir: PathBuf,
    pub name: String,
    /// The change of the spool folder that took the header out of it, when this process
    /// claimed it: made durable (lazily, one flush for many claims) before the item leaves
    /// `work/`. `None`: every change counted so far is waited for instead.
    pub(crate) root_ticket: Option<u64>,
}

impl WorkItem {
    /// The header file inside the item's folder.
    pub fn header(&self) -> PathBuf {
        self.dir.join(&self.name)
    }
}

/// The folders of an `own` spool.
#[derive(Debug)]
pub struct OwnSpool {
    root: PathBuf,
    work: PathBuf,
    archive: PathBuf,
    failed: PathBuf,
    /// The folders all items share, for group-committed `fsync`s.
    shared: SharedDirs,
    after_send: AfterSend,
    seq: AtomicU64,
}

/// The spool folder, `work/` and `archive/`, kept open.
#[derive(Debug)]
struct SharedDirs {
    root: durable::SharedDir,
    work: durable::SharedDir,
    archive: durable::SharedDir,
}

/// Makes the caller's changes to the entries of `dir` durable (one `fsync` shared with
/// concurrent callers).
fn sync(dir: &durable::SharedDir) -> Result<(), SpoolError> {
    dir.sync().map_err(io("cannot sync", dir.path()))
}

/// What is appended to a parked file's name for its report.
const REPORT_SUFFIX: &str = ".error.txt";

/// The name a file is parked under: itself, or shortened so that its report's name (and
/// the temporary name the report is written under) fits the file system.
pub fn parked_name(name: &str) -> String {
    names::bounded(name, NAME_MAX - REPORT_SUFFIX.len() - durable::TEMP_EXTRA)
}

/// The entries of `dir` the relay acts on: headers, strays and others (see
/// [`super::entry`]), read lazily.
pub fn actionable(dir: &Path) -> Result<impl Iterator<Item = Entry> + Send + use<>, SpoolError> {
    Ok(entries(dir)?.filter(|e| matches!(e.kind, EntryKind::Header | EntryKind::Stray { .. } | EntryKind::Other)))
}

impl OwnSpool {
    /// Opens the spool at `root`, creating `work/`, `archive/` and `failed/` if missing.
    pub fn open(root: &Path, after_send: AfterSend) -> Result<OwnSpool, SpoolError> {
        let [work, archive, failed] = ["work", "archive", "failed"].map(|d| root.join(d));
        for dir in [&work, &archive, &failed] {
            durable::create_dir(dir).map_err(io("cannot create the spool folder", dir))?;
        }
        let shared = |dir: &Path| durable::SharedDir::open(dir).map_err(io("cannot open the spool folder", dir));
        Ok(OwnSpool {
            shared: SharedDirs { root: shared(root)?, work: shared(&work)?, archive: shared(&archive)? },
            root: root.to_owned(),
            work,
            archive,
            failed,
            after_send,
            seq: AtomicU64::new(0),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The headers, strays and other entries in the spool folder, read lazily (a backlog
    /// of any size is never held in memory).
    pub fn incoming(&self) -> Result<impl Iterator<Item = Entry> + Send + use<>, SpoolError> {
        actionable(&self.root)
    }

    /// The items in `work/` (claimed before a crash, or deferred), read lazily. Leftover
    /// empty folders of an interrupted claim or park are removed on the way.
    pub fn in_work(&self) -> Result<impl Iterator<Item = WorkItem> + Send + use<>, SpoolError> {
        let entries = std::fs::read_dir(&self.work).map_err(io("cannot list the work folder", &self.work))?;
        Ok(entries.filter_map(|e| e.ok()).filter_map(|e| {
            let id = e.file_name().into_string().ok()?;
            let dir = e.path();
            let Some(name) = header_in(&dir, &id) else {
                // Not synced: a folder that comes back after a crash is removed again.
                if let Err(err) = durable::remove_tree(&dir) {
                    tracing::warn!(dir = %dir.display(), error = %err, "cannot remove a leftover work folder");
                }
                return None;
            };
            Some(WorkItem { id, dir, name, root_ticket: None })
        }))
    }

    /// Whether the item `id` still has its header in `work/` (journal replay at start-up).
    pub fn holds(&self, id: &str) -> bool {
        header_in(&self.work.join(id), id).is_some()
    }

    /// The item `id` in `work/`, if its header is still there.
    pub fn work_item(&self, id: &str) -> Option<WorkItem> {
        let dir = self.work.join(id);
        let name = header_in(&dir, id)?;
        Some(WorkItem { id: id.to_owned(), dir, name, root_ticket: None })
    }

    /// A new item id for the header `name`: unique, and short enough for a folder name.
    fn new_id(&self, name: &str) -> String {
        let unique =
            format!("{:x}{:x}{:x}", jiff::Timestamp::now().as_microsecond(), std::process::id(), self.seq.fetch_add(1, Ordering::Relaxed));
        names::bounded(&format!("{unique}_{name}"), NAME_MAX)
    }

    /// Claims a header by renaming it into a new folder under `work/`. `None` when the file
    /// is gone (taken by another relay, or removed by the producer).
    ///
    /// Durable on return: the header in its item's folder, and that folder in `work/`. The
    /// header's removal from the spool folder is made durable later, one flush for many
    /// claims, before the item leaves `work/` ([`settle_claim`](Self::settle_claim)); a
    /// power cut before that flush leaves the header in both folders, which start-up
    /// resolves ([`resolve_double_claims`](Self::resolve_double_claims)).
    pub fn claim(&self, header: &Path) -> Result<Option<WorkItem>, SpoolError> {
        let Some(name) = header.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            return Ok(None);
        };
        let id = self.new_id(&name);
        let dir = self.work.join(&id);
        let moving = self.shared.root.moving_out();
        fs::create_dir(&dir).map_err(io("cannot create the work folder", &dir))?;
        let mut item = WorkItem { id, dir, name, root_ticket: None };
        match fs::rename(header, &item.header()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _ = fs::remove_dir(&item.dir);
                return Ok(None);
            }
            Err(e) => {
                let _ = fs::remove_dir(&item.dir);
                return Err(io("cannot claim", header)(e));
            }
        }
        durable::sync_dir(&item.dir).map_err(io("cannot sync", &item.dir))?;
        sync(&self.shared.work)?;
        drop(moving);
        item.root_ticket = Some(self.shared.root.changed());
        Ok(Some(item))
    }

    /// Moves the side file `name` from the spool folder into the item's folder; false when
    /// there is no such regular file there, or `name` is not a side file's name (a header,
    /// a path, a hidden file): a header can never carry off another header.
    pub fn adopt_side_file(&self, item: &WorkItem, name: &str) -> Result<bool, SpoolError> {
        let from = self.root.join(name);
        let regular = std::fs::symlink_metadata(&from).is_ok_and(|m| m.is_file());
        if !is_side_file_name(name) || !regular {
            return Ok(false);
        }
        let moving = self.shared.root.moving_out();
        fs::rename(&from, &item.dir.join(name)).map_err(io("cannot claim the side file", &from))?;
        durable::sync_dir(&item.dir).map_err(io("cannot sync", &item.dir))?;
        drop(moving);
        sync(&self.shared.root)?;
        Ok(true)
    }

    /// Waits until the claim of `item` has left the spool folder durably (usually a flush
    /// for a later claim has covered it already): before the item leaves `work/`, so that
    /// no power cut can bring its header back once it is finished.
    fn settle_claim(&self, item: &WorkItem) -> Result<(), SpoolError> {
        let root = &self.shared.root;
        root.wait(item.root_ticket.unwrap_or_else(|| root.counted())).map_err(io("cannot sync", root.path()))
    }

    /// At start-up, before any claim: a file of the spool folder that is also in an item's
    /// folder under `work/` (the same file, two names: a power cut came after the claim
    /// reached the disk and before the spool folder's flush) was claimed already; its name
    /// in the spool folder is removed. Returns how many were.
    pub fn resolve_double_claims(&self) -> Result<usize, SpoolError> {
        use std::os::unix::fs::MetadataExt;
        let listing = |dir: &Path| std::fs::read_dir(dir).map_err(io("cannot list", dir));
        let mut removed = 0;
        for item in listing(&self.work)?.filter_map(Result::ok) {
            let Ok(files) = std::fs::read_dir(item.path()) else { continue };
            for file in files.filter_map(Result::ok) {
                let Ok(claimed) = file.metadata() else { continue };
                let there = self.root.join(file.file_name());
                let same = |m: std::fs::Metadata| m.is_file() && m.dev() == claimed.dev() && m.ino() == claimed.ino();
                if claimed.is_file() && claimed.nlink() > 1 && std::fs::symlink_metadata(&there).is_ok_and(same) {
                    fs::remove_file(&there).map_err(io("cannot remove", &there))?;
                    tracing::info!(file = %there.display(), item = %item.path().display(), "claimed before a power cut; its name in the spool folder is removed");
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            sync(&self.shared.root)?;
        }
        Ok(removed)
    }

    /// The server accepted the item (or it was skipped): archive or remove it. An archived
    /// folder's modification time is set to `at`, the time [`prune_archive`](Self::prune_archive)
    /// counts its age from.
    pub fn finish(&self, item: &WorkItem, at: Timestamp) -> Result<(), SpoolError> {
        self.settle_claim(item)?;
        match self.after_send {
            AfterSend::Archive => {
                let to = self.archive.join(&item.id);
                let moving = self.shared.work.moving_out();
                if std::fs::symlink_metadata(&to).is_ok() {
                    // Archived already, and back in work/ too: a power cut came before
                    // work/'s flush. The archived copy stands.
                    durable::remove_tree(&item.dir).map_err(io("cannot remove", &item.dir))?;
                } else {
                    fs::rename(&item.dir, &to).map_err(io("cannot archive", &item.dir))?;
                }
                sync(&self.shared.archive)?;
                drop(moving);
                sync(&self.shared.work)?;
                if let Err(e) = std::fs::File::open(&to).and_then(|dir| dir.set_modified(at.into())) {
                    tracing::warn!(dir = %to.display(), error = %e, "cannot stamp the archive time; its age counts from its claim");
                }
                Ok(())
            }
            AfterSend::Remove => {
                durable::remove_tree(&item.dir).map_err(io("cannot remove", &item.dir))?;
                sync(&self.shared.work)
            }
        }
    }

    /// Deletes what `archive/` holds that was archived before `before` (by its modification
    /// time, see [`finish`](Self::finish)); returns how many items went.
    pub fn prune_archive(&self, before: Timestamp) -> Result<usize, SpoolError> {
        let entries = std::fs::read_dir(&self.archive).map_err(io("cannot list the archive folder", &self.archive))?;
        let mut removed = 0;
        for entry in entries.filter_map(Result::ok) {
            let Ok(meta) = entry.metadata() else { continue };
            let old = meta.modified().is_ok_and(|m| Timestamp::try_from(m).is_ok_and(|m| m < before));
            if !old {
                continue;
            }
            let path = entry.path();
            let gone = if meta.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
            gone.map_err(io("cannot delete the archived item", &path))?;
            removed += 1;
        }
        if removed > 0 {
            durable::sync_dir(&self.archive).map_err(io("cannot sync", &self.archive))?;
            tracing::info!(dir = %self.archive.display(), removed, "archived items deleted ([spool] archive_keep)");
        }
        Ok(removed)
    }

    /// Parks an item in `failed/`: writes the report with `report`, then moves the side
    /// files and the header beside it. If a file of the same name is parked already, the
    /// item goes into `failed/<id>/` instead; a header name too long for its report is
    /// shortened ([`parked_name`]) and the original named in the report. Returns where the
    /// header now is.
    pub fn park(&self, item: &WorkItem, report: &str) -> Result<PathBuf, SpoolError> {
        self.settle_claim(item)?;
        let files: Vec<String> = std::fs::read_dir(&item.dir)
            .map_err(io("cannot list", &item.dir))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.') && *n != item.name)
            .collect();
        let header_as = parked_name(&item.name);
        let mut report = report.to_owned();
        if header_as != item.name {
            report += &format!("original name: {}\n", item.name);
        }
        // (A park interrupted by a crash is redone: the files it had moved are no longer in
        // the work folder, and its report is simply written again.)
        let mut moves: Vec<(&str, &str)> = files.iter().map(|n| (n.as_str(), n.as_str())).collect();
        moves.push((&item.name, &header_as));
        let target = self.park_target(moves.iter().map(|(_, to)| *to), &item.id)?;
        let report_path = target.join(format!("{header_as}{REPORT_SUFFIX}"));
        durable::write_file(&report_path, report.as_bytes()).map_err(io("cannot write", &report_path))?;
        for (from, to) in moves {
            let from = item.dir.join(from);
            if from.exists() || from.is_symlink() {
                fs::rename(&from, &target.join(to)).map_err(io("cannot park", &from))?;
            }
        }
        durable::sync_dir(&target).map_err(io("cannot sync", &target))?;
        durable::remove_tree(&item.dir).map_err(io("cannot remove", &item.dir))?;
        sync(&self.shared.work)?;
        Ok(target.join(header_as))
    }

    /// Parks a stray entry of the spool folder as it is (a link is moved, never followed;
    /// a folder is moved whole) under `failed/` with its report; a name that is not
    /// printable is parked under a safe one ([`names::safe`]) and its bytes are recorded.
    /// Returns where the entry now is, or `None` when it was gone already.
    pub fn park_stray(&self, entry: &Entry, report: &str) -> Result<Option<PathBuf>, SpoolError> {
        let name = parked_name(&entry.display_name());
        let target = self.park_target(std::iter::once(name.as_str()), &self.new_id(&name))?;
        let report_path = target.join(format!("{name}{REPORT_SUFFIX}"));
        durable::write_file(&report_path, report.as_bytes()).map_err(io("cannot write", &report_path))?;
        let moving = self.shared.root.moving_out();
        let moved = fs::rename(&entry.path, &target.join(&name)).and_then(|()| durable::sync_dir(&target));
        drop(moving);
        match moved {
            Ok(()) => {
                sync(&self.shared.root)?;
                Ok(Some(target.join(name)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _ = fs::remove_file(&report_path);
                Ok(None)
            }
            Err(e) => Err(io("cannot park", &entry.path)(e)),
        }
    }

    /// `failed/` when none of `names` (nor their reports) is parked there already, else a
    /// new `failed/<id>/`.
    fn park_target<'a>(&self, mut names: impl Iterator<Item = &'a str>, id: &str) -> Result<PathBuf, SpoolError> {
        let taken = |n: &str| {
            let (file, report) = (self.failed.join(n), self.failed.join(format!("{n}{REPORT_SUFFIX}")));
            file.exists() || file.is_symlink() || report.exists()
        };
        if names.all(|n| !taken(n)) {
            return Ok(self.failed.clone());
        }
        let dir = self.failed.join(id);
        durable::create_dir(&dir).map_err(io("cannot create", &dir))?;
        Ok(dir)
    }
}

/// The header of the item folder `dir` (id `id`): `<NAME>` from `<unique>_<NAME>` when that
/// file is there, else the one header-named regular file in it (a shortened id).
fn header_in(dir: &Path, id: &str) -> Option<String> {
    let regular = |name: &str| std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.is_file());
    if let Some((_, name)) = id.split_once('_')
        && regular(name)
    {
        return Some(name.to_owned());
    }
    let mut headers =
        std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| is_header_name(n) && regular(n));
    let first = headers.next()?;
    headers.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn claim_adopt_finish_and_park() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let spool = OwnSpool::open(root, AfterSend::Archive).unwrap();
        std::fs::write(root.join("a.txt"), "A").unwrap();
        std::fs::write(root.join("a.wav"), "W").unwrap();
        std::fs::write(root.join("b.txt"), "B").unwrap();
        let mut incoming: Vec<_> = spool.incoming().unwrap().map(|p| p.path.file_name().unwrap().to_owned()).collect();
        incoming.sort();
        assert_eq!(incoming, ["a.txt", "b.txt"]);

        let a = spool.claim(&root.join("a.txt")).unwrap().unwrap();
        assert!(a.id.ends_with("_a.txt") && a.name == "a.txt");
        assert!(spool.adopt_side_file(&a, "a.wav").unwrap());
        assert!(!spool.adopt_side_file(&a, "missing.wav").unwrap());
        assert_eq!(names(&a.dir), ["a.txt", "a.wav"]);
        assert_eq!(spool.claim(&root.join("a.txt")).unwrap(), None, "already claimed");
        let b = spool.claim(&root.join("b.txt")).unwrap().unwrap();
        let mut work: Vec<_> = spool.in_work().unwrap().map(|w| w.name).collect();
        work.sort();
        assert_eq!(work, ["a.txt", "b.txt"]);

        spool.finish(&a, Timestamp::now()).unwrap();
        assert_eq!(names(&root.join("archive").join(&a.id)), ["a.txt", "a.wav"]);
        let parked = spool.park(&b, "reason: bad\n").unwrap();
        assert_eq!(parked, root.join("failed/b.txt"));
        assert_eq!(std::fs::read_to_string(root.join("failed/b.txt.error.txt")).unwrap(), "reason: bad\n");
        assert_eq!(names(&root.join("work")), Vec::<String>::new());
        assert_eq!(names(root), ["archive", "failed", "work"]);

        // The same name parked again goes into its own folder.
        std::fs::write(root.join("b.txt"), "B2").unwrap();
        let b2 = spool.claim(&root.join("b.txt")).unwrap().unwrap();
        let parked = spool.park(&b2, "again\n").unwrap();
        assert_eq!(parked, root.join("failed").join(&b2.id).join("b.txt"));
        assert_eq!(std::fs::read_to_string(root.join("failed").join(&b2.id).join("b.txt.error.txt")).unwrap(), "again\n");
    }

    #[test]
    fn archived_items_are_deleted_once_older_than_the_cutoff() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let spool = OwnSpool::open(root, AfterSend::Archive).unwrap();
        let t = |s: i64| Timestamp::from_second(1_800_000_000 + s).unwrap();
        let mut ids = Vec::new();
        for (n, at) in [t(0), t(100), t(200)].into_iter().enumerate() {
            std::fs::write(root.join(format!("{n}.txt")), "x").unwrap();
            let item = spool.claim(&root.join(format!("{n}.txt"))).unwrap().unwrap();
            spool.finish(&item, at).unwrap();
            ids.push(item.id);
        }
        assert_eq!(spool.prune_archive(t(0)).unwrap(), 0, "none archived before the cutoff");
        assert_eq!(spool.prune_archive(t(150)).unwrap(), 2);
        assert_eq!(names(&root.join("archive")), [ids[2].clone()]);
    }

    #[test]
    fn leftover_empty_work_folders_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let spool = OwnSpool::open(dir.path(), AfterSend::Remove).unwrap();
        std::fs::create_dir(dir.path().join("work/1a_x.txt")).unwrap();
        assert_eq!(spool.in_work().unwrap().count(), 0);
        assert_eq!(names(&dir.path().join("work")), Vec::<String>::new());
    }
}
