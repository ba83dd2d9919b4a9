//! The tokio driver of the XEP-0114 component stream.
//!
//! One task owns the TCP connection to the XMPP server's component port and
//! drives a sans-IO [`xmpp::stream::Stream`] (STYLE.md R5): it reads bytes
//! into the core, writes what the core transmits, fires its timer, and
//! forwards its events. When the stream ends (server restart, ping timeout,
//! stream error, rejected secret) it reconnects after a capped exponential
//! backoff: `backoff_initial`, doubled after every attempt that does not reach
//! the handshake, up to `backoff_max`; a successful handshake resets it. A
//! rejected secret is logged at error level on every attempt and waits the
//! full cap, so a misconfiguration neither goes unnoticed nor spins.
//!
//! The rest of the gateway talks to the task through an [`XmppHandle`]
//! (send stanzas, shut down) and a channel of [`XmppEvent`]s (connection
//! state, received stanzas).
//!
//! Wiring it to the presence and disco responder:
//!
//! ```no_run
//! # async fn wire(config: gateway::config::Config) {
//! use gateway::xmpp_driver::{self, DriverConfig, XmppEvent};
//! use xmpp::component::{Action, Component};
//!
//! let component = Component::new(xmpp_driver::component_config(&config.xmpp));
//! let (handle, mut events, _task) = xmpp_driver::spawn(DriverConfig::from_config(&config.xmpp));
//! while let Some(event) = events.recv().await {
//!     let actions = match event {
//!         XmppEvent::Stanza(stanza) => component.handle_stanza(stanza),
//!         XmppEvent::StanzaDropped { head, .. } => component.handle_dropped(head.as_ref()),
//!         XmppEvent::Connected | XmppEvent::Disconnected { .. } => Vec::new(),
//!         _ => Vec::new(),
//!     };
//!     for action in actions {
//!         match action {
//!             Action::Send(reply) => handle.send(reply).await.expect("driver running"),
//!             Action::Jingle(_) | Action::Jmi(_) | Action::IqResponse(_) => { /* call layer */ }
//!             _ => {}
//!         }
//!     }
//! }
//! # }
//! ```

use std::time::Duration;

use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant as TokioInstant;
use tracing::Instrument as _;
use xmpp::error::Error as XmppError;
use xmpp::stream::{Config as StreamConfig, Event, Stream};

/// Capacity of the command and event channels.
const CHANNEL_CAPACITY: usize = 1024;
/// How long a clean shutdown waits for the server's `</stream:stream>`.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Settings of the driver.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Host name or address of the server's component listener.
    pub host: String,
    /// TCP port of the component listener (Prosody and ejabberd: 5347).
    pub port: u16,
    /// The stream settings: domain, secret, pings, limits.
    pub stream: StreamConfig,
    /// First reconnection delay; default 1 s.
    pub backoff_initial: Duration,
    /// Cap of the reconnection delay; default 30 s.
    pub backoff_max: Duration,
    /// Limit on establishing the TCP connection; default 10 s.
    pub connect_timeout: Duration,
}

impl DriverConfig {
    /// Settings with the default backoff (1 s doubling to 30 s) and connect
    /// timeout (10 s).
    pub fn new(host: impl Into<String>, port: u16, stream: StreamConfig) -> Self {
        Self {
            host: host.into(),
            port,
            stream,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl DriverConfig {
    /// The driver settings of the `[xmpp]` config section: server, port,
    /// domain, secret, ping interval and timeout, backoff.
    pub fn from_config(x: &crate::config::Xmpp) -> Self {
        let mut stream = StreamConfig::new(x.domain.as_str(), x.secret.expose());
        stream
            .ping_interval(x.ping_interval)
            .ping_timeout(x.ping_timeout);
        let mut c = Self::new(x.server.as_str(), x.port, stream);
        c.backoff_initial = x.reconnect_backoff_initial;
        c.backoff_max = x.reconnect_backoff_max;
        c
    }
}

/// The presence and disco responder settings of the `[xmpp]` config section:
/// domain, caps node, resource, identity name.
pub fn component_config(x: &crate::config::Xmpp) -> xmpp::component::Config {
    let mut c = xmpp::component::Config::new(x.domain.as_str());
    c.caps_node(x.caps_node())
        .resource(x.resource.as_str())
        .identity_name(x.identity_name.as_str())
        .gateway_name(x.identity_name.as_str());
    c
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// Connecting, reading or writing failed (message of the I/O error).
    Io(String),
    /// The stream ended: [`XmppError::SecretRejected`],
    /// [`XmppError::PingTimeout`], [`XmppError::StreamClosed`], a stream
    /// error…
    Stream(XmppError),
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "i/o error: {e}"),
            Self::Stream(e) => e.fmt(f),
        }
    }
}

