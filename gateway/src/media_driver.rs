//! The per-call media driver: one tokio task per call (STYLE.md R5) around an
//! [`ice::Agent`] (client leg) and a [`media::Session`] (both legs), with one UDP socket
//! per client-leg host candidate and one UDP socket for the trunk leg.
//!
//! The task `select!`s over the sockets, the command channel and a timer armed at the
//! earliest of [`ice::Agent::poll_timeout`] and [`media::Session::poll_timeout`]. Client-leg
//! datagrams are demultiplexed by their first byte ([RFC 7983](https://www.rfc-editor.org/rfc/rfc7983)):
//! STUN goes to the ICE agent; DTLS, SRTP and SRTCP go to the media session only when they
//! come from the ICE-selected remote address to the selected local base. DTLS starts when
//! ICE first selects a pair; media goes to the selected (nominated) pair and follows its
//! changes. The media session sends nothing but DTLS on the client leg before the
//! handshake completed. On the trunk leg the driver latches to the source of the first
//! packet (symmetric RTP, [RFC 4961](https://www.rfc-editor.org/rfc/rfc4961)), whatever the
//! signalled address was.
//!
//! The session is built once both legs' negotiated media parameters are known: they can
//! be given at [`CallMedia::spawn`] or later with [`CallMediaHandle::set_client_media`] and
//! [`CallMediaHandle::set_trunk_media`] (inbound calls learn the client's codec and
//! fingerprint from its session-accept, outbound calls the trunk's from the SIP answer).
//! Media arriving before that is dropped.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gateway::media_driver::Error> {
//! use std::sync::Arc;
//! use gateway::media_driver::{BindParams, CallMedia, CallMediaParams, ClientLegParams};
//!
//! let params = CallMediaParams {
//!     call_id: "call-1".into(),
//!     media_config: Arc::new(media::Config::default()),
//!     ice_config: ice::Config::default(),
//!     client: ClientLegParams { ice_role: ice::Role::Controlled, media: None },
//!     trunk: None,
//!     bind: BindParams::loopback(),
//!     rng_seed: None,
//! };
//! let (handle, mut events, local) = CallMedia::spawn(params).await?;
//! // signal local.ice, local.candidates, local.fingerprint, local.setup, local.trunk_rtp …
//! handle.remote_ice_credentials("ufrag", "passwordpasswordpassword")?;
//! while let Some(event) = events.recv().await {
//!     tracing::info!(?event, "media");
//! }
//! # Ok(()) }
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;

use ice::{Candidate, CandidateKind, Credentials};
use media::cert::Fingerprint;
use media::codec::Codec;
use media::config::Security;
use media::dtls::Setup;
use media::stats::LegStats;
use media::Leg;
use tokio::sync::{mpsc, oneshot};

mod task;
#[cfg(test)]
mod tests;

/// Capacity of the event channel; events are few per call (a handful at setup, one per
/// no-media/resume), so a slow reader only delays the call's own task.
const EVENT_CAPACITY: usize = 64;

/// The event stream of one call (a tokio `mpsc` receiver: `recv().await` in async code,
/// `try_recv`/`blocking_recv` elsewhere). It ends after [`CallMediaEvent::Stopped`].
pub type CallMediaEvents = mpsc::Receiver<CallMediaEvent>;

