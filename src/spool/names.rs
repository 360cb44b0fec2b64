//! File names in the spool: which entries are headers and which are side files, and names
//! that always fit the file system (`NAME_MAX`, 255 bytes) and are always printable.
//!
//! Consumes entry names as the file system gives them (any bytes); produces `String`s that
//! are safe to create: a name too long for what is appended to it (`.error.txt`, a claim's
//! unique prefix) is shortened to a prefix, `~` and 16 hex digits of the SHA-256 of the
//! whole name (so two long names never collide), keeping the extension; a name that is not
//! UTF-8 is made printable the same way. Pure: never touches the file system.

use std::ffi::OsStr;

use sha2::{Digest, Sha256};

/// The longest file name (bytes) the file systems callnote runs on take.
pub const NAME_MAX: usize = 255;

/// The side-file extensions: voicemail audio, fax image, an XSO voice reply.
const SIDE_EXTENSIONS: [&str; 4] = ["wav", "tif", "tiff", "msg"];

/// The extension of `name` (after the last `.`), if any.
fn extension(name: &str) -> Option<&str> {
    name.rsplit_once('.').map(|(_, ext)| ext).filter(|ext| !ext.is_empty())
}

/// Whether a file name in the spool folder is a header the relay should take: `*.txt` or
/// `*.xml`, not starting with `.` (a producer's file in progress).
pub fn is_header_name(name: &str) -> bool {
    !name.starts_with('.') && extension(name).is_some_and(|ext| ext.eq_ignore_ascii_case("txt") || ext.eq_ignore_ascii_case("xml"))
}

/// Whether `name` can be a side file: a plain name (no separator, not hidden) ending in
/// `.wav`, `.tif`/`.tiff` or `.msg`. A header name never is one.
pub fn is_side_file_name(name: &str) -> bool {
    !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && extension(name).is_some_and(|ext| SIDE_EXTENSIONS.iter().any(|s| ext.eq_ignore_ascii_case(s)))
}

/// The stem of `name` (before the last `.`), or the whole name.
pub fn stem(name: &str) -> &str {
    name.rsplit_once('.').map_or(name, |(stem, _)| stem)
}

/// `name` itself when it is at most `max` bytes; otherwise its first bytes (cut on a
/// character boundary), `~`, 16 hex digits of the SHA-256 of the whole name and its
/// extension (when that is short), exactly fitting `max`.
pub fn bounded(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    shortened(name, name.as_bytes(), max)
}

/// A printable name for any entry name, at most `max` bytes: a UTF-8 name without control
/// characters goes through [`bounded`]; any other gets its bad bytes and control
/// characters replaced by `_` and the hash of its original bytes appended.
pub fn safe(raw: &OsStr, max: usize) -> String {
    match raw.to_str() {
        Some(name) if !name.chars().any(char::is_control) => bounded(name, max),
        _ => {
            let bytes = raw.as_encoded_bytes();
            let printable: String = String::from_utf8_lossy(bytes)
                .chars()
                .map(|c| if c.is_control() || c == char::REPLACEMENT_CHARACTER { '_' } else { c })
                .collect();
            shortened(&printable, bytes, max)
        }
    }
}

/// A name as `queue list` and reports show it: itself when it is UTF-8 without control
/// characters, otherwise [`escaped`].
pub fn shown(raw: &OsStr) -> String {
    match raw.to_str() {
        Some(name) if !name.chars().any(char::is_control) => name.to_owned(),
        _ => escaped(raw),
    }
}

/// The original bytes of a name, for a report: printable ASCII as is, anything else as
/// `\xNN`.
pub fn escaped(raw: &OsStr) -> String {
    raw.as_encoded_bytes()
        .iter()
        .map(|&b| match b {
            b'\\' => "\\\\".to_owned(),
            0x20..=0x7e => char::from(b).to_string(),
            _ => format!("\\x{b:02x}"),
        })
        .collect()
}

/// `prefix~HASH.ext` of `name` (printable) within `max` bytes; the hash is of `original`.
fn shortened(name: &str, original: &[u8], max: usize) -> String {
    let digest = Sha256::digest(original);
    let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let ext = extension(name).filter(|ext| ext.len() <= 8 && ext.chars().all(|c| c.is_ascii_alphanumeric()));
    let suffix = match ext {
        Some(ext) => format!("~{hash}.{ext}"),
        None => format!("~{hash}"),
    };
    let base = match ext {
        Some(ext) => &name[..name.len() - ext.len() - 1],
        None => name,
    };
    let mut cut = max.saturating_sub(suffix.len()).min(base.len());
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &base[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt as _;

    #[test]
    fn header_and_side_file_names() {
        assert!(is_header_name("0b1c.txt") && is_header_name("N.XML") && is_header_name("a.TXT"));
        assert!(!is_header_name("a.wav") && !is_header_name(".a.txt.tmp") && !is_header_name(".hidden.txt"));
        assert!(!is_header_name("txt") && !is_header_name("a."));
        assert!(is_side_file_name("a.wav") && is_side_file_name("b.TIF") && is_side_file_name("c.tiff"));
        assert!(is_side_file_name("220f.msg"));
        for not in ["a.txt", "a.xml", ".a.wav", "a/b.wav", r"a\b.wav", "wav", "a.mp3", ""] {
            assert!(!is_side_file_name(not), "{not}");
        }
        assert_eq!(stem("575a.wav"), "575a");
        assert_eq!(stem("noext"), "noext");
    }

    #[test]
    fn long_names_are_bounded_with_a_hash_and_keep_their_extension() {
        assert_eq!(bounded("short.txt", 20), "short.txt");
        let long = format!("{}.txt", "é".repeat(150));
        let b = bounded(&long, 100);
        assert!(b.len() <= 100 && b.ends_with(".txt") && b.starts_with("éé"), "{b}");
        assert_eq!(b.matches('~').count(), 1);
        assert_ne!(bounded(&format!("{}x.txt", "a".repeat(300)), 100), bounded(&format!("{}y.txt", "a".repeat(300)), 100));
        assert_eq!(bounded(&long, 100), b, "stable");
        let no_ext = "z".repeat(300);
        assert_eq!(bounded(&no_ext, 40).len(), 40);
    }

    #[test]
    fn non_utf8_names_become_printable_and_are_recorded_escaped() {
        let raw = OsStr::from_bytes(b"caf\xe9\x01.txt");
        let s = safe(raw, NAME_MAX);
        assert!(s.starts_with("caf__~") && s.ends_with(".txt"), "{s}");
        assert_eq!(escaped(raw), "caf\\xe9\\x01.txt");
        assert_eq!(shown(raw), "caf\\xe9\\x01.txt");
        assert_eq!(shown(OsStr::new("résumé.txt")), "résumé.txt");
        assert_eq!(safe(OsStr::new("plain.txt"), NAME_MAX), "plain.txt");
        assert_ne!(safe(OsStr::from_bytes(b"\xff.txt"), 255), safe(OsStr::from_bytes(b"\xfe.txt"), 255));
    }
}
