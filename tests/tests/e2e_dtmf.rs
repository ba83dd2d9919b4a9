//! DTMF end to end (issue 4 "DTMF", issue 6 item 1; INTEROP.md E.7): RFC 4733
//! telephone-events between a libwebrtc client on the Opus leg and a G.711 trunk,
//! through Prosody and our gateway, witnessed by third parties on both ends.
//!
//! - Client → trunk: headless Chromium (its libwebrtc `RTCDTMFSender.insertDTMF`; the
//!   StanzaJS client's `chromium` engine) calls `+15551230000`, answered by baresip
//!   (PCMU). Tones are verified both ways; "123" then "0123456789*#" are sent, and a
//!   `tshark` capture on `lo` shows them arriving at baresip's RTP port as RFC 4733 with
//!   the telephone-event/8000 payload type of the SDP baresip saw, durations in 8 kHz
//!   units matching what Chromium sent, one marker per event, the end packet three times,
//!   the events as far apart in RTP time as Chromium sent them on the client leg, and no
//!   DTMF tone in the PCMU audio baresip decoded (never transcoded as audio). The same
//!   with PCMU passthrough on the client leg.
//! - Trunk → client: baresip (the phone, PCMU) is told over its `ctrl_tcp` interface
//!   to send "0123456789*#" (`/sndcode`); it sends them as RFC 4733 at 8 kHz (seen by
//!   tshark). The client (libwebrtc M106 in node) is on Opus, so the gateway relays them
//!   as telephone-event/48000; libwebrtc's NetEq renders received events as DTMF key
//!   tones, which the client detects (Goertzel) in what it plays out: the digits, in
//!   order, each for as long as baresip's event lasted.
//! - Inbound (baresip calls alice's DID, the Chromium client answers the gateway's
//!   `actpass` offer with Opus): baresip's `/sndcode` keys are heard by the client;
//!   the client's `insertDTMF` keys are checked at the caller as above (Chromium sends
//!   them with the offered telephone-event/8000 PT next to Opus, which the gateway
//!   accepts and relays 1:1: tests/README.md, "DTMF on inbound calls").
//! - Events without audio: SIPp replays Debian sip-tester's `dtmf_2833_*.pcap`; the
//!   gateway's relaying is checked on the SRTP client leg's RTP headers
//!   (tests/README.md, "Events without audio").
//!
//! Runs inside a loopback-only namespace (`scripts/test-all`, or
//! `unshare --net -- bash -c 'ip link set lo up; cargo test -p jsg-tests --test e2e_dtmf -- --nocapture'`);
//! needs `jingle-sip-gateway` built, `chromium`, `tshark`, `baresip` and `sipp`.

mod e2e_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use e2e_support::{
    baresip_with_config, hears_tone, start_bed, tone_frequency, CLIENT_HZ, NUMBER, PHONE_HZ, WAIT,
};
use testbed::ports::{free_port, free_port_range, is_listening};
use testbed::{
    Candidates, Engine, Gateway, GatewayConfig, Namespace, Process, Prosody, RtpEvent, Scratch,
    SipSdp, Sipp, Tshark, WebrtcClient, WebrtcConfig,
};

const LIMIT: Duration = Duration::from_secs(120);
/// `insertDTMF` tone duration and inter-tone gap, in ms.
const DIGIT_MS: u64 = 100;
const GAP_MS: u64 = 70;
/// One RFC 4733 packet interval at 8 kHz (20 ms): the tolerance on a final duration.
const ONE_PACKET_8K: i64 = 160;
/// What the trunk (baresip) sends back.
const TRUNK_DIGITS: &str = "0123456789*#";

/// Which way an RTP packet went relative to a port.
#[derive(Clone, Copy)]
enum Direction {
    /// Sent to the port.
    To,
    /// Sent from the port.
    From,
}

/// The trunk's 200 (with SDP) to the gateway at `sip_port`, as captured: its
/// telephone-event/8000 payload type and its audio port.
fn trunk_answer(sdps: &[SipSdp], sip_port: u16) -> (u8, u16) {
    let answer = sdps
        .iter()
        .find(|s| s.status == 200 && s.dst_port == sip_port)
        .unwrap_or_else(|| panic!("no 200 with SDP from the trunk in {sdps:?}"));
    let pt = answer
        .telephone_event_pt(8000)
        .expect("the trunk answers telephone-event/8000");
    (pt, answer.audio_port().expect("m=audio in the 200"))
}

/// The captured telephone-event packets of payload type `pt` sent to or from `port`.
fn events_at(capture: &Tshark, port: u16, pt: u8, direction: Direction) -> Vec<RtpEvent> {
    capture
        .rtp_events(port, pt)
        .expect("tshark reads RTP")
        .into_iter()
        .filter(|p| match direction {
            Direction::To => p.dst_port == port,
            Direction::From => p.src_port == port,
        })
        .collect()
}

/// A `tshark` capture of the gateway's SIP port and media port range.
fn capture_gateway(scratch: &Scratch, gateway: &Gateway) -> Tshark {
    let sip_port = gateway.sip_port();
    let (lo, hi) = gateway.media_ports();
    let filter = format!("udp and (port {sip_port} or portrange {lo}-{hi})");
    Tshark::start(scratch, "gateway", &filter, LIMIT).unwrap_or_else(|e| panic!("{e}"))
}

/// The gateway with its trunk at `trunk_port`, transcoding (Opus to the client), once it
/// joined Prosody and its SIP side runs.
fn transcoding_gateway(scratch: &Scratch, prosody: &mut Prosody, trunk_port: u16) -> Gateway {
    let mut config = GatewayConfig {
        time_limit: LIMIT,
        ..GatewayConfig::default()
    };
    config.set("sip.trunks.0.port", trunk_port);
    config.set("media.prefer_g711_passthrough", false);
    let mut gateway = Gateway::start(scratch, prosody, &config).expect("gateway starts");
    prosody
        .wait_component_authenticated(0, WAIT)
        .expect("the gateway joins Prosody");
    gateway
        .wait_for_log("sip user agent running", WAIT)
        .expect("the gateway's SIP side starts");
    gateway
}

