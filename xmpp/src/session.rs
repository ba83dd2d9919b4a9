//! The sans-IO Jingle session state machine
//! ([XEP-0166](https://xmpp.org/extensions/xep-0166.html), audio-only
//! [XEP-0167](https://xmpp.org/extensions/xep-0167.html) over
//! [XEP-0176](https://xmpp.org/extensions/xep-0176.html) ICE-UDP).
//!
//! One [`JingleSession`] per Jingle sid. It answers every Jingle IQ of its
//! peer (an IQ result, or the stanza error XEP-0166 prescribes), builds the
//! IQs for the gateway's commands, tracks their replies, and reports what
//! the call layer must act on as [`Event`]s.
//!
//! ```no_run
//! use std::time::Instant;
//! use xmpp::session::{self, Event, JingleIq, JingleSession, SessionConfig};
//!
//! # fn stanza_from_stream() -> minidom::Element { unimplemented!() }
//! # fn send(_: minidom::Element) {}
//! let config = SessionConfig::default();
//! let stanza = stanza_from_stream();
//! let now = Instant::now();
//! match JingleIq::from_stanza(&stanza) {
//!     Ok(Some(iq)) if iq.jingle.action == xmpp::jingle::Action::SessionInitiate => {
//!         let mut s = JingleSession::responder(now, &config, iq).expect("a session-initiate");
//!         // Drain every poll after each input (send the stanzas, act on events).
//!         while let Some(out) = s.poll_transmit() {
//!             send(out);
//!         }
//!         while let Some(ev) = s.poll_event() {
//!             match ev {
//!                 Event::Offer { contents, .. } => { /* map to SDP, call SIP */ }
//!                 Event::Ended { reason, .. } => { /* hang up SIP */ }
//!                 _ => {}
//!             }
//!         }
//!         // Later: s.ringing(now), s.accept(now, contents, group),
//!         // s.send_transport_info(..), s.terminate(now, reason);
//!         // and s.handle_timeout(now) at s.poll_timeout().
//!     }
//!     Ok(Some(iq)) => send(session::unknown_session_reply(&iq)),
//!     Ok(None) => {}
//!     Err(_) => {
//!         if let Some(reply) = session::bad_request_reply(&stanza) {
//!             send(reply);
//!         }
//!     }
//! }
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use minidom::Element;
use tracing::{debug, info, warn};

use crate::error::Error;
use crate::jingle::{
    Action, Content, Creator, Group, IceUdpTransport, Jingle, Reason, ReasonCondition, SessionInfo,
    Transport,
};

mod iq;

pub use iq::{
    bad_request_reply, error_reply, unknown_session_reply, IqErrorCondition, JingleErrorCondition,
    JingleIq,
};
use iq::{iq_error, iq_result, iq_set, parse_response, IqResponse};

/// Configuration of Jingle sessions; share one per gateway.
///
/// Setters follow the quinn style (`&mut Self`).
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub(crate) iq_timeout: Duration,
    pub(crate) id_prefix: String,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            // XEP-0166 sets no IQ timeout. 30 s leaves room for mobile
            // clients woken by push (Conversations, Monal) while still
            // ending a call whose peer vanished.
            iq_timeout: Duration::from_secs(30),
            id_prefix: "jsg".to_owned(),
        }
    }
}

impl SessionConfig {
    /// How long to wait for the IQ result of an IQ the session sent before
    /// giving up; defaults to 30 s. A session-initiate, session-accept or
    /// transport-info without a reply in time ends the session
    /// ([`EndCause::IqTimeout`]).
    pub fn iq_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.iq_timeout = timeout;
        self
    }

    /// Prefix of the `id` of every IQ the session sends; defaults to `jsg`.
    /// Ids are `<prefix>-<sid>-<counter>`: unique per session without a
    /// random source.
    pub fn id_prefix(&mut self, prefix: impl Into<String>) -> &mut Self {
        self.id_prefix = prefix.into();
        self
    }
}

/// Our role in the session ([XEP-0166 §5](https://xmpp.org/extensions/xep-0166.html#concepts)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We sent session-initiate (inbound PSTN → XMPP calls); ICE-controlling.
    Initiator,
    /// The peer sent session-initiate (outbound XMPP → PSTN calls).
    Responder,
}

