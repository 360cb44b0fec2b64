//! The `own` spool layout: the relay owns the folder and moves items through it.
//!
//! ```text
//! <dir>/NAME.txt                 dropped here (side file NAME.wav / .tif beside it, first)
//! <dir>/work/<id>/NAME.txt       claimed by one atomic rename; the side file follows
//! <dir>/archive/<id>/            accepted by the server (or removed, by config)
//! <dir>/failed/NAME.txt          parked, with NAME.txt.error.txt holding the reason
//! ```
//!
//! `<id>` is `<unique>_<NAME>`: unique per claim, so a name reused by the producer never
//! collides with an item still in `work/`. Every move is a rename followed by `fsync` of the
//! folders involved ([`super::durable`]). Headers are the `*.txt` and `*.xml` files (not
//! starting with `.`); producers must write elsewhere and rename into the folder, side file
//! first. Never copies or rewrites an item's bytes; returns [`SpoolError`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::SpoolError;
use super::durable;
use super::settings::AfterSend;

/// An item that has been claimed: its folder under `work/` and its header's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkItem {
    pub id: String,
    pub dir: PathBuf,
    pub name: String,
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
    after_send: AfterSend,
    seq: AtomicU64,
}

/// Whether a file name in the spool folder is a header the relay should take.
pub fn is_header_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.starts_with('.') && (lower.ends_with(".txt") || lower.ends_with(".xml"))
}

/// The header files in `dir` (see [`is_header_name`]), read lazily.
pub fn headers_in(dir: &Path) -> Result<impl Iterator<Item = PathBuf> + Send + use<>, SpoolError> {
    let entries = std::fs::read_dir(dir).map_err(io("cannot list the spool folder", dir))?;
    Ok(entries.filter_map(|e| e.ok()).filter_map(|e| {
        let name = e.file_name().into_string().ok()?;
        (is_header_name(&name) && e.file_type().ok()?.is_file()).then(|| e.path())
    }))
}

pub(crate) fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

impl OwnSpool {
    /// Opens the spool at `root`, creating `work/`, `archive/` and `failed/` if missing.
    pub fn open(root: &Path, after_send: AfterSend) -> Result<OwnSpool, SpoolError> {
        let spool = OwnSpool {
            root: root.to_owned(),
            work: root.join("work"),
            archive: root.join("archive"),
            failed: root.join("failed"),
            after_send,
            seq: AtomicU64::new(0),
        };
        for dir in [&spool.work, &spool.archive, &spool.failed] {
            durable::create_dir(dir).map_err(io("cannot create the spool folder", dir))?;
        }
        Ok(spool)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The headers waiting in the spool folder, read lazily (a backlog of any size is never
    /// held in memory).
    pub fn incoming(&self) -> Result<impl Iterator<Item = PathBuf> + Send + use<>, SpoolError> {
        headers_in(&self.root)
    }

    /// The items in `work/` (claimed before a crash, or deferred), read lazily. Leftover
    /// empty folders of an interrupted claim or park are removed on the way.
    pub fn in_work(&self) -> Result<impl Iterator<Item = WorkItem> + Send + use<>, SpoolError> {
        let entries = std::fs::read_dir(&self.work).map_err(io("cannot list the work folder", &self.work))?;
        Ok(entries.filter_map(|e| e.ok()).filter_map(|e| {
            let id = e.file_name().into_string().ok()?;
            let name = id.split_once('_')?.1.to_owned();
            let dir = e.path();
            if !dir.join(&name).is_file() {
                if let Err(err) = durable::remove_dir(&dir) {
                    tracing::warn!(dir = %dir.display(), error = %err, "cannot remove a leftover work folder");
                }
                return None;
            }
            Some(WorkItem { id, dir, name })
        }))
    }

    /// Claims a header by renaming it into a new folder under `work/`. `None` when the file
    /// is gone (taken by another relay, or removed by the producer).
    pub fn claim(&self, header: &Path) -> Result<Option<WorkItem>, SpoolError> {
        let Some(name) = header.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            return Ok(None);
        };
        let unique = format!(
            "{:x}{:x}{:x}",
            jiff::Timestamp::now().as_microsecond(),
            std::process::id(),
            self.seq.fetch_add(1, Ordering::Relaxed)
        );
        let id = format!("{unique}_{name}");
        let dir = self.work.join(&id);
        std::fs::create_dir(&dir).map_err(io("cannot create the work folder", &dir))?;
        let item = WorkItem { id, dir, name };
        match std::fs::rename(header, item.header()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _ = std::fs::remove_dir(&item.dir);
                return Ok(None);
            }
            Err(e) => {
                let _ = std::fs::remove_dir(&item.dir);
                return Err(io("cannot claim", header)(e));
            }
        }
        let sync = |dir: &Path| durable::sync_dir(dir).map_err(io("cannot sync", dir));
        sync(&item.dir)?;
        sync(&self.work)?;
        sync(&self.root)?;
        Ok(Some(item))
    }

