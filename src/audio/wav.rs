//! Reading a RIFF/WAVE recording as a stream of mono 16-bit samples.
//!
//! Consumes any `Read` positioned at the start of the file; [`WavReader::open`] walks the
//! chunks one by one (any order, unknown chunks skipped, odd sizes padded) until `data`,
//! taking the format from `fmt ` (plain or WAVE_FORMAT_EXTENSIBLE). [`WavReader::read_block`]
//! then yields the samples of the `data` chunk in blocks, mixed down to mono: 8- or 16-bit
//! PCM, or G.711 µ-law / A-law expanded to 16 bits. GSM 6.10 and anything else is described
//! ([`Format`]) but not decoded. Never reads past the `data` chunk; never allocates more than
//! one block. Problems are [`WavError`]s naming what is wrong; I/O errors stay I/O errors.

use std::io::{self, Read};

use super::g711;
use crate::intake::fill;

/// WAVE format tags this module knows.
pub const TAG_PCM: u16 = 1;
pub const TAG_ALAW: u16 = 6;
pub const TAG_MULAW: u16 = 7;
pub const TAG_GSM610: u16 = 0x31;
const TAG_EXTENSIBLE: u16 = 0xFFFE;

/// Lowest and highest sample rates read (beyond, the file is attached as it is).
const MIN_RATE: u32 = 4_000;
const MAX_RATE: u32 = 192_000;
/// Most channels mixed down.
const MAX_CHANNELS: u16 = 8;
/// Most chunks skipped before `data` (each costs a read; a real file has two or three).
const MAX_CHUNKS: usize = 64;

/// Why a file cannot be read as audio (it is then attached as it is).
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("not a RIFF/WAVE file")]
    NotWave,
    #[error("no `fmt ` chunk before the `data` chunk")]
    NoFormat,
    #[error("the `fmt ` chunk is {0} bytes (at least 16 expected)")]
    ShortFormat(u32),
    #[error("no `data` chunk")]
    NoData,
    #[error("more than {MAX_CHUNKS} chunks before the `data` chunk")]
    TooManyChunks,
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The `fmt ` chunk's facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// The format tag (the sub-format's for WAVE_FORMAT_EXTENSIBLE).
    pub tag: u16,
    pub channels: u16,
    pub rate: u32,
    pub bits: u16,
}

impl Format {
    /// Whether [`WavReader::read_block`] can decode this format.
    pub(crate) fn check_decodable(&self) -> Result<(), WavError> {
        let unsupported = |what: String| Err(WavError::Unsupported(what));
        if !(1..=MAX_CHANNELS).contains(&self.channels) {
            return unsupported(format!("{} channels (1 to {MAX_CHANNELS} are read)", self.channels));
        }
        if !(MIN_RATE..=MAX_RATE).contains(&self.rate) {
            return unsupported(format!("a sample rate of {} Hz ({MIN_RATE} to {MAX_RATE} Hz are read)", self.rate));
        }
        match (self.tag, self.bits) {
            (TAG_PCM, 8 | 16) | (TAG_MULAW | TAG_ALAW, 8) => Ok(()),
            (TAG_GSM610, _) => unsupported("GSM 6.10 audio (no GSM decoder)".to_owned()),
            (tag, bits) => unsupported(format!("format tag {tag:#06x} with {bits} bits per sample")),
        }
    }

    /// Bytes per sample of one channel.
    fn sample_bytes(&self) -> usize {
        usize::from(self.bits.div_ceil(8))
    }
}

/// An open recording, positioned in its `data` chunk.
pub struct WavReader<R> {
    inner: R,
    pub format: Format,
    /// Bytes of `data` not read yet (`u64::MAX`-ish when the size is unknown: read to the end).
    remaining: u64,
    raw: Vec<u8>,
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

impl<R: Read> WavReader<R> {
    /// Reads the header and the chunks up to `data`; the format must be one this module
    /// decodes (see [`Self::describe`] for one that need not be).
    pub fn open(inner: R) -> Result<WavReader<R>, WavError> {
        let reader = WavReader::describe(inner)?;
        reader.format.check_decodable()?;
        Ok(reader)
    }

