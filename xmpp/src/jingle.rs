//! Jingle (XEP-0166/0167/0176/0320) parsing and serialization.
//!
//! The model is parsed leniently from [`minidom::Element`]: unknown elements
//! and attributes are ignored, optional-in-practice attributes (candidate
//! `id` and `network`, `creator`, `channels`) get defaults, and only what makes
//! a stanza unusable (no `action` or `sid`, a content without a `name`) is an
//! [`Error::Malformed`]. Everything the gateway sends serializes back with
//! `to_element`, and parse → serialize → parse is the identity on the model.
//!
//! - [XEP-0166](https://xmpp.org/extensions/xep-0166.html) Jingle
//! - [XEP-0167](https://xmpp.org/extensions/xep-0167.html) RTP sessions
//! - [XEP-0176](https://xmpp.org/extensions/xep-0176.html) ICE-UDP transport
//! - [XEP-0320](https://xmpp.org/extensions/xep-0320.html) DTLS-SRTP fingerprints
//! - [XEP-0338](https://xmpp.org/extensions/xep-0338.html) grouping (BUNDLE)
//! - [XEP-0181](https://xmpp.org/extensions/xep-0181.html) DTMF (tolerated in session-info)

use minidom::Element;

use crate::error::Error;

mod ice_udp;
mod reason;
mod rtp;
pub(crate) mod xml;

pub use ice_udp::{Candidate, CandidateType, Fingerprint, IceUdpTransport, Setup};
pub use reason::{Reason, ReasonCondition};
pub use rtp::{Parameter, PayloadType, RtcpFb, RtpDescription, RtpHdrext};

use xml::{elem, required, set_attr, set_opt};

/// XML namespaces used by Jingle and JMI.
pub mod ns {
    /// Jingle ([XEP-0166](https://xmpp.org/extensions/xep-0166.html)).
    pub const JINGLE: &str = "urn:xmpp:jingle:1";
    /// Jingle error conditions ([XEP-0166 §10](https://xmpp.org/extensions/xep-0166.html#errors)).
    pub const JINGLE_ERRORS: &str = "urn:xmpp:jingle:errors:1";
    /// RTP description ([XEP-0167](https://xmpp.org/extensions/xep-0167.html)).
    pub const JINGLE_RTP: &str = "urn:xmpp:jingle:apps:rtp:1";
    /// RTP session-info payloads ([XEP-0167 §7](https://xmpp.org/extensions/xep-0167.html#info)).
    pub const JINGLE_RTP_INFO: &str = "urn:xmpp:jingle:apps:rtp:info:1";
    /// RTCP feedback ([XEP-0293](https://xmpp.org/extensions/xep-0293.html)).
    pub const JINGLE_RTCP_FB: &str = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0";
    /// RTP header extensions ([XEP-0294](https://xmpp.org/extensions/xep-0294.html)).
    pub const JINGLE_RTP_HDREXT: &str = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0";
    /// ICE-UDP transport ([XEP-0176](https://xmpp.org/extensions/xep-0176.html)).
    pub const JINGLE_ICE_UDP: &str = "urn:xmpp:jingle:transports:ice-udp:1";
    /// DTLS fingerprints ([XEP-0320](https://xmpp.org/extensions/xep-0320.html)).
    pub const JINGLE_DTLS: &str = "urn:xmpp:jingle:apps:dtls:0";
    /// Content grouping ([XEP-0338](https://xmpp.org/extensions/xep-0338.html)).
    pub const JINGLE_GROUPING: &str = "urn:xmpp:jingle:apps:grouping:0";
    /// Legacy DTMF in session-info ([XEP-0181](https://xmpp.org/extensions/xep-0181.html)).
    pub const JINGLE_DTMF: &str = "urn:xmpp:jingle:dtmf:0";
    /// Conversations' trickle ice-option element.
    pub const GULTSCH_ICE_OPTION: &str =
        "http://gultsch.de/xmpp/drafts/jingle/transports/ice-udp/option";
    /// Jingle Message Initiation ([XEP-0353](https://xmpp.org/extensions/xep-0353.html)).
    pub const JMI: &str = "urn:xmpp:jingle-message:0";
    /// Message processing hints ([XEP-0334](https://xmpp.org/extensions/xep-0334.html)).
    pub const HINTS: &str = "urn:xmpp:hints";
    /// Message delivery receipts ([XEP-0184](https://xmpp.org/extensions/xep-0184.html)).
    pub const RECEIPTS: &str = "urn:xmpp:receipts";
    /// Stanza error conditions ([RFC 6120 §8.3](https://www.rfc-editor.org/rfc/rfc6120#section-8.3)).
    pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
    /// The default namespace of stanzas on a component stream
    /// ([XEP-0114](https://xmpp.org/extensions/xep-0114.html)); every stanza
    /// this crate builds is in it.
    pub const COMPONENT: &str = "jabber:component:accept";
}

