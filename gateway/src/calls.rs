//! The call layer on the XMPP side: JMI ([XEP-0353](https://xmpp.org/extensions/xep-0353.html))
//! proposals and Jingle ([XEP-0166](https://xmpp.org/extensions/xep-0166.html)) sessions
//! addressed to number JIDs.
//!
//! Built with [`Calls::bridged`] (a SIP user agent and the trunks of `[[sip.trunks]]`),
//! it places outbound calls (INTEROP.md E.2): see [`outbound`] for the steps. Built with
//! [`Calls::new`] (no SIP user agent: no trunk configured, or its socket could not be
//! bound) it does the first steps of an outbound call, then ends the call with a reason
//! the client shows, never a silent hang:
//!
//! - a JMI `<propose/>` from a JID that `[routing]` allows, for a number that is neither
//!   blocked nor unroutable, gets `<proceed/>` from the number's full JID (`N/gw`) to the
//!   proposer's full JID; any other propose gets `<reject/>` with a `<reason/>` and a
//!   `<text/>` that says why (`<unsupported-applications/>` for video);
//! - a `session-initiate` is acknowledged (the [`JingleSession`] answers every Jingle IQ),
//!   then ended with `session-terminate`: `<failed-application/>` and a text saying that
//!   calls are not bridged yet, or `<decline/>` for a caller `[routing]` does not allow;
//! - on shutdown ([`Calls::terminate_all`]) every session gets `session-terminate` and every
//!   proceeded proposal a JMI `<finish/>`.
//!
//! [`Calls`] is sans-IO like the cores (STYLE.md R2): `handle_*` inputs with `now`, then
//! drain [`Calls::poll_transmit`] into the XMPP stream and re-arm the timer from
//! [`Calls::poll_timeout`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use minidom::Element;
use tokio::sync::mpsc;
use xmpp::component::Inbound;
use xmpp::jingle::{Action, Reason, ReasonCondition};
use xmpp::jmi::{JingleMessage, JmiAction};
use xmpp::session::{self, Event, JingleIq, JingleSession, SessionConfig, State};

use crate::config::{Config, EarlyMedia};
use crate::media_driver::BindParams;
use crate::routing::{CallSlots, Router};

mod bridged;
mod inbound;
pub mod outbound;
pub mod presence;

use outbound::{Backend, OutCall, Redactor};
pub use outbound::{CallInput, CallKey};

/// The text of the reason that ends a call while calls cannot be bridged to SIP.
pub const NOT_BRIDGED_TEXT: &str = "calls to the telephone network are not bridged yet";

/// A proceeded JMI proposal waiting for the caller's `session-initiate`.
#[derive(Debug)]
struct Proposal {
    /// The number JID's full JID we answered from.
    local: String,
    /// When the proposal is forgotten if no session-initiate came.
    expires: Instant,
    /// The call already ended (SIP failure, media failure): the session-initiate that
    /// follows is ended with this reason.
    failed: Option<Reason>,
}

/// The XMPP-side call layer (see the module doc).
///
/// # Method categories
/// - B. input: [`handle_jmi`](Self::handle_jmi), [`handle_jingle`](Self::handle_jingle),
///   [`handle_iq_response`](Self::handle_iq_response), [`handle_timeout`](Self::handle_timeout);
/// - C. commands: [`terminate_all`](Self::terminate_all);
/// - D. output: [`poll_transmit`](Self::poll_transmit), [`poll_timeout`](Self::poll_timeout),
///   and [`is_idle`](Self::is_idle).
///
/// After every input or command, drain `poll_transmit` (stanzas to send, in order) and
/// re-arm the timer from `poll_timeout`.
#[derive(Debug)]
pub struct Calls {
    router: Router,
    domain: String,
    resource: String,
    proposal_timeout: Duration,
    session_config: SessionConfig,
    /// Sessions by (peer full JID, sid).
    sessions: HashMap<(String, String), JingleSession>,
    /// Proceeded proposals by (proposer full JID, sid).
    proposals: HashMap<(String, String), Proposal>,
    transmits: VecDeque<Element>,
    /// The SIP side, when calls are bridged.
    backend: Option<Backend>,
    /// Bridged outbound calls.
    out_calls: HashMap<CallKey, OutCall>,
    /// SIP Call-ID → call.
    by_sip: HashMap<String, CallKey>,
    slots: CallSlots,
    next_call: u64,
    /// Inbound calls by Jingle/JMI sid.
    in_calls: HashMap<String, inbound::InCall>,
    /// SIP Call-ID → inbound sid.
    in_by_sip: HashMap<String, String>,
    /// The users' online resources and caps: how inbound calls ring them.
    presences: presence::Presences,
    /// `calls.direct_initiate`: `session-initiate` to a user without JMI.
    direct_initiate: bool,
    /// `calls.early_media`: accept the session at a 183 with SDP, or only at the 200.
    early_media: EarlyMedia,
    /// `calls.outbound_ring_timeout`: the wait for the trunk's 200 after an INVITE.
    outbound_ring_timeout: Duration,
    /// `log.redact_numbers`: how phone numbers appear in log lines.
    redactor: Redactor,
}

