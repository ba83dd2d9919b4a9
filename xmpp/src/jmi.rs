//! Jingle Message Initiation ([XEP-0353](https://xmpp.org/extensions/xep-0353.html)).
//!
//! Parses `<propose/>`, `<ringing/>`, `<proceed/>`, `<accept/>`, `<reject/>`,
//! `<retract/>` and `<finish/>` leniently from a `<message/>` (Conversations'
//! `<device/>` child and any other unknown child are ignored), and builds the
//! message stanzas the gateway sends exactly as in INTEROP.md E.2/E.3/E.5:
//! `type='chat'`, `id='jm-<action>-<sid>'`, a `<store xmlns='urn:xmpp:hints'/>`
//! hint, and a receipt request on `<propose/>`.
//!
//! ```
//! use xmpp::jmi::{JingleMessage, JmiAction};
//! let m: minidom::Element = "<message xmlns='jabber:client' type='chat' from='u@example.org/c' \
//!     to='+15551234567@gw.example.com'><propose xmlns='urn:xmpp:jingle-message:0' id='S'>\
//!     <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose></message>"
//!     .parse().unwrap();
//! let jm = JingleMessage::from_message(&m).unwrap().unwrap();
//! assert_eq!(jm.id, "S");
//! assert!(jm.is_audio_only_propose());
//! let reply = JingleMessage::new("S", JmiAction::Proceed)
//!     .to_message("+15551234567@gw.example.com/gw", "u@example.org/c");
//! assert_eq!(reply.attr("id"), Some("jm-proceed-S"));
//! ```

use minidom::Element;

use crate::error::Error;
use crate::jingle::xml::{elem, required, set_attr};
use crate::jingle::{ns, Reason};

/// The JMI action ([XEP-0353 §3](https://xmpp.org/extensions/xep-0353.html#protocol)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JmiAction {
    /// `<propose/>`: the media of the proposed RTP descriptions (e.g.
    /// `["audio"]`). A description that is not RTP contributes nothing, so a
    /// propose with only such descriptions has an empty list.
    Propose {
        /// The `media` attribute of every RTP `<description/>`, in order.
        media: Vec<String>,
    },
    /// `<ringing/>`: a callee device is ringing.
    Ringing,
    /// `<proceed/>`: the callee accepts; the caller sends session-initiate to
    /// the sender of the proceed.
    Proceed,
    /// `<accept/>`: sent to the user's own bare JID to stop other devices.
    Accept,
    /// `<reject/>`: the callee declines, with an optional reason.
    Reject {
        /// The optional reason, e.g. `<busy/>`, `<unsupported-applications/>`.
        reason: Option<Reason>,
    },
    /// `<retract/>`: the caller cancels before proceed, with an optional reason.
    Retract {
        /// The optional reason, usually `<cancel/>`.
        reason: Option<Reason>,
    },
    /// `<finish/>`: the call ended (XEP-0353 ≥ 0.4), with an optional reason
    /// and Monal's `<migrated to='new-sid'/>`.
    Finish {
        /// The optional reason, usually `<success/>`.
        reason: Option<Reason>,
        /// The sid of the session this call migrated to, if any.
        migrated: Option<String>,
    },
}

impl JmiAction {
    /// The element name, e.g. `propose`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Propose { .. } => "propose",
            Self::Ringing => "ringing",
            Self::Proceed => "proceed",
            Self::Accept => "accept",
            Self::Reject { .. } => "reject",
            Self::Retract { .. } => "retract",
            Self::Finish { .. } => "finish",
        }
    }
}

/// One JMI element: the session id and the action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JingleMessage {
    /// The Jingle session id (`id` attribute) the message is about.
    pub id: String,
    /// The action.
    pub action: JmiAction,
}

impl JingleMessage {
    /// A message about session `id`.
    pub fn new(id: impl Into<String>, action: JmiAction) -> Self {
        Self {
            id: id.into(),
            action,
        }
    }

    /// A `<propose/>` of one audio description.
    pub fn propose_audio(id: impl Into<String>) -> Self {
        Self::new(
            id,
            JmiAction::Propose {
                media: vec!["audio".to_owned()],
            },
        )
    }

    /// Whether this is a propose whose media are all `audio` (and at least
    /// one). A propose with video or another application must be rejected
    /// with `<unsupported-applications/>` (INTEROP.md E.2).
    pub fn is_audio_only_propose(&self) -> bool {
        match &self.action {
            JmiAction::Propose { media } => {
                !media.is_empty() && media.iter().all(|m| m.eq_ignore_ascii_case("audio"))
            }
            _ => false,
        }
    }

    /// Finds and parses the first JMI child of a `<message/>` stanza.
    ///
    /// Returns `Ok(None)` when the stanza has no child in
    /// `urn:xmpp:jingle-message:0` (or the child is not a known action).
    ///
    /// # Errors
    /// [`Error::Malformed`] when the JMI element lacks its `id`.
    pub fn from_message(stanza: &Element) -> Result<Option<Self>, Error> {
        for c in stanza.children() {
            if c.ns() == ns::JMI && is_action_name(c.name()) {
                return Self::from_element(c).map(Some);
            }
        }
        Ok(None)
    }

