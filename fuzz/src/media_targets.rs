//! Bodies of the `rtp` and `rtcp` targets (public API of `jsg-media`). The RTCP parser
//! (`media::rtcp`) is private: it is reached through [`Session::handle_packet`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use media::cert::Certificate;
use media::codec::Codec;
use media::config::{LegConfig, Security};
use media::demux::{classify, PacketKind};
use media::rtp::{write_header, RtpHeader, FIXED_HEADER_LEN};
use media::srtp::{MasterKey, SrtpContext, SrtpProfile};
use media::{Config, Leg, Session, TransmitKind};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const PROFILES: [SrtpProfile; 4] = [
    SrtpProfile::Aes128CmHmacSha1_80,
    SrtpProfile::Aes128CmHmacSha1_32,
    SrtpProfile::AeadAes128Gcm,
    SrtpProfile::AeadAes256Gcm,
];

/// A fixed master key for `profile`; `which` selects one of several.
pub fn fixed_key(profile: SrtpProfile, which: u8) -> MasterKey {
    let key: Vec<u8> = (0..profile.key_len() as u8)
        .map(|i| i.wrapping_mul(7) ^ which)
        .collect();
    let salt: Vec<u8> = (0..profile.salt_len() as u8)
        .map(|i| i.wrapping_mul(13) ^ which)
        .collect();
    MasterKey::new(profile, &key, &salt).expect("lengths match the profile")
}

fn hash(data: &[u8]) -> usize {
    data.iter().fold(17usize, |a, b| {
        a.wrapping_mul(31).wrapping_add(usize::from(*b))
    })
}

/// RTP header parser invariants and write/parse round trip.
fn rtp_header(data: &[u8]) {
    let Ok(h) = RtpHeader::parse(data) else {
        return;
    };
    assert!(h.header_len >= FIXED_HEADER_LEN);
    assert!(h.header_len + h.payload_len <= data.len());
    assert!(h.payload_type < 128);
    assert_eq!(RtpHeader::ssrc_of(data), Some(h.ssrc));
    let mut p = vec![0u8; FIXED_HEADER_LEN];
    write_header(
        &mut p,
        h.marker,
        h.payload_type,
        h.sequence,
        h.timestamp,
        h.ssrc,
    );
    if data[0] == 0x80 {
        assert_eq!(p[..], data[..FIXED_HEADER_LEN]);
    }
    p.extend_from_slice(&data[h.header_len..h.header_len + h.payload_len]);
    let back = RtpHeader::parse(&p).expect("a written header parses");
    assert_eq!(
        back,
        RtpHeader {
            header_len: FIXED_HEADER_LEN,
            ..h
        }
    );
}

/// SRTP with fixed keys: unprotect of the raw bytes must not panic; a parseable RTP
/// packet protected by us unprotects to itself, once (replay), and not after a bit flip.
fn srtp_rtp(data: &[u8]) {
    let parses = RtpHeader::parse(data).is_ok();
    let h = hash(data);
    for p in PROFILES {
        let mut junk = data.to_vec();
        let _ = SrtpContext::new(&fixed_key(p, 1)).unprotect_rtp(&mut junk);
        if !parses {
            continue;
        }
        let mut b = data.to_vec();
        SrtpContext::new(&fixed_key(p, 1))
            .protect_rtp(&mut b)
            .expect("protect a parseable RTP packet");
        assert_eq!(b.len(), data.len() + p.rtp_overhead());
        let protected = b.clone();
        let mut rx = SrtpContext::new(&fixed_key(p, 1));
        rx.unprotect_rtp(&mut b).expect("unprotect our own SRTP");
        assert_eq!(b, data, "SRTP round trip ({p:?})");
        let mut again = protected.clone();
        assert!(
            rx.unprotect_rtp(&mut again).is_err(),
            "replay accepted ({p:?})"
        );
        let mut tampered = protected.clone();
        tampered[h % protected.len()] ^= 1 << (h % 8);
        assert!(
            SrtpContext::new(&fixed_key(p, 1))
                .unprotect_rtp(&mut tampered)
                .is_err(),
            "tampered SRTP accepted ({p:?})"
        );
        let mut wrong = protected;
        assert!(
            SrtpContext::new(&fixed_key(p, 2))
                .unprotect_rtp(&mut wrong)
                .is_err(),
            "SRTP accepted under another key ({p:?})"
        );
    }
}

