//! Per-leg statistics: RFC 3550 receive accounting (loss, interarrival jitter,
//! [Appendix A.1](https://www.rfc-editor.org/rfc/rfc3550#appendix-A.1) and
//! [A.8](https://www.rfc-editor.org/rfc/rfc3550#appendix-A.8)) and send counters.

use std::time::Duration;

/// What arrived on a leg (after SRTP).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct ReceiveStats {
    /// Authenticated RTP packets.
    pub packets: u64,
    /// Their RTP payload bytes.
    pub bytes: u64,
    /// Cumulative packets lost (RFC 3550 §6.4.1; negative with duplicates).
    pub lost: i64,
    /// Interarrival jitter.
    pub jitter: Duration,
    /// SRTP/SRTCP packets that failed authentication.
    pub auth_failures: u64,
    /// Replayed SRTP/SRTCP packets.
    pub replays: u64,
    /// Packets dropped for other reasons (unknown payload type, malformed, before keys).
    pub dropped: u64,
    /// Packets that arrived too late for the reorder buffer (transcoding path); the same
    /// as [`JitterBufferStats::late`].
    pub late: u64,
    /// The adaptive reorder/jitter buffer of the transcoding path from this leg; `None`
    /// in passthrough, which forwards at once.
    pub jitter_buffer: Option<JitterBufferStats>,
    /// Frames filled by Opus PLC or G.711 silence.
    pub concealed_frames: u64,
    /// Frames recovered by Opus in-band FEC.
    pub fec_frames: u64,
    /// RTCP packets received.
    pub rtcp_packets: u64,
}

/// The adaptive reorder/jitter buffer of a transcoded direction (media received on a leg).
///
/// In-order packets pass at once; behind a sequence gap, packets wait up to
/// `target_delay` after their expected arrival for the missing one, then the gap is
/// concealed (Opus FEC/PLC, G.711 silence). The target follows the 95th percentile of the
/// relative delay ([RFC 3550 §6.4.1](https://www.rfc-editor.org/rfc/rfc3550#section-6.4.1)
/// transit minus the smallest of the last 128 packets), within
/// [`Config::reorder_min_delay`](crate::Config::reorder_min_delay) (20 ms) and
/// [`Config::reorder_max_delay`](crate::Config::reorder_max_delay) (60 ms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JitterBufferStats {
    /// The current target delay.
    pub target_delay: Duration,
    /// Packets that arrived out of order and were put back in order.
    pub reordered: u64,
    /// Packets that arrived after their slot had been concealed: discarded, not played.
    pub late: u64,
    /// Duplicate packets: discarded.
    pub duplicates: u64,
    /// Gaps concealed before their deadline because the buffer held its maximum.
    pub overflows: u64,
}

/// What was sent on a leg.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct SendStats {
    /// RTP packets sent.
    pub packets: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Packets not sent because DTLS had not completed.
    pub dropped_before_dtls: u64,
    /// Silence frames sent toward the client while the trunk sent telephone-events
    /// without audio (counted in `packets` too; [`Session`](crate::Session) docs).
    pub silence_frames: u64,
    /// RTCP packets sent.
    pub rtcp_packets: u64,
}

/// Statistics of one leg.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct LegStats {
    /// Received direction.
    pub rx: ReceiveStats,
    /// Sent direction.
    pub tx: SendStats,
    /// Round-trip time from the peer's RTCP report blocks (RFC 3550 §6.4.1).
    pub rtt: Option<Duration>,
    /// Fraction of our packets the peer reported lost, 0..=255 /256.
    pub remote_fraction_lost: u8,
}

/// RFC 3550 Appendix A.1/A.8 receive state of the current source.
#[derive(Debug, Default)]
pub(crate) struct RxTracker {
    started: bool,
    pub ssrc: u32,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    pub received: u64,
    expected_prior: u64,
    received_prior: u64,
    transit: i64,
    /// Jitter in RTP clock units, ×16 as in RFC 3550 A.8.
    jitter16: i64,
}

impl RxTracker {
    /// Accounts one packet; `arrival` is the arrival time in the RTP clock.
    pub(crate) fn on_packet(&mut self, ssrc: u32, seq: u16, ts: u32, arrival: u32) {
        if !self.started || ssrc != self.ssrc {
            *self = Self {
                started: true,
                ssrc,
                base_seq: seq as u32,
                max_seq: seq,
                transit: arrival.wrapping_sub(ts) as i32 as i64,
                ..Self::default()
            };
            self.received = 1;
            return;
        }
        let delta = seq.wrapping_sub(self.max_seq);
        if delta > 0 && delta < 0x8000 {
            if seq < self.max_seq {
                self.cycles += 1 << 16;
            }
            self.max_seq = seq;
        }
        self.received += 1;
        let transit = arrival.wrapping_sub(ts) as i32 as i64;
        let d = (transit - self.transit).abs();
        self.transit = transit;
        self.jitter16 += d - ((self.jitter16 + 8) >> 4);
    }

    pub(crate) fn extended_max(&self) -> u32 {
        self.cycles + self.max_seq as u32
    }

    pub(crate) fn expected(&self) -> u64 {
        if !self.started {
            return 0;
        }
        (self.extended_max() as u64 + 1).saturating_sub(self.base_seq as u64)
    }

    pub(crate) fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Jitter in RTP clock units.
    pub(crate) fn jitter(&self) -> u32 {
        (self.jitter16 >> 4) as u32
    }

    pub(crate) fn is_started(&self) -> bool {
        self.started
    }

    /// Fraction lost since the previous call (RFC 3550 A.3), for a report block.
    pub(crate) fn fraction_lost(&mut self) -> u8 {
        let expected = self.expected();
        let expected_interval = expected - self.expected_prior;
        self.expected_prior = expected;
        let received_interval = self.received - self.received_prior;
        self.received_prior = self.received;
        let lost = expected_interval as i64 - received_interval as i64;
        if expected_interval == 0 || lost <= 0 {
            0
        } else {
            ((lost << 8) / expected_interval as i64).min(255) as u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_wrap_and_jitter() {
        let mut t = RxTracker::default();
        // 20 ms packets at 8 kHz, perfectly paced, across a sequence wrap, one lost.
        let mut seq = 65530u16;
        for i in 0..20u32 {
            if i != 7 {
                t.on_packet(1, seq, i * 160, 1000 + i * 160);
            }
            seq = seq.wrapping_add(1);
        }
        assert_eq!(t.expected(), 20);
        assert_eq!(t.lost(), 1);
        assert_eq!(t.jitter(), 0);
        assert_eq!(t.fraction_lost(), 12); // 1/20 × 256
        assert_eq!(t.fraction_lost(), 0);
        // Alternating ±80 ticks of arrival noise gives jitter approaching 160.
        for i in 20..400u32 {
            let noise = if i % 2 == 0 { 80 } else { 0 };
            t.on_packet(1, seq, i * 160, 1000 + i * 160 + noise);
            seq = seq.wrapping_add(1);
        }
        assert!((70..=90).contains(&t.jitter()), "{}", t.jitter());
    }
}
