//! The directory index cache: a directory file's built [`DirectoryIndex`] kept on disk, so
//! that a start-up reads it back instead of parsing and normalising every person again.
//!
//! Consumes a directory file (LDIF or CSV), the dial plan and the attribute map; produces the
//! index and how it was obtained ([`CacheUse`]). The cache is a binary file: a magic and
//! format version, a stamp (callnote version, the source's size, modification time and
//! digest, a digest of the dial plan and attribute map), the payload's digest, and the
//! payload (postcard). It is used only when every part of the stamp matches the file read
//! now, its payload digest checks, and the decoded index is sound (every span, posting and
//! offset in range); anything else (missing, stale, corrupt, foreign-owned or writable by
//! others) is ignored and the index rebuilt from the file, then written anew. Writing is
//! best effort: a temporary file (mode 0600, it holds personal data) renamed into place; a
//! failure is logged and changes nothing else. Errors: only the directory file's own
//! [`DirectoryError`].
//!
//! The digests are XXH3-128 (`twox-hash`), not a cryptographic hash: they only tell a
//! source rewritten with the same size and modification time, and a damaged cache file,
//! from the real thing. The cache is no security boundary: it lives in a folder private to
//! its owner and is refused when anyone else owns it or may write it, and whoever can change
//! the directory file decides what the directory says anyway. XXH3 reads ~8 GB/s here, where
//! SHA-256 (with the CPU's SHA instructions) read 1.2 GB/s: ~60 ms of CPU less on a
//! 100,000-person directory's cold load (70 MB file, 44 MB cache).
//!
//! Both ways the payload streams: it is encoded in blocks that a second thread hashes and
//! writes meanwhile, and decoded straight from the file (hashed as it passes), so a load
//! never holds the file's bytes beside the index.
//!
//! Where: `$CALLNOTE_CACHE_DIR`, else systemd's `$CACHE_DIRECTORY`, else
//! `$XDG_CACHE_HOME/callnote`, else `~/.cache/callnote`; the file is named after the
//! directory file and a digest of its absolute path. No such folder: no cache.

use std::fs::File;
use std::io::{BufRead as _, Read, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use twox_hash::XxHash3_128;

use super::index::{DirectoryIndex, Parts};
use super::{AttributeMap, DirectoryError, MAX_FILE_BYTES};
use crate::phone::DialPlan;

/// The file's first bytes; the last is the format version (4: XXH3-128 digests, 3 was
/// SHA-256).
const MAGIC: &[u8; 16] = b"callnote-index\0\x04";
/// Largest stamp read (it is a few hundred bytes).
const MAX_STAMP: u32 = 64 * 1024;
/// Largest cache read: an index is a few times its export at most.
const MAX_CACHE_BYTES: u64 = 4 * MAX_FILE_BYTES;
/// Longest single string the payload may hold: the decoder's scratch space (zeroed, so kept
/// small). An index with a longer value (a person's values together can reach 16 MiB) is
/// not read back from its cache but rebuilt from the file each time.
const MAX_STRING_BYTES: usize = 1024 * 1024;

/// How the index was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheUse {
    /// Read from the cache at this path.
    Hit(PathBuf),
    /// Built from the file (the cache was missing, or unusable for `reason`); `saved` is
    /// where the new cache was written, if anywhere.
    Built { reason: String, saved: Option<PathBuf> },
}

/// What a cache must match to be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    /// The callnote version that wrote it (the index layout may change between versions).
    version: String,
    source_len: u64,
    /// Nanoseconds since the Unix epoch; 0 when the file system has none.
    source_mtime_ns: u128,
    source_digest: Digest,
    /// Of the dial plan and attribute map the index was built under.
    settings_digest: Digest,
}

/// An XXH3-128 digest (little-endian), of the source, the settings or the payload.
type Digest = [u8; 16];

/// A new XXH3-128 hasher (default seed and secret).
fn hasher() -> XxHash3_128 {
    XxHash3_128::new()
}

/// What `hasher` has taken in so far.
fn finish(hasher: &XxHash3_128) -> Digest {
    hasher.finish_128().to_le_bytes()
}