impl Calls {
    /// A call layer for `config`: `[routing]` decides who may call out, `[xmpp]` gives the
    /// domain and resource of number JIDs, and a proceeded proposal is forgotten after
    /// `calls.ring_timeout` without `session-initiate`.
    pub fn new(config: &Config) -> Self {
        Self {
            router: Router::from_config(config),
            domain: config.xmpp.domain.clone(),
            resource: config.xmpp.resource.clone(),
            proposal_timeout: config.calls.ring_timeout,
            session_config: SessionConfig::default(),
            sessions: HashMap::new(),
            proposals: HashMap::new(),
            transmits: VecDeque::new(),
            backend: None,
            out_calls: HashMap::new(),
            by_sip: HashMap::new(),
            slots: config.call_slots(),
            next_call: 0,
            in_calls: HashMap::new(),
            in_by_sip: HashMap::new(),
            presences: presence::Presences::new(),
            direct_initiate: config.calls.direct_initiate,
            early_media: config.calls.early_media,
            outbound_ring_timeout: config.calls.outbound_ring_timeout,
            redactor: Redactor::new(config.log.redact_numbers),
        }
    }

    /// A call layer that bridges outbound calls to the trunks of `config` through `ua`
    /// (INTEROP.md E.2). The call's tasks (media drivers) report on `inputs`: feed what
    /// arrives on its receiver to [`handle_input`](Self::handle_input), and the user
    /// agent's events to [`handle_sip`](Self::handle_sip).
    ///
    /// Media sockets bind to `[media] bind_addresses` in `port_min..=port_max`; our SDP
    /// announces `[media] public_ipv4` when set.
    pub fn bridged(
        config: &Config,
        ua: sip::UserAgent,
        inputs: mpsc::UnboundedSender<CallInput>,
    ) -> Self {
        let m = &config.media;
        let mut media_config = media::Config::default();
        media_config
            .no_media_timeout(m.no_media_timeout)
            .reorder_max_delay(m.jitter_buffer_max)
            .reorder_min_delay(m.jitter_buffer_min)
            .allow_unencrypted_client(m.allow_unencrypted_client_media);
        let trunk_ip = m
            .bind_addresses
            .iter()
            .copied()
            .find(std::net::IpAddr::is_ipv4)
            .or_else(|| m.bind_addresses.first().copied())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let mut calls = Self::new(config);
        calls.backend = Some(Backend {
            ua,
            inputs,
            policy: config.codec_policy(),
            media_config: Arc::new(media_config),
            bind: BindParams {
                client_ips: m.bind_addresses.clone(),
                trunk_ip,
                ports: Some(m.port_min..=m.port_max),
            },
            announce: m.public_ipv4.map(std::net::IpAddr::V4),
        });
        calls
    }

    /// Prefers G.711 end to end when the client offers the trunk's codec (no
    /// transcoding); the default comes from `media.prefer_g711_passthrough`.
    pub fn prefer_g711_passthrough(&mut self, prefer: bool) -> &mut Self {
        if let Some(b) = &mut self.backend {
            b.policy.prefer_g711_passthrough = prefer;
        }
        self
    }

