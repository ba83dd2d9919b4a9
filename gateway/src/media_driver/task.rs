//! The call's task: sockets, timer and commands around the ICE agent and the media session.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use ice::{Agent, SelectedPair};
use media::cert::Certificate;
use media::config::{LegConfig, Security};
use media::dtls::{DtlsRole, Setup};
use media::{Leg, Session, TransmitKind};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};
use tracing::Instrument;

use super::{
    BindParams, CallMediaEvent, CallMediaParams, ClientDtls, ClientMedia, Command, Error, Failure,
    LocalDescription, TrunkMedia,
};

/// Datagrams sent per wakeup before the task yields to the runtime (quinn sends 20
/// per drive; a call's burst is a few RTP packets plus DTLS flights).
const MAX_SENDS_PER_WAKEUP: usize = 32;
/// Receive buffer: larger than any datagram on an Ethernet path.
const RECV_BUF: usize = 2048;
/// DTLS datagrams from the selected pair kept while the media session is being built
/// (a ClientHello flight is one or two datagrams; more are retransmissions).
const MAX_EARLY_DTLS: usize = 4;

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Binds a UDP socket on `ip`, in `ports` (from a random start) or on port 0.
fn bind(ip: std::net::IpAddr, bp: &BindParams, rng: &mut ChaCha20Rng) -> Result<UdpSocket, Error> {
    let try_bind = |port: u16| -> io::Result<UdpSocket> {
        let s = std::net::UdpSocket::bind(SocketAddr::new(ip, port))?;
        s.set_nonblocking(true)?;
        UdpSocket::from_std(s)
    };
    let Some(range) = bp.ports.clone() else {
        return try_bind(0).map_err(|source| Error::Bind { ip, source });
    };
    let (lo, hi) = (*range.start(), *range.end());
    let n = u32::from(hi.saturating_sub(lo)) + 1;
    let start = rng.gen_range(0..n);
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "empty port range");
    for k in 0..n {
        let port = lo + ((start + k) % n) as u16;
        match try_bind(port) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(Error::Bind { ip, source: last })
}

/// Binds the trunk leg's RTP socket on an even port and its RTCP socket on the next port
/// ([RFC 3550 §11](https://www.rfc-editor.org/rfc/rfc3550#section-11)), in `ports` (from a
/// random start) or where the OS chooses.
fn bind_trunk_pair(
    ip: std::net::IpAddr,
    bp: &BindParams,
    rng: &mut ChaCha20Rng,
) -> Result<(UdpSocket, UdpSocket), Error> {
    let try_pair = |port: u16| -> io::Result<(UdpSocket, UdpSocket)> {
        let rtp = std::net::UdpSocket::bind(SocketAddr::new(ip, port))?;
        let p = rtp.local_addr()?.port();
        if p % 2 == 1 || p == u16::MAX {
            return Err(io::Error::new(io::ErrorKind::AddrInUse, "odd rtp port"));
        }
        let rtcp = std::net::UdpSocket::bind(SocketAddr::new(ip, p + 1))?;
        rtp.set_nonblocking(true)?;
        rtcp.set_nonblocking(true)?;
        Ok((UdpSocket::from_std(rtp)?, UdpSocket::from_std(rtcp)?))
    };
    let mut last = io::Error::new(
        io::ErrorKind::AddrInUse,
        "no even port with a free next port",
    );
    match bp.ports.clone() {
        // An OS-chosen port is odd half of the time: retry.
        None => {
            for _ in 0..64 {
                match try_pair(0) {
                    Ok(pair) => return Ok(pair),
                    Err(e) => last = e,
                }
            }
        }
        Some(range) => {
            let lo = range.start().saturating_add(range.start() % 2);
            let hi = *range.end();
            if lo < hi {
                let n = u32::from(hi - lo) / 2 + u32::from((hi - lo) % 2 == 1);
                let start = rng.gen_range(0..n.max(1));
                for k in 0..n {
                    let port = lo + (((start + k) % n) * 2) as u16;
                    if port >= hi {
                        continue;
                    }
                    match try_pair(port) {
                        Ok(pair) => return Ok(pair),
                        Err(e) => last = e,
                    }
                }
            }
        }
    }
    Err(Error::Bind { ip, source: last })
}

