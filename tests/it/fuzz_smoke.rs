//! The fuzz targets, short, in every test run: each format's harness
//! (`callnote::fuzzing::*`, the same function the libFuzzer target in `fuzz/` calls) over its
//! committed corpus (`fuzz/corpus/<target>/`), then over deterministic mutations of it.
//!
//! Corpus files named `bad-*` must be refused with an error, every other file must be read.
//! The mutants must not panic (the harness also panics when an error does not name the file
//! or points past the end of the input), must include both read and refused inputs (so the
//! mutations reach past the first check), and each must return within [`HANG_LIMIT`]: a
//! hang detector like libFuzzer's `-timeout`, orders of magnitude above the normal time, not
//! a performance measure (that is `scripts/fuzz.sh`'s executions per second).
//!
//! The long run is `scripts/fuzz.sh`; this replays what it is seeded with.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use callnote::fuzzing::{self, Outcome};

/// Mutants per target: a few thousand in all, a few seconds in a debug build.
const MUTANTS: usize = 1000;
const HANG_LIMIT: Duration = Duration::from_secs(5);

type Harness = fn(&[u8]) -> Outcome;

/// Bytes that matter to at least one of the grammars, inserted by the mutator.
const TOKENS: [&[u8]; 24] = [
    b"\r\n",
    b"\n",
    b"\r",
    b"\n ",
    b" : ",
    b":",
    b"::",
    b":<",
    b"\0",
    b"<",
    b"/>",
    b"&amp;",
    b"&#xD800;",
    b"<!DOCTYPE x>",
    b"\"",
    b",",
    b";",
    b"|",
    b"\xEF\xBB\xBF",
    b"\xFF\xFE",
    b"\xFE\xFF",
    b"+1 425 555 0100",
    "ü–山".as_bytes(),
    b"[delivery]\n",
];

/// A xorshift64 generator: the same mutants on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One to four random edits of `seed`, sometimes spliced with `other`.
fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let len = bytes.len();
        let at = rng.below(len + 1);
        match rng.below(7) {
            0 if len > 0 => bytes[at.min(len - 1)] ^= 1 << rng.below(8),
            1 if len > 0 => bytes[at.min(len - 1)] = rng.next() as u8,
            2 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                bytes.splice(at..at, token.iter().copied());
            }
            3 => {
                let end = (at + 1 + rng.below(64)).min(bytes.len());
                bytes.drain(at..end);
            }
            4 => {
                let end = (at + 1 + rng.below(256)).min(bytes.len());
                let piece = bytes[at..end].to_vec();
                let to = rng.below(bytes.len() + 1);
                bytes.splice(to..to, piece);
            }
            5 => bytes.truncate(at),
            _ => {
                let from = rng.below(other.len() + 1);
                bytes.truncate(at);
                bytes.extend_from_slice(&other[from..]);
            }
        }
    }
    bytes
}

/// The committed corpus of one target: `(file name, bytes)`, sorted by name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a corpus entry").path();
            let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        })
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{target}: only {} corpus files", files.len());
    files
}

/// Runs `harness` on `input`, failing when it takes longer than [`HANG_LIMIT`].
fn run(harness: Harness, input: &[u8], what: &str) -> Outcome {
    let started = Instant::now();
    let outcome = harness(input);
    let took = started.elapsed();
    assert!(took < HANG_LIMIT, "{what}: took {took:?} on {} bytes (hang?)", input.len());
    outcome
}

/// Replays the corpus with its expected outcomes, then the mutants; returns the number of
/// mutants read and refused.
fn smoke(target: &str, harness: Harness) -> (usize, usize) {
    let files = corpus(target);
    for (name, bytes) in &files {
        let outcome = run(harness, bytes, name);
        if name.starts_with("bad-") {
            assert!(matches!(outcome, Outcome::Rejected(_)), "{target}/{name}: expected an error, got {outcome:?}");
        } else {
            assert!(!matches!(outcome, Outcome::Rejected(_)), "{target}/{name}: expected to be read, got {outcome:?}");
        }
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ target.len() as u64);
    let (mut read, mut refused) = (0, 0);
    for i in 0..MUTANTS {
        let (seed_name, seed) = &files[i % files.len()];
        let other = &files[rng.below(files.len())].1;
        let mutant = mutate(&mut rng, seed, other);
        match run(harness, &mutant, &format!("{target}: mutant {i} of {seed_name}")) {
            Outcome::Rejected(_) => refused += 1,
            Outcome::Accepted(_) | Outcome::Skipped => read += 1,
        }
    }
    (read, refused)
}

/// Both kinds of mutant occur: at least 1 % each.
fn assert_mixed(target: &str, (read, refused): (usize, usize)) {
    eprintln!("{target}: {read} mutants read, {refused} refused");
    assert_eq!(read + refused, MUTANTS);
    assert!(read >= MUTANTS / 100, "{target}: only {read} of {MUTANTS} mutants were read");
    assert!(refused >= MUTANTS / 100, "{target}: only {refused} of {MUTANTS} mutants were refused");
}

#[test]
fn header_corpus_and_mutants() {
    assert_mixed("header", smoke("header", fuzzing::header));
    assert_eq!(fuzzing::header(b"MessageType : HealthCheck\r\n"), Outcome::Skipped);
    assert_eq!(fuzzing::header(b"MessageType : Telepathy\r\n"), Outcome::Rejected(Some(1)));
}

#[test]
fn ocs_xml_corpus_and_mutants() {
    assert_mixed("ocs_xml", smoke("ocs_xml", fuzzing::ocs_xml));
    assert_eq!(fuzzing::ocs_xml(b"<UserNotification><User>u</User><Event type=\"missed\"/></UserNotification>"), Outcome::Accepted(1));
}

#[test]
fn ldif_corpus_and_mutants() {
    assert_mixed("ldif", smoke("ldif", fuzzing::ldif));
    let directory = std::fs::read(crate::common::fixture("directory.ldif")).expect("the LDIF fixture");
    assert_eq!(fuzzing::ldif(&directory), Outcome::Accepted(33));
    assert_eq!(fuzzing::ldif(b"dn: cn=a\nno colon here\n"), Outcome::Rejected(Some(2)));
}

#[test]
fn csv_corpus_and_mutants() {
    assert_mixed("csv", smoke("csv", fuzzing::csv));
    let directory = std::fs::read(crate::common::fixture("directory.csv")).expect("the CSV fixture");
    assert_eq!(fuzzing::csv(&directory), Outcome::Accepted(31));
    assert_eq!(fuzzing::csv(b"mail,mobile\na@b\n"), Outcome::Rejected(Some(2)));
}

#[test]
fn config_corpus_and_mutants() {
    assert_mixed("config", smoke("config", fuzzing::config));
    assert_eq!(fuzzing::config(b"[delivery]\nprot = 1\n"), Outcome::Rejected(Some(2)));
    assert_eq!(fuzzing::config(b"\xFF"), Outcome::Rejected(None));
}
