//! Relay of RFC 4733 telephone-events between legs: clock conversion, duration scaling,
//! end packets sent three times ([RFC 4733 §2.5.1.4](https://www.rfc-editor.org/rfc/rfc4733#section-2.5.1.4)),
//! never transcoded as audio.

/// Times the end packet of an event is sent.
pub(crate) const END_COPIES: usize = 3;

/// What to send for one received telephone-event packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Relayed {
    /// Copies to send (3 for the first end packet, else 1).
    pub copies: usize,
    /// Marker bit: first packet of an event.
    pub marker: bool,
    /// The 4-byte payload: event, E|R|volume, duration in the output clock.
    pub payload: [u8; 4],
}

/// Per-direction relay state.
#[derive(Debug)]
pub(crate) struct EventRelay {
    in_clock: u32,
    out_clock: u32,
    current: Option<u32>,
    ended: bool,
}

impl EventRelay {
    pub(crate) fn new(in_clock: u32, out_clock: u32) -> Self {
        Self {
            in_clock,
            out_clock,
            current: None,
            ended: false,
        }
    }

    /// Handles one event packet with RTP timestamp `ts`; `None` means drop it (malformed,
    /// or a repeated end packet already sent three times).
    pub(crate) fn relay(&mut self, ts: u32, payload: &[u8]) -> Option<Relayed> {
        if payload.len() < 4 {
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
        let scaled = (duration * self.out_clock as u64 / self.in_clock as u64).min(0xffff) as u16;
        let d = scaled.to_be_bytes();
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_duration_and_sends_end_three_times_once() {
        let mut r = EventRelay::new(48000, 8000);
        // Digit 5, volume 10, 960 ticks (20 ms at 48 kHz).
        let a = r.relay(1000, &[5, 10, 0x03, 0xc0]).unwrap();
        assert_eq!(
            a,
            Relayed {
                copies: 1,
                marker: true,
                payload: [5, 10, 0, 160]
            }
        );
        let b = r.relay(1000, &[5, 10, 0x07, 0x80]).unwrap();
        assert_eq!(
            b,
            Relayed {
                copies: 1,
                marker: false,
                payload: [5, 10, 1, 64]
            }
        ); // 1920 → 320
        let end = r.relay(1000, &[5, 0x8a, 0x1c, 0x20]).unwrap(); // 7200 → 1200
        assert_eq!(
            end,
            Relayed {
                copies: 3,
                marker: false,
                payload: [5, 0x8a, 0x04, 0xb0]
            }
        );
        assert_eq!(r.relay(1000, &[5, 0x8a, 0x1c, 0x20]), None);
        assert_eq!(r.relay(1000, &[5, 0x8a, 0x1c, 0x20]), None);
        // The next event starts with a marker.
        assert!(r.relay(9000, &[11, 10, 0, 0]).unwrap().marker);
        assert_eq!(r.relay(9000, &[11]), None);
    }

    #[test]
    fn upscales_and_clamps() {
        let mut r = EventRelay::new(8000, 48000);
        assert_eq!(
            r.relay(0, &[1, 10, 0, 160]).unwrap().payload,
            [1, 10, 0x03, 0xc0]
        );
        assert_eq!(
            r.relay(0, &[1, 10, 0x30, 0]).unwrap().payload[2..],
            [0xff, 0xff]
        );
    }
}
