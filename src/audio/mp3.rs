//! MP3 encoding of a mono 16-bit stream with LAME (through the `mp3lame-encoder` crate, which
//! builds LAME 3.100 from its bundled source and links it statically; LAME is LGPL, see the
//! README's licence note).
//!
//! As Exchange did for its Mp3 codec: MPEG-2/2.5 Layer III, mono, constant bit rate; 16 kbit/s
//! at 8 kHz for a narrowband recording, 32 kbit/s at 16 kHz for a wideband one (LAME
//! resamples any other input rate). No Xing/LAME tag frame, so that every frame is audio.
//! Each block is encoded as it is read; the output is the only thing that grows.

use std::num::NonZeroU32;

use mp3lame_encoder::{Bitrate, Builder, Encoder, FlushNoGap, Mode, MonoPcm, Quality};

use super::AudioError;

/// A LAME encoder set up for one recording.
pub struct Mp3 {
    encoder: Encoder,
}

fn lame<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> AudioError {
    move |e| AudioError::Encoder(format!("LAME: {what}: {e}"))
}

impl Mp3 {
    /// An encoder for mono input at `rate` Hz.
    pub fn new(rate: u32) -> Result<Mp3, AudioError> {
        let (out_rate, bitrate) = if rate >= 16_000 { (16_000, Bitrate::Kbps32) } else { (8_000, Bitrate::Kbps16) };
        let mut b = Builder::new().ok_or_else(|| AudioError::Encoder("LAME: cannot allocate the encoder".to_owned()))?;
        b.set_num_channels(1).map_err(lame("channels"))?;
        b.set_sample_rate(rate).map_err(lame("input rate"))?;
        b.set_output_sample_rate(NonZeroU32::new(out_rate)).map_err(lame("output rate"))?;
        b.set_brate(bitrate).map_err(lame("bit rate"))?;
        b.set_mode(Mode::Mono).map_err(lame("mode"))?;
        b.set_quality(Quality::Good).map_err(lame("quality"))?;
        b.set_to_write_vbr_tag(false).map_err(lame("tag"))?;
        Ok(Mp3 { encoder: b.build().map_err(lame("set-up"))? })
    }

    /// Encodes `pcm`, appending whatever frames are complete to `out`.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), AudioError> {
        out.reserve(mp3lame_encoder::max_required_buffer_size(pcm.len()));
        self.encoder.encode_to_vec(MonoPcm(pcm), out).map(drop).map_err(lame("encoding"))
    }

    /// Ends the stream: the last frames into `out`.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), AudioError> {
        out.reserve(7200); // LAME's documented need for a flush
        self.encoder.flush_to_vec::<FlushNoGap>(out).map(drop).map_err(lame("flush"))
    }
}
