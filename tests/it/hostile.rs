//! The whole file-to-mail path under hostile or accidental input: a side file swapped for a
//! link while it is being read, a header that names another item's file, a header of 100k
//! keys, ids of 5,000 characters, line breaks and bidi overrides from the directory and from
//! OCS XML. Each test reproduces the attack and asserts the exact outcome. (Memory under a
//! multi-GB side file is measured in `tests/memory.rs`, a binary of its own.)

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use base64::Engine as _;
use callnote::config::Config;
use callnote::enrich::directory;
use callnote::intake::{self, IntakeErrorKind, IntakeOptions, MAX_ID_CHARS, MAX_LINES, Parsed};
use callnote::pipeline::{Error, Outcome, Pipeline, Prepared};
use callnote::render::Templates;
use mail_parser::MessageParser;

use crate::common::fixture;

const CONFIG: &str = "[dialplan]\nregion = \"US\"\n[templates]\ntimezone = \"UTC\"\n\
                      [mail]\nfrom = \"Voice Mail <voicemail@contoso.com>\"\n";
const WAV: &str = "575a75dc-3e35-4640-97c2-4c7f3f274236.wav";
const EVIL: &str = "Bcc: evil@x.example";

fn pipeline(ldif: Option<&Path>) -> Pipeline {
    let config = Config::from_toml(CONFIG, Path::new("test.toml")).expect("test config");
    let directory = ldif.map(|path| {
        let index = directory::load_file(path, &config.dialplan).expect("directory");
        Arc::new(index) as Arc<dyn directory::Directory>
    });
    Pipeline::new(config, Templates::builtin(), directory, Some("2026-01-02T03:04:05Z".parse().unwrap()))
}

fn prepared(result: Result<Outcome, Error>) -> Prepared {
    match result {
        Ok(Outcome::Prepared(p)) => *p,
        Ok(Outcome::Skipped(t)) => panic!("skipped as {t}"),
        Err(e) => panic!("{e:#}"),
    }
}

/// A fixture header copied into `dir`, with `edit` applied to its text.
fn place(dir: &Path, fixture_name: &str, as_name: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(fixture(fixture_name)).unwrap();
    let path = dir.join(as_name);
    std::fs::write(&path, edit(text)).unwrap();
    path
}

fn intake_error(path: &Path) -> callnote::intake::IntakeError {
    match intake::read_file(path, &IntakeOptions::default()) {
        Err(e) => e,
        Ok(other) => panic!("expected an error, got {other:?}"),
    }
}

// --- a side file swapped for a link --------------------------------------------------------

