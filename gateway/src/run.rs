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

use crate::calls::Calls;
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
    let mut calls = Calls::new(&config);
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
        };
        if flush(&xmpp, out, &mut calls).await.is_err() {
            break Err(Error::XmppDriverStopped);
        }
    };
    if result.is_ok() {
        drain(&config, &xmpp, &mut events, &component, &mut calls).await;
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
    events: &mut tokio::sync::mpsc::Receiver<XmppEvent>,
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
            event = events.recv() => match event {
                Some(event) => out = on_event(component, calls, event),
                None => break,
            },
            () = sleep_until(calls.poll_timeout()) => calls.handle_timeout(now()),
        }
    }
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
