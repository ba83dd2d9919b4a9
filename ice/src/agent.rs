//! The ICE agent state machine ([RFC 8445](https://www.rfc-editor.org/rfc/rfc8445)).

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tracing::{debug, trace, warn};

use crate::candidate::{
    candidate_priority, pair_priority, Candidate, CandidateKind, COMPONENT_RTP,
};
use crate::error::{ApiMisuse, PeerMisbehaved};
use crate::pair::{Pair, PairState, Transaction, TxKind};
use crate::pii::Pii;
use crate::stun::{self, Class, Decoded};
use crate::{Config, Error};

/// ICE role ([RFC 8445 §6.1.1](https://www.rfc-editor.org/rfc/rfc8445#section-6.1.1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Nominates pairs (the Jingle initiator, the SDP offerer).
    Controlling,
    /// Follows the controlling agent's nominations.
    Controlled,
}

/// Short-term credentials of one side ([RFC 8445 §5.3](https://www.rfc-editor.org/rfc/rfc8445#section-5.3)).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `ice-ufrag`.
    pub ufrag: String,
    /// `ice-pwd`; never logged.
    pub pwd: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("ufrag", &self.ufrag)
            .finish_non_exhaustive()
    }
}

/// Overall state, as in `RTCIceConnectionState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// No checks yet (no remote credentials or candidates).
    New,
    /// Checks are running and no pair is selected.
    Checking,
    /// A nominated pair is selected.
    Connected,
    /// Selected, the peer signalled end-of-candidates and no checks remain.
    Completed,
    /// The selected pair has not answered consent checks for the disconnected timeout.
    Disconnected,
    /// Every pair failed after end-of-candidates, or consent was lost. Not terminal: a
    /// check from the peer brings the agent back to `Checking` (§7.3.1.4).
    Failed,
}

/// The pair media flows on: send from `local.base` to `remote.addr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedPair {
    /// Local candidate (its `base` is the socket to send from).
    pub local: Candidate,
    /// Remote candidate.
    pub remote: Candidate,
}

/// Output events, drained with [`Agent::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A local candidate to signal to the peer (trickle, RFC 8838).
    CandidateGathered(Candidate),
    /// All server-reflexive gathering finished after [`Agent::finish_gathering`]: signal
    /// end-of-candidates.
    GatheringComplete,
    /// [`ConnectionState`] changed.
    StateChanged(ConnectionState),
    /// The selected (nominated) pair changed; media goes here from now on.
    SelectedPairChanged(SelectedPair),
    /// No consent response for the consent timeout (RFC 7675 §5.1): stop sending media.
    ConsentLost,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Local socket address to send from (a candidate's base). For a relayed candidate,
    /// the relayed address: the driver wraps it for the TURN server.
    pub source: SocketAddr,
    /// Destination.
    pub destination: SocketAddr,
    /// The STUN message.
    pub contents: Vec<u8>,
}

/// Counters for dropped input and sent checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages dropped because MESSAGE-INTEGRITY did not verify.
    pub bad_integrity: u64,
    /// Messages dropped because FINGERPRINT did not match.
    pub bad_fingerprint: u64,
    /// Unparsable datagrams.
    pub malformed: u64,
    /// Responses matching no transaction.
    pub unexpected_responses: u64,
    /// Binding requests received and answered.
    pub requests_received: u64,
    /// Connectivity checks sent, first transmissions only.
    pub checks_sent: u64,
    /// STUN retransmissions.
    pub retransmissions: u64,
}

#[derive(Debug, Clone)]
struct SelectedState {
    pair: SelectedPair,
    local_ufrag: String,
    remote: Credentials,
    last_response: Instant,
    next_consent: Instant,
    consent_tx: Option<u128>,
    disconnected: bool,
}

/// A sans-IO ICE agent: RFC 8445 full agent, one data stream, component 1 (rtcp-mux).
///
/// # Method categories
/// - A. Getters: [`local_credentials`](Self::local_credentials), [`role`](Self::role),
///   [`state`](Self::state), [`selected_pair`](Self::selected_pair), [`stats`](Self::stats),
///   [`accepts`](Self::accepts), [`local_candidates`](Self::local_candidates).
/// - B. Input: [`handle_receive`](Self::handle_receive), [`handle_timeout`](Self::handle_timeout).
/// - C. Commands: [`add_local_host`](Self::add_local_host),
///   [`add_local_relayed`](Self::add_local_relayed), [`finish_gathering`](Self::finish_gathering),
///   [`set_remote_credentials`](Self::set_remote_credentials),
///   [`add_remote_candidate`](Self::add_remote_candidate),
///   [`end_of_remote_candidates`](Self::end_of_remote_candidates), [`restart`](Self::restart).
/// - D. Output: [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event),
///   [`poll_timeout`](Self::poll_timeout).
///
/// # Contract
/// After every B or C call, drain `poll_transmit` until `None`, then `poll_event` until
/// `None`, then read `poll_timeout` and call `handle_timeout` when it is reached. `now`
/// must never go backwards ([`ApiMisuse::TimeWentBackwards`]). Route STUN datagrams to
/// the agent with [`accepts`](Self::accepts) or [`crate::request_ufrag`]; DTLS and RTP go
/// to the media engine ([`crate::classify`]).
pub struct Agent {
    config: Config,
    rng: ChaCha20Rng,
    role: Role,
    tie_breaker: u64,
    local_creds: Credentials,
    /// Credentials before the last [`Agent::restart`], accepted until a new pair is selected.
    old_local_creds: Option<Credentials>,
    remote_creds: Option<Credentials>,
    locals: Vec<Candidate>,
    remotes: Vec<Candidate>,
    pairs: Vec<Pair>,
    triggered: VecDeque<usize>,
    transactions: Vec<Transaction>,
    gather_queue: VecDeque<(usize, SocketAddr)>,
    gathering_finished: bool,
    gathering_complete_sent: bool,
    remote_eoc: bool,
    last_paced: Option<Instant>,
    first_valid_at: Option<Instant>,
    nominating: Option<usize>,
    /// Controlled: highest NOMINATION value seen.
    max_nomination: Option<u32>,
    /// Controlled: the pair the peer nominated last, waiting to become valid.
    pending_nomination: Option<usize>,
    seen_use_candidate_tx: HashSet<u128>,
    /// An ICE restart is under way: the selected pair is the old one.
    restarting: bool,
    /// The peer's credentials changed since our last [`Agent::restart`].
    remote_restarted: bool,
    /// Consent was lost; `Failed` until a new pair is selected.
    consent_lost: bool,
    selected: Option<SelectedState>,
    state: ConnectionState,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
    last_now: Instant,
    foundation_counter: u32,
}