/// Loads the directory file at `path` under `plan` with the Active Directory attribute map,
/// through the cache in its default folder (see the module doc).
pub fn load_file_cached(path: &Path, plan: &DialPlan) -> Result<(DirectoryIndex, CacheUse), DirectoryError> {
    let cache = default_folder().map(|folder| folder.join(cache_name(path)));
    load_with_cache(path, plan, AttributeMap::default(), cache.as_deref())
}

/// Loads `path` through the cache file `cache` (`None`: no cache).
pub fn load_with_cache(
    path: &Path,
    plan: &DialPlan,
    map: AttributeMap,
    cache: Option<&Path>,
) -> Result<(DirectoryIndex, CacheUse), DirectoryError> {
    // A load's buffers come and go within a second: freed memory goes back at once, or the
    // peak would hold them all (src/allocator.rs).
    let _prompt = crate::allocator::PromptPurge::start();
    let (mut file, meta) = super::open_file(path)?;
    let mut stamp = Stamp {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        source_len: meta.len(),
        source_mtime_ns: meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos()),
        source_digest: [0; 16],
        settings_digest: settings_digest(plan, &map),
    };
    let reason = match cache {
        None => "no cache folder".to_owned(),
        Some(cache) => match read(cache, &mut stamp, &mut file, plan, &map) {
            Ok(index) => return Ok((index, CacheUse::Hit(cache.to_owned()))),
            Err(reason) => reason,
        },
    };
    file.rewind().map_err(|source| DirectoryError::Read { path: path.to_owned(), source })?;
    let mut hashing = Hashing { inner: file, digest: hasher() };
    let index = super::index_reader(path, &mut hashing, plan, map)?;
    stamp.source_digest = finish(&hashing.digest);
    let saved = cache.and_then(|cache| match write(cache, &stamp, &index) {
        Ok(()) => Some(cache.to_owned()),
        Err(e) => {
            tracing::info!("{}: cannot write the directory index cache: {e}", cache.display());
            None
        }
    });
    Ok((index, CacheUse::Built { reason, saved }))
}

/// The cache's index when it matches `stamp` (whose source digest is filled in here, from
/// `source`), else why not.
fn read(cache: &Path, stamp: &mut Stamp, source: &mut File, plan: &DialPlan, map: &AttributeMap) -> Result<DirectoryIndex, String> {
    let mut file = open_own_file(cache)?;
    let mut magic = [0; MAGIC.len()];
    let mut len = [0; 4];
    file.read_exact(&mut magic).and_then(|()| file.read_exact(&mut len)).map_err(|_| "not a callnote index cache of this format")?;
    let len = u32::from_le_bytes(len);
    if magic != *MAGIC || len > MAX_STAMP {
        return Err("not a callnote index cache of this format".into());
    }
    let mut stamp_bytes = vec![0; len as usize];
    let mut payload_digest: Digest = [0; 16];
    file.read_exact(&mut stamp_bytes).and_then(|()| file.read_exact(&mut payload_digest)).map_err(|_| "truncated")?;
    let cached: Stamp = postcard::from_bytes(&stamp_bytes).map_err(|e| format!("unreadable stamp: {e}"))?;
    let same_file = |a: &Stamp, b: &Stamp| {
        (&a.version, a.source_len, a.source_mtime_ns, a.settings_digest) == (&b.version, b.source_len, b.source_mtime_ns, b.settings_digest)
    };
    if !same_file(&cached, stamp) {
        return Err("stale (another version, file size, modification time or dial plan)".into());
    }
    // The directory file is hashed on a second thread while the payload decodes (both scale
    // with the directory; a second core halves the wait).
    let (source_digest, parts) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| file_digest(source));
        let parts = decode_payload(file, &payload_digest);
        (hashing.join(), parts)
    });
    let source_digest = source_digest.map_err(|_| "the hashing thread panicked".to_owned())?;
    stamp.source_digest = source_digest.map_err(|e| format!("cannot hash the directory file: {e}"))?;
    if cached.source_digest != stamp.source_digest {
        return Err("stale (the file's content changed)".into());
    }
    let parts = parts?;
    DirectoryIndex::from_parts(parts, plan.clone(), map.clone()).map_err(|problem| format!("unsound index: {problem}"))
}