    /// Moves the side file `name` from the spool folder into the item's folder; false when
    /// it is not in the spool folder.
    pub fn adopt_side_file(&self, item: &WorkItem, name: &str) -> Result<bool, SpoolError> {
        let from = self.root.join(name);
        if name.contains(['/', '\\']) || !from.is_file() {
            return Ok(false);
        }
        durable::rename(&from, &item.dir.join(name)).map_err(io("cannot claim the side file", &from))?;
        Ok(true)
    }

    /// The server accepted the item (or it was skipped): archive or remove it.
    pub fn finish(&self, item: &WorkItem) -> Result<(), SpoolError> {
        match self.after_send {
            AfterSend::Archive => {
                let to = self.archive.join(&item.id);
                durable::rename(&item.dir, &to).map_err(io("cannot archive", &item.dir))
            }
            AfterSend::Remove => durable::remove_dir(&item.dir).map_err(io("cannot remove", &item.dir)),
        }
    }

    /// Parks an item in `failed/`: writes `<NAME>.error.txt` with `report`, then moves the
    /// side files and the header beside it. If a file of the same name is parked already,
    /// the item goes into `failed/<id>/` instead. Returns where the header now is.
    pub fn park(&self, item: &WorkItem, report: &str) -> Result<PathBuf, SpoolError> {
        let files: Vec<String> = std::fs::read_dir(&item.dir)
            .map_err(io("cannot list", &item.dir))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        // (A park interrupted by a crash is redone: the files it had moved are no longer in
        // the work folder, and its report is simply written again.)
        let flat_is_free = files.iter().all(|n| !self.failed.join(n).exists());
        let target = if flat_is_free {
            self.failed.clone()
        } else {
            let dir = self.failed.join(&item.id);
            durable::create_dir(&dir).map_err(io("cannot create", &dir))?;
            dir
        };
        let report_path = target.join(format!("{}.error.txt", item.name));
        durable::write_file(&report_path, report.as_bytes()).map_err(io("cannot write", &report_path))?;
        for name in files
            .iter()
            .filter(|n| **n != item.name)
            .chain(std::iter::once(&item.name))
        {
            let from = item.dir.join(name);
            std::fs::rename(&from, target.join(name)).map_err(io("cannot park", &from))?;
        }
        durable::sync_dir(&target).map_err(io("cannot sync", &target))?;
        durable::remove_dir(&item.dir).map_err(io("cannot remove", &item.dir))?;
        Ok(target.join(&item.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn header_names() {
        assert!(is_header_name("0b1c.txt") && is_header_name("N.XML") && is_header_name("a.TXT"));
        assert!(!is_header_name("a.wav") && !is_header_name(".a.txt.tmp") && !is_header_name(".hidden.txt"));
    }

    #[test]
    fn claim_adopt_finish_and_park() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let spool = OwnSpool::open(root, AfterSend::Archive).unwrap();
        std::fs::write(root.join("a.txt"), "A").unwrap();
        std::fs::write(root.join("a.wav"), "W").unwrap();
        std::fs::write(root.join("b.txt"), "B").unwrap();
        let mut incoming: Vec<_> = spool
            .incoming()
            .unwrap()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect();
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

        spool.finish(&a).unwrap();
        assert_eq!(names(&root.join("archive").join(&a.id)), ["a.txt", "a.wav"]);
        let parked = spool.park(&b, "reason: bad\n").unwrap();
        assert_eq!(parked, root.join("failed/b.txt"));
        assert_eq!(
            std::fs::read_to_string(root.join("failed/b.txt.error.txt")).unwrap(),
            "reason: bad\n"
        );
        assert_eq!(names(&root.join("work")), Vec::<String>::new());
        assert_eq!(names(root), ["archive", "failed", "work"]);

        // The same name parked again goes into its own folder.
        std::fs::write(root.join("b.txt"), "B2").unwrap();
        let b2 = spool.claim(&root.join("b.txt")).unwrap().unwrap();
        let parked = spool.park(&b2, "again\n").unwrap();
        assert_eq!(parked, root.join("failed").join(&b2.id).join("b.txt"));
        assert_eq!(
            std::fs::read_to_string(root.join("failed").join(&b2.id).join("b.txt.error.txt")).unwrap(),
            "again\n"
        );
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
