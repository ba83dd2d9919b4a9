//! [`run`]: the gateway's main task (STYLE.md R6, after mini-redis `server::run`).
//!
//! It starts the XMPP component driver ([`crate::xmpp_driver`]), answers presence and
//! discovery with [`xmpp::component::Component`], hands JMI and Jingle stanzas to
//! [`Calls`], sends their replies, and fires their timers. When `shutdown` resolves it
//! ends every call (`session-terminate`, JMI `<finish/>`), waits up to
//! `calls.drain_timeout` for the peers' answers, closes the stream and returns.

use std::future::Future;
use std::time::Instant;

use minidom::Element;
use tokio::time::Instant as TokioInstant;
use xmpp::component::{self, Action, Component};
use xmpp::jingle::{Reason, ReasonCondition};

use crate::calls::{CallInput, Calls};
use crate::config::Config;
use crate::xmpp_driver::{self, DriverConfig, XmppEvent, XmppHandle};

/// Why [`run`] stopped other than by its `shutdown`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The XMPP driver task ended while the gateway was running (it only ends on
    /// request, so this is a local fault such as a panic).
    #[error("the xmpp driver stopped unexpectedly")]
    XmppDriverStopped,
}

/// The reason sent to every call when the gateway shuts down.
const SHUTDOWN_TEXT: &str = "the gateway is shutting down";

/// Runs the gateway with `config` until `shutdown` resolves, then shuts down gracefully.
///
/// The XMPP connection is made (and remade, with capped exponential backoff) by the
/// driver in the background: an unreachable server or a rejected secret is logged, not
/// returned.
///
/// # Errors
///
/// [`Error::XmppDriverStopped`] when the XMPP driver task ends by itself.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let (xmpp, mut events, driver) = xmpp_driver::spawn(driver_config(&config));
    let component = Component::new(component_config(&config));
    let (inputs_tx, mut inputs) = tokio::sync::mpsc::unbounded_channel::<CallInput>();
    let (ua, mut sip_events) = start_sip(&config).await;
    let mut calls = match ua.clone() {
        Some(ua) => Calls::bridged(&config, ua, inputs_tx),
        None => Calls::new(&config),
    };
    tracing::info!(domain = %config.xmpp.domain, ver = component.ver(), "gateway running");

    tokio::pin!(shutdown);
    let result = loop {
        let deadline = calls.poll_timeout();
        let out = tokio::select! {
            () = &mut shutdown => break Ok(()),
            event = events.recv() => match event {
                Some(event) => on_event(&component, &mut calls, event),
                None => break Err(Error::XmppDriverStopped),
            },
            () = sleep_until(deadline) => {
                calls.handle_timeout(now());
                Vec::new()
            }
            Some(input) = inputs.recv() => {
                calls.handle_input(now(), input);
                Vec::new()
            }
            Some(event) = recv_sip(&mut sip_events) => {
                calls.handle_sip(now(), event);
                Vec::new()
            }
        };
        if flush(&xmpp, out, &mut calls).await.is_err() {
            break Err(Error::XmppDriverStopped);
        }
    };
    if result.is_ok() {
        let mut sides = Sides {
            events: &mut events,
            inputs: &mut inputs,
            sip: &mut sip_events,
        };
        drain(&config, &xmpp, &mut sides, &component, &mut calls).await;
    }
    if let Some(ua) = ua {
        ua.shutdown();
    }
    let _ = xmpp.shutdown().await;
    drop(events);
    let _ = driver.await;
    tracing::info!("gateway stopped");
    result
}

/// Graceful shutdown: end every call, then keep answering until the calls are gone or
/// `calls.drain_timeout` has passed.
async fn drain(
    config: &Config,
    xmpp: &XmppHandle,
    sides: &mut Sides<'_>,
    component: &Component,
    calls: &mut Calls,
) {
    tracing::info!(
        sessions = calls.session_count(),
        "shutting down: ending calls"
    );
    let reason = Reason::with_text(ReasonCondition::GeneralError, SHUTDOWN_TEXT);
    calls.terminate_all(now(), &reason);
    let give_up = TokioInstant::now() + config.calls.drain_timeout;
    let mut out = Vec::new();
    while flush(xmpp, std::mem::take(&mut out), calls).await.is_ok() && !calls.is_idle() {
        tokio::select! {
            () = tokio::time::sleep_until(give_up) => {
                tracing::warn!(sessions = calls.session_count(), "drain timeout: leaving calls behind");
                break;
            }
            event = sides.events.recv() => match event {
                Some(event) => out = on_event(component, calls, event),
                None => break,
            },
            () = sleep_until(calls.poll_timeout()) => calls.handle_timeout(now()),
            Some(input) = sides.inputs.recv() => calls.handle_input(now(), input),
            Some(event) = recv_sip(sides.sip) => calls.handle_sip(now(), event),
        }
    }
}

/// The event sources [`drain`] keeps answering.
struct Sides<'a> {
    events: &'a mut tokio::sync::mpsc::Receiver<XmppEvent>,
    inputs: &'a mut tokio::sync::mpsc::UnboundedReceiver<CallInput>,
    sip: &'a mut Option<tokio::sync::mpsc::UnboundedReceiver<sip::Event>>,
}

