//! The bridged half of [`Calls`]: outbound calls from proposal to summary (see
//! [`super::outbound`] for the steps).

use std::time::Instant;

use jid::BareJid;
use minidom::Element;
use xmpp::component::Inbound;
use xmpp::jingle::{Group, Jingle, Reason, ReasonCondition};
use xmpp::session::{EndCause, Event, State};

use super::outbound::{self, CallInput, CallKey, HungUpBy, OutCall};
use super::{Calls, Proposal};
use crate::bridge::{self, ClientOffer};
use crate::media_driver::{CallMediaEvent, Failure};

/// Our `transport-info` answering the client's ICE restart (XEP-0176 §7, INTEROP.md
/// E.8): the new credentials `ice`, the same DTLS fingerprint with our established
/// `setup` (the DTLS association and SRTP keys survive the restart), and our host
/// candidates again.
pub(super) fn restart_transport(
    local: &crate::media_driver::LocalDescription,
    ice: &ice::Credentials,
    setup: Option<media::dtls::Setup>,
) -> xmpp::jingle::IceUdpTransport {
    use media::dtls::Setup;
    use xmpp::jingle::Setup as JingleSetup;
    xmpp::jingle::IceUdpTransport {
        ufrag: Some(ice.ufrag.clone()),
        pwd: Some(ice.pwd.clone()),
        fingerprint: Some(xmpp::jingle::Fingerprint {
            hash: media::cert::Fingerprint::HASH.to_owned(),
            setup: setup.map(|s| match s {
                Setup::Actpass => JingleSetup::ActPass,
                Setup::Active => JingleSetup::Active,
                Setup::Passive => JingleSetup::Passive,
            }),
            value: local.fingerprint.to_string(),
        }),
        trickle: false,
        candidates: local
            .candidates
            .iter()
            .enumerate()
            .map(|(i, c)| bridge::jingle_candidate(c, &format!("r{}", i + 1)))
            .collect(),
    }
}

/// The namespace of message delivery receipts ([XEP-0184](https://xmpp.org/extensions/xep-0184.html)).
const NS_RECEIPTS: &str = "urn:xmpp:receipts";

impl Calls {
    /// Starts an outbound call for an allowed proposal (or direct `session-initiate`):
    /// takes a call slot and spawns the media driver; the INVITE follows when it is
    /// ready. Returns the reason to refuse the call with.
    pub(super) fn start_call(
        &mut self,
        now: Instant,
        key: CallKey,
        caller: &BareJid,
        number: &str,
    ) -> Result<(), Reason> {
        let Some(b) = &self.backend else {
            return Err(Reason::new(ReasonCondition::GeneralError));
        };
        if self.out_calls.contains_key(&key) {
            return Ok(());
        }
        let trunks = self.router.route(number).map_err(|d| d.jingle_reason())?;
        let slot = self
            .slots
            .try_acquire(caller)
            .map_err(|l| crate::routing::Denied::from(l).jingle_reason())?;
        let caller_id = self
            .router
            .caller_id_for(caller)
            .map(|e| e.as_str().to_owned());
        self.next_call += 1;
        let call_id = format!("c{}", self.next_call);
        let span = tracing::info_span!(
            "call",
            id = %call_id,
            sid = %key.1,
            sip = tracing::field::Empty
        );
        let shown_number = self.redactor.show(number);
        {
            let _e = span.enter();
            tracing::info!(number = %shown_number, %caller, trunks = ?trunks, "outbound call");
        }
        b.spawn_media(key.clone(), call_id);
        self.out_calls.insert(
            key,
            OutCall {
                span,
                number: number.to_owned(),
                shown_number,
                caller: caller.clone(),
                caller_id,
                trunks,
                started: now,
                media: None,
                local_desc: None,
                trunk_offer: None,
                sip: None,
                sip_ended: false,
                invite_sent_at: None,
                ring_deadline: None,
                answered_at: None,
                early_media: false,
                client_offer: None,
                pending_candidates: Vec::new(),
                pending_answer: None,
                end_reason: None,
                hung_up_by: None,
                trunk_codec: None,
                client_choice: None,
                pair: None,
                first_media_at: None,
                ringing: false,
                client_fed: false,
                _slot: Some(slot),
            },
        );
        Ok(())
    }

