//! The user agent against real SIP peers (SIPp, Kamailio) on loopback.
//! Every peer is bounded in time and killed by pid when the test ends.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sip::sdp::{Codec, LocalMedia};
use sip::{CallId, EndReason, Event, OutboundCall, UserAgent};

/// A SIPp UAS answers with 180, 183 with SDP and early-media RTP, then 200:
/// we see Ringing, EarlyMedia (and its RTP arrives on our port), Answered with
/// PCMA, and our BYE ends the call (SIPp exits 0 only if it got ACK and BYE).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uas_early_media_then_answer() {
    let scratch = Scratch::new("uas");
    let sipp_port = free_udp_port();
    let sipp_media = free_udp_port();
    let mut sipp = Peer::sipp(
        "sipp-uas",
        &scratch,
        "uas_early_media.xml",
        (sipp_port, sipp_media),
        &[],
    );
    let rtp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp_port = rtp.local_addr().unwrap().port();
    wait_udp_bound(sipp_port).await;
    let (ua, mut events) = UserAgent::start(loopback_config(sipp_port)).await.unwrap();
    let media = LocalMedia::new("127.0.0.1".parse().unwrap(), rtp_port, 7);
    let started = Instant::now();
    let call = ua
        .call(
            "peer",
            OutboundCall {
                to: "+15551234567".into(),
                caller_id: Some("+15557654321".into()),
                media,
            },
        )
        .unwrap();
    let mut ringing = None;
    let mut early = None;
    let answered = loop {
        match next_event(&mut events, Duration::from_secs(15)).await {
            Event::Ringing { call: c } if c == call => ringing = Some(started.elapsed()),
            Event::EarlyMedia { call: c, remote } if c == call => early = Some(remote),
            Event::Answered {
                call: c,
                remote,
                negotiated,
            } if c == call => break (remote, negotiated),
            Event::Ended { reason, .. } => {
                panic!("call ended: {reason:?}\n{}", sipp.log_text())
            }
            _ => {}
        }
    };
    let ringing = ringing.expect("no Ringing event");
    let early = early.expect("no EarlyMedia event");
    assert_eq!(early.port, sipp_media);
    assert_eq!(early.telephone_event_pt, Some(101));
    assert_eq!(answered.1.codec, Codec::Pcma);
    assert_eq!(answered.1.payload_type, 8);
    assert_eq!(answered.0.port, sipp_media);
    // The early media RTP (g711a.pcap played from the 183) reached our port.
    let mut buf = [0u8; 2048];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), rtp.recv_from(&mut buf))
        .await
        .expect("no early-media RTP arrived")
        .unwrap();
    assert!(n >= 12, "short RTP packet");
    assert_eq!(buf[0] >> 6, 2, "RTP version");
    assert_eq!(buf[1] & 0x7f, 8, "PCMA payload type");
    assert!(from.ip().is_loopback());
    eprintln!("outbound INVITE -> Ringing event: {ringing:?}");
    ua.hangup(&call).unwrap();
    expect_ended(&mut events, EndReason::LocalHangup).await;
    sipp.expect_success(Duration::from_secs(15)).await;
    ua.shutdown();
}

/// A carrier-style SIPp UAC calls in with P-Asserted-Identity and
/// Session-Expires: 100 and 180 come back within 1 s (the scenario's 180 has a
/// 1000 ms timeout), we answer, SIPp holds (sendonly → we answer recvonly) and
/// resumes by re-INVITE, then hangs up with BYE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_carrier_calls_in_hold_resume_bye() {
    let scratch = Scratch::new("uac");
    let sipp_port = free_udp_port();
    let sipp_media = free_udp_port();
    let (ua, mut events) = UserAgent::start(loopback_config(sipp_port)).await.unwrap();
    let target = ua.local_addr().to_string();
    let mut sipp = Peer::sipp(
        "sipp-uac",
        &scratch,
        "uac_carrier.xml",
        (sipp_port, sipp_media),
        &["-s", "+15551234567", &target],
    );
    let (call, offer) = match next_event(&mut events, Duration::from_secs(10)).await {
        Event::Incoming {
            call,
            trunk,
            from,
            to,
            offer,
        } => {
            assert_eq!(trunk, "peer");
            assert_eq!(from, "+15550001111", "caller from P-Asserted-Identity");
            assert_eq!(to, "+15551234567");
            (call, offer.expect("offer"))
        }
        other => panic!("expected Incoming, got {other:?}\n{}", sipp.log_text()),
    };
    assert_eq!(offer.port, sipp_media);
    let media = LocalMedia::new("127.0.0.1".parse().unwrap(), 40000, 9);
    let negotiated = ua.answer(&call, media).unwrap().unwrap();
    assert_eq!(negotiated.codec, Codec::Pcmu);
    let hold = wait_for(&mut events, Duration::from_secs(10), |e| {
        matches!(e, Event::MediaUpdate { .. } | Event::Ended { .. })
    })
    .await;
    match hold {
        Event::MediaUpdate { remote, .. } => assert!(remote.is_hold()),
        other => panic!("expected hold, got {other:?}"),
    }
    let resume = wait_for(&mut events, Duration::from_secs(10), |e| {
        matches!(e, Event::MediaUpdate { .. } | Event::Ended { .. })
    })
    .await;
    match resume {
        Event::MediaUpdate { remote, .. } => assert!(!remote.is_hold()),
        other => panic!("expected resume, got {other:?}"),
    }
    expect_ended(&mut events, EndReason::RemoteHangup).await;
    sipp.expect_success(Duration::from_secs(15)).await;
    ua.shutdown();
}

