//! ICE interop with libnice (the ICE of Dino and Gajim) over real UDP on loopback:
//! both roles, trickle both ways, libnice with two components like Dino (RTP and RTCP),
//! our agent on 127.0.0.1 and ::1. Asserts that both ends select the same pair and
//! that datagrams flow both ways on it.
#![allow(clippy::disallowed_methods)] // interop with a real peer runs on the real clock

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ice::{Agent, Candidate, Config, Event, Role};
use testbed::{paths, Namespace, ProcessBuilder, Scratch, Stdout};

struct Ours {
    agent: Agent,
    sockets: Vec<UdpSocket>,
    app_received: usize,
}

impl Ours {
    fn new(role: Role, seed: u8) -> Self {
        let now = Instant::now();
        let mut cfg = Config::default();
        cfg.rng_seed([seed; 32]);
        let mut agent = Agent::new(cfg, role, now);
        let mut sockets = Vec::new();
        for a in ["127.0.0.1:0", "[::1]:0"] {
            let s = UdpSocket::bind(a).expect("bind");
            s.set_nonblocking(true).expect("nonblocking");
            agent
                .add_local_host(now, s.local_addr().expect("addr"))
                .expect("host");
            sockets.push(s);
        }
        agent.finish_gathering(now);
        Self {
            agent,
            sockets,
            app_received: 0,
        }
    }

    fn socket(&self, local: SocketAddr) -> &UdpSocket {
        self.sockets
            .iter()
            .find(|s| s.local_addr().ok() == Some(local))
            .expect("socket for source")
    }

    /// Timers, sockets, transmits. Returns the events.
    fn poll(&mut self) -> Vec<Event> {
        let now = Instant::now();
        if self.agent.poll_timeout().is_some_and(|t| t <= now) {
            self.agent.handle_timeout(now);
        }
        let mut buf = [0u8; 1500];
        for i in 0..self.sockets.len() {
            let local = self.sockets[i].local_addr().expect("addr");
            while let Ok((n, from)) = self.sockets[i].recv_from(&mut buf) {
                match ice::classify(&buf[..n]) {
                    ice::PacketKind::Stun => {
                        let _ = self
                            .agent
                            .handle_receive(Instant::now(), from, local, &buf[..n]);
                    }
                    ice::PacketKind::Rtp => self.app_received += 1,
                    _ => {}
                }
            }
        }
        while let Some(t) = self.agent.poll_transmit() {
            let _ = self.socket(t.source).send_to(&t.contents, t.destination);
        }
        std::iter::from_fn(|| self.agent.poll_event()).collect()
    }
}

fn send_json(stdin: &mut impl Write, v: serde_json::Value) {
    writeln!(stdin, "{v}").expect("write to peer");
    stdin.flush().expect("flush");
}

fn run(our_role: Role, our_trickle_delay: Duration, seed: u8) {
    Namespace::require_loopback_only();
    let scratch = Scratch::new(&format!("ice_libnice_{our_role:?}")).expect("scratch");
    let peer_role = match our_role {
        Role::Controlling => "controlled",
        Role::Controlled => "controlling",
    };
    let mut peer = ProcessBuilder::new("libnice", "/usr/bin/python3")
        .arg(paths::peers_dir().join("libnice/ice_peer.py"))
        .arg(peer_role)
        .piped_stdin()
        .stdout(Stdout::Piped)
        .time_limit(Duration::from_secs(30))
        .spawn(scratch.path())
        .expect("start libnice peer");
    let mut stdin = peer.take_stdin().expect("stdin");
    let stdout = peer.take_stdout().expect("stdout");
    let (tx, rx) = mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        }
    });

    let mut ours = Ours::new(our_role, seed);
    let creds = ours.agent.local_credentials().clone();
    send_json(
        &mut stdin,
        serde_json::json!({"creds": {"ufrag": creds.ufrag, "pwd": creds.pwd}}),
    );
    let start = Instant::now();
    let mut our_candidates: Vec<Candidate> = ours.agent.local_candidates().to_vec();
    let mut peer_selected: Option<(SocketAddr, SocketAddr)> = None;
    let mut peer_received = 0u64;
    let mut component_two_seen = 0;
    let mut sent_app = false;
    let deadline = start + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "no connection with libnice: ours {:?} state {:?}, peer selected {peer_selected:?}, peer received {peer_received}, we received {}\n{}",
            ours.agent.selected_pair(),
            ours.agent.state(),
            ours.app_received,
            peer.log_tail(30)
        );
        if Instant::now() >= start + our_trickle_delay {
            for c in our_candidates.drain(..) {
                send_json(&mut stdin, serde_json::json!({"candidate": c.to_string()}));
            }
        }
        while let Ok(v) = rx.try_recv() {
            let now = Instant::now();
            if let Some(c) = v.get("creds") {
                ours.agent
                    .set_remote_credentials(
                        now,
                        c["ufrag"].as_str().expect("ufrag"),
                        c["pwd"].as_str().expect("pwd"),
                    )
                    .expect("remote creds");
            } else if let Some(c) = v.get("candidate").and_then(|c| c.as_str()) {
                // TCP candidates are rejected by the parser; component 2 is ignored.
                if let Ok(c) = c.parse::<Candidate>() {
                    if c.component == 2 {
                        component_two_seen += 1;
                    }
                    ours.agent.add_remote_candidate(now, c).expect("candidate");
                }
            } else if let Some(s) = v.get("selected") {
                if s["component"] == 1 {
                    let l: Candidate = s["local"].as_str().expect("local").parse().expect("cand");
                    let r: Candidate = s["remote"].as_str().expect("remote").parse().expect("cand");
                    peer_selected = Some((l.addr, r.addr));
                }
            } else if let Some(n) = v.get("received").and_then(|n| n.as_u64()) {
                assert_eq!(v["first"], 0x80);
                peer_received = n;
            }
        }
        let _ = ours.poll();
        if let (Some(sel), Some(_)) = (ours.agent.selected_pair().cloned(), peer_selected) {
            if !sent_app {
                sent_app = true;
                let mut rtp = vec![0u8; 172];
                rtp[0] = 0x80;
                for _ in 0..5 {
                    ours.socket(sel.local.base)
                        .send_to(&rtp, sel.remote.addr)
                        .expect("send");
                }
                send_json(&mut stdin, serde_json::json!({"send": 5}));
            }
            if peer_received > 0 && ours.app_received > 0 {
                let (pl, pr) = peer_selected.expect("peer selected");
                assert_eq!(pl, sel.remote.addr, "libnice's local is our remote");
                assert_eq!(pr, sel.local.base, "libnice's remote is our local");
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        component_two_seen > 0,
        "libnice trickled component 2 (ignored)"
    );
    let elapsed = start.elapsed();
    send_json(&mut stdin, serde_json::json!({"quit": true}));
    let _ = peer.wait_timeout(Duration::from_secs(5));
    eprintln!("connected with libnice ({our_role:?}) in {elapsed:?}");
}

#[test]
fn ice_libnice_we_control_libnice_trickles_two_components() {
    run(Role::Controlling, Duration::from_millis(300), 1);
}

#[test]
fn ice_libnice_libnice_controls_our_candidates_trickled_late() {
    run(Role::Controlled, Duration::from_millis(600), 2);
}
