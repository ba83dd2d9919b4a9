//! Silence toward the client while the trunk sends RFC 4733 telephone-events without
//! audio around them (silence suppression, as many SBCs and Asterisk do while a key is
//! held and between keys).
//!
//! libwebrtc (Conversations, Monal, Chromium) renders received events in NetEq, and
//! NetEq plays an event only while its playout timestamp lies inside the event
//! (`DtmfBuffer::GetEvent`). That timestamp moves with decoded *audio* packets; audio
//! older than what was played is discarded (`DiscardOldPackets`); and once an expansion
//! is muted with no audio packet buffered, `NetEqImpl::GetAudioInternal` returns silence
//! without looking at its DTMF buffer at all (the receive streams enable NetEq's muted
//! state). Events alone are then never played, except the first one of a call.
//!
//! So on the path toward the client, while the source leg's audio has stopped
//! ([`AUDIO_STOPPED_AFTER`]) and an event has run [`MIN_EVENT_LEAD`] past the end of the
//! last audio sent, every relayed event packet is followed by silence frames in the
//! client leg's codec (Opus from the path's own encoder, or a precomputed Opus/G.711
//! silence frame in passthrough) that cover the event up to its start plus its current
//! duration: 20 ms per frame, never a timestamp twice, never behind what was already
//! sent, at most [`MAX_FRAMES_PER_EVENT_PACKET`] at once; the repeated end packets add
//! nothing. The gaps between keys need nothing: the next key's first frame wakes NetEq
//! up and moves it forward. A new event at an RTP time before what was already sent (a
//! trunk whose RTP time jumps back) starts at the client leg's current time instead.
//! When the audio resumes, it keeps the path's mapping after the silence; audio that
//! starts inside it is dropped up to its end, audio far behind it
//! ([`MAX_DROPPED_OVERLAP`]) is moved after it.
//!
//! Nothing changes while the source sends audio: the state only records where its last
//! packet ended and when it arrived.

use std::time::{Duration, Instant};

use crate::codec::Codec;

/// How much longer than its last audio packet lasted the source leg may stay without
/// audio before events from it count as events without audio: 40 ms, so 60 ms after the
/// last packet with 20 ms packets, 100 ms with 60 ms packets (a late audio packet is not
/// a stop).
pub(crate) const AUDIO_STOPPED_AFTER: Duration = Duration::from_millis(40);

/// How far, in RTP time, an event must have run past the end of the last audio sent
/// before silence frames start (60 ms): with the arrival rule above, a trunk that sends
/// audio along with its events never gets silence inserted, even when a loaded machine
/// or a lost packet delays its audio. Without audio sent before, frames start at once.
pub(crate) const MIN_EVENT_LEAD: Duration = Duration::from_millis(60);

/// How far behind the silence already sent resuming audio may start and still be
/// dropped up to where the silence ends (200 ms): its RTP time was covered, and sending
/// it would repeat timestamps. Audio further behind means the source's RTP time jumped;
/// it is then moved to follow the silence instead.
pub(crate) const MAX_DROPPED_OVERLAP: Duration = Duration::from_millis(200);

/// Most silence frames sent after one event packet (200 ms of 20 ms frames): bounds the
/// burst a jump in an event's duration can cause; later packets of the event catch up.
pub(crate) const MAX_FRAMES_PER_EVENT_PACKET: u32 = 10;

/// Whether RTP timestamp `a` is before `b` (modulo 2³², RFC 3550 §5.1).
pub(crate) fn is_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// The later of two RTP timestamps.
fn later(a: u32, b: u32) -> u32 {
    if is_before(a, b) {
        b
    } else {
        a
    }
}

/// Silence frames to send now: `count` frames from `first_ts`, one frame apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// RTP timestamp (output clock) of the first frame.
    pub first_ts: u32,
    /// Frames to send (0: none).
    pub count: u32,
    /// Marker bit on the first frame: it does not continue the audio sent before.
    pub marker: bool,
    /// The first frames of an events-only stretch: the audio before has ended.
    pub starts_stretch: bool,
}

/// What to do with an audio packet of the source leg ([`SilenceFill::resume`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Send it as mapped.
    Send,
    /// Drop it: silence already covers its RTP time.
    Drop,
    /// Rebase the path's mapping so that it starts at this output timestamp.
    Rebase(u32),
}

