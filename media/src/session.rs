//! [`Session`]: the per-call media pipeline between the client (Jingle) leg and the trunk
//! (SIP) leg.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::cert::Certificate;
use crate::codec::{Codec, Decoder, Encoder, OpusSettings, FRAME_SAMPLES, MAX_DECODED_SAMPLES};
use crate::config::{Config, LegConfig, Security};
use crate::demux::{classify, PacketKind};
use crate::dtls::{Dtls, DtlsEvent};
use crate::dtmf::{EventRelay, Relayed};
use crate::error::{Error, PeerMisbehaved, Result};
use crate::reorder::{Released, Reorder};
use crate::rtcp;
use crate::rtp::{write_header, RtpHeader, FIXED_HEADER_LEN};
use crate::silence::{payload_ticks, Plan, Resume, SilenceFill};
use crate::srtp::{SrtpContext, SrtpProfile};
use crate::stats::{JitterBufferStats, LegStats, RxTracker};

/// Largest payload we build (an Opus packet is at most 1275 bytes).
const MAX_PAYLOAD: usize = 1275;
/// Buffer capacity: header, payload, SRTP tag, RTCP trailer.
const BUF_CAPACITY: usize = 1500;
/// Free transmit buffers kept for reuse.
const POOL_MAX: usize = 32;
/// 20 ms of silence at 8 kHz, encoded toward the client while the trunk sends events
/// without audio ([`crate::silence`]).
static SILENT_PCM: [i16; FRAME_SAMPLES] = [0; FRAME_SAMPLES];

/// One of the two legs of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The XMPP client's Jingle leg: ICE, DTLS-SRTP (or plain RTP if allowed).
    Client,
    /// The SIP trunk's leg: RTP/AVP or RTP/SAVP with SDES.
    Trunk,
}

impl Leg {
    fn idx(self) -> usize {
        match self {
            Self::Client => 0,
            Self::Trunk => 1,
        }
    }

    /// The other leg.
    pub fn other(self) -> Self {
        match self {
            Self::Client => Self::Trunk,
            Self::Trunk => Self::Client,
        }
    }
}

/// What a [`Transmit`] carries; RTCP goes to the RTCP port on a trunk without rtcp-mux.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransmitKind {
    /// A DTLS handshake record (client leg).
    Dtls,
    /// (S)RTP.
    Rtp,
    /// (S)RTCP.
    Rtcp,
}

/// A datagram to send on a leg's selected path (ICE pair or latched trunk address).
/// It borrows the session's buffer: send it before polling again.
#[derive(Debug)]
pub struct Transmit<'a> {
    /// The leg to send on.
    pub leg: Leg,
    /// What it is.
    pub kind: TransmitKind,
    /// The datagram.
    pub contents: &'a [u8],
}

/// Events for the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// DTLS completed on the client leg with a matching fingerprint; media may flow.
    DtlsConnected {
        /// The negotiated SRTP profile.
        profile: SrtpProfile,
    },
    /// The client closed DTLS (close_notify).
    DtlsClosed,
    /// No RTP arrived on `leg` for [`Config::no_media_timeout`].
    NoMedia {
        /// The silent leg (media from it stopped).
        leg: Leg,
    },
    /// RTP arrives again on `leg` after [`Event::NoMedia`].
    MediaResumed {
        /// The leg.
        leg: Leg,
    },
}

struct Pending {
    leg: Leg,
    kind: TransmitKind,
    buf: Vec<u8>,
}

/// Queue of transmits plus recycled buffers (the steady state allocates nothing).
struct Output {
    queue: VecDeque<Pending>,
    pool: Vec<Vec<u8>>,
}

impl Output {
    fn buffer(&mut self) -> Vec<u8> {
        self.pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BUF_CAPACITY))
    }

    fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.pool.len() < POOL_MAX {
            buf.clear();
            self.pool.push(buf);
        }
    }
}

/// Sending side of a leg.
struct Sender {
    ssrc: u32,
    srtp: Option<SrtpContext>,
    /// False until DTLS completes on a DTLS leg.
    ready: bool,
    next_seq: u16,
    last_ts: u32,
    last_at: Option<Instant>,
    clock: u32,
    packets: u64,
    octets: u64,
    sent_since_report: bool,
}

impl Sender {
    /// RTP timestamp for "now" continuing our last one (for a new source or an SR).
    fn ts_at(&self, now: Instant) -> u32 {
        match self.last_at {
            Some(at) => self
                .last_ts
                .wrapping_add(ticks(now.saturating_duration_since(at), self.clock)),
            None => self.last_ts,
        }
    }
}

fn ticks(d: Duration, clock: u32) -> u32 {
    (d.as_nanos() * clock as u128 / 1_000_000_000) as u32
}

struct LegState {
    leg: Leg,
    cfg: LegConfig,
    tx: Sender,
    rx_srtp: Option<SrtpContext>,
    dtls: Option<Dtls>,
    rx: RxTracker,
    stats: LegStats,
    last_media: Instant,
    no_media_reported: bool,
    next_rtcp: Instant,
    last_sr_mid: u32,
    last_sr_at: Option<Instant>,
}

/// Linear map of input RTP timestamps to output ones (clock conversion, rebasing on a
/// new source).
#[derive(Debug, Clone, Copy)]
struct Mapper {
    in_base: u32,
    out_base: u32,
    in_clock: u32,
    out_clock: u32,
}

