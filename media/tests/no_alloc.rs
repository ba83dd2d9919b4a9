//! The steady-state packet path of `media::Session` does not allocate (issue 4).
//!
//! A counting global allocator (`allocation-counter`, which owns the `unsafe` allocator
//! shim; this workspace forbids `unsafe`) counts every Rust heap allocation made on this
//! thread while a session pair in memory carries N packets each way: SRTP unprotect,
//! jitter buffer, decode, encode, SRTP protect, RTCP reports out and in, with reordering
//! and a lost packet on the transcoding path; and while the trunk sends RFC 4733 events
//! without audio, so that silence frames go to the client along with them. libopus is C and allocates nothing after
//! `opus_{en,de}coder_create` (its scratch memory is on the stack), so this counts what
//! our code could allocate.
#![allow(clippy::disallowed_methods)] // tests anchor virtual time at Instant::now()

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use media::cert::Certificate;
use media::codec::Codec;
use media::config::{LegConfig, Security};
use media::rtp::write_header;
use media::srtp::{MasterKey, SrtpContext, SrtpProfile};
use media::{Config, Leg, Session, TransmitKind};
use rand::SeedableRng;

const PROFILE: SrtpProfile = SrtpProfile::Aes128CmHmacSha1_80;
const CLIENT_SSRC: u32 = 0x1000_0001;
const TRUNK_SSRC: u32 = 0x2000_0001;
const FAR_CLIENT_SSRC: u32 = 0xaaaa_0001;
const FAR_TRUNK_SSRC: u32 = 0xbbbb_0001;
const WARMUP: usize = 400;
const MEASURED: usize = 1000;

fn key(seed: u8) -> MasterKey {
    MasterKey::new(PROFILE, &[seed; 16], &[seed.wrapping_add(1); 14]).unwrap()
}

fn tone(rate: u32, n: usize, start: usize, freq: f64) -> Vec<i16> {
    (start..start + n)
        .map(|i| {
            ((2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin() * 9000.0) as i16
        })
        .collect()
}

fn rtp(ctx: &mut SrtpContext, pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len() + 10);
    p.resize(12, 0);
    write_header(&mut p, false, pt, seq, ts, ssrc);
    p.extend_from_slice(payload);
    ctx.protect_rtp(&mut p).unwrap();
    p
}

/// An SRTCP sender report from `ssrc` with one report block about `about`.
fn sender_report(ctx: &mut SrtpContext, ssrc: u32, about: u32, n: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(128);
    p.extend_from_slice(&[0x81, 200, 0, 12]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&(u64::from(n) << 32).to_be_bytes()); // NTP
    p.extend_from_slice(&(n * 160).to_be_bytes()); // RTP timestamp
    p.extend_from_slice(&(n * 250).to_be_bytes()); // packets
    p.extend_from_slice(&(n * 40_000).to_be_bytes()); // octets
    p.extend_from_slice(&about.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]); // fraction, cumulative lost
    p.extend_from_slice(&n.to_be_bytes()); // extended max seq
    p.extend_from_slice(&[0, 0, 0, 10]); // jitter
    p.extend_from_slice(&[0; 8]); // LSR, DLSR
    ctx.protect_rtcp(&mut p).unwrap();
    p
}

/// One call and every datagram its far ends will send, prepared before measuring.
struct Scenario {
    session: Session,
    /// Per round: datagrams for the session, in arrival order.
    rounds: Vec<Vec<(Leg, Vec<u8>)>>,
}

/// The trunk's telephone-event payload type when it sends events without audio.
const TRUNK_TE: u8 = 101;
/// Rounds (20 ms each) per key when the trunk sends events without audio: 10 packets
/// (7 updates 20 ms apart, the end 3 times), then 200 ms without packets.
const KEY_ROUNDS: usize = 20;

/// The trunk's packet for round `r` when it sends events without audio: `None` between
/// keys, else a key's event (payload) with its RTP timestamp.
fn trunk_event(r: usize) -> Option<([u8; 4], u32)> {
    let (key, p) = (r / KEY_ROUNDS, r % KEY_ROUNDS);
    if p >= 10 {
        return None;
    }
    let end = p >= 7;
    let d = (160 * p.min(7) as u16).to_be_bytes();
    let flags = if end { 0x80 | 10 } else { 10 };
    Some((
        [(key % 12) as u8, flags, d[0], d[1]],
        (key * KEY_ROUNDS * 160) as u32,
    ))
}

