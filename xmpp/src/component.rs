//! Presence, subscriptions and service discovery for number JIDs.
//!
//! [`Component`] answers what the gateway domain and its number JIDs
//! (`+15551234567@gw.example.com`) must answer by themselves, per
//! INTEROP.md E.1, and hands Jingle and JMI stanzas to the call layer:
//!
//! * presence `subscribe` → `subscribed`, `subscribe` back and available
//!   presence with [XEP-0115](https://xmpp.org/extensions/xep-0115.html) caps
//!   from the fixed resource; `probe` and directed available presence →
//!   available presence with caps; `unsubscribe` → `unavailable`;
//!   available, `unavailable` and `error` presence from users (to a number JID
//!   or the domain) also go to the call layer ([`Action::Presence`]), which
//!   tracks the users' resources and caps; IQ results to the domain go to it
//!   too ([`Action::IqResponse`], answers to its caps queries);
//! * disco#info ([XEP-0030](https://xmpp.org/extensions/xep-0030.html)) for the
//!   domain (`gateway/pstn`) and for number JIDs, bare, full and with the
//!   caps node `node#ver` (`client/phone` and the call features); empty
//!   disco#items; [XEP-0199](https://xmpp.org/extensions/xep-0199.html) pings;
//! * stanza errors ([RFC 6120 §8.3](https://www.rfc-editor.org/rfc/rfc6120#section-8.3)):
//!   `item-not-found` for a localpart that is not E.164, `service-unavailable`
//!   for unhandled IQs and chat messages, `bad-request` / `jid-malformed` for
//!   malformed stanzas; nothing is ever sent in reply to an `error` stanza or
//!   an IQ `result`.
//!
//! Every stanza it produces has a `from` in the component's domain and is in
//! the `jabber:component:accept` namespace, ready for
//! [`crate::stream::Stream::send`].

use std::fmt;

use jid::Jid;
use minidom::Element;

use crate::caps::{self, with_attr, DiscoInfo, Identity, NS_DISCO_INFO, NS_DISCO_ITEMS};
use crate::stream::{NS_COMPONENT, NS_PING};

/// The Jingle namespace ([XEP-0166](https://xmpp.org/extensions/xep-0166.html)).
pub const NS_JINGLE: &str = "urn:xmpp:jingle:1";
/// The Jingle Message Initiation namespace
/// ([XEP-0353](https://xmpp.org/extensions/xep-0353.html)).
pub const NS_JMI: &str = "urn:xmpp:jingle-message:0";
/// The message delivery receipts namespace
/// ([XEP-0184](https://xmpp.org/extensions/xep-0184.html)).
pub const NS_RECEIPTS: &str = "urn:xmpp:receipts";
/// The namespace of stanza error conditions
/// ([RFC 6120 §8.3.3](https://www.rfc-editor.org/rfc/rfc6120#section-8.3.3)).
pub const NS_STANZA_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// The features a number JID announces, exactly those of INTEROP.md E.1.
pub const NUMBER_FEATURES: [&str; 10] = [
    caps::NS_CAPS,
    NS_DISCO_INFO,
    NS_JINGLE,
    "urn:xmpp:jingle:apps:rtp:1",
    "urn:xmpp:jingle:apps:rtp:audio",
    "urn:xmpp:jingle:transports:ice-udp:1",
    "urn:xmpp:jingle:apps:dtls:0",
    NS_JMI,
    "urn:ietf:rfc:3264",
    NS_RECEIPTS,
];

/// The features the gateway domain announces.
pub const DOMAIN_FEATURES: [&str; 3] = [NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING];

/// Settings of a [`Component`]; quinn-style setters return `&mut Self`.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) domain: String,
    pub(crate) caps_node: String,
    pub(crate) identity_name: String,
    pub(crate) gateway_name: String,
    pub(crate) resource: String,
}

impl Config {
    /// Settings for the gateway domain (e.g. `gw.example.com`); the caps
    /// node defaults to `https://DOMAIN/caps`, the resource of number JIDs to
    /// `gw`, both names to `Phone` / `Telephone gateway`.
    pub fn new(domain: impl Into<String>) -> Self {
        let domain = domain.into();
        Self {
            caps_node: format!("https://{domain}/caps"),
            domain,
            identity_name: "Phone".to_owned(),
            gateway_name: "Telephone gateway".to_owned(),
            resource: "gw".to_owned(),
        }
    }

