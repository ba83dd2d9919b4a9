//! Media pipeline benchmark: N synthetic calls through the whole `media::Session` path
//! (SRTP unprotect, decode, encode, SRTP protect, both directions) on one thread, against
//! the bare libopus work a transcoded call needs (decode one client packet to 8 kHz, encode
//! one 20 ms frame from 8 kHz) as the ceiling.
//!
//! Run: `cargo bench -p jsg-media --bench pipeline` (optionally `-- CALLS SECONDS`), pinned
//! with `taskset -c 0` for one core. Both legs use SRTP (AES_CM_128_HMAC_SHA1_80, SDES keys)
//! so every packet is unprotected and protected. Client Opus is encoded at 48 kHz, 32 kbit/s,
//! as libwebrtc sends it.
#![allow(clippy::disallowed_methods)] // a benchmark measures real time

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use media::cert::Certificate;
use media::codec::Codec;
use media::config::{LegConfig, Security};
use media::rtp::write_header;
use media::srtp::{MasterKey, SrtpContext, SrtpProfile};
use media::{Config, Leg, Session};
use rand::SeedableRng;

const PROFILE: SrtpProfile = SrtpProfile::Aes128CmHmacSha1_80;

fn key(seed: u8) -> MasterKey {
    MasterKey::new(PROFILE, &[seed; 16], &[seed.wrapping_add(1); 14]).unwrap()
}

/// Speech-like test signal: two partials with a slow amplitude envelope.
fn signal(rate: u32, n: usize, start: usize) -> Vec<i16> {
    (start..start + n)
        .map(|i| {
            let t = i as f64 / rate as f64;
            let env = 0.6 + 0.4 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
            let s = (2.0 * std::f64::consts::PI * 220.0 * t).sin()
                + 0.5 * (2.0 * std::f64::consts::PI * 1330.0 * t).sin();
            (s * env * 9000.0) as i16
        })
        .collect()
}

/// 50 distinct client Opus payloads (1 s), 48 kHz encoder as in libwebrtc.
fn client_opus_payloads() -> Vec<Vec<u8>> {
    let mut enc = opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    enc.set_bitrate(opus::Bitrate::Bits(32000)).unwrap();
    enc.set_inband_fec(true).unwrap();
    (0..50)
        .map(|i| {
            let mut out = [0u8; 1500];
            let n = enc.encode(&signal(48000, 960, i * 960), &mut out).unwrap();
            out[..n].to_vec()
        })
        .collect()
}

fn trunk_pcmu_payloads() -> Vec<Vec<u8>> {
    (0..50)
        .map(|i| {
            signal(8000, 160, i * 160)
                .iter()
                .map(|&s| media::g711::ulaw_encode(s))
                .collect()
        })
        .collect()
}

struct Call {
    session: Session,
    client_far: SrtpContext,
    trunk_far: SrtpContext,
}

fn make_call(
    cfg: &Arc<Config>,
    cert: &Certificate,
    client_codec: (Codec, u8),
    i: u32,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> Call {
    let client = LegConfig {
        codec: client_codec.0,
        payload_type: client_codec.1,
        telephone_event: None,
        extra_telephone_events: Vec::new(),
        security: Security::Sdes {
            local: key(1),
            remote: key(2),
        },
        ssrc: 0x1000_0000 + i,
    };
    let trunk = LegConfig {
        codec: Codec::Pcmu,
        payload_type: 0,
        telephone_event: None,
        extra_telephone_events: Vec::new(),
        security: Security::Sdes {
            local: key(3),
            remote: key(4),
        },
        ssrc: 0x2000_0000 + i,
    };
    Call {
        session: Session::new(cfg.clone(), cert, client, trunk, rng, Instant::now()).unwrap(),
        client_far: SrtpContext::new(&key(2)),
        trunk_far: SrtpContext::new(&key(4)),
    }
}

fn packet(ctx: &mut SrtpContext, pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len() + 10);
    p.resize(12, 0);
    write_header(&mut p, false, pt, seq, ts, ssrc);
    p.extend_from_slice(payload);
    ctx.protect_rtp(&mut p).unwrap();
    p
}

