#![allow(clippy::disallowed_methods)] // tests anchor virtual time at Instant::now()
//! In-memory scenarios with virtual time: a far-end client (our own DTLS + SRTP + libopus
//! as the peer) and a far-end trunk (plain or SDES RTP) around one `Session`.

use super::*;
use crate::cert::{Certificate, Fingerprint};
use crate::codec::{Codec, OpusSettings};
use crate::dtls::{DtlsConfig, DtlsRole};
use crate::g711;
use crate::srtp::MasterKey;
use rand::SeedableRng;

const CLIENT_SSRC: u32 = 0xc1c1_c1c1;
const TRUNK_SSRC: u32 = 0x7777_0001;
const OPUS_PT: u8 = 111;
const OPUS_TE: u8 = 110;
const PCMU_TE: u8 = 101;

struct Far {
    dtls: Option<Dtls>,
    tx: Option<SrtpContext>,
    rx: Option<SrtpContext>,
    seq: u16,
    ts: u32,
    ssrc: u32,
}

impl Far {
    fn plain(ssrc: u32) -> Self {
        Self {
            dtls: None,
            tx: None,
            rx: None,
            seq: 1000,
            ts: 5000,
            ssrc,
        }
    }

    /// An RTP packet from this far end, protected if it has keys.
    fn rtp(&mut self, pt: u8, marker: bool, payload: &[u8], ts_step: u32) -> Vec<u8> {
        let mut p = vec![0u8; 12];
        write_header(&mut p, marker, pt, self.seq, self.ts, self.ssrc);
        p.extend_from_slice(payload);
        p.reserve(16);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(ts_step);
        if let Some(c) = self.tx.as_mut() {
            c.protect_rtp(&mut p).unwrap();
        }
        p
    }

    fn open(&mut self, datagram: &[u8]) -> Option<(RtpHeader, Vec<u8>)> {
        let mut p = datagram.to_vec();
        if let Some(c) = self.rx.as_mut() {
            if classify(&p) == PacketKind::Rtcp {
                c.unprotect_rtcp(&mut p).ok()?;
                return None;
            }
            c.unprotect_rtp(&mut p).ok()?;
        }
        let h = RtpHeader::parse(&p).ok()?;
        let payload = p[h.header_len..h.header_len + h.payload_len].to_vec();
        Some((h, payload))
    }
}

struct Harness {
    start: Instant,
    now: Instant,
    s: Session,
    client: Far,
    trunk: Far,
    /// RTP/RTCP the session sent to each far end.
    to_client: Vec<(RtpHeader, Vec<u8>)>,
    to_trunk: Vec<(RtpHeader, Vec<u8>)>,
    rtcp: Vec<(Leg, Vec<u8>)>,
    events: Vec<Event>,
    errors: Vec<Error>,
}

fn opus_client(pt: u8) -> (Codec, u8, Option<u8>) {
    (Codec::Opus, pt, Some(OPUS_TE))
}

impl Harness {
    fn new(
        client_codec: (Codec, u8, Option<u8>),
        trunk_codec: (Codec, u8, Option<u8>),
        wrong_fp: bool,
        trunk_security: Security,
    ) -> Self {
        Self::with_client_events(client_codec, trunk_codec, wrong_fp, trunk_security, vec![])
    }

    /// Like [`Harness::new`], with `extra` as the client leg's
    /// [`LegConfig::extra_telephone_events`].
    fn with_client_events(
        client_codec: (Codec, u8, Option<u8>),
        trunk_codec: (Codec, u8, Option<u8>),
        wrong_fp: bool,
        trunk_security: Security,
        extra: Vec<(u8, u32)>,
    ) -> Self {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(42);
        let ours = Certificate::generate(&mut rng).unwrap();
        let theirs = Certificate::generate(&mut rng).unwrap();
        let now = Instant::now();
        let expected = if wrong_fp {
            Fingerprint([9; 32])
        } else {
            theirs.fingerprint()
        };
        let client = LegConfig {
            codec: client_codec.0,
            payload_type: client_codec.1,
            telephone_event: client_codec.2,
            extra_telephone_events: extra,
            security: Security::Dtls {
                role: DtlsRole::Client,
                remote_fingerprint: expected,
            },
            ssrc: 0x5e55_0001,
        };
        let trunk = LegConfig {
            codec: trunk_codec.0,
            payload_type: trunk_codec.1,
            telephone_event: trunk_codec.2,
            extra_telephone_events: Vec::new(),
            security: trunk_security.clone(),
            ssrc: 0x5e55_0002,
        };
        let mut cfg = Config::default();
        cfg.no_media_timeout(Duration::from_secs(30));
        let s = Session::new(Arc::new(cfg), &ours, client, trunk, &mut rng, now).unwrap();
        let mut client_far = Far::plain(CLIENT_SSRC);
        client_far.dtls = Some(
            Dtls::new(
                &DtlsConfig::default(),
                &theirs,
                DtlsRole::Server,
                ours.fingerprint(),
                now,
            )
            .unwrap(),
        );
        let mut trunk_far = Far::plain(TRUNK_SSRC);
        if let Security::Sdes { local, remote } = trunk_security {
            trunk_far.tx = Some(SrtpContext::new(&remote));
            trunk_far.rx = Some(SrtpContext::new(&local));
        }
        Self {
            start: now,
            now,
            s,
            client: client_far,
            trunk: trunk_far,
            to_client: vec![],
            to_trunk: vec![],
            rtcp: vec![],
            events: vec![],
            errors: vec![],
        }
    }

    fn pcmu_trunk() -> (Codec, u8, Option<u8>) {
        (Codec::Pcmu, 0, Some(PCMU_TE))
    }

