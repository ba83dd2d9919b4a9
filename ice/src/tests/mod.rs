//! In-memory pair harness with virtual time and a seeded network emulator
//! ([STYLE.md R11/R12]).

// Tests take `Instant::now()` only as the epoch of virtual time.
#![allow(clippy::disallowed_methods)]

mod netem;
mod scenarios;
mod stun_peer;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

pub(crate) use netem::{Nat, Netem};

use crate::{Agent, Candidate, Config, ConnectionState, Event, Role};

/// Which side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Side {
    A,
    B,
}

impl Side {
    pub(crate) fn other_pub(self) -> Self {
        self.other()
    }

    fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }
}

/// Signalling action delivered to one side at a virtual time.
#[derive(Debug, Clone)]
pub(crate) enum Signal {
    Candidate(Candidate),
    Credentials(String, String),
    EndOfCandidates,
}

/// How the harness forwards gathered candidates to the other side.
#[derive(Debug, Clone)]
pub(crate) struct Signalling {
    /// Forward candidates automatically.
    pub(crate) forward: bool,
    /// Random extra delay per trickled candidate (uniform in `0..=max`).
    pub(crate) trickle_jitter: Duration,
    /// Send a component-2 copy of every candidate before it.
    pub(crate) add_component_two: bool,
    /// Fixed delay of every signalling message.
    pub(crate) delay: Duration,
}

impl Default for Signalling {
    fn default() -> Self {
        Self {
            forward: true,
            trickle_jitter: Duration::ZERO,
            add_component_two: false,
            delay: Duration::from_millis(10),
        }
    }
}

pub(crate) struct Peer {
    pub(crate) agent: Agent,
    pub(crate) events: Vec<(Instant, Event)>,
    pub(crate) signalling: Signalling,
}

pub(crate) struct Pair {
    pub(crate) start: Instant,
    pub(crate) now: Instant,
    pub(crate) a: Peer,
    pub(crate) b: Peer,
    pub(crate) net: Netem,
    pending_signals: BTreeMap<(Instant, u64), (Side, Signal)>,
    seq: u64,
    rng: ChaCha20Rng,
}

pub(crate) fn config(seed: u64) -> Config {
    let mut c = Config::default();
    c.rng_seed_u64(seed);
    c
}

pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

impl Pair {
    /// Two agents, A controlling and B controlled, on `net`. Credentials are exchanged at
    /// once; hosts are added from `net`'s host lists.
    pub(crate) fn new(seed: u64, net: Netem, ca: Config, cb: Config) -> Self {
        let start = Instant::now();
        Self::with_roles(
            seed,
            net,
            ca,
            cb,
            Role::Controlling,
            Role::Controlled,
            start,
        )
    }

    pub(crate) fn with_roles(
        seed: u64,
        net: Netem,
        ca: Config,
        cb: Config,
        ra: Role,
        rb: Role,
        start: Instant,
    ) -> Self {
        let a = Agent::new(ca, ra, start);
        let b = Agent::new(cb, rb, start);
        let mut p = Self {
            start,
            now: start,
            a: Peer {
                agent: a,
                events: Vec::new(),
                signalling: Signalling::default(),
            },
            b: Peer {
                agent: b,
                events: Vec::new(),
                signalling: Signalling::default(),
            },
            net,
            pending_signals: BTreeMap::new(),
            seq: 0,
            rng: ChaCha20Rng::seed_from_u64(seed ^ 0x5eed),
        };
        p.net.reseed(seed);
        p
    }

