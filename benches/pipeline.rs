//! End-to-end throughput benchmark: parse -> enrich -> render -> compose -> write, on
//! generated corpora, single-threaded (so the figures are per core).
//!
//! `cargo bench --bench pipeline` prints:
//! - directory load time and memory per person (10,000 people, varied number formats),
//!   measured with a counting allocator;
//! - events/s on missed calls: the median of 4 passes of 2,000 (`BENCH_PASSES`), each
//!   with other callers, so the number-formatting cache is cold as for new callers;
//! - events/s on 2,000 events of which half are voicemails with 30 s WAVs (attached raw:
//!   `cargo bench --bench voicemail` measures encoding them), next to the time
//!   it takes merely to read those inputs and base64 the audio, and to do that and write the
//!   encoded audio to files (the least any `.eml` writer does);
//! - peak heap during the runs after 500 and after 2,000 events (flat = memory does not grow
//!   with the number of events).
//!
//! Environment: `BENCH_PEOPLE`, `BENCH_EVENTS` override the sizes; `BENCH_ONLY=missed`
//! stops after the missed-call corpus (for profiling); `BENCH_DIR` is where
//! corpora and output go (default `/dev/shm` when it exists, so the figures measure
//! callnote rather than the disk's file-creation cost; set `BENCH_DIR=/tmp` to include it).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use callnote::config::Config;
use callnote::enrich::directory;
use callnote::intake::Parsed;
use callnote::pipeline::{Outcome, Pipeline};

use callnote::render::Templates;

#[path = "support/counting.rs"]
mod counting;
#[path = "support/env.rs"]
mod env;

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

const AREA_CODES: [&str; 6] = ["425", "206", "312", "617", "415", "212"];
const CULTURES: [&str; 6] = ["en-US", "fr-FR", "de-DE", "es-ES", "ja-JP", "en-GB"];

/// A NANP number for person `i` (exchange 2xx–9xx keeps it a possible number).
fn number(i: usize, salt: usize) -> (String, String, String) {
    let area = AREA_CODES[(i + salt) % AREA_CODES.len()];
    let exchange = 200 + (i / 10_000 + salt * 37) % 700;
    let line = i % 10_000;
    (area.to_owned(), format!("{exchange:03}"), format!("{line:04}"))
}

/// 10,000 people in the formats real exports contain.
fn write_directory(path: &Path, people: usize) {
    let mut out = String::with_capacity(people * 700);
    for i in 0..people {
        let (a, e, l) = number(i, 0);
        let (ma, me, ml) = number(i, 3);
        let work = match i % 5 {
            0 => format!("+1 {a} {e} {l}"),
            1 => format!("({a}) {e}-{l}"),
            2 => format!("{a}.{e}.{l}"),
            3 => format!("+1-{a}-{e}-{l} x{}", 1000 + i % 9000),
            _ => format!("tel:+1{a}{e}{l}"),
        };
        let _ = write!(
            out,
            "dn: uid=u{i},ou=People,dc=contoso,dc=com\nobjectClass: inetOrgPerson\ncn: Person {i}\nsn: Surname{i}\ngivenName: Given{i}\n\
             displayName: Given{i} Surname{i}\nmail: u{i}@contoso.com\ntitle: Engineer\ndepartment: Dept {}\n\
             preferredLanguage: {}\ntelephoneNumber: {work}\nmobile: +1 ({ma}) {me}-{ml}\nipPhone: {}\n\
             msRTCSIP-Line: tel:+1{a}{e}{l};ext={}\nmsRTCSIP-PrimaryUserAddress: sip:u{i}@contoso.com\n\n",
            i % 40,
            CULTURES[i % CULTURES.len()],
            10_000 + i,
            10_000 + i,
        );
    }
    std::fs::write(path, out).expect("write directory");
}

/// A 30 s, 8 kHz, 16-bit mono WAV (silence with a little noise so it is not all zeros).
fn wav_30s() -> Vec<u8> {
    let samples = 8_000 * 30;
    let data_len = samples * 2;
    let mut w = Vec::with_capacity(44 + data_len);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&((36 + data_len) as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&8_000u32.to_le_bytes());
    w.extend_from_slice(&16_000u32.to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(data_len as u32).to_le_bytes());
    for s in 0..samples {
        w.extend_from_slice(&(((s * 7919) % 64) as i16 - 32).to_le_bytes());
    }
    w
}

