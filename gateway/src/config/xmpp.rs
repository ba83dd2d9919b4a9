//! The `[xmpp]`, `[log]` and `[calls]` sections.

use std::time::Duration;

use serde::Deserialize;

use super::types::Secret;

/// `[xmpp]`: how the gateway connects to its XMPP server as an external component
/// ([XEP-0114](https://xmpp.org/extensions/xep-0114.html)) and how it presents itself.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Xmpp {
    /// Host name or IP address of the XMPP server's component listener. Default
    /// `localhost`: the gateway usually runs beside Prosody or ejabberd.
    #[serde(default = "default_server")]
    pub server: String,
    /// TCP port of the component listener. Default 5347, the port Prosody
    /// (`component_ports`) and ejabberd (`ejabberd_service`) configurations use for
    /// [XEP-0114](https://xmpp.org/extensions/xep-0114.html).
    #[serde(default = "default_port")]
    pub port: u16,
    /// The component's domain, e.g. `gw.example.com`: number JIDs are
    /// `+15551234567@` this domain. Required; must match the server's `Component` entry.
    #[serde(default)]
    pub domain: String,
    /// The shared secret of the component handshake
    /// ([XEP-0114 §3](https://xmpp.org/extensions/xep-0114.html#usecases-connect)).
    /// Required; never logged. Best set through the environment variable
    /// `JSG__XMPP__SECRET` rather than in the file.
    #[serde(default)]
    pub secret: Secret,
    /// Interval between [XEP-0199](https://xmpp.org/extensions/xep-0199.html) pings
    /// to the server, so an idle stream survives the server's read timeout. Duration
    /// (`"60s"`, `"2m"`); default 60 s.
    #[serde(default = "default_ping_interval", with = "humantime_serde")]
    pub ping_interval: Duration,
    /// How long to wait for the answer to a ping before the stream is considered dead
    /// and reconnected. Duration; default 30 s.
    #[serde(default = "default_ping_timeout", with = "humantime_serde")]
    pub ping_timeout: Duration,
    /// First delay before reconnecting after the stream ends or the handshake fails;
    /// doubled after every failed attempt up to `reconnect_backoff_max`. Duration;
    /// default 1 s.
    #[serde(default = "default_backoff_initial", with = "humantime_serde")]
    pub reconnect_backoff_initial: Duration,
    /// Cap of the reconnection delay. Duration; default 60 s.
    #[serde(default = "default_backoff_max", with = "humantime_serde")]
    pub reconnect_backoff_max: Duration,
    /// The entity-capabilities node URI sent in presence
    /// ([XEP-0115 §4](https://xmpp.org/extensions/xep-0115.html#protocol)). Default:
    /// `https://<domain>/caps` (see [`Xmpp::caps_node`]).
    #[serde(default)]
    pub caps_node: Option<String>,
    /// The one resource of every number JID (`+15551234567@gw.example.com/gw`), from
    /// which presence, JMI and Jingle are sent (INTEROP.md E). Default `gw`.
    #[serde(default = "default_resource")]
    pub resource: String,
    /// The `name` of the disco identities
    /// ([XEP-0030 §3.1](https://xmpp.org/extensions/xep-0030.html#info-basic)) shown
    /// by clients. Default `Phone gateway`.
    #[serde(default = "default_identity_name")]
    pub identity_name: String,
}

impl Xmpp {
    /// The caps node: `caps_node` if set, else `https://<domain>/caps`.
    pub fn caps_node(&self) -> String {
        match &self.caps_node {
            Some(node) => node.clone(),
            None => format!("https://{}/caps", self.domain),
        }
    }
}

impl Default for Xmpp {
    fn default() -> Self {
        Self {
            server: default_server(),
            port: default_port(),
            domain: String::new(),
            secret: Secret::default(),
            ping_interval: default_ping_interval(),
            ping_timeout: default_ping_timeout(),
            reconnect_backoff_initial: default_backoff_initial(),
            reconnect_backoff_max: default_backoff_max(),
            caps_node: None,
            resource: default_resource(),
            identity_name: default_identity_name(),
        }
    }
}

