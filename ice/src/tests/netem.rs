//! A seeded, sans-IO network emulator: loss, delay with jitter (hence reordering),
//! duplication, NAT boxes (full-cone, port-restricted, symmetric) and STUN servers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::Side;
use crate::stun;

/// NAT behaviour (RFC 4787 terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nat {
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestricted,
    /// Address-and-port-dependent mapping and filtering.
    Symmetric,
}

#[derive(Debug)]
struct NatBox {
    kind: Nat,
    public: IpAddr,
    next_port: u16,
    mappings: HashMap<(SocketAddr, Option<SocketAddr>), u16>,
    reverse: HashMap<u16, SocketAddr>,
    permissions: HashSet<(u16, SocketAddr)>,
}

impl NatBox {
    fn outbound(&mut self, src: SocketAddr, dst: SocketAddr) -> SocketAddr {
        let key = (src, (self.kind == Nat::Symmetric).then_some(dst));
        let port = match self.mappings.get(&key) {
            Some(p) => *p,
            None => {
                let p = self.next_port;
                self.next_port += 1;
                self.mappings.insert(key, p);
                self.reverse.insert(p, src);
                p
            }
        };
        self.permissions.insert((port, dst));
        SocketAddr::new(self.public, port)
    }

    fn inbound(&self, from: SocketAddr, to: SocketAddr) -> Option<SocketAddr> {
        if to.ip() != self.public {
            return None;
        }
        let private = *self.reverse.get(&to.port())?;
        match self.kind {
            Nat::FullCone => Some(private),
            Nat::PortRestricted | Nat::Symmetric => self
                .permissions
                .contains(&(to.port(), from))
                .then_some(private),
        }
    }
}

/// A datagram handed to an agent.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) to: Side,
    pub(crate) source: SocketAddr,
    pub(crate) destination: SocketAddr,
    pub(crate) contents: Vec<u8>,
}

#[derive(Debug, Clone)]
struct InFlight {
    /// `None`: to a STUN server.
    to: Option<Side>,
    source: SocketAddr,
    destination: SocketAddr,
    contents: Vec<u8>,
}

/// The emulator.
#[derive(Debug)]
pub(crate) struct Netem {
    rng: ChaCha20Rng,
    /// Probability in `0.0..=1.0` that a datagram is lost.
    pub(crate) loss: f64,
    /// One-way delay.
    pub(crate) delay: Duration,
    /// Extra uniform random delay in `0..=jitter` (reorders packets).
    pub(crate) jitter: Duration,
    /// Probability that a datagram is duplicated.
    pub(crate) duplicate: f64,
    /// Drop everything (a peer vanished).
    pub(crate) blackhole: bool,
    hosts_a: Vec<SocketAddr>,
    hosts_b: Vec<SocketAddr>,
    nat_a: Option<NatBox>,
    nat_b: Option<NatBox>,
    stun_servers: Vec<SocketAddr>,
    queue: BTreeMap<(Instant, u64), InFlight>,
    seq: u64,
    /// Datagrams delivered to each side, with time and sender.
    pub(crate) log: Vec<(Instant, Side, SocketAddr, Vec<u8>)>,
}

impl Netem {
    pub(crate) fn new(hosts_a: &[&str], hosts_b: &[&str]) -> Self {
        Self {
            rng: ChaCha20Rng::seed_from_u64(0),
            loss: 0.0,
            delay: Duration::from_millis(20),
            jitter: Duration::ZERO,
            duplicate: 0.0,
            blackhole: false,
            hosts_a: hosts_a.iter().map(|h| super::addr(h)).collect(),
            hosts_b: hosts_b.iter().map(|h| super::addr(h)).collect(),
            nat_a: None,
            nat_b: None,
            stun_servers: Vec::new(),
            queue: BTreeMap::new(),
            seq: 0,
            log: Vec::new(),
        }
    }

    pub(crate) fn reseed(&mut self, seed: u64) {
        self.rng = ChaCha20Rng::seed_from_u64(seed);
    }

    pub(crate) fn nat(mut self, side: Side, kind: Nat, public: &str) -> Self {
        let b = NatBox {
            kind,
            public: public.parse().expect("ip"),
            next_port: 40000,
            mappings: HashMap::new(),
            reverse: HashMap::new(),
            permissions: HashSet::new(),
        };
        match side {
            Side::A => self.nat_a = Some(b),
            Side::B => self.nat_b = Some(b),
        }
        self
    }

