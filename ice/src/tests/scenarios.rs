//! Named scenario tests: the production failures of INTEROP.md "ICE behaviours the agent
//! must survive", plus NAT, loss and protocol-level checks.

use std::time::{Duration, Instant};

use super::stun_peer::{FakePeer, PEER_PWD, PEER_UFRAG};
use super::{addr, config, Nat, Netem, Pair, Side, Signal};
use crate::stun::{self, Class, ATTR_NOMINATION};
use crate::{
    Agent, ApiMisuse, Candidate, CandidateKind, ConnectionState, Error, Event, PairState,
    PeerMisbehaved, Role,
};

fn lan() -> Netem {
    Netem::new(
        &["10.0.0.1:5000", "[fd00::1]:5000"],
        &["10.0.0.2:6000", "[fd00::2]:6000"],
    )
}

fn selected_remote(a: &Agent) -> Option<std::net::SocketAddr> {
    a.selected_pair().map(|p| p.remote.addr)
}

#[test]
fn connects_on_a_lan_both_families() {
    let mut p = Pair::new(1, lan(), config(1), config(2));
    p.start_default();
    let t = p.drive_until(Duration::from_secs(5), |p| p.both_connected());
    assert!(t.is_some(), "did not connect");
    // IPv6 host pairs rank first (RFC 8421).
    assert!(selected_remote(&p.a.agent).unwrap().is_ipv6());
    assert_eq!(p.state(Side::A), ConnectionState::Connected);
    assert_eq!(p.state(Side::B), ConnectionState::Connected);
    // End-of-candidates after the checks completed: Completed.
    p.schedule(Side::A, Duration::ZERO, Signal::EndOfCandidates);
    p.schedule(Side::B, Duration::ZERO, Signal::EndOfCandidates);
    p.drive_for(Duration::from_secs(3));
    assert_eq!(p.state(Side::A), ConnectionState::Completed);
    assert_eq!(p.state(Side::B), ConnectionState::Completed);
    assert!(p.both_connected());
}

/// Scenario 1: the controlled agent is nominated on a valid pair that is not its best
/// valid pair; media must go to the nominated pair.
#[test]
fn s1_media_goes_to_the_nominated_pair_not_the_best_valid_pair() {
    let mut p = Pair::new(11, lan(), config(11), config(12));
    p.a.signalling.forward = false;
    p.start_default();
    // B learns A's candidates with the IPv4 one inflated (signalling differs from what
    // A computes): B's best valid pair is the IPv4 pair, A nominates IPv6.
    for c in p.a.agent.local_candidates().to_vec() {
        let mut c = c.clone();
        if c.addr.is_ipv4() {
            c.priority = 2_130_706_431;
        } else {
            c.priority = 1_000_000;
        }
        p.schedule(Side::B, Duration::from_millis(10), Signal::Candidate(c));
    }
    assert!(p
        .drive_until(Duration::from_secs(5), |p| p.both_connected())
        .is_some());
    p.drive_for(Duration::from_secs(3));
    let b = &p.b.agent;
    let sel = b.selected_pair().unwrap().clone();
    assert!(sel.remote.addr.is_ipv6(), "B follows A's nomination");
    // Both pairs are valid at B, and the IPv4 pair has the higher priority there.
    let (best_local, best_remote, _, _) = b
        .pairs()
        .filter(|(_, _, s, _)| *s == PairState::Succeeded)
        .max_by_key(|(l, r, _, _)| crate::pair_priority(r.priority, l.priority))
        .unwrap();
    assert!(best_remote.addr.is_ipv4() && best_local.addr.is_ipv4());
    assert!(p.both_connected());
}