/// A set of calls of one kind and the far ends' pre-protected packets for every round.
/// All calls share the SDES keys, so one packet stream serves every call (each session
/// keeps its own replay window).
struct Load {
    calls: Vec<Call>,
    inputs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn load(
    calls: usize,
    rounds: usize,
    client_codec: (Codec, u8),
    client_payloads: &[Vec<u8>],
    trunk_payloads: &[Vec<u8>],
) -> Load {
    let cfg = Arc::new(Config::default());
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let cert = Certificate::generate(&mut rng).unwrap();
    let mut list: Vec<Call> = (0..calls)
        .map(|i| make_call(&cfg, &cert, client_codec, i as u32, &mut rng))
        .collect();
    let ticks = client_codec.0.frame_ticks();
    let far = &mut list[0];
    let inputs = (0..rounds)
        .map(|r| {
            let k = r % 50;
            let cp = packet(
                &mut far.client_far,
                client_codec.1,
                r as u16,
                (r as u32) * ticks,
                0xaaaa_0001,
                &client_payloads[k],
            );
            let tp = packet(
                &mut far.trunk_far,
                0,
                r as u16,
                (r as u32) * 160,
                0xbbbb_0001,
                &trunk_payloads[k],
            );
            (cp, tp)
        })
        .collect();
    Load {
        calls: list,
        inputs,
    }
}

/// Runs round `r` (20 ms of media) of every call; returns (elapsed, packets out).
fn round(load: &mut Load, r: usize, now: Instant) -> (Duration, u64) {
    let (cp, tp) = &load.inputs[r];
    let mut sent = 0u64;
    let t0 = Instant::now();
    for call in &mut load.calls {
        call.session.handle_packet(now, Leg::Client, cp).unwrap();
        while let Some(t) = call.session.poll_transmit() {
            black_box(t.contents);
            sent += 1;
        }
        call.session.handle_packet(now, Leg::Trunk, tp).unwrap();
        while let Some(t) = call.session.poll_transmit() {
            black_box(t.contents);
            sent += 1;
        }
    }
    (t0.elapsed(), sent)
}

/// Bare libopus for one transcoded call and 20 ms: decode one client packet to 8 kHz and
/// encode one 8 kHz frame, with the pipeline's settings.
struct Bare {
    dec: opus::Decoder,
    enc: opus::Encoder,
}

impl Bare {
    fn new() -> Self {
        let s = media::codec::OpusSettings::default();
        let dec = opus::Decoder::new(8000, opus::Channels::Mono).unwrap();
        let mut enc =
            opus::Encoder::new(8000, opus::Channels::Mono, opus::Application::Voip).unwrap();
        enc.set_bitrate(opus::Bitrate::Bits(s.bitrate)).unwrap();
        enc.set_complexity(s.complexity).unwrap();
        enc.set_inband_fec(s.inband_fec).unwrap();
        enc.set_packet_loss_perc(s.packet_loss_perc).unwrap();
        Self { dec, enc }
    }