fn scenario(
    client_codec: Codec,
    client_pt: u8,
    reorder_and_lose: bool,
    trunk_events_only: bool,
) -> Scenario {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let cert = Certificate::generate(&mut rng).unwrap();
    let te = |pt: u8| trunk_events_only.then_some(pt);
    let leg = |codec, payload_type, telephone_event, local, remote, ssrc| LegConfig {
        codec,
        payload_type,
        telephone_event,
        extra_telephone_events: Vec::new(),
        security: Security::Sdes {
            local: key(local),
            remote: key(remote),
        },
        ssrc,
    };
    let client_te = te(if client_codec == Codec::Opus {
        110
    } else {
        TRUNK_TE
    });
    let client = leg(client_codec, client_pt, client_te, 1, 2, CLIENT_SSRC);
    let trunk = leg(Codec::Pcmu, 0, te(TRUNK_TE), 3, 4, TRUNK_SSRC);
    let session = Session::new(
        Arc::new(Config::default()),
        &cert,
        client,
        trunk,
        &mut rng,
        Instant::now(),
    )
    .unwrap();

    let mut client_far = SrtpContext::new(&key(2));
    let mut trunk_far = SrtpContext::new(&key(4));
    let mut opus =
        opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    opus.set_inband_fec(true).unwrap();
    opus.set_packet_loss_perc(10).unwrap();
    let total = WARMUP + MEASURED;
    let mut rounds: Vec<Vec<(Leg, Vec<u8>)>> = (0..total).map(|_| Vec::new()).collect();
    let mut trunk_seq = 0u16;
    for (r, round) in rounds.iter_mut().enumerate() {
        let seq = r as u16;
        let client_payload: Vec<u8> = match client_codec {
            Codec::Opus => {
                let mut out = [0u8; 1500];
                let n = opus
                    .encode(&tone(48000, 960, r * 960, 440.0), &mut out)
                    .unwrap();
                out[..n].to_vec()
            }
            _ => tone(8000, 160, r * 160, 440.0)
                .iter()
                .map(|&s| media::g711::ulaw_encode(s))
                .collect(),
        };
        let ticks = client_codec.frame_ticks();
        let c = rtp(
            &mut client_far,
            client_pt,
            seq,
            r as u32 * ticks,
            FAR_CLIENT_SSRC,
            &client_payload,
        );
        let pcmu: Vec<u8> = tone(8000, 160, r * 160, 1000.0)
            .iter()
            .map(|&s| media::g711::ulaw_encode(s))
            .collect();
        round.push((Leg::Client, c));
        if !trunk_events_only {
            let t = rtp(
                &mut trunk_far,
                0,
                seq,
                r as u32 * 160,
                FAR_TRUNK_SSRC,
                &pcmu,
            );
            round.push((Leg::Trunk, t));
        } else if let Some((event, ts)) = trunk_event(r) {
            let t = rtp(
                &mut trunk_far,
                TRUNK_TE,
                trunk_seq,
                ts,
                FAR_TRUNK_SSRC,
                &event,
            );
            trunk_seq = trunk_seq.wrapping_add(1);
            round.push((Leg::Trunk, t));
        }
        if r % 100 == 50 {
            round.push((
                Leg::Client,
                sender_report(&mut client_far, FAR_CLIENT_SSRC, CLIENT_SSRC, r as u32),
            ));
            round.push((
                Leg::Trunk,
                sender_report(&mut trunk_far, FAR_TRUNK_SSRC, TRUNK_SSRC, r as u32),
            ));
        }
    }
    if reorder_and_lose {
        // In the measured window: every 40th client packet swaps with the next round's
        // (reordered, fixed by the jitter buffer); every 97th is lost (FEC/PLC).
        for r in WARMUP..total - 1 {
            if r % 40 == 0 {
                let (a, b) = rounds.split_at_mut(r + 1);
                std::mem::swap(&mut a[r][0], &mut b[0][0]);
            } else if r % 97 == 0 {
                rounds[r].remove(0);
            }
        }
    }
    Scenario { session, rounds }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    rtp: [u64; 2],
    rtcp: [u64; 2],
}

/// Feeds rounds `range` at 20 ms of virtual time each, firing timers, draining outputs.
fn drive(
    s: &mut Session,
    rounds: &[Vec<(Leg, Vec<u8>)>],
    start: Instant,
    range: std::ops::Range<usize>,
) -> Counts {
    let mut counts = Counts::default();
    let drain = |s: &mut Session, counts: &mut Counts| {
        while let Some(t) = s.poll_transmit() {
            let i = (t.leg == Leg::Trunk) as usize;
            match t.kind {
                TransmitKind::Rtp => counts.rtp[i] += 1,
                TransmitKind::Rtcp => counts.rtcp[i] += 1,
                TransmitKind::Dtls => {}
            }
            black_box(t.contents);
        }
        while let Some(ev) = s.poll_event() {
            black_box(ev);
        }
    };
    for r in range {
        let now = start + Duration::from_millis(20 * r as u64);
        while let Some(t) = s.poll_timeout().filter(|t| *t <= now) {
            s.handle_timeout(t).unwrap();
            drain(s, &mut counts);
        }
        for (leg, datagram) in &rounds[r] {
            s.handle_packet(now, *leg, datagram).unwrap();
            drain(s, &mut counts);
        }
    }
    counts
}

