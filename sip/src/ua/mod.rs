//! The user agent: a handle ([`UserAgent`]) plus an event stream ([`Event`]),
//! over rsipstack's transport and transaction layers.
//!
//! rsipstack provides the transports (UDP, TCP, TLS with rustls), the four
//! transaction state machines of [RFC 3261 §17](https://www.rfc-editor.org/rfc/rfc3261#section-17)
//! with their timers, and the ACK of final responses. This module owns the
//! UDP socket and screens every datagram before rsipstack sees it
//! (`wire`: 400 with `Warning` for malformed requests, 501 for unknown
//! methods), and holds the dialogs (one per call), digest authentication
//! ([`crate::digest`]), registration and the offer/answer ([`crate::sdp`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rsipstack::sip::{Method, Request, Response, SipMessage, StatusCodeKind};
use rsipstack::transaction::endpoint::EndpointInner;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::{Transaction, TransactionEvent, TransactionEventSender};
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::TransportLayer;
use rsipstack::EndpointBuilder;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::{Config, Transport, TrunkConfig};
use crate::digest::{parse_challenges, Authenticator, ChallengeKind};
use crate::pii::Pii;
use crate::sdp::{LocalMedia, Negotiated, RemoteMedia};
use crate::text;
use crate::Error;

/// The root certificates used for TLS trunks when [`Config::tls_roots`] is
/// not set (Debian's `ca-certificates`).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO";

mod event;
mod inbound;
mod maintenance;
mod outbound;
mod wire;

pub use event::{CallId, EndReason, Event, OutboundCall, RegistrationState};
pub use wire::WireStats;

struct Call {
    trunk: usize,
    outbound: bool,
    confirmed: bool,
    local_tag: String,
    local_uri: String,
    remote_uri: String,
    remote_tag: Option<String>,
    remote_target: String,
    route_set: Vec<String>,
    cseq: u32,
    local_media: Option<LocalMedia>,
    // Outbound, before the answer.
    invite: Option<Request>,
    provisional_seen: bool,
    cancel_requested: bool,
    cancel_sent: bool,
    // Inbound, before the answer.
    server_tx: Option<TransactionEventSender>,
    invite_req: Option<Request>,
    remote_offer: Option<RemoteMedia>,
    answered: bool,
    // Session timer (RFC 4028) where the peer is the refresher.
    session_expires: Option<u64>,
    /// We are the refresher of the session timer (outbound calls whose 2xx
    /// named `refresher=uac`).
    we_refresh: bool,
    last_refresh: std::time::Instant,
}

struct Inner {
    endpoint: Arc<EndpointInner>,
    config: Config,
    via_host: String,
    contact_host: String,
    trunk_ips: Vec<Vec<IpAddr>>,
    calls: Mutex<HashMap<String, Call>>,
    events: mpsc::UnboundedSender<Event>,
    rng: Mutex<StdRng>,
    cancel: CancellationToken,
    limiter: Arc<RateLimiter>,
    wire: Arc<wire::Counters>,
}

/// A token bucket per source IP: `rate` requests per second with a burst of
/// the same size; a rate of 0 admits everything.
pub(crate) struct RateLimiter {
    rate: u32,
    buckets: Mutex<HashMap<IpAddr, (f64, std::time::Instant)>>,
}

