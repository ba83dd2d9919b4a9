//! G.711 µ-law (PCMU) and A-law (PCMA) companding,
//! [ITU-T G.711](https://www.itu.int/rec/T-REC-G.711), payload formats of
//! [RFC 3551 §4.5.14](https://www.rfc-editor.org/rfc/rfc3551#section-4.5.14).
//!
//! Decoding is a 256-entry table built at compile time; encoding is a segment search
//! on the leading-zero count (no branches per segment).

/// Bias added before µ-law segment search (0x84 = 132, on the 16-bit scale).
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude µ-law encodes (16-bit scale).
const ULAW_CLIP: i32 = 32635;

const fn ulaw_decode_one(code: u8) -> i16 {
    let u = !code;
    let mantissa = (u & 0x0f) as i32;
    let exponent = ((u & 0x70) >> 4) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_decode_one(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mantissa = (a & 0x0f) as i32;
    let exponent = ((a & 0x70) >> 4) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if alaw {
            alaw_decode_one(i as u8)
        } else {
            ulaw_decode_one(i as u8)
        };
        i += 1;
    }
    t
}

static ULAW_TO_LINEAR: [i16; 256] = build_table(false);
static ALAW_TO_LINEAR: [i16; 256] = build_table(true);

/// Decodes one µ-law byte to a 16-bit linear sample.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_TO_LINEAR[code as usize]
}

/// Decodes one A-law byte to a 16-bit linear sample.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_TO_LINEAR[code as usize]
}

/// Encodes one 16-bit linear sample to µ-law.
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    let s = sample as i32;
    let (mag, sign) = if s < 0 { (-s, 0x80u8) } else { (s, 0u8) };
    let mag = mag.min(ULAW_CLIP) + ULAW_BIAS;
    // Segment = position of the highest set bit above bit 7 (mag >= 0x84 always).
    let exponent = (31 - (mag as u32).leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (mag >> (exponent + 3)) & 0x0f;
    !(sign | ((exponent as u8) << 4) | mantissa as u8)
}

/// Encodes one 16-bit linear sample to A-law.
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    let s = sample as i32;
    let (mag, sign) = if s >= 0 { (s, 0x80u8) } else { (-s - 1, 0u8) };
    let mag = mag.min(0x7fff) >> 3; // 13-bit magnitude
    let code = if mag < 0x20 {
        (mag >> 1) as u8
    } else {
        let exponent = (31 - (mag as u32).leading_zeros() as i32 - 4).clamp(1, 7);
        ((exponent as u8) << 4) | ((mag >> exponent) & 0x0f) as u8
    };
    (sign | code) ^ 0x55
}

/// Decodes µ-law bytes into `out` (one sample per byte); returns the sample count.
pub fn ulaw_decode_slice(input: &[u8], out: &mut [i16]) -> usize {
    let n = input.len().min(out.len());
    for (o, &i) in out[..n].iter_mut().zip(input) {
        *o = ULAW_TO_LINEAR[i as usize];
    }
    n
}

/// Decodes A-law bytes into `out`; returns the sample count.
pub fn alaw_decode_slice(input: &[u8], out: &mut [i16]) -> usize {
    let n = input.len().min(out.len());
    for (o, &i) in out[..n].iter_mut().zip(input) {
        *o = ALAW_TO_LINEAR[i as usize];
    }
    n
}

/// Encodes samples to µ-law into `out`; returns the byte count.
pub fn ulaw_encode_slice(input: &[i16], out: &mut [u8]) -> usize {
    let n = input.len().min(out.len());
    for (o, &i) in out[..n].iter_mut().zip(input) {
        *o = ulaw_encode(i);
    }
    n
}

/// Encodes samples to A-law into `out`; returns the byte count.
pub fn alaw_encode_slice(input: &[i16], out: &mut [u8]) -> usize {
    let n = input.len().min(out.len());
    for (o, &i) in out[..n].iter_mut().zip(input) {
        *o = alaw_encode(i);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        // Silence and full scale of the G.711 µ-law table.
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(ulaw_decode(0x7f), 0);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(ulaw_decode(0xfe), 8);
        assert_eq!(ulaw_decode(0x7e), -8);
        assert_eq!(ulaw_decode(0xf0), 120);
        assert_eq!(ulaw_encode(1000), 0xce);
        assert_eq!(ulaw_decode(0xce), 988);
        assert_eq!(ulaw_encode(-1000), 0x4e);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(alaw_encode(0), 0xd5);
        assert_eq!(alaw_decode(0xd5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xaa), 32256);
        assert_eq!(alaw_decode(0x2a), -32256);
        assert_eq!(alaw_encode(i16::MAX), 0xaa);
        assert_eq!(alaw_encode(i16::MIN), 0x2a);
        assert_eq!(alaw_encode(1000), 0xfa);
        assert_eq!(alaw_decode(0xfa), 1008);
        assert_eq!(alaw_encode(-1000), 0x7a);
    }

    #[test]
    fn every_code_round_trips() {
        for code in 0..=255u8 {
            let u = ulaw_decode(code);
            assert_eq!(ulaw_decode(ulaw_encode(u)), u, "ulaw {code:#x}");
            let a = alaw_decode(code);
            assert_eq!(alaw_encode(a), code, "alaw {code:#x}");
        }
    }

    #[test]
    fn encode_is_monotonic_and_error_bounded() {
        let mut prev_u = i16::MIN;
        let mut prev_a = i16::MIN;
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let u = ulaw_decode(ulaw_encode(s));
            let a = alaw_decode(alaw_encode(s));
            assert!(u >= prev_u && a >= prev_a, "monotonic at {s}");
            prev_u = u;
            prev_a = a;
            // Quantisation error stays within half a step of the top segment (1024/2 + bias).
            assert!(
                (u as i32 - s as i32).abs() <= 1024,
                "ulaw error at {s}: {u}"
            );
            assert!(
                (a as i32 - s as i32).abs() <= 1024,
                "alaw error at {s}: {a}"
            );
            if (-100..100).contains(&s) {
                assert!((u as i32 - s as i32).abs() <= 8);
                assert!((a as i32 - s as i32).abs() <= 16);
            }
        }
    }
}
