//! In-process interop with a third-party sans-IO agent: str0m's `is` (0.12), driven in
//! memory on virtual time. Both roles, candidates inline and trickled (theirs before
//! ours, some after checks began), IPv4 and IPv6. Asserts that both agents end up on the
//! same pair.
#![allow(clippy::disallowed_methods)] // `Instant::now()` is only the virtual epoch

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ice::{Agent, Candidate, Config, Event, Role};
use is::stun::{StunMessage, StunPacket};
use is::{IceAgent, IceAgentEvent, IceCreds, Protocol};

const DELAY: Duration = Duration::from_millis(15);

struct Packet {
    at: Instant,
    to_ours: bool,
    source: SocketAddr,
    destination: SocketAddr,
    contents: Vec<u8>,
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn run(ours_role: Role, trickle: bool) -> Duration {
    let start = Instant::now();
    let mut now = start;
    let mut cfg = Config::default();
    cfg.rng_seed_u64(42);
    let mut ours = Agent::new(cfg, ours_role, now);
    let our_hosts = [addr("10.0.0.1:5000"), addr("[fd00::1]:5000")];
    let their_hosts = [addr("10.0.0.2:6000"), addr("[fd00::2]:6000")];
    for h in our_hosts {
        ours.add_local_host(now, h).expect("host");
    }
    ours.finish_gathering(now);

    let mut them = IceAgent::new(IceCreds {
        ufrag: "isufrag1".into(),
        pass: "is-password-is-password-1".into(),
    });
    them.set_controlling(ours_role == Role::Controlled);
    for h in their_hosts {
        them.add_local_candidate(is::Candidate::host(h, "udp").expect("candidate"));
    }
    let oc = ours.local_credentials().clone();
    them.set_remote_credentials(IceCreds {
        ufrag: oc.ufrag.clone(),
        pass: oc.pwd.clone(),
    });
    ours.set_remote_credentials(now, "isufrag1", "is-password-is-password-1")
        .expect("creds");

    // Signalling: (time, to_ours, sdp candidate line).
    let mut signals: Vec<(Instant, bool, String)> = Vec::new();
    for (i, c) in them.local_candidates().enumerate() {
        let d = if trickle {
            Duration::from_millis(400 * i as u64)
        } else {
            Duration::ZERO
        };
        signals.push((start + d, true, c.to_sdp_string()));
    }
    for (i, c) in ours.local_candidates().iter().enumerate() {
        let d = if trickle {
            Duration::from_millis(700 + 500 * i as u64)
        } else {
            Duration::ZERO
        };
        signals.push((start + d, false, c.to_string()));
    }
    signals.sort_by_key(|s| s.0);
    let mut signals: VecDeque<_> = signals.into();

    let mut net: Vec<Packet> = Vec::new();
    let mut their_nominated: Option<(SocketAddr, SocketAddr)> = None;
    let mut our_selected_at = None;
    for _ in 0..100_000 {
        // Signalling due now.
        while signals.front().is_some_and(|s| s.0 <= now) {
            let (_, to_ours, line) = signals.pop_front().expect("signal");
            if to_ours {
                let c: Candidate = line.parse().expect("their candidate parses");
                ours.add_remote_candidate(now, c).expect("candidate");
            } else {
                them.add_remote_candidate(
                    is::Candidate::from_sdp_string(&line).expect("our candidate parses for is"),
                );
            }
        }
        // Packets due now.
        net.sort_by_key(|p| p.at);
        while net.first().is_some_and(|p| p.at <= now) {
            let p = net.remove(0);
            if p.to_ours {
                let _ = ours.handle_receive(now, p.source, p.destination, &p.contents);
            } else if let Ok(message) = StunMessage::parse(&p.contents) {
                them.handle_packet(
                    now,
                    StunPacket {
                        proto: Protocol::Udp,
                        source: p.source,
                        destination: p.destination,
                        message,
                    },
                );
            }
        }
        if ours.poll_timeout().is_some_and(|t| t <= now) {
            ours.handle_timeout(now);
        }
        // `is` expects regular timeouts even when it reports none.
        them.handle_timeout(now);
        while let Some(t) = ours.poll_transmit() {
            net.push(Packet {
                at: now + DELAY,
                to_ours: false,
                source: t.source,
                destination: t.destination,
                contents: t.contents,
            });
        }
        while let Some(t) = them.poll_transmit() {
            net.push(Packet {
                at: now + DELAY,
                to_ours: true,
                source: t.source,
                destination: t.destination,
                contents: t.contents.to_vec(),
            });
        }
        while let Some(e) = ours.poll_event() {
            if matches!(e, Event::SelectedPairChanged(_)) {
                our_selected_at = Some(now);
            }
        }
        while let Some(e) = them.poll_event() {
            if let IceAgentEvent::NominatedSend {
                source,
                destination,
                ..
            } = e
            {
                their_nominated = Some((source, destination));
            }
        }
        if let (Some(sel), Some((ts, td)), Some(at)) =
            (ours.selected_pair(), their_nominated, our_selected_at)
        {
            if ts == sel.remote.addr && td == sel.local.base && now >= at + Duration::from_secs(2) {
                return at - start;
            }
        }
        let next = [
            ours.poll_timeout(),
            them.poll_timeout(),
            net.iter().map(|p| p.at).min(),
            signals.front().map(|s| s.0),
            Some(now + Duration::from_millis(10)),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { break };
        now = now.max(next);
        assert!(
            now - start < Duration::from_secs(20),
            "no agreement: ours {:?}, is {their_nominated:?}",
            ours.selected_pair()
        );
    }
    panic!(
        "no agreement: ours {:?}, is {their_nominated:?}",
        ours.selected_pair()
    );
}

#[test]
fn is_controlled_we_control_inline_and_trickled() {
    for trickle in [false, true] {
        let t = run(Role::Controlling, trickle);
        assert!(t < Duration::from_secs(5), "{t:?}");
    }
}

#[test]
fn is_controls_we_are_controlled_inline_and_trickled() {
    for trickle in [false, true] {
        let t = run(Role::Controlled, trickle);
        assert!(t < Duration::from_secs(5), "{t:?}");
    }
}
