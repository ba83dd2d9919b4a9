//! Benchmarks of the ICE agent, printing figures (run with `cargo bench -p jsg-ice`):
//!
//! 1. time from the first remote candidate to a selected pair on both agents, over real
//!    UDP sockets on loopback (127.0.0.1 and ::1), candidates inline and trickled;
//! 2. CPU per connectivity check (request encode + integrity check + signed response +
//!    response check, both ends, in memory);
//! 3. heap bytes per agent holding 20 local × 20 remote candidates (400 pairs offered,
//!    100 kept per RFC 8445 §6.1.2.5).
#![allow(clippy::disallowed_methods)] // a benchmark reads the real clock
#![allow(missing_docs)]

use std::alloc::System;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use cap::Cap;
use ice::{Agent, Candidate, Config, Event, Role};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

struct Side {
    agent: Agent,
    sockets: Vec<UdpSocket>,
    selected: bool,
    gathered: Vec<Candidate>,
}

fn side(seed: u64, role: Role, now: Instant) -> Side {
    let mut cfg = Config::default();
    cfg.rng_seed_u64(seed);
    let mut agent = Agent::new(cfg, role, now);
    let mut sockets = Vec::new();
    for a in ["127.0.0.1:0", "[::1]:0"] {
        let Ok(s) = UdpSocket::bind(a) else { continue };
        s.set_nonblocking(true).expect("nonblocking");
        agent
            .add_local_host(now, s.local_addr().expect("addr"))
            .expect("host");
        sockets.push(s);
    }
    agent.finish_gathering(now);
    let mut gathered = Vec::new();
    while let Some(e) = agent.poll_event() {
        if let Event::CandidateGathered(c) = e {
            gathered.push(c);
        }
    }
    Side {
        agent,
        sockets,
        selected: false,
        gathered,
    }
}

fn pump(s: &mut Side) {
    while let Some(t) = s.agent.poll_transmit() {
        if let Some(sock) = s
            .sockets
            .iter()
            .find(|k| k.local_addr().ok() == Some(t.source))
        {
            let _ = sock.send_to(&t.contents, t.destination);
        }
    }
    while let Some(e) = s.agent.poll_event() {
        if matches!(e, Event::SelectedPairChanged(_)) {
            s.selected = true;
        }
    }
}

fn recv(s: &mut Side, buf: &mut [u8]) -> bool {
    let mut got = false;
    for i in 0..s.sockets.len() {
        while let Ok((n, from)) = s.sockets[i].recv_from(buf) {
            let local: SocketAddr = s.sockets[i].local_addr().expect("addr");
            let _ = s
                .agent
                .handle_receive(Instant::now(), from, local, &buf[..n]);
            got = true;
        }
    }
    got
}

