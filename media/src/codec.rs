//! Audio codecs of the two legs: PCMU and PCMA (G.711, [`crate::g711`]) and Opus through
//! libopus ([RFC 6716](https://www.rfc-editor.org/rfc/rfc6716), RTP format
//! [RFC 7587](https://www.rfc-editor.org/rfc/rfc7587)).
//!
//! Opus is decoded straight to 8 kHz mono and encoded from 8 kHz mono, so no resampler
//! sits between Opus and G.711. The Opus RTP clock stays 48 kHz (RFC 7587 §4.1).

use crate::error::{Error, Result};
use crate::g711;

/// Samples per 20 ms frame at 8 kHz, the internal rate of the transcoder.
pub const FRAME_SAMPLES: usize = 160;
/// Largest Opus frame (120 ms) at 8 kHz.
pub const MAX_DECODED_SAMPLES: usize = 960;

/// A negotiated audio codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// G.711 µ-law, static payload type 0, 8 kHz.
    Pcmu,
    /// G.711 A-law, static payload type 8, 8 kHz.
    Pcma,
    /// Opus, dynamic payload type, RTP clock 48 kHz.
    Opus,
}

impl Codec {
    /// The RTP clock rate in Hz (RFC 3551 §6; RFC 7587 §4.1).
    pub fn clock_rate(self) -> u32 {
        match self {
            Self::Pcmu | Self::Pcma => 8000,
            Self::Opus => 48000,
        }
    }

    /// RTP timestamp ticks of one 20 ms frame.
    pub fn frame_ticks(self) -> u32 {
        self.clock_rate() / 50
    }

    /// The encoding name of SDP `a=rtpmap` / Jingle `<payload-type name=…>`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
            Self::Opus => "opus",
        }
    }

    /// Looks a codec up by encoding name and clock rate.
    pub fn from_name(name: &str, clock_rate: u32) -> Option<Self> {
        [Self::Pcmu, Self::Pcma, Self::Opus]
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name) && c.clock_rate() == clock_rate)
    }
}

/// Opus encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusSettings {
    /// Target bitrate in bit/s; defaults to 24 000 (narrowband speech is transparent well below).
    pub bitrate: i32,
    /// Encoder complexity 0..=10; defaults to 5.
    pub complexity: i32,
    /// In-band FEC (LBRR) for the peer's decoder; defaults to on.
    pub inband_fec: bool,
    /// Expected loss in percent, tunes FEC; defaults to 5.
    pub packet_loss_perc: i32,
}

impl Default for OpusSettings {
    fn default() -> Self {
        Self {
            bitrate: 24_000,
            complexity: 5,
            inband_fec: true,
            packet_loss_perc: 5,
        }
    }
}

fn opus_err(e: opus::Error) -> Error {
    Error::Local(format!("libopus: {e}"))
}

/// Decodes one leg's payloads to 8 kHz mono.
pub(crate) enum Decoder {
    Pcmu,
    Pcma,
    Opus {
        dec: opus::Decoder,
        last_frame: usize,
    },
}

impl Decoder {
    pub(crate) fn new(codec: Codec) -> Result<Self> {
        Ok(match codec {
            Codec::Pcmu => Self::Pcmu,
            Codec::Pcma => Self::Pcma,
            Codec::Opus => Self::Opus {
                dec: opus::Decoder::new(8000, opus::Channels::Mono).map_err(opus_err)?,
                last_frame: FRAME_SAMPLES,
            },
        })
    }

    /// Decodes a payload into `out`; returns the samples written.
    pub(crate) fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize> {
        match self {
            Self::Pcmu => Ok(g711::ulaw_decode_slice(payload, out)),
            Self::Pcma => Ok(g711::alaw_decode_slice(payload, out)),
            Self::Opus { dec, last_frame } => {
                if payload.is_empty() {
                    return Err(Error::Malformed("empty opus payload"));
                }
                let n = dec
                    .decode(payload, out, false)
                    .map_err(|_| Error::Malformed("opus payload"))?;
                *last_frame = n.clamp(1, MAX_DECODED_SAMPLES);
                Ok(n)
            }
        }
    }

    /// Conceals one lost frame into `out`: Opus in-band FEC from `next` (the packet after
    /// the loss) when given, else Opus PLC; G.711 repeats nothing (silence).
    /// Returns the samples written (one frame of the last decoded size).
    pub(crate) fn conceal(&mut self, next: Option<&[u8]>, out: &mut [i16]) -> Result<usize> {
        match self {
            Self::Pcmu | Self::Pcma => {
                let n = FRAME_SAMPLES.min(out.len());
                out[..n].fill(0);
                Ok(n)
            }
            Self::Opus { dec, last_frame } => {
                let n = (*last_frame).min(out.len());
                let r = match next {
                    Some(p) if !p.is_empty() => dec.decode(p, &mut out[..n], true),
                    _ => dec.decode(&[], &mut out[..n], false),
                };
                r.map_err(opus_err)
            }
        }
    }
}