impl RateLimiter {
    fn new(rate: u32) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `ip`'s bucket; false when it is empty.
    pub(crate) fn admit(&self, ip: IpAddr) -> bool {
        let rate = f64::from(self.rate);
        if self.rate == 0 {
            return true;
        }
        let now = std::time::Instant::now();
        let mut buckets = lock(&self.buckets);
        if buckets.len() > 10_000 {
            buckets.retain(|_, (_, t)| now.duration_since(*t) < Duration::from_secs(10));
        }
        let (tokens, last) = buckets.entry(ip).or_insert((rate, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The SIP user agent: a cheap, cloneable handle. Commands return at once;
/// outcomes arrive as [`Event`]s.
///
/// ```no_run
/// # async fn run() -> Result<(), sip::Error> {
/// use sip::{Config, TrunkConfig, UserAgent, Event, OutboundCall};
/// use sip::sdp::LocalMedia;
/// let mut config = Config::default();
/// config
///     .bind("127.0.0.1:5070".parse().unwrap())
///     .trunk(TrunkConfig::new("carrier", "sip.example.net"));
/// let (ua, mut events) = UserAgent::start(config).await?;
/// let media = LocalMedia::new("127.0.0.1".parse().unwrap(), 30000, 1);
/// let call = ua.call("carrier", OutboundCall { to: "+15551234567".into(), caller_id: None, media })?;
/// while let Some(event) = events.recv().await {
///     if let Event::Ended { .. } = event { break; }
/// }
/// ua.shutdown();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct UserAgent {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for UserAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAgent")
            .field("via_host", &self.inner.via_host)
            .finish()
    }
}

/// Header fields [`UserAgent::reject_with`] refuses: the user agent writes them.
const OWN_HEADERS: &[&str] = &[
    "via",
    "v",
    "from",
    "f",
    "to",
    "t",
    "call-id",
    "i",
    "cseq",
    "contact",
    "m",
    "content-length",
    "l",
    "content-type",
    "c",
];

/// Checks the extra header fields of [`UserAgent::reject_with`].
fn check_extra_headers(headers: &[(&str, &str)]) -> Result<(), Error> {
    // RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
    let is_token = |n: &str| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
    };
    for (name, value) in headers {
        if !is_token(name) {
            return Err(Error::ApiMisuse(
                "reject_with(): a header name is not a token",
            ));
        }
        if OWN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(Error::ApiMisuse(
                "reject_with(): the user agent writes this header itself",
            ));
        }
        if value.contains(['\r', '\n']) {
            return Err(Error::ApiMisuse(
                "reject_with(): a header value holds a line break",
            ));
        }
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl UserAgent {
    /// Binds the UDP socket, starts the stack, the inbound request loop and one
    /// registration task per registering trunk.
    ///
    /// # Errors
    ///
    /// [`Error::Transport`] when the socket cannot be bound or a trunk host
    /// does not resolve.
    pub async fn start(config: Config) -> Result<(Self, mpsc::UnboundedReceiver<Event>), Error> {
        let cancel = CancellationToken::new();
        let transport_layer = TransportLayer::new(cancel.child_token());
        let external = config.public_ip.map(|ip| SocketAddr::new(ip, 0));
        // We own the UDP socket: the screen in front of rsipstack answers
        // malformed requests (400) and unknown methods (501) itself.
        let socket = tokio::net::UdpSocket::bind(config.bind)
            .await
            .map_err(|e| Error::Transport(format!("bind {}: {e}", config.bind)))?;
        let local = socket
            .local_addr()
            .map_err(|e| Error::Transport(e.to_string()))?;
        let limiter = Arc::new(RateLimiter::new(config.rate_limit));
        let counters = Arc::new(wire::Counters::default());
        let screened = wire::ScreenedSocket {
            socket,
            host: fmt_hostport(local.ip(), local.port()),
            counters: counters.clone(),
            limiter: limiter.clone(),
        };
        let udp = UdpConnection::from_socket(Arc::new(screened), None, Some(cancel.child_token()))
            .await?;
        transport_layer.add_transport(udp.into());
        if config.trunks.iter().any(|t| t.transport == Transport::Tls) {
            let path = config
                .tls_roots
                .clone()
                .unwrap_or_else(|| SYSTEM_ROOTS.into());
            let pem = std::fs::read(&path)
                .map_err(|e| Error::Transport(format!("TLS roots {}: {e}", path.display())))?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(Error::Transport(format!(
                    "TLS roots {}: no PEM certificate",
                    path.display()
                )));
            }
            // No server certificate: we only connect out. SNI is the host of
            // the target URI (the trunk's host), and rustls verifies the
            // certificate chain and that name.
            transport_layer.set_tls_config(rsipstack::transport::TlsConfig {
                ca_certs: Some(pem),
                ..Default::default()
            });
        }
        if config.trunks.iter().any(|t| t.transport == Transport::Tcp) {
            let tcp =
                rsipstack::transport::tcp_listener::TcpListenerConnection::new(local, None).await?;
            transport_layer.add_transport(tcp.into());
        }
        let option = rsipstack::transaction::endpoint::EndpointOption {
            t1: config.t1,
            t1x64: config.t1 * 64,
            ..Default::default()
        };
        let endpoint = EndpointBuilder::new()
            .with_option(option)
            .with_user_agent(&config.user_agent)
            .with_transport_layer(transport_layer)
            .with_cancel_token(cancel.clone())
            .build();
        let incoming = endpoint.incoming_transactions()?;
        let mut trunk_ips = Vec::new();
        for t in &config.trunks {
            let ips: Vec<IpAddr> = tokio::net::lookup_host((
                t.host.as_str(),
                t.port.unwrap_or(t.transport.default_port()),
            ))
            .await
            .map_err(|e| Error::Transport(format!("trunk {} host: {e}", t.name)))?
            .map(|a| a.ip())
            .collect();
            trunk_ips.push(ips);
        }
        let via_host = fmt_hostport(local.ip(), local.port());
        let contact_host = fmt_hostport(external.map_or(local.ip(), |e| e.ip()), local.port());
        let (events, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            endpoint: endpoint.inner.clone(),
            config,
            via_host,
            contact_host,
            trunk_ips,
            calls: Mutex::new(HashMap::new()),
            events,
            rng: Mutex::new(StdRng::from_entropy()),
            cancel: cancel.clone(),
            limiter,
            wire: counters,
        });
        tokio::spawn(async move { endpoint.serve().await });
        let i = inner.clone();
        tokio::spawn(async move { i.incoming_loop(incoming).await });
        for (idx, t) in inner.config.trunks.iter().enumerate() {
            if t.register {
                let i = inner.clone();
                tokio::spawn(async move { i.register_loop(idx).await });
            }
            if let Some(every) = t.options_ping {
                let i = inner.clone();
                tokio::spawn(async move { i.ping_loop(idx, every).await });
            }
        }
        info!(local = %Pii(local), "sip user agent started");
        Ok((Self { inner }, rx))
    }

