//! Candidate pairs and their check states
//! ([RFC 8445 §6.1.2](https://www.rfc-editor.org/rfc/rfc8445#section-6.1.2)).

use std::time::{Duration, Instant};

/// State of a candidate pair ([RFC 8445 §6.1.2.6](https://www.rfc-editor.org/rfc/rfc8445#section-6.1.2.6)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PairState {
    /// Waiting for a pair with the same foundation to finish.
    Frozen,
    /// Ready to be checked.
    Waiting,
    /// A check is in flight.
    InProgress,
    /// A check succeeded.
    Succeeded,
    /// All checks failed (a peer check brings it back to Waiting, §7.3.1.4).
    Failed,
}

/// One entry of the check list.
#[derive(Debug, Clone)]
pub(crate) struct Pair {
    pub(crate) local: usize,
    pub(crate) remote: usize,
    pub(crate) priority: u64,
    pub(crate) foundation: String,
    pub(crate) state: PairState,
    /// In the valid list (§7.2.5.3.2).
    pub(crate) valid: bool,
    /// The valid pair produced by this pair's successful check (may be itself, or a pair
    /// with a peer-reflexive local candidate).
    pub(crate) valid_pair: Option<usize>,
    /// Controlling: the next check on this pair carries USE-CANDIDATE.
    pub(crate) nominate: bool,
    /// Nomination confirmed (controlling: USE-CANDIDATE check succeeded; controlled:
    /// nominated by the peer and valid).
    pub(crate) nominated: bool,
    /// The in-flight transaction id, if any.
    pub(crate) tx: Option<u128>,
}

/// One outstanding STUN client transaction.
#[derive(Debug, Clone)]
pub(crate) struct Transaction {
    pub(crate) id: u128,
    pub(crate) kind: TxKind,
    pub(crate) bytes: Vec<u8>,
    pub(crate) source: std::net::SocketAddr,
    pub(crate) destination: std::net::SocketAddr,
    pub(crate) transmissions: u32,
    pub(crate) next: Instant,
    pub(crate) rto: Duration,
    /// Cancelled (§7.3.1.4): no retransmissions, but a response is still used.
    pub(crate) cancelled: bool,
}

/// What a transaction is for.
#[derive(Debug, Clone)]
pub(crate) enum TxKind {
    /// A connectivity check on `pair`.
    Check {
        pair: usize,
        use_candidate: bool,
        prflx_priority: u32,
        controlling: bool,
    },
    /// A consent freshness check on the selected pair (RFC 7675).
    Consent,
    /// A Binding request to a STUN server from host candidate `local`.
    Gather { local: usize },
}
