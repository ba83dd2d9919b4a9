//! Shared by the outbound end-to-end test and the demo (`tests/examples/demo.rs`):
//! Prosody, the gateway and baresip as the phone on loopback, and the libwebrtc client
//! (Conversations-like: JMI, inline candidates, renomination) calling a number.
//! Also, for the failure and policy tests, [`SippBed`]: alice and a gateway whose trunk
//! or caller is SIPp, with the waits and the timing checks those tests share.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use testbed::ports::free_port_range;
use testbed::webrtc::{Event, OnPropose};
use testbed::{
    Candidates, Gateway, GatewayConfig, Namespace, Process, ProcessBuilder, Prosody, Scratch, Sipp,
    WebrtcClient, WebrtcConfig,
};

/// The number called; baresip answers it.
pub(crate) const NUMBER: &str = "+15551230000";
/// The tone the phone (baresip) plays, in Hz.
pub(crate) const PHONE_HZ: f64 = 440.0;
/// The tone the XMPP client sends, in Hz.
pub(crate) const CLIENT_HZ: f64 = 660.0;
/// Every wait.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// What one call showed.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The caller's JID and the number JID called.
    pub(crate) caller: String,
    /// The number JID.
    pub(crate) callee: String,
    /// The codec the client received (`opus`, `PCMU`).
    pub(crate) client_codec: String,
    /// The gateway's call summary line.
    pub(crate) summary: String,
    /// Frequency the client heard from the phone.
    pub(crate) client_heard_hz: f64,
    /// Frequency in the phone's recording of the client.
    pub(crate) phone_heard_hz: f64,
    /// propose → `INVITE sent` in the gateway log.
    pub(crate) propose_to_invite: Option<Duration>,
    /// SIP 200 in the gateway log → the client's first received audio (its `track`
    /// event, then `inbound.packets > 0`).
    pub(crate) answer_to_audio: Option<Duration>,
    /// Client call → accepted.
    pub(crate) time_to_connect: Duration,
    /// baresip logged the BYE.
    pub(crate) bye_reached_phone: bool,
    /// The gateway's log lines of the call's milestones (for diagnosis).
    pub(crate) timeline: Vec<String>,
}

/// The test bed: scratch dir, Prosody with alice, the gateway, baresip.
pub(crate) struct Bed {
    pub(crate) scratch: Scratch,
    pub(crate) prosody: Prosody,
    pub(crate) gateway: Gateway,
    pub(crate) phone: Process,
    pub(crate) phone_dir: PathBuf,
}

/// Starts Prosody, baresip (auto-answer, 440 Hz tone, recording) on a free port, and
/// the gateway with its `local` trunk pointing at baresip.
pub(crate) fn start_bed(name: &str, time_limit: Duration) -> Result<Bed, String> {
    let scratch = Scratch::new(name).map_err(|e| format!("scratch: {e}"))?;
    let mut prosody = Prosody::start_default(&scratch).map_err(|e| format!("prosody: {e}"))?;
    prosody
        .register("alice", "alice-pw")
        .map_err(|e| format!("register alice: {e}"))?;
    let phone_dir = scratch.subdir("baresip").map_err(|e| e.to_string())?;
    // A port found free can be taken before baresip binds it (other tests run in
    // parallel).
    let (phone, port) = baresip_on_free_ports(&phone_dir, time_limit, &[])?;
    let mut config = GatewayConfig {
        time_limit,
        ..GatewayConfig::default()
    };
    config.set("sip.trunks.0.port", port);
    // Offer-driven codec choice: Opus on the client leg when the client offers it
    // (the default, `true`, keeps G.711 end to end whenever possible).
    config.set("media.prefer_g711_passthrough", false);
    let mut gateway =
        Gateway::start(&scratch, &prosody, &config).map_err(|e| format!("gateway: {e}"))?;
    prosody
        .wait_component_authenticated(0, WAIT)
        .map_err(|e| format!("the gateway did not join Prosody: {e}"))?;
    gateway
        .wait_for_log("sip user agent running", WAIT)
        .map_err(|e| format!("the gateway's SIP side did not start: {e}"))?;
    Ok(Bed {
        scratch,
        prosody,
        gateway,
        phone,
        phone_dir,
    })
}