/// One connection over loopback; returns the time from the first remote candidate to
/// both agents having a selected pair.
fn connect_once(seed: u64, trickle: bool) -> Duration {
    let t0 = Instant::now();
    let mut a = side(seed * 2 + 1, Role::Controlling, t0);
    let mut b = side(seed * 2 + 2, Role::Controlled, t0);
    let (ca, cb) = (
        a.agent.local_credentials().clone(),
        b.agent.local_credentials().clone(),
    );
    a.agent
        .set_remote_credentials(t0, &cb.ufrag, &cb.pwd)
        .expect("creds");
    b.agent
        .set_remote_credentials(t0, &ca.ufrag, &ca.pwd)
        .expect("creds");
    let mut pending_a: Vec<Candidate> = b.gathered.clone();
    let mut pending_b: Vec<Candidate> = a.gathered.clone();
    let start = Instant::now();
    if !trickle {
        for c in pending_a.drain(..) {
            a.agent.add_remote_candidate(start, c).expect("cand");
        }
        for c in pending_b.drain(..) {
            b.agent.add_remote_candidate(start, c).expect("cand");
        }
    } else {
        // Trickle: one candidate each now (lowest priority first), the rest 20 ms apart.
        pending_a.sort_by_key(|c| c.priority);
        pending_b.sort_by_key(|c| c.priority);
        a.agent
            .add_remote_candidate(start, pending_a.remove(0))
            .expect("cand");
        b.agent
            .add_remote_candidate(start, pending_b.remove(0))
            .expect("cand");
    }
    let mut next_trickle = start + Duration::from_millis(20);
    let mut buf = [0u8; 1500];
    loop {
        let now = Instant::now();
        if trickle && now >= next_trickle {
            if let Some(c) = pending_a.pop() {
                a.agent.add_remote_candidate(now, c).expect("cand");
            }
            if let Some(c) = pending_b.pop() {
                b.agent.add_remote_candidate(now, c).expect("cand");
            }
            next_trickle = now + Duration::from_millis(20);
        }
        for s in [&mut a, &mut b] {
            if s.agent.poll_timeout().is_some_and(|t| t <= now) {
                s.agent.handle_timeout(now);
            }
            pump(s);
        }
        let got = recv(&mut a, &mut buf) | recv(&mut b, &mut buf);
        pump(&mut a);
        pump(&mut b);
        if a.selected && b.selected {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no connection");
        if !got {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn bench_connect() {
    for trickle in [false, true] {
        let mut v: Vec<Duration> = (0..30).map(|s| connect_once(s, trickle)).collect();
        println!(
            "first remote candidate -> selected pair on both sides, loopback UDP ({}; 30 runs): median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            if trickle { "trickled 20 ms apart" } else { "inline" },
            percentile(&mut v, 0.5).as_secs_f64() * 1e3,
            percentile(&mut v, 0.95).as_secs_f64() * 1e3,
            percentile(&mut v, 1.0).as_secs_f64() * 1e3,
        );
    }
}

/// In-memory pair, connected, then consent checks driven by virtual time: every check is
/// a full STUN round trip through both agents.
fn bench_check_cpu() {
    let mut now = Instant::now();
    let la: SocketAddr = "10.0.0.1:5000".parse().expect("addr");
    let lb: SocketAddr = "10.0.0.2:6000".parse().expect("addr");
    let mut ca = Config::default();
    ca.rng_seed_u64(1);
    ca.consent_interval(Duration::from_millis(100));
    let mut cb = Config::default();
    cb.rng_seed_u64(2);
    cb.consent_interval(Duration::from_millis(100));
    let mut a = Agent::new(ca, Role::Controlling, now);
    let mut b = Agent::new(cb, Role::Controlled, now);
    let ha = a.add_local_host(now, la).expect("host");
    let hb = b.add_local_host(now, lb).expect("host");
    let (cra, crb) = (a.local_credentials().clone(), b.local_credentials().clone());
    a.set_remote_credentials(now, &crb.ufrag, &crb.pwd)
        .expect("creds");
    b.set_remote_credentials(now, &cra.ufrag, &cra.pwd)
        .expect("creds");
    a.add_remote_candidate(now, hb).expect("cand");
    b.add_remote_candidate(now, ha).expect("cand");
    let run = |a: &mut Agent, b: &mut Agent, now: &mut Instant, steps: usize| {
        for _ in 0..steps {
            loop {
                let mut moved = false;
                while let Some(t) = a.poll_transmit() {
                    let _ = b.handle_receive(*now, t.source, t.destination, &t.contents);
                    moved = true;
                }
                while let Some(t) = b.poll_transmit() {
                    let _ = a.handle_receive(*now, t.source, t.destination, &t.contents);
                    moved = true;
                }
                if !moved {
                    break;
                }
            }
            while a.poll_event().is_some() {}
            while b.poll_event().is_some() {}
            let next = [a.poll_timeout(), b.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .expect("timer");
            *now = next.max(*now);
            a.handle_timeout(*now);
            b.handle_timeout(*now);
        }
    };
    run(&mut a, &mut b, &mut now, 200);
    assert!(a.selected_pair().is_some() && b.selected_pair().is_some());
    let before = a.stats().requests_received + b.stats().requests_received;
    let t = Instant::now();
    run(&mut a, &mut b, &mut now, 50_000);
    let el = t.elapsed();
    let checks = a.stats().requests_received + b.stats().requests_received - before;
    println!(
        "CPU per connectivity check (request + signed response, both agents, in memory): {:.2} µs over {checks} checks",
        el.as_secs_f64() * 1e6 / checks as f64
    );
}

fn bench_memory() {
    for max_pairs in [100, 400] {
        memory_with(max_pairs);
    }
}

fn memory_with(max_pairs: usize) {
    let now = Instant::now();
    let base = ALLOCATOR.allocated();
    let mut agents = Vec::new();
    for n in 0..10u64 {
        let mut cfg = Config::default();
        cfg.rng_seed_u64(n);
        cfg.max_pairs(max_pairs);
        let mut a = Agent::new(cfg, Role::Controlling, now);
        for i in 0..20u16 {
            a.add_local_host(
                now,
                SocketAddr::from(([10, 0, (i / 200) as u8, (i % 200) as u8 + 1], 5000)),
            )
            .expect("host");
        }
        a.set_remote_credentials(now, "remoteufrag", "remotepasswordremotepassword")
            .expect("creds");
        for i in 0..20u16 {
            let c = Candidate::host(
                SocketAddr::from(([10, 1, 0, i as u8 + 1], 6000)),
                &i.to_string(),
            );
            a.add_remote_candidate(now, c).expect("cand");
        }
        while a.poll_event().is_some() {}
        a.handle_timeout(now);
        while a.poll_transmit().is_some() {}
        agents.push(a);
    }
    let per = (ALLOCATOR.allocated() - base) / agents.len();
    let pairs = agents[0].pairs().count();
    println!(
        "memory per agent with 20 local x 20 remote candidates ({pairs} pairs kept, limit {max_pairs}): {per} heap bytes ({:.1} KiB) + {} bytes inline",
        per as f64 / 1024.0,
        size_of::<Agent>()
    );
}

fn main() {
    // `cargo test --benches` runs this binary with `--bench` absent: keep it quick there.
    let quick = !std::env::args().any(|a| a == "--bench");
    if quick {
        // No sockets here: `cargo test --all-targets` may run without a loopback device.
        bench_memory();
        return;
    }
    bench_connect();
    bench_check_cpu();
    bench_memory();
}