/// Decodes the rest of `file` as the payload, hashing every byte read; the parts only when
/// the digest is `expected` and nothing follows them.
fn decode_payload(file: File, expected: &Digest) -> Result<Parts, String> {
    let hashing = Hashing { inner: file.take(MAX_CACHE_BYTES), digest: hasher() };
    let mut input = std::io::BufReader::with_capacity(1 << 16, hashing);
    let mut scratch = vec![0; MAX_STRING_BYTES];
    let decoded = postcard::from_io::<Parts, _>((&mut input, &mut scratch)).map(|(parts, _)| parts);
    let at_end = input.fill_buf().map(|rest| rest.is_empty());
    let digest = finish(&input.into_inner().digest);
    if digest != *expected {
        return Err("corrupt (payload digest does not match)".into());
    }
    match (decoded, at_end) {
        (Ok(parts), Ok(true)) => Ok(parts),
        (Ok(_), _) => Err("corrupt (bytes after the payload)".into()),
        (Err(e), _) => Err(format!("corrupt payload: {e}")),
    }
}

/// The cache file opened for reading, if it is a regular file of ours that no one else may
/// write and of a sane size.
fn open_own_file(cache: &Path) -> Result<File, String> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW | libc::O_NONBLOCK);
    let file = options.open(cache).map_err(|e| if e.kind() == std::io::ErrorKind::NotFound { "none yet".into() } else { e.to_string() })?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() || meta.len() > MAX_CACHE_BYTES {
        return Err("not a regular file of a sane size".into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me || meta.mode() & 0o022 != 0 {
            return Err("owned by another user or writable by others: not trusted".into());
        }
    }
    Ok(file)
}

/// Writes the cache for `index` (a temporary file renamed into place).
fn write(cache: &Path, stamp: &Stamp, index: &DirectoryIndex) -> std::io::Result<()> {
    let stamp_bytes = postcard::to_allocvec(stamp).map_err(std::io::Error::other)?;
    let name = cache.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = cache.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    if let Some(folder) = cache.parent() {
        create_private_folder(folder)?;
    }
    let _ = std::fs::remove_file(&temp);
    let mut file = options.open(&temp)?;
    // The payload is written as it is encoded (never held whole: it is as large as the
    // index); its digest, known at the end, goes back into the header before it.
    let written = (|| {
        file.write_all(MAGIC)?;
        file.write_all(&u32::try_from(stamp_bytes.len()).map_err(std::io::Error::other)?.to_le_bytes())?;
        file.write_all(&stamp_bytes)?;
        let digest_at = (MAGIC.len() + 4 + stamp_bytes.len()) as u64;
        file.write_all(&[0; 16])?;
        let digest = write_payload(&mut file, index)?;
        file.seek(std::io::SeekFrom::Start(digest_at))?;
        file.write_all(&digest)
    })();
    match written.and_then(|()| std::fs::rename(&temp, cache)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// Size of the blocks the encoder hands to the writing thread.
const WRITE_BLOCK: usize = 256 * 1024;
/// Blocks encoded ahead of the writing thread (bounds the memory a write holds).
const BLOCKS_AHEAD: usize = 4;

/// Encodes `index`'s payload into `file` at its position and returns the payload's
/// digest. The encoding stays on this thread; hashing and writing the blocks run on a
/// second one meanwhile (on the 100,000-person directory they are a third of the write,
/// which the process otherwise waits for after the load).
fn write_payload(file: &mut File, index: &DirectoryIndex) -> std::io::Result<Digest> {
    let (blocks, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(BLOCKS_AHEAD);
    let (give_back, spent) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> std::io::Result<Digest> {
            let mut digest = hasher();
            for block in received {
                digest.write(&block);
                file.write_all(&block)?;
                // Back to the encoder, to be filled again.
                let _ = give_back.send(block);
            }
            Ok(finish(&digest))
        });
        let sender = BlockSender { block: Vec::with_capacity(WRITE_BLOCK), blocks, spent };
        let encoded = postcard::serialize_with_flavor(&index.parts(), sender)
            .map_err(|_| std::io::Error::other("the cache writing thread stopped"))
            .and_then(BlockSender::finish);
        let written = writer.join().unwrap_or_else(|_| Err(std::io::Error::other("the cache writing thread panicked")));
        // A write error ends the writing thread first; the encoder then fails on a closed
        // channel, so the writer's own error is the one to report.
        let digest = written?;
        encoded.map(|()| digest)
    })
}

