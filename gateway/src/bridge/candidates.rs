//! ICE candidates between their Jingle form
//! ([XEP-0176 §5.3](https://xmpp.org/extensions/xep-0176.html#protocol-syntax)) and the
//! ICE agent's ([RFC 8445 §5.1](https://www.rfc-editor.org/rfc/rfc8445#section-5.1)).

use std::net::{IpAddr, SocketAddr};

use ice::{CandidateKind, COMPONENT_RTP};
use xmpp::jingle::{Candidate, CandidateType};

/// The ICE agent's form of a client's candidate, if the gateway can use it: component 1
/// (RTP; rtcp-mux only, so Dino's component 2 is dropped), UDP (TCP candidates from
/// browsers are dropped), an IP literal (mDNS `.local` names are dropped) and a known
/// type (Gajim 1.x `multicast` is dropped).
pub fn ice_candidate(c: &Candidate) -> Option<ice::Candidate> {
    if !c.is_usable_rtp_udp() {
        return None;
    }
    let addr = c.addr()?;
    let kind = match c.kind {
        CandidateType::Host => CandidateKind::Host,
        CandidateType::Srflx => CandidateKind::ServerReflexive,
        CandidateType::Prflx => CandidateKind::PeerReflexive,
        CandidateType::Relay => CandidateKind::Relayed,
        _ => return None,
    };
    let related = match (&c.rel_addr, c.rel_port) {
        (Some(ip), Some(port)) => ip
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, port)),
        _ => None,
    };
    Some(ice::Candidate {
        foundation: c.foundation.clone(),
        component: COMPONENT_RTP,
        priority: c.priority,
        addr,
        kind,
        base: addr,
        related,
    })
}

/// The Jingle form of one of our candidates, with `id` (unique within the session,
/// e.g. `g1`), generation 0 and network 0 (INTEROP.md E.2 step 6).
pub fn jingle_candidate(c: &ice::Candidate, id: &str) -> Candidate {
    let kind = match c.kind {
        CandidateKind::Host => CandidateType::Host,
        CandidateKind::ServerReflexive => CandidateType::Srflx,
        CandidateKind::PeerReflexive => CandidateType::Prflx,
        _ => CandidateType::Relay,
    };
    Candidate {
        component: u8::try_from(c.component).unwrap_or(1),
        foundation: c.foundation.clone(),
        generation: 0,
        id: Some(id.to_owned()),
        ip: c.addr.ip().to_string(),
        port: c.addr.port(),
        priority: c.priority,
        protocol: "udp".to_owned(),
        kind,
        rel_addr: c.related.map(|r| r.ip().to_string()),
        rel_port: c.related.map(|r| r.port()),
        network: Some(0),
        tcptype: None,
    }
}

/// Our candidates in Jingle form, with ids `g1`, `g2`, …
pub(super) fn jingle_candidates(ours: &[ice::Candidate]) -> Vec<Candidate> {
    ours.iter()
        .enumerate()
        .map(|(i, c)| jingle_candidate(c, &format!("g{}", i + 1)))
        .collect()
}
