//! Writes a message file so that nobody ever sees half of it, and never over another
//! message: the bytes go to a temporary file in a staging folder on the same volume, are
//! flushed to disk, and the file is published under its final name in one step.
//!
//! Consumes a folder, a file stem and the message's bytes; produces the final path or
//! [`DeliveryError::Io`]. The final name is `<stem>.eml`. When that name is taken:
//! - by the same message (the same `Message-ID`: a resend of this notification), the file
//!   is replaced;
//! - by a different message (two notifications whose names collide), the next free name
//!   of `<stem>~2.eml` … `<stem>~99.eml` is used (again replacing only its own message);
//!   when all are taken by other messages the write fails and nothing is overwritten.
//!
//! Publishing links the finished temporary file to the final name, which fails instead of
//! replacing when the name exists, so two writers can never overwrite each other. On a file
//! system without hard links (FAT, some shares) it falls back to a rename after checking
//! that the name is free, which cannot see a writer that takes the name in between.
//!
//! If the write fails or its future is dropped half-way (the relay shut down, a timeout),
//! the temporary file is removed and nothing appears under a final name. A process killed
//! mid-write leaves only a `.tmp` file in the staging folder, which [`remove_stale`] clears
//! at the next start.
//!
//! A run of writes without a runtime (`render --out`) goes through an [`OpenFolder`]: the
//! folder is opened once and each message is created there without a name (Linux
//! `O_TMPFILE`, see [`unnamed`]; elsewhere a named temporary file as above), synced, and
//! linked under its final name relative to the open folder. The folder's own sync, which
//! makes those names durable, is done once for the run ([`OpenFolder::sync`]) instead of
//! once per message. The relay's writes ([`write_message`]) still sync the folder for
//! every message: it records a delivery as done right after.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::io::AsyncWriteExt as _;

use super::DeliveryError;

#[cfg(target_os = "linux")]
mod unnamed;

/// Suffix of temporary files; neither Exchange nor IIS pick up anything but their final name.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// The extension of published messages.
const EXTENSION: &str = ".eml";

/// How many names (`<stem>.eml`, `<stem>~2.eml`, …) are tried before giving up.
const MAX_NAMES: u32 = 99;

/// How much of an existing file is read to find its `Message-ID` (it is in the header).
const HEAD_LIMIT: u64 = 64 * 1024;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Removes the temporary file unless the write was committed.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // Best effort: a leftover .tmp is invisible to pickup services and removed at the
            // next start.
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A temporary file created in `staging`, removed on drop unless published.
struct Temp {
    file: std::fs::File,
    guard: TempGuard,
    path: PathBuf,
}

/// A temporary file name for `stem`, unique in this process and among processes.
fn temp_name(stem: &str) -> String {
    static PID: OnceLock<u32> = OnceLock::new();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".{stem}{EXTENSION}.{}.{n}{TEMP_SUFFIX}", PID.get_or_init(std::process::id))
}

fn create_temp(staging: &Path, stem: &str) -> std::io::Result<Temp> {
    let path = staging.join(temp_name(stem));
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
    Ok(Temp { file, guard: TempGuard(Some(path.clone())), path })
}

/// Writes `bytes` to `dir/<stem>.eml` (or the next free name, see the module doc) through a
/// temporary file in `staging` (same volume as `dir`).
pub(crate) async fn write_message(staging: &Path, dir: &Path, stem: &str, bytes: &[u8]) -> Result<PathBuf, DeliveryError> {
    let io_err = |source| DeliveryError::Io { path: dir.join(format!("{stem}{EXTENSION}")), source };
    // Created synchronously (a create is quick): through tokio the create runs on a blocking
    // thread that outlives a dropped future, so it could make the file after the guard had
    // already removed it, leaving a .tmp behind. Once the file exists, a dropped future only
    // leaves writes to an unlinked file.
    let Temp { file, mut guard, path } = create_temp(staging, stem).map_err(io_err)?;
    let mut file = tokio::fs::File::from_std(file);
    file.write_all(bytes).await.map_err(io_err)?;
    file.flush().await.map_err(io_err)?;
    file.sync_all().await.map_err(io_err)?;
    drop(file);
    // Published synchronously too (a link or rename, and at a clash reading one header): a
    // dropped future must not leave a publish running that makes the file appear later.
    let target = publish(&path, dir, stem, bytes).map_err(io_err)?;
    guard.0 = None;
    let dir = dir.to_owned();
    let _ = tokio::task::spawn_blocking(move || sync_dir(&dir)).await;
    Ok(target)
}

