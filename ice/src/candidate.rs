//! ICE candidates ([RFC 8445 §5.1](https://www.rfc-editor.org/rfc/rfc8445#section-5.1)) and
//! their SDP `candidate` attribute form ([RFC 8839 §5.1](https://www.rfc-editor.org/rfc/rfc8839#section-5.1)).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::Error;

/// The component this agent runs: RTP with rtcp-mux. Candidates of other components
/// are ignored ([INTEROP.md](../../shared/INTEROP.md) "rtcp-mux only").
pub const COMPONENT_RTP: u16 = 1;

/// Candidate type ([RFC 8445 §5.1.1](https://www.rfc-editor.org/rfc/rfc8445#section-5.1.1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CandidateKind {
    /// A local interface address.
    Host,
    /// The address a STUN server saw (behind a NAT).
    ServerReflexive,
    /// Learned from a connectivity check ([RFC 8445 §7.2.5.3.1](https://www.rfc-editor.org/rfc/rfc8445#section-7.2.5.3.1)).
    PeerReflexive,
    /// A TURN relay address ([RFC 8656](https://www.rfc-editor.org/rfc/rfc8656)).
    Relayed,
}

impl CandidateKind {
    /// Recommended type preference ([RFC 8445 §5.1.2.2](https://www.rfc-editor.org/rfc/rfc8445#section-5.1.2.2)).
    pub fn type_preference(self) -> u32 {
        match self {
            Self::Host => 126,
            Self::PeerReflexive => 110,
            Self::ServerReflexive => 100,
            Self::Relayed => 0,
        }
    }

    /// The SDP `typ` token.
    pub fn as_sdp(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::ServerReflexive => "srflx",
            Self::PeerReflexive => "prflx",
            Self::Relayed => "relay",
        }
    }

    fn from_sdp(s: &str) -> Option<Self> {
        Some(match s {
            "host" => Self::Host,
            "srflx" => Self::ServerReflexive,
            "prflx" => Self::PeerReflexive,
            "relay" => Self::Relayed,
            _ => return None,
        })
    }
}

/// Candidate priority ([RFC 8445 §5.1.2.1](https://www.rfc-editor.org/rfc/rfc8445#section-5.1.2.1)):
/// `2^24 * type_pref + 2^8 * local_pref + (256 - component)`.
pub fn candidate_priority(kind: CandidateKind, local_preference: u16, component: u16) -> u32 {
    (kind.type_preference() << 24)
        + (u32::from(local_preference) << 8)
        + (256 - u32::from(component.clamp(1, 256)))
}

/// Pair priority ([RFC 8445 §6.1.2.3](https://www.rfc-editor.org/rfc/rfc8445#section-6.1.2.3)):
/// `2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0)`, G the controlling agent's candidate priority.
pub fn pair_priority(controlling: u32, controlled: u32) -> u64 {
    let (g, d) = (u64::from(controlling), u64::from(controlled));
    (g.min(d) << 32) + 2 * g.max(d) + u64::from(g > d)
}

/// One ICE candidate, local or remote.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// Foundation: equal for candidates of the same type, base IP and server (§5.1.1.3).
    pub foundation: String,
    /// Component id; only [`COMPONENT_RTP`] is used.
    pub component: u16,
    /// Priority (§5.1.2).
    pub priority: u32,
    /// The transport address.
    pub addr: SocketAddr,
    /// The type.
    pub kind: CandidateKind,
    /// For local candidates, the base: the socket address packets are sent from
    /// (§5.1.1.3). For remote candidates, equal to `addr`.
    pub base: SocketAddr,
    /// The `raddr`/`rport` related address, if any.
    pub related: Option<SocketAddr>,
}

impl Candidate {
    /// A remote host candidate with the recommended priority for `addr`.
    pub fn host(addr: SocketAddr, foundation: &str) -> Self {
        let pref = if addr.is_ipv6() { 65535 } else { 65279 };
        Self {
            foundation: foundation.to_owned(),
            component: COMPONENT_RTP,
            priority: candidate_priority(CandidateKind::Host, pref, COMPONENT_RTP),
            addr,
            kind: CandidateKind::Host,
            base: addr,
            related: None,
        }
    }

