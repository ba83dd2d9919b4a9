//! Media interop witness (issue 4): our per-call media driver (`gateway::media_driver`,
//! over our ICE agent and media engine) against libwebrtc (@roamhq/wrtc, the engine of
//! Conversations and Monal) on loopback, with a UDP socket playing the SIP trunk.
//!
//! libwebrtc sends a 440 Hz tone, the trunk socket a 1000 Hz PCMU tone as RTP every
//! 20 ms. Each case checks that the tones arrive at the other end at the same frequency
//! (±2 %), that at most 1 % of packets are lost on each side, and the DTLS role and codec
//! path. Cases: we are DTLS server (libwebrtc answers our `actpass` offer with `active`)
//! and DTLS client (we answer libwebrtc's offer with `active`), each with Opus on the
//! client leg (transcoded to PCMU) and PCMU (passthrough); a wrong fingerprint fails with
//! a security error.
//!
//! Not covered here: RFC 4733 from libwebrtc. @roamhq/wrtc 0.10.0 binds no
//! `RTCDTMFSender` and exposes no received telephone-events (see tests/README.md), so
//! neither direction can be driven or observed on the libwebrtc side.
#![allow(clippy::disallowed_methods)] // interop with a real peer runs on the real clock

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::ChildStdin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gateway::media_driver::{
    BindParams, CallMedia, CallMediaEvent, CallMediaEvents, CallMediaHandle, CallMediaParams,
    ClientDtls, ClientLegParams, ClientMedia, Failure, LocalDescription, TrunkMedia,
};
use ice::Candidate;
use media::cert::Fingerprint;
use media::codec::Codec;
use media::config::Security;
use media::dtls::Setup;
use media::stats::LegStats;
use testbed::{paths, Namespace, Process, ProcessBuilder, Scratch, Stdout};

const PEER_TONE_HZ: f64 = 440.0;
const TRUNK_TONE_HZ: f64 = 1000.0;
/// Audio that flows after DTLS before the measurement.
const AUDIO_TIME: Duration = Duration::from_secs(4);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OurDtls {
    /// We offer `actpass`, libwebrtc answers `active`: we are DTLS server, ICE controlling.
    Server,
    /// libwebrtc offers `actpass`, we answer `active`: we are DTLS client, ICE controlled.
    Client,
}

// ------------------------------------------------------------------ the libwebrtc peer

struct Peer {
    process: Process,
    stdin: ChildStdin,
    rx: mpsc::Receiver<serde_json::Value>,
}

impl Peer {
    fn start(scratch: &Scratch, offerer: bool) -> Self {
        let mut process = ProcessBuilder::new("wrtc-media", "node")
            .arg(paths::peers_dir().join("webrtc/media-peer.js"))
            .arg(if offerer { "offerer" } else { "answerer" })
            .arg(format!("{PEER_TONE_HZ}"))
            .current_dir(paths::peers_dir().join("webrtc"))
            .piped_stdin()
            .stdout(Stdout::Piped)
            .time_limit(Duration::from_secs(45))
            .spawn(scratch.path())
            .expect("start libwebrtc peer");
        let stdin = process.take_stdin().expect("stdin");
        let stdout = process.take_stdout().expect("stdout");
        let (tx, rx) = mpsc::channel();
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
        Self { process, stdin, rx }
    }

    fn send(&mut self, v: serde_json::Value) {
        writeln!(self.stdin, "{v}").expect("write to peer");
        self.stdin.flush().expect("flush");
    }

    /// The next message with `key`, handing other messages to `other`.
    fn wait_key(
        &mut self,
        key: &str,
        limit: Duration,
        mut other: impl FnMut(serde_json::Value),
    ) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) if v.get(key).is_some() => return v[key].clone(),
                Ok(v) => {
                    if let Some(e) = v.get("error") {
                        panic!("libwebrtc: {e}\n{}", self.process.log_tail(30));
                    }
                    other(v)
                }
                Err(_) => panic!(
                    "no {key} from libwebrtc within {limit:?}\n{}",
                    self.process.log_tail(30)
                ),
            }
        }
    }
}