    /// Like [`Self::open`], for any format (to tell what a file holds).
    pub fn describe(mut inner: R) -> Result<WavReader<R>, WavError> {
        let mut head = [0u8; 12];
        read_exact_or(&mut inner, &mut head, WavError::NotWave)?;
        if &head[..4] != b"RIFF" || &head[8..] != b"WAVE" {
            return Err(WavError::NotWave);
        }
        let mut format = None;
        for _ in 0..MAX_CHUNKS {
            let mut chunk = [0u8; 8];
            read_exact_or(&mut inner, &mut chunk, if format.is_some() { WavError::NoData } else { WavError::NoFormat })?;
            let size = le32(&chunk[4..]);
            match &chunk[..4] {
                b"fmt " => format = Some(read_format(&mut inner, size)?),
                b"data" => {
                    let format = format.ok_or(WavError::NoFormat)?;
                    // 0 or 0xFFFFFFFF: a recording whose size was never written; read to the end.
                    let remaining = if size == 0 || size == u32::MAX { u64::MAX } else { u64::from(size) };
                    return Ok(WavReader { inner, format, remaining, raw: Vec::new() });
                }
                _ => skip(&mut inner, u64::from(size) + u64::from(size & 1))?,
            }
        }
        Err(WavError::TooManyChunks)
    }

    /// Frames the `data` chunk declares that are not read yet (`None`: read to the end).
    pub fn frames_left(&self) -> Option<u64> {
        let frame_bytes = u64::from(self.format.channels) * self.format.sample_bytes() as u64;
        (self.remaining != u64::MAX).then(|| self.remaining / frame_bytes.max(1))
    }

    /// The next block of at most `frames` mono samples into `out` (cleared first); an empty
    /// block at the end of the data.
    pub fn read_block(&mut self, frames: usize, out: &mut Vec<i16>) -> io::Result<()> {
        out.clear();
        let channels = usize::from(self.format.channels);
        let frame_bytes = channels * self.format.sample_bytes();
        let want = (frames * frame_bytes).min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        self.raw.resize(want, 0);
        let got = fill(&mut self.inner, &mut self.raw)?;
        self.remaining -= got as u64;
        if got < want {
            self.remaining = 0; // the file ends early: what is there is the recording
        }
        let whole = got - got % frame_bytes;
        let format = self.format;
        let bytes = &self.raw[..whole];
        match (format.tag, format.bits, format.channels) {
            // what Exchange records: no mixing, no decoding
            (TAG_PCM, 16, 1) => out.extend(bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]))),
            _ => out.extend(bytes.chunks_exact(frame_bytes).map(|frame| mix(frame, &format))),
        }
        Ok(())
    }
}

/// One frame's channels, decoded and averaged.
fn mix(frame: &[u8], format: &Format) -> i16 {
    let sample = |b: &[u8]| -> i32 {
        match (format.tag, format.bits) {
            (TAG_PCM, 8) => (i32::from(b[0]) - 128) << 8,
            (TAG_PCM, _) => i32::from(i16::from_le_bytes([b[0], b[1]])),
            (TAG_MULAW, _) => i32::from(g711::mulaw_to_linear(b[0])),
            _ => i32::from(g711::alaw_to_linear(b[0])),
        }
    };
    let width = format.sample_bytes();
    let sum: i32 = frame.chunks_exact(width).map(sample).sum();
    // the mean of i16 values is an i16
    (sum / i32::from(format.channels)) as i16
}

fn read_format(inner: &mut impl Read, size: u32) -> Result<Format, WavError> {
    if size < 16 {
        return Err(WavError::ShortFormat(size));
    }
    let keep = size.min(40) as usize;
    let mut b = [0u8; 40];
    read_exact_or(inner, &mut b[..keep], WavError::NoFormat)?;
    skip(inner, u64::from(size - keep as u32) + u64::from(size & 1))?;
    let mut tag = le16(&b[0..]);
    if tag == TAG_EXTENSIBLE && keep >= 26 {
        tag = le16(&b[24..]); // the sub-format GUID starts with the format tag
    }
    Ok(Format { tag, channels: le16(&b[2..]), rate: le32(&b[4..]), bits: le16(&b[14..]) })
}

fn read_exact_or(inner: &mut impl Read, buf: &mut [u8], short: WavError) -> Result<(), WavError> {
    if fill(inner, buf)? < buf.len() { Err(short) } else { Ok(()) }
}

fn skip(inner: &mut impl Read, n: u64) -> io::Result<()> {
    io::copy(&mut inner.take(n), &mut io::sink()).map(drop)
}

