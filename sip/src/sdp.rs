//! SDP offer/answer for the trunk leg, as pure code.
//!
//! [`LocalMedia::offer`] and [`LocalMedia::answer`] write our session
//! description ([RFC 4566](https://www.rfc-editor.org/rfc/rfc4566),
//! [RFC 3264](https://www.rfc-editor.org/rfc/rfc3264)): one audio stream with
//! PCMU, PCMA, optionally G.722 and Opus, `telephone-event/8000` with `0-16`
//! ([RFC 4733](https://www.rfc-editor.org/rfc/rfc4733)), `ptime:20`, and an
//! optional SDES key for `RTP/SAVP` ([RFC 4568](https://www.rfc-editor.org/rfc/rfc4568)).
//! [`RemoteMedia::parse`] reads the trunk's description: address, port,
//! payload types, the telephone-event payload type, the direction (hold) and
//! any `a=crypto` lines. The parser never panics on any input.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::Error;

/// An audio codec we can put on the trunk leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// G.711 µ-law, static payload type 0, 8 kHz.
    Pcmu,
    /// G.711 A-law, static payload type 8, 8 kHz.
    Pcma,
    /// G.722, static payload type 9; its RTP clock is 8000 although it samples
    /// at 16 kHz ([RFC 3551 §4.5.2](https://www.rfc-editor.org/rfc/rfc3551#section-4.5.2)).
    G722,
    /// Opus, dynamic payload type (111 in our offers), `opus/48000/2`
    /// ([RFC 7587](https://www.rfc-editor.org/rfc/rfc7587)).
    Opus,
}

impl Codec {
    /// The payload type we use in offers.
    pub fn default_payload_type(self) -> u8 {
        match self {
            Self::Pcmu => 0,
            Self::Pcma => 8,
            Self::G722 => 9,
            Self::Opus => 111,
        }
    }

    /// The `a=rtpmap` encoding, e.g. `PCMU/8000`.
    pub fn rtpmap(self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU/8000",
            Self::Pcma => "PCMA/8000",
            Self::G722 => "G722/8000",
            Self::Opus => "opus/48000/2",
        }
    }

    /// The RTP clock rate in Hz.
    pub fn clock_rate(self) -> u32 {
        match self {
            Self::Opus => 48000,
            _ => 8000,
        }
    }

    fn from_encoding(name: &str, clock: u32) -> Option<Self> {
        match (name.to_ascii_uppercase().as_str(), clock) {
            ("PCMU", 8000) => Some(Self::Pcmu),
            ("PCMA", 8000) => Some(Self::Pcma),
            ("G722", 8000) => Some(Self::G722),
            ("OPUS", 48000) => Some(Self::Opus),
            _ => None,
        }
    }

    fn from_static(pt: u8) -> Option<Self> {
        match pt {
            0 => Some(Self::Pcmu),
            8 => Some(Self::Pcma),
            9 => Some(Self::G722),
            _ => None,
        }
    }
}

/// Media direction ([RFC 3264 §5.1](https://www.rfc-editor.org/rfc/rfc3264#section-5.1));
/// `sendonly` or `inactive` from the peer means it holds the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// `a=sendrecv`, the default.
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// The direction an answerer takes for an offer with this one
    /// ([RFC 3264 §6.1](https://www.rfc-editor.org/rfc/rfc3264#section-6.1)).
    pub fn answer_to(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            d => d,
        }
    }
}

/// An SDES key ([RFC 4568](https://www.rfc-editor.org/rfc/rfc4568)), suite
/// `AES_CM_128_HMAC_SHA1_80`: 16 bytes of key then 14 of salt.
#[derive(Clone, PartialEq, Eq)]
pub struct SdesKey {
    /// The crypto tag (`a=crypto:TAG …`), 1 in our offers.
    pub tag: u32,
    /// The suite name, `AES_CM_128_HMAC_SHA1_80` or `AES_CM_128_HMAC_SHA1_32`.
    pub suite: String,
    /// The 30 bytes of master key and salt.
    pub key_salt: Vec<u8>,
}