/// SRTCP with fixed keys, as [`srtp_rtp`].
fn srtcp(data: &[u8]) {
    let h = hash(data);
    for p in PROFILES {
        let mut junk = data.to_vec();
        let _ = SrtpContext::new(&fixed_key(p, 1)).unprotect_rtcp(&mut junk);
        if data.len() < 8 {
            continue;
        }
        let mut b = data.to_vec();
        SrtpContext::new(&fixed_key(p, 1))
            .protect_rtcp(&mut b)
            .expect("protect 8+ bytes of RTCP");
        let protected = b.clone();
        let mut rx = SrtpContext::new(&fixed_key(p, 1));
        rx.unprotect_rtcp(&mut b).expect("unprotect our own SRTCP");
        assert_eq!(b, data, "SRTCP round trip ({p:?})");
        let mut again = protected.clone();
        assert!(
            rx.unprotect_rtcp(&mut again).is_err(),
            "SRTCP replay accepted ({p:?})"
        );
        let mut tampered = protected;
        tampered[h % b.len().max(1)] ^= 1 << (h % 8);
        assert!(
            SrtpContext::new(&fixed_key(p, 1))
                .unprotect_rtcp(&mut tampered)
                .is_err(),
            "tampered SRTCP accepted ({p:?})"
        );
    }
}

thread_local! {
    static CERT: Certificate =
        Certificate::generate(&mut ChaCha8Rng::seed_from_u64(1)).expect("certificate");
}

/// The trunk's SDES keys in the SRTP session: `TRUNK_LOCAL` protects what we send,
/// `TRUNK_REMOTE` what the trunk sends.
const TRUNK_LOCAL: u8 = 3;
const TRUNK_REMOTE: u8 = 4;
const SDES: SrtpProfile = SrtpProfile::Aes128CmHmacSha1_80;

struct Harness {
    s: Session,
    legs: [LegConfig; 2],
    /// What the trunk would use to read our SRTP/SRTCP (SDES session only).
    trunk_rx: Option<(SrtpContext, SrtpContext)>,
    now: Instant,
}

fn leg(codec: Codec, pt: u8, te: u8, security: Security, ssrc: u32) -> LegConfig {
    LegConfig {
        codec,
        payload_type: pt,
        telephone_event: Some(te),
        extra_telephone_events: Vec::new(),
        security,
        ssrc,
    }
}

/// Two sessions: plain PCMU passthrough, and Opus (plain client leg) transcoded to PCMA
/// with SDES-SRTP on the trunk leg.
fn harnesses() -> Vec<Harness> {
    let start = Instant::now();
    let mut cfg = Config::default();
    cfg.allow_unencrypted_client(true)
        .rtcp_interval(Duration::from_millis(500));
    let cfg = Arc::new(cfg);
    let mut out = Vec::new();
    let plain = [
        leg(Codec::Pcmu, 0, 101, Security::Plain, 0x1111),
        leg(Codec::Pcmu, 0, 101, Security::Plain, 0x2222),
    ];
    let sdes = [
        leg(Codec::Opus, 111, 110, Security::Plain, 0x3333),
        leg(
            Codec::Pcma,
            8,
            101,
            Security::Sdes {
                local: fixed_key(SDES, TRUNK_LOCAL),
                remote: fixed_key(SDES, TRUNK_REMOTE),
            },
            0x4444,
        ),
    ];
    for (legs, srtp) in [(plain, false), (sdes, true)] {
        let s = CERT.with(|cert| {
            Session::new(
                cfg.clone(),
                cert,
                legs[0].clone(),
                legs[1].clone(),
                &mut ChaCha8Rng::seed_from_u64(2),
                start,
            )
        });
        let s = s.expect("session");
        let trunk_rx = srtp.then(|| {
            (
                SrtpContext::new(&fixed_key(SDES, TRUNK_LOCAL)),
                SrtpContext::new(&fixed_key(SDES, TRUNK_LOCAL)),
            )
        });
        out.push(Harness {
            s,
            legs,
            trunk_rx,
            now: start,
        });
    }
    out
}

impl Harness {
    fn idx(leg: Leg) -> usize {
        match leg {
            Leg::Client => 0,
            Leg::Trunk => 1,
        }
    }

