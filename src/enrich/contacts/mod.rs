//! The recipient's own contacts: per recipient (by mail address), an index of the people in
//! their address book, built with the directory's index and attribute names so that numbers
//! are read and matched exactly as the directory's are.
//!
//! Sources ([`settings::ContactsSettings`]): an export folder ([`ExportDir`]: `<mail>.vcf`
//! or `<mail>.csv` per recipient) and a CardDAV address book per recipient
//! ([`carddav::CardDavBook`]). [`ContactBook::of`] gives one recipient's index, or `None`
//! when they have none; it never fails and never waits on a server: a book that cannot be
//! read keeps its last good copy, and the problem is logged with the recipient's address
//! only (never a contact's name or number).
//!
//! Privacy: a book is only ever looked up by the recipient's own address, so one
//! recipient's contacts never resolve another's callers.

pub mod carddav;
pub mod outlook_csv;
pub mod settings;
pub mod vcard;

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use crate::enrich::directory::{self, DirectoryIndex, Entry};
use crate::phone::DialPlan;

/// Largest contacts file or address book read for one recipient.
pub const MAX_BOOK_BYTES: u64 = 64 * 1024 * 1024;

/// Where a recipient's contacts come from.
pub trait ContactBook: Send + Sync {
    /// The contacts of the recipient with this mail address, if they have any.
    fn of(&self, mail: &str) -> Option<Arc<DirectoryIndex>>;
}

/// Why a recipient's contacts could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    #[error("{}: cannot read contacts file", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a regular file with a single name", path.display())]
    NotAFile { path: PathBuf },
    #[error("{}: larger than {MAX_BOOK_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("{}:{line}: {problem}", path.display())]
    Syntax { path: PathBuf, line: usize, problem: String },
    #[error("{url}: {problem}")]
    CardDav { url: String, problem: String },
}

/// The file name stem of a recipient's book: the address in lower case, refused unless it
/// is a plain address (letters, digits, `.` `_` `+` `-` and one `@`, not starting with a
/// dot), so an address can never name a file outside the folder or another one's book.
pub fn book_stem(mail: &str) -> Option<String> {
    let mail = mail.trim().to_lowercase();
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-' | '@');
    let (local, domain) = mail.split_once('@')?;
    let plain = !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !mail.starts_with('.') && mail.len() <= 254;
    (plain && mail.chars().all(allowed)).then_some(mail)
}

/// Parses one book's bytes: vCard, or Outlook CSV when `csv`. The error names `origin`.
pub fn parse_book(bytes: &[u8], csv: bool, origin: &Path) -> Result<Vec<Entry>, ContactsError> {
    let syntax = |line, problem: String| ContactsError::Syntax { path: origin.to_owned(), line, problem };
    if csv {
        return outlook_csv::parse(bytes).map_err(|(line, problem)| syntax(line, problem.to_string()));
    }
    let text = directory::decode_text(bytes).map_err(|(line, problem)| syntax(line, problem.to_string()))?;
    vcard::parse(&text).map_err(|(line, problem)| syntax(line, problem.to_string()))
}

/// One recipient's contacts, indexed under `plan`.
pub fn index(entries: Vec<Entry>, plan: &DialPlan) -> DirectoryIndex {
    DirectoryIndex::build(entries, plan)
}

/// A recipient's book as last read, and the file stamp it was read at.
struct Cached {
    stamp: Option<(SystemTime, u64)>,
    index: Arc<DirectoryIndex>,
}

/// A folder of exports, one per recipient: `<mail>.vcf` (vCard 2.1/3.0/4.0) or `<mail>.csv`
/// (Outlook CSV). Read when first needed and again whenever the file changes (time or
/// size); a file that turns bad keeps the last good copy serving.
pub struct ExportDir {
    dir: PathBuf,
    plan: DialPlan,
    cache: Mutex<HashMap<String, Cached>>,
}

impl ExportDir {
    pub fn new(dir: impl Into<PathBuf>, plan: &DialPlan) -> ExportDir {
        ExportDir { dir: dir.into(), plan: plan.clone(), cache: Mutex::new(HashMap::new()) }
    }

