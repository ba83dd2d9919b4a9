//! Bodies of the `sdp`, `sip_digest` and `sip_message` targets (public API of `jsg-sip`;
//! the SIP message parser is rsipstack's, which jsg-sip uses but does not re-export).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::{Result, Unstructured};
use sip::digest::{self, Authenticator, Challenge, ChallengeKind, Credentials};
use sip::sdp::{Codec, Direction, LocalMedia, RemoteMedia, SdesKey};

const ALL_CODECS: [Codec; 4] = [Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus];

/// A trunk's INVITE body (SIPp), seed for the smoke tests.
pub const SDP_OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/SAVP 8 0 9 111 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\na=sendrecv\r\n";

/// A `WWW-Authenticate` value with two digest challenges (RFC 7616 §3.9.1), seed.
pub const CHALLENGE: &str = "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-256, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\", Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=MD5, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\", stale=TRUE";

/// A SIP INVITE, seed for the smoke tests.
pub const INVITE: &str = "INVITE sip:+15551234567@trunk.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK776asdhds\r\nMax-Forwards: 70\r\nTo: <sip:+15551234567@trunk.example.com>\r\nFrom: \"Alice\" <sip:alice@127.0.0.1>;tag=1928301774\r\nCall-ID: a84b4c76e66710@127.0.0.1\r\nCSeq: 314159 INVITE\r\nContact: <sip:alice@127.0.0.1:5060>\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n";

fn direction(u: &mut Unstructured<'_>) -> Result<Direction> {
    Ok(*u.choose(&[
        Direction::SendRecv,
        Direction::SendOnly,
        Direction::RecvOnly,
        Direction::Inactive,
    ])?)
}

/// Builds one of our own media descriptions from fuzz bytes.
pub fn local_media(u: &mut Unstructured<'_>) -> Result<LocalMedia> {
    let address = if u.arbitrary()? {
        IpAddr::V4(Ipv4Addr::from(u.arbitrary::<u32>()?))
    } else {
        IpAddr::V6(Ipv6Addr::from(u.arbitrary::<u128>()?))
    };
    let port = u.int_in_range(1..=65535)?;
    let mut m = LocalMedia::new(address, port, u.arbitrary()?);
    let mut codecs = ALL_CODECS.to_vec();
    // A non-empty subset in any order.
    let n = u.int_in_range(1..=codecs.len())?;
    let mut chosen = Vec::with_capacity(n);
    for _ in 0..n {
        let i = u.choose_index(codecs.len())?;
        chosen.push(codecs.remove(i));
    }
    m.codecs = chosen;
    m.telephone_event_pt = match u.int_in_range(96..=127)? {
        111 => 101,
        pt => pt,
    };
    m.direction = direction(u)?;
    m.session_version = u.arbitrary()?;
    if u.arbitrary()? {
        let suite = *u.choose(&["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"])?;
        m.srtp = Some(SdesKey {
            tag: u.int_in_range(1..=999_999_999)?,
            suite: suite.to_owned(),
            key_salt: u.bytes(30)?.to_vec(),
        });
    }
    Ok(m)
}

/// Checks that our offer reparses to what we meant.
pub fn offer_round_trip(m: &LocalMedia) {
    let sdp = m.offer();
    let r =
        RemoteMedia::parse(&sdp).unwrap_or_else(|e| panic!("our offer does not parse: {e}\n{sdp}"));
    assert_eq!(r.address, m.address, "{sdp}");
    assert_eq!(r.port, m.port, "{sdp}");
    let proto = if m.srtp.is_some() {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    };
    assert_eq!(r.protocol, proto, "{sdp}");
    assert_eq!(r.telephone_event_pt, Some(m.telephone_event_pt), "{sdp}");
    let expected_dir = if m.address.is_unspecified() {
        Direction::Inactive
    } else {
        m.direction
    };
    assert_eq!(r.direction, expected_dir, "{sdp}");
    assert_eq!(r.origin, (m.session_id, m.session_version), "{sdp}");
    assert_eq!(r.ptime, Some(20), "{sdp}");
    assert_eq!(
        r.crypto,
        m.srtp.iter().cloned().collect::<Vec<_>>(),
        "{sdp}"
    );
    let pts: Vec<u8> = r
        .payload_types
        .iter()
        .map(|p| p.pt)
        .filter(|pt| *pt != m.telephone_event_pt)
        .collect();
    let ours: Vec<u8> = m.codecs.iter().map(|c| c.default_payload_type()).collect();
    assert_eq!(pts, ours, "{sdp}");
    for c in &m.codecs {
        assert_eq!(
            r.choose(&[*c]),
            Some((*c, c.default_payload_type())),
            "{sdp}"
        );
    }
}

/// `sdp` target: `data` as an SDP body ([`RemoteMedia::parse`], `choose`, `is_hold`, and
/// our answer to it, which must reparse to the negotiated codec), then `data` as the
/// description of one of our own offers, which must round-trip.
pub fn sdp(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(r) = RemoteMedia::parse(text) {
            let _ = r.is_hold();
            for c in ALL_CODECS {
                if let Some((chosen, pt)) = r.choose(&[c]) {
                    assert_eq!(chosen, c);
                    assert!(r.payload_types.iter().any(|p| p.pt == pt));
                }
            }
            let mut ours = LocalMedia::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 40000, 7);
            ours.codecs = ALL_CODECS.to_vec();
            match ours.answer(&r) {
                Ok((answer, neg)) => {
                    assert_eq!(r.choose(&ours.codecs), Some((neg.codec, neg.payload_type)));
                    let back = RemoteMedia::parse(&answer)
                        .unwrap_or_else(|e| panic!("our answer does not parse: {e}\n{answer}"));
                    assert_eq!(
                        back.choose(&[neg.codec]),
                        Some((neg.codec, neg.payload_type)),
                        "{answer}"
                    );
                    assert_eq!(back.telephone_event_pt, neg.telephone_event_pt, "{answer}");
                    assert_eq!(back.port, 40000);
                }
                Err(_) => assert_eq!(r.choose(&ours.codecs), None),
            }
        }
    }
    let mut u = Unstructured::new(data);
    if let Ok(m) = local_media(&mut u) {
        offer_round_trip(&m);
    }
}

