//! STUN Binding messages for ICE on top of `stun-types`
//! ([RFC 8489](https://www.rfc-editor.org/rfc/rfc8489), ICE attributes of
//! [RFC 8445 §16.1](https://www.rfc-editor.org/rfc/rfc8445#section-16.1)).
//!
//! `stun-types` 2 parses the message framing, verifies FINGERPRINT while parsing and
//! computes/verifies MESSAGE-INTEGRITY (SHA-1 and SHA-256). It has no ICE attributes,
//! so PRIORITY, USE-CANDIDATE, ICE-CONTROLLED, ICE-CONTROLLING and NOMINATION
//! (0xC001 of draft-thatcher-ice-renomination, 0x0030 of its successor) are read
//! and written here as raw attributes.

use std::net::SocketAddr;

use stun_types::attribute::{
    AttributeType, ErrorCode, RawAttribute, UnknownAttributes, Username, XorMappedAddress,
};
use stun_types::message::{
    IntegrityAlgorithm, Message, MessageClass, MessageIntegrityCredentials, MessageType,
    MessageWrite, MessageWriteExt, MessageWriteVec, ShortTermCredentials, StunParseError,
    TransactionId, BINDING,
};

use crate::error::PeerMisbehaved;
use crate::Error;

/// PRIORITY ([RFC 8445 §16.1](https://www.rfc-editor.org/rfc/rfc8445#section-16.1)).
pub const ATTR_PRIORITY: u16 = 0x0024;
/// USE-CANDIDATE.
pub const ATTR_USE_CANDIDATE: u16 = 0x0025;
/// ICE-CONTROLLED.
pub const ATTR_ICE_CONTROLLED: u16 = 0x8029;
/// ICE-CONTROLLING.
pub const ATTR_ICE_CONTROLLING: u16 = 0x802A;
/// NOMINATION as sent by libwebrtc (draft-thatcher-ice-renomination-01), comprehension-optional.
pub const ATTR_NOMINATION_LEGACY: u16 = 0xC001;
/// NOMINATION as assigned in later renomination drafts.
pub const ATTR_NOMINATION: u16 = 0x0030;

/// Comprehension-required attributes this agent understands in a Binding request.
const KNOWN_REQUIRED: &[u16] = &[
    0x0001, // MAPPED-ADDRESS
    0x0006, // USERNAME
    0x0008, // MESSAGE-INTEGRITY
    0x0009, // ERROR-CODE
    0x000A, // UNKNOWN-ATTRIBUTES
    0x0014, // REALM
    0x0015, // NONCE
    0x001C, // MESSAGE-INTEGRITY-SHA256
    0x001D, // PASSWORD-ALGORITHM
    0x001E, // USERHASH
    0x0020, // XOR-MAPPED-ADDRESS
    ATTR_PRIORITY,
    ATTR_USE_CANDIDATE,
    ATTR_NOMINATION,
];

/// The class of a decoded message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Request,
    Indication,
    Success,
    Error,
}

/// A decoded Binding message: the ICE-relevant attributes plus the raw message for
/// integrity checks.
#[derive(Debug)]
pub(crate) struct Decoded<'a> {
    msg: Message<'a>,
    pub(crate) class: Class,
    pub(crate) txid: u128,
    pub(crate) username: Option<String>,
    pub(crate) priority: Option<u32>,
    pub(crate) use_candidate: bool,
    pub(crate) controlling: Option<u64>,
    pub(crate) controlled: Option<u64>,
    pub(crate) nomination: Option<u32>,
    pub(crate) xor_mapped: Option<SocketAddr>,
    pub(crate) error_code: Option<u16>,
    pub(crate) has_integrity: bool,
    pub(crate) unknown_required: Vec<u16>,
}