/// Per-path state of the silence fill toward the client leg.
#[derive(Debug)]
pub(crate) struct SilenceFill {
    /// Arrival of the source leg's last audio packet and its length in source clock
    /// ticks; `None`: no audio yet.
    last_audio: Option<(Instant, u32)>,
    /// The source leg's RTP clock rate, Hz.
    src_clock: u32,
    /// Output timestamp where the audio sent on this path ended (the next frame's).
    audio_end: Option<u32>,
    /// Output timestamp of the next silence frame during an events-only stretch.
    next_ts: Option<u32>,
    /// Output start of the event being relayed (fixed at its first packet).
    event_ts: u32,
    /// Output clock ticks of one 20 ms frame.
    frame_ticks: u32,
    /// [`MIN_EVENT_LEAD`] in output clock ticks.
    lead_ticks: u32,
    /// [`MAX_DROPPED_OVERLAP`] in output clock ticks.
    overlap_ticks: u32,
    /// The silence payload on a passthrough path (no encoder there); empty when
    /// transcoding (the path's encoder encodes silence).
    pub(crate) frame: Vec<u8>,
}

impl SilenceFill {
    /// Fill from a leg of codec `src` toward a leg of codec `dst`; `frame` as
    /// [`SilenceFill::frame`].
    pub(crate) fn new(src: Codec, dst: Codec, frame: Vec<u8>) -> Self {
        let clock = dst.clock_rate();
        let ticks = |d: Duration| (u128::from(clock) * d.as_millis() / 1000) as u32;
        Self {
            last_audio: None,
            src_clock: src.clock_rate(),
            audio_end: None,
            next_ts: None,
            event_ts: 0,
            frame_ticks: dst.frame_ticks(),
            lead_ticks: ticks(MIN_EVENT_LEAD),
            overlap_ticks: ticks(MAX_DROPPED_OVERLAP),
            frame,
        }
    }

    /// An audio packet lasting `ticks` of the source's clock arrived from the source
    /// leg at `now` (kept as is: the packet path does no arithmetic for this).
    pub(crate) fn on_audio_in(&mut self, now: Instant, ticks: u32) {
        self.last_audio = Some((now, ticks));
    }

    /// Whether the source leg's audio has stopped at `now` (or never started): events
    /// relayed now may need silence frames.
    pub(crate) fn is_audio_stopped(&self, now: Instant) -> bool {
        self.last_audio.is_none_or(|(at, ticks)| {
            now >= at + ticks_duration(ticks, self.src_clock) + AUDIO_STOPPED_AFTER
        })
    }

    /// Whether an events-only stretch is under way: silence was sent since the last
    /// audio (only then does [`SilenceFill::resume`] have anything to do).
    pub(crate) fn is_filling(&self) -> bool {
        self.next_ts.is_some()
    }

    /// Audio sent on this path ended at output timestamp `end`.
    pub(crate) fn on_audio_out(&mut self, end: u32) {
        self.audio_end = Some(end);
    }

    /// The output start of a relayed event whose start maps to `mapped`. Its first
    /// packet (`first`) fixes it: `mapped`, unless the source's audio has stopped
    /// (`stopped`) and that is before what was already sent (audio or silence), since
    /// the client discards audio older than what it played; the event then starts at
    /// `now_ts`, the client leg's current RTP time, or right after what was sent if that
    /// is later. Later packets of the event keep its start. Returns the start and
    /// whether it moved (the caller rebases the path's mapping).
    pub(crate) fn event_start(
        &mut self,
        first: bool,
        mapped: u32,
        stopped: bool,
        now_ts: u32,
    ) -> (u32, bool) {
        if !first {
            return (self.event_ts, false);
        }
        let floor = self.next_ts.or(self.audio_end);
        let moved = match floor {
            Some(f) if stopped && is_before(mapped, f) => Some(later(f, now_ts)),
            _ => None,
        };
        self.event_ts = moved.unwrap_or(mapped);
        (self.event_ts, moved.is_some())
    }

    /// Whether an event at output time `upto` (its start plus its duration) needs
    /// silence: a stretch is under way, no audio was sent before, or the event has run
    /// [`MIN_EVENT_LEAD`] past the end of the audio. Only ask while the audio is stopped
    /// ([`SilenceFill::is_audio_stopped`]).
    pub(crate) fn wants(&self, upto: u32) -> bool {
        self.next_ts.is_some()
            || self
                .audio_end
                .is_none_or(|e| !is_before(upto, e.wrapping_add(self.lead_ticks)))
    }

