//! [`UserAgent::reject_with`]: the extra header fields reach the wire, and the ones
//! it must refuse are refused before anything is sent.

use std::time::Duration;

use tokio::net::UdpSocket;

use super::check_extra_headers;
use crate::{Config, Error, Event, IpNet, TrunkConfig, UserAgent};

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n";

#[test]
fn extra_headers_are_checked() {
    assert!(check_extra_headers(&[("Retry-After", "30"), ("Warning", "399 x \"y\"")]).is_ok());
    for bad in [
        ("", "1"),
        ("Retry After", "1"),
        ("Retry-After:", "1"),
        ("Via", "SIP/2.0/UDP x"),
        ("call-id", "x"),
        ("CSeq", "1 INVITE"),
        ("l", "0"),
        ("Retry-After", "30\r\nVia: SIP/2.0/UDP evil"),
    ] {
        assert!(
            matches!(check_extra_headers(&[bad]), Err(Error::ApiMisuse(_))),
            "{bad:?} accepted"
        );
    }
}

/// A raw UDP peer sends an INVITE; the 503 it gets carries `Retry-After`.
#[tokio::test]
async fn reject_with_sends_the_extra_headers() {
    let mut config = Config::default();
    config.bind("127.0.0.1:0".parse().unwrap()).trunk(
        TrunkConfig::new("peer", "127.0.0.1")
            .port(Some(5060))
            .allowed_sources(vec![IpNet::parse("127.0.0.0/8").unwrap()])
            .clone(),
    );
    let (ua, mut events) = UserAgent::start(config).await.unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    let invite = format!(
        "INVITE sip:+15551234567@{ua} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKrw1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:+15550009999@{me}>;tag=raw1\r\nTo: <sip:+15551234567@{ua}>\r\n\
         Call-ID: rw1\r\nCSeq: 1 INVITE\r\nContact: <sip:raw@{me}>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{OFFER}",
        OFFER.len(),
        ua = ua.local_addr(),
    );
    sock.send_to(invite.as_bytes(), ua.local_addr())
        .await
        .unwrap();
    let call = loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an event within 5 s")
            .expect("the user agent runs");
        if let Event::Incoming { call, .. } = event {
            break call;
        }
    };
    assert!(matches!(
        ua.reject_with(&call, 503, &[("To", "x")]),
        Err(Error::ApiMisuse(_))
    ));
    ua.reject_with(&call, 503, &[("Retry-After", "30")])
        .unwrap();
    let mut buf = vec![0u8; 65535];
    let response = loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .expect("a response within 5 s")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("SIP/2.0 503") {
            break text;
        }
        assert!(text.starts_with("SIP/2.0 1"), "unexpected:\n{text}");
    };
    assert!(
        response.lines().any(|l| l.trim_end() == "Retry-After: 30"),
        "{response}"
    );
    ua.shutdown();
}