    pub(crate) fn peer(&mut self, s: Side) -> &mut Peer {
        match s {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// Exchange credentials now (through signalling delay) and add host candidates.
    pub(crate) fn start_default(&mut self) {
        self.send_credentials(Side::A);
        self.send_credentials(Side::B);
        self.add_hosts(Side::A);
        self.add_hosts(Side::B);
    }

    pub(crate) fn send_credentials(&mut self, from: Side) {
        let c = self.peer(from).agent.local_credentials().clone();
        let d = self.peer(from).signalling.delay;
        self.schedule(from.other(), d, Signal::Credentials(c.ufrag, c.pwd));
    }

    pub(crate) fn add_hosts(&mut self, s: Side) {
        let now = self.now;
        for h in self.net.hosts(s) {
            self.peer(s).agent.add_local_host(now, h).expect("host");
        }
        self.peer(s).agent.finish_gathering(now);
    }

    pub(crate) fn schedule(&mut self, to: Side, delay: Duration, sig: Signal) {
        self.seq += 1;
        self.pending_signals
            .insert((self.now + delay, self.seq), (to, sig));
    }

    fn drain(&mut self) {
        for s in [Side::A, Side::B] {
            while let Some(t) = self.peer(s).agent.poll_transmit() {
                let now = self.now;
                self.net.send(now, s, t.source, t.destination, t.contents);
            }
            let now = self.now;
            while let Some(ev) = self.peer(s).agent.poll_event() {
                if let Event::CandidateGathered(c) = &ev {
                    let sig = self.peer(s).signalling.clone();
                    if sig.forward {
                        let jitter = if sig.trickle_jitter.is_zero() {
                            Duration::ZERO
                        } else {
                            let ms = self
                                .rng
                                .gen_range(0..=sig.trickle_jitter.as_millis() as u64);
                            Duration::from_millis(ms)
                        };
                        if sig.add_component_two {
                            let mut c2 = c.clone();
                            c2.component = 2;
                            c2.addr.set_port(c2.addr.port() + 1);
                            c2.priority -= 1;
                            self.schedule(s.other(), sig.delay + jitter, Signal::Candidate(c2));
                        }
                        self.schedule(s.other(), sig.delay + jitter, Signal::Candidate(c.clone()));
                    }
                }
                self.peer(s).events.push((now, ev));
            }
        }
    }

    fn next_time(&self) -> Option<Instant> {
        [
            self.a.agent.poll_timeout(),
            self.b.agent.poll_timeout(),
            self.net.next_delivery(),
            self.pending_signals.keys().next().map(|k| k.0),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Deliver what is due, then advance `now` to the next deadline. Returns false when idle.
    pub(crate) fn step(&mut self) -> bool {
        self.drain();
        let Some(next) = self.next_time() else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        while let Some((&(t, k), _)) = self.pending_signals.iter().next() {
            if t > now {
                break;
            }
            let (to, sig) = self.pending_signals.remove(&(t, k)).expect("present");
            let agent = &mut self.peer(to).agent;
            match sig {
                Signal::Candidate(c) => agent.add_remote_candidate(now, c).expect("candidate"),
                Signal::Credentials(u, p) => agent
                    .set_remote_credentials(now, &u, &p)
                    .expect("credentials"),
                Signal::EndOfCandidates => agent.end_of_remote_candidates(now),
            }
        }
        while let Some(d) = self.net.poll_delivery(now) {
            let agent = &mut self.peer(d.to).agent;
            let _ = agent.handle_receive(now, d.source, d.destination, &d.contents);
        }
        for s in [Side::A, Side::B] {
            if self.peer(s).agent.poll_timeout().is_some_and(|t| t <= now) {
                self.peer(s).agent.handle_timeout(now);
            }
        }
        self.drain();
        true
    }

    /// Step until `until` (virtual) or idle; panics after `max_steps` (livelock guard).
    pub(crate) fn drive_for(&mut self, d: Duration) {
        let end = self.now + d;
        let mut steps = 0u32;
        while self.next_time().is_some_and(|t| t <= end) {
            self.step();
            steps += 1;
            assert!(steps < 2_000_000, "livelock");
        }
        self.now = self.now.max(end);
    }

    /// Step until `pred` holds or `limit` of virtual time passes; returns the elapsed time.
    pub(crate) fn drive_until(
        &mut self,
        limit: Duration,
        mut pred: impl FnMut(&Self) -> bool,
    ) -> Option<Duration> {
        let end = self.now + limit;
        let mut steps = 0u32;
        loop {
            if pred(self) {
                return Some(self.now - self.start);
            }
            match self.next_time() {
                Some(t) if t <= end => {
                    self.step();
                }
                _ => return None,
            }
            steps += 1;
            assert!(steps < 2_000_000, "livelock");
        }
    }

    /// Both agents selected a pair and the two selections are the same path: what A sends
    /// to its selected remote reaches B's selected local base, and vice versa.
    pub(crate) fn both_connected(&self) -> bool {
        let (Some(x), Some(y)) = (self.a.agent.selected_pair(), self.b.agent.selected_pair())
        else {
            return false;
        };
        self.net.resolve(Side::B, x.remote.addr) == Some(y.local.base)
            && self.net.resolve(Side::A, y.remote.addr) == Some(x.local.base)
    }

    pub(crate) fn state(&self, s: Side) -> ConnectionState {
        match s {
            Side::A => self.a.agent.state(),
            Side::B => self.b.agent.state(),
        }
    }
}
