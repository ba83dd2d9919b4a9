//! The sans-IO DTLS 1.2 endpoint of DTLS-SRTP ([RFC 5763](https://www.rfc-editor.org/rfc/rfc5763),
//! [RFC 5764](https://www.rfc-editor.org/rfc/rfc5764)) over `dimpl`: role from the Jingle/SDP
//! `setup` attribute, the peer certificate checked against the signalled fingerprint,
//! SRTP master keys exported.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cert::{Certificate, Fingerprint};
use crate::error::{Error, PeerMisbehaved, Result};
use crate::srtp::{MasterKey, SrtpProfile};

/// The `setup` attribute ([RFC 4145 §4](https://www.rfc-editor.org/rfc/rfc4145#section-4),
/// [RFC 8842 §5](https://www.rfc-editor.org/rfc/rfc8842#section-5), Jingle `<fingerprint setup=…>`
/// of [XEP-0320](https://xmpp.org/extensions/xep-0320.html)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The endpoint initiates the DTLS handshake (DTLS client).
    Active,
    /// The endpoint waits for the ClientHello (DTLS server).
    Passive,
    /// Either; only valid in an offer.
    Actpass,
}

impl Setup {
    /// Our answer to an offered `setup`: `actpass` → `active` (we send the ClientHello as
    /// soon as ICE selects a pair), `active` → `passive`, `passive` → `active`. Never `actpass`.
    pub fn answer(offered: Self) -> Self {
        match offered {
            Self::Active => Self::Passive,
            Self::Passive | Self::Actpass => Self::Active,
        }
    }

    /// Parses the attribute value (`active`, `passive`, `actpass`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "active" => Some(Self::Active),
            "passive" => Some(Self::Passive),
            "actpass" => Some(Self::Actpass),
            _ => None,
        }
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Passive => "passive",
            Self::Actpass => "actpass",
        }
    }
}

/// Which end of the DTLS handshake we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsRole {
    /// We send the ClientHello (`setup:active`).
    Client,
    /// We answer it (`setup:passive`).
    Server,
}

impl DtlsRole {
    /// The role for our own negotiated `setup`.
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] for `actpass`: the role is only known once the answer arrives.
    pub fn from_local_setup(local: Setup) -> Result<Self> {
        match local {
            Setup::Active => Ok(Self::Client),
            Setup::Passive => Ok(Self::Server),
            Setup::Actpass => Err(Error::ApiMisuse(
                "dtls role from actpass: wait for the answer's setup",
            )),
        }
    }
}

/// SRTP keys exported by a completed handshake, [RFC 5764 §4.2](https://www.rfc-editor.org/rfc/rfc5764#section-4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The negotiated protection profile.
    pub profile: SrtpProfile,
    /// Key for what we send (protect).
    pub local: MasterKey,
    /// Key for what we receive (unprotect).
    pub remote: MasterKey,
}

/// Events of the DTLS endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DtlsEvent {
    /// The handshake completed, the peer certificate matched the fingerprint, keys exported.
    Connected(SrtpKeys),
    /// The peer closed the association (close_notify).
    Closed,
}

/// Handshake retransmission and give-up settings.
#[derive(Debug, Clone)]
pub struct DtlsConfig {
    /// First flight retransmit timeout; defaults to 1 s ([RFC 6347 §4.2.4.1](https://www.rfc-editor.org/rfc/rfc6347#section-4.2.4.1)).
    pub flight_start_rto: Duration,
    /// Give up the handshake after this long; defaults to 40 s.
    pub handshake_timeout: Duration,
    /// Path MTU for handshake records, in bytes; defaults to 1150 (fits TURN over IPv6).
    pub mtu: usize,
}

impl Default for DtlsConfig {
    fn default() -> Self {
        Self {
            flight_start_rto: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(40),
            mtu: 1150,
        }
    }
}

/// The `dimpl` handshake configuration built from a [`DtlsConfig`] once and shared by
/// every call's [`Dtls`]; cheap to clone (an `Arc`).
///
/// Building it runs dimpl's crypto-provider self-test (hash, HMAC, PRF, ECDSA verify and
/// ECDH known-answer checks): about 50 ms in a debug build, so the engine builds it once
/// per [`Config`](crate::Config) (see [`Config::dtls`](crate::Config::dtls)) instead of
/// once per call, as libwebrtc shares one factory across its peer connections.
#[derive(Clone)]
pub struct DtlsContext {
    inner: Arc<dimpl::Config>,
}

