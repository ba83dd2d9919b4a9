//! The user agent answering requests from a raw UDP socket on loopback: the
//! status codes it sends, inbound CANCEL, rejects, and robustness against a
//! flood of malformed datagrams.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use sip::sdp::{Codec, LocalMedia};
use sip::{EndReason, Event, UserAgent};
use tokio::net::UdpSocket;

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";

struct Raw {
    sock: UdpSocket,
    ua: SocketAddr,
}

impl Raw {
    async fn new(ua: SocketAddr) -> Self {
        Self {
            sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            ua,
        }
    }

    fn request(&self, method: &str, call_id: &str, cseq: u32, to_tag: &str, body: &str) -> String {
        let me = self.sock.local_addr().unwrap();
        let ct = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\r\n".into()
        };
        let cseq_method = if method == "CANCEL" { "CANCEL" } else { method };
        format!(
            "{method} sip:+15551234567@{ua} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call_id}{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:+15550009999@{me}>;tag=raw1\r\nTo: <sip:+15551234567@{ua}>{to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {cseq_method}\r\nContact: <sip:raw@{me}>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
            body.len(),
            ua = self.ua,
        )
    }

    async fn send(&self, text: &str) {
        self.sock.send_to(text.as_bytes(), self.ua).await.unwrap();
    }

    /// The next response's status code and full text.
    async fn recv(&self) -> (u16, String) {
        let mut buf = vec![0u8; 65535];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), self.sock.recv_from(&mut buf))
            .await
            .expect("no response within 5 s")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (code, text)
    }

    async fn recv_status(&self, want: u16) -> String {
        loop {
            let (code, text) = self.recv().await;
            if code == want {
                return text;
            }
            assert!(code < 200 || code == want, "expected {want}, got:\n{text}");
        }
    }
}

fn to_tag_of(resp: &str) -> String {
    let to = resp
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("to:"))
        .unwrap();
    let tag = to.split(";tag=").nth(1).unwrap().trim();
    format!(";tag={tag}")
}

async fn ua() -> (UserAgent, tokio::sync::mpsc::UnboundedReceiver<Event>) {
    init_tracing();
    UserAgent::start(loopback_config(5060)).await.unwrap()
}

#[tokio::test]
async fn options_register_and_unknown_dialog() {
    let (ua, _events) = ua().await;
    let raw = Raw::new(ua.local_addr()).await;
    raw.send(&raw.request("OPTIONS", "opt1", 1, "", "")).await;
    let resp = raw.recv_status(200).await;
    assert!(resp.contains("Allow: INVITE"), "{resp}");
    raw.send(&raw.request("REGISTER", "reg1", 1, "", "")).await;
    raw.recv_status(405).await;
    raw.send(&raw.request("BYE", "nosuchcall", 1, ";tag=x", ""))
        .await;
    raw.recv_status(481).await;
    ua.shutdown();
}

#[tokio::test]
async fn unauthorized_source_gets_403() {
    init_tracing();
    let mut config = loopback_config(5060);
    config
        .trunk_mut("peer")
        .unwrap()
        .host("127.0.0.2")
        .allowed_sources(vec![sip::IpNet::parse("127.0.0.3/32").unwrap()]);
    let (ua, mut events) = UserAgent::start(config).await.unwrap();
    let raw = Raw::new(ua.local_addr()).await;
    raw.send(&raw.request("INVITE", "forbidden1", 1, "", OFFER))
        .await;
    raw.recv_status(403).await;
    raw.send(&raw.request("OPTIONS", "forbidden2", 1, "", ""))
        .await;
    raw.recv_status(403).await;
    assert!(events.try_recv().is_err(), "no event for a refused call");
    ua.shutdown();
}

#[tokio::test]
async fn bad_offers_get_400_and_488() {
    let (ua, mut events) = ua().await;
    let raw = Raw::new(ua.local_addr()).await;
    raw.send(&raw.request("INVITE", "badsdp", 1, "", "v=0\r\nm=audio x RTP/AVP 0\r\n"))
        .await;
    let resp = raw.recv_status(400).await;
    assert!(resp.contains("Warning:"), "{resp}");
    let g729_only = OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 18");
    raw.send(&raw.request("INVITE", "nocodec", 1, "", &g729_only))
        .await;
    raw.recv_status(488).await;
    assert!(events.try_recv().is_err());
    ua.shutdown();
}

