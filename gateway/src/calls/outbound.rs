//! Outbound calls bridged to a SIP trunk (INTEROP.md E.2): the per-call state and the
//! glue between the Jingle session, the SIP user agent and the call's media driver.
//!
//! The steps, each triggered by one input of [`super::Calls`]:
//!
//! 1. JMI `<propose/>` allowed → `<proceed/>` at once, and a task spawns the call's media
//!    driver ([`CallMedia::spawn`]); when it is ready ([`CallInput::MediaReady`]) the SIP
//!    INVITE goes to the first trunk of the route with our SDP offer
//!    ([`bridge::trunk_offer`]);
//! 2. the client's `session-initiate` is acknowledged; its ICE credentials, candidates
//!    (inline and trickled) go to the media driver (we are ICE controlled);
//! 3. SIP 180/183 → Jingle `<ringing/>`;
//! 4. SIP 200 → the trunk's media and the client codec ([`bridge::ClientOffer::choose`])
//!    go to the media driver, and `session-accept` carries our candidates inline and our
//!    DTLS `setup`;
//! 5. either side hangs up: the other one is ended (CANCEL before 200, BYE after;
//!    `session-terminate` with the E.6 reason), the media driver stops and its
//!    statistics give the one-line call summary.
//!
//! A 5xx, 408 or a transport timeout from a trunk moves the INVITE to the route's next
//! trunk while the client has not hung up and its session is not accepted yet (issue 6,
//! failover).
//!
//! Two settings of `[calls]` shape the wait for the answer:
//!
//! - `early_media = "accept"` moves step 4 to the first SIP 183 with SDP (the trunk's
//!   early media reaches the client; the 200 then only continues it); the default,
//!   `"ringback"`, keeps it at the 200 and a 183 only rings (INTEROP.md E.2, "Early
//!   media trade-off");
//! - `outbound_ring_timeout` bounds the wait for the 200 after each INVITE: when it
//!   expires (a timer of [`super::Calls::poll_timeout`]) the INVITE is cancelled and the
//!   session ends with `<timeout/>` (INTEROP.md E.6).

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use jid::BareJid;
use media::codec::Codec;
use tokio::sync::mpsc;
use xmpp::jingle::Reason;

use xmpp::jingle::ReasonCondition;
use xmpp::session::State;

use super::Calls;
use crate::bridge::{self, ClientChoice, ClientOffer, CodecPolicy};
use crate::config::EarlyMedia;
use crate::media_driver::{
    self, BindParams, CallMedia, CallMediaEvent, CallMediaHandle, CallMediaParams, ClientLegParams,
    LocalDescription,
};
use crate::routing::SlotGuard;

/// Identifies a call: the client's full JID and the Jingle/JMI session id.
pub type CallKey = (String, String);

/// An input for [`super::Calls::handle_input`] produced by the call's own tasks; the
/// gateway's main loop receives them from the channel given to
/// [`super::Calls::bridged`].
// A media event carries both legs' statistics (`Stopped`): a few hundred bytes, moved
// once through a channel a handful of times per call; boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
#[non_exhaustive]
pub enum CallInput {
    /// The call's media driver is ready (or could not start).
    MediaReady {
        /// The call.
        key: CallKey,
        /// The handle and what to signal, or why it failed.
        result: Result<(CallMediaHandle, LocalDescription), String>,
    },
    /// An event of the call's media driver.
    Media {
        /// The call.
        key: CallKey,
        /// The event.
        event: CallMediaEvent,
    },
}

/// What the bridged call layer needs besides the XMPP side.
#[derive(Debug)]
pub(super) struct Backend {
    pub ua: sip::UserAgent,
    pub inputs: mpsc::UnboundedSender<CallInput>,
    pub policy: CodecPolicy,
    pub media_config: Arc<media::Config>,
    pub bind: BindParams,
    /// The address written in our SDP (`[media] public_ipv4`), if any.
    pub announce: Option<IpAddr>,
}

impl Backend {
    /// Spawns the media driver of `key`; its readiness and events come back as
    /// [`CallInput`]s.
    pub(super) fn spawn_media(&self, key: CallKey, call_id: String) {
        self.spawn_media_role(key, call_id, ice::Role::Controlled);
    }