/// Scenario 2: our checks fail for 45 s while the phone rings, because the peer (behind a
/// port-restricted NAT) does not know our candidates yet. Then its checks arrive: the failed
/// pairs come back (§7.3.1.4) and a pair is selected within 1 s.
#[test]
fn s2_failed_pairs_revive_when_the_peer_checks_arrive_after_45s() {
    let net = Netem::new(&["192.168.1.10:5000"], &["203.0.113.5:30000"])
        .nat(Side::A, Nat::PortRestricted, "198.51.100.1")
        .stun_server("192.0.2.1:3478");
    let mut ca = config(21);
    ca.stun_server(addr("192.0.2.1:3478"));
    let mut p = Pair::new(21, net, ca, config(22));
    // A (client, controlling) sends its candidates at once; B (gateway) answers only
    // after 45 s of ringing.
    p.b.signalling.forward = false;
    p.send_credentials(Side::A);
    p.add_hosts(Side::A);
    p.add_hosts(Side::B);
    p.drive_for(Duration::from_secs(45));
    let b = &p.b.agent;
    assert!(b.pairs().count() >= 2);
    assert!(b.pairs().all(|(_, _, s, _)| s == PairState::Failed));
    assert!(b.selected_pair().is_none());
    // Now the peer learns our credentials and candidates.
    let answer_at = p.now;
    p.send_credentials(Side::B);
    for c in p.b.agent.local_candidates().to_vec() {
        p.schedule(Side::A, Duration::from_millis(10), Signal::Candidate(c));
    }
    assert!(p
        .drive_until(Duration::from_secs(5), |p| p.both_connected())
        .is_some());
    let first_peer_check = p
        .net
        .log
        .iter()
        .find(|(t, to, _, m)| {
            *t > answer_at
                && *to == Side::B
                && stun::decode(m).is_ok_and(|d| d.class == Class::Request)
        })
        .map(|x| x.0)
        .unwrap();
    let selected_at =
        p.b.events
            .iter()
            .find(|(_, e)| matches!(e, Event::SelectedPairChanged(_)))
            .map(|x| x.0)
            .unwrap();
    assert!(selected_at - first_peer_check <= Duration::from_secs(1));
    // B selected the peer's server-reflexive address: the pair that had failed.
    assert_eq!(
        p.b.agent.selected_pair().unwrap().remote.kind,
        CandidateKind::ServerReflexive
    );
}

fn renomination_setup() -> (Agent, FakePeer, Instant, [std::net::SocketAddr; 3]) {
    let mut now = Instant::now();
    let mut b = Agent::new(config(31), Role::Controlled, now);
    let h = addr("10.0.0.2:6000");
    let (r1, r2) = (addr("10.0.0.1:7001"), addr("10.0.0.1:7002"));
    b.add_local_host(now, h).unwrap();
    b.set_remote_credentials(now, PEER_UFRAG, PEER_PWD).unwrap();
    let mut c1 = Candidate::host(r1, "1");
    c1.priority = 2_000_000_000;
    let mut c2 = Candidate::host(r2, "2");
    c2.priority = 1_000_000_000;
    b.add_remote_candidate(now, c1).unwrap();
    b.add_remote_candidate(now, c2).unwrap();
    let mut peer = FakePeer::new();
    peer.run(&mut b, &mut now, Duration::from_secs(1));
    assert!(b.pairs().all(|(_, _, s, _)| s == PairState::Succeeded));
    // Regular checks alone never select a pair when controlled.
    assert!(b.selected_pair().is_none());
    (b, peer, now, [h, r1, r2])
}

/// Scenario 3: NOMINATION (0xC001) 1, then 3 on a lower-priority pair, then a stale 2:
/// the selected pair follows 3. Never answered with 420.
#[test]
fn s3_renomination_highest_value_wins_and_stale_values_are_ignored() {
    for legacy in [true, false] {
        let (mut b, mut peer, mut now, [h, r1, r2]) = renomination_setup();
        let nominate = |peer: &mut FakePeer, b: &mut Agent, now: Instant, from, v: u32| {
            let (tx, bytes) = if legacy {
                peer.request(b, false, Some(v), &[])
            } else {
                peer.request(
                    b,
                    false,
                    None,
                    &[(ATTR_NOMINATION, v.to_be_bytes().to_vec())],
                )
            };
            peer.send(b, now, from, h, &bytes).unwrap();
            assert_eq!(peer.response_to(tx), Some((Class::Success, None)));
        };
        nominate(&mut peer, &mut b, now, r1, 1);
        peer.run(&mut b, &mut now, Duration::from_millis(200));
        assert_eq!(selected_remote(&b), Some(r1));
        nominate(&mut peer, &mut b, now, r2, 3);
        peer.run(&mut b, &mut now, Duration::from_millis(200));
        assert_eq!(
            selected_remote(&b),
            Some(r2),
            "renominated to the lower-priority pair"
        );
        nominate(&mut peer, &mut b, now, r1, 2);
        peer.run(&mut b, &mut now, Duration::from_millis(200));
        assert_eq!(
            selected_remote(&b),
            Some(r2),
            "a stale value must not switch back"
        );
        let changes = std::iter::from_fn(|| b.poll_event())
            .filter(|e| matches!(e, Event::SelectedPairChanged(_)))
            .count();
        assert_eq!(changes, 2);
    }
}