/// 100 at once, 180 right after (well within the 1 s carriers allow), then
/// the caller's CANCEL: 200 to the CANCEL, 487 to the INVITE, and an
/// `Ended(RemoteCancel)` event.
#[tokio::test]
async fn inbound_ringing_fast_then_cancel_487() {
    let (ua, mut events) = ua().await;
    let raw = Raw::new(ua.local_addr()).await;
    let sent = Instant::now();
    raw.send(&raw.request("INVITE", "cancelme", 1, "", OFFER))
        .await;
    let (code, _) = raw.recv().await;
    assert_eq!(code, 100);
    let ringing = raw.recv_status(180).await;
    let latency = sent.elapsed();
    assert!(latency < Duration::from_secs(1), "180 after {latency:?}");
    eprintln!("inbound INVITE -> 180: {latency:?}");
    assert!(ringing.contains("Contact:"), "{ringing}");
    let call = match next_event(&mut events, Duration::from_secs(2)).await {
        Event::Incoming {
            call, from, offer, ..
        } => {
            assert_eq!(from, "+15550009999");
            assert_eq!(offer.unwrap().port, 5004);
            call
        }
        other => panic!("{other:?}"),
    };
    raw.send(&raw.request("CANCEL", "cancelme", 1, "", ""))
        .await;
    let mut got = Vec::new();
    while got.len() < 2 {
        let (code, text) = raw.recv().await;
        if code >= 200 {
            got.push((code, text));
        }
    }
    got.sort_by_key(|(c, _)| *c);
    assert_eq!(got[0].0, 200);
    assert!(got[0].1.contains("CANCEL"));
    assert_eq!(got[1].0, 487);
    match next_event(&mut events, Duration::from_secs(2)).await {
        Event::Ended { call: c, reason } => {
            assert_eq!(c, call);
            assert_eq!(reason, EndReason::RemoteCancel);
        }
        other => panic!("{other:?}"),
    }
    ua.shutdown();
}

/// The other leg is busy: reject with 486; answering afterwards is refused.
#[tokio::test]
async fn inbound_reject_486() {
    let (ua, mut events) = ua().await;
    let raw = Raw::new(ua.local_addr()).await;
    raw.send(&raw.request("INVITE", "busy1", 1, "", OFFER))
        .await;
    let Event::Incoming { call, .. } = next_event(&mut events, Duration::from_secs(2)).await else {
        panic!("expected Incoming");
    };
    ua.reject(&call, 486).unwrap();
    raw.recv_status(486).await;
    let media = LocalMedia::new("127.0.0.1".parse().unwrap(), 4000, 1);
    assert!(matches!(
        ua.answer(&call, media),
        Err(sip::Error::ApiMisuse(_))
    ));
    assert!(matches!(
        ua.reject(&call, 100),
        Err(sip::Error::ApiMisuse(_))
    ));
    ua.shutdown();
}

/// Answer, then the caller sends BYE; then a call we hang up ourselves.
#[tokio::test]
async fn inbound_answer_then_bye_both_ways() {
    let (ua, mut events) = ua().await;
    let raw = Raw::new(ua.local_addr()).await;
    raw.send(&raw.request("INVITE", "talk1", 1, "", OFFER))
        .await;
    let Event::Incoming { call, .. } = next_event(&mut events, Duration::from_secs(2)).await else {
        panic!("expected Incoming");
    };
    let media = LocalMedia::new("127.0.0.1".parse().unwrap(), 4000, 1);
    let n = ua.answer(&call, media.clone()).unwrap().unwrap();
    assert_eq!(n.codec, Codec::Pcmu);
    assert_eq!(n.telephone_event_pt, Some(101));
    let ok = raw.recv_status(200).await;
    assert!(ok.contains("m=audio 4000 RTP/AVP 0 101"), "{ok}");
    let tag = to_tag_of(&ok);
    raw.send(&raw.request("ACK", "talk1", 1, &tag, "")).await;
    raw.send(&raw.request("BYE", "talk1", 2, &tag, "")).await;
    raw.recv_status(200).await;
    match next_event(&mut events, Duration::from_secs(2)).await {
        Event::Ended { reason, .. } => assert_eq!(reason, EndReason::RemoteHangup),
        other => panic!("{other:?}"),
    }

    raw.send(&raw.request("INVITE", "talk2", 1, "", OFFER))
        .await;
    let Event::Incoming { call, .. } = next_event(&mut events, Duration::from_secs(2)).await else {
        panic!("expected Incoming");
    };
    ua.answer(&call, media).unwrap();
    let ok = raw.recv_status(200).await;
    let tag = to_tag_of(&ok);
    raw.send(&raw.request("ACK", "talk2", 1, &tag, "")).await;
    ua.hangup(&call).unwrap();
    // Our BYE arrives at the raw socket (the caller's Contact).
    let mut buf = vec![0u8; 4096];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), raw.sock.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let bye = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(bye.starts_with("BYE sip:raw@"), "{bye}");
    assert!(bye.contains("Call-ID: talk2"), "{bye}");
    // Answer it: copy Via/From/To/Call-ID/CSeq.
    let resp = ok_response(&bye);
    raw.sock.send_to(resp.as_bytes(), from).await.unwrap();
    match next_event(&mut events, Duration::from_secs(5)).await {
        Event::Ended { reason, .. } => assert_eq!(reason, EndReason::LocalHangup),
        other => panic!("{other:?}"),
    }
    ua.shutdown();
}

