//! ICE interop with libwebrtc (@roamhq/wrtc, the engine of Conversations, Monal and
//! Chromium) over real UDP on loopback: both roles, trickle both ways, and libwebrtc
//! controlling with and without `renomination` munged into its SDP (then it nominates
//! with NOMINATION 0xC001). Asserts that both ends select the same pair, and that our
//! controlled agent selects on libwebrtc's first nominating request. Every run prints a
//! timeline (first check → selected on both sides, each nominating request). The
//! `*_after_*` cases hold back or drop libwebrtc's first requests for 300 ms, as a busy
//! gateway driver does, which reproduces libwebrtc's ~1 s renomination pacing
//! (ice/docs/ice.md "Renomination timing with libwebrtc").
#![allow(clippy::disallowed_methods)] // interop with a real peer runs on the real clock

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ice::{Agent, Candidate, Config, Event, Role};
use testbed::{paths, Namespace, ProcessBuilder, Scratch, Stdout};

/// The value of attribute `t` in a STUN message, if present (a plain TLV walk).
fn attribute(msg: &[u8], t: u16) -> Option<&[u8]> {
    let mut i = 20;
    while i + 4 <= msg.len() {
        let at = u16::from_be_bytes([msg[i], msg[i + 1]]);
        let len = usize::from(u16::from_be_bytes([msg[i + 2], msg[i + 3]]));
        if at == t {
            return msg.get(i + 4..i + 4 + len);
        }
        i += 4 + len.div_ceil(4) * 4;
    }
    None
}

/// Whether a STUN message is a Binding request (message type 0x0001).
fn is_binding_request(msg: &[u8]) -> bool {
    msg.len() >= 20 && msg[0] == 0 && msg[1] == 1
}

/// Timeline of one run, for the first-check → selected measurement.
#[derive(Default)]
struct Timeline {
    /// First Binding request we sent.
    first_check_sent: Option<Instant>,
    /// First Binding request we received from libwebrtc.
    first_check_received: Option<Instant>,
    /// Nominating requests from libwebrtc: arrival, remote address, NOMINATION value
    /// (`None` for USE-CANDIDATE).
    nominations: Vec<(Instant, SocketAddr, Option<u32>)>,
    /// Our first SelectedPairChanged.
    ours_selected: Option<Instant>,
    /// libwebrtc's getStats first reported a succeeded, writable selected pair.
    peer_selected: Option<Instant>,
    /// libwebrtc's getStats first reported its selected pair as nominated.
    peer_nominated: Option<Instant>,
}

struct Ours {
    agent: Agent,
    sockets: Vec<UdpSocket>,
    app_received: usize,
    /// Binding requests from the peer that carried NOMINATION (0xC001).
    nomination_requests: usize,
    timeline: Timeline,
    /// How we treat libwebrtc's first requests.
    deaf: Deaf,
    /// Requests dropped while deaf.
    dropped_requests: usize,
    /// Requests held while deaf: (source, local address, message).
    held: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    /// How many held requests were answered in the burst.
    held_answered: usize,
}

/// Requests from libwebrtc that arrive within the window after its first one are not
/// answered in time: a gateway whose agent is not answering yet (or whose driver is busy)
/// when the client starts its checks.
#[derive(Debug, Clone, Copy)]
enum Deaf {
    /// Every request is answered at once.
    No,
    /// Requests in the window are lost.
    Drop(Duration),
    /// Requests in the window are answered in one burst when it ends.
    Hold(Duration),
}

impl Deaf {
    fn window(self) -> Duration {
        match self {
            Self::No => Duration::ZERO,
            Self::Drop(d) | Self::Hold(d) => d,
        }
    }
}

