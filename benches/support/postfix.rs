//! A private Postfix instance for the relay benchmark's comparison, run by
//! `scripts/bench-postfix.sh`: its own configuration and queue in a folder on the disk under
//! test, smtpd on a free loopback port, relaying everything to the benchmark's sink. Stopped
//! when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running Postfix instance.
pub struct Postfix {
    dir: PathBuf,
    script: PathBuf,
    /// Where its smtpd listens.
    pub addr: SocketAddr,
    _tmp: tempfile::TempDir,
}

/// Why Postfix cannot be run here, if it cannot.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("Postfix needs root to start (it drops to its own user); run the bench as root".into());
    }
    if !Path::new("/usr/sbin/postfix").exists() {
        return Some("Postfix is not installed: bash scripts/bench-postfix.sh install".into());
    }
    None
}

impl Postfix {
    /// Starts an instance under a new folder in `base` (or the temp folder) relaying to `sink`.
    pub fn start(root: &Path, base: Option<&str>, sink: SocketAddr) -> Postfix {
        let tmp = match base {
            Some(dir) => tempfile::tempdir_in(dir),
            None => tempfile::tempdir(),
        }
        .expect("a temp folder for Postfix");
        // Postfix's own user works in its queue below this folder.
        std::fs::set_permissions(tmp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("open the temp folder to Postfix");
        let dir = tmp.path().join("postfix");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let script = root.join("scripts/bench-postfix.sh");
        let status = Command::new("bash")
            .arg(&script)
            .args(["start".as_ref(), dir.as_os_str(), sink.port().to_string().as_ref(), port.to_string().as_ref()])
            .status()
            .expect("run scripts/bench-postfix.sh");
        assert!(status.success(), "Postfix did not start (see {}/maillog)", dir.display());
        Postfix { dir, script, addr: SocketAddr::from(([127, 0, 0, 1], port)), _tmp: tmp }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(&self.script).arg("stop").arg(&self.dir).status();
    }
}