    /// The UDP address we listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner
            .endpoint
            .get_addrs()
            .first()
            .and_then(|a| a.get_socketaddr().ok())
            .unwrap_or(self.inner.config.bind)
    }

    /// Counters of the datagram screen: requests answered with 400 or 501
    /// before the SIP stack, datagrams dropped unanswered.
    pub fn wire_stats(&self) -> WireStats {
        self.inner.wire.snapshot()
    }

    /// Places a call through trunk `trunk` (by name). Progress arrives as
    /// [`Event::Ringing`], [`Event::EarlyMedia`], [`Event::Answered`] and
    /// finally [`Event::Ended`]. 401/407 challenges are answered with the
    /// trunk's credentials; 3xx are followed up to `max_redirects`.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] for an unknown trunk name.
    pub fn call(&self, trunk: &str, call: OutboundCall) -> Result<CallId, Error> {
        let idx = self.trunk_index(trunk)?;
        let id = format!("{}@jsg", self.inner.random_token(20));
        let call_id = CallId(id.clone());
        let inner = self.inner.clone();
        let cid = call_id.clone();
        tokio::spawn(async move { inner.run_outbound(cid, idx, call).await });
        Ok(call_id)
    }

    /// Answers an inbound call with 200 OK and our SDP answer (or offer, for a
    /// late-offer INVITE). Returns the codec agreed, if the INVITE had an offer.
    ///
    /// # Errors
    ///
    /// - [`Error::ApiMisuse`] when the call is unknown, outbound or answered;
    /// - [`Error::PeerIncompatible`] when no codec is common: the call is then
    ///   rejected with 488 and ends.
    pub fn answer(&self, call: &CallId, media: LocalMedia) -> Result<Option<Negotiated>, Error> {
        let inner = &self.inner;
        let mut calls = lock(&inner.calls);
        let c = calls
            .get_mut(&call.0)
            .filter(|c| !c.outbound && !c.answered)
            .ok_or(Error::ApiMisuse(
                "answer() needs an unanswered inbound call",
            ))?;
        let (body, negotiated) = match &c.remote_offer {
            Some(offer) => match media.answer(offer) {
                Ok((sdp, n)) => (sdp, Some(n)),
                Err(e) => {
                    drop(calls);
                    let _ = self.reject(call, 488);
                    return Err(e);
                }
            },
            None => (media.offer(), None),
        };
        let req = c.invite_req.clone().ok_or(Error::ApiMisuse("no INVITE"))?;
        let tx = c
            .server_tx
            .clone()
            .ok_or(Error::ApiMisuse("no transaction"))?;
        c.answered = true;
        c.confirmed = true;
        c.local_media = Some(media);
        c.last_refresh = std::time::Instant::now();
        let session_expires = c.session_expires;
        let mut resp = inner.response(&req, 200, Some(&body), true);
        drop(calls);
        if let Some(se) = session_expires {
            // We are the refreshee (RFC 4028 §9): the caller refreshes.
            resp.headers.push(rsipstack::sip::Header::Other(
                "Session-Expires".into(),
                format!("{se};refresher=uac"),
            ));
            resp.headers.push(rsipstack::sip::Header::Other(
                "Require".into(),
                "timer".into(),
            ));
            let i = inner.clone();
            let cid = call.clone();
            tokio::spawn(async move { i.session_watchdog(cid, Duration::from_secs(se)).await });
        }
        tx.send(TransactionEvent::Respond(resp))
            .map_err(|_| Error::Transport("transaction gone".into()))?;
        Ok(negotiated)
    }

    /// Rejects an unanswered inbound call with `status` (486 busy, 480
    /// unavailable, 603 decline, 404 unknown number, 488 codecs, …).
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when the call is unknown, outbound or answered, or
    /// `status` is not 300–699.
    pub fn reject(&self, call: &CallId, status: u16) -> Result<(), Error> {
        self.reject_with(call, status, &[])
    }

    /// Like [`UserAgent::reject`], with extra header fields in the final
    /// response, each a `(name, value)` pair: `Retry-After` with a 503 or 486
    /// ([RFC 3261 §20.33](https://www.rfc-editor.org/rfc/rfc3261#section-20.33)),
    /// `Warning`, `Reason`.
    ///
    /// # Errors
    ///
    /// As [`UserAgent::reject`], and [`Error::ApiMisuse`] when a name is not a
    /// token ([RFC 3261 §25.1](https://www.rfc-editor.org/rfc/rfc3261#section-25.1)),
    /// names a header the user agent writes itself (`Via`, `From`, `To`,
    /// `Call-ID`, `CSeq`, `Contact`, `Content-Length`, `Content-Type`), or a
    /// value holds a line break. Nothing is sent then.
    pub fn reject_with(
        &self,
        call: &CallId,
        status: u16,
        headers: &[(&str, &str)],
    ) -> Result<(), Error> {
        if !(300..=699).contains(&status) {
            return Err(Error::ApiMisuse("reject() takes a status of 300-699"));
        }
        check_extra_headers(headers)?;
        let inner = &self.inner;
        let mut calls = lock(&inner.calls);
        let Some(c) = calls.get(&call.0).filter(|c| !c.outbound && !c.answered) else {
            return Err(Error::ApiMisuse(
                "reject() needs an unanswered inbound call",
            ));
        };
        let (Some(req), Some(tx)) = (c.invite_req.clone(), c.server_tx.clone()) else {
            return Err(Error::ApiMisuse("no INVITE"));
        };
        calls.remove(&call.0);
        drop(calls);
        let mut resp = inner.response(&req, status, None, false);
        for (name, value) in headers {
            resp.headers.push(rsipstack::sip::Header::Other(
                (*name).into(),
                (*value).into(),
            ));
        }
        tx.send(TransactionEvent::Respond(resp))
            .map_err(|_| Error::Transport("transaction gone".into()))?;
        inner.emit(Event::Ended {
            call: call.clone(),
            reason: EndReason::LocalReject { status },
        });
        Ok(())
    }

    /// Hangs up: BYE on an established call, CANCEL on an outbound call not
    /// yet answered (a 200 that crosses the CANCEL is ACKed, then BYE'd), 480
    /// on an unanswered inbound call. [`Event::Ended`] follows.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when the call is unknown (already ended).
    pub fn hangup(&self, call: &CallId) -> Result<(), Error> {
        let inner = self.inner.clone();
        let mut calls = lock(&inner.calls);
        let c = calls
            .get_mut(&call.0)
            .ok_or(Error::ApiMisuse("hangup() of an unknown or ended call"))?;
        if c.confirmed {
            let cid = call.clone();
            drop(calls);
            let i = inner.clone();
            tokio::spawn(async move {
                i.send_bye(&cid).await;
                i.emit(Event::Ended {
                    call: cid,
                    reason: EndReason::LocalHangup,
                });
            });
            return Ok(());
        }
        if !c.outbound {
            drop(calls);
            return self.reject(call, 480);
        }
        c.cancel_requested = true;
        if c.provisional_seen && !c.cancel_sent {
            c.cancel_sent = true;
            if let Some(invite) = c.invite.clone() {
                drop(calls);
                tokio::spawn(async move { inner.send_cancel(invite).await });
            }
        }
        Ok(())
    }

    /// Sends a re-INVITE with a new offer built from `media` (hold with
    /// `Direction::SendOnly`, resume with `SendRecv`, or a new address/port),
    /// [RFC 3264 §8](https://www.rfc-editor.org/rfc/rfc3264#section-8), and
    /// returns the trunk's answer. The session version is raised for you. On
    /// an inbound call it first waits (up to 5 s) for the ACK of our 200
    /// ([RFC 3261 §14.1](https://www.rfc-editor.org/rfc/rfc3261#section-14.1)).
    ///
    /// # Errors
    ///
    /// - [`Error::ApiMisuse`] when the call is unknown or not yet established;
    /// - [`Error::PeerIncompatible`] when the trunk refuses the offer (488, or
    ///   491 on glare: retry later) or answers without a usable SDP;
    /// - [`Error::TimedOut`] without a final response (Timer B) or ACK.
    pub async fn update_media(
        &self,
        call: &CallId,
        media: LocalMedia,
    ) -> Result<RemoteMedia, Error> {
        self.inner.reinvite(call, Some(media), "INVITE").await
    }

    /// Like [`UserAgent::update_media`], with an UPDATE instead of a
    /// re-INVITE ([RFC 3311 §5.1](https://www.rfc-editor.org/rfc/rfc3311#section-5.1)):
    /// a single transaction without ACK, for hold and resume toward trunks
    /// that list UPDATE in `Allow`. Returns the trunk's answer.
    ///
    /// # Errors
    ///
    /// As [`UserAgent::update_media`]; a trunk without UPDATE support
    /// answers 405 or 501, reported as [`Error::PeerIncompatible`] (fall back
    /// to [`UserAgent::update_media`]).
    pub async fn update_media_by_update(
        &self,
        call: &CallId,
        media: LocalMedia,
    ) -> Result<RemoteMedia, Error> {
        self.inner.reinvite(call, Some(media), "UPDATE").await
    }

    /// Stops the stack: sockets close, timers stop. Calls are not hung up
    /// first; hang them up before.
    pub fn shutdown(&self) {
        self.inner.cancel.cancel();
    }

    fn trunk_index(&self, name: &str) -> Result<usize, Error> {
        self.inner
            .config
            .trunks
            .iter()
            .position(|t| t.name == name)
            .ok_or(Error::ApiMisuse("unknown trunk name"))
    }
}

