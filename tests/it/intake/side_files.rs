//! The side file is found by base name in the header's own folder and nowhere else, must
//! be what it claims to be, and is required for a voicemail with Duration > 0 and a fax.
//! Also the bounded read of `read_file`.

use std::path::{Path, PathBuf};

use callnote::intake::{self, IntakeErrorKind, IntakeOptions, MAX_FILE_BYTES, Parsed};

use crate::common::fixture;

const WAV: &str = "575a75dc-3e35-4640-97c2-4c7f3f274236.wav";
const TIF: &str = "5c94cd03-f225-4272-8071-81eb2e385e0c.tif";

/// Copies a fixture header (and, optionally, a side file under a name) into `dir`.
fn place(dir: &Path, header: &str, side: Option<(&str, &[u8])>) -> PathBuf {
    let path = dir.join(header);
    std::fs::copy(fixture(header), &path).unwrap();
    if let Some((name, bytes)) = side {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    path
}

fn real(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

#[test]
fn found_in_the_headers_own_folder() {
    let dir = tempfile::tempdir().unwrap();
    let header = place(dir.path(), "vm-legacy-blog-shape.txt", Some((WAV, &real(WAV))));
    let Parsed::Event(e) = intake::read_file(&header, &IntakeOptions::default()).unwrap() else { panic!() };
    let a = e.attachment.unwrap();
    assert_eq!((a.file_name.as_str(), a.path.clone(), a.size_bytes), (WAV, dir.path().join(WAV), 8044));
}

#[test]
fn missing_side_file_names_the_attachment_line() {
    let dir = tempfile::tempdir().unwrap();
    let header = place(dir.path(), "vm-legacy-blog-shape.txt", None);
    let err = intake::read_file(&header, &IntakeOptions::default()).unwrap_err();
    assert!(matches!(&err.kind, IntakeErrorKind::SideFileMissing { name, dir: d } if name == WAV && d == dir.path()));
    assert_eq!(err.to_string(), format!("{}:8: side file `{WAV}` not found in {}", header.display(), dir.path().display()));
}

#[test]
fn never_looked_for_anywhere_else() {
    // the wav sits one folder up (and the Windows path names yet another folder)
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(WAV), real(WAV)).unwrap();
    let sub = dir.path().join("voicemail");
    std::fs::create_dir(&sub).unwrap();
    let header = place(&sub, "vm-legacy-blog-shape.txt", None);
    let err = intake::read_file(&header, &IntakeOptions::default()).unwrap_err();
    assert!(matches!(err.kind, IntakeErrorKind::SideFileMissing { .. }), "{err}");

    // a traversal in AttachmentName only contributes its base name
    let text = std::fs::read_to_string(&header)
        .unwrap()
        .replace(r"E:\Program Files\Microsoft\Exchange Server\UnifiedMessaging\voicemail\575a", r"..\..\575a");
    std::fs::write(&header, text).unwrap();
    let err = intake::read_file(&header, &IntakeOptions::default()).unwrap_err();
    assert!(matches!(&err.kind, IntakeErrorKind::SideFileMissing { dir, .. } if *dir == sub), "{err}");
}

#[test]
fn side_file_must_have_the_right_magic() {
    let dir = tempfile::tempdir().unwrap();
    let header = place(dir.path(), "vm-legacy-blog-shape.txt", Some((WAV, b"ID3\x04\0\0\0\0\0\0mp3 data")));
    let err = intake::read_file(&header, &IntakeOptions::default()).unwrap_err();
    assert_eq!(err.line, Some(8));
    assert_eq!(err.kind.to_string(), format!("side file `{WAV}` is not a RIFF/WAVE audio file (its first bytes do not match)"));

    let header = place(dir.path(), "fax-2013-three-pages.txt", Some((TIF, &real(WAV))));
    let err = intake::read_file(&header, &IntakeOptions::default()).unwrap_err();
    assert_eq!(err.line, Some(11));
    assert_eq!(err.kind.to_string(), format!("side file `{TIF}` is not a TIFF image file (its first bytes do not match)"));
}

#[test]
fn a_symlink_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let header = place(dir.path(), "vm-legacy-blog-shape.txt", None);
    std::os::unix::fs::symlink(fixture(WAV), dir.path().join(WAV)).unwrap();
    let err = intake::read_file(&header, &IntakeOptions::default()).unwrap_err();
    assert_eq!(err.kind.to_string(), format!("side file `{WAV}` is not a regular file"));
}

