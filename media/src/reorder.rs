//! The adaptive reorder/jitter buffer of the transcoding path (passthrough never uses it).
//!
//! The decoder needs packets in sequence order and must know when to conceal a gap
//! (Opus FEC/PLC, G.711 silence). Packets in order are released at once: the far ends
//! de-jitter by RTP timestamp themselves, so holding them here would only add latency.
//! Behind a gap, the packets wait for the missing one until a **target delay** after the
//! expected arrival of the first packet behind the gap; then the gap is declared lost.
//!
//! The target adapts to the measured delay variation, from a minimum (defaults to one
//! 20 ms packet) to a maximum (defaults to 60 ms):
//! - each audio packet's *relative delay* is its transit time (arrival minus RTP timestamp,
//!   [RFC 3550 §6.4.1](https://www.rfc-editor.org/rfc/rfc3550#section-6.4.1) and
//!   [Appendix A.8](https://www.rfc-editor.org/rfc/rfc3550#appendix-A.8)) minus the smallest
//!   transit of the last [`WINDOW`] packets (the fastest packet defines "on time", as in
//!   libwebrtc's NetEq relative-delay estimate);
//! - the target follows the 95th percentile of those delays, and the largest delay of a
//!   packet that arrived after a later one (reordered or too late) during the last
//!   [`WINDOW`] packets (a peak, as NetEq keeps them): it grows at once, and shrinks by
//!   1/32 of the difference (at least 1 ms) per packet once the network is steady again.
//!   The percentile is recomputed every 4 audio packets.
//!
//! Late packets (their slot was concealed already) and duplicates are discarded and
//! counted. At most the maximum delay's worth of packets (and never more than
//! [`CAPACITY`]) is held; more force the release.
//! All times come from `now: Instant` arguments; nothing here reads a clock or allocates
//! after construction.

use std::time::{Duration, Instant};

/// Most packets held at once.
pub(crate) const CAPACITY: usize = 8;
/// Audio packets in the relative-delay window (2.56 s of 20 ms packets).
pub(crate) const WINDOW: usize = 128;
/// Percentile of the relative delay the target covers.
const PERCENTILE: usize = 95;
/// The percentile is recomputed every this many audio packets (80 ms of 20 ms packets);
/// late and reordered packets move the target at once regardless.
const PERCENTILE_EVERY: usize = 4;
/// When steady, the target moves this fraction of the way down per packet.
const SHRINK_DIV: u32 = 32;
/// Smallest shrink step per packet.
const SHRINK_MIN_STEP: Duration = Duration::from_millis(1);

/// One buffered RTP packet (payload only; header fields kept apart).
#[derive(Debug)]
pub(crate) struct Entry {
    pub seq: u16,
    pub ts: u32,
    pub pt: u8,
    pub marker: bool,
    /// When it would have arrived with the window's smallest transit time.
    pub expected: Instant,
    pub payload: Vec<u8>,
}

/// A released packet and how many sequence numbers were skipped before it.
#[derive(Debug)]
pub(crate) struct Released {
    pub entry: Entry,
    pub lost_before: u16,
}

/// Counters of the buffer since the call started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Packets that arrived out of order and were put back in order.
    pub reordered: u64,
    /// Packets that arrived after their slot was concealed: discarded.
    pub late: u64,
    /// Duplicates of packets held or played: discarded.
    pub duplicates: u64,
    /// Gaps given up before their deadline because the buffer was full.
    pub overflows: u64,
}

/// Relative-delay estimate over a window of audio packets.
#[derive(Debug)]
struct DelayEstimator {
    clock: i64,
    anchor: Option<Instant>,
    last_ts: u32,
    /// RTP timestamp since the anchor, unwrapped.
    ext_ts: i64,
    /// Transit times in µs (arrival since the anchor minus media time since the anchor).
    transits: [i64; WINDOW],
    len: usize,
    pos: usize,
    min: i64,
}

impl DelayEstimator {
    fn new(clock: u32) -> Self {
        Self {
            clock: clock.max(1) as i64,
            anchor: None,
            last_ts: 0,
            ext_ts: 0,
            transits: [0; WINDOW],
            len: 0,
            pos: 0,
            min: 0,
        }
    }

