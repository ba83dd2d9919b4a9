//! A hand-driven STUN peer: crafts requests (NOMINATION values, bad integrity, unknown
//! attributes) and answers the agent's checks, for protocol-level scenario tests.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::stun::{self, Class, Request};
use crate::{Agent, Transmit};

pub(crate) const PEER_UFRAG: &str = "peerufrag";
pub(crate) const PEER_PWD: &str = "peerpasswordpeerpassword";

pub(crate) struct FakePeer {
    pub(crate) txid: u128,
    pub(crate) tie_breaker: u64,
    /// Responses the agent sent to our requests.
    pub(crate) responses: Vec<(u128, Class, Option<u16>)>,
    /// Requests the agent sent (checks), with the time.
    pub(crate) checks_seen: Vec<(Instant, SocketAddr)>,
    /// Answer the agent's checks.
    pub(crate) answer: bool,
}

impl FakePeer {
    pub(crate) fn new() -> Self {
        Self {
            txid: 1000,
            tie_breaker: 1,
            responses: Vec::new(),
            checks_seen: Vec::new(),
            answer: true,
        }
    }

    /// A Binding request from the peer to `agent` with its credentials.
    pub(crate) fn request(
        &mut self,
        agent: &Agent,
        use_candidate: bool,
        nomination: Option<u32>,
        extra: &[(u16, Vec<u8>)],
    ) -> (u128, Vec<u8>) {
        self.txid += 1;
        let c = agent.local_credentials();
        let bytes = stun::encode_request_with(
            &Request {
                txid: self.txid,
                auth: Some((format!("{}:{}", c.ufrag, PEER_UFRAG), &c.pwd)),
                priority: Some(1_845_501_695),
                use_candidate,
                role: Some((true, self.tie_breaker)),
                nomination,
            },
            extra,
        );
        (self.txid, bytes)
    }

    /// Sends `bytes` from `from` to the agent's `to`, then pumps.
    pub(crate) fn send(
        &mut self,
        agent: &mut Agent,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), crate::Error> {
        let r = agent.handle_receive(now, from, to, bytes);
        self.pump(agent, now);
        r
    }

    fn on_transmit(&mut self, agent: &mut Agent, now: Instant, t: Transmit) {
        let Ok(d) = stun::decode(&t.contents) else {
            return;
        };
        match d.class {
            Class::Request => {
                self.checks_seen.push((now, t.destination));
                if self.answer {
                    let resp = stun::encode_success(&d, t.source, PEER_PWD);
                    let _ = agent.handle_receive(now, t.destination, t.source, &resp);
                }
            }
            Class::Success | Class::Error => self.responses.push((d.txid, d.class, d.error_code)),
            Class::Indication => {}
        }
    }

    /// Delivers everything the agent sends, answering its checks (zero delay).
    pub(crate) fn pump(&mut self, agent: &mut Agent, now: Instant) {
        while let Some(t) = agent.poll_transmit() {
            self.on_transmit(agent, now, t);
        }
    }

    /// Runs the agent's timers for `d` of virtual time, pumping all along.
    pub(crate) fn run(&mut self, agent: &mut Agent, now: &mut Instant, d: Duration) {
        let end = *now + d;
        self.pump(agent, *now);
        while let Some(t) = agent.poll_timeout() {
            if t > end {
                break;
            }
            *now = t.max(*now);
            agent.handle_timeout(*now);
            self.pump(agent, *now);
        }
        *now = end;
    }

    pub(crate) fn response_to(&self, txid: u128) -> Option<(Class, Option<u16>)> {
        self.responses
            .iter()
            .find(|r| r.0 == txid)
            .map(|r| (r.1, r.2))
    }
}
