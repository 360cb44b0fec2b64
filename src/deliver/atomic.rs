//! Writes a file so that nobody ever sees half of it: the bytes go to a temporary file in a
//! staging folder on the same volume, are flushed to disk, and the file is renamed into
//! place in one step.
//!
//! Consumes a folder, a file name and bytes; produces the final path or
//! [`DeliveryError::Io`]. If the write fails or its future is dropped half-way (the relay
//! shut down, a timeout), the temporary file is removed and nothing appears under the final
//! name. A process killed mid-write leaves only a `.tmp` file in the staging folder, which
//! [`remove_stale`] clears at the next start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::io::AsyncWriteExt as _;

use super::DeliveryError;

/// Suffix of temporary files; neither Exchange nor IIS pick up anything but their final name.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

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

/// Writes `bytes` to `dir/name` through a temporary file in `staging` (same volume as
/// `dir`, so the rename is atomic). An existing `dir/name` is replaced.
pub(crate) async fn write_atomic(staging: &Path, dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, DeliveryError> {
    let target = dir.join(name);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = staging.join(format!(".{name}.{}.{n}{TEMP_SUFFIX}", std::process::id()));
    let io_err = |source| DeliveryError::Io { path: target.clone(), source };

    // Created synchronously (a create is quick): through tokio the create runs on a blocking
    // thread that outlives a dropped future, so it could make the file after the guard had
    // already removed it, leaving a .tmp behind. Once the file exists, a dropped future only
    // leaves writes to an unlinked file.
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temp).map_err(io_err)?;
    let mut guard = TempGuard(Some(temp.clone()));
    let mut file = tokio::fs::File::from_std(file);
    file.write_all(bytes).await.map_err(io_err)?;
    file.flush().await.map_err(io_err)?;
    file.sync_all().await.map_err(io_err)?;
    drop(file);
    tokio::fs::rename(&temp, &target).await.map_err(io_err)?;
    guard.0 = None;
    sync_dir(dir).await;
    Ok(target)
}

/// Makes the rename itself durable (Unix; Windows has no directory handles to sync).
async fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = tokio::fs::File::open(dir).await {
        let _ = d.sync_all().await;
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
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() >= age)
        })
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

    #[tokio::test]
    async fn writes_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_atomic(dir.path(), dir.path(), "a.eml", b"first").await.unwrap();
        assert_eq!(p, dir.path().join("a.eml"));
        write_atomic(dir.path(), dir.path(), "a.eml", b"second").await.unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        assert_eq!(names(dir.path()), vec!["a.eml"]);
    }

    #[tokio::test]
    async fn failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        let err = write_atomic(dir.path(), &missing, "a.eml", b"x").await.unwrap_err();
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