/// Starts the SIP user agent of `[sip]` when trunks are configured. A failure (the
/// port is taken) is logged, and the gateway runs without bridging calls.
async fn start_sip(
    config: &Config,
) -> (
    Option<sip::UserAgent>,
    Option<tokio::sync::mpsc::UnboundedReceiver<sip::Event>>,
) {
    if config.sip.trunks.is_empty() {
        tracing::warn!("no [[sip.trunks]]: calls are not bridged");
        return (None, None);
    }
    match sip::UserAgent::start(sip_config(config)).await {
        Ok((ua, events)) => {
            tracing::info!(local = %ua.local_addr(), "sip user agent running");
            (Some(ua), Some(events))
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot start the SIP user agent: calls are not bridged");
            (None, None)
        }
    }
}

/// The next SIP event, or never without a user agent.
async fn recv_sip(
    events: &mut Option<tokio::sync::mpsc::UnboundedReceiver<sip::Event>>,
) -> Option<sip::Event> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The SIP user agent's configuration from `[sip]` and `[[sip.trunks]]`.
fn sip_config(config: &Config) -> sip::Config {
    use crate::config::{NumberFormat, TrunkAuth};
    let s = &config.sip;
    let mut c = sip::Config::default();
    c.bind(std::net::SocketAddr::new(s.bind_address, s.port))
        .public_ip(s.public_address)
        .user_agent(s.user_agent.clone());
    for t in &s.trunks {
        let mut trunk = sip::TrunkConfig::new(t.name.clone(), t.host.clone());
        let transport = match t.transport {
            crate::config::Transport::Tcp => sip::Transport::Tcp,
            crate::config::Transport::Tls => sip::Transport::Tls,
            _ => sip::Transport::Udp,
        };
        let credentials = match (&t.username, &t.password) {
            (Some(u), Some(p)) => Some(sip::digest::Credentials {
                username: u.clone(),
                password: p.expose().to_owned(),
            }),
            _ => None,
        };
        let format = if t.dial_prefix.is_empty() {
            match t.number_format {
                NumberFormat::E164NoPlus => sip::NumberFormat::E164NoPlus,
                _ => sip::NumberFormat::E164,
            }
        } else {
            sip::NumberFormat::TechPrefix(t.dial_prefix.clone())
        };
        trunk
            .port(Some(t.port()))
            .transport(transport)
            .credentials(credentials)
            .register(t.auth == TrunkAuth::Registration)
            .register_expires(t.register_expires)
            .allowed_sources(
                t.allowed_sources
                    .iter()
                    .map(|n| sip::IpNet {
                        addr: n.net().addr(),
                        prefix: n.net().prefix_len(),
                    })
                    .collect(),
            )
            .number_format(format);
        c.trunk(trunk);
    }
    c
}

/// Handles one driver event; returns the stanzas to send, in order.
fn on_event(component: &Component, calls: &mut Calls, event: XmppEvent) -> Vec<Element> {
    let actions = match event {
        XmppEvent::Stanza(stanza) => component.handle_stanza(stanza),
        XmppEvent::StanzaDropped { head, reason } => {
            tracing::debug!(%reason, "stanza dropped by the stream");
            component.handle_dropped(head.as_ref())
        }
        XmppEvent::Connected => {
            tracing::info!("xmpp component connected");
            Vec::new()
        }
        other => {
            tracing::debug!(event = ?other, "xmpp event");
            Vec::new()
        }
    };
    let mut out = Vec::new();
    for action in actions {
        match action {
            Action::Send(stanza) => out.push(stanza),
            Action::Jingle(inbound) => calls.handle_jingle(now(), inbound),
            Action::Jmi(inbound) => calls.handle_jmi(now(), inbound),
            Action::IqResponse(inbound) => calls.handle_iq_response(now(), inbound),
            Action::Presence(inbound) => calls.handle_presence(now(), inbound),
            other => tracing::debug!(action = ?other, "component action not handled"),
        }
        out.extend(std::iter::from_fn(|| calls.poll_transmit()));
    }
    out
}

/// Sends `stanzas`, then everything the call layer has queued.
async fn flush(
    xmpp: &XmppHandle,
    stanzas: Vec<Element>,
    calls: &mut Calls,
) -> Result<(), xmpp_driver::DriverStopped> {
    for stanza in stanzas {
        xmpp.send(stanza).await?;
    }
    while let Some(stanza) = calls.poll_transmit() {
        xmpp.send(stanza).await?;
    }
    Ok(())
}

fn driver_config(config: &Config) -> DriverConfig {
    let x = &config.xmpp;
    let mut stream = xmpp::stream::Config::new(x.domain.clone(), x.secret.expose());
    stream
        .ping_interval(x.ping_interval)
        .ping_timeout(x.ping_timeout);
    let mut driver = DriverConfig::new(x.server.clone(), x.port, stream);
    driver.backoff_initial = x.reconnect_backoff_initial;
    driver.backoff_max = x.reconnect_backoff_max;
    driver
}

fn component_config(config: &Config) -> component::Config {
    let x = &config.xmpp;
    let mut c = component::Config::new(x.domain.clone());
    c.caps_node(x.caps_node())
        .identity_name(x.identity_name.clone())
        .gateway_name(x.identity_name.clone())
        .resource(x.resource.clone());
    c
}

/// The current time, from tokio's clock so tests may pause and advance it.
fn now() -> Instant {
    TokioInstant::now().into_std()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(TokioInstant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