/// The Jingle `action` ([XEP-0166 §7.2](https://xmpp.org/extensions/xep-0166.html#def-action)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// `content-accept`.
    ContentAccept,
    /// `content-add`.
    ContentAdd,
    /// `content-modify`.
    ContentModify,
    /// `content-reject`.
    ContentReject,
    /// `content-remove`.
    ContentRemove,
    /// `description-info`.
    DescriptionInfo,
    /// `security-info`.
    SecurityInfo,
    /// `session-accept`.
    SessionAccept,
    /// `session-info`.
    SessionInfo,
    /// `session-initiate`.
    SessionInitiate,
    /// `session-terminate`.
    SessionTerminate,
    /// `transport-accept`.
    TransportAccept,
    /// `transport-info`.
    TransportInfo,
    /// `transport-reject`.
    TransportReject,
    /// `transport-replace`.
    TransportReplace,
    /// An action not defined by XEP-0166 (kept so it can be refused).
    Other(String),
}

impl Action {
    /// Parses an `action` attribute value; never fails.
    pub fn parse(s: &str) -> Self {
        match s {
            "content-accept" => Self::ContentAccept,
            "content-add" => Self::ContentAdd,
            "content-modify" => Self::ContentModify,
            "content-reject" => Self::ContentReject,
            "content-remove" => Self::ContentRemove,
            "description-info" => Self::DescriptionInfo,
            "security-info" => Self::SecurityInfo,
            "session-accept" => Self::SessionAccept,
            "session-info" => Self::SessionInfo,
            "session-initiate" => Self::SessionInitiate,
            "session-terminate" => Self::SessionTerminate,
            "transport-accept" => Self::TransportAccept,
            "transport-info" => Self::TransportInfo,
            "transport-reject" => Self::TransportReject,
            "transport-replace" => Self::TransportReplace,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The attribute value, e.g. `session-initiate`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::ContentAccept => "content-accept",
            Self::ContentAdd => "content-add",
            Self::ContentModify => "content-modify",
            Self::ContentReject => "content-reject",
            Self::ContentRemove => "content-remove",
            Self::DescriptionInfo => "description-info",
            Self::SecurityInfo => "security-info",
            Self::SessionAccept => "session-accept",
            Self::SessionInfo => "session-info",
            Self::SessionInitiate => "session-initiate",
            Self::SessionTerminate => "session-terminate",
            Self::TransportAccept => "transport-accept",
            Self::TransportInfo => "transport-info",
            Self::TransportReject => "transport-reject",
            Self::TransportReplace => "transport-replace",
            Self::Other(s) => s,
        }
    }
}

/// Which party created a content (`creator`,
/// [XEP-0166 §7.3](https://xmpp.org/extensions/xep-0166.html#def-content)).
///
/// Peers disagree on the creator of trickled contents, so the session matches
/// contents by `name` only and echoes the creator the content was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Creator {
    /// `initiator` (the default when the attribute is missing or unknown).
    #[default]
    Initiator,
    /// `responder`.
    Responder,
}

impl Creator {
    fn parse(s: &str) -> Self {
        if s.trim().eq_ignore_ascii_case("responder") {
            Self::Responder
        } else {
            Self::Initiator
        }
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initiator => "initiator",
            Self::Responder => "responder",
        }
    }
}

/// Which parties send media (`senders`,
/// [XEP-0166 §7.3](https://xmpp.org/extensions/xep-0166.html#def-content)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Senders {
    /// `both` (the default).
    #[default]
    Both,
    /// `initiator`.
    Initiator,
    /// `responder`.
    Responder,
    /// `none`.
    None,
}

impl Senders {
    /// Parses the attribute; unknown values give [`Senders::Both`].
    pub fn parse(s: &str) -> Self {
        match s.trim() {
            "initiator" => Self::Initiator,
            "responder" => Self::Responder,
            "none" => Self::None,
            _ => Self::Both,
        }
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Both => "both",
            Self::Initiator => "initiator",
            Self::Responder => "responder",
            Self::None => "none",
        }
    }
}

