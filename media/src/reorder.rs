//! A small bounded reorder buffer for the transcoding path: packets in order pass at
//! once; after a gap the later packets wait at most `max_delay` (default 60 ms) for the
//! missing one, then the gap is declared lost and concealed by the decoder.

use std::time::{Duration, Instant};

/// Most packets held at once.
pub(crate) const CAPACITY: usize = 8;

/// One buffered RTP packet (payload only; header fields kept apart).
#[derive(Debug)]
pub(crate) struct Entry {
    pub seq: u16,
    pub ts: u32,
    pub pt: u8,
    pub marker: bool,
    pub arrived: Instant,
    pub payload: Vec<u8>,
}

/// A released packet and how many sequence numbers were skipped before it.
#[derive(Debug)]
pub(crate) struct Released {
    pub entry: Entry,
    pub lost_before: u16,
}

#[derive(Debug)]
pub(crate) struct Reorder {
    max_delay: Duration,
    next: Option<u16>,
    held: Vec<Entry>,
    pool: Vec<Vec<u8>>,
    /// Packets that arrived after their slot was given up, or duplicates.
    pub late: u64,
}

fn diff(a: u16, b: u16) -> i32 {
    a.wrapping_sub(b) as i16 as i32
}

impl Reorder {
    pub(crate) fn new(max_delay: Duration) -> Self {
        Self {
            max_delay,
            next: None,
            held: Vec::with_capacity(CAPACITY + 1),
            pool: (0..CAPACITY + 1)
                .map(|_| Vec::with_capacity(1500))
                .collect(),
            late: 0,
        }
    }

    /// Forgets the expected sequence number (a new SSRC started).
    pub(crate) fn reset(&mut self) {
        self.next = None;
        while let Some(e) = self.held.pop() {
            self.recycle(e.payload);
        }
    }

    /// Returns a payload buffer for reuse.
    pub(crate) fn recycle(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        if self.pool.len() <= CAPACITY {
            self.pool.push(buf);
        }
    }

    /// Buffers a packet; returns false if it was late or a duplicate.
    pub(crate) fn push(
        &mut self,
        now: Instant,
        seq: u16,
        ts: u32,
        pt: u8,
        marker: bool,
        payload: &[u8],
    ) -> bool {
        let next = *self.next.get_or_insert(seq);
        let d = diff(seq, next);
        if d < 0 || self.held.iter().any(|e| e.seq == seq) {
            // Far behind (more than half the space) means the stream jumped: restart.
            if d < -1000 {
                self.reset();
                return self.push(now, seq, ts, pt, marker, payload);
            }
            self.late += 1;
            return false;
        }
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.extend_from_slice(payload);
        let pos = self
            .held
            .iter()
            .position(|e| diff(e.seq, seq) > 0)
            .unwrap_or(self.held.len());
        self.held.insert(
            pos,
            Entry {
                seq,
                ts,
                pt,
                marker,
                arrived: now,
                payload: buf,
            },
        );
        true
    }

    /// Next packet to process now, if any.
    pub(crate) fn pop(&mut self, now: Instant) -> Option<Released> {
        let next = self.next?;
        let first = self.held.first()?;
        let lost_before = diff(first.seq, next) as u16;
        let ready = lost_before == 0
            || self.held.len() > CAPACITY.min(self.max_packets())
            || first.arrived + self.max_delay <= now;
        if !ready {
            return None;
        }
        let entry = self.held.remove(0);
        self.next = Some(entry.seq.wrapping_add(1));
        Some(Released { entry, lost_before })
    }

    /// When the first held packet stops waiting for the gap before it.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let next = self.next?;
        let first = self.held.first()?;
        (first.seq != next).then_some(first.arrived + self.max_delay)
    }

    fn max_packets(&self) -> usize {
        ((self.max_delay.as_millis() / 20) as usize).max(1)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests anchor virtual time at Instant::now()
mod tests {
    use super::*;

    #[test]
    fn in_order_passes_at_once_and_gap_waits_then_is_lost() {
        let t0 = Instant::now();
        let mut r = Reorder::new(Duration::from_millis(60));
        assert!(r.push(t0, 10, 0, 0, false, b"a"));
        assert_eq!(r.pop(t0).unwrap().entry.seq, 10);
        assert!(r.pop(t0).is_none());
        // 11 missing, 12 arrives: held.
        r.push(t0, 12, 0, 0, false, b"c");
        assert!(r.pop(t0).is_none());
        assert_eq!(r.deadline(), Some(t0 + Duration::from_millis(60)));
        // 11 arrives late but in time: both released in order.
        r.push(t0 + Duration::from_millis(30), 11, 0, 0, false, b"b");
        let a = r.pop(t0).unwrap();
        assert_eq!((a.entry.seq, a.lost_before), (11, 0));
        assert_eq!(r.pop(t0).unwrap().entry.seq, 12);
        // 13 lost for good: 14 is released at the deadline with lost_before 1.
        r.push(t0, 14, 0, 0, false, b"e");
        assert!(r.pop(t0 + Duration::from_millis(59)).is_none());
        let e = r.pop(t0 + Duration::from_millis(60)).unwrap();
        assert_eq!((e.entry.seq, e.lost_before), (14, 1));
        // 13 now is late.
        assert!(!r.push(t0, 13, 0, 0, false, b"d"));
        assert_eq!(r.late, 1);
    }

    #[test]
    fn bounded_and_wraps() {
        let t0 = Instant::now();
        let mut r = Reorder::new(Duration::from_millis(60));
        r.push(t0, 65535, 0, 0, false, b"x");
        assert_eq!(r.pop(t0).unwrap().entry.seq, 65535);
        // 0 lost; 1..=4 arrive: more than 3 held forces release without waiting.
        for s in 1..=4u16 {
            r.push(t0, s, 0, 0, false, b"y");
        }
        let first = r.pop(t0).unwrap();
        assert_eq!((first.entry.seq, first.lost_before), (1, 1));
        assert!(!r.push(t0, 1, 0, 0, false, b"dup"));
    }
}