    /// Delivers everything queued, in both directions, until quiet.
    fn pump(&mut self) {
        for _ in 0..100 {
            let mut to_dtls = vec![];
            while let Some(t) = self.s.poll_transmit() {
                match (t.leg, t.kind) {
                    (Leg::Client, TransmitKind::Dtls) => to_dtls.push(t.contents.to_vec()),
                    (leg, TransmitKind::Rtcp) => self.rtcp.push((leg, t.contents.to_vec())),
                    (Leg::Client, _) => {
                        if let Some(x) = self.client.open(t.contents) {
                            self.to_client.push(x)
                        }
                    }
                    (Leg::Trunk, _) => {
                        if let Some(x) = self.trunk.open(t.contents) {
                            self.to_trunk.push(x)
                        }
                    }
                }
            }
            self.events
                .extend(std::iter::from_fn(|| self.s.poll_event()));
            let mut replies = vec![];
            if let Some(d) = self.client.dtls.as_mut() {
                for p in to_dtls {
                    if let Err(e) = d.handle_packet(self.now, &p) {
                        self.errors.push(e);
                    }
                }
                replies.extend(std::iter::from_fn(|| d.poll_transmit()));
                while let Some(ev) = d.poll_event() {
                    if let DtlsEvent::Connected(k) = ev {
                        self.client.tx = Some(SrtpContext::new(&k.local));
                        self.client.rx = Some(SrtpContext::new(&k.remote));
                    }
                }
            }
            if replies.is_empty() {
                return;
            }
            for r in replies {
                if let Err(e) = self.s.handle_packet(self.now, Leg::Client, &r) {
                    self.errors.push(e);
                }
            }
        }
        panic!("pump did not settle");
    }

    fn connect(&mut self) {
        self.s.start_dtls(self.now).unwrap();
        self.pump();
        assert!(
            self.s.is_ready(Leg::Client),
            "dtls up: {:?} {:?}",
            self.events,
            self.errors
        );
    }

    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        while let Some(t) = self.s.poll_timeout().filter(|t| *t <= until) {
            self.now = self.now.max(t);
            self.s.handle_timeout(self.now).unwrap();
            self.pump();
        }
        self.now = until;
    }

    fn feed_client(&mut self, pkt: Vec<u8>) {
        self.s.handle_packet(self.now, Leg::Client, &pkt).unwrap();
        self.pump();
    }

    fn feed_trunk(&mut self, pkt: Vec<u8>) {
        self.s.handle_packet(self.now, Leg::Trunk, &pkt).unwrap();
        self.pump();
    }
}

fn tone(n: usize, freq: f64, start: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            ((2.0 * std::f64::consts::PI * freq * (start + i) as f64 / 8000.0).sin() * 10000.0)
                as i16
        })
        .collect()
}

fn frequency(samples: &[i16]) -> f64 {
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    crossings as f64 / 2.0 / (samples.len() as f64 / 8000.0)
}

fn pcmu(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| g711::ulaw_encode(s)).collect()
}

fn check_dense(pkts: &[(RtpHeader, Vec<u8>)], ts_step: u32) {
    for w in pkts.windows(2) {
        assert_eq!(
            w[1].0.sequence,
            w[0].0.sequence.wrapping_add(1),
            "dense sequence numbers"
        );
        assert_eq!(
            w[1].0.timestamp.wrapping_sub(w[0].0.timestamp),
            ts_step,
            "timestamp step"
        );
    }
}

#[test]
fn passthrough_rewrites_headers_and_keeps_payload() {
    let mut h = Harness::new(
        (Codec::Pcmu, 0, Some(PCMU_TE)),
        Harness::pcmu_trunk(),
        false,
        Security::Plain,
    );
    assert!(!h.s.is_transcoding());
    h.connect();
    assert!(matches!(h.events[0], Event::DtlsConnected { .. }));
    for i in 0..10 {
        let payload = pcmu(&tone(160, 440.0, i * 160));
        let p = h.trunk.rtp(0, i == 0, &payload, 160);
        h.feed_trunk(p);
        let p = h.client.rtp(0, false, &payload, 160);
        h.feed_client(p);
    }
    assert_eq!(h.to_client.len(), 10);
    assert_eq!(h.to_trunk.len(), 10);
    check_dense(&h.to_client, 160);
    check_dense(&h.to_trunk, 160);
    assert_eq!(h.to_client[0].0.ssrc, 0x5e55_0001);
    assert_eq!(h.to_trunk[0].0.ssrc, 0x5e55_0002);
    assert!(h.to_client[0].0.marker && h.to_trunk[0].0.marker);
    assert!(!h.to_client[1].0.marker);
    assert_eq!(h.to_client[3].1, pcmu(&tone(160, 440.0, 3 * 160)));
    let st = h.s.stats(Leg::Trunk);
    assert_eq!((st.rx.packets, st.rx.bytes, st.tx.packets), (10, 1600, 10));
    assert_eq!(h.s.stats(Leg::Client).rx.packets, 10);
}

#[test]
fn nothing_is_sent_on_the_client_leg_before_dtls_completes() {
    let mut h = Harness::new(
        (Codec::Pcmu, 0, None),
        Harness::pcmu_trunk(),
        false,
        Security::Plain,
    );
    for i in 0..5 {
        let p = h.trunk.rtp(0, false, &[0xff; 160], 160);
        h.feed_trunk(p);
        assert!(h.to_client.is_empty(), "packet {i}");
    }
    assert_eq!(h.s.stats(Leg::Client).tx.dropped_before_dtls, 5);
    // Plain RTP pretending to be from the client before keys is dropped too.
    let mut plain = vec![0u8; 12];
    write_header(&mut plain, false, 0, 1, 1, CLIENT_SSRC);
    plain.extend_from_slice(&[0xff; 160]);
    h.feed_client(plain);
    assert!(h.to_trunk.is_empty());
    h.connect();
    let p = h.trunk.rtp(0, false, &[0xff; 160], 160);
    h.feed_trunk(p);
    assert_eq!(h.to_client.len(), 1);
}

#[test]
fn wrong_fingerprint_fails_the_call_with_a_security_error() {
    let mut h = Harness::new(
        (Codec::Pcmu, 0, None),
        Harness::pcmu_trunk(),
        true,
        Security::Plain,
    );
    h.s.start_dtls(h.now).unwrap();
    h.pump();
    let e = h.errors.first().expect("handshake failed");
    assert_eq!(
        e,
        &Error::PeerMisbehaved(PeerMisbehaved::FingerprintMismatch)
    );
    assert!(e.is_security());
    assert!(!h.s.is_ready(Leg::Client));
    assert!(
        h.s.handle_timeout(h.now).is_err(),
        "the session stays failed"
    );
}