    /// The XEP-0115 `node` of the caps in presence.
    pub fn caps_node(&mut self, node: impl Into<String>) -> &mut Self {
        self.caps_node = node.into();
        self
    }

    /// The `name` of the `client/phone` identity of number JIDs.
    pub fn identity_name(&mut self, name: impl Into<String>) -> &mut Self {
        self.identity_name = name.into();
        self
    }

    /// The `name` of the `gateway/pstn` identity of the domain.
    pub fn gateway_name(&mut self, name: impl Into<String>) -> &mut Self {
        self.gateway_name = name.into();
        self
    }

    /// The one resource of every number JID (INTEROP.md: `N/gw`).
    pub fn resource(&mut self, resource: impl Into<String>) -> &mut Self {
        self.resource = resource.into();
        self
    }
}

/// A stanza for the call layer, addressed to a valid number JID.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// The sender, as stamped by the server (normally a full JID).
    pub from: Jid,
    /// The addressee: the number JID, bare or full.
    pub to: Jid,
    /// The E.164 number of `to`, e.g. `+15551234567`.
    pub number: String,
    /// The whole stanza.
    pub stanza: Element,
}

/// What to do with an incoming stanza, from [`Component::handle_stanza`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Send this stanza to the server.
    Send(Element),
    /// An `<iq type='set'>` carrying `<jingle xmlns='urn:xmpp:jingle:1'/>`;
    /// the call layer must acknowledge it or answer with an error.
    Jingle(Inbound),
    /// A `<message/>` with a JMI element (`propose`, `proceed`, `ringing`,
    /// `accept`, `reject`, `retract`, `finish`); a requested receipt has
    /// already been produced as an [`Action::Send`].
    Jmi(Inbound),
    /// An IQ `result` or `error` to a number JID, or to the domain (then
    /// `number` is empty): the answer to an IQ that the call layer sent. The
    /// call layer matches its `id` and drops it when unknown (only it knows
    /// which ids are outstanding).
    IqResponse(Inbound),
    /// An available, `unavailable` or `error` presence from a user to a number
    /// JID or to the domain (then `number` is empty), for the call layer to
    /// learn the user's online resources and their caps (INTEROP.md E.3);
    /// any answer it needs is already an [`Action::Send`].
    Presence(Inbound),
}

/// The presence and discovery responder (see the module doc).
///
/// It holds no per-peer state: [`Self::handle_stanza`] maps one stanza to
/// the actions it causes.
pub struct Component {
    config: Config,
    number_info: DiscoInfo,
    number_ver: String,
    domain_info: DiscoInfo,
    domain_ver: String,
}

impl fmt::Debug for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Component")
            .field("domain", &self.config.domain)
            .field("ver", &self.number_ver)
            .finish_non_exhaustive()
    }
}

/// Whether `s` is an E.164 number as used in localparts: `+`, then 2 to 15
/// digits, the first one not zero
/// ([ITU-T E.164 §6](https://www.itu.int/rec/T-REC-E.164)).
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// How a stanza is addressed within our domain.
enum Target {
    /// The domain itself (any resource).
    Domain,
    /// A number JID with a valid E.164 localpart.
    Number(String),
    /// A localpart that is not E.164.
    BadNumber,
}

impl Component {
    /// A responder for `config`; computes the caps `ver` once.
    pub fn new(config: Config) -> Self {
        let number_info = DiscoInfo {
            identities: vec![Identity::new(
                "client",
                "phone",
                Some(&config.identity_name),
            )],
            features: NUMBER_FEATURES.iter().map(|f| (*f).to_owned()).collect(),
            forms: Vec::new(),
        };
        let domain_info = DiscoInfo {
            identities: vec![Identity::new("gateway", "pstn", Some(&config.gateway_name))],
            features: DOMAIN_FEATURES.iter().map(|f| (*f).to_owned()).collect(),
            forms: Vec::new(),
        };
        Self {
            number_ver: number_info.ver(),
            domain_ver: domain_info.ver(),
            number_info,
            domain_info,
            config,
        }
    }

    /// The XEP-0115 `ver` of number JIDs.
    pub fn ver(&self) -> &str {
        &self.number_ver
    }

    /// The full JID of a number, with the fixed resource: `N/gw`.
    pub fn number_jid(&self, number: &str) -> String {
        format!("{number}@{}/{}", self.config.domain, self.config.resource)
    }