// ------------------------------------------------------------------ SDP glue

/// What we read from libwebrtc's SDP (one audio m-line).
#[derive(Debug)]
struct RemoteSdp {
    ufrag: String,
    pwd: String,
    fingerprint: Fingerprint,
    setup: Setup,
    mid: String,
    /// payload type → (encoding name lowercased, clock rate)
    rtpmap: BTreeMap<u8, (String, u32)>,
    candidates: Vec<Candidate>,
}

impl RemoteSdp {
    fn parse(sdp: &str) -> Self {
        let attr = |name: &str| -> Option<&str> {
            sdp.lines()
                .find_map(|l| l.trim_end().strip_prefix(&format!("a={name}:")))
        };
        let fp = attr("fingerprint").expect("a=fingerprint");
        let (hash, value) = fp.split_once(' ').expect("fingerprint hash and value");
        let mut rtpmap = BTreeMap::new();
        let mut candidates = Vec::new();
        for l in sdp.lines().map(str::trim_end) {
            if let Some(v) = l.strip_prefix("a=rtpmap:") {
                let (pt, enc) = v.split_once(' ').expect("rtpmap");
                let mut parts = enc.split('/');
                let name = parts.next().unwrap_or_default().to_ascii_lowercase();
                let rate = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
                rtpmap.insert(pt.parse().expect("pt"), (name, rate));
            } else if let Some(c) = l.strip_prefix("a=") {
                if c.starts_with("candidate:") {
                    if let Ok(c) = c.parse::<Candidate>() {
                        candidates.push(c);
                    }
                }
            }
        }
        Self {
            ufrag: attr("ice-ufrag").expect("ice-ufrag").to_owned(),
            pwd: attr("ice-pwd").expect("ice-pwd").to_owned(),
            fingerprint: Fingerprint::parse(hash, value).expect("fingerprint"),
            setup: Setup::parse(attr("setup").expect("setup")).expect("setup value"),
            mid: attr("mid").unwrap_or("0").to_owned(),
            rtpmap,
            candidates,
        }
    }

    fn payload_type(&self, name: &str, rate: u32) -> Option<u8> {
        self.rtpmap
            .iter()
            .find(|(_, (n, r))| n == name && *r == rate)
            .map(|(pt, _)| *pt)
    }
}

/// The (client codec, payload type, telephone-event payload type) we use.
fn client_codec(codec: Codec) -> (u8, u8) {
    match codec {
        Codec::Opus => (111, 110),
        _ => (0, 126),
    }
}

fn rtpmap_lines(codec: Codec, pt: u8, te: u8) -> Vec<String> {
    match codec {
        Codec::Opus => vec![
            format!("a=rtpmap:{pt} opus/48000/2"),
            format!("a=fmtp:{pt} minptime=10;useinbandfec=1"),
            format!("a=rtpmap:{te} telephone-event/48000"),
        ],
        _ => vec![
            format!("a=rtpmap:{pt} PCMU/8000"),
            format!("a=rtpmap:{te} telephone-event/8000"),
        ],
    }
}

