//! Why a call is refused, and how each refusal is said on the wire: a SIP final
//! response ([RFC 3261 §21](https://www.rfc-editor.org/rfc/rfc3261#section-21)) toward a
//! trunk, a Jingle / JMI `<reason/>` toward an XMPP client
//! ([XEP-0166 §7.4](https://xmpp.org/extensions/xep-0166.html#def-reason),
//! [XEP-0353 §3.4](https://xmpp.org/extensions/xep-0353.html#reject)).

use std::time::Duration;

use xmpp::jingle::{Reason, ReasonCondition};

use crate::config::NumberPrefix;

/// `Retry-After` sent with 503 when a call limit is reached: 30 s
/// ([RFC 3261 §20.33](https://www.rfc-editor.org/rfc/rfc3261#section-20.33)).
pub const RETRY_AFTER_BUSY: Duration = Duration::from_secs(30);

/// `Retry-After` sent with 503 while the gateway drains for shutdown: 60 s, long enough
/// for a restart.
pub const RETRY_AFTER_DRAINING: Duration = Duration::from_secs(60);

/// Which concurrent-call limit was reached ([`super::CallSlots::try_acquire`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitReached {
    /// The gateway-wide limit (`calls.max_calls`).
    #[error("the gateway already carries its maximum of {max} calls")]
    Global {
        /// The limit.
        max: u32,
    },
    /// The per-user limit.
    #[error("this user already has the maximum of {max} calls")]
    User {
        /// The limit.
        max: u32,
    },
}

/// Why a call is refused before any media flows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// The caller's JID is not in `routing.allowed_callers` (toll-fraud protection).
    #[error("not allowed to call out through this gateway")]
    CallerNotAllowed,
    /// The dialled or received number is not E.164.
    #[error("invalid number: {why}")]
    InvalidNumber {
        /// The number as given.
        number: String,
        /// What is wrong with it.
        why: String,
    },
    /// The number starts with a blocked prefix (premium rate).
    #[error("calls to numbers starting with {prefix} are blocked")]
    Blocked {
        /// The matching `routing.blocked_prefixes` entry.
        prefix: NumberPrefix,
    },
    /// No outbound route matches the number.
    #[error("no route to {number}")]
    NoRoute {
        /// The number, E.164.
        number: String,
    },
    /// An inbound call to a DID no user has.
    #[error("number not assigned")]
    UnknownDid,
    /// An inbound call from an address no trunk allows.
    #[error("request from an unknown source")]
    UnknownSource,
    /// A concurrent-call limit is reached.
    #[error("{0}")]
    Limit(#[from] LimitReached),
    /// The gateway is shutting down and takes no new calls.
    #[error("the gateway is shutting down")]
    Draining,
}

/// A SIP final response refusing a call: status, reason phrase and an optional
/// `Retry-After` in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SipRejection {
    /// The status code (4xx/5xx).
    pub status: u16,
    /// The standard reason phrase of `status`.
    pub reason: &'static str,
    /// `Retry-After` ([RFC 3261 §20.33](https://www.rfc-editor.org/rfc/rfc3261#section-20.33)),
    /// sent with 503.
    pub retry_after: Option<Duration>,
}

impl Denied {
    /// The SIP final response for this refusal (toward a trunk's INVITE):
    ///
    /// | refusal | response |
    /// |---|---|
    /// | caller not allowed, blocked prefix, unknown source | 403 Forbidden |
    /// | no route, unknown DID | 404 Not Found |
    /// | invalid number | 484 Address Incomplete |
    /// | call limit | 503 Service Unavailable, `Retry-After: 30` |
    /// | draining | 503 Service Unavailable, `Retry-After: 60` |
    pub fn sip_rejection(&self) -> SipRejection {
        let (status, reason, retry_after) = match self {
            Self::CallerNotAllowed | Self::Blocked { .. } | Self::UnknownSource => {
                (403, "Forbidden", None)
            }
            Self::NoRoute { .. } | Self::UnknownDid => (404, "Not Found", None),
            Self::InvalidNumber { .. } => (484, "Address Incomplete", None),
            Self::Limit(_) => (503, "Service Unavailable", Some(RETRY_AFTER_BUSY)),
            Self::Draining => (503, "Service Unavailable", Some(RETRY_AFTER_DRAINING)),
        };
        SipRejection {
            status,
            reason,
            retry_after,
        }
    }

    /// The `<reason/>` of the JMI `<reject/>` (or `session-terminate`) toward the XMPP
    /// caller, with this refusal's text so the user sees why:
    ///
    /// | refusal | condition |
    /// |---|---|
    /// | caller not allowed | `<security-error/>` |
    /// | blocked prefix | `<decline/>` |
    /// | invalid number, no route, unknown DID, unknown source | `<general-error/>` |
    /// | call limit | `<busy/>` |
    /// | draining | `<connectivity-error/>` |
    pub fn jingle_reason(&self) -> Reason {
        let condition = match self {
            Self::CallerNotAllowed => ReasonCondition::SecurityError,
            Self::Blocked { .. } => ReasonCondition::Decline,
            Self::InvalidNumber { .. } | Self::NoRoute { .. } | Self::UnknownDid => {
                ReasonCondition::GeneralError
            }
            Self::UnknownSource => ReasonCondition::GeneralError,
            Self::Limit(_) => ReasonCondition::Busy,
            Self::Draining => ReasonCondition::ConnectivityError,
        };
        Reason::with_text(condition, self.to_string())
    }
}