/// The encoder's side of [`write_payload`]: a postcard flavor that fills blocks and sends
/// them on, refilling the ones the writer is done with. Through `std::io::Write` (as
/// `postcard::to_io` does) each of the payload's millions of one-to-five-byte varints was
/// a `write_all` call of its own; here it is a bounds check and a copy. Reused blocks are
/// already mapped (a fresh 256 KiB block faults its pages in again while a load gives
/// freed memory back).
struct BlockSender {
    block: Vec<u8>,
    blocks: std::sync::mpsc::SyncSender<Vec<u8>>,
    spent: std::sync::mpsc::Receiver<Vec<u8>>,
}

impl BlockSender {
    fn send(&mut self) -> postcard::Result<()> {
        let mut next = self.spent.try_recv().unwrap_or_else(|_| Vec::with_capacity(WRITE_BLOCK));
        next.clear();
        let full = std::mem::replace(&mut self.block, next);
        self.blocks.send(full).map_err(|_| postcard::Error::SerializeBufferFull)
    }

    /// Adds `bytes` that do not fit in what is left of the block.
    #[cold]
    fn extend_across(&mut self, mut bytes: &[u8]) -> postcard::Result<()> {
        loop {
            let n = bytes.len().min(WRITE_BLOCK - self.block.len());
            self.block.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.block.len() == WRITE_BLOCK {
                self.send()?;
            }
            if bytes.is_empty() {
                return Ok(());
            }
        }
    }

    /// Sends the last, partly filled block; dropping `self` then ends the writing thread.
    fn finish(mut self) -> std::io::Result<()> {
        let sent = if self.block.is_empty() { Ok(()) } else { self.send() };
        sent.map_err(|_| std::io::Error::other("the cache writing thread stopped"))
    }
}

impl postcard::ser_flavors::Flavor for BlockSender {
    type Output = Self;

    #[inline]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        if self.block.len() == WRITE_BLOCK {
            self.send()?;
        }
        self.block.push(byte);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        if bytes.len() < WRITE_BLOCK - self.block.len() {
            self.block.extend_from_slice(bytes);
            Ok(())
        } else {
            self.extend_across(bytes)
        }
    }

    fn finalize(self) -> postcard::Result<Self> {
        Ok(self)
    }
}

/// Creates `folder` (and its parents) if missing, the last one private to its owner.
fn create_private_folder(folder: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(folder)
}

/// The digest of `file`, read from its start.
fn file_digest(file: &mut File) -> std::io::Result<Digest> {
    file.rewind()?;
    let mut hashing = Hashing { inner: Read::by_ref(file).take(MAX_FILE_BYTES), digest: hasher() };
    std::io::copy(&mut hashing, &mut std::io::sink())?;
    Ok(finish(&hashing.digest))
}

/// Of what the index depends on besides the file: the dial plan and the attribute map.
fn settings_digest(plan: &DialPlan, map: &AttributeMap) -> Digest {
    XxHash3_128::oneshot(format!("{plan:?}\n{:?}", map.specs()).as_bytes()).to_le_bytes()
}

/// The default cache folder, if the environment names one.
fn default_folder() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("CALLNOTE_CACHE_DIR")
        .or_else(|| var("CACHE_DIRECTORY"))
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("callnote")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("callnote")))
}

/// `<file name>-<digest of its absolute path>.callnote-index`: one cache per directory file.
/// The path's digest stays SHA-256 (one short string, once): a name unchanged across cache
/// formats means a new format's cache replaces the old file instead of leaving it behind.
fn cache_name(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let digest = Sha256::digest(absolute.as_os_str().as_encoded_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')).take(64).collect();
    format!("{name}-{hex}.callnote-index")
}

/// A reader or writer that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    digest: XxHash3_128,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.write(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