/// The session state ([XEP-0166 §6.1](https://xmpp.org/extensions/xep-0166.html#overview)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Initiated, not yet accepted.
    Pending,
    /// session-accept sent (responder) or received (initiator).
    Active,
    /// Terminated by either side, refused or failed; the session can be
    /// dropped once its polls are drained.
    Ended,
}

/// Why a session ended, next to the Jingle [`Reason`] in [`Event::Ended`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndCause {
    /// The peer sent session-terminate, or removed the last content.
    PeerTerminated,
    /// We sent session-terminate ([`JingleSession::terminate`]).
    LocalTerminated,
    /// The session-initiate offered nothing we support (no audio over
    /// ICE-UDP); we terminated it with the reason given.
    Refused,
    /// The session-initiate was malformed (e.g. no content) and was
    /// answered with `bad-request`.
    Malformed,
    /// The peer answered one of our IQs with an error.
    IqError {
        /// The action of our IQ.
        action: Action,
        /// The stanza error condition, e.g. `service-unavailable`.
        condition: String,
    },
    /// One of our IQs got no reply within [`SessionConfig::iq_timeout`].
    IqTimeout {
        /// The action of our IQ.
        action: Action,
    },
}

/// What the call layer must act on; drained with [`JingleSession::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Responder: the peer's offer. Only the audio-over-ICE-UDP contents
    /// are listed (others were refused with content-remove). Answer with
    /// [`JingleSession::accept`] or [`JingleSession::terminate`].
    Offer {
        /// The audio contents, with their descriptions and transports.
        contents: Vec<Content>,
        /// The BUNDLE group, if any.
        group: Option<Group>,
    },
    /// Initiator: the peer accepted; the session is active.
    Accepted {
        /// The accepted audio contents.
        contents: Vec<Content>,
        /// The BUNDLE group, if any.
        group: Option<Group>,
    },
    /// The peer trickled candidates (or sent credentials) for a content,
    /// without restarting ICE ([XEP-0176 §6](https://xmpp.org/extensions/xep-0176.html#protocol-flow)).
    TransportInfo {
        /// The content name.
        content: String,
        /// The transport: credentials (may be absent) and candidates.
        transport: IceUdpTransport,
    },
    /// The peer restarted ICE: new `ufrag`/`pwd`, usually no candidates
    /// ([XEP-0176 §7](https://xmpp.org/extensions/xep-0176.html#protocol-restart)).
    /// Restart the agent and answer with [`JingleSession::send_transport_info`]
    /// carrying new local credentials, fingerprint and candidates.
    IceRestart {
        /// The content name.
        content: String,
        /// The new remote credentials, fingerprint and any candidates.
        transport: IceUdpTransport,
    },
    /// A session-info payload: ringing, hold, mute, legacy DTMF…
    Info(SessionInfo),
    /// The session ended; nothing more will be sent except replies.
    Ended {
        /// The Jingle reason (the peer's, or the one we sent).
        reason: Reason,
        /// Why.
        cause: EndCause,
    },
}

#[derive(Debug, Clone)]
struct ContentState {
    name: String,
    creator: Creator,
    remote_ufrag: Option<String>,
}

#[derive(Debug, Clone)]
struct PendingIq {
    id: String,
    action: Action,
    deadline: Instant,
    /// An error or timeout ends the session.
    fatal: bool,
}