/// 1,000 malformed datagrams (truncated and mutated requests, binary noise,
/// header-less lines, huge values) leave the UA serving: an OPTIONS and an
/// INVITE afterwards are answered normally.
#[tokio::test]
async fn malformed_flood_leaves_ua_serving() {
    let (ua, mut events) = ua().await;
    let raw = Raw::new(ua.local_addr()).await;
    let good = raw.request("INVITE", "flood", 1, "", OFFER);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let fixed: Vec<Vec<u8>> = vec![
        b"INVITE\r\n\r\n".to_vec(),
        b"INVITE sip:x SIP/2.0\r\n\r\n".to_vec(),
        b"SIP/2.0 200 OK\r\n\r\n".to_vec(),
        b"FOO sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9\r\n\r\n".to_vec(),
        good.replace("CSeq: 1 INVITE", "CSeq: x INVITE")
            .into_bytes(),
        good.replace("Content-Length: ", "Content-Length: 99999")
            .into_bytes(),
        good.replace("Via: ", "Via: garbage ").into_bytes(),
        good.replace("\r\n", "\n").into_bytes(),
        format!(
            "OPTIONS sip:x SIP/2.0\r\nVia: {}\r\n\r\n",
            "a".repeat(60000)
        )
        .into_bytes(),
        vec![0u8; 1500],
        vec![0xff; 10],
    ];
    for i in 0..1000u32 {
        let mut d = if (i as usize) < fixed.len() {
            fixed[i as usize].clone()
        } else {
            let mut d = good.clone().into_bytes();
            match next() % 3 {
                0 => d.truncate((next() as usize) % d.len()),
                1 => {
                    for _ in 0..(1 + next() % 8) {
                        let at = (next() as usize) % d.len();
                        d[at] = next() as u8;
                    }
                }
                _ => {
                    let at = (next() as usize) % d.len();
                    d.splice(at..at, std::iter::repeat_n(b':', (next() % 50) as usize));
                }
            }
            d
        };
        if d.is_empty() {
            d.push(b'x');
        }
        raw.sock.send_to(&d, raw.ua).await.unwrap();
    }
    // Drain whatever the mutations provoked, then check the UA still serves.
    let mut buf = vec![0u8; 65535];
    while tokio::time::timeout(Duration::from_millis(300), raw.sock.recv_from(&mut buf))
        .await
        .is_ok()
    {}
    while events.try_recv().is_ok() {}
    // The screen counted what reached it (the kernel may drop some of a
    // burst): some answered with 400 (up to the per-source rate), the rest
    // passed on or dropped.
    let stats = ua.wire_stats();
    let seen = stats.passed + stats.bad_request + stats.not_implemented + stats.dropped;
    assert!((500..=1000).contains(&seen), "{stats:?}");
    assert!(stats.bad_request > 0 && stats.dropped > 0, "{stats:?}");
    eprintln!("flood: {stats:?}");
    let fresh = Raw::new(ua.local_addr()).await;
    fresh
        .send(&fresh.request("OPTIONS", "after-flood", 1, "", ""))
        .await;
    fresh.recv_status(200).await;
    fresh
        .send(&fresh.request("INVITE", "after-flood-call", 1, "", OFFER))
        .await;
    fresh.recv_status(180).await;
    let e = wait_for(&mut events, Duration::from_secs(2), |e| {
        matches!(e, Event::Incoming { .. })
    })
    .await;
    let Event::Incoming { call, .. } = e else {
        unreachable!()
    };
    assert_eq!(call.as_str(), "after-flood-call");
    ua.shutdown();
}