/// alice's client settings: `engine`, our tone, renomination munged in (Conversations).
fn alice_config(prosody: &Prosody, engine: Engine) -> WebrtcConfig {
    let mut config = WebrtcConfig::new(prosody.jid("alice"), "alice-pw");
    config.engine = engine;
    config.tone_hz = CLIENT_HZ;
    config.candidates = Candidates::Inline;
    config.renomination = true;
    config.time_limit = LIMIT;
    config
}

/// `alice` calls the test number through `gateway` (JMI) and waits for the answer.
fn call_number(alice: &mut WebrtcClient, prosody: &Prosody, gateway: &mut Gateway) {
    let callee = format!("{NUMBER}@{}", prosody.component_domain());
    alice.call(&callee, true).expect("call");
    alice
        .wait_for("accepted", WAIT)
        .unwrap_or_else(|e| panic!("not answered: {e}\n{}", gateway.process().log_tail(40)));
}

/// Sends `digits` with `insertDTMF` and waits for the end of the sequence; returns the
/// tones `tonechange` reported, each with its time in the page (ms).
fn send_digits(alice: &mut WebrtcClient, digits: &str) -> Vec<(String, f64)> {
    alice
        .dtmf(
            digits,
            Duration::from_millis(DIGIT_MS),
            Duration::from_millis(GAP_MS),
        )
        .unwrap_or_else(|e| panic!("insertDTMF {digits}: {e}"));
    let mut tones = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = alice
            .wait_for("tonechange", left)
            .unwrap_or_else(|e| panic!("tonechange after {tones:?} of {digits}: {e}"));
        match e.str("tone") {
            Some("") | None => return tones,
            Some(t) => tones.push((t.to_owned(), e.f64("at_ms").unwrap_or(f64::NAN))),
        }
    }
}

/// The first `*-dec.wav` recording baresip wrote into `dir`, once baresip closed it
/// (it writes the final header when the call ends).
fn recording(dir: &std::path::Path) -> Option<PathBuf> {
    testbed::recording::wait_complete_wav(dir, "-dec.wav", WAIT)
        .map_err(|e| eprintln!("{e}"))
        .ok()
}