/// Receives from whichever client-leg socket is ready first.
async fn recv_any(
    socks: &[(SocketAddr, UdpSocket)],
    buf: &mut [u8],
) -> (usize, io::Result<(usize, SocketAddr)>) {
    poll_fn(|cx| {
        for (i, (_, s)) in socks.iter().enumerate() {
            let mut rb = ReadBuf::new(&mut *buf);
            if let Poll::Ready(r) = s.poll_recv_from(cx, &mut rb) {
                let n = rb.filled().len();
                return Poll::Ready((i, r.map(|from| (n, from))));
            }
        }
        Poll::Pending
    })
    .await
}

/// The sockets, apart from the state so that `select!` can borrow both.
struct Sockets {
    client: Vec<(SocketAddr, UdpSocket)>,
    trunk: UdpSocket,
    trunk_rtcp: UdpSocket,
}

impl Sockets {
    fn client(&self, local: SocketAddr) -> Option<&UdpSocket> {
        self.client
            .iter()
            .find(|(a, _)| *a == local)
            .map(|(_, s)| s)
    }
}

/// The per-call state the task drives.
struct State {
    agent: Agent,
    cert: Certificate,
    rng: ChaCha20Rng,
    media_config: Arc<media::Config>,
    client_media: Option<ClientMedia>,
    trunk_media: Option<TrunkMedia>,
    session: Option<Session>,
    /// The session being built on the blocking pool (creating the DTLS context takes
    /// tens of milliseconds in a debug build), while the task keeps answering ICE checks.
    building: Option<(Instant, JoinHandle<media::Result<Session>>)>,
    /// DTLS datagrams that came from the selected pair while `building`, with the
    /// `(local, remote)` they came on; at most [`MAX_EARLY_DTLS`].
    early_dtls: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    selected: Option<SelectedPair>,
    consent_lost: bool,
    dtls_started: bool,
    trunk_remote: Option<SocketAddr>,
    trunk_latched: bool,
    /// Source of the trunk's RTCP on our RTP port + 1, once some arrived.
    trunk_rtcp_remote: Option<SocketAddr>,
    /// RTP packets received per leg as last seen, to detect the first one.
    rx_packets: [u64; 2],
    events: Vec<CallMediaEvent>,
    failed: bool,
    dropped_sends: u64,
}

/// The task before it runs.
pub(super) struct Driver {
    span: tracing::Span,
    sockets: Sockets,
    state: State,
    cmd_rx: mpsc::UnboundedReceiver<Command>,
    ev_tx: mpsc::Sender<CallMediaEvent>,
}

impl Driver {
    pub(super) fn new(
        params: CallMediaParams,
        cmd_rx: mpsc::UnboundedReceiver<Command>,
        ev_tx: mpsc::Sender<CallMediaEvent>,
    ) -> Result<(Self, LocalDescription), Error> {
        if params.bind.client_ips.is_empty() {
            return Err(Error::NoClientAddress);
        }
        let span = tracing::debug_span!("media", call = %params.call_id);
        let mut rng = match params.rng_seed {
            Some(seed) => ChaCha20Rng::from_seed(seed),
            None => ChaCha20Rng::from_rng(rand::rngs::OsRng)
                .map_err(|e| Error::Media(media::Error::Local(format!("os rng: {e}"))))?,
        };
        let start = now();
        let mut ice_config = params.ice_config.clone();
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        ice_config.rng_seed(seed);
        let mut agent = Agent::new(ice_config, params.client.ice_role, start);
        let mut client = Vec::new();
        let mut candidates = Vec::new();
        for ip in &params.bind.client_ips {
            let s = bind(*ip, &params.bind, &mut rng)?;
            let local = s
                .local_addr()
                .map_err(|source| Error::Bind { ip: *ip, source })?;
            candidates.push(agent.add_local_host(start, local)?);
            client.push((local, s));
        }
        agent.finish_gathering(start);
        let (trunk, trunk_rtcp) = bind_trunk_pair(params.bind.trunk_ip, &params.bind, &mut rng)?;
        let trunk_rtp = trunk.local_addr().map_err(|source| Error::Bind {
            ip: params.bind.trunk_ip,
            source,
        })?;
        let cert = Certificate::generate(&mut rng)?;
        let local = LocalDescription {
            ice: agent.local_credentials().clone(),
            candidates,
            fingerprint: cert.fingerprint(),
            setup: params
                .client
                .media
                .as_ref()
                .and_then(|m| m.dtls)
                .map_or(Setup::Actpass, |d| d.local_setup),
            trunk_rtp,
        };
        let trunk_remote = params.trunk.as_ref().and_then(|t| t.remote);
        let mut state = State {
            agent,
            cert,
            rng,
            media_config: params.media_config,
            client_media: params.client.media,
            trunk_media: params.trunk,
            session: None,
            building: None,
            early_dtls: Vec::new(),
            selected: None,
            consent_lost: false,
            dtls_started: false,
            trunk_remote,
            trunk_latched: false,
            trunk_rtcp_remote: None,
            rx_packets: [0; 2],
            events: Vec::new(),
            failed: false,
            dropped_sends: 0,
        };
        // Drain the agent's gathering events (host candidates are in `local`).
        while state.agent.poll_event().is_some() {}
        {
            let _g = span.enter();
            state.try_build(start);
        }
        Ok((
            Self {
                span,
                sockets: Sockets {
                    client,
                    trunk,
                    trunk_rtcp,
                },
                state,
                cmd_rx,
                ev_tx,
            },
            local,
        ))
    }