impl Mapper {
    fn map(&self, ts: u32) -> u32 {
        let d = ts.wrapping_sub(self.in_base) as i32 as i64;
        let scaled = d * self.out_clock as i64 / self.in_clock as i64;
        self.out_base.wrapping_add(scaled as u32)
    }
}

struct Transcoder {
    dec: Decoder,
    enc: Encoder,
    reorder: Reorder,
    fifo: Vec<i16>,
    fifo_ts: u32,
    pcm: Vec<i16>,
    last_in_ts: u32,
    last_frame_ticks: u32,
    have_last: bool,
}

enum Mode {
    Passthrough { seq_offset: u16 },
    Transcode(Box<Transcoder>),
}

/// One direction: media from `from` to the other leg.
struct Path {
    mode: Mode,
    mapper: Mapper,
    in_ssrc: Option<u32>,
    relay: EventRelay,
    marker_pending: bool,
    /// Toward the client leg only: silence while the source sends events without audio.
    fill: Option<SilenceFill>,
}

/// The per-call media pipeline (sans-IO).
///
/// Method categories:
/// - A) getters: [`stats`](Self::stats), [`is_transcoding`](Self::is_transcoding), [`is_ready`](Self::is_ready);
/// - B) input: [`handle_packet`](Self::handle_packet) for each datagram from a leg's validated
///   path (STUN already taken by the ICE agent), [`handle_timeout`](Self::handle_timeout);
/// - C) commands: [`start_dtls`](Self::start_dtls) when ICE selected a pair;
/// - D) output: [`poll_transmit`](Self::poll_transmit), then [`poll_event`](Self::poll_event),
///   then [`poll_timeout`](Self::poll_timeout).
///
/// After every B or C call drain all D polls before the next input. Media goes from one
/// leg to the other: passthrough (only SRTP and the RTP header change; sequence numbers
/// and timestamps are rewritten with continuity across a far end's SSRC change) when both
/// legs use the same codec, otherwise Opus ↔ G.711 transcoding at 8 kHz with 20 ms
/// packets behind a bounded adaptive reorder/jitter buffer (see
/// [`Config::reorder_max_delay`]). RFC 4733 events are relayed with their clocks
/// converted; while the trunk sends events without audio, 20 ms silence frames in the
/// client leg's codec go to the client with them (libwebrtc plays events only along with
/// audio; counted in [`SendStats::silence_frames`](crate::stats::SendStats::silence_frames)).
/// Nothing is sent on a DTLS leg before the handshake completed and the peer's
/// fingerprint matched.
///
/// ```no_run
/// # use std::{sync::Arc, time::Instant};
/// # use media::*;
/// # fn run(mut s: Session, recv: impl Fn() -> Option<(Leg, Vec<u8>)>, send: impl Fn(Leg, TransmitKind, &[u8])) -> Result<()> {
/// s.start_dtls(Instant::now())?; // as DTLS client, once ICE selected a pair
/// loop {
///     if let Some((leg, datagram)) = recv() {
///         s.handle_packet(Instant::now(), leg, &datagram)?;
///     } else {
///         s.handle_timeout(Instant::now())?;
///     }
///     while let Some(t) = s.poll_transmit() {
///         send(t.leg, t.kind, t.contents);
///     }
///     while let Some(ev) = s.poll_event() {
///         // DtlsConnected, NoMedia, …
///     }
///     let _next_wakeup = s.poll_timeout();
/// }
/// # }
/// ```
pub struct Session {
    config: Arc<Config>,
    start: Instant,
    legs: [LegState; 2],
    paths: [Path; 2],
    out: Output,
    returned: Option<Pending>,
    events: VecDeque<Event>,
    scratch: Vec<u8>,
    cname: String,
    failed: Option<Error>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("client", &self.legs[0].cfg.codec)
            .field("trunk", &self.legs[1].cfg.codec)
            .field("transcoding", &self.is_transcoding())
            .finish_non_exhaustive()
    }
}

fn seq_diff(a: u16, b: u16) -> i32 {
    a.wrapping_sub(b) as i16 as i32
}

