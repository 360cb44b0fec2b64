//! The last good sync, kept on disk so that a restart while the domain controller is down
//! still resolves callers.
//!
//! The snapshot is an LDIF file (RFC 2849) read back with the file directory's own LDIF
//! reader, so it gives exactly the answers the sync gave and an admin can also use it as
//! `--directory snapshot.ldif`. A header of `#` comments names the source, base DN and
//! filter; a snapshot of another base DN is refused. It is written to a temporary file
//! beside the target and renamed over it only after a complete sync (never half a
//! directory), with mode 0600 (it holds personal data). Errors: [`LdapError`].

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::LdapError;
use crate::enrich::directory::{self, Entry, Value};

const MAGIC: &str = "# callnote LDAP directory snapshot";

/// Where a snapshot came from (its header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotHeader {
    pub source: String,
    pub base_dn: String,
    pub filter: String,
    /// RFC 3339 time of the sync.
    pub synced_at: String,
}

/// Writes a snapshot entry by entry into a temporary file; [`SnapshotWriter::commit`]
/// renames it into place.
pub(crate) struct SnapshotWriter {
    path: PathBuf,
    temp: PathBuf,
    out: BufWriter<File>,
}

impl SnapshotWriter {
    /// Creates the temporary file and writes the header.
    pub fn create(path: &Path, header: &SnapshotHeader) -> Result<SnapshotWriter, LdapError> {
        let io = |what| move |source| LdapError::Snapshot { path: path.to_owned(), what, source };
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "snapshot".into());
        let temp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&temp).map_err(io("cannot create the temporary file"))?;
        let mut writer = SnapshotWriter { path: path.to_owned(), temp, out: BufWriter::new(file) };
        let text = format!(
            "{MAGIC}\n# source: {}\n# base: {}\n# filter: {}\n# synced: {}\n\n",
            one_line(&header.source),
            one_line(&header.base_dn),
            one_line(&header.filter),
            one_line(&header.synced_at)
        );
        writer.out.write_all(text.as_bytes()).map_err(io("cannot write"))?;
        Ok(writer)
    }

    /// Appends one entry.
    pub fn write(&mut self, entry: &Entry) -> Result<(), LdapError> {
        let mut record = String::with_capacity(256);
        push_line(&mut record, "dn", entry.dn.as_bytes());
        for (name, value) in &entry.attributes {
            let bytes = match value {
                Value::Text(text) => text.as_bytes(),
                Value::Binary(bytes) => bytes.as_slice(),
            };
            push_line(&mut record, name, bytes);
        }
        record.push('\n');
        let path = &self.path;
        self.out.write_all(record.as_bytes()).map_err(|source| LdapError::Snapshot { path: path.clone(), what: "cannot write", source })
    }

    /// Flushes, syncs and renames the temporary file over the snapshot.
    pub(crate) fn commit(self) -> Result<(), LdapError> {
        let path = &self.path;
        let io = |what| move |source| LdapError::Snapshot { path: path.clone(), what, source };
        let file = self.out.into_inner().map_err(|e| io("cannot write")(e.into_error()))?;
        file.sync_all().map_err(io("cannot sync"))?;
        drop(file);
        std::fs::rename(&self.temp, &self.path).map_err(io("cannot rename the temporary file into place"))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(dir) = File::open(dir)
        {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Removes the temporary file (a failed or abandoned sync).
    pub(crate) fn discard(self) {
        let temp = self.temp.clone();
        drop(self);
        let _ = std::fs::remove_file(temp);
    }
}

/// Reads a snapshot written for `base_dn`: its header and entries.
pub fn load(path: &Path, base_dn: &str) -> Result<(SnapshotHeader, Vec<Entry>), LdapError> {
    let content_error = |reason: String| LdapError::SnapshotContent { path: path.to_owned(), reason };
    let text = std::fs::read(path).map_err(|source| LdapError::Snapshot { path: path.to_owned(), what: "cannot read", source })?;
    let header = parse_header(&text).ok_or_else(|| content_error("not a callnote LDAP snapshot (header missing)".into()))?;
    if !header.base_dn.eq_ignore_ascii_case(base_dn) {
        return Err(content_error(format!("was taken from base `{}`, not the configured `{base_dn}`", header.base_dn)));
    }
    let entries = directory::parse_ldif(&text).map_err(|(line, problem)| content_error(format!("line {line}: {problem}")))?;
    Ok((header, entries))
}

fn parse_header(text: &[u8]) -> Option<SnapshotHeader> {
    // The header is well within the first 64 KiB; a character cut at the end does not matter.
    let head = String::from_utf8_lossy(&text[..text.len().min(64 * 1024)]);
    let mut lines = head.lines();
    if lines.next()? != MAGIC {
        return None;
    }
    let mut header = SnapshotHeader { source: String::new(), base_dn: String::new(), filter: String::new(), synced_at: String::new() };
    for line in lines.take_while(|l| l.starts_with("# ")) {
        let Some((key, value)) = line[2..].split_once(": ") else {
            continue;
        };
        match key {
            "source" => header.source = value.to_owned(),
            "base" => header.base_dn = value.to_owned(),
            "filter" => header.filter = value.to_owned(),
            "synced" => header.synced_at = value.to_owned(),
            _ => {}
        }
    }
    Some(header)
}

/// Appends `name: value`, or `name:: base64` when the value is not a SAFE-STRING (RFC 2849:
/// ASCII without NUL, CR, LF, not starting with space, `:` or `<`; we also encode a trailing
/// space, which some readers trim).
fn push_line(out: &mut String, name: &str, value: &[u8]) {
    let safe = value.first().is_none_or(|b| !matches!(b, b' ' | b':' | b'<'))
        && value.last() != Some(&b' ')
        && value.iter().all(|&b| b.is_ascii() && !matches!(b, 0 | b'\r' | b'\n'));
    out.push_str(name);
    if safe {
        out.push_str(": ");
        // safe: every byte is ASCII
        out.push_str(std::str::from_utf8(value).unwrap_or_default());
    } else {
        out.push_str(":: ");
        out.push_str(&base64::engine::general_purpose::STANDARD.encode(value));
    }
    out.push('\n');
}

/// A header value on one line.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> SnapshotHeader {
        SnapshotHeader {
            source: "ldaps://dc1.contoso.com".into(),
            base_dn: "DC=contoso,DC=com".into(),
            filter: "(objectClass=inetOrgPerson)".into(),
            synced_at: "2026-11-26T21:00:00Z".into(),
        }
    }

    #[test]
    fn round_trip_keeps_text_binary_and_awkward_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.ldif");
        let mut entry = Entry::new("uid=zoë,ou=People,dc=contoso,dc=com");
        entry.push_text("displayName", "Zoë Lefèvre-Château");
        entry.push_text("telephoneNumber", "+33 1 99 00 21 47");
        entry.push_text("title", " leading space");
        entry.push_text("description", "two\nlines");
        entry.push_text("info", ":colon first");
        entry.push_binary(
            "objectGUID",
            vec![0x7a, 0xf8, 0x7b, 0x5e, 0x7b, 0xc7, 0x0f, 0x4f, 0x82, 0x0f, 0x5f, 0x25, 0x60, 0x9c, 0x7f, 0x58],
        );
        let mut plain = Entry::new("uid=tom,ou=People,dc=contoso,dc=com");
        plain.push_text("mobile", "+1 289-259-6319");

        let mut writer = SnapshotWriter::create(&path, &header()).unwrap();
        writer.write(&entry).unwrap();
        writer.write(&plain).unwrap();
        assert!(!path.exists(), "nothing is visible before commit");
        writer.commit().unwrap();

        let (read_header, entries) = load(&path, "dc=contoso,dc=com").unwrap();
        assert_eq!(read_header, header());
        assert_eq!(entries, vec![entry, plain]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\nmobile: +1 289-259-6319\n"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn discarded_writer_leaves_the_old_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.ldif");
        std::fs::write(&path, "old").unwrap();
        let mut writer = SnapshotWriter::create(&path, &header()).unwrap();
        writer.write(&Entry::new("uid=x,dc=contoso,dc=com")).unwrap();
        writer.discard();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temporary file removed");
    }

    #[test]
    fn other_base_or_foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.ldif");
        SnapshotWriter::create(&path, &header()).unwrap().commit().unwrap();
        let Err(e) = load(&path, "dc=fabrikam,dc=com") else { panic!("other base accepted") };
        assert_eq!(
            e.to_string(),
            format!(
                "directory.snapshot {}: was taken from base `DC=contoso,DC=com`, not the configured `dc=fabrikam,dc=com`",
                path.display()
            )
        );
        std::fs::write(&path, "dn: dc=contoso,dc=com\n").unwrap();
        let Err(e) = load(&path, "dc=contoso,dc=com") else { panic!("foreign file accepted") };
        assert_eq!(e.to_string(), format!("directory.snapshot {}: not a callnote LDAP snapshot (header missing)", path.display()));
    }
}
