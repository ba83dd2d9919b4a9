//! Figures for the closing note, on one core:
//! - SIP messages parsed per second (rsipstack's parser, as the UA uses it,
//!   plus our SDP and digest-challenge parsers);
//! - inbound INVITE → 180 latency of the running user agent on loopback;
//! - malformed requests answered with 400 per second by the datagram screen
//!   (windows of 100 datagrams over loopback).
//!
//! `cargo bench -p jsg-sip --bench figures` prints them; under `cargo test`
//! (no `--bench` argument) it runs a few iterations only, as a smoke test.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use sip::sdp::RemoteMedia;

const INVITE: &str = "INVITE sip:+15551234567@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\nMax-Forwards: 70\r\nTo: <sip:+15551234567@gw.example.com>\r\nFrom: \"Carrier\" <sip:+15550001111@carrier.example.net>;tag=1928301774\r\nCall-ID: a84b4c76e66710@pc33.example.net\r\nCSeq: 314159 INVITE\r\nContact: <sip:carrier@192.0.2.10:5060>\r\nP-Asserted-Identity: <sip:+15550001111@carrier.example.net>\r\nSession-Expires: 1800;refresher=uac\r\nSupported: timer, 100rel\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE\r\nContent-Type: application/sdp\r\nContent-Length: 240\r\n\r\nv=0\r\no=carrier 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 9 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";

const CHALLENGE: &str = r#"Digest realm="sip.example.net", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", qop="auth", algorithm=SHA-256, opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", Digest realm="sip.example.net", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", qop="auth", algorithm=MD5"#;

fn parse_rate(n: u32) -> (f64, f64) {
    let bytes = INVITE.as_bytes();
    let start = Instant::now();
    for _ in 0..n {
        let msg = rsipstack::sip::SipMessage::try_from(bytes).expect("parses");
        std::hint::black_box(msg);
    }
    let sip_rate = f64::from(n) / start.elapsed().as_secs_f64();
    let body = &INVITE[INVITE.find("\r\n\r\n").unwrap() + 4..];
    let start = Instant::now();
    for _ in 0..n {
        let m = RemoteMedia::parse(body).expect("parses");
        let c = sip::digest::parse_challenges(CHALLENGE).expect("parses");
        std::hint::black_box((m, c));
    }
    let ours_rate = f64::from(n) / start.elapsed().as_secs_f64();
    (sip_rate, ours_rate)
}

async fn invite_to_180(calls: u32) -> Vec<Duration> {
    let mut config = sip::Config::default();
    config
        .bind("127.0.0.1:0".parse().unwrap())
        .rate_limit(0)
        .trunk(
            sip::TrunkConfig::new("bench", "127.0.0.1")
                .allowed_sources(vec![sip::IpNet::parse("127.0.0.0/8").unwrap()])
                .clone(),
        );
    let (ua, mut events) = sip::UserAgent::start(config).await.unwrap();
    let target = ua.local_addr();
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    let body = &INVITE[INVITE.find("\r\n\r\n").unwrap() + 4..];
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65535];
    for i in 0..calls {
        let invite = format!(
            "INVITE sip:+15551234567@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKb{i};rport\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001111@{me}>;tag=b{i}\r\nTo: <sip:+15551234567@{target}>\r\nCall-ID: bench-{i}\r\nCSeq: 1 INVITE\r\nContact: <sip:b@{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let sent = Instant::now();
        sock.send_to(invite.as_bytes(), target).await.unwrap();
        loop {
            let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
                .await
                .expect("no 180 within 5 s")
                .unwrap();
            if buf[..n].starts_with(b"SIP/2.0 180") {
                out.push(sent.elapsed());
                break;
            }
        }
        // Clean up: reject, then ACK the 486.
        loop {
            if let Some(sip::Event::Incoming { call, .. }) = events.recv().await {
                ua.reject(&call, 486).unwrap();
                break;
            }
        }
        loop {
            let (n, _) = sock.recv_from(&mut buf).await.unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if let Some(to) = text
                .starts_with("SIP/2.0 486")
                .then(|| {
                    text.lines()
                        .find(|l| l.starts_with("To:"))
                        .map(str::to_string)
                })
                .flatten()
            {
                let ack = format!(
                    "ACK sip:+15551234567@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKb{i};rport\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001111@{me}>;tag=b{i}\r\n{to}\r\nCall-ID: bench-{i}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
                );
                sock.send_to(ack.as_bytes(), target).await.unwrap();
                break;
            }
        }
    }
    ua.shutdown();
    out
}

async fn bad_request_rate(total: u32) -> f64 {
    let mut config = sip::Config::default();
    config.bind("127.0.0.1:0".parse().unwrap()).rate_limit(0);
    let (ua, _events) = sip::UserAgent::start(config).await.unwrap();
    let target = ua.local_addr();
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    let mut buf = vec![0u8; 65535];
    let start = Instant::now();
    let mut answered = 0u32;
    let mut i = 0u32;
    while i < total {
        let window = (total - i).min(100);
        for _ in 0..window {
            let bad = format!(
                "INVITE sip:+15551234567@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKx{i};rport\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001111@{me}>;tag=x{i}\r\nTo: <sip:+15551234567@{target}>\r\nCall-ID: bad-{i}\r\nCSeq: one INVITE\r\nContent-Length: 0\r\n\r\n"
            );
            sock.send_to(bad.as_bytes(), target).await.unwrap();
            i += 1;
        }
        for _ in 0..window {
            let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
                .await
                .expect("no 400 within 5 s")
                .unwrap();
            assert!(buf[..n].starts_with(b"SIP/2.0 400 "));
            answered += 1;
        }
    }
    let rate = f64::from(answered) / start.elapsed().as_secs_f64();
    assert_eq!(ua.wire_stats().bad_request, u64::from(total));
    ua.shutdown();
    rate
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (parse_n, calls) = if bench { (200_000, 500) } else { (200, 5) };
    let (sip_rate, ours_rate) = parse_rate(parse_n);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut lat = rt.block_on(invite_to_180(calls));
    let bad_rate = rt.block_on(bad_request_rate(if bench { 20_000 } else { 200 }));
    lat.sort();
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)];
    println!(
        "SIP INVITE (with SDP, {} bytes) parsed by rsipstack on one core: {sip_rate:.0} messages/s",
        INVITE.len()
    );
    println!("our SDP body + two-challenge digest header parsed on one core: {ours_rate:.0} per s");
    println!(
        "inbound INVITE -> 180 on loopback, current-thread runtime, {} calls: median {:?}, p99 {:?}, max {:?}",
        lat.len(),
        pct(50),
        pct(99),
        lat[lat.len() - 1]
    );
    println!(
        "malformed requests answered with 400 + Warning on loopback, current-thread runtime: {bad_rate:.0} per s"
    );
}