impl Session {
    /// A session between the client leg and the trunk leg. `cert` is our DTLS identity
    /// (its fingerprint was signalled); `rng` draws the initial sequence numbers and
    /// timestamps (RFC 3550 §5.1).
    ///
    /// # Errors
    /// - [`Error::ApiMisuse`] for DTLS on the trunk leg, or plain RTP on the client leg when
    ///   [`Config::allow_unencrypted_client`] is off;
    /// - [`Error::Local`] if libopus fails to initialise, or for a DTLS leg when the
    ///   [`Config::dtls`] settings were rejected.
    ///
    /// The DTLS handshake configuration is shared through `config` (built once per
    /// [`Config`], see [`DtlsContext`](crate::dtls::DtlsContext)), so a session is cheap to
    /// build.
    pub fn new(
        config: Arc<Config>,
        cert: &Certificate,
        client: LegConfig,
        trunk: LegConfig,
        rng: &mut dyn RngCore,
        start: Instant,
    ) -> Result<Self> {
        if matches!(trunk.security, Security::Dtls { .. }) {
            return Err(Error::ApiMisuse(
                "dtls-srtp on the trunk leg is not supported; use sdes or plain",
            ));
        }
        if client.security == Security::Plain && !config.allow_unencrypted_client {
            return Err(Error::ApiMisuse(
                "plain rtp on the client leg needs Config::allow_unencrypted_client",
            ));
        }
        let leg = |which: Leg, cfg: LegConfig, rng: &mut dyn RngCore| -> Result<LegState> {
            let (rx_srtp, tx_srtp, dtls, ready) = match &cfg.security {
                Security::Plain => (None, None, None, true),
                Security::Sdes { local, remote } => (
                    Some(SrtpContext::new(remote)),
                    Some(SrtpContext::new(local)),
                    None,
                    true,
                ),
                Security::Dtls {
                    role,
                    remote_fingerprint,
                } => (
                    None,
                    None,
                    Some(Dtls::with_context(
                        config.dtls_context()?,
                        cert,
                        *role,
                        *remote_fingerprint,
                        start,
                    )),
                    false,
                ),
            };
            let clock = cfg.codec.clock_rate();
            Ok(LegState {
                leg: which,
                tx: Sender {
                    ssrc: cfg.ssrc,
                    srtp: tx_srtp,
                    ready,
                    next_seq: rng.next_u32() as u16,
                    last_ts: rng.next_u32(),
                    last_at: None,
                    clock,
                    packets: 0,
                    octets: 0,
                    sent_since_report: false,
                },
                rx_srtp,
                dtls,
                rx: RxTracker::default(),
                stats: LegStats::default(),
                last_media: start,
                no_media_reported: false,
                next_rtcp: start + config.rtcp_interval,
                last_sr_mid: 0,
                last_sr_at: None,
                cfg,
            })
        };
        let path = |from: &LegConfig, to: &LegConfig, to_client: bool| -> Result<Path> {
            let passthrough = from.codec == to.codec;
            let mode = if passthrough {
                Mode::Passthrough { seq_offset: 0 }
            } else {
                Mode::Transcode(Box::new(Transcoder {
                    dec: Decoder::new(from.codec)?,
                    enc: Encoder::new(to.codec, &config.opus)?,
                    reorder: Reorder::new(
                        config.reorder_min_delay,
                        config.reorder_max_delay,
                        from.codec.clock_rate(),
                    ),
                    fifo: Vec::with_capacity(4 * MAX_DECODED_SAMPLES),
                    fifo_ts: 0,
                    pcm: vec![0; MAX_DECODED_SAMPLES],
                    last_in_ts: 0,
                    last_frame_ticks: from.codec.frame_ticks(),
                    have_last: false,
                }))
            };
            let (in_clock, out_clock) = (from.codec.clock_rate(), to.codec.clock_rate());
            let fill = if to_client && to.telephone_event.is_some() {
                let frame = if passthrough {
                    silence_frame(to.codec, &config.opus)?
                } else {
                    Vec::new()
                };
                Some(SilenceFill::new(from.codec, to.codec, frame))
            } else {
                None
            };
            Ok(Path {
                mode,
                mapper: Mapper {
                    in_base: 0,
                    out_base: 0,
                    in_clock,
                    out_clock,
                },
                in_ssrc: None,
                relay: EventRelay::new(out_clock),
                marker_pending: true,
                fill,
            })
        };
        let paths = [path(&client, &trunk, false)?, path(&trunk, &client, true)?];
        let cname = format!("jsg-{:08x}", rng.next_u32());
        let legs = [leg(Leg::Client, client, rng)?, leg(Leg::Trunk, trunk, rng)?];
        Ok(Self {
            config,
            start,
            legs,
            paths,
            out: Output {
                queue: VecDeque::new(),
                pool: (0..8).map(|_| Vec::with_capacity(BUF_CAPACITY)).collect(),
            },
            returned: None,
            events: VecDeque::new(),
            scratch: Vec::with_capacity(BUF_CAPACITY),
            cname,
            failed: None,
        })
    }

    /// Whether media is transcoded (the legs use different codecs).
    pub fn is_transcoding(&self) -> bool {
        matches!(self.paths[0].mode, Mode::Transcode(_))
    }

    /// Statistics of a leg.
    pub fn stats(&self, leg: Leg) -> LegStats {
        let l = &self.legs[leg.idx()];
        let mut s = l.stats;
        s.rx.lost = l.rx.lost();
        s.rx.jitter = Duration::from_nanos(
            l.rx.jitter() as u64 * 1_000_000_000 / l.cfg.codec.clock_rate() as u64,
        );
        if let Mode::Transcode(t) = &self.paths[leg.idx()].mode {
            let c = t.reorder.counters();
            s.rx.late = c.late;
            s.rx.jitter_buffer = Some(JitterBufferStats {
                target_delay: t.reorder.target(),
                reordered: c.reordered,
                late: c.late,
                duplicates: c.duplicates,
                overflows: c.overflows,
            });
        }
        s
    }

    /// Starts the DTLS handshake on the client leg: as DTLS client, queues the ClientHello.
    /// Call when ICE has selected (nominated) a pair. No-op without DTLS.
    ///
    /// # Errors
    /// As [`handle_timeout`](Self::handle_timeout).
    pub fn start_dtls(&mut self, now: Instant) -> Result<()> {
        self.check_failed()?;
        let r = match self.legs[0].dtls.as_mut() {
            Some(d) => d.start(now),
            None => return Ok(()),
        };
        self.after_dtls(now, r)
    }