impl Ours {
    fn new(role: Role, seed: u8, deaf: Deaf) -> Self {
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
            timeline: Timeline::default(),
            deaf,
            dropped_requests: 0,
            held: Vec::new(),
            held_answered: 0,
        }
    }

    fn socket(&self, local: SocketAddr) -> &UdpSocket {
        self.sockets
            .iter()
            .find(|s| s.local_addr().ok() == Some(local))
            .expect("socket for source")
    }

    /// One STUN message from libwebrtc: recorded, then handed to the agent (or dropped
    /// or held while deaf).
    fn receive_stun(&mut self, at: Instant, from: SocketAddr, local: SocketAddr, msg: &[u8]) {
        if is_binding_request(msg) {
            let first = *self.timeline.first_check_received.get_or_insert(at);
            if at < first + self.deaf.window() {
                match self.deaf {
                    Deaf::Drop(_) => self.dropped_requests += 1,
                    _ => self.held.push((from, local, msg.to_vec())),
                }
                return;
            }
            if let Some(v) = attribute(msg, ice::stun::ATTR_NOMINATION_LEGACY) {
                self.nomination_requests += 1;
                let v = v
                    .get(..4)
                    .map(|b| u32::from_be_bytes([0, b[1], b[2], b[3]]));
                self.timeline.nominations.push((at, from, v));
            } else if attribute(msg, ice::stun::ATTR_USE_CANDIDATE).is_some() {
                self.timeline.nominations.push((at, from, None));
            }
        }
        let _ = self.agent.handle_receive(at, from, local, msg);
    }

    /// Timers, sockets, transmits. Returns the events.
    fn poll(&mut self) -> Vec<Event> {
        let now = Instant::now();
        if self.agent.poll_timeout().is_some_and(|t| t <= now) {
            self.agent.handle_timeout(now);
        }
        let deaf_until = self
            .timeline
            .first_check_received
            .map(|f| f + self.deaf.window());
        if !self.held.is_empty() && deaf_until.is_some_and(|u| now >= u) {
            // The backlog is answered in one burst, as a busy driver would.
            self.held_answered = self.held.len();
            for (from, local, msg) in std::mem::take(&mut self.held) {
                self.receive_stun(now, from, local, &msg);
            }
        }
        let mut buf = [0u8; 1500];
        for i in 0..self.sockets.len() {
            let local = self.sockets[i].local_addr().expect("addr");
            while let Ok((n, from)) = self.sockets[i].recv_from(&mut buf) {
                match ice::classify(&buf[..n]) {
                    ice::PacketKind::Stun => {
                        let msg = buf[..n].to_vec();
                        self.receive_stun(Instant::now(), from, local, &msg);
                    }
                    ice::PacketKind::Rtp => self.app_received += 1,
                    _ => {}
                }
            }
        }
        while let Some(t) = self.agent.poll_transmit() {
            if is_binding_request(&t.contents) {
                self.timeline
                    .first_check_sent
                    .get_or_insert_with(Instant::now);
            }
            let _ = self.socket(t.source).send_to(&t.contents, t.destination);
        }
        let events: Vec<Event> = std::iter::from_fn(|| self.agent.poll_event()).collect();
        if events
            .iter()
            .any(|e| matches!(e, Event::SelectedPairChanged(_)))
        {
            self.timeline.ours_selected.get_or_insert_with(Instant::now);
        }
        events
    }
}

fn send_json(stdin: &mut impl Write, v: serde_json::Value) {
    writeln!(stdin, "{v}").expect("write to peer");
    stdin.flush().expect("flush");
}

fn loopback(c: &Candidate) -> bool {
    c.addr.ip().is_loopback()
}