fn default_server() -> String {
    "localhost".to_owned()
}
fn default_port() -> u16 {
    5347
}
fn default_ping_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_ping_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_backoff_initial() -> Duration {
    Duration::from_secs(1)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(60)
}
fn default_resource() -> String {
    "gw".to_owned()
}
fn default_identity_name() -> String {
    "Phone gateway".to_owned()
}

/// `[log]`: what the gateway logs.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// A `tracing` filter: a level (`error`, `warn`, `info`, `debug`, `trace`) or
    /// directives such as `info,gateway=debug`. Default `info`. The `RUST_LOG`
    /// environment variable, then `-v`/`-q` on the command line, take precedence.
    #[serde(default = "default_level")]
    pub level: String,
    /// Whether phone numbers (the number called, the caller's number, DIDs) are
    /// redacted in the call layer's log lines and call summaries: each prints as `pii:`
    /// and 8 hex digits of a keyed hash, the same for one number during one run of the
    /// gateway, so the lines of one call still correlate while the number stays out of
    /// the logs (STYLE.md R10; GDPR art. 5(1)(c), data minimisation). The key is drawn
    /// at start, so a hash cannot be looked up in a table of numbers, nor matched across
    /// restarts. Call ids, Jingle sids and SIP Call-IDs are not personal data and stay
    /// in clear. The SIP crate's own lines follow its `redact-pii` build feature. Bool;
    /// default `true`.
    #[serde(default = "default_true")]
    pub redact_numbers: bool,
}