    /// Feeds one datagram received on `leg` from its validated path.
    ///
    /// Junk, SRTP authentication failures, replays and media before keys are dropped and
    /// counted in [`stats`](Self::stats), not returned.
    ///
    /// # Errors
    /// Only fatal ones, after which the call must end: `PeerMisbehaved(FingerprintMismatch)`
    /// (security error), `PeerMisbehaved(DtlsFailed)`, [`Error::TimedOut`] (DTLS gave up).
    pub fn handle_packet(&mut self, now: Instant, leg: Leg, datagram: &[u8]) -> Result<()> {
        self.check_failed()?;
        let i = leg.idx();
        match classify(datagram) {
            PacketKind::Dtls => {
                let r = match self.legs[i].dtls.as_mut() {
                    Some(d) => d.handle_packet(now, datagram),
                    None => {
                        self.legs[i].stats.rx.dropped += 1;
                        return Ok(());
                    }
                };
                self.after_dtls(now, r)
            }
            PacketKind::Rtp => {
                self.on_rtp(now, leg, datagram);
                Ok(())
            }
            PacketKind::Rtcp => {
                self.on_rtcp(now, leg, datagram);
                Ok(())
            }
            other => {
                tracing::trace!(?other, ?leg, "dropped non-media datagram");
                self.legs[i].stats.rx.dropped += 1;
                Ok(())
            }
        }
    }