/// USE-CANDIDATE without NOMINATION (libwebrtc without renomination): the latest
/// nomination wins; a retransmission of an older one does not switch back.
#[test]
fn s3_use_candidate_latest_wins_and_retransmissions_do_not_switch_back() {
    let (mut b, mut peer, now, [h, r1, r2]) = renomination_setup();
    let (_, old) = peer.request(&b, true, None, &[]);
    peer.send(&mut b, now, r1, h, &old).unwrap();
    assert_eq!(selected_remote(&b), Some(r1));
    let (_, new) = peer.request(&b, true, None, &[]);
    peer.send(&mut b, now, r2, h, &new).unwrap();
    assert_eq!(selected_remote(&b), Some(r2));
    peer.send(&mut b, now, r1, h, &old).unwrap();
    assert_eq!(selected_remote(&b), Some(r2));
}

/// libwebrtc's renomination pacing (ice/docs/ice.md "Renomination timing with
/// libwebrtc"): plain checks on its chosen pair at the weak interval (48 ms), then one
/// NOMINATION 1 about 900 ms after its last ping, sent once (it stops once acknowledged).
/// The agent must select on that single request, at the instant it arrives, and keep the
/// pair.
#[test]
fn libwebrtc_single_late_nomination_selects_at_once_and_holds() {
    let (mut b, mut peer, mut now, [h, r1, _]) = renomination_setup();
    for _ in 0..5 {
        let (tx, req) = peer.request(&b, false, None, &[]);
        peer.send(&mut b, now, r1, h, &req).unwrap();
        assert_eq!(peer.response_to(tx), Some((Class::Success, None)));
        peer.run(&mut b, &mut now, Duration::from_millis(48));
    }
    peer.run(&mut b, &mut now, Duration::from_millis(900));
    assert!(b.selected_pair().is_none(), "plain checks never select");
    let (tx, req) = peer.request(&b, false, Some(1), &[]);
    peer.send(&mut b, now, r1, h, &req).unwrap();
    assert_eq!(peer.response_to(tx), Some((Class::Success, None)));
    assert_eq!(
        selected_remote(&b),
        Some(r1),
        "selected on the first nominating request, with no further round trip"
    );
    assert_eq!(b.state(), ConnectionState::Connected);
    // No more NOMINATION follows (acknowledged); consent keeps the pair.
    peer.run(&mut b, &mut now, Duration::from_secs(35));
    assert_eq!(selected_remote(&b), Some(r1));
    assert_eq!(b.state(), ConnectionState::Connected);
}

/// A nomination on a pair that has not been checked yet selects it once the triggered
/// check succeeds (§7.3.1.5), and only then.
#[test]
fn nomination_of_an_unchecked_pair_selects_it_after_its_triggered_check() {
    let mut now = Instant::now();
    let mut b = Agent::new(config(35), Role::Controlled, now);
    let h = addr("10.0.0.2:6000");
    b.add_local_host(now, h).unwrap();
    b.set_remote_credentials(now, PEER_UFRAG, PEER_PWD).unwrap();
    let mut peer = FakePeer::new();
    peer.answer = false;
    let (tx, req) = peer.request(&b, true, None, &[]);
    let r = addr("10.0.0.1:7777");
    peer.send(&mut b, now, r, h, &req).unwrap();
    assert_eq!(peer.response_to(tx), Some((Class::Success, None)));
    assert!(b.selected_pair().is_none(), "not valid yet");
    peer.answer = true;
    peer.run(&mut b, &mut now, Duration::from_millis(600));
    let sel = b.selected_pair().unwrap();
    assert_eq!(sel.remote.addr, r);
    assert_eq!(sel.remote.kind, CandidateKind::PeerReflexive);
}

/// Scenario 4: component 1 and 2 candidates trickled interleaved, component 2 first.
#[test]
fn s4_component_two_candidates_trickled_first_are_ignored() {
    let mut p = Pair::new(41, lan(), config(41), config(42));
    p.a.signalling.add_component_two = true;
    p.b.signalling.add_component_two = true;
    p.start_default();
    assert!(p
        .drive_until(Duration::from_secs(5), |p| p.both_connected())
        .is_some());
    for side in [&p.a.agent, &p.b.agent] {
        assert!(side
            .pairs()
            .all(|(l, r, _, _)| l.component == 1 && r.component == 1));
        assert_eq!(side.pairs().count(), 2);
    }
}