/// The application (`<description/>`) of a content.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Application {
    /// An RTP session (XEP-0167), audio or video.
    Rtp(RtpDescription),
    /// Any other application, by namespace (e.g. file transfer): refused.
    Other(String),
}

/// The transport of a content.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// ICE-UDP (XEP-0176).
    IceUdp(IceUdpTransport),
    /// Any other transport, by namespace (e.g. raw-udp, SOCKS5): refused.
    Other(String),
}

/// A `<content/>` ([XEP-0166 §7.3](https://xmpp.org/extensions/xep-0166.html#def-content)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// The creator; defaults to initiator.
    pub creator: Creator,
    /// The content name, unique within the session (Conversations: ≤16
    /// characters, no whitespace).
    pub name: String,
    /// Who sends media; defaults to both.
    pub senders: Senders,
    /// The description, absent in transport-info and content-remove.
    pub description: Option<Application>,
    /// The transport, absent in session-info and content-remove.
    pub transport: Option<Transport>,
}

impl Content {
    /// A content created by `creator` with `name`, senders both, and nothing
    /// inside.
    pub fn new(creator: Creator, name: impl Into<String>) -> Self {
        Self {
            creator,
            name: name.into(),
            senders: Senders::Both,
            description: None,
            transport: None,
        }
    }

    /// The RTP description, if the application is RTP.
    pub fn rtp(&self) -> Option<&RtpDescription> {
        match &self.description {
            Some(Application::Rtp(d)) => Some(d),
            _ => None,
        }
    }

    /// The ICE-UDP transport, if any.
    pub fn ice_udp(&self) -> Option<&IceUdpTransport> {
        match &self.transport {
            Some(Transport::IceUdp(t)) => Some(t),
            _ => None,
        }
    }

    /// Whether this content is an RTP audio session over ICE-UDP: the only
    /// kind the gateway accepts. Video, other applications and other
    /// transports are `false`.
    pub fn is_audio(&self) -> bool {
        self.rtp().is_some_and(RtpDescription::is_audio)
            && matches!(self.transport, Some(Transport::IceUdp(_)))
    }

    /// Parses a `<content/>`.
    ///
    /// # Errors
    /// [`Error::Malformed`] when `name` is missing, or the RTP description
    /// lacks `media`.
    pub fn from_element(el: &Element) -> Result<Self, Error> {
        let mut c = Self {
            creator: el.attr("creator").map(Creator::parse).unwrap_or_default(),
            name: required(el, "name")?.to_owned(),
            senders: el.attr("senders").map(Senders::parse).unwrap_or_default(),
            description: None,
            transport: None,
        };
        for child in el.children() {
            match child.name() {
                "description" if c.description.is_none() => {
                    c.description = Some(if child.ns() == ns::JINGLE_RTP {
                        Application::Rtp(RtpDescription::from_element(child)?)
                    } else {
                        Application::Other(child.ns())
                    });
                }
                "transport" if c.transport.is_none() => {
                    c.transport = Some(if child.ns() == ns::JINGLE_ICE_UDP {
                        Transport::IceUdp(IceUdpTransport::from_element(child))
                    } else {
                        Transport::Other(child.ns())
                    });
                }
                _ => {}
            }
        }
        Ok(c)
    }

    /// Serializes to `<content/>`; `senders` is written only when not `both`.
    /// An [`Application::Other`]/[`Transport::Other`] is written as an empty
    /// element in its namespace.
    pub fn to_element(&self) -> Element {
        let mut el = elem(
            "content",
            ns::JINGLE,
            &[("creator", self.creator.as_str()), ("name", &self.name)],
        );
        if self.senders != Senders::Both {
            set_attr(&mut el, "senders", self.senders.as_str());
        }
        match &self.description {
            Some(Application::Rtp(d)) => {
                el.append_child(d.to_element());
            }
            Some(Application::Other(ns)) => {
                el.append_child(Element::bare("description", ns.as_str()));
            }
            None => {}
        }
        match &self.transport {
            Some(Transport::IceUdp(t)) => {
                el.append_child(t.to_element());
            }
            Some(Transport::Other(ns)) => {
                el.append_child(Element::bare("transport", ns.as_str()));
            }
            None => {}
        }
        el
    }
}