#[test]
fn zero_second_voicemail_needs_no_side_file() {
    let dir = tempfile::tempdir().unwrap();
    let header = dir.path().join("0452b4d7-0ba5-4c52-bd6e-689c633e0ab4.txt");
    let text = std::fs::read_to_string(fixture("vm-2013-smtpvoicemail-private.txt")).unwrap();
    let text = text.replace("Duration : 64", "Duration : 0").replace(
        r"C:\Program Files\Microsoft\Exchange Server\V15\UnifiedMessaging\voicemail\0452b4d7-0ba5-4c52-bd6e-689c633e0ab4.wav",
        "null",
    );
    std::fs::write(&header, text).unwrap();
    let Parsed::Event(e) = intake::read_file(&header, &IntakeOptions::default()).unwrap() else { panic!() };
    assert_eq!((e.duration_secs, e.attachment), (Some(0), None));
    assert_eq!(e.fields["AttachmentPath"], "null");
}

#[test]
fn a_relative_header_path_gives_a_relative_attachment_path() {
    let dir = tempfile::tempdir().unwrap();
    place(dir.path(), "fax-2013-three-pages.txt", Some((TIF, &real(TIF))));
    // the same folder, reached from the working directory by `../..`
    let cwd = std::env::current_dir().unwrap();
    let up = "../".repeat(cwd.components().count() - 1);
    let relative = Path::new(&up).join(dir.path().strip_prefix("/").unwrap());
    let header = relative.join("fax-2013-three-pages.txt");
    assert!(header.is_relative());
    let Parsed::Event(e) = intake::read_file(&header, &IntakeOptions::default()).unwrap() else { panic!() };
    let a = e.attachment.unwrap();
    assert_eq!(a.path, relative.join(TIF));
    assert_eq!((a.content_type.as_str(), a.size_bytes), ("image/tiff", 392));
}

#[test]
fn unreadable_file_is_a_transient_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone.txt");
    let err = intake::read_file(&path, &IntakeOptions::default()).unwrap_err();
    assert!(matches!(&err.kind, IntakeErrorKind::Io(e) if e.kind() == std::io::ErrorKind::NotFound));
    assert!(err.is_transient());
    assert_eq!(err.to_string(), format!("{}: cannot read file", path.display()));
}

#[test]
fn over_one_mebibyte_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.txt");
    let mut text = std::fs::read_to_string(fixture("mc-legacy-blog-shape.txt")).unwrap();
    while text.len() <= 3 * MAX_FILE_BYTES {
        // long lines, so that the line count stays under its own limit
        text.push_str(&format!("X-Padding : {}\r\n", "0123456789abcdef".repeat(12)));
    }
    std::fs::write(&path, &text).unwrap();
    let err = intake::read_file(&path, &IntakeOptions::default()).unwrap_err();
    assert!(matches!(err.kind, IntakeErrorKind::FileTooLarge { limit } if limit == MAX_FILE_BYTES));
    assert_eq!(err.to_string(), format!("{}: file too large: over 1048576 bytes", path.display()));
    // exactly at the limit is still read (and here fails only on its padding keys' duplicates)
    std::fs::write(&path, &text.as_bytes()[..MAX_FILE_BYTES]).unwrap();
    let err = intake::read_file(&path, &IntakeOptions::default()).unwrap_err();
    assert!(matches!(&err.kind, IntakeErrorKind::DuplicateKey { key, first_line: 9 } if key == "X-Padding"), "{err}");
}