/// baresip as a phone answering [`NUMBER`] on `127.0.0.1:port` (auto-answer, playing a
/// [`PHONE_HZ`] tone, recording into `dir`), bounded by `limit`; `extra`: more arguments.
/// baresip also takes `port + 1` (SIP over TCP and TLS): get `port` from
/// `free_port_range(2)`. Returns once baresip is ready; an error that contains
/// "Address already in use" means another process took one of the two ports first, and
/// the caller may retry with others.
pub(crate) fn baresip(
    dir: &Path,
    port: u16,
    limit: Duration,
    extra: &[&str],
) -> Result<Process, String> {
    baresip_with_config(dir, port, limit, extra, "")
}

/// [`baresip`] on two free ports (from `free_port_range(2)`), tried again on other
/// ports when another process took one of them first (up to 3 more times). Returns the
/// process and its SIP port.
pub(crate) fn baresip_on_free_ports(
    dir: &Path,
    limit: Duration,
    extra: &[&str],
) -> Result<(Process, u16), String> {
    let mut attempt = 0;
    loop {
        let port = free_port_range(2);
        match baresip(dir, port, limit, extra) {
            Ok(p) => return Ok((p, port)),
            Err(e) if attempt < 3 && e.contains("Address already in use") => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// A caller: [`baresip_on_free_ports`] dialling `sip:{did}@127.0.0.1:{sip_port}` (the
/// gateway) as soon as it is ready.
pub(crate) fn baresip_dialing(
    dir: &Path,
    did: &str,
    sip_port: u16,
    limit: Duration,
) -> Result<Process, String> {
    let dial = format!("/dial sip:{did}@127.0.0.1:{sip_port}");
    baresip_on_free_ports(dir, limit, &["-e", &dial]).map(|(p, _)| p)
}

/// [`baresip`] with `extra_config` lines appended to its config file (for example
/// `module_app ctrl_tcp.so` and `ctrl_tcp_listen 127.0.0.1:PORT`).
pub(crate) fn baresip_with_config(
    dir: &Path,
    port: u16,
    limit: Duration,
    extra: &[&str],
    extra_config: &str,
) -> Result<Process, String> {
    let tone = dir.join("tone.wav");
    let status = Command::new("sox")
        .args(["-n", "-r", "8000", "-c", "1", "-b", "16"])
        .arg(&tone)
        .args(["synth", "60", "sine", &PHONE_HZ.to_string(), "vol", "0.5"])
        .status()
        .map_err(|e| format!("sox must be installed (scripts/install-deps): {e}"))?;
    if !status.success() {
        return Err("sox could not make the tone file".into());
    }
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{port}\naudio_player alsa,null\naudio_alert alsa,null\n\
         audio_source aufile,{}\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\n\
         module alsa.so\nmodule sndfile.so\nmodule_app account.so\nmodule_app menu.so\nsnd_path {}\n{extra_config}",
        tone.display(),
        dir.display()
    );
    std::fs::write(dir.join("config"), config).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("accounts"),
        format!("<sip:{NUMBER}@127.0.0.1:{port}>;regint=0;answermode=auto;audio_codecs=PCMU\n"),
    )
    .map_err(|e| e.to_string())?;
    let mut process = ProcessBuilder::new("baresip", "baresip")
        .args(["-f", &dir.display().to_string(), "-n", "127.0.0.1"])
        .args(extra)
        .time_limit(limit)
        .current_dir(dir)
        .spawn(dir)
        .map_err(|e| format!("baresip: {e}"))?;
    // baresip binds SIP over UDP on `port`, then TCP and TLS on `port + 1`, and only
    // then says it is ready; if a later bind fails it gives up ("ua: init failed") with
    // the UDP port briefly bound. So wait for "baresip is ready", and report a bind
    // failure as "Address already in use" for the callers that retry on other ports.
    let deadline = Instant::now() + WAIT;
    loop {
        let log = std::fs::read_to_string(process.log_path()).unwrap_or_default();
        if log.contains("Address already in use") || log.contains("init failed") {
            return Err(format!(
                "baresip could not bind 127.0.0.1:{port} or {}: Address already in use\n{}",
                port + 1,
                process.log_tail(10)
            ));
        }
        if log.contains("baresip is ready") {
            break;
        }
        if let Err(e) = process.check_running() {
            return Err(format!("baresip exited: {e}\n{}", process.log_tail(20)));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "baresip did not get ready on 127.0.0.1:{port} within {WAIT:?}\n{}",
                process.log_tail(30)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        return Err(format!(
            "baresip says it is ready but 127.0.0.1:{port} is not bound\n{}",
            process.log_tail(30)
        ));
    }
    Ok(process)
}

/// Timestamp (UTC, seconds of the day) of the first gateway log line containing
/// `needle`.
fn log_time(log: &str, needle: &str) -> Option<f64> {
    let line = log.lines().find(|l| l.contains(needle))?;
    // tracing's default format: `2026-11-23T19:20:01.123456Z  INFO …`
    let ts = line.split_whitespace().next()?;
    let time = ts.split('T').nth(1)?.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

fn now_of_day() -> f64 {
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    t.as_secs_f64() % 86_400.0
}

/// Places a call from alice (the libwebrtc client, Conversations-like) to [`NUMBER`],
/// checks the tones both ways, hangs up and reads the phone's recording.
/// `codecs`: the client's codec preference (`["PCMU"]` for passthrough, empty for
/// libwebrtc's default, Opus first).
pub(crate) fn outbound_call(bed: &mut Bed, codecs: &[&str]) -> Result<Outcome, String> {
    let mut config = WebrtcConfig::new(bed.prosody.jid("alice"), "alice-pw");
    config.tone_hz = CLIENT_HZ;
    config.candidates = Candidates::Inline;
    config.renomination = true;
    config.codecs = codecs.iter().map(|c| (*c).to_owned()).collect();
    config.time_limit = Duration::from_secs(90);
    let mut alice = WebrtcClient::start(&bed.scratch, &bed.prosody, &config)
        .map_err(|e| format!("the client did not log in: {e}"))?;
    let callee = format!("{NUMBER}@{}", bed.prosody.component_domain());
    let started = Instant::now();
    alice
        .call(&callee, true)
        .map_err(|e| format!("call: {e}"))?;
    alice.wait_for("accepted", WAIT).map_err(|e| {
        format!(
            "the call was not answered: {e}\n{}",
            bed.gateway.process().log_tail(40)
        )
    })?;
    let time_to_connect = started.elapsed();
    // First audio at the client: poll its inbound packet count.
    let mut first_audio_at = None;
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let s = alice.stats().map_err(|e| format!("stats: {e}"))?;
        if s["inbound"][0]["packets"].as_u64().unwrap_or(0) > 0 {
            first_audio_at = Some(now_of_day());
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let heard = hears_tone(&mut alice, PHONE_HZ)?;
    let stats = alice.stats().map_err(|e| format!("stats: {e}"))?;
    let client_codec = stats["inbound"][0]["codec"]
        .as_str()
        .unwrap_or("?")
        .to_owned();
    // Let the phone record a while of the client's tone.
    std::thread::sleep(Duration::from_secs(2));
    alice
        .hangup("success")
        .map_err(|e| format!("hangup: {e}"))?;
    let phone_log = bed.phone.log_path().to_owned();
    let gw_log_path = bed.gateway.process().log_path().to_owned();
    let mut summary = String::new();
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let log = std::fs::read_to_string(&gw_log_path).unwrap_or_default();
        if let Some(l) = log.lines().find(|l| l.contains("call summary")) {
            summary = l.to_owned();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let gw_log = std::fs::read_to_string(&gw_log_path).unwrap_or_default();
    let propose_to_invite = match (
        log_time(&gw_log, "call proposal accepted"),
        log_time(&gw_log, "INVITE sent"),
    ) {
        (Some(a), Some(b)) if b >= a => Some(Duration::from_secs_f64(b - a)),
        _ => None,
    };
    let answer_to_audio = match (log_time(&gw_log, "SIP 200"), first_audio_at) {
        (Some(a), Some(b)) if b >= a => Some(Duration::from_secs_f64(b - a)),
        _ => None,
    };
    // baresip writes the recording's final header when the call ends.
    let recording = testbed::recording::wait_complete_wav(&bed.phone_dir, "-dec.wav", WAIT)
        .map_err(|e| {
            format!(
                "the phone's recording: {e}\n{}",
                testbed::log_tail(&phone_log, 30)
            )
        })?;
    let phone_heard_hz = tone_frequency(&recording)?;
    let phone_text = std::fs::read_to_string(&phone_log).unwrap_or_default();
    // baresip reports a BYE from the far end as "session closed: Connection reset by peer".
    let bye_reached_phone = phone_text.contains("session closed: Connection reset by peer");
    alice.quit();
    Ok(Outcome {
        caller: bed.prosody.jid("alice"),
        callee,
        client_codec,
        summary,
        client_heard_hz: heard,
        phone_heard_hz,
        propose_to_invite,
        answer_to_audio,
        time_to_connect,
        bye_reached_phone,
        timeline: gw_log
            .lines()
            .filter(|l| {
                [
                    "call proposal accepted",
                    "INVITE sent",
                    "SIP 200",
                    "session-initiate",
                    "answered: session-accept",
                    "IceState",
                    "ice selected",
                    "dtls connected",
                    "media flowing",
                ]
                .iter()
                .any(|m| l.contains(m))
            })
            .map(|l| l.chars().take(160).collect())
            .collect(),
    })
}

/// Waits until `client` hears a tone near `hz` (±2 %) over 1 s; returns its frequency.
pub(crate) fn hears_tone(client: &mut WebrtcClient, hz: f64) -> Result<f64, String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = client
            .audio(Duration::from_secs(1))
            .map_err(|e| format!("audio report: {e}"))?;
        if r.frames_received >= 50 && (r.frequency_hz - hz).abs() <= hz * 0.02 && r.rms > 0.02 {
            return Ok(r.frequency_hz);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the client never heard {hz} Hz from the phone; last report {r:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The frequency of the tone in a 16-bit PCM WAV file: positive-going zero crossings
/// counted over the 100 ms blocks whose RMS is above 2 % of full scale (silence before
/// the media flowed is left out).
pub(crate) fn tone_frequency(path: &Path) -> Result<f64, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (rate, data) =
        wav_data(&bytes).ok_or_else(|| format!("{}: not a 16-bit PCM WAV", path.display()))?;
    let samples: Vec<f64> = data
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    let block = (rate / 10) as usize;
    let (mut crossings, mut kept) = (0usize, 0usize);
    for chunk in samples.chunks(block).filter(|c| c.len() == block) {
        let rms = (chunk.iter().map(|x| x * x).sum::<f64>() / block as f64).sqrt();
        if rms < 0.02 {
            continue;
        }
        kept += block;
        crossings += chunk
            .windows(2)
            .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
            .count();
    }
    if kept < block * 5 {
        return Err(format!(
            "{}: under 0.5 s of audio above -34 dBFS ({} samples at {rate} Hz)",
            path.display(),
            samples.len()
        ));
    }
    Ok(crossings as f64 * f64::from(rate) / kept as f64)
}

/// [`tone_frequency`] over the last `tail` of audio above -34 dBFS in the WAV file at
/// `path` (what was heard last, e.g. after an ICE restart); trailing silence is skipped.
pub(crate) fn tone_frequency_tail(path: &Path, tail: Duration) -> Result<f64, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (rate, data) =
        wav_data(&bytes).ok_or_else(|| format!("{}: not a 16-bit PCM WAV", path.display()))?;
    let samples: Vec<f64> = data
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    let block = (rate / 10) as usize;
    let loud: Vec<&[f64]> = samples
        .chunks(block)
        .filter(|c| c.len() == block)
        .filter(|c| (c.iter().map(|x| x * x).sum::<f64>() / block as f64).sqrt() >= 0.02)
        .collect();
    let want = (tail.as_secs_f64() * 10.0) as usize;
    if loud.len() < want.max(5) {
        return Err(format!(
            "{}: {} blocks of 100 ms above -34 dBFS, {want} wanted",
            path.display(),
            loud.len()
        ));
    }
    let crossings: usize = loud[loud.len() - want..]
        .iter()
        .map(|c| c.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count())
        .sum();
    Ok(crossings as f64 * f64::from(rate) / (want * block) as f64)
}

/// The sample rate and the `data` chunk of a mono 16-bit PCM WAV file.
fn wav_data(b: &[u8]) -> Option<(u32, &[u8])> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return None;
    }
    let mut i = 12;
    let mut rate = None;
    while i + 8 <= b.len() {
        let id = &b[i..i + 4];
        let len = u32::from_le_bytes(b[i + 4..i + 8].try_into().ok()?) as usize;
        let body = &b[i + 8..(i + 8 + len).min(b.len())];
        if id == b"fmt " && body.len() >= 16 {
            let channels = u16::from_le_bytes([body[2], body[3]]);
            let bits = u16::from_le_bytes([body[14], body[15]]);
            if channels != 1 || bits != 16 {
                return None;
            }
            rate = Some(u32::from_le_bytes(body[4..8].try_into().ok()?));
        }
        if id == b"data" {
            return Some((rate?, body));
        }
        i += 8 + len + (len & 1);
    }
    None
}

/// What an inbound call showed.
#[derive(Debug)]
pub(crate) struct InboundOutcome {
    /// Frequency the client heard from the calling phone.
    pub(crate) client_heard_hz: f64,
    /// Frequency in the calling phone's recording of the client.
    pub(crate) phone_heard_hz: f64,
    /// The JID the propose came from.
    pub(crate) from: String,
    /// baresip dial → the client's `incoming` event.
    pub(crate) dial_to_ring: Duration,
    /// The caller logged the BYE of alice's hangup.
    pub(crate) bye_reached_caller: bool,
    /// The gateway answered (200) only after ICE and DTLS succeeded.
    pub(crate) answered_after_dtls: bool,
}

/// A second baresip (the caller, `+15551230000`) dials the DID `did` of alice through
/// the gateway; alice (auto-answer) hears its tone, it hears alice's; alice hangs up.
pub(crate) fn inbound_call(bed: &mut Bed, did: &str) -> Result<InboundOutcome, String> {
    let mut config = WebrtcConfig::new(bed.prosody.jid("alice"), "alice-pw");
    config.tone_hz = CLIENT_HZ;
    config.renomination = true;
    config.time_limit = Duration::from_secs(90);
    let mut alice = WebrtcClient::start(&bed.scratch, &bed.prosody, &config)
        .map_err(|e| format!("the client did not log in: {e}"))?;
    let dir = bed.scratch.subdir("caller").map_err(|e| e.to_string())?;
    let started = Instant::now();
    let caller = baresip_dialing(&dir, did, bed.gateway.sip_port(), Duration::from_secs(60))?;
    let incoming = alice.wait_for("incoming", WAIT).map_err(|e| {
        format!(
            "no call reached the client: {e}\n--- caller ---\n{}",
            testbed::log_tail(caller.log_path(), 20)
        )
    })?;
    let dial_to_ring = started.elapsed();
    let from = incoming.str("from").unwrap_or_default().to_owned();
    let heard = hears_tone(&mut alice, PHONE_HZ)?;
    std::thread::sleep(Duration::from_secs(2));
    alice
        .hangup("success")
        .map_err(|e| format!("hangup: {e}"))?;
    // baresip writes the recording's final header when the call ends.
    let recording = testbed::recording::wait_complete_wav(&dir, "-dec.wav", WAIT).map_err(|e| {
        format!(
            "the caller's recording: {e}\n{}",
            testbed::log_tail(caller.log_path(), 30)
        )
    })?;
    let phone_heard_hz = tone_frequency(&recording)?;
    let caller_log = std::fs::read_to_string(caller.log_path()).unwrap_or_default();
    let gw_log = std::fs::read_to_string(bed.gateway.process().log_path()).unwrap_or_default();
    let answered_after_dtls = match (
        gw_log.find("dtls connected"),
        gw_log.find("ICE and DTLS up: SIP 200 sent"),
    ) {
        (Some(d), Some(a)) => d < a,
        _ => false,
    };
    alice.quit();
    Ok(InboundOutcome {
        client_heard_hz: heard,
        phone_heard_hz,
        from,
        dial_to_ring,
        bye_reached_caller: caller_log.contains("session closed: Connection reset by peer"),
        answered_after_dtls,
    })
}

// ------------------------------------------- alice and a gateway with a SIPp trunk

/// alice's DID (`deploy/testbed.toml`).
pub(crate) const DID: &str = "+15551230001";
/// Both legs must have ended within this long of the triggering event (issue 6).
pub(crate) const BOTH_LEGS: Duration = Duration::from_secs(2);
/// How often the client's events and SIPp's message log are polled.
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// Prosody with alice, and a gateway that lets alice call out over the `local` trunk
/// (configured further by the test: SIPp as the trunk or the caller, or baresip).
pub(crate) struct SippBed {
    // Field order is drop order.
    pub(crate) gateway: Gateway,
    pub(crate) prosody: Prosody,
    pub(crate) scratch: Scratch,
}

impl SippBed {
    /// Starts Prosody (alice registered) and the gateway configured by `configure`;
    /// panics when either does not come up within [`WAIT`].
    pub(crate) fn start(scratch: Scratch, configure: impl FnOnce(&mut GatewayConfig)) -> Self {
        let mut prosody = Prosody::start_default(&scratch).expect("prosody starts");
        prosody.register("alice", "alice-pw").expect("register");
        let mut config = GatewayConfig {
            time_limit: Duration::from_secs(120),
            ..GatewayConfig::default()
        };
        config
            .set(
                "routing.allowed_callers",
                format!("[\"{}\"]", prosody.jid("alice")),
            )
            .set("routing.routes.0.trunks", "[\"local\"]");
        configure(&mut config);
        let mut gateway = Gateway::start(&scratch, &prosody, &config).expect("gateway starts");
        prosody
            .wait_component_authenticated(0, WAIT)
            .expect("the gateway joins Prosody");
        gateway
            .wait_for_log("sip user agent running", WAIT)
            .expect("the gateway's SIP side starts");
        Self {
            gateway,
            prosody,
            scratch,
        }
    }

    /// alice's client (Conversations-like: renomination), reacting to proposes with
    /// `on_propose` (a reject carries `<decline/>`).
    pub(crate) fn alice(&self, on_propose: OnPropose) -> WebrtcClient {
        self.alice_rejecting_with(on_propose, "decline")
    }

    /// As [`SippBed::alice`], a reject carrying the Jingle reason `reject_reason`.
    pub(crate) fn alice_rejecting_with(
        &self,
        on_propose: OnPropose,
        reject_reason: &str,
    ) -> WebrtcClient {
        let mut config = WebrtcConfig::new(self.prosody.jid("alice"), "alice-pw");
        config.renomination = true;
        config.on_propose = on_propose;
        config.reject_reason = reject_reason.into();
        config.time_limit = Duration::from_secs(90);
        WebrtcClient::start(&self.scratch, &self.prosody, &config).expect("client logs in")
    }

    /// The JID of [`NUMBER`] at the gateway.
    pub(crate) fn number(&self) -> String {
        format!("{NUMBER}@{}", self.prosody.component_domain())
    }

    /// The last 60 lines of the gateway's log.
    pub(crate) fn gateway_log(&mut self) -> String {
        self.gateway.process().log_tail(60)
    }

    /// SIPp calling alice's [`DID`] through the gateway with the UAC `scenario`.
    pub(crate) fn sipp_caller(&self, scenario: &str) -> Sipp {
        Sipp::uac(&self.scratch, scenario, DID, self.gateway.sip_port()).expect("sipp starts")
    }

    /// Waits for the gateway's `call summary` line, checks who hung up and why, and
    /// returns it.
    pub(crate) fn assert_summary(&mut self, hung_up_by: &str, reason: &str) -> String {
        let path = self.gateway.process().log_path().to_owned();
        let deadline = Instant::now() + WAIT;
        let line = loop {
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            if let Some(l) = log.lines().find(|l| l.contains("call summary")) {
                break l.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no call summary\n{}",
                self.gateway_log()
            );
            std::thread::sleep(POLL);
        };
        for (key, value) in [("hung_up_by", hung_up_by), ("reason", reason)] {
            assert!(
                line.contains(&format!("{key}=\"{value}\"")),
                "{key}={value} in the summary: {line}"
            );
        }
        line
    }

    /// Waits for the end of alice's session `sid` and checks its reason is
    /// `condition` (the gateway's log on failure); returns when it was seen.
    pub(crate) fn assert_terminated(
        &mut self,
        alice: &mut WebrtcClient,
        sid: &str,
        condition: &str,
    ) -> Instant {
        let (ended, seen) = wait_terminated(alice, sid, WAIT);
        assert_eq!(seen, condition, "{}", self.gateway_log());
        ended
    }
}

/// A bed whose `local` trunk is a SIPp UAS running `scenario`, configured further by
/// `configure`; alice calls the number. Returns the bed, the trunk, alice, the sid and
/// when the call was placed.
pub(crate) fn outbound_to_sipp(
    name: &str,
    scenario: &str,
    configure: impl FnOnce(&mut GatewayConfig),
) -> (SippBed, Sipp, WebrtcClient, String, Instant) {
    let scratch = loopback_scratch(name);
    let sipp = Sipp::uas(&scratch, scenario).expect("sipp starts");
    let port = sipp.port();
    let bed = SippBed::start(scratch, |c| {
        c.set("sip.trunks.0.port", port);
        configure(c);
    });
    let mut alice = bed.alice(OnPropose::Answer);
    let placed = Instant::now();
    let sid = alice.call(&bed.number(), true).expect("call placed");
    (bed, sipp, alice, sid, placed)
}

/// A scratch directory, after checking that only loopback exists.
pub(crate) fn loopback_scratch(name: &str) -> Scratch {
    Namespace::require_loopback_only();
    Scratch::new(name).expect("scratch")
}

/// Waits until SIPp's scenario passed; panics naming `what` it checks otherwise.
pub(crate) fn sipp_passed(sipp: &mut Sipp, what: &str) {
    sipp.wait_passed().unwrap_or_else(|e| panic!("{what}: {e}"));
}

/// Polls `client` every [`POLL`] until an event for which `pred` holds has arrived;
/// the instant it was seen and the event. Panics after `timeout`.
pub(crate) fn wait_event(
    client: &mut WebrtcClient,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Event) -> bool,
) -> (Instant, Event) {
    let deadline = Instant::now() + timeout;
    loop {
        client.drain();
        if let Some(e) = client.history().iter().find(|e| pred(e)) {
            return (Instant::now(), e.clone());
        }
        assert!(
            Instant::now() < deadline,
            "{}: no {what} within {timeout:?}; recent events {:?}",
            client.name(),
            client
                .history()
                .iter()
                .rev()
                .take(10)
                .map(|e| e.0.to_string())
                .collect::<Vec<_>>()
        );
        std::thread::sleep(POLL);
    }
}

/// Waits (up to [`WAIT`]) until the session `sid` is accepted; when it was seen.
pub(crate) fn wait_accepted(client: &mut WebrtcClient, sid: &str) -> Instant {
    wait_event(client, "session accepted", WAIT, |e| {
        e.name() == "accepted" && e.str("sid") == Some(sid)
    })
    .0
}

/// The session `sid` ended (`terminated`); the instant seen and the reason condition.
pub(crate) fn wait_terminated(
    client: &mut WebrtcClient,
    sid: &str,
    timeout: Duration,
) -> (Instant, String) {
    let (at, e) = wait_event(client, "session terminated", timeout, |e| {
        e.name() == "terminated" && e.str("sid") == Some(sid)
    });
    let condition = e
        .get("reason")
        .and_then(|r| r.get("condition"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    (at, condition)
}

/// `later - earlier`, zero when `later` was seen first (both polled).
pub(crate) fn after(later: Instant, earlier: Instant) -> Duration {
    later.saturating_duration_since(earlier)
}

/// Checks `legs` (name, time from the trigger) against [`BOTH_LEGS`] and prints them.
pub(crate) fn check_legs(case: &str, legs: &[(&str, Duration)]) {
    for (leg, d) in legs {
        eprintln!("{case}: {leg} {} ms after the trigger", d.as_millis());
        assert!(
            *d <= BOTH_LEGS,
            "{case}: {leg} took {d:?} (limit {BOTH_LEGS:?})"
        );
    }
}