    fn reset(&mut self) {
        self.anchor = None;
        self.len = 0;
        self.pos = 0;
    }

    /// Records an audio packet; returns its relative delay in µs (≥ 0).
    fn observe(&mut self, now: Instant, ts: u32) -> i64 {
        let anchor = match self.anchor {
            Some(a) => a,
            None => {
                self.anchor = Some(now);
                self.last_ts = ts;
                self.ext_ts = 0;
                now
            }
        };
        self.ext_ts += ts.wrapping_sub(self.last_ts) as i32 as i64;
        self.last_ts = ts;
        let arrival = now.saturating_duration_since(anchor).as_micros() as i64;
        let transit = arrival - self.ext_ts * 1_000_000 / self.clock;
        let evicted = (self.len == WINDOW).then(|| self.transits[self.pos]);
        self.transits[self.pos] = transit;
        self.pos = (self.pos + 1) % WINDOW;
        self.len = (self.len + 1).min(WINDOW);
        if self.len == 1 || transit <= self.min {
            self.min = transit;
        } else if evicted == Some(self.min) {
            // The smallest left the window: rescan (rare).
            self.min = self.transits[..self.len]
                .iter()
                .copied()
                .min()
                .unwrap_or(transit);
        }
        transit - self.min
    }

    /// The [`PERCENTILE`]th percentile of the window's relative delays, in µs.
    fn percentile(&self) -> i64 {
        if self.len == 0 {
            return 0;
        }
        let mut d = [0i64; WINDOW];
        for (o, t) in d.iter_mut().zip(&self.transits[..self.len]) {
            *o = t - self.min;
        }
        let k = (self.len - 1) * PERCENTILE / 100;
        *d[..self.len].select_nth_unstable(k).1
    }
}

/// The adaptive buffer of one transcoded direction.
#[derive(Debug)]
pub(crate) struct Reorder {
    min_delay: Duration,
    max_delay: Duration,
    target: Duration,
    next: Option<u16>,
    /// Bit i: sequence number `next - 1 - i` was played (not concealed).
    played: u64,
    held: Vec<Entry>,
    pool: Vec<Vec<u8>>,
    est: DelayEstimator,
    /// Relative delay of the latest too-late packet and the audio packets since.
    peak: Duration,
    peak_age: usize,
    /// The window's percentile, recomputed every [`PERCENTILE_EVERY`] audio packets.
    percentile: Duration,
    since_percentile: usize,
    counters: Counters,
}

fn diff(a: u16, b: u16) -> i32 {
    a.wrapping_sub(b) as i16 as i32
}

impl Reorder {
    /// A buffer for a source with RTP clock `clock` (Hz) whose target stays within
    /// `min_delay..=max_delay` (`min_delay` is lowered to `max_delay` if above it).
    pub(crate) fn new(min_delay: Duration, max_delay: Duration, clock: u32) -> Self {
        let min_delay = min_delay.min(max_delay);
        Self {
            min_delay,
            max_delay,
            target: min_delay,
            next: None,
            played: 0,
            held: Vec::with_capacity(CAPACITY + 1),
            pool: (0..CAPACITY + 1)
                .map(|_| Vec::with_capacity(1500))
                .collect(),
            est: DelayEstimator::new(clock),
            peak: Duration::ZERO,
            peak_age: 0,
            percentile: Duration::ZERO,
            since_percentile: PERCENTILE_EVERY,
            counters: Counters::default(),
        }
    }

    /// The current target delay.
    pub(crate) fn target(&self) -> Duration {
        self.target
    }

    /// Counters since the call started.
    pub(crate) fn counters(&self) -> Counters {
        self.counters
    }