/// One Jingle session, sans-IO ([STYLE.md R2]).
///
/// # Method categories
/// - A. getters: [`sid`](Self::sid), [`role`](Self::role), [`state`](Self::state),
///   [`peer`](Self::peer), [`local`](Self::local);
/// - B. input: [`handle_iq`](Self::handle_iq) (Jingle IQ sets of the peer),
///   [`handle_response`](Self::handle_response) (IQ results/errors),
///   [`handle_timeout`](Self::handle_timeout);
/// - C. commands: [`ringing`](Self::ringing), [`send_info`](Self::send_info),
///   [`accept`](Self::accept), [`send_transport_info`](Self::send_transport_info),
///   [`restart_ice`](Self::restart_ice), [`terminate`](Self::terminate);
/// - D. output: [`poll_transmit`](Self::poll_transmit),
///   [`poll_event`](Self::poll_event), [`poll_timeout`](Self::poll_timeout).
///
/// After every constructor, `handle_*` or command, drain `poll_transmit`
/// (stanzas to send, in order), then `poll_event`, then re-arm the timer from
/// `poll_timeout`, before the next input.
///
/// Every stanza sent carries `from` = our JID and `to` = the peer's full JID
/// (the IQ `from` of the session-initiate or the JID given to
/// [`initiator`](Self::initiator)), and a fresh id `<prefix>-<sid>-<n>`.
///
/// Glare on ICE restart (both sides restart at once): the initiator's
/// restart wins; as initiator we answer the peer's restart with `conflict` +
/// `<tie-break/>`, as responder we apply the peer's restart and ignore the
/// tie-break error on ours (the behaviour of Conversations).
#[derive(Debug)]
pub struct JingleSession {
    config: SessionConfig,
    role: Role,
    state: State,
    sid: String,
    local: String,
    peer: String,
    /// Value of the `initiator` attribute we write.
    initiator: String,
    contents: Vec<ContentState>,
    next_id: u64,
    pending: Vec<PendingIq>,
    /// Id of our outstanding ICE-restart transport-info.
    local_restart: Option<String>,
    /// Ids of IQs sent before the session ended (and the final
    /// session-terminate): their replies are consumed silently.
    absorb: Vec<String>,
    transmits: VecDeque<Element>,
    events: VecDeque<Event>,
}

impl JingleSession {
    fn new(config: &SessionConfig, role: Role, sid: &str, local: &str, peer: &str) -> Self {
        Self {
            config: config.clone(),
            role,
            state: State::Pending,
            sid: sid.to_owned(),
            local: local.to_owned(),
            peer: peer.to_owned(),
            initiator: match role {
                Role::Initiator => local.to_owned(),
                Role::Responder => peer.to_owned(),
            },
            contents: Vec::new(),
            next_id: 0,
            pending: Vec::new(),
            local_restart: None,
            absorb: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Creates the session for a peer's session-initiate (we are responder)
    /// and answers it.
    ///
    /// Our JID is the IQ's `to` and the peer is the IQ's `from` (not the
    /// `initiator` attribute, which Movim sets to a bare JID).
    /// - Audio over ICE-UDP offered: IQ result, [`Event::Offer`] with the audio
    ///   contents, and a content-remove (reason `<unsupported-applications/>`)
    ///   for any other content (video…).
    /// - Nothing usable (e.g. only video): IQ result, then session-terminate
    ///   with `<unsupported-applications/>` (or `<unsupported-transports/>`
    ///   for audio over another transport); [`Event::Ended`] with
    ///   [`EndCause::Refused`].
    /// - No content at all: `bad-request`; [`Event::Ended`] with
    ///   [`EndCause::Malformed`].
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] when `iq` is not a session-initiate.
    pub fn responder(now: Instant, config: &SessionConfig, iq: JingleIq) -> Result<Self, Error> {
        if iq.jingle.action != Action::SessionInitiate {
            return Err(Error::ApiMisuse(
                "JingleSession::responder needs a session-initiate; answer other actions for \
                 unknown sids with unknown_session_reply",
            ));
        }
        let mut s = Self::new(config, Role::Responder, &iq.jingle.sid, &iq.to, &iq.from);
        if iq.jingle.contents.is_empty() {
            warn!(sid = %s.sid, "session-initiate without content");
            s.transmits.push_back(iq_error(
                &iq.id,
                &iq.to,
                &iq.from,
                IqErrorCondition::BadRequest,
                None,
            ));
            s.end(
                Reason::with_text(ReasonCondition::GeneralError, "no content"),
                EndCause::Malformed,
            );
            return Ok(s);
        }
        s.transmits.push_back(iq_result(&iq.id, &iq.to, &iq.from));
        let Jingle {
            contents, group, ..
        } = iq.jingle;
        let (audio, other): (Vec<Content>, Vec<Content>) =
            contents.into_iter().partition(Content::is_audio);
        if audio.is_empty() {
            let audio_elsewhere = other.iter().any(|c| {
                c.rtp().is_some_and(|d| d.is_audio())
                    && !matches!(c.transport, Some(Transport::IceUdp(_)))
            });
            let condition = if audio_elsewhere {
                ReasonCondition::UnsupportedTransports
            } else {
                ReasonCondition::UnsupportedApplications
            };
            info!(sid = %s.sid, reason = condition.as_str(), "refusing session without audio");
            s.send_terminate(now, Reason::new(condition), EndCause::Refused);
            return Ok(s);
        }
        for c in &audio {
            s.contents.push(ContentState {
                name: c.name.clone(),
                creator: c.creator,
                remote_ufrag: c.ice_udp().and_then(|t| t.ufrag.clone()),
            });
        }
        if !other.is_empty() {
            let mut j = s.jingle(Action::ContentRemove);
            j.contents = other
                .iter()
                .map(|c| Content::new(c.creator, c.name.clone()))
                .collect();
            j.reason = Some(Reason::new(ReasonCondition::UnsupportedApplications));
            debug!(sid = %s.sid, n = other.len(), "removing non-audio contents");
            s.send_iq(now, j, false);
        }
        debug!(sid = %s.sid, "session pending (responder)");
        s.events.push_back(Event::Offer {
            contents: audio,
            group,
        });
        Ok(s)
    }

    /// Creates a session as initiator (inbound PSTN → XMPP calls) and sends
    /// session-initiate from `local` to `peer` (the full JID that sent the
    /// JMI proceed).
    ///
    /// `contents` are sent as given (creator initiator, names ≤16 characters
    /// without whitespace for Conversations); the fingerprint must be
    /// `actpass` (INTEROP.md E.3).
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] when `contents` is empty or has no audio content.
    pub fn initiator(
        now: Instant,
        config: &SessionConfig,
        local: &str,
        peer: &str,
        sid: &str,
        contents: Vec<Content>,
        group: Option<Group>,
    ) -> Result<Self, Error> {
        if !contents.iter().any(Content::is_audio) {
            return Err(Error::ApiMisuse(
                "JingleSession::initiator needs at least one audio content over ICE-UDP",
            ));
        }
        let mut s = Self::new(config, Role::Initiator, sid, local, peer);
        s.contents = contents
            .iter()
            .map(|c| ContentState {
                name: c.name.clone(),
                creator: c.creator,
                remote_ufrag: None,
            })
            .collect();
        let mut j = s.jingle(Action::SessionInitiate);
        j.initiator = Some(s.local.clone());
        j.contents = contents;
        j.group = group;
        s.send_iq(now, j, true);
        debug!(sid = %s.sid, "session pending (initiator)");
        Ok(s)
    }