    pub(super) async fn run(self) {
        let span = self.span.clone();
        self.run_inner().instrument(span).await;
    }

    async fn run_inner(self) {
        let Self {
            sockets,
            mut state,
            mut cmd_rx,
            ev_tx,
            ..
        } = self;
        let mut cbuf = vec![0u8; RECV_BUF];
        let mut tbuf = vec![0u8; RECV_BUF];
        let mut rbuf = vec![0u8; RECV_BUF];
        tracing::debug!("media task started");
        // Initial transmits (none before remote credentials, but keep the contract).
        state.flush(&sockets).await;
        loop {
            let deadline = state.deadline();
            let sleep = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                (i, r) = recv_any(&sockets.client, &mut cbuf) => match r {
                    Ok((n, from)) => {
                        let local = sockets.client[i].0;
                        state.on_client(now(), local, from, &cbuf[..n]);
                    }
                    Err(e) => state.on_recv_error(e),
                },
                r = sockets.trunk.recv_from(&mut tbuf) => match r {
                    Ok((n, from)) => state.on_trunk(now(), from, &tbuf[..n]),
                    Err(e) => state.on_recv_error(e),
                },
                r = sockets.trunk_rtcp.recv_from(&mut rbuf) => match r {
                    Ok((n, from)) => state.on_trunk_rtcp(now(), from, &rbuf[..n]),
                    Err(e) => state.on_recv_error(e),
                },
                c = cmd_rx.recv() => match c {
                    None | Some(Command::Stop) => break,
                    Some(c) => state.on_command(now(), c),
                },
                r = async {
                    match state.building.as_mut() {
                        Some((_, h)) => h.await,
                        None => std::future::pending().await,
                    }
                }, if state.building.is_some() => state.on_built(now(), r),
                () = sleep => {}
            }
            // Timers: compare the deadlines ourselves (STYLE.md R5).
            state.on_timers(now());
            state.flush(&sockets).await;
            for e in state.events.drain(..) {
                // A dropped receiver means nobody listens any more: keep running until
                // stopped, the call logic owns the lifetime.
                let _ = ev_tx.send(e).await;
            }
            if state.failed {
                break;
            }
        }
        let (client, trunk) = match &state.session {
            Some(s) => (s.stats(Leg::Client), s.stats(Leg::Trunk)),
            None => Default::default(),
        };
        tracing::debug!(
            rx_client = client.rx.packets,
            rx_trunk = trunk.rx.packets,
            dropped_sends = state.dropped_sends,
            "media task stopped"
        );
        let _ = ev_tx.send(CallMediaEvent::Stopped { client, trunk }).await;
    }
}