    /// Drives timers: DTLS retransmission, reorder-buffer release, RTCP, no-media.
    ///
    /// # Errors
    /// [`Error::TimedOut`] or another fatal DTLS error, as [`handle_packet`](Self::handle_packet).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<()> {
        self.check_failed()?;
        if let Some(d) = self.legs[0].dtls.as_mut() {
            if d.poll_timeout().is_some_and(|t| t <= now) {
                let r = d.handle_timeout(now);
                self.after_dtls(now, r)?;
            }
        }
        for leg in [Leg::Client, Leg::Trunk] {
            self.release(now, leg);
            let l = &mut self.legs[leg.idx()];
            if !l.no_media_reported && now >= l.last_media + self.config.no_media_timeout {
                l.no_media_reported = true;
                tracing::info!(?leg, "no media");
                self.events.push_back(Event::NoMedia { leg });
            }
            if now >= self.legs[leg.idx()].next_rtcp {
                self.send_report(now, leg);
            }
        }
        Ok(())
    }

    /// The next datagram to send. Returns the previous one's buffer to the pool.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        if let Some(p) = self.returned.take() {
            self.out.recycle(p.buf);
        }
        let p = self.out.queue.pop_front()?;
        let p = self.returned.insert(p);
        Some(Transmit {
            leg: p.leg,
            kind: p.kind,
            contents: &p.buf,
        })
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout); changes after every `handle_*`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut min = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        if self.failed.is_some() {
            return None;
        }
        min(self.legs[0].dtls.as_ref().and_then(|d| d.poll_timeout()));
        for l in &self.legs {
            if !l.no_media_reported {
                min(Some(l.last_media + self.config.no_media_timeout));
            }
            if l.tx.ready {
                min(Some(l.next_rtcp));
            }
        }
        for p in &self.paths {
            if let Mode::Transcode(tc) = &p.mode {
                min(tc.reorder.deadline());
            }
        }
        t
    }

    /// Whether media may be sent on `leg` (DTLS completed, or no DTLS on it).
    pub fn is_ready(&self, leg: Leg) -> bool {
        self.legs[leg.idx()].tx.ready
    }

    fn check_failed(&self) -> Result<()> {
        self.failed.clone().map_or(Ok(()), Err)
    }

    fn after_dtls(&mut self, now: Instant, r: Result<()>) -> Result<()> {
        if let Err(e) = r {
            self.failed = Some(e.clone());
            return Err(e);
        }
        let l = &mut self.legs[0];
        let Some(d) = l.dtls.as_mut() else {
            return Ok(());
        };
        while let Some(p) = d.poll_transmit() {
            self.out.queue.push_back(Pending {
                leg: Leg::Client,
                kind: TransmitKind::Dtls,
                buf: p,
            });
        }
        while let Some(ev) = d.poll_event() {
            match ev {
                DtlsEvent::Connected(keys) => {
                    l.rx_srtp = Some(SrtpContext::new(&keys.remote));
                    l.tx.srtp = Some(SrtpContext::new(&keys.local));
                    l.tx.ready = true;
                    l.next_rtcp = now + self.config.rtcp_interval;
                    tracing::info!(profile = ?keys.profile, "dtls-srtp up on the client leg");
                    self.events.push_back(Event::DtlsConnected {
                        profile: keys.profile,
                    });
                }
                DtlsEvent::Closed => self.events.push_back(Event::DtlsClosed),
            }
        }
        Ok(())
    }

    fn on_rtcp(&mut self, now: Instant, leg: Leg, datagram: &[u8]) {
        let l = &mut self.legs[leg.idx()];
        self.scratch.clear();
        self.scratch.extend_from_slice(datagram);
        if let Some(ctx) = l.rx_srtp.as_mut() {
            if let Err(e) = ctx.unprotect_rtcp(&mut self.scratch) {
                count_srtp_error(&mut l.stats, &e);
                return;
            }
        } else if !matches!(l.cfg.security, Security::Plain) {
            l.stats.rx.dropped += 1;
            return;
        }
        l.stats.rx.rtcp_packets += 1;
        let Some(p) = rtcp::parse(&self.scratch, l.tx.ssrc) else {
            l.stats.rx.dropped += 1;
            return;
        };
        if let Some(mid) = p.sr_ntp_mid {
            l.last_sr_mid = mid;
            l.last_sr_at = Some(now);
        }
        if let Some(b) = p.block {
            l.stats.remote_fraction_lost = b.fraction_lost;
            if let Some(rtt) = rtcp::rtt(&b, rtcp::ntp_mid(rtcp::ntp(self.start, now))) {
                l.stats.rtt = Some(rtt);
            }
        }
    }

    fn send_report(&mut self, now: Instant, leg: Leg) {
        let l = &mut self.legs[leg.idx()];
        l.next_rtcp = now + self.config.rtcp_interval;
        if !l.tx.ready {
            return;
        }
        let sender = l.tx.sent_since_report.then(|| rtcp::SenderInfo {
            ntp: rtcp::ntp(self.start, now),
            rtp_ts: l.tx.ts_at(now),
            packets: l.tx.packets as u32,
            octets: l.tx.octets as u32,
        });
        l.tx.sent_since_report = false;
        let block = l.rx.is_started().then(|| rtcp::ReportBlock {
            ssrc: l.rx.ssrc,
            fraction_lost: l.rx.fraction_lost(),
            cumulative_lost: l.rx.lost() as i32,
            extended_max: l.rx.extended_max(),
            jitter: l.rx.jitter(),
            lsr: l.last_sr_mid,
            dlsr: l.last_sr_at.map_or(0, |at| {
                let d = now.saturating_duration_since(at);
                (d.as_nanos() * 65536 / 1_000_000_000) as u32
            }),
        });
        let mut buf = self.out.buffer();
        rtcp::write_report(&mut buf, l.tx.ssrc, sender, block, &self.cname);
        if let Some(ctx) = l.tx.srtp.as_mut() {
            if ctx.protect_rtcp(&mut buf).is_err() {
                self.out.recycle(buf);
                return;
            }
        }
        l.stats.tx.rtcp_packets += 1;
        self.out.queue.push_back(Pending {
            leg,
            kind: TransmitKind::Rtcp,
            buf,
        });
    }

    fn on_rtp(&mut self, now: Instant, leg: Leg, datagram: &[u8]) {
        let a = leg.idx();
        let [l0, l1] = &mut self.legs;
        let (src, dst) = if a == 0 { (l0, l1) } else { (l1, l0) };
        self.scratch.clear();
        self.scratch.extend_from_slice(datagram);
        if let Some(ctx) = src.rx_srtp.as_mut() {
            if let Err(e) = ctx.unprotect_rtp(&mut self.scratch) {
                count_srtp_error(&mut src.stats, &e);
                return;
            }
        } else if !matches!(src.cfg.security, Security::Plain) {
            // SRTP before the DTLS keys exist.
            src.stats.rx.dropped += 1;
            return;
        }
        let Ok(h) = RtpHeader::parse(&self.scratch) else {
            src.stats.rx.dropped += 1;
            return;
        };
        let is_audio = h.payload_type == src.cfg.payload_type;
        let event_clock = event_clock(&src.cfg, h.payload_type);
        if !is_audio && event_clock.is_none() {
            src.stats.rx.dropped += 1;
            return;
        }
        let arrival = ticks(
            now.saturating_duration_since(self.start),
            src.cfg.codec.clock_rate(),
        );
        src.rx.on_packet(h.ssrc, h.sequence, h.timestamp, arrival);
        src.stats.rx.packets += 1;
        src.stats.rx.bytes += h.payload_len as u64;
        src.last_media = now;
        if src.no_media_reported {
            src.no_media_reported = false;
            self.events.push_back(Event::MediaResumed { leg });
        }
        let payload = &self.scratch[h.header_len..h.header_len + h.payload_len];
        let path = &mut self.paths[a];
        // Toward the client: the length of an audio packet (source clock ticks).
        let audio_ticks = match path.fill.as_mut() {
            Some(f) if is_audio => {
                let ticks = payload_ticks(src.cfg.codec, payload);
                f.on_audio_in(now, ticks);
                ticks
            }
            _ => 0,
        };
        if path.in_ssrc != Some(h.ssrc) {
            // A new source (first packet or the far end changed SSRC): continue our
            // sequence numbers and timestamps from where the output stream is now.
            path.in_ssrc = Some(h.ssrc);
            path.mapper.in_base = h.timestamp;
            path.mapper.out_base = dst.tx.ts_at(now);
            path.marker_pending = true;
            match &mut path.mode {
                Mode::Passthrough { seq_offset } => {
                    *seq_offset = dst.tx.next_seq.wrapping_sub(h.sequence)
                }
                Mode::Transcode(tc) => {
                    tc.reorder.reset();
                    tc.fifo.clear();
                    tc.have_last = false;
                }
            }
            tracing::debug!(?leg, ssrc = h.ssrc, "new rtp source");
        }
        match &mut path.mode {
            Mode::Passthrough { seq_offset } => {
                let seq = h.sequence.wrapping_add(*seq_offset);
                if is_audio {
                    if !audio_resumes(
                        path.fill.as_mut(),
                        &mut path.mapper,
                        &mut path.marker_pending,
                        h.timestamp,
                        dst,
                        now,
                    ) {
                        *seq_offset = seq_offset.wrapping_sub(1);
                        return;
                    }
                    let ts = path.mapper.map(h.timestamp);
                    let marker = std::mem::take(&mut path.marker_pending) | h.marker;
                    emit(
                        &mut self.out,
                        dst,
                        now,
                        marker,
                        dst.cfg.payload_type,
                        seq,
                        ts,
                        payload,
                    );
                    if let Some(f) = path.fill.as_mut() {
                        // Same codec both ways: the same clock.
                        f.on_audio_out(ts.wrapping_add(audio_ticks));
                    }
                } else if let (Some(pt), Some(in_clock)) = (dst.cfg.telephone_event, event_clock) {
                    match path.relay.relay(h.timestamp, in_clock, payload) {
                        Some(r) => {
                            let (start, stopped) = event_start(
                                &mut path.mapper,
                                path.fill.as_mut(),
                                &r,
                                h.timestamp,
                                dst,
                                now,
                            );
                            let ts = start.wrapping_add(r.ts_offset);
                            for c in 0..r.copies {
                                emit(
                                    &mut self.out,
                                    dst,
                                    now,
                                    r.marker && c == 0,
                                    pt,
                                    seq.wrapping_add(c as u16),
                                    ts,
                                    &r.payload,
                                );
                            }
                            let mut extra = r.copies as u16 - 1;
                            if let Some(f) = path.fill.as_mut().filter(|_| stopped) {
                                let plan = fill_plan(f, start, &r);
                                for i in 0..plan.count {
                                    extra = extra.wrapping_add(1);
                                    emit_silence(
                                        &mut self.out,
                                        dst,
                                        now,
                                        &plan,
                                        i,
                                        seq.wrapping_add(extra),
                                        f.frame_ticks(),
                                        &f.frame,
                                    );
                                }
                            }
                            *seq_offset = seq_offset.wrapping_add(extra);
                        }
                        // A repeated end packet we already sent three times: keep the
                        // output sequence dense.
                        None => *seq_offset = seq_offset.wrapping_sub(1),
                    }
                } else {
                    *seq_offset = seq_offset.wrapping_sub(1);
                }
            }
            Mode::Transcode(tc) => {
                if tc.reorder.push(
                    now,
                    h.sequence,
                    h.timestamp,
                    h.payload_type,
                    h.marker,
                    is_audio,
                    payload,
                ) {
                    self.release(now, leg);
                }
            }
        }
    }

    /// Processes what the reorder buffer of the path from `leg` lets go at `now`.
    fn release(&mut self, now: Instant, leg: Leg) {
        let a = leg.idx();
        let [l0, l1] = &mut self.legs;
        let (src, dst) = if a == 0 { (l0, l1) } else { (l1, l0) };
        let path = &mut self.paths[a];
        let Mode::Transcode(tc) = &mut path.mode else {
            return;
        };
        while let Some(Released { entry, lost_before }) = tc.reorder.pop(now) {
            if let Some(in_clock) = event_clock(&src.cfg, entry.pt) {
                if let (Some(pt), Some(r)) = (
                    dst.cfg.telephone_event,
                    path.relay.relay(entry.ts, in_clock, &entry.payload),
                ) {
                    let (start, stopped) =
                        event_start(&mut path.mapper, path.fill.as_mut(), &r, entry.ts, dst, now);
                    let ts = start.wrapping_add(r.ts_offset);
                    for c in 0..r.copies {
                        let seq = dst.tx.next_seq;
                        emit(
                            &mut self.out,
                            dst,
                            now,
                            r.marker && c == 0,
                            pt,
                            seq,
                            ts,
                            &r.payload,
                        );
                    }
                    if let Some(f) = path.fill.as_mut().filter(|_| stopped) {
                        let plan = fill_plan(f, start, &r);
                        if plan.starts_stretch {
                            // The audio before has ended: no concealment across the
                            // stretch, and a partial frame left behind is dropped.
                            tc.fifo.clear();
                            tc.have_last = false;
                        }
                        for i in 0..plan.count {
                            encode_silence(&mut tc.enc, &mut self.out, dst, now, &plan, i);
                        }
                    }
                }
            } else {
                if !audio_resumes(
                    path.fill.as_mut(),
                    &mut path.mapper,
                    &mut path.marker_pending,
                    entry.ts,
                    dst,
                    now,
                ) {
                    tc.reorder.recycle(entry.payload);
                    continue;
                }
                if entry.marker {
                    path.marker_pending = true;
                }
                transcode(
                    tc,
                    path.mapper,
                    &mut path.marker_pending,
                    &self.config,
                    src,
                    dst,
                    &mut self.out,
                    now,
                    &entry.payload,
                    entry.ts,
                    lost_before,
                );
                if let (Some(f), true) = (path.fill.as_mut(), tc.have_last) {
                    f.on_audio_out(tc.fifo_ts);
                }
            }
            tc.reorder.recycle(entry.payload);
        }
    }
}