    /// The folder read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the recipient's export if it changed since the last read: `Ok(None)` when
    /// there is none.
    pub fn load(&self, mail: &str) -> Result<Option<Arc<DirectoryIndex>>, ContactsError> {
        let Some(stem) = book_stem(mail) else { return Ok(None) };
        let cached = |cache: &HashMap<String, Cached>| cache.get(&stem).map(|c| (c.stamp, Arc::clone(&c.index)));
        let previous = cached(&self.cache.lock().unwrap_or_else(PoisonError::into_inner));
        for (extension, csv) in [("vcf", false), ("csv", true)] {
            let path = self.dir.join(format!("{stem}.{extension}"));
            let Some(file) = open_book(&path)? else { continue };
            let stamp = check_book(&file, &path)?;
            if let Some((old_stamp, index)) = &previous
                && *old_stamp == Some(stamp)
            {
                return Ok(Some(Arc::clone(index)));
            }
            let bytes = read_book(file, &path)?;
            let index = Arc::new(index(parse_book(&bytes, csv, &path)?, &self.plan));
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            cache.insert(stem, Cached { stamp: Some(stamp), index: Arc::clone(&index) });
            return Ok(Some(index));
        }
        Ok(None)
    }
}

impl ContactBook for ExportDir {
    fn of(&self, mail: &str) -> Option<Arc<DirectoryIndex>> {
        match self.load(mail) {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(error = %error, "contacts file unreadable; the last good copy is used");
                let stem = book_stem(mail)?;
                self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&stem).map(|c| Arc::clone(&c.index))
            }
        }
    }
}

/// Opens a book without following a link; `None` when there is no such file.
fn open_book(path: &Path) -> Result<Option<std::fs::File>, ContactsError> {
    match crate::intake::open::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if crate::intake::open::is_not_a_file(&e) => Err(ContactsError::NotAFile { path: path.to_owned() }),
        Err(source) => Err(ContactsError::Read { path: path.to_owned(), source }),
    }
}

/// Checks the open handle (a regular file, one name, not too large); its stamp (modified
/// time and size) tells whether it changed since it was last read.
fn check_book(file: &std::fs::File, path: &Path) -> Result<(SystemTime, u64), ContactsError> {
    let meta = file.metadata().map_err(|source| ContactsError::Read { path: path.to_owned(), source })?;
    if !meta.is_file() || crate::intake::open::links(&meta) != 1 {
        return Err(ContactsError::NotAFile { path: path.to_owned() });
    }
    if meta.len() > MAX_BOOK_BYTES {
        return Err(ContactsError::TooLarge { path: path.to_owned() });
    }
    Ok((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len()))
}

/// Reads a checked book through its handle, never more than [`MAX_BOOK_BYTES`].
fn read_book(file: std::fs::File, path: &Path) -> Result<Vec<u8>, ContactsError> {
    let mut bytes = Vec::new();
    file.take(MAX_BOOK_BYTES + 1).read_to_end(&mut bytes).map_err(|source| ContactsError::Read { path: path.to_owned(), source })?;
    if bytes.len() as u64 > MAX_BOOK_BYTES {
        return Err(ContactsError::TooLarge { path: path.to_owned() });
    }
    Ok(bytes)
}

/// Opens the configured sources (nothing is read until a recipient's book is needed).
pub fn open(settings: &settings::ContactsSettings, plan: &DialPlan) -> Arc<dyn ContactBook> {
    let mut sources: Vec<Arc<dyn ContactBook>> = Vec::new();
    if let Some(dir) = &settings.dir {
        sources.push(Arc::new(ExportDir::new(dir, plan)));
    }
    if let Some(carddav) = &settings.carddav {
        match carddav::CardDavBook::open_refreshing(carddav, plan) {
            Ok(book) => sources.push(book),
            Err(error) => tracing::warn!(error = %error, "CardDAV contacts unavailable"),
        }
    }
    Arc::new(Sources(sources))
}

/// Every configured source, asked in order (the export folder, then CardDAV): the first
/// that has a book for the recipient answers.
pub struct Sources(pub Vec<Arc<dyn ContactBook>>);

impl ContactBook for Sources {
    fn of(&self, mail: &str) -> Option<Arc<DirectoryIndex>> {
        self.0.iter().find_map(|source| source.of(mail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_addresses_name_a_book() {
        assert_eq!(book_stem(" Hannah.Whitaker@Contoso.com ").as_deref(), Some("hannah.whitaker@contoso.com"));
        for bad in ["../x@y", "a/b@c", "no-at", "@contoso.com", "a@", ".hidden@c", "a@b@c", "a b@c", "a\0@c"] {
            assert_eq!(book_stem(bad), None, "{bad:?}");
        }
    }
}
