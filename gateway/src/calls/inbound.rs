//! Inbound calls from a SIP trunk (INTEROP.md E.3): an INVITE to a DID rings the user's
//! devices with a JMI `<propose/>` to their bare JID from the caller's number JID (the
//! user agent already sent 180); the first device to `<proceed/>` gets our
//! `session-initiate` (`actpass`, we are ICE controlling), later proceeds get
//! `<retract/>`; `<reject/>` gives 603 (or 486 for busy), no answer within
//! `calls.ring_timeout` gives 480. SIP 200 goes to the trunk only once ICE and DTLS
//! succeeded with the client, so the caller never talks into dead air.
//!
//! A user none of whose online resources supports JMI (their caps are tracked in
//! [`super::presence`]) gets `session-initiate` straight to the most available resource
//! that supports Jingle RTP audio, as cheogram-sip does (E.3): the ring timeout still
//! applies until its `session-accept`, and a `session-terminate` before it maps to the
//! SIP status of [`bridge::reasons::sip_action_for_terminate`] (`<busy/>` 486,
//! `<decline/>` 603, …). Without any presence known, JMI to the bare JID stays (a
//! client with offline push still rings).

use std::time::Instant;

use jid::BareJid;
use rand::SeedableRng;
use xmpp::jingle::{Action, Group, Jingle, Reason, ReasonCondition};
use xmpp::jmi::{JingleMessage, JmiAction};
use xmpp::session::{EndCause, Event, JingleSession, State};

use super::outbound::{CallInput, CallKey, HungUpBy};
use super::presence::RingTarget;
use super::Calls;
use crate::bridge::{self, ClientAnswer, INBOUND_CONTENT_NAME};
use crate::media_driver::{CallMediaEvent, CallMediaHandle, LocalDescription};
use crate::routing::SlotGuard;

/// The first element of the [`CallKey`] of an inbound call's media inputs.
pub(super) const INBOUND: &str = "\u{0}inbound";

/// One inbound call in progress.
#[derive(Debug)]
pub(super) struct InCall {
    span: tracing::Span,
    sip: sip::CallId,
    sip_ended: bool,
    user: BareJid,
    /// The caller's number JID, full (`+1555…@gw/gw`).
    local: String,
    offer: sip::sdp::RemoteMedia,
    media: Option<CallMediaHandle>,
    local_desc: Option<LocalDescription>,
    sip_answer: Option<sip::sdp::LocalMedia>,
    /// The trunk leg's codec, once the trunk's offer is answered.
    trunk_codec: Option<media::codec::Codec>,
    /// The device that proceeded (or got a direct `session-initiate`), once one did.
    device: Option<String>,
    /// `session-initiate` went to `device` without JMI: it rings until it accepts.
    direct: bool,
    /// The device accepted the session (`session-accept`).
    client_accepted: bool,
    /// Our DTLS role on the client leg, from its answer (for ICE-restart answers).
    local_setup: Option<media::dtls::Setup>,
    ring_deadline: Instant,
    answered: bool,
    ended: bool,
    /// The caller's number (E.164), for the summary.
    caller: String,
    /// When the INVITE came.
    started: Instant,
    /// When SIP 200 went to the trunk.
    answered_at: Option<Instant>,
    /// The client leg's codec, once the client accepted.
    client_codec: Option<media::codec::Codec>,
    /// The selected ICE pair's candidate types (`host/prflx`).
    pair: Option<String>,
    /// Why and by whom the call ended, once it did.
    end_reason: Option<Reason>,
    hung_up_by: Option<HungUpBy>,
    _slot: SlotGuard,
}

impl InCall {
    /// Whether the call still waits for the user to answer (the ring timeout runs).
    fn ringing(&self) -> bool {
        !self.ended && (self.device.is_none() || (self.direct && !self.client_accepted))
    }