/// The output RTP timestamp where relayed event `r` (input timestamp `in_ts`) starts,
/// and whether the source's audio has stopped (its packets then may need silence). The
/// path's mapping, except toward the client (`fill`): there the event's first packet
/// fixes its start, and a new event that would start before what was already sent while
/// the audio has stopped moves to `dst`'s current RTP time, rebasing the mapping
/// ([`crate::silence`]).
fn event_start(
    mapper: &mut Mapper,
    fill: Option<&mut SilenceFill>,
    r: &Relayed,
    in_ts: u32,
    dst: &LegState,
    now: Instant,
) -> (u32, bool) {
    let mapped = mapper.map(in_ts);
    let Some(f) = fill else {
        return (mapped, false);
    };
    let stopped = f.is_audio_stopped(now);
    let (start, moved) = f.event_start(r.marker, mapped, stopped, dst.tx.ts_at(now));
    if moved {
        rebase(mapper, in_ts, start);
    }
    (start, stopped)
}

/// The silence frames to send after relaying `r`, an event starting at output
/// timestamp `start`: up to its start plus its duration (an end packet's own end
/// excluded, so that resuming audio continues right there), if [`SilenceFill::wants`].
fn fill_plan(fill: &mut SilenceFill, start: u32, r: &Relayed) -> Plan {
    let end = start.wrapping_add(r.ts_offset).wrapping_add(r.duration());
    let upto = if r.is_end() { end.wrapping_sub(1) } else { end };
    if fill.wants(upto) {
        fill.plan(start, upto)
    } else {
        Plan {
            first_ts: start,
            count: 0,
            marker: false,
            starts_stretch: false,
        }
    }
}