#[test]
fn far_end_ssrc_change_keeps_sequence_and_timestamp_continuity() {
    let mut h = Harness::new(
        (Codec::Pcmu, 0, None),
        Harness::pcmu_trunk(),
        false,
        Security::Plain,
    );
    h.connect();
    for _ in 0..5 {
        let p = h.trunk.rtp(0, false, &[0xff; 160], 160);
        h.feed_trunk(p);
        h.now += Duration::from_millis(20);
    }
    // The trunk switches source (e.g. a transfer): new SSRC, sequence and timestamp.
    h.trunk.ssrc = 0xdead_0002;
    h.trunk.seq = 40000;
    h.trunk.ts = 123_456_789;
    for _ in 0..5 {
        let p = h.trunk.rtp(0, false, &[0xff; 160], 160);
        h.feed_trunk(p);
        h.now += Duration::from_millis(20);
    }
    assert_eq!(h.to_client.len(), 10);
    check_dense(&h.to_client, 160);
    assert!(
        h.to_client[5].0.marker,
        "marker on the new source's first packet"
    );
    assert!(h.to_client.iter().all(|(x, _)| x.ssrc == 0x5e55_0001));
}

#[test]
fn transcodes_opus_to_pcmu_and_back_keeping_the_tone() {
    let mut h = Harness::new(
        opus_client(OPUS_PT),
        Harness::pcmu_trunk(),
        false,
        Security::Plain,
    );
    assert!(h.s.is_transcoding());
    h.connect();
    let mut enc = Encoder::new(Codec::Opus, &OpusSettings::default()).unwrap();
    for i in 0..50 {
        let mut buf = [0u8; 400];
        let n = enc.encode(&tone(160, 440.0, i * 160), &mut buf).unwrap();
        let p = h.client.rtp(OPUS_PT, i == 0, &buf[..n], 960);
        h.feed_client(p);
        let p = h
            .trunk
            .rtp(0, i == 0, &pcmu(&tone(160, 1000.0, i * 160)), 160);
        h.feed_trunk(p);
        h.now += Duration::from_millis(20);
    }
    // Client → trunk: PCMU, 160 bytes per 20 ms, 8 kHz clock, the 440 Hz tone.
    assert_eq!(h.to_trunk.len(), 50);
    check_dense(&h.to_trunk, 160);
    assert!(h.to_trunk[0].0.marker && !h.to_trunk[1].0.marker);
    assert!(h
        .to_trunk
        .iter()
        .all(|(x, p)| x.payload_type == 0 && p.len() == 160));
    let pcm: Vec<i16> = h.to_trunk[10..]
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&b| g711::ulaw_decode(b)))
        .collect();
    let f = frequency(&pcm);
    assert!(
        (f - 440.0).abs() <= 440.0 * 0.02,
        "tone at the trunk: {f} Hz"
    );
    // Trunk → client: Opus, 48 kHz clock (960 per packet), the 1 kHz tone.
    assert_eq!(h.to_client.len(), 50);
    check_dense(&h.to_client, 960);
    assert!(h.to_client.iter().all(|(x, _)| x.payload_type == OPUS_PT));
    let mut dec = Decoder::new(Codec::Opus).unwrap();
    let mut pcm = vec![];
    for (_, p) in &h.to_client {
        let mut out = [0i16; MAX_DECODED_SAMPLES];
        let n = dec.decode(p, &mut out).unwrap();
        pcm.extend_from_slice(&out[..n]);
    }
    let f = frequency(&pcm[1600..]);
    assert!(
        (f - 1000.0).abs() <= 1000.0 * 0.02,
        "tone at the client: {f} Hz"
    );
}

#[test]
fn lost_opus_packet_is_recovered_and_reordered_packets_are_sorted() {
    let mut h = Harness::new(
        opus_client(OPUS_PT),
        Harness::pcmu_trunk(),
        false,
        Security::Plain,
    );
    h.connect();
    let mut enc = Encoder::new(
        Codec::Opus,
        &OpusSettings {
            packet_loss_perc: 20,
            ..Default::default()
        },
    )
    .unwrap();
    let pkts: Vec<Vec<u8>> = (0..30)
        .map(|i| {
            let mut buf = [0u8; 400];
            let n = enc.encode(&tone(160, 440.0, i * 160), &mut buf).unwrap();
            h.client.rtp(OPUS_PT, false, &buf[..n], 960)
        })
        .collect();
    // Order on the wire: 0..10, 11 (10 lost), 12, 14, 13 (swapped), 15..30.
    let mut order: Vec<usize> = (0..10).collect();
    order.extend([11, 12, 14, 13]);
    order.extend(15..30);
    for i in order {
        h.feed_client(pkts[i].clone());
        h.advance(Duration::from_millis(20));
    }

    // Every 20 ms slot reaches the trunk, in order, the lost one filled from FEC.
    assert_eq!(h.to_trunk.len(), 30);
    check_dense(&h.to_trunk, 160);
    let st = h.s.stats(Leg::Client);
    assert_eq!(st.rx.fec_frames, 1);
    assert_eq!(st.rx.lost, 1);
}

