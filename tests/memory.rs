//! Peak heap while a notification is prepared from a huge side file: a sparse multi-GB .wav
//! must cost next to nothing (it is refused by its size on the open handle, before any read),
//! a file that grows past the limit after it was opened is read no further than the limit,
//! and an allowed one is held once, encoded (never the raw bytes as well).
//!
//! Measured with a counting global allocator, in a test binary of its own so that no other
//! test's allocations are counted; the tests here take a lock and run one at a time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use callnote::config::Config;
use callnote::event::OmitReason;
use callnote::intake::Parsed;
use callnote::pipeline::{Outcome, Pipeline, Prepared};
use callnote::render::Templates;
use mail_parser::MessageParser;

/// Counts the bytes allocated now and the most allocated since the last [`peak_during`].
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is passed on to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // counted as the old and the new block both alive, as they may be while copying
        grew(new_size);
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One measurement at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const MIB: usize = 1 << 20;

/// The result of `f` and the most heap it held at once above what was held before.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = CURRENT.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let result = f();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    eprintln!("peak heap: {peak} bytes");
    (result, peak)
}

const WAV: &str = "575a75dc-3e35-4640-97c2-4c7f3f274236.wav";

fn pipeline(max_attachment_mb: u64) -> Pipeline {
    let toml = format!("[mail]\nfrom = \"Voice Mail <voicemail@contoso.com>\"\n[delivery]\nmax_attachment_mb = {max_attachment_mb}\n");
    let config = Config::from_toml(&toml, Path::new("test.toml")).expect("test config");
    Pipeline::new(config, Templates::builtin(), None, Some("2026-01-02T03:04:05Z".parse().unwrap()))
}

/// The blog-shape voicemail header in `dir`, with its .wav of `len` bytes (sparse: a RIFF
/// header, then zeros that take no disk).
fn voicemail(dir: &Path, len: u64) -> (PathBuf, PathBuf) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let header = dir.join("vm.txt");
    std::fs::copy(fixtures.join("vm-legacy-blog-shape.txt"), &header).unwrap();
    let wav = dir.join(WAV);
    std::fs::write(&wav, b"RIFF\x24\xff\xff\xffWAVEfmt ").unwrap();
    std::fs::OpenOptions::new().write(true).open(&wav).unwrap().set_len(len).unwrap();
    (header, wav)
}

fn prepared(outcome: Result<Outcome, callnote::pipeline::Error>) -> Prepared {
    match outcome {
        Ok(Outcome::Prepared(p)) => *p,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Goes out, without an attachment, saying why.
fn assert_sent_without_audio(p: &Prepared) {
    assert_eq!(p.event.attachment_omitted, Some(OmitReason::TooLarge));
    let bytes = p.message.formatted();
    let mail = MessageParser::default().parse(&bytes).expect("MIME");
    assert_eq!(mail.attachment_count(), 0);
    let text = mail.body_text(0).expect("a text part");
    assert!(text.contains("The recording is too large to send by e-mail, so it is not attached."), "{text}");
    assert!(!text.contains("The recording is attached."), "{text}");
}

#[test]
fn a_sparse_4_gib_wav_is_left_out_without_being_read() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (header, _) = voicemail(dir.path(), 4 << 30);
    let p = pipeline(20);
    let (p, peak) = peak_during(|| prepared(p.prepare_file(&header)));
    assert_eq!(p.event.attachment.as_ref().map(|a| a.size_bytes), Some(4 << 30));
    assert_sent_without_audio(&p);
    // What rendering and composing a small notification take; nothing of the 4 GiB.
    assert!(peak < 4 * MIB, "peak heap {peak} bytes");
}

#[test]
fn a_wav_that_grows_past_the_limit_after_opening_is_read_no_further() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (header, wav) = voicemail(dir.path(), 512 << 10);
    let p = pipeline(1);
    let Parsed::Event(event) = p.parse_file(&header).unwrap() else { panic!("an event") };
    assert_eq!(event.attachment_omitted, None, "512 KiB is under the 1 MB limit");
    // same file (the handle intake holds), now 3 GiB
    std::fs::OpenOptions::new().write(true).open(&wav).unwrap().set_len(3 << 30).unwrap();
    let (p, peak) = peak_during(|| p.prepare_event(*event, &header).expect("a message"));
    assert_sent_without_audio(&p);
    // At most the limit (1 MiB) and one read block were read; their base64 is under 1.5 MiB.
    assert!(peak < 6 * MIB, "peak heap {peak} bytes");
}

#[test]
fn an_allowed_wav_is_held_once_encoded_never_also_raw() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let raw = 15 * MIB;
    let (header, _) = voicemail(dir.path(), raw as u64);
    let p = pipeline(20);
    let (p, peak) = peak_during(|| prepared(p.prepare_file(&header)));
    assert_eq!(p.event.attachment_omitted, None);
    let encoded = raw.div_ceil(57) * 78; // 76 characters and CRLF per 57 bytes
    // The encoded copy plus rendering; reading it whole first would add the raw 15 MiB.
    assert!(peak < encoded + 4 * MIB, "peak heap {peak} bytes for {encoded} encoded bytes");
    assert!(peak >= encoded, "the attachment is held encoded: {peak}");
    let bytes = p.message.formatted();
    let mail = MessageParser::default().parse(&bytes).expect("MIME");
    assert_eq!(mail.attachment(0).map(|a| a.contents().len()), Some(raw));
}

/// A valid 16-bit PCM mono 8 kHz .wav of `len` bytes (sparse: silence) beside a copy of the
/// blog-shape header whose codec is `codec`.
fn voicemail_in(dir: &Path, len: u32, codec: &str) -> PathBuf {
    let (header, wav) = voicemail(dir, u64::from(len));
    let text = std::fs::read_to_string(&header).unwrap().replace("Codec : Gsm", &format!("Codec : {codec}"));
    std::fs::write(&header, text).unwrap();
    let mut head = b"RIFF".to_vec();
    head.extend_from_slice(&(len - 8).to_le_bytes());
    head.extend_from_slice(b"WAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0data");
    head.extend_from_slice(&(len - 44).to_le_bytes());
    std::fs::write(&wav, &head).unwrap();
    std::fs::OpenOptions::new().write(true).open(&wav).unwrap().set_len(u64::from(len)).unwrap();
    header
}

#[test]
fn an_encoded_recording_is_never_held_raw() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let raw = 4 * MIB;
    // MP3: about an eighth of the PCM, and its base64. G.711: half of it, and its base64,
    // less than attaching the raw WAV would hold (its base64 alone is 1.37 times the PCM).
    for (codec, most) in [("Mp3", raw / 4), ("G711", raw * 5 / 4)] {
        let dir = tempfile::tempdir().unwrap();
        let header = voicemail_in(dir.path(), raw as u32, codec);
        let p = pipeline(20);
        let (p, peak) = peak_during(|| prepared(p.prepare_file(&header)));
        // read block by block: the output and its base64 only, never the 4 MiB of PCM as well
        assert!(peak < most + MIB, "{codec}: peak heap {peak} bytes for {raw} raw");
        let bytes = p.message.formatted();
        let mail = MessageParser::default().parse(&bytes).expect("MIME");
        assert!(mail.attachment(0).is_some_and(|a| a.contents().len() <= raw / 2 + 64), "{codec}");
    }
}