impl std::fmt::Debug for SdesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdesKey")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .field("key_salt", &"<redacted>")
            .finish()
    }
}

/// Our side of the media: where we receive RTP and what we offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// The address put in `c=` and `o=`: the configured public IP.
    pub address: IpAddr,
    /// Our RTP port.
    pub port: u16,
    /// Codecs in preference order; must not be empty.
    pub codecs: Vec<Codec>,
    /// The payload type of `telephone-event/8000`; 101 by default.
    pub telephone_event_pt: u8,
    /// Our direction (hold is `SendOnly`).
    pub direction: Direction,
    /// An SDES key: the stream is then `RTP/SAVP` with `a=crypto`.
    pub srtp: Option<SdesKey>,
    /// `o=` session id, fixed for the call.
    pub session_id: u64,
    /// `o=` session version; raise it on every new offer or answer that changes.
    pub session_version: u64,
}

impl LocalMedia {
    /// Media at `address:port` offering PCMU and PCMA, telephone-event on 101,
    /// no SRTP, sendrecv.
    pub fn new(address: IpAddr, port: u16, session_id: u64) -> Self {
        Self {
            address,
            port,
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            telephone_event_pt: 101,
            direction: Direction::SendRecv,
            srtp: None,
            session_id,
            session_version: 1,
        }
    }

    /// Writes our offer with every configured codec.
    pub fn offer(&self) -> String {
        let pts: Vec<(Codec, u8)> = self
            .codecs
            .iter()
            .map(|c| (*c, c.default_payload_type()))
            .collect();
        self.write(&pts, Some(self.telephone_event_pt), self.direction)
    }

    /// Answers `remote`'s offer ([RFC 3264 §6](https://www.rfc-editor.org/rfc/rfc3264#section-6)):
    /// keeps the offer's payload type numbers, lists the one codec chosen by
    /// [`RemoteMedia::choose`], adds telephone-event when offered, and mirrors
    /// the direction (`sendonly` → `recvonly`, `inactive` → `inactive`).
    ///
    /// # Errors
    ///
    /// [`Error::PeerIncompatible`] when there is no common codec (→ 488).
    pub fn answer(&self, remote: &RemoteMedia) -> Result<(String, Negotiated), Error> {
        let (codec, pt) = remote
            .choose(&self.codecs)
            .ok_or_else(|| Error::PeerIncompatible("no common audio codec".into()))?;
        let direction = match (remote.direction.answer_to(), self.direction) {
            (Direction::SendRecv, d) => d,
            (d, _) => d,
        };
        let sdp = self.write(&[(codec, pt)], remote.telephone_event_pt, direction);
        Ok((
            sdp,
            Negotiated {
                codec,
                payload_type: pt,
                telephone_event_pt: remote.telephone_event_pt,
            },
        ))
    }

    fn write(&self, pts: &[(Codec, u8)], te: Option<u8>, direction: Direction) -> String {
        let ip_kind = if self.address.is_ipv4() { "IP4" } else { "IP6" };
        let proto = if self.srtp.is_some() {
            "RTP/SAVP"
        } else {
            "RTP/AVP"
        };
        let mut s = String::with_capacity(512);
        let _ = write!(
            s,
            "v=0\r\no=- {} {} IN {ip_kind} {}\r\ns=-\r\nc=IN {ip_kind} {}\r\nt=0 0\r\nm=audio {} {proto}",
            self.session_id, self.session_version, self.address, self.address, self.port
        );
        for (_, pt) in pts {
            let _ = write!(s, " {pt}");
        }
        if let Some(te) = te {
            let _ = write!(s, " {te}");
        }
        s.push_str("\r\n");
        for (codec, pt) in pts {
            let _ = write!(s, "a=rtpmap:{pt} {}\r\n", codec.rtpmap());
            if *codec == Codec::Opus {
                let _ = write!(s, "a=fmtp:{pt} useinbandfec=1\r\n");
            }
        }
        if let Some(te) = te {
            let _ = write!(
                s,
                "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n"
            );
        }
        s.push_str("a=ptime:20\r\n");
        if let Some(key) = &self.srtp {
            use base64::Engine as _;
            let _ = write!(
                s,
                "a=crypto:{} {} inline:{}\r\n",
                key.tag,
                key.suite,
                base64::engine::general_purpose::STANDARD.encode(&key.key_salt)
            );
        }
        let _ = write!(s, "a={}\r\n", direction.as_str());
        s
    }
}