#[test]
fn a_side_file_swapped_for_a_link_never_attaches_what_the_link_points_to() {
    let outside = tempfile::tempdir().unwrap();
    let secret_path = outside.path().join("payroll.wav");
    // A valid RIFF/WAVE magic, so that only the link check can keep it out.
    let marker = b"TOP-SECRET-PAYROLL";
    let mut secret = b"RIFF\x24\0\0\0WAVEfmt ".to_vec();
    secret.extend_from_slice(marker);
    std::fs::write(&secret_path, &secret).unwrap();

    let spool = tempfile::tempdir().unwrap();
    let header = place(spool.path(), "vm-legacy-blog-shape.txt", "vm.txt", |t| t);
    let real = std::fs::read(fixture(WAV)).unwrap();
    let wav = spool.path().join(WAV);
    std::fs::write(&wav, &real).unwrap();

    // The attacker keeps replacing the .wav, atomically, by a link to the secret and back.
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let swapper = {
        let (stop, swaps, dir, wav, real) = (stop.clone(), swaps.clone(), spool.path().to_owned(), wav.clone(), real.clone());
        std::thread::spawn(move || {
            let (link, copy) = (dir.join(".link"), dir.join(".copy"));
            // The copy is written while the real file is in place, so that each state
            // lasts about as long as the other, however loaded the machine is.
            while !stop.load(Ordering::Relaxed) {
                std::fs::write(&copy, &real).unwrap();
                std::os::unix::fs::symlink(&secret_path, &link).unwrap();
                std::fs::rename(&link, &wav).unwrap();
                std::thread::sleep(std::time::Duration::from_micros(200));
                std::fs::rename(&copy, &wav).unwrap();
                std::thread::sleep(std::time::Duration::from_micros(200));
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let p = pipeline(None);
    // The header's codec is Gsm: what goes out is the real recording as G.711 WAV.
    let expected = match callnote::audio::encode(&real[..], u64::MAX, callnote::audio::Output::G711) {
        Ok(callnote::audio::Encoded::Audio(bytes)) => bytes,
        other => panic!("the fixture encodes: {other:?}"),
    };
    let (mut attached, mut refused) = (0, 0);
    // Bounded: at least 200 copies, and at most 3,000 until both outcomes were seen.
    for round in 0..3_000 {
        if round >= 200 && attached > 0 && refused > 0 {
            break;
        }
        match p.prepare_file(&header) {
            Ok(Outcome::Prepared(prepared)) => {
                let bytes = prepared.message.formatted();
                assert!(!bytes.windows(marker.len()).any(|w| w == marker), "the secret reached the mail");
                let mail = MessageParser::default().parse(&bytes).expect("MIME");
                let audio = mail.attachment(0).expect("the audio").contents();
                assert_eq!(audio, expected.as_slice(), "round {round}: exactly the real recording is attached");
                attached += 1;
            }
            Err(Error::Intake(e)) => {
                assert!(matches!(&e.kind, IntakeErrorKind::SideFileNotRegular { name } if name == WAV), "{e}");
                assert_eq!(e.line, Some(8));
                refused += 1;
            }
            other => panic!("round {round}: unexpected {other:?}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(swaps.load(Ordering::Relaxed) > 0);
    assert!(attached > 0 && refused > 0, "the race was not exercised: {attached} attached, {refused} refused");
}

// --- a header that names a file that is not its own ----------------------------------------

#[test]
fn a_header_can_only_name_a_side_file_of_its_kind_and_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let other_header = place(dir.path(), "mc-legacy-blog-shape.txt", "other-item.txt", |t| t);
    let before = std::fs::read(&other_header).unwrap();

    // a voicemail naming another item's header
    let vm =
        place(dir.path(), "vm-legacy-blog-shape.txt", "vm.txt", |t| t.replace(&format!(r"voicemail\{WAV}"), r"voicemail\other-item.txt"));
    let err = intake_error(&vm);
    assert_eq!(
        err.to_string(),
        format!(
            "{}:8: attachment `E:\\Program Files\\Microsoft\\Exchange Server\\UnifiedMessaging\\voicemail\\other-item.txt` in AttachmentName is not a .wav file",
            vm.display()
        )
    );

    // a voicemail whose .wav is a second name (hard link) of another item's recording
    std::fs::write(dir.path().join("their.wav"), std::fs::read(fixture(WAV)).unwrap()).unwrap();
    std::fs::hard_link(dir.path().join("their.wav"), dir.path().join(WAV)).unwrap();
    let err = intake_error(&vm_with_own_wav(dir.path()));
    assert_eq!(err.line, Some(8));
    assert_eq!(err.kind.to_string(), format!("side file `{WAV}` has 2 names (hard links); only a file of its own is attached"));

    // a skipped type names a side file, existing or not: nothing is opened, nothing goes with it
    for named in ["other-item.txt", "missing.wav"] {
        let xso = place(dir.path(), "xsovoicemail-2013.txt", "xso.txt", |t| t.replace("220f1eed-5b92-4853-80b9-a53dc794ffbf.wav", named));
        assert_eq!(intake::read_file(&xso, &IntakeOptions::default()).unwrap(), Parsed::Skipped("XSOVoiceMail".into()));
        assert!(matches!(pipeline(None).prepare_file(&xso), Ok(Outcome::Skipped(t)) if t == "XSOVoiceMail"));
    }
    assert_eq!(std::fs::read(&other_header).unwrap(), before);
}

fn vm_with_own_wav(dir: &Path) -> PathBuf {
    place(dir, "vm-legacy-blog-shape.txt", "vm-own.txt", |t| t)
}

#[test]
fn a_header_that_is_a_link_or_a_fifo_is_refused_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let target = place(outside.path(), "mc-legacy-blog-shape.txt", "mc.txt", |t| t);
    let link = dir.path().join("link.txt");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = intake_error(&link);
    assert!(matches!(err.kind, IntakeErrorKind::NotRegularFile));
    assert_eq!(err.to_string(), format!("{}: not a regular file (a link, folder, FIFO or device is never read)", link.display()));
    assert!(!err.is_transient());

    let fifo = dir.path().join("fifo.txt");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    assert!(matches!(intake_error(&fifo).kind, IntakeErrorKind::NotRegularFile));
}

// --- quadratic work -----------------------------------------------------------------------

/// A 1 MiB header of short distinct keys (about 116,000 of them).
fn many_keys(bytes: usize) -> String {
    let mut text = String::from("MessageType : MissedCall\r\nRecipientAddress : a@contoso.com\r\nCallId : c-1\r\n");
    let mut i = 0;
    while text.len() < bytes - 16 {
        text.push_str(&format!("K{i}:v\r\n"));
        i += 1;
    }
    text
}

#[test]
fn a_header_of_100k_keys_is_refused_at_the_line_limit() {
    let text = many_keys(1 << 20);
    assert!(text.lines().count() > 100_000);
    let path = Path::new("spool/100k.txt");
    let err = intake::parse(text.as_bytes(), path, &IntakeOptions::default()).unwrap_err();
    // The work stops at the first line past the limit: one pass over at most MAX_LINES lines.
    assert_eq!(err.line, Some(MAX_LINES + 1));
    assert_eq!(err.to_string(), format!("spool/100k.txt:{}: too many lines: over 10000", MAX_LINES + 1));

    // just under the limit every key is read, and a repeat is still found, on its line
    let mut under: String = text.lines().take(MAX_LINES - 1).map(|l| format!("{l}\r\n")).collect();
    let Parsed::Event(e) = intake::parse(under.as_bytes(), path, &IntakeOptions::default()).unwrap() else { panic!() };
    assert_eq!(e.fields.len(), MAX_LINES - 1);
    under.push_str("k5000:again\r\n");
    let err = intake::parse(under.as_bytes(), path, &IntakeOptions::default()).unwrap_err();
    assert_eq!(err.to_string(), format!("spool/100k.txt:{MAX_LINES}: duplicate key `k5000` (first on line 5004)"));
}

// --- header lines over 998 octets -----------------------------------------------------------

#[test]
fn a_5000_character_call_id_or_caller_id_is_bad_input_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let long = "9".repeat(5_000);
    let cases = [("CallId : 6e838afc-7d1a-4ad5-b1e3-fde1990e11e7", "CallId", 7), ("CallerId : +12895550147", "CallerId", 2)];
    for (line, key, number) in cases {
        let header = place(dir.path(), "mc-legacy-blog-shape.txt", "mc.txt", |t| t.replace(line, &format!("{key} : {long}")));
        let err = match pipeline(None).prepare_file(&header) {
            Err(Error::Intake(e)) => e,
            other => panic!("{key}: expected bad input, got {other:?}"),
        };
        assert_eq!(
            err.to_string(),
            format!(
                "{}:{number}: {key} is too long: 5000 characters (at most {MAX_ID_CHARS}), starting `{}…`",
                header.display(),
                "9".repeat(32)
            )
        );
        assert!(!err.is_transient());
    }

    // the same from OCS XML, named on the header line that holds the XML
    let header = place(dir.path(), "ocs-legacy-blog-shape.txt", "ocs.txt", |t| {
        t.replace("<CallId>7b487c48-c388-4446-b285-e6420e3073a8</CallId>", &format!("<CallId>{long}</CallId>"))
    });
    let err = intake_error(&header);
    assert_eq!(err.to_string(), format!("{}:2: `<CallId>` in OCS XML is too long: 5000 characters (at most 256)", header.display()));
}

/// An LDIF entry for the caller `+1 289 555 0147` with the given extra attribute lines.
fn ldif_person(dir: &Path, attributes: &str) -> PathBuf {
    let path = dir.join("directory.ldif");
    let text = format!(
        "dn: uid=caller,ou=People,dc=contoso,dc=com\nobjectClass: inetOrgPerson\nuid: caller\n\
         mobile: +1 289 555 0147\nmail: caller@contoso.com\n{attributes}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_header_line_stays_under_998_bytes_whatever_the_directory_holds() {
    let dir = tempfile::tempdir().unwrap();
    // a display name of 5,000 characters without a space to fold at
    let ldif = ldif_person(dir.path(), &format!("displayName: {}", "N".repeat(5_000)));
    let header = place(dir.path(), "vm-legacy-blog-shape.txt", "vm.txt", |t| t);
    std::fs::copy(fixture(WAV), dir.path().join(WAV)).unwrap();
    let p = prepared(pipeline(Some(&ldif)).prepare_file(&header));
    assert_eq!(p.event.caller.name.as_deref().map(str::len), Some(5_000));

    let bytes = p.message.formatted();
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
    for line in bytes[..head_end].split(|&b| b == b'\n') {
        assert!(line.len() <= 998, "a header line of {} bytes: {}", line.len(), String::from_utf8_lossy(&line[..60]));
    }
    // the X- header read as text (RFC 2047 decoded) too
    let sender_header = mail_parser::HeaderName::Other("X-VoiceMessageSenderName".into());
    let parser = MessageParser::new().with_mime_headers().header_text(mail_parser::HeaderName::Subject);
    let mail = parser.header_text(sender_header).parse(&bytes).expect("MIME");
    let sender = mail.header("X-VoiceMessageSenderName").and_then(|h| h.as_text()).expect("the sender's name");
    assert!(sender.starts_with("NNNN") && sender.ends_with("N…") && sender.len() <= 900, "{}: {sender}", sender.len());
    let subject = mail.subject().expect("a subject");
    assert!(subject.starts_with("Voice mail from NNN") && subject.len() <= 900, "{}: {subject}", subject.len());
    // 4,000 samples of G.711 and a 58-byte header: the 8,044-byte recording in the Gsm fallback
    assert_eq!(mail.attachment(0).map(|a| a.contents().len()), Some(4_058), "the audio still goes");
}

// --- line breaks and bidi overrides from the directory and from OCS XML -----------------------

fn assert_no_injected_line(p: &Prepared) {
    let r = &p.rendered;
    for part in [&r.subject, &r.text, &r.html] {
        assert!(!part.contains('\u{202E}'), "a bidi override reached the mail: {part}");
        assert!(!part.lines().any(|l| l.trim_start().starts_with("Bcc:")), "an injected line:\n{part}");
    }
    let bytes = p.message.formatted();
    let mail = MessageParser::default().parse(&bytes).expect("MIME");
    assert!(mail.bcc().is_none() && mail.header_raw("Bcc").is_none());
    let text = mail.body_text(0).expect("a text part");
    assert!(!text.lines().any(|l| l.trim_start().starts_with("Bcc:")), "{text}");
    assert!(!String::from_utf8_lossy(&bytes).contains('\u{202E}'));
}

#[test]
fn crlf_and_bidi_overrides_from_the_directory_are_flattened() {
    let dir = tempfile::tempdir().unwrap();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let attributes = format!(
        "displayName:: {}\ntitle:: {}",
        b64(&format!("Priya Raman\r\n{EVIL}\u{202E}")),
        b64(&format!("Manager\r\n{EVIL}\r\n\u{2066}x\u{2069}"))
    );
    let ldif = ldif_person(dir.path(), &attributes);
    let header = place(dir.path(), "mc-legacy-blog-shape.txt", "mc.txt", |t| t);
    let p = prepared(pipeline(Some(&ldif)).prepare_file(&header));
    let caller = &p.event.caller;
    assert_eq!(caller.name.as_deref(), Some("Priya Raman Bcc: evil@x.example"));
    assert_eq!(caller.person.as_ref().and_then(|x| x.title.as_deref()), Some("Manager Bcc: evil@x.example x"));
    assert!(p.rendered.text.contains("Priya Raman Bcc: evil@x.example"), "{}", p.rendered.text);
    assert_no_injected_line(&p);
}

#[test]
fn crlf_and_bidi_overrides_from_ocs_xml_are_flattened() {
    let dir = tempfile::tempdir().unwrap();
    let header = place(dir.path(), "ocs-legacy-blog-shape.txt", "ocs.txt", |t| {
        t.replace("<MissedReason>", &format!("<Subject>Call me&#13;&#10;{EVIL}&#x202E;</Subject><MissedReason>"))
            .replace("<From>sip:+12895550147@contoso.com;user=phone</From>", &format!("<From>+12895550147&#13;&#10;{EVIL}</From>"))
    });
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/directory.ldif");
    let p = prepared(pipeline(Some(&directory)).prepare_file(&header));
    assert_eq!(p.event.subject.as_deref(), Some("Call me Bcc: evil@x.example"));
    assert_eq!(p.event.caller.raw.as_deref(), Some("+12895550147 Bcc: evil@x.example"));
    assert!(p.rendered.text.contains("Call me Bcc: evil@x.example"), "{}", p.rendered.text);
    assert_no_injected_line(&p);
}