    /// Acknowledges the propose message if it asked for a receipt (XEP-0184 §5;
    /// Conversations does).
    pub(super) fn receipt(&mut self, inbound: &Inbound, local: &str, peer: &str) {
        let stanza = &inbound.stanza;
        let (Some(id), true) = (stanza.attr("id"), stanza.has_child("request", NS_RECEIPTS)) else {
            return;
        };
        let esc = |v: &str| {
            v.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('\'', "&apos;")
        };
        let xml = format!(
            "<message xmlns='jabber:component:accept' from='{}' to='{}' id='rcpt-{}'>\
             <received xmlns='{NS_RECEIPTS}' id='{}'/></message>",
            esc(local),
            esc(peer),
            esc(id),
            esc(id)
        );
        let Ok(message) = xml.parse::<Element>() else {
            return;
        };
        self.transmits.push_back(message);
    }

    /// A `session-initiate` arrived and was acknowledged; `jingle` is its payload.
    pub(super) fn on_session_initiate(
        &mut self,
        now: Instant,
        key: &CallKey,
        inbound: &Inbound,
        jingle: &Jingle,
        proposal: Option<Proposal>,
    ) {
        if let Some(reason) = proposal.as_ref().and_then(|p| p.failed.clone()) {
            self.terminate_session(now, key, reason);
            return;
        }
        if !self.out_calls.contains_key(key) {
            // A direct session-initiate (no JMI): the call starts now.
            let caller = inbound.from.to_bare();
            let refused = match self.refusal(&caller, &inbound.number) {
                Some(r) => Some(r),
                None => self
                    .start_call(now, key.clone(), &caller, &inbound.number)
                    .err(),
            };
            if let Some(reason) = refused {
                self.terminate_session(now, key, reason);
                return;
            }
        }
        let policy = match &self.backend {
            Some(b) => b.policy.clone(),
            None => return,
        };
        match ClientOffer::parse(jingle, &policy) {
            Ok(offer) => {
                if let Some(c) = self.out_calls.get_mut(key) {
                    let _e = c.span.enter();
                    tracing::info!(
                        codecs = ?offer.codecs(),
                        candidates = offer.candidates.len(),
                        trickle = offer.trickle,
                        "client offer"
                    );
                    drop(_e);
                    c.client_offer = Some(offer);
                    // 180 came before the session-initiate: ring now.
                    if c.ringing && c.pending_answer.is_none() && c.answered_at.is_none() {
                        if let Some(s) = self.sessions.get_mut(key) {
                            let _ = s.ringing(now);
                        }
                    }
                }
                self.complete_answer(now, key);
            }
            Err(e) => {
                tracing::info!(sid = %key.1, error = %e, "client offer refused");
                self.end_call(now, key, e.jingle_reason(), HungUpBy::Gateway);
            }
        }
    }

    fn terminate_session(&mut self, now: Instant, key: &CallKey, reason: Reason) {
        if let Some(s) = self.sessions.get_mut(key) {
            if s.state() != State::Ended {
                s.terminate(now, reason);
            }
        }
    }

    /// Gives the client's ICE credentials and candidates to the media driver once both
    /// the offer and the driver are there.
    fn feed_client(&mut self, key: &CallKey) {
        let Some(c) = self.out_calls.get_mut(key) else {
            return;
        };
        let (Some(media), Some(offer)) = (&c.media, &c.client_offer) else {
            return;
        };
        let _ = media.remote_ice_credentials(&offer.ice.ufrag, &offer.ice.pwd);
        for cand in offer.candidates.iter().chain(&c.pending_candidates) {
            let _ = media.remote_candidate(cand.clone());
        }
        c.pending_candidates.clear();
        c.client_fed = true;
        if !offer.trickle {
            let _ = media.end_of_candidates();
        }
    }

