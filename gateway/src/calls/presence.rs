//! What the gateway knows of its users' devices, for ringing them on an inbound call
//! (INTEROP.md E.1 and E.3): the online resources of each bare JID with their presence
//! `show` and `priority` ([RFC 6121 §4.7](https://www.rfc-editor.org/rfc/rfc6121#section-4.7)),
//! and their features learnt from entity capabilities
//! ([XEP-0115](https://xmpp.org/extensions/xep-0115.html)): the `ver` of a `<c/>` in
//! presence is looked up with one disco#info query
//! ([XEP-0030](https://xmpp.org/extensions/xep-0030.html)) and the answer cached by
//! `ver` once its hash checks out.
//!
//! Users send presence to the gateway when they are subscribed to a number JID or to
//! the gateway's domain. [`Presences::ring_target`] then picks how an inbound call
//! rings (like cheogram-sip): JMI to the bare JID when a resource supports JMI or
//! nothing is known, else `session-initiate` straight to the most available resource
//! that supports Jingle RTP audio.
//!
//! Sans-IO (STYLE.md R2): [`Presences::handle_presence`] and
//! [`Presences::handle_iq_response`] in, [`Presences::poll_transmit`] out (the disco
//! queries). Memory is bounded: at most [`MAX_RESOURCES`] resources per user and
//! [`MAX_USERS`] users (an unavailable presence drops its resource, and a user without
//! resources is forgotten), [`MAX_CAPS`] cached `ver`s and [`MAX_PENDING`] outstanding
//! queries (the oldest are forgotten first).

use std::collections::{HashMap, HashSet, VecDeque};

use jid::{BareJid, Jid};
use minidom::Element;
use xmpp::caps::{DiscoInfo, NS_CAPS, NS_DISCO_INFO};

/// JMI ([XEP-0353](https://xmpp.org/extensions/xep-0353.html)).
pub const NS_JMI: &str = "urn:xmpp:jingle-message:0";
/// The features a resource needs for a direct `session-initiate` of an audio call:
/// Jingle, RTP, audio, ICE-UDP and DTLS-SRTP
/// ([XEP-0167 §11](https://xmpp.org/extensions/xep-0167.html#support)).
pub const RTP_AUDIO_FEATURES: [&str; 5] = [
    "urn:xmpp:jingle:1",
    "urn:xmpp:jingle:apps:rtp:1",
    "urn:xmpp:jingle:apps:rtp:audio",
    "urn:xmpp:jingle:transports:ice-udp:1",
    "urn:xmpp:jingle:apps:dtls:0",
];
/// Online resources kept per user; a new one beyond this replaces the least available.
pub const MAX_RESOURCES: usize = 16;
/// Users kept; a new one beyond this replaces the oldest.
pub const MAX_USERS: usize = 100_000;
/// Cached caps `ver`s; a new one beyond this replaces the oldest.
pub const MAX_CAPS: usize = 1_000;
/// Outstanding disco#info queries; a new one beyond this forgets the oldest.
pub const MAX_PENDING: usize = 256;
const NS_CLIENT_COMPONENT: &str = "jabber:component:accept";

/// A presence `show` ([RFC 6121 §4.7.2.1](https://www.rfc-editor.org/rfc/rfc6121#section-4.7.2.1)),
/// ordered from least to most available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Show {
    /// `dnd`.
    Dnd,
    /// `xa`.
    Xa,
    /// `away`.
    Away,
    /// No `<show/>`: online.
    Online,
    /// `chat`.
    Chat,
}

impl Show {
    fn parse(s: Option<&str>) -> Self {
        match s {
            Some("chat") => Self::Chat,
            Some("away") => Self::Away,
            Some("xa") => Self::Xa,
            Some("dnd") => Self::Dnd,
            _ => Self::Online,
        }
    }
}

/// How an inbound call rings the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingTarget {
    /// A JMI `<propose/>` to the bare JID: a resource supports JMI, some resource's
    /// features are not known yet, or no presence is known at all (offline-push clients
    /// still ring).
    Jmi,
    /// `session-initiate` straight to this full JID: no online resource supports JMI and
    /// this is the most available one that supports Jingle RTP audio.
    Direct(String),
}

#[derive(Debug, Clone)]
struct Resource {
    show: Show,
    priority: i8,
    /// The caps `ver` (hash `sha-1`) of its last presence.
    ver: Option<String>,
    /// Its features when learnt without a cacheable `ver` (no caps, another hash, or a
    /// result whose hash did not match).
    features: Option<HashSet<String>>,
    /// Order of arrival, for tie-breaks and eviction.
    seq: u64,
}

