//! The caller directory: sources (LDIF and CSV files here, LDAP in `ldap.rs`) produce
//! [`Entry`] values; [`DirectoryIndex::build`] normalizes them once into an in-memory index
//! (E.164, extension, SIP address, mail, objectGUID) so that a lookup never scans.
//! [`LiveDirectory`] lets a refresh swap in a new index while lookups run.
//!
//! Consumes directory exports (bytes) or entries; produces a [`DirectoryIndex`] that
//! implements [`Directory`]. A lookup reports every matching person ([`Lookup`]) and never
//! picks one of several. Errors: [`DirectoryError`], naming the file and line of a bad export.
//! Nothing here reads the network or writes anything.

mod attributes;
mod cache;
mod csv;
mod guid;
mod index;
mod keys;
pub mod ldap;
mod ldif;
mod live;
pub mod settings;
mod store;
mod text;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::event::{Candidate, Party, Person, Recipient, Unmatched};
use crate::phone::DialPlan;

pub use attributes::{AttributeMap, AttributeSpec, Role};
pub use cache::{CacheUse, load_file_cached, load_with_cache};
pub use index::{DirectoryIndex, LoadWarning};
pub(crate) use live::LiveDirectory;

/// Why the directory could not answer, or a directory file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    #[error("{}: cannot read directory file", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {problem}", path.display())]
    Syntax { path: PathBuf, line: usize, problem: SyntaxError },
}

/// What is wrong at one line of an LDIF or CSV export.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("text is not UTF-8 (nor UTF-16 with a byte order mark)")]
    NotText,
    #[error("cannot read the file: {0}")]
    Io(String),
    #[error("expected `attribute: value`, found `{0}`")]
    NotAnAttribute(String),
    #[error("a continuation line (starting with a space) follows no attribute")]
    StrayContinuation,
    #[error("entry does not start with `dn:` (found `{0}`)")]
    MissingDn(String),
    #[error("invalid base64 in `{0}::` value")]
    Base64(String),
    #[error("`{0}:<` refers to a URL; values must be inline (export without -url / file references)")]
    UrlValue(String),
    #[error("`changetype: {0}` records are not a directory export; only entries (or `changetype: add`) are read")]
    ChangeRecord(String),
    #[error("`version: 1` may only appear before the first entry")]
    MisplacedVersion,
    #[error("quoted field is never closed")]
    UnclosedQuote,
    #[error("unexpected `{0}` after a closing quote")]
    AfterQuote(char),
    #[error("the header row is missing")]
    MissingHeader,
    #[error("header column {0} has no name")]
    EmptyColumnName(usize),
    #[error("column `{0}` appears twice in the header")]
    DuplicateColumn(String),
    #[error("expected {expected} fields as in the header, found {found}")]
    FieldCount { expected: usize, found: usize },
    #[error("column `{0}` holds a PowerShell collection type name; export multi-valued attributes with `-join '|'`")]
    CollectionTypeName(String),
}

/// One value of an attribute: text, or raw bytes (`objectGUID::` in an LDIF, binary LDAP
/// attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Binary(Vec<u8>),
}

/// One directory object as a source delivers it: every value of every attribute, in order,
/// attribute names as the source spells them (matched case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// The distinguished name, or where the entry is in its file (`line 12`); used in warnings.
    pub dn: String,
    /// `(attribute, value)`, one pair per value (a multi-valued attribute repeats its name).
    pub attributes: Vec<(String, Value)>,
}

impl Entry {
    pub fn new(dn: impl Into<String>) -> Entry {
        Entry { dn: dn.into(), attributes: Vec::new() }
    }

    /// Adds one text value.
    pub(crate) fn push_text(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.attributes.push((name.into(), Value::Text(value.into())));
    }
}

impl Entry {
    /// The entry borrowed, as the index reads it.
    pub(super) fn view(&self) -> EntryView<'_> {
        let attributes = self.attributes.iter().map(|(name, value)| (name.as_str(), value.view()));
        EntryView { dn: Cow::Borrowed(&self.dn), attributes: attributes.collect() }
    }
}

impl Value {
    /// The value borrowed.
    fn view(&self) -> ValueView<'_> {
        match self {
            Value::Text(text) => ValueView::Text(Cow::Borrowed(text)),
            Value::Binary(bytes) => ValueView::Binary(Cow::Borrowed(bytes)),
        }
    }
}

impl From<EntryView<'_>> for Entry {
    fn from(view: EntryView<'_>) -> Entry {
        let value = |value: ValueView<'_>| match value {
            ValueView::Text(text) => Value::Text(text.into_owned()),
            ValueView::Binary(bytes) => Value::Binary(bytes.into_owned()),
        };
        Entry { dn: view.dn.into_owned(), attributes: view.attributes.into_iter().map(|(name, v)| (name.to_owned(), value(v))).collect() }
    }
}