    /// After SIP 200 (or a 183 with SDP when `calls.early_media = "accept"`) and the
    /// client's offer: configures both legs' media and sends `session-accept`.
    pub(super) fn complete_answer(&mut self, now: Instant, key: &CallKey) {
        let Some(c) = self.out_calls.get_mut(key) else {
            return;
        };
        if c.client_offer.is_none()
            || c.media.is_none()
            || c.local_desc.is_none()
            || c.trunk_offer.is_none()
        {
            return;
        }
        let Some(remote) = c.pending_answer.take() else {
            return;
        };
        let Some(b) = &self.backend else { return };
        let (offer, media, local, trunk_offer) = (
            c.client_offer.as_ref().expect("checked"),
            c.media.as_ref().expect("checked"),
            c.local_desc.as_ref().expect("checked"),
            c.trunk_offer.as_ref().expect("checked"),
        );
        let trunk = match bridge::trunk_media_from_answer(&remote, trunk_offer, None) {
            Ok(t) => t,
            Err(e) => {
                let reason = e.jingle_reason();
                self.end_call(now, key, reason, HungUpBy::Gateway);
                return;
            }
        };
        let choice = offer.choose(&b.policy, Some(trunk.codec));
        let _e = c.span.enter();
        tracing::info!(
            client_codec = choice.codec.name(),
            trunk_codec = trunk.codec.name(),
            transcoded = !choice.passthrough,
            "{}",
            if c.answered_at.is_some() {
                "answered: session-accept"
            } else {
                "early media: session-accept"
            }
        );
        c.trunk_codec = Some(trunk.codec);
        c.client_choice = Some(choice);
        let _ = media.set_trunk_media(trunk);
        let _ = media.set_client_media(offer.client_media(&choice));
        let content = bridge::session_accept_content(offer, &choice, local);
        let group = Group::bundle(vec![offer.content_name.clone()]);
        drop(_e);
        if let Some(s) = self.sessions.get_mut(key) {
            if let Err(e) = s.accept(now, vec![content], Some(group)) {
                tracing::warn!(error = %e, "session-accept refused");
            }
        }
        // Connectivity checks start now that the client has our credentials: checks sent
        // earlier would go unanswered and back off for seconds (RFC 8445 §14.3).
        self.feed_client(key);
    }

    /// Sends the INVITE to the first remaining trunk of the route and starts the wait
    /// for its answer (`calls.outbound_ring_timeout`).
    fn send_invite(&mut self, now: Instant, key: &CallKey) -> Result<(), Reason> {
        let (Some(c), Some(b)) = (self.out_calls.get_mut(key), &self.backend) else {
            return Err(Reason::new(ReasonCondition::GeneralError));
        };
        let (Some(local), Some(trunk)) = (&c.local_desc, c.trunks.first().cloned()) else {
            return Err(Reason::with_text(
                ReasonCondition::ConnectivityError,
                "no trunk left to try",
            ));
        };
        let session_id = rand::random::<u32>().into();
        let offer = bridge::trunk_offer(local.trunk_rtp, b.announce, session_id, None, None);
        let call = sip::OutboundCall {
            to: c.number.clone(),
            caller_id: c.caller_id.clone(),
            media: offer.clone(),
        };
        let _e = c.span.enter();
        match b.ua.call(&trunk, call) {
            Ok(id) => {
                c.span.record("sip", id.as_str());
                tracing::info!(%trunk, sip_call_id = %id, "INVITE sent");
                c.trunk_offer = Some(offer);
                c.invite_sent_at = Some(now);
                c.ring_deadline = Some(now + self.outbound_ring_timeout);
                self.by_sip.insert(id.as_str().to_owned(), key.clone());
                c.sip = Some(id);
                c.sip_ended = false;
                Ok(())
            }
            Err(e) => Err(Reason::with_text(
                ReasonCondition::GeneralError,
                format!("trunk {trunk}: {e}"),
            )),
        }
    }

    /// Handles an input from a call's task ([`CallInput`]).
    pub fn handle_input(&mut self, now: Instant, input: CallInput) {
        let inbound = match &input {
            CallInput::MediaReady { key, .. } | CallInput::Media { key, .. } => {
                key.0 == super::inbound::INBOUND
            }
        };
        if inbound {
            self.on_inbound_input(now, input);
            self.flush_sessions(now);
            return;
        }
        match input {
            CallInput::MediaReady { key, result } => self.on_media_ready(now, &key, result),
            CallInput::Media { key, event } => self.on_media_event(now, &key, event),
        }
        self.flush_sessions(now);
    }