    /// Feeds a datagram as the peer of `leg` would send it (SRTP-protected with the
    /// trunk's key when `protect` and the leg uses SDES).
    fn feed(&mut self, leg: Leg, datagram: &[u8], protect: Option<&mut SrtpContext>) {
        let mut d = datagram.to_vec();
        if let Some(ctx) = protect {
            let r = if classify(&d) == PacketKind::Rtcp {
                ctx.protect_rtcp(&mut d)
            } else {
                ctx.protect_rtp(&mut d)
            };
            if r.is_err() {
                return;
            }
        }
        self.s
            .handle_packet(self.now, leg, &d)
            .expect("no DTLS here: handle_packet never fails");
        self.drain();
    }

    fn advance(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
        if self.s.poll_timeout().is_some_and(|t| t <= self.now) {
            self.s
                .handle_timeout(self.now)
                .expect("no DTLS: no fatal timeout");
        }
        self.drain();
    }

    /// Checks every datagram the session sends: RTP with the leg's payload types, or
    /// RTCP; SDES-protected ones open with the trunk's view of our key.
    fn drain(&mut self) {
        while let Some(t) = self.s.poll_transmit() {
            let mut b = t.contents.to_vec();
            let cfg = &self.legs[Self::idx(t.leg)];
            if let (Leg::Trunk, Some((rtp_rx, rtcp_rx))) = (t.leg, self.trunk_rx.as_mut()) {
                match t.kind {
                    TransmitKind::Rtp => rtp_rx.unprotect_rtp(&mut b),
                    _ => rtcp_rx.unprotect_rtcp(&mut b),
                }
                .expect("the trunk can read our SRTP/SRTCP");
            }
            match t.kind {
                TransmitKind::Rtp => {
                    assert_eq!(classify(&b), PacketKind::Rtp);
                    let h = RtpHeader::parse(&b).expect("we send valid RTP");
                    assert_eq!(h.ssrc, cfg.ssrc);
                    assert!(
                        h.payload_type == cfg.payload_type
                            || Some(h.payload_type) == cfg.telephone_event,
                        "unexpected payload type {}",
                        h.payload_type
                    );
                }
                TransmitKind::Rtcp => assert_eq!(classify(&b), PacketKind::Rtcp),
                TransmitKind::Dtls => panic!("DTLS on a session without DTLS"),
            }
        }
        while self.s.poll_event().is_some() {}
    }
}

/// Runs `datagram` through both sessions on both legs, raw and (trunk of the SDES
/// session) protected with the trunk's key, with time advancing so that RTCP reports,
/// reorder release and no-media timers run.
fn sessions(datagram: &[u8]) {
    let mut trunk_tx = SrtpContext::new(&fixed_key(SDES, TRUNK_REMOTE));
    for mut h in harnesses() {
        let sdes = h.trunk_rx.is_some();
        for leg in [Leg::Client, Leg::Trunk] {
            h.feed(leg, datagram, None);
            h.advance(20);
        }
        if sdes {
            let before = h.s.stats(Leg::Trunk).rx;
            h.feed(Leg::Trunk, datagram, Some(&mut trunk_tx));
            let after = h.s.stats(Leg::Trunk).rx;
            if datagram.len() >= 8 && classify(datagram) == PacketKind::Rtcp {
                assert_eq!(
                    after.rtcp_packets,
                    before.rtcp_packets + 1,
                    "SRTCP not opened"
                );
            }
            if RtpHeader::parse(datagram).is_ok() && classify(datagram) == PacketKind::Rtp {
                assert_eq!(after.auth_failures, before.auth_failures, "SRTP not opened");
            }
        }
        for _ in 0..4 {
            h.advance(300);
        }
        let _ = h.s.stats(Leg::Client);
    }
}

/// `rtp` target: RTP header parser, SRTP round trips and unprotect of raw bytes under
/// every profile, and the media sessions fed the datagram.
pub fn rtp(data: &[u8]) {
    rtp_header(data);
    srtp_rtp(data);
    sessions(data);
}

/// `rtcp` target: SRTCP round trips and unprotect of raw bytes under every profile, and
/// the sessions fed the datagram both as given and with its first two bytes forced to
/// an RTCP header (version 2, packet type 192..=223), so it reaches the RTCP parser.
pub fn rtcp(data: &[u8]) {
    srtcp(data);
    sessions(data);
    if data.len() >= 2 {
        let mut d = data.to_vec();
        d[0] = 0x80 | (d[0] & 0x3f);
        d[1] = 192 + d[1] % 32;
        sessions(&d);
    }
}