    /// The one-line summary of a finished inbound call (issue 6, "Lifecycle"): the
    /// same fields as an outbound call's; packet counts are 0 when no media ran.
    fn summary(
        &self,
        now: Instant,
        client: Option<&media::stats::LegStats>,
        trunk: Option<&media::stats::LegStats>,
    ) {
        let _e = self.span.enter();
        let duration = self
            .answered_at
            .map_or(0.0, |a| now.saturating_duration_since(a).as_secs_f64());
        let connect_ms = self
            .answered_at
            .map(|a| a.saturating_duration_since(self.started).as_millis() as u64);
        let client_codec = self.client_codec.map_or("-", |c| c.name());
        let trunk_codec = self.trunk_codec.map_or("-", |c| c.name());
        let transcoded =
            matches!((self.client_codec, self.trunk_codec), (Some(a), Some(b)) if a != b);
        tracing::info!(
            caller = %self.caller,
            user = %self.user,
            duration_s = format!("{duration:.1}"),
            connect_ms,
            client_codec,
            trunk_codec,
            transcoded,
            pair = self.pair.as_deref().unwrap_or("-"),
            client_rx = client.map_or(0, |l| l.rx.packets),
            client_tx = client.map_or(0, |l| l.tx.packets),
            client_lost = client.map_or(0, |l| l.rx.lost),
            trunk_rx = trunk.map_or(0, |l| l.rx.packets),
            trunk_tx = trunk.map_or(0, |l| l.tx.packets),
            trunk_lost = trunk.map_or(0, |l| l.rx.lost),
            hung_up_by = self.hung_up_by.map_or("-", HungUpBy::as_str),
            reason = self
                .end_reason
                .as_ref()
                .map_or("success", |r| r.condition.as_str()),
            "call summary"
        );
    }
}

/// Who ended an inbound call whose Jingle session ended with `cause`: the client when
/// it sent session-terminate, else the gateway (we terminated, or the session failed).
pub(super) fn hung_up_by_for(cause: &EndCause) -> HungUpBy {
    match cause {
        EndCause::PeerTerminated => HungUpBy::Client,
        _ => HungUpBy::Gateway,
    }
}

impl Calls {
    /// SIP `Incoming`: checks the DID, then starts ringing the user's devices.
    pub(super) fn on_sip_incoming(
        &mut self,
        now: Instant,
        call: sip::CallId,
        trunk: &str,
        from: &str,
        to: &str,
        offer: Option<sip::sdp::RemoteMedia>,
    ) {
        let Some(b) = &self.backend else { return };
        let refuse = |status: u16| {
            tracing::info!(%status, "inbound call refused");
            let _ = b.ua.reject(&call, status);
        };
        let Ok(did) = self.router.normalize_inbound(trunk, to) else {
            return refuse(404);
        };
        let Some(user) = self.router.did_to_jid(&did) else {
            return refuse(404);
        };
        let Ok(caller) = self.router.normalize_inbound(trunk, from) else {
            return refuse(403);
        };
        let Some(offer) = offer else {
            return refuse(488);
        };
        let slot = match self.slots.try_acquire(&user) {
            Ok(slot) => slot,
            Err(limit) => {
                // 503 with Retry-After (`Denied::sip_rejection`): the trunk may retry
                // or route elsewhere, and does not take the number for broken.
                let r = crate::routing::Denied::from(limit).sip_rejection();
                let retry = r.retry_after.map(|d| d.as_secs().to_string());
                let headers: Vec<(&str, &str)> =
                    retry.iter().map(|v| ("Retry-After", v.as_str())).collect();
                tracing::info!(status = r.status, %limit, retry_after = ?retry, "inbound call refused");
                let _ = b.ua.reject_with(&call, r.status, &headers);
                return;
            }
        };
        let sid = format!("in-{}", rand::random::<u64>());
        let local = self.local_jid(caller.as_str());
        let caller = self.redactor.show(caller.as_str());
        let span = tracing::info_span!("call", sid = %sid, sip = %call.as_str());
        {
            let _e = span.enter();
            let did = self.redactor.show(did.as_str());
            tracing::info!(%caller, %did, %user, "inbound call");
        }
        b.spawn_media_role(
            (INBOUND.to_owned(), sid.clone()),
            sid.clone(),
            ice::Role::Controlling,
        );
        self.in_by_sip.insert(call.as_str().to_owned(), sid.clone());
        self.in_calls.insert(
            sid,
            InCall {
                span,
                sip: call,
                sip_ended: false,
                user,
                local,
                offer,
                media: None,
                local_desc: None,
                sip_answer: None,
                trunk_codec: None,
                device: None,
                direct: false,
                client_accepted: false,
                local_setup: None,
                ring_deadline: now + self.proposal_timeout,
                answered: false,
                ended: false,
                caller,
                started: now,
                answered_at: None,
                client_codec: None,
                pair: None,
                end_reason: None,
                hung_up_by: None,
                _slot: slot,
            },
        );
    }