    fn on_media_ready(
        &mut self,
        now: Instant,
        key: &CallKey,
        result: Result<
            (
                crate::media_driver::CallMediaHandle,
                crate::media_driver::LocalDescription,
            ),
            String,
        >,
    ) {
        let Some(c) = self.out_calls.get_mut(key) else {
            if let Ok((h, _)) = result {
                let _ = h.stop();
            }
            return;
        };
        match result {
            Ok((handle, local)) => {
                if c.end_reason.is_some() {
                    // Ended while the driver started: stop it; Stopped ends the call.
                    let _ = handle.stop();
                    c.media = Some(handle);
                    return;
                }
                c.media = Some(handle);
                c.local_desc = Some(local);
                if let Err(reason) = self.send_invite(now, key) {
                    self.end_call(now, key, reason, HungUpBy::Gateway);
                }
            }
            Err(e) => {
                {
                    let _e = c.span.enter();
                    tracing::warn!(error = %e, "media driver failed to start");
                }
                self.end_call(
                    now,
                    key,
                    Reason::with_text(ReasonCondition::MediaError, e),
                    HungUpBy::Gateway,
                );
                self.finish_call(now, key, None);
            }
        }
    }

    fn on_media_event(&mut self, now: Instant, key: &CallKey, event: CallMediaEvent) {
        let Some(c) = self.out_calls.get_mut(key) else {
            return;
        };
        let span = c.span.clone();
        let _e = span.enter();
        match event {
            CallMediaEvent::IceSelected { local, remote } => {
                let pair = outbound::pair_types(&local, &remote);
                tracing::info!(%pair, remote = %remote.addr, "ice selected a pair");
                c.pair = Some(pair);
            }
            CallMediaEvent::DtlsConnected { profile } => {
                tracing::info!(?profile, "dtls connected");
            }
            CallMediaEvent::IceRestarted { ice } => {
                let (Some(offer), Some(local)) = (&c.client_offer, &c.local_desc) else {
                    return;
                };
                let transport = restart_transport(local, &ice, Some(offer.answer_setup));
                let content = offer.content_name.clone();
                if let Some(s) = self.sessions.get_mut(key) {
                    match s.send_transport_info(now, &content, transport) {
                        Ok(()) => tracing::info!("ice restart: our new credentials sent"),
                        Err(e) => tracing::warn!(error = %e, "ice restart: cannot answer"),
                    }
                }
            }
            CallMediaEvent::IceRestartFailed { error } => {
                let reason = Reason::with_text(ReasonCondition::FailedTransport, error);
                self.end_call(now, key, reason, HungUpBy::Gateway);
            }
            CallMediaEvent::MediaFlowing { leg } => {
                if c.first_media_at.is_none() {
                    c.first_media_at = Some(now);
                }
                tracing::info!(?leg, "media flowing");
            }
            CallMediaEvent::NoMedia { leg } => {
                tracing::warn!(?leg, "no media");
                if c.answered_at.is_some() {
                    let reason = Reason::with_text(
                        ReasonCondition::MediaError,
                        format!("no media from the {leg:?} leg"),
                    );
                    self.end_call(now, key, reason, HungUpBy::Gateway);
                }
            }
            CallMediaEvent::Failed { error } => {
                tracing::warn!(%error, "media failed");
                let condition = match &error {
                    Failure::Security(_) => ReasonCondition::SecurityError,
                    Failure::DtlsTimedOut => ReasonCondition::FailedTransport,
                    _ => ReasonCondition::MediaError,
                };
                self.end_call(
                    now,
                    key,
                    Reason::with_text(condition, error.to_string()),
                    HungUpBy::Gateway,
                );
            }
            CallMediaEvent::Stopped { client, trunk } => {
                self.finish_call(now, key, Some((client, trunk)));
            }
            other => tracing::debug!(event = ?other, "media event"),
        }
    }