impl State {
    fn deadline(&self) -> Option<Instant> {
        let a = self.agent.poll_timeout();
        let b = self.session.as_ref().and_then(Session::poll_timeout);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn fail(&mut self, error: Failure) {
        if !self.failed {
            tracing::info!(%error, security = error.is_security(), "call media failed");
            self.failed = true;
            self.events.push(CallMediaEvent::Failed { error });
        }
    }

    fn on_recv_error(&mut self, e: io::Error) {
        // ICMP port unreachable surfaces as ConnectionRefused/Reset on some systems: a
        // peer's transient state, not our socket's failure.
        match e.kind() {
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::Interrupted => tracing::trace!(%e, "recv"),
            _ => self.fail(Failure::Io(e.to_string())),
        }
    }

    /// Whether the session is built or being built (its inputs can no longer change).
    fn session_started(&self) -> bool {
        self.session.is_some() || self.building.is_some()
    }

    /// Starts building the media session once both legs' media are known, on tokio's
    /// blocking pool: [`on_built`](Self::on_built) takes the result.
    fn try_build(&mut self, now: Instant) {
        if self.session_started() || self.failed {
            return;
        }
        let (Some(c), Some(t)) = (self.client_media.clone(), self.trunk_media.clone()) else {
            return;
        };
        let security = match c.dtls {
            Some(ClientDtls {
                local_setup,
                remote_fingerprint,
            }) => match DtlsRole::from_local_setup(local_setup) {
                Ok(role) => Security::Dtls {
                    role,
                    remote_fingerprint,
                },
                Err(e) => return self.fail(Failure::Media(e)),
            },
            None => Security::Plain,
        };
        let client = LegConfig {
            codec: c.codec,
            payload_type: c.payload_type,
            telephone_event: c.telephone_event,
            extra_telephone_events: c.extra_telephone_events.clone(),
            security,
            ssrc: self.rng.next_u32(),
        };
        let trunk = LegConfig {
            codec: t.codec,
            payload_type: t.payload_type,
            telephone_event: t.telephone_event,
            extra_telephone_events: Vec::new(),
            security: t.security,
            ssrc: self.rng.next_u32(),
        };
        let config = self.media_config.clone();
        let cert = self.cert.clone();
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let span = tracing::Span::current();
        let build = tokio::task::spawn_blocking(move || {
            let _g = span.enter();
            let mut rng = ChaCha20Rng::from_seed(seed);
            Session::new(config, &cert, client, trunk, &mut rng, now)
        });
        self.building = Some((now, build));
    }

    /// Takes the built session: starts DTLS if ICE has selected a pair, then feeds the
    /// DTLS datagrams kept meanwhile that came on the pair still selected.
    fn on_built(&mut self, now: Instant, r: Result<media::Result<Session>, JoinError>) {
        let Some((began, _)) = self.building.take() else {
            return;
        };
        let s = match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return self.fail(Failure::Media(e)),
            Err(e) => {
                return self.fail(Failure::Media(media::Error::Local(format!(
                    "media session build: {e}"
                ))))
            }
        };
        tracing::debug!(
            transcoding = s.is_transcoding(),
            build_ms = now.saturating_duration_since(began).as_millis() as u64,
            "media session built"
        );
        self.session = Some(s);
        self.maybe_start_dtls(now);
        for (local, from, data) in std::mem::take(&mut self.early_dtls) {
            if self.failed {
                break;
            }
            self.on_client_media(now, local, from, &data);
        }
    }

    fn maybe_start_dtls(&mut self, now: Instant) {
        if self.dtls_started || self.selected.is_none() {
            return;
        }
        if let Some(s) = self.session.as_mut() {
            self.dtls_started = true;
            let r = s.start_dtls(now);
            self.after_session(r);
        }
    }

    /// Handles a session result and collects its events.
    fn after_session(&mut self, r: media::Result<()>) {
        if let Err(e) = r {
            return self.fail(Failure::from_media(e));
        }
        let Some(s) = self.session.as_mut() else {
            return;
        };
        while let Some(e) = s.poll_event() {
            match e {
                media::Event::DtlsConnected { profile } => {
                    tracing::info!(?profile, "dtls connected");
                    self.events.push(CallMediaEvent::DtlsConnected { profile });
                }
                media::Event::NoMedia { leg } => self.events.push(CallMediaEvent::NoMedia { leg }),
                media::Event::MediaResumed { leg } => {
                    self.events.push(CallMediaEvent::MediaFlowing { leg })
                }
                media::Event::DtlsClosed => tracing::info!("client closed dtls"),
                other => tracing::debug!(?other, "media event"),
            }
        }
        // Until each leg's first RTP packet (then MediaResumed covers the rest).
        for leg in [Leg::Client, Leg::Trunk] {
            let i = usize::from(leg == Leg::Trunk);
            if self.rx_packets[i] > 0 {
                continue;
            }
            let p = s.stats(leg).rx.packets;
            if self.rx_packets[i] == 0 && p > 0 {
                self.events.push(CallMediaEvent::MediaFlowing { leg });
            }
            self.rx_packets[i] = p;
        }
    }