/// `host[:port]` of a trunk, as written in URIs.
fn hostport(t: &TrunkConfig) -> String {
    match t.port {
        Some(p) => format!("{}:{p}", t.host),
        None => t.host.clone(),
    }
}

fn fmt_hostport(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        IpAddr::V4(v4) => format!("{v4}:{port}"),
    }
}

fn status_of(r: &Response) -> u16 {
    r.status_code.code()
}

fn challenges_of(r: &Response) -> (ChallengeKind, Vec<crate::digest::Challenge>) {
    let (kind, name) = if status_of(r) == 407 {
        (ChallengeKind::Proxy, "Proxy-Authenticate")
    } else {
        (ChallengeKind::Www, "WWW-Authenticate")
    };
    let mut all = Vec::new();
    for v in text::values(&r.headers, name) {
        match parse_challenges(&v) {
            Ok(mut c) => all.append(&mut c),
            Err(e) => warn!(error = %e, "unparsable challenge"),
        }
    }
    (kind, all)
}

struct RequestParts<'a> {
    trunk: usize,
    method: &'a str,
    ruri: &'a str,
    from: String,
    to: String,
    call_id: &'a str,
    cseq: u32,
    routes: &'a [String],
    extra: Vec<(String, String)>,
    body: Option<&'a str>,
}