/// A RIFF/WAVE header for `data_len` bytes of `format` (a `fact` chunk with `samples` for
/// every format but PCM, as the WAVE rules want for compressed data).
pub fn header(format: &Format, data_len: u32, samples: u32) -> Vec<u8> {
    let pcm = format.tag == TAG_PCM;
    let fmt_len: u32 = if pcm { 16 } else { 18 };
    let fact_len: u32 = if pcm { 0 } else { 12 };
    let block = u32::from(format.channels) * u32::from(format.sample_bytes() as u16);
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(4 + 8 + fmt_len + fact_len + 8 + data_len + (data_len & 1)).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&fmt_len.to_le_bytes());
    out.extend_from_slice(&format.tag.to_le_bytes());
    out.extend_from_slice(&format.channels.to_le_bytes());
    out.extend_from_slice(&format.rate.to_le_bytes());
    out.extend_from_slice(&(format.rate * block).to_le_bytes());
    out.extend_from_slice(&(block as u16).to_le_bytes());
    out.extend_from_slice(&format.bits.to_le_bytes());
    if !pcm {
        out.extend_from_slice(&0u16.to_le_bytes()); // cbSize
        out.extend_from_slice(b"fact");
        out.extend_from_slice(&4u32.to_le_bytes());
        out.extend_from_slice(&samples.to_le_bytes());
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcm16(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
        let format = Format { tag: TAG_PCM, channels, rate, bits: 16 };
        let mut out = header(&format, (samples.len() * 2) as u32, 0);
        samples.iter().for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
        out
    }

    fn all(bytes: &[u8]) -> Vec<i16> {
        let mut reader = WavReader::open(bytes).unwrap();
        let (mut all, mut block) = (Vec::new(), Vec::new());
        loop {
            reader.read_block(3, &mut block).unwrap();
            if block.is_empty() {
                return all;
            }
            all.extend_from_slice(&block);
        }
    }

    #[test]
    fn reads_pcm_in_blocks_and_mixes_channels_down() {
        let mono = pcm16(8000, 1, &[1, -2, 3, 4, 5, -32768, 32767]);
        assert_eq!(all(&mono), [1, -2, 3, 4, 5, -32768, 32767]);
        let stereo = pcm16(16000, 2, &[100, 300, -32768, -32768, 1, 2]);
        assert_eq!(all(&stereo), [200, -32768, 1]);
        assert_eq!(WavReader::open(&stereo[..]).unwrap().format, Format { tag: TAG_PCM, channels: 2, rate: 16000, bits: 16 });
    }

    #[test]
    fn skips_unknown_chunks_and_stops_at_the_data_end() {
        let mut bytes = pcm16(8000, 1, &[7, 8]);
        // a LIST chunk of odd size (padded) between fmt and data, and bytes after data
        let list = b"LIST\x03\0\0\0abc\0";
        bytes.splice(36..36, list.iter().copied());
        bytes.extend_from_slice(b"junk after the data");
        assert_eq!(all(&bytes), [7, 8]);
    }

    #[test]
    fn a_truncated_data_chunk_gives_what_is_there() {
        let mut bytes = pcm16(8000, 1, &[1, 2, 3, 4]);
        bytes.truncate(bytes.len() - 3); // half a sample and one more gone
        assert_eq!(all(&bytes), [1, 2]);
    }

    #[test]
    fn odd_files_are_named_for_what_is_wrong() {
        let err = |bytes: &[u8]| WavReader::open(bytes).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(err(b"RIFF\0\0\0\0AVI "), "not a RIFF/WAVE file");
        assert_eq!(err(b"RIFF\0\0\0\0WAVEdata\0\0\0\0"), "no `fmt ` chunk before the `data` chunk");
        assert_eq!(err(b"RIFF\x24\xff\xff\xffWAVEfmt \0\0\0\0"), "the `fmt ` chunk is 0 bytes (at least 16 expected)");
        let f = |tag, channels, rate, bits| header(&Format { tag, channels, rate, bits }, 0, 0);
        assert_eq!(err(&f(TAG_PCM, 1, 8000, 24)), "format tag 0x0001 with 24 bits per sample");
        assert_eq!(err(&f(TAG_GSM610, 1, 8000, 0)), "GSM 6.10 audio (no GSM decoder)");
        assert_eq!(err(&f(TAG_PCM, 0, 8000, 16)), "0 channels (1 to 8 are read)");
        assert_eq!(err(&f(TAG_PCM, 1, 1000, 16)), "a sample rate of 1000 Hz (4000 to 192000 Hz are read)");
        let mut no_data = f(TAG_PCM, 1, 8000, 16);
        no_data.truncate(36);
        assert_eq!(err(&no_data), "no `data` chunk");
        assert!(WavReader::describe(&f(TAG_GSM610, 1, 8000, 0)[..]).is_ok());
    }

    #[test]
    fn g711_input_is_expanded() {
        let format = Format { tag: TAG_MULAW, channels: 1, rate: 8000, bits: 8 };
        let mut bytes = header(&format, 2, 2);
        bytes.extend_from_slice(&[0xFF, 0x00]); // µ-law zero and the most negative value
        assert_eq!(all(&bytes), [0, -32124]);
    }
}