/// What the driver reports, in order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum XmppEvent {
    /// The handshake succeeded; stanzas sent from now on reach the server.
    Connected,
    /// The connection ended or could not be made; the driver tries again
    /// after `retry_in`.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
        /// The backoff delay before the next attempt.
        retry_in: Duration,
    },
    /// A stanza from the server (see [`xmpp::stream::Event::Stanza`]).
    Stanza(Element),
    /// A stanza the stream skipped (see
    /// [`xmpp::stream::Event::StanzaDropped`]); answer it with
    /// [`xmpp::component::Component::handle_dropped`].
    StanzaDropped {
        /// Its start tag, when complete.
        head: Option<Element>,
        /// Why it was skipped.
        reason: XmppError,
    },
}

enum Command {
    Send(Element),
    Shutdown,
}

/// Sends stanzas through the driver and stops it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct XmppHandle {
    tx: mpsc::Sender<Command>,
}

/// The driver task has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the xmpp driver has stopped")]
pub struct DriverStopped;

impl XmppHandle {
    /// Queues a stanza (in `jabber:component:accept`, with `from` set). It is
    /// dropped with a warning when the stream is not connected at the time
    /// the driver takes it.
    ///
    /// # Errors
    /// [`DriverStopped`] when the driver task has ended.
    pub async fn send(&self, stanza: Element) -> Result<(), DriverStopped> {
        self.tx
            .send(Command::Send(stanza))
            .await
            .map_err(|_| DriverStopped)
    }

    /// Closes the stream cleanly (`</stream:stream>`) and ends the driver
    /// task; also happens when every handle is dropped.
    ///
    /// # Errors
    /// [`DriverStopped`] when the driver task has already ended.
    pub async fn shutdown(&self) -> Result<(), DriverStopped> {
        self.tx
            .send(Command::Shutdown)
            .await
            .map_err(|_| DriverStopped)
    }
}

/// Starts the driver task on the current tokio runtime.
///
/// Returns the handle, the event channel (the driver stops when it is
/// dropped) and the task, which ends after [`XmppHandle::shutdown`] or when
/// every handle is dropped.
pub fn spawn(config: DriverConfig) -> (XmppHandle, mpsc::Receiver<XmppEvent>, JoinHandle<()>) {
    let (cmd_tx, cmd_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (ev_tx, ev_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let span = tracing::debug_span!("xmpp", domain = %config.stream.domain());
    let task = tokio::spawn(run(config, cmd_rx, ev_tx).instrument(span));
    (XmppHandle { tx: cmd_tx }, ev_rx, task)
}

/// How one connection ended.
enum End {
    /// Reconnect after the backoff.
    Retry {
        reason: DisconnectReason,
        connected: bool,
    },
    /// Stop the driver.
    Stop,
}

async fn run(
    config: DriverConfig,
    mut cmd_rx: mpsc::Receiver<Command>,
    ev_tx: mpsc::Sender<XmppEvent>,
) {
    let mut backoff = config.backoff_initial;
    loop {
        let end = connect_and_drive(&config, &mut cmd_rx, &ev_tx).await;
        let (reason, connected) = match end {
            End::Stop => return,
            End::Retry { reason, connected } => (reason, connected),
        };
        if connected {
            backoff = config.backoff_initial;
        }
        let delay = if reason == DisconnectReason::Stream(XmppError::SecretRejected) {
            tracing::error!(
                server = %format_args!("{}:{}", config.host, config.port),
                "the XMPP server rejected the component secret for {}: fix xmpp.secret \
                 (it must equal the server's component_secret); retrying in {:?}",
                config.stream.domain(),
                config.backoff_max
            );
            config.backoff_max
        } else {
            tracing::warn!(%reason, retry_in = ?backoff, "xmpp component disconnected");
            backoff
        };
        let event = XmppEvent::Disconnected {
            reason,
            retry_in: delay,
        };
        if ev_tx.send(event).await.is_err() {
            return;
        }
        if !connected {
            backoff = (backoff * 2).min(config.backoff_max);
        }
        // Wait, still taking commands: stanzas are dropped, shutdown stops.
        let wake = TokioInstant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(wake) => break,
                cmd = cmd_rx.recv() => match cmd {
                    Some(Command::Send(_)) => {
                        tracing::warn!("xmpp stream not connected: dropped an outgoing stanza");
                    }
                    Some(Command::Shutdown) | None => return,
                },
            }
        }
    }
}

