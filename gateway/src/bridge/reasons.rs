//! The failure mappings of INTEROP.md E.6 in both directions, as tables in code:
//! a SIP final status ([RFC 3261 §21](https://www.rfc-editor.org/rfc/rfc3261#section-21))
//! to a Jingle `<reason/>` ([XEP-0166 §7.4](https://xmpp.org/extensions/xep-0166.html#def-reason)),
//! and a Jingle `session-terminate` or JMI `<reject/>`
//! ([XEP-0353 §3.4](https://xmpp.org/extensions/xep-0353.html#reject)) to what the SIP
//! side does: CANCEL, a final response, or BYE with a `Reason: Q.850;cause=…` header
//! ([RFC 3326](https://www.rfc-editor.org/rfc/rfc3326)).

use xmpp::jingle::{Reason, ReasonCondition};

/// SIP status → Jingle condition, by status (E.6 first table). A status not listed
/// falls back by class in [`jingle_reason_for_status`].
pub const SIP_TO_JINGLE: &[(u16, ReasonCondition)] = &[
    (486, ReasonCondition::Busy),
    (600, ReasonCondition::Busy),
    (603, ReasonCondition::Decline),
    (480, ReasonCondition::Timeout),
    (408, ReasonCondition::Timeout),
    (404, ReasonCondition::GeneralError),
    (484, ReasonCondition::GeneralError),
    (410, ReasonCondition::GeneralError),
    (604, ReasonCondition::GeneralError),
    (488, ReasonCondition::IncompatibleParameters),
    (606, ReasonCondition::IncompatibleParameters),
];

/// The standard reason phrase of a SIP status, for `<text/>` when the trunk sent none.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        480 => "Temporarily Unavailable",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "",
    }
}

/// The Jingle `<reason/>` for the trunk's final `status` to our INVITE, with
/// `<text>486 Busy Here</text>` (the trunk's `phrase`, else the standard one), so the
/// user sees the carrier's words:
///
/// | SIP | Jingle |
/// |---|---|
/// | 486, 600 | `<busy/>` |
/// | 603 | `<decline/>` |
/// | 480, 408 | `<timeout/>` |
/// | 487 (after our CANCEL) | none: `None` |
/// | 404, 484, 410, 604 | `<general-error/>` |
/// | 488, 606 | `<incompatible-parameters/>` |
/// | other 5xx | `<connectivity-error/>` |
/// | other 3xx, 4xx, 6xx | `<general-error/>` |
///
/// 1xx and 2xx are not failures and give `None`.
pub fn jingle_reason_for_status(status: u16, phrase: &str) -> Option<Reason> {
    if status == 487 || status < 300 {
        return None;
    }
    let condition = SIP_TO_JINGLE
        .iter()
        .find(|(s, _)| *s == status)
        .map(|(_, c)| c.clone())
        .unwrap_or(match status {
            500..=599 => ReasonCondition::ConnectivityError,
            _ => ReasonCondition::GeneralError,
        });
    let phrase = if phrase.trim().is_empty() {
        reason_phrase(status)
    } else {
        phrase.trim()
    };
    let text = if phrase.is_empty() {
        status.to_string()
    } else {
        format!("{status} {phrase}")
    };
    Some(Reason::with_text(condition, text))
}

/// Whether the next trunk of the route is tried after this final status (issue 6:
/// failover on 5xx and 408; a busy, a decline or a bad number would be the same on
/// every trunk).
pub fn is_failover_status(status: u16) -> bool {
    status == 408 || (500..=599).contains(&status)
}

/// The Jingle `<reason/>` for how the SIP leg ended: BYE → `<success/>`, a CANCEL of
/// an inbound call → `<cancel/>`, a rejection → [`jingle_reason_for_status`] (487 →
/// `<cancel/>`), a local failure by kind (no common codec → `<incompatible-parameters/>`,
/// timeout → `<timeout/>`, else `<connectivity-error/>`).
pub fn jingle_reason_for_sip_end(end: &sip::EndReason) -> Reason {
    match end {
        sip::EndReason::LocalHangup | sip::EndReason::RemoteHangup => {
            Reason::new(ReasonCondition::Success)
        }
        sip::EndReason::RemoteCancel => Reason::new(ReasonCondition::Cancel),
        sip::EndReason::Rejected { status, reason } => jingle_reason_for_status(*status, reason)
            .unwrap_or_else(|| Reason::new(ReasonCondition::Cancel)),
        sip::EndReason::LocalReject { status } => jingle_reason_for_status(*status, "")
            .unwrap_or_else(|| Reason::new(ReasonCondition::Cancel)),
        sip::EndReason::Failed(e) => {
            let condition = match e {
                sip::Error::PeerIncompatible(_) => ReasonCondition::IncompatibleParameters,
                sip::Error::TimedOut(_) => ReasonCondition::Timeout,
                _ => ReasonCondition::ConnectivityError,
            };
            Reason::with_text(condition, e.to_string())
        }
        _ => Reason::new(ReasonCondition::GeneralError),
    }
}

/// Which way the call goes, for [`sip_action_for_terminate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallDirection {
    /// XMPP user → trunk (our INVITE).
    Outbound,
    /// Trunk → XMPP user (the trunk's INVITE).
    Inbound,
}

/// What the SIP leg does when the XMPP side ends the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SipAction {
    /// CANCEL our pending INVITE (outbound, not yet answered).
    Cancel,
    /// Answer the trunk's pending INVITE with this final status (inbound, not yet
    /// answered).
    Reject {
        /// The status code.
        status: u16,
    },
    /// BYE the established dialog with `Reason: Q.850;cause=<q850>`.
    Bye {
        /// The Q.850 cause ([ITU-T Q.850 table 1](https://www.itu.int/rec/T-REC-Q.850)).
        q850: u8,
    },
}