    pub(crate) fn stun_server(mut self, a: &str) -> Self {
        self.stun_servers.push(super::addr(a));
        self
    }

    pub(crate) fn hosts(&self, s: Side) -> Vec<SocketAddr> {
        match s {
            Side::A => self.hosts_a.clone(),
            Side::B => self.hosts_b.clone(),
        }
    }

    fn nat_of(&mut self, s: Side) -> Option<&mut NatBox> {
        match s {
            Side::A => self.nat_a.as_mut(),
            Side::B => self.nat_b.as_mut(),
        }
    }

    /// Where a datagram addressed to `addr` from outside ends up on side `to`, if the
    /// mapping exists (ignoring filtering).
    pub(crate) fn resolve(&self, to: Side, addr: SocketAddr) -> Option<SocketAddr> {
        let (hosts, nat) = match to {
            Side::A => (&self.hosts_a, &self.nat_a),
            Side::B => (&self.hosts_b, &self.nat_b),
        };
        match nat {
            Some(n) if n.public == addr.ip() => n.reverse.get(&addr.port()).copied(),
            Some(_) => None,
            None => hosts.contains(&addr).then_some(addr),
        }
    }

    fn schedule(&mut self, now: Instant, f: InFlight) {
        if self.blackhole || self.rng.gen_bool(self.loss.clamp(0.0, 1.0)) {
            return;
        }
        let copies = if self.rng.gen_bool(self.duplicate.clamp(0.0, 1.0)) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let j = if self.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_micros(self.rng.gen_range(0..=self.jitter.as_micros() as u64))
            };
            self.seq += 1;
            self.queue
                .insert((now + self.delay + j, self.seq), f.clone());
        }
    }

    /// An agent on `from` sends a datagram.
    pub(crate) fn send(
        &mut self,
        now: Instant,
        from: Side,
        source: SocketAddr,
        destination: SocketAddr,
        contents: Vec<u8>,
    ) {
        let source = match self.nat_of(from) {
            Some(n) => n.outbound(source, destination),
            None => source,
        };
        let to = if self.stun_servers.contains(&destination) {
            None
        } else {
            Some(from.other())
        };
        self.schedule(
            now,
            InFlight {
                to,
                source,
                destination,
                contents,
            },
        );
    }

    pub(crate) fn next_delivery(&self) -> Option<Instant> {
        self.queue.keys().next().map(|k| k.0)
    }

    /// The next datagram due at `now`, after NAT filtering.
    pub(crate) fn poll_delivery(&mut self, now: Instant) -> Option<Delivery> {
        loop {
            let (&(t, k), _) = self.queue.iter().next()?;
            if t > now {
                return None;
            }
            let f = self.queue.remove(&(t, k)).expect("present");
            let Some(to) = f.to else {
                // A STUN server answers with the address it saw.
                let Ok(d) = stun::decode(&f.contents) else {
                    continue;
                };
                if d.class != stun::Class::Request {
                    continue;
                }
                let resp = stun::encode_success(&d, f.source, "stun-server-unused");
                let owner = if self
                    .nat_a
                    .as_ref()
                    .is_some_and(|n| n.public == f.source.ip())
                    || self.hosts_a.contains(&f.source)
                {
                    Side::A
                } else {
                    Side::B
                };
                self.schedule(
                    now,
                    InFlight {
                        to: Some(owner),
                        source: f.destination,
                        destination: f.source,
                        contents: resp,
                    },
                );
                continue;
            };
            let nat = match to {
                Side::A => &self.nat_a,
                Side::B => &self.nat_b,
            };
            let target = match nat {
                Some(n) => n.inbound(f.source, f.destination),
                None => self
                    .hosts(to)
                    .contains(&f.destination)
                    .then_some(f.destination),
            };
            let Some(target) = target else {
                continue; // unreachable or filtered by the NAT
            };
            self.log.push((now, to, f.source, f.contents.clone()));
            return Some(Delivery {
                to,
                source: f.source,
                destination: target,
                contents: f.contents,
            });
        }
    }
}
