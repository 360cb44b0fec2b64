//! Opening a spool file once, and reading it through that handle only.
//!
//! Consumes a path; produces an open [`File`] that was not reached through a symbolic link in
//! its last component (`O_NOFOLLOW`) and whose opening could not block (`O_NONBLOCK`: a FIFO
//! would otherwise wait forever for a writer). The caller then checks the *handle* (fstat:
//! a regular file, one link) and reads from it, so swapping the path for a link to another
//! file after the check changes nothing. Reads are positional ([`ReadAt`]): handles shared
//! between clones of an event never move each other's offset. Never follows a link, never
//! reads through a path twice. Errors are plain `std::io::Error`s; [`is_not_a_file`] tells a
//! refused link or device from trouble reading. [`fill`] reads a block whole (short only at
//! the end of the input), for every block-by-block reader of a side file.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// Opens `path` for reading without following a link in its last component and without
/// blocking. The handle still has to be checked ([`Metadata::is_file`] on `file.metadata()`).
pub(crate) fn open(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    no_follow(&mut options);
    options.open(path)
}

#[cfg(unix)]
fn no_follow(options: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt as _;
    options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
}

#[cfg(windows)]
fn no_follow(options: &mut OpenOptions) {
    use std::os::windows::fs::OpenOptionsExt as _;
    // Opens a link (reparse point) itself, which the handle check then refuses.
    const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
    options.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
}

#[cfg(not(any(unix, windows)))]
fn no_follow(_: &mut OpenOptions) {}

/// True when `open` failed because the path is a link (`ELOOP` with `O_NOFOLLOW`; `EMLINK`
/// on the BSDs) or a socket or device without a reader (`ENXIO`): not a file to read.
pub(crate) fn is_not_a_file(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(e.raw_os_error(), Some(libc::ELOOP | libc::EMLINK | libc::ENXIO))
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// How many names the opened file has (hard links); 1 where the platform does not tell.
pub(crate) fn links(meta: &Metadata) -> u64 {
    #[cfg(unix)]
    {
        std::os::unix::fs::MetadataExt::nlink(meta)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        1
    }
}

fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        std::os::windows::fs::FileExt::seek_read(file, buf, offset)
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = offset;
        (&*file).read(buf)
    }
}

/// Reads until `buf` is full or the input ends; the number of bytes read.
pub fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads a handle from the start by position; what [`crate::event::SideHandle::file`] is
/// read through.
pub struct ReadAt<'f> {
    file: &'f File,
    offset: u64,
}

impl<'f> ReadAt<'f> {
    pub fn new(file: &'f File) -> ReadAt<'f> {
        ReadAt { file, offset: 0 }
    }
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = read_at(self.file, buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn links_fifos_and_folders_are_refused_or_seen_for_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.wav");
        std::fs::write(&real, b"RIFF").unwrap();
        let link = dir.path().join("link.wav");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = open(&link).unwrap_err();
        assert!(is_not_a_file(&err), "{err}");

        let file = open(&real).unwrap();
        let meta = file.metadata().unwrap();
        assert!(meta.is_file());
        assert_eq!(links(&meta), 1);
        std::fs::hard_link(&real, dir.path().join("second-name.wav")).unwrap();
        assert_eq!(links(&open(&real).unwrap().metadata().unwrap()), 2);

        // a FIFO opens at once (no writer needed) and shows as not a regular file
        let fifo = dir.path().join("fifo.wav");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert!(!open(&fifo).unwrap().metadata().unwrap().is_file());
        assert!(!open(dir.path()).unwrap().metadata().unwrap().is_file());
        assert_eq!(open(&dir.path().join("none")).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn positional_reads_do_not_share_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        std::fs::write(&path, b"0123456789").unwrap();
        let file = open(&path).unwrap();
        let mut first = ReadAt::new(&file);
        let mut head = [0u8; 4];
        first.read_exact(&mut head).unwrap();
        let mut all = Vec::new();
        ReadAt::new(&file).read_to_end(&mut all).unwrap();
        assert_eq!((&head, all.as_slice()), (b"0123", &b"0123456789"[..]));
        let mut rest = Vec::new();
        first.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"456789");
    }
}
