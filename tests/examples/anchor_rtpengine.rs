//! Anchor benchmark: the CPU cost of Opus <-> PCMU transcoding in rtpengine (the Debian
//! `rtpengine-daemon`, userspace forwarding with `--table=-1`) against our
//! `media::Session` pipeline and bare libopus, on the same workload, in the same run.
//!
//! For each call count N (default 20 and 50) and T seconds (default 10):
//!
//! 1. starts `rtpengine --foreground --table=-1 --interface=127.0.0.1 --listen-ng=…`
//!    with its own RTP port range, bounded in time and killed by pid;
//! 2. sets up N calls over the ng control protocol (bencode over UDP): `offer` with an
//!    Opus-only RTP/AVP SDP from side A and `codec: { transcode: ["PCMU"] }`, then
//!    `answer` with a PCMU-only SDP from side B, so rtpengine must transcode both ways;
//! 3. sends real RTP through every call, both ways, at 20 ms pacing (A: Opus from
//!    libopus, a 440 Hz tone; B: PCMU, a 1000 Hz tone), counts what comes out and
//!    checks the payload types (A receives Opus PT 96, B receives PCMU PT 0) and the
//!    tones heard on call 0;
//! 4. reads rtpengine's CPU time (utime+stime of `/proc/PID/stat`, which sums its
//!    threads, and the sum of `/proc/PID/task/*/schedstat` in ns) over the measured
//!    window → CPU per transcoded packet and transcoded calls per core;
//! 5. runs N `media::Session`s (Opus client leg, PCMU trunk leg, plain RTP on both legs
//!    with `Config::allow_unencrypted_client(true)`) in process on the same packets at
//!    the same 20 ms pacing on one thread, measuring that thread's CPU time
//!    (`/proc/thread-self/schedstat`); and bare libopus (one decode + one encode per
//!    call and 20 ms, the pipeline's Opus settings) as the floor.
//!
//! Run (as root; it enters a loopback-only network namespace by itself with
//! `unshare --net` when not already in one):
//!
//! ```text
//! cargo run --release -p jsg-tests --example anchor_rtpengine [-- CALLS[,CALLS…] [SECONDS]]
//! ```
//!
//! This is a benchmark, not a test: nothing here asserts a timing. It exits non-zero if
//! rtpengine does not transcode (wrong payload types, packets missing).
#![allow(clippy::disallowed_methods)] // a benchmark measures real time
#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark prints its table

use std::collections::BTreeMap;
use std::fs;
use std::hint::black_box;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use media::cert::Certificate;
use media::codec::{Codec, OpusSettings};
use media::config::{LegConfig, Security};
use media::rtp::write_header;
use media::{Config, Leg, Session, TransmitKind};
use rand::SeedableRng;
use testbed::{Namespace, ProcessBuilder, Scratch};

/// Opus payload type on side A (and on our client leg).
const OPUS_PT: u8 = 96;
/// PCMU payload type on side B (and on our trunk leg).
const PCMU_PT: u8 = 0;
/// Tone side A sends (Opus).
const A_HZ: f64 = 440.0;
/// Tone side B sends (PCMU).
const B_HZ: f64 = 1000.0;
/// Rounds of warm-up before the measured window (1 s).
const WARMUP_ROUNDS: usize = 50;
/// Set in the re-executed child that already runs inside the namespace.
const IN_NS_ENV: &str = "JSG_ANCHOR_IN_NAMESPACE";

type Res<T> = Result<T, String>;

// ---------------------------------------------------------------------------------------
// bencode (the ng protocol's encoding)

#[derive(Debug, Clone)]
enum Ben {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Self>),
    Dict(BTreeMap<Vec<u8>, Self>),
}

impl Ben {
    fn s(v: &str) -> Self {
        Self::Bytes(v.as_bytes().to_vec())
    }

