//! The one error type of the media engine, grouped by who is at fault
//! (STYLE.md R7).

/// Errors of the media engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke a protocol rule or failed a security check.
    #[error("peer misbehaved: {0}")]
    PeerMisbehaved(PeerMisbehaved),
    /// The peer lacks something we need (a codec, an SRTP profile).
    #[error("peer incompatible: {0}")]
    PeerIncompatible(&'static str),
    /// Input could not be parsed; the packet is dropped.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// Our caller used the API wrongly; the doc of the call says what to do instead.
    #[error("api misuse: {0}")]
    ApiMisuse(&'static str),
    /// The DTLS handshake did not complete in time.
    #[error("timed out")]
    TimedOut,
    /// A local fault (codec library, certificate generation).
    #[error("local failure: {0}")]
    Local(String),
}

/// Ways in which the peer broke a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// Security error: the peer's DTLS certificate does not match the fingerprint
    /// signalled in Jingle/SDP ([RFC 8122 §5](https://www.rfc-editor.org/rfc/rfc8122#section-5)).
    /// The call must fail.
    #[error("security error: peer certificate does not match the signalled fingerprint")]
    FingerprintMismatch,
    /// The DTLS handshake failed (alert, bad signature, no common cipher).
    #[error("dtls handshake failed: {0}")]
    DtlsFailed(String),
    /// SRTP or SRTCP authentication failed ([RFC 3711 §3.3](https://www.rfc-editor.org/rfc/rfc3711#section-3.3)).
    #[error("srtp authentication failed")]
    SrtpAuthFailed,
    /// A replayed or too old SRTP/SRTCP packet ([RFC 3711 §3.3.2](https://www.rfc-editor.org/rfc/rfc3711#section-3.3.2)).
    #[error("srtp replay")]
    SrtpReplay,
}

impl Error {
    /// Whether this error is a security failure that must end the call.
    pub fn is_security(&self) -> bool {
        matches!(
            self,
            Self::PeerMisbehaved(
                PeerMisbehaved::FingerprintMismatch | PeerMisbehaved::DtlsFailed(_)
            )
        )
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
