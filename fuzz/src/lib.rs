//! Fuzz target bodies, shared by the libFuzzer binaries in `fuzz_targets/` and by the
//! seeded smoke tests in `tests/` (which build on stable without cargo-fuzz).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;

mod media_targets;
mod sip_targets;
mod xmpp_targets;

use ice::fuzzing;
use ice::{Agent, Candidate, CandidateKind, Config, Event, Role};
pub use media_targets::{fixed_key, rtcp, rtp};
pub use sip_targets::{
    local_media, offer_round_trip, sdp, sip_digest, sip_message, sip_message_reserialization,
    CHALLENGE, INVITE, SDP_OFFER,
};
pub use xmpp_targets::{
    check_wire_round_trip, jingle, same_xml, xmpp_stream, DOMAIN, INITIATE, SERVER_HEADER,
};

/// `stun` target: STUN parse / re-encode round trip.
pub fn stun(data: &[u8]) {
    ice::fuzzing::stun_round_trip(data);
}

/// One operation on the agent.
#[derive(Debug, Clone, Arbitrary)]
pub enum Op {
    /// Add local host address `LOCALS[i % n]`.
    AddLocalHost(u8),
    /// Add a remote candidate at `REMOTES[addr % n]`.
    AddRemote {
        addr: u8,
        priority: u32,
        component: u8,
        kind: u8,
    },
    /// Set remote credentials (variant `v % 3`).
    SetRemoteCredentials(u8),
    /// A well-formed Binding request from `REMOTES[from]` to `LOCALS[to]`.
    Request {
        from: u8,
        to: u8,
        good_integrity: bool,
        priority: Option<u32>,
        use_candidate: bool,
        role: Option<(bool, u64)>,
        nomination: Option<u32>,
        unknown_attribute: Option<u16>,
        txid: u16,
    },
    /// Answer the most recent request the agent sent (success or error `code`).
    Respond {
        code: Option<u16>,
        mapped: u8,
        symmetric: bool,
        good_integrity: bool,
    },
    /// Arbitrary bytes from `REMOTES[from]`.
    Raw { from: u8, to: u8, data: Vec<u8> },
    /// Advance virtual time by `ms` and fire timers.
    Advance(u16),
    /// ICE restart.
    Restart,
    /// End of remote candidates.
    EndOfCandidates,
    /// Relayed candidate.
    AddRelayed(u8),
}

const LOCALS: [&str; 4] = [
    "10.0.0.1:5000",
    "10.0.0.1:5001",
    "[fd00::1]:5000",
    "192.168.0.1:7",
];
const REMOTES: [&str; 5] = [
    "10.0.0.2:6000",
    "10.0.0.3:6000",
    "[fd00::2]:6000",
    "198.51.100.7:40000",
    "10.0.0.2:6001",
];
const REMOTE_PWD: [&str; 3] = [
    "remotepasswordremotepassword",
    "secondpasswordsecondpassword",
    "thirdpasswordthirdpassword",
];

fn pick(list: &[&str], i: u8) -> SocketAddr {
    list[i as usize % list.len()].parse().expect("address")
}

/// `ice_agent_ops` target: applies `ops` to a controlled and a controlling agent and
/// checks invariants after each step.
pub fn run_ops(ops: &[Op]) {
    for role in [Role::Controlled, Role::Controlling] {
        run_role(role, ops);
    }
}