/// Writes `events` header files; every other one a voicemail when `voicemail_share` is set.
fn write_corpus(dir: &Path, events: std::ops::Range<usize>, people: usize, with_voicemail: bool) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).expect("corpus dir");
    let wav = with_voicemail.then(wav_30s);
    events
        .map(|n| {
            let guid = format!("{n:08x}-0000-4000-8000-{n:012x}");
            let caller = match n % 10 {
                0 => None,                                       // anonymous
                1 | 2 => Some(format!("+1800555{:04}", n % 10_000)), // not in the directory
                3 => Some(format!("{}", 10_000 + (n * 13) % people)),  // extension
                _ => {
                    let (a, e, l) = number((n * 7) % people, if n % 2 == 0 { 0 } else { 3 });
                    Some(format!("+1{a}{e}{l}"))
                }
            };
            let recipient = (n * 31) % people;
            let mut text = String::new();
            let voicemail = with_voicemail && n % 2 == 0;
            let _ = writeln!(text, "MessageType : {}\r", if voicemail { "VoiceMail" } else { "MissedCall" });
            if let Some(c) = caller {
                let _ = writeln!(text, "CallerId : {c}\r");
            }
            let _ = write!(
                text,
                "NDRRequired : False\r\nRecipientName : Given{recipient} Surname{recipient}\r\nRecipientAddress : u{recipient}@contoso.com\r\n\
                 RecipientCulture : {}\r\nCallId : {guid}\r\nImportant : {}\r\n",
                CULTURES[recipient % CULTURES.len()],
                if n % 17 == 0 { "True" } else { "False" },
            );
            if voicemail {
                let _ = write!(text, "AttachmentName : C:\\UM\\voicemail\\{guid}.wav\r\nDuration : 30\r\nCallAnswering : True\r\nCodec : Mp3\r\n");
                std::fs::write(dir.join(format!("{guid}.wav")), wav.as_ref().expect("wav")).expect("write wav");
            }
            let path = dir.join(format!("{guid}.txt"));
            std::fs::write(&path, text).expect("write header");
            path
        })
        .collect()
}

/// One timed pass over a set of files.
#[derive(Clone, Copy)]
struct Timed {
    secs: f64,
    /// Of `secs`: reading, parsing and enriching.
    parse_secs: f64,
    /// Of `secs`: everything but formatting and writing the message.
    prepare_secs: f64,
}

struct Run {
    /// The median pass (by time), and the slowest and fastest events/s.
    median: Timed,
    events_per_pass: usize,
    slowest: f64,
    fastest: f64,
    peak_after_500: usize,
    peak_after_all: usize,
}

/// Times each of `passes` (median reported: the machine is shared, single runs vary), then
/// measures peak heap over all files in one counting pass.
fn run(pipeline: &Pipeline, passes: &[&[PathBuf]], out: &Path) -> Run {
    std::fs::create_dir_all(out).expect("out dir");
    let mut timed: Vec<Timed> = passes.iter().map(|files| timed_pass(pipeline, files, out)).collect();
    timed.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    let events_per_pass = passes[0].len();
    let rate = |t: &Timed| events_per_pass as f64 / t.secs;
    // Memory pass: the same work again, counting. Live bytes were not tracked while
    // counting was off, so the baseline is taken now.
    counting::set_counting(true);
    let base = counting::live();
    counting::reset_peak();
    let mut peak_after_500 = 0;
    for (n, path) in passes.iter().flat_map(|p| p.iter()).enumerate() {
        write_outcome(pipeline.prepare_file(path), out);
        if n + 1 == 500 {
            peak_after_500 = counting::peak().saturating_sub(base);
        }
    }
    let peak_after_all = counting::peak().saturating_sub(base);
    Run {
        median: timed[timed.len() / 2],
        events_per_pass,
        slowest: rate(&timed[timed.len() - 1]),
        fastest: rate(&timed[0]),
        peak_after_500,
        peak_after_all,
    }
}

/// Runs `files` once, unmeasured: libphonenumber compiles the patterns of the numbering plans
/// in use on first use. Not through [`timed_pass`], so a callgrind run collecting only in
/// `timed_pass` counts the measured passes alone.
fn warm_up(pipeline: &Pipeline, files: &[PathBuf], out: &Path) {
    std::fs::create_dir_all(out).expect("out dir");
    for path in files {
        write_outcome(pipeline.prepare_file(path), out);
    }
}

/// One pass, no allocation bookkeeping.
fn timed_pass(pipeline: &Pipeline, files: &[PathBuf], out: &Path) -> Timed {
    counting::set_counting(false);
    let (mut parse_secs, mut prepare_secs) = (0.0, 0.0);
    let start = Instant::now();
    for path in files {
        // The steps of Pipeline::prepare_file, timed apart.
        let t = Instant::now();
        let parsed = pipeline.parse_file(path);
        let t2 = Instant::now();
        parse_secs += (t2 - t).as_secs_f64();
        let outcome = match parsed {
            Ok(Parsed::Event(event)) => pipeline.prepare_event(*event, path).map(|p| Outcome::Prepared(Box::new(p))),
            Ok(Parsed::Skipped(t)) => Ok(Outcome::Skipped(t)),
            Err(e) => Err(e),
        };
        prepare_secs += t2.elapsed().as_secs_f64();
        write_outcome(outcome, out);
    }
    Timed { secs: start.elapsed().as_secs_f64(), parse_secs, prepare_secs: parse_secs + prepare_secs }
}

fn write_outcome(outcome: Result<Outcome, callnote::pipeline::Error>, out: &Path) {
    match outcome {
        Ok(Outcome::Prepared(p)) => {
            let target = out.join(format!("{}.eml", p.event.safe_call_id()));
            std::fs::write(target, p.message.formatted()).expect("write eml");
        }
        Ok(Outcome::Skipped(_)) => {}
        Err(e) => panic!("{e:#}"),
    }
}