/// `sip_digest` target: `data` as a `WWW-Authenticate` value through
/// [`digest::parse_challenges`], [`Challenge::pick`], [`Challenge::respond`] and the
/// [`Authenticator`] retry policy. Our answer, read back as a challenge, must carry the
/// same realm, nonce, opaque, algorithm, qop and userhash.
pub fn sip_digest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(challenges) = digest::parse_challenges(text) else {
        return;
    };
    let creds = Credentials {
        username: "+15551234567".into(),
        password: "secret".into(),
    };
    let uri = "sip:+15557654321@trunk.example.com";
    for c in &challenges {
        match c.respond(&creds, "INVITE", uri, "0a4f113b", 1) {
            Ok(value) => {
                assert!(value.starts_with("Digest "), "{value}");
                let back = digest::parse_challenges(&value)
                    .unwrap_or_else(|e| panic!("our credentials do not parse ({e}): {value}"));
                assert_eq!(back.len(), 1, "{value}");
                let b = &back[0];
                assert_eq!(b.realm, c.realm, "{value}");
                assert_eq!(b.nonce, c.nonce, "{value}");
                assert_eq!(b.opaque, c.opaque, "{value}");
                assert_eq!(b.algorithm, c.algorithm, "{value}");
                assert_eq!(b.userhash, c.userhash, "{value}");
                let qop: Vec<String> = if c.qop.is_empty() {
                    Vec::new()
                } else {
                    vec!["auth".to_owned()]
                };
                assert_eq!(b.qop, qop, "{value}");
            }
            Err(_) => assert!(
                c.algorithm.is_none() || !c.qop.iter().any(|q| q == "auth") && !c.qop.is_empty()
            ),
        }
    }
    let picked = Challenge::pick(&challenges);
    let mut auth = Authenticator::new();
    let first = auth.answer(
        ChallengeKind::Www,
        &challenges,
        &creds,
        "REGISTER",
        uri,
        "c1",
    );
    match picked {
        Some(p) => {
            let (header, _) = first.expect("a picked challenge is answered");
            assert_eq!(header, "Authorization");
            let second = auth.answer(
                ChallengeKind::Proxy,
                &challenges,
                &creds,
                "REGISTER",
                uri,
                "c2",
            );
            if p.stale {
                assert_eq!(second.expect("one stale retry").0, "Proxy-Authorization");
            } else {
                assert!(
                    matches!(second, Err(sip::Error::AuthRejected { .. })),
                    "{second:?}"
                );
            }
            let third = auth.answer(
                ChallengeKind::Www,
                &challenges,
                &creds,
                "REGISTER",
                uri,
                "c3",
            );
            assert!(
                matches!(third, Err(sip::Error::AuthRejected { .. })),
                "{third:?}"
            );
        }
        None => assert!(first.is_err()),
    }
}

/// `sip_message` target: rsipstack's parser (`SipMessage::try_from(&[u8])`, what
/// jsg-sip's transport calls). A parsed message, serialized, must parse again to the same
/// kind of message with the same method or status, version, number of headers and body.
///
/// Not asserted: byte-identical re-serialization. rsipstack 0.7.14 percent-encodes URI
/// user parts on output but does not decode them on input, so every parse/serialize
/// cycle adds a layer (`"` → `%22` → `%2522`); see `fuzz/README.md`.
pub fn sip_message(data: &[u8]) {
    use rsipstack::sip::SipMessage;
    let Ok(m) = SipMessage::try_from(data) else {
        return;
    };
    let _ = m.start_line();
    let bytes = m.to_bytes();
    let back = SipMessage::try_from(bytes.as_slice()).unwrap_or_else(|e| {
        panic!(
            "serialized message does not reparse ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    let shown = || String::from_utf8_lossy(&bytes).into_owned();
    match (&m, &back) {
        (SipMessage::Request(a), SipMessage::Request(b)) => {
            assert_eq!(a.method, b.method, "{}", shown());
            assert_eq!(a.version.to_string(), b.version.to_string(), "{}", shown());
            assert_eq!(a.headers.len(), b.headers.len(), "{}", shown());
            assert_eq!(a.body, b.body, "{}", shown());
        }
        (SipMessage::Response(a), SipMessage::Response(b)) => {
            assert_eq!(a.status_code, b.status_code, "{}", shown());
            assert_eq!(a.version.to_string(), b.version.to_string(), "{}", shown());
            assert_eq!(a.headers.len(), b.headers.len(), "{}", shown());
            assert_eq!(a.body, b.body, "{}", shown());
        }
        _ => panic!("request/response changed kind: {}", shown()),
    }
}

/// The strict form of [`sip_message`]: serialization is a fixed point after one cycle.
/// Returns the two serializations when it is not (rsipstack 0.7.14 fails it, see
/// [`sip_message`]); `None` when `data` does not parse or the property holds.
pub fn sip_message_reserialization(data: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    use rsipstack::sip::SipMessage;
    let first = SipMessage::try_from(data).ok()?.to_bytes();
    let second = SipMessage::try_from(first.as_slice()).ok()?.to_bytes();
    (first != second).then_some((first, second))
}
