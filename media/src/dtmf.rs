//! Relay of RFC 4733 telephone-events between legs: clock conversion, duration scaling,
//! end packets sent three times ([RFC 4733 §2.5.1.4](https://www.rfc-editor.org/rfc/rfc4733#section-2.5.1.4)),
//! never transcoded as audio.
//!
//! Scaling up (8 kHz → 48 kHz) can push a duration past the 16-bit field (0xFFFF ticks
//! is 1.37 s at 48 kHz): the event then continues in segments
//! ([RFC 4733 §2.5.1.3](https://www.rfc-editor.org/rfc/rfc4733#section-2.5.1.3)), each
//! starting 0xFFFF ticks after the previous one, without the marker bit.

/// Times the end packet of an event is sent.
pub(crate) const END_COPIES: usize = 3;

/// The longest duration one event segment can carry, in ticks.
const MAX_SEGMENT: u64 = 0xffff;

/// What to send for one received telephone-event packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Relayed {
    /// Copies to send (3 for the first end packet, else 1).
    pub copies: usize,
    /// Marker bit: first packet of an event.
    pub marker: bool,
    /// The 4-byte payload: event, E|R|volume, duration in the output clock (within the
    /// current segment).
    pub payload: [u8; 4],
    /// Add to the mapped RTP timestamp of the event, in output clock ticks: the start of
    /// the current segment of a long event (0 for the first segment).
    pub ts_offset: u32,
}

impl Relayed {
    /// The duration field of [`Relayed::payload`], in output clock ticks (within the
    /// current segment).
    pub(crate) fn duration(&self) -> u32 {
        u32::from(u16::from_be_bytes([self.payload[2], self.payload[3]]))
    }

    /// Whether this is an end packet (the E bit, RFC 4733 §2.3.2).
    pub(crate) fn is_end(&self) -> bool {
        self.payload[1] & 0x80 != 0
    }
}

/// Per-direction relay state.
#[derive(Debug)]
pub(crate) struct EventRelay {
    out_clock: u32,
    current: Option<u32>,
    ended: bool,
}

impl EventRelay {
    /// A relay toward a leg whose telephone-event durations count `out_clock` Hz ticks.
    pub(crate) fn new(out_clock: u32) -> Self {
        Self {
            out_clock,
            current: None,
            ended: false,
        }
    }

