//! The user agent against baresip on loopback: baresip answers and records
//! what it hears (our RTP must arrive: non-zero RMS measured with sox), and
//! baresip calls in (its RTP reaches our port).

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use sip::sdp::{Codec, LocalMedia};
use sip::{Event, OutboundCall, UserAgent};
use tokio::net::UdpSocket;

const DID: &str = "+15551230000";

fn baresip(scratch: &Scratch, port: u16, extra: &[&str]) -> Peer {
    let dir = &scratch.0;
    let tone = dir.join("tone.wav");
    let status = std::process::Command::new("sox")
        .args(["-n", "-r", "8000", "-c", "1", "-b", "16"])
        .arg(&tone)
        .args(["synth", "30", "sine", "440", "vol", "0.5"])
        .status()
        .expect("sox must be installed (scripts/install-deps)");
    assert!(status.success());
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{port}\naudio_player alsa,null\naudio_alert alsa,null\naudio_source aufile,{}\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\nmodule alsa.so\nmodule sndfile.so\nmodule_app account.so\nmodule_app menu.so\nsnd_path {}\n",
        tone.display(),
        dir.display()
    );
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(
        dir.join("accounts"),
        format!("<sip:{DID}@127.0.0.1:{port}>;regint=0;answermode=auto;audio_codecs=PCMU\n"),
    )
    .unwrap();
    let mut args: Vec<String> = vec![
        "20".into(),
        "baresip".into(),
        "-f".into(),
        dir.display().to_string(),
        "-n".into(),
        "127.0.0.1".into(),
        "-t".into(),
        "15".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Peer::spawn("baresip", "timeout", &args, dir)
}

/// G.711 µ-law encoding of one 16-bit sample (ITU-T G.711).
fn ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = (s + BIAS).min(0x7fff);
    let exponent = (0..8).rev().find(|e| s & (0x80 << e) != 0).unwrap_or(0);
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !((sign | (exponent << 4) | mantissa) as u8)
}

fn rms_of(path: &Path) -> f64 {
    let out = std::process::Command::new("sox")
        .arg(path)
        .args(["-n", "stat"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    text.lines()
        .find(|l| l.starts_with("RMS     amplitude"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no RMS in sox output: {text}"))
}

/// baresip answers our call; 2 s of a 440 Hz tone in PCMU RTP from our port
/// reach it: its decoded recording has a clearly non-zero RMS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_answers_and_hears_our_rtp() {
    let scratch = Scratch::new("baresip-answer");
    let port = free_udp_port();
    let peer = baresip(&scratch, port, &[]);
    wait_udp_bound(port).await;
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut config = loopback_config(port);
    config.trunk_mut("peer").unwrap().codecs(vec![Codec::Pcmu]);
    let (ua, mut events) = UserAgent::start(config).await.unwrap();
    let media = LocalMedia::new(
        "127.0.0.1".parse().unwrap(),
        rtp.local_addr().unwrap().port(),
        5,
    );
    let call = ua
        .call(
            "peer",
            OutboundCall {
                to: DID.into(),
                caller_id: Some("+15550002222".into()),
                media,
            },
        )
        .unwrap();
    let (remote, negotiated) = match wait_answered_or_ended(&mut events).await {
        Event::Answered {
            remote, negotiated, ..
        } => (remote, negotiated),
        other => panic!("{other:?}\n{}", peer.log_text()),
    };
    assert_eq!(negotiated.codec, Codec::Pcmu);
    let dest = std::net::SocketAddr::new(remote.address, remote.port);
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    let mut phase = 0f64;
    for seq in 0..100u16 {
        ticker.tick().await;
        let mut pkt = vec![0x80, negotiated.payload_type];
        pkt.extend_from_slice(&seq.to_be_bytes());
        pkt.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        pkt.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        for _ in 0..160 {
            let s = (phase.sin() * 12000.0) as i16;
            phase += 2.0 * std::f64::consts::PI * 440.0 / 8000.0;
            pkt.push(ulaw(s));
        }
        rtp.send_to(&pkt, dest).await.unwrap();
    }
    ua.hangup(&call).unwrap();
    wait_ended(&mut events).await;
    // baresip writes the recording when the call ends; give it a moment.
    let mut dec = None;
    for _ in 0..50 {
        dec = std::fs::read_dir(&scratch.0)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"));
        if dec.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dec = dec.unwrap_or_else(|| panic!("no recording\n{}", peer.log_text()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rms = rms_of(&dec);
    eprintln!("baresip recording RMS: {rms}");
    assert!(
        rms > 0.05,
        "recording RMS {rms} too low\n{}",
        peer.log_text()
    );
    ua.shutdown();
}

/// baresip calls in; we answer and its tone arrives as PCMU RTP on our port;
/// we hang up with BYE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_in_and_we_hang_up() {
    let scratch = Scratch::new("baresip-dial");
    let port = free_udp_port();
    let (ua, mut events) = UserAgent::start(loopback_config(port)).await.unwrap();
    let dial = format!("/dial sip:+15559998888@{}", ua.local_addr());
    let peer = baresip(&scratch, port, &["-e", &dial]);
    let call = match wait_for(&mut events, Duration::from_secs(10), |e| {
        matches!(e, Event::Incoming { .. })
    })
    .await
    {
        Event::Incoming {
            call, to, offer, ..
        } => {
            assert_eq!(to, "+15559998888");
            assert!(offer.is_some());
            call
        }
        _ => unreachable!(),
    };
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let media = LocalMedia::new(
        "127.0.0.1".parse().unwrap(),
        rtp.local_addr().unwrap().port(),
        6,
    );
    let negotiated = ua.answer(&call, media).unwrap().unwrap();
    assert_eq!(negotiated.codec, Codec::Pcmu);
    let mut buf = [0u8; 2048];
    let mut packets = 0;
    while packets < 20 {
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), rtp.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no RTP from baresip\n{}", peer.log_text()))
            .unwrap();
        if n > 12 && buf[0] >> 6 == 2 && buf[1] & 0x7f == negotiated.payload_type {
            packets += 1;
        }
    }
    ua.hangup(&call).unwrap();
    match wait_ended(&mut events).await {
        Event::Ended { reason, .. } => assert_eq!(reason, sip::EndReason::LocalHangup),
        _ => unreachable!(),
    }
    ua.shutdown();
}