/// Our SDP (offer or answer) from the driver's [`LocalDescription`].
fn our_sdp(
    local: &LocalDescription,
    setup: Setup,
    codec: Codec,
    pt: u8,
    te: u8,
    mid: &str,
) -> String {
    let c0 = &local.candidates[0];
    let mut l = vec![
        "v=0".to_owned(),
        "o=- 1 1 IN IP4 127.0.0.1".to_owned(),
        "s=-".to_owned(),
        "t=0 0".to_owned(),
        format!("a=group:BUNDLE {mid}"),
        "a=msid-semantic: WMS".to_owned(),
        format!("m=audio {} UDP/TLS/RTP/SAVPF {pt} {te}", c0.addr.port()),
        format!(
            "c=IN {} {}",
            if c0.addr.is_ipv6() { "IP6" } else { "IP4" },
            c0.addr.ip()
        ),
        format!("a=ice-ufrag:{}", local.ice.ufrag),
        format!("a=ice-pwd:{}", local.ice.pwd),
        "a=ice-options:trickle".to_owned(),
        format!("a=fingerprint:{} {}", Fingerprint::HASH, local.fingerprint),
        format!("a=setup:{}", setup.as_str()),
        format!("a=mid:{mid}"),
        "a=sendrecv".to_owned(),
        "a=rtcp-mux".to_owned(),
    ];
    l.extend(rtpmap_lines(codec, pt, te));
    for c in &local.candidates {
        l.push(format!("a={c}"));
    }
    l.push("a=end-of-candidates".to_owned());
    l.push(String::new());
    l.join("\r\n")
}

// ------------------------------------------------------------------ the trunk socket

struct Received {
    at: Instant,
    seq: u16,
    pt: u8,
    payload: Vec<u8>,
}

/// A UDP socket playing the SIP trunk: sends a PCMU tone every 20 ms to `dest` once it is
/// known, and records every RTP packet it receives.
struct Trunk {
    addr: SocketAddr,
    dest: Arc<Mutex<Option<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(Vec<Received>, u64)>,
}

impl Trunk {
    fn start() -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind trunk");
        sock.set_read_timeout(Some(Duration::from_millis(2)))
            .expect("timeout");
        let addr = sock.local_addr().expect("addr");
        let dest = Arc::new(Mutex::new(None::<SocketAddr>));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s) = (dest.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut sent = 0u64;
            let start = Instant::now();
            let mut buf = [0u8; 1500];
            let mut phase = 0.0f64;
            while !s.load(Ordering::Relaxed) {
                let due = (start.elapsed().as_millis() / 20) as u64;
                while sent <= due {
                    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0xCA, 0xFE, 0xBA, 0xBE];
                    p[2..4].copy_from_slice(&(sent as u16).to_be_bytes());
                    p[4..8].copy_from_slice(&((sent as u32) * 160).to_be_bytes());
                    for _ in 0..160 {
                        let x = 0.5 * 32767.0 * phase.sin();
                        phase += 2.0 * std::f64::consts::PI * TRUNK_TONE_HZ / 8000.0;
                        p.push(media::g711::ulaw_encode(x as i16));
                    }
                    phase %= 2.0 * std::f64::consts::PI;
                    if let Some(to) = *d.lock().expect("lock") {
                        let _ = sock.send_to(&p, to);
                    }
                    sent += 1;
                }
                if let Ok((n, _)) = sock.recv_from(&mut buf) {
                    if n >= 12 && buf[0] >> 6 == 2 && !(192..=223).contains(&buf[1]) {
                        let cc = usize::from(buf[0] & 0x0F);
                        let hl = 12 + 4 * cc;
                        if n >= hl {
                            got.push(Received {
                                at: Instant::now(),
                                seq: u16::from_be_bytes([buf[2], buf[3]]),
                                pt: buf[1] & 0x7F,
                                payload: buf[hl..n].to_vec(),
                            });
                        }
                    }
                }
            }
            (got, sent)
        });
        Self {
            addr,
            dest,
            stop,
            thread,
        }
    }

    fn finish(self) -> Vec<Received> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("trunk thread").0
    }
}

/// Dominant frequency by interpolated rising zero crossings (the same method as the
/// libwebrtc peer's analyser), in Hz, of `x` sampled at `rate`.
fn frequency(x: &[f64], rate: f64) -> f64 {
    let mean = x.iter().sum::<f64>() / x.len().max(1) as f64;
    let rms = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt();
    let hyst = rms * 0.1;
    let (mut armed, mut first, mut last, mut count) = (false, -1.0, -1.0, 0u32);
    for i in 1..x.len() {
        let (a, b) = (x[i - 1] - mean, x[i] - mean);
        if b < -hyst {
            armed = true;
        }
        if armed && a < 0.0 && b >= 0.0 {
            let t = (i - 1) as f64 + (-a) / (b - a);
            if first < 0.0 {
                first = t;
            } else {
                count += 1;
            }
            last = t;
            armed = false;
        }
    }
    if count > 0 && last > first {
        f64::from(count) * rate / (last - first)
    } else {
        0.0
    }
}