    /// Formats as the value of an SDP `a=candidate:` line, without the `candidate:` prefix
    /// (the form Jingle and `RTCIceCandidate.candidate` minus its prefix use).
    pub fn to_sdp_value(&self) -> String {
        let mut s = format!(
            "{} {} udp {} {} {} typ {}",
            self.foundation,
            self.component,
            self.priority,
            self.addr.ip(),
            self.addr.port(),
            self.kind.as_sdp()
        );
        if let Some(r) = self.related {
            s.push_str(&format!(" raddr {} rport {}", r.ip(), r.port()));
        }
        s
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "candidate:{}", self.to_sdp_value())
    }
}

impl FromStr for Candidate {
    type Err = Error;

    /// Parses `[a=][candidate:]foundation component transport priority ip port typ type
    /// [raddr ip rport port] [extensions…]`. Transports other than UDP are rejected with
    /// [`Error::PeerIncompatible`]; anything unparsable with [`Error::Malformed`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let s = s.strip_prefix("a=").unwrap_or(s);
        let s = s.strip_prefix("candidate:").unwrap_or(s);
        let mal = |what: &str| Error::Malformed(format!("candidate: {what}"));
        let mut it = s.split_ascii_whitespace();
        let foundation = it.next().ok_or_else(|| mal("foundation"))?.to_owned();
        let component: u16 = it
            .next()
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| mal("component"))?;
        let transport = it.next().ok_or_else(|| mal("transport"))?;
        if !transport.eq_ignore_ascii_case("udp") {
            return Err(Error::PeerIncompatible(format!("transport {transport}")));
        }
        let priority: u32 = it
            .next()
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| mal("priority"))?;
        let ip: IpAddr = it
            .next()
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| mal("address"))?;
        let port: u16 = it
            .next()
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| mal("port"))?;
        if it.next() != Some("typ") {
            return Err(mal("typ"));
        }
        let kind = it
            .next()
            .and_then(CandidateKind::from_sdp)
            .ok_or_else(|| mal("type"))?;
        let mut raddr: Option<IpAddr> = None;
        let mut rport: Option<u16> = None;
        while let Some(k) = it.next() {
            let v = it.next();
            match k {
                "raddr" => raddr = v.and_then(|v| v.parse().ok()),
                "rport" => rport = v.and_then(|v| v.parse().ok()),
                _ => {}
            }
        }
        let addr = SocketAddr::new(ip, port);
        Ok(Self {
            foundation,
            component,
            priority,
            addr,
            kind,
            base: addr,
            related: raddr.zip(rport).map(|(i, p)| SocketAddr::new(i, p)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_rfc() {
        assert_eq!(
            candidate_priority(CandidateKind::Host, 65535, 1),
            2_130_706_431
        );
        assert!(pair_priority(10, 20) > pair_priority(5, 20));
        assert_eq!(pair_priority(2, 1), (1u64 << 32) + 4 + 1);
    }

    #[test]
    fn sdp_round_trip() {
        let line = "candidate:842163049 1 udp 1677729535 198.51.100.7 40000 typ srflx raddr 10.0.0.5 rport 40000 generation 0 ufrag x network-cost 999";
        let c: Candidate = line.parse().unwrap();
        assert_eq!(c.kind, CandidateKind::ServerReflexive);
        assert_eq!(c.priority, 1_677_729_535);
        assert_eq!(c.related, Some("10.0.0.5:40000".parse().unwrap()));
        let again: Candidate = c.to_string().parse().unwrap();
        assert_eq!(again, c);
        let v6: Candidate = "1 1 UDP 2130706175 ::1 5000 typ host".parse().unwrap();
        assert!(v6.addr.is_ipv6());
        assert!(matches!(
            "1 1 tcp 1 1.2.3.4 9 typ host".parse::<Candidate>(),
            Err(Error::PeerIncompatible(_))
        ));
        assert!(matches!(
            "1 x udp 1 1.2.3.4 9 typ host".parse::<Candidate>(),
            Err(Error::Malformed(_))
        ));
    }
}