#[test]
fn telephone_events_are_relayed_with_clock_conversion_and_three_end_packets() {
    let mut h = Harness::new(
        opus_client(OPUS_PT),
        Harness::pcmu_trunk(),
        false,
        Security::Plain,
    );
    h.connect();
    let mut enc = Encoder::new(Codec::Opus, &OpusSettings::default()).unwrap();
    let mut buf = [0u8; 400];
    let n = enc.encode(&tone(160, 440.0, 0), &mut buf).unwrap();
    let p = h.client.rtp(OPUS_PT, true, &buf[..n], 960);
    h.feed_client(p);
    // Digit 7 from the client at 48 kHz: start, two updates, one end (duration 4800 = 100 ms).
    let event_ts = h.client.ts;
    for (i, (flags, dur)) in [(10u8, 960u16), (10, 1920), (10, 2880), (0x8a, 4800)]
        .into_iter()
        .enumerate()
    {
        h.client.ts = event_ts;
        let d = dur.to_be_bytes();
        let p = h.client.rtp(OPUS_TE, i == 0, &[7, flags, d[0], d[1]], 0);
        h.feed_client(p);
    }
    let events: Vec<_> = h
        .to_trunk
        .iter()
        .filter(|(x, _)| x.payload_type == PCMU_TE)
        .collect();
    assert_eq!(events.len(), 3 + 3, "three updates and the end three times");
    assert!(events[0].0.marker && !events[1].0.marker);
    let durations: Vec<u16> = events
        .iter()
        .map(|(_, p)| u16::from_be_bytes([p[2], p[3]]))
        .collect();
    assert_eq!(durations, [160, 320, 480, 800, 800, 800]);
    assert!(events.iter().all(|(_, p)| p[0] == 7));
    assert!(events[3..].iter().all(|(_, p)| p[1] & 0x80 != 0));
    // The event timestamp is the audio clock mapping of the client's, in 8 kHz.
    let audio_ts = h.to_trunk[0].0.timestamp;
    assert!(events
        .iter()
        .all(|(x, _)| x.timestamp == audio_ts.wrapping_add(160)));
    for w in h.to_trunk.windows(2) {
        assert_eq!(w[1].0.sequence, w[0].0.sequence.wrapping_add(1));
    }
    // And back: the trunk's digit at 8 kHz arrives at 48 kHz, end sent three times even
    // though the trunk sent it once.
    let t_ts = h.trunk.ts;
    for (i, (flags, dur)) in [(10u8, 160u16), (0x8a, 800)].into_iter().enumerate() {
        h.trunk.ts = t_ts;
        let d = dur.to_be_bytes();
        let p = h.trunk.rtp(PCMU_TE, i == 0, &[11, flags, d[0], d[1]], 0);
        h.feed_trunk(p);
    }
    let back: Vec<u16> = h
        .to_client
        .iter()
        .filter(|(x, _)| x.payload_type == OPUS_TE)
        .map(|(_, p)| u16::from_be_bytes([p[2], p[3]]))
        .collect();
    assert_eq!(back, [960, 4800, 4800, 4800]);
}

/// The client's PT for `telephone-event/8000` while its audio is Opus (libwebrtc keeps it
/// from our offer and sends digits on it).
const CLIENT_TE_8000: u8 = 126;

/// What libwebrtc sends for one 100 ms key on `telephone-event/8000` with Opus audio:
/// three end packets at the stream's 48 kHz timestamp, duration 800 (8 kHz ticks). Returns
/// the client's event timestamp.
fn send_end_only_key(h: &mut Harness, key: u8) -> u32 {
    let ts = h.client.ts;
    for i in 0..3 {
        h.client.ts = ts;
        let p = h
            .client
            .rtp(CLIENT_TE_8000, i == 0, &[key, 0x8a, 0x03, 0x20], 0);
        h.feed_client(p);
    }
    ts
}

/// The trunk's copy of an end-only key: marker on the first packet, the end three times,
/// one timestamp, `duration` ticks; returns that timestamp.
fn check_end_only_key(pkts: &[&(RtpHeader, Vec<u8>)], key: u8, duration: u16) -> u32 {
    assert_eq!(pkts.len(), 3, "the end three times: {pkts:?}");
    assert!(pkts[0].0.marker && !pkts[1].0.marker && !pkts[2].0.marker);
    for (x, p) in pkts {
        assert_eq!(x.timestamp, pkts[0].0.timestamp);
        assert_eq!(
            (p[0], p[1], u16::from_be_bytes([p[2], p[3]])),
            (key, 0x8a, duration)
        );
    }
    pkts[0].0.timestamp
}

#[test]
fn client_events_on_the_8_khz_pt_of_an_opus_leg_reach_a_pcmu_trunk_1_to_1() {
    let mut h = Harness::with_client_events(
        opus_client(OPUS_PT),
        Harness::pcmu_trunk(),
        false,
        Security::Plain,
        vec![(CLIENT_TE_8000, 8000)],
    );
    h.connect();
    assert!(h.s.is_transcoding());
    let mut enc = Encoder::new(Codec::Opus, &OpusSettings::default()).unwrap();
    let mut buf = [0u8; 400];
    let n = enc.encode(&tone(960, 440.0, 0), &mut buf).unwrap();
    let p = h.client.rtp(OPUS_PT, true, &buf[..n], 960);
    h.feed_client(p);
    let audio_ts = h.to_trunk[0].0.timestamp;
    let client_ts = send_end_only_key(&mut h, 4);
    let events: Vec<_> = h
        .to_trunk
        .iter()
        .filter(|(x, _)| x.payload_type == PCMU_TE)
        .collect();
    let ts = check_end_only_key(&events, 4, 800);
    // The 48 kHz timestamp went through the audio mapping: 960 ticks = 160 at 8 kHz.
    assert_eq!(ts, audio_ts.wrapping_add(160));
    for w in h.to_trunk.windows(2) {
        assert_eq!(w[1].0.sequence, w[0].0.sequence.wrapping_add(1));
    }
    // Events on the leg's own 48 kHz PT still work, with their own clock.
    h.client.ts = client_ts.wrapping_add(4800);
    let p = h.client.rtp(OPUS_TE, true, &[9, 0x8a, 0x12, 0xc0], 0);
    h.feed_client(p);

    let nine: Vec<_> = h
        .to_trunk
        .iter()
        .filter(|(x, p)| x.payload_type == PCMU_TE && p[0] == 9)
        .collect();
    assert_eq!(nine.len(), 3);
    assert_eq!(u16::from_be_bytes([nine[0].1[2], nine[0].1[3]]), 800);
    // What we send to the client stays on its 48 kHz PT.
    let p = h.trunk.rtp(PCMU_TE, true, &[1, 0x8a, 0x03, 0x20], 0);
    h.feed_trunk(p);
    let back: Vec<_> = h
        .to_client
        .iter()
        .filter(|(x, _)| x.payload_type != OPUS_PT)
        .map(|(x, p)| (x.payload_type, u16::from_be_bytes([p[2], p[3]])))
        .collect();
    assert_eq!(back, [(OPUS_TE, 4800); 3]);
    // Unknown PTs are still dropped.
    let sent = h.to_trunk.len();
    let p = h.client.rtp(99, true, &[4, 0x8a, 0x03, 0x20], 0);
    h.feed_client(p);
    h.advance(Duration::from_millis(200));
    assert_eq!(h.to_trunk.len(), sent);
}