/// Whether an audio packet of input timestamp `in_ts` goes out on a path (false: drop
/// it, silence toward the client already covers its RTP time); may rebase the mapping
/// after silence ([`SilenceFill::resume`]).
fn audio_resumes(
    fill: Option<&mut SilenceFill>,
    mapper: &mut Mapper,
    marker_pending: &mut bool,
    in_ts: u32,
    dst: &LegState,
    now: Instant,
) -> bool {
    // The steady path: no stretch, nothing to compute.
    let Some(f) = fill.filter(|f| f.is_filling()) else {
        return true;
    };
    match f.resume(mapper.map(in_ts), dst.tx.ts_at(now)) {
        Resume::Send => true,
        Resume::Drop => false,
        Resume::Rebase(at) => {
            rebase(mapper, in_ts, at);
            *marker_pending = true;
            true
        }
    }
}

/// Maps input timestamp `in_ts` to output timestamp `out_ts` from now on.
fn rebase(mapper: &mut Mapper, in_ts: u32, out_ts: u32) {
    tracing::debug!(
        in_ts,
        from = mapper.map(in_ts),
        to = out_ts,
        "rtp time rebased after events without audio"
    );
    mapper.in_base = in_ts;
    mapper.out_base = out_ts;
}

/// Sends frame `i` of `plan` (silence frames toward the client, [`crate::silence`])
/// encoded by the transcoding path's encoder.
fn encode_silence(
    enc: &mut Encoder,
    out: &mut Output,
    dst: &mut LegState,
    now: Instant,
    plan: &Plan,
    i: u32,
) {
    let mut buf = out.buffer();
    buf.resize(FIXED_HEADER_LEN + MAX_PAYLOAD, 0);
    match enc.encode(&SILENT_PCM, &mut buf[FIXED_HEADER_LEN..]) {
        Ok(n) => {
            buf.truncate(FIXED_HEADER_LEN + n);
            let ts = plan.first_ts.wrapping_add(i * dst.cfg.codec.frame_ticks());
            if dst.tx.ready {
                dst.stats.tx.silence_frames += 1;
            }
            let seq = dst.tx.next_seq;
            let pt = dst.cfg.payload_type;
            finish(out, dst, now, plan.marker && i == 0, pt, seq, ts, buf);
        }
        Err(e) => {
            tracing::warn!(error = %e, "encoder failed");
            out.recycle(buf);
        }
    }
}

/// Sends frame `i` of `plan` on a passthrough path: the precomputed `frame` with
/// sequence number `seq`.
#[allow(clippy::too_many_arguments)]
fn emit_silence(
    out: &mut Output,
    dst: &mut LegState,
    now: Instant,
    plan: &Plan,
    i: u32,
    seq: u16,
    frame_ticks: u32,
    frame: &[u8],
) {
    if dst.tx.ready {
        dst.stats.tx.silence_frames += 1;
    }
    let ts = plan.first_ts.wrapping_add(i * frame_ticks);
    let pt = dst.cfg.payload_type;
    emit(out, dst, now, plan.marker && i == 0, pt, seq, ts, frame);
}

/// The silence payload of one 20 ms frame of `codec` for a passthrough path: G.711
/// silence (µ-law 0xFF, A-law 0xD5), or 20 ms of zeros encoded by libopus.
///
/// # Errors
/// [`Error::Local`] if libopus fails.
fn silence_frame(codec: Codec, opus: &OpusSettings) -> Result<Vec<u8>> {
    let mut enc = Encoder::new(codec, opus)?;
    let mut buf = vec![0u8; MAX_PAYLOAD];
    // The second frame: the encoder's steady state for silence.
    enc.encode(&SILENT_PCM, &mut buf)?;
    let n = enc.encode(&SILENT_PCM, &mut buf)?;
    buf.truncate(n);
    buf.shrink_to_fit();
    Ok(buf)
}

/// The clock rate in Hz of telephone-event payload type `pt` on a leg (its own
/// [`LegConfig::telephone_event`] runs at the codec's clock, the
/// [`LegConfig::extra_telephone_events`] at theirs), `None` if `pt` is not one. The
/// audio payload type is always audio, whatever the signalling reused it for.
fn event_clock(cfg: &LegConfig, pt: u8) -> Option<u32> {
    if pt == cfg.payload_type {
        return None;
    }
    if Some(pt) == cfg.telephone_event {
        return Some(cfg.codec.clock_rate());
    }
    cfg.extra_telephone_events
        .iter()
        .find(|(p, _)| *p == pt)
        .map(|(_, clock)| *clock)
}

fn count_srtp_error(stats: &mut LegStats, e: &Error) {
    match e {
        Error::PeerMisbehaved(PeerMisbehaved::SrtpReplay) => stats.rx.replays += 1,
        Error::PeerMisbehaved(PeerMisbehaved::SrtpAuthFailed) => stats.rx.auth_failures += 1,
        _ => stats.rx.dropped += 1,
    }
    tracing::trace!(error = %e, "srtp packet dropped");
}

