//! In-process smoke test: two of our drivers back to back on loopback (A's client leg
//! against B's client leg, each with a UDP socket playing its trunk). A tool to catch
//! wiring mistakes quickly; the interop witness is `tests/tests/media_webrtc.rs`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use media::codec::Codec;
use media::config::Security;
use media::dtls::Setup;
use media::rtp::RtpHeader;
use media::Leg;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::*;

fn params(id: &str, role: ice::Role, seed: u8, trunk: SocketAddr) -> CallMediaParams {
    CallMediaParams {
        call_id: id.into(),
        media_config: Arc::new(media::Config::default()),
        ice_config: ice::Config::default(),
        client: ClientLegParams {
            ice_role: role,
            media: None,
        },
        trunk: Some(TrunkMedia {
            codec: Codec::Pcmu,
            payload_type: 0,
            telephone_event: Some(101),
            security: Security::Plain,
            remote: Some(trunk),
        }),
        bind: BindParams::loopback(),
        rng_seed: Some([seed; 32]),
    }
}

fn client_media(setup: Setup, peer: &LocalDescription) -> ClientMedia {
    ClientMedia {
        codec: Codec::Opus,
        payload_type: 111,
        telephone_event: Some(110),
        extra_telephone_events: Vec::new(),
        dtls: Some(ClientDtls {
            local_setup: setup,
            remote_fingerprint: peer.fingerprint,
        }),
    }
}

