//! Configuration of the user agent and its trunks: plain data with defaults.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::digest::Credentials;
use crate::sdp::Codec;

/// The SIP transport toward a trunk ([RFC 3261 §18](https://www.rfc-editor.org/rfc/rfc3261#section-18)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Transport {
    /// UDP, the default.
    #[default]
    Udp,
    /// TCP ([RFC 3261 §18](https://www.rfc-editor.org/rfc/rfc3261#section-18)):
    /// we connect to the trunk and also listen on TCP at our UDP port.
    Tcp,
    /// TLS over TCP with rustls ([RFC 3261 §26.2](https://www.rfc-editor.org/rfc/rfc3261#section-26.2),
    /// [RFC 5922](https://www.rfc-editor.org/rfc/rfc5922)): we connect to the
    /// trunk (port 5061 by default), send SNI = the trunk's host and verify
    /// its certificate against [`Config::tls_roots`] and that host name (or
    /// IP address). URIs carry `;transport=tls` with the `sip:` scheme, as
    /// carriers expect. We do not listen for TLS: requests from the trunk
    /// (inbound calls to a registered contact, in-dialog requests) come over
    /// the connection we opened, which our Via offers for reuse with
    /// `alias` ([RFC 5923 §5](https://www.rfc-editor.org/rfc/rfc5923#section-5)).
    Tls,
}

impl Transport {
    /// The `transport=` URI parameter value and Via token.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }

    /// The default port: 5061 for TLS, else 5060
    /// ([RFC 3261 §19.1.2](https://www.rfc-editor.org/rfc/rfc3261#section-19.1.2)).
    pub fn default_port(self) -> u16 {
        match self {
            Self::Tls => 5061,
            Self::Udp | Self::Tcp => 5060,
        }
    }
}

/// An IP network such as `192.0.2.0/24`, for IP-authenticated trunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    /// The network address.
    pub addr: IpAddr,
    /// The prefix length in bits (0–32 for IPv4, 0–128 for IPv6).
    pub prefix: u8,
}

impl IpNet {
    /// Parses `ADDR/PREFIX` or a bare address (a host network).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Malformed`] for anything else.
    pub fn parse(s: &str) -> Result<Self, crate::Error> {
        let bad = || crate::Error::malformed("network", s.to_string());
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }

    /// True when `ip` lies in this network (IPv4-mapped IPv6 addresses count
    /// as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// How numbers are written in the Request-URI toward a trunk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NumberFormat {
    /// E.164 with a leading `+` (Twilio requires it). The default.
    #[default]
    E164,
    /// E.164 digits without `+` (e.g. NANP `1NXXNXXXXXX`).
    E164NoPlus,
    /// A tech prefix put before the E.164 number (Flowroute `12345678*+1…`).
    TechPrefix(String),
}

impl NumberFormat {
    /// Rewrites an E.164 number (`+15551234567`) for the trunk.
    pub fn rewrite(&self, e164: &str) -> String {
        let digits = e164.trim_start_matches('+');
        match self {
            Self::E164 => format!("+{digits}"),
            Self::E164NoPlus => digits.to_string(),
            Self::TechPrefix(p) => format!("{p}+{digits}"),
        }
    }
}