fn run(
    our_role: Role,
    renomination: bool,
    our_trickle_delay: Duration,
    seed: u8,
    deaf: Deaf,
) -> Timeline {
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

    let mut ours = Ours::new(our_role, seed, deaf);
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
                        if peer_pair_ok {
                            ours.timeline.peer_selected.get_or_insert_with(Instant::now);
                        }
                        if s["nominated"] == true {
                            ours.timeline
                                .peer_nominated
                                .get_or_insert_with(Instant::now);
                        }
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
    if our_role == Role::Controlled {
        // The agent selects on the first nominating request (INTEROP.md "ICE behaviours"
        // 1 and 3): at once if its own check on that pair already succeeded, else one
        // triggered-check round trip later. Whatever delay remains is the peer's pacing.
        let nominated = ours.timeline.nominations.first().expect("nominated").0;
        let selected = ours.timeline.ours_selected.expect("selected");
        assert!(
            selected <= nominated + Duration::from_millis(250),
            "selected {:?} after the first nominating request",
            selected.saturating_duration_since(nominated)
        );
    }
    if !matches!(deaf, Deaf::No) {
        eprintln!(
            "{deaf:?}: dropped {} and answered late {} of libwebrtc's first requests",
            ours.dropped_requests, ours.held_answered
        );
    }
    report_timeline(&ours.timeline, our_role, renomination);
    eprintln!(
        "agreed with libwebrtc (we are {our_role:?}, renomination {renomination}) {agreed_after:?} after start, held 1.5 s; {} NOMINATION requests",
        ours.nomination_requests
    );
    send_json(&mut stdin, serde_json::json!({"quit": true}));
    let _ = peer.wait_timeout(Duration::from_secs(5));
    ours.timeline
}

/// Prints the first check → selected times on both sides (and every nominating request),
/// the measurement behind ice/docs/ice.md "Renomination timing with libwebrtc".
fn report_timeline(t: &Timeline, our_role: Role, renomination: bool) {
    let first = match (t.first_check_sent, t.first_check_received) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).expect("checks were exchanged"),
    };
    let ms = |i: Option<Instant>| {
        i.map_or("-".to_owned(), |i| {
            format!(
                "{:.0} ms",
                i.saturating_duration_since(first).as_secs_f64() * 1e3
            )
        })
    };
    let noms: Vec<String> = t
        .nominations
        .iter()
        .map(|(at, from, v)| {
            let what = v.map_or("USE-CANDIDATE".to_owned(), |v| format!("NOMINATION {v}"));
            format!("{what} from {from} at {}", ms(Some(*at)))
        })
        .collect();
    eprintln!(
        "timeline (we are {our_role:?}, renomination {renomination}), from the first check: \
         our first check {}, peer's first check {}, first nominating request {}, \
         ours selected {}, libwebrtc selected (writable) {}, libwebrtc nominated {}; \
         nominating requests: [{}]",
        ms(t.first_check_sent),
        ms(t.first_check_received),
        ms(t.nominations.first().map(|n| n.0)),
        ms(t.ours_selected),
        ms(t.peer_selected),
        ms(t.peer_nominated),
        noms.join(", ")
    );
}

#[test]
fn ice_webrtc_libwebrtc_controls_with_use_candidate() {
    run(
        Role::Controlled,
        false,
        Duration::from_millis(300),
        11,
        Deaf::No,
    );
}

#[test]
fn ice_webrtc_libwebrtc_controls_with_renomination_munged() {
    run(
        Role::Controlled,
        true,
        Duration::from_millis(300),
        12,
        Deaf::No,
    );
}

#[test]
fn ice_webrtc_we_control_libwebrtc_trickles() {
    run(
        Role::Controlling,
        false,
        Duration::from_millis(200),
        13,
        Deaf::No,
    );
}

#[test]
fn ice_webrtc_renomination_after_unanswered_pings() {
    run(
        Role::Controlled,
        true,
        Duration::ZERO,
        14,
        Deaf::Drop(Duration::from_millis(300)),
    );
}

#[test]
fn ice_webrtc_renomination_after_late_answers() {
    run(
        Role::Controlled,
        true,
        Duration::ZERO,
        16,
        Deaf::Hold(Duration::from_millis(300)),
    );
}

#[test]
fn ice_webrtc_use_candidate_after_unanswered_pings() {
    run(
        Role::Controlled,
        false,
        Duration::ZERO,
        15,
        Deaf::Drop(Duration::from_millis(300)),
    );
}