impl SipAction {
    /// The `Reason` header value of a BYE (`Q.850;cause=16;text="Normal call clearing"`),
    /// [RFC 3326 §2](https://www.rfc-editor.org/rfc/rfc3326#section-2); `None` for the
    /// other actions.
    pub fn reason_header(&self) -> Option<String> {
        match self {
            Self::Bye { q850 } => Some(format!("Q.850;cause={q850};text=\"{}\"", q850_text(*q850))),
            _ => None,
        }
    }
}

/// Jingle condition → Q.850 cause of the BYE after answer (E.6 second table; causes of
/// [ITU-T Q.850 table 1](https://www.itu.int/rec/T-REC-Q.850)). A condition not listed
/// gives 31 (normal, unspecified).
pub const JINGLE_TO_Q850: &[(ReasonCondition, u8)] = &[
    (ReasonCondition::Success, 16),
    (ReasonCondition::Cancel, 16),
    (ReasonCondition::Gone, 16),
    (ReasonCondition::Busy, 17),
    (ReasonCondition::Expired, 18),
    (ReasonCondition::Timeout, 19),
    (ReasonCondition::Decline, 21),
    (ReasonCondition::ConnectivityError, 38),
    (ReasonCondition::FailedTransport, 41),
    (ReasonCondition::MediaError, 41),
    (ReasonCondition::SecurityError, 57),
    (ReasonCondition::FailedApplication, 58),
    (ReasonCondition::IncompatibleParameters, 88),
    (ReasonCondition::UnsupportedApplications, 88),
    (ReasonCondition::UnsupportedTransports, 88),
    (ReasonCondition::GeneralError, 111),
];

/// The Q.850 text of the causes [`JINGLE_TO_Q850`] uses.
pub fn q850_text(cause: u8) -> &'static str {
    match cause {
        16 => "Normal call clearing",
        17 => "User busy",
        18 => "No user responding",
        19 => "No answer from user",
        21 => "Call rejected",
        31 => "Normal, unspecified",
        38 => "Network out of order",
        41 => "Temporary failure",
        57 => "Bearer capability not authorized",
        58 => "Bearer capability not presently available",
        88 => "Incompatible destination",
        111 => "Protocol error, unspecified",
        _ => "Unspecified",
    }
}

/// The Q.850 cause for a Jingle condition ([`JINGLE_TO_Q850`]; 31 if not listed).
pub fn q850_cause(condition: &ReasonCondition) -> u8 {
    JINGLE_TO_Q850
        .iter()
        .find(|(c, _)| c == condition)
        .map_or(31, |(_, q)| *q)
}

/// What the SIP leg does on the client's `session-terminate` with `reason` (absent:
/// `<success/>`), E.6 second table:
///
/// | state | Jingle | SIP |
/// |---|---|---|
/// | answered | any | BYE with `Reason: Q.850;cause=…` ([`JINGLE_TO_Q850`]) |
/// | outbound, not answered | any | CANCEL |
/// | inbound, not answered | `<busy/>` | 486 |
/// | inbound, not answered | `<decline/>` | 603 |
/// | inbound, not answered | `<cancel/>`, `<success/>` | 487 |
/// | inbound, not answered | `<timeout/>`, `<expired/>`, `<gone/>`, `<connectivity-error/>`, `<failed-transport/>`, `<media-error/>` | 480 |
/// | inbound, not answered | `<incompatible-parameters/>`, `<failed-application/>`, `<security-error/>`, `<unsupported-*/>` | 488 |
/// | inbound, not answered | other | 500 |
pub fn sip_action_for_terminate(
    reason: Option<&Reason>,
    answered: bool,
    direction: CallDirection,
) -> SipAction {
    let condition = reason.map_or(ReasonCondition::Success, |r| r.condition.clone());
    if answered {
        return SipAction::Bye {
            q850: q850_cause(&condition),
        };
    }
    if direction == CallDirection::Outbound {
        return SipAction::Cancel;
    }
    let status = match condition {
        ReasonCondition::Busy => 486,
        ReasonCondition::Decline => 603,
        ReasonCondition::Cancel | ReasonCondition::Success => 487,
        ReasonCondition::Timeout
        | ReasonCondition::Expired
        | ReasonCondition::Gone
        | ReasonCondition::ConnectivityError
        | ReasonCondition::FailedTransport
        | ReasonCondition::MediaError => 480,
        ReasonCondition::IncompatibleParameters
        | ReasonCondition::FailedApplication
        | ReasonCondition::SecurityError
        | ReasonCondition::UnsupportedApplications
        | ReasonCondition::UnsupportedTransports => 488,
        _ => 500,
    };
    SipAction::Reject { status }
}

/// The final status for the trunk's INVITE when the user's device rejects the JMI
/// propose (E.6): `<busy/>` → 486 Busy Here; `<timeout/>` or `<expired/>` (a client's
/// ringing timeout, Conversations after 30 s) → 480 Temporarily Unavailable; anything
/// else, or no reason → 603 Decline.
pub fn sip_status_for_jmi_reject(reason: Option<&Reason>) -> u16 {
    match reason.map(|r| &r.condition) {
        Some(ReasonCondition::Busy) => 486,
        Some(ReasonCondition::Timeout | ReasonCondition::Expired) => 480,
        _ => 603,
    }
}

/// The final status for the trunk's INVITE when no device answered within the ring
/// timeout (`calls.ring_timeout`, E.3): 480 Temporarily Unavailable.
pub const RING_TIMEOUT_STATUS: u16 = 480;