    /// Available presence with caps from `number`'s full JID to `to`, as sent
    /// on subscription and probe.
    pub fn presence(&self, number: &str, to: &str) -> Element {
        let p = stanza("presence", &self.number_jid(number), to);
        p.append(caps::caps_element(&self.config.caps_node, &self.number_ver))
            .build()
    }

    /// Maps one incoming stanza (an [`crate::stream::Event::Stanza`]) to
    /// replies and work for the call layer. Never fails: a stanza that cannot
    /// be handled gets a stanza error when one can be addressed, else it is
    /// dropped with a log line.
    pub fn handle_stanza(&self, el: Element) -> Vec<Action> {
        let name = el.name();
        if !matches!(name, "iq" | "message" | "presence") {
            tracing::warn!(name, ns = %el.ns(), "dropped a non-stanza element");
            return Vec::new();
        }
        let kind = el.attr("type").unwrap_or("");
        // Never answer an error, nor an IQ result (RFC 6120 §8.3.1).
        let replyable = kind != "error" && !(name == "iq" && kind == "result");
        let Some(from) = el.attr("from").and_then(|f| Jid::new(f).ok()) else {
            tracing::warn!(name, "dropped a stanza without a valid from");
            return Vec::new();
        };
        if el.ns() != NS_COMPONENT {
            return self.error_from_domain(&el, replyable, "modify", "bad-request");
        }
        let Some(to_attr) = el.attr("to") else {
            return self.error_from_domain(&el, replyable, "modify", "bad-request");
        };
        let Ok(to) = Jid::new(to_attr) else {
            return self.error_from_domain(&el, replyable, "modify", "jid-malformed");
        };
        if to.domain().as_str() != self.config.domain {
            return self.error_from_domain(&el, replyable, "cancel", "item-not-found");
        }
        let target = match to.node() {
            None => Target::Domain,
            Some(n) if is_e164(n.as_str()) => Target::Number(n.as_str().to_owned()),
            Some(_) => Target::BadNumber,
        };
        match name {
            "iq" => self.on_iq(el, from, to, target),
            "message" => self.on_message(el, from, to, target),
            _ => self.on_presence(&el, &from, &to, target),
        }
    }

    /// Answers a stanza that [`crate::stream::Stream`] dropped as too large,
    /// too deep or malformed ([`crate::stream::Event::StanzaDropped`]), given
    /// its start tag: `policy-violation` (RFC 6120 §8.3.3.12) unless it is an
    /// error or an IQ result, or cannot be addressed.
    pub fn handle_dropped(&self, head: Option<&Element>) -> Vec<Action> {
        let Some(head) = head else {
            return Vec::new();
        };
        let kind = head.attr("type").unwrap_or("");
        if !matches!(head.name(), "iq" | "message") || kind == "error" || kind == "result" {
            return Vec::new();
        }
        let Some(from) = head.attr("from").filter(|f| Jid::new(f).is_ok()) else {
            return Vec::new();
        };
        let own = head
            .attr("to")
            .and_then(|t| Jid::new(t).ok())
            .filter(|t| t.domain().as_str() == self.config.domain)
            .map(|t| t.to_string())
            .unwrap_or_else(|| self.config.domain.clone());
        vec![Action::Send(error_reply(
            head,
            &own,
            from,
            "modify",
            "policy-violation",
        ))]
    }

