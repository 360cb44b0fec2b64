//! The side file of a header (voicemail `.wav`, fax `.tif`): its base name, and opening it.
//!
//! Consumes the `AttachmentName`/`AttachmentPath` value (an absolute Windows path on the
//! Exchange server, which does not exist here) and the header file's path; produces an
//! [`Attachment`] holding an open handle on the file of the same base name in the header's
//! own folder. The file is opened once, without following a link ([`super::open`]), and the
//! *handle* is checked: a regular file, with no other name (one hard link), whose first 12
//! bytes are the kind's magic number. Everything later reads that handle, never the path.
//! Never looks anywhere else, never follows a base name with separators or `..`. Returns
//! [`Problem`]s with `SideFile*` [`IntakeErrorKind`]s, on the line of the attachment field.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::error::{IntakeErrorKind, Problem};
use super::open::{self, ReadAt};
use crate::event::{Attachment, SideHandle};

/// What a side file must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SideKind {
    /// Voicemail audio: `.wav`, RIFF/WAVE.
    Wav,
    /// Fax image: `.tif`, little- or big-endian TIFF.
    Tif,
}

impl SideKind {
    /// Whether `name` has this kind's extension (any case; `.tiff` accepted for faxes).
    pub(crate) fn has_extension(self, name: &str) -> bool {
        let ext = name.rsplit_once('.').map(|(_, ext)| ext).unwrap_or("");
        match self {
            SideKind::Wav => ext.eq_ignore_ascii_case("wav"),
            SideKind::Tif => ext.eq_ignore_ascii_case("tif") || ext.eq_ignore_ascii_case("tiff"),
        }
    }

    /// The kind whose content type `content_type` is (as [`Attachment::content_type`] holds it).
    fn of_content_type(content_type: &str) -> Option<SideKind> {
        [SideKind::Wav, SideKind::Tif].into_iter().find(|k| k.content_type().eq_ignore_ascii_case(content_type))
    }

    fn content_type(self) -> &'static str {
        match self {
            SideKind::Wav => "audio/wav",
            SideKind::Tif => "image/tiff",
        }
    }

    fn description(self) -> &'static str {
        match self {
            SideKind::Wav => "RIFF/WAVE audio",
            SideKind::Tif => "TIFF image",
        }
    }

    fn magic_matches(self, head: &[u8]) -> bool {
        match self {
            SideKind::Wav => head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE",
            SideKind::Tif => head.starts_with(b"II*\0") || head.starts_with(b"MM\0*"),
        }
    }
}

/// The base name of a Windows or POSIX path (after the last `\` or `/`), if it is a usable
/// plain file name: not empty, not `.`/`..`, no control characters, no drive colon.
pub(crate) fn base_name(value: &str) -> Option<&str> {
    let name = value.rsplit(['\\', '/']).next().unwrap_or(value);
    let plain = !name.is_empty() && name != "." && name != ".." && !name.contains(':') && !name.chars().any(char::is_control);
    plain.then_some(name)
}

/// The side file an `AttachmentName`/`AttachmentPath` value can name: its base name when that
/// is a usable name of a voicemail (`.wav`) or fax (`.tif`) file, else `None` (a header, an
/// `.msg`, `null`, a path to a folder). For moving an item's files without parsing it.
pub fn side_file_name(value: &str) -> Option<&str> {
    base_name(value).filter(|name| [SideKind::Wav, SideKind::Tif].iter().any(|kind| kind.has_extension(name)))
}

/// A side file the header names and requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SideRef {
    /// Validated base name ([`base_name`]).
    pub name: String,
    /// Line of the `AttachmentName`/`AttachmentPath` field.
    pub line: usize,
    pub kind: SideKind,
}

/// Opens `side` in the folder of `header` and checks that it is what it claims to be.
pub(crate) fn locate(header: &Path, side: &SideRef) -> Result<Attachment, Problem> {
    let dir = match header.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    open_checked(dir, &side.name, side.kind).map_err(|kind| Problem::at(side.line, kind))
}

/// Opens an attachment again from its folder and name, with every check of [`locate`]: for
/// an event that carries no handle (one built elsewhere, or cloned from serialized data).
pub(crate) fn reopen(attachment: &Attachment) -> Result<SideHandle, IntakeErrorKind> {
    let name = &attachment.file_name;
    let kind = SideKind::of_content_type(&attachment.content_type)
        .filter(|kind| base_name(name) == Some(name.as_str()) && kind.has_extension(name))
        .ok_or_else(|| IntakeErrorKind::SideFileNotRegular { name: name.clone() })?;
    let dir = attachment.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let opened = open_checked(dir, name, kind)?.opened;
    opened.ok_or_else(|| IntakeErrorKind::SideFileNotRegular { name: name.clone() })
}