/// A folder open for a run of blocking writes (`render --out`; see the module doc). Each
/// [`Self::write`] is whole or absent under its final name and synced before it has that
/// name; the names become durable at [`Self::sync`], which the run calls before it ends.
#[derive(Debug)]
pub(crate) struct OpenFolder {
    path: PathBuf,
    handle: std::fs::File,
    /// Cleared when this folder's file system cannot make unnamed files (then named
    /// temporary files are used for the rest of the run).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    unnamed: AtomicBool,
}

impl OpenFolder {
    /// Opens the folder `path` (which must exist).
    pub(crate) fn open(path: &Path) -> std::io::Result<OpenFolder> {
        let handle = std::fs::File::open(path)?;
        if !handle.metadata()?.is_dir() {
            return Err(std::io::Error::new(std::io::ErrorKind::NotADirectory, format!("{} is not a folder", path.display())));
        }
        Ok(OpenFolder { path: path.to_owned(), handle, unnamed: AtomicBool::new(cfg!(target_os = "linux")) })
    }

    /// Writes `bytes` to `<stem>.eml` in the folder (or the next free name, see the module
    /// doc); returns its path. Not durable until [`Self::sync`].
    pub(crate) fn write(&self, stem: &str, bytes: &[u8]) -> Result<PathBuf, DeliveryError> {
        let io_err = |source| DeliveryError::Io { path: self.path.join(format!("{stem}{EXTENSION}")), source };
        #[cfg(target_os = "linux")]
        if self.unnamed.load(Ordering::Relaxed) {
            match unnamed::create(&self.handle) {
                Ok(file) => match self.write_unnamed(file, stem, bytes).map_err(io_err)? {
                    Some(target) => return Ok(target),
                    // Unnamed files cannot be named here (no /proc): named temporary files
                    // from now on, this message first.
                    None => self.unnamed.store(false, Ordering::Relaxed),
                },
                // No unnamed files on this file system: named temporary files from now on.
                Err(_) => self.unnamed.store(false, Ordering::Relaxed),
            }
        }
        let Temp { mut file, mut guard, path } = create_temp(&self.path, stem).map_err(io_err)?;
        file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io_err)?;
        drop(file);
        let target = publish(&path, &self.path, stem, bytes).map_err(io_err)?;
        guard.0 = None;
        Ok(target)
    }

    /// Writes and syncs the unnamed `file`, then names it `<stem>.eml`; when that name is
    /// taken, names it as a temporary file and lets [`publish`] choose (its own message is
    /// replaced, another one never). `None` when it cannot be given a name at all (the
    /// file is dropped unseen; the caller writes the message again under a temporary name).
    #[cfg(target_os = "linux")]
    fn write_unnamed(&self, mut file: std::fs::File, stem: &str, bytes: &[u8]) -> std::io::Result<Option<PathBuf>> {
        file.write_all(bytes)?;
        file.sync_all()?;
        let name = format!("{stem}{EXTENSION}");
        match unnamed::link(&file, &self.handle, &name) {
            Ok(()) => return Ok(Some(self.path.join(name))),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(_) => return Ok(None),
        }
        let hidden = temp_name(stem);
        unnamed::link(&file, &self.handle, &hidden)?;
        let temp = self.path.join(hidden);
        let mut guard = TempGuard(Some(temp.clone()));
        let target = publish(&temp, &self.path, stem, bytes)?;
        guard.0 = None;
        Ok(Some(target))
    }

    /// Makes every name written so far durable (one folder sync; Unix: Windows has no folder
    /// handles to sync).
    pub(crate) fn sync(&self) -> std::io::Result<()> {
        #[cfg(unix)]
        return self.handle.sync_all();
        #[cfg(not(unix))]
        Ok(())
    }
}

/// Gives the finished `temp` its final name in `dir`: the first of `<stem>.eml`,
/// `<stem>~2.eml`, … that is free or holds this same message. Consumes `temp`.
fn publish(temp: &Path, dir: &Path, stem: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let ours = message_id(bytes);
    for n in 1..=MAX_NAMES {
        let target = dir.join(if n == 1 { format!("{stem}{EXTENSION}") } else { format!("{stem}~{n}{EXTENSION}") });
        if place(temp, &target, ours.as_deref())? {
            return Ok(target);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!("{stem}{EXTENSION} and {stem}~2{EXTENSION} … ~{MAX_NAMES}{EXTENSION} all hold other messages; nothing was overwritten"),
    ))
}