/// Errors of the media driver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No UDP socket could be bound on an address of [`BindParams`] (in the port range,
    /// if one was given).
    #[error("cannot bind a media socket on {ip}: {source}")]
    Bind {
        /// The address that failed.
        ip: IpAddr,
        /// The last bind error.
        #[source]
        source: std::io::Error,
    },
    /// [`BindParams::client_ips`] was empty: there is nothing to offer as a candidate.
    /// Configure at least one address.
    #[error("no client-leg address to bind")]
    NoClientAddress,
    /// The ICE agent refused a command (bad credentials, a local address it does not know).
    #[error("ice: {0}")]
    Ice(#[from] ice::Error),
    /// The media engine refused the parameters (for example DTLS on the trunk leg, or
    /// plain RTP on the client leg without `allow_unencrypted_client`).
    #[error("media: {0}")]
    Media(#[from] media::Error),
    /// The call's task has ended (after [`CallMediaHandle::stop`] or a failure); the
    /// command was not executed.
    #[error("the call's media task has stopped")]
    Stopped,
}

/// Everything the driver needs to start a call's media.
#[derive(Debug, Clone)]
pub struct CallMediaParams {
    /// Identifies the call in the task's tracing span (`media{call=…}`).
    pub call_id: String,
    /// Media engine settings shared by all calls.
    pub media_config: Arc<media::Config>,
    /// ICE agent settings (timers; its RNG seed is replaced by one drawn from
    /// [`rng_seed`](Self::rng_seed) or the OS).
    pub ice_config: ice::Config,
    /// The client (Jingle) leg.
    pub client: ClientLegParams,
    /// The trunk (SIP) leg's negotiated media, if already known; else give it later with
    /// [`CallMediaHandle::set_trunk_media`].
    pub trunk: Option<TrunkMedia>,
    /// Where to bind the sockets.
    pub bind: BindParams,
    /// Seed for every random choice of the call (ICE credentials and tie-breaker, DTLS
    /// certificate key, SSRCs, initial sequence numbers). `None` draws from the OS; tests
    /// pass a fixed seed.
    pub rng_seed: Option<[u8; 32]>,
}

/// The client leg: ICE role and, once negotiated, the media parameters.
#[derive(Debug, Clone)]
pub struct ClientLegParams {
    /// Our ICE role ([RFC 8445 §6.1.1](https://www.rfc-editor.org/rfc/rfc8445#section-6.1.1)):
    /// controlling when we sent the Jingle `session-initiate` (inbound calls), controlled
    /// when the client did (outbound calls).
    pub ice_role: ice::Role,
    /// The negotiated media of the client leg, if already known (we answer the client's
    /// offer); else give it with [`CallMediaHandle::set_client_media`] when its answer
    /// arrives.
    pub media: Option<ClientMedia>,
}

/// Negotiated media parameters of the client leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMedia {
    /// The audio codec (Opus or G.711).
    pub codec: Codec,
    /// Its RTP payload type.
    pub payload_type: u8,
    /// Payload type of `telephone-event` ([RFC 4733](https://www.rfc-editor.org/rfc/rfc4733))
    /// at the codec's clock rate (48 kHz with Opus), if negotiated. What we send to the
    /// client uses this one (INTEROP.md E.7).
    pub telephone_event: Option<u8>,
    /// The client's other `telephone-event` payload types as `(payload type, clock rate
    /// in Hz)`: accepted on receive, durations converted from their own clock, and relayed
    /// to the trunk on its telephone-event (see `media::LegConfig::extra_telephone_events`).
    /// Chromium answers Opus keeping `telephone-event/8000` too and sends digits on it.
    pub extra_telephone_events: Vec<(u8, u32)>,
    /// DTLS-SRTP parameters; `None` for plain RTP, accepted only with
    /// `media::Config::allow_unencrypted_client`.
    pub dtls: Option<ClientDtls>,
}

/// DTLS-SRTP parameters of the client leg ([RFC 5763](https://www.rfc-editor.org/rfc/rfc5763),
/// [XEP-0320](https://xmpp.org/extensions/xep-0320.html)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientDtls {
    /// The `setup` WE take: `active` (we send the ClientHello as soon as ICE selects a
    /// pair) or `passive`. Never `actpass` (rejected with [`Error::Media`] when the
    /// session is built; see [`media::dtls::Setup::answer`]).
    pub local_setup: Setup,
    /// The client's signalled sha-256 certificate fingerprint; a certificate that does
    /// not match fails the call with a security error ([`Failure::Security`]).
    pub remote_fingerprint: Fingerprint,
}

/// Negotiated media parameters of the trunk leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkMedia {
    /// The audio codec (G.711 usually; Opus if the trunk offers it).
    pub codec: Codec,
    /// Its RTP payload type.
    pub payload_type: u8,
    /// Payload type of `telephone-event` at 8 kHz (RFC 4733), if negotiated.
    pub telephone_event: Option<u8>,
    /// [`Security::Plain`] (RTP/AVP) or [`Security::Sdes`] (RTP/SAVP,
    /// [RFC 4568](https://www.rfc-editor.org/rfc/rfc4568)); the caller generates our key
    /// (`media::srtp::MasterKey::generate`) and signals it.
    pub security: Security,
    /// The address from the trunk's SDP (`c=` and `m=` port). Media goes there until the
    /// first packet from the trunk arrives; from then on to that packet's source
    /// (symmetric RTP). `None`: wait for the trunk to send first. Our RTCP goes to the
    /// same address (rtcp-mux, [RFC 5761](https://www.rfc-editor.org/rfc/rfc5761)) until the
    /// trunk sends RTCP to our port + 1; from then on to that RTCP's source.
    pub remote: Option<SocketAddr>,
}

