//! ICE interop with libwebrtc (@roamhq/wrtc, the engine of Conversations, Monal and
//! Chromium) over real UDP on loopback: both roles, trickle both ways, and libwebrtc
//! controlling with and without `renomination` munged into its SDP (then it nominates
//! with NOMINATION 0xC001). Asserts that both ends select the same pair.
#![allow(clippy::disallowed_methods)] // interop with a real peer runs on the real clock

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ice::{Agent, Candidate, Config, Event, Role};
use testbed::{paths, Namespace, ProcessBuilder, Scratch, Stdout};

/// Whether a STUN message carries attribute `t` (a plain TLV walk).
fn has_attribute(msg: &[u8], t: u16) -> bool {
    let mut i = 20;
    while i + 4 <= msg.len() {
        let at = u16::from_be_bytes([msg[i], msg[i + 1]]);
        let len = usize::from(u16::from_be_bytes([msg[i + 2], msg[i + 3]]));
        if at == t {
            return true;
        }
        i += 4 + len.div_ceil(4) * 4;
    }
    false
}

struct Ours {
    agent: Agent,
    sockets: Vec<UdpSocket>,
    app_received: usize,
    /// Binding requests from the peer that carried NOMINATION (0xC001).
    nomination_requests: usize,
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
            nomination_requests: 0,
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
                        if has_attribute(&buf[..n], ice::stun::ATTR_NOMINATION_LEGACY) {
                            self.nomination_requests += 1;
                        }
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

fn loopback(c: &Candidate) -> bool {
    c.addr.ip().is_loopback()
}

fn run(our_role: Role, renomination: bool, our_trickle_delay: Duration, seed: u8) {
    Namespace::require_loopback_only();
    let scratch =
        Scratch::new(&format!("ice_webrtc_{our_role:?}_{renomination}")).expect("scratch");
    let mut builder = ProcessBuilder::new("wrtc", "node")
        .arg(paths::peers_dir().join("webrtc/ice-peer.js"))
        .arg(match our_role {
            Role::Controlling => "answerer",
            Role::Controlled => "offerer",
        })
        .current_dir(paths::peers_dir().join("webrtc"))
        .piped_stdin()
        .stdout(Stdout::Piped)
        .time_limit(Duration::from_secs(40));
    if renomination {
        builder = builder.arg("renomination");
    }
    let mut peer = builder.spawn(scratch.path()).expect("start libwebrtc peer");
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
    // The offerer's credentials go first; as answerer we send ours right away too
    // (libwebrtc needs them to build its answer).
    send_json(
        &mut stdin,
        serde_json::json!({"creds": {"ufrag": creds.ufrag, "pwd": creds.pwd}}),
    );
    let start = Instant::now();
    let mut our_candidates: Vec<Candidate> = ours.agent.local_candidates().to_vec();
    let mut peer_selected: Option<(SocketAddr, Option<IpAddr>, u16)> = None;
    let mut peer_pair_ok = false;
    let mut peer_ice = String::new();
    let deadline = start + Duration::from_secs(25);
    let mut stable_since: Option<Instant> = None;
    let agreed_after = loop {
        assert!(
            Instant::now() < deadline,
            "no connection with libwebrtc: ours {:?} state {:?}, peer selected {peer_selected:?} ice {peer_ice}\n{}",
            ours.agent.selected_pair(),
            ours.agent.state(),
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
                if let Ok(c) = c.parse::<Candidate>() {
                    if loopback(&c) {
                        ours.agent.add_remote_candidate(now, c).expect("candidate");
                    }
                }
            } else if let Some(s) = v.get("selected") {
                // The remote address of a peer-reflexive candidate is redacted: ":port".
                let l = s["local"]
                    .as_str()
                    .and_then(|a| a.parse::<SocketAddr>().ok());
                let r = s["remote"].as_str().unwrap_or_default();
                let (rip, rport) = r.rsplit_once(':').unwrap_or(("", ""));
                let rip = rip
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<IpAddr>()
                    .ok();
                match (l, rport.parse::<u16>()) {
                    (Some(l), Ok(rport)) => {
                        peer_selected = Some((l, rip, rport));
                        peer_pair_ok = s["state"] == "succeeded" && s["writable"] == true;
                    }
                    _ => eprintln!("unparsable selected pair from libwebrtc: {s}"),
                }
            } else if let Some(s) = v.get("ice").and_then(|s| s.as_str()) {
                peer_ice = s.to_owned();
            }
        }
        let _ = ours.poll();
        let agreed = match (ours.agent.selected_pair(), peer_selected) {
            (Some(sel), Some((pl, rip, rport))) => {
                pl == sel.remote.addr
                    && rport == sel.local.base.port()
                    && rip.is_none_or(|ip| ip == sel.local.base.ip())
                    && peer_pair_ok
            }
            _ => false,
        };
        if agreed {
            // Hold the agreement for a while: renominations must not pull us apart.
            let since = *stable_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_millis(1500) {
                break since - start;
            }
        } else {
            stable_since = None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if renomination {
        assert!(
            ours.nomination_requests > 0,
            "libwebrtc with renomination nominates with NOMINATION (0xC001)"
        );
    } else if our_role == Role::Controlled {
        assert_eq!(ours.nomination_requests, 0);
    }
    eprintln!(
        "agreed with libwebrtc (we are {our_role:?}, renomination {renomination}) {agreed_after:?} after start, held 1.5 s; {} NOMINATION requests",
        ours.nomination_requests
    );
    send_json(&mut stdin, serde_json::json!({"quit": true}));
    let _ = peer.wait_timeout(Duration::from_secs(5));
}

#[test]
fn ice_webrtc_libwebrtc_controls_with_use_candidate() {
    run(Role::Controlled, false, Duration::from_millis(300), 11);
}

#[test]
fn ice_webrtc_libwebrtc_controls_with_renomination_munged() {
    run(Role::Controlled, true, Duration::from_millis(300), 12);
}

#[test]
fn ice_webrtc_we_control_libwebrtc_trickles() {
    run(Role::Controlling, false, Duration::from_millis(200), 13);
}