    /// Parses a JMI element such as `<proceed xmlns='urn:xmpp:jingle-message:0' id='S'/>`.
    ///
    /// # Errors
    /// [`Error::Malformed`] when the element is not a JMI action in
    /// `urn:xmpp:jingle-message:0`, or lacks a non-empty `id`.
    pub fn from_element(el: &Element) -> Result<Self, Error> {
        if el.ns() != ns::JMI || !is_action_name(el.name()) {
            return Err(Error::Malformed(format!(
                "<{}/> is not a jingle-message action",
                el.name()
            )));
        }
        let id = required(el, "id")?;
        if id.is_empty() {
            return Err(Error::Malformed("empty jingle-message id".to_owned()));
        }
        let reason = || {
            el.children()
                .find(|c| c.name() == "reason")
                .map(Reason::from_element)
        };
        let action = match el.name() {
            "propose" => JmiAction::Propose {
                media: el
                    .children()
                    .filter(|c| c.name() == "description" && c.ns() == ns::JINGLE_RTP)
                    .filter_map(|c| c.attr("media").map(str::to_owned))
                    .collect(),
            },
            "ringing" => JmiAction::Ringing,
            "proceed" => JmiAction::Proceed,
            "accept" => JmiAction::Accept,
            "reject" => JmiAction::Reject { reason: reason() },
            "retract" => JmiAction::Retract { reason: reason() },
            _ => JmiAction::Finish {
                reason: reason(),
                migrated: el
                    .children()
                    .find(|c| c.name() == "migrated")
                    .and_then(|c| c.attr("to").map(str::to_owned)),
            },
        };
        Ok(Self::new(id, action))
    }

    /// Serializes the JMI element alone.
    pub fn to_element(&self) -> Element {
        let mut el = elem(self.action.name(), ns::JMI, &[("id", &self.id)]);
        match &self.action {
            JmiAction::Propose { media } => {
                for m in media {
                    el.append_child(elem("description", ns::JINGLE_RTP, &[("media", m)]));
                }
            }
            JmiAction::Reject { reason } | JmiAction::Retract { reason } => {
                if let Some(r) = reason {
                    el.append_child(r.to_element());
                }
            }
            JmiAction::Finish { reason, migrated } => {
                if let Some(r) = reason {
                    el.append_child(r.to_element());
                }
                if let Some(to) = migrated {
                    el.append_child(elem("migrated", ns::JMI, &[("to", to)]));
                }
            }
            JmiAction::Ringing | JmiAction::Proceed | JmiAction::Accept => {}
        }
        el
    }

    /// Builds the `<message/>` stanza carrying this element
    /// (INTEROP.md E.2/E.3/E.5): `type='chat'`, `id='jm-<action>-<sid>'`,
    /// `from`/`to` as given, the JMI element, a
    /// `<request xmlns='urn:xmpp:receipts'/>` for a propose
    /// ([XEP-0184](https://xmpp.org/extensions/xep-0184.html)), and
    /// `<store xmlns='urn:xmpp:hints'/>`
    /// ([XEP-0334](https://xmpp.org/extensions/xep-0334.html)).
    ///
    /// `to` must be the exact full JID for proceed/reject (Conversations and
    /// Dino check it) and `from` the propose's full JID for a retract.
    pub fn to_message(&self, from: &str, to: &str) -> Element {
        let mut m = Element::bare("message", ns::COMPONENT);
        set_attr(&mut m, "type", "chat");
        set_attr(
            &mut m,
            "id",
            format!("jm-{}-{}", self.action.name(), self.id),
        );
        set_attr(&mut m, "from", from);
        set_attr(&mut m, "to", to);
        m.append_child(self.to_element());
        if matches!(self.action, JmiAction::Propose { .. }) {
            m.append_child(Element::bare("request", ns::RECEIPTS));
        }
        m.append_child(Element::bare("store", ns::HINTS));
        m
    }
}

fn is_action_name(name: &str) -> bool {
    matches!(
        name,
        "propose" | "ringing" | "proceed" | "accept" | "reject" | "retract" | "finish"
    )
}

/// The sid of a JMI propose acknowledged by a delivery receipt
/// `<received xmlns='urn:xmpp:receipts' id='jm-propose-<sid>'/>` in this
/// message ([XEP-0184](https://xmpp.org/extensions/xep-0184.html)), if any.
///
/// Conversations answers our propose with such a receipt when its device
/// starts ringing without sending JMI `<ringing/>` (INTEROP.md E.4); the
/// message id of our propose is `jm-propose-<sid>` (see
/// [`JingleMessage::to_message`]).
pub fn propose_receipt(stanza: &Element) -> Option<&str> {
    stanza
        .children()
        .find(|c| c.name() == "received" && c.ns() == ns::RECEIPTS)?
        .attr("id")?
        .strip_prefix("jm-propose-")
        .filter(|sid| !sid.is_empty())
}