impl Inner {
    fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    fn random_token(&self, n: usize) -> String {
        const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = lock(&self.rng);
        (0..n)
            .map(|_| ALPHA[rng.gen_range(0..ALPHA.len())] as char)
            .collect()
    }

    fn trunk(&self, idx: usize) -> &TrunkConfig {
        &self.config.trunks[idx]
    }

    fn domain(&self, idx: usize) -> String {
        let t = self.trunk(idx);
        if t.domain.is_empty() {
            t.host.clone()
        } else {
            t.domain.clone()
        }
    }

    fn trunk_uri(&self, idx: usize, user: &str) -> String {
        let t = self.trunk(idx);
        let transport = match t.transport {
            Transport::Udp => String::new(),
            other => format!(";transport={}", other.as_str()),
        };
        format!("sip:{user}@{}{transport}", hostport(t))
    }

    fn contact(&self, transport: Transport) -> String {
        let param = match transport {
            Transport::Udp => String::new(),
            other => format!(";transport={}", other.as_str()),
        };
        format!(
            "<sip:{}@{}{param}>",
            self.config.contact_user, self.contact_host
        )
    }

    fn build(&self, p: &RequestParts<'_>, branch: &str) -> Result<Request, Error> {
        let transport = self.trunk(p.trunk).transport;
        // A peer on a TCP or TLS trunk may give a Contact without
        // `transport=`; keep the dialog on that transport rather than falling
        // back to UDP.
        let ruri_tcp;
        let ruri = if transport != Transport::Udp
            && p.routes.is_empty()
            && !p.ruri.to_ascii_lowercase().contains("transport=")
            && !p.ruri.to_ascii_lowercase().starts_with("sips:")
        {
            ruri_tcp = format!("{};transport={}", p.ruri, transport.as_str());
            ruri_tcp.as_str()
        } else {
            p.ruri
        };
        // Over TCP and TLS, ask the peer to reuse our connection for its
        // requests to us (RFC 5923 §5: `alias` in Via): we do not listen for
        // TLS, and behind NAT nobody could connect to us anyway.
        let alias = if transport == Transport::Udp {
            ""
        } else {
            ";alias"
        };
        let mut s = format!(
            "{} {} SIP/2.0\r\nVia: SIP/2.0/{} {};branch=z9hG4bK{branch};rport{alias}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {}\r\n",
            p.method,
            ruri,
            transport.as_str().to_ascii_uppercase(),
            self.via_host,
            p.from,
            p.to,
            p.call_id,
            p.cseq,
            p.method
        );
        for r in p.routes {
            s.push_str(&format!("Route: {r}\r\n"));
        }
        if p.method != "CANCEL" && p.method != "ACK" {
            s.push_str(&format!(
                "Contact: {}\r\nAllow: {ALLOW}\r\n",
                self.contact(transport)
            ));
        }
        s.push_str(&format!("User-Agent: {}\r\n", self.config.user_agent));
        for (k, v) in &p.extra {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        match p.body {
            Some(b) => s.push_str(&format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            )),
            None => s.push_str("Content-Length: 0\r\n\r\n"),
        }
        Request::try_from(s.as_str()).map_err(|e| Error::malformed("request", e.to_string()))
    }

