//! The ICE-UDP transport ([XEP-0176](https://xmpp.org/extensions/xep-0176.html))
//! with its DTLS fingerprint ([XEP-0320](https://xmpp.org/extensions/xep-0320.html)).

use std::net::{IpAddr, SocketAddr};

use minidom::Element;
use tracing::debug;

use super::ns;
use super::xml::{elem, lenient_number, number, required, set_attr, set_opt, truncate};
use crate::error::Error;

/// `<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'/>`
/// ([XEP-0176 §5](https://xmpp.org/extensions/xep-0176.html#protocol-syntax)).
///
/// An ICE restart is a transport with a new `ufrag`/`pwd` and usually no
/// candidates ([XEP-0176 §7](https://xmpp.org/extensions/xep-0176.html#protocol-restart)).
///
/// Its `Debug` output redacts `pwd` ([STYLE.md R10]: never log ICE passwords).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct IceUdpTransport {
    /// ICE username fragment (`ufrag`); absent in some transport-info.
    pub ufrag: Option<String>,
    /// ICE password (`pwd`). Never log it.
    pub pwd: Option<String>,
    /// The DTLS fingerprint (XEP-0320).
    pub fingerprint: Option<Fingerprint>,
    /// Conversations' `<trickle xmlns='http://gultsch.de/xmpp/drafts/jingle/transports/ice-udp/option'/>`
    /// ice-option element is present.
    pub trickle: bool,
    /// Candidates, in document order. Candidates that cannot be used (no
    /// port, bad priority…) are dropped while parsing.
    pub candidates: Vec<Candidate>,
}

impl std::fmt::Debug for IceUdpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceUdpTransport")
            .field("ufrag", &self.ufrag)
            .field("pwd", &self.pwd.as_ref().map(|_| "<redacted>"))
            .field("fingerprint", &self.fingerprint)
            .field("trickle", &self.trickle)
            .field("candidates", &self.candidates)
            .finish()
    }
}

impl IceUdpTransport {
    /// Parses an ICE-UDP `<transport/>`.
    ///
    /// Unusable candidates are skipped with a debug log; this never fails.
    pub fn from_element(el: &Element) -> Self {
        let mut t = Self {
            ufrag: el.attr("ufrag").map(str::to_owned),
            pwd: el.attr("pwd").map(str::to_owned),
            ..Self::default()
        };
        for c in el.children() {
            match (c.name(), c.ns().as_str()) {
                ("candidate", ns::JINGLE_ICE_UDP) => match Candidate::from_element(c) {
                    Ok(cand) => t.candidates.push(cand),
                    Err(e) => debug!(error = %e, "skipping unusable candidate"),
                },
                ("fingerprint", ns::JINGLE_DTLS) => {
                    t.fingerprint = Some(Fingerprint::from_element(c));
                }
                ("trickle", ns::GULTSCH_ICE_OPTION) => t.trickle = true,
                _ => {}
            }
        }
        t
    }

    /// Serializes to an ICE-UDP `<transport/>`: fingerprint, trickle option,
    /// then candidates.
    pub fn to_element(&self) -> Element {
        let mut el = Element::bare("transport", ns::JINGLE_ICE_UDP);
        set_opt(&mut el, "ufrag", self.ufrag.as_ref());
        set_opt(&mut el, "pwd", self.pwd.as_ref());
        if let Some(fp) = &self.fingerprint {
            el.append_child(fp.to_element());
        }
        if self.trickle {
            el.append_child(Element::bare("trickle", ns::GULTSCH_ICE_OPTION));
        }
        for c in &self.candidates {
            el.append_child(c.to_element());
        }
        el
    }
}

/// The candidate type ([RFC 8445 §5.1.1](https://www.rfc-editor.org/rfc/rfc8445#section-5.1.1)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CandidateType {
    /// `host`.
    Host,
    /// `srflx`: server reflexive.
    Srflx,
    /// `prflx`: peer reflexive.
    Prflx,
    /// `relay`: TURN relayed.
    Relay,
    /// Anything else (e.g. Gajim 1.x `multicast`).
    Other(String),
}

impl CandidateType {
    fn parse(s: &str) -> Self {
        match s {
            "host" => Self::Host,
            "srflx" => Self::Srflx,
            "prflx" => Self::Prflx,
            "relay" => Self::Relay,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The attribute value, e.g. `srflx`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Host => "host",
            Self::Srflx => "srflx",
            Self::Prflx => "prflx",
            Self::Relay => "relay",
            Self::Other(s) => s,
        }
    }
}

/// `<candidate/>` of ICE-UDP
/// ([XEP-0176 §5.2](https://xmpp.org/extensions/xep-0176.html#protocol-syntax)).
///
/// Parsed leniently: `id` and `network` are optional (Movim, Conversations
/// omit them), TCP candidates and component 2 (RTCP) candidates are kept so
/// that the caller can decide to ignore them ([`Candidate::is_usable_rtp_udp`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Component id: 1 = RTP, 2 = RTCP.
    pub component: u8,
    /// Foundation.
    pub foundation: String,
    /// ICE generation; defaults to 0.
    pub generation: u32,
    /// The candidate's `id`; optional here although XEP-0176 requires it.
    pub id: Option<String>,
    /// The address as written: an IPv4/IPv6 literal, or an mDNS `.local` name
    /// from browsers (see [`Candidate::addr`]).
    pub ip: String,
    /// Port.
    pub port: u16,
    /// ICE priority ([RFC 8445 §5.1.2](https://www.rfc-editor.org/rfc/rfc8445#section-5.1.2)).
    pub priority: u32,
    /// Transport protocol, lowercased: `udp` or `tcp`.
    pub protocol: String,
    /// Candidate type.
    pub kind: CandidateType,
    /// Related address (`rel-addr`) of srflx/relay candidates.
    pub rel_addr: Option<String>,
    /// Related port (`rel-port`).
    pub rel_port: Option<u16>,
    /// Network index (`network`); optional.
    pub network: Option<u32>,
    /// `tcptype` of TCP candidates (`active`, `passive`, `so`), as written.
    pub tcptype: Option<String>,
}