/// Where the call's UDP sockets are bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindParams {
    /// One socket and one host candidate per address on the client leg (for example
    /// `127.0.0.1` and `::1` in tests, the configured public addresses in production).
    pub client_ips: Vec<IpAddr>,
    /// Address of the trunk-leg RTP socket.
    pub trunk_ip: IpAddr,
    /// UDP port range for every socket, inclusive; `None` lets the OS choose (port 0).
    /// Ports are tried in order from a random start within the range.
    pub ports: Option<RangeInclusive<u16>>,
}

impl BindParams {
    /// `127.0.0.1` and `::1` on the client leg, `127.0.0.1` on the trunk leg, any port.
    pub fn loopback() -> Self {
        Self {
            client_ips: vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
            trunk_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: None,
        }
    }
}

/// What signalling needs from us, returned by [`CallMedia::spawn`].
#[derive(Debug, Clone)]
pub struct LocalDescription {
    /// Our ICE ufrag and pwd (Jingle `<transport ufrag pwd>`, SDP `a=ice-ufrag`/`a=ice-pwd`).
    pub ice: Credentials,
    /// Our host candidates, one per [`BindParams::client_ips`] address; all gathered
    /// (signal end-of-candidates too).
    pub candidates: Vec<Candidate>,
    /// Our DTLS certificate's sha-256 fingerprint (Jingle `<fingerprint hash='sha-256'>`).
    pub fingerprint: Fingerprint,
    /// The `setup` to signal: [`ClientDtls::local_setup`] if the client media was given
    /// at spawn, else `actpass` (we offer).
    pub setup: Setup,
    /// Our trunk-leg RTP address (SDP `c=`/`m=` towards the SIP trunk); its port is even
    /// and we also receive RTCP on port + 1 (RFC 3550 §11; no `a=rtcp` needed), as well as
    /// muxed on this port (offer `a=rtcp-mux`).
    pub trunk_rtp: SocketAddr,
}

/// Events of one call's media, in order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CallMediaEvent {
    /// ICE selected (nominated) a pair, the first time or a new one; media follows it.
    IceSelected {
        /// Our candidate (its base is the socket we send from).
        local: Candidate,
        /// The client's candidate media goes to.
        remote: Candidate,
    },
    /// The ICE connection state changed (`Disconnected` and `Failed` are recoverable by
    /// a new nomination or an ICE restart; the call logic decides when to give up).
    IceState(ice::ConnectionState),
    /// Consent to send was lost ([RFC 7675 §5.1](https://www.rfc-editor.org/rfc/rfc7675#section-5.1)):
    /// nothing is sent on the client leg until ICE selects a pair again.
    ConsentLost,
    /// The agent restarted ICE after [`CallMediaHandle::remote_ice_restart`]: our new
    /// credentials, to send to the client.
    IceRestarted {
        /// Our new ufrag and pwd.
        ice: Credentials,
    },
    /// [`CallMediaHandle::remote_ice_restart`] was refused: the client's credentials are
    /// invalid; ICE goes on with the old ones.
    IceRestartFailed {
        /// Why.
        error: String,
    },
    /// The DTLS handshake completed and the client's certificate matched its fingerprint.
    DtlsConnected {
        /// The negotiated SRTP protection profile.
        profile: media::srtp::SrtpProfile,
    },
    /// Media arrives from `leg`: its first RTP packet, or again after [`Self::NoMedia`].
    MediaFlowing {
        /// The leg media comes from.
        leg: Leg,
    },
    /// No RTP from `leg` for `media::Config::no_media_timeout` (default 30 s).
    NoMedia {
        /// The silent leg.
        leg: Leg,
    },
    /// The call's media failed; [`Self::Stopped`] follows and the task ends.
    Failed {
        /// Why.
        error: Failure,
    },
    /// The task ended (after [`CallMediaHandle::stop`], a failure, or every handle dropped).
    /// Always the last event.
    Stopped {
        /// Statistics of the client leg.
        client: LegStats,
        /// Statistics of the trunk leg.
        trunk: LegStats,
    },
}

/// Why a call's media failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// Security error: the client's DTLS certificate did not match the signalled
    /// fingerprint, or the handshake failed ([RFC 8122 §5](https://www.rfc-editor.org/rfc/rfc8122#section-5)).
    /// Map it to the Jingle reason `security-error`.
    #[error("security error: {0}")]
    Security(media::Error),
    /// The DTLS handshake did not complete in time (`media::dtls::DtlsConfig`).
    #[error("dtls timed out")]
    DtlsTimedOut,
    /// Another fatal media engine error.
    #[error("media: {0}")]
    Media(media::Error),
    /// A socket failed (not a single lost datagram: the socket itself).
    #[error("socket: {0}")]
    Io(String),
}