    /// The frames to send so that the client has audio up to output timestamp `upto`
    /// (the event's start plus its current duration; a frame *at* `upto` is included, so
    /// pass one tick less for an event's end) for an event starting at `event_start`;
    /// advances the state past them.
    pub(crate) fn plan(&mut self, event_start: u32, upto: u32) -> Plan {
        let prev = self.next_ts.or(self.audio_end);
        let first_ts = prev.map_or(event_start, |p| later(p, event_start));
        let count = if is_before(upto, first_ts) {
            0
        } else {
            (upto.wrapping_sub(first_ts) / self.frame_ticks + 1).min(MAX_FRAMES_PER_EVENT_PACKET)
        };
        let starts_stretch = count > 0 && self.next_ts.is_none();
        if count > 0 {
            self.next_ts = Some(first_ts.wrapping_add(count * self.frame_ticks));
        }
        Plan {
            first_ts,
            count,
            marker: prev != Some(first_ts),
            starts_stretch,
        }
    }

    /// An audio packet of the source that maps to output timestamp `mapped` is about to
    /// go out (`now_ts`: the client leg's current RTP time). Outside a stretch, or at or
    /// after its end, it is sent and ends the stretch; up to [`MAX_DROPPED_OVERLAP`]
    /// before the end it is dropped; further before, the mapping is rebased to continue
    /// after the silence (or at `now_ts` if later) and the stretch ends.
    pub(crate) fn resume(&mut self, mapped: u32, now_ts: u32) -> Resume {
        let Some(next) = self.next_ts else {
            return Resume::Send;
        };
        if !is_before(mapped, next) {
            self.next_ts = None;
            Resume::Send
        } else if next.wrapping_sub(mapped) <= self.overlap_ticks {
            Resume::Drop
        } else {
            self.next_ts = None;
            Resume::Rebase(later(next, now_ts))
        }
    }

    /// Output clock ticks of one frame.
    pub(crate) fn frame_ticks(&self) -> u32 {
        self.frame_ticks
    }
}

/// How long an audio payload of `codec` lasts, in its RTP clock's ticks: one byte per
/// sample for G.711; for Opus from the TOC byte and frame count
/// ([RFC 6716 §3.1](https://www.rfc-editor.org/rfc/rfc6716#section-3.1)), 20 ms when
/// unreadable.
pub(crate) fn payload_ticks(codec: Codec, payload: &[u8]) -> u32 {
    match codec {
        Codec::Pcmu | Codec::Pcma => payload.len() as u32,
        Codec::Opus => opus_ticks(payload).unwrap_or(codec.frame_ticks()),
    }
}

/// 48 kHz ticks of an Opus packet.
fn opus_ticks(payload: &[u8]) -> Option<u32> {
    let toc = *payload.first()?;
    let config = toc >> 3;
    // Frame sizes in 48 kHz ticks: SILK 10/20/40/60 ms, hybrid 10/20, CELT 2.5/5/10/20.
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][(config % 4) as usize],
        12..=15 => [480, 960][(config % 2) as usize],
        _ => [120, 240, 480, 960][(config % 4) as usize],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*payload.get(1)? & 0x3f),
    };
    (frames > 0).then_some(frame * frames)
}