/// Passthrough needs the same codec on both legs: an Opus trunk whose telephone-event
/// runs at 48 kHz. The client's 8 kHz event durations are scaled ×6 for it; the
/// timestamp keeps the passthrough mapping.
#[test]
fn client_events_on_the_8_khz_pt_cross_the_passthrough_path() {
    let mut h = Harness::with_client_events(
        opus_client(OPUS_PT),
        (Codec::Opus, 96, Some(PCMU_TE)),
        false,
        Security::Plain,
        vec![(CLIENT_TE_8000, 8000)],
    );
    h.connect();
    assert!(!h.s.is_transcoding());
    let p = h.client.rtp(OPUS_PT, true, &[0xf8, 0xff, 0xfe], 960);
    h.feed_client(p);
    let audio_ts = h.to_trunk[0].0.timestamp;
    send_end_only_key(&mut h, 11);
    let events: Vec<_> = h
        .to_trunk
        .iter()
        .filter(|(x, _)| x.payload_type == PCMU_TE)
        .collect();
    let ts = check_end_only_key(&events, 11, 4800);
    assert_eq!(ts, audio_ts.wrapping_add(960));
    let last_event_seq = events[2].0.sequence;
    // Sequence numbers stay dense although the client sent 3 and we 3 (no gap, no overlap).
    for w in h.to_trunk.windows(2) {
        assert_eq!(w[1].0.sequence, w[0].0.sequence.wrapping_add(1));
    }
    let p = h.client.rtp(OPUS_PT, false, &[0xf8, 0xff, 0xfe], 960);
    h.feed_client(p);
    let last = h.to_trunk.last().unwrap();
    assert_eq!(last.0.payload_type, 96);
    assert_eq!(last.0.sequence, last_event_seq.wrapping_add(1));
}

#[test]
fn no_media_event_after_silence_and_resumed() {
    let mut h = Harness::new(
        (Codec::Pcmu, 0, None),
        Harness::pcmu_trunk(),
        false,
        Security::Plain,
    );
    h.connect();
    h.advance(Duration::from_secs(29));
    assert!(!h.events.iter().any(|e| matches!(e, Event::NoMedia { .. })));
    h.advance(Duration::from_secs(2));
    assert!(h.events.contains(&Event::NoMedia { leg: Leg::Trunk }));
    assert!(h.events.contains(&Event::NoMedia { leg: Leg::Client }));
    let p = h.trunk.rtp(0, false, &[0xff; 160], 160);
    h.feed_trunk(p);
    assert!(h.events.contains(&Event::MediaResumed { leg: Leg::Trunk }));
}

#[test]
fn replayed_and_forged_srtp_is_dropped_and_counted() {
    let mut h = Harness::new(
        (Codec::Pcmu, 0, None),
        Harness::pcmu_trunk(),
        false,
        Security::Plain,
    );
    h.connect();
    let p = h.client.rtp(0, false, &[0xff; 160], 160);
    h.feed_client(p.clone());
    h.feed_client(p.clone());
    let mut forged = h.client.rtp(0, false, &[0xff; 160], 160);
    forged[30] ^= 1;
    h.feed_client(forged);
    assert_eq!(h.to_trunk.len(), 1);
    let st = h.s.stats(Leg::Client);
    assert_eq!((st.rx.replays, st.rx.auth_failures), (1, 1));
}

#[test]
fn sdes_trunk_and_rtcp_reports_on_both_legs() {
    let p = SrtpProfile::Aes128CmHmacSha1_80;
    let ours = MasterKey::new(p, &[1; 16], &[2; 14]).unwrap();
    let theirs = MasterKey::new(p, &[3; 16], &[4; 14]).unwrap();
    let mut h = Harness::new(
        (Codec::Pcmu, 0, None),
        Harness::pcmu_trunk(),
        false,
        Security::Sdes {
            local: ours,
            remote: theirs,
        },
    );
    h.connect();
    for _ in 0..10 {
        let p = h.trunk.rtp(0, false, &[0xff; 160], 160);
        h.feed_trunk(p);
        let p = h.client.rtp(0, false, &[0x7f; 160], 160);
        h.feed_client(p);
        h.advance(Duration::from_millis(20));
    }
    assert_eq!((h.to_client.len(), h.to_trunk.len()), (10, 10));
    h.advance(Duration::from_secs(6));
    // One SR per leg, decryptable by each far end's SRTCP context.
    let mut trunk_sr = vec![];
    for leg in [Leg::Client, Leg::Trunk] {
        let (_, sr) = h.rtcp.iter().find(|(l, _)| *l == leg).expect("report sent");
        let mut sr = sr.clone();
        let far = if leg == Leg::Client {
            &mut h.client
        } else {
            &mut h.trunk
        };
        far.rx.as_mut().unwrap().unprotect_rtcp(&mut sr).unwrap();
        assert_eq!(sr[1], 200, "sender report");
        let parsed = rtcp::parse(
            &sr,
            if leg == Leg::Client {
                CLIENT_SSRC
            } else {
                TRUNK_SSRC
            },
        )
        .unwrap();
        let block = parsed
            .block
            .expect("report block about the far end's stream");
        assert_eq!(block.extended_max & 0xffff, 1009);
        assert_eq!(h.s.stats(leg).tx.rtcp_packets, 1);
        trunk_sr = sr;
    }
    // The trunk answers with an RR echoing our SR: RTT appears in the stats.
    let sr = trunk_sr;
    let lsr = u32::from_be_bytes([sr[10], sr[11], sr[12], sr[13]]);
    h.now += Duration::from_millis(100);
    let mut rr = vec![];
    let block = rtcp::ReportBlock {
        ssrc: 0x5e55_0002,
        fraction_lost: 0,
        cumulative_lost: 0,
        extended_max: 0,
        jitter: 0,
        lsr,
        dlsr: 65536 / 20,
    };
    rtcp::write_report(&mut rr, TRUNK_SSRC, None, Some(block), "trunk");
    h.trunk.tx.as_mut().unwrap().protect_rtcp(&mut rr).unwrap();
    h.feed_trunk(rr);
    let rtt = h.s.stats(Leg::Trunk).rtt.expect("rtt");
    // Our SR left at `lsr` (1/65536 s since the session start); the peer held it 50 ms.
    let expected = (h.now - h.start).as_secs_f64() - lsr as f64 / 65536.0 - 0.05;
    assert!(
        (rtt.as_secs_f64() - expected).abs() < 0.002,
        "{rtt:?} vs {expected}"
    );
    assert!(
        expected > 0.09,
        "the report was answered 100 ms after it was sent at the earliest"
    );
}