/// The outcome of an offer/answer exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec both sides use.
    pub codec: Codec,
    /// Its payload type (the offerer's number).
    pub payload_type: u8,
    /// The telephone-event payload type, when both sides have it.
    pub telephone_event_pt: Option<u8>,
}

/// One payload type listed by the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadType {
    /// The number from the `m=` line.
    pub pt: u8,
    /// The encoding name from `a=rtpmap` (or the static assignment), e.g. `PCMU`.
    pub encoding: String,
    /// The clock rate in Hz.
    pub clock_rate: u32,
    /// `a=fmtp` parameters, verbatim.
    pub fmtp: Option<String>,
}

/// What the trunk told us about its audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    /// Where to send RTP (media-level `c=`, else session-level).
    pub address: IpAddr,
    /// Its RTP port; 0 means the stream is rejected.
    pub port: u16,
    /// `RTP/AVP`, `RTP/SAVP`, …
    pub protocol: String,
    /// Payload types in the peer's preference order.
    pub payload_types: Vec<PayloadType>,
    /// The `telephone-event/8000` payload type, if any.
    pub telephone_event_pt: Option<u8>,
    /// The stream's direction (media-level attribute, else session-level);
    /// `c=0.0.0.0` counts as `inactive` ([RFC 3264 §8.4](https://www.rfc-editor.org/rfc/rfc3264#section-8.4)).
    pub direction: Direction,
    /// `a=ptime` in milliseconds, if given.
    pub ptime: Option<u32>,
    /// SDES keys offered.
    pub crypto: Vec<SdesKey>,
    /// `o=` session id and version, to tell a changed description from a repeat.
    pub origin: (u64, u64),
}

fn bad(detail: impl Into<String>) -> Error {
    Error::malformed("sdp", detail)
}