    // ----- A. getters ------------------------------------------------------

    /// The Jingle session id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The peer's JID (`to` of everything we send).
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Our JID (`from` of everything we send).
    pub fn local(&self) -> &str {
        &self.local
    }

    // ----- B. input --------------------------------------------------------

    /// Handles a Jingle IQ set of the peer addressed to this session, and
    /// answers it (drain [`poll_transmit`](Self::poll_transmit)).
    ///
    /// - From another JID, another sid, or after the session ended:
    ///   `item-not-found` + `<unknown-session/>`.
    /// - An action not valid now (a second session-initiate, a session-accept
    ///   to the initiator or twice, content-accept/-reject/transport-accept
    ///   we never asked for): `unexpected-request` + `<out-of-order/>`.
    /// - A peer ICE restart while ours is outstanding and we are initiator:
    ///   `conflict` + `<tie-break/>`.
    /// - A session-info payload we do not know: `feature-not-implemented` +
    ///   `<unsupported-info/>`; an unknown action: `feature-not-implemented`.
    /// - content-add: acknowledged, then refused with content-reject;
    ///   transport-replace: acknowledged, then transport-reject.
    /// - Everything else: an IQ result, and the matching [`Event`].
    pub fn handle_iq(&mut self, now: Instant, iq: JingleIq) {
        if iq.from != self.peer || iq.jingle.sid != self.sid || self.state == State::Ended {
            debug!(sid = %iq.jingle.sid, "jingle iq for no live session");
            self.transmits.push_back(unknown_session_reply(&iq));
            return;
        }
        let action = iq.jingle.action.clone();
        match action {
            Action::SessionInitiate
            | Action::ContentAccept
            | Action::ContentReject
            | Action::TransportAccept
            | Action::TransportReject => self.out_of_order(&iq),
            Action::SessionAccept => self.on_session_accept(now, iq),
            Action::SessionTerminate => {
                self.ack(&iq);
                let reason = iq
                    .jingle
                    .reason
                    .unwrap_or_else(|| Reason::new(ReasonCondition::Success));
                info!(sid = %self.sid, reason = reason.condition.as_str(), "peer terminated");
                self.end(reason, EndCause::PeerTerminated);
            }
            Action::SessionInfo => match iq.jingle.info.clone() {
                Some(SessionInfo::Unsupported { .. }) => self.transmits.push_back(iq_error(
                    &iq.id,
                    &iq.to,
                    &iq.from,
                    IqErrorCondition::FeatureNotImplemented,
                    Some(JingleErrorCondition::UnsupportedInfo),
                )),
                Some(info) => {
                    self.ack(&iq);
                    self.events.push_back(Event::Info(info));
                }
                None => self.ack(&iq),
            },
            Action::TransportInfo => self.on_transport_info(iq),
            Action::ContentAdd => {
                self.ack(&iq);
                let mut j = self.jingle(Action::ContentReject);
                j.contents = iq
                    .jingle
                    .contents
                    .iter()
                    .map(|c| Content::new(c.creator, c.name.clone()))
                    .collect();
                j.reason = Some(Reason::new(ReasonCondition::UnsupportedApplications));
                debug!(sid = %self.sid, "refusing content-add");
                self.send_iq(now, j, false);
            }
            Action::ContentRemove => {
                self.ack(&iq);
                let removed: Vec<&str> =
                    iq.jingle.contents.iter().map(|c| c.name.as_str()).collect();
                self.contents
                    .retain(|c| !removed.contains(&c.name.as_str()));
                if self.contents.is_empty() {
                    // XEP-0166 §7.2.6: no content left → session-terminate.
                    let reason = iq
                        .jingle
                        .reason
                        .unwrap_or_else(|| Reason::new(ReasonCondition::Success));
                    self.send_terminate(now, reason, EndCause::PeerTerminated);
                }
            }
            Action::TransportReplace => {
                self.ack(&iq);
                let mut j = self.jingle(Action::TransportReject);
                j.contents = iq
                    .jingle
                    .contents
                    .iter()
                    .map(|c| Content::new(c.creator, c.name.clone()))
                    .collect();
                self.send_iq(now, j, false);
            }
            Action::ContentModify | Action::DescriptionInfo | Action::SecurityInfo => {
                debug!(sid = %self.sid, action = action.as_str(), "ignored");
                self.ack(&iq);
            }
            Action::Other(_) => self.transmits.push_back(iq_error(
                &iq.id,
                &iq.to,
                &iq.from,
                IqErrorCondition::FeatureNotImplemented,
                None,
            )),
        }
    }