/// `<group xmlns='urn:xmpp:jingle:apps:grouping:0' semantics='BUNDLE'/>`
/// ([XEP-0338 §3](https://xmpp.org/extensions/xep-0338.html#protocol)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The semantics, e.g. `BUNDLE`.
    pub semantics: String,
    /// The names of the grouped contents.
    pub contents: Vec<String>,
}

impl Group {
    /// A BUNDLE group of these content names.
    pub fn bundle(contents: Vec<String>) -> Self {
        Self {
            semantics: "BUNDLE".to_owned(),
            contents,
        }
    }

    fn from_element(el: &Element) -> Self {
        Self {
            semantics: el.attr("semantics").unwrap_or("").to_owned(),
            contents: el
                .children()
                .filter(|c| c.name() == "content")
                .filter_map(|c| c.attr("name").map(str::to_owned))
                .collect(),
        }
    }

    fn to_element(&self) -> Element {
        let mut el = elem(
            "group",
            ns::JINGLE_GROUPING,
            &[("semantics", &self.semantics)],
        );
        for name in &self.contents {
            el.append_child(elem("content", ns::JINGLE_GROUPING, &[("name", name)]));
        }
        el
    }
}

/// A session-info payload ([XEP-0167 §7](https://xmpp.org/extensions/xep-0167.html#info),
/// [XEP-0181](https://xmpp.org/extensions/xep-0181.html)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionInfo {
    /// `<active/>`: the party is active again.
    Active,
    /// `<hold/>`: the party put the call on hold.
    Hold,
    /// `<unhold/>`: the party took the call off hold.
    Unhold,
    /// `<mute/>` of one content (or all when `name` is `None`).
    Mute {
        /// Creator of the muted content.
        creator: Creator,
        /// Name of the muted content.
        name: Option<String>,
    },
    /// `<unmute/>`.
    Unmute {
        /// Creator of the unmuted content.
        creator: Creator,
        /// Name of the unmuted content.
        name: Option<String>,
    },
    /// `<ringing/>`: the callee's device is ringing.
    Ringing,
    /// Legacy XEP-0181 `<dtmf code='5' duration='100'/>` (tolerated).
    Dtmf {
        /// The tone, `0`–`9`, `#`, `*`, `A`–`D`.
        code: String,
        /// Duration in milliseconds, if given.
        duration: Option<u32>,
    },
    /// A payload this crate does not understand: answered with
    /// `feature-not-implemented` + `<unsupported-info/>` (XEP-0166 §7.2.12).
    Unsupported {
        /// Namespace of the payload.
        ns: String,
        /// Local name of the payload.
        name: String,
    },
}

impl SessionInfo {
    fn from_element(el: &Element) -> Option<Self> {
        let ns = el.ns();
        let creator = el.attr("creator").map(Creator::parse).unwrap_or_default();
        let cname = el.attr("name").map(str::to_owned);
        Some(match (ns.as_str(), el.name()) {
            (ns::JINGLE_RTP_INFO, "active") => Self::Active,
            (ns::JINGLE_RTP_INFO, "hold") => Self::Hold,
            (ns::JINGLE_RTP_INFO, "unhold") => Self::Unhold,
            (ns::JINGLE_RTP_INFO, "ringing") => Self::Ringing,
            (ns::JINGLE_RTP_INFO, "mute") => Self::Mute {
                creator,
                name: cname,
            },
            (ns::JINGLE_RTP_INFO, "unmute") => Self::Unmute {
                creator,
                name: cname,
            },
            (ns::JINGLE_DTMF, "dtmf") => Self::Dtmf {
                code: el.attr("code").unwrap_or("").to_owned(),
                duration: xml::lenient_number(el, "duration"),
            },
            // Children that are part of the Jingle element itself.
            (ns::JINGLE, _) | (ns::JINGLE_GROUPING, _) => return None,
            (_, name) => Self::Unsupported {
                ns,
                name: name.to_owned(),
            },
        })
    }

    fn to_element(&self) -> Element {
        let info = |name: &str| Element::bare(name, ns::JINGLE_RTP_INFO);
        match self {
            Self::Active => info("active"),
            Self::Hold => info("hold"),
            Self::Unhold => info("unhold"),
            Self::Ringing => info("ringing"),
            Self::Mute { creator, name } | Self::Unmute { creator, name } => {
                let mut el = info(if matches!(self, Self::Mute { .. }) {
                    "mute"
                } else {
                    "unmute"
                });
                set_attr(&mut el, "creator", creator.as_str());
                set_opt(&mut el, "name", name.as_ref());
                el
            }
            Self::Dtmf { code, duration } => {
                let mut el = elem("dtmf", ns::JINGLE_DTMF, &[("code", code)]);
                set_opt(&mut el, "duration", *duration);
                el
            }
            Self::Unsupported { ns, name } => Element::bare(name.as_str(), ns.as_str()),
        }
    }
}