async fn run_uas_scenario(scenario: &str) -> (Peer, u16, Scratch) {
    let scratch = Scratch::new(scenario.trim_end_matches(".xml"));
    let sipp_port = free_udp_port();
    let sipp_media = free_udp_port();
    let sipp = Peer::sipp("sipp-uas", &scratch, scenario, (sipp_port, sipp_media), &[]);
    wait_udp_bound(sipp_port).await;
    (sipp, sipp_port, scratch)
}

fn pcmu_media() -> LocalMedia {
    LocalMedia::new("127.0.0.1".parse().unwrap(), 41000, 3)
}

fn call_to(number: &str) -> OutboundCall {
    OutboundCall {
        to: number.into(),
        caller_id: None,
        media: pcmu_media(),
    }
}

/// Calls `number` over the `peer` trunk and waits (at most 10 s) until it is
/// answered; panics with `far_end`'s log when it ends first.
async fn call_answered(
    ua: &UserAgent,
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    number: &str,
    far_end: &Peer,
) -> CallId {
    let call = ua.call("peer", call_to(number)).unwrap();
    let answered = wait_answered_or_ended(events).await;
    assert!(
        matches!(answered, Event::Answered { .. }),
        "{answered:?}\n{}",
        far_end.log_text()
    );
    call
}

/// A SIPp UAS runs `scenario`; we call `number`, it answers, we hang up after
/// `talk`; the call ends and SIPp's scenario passes.
async fn answered_then_hung_up(scenario: &str, number: &str, talk: Duration) {
    let (mut sipp, port, _scratch) = run_uas_scenario(scenario).await;
    let (ua, mut events) = UserAgent::start(loopback_config(port)).await.unwrap();
    let call = call_answered(&ua, &mut events, number, &sipp).await;
    tokio::time::sleep(talk).await;
    ua.hangup(&call).unwrap();
    wait_ended(&mut events).await;
    sipp.expect_success(Duration::from_secs(15)).await;
    ua.shutdown();
}

/// A SIPp UAS runs `scenario`; we call `number` and hang up at its 180; the first
/// event for which `until` holds (within 10 s) must be the end of the call by our
/// hangup, and SIPp's scenario must pass.
async fn hung_up_while_ringing(scenario: &str, number: &str, until: fn(&Event) -> bool) {
    let (mut sipp, port, _scratch) = run_uas_scenario(scenario).await;
    let (ua, mut events) = UserAgent::start(loopback_config(port)).await.unwrap();
    let call = ua.call("peer", call_to(number)).unwrap();
    wait_for(&mut events, Duration::from_secs(10), |e| {
        matches!(e, Event::Ringing { .. })
    })
    .await;
    ua.hangup(&call).unwrap();
    let ended = wait_for(&mut events, Duration::from_secs(10), until).await;
    assert!(
        matches!(
            ended,
            Event::Ended {
                reason: EndReason::LocalHangup,
                ..
            }
        ),
        "{ended:?}"
    );
    sipp.expect_success(Duration::from_secs(15)).await;
    ua.shutdown();
}

/// CANCEL before the answer: SIPp answers 200 to the CANCEL and 487 to the
/// INVITE and requires our ACK of the 487.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_cancel_before_answer() {
    hung_up_while_ringing("uas_cancel.xml", "+15550000001", |e| {
        matches!(e, Event::Ended { .. })
    })
    .await;
}