/// Waits for an event matching `f`, returning the events seen before it.
async fn wait_for(
    rx: &mut mpsc::Receiver<CallMediaEvent>,
    what: &str,
    f: impl Fn(&CallMediaEvent) -> bool,
) -> CallMediaEvent {
    timeout(Duration::from_secs(10), async {
        loop {
            let e = rx.recv().await.expect("event stream ended");
            if f(&e) {
                return e;
            }
            assert!(
                !matches!(e, CallMediaEvent::Failed { .. }),
                "failed while waiting for {what}: {e:?}"
            );
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn pcmu_packet(seq: u16, ts: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&ts.to_be_bytes());
    for i in 0..160u32 {
        let t = f64::from(ts + i) / 8000.0;
        let s = (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16;
        p.push(media::g711::ulaw_encode(s));
    }
    p
}

#[tokio::test]
async fn two_drivers_back_to_back_carry_trunk_audio_both_ways() {
    let lo = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let trunk_a = UdpSocket::bind(lo).await.unwrap();
    let trunk_b = UdpSocket::bind(lo).await.unwrap();
    let (a, mut ea, la) = CallMedia::spawn(params(
        "a",
        ice::Role::Controlling,
        1,
        trunk_a.local_addr().unwrap(),
    ))
    .await
    .unwrap();
    let (b, mut eb, lb) = CallMedia::spawn(params(
        "b",
        ice::Role::Controlled,
        2,
        trunk_b.local_addr().unwrap(),
    ))
    .await
    .unwrap();
    assert_eq!(la.setup, Setup::Actpass, "no client media yet: we offer");
    assert_eq!(la.candidates.len(), 2, "one host candidate per address");
    a.set_client_media(client_media(Setup::Active, &lb))
        .unwrap();
    b.set_client_media(client_media(Setup::Passive, &la))
        .unwrap();
    a.remote_ice_credentials(&lb.ice.ufrag, &lb.ice.pwd)
        .unwrap();
    b.remote_ice_credentials(&la.ice.ufrag, &la.ice.pwd)
        .unwrap();
    for c in &lb.candidates {
        a.remote_candidate(c.clone()).unwrap();
    }
    for c in &la.candidates {
        b.remote_candidate(c.clone()).unwrap();
    }
    a.end_of_candidates().unwrap();
    b.end_of_candidates().unwrap();

    for (rx, n) in [(&mut ea, "a"), (&mut eb, "b")] {
        wait_for(rx, &format!("{n} dtls"), |e| {
            matches!(e, CallMediaEvent::DtlsConnected { .. })
        })
        .await;
    }
    // The trunk tone goes A trunk → A client (Opus) → B client → B trunk (PCMU), and
    // the other way.
    for i in 0..50u16 {
        trunk_a
            .send_to(&pcmu_packet(i, u32::from(i) * 160), la.trunk_rtp)
            .await
            .unwrap();
        trunk_b
            .send_to(&pcmu_packet(i, u32::from(i) * 160), lb.trunk_rtp)
            .await
            .unwrap();
    }
    let mut buf = [0u8; 1500];
    for (sock, from, name) in [(&trunk_b, lb.trunk_rtp, "b"), (&trunk_a, la.trunk_rtp, "a")] {
        let (n, src) = timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no audio at trunk {name}"))
            .unwrap();
        assert_eq!(src, from, "trunk media comes from our trunk socket");
        let h = RtpHeader::parse(&buf[..n]).unwrap();
        assert_eq!(h.payload_type, 0);
        assert_eq!(h.payload_len, 160);
    }
    wait_for(&mut eb, "b media from client", |e| {
        matches!(e, CallMediaEvent::MediaFlowing { leg: Leg::Client })
    })
    .await;
    a.stop().unwrap();
    let CallMediaEvent::Stopped { client, trunk } = wait_for(&mut ea, "a stopped", |e| {
        matches!(e, CallMediaEvent::Stopped { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert!(
        client.rx.packets > 0 && trunk.rx.packets >= 50,
        "{client:?} {trunk:?}"
    );
    assert!(ea.recv().await.is_none(), "stopped is the last event");
    assert!(matches!(a.stop(), Err(Error::Stopped)));
}

#[tokio::test]
async fn wrong_fingerprint_fails_with_security_error() {
    let lo = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let trunk = UdpSocket::bind(lo).await.unwrap();
    let t = trunk.local_addr().unwrap();
    let (a, mut ea, la) = CallMedia::spawn(params("a", ice::Role::Controlling, 3, t))
        .await
        .unwrap();
    let (b, mut eb, lb) = CallMedia::spawn(params("b", ice::Role::Controlled, 4, t))
        .await
        .unwrap();
    let mut wrong = lb.clone();
    wrong.fingerprint.0[0] ^= 1;
    a.set_client_media(client_media(Setup::Active, &wrong))
        .unwrap();
    b.set_client_media(client_media(Setup::Passive, &la))
        .unwrap();
    a.remote_ice_credentials(&lb.ice.ufrag, &lb.ice.pwd)
        .unwrap();
    b.remote_ice_credentials(&la.ice.ufrag, &la.ice.pwd)
        .unwrap();
    for c in &lb.candidates {
        a.remote_candidate(c.clone()).unwrap();
    }
    for c in &la.candidates {
        b.remote_candidate(c.clone()).unwrap();
    }
    let e = wait_for(&mut ea, "failure", |e| {
        matches!(e, CallMediaEvent::Failed { .. })
    })
    .await;
    let CallMediaEvent::Failed { error } = e else {
        unreachable!()
    };
    assert!(error.is_security(), "{error:?}");
    wait_for(&mut ea, "stopped", |e| {
        matches!(e, CallMediaEvent::Stopped { .. })
    })
    .await;
    // B saw the handshake fail from its side (an alert or a timeout): it must not connect.
    assert!(!std::iter::from_fn(|| eb.try_recv().ok())
        .any(|e| matches!(e, CallMediaEvent::DtlsConnected { .. })));
    b.stop().unwrap();
}

#[tokio::test]
async fn bind_errors_are_reported() {
    let mut p = params(
        "x",
        ice::Role::Controlled,
        5,
        SocketAddr::from((Ipv4Addr::LOCALHOST, 9)),
    );
    p.bind.client_ips.clear();
    assert!(matches!(
        CallMedia::spawn(p.clone()).await,
        Err(Error::NoClientAddress)
    ));
    let held = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    p.bind = BindParams {
        client_ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        trunk_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        ports: Some(port..=port),
    };
    assert!(matches!(CallMedia::spawn(p).await, Err(Error::Bind { .. })));
}

struct Pair {
    a: CallMediaHandle,
    ea: CallMediaEvents,
    la: LocalDescription,
    b: CallMediaHandle,
    eb: CallMediaEvents,
    lb: LocalDescription,
    trunk_a: UdpSocket,
    trunk_b: UdpSocket,
}

/// Two drivers connected client leg to client leg, DTLS done.
async fn connected_pair(seed: u8) -> Pair {
    let lo = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let trunk_a = UdpSocket::bind(lo).await.unwrap();
    let trunk_b = UdpSocket::bind(lo).await.unwrap();
    let (a, mut ea, la) = CallMedia::spawn(params(
        "a",
        ice::Role::Controlling,
        seed,
        trunk_a.local_addr().unwrap(),
    ))
    .await
    .unwrap();
    let (b, mut eb, lb) = CallMedia::spawn(params(
        "b",
        ice::Role::Controlled,
        seed + 1,
        trunk_b.local_addr().unwrap(),
    ))
    .await
    .unwrap();
    a.set_client_media(client_media(Setup::Active, &lb))
        .unwrap();
    b.set_client_media(client_media(Setup::Passive, &la))
        .unwrap();
    a.remote_ice_credentials(&lb.ice.ufrag, &lb.ice.pwd)
        .unwrap();
    b.remote_ice_credentials(&la.ice.ufrag, &la.ice.pwd)
        .unwrap();
    for c in &lb.candidates {
        a.remote_candidate(c.clone()).unwrap();
    }
    for c in &la.candidates {
        b.remote_candidate(c.clone()).unwrap();
    }
    for (rx, n) in [(&mut ea, "a"), (&mut eb, "b")] {
        wait_for(rx, &format!("{n} dtls"), |e| {
            matches!(e, CallMediaEvent::DtlsConnected { .. })
        })
        .await;
    }
    Pair {
        a,
        ea,
        la,
        b,
        eb,
        lb,
        trunk_a,
        trunk_b,
    }
}

/// Receives RTP at `sock` until one with payload type `pt` matching `f` arrives.
async fn recv_pt(sock: &UdpSocket, pt: u8, what: &str, f: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    timeout(Duration::from_secs(5), async {
        loop {
            let (n, _) = sock.recv_from(&mut buf).await.unwrap();
            let h = RtpHeader::parse(&buf[..n]).unwrap();
            let payload = &buf[h.header_len..h.header_len + h.payload_len];
            if h.payload_type == pt && f(payload) {
                return payload.to_vec();
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what}"))
}

#[tokio::test]
async fn telephone_events_cross_the_opus_client_leg_at_8_khz() {
    let p = connected_pair(11).await;
    // Digit 7 for 100 ms at 8 kHz: durations 160..800, the end packet three times, on
    // PT 101; it crosses A's client leg at 48 kHz (PT 110) and leaves B's trunk at 8 kHz.
    let ts = 16_000u32;
    for (i, d) in [160u16, 320, 480, 640, 800, 800, 800, 800]
        .iter()
        .enumerate()
    {
        let end = i >= 5;
        let seq = i as u16;
        let mut pk = vec![
            0x80,
            101 | if i == 0 { 0x80 } else { 0 },
            0,
            0,
            0,
            0,
            0,
            0,
            1,
            2,
            3,
            4,
        ];
        pk[2..4].copy_from_slice(&seq.to_be_bytes());
        pk[4..8].copy_from_slice(&ts.to_be_bytes());
        pk.extend_from_slice(&[7, if end { 0x80 | 10 } else { 10 }]);
        pk.extend_from_slice(&d.to_be_bytes());
        p.trunk_a.send_to(&pk, p.la.trunk_rtp).await.unwrap();
    }
    let first = recv_pt(&p.trunk_b, 101, "telephone-event", |_| true).await;
    assert_eq!(first[0], 7, "the event code is kept");
    let end = recv_pt(&p.trunk_b, 101, "end of event", |pl| pl[1] & 0x80 != 0).await;
    assert_eq!(end[0], 7);
    assert_eq!(
        u16::from_be_bytes([end[2], end[3]]),
        800,
        "100 ms is 800 ticks at 8 kHz after the 48 kHz client leg"
    );
    let _ = (p.ea, p.eb, p.lb, p.a, p.b);
}

#[tokio::test]
async fn ice_restart_keeps_media_flowing() {
    let mut p = connected_pair(21).await;
    let new_a = p.a.ice_restart().await.unwrap();
    assert_ne!(new_a.ufrag, p.la.ice.ufrag, "new credentials");
    p.b.remote_ice_credentials(&new_a.ufrag, &new_a.pwd)
        .unwrap();
    let new_b = p.b.ice_restart().await.unwrap();
    p.a.remote_ice_credentials(&new_b.ufrag, &new_b.pwd)
        .unwrap();
    wait_for(&mut p.ea, "a selected after restart", |e| {
        matches!(e, CallMediaEvent::IceSelected { .. })
    })
    .await;
    for i in 0..10u16 {
        p.trunk_a
            .send_to(&pcmu_packet(i, u32::from(i) * 160), p.la.trunk_rtp)
            .await
            .unwrap();
    }
    recv_pt(&p.trunk_b, 0, "audio after the restart", |pl| {
        pl.len() == 160
    })
    .await;
    p.b.stop().unwrap();
    let CallMediaEvent::Stopped { client, .. } = wait_for(&mut p.eb, "b stopped", |e| {
        matches!(e, CallMediaEvent::Stopped { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert!(client.rx.auth_failures == 0, "{client:?}");
}

/// The client's restart as the call layer relays it: `remote_ice_restart` with its new
/// credentials gives our new ones as an event; media flows on the pair selected under
/// the new credentials; invalid credentials give `IceRestartFailed`.
#[tokio::test]
async fn remote_ice_restart_reports_new_credentials_and_media_flows() {
    let mut p = connected_pair(23).await;
    // a plays the client: it restarts first.
    let new_a = p.a.ice_restart().await.unwrap();
    p.b.remote_ice_restart(&new_a.ufrag, &new_a.pwd).unwrap();
    let CallMediaEvent::IceRestarted { ice } = wait_for(&mut p.eb, "b restarted", |e| {
        matches!(e, CallMediaEvent::IceRestarted { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert_ne!(ice.ufrag, p.lb.ice.ufrag, "new credentials");
    p.a.remote_ice_credentials(&ice.ufrag, &ice.pwd).unwrap();
    wait_for(&mut p.eb, "b selected after restart", |e| {
        matches!(e, CallMediaEvent::IceSelected { .. })
    })
    .await;
    for i in 0..10u16 {
        p.trunk_a
            .send_to(&pcmu_packet(i, u32::from(i) * 160), p.la.trunk_rtp)
            .await
            .unwrap();
    }
    recv_pt(&p.trunk_b, 0, "audio after the restart", |pl| {
        pl.len() == 160
    })
    .await;
    p.b.remote_ice_restart("x", "short").unwrap();
    wait_for(&mut p.eb, "refused restart", |e| {
        matches!(e, CallMediaEvent::IceRestartFailed { .. })
    })
    .await;
    let _ = (p.ea, p.la, p.a);
}

#[tokio::test]
async fn trunk_rtcp_is_muxed_until_the_trunk_uses_port_plus_one() {
    let lo = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let trunk_rtp = UdpSocket::bind(lo).await.unwrap();
    let trunk_rtcp = UdpSocket::bind(lo).await.unwrap();
    let mut p = params(
        "rtcp",
        ice::Role::Controlled,
        31,
        trunk_rtp.local_addr().unwrap(),
    );
    let mut cfg = media::Config::default();
    cfg.rtcp_interval(Duration::from_millis(50));
    p.media_config = Arc::new(cfg);
    // The client leg never connects; the trunk leg (plain RTP) reports anyway.
    let other = media::cert::Certificate::generate(&mut rand::thread_rng()).unwrap();
    p.client.media = Some(ClientMedia {
        codec: Codec::Pcmu,
        payload_type: 0,
        telephone_event: None,
        extra_telephone_events: Vec::new(),
        dtls: Some(ClientDtls {
            local_setup: Setup::Active,
            remote_fingerprint: other.fingerprint(),
        }),
    });
    let (h, _events, local) = CallMedia::spawn(p).await.unwrap();
    assert_eq!(local.setup, Setup::Active);
    assert_eq!(local.trunk_rtp.port() % 2, 0, "rtp on an even port");
    let is_rtcp = |b: &[u8]| b.len() >= 8 && (200..=204).contains(&b[1]);
    let mut buf = [0u8; 1500];
    let (n, from) = timeout(Duration::from_secs(5), trunk_rtp.recv_from(&mut buf))
        .await
        .expect("muxed rtcp")
        .unwrap();
    assert!(is_rtcp(&buf[..n]) && from == local.trunk_rtp);
    // A receiver report (no blocks) from the trunk's RTCP socket to our port + 1.
    let rr = [0x80, 201, 0, 1, 0xde, 0xad, 0xbe, 0xef];
    let ours_rtcp = SocketAddr::new(local.trunk_rtp.ip(), local.trunk_rtp.port() + 1);
    trunk_rtcp.send_to(&rr, ours_rtcp).await.unwrap();
    let (n, from) = timeout(Duration::from_secs(5), trunk_rtcp.recv_from(&mut buf))
        .await
        .expect("rtcp to the latched port + 1 source")
        .unwrap();
    assert!(is_rtcp(&buf[..n]));
    assert_eq!(from, ours_rtcp, "sent from our rtcp socket");
    h.stop().unwrap();
}

/// Building the media session takes tens of milliseconds in a debug build (the DTLS
/// context); ICE Binding requests that arrive meanwhile must still be answered at once,
/// or libwebrtc with renomination nominates a second later (`ice/docs/ice.md`,
/// "Renomination timing with libwebrtc"). A peer agent's first check is sent back to back
/// (request, response, request, ...) from the moment the client media completes the
/// session's inputs until 250 ms later; every one must be answered.
#[tokio::test]
async fn ice_checks_are_answered_while_the_session_is_built() {
    let lo = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let trunk = UdpSocket::bind(lo).await.unwrap();
    let (h, mut ev, ld) = CallMedia::spawn(params(
        "checks",
        ice::Role::Controlled,
        5,
        trunk.local_addr().unwrap(),
    ))
    .await
    .unwrap();
    // Nobody else reads the events: keep the task from waiting on a full channel.
    tokio::spawn(async move { while ev.recv().await.is_some() {} });
    let peer = UdpSocket::bind(lo).await.unwrap();
    let start = std::time::Instant::now();
    let mut agent = ice::Agent::new(ice::Config::default(), ice::Role::Controlling, start);
    let pc = agent
        .add_local_host(start, peer.local_addr().unwrap())
        .unwrap();
    agent.finish_gathering(start);
    let creds = agent.local_credentials().clone();
    h.remote_ice_credentials(&creds.ufrag, &creds.pwd).unwrap();
    h.remote_candidate(pc).unwrap();
    h.end_of_candidates().unwrap();
    agent
        .set_remote_credentials(start, &ld.ice.ufrag, &ld.ice.pwd)
        .unwrap();
    let target = ld
        .candidates
        .iter()
        .find(|c| c.addr.is_ipv4())
        .expect("an IPv4 host candidate")
        .clone();
    agent.add_remote_candidate(start, target.clone()).unwrap();
    agent.end_of_remote_candidates(start);
    // The agent's first check, taken in virtual time.
    let mut t = start;
    let request = loop {
        agent.handle_timeout(t);
        if let Some(tx) = agent.poll_transmit() {
            assert_eq!(tx.destination, target.addr);
            break tx.contents;
        }
        t += Duration::from_millis(10);
        assert!(
            t < start + Duration::from_secs(5),
            "no check from the peer agent"
        );
    };
    assert_eq!(&request[..2], &[0x00, 0x01], "a Binding request");
    let txid = request[8..20].to_vec();

    h.set_client_media(ClientMedia {
        codec: Codec::Opus,
        payload_type: 111,
        telephone_event: Some(110),
        extra_telephone_events: Vec::new(),
        dtls: Some(ClientDtls {
            local_setup: Setup::Passive,
            remote_fingerprint: ld.fingerprint,
        }),
    })
    .unwrap();
    let began = std::time::Instant::now();
    let mut buf = [0u8; 1500];
    let (mut answered, mut worst) = (0u32, Duration::ZERO);
    while began.elapsed() < Duration::from_millis(250) {
        let sent = std::time::Instant::now();
        peer.send_to(&request, target.addr).await.unwrap();
        timeout(Duration::from_secs(2), async {
            loop {
                let (n, _) = peer.recv_from(&mut buf).await.unwrap();
                // Skip the driver's own checks (requests) to us.
                if n >= 20 && buf[..2] == [0x01, 0x01] && buf[8..20] == txid[..] {
                    return;
                }
            }
        })
        .await
        .expect("a Binding success response");
        worst = worst.max(sent.elapsed());
        answered += 1;
    }
    // Wall-clock latency is not asserted: on a loaded 2-core CI machine the scheduler
    // alone can delay one response by 200 ms. What must hold is that requests sent while
    // the session is being built are answered at all (each within the 2 s above), and
    // more than once in the window.
    assert!(
        answered > 1,
        "{answered} checks answered (slowest {worst:?})"
    );
    eprintln!("{answered} checks answered, slowest response {worst:?}");
    h.stop().unwrap();
}
