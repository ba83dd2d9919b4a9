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
    /// we connect to the trunk and also listen on TCP at our UDP port. TLS is
    /// not implemented yet.
    Tcp,
}

impl Transport {
    /// The `transport=` URI parameter value and Via token.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
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

/// One SIP trunk (carrier or PBX).
#[derive(Debug, Clone)]
pub struct TrunkConfig {
    /// A name used in events and logs.
    pub name: String,
    /// The trunk's host name or IP address.
    pub host: String,
    /// The trunk's port. `None` (the default) leaves the port out of URIs, so
    /// the host is resolved by [RFC 3263](https://www.rfc-editor.org/rfc/rfc3263)
    /// (SRV `_sip._udp`/`_sip._tcp`, then A/AAAA, port 5060).
    pub port: Option<u16>,
    /// The transport; UDP by default.
    pub transport: Transport,
    /// The SIP domain put in From/To; defaults to `host` when empty.
    pub domain: String,
    /// Digest credentials for 401/407 challenges (and for REGISTER).
    pub credentials: Option<Credentials>,
    /// Register to the trunk (`REGISTER`, refreshed at half the granted expiry,
    /// [RFC 3261 §10.2.4](https://www.rfc-editor.org/rfc/rfc3261#section-10.2.4)).
    pub register: bool,
    /// The registration expiry we ask for; 300 s by default.
    pub register_expires: Duration,
    /// Networks from which inbound requests are accepted (IP authentication).
    /// The trunk's own resolved address is always accepted.
    pub allowed_sources: Vec<IpNet>,
    /// Codecs offered, in preference order; PCMU and PCMA by default
    /// (add G.722 and Opus where the trunk supports them).
    pub codecs: Vec<Codec>,
    /// Offer SDES-SRTP (`RTP/SAVP` with `a=crypto`); off by default.
    pub srtp: bool,
    /// How numbers are written in the Request-URI.
    pub number_format: NumberFormat,
    /// The largest number of 3xx redirections followed for one call; 3.
    pub max_redirects: u8,
    /// Send an out-of-dialog OPTIONS to the trunk this often and report it
    /// up or down ([`crate::Event::TrunkStatus`]); off (`None`) by default.
    pub options_ping: Option<Duration>,
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

/// The user agent's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen for SIP over UDP; `0.0.0.0:5060` by default
    /// (tests use `127.0.0.1:0`).
    pub bind: SocketAddr,
    /// The public IP put in Contact (and for the gateway, in SDP `c=`/`o=`);
    /// the bound address when `None`.
    pub public_ip: Option<IpAddr>,
    /// The `User-Agent` header value.
    pub user_agent: String,
    /// The user part of our Contact URI; `gw` by default.
    pub contact_user: String,
    /// Delay before the automatic 180 Ringing on an inbound INVITE; 0 by
    /// default (carriers such as Telnyx drop a call without 180/183 in 5 s).
    pub ringing_delay: Duration,
    /// Retransmit interval T1 (RTT estimate); 500 ms by default, [RFC 3261
    /// §17.1.1.1](https://www.rfc-editor.org/rfc/rfc3261#section-17.1.1.1).
    /// Timers B and F (transaction timeouts) are 64×T1 = 32 s.
    pub t1: Duration,
    /// Requests accepted per second from one source IP (a token bucket with a
    /// burst of the same size); above it requests get 503 with `Retry-After`.
    /// 50 by default; 0 turns the limit off.
    pub rate_limit: u32,
    /// The trunks.
    pub trunks: Vec<TrunkConfig>,
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