/// As refreshee of a session timer (RFC 4028): our 200 carries
/// `Session-Expires;refresher=uac` and `Require: timer`; when the caller never
/// refreshes, we send BYE at expiry and report a time-out.
#[tokio::test]
async fn session_timer_expiry_without_refresh_sends_bye() {
    let (ua, mut events) = ua().await;
    let raw = Raw::new(ua.local_addr()).await;
    let invite = raw.request("INVITE", "st1", 1, "", OFFER).replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nSession-Expires: 1;refresher=uac\r\nSupported: timer\r\n",
    );
    raw.send(&invite).await;
    let Event::Incoming { call, .. } = next_event(&mut events, Duration::from_secs(2)).await else {
        panic!("expected Incoming");
    };
    ua.answer(
        &call,
        LocalMedia::new("127.0.0.1".parse().unwrap(), 4000, 1),
    )
    .unwrap();
    let ok = raw.recv_status(200).await;
    assert!(ok.contains("Session-Expires: 1;refresher=uac"), "{ok}");
    assert!(ok.contains("Require: timer"), "{ok}");
    let tag = to_tag_of(&ok);
    raw.send(&raw.request("ACK", "st1", 1, &tag, "")).await;
    let answered = Instant::now();
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(4), raw.sock.recv_from(&mut buf))
        .await
        .expect("no BYE at session expiry")
        .unwrap();
    let bye = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(bye.starts_with("BYE "), "{bye}");
    assert!(answered.elapsed() >= Duration::from_millis(900));
    let ended = wait_for(&mut events, Duration::from_secs(2), |e| {
        matches!(e, Event::Ended { .. })
    })
    .await;
    assert!(
        matches!(
            ended,
            Event::Ended {
                reason: EndReason::Failed(sip::Error::TimedOut(_)),
                ..
            }
        ),
        "{ended:?}"
    );
    ua.shutdown();
}

