//! The handle's public types: call ids, events, end reasons.

use std::time::Duration;

use crate::sdp::{LocalMedia, Negotiated, RemoteMedia};
use crate::Error;

/// Identifies one call: its SIP Call-ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallId(pub(super) String);

impl CallId {
    /// The Call-ID header value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// We hung up (BYE sent, or CANCEL answered by 487).
    LocalHangup,
    /// The trunk hung up with BYE.
    RemoteHangup,
    /// The trunk cancelled its inbound call before we answered (CANCEL, 487 sent).
    RemoteCancel,
    /// The trunk (or the far end) rejected our call with a final response.
    Rejected {
        /// The status code, 300–699.
        status: u16,
        /// The reason phrase as received.
        reason: String,
    },
    /// We rejected an inbound call with this status.
    LocalReject {
        /// The status code sent.
        status: u16,
    },
    /// The call failed locally: authentication, codec, timeout, transport.
    Failed(Error),
}

/// A trunk's registration state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationState {
    /// The registrar accepted our binding for this long; it is refreshed at
    /// half of it.
    Registered {
        /// The granted expiry.
        expires: Duration,
    },
    /// Registration failed; it is retried after `retry_in` (exponential backoff
    /// from 1 s to 5 min).
    Failed {
        /// Why.
        reason: Error,
        /// When the next attempt starts.
        retry_in: Duration,
    },
}

/// What the user agent reports. Drain the receiver returned by
/// [`UserAgent::start`](crate::UserAgent::start) continuously.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A trunk calls us. 100 and 180 are already sent; answer with
    /// [`UserAgent::answer`](crate::UserAgent::answer) or refuse with [`UserAgent::reject`](crate::UserAgent::reject).
    Incoming {
        /// The call.
        call: CallId,
        /// The trunk's name.
        trunk: String,
        /// The caller: P-Asserted-Identity user if present, else From user.
        from: String,
        /// The called number: the To user (on registered trunks the
        /// Request-URI is our Contact, so the DID is taken from To).
        to: String,
        /// The caller's SDP offer, parsed; `None` for a late-offer INVITE.
        offer: Option<RemoteMedia>,
    },
    /// 180 Ringing (or 183 without SDP) on our outbound call.
    Ringing {
        /// The call.
        call: CallId,
    },
    /// A provisional response with SDP: early media from `remote`
    /// ([RFC 3960](https://www.rfc-editor.org/rfc/rfc3960)).
    EarlyMedia {
        /// The call.
        call: CallId,
        /// The trunk's early-media stream.
        remote: RemoteMedia,
    },
    /// Our outbound call was answered (200 OK, ACK sent).
    Answered {
        /// The call.
        call: CallId,
        /// The trunk's stream.
        remote: RemoteMedia,
        /// The codec agreed.
        negotiated: Negotiated,
    },
    /// A re-INVITE or UPDATE changed the trunk's stream (new address, hold or
    /// resume); we answered it with our current media.
    MediaUpdate {
        /// The call.
        call: CallId,
        /// The trunk's new stream.
        remote: RemoteMedia,
    },
    /// The call is over.
    Ended {
        /// The call.
        call: CallId,
        /// Why.
        reason: EndReason,
    },
    /// The OPTIONS ping of a trunk got an answer (`up`) or none within the
    /// transaction timeout (`down`); sent on every change.
    TrunkStatus {
        /// The trunk's name.
        trunk: String,
        /// Whether it answered.
        up: bool,
    },
    /// A trunk's registration changed.
    Registration {
        /// The trunk's name.
        trunk: String,
        /// The new state.
        state: RegistrationState,
    },
}

/// An outbound call request.
#[derive(Debug, Clone)]
pub struct OutboundCall {
    /// The called number, E.164 (`+15551234567`); rewritten per trunk.
    pub to: String,
    /// The caller ID (E.164) put in From and P-Asserted-Identity; `None` makes
    /// an anonymous call (`anonymous.invalid` + `Privacy: id`, [RFC 3325](https://www.rfc-editor.org/rfc/rfc3325)).
    pub caller_id: Option<String>,
    /// Our media (address, port, codecs). The trunk's codec list replaces
    /// `media.codecs` when it is non-empty.
    pub media: LocalMedia,
}