async fn connect_and_drive(
    config: &DriverConfig,
    cmd_rx: &mut mpsc::Receiver<Command>,
    ev_tx: &mpsc::Sender<XmppEvent>,
) -> End {
    let target = (config.host.as_str(), config.port);
    let tcp = match tokio::time::timeout(config.connect_timeout, TcpStream::connect(target)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            return End::Retry {
                reason: DisconnectReason::Io(format!(
                    "connect to {}:{}: {e}",
                    config.host, config.port
                )),
                connected: false,
            }
        }
        Err(_) => {
            return End::Retry {
                reason: DisconnectReason::Io(format!(
                    "connect to {}:{}: timed out after {:?}",
                    config.host, config.port, config.connect_timeout
                )),
                connected: false,
            }
        }
    };
    let _ = tcp.set_nodelay(true);
    tracing::debug!(server = %format_args!("{}:{}", config.host, config.port), "tcp connected");
    let mut conn = Connection {
        tcp,
        stream: Stream::new(config.stream.clone(), now()),
        connected: false,
        closing_since: None,
    };
    conn.drive(cmd_rx, ev_tx).await
}

fn now() -> std::time::Instant {
    // tokio's clock, so that tests may pause and advance it.
    TokioInstant::now().into_std()
}

struct Connection {
    tcp: TcpStream,
    stream: Stream,
    connected: bool,
    /// When a local close started (shutdown requested).
    closing_since: Option<TokioInstant>,
}

impl Connection {
    async fn drive(
        &mut self,
        cmd_rx: &mut mpsc::Receiver<Command>,
        ev_tx: &mpsc::Sender<XmppEvent>,
    ) -> End {
        let mut buf = vec![0u8; 16 * 1024];
        let mut cmd_open = true;
        loop {
            // 2. transmit, 3. events.
            if let Err(e) = self.flush().await {
                return self.io_end(e);
            }
            while let Some(event) = self.stream.poll_event() {
                let forward = match event {
                    Event::Connected => {
                        self.connected = true;
                        XmppEvent::Connected
                    }
                    Event::Stanza(el) => XmppEvent::Stanza(el),
                    Event::StanzaDropped { head, reason } => {
                        XmppEvent::StanzaDropped { head, reason }
                    }
                    Event::Closed { reason } => {
                        let _ = self.flush().await;
                        let _ = self.tcp.shutdown().await;
                        return match (reason, self.closing_since) {
                            (_, Some(_)) | (None, _) => End::Stop,
                            (Some(e), None) => End::Retry {
                                reason: DisconnectReason::Stream(e),
                                connected: self.connected,
                            },
                        };
                    }
                    _ => continue,
                };
                if ev_tx.send(forward).await.is_err() {
                    // Nobody listens any more: stop.
                    self.start_close(cmd_rx);
                    cmd_open = false;
                }
            }
            // 4. timer.
            let deadline = match (self.stream.poll_timeout(), self.closing_since) {
                (Some(t), Some(c)) => Some(TokioInstant::from_std(t).min(c + CLOSE_GRACE)),
                (Some(t), None) => Some(TokioInstant::from_std(t)),
                (None, Some(c)) => Some(c + CLOSE_GRACE),
                (None, None) => None,
            };
            // 1. exactly one input.
            tokio::select! {
                read = self.tcp.read(&mut buf) => match read {
                    Ok(0) => self.stream.handle_eof(now()),
                    Ok(n) => self.stream.handle_bytes(now(), &buf[..n]),
                    Err(e) => {
                        tracing::debug!(error = %e, "xmpp read failed");
                        self.stream.handle_eof(now());
                    }
                },
                () = sleep_until_opt(deadline) => {
                    if self.closing_since.is_some_and(|c| c + CLOSE_GRACE <= TokioInstant::now()) {
                        return End::Stop;
                    }
                    self.stream.handle_timeout(now());
                }
                cmd = cmd_rx.recv(), if cmd_open => match cmd {
                    Some(Command::Send(el)) => {
                        if let Err(e) = self.stream.send(&el) {
                            tracing::warn!(error = %e, "dropped an outgoing stanza");
                        }
                    }
                    Some(Command::Shutdown) | None => {
                        cmd_open = false;
                        self.start_close(cmd_rx);
                    }
                },
            }
        }
    }

    fn start_close(&mut self, cmd_rx: &mut mpsc::Receiver<Command>) {
        cmd_rx.close();
        if self.closing_since.is_none() {
            self.closing_since = Some(TokioInstant::now());
            self.stream.close(now());
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        while let Some(bytes) = self.stream.poll_transmit() {
            self.tcp.write_all(&bytes).await?;
        }
        Ok(())
    }

    fn io_end(&self, e: std::io::Error) -> End {
        if self.closing_since.is_some() {
            return End::Stop;
        }
        End::Retry {
            reason: DisconnectReason::Io(e.to_string()),
            connected: self.connected,
        }
    }
}

async fn sleep_until_opt(deadline: Option<TokioInstant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