#[test]
fn session_can_move_to_a_driver_task() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<Session>();
}

#[test]
fn pcma_client_and_pcmu_trunk_are_transcoded_sample_exactly() {
    let mut h = Harness::new(
        (Codec::Pcma, 8, None),
        Harness::pcmu_trunk(),
        false,
        Security::Plain,
    );
    assert!(h.s.is_transcoding());
    h.connect();
    let samples = tone(160, 700.0, 0);
    let alaw: Vec<u8> = samples.iter().map(|&s| g711::alaw_encode(s)).collect();
    let p = h.client.rtp(8, true, &alaw, 160);
    h.feed_client(p);
    let (hdr, payload) = &h.to_trunk[0];
    assert_eq!((hdr.payload_type, payload.len()), (0, 160));
    let expected: Vec<u8> = alaw
        .iter()
        .map(|&a| g711::ulaw_encode(g711::alaw_decode(a)))
        .collect();
    assert_eq!(payload, &expected);
}

#[test]
fn transcoding_path_keeps_continuity_across_a_far_end_ssrc_change() {
    let mut h = Harness::new(
        opus_client(OPUS_PT),
        Harness::pcmu_trunk(),
        false,
        Security::Plain,
    );
    h.connect();
    for i in 0..10 {
        let p = h
            .trunk
            .rtp(0, false, &pcmu(&tone(160, 500.0, i * 160)), 160);
        h.feed_trunk(p);
        h.advance(Duration::from_millis(20));
    }
    h.trunk.ssrc = 0x0bad_cafe;
    h.trunk.seq = 7;
    h.trunk.ts = 99;
    for i in 10..20 {
        let p = h
            .trunk
            .rtp(0, false, &pcmu(&tone(160, 500.0, i * 160)), 160);
        h.feed_trunk(p);
        h.advance(Duration::from_millis(20));
    }
    assert_eq!(h.to_client.len(), 20);
    check_dense(&h.to_client, 960);
    assert!(h.to_client[10].0.marker);
}

#[test]
fn jitter_buffer_adapts_on_the_transcoding_path_and_is_in_the_stats() {
    let mut h = Harness::new(
        opus_client(OPUS_PT),
        Harness::pcmu_trunk(),
        false,
        Security::Plain,
    );
    h.connect();
    // Trunk → client is transcoded (PCMU → Opus): arrivals alternate 0 and 35 ms late, so
    // neighbours swap; every 20 ms slot still reaches the client, in order.
    let pkts: Vec<Vec<u8>> = (0..200)
        .map(|i| {
            h.trunk
                .rtp(0, false, &pcmu(&tone(160, 500.0, i * 160)), 160)
        })
        .collect();
    let base = h.now;
    let mut arrivals: Vec<(Duration, usize)> = (0..200)
        .map(|i| {
            let late = if i % 2 == 1 { 35 } else { 0 };
            (Duration::from_millis(20 * i as u64 + late), i)
        })
        .collect();
    arrivals.sort();
    for (at, i) in arrivals {
        h.advance((base + at).saturating_duration_since(h.now));
        h.feed_trunk(pkts[i].clone());
    }

    assert_eq!(h.to_client.len(), 200);
    check_dense(&h.to_client, 960);
    let jb = h.s.stats(Leg::Trunk).rx.jitter_buffer.expect("transcoding");
    assert!(
        jb.target_delay > Duration::from_millis(20) && jb.target_delay <= Duration::from_millis(60),
        "{jb:?}"
    );
    assert!(jb.reordered >= 90, "{jb:?}");
    assert_eq!((jb.late, jb.duplicates), (0, 0));
}

#[test]
fn passthrough_has_no_jitter_buffer() {
    let mut h = Harness::new(
        (Codec::Pcmu, 0, Some(PCMU_TE)),
        Harness::pcmu_trunk(),
        false,
        Security::Plain,
    );
    h.connect();
    let p = h.trunk.rtp(0, false, &[0xff; 160], 160);
    h.feed_trunk(p);
    assert_eq!(h.to_client.len(), 1);
    assert_eq!(h.s.stats(Leg::Trunk).rx.jitter_buffer, None);
}

// Events without audio from the trunk: silence toward the client (crate::silence).

/// A trunk packet at RTP timestamp `ts`, leaving the far end's audio clock alone.
fn trunk_at(h: &mut Harness, pt: u8, marker: bool, payload: &[u8], ts: u32) {
    let keep = h.trunk.ts;
    h.trunk.ts = ts;
    let p = h.trunk.rtp(pt, marker, payload, 0);
    h.trunk.ts = keep;
    h.feed_trunk(p);
}

/// The trunk's key `key` without audio, as SBCs with silence suppression send it: RFC
/// 4733 packets 20 ms apart at RTP timestamp `ts`, `updates` updates of duration 160·k,
/// then the end (160·`updates`, 20 ms per update) three times. Virtual time advances
/// 20 ms per packet.
fn trunk_key(h: &mut Harness, key: u8, ts: u32, updates: u16) {
    for k in 0..updates + 3 {
        let d = (160 * k.min(updates)).to_be_bytes();
        let flags = if k >= updates { 0x80 | 10 } else { 10 };
        trunk_at(h, PCMU_TE, k == 0, &[key, flags, d[0], d[1]], ts);
        h.advance(Duration::from_millis(20));
    }
}

/// One 20 ms PCMU packet of a tone from the trunk (its audio clock advances 160).
fn trunk_audio(h: &mut Harness, i: usize, marker: bool) {
    let p = h
        .trunk
        .rtp(0, marker, &pcmu(&tone(160, 440.0, i * 160)), 160);
    h.feed_trunk(p);
}

/// What the client got on payload type `pt`.
fn client_got(h: &Harness, pt: u8) -> Vec<&(RtpHeader, Vec<u8>)> {
    h.to_client
        .iter()
        .filter(|(x, _)| x.payload_type == pt)
        .collect()
}

/// Every RTP packet to the client, events and audio, in one dense sequence.
fn assert_dense_to_client(h: &Harness) {
    for w in h.to_client.windows(2) {
        assert_eq!(
            w[1].0.sequence,
            w[0].0.sequence.wrapping_add(1),
            "dense: {:?} then {:?}",
            w[0].0,
            w[1].0
        );
    }
}