    /// Handles an event of the SIP user agent.
    pub fn handle_sip(&mut self, now: Instant, event: sip::Event) {
        match event {
            sip::Event::Incoming {
                call,
                trunk,
                from,
                to,
                offer,
            } => self.on_sip_incoming(now, call, &trunk, &from, &to, offer),
            sip::Event::Ended { call, reason } if self.in_by_sip.contains_key(call.as_str()) => {
                if let Some(sid) = self.in_by_sip.get(call.as_str()).cloned() {
                    self.on_inbound_sip_ended(now, &sid, &reason);
                }
            }
            sip::Event::Ringing { call } => {
                if let Some(key) = self.by_sip.get(call.as_str()).cloned() {
                    if let Some(c) = self.out_calls.get_mut(&key) {
                        let _e = c.span.enter();
                        tracing::info!("ringing");
                        c.ringing = true;
                    }
                    if let Some(s) = self.sessions.get_mut(&key) {
                        if s.state() == State::Pending {
                            let _ = s.ringing(now);
                        }
                    }
                }
            }
            sip::Event::EarlyMedia { call, remote } => {
                if let Some(key) = self.by_sip.get(call.as_str()).cloned() {
                    self.on_early_media(now, &key, remote);
                }
            }
            sip::Event::Answered {
                call,
                remote,
                negotiated,
            } => {
                let Some(key) = self.by_sip.get(call.as_str()).cloned() else {
                    return;
                };
                let Some(c) = self.out_calls.get_mut(&key) else {
                    return;
                };
                c.answered_at = Some(now);
                c.ring_deadline = None;
                if let Some(m) = &c.media {
                    if remote.port != 0 && !remote.address.is_unspecified() {
                        let _ = m.set_trunk_remote(std::net::SocketAddr::new(
                            remote.address,
                            remote.port,
                        ));
                    }
                }
                {
                    let _e = c.span.enter();
                    tracing::info!(
                        codec = ?negotiated.codec,
                        invite_to_answer_ms = c
                            .invite_sent_at
                            .map(|t| now.saturating_duration_since(t).as_millis() as u64),
                        early_media = c.early_media,
                        "SIP 200"
                    );
                }
                if c.end_reason.is_some() {
                    return;
                }
                if c.early_media && c.pending_answer.is_none() {
                    // Accepted at the 183: the media already flows, the 200 continues it.
                    return;
                }
                c.pending_answer = Some(remote);
                self.complete_answer(now, &key);
            }
            sip::Event::Ended { call, reason } => {
                let Some(key) = self.by_sip.remove(call.as_str()) else {
                    return;
                };
                let Some(c) = self.out_calls.get_mut(&key) else {
                    return;
                };
                c.sip_ended = true;
                {
                    let _e = c.span.enter();
                    tracing::info!(?reason, "SIP call ended");
                }
                let failover = match &reason {
                    sip::EndReason::Rejected { status, .. } => {
                        bridge::reasons::is_failover_status(*status)
                    }
                    sip::EndReason::Failed(sip::Error::TimedOut(_)) => true,
                    _ => false,
                };
                if failover
                    && c.end_reason.is_none()
                    && c.answered_at.is_none()
                    && !c.early_media
                    && c.trunks.len() > 1
                {
                    c.trunks.remove(0);
                    if self.send_invite(now, &key).is_ok() {
                        self.flush_sessions(now);
                        return;
                    }
                }
                let jingle_reason = bridge::reasons::jingle_reason_for_sip_end(&reason);
                self.end_call(now, &key, jingle_reason, HungUpBy::Trunk);
            }
            other => tracing::debug!(event = ?other, "sip event"),
        }
        self.flush_sessions(now);
    }

    /// Ends a call on every side that is still up: `session-terminate` (or, before the
    /// session-initiate, the reason kept for it), SIP CANCEL/BYE, the media driver.
    pub(super) fn end_call(&mut self, now: Instant, key: &CallKey, reason: Reason, by: HungUpBy) {
        let Some(c) = self.out_calls.get_mut(key) else {
            return;
        };
        if c.end_reason.is_none() {
            c.end_reason = Some(reason.clone());
            c.hung_up_by = Some(by);
            let _e = c.span.enter();
            tracing::info!(
                by = by.as_str(),
                reason = reason.condition.as_str(),
                "ending call"
            );
        }
        if !c.sip_ended {
            if let (Some(id), Some(b)) = (&c.sip, &self.backend) {
                let _ = b.ua.hangup(id);
            }
        }
        if let Some(m) = &c.media {
            let _ = m.stop();
        }
        if let Some(p) = self.proposals.get_mut(key) {
            p.failed = Some(reason.clone());
        }
        self.terminate_session(now, key, reason);
    }