    /// Offers an `<iq type='result'|'error'/>` to the session; returns `true`
    /// when it answers one of our IQs (matched by `id`, which embeds the
    /// sid) and was consumed. Replies that arrive after the session ended
    /// (e.g. to our session-terminate) are consumed without effect.
    ///
    /// An error reply to session-initiate, session-accept or transport-info
    /// ends the session ([`EndCause::IqError`]); errors on session-info,
    /// content-remove/-reject and transport-reject are logged only, and a
    /// `<tie-break/>` on our ICE restart yields to the peer's restart.
    pub fn handle_response(&mut self, now: Instant, stanza: &Element) -> bool {
        let Some((id, response)) = parse_response(stanza) else {
            return false;
        };
        if let Some(pos) = self.absorb.iter().position(|a| a == id) {
            self.absorb.swap_remove(pos);
            return true;
        }
        let Some(pos) = self.pending.iter().position(|p| p.id == id) else {
            return false;
        };
        let p = self.pending.remove(pos);
        let was_restart = self.local_restart.as_deref() == Some(p.id.as_str());
        if was_restart {
            self.local_restart = None;
        }
        match response {
            IqResponse::Result => {
                debug!(sid = %self.sid, action = p.action.as_str(), "iq acknowledged");
            }
            IqResponse::Error { condition, jingle } => {
                if was_restart && jingle == Some(JingleErrorCondition::TieBreak) {
                    debug!(sid = %self.sid, "our ice restart lost the tie-break");
                } else if p.fatal {
                    warn!(sid = %self.sid, action = p.action.as_str(), %condition,
                        "peer refused our iq");
                    self.fail(
                        now,
                        p.action.clone(),
                        EndCause::IqError {
                            action: p.action,
                            condition,
                        },
                    );
                } else {
                    debug!(sid = %self.sid, action = p.action.as_str(), %condition,
                        "peer refused a non-essential iq");
                }
            }
        }
        true
    }

