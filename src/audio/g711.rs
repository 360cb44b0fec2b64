//! G.711 companding (ITU-T G.711): 16-bit linear samples <-> 8-bit µ-law, and A-law -> linear.
//!
//! Written here rather than taken from a crate: it is a dozen lines of the well-known
//! arithmetic of the ITU recommendation (the same as the public-domain Sun `g711.c`), and
//! no maintained crate offers it without pulling in a whole audio framework. µ-law is what
//! Exchange wrote for the G711 codec by default, so only it is encoded; A-law input (a
//! recording already in A-law) is decoded. The unit tests check the ITU reference points
//! and that every code decodes and re-encodes to itself.

/// Added to the magnitude before µ-law encoding (ITU: 33 on 14 bits, 132 on 16).
const BIAS: i32 = 0x84;
/// The largest magnitude µ-law can hold once biased.
const CLIP: i32 = 32_635;

/// One 16-bit linear sample as a µ-law byte.
pub fn linear_to_mulaw(sample: i16) -> u8 {
    let mut v = i32::from(sample);
    let sign = if v < 0 {
        v = -v;
        0x80
    } else {
        0
    };
    v = v.min(CLIP) + BIAS;
    // v is 0x84..=0x7FFF: its top bit is bit 7 to 14, the segment 0 to 7
    let exponent = 31 - v.leading_zeros() as i32 - 7;
    let mantissa = (v >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// One µ-law byte as a 16-bit linear sample.
pub fn mulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let exponent = (u >> 4) & 0x07;
    let magnitude = (((i32::from(u & 0x0F) << 3) + BIAS) << exponent) - BIAS;
    // at most (15 * 8 + 132) * 128 - 132 = 32124
    (if u & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// One A-law byte as a 16-bit linear sample.
pub fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let segment = (a & 0x70) >> 4;
    let mut t = i32::from(a & 0x0F) << 4;
    match segment {
        0 => t += 8,
        1 => t += 0x108,
        _ => t = (t + 0x108) << (segment - 1),
    }
    // at most (0xF0 + 0x108) << 6 = 32256
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulaw_reference_points() {
        assert_eq!(linear_to_mulaw(0), 0xFF);
        assert_eq!(linear_to_mulaw(-1), 0x7F);
        assert_eq!(linear_to_mulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_mulaw(i16::MIN), 0x00);
        assert_eq!(mulaw_to_linear(0xFF), 0);
        assert_eq!(mulaw_to_linear(0x80), 32_124);
        assert_eq!(mulaw_to_linear(0x00), -32_124);
    }

    #[test]
    fn every_mulaw_code_survives_a_round_trip() {
        for code in 0..=255u8 {
            let back = linear_to_mulaw(mulaw_to_linear(code));
            // 0x7F (-0) decodes to 0, which encodes as +0 (0xFF)
            assert!(back == code || (code == 0x7F && back == 0xFF), "{code:#04x} -> {back:#04x}");
        }
    }

    #[test]
    fn mulaw_error_stays_within_the_step_of_its_segment() {
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let back = i32::from(mulaw_to_linear(linear_to_mulaw(s)));
            let error = (back - i32::from(s)).abs();
            let step = (i32::from(s).abs().min(CLIP) + BIAS) >> 4; // half a quantum is at most 1/32 of the value
            assert!(error <= step.max(8), "{s} -> {back}");
        }
    }

    #[test]
    fn alaw_reference_points() {
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32_256);
        assert_eq!(alaw_to_linear(0x2A), -32_256);
    }
}
