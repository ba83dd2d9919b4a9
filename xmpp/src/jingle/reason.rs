//! The Jingle `<reason/>` element
//! ([XEP-0166 §7.4](https://xmpp.org/extensions/xep-0166.html#def-reason)).

use minidom::Element;

use super::ns;
use super::xml::elem;

/// A defined condition of a Jingle `<reason/>`
/// ([XEP-0166 §7.4](https://xmpp.org/extensions/xep-0166.html#def-reason)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReasonCondition {
    /// `<alternative-session/>`: use the session with this sid instead.
    AlternativeSession(Option<String>),
    /// `<busy/>`: the party is busy.
    Busy,
    /// `<cancel/>`: the session was cancelled before it was accepted.
    Cancel,
    /// `<connectivity-error/>`: no connectivity.
    ConnectivityError,
    /// `<decline/>`: the party declined the session.
    Decline,
    /// `<expired/>`: the session expired.
    Expired,
    /// `<failed-application/>`: the application (RTP) failed.
    FailedApplication,
    /// `<failed-transport/>`: the transport (ICE) failed.
    FailedTransport,
    /// `<general-error/>`: any other error.
    GeneralError,
    /// `<gone/>`: the party went away.
    Gone,
    /// `<incompatible-parameters/>`: e.g. no common codec.
    IncompatibleParameters,
    /// `<media-error/>`: media failed.
    MediaError,
    /// `<security-error/>`: e.g. a DTLS fingerprint mismatch.
    SecurityError,
    /// `<success/>`: normal hangup.
    Success,
    /// `<timeout/>`: no answer in time.
    Timeout,
    /// `<unsupported-applications/>`: e.g. video offered to an audio-only party.
    UnsupportedApplications,
    /// `<unsupported-transports/>`: no supported transport.
    UnsupportedTransports,
    /// A condition element this crate does not know (its local name).
    Other(String),
}

impl ReasonCondition {
    /// The element name of the condition, e.g. `"busy"`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::AlternativeSession(_) => "alternative-session",
            Self::Busy => "busy",
            Self::Cancel => "cancel",
            Self::ConnectivityError => "connectivity-error",
            Self::Decline => "decline",
            Self::Expired => "expired",
            Self::FailedApplication => "failed-application",
            Self::FailedTransport => "failed-transport",
            Self::GeneralError => "general-error",
            Self::Gone => "gone",
            Self::IncompatibleParameters => "incompatible-parameters",
            Self::MediaError => "media-error",
            Self::SecurityError => "security-error",
            Self::Success => "success",
            Self::Timeout => "timeout",
            Self::UnsupportedApplications => "unsupported-applications",
            Self::UnsupportedTransports => "unsupported-transports",
            Self::Other(name) => name,
        }
    }

    fn from_element(el: &Element) -> Self {
        match el.name() {
            "alternative-session" => Self::AlternativeSession(
                el.children()
                    .find(|c| c.name() == "sid")
                    .map(|c| c.text().trim().to_owned()),
            ),
            "busy" => Self::Busy,
            "cancel" => Self::Cancel,
            "connectivity-error" => Self::ConnectivityError,
            "decline" => Self::Decline,
            "expired" => Self::Expired,
            "failed-application" => Self::FailedApplication,
            "failed-transport" => Self::FailedTransport,
            "general-error" => Self::GeneralError,
            "gone" => Self::Gone,
            "incompatible-parameters" => Self::IncompatibleParameters,
            "media-error" => Self::MediaError,
            "security-error" => Self::SecurityError,
            "success" => Self::Success,
            "timeout" => Self::Timeout,
            "unsupported-applications" => Self::UnsupportedApplications,
            "unsupported-transports" => Self::UnsupportedTransports,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// A Jingle `<reason/>`: a condition and an optional human-readable text
/// ([XEP-0166 §7.4](https://xmpp.org/extensions/xep-0166.html#def-reason)).
///
/// Also used inside JMI `<reject/>`, `<retract/>` and `<finish/>`
/// ([XEP-0353 §3](https://xmpp.org/extensions/xep-0353.html#protocol)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// The defined condition.
    pub condition: ReasonCondition,
    /// The optional `<text/>`, e.g. `486 Busy Here`.
    pub text: Option<String>,
}

impl Reason {
    /// A reason with `condition` and no text.
    pub fn new(condition: ReasonCondition) -> Self {
        Self {
            condition,
            text: None,
        }
    }

    /// A reason with `condition` and `text`.
    pub fn with_text(condition: ReasonCondition, text: impl Into<String>) -> Self {
        Self {
            condition,
            text: Some(text.into()),
        }
    }

    /// Parses a `<reason/>` element (the namespace is not checked: JMI
    /// senders differ in whether they qualify it).
    ///
    /// Leniency: a reason without any condition element, or with only a
    /// `<text/>`, gives [`ReasonCondition::Other`] with an empty name rather
    /// than an error; unknown application-specific children are ignored.
    pub fn from_element(el: &Element) -> Self {
        let mut condition = None;
        let mut text = None;
        for c in el.children() {
            match c.name() {
                "text" => text = Some(c.text()),
                _ if condition.is_none() && c.ns() == ns::JINGLE => {
                    condition = Some(ReasonCondition::from_element(c));
                }
                _ => {}
            }
        }
        // Some senders put the condition in another namespace (or none):
        // fall back to the first non-text child.
        if condition.is_none() {
            condition = el
                .children()
                .find(|c| c.name() != "text")
                .map(ReasonCondition::from_element);
        }
        Self {
            condition: condition.unwrap_or_else(|| ReasonCondition::Other(String::new())),
            text,
        }
    }

    /// Serializes to `<reason xmlns='urn:xmpp:jingle:1'>`.
    pub fn to_element(&self) -> Element {
        let mut reason = Element::bare("reason", ns::JINGLE);
        let name = self.condition.as_str();
        if !name.is_empty() {
            let mut cond = elem(name, ns::JINGLE, &[]);
            if let ReasonCondition::AlternativeSession(Some(sid)) = &self.condition {
                let mut s = Element::bare("sid", ns::JINGLE);
                s.append_text_node(sid.clone());
                cond.append_child(s);
            }
            reason.append_child(cond);
        }
        if let Some(text) = &self.text {
            let mut t = Element::bare("text", ns::JINGLE);
            t.append_text_node(text.clone());
            reason.append_child(t);
        }
        reason
    }
}

/// The Jingle reason to end a session with when the XMPP layer fails with
/// this error ([STYLE.md R7] wire mapping): connection and timer failures
/// give `<connectivity-error/>`, everything else `<general-error/>`. No
/// `<text/>` is added, so nothing internal reaches the peer.
impl From<&crate::error::Error> for Reason {
    fn from(e: &crate::error::Error) -> Self {
        use crate::error::Error as E;
        let condition = match e {
            E::StreamError { .. }
            | E::StreamClosed
            | E::SecretRejected
            | E::BadStreamHeader(_)
            | E::PingTimeout(_)
            | E::HandshakeTimeout(_) => ReasonCondition::ConnectivityError,
            _ => ReasonCondition::GeneralError,
        };
        Self::new(condition)
    }
}