impl Failure {
    /// Whether this is a security error (Jingle `security-error`).
    pub fn is_security(&self) -> bool {
        matches!(self, Self::Security(_))
    }

    fn from_media(e: media::Error) -> Self {
        if e.is_security() {
            Self::Security(e)
        } else if e == media::Error::TimedOut {
            Self::DtlsTimedOut
        } else {
            Self::Media(e)
        }
    }
}

/// Commands from handles to the task.
enum Command {
    RemoteIceCredentials {
        ufrag: String,
        pwd: String,
    },
    RemoteCandidate(Candidate),
    EndOfCandidates,
    IceRestart(oneshot::Sender<Credentials>),
    RemoteIceRestart {
        ufrag: String,
        pwd: String,
    },
    SetClientMedia(ClientMedia),
    SetClientPeerFingerprint {
        fingerprint: Fingerprint,
        local_setup: Setup,
    },
    SetTrunkMedia(TrunkMedia),
    SetTrunkRemote(SocketAddr),
    Stop,
}

/// The per-call media driver; see the [module docs](self).
#[derive(Debug)]
pub struct CallMedia;

impl CallMedia {
    /// Binds the call's sockets, gathers the host candidates, creates the DTLS
    /// certificate and spawns the call's task on the current tokio runtime.
    ///
    /// Returns a handle for commands, the event stream (ends after
    /// [`CallMediaEvent::Stopped`]) and what to signal.
    ///
    /// # Errors
    /// [`Error::NoClientAddress`], [`Error::Bind`] (no free port in the range),
    /// [`Error::Ice`] (an address the agent rejects), [`Error::Media`] (certificate
    /// generation failed).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn spawn(
        params: CallMediaParams,
    ) -> Result<(CallMediaHandle, CallMediaEvents, LocalDescription), Error> {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_CAPACITY);
        let (driver, local) = task::Driver::new(params, cmd_rx, ev_tx)?;
        tokio::spawn(driver.run());
        Ok((CallMediaHandle { tx: cmd_tx }, ev_rx, local))
    }
}