    fn dict<const K: usize>(items: [(&str, Self); K]) -> Self {
        Self::Dict(
            items
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Self::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Self::List(l) => {
                out.push(b'l');
                l.iter().for_each(|v| v.encode(out));
                out.push(b'e');
            }
            Self::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    Self::Bytes(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// Decodes one value from the front of `input`; returns it and the rest.
    fn decode(input: &[u8]) -> Res<(Self, &[u8])> {
        let bad = || format!("malformed bencode at {:?}", String::from_utf8_lossy(input));
        match input.first().ok_or_else(bad)? {
            b'i' => {
                let end = input.iter().position(|&c| c == b'e').ok_or_else(bad)?;
                let n = std::str::from_utf8(&input[1..end])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(bad)?;
                Ok((Self::Int(n), &input[end + 1..]))
            }
            b'l' => {
                let mut rest = &input[1..];
                let mut l = Vec::new();
                while rest.first() != Some(&b'e') {
                    let (v, r) = Self::decode(rest)?;
                    l.push(v);
                    rest = r;
                }
                Ok((Self::List(l), &rest[1..]))
            }
            b'd' => {
                let mut rest = &input[1..];
                let mut d = BTreeMap::new();
                while rest.first() != Some(&b'e') {
                    let (Self::Bytes(k), r) = Self::decode(rest)? else {
                        return Err(bad());
                    };
                    let (v, r) = Self::decode(r)?;
                    d.insert(k, v);
                    rest = r;
                }
                Ok((Self::Dict(d), &rest[1..]))
            }
            b'0'..=b'9' => {
                let colon = input.iter().position(|&c| c == b':').ok_or_else(bad)?;
                let len: usize = std::str::from_utf8(&input[..colon])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(bad)?;
                let body = input.get(colon + 1..colon + 1 + len).ok_or_else(bad)?;
                Ok((Self::Bytes(body.to_vec()), &input[colon + 1 + len..]))
            }
            _ => Err(bad()),
        }
    }

    fn get(&self, key: &str) -> Option<&Self> {
        match self {
            Self::Dict(d) => d.get(key.as_bytes()),
            _ => None,
        }
    }

    fn str(&self) -> Option<String> {
        match self {
            Self::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// An ng control client: one UDP socket, one request at a time, cookie-matched replies.
struct Ng {
    sock: UdpSocket,
    server: SocketAddr,
    seq: u64,
}

impl Ng {
    fn new(server: SocketAddr) -> Res<Self> {
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .map_err(|e| e.to_string())?;
        Ok(Self {
            sock,
            server,
            seq: 0,
        })
    }

    /// Sends `msg` (retrying up to `tries` times) and returns the reply dictionary;
    /// an error if `result` is not `ok`/`pong`.
    fn request(&mut self, msg: &Ben, tries: usize) -> Res<Ben> {
        self.seq += 1;
        let cookie = format!("jsg{}_{}", std::process::id(), self.seq);
        let mut out = format!("{cookie} ").into_bytes();
        msg.encode(&mut out);
        let mut buf = vec![0u8; 65536];
        for _ in 0..tries {
            self.sock
                .send_to(&out, self.server)
                .map_err(|e| format!("ng send: {e}"))?;
            let deadline = Instant::now() + Duration::from_millis(300);
            while Instant::now() < deadline {
                let n = match self.sock.recv(&mut buf) {
                    Ok(n) => n,
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        break
                    }
                    Err(e) => return Err(format!("ng recv: {e}")),
                };
                let reply = &buf[..n];
                let Some(body) = reply
                    .strip_prefix(cookie.as_bytes())
                    .and_then(|r| r.strip_prefix(b" "))
                else {
                    continue; // a late reply to an earlier request
                };
                let (v, _) = Ben::decode(body)?;
                let result = v.get("result").and_then(Ben::str).unwrap_or_default();
                if result == "ok" || result == "pong" {
                    return Ok(v);
                }
                return Err(format!(
                    "ng {result}: {}",
                    v.get("error-reason")
                        .and_then(Ben::str)
                        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
                ));
            }
        }
        Err(format!(
            "ng: no reply from {} after {tries} tries",
            self.server
        ))
    }
}

// ---------------------------------------------------------------------------------------
// signals, RTP, CPU clocks

fn tone(rate: u32, n: usize, start: usize, freq: f64) -> Vec<i16> {
    (start..start + n)
        .map(|i| {
            ((2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() * 9000.0) as i16
        })
        .collect()
}

/// 50 Opus payloads (1 s of a 440 Hz tone), 48 kHz mono, 32 kbit/s, as libwebrtc sends.
fn opus_payloads() -> Res<Vec<Vec<u8>>> {
    let e = |e: opus::Error| format!("libopus: {e}");
    let mut enc =
        opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip).map_err(e)?;
    enc.set_bitrate(opus::Bitrate::Bits(32000)).map_err(e)?;
    enc.set_inband_fec(true).map_err(e)?;
    (0..50)
        .map(|i| {
            let mut out = [0u8; 1500];
            let n = enc
                .encode(&tone(48000, 960, i * 960, A_HZ), &mut out)
                .map_err(e)?;
            Ok(out[..n].to_vec())
        })
        .collect()
}

/// 50 PCMU payloads (1 s of a 1000 Hz tone).
fn pcmu_payloads() -> Vec<Vec<u8>> {
    (0..50)
        .map(|i| {
            tone(8000, 160, i * 160, B_HZ)
                .iter()
                .map(|&s| media::g711::ulaw_encode(s))
                .collect()
        })
        .collect()
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 12];
    write_header(&mut p, false, pt, seq, ts, ssrc);
    p.extend_from_slice(payload);
    p
}

/// Frequency of `pcm` by zero crossings, in Hz.
fn frequency(pcm: &[i16], rate: f64) -> f64 {
    if pcm.len() < 2 {
        return 0.0;
    }
    let crossings = pcm.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 / (pcm.len() as f64 / rate)
}

/// Nanoseconds on CPU of the thread/process whose schedstat file is `path` (first field).
fn schedstat_ns(path: &str) -> u64 {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time of this thread, in ns.
fn thread_cpu_ns() -> u64 {
    schedstat_ns("/proc/thread-self/schedstat")
}

/// Clock ticks per second of `/proc/PID/stat` (USER_HZ; 100 on Linux).
const USER_HZ: f64 = 100.0;

/// A process's CPU time: (utime+stime of `/proc/PID/stat` in s, summed over all its
/// threads including exited ones; sum of its live threads' schedstat in s).
fn process_cpu(pid: u32) -> Res<(f64, f64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("read /proc/{pid}/stat: {e}"))?;
    // fields after the ")" of comm: state is field 3, utime 14, stime 15
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut sched = 0u64;
    if let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in dir.flatten() {
            sched += schedstat_ns(&format!("{}/schedstat", t.path().display()));
        }
    }
    Ok((ticks as f64 / USER_HZ, sched as f64 / 1e9))
}

fn threads(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count)
}

/// Sleeps until `deadline` (no-op if it passed).
fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        sleep(deadline - now);
    }
}