    fn after_ice(&mut self, now: Instant) {
        while let Some(e) = self.agent.poll_event() {
            match e {
                ice::Event::SelectedPairChanged(p) => {
                    tracing::info!(
                        local = %p.local.addr, remote = %p.remote.addr,
                        types = %super::pair_types(&p.local, &p.remote),
                        "ice selected pair"
                    );
                    self.events.push(CallMediaEvent::IceSelected {
                        local: p.local.clone(),
                        remote: p.remote.clone(),
                    });
                    self.selected = Some(p);
                    self.consent_lost = false;
                }
                ice::Event::StateChanged(s) => self.events.push(CallMediaEvent::IceState(s)),
                ice::Event::ConsentLost => {
                    tracing::info!("ice consent lost");
                    self.consent_lost = true;
                    self.events.push(CallMediaEvent::ConsentLost);
                }
                _ => {}
            }
        }
        self.maybe_start_dtls(now);
    }

    fn on_client(&mut self, now: Instant, local: SocketAddr, from: SocketAddr, data: &[u8]) {
        match ice::classify(data) {
            ice::PacketKind::Stun => {
                if let Err(e) = self.agent.handle_receive(now, from, local, data) {
                    tracing::trace!(%e, "stun dropped");
                }
                self.after_ice(now);
            }
            ice::PacketKind::Dtls
                if self.building.is_some()
                    && self.on_path(local, from)
                    && self.early_dtls.len() < MAX_EARLY_DTLS =>
            {
                tracing::trace!("dtls datagram kept until the session is built");
                self.early_dtls.push((local, from, data.to_vec()));
            }
            ice::PacketKind::Dtls | ice::PacketKind::Rtp => {
                self.on_client_media(now, local, from, data)
            }
            other => tracing::trace!(?other, "client datagram dropped"),
        }
    }

    /// Whether `(local, from)` is the ICE-selected pair.
    fn on_path(&self, local: SocketAddr, from: SocketAddr) -> bool {
        self.selected
            .as_ref()
            .is_some_and(|p| p.remote.addr == from && p.local.base == local)
    }

    /// DTLS or RTP/RTCP from the client: to the session, only from the selected pair.
    fn on_client_media(&mut self, now: Instant, local: SocketAddr, from: SocketAddr, data: &[u8]) {
        let on_path = self.on_path(local, from);
        match self.session.as_mut() {
            Some(s) if on_path => {
                let r = s.handle_packet(now, Leg::Client, data);
                self.after_session(r);
            }
            _ => tracing::trace!(on_path, "client datagram dropped (no session or off path)"),
        }
    }

    fn on_trunk(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        if !self.trunk_latched {
            if self.trunk_remote != Some(from) {
                tracing::debug!(%from, signalled = ?self.trunk_remote, "trunk latched (symmetric rtp)");
            }
            self.trunk_remote = Some(from);
            self.trunk_latched = true;
        } else if self.trunk_remote != Some(from) {
            tracing::trace!(%from, "trunk datagram from another source dropped");
            return;
        }
        if let Some(s) = self.session.as_mut() {
            let r = s.handle_packet(now, Leg::Trunk, data);
            self.after_session(r);
        }
    }

    /// RTCP on our RTP port + 1 (a trunk without rtcp-mux): latched to its first source
    /// (symmetric RTCP, RFC 4961), which our RTCP goes to from then on.
    fn on_trunk_rtcp(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        match self.trunk_rtcp_remote {
            None => {
                tracing::debug!(%from, "trunk rtcp latched (port + 1)");
                self.trunk_rtcp_remote = Some(from);
            }
            Some(r) if r != from => {
                tracing::trace!(%from, "trunk rtcp from another source dropped");
                return;
            }
            Some(_) => {}
        }
        if let Some(s) = self.session.as_mut() {
            let r = s.handle_packet(now, Leg::Trunk, data);
            self.after_session(r);
        }
    }