    /// As [`Self::spawn_media`] with our ICE role: controlled when the client sent the
    /// offer (outbound calls), controlling when we did (inbound calls).
    pub(super) fn spawn_media_role(&self, key: CallKey, call_id: String, ice_role: ice::Role) {
        let params = CallMediaParams {
            call_id,
            media_config: self.media_config.clone(),
            ice_config: ice::Config::default(),
            client: ClientLegParams {
                ice_role,
                media: None,
            },
            trunk: None,
            bind: self.bind.clone(),
            rng_seed: None,
        };
        let tx = self.inputs.clone();
        tokio::spawn(async move {
            match CallMedia::spawn(params).await {
                Ok((handle, mut events, local)) => {
                    let _ = tx.send(CallInput::MediaReady {
                        key: key.clone(),
                        result: Ok((handle, local)),
                    });
                    while let Some(event) = events.recv().await {
                        if tx
                            .send(CallInput::Media {
                                key: key.clone(),
                                event,
                            })
                            .is_err()
                        {
                            break;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(CallInput::MediaReady {
                        key,
                        result: Err(e.to_string()),
                    });
                }
            }
        });
    }
}

/// How phone numbers appear in the call layer's log lines (`[log] redact_numbers`,
/// STYLE.md R10): in clear, or as `pii:` and the first 8 hex digits of a hash keyed
/// with a random key drawn when the redactor is built, so the lines of one number
/// correlate within one run while the number itself cannot be read back, looked up in
/// a precomputed table, or matched across restarts.
#[derive(Clone, Debug)]
pub(super) struct Redactor {
    key: Option<RandomState>,
}

impl Redactor {
    /// Redacts when `enabled`.
    pub(super) fn new(enabled: bool) -> Self {
        Self {
            key: enabled.then(RandomState::new),
        }
    }

    /// `value` as it may be logged.
    pub(super) fn show(&self, value: &str) -> String {
        match &self.key {
            Some(key) => format!("pii:{:08x}", key.hash_one(value) >> 32),
            None => value.to_owned(),
        }
    }
}

/// Who ended a call, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HungUpBy {
    Client,
    Trunk,
    Gateway,
}

impl HungUpBy {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Trunk => "trunk",
            Self::Gateway => "gateway",
        }
    }
}

/// One outbound call in progress.
#[derive(Debug)]
pub(super) struct OutCall {
    pub span: tracing::Span,
    pub number: String,
    /// `number` as the logs show it ([`Redactor`]).
    pub shown_number: String,
    pub caller: BareJid,
    pub caller_id: Option<String>,
    /// Trunks still to try, in order (the current one first).
    pub trunks: Vec<String>,
    pub started: Instant,
    pub media: Option<CallMediaHandle>,
    pub local_desc: Option<LocalDescription>,
    pub trunk_offer: Option<sip::sdp::LocalMedia>,
    pub sip: Option<sip::CallId>,
    pub sip_ended: bool,
    pub invite_sent_at: Option<Instant>,
    /// When the wait for the current INVITE's 200 ends (`calls.outbound_ring_timeout`).
    pub ring_deadline: Option<Instant>,
    pub answered_at: Option<Instant>,
    /// The session was accepted at a 183 with SDP (`calls.early_media = "accept"`).
    pub early_media: bool,
    /// The client's offer, once its `session-initiate` came.
    pub client_offer: Option<ClientOffer>,
    /// The client's candidates that came before the media driver was ready.
    pub pending_candidates: Vec<ice::Candidate>,
    /// The trunk's answer (the 200's, or an accepted 183's), until `session-accept`
    /// uses it: it may come before the client's `session-initiate`.
    pub pending_answer: Option<sip::sdp::RemoteMedia>,
    /// The reason to end the Jingle side with, once there is a session to end.
    pub end_reason: Option<Reason>,
    pub hung_up_by: Option<HungUpBy>,
    pub trunk_codec: Option<Codec>,
    pub client_choice: Option<ClientChoice>,
    pub pair: Option<String>,
    pub first_media_at: Option<Instant>,
    /// The trunk sent 180/183 (Jingle `<ringing/>` is sent once the session exists).
    pub ringing: bool,
    /// The client's ICE credentials and candidates went to the media driver (after
    /// session-accept).
    pub client_fed: bool,
    pub _slot: Option<SlotGuard>,
}