impl CallMedia {
    /// As [`spawn`](Self::spawn), for callers without a tokio runtime (interop tests,
    /// tools): runs the call's task on a new thread with its own current-thread runtime,
    /// which ends with the task. Use the returned receiver's `blocking_recv`.
    ///
    /// # Errors
    /// As [`spawn`](Self::spawn); [`Error::Media`] with `media::Error::Local` if the
    /// thread or runtime cannot be created.
    pub fn spawn_on_own_thread(
        params: CallMediaParams,
    ) -> Result<(CallMediaHandle, CallMediaEvents, LocalDescription), Error> {
        let local_err = |e: std::io::Error| Error::Media(media::Error::Local(e.to_string()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(local_err)?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("media-{}", params.call_id))
            .spawn(move || {
                rt.block_on(async move {
                    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
                    let (ev_tx, ev_rx) = mpsc::channel(EVENT_CAPACITY);
                    match task::Driver::new(params, cmd_rx, ev_tx) {
                        Ok((driver, local)) => {
                            let _ = tx.send(Ok((CallMediaHandle { tx: cmd_tx }, ev_rx, local)));
                            driver.run().await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(local_err)?;
        rx.recv().map_err(|_| Error::Stopped)?
    }
}

/// Commands to one call's media task. Cheap to clone; the task ends (with
/// [`CallMediaEvent::Stopped`]) when [`stop`](Self::stop) is called or every handle is dropped.
///
/// Commands are queued without waiting (the channel is unbounded; signalling produces a
/// handful per call) and executed in order. Each returns [`Error::Stopped`] if the task
/// has already ended.
#[derive(Debug, Clone)]
pub struct CallMediaHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl CallMediaHandle {
    fn send(&self, c: Command) -> Result<(), Error> {
        self.tx.send(c).map_err(|_| Error::Stopped)
    }

    /// The client's ICE ufrag and pwd. A change later is the client's ICE restart
    /// ([RFC 8445 §9](https://www.rfc-editor.org/rfc/rfc8445#section-9)): answer it with
    /// [`ice_restart`](Self::ice_restart) to get our new credentials. Bad credentials
    /// (ufrag < 4, pwd < 22 characters) are logged and ignored by the task.
    ///
    /// # Errors
    /// [`Error::Stopped`].
    pub fn remote_ice_credentials(&self, ufrag: &str, pwd: &str) -> Result<(), Error> {
        self.send(Command::RemoteIceCredentials {
            ufrag: ufrag.to_owned(),
            pwd: pwd.to_owned(),
        })
    }

    /// A candidate of the client (inline or trickled, [RFC 8838](https://www.rfc-editor.org/rfc/rfc8838)).
    ///
    /// # Errors
    /// [`Error::Stopped`].
    pub fn remote_candidate(&self, candidate: Candidate) -> Result<(), Error> {
        self.send(Command::RemoteCandidate(candidate))
    }

    /// The client signalled end-of-candidates ([RFC 8838 §13](https://www.rfc-editor.org/rfc/rfc8838#section-13)).
    ///
    /// # Errors
    /// [`Error::Stopped`].
    pub fn end_of_candidates(&self) -> Result<(), Error> {
        self.send(Command::EndOfCandidates)
    }

    /// ICE restart ([RFC 8445 §9](https://www.rfc-editor.org/rfc/rfc8445#section-9)): new
    /// local credentials, to signal with the same host candidates. The selected pair keeps
    /// carrying media until a new one is selected.
    ///
    /// # Errors
    /// [`Error::Stopped`].
    pub async fn ice_restart(&self) -> Result<Credentials, Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::IceRestart(tx))?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// The client restarted ICE with these new credentials (a Jingle `transport-info`
    /// with a new ufrag/pwd, XEP-0176 §7): the agent takes them, restarts with new local
    /// credentials and reports them as [`CallMediaEvent::IceRestarted`], to signal with
    /// the same fingerprint (the DTLS association and SRTP keys survive the restart) and
    /// our host candidates. The selected pair keeps carrying media until a pair is
    /// selected under the new credentials ([`CallMediaEvent::IceSelected`]). Bad
    /// credentials (ufrag < 4, pwd < 22 characters) give
    /// [`CallMediaEvent::IceRestartFailed`].
    ///
    /// # Errors
    /// [`Error::Stopped`].
    pub fn remote_ice_restart(&self, ufrag: &str, pwd: &str) -> Result<(), Error> {
        self.send(Command::RemoteIceRestart {
            ufrag: ufrag.to_owned(),
            pwd: pwd.to_owned(),
        })
    }

    /// The client leg's negotiated media (the client's answer arrived). Ignored with a
    /// warning once the media session exists (codec changes need a new call).
    ///
    /// # Errors
    /// [`Error::Stopped`].
    pub fn set_client_media(&self, media: ClientMedia) -> Result<(), Error> {
        self.send(Command::SetClientMedia(media))
    }

    /// The client's DTLS fingerprint and the `setup` we take, when they arrive apart from
    /// the codec (patches [`ClientMedia::dtls`] of the client media already given).
    /// Ignored with a warning once the media session exists.
    ///
    /// # Errors
    /// [`Error::Stopped`].
    pub fn set_client_peer_fingerprint(
        &self,
        fingerprint: Fingerprint,
        local_setup: Setup,
    ) -> Result<(), Error> {
        self.send(Command::SetClientPeerFingerprint {
            fingerprint,
            local_setup,
        })
    }

    /// The trunk leg's negotiated media (the SIP answer or offer). Ignored with a warning
    /// once the media session exists, except [`TrunkMedia::remote`], which is applied.
    ///
    /// # Errors
    /// [`Error::Stopped`].
    pub fn set_trunk_media(&self, media: TrunkMedia) -> Result<(), Error> {
        self.send(Command::SetTrunkMedia(media))
    }

    /// The trunk's RTP address from its SDP (a re-INVITE or UPDATE may change it). The
    /// driver still latches to the source of the first packet the trunk sends after this
    /// (symmetric RTP).
    ///
    /// # Errors
    /// [`Error::Stopped`].
    pub fn set_trunk_remote(&self, addr: SocketAddr) -> Result<(), Error> {
        self.send(Command::SetTrunkRemote(addr))
    }

    /// Ends the call's media: the task emits [`CallMediaEvent::Stopped`] with the
    /// statistics and ends.
    ///
    /// # Errors
    /// [`Error::Stopped`] if it had already ended.
    pub fn stop(&self) -> Result<(), Error> {
        self.send(Command::Stop)
    }
}

/// The candidate types of a selected pair, for the call summary (`host/prflx`).
pub fn pair_types(local: &Candidate, remote: &Candidate) -> String {
    fn t(k: CandidateKind) -> &'static str {
        k.as_sdp()
    }
    format!("{}/{}", t(local.kind), t(remote.kind))
}