impl RemoteMedia {
    /// Parses an SDP body and returns its first audio stream.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] for a body without `v=0`, an audio `m=` line, or
    /// a connection address; [`Error::PeerIncompatible`] for a body that has no
    /// audio stream.
    pub fn parse(body: &str) -> Result<Self, Error> {
        let mut lines = body.lines().map(|l| l.trim_end_matches('\r'));
        if lines.next().map(str::trim) != Some("v=0") {
            return Err(bad("no v=0"));
        }
        let mut session_addr: Option<IpAddr> = None;
        let mut session_dir: Option<Direction> = None;
        let mut origin = (0, 0);
        let mut in_audio = false;
        let mut seen_audio = false;
        let mut media: Option<Self> = None;
        let mut media_addr: Option<IpAddr> = None;
        let mut media_dir: Option<Direction> = None;
        for line in lines {
            let Some((kind, value)) = line.split_once('=') else {
                if line.trim().is_empty() {
                    continue;
                }
                return Err(bad(format!("bad line {line:?}")));
            };
            if kind.len() != 1 {
                return Err(bad(format!("bad line {line:?}")));
            }
            match kind {
                "o" => {
                    let f: Vec<&str> = value.split_whitespace().collect();
                    if f.len() != 6 {
                        return Err(bad("o= needs 6 fields"));
                    }
                    origin = (f[1].parse().unwrap_or(0), f[2].parse().unwrap_or(0));
                }
                "m" => {
                    if seen_audio {
                        in_audio = false;
                        continue;
                    }
                    let f: Vec<&str> = value.split_whitespace().collect();
                    if f.len() < 3 {
                        return Err(bad("m= needs media, port, proto"));
                    }
                    if f[0] != "audio" {
                        in_audio = false;
                        continue;
                    }
                    in_audio = true;
                    seen_audio = true;
                    let port = f[1]
                        .split('/')
                        .next()
                        .and_then(|p| p.parse::<u16>().ok())
                        .ok_or_else(|| bad("bad m= port"))?;
                    let mut pts = Vec::new();
                    for fmt in &f[3..] {
                        let pt: u8 = fmt.parse().map_err(|_| bad("bad payload type"))?;
                        if pt > 127 {
                            return Err(bad("payload type above 127"));
                        }
                        let (encoding, clock_rate) = match Codec::from_static(pt) {
                            Some(c) => {
                                let (n, _) = c.rtpmap().split_once('/').unwrap_or(("", ""));
                                (n.to_string(), c.clock_rate())
                            }
                            None => (String::new(), 0),
                        };
                        pts.push(PayloadType {
                            pt,
                            encoding,
                            clock_rate,
                            fmtp: None,
                        });
                    }
                    media = Some(Self {
                        address: IpAddr::from([0, 0, 0, 0]),
                        port,
                        protocol: f[2].to_string(),
                        payload_types: pts,
                        telephone_event_pt: None,
                        direction: Direction::SendRecv,
                        ptime: None,
                        crypto: Vec::new(),
                        origin: (0, 0),
                    });
                }
                "c" => {
                    let f: Vec<&str> = value.split_whitespace().collect();
                    if f.len() != 3 || f[0] != "IN" {
                        return Err(bad("bad c= line"));
                    }
                    let addr_str = f[2].split('/').next().unwrap_or("");
                    let addr: IpAddr = addr_str.parse().map_err(|_| bad("bad c= address"))?;
                    if in_audio {
                        media_addr = Some(addr);
                    } else if !seen_audio {
                        session_addr = Some(addr);
                    }
                }
                "a" if in_audio || !seen_audio => {
                    let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                    let dir = match name {
                        "sendrecv" => Some(Direction::SendRecv),
                        "sendonly" => Some(Direction::SendOnly),
                        "recvonly" => Some(Direction::RecvOnly),
                        "inactive" => Some(Direction::Inactive),
                        _ => None,
                    };
                    if let Some(d) = dir {
                        if in_audio {
                            media_dir = Some(d);
                        } else {
                            session_dir = Some(d);
                        }
                        continue;
                    }
                    let Some(m) = media.as_mut().filter(|_| in_audio) else {
                        continue;
                    };
                    match name {
                        "rtpmap" => {
                            let (pt, enc) = arg.split_once(' ').ok_or_else(|| bad("bad rtpmap"))?;
                            let pt: u8 = pt.trim().parse().map_err(|_| bad("bad rtpmap pt"))?;
                            let mut parts = enc.trim().split('/');
                            let name = parts.next().unwrap_or("").to_string();
                            let clock: u32 = parts
                                .next()
                                .and_then(|c| c.parse().ok())
                                .ok_or_else(|| bad("bad rtpmap clock"))?;
                            if let Some(p) = m.payload_types.iter_mut().find(|p| p.pt == pt) {
                                p.encoding = name;
                                p.clock_rate = clock;
                            }
                        }
                        "fmtp" => {
                            if let Some((pt, params)) = arg.split_once(' ') {
                                if let Ok(pt) = pt.trim().parse::<u8>() {
                                    if let Some(p) = m.payload_types.iter_mut().find(|p| p.pt == pt)
                                    {
                                        p.fmtp = Some(params.trim().to_string());
                                    }
                                }
                            }
                        }
                        "ptime" => m.ptime = arg.trim().parse().ok(),
                        "crypto" => {
                            let f: Vec<&str> = arg.split_whitespace().collect();
                            if f.len() >= 3 {
                                let key = f[2]
                                    .strip_prefix("inline:")
                                    .map(|k| k.split('|').next().unwrap_or(""))
                                    .and_then(|k| {
                                        use base64::Engine as _;
                                        base64::engine::general_purpose::STANDARD.decode(k).ok()
                                    });
                                if let (Ok(tag), Some(key_salt)) = (f[0].parse(), key) {
                                    m.crypto.push(SdesKey {
                                        tag,
                                        suite: f[1].to_string(),
                                        key_salt,
                                    });
                                }
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        let mut m = media.ok_or_else(|| Error::PeerIncompatible("no audio stream".into()))?;
        m.address = media_addr
            .or(session_addr)
            .ok_or_else(|| bad("no connection address"))?;
        m.direction = media_dir.or(session_dir).unwrap_or_default();
        if m.address.is_unspecified() {
            m.direction = Direction::Inactive;
        }
        m.telephone_event_pt = m
            .payload_types
            .iter()
            .find(|p| p.encoding.eq_ignore_ascii_case("telephone-event") && p.clock_rate == 8000)
            .map(|p| p.pt);
        m.origin = origin;
        Ok(m)
    }

    /// Picks the codec for this stream: the peer's first listed payload type
    /// that is among `ours` (the offerer's preference wins, [RFC 3264 §6.1](https://www.rfc-editor.org/rfc/rfc3264#section-6.1)).
    /// Returns the codec and the peer's payload type number for it.
    pub fn choose(&self, ours: &[Codec]) -> Option<(Codec, u8)> {
        self.payload_types.iter().find_map(|p| {
            Codec::from_encoding(&p.encoding, p.clock_rate)
                .filter(|c| ours.contains(c))
                .map(|c| (c, p.pt))
        })
    }

    /// True when the peer puts the call on hold (`sendonly`, `inactive`, or
    /// `c=0.0.0.0`).
    pub fn is_hold(&self) -> bool {
        matches!(self.direction, Direction::SendOnly | Direction::Inactive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIPP_183: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n";

    fn local() -> LocalMedia {
        LocalMedia::new("203.0.113.7".parse().unwrap(), 30000, 42)
    }

    #[test]
    fn offer_lists_codecs_dtmf_and_ptime() {
        let mut l = local();
        l.codecs = vec![Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus];
        let sdp = l.offer();
        assert!(sdp.starts_with("v=0\r\no=- 42 1 IN IP4 203.0.113.7\r\n"));
        assert!(sdp.contains("c=IN IP4 203.0.113.7\r\n"));
        assert!(sdp.contains("m=audio 30000 RTP/AVP 0 8 9 111 101\r\n"));
        assert!(sdp.contains("a=rtpmap:9 G722/8000\r\n"));
        assert!(sdp.contains("a=rtpmap:111 opus/48000/2\r\n"));
        assert!(sdp.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"));
        assert!(sdp.contains("a=ptime:20\r\n"));
        assert!(sdp.ends_with("a=sendrecv\r\n"));
        // Our own offer parses back.
        let back = RemoteMedia::parse(&sdp).unwrap();
        assert_eq!(back.port, 30000);
        assert_eq!(back.telephone_event_pt, Some(101));
        assert_eq!(back.payload_types.len(), 5);
        assert_eq!(back.choose(&[Codec::Opus]), Some((Codec::Opus, 111)));
    }

    #[test]
    fn srtp_offer_has_savp_and_crypto() {
        let mut l = local();
        l.srtp = Some(SdesKey {
            tag: 1,
            suite: "AES_CM_128_HMAC_SHA1_80".into(),
            key_salt: (0u8..30).collect(),
        });
        let sdp = l.offer();
        assert!(sdp.contains("RTP/SAVP"));
        let back = RemoteMedia::parse(&sdp).unwrap();
        assert_eq!(back.protocol, "RTP/SAVP");
        assert_eq!(back.crypto.len(), 1);
        assert_eq!(back.crypto[0].key_salt, (0u8..30).collect::<Vec<_>>());
        assert!(!format!("{:?}", back.crypto[0]).contains("inline"));
    }

    #[test]
    fn parse_sipp_answer_and_choose() {
        let r = RemoteMedia::parse(SIPP_183).unwrap();
        assert_eq!(r.address, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(r.port, 6000);
        assert_eq!(r.telephone_event_pt, Some(101));
        assert_eq!(r.origin, (53655765, 2353687637));
        assert_eq!(
            r.choose(&[Codec::Pcmu, Codec::Pcma]),
            Some((Codec::Pcma, 8))
        );
        assert_eq!(r.choose(&[Codec::Pcmu]), None);
        assert!(!r.is_hold());
    }

    #[test]
    fn answer_keeps_offer_pt_and_mirrors_hold() {
        let offer = "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18 0 96\r\na=rtpmap:96 telephone-event/8000\r\na=sendonly\r\n";
        let r = RemoteMedia::parse(offer).unwrap();
        assert!(r.is_hold());
        let (sdp, neg) = local().answer(&r).unwrap();
        assert_eq!(neg.codec, Codec::Pcmu);
        assert_eq!(neg.payload_type, 0);
        assert_eq!(neg.telephone_event_pt, Some(96));
        assert!(sdp.contains("m=audio 30000 RTP/AVP 0 96\r\n"));
        assert!(sdp.contains("a=recvonly\r\n"));
        let no_common = offer.replace("18 0 96", "18 96");
        let err = local()
            .answer(&RemoteMedia::parse(&no_common).unwrap())
            .unwrap_err();
        assert_eq!(err.status_code(), 488);
    }

    #[test]
    fn hold_by_zero_address_and_session_level_attrs() {
        let sdp = "v=0\r\no=- 1 3 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\na=sendrecv\r\nm=video 5000 RTP/AVP 96\r\nm=audio 4000 RTP/AVP 8\r\n";
        let r = RemoteMedia::parse(sdp).unwrap();
        assert_eq!(r.direction, Direction::Inactive);
        assert_eq!(r.port, 4000);
        let sdp6 = "v=0\r\no=- 1 3 IN IP6 ::1\r\ns=-\r\nt=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP6 ::1\r\n";
        let r = RemoteMedia::parse(sdp6).unwrap();
        assert_eq!(r.address, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(r.direction, Direction::SendOnly);
    }

    #[test]
    fn parse_rejects_garbage_without_panicking() {
        for body in [
            "",
            "v=1\r\n",
            "v=0\r\nm=audio x RTP/AVP 0\r\n",
            "v=0\r\nm=audio 4000 RTP/AVP 300\r\nc=IN IP4 1.2.3.4\r\n",
            "v=0\r\nm=audio 4000 RTP/AVP 0\r\n",
            "v=0\r\nc=IN IP4 nope\r\nm=audio 4000 RTP/AVP 0\r\n",
            "v=0\r\nxx\r\n",
            "v=0\r\no=a\r\n",
            "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0\r\n",
        ] {
            assert!(RemoteMedia::parse(body).is_err(), "{body:?}");
        }
        assert!(matches!(
            RemoteMedia::parse("v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 1 RTP/AVP 96\r\n"),
            Err(Error::PeerIncompatible(_))
        ));
        // Deterministic pseudo-random bytes: the parser never panics.
        let mut x: u32 = 0x1234_5678;
        for _ in 0..2000 {
            let mut s = String::from("v=0\r\n");
            for _ in 0..40 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let alphabet = b"vomcat= :/\r\n0123456789.INPAUDIOrtpmap";
                s.push(alphabet[x as usize % alphabet.len()] as char);
            }
            let _ = RemoteMedia::parse(&s);
        }
    }
}