/// The CANCEL/200 race: the 200 crosses our CANCEL; we ACK it, then send BYE
/// (SIPp exits 0 only after both), and report a local hangup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_cancel_200_race_acks_then_byes() {
    hung_up_while_ringing("uas_cancel_200_race.xml", "+15550000002", |e| {
        matches!(e, Event::Ended { .. } | Event::Answered { .. })
    })
    .await;
}

struct Kamailio {
    peer: Peer,
    port: u16,
}

async fn start_kamailio(scratch: &Scratch, uas_port: u16, password: &str) -> Kamailio {
    start_kamailio_on(scratch, free_udp_port(), uas_port, password).await
}

async fn start_kamailio_on(
    scratch: &Scratch,
    port: u16,
    uas_port: u16,
    password: &str,
) -> Kamailio {
    let cfg = std::fs::read_to_string(peers_dir().join("kamailio-digest.cfg.in"))
        .unwrap()
        .replace("@KAM_PORT@", &port.to_string())
        .replace("@UAS_PORT@", &uas_port.to_string())
        .replace("@PASSWORD@", password);
    let peer = Peer::kamailio(scratch, &cfg);
    wait_udp_bound(port).await;
    Kamailio { peer, port }
}

fn kamailio_trunk_config(kam_port: u16, password: &str) -> sip::Config {
    let mut config = loopback_config(kam_port);
    config
        .trunk_mut("peer")
        .unwrap()
        .credentials(Some(sip::digest::Credentials {
            username: "alice".into(),
            password: password.into(),
        }))
        .register(true)
        .register_expires(Duration::from_secs(120));
    config
}

/// Kamailio as registrar and proxy requiring SHA-256 digest: REGISTER goes
/// through 401, INVITE through 407 and is relayed (record-routed) to a SIPp
/// UAS; the call is answered and our BYE follows the route set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_sha256_register_and_invite() {
    let (mut sipp, uas_port, scratch) = run_uas_scenario("uas_answer.xml").await;
    let kam = start_kamailio(&scratch, uas_port, "s3cret").await;
    let (ua, mut events) = UserAgent::start(kamailio_trunk_config(kam.port, "s3cret"))
        .await
        .unwrap();
    let reg = wait_registration(&mut events).await;
    match reg {
        Event::Registration {
            state: sip::RegistrationState::Registered { expires },
            ..
        } => assert!(expires.as_secs() > 0),
        other => panic!("registration failed: {other:?}\n{}", kam.peer.log_text()),
    }
    let call = call_answered(&ua, &mut events, "+15550000003", &kam.peer).await;
    ua.hangup(&call).unwrap();
    wait_ended(&mut events).await;
    sipp.expect_success(Duration::from_secs(15)).await;
    let log = kam.peer.log_text();
    assert!(
        log.contains("REGISTER from"),
        "no 401 challenge seen:\n{log}"
    );
    assert!(log.contains("INVITE from"), "no 407 challenge seen:\n{log}");
    for method in ["REGISTER", "INVITE"] {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("{method} authorized:")))
            .unwrap_or_else(|| panic!("{method} never authorized:\n{log}"));
        assert!(line.contains("algorithm=SHA-256"), "{line}");
        assert!(line.contains("qop=auth"), "{line}");
        assert!(line.contains("nc=00000001"), "{line}");
    }
    ua.shutdown();
}