/// Audio timestamps toward the client always rise: never repeated, never back.
fn assert_rising(audio: &[&(RtpHeader, Vec<u8>)]) {
    for w in audio.windows(2) {
        let step = w[1].0.timestamp.wrapping_sub(w[0].0.timestamp) as i32;
        assert!(
            step > 0,
            "audio timestamps rise: {:?} then {:?}",
            w[0].0,
            w[1].0
        );
    }
}

/// A received RTP packet: header and payload.
type Received = (RtpHeader, Vec<u8>);

/// Events grouped by timestamp: (start, packets).
fn event_groups<'a>(events: &[&'a Received]) -> Vec<(u32, Vec<&'a Received>)> {
    let mut groups: Vec<(u32, Vec<&Received>)> = Vec::new();
    for e in events {
        match groups.last_mut() {
            Some((ts, g)) if *ts == e.0.timestamp => g.push(e),
            _ => groups.push((e.0.timestamp, vec![e])),
        }
    }
    groups
}

/// The trunk sends keys without audio (7 updates, the end three times, 140 ms each):
/// the Opus client gets every event packet and, with them, Opus silence frames that
/// cover each key from its start, 20 ms apart; events and frames form one dense
/// sequence; the frames' timestamps always rise and decode to silence. A key 400 ms
/// later in RTP time keeps that distance (×6); a key whose RTP time goes back 1 s
/// starts at the client leg's current time instead.
#[test]
fn trunk_events_without_audio_bring_opus_silence_to_the_client() {
    let mut h = Harness::new(
        opus_client(OPUS_PT),
        Harness::pcmu_trunk(),
        false,
        Security::Plain,
    );
    h.connect();
    trunk_key(&mut h, 5, 40_000, 7);
    h.advance(Duration::from_millis(200));
    trunk_key(&mut h, 6, 43_200, 7);
    h.advance(Duration::from_millis(400));
    trunk_key(&mut h, 7, 32_000, 7);
    h.advance(Duration::from_millis(100));

    assert_dense_to_client(&h);
    let events = client_got(&h, OPUS_TE);
    let audio = client_got(&h, OPUS_PT);
    assert_eq!(h.to_client.len(), events.len() + audio.len());
    let groups = event_groups(&events);
    assert_eq!(groups.len(), 3, "{groups:?}");
    for (start, g) in &groups {
        // 7 updates, the end three times; durations at 48 kHz.
        assert_eq!(g.len(), 10);
        assert!(g[0].0.marker && g[1..].iter().all(|(x, _)| !x.marker));
        let d = |p: &Vec<u8>| u16::from_be_bytes([p[2], p[3]]);
        assert_eq!(d(&g[9].1), 6720);
        // Silence over the key: 140 ms = 7 frames from its start, the first marked.
        let frames: Vec<_> = audio
            .iter()
            .filter(|(x, _)| {
                let off = x.timestamp.wrapping_sub(*start) as i32;
                (0..6720).contains(&off)
            })
            .collect();
        let ts: Vec<u32> = frames
            .iter()
            .map(|(x, _)| x.timestamp.wrapping_sub(*start))
            .collect();
        assert_eq!(ts, [0, 960, 1920, 2880, 3840, 4800, 5760]);
        assert!(frames[0].0.marker && frames[1..].iter().all(|(x, _)| !x.marker));
    }
    assert_eq!(audio.len(), 21, "no frame outside the keys");
    assert_rising(&audio);
    // 400 ms of the trunk's RTP time between the first two keys: kept.
    assert_eq!(groups[1].0.wrapping_sub(groups[0].0), 3200 * 6);
    // The third key went back 1 s: it starts at the client leg's current RTP time, 600 ms
    // of virtual time after the second key started, past all the silence sent.
    assert_eq!(groups[2].0.wrapping_sub(groups[1].0), 600 * 48);
    // The frames decode to silence.
    let mut dec = Decoder::new(Codec::Opus).unwrap();
    let mut pcm = [0i16; MAX_DECODED_SAMPLES];
    for (_, p) in &audio {
        let n = dec.decode(p, &mut pcm).unwrap();
        assert_eq!(n, 160);
        assert!(pcm[..n].iter().all(|s| s.abs() < 64), "{:?}", &pcm[..n]);
    }
    assert_eq!(h.s.stats(Leg::Client).tx.silence_frames, 21);
}

/// A trunk that sends its audio along with a key (as baresip does): the client gets
/// no frame more than without the key; the audio packets are the same, byte for byte
/// and timestamp for timestamp, as those of the same call without the key.
#[test]
fn trunk_audio_with_events_gets_no_silence_frames() {
    let run = |with_key: bool| {
        let mut h = Harness::new(
            opus_client(OPUS_PT),
            Harness::pcmu_trunk(),
            false,
            Security::Plain,
        );
        h.connect();
        let key_ts = h.trunk.ts + 5 * 160;
        for i in 0..30 {
            trunk_audio(&mut h, i, i == 0);
            if with_key && (5..15).contains(&i) {
                let k = (i - 5) as u16;
                let d = (160 * k.min(7)).to_be_bytes();
                let flags = if k >= 7 { 0x8a } else { 10 };
                trunk_at(&mut h, PCMU_TE, k == 0, &[3, flags, d[0], d[1]], key_ts);
            }
            h.advance(Duration::from_millis(20));
        }
        assert_dense_to_client(&h);
        assert_eq!(h.s.stats(Leg::Client).tx.silence_frames, 0);
        let audio = client_got(&h, OPUS_PT);
        let t0 = audio[0].0.timestamp;
        let audio: Vec<(u32, Vec<u8>)> = audio
            .iter()
            .map(|(x, p)| (x.timestamp.wrapping_sub(t0), p.clone()))
            .collect();
        (audio, client_got(&h, OPUS_TE).len())
    };
    let (plain, no_events) = run(false);
    let (with_key, events) = run(true);
    assert_eq!((no_events, events), (0, 10));
    assert_eq!(plain.len(), 30);
    assert_eq!(with_key, plain);
}