/// An entry as the index reads it: borrowed from an [`Entry`], or straight from a parsed
/// LDIF record (then only unfolded lines and base64 values are copies).
pub(super) struct EntryView<'a> {
    pub(super) dn: Cow<'a, str>,
    pub(super) attributes: Vec<(&'a str, ValueView<'a>)>,
}

/// A [`Value`], borrowed where it can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ValueView<'a> {
    Text(Cow<'a, str>),
    Binary(Cow<'a, [u8]>),
}

#[cfg(test)]
impl Entry {
    /// Adds one binary value.
    pub(crate) fn push_binary(&mut self, name: impl Into<String>, value: Vec<u8>) {
        self.attributes.push((name.into(), Value::Binary(value)));
    }

    /// The text values of one attribute (exact name), binary ones shown as `<binary>`.
    pub(crate) fn texts(&self, name: &str) -> Vec<&str> {
        let values = self.attributes.iter().filter(|(n, _)| n == name);
        values
            .map(|(_, v)| match v {
                Value::Text(t) => t.as_str(),
                Value::Binary(_) => "<binary>",
            })
            .collect()
    }
}

/// The outcome of a lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// Exactly one person: the person and how they matched.
    Resolved(Box<Person>, Candidate),
    /// Two or more different people, each with the attribute that matched; none is picked.
    Ambiguous(Vec<Candidate>),
    Unresolved,
}

/// Which matching steps a lookup takes, so that another source (the recipient's own
/// contacts) can be asked between the exact steps and the suffix step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steps {
    /// E.164, SIP address, extension, then trailing digits.
    All,
    /// E.164, SIP address and extension only.
    Exact,
    /// Trailing digits only (a caller id too short to be a full number).
    Suffix,
}

impl Steps {
    /// Whether a lookup taking these steps tries `key`.
    fn includes(self, key: &keys::Key) -> bool {
        match self {
            Steps::All => true,
            Steps::Exact => !matches!(key, keys::Key::Suffix(_)),
            Steps::Suffix => matches!(key, keys::Key::Suffix(_)),
        }
    }
}

/// A source of people, looked up by a normalized party.
pub trait Directory: Send + Sync {
    /// Finds who owns the (already normalized) party's number, SIP address or extension.
    fn lookup(&self, party: &Party) -> Result<Lookup, DirectoryError>;
    /// [`Directory::lookup`] limited to some steps. A source that cannot split its steps
    /// answers everything in the exact steps.
    fn lookup_steps(&self, party: &Party, steps: Steps) -> Result<Lookup, DirectoryError> {
        match steps {
            Steps::All | Steps::Exact => self.lookup(party),
            Steps::Suffix => Ok(Lookup::Unresolved),
        }
    }
    /// Finds the recipient's entry by objectGUID, SMTP address, SIP address or EUM proxy.
    /// `None` when no single person has any of them. Only the person's fields are read
    /// ([`crate::enrich::complete_recipient`]): `attributes` may be left empty.
    fn find_recipient(&self, recipient: &Recipient) -> Result<Option<Person>, DirectoryError>;
    /// Why `lookup` found nobody for `party`: the keys it tried and the stored values that
    /// look like the number but could not be read. Called only after an `Unresolved` lookup.
    fn explain_unresolved(&self, party: &Party) -> Unmatched {
        Unmatched::tried(party_key_names(party), Vec::new())
    }
}

impl Unmatched {
    /// The reason for `tried` keys that matched nobody, noting `unreadable` look-alikes.
    pub fn tried(tried: Vec<String>, unreadable: Vec<String>) -> Unmatched {
        let mut summary = if tried.is_empty() {
            "the caller's number does not read under the dial plan, so nothing was looked up".to_owned()
        } else {
            format!("no directory entry holds {}", tried.join(" or "))
        };
        if !unreadable.is_empty() {
            summary.push_str(&format!(
                "; {} directory value(s) with the same trailing digits do not read under the dial plan and can never match: fix them in the directory",
                unreadable.len()
            ));
        }
        Unmatched { summary, tried, unreadable }
    }
}

/// The lookup keys a party offers, as shown to admins, when no index is at hand to say more.
pub(crate) fn party_key_names(party: &Party) -> Vec<String> {
    let named = [("e164", &party.e164), ("sip", &party.sip), ("extension", &party.extension)];
    named.into_iter().filter_map(|(name, value)| value.as_deref().map(|v| format!("{name} {v}"))).collect()
}

/// Largest directory file read (a 10,000-person export is a few MiB).
pub(super) const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// Loads an LDIF export, or a CSV export when the name ends in `.csv` (any case), and
/// indexes it under `plan` with the Active Directory attribute map. An LDIF export is read a
/// chunk of records at a time (parsed on every core) into the index, never held whole.
pub fn load_file(path: &Path, plan: &DialPlan) -> Result<DirectoryIndex, DirectoryError> {
    let (file, _) = open_file(path)?;
    index_reader(path, file, plan, AttributeMap::default())
}