// ---------------------------------------------------------------------------------------
// rtpengine

struct EngineResult {
    cpu_stat_s: f64,
    cpu_sched_s: f64,
    packets_to_a: u64,
    packets_to_b: u64,
    wrong_pt: u64,
    heard_at_a_hz: f64,
    heard_at_b_hz: f64,
    threads: usize,
    expected: u64,
    idle_cpu_per_s: f64,
    /// rtpengine's Opus towards A (call 0): mean payload bytes, stereo, TOC config.
    opus_out: OpusStats,
}

/// What an Opus stream looks like, from its payloads' TOC bytes (RFC 6716 §3.1).
#[derive(Debug, Default, Clone, Copy)]
struct OpusStats {
    packets: u64,
    bytes: u64,
    stereo: u64,
    last_config: u8,
}

impl OpusStats {
    fn add(&mut self, payload: &[u8]) {
        if let Some(&toc) = payload.first() {
            self.packets += 1;
            self.bytes += payload.len() as u64;
            self.stereo += u64::from(toc & 0x04 != 0);
            self.last_config = toc >> 3;
        }
    }

    /// Mean bitrate in bit/s at 50 packets per second.
    fn bitrate(&self) -> i32 {
        (self.bytes * 8 * 50 / self.packets.max(1)) as i32
    }

    fn describe(&self) -> String {
        let mode = match self.last_config {
            0..=11 => "SILK",
            12..=15 => "hybrid",
            _ => "CELT",
        };
        let bw = match self.last_config {
            0..=3 | 16..=19 => "NB",
            4..=7 => "MB",
            8..=11 | 20..=23 => "WB",
            12..=13 | 24..=27 => "SWB",
            _ => "FB",
        };
        format!(
            "{:.1} bytes/packet ({} bit/s), {}, TOC config {} ({mode} {bw})",
            self.bytes as f64 / self.packets.max(1) as f64,
            self.bitrate(),
            if self.stereo * 2 > self.packets {
                "stereo"
            } else {
                "mono"
            },
            self.last_config
        )
    }
}

/// One call's two far ends.
struct Ends {
    a: UdpSocket,
    b: UdpSocket,
    /// Where A sends (rtpengine's answer SDP) and where B sends (its offer SDP).
    a_sends_to: SocketAddr,
    b_sends_to: SocketAddr,
}

fn sdp(port: u16, session: u64, opus: bool) -> String {
    let (fmt, map) = if opus {
        (OPUS_PT, format!("a=rtpmap:{OPUS_PT} opus/48000/2\r\n"))
    } else {
        (PCMU_PT, format!("a=rtpmap:{PCMU_PT} PCMU/8000\r\n"))
    };
    format!(
        "v=0\r\no=- {session} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {fmt}\r\n{map}a=ptime:20\r\na=sendrecv\r\n"
    )
}

/// The media address and payload types in rtpengine's SDP.
fn parse_sdp(sdp: &str) -> Res<(SocketAddr, Vec<String>)> {
    let mut ip = None;
    let mut port = None;
    let mut maps = Vec::new();
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(c) = line.strip_prefix("c=IN IP4 ") {
            ip = c.trim().parse::<Ipv4Addr>().ok();
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            port = m
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok());
        } else if let Some(r) = line.strip_prefix("a=rtpmap:") {
            maps.push(r.to_owned());
        }
    }
    match (ip, port) {
        (Some(ip), Some(port)) => Ok((SocketAddr::from((ip, port)), maps)),
        _ => Err(format!("no c=/m= in rtpengine's SDP:\n{sdp}")),
    }
}

