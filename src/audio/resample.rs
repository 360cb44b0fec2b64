//! Sample-rate conversion of a mono 16-bit stream, block by block (for G.711 at 8 kHz).
//!
//! A polyphase windowed-sinc filter: each output sample is the input convolved with a
//! Blackman-windowed sinc whose cut-off is the lower of the two Nyquist frequencies (so going
//! down from 16 kHz removes everything above 4 kHz before it could alias), evaluated at the
//! output instant. With the rates reduced by their greatest common divisor the instants fall
//! on `L` phases, whose taps are computed once. Memory is the taps plus one filter length of
//! history, whatever the length of the stream; the work per output sample is fixed.

/// Zero crossings of the sinc on each side, at the lower rate: the filter's sharpness.
const ZERO_CROSSINGS: usize = 16;
/// Most taps held (phases x taps per phase); a stranger rate pair is refused.
const MAX_TABLE: usize = 1 << 18;

/// A converter from one rate to another.
pub struct Resampler {
    /// Output instants per input sample, reduced (`l / m` = out / in).
    l: usize,
    m: usize,
    /// Taps on each side of the instant.
    half: usize,
    /// `l` phases of `2 * half` taps each.
    taps: Vec<f32>,
    /// The input not yet fully used; `history[0]` is input sample `base`.
    history: Vec<f32>,
    base: u64,
    /// Index of the next output sample.
    next: u64,
    /// Input samples seen.
    seen: u64,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Resampler {
    /// `None` when the rates would need more taps than [`MAX_TABLE`].
    pub fn new(from: u32, to: u32) -> Option<Resampler> {
        let (from, to) = (from as usize, to as usize);
        let g = gcd(from, to).max(1);
        let (l, m) = (to / g, from / g);
        // cut-off as a fraction of the input rate's Nyquist frequency
        let cutoff = if l < m { l as f64 / m as f64 } else { 1.0 };
        let half = (ZERO_CROSSINGS as f64 / cutoff).ceil() as usize;
        if l.checked_mul(2 * half)? > MAX_TABLE {
            return None;
        }
        let mut taps = Vec::with_capacity(l * 2 * half);
        for phase in 0..l {
            let frac = phase as f64 / l as f64;
            // tap k stands for input sample (floor(t) - half + 1 + k); its distance from t
            taps.extend((0..2 * half).map(|k| kernel(k as f64 - (half as f64 - 1.0) - frac, cutoff, half as f64) as f32));
        }
        Some(Resampler { l, m, half, taps, history: Vec::new(), base: 0, next: 0, seen: 0 })
    }

    /// Converts `input`, appending to `out` every output sample it completes.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        self.history.extend(input.iter().map(|&s| f32::from(s)));
        self.seen += input.len() as u64;
        self.drain(out);
    }

    /// Ends the stream: the output samples up to the end of the input.
    pub fn finish(&mut self, out: &mut Vec<i16>) {
        let end = self.seen;
        self.history.extend(std::iter::repeat_n(0.0, self.half));
        while self.next * (self.m as u64) < end * self.l as u64 {
            if !self.one(out) {
                break;
            }
        }
        self.history.clear();
    }

    fn drain(&mut self, out: &mut Vec<i16>) {
        while self.one(out) {}
        // drop the history no later output sample needs
        let first_needed = ((self.next * self.m as u64) / self.l as u64 + 1).saturating_sub(self.half as u64);
        let drop = usize::try_from(first_needed.saturating_sub(self.base)).unwrap_or(usize::MAX).min(self.history.len());
        self.history.drain(..drop);
        self.base += drop as u64;
    }

    /// Computes the next output sample if its input is all there.
    fn one(&mut self, out: &mut Vec<i16>) -> bool {
        let position = self.next * self.m as u64;
        let (whole, phase) = (position / self.l as u64, (position % self.l as u64) as usize);
        let start = (whole + 1).checked_sub(self.half as u64);
        let width = 2 * self.half;
        let taps = &self.taps[phase * width..(phase + 1) * width];
        let last = whole + self.half as u64; // the last input sample used
        if last >= self.base + self.history.len() as u64 {
            return false;
        }
        let sum: f32 = match start {
            Some(start) if start >= self.base => {
                let from = (start - self.base) as usize;
                self.history[from..from + width].iter().zip(taps).map(|(x, h)| x * h).sum()
            }
            // the first samples: the input before the start is silence
            _ => {
                let skipped = (self.base + self.half as u64 - 1 - whole) as usize;
                self.history[..width - skipped].iter().zip(&taps[skipped..]).map(|(x, h)| x * h).sum()
            }
        };
        out.push(sum.round().clamp(-32768.0, 32767.0) as i16);
        self.next += 1;
        true
    }
}

/// The windowed sinc at distance `x` (input samples) from the output instant.
fn kernel(x: f64, cutoff: f64, half: f64) -> f64 {
    if x.abs() >= half {
        return 0.0;
    }
    let sinc = if x == 0.0 { cutoff } else { (std::f64::consts::PI * cutoff * x).sin() / (std::f64::consts::PI * x) };
    let n = (x + half) / (2.0 * half); // 0..1 across the window
    let window = 0.42 - 0.5 * (2.0 * std::f64::consts::PI * n).cos() + 0.08 * (4.0 * std::f64::consts::PI * n).cos();
    sinc * window
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, seconds: f64) -> Vec<i16> {
        let n = (rate as f64 * seconds) as usize;
        (0..n).map(|i| (10_000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / rate as f64).sin()) as i16).collect()
    }

    fn rms(samples: &[i16]) -> f64 {
        (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
    }

    fn convert(from: u32, to: u32, input: &[i16], block: usize) -> Vec<i16> {
        let mut r = Resampler::new(from, to).unwrap();
        let mut out = Vec::new();
        input.chunks(block).for_each(|c| r.process(c, &mut out));
        r.finish(&mut out);
        out
    }

    #[test]
    fn keeps_the_length_and_a_tone_in_the_pass_band() {
        for from in [16_000, 11_025, 44_100, 6_000] {
            let input = tone(from, 440.0, 1.0);
            let out = convert(from, 8000, &input, 1000);
            assert!((out.len() as i64 - 8000).abs() <= 1, "{from}: {}", out.len());
            let middle = &out[1000..7000];
            assert!((rms(middle) / rms(&input) - 1.0).abs() < 0.02, "{from}: {} vs {}", rms(middle), rms(&input));
        }
    }

    #[test]
    fn removes_what_would_alias() {
        // 6 kHz is above 8 kHz's Nyquist frequency: it must not come back as 2 kHz
        let out = convert(16_000, 8000, &tone(16_000, 6000.0, 1.0), 777);
        assert!(rms(&out[1000..7000]) < 50.0, "{}", rms(&out[1000..7000]));
    }

    #[test]
    fn block_size_does_not_change_the_result() {
        let input = tone(16_000, 1000.0, 0.5);
        assert_eq!(convert(16_000, 8000, &input, 1), convert(16_000, 8000, &input, 4096));
    }

    #[test]
    fn strange_rate_pairs_are_refused() {
        assert!(Resampler::new(191_999, 8000).is_none());
        assert!(Resampler::new(16_000, 8000).is_some());
    }
}