// ------------------------------------------------------------------ one call

struct Outcome {
    /// Frequency of what arrived at the trunk (from libwebrtc), Hz.
    at_trunk_hz: f64,
    /// RMS of it, 0..1 of full scale.
    at_trunk_rms: f64,
    /// Packet loss seen at the trunk, fraction.
    at_trunk_loss: f64,
    /// What libwebrtc measured of the trunk's tone.
    at_peer: serde_json::Value,
    /// libwebrtc's getStats() summary.
    peer_stats: serde_json::Value,
    ours_client: LegStats,
    ours_trunk: LegStats,
    transcoding_codec: Codec,
}

fn params(seed: u8, role: ice::Role, trunk: SocketAddr) -> CallMediaParams {
    CallMediaParams {
        call_id: format!("interop-{seed}"),
        media_config: Arc::new(media::Config::default()),
        ice_config: ice::Config::default(),
        client: ClientLegParams {
            ice_role: role,
            media: None,
        },
        trunk: Some(TrunkMedia {
            codec: Codec::Pcmu,
            payload_type: 0,
            telephone_event: Some(101),
            security: Security::Plain,
            remote: Some(trunk),
        }),
        bind: BindParams::loopback(),
        rng_seed: Some([seed; 32]),
    }
}

/// Sets up the call: SDP both ways, candidates. Returns the driver's handle and events.
fn connect(
    scratch: &Scratch,
    dtls: OurDtls,
    codec: Codec,
    seed: u8,
    trunk: SocketAddr,
    corrupt_fingerprint: bool,
) -> (Peer, CallMediaHandle, CallMediaEvents, LocalDescription) {
    let role = match dtls {
        OurDtls::Server => ice::Role::Controlling,
        OurDtls::Client => ice::Role::Controlled,
    };
    let (handle, events, local) =
        CallMedia::spawn_on_own_thread(params(seed, role, trunk)).expect("spawn media driver");
    assert!(local.candidates.iter().all(|c| c.addr.ip().is_loopback()));
    assert_eq!(local.setup, Setup::Actpass);
    let (pt, te) = client_codec(codec);
    let mut peer = Peer::start(scratch, dtls == OurDtls::Client);
    let mut trickled = Vec::new();
    let remote = match dtls {
        OurDtls::Server => {
            peer.send(
                serde_json::json!({"offer": our_sdp(&local, Setup::Actpass, codec, pt, te, "0")}),
            );
            let answer = peer.wait_key("answer", Duration::from_secs(15), |v| trickled.push(v));
            RemoteSdp::parse(answer.as_str().expect("answer sdp"))
        }
        OurDtls::Client => {
            let offer = peer.wait_key("offer", Duration::from_secs(15), |v| trickled.push(v));
            RemoteSdp::parse(offer.as_str().expect("offer sdp"))
        }
    };
    let (pt, te, local_setup) = match dtls {
        OurDtls::Server => {
            assert_eq!(
                remote.setup,
                Setup::Active,
                "libwebrtc answers actpass with active"
            );
            (pt, te, Setup::Passive)
        }
        OurDtls::Client => {
            assert_eq!(remote.setup, Setup::Actpass);
            let (name, rate, tename, terate) = match codec {
                Codec::Opus => ("opus", 48000, "telephone-event", 48000),
                _ => ("pcmu", 8000, "telephone-event", 8000),
            };
            let pt = remote.payload_type(name, rate).expect("codec offered");
            let te = remote
                .payload_type(tename, terate)
                .expect("telephone-event offered");
            let answer = our_sdp(&local, Setup::Active, codec, pt, te, &remote.mid);
            peer.send(serde_json::json!({ "answer": answer }));
            (pt, te, Setup::Active)
        }
    };
    let mut fingerprint = remote.fingerprint;
    if corrupt_fingerprint {
        fingerprint.0[7] ^= 0x40;
    }
    handle
        .set_client_media(ClientMedia {
            codec,
            payload_type: pt,
            telephone_event: Some(te),
            extra_telephone_events: Vec::new(),
            dtls: Some(ClientDtls {
                local_setup,
                remote_fingerprint: fingerprint,
            }),
        })
        .expect("set client media");
    handle
        .remote_ice_credentials(&remote.ufrag, &remote.pwd)
        .expect("creds");
    for c in remote
        .candidates
        .iter()
        .filter(|c| c.addr.ip().is_loopback())
    {
        handle.remote_candidate(c.clone()).expect("candidate");
    }
    for v in trickled {
        forward_candidate(&handle, &v);
    }
    (peer, handle, events, local)
}