    /// Handles a `<message/>` carrying a JMI element, addressed to a number JID
    /// ([`xmpp::component::Action::Jmi`]).
    pub fn handle_jmi(&mut self, now: Instant, inbound: Inbound) {
        let jm = match JingleMessage::from_message(&inbound.stanza) {
            Ok(Some(jm)) => jm,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "malformed jingle message dropped");
                return;
            }
        };
        let peer = inbound.from.to_string();
        if self.in_calls.contains_key(&jm.id) {
            self.on_inbound_jmi(now, &peer, &jm);
            return;
        }
        let local = self.local_jid(&inbound.number);
        match &jm.action {
            JmiAction::Propose { .. } => self.on_propose(now, &inbound, &jm, peer, local),
            JmiAction::Retract { .. } => {
                let key = (peer, jm.id.clone());
                if self.proposals.remove(&key).is_some() {
                    tracing::info!(sid = %jm.id, "call proposal retracted");
                }
                if self.out_calls.contains_key(&key) {
                    self.end_call(
                        now,
                        &key,
                        Reason::new(ReasonCondition::Cancel),
                        outbound::HungUpBy::Client,
                    );
                }
            }
            other => {
                tracing::debug!(sid = %jm.id, action = other.name(), "jingle message ignored");
            }
        }
    }

    fn on_propose(
        &mut self,
        now: Instant,
        inbound: &Inbound,
        jm: &JingleMessage,
        peer: String,
        local: String,
    ) {
        let refusal = if !jm.is_audio_only_propose() {
            Some(Reason::with_text(
                ReasonCondition::UnsupportedApplications,
                "only audio calls are supported",
            ))
        } else {
            self.refusal(&inbound.from.to_bare(), &inbound.number)
        };
        let refusal = match refusal {
            None if self.backend.is_some() => {
                let key = (peer.clone(), jm.id.clone());
                self.start_call(now, key, &inbound.from.to_bare(), &inbound.number)
                    .err()
            }
            other => other,
        };
        if refusal.is_none() {
            self.receipt(inbound, &local, &peer);
        }
        let reply = match refusal {
            Some(reason) => {
                tracing::info!(sid = %jm.id, reason = reason.condition.as_str(), "call proposal rejected");
                JmiAction::Reject {
                    reason: Some(reason),
                }
            }
            None => {
                tracing::info!(sid = %jm.id, "call proposal accepted");
                self.proposals.insert(
                    (peer.clone(), jm.id.clone()),
                    Proposal {
                        local: local.clone(),
                        expires: now + self.proposal_timeout,
                        failed: None,
                    },
                );
                JmiAction::Proceed
            }
        };
        self.transmits
            .push_back(JingleMessage::new(jm.id.clone(), reply).to_message(&local, &peer));
    }

    /// Why `caller` may not call `number`, or `None` when it may.
    fn refusal(&self, caller: &jid::BareJid, number: &str) -> Option<Reason> {
        self.router
            .authorize_outbound(caller)
            .and_then(|()| self.router.route(number))
            .err()
            .map(|denied| denied.jingle_reason())
    }

    /// Handles an `<iq type='set'/>` carrying `<jingle/>`, addressed to a number JID
    /// ([`xmpp::component::Action::Jingle`]): every such IQ is answered.
    pub fn handle_jingle(&mut self, now: Instant, inbound: Inbound) {
        let Ok(Some(iq)) = JingleIq::from_stanza(&inbound.stanza) else {
            tracing::debug!("malformed jingle iq");
            self.transmits
                .extend(session::bad_request_reply(&inbound.stanza));
            return;
        };
        let key = (iq.from.clone(), iq.jingle.sid.clone());
        if let Some(s) = self.sessions.get_mut(&key) {
            s.handle_iq(now, iq);
        } else if iq.jingle.action == Action::SessionInitiate {
            let proposal = self.proposals.remove(&key);
            let jingle = iq.jingle.clone();
            let s = match JingleSession::responder(now, &self.session_config, iq) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "session-initiate refused");
                    return;
                }
            };
            tracing::info!(sid = %key.1, proposed = proposal.is_some(), "session-initiate");
            self.sessions.insert(key.clone(), s);
            if self.backend.is_some() {
                self.on_session_initiate(now, &key, &inbound, &jingle, proposal);
            }
        } else {
            self.transmits
                .push_back(session::unknown_session_reply(&iq));
            return;
        }
        self.drain_key(now, &key);
    }

    /// Handles a user's available, `unavailable` or `error` presence to a number JID or
    /// the domain ([`xmpp::component::Action::Presence`]): tracks its online resources
    /// and queries their caps (see [`presence`]), which decide how inbound calls ring.
    pub fn handle_presence(&mut self, _now: Instant, inbound: Inbound) {
        self.presences
            .handle_presence(&inbound.stanza, &inbound.from, &inbound.to);
        self.transmits
            .extend(std::iter::from_fn(|| self.presences.poll_transmit()));
    }

    /// Handles an IQ `result` or `error` addressed to a number JID or the domain
    /// ([`xmpp::component::Action::IqResponse`]): answers to our caps queries and to
    /// Jingle IQs; one that matches no IQ we sent is dropped.
    pub fn handle_iq_response(&mut self, now: Instant, inbound: Inbound) {
        if self.presences.handle_iq_response(&inbound.stanza) {
            return;
        }
        let key = self
            .sessions
            .iter_mut()
            .find_map(|(k, s)| s.handle_response(now, &inbound.stanza).then(|| k.clone()));
        match key {
            Some(key) => self.drain_key(now, &key),
            None => {
                tracing::debug!(id = ?inbound.stanza.attr("id"), "unmatched iq response dropped")
            }
        }
    }

    /// Fires the timers due at `now`: IQ timeouts of sessions, expired proposals,
    /// unanswered outbound calls (`calls.outbound_ring_timeout`), unanswered inbound
    /// calls (`calls.ring_timeout`).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.outbound_timeouts(now);
        let due: Vec<(String, String)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.poll_timeout().is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(s) = self.sessions.get_mut(&key) {
                s.handle_timeout(now);
            }
            self.drain_key(now, &key);
        }
        self.inbound_timeouts(now);
        self.proposals.retain(|(_, sid), p| {
            let keep = p.expires > now;
            if !keep {
                tracing::info!(%sid, "call proposal expired without session-initiate");
            }
            keep
        });
    }

    /// Ends every call: `session-terminate` with `reason` for each session, and a JMI
    /// `<finish/>` with `reason` for each proceeded proposal (graceful shutdown).
    pub fn terminate_all(&mut self, now: Instant, reason: &Reason) {
        let calls: Vec<CallKey> = self.out_calls.keys().cloned().collect();
        for key in calls {
            self.end_call(now, &key, reason.clone(), outbound::HungUpBy::Gateway);
        }
        let inbound: Vec<String> = self.in_calls.keys().cloned().collect();
        for sid in inbound {
            self.end_inbound(now, &sid, reason.clone(), outbound::HungUpBy::Gateway);
        }
        let keys: Vec<(String, String)> = self.sessions.keys().cloned().collect();
        for key in keys {
            if let Some(s) = self.sessions.get_mut(&key) {
                if s.state() != State::Ended {
                    s.terminate(now, reason.clone());
                }
            }
            self.drain_key(now, &key);
        }
        for ((peer, sid), p) in self.proposals.drain() {
            let finish = JmiAction::Finish {
                reason: Some(reason.clone()),
                migrated: None,
            };
            self.transmits
                .push_back(JingleMessage::new(sid, finish).to_message(&p.local, &peer));
        }
    }

    /// The next stanza to send, in order.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Element> {
        self.transmits.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next; changes after
    /// every input and command.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sessions = self
            .sessions
            .values()
            .filter_map(JingleSession::poll_timeout);
        let proposals = self.proposals.values().map(|p| p.expires);
        sessions
            .chain(proposals)
            .chain(self.inbound_deadline())
            .chain(self.outbound_deadline())
            .min()
    }

    /// Whether no session or proposal is left (shutdown can complete).
    pub fn is_idle(&self) -> bool {
        self.sessions.is_empty()
            && self.proposals.is_empty()
            && self.out_calls.is_empty()
            && self.in_calls.is_empty()
    }

    /// The number of bridged calls in progress (from proceed until both legs ended).
    pub fn call_count(&self) -> usize {
        self.out_calls.len()
    }

    /// The number of live Jingle sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    fn local_jid(&self, number: &str) -> String {
        format!("{number}@{}/{}", self.domain, self.resource)
    }

    /// Moves the session's stanzas to the output, acts on its events (bridging them,
    /// or ending an offer it cannot bridge), and forgets it once it ended and awaits no
    /// reply.
    fn drain_key(&mut self, now: Instant, key: &(String, String)) {
        loop {
            let Some(s) = self.sessions.get_mut(key) else {
                return;
            };
            while let Some(stanza) = s.poll_transmit() {
                self.transmits.push_back(stanza);
            }
            let Some(event) = s.poll_event() else { break };
            if self.backend.is_some() {
                self.on_bridged_event(now, key, event);
            } else {
                self.on_unbridged_event(now, key, event);
            }
        }
        if let Some(s) = self.sessions.get(key) {
            if s.state() == State::Ended && s.poll_timeout().is_none() {
                self.sessions.remove(key);
            }
        }
    }

    /// Without a SIP user agent: ends every offer with a reason the client shows.
    fn on_unbridged_event(&mut self, now: Instant, key: &(String, String), event: Event) {
        let Some(s) = self.sessions.get_mut(key) else {
            return;
        };
        match event {
            Event::Offer { .. } => {
                let caller = jid::Jid::new(s.peer()).map(|j| j.to_bare());
                let refused = match &caller {
                    Ok(c) => self.router.authorize_outbound(c).err(),
                    Err(_) => Some(crate::routing::Denied::CallerNotAllowed),
                };
                let reason = match refused {
                    None => Reason::with_text(ReasonCondition::FailedApplication, NOT_BRIDGED_TEXT),
                    Some(denied) => denied.jingle_reason(),
                };
                tracing::info!(sid = %s.sid(), reason = reason.condition.as_str(), "ending call");
                s.terminate(now, reason);
            }
            Event::Ended { reason, cause } => {
                tracing::info!(
                    sid = %s.sid(),
                    reason = reason.condition.as_str(),
                    ?cause,
                    "call ended"
                );
            }
            other => tracing::debug!(sid = %s.sid(), event = ?other, "session event"),
        }
    }
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