    /// The media driver stopped (or never started): the summary line, and the call is
    /// forgotten.
    fn finish_call(
        &mut self,
        now: Instant,
        key: &CallKey,
        stats: Option<(media::stats::LegStats, media::stats::LegStats)>,
    ) {
        let Some(c) = self.out_calls.get(key) else {
            return;
        };
        if c.end_reason.is_none() {
            // The driver stopped by itself: end the call.
            let reason = Reason::with_text(ReasonCondition::MediaError, "media stopped");
            self.end_call(now, key, reason, HungUpBy::Gateway);
        }
        let Some(c) = self.out_calls.remove(key) else {
            return;
        };
        if !c.sip_ended {
            if let (Some(id), Some(b)) = (&c.sip, &self.backend) {
                let _ = b.ua.hangup(id);
            }
        }
        let (client, trunk) = stats.unwrap_or_default();
        c.summary(now, &client, &trunk);
    }

    /// A bridged session event.
    pub(super) fn on_bridged_event(&mut self, now: Instant, key: &CallKey, event: Event) {
        if self.in_calls.contains_key(&key.1) {
            self.on_inbound_event(now, key, event);
            return;
        }
        match event {
            Event::Offer { .. } => {
                // Handled with the session-initiate's payload in `on_session_initiate`.
            }
            Event::TransportInfo { transport, .. } => {
                let cands = outbound::ice_candidates(&transport);
                if let Some(c) = self.out_calls.get_mut(key) {
                    match &c.media {
                        Some(m) if c.client_fed => {
                            for cand in cands {
                                let _ = m.remote_candidate(cand);
                            }
                        }
                        _ => c.pending_candidates.extend(cands),
                    }
                }
            }
            Event::IceRestart { transport, .. } => {
                // Acknowledged by the session (a simultaneous restart of ours would have
                // been refused with <tie-break/> there). Restart our agent; our new
                // credentials go back as `CallMediaEvent::IceRestarted`.
                let Some(c) = self.out_calls.get_mut(key) else {
                    return;
                };
                let _e = c.span.enter();
                let (Some(ufrag), Some(pwd)) =
                    (transport.ufrag.as_deref(), transport.pwd.as_deref())
                else {
                    return;
                };
                let cands = outbound::ice_candidates(&transport);
                match (&c.media, c.client_fed) {
                    (Some(m), true) => {
                        tracing::info!(candidates = cands.len(), "ice restart by the client");
                        let _ = m.remote_ice_restart(ufrag, pwd);
                        for cand in cands {
                            let _ = m.remote_candidate(cand);
                        }
                    }
                    _ => {
                        // Before our answer: the agent has no client credentials yet;
                        // the new ones replace the offer's.
                        tracing::info!("ice restart by the client before the answer");
                        if let Some(o) = c.client_offer.as_mut() {
                            o.ice = ice::Credentials {
                                ufrag: ufrag.to_owned(),
                                pwd: pwd.to_owned(),
                            };
                        }
                        c.pending_candidates.extend(cands);
                    }
                }
            }
            Event::Ended { reason, cause } => {
                let by = match cause {
                    EndCause::PeerTerminated => HungUpBy::Client,
                    _ => HungUpBy::Gateway,
                };
                tracing::info!(sid = %key.1, reason = reason.condition.as_str(), ?cause, "session ended");
                self.end_call(now, key, reason, by);
            }
            other => tracing::debug!(sid = %key.1, event = ?other, "session event"),
        }
    }

    /// Drains every session's output after an input that may have changed them.
    fn flush_sessions(&mut self, now: Instant) {
        let keys: Vec<CallKey> = self.sessions.keys().cloned().collect();
        for key in keys {
            self.drain_key(now, &key);
        }
    }
}