/// Scenario 5a: remote candidates trickled 0–3 s apart, some after checks began.
#[test]
fn s5_trickled_candidates_with_gaps_connect() {
    for seed in 0..50 {
        let net = Netem::new(
            &["10.0.0.1:5000", "10.0.1.1:5000", "[fd00::1]:5000"],
            &["10.0.0.2:6000", "10.0.1.2:6000", "[fd00::2]:6000"],
        );
        let mut p = Pair::new(seed, net, config(seed * 2 + 100), config(seed * 2 + 101));
        p.a.signalling.trickle_jitter = Duration::from_secs(3);
        p.b.signalling.trickle_jitter = Duration::from_secs(3);
        p.start_default();
        assert!(
            p.drive_until(Duration::from_secs(8), |p| p.both_connected())
                .is_some(),
            "seed {seed}"
        );
    }
}

/// Scenario 5b: B never receives any remote candidate: peer-reflexive only.
#[test]
fn s5_no_remote_candidates_at_all_peer_reflexive_only() {
    let mut p = Pair::new(51, lan(), config(51), config(52));
    p.a.signalling.forward = false;
    p.start_default();
    assert!(p
        .drive_until(Duration::from_secs(5), |p| p.both_connected())
        .is_some());
    assert_eq!(
        p.b.agent.selected_pair().unwrap().remote.kind,
        CandidateKind::PeerReflexive
    );
    // And with B controlling instead (A is the silent-candidate side).
    let start = Instant::now();
    let mut p = Pair::with_roles(
        53,
        lan(),
        config(53),
        config(54),
        Role::Controlled,
        Role::Controlling,
        start,
    );
    p.a.signalling.forward = false;
    p.start_default();
    assert!(p
        .drive_until(Duration::from_secs(5), |p| p.both_connected())
        .is_some());
}

/// Scenario 6a: role conflicts in both directions resolve by tie-breaker (§7.3.1.1).
#[test]
fn s6_role_conflict_both_directions() {
    for (ra, rb) in [
        (Role::Controlling, Role::Controlling),
        (Role::Controlled, Role::Controlled),
    ] {
        for seed in 0..20 {
            let mut p = Pair::with_roles(
                seed,
                lan(),
                config(seed + 600),
                config(seed + 700),
                ra,
                rb,
                Instant::now(),
            );
            p.start_default();
            assert!(
                p.drive_until(Duration::from_secs(5), |p| p.both_connected())
                    .is_some(),
                "{ra:?}/{rb:?} seed {seed}"
            );
            assert_ne!(p.a.agent.role(), p.b.agent.role());
            // The higher tie-breaker controls.
            let a_controls = p.a.agent.tie_breaker() >= p.b.agent.tie_breaker();
            assert_eq!(p.a.agent.role() == Role::Controlling, a_controls);
        }
    }
}

/// Scenario 6b: ICE restart mid-call keeps media on the old pair until a new one is selected.
#[test]
fn s6_ice_restart_mid_call() {
    let mut p = Pair::new(61, lan(), config(61), config(62));
    p.start_default();
    assert!(p
        .drive_until(Duration::from_secs(5), |p| p.both_connected())
        .is_some());
    p.drive_for(Duration::from_secs(2));
    let old_ufrag = p.a.agent.local_credentials().ufrag.clone();
    let before = p.a.agent.selected_pair().cloned().unwrap();
    let now = p.now;
    // A restarts (e.g. network change); B learns the new credentials and restarts too.
    p.a.agent.restart(now);
    assert_ne!(p.a.agent.local_credentials().ufrag, old_ufrag);
    assert_eq!(
        p.a.agent.selected_pair(),
        Some(&before),
        "old pair keeps media"
    );
    let a_events_before = p.a.events.len();
    p.send_credentials(Side::A);
    p.drive_for(Duration::from_millis(15));
    assert_eq!(
        p.b.agent.selected_pair().map(|s| s.remote.addr),
        Some(before.local.addr)
    );
    let now = p.now;
    p.b.agent.restart(now);
    p.send_credentials(Side::B);
    for s in [Side::A, Side::B] {
        let cands: Vec<_> = p.peer(s).agent.local_candidates().to_vec();
        for c in cands {
            p.schedule(
                s.other_pub(),
                Duration::from_millis(20),
                Signal::Candidate(c),
            );
        }
    }
    assert!(p
        .drive_until(Duration::from_secs(5), |p| {
            p.a.events[a_events_before..]
                .iter()
                .any(|(_, e)| matches!(e, Event::SelectedPairChanged(_)))
                && p.both_connected()
        })
        .is_some());
    p.drive_for(Duration::from_secs(40));
    assert!(
        p.both_connected(),
        "consent keeps working with the new credentials"
    );
    assert!(!p.a.events.iter().any(|(_, e)| *e == Event::ConsentLost));
}