impl Log {
    /// The `tracing` filter directives for a subscriber logging at `level` (`log.level`,
    /// or the level `-v`/`-q` chose): `level` itself, and with `redact_numbers` also
    /// `rsipstack=warn` unless `level` names `rsipstack`, because the SIP stack logs
    /// every SIP message it sends or receives (numbers and URIs included) at `info`.
    /// `level` is not changed by loading: a subscriber applies this when it is built.
    pub fn directives(&self, level: &str) -> String {
        if self.redact_numbers && !level.contains("rsipstack") {
            format!("{level},rsipstack=warn")
        } else {
            level.to_owned()
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Self {
            level: default_level(),
            redact_numbers: true,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_level() -> String {
    "info".to_owned()
}

/// `[calls]`: limits and timers that apply to every call.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calls {
    /// Most calls in progress at once; one more is refused (SIP 503 with
    /// `Retry-After: 30`, Jingle `<busy/>`). Count; default 100.
    #[serde(default = "default_max_calls")]
    pub max_calls: u32,
    /// Most calls in progress at once for one user (the caller of an outbound call, the
    /// called user of an inbound one); one more is refused like a full gateway (SIP 503,
    /// Jingle `<busy/>`), so one user, or one stolen account, cannot take every line of
    /// `max_calls` (issue 6, per-user and global limits); an inbound call gets SIP 503
    /// with `Retry-After: 30` (seconds, [RFC 3261 §20.33](https://www.rfc-editor.org/rfc/rfc3261#section-20.33)).
    /// `0` means no per-user limit.
    /// Count; default 4 (a few devices or a transfer in progress). Read it with
    /// [`Calls::max_per_user`].
    #[serde(default = "default_max_calls_per_user")]
    pub max_calls_per_user: u32,
    /// How long an inbound call may ring the user's devices before the gateway gives
    /// up: SIP 480 to the trunk and a JMI `<retract/>` with `<timeout/>` (INTEROP.md
    /// E.6). Also how long a proceeded JMI proposal waits for the caller's
    /// `session-initiate`. Duration; default 45 s.
    #[serde(default = "default_ring_timeout", with = "humantime_serde")]
    pub ring_timeout: Duration,
    /// How long an outbound call may wait for the trunk's answer after our INVITE
    /// (ringing or not) before the gateway gives up: SIP CANCEL to the trunk and a Jingle
    /// `session-terminate` with `<timeout/>` to the caller (INTEROP.md E.6, "no answer
    /// (gateway timer)"). It restarts with the INVITE to each trunk of a failover. A
    /// carrier often ends an unanswered call itself (408 or 480, after 60 to 180 s);
    /// this bounds the wait whatever the carrier does. Default 60 s: longer than the
    /// 20 to 30 s after which a phone's voicemail usually answers, so voicemail stays
    /// reachable. Duration.
    #[serde(default = "default_outbound_ring_timeout", with = "humantime_serde")]
    pub outbound_ring_timeout: Duration,
    /// On an inbound call to a user none of whose online resources advertises JMI
    /// (their caps are learnt from presence), send `session-initiate` straight to the
    /// most available resource that supports Jingle RTP audio, as cheogram-sip does
    /// (INTEROP.md E.3); `false` always rings with a JMI `<propose/>` to the bare JID.
    /// Default true.
    #[serde(default = "default_direct_initiate")]
    pub direct_initiate: bool,
    /// When the caller's Jingle session is accepted on an outbound call (INTEROP.md
    /// E.2, "Early media trade-off"): see [`EarlyMedia`]. Default `ringback`.
    #[serde(default)]
    pub early_media: EarlyMedia,
    /// On shutdown, how long to wait for calls to end (after sending SIP BYE and Jingle
    /// `session-terminate`) before exiting anyway. Duration; default 10 s.
    #[serde(default = "default_drain_timeout", with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl Calls {
    /// The per-user limit as [`crate::routing::CallSlots::new`] takes it: `None` when
    /// `max_calls_per_user` is 0 (no per-user limit), else `Some(max_calls_per_user)`.
    pub fn max_per_user(&self) -> Option<u32> {
        (self.max_calls_per_user != 0).then_some(self.max_calls_per_user)
    }

    /// The gateway's call counter, limited by `max_calls` and
    /// [`Calls::max_per_user`]: `CallSlots::new(max_calls, max_per_user())`. Build it
    /// once and share its clones.
    pub fn call_slots(&self) -> crate::routing::CallSlots {
        crate::routing::CallSlots::new(self.max_calls, self.max_per_user())
    }
}

impl Default for Calls {
    fn default() -> Self {
        Self {
            max_calls: default_max_calls(),
            max_calls_per_user: default_max_calls_per_user(),
            ring_timeout: default_ring_timeout(),
            outbound_ring_timeout: default_outbound_ring_timeout(),
            direct_initiate: default_direct_initiate(),
            early_media: EarlyMedia::default(),
            drain_timeout: default_drain_timeout(),
        }
    }
}

/// `calls.early_media`: what a trunk's early media (a 183 Session Progress with SDP,
/// [RFC 3960](https://www.rfc-editor.org/rfc/rfc3960)) does to an outbound call's
/// Jingle session (INTEROP.md E.2, "Early media trade-off").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EarlyMedia {
    /// `"ringback"` (the default, what JMP does): the Jingle session is accepted only
    /// at SIP 200; 180 and 183 give a session-info `<ringing/>` and the client plays
    /// its own ringback. Carrier announcements and ringback tones sent as early media
    /// are not heard; a failure after them still reaches the client as the mapped
    /// reason with a `<text>` naming the SIP status (`486 Busy Here`).
    #[default]
    Ringback,
    /// `"accept"`: the Jingle session is accepted at the first 183 with SDP, so ICE,
    /// DTLS and media start then and the caller hears the carrier's announcements
    /// ("the number you have dialled…") and ringback. The price: clients such as
    /// Conversations show the call as connected, with a running timer, while it
    /// still rings. A later 4xx/5xx/6xx ends the session with the mapped reason and
    /// a `<text>` with the SIP status (no failover to another trunk then); the 200
    /// continues the media already flowing.
    Accept,
}

fn default_max_calls() -> u32 {
    100
}
fn default_max_calls_per_user() -> u32 {
    4
}
fn default_direct_initiate() -> bool {
    true
}

fn default_ring_timeout() -> Duration {
    Duration::from_secs(45)
}
fn default_outbound_ring_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_drain_timeout() -> Duration {
    Duration::from_secs(10)
}