fn run_rtpengine(
    scratch: &Scratch,
    calls: usize,
    seconds: usize,
    opus_a: &[Vec<u8>],
    pcmu_b: &[Vec<u8>],
) -> Res<EngineResult> {
    let ng_port = testbed::ports::free_port();
    let ports = u16::try_from(calls * 8 + 40).map_err(|e| e.to_string())?;
    let port_min = testbed::ports::free_port_range(ports);
    let pidfile = scratch.join(format!("rtpengine-{calls}.pid"));
    let limit = Duration::from_secs((seconds as u64) * 2 + 60);
    let mut proc = ProcessBuilder::new(format!("rtpengine-{calls}"), "rtpengine")
        .args([
            "--foreground".to_owned(),
            "--log-stderr".to_owned(),
            "--log-level=5".to_owned(),
            "--table=-1".to_owned(),
            "--interface=127.0.0.1".to_owned(),
            format!("--listen-ng=127.0.0.1:{ng_port}"),
            format!("--port-min={port_min}"),
            format!("--port-max={}", port_min + ports - 1),
            format!("--pidfile={}", pidfile.display()),
            "--timeout=60".to_owned(),
        ])
        .time_limit(limit)
        .spawn(scratch.path())
        .map_err(|e| e.to_string())?;
    let server = SocketAddr::from((Ipv4Addr::LOCALHOST, ng_port));
    let mut ng = Ng::new(server)?;
    // wait for the control socket
    let started = Instant::now();
    loop {
        match ng.request(&Ben::dict([("command", Ben::s("ping"))]), 1) {
            Ok(_) => break,
            Err(e) if started.elapsed() > Duration::from_secs(10) => {
                return Err(format!(
                    "rtpengine did not answer ping: {e}\n{}",
                    proc.log_tail(20)
                ))
            }
            Err(_) => proc.check_running().map_err(|e| e.to_string())?,
        }
    }
    let pid: u32 = fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| format!("no pid in {}", pidfile.display()))?;

    // its idle cost (timer threads) over 2 s before any call exists
    let idle0 = process_cpu(pid)?;
    sleep(Duration::from_secs(2));
    let idle1 = process_cpu(pid)?;
    let idle_cpu_per_s = (idle1.0 - idle0.0).max(idle1.1 - idle0.1) / 2.0;

    // set up the calls
    let mut ends = Vec::with_capacity(calls);
    let mut offered_maps = Vec::new();
    let mut answered_maps = Vec::new();
    for i in 0..calls {
        let a = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
        let b = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
        let a_port = a.local_addr().map_err(|e| e.to_string())?.port();
        let b_port = b.local_addr().map_err(|e| e.to_string())?.port();
        let call_id = format!("anchor-{calls}-{i}");
        let offer = Ben::dict([
            ("command", Ben::s("offer")),
            ("call-id", Ben::s(&call_id)),
            ("from-tag", Ben::s("side-a")),
            ("sdp", Ben::s(&sdp(a_port, 1000 + i as u64, true))),
            (
                "codec",
                Ben::dict([("transcode", Ben::List(vec![Ben::s("PCMU")]))]),
            ),
        ]);
        let r = ng.request(&offer, 5)?;
        let (b_sends_to, maps) =
            parse_sdp(&r.get("sdp").and_then(Ben::str).ok_or("offer: no sdp")?)?;
        if i == 0 {
            offered_maps = maps;
        }
        let answer = Ben::dict([
            ("command", Ben::s("answer")),
            ("call-id", Ben::s(&call_id)),
            ("from-tag", Ben::s("side-a")),
            ("to-tag", Ben::s("side-b")),
            ("sdp", Ben::s(&sdp(b_port, 2000 + i as u64, false))),
        ]);
        let r = ng.request(&answer, 5)?;
        let (a_sends_to, maps) =
            parse_sdp(&r.get("sdp").and_then(Ben::str).ok_or("answer: no sdp")?)?;
        if i == 0 {
            answered_maps = maps;
        }
        a.set_nonblocking(true).map_err(|e| e.to_string())?;
        b.set_nonblocking(true).map_err(|e| e.to_string())?;
        ends.push(Ends {
            a,
            b,
            a_sends_to,
            b_sends_to,
        });
    }
    println!("  rtpengine offer to B (call 0): rtpmap {offered_maps:?}; answer to A: rtpmap {answered_maps:?}");

    // drive media: each side sends to the address in the SDP rtpengine handed to it
    let rounds = WARMUP_ROUNDS + seconds * 50;
    let mut buf = [0u8; 2048];
    let mut to_a = 0u64;
    let mut to_b = 0u64;
    let mut wrong_pt = 0u64;
    let mut heard_a: Vec<i16> = Vec::new();
    let mut opus_out = OpusStats::default();
    let mut heard_b: Vec<i16> = Vec::new();
    let mut dec = opus::Decoder::new(48000, opus::Channels::Mono).map_err(|e| e.to_string())?;
    let mut pcm = vec![0i16; 5760];
    let mut cpu0 = (0.0, 0.0);
    let t0 = Instant::now();
    for r in 0..=rounds {
        // drain what arrived since the last tick
        for (i, e) in ends.iter().enumerate() {
            loop {
                match e.a.recv(&mut buf) {
                    Ok(n) if n >= 12 => {
                        if r > WARMUP_ROUNDS {
                            to_a += 1;
                        }
                        if buf[1] & 0x7f != OPUS_PT {
                            wrong_pt += 1;
                        } else if i == 0 && r > WARMUP_ROUNDS {
                            if let Ok(k) = dec.decode(&buf[12..n], &mut pcm, false) {
                                heard_a.extend_from_slice(&pcm[..k]);
                                opus_out.add(&buf[12..n]);
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("recv at A: {e}")),
                }
            }
            loop {
                match e.b.recv(&mut buf) {
                    Ok(n) if n >= 12 => {
                        if r > WARMUP_ROUNDS {
                            to_b += 1;
                        }
                        if buf[1] & 0x7f != PCMU_PT {
                            wrong_pt += 1;
                        } else if i == 0 && r > WARMUP_ROUNDS {
                            heard_b.extend(buf[12..n].iter().map(|&c| media::g711::ulaw_decode(c)));
                        }
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("recv at B: {e}")),
                }
            }
        }
        if r == WARMUP_ROUNDS {
            cpu0 = process_cpu(pid)?;
        }
        if r == rounds {
            break;
        }
        let k = r % 50;
        for (i, e) in ends.iter().enumerate() {
            let pa = rtp(
                OPUS_PT,
                r as u16,
                (r as u32) * 960,
                0xa000_0000 + i as u32,
                &opus_a[k],
            );
            let pb = rtp(
                PCMU_PT,
                r as u16,
                (r as u32) * 160,
                0xb000_0000 + i as u32,
                &pcmu_b[k],
            );
            e.a.send_to(&pa, e.a_sends_to)
                .map_err(|e| format!("send A: {e}"))?;
            e.b.send_to(&pb, e.b_sends_to)
                .map_err(|e| format!("send B: {e}"))?;
        }
        sleep_until(t0 + Duration::from_millis(20 * (r as u64 + 1)));
    }
    let cpu1 = process_cpu(pid)?;
    let nthreads = threads(pid);
    proc.check_running().map_err(|e| e.to_string())?;
    for i in 0..calls {
        let delete = Ben::dict([
            ("command", Ben::s("delete")),
            ("call-id", Ben::s(&format!("anchor-{calls}-{i}"))),
            ("from-tag", Ben::s("side-a")),
        ]);
        ng.request(&delete, 2)?;
    }
    proc.terminate(Duration::from_secs(3));
    Ok(EngineResult {
        cpu_stat_s: cpu1.0 - cpu0.0,
        cpu_sched_s: cpu1.1 - cpu0.1,
        packets_to_a: to_a,
        packets_to_b: to_b,
        wrong_pt,
        heard_at_a_hz: frequency(&heard_a, 48000.0),
        opus_out,
        heard_at_b_hz: frequency(&heard_b, 8000.0),
        threads: nthreads,
        idle_cpu_per_s,
        expected: (calls * seconds * 50) as u64,
    })
}

// ---------------------------------------------------------------------------------------
// ours and bare libopus

struct OursResult {
    cpu_s: f64,
    packets_out: u64,
    wrong_pt: u64,
    bare_cpu_s: f64,
    /// Our Opus towards the client (call 0).
    opus_out: OpusStats,
    rounds: usize,
}

fn run_ours(
    calls: usize,
    seconds: usize,
    opus_a: &[Vec<u8>],
    pcmu_b: &[Vec<u8>],
) -> Res<OursResult> {
    let mut cfg = Config::default();
    cfg.allow_unencrypted_client(true);
    let cfg = Arc::new(cfg);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let cert = Certificate::generate(&mut rng).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut sessions = (0..calls)
        .map(|i| {
            let client = LegConfig {
                codec: Codec::Opus,
                payload_type: OPUS_PT,
                telephone_event: None,
                extra_telephone_events: Vec::new(),
                security: Security::Plain,
                ssrc: 0x1000_0000 + i as u32,
            };
            let trunk = LegConfig {
                codec: Codec::Pcmu,
                payload_type: PCMU_PT,
                telephone_event: None,
                extra_telephone_events: Vec::new(),
                security: Security::Plain,
                ssrc: 0x2000_0000 + i as u32,
            };
            Session::new(cfg.clone(), &cert, client, trunk, &mut rng, start)
                .map_err(|e| e.to_string())
        })
        .collect::<Res<Vec<_>>>()?;
    let rounds = WARMUP_ROUNDS + seconds * 50;
    let inputs: Vec<(Vec<u8>, Vec<u8>)> = (0..rounds)
        .map(|r| {
            let k = r % 50;
            (
                rtp(OPUS_PT, r as u16, (r as u32) * 960, 0xa000_0001, &opus_a[k]),
                rtp(PCMU_PT, r as u16, (r as u32) * 160, 0xb000_0001, &pcmu_b[k]),
            )
        })
        .collect();
    let mut out = 0u64;
    let mut wrong_pt = 0u64;
    let mut opus_out = OpusStats::default();
    let mut cpu0 = 0u64;
    let t0 = Instant::now();
    for (r, (pa, pb)) in inputs.iter().enumerate() {
        if r == WARMUP_ROUNDS {
            cpu0 = thread_cpu_ns();
            out = 0;
        }
        let now = start + Duration::from_millis(20 * r as u64);
        for (i, s) in sessions.iter_mut().enumerate() {
            let first = i == 0 && r >= WARMUP_ROUNDS;
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now).map_err(|e| e.to_string())?;
            }
            s.handle_packet(now, Leg::Client, pa)
                .map_err(|e| e.to_string())?;
            s.handle_packet(now, Leg::Trunk, pb)
                .map_err(|e| e.to_string())?;
            while let Some(t) = s.poll_transmit() {
                if t.kind == TransmitKind::Rtp {
                    out += 1;
                    if first && t.leg == Leg::Client {
                        opus_out.add(t.contents.get(12..).unwrap_or_default());
                    }
                    let want = if t.leg == Leg::Client {
                        OPUS_PT
                    } else {
                        PCMU_PT
                    };
                    if t.contents.get(1).map(|b| b & 0x7f) != Some(want) {
                        wrong_pt += 1;
                    }
                }
                black_box(t.contents);
            }
            while let Some(ev) = s.poll_event() {
                black_box(ev);
            }
        }
        sleep_until(t0 + Duration::from_millis(20 * (r as u64 + 1)));
    }
    let cpu_s = (thread_cpu_ns() - cpu0) as f64 / 1e9;

    // bare libopus: per call and 20 ms, decode one client packet to 8 kHz and encode one
    // 8 kHz frame with the pipeline's settings; paced the same way
    let s = OpusSettings::default();
    let e = |e: opus::Error| format!("libopus: {e}");
    let mut bare = (0..calls)
        .map(|_| {
            let dec = opus::Decoder::new(8000, opus::Channels::Mono).map_err(e)?;
            let mut enc = opus::Encoder::new(8000, opus::Channels::Mono, opus::Application::Voip)
                .map_err(e)?;
            enc.set_bitrate(opus::Bitrate::Bits(s.bitrate)).map_err(e)?;
            enc.set_complexity(s.complexity).map_err(e)?;
            enc.set_inband_fec(s.inband_fec).map_err(e)?;
            enc.set_packet_loss_perc(s.packet_loss_perc).map_err(e)?;
            Ok((dec, enc))
        })
        .collect::<Res<Vec<_>>>()?;
    let pcm_b: Vec<Vec<i16>> = (0..50).map(|i| tone(8000, 160, i * 160, B_HZ)).collect();
    let mut pcm = [0i16; 960];
    let mut enc_out = [0u8; 1500];
    let mut bcpu0 = 0u64;
    let t0 = Instant::now();
    for r in 0..rounds {
        if r == WARMUP_ROUNDS {
            bcpu0 = thread_cpu_ns();
        }
        for (dec, enc) in &mut bare {
            let n = dec.decode(&opus_a[r % 50], &mut pcm, false).map_err(e)?;
            black_box(&pcm[..n]);
            let m = enc.encode(&pcm_b[r % 50], &mut enc_out).map_err(e)?;
            black_box(&enc_out[..m]);
        }
        sleep_until(t0 + Duration::from_millis(20 * (r as u64 + 1)));
    }
    let bare_cpu_s = (thread_cpu_ns() - bcpu0) as f64 / 1e9;
    Ok(OursResult {
        cpu_s,
        packets_out: out,
        wrong_pt,
        bare_cpu_s,
        opus_out,
        rounds: rounds - WARMUP_ROUNDS,
    })
}