/// A [`Duration`] of `ticks` of a `clock` Hz RTP clock.
pub(crate) fn ticks_duration(ticks: u32, clock: u32) -> Duration {
    Duration::from_micros(u64::from(ticks) * 1_000_000 / u64::from(clock.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_frames_up_to_the_event_duration_without_repeating() {
        let mut f = SilenceFill::new(Codec::Pcmu, Codec::Opus, Vec::new());
        assert!(f.wants(1000), "no audio sent before");
        // First packet of an event at 1000, duration 0: one frame at the start.
        let p = f.plan(1000, 1000);
        assert_eq!(
            (p.first_ts, p.count, p.marker, p.starts_stretch),
            (1000, 1, true, true)
        );
        // Duration 960 then 1920: one frame each, contiguous, no marker.
        assert_eq!(f.plan(1000, 1960).first_ts, 1960);
        let p = f.plan(1000, 2920);
        assert_eq!(
            (p.first_ts, p.count, p.marker, p.starts_stretch),
            (2920, 1, false, false)
        );
        // The same duration again (a repeat): nothing.
        assert_eq!(f.plan(1000, 2920).count, 0);
        // A jump of 100 ms: five frames.
        assert_eq!(f.plan(1000, 7720).count, 5);
        // A jump of 10 s: capped.
        assert_eq!(
            f.plan(1000, 1000 + 480_000).count,
            MAX_FRAMES_PER_EVENT_PACKET
        );
    }

    #[test]
    fn silence_starts_only_once_the_event_runs_60_ms_past_the_audio() {
        let mut f = SilenceFill::new(Codec::Pcmu, Codec::Pcmu, Vec::new());
        f.on_audio_out(8000);
        assert!(!f.wants(8000 + 479));
        assert!(f.wants(8000 + 480));
        // It fills from where the audio ended.
        let p = f.plan(7900, 8480);
        assert_eq!((p.first_ts, p.count, p.marker), (8000, 4, false));
        assert!(f.wants(8000), "under way: every packet");
    }

    #[test]
    fn a_new_event_behind_what_was_sent_moves_to_the_present() {
        let mut f = SilenceFill::new(Codec::Pcmu, Codec::Opus, Vec::new());
        assert_eq!(f.event_start(true, 100_000, true, 0), (100_000, false));
        f.plan(100_000, 100_000 + 4 * 960);
        assert_eq!(f.next_ts, Some(100_000 + 5 * 960));
        // Later packets keep the start, whatever the mapping says now.
        assert_eq!(f.event_start(false, 7, true, 0), (100_000, false));
        // A later event keeps its time (a gap is fine), an earlier one moves.
        assert_eq!(
            f.event_start(true, 200_000, true, 150_000),
            (200_000, false)
        );
        assert_eq!(f.event_start(true, 50_000, true, 150_000), (150_000, true));
        assert_eq!(
            f.event_start(true, 50_000, true, 90_000),
            (100_000 + 5 * 960, true)
        );
        // Not while the audio flows.
        assert_eq!(f.event_start(true, 50_000, false, 90_000), (50_000, false));
        // Across the 32-bit wrap.
        let mut w = SilenceFill::new(Codec::Pcmu, Codec::Pcmu, Vec::new());
        w.on_audio_out(u32::MAX - 80);
        assert_eq!(w.event_start(true, 40, true, 0), (40, false));
        assert_eq!(w.event_start(true, u32::MAX - 200, true, 0), (0, true));
        assert_eq!(
            w.event_start(true, u32::MAX - 200, true, u32::MAX - 1000),
            (u32::MAX - 80, true)
        );
        // Frames at MAX-80 and 79 (160 ticks on, past the wrap).
        let p = w.plan(u32::MAX - 80, 79);
        assert_eq!((p.first_ts, p.count, p.marker), (u32::MAX - 80, 2, false));
        assert_eq!(w.next_ts, Some(239));
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // virtual time anchored at Instant::now()
    fn resuming_audio_is_sent_dropped_or_moved_after_the_silence() {
        let mut f = SilenceFill::new(Codec::Pcmu, Codec::Pcmu, Vec::new());
        let t0 = Instant::now();
        assert!(f.is_audio_stopped(t0), "no audio yet");
        f.on_audio_in(t0, 160);
        assert!(!f.is_audio_stopped(t0 + Duration::from_millis(59)));
        assert!(f.is_audio_stopped(t0 + Duration::from_millis(60)));
        assert_eq!(f.resume(0, 0), Resume::Send, "no stretch: nothing to do");
        f.on_audio_out(8000);
        let p = f.plan(9000, 9000);
        assert_eq!((p.first_ts, p.count, p.marker), (9000, 1, true));
        // 20 ms behind the end of the silence: dropped, the stretch goes on.
        assert_eq!(f.resume(9000, 0), Resume::Drop);
        // At its end: sent, the stretch is over.
        assert_eq!(f.resume(9160, 0), Resume::Send);
        assert_eq!(f.next_ts, None);
        assert_eq!(f.resume(9000, 0), Resume::Send);
        // 200 ms behind: dropped; 200 ms and a tick: moved.
        f.plan(20_000, 20_000);
        assert_eq!(f.resume(20_160 - 1600, 0), Resume::Drop);
        assert_eq!(f.resume(20_160 - 1601, 20_000), Resume::Rebase(20_160));
        assert_eq!(f.next_ts, None);
        f.plan(30_000, 30_000);
        assert_eq!(f.resume(1000, 40_000), Resume::Rebase(40_000));
    }

    #[test]
    fn payload_durations() {
        assert_eq!(payload_ticks(Codec::Pcmu, &[0xff; 480]), 480);
        // SILK NB 20 ms, one frame; CELT FB 20 ms; SILK 60 ms; two 10 ms; code 3 with 3.
        assert_eq!(payload_ticks(Codec::Opus, &[0x08, 1, 2]), 960);
        assert_eq!(payload_ticks(Codec::Opus, &[0xf8, 0xff, 0xfe]), 960);
        assert_eq!(payload_ticks(Codec::Opus, &[0x18]), 2880);
        assert_eq!(payload_ticks(Codec::Opus, &[0x01, 0, 0]), 960);
        assert_eq!(payload_ticks(Codec::Opus, &[0x03, 3, 0]), 1440);
        assert_eq!(payload_ticks(Codec::Opus, &[]), 960);
        assert_eq!(ticks_duration(960, 48000), Duration::from_millis(20));
    }
}
