//! Watching the template and drop folders by polling: every 250 ms the names, sizes and
//! modification times of their files are compared with the last look; a difference reloads
//! the templates (or relists the drop folder) and tells open pages. Polling works on every
//! file system and editor (atomic saves by rename included) and costs a few `stat` calls.
//!
//! Consumes folder paths; produces calls to [`Preview::reload_templates`] and
//! [`Preview::rescan_drop_folder`]. Never reads file contents and never follows a folder
//! deeper than 8 levels. No errors: an unreadable folder is a fingerprint like any other.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::Preview;

const INTERVAL: Duration = Duration::from_millis(250);

/// What a folder looks like: every file with its size and modification time, sorted.
pub(super) type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// Polls the folders until the task is aborted, starting from `seen` (taken when serving
/// starts, so no change after that is missed). Each look (a walk of the folders, and a
/// reload when something changed) runs on the blocking pool.
pub(super) async fn poll(preview: Arc<Preview>, mut seen: Seen) {
    let mut ticker = tokio::time::interval(INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let preview = preview.clone();
        // After a panic in a reload (a bug): start afresh next time.
        seen = tokio::task::spawn_blocking(move || seen.look(&preview)).await.unwrap_or_default();
    }
}

/// The folders as last seen.
#[derive(Default)]
pub(super) struct Seen {
    templates: Option<Fingerprint>,
    drop: Option<Fingerprint>,
}

impl Seen {
    pub(super) fn now(preview: &Preview) -> Seen {
        let settings = preview.settings();
        Seen {
            templates: settings.templates_dir.as_deref().map(|d| fingerprint(d, 8)),
            drop: settings.drop_dir.as_deref().map(|d| fingerprint(d, 0)),
        }
    }

    /// Looks again; reloads the templates or relists the drop folder when they changed.
    fn look(self, preview: &Preview) -> Seen {
        let now = Seen::now(preview);
        if now.templates.is_some() && now.templates != self.templates {
            preview.reload_templates();
        }
        if now.drop.is_some() && now.drop != self.drop {
            preview.rescan_drop_folder();
        }
        now
    }
}

/// The files under `dir`, `depth` folder levels deep.
pub(super) fn fingerprint(dir: &Path, depth: usize) -> Fingerprint {
    let mut out = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), 0)];
    while let Some((folder, level)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                if level < depth {
                    pending.push((entry.path(), level + 1));
                }
            } else {
                out.push((entry.path(), meta.len(), meta.modified().ok()));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_sees_new_and_changed_files_at_the_right_depth() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("missed_call/en")).unwrap();
        let file = dir.path().join("missed_call/en/subject.txt");
        std::fs::write(&file, "a").unwrap();
        let before = fingerprint(dir.path(), 8);
        assert_eq!(before.len(), 1);
        assert_eq!(before[0].0, file);
        assert_eq!(fingerprint(dir.path(), 0), vec![], "depth 0 does not enter folders");
        std::fs::write(&file, "ab").unwrap();
        let after = fingerprint(dir.path(), 8);
        assert_eq!(after[0].1, 2);
        assert_ne!(before, after);
    }
}