/// Reads and parses a directory file into entries (LDIF, or CSV by extension).
pub fn read_entries(path: &Path) -> Result<Vec<Entry>, DirectoryError> {
    let (file, _) = open_file(path)?;
    let mut entries = Vec::new();
    for_each_entry(path, file, |entry| entries.push(entry))?;
    Ok(entries)
}

/// Opens a directory file once; refuses one larger than [`MAX_FILE_BYTES`] or not a file.
pub(super) fn open_file(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), DirectoryError> {
    let read_error = |source| DirectoryError::Read { path: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    if !meta.is_file() {
        return Err(read_error(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file")));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(read_error(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("larger than {MAX_FILE_BYTES} bytes"))));
    }
    Ok((file, meta))
}

/// Indexes the export read from `input` (the file at `path`) with `map`.
pub(super) fn index_reader(
    path: &Path,
    input: impl std::io::Read + Send,
    plan: &DialPlan,
    map: AttributeMap,
) -> Result<DirectoryIndex, DirectoryError> {
    let mut builder = index::Builder::new(plan, &map);
    // Each entry is read under the dial plan where it is parsed (every core, when there are
    // several) and only added to the index here.
    for_each_mapped(path, input, |entry| index::Builder::prepare(plan, &map, &entry), |prepared| builder.commit(prepared))?;
    Ok(builder.finish(plan.clone(), map.clone()))
}

/// Hands each entry of the export read from `input` to `each`, in file order.
fn for_each_entry(path: &Path, input: impl std::io::Read + Send, each: impl FnMut(Entry)) -> Result<(), DirectoryError> {
    for_each_mapped(path, input, |view| Entry::from(view), each)
}

/// Hands `map` of each entry of the export read from `input` to `each`, in file order: an
/// LDIF export a chunk of records at a time (parsed and mapped on every core, see
/// [`ldif::for_each_mapped`]), a CSV export parsed whole. Stops at the first syntax error.
fn for_each_mapped<T: Send>(
    path: &Path,
    input: impl std::io::Read + Send,
    map: impl Fn(EntryView<'_>) -> T + Sync,
    each: impl FnMut(T),
) -> Result<(), DirectoryError> {
    use std::io::Read as _;
    let syntax = |(line, problem)| DirectoryError::Syntax { path: path.to_owned(), line, problem };
    let input = input.take(MAX_FILE_BYTES);
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        let mut bytes = Vec::new();
        let mut input = input;
        input.read_to_end(&mut bytes).map_err(|source| DirectoryError::Read { path: path.to_owned(), source })?;
        csv::parse(&bytes).map_err(syntax)?.iter().map(|entry| map(entry.view())).for_each(each);
        return Ok(());
    }
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    ldif::for_each_mapped(input, threads, map, each).map_err(syntax)
}

/// Parses LDIF bytes (`ldifde` / `ldapsearch` export). Errors carry the 1-based line.
pub(crate) fn parse_ldif(bytes: &[u8]) -> Result<Vec<Entry>, (usize, SyntaxError)> {
    ldif::parse(bytes)
}

/// Decodes an export's bytes (UTF-8, or UTF-16 with a byte order mark). Errors carry the
/// 1-based line of the first bad byte.
pub(crate) fn decode_text(bytes: &[u8]) -> Result<String, (usize, SyntaxError)> {
    text::decode(bytes)
}

/// Parses CSV bytes (`Export-Csv`). Errors carry the 1-based line.
pub(crate) fn parse_csv(bytes: &[u8]) -> Result<Vec<Entry>, (usize, SyntaxError)> {
    csv::parse(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_line_after_many_entries_is_named_and_nothing_is_indexed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("big.ldif");
        let mut ldif: String = (0..2000).map(|i| format!("dn: cn=p{i}\ntelephoneNumber: +1 425 555 {:04}\n\n", i % 10_000)).collect();
        ldif.push_str("dn: cn=bad\nno colon\n");
        std::fs::write(&path, ldif).expect("write");
        let plan = DialPlan::new("US", None, 4, 7).expect("US");
        let error = load_file(&path, &plan).expect_err("syntax error");
        assert!(matches!(&error, DirectoryError::Syntax { line: 6002, .. }), "{error}");
        assert_eq!(read_entries(&path.with_file_name("big.ldif")).map(|e| e.len()).ok(), None);
    }

    proptest::proptest! {
        /// Any bytes parse or fail at a line that exists; never a panic.
        #[test]
        fn exports_never_panic_and_errors_point_at_real_lines(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
                                                              text in "[dn:a-z =,;\"|\\r\\n#<]{0,200}") {
            for input in [bytes.as_slice(), text.as_bytes()] {
                let lines = 1 + input.iter().filter(|&&b| b == b'\n').count();
                for parsed in [parse_ldif(input), parse_csv(input)] {
                    if let Err((line, _)) = parsed {
                        proptest::prop_assert!((1..=lines + 1).contains(&line), "line {line} of {lines}");
                    }
                }
            }
        }
    }
}
