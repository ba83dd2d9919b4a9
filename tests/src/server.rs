//! What the test bed's clients and the gateway need to know of an XMPP server, so the
//! same harness runs against [`crate::Prosody`] and [`crate::Ejabberd`].

/// An XMPP server of the test bed: one virtual host for users, an external component
/// (XEP-0114) for the gateway, and HTTP for WebSocket (RFC 7395) and BOSH (XEP-0206)
/// clients, all on loopback.
///
/// [`crate::WebrtcClient::start`] reads [`XmppServer::websocket_url`] (or
/// [`XmppServer::bosh_url`]); [`crate::Gateway::start`] reads the component's domain,
/// port and secret. It is object safe: `&dyn XmppServer` works where a test picks the
/// server at run time.
pub trait XmppServer {
    /// A short name for logs and errors (`prosody`, `ejabberd`).
    fn server_name(&self) -> &str;

    /// The virtual host users live on, e.g. `localhost`.
    fn domain(&self) -> &str;

    /// `user@domain`.
    fn jid(&self, user: &str) -> String {
        format!("{user}@{}", self.domain())
    }

    /// The component (gateway) domain, e.g. `gw.localhost`.
    fn component_domain(&self) -> &str;

    /// The component's XEP-0114 shared secret.
    fn component_secret(&self) -> &str;

    /// The XEP-0114 component port on 127.0.0.1.
    fn component_port(&self) -> u16;

    /// The c2s (RFC 6120 client) port on 127.0.0.1.
    fn c2s_port(&self) -> u16;

    /// The WebSocket endpoint (RFC 7395), `ws://127.0.0.1:PORT/…`.
    fn websocket_url(&self) -> String;

    /// The BOSH endpoint (XEP-0206), `http://127.0.0.1:PORT/…`.
    fn bosh_url(&self) -> String;

    /// Creates the account `user@domain` with `password`.
    ///
    /// # Errors
    /// [`crate::Error::Peer`] if the server's admin tool fails.
    fn register(&self, user: &str, password: &str) -> crate::Result<()>;
}

/// How many lines of the server's log at `log` contain `needle` (the server's own
/// words for a completed XEP-0114 handshake); 0 if the log cannot be read.
pub(crate) fn log_count(log: &std::path::Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .map(|text| text.matches(needle).count())
        .unwrap_or(0)
}

/// Waits until the log at `log` holds more than `seen` lines with `needle` and returns
/// the new count, checking that the server's `process` (if running) did not exit.
///
/// # Errors
/// [`crate::Error::TimedOut`] with the log tail; [`crate::Error::Exited`] if the
/// server died.
pub(crate) fn wait_log_count(
    server: &str,
    log: &std::path::Path,
    needle: &str,
    mut process: Option<&mut crate::Process>,
    seen: usize,
    timeout: std::time::Duration,
) -> crate::Result<usize> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let n = log_count(log, needle);
        if n > seen {
            return Ok(n);
        }
        if let Some(p) = process.as_deref_mut() {
            p.check_running()?;
        }
        if std::time::Instant::now() >= deadline {
            return Err(crate::Error::TimedOut {
                what: format!("a component handshake with {server} (seen {seen})"),
                after: timeout,
                context: crate::process::log_tail(log, 30),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