/// Puts `temp` at `target` unless `target` holds a different message; true when placed.
fn place(temp: &Path, target: &Path, ours: Option<&[u8]>) -> std::io::Result<bool> {
    // A few tries: the file found at `target` may vanish (a pickup service took it) between
    // the failed link and reading it.
    for _ in 0..3 {
        match std::fs::hard_link(temp, target) {
            Ok(()) => {
                // Best effort: a leftover is a hidden .tmp, cleared at the next start.
                let _ = std::fs::remove_file(temp);
                return Ok(true);
            }
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists && !target.exists() => {
                // No hard links here: rename into the free name.
                std::fs::rename(temp, target)?;
                return Ok(true);
            }
            Err(_) => {}
        }
        match message_id_of_file(target) {
            Ok(theirs) => {
                let same = ours.is_some() && theirs.as_deref() == ours;
                if same {
                    // A resend of this very notification: it replaces its own file.
                    std::fs::rename(temp, target)?;
                }
                return Ok(same);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            // Unreadable: not known to be ours, so not overwritten.
            Err(_) => return Ok(false),
        }
    }
    Ok(false)
}

/// The `Message-ID` of the message file at `path` (read from its first 64 KiB).
fn message_id_of_file(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    std::fs::File::open(path)?.take(HEAD_LIMIT).read_to_end(&mut head)?;
    Ok(message_id(&head))
}

/// The value of the `Message-ID` header in a message's header section (unfolded, trimmed),
/// if there is one.
fn message_id(message: &[u8]) -> Option<Vec<u8>> {
    let mut lines = message.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    while let Some(line) = lines.next() {
        if line.is_empty() {
            return None;
        }
        let Some(value) = line.get(..11).filter(|name| name.eq_ignore_ascii_case(b"message-id:")).map(|_| &line[11..]) else {
            continue;
        };
        let mut id = value.trim_ascii().to_vec();
        for more in lines.take_while(|l| l.first().is_some_and(|b| *b == b' ' || *b == b'\t')) {
            id.extend_from_slice(more.trim_ascii());
        }
        return Some(id);
    }
    None
}

/// Makes the publish itself durable (Unix; Windows has no directory handles to sync).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Checks at start-up that `dir` takes new files (creates and removes a probe file).
pub(crate) fn probe_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".callnote-probe.{}{TEMP_SUFFIX}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

/// Removes temporary files older than `age` from `staging` (left by a killed process).
/// Returns how many were removed.
pub(crate) fn remove_stale(staging: &Path, age: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(staging) else { return 0 };
    let now = SystemTime::now();
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(TEMP_SUFFIX))
        .filter(|e| e.metadata().and_then(|m| m.modified()).is_ok_and(|t| now.duration_since(t).unwrap_or_default() >= age))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    fn mail(id: &str, body: &str) -> Vec<u8> {
        format!("From: a@b.c\r\nMessage-ID: {id}\r\nSubject: x\r\n\r\n{body}\r\n").into_bytes()
    }

    #[tokio::test]
    async fn writes_and_a_resend_replaces_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_message(dir.path(), dir.path(), "a", &mail("<1@x>", "first")).await.unwrap();
        assert_eq!(p, dir.path().join("a.eml"));
        let again = write_message(dir.path(), dir.path(), "a", &mail("<1@x>", "second")).await.unwrap();
        assert_eq!(again, p);
        assert_eq!(std::fs::read(&p).unwrap(), mail("<1@x>", "second"));
        assert_eq!(names(dir.path()), vec!["a.eml"]);
    }

    #[tokio::test]
    async fn a_different_message_under_the_same_name_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        write_message(dir.path(), dir.path(), "a", &mail("<1@x>", "one")).await.unwrap();
        let second = write_message(dir.path(), dir.path(), "a", &mail("<2@x>", "two")).await.unwrap();
        assert_eq!(second, dir.path().join("a~2.eml"));
        // A file without a Message-ID (not ours to judge) is kept too.
        std::fs::write(dir.path().join("a~3.eml"), b"not a message").unwrap();
        let third = OpenFolder::open(dir.path()).unwrap().write("a", &mail("<3@x>", "three")).unwrap();
        assert_eq!(third, dir.path().join("a~4.eml"));
        // The resend of the second finds its own file, past the first.
        let resent = write_message(dir.path(), dir.path(), "a", &mail("<2@x>", "two again")).await.unwrap();
        assert_eq!(resent, second);
        assert_eq!(std::fs::read(dir.path().join("a.eml")).unwrap(), mail("<1@x>", "one"));
        assert_eq!(std::fs::read(&second).unwrap(), mail("<2@x>", "two again"));
        assert_eq!(std::fs::read(dir.path().join("a~3.eml")).unwrap(), b"not a message");
        assert_eq!(names(dir.path()), vec!["a.eml", "a~2.eml", "a~3.eml", "a~4.eml"]);
    }

    /// The folder `dir` opened, writing through unnamed files (Linux) or named temporary ones.
    fn open(dir: &Path, unnamed: bool) -> OpenFolder {
        let folder = OpenFolder::open(dir).unwrap();
        folder.unnamed.store(unnamed && cfg!(target_os = "linux"), Ordering::Relaxed);
        folder
    }

    #[test]
    fn an_open_folder_writes_replaces_its_own_and_never_overwrites_another() {
        for unnamed in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let folder = open(dir.path(), unnamed);
            let first = folder.write("a", &mail("<1@x>", "one")).unwrap();
            assert_eq!(first, dir.path().join("a.eml"));
            assert_eq!(folder.write("a", &mail("<1@x>", "one again")).unwrap(), first, "a resend takes its own name");
            assert_eq!(folder.write("a", &mail("<2@x>", "two")).unwrap(), dir.path().join("a~2.eml"));
            folder.sync().unwrap();
            assert_eq!(std::fs::read(&first).unwrap(), mail("<1@x>", "one again"));
            assert_eq!(std::fs::read(dir.path().join("a~2.eml")).unwrap(), mail("<2@x>", "two"));
            assert_eq!(names(dir.path()), vec!["a.eml", "a~2.eml"], "no temporary file left (unnamed: {unnamed})");
        }
    }

    #[test]
    fn an_open_folder_must_be_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        assert_eq!(OpenFolder::open(&file).unwrap_err().kind(), std::io::ErrorKind::NotADirectory);
        assert_eq!(OpenFolder::open(&dir.path().join("none")).unwrap_err().kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn when_every_name_is_taken_the_write_fails_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let folder = open(dir.path(), true);
        for n in 1..=MAX_NAMES {
            folder.write("a", &mail(&format!("<{n}@x>"), "x")).unwrap();
        }
        let before = names(dir.path());
        assert_eq!(before.len(), MAX_NAMES as usize);
        let err = folder.write("a", &mail("<new@x>", "x")).unwrap_err();
        assert_eq!(
            std::error::Error::source(&err).map(ToString::to_string).as_deref(),
            Some("a.eml and a~2.eml … ~99.eml all hold other messages; nothing was overwritten"),
            "{err}"
        );
        assert_eq!(names(dir.path()), before, "nothing overwritten, no temp left");
    }

    #[test]
    fn message_ids_are_read_from_the_header_only() {
        assert_eq!(message_id(b"Subject: x\r\nmessage-id:  <a@b>\r\n\r\n"), Some(b"<a@b>".to_vec()));
        assert_eq!(message_id(b"Message-ID:\r\n <a@b>\r\nX: y\r\n\r\n"), Some(b"<a@b>".to_vec()), "folded");
        assert_eq!(message_id(b"Subject: x\n\nMessage-ID: <in-body@b>\n"), None);
        assert_eq!(message_id(b"vvvvvvvvvvvvvvvvvvvvvvvv"), None);
    }

    #[tokio::test]
    async fn failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        let err = write_message(dir.path(), &missing, "a", b"x").await.unwrap_err();
        assert!(matches!(&err, DeliveryError::Io { path, .. } if *path == missing.join("a.eml")), "{err:?}");
        assert!(err.is_transient());
        assert!(names(dir.path()).is_empty(), "temp file removed: {:?}", names(dir.path()));
    }

    #[test]
    fn stale_temp_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".x.eml.1.0.tmp"), b"half").unwrap();
        std::fs::write(dir.path().join("keep.eml"), b"whole").unwrap();
        assert_eq!(remove_stale(dir.path(), Duration::from_secs(3600)), 0, "young files stay");
        assert_eq!(remove_stale(dir.path(), Duration::ZERO), 1);
        assert_eq!(names(dir.path()), vec!["keep.eml"]);
    }
}