/// A wrong password fails fast with a clear reason and no loop: REGISTER and
/// INVITE each stop at the second challenge with `AuthRejected`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_wrong_password_fails_fast() {
    let scratch = Scratch::new("kam-wrong");
    let kam = start_kamailio(&scratch, 9, "right-password").await;
    let started = Instant::now();
    let (ua, mut events) = UserAgent::start(kamailio_trunk_config(kam.port, "wrong"))
        .await
        .unwrap();
    let reg = wait_registration(&mut events).await;
    match reg {
        Event::Registration {
            state: sip::RegistrationState::Failed { reason, .. },
            ..
        } => assert!(
            matches!(reason, sip::Error::AuthRejected { ref realm } if realm == "127.0.0.1"),
            "{reason:?}"
        ),
        other => panic!("expected a failed registration, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    let call = ua.call("peer", call_to("+15550000004")).unwrap();
    let ended = wait_ended(&mut events).await;
    match ended {
        Event::Ended {
            call: c,
            reason: EndReason::Failed(sip::Error::AuthRejected { .. }),
        } => assert_eq!(c, call),
        other => panic!(
            "expected AuthRejected, got {other:?}\n{}",
            kam.peer.log_text()
        ),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let log = kam.peer.log_text();
    assert_eq!(
        log.matches("INVITE from").count(),
        2,
        "exactly two INVITE challenges, no loop:\n{log}"
    );
    ua.shutdown();
}

/// Forked answers: two 200s with different To tags. We keep the first, ACK
/// both, BYE the second at once and the first when we hang up (SIPp checks
/// the tags and Request-URIs of both BYEs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_forked_200_first_wins_second_byed() {
    // Let the second dialog's BYE go out before ours.
    answered_then_hung_up(
        "uas_forked_200.xml",
        "+15550000005",
        Duration::from_millis(300),
    )
    .await;
}

/// The trunk over TCP: SIPp as a TCP UAS (`-t t1`); INVITE, 180, 200, ACK and
/// our BYE all go over the connection we opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uas_over_tcp() {
    let scratch = Scratch::new("uas-tcp");
    let port = free_udp_port();
    let media = free_udp_port();
    let mut sipp = Peer::sipp(
        "sipp-uas",
        &scratch,
        "uas_answer.xml",
        (port, media),
        &["-t", "t1"],
    );
    // Wait for SIPp's TCP listener.
    let mut ready = false;
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(ready, "sipp did not listen on TCP {port}");
    let mut config = loopback_config(port);
    config
        .trunk_mut("peer")
        .unwrap()
        .transport(sip::Transport::Tcp);
    let (ua, mut events) = UserAgent::start(config).await.unwrap();
    let call = call_answered(&ua, &mut events, "+15550000006", &sipp).await;
    ua.hangup(&call).unwrap();
    expect_ended(&mut events, EndReason::LocalHangup).await;
    sipp.expect_success(Duration::from_secs(15)).await;
    ua.shutdown();
}

/// We hold and resume an inbound call by re-INVITE (sendonly, then sendrecv);
/// SIPp checks the directions we offer and answers recvonly/sendrecv.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_held_and_resumed_by_us() {
    held_and_resumed_by_us("uac_held_by_us.xml", false).await;
}

/// The same hold and resume with UPDATE (RFC 3311) instead of re-INVITE;
/// SIPp expects UPDATE requests and no ACK after its 200s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_held_and_resumed_by_update() {
    held_and_resumed_by_us("uac_updated_by_us.xml", true).await;
}

async fn held_and_resumed_by_us(scenario: &str, by_update: bool) {
    let scratch = Scratch::new(scenario.trim_end_matches(".xml"));
    let sipp_port = free_udp_port();
    let sipp_media = free_udp_port();
    let (ua, mut events) = UserAgent::start(loopback_config(sipp_port)).await.unwrap();
    let target = ua.local_addr().to_string();
    let mut sipp = Peer::sipp(
        "sipp-uac",
        &scratch,
        scenario,
        (sipp_port, sipp_media),
        &["-s", "+15551234567", &target],
    );
    let call = match next_event(&mut events, Duration::from_secs(10)).await {
        Event::Incoming { call, .. } => call,
        other => panic!("expected Incoming, got {other:?}\n{}", sipp.log_text()),
    };
    let mut media = LocalMedia::new("127.0.0.1".parse().unwrap(), 40002, 11);
    ua.answer(&call, media.clone()).unwrap();
    let offer = |media: LocalMedia| {
        let ua = ua.clone();
        let call = call.clone();
        async move {
            if by_update {
                ua.update_media_by_update(&call, media).await
            } else {
                ua.update_media(&call, media).await
            }
        }
    };
    media.direction = sip::sdp::Direction::SendOnly;
    let held = offer(media.clone()).await.unwrap();
    assert_eq!(held.direction, sip::sdp::Direction::RecvOnly);
    media.direction = sip::sdp::Direction::SendRecv;
    let resumed = offer(media).await.unwrap();
    assert_eq!(resumed.direction, sip::sdp::Direction::SendRecv);
    expect_ended(&mut events, EndReason::RemoteHangup).await;
    sipp.expect_success(Duration::from_secs(15)).await;
    ua.shutdown();
}