    fn frame(&mut self, packet: &[u8], pcm_in: &[i16]) {
        let mut pcm = [0i16; 960];
        let mut out = [0u8; 1500];
        let n = self.dec.decode(packet, &mut pcm, false).unwrap();
        black_box(&pcm[..n]);
        let m = self.enc.encode(pcm_in, &mut out).unwrap();
        black_box(&out[..m]);
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(0)
        * 4096
}

/// (RSS growth, live Rust heap) per call, in bytes, after `n` calls carried five rounds.
/// RSS also sees libopus' C allocations but under-counts when the heap already had free
/// pages; the Rust heap is counted exactly by the counting allocator.
fn memory_per_call(
    n: usize,
    client_codec: (Codec, u8),
    client_payloads: &[Vec<u8>],
    trunk_payloads: &[Vec<u8>],
) -> (f64, f64) {
    // The packets are built before the first RSS sample; five rounds touch every buffer.
    let rounds = 5;
    let mut l = load(1, rounds, client_codec, client_payloads, trunk_payloads);
    let cfg = Arc::new(Config::default());
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(6);
    let cert = Certificate::generate(&mut rng).unwrap();
    let before = rss_bytes();
    let heap = allocation_counter::measure(|| {
        let calls = (0..n)
            .map(|i| make_call(&cfg, &cert, client_codec, i as u32, &mut rng))
            .collect();
        let old = std::mem::replace(&mut l.calls, calls);
        allocation_counter::opt_out(|| drop(old));
        let now = Instant::now();
        for r in 0..rounds {
            round(&mut l, r, now + Duration::from_millis(20 * r as u64));
        }
    });
    let after = rss_bytes();
    black_box(&l.calls);
    (
        (after.saturating_sub(before)) as f64 / n as f64,
        heap.bytes_current.max(0) as f64 / n as f64,
    )
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this as a quick smoke test.
    let full = std::env::args().any(|a| a == "--bench");
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let calls: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(if full { 100 } else { 4 });
    let seconds: usize =
        args.get(1)
            .and_then(|a| a.parse().ok())
            .unwrap_or(if full { 10 } else { 1 });
    let rounds = seconds * 50;
    let client_opus = client_opus_payloads();
    let trunk_pcmu = trunk_pcmu_payloads();
    let trunk_pcm: Vec<Vec<i16>> = (0..50).map(|i| signal(8000, 160, i * 160)).collect();

    let mut trans = load(calls, rounds, (Codec::Opus, 111), &client_opus, &trunk_pcmu);
    let mut pass = load(calls, rounds, (Codec::Pcmu, 0), &trunk_pcmu, &trunk_pcmu);
    let mut bare: Vec<Bare> = (0..calls).map(|_| Bare::new()).collect();

    // Interleave the three measurements round by round, so that load from other processes
    // on the machine hits them alike; report the median round.
    let (mut t_ns, mut p_ns, mut b_ns) = (vec![], vec![], vec![]);
    let (mut t_sent, mut p_sent) = (0u64, 0u64);
    let mut now = Instant::now();
    for r in 0..rounds {
        let (d, n) = round(&mut trans, r, now);
        t_ns.push(d.as_nanos() as f64 / (2 * calls) as f64);
        t_sent += n;
        let (d, n) = round(&mut pass, r, now);
        p_ns.push(d.as_nanos() as f64 / (2 * calls) as f64);
        p_sent += n;
        let t0 = Instant::now();
        for b in &mut bare {
            b.frame(&client_opus[r % 50], &trunk_pcm[r % 50]);
        }
        b_ns.push(t0.elapsed().as_nanos() as f64 / calls as f64);
        now += Duration::from_millis(20);
    }
    let expected = (2 * calls * rounds) as u64;
    assert!(
        t_sent >= expected * 99 / 100 && p_sent >= expected * 99 / 100,
        "forwarded {t_sent}/{p_sent} of {expected}"
    );
    // Skip the first second (warm-up) for the medians.
    let skip = 50.min(rounds / 2);
    let trans_ns = median(&mut t_ns[skip..]);
    let pass_ns = median(&mut p_ns[skip..]);
    let bare_ns = median(&mut b_ns[skip..]);

    // A call carries 50 packets per second in each direction.
    let pass_calls = 1e9 / (pass_ns * 100.0);
    let trans_calls = 1e9 / (trans_ns * 100.0);
    let bare_calls = 1e9 / (bare_ns * 50.0);
    drop((trans, pass, bare));
    let mem_calls = if full { 1000 } else { 10 };
    let mem_trans = memory_per_call(mem_calls, (Codec::Opus, 111), &client_opus, &trunk_pcmu);
    let mem_pass = memory_per_call(mem_calls, (Codec::Pcmu, 0), &trunk_pcmu, &trunk_pcmu);

    println!("media pipeline benchmark: {calls} calls x {seconds} s of 20 ms packets, both directions, SRTP on both legs, one thread");
    println!(
        "passthrough (PCMU<->PCMU):   {pass_ns:9.0} ns/packet          {pass_calls:8.0} calls/core"
    );
    println!("transcoding (Opus<->PCMU):   {trans_ns:9.0} ns/packet          {trans_calls:8.0} calls/core");
    println!("bare libopus decode+encode:  {bare_ns:9.0} ns per call and 20 ms {bare_calls:8.0} calls/core (ceiling)");
    println!(
        "transcoding / ceiling:       {:9.1} %",
        100.0 * trans_calls / bare_calls
    );
    println!(
        "memory per call ({mem_calls} calls after traffic): transcoding {:.1} KiB RSS / {:.1} KiB Rust heap (libopus state is C, only in RSS), passthrough {:.1} KiB RSS / {:.1} KiB Rust heap",
        mem_trans.0 / 1024.0,
        mem_trans.1 / 1024.0,
        mem_pass.0 / 1024.0,
        mem_pass.1 / 1024.0
    );
}