/// 10 ms blocks of the 16-bit WAV file at `path` (8 kHz mono, as baresip records) that
/// hold a DTMF key tone: the strongest Q.23 row and column frequencies each carry at
/// least 20 % of the block's energy and 4 times their runner-up, above -40 dBFS.
fn dtmf_blocks_in_wav(path: &std::path::Path) -> usize {
    let out = testbed::run_bounded(
        "sox",
        [
            path.as_os_str(),
            "-t".as_ref(),
            "raw".as_ref(),
            "-e".as_ref(),
            "signed".as_ref(),
            "-b".as_ref(),
            "16".as_ref(),
            "-r".as_ref(),
            "8000".as_ref(),
            "-".as_ref(),
        ],
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| panic!("sox: {e}"));
    let x: Vec<f64> = out
        .stdout
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    let rate = 8000.0;
    let ratio = |b: &[f64], hz: f64, energy: f64| {
        let coeff = 2.0 * (2.0 * std::f64::consts::PI * hz / rate).cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for v in b {
            let s0 = v + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        2.0 * (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (b.len() as f64 * energy)
    };
    let strongest = |b: &[f64], freqs: [f64; 4], energy: f64| {
        let mut p: Vec<f64> = freqs.iter().map(|f| ratio(b, *f, energy)).collect();
        p.sort_by(|a, b| b.total_cmp(a));
        p[0] >= 0.2 && p[0] >= 4.0 * p[1]
    };
    x.chunks_exact(80)
        .filter(|b| {
            let energy: f64 = b.iter().map(|v| v * v).sum();
            (energy / 80.0).sqrt() > 0.01
                && strongest(b, [697.0, 770.0, 852.0, 941.0], energy)
                && strongest(b, [1209.0, 1336.0, 1477.0, 1633.0], energy)
        })
        .count()
}

/// The check above finds a key tone when there is one (the DTMF "1", 697 + 1209 Hz,
/// made by sox), and none in the phone's plain 660 Hz tone.
#[test]
fn dtmf_check_of_recordings_sees_key_tones() {
    let scratch = Scratch::new("e2e-dtmf-wav").expect("scratch");
    let key = scratch.join("key1.wav");
    let tone = scratch.join("tone660.wav");
    for (file, synth) in [
        (&key, &["sine", "697", "sine", "1209", "remix", "1,2"][..]),
        (&tone, &["sine", "660"][..]),
    ] {
        let status = std::process::Command::new("sox")
            .args(["-n", "-r", "8000", "-b", "16"])
            .arg(file)
            .args(["synth", "0.5"])
            .args(synth)
            .args(["vol", "0.4"])
            .status()
            .expect("sox");
        assert!(status.success());
    }
    assert!(
        dtmf_blocks_in_wav(&key) >= 45,
        "{}",
        dtmf_blocks_in_wav(&key)
    );
    assert_eq!(dtmf_blocks_in_wav(&tone), 0);
}

/// Packets grouped into events by RTP timestamp (RFC 4733 §2.5.1.1: one timestamp per event).
fn events(packets: &[RtpEvent]) -> Vec<Vec<RtpEvent>> {
    let mut out: Vec<Vec<RtpEvent>> = Vec::new();
    for p in packets {
        match out.last_mut() {
            Some(cur) if cur[0].timestamp == p.timestamp && cur[0].ssrc == p.ssrc => {
                cur.push(p.clone())
            }
            _ => out.push(vec![p.clone()]),
        }
    }
    out
}

/// Checks each RFC 4733 event `evs` the trunk received: payload type `pt` on every
/// packet, one event code, the marker on the first packet only, the end packet three
/// times and last, durations that never go back, and a final duration of `want` ticks
/// at 8 kHz (± one 20 ms packet).
fn check_events(evs: &[Vec<RtpEvent>], pt: u8, want: i64) {
    for e in evs {
        let what = format!("event {} at ts {}: {e:?}", e[0].key(), e[0].timestamp);
        assert!(
            e.iter()
                .all(|p| p.payload_type == pt && p.event == e[0].event),
            "{what}"
        );
        assert!(e[0].marker, "first packet without marker: {what}");
        assert!(
            e[1..].iter().all(|p| !p.marker),
            "marker after the first packet: {what}"
        );
        let ends: Vec<&RtpEvent> = e.iter().filter(|p| p.end).collect();
        assert_eq!(ends.len(), 3, "end packets: {what}");
        assert!(
            e.last().expect("non-empty").end,
            "packets after the end: {what}"
        );
        assert!(
            ends.iter().all(|p| p.duration == ends[0].duration),
            "{what}"
        );
        assert!(
            e.windows(2).all(|w| w[1].duration >= w[0].duration),
            "durations go back: {what}"
        );
        let d = i64::from(ends[0].duration);
        assert!(
            (d - want).abs() <= ONE_PACKET_8K,
            "final duration {d} ticks at 8 kHz, want {want} ± {ONE_PACKET_8K}: {what}"
        );
    }
}

#[test]
fn chromium_dtmf_reaches_the_trunk_as_rfc4733_8khz() {
    client_dtmf_to_trunk("e2e-dtmf-out", &[], "opus", 48000);
}

#[test]
fn chromium_dtmf_in_pcmu_passthrough_reaches_the_trunk() {
    client_dtmf_to_trunk("e2e-dtmf-out-pcmu", &["PCMU"], "PCMU", 8000);
}

/// The client → trunk run; `codecs`: the client's codec preference, `codec` and
/// `te_clock`: what the client leg must end up with.
fn client_dtmf_to_trunk(name: &str, codecs: &[&str], codec: &str, te_clock: u32) {
    Namespace::require_loopback_only();
    let t0 = Instant::now();
    let mut bed = start_bed(name, LIMIT).unwrap_or_else(|e| panic!("{e}"));
    let sip_port = bed.gateway.sip_port();
    let mut capture = capture_gateway(&bed.scratch, &bed.gateway);

    let mut config = alice_config(&bed.prosody, Engine::Chromium);
    config.codecs = codecs.iter().map(|c| (*c).to_owned()).collect();
    let mut alice = WebrtcClient::start(&bed.scratch, &bed.prosody, &config)
        .unwrap_or_else(|e| panic!("the Chromium client did not log in: {e}"));
    call_number(&mut alice, &bed.prosody, &mut bed.gateway);
    let client_heard_hz =
        hears_tone(&mut alice, PHONE_HZ).unwrap_or_else(|e| panic!("client side: {e}"));
    let stats = alice.stats().expect("stats");
    let client_port = stats["local"]["port"].as_u64().unwrap_or(0) as u16;
    let client_codec = stats["outbound"][0]["codec"]
        .as_str()
        .unwrap_or("?")
        .to_owned();
    // The gateway's answer to the client (its remote description): telephone-event
    // at the clock of the chosen codec (INTEROP.md E.7).
    let client_te = remote_telephone_events(&stats);

    let first = send_digits(&mut alice, "123");
    std::thread::sleep(Duration::from_millis(300));
    let second = send_digits(&mut alice, "0123456789*#");
    // the last end packets, and more of the client's tone for the phone's recording
    std::thread::sleep(Duration::from_millis(1500));
    alice.hangup("success").expect("hangup");
    let recorded = recording(&bed.phone_dir)
        .unwrap_or_else(|| panic!("no recording\n{}", bed.phone.log_tail(30)));
    let phone_heard_hz = tone_frequency(&recorded).unwrap_or_else(|e| panic!("{e}"));
    // Never transcoded as audio: no DTMF key tone in what baresip decoded from PCMU.
    let dtmf_in_audio = dtmf_blocks_in_wav(&recorded);
    capture.stop();
    alice.quit();

    // What the trunk saw: the gateway's offer, baresip's answer, then the events.
    let sdps = capture.sdp(sip_port).expect("tshark reads SIP");
    let offer = sdps
        .iter()
        .find(|s| s.method == "INVITE" && s.src_port == sip_port)
        .unwrap_or_else(|| panic!("no INVITE with SDP from the gateway in {sdps:?}"));
    let offered_pt = offer
        .telephone_event_pt(8000)
        .expect("the INVITE offers telephone-event/8000");
    let (pt, trunk_port) = trunk_answer(&sdps, sip_port);
    let packets = events_at(&capture, trunk_port, pt, Direction::To);
    let audio_packets = capture.rtp_count(trunk_port, 0).expect("tshark reads RTP");
    let evs = events(&packets);
    let keys: String = evs.iter().map(|e| e[0].key()).collect();
    let summary: Vec<String> = evs
        .iter()
        .map(|e| {
            let last = e.last().expect("non-empty");
            format!(
                "{} ts={} pkts={} marker_first={} ends={} final={}",
                e[0].key(),
                e[0].timestamp,
                e.len(),
                e[0].marker,
                e.iter().filter(|p| p.end).count(),
                last.duration
            )
        })
        .collect();
    let tones = |t: &[(String, f64)]| t.iter().map(|(d, _)| d.as_str()).collect::<String>();
    eprintln!(
        "client codec {client_codec}, the gateway's answer to the client: {client_te:?}; \
         client heard {client_heard_hz:.1} Hz, phone heard {phone_heard_hz:.1} Hz\n\
         tonechange: {first:?} {second:?}\n\
         SDP: offer te PT {offered_pt} ({:?}), answer te PT {pt}, trunk RTP port {trunk_port}\n\
         trunk received {} event packets, {audio_packets} PCMU packets; events:\n  {}\n\
         wall time {:.1} s",
        offer.media,
        packets.len(),
        summary.join("\n  "),
        t0.elapsed().as_secs_f64()
    );
    let baresip_log = std::fs::read_to_string(bed.phone.log_path()).unwrap_or_default();
    // baresip, the second witness, logs `received event: '1' (end=1)` per digit.
    let baresip_keys: String = baresip_log
        .split("received event: '")
        .skip(1)
        .filter(|rest| rest.get(1..10) == Some("' (end=1)"))
        .filter_map(|rest| rest.chars().next())
        .collect();
    eprintln!(
        "baresip received the events {baresip_keys:?}; 10 ms blocks with a DTMF tone in \
         its PCMU recording: {dtmf_in_audio}"
    );

    assert!(
        client_codec
            .to_ascii_lowercase()
            .ends_with(&codec.to_ascii_lowercase()),
        "client codec {client_codec}, want {codec}"
    );
    let te = format!("telephone-event/{te_clock}");
    assert!(
        client_te.iter().any(|t| t.ends_with(&te)),
        "client leg telephone-event {client_te:?}"
    );
    assert!((client_heard_hz - PHONE_HZ).abs() <= PHONE_HZ * 0.02);
    assert!(
        (phone_heard_hz - CLIENT_HZ).abs() <= CLIENT_HZ * 0.02,
        "the phone heard {phone_heard_hz} Hz"
    );
    assert_eq!(
        (tones(&first).as_str(), tones(&second).as_str()),
        ("123", "0123456789*#")
    );
    assert_eq!(
        offered_pt, pt,
        "baresip answered another telephone-event PT"
    );
    assert!(
        audio_packets > 50,
        "PCMU reached the trunk: {audio_packets} packets"
    );
    assert_eq!(
        keys,
        "1230123456789*#",
        "events at the trunk:\n{}",
        summary.join("\n")
    );
    assert_eq!(baresip_keys, "1230123456789*#", "what baresip logged");
    assert_eq!(dtmf_in_audio, 0, "DTMF tones in the trunk's audio");
    check_events(&evs, pt, (DIGIT_MS * 8) as i64);
    // The gateway keeps the events' RTP timing: the start timestamps of the events
    // Chromium sent on the client leg (SRTP headers are in the clear), converted to
    // 8 kHz, are as far apart as those at the trunk (within one tick of rounding).
    let te_pt: u8 = client_te
        .iter()
        .find(|t| t.ends_with(&te))
        .and_then(|t| t.split(' ').next()?.parse().ok())
        .expect("telephone-event PT of the client leg");
    let client_starts: Vec<u32> = capture
        .rtp_packets(client_port, te_pt)
        .expect("tshark reads RTP")
        .iter()
        .filter(|p| p.src_port == client_port && p.marker)
        .map(|p| p.timestamp)
        .collect();
    let trunk_starts: Vec<u32> = evs.iter().map(|e| e[0].timestamp).collect();
    assert_eq!(
        client_starts.len(),
        trunk_starts.len(),
        "events sent by Chromium"
    );
    let per_tick = i64::from(te_clock / 8000);
    for (i, (c, t)) in client_starts
        .windows(2)
        .zip(trunk_starts.windows(2))
        .enumerate()
    {
        let client_step = i64::from(c[1].wrapping_sub(c[0])) / per_tick;
        let trunk_step = i64::from(t[1].wrapping_sub(t[0]));
        assert!(
            (client_step - trunk_step).abs() <= 1,
            "events {i}->{}: {client_step} ticks apart from Chromium, {trunk_step} at the trunk",
            i + 1
        );
    }
}

/// baresip with its `ctrl_tcp` interface (for `dial` and `sndcode`): the process, its
/// SIP port and its control port. baresip binds its SIP port before its `ctrl_tcp`
/// module listens, and on a loaded machine the gap is seconds, so this waits for the
/// listener up to [`WAIT`]. Retried with fresh ports on a port race, up to 3 times. It
/// never dials: a retried start must not leave a second call behind, so a caller dials
/// through [`baresip_ctrl`] once this returned.
fn baresip_with_ctrl(dir: &std::path::Path) -> (Process, u16, u16) {
    let mut attempt = 0;
    loop {
        // baresip listens for SIP on `port` and SIP over TLS on `port + 1`.
        let (port, ctrl) = (free_port_range(2), free_port());
        let extra = format!("module_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl}\n");
        match baresip_with_config(dir, port, LIMIT, &[], &extra) {
            Ok(mut p) => {
                let deadline = Instant::now() + WAIT;
                while !is_listening(ctrl) && Instant::now() < deadline && p.check_running().is_ok()
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                if is_listening(ctrl) {
                    return (p, port, ctrl);
                }
                if attempt >= 3 {
                    panic!(
                        "baresip's ctrl_tcp did not listen on {ctrl}:\n{}",
                        p.log_tail(20)
                    );
                }
                eprintln!(
                    "baresip's ctrl_tcp did not listen on {ctrl} within {WAIT:?}:\n{}",
                    p.log_tail(10)
                );
                attempt += 1;
            }
            Err(e) if attempt < 3 && e.contains("Address already in use") => attempt += 1,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Sends one command to baresip over its `ctrl_tcp` interface (JSON in a netstring,
/// for example `sndcode` with the digits, or `dial` with a SIP URI) and returns its
/// response. The same connection also carries baresip's event notifications (a call's
/// SDP, its state), so netstrings are read until the one that answers the command's
/// token, for at most 10 s; what was read is returned either way.
fn baresip_ctrl(ctrl_port: u16, command: &str, params: &str) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", ctrl_port)).expect("baresip ctrl_tcp");
    tcp.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("read timeout");
    let json = format!(r#"{{"command":"{command}","params":"{params}","token":"{command}"}}"#);
    tcp.write_all(format!("{}:{json},", json.len()).as_bytes())
        .expect("write ctrl_tcp");
    let token = format!(r#""token":"{command}""#);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let text = String::from_utf8_lossy(&read);
        if text.contains(r#""response":true"#) && text.contains(&token) {
            break;
        }
        match tcp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => read.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&read).into_owned()
}

#[test]
fn trunk_rfc4733_reaches_the_opus_client_as_dtmf_tones() {
    Namespace::require_loopback_only();
    let t0 = Instant::now();
    let scratch = Scratch::new("e2e-dtmf-in").expect("scratch");
    let mut prosody = Prosody::start_default(&scratch).expect("prosody");
    prosody
        .register("alice", "alice-pw")
        .expect("register alice");
    let phone_dir = scratch.subdir("baresip").expect("subdir");
    let (phone, phone_port, ctrl_port) = baresip_with_ctrl(&phone_dir);
    let mut gateway = transcoding_gateway(&scratch, &mut prosody, phone_port);
    let sip_port = gateway.sip_port();
    let mut capture = capture_gateway(&scratch, &gateway);

    let mut alice = WebrtcClient::start(&scratch, &prosody, &alice_config(&prosody, Engine::Wrtc))
        .expect("client logs in");
    call_number(&mut alice, &prosody, &mut gateway);
    let client_heard_hz =
        hears_tone(&mut alice, PHONE_HZ).unwrap_or_else(|e| panic!("client side: {e}"));
    let reply = baresip_ctrl(ctrl_port, "sndcode", TRUNK_DIGITS);
    let heard = heard_digits(&mut alice, TRUNK_DIGITS.len(), Duration::from_secs(15));
    let stats = alice.stats().expect("stats");
    let client_te = remote_telephone_events(&stats);
    let client_port = stats["local"]["port"].as_u64().unwrap_or(0) as u16;
    alice.hangup("success").expect("hangup");
    capture.stop();
    alice.quit();
    drop(phone);

    let sdps = capture.sdp(sip_port).expect("tshark reads SIP");
    let (pt, trunk_port) = trunk_answer(&sdps, sip_port);
    let sent = events_at(&capture, trunk_port, pt, Direction::From);
    let sent_events = events(&sent);
    let sent_keys: String = sent_events.iter().map(|e| e[0].key()).collect();
    let sent_summary: Vec<String> = sent_events
        .iter()
        .map(|e| {
            format!(
                "{} pkts={} ends={} final={}",
                e[0].key(),
                e.len(),
                e.iter().filter(|p| p.end).count(),
                e.last().map_or(0, |p| p.duration)
            )
        })
        .collect();
    // The client leg is SRTP: the RTP header (payload type) is readable, the event is not.
    let client_pt: u8 = client_te
        .iter()
        .find(|t| t.ends_with("telephone-event/48000"))
        .and_then(|t| t.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    let to_client = capture
        .rtp_count(client_port, client_pt)
        .expect("tshark reads RTP");
    let digits: String = heard.iter().map(|(d, _)| d.as_str()).collect();
    eprintln!(
        "ctrl_tcp reply {reply:?}\nclient heard the phone at {client_heard_hz:.1} Hz; \
         the gateway's answer to the client: {client_te:?}\n\
         the gateway sent {to_client} packets of PT {client_pt} to the client (port {client_port})\n\
         baresip sent {} event packets (PT {pt}), keys {sent_keys:?}:\n  {}\n\
         the client heard {heard:?}\nwall time {:.1} s",
        sent.len(),
        sent_summary.join("\n  "),
        t0.elapsed().as_secs_f64()
    );
    assert!(
        client_te
            .iter()
            .any(|t| t.ends_with("telephone-event/48000")),
        "client leg telephone-event {client_te:?}"
    );
    assert_eq!(sent_keys, TRUNK_DIGITS, "what baresip sent");
    assert_eq!(to_client, sent.len(), "event packets relayed to the client");
    assert_eq!(digits, TRUNK_DIGITS, "what the client heard: {heard:?}");
    // NetEq plays each event for its duration: what baresip sent (8 kHz ticks), scaled
    // by the gateway to 48 kHz.
    check_heard_durations(&heard, &sent_events);
}

/// Checks how long the client heard each key against the duration the sender put in
/// its final event packet (8 kHz ticks). The typical key must be within 40 ms (the
/// detector's blocks are 10 ms): the median of the differences. Each single key must be
/// within a factor of 3: on a loaded machine NetEq stretches a key while it waits for
/// CPU, which is not the gateway's doing, while a wrong clock conversion (×6 or ÷6
/// between 8 and 48 kHz) is far outside either bound.
fn check_heard_durations(heard: &[(String, f64)], sent: &[Vec<RtpEvent>]) {
    let pairs: Vec<(&str, f64, f64)> = heard
        .iter()
        .zip(sent)
        .map(|((d, ms), e)| {
            let sent_ms = f64::from(e.last().map_or(0, |p| p.duration)) / 8.0;
            (d.as_str(), *ms, sent_ms)
        })
        .collect();
    let mut diffs: Vec<f64> = pairs.iter().map(|(_, h, s)| (h - s).abs()).collect();
    diffs.sort_by(f64::total_cmp);
    let median = diffs.get(diffs.len() / 2).copied().unwrap_or(f64::NAN);
    assert!(
        median <= 40.0,
        "heard vs sent durations differ by {median} ms (median): {pairs:?}"
    );
    for (d, heard_ms, sent_ms) in &pairs {
        assert!(
            *heard_ms >= sent_ms / 3.0 && *heard_ms <= sent_ms * 3.0,
            "digit {d}: heard for {heard_ms} ms, sent for {sent_ms} ms"
        );
    }
}

/// The `telephone-event` lines (`PT telephone-event/CLOCK`) of the client's remote
/// description, that is the gateway's SDP as the client applied it (its `stats`).
fn remote_telephone_events(stats: &serde_json::Value) -> Vec<String> {
    stats["remote_rtpmap"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str())
        .filter(|c| c.contains("telephone-event"))
        .map(str::to_owned)
        .collect()
}

/// The DTMF keys `client` hears (its `dtmf_heard` events), until `want` keys or
/// `timeout`; each with how long it lasted (ms).
///
/// The client reports a key when its tone stops, which is at the sender's first end
/// packet; the sender repeats that end packet twice more, 20 ms apart (RFC 4733
/// §2.5.1.4), and those are still on their way. The call must not be hung up before
/// they pass the gateway, or the packet counts on the two legs differ by the ones that
/// reached the gateway after the client's session-terminate. So this waits
/// [`END_PACKETS_SETTLE`] after the last key before it returns.
fn heard_digits(client: &mut WebrtcClient, want: usize, timeout: Duration) -> Vec<(String, f64)> {
    let mut heard = Vec::new();
    let deadline = Instant::now() + timeout;
    while heard.len() < want && Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.wait_for("dtmf_heard", left) {
            Ok(e) => heard.push((
                e.str("digit").unwrap_or("?").to_owned(),
                e.f64("duration_ms").unwrap_or(0.0),
            )),
            Err(_) => break,
        }
    }
    std::thread::sleep(END_PACKETS_SETTLE);
    heard
}

/// How long the last key's repeated end packets need to reach the client after it heard
/// the key: two more packets 20 ms apart, the jitter of a loaded 2-core machine, and
/// margin.
const END_PACKETS_SETTLE: Duration = Duration::from_millis(500);

/// One line per event: key, start timestamp, packets, marker, end packets, final duration.
fn summary(evs: &[Vec<RtpEvent>]) -> String {
    evs.iter()
        .map(|e| {
            format!(
                "{} ts={} pkts={} marker_first={} ends={} final={}",
                e[0].key(),
                e[0].timestamp,
                e.len(),
                e[0].marker,
                e.iter().filter(|p| p.end).count(),
                e.last().map_or(0, |p| p.duration)
            )
        })
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// An inbound call (INTEROP.md E.3): baresip (PCMU) calls alice's DID `+15551230001`;
/// the Chromium client answers the gateway's session-initiate (DTLS `actpass`, Opus).
/// Then both directions of DTMF on that one call: the client's `insertDTMF` keys reach
/// the caller as RFC 4733 telephone-event/8000 (tshark at the caller's RTP port), and
/// the caller's `/sndcode` keys reach the client, which hears them as key tones.
#[test]
fn inbound_call_dtmf_both_ways_with_chromium() {
    Namespace::require_loopback_only();
    let t0 = Instant::now();
    let mut bed = start_bed("e2e-dtmf-inbound", LIMIT).unwrap_or_else(|e| panic!("{e}"));
    let sip_port = bed.gateway.sip_port();
    let mut capture = capture_gateway(&bed.scratch, &bed.gateway);
    let mut config = alice_config(&bed.prosody, Engine::Chromium);
    // The callee's candidates go inline only if the caller advertises rfc3264.
    config.candidates = Candidates::Auto;
    let mut alice = WebrtcClient::start(&bed.scratch, &bed.prosody, &config)
        .unwrap_or_else(|e| panic!("the Chromium client did not log in: {e}"));

    // The caller: a second baresip with ctrl_tcp, dialing the DID.
    let caller_dir = bed.scratch.subdir("caller").expect("subdir");
    let (caller, _, ctrl_port) = baresip_with_ctrl(&caller_dir);
    let dialled = baresip_ctrl(
        ctrl_port,
        "dial",
        &format!("sip:+15551230001@127.0.0.1:{sip_port}"),
    );
    assert!(
        dialled.contains(r#""response":true,"ok":true"#),
        "baresip's dial: {dialled}"
    );
    let incoming = alice.wait_for("incoming", WAIT).unwrap_or_else(|e| {
        panic!(
            "no call reached the client: {e}\n--- caller ---\n{}\n--- gateway ---\n{}",
            caller.log_tail(20),
            bed.gateway.process().log_tail(40)
        )
    });
    let client_heard_hz =
        hears_tone(&mut alice, PHONE_HZ).unwrap_or_else(|e| panic!("client side: {e}"));
    let stats = alice.stats().expect("stats");
    let client_codec = stats["inbound"][0]["codec"]
        .as_str()
        .unwrap_or("?")
        .to_owned();
    let client_te = remote_telephone_events(&stats);

    // Client → caller.
    let tones = send_digits(&mut alice, TRUNK_DIGITS);
    std::thread::sleep(Duration::from_millis(500));
    // Caller → client.
    let reply = baresip_ctrl(ctrl_port, "sndcode", TRUNK_DIGITS);
    let heard = heard_digits(&mut alice, TRUNK_DIGITS.len(), Duration::from_secs(15));
    alice.hangup("success").expect("hangup");
    capture.stop();
    let stanzas = alice.stanzas().unwrap_or_default();
    alice.quit();
    drop(caller);

    let sdps = capture.sdp(sip_port).expect("tshark reads SIP");
    let offer = sdps
        .iter()
        .find(|s| s.method == "INVITE" && s.dst_port == sip_port)
        .unwrap_or_else(|| panic!("no INVITE with SDP from the caller in {sdps:?}"));
    let answer = sdps
        .iter()
        .find(|s| s.status == 200 && s.src_port == sip_port)
        .unwrap_or_else(|| panic!("no 200 with SDP from the gateway in {sdps:?}"));
    let offered_pt = offer
        .telephone_event_pt(8000)
        .expect("baresip offers telephone-event/8000");
    let answered_pt = answer
        .telephone_event_pt(8000)
        .expect("the gateway answers telephone-event/8000");
    let caller_port = offer.audio_port().expect("m=audio in the INVITE");
    let to_caller = events_at(&capture, caller_port, offered_pt, Direction::To);
    let from_caller = events_at(&capture, caller_port, offered_pt, Direction::From);
    let (to_evs, from_evs) = (events(&to_caller), events(&from_caller));
    let keys = |evs: &[Vec<RtpEvent>]| evs.iter().map(|e| e[0].key()).collect::<String>();
    let client_pt: u8 = client_te
        .iter()
        .find(|t| t.ends_with("telephone-event/48000"))
        .and_then(|t| t.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    let client_port = stats["local"]["port"].as_u64().unwrap_or(0) as u16;
    let to_client = capture
        .rtp_packets(client_port, client_pt)
        .expect("tshark reads RTP")
        .iter()
        .filter(|p| p.dst_port == client_port)
        .count();
    // Chromium's telephone-event packets to the gateway, per PT of the client leg.
    let chromium_pts: Vec<(String, usize)> = client_te
        .iter()
        .filter_map(|t| {
            let te_pt: u8 = t.split(' ').next()?.parse().ok()?;
            let n = capture
                .rtp_packets(client_port, te_pt)
                .ok()?
                .iter()
                .filter(|p| p.src_port == client_port)
                .count();
            Some((t.clone(), n))
        })
        .collect();
    let initiate_actpass = stanzas.iter().any(|s| {
        s.dir == "in"
            && s.xml.contains("session-initiate")
            && (s.xml.contains("setup=\"actpass\"") || s.xml.contains("setup='actpass'"))
    });
    let digits = |t: &[(String, f64)]| t.iter().map(|(d, _)| d.as_str()).collect::<String>();
    eprintln!(
        "incoming from {:?}; client codec {client_codec}, the gateway's offer to the client: \
         {client_te:?}, session-initiate with setup=actpass: {initiate_actpass}; client heard \
         {client_heard_hz:.1} Hz\n\
         SDP: caller offers te PT {offered_pt}, gateway answers te PT {answered_pt}, caller RTP port {caller_port}\n\
         tonechange: {tones:?}\n\
         the caller received {} event packets:\n  {}\n\
         ctrl_tcp reply {reply:?}; the caller sent {} event packets:\n  {}\n\
         Chromium sent events {chromium_pts:?}; the gateway sent {to_client} packets of PT {client_pt} to the client\n\
         the client heard {heard:?}\nwall time {:.1} s",
        incoming.str("from"),
        to_caller.len(),
        summary(&to_evs),
        from_caller.len(),
        summary(&from_evs),
        t0.elapsed().as_secs_f64()
    );
    assert!(
        client_codec.to_ascii_lowercase().ends_with("opus"),
        "client codec {client_codec}"
    );
    assert!(
        initiate_actpass,
        "the gateway's session-initiate offers setup=actpass"
    );
    assert!(
        client_pt != 0,
        "client leg telephone-event/48000: {client_te:?}"
    );
    assert!((client_heard_hz - PHONE_HZ).abs() <= PHONE_HZ * 0.02);
    assert_eq!(offered_pt, answered_pt, "the gateway answered another PT");
    // (a) client → caller
    assert_eq!(digits(&tones), TRUNK_DIGITS, "Chromium's tonechange");
    // Chromium answers Opus but its RTCDTMFSender sends on telephone-event/8000 of our
    // offer (libwebrtc falls back to the lowest telephone-event clock); the gateway takes
    // every telephone-event PT of the answer and relays them at 8 kHz.
    let durations: Vec<u16> = to_evs
        .iter()
        .map(|e| e.last().map_or(0, |p| p.duration))
        .collect();
    eprintln!("final durations at the caller (8 kHz ticks): {durations:?}");
    assert_eq!(
        keys(&to_evs),
        TRUNK_DIGITS,
        "events at the caller (Chromium sent {chromium_pts:?}):\n  {}",
        summary(&to_evs)
    );
    // RFC 4733 §2.5.1.4: the duration is in the telephone-event's own clock, 8 kHz on
    // PT 101, so a 100 ms key is 800 ticks, ± one 20 ms packet (160). What Chromium
    // sends is not quite that: libwebrtc compares the elapsed ticks of the 48 kHz stream
    // with the key's length in 8 kHz ticks (800), so each key ends after one 20 ms frame
    // and carries duration 960 (48 kHz ticks of that frame) on the 8 kHz PT, in three
    // end packets. Read per the RFC that is 120 ms; the gateway relays it 1:1 and the
    // caller gets 960, the upper edge of this tolerance (tests/README.md, "DTMF on
    // inbound calls"). A ×6 conversion (5760) would be far outside.
    check_events(&to_evs, offered_pt, (DIGIT_MS * 8) as i64);
    // (b) caller → client
    assert_eq!(keys(&from_evs), TRUNK_DIGITS, "what baresip sent");
    assert_eq!(
        to_client,
        from_caller.len(),
        "event packets relayed to the client"
    );
    assert_eq!(
        digits(&heard),
        TRUNK_DIGITS,
        "what the client heard: {heard:?}"
    );
    check_heard_durations(&heard, &from_evs);
}

/// The keys of the pcaps SIPp plays in `uas_dtmf_events_only.xml`, in order.
const PCAP_DIGITS: &str = "0123456789*#";

/// A trunk that sends RFC 4733 events with no audio around them (silence
/// suppression): SIPp answers the client's call and replays Debian sip-tester's
/// `dtmf_2833_{0..9,star,pound}.pcap` (10 packets each: 7 updates, the end packet 3
/// times with one sequence number) 400 ms apart. SIPp replays their sequence numbers,
/// timestamps and SSRC as captured: the files come from different points of one
/// stream, so the sequence numbers jump (12087 → 7984 → 8042 …) and "0" starts 4352
/// ticks *before* "1" in RTP time.
///
/// libwebrtc's NetEq plays events only while decoded audio moves its playout time
/// through them, so the gateway sends the client Opus silence frames along with the
/// events while the trunk sends no audio (`media`'s `silence` module; tests/README.md,
/// "Events without audio"). Checked, on the SRTP client leg (headers in the clear):
/// the client (libwebrtc M106) hears all 12 keys in order, each for the duration the
/// trunk sent (± 40 ms); every event relayed, one output event per input event, 10
/// packets each (its updates and the end three times), the marker on its first packet
/// only; events and silence frames form
/// one dense sequence across the input's jumps; the silence frames' timestamps always
/// rise, and each event is covered by them from its start to its end, 20 ms apart; the
/// input's RTP time is kept between events (each step ×6), except
/// where it went back, where the output goes forward instead.
#[test]
fn trunk_events_without_audio_are_relayed_to_the_opus_client() {
    Namespace::require_loopback_only();
    let t0 = Instant::now();
    let scratch = Scratch::new("e2e-dtmf-events-only").expect("scratch");
    let mut prosody = Prosody::start_default(&scratch).expect("prosody");
    prosody
        .register("alice", "alice-pw")
        .expect("register alice");
    let mut sipp = Sipp::uas(&scratch, "uas_dtmf_events_only.xml").expect("sipp starts");
    let mut gateway = transcoding_gateway(&scratch, &mut prosody, sipp.port());
    let sip_port = gateway.sip_port();
    let mut capture = capture_gateway(&scratch, &gateway);
    let mut alice = WebrtcClient::start(&scratch, &prosody, &alice_config(&prosody, Engine::Wrtc))
        .expect("client logs in");
    call_number(&mut alice, &prosody, &mut gateway);
    // SIPp starts 1.5 s after the ACK and plays for 4.8 s.
    let heard = heard_digits(&mut alice, PCAP_DIGITS.len(), Duration::from_secs(9));
    let stats = alice.stats().expect("stats");
    let client_port = stats["local"]["port"].as_u64().unwrap_or(0) as u16;
    let rtpmap: Vec<&str> = stats["remote_rtpmap"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str())
        .collect();
    let pt_of = |suffix: &str| -> u8 {
        rtpmap
            .iter()
            .find(|t| t.to_ascii_lowercase().contains(suffix))
            .and_then(|t| t.split(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {suffix} on the client leg: {stats}"))
    };
    let client_pt = pt_of("telephone-event/48000");
    let opus_pt = pt_of(" opus/48000");
    alice.hangup("success").expect("hangup");
    sipp.wait_passed()
        .unwrap_or_else(|e| panic!("SIPp's scenario: {e}"));
    capture.stop();
    alice.quit();

    let sdps = capture.sdp(sip_port).expect("tshark reads SIP");
    let (pt, sipp_port) = trunk_answer(&sdps, sip_port);
    let sent = events_at(&capture, sipp_port, pt, Direction::From);
    let sent_evs = events(&sent);
    let to_client = |pt: u8| -> Vec<testbed::RtpPacket> {
        capture
            .rtp_packets(client_port, pt)
            .expect("tshark reads RTP")
            .into_iter()
            .filter(|p| p.dst_port == client_port)
            .collect()
    };
    let out = to_client(client_pt);
    let silence = to_client(opus_pt);
    // Event packets and silence frames in the order the gateway sent them.
    let mut all: Vec<&testbed::RtpPacket> = out.iter().chain(&silence).collect();
    let first_seq = out.first().map_or(0, |p| p.sequence);
    all.sort_by_key(|p| p.sequence.wrapping_sub(first_seq));
    let mut out_evs: Vec<Vec<&testbed::RtpPacket>> = Vec::new();
    for p in &out {
        match out_evs.last_mut() {
            Some(cur) if cur[0].timestamp == p.timestamp => cur.push(p),
            _ => out_evs.push(vec![p]),
        }
    }
    // The final duration of each output event (48 kHz ticks), from the trunk's ×6.
    let final_48k: Vec<u32> = sent_evs
        .iter()
        .map(|e| u32::from(e.last().map_or(0, |p| p.duration)) * 6)
        .collect();
    let covering = |start: u32, duration: u32| -> Vec<u32> {
        silence
            .iter()
            .map(|p| p.timestamp)
            .filter(|ts| {
                let d = ts.wrapping_sub(start) as i32;
                d >= 0 && d <= duration as i32
            })
            .collect()
    };
    let sent_keys: String = sent_evs.iter().map(|e| e[0].key()).collect();
    let out_summary: Vec<String> = out_evs
        .iter()
        .zip(final_48k.iter().chain(std::iter::repeat(&0)))
        .map(|(e, d)| {
            format!(
                "ts={} seq={}..{} pkts={} markers={} silence frames over it: {}",
                e[0].timestamp,
                e[0].sequence,
                e[e.len() - 1].sequence,
                e.len(),
                e.iter().filter(|p| p.marker).count(),
                covering(e[0].timestamp, *d).len()
            )
        })
        .collect();
    let digits: String = heard.iter().map(|(d, _)| d.as_str()).collect();
    eprintln!(
        "SIPp sent {} event packets (PT {pt}) from port {sipp_port}:\n  {}\n\
         the gateway sent {} packets of PT {client_pt} and {} silence frames (PT {opus_pt}) \
         to the client:\n  {}\n\
         the client heard {heard:?}\nwall time {:.1} s",
        sent.len(),
        summary(&sent_evs),
        out.len(),
        silence.len(),
        out_summary.join("\n  "),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(sent_keys, PCAP_DIGITS, "what SIPp sent");
    // SIPp stops a pcap still playing when the scenario starts the next one 400 ms
    // later; on a loaded machine the first play can start late and lose its tail (seen
    // once: "0" cut after 6 packets, without its end). So what follows compares with
    // what SIPp did send; 120 packets when nothing was cut.
    assert!(
        sent_evs.iter().all(|e| e[0].marker),
        "every key starts with its marker"
    );
    if sent.len() != 120 {
        eprintln!("note: SIPp sent {} of the pcaps' 120 packets", sent.len());
    }
    assert_eq!(
        digits,
        PCAP_DIGITS,
        "what the client heard: {heard:?}\n  {}",
        out_summary.join("\n  ")
    );
    check_heard_durations(&heard, &sent_evs);
    assert_eq!(out.len(), sent.len(), "event packets relayed to the client");
    assert_eq!(
        out_evs.len(),
        sent_evs.len(),
        "events relayed:\n  {}",
        out_summary.join("\n  ")
    );
    assert!(
        all.windows(2)
            .all(|w| w[1].sequence == w[0].sequence.wrapping_add(1)),
        "events and silence form one dense sequence:\n  {}",
        out_summary.join("\n  ")
    );
    assert!(
        silence
            .windows(2)
            .all(|w| (w[1].timestamp.wrapping_sub(w[0].timestamp) as i32) > 0),
        "silence timestamps always rise"
    );
    for (i, (e, s)) in out_evs.iter().zip(&sent_evs).enumerate() {
        // The updates, then the end three times (its repeats dropped, our own three sent).
        let ended = s.iter().any(|p| p.end);
        let updates = s.iter().filter(|p| !p.end).count();
        let want = updates + if ended { 3 } else { 0 };
        assert_eq!(e.len(), want, "event {i}: {}", out_summary[i]);
        assert!(e[0].marker, "event {i} without marker: {}", out_summary[i]);
        assert!(
            e[1..].iter().all(|p| !p.marker),
            "event {i}: {}",
            out_summary[i]
        );
        // One frame per 20 ms of the event's duration, from its start; an event that
        // has not ended also has one at its current duration.
        let frames = covering(e[0].timestamp, final_48k[i]);
        let want = if ended {
            final_48k[i].div_ceil(960)
        } else {
            final_48k[i] / 960 + 1
        };
        assert_eq!(
            frames.len() as u32,
            want,
            "event {i} covered by silence: {}",
            out_summary[i]
        );
        assert!(
            frames.first() == Some(&e[0].timestamp)
                && frames.windows(2).all(|w| w[1].wrapping_sub(w[0]) == 960),
            "event {i}: silence from its start, 20 ms apart: {frames:?}"
        );
    }
    for (i, (o, s)) in out_evs.windows(2).zip(sent_evs.windows(2)).enumerate() {
        let out_step = o[1][0].timestamp.wrapping_sub(o[0][0].timestamp) as i32;
        let in_step = s[1][0].timestamp.wrapping_sub(s[0][0].timestamp) as i32;
        if in_step >= 0 {
            assert_eq!(
                out_step,
                in_step * 6,
                "events {i}->{}: RTP time kept",
                i + 1
            );
        } else {
            assert!(
                out_step > 0,
                "events {i}->{}: the trunk went back {in_step} ticks, the client leg goes forward",
                i + 1
            );
        }
    }
}