    /// Forgets the expected sequence number and the delay window (a new SSRC started);
    /// keeps the target delay and the counters.
    pub(crate) fn reset(&mut self) {
        self.next = None;
        self.played = 0;
        self.est.reset();
        self.since_percentile = PERCENTILE_EVERY;
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

    /// Buffers a packet that arrived at `now`; `audio` packets feed the delay estimate
    /// (telephone-events repeat their timestamp and must not). Returns false if it was
    /// late or a duplicate (discarded and counted).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push(
        &mut self,
        now: Instant,
        seq: u16,
        ts: u32,
        pt: u8,
        marker: bool,
        audio: bool,
        payload: &[u8],
    ) -> bool {
        let rel = audio.then(|| self.est.observe(now, ts));
        let next = *self.next.get_or_insert(seq);
        let d = diff(seq, next);
        if d < 0 {
            // Far behind means the stream jumped: restart.
            if d < -1000 {
                self.reset();
                return self.push(now, seq, ts, pt, marker, audio, payload);
            }
            let age = (-d - 1) as u32;
            if age < 64 && (self.played >> age) & 1 == 1 {
                self.counters.duplicates += 1;
            } else {
                self.counters.late += 1;
                // It was later than the target allowed: grow at once.
                self.out_of_order(rel);
                tracing::trace!(seq, "late packet discarded");
            }
            return false;
        }
        if self.held.iter().any(|e| e.seq == seq) {
            self.counters.duplicates += 1;
            return false;
        }
        if rel.is_some() {
            self.adapt();
        }
        let pos = self
            .held
            .iter()
            .position(|e| diff(e.seq, seq) > 0)
            .unwrap_or(self.held.len());
        if pos < self.held.len() {
            self.counters.reordered += 1;
            self.out_of_order(rel);
        }
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.extend_from_slice(payload);
        let expected = rel
            .and_then(|r| now.checked_sub(Duration::from_micros(r as u64)))
            .unwrap_or(now);
        self.held.insert(
            pos,
            Entry {
                seq,
                ts,
                pt,
                marker,
                expected,
                payload: buf,
            },
        );
        true
    }

    /// A packet arrived after a later one (in time, or too late): its relative delay is
    /// what a gap must wait for. The target covers it at once and for a window.
    fn out_of_order(&mut self, rel: Option<i64>) {
        if let Some(r) = rel {
            let d = Duration::from_micros(r as u64).clamp(self.min_delay, self.max_delay);
            self.peak = self.peak.max(d);
            self.peak_age = 0;
            self.target = self.target.max(d);
        }
    }

    /// Moves the target toward the window's percentile: up at once, down gradually.
    fn adapt(&mut self) {
        self.peak_age += 1;
        if self.peak_age > WINDOW {
            self.peak = Duration::ZERO;
        }
        self.since_percentile += 1;
        if self.since_percentile >= PERCENTILE_EVERY {
            self.since_percentile = 0;
            self.percentile = Duration::from_micros(self.est.percentile() as u64);
        }
        let want = self
            .percentile
            .max(self.peak)
            .clamp(self.min_delay, self.max_delay);
        if want >= self.target {
            self.target = want;
        } else {
            let step = ((self.target - want) / SHRINK_DIV).max(SHRINK_MIN_STEP);
            self.target = self.target.saturating_sub(step).max(want);
        }
    }

    /// Next packet to process now, if any.
    pub(crate) fn pop(&mut self, now: Instant) -> Option<Released> {
        let next = self.next?;
        let first = self.held.first()?;
        let lost_before = diff(first.seq, next) as u16;
        let due = first.expected + self.target <= now;
        let full = self.held.len() > CAPACITY.min(self.max_packets());
        if lost_before != 0 && !due && !full {
            return None;
        }
        if lost_before != 0 && !due {
            self.counters.overflows += 1;
        }
        let entry = self.held.remove(0);
        self.next = Some(entry.seq.wrapping_add(1));
        let shift = lost_before as u32 + 1;
        self.played = self.played.checked_shl(shift).unwrap_or(0) | 1;
        Some(Released { entry, lost_before })
    }

    /// When the first held packet stops waiting for the gap before it.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let next = self.next?;
        let first = self.held.first()?;
        (first.seq != next).then_some(first.expected + self.target)
    }

    fn max_packets(&self) -> usize {
        ((self.max_delay.as_millis() / 20) as usize).max(1)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests anchor virtual time at Instant::now()
mod tests;