    fn on_iq(&self, el: Element, from: Jid, to: Jid, target: Target) -> Vec<Action> {
        let kind = el.attr("type").unwrap_or("");
        let own = to.to_string();
        let err = |etype: &str, cond: &str| {
            vec![Action::Send(error_reply(
                &el,
                &own,
                from.as_str(),
                etype,
                cond,
            ))]
        };
        match kind {
            "result" | "error" => {
                return match target {
                    Target::Number(number) => vec![Action::IqResponse(Inbound {
                        from,
                        to,
                        number,
                        stanza: el,
                    })],
                    Target::Domain => vec![Action::IqResponse(Inbound {
                        from,
                        to,
                        number: String::new(),
                        stanza: el,
                    })],
                    Target::BadNumber => {
                        tracing::debug!(id = el.attr("id"), "dropped an unexpected iq {kind}");
                        Vec::new()
                    }
                };
            }
            "get" | "set" => {}
            _ => return err("modify", "bad-request"),
        }
        if let Target::BadNumber = target {
            return err("cancel", "item-not-found");
        }
        // An IQ get or set has exactly one payload (RFC 6120 §8.2.3).
        let mut children = el.children();
        let (Some(payload), None) = (children.next(), children.next()) else {
            return err("modify", "bad-request");
        };
        let get = kind == "get";
        let result = |query: Option<Element>| {
            let mut b = stanza("iq", &own, from.as_str());
            b = with_attr(b, "type", "result");
            if let Some(id) = el.attr("id") {
                b = with_attr(b, "id", id);
            }
            if let Some(q) = query {
                b = b.append(q);
            }
            vec![Action::Send(b.build())]
        };
        if get && payload.is("ping", NS_PING) {
            return result(None);
        }
        let node = payload.attr("node");
        match target {
            Target::Domain => {
                if get && payload.is("query", NS_DISCO_INFO) {
                    return match node {
                        None => result(Some(self.domain_info.to_query(None))),
                        Some(_) => err("cancel", "item-not-found"),
                    };
                }
                if get && payload.is("query", NS_DISCO_ITEMS) {
                    return result(Some(empty_items(node)));
                }
                err("cancel", "service-unavailable")
            }
            Target::Number(number) => {
                if to
                    .resource()
                    .is_some_and(|r| r.as_str() != self.config.resource)
                {
                    // No such resource (RFC 6121 §8.5.3.2.1).
                    return err("cancel", "service-unavailable");
                }
                if get && payload.is("query", NS_DISCO_INFO) {
                    let caps_node = format!("{}#{}", self.config.caps_node, self.number_ver);
                    return match node {
                        None => result(Some(self.number_info.to_query(None))),
                        Some(n) if n == caps_node => {
                            result(Some(self.number_info.to_query(Some(n))))
                        }
                        Some(_) => err("cancel", "item-not-found"),
                    };
                }
                if get && payload.is("query", NS_DISCO_ITEMS) {
                    return result(Some(empty_items(node)));
                }
                if !get && payload.is("jingle", NS_JINGLE) {
                    return vec![Action::Jingle(Inbound {
                        from,
                        to,
                        number,
                        stanza: el,
                    })];
                }
                err("cancel", "service-unavailable")
            }
            Target::BadNumber => err("cancel", "item-not-found"),
        }
    }

    fn on_message(&self, el: Element, from: Jid, to: Jid, target: Target) -> Vec<Action> {
        if el.attr("type") == Some("error") {
            tracing::debug!(id = el.attr("id"), "dropped a message error");
            return Vec::new();
        }
        let has_body = el.get_child("body", NS_COMPONENT).is_some();
        let own = to.to_string();
        match target {
            Target::BadNumber => vec![Action::Send(error_reply(
                &el,
                &own,
                from.as_str(),
                "cancel",
                "item-not-found",
            ))],
            Target::Domain => {
                if has_body {
                    vec![Action::Send(error_reply(
                        &el,
                        &own,
                        from.as_str(),
                        "cancel",
                        "service-unavailable",
                    ))]
                } else {
                    Vec::new()
                }
            }
            Target::Number(number) => {
                if el.children().any(|c| c.ns() == NS_JMI) {
                    let mut actions = Vec::new();
                    if let (Some(id), true) = (el.attr("id"), el.has_child("request", NS_RECEIPTS))
                    {
                        let received =
                            with_attr(Element::builder("received", NS_RECEIPTS), "id", id);
                        let m = stanza("message", &self.number_jid(&number), from.as_str())
                            .append(received.build());
                        actions.push(Action::Send(m.build()));
                    }
                    actions.push(Action::Jmi(Inbound {
                        from,
                        to,
                        number,
                        stanza: el,
                    }));
                    actions
                } else if has_body {
                    // No text messaging through the gateway.
                    vec![Action::Send(error_reply(
                        &el,
                        &own,
                        from.as_str(),
                        "cancel",
                        "service-unavailable",
                    ))]
                } else {
                    // Chat states, markers, stray receipts: nothing to do.
                    Vec::new()
                }
            }
        }
    }

    /// Answers a presence, and hands availability to the call layer
    /// ([`Action::Presence`]).
    fn on_presence(&self, el: &Element, from: &Jid, to: &Jid, target: Target) -> Vec<Action> {
        let number = match &target {
            Target::Number(n) => Some(n.clone()),
            Target::Domain => Some(String::new()),
            Target::BadNumber => None,
        };
        let mut actions = self.answer_presence(el, from, to, target);
        if let (Some(number), None | Some("unavailable" | "error")) = (number, el.attr("type")) {
            actions.push(Action::Presence(Inbound {
                from: from.clone(),
                to: to.clone(),
                number,
                stanza: el.clone(),
            }));
        }
        actions
    }

