//! Voicemail benchmark: what encoding the recording in the dial plan's codec costs, next to
//! what attaching the raw WAV costs.
//!
//! `cargo bench --bench voicemail` prepares the same corpus of voicemails (each with its own
//! 60 s, 8 kHz, 16-bit recording: real speech from `tests/fixtures/audio/`, repeated) three
//! times, single-threaded, with `[delivery] voicemail_codec` forced to `wav` (the raw
//! recording), `mp3` and `g711`, and writes each message as an `.eml` file. It prints, per
//! codec: events/s per core (by the process's CPU time, so a busy machine does not skew it)
//! and by the clock, the message size, and the time the smaller message saves on the wire at
//! 100 Mbit/s and 1 Gbit/s (the bytes not sent), next to the time encoding adds per message.
//!
//! Environment: `BENCH_EVENTS` (default 100) events per run; `BENCH_DIR` is where the
//! corpus and output go (default `/dev/shm` when it exists).

use std::path::{Path, PathBuf};
use std::time::Instant;

use callnote::config::Config;
use callnote::pipeline::{Outcome, Pipeline};
use callnote::render::Templates;

#[path = "support/env.rs"]
mod env;

/// Length of each recording.
const SECONDS: usize = 60;

/// 60 s of 16-bit PCM mono 8 kHz: the speech fixture's samples, repeated.
fn recording() -> Vec<u8> {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio/a7b209e4-fa96-4219-9717-c5cabc82b4b8.wav");
    let speech = std::fs::read(fixture).expect("the speech fixture");
    let pcm = &speech[44..];
    let len = SECONDS * 8000 * 2;
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(36 + len as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0data");
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend(pcm.iter().cycle().take(len));
    out
}

fn write_corpus(dir: &Path, events: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).expect("corpus folder");
    let wav = recording();
    (0..events)
        .map(|n| {
            let guid = format!("{n:08x}-0000-4000-8000-000000000000");
            let header = dir.join(format!("{guid}.txt"));
            let text = format!(
                "MessageType : VoiceMail\r\nCallerId : +1425555{:04}\r\nRecipientAddress : u{n}@contoso.com\r\n\
                 RecipientCulture : en-US\r\nCallId : {guid}\r\nAttachmentName : C:\\UM\\voicemail\\{guid}.wav\r\n\
                 Duration : {SECONDS}\r\nCodec : Mp3\r\n",
                n % 10_000
            );
            std::fs::write(&header, text).expect("header");
            std::fs::write(dir.join(format!("{guid}.wav")), &wav).expect("recording");
            header
        })
        .collect()
}

fn pipeline(codec: &str) -> Pipeline {
    let toml =
        format!("[dialplan]\nregion = \"US\"\n[mail]\nfrom = \"Voice Mail <vm@contoso.com>\"\n[delivery]\nvoicemail_codec = \"{codec}\"\n");
    let config = Config::from_toml(&toml, Path::new("bench.toml")).expect("bench config");
    Pipeline::new(config, Templates::builtin(), None, Some("2026-01-02T03:04:05Z".parse().expect("a time")))
}

/// CPU seconds this process has used (all threads): on a shared machine, what the work costs
/// whatever else runs.
fn cpu_seconds() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given, nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// CPU seconds and wall seconds for the whole corpus, and the mean message size in bytes.
fn run(codec: &str, files: &[PathBuf], out: &Path) -> (f64, f64, usize) {
    let p = pipeline(codec);
    std::fs::create_dir_all(out).expect("output folder");
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let mut bytes = 0;
    for (i, file) in files.iter().enumerate() {
        let Ok(Outcome::Prepared(prepared)) = p.prepare_file(file) else { panic!("{} did not become a message", file.display()) };
        let message = prepared.message.formatted();
        bytes += message.len();
        std::fs::write(out.join(format!("{i}.eml")), &message).expect("write the message");
    }
    (cpu_seconds() - cpu, started.elapsed().as_secs_f64(), bytes / files.len().max(1))
}

fn main() {
    let events = env::usize_or("BENCH_EVENTS", 100);
    let base = env::var("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() });
    let root = base.join(format!("callnote-bench-voicemail-{}", std::process::id()));
    let files = write_corpus(&root.join("spool"), events);
    println!("voicemail: {events} events, each with a {SECONDS} s 8 kHz 16-bit recording ({} bytes)", recording().len());

    let (raw_secs, raw_wall, raw_size) = run("wav", &files, &root.join("wav"));
    let rate = |cpu: f64, wall: f64| format!("{:>7.1} events/s per core ({:.1} by the clock)", events as f64 / cpu, events as f64 / wall);
    println!("  raw WAV   {}  {:>9} bytes/message", rate(raw_secs, raw_wall), raw_size);
    for codec in ["mp3", "g711"] {
        let (secs, wall, size) = run(codec, &files, &root.join(codec));
        let added_ms = (secs - raw_secs) / events as f64 * 1000.0;
        let saved = raw_size.saturating_sub(size) as f64 * 8.0;
        println!(
            "  {codec:<8}  {}  {:>9} bytes/message ({:.0} % of raw)\n            encoding adds {added_ms:.1} ms of CPU a message; \
             the bytes not sent save {:.1} ms at 100 Mbit/s, {:.1} ms at 1 Gbit/s",
            rate(secs, wall),
            size,
            size as f64 * 100.0 / raw_size as f64,
            saved / 100e6 * 1000.0,
            saved / 1e9 * 1000.0,
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
