//! The `[media]` section.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::Deserialize;

/// `[media]`: the UDP sockets that carry RTP on both legs of a call.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Media {
    /// Local addresses the media sockets bind to; each one gives an ICE host candidate
    /// on the Jingle leg. Default `["0.0.0.0"]`.
    #[serde(default = "default_bind_addresses")]
    pub bind_addresses: Vec<IpAddr>,
    /// Lowest UDP port for media sockets (one per call and leg). Default 10000.
    #[serde(default = "default_port_min")]
    pub port_min: u16,
    /// Highest UDP port for media sockets, inclusive. Default 20000.
    #[serde(default = "default_port_max")]
    pub port_max: u16,
    /// Public IPv4 address to announce (an ICE host candidate and the SDP `c=` line)
    /// when the gateway sits behind 1:1 NAT. Default: none (announce the bound
    /// addresses).
    #[serde(default)]
    pub public_ipv4: Option<Ipv4Addr>,
    /// Public IPv6 address to announce. Default: none.
    #[serde(default)]
    pub public_ipv6: Option<Ipv6Addr>,
    /// Whether a Jingle session without DTLS-SRTP
    /// ([XEP-0320](https://xmpp.org/extensions/xep-0320.html)) is accepted, i.e. clear RTP
    /// to the XMPP client. Default `false`: such a session is refused with
    /// `<security-error/>`.
    #[serde(default)]
    pub allow_unencrypted_client_media: bool,
    /// Whether a call runs G.711 (PCMU/PCMA) end to end, without transcoding, when the
    /// client offers the trunk's G.711 codec (INTEROP.md "Gateway-wide": G.711 end to
    /// end avoids transcoding, its CPU cost and its added delay; Opus stays the
    /// fallback). `false` prefers Opus on the client leg whenever the client offers it,
    /// transcoding to the trunk's G.711 (better audio on lossy mobile links, at a CPU
    /// cost per call). Default `true`. Feeds
    /// [`CodecPolicy::prefer_g711_passthrough`](crate::bridge::CodecPolicy::prefer_g711_passthrough)
    /// through [`Media::codec_policy`].
    #[serde(default = "default_true")]
    pub prefer_g711_passthrough: bool,
    /// A call whose media stops for this long on either leg is ended. Duration;
    /// default 30 s, the consent expiry of
    /// [RFC 7675 §5.1](https://www.rfc-editor.org/rfc/rfc7675#section-5.1).
    #[serde(default = "default_no_media_timeout", with = "humantime_serde")]
    pub no_media_timeout: Duration,
    /// Upper bound of the adaptive reorder/jitter buffer on the transcoding path (a
    /// passthrough call has none): a packet behind a gap waits at most this long for the
    /// missing one before the gap is concealed (Opus FEC/PLC). Duration; default 60 ms;
    /// 20 ms ≤ value ≤ 200 ms. Larger rides out worse mobile jitter at the price of
    /// mouth-to-ear delay after a reordering.
    #[serde(default = "default_jitter_buffer_max", with = "humantime_serde")]
    pub jitter_buffer_max: Duration,
    /// Lower bound of the same buffer's target delay, to which it shrinks on a clean path.
    /// Duration; default 20 ms (one packet); at most `jitter_buffer_max`.
    #[serde(default = "default_jitter_buffer_min", with = "humantime_serde")]
    pub jitter_buffer_min: Duration,
}

impl Media {
    /// The codec and security policy of the bridge: `prefer_g711_passthrough` and
    /// `allow_unencrypted_client_media` as a [`crate::bridge::CodecPolicy`].
    pub fn codec_policy(&self) -> crate::bridge::CodecPolicy {
        crate::bridge::CodecPolicy {
            prefer_g711_passthrough: self.prefer_g711_passthrough,
            allow_unencrypted: self.allow_unencrypted_client_media,
        }
    }
}

impl Default for Media {
    fn default() -> Self {
        Self {
            bind_addresses: default_bind_addresses(),
            port_min: default_port_min(),
            port_max: default_port_max(),
            public_ipv4: None,
            public_ipv6: None,
            allow_unencrypted_client_media: false,
            prefer_g711_passthrough: true,
            no_media_timeout: default_no_media_timeout(),
            jitter_buffer_max: default_jitter_buffer_max(),
            jitter_buffer_min: default_jitter_buffer_min(),
        }
    }
}

fn default_bind_addresses() -> Vec<IpAddr> {
    vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)]
}
fn default_true() -> bool {
    true
}
fn default_port_min() -> u16 {
    10000
}
fn default_port_max() -> u16 {
    20000
}
fn default_no_media_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_jitter_buffer_max() -> Duration {
    Duration::from_millis(60)
}
fn default_jitter_buffer_min() -> Duration {
    Duration::from_millis(20)
}