impl std::fmt::Debug for DtlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsContext")
            .field("mtu", &self.inner.mtu())
            .finish_non_exhaustive()
    }
}

impl DtlsContext {
    /// Builds the shared handshake configuration: client certificate required, the
    /// given MTU, first-flight timeout and handshake timeout.
    ///
    /// # Errors
    /// [`Error::Local`] if `dimpl` rejects the configuration (an MTU under 64 bytes, a zero
    /// or too long timeout).
    pub fn new(config: &DtlsConfig) -> Result<Self> {
        let cfg = dimpl::Config::builder()
            .mtu(config.mtu)
            .flight_start_rto(config.flight_start_rto)
            .handshake_timeout(config.handshake_timeout)
            .require_client_certificate(true)
            .build()
            .map_err(|e| Error::Local(format!("dtls config: {e}")))?;
        Ok(Self {
            inner: Arc::new(cfg),
        })
    }

    /// Whether two contexts share one built configuration.
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// A sans-IO DTLS-SRTP endpoint.
///
/// Calls: B) [`handle_packet`](Self::handle_packet) for every datagram that
/// [`demux::classify`](crate::demux::classify) says is DTLS, [`handle_timeout`](Self::handle_timeout)
/// at [`poll_timeout`](Self::poll_timeout); D) drain [`poll_transmit`](Self::poll_transmit) then
/// [`poll_event`](Self::poll_event) after each of them. As client the ClientHello is queued by
/// [`start`](Self::start).
pub struct Dtls {
    inner: dimpl::Dtls,
    role: DtlsRole,
    remote_fingerprint: Fingerprint,
    peer_verified: bool,
    connected: bool,
    started: bool,
    failed: Option<Error>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<DtlsEvent>,
    timeout: Option<Instant>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Dtls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dtls")
            .field("role", &self.role)
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

impl Dtls {
    /// A DTLS 1.2 endpoint with our certificate, in `role`, expecting the peer's certificate
    /// to hash to `remote_fingerprint`. Cipher suites: ECDHE-ECDSA with AES-GCM/ChaCha20;
    /// SRTP profiles offered: AEAD_AES_256_GCM, AEAD_AES_128_GCM, SRTP_AES128_CM_HMAC_SHA1_80.
    ///
    /// Builds a fresh [`DtlsContext`] (tens of ms in a debug build); with many calls use
    /// [`with_context`](Self::with_context) and one shared context.
    ///
    /// # Errors
    /// [`Error::Local`] if `dimpl` rejects the configuration.
    pub fn new(
        config: &DtlsConfig,
        cert: &Certificate,
        role: DtlsRole,
        remote_fingerprint: Fingerprint,
        start: Instant,
    ) -> Result<Self> {
        let ctx = DtlsContext::new(config)?;
        Ok(Self::with_context(
            &ctx,
            cert,
            role,
            remote_fingerprint,
            start,
        ))
    }

    /// As [`new`](Self::new), with a shared, already built [`DtlsContext`] (a few µs in a
    /// release build: the certificate's key is parsed, nothing is validated again).
    pub fn with_context(
        ctx: &DtlsContext,
        cert: &Certificate,
        role: DtlsRole,
        remote_fingerprint: Fingerprint,
        start: Instant,
    ) -> Self {
        let mut inner = dimpl::Dtls::new_12(ctx.inner.clone(), cert.inner.clone(), start);
        inner.set_active(role == DtlsRole::Client);
        Self {
            inner,
            role,
            remote_fingerprint,
            peer_verified: false,
            connected: false,
            started: false,
            failed: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            timeout: None,
            buf: vec![0; 2048],
        }
    }

    /// Our role.
    pub fn role(&self) -> DtlsRole {
        self.role
    }

    /// Whether the handshake completed and the peer was verified.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Starts the handshake: as client, queues the ClientHello; as server, arms nothing
    /// (the server waits). Call when ICE has selected a pair. Idempotent.
    ///
    /// # Errors
    /// As [`handle_timeout`](Self::handle_timeout).
    pub fn start(&mut self, now: Instant) -> Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        self.handle_timeout(now)
    }