/// A 302 is followed: the INVITE goes to the Contact (a second SIPp UAS,
/// which answers); the redirect server gets the ACK of its 302.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_302_redirect_followed() {
    let (mut uas, uas_port, scratch) = run_uas_scenario("uas_answer.xml").await;
    let redirect_port = free_udp_port();
    let target = format!("sip:+15550000007@127.0.0.1:{uas_port}");
    let mut redirect = Peer::sipp(
        "sipp-redirect",
        &scratch,
        "uas_redirect.xml",
        (redirect_port, free_udp_port()),
        &["-key", "target", &target],
    );
    wait_udp_bound(redirect_port).await;
    let (ua, mut events) = UserAgent::start(loopback_config(redirect_port))
        .await
        .unwrap();
    let call = call_answered(&ua, &mut events, "+15550000007", &redirect).await;
    ua.hangup(&call).unwrap();
    wait_ended(&mut events).await;
    redirect.expect_success(Duration::from_secs(10)).await;
    uas.expect_success(Duration::from_secs(10)).await;
    ua.shutdown();
}

/// As refresher of a session timer the answerer imposed (2 s,
/// `refresher=uac`): a re-INVITE with Session-Expires goes out within the
/// interval (SIPp's receive has a 1.9 s timeout), then our BYE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_session_timer_we_refresh() {
    // The refresh is due after 1 s (half the interval).
    answered_then_hung_up(
        "uas_session_timer.xml",
        "+15550000008",
        Duration::from_millis(1500),
    )
    .await;
}

/// Registration robustness against Kamailio: with 4 s granted, the refresh
/// comes at about half (2 s); when Kamailio dies the refresh times out and
/// is retried with a growing backoff; once Kamailio is back on the same
/// port we register again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_register_refresh_backoff_and_recovery() {
    let scratch = Scratch::new("kam-refresh");
    let kam = start_kamailio(&scratch, 9, "s3cret").await;
    let port = kam.port;
    let mut config = kamailio_trunk_config(port, "s3cret");
    config
        .trunk_mut("peer")
        .unwrap()
        .register_expires(Duration::from_secs(4));
    // Timer F = 64×T1 = 1.6 s: a lost registrar is noticed quickly.
    config.t1(Duration::from_millis(25));
    let (ua, mut events) = UserAgent::start(config).await.unwrap();
    let mut registered_at = Vec::new();
    while registered_at.len() < 3 {
        match wait_registration(&mut events).await {
            Event::Registration {
                state: sip::RegistrationState::Registered { expires },
                ..
            } => {
                assert_eq!(expires, Duration::from_secs(4));
                registered_at.push(Instant::now());
            }
            other => panic!("{other:?}\n{}", kam.peer.log_text()),
        }
    }
    for w in registered_at.windows(2) {
        let gap = w[1] - w[0];
        eprintln!("refresh after {gap:?}");
        assert!(
            gap >= Duration::from_millis(1700) && gap <= Duration::from_millis(2600),
            "refresh after {gap:?}, want about 2 s"
        );
    }
    assert!(
        kam.peer.log_text().matches("REGISTER authorized").count() >= 3,
        "{}",
        kam.peer.log_text()
    );
    // Network loss: the registrar disappears.
    drop(kam);
    let lost = Instant::now();
    let mut retries = Vec::new();
    while retries.len() < 2 {
        match wait_registration(&mut events).await {
            Event::Registration {
                state: sip::RegistrationState::Failed { reason, retry_in },
                ..
            } => {
                assert!(matches!(reason, sip::Error::TimedOut(_)), "{reason:?}");
                retries.push(retry_in);
            }
            other => panic!("registered without a registrar: {other:?}"),
        }
    }
    eprintln!(
        "failures noticed after {:?}, backoff {retries:?}",
        lost.elapsed()
    );
    assert_eq!(retries, [Duration::from_secs(1), Duration::from_secs(2)]);
    // The registrar comes back on the same port: we register again.
    let back = start_kamailio_on(&scratch, port, 9, "s3cret").await;
    let restarted = Instant::now();
    match wait_registration(&mut events).await {
        Event::Registration {
            state: sip::RegistrationState::Registered { .. },
            ..
        } => {}
        other => panic!("{other:?}\n{}", back.peer.log_text()),
    }
    eprintln!("re-registered {:?} after the restart", restarted.elapsed());
    assert!(restarted.elapsed() < Duration::from_secs(6));
    assert!(back.peer.log_text().contains("REGISTER authorized"));
    ua.shutdown();
}
