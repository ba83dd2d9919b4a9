//! The error type of the XMPP layer.
//!
//! One enum for the whole crate (STYLE.md R7), grouped by who is at fault:
//! the peer misbehaved, the peer is incompatible, the input is malformed, the
//! caller misused the API, or a timer ran out.

use std::time::Duration;

/// Everything that can go wrong in the XMPP layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- PeerMisbehaved -------------------------------------------------
    /// The server rejected the component secret: it answered the handshake
    /// with a `<not-authorized/>` stream error
    /// ([XEP-0114 §3](https://xmpp.org/extensions/xep-0114.html#protocol)).
    #[error("the xmpp server rejected the component secret (not-authorized)")]
    SecretRejected,
    /// The server sent a stream error
    /// ([RFC 6120 §4.9](https://www.rfc-editor.org/rfc/rfc6120#section-4.9)).
    #[error("stream error from server: {condition}{}", text.as_deref().map(|t| format!(" ({t})")).unwrap_or_default())]
    StreamError {
        /// The defined condition, e.g. `host-unknown`, `conflict`.
        condition: String,
        /// The optional human-readable `<text/>`.
        text: Option<String>,
    },
    /// The server closed the stream with `</stream:stream>` or the
    /// transport reached end of file.
    #[error("the xmpp server closed the stream")]
    StreamClosed,
    /// The byte stream is not well-formed XML, so framing is lost and the
    /// stream cannot continue.
    #[error("xml not well-formed: {0}")]
    NotWellFormed(String),
    /// A single top-level element exceeded the size limit, in bytes.
    #[error("stanza larger than {limit} bytes")]
    StanzaTooLarge {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// Elements were nested deeper than the limit.
    #[error("xml nesting deeper than {limit} levels")]
    TooDeep {
        /// The configured limit, in levels below the stream root.
        limit: usize,
    },

    // ----- PeerIncompatible -----------------------------------------------
    /// The stream header was not a `jabber:component:accept` stream, or
    /// lacked a stream id.
    #[error("unexpected stream header: {0}")]
    BadStreamHeader(String),

    // ----- Malformed --------------------------------------------------------
    /// A stanza or element is malformed (missing attribute, wrong namespace…).
    #[error("malformed: {0}")]
    Malformed(String),
    /// A JID could not be parsed
    /// ([RFC 7622](https://www.rfc-editor.org/rfc/rfc7622)).
    #[error("invalid jid: {0}")]
    InvalidJid(String),

    // ----- ApiMisuse --------------------------------------------------------
    /// The caller used the API in a way the contract forbids, e.g. sending
    /// before the stream is connected.
    #[error("api misuse: {0}")]
    ApiMisuse(&'static str),

    // ----- TimedOut ---------------------------------------------------------
    /// The server did not answer an XEP-0199 ping in time
    /// ([XEP-0199 §4.2](https://xmpp.org/extensions/xep-0199.html#c2s)).
    #[error("no reply to ping within {0:?}")]
    PingTimeout(Duration),
    /// The stream header or handshake reply did not arrive in time.
    #[error("handshake not completed within {0:?}")]
    HandshakeTimeout(Duration),
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