    /// Feeds one DTLS datagram.
    ///
    /// # Errors
    /// `PeerMisbehaved(FingerprintMismatch)` (a security error: fail the call) when the
    /// peer's certificate does not match; `PeerMisbehaved(DtlsFailed)` for any other fatal
    /// handshake failure. After an error the endpoint is dead and returns it again.
    pub fn handle_packet(&mut self, now: Instant, datagram: &[u8]) -> Result<()> {
        self.check_failed()?;
        self.started = true;
        // dimpl takes time through handle_timeout; feed `now` first.
        if let Err(e) = self.inner.handle_timeout(now) {
            return self.fail(map_err(e));
        }
        if let Err(e) = self.inner.handle_packet(datagram) {
            return self.fail(map_err(e));
        }
        self.drain()
    }

    /// Drives retransmissions and the handshake timeout.
    ///
    /// # Errors
    /// [`Error::TimedOut`] when the handshake gives up; otherwise as [`handle_packet`](Self::handle_packet).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<()> {
        self.check_failed()?;
        if let Err(e) = self.inner.handle_timeout(now) {
            return self.fail(map_err(e));
        }
        self.drain()
    }

    /// Next handshake datagram to send on the ICE-selected path.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout); changes after every `handle_*`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.failed.is_some() {
            return None;
        }
        self.timeout
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        self.events.pop_front()
    }

    fn check_failed(&self) -> Result<()> {
        match &self.failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn fail(&mut self, e: Error) -> Result<()> {
        tracing::warn!(error = %e, "dtls failed");
        self.failed = Some(e.clone());
        self.transmits.clear();
        self.timeout = None;
        Err(e)
    }

    fn drain(&mut self) -> Result<()> {
        let mut keys = None;
        let mut mismatch = false;
        loop {
            match self.inner.poll_output(&mut self.buf) {
                dimpl::Output::Packet(p) => self.transmits.push_back(p.to_vec()),
                dimpl::Output::BufferTooSmall { needed } => {
                    let n = needed.max(self.buf.len() * 2);
                    self.buf.resize(n, 0);
                }
                dimpl::Output::Timeout(t) => {
                    self.timeout = Some(t);
                    break;
                }
                dimpl::Output::PeerCert(der) => {
                    let fp = Fingerprint::of_der(der);
                    if fp == self.remote_fingerprint {
                        self.peer_verified = true;
                    } else {
                        tracing::warn!(expected = %self.remote_fingerprint, got = %fp, "dtls peer certificate fingerprint mismatch");
                        mismatch = true;
                    }
                }
                dimpl::Output::KeyingMaterial(material, profile) => {
                    keys = Some((profile, material.to_vec()))
                }
                dimpl::Output::Connected => self.connected = true,
                dimpl::Output::CloseNotify => self.events.push_back(DtlsEvent::Closed),
                dimpl::Output::ApplicationData(_) => {
                    tracing::debug!("dtls application data ignored")
                }
                _ => {}
            }
        }
        if mismatch {
            return self.fail(Error::PeerMisbehaved(PeerMisbehaved::FingerprintMismatch));
        }
        if let Some((profile, material)) = keys {
            if !self.peer_verified {
                return self.fail(Error::PeerMisbehaved(PeerMisbehaved::DtlsFailed(
                    "no peer certificate".into(),
                )));
            }
            let profile = match profile {
                dimpl::SrtpProfile::AES128_CM_SHA1_80 => SrtpProfile::Aes128CmHmacSha1_80,
                dimpl::SrtpProfile::AEAD_AES_128_GCM => SrtpProfile::AeadAes128Gcm,
                dimpl::SrtpProfile::AEAD_AES_256_GCM => SrtpProfile::AeadAes256Gcm,
                _ => return self.fail(Error::PeerIncompatible("srtp profile")),
            };
            let (client, server) = MasterKey::from_dtls_export(profile, &material)?;
            let (local, remote) = match self.role {
                DtlsRole::Client => (client, server),
                DtlsRole::Server => (server, client),
            };
            tracing::debug!(?profile, role = ?self.role, "dtls connected");
            self.events.push_back(DtlsEvent::Connected(SrtpKeys {
                profile,
                local,
                remote,
            }));
        }
        Ok(())
    }
}

fn map_err(e: dimpl::Error) -> Error {
    match e {
        dimpl::Error::Timeout(_) => Error::TimedOut,
        other => Error::PeerMisbehaved(PeerMisbehaved::DtlsFailed(other.to_string())),
    }
}

#[cfg(test)]
mod tests;