/// One SIP trunk (carrier or PBX): build it with [`TrunkConfig::new`] and
/// the `&mut Self` setters, then add it with [`Config::trunk`].
#[derive(Debug, Clone)]
pub struct TrunkConfig {
    /// A name used in events and logs.
    pub(crate) name: String,
    /// The trunk's host name or IP address.
    pub(crate) host: String,
    /// The trunk's port. `None` (the default) leaves the port out of URIs, so
    /// the host is resolved by [RFC 3263](https://www.rfc-editor.org/rfc/rfc3263)
    /// (SRV `_sip._udp`/`_sip._tcp`/`_sips._tcp`, then A/AAAA, port 5060, or
    /// 5061 for TLS).
    pub(crate) port: Option<u16>,
    /// The transport; UDP by default.
    pub(crate) transport: Transport,
    /// The SIP domain put in From/To; defaults to `host` when empty.
    pub(crate) domain: String,
    /// Digest credentials for 401/407 challenges (and for REGISTER).
    pub(crate) credentials: Option<Credentials>,
    /// Register to the trunk (`REGISTER`, refreshed at half the granted expiry,
    /// [RFC 3261 §10.2.4](https://www.rfc-editor.org/rfc/rfc3261#section-10.2.4)).
    pub(crate) register: bool,
    /// The registration expiry we ask for; 300 s by default.
    pub(crate) register_expires: Duration,
    /// Networks from which inbound requests are accepted (IP authentication).
    /// The trunk's own resolved address is always accepted.
    pub(crate) allowed_sources: Vec<IpNet>,
    /// Codecs offered, in preference order; PCMU and PCMA by default
    /// (add G.722 and Opus where the trunk supports them).
    pub(crate) codecs: Vec<Codec>,
    /// Offer SDES-SRTP (`RTP/SAVP` with `a=crypto`); off by default.
    pub(crate) srtp: bool,
    /// How numbers are written in the Request-URI.
    pub(crate) number_format: NumberFormat,
    /// The largest number of 3xx redirections followed for one call; 3.
    pub(crate) max_redirects: u8,
    /// Send an out-of-dialog OPTIONS to the trunk this often and report it
    /// up or down ([`crate::Event::TrunkStatus`]); off (`None`) by default.
    pub(crate) options_ping: Option<Duration>,
}

impl TrunkConfig {
    /// A trunk named `name` (used in events and logs, and to select it in
    /// [`crate::UserAgent::call`]) toward `host`, with the defaults of
    /// [`TrunkConfig::default`] otherwise.
    pub fn new(name: impl Into<String>, host: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            host: host.into(),
            ..Self::default()
        }
    }

    /// The trunk's name, as given to [`TrunkConfig::new`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The trunk's host name or IP address.
    pub fn host(&mut self, value: impl Into<String>) -> &mut Self {
        self.host = value.into();
        self
    }

    /// The trunk's port. `None` (the default) leaves the port out of URIs, so
    /// the host is resolved by [RFC 3263](https://www.rfc-editor.org/rfc/rfc3263)
    /// (SRV `_sip._udp`/`_sip._tcp`/`_sips._tcp`, then A/AAAA, port 5060, or
    /// 5061 for TLS).
    pub fn port(&mut self, value: Option<u16>) -> &mut Self {
        self.port = value;
        self
    }

    /// The transport; UDP by default.
    pub fn transport(&mut self, value: Transport) -> &mut Self {
        self.transport = value;
        self
    }

    /// The SIP domain put in From/To; defaults to `host` when empty.
    pub fn domain(&mut self, value: impl Into<String>) -> &mut Self {
        self.domain = value.into();
        self
    }

    /// Digest credentials for 401/407 challenges (and for REGISTER).
    pub fn credentials(&mut self, value: Option<Credentials>) -> &mut Self {
        self.credentials = value;
        self
    }

    /// Register to the trunk (`REGISTER`, refreshed at half the granted expiry,
    /// [RFC 3261 §10.2.4](https://www.rfc-editor.org/rfc/rfc3261#section-10.2.4)).
    pub fn register(&mut self, value: bool) -> &mut Self {
        self.register = value;
        self
    }

    /// The registration expiry we ask for; 300 s by default.
    pub fn register_expires(&mut self, value: Duration) -> &mut Self {
        self.register_expires = value;
        self
    }

    /// Networks from which inbound requests are accepted (IP authentication).
    /// The trunk's own resolved address is always accepted.
    pub fn allowed_sources(&mut self, value: Vec<IpNet>) -> &mut Self {
        self.allowed_sources = value;
        self
    }

    /// Codecs offered, in preference order; PCMU and PCMA by default
    /// (add G.722 and Opus where the trunk supports them).
    pub fn codecs(&mut self, value: Vec<Codec>) -> &mut Self {
        self.codecs = value;
        self
    }

    /// Offer SDES-SRTP (`RTP/SAVP` with `a=crypto`); off by default.
    pub fn srtp(&mut self, value: bool) -> &mut Self {
        self.srtp = value;
        self
    }

    /// How numbers are written in the Request-URI.
    pub fn number_format(&mut self, value: NumberFormat) -> &mut Self {
        self.number_format = value;
        self
    }

    /// The largest number of 3xx redirections followed for one call; 3.
    pub fn max_redirects(&mut self, value: u8) -> &mut Self {
        self.max_redirects = value;
        self
    }

    /// Send an out-of-dialog OPTIONS to the trunk this often and report it
    /// up or down ([`crate::Event::TrunkStatus`]); off (`None`) by default.
    pub fn options_ping(&mut self, value: Option<Duration>) -> &mut Self {
        self.options_ping = value;
        self
    }
}

