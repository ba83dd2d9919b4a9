//! The Jingle ↔ SDP/media mapping of a call (INTEROP.md E.2, E.3, E.6 and F), as pure
//! functions the call orchestration calls at each step:
//!
//! - outbound (E.2): [`ClientOffer::parse`] reads the client's `session-initiate`;
//!   [`trunk_offer`] gives the SIP offer (sent in parallel, before the client's offer
//!   arrives); [`trunk_media_from_answer`] reads the trunk's answer; then
//!   [`ClientOffer::choose`] picks the client codec (passthrough or transcoding, knowing
//!   the trunk's codec) and [`session_accept_content`] builds our `session-accept`;
//! - inbound (E.3): [`answer_trunk_offer`] answers the trunk's INVITE;
//!   [`inbound_offer_content`] builds our `session-initiate`; [`ClientAnswer::parse`]
//!   reads the client's `session-accept`;
//! - failures (E.6): the tables of [`reasons`].
//!
//! Codec policy: G.711 passes through untouched when the client offers the trunk's
//! G.711 codec and the operator prefers it ([`CodecPolicy::prefer_g711_passthrough`]);
//! otherwise the client leg runs Opus and the media engine transcodes to the trunk's
//! G.711. The trunk is only ever offered G.711 (PCMU, PCMA) and `telephone-event/8000`.
//!
//! ```
//! use gateway::bridge::{ClientOffer, CodecPolicy};
//! use xmpp::jingle::Jingle;
//!
//! # fn demo(jingle: &Jingle) -> Result<(), gateway::bridge::Error> {
//! let offer = ClientOffer::parse(jingle, &CodecPolicy::default())?;
//! let choice = offer.choose(&CodecPolicy::default(), Some(media::codec::Codec::Pcmu));
//! let client_media = offer.client_media(&choice);
//! # let _ = client_media; Ok(()) }
//! ```

use xmpp::jingle::{Reason, ReasonCondition};

mod candidates;
mod client;
pub mod reasons;
#[cfg(test)]
mod tests;
mod trunk;

pub use candidates::{ice_candidate, jingle_candidate};
pub use client::{
    inbound_offer_content, session_accept_content, ClientAnswer, ClientChoice, ClientOffer,
    INBOUND_CONTENT_NAME,
};
pub use trunk::{
    answer_trunk_offer, trunk_media_from_answer, trunk_offer, TRUNK_TELEPHONE_EVENT_PT,
};

/// The operator's media choices for calls (from `[media]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodecPolicy {
    /// Run G.711 end to end (no transcoding) when the client offers the trunk's G.711
    /// codec. Default `false`: the client leg uses Opus when offered, and G.711 only
    /// when the client has no Opus.
    pub prefer_g711_passthrough: bool,
    /// Accept a client offer without a DTLS fingerprint (plain RTP to the client,
    /// `[media] allow_unencrypted_client_media`). Default `false`: such an offer is
    /// refused with `<security-error/>`.
    pub allow_unencrypted: bool,
}