/// The floor: read every input and its side file and base64 the audio; with `write_to`,
/// also write each encoded audio to a file there (what any `.eml` writer must add: the
/// output's bytes reaching the file system).
fn read_and_base64(files: &[PathBuf], write_to: Option<&Path>) -> f64 {
    if let Some(dir) = write_to {
        std::fs::create_dir_all(dir).expect("floor output dir");
    }
    let start = Instant::now();
    let mut total = 0usize;
    for path in files {
        total += std::fs::read(path).expect("read").len();
        let wav = path.with_extension("wav");
        if let Ok(bytes) = std::fs::read(&wav) {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            total += encoded.len();
            if let Some(dir) = write_to {
                std::fs::write(dir.join(wav.file_name().expect("a file name")), encoded).expect("write floor output");
            }
        }
    }
    std::hint::black_box(total);
    start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it:
    // then it is a quick smoke run on small corpora.
    let full = std::env::args().any(|a| a == "--bench");
    let people = env::usize_or("BENCH_PEOPLE", if full { 10_000 } else { 300 });
    let events = env::usize_or("BENCH_EVENTS", if full { 2_000 } else { 40 });
    callnote::deliver::install_crypto_provider();
    let base = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() });
    let tmp = tempfile::tempdir_in(&base).expect("tempdir");
    println!("corpora and output in {}", base.display());
    let dir_path = tmp.path().join("directory.ldif");
    write_directory(&dir_path, people);

    // The raw WAV, as the floor below base64s it: what encoding to the dial plan's codec costs
    // is measured by the voicemail bench.
    let config = Config { voicemail_codec: callnote::audio::CodecChoice::Wav, ..Config::default() };
    let before = counting::live();
    let start = Instant::now();
    let index = directory::load_file(&dir_path, &config.dialplan).expect("load directory");
    let load_secs = start.elapsed().as_secs_f64();
    let per_person = (counting::live() - before) as f64 / people as f64;
    println!(
        "directory: {people} people loaded in {:.0} ms; {per_person:.0} bytes of heap per person (estimate from the index itself: {:.0})",
        load_secs * 1000.0,
        index.heap_bytes() as f64 / people as f64
    );

    let pipeline = Pipeline::new(config, Templates::builtin(), Some(Arc::new(index)), None);

    // Missed calls: `passes` corpora of `events` each, with different callers (so the
    // per-number formatting cache starts cold in every pass, as for new callers), plus a
    // separate warm-up corpus.
    let passes = env::usize_or("BENCH_PASSES", if full { 4 } else { 1 });
    let missed = write_corpus(&tmp.path().join("missed"), 0..events * passes, people, false);
    let warm = write_corpus(&tmp.path().join("warm-up"), events * passes..events * passes + 200, people, false);
    warm_up(&pipeline, &warm, &tmp.path().join("warm"));
    let chunks: Vec<&[PathBuf]> = missed.chunks(events).collect();
    let a = run(&pipeline, &chunks, &tmp.path().join("out-missed"));
    let m = a.median;
    println!(
        "missed calls: {passes} passes of {events} events, median {:.2} s = {:.0} events/s per core (slowest {:.0}, fastest {:.0}; median pass: {:.2} s read+parse+enrich, {:.2} s render+compose, {:.2} s format+write); peak heap {} KiB after 500 events, {} KiB after {}",
        m.secs,
        a.events_per_pass as f64 / m.secs,
        a.slowest,
        a.fastest,
        m.parse_secs,
        m.prepare_secs - m.parse_secs,
        m.secs - m.prepare_secs,
        a.peak_after_500 / 1024,
        a.peak_after_all / 1024,
        events * passes
    );

    if std::env::var("BENCH_ONLY").as_deref() == Ok("missed") {
        return;
    }
    // Half voicemails: one corpus (the audio dominates; 2,000 events are ~0.5 GB), timed
    // `passes` times.
    let mixed = write_corpus(&tmp.path().join("mixed"), 0..events, people, true);
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let floor = median((0..passes).map(|_| read_and_base64(&mixed, None)).collect());
    let floor_written = median((0..passes).map(|_| read_and_base64(&mixed, Some(&tmp.path().join("floor-out")))).collect());
    let repeated: Vec<&[PathBuf]> = (0..passes).map(|_| mixed.as_slice()).collect();
    let b = run(&pipeline, &repeated, &tmp.path().join("out-mixed"));
    let m = b.median;
    println!(
        "half voicemail (30 s WAV): {events} events, median of {passes} passes {:.2} s = {:.0} events/s per core ({:.2} s parse+enrich+render+compose, {:.2} s format+write); read+base64 alone {floor:.2} s (median), ratio {:.2}x; read+base64+write the audio {floor_written:.2} s, ratio {:.2}x; peak heap {} KiB after 500, {} KiB after {}",
        m.secs,
        events as f64 / m.secs,
        m.prepare_secs,
        m.secs - m.prepare_secs,
        m.secs / floor,
        m.secs / floor_written,
        b.peak_after_500 / 1024,
        b.peak_after_all / 1024,
        events * passes
    );
}
