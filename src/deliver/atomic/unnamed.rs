//! Linux only: a message file created without a name (`O_TMPFILE`) in a folder kept open,
//! and named (`linkat` through `/proc/self/fd`) only once its bytes are synced.
//!
//! Why by hand (two system calls through `libc`, which std does not offer on a folder
//! handle): compared with a named temporary file, a message costs no temporary name (no
//! `getpid`, no `unlink` afterwards), no path lookup from the root, and a crash mid-write
//! leaves nothing behind to clean. `strace -c` of `callnote render` on 2,000 missed calls
//! (10,000-person directory, output on tmpfs), with the shared folder sync of
//! [`super::OpenFolder`]: 15 → 10 system calls and 2 → 1 `fsync` per message (README,
//! Performance). Any failure here (a file system without `O_TMPFILE`, no `/proc`) is
//! returned to the caller, which then takes the named temporary file.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};

/// A new regular file without a name in the folder `dir`, open for writing (mode 0666 less
/// the umask, as a named file gets).
pub(super) fn create(dir: &File) -> io::Result<File> {
    const MODE: libc::c_uint = 0o666;
    // SAFETY: `dir` is an open descriptor and the path a NUL-terminated literal; the
    // descriptor returned is owned by nobody else.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c".".as_ptr(), libc::O_TMPFILE | libc::O_WRONLY | libc::O_CLOEXEC, MODE) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is handed over to the `File` alone.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Gives `file` (made by [`create`]) the name `name` in the folder `dir`. Fails with
/// [`io::ErrorKind::AlreadyExists`] when the name is taken: never replaces a file.
pub(super) fn link(file: &File, dir: &File, name: &str) -> io::Result<()> {
    let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    let to = CString::new(name)?;
    // SAFETY: both descriptors are open and both paths NUL-terminated strings that outlive
    // the call.
    let rc = unsafe { libc::linkat(libc::AT_FDCWD, from.as_ptr(), dir.as_raw_fd(), to.as_ptr(), libc::AT_SYMLINK_FOLLOW) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