    /// Builds a response to `req` (whose To already carries our tag when it is
    /// an INVITE we answer) with Contact for 1xx/2xx to INVITE.
    fn response(&self, req: &Request, status: u16, sdp: Option<&str>, contact: bool) -> Response {
        let mut resp = self.endpoint.make_response(
            req,
            rsipstack::sip::StatusCode::from(status),
            sdp.map(|s| s.as_bytes().to_vec()),
        );
        if contact {
            // RFC 3261 §12.1.1: the UAS copies Record-Route into responses
            // that establish a dialog, so the caller routes through the same
            // proxies (rsipstack's make_response drops it).
            for rr in text::values(&req.headers, "Record-Route") {
                resp.headers
                    .push(rsipstack::sip::Header::Other("Record-Route".into(), rr));
            }
            let via = text::value(&req.headers, "Via").unwrap_or_default();
            let via = via.to_ascii_uppercase();
            let transport = if via.starts_with("SIP/2.0/TCP") {
                Transport::Tcp
            } else if via.starts_with("SIP/2.0/TLS") {
                Transport::Tls
            } else {
                Transport::Udp
            };
            resp.headers.push(rsipstack::sip::Header::Other(
                "Contact".into(),
                self.contact(transport),
            ));
            resp.headers
                .push(rsipstack::sip::Header::Other("Allow".into(), ALLOW.into()));
        }
        if sdp.is_some() {
            resp.headers.push(rsipstack::sip::Header::Other(
                "Content-Type".into(),
                "application/sdp".into(),
            ));
        }
        resp
    }