/// The trunk's audio stops for a key and resumes after it, consistently with its RTP
/// time: silence fills from where the audio ended once the key runs 60 ms past it, and
/// the resumed audio keeps the path's mapping, after the silence, in one dense sequence.
#[test]
fn audio_resuming_after_events_without_audio_keeps_the_timestamps() {
    let mut h = Harness::new(
        opus_client(OPUS_PT),
        Harness::pcmu_trunk(),
        false,
        Security::Plain,
    );
    h.connect();
    for i in 0..10 {
        trunk_audio(&mut h, i, i == 0);
        h.advance(Duration::from_millis(20));
    }
    let first = h.to_client[0].0.timestamp;
    let in0 = 5000;
    // The key starts where the audio stopped; 180 ms of packets, then audio again 200 ms
    // after the key started.
    let key_ts = h.trunk.ts;
    trunk_key(&mut h, 9, key_ts, 7);
    h.trunk.ts = key_ts + 1600;
    for i in 0..10 {
        trunk_audio(&mut h, 20 + i, i == 0);
        h.advance(Duration::from_millis(20));
    }
    assert_dense_to_client(&h);
    let audio = client_got(&h, OPUS_PT);
    assert_rising(&audio);
    let ts: Vec<u32> = audio
        .iter()
        .map(|(x, _)| x.timestamp.wrapping_sub(first))
        .collect();
    let mapped = |in_ts: u32| (in_ts - in0) * 6;
    let mut want: Vec<u32> = (0..10).map(|i| i * 960).collect();
    // Silence from the end of the audio (the key's start) over the key's 140 ms.
    want.extend((0..7).map(|i| mapped(key_ts) + i * 960));
    want.extend((0..10).map(|i| mapped(key_ts + 1600) + i * 960));
    assert_eq!(ts, want);
    assert_eq!(h.s.stats(Leg::Client).tx.silence_frames, 7);
}

/// Audio that resumes inside the silence already sent is dropped up to its end (its RTP
/// time was played); audio that resumes far behind it (the trunk's RTP time jumped
/// back) is moved after it. Either way no timestamp repeats or goes back.
#[test]
fn audio_resuming_behind_the_silence_is_dropped_or_moved_after_it() {
    let mut h = Harness::new(
        opus_client(OPUS_PT),
        Harness::pcmu_trunk(),
        false,
        Security::Plain,
    );
    h.connect();
    trunk_audio(&mut h, 0, true);
    h.advance(Duration::from_millis(20));
    let first = h.to_client[0].0.timestamp;
    let key_ts = h.trunk.ts;
    let mapped = |in_ts: u32| (in_ts - 5000) * 6;
    trunk_key(&mut h, 1, key_ts, 7);
    // The audio resumes 80 ms into the key's 140 ms of silence: 3 packets dropped.
    h.trunk.ts = key_ts + 640;
    for i in 0..10 {
        trunk_audio(&mut h, i, false);
        h.advance(Duration::from_millis(20));
    }
    let audio = client_got(&h, OPUS_PT);
    let ts: Vec<u32> = audio
        .iter()
        .map(|(x, _)| x.timestamp.wrapping_sub(first))
        .collect();
    let mut want = vec![0];
    want.extend((0..7).map(|i| mapped(key_ts) + i * 960));
    want.extend((3..10).map(|i| mapped(key_ts + 640) + i * 960));
    assert_eq!(ts, want);
    // Another key, then audio 2 s behind it: moved to the client leg's current RTP
    // time, 200 ms after the key started, past its silence (140 ms).
    let before = audio.len();
    let key2 = h.trunk.ts + 800;
    trunk_key(&mut h, 2, key2, 7);
    let last_silence = client_got(&h, OPUS_PT).last().unwrap().0.timestamp;
    h.trunk.ts = key2.wrapping_sub(16_000);
    for i in 0..5 {
        trunk_audio(&mut h, i, false);
        h.advance(Duration::from_millis(20));
    }
    assert_dense_to_client(&h);
    let audio = client_got(&h, OPUS_PT);
    assert_rising(&audio);
    assert_eq!(audio.len(), before + 7 + 5);
    let resumed = audio[before + 7].0;
    assert!(resumed.marker, "a new talkspurt");
    assert_eq!(
        resumed.timestamp,
        last_silence.wrapping_add((200 - 120) * 48)
    );
}

/// Passthrough (PCMU on both legs): the same fill with G.711 silence (0xFF), the
/// rewritten sequence numbers dense around the inserted frames and the dropped
/// repeated ends, and the resumed audio on the path's mapping.
#[test]
fn pcmu_passthrough_gets_g711_silence_with_events_without_audio() {
    let mut h = Harness::new(
        (Codec::Pcmu, 0, Some(PCMU_TE)),
        Harness::pcmu_trunk(),
        false,
        Security::Plain,
    );
    assert!(!h.s.is_transcoding());
    h.connect();
    for i in 0..3 {
        trunk_audio(&mut h, i, i == 0);
        h.advance(Duration::from_millis(20));
    }
    let key_ts = h.trunk.ts;
    trunk_key(&mut h, 4, key_ts, 7);
    h.trunk.ts = key_ts + 1600;
    for i in 0..3 {
        trunk_audio(&mut h, 10 + i, false);
        h.advance(Duration::from_millis(20));
    }
    assert_dense_to_client(&h);
    let events = client_got(&h, PCMU_TE);
    assert_eq!(events.len(), 10);
    assert!(events
        .iter()
        .all(|(x, _)| x.timestamp == events[0].0.timestamp));
    let audio = client_got(&h, 0);
    assert_rising(&audio);
    let first = audio[0].0.timestamp;
    let ts: Vec<u32> = audio
        .iter()
        .map(|(x, _)| x.timestamp.wrapping_sub(first))
        .collect();
    let key = key_ts - 5000;
    let mut want = vec![0, 160, 320];
    want.extend((0..7).map(|i| key + i * 160));
    want.extend((0..3).map(|i| key + 1600 + i * 160));
    assert_eq!(ts, want);
    assert_eq!(events[0].0.timestamp.wrapping_sub(first), key);
    assert!(audio[3..10].iter().all(|(_, p)| p == &[0xff; 160]));
    assert!(!audio[3].0.marker, "continues the audio that ended there");
    assert_eq!(h.s.stats(Leg::Client).tx.silence_frames, 7);
}