    fn answer_presence(&self, el: &Element, from: &Jid, to: &Jid, target: Target) -> Vec<Action> {
        let kind = el.attr("type");
        let bare_from = from.to_bare().to_string();
        match target {
            Target::BadNumber => match kind {
                None | Some("subscribe" | "probe") => vec![Action::Send(error_reply(
                    el,
                    to.as_str(),
                    from.as_str(),
                    "cancel",
                    "item-not-found",
                ))],
                _ => Vec::new(),
            },
            Target::Domain => {
                let domain = &self.config.domain;
                let available = || {
                    stanza("presence", domain, &bare_from)
                        .append(caps::caps_element(&self.config.caps_node, &self.domain_ver))
                        .build()
                };
                match kind {
                    Some("subscribe") => vec![
                        Action::Send(presence_typed(domain, &bare_from, "subscribed")),
                        Action::Send(available()),
                    ],
                    Some("probe") => vec![Action::Send(available())],
                    Some("unsubscribe") => vec![Action::Send(presence_typed(
                        domain,
                        &bare_from,
                        "unavailable",
                    ))],
                    _ => Vec::new(),
                }
            }
            Target::Number(number) => {
                let bare = format!("{number}@{}", self.config.domain);
                let full = self.number_jid(&number);
                match kind {
                    Some("subscribe") => {
                        tracing::debug!("approving a subscription to a number");
                        vec![
                            Action::Send(presence_typed(&bare, &bare_from, "subscribed")),
                            Action::Send(presence_typed(&bare, &bare_from, "subscribe")),
                            Action::Send(self.presence(&number, &bare_from)),
                        ]
                    }
                    Some("probe") => vec![Action::Send(self.presence(&number, from.as_str()))],
                    // Directed available presence: answer in kind.
                    None => vec![Action::Send(self.presence(&number, from.as_str()))],
                    Some("unsubscribe") => {
                        vec![Action::Send(presence_typed(
                            &full,
                            &bare_from,
                            "unavailable",
                        ))]
                    }
                    // subscribed, unsubscribed, unavailable, error and
                    // unknown types need no answer (RFC 6121 §3).
                    _ => Vec::new(),
                }
            }
        }
    }

    /// A stanza error from the domain itself, for stanzas whose `to` cannot
    /// serve as our `from`.
    fn error_from_domain(
        &self,
        el: &Element,
        replyable: bool,
        etype: &str,
        condition: &str,
    ) -> Vec<Action> {
        let (true, Some(from)) = (replyable, el.attr("from")) else {
            tracing::debug!(name = el.name(), condition, "dropped a malformed stanza");
            return Vec::new();
        };
        tracing::debug!(name = el.name(), condition, "answering a malformed stanza");
        vec![Action::Send(error_reply(
            el,
            &self.config.domain,
            from,
            etype,
            condition,
        ))]
    }
}

/// `<NAME xmlns='jabber:component:accept' from=… to=…>`.
fn stanza(name: &str, from: &str, to: &str) -> minidom::ElementBuilder {
    let b = Element::builder(name, NS_COMPONENT);
    with_attr(with_attr(b, "from", from), "to", to)
}

fn presence_typed(from: &str, to: &str, kind: &str) -> Element {
    with_attr(stanza("presence", from, to), "type", kind).build()
}

fn empty_items(node: Option<&str>) -> Element {
    let q = Element::builder("query", NS_DISCO_ITEMS);
    match node {
        Some(n) => with_attr(q, "node", n).build(),
        None => q.build(),
    }
}

/// A stanza error in reply to `orig`
/// ([RFC 6120 §8.3.1](https://www.rfc-editor.org/rfc/rfc6120#section-8.3.1)):
/// same name and id, `type='error'`, addressed back; the payload is not
/// echoed.
pub fn error_reply(orig: &Element, from: &str, to: &str, etype: &str, condition: &str) -> Element {
    let name = match orig.name() {
        n @ ("iq" | "message" | "presence") => n,
        _ => "message",
    };
    let mut b = stanza(name, from, to);
    b = with_attr(b, "type", "error");
    if let Some(id) = orig.attr("id") {
        b = with_attr(b, "id", id);
    }
    let condition = Element::builder(condition, NS_STANZA_ERRORS).build();
    let error = with_attr(Element::builder("error", NS_COMPONENT), "type", etype).append(condition);
    b.append(error.build()).build()
}

#[cfg(test)]
mod tests;
