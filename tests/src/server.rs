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