fn forward_candidate(handle: &CallMediaHandle, v: &serde_json::Value) {
    if let Some(c) = v.get("candidate").and_then(|c| c.as_str()) {
        if let Ok(c) = c.parse::<Candidate>() {
            if c.addr.ip().is_loopback() {
                handle.remote_candidate(c).expect("candidate");
            }
        }
    }
}

/// Pumps both sides until `done` returns a value from one of our events, or panics at `limit`.
fn pump<T>(
    peer: &mut Peer,
    handle: &CallMediaHandle,
    events: &mut CallMediaEvents,
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&CallMediaEvent) -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no {what} within {limit:?}; our events {seen:?}\n{}",
            peer.process.log_tail(30)
        );
        while let Ok(v) = peer.rx.try_recv() {
            forward_candidate(handle, &v);
        }
        while let Ok(e) = events.try_recv() {
            if let Some(t) = done(&e) {
                return t;
            }
            seen.push(e);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn call(dtls: OurDtls, codec: Codec, seed: u8) -> Outcome {
    Namespace::require_loopback_only();
    let scratch =
        Scratch::new(&format!("media_webrtc_{dtls:?}_{}", codec.name())).expect("scratch");
    let trunk = Trunk::start();
    let (mut peer, handle, mut events, local) =
        connect(&scratch, dtls, codec, seed, trunk.addr, false);
    *trunk.dest.lock().expect("lock") = Some(local.trunk_rtp);
    let t0 = Instant::now();
    let mut selected = None;
    let mut flowing = Vec::new();
    let profile = pump(
        &mut peer,
        &handle,
        &mut events,
        Duration::from_secs(20),
        "DtlsConnected",
        |e| match e {
            CallMediaEvent::IceSelected { local, remote } => {
                selected = Some((local.addr, remote.addr));
                None
            }
            CallMediaEvent::Failed { error } => panic!("call failed: {error}"),
            CallMediaEvent::MediaFlowing { leg } => {
                flowing.push(*leg);
                None
            }
            CallMediaEvent::DtlsConnected { profile } => Some(*profile),
            _ => None,
        },
    );
    let (l, r) = selected.expect("ice selected a pair before dtls");
    assert!(l.ip().is_loopback() && r.ip().is_loopback());
    eprintln!(
        "{dtls:?}/{}: dtls connected {:?} after start, profile {profile:?}, pair {l} -> {r}",
        codec.name(),
        t0.elapsed()
    );
    let audio_start = Instant::now();
    while audio_start.elapsed() < AUDIO_TIME {
        while let Ok(v) = peer.rx.try_recv() {
            forward_candidate(&handle, &v);
        }
        while let Ok(e) = events.try_recv() {
            match e {
                CallMediaEvent::Failed { error } => panic!("call failed: {error}"),
                CallMediaEvent::MediaFlowing { leg } => flowing.push(leg),
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    peer.send(serde_json::json!({"stats": true}));
    let peer_stats = peer.wait_key("stats", Duration::from_secs(10), |_| {});
    handle.stop().expect("stop");
    let (ours_client, ours_trunk) = pump(
        &mut peer,
        &handle,
        &mut events,
        Duration::from_secs(5),
        "Stopped",
        |e| match e {
            CallMediaEvent::Stopped { client, trunk } => Some((*client, *trunk)),
            _ => None,
        },
    );
    peer.send(serde_json::json!({"quit": true}));
    let _ = peer.process.wait_timeout(Duration::from_secs(5));
    let got = trunk.finish();
    assert!(
        flowing.contains(&media::Leg::Client) && flowing.contains(&media::Leg::Trunk),
        "media flowing from both legs: {flowing:?}"
    );

    // What arrived at the trunk: PCMU from libwebrtc's tone; the last second.
    let audio: Vec<&Received> = got.iter().filter(|p| p.pt == 0).collect();
    assert!(
        audio.len() > 100,
        "audio at the trunk: {} packets",
        audio.len()
    );
    let end = audio.last().expect("audio").at;
    let window: Vec<f64> = audio
        .iter()
        .filter(|p| end.duration_since(p.at) < Duration::from_secs(1))
        .flat_map(|p| {
            p.payload
                .iter()
                .map(|&b| f64::from(media::g711::ulaw_decode(b)) / 32768.0)
        })
        .collect();
    let at_trunk_hz = frequency(&window, 8000.0);
    let at_trunk_rms = (window.iter().map(|v| v * v).sum::<f64>() / window.len() as f64).sqrt();
    // Loss over the steady state (the last 3 s): sequence span against packets seen.
    let steady: Vec<u16> = audio
        .iter()
        .filter(|p| end.duration_since(p.at) < Duration::from_secs(3))
        .map(|p| p.seq)
        .collect();
    let span = u32::from(steady.last().expect("seq").wrapping_sub(steady[0])) + 1;
    let mut distinct = steady.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let at_trunk_loss = 1.0 - distinct.len() as f64 / f64::from(span);
    Outcome {
        at_trunk_hz,
        at_trunk_rms,
        at_trunk_loss,
        at_peer: peer_stats["audio"].clone(),
        peer_stats,
        ours_client,
        ours_trunk,
        transcoding_codec: codec,
    }
}

fn check(o: &Outcome, name: &str) {
    let peer_hz = o.at_peer["frequency_hz"].as_f64().unwrap_or(0.0);
    let peer_rms = o.at_peer["rms"].as_f64().unwrap_or(0.0);
    let inbound = &o.peer_stats["inbound"];
    let received = inbound["packets_received"].as_f64().unwrap_or(0.0);
    let lost = inbound["packets_lost"].as_f64().unwrap_or(0.0).max(0.0);
    let peer_loss = lost / (received + lost).max(1.0);
    eprintln!(
        "{name}: trunk heard {:.1} Hz (rms {:.3}, loss {:.2} %); libwebrtc heard {peer_hz:.1} Hz \
         (rms {peer_rms:.3}, tone ratio {:.2}, {received} packets, loss {:.2} %, codec {}, {}); \
         ours: client rx {} lost {} / trunk rx {} lost {}; client tx {} trunk tx {}",
        o.at_trunk_hz,
        o.at_trunk_rms,
        o.at_trunk_loss * 100.0,
        o.at_peer["tone_ratio"].as_f64().unwrap_or(0.0),
        peer_loss * 100.0,
        o.peer_stats["codec"],
        o.peer_stats["srtp_cipher"],
        o.ours_client.rx.packets,
        o.ours_client.rx.lost,
        o.ours_trunk.rx.packets,
        o.ours_trunk.rx.lost,
        o.ours_client.tx.packets,
        o.ours_trunk.tx.packets,
    );
    assert_eq!(o.peer_stats["dtls_state"], "connected", "{}", o.peer_stats);
    let want_mime = match o.transcoding_codec {
        Codec::Opus => "audio/opus",
        _ => "audio/PCMU",
    };
    assert_eq!(
        o.peer_stats["codec"].as_str().map(str::to_ascii_lowercase),
        Some(want_mime.to_ascii_lowercase()),
        "codec on the client leg"
    );
    assert!(
        (o.at_trunk_hz - PEER_TONE_HZ).abs() <= PEER_TONE_HZ * 0.02,
        "libwebrtc's {PEER_TONE_HZ} Hz arrived at the trunk as {} Hz",
        o.at_trunk_hz
    );
    assert!(o.at_trunk_rms > 0.05, "trunk level {}", o.at_trunk_rms);
    assert!(
        (peer_hz - TRUNK_TONE_HZ).abs() <= TRUNK_TONE_HZ * 0.02,
        "the trunk's {TRUNK_TONE_HZ} Hz arrived at libwebrtc as {peer_hz} Hz"
    );
    assert!(peer_rms > 0.05, "libwebrtc level {peer_rms}");
    assert!(
        o.at_trunk_loss <= 0.01,
        "loss at the trunk {}",
        o.at_trunk_loss
    );
    assert!(peer_loss <= 0.01, "loss at libwebrtc {peer_loss}");
    assert!(received >= 150.0, "libwebrtc received {received} packets");
    let client_rx = o.ours_client.rx.packets as f64;
    assert!(
        (o.ours_client.rx.lost.max(0) as f64) <= 0.01 * client_rx,
        "our client-leg loss {} of {client_rx}",
        o.ours_client.rx.lost
    );
    assert!(o.ours_trunk.rx.packets > 150 && o.ours_client.tx.packets > 150);
}

#[test]
fn media_webrtc_we_dtls_server_opus_transcoded() {
    let o = call(OurDtls::Server, Codec::Opus, 21);
    check(&o, "we DTLS server, Opus <-> PCMU");
}

#[test]
fn media_webrtc_we_dtls_client_opus_transcoded() {
    let o = call(OurDtls::Client, Codec::Opus, 22);
    check(&o, "we DTLS client, Opus <-> PCMU");
}

#[test]
fn media_webrtc_we_dtls_server_pcmu_passthrough() {
    let o = call(OurDtls::Server, Codec::Pcmu, 23);
    check(&o, "we DTLS server, PCMU passthrough");
}

#[test]
fn media_webrtc_we_dtls_client_pcmu_passthrough() {
    let o = call(OurDtls::Client, Codec::Pcmu, 24);
    check(&o, "we DTLS client, PCMU passthrough");
}

#[test]
fn media_webrtc_wrong_fingerprint_is_a_security_error() {
    Namespace::require_loopback_only();
    for dtls in [OurDtls::Client, OurDtls::Server] {
        let scratch = Scratch::new(&format!("media_webrtc_badfp_{dtls:?}")).expect("scratch");
        let trunk = Trunk::start();
        let (mut peer, handle, mut events, _local) =
            connect(&scratch, dtls, Codec::Opus, 25, trunk.addr, true);
        let error = pump(
            &mut peer,
            &handle,
            &mut events,
            Duration::from_secs(20),
            "Failed",
            |e| match e {
                CallMediaEvent::Failed { error } => Some(error.clone()),
                CallMediaEvent::DtlsConnected { .. } => {
                    panic!("dtls connected despite a wrong fingerprint")
                }
                _ => None,
            },
        );
        eprintln!("{dtls:?}: wrong fingerprint -> {error}");
        assert!(
            matches!(error, Failure::Security(_)) && error.is_security(),
            "{error:?}"
        );
        pump(
            &mut peer,
            &handle,
            &mut events,
            Duration::from_secs(5),
            "Stopped",
            |e| matches!(e, CallMediaEvent::Stopped { .. }).then_some(()),
        );
        peer.send(serde_json::json!({"quit": true}));
        let _ = peer.process.wait_timeout(Duration::from_secs(5));
        drop(trunk.finish());
    }
}
