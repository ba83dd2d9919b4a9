//! Speech through the gateway keeps its content: espeak-ng speech, encoded as a libwebrtc
//! client would (Opus, 48 kHz, 32 kbit/s), goes client → trunk (Opus → PCMU), is echoed by
//! the trunk and comes back trunk → client (PCMU → Opus). Objective figures, against the
//! original at 8 kHz: segmental SNR and log-spectral distance (LSD), for this chain and for
//! a direct Opus encode/decode as the reference.
#![allow(clippy::disallowed_methods)] // real processes, real time

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use media::cert::Certificate;
use media::codec::Codec;
use media::config::{LegConfig, Security};
use media::rtp::{write_header, RtpHeader};
use media::srtp::{MasterKey, SrtpContext, SrtpProfile};
use media::{Config, Leg, Session, TransmitKind};
use rand::SeedableRng;

fn run(cmd: &mut Command) {
    let st = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("tool runs");
    assert!(st.success(), "{cmd:?}");
}

fn read_raw(path: &std::path::Path) -> Vec<i16> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Speech from espeak-ng, as 48 kHz and 8 kHz mono s16.
fn speech() -> (Vec<i16>, Vec<i16>) {
    let dir = std::env::temp_dir().join(format!("jsg-media-speech-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wav = dir.join("speech.wav");
    run(Command::new("timeout").args(["20", "espeak-ng", "-v", "en", "-s", "150", "-w"]).arg(&wav).arg(
        "The quick brown fox jumps over the lazy dog. Please call me back at five five five, one two three four.",
    ));
    for (rate, name) in [("48000", "s48.raw"), ("8000", "s8.raw")] {
        run(Command::new("timeout")
            .args(["20", "sox"])
            .arg(&wav)
            .args([
                "-r",
                rate,
                "-c",
                "1",
                "-b",
                "16",
                "-e",
                "signed-integer",
                "-t",
                "raw",
            ])
            .arg(dir.join(name)));
    }
    (
        read_raw(&dir.join("s48.raw")),
        read_raw(&dir.join("s8.raw")),
    )
}

fn client_encoder() -> opus::Encoder {
    let mut enc = opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    enc.set_bitrate(opus::Bitrate::Bits(32000)).unwrap();
    enc
}

/// Best alignment of `x` against `reference` (delay 0..max), then segmental SNR over
/// 20 ms segments with speech energy, each clamped to [-10, 35] dB.
fn seg_snr(reference: &[i16], x: &[i16], delay: usize) -> f64 {
    let n = reference.len().min(x.len().saturating_sub(delay));
    let mut sum = 0.0;
    let mut count = 0;
    for seg in (0..n / 160).map(|i| i * 160) {
        let s: f64 = (seg..seg + 160)
            .map(|i| (reference[i] as f64).powi(2))
            .sum();
        if s < 160.0 * 300.0 * 300.0 {
            continue;
        }
        let e: f64 = (seg..seg + 160)
            .map(|i| (reference[i] as f64 - x[i + delay] as f64).powi(2))
            .sum();
        sum += (10.0 * (s / e.max(1.0)).log10()).clamp(-10.0, 35.0);
        count += 1;
    }
    sum / count.max(1) as f64
}

fn best_delay(reference: &[i16], x: &[i16], max: usize) -> usize {
    (0..max)
        .max_by(|&a, &b| {
            let c = |d: usize| -> f64 {
                reference
                    .iter()
                    .zip(&x[d.min(x.len())..])
                    .map(|(&r, &y)| r as f64 * y as f64)
                    .sum()
            };
            c(a).partial_cmp(&c(b)).unwrap()
        })
        .unwrap()
}

/// Mean log-spectral distance in dB over speech frames (160-sample frames, Hann window,
/// 64 DFT bins up to 4 kHz).
fn lsd(reference: &[i16], x: &[i16], delay: usize) -> f64 {
    let spectrum = |s: &[i16]| -> Vec<f64> {
        (1..=64)
            .map(|k| {
                let (mut re, mut im) = (0.0, 0.0);
                for (i, &v) in s.iter().enumerate() {
                    let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / 159.0).cos();
                    let ph = 2.0 * std::f64::consts::PI * k as f64 * i as f64 / 128.0;
                    re += w * v as f64 * ph.cos();
                    im -= w * v as f64 * ph.sin();
                }
                10.0 * (re * re + im * im + 1.0).log10()
            })
            .collect()
    };
    let n = reference.len().min(x.len().saturating_sub(delay));
    let mut sum = 0.0;
    let mut count = 0;
    for seg in (0..n / 160).map(|i| i * 160) {
        let r = &reference[seg..seg + 160];
        if r.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() < 160.0 * 300.0 * 300.0 {
            continue;
        }
        let (a, b) = (spectrum(r), spectrum(&x[seg + delay..seg + delay + 160]));
        let d: f64 = a.iter().zip(&b).map(|(p, q)| (p - q).powi(2)).sum::<f64>() / a.len() as f64;
        sum += d.sqrt();
        count += 1;
    }
    sum / count.max(1) as f64
}

#[test]
fn speech_through_opus_pcmu_opus_keeps_its_content() {
    let (s48, s8) = speech();
    assert!(
        s8.len() > 8000 * 3,
        "espeak-ng produced {} samples",
        s8.len()
    );

    // Reference: the client's Opus decoded directly at 8 kHz.
    let mut enc = client_encoder();
    let mut dec = opus::Decoder::new(8000, opus::Channels::Mono).unwrap();
    let mut client_packets = vec![];
    let mut direct = vec![];
    for frame in s48.chunks_exact(960) {
        let mut out = [0u8; 1500];
        let n = enc.encode(frame, &mut out).unwrap();
        client_packets.push(out[..n].to_vec());
        let mut pcm = [0i16; 960];
        let m = dec.decode(&out[..n], &mut pcm, false).unwrap();
        direct.extend_from_slice(&pcm[..m]);
    }

    // The gateway: client leg SDES-SRTP Opus, trunk leg plain PCMU that echoes.
    let p = SrtpProfile::Aes128CmHmacSha1_80;
    let k = |b: u8| MasterKey::new(p, &[b; 16], &[b; 14]).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
    let cert = Certificate::generate(&mut rng).unwrap();
    let client = LegConfig {
        codec: Codec::Opus,
        payload_type: 111,
        telephone_event: None,
        extra_telephone_events: Vec::new(),
        security: Security::Sdes {
            local: k(1),
            remote: k(2),
        },
        ssrc: 1,
    };
    let trunk = LegConfig {
        codec: Codec::Pcmu,
        payload_type: 0,
        telephone_event: None,
        extra_telephone_events: Vec::new(),
        security: Security::Plain,
        ssrc: 2,
    };
    let mut now = Instant::now();
    let mut s = Session::new(
        Arc::new(Config::default()),
        &cert,
        client,
        trunk,
        &mut rng,
        now,
    )
    .unwrap();
    let mut client_tx = SrtpContext::new(&k(2));
    let mut client_rx = SrtpContext::new(&k(1));
    let mut back = opus::Decoder::new(8000, opus::Channels::Mono).unwrap();
    let mut through = vec![];
    for (i, payload) in client_packets.iter().enumerate() {
        let mut pkt = vec![0u8; 12];
        write_header(&mut pkt, i == 0, 111, i as u16, i as u32 * 960, 0xabc);
        pkt.extend_from_slice(payload);
        client_tx.protect_rtp(&mut pkt).unwrap();
        s.handle_packet(now, Leg::Client, &pkt).unwrap();
        let mut echo = vec![];
        while let Some(t) = s.poll_transmit() {
            if t.leg == Leg::Trunk && t.kind == TransmitKind::Rtp {
                echo.push(t.contents.to_vec());
            }
        }
        for e in echo {
            // The trunk echoes the audio under its own SSRC.
            let mut e = e;
            e[8..12].copy_from_slice(&0x7e7e_u32.to_be_bytes());
            s.handle_packet(now, Leg::Trunk, &e).unwrap();
        }
        while let Some(t) = s.poll_transmit() {
            if t.leg == Leg::Client && t.kind == TransmitKind::Rtp {
                let mut p = t.contents.to_vec();
                client_rx.unprotect_rtp(&mut p).unwrap();
                let h = RtpHeader::parse(&p).unwrap();
                let mut pcm = [0i16; 960];
                let m = back
                    .decode(
                        &p[h.header_len..h.header_len + h.payload_len],
                        &mut pcm,
                        false,
                    )
                    .unwrap();
                through.extend_from_slice(&pcm[..m]);
            }
        }
        now += Duration::from_millis(20);
    }
    assert!(
        through.len() >= direct.len() - 320,
        "{} of {} samples came back",
        through.len(),
        direct.len()
    );

    let d_direct = best_delay(&s8, &direct, 400);
    let d_through = best_delay(&s8, &through, 400);
    let snr_direct = seg_snr(&s8, &direct, d_direct);
    let snr_through = seg_snr(&s8, &through, d_through);
    let lsd_direct = lsd(&s8, &direct, d_direct);
    let lsd_through = lsd(&s8, &through, d_through);
    eprintln!(
        "speech quality vs the 8 kHz original: direct Opus segSNR {snr_direct:.1} dB, LSD {lsd_direct:.1} dB (delay {d_direct}); \
         Opus->PCMU->Opus through the gateway segSNR {snr_through:.1} dB, LSD {lsd_through:.1} dB (delay {d_through})"
    );
    assert!(
        lsd_through <= lsd_direct + 3.0,
        "gateway adds at most 3 dB of spectral distance"
    );
    assert!(lsd_through < 12.0, "spectra stay close to the original");
    assert!(snr_through > 0.0, "waveform still follows the original");
}