    /// Handles expired timers: IQs without a reply within
    /// [`SessionConfig::iq_timeout`]. A missing reply to session-initiate,
    /// session-accept or transport-info ends the session
    /// ([`EndCause::IqTimeout`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        let (expired, keep): (Vec<PendingIq>, Vec<PendingIq>) =
            self.pending.drain(..).partition(|p| p.deadline <= now);
        self.pending = keep;
        for p in expired {
            if self.local_restart.as_deref() == Some(p.id.as_str()) {
                self.local_restart = None;
            }
            if p.fatal && self.state != State::Ended {
                warn!(sid = %self.sid, action = p.action.as_str(), "no reply to our iq");
                self.fail(
                    now,
                    p.action.clone(),
                    EndCause::IqTimeout { action: p.action },
                );
            }
        }
    }

    // ----- C. commands -----------------------------------------------------

    /// Responder: sends session-info `<ringing/>`
    /// ([XEP-0167 §7](https://xmpp.org/extensions/xep-0167.html#info)) on SIP
    /// 180/183. An error reply is ignored.
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] unless we are responder in state pending.
    pub fn ringing(&mut self, now: Instant) -> Result<(), Error> {
        if self.role != Role::Responder || self.state != State::Pending {
            return Err(Error::ApiMisuse(
                "ringing is only for a pending session we are responder of",
            ));
        }
        self.send_info(now, SessionInfo::Ringing)
    }

    /// Sends a session-info payload (hold, active, mute…). An error reply is
    /// ignored.
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] when the session ended.
    pub fn send_info(&mut self, now: Instant, info: SessionInfo) -> Result<(), Error> {
        self.check_live()?;
        let mut j = self.jingle(Action::SessionInfo);
        j.info = Some(info);
        self.send_iq(now, j, false);
        Ok(())
    }

    /// Responder: sends session-accept with `contents` (our answer: one RTP
    /// description and ICE-UDP transport with an `active`/`passive`
    /// fingerprint per offered audio content) and the optional group; the
    /// session becomes active. Each content's `creator` is replaced by the
    /// one of the offer; `initiator`/`responder` attributes are the peer's
    /// and our JID.
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] unless we are responder in state pending, or when
    /// a content name was not offered (or was refused).
    pub fn accept(
        &mut self,
        now: Instant,
        mut contents: Vec<Content>,
        group: Option<Group>,
    ) -> Result<(), Error> {
        if self.role != Role::Responder || self.state != State::Pending {
            return Err(Error::ApiMisuse(
                "accept is only for a pending session we are responder of",
            ));
        }
        if contents.is_empty() {
            return Err(Error::ApiMisuse("accept needs at least one content"));
        }
        for c in &mut contents {
            c.creator = self
                .content(&c.name)
                .ok_or(Error::ApiMisuse(
                    "accept names a content the peer did not offer",
                ))?
                .creator;
        }
        let mut j = self.jingle(Action::SessionAccept);
        j.initiator = Some(self.initiator.clone());
        j.responder = Some(self.local.clone());
        j.contents = contents;
        j.group = group;
        self.send_iq(now, j, true);
        self.state = State::Active;
        info!(sid = %self.sid, "session active");
        Ok(())
    }

    /// Sends a transport-info for content `content` (trickled candidates, or
    /// the answer to a peer's ICE restart with our new `ufrag`/`pwd` and
    /// fingerprint). An error or no reply ends the session.
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] when the session ended or the content is unknown.
    pub fn send_transport_info(
        &mut self,
        now: Instant,
        content: &str,
        transport: IceUdpTransport,
    ) -> Result<(), Error> {
        self.transport_info(now, content, transport).map(|_| ())
    }

    /// Starts an ICE restart: sends a transport-info with our new
    /// `ufrag`/`pwd` (and fingerprint, usually no candidates; XEP-0176 §7).
    /// See the type doc for glare handling.
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] when the session ended or the content is unknown.
    pub fn restart_ice(
        &mut self,
        now: Instant,
        content: &str,
        transport: IceUdpTransport,
    ) -> Result<(), Error> {
        let id = self.transport_info(now, content, transport)?;
        self.local_restart = Some(id);
        Ok(())
    }

    /// Sends session-terminate with `reason` and ends the session
    /// ([`Event::Ended`] with [`EndCause::LocalTerminated`]). A no-op once
    /// ended, so hanging up twice is harmless.
    pub fn terminate(&mut self, now: Instant, reason: Reason) {
        if self.state != State::Ended {
            info!(sid = %self.sid, reason = reason.condition.as_str(), "terminating");
            self.send_terminate(now, reason, EndCause::LocalTerminated);
        }
    }

    // ----- D. output -------------------------------------------------------

    /// The next stanza to send, in order. Changes after every constructor,
    /// `handle_*` and command.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Element> {
        self.transmits.pop_front()
    }

    /// The next event for the call layer. Changes after every constructor,
    /// `handle_*` and command.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout): the earliest
    /// deadline of an IQ awaiting its reply; `None` when nothing is pending
    /// (always once ended). Changes after every `handle_*` and command.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.deadline).min()
    }

    // ----- internals -------------------------------------------------------

    fn content(&self, name: &str) -> Option<&ContentState> {
        self.contents.iter().find(|c| c.name == name)
    }

    fn check_live(&self) -> Result<(), Error> {
        if self.state == State::Ended {
            Err(Error::ApiMisuse("the jingle session has ended"))
        } else {
            Ok(())
        }
    }

    fn jingle(&self, action: Action) -> Jingle {
        Jingle::new(action, self.sid.clone())
    }

    fn ack(&mut self, iq: &JingleIq) {
        self.transmits
            .push_back(iq_result(&iq.id, &iq.to, &iq.from));
    }

    fn out_of_order(&mut self, iq: &JingleIq) {
        warn!(sid = %self.sid, action = iq.jingle.action.as_str(), state = ?self.state,
            "out-of-order jingle action");
        self.transmits.push_back(iq_error(
            &iq.id,
            &iq.to,
            &iq.from,
            IqErrorCondition::UnexpectedRequest,
            Some(JingleErrorCondition::OutOfOrder),
        ));
    }

    /// Queues an IQ set and tracks its reply; returns its id.
    fn send_iq(&mut self, now: Instant, jingle: Jingle, fatal: bool) -> String {
        self.next_id += 1;
        let id = format!("{}-{}-{}", self.config.id_prefix, self.sid, self.next_id);
        self.transmits
            .push_back(iq_set(&id, &self.local, &self.peer, &jingle));
        self.pending.push(PendingIq {
            id: id.clone(),
            action: jingle.action,
            deadline: now + self.config.iq_timeout,
            fatal,
        });
        id
    }

    fn transport_info(
        &mut self,
        now: Instant,
        content: &str,
        transport: IceUdpTransport,
    ) -> Result<String, Error> {
        self.check_live()?;
        let creator = self
            .content(content)
            .ok_or(Error::ApiMisuse("transport-info for an unknown content"))?
            .creator;
        let mut c = Content::new(creator, content);
        c.transport = Some(Transport::IceUdp(transport));
        let mut j = self.jingle(Action::TransportInfo);
        j.contents = vec![c];
        Ok(self.send_iq(now, j, true))
    }

    fn send_terminate(&mut self, now: Instant, reason: Reason, cause: EndCause) {
        let mut j = self.jingle(Action::SessionTerminate);
        j.reason = Some(reason.clone());
        self.send_iq(now, j, false);
        self.end(reason, cause);
    }

    fn end(&mut self, reason: Reason, cause: EndCause) {
        self.state = State::Ended;
        self.absorb.extend(self.pending.drain(..).map(|p| p.id));
        self.local_restart = None;
        self.events.push_back(Event::Ended { reason, cause });
    }

    /// Ends the session after our IQ `action` failed.
    fn fail(&mut self, now: Instant, action: Action, cause: EndCause) {
        let condition = match cause {
            EndCause::IqTimeout { .. } => ReasonCondition::ConnectivityError,
            _ => ReasonCondition::GeneralError,
        };
        let reason =
            Reason::with_text(condition, format!("no usable reply to {}", action.as_str()));
        if action == Action::SessionInitiate {
            // The peer never took the session: nothing to terminate.
            self.end(reason, cause);
        } else {
            self.send_terminate(now, reason, cause);
        }
    }

    fn on_session_accept(&mut self, now: Instant, iq: JingleIq) {
        if self.role != Role::Initiator || self.state != State::Pending {
            return self.out_of_order(&iq);
        }
        self.ack(&iq);
        let Jingle {
            contents, group, ..
        } = iq.jingle;
        let accepted: Vec<Content> = contents
            .into_iter()
            .filter(|c| c.is_audio() && self.content(&c.name).is_some())
            .collect();
        if accepted.is_empty() {
            warn!(sid = %self.sid, "session-accept without any offered audio content");
            self.send_terminate(
                now,
                Reason::new(ReasonCondition::IncompatibleParameters),
                EndCause::LocalTerminated,
            );
            return;
        }
        self.contents
            .retain(|s| accepted.iter().any(|c| c.name == s.name));
        for c in &accepted {
            let Some(ufrag) = c.ice_udp().and_then(|t| t.ufrag.clone()) else {
                continue;
            };
            if let Some(s) = self.contents.iter_mut().find(|s| s.name == c.name) {
                s.remote_ufrag = Some(ufrag);
            }
        }
        self.state = State::Active;
        info!(sid = %self.sid, "session active");
        self.events.push_back(Event::Accepted {
            contents: accepted,
            group,
        });
    }

    fn on_transport_info(&mut self, mut iq: JingleIq) {
        let mut events = Vec::new();
        let mut restarted = Vec::new();
        for c in std::mem::take(&mut iq.jingle.contents) {
            let Some(Transport::IceUdp(t)) = c.transport else {
                continue;
            };
            let Some(state) = self.content(&c.name) else {
                // e.g. candidates for a video content we refused.
                debug!(sid = %self.sid, content = %c.name, "transport-info for unknown content");
                continue;
            };
            let restart = match (&state.remote_ufrag, &t.ufrag) {
                (Some(old), Some(new)) => old != new,
                _ => false,
            };
            if restart {
                restarted.push((c.name.clone(), t.ufrag.clone()));
                events.push(Event::IceRestart {
                    content: c.name,
                    transport: t,
                });
            } else {
                if state.remote_ufrag.is_none() && t.ufrag.is_some() {
                    restarted.push((c.name.clone(), t.ufrag.clone()));
                }
                events.push(Event::TransportInfo {
                    content: c.name,
                    transport: t,
                });
            }
        }
        let is_restart = events.iter().any(|e| matches!(e, Event::IceRestart { .. }));
        if is_restart && self.local_restart.is_some() && self.role == Role::Initiator {
            debug!(sid = %self.sid, "simultaneous ice restart: ours wins");
            self.transmits.push_back(iq_error(
                &iq.id,
                &iq.to,
                &iq.from,
                IqErrorCondition::Conflict,
                Some(JingleErrorCondition::TieBreak),
            ));
            return;
        }
        if is_restart {
            if let Some(ours) = self.local_restart.take() {
                debug!(sid = %self.sid, "simultaneous ice restart: the initiator's wins");
                // The peer will refuse ours with a tie-break: not an error.
                if let Some(p) = self.pending.iter_mut().find(|p| p.id == ours) {
                    p.fatal = false;
                }
            }
        }
        self.ack(&iq);
        for (name, ufrag) in restarted {
            if let Some(s) = self.contents.iter_mut().find(|s| s.name == name) {
                s.remote_ufrag = ufrag;
            }
        }
        self.events.extend(events);
    }
}