/// Why a call's media cannot be bridged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The offer has no audio content, or has a non-audio one (video-only or audio +
    /// video): this is an audio-only gateway (INTEROP.md E.2).
    #[error("only audio calls are supported: {0}")]
    UnsupportedApplications(String),
    /// The audio content's transport is not ICE-UDP
    /// ([XEP-0176](https://xmpp.org/extensions/xep-0176.html)).
    #[error("only the ICE-UDP transport is supported")]
    UnsupportedTransports,
    /// No codec in common: the client offers none of Opus, PCMU and PCMA, or the trunk
    /// none of PCMU and PCMA (SIP 488).
    #[error("no common audio codec: {0}")]
    NoCommonCodec(String),
    /// The client offered no `<rtcp-mux/>`; the gateway runs RTP and RTCP on one port
    /// only ([RFC 5761](https://www.rfc-editor.org/rfc/rfc5761)).
    #[error("rtcp-mux is required")]
    RtcpMuxRequired,
    /// No DTLS fingerprint ([XEP-0320](https://xmpp.org/extensions/xep-0320.html)) while
    /// unencrypted client media is not allowed, or one that is not sha-256 or malformed.
    #[error("DTLS-SRTP is required: {0}")]
    Security(String),
    /// The transport lacks `ufrag` or `pwd`
    /// ([XEP-0176 §5.1](https://xmpp.org/extensions/xep-0176.html#protocol-initiate)).
    #[error("the transport has no ICE credentials")]
    MissingIceCredentials,
    /// The peer broke offer/answer: `setup='actpass'` in an answer
    /// ([RFC 5763 §5](https://www.rfc-editor.org/rfc/rfc5763#section-5)), an answer for a
    /// content we did not offer, a trunk answer that rejects the stream (port 0).
    #[error("peer misbehaved: {0}")]
    PeerMisbehaved(String),
    /// The trunk wants SRTP (RTP/SAVP) and we have no SDES key or a bad one, or the
    /// trunk's `a=crypto` is unusable.
    #[error("trunk SRTP: {0}")]
    TrunkSrtp(String),
}

impl Error {
    /// The Jingle `<reason/>` for a `session-terminate` (or JMI reject) caused by this
    /// error, with its text:
    ///
    /// | error | condition |
    /// |---|---|
    /// | unsupported applications | `<unsupported-applications/>` |
    /// | unsupported transports | `<unsupported-transports/>` |
    /// | no common codec, rtcp-mux required | `<incompatible-parameters/>` |
    /// | security (no/bad fingerprint) | `<security-error/>` |
    /// | missing ICE credentials | `<failed-transport/>` |
    /// | peer misbehaved | `<failed-application/>` |
    /// | trunk SRTP | `<failed-application/>` |
    pub fn jingle_reason(&self) -> Reason {
        let condition = match self {
            Self::UnsupportedApplications(_) => ReasonCondition::UnsupportedApplications,
            Self::UnsupportedTransports => ReasonCondition::UnsupportedTransports,
            Self::NoCommonCodec(_) | Self::RtcpMuxRequired => {
                ReasonCondition::IncompatibleParameters
            }
            Self::Security(_) => ReasonCondition::SecurityError,
            Self::MissingIceCredentials => ReasonCondition::FailedTransport,
            Self::PeerMisbehaved(_) | Self::TrunkSrtp(_) => ReasonCondition::FailedApplication,
        };
        Reason::with_text(condition, self.to_string())
    }

    /// The SIP final status for an inbound INVITE refused by this error: 488 Not
    /// Acceptable Here for media problems
    /// ([RFC 3261 §21.4.26](https://www.rfc-editor.org/rfc/rfc3261#section-21.4.26)),
    /// 500 otherwise.
    pub fn sip_status(&self) -> u16 {
        match self {
            Self::NoCommonCodec(_) | Self::TrunkSrtp(_) | Self::PeerMisbehaved(_) => 488,
            _ => 500,
        }
    }
}

/// The media-engine codec of a trunk codec; `None` for G.722, which the engine lacks.
pub fn media_codec(codec: sip::sdp::Codec) -> Option<media::codec::Codec> {
    match codec {
        sip::sdp::Codec::Pcmu => Some(media::codec::Codec::Pcmu),
        sip::sdp::Codec::Pcma => Some(media::codec::Codec::Pcma),
        sip::sdp::Codec::Opus => Some(media::codec::Codec::Opus),
        _ => None,
    }
}

/// The trunk codec of a media-engine codec.
pub fn sip_codec(codec: media::codec::Codec) -> sip::sdp::Codec {
    match codec {
        media::codec::Codec::Pcmu => sip::sdp::Codec::Pcmu,
        media::codec::Codec::Pcma => sip::sdp::Codec::Pcma,
        _ => sip::sdp::Codec::Opus,
    }
}