fn raw_u32(msg: &Message<'_>, t: u16) -> Option<u32> {
    let a = msg.raw_attribute(AttributeType::new(t))?;
    let v: &[u8] = &a.value;
    (v.len() == 4).then(|| u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
}

fn raw_u64(msg: &Message<'_>, t: u16) -> Option<u64> {
    let a = msg.raw_attribute(AttributeType::new(t))?;
    let v: &[u8] = &a.value;
    let b: [u8; 8] = v.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// Cheap check: could `data` be a STUN message (RFC 7983 first byte 0..=3, magic cookie)?
pub fn looks_like_stun(data: &[u8]) -> bool {
    data.len() >= 20 && data[0] < 4 && data[4..8] == [0x21, 0x12, 0xA4, 0x42]
}

/// Decodes a Binding message. FINGERPRINT, if present, is verified.
///
/// # Errors
/// [`Error::Malformed`] for anything unparsable or a method other than Binding;
/// [`PeerMisbehaved::BadFingerprint`] for a FINGERPRINT mismatch.
pub(crate) fn decode(data: &[u8]) -> Result<Decoded<'_>, Error> {
    if !looks_like_stun(data) {
        return Err(Error::Malformed("not a STUN message".into()));
    }
    let msg = Message::from_bytes(data).map_err(|e| match e {
        StunParseError::FingerprintMismatch => {
            Error::PeerMisbehaved(PeerMisbehaved::BadFingerprint)
        }
        e => Error::Malformed(format!("stun: {e}")),
    })?;
    if msg.method() != BINDING {
        return Err(Error::Malformed(format!("stun method {}", msg.method())));
    }
    let class = match msg.class() {
        MessageClass::Request => Class::Request,
        MessageClass::Indication => Class::Indication,
        MessageClass::Success => Class::Success,
        MessageClass::Error => Class::Error,
    };
    let username = msg
        .attribute::<Username>()
        .ok()
        .map(|u| u.username().to_owned());
    let nomination = raw_u32(&msg, ATTR_NOMINATION_LEGACY)
        .or_else(|| raw_u32(&msg, ATTR_NOMINATION))
        .map(|v| v & 0x00FF_FFFF);
    let xor_mapped = msg
        .attribute::<XorMappedAddress>()
        .ok()
        .map(|x| x.addr(msg.transaction_id()));
    let error_code = msg.attribute::<ErrorCode>().ok().map(|e| e.code());
    let has_integrity = msg.has_attribute(AttributeType::new(0x0008))
        || msg.has_attribute(AttributeType::new(0x001C));
    let mut unknown_required = Vec::new();
    if class == Class::Request {
        for (_, a) in msg.iter_attributes() {
            let t = a.header.get_type().value();
            if t < 0x8000 && !KNOWN_REQUIRED.contains(&t) && !unknown_required.contains(&t) {
                unknown_required.push(t);
            }
        }
    }
    Ok(Decoded {
        class,
        txid: msg.transaction_id().into(),
        username,
        priority: raw_u32(&msg, ATTR_PRIORITY),
        use_candidate: msg.has_attribute(AttributeType::new(ATTR_USE_CANDIDATE)),
        controlling: raw_u64(&msg, ATTR_ICE_CONTROLLING),
        controlled: raw_u64(&msg, ATTR_ICE_CONTROLLED),
        nomination,
        xor_mapped,
        error_code,
        has_integrity,
        unknown_required,
        msg,
    })
}

impl Decoded<'_> {
    /// Whether MESSAGE-INTEGRITY(-SHA256) verifies with the short-term password `pwd`.
    pub(crate) fn integrity_ok(&self, pwd: &str) -> bool {
        let creds: MessageIntegrityCredentials = ShortTermCredentials::new(pwd.to_owned()).into();
        self.msg.validate_integrity(&creds).is_ok()
    }

    /// The integrity algorithm the peer used, to answer in kind.
    pub(crate) fn integrity_algorithm(&self) -> IntegrityAlgorithm {
        if self.msg.has_attribute(AttributeType::new(0x001C)) {
            IntegrityAlgorithm::Sha256
        } else {
            IntegrityAlgorithm::Sha1
        }
    }
}

/// What goes into an outgoing Binding request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Request<'a> {
    pub(crate) txid: u128,
    /// `(username, password)` for short-term credentials; `None` for a plain STUN
    /// server request.
    pub(crate) auth: Option<(String, &'a str)>,
    pub(crate) priority: Option<u32>,
    pub(crate) use_candidate: bool,
    /// `Some(true)` ICE-CONTROLLING, `Some(false)` ICE-CONTROLLED, with tie-breaker.
    pub(crate) role: Option<(bool, u64)>,
    pub(crate) nomination: Option<u32>,
}

fn finish_auth(mut w: MessageWriteVec, pwd: Option<&str>, algo: IntegrityAlgorithm) -> Vec<u8> {
    if let Some(pwd) = pwd {
        let creds: MessageIntegrityCredentials = ShortTermCredentials::new(pwd.to_owned()).into();
        w.add_message_integrity(&creds, algo)
            .expect("vec writer has room for integrity");
    }
    w.add_fingerprint()
        .expect("vec writer has room for fingerprint");
    w.finish()
}

/// Encodes a Binding request.
pub(crate) fn encode_request(r: &Request<'_>) -> Vec<u8> {
    encode_request_with(r, &[])
}