    /// Handles one event packet with RTP timestamp `ts`, received on a telephone-event
    /// payload type of clock `in_clock` Hz (the unit of its duration); `None` means drop
    /// it (malformed, or a repeated end packet already sent three times). An event made
    /// of end packets only is relayed as its first end packet with the marker, sent
    /// three times.
    pub(crate) fn relay(&mut self, ts: u32, in_clock: u32, payload: &[u8]) -> Option<Relayed> {
        if payload.len() < 4 || in_clock == 0 {
            return None;
        }
        let end = payload[1] & 0x80 != 0;
        let marker = self.current != Some(ts);
        if marker {
            self.current = Some(ts);
            self.ended = false;
        } else if self.ended {
            return None;
        }
        let duration = u16::from_be_bytes([payload[2], payload[3]]) as u64;
        let scaled = duration * self.out_clock as u64 / in_clock as u64;
        // Segment k covers (k·0xFFFF, (k+1)·0xFFFF]; the first also holds 0.
        let segment = scaled.saturating_sub(1) / MAX_SEGMENT;
        let in_segment = scaled - segment * MAX_SEGMENT;
        let d = (in_segment as u16).to_be_bytes();
        let copies = if end {
            self.ended = true;
            END_COPIES
        } else {
            1
        };
        Some(Relayed {
            copies,
            marker,
            payload: [payload[0], payload[1], d[0], d[1]],
            ts_offset: (segment * MAX_SEGMENT) as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_duration_and_sends_end_three_times_once() {
        let mut r = EventRelay::new(8000);
        // Digit 5, volume 10, 960 ticks (20 ms at 48 kHz).
        let a = r.relay(1000, 48000, &[5, 10, 0x03, 0xc0]).unwrap();
        assert_eq!(
            a,
            Relayed {
                copies: 1,
                marker: true,
                payload: [5, 10, 0, 160],
                ts_offset: 0
            }
        );
        let b = r.relay(1000, 48000, &[5, 10, 0x07, 0x80]).unwrap();
        assert_eq!(
            b,
            Relayed {
                copies: 1,
                marker: false,
                payload: [5, 10, 1, 64],
                ts_offset: 0
            }
        ); // 1920 → 320
        let end = r.relay(1000, 48000, &[5, 0x8a, 0x1c, 0x20]).unwrap(); // 7200 → 1200
        assert_eq!(
            end,
            Relayed {
                copies: 3,
                marker: false,
                payload: [5, 0x8a, 0x04, 0xb0],
                ts_offset: 0
            }
        );
        assert_eq!(r.relay(1000, 48000, &[5, 0x8a, 0x1c, 0x20]), None);
        assert_eq!(r.relay(1000, 48000, &[5, 0x8a, 0x1c, 0x20]), None);
        // The next event starts with a marker.
        assert!(r.relay(9000, 48000, &[11, 10, 0, 0]).unwrap().marker);
        assert_eq!(r.relay(9000, 48000, &[11]), None);
    }

    #[test]
    fn upscales_into_segments_past_0xffff() {
        let mut r = EventRelay::new(48000);
        let first = r.relay(0, 8000, &[1, 10, 0, 160]).unwrap();
        assert_eq!((first.payload, first.ts_offset), ([1, 10, 0x03, 0xc0], 0));
        // 10922 ticks at 8 kHz = 65532 at 48 kHz: still the first segment.
        let a = r.relay(0, 8000, &[1, 10, 0x2a, 0xaa]).unwrap();
        assert_eq!((a.payload, a.ts_offset), ([1, 10, 0xff, 0xfc], 0));
        // 0x3000 = 12288 ticks = 73728 at 48 kHz: 8193 into the second segment,
        // which starts 0xFFFF later and has no marker.
        let b = r.relay(0, 8000, &[1, 10, 0x30, 0]).unwrap();
        assert_eq!(
            (b.payload, b.ts_offset, b.marker),
            ([1, 10, 0x20, 0x01], 0xffff, false)
        );
        // The end, 24000 ticks (3 s) = 144000: the third segment, sent three times.
        let end = r.relay(0, 8000, &[1, 0x8a, 0x5d, 0xc0]).unwrap();
        // 144000 - 2·65535 = 12930 = 0x3282 into the third segment.
        assert_eq!(
            (end.payload, end.ts_offset, end.copies),
            ([1, 0x8a, 0x32, 0x82], 2 * 0xffff, 3)
        );
    }
    /// libwebrtc's digits on `telephone-event/8000` while its audio is Opus: three end
    /// packets per key, durations in 8 kHz ticks (800 = 100 ms). Toward an 8 kHz leg the
    /// duration is kept 1:1, the first copy has the marker, the end goes out three times
    /// and the two repeats are dropped. The same relay also takes a 48 kHz event next.
    #[test]
    fn end_only_event_on_an_8_khz_pt_keeps_its_duration() {
        let mut r = EventRelay::new(8000);
        let first = r.relay(96000, 8000, &[7, 0x8a, 0x03, 0x20]).unwrap();
        assert_eq!(
            first,
            Relayed {
                copies: 3,
                marker: true,
                payload: [7, 0x8a, 0x03, 0x20],
                ts_offset: 0
            }
        );
        assert_eq!(r.relay(96000, 8000, &[7, 0x8a, 0x03, 0x20]), None);
        assert_eq!(r.relay(96000, 8000, &[7, 0x8a, 0x03, 0x20]), None);
        // 4800 ticks at 48 kHz = 800 at 8 kHz.
        let next = r.relay(120000, 48000, &[8, 0x8a, 0x12, 0xc0]).unwrap();
        assert_eq!((next.marker, next.payload), (true, [8, 0x8a, 0x03, 0x20]));
        assert_eq!(r.relay(120000, 48000, &[8, 0x8a, 0x12, 0xc0]), None);
    }

    /// The packets of Debian sip-tester's `dtmf_2833_0.pcap` then `dtmf_2833_1.pcap` as
    /// SIPp replays them (events only, no audio): durations +320 per packet, the end
    /// three times, and "1" starting 4352 ticks *before* "0" in RTP time. Each event
    /// gets its marker and three end packets; the repeated ends are dropped.
    #[test]
    fn events_only_stream_with_backward_timestamp() {
        let mut r = EventRelay::new(48000);
        let mut sent = Vec::new();
        for (ts, key) in [(17632u32, 0u8), (13280, 1)] {
            for k in 0..10u16 {
                let end = k >= 7;
                let d = (320 * k.min(7)).to_be_bytes();
                let flags = if end { 0x80 | 10 } else { 10 };
                if let Some(out) = r.relay(ts, 8000, &[key, flags, d[0], d[1]]) {
                    sent.push((ts, out));
                }
            }
        }
        assert_eq!(sent.len(), 16, "8 relayed packets per event: {sent:?}");
        for (i, (ts, out)) in sent.iter().enumerate() {
            let first = i % 8 == 0;
            assert_eq!(out.marker, first, "packet {i} at {ts}");
            assert_eq!(out.copies, if i % 8 == 7 { 3 } else { 1 }, "packet {i}");
            assert_eq!(out.ts_offset, 0);
            let d = u16::from_be_bytes([out.payload[2], out.payload[3]]);
            assert_eq!(u32::from(d), 320 * 6 * (i as u32 % 8), "packet {i}");
        }
    }
}