/// A `<jingle xmlns='urn:xmpp:jingle:1'/>` element
/// ([XEP-0166 §7](https://xmpp.org/extensions/xep-0166.html#def)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jingle {
    /// The action.
    pub action: Action,
    /// The session id.
    pub sid: String,
    /// The `initiator` attribute, as written (Movim puts a bare JID here:
    /// rely on the IQ `from` instead).
    pub initiator: Option<String>,
    /// The `responder` attribute, as written.
    pub responder: Option<String>,
    /// The contents, in document order.
    pub contents: Vec<Content>,
    /// The `<reason/>` (session-terminate, content-reject…).
    pub reason: Option<Reason>,
    /// The session-info payload; `None` for a session-info "ping" or any
    /// other action.
    pub info: Option<SessionInfo>,
    /// The XEP-0338 group (BUNDLE).
    pub group: Option<Group>,
}

impl Jingle {
    /// A Jingle element with `action` and `sid` and nothing else.
    pub fn new(action: Action, sid: impl Into<String>) -> Self {
        Self {
            action,
            sid: sid.into(),
            initiator: None,
            responder: None,
            contents: Vec::new(),
            reason: None,
            info: None,
            group: None,
        }
    }

    /// Whether any content is non-audio (video, another application or
    /// another transport): such contents are refused by the session.
    pub fn has_non_audio(&self) -> bool {
        self.contents
            .iter()
            .any(|c| c.description.is_some() && !c.is_audio())
    }

    /// Parses a `<jingle xmlns='urn:xmpp:jingle:1'/>`.
    ///
    /// Only the session-info payload of a `session-info` action is looked at;
    /// the first payload wins.
    ///
    /// # Errors
    /// [`Error::Malformed`] when the element is not `jingle` in
    /// `urn:xmpp:jingle:1`, lacks `action` or `sid` (or they are empty), or a
    /// content is malformed (see [`Content::from_element`]).
    pub fn from_element(el: &Element) -> Result<Self, Error> {
        if el.name() != "jingle" || el.ns() != ns::JINGLE {
            return Err(Error::Malformed(format!(
                "expected <jingle xmlns='{}'/>, got <{}/>",
                ns::JINGLE,
                el.name()
            )));
        }
        let action = required(el, "action")?;
        let sid = required(el, "sid")?;
        if action.is_empty() || sid.is_empty() {
            return Err(Error::Malformed("empty jingle action or sid".to_owned()));
        }
        let mut j = Self::new(Action::parse(action), sid);
        j.initiator = el.attr("initiator").map(str::to_owned);
        j.responder = el.attr("responder").map(str::to_owned);
        for c in el.children() {
            match (c.name(), c.ns().as_str()) {
                ("content", ns::JINGLE) => j.contents.push(Content::from_element(c)?),
                ("reason", ns::JINGLE) => j.reason = Some(Reason::from_element(c)),
                ("group", ns::JINGLE_GROUPING) => j.group = Some(Group::from_element(c)),
                _ if j.action == Action::SessionInfo && j.info.is_none() => {
                    j.info = SessionInfo::from_element(c);
                }
                _ => {}
            }
        }
        Ok(j)
    }

    /// Serializes to `<jingle xmlns='urn:xmpp:jingle:1'/>`: contents, then
    /// the group, the reason and the session-info payload.
    pub fn to_element(&self) -> Element {
        let mut el = elem(
            "jingle",
            ns::JINGLE,
            &[("action", self.action.as_str()), ("sid", &self.sid)],
        );
        set_opt(&mut el, "initiator", self.initiator.as_ref());
        set_opt(&mut el, "responder", self.responder.as_ref());
        for c in &self.contents {
            el.append_child(c.to_element());
        }
        if let Some(g) = &self.group {
            el.append_child(g.to_element());
        }
        if let Some(r) = &self.reason {
            el.append_child(r.to_element());
        }
        if let Some(i) = &self.info {
            el.append_child(i.to_element());
        }
        el
    }
}