/// Scenario 6c: the peer vanishes; consent is lost 30 s after the last response.
#[test]
fn s6_consent_lost_after_30s_without_responses() {
    let mut p = Pair::new(63, lan(), config(63), config(64));
    p.start_default();
    assert!(p
        .drive_until(Duration::from_secs(5), |p| p.both_connected())
        .is_some());
    p.drive_for(Duration::from_secs(60));
    assert!(p.both_connected(), "consent refreshes keep the pair");
    let vanished = p.now;
    p.net.blackhole = true;
    p.drive_for(Duration::from_secs(45));
    let lost =
        p.a.events
            .iter()
            .find(|(_, e)| *e == Event::ConsentLost)
            .map(|x| x.0)
            .expect("consent lost");
    let since = lost - vanished;
    assert!(
        since <= Duration::from_secs(30) && since >= Duration::from_secs(24),
        "{since:?}"
    );
    assert!(p
        .a
        .events
        .iter()
        .any(|(_, e)| *e == Event::StateChanged(ConnectionState::Disconnected)));
    assert_eq!(p.state(Side::A), ConnectionState::Failed);
    assert!(p.a.agent.selected_pair().is_none());
}

/// Scenario 7: 30 % random loss (plus jitter that reorders): connected within 5 s in
/// 1,000 seeded runs.
#[test]
fn s7_thirty_percent_loss_connects_within_5s_in_1000_seeded_runs() {
    let mut worst = Duration::ZERO;
    let mut failed = Vec::new();
    for seed in 0..1000u64 {
        let mut net = Netem::new(&["10.0.0.1:5000"], &["10.0.0.2:6000"]);
        net.loss = 0.30;
        net.delay = Duration::from_millis(30);
        net.jitter = Duration::from_millis(20);
        let mut p = Pair::new(seed, net, config(seed * 2 + 5000), config(seed * 2 + 5001));
        p.start_default();
        match p.drive_until(Duration::from_secs(5), |p| p.both_connected()) {
            Some(t) => worst = worst.max(t),
            None => failed.push(seed),
        }
    }
    assert!(
        failed.is_empty(),
        "seeds not connected within 5 s: {failed:?}"
    );
    assert!(worst <= Duration::from_secs(5));
}

#[test]
fn nat_full_cone_and_port_restricted_connect_via_server_reflexive() {
    for kind in [Nat::FullCone, Nat::PortRestricted, Nat::Symmetric] {
        let net = Netem::new(&["192.168.1.10:5000"], &["192.168.2.20:6000"])
            .nat(Side::A, kind, "198.51.100.1")
            .nat(Side::B, Nat::PortRestricted, "198.51.100.2")
            .stun_server("192.0.2.1:3478");
        let mut ca = config(71);
        ca.stun_server(addr("192.0.2.1:3478"));
        let mut cb = config(72);
        cb.stun_server(addr("192.0.2.1:3478"));
        let mut p = Pair::new(71, net, ca, cb);
        p.start_default();
        let ok = p
            .drive_until(Duration::from_secs(10), |p| p.both_connected())
            .is_some();
        // Symmetric behind port-restricted needs a relay: it must not "connect" falsely.
        assert_eq!(ok, kind != Nat::Symmetric, "{kind:?}");
        assert!(p
            .a
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::CandidateGathered(c) if c.kind == CandidateKind::ServerReflexive)));
        assert!(p
            .a
            .events
            .iter()
            .any(|(_, e)| *e == Event::GatheringComplete));
    }
}