fn run_role(role: Role, ops: &[Op]) {
    let start = Instant::now();
    let mut now = start;
    let mut cfg = Config::default();
    cfg.rng_seed_u64(7);
    cfg.stun_server("192.0.2.1:3478".parse().expect("address"));
    let mut agent = Agent::new(cfg, role, now);
    let mut last_request: Option<(SocketAddr, SocketAddr, Vec<u8>)> = None;
    let mut remote_pwd = REMOTE_PWD[0];
    for op in ops.iter().take(256) {
        match op {
            Op::AddLocalHost(i) => {
                let _ = agent.add_local_host(now, pick(&LOCALS, *i));
            }
            Op::AddRelayed(i) => {
                let _ = agent.add_local_relayed(now, pick(&REMOTES, *i), pick(&LOCALS, *i));
            }
            Op::AddRemote {
                addr,
                priority,
                component,
                kind,
            } => {
                let mut c = Candidate::host(pick(&REMOTES, *addr), "f");
                c.priority = *priority;
                c.component = u16::from(*component % 3);
                c.kind = match kind % 4 {
                    0 => CandidateKind::Host,
                    1 => CandidateKind::ServerReflexive,
                    2 => CandidateKind::PeerReflexive,
                    _ => CandidateKind::Relayed,
                };
                let _ = agent.add_remote_candidate(now, c);
            }
            Op::SetRemoteCredentials(v) => {
                remote_pwd = REMOTE_PWD[*v as usize % 3];
                let _ = agent.set_remote_credentials(now, &format!("rem{}", v % 3 + 1), remote_pwd);
            }
            Op::Request {
                from,
                to,
                good_integrity,
                priority,
                use_candidate,
                role,
                nomination,
                unknown_attribute,
                txid,
            } => {
                let c = agent.local_credentials().clone();
                let extra: Vec<(u16, Vec<u8>)> = unknown_attribute
                    .map(|t| (t, vec![0; 4]))
                    .into_iter()
                    .collect();
                let bytes = fuzzing::request(
                    u128::from(*txid) + 1,
                    &c.ufrag,
                    &c.pwd,
                    *good_integrity,
                    *priority,
                    *use_candidate,
                    *role,
                    *nomination,
                    &extra,
                );
                let _ =
                    agent.handle_receive(now, pick(&REMOTES, *from), pick(&LOCALS, *to), &bytes);
            }
            Op::Respond {
                code,
                mapped,
                symmetric,
                good_integrity,
            } => {
                if let Some((src, dst, req)) = &last_request {
                    let pwd = if *good_integrity {
                        remote_pwd
                    } else {
                        "nope-nope-nope-nope-nope"
                    };
                    if let Some(resp) = fuzzing::respond(req, *code, pick(&REMOTES, *mapped), pwd) {
                        let from = if *symmetric {
                            *dst
                        } else {
                            pick(&REMOTES, *mapped)
                        };
                        let _ = agent.handle_receive(now, from, *src, &resp);
                    }
                }
            }
            Op::Raw { from, to, data } => {
                let _ = agent.accepts(data);
                let _ = agent.handle_receive(now, pick(&REMOTES, *from), pick(&LOCALS, *to), data);
            }
            Op::Advance(ms) => {
                now += Duration::from_millis(u64::from(*ms));
                agent.handle_timeout(now);
            }
            Op::Restart => {
                let _ = agent.restart(now);
            }
            Op::EndOfCandidates => agent.end_of_remote_candidates(now),
        }
        while let Some(t) = agent.poll_transmit() {
            assert!(!t.contents.is_empty());
            if ice::classify(&t.contents) != ice::PacketKind::Stun {
                panic!("agent sent non-STUN");
            }
            last_request = Some((t.source, t.destination, t.contents));
        }
        while let Some(e) = agent.poll_event() {
            if let Event::SelectedPairChanged(p) = e {
                // The selected pair is always one of the agent's pairs, nominated.
                assert_eq!(p.local.component, 1);
                assert_eq!(p.remote.component, 1);
            }
        }
        if let Some(sel) = agent.selected_pair() {
            assert_eq!(sel.remote.component, 1);
        }
        // Timers never point into the past after handle_timeout.
        agent.handle_timeout(now);
        while agent.poll_transmit().is_some() {}
        while agent.poll_event().is_some() {}
        if let Some(t) = agent.poll_timeout() {
            assert!(t + Duration::from_secs(3600) > now);
        }
        assert!(agent
            .pairs()
            .all(|(l, r, _, _)| l.component == 1 && r.component == 1));
    }
}
