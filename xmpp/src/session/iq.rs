//! IQ plumbing for Jingle: the parsed Jingle IQ, IQ results and the stanza
//! errors of [XEP-0166 §8](https://xmpp.org/extensions/xep-0166.html#errors)
//! / [RFC 6120 §8.3](https://www.rfc-editor.org/rfc/rfc6120#section-8.3).

use minidom::Element;

use crate::error::Error;
use crate::jingle::xml::{required, set_attr};
use crate::jingle::{ns, Jingle};

/// An `<iq type='set'/>` carrying a `<jingle/>`, with the addressing the
/// session needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JingleIq {
    /// The IQ `id`, echoed in the reply.
    pub id: String,
    /// The sender's JID (the peer, normally a full JID).
    pub from: String,
    /// The addressee (our JID), used as `from` of our replies.
    pub to: String,
    /// The Jingle payload.
    pub jingle: Jingle,
}

impl JingleIq {
    /// Parses a stanza as a Jingle IQ set.
    ///
    /// Returns `Ok(None)` when the stanza is not an `<iq type='set'/>` whose
    /// child is `<jingle xmlns='urn:xmpp:jingle:1'/>` (the stanza namespace,
    /// `jabber:component:accept` or `jabber:client`, is not checked).
    ///
    /// # Errors
    /// [`Error::Malformed`] when it is a Jingle IQ set but lacks `id`, `from`
    /// or `to`, or the `<jingle/>` is malformed (see [`Jingle::from_element`]);
    /// answer it with [`bad_request_reply`].
    pub fn from_stanza(stanza: &Element) -> Result<Option<Self>, Error> {
        if stanza.name() != "iq" || stanza.attr("type") != Some("set") {
            return Ok(None);
        }
        let Some(j) = stanza
            .children()
            .find(|c| c.name() == "jingle" && c.ns() == ns::JINGLE)
        else {
            return Ok(None);
        };
        Ok(Some(Self {
            id: required(stanza, "id")?.to_owned(),
            from: required(stanza, "from")?.to_owned(),
            to: required(stanza, "to")?.to_owned(),
            jingle: Jingle::from_element(j)?,
        }))
    }
}

/// A stanza error condition used in Jingle replies
/// ([RFC 6120 §8.3.3](https://www.rfc-editor.org/rfc/rfc6120#section-8.3.3)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IqErrorCondition {
    /// `bad-request` (type `modify`): malformed Jingle.
    BadRequest,
    /// `conflict` (type `cancel`): with `<tie-break/>`.
    Conflict,
    /// `feature-not-implemented` (type `modify`/`cancel`).
    FeatureNotImplemented,
    /// `item-not-found` (type `cancel`): with `<unknown-session/>`.
    ItemNotFound,
    /// `unexpected-request` (type `wait`): with `<out-of-order/>`.
    UnexpectedRequest,
}

impl IqErrorCondition {
    /// The element name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::Conflict => "conflict",
            Self::FeatureNotImplemented => "feature-not-implemented",
            Self::ItemNotFound => "item-not-found",
            Self::UnexpectedRequest => "unexpected-request",
        }
    }

    /// The error `type` XEP-0166's examples use with this condition.
    fn error_type(self) -> &'static str {
        match self {
            Self::BadRequest | Self::FeatureNotImplemented => "modify",
            Self::Conflict | Self::ItemNotFound => "cancel",
            Self::UnexpectedRequest => "wait",
        }
    }
}

/// A Jingle-specific error condition in `urn:xmpp:jingle:errors:1`
/// ([XEP-0166 §10](https://xmpp.org/extensions/xep-0166.html#errors)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JingleErrorCondition {
    /// `<out-of-order/>`: the action is not valid in the session's state.
    OutOfOrder,
    /// `<tie-break/>`: simultaneous conflicting requests (ICE restart glare).
    TieBreak,
    /// `<unknown-session/>`: no session with this sid (for this peer).
    UnknownSession,
    /// `<unsupported-info/>`: a session-info payload we do not understand.
    UnsupportedInfo,
}

impl JingleErrorCondition {
    /// The element name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OutOfOrder => "out-of-order",
            Self::TieBreak => "tie-break",
            Self::UnknownSession => "unknown-session",
            Self::UnsupportedInfo => "unsupported-info",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "out-of-order" => Self::OutOfOrder,
            "tie-break" => Self::TieBreak,
            "unknown-session" => Self::UnknownSession,
            "unsupported-info" => Self::UnsupportedInfo,
            _ => return None,
        })
    }
}