#[test]
fn symmetric_nat_against_a_public_gateway_uses_peer_reflexive() {
    let net = Netem::new(&["192.168.1.10:5000"], &["203.0.113.5:30000"])
        .nat(Side::A, Nat::Symmetric, "198.51.100.1")
        .stun_server("192.0.2.1:3478");
    let mut ca = config(73);
    ca.stun_server(addr("192.0.2.1:3478"));
    let mut p = Pair::new(73, net, ca, config(74));
    p.start_default();
    assert!(p
        .drive_until(Duration::from_secs(10), |p| p.both_connected())
        .is_some());
    assert_eq!(
        p.b.agent.selected_pair().unwrap().remote.kind,
        CandidateKind::PeerReflexive
    );
    assert_eq!(
        p.a.agent.selected_pair().unwrap().local.kind,
        CandidateKind::PeerReflexive
    );
}

#[test]
fn reordering_and_duplication_are_harmless() {
    for seed in 0..50 {
        let mut net = lan();
        net.jitter = Duration::from_millis(200);
        net.duplicate = 0.3;
        let mut p = Pair::new(seed, net, config(seed + 900), config(seed + 901));
        p.start_default();
        assert!(p
            .drive_until(Duration::from_secs(5), |p| p.both_connected())
            .is_some());
    }
}

// ------------------------------------------------------------ protocol-level checks

fn controlled_agent() -> (Agent, Instant, std::net::SocketAddr, std::net::SocketAddr) {
    let now = Instant::now();
    let mut b = Agent::new(config(81), Role::Controlled, now);
    let h = addr("10.0.0.2:6000");
    b.add_local_host(now, h).unwrap();
    (b, now, h, addr("10.0.0.1:7000"))
}

#[test]
fn bad_integrity_and_fingerprint_are_dropped_and_counted() {
    let (mut b, now, h, r) = controlled_agent();
    let mut peer = FakePeer::new();
    let (_, mut req) = peer.request(&b, false, None, &[]);
    // Flip a byte of the HMAC and fix nothing else: FINGERPRINT then fails too, so
    // recompute a bad-integrity message instead with the wrong password.
    let bad = stun::encode_request(&stun::Request {
        txid: 9,
        auth: Some((
            format!("{}:x", b.local_credentials().ufrag),
            "not-the-password-at-all",
        )),
        priority: Some(1),
        ..Default::default()
    });
    assert_eq!(
        peer.send(&mut b, now, r, h, &bad),
        Err(Error::PeerMisbehaved(PeerMisbehaved::BadIntegrity))
    );
    let n = req.len();
    req[n - 1] ^= 0xff;
    assert_eq!(
        peer.send(&mut b, now, r, h, &req),
        Err(Error::PeerMisbehaved(PeerMisbehaved::BadFingerprint))
    );
    assert!(matches!(
        peer.send(&mut b, now, r, h, b"\x00\x01garbage"),
        Err(Error::Malformed(_))
    ));
    let s = b.stats();
    assert_eq!((s.bad_integrity, s.bad_fingerprint, s.malformed), (1, 1, 1));
    assert!(peer.responses.is_empty(), "dropped, not answered");
    assert_eq!(b.pairs().count(), 0);
}

#[test]
fn error_responses_per_rfc_8489() {
    let (mut b, now, h, r) = controlled_agent();
    let mut peer = FakePeer::new();
    // Unknown comprehension-required attribute: 420. NOMINATION and USE-CANDIDATE never.
    let (tx, req) = peer.request(&b, true, Some(1), &[(0x0042, vec![1, 2, 3, 4])]);
    assert_eq!(
        peer.send(&mut b, now, r, h, &req),
        Err(Error::PeerMisbehaved(PeerMisbehaved::UnknownAttributes))
    );
    assert_eq!(peer.response_to(tx), Some((Class::Error, Some(420))));
    let (tx, req) = peer.request(
        &b,
        true,
        None,
        &[(ATTR_NOMINATION, 5u32.to_be_bytes().to_vec())],
    );
    peer.send(&mut b, now, r, h, &req).unwrap();
    assert_eq!(peer.response_to(tx), Some((Class::Success, None)));
    // No USERNAME/MESSAGE-INTEGRITY: 400.
    let plain = stun::encode_request(&stun::Request {
        txid: 77,
        ..Default::default()
    });
    assert!(peer.send(&mut b, now, r, h, &plain).is_err());
    assert_eq!(peer.response_to(77), Some((Class::Error, Some(400))));
    // Wrong ufrag: 401.
    let wrong = stun::encode_request(&stun::Request {
        txid: 78,
        auth: Some(("nobody:x".into(), "whatever-password-here")),
        priority: Some(1),
        ..Default::default()
    });
    assert_eq!(
        peer.send(&mut b, now, r, h, &wrong),
        Err(Error::PeerMisbehaved(PeerMisbehaved::UnknownUsername))
    );
    assert_eq!(peer.response_to(78), Some((Class::Error, Some(401))));
}