impl Candidate {
    /// Parses a `<candidate/>`.
    ///
    /// # Errors
    /// [`Error::Malformed`] when `ip`, `port`, `priority`, `component` or
    /// `foundation` is missing or unparsable: such a candidate is unusable.
    /// A missing `protocol` defaults to `udp`, a missing `type` to `host`.
    pub fn from_element(el: &Element) -> Result<Self, Error> {
        let ip = required(el, "ip")?.trim().to_owned();
        let port = number(el, "port")?
            .ok_or_else(|| Error::Malformed("<candidate/> lacks 'port'".to_owned()))?;
        let priority = number(el, "priority")?
            .ok_or_else(|| Error::Malformed("<candidate/> lacks 'priority'".to_owned()))?;
        let component = number(el, "component")?
            .ok_or_else(|| Error::Malformed("<candidate/> lacks 'component'".to_owned()))?;
        let foundation = required(el, "foundation")?.to_owned();
        if ip.is_empty() {
            return Err(Error::Malformed(
                "<candidate/> has an empty 'ip'".to_owned(),
            ));
        }
        Ok(Self {
            component,
            foundation,
            generation: lenient_number(el, "generation").unwrap_or(0),
            id: el.attr("id").map(str::to_owned),
            ip,
            port,
            priority,
            protocol: el.attr("protocol").unwrap_or("udp").to_ascii_lowercase(),
            kind: CandidateType::parse(el.attr("type").unwrap_or("host")),
            rel_addr: el.attr("rel-addr").map(str::to_owned),
            rel_port: lenient_number(el, "rel-port"),
            network: lenient_number(el, "network"),
            tcptype: el.attr("tcptype").map(str::to_owned),
        })
    }

    /// Serializes to `<candidate/>`, writing optional attributes only when set.
    pub fn to_element(&self) -> Element {
        let mut el = Element::bare("candidate", ns::JINGLE_ICE_UDP);
        set_attr(&mut el, "component", self.component.to_string());
        set_attr(&mut el, "foundation", self.foundation.clone());
        set_attr(&mut el, "generation", self.generation.to_string());
        set_opt(&mut el, "id", self.id.as_ref());
        set_attr(&mut el, "ip", self.ip.clone());
        set_opt(&mut el, "network", self.network);
        set_attr(&mut el, "port", self.port.to_string());
        set_attr(&mut el, "priority", self.priority.to_string());
        set_attr(&mut el, "protocol", self.protocol.clone());
        set_attr(&mut el, "type", self.kind.as_str().to_owned());
        set_opt(&mut el, "rel-addr", self.rel_addr.as_ref());
        set_opt(&mut el, "rel-port", self.rel_port);
        set_opt(&mut el, "tcptype", self.tcptype.as_ref());
        el
    }

    /// The transport address, when `ip` is an IP literal (IPv6 may be in
    /// brackets); `None` for mDNS names.
    pub fn addr(&self) -> Option<SocketAddr> {
        let ip = self.ip.trim_start_matches('[').trim_end_matches(']');
        ip.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }

    /// Whether this is a UDP candidate for component 1 (RTP) with an IP
    /// literal: the only kind the gateway uses (rtcp-mux only, no ICE-TCP).
    pub fn is_usable_rtp_udp(&self) -> bool {
        self.component == 1 && self.protocol == "udp" && self.addr().is_some()
    }
}

/// The DTLS role (`setup` attribute,
/// [RFC 4145 §4](https://www.rfc-editor.org/rfc/rfc4145#section-4)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setup {
    /// `actpass`: the offerer lets the answerer choose.
    ActPass,
    /// `active`: this side is the DTLS client.
    Active,
    /// `passive`: this side is the DTLS server.
    Passive,
}

impl Setup {
    fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            s if s.eq_ignore_ascii_case("actpass") => Some(Self::ActPass),
            s if s.eq_ignore_ascii_case("active") => Some(Self::Active),
            s if s.eq_ignore_ascii_case("passive") => Some(Self::Passive),
            _ => None,
        }
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ActPass => "actpass",
            Self::Active => "active",
            Self::Passive => "passive",
        }
    }
}

/// `<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0'/>`
/// ([XEP-0320 §3](https://xmpp.org/extensions/xep-0320.html#protocol)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash function name, e.g. `sha-256`.
    pub hash: String,
    /// The DTLS role; `None` when absent or unknown (e.g. `holdconn`).
    pub setup: Option<Setup>,
    /// The fingerprint as colon-separated uppercase or lowercase hex.
    pub value: String,
}

impl Fingerprint {
    fn from_element(el: &Element) -> Self {
        let setup = el.attr("setup").and_then(|s| {
            let parsed = Setup::parse(s);
            if parsed.is_none() {
                debug!(setup = truncate(s), "unknown DTLS setup value");
            }
            parsed
        });
        Self {
            hash: el.attr("hash").unwrap_or("").to_owned(),
            setup,
            value: el.text().trim().to_owned(),
        }
    }

    fn to_element(&self) -> Element {
        let mut el = elem("fingerprint", ns::JINGLE_DTLS, &[("hash", &self.hash)]);
        set_opt(&mut el, "setup", self.setup.map(Setup::as_str));
        el.append_text_node(self.value.clone());
        el
    }
}