    fn on_command(&mut self, now: Instant, c: Command) {
        match c {
            Command::RemoteIceCredentials { ufrag, pwd } => {
                if let Err(e) = self.agent.set_remote_credentials(now, &ufrag, &pwd) {
                    tracing::warn!(%e, "remote ice credentials rejected");
                }
            }
            Command::RemoteCandidate(c) => {
                if let Err(e) = self.agent.add_remote_candidate(now, c) {
                    tracing::debug!(%e, "remote candidate rejected");
                }
            }
            Command::EndOfCandidates => self.agent.end_of_remote_candidates(now),
            Command::IceRestart(reply) => {
                let creds = self.agent.restart(now);
                let _ = reply.send(creds);
            }
            Command::RemoteIceRestart { ufrag, pwd } => {
                match self.agent.set_remote_credentials(now, &ufrag, &pwd) {
                    Ok(()) => {
                        let ice = self.agent.restart(now);
                        tracing::info!(ufrag = %ice.ufrag, "ice restarted by the client");
                        self.events.push(CallMediaEvent::IceRestarted { ice });
                    }
                    Err(e) => {
                        tracing::warn!(%e, "ice restart refused");
                        self.events.push(CallMediaEvent::IceRestartFailed {
                            error: e.to_string(),
                        });
                    }
                }
            }
            Command::SetClientMedia(m) => {
                if self.session_started() {
                    tracing::warn!("client media changed after the session started: ignored");
                } else {
                    self.client_media = Some(m);
                }
            }
            Command::SetClientPeerFingerprint {
                fingerprint,
                local_setup,
            } => match (self.session_started(), self.client_media.as_mut()) {
                (false, Some(m)) => {
                    m.dtls = Some(ClientDtls {
                        local_setup,
                        remote_fingerprint: fingerprint,
                    })
                }
                (false, None) => tracing::warn!("fingerprint before the client media: ignored"),
                (true, _) => tracing::warn!("fingerprint after the session started: ignored"),
            },
            Command::SetTrunkMedia(t) => {
                if let Some(r) = t.remote {
                    self.set_trunk_remote(r);
                }
                if self.session_started() {
                    tracing::warn!("trunk media changed after the session started: ignored");
                } else {
                    self.trunk_media = Some(t);
                }
            }
            Command::SetTrunkRemote(r) => self.set_trunk_remote(r),
            Command::Stop => {}
        }
        self.after_ice(now);
        self.try_build(now);
    }

    fn set_trunk_remote(&mut self, r: SocketAddr) {
        self.trunk_remote = Some(r);
        self.trunk_latched = false;
        self.trunk_rtcp_remote = None;
    }

    fn on_timers(&mut self, now: Instant) {
        if self.agent.poll_timeout().is_some_and(|t| t <= now) {
            self.agent.handle_timeout(now);
            self.after_ice(now);
        }
        if let Some(s) = self.session.as_mut() {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                let r = s.handle_timeout(now);
                self.after_session(r);
            }
        }
    }

    /// Sends everything queued, yielding every [`MAX_SENDS_PER_WAKEUP`] datagrams.
    async fn flush(&mut self, sockets: &Sockets) {
        let mut sent = 0usize;
        while let Some(t) = self.agent.poll_transmit() {
            if let Some(s) = sockets.client(t.source) {
                self.dropped_sends += u64::from(s.try_send_to(&t.contents, t.destination).is_err());
            }
            sent += 1;
            if sent.is_multiple_of(MAX_SENDS_PER_WAKEUP) {
                tokio::task::yield_now().await;
            }
        }
        let client_path = match (&self.selected, self.consent_lost) {
            (Some(p), false) => sockets.client(p.local.base).map(|s| (s, p.remote.addr)),
            _ => None,
        };
        while let Some(t) = self.session.as_mut().and_then(Session::poll_transmit) {
            let ok = match t.leg {
                Leg::Client => {
                    client_path.is_some_and(|(sock, to)| sock.try_send_to(t.contents, to).is_ok())
                }
                Leg::Trunk => match (t.kind, self.trunk_rtcp_remote) {
                    (TransmitKind::Rtcp, Some(to)) => {
                        sockets.trunk_rtcp.try_send_to(t.contents, to).is_ok()
                    }
                    _ => self
                        .trunk_remote
                        .is_some_and(|to| sockets.trunk.try_send_to(t.contents, to).is_ok()),
                },
            };
            self.dropped_sends += u64::from(!ok);
            sent += 1;
            if sent.is_multiple_of(MAX_SENDS_PER_WAKEUP) {
                tokio::task::yield_now().await;
            }
        }
    }
}