/// The one place a side file is opened: once, by base name in `dir`, then checked by handle.
fn open_checked(dir: &Path, name: &str, kind: SideKind) -> Result<Attachment, IntakeErrorKind> {
    let path = dir.join(name);
    let io = |source| IntakeErrorKind::SideFileIo { name: name.to_owned(), source };
    let not_regular = || IntakeErrorKind::SideFileNotRegular { name: name.to_owned() };
    let file = match open::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(IntakeErrorKind::SideFileMissing { name: name.to_owned(), dir: PathBuf::from(dir) });
        }
        Err(e) if open::is_not_a_file(&e) => return Err(not_regular()),
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    let links = open::links(&meta);
    if links > 1 {
        return Err(IntakeErrorKind::SideFileLinked { name: name.to_owned(), links });
    }
    let mut head = Vec::with_capacity(12);
    ReadAt::new(&file).take(12).read_to_end(&mut head).map_err(io)?;
    if !kind.magic_matches(&head) {
        return Err(IntakeErrorKind::SideFileWrongMagic { name: name.to_owned(), expected: kind.description() });
    }
    Ok(Attachment {
        file_name: name.to_owned(),
        path,
        content_type: kind.content_type().to_owned(),
        size_bytes: meta.len(),
        opened: Some(SideHandle::new(file)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_name_of_windows_and_posix_paths() {
        assert_eq!(base_name(r"E:\Program Files\Microsoft\Exchange Server\UnifiedMessaging\voicemail\575a.wav"), Some("575a.wav"));
        assert_eq!(base_name("/var/spool/x.tif"), Some("x.tif"));
        assert_eq!(base_name("x.wav"), Some("x.wav"));
        assert_eq!(base_name(r"C:\a\..\b/c\d.wav"), Some("d.wav"));
        for bad in [r"C:\voicemail\", r"C:\voicemail\..", "..", ".", "C:x.wav", "a\u{1}.wav", ""] {
            assert_eq!(base_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_wav_and_tif_names_are_side_files() {
        assert_eq!(side_file_name(r"C:\UM\voicemail\a.wav"), Some("a.wav"));
        assert_eq!(side_file_name(r"C:\UM\voicemail\f.TIF"), Some("f.TIF"));
        for not in [r"C:\UM\voicemail\other.txt", r"C:\UM\x.msg", "null", r"C:\UM\", "..", "Voice Mail (14 seconds).mp3"] {
            assert_eq!(side_file_name(not), None, "{not}");
        }
    }

    #[test]
    fn extensions_and_magic() {
        assert!(SideKind::Wav.has_extension("a.WAV"));
        assert!(!SideKind::Wav.has_extension("a.mp3"));
        assert!(!SideKind::Wav.has_extension("wav"));
        assert!(SideKind::Tif.has_extension("a.tif"));
        assert!(SideKind::Tif.has_extension("a.TIFF"));
        assert!(SideKind::Wav.magic_matches(b"RIFF\x24\x1f\0\0WAVEfmt "));
        assert!(!SideKind::Wav.magic_matches(b"RIFF\x24\x1f\0\0AVI "));
        assert!(!SideKind::Wav.magic_matches(b"RIFF"));
        assert!(SideKind::Tif.magic_matches(b"II*\0\x08\0\0\0"));
        assert!(SideKind::Tif.magic_matches(b"MM\0*\0\0\0\x08"));
        assert!(!SideKind::Tif.magic_matches(b"RIFF"));
    }

    #[test]
    fn locate_checks_presence_kind_and_magic() {
        let dir = tempfile::tempdir().unwrap();
        let header = dir.path().join("h.txt");
        let side = |name: &str, kind| SideRef { name: name.into(), line: 7, kind };

        std::fs::write(dir.path().join("a.wav"), b"RIFF\0\0\0\0WAVEdata").unwrap();
        let found = locate(&header, &side("a.wav", SideKind::Wav)).unwrap();
        assert_eq!(found.path, dir.path().join("a.wav"));
        assert_eq!((found.content_type.as_str(), found.size_bytes), ("audio/wav", 16));

        let missing = locate(&header, &side("b.wav", SideKind::Wav)).unwrap_err();
        assert_eq!(missing.line, Some(7));
        assert_eq!(missing.kind.to_string(), format!("side file `b.wav` not found in {}", dir.path().display()));

        std::fs::write(dir.path().join("c.wav"), b"ID3\x03junk").unwrap();
        let wrong = locate(&header, &side("c.wav", SideKind::Wav)).unwrap_err();
        assert_eq!(wrong.kind.to_string(), "side file `c.wav` is not a RIFF/WAVE audio file (its first bytes do not match)");

        std::fs::create_dir(dir.path().join("d.tif")).unwrap();
        let not_file = locate(&header, &side("d.tif", SideKind::Tif)).unwrap_err();
        assert_eq!(not_file.kind.to_string(), "side file `d.tif` is not a regular file");
    }

    #[test]
    fn relative_header_looks_in_current_folder() {
        let err = locate(Path::new("h.txt"), &SideRef { name: "zz-none.wav".into(), line: 1, kind: SideKind::Wav }).unwrap_err();
        assert_eq!(err.kind.to_string(), "side file `zz-none.wav` not found in .");
    }
}
