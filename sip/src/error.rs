//! The crate's one error type, grouped by who is at fault.

/// Errors of the SIP user agent, its digest and its SDP code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A message, header or SDP body could not be parsed.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// What was being parsed (`"challenge"`, `"sdp"`, …).
        what: &'static str,
        /// Why it failed.
        detail: String,
    },
    /// The peer broke the protocol (RFC 3261 or RFC 3264).
    #[error("peer misbehaved: {0}")]
    PeerMisbehaved(String),
    /// The peer lacks something we need: no common codec, no supported digest
    /// algorithm, and so on.
    #[error("peer incompatible: {0}")]
    PeerIncompatible(String),
    /// The peer rejected our credentials (a second challenge for the same realm
    /// without `stale=true`, [RFC 7616 §3.4](https://www.rfc-editor.org/rfc/rfc7616#section-3.4)):
    /// the configured username or password is wrong. Never retried.
    #[error("authentication rejected by realm {realm:?}: wrong username or password")]
    AuthRejected {
        /// The realm that rejected us.
        realm: String,
    },
    /// Our caller used the API wrongly; the text says what to do instead.
    #[error("api misuse: {0}")]
    ApiMisuse(&'static str),
    /// No response within the transaction timeout (Timer B/F, 64×T1 = 32 s,
    /// [RFC 3261 §17.1.1.2](https://www.rfc-editor.org/rfc/rfc3261#section-17.1.1.2)).
    #[error("timed out: {0}")]
    TimedOut(&'static str),
    /// A socket or the underlying SIP stack failed locally.
    #[error("transport: {0}")]
    Transport(String),
}

impl Error {
    pub(crate) fn malformed(what: &'static str, detail: impl Into<String>) -> Self {
        Self::Malformed {
            what,
            detail: detail.into(),
        }
    }

    /// The SIP status code with which a request failing with this error is
    /// answered: malformed → 400, incompatible → 488, rejected auth → 403,
    /// time-out → 408, the rest → 500.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::Malformed { .. } => 400,
            Self::PeerIncompatible(_) => 488,
            Self::AuthRejected { .. } => 403,
            Self::TimedOut(_) => 408,
            Self::PeerMisbehaved(_) | Self::ApiMisuse(_) | Self::Transport(_) => 500,
        }
    }
}

impl From<rsipstack::Error> for Error {
    fn from(e: rsipstack::Error) -> Self {
        Self::Transport(e.to_string())
    }
}