    async fn start_tx(&self, req: Request) -> Result<Transaction, Error> {
        self.connect_first(&req).await?;
        let key = TransactionKey::from_request(&req, TransactionRole::Client)?;
        let mut tx = Transaction::new_client(key, req, self.endpoint.clone(), None);
        tx.send().await?;
        Ok(tx)
    }

    /// Over TLS, opens (or finds) the connection to the request's next hop
    /// before the transaction starts: rsipstack's transaction would swallow
    /// a failed handshake and retry until Timer B, where this surfaces the
    /// certificate error at once.
    async fn connect_first(&self, req: &Request) -> Result<(), Error> {
        let via = text::value(&req.headers, "Via").unwrap_or_default();
        if !via.to_ascii_uppercase().starts_with("SIP/2.0/TLS") {
            return Ok(());
        }
        let dest = req.destination();
        let mut target = rsipstack::transport::SipAddr::try_from(&dest)?;
        if target.r#type.is_none() {
            target.r#type = Some(rsipstack::sip::Transport::Tls);
        }
        if target.addr.port.is_none() {
            target.addr.port = Some(Transport::Tls.default_port().into());
        }
        match self.endpoint.transport_layer.lookup(&target, None).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let msg = format!("TLS connection to {}: {e}", Pii(&target));
                warn!(error = %msg, "TLS connection failed");
                Err(Error::Transport(msg))
            }
        }
    }

    async fn final_response(tx: &mut Transaction) -> Result<Response, Error> {
        loop {
            match tx.receive().await {
                Some(SipMessage::Response(r))
                    if r.status_code.kind() != StatusCodeKind::Provisional =>
                {
                    return Ok(r)
                }
                Some(_) => {}
                None => return Err(Error::TimedOut("no final response")),
            }
        }
    }

    /// Sends a non-INVITE request built by `parts` (called again with a new
    /// CSeq and the credentials header after a 401/407), returns the final
    /// response.
    async fn request_with_auth(
        &self,
        trunk: usize,
        cseq: &mut u32,
        mut parts: impl FnMut(u32, &[(String, String)]) -> Result<Request, Error>,
    ) -> Result<Response, Error> {
        let mut auth = Authenticator::new();
        let mut auth_headers: Vec<(String, String)> = Vec::new();
        loop {
            let req = parts(*cseq, &auth_headers)?;
            let method = req.method.to_string();
            let uri = req.uri.to_string();
            let mut tx = self.start_tx(req).await?;
            let resp = Self::final_response(&mut tx).await?;
            let status = status_of(&resp);
            if status != 401 && status != 407 {
                return Ok(resp);
            }
            let Some(cred) = self.trunk(trunk).credentials.clone() else {
                return Ok(resp);
            };
            let (kind, chs) = challenges_of(&resp);
            let cnonce = self.random_token(16);
            let (name, value) = auth.answer(kind, &chs, &cred, &method, &uri, &cnonce)?;
            auth_headers.retain(|(n, _)| n != name);
            auth_headers.push((name.to_string(), value));
            *cseq += 1;
        }
    }

    /// Sends a re-INVITE: with `media`, a new offer (version raised); with
    /// `None`, a session refresh repeating our current offer (same version).
    async fn reinvite(
        self: &Arc<Self>,
        call: &CallId,
        media: Option<LocalMedia>,
        method: &'static str,
    ) -> Result<RemoteMedia, Error> {
        let inner = self;
        for _ in 0..500 {
            let ready = lock(&inner.calls)
                .get(&call.0)
                .map(|c| c.confirmed && c.server_tx.is_none());
            match ready {
                None => return Err(Error::ApiMisuse("update_media() of an unknown call")),
                Some(true) => break,
                Some(false) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        let mut timer_headers: Vec<(String, String)> = Vec::new();
        let (trunk, from, to, target, routes, mut cseq, media) = {
            let mut calls = lock(&inner.calls);
            let c = calls
                .get_mut(&call.0)
                .filter(|c| c.confirmed && c.server_tx.is_none())
                .ok_or(Error::TimedOut("ACK of our 200 before the re-INVITE"))?;
            let media = match media {
                Some(mut media) => {
                    media.session_version = c
                        .local_media
                        .as_ref()
                        .map_or(media.session_version, |m| m.session_version + 1);
                    media
                }
                None => c
                    .local_media
                    .clone()
                    .ok_or(Error::ApiMisuse("no local media to refresh"))?,
            };
            c.local_media = Some(media.clone());
            c.cseq += 1;
            if c.we_refresh {
                if let Some(se) = c.session_expires {
                    timer_headers = vec![
                        ("Session-Expires".to_string(), format!("{se};refresher=uac")),
                        ("Supported".to_string(), "timer".to_string()),
                    ];
                }
            }
            (
                c.trunk,
                format!("{};tag={}", c.local_uri, c.local_tag),
                match &c.remote_tag {
                    Some(t) => format!("{};tag={t}", c.remote_uri),
                    None => c.remote_uri.clone(),
                },
                c.remote_target.clone(),
                c.route_set.clone(),
                c.cseq,
                media,
            )
        };
        let offer = media.offer();
        let resp = inner
            .request_with_auth(trunk, &mut cseq, |cseq, auth| {
                inner.build(
                    &RequestParts {
                        trunk,
                        method,
                        ruri: &target,
                        from: from.clone(),
                        to: to.clone(),
                        call_id: &call.0,
                        cseq,
                        routes: &routes,
                        extra: timer_headers.iter().chain(auth).cloned().collect(),
                        body: Some(&offer),
                    },
                    &inner.random_token(16),
                )
            })
            .await?;
        if let Some(c) = lock(&inner.calls).get_mut(&call.0) {
            c.cseq = c.cseq.max(cseq);
        }
        let status = status_of(&resp);
        if status / 100 != 2 {
            return Err(Error::PeerIncompatible(format!(
                "{method} with an offer answered {status} {}",
                resp.reason_phrase().unwrap_or("")
            )));
        }
        let remote = RemoteMedia::parse(&String::from_utf8_lossy(resp.body()))?;
        info!(call = %call, method, hold = ?media.direction, "offer in dialog accepted");
        Ok(remote)
    }

    /// Ends the call with BYE when the refresher lets the session interval
    /// pass without a re-INVITE or UPDATE ([RFC 4028 §10](https://www.rfc-editor.org/rfc/rfc4028#section-10)).
    async fn session_watchdog(self: Arc<Self>, call: CallId, interval: Duration) {
        let mut wait = interval;
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let since = match lock(&self.calls).get(&call.0) {
                Some(c) => c.last_refresh.elapsed(),
                None => return,
            };
            if since >= interval {
                warn!(call = %call, ?interval, "session timer expired without refresh: BYE");
                self.emit(Event::Ended {
                    call: call.clone(),
                    reason: EndReason::Failed(Error::TimedOut("session timer expired")),
                });
                self.send_bye(&call).await;
                return;
            }
            wait = interval - since;
        }
    }
}

#[cfg(test)]
mod reject_tests;
