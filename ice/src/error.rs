//! The crate's error type ([STYLE.md R7]: grouped by who is at fault).

/// Errors returned by [`crate::Agent`] and the parsing helpers.
///
/// Errors from `handle_*` are informational: the offending input was dropped and
/// the agent is still usable. They let the driver log or count per peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke RFC 8445 / RFC 8489.
    #[error("peer misbehaved: {0}")]
    PeerMisbehaved(#[from] PeerMisbehaved),
    /// The peer needs something this agent does not implement.
    #[error("peer incompatible: {0}")]
    PeerIncompatible(String),
    /// Input that could not be parsed (a STUN message or a candidate line).
    #[error("malformed input: {0}")]
    Malformed(String),
    /// The caller used the API wrongly; see [`ApiMisuse`] for what to do instead.
    #[error("api misuse: {0}")]
    ApiMisuse(#[from] ApiMisuse),
    /// A transaction or the whole ICE session timed out.
    #[error("timed out")]
    TimedOut,
}

/// Ways a peer broke the protocol. The message was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// MESSAGE-INTEGRITY (SHA-1 or SHA-256) did not verify with the expected password
    /// ([RFC 8489 §9.1.3](https://www.rfc-editor.org/rfc/rfc8489#section-9.1.3)).
    #[error("bad message-integrity")]
    BadIntegrity,
    /// FINGERPRINT did not match ([RFC 8489 §14.7](https://www.rfc-editor.org/rfc/rfc8489#section-14.7)).
    #[error("bad fingerprint")]
    BadFingerprint,
    /// A Binding request lacked a mandatory attribute (answered with 400).
    #[error("missing attribute {0}")]
    MissingAttribute(&'static str),
    /// USERNAME did not name this agent's current ufrag (answered with 401 or dropped).
    #[error("unknown username")]
    UnknownUsername,
    /// A response that matches no outstanding transaction.
    #[error("unexpected response")]
    UnexpectedResponse,
    /// A request carried unknown comprehension-required attributes (answered with 420).
    #[error("unknown comprehension-required attributes")]
    UnknownAttributes,
}

/// Caller bugs. Each variant's doc says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// `now` went backwards. Pass a monotonic `Instant` on every call.
    #[error("time went backwards")]
    TimeWentBackwards,
    /// A local address that cannot be a candidate (unspecified `0.0.0.0`/`::`, or port 0).
    /// Bind the socket first and pass its concrete address.
    #[error("invalid local address")]
    InvalidLocalAddress,
    /// The local address was already added.
    #[error("duplicate local candidate")]
    DuplicateLocalCandidate,
    /// A packet arrived on a local address that was never added with
    /// [`crate::Agent::add_local_host`]. Route only packets of this agent's sockets.
    #[error("packet for unknown local address")]
    UnknownLocalAddress,
    /// Remote credentials are too short: ufrag needs at least 4 characters and pwd
    /// 22 ([RFC 8445 §5.3](https://www.rfc-editor.org/rfc/rfc8445#section-5.3)).
    #[error("invalid remote credentials")]
    InvalidCredentials,
}
