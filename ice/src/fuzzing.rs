//! Internal hooks for the fuzz targets in `fuzz/` (feature `_fuzz`; not a stable API).

use std::net::SocketAddr;

use crate::stun::{self, Class, Request};

/// Parses `data` as STUN; if it parses, re-encodes what the agent understood and checks
/// that the re-encoded message decodes to the same fields (round trip), and that a
/// success and an error response to it decode again.
///
/// # Panics
/// When a round trip differs: that is the bug the fuzzer looks for.
pub fn stun_round_trip(data: &[u8]) {
    let _ = crate::request_ufrag(data);
    let Ok(d) = stun::decode(data) else {
        return;
    };
    let _ = d.integrity_ok("password");
    let user = d.username.clone();
    let req = Request {
        txid: d.txid,
        auth: user.as_ref().map(|u| (u.clone(), "password")),
        priority: d.priority,
        use_candidate: d.use_candidate,
        role: d
            .controlling
            .map(|t| (true, t))
            .or(d.controlled.map(|t| (false, t))),
        nomination: d.nomination,
    };
    let bytes = stun::encode_request(&req);
    let again = stun::decode(&bytes).expect("our own encoding parses");
    assert_eq!(again.class, Class::Request);
    assert_eq!(again.txid, d.txid);
    assert_eq!(again.priority, d.priority);
    assert_eq!(again.use_candidate, d.use_candidate);
    assert_eq!(again.nomination, d.nomination);
    if user.as_ref().is_some_and(|u| u.len() <= 500) {
        assert_eq!(again.username, user);
        assert!(again.integrity_ok("password"));
    }
    if d.class == Class::Request {
        let mapped: SocketAddr = "[2001:db8::1]:9".parse().expect("addr");
        let ok = stun::encode_success(&d, mapped, "pw");
        let ok = stun::decode(&ok).expect("success parses");
        assert_eq!(ok.xor_mapped, Some(mapped));
        assert_eq!(ok.txid, d.txid);
        let err = stun::encode_error(&d, 420, &d.unknown_required, Some("pw"));
        let err = stun::decode(&err).expect("error parses");
        assert_eq!(err.error_code, Some(420));
    }
}

/// A Binding request to an agent whose local credentials are `(ufrag, pwd)`.
#[allow(clippy::too_many_arguments)]
pub fn request(
    txid: u128,
    ufrag: &str,
    pwd: &str,
    good_integrity: bool,
    priority: Option<u32>,
    use_candidate: bool,
    controlling: Option<(bool, u64)>,
    nomination: Option<u32>,
    extra: &[(u16, Vec<u8>)],
) -> Vec<u8> {
    let user = format!("{ufrag}:fuzzpeer");
    let pw = if good_integrity {
        pwd
    } else {
        "wrong-password-wrong-password"
    };
    stun::encode_request_with(
        &Request {
            txid: txid & ((1 << 96) - 1),
            auth: Some((user, pw)),
            priority,
            use_candidate,
            role: controlling,
            nomination,
        },
        extra,
    )
}

/// A response to `request` (bytes the agent sent): success with `mapped`, or an error
/// with `code`, signed with `pwd`.
pub fn respond(
    request: &[u8],
    code: Option<u16>,
    mapped: SocketAddr,
    pwd: &str,
) -> Option<Vec<u8>> {
    let d = stun::decode(request).ok()?;
    if d.class != Class::Request {
        return None;
    }
    Some(match code {
        None => stun::encode_success(&d, mapped, pwd),
        Some(c) => stun::encode_error(&d, c, &[], Some(pwd)),
    })
}