impl std::fmt::Debug for Agent {
    /// Never prints passwords or the RNG state (it determines future credentials).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("local_ufrag", &self.local_creds.ufrag)
            .field("locals", &self.locals.len())
            .field("remotes", &self.remotes.len())
            .field("pairs", &self.pairs.len())
            .field("selected", &self.selected.as_ref().map(|s| &s.pair))
            .finish_non_exhaustive()
    }
}

fn random_string(rng: &mut ChaCha20Rng, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn new_credentials(rng: &mut ChaCha20Rng) -> Credentials {
    // ufrag: 24 bits of randomness at least; pwd: 128 bits at least (§5.3).
    Credentials {
        ufrag: random_string(rng, 8),
        pwd: random_string(rng, 24),
    }
}

impl Agent {
    /// Creates an agent in `role`. Local credentials and the tie-breaker come from
    /// `config.rng_seed`.
    pub fn new(config: Config, role: Role, start: Instant) -> Self {
        let mut rng = ChaCha20Rng::from_seed(config.rng_seed);
        let local_creds = new_credentials(&mut rng);
        let tie_breaker = rng.gen();
        Self {
            config,
            rng,
            role,
            tie_breaker,
            local_creds,
            old_local_creds: None,
            remote_creds: None,
            locals: Vec::new(),
            remotes: Vec::new(),
            pairs: Vec::new(),
            triggered: VecDeque::new(),
            transactions: Vec::new(),
            gather_queue: VecDeque::new(),
            gathering_finished: false,
            gathering_complete_sent: false,
            remote_eoc: false,
            last_paced: None,
            first_valid_at: None,
            nominating: None,
            max_nomination: None,
            pending_nomination: None,
            seen_use_candidate_tx: HashSet::new(),
            restarting: false,
            remote_restarted: false,
            consent_lost: false,
            selected: None,
            state: ConnectionState::New,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            last_now: start,
            foundation_counter: 0,
        }
    }

    // ---------------------------------------------------------------- A. getters

    /// This agent's current ufrag and pwd, to signal to the peer.
    pub fn local_credentials(&self) -> &Credentials {
        &self.local_creds
    }

    /// The current role (may change on a role conflict, §7.3.1.1).
    pub fn role(&self) -> Role {
        self.role
    }

    /// The tie-breaker sent in ICE-CONTROLLING/ICE-CONTROLLED.
    pub fn tie_breaker(&self) -> u64 {
        self.tie_breaker
    }

    /// The overall state.
    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// The pair media must use: always the nominated pair, never merely the best valid one.
    pub fn selected_pair(&self) -> Option<&SelectedPair> {
        self.selected.as_ref().map(|s| &s.pair)
    }

    /// Counters of dropped and sent messages.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Local candidates gathered so far (host, server- and peer-reflexive, relayed).
    pub fn local_candidates(&self) -> &[Candidate] {
        &self.locals
    }

    /// States of all pairs in the check list, as `(local, remote, state, nominated)`.
    pub fn pairs(&self) -> impl Iterator<Item = (&Candidate, &Candidate, PairState, bool)> {
        self.pairs.iter().map(|p| {
            (
                &self.locals[p.local],
                &self.remotes[p.remote],
                p.state,
                p.nominated,
            )
        })
    }

    /// Whether `packet` is a STUN message for this agent: a Binding request whose USERNAME
    /// starts with this agent's ufrag (current, or the one before a restart), or a response
    /// to one of its transactions ([STYLE.md R4]).
    pub fn accepts(&self, packet: &[u8]) -> bool {
        let Ok(d) = stun::decode(packet) else {
            return false;
        };
        match d.class {
            Class::Request | Class::Indication => d.username.as_deref().is_some_and(|u| {
                let l = u.split(':').next().unwrap_or_default();
                l == self.local_creds.ufrag
                    || self.old_local_creds.as_ref().is_some_and(|o| o.ufrag == l)
            }),
            Class::Success | Class::Error => self.transactions.iter().any(|t| t.id == d.txid),
        }
    }

    // ---------------------------------------------------------------- C. commands

    fn check_time(&mut self, now: Instant) -> Result<(), Error> {
        if now < self.last_now {
            return Err(ApiMisuse::TimeWentBackwards.into());
        }
        self.last_now = now;
        Ok(())
    }

    fn next_foundation(&mut self) -> String {
        self.foundation_counter += 1;
        self.foundation_counter.to_string()
    }

    fn local_preference(&self, addr: SocketAddr) -> u16 {
        // RFC 8421: prefer IPv6; distinct local preferences per address.
        let n = self
            .locals
            .iter()
            .filter(|c| c.kind == CandidateKind::Host && c.addr.is_ipv6() == addr.is_ipv6())
            .count() as u16;
        let top: u16 = if addr.is_ipv6() { 65535 } else { 65279 };
        top.saturating_sub(n.saturating_mul(2))
    }

    /// Adds a host candidate for a bound local socket `addr` (IPv4 or IPv6) and starts
    /// server-reflexive gathering from it to every configured STUN server of its family.
    /// Emits [`Event::CandidateGathered`].
    ///
    /// # Errors
    /// [`ApiMisuse::InvalidLocalAddress`] for an unspecified address or port 0;
    /// [`ApiMisuse::DuplicateLocalCandidate`]; [`ApiMisuse::TimeWentBackwards`].
    pub fn add_local_host(&mut self, now: Instant, addr: SocketAddr) -> Result<Candidate, Error> {
        self.check_time(now)?;
        if addr.ip().is_unspecified() || addr.port() == 0 {
            return Err(ApiMisuse::InvalidLocalAddress.into());
        }
        if self.locals.iter().any(|c| c.addr == addr) {
            return Err(ApiMisuse::DuplicateLocalCandidate.into());
        }
        let pref = self.local_preference(addr);
        let cand = Candidate {
            foundation: self.next_foundation(),
            component: COMPONENT_RTP,
            priority: candidate_priority(CandidateKind::Host, pref, COMPONENT_RTP),
            addr,
            kind: CandidateKind::Host,
            base: addr,
            related: None,
        };
        let idx = self.push_local(cand.clone());
        for server in self.config.stun_servers.clone() {
            if server.is_ipv6() == addr.is_ipv6() {
                self.gather_queue.push_back((idx, server));
            }
        }
        self.gathering_complete_sent = false;
        self.update_state(now);
        Ok(cand)
    }

    /// Adds a relayed candidate allocated by a TURN client the driver runs
    /// ([RFC 8656](https://www.rfc-editor.org/rfc/rfc8656)). Transmits from it carry
    /// `source == relayed`; the driver sends them through the allocation. `mapped` is the
    /// server-reflexive address the TURN server reported (the related address).
    ///
    /// # Errors
    /// As [`Agent::add_local_host`].
    pub fn add_local_relayed(
        &mut self,
        now: Instant,
        relayed: SocketAddr,
        mapped: SocketAddr,
    ) -> Result<Candidate, Error> {
        self.check_time(now)?;
        if relayed.ip().is_unspecified() || relayed.port() == 0 {
            return Err(ApiMisuse::InvalidLocalAddress.into());
        }
        if self.locals.iter().any(|c| c.addr == relayed) {
            return Err(ApiMisuse::DuplicateLocalCandidate.into());
        }
        let cand = Candidate {
            foundation: self.next_foundation(),
            component: COMPONENT_RTP,
            priority: candidate_priority(CandidateKind::Relayed, 65535, COMPONENT_RTP),
            addr: relayed,
            kind: CandidateKind::Relayed,
            base: relayed,
            related: Some(mapped),
        };
        self.push_local(cand.clone());
        self.update_state(now);
        Ok(cand)
    }

    fn push_local(&mut self, cand: Candidate) -> usize {
        debug!(addr = %Pii(cand.addr), kind = ?cand.kind, "local candidate");
        self.locals.push(cand.clone());
        let idx = self.locals.len() - 1;
        if cand.kind != CandidateKind::PeerReflexive {
            self.events
                .push_back(Event::CandidateGathered(cand.clone()));
        }
        if matches!(cand.kind, CandidateKind::Host | CandidateKind::Relayed) {
            for r in 0..self.remotes.len() {
                self.add_pair(idx, r);
            }
        }
        idx
    }

    /// The caller has added all its local addresses: emit [`Event::GatheringComplete`]
    /// once server-reflexive gathering is done.
    pub fn finish_gathering(&mut self, now: Instant) {
        self.gathering_finished = true;
        self.maybe_gathering_complete();
        let _ = self.check_time(now);
    }

    fn maybe_gathering_complete(&mut self) {
        if self.gathering_finished
            && !self.gathering_complete_sent
            && self.gather_queue.is_empty()
            && !self
                .transactions
                .iter()
                .any(|t| matches!(t.kind, TxKind::Gather { .. }))
        {
            self.gathering_complete_sent = true;
            self.events.push_back(Event::GatheringComplete);
        }
    }

    /// Sets the peer's ufrag and pwd. New values while others are set mean the peer
    /// restarted ICE (§9): the check list starts afresh (known remote candidates are
    /// checked again), the selected pair keeps carrying media until a new one is selected. The driver then calls
    /// [`Agent::restart`] unless it initiated the restart.
    ///
    /// # Errors
    /// [`ApiMisuse::InvalidCredentials`] if ufrag < 4 or pwd < 22 characters.
    pub fn set_remote_credentials(
        &mut self,
        now: Instant,
        ufrag: &str,
        pwd: &str,
    ) -> Result<(), Error> {
        self.check_time(now)?;
        if ufrag.len() < 4 || pwd.len() < 22 {
            return Err(ApiMisuse::InvalidCredentials.into());
        }
        let new = Credentials {
            ufrag: ufrag.to_owned(),
            pwd: pwd.to_owned(),
        };
        match &self.remote_creds {
            Some(c) if *c == new => return Ok(()),
            Some(_) => {
                debug!("peer restarted ICE");
                self.clear_checks();
                self.remote_restarted = true;
            }
            None => {}
        }
        self.remote_creds = Some(new);
        self.update_state(now);
        Ok(())
    }

    /// Starts the check list afresh (ICE restart). Remote candidates other than
    /// peer-reflexive ones are kept and re-paired: a Jingle restart arrives as a
    /// `transport-info` with new credentials and no candidates, and the peer usually
    /// keeps its addresses; candidates it signals again are merged.
    fn clear_checks(&mut self) {
        self.remotes
            .retain(|r| r.kind != CandidateKind::PeerReflexive);
        self.pairs.clear();
        self.triggered.clear();
        self.transactions
            .retain(|t| !matches!(t.kind, TxKind::Check { .. }));
        self.nominating = None;
        self.first_valid_at = None;
        self.max_nomination = None;
        self.pending_nomination = None;
        self.seen_use_candidate_tx.clear();
        self.remote_eoc = false;
        self.restarting = self.selected.is_some();
        for l in 0..self.locals.len() {
            if matches!(
                self.locals[l].kind,
                CandidateKind::Host | CandidateKind::Relayed
            ) {
                for r in 0..self.remotes.len() {
                    self.add_pair(l, r);
                }
            }
        }
    }

    /// ICE restart initiated locally ([RFC 8445 §9](https://www.rfc-editor.org/rfc/rfc8445#section-9)):
    /// new local credentials (signal them, with [`Agent::local_candidates`] again), remote
    /// credentials forgotten until the peer's new ones arrive; known remote candidates
    /// are checked again under the new credentials. The selected pair keeps carrying media (and
    /// consent) until a new pair is selected. Returns the new credentials.
    pub fn restart(&mut self, now: Instant) -> Credentials {
        let _ = self.check_time(now);
        let old = std::mem::replace(&mut self.local_creds, new_credentials(&mut self.rng));
        if self.old_local_creds.is_none() {
            self.old_local_creds = Some(old);
        }
        if !std::mem::take(&mut self.remote_restarted) {
            // We initiate: forget the peer's credentials until its new ones arrive.
            self.clear_checks();
            self.remote_creds = None;
        }
        if self.state != ConnectionState::New {
            self.set_state(if self.selected.is_some() {
                ConnectionState::Connected
            } else {
                ConnectionState::Checking
            });
        }
        self.local_creds.clone()
    }

    /// Adds a remote candidate (inline or trickled). Candidates of components other than 1
    /// are ignored with a debug log; non-UDP ones are rejected when parsed.
    ///
    /// # Errors
    /// [`ApiMisuse::TimeWentBackwards`].
    pub fn add_remote_candidate(&mut self, now: Instant, cand: Candidate) -> Result<(), Error> {
        self.check_time(now)?;
        if cand.component != COMPONENT_RTP {
            debug!(
                component = cand.component,
                "ignoring candidate of another component (rtcp-mux only)"
            );
            return Ok(());
        }
        let cand = Candidate {
            base: cand.addr,
            ..cand
        };
        if let Some(i) = self.remotes.iter().position(|r| r.addr == cand.addr) {
            // A signalled candidate replaces the peer-reflexive one learned earlier.
            if self.remotes[i].kind == CandidateKind::PeerReflexive {
                self.remotes[i] = cand;
                self.recompute_priorities();
            }
            return Ok(());
        }
        debug!(addr = %Pii(cand.addr), kind = ?cand.kind, "remote candidate");
        self.remotes.push(cand);
        let r = self.remotes.len() - 1;
        for l in 0..self.locals.len() {
            if matches!(
                self.locals[l].kind,
                CandidateKind::Host | CandidateKind::Relayed
            ) {
                self.add_pair(l, r);
            }
        }
        self.update_state(now);
        Ok(())
    }

    /// The peer signalled end-of-candidates (RFC 8838 §13): once every pair failed and no
    /// pair is selected, the state becomes `Failed`.
    pub fn end_of_remote_candidates(&mut self, now: Instant) {
        let _ = self.check_time(now);
        self.remote_eoc = true;
        self.update_state(now);
    }

    fn add_pair(&mut self, l: usize, r: usize) -> Option<usize> {
        let (lc, rc) = (&self.locals[l], &self.remotes[r]);
        if lc.addr.is_ipv6() != rc.addr.is_ipv6() {
            return None;
        }
        if let Some(i) = self
            .pairs
            .iter()
            .position(|p| p.local == l && p.remote == r)
        {
            return Some(i);
        }
        if self.pairs.len() >= self.config.max_pairs {
            debug!("check list full, pair dropped");
            return None;
        }
        let foundation = format!("{}:{}", lc.foundation, rc.foundation);
        let active = self.pairs.iter().any(|p| {
            p.foundation == foundation
                && matches!(p.state, PairState::Waiting | PairState::InProgress)
        });
        let priority = self.priority_of(l, r);
        trace!(local = %Pii(lc.addr), remote = %Pii(rc.addr), "new pair");
        self.pairs.push(Pair {
            local: l,
            remote: r,
            priority,
            foundation,
            state: if active {
                PairState::Frozen
            } else {
                PairState::Waiting
            },
            valid: false,
            valid_pair: None,
            nominate: false,
            nominated: false,
            tx: None,
        });
        Some(self.pairs.len() - 1)
    }

    fn priority_of(&self, l: usize, r: usize) -> u64 {
        let (lp, rp) = (self.locals[l].priority, self.remotes[r].priority);
        match self.role {
            Role::Controlling => pair_priority(lp, rp),
            Role::Controlled => pair_priority(rp, lp),
        }
    }

    fn recompute_priorities(&mut self) {
        for i in 0..self.pairs.len() {
            self.pairs[i].priority = self.priority_of(self.pairs[i].local, self.pairs[i].remote);
        }
    }

    fn set_role(&mut self, role: Role) {
        if self.role != role {
            debug!(?role, "role changed");
            self.role = role;
            self.recompute_priorities();
            self.nominating = None;
            for p in &mut self.pairs {
                p.nominate = false;
            }
        }
    }

    // ---------------------------------------------------------------- D. output

    /// Next datagram to send. Changes after every `handle_*` and command.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event. Changes after every `handle_*` and command.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Agent::handle_timeout`] must be called next; `None` when the agent waits for
    /// input only. Changes after every `handle_*` and command.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut timers = TimerTable::default();
        if self.has_paced_work() {
            let at = self
                .last_paced
                .map_or(self.last_now, |l| l + self.config.ta);
            timers.set(Timer::Pacing, at);
        }
        if let Some(at) = self.transactions.iter().map(|t| t.next).min() {
            timers.set(Timer::Retransmission, at);
        }
        if let Some(s) = &self.selected {
            if s.consent_tx.is_none() {
                timers.set(Timer::ConsentCheck, s.next_consent);
            }
            timers.set(
                Timer::ConsentExpiry,
                s.last_response + self.config.consent_timeout,
            );
            if !s.disconnected {
                timers.set(
                    Timer::Disconnected,
                    s.last_response + self.config.disconnected_timeout,
                );
            }
        }
        if self.role == Role::Controlling
            && self.nominating.is_none()
            && self.selected_is_old_or_none()
        {
            if let Some(f) = self.first_valid_at {
                timers.set(Timer::Nomination, f + self.config.nomination_timeout);
            }
        }
        timers.next()
    }

    fn selected_is_old_or_none(&self) -> bool {
        self.selected.is_none() || self.restarting
    }

    // ---------------------------------------------------------------- B. input

    /// Advances timers: paced checks (one new transaction per Ta), retransmissions,
    /// nomination, consent checks and consent expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.check_time(now).is_err() {
            return;
        }
        self.retransmit(now);
        if self.has_paced_work() && self.last_paced.is_none_or(|l| now >= l + self.config.ta) {
            self.paced_send(now);
        }
        self.maybe_nominate(now);
        self.consent(now);
        self.update_state(now);
    }

    /// Handles a datagram received on local socket `destination` from `source`. Feed only
    /// STUN here ([`crate::classify`]).
    ///
    /// # Errors
    /// The datagram was dropped: [`Error::Malformed`]; [`PeerMisbehaved::BadIntegrity`] and
    /// [`PeerMisbehaved::BadFingerprint`] (counted in [`Stats`]);
    /// [`PeerMisbehaved::UnexpectedResponse`]; [`PeerMisbehaved::UnknownUsername`],
    /// [`PeerMisbehaved::MissingAttribute`] and [`PeerMisbehaved::UnknownAttributes`]
    /// (answered with 401, 400 and 420); [`ApiMisuse::UnknownLocalAddress`];
    /// [`ApiMisuse::TimeWentBackwards`]. The agent stays usable.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        packet: &[u8],
    ) -> Result<(), Error> {
        self.check_time(now)?;
        let _span = tracing::trace_span!("recv", source = %Pii(source)).entered();
        let d = match stun::decode(packet) {
            Ok(d) => d,
            Err(e) => {
                match &e {
                    Error::PeerMisbehaved(PeerMisbehaved::BadFingerprint) => {
                        self.stats.bad_fingerprint += 1
                    }
                    _ => self.stats.malformed += 1,
                }
                trace!(%e, "dropped");
                return Err(e);
            }
        };
        let r = match d.class {
            Class::Request => self.handle_request(now, source, destination, &d),
            Class::Indication => Ok(()),
            Class::Success | Class::Error => self.handle_response(now, source, destination, &d),
        };
        self.maybe_nominate(now);
        self.update_state(now);
        r
    }

    fn respond(&mut self, source: SocketAddr, destination: SocketAddr, contents: Vec<u8>) {
        self.transmits.push_back(Transmit {
            source: destination,
            destination: source,
            contents,
        });
    }

    fn handle_request(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        d: &Decoded<'_>,
    ) -> Result<(), Error> {
        let (Some(user), true) = (d.username.as_deref(), d.has_integrity) else {
            self.respond(source, destination, stun::encode_error(d, 400, &[], None));
            return Err(PeerMisbehaved::MissingAttribute("USERNAME or MESSAGE-INTEGRITY").into());
        };
        let lfrag = user.split(':').next().unwrap_or_default();
        let pwd = if lfrag == self.local_creds.ufrag {
            self.local_creds.pwd.clone()
        } else if let Some(o) = self.old_local_creds.as_ref().filter(|o| o.ufrag == lfrag) {
            o.pwd.clone()
        } else {
            self.respond(source, destination, stun::encode_error(d, 401, &[], None));
            return Err(PeerMisbehaved::UnknownUsername.into());
        };
        if !d.integrity_ok(&pwd) {
            self.stats.bad_integrity += 1;
            trace!("request with bad integrity dropped");
            return Err(PeerMisbehaved::BadIntegrity.into());
        }
        if !d.unknown_required.is_empty() {
            self.respond(
                source,
                destination,
                stun::encode_error(d, 420, &d.unknown_required, Some(&pwd)),
            );
            return Err(PeerMisbehaved::UnknownAttributes.into());
        }
        let Some(priority) = d.priority else {
            self.respond(
                source,
                destination,
                stun::encode_error(d, 400, &[], Some(&pwd)),
            );
            return Err(PeerMisbehaved::MissingAttribute("PRIORITY").into());
        };
        let Some(local) = self.locals.iter().position(|c| {
            c.addr == destination && matches!(c.kind, CandidateKind::Host | CandidateKind::Relayed)
        }) else {
            return Err(ApiMisuse::UnknownLocalAddress.into());
        };
        self.stats.requests_received += 1;

        // Role conflict, §7.3.1.1.
        match (self.role, d.controlling, d.controlled) {
            (Role::Controlling, Some(theirs), _) => {
                if self.tie_breaker >= theirs {
                    debug!("role conflict: answering 487");
                    self.respond(
                        source,
                        destination,
                        stun::encode_error(d, 487, &[], Some(&pwd)),
                    );
                    return Ok(());
                }
                self.set_role(Role::Controlled);
            }
            (Role::Controlled, _, Some(theirs)) => {
                if self.tie_breaker >= theirs {
                    self.set_role(Role::Controlling);
                } else {
                    debug!("role conflict: answering 487");
                    self.respond(
                        source,
                        destination,
                        stun::encode_error(d, 487, &[], Some(&pwd)),
                    );
                    return Ok(());
                }
            }
            _ => {}
        }
        self.respond(source, destination, stun::encode_success(d, source, &pwd));
        trace!(
            remote = %Pii(source),
            use_candidate = d.use_candidate,
            nomination = ?d.nomination,
            "check answered"
        );

        // A request with the pre-restart ufrag is a consent check on the old pair.
        if lfrag != self.local_creds.ufrag {
            return Ok(());
        }

        // Peer-reflexive remote candidate, §7.3.1.3.
        let remote = match self.remotes.iter().position(|r| r.addr == source) {
            Some(r) => r,
            None => {
                let foundation = format!("prflx{}", self.rng.gen::<u32>());
                debug!(source = %Pii(source), "peer-reflexive remote candidate");
                self.remotes.push(Candidate {
                    foundation,
                    component: COMPONENT_RTP,
                    priority,
                    addr: source,
                    kind: CandidateKind::PeerReflexive,
                    base: source,
                    related: None,
                });
                self.remotes.len() - 1
            }
        };
        let Some(p) = self.add_pair(local, remote) else {
            return Ok(());
        };

        // Triggered checks, §7.3.1.4.
        match self.pairs[p].state {
            PairState::Succeeded => {}
            PairState::InProgress => {
                if let Some(txid) = self.pairs[p].tx {
                    if let Some(t) = self.transactions.iter_mut().find(|t| t.id == txid) {
                        t.cancelled = true;
                    }
                }
                self.enqueue_triggered(p);
            }
            PairState::Failed => {
                debug!(remote = %Pii(source), "check on a failed pair: back to Waiting");
                self.enqueue_triggered(p);
            }
            PairState::Waiting | PairState::Frozen => self.enqueue_triggered(p),
        }

        // Nomination when controlled, §7.3.1.5, plus renomination.
        if self.role == Role::Controlled && (d.use_candidate || d.nomination.is_some()) {
            let accept = match d.nomination {
                Some(v) => match self.max_nomination {
                    Some(max) if v <= max => false,
                    _ => {
                        self.max_nomination = Some(v);
                        true
                    }
                },
                None => self.seen_use_candidate_tx.insert(d.txid),
            };
            if accept {
                debug!(remote = %Pii(source), nomination = ?d.nomination, "nominated by peer");
                self.pending_nomination = Some(p);
                if self.pairs[p].state == PairState::Succeeded {
                    let v = self.pairs[p].valid_pair.unwrap_or(p);
                    self.select(now, v);
                }
            }
        }
        Ok(())
    }

    fn enqueue_triggered(&mut self, p: usize) {
        self.pairs[p].state = PairState::Waiting;
        if !self.triggered.contains(&p) {
            self.triggered.push_back(p);
        }
    }

    fn handle_response(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        d: &Decoded<'_>,
    ) -> Result<(), Error> {
        let Some(ti) = self.transactions.iter().position(|t| t.id == d.txid) else {
            self.stats.unexpected_responses += 1;
            return Err(PeerMisbehaved::UnexpectedResponse.into());
        };
        let kind = self.transactions[ti].kind.clone();
        let pwd = match &kind {
            TxKind::Gather { .. } => None,
            TxKind::Consent => self.selected.as_ref().map(|s| s.remote.pwd.clone()),
            TxKind::Check { .. } => self.remote_creds.as_ref().map(|c| c.pwd.clone()),
        };
        if let Some(pwd) = &pwd {
            let unauthenticated_error = d.class == Class::Error
                && !d.has_integrity
                && matches!(d.error_code, Some(400 | 401 | 420));
            if !unauthenticated_error && !d.integrity_ok(pwd) {
                self.stats.bad_integrity += 1;
                return Err(PeerMisbehaved::BadIntegrity.into());
            }
        }
        let tx = self.transactions.remove(ti);
        match kind {
            TxKind::Gather { local } => {
                if let (Class::Success, Some(mapped)) = (d.class, d.xor_mapped) {
                    self.add_server_reflexive(local, mapped, tx.destination);
                }
                self.maybe_gathering_complete();
            }
            TxKind::Consent => {
                if let Some(s) = &mut self.selected {
                    s.consent_tx = None;
                    if d.class == Class::Success {
                        s.last_response = now;
                        s.disconnected = false;
                    }
                }
            }
            TxKind::Check {
                pair,
                use_candidate,
                prflx_priority,
                controlling,
            } => {
                self.check_response(
                    now,
                    source,
                    destination,
                    d,
                    &tx,
                    pair,
                    use_candidate,
                    prflx_priority,
                    controlling,
                );
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn check_response(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        d: &Decoded<'_>,
        tx: &Transaction,
        p: usize,
        use_candidate: bool,
        prflx_priority: u32,
        controlling: bool,
    ) {
        if self.pairs[p].tx == Some(tx.id) {
            self.pairs[p].tx = None;
        }
        if d.class == Class::Error {
            if d.error_code == Some(487) {
                // §7.2.5.1: switch to the role opposite to what we claimed, re-check.
                self.set_role(if controlling {
                    Role::Controlled
                } else {
                    Role::Controlling
                });
                self.enqueue_triggered(p);
            } else {
                debug!(code = ?d.error_code, "check failed with error response");
                self.fail_pair(p);
            }
            return;
        }
        // §7.2.5.2.1: non-symmetric addresses fail the check.
        if source != tx.destination || destination != tx.source {
            debug!("non-symmetric response: pair failed");
            self.fail_pair(p);
            return;
        }
        let Some(mapped) = d.xor_mapped else {
            self.fail_pair(p);
            return;
        };
        let remote = self.pairs[p].remote;
        let base = self.locals[self.pairs[p].local].base;
        // §7.2.5.3.1: the mapped address names the local candidate of the valid pair.
        let local = match self
            .locals
            .iter()
            .position(|c| c.addr == mapped && c.base == base)
        {
            Some(l) => l,
            None => {
                let foundation = self.next_foundation();
                debug!(mapped = %Pii(mapped), "peer-reflexive local candidate");
                self.locals.push(Candidate {
                    foundation,
                    component: COMPONENT_RTP,
                    priority: prflx_priority,
                    addr: mapped,
                    kind: CandidateKind::PeerReflexive,
                    base,
                    related: None,
                });
                self.locals.len() - 1
            }
        };
        let v = if local == self.pairs[p].local {
            p
        } else {
            match self
                .pairs
                .iter()
                .position(|q| q.local == local && q.remote == remote)
            {
                Some(v) => v,
                None => {
                    let foundation = self.pairs[p].foundation.clone();
                    self.pairs.push(Pair {
                        local,
                        remote,
                        priority: self.priority_of(local, remote),
                        foundation,
                        state: PairState::Succeeded,
                        valid: false,
                        valid_pair: None,
                        nominate: false,
                        nominated: false,
                        tx: None,
                    });
                    self.pairs.len() - 1
                }
            }
        };
        trace!(remote = %Pii(source), "check succeeded");
        self.pairs[p].state = PairState::Succeeded;
        self.pairs[p].valid_pair = Some(v);
        self.pairs[v].state = PairState::Succeeded;
        self.pairs[v].valid = true;
        self.first_valid_at.get_or_insert(now);
        // §7.2.5.3.3: unfreeze pairs of the same foundation.
        let f = self.pairs[p].foundation.clone();
        for q in &mut self.pairs {
            if q.foundation == f && q.state == PairState::Frozen {
                q.state = PairState::Waiting;
            }
        }
        // A pending nomination of this pair still has to go out (the response was to an
        // earlier check without USE-CANDIDATE).
        for q in [p, v] {
            if self.pairs[q].nominate && !use_candidate && self.pairs[q].tx.is_none() {
                self.pairs[q].state = PairState::Waiting;
                if !self.triggered.contains(&q) {
                    self.triggered.push_front(q);
                }
            }
        }
        match self.role {
            Role::Controlling if use_candidate => {
                self.nominating = None;
                self.pairs[p].nominate = false;
                self.pairs[v].nominate = false;
                self.select(now, v);
            }
            Role::Controlled
                if self.pending_nomination == Some(p) || self.pending_nomination == Some(v) =>
            {
                self.select(now, v);
            }
            _ => {}
        }
    }

    fn fail_pair(&mut self, p: usize) {
        self.pairs[p].state = PairState::Failed;
        self.pairs[p].tx = None;
        if self.nominating == Some(p) {
            self.nominating = None;
        }
        self.pairs[p].nominate = false;
    }

    fn add_server_reflexive(&mut self, local: usize, mapped: SocketAddr, server: SocketAddr) {
        let host = self.locals[local].clone();
        if mapped == host.addr || self.locals.iter().any(|c| c.addr == mapped) {
            return; // §5.1.3: redundant
        }
        let key = format!("srflx {} {}", host.base.ip(), server);
        let _ = key;
        let foundation = self.next_foundation();
        let pref = (host.priority >> 8) as u16;
        let cand = Candidate {
            foundation,
            component: COMPONENT_RTP,
            priority: candidate_priority(CandidateKind::ServerReflexive, pref, COMPONENT_RTP),
            addr: mapped,
            kind: CandidateKind::ServerReflexive,
            base: host.base,
            related: Some(host.addr),
        };
        self.push_local(cand);
    }

    fn select(&mut self, now: Instant, v: usize) {
        self.pairs[v].nominated = true;
        let pair = SelectedPair {
            local: self.locals[self.pairs[v].local].clone(),
            remote: self.remotes[self.pairs[v].remote].clone(),
        };
        // After an ICE restart the same pair may win again: re-select it with the new
        // credentials (and report it, so the driver knows the restart completed).
        if !self.restarting && self.selected.as_ref().is_some_and(|s| s.pair == pair) {
            return;
        }
        let Some(remote) = self.remote_creds.clone() else {
            return;
        };
        debug!(local = %Pii(pair.local.addr), remote = %Pii(pair.remote.addr), "selected pair");
        let jitter = self.consent_jitter();
        self.selected = Some(SelectedState {
            pair: pair.clone(),
            local_ufrag: self.local_creds.ufrag.clone(),
            remote,
            last_response: now,
            next_consent: now + jitter,
            consent_tx: None,
            disconnected: false,
        });
        // The restart (if any) completed: stop answering the old credentials.
        self.old_local_creds = None;
        self.restarting = false;
        self.consent_lost = false;
        self.transactions
            .retain(|t| !matches!(t.kind, TxKind::Consent));
        self.events.push_back(Event::SelectedPairChanged(pair));
    }

    fn consent_jitter(&mut self) -> Duration {
        // RFC 7675 §5.1: randomised to 0.8–1.2 of the interval.
        let f: f64 = self.rng.gen_range(0.8..1.2);
        self.config.consent_interval.mul_f64(f)
    }

    // ---------------------------------------------------------------- timers

    fn can_check(&self) -> bool {
        self.remote_creds.is_some()
    }

    fn has_paced_work(&self) -> bool {
        !self.gather_queue.is_empty()
            || (self.can_check()
                && (!self.triggered.is_empty()
                    || self
                        .pairs
                        .iter()
                        .any(|p| matches!(p.state, PairState::Waiting | PairState::Frozen))))
    }

    fn paced_send(&mut self, now: Instant) {
        if let Some((local, server)) = self.gather_queue.pop_front() {
            let source = self.locals[local].base;
            let id = self.new_txid();
            let bytes = stun::encode_request(&stun::Request {
                txid: id,
                ..Default::default()
            });
            self.start_tx(now, id, TxKind::Gather { local }, bytes, source, server);
            self.last_paced = Some(now);
            return;
        }
        if !self.can_check() {
            return;
        }
        let next = loop {
            match self.triggered.pop_front() {
                Some(p) if self.pairs[p].state == PairState::Waiting => break Some(p),
                Some(_) => continue,
                None => break None,
            }
        };
        let next = next.or_else(|| {
            self.pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| p.state == PairState::Waiting)
                .max_by_key(|(_, p)| p.priority)
                .map(|(i, _)| i)
        });
        let next = next.or_else(|| {
            self.pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| p.state == PairState::Frozen)
                .max_by_key(|(_, p)| p.priority)
                .map(|(i, _)| i)
        });
        if let Some(p) = next {
            self.send_check(now, p);
            self.last_paced = Some(now);
        }
    }

    fn new_txid(&mut self) -> u128 {
        self.rng.gen::<u128>() & ((1u128 << 96) - 1)
    }

    fn send_check(&mut self, now: Instant, p: usize) {
        let Some(remote) = self.remote_creds.clone() else {
            return;
        };
        let local = &self.locals[self.pairs[p].local];
        let prflx_priority = candidate_priority(
            CandidateKind::PeerReflexive,
            ((local.priority >> 8) & 0xFFFF) as u16,
            COMPONENT_RTP,
        );
        let (source, destination) = (local.base, self.remotes[self.pairs[p].remote].addr);
        let use_candidate = self.role == Role::Controlling && self.pairs[p].nominate;
        let controlling = self.role == Role::Controlling;
        let id = self.new_txid();
        let bytes = stun::encode_request(&stun::Request {
            txid: id,
            auth: Some((
                format!("{}:{}", remote.ufrag, self.local_creds.ufrag),
                &remote.pwd,
            )),
            priority: Some(prflx_priority),
            use_candidate,
            role: Some((controlling, self.tie_breaker)),
            nomination: None,
        });
        trace!(destination = %Pii(destination), use_candidate, "check");
        self.stats.checks_sent += 1;
        self.pairs[p].state = PairState::InProgress;
        self.pairs[p].tx = Some(id);
        self.start_tx(
            now,
            id,
            TxKind::Check {
                pair: p,
                use_candidate,
                prflx_priority,
                controlling,
            },
            bytes,
            source,
            destination,
        );
    }

    fn start_tx(
        &mut self,
        now: Instant,
        id: u128,
        kind: TxKind,
        bytes: Vec<u8>,
        source: SocketAddr,
        destination: SocketAddr,
    ) {
        self.transmits.push_back(Transmit {
            source,
            destination,
            contents: bytes.clone(),
        });
        let active = self
            .pairs
            .iter()
            .filter(|p| matches!(p.state, PairState::Waiting | PairState::InProgress))
            .count() as u32;
        let rto = self.config.rto.max(self.config.ta * active);
        self.transactions.push(Transaction {
            id,
            kind,
            bytes,
            source,
            destination,
            transmissions: 1,
            next: now + rto,
            rto,
            cancelled: false,
        });
    }

    fn retransmit(&mut self, now: Instant) {
        let mut timed_out = Vec::new();
        for t in &mut self.transactions {
            if t.next > now {
                continue;
            }
            if t.cancelled || t.transmissions > self.config.max_retransmits {
                timed_out.push(t.id);
                continue;
            }
            t.transmissions += 1;
            t.rto = (t.rto * 2).min(self.config.max_rto.max(t.rto));
            t.next = now
                + if t.transmissions > self.config.max_retransmits {
                    self.config.max_rto
                } else {
                    t.rto
                };
            self.stats.retransmissions += 1;
            self.transmits.push_back(Transmit {
                source: t.source,
                destination: t.destination,
                contents: t.bytes.clone(),
            });
        }
        for id in timed_out {
            let Some(i) = self.transactions.iter().position(|t| t.id == id) else {
                continue;
            };
            let t = self.transactions.remove(i);
            match t.kind {
                TxKind::Check { pair, .. } => {
                    if self.pairs[pair].tx == Some(id) {
                        debug!(remote = %Pii(t.destination), "check timed out: pair failed");
                        self.fail_pair(pair);
                    }
                }
                TxKind::Consent => {
                    if let Some(s) = &mut self.selected {
                        s.consent_tx = None;
                    }
                }
                TxKind::Gather { .. } => {
                    debug!(server = %Pii(t.destination), "STUN server did not answer");
                    self.maybe_gathering_complete();
                }
            }
        }
    }

    fn maybe_nominate(&mut self, now: Instant) {
        if self.role != Role::Controlling
            || self.nominating.is_some()
            || !self.selected_is_old_or_none()
        {
            return;
        }
        let Some(best_valid) = self
            .pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.valid)
            .max_by_key(|(_, p)| p.priority)
            .map(|(i, _)| i)
        else {
            return;
        };
        let best_pending = self
            .pairs
            .iter()
            .filter(|p| {
                matches!(
                    p.state,
                    PairState::Waiting | PairState::Frozen | PairState::InProgress
                )
            })
            .map(|p| p.priority)
            .max();
        let timeout = self
            .first_valid_at
            .is_some_and(|f| now >= f + self.config.nomination_timeout);
        if best_pending.is_none_or(|b| b < self.pairs[best_valid].priority) || timeout {
            debug!("nominating");
            self.nominating = Some(best_valid);
            self.pairs[best_valid].nominate = true;
            self.triggered.push_front(best_valid);
            self.pairs[best_valid].state = PairState::Waiting;
        }
    }

    fn consent(&mut self, now: Instant) {
        let Some(s) = &self.selected else {
            return;
        };
        if now >= s.last_response + self.config.consent_timeout {
            warn!("consent lost");
            self.selected = None;
            self.transactions
                .retain(|t| !matches!(t.kind, TxKind::Consent));
            self.events.push_back(Event::ConsentLost);
            self.consent_lost = true;
            self.set_state(ConnectionState::Failed);
            return;
        }
        if !s.disconnected && now >= s.last_response + self.config.disconnected_timeout {
            if let Some(s) = &mut self.selected {
                s.disconnected = true;
            }
        }
        let Some(s) = &self.selected else {
            return;
        };
        if s.consent_tx.is_none() && now >= s.next_consent {
            let s = s.clone();
            let id = self.new_txid();
            let controlling = self.role == Role::Controlling;
            let local = &s.pair.local;
            let prflx = candidate_priority(
                CandidateKind::PeerReflexive,
                ((local.priority >> 8) & 0xFFFF) as u16,
                COMPONENT_RTP,
            );
            let bytes = stun::encode_request(&stun::Request {
                txid: id,
                auth: Some((
                    format!("{}:{}", s.remote.ufrag, s.local_ufrag),
                    &s.remote.pwd,
                )),
                priority: Some(prflx),
                use_candidate: false,
                role: Some((controlling, self.tie_breaker)),
                nomination: None,
            });
            let (src, dst) = (local.base, s.pair.remote.addr);
            let jitter = self.consent_jitter();
            if let Some(s) = &mut self.selected {
                s.consent_tx = Some(id);
                s.next_consent = now + jitter;
            }
            self.start_tx(now, id, TxKind::Consent, bytes, src, dst);
        }
    }

    fn set_state(&mut self, state: ConnectionState) {
        if self.state != state {
            debug!(?state, "ice state");
            self.state = state;
            self.events.push_back(Event::StateChanged(state));
        }
    }

    fn update_state(&mut self, _now: Instant) {
        let state = if let Some(s) = &self.selected {
            if s.disconnected {
                ConnectionState::Disconnected
            } else if self.remote_eoc
                && !self.restarting
                && !self.pairs.iter().any(|p| {
                    matches!(
                        p.state,
                        PairState::Waiting | PairState::Frozen | PairState::InProgress
                    )
                })
            {
                ConnectionState::Completed
            } else {
                ConnectionState::Connected
            }
        } else if self.consent_lost {
            ConnectionState::Failed
        } else if self.pairs.is_empty() && self.remotes.is_empty() {
            if self.state == ConnectionState::Failed
                || (self.remote_creds.is_some() && self.remote_eoc)
            {
                ConnectionState::Failed
            } else {
                ConnectionState::New.max_with(self.state)
            }
        } else if self.remote_eoc && self.pairs.iter().all(|p| p.state == PairState::Failed) {
            ConnectionState::Failed
        } else {
            ConnectionState::Checking
        };
        self.set_state(state);
    }
}

/// The agent's timers ([STYLE.md R2]: an enum-indexed table; `poll_timeout` is its minimum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Next paced STUN transaction (Ta, RFC 8445 §6.1.4.2).
    Pacing,
    /// Earliest retransmission or transaction timeout.
    Retransmission,
    /// Controlling: nominate the best valid pair (§8.1.1).
    Nomination,
    /// Next consent check (RFC 7675 §5.1).
    ConsentCheck,
    /// Consent expires.
    ConsentExpiry,
    /// The selected pair counts as disconnected.
    Disconnected,
}

#[derive(Debug, Default)]
struct TimerTable([Option<Instant>; 6]);

impl TimerTable {
    fn set(&mut self, timer: Timer, at: Instant) {
        self.0[timer as usize] = Some(at);
    }

    fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
}

impl ConnectionState {
    /// `New` never comes back once checks started.
    fn max_with(self, current: Self) -> Self {
        if current == Self::New {
            self
        } else {
            current
        }
    }
}