#[derive(Debug)]
struct Pending {
    id: String,
    /// The JID the query was sent to.
    to: String,
    /// The `ver` asked about (none: a query without node).
    ver: Option<String>,
}

/// Online resources and caps of the gateway's users (see the module doc).
#[derive(Debug, Default)]
pub struct Presences {
    users: HashMap<BareJid, HashMap<String, Resource>>,
    user_order: VecDeque<BareJid>,
    caps: HashMap<String, HashSet<String>>,
    caps_order: VecDeque<String>,
    pending: VecDeque<Pending>,
    transmits: VecDeque<Element>,
    seq: u64,
}

impl Presences {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles a `<presence/>` from a user (to a number JID or the domain; `to` is the
    /// JID it was addressed to, the disco query is sent from it): available presence
    /// records the resource (and queries its caps when unknown), `unavailable` or
    /// `error` drops it. Other types (subscriptions, probes) are ignored.
    pub fn handle_presence(&mut self, stanza: &Element, from: &Jid, to: &Jid) {
        let Some(resource) = from.resource().map(|r| r.as_str().to_owned()) else {
            return;
        };
        let user = from.to_bare();
        match stanza.attr("type") {
            None => {}
            Some("unavailable" | "error") => {
                if let Some(rs) = self.users.get_mut(&user) {
                    rs.remove(&resource);
                    if rs.is_empty() {
                        self.users.remove(&user);
                        self.user_order.retain(|u| *u != user);
                    }
                }
                return;
            }
            Some(_) => return,
        }
        let show = Show::parse(
            stanza
                .get_child("show", NS_CLIENT_COMPONENT)
                .map(Element::text)
                .as_deref(),
        );
        let priority = stanza
            .get_child("priority", NS_CLIENT_COMPONENT)
            .and_then(|p| p.text().trim().parse::<i8>().ok())
            .unwrap_or(0);
        let caps = stanza.get_child("c", NS_CAPS);
        let sha1_ver = caps
            .filter(|c| c.attr("hash") == Some("sha-1"))
            .and_then(|c| c.attr("ver"))
            .map(str::to_owned);
        let node = caps.and_then(|c| c.attr("node")).map(str::to_owned);
        self.seq += 1;
        let seq = self.seq;
        if !self.users.contains_key(&user) {
            if self.users.len() >= MAX_USERS {
                if let Some(old) = self.user_order.pop_front() {
                    self.users.remove(&old);
                }
            }
            self.user_order.push_back(user.clone());
        }
        let rs = self.users.entry(user).or_default();
        // The same caps as before: what was learnt for the resource still holds.
        let kept = rs
            .get(&resource)
            .filter(|r| r.ver == sha1_ver)
            .and_then(|r| r.features.clone());
        if !rs.contains_key(&resource) && rs.len() >= MAX_RESOURCES {
            // Replace the least available (lowest priority, then show, then oldest).
            if let Some(worst) = rs
                .iter()
                .min_by_key(|(_, r)| (r.priority, r.show, r.seq))
                .map(|(k, _)| k.clone())
            {
                rs.remove(&worst);
            }
        }
        rs.insert(
            resource,
            Resource {
                show,
                priority,
                ver: sha1_ver.clone(),
                features: kept,
                seq,
            },
        );
        let needs_query = match &sha1_ver {
            Some(v) => {
                !self.caps.contains_key(v)
                    && !self.pending.iter().any(|p| p.ver.as_ref() == Some(v))
            }
            None => !self.resource_known(from),
        };
        if needs_query {
            let query_node = match (&sha1_ver, &node) {
                (Some(v), Some(n)) => Some(format!("{n}#{v}")),
                _ => None,
            };
            self.query(to.as_str(), from.as_str(), sha1_ver, query_node);
        }
    }

    fn resource_known(&self, full: &Jid) -> bool {
        let Some(res) = full.resource() else {
            return false;
        };
        self.users
            .get(&full.to_bare())
            .and_then(|rs| rs.get(res.as_str()))
            .is_some_and(|r| r.features.is_some())
            || self.pending.iter().any(|p| p.to == full.as_str())
    }

    fn query(&mut self, from: &str, to: &str, ver: Option<String>, node: Option<String>) {
        self.seq += 1;
        let id = format!("caps-{}", self.seq);
        let node_attr = node
            .as_ref()
            .map_or(String::new(), |n| format!(" node='{}'", escape(n)));
        let xml = format!(
            "<iq xmlns='{NS_CLIENT_COMPONENT}' type='get' id='{id}' from='{}' to='{}'>\
             <query xmlns='{NS_DISCO_INFO}'{node_attr}/></iq>",
            escape(from),
            escape(to)
        );
        let Ok(iq) = xml.parse::<Element>() else {
            return;
        };
        tracing::debug!(%to, ?node, "caps query");
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(Pending {
            id,
            to: to.to_owned(),
            ver,
        });
        self.transmits.push_back(iq);
    }

    /// Handles an IQ `result` or `error`; returns whether it answered one of our disco
    /// queries (then it is consumed). A result whose `ver` matches (XEP-0115 §5.4) is
    /// cached for every resource with that `ver`; otherwise its features count for the
    /// queried resource only. An error leaves the resource's features unknown.
    pub fn handle_iq_response(&mut self, stanza: &Element) -> bool {
        let (Some(id), Some(from)) = (stanza.attr("id"), stanza.attr("from")) else {
            return false;
        };
        let Some(i) = self.pending.iter().position(|p| p.id == id && p.to == from) else {
            return false;
        };
        let p = self.pending.remove(i).expect("found");
        let info = match stanza.attr("type") {
            Some("result") => stanza
                .get_child("query", NS_DISCO_INFO)
                .and_then(|q| DiscoInfo::from_query(q).ok()),
            _ => None,
        };
        let Some(info) = info else {
            tracing::debug!(%from, "caps query failed");
            return true;
        };
        let features: HashSet<String> = info.features.iter().cloned().collect();
        tracing::info!(
            %from,
            jmi = features.contains(NS_JMI),
            rtp_audio = RTP_AUDIO_FEATURES.iter().all(|f| features.contains(*f)),
            "caps learnt"
        );
        match p.ver {
            Some(ver) if info.ver() == ver => {
                if self.caps.len() >= MAX_CAPS {
                    if let Some(old) = self.caps_order.pop_front() {
                        self.caps.remove(&old);
                    }
                }
                self.caps_order.push_back(ver.clone());
                self.caps.insert(ver, features);
            }
            ver => {
                if ver.is_some() {
                    tracing::debug!(%from, "caps ver mismatch: not cached");
                }
                if let Ok(full) = Jid::new(from) {
                    if let (Some(res), Some(rs)) =
                        (full.resource(), self.users.get_mut(&full.to_bare()))
                    {
                        if let Some(r) = rs.get_mut(res.as_str()) {
                            r.features = Some(features);
                        }
                    }
                }
            }
        }
        true
    }

    /// The next disco#info query to send.
    pub fn poll_transmit(&mut self) -> Option<Element> {
        self.transmits.pop_front()
    }

    fn features_of<'a>(&'a self, r: &'a Resource) -> Option<&'a HashSet<String>> {
        r.features
            .as_ref()
            .or_else(|| r.ver.as_ref().and_then(|v| self.caps.get(v)))
    }

    /// How an inbound call to `user` rings (see [`RingTarget`]).
    pub fn ring_target(&self, user: &BareJid) -> RingTarget {
        let Some(rs) = self.users.get(user) else {
            return RingTarget::Jmi;
        };
        let mut best: Option<(&String, &Resource)> = None;
        for (name, r) in rs {
            let Some(f) = self.features_of(r) else {
                // Unknown features: it may support JMI.
                return RingTarget::Jmi;
            };
            if f.contains(NS_JMI) {
                return RingTarget::Jmi;
            }
            if !RTP_AUDIO_FEATURES.iter().all(|x| f.contains(*x)) {
                continue;
            }
            let better = best.is_none_or(|(_, b)| {
                (r.priority, r.show, std::cmp::Reverse(r.seq))
                    > (b.priority, b.show, std::cmp::Reverse(b.seq))
            });
            if better {
                best = Some((name, r));
            }
        }
        match best {
            Some((name, _)) => RingTarget::Direct(format!("{user}/{name}")),
            None => RingTarget::Jmi,
        }
    }

    /// The number of users with online resources.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// The number of cached caps `ver`s.
    pub fn caps_count(&self) -> usize {
        self.caps.len()
    }
}

/// `s` escaped for an XML attribute value in single quotes.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
mod tests;
