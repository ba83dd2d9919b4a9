//! RTCP reports of the gateway as an RTP endpoint on each leg: SR or RR with one report
//! block and an SDES CNAME ([RFC 3550 §6.4, §6.5](https://www.rfc-editor.org/rfc/rfc3550#section-6.4)),
//! and reading the peer's reports for RTT and loss.
//!
//! Deviation (media/DTLS.md): the NTP timestamp carries time since the session started,
//! not wall-clock time; the core reads no clock. RTT (LSR/DLSR) only needs our own clock
//! to be consistent, and audio-only calls need no lip sync.

use std::time::{Duration, Instant};

/// A report block about the source we receive ([RFC 3550 §6.4.1](https://www.rfc-editor.org/rfc/rfc3550#section-6.4.1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    pub cumulative_lost: i32,
    pub extended_max: u32,
    pub jitter: u32,
    pub lsr: u32,
    pub dlsr: u32,
}

/// NTP 64-bit timestamp of `now` relative to `start`.
pub(crate) fn ntp(start: Instant, now: Instant) -> u64 {
    let d = now.saturating_duration_since(start);
    (d.as_secs() << 32) | (((d.subsec_nanos() as u64) << 32) / 1_000_000_000)
}

/// The middle 32 bits of an NTP timestamp (LSR/DLSR unit: 1/65536 s).
pub(crate) fn ntp_mid(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Sender info for an SR.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SenderInfo {
    pub ntp: u64,
    pub rtp_ts: u32,
    pub packets: u32,
    pub octets: u32,
}

/// Writes a compound RTCP packet (SR if `sender` else RR, then SDES CNAME) into `out`.
pub(crate) fn write_report(
    out: &mut Vec<u8>,
    ssrc: u32,
    sender: Option<SenderInfo>,
    block: Option<ReportBlock>,
    cname: &str,
) {
    let rc = block.is_some() as u8;
    let words = 1 + if sender.is_some() { 5 } else { 0 } + 6 * rc as usize;
    out.push(0x80 | rc);
    out.push(if sender.is_some() { 200 } else { 201 });
    out.extend_from_slice(&(words as u16).to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(s) = sender {
        out.extend_from_slice(&s.ntp.to_be_bytes());
        out.extend_from_slice(&s.rtp_ts.to_be_bytes());
        out.extend_from_slice(&s.packets.to_be_bytes());
        out.extend_from_slice(&s.octets.to_be_bytes());
    }
    if let Some(b) = block {
        out.extend_from_slice(&b.ssrc.to_be_bytes());
        let lost = b.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff;
        out.extend_from_slice(&((b.fraction_lost as u32) << 24 | lost).to_be_bytes());
        out.extend_from_slice(&b.extended_max.to_be_bytes());
        out.extend_from_slice(&b.jitter.to_be_bytes());
        out.extend_from_slice(&b.lsr.to_be_bytes());
        out.extend_from_slice(&b.dlsr.to_be_bytes());
    }
    // SDES with one chunk: SSRC, CNAME item, END, padded to a 32-bit boundary.
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    let chunk = 4 + 2 + cname.len() + 1;
    let padded = chunk.div_ceil(4) * 4;
    out.push(0x81);
    out.push(202);
    out.extend_from_slice(&((padded / 4) as u16).to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.push(1);
    out.push(cname.len() as u8);
    out.extend_from_slice(cname);
    out.resize(out.len() + padded - chunk + 1, 0);
}

/// What a peer's compound RTCP told us.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// Middle 32 bits of the NTP timestamp of the peer's SR, if one came.
    pub sr_ntp_mid: Option<u32>,
    /// The report block about `our_ssrc`, if any.
    pub block: Option<ReportBlock>,
}

/// Reads SR/RR packets of a compound RTCP packet; unknown types are skipped.
pub(crate) fn parse(mut data: &[u8], our_ssrc: u32) -> Option<Parsed> {
    let mut parsed = Parsed::default();
    while data.len() >= 4 {
        if data[0] >> 6 != 2 {
            return None;
        }
        let len = (u16::from_be_bytes([data[2], data[3]]) as usize + 1) * 4;
        let pkt = data.get(..len)?;
        let rc = (pkt[0] & 0x1f) as usize;
        let blocks_at = match pkt[1] {
            200 => {
                let ntp = u64::from_be_bytes(pkt.get(8..16)?.try_into().ok()?);
                parsed.sr_ntp_mid = Some(ntp_mid(ntp));
                Some(28)
            }
            201 => Some(8),
            _ => None,
        };
        if let Some(at) = blocks_at {
            for i in 0..rc {
                let b = pkt.get(at + 24 * i..at + 24 * (i + 1))?;
                let word = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
                if word(0) == our_ssrc {
                    let lost = word(4) & 0x00ff_ffff;
                    let lost = if lost & 0x80_0000 != 0 {
                        lost as i32 - 0x100_0000
                    } else {
                        lost as i32
                    };
                    parsed.block = Some(ReportBlock {
                        ssrc: word(0),
                        fraction_lost: b[4],
                        cumulative_lost: lost,
                        extended_max: word(8),
                        jitter: word(12),
                        lsr: word(16),
                        dlsr: word(20),
                    });
                }
            }
        }
        data = &data[len..];
    }
    Some(parsed)
}

/// RTT from a report block received at NTP-middle time `arrival` (RFC 3550 §6.4.1).
pub(crate) fn rtt(block: &ReportBlock, arrival: u32) -> Option<Duration> {
    if block.lsr == 0 {
        return None;
    }
    let rtt = arrival.wrapping_sub(block.lsr).wrapping_sub(block.dlsr);
    (rtt < 0x8000_0000).then(|| Duration::from_nanos(rtt as u64 * 1_000_000_000 / 65536))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests anchor virtual time at Instant::now()
mod tests {
    use super::*;

    #[test]
    fn write_parse_round_trip_and_rtt() {
        let start = Instant::now();
        let block = ReportBlock {
            ssrc: 42,
            fraction_lost: 12,
            cumulative_lost: -3,
            extended_max: 70000,
            jitter: 80,
            lsr: 0x0001_0000,
            dlsr: 0x0000_8000,
        };
        let mut out = vec![];
        let sender = SenderInfo {
            ntp: ntp(start, start + Duration::from_millis(1500)),
            rtp_ts: 9,
            packets: 3,
            octets: 480,
        };
        write_report(&mut out, 7, Some(sender), Some(block), "gw");
        assert_eq!(out.len() % 4, 0);
        assert_eq!(crate::demux::classify(&out), crate::demux::PacketKind::Rtcp);
        let p = parse(&out, 42).unwrap();
        assert_eq!(p.block, Some(block));
        assert_eq!(p.sr_ntp_mid, Some(ntp_mid(sender.ntp)));
        assert_eq!(p.sr_ntp_mid, Some(0x0001_8000)); // 1.5 s
                                                     // Arrival 2 s after our SR at 1 s, peer held it 0.5 s: RTT 0.5 s.
        let r = rtt(&block, 0x0002_0000).unwrap();
        assert_eq!(r, Duration::from_millis(500));
        let mut rr = vec![];
        write_report(&mut rr, 7, None, None, "a-longer-cname");
        assert_eq!(rr[1], 201);
        assert_eq!(parse(&rr, 42).unwrap(), Parsed::default());
        assert!(parse(&rr[..6], 42).is_none());
    }
}