    /// The inbound call's media driver is ready: answer the trunk's offer for the media
    /// and ring the user's devices.
    pub(super) fn on_inbound_media_ready(
        &mut self,
        now: Instant,
        sid: &str,
        result: Result<(CallMediaHandle, LocalDescription), String>,
    ) {
        let Some(c) = self.in_calls.get_mut(sid) else {
            if let Ok((h, _)) = result {
                let _ = h.stop();
            }
            return;
        };
        let Some(b) = &self.backend else { return };
        let (handle, local) = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "media driver failed to start");
                self.end_inbound(
                    now,
                    sid,
                    Reason::new(ReasonCondition::MediaError),
                    HungUpBy::Gateway,
                );
                return;
            }
        };
        let mut rng = rand_chacha::ChaCha20Rng::from_entropy();
        let answer = bridge::answer_trunk_offer(
            &c.offer,
            local.trunk_rtp,
            b.announce,
            rand::random::<u32>().into(),
            &mut rng,
        );
        let _ = c.ended;
        c.media = Some(handle.clone());
        match answer {
            Ok((sip_answer, trunk)) => {
                c.trunk_codec = Some(trunk.codec);
                let _ = handle.set_trunk_media(trunk);
                c.sip_answer = Some(sip_answer);
                c.local_desc = Some(local);
                let target = if self.direct_initiate {
                    self.presences.ring_target(&c.user)
                } else {
                    RingTarget::Jmi
                };
                match target {
                    RingTarget::Direct(device) => {
                        {
                            let _e = c.span.enter();
                            tracing::info!(%device, "no JMI-capable resource: direct session-initiate");
                        }
                        c.direct = true;
                        self.initiate_inbound(now, sid, &device);
                    }
                    RingTarget::Jmi => {
                        let propose = JingleMessage::propose_audio(sid.to_owned());
                        self.transmits
                            .push_back(propose.to_message(&c.local, &c.user.to_string()));
                        let _e = c.span.enter();
                        tracing::info!(to = %c.user, "propose sent");
                    }
                }
            }
            Err(e) => {
                if !c.sip_ended {
                    c.sip_ended = true;
                    let _ = b.ua.reject(&c.sip, e.sip_status());
                }
                self.end_inbound(now, sid, e.jingle_reason(), HungUpBy::Gateway);
            }
        }
    }

    /// Sends our offer (`session-initiate`, `actpass`, E.3 step 3) to `device`: the one
    /// that proceeded, or the one chosen for a direct initiate.
    fn initiate_inbound(&mut self, now: Instant, sid: &str, device: &str) {
        let passthrough = self
            .backend
            .as_ref()
            .is_some_and(|b| b.policy.prefer_g711_passthrough);
        let Some(c) = self.in_calls.get_mut(sid) else {
            return;
        };
        let Some(local_desc) = &c.local_desc else {
            return;
        };
        c.device = Some(device.to_owned());
        let first = if passthrough {
            c.trunk_codec
        } else {
            Some(media::codec::Codec::Opus)
        };
        let content = bridge::inbound_offer_content(local_desc, INBOUND_CONTENT_NAME, first);
        let group = Group::bundle(vec![INBOUND_CONTENT_NAME.to_owned()]);
        match JingleSession::initiator(
            now,
            &self.session_config,
            &c.local,
            device,
            sid,
            vec![content],
            Some(group),
        ) {
            Ok(s) => {
                {
                    let _e = c.span.enter();
                    tracing::info!(%device, direct = c.direct, "session-initiate");
                }
                let key = (device.to_owned(), sid.to_owned());
                self.sessions.insert(key.clone(), s);
                self.drain_key(now, &key);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot initiate");
                self.end_inbound(
                    now,
                    sid,
                    Reason::new(ReasonCondition::FailedApplication),
                    HungUpBy::Gateway,
                );
            }
        }
    }

    /// A JMI message about an inbound call from a device of the user.
    pub(super) fn on_inbound_jmi(&mut self, now: Instant, peer: &str, jm: &JingleMessage) {
        let sid = jm.id.clone();
        let Some(c) = self.in_calls.get_mut(&sid) else {
            return;
        };
        match &jm.action {
            JmiAction::Proceed if c.device.is_none() => {
                if c.local_desc.is_some() {
                    self.initiate_inbound(now, &sid, peer);
                }
            }
            JmiAction::Proceed => {
                // Another device was faster.
                let retract = JingleMessage::new(
                    sid.clone(),
                    JmiAction::Retract {
                        reason: Some(Reason::with_text(
                            ReasonCondition::Cancel,
                            "answered on another device",
                        )),
                    },
                );
                self.transmits.push_back(retract.to_message(&c.local, peer));
            }
            JmiAction::Reject { reason } if c.device.is_none() => {
                let status = bridge::reasons::sip_status_for_jmi_reject(reason.as_ref());
                if let Some(b) = &self.backend {
                    if !c.sip_ended {
                        c.sip_ended = true;
                        let _ = b.ua.reject(&c.sip, status);
                    }
                }
                let _e = c.span.enter();
                tracing::info!(%status, "rejected by the user");
                drop(_e);
                // The user's own reason (busy, decline) for the summary and the
                // retract to the other devices.
                let reason = reason
                    .as_ref()
                    .filter(|r| r.condition == ReasonCondition::Busy)
                    .cloned()
                    .unwrap_or_else(|| Reason::new(ReasonCondition::Decline));
                self.end_inbound(now, &sid, reason, HungUpBy::Client);
            }
            other => tracing::debug!(%sid, action = other.name(), "jingle message ignored"),
        }
    }

    /// A session event of an inbound call.
    pub(super) fn on_inbound_event(&mut self, now: Instant, key: &CallKey, event: Event) {
        let sid = key.1.clone();
        match event {
            Event::Accepted { contents, group } => {
                let Some(c) = self.in_calls.get_mut(&sid) else {
                    return;
                };
                let mut j = Jingle::new(Action::SessionAccept, sid.clone());
                j.contents = contents;
                j.group = group;
                let policy = self
                    .backend
                    .as_ref()
                    .map(|b| b.policy.clone())
                    .unwrap_or_default();
                match ClientAnswer::parse(&j, INBOUND_CONTENT_NAME, &policy) {
                    Ok(answer) => {
                        if let Some(m) = &c.media {
                            let _ = m.set_client_media(answer.media.clone());
                            let _ = m.remote_ice_credentials(&answer.ice.ufrag, &answer.ice.pwd);
                            for cand in answer.candidates {
                                let _ = m.remote_candidate(cand);
                            }
                        }
                        c.client_codec = Some(answer.media.codec);
                        c.client_accepted = true;
                        c.local_setup = answer.media.dtls.as_ref().map(|d| d.local_setup);
                        let _e = c.span.enter();
                        tracing::info!(codec = answer.media.codec.name(), "client accepted");
                    }
                    Err(e) => self.end_inbound(now, &sid, e.jingle_reason(), HungUpBy::Gateway),
                }
            }
            Event::IceRestart { transport, .. } => {
                // The device restarted ICE (E.8): restart our agent; the new credentials
                // go back on `CallMediaEvent::IceRestarted`.
                let Some(c) = self.in_calls.get(&sid) else {
                    return;
                };
                let (Some(m), Some(ufrag), Some(pwd)) = (
                    c.media.as_ref(),
                    transport.ufrag.as_deref(),
                    transport.pwd.as_deref(),
                ) else {
                    return;
                };
                let _e = c.span.enter();
                tracing::info!("ice restart by the client");
                let _ = m.remote_ice_restart(ufrag, pwd);
                for cand in super::outbound::ice_candidates(&transport) {
                    let _ = m.remote_candidate(cand);
                }
            }
            Event::TransportInfo { transport, .. } => {
                if let Some(m) = self.in_calls.get(&sid).and_then(|c| c.media.as_ref()) {
                    for cand in super::outbound::ice_candidates(&transport) {
                        let _ = m.remote_candidate(cand);
                    }
                }
            }
            Event::Ended { reason, cause } => {
                tracing::info!(%sid, reason = reason.condition.as_str(), ?cause, "session ended");
                // Not answered yet (a direct initiate declined, or the device gave up):
                // the user's reason picks the final status (E.6).
                if let (Some(c), Some(b)) = (self.in_calls.get_mut(&sid), &self.backend) {
                    if !c.answered && !c.sip_ended {
                        if let bridge::reasons::SipAction::Reject { status } =
                            bridge::reasons::sip_action_for_terminate(
                                Some(&reason),
                                false,
                                bridge::reasons::CallDirection::Inbound,
                            )
                        {
                            c.sip_ended = true;
                            let _ = b.ua.reject(&c.sip, status);
                            let _e = c.span.enter();
                            tracing::info!(%status, "ended before the answer");
                        }
                    }
                }
                self.end_inbound(now, &sid, reason, hung_up_by_for(&cause));
            }
            other => tracing::debug!(%sid, event = ?other, "session event"),
        }
    }

    /// A media event of an inbound call: DTLS up → SIP 200.
    pub(super) fn on_inbound_media(&mut self, now: Instant, sid: &str, event: CallMediaEvent) {
        let Some(c) = self.in_calls.get_mut(sid) else {
            return;
        };
        let span = c.span.clone();
        let _e = span.enter();
        match event {
            CallMediaEvent::DtlsConnected { .. } if !c.answered => {
                c.answered = true;
                if let (Some(b), Some(answer)) = (&self.backend, c.sip_answer.clone()) {
                    match b.ua.answer(&c.sip, answer) {
                        Ok(_) => {
                            c.answered_at = Some(now);
                            tracing::info!("ICE and DTLS up: SIP 200 sent");
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot answer the trunk");
                            c.sip_ended = true;
                            self.end_inbound(
                                now,
                                sid,
                                Reason::new(ReasonCondition::FailedApplication),
                                HungUpBy::Gateway,
                            );
                        }
                    }
                }
            }
            CallMediaEvent::Failed { error } => {
                tracing::warn!(%error, "media failed");
                let condition = if error.is_security() {
                    ReasonCondition::SecurityError
                } else {
                    ReasonCondition::MediaError
                };
                self.end_inbound(
                    now,
                    sid,
                    Reason::with_text(condition, error.to_string()),
                    HungUpBy::Gateway,
                );
            }
            CallMediaEvent::IceSelected { local, remote } => {
                let pair = super::outbound::pair_types(&local, &remote);
                tracing::info!(%pair, remote = %remote.addr, "ice selected a pair");
                c.pair = Some(pair);
            }
            CallMediaEvent::IceRestarted { ice } => {
                let (Some(local), Some(device)) = (&c.local_desc, &c.device) else {
                    return;
                };
                let transport = super::bridged::restart_transport(local, &ice, c.local_setup);
                let key = (device.clone(), sid.to_owned());
                if let Some(s) = self.sessions.get_mut(&key) {
                    match s.send_transport_info(now, INBOUND_CONTENT_NAME, transport) {
                        Ok(()) => tracing::info!("ice restart: our new credentials sent"),
                        Err(e) => tracing::warn!(error = %e, "ice restart: cannot answer"),
                    }
                }
            }
            CallMediaEvent::IceRestartFailed { error } => {
                drop(_e);
                self.end_inbound(
                    now,
                    sid,
                    Reason::with_text(ReasonCondition::FailedTransport, error),
                    HungUpBy::Gateway,
                );
            }
            CallMediaEvent::Stopped { client, trunk } => {
                drop(_e);
                if let Some(c) = self.in_calls.remove(sid) {
                    c.summary(now, Some(&client), Some(&trunk));
                    self.in_by_sip.remove(c.sip.as_str());
                }
            }
            other => tracing::debug!(event = ?other, "media event"),
        }
    }

    /// SIP `Ended` of an inbound call (CANCEL or BYE from the trunk).
    pub(super) fn on_inbound_sip_ended(
        &mut self,
        now: Instant,
        sid: &str,
        reason: &sip::EndReason,
    ) {
        if let Some(c) = self.in_calls.get_mut(sid) {
            c.sip_ended = true;
        }
        self.end_inbound(
            now,
            sid,
            bridge::reasons::jingle_reason_for_sip_end(reason),
            HungUpBy::Trunk,
        );
    }

    /// Rings out: calls not answered by `ring_deadline` end with 480.
    pub(super) fn inbound_timeouts(&mut self, now: Instant) {
        let due: Vec<String> = self
            .in_calls
            .iter()
            .filter(|(_, c)| c.ringing() && c.ring_deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for sid in due {
            if let (Some(c), Some(b)) = (self.in_calls.get_mut(&sid), &self.backend) {
                if !c.sip_ended {
                    c.sip_ended = true;
                    let _ = b.ua.reject(&c.sip, 480);
                }
            }
            let device = self.in_calls.get(&sid).and_then(|c| c.device.clone());
            self.end_inbound(
                now,
                &sid,
                Reason::new(ReasonCondition::Timeout),
                HungUpBy::Gateway,
            );
            // A direct initiate still ringing: its session-terminate goes out now.
            if let Some(device) = device {
                self.drain_key(now, &(device, sid));
            }
        }
    }

    /// The earliest ring deadline.
    pub(super) fn inbound_deadline(&self) -> Option<Instant> {
        self.in_calls
            .values()
            .filter(|c| c.ringing())
            .map(|c| c.ring_deadline)
            .min()
    }

    /// Ends an inbound call everywhere it is still up.
    pub(super) fn end_inbound(&mut self, now: Instant, sid: &str, reason: Reason, by: HungUpBy) {
        let Some(c) = self.in_calls.get_mut(sid) else {
            return;
        };
        if c.ended {
            return;
        }
        c.ended = true;
        c.end_reason = Some(reason.clone());
        c.hung_up_by = Some(by);
        {
            let _e = c.span.enter();
            tracing::info!(reason = reason.condition.as_str(), "ending inbound call");
        }
        if !c.sip_ended {
            c.sip_ended = true;
            if let Some(b) = &self.backend {
                let _ = b.ua.hangup(&c.sip);
            }
        }
        match &c.device {
            Some(device) => {
                let key = (device.clone(), sid.to_owned());
                if let Some(s) = self.sessions.get_mut(&key) {
                    if s.state() != State::Ended {
                        s.terminate(now, reason);
                    }
                }
            }
            None => {
                let retract = JingleMessage::new(
                    sid.to_owned(),
                    JmiAction::Retract {
                        reason: Some(reason),
                    },
                );
                self.transmits
                    .push_back(retract.to_message(&c.local, &c.user.to_string()));
            }
        }
        match &c.media {
            Some(m) => {
                let _ = m.stop();
            }
            None => {
                // No media driver to report statistics: the summary now.
                if let Some(c) = self.in_calls.remove(sid) {
                    c.summary(now, None, None);
                    self.in_by_sip.remove(c.sip.as_str());
                }
            }
        }
    }

    /// Routes a media input of an inbound call.
    pub(super) fn on_inbound_input(&mut self, now: Instant, input: CallInput) {
        match input {
            CallInput::MediaReady { key, result } => {
                self.on_inbound_media_ready(now, &key.1, result);
            }
            CallInput::Media { key, event } => self.on_inbound_media(now, &key.1, event),
        }
    }
}

#[cfg(test)]
mod tests;