/// `<iq type='result'/>` with `id`, `from`, `to`.
pub(crate) fn iq_result(id: &str, from: &str, to: &str) -> Element {
    let mut iq = Element::bare("iq", ns::COMPONENT);
    set_attr(&mut iq, "type", "result");
    set_attr(&mut iq, "id", id);
    set_attr(&mut iq, "from", from);
    set_attr(&mut iq, "to", to);
    iq
}

/// `<iq type='error'/>` with a stanza condition and an optional Jingle one.
pub(crate) fn iq_error(
    id: &str,
    from: &str,
    to: &str,
    condition: IqErrorCondition,
    jingle: Option<JingleErrorCondition>,
) -> Element {
    let mut iq = Element::bare("iq", ns::COMPONENT);
    set_attr(&mut iq, "type", "error");
    set_attr(&mut iq, "id", id);
    set_attr(&mut iq, "from", from);
    set_attr(&mut iq, "to", to);
    let mut error = Element::bare("error", ns::COMPONENT);
    set_attr(&mut error, "type", condition.error_type());
    error.append_child(Element::bare(condition.as_str(), ns::STANZAS));
    if let Some(j) = jingle {
        error.append_child(Element::bare(j.as_str(), ns::JINGLE_ERRORS));
    }
    iq.append_child(error);
    iq
}

/// An `<iq type='set'/>` with a Jingle payload.
pub(crate) fn iq_set(id: &str, from: &str, to: &str, jingle: &Jingle) -> Element {
    let mut iq = Element::bare("iq", ns::COMPONENT);
    set_attr(&mut iq, "type", "set");
    set_attr(&mut iq, "id", id);
    set_attr(&mut iq, "from", from);
    set_attr(&mut iq, "to", to);
    iq.append_child(jingle.to_element());
    iq
}

/// The error reply to an `<iq type='get'|'set'/>` stanza: `from`/`to`
/// swapped, same `id`, `<error/>` with `condition` and the optional Jingle
/// condition.
///
/// Returns `None` when the stanza is not an IQ get/set with `id`, `from` and
/// `to` (never answer a result or an error, RFC 6120 §8.2.3).
pub fn error_reply(
    stanza: &Element,
    condition: IqErrorCondition,
    jingle: Option<JingleErrorCondition>,
) -> Option<Element> {
    if stanza.name() != "iq" || !matches!(stanza.attr("type"), Some("get" | "set")) {
        return None;
    }
    Some(iq_error(
        stanza.attr("id")?,
        stanza.attr("to")?,
        stanza.attr("from")?,
        condition,
        jingle,
    ))
}

/// The reply to a Jingle IQ whose sid matches no session of its sender:
/// `item-not-found` + `<unknown-session/>`
/// ([XEP-0166 §10](https://xmpp.org/extensions/xep-0166.html#errors)),
/// as chan_motif and Conversations send it.
pub fn unknown_session_reply(iq: &JingleIq) -> Element {
    iq_error(
        &iq.id,
        &iq.to,
        &iq.from,
        IqErrorCondition::ItemNotFound,
        Some(JingleErrorCondition::UnknownSession),
    )
}

/// The reply to a stanza for which [`JingleIq::from_stanza`] returned an
/// error: `bad-request`. `None` when the stanza cannot be answered (see
/// [`error_reply`]).
pub fn bad_request_reply(stanza: &Element) -> Option<Element> {
    error_reply(stanza, IqErrorCondition::BadRequest, None)
}

/// A response (`result` or `error`) to one of our IQs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IqResponse {
    Result,
    Error {
        /// The stanza condition's element name, e.g. `service-unavailable`.
        condition: String,
        jingle: Option<JingleErrorCondition>,
    },
}

/// Reads an `<iq type='result'|'error'/>`: its id and what it says.
pub(crate) fn parse_response(stanza: &Element) -> Option<(&str, IqResponse)> {
    if stanza.name() != "iq" {
        return None;
    }
    let id = stanza.attr("id")?;
    match stanza.attr("type")? {
        "result" => Some((id, IqResponse::Result)),
        "error" => {
            let error = stanza.children().find(|c| c.name() == "error");
            let condition = error
                .and_then(|e| e.children().find(|c| c.ns() == ns::STANZAS))
                .map_or_else(|| "undefined-condition".to_owned(), |c| c.name().to_owned());
            let jingle = error
                .and_then(|e| e.children().find(|c| c.ns() == ns::JINGLE_ERRORS))
                .and_then(|c| JingleErrorCondition::parse(c.name()));
            Some((id, IqResponse::Error { condition, jingle }))
        }
        _ => None,
    }
}