/// Decodes one released audio packet (concealing the `lost_before` frames before it) and
/// encodes whole 20 ms frames for the other leg.
#[allow(clippy::too_many_arguments)]
fn transcode(
    tc: &mut Transcoder,
    mapper: Mapper,
    marker_pending: &mut bool,
    config: &Config,
    src: &mut LegState,
    dst: &mut LegState,
    out: &mut Output,
    now: Instant,
    payload: &[u8],
    ts: u32,
    lost_before: u16,
) {
    if tc.have_last && lost_before > 0 {
        if lost_before <= config.max_concealed_frames {
            for i in 0..lost_before {
                let next = (i + 1 == lost_before).then_some(payload);
                let mut pcm = std::mem::take(&mut tc.pcm);
                if let Ok(n) = tc.dec.conceal(next, &mut pcm) {
                    if next.is_some() && matches!(tc.dec, Decoder::Opus { .. }) {
                        src.stats.rx.fec_frames += 1;
                    } else {
                        src.stats.rx.concealed_frames += 1;
                    }
                    let at = tc
                        .last_in_ts
                        .wrapping_add(tc.last_frame_ticks * (i as u32 + 1));
                    append(tc, mapper, marker_pending, dst, out, now, &pcm[..n], at);
                }
                tc.pcm = pcm;
            }
        } else {
            // Too long to conceal: restart the output talkspurt.
            tc.fifo.clear();
            *marker_pending = true;
        }
    }
    let mut pcm = std::mem::take(&mut tc.pcm);
    match tc.dec.decode(payload, &mut pcm) {
        Ok(n) if n > 0 => {
            tc.last_in_ts = ts;
            tc.last_frame_ticks = (n as u64 * mapper.in_clock as u64 / 8000) as u32;
            tc.have_last = true;
            append(tc, mapper, marker_pending, dst, out, now, &pcm[..n], ts);
        }
        _ => src.stats.rx.dropped += 1,
    }
    tc.pcm = pcm;
}

#[allow(clippy::too_many_arguments)]
fn append(
    tc: &mut Transcoder,
    mapper: Mapper,
    marker_pending: &mut bool,
    dst: &mut LegState,
    out: &mut Output,
    now: Instant,
    samples: &[i16],
    in_ts: u32,
) {
    if tc.fifo.is_empty() {
        tc.fifo_ts = mapper.map(in_ts);
    }
    tc.fifo.extend_from_slice(samples);
    let frame_ticks = dst.cfg.codec.frame_ticks();
    while tc.fifo.len() >= FRAME_SAMPLES {
        let mut buf = out.buffer();
        buf.resize(FIXED_HEADER_LEN + MAX_PAYLOAD, 0);
        match tc
            .enc
            .encode(&tc.fifo[..FRAME_SAMPLES], &mut buf[FIXED_HEADER_LEN..])
        {
            Ok(n) => {
                buf.truncate(FIXED_HEADER_LEN + n);
                let seq = dst.tx.next_seq;
                let marker = std::mem::take(marker_pending);
                finish(
                    out,
                    dst,
                    now,
                    marker,
                    dst.cfg.payload_type,
                    seq,
                    tc.fifo_ts,
                    buf,
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "encoder failed");
                out.recycle(buf);
            }
        }
        tc.fifo_ts = tc.fifo_ts.wrapping_add(frame_ticks);
        tc.fifo.drain(..FRAME_SAMPLES);
    }
}

/// Builds, protects and queues one RTP packet for `dst`.
#[allow(clippy::too_many_arguments)]
fn emit(
    out: &mut Output,
    dst: &mut LegState,
    now: Instant,
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    payload: &[u8],
) {
    let mut buf = out.buffer();
    buf.resize(FIXED_HEADER_LEN, 0);
    buf.extend_from_slice(payload);
    finish(out, dst, now, marker, pt, seq, ts, buf);
}

#[allow(clippy::too_many_arguments)]
fn finish(
    out: &mut Output,
    dst: &mut LegState,
    now: Instant,
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    mut buf: Vec<u8>,
) {
    if !dst.tx.ready {
        dst.stats.tx.dropped_before_dtls += 1;
        out.recycle(buf);
        return;
    }
    let payload_len = buf.len() - FIXED_HEADER_LEN;
    write_header(&mut buf, marker, pt, seq, ts, dst.tx.ssrc);
    if let Some(ctx) = dst.tx.srtp.as_mut() {
        if ctx.protect_rtp(&mut buf).is_err() {
            out.recycle(buf);
            return;
        }
    }
    if seq_diff(seq, dst.tx.next_seq) >= 0 {
        dst.tx.next_seq = seq.wrapping_add(1);
    }
    if ts.wrapping_sub(dst.tx.last_ts) as i32 >= 0 || dst.tx.last_at.is_none() {
        dst.tx.last_ts = ts;
        dst.tx.last_at = Some(now);
    }
    dst.tx.packets += 1;
    dst.tx.octets += payload_len as u64;
    dst.tx.sent_since_report = true;
    dst.stats.tx.packets += 1;
    dst.stats.tx.bytes += payload_len as u64;
    out.queue.push_back(Pending {
        leg: dst.leg,
        kind: TransmitKind::Rtp,
        buf,
    });
}

#[cfg(test)]
mod tests;