fn assert_steady_state_does_not_allocate(client_codec: Codec, client_pt: u8, reorder: bool) {
    let Scenario {
        mut session,
        rounds,
    } = scenario(client_codec, client_pt, reorder, false);
    let start = Instant::now();
    drive(&mut session, &rounds, start, 0..WARMUP);
    let mut counts = Counts::default();
    let info = allocation_counter::measure(|| {
        counts = drive(&mut session, &rounds, start, WARMUP..WARMUP + MEASURED);
    });
    // The window did real work: (almost) every packet forwarded each way, and RTCP
    // reports went out on both legs (every 5 s) and came in (every 2 s).
    let lost = if reorder { MEASURED as u64 / 97 + 1 } else { 0 };
    for leg in 0..2 {
        assert!(
            counts.rtp[leg] >= MEASURED as u64 - lost - 2,
            "{client_codec:?}: {counts:?}"
        );
        assert!(counts.rtcp[leg] >= 3, "{client_codec:?}: {counts:?}");
    }
    let st = session.stats(Leg::Client);
    assert!(st.rx.rtcp_packets >= 10, "{st:?}");
    assert_eq!(
        (st.rx.auth_failures, st.rx.replays, st.rx.dropped),
        (0, 0, 0)
    );
    if reorder {
        let jb = st.rx.jitter_buffer.expect("transcoding");
        // The first swap comes too late for the 20 ms minimum; the target then grows and
        // the later swaps are put back in order.
        assert!(jb.reordered >= 20 && jb.late <= 2, "{jb:?}");
        assert!(st.rx.fec_frames + st.rx.concealed_frames >= 9, "{st:?}");
    }
    assert_eq!(
        info.count_total, 0,
        "{client_codec:?}: {} allocations ({} bytes) in {MEASURED} rounds",
        info.count_total, info.bytes_total
    );
}

#[test]
fn passthrough_steady_state_does_not_allocate() {
    assert_steady_state_does_not_allocate(Codec::Pcmu, 0, false);
}

#[test]
fn transcoding_steady_state_does_not_allocate() {
    assert_steady_state_does_not_allocate(Codec::Opus, 111, true);
}

/// The trunk sends events without audio (a 200 ms key every 400 ms): every event packet
/// relayed to the client brings silence frames along ([`media::stats::SendStats::silence_frames`]),
/// without allocating once warm.
fn assert_events_without_audio_do_not_allocate(client_codec: Codec, client_pt: u8) {
    let Scenario {
        mut session,
        rounds,
    } = scenario(client_codec, client_pt, false, true);
    let start = Instant::now();
    drive(&mut session, &rounds, start, 0..WARMUP);
    let before = session.stats(Leg::Client).tx.silence_frames;
    let mut counts = Counts::default();
    let info = allocation_counter::measure(|| {
        counts = drive(&mut session, &rounds, start, WARMUP..WARMUP + MEASURED);
    });
    let silence = session.stats(Leg::Client).tx.silence_frames - before;
    // Per key: 7 updates and 3 end packets, and silence over its 140 ms (7 frames).
    let keys = (MEASURED / KEY_ROUNDS) as u64;
    assert_eq!(silence, keys * 7, "{client_codec:?}: {counts:?}");
    assert_eq!(
        counts.rtp[0],
        keys * (10 + 7),
        "{client_codec:?}: {counts:?}"
    );
    assert_eq!(
        info.count_total, 0,
        "{client_codec:?}: {} allocations ({} bytes) in {MEASURED} rounds",
        info.count_total, info.bytes_total
    );
}

#[test]
fn passthrough_events_without_audio_do_not_allocate() {
    assert_events_without_audio_do_not_allocate(Codec::Pcmu, 0);
}

#[test]
fn transcoding_events_without_audio_do_not_allocate() {
    assert_events_without_audio_do_not_allocate(Codec::Opus, 111);
}

/// The counter sees allocations on this thread: the assertion above can fail.
#[test]
fn the_counter_sees_an_allocation() {
    let info = allocation_counter::measure(|| {
        black_box(Vec::<u8>::with_capacity(64));
    });
    assert_eq!(info.count_total, 1);
}