#[test]
fn accepts_routes_by_ufrag_and_transaction() {
    let (mut b, now, h, r) = controlled_agent();
    let other = Agent::new(config(99), Role::Controlled, now);
    let mut peer = FakePeer::new();
    let (_, req) = peer.request(&b, false, None, &[]);
    assert!(b.accepts(&req));
    assert!(!other.accepts(&req));
    assert_eq!(
        crate::request_ufrag(&req).as_deref(),
        Some(b.local_credentials().ufrag.as_str())
    );
    b.set_remote_credentials(now, PEER_UFRAG, PEER_PWD).unwrap();
    peer.answer = false;
    peer.send(&mut b, now, r, h, &req).unwrap();
    let mut now2 = now;
    b.handle_timeout(now2);
    let t = b.poll_transmit().expect("triggered check");
    let d = stun::decode(&t.contents).unwrap();
    let resp = stun::encode_success(&d, t.source, PEER_PWD);
    assert!(b.accepts(&resp));
    assert!(!other.accepts(&resp));
    now2 += Duration::from_millis(1);
    b.handle_receive(now2, r, h, &resp).unwrap();
    assert_eq!(
        b.handle_receive(now, r, h, &resp),
        Err(Error::ApiMisuse(ApiMisuse::TimeWentBackwards))
    );
}

#[test]
fn failed_state_is_recoverable_by_a_peer_check() {
    let (mut b, mut now, h, r) = controlled_agent();
    b.set_remote_credentials(now, PEER_UFRAG, PEER_PWD).unwrap();
    b.add_remote_candidate(now, Candidate::host(r, "1"))
        .unwrap();
    b.end_of_remote_candidates(now);
    let mut peer = FakePeer::new();
    peer.answer = false;
    peer.run(&mut b, &mut now, Duration::from_secs(20));
    assert_eq!(b.state(), ConnectionState::Failed);
    peer.answer = true;
    let (_, req) = peer.request(&b, true, None, &[]);
    peer.send(&mut b, now, r, h, &req).unwrap();
    peer.run(&mut b, &mut now, Duration::from_secs(1));
    assert_eq!(selected_remote(&b), Some(r));
    assert_eq!(b.state(), ConnectionState::Completed);
}

/// Scenario 6b': a Jingle ICE restart is a `transport-info` with new credentials and no
/// candidates: the agents re-check the candidates they know under the new credentials.
#[test]
fn s6_ice_restart_with_credentials_only() {
    let mut p = Pair::new(65, lan(), config(65), config(66));
    p.start_default();
    assert!(p
        .drive_until(Duration::from_secs(5), |p| p.both_connected())
        .is_some());
    p.drive_for(Duration::from_secs(1));
    let before = p.b.agent.selected_pair().cloned().unwrap();
    let (a_events, b_events) = (p.a.events.len(), p.b.events.len());
    let now = p.now;
    p.b.agent.restart(now);
    p.send_credentials(Side::B);
    p.drive_for(Duration::from_millis(15));
    assert_eq!(
        p.b.agent.selected_pair(),
        Some(&before),
        "media stays on the old pair"
    );
    let now = p.now;
    p.a.agent.restart(now);
    p.send_credentials(Side::A);
    assert!(p
        .drive_until(Duration::from_secs(5), |p| {
            p.a.events[a_events..]
                .iter()
                .any(|(_, e)| matches!(e, Event::SelectedPairChanged(_)))
                && p.b.events[b_events..]
                    .iter()
                    .any(|(_, e)| matches!(e, Event::SelectedPairChanged(_)))
                && p.both_connected()
        })
        .is_some());
    p.drive_for(Duration::from_secs(40));
    assert!(p.both_connected());
    assert!(!p.b.events.iter().any(|(_, e)| *e == Event::ConsentLost));
}