impl OutCall {
    /// The one-line summary fields of a finished call.
    pub(super) fn summary(
        &self,
        now: Instant,
        client: &media::stats::LegStats,
        trunk: &media::stats::LegStats,
    ) {
        let _e = self.span.enter();
        let duration = self
            .answered_at
            .map_or(0.0, |a| now.saturating_duration_since(a).as_secs_f64());
        let client_codec = self.client_choice.map_or("-", |c| c.codec.name());
        let trunk_codec = self.trunk_codec.map_or("-", |c| c.name());
        let transcoded = self.client_choice.is_some_and(|c| !c.passthrough);
        let connect_ms = self
            .answered_at
            .map(|a| a.saturating_duration_since(self.started).as_millis() as u64);
        tracing::info!(
            number = %self.shown_number,
            caller = %self.caller,
            duration_s = format!("{duration:.1}"),
            connect_ms,
            client_codec,
            trunk_codec,
            transcoded,
            early_media = self.early_media,
            pair = self.pair.as_deref().unwrap_or("-"),
            client_rx = client.rx.packets,
            client_tx = client.tx.packets,
            client_lost = client.rx.lost,
            trunk_rx = trunk.rx.packets,
            trunk_tx = trunk.tx.packets,
            trunk_lost = trunk.rx.lost,
            hung_up_by = self.hung_up_by.map_or("-", HungUpBy::as_str),
            reason = self
                .end_reason
                .as_ref()
                .map_or("success", |r| r.condition.as_str()),
            "call summary"
        );
    }
}

/// The candidate types of a selected pair (`host/prflx`).
pub(super) fn pair_types(local: &ice::Candidate, remote: &ice::Candidate) -> String {
    media_driver::pair_types(local, remote)
}

/// The Jingle candidates of a transport, for the media driver.
pub(super) fn ice_candidates(t: &xmpp::jingle::IceUdpTransport) -> Vec<ice::Candidate> {
    t.candidates
        .iter()
        .filter_map(bridge::ice_candidate)
        .collect()
}

impl Calls {
    /// SIP 183 with SDP on an outbound call: with `calls.early_media = "accept"` the
    /// first one accepts the Jingle session with the trunk's early media (ICE, DTLS and
    /// media start now); otherwise, and for later ones, the client is told it rings.
    pub(super) fn on_early_media(
        &mut self,
        now: Instant,
        key: &CallKey,
        remote: sip::sdp::RemoteMedia,
    ) {
        let accept = self.early_media == EarlyMedia::Accept;
        let Some(c) = self.out_calls.get_mut(key) else {
            return;
        };
        if c.end_reason.is_some() || c.answered_at.is_some() {
            return;
        }
        c.ringing = true;
        if accept && !c.early_media {
            if let Some(m) = &c.media {
                if remote.port != 0 && !remote.address.is_unspecified() {
                    let _ =
                        m.set_trunk_remote(std::net::SocketAddr::new(remote.address, remote.port));
                }
            }
            {
                let _e = c.span.enter();
                tracing::info!("SIP 183 with early media: accepting the session");
            }
            c.early_media = true;
            c.pending_answer = Some(remote);
            self.complete_answer(now, key);
            return;
        }
        {
            let _e = c.span.enter();
            tracing::info!(played = false, "SIP 183 with early media: ringing");
        }
        if let Some(s) = self.sessions.get_mut(key) {
            if s.state() == State::Pending {
                let _ = s.ringing(now);
            }
        }
    }

    /// The earliest `calls.outbound_ring_timeout` deadline of an unanswered outbound
    /// call.
    pub(super) fn outbound_deadline(&self) -> Option<Instant> {
        self.out_calls
            .values()
            .filter(|c| c.end_reason.is_none() && c.answered_at.is_none() && !c.sip_ended)
            .filter_map(|c| c.ring_deadline)
            .min()
    }

    /// Gives up on the outbound calls whose trunk neither answered nor failed by their
    /// deadline: CANCEL to the trunk, `session-terminate` with `<timeout/>` to the
    /// client (INTEROP.md E.6, "no answer (gateway timer)").
    pub(super) fn outbound_timeouts(&mut self, now: Instant) {
        let due: Vec<CallKey> = self
            .out_calls
            .iter()
            .filter(|(_, c)| c.end_reason.is_none() && c.answered_at.is_none() && !c.sip_ended)
            .filter(|(_, c)| c.ring_deadline.is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect();
        let waited = humantime_serde::re::humantime::format_duration(self.outbound_ring_timeout);
        for key in due {
            if let Some(c) = self.out_calls.get_mut(&key) {
                c.ring_deadline = None;
                let _e = c.span.enter();
                tracing::info!(%waited, "no answer from the trunk: cancelling");
            }
            let reason = Reason::with_text(
                ReasonCondition::Timeout,
                format!("no answer within {waited}"),
            );
            self.end_call(now, &key, reason, HungUpBy::Gateway);
            self.drain_key(now, &key);
        }
    }
}

#[cfg(test)]
mod tests;
