//! The `[sip]` section and its `[[sip.trunks]]`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde::Deserialize;

use super::types::{Network, Secret};

/// `[sip]`: the gateway's SIP user agent and the trunks it uses.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sip {
    /// Local address the SIP listeners bind to. Default `0.0.0.0` (every IPv4
    /// address); `::` for every address.
    #[serde(default = "default_bind_address")]
    pub bind_address: IpAddr,
    /// Local port for SIP over UDP and TCP. Default 5060
    /// ([RFC 3261 §19.1.2](https://www.rfc-editor.org/rfc/rfc3261#section-19.1.2)).
    #[serde(default = "default_sip_port")]
    pub port: u16,
    /// Local port for SIP over TLS. Default 5061
    /// ([RFC 3261 §26.2](https://www.rfc-editor.org/rfc/rfc3261#section-26.2)).
    #[serde(default = "default_sips_port")]
    pub tls_port: u16,
    /// Address written into `Contact` and `Via` when the gateway is behind NAT
    /// (INTEROP.md 4.2 item 7). Default: none (the address the trunk reports in
    /// `received`/`rport`, [RFC 3581](https://www.rfc-editor.org/rfc/rfc3581)).
    #[serde(default)]
    pub public_address: Option<IpAddr>,
    /// The `User-Agent` header value. Default `jingle-sip-gateway`.
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// The SIP trunks (`[[sip.trunks]]`), referred to by name from `[[routing.routes]]`.
    /// Default: none (no call can go out or come in).
    #[serde(default)]
    pub trunks: Vec<Trunk>,
}

impl Default for Sip {
    fn default() -> Self {
        Self {
            bind_address: default_bind_address(),
            port: default_sip_port(),
            tls_port: default_sips_port(),
            public_address: None,
            user_agent: default_user_agent(),
            trunks: Vec::new(),
        }
    }
}

fn default_bind_address() -> IpAddr {
    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
}
fn default_sip_port() -> u16 {
    5060
}
fn default_sips_port() -> u16 {
    5061
}
fn default_user_agent() -> String {
    "jingle-sip-gateway".to_owned()
}

/// One `[[sip.trunks]]` entry: a carrier, PBX or SIP proxy.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trunk {
    /// Unique name, used by `[[routing.routes]]` and in logs. Required.
    #[serde(default)]
    pub name: String,
    /// Host name or IP address of the trunk's SIP server. Required.
    #[serde(default)]
    pub host: String,
    /// Port of the trunk's SIP server. Default: 5060 for `udp` and `tcp`, 5061 for `tls`
    /// (see [`Trunk::port`]).
    #[serde(default)]
    pub port: Option<u16>,
    /// Transport: `udp`, `tcp` or `tls`. Default `udp`.
    #[serde(default)]
    pub transport: Transport,
    /// How the trunk authenticates us: `registration` (REGISTER with digest credentials,
    /// [RFC 3261 §10](https://www.rfc-editor.org/rfc/rfc3261#section-10)) or `ip`
    /// (the carrier trusts our source address). Default `ip`.
    #[serde(default)]
    pub auth: TrunkAuth,
    /// Digest user name, for `auth = "registration"` and for answering 401/407
    /// challenges ([RFC 3261 §22](https://www.rfc-editor.org/rfc/rfc3261#section-22)).
    /// Default: none.
    #[serde(default)]
    pub username: Option<String>,
    /// Digest password; never logged. Best set through the environment, e.g.
    /// `JSG__SIP__TRUNKS__0__PASSWORD` for the first trunk. Default: none.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Registration lifetime requested in `Expires`. Duration; default 3600 s, the
    /// value [RFC 3261 §10.2.1](https://www.rfc-editor.org/rfc/rfc3261#section-10.2.1)
    /// suggests.
    #[serde(default = "default_register_expires", with = "humantime_serde")]
    pub register_expires: Duration,
    /// Networks (CIDR, or single addresses) from which requests of this trunk are
    /// accepted. Default: none, meaning the addresses `host` resolves to.
    #[serde(default)]
    pub allowed_sources: Vec<Network>,
    /// How numbers are written in the Request-URI and `From`/`To` user parts:
    /// `e164` (`+15551234567`) or `e164-no-plus` (`15551234567`). Default `e164`
    /// (INTEROP.md 4.1: Twilio requires the `+`).
    #[serde(default)]
    pub number_format: NumberFormat,
    /// Text put before the number in the Request-URI user part, e.g. a technical prefix
    /// `12345678*` that IP-authenticated carriers use to identify the account. Default: empty.
    #[serde(default)]
    pub dial_prefix: String,
}

impl Trunk {
    /// The trunk's port: `port` if set, else 5061 for TLS and 5060 otherwise.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.transport {
            Transport::Tls => default_sips_port(),
            Transport::Udp | Transport::Tcp => default_sip_port(),
        })
    }
}

fn default_register_expires() -> Duration {
    Duration::from_secs(3600)
}

/// A SIP transport ([RFC 3261 §18](https://www.rfc-editor.org/rfc/rfc3261#section-18)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Transport {
    /// SIP over UDP (the default).
    #[default]
    Udp,
    /// SIP over TCP.
    Tcp,
    /// SIP over TLS (`sips:`), [RFC 3261 §26.2](https://www.rfc-editor.org/rfc/rfc3261#section-26.2).
    Tls,
}

/// How a trunk authenticates the gateway (INTEROP.md 4.2 item 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TrunkAuth {
    /// The trunk trusts our source IP address; the gateway never sends REGISTER (the
    /// default).
    #[default]
    Ip,
    /// The gateway registers with `username` and `password` and keeps the binding alive.
    Registration,
}

/// How a trunk writes telephone numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum NumberFormat {
    /// `+15551234567` (the default).
    #[default]
    E164,
    /// `15551234567`.
    E164NoPlus,
}