/// libopus with an encoder set up like rtpengine's (48 kHz, `channels`, complexity 10 as
/// ffmpeg's libopus wrapper defaults to, `bitrate` as observed on its output): per call
/// and 20 ms, decode one client packet at 48 kHz and encode one 48 kHz frame; paced at
/// 20 ms on this thread. Returns the CPU seconds of the `rounds` after the warm-up.
fn bare_like_rtpengine(
    calls: usize,
    rounds: usize,
    opus_a: &[Vec<u8>],
    bitrate: i32,
    stereo: bool,
) -> Res<f64> {
    let e = |e: opus::Error| format!("libopus: {e}");
    let ch = if stereo {
        opus::Channels::Stereo
    } else {
        opus::Channels::Mono
    };
    let n_ch = if stereo { 2 } else { 1 };
    let mut codecs = (0..calls)
        .map(|_| {
            let dec = opus::Decoder::new(48000, ch).map_err(e)?;
            let mut enc = opus::Encoder::new(48000, ch, opus::Application::Voip).map_err(e)?;
            enc.set_bitrate(opus::Bitrate::Bits(bitrate.max(6000)))
                .map_err(e)?;
            enc.set_complexity(10).map_err(e)?;
            Ok((dec, enc))
        })
        .collect::<Res<Vec<_>>>()?;
    let pcm_in: Vec<Vec<i16>> = (0..50)
        .map(|i| {
            tone(48000, 960, i * 960, B_HZ)
                .into_iter()
                .flat_map(|v| std::iter::repeat_n(v, n_ch))
                .collect()
        })
        .collect();
    let mut pcm = vec![0i16; 5760 * 2];
    let mut out = [0u8; 1500];
    let mut cpu0 = 0u64;
    let t0 = Instant::now();
    for r in 0..WARMUP_ROUNDS + rounds {
        if r == WARMUP_ROUNDS {
            cpu0 = thread_cpu_ns();
        }
        for (dec, enc) in &mut codecs {
            let n = dec.decode(&opus_a[r % 50], &mut pcm, false).map_err(e)?;
            black_box(&pcm[..n]);
            let m = enc.encode(&pcm_in[r % 50], &mut out).map_err(e)?;
            black_box(&out[..m]);
        }
        sleep_until(t0 + Duration::from_millis(20 * (r as u64 + 1)));
    }
    Ok((thread_cpu_ns() - cpu0) as f64 / 1e9)
}