/// Encodes a Binding request with extra raw attributes `(type, value)` before the
/// integrity (tests and fuzzing use it to send NOMINATION 0x0030 or unknown attributes).
pub(crate) fn encode_request_with(r: &Request<'_>, extra: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mtype = MessageType::from_class_method(MessageClass::Request, BINDING);
    let mut w = Message::builder(
        mtype,
        TransactionId::from(r.txid),
        MessageWriteVec::with_capacity(128),
    );
    let add = |w: &mut MessageWriteVec, t: u16, v: &[u8]| {
        w.add_attribute(&RawAttribute::new(AttributeType::new(t), v))
            .expect("attribute fits");
    };
    if let Some((user, _)) = &r.auth {
        if let Ok(u) = Username::new(user) {
            w.add_attribute(&u).expect("attribute fits");
        }
    }
    if let Some(p) = r.priority {
        add(&mut w, ATTR_PRIORITY, &p.to_be_bytes());
    }
    if let Some((controlling, tb)) = r.role {
        let t = if controlling {
            ATTR_ICE_CONTROLLING
        } else {
            ATTR_ICE_CONTROLLED
        };
        add(&mut w, t, &tb.to_be_bytes());
    }
    if r.use_candidate {
        add(&mut w, ATTR_USE_CANDIDATE, &[]);
    }
    if let Some(n) = r.nomination {
        add(&mut w, ATTR_NOMINATION_LEGACY, &n.to_be_bytes());
    }
    for (t, v) in extra {
        // Integrity and fingerprint are only ever written by `finish_auth`.
        if !matches!(*t, 0x0008 | 0x001C | 0x8028) {
            add(&mut w, *t, v);
        }
    }
    finish_auth(w, r.auth.as_ref().map(|a| a.1), IntegrityAlgorithm::Sha1)
}

/// Encodes a Binding success response carrying XOR-MAPPED-ADDRESS, signed with `pwd`
/// using the same algorithm as the request.
pub(crate) fn encode_success(req: &Decoded<'_>, mapped: SocketAddr, pwd: &str) -> Vec<u8> {
    let mut w = Message::builder_success(&req.msg, MessageWriteVec::with_capacity(96));
    w.add_attribute(&XorMappedAddress::new(mapped, req.msg.transaction_id()))
        .expect("attribute fits");
    finish_auth(w, Some(pwd), req.integrity_algorithm())
}

/// Encodes a Binding error response ([RFC 8489 §6.3.4](https://www.rfc-editor.org/rfc/rfc8489#section-6.3.4)).
/// Responses to requests that failed authentication (400, 401) carry no integrity.
pub(crate) fn encode_error(
    req: &Decoded<'_>,
    code: u16,
    unknown: &[u16],
    pwd: Option<&str>,
) -> Vec<u8> {
    let mut w = Message::builder_error(&req.msg, MessageWriteVec::with_capacity(96));
    let reason = ErrorCode::default_reason_for_code(code);
    if let Ok(e) = ErrorCode::new(code, reason) {
        w.add_attribute(&e).expect("attribute fits");
    }
    if !unknown.is_empty() {
        let types: Vec<AttributeType> = unknown.iter().map(|t| AttributeType::new(*t)).collect();
        w.add_attribute(&UnknownAttributes::new(&types))
            .expect("attribute fits");
    }
    finish_auth(w, pwd, req.integrity_algorithm())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip_with_ice_attributes() {
        let bytes = encode_request(&Request {
            txid: 42,
            auth: Some(("abcd:efgh".into(), "passwordpasswordpassword")),
            priority: Some(1234),
            use_candidate: true,
            role: Some((true, 99)),
            nomination: Some(7),
        });
        let d = decode(&bytes).unwrap();
        assert_eq!(d.class, Class::Request);
        assert_eq!(d.txid, 42);
        assert_eq!(d.username.as_deref(), Some("abcd:efgh"));
        assert_eq!(d.priority, Some(1234));
        assert!(d.use_candidate);
        assert_eq!(d.controlling, Some(99));
        assert_eq!(d.nomination, Some(7));
        assert!(d.unknown_required.is_empty());
        assert!(d.integrity_ok("passwordpasswordpassword"));
        assert!(!d.integrity_ok("wrongpasswordwrongpassword"));
    }

    #[test]
    fn fingerprint_mismatch_is_reported() {
        let mut bytes = encode_request(&Request {
            txid: 1,
            ..Default::default()
        });
        let n = bytes.len();
        bytes[n - 1] ^= 1;
        assert_eq!(
            decode(&bytes).unwrap_err(),
            Error::PeerMisbehaved(PeerMisbehaved::BadFingerprint)
        );
    }

    #[test]
    fn success_and_error_responses() {
        let req_bytes = encode_request(&Request {
            txid: 5,
            auth: Some(("a:b".into(), "pw")),
            ..Default::default()
        });
        let req = decode(&req_bytes).unwrap();
        let addr: SocketAddr = "[::1]:5000".parse().unwrap();
        let ok = encode_success(&req, addr, "pw");
        let ok = decode(&ok).unwrap();
        assert_eq!(ok.class, Class::Success);
        assert_eq!(ok.xor_mapped, Some(addr));
        assert!(ok.integrity_ok("pw"));
        let err = encode_error(&req, 420, &[0x0042], None);
        let err = decode(&err).unwrap();
        assert_eq!(err.class, Class::Error);
        assert_eq!(err.error_code, Some(420));
        assert!(!err.has_integrity);
    }
}