impl Default for TrunkConfig {
    fn default() -> Self {
        Self {
            name: "trunk".into(),
            host: "127.0.0.1".into(),
            port: None,
            transport: Transport::Udp,
            domain: String::new(),
            credentials: None,
            register: false,
            register_expires: Duration::from_secs(300),
            allowed_sources: Vec::new(),
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            srtp: false,
            number_format: NumberFormat::E164,
            max_redirects: 3,
            options_ping: None,
        }
    }
}

/// The user agent's configuration: [`Config::default`] then the `&mut Self`
/// setters (quinn `TransportConfig` style).
///
/// ```
/// use std::time::Duration;
/// let mut config = sip::Config::default();
/// config.bind("127.0.0.1:0".parse().unwrap()).rate_limit(20).trunk(
///     sip::TrunkConfig::new("carrier", "sip.example.net")
///         .transport(sip::Transport::Tls)
///         .register(true)
///         .register_expires(Duration::from_secs(600))
///         .clone(),
/// );
/// assert_eq!(config.trunks()[0].name(), "carrier");
/// ```

#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen for SIP over UDP; `0.0.0.0:5060` by default
    /// (tests use `127.0.0.1:0`).
    pub(crate) bind: SocketAddr,
    /// The public IP put in Contact (and for the gateway, in SDP `c=`/`o=`);
    /// the bound address when `None`.
    pub(crate) public_ip: Option<IpAddr>,
    /// The `User-Agent` header value.
    pub(crate) user_agent: String,
    /// The user part of our Contact URI; `gw` by default.
    pub(crate) contact_user: String,
    /// Delay before the automatic 180 Ringing on an inbound INVITE; 0 by
    /// default (carriers such as Telnyx drop a call without 180/183 in 5 s).
    pub(crate) ringing_delay: Duration,
    /// Retransmit interval T1 (RTT estimate); 500 ms by default, [RFC 3261
    /// §17.1.1.1](https://www.rfc-editor.org/rfc/rfc3261#section-17.1.1.1).
    /// Timers B and F (transaction timeouts) are 64×T1 = 32 s.
    pub(crate) t1: Duration,
    /// Requests accepted per second from one source IP (a token bucket with a
    /// burst of the same size); above it requests get 503 with `Retry-After`.
    /// 50 by default; 0 turns the limit off.
    pub(crate) rate_limit: u32,
    /// A PEM file of the root certificates trusted for TLS trunks; `None`
    /// (the default) uses the system bundle
    /// `/etc/ssl/certs/ca-certificates.crt`. Read once by
    /// [`crate::UserAgent::start`], only when a trunk uses TLS.
    pub(crate) tls_roots: Option<std::path::PathBuf>,
    /// The trunks.
    pub(crate) trunks: Vec<TrunkConfig>,
}

impl Config {
    /// Where to listen for SIP over UDP; `0.0.0.0:5060` by default
    /// (tests use `127.0.0.1:0`).
    pub fn bind(&mut self, value: SocketAddr) -> &mut Self {
        self.bind = value;
        self
    }