// ---------------------------------------------------------------------------------------

/// Re-runs this binary inside a new loopback-only network namespace.
fn reexec_in_namespace() -> ExitCode {
    let Ok(exe) = std::env::current_exe() else {
        eprintln!("anchor_rtpengine: cannot find my own executable");
        return ExitCode::FAILURE;
    };
    let status = Command::new("unshare")
        .args(["--net", "--", "sh", "-c"])
        .arg(r#"ip link set lo up && exec timeout --signal=KILL 900 "$0" "$@""#)
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(IN_NS_ENV, "1")
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => {
            eprintln!("anchor_rtpengine: in the namespace: {s}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!(
                "anchor_rtpengine: cannot run unshare --net (needs root): {e}; {}",
                testbed::HOW_TO_RUN
            );
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    if !Namespace::current().is_ok_and(|n| n.is_loopback_only()) {
        if std::env::var_os(IN_NS_ENV).is_some() {
            eprintln!("anchor_rtpengine: the new namespace is not loopback-only");
            return ExitCode::FAILURE;
        }
        return reexec_in_namespace();
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let call_counts: Vec<usize> = args.first().map_or_else(
        || vec![20, 50],
        |a| a.split(',').filter_map(|n| n.parse().ok()).collect(),
    );
    let seconds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    match run(&call_counts, seconds) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("anchor_rtpengine: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(call_counts: &[usize], seconds: usize) -> Res<bool> {
    let scratch = Scratch::new("anchor-rtpengine").map_err(|e| e.to_string())?;
    let opus_a = opus_payloads()?;
    let pcmu_b = pcmu_payloads();
    let version = Command::new("rtpengine")
        .arg("--version")
        .output()
        .map(|o| {
            let all = [o.stdout, o.stderr].concat();
            String::from_utf8_lossy(&all)
                .lines()
                .find_map(|l| l.strip_prefix("Version:").map(|v| v.trim().to_owned()))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    println!(
        "anchor: Opus (A, 48 kHz, PT {OPUS_PT}) <-> PCMU (B, PT {PCMU_PT}) transcoding, 20 ms packets both ways, \
         {seconds} s measured after 1 s warm-up; rtpengine {version}, userspace (--table=-1)"
    );
    let mut ok = true;
    let mut rows = Vec::new();
    for &calls in call_counts {
        println!("== {calls} calls");
        let e = match run_rtpengine(&scratch, calls, seconds, &opus_a, &pcmu_b) {
            Ok(e) => e,
            Err(err) => {
                scratch.keep();
                return Err(format!("rtpengine with {calls} calls: {err}"));
            }
        };
        let o = run_ours(calls, seconds, &opus_a, &pcmu_b)?;
        let stereo = e.opus_out.stereo * 2 > e.opus_out.packets;
        let r_cpu_s = bare_like_rtpengine(calls, o.rounds, &opus_a, e.opus_out.bitrate(), stereo)?;
        let e_packets = e.packets_to_a + e.packets_to_b;
        println!(
            "  rtpengine: {} packets out ({} Opus to A, {} PCMU to B; {} expected each way), {} with a wrong payload type, \
             {} threads; heard at A {:.0} Hz (B sent {B_HZ}), at B {:.0} Hz (A sent {A_HZ}); CPU {:.3} s (stat) / {:.3} s (schedstat); idle before the calls {:.1} ms CPU per s",
            e_packets, e.packets_to_a, e.packets_to_b, e.expected, e.wrong_pt, e.threads,
            e.heard_at_a_hz, e.heard_at_b_hz, e.cpu_stat_s, e.cpu_sched_s, e.idle_cpu_per_s * 1e3
        );
        println!(
            "  ours: {} packets out, {} with a wrong payload type; CPU {:.3} s; bare libopus CPU {:.3} s",
            o.packets_out, o.wrong_pt, o.cpu_s, o.bare_cpu_s
        );
        println!(
            "  Opus sent to the client side: rtpengine {}; ours {}; libopus set up like rtpengine's encoder CPU {:.3} s",
            e.opus_out.describe(),
            o.opus_out.describe(),
            r_cpu_s
        );
        let transcoded = e.wrong_pt == 0
            && e.packets_to_a >= e.expected * 95 / 100
            && e.packets_to_b >= e.expected * 95 / 100
            && (e.heard_at_a_hz - B_HZ).abs() < B_HZ * 0.05
            && (e.heard_at_b_hz - A_HZ).abs() < A_HZ * 0.05;
        if !transcoded {
            println!(
                "  rtpengine did NOT transcode as expected (see above); its log: {}",
                scratch.keep().display()
            );
            ok = false;
        }
        if o.wrong_pt != 0 || o.packets_out < (2 * calls * o.rounds) as u64 * 95 / 100 {
            println!("  ours did not forward every packet");
            ok = false;
        }
        let call_seconds = (calls * seconds) as f64;
        let e_us = e.cpu_stat_s.max(e.cpu_sched_s) * 1e6 / e_packets.max(1) as f64;
        let e_calls = call_seconds / e.cpu_stat_s.max(e.cpu_sched_s).max(1e-9);
        let o_us = o.cpu_s * 1e6 / o.packets_out.max(1) as f64;
        let o_calls = (calls * o.rounds) as f64 / 50.0 / o.cpu_s.max(1e-9);
        let b_us = o.bare_cpu_s * 1e6 / (2 * calls * o.rounds) as f64;
        let b_calls = (calls * o.rounds) as f64 / 50.0 / o.bare_cpu_s.max(1e-9);
        let r_us = r_cpu_s * 1e6 / (2 * calls * o.rounds) as f64;
        rows.push((calls, e_us, e_calls, o_us, o_calls, b_us, b_calls, r_us));
    }
    println!();
    println!("calls | rtpengine us/pkt  calls/core | ours us/pkt  calls/core | libopus floor us/pkt  calls/core | rtpengine/ours CPU | ours/floor CPU | floor with rtpengine's encoder us/pkt  rtpengine/it");
    for (calls, e_us, e_calls, o_us, o_calls, b_us, b_calls, r_us) in rows {
        println!(
            "{calls:5} | {e_us:16.1} {e_calls:11.0} | {o_us:11.1} {o_calls:11.0} | {b_us:20.1} {b_calls:11.0} | {:17.2}x | {:13.2}x | {r_us:37.1} {:11.2}x",
            e_us / o_us,
            o_us / b_us,
            e_us / r_us
        );
    }
    println!("(CPU per packet = CPU time over the window / RTP packets out, both directions; calls/core = call-seconds / CPU seconds. rtpengine's figure includes its UDP socket I/O and timers; ours and the floors are in process, no sockets. The floor is one Opus decode + one encode per call and 20 ms with our encoder settings (8 kHz, complexity 5, 24 kbit/s); the last floor uses 48 kHz, complexity 10 and rtpengine's observed bitrate and channels.)");
    Ok(ok)
}