/// A source sending faster than the limit gets 503 with Retry-After; the
/// burst allowance is served.
#[tokio::test]
async fn per_source_rate_limit_503() {
    init_tracing();
    let mut config = loopback_config(5060);
    config.rate_limit(20);
    let (ua, _events) = UserAgent::start(config).await.unwrap();
    let raw = Raw::new(ua.local_addr()).await;
    for i in 0..60 {
        raw.send(&raw.request("OPTIONS", &format!("rl{i}"), 1, "", ""))
            .await;
    }
    let (mut ok, mut limited) = (0, 0);
    for _ in 0..60 {
        let (code, text) = raw.recv().await;
        match code {
            200 => ok += 1,
            503 => {
                assert!(text.contains("Retry-After: 5"), "{text}");
                limited += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(ok >= 20, "burst served: {ok}");
    assert!(limited >= 20, "limited: {limited}");
    ua.shutdown();
}

/// The OPTIONS ping marks a trunk up when it answers and down when it stops
/// answering (Timer F, 64×T1; T1 shortened to 10 ms here).
#[tokio::test]
async fn options_ping_marks_trunk_up_then_down() {
    init_tracing();
    let trunk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut config = loopback_config(trunk.local_addr().unwrap().port());
    config
        .t1(Duration::from_millis(10))
        .trunk_mut("peer")
        .unwrap()
        .options_ping(Some(Duration::from_millis(100)));
    let (ua, mut events) = UserAgent::start(config).await.unwrap();
    // Answer the first ping like a trunk would.
    let mut buf = vec![0u8; 4096];
    let (n, from) = tokio::time::timeout(Duration::from_secs(2), trunk.recv_from(&mut buf))
        .await
        .expect("no OPTIONS ping")
        .unwrap();
    let ping = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(ping.starts_with("OPTIONS sip:127.0.0.1:"), "{ping}");
    let resp = ok_response(&ping);
    trunk.send_to(resp.as_bytes(), from).await.unwrap();
    let up = next_event(&mut events, Duration::from_secs(2)).await;
    assert!(matches!(up, Event::TrunkStatus { up: true, .. }), "{up:?}");
    // Now stay silent: the next ping times out.
    let down = next_event(&mut events, Duration::from_secs(5)).await;
    assert!(
        matches!(down, Event::TrunkStatus { up: false, .. }),
        "{down:?}"
    );
    ua.shutdown();
}

/// A late-offer INVITE (no SDP): our 200 carries the offer, the caller's ACK
/// the answer, reported as a media update.
#[tokio::test]
async fn inbound_late_offer_answer_in_ack() {
    let (ua, mut events) = ua().await;
    let raw = Raw::new(ua.local_addr()).await;
    raw.send(&raw.request("INVITE", "late1", 1, "", "")).await;
    let call = match next_event(&mut events, Duration::from_secs(2)).await {
        Event::Incoming { call, offer, .. } => {
            assert!(offer.is_none());
            call
        }
        other => panic!("{other:?}"),
    };
    let media = LocalMedia::new("127.0.0.1".parse().unwrap(), 4010, 1);
    assert_eq!(ua.answer(&call, media).unwrap(), None);
    let ok = raw.recv_status(200).await;
    assert!(ok.contains("m=audio 4010 RTP/AVP 0 8 101"), "{ok}");
    let tag = to_tag_of(&ok);
    let answer = OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 8 101");
    raw.send(&raw.request("ACK", "late1", 1, &tag, &answer))
        .await;
    match next_event(&mut events, Duration::from_secs(2)).await {
        Event::MediaUpdate { call: c, remote } => {
            assert_eq!(c, call);
            assert_eq!(
                remote.choose(&[Codec::Pcmu, Codec::Pcma]),
                Some((Codec::Pcma, 8))
            );
        }
        other => panic!("{other:?}"),
    }
    ua.shutdown();
}

/// Bad input on the wire: a request with a broken header gets 400 with a
/// `Warning`, an unknown method 501 with `Allow`, garbage is dropped and
/// counted; then an ordinary call still comes in.
#[tokio::test]
async fn malformed_400_unknown_method_501_then_call() {
    let (ua, mut events) = ua().await;
    let raw = Raw::new(ua.local_addr()).await;
    let good = raw.request("INVITE", "bad1", 1, "", OFFER);
    raw.send(&good.replace("CSeq: 1 INVITE", "CSeq: one INVITE"))
        .await;
    let resp = raw.recv_status(400).await;
    assert!(
        resp.contains("\r\nWarning: 399 ") && resp.contains("Malformed CSeq header"),
        "{resp}"
    );
    assert!(resp.contains("Call-ID: bad1\r\n"), "{resp}");
    assert!(resp.contains("CSeq: one INVITE\r\n"), "{resp}");
    let me = raw.sock.local_addr().unwrap();
    assert!(
        resp.contains(&format!("received=127.0.0.1;rport={}", me.port())),
        "{resp}"
    );
    raw.send(&good.replace("Max-Forwards: 70", "Max-Forwards: seventy"))
        .await;
    let resp = raw.recv_status(400).await;
    assert!(resp.contains("Malformed Max-Forwards header"), "{resp}");
    let foo = raw.request("FOO", "foo1", 1, "", "");
    raw.send(&foo).await;
    let resp = raw.recv_status(501).await;
    assert!(
        resp.starts_with("SIP/2.0 501 Not Implemented\r\n"),
        "{resp}"
    );
    assert!(
        resp.contains("\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS"),
        "{resp}"
    );
    assert!(resp.contains("CSeq: 1 FOO\r\n"), "{resp}");
    raw.send("complete garbage\r\n\r\n").await;
    let stats = ua.wire_stats();
    // The garbage is dropped before anything else is read from the socket.
    raw.send(&raw.request("INVITE", "good1", 1, "", OFFER))
        .await;
    raw.recv_status(180).await;
    let e = wait_for(&mut events, Duration::from_secs(2), |e| {
        matches!(e, Event::Incoming { .. })
    })
    .await;
    let Event::Incoming { call, .. } = e else {
        unreachable!()
    };
    assert_eq!(call.as_str(), "good1");
    let stats_after = ua.wire_stats();
    assert_eq!(stats.bad_request, 2, "{stats:?}");
    assert_eq!(stats.not_implemented, 1, "{stats:?}");
    assert_eq!(stats_after.dropped, 1, "{stats_after:?}");
    ua.answer(
        &call,
        LocalMedia::new("127.0.0.1".parse().unwrap(), 30000, 1),
    )
    .unwrap();
    raw.recv_status(200).await;
    ua.shutdown();
}