/// Encodes 20 ms of 8 kHz mono into one leg's payload.
pub(crate) enum Encoder {
    Pcmu,
    Pcma,
    Opus(opus::Encoder),
}

impl Encoder {
    pub(crate) fn new(codec: Codec, settings: &OpusSettings) -> Result<Self> {
        Ok(match codec {
            Codec::Pcmu => Self::Pcmu,
            Codec::Pcma => Self::Pcma,
            Codec::Opus => {
                let mut enc =
                    opus::Encoder::new(8000, opus::Channels::Mono, opus::Application::Voip)
                        .map_err(opus_err)?;
                enc.set_bitrate(opus::Bitrate::Bits(settings.bitrate))
                    .map_err(opus_err)?;
                enc.set_complexity(settings.complexity).map_err(opus_err)?;
                enc.set_inband_fec(settings.inband_fec).map_err(opus_err)?;
                enc.set_packet_loss_perc(settings.packet_loss_perc)
                    .map_err(opus_err)?;
                Self::Opus(enc)
            }
        })
    }

    /// Encodes one 160-sample frame into `out`; returns the payload length.
    pub(crate) fn encode(&mut self, frame: &[i16], out: &mut [u8]) -> Result<usize> {
        match self {
            Self::Pcmu => Ok(g711::ulaw_encode_slice(frame, out)),
            Self::Pcma => Ok(g711::alaw_encode_slice(frame, out)),
            Self::Opus(enc) => enc.encode(frame, out).map_err(opus_err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize, freq: f64, start: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                ((2.0 * std::f64::consts::PI * freq * (start + i) as f64 / 8000.0).sin() * 12000.0)
                    as i16
            })
            .collect()
    }

    /// Zero-crossing frequency estimate of 8 kHz samples.
    pub(crate) fn frequency(samples: &[i16]) -> f64 {
        let crossings = samples
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count();
        crossings as f64 / 2.0 / (samples.len() as f64 / 8000.0)
    }

    #[test]
    fn opus_round_trip_at_8khz_keeps_a_tone() {
        let mut enc = Encoder::new(Codec::Opus, &OpusSettings::default()).unwrap();
        let mut dec = Decoder::new(Codec::Opus).unwrap();
        let mut out = Vec::new();
        for f in 0..50 {
            let mut pkt = [0u8; 400];
            let n = enc.encode(&tone(160, 440.0, f * 160), &mut pkt).unwrap();
            assert!(n > 0 && n < 200);
            let mut pcm = [0i16; MAX_DECODED_SAMPLES];
            let m = dec.decode(&pkt[..n], &mut pcm).unwrap();
            assert_eq!(m, 160);
            out.extend_from_slice(&pcm[..m]);
        }
        let f = frequency(&out[800..]);
        assert!((f - 440.0).abs() < 440.0 * 0.02, "{f}");
    }

    #[test]
    fn opus_fec_and_plc_fill_a_lost_frame() {
        let mut enc = Encoder::new(
            Codec::Opus,
            &OpusSettings {
                packet_loss_perc: 20,
                ..Default::default()
            },
        )
        .unwrap();
        let mut dec = Decoder::new(Codec::Opus).unwrap();
        let mut pkts = vec![];
        for f in 0..30 {
            let mut pkt = [0u8; 400];
            let n = enc.encode(&tone(160, 300.0, f * 160), &mut pkt).unwrap();
            pkts.push(pkt[..n].to_vec());
        }
        let mut pcm = [0i16; MAX_DECODED_SAMPLES];
        for p in &pkts[..20] {
            dec.decode(p, &mut pcm).unwrap();
        }
        // Packet 20 lost: FEC from 21, then 21 itself; PLC for a second gap.
        assert_eq!(dec.conceal(Some(&pkts[21]), &mut pcm).unwrap(), 160);
        let energy: i64 = pcm[..160].iter().map(|&s| (s as i64).abs()).sum();
        assert!(
            energy > 160 * 1000,
            "fec output has the tone's energy: {energy}"
        );
        dec.decode(&pkts[21], &mut pcm).unwrap();
        assert_eq!(dec.conceal(None, &mut pcm).unwrap(), 160);
    }

    #[test]
    fn codec_names_and_clocks() {
        assert_eq!(Codec::from_name("opus", 48000), Some(Codec::Opus));
        assert_eq!(Codec::from_name("pcmu", 8000), Some(Codec::Pcmu));
        assert_eq!(Codec::from_name("PCMA", 16000), None);
        assert_eq!(Codec::Opus.frame_ticks(), 960);
        assert_eq!(Codec::Pcma.frame_ticks(), 160);
    }
}