    /// The public IP put in Contact (and for the gateway, in SDP `c=`/`o=`);
    /// the bound address when `None`.
    pub fn public_ip(&mut self, value: Option<IpAddr>) -> &mut Self {
        self.public_ip = value;
        self
    }

    /// The `User-Agent` header value.
    pub fn user_agent(&mut self, value: impl Into<String>) -> &mut Self {
        self.user_agent = value.into();
        self
    }

    /// The user part of our Contact URI; `gw` by default.
    pub fn contact_user(&mut self, value: impl Into<String>) -> &mut Self {
        self.contact_user = value.into();
        self
    }

    /// Delay before the automatic 180 Ringing on an inbound INVITE; 0 by
    /// default (carriers such as Telnyx drop a call without 180/183 in 5 s).
    pub fn ringing_delay(&mut self, value: Duration) -> &mut Self {
        self.ringing_delay = value;
        self
    }

    /// Retransmit interval T1 (RTT estimate); 500 ms by default, [RFC 3261
    /// §17.1.1.1](https://www.rfc-editor.org/rfc/rfc3261#section-17.1.1.1).
    /// Timers B and F (transaction timeouts) are 64×T1 = 32 s.
    pub fn t1(&mut self, value: Duration) -> &mut Self {
        self.t1 = value;
        self
    }

    /// Requests accepted per second from one source IP (a token bucket with a
    /// burst of the same size); above it requests get 503 with `Retry-After`.
    /// 50 by default; 0 turns the limit off.
    pub fn rate_limit(&mut self, value: u32) -> &mut Self {
        self.rate_limit = value;
        self
    }

    /// A PEM file of the root certificates trusted for TLS trunks; `None`
    /// (the default) uses the system bundle
    /// `/etc/ssl/certs/ca-certificates.crt`. Read once by
    /// [`crate::UserAgent::start`], only when a trunk uses TLS.
    pub fn tls_roots(&mut self, value: Option<std::path::PathBuf>) -> &mut Self {
        self.tls_roots = value;
        self
    }

    /// Adds a trunk (trunks are matched by name; the first with a name wins).
    pub fn trunk(&mut self, trunk: TrunkConfig) -> &mut Self {
        self.trunks.push(trunk);
        self
    }

    /// The trunk named `name`, to change it in place.
    pub fn trunk_mut(&mut self, name: &str) -> Option<&mut TrunkConfig> {
        self.trunks.iter_mut().find(|t| t.name == name)
    }

    /// The trunks, in the order added.
    pub fn trunks(&self) -> &[TrunkConfig] {
        &self.trunks
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([0, 0, 0, 0], 5060)),
            public_ip: None,
            user_agent: concat!("jingle-sip-gateway/", env!("CARGO_PKG_VERSION")).into(),
            contact_user: "gw".into(),
            ringing_delay: Duration::ZERO,
            t1: Duration::from_millis(500),
            rate_limit: 50,
            tls_roots: None,
            trunks: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipnet_contains() {
        let n = IpNet::parse("192.0.2.0/24").unwrap();
        assert!(n.contains("192.0.2.77".parse().unwrap()));
        assert!(!n.contains("192.0.3.1".parse().unwrap()));
        assert!(n.contains("::ffff:192.0.2.1".parse().unwrap()));
        let all = IpNet::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let host = IpNet::parse("::1").unwrap();
        assert!(host.contains("::1".parse().unwrap()));
        assert!(!host.contains("::2".parse().unwrap()));
        assert!(IpNet::parse("1.2.3.4/33").is_err());
        assert!(IpNet::parse("nope").is_err());
    }

    #[test]
    fn number_rewrite() {
        assert_eq!(NumberFormat::E164.rewrite("15551234567"), "+15551234567");
        assert_eq!(
            NumberFormat::E164NoPlus.rewrite("+15551234567"),
            "15551234567"
        );
        assert_eq!(
            NumberFormat::TechPrefix("12345678*".into()).rewrite("+1206"),
            "12345678*+1206"
        );
    }
}
