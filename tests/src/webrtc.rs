//! The libwebrtc client (StanzaJS + @roamhq/wrtc, `tests/peers/webrtc/client.js`),
//! extended with XEP-0353 so it behaves like Conversations.
//!
//! Two engines hold its RTCPeerConnection ([`Engine`]): `@roamhq/wrtc` (libwebrtc M106
//! in Node, the default) and Debian's Chromium driven by playwright-core (a real
//! browser's libwebrtc; the only one with `RTCDTMFSender`, so DTMF tests use it).
//!
//! The harness talks to it over JSON lines: commands on its stdin, events on its
//! stdout (`{"event":"…","t":MS,…}`); see the header of `client.js` for the list.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ChildStdin;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::process::{Process, ProcessBuilder, Stdout};
use crate::{Error, Result, Scratch, XmppServer};

/// How the client sends its own ICE candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Candidates {
    /// Inline when the peer advertises `urn:ietf:rfc:3264`, else trickle (Conversations).
    Auto,
    /// Always all candidates inside session-initiate / session-accept.
    Inline,
    /// Always trickled in `transport-info` (XEP-0176 §2).
    Trickle,
}

/// What the client does with an incoming JMI `<propose/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnPropose {
    /// `<ringing/>` (if enabled), then `<proceed/>`, then accept the session-initiate.
    Answer,
    /// `<reject/>` with [`WebrtcConfig::reject_reason`].
    Reject,
    /// Nothing (lets the caller time out or retract).
    Ignore,
}

/// Which libwebrtc holds the client's peer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// `@roamhq/wrtc` 0.10.0 (libwebrtc M106) inside node: no `RTCDTMFSender`.
    Wrtc,
    /// Headless `/usr/bin/chromium` through playwright-core (`tests/peers/webrtc/chromium.js`):
    /// its RTCPeerConnection, a WebAudio tone, `RTCDTMFSender.insertDTMF`.
    Chromium,
}

/// One DTMF key the client detected in the audio it received (Goertzel over the 8
/// DTMF frequencies in 10 ms blocks; `tests/peers/webrtc/audio.js`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HeardDigit {
    /// The key: `0`–`9`, `*`, `#`, `A`–`D`.
    pub digit: String,
    /// How long the key tone lasted, in ms (a multiple of 10, at least 30).
    pub duration_ms: u64,
}

/// Settings of one [`WebrtcClient`]; serialized as the client's JSON config.
#[derive(Debug, Clone, Serialize)]
pub struct WebrtcConfig {
    /// Bare JID of the account, e.g. `alice@localhost`.
    pub jid: String,
    /// Its password.
    pub password: String,
    /// Resource; default `testbed`.
    pub resource: String,
    /// Frequency of the sine tone the client sends, in Hz; default 440.
    pub tone_hz: f64,
    /// Its amplitude as a fraction of full scale; default 0.3.
    pub tone_amplitude: f64,
    /// How the client sends its candidates; default [`Candidates::Auto`].
    pub candidates: Candidates,
    /// Advertise `urn:ietf:rfc:3264` in our disco#info (asks callers for inline
    /// candidates, as Conversations' peers see); default false.
    pub advertise_rfc3264: bool,
    /// Advertise JMI (`urn:xmpp:jingle-message:0`) in our disco#info; default true
    /// (false: a client like Gajim 1.x, which callers reach with `session-initiate`).
    pub advertise_jmi: bool,
    /// Munge `a=ice-options:trickle renomination` into the local SDP, so libwebrtc
    /// nominates with NOMINATION (0xC001) as in Conversations; default false.
    pub renomination: bool,
    /// Codec names to prefer via `setCodecPreferences` (e.g. `["PCMU"]`); empty = libwebrtc's order.
    pub codecs: Vec<String>,
    /// Reaction to a JMI propose; default [`OnPropose::Answer`].
    pub on_propose: OnPropose,
    /// Send JMI `<ringing/>` before `<proceed/>`; default true.
    pub send_ringing: bool,
    /// Delay between `<ringing/>` and `<proceed/>`, in ms; default 0.
    pub answer_delay_ms: u64,
    /// Jingle reason condition of a `<reject/>`; default `busy`.
    pub reject_reason: String,
    /// Accept a session-initiate that no JMI preceded; default true.
    pub accept_direct: bool,
    /// Approve and reciprocate presence subscription requests; default true.
    pub auto_subscribe: bool,
    /// Caller retracts after this long without `<proceed/>`, in ms; default 30000.
    pub proceed_timeout_ms: u64,
    /// The engine of the peer connection; default [`Engine::Wrtc`].
    pub engine: Engine,
    /// Connect over BOSH instead of WebSocket; default false.
    #[serde(skip)]
    pub bosh: bool,
    /// Wall-clock bound of the client process; default 90 s.
    #[serde(skip)]
    pub time_limit: Duration,
}

impl WebrtcConfig {
    /// Defaults for the account `jid` (bare) with `password`.
    pub fn new(jid: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            jid: jid.into(),
            password: password.into(),
            resource: "testbed".into(),
            tone_hz: 440.0,
            tone_amplitude: 0.3,
            candidates: Candidates::Auto,
            advertise_rfc3264: false,
            advertise_jmi: true,
            renomination: false,
            codecs: Vec::new(),
            on_propose: OnPropose::Answer,
            send_ringing: true,
            answer_delay_ms: 0,
            reject_reason: "busy".into(),
            accept_direct: true,
            auto_subscribe: true,
            proceed_timeout_ms: 30_000,
            engine: Engine::Wrtc,
            bosh: false,
            time_limit: Duration::from_secs(90),
        }
    }
}

/// One event line from the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Event(pub Value);

impl Event {
    /// The event's name (`ready`, `jmi`, `incoming`, `terminated`, …).
    #[must_use]
    pub fn name(&self) -> &str {
        self.0.get("event").and_then(Value::as_str).unwrap_or("")
    }

    /// A string field.
    #[must_use]
    pub fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// A number field.
    #[must_use]
    pub fn f64(&self, key: &str) -> Option<f64> {
        self.0.get(key).and_then(Value::as_f64)
    }

    /// Any field.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }
}

/// What the client measured of the far end's audio (`{"cmd":"audio"}`); zeros (and
/// −200 dBFS) before any audio arrived.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default)]
pub struct AudioReport {
    /// Dominant frequency by interpolated rising zero crossings, in Hz (0 if silent).
    pub frequency_hz: f64,
    /// RMS level, as a fraction of full scale (a full-scale sine is 0.707).
    pub rms: f64,
    /// The same in dBFS (−200 for silence).
    pub rms_dbfs: f64,
    /// Share of the energy at `frequency_hz` (Goertzel), 0..1: ~1 for a clean tone.
    pub tone_ratio: f64,
    /// 10 ms frames delivered by `RTCAudioSink` since the track arrived.
    pub frames_received: u64,
    /// Samples in the measured window.
    pub samples: u64,
    /// Sample rate of the measured window, in Hz.
    pub sample_rate: u64,
}

impl Default for AudioReport {
    fn default() -> Self {
        Self {
            frequency_hz: 0.0,
            rms: 0.0,
            rms_dbfs: -200.0,
            tone_ratio: 0.0,
            frames_received: 0,
            samples: 0,
            sample_rate: 0,
        }
    }
}

/// One line of the client's stanza log.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LoggedStanza {
    /// Milliseconds since the client started.
    pub t: u64,
    /// `in` or `out`.
    pub dir: String,
    /// The stanza, serialized.
    pub xml: String,
}

/// A running libwebrtc client. Dropping it kills the node process by pid.
#[derive(Debug)]
pub struct WebrtcClient {
    name: String,
    process: Process,
    stdin: Option<ChildStdin>,
    events: Receiver<Event>,
    backlog: VecDeque<Event>,
    history: Vec<Event>,
    stanza_log: PathBuf,
    full_jid: String,
    next_req: u64,
}

/// Default wait for one event.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

impl WebrtcClient {
    /// Starts `node tests/peers/webrtc/client.js CONFIG` connected to `server`
    /// ([`crate::Prosody`] or [`crate::Ejabberd`]) over WebSocket (or BOSH), and waits
    /// until it is logged in and has sent presence.
    ///
    /// # Errors
    /// [`Error::Missing`] if `node_modules` is absent (run `scripts/install-deps`),
    /// [`Error::Io`] if node cannot be started, [`Error::TimedOut`] or
    /// [`Error::Exited`] if it does not come up.
    pub fn start<S: XmppServer + ?Sized>(
        scratch: &Scratch,
        server: &S,
        config: &WebrtcConfig,
    ) -> Result<Self> {
        let dir = crate::paths::peers_dir().join("webrtc");
        if !dir.join("node_modules").join("stanza").is_dir() {
            return Err(Error::Missing {
                what: format!("{}/node_modules", dir.display()),
                hint: "run scripts/install-deps (npm ci in tests/peers/webrtc)".into(),
            });
        }
        let name = config.jid.split('@').next().unwrap_or("webrtc").to_owned();
        let stanza_log = scratch.join(format!("{name}.stanzas.jsonl"));
        let mut value = serde_json::to_value(config).map_err(|e| Error::Peer {
            peer: name.clone(),
            message: format!("config: {e}"),
        })?;
        let obj = value
            .as_object_mut()
            .expect("config serializes to an object");
        if config.bosh {
            obj.insert("bosh_url".into(), json!(server.bosh_url()));
        } else {
            obj.insert("websocket_url".into(), json!(server.websocket_url()));
        }
        obj.insert("stanza_log".into(), json!(stanza_log));
        let config_path = scratch.join(format!("{name}.webrtc.json"));
        std::fs::write(&config_path, value.to_string())
            .map_err(|e| Error::io(format!("write {}", config_path.display()), e))?;

        let mut process = ProcessBuilder::new(format!("webrtc-{name}"), "node")
            .arg(dir.join("client.js"))
            .arg(&config_path)
            .current_dir(&dir)
            .piped_stdin()
            .stdout(Stdout::Piped)
            .time_limit(config.time_limit)
            .spawn(scratch.path())?;
        let stdin = process.take_stdin();
        let stdout = process.take_stdout().expect("stdout is piped");
        let (tx, events) = mpsc::channel();
        let events_log = scratch.join(format!("{name}.events.jsonl"));
        let reader_name = name.clone();
        std::thread::Builder::new()
            .name(format!("webrtc-{name}-events"))
            .spawn(move || {
                let mut log = std::fs::File::create(&events_log).ok();
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(f) = log.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                    match serde_json::from_str::<Value>(&line) {
                        Ok(v) => {
                            if tx.send(Event(v)).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(client = %reader_name, %e, line, "not a JSON event")
                        }
                    }
                }
            })
            .map_err(|e| Error::io("spawn event reader thread", e))?;
        let mut client = Self {
            name,
            process,
            stdin,
            events,
            backlog: VecDeque::new(),
            history: Vec::new(),
            stanza_log,
            full_jid: String::new(),
            next_req: 0,
        };
        // Chromium's start adds a few seconds on a loaded 2-core machine.
        let ready_wait = match config.engine {
            Engine::Wrtc => EVENT_TIMEOUT,
            Engine::Chromium => EVENT_TIMEOUT * 2,
        };
        let ready = client.wait_for("ready", ready_wait)?;
        client.full_jid = ready.str("jid").unwrap_or_default().to_owned();
        Ok(client)
    }

    /// The client's name (the JID's local part).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The full JID the client is bound to.
    #[must_use]
    pub fn jid(&self) -> &str {
        &self.full_jid
    }

    /// The node process (pid, log).
    #[must_use]
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// Sends one command object (`{"cmd": …}`).
    ///
    /// # Errors
    /// [`Error::Io`] if the client's stdin is closed.
    pub fn send(&mut self, command: &Value) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| Error::Peer {
            peer: self.name.clone(),
            message: "stdin closed".into(),
        })?;
        let line = format!("{command}\n");
        stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| Error::io(format!("write command to {}", self.name), e))
    }

    /// Sends a command tagged with a fresh `req` and waits for the event `reply`
    /// carrying the same `req`.
    ///
    /// # Errors
    /// As [`WebrtcClient::send`] and [`WebrtcClient::wait_match`].
    pub fn request(&mut self, mut command: Value, reply: &str, timeout: Duration) -> Result<Event> {
        self.next_req += 1;
        let req = self.next_req;
        command["req"] = json!(req);
        self.send(&command)?;
        let reply_owned = reply.to_owned();
        self.wait_match(&format!("{reply} (req {req})"), timeout, |e| {
            (e.name() == reply_owned || e.name() == "error")
                && e.get("req").and_then(Value::as_u64) == Some(req)
        })
        .and_then(|e| {
            if e.name() == "error" {
                Err(Error::Peer {
                    peer: self.name.clone(),
                    message: e.str("message").unwrap_or("error").to_owned(),
                })
            } else {
                Ok(e)
            }
        })
    }

    /// Waits for the next event named `name` (earlier unclaimed events included).
    ///
    /// # Errors
    /// [`Error::TimedOut`] (with recent events and the client's log), or
    /// [`Error::Exited`] if the client died.
    pub fn wait_for(&mut self, name: &str, timeout: Duration) -> Result<Event> {
        let name_owned = name.to_owned();
        self.wait_match(name, timeout, |e| e.name() == name_owned)
    }

    /// Waits for the first event (earlier unclaimed ones included) that `matches`,
    /// and removes it from the backlog. Other events stay for later waits.
    ///
    /// # Errors
    /// As [`WebrtcClient::wait_for`].
    pub fn wait_match(
        &mut self,
        what: &str,
        timeout: Duration,
        mut matches: impl FnMut(&Event) -> bool,
    ) -> Result<Event> {
        if let Some(i) = self.backlog.iter().position(&mut matches) {
            return Ok(self.backlog.remove(i).expect("index from position"));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .events
                .recv_timeout(left.min(Duration::from_millis(250)))
            {
                Ok(e) => {
                    tracing::trace!(client = %self.name, event = %e.0, "event");
                    self.history.push(e.clone());
                    if matches(&e) {
                        return Ok(e);
                    }
                    self.backlog.push_back(e);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if Instant::now() >= deadline {
                        return Err(Error::TimedOut {
                            what: format!("{}: {what}", self.name),
                            after: timeout,
                            context: self.context(),
                        });
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.process.wait_timeout(Duration::from_secs(2));
                    return Err(match status {
                        Ok(s) => self.process.exited(s),
                        Err(_) => Error::Peer {
                            peer: self.name.clone(),
                            message: format!(
                                "closed its stdout while waiting for {what}\n{}",
                                self.context()
                            ),
                        },
                    });
                }
            }
        }
    }

    /// Recent events and the tail of the client's stderr, for error messages.
    fn context(&self) -> String {
        let recent: Vec<String> = self
            .history
            .iter()
            .rev()
            .take(15)
            .rev()
            .map(|e| e.0.to_string().chars().take(300).collect())
            .collect();
        format!(
            "recent events of {}:\n  {}\nlog {}:\n{}",
            self.name,
            recent.join("\n  "),
            self.process.log_path().display(),
            self.process.log_tail(20)
        )
    }

    /// Every event received so far (claimed or not), in order.
    #[must_use]
    pub fn history(&self) -> &[Event] {
        &self.history
    }

    /// Moves every event that has already arrived into the backlog and history.
    pub fn drain(&mut self) {
        while let Ok(e) = self.events.try_recv() {
            self.history.push(e.clone());
            self.backlog.push_back(e);
        }
    }

    /// Places a call to `to`: with `jmi`, like Conversations (disco, `<propose/>` to the
    /// bare JID, then session-initiate to the full JID that sent `<proceed/>`);
    /// without, a direct session-initiate to `to` (a full JID). Returns the session id.
    ///
    /// # Errors
    /// As [`WebrtcClient::request`].
    pub fn call(&mut self, to: &str, jmi: bool) -> Result<String> {
        let e = self.request(
            json!({"cmd": "call", "to": to, "jmi": jmi}),
            "calling",
            EVENT_TIMEOUT,
        )?;
        Ok(e.str("sid").unwrap_or_default().to_owned())
    }

    /// Ends the current session with `reason` (a Jingle reason condition such as
    /// `success`) and, after JMI, sends `<finish/>`.
    ///
    /// # Errors
    /// As [`WebrtcClient::request`].
    pub fn hangup(&mut self, reason: &str) -> Result<()> {
        self.request(
            json!({"cmd": "hangup", "reason": reason}),
            "hung_up",
            EVENT_TIMEOUT,
        )
        .map(drop)
    }

    /// Restarts ICE like Conversations, in either Jingle role: a `transport-info` with a
    /// new ufrag/pwd and no candidates, then trickled candidates (INTEROP.md E.8). As the
    /// initiator through StanzaJS; as the responder with an ICE-restart offer on the peer
    /// connection, taking the peer's `transport-info` with new credentials as the answer
    /// (then the client emits `ice_restart_answered`). Returns the new local ufrag.
    ///
    /// # Errors
    /// As [`WebrtcClient::request`] ([`Error::Peer`] if there is no session to restart).
    pub fn ice_restart(&mut self) -> Result<String> {
        let e = self.request(
            json!({"cmd": "ice_restart"}),
            "ice_restarted",
            EVENT_TIMEOUT,
        )?;
        Ok(e.str("new_ufrag").unwrap_or_default().to_owned())
    }

    /// Measures the last `window` of audio received from the far end.
    ///
    /// # Errors
    /// As [`WebrtcClient::request`]; [`Error::Peer`] if the report is malformed.
    pub fn audio(&mut self, window: Duration) -> Result<AudioReport> {
        let e = self.request(
            json!({"cmd": "audio", "window_ms": window.as_millis() as u64}),
            "audio",
            EVENT_TIMEOUT,
        )?;
        serde_json::from_value(e.0).map_err(|err| Error::Peer {
            peer: self.name.clone(),
            message: format!("bad audio report: {err}"),
        })
    }

    /// Sends `digits` with `RTCDTMFSender.insertDTMF(digits, duration, gap)` on the
    /// current session's audio sender (RFC 4733 telephone-events, W3C WebRTC §7).
    /// Returns at once; each key's start shows as a `tonechange` event (`tone`), the
    /// end of the sequence as `tonechange` with an empty `tone`.
    ///
    /// # Errors
    /// [`Error::Peer`] with the wrtc engine (it has no `RTCDTMFSender`), when no
    /// telephone-event was negotiated, or as [`WebrtcClient::request`].
    pub fn dtmf(&mut self, digits: &str, duration: Duration, gap: Duration) -> Result<()> {
        self.next_req += 1;
        let req = self.next_req;
        self.send(&json!({"cmd": "dtmf", "digits": digits, "req": req,
               "duration_ms": duration.as_millis() as u64, "gap_ms": gap.as_millis() as u64}))?;
        let e = self.wait_match("dtmf_inserted", EVENT_TIMEOUT, |e| {
            matches!(e.name(), "dtmf_inserted" | "dtmf_unsupported" | "error")
                && e.get("req").and_then(Value::as_u64) == Some(req)
        })?;
        if e.name() == "dtmf_inserted" {
            Ok(())
        } else {
            Err(Error::Peer {
                peer: self.name.clone(),
                message: e.str("message").unwrap_or("DTMF failed").to_owned(),
            })
        }
    }

    /// The DTMF keys detected so far in the audio received on the current session.
    ///
    /// # Errors
    /// As [`WebrtcClient::request`]; [`Error::Peer`] if the report is malformed.
    pub fn dtmf_heard(&mut self) -> Result<Vec<HeardDigit>> {
        let e = self.request(
            json!({"cmd": "dtmf_heard"}),
            "dtmf_heard_list",
            EVENT_TIMEOUT,
        )?;
        serde_json::from_value(e.get("heard").cloned().unwrap_or_default()).map_err(|err| {
            Error::Peer {
                peer: self.name.clone(),
                message: format!("bad dtmf_heard report: {err}"),
            }
        })
    }

    /// `getStats()` of the current session, summarized (`inbound`, `outbound`,
    /// `pair`, `local`, `remote`, `dtls_state`, `ice_state`, …).
    ///
    /// # Errors
    /// As [`WebrtcClient::request`].
    pub fn stats(&mut self) -> Result<Value> {
        self.request(json!({"cmd": "stats"}), "stats", EVENT_TIMEOUT)
            .map(|e| e.0)
    }

    /// disco#info of `to` (optionally a `node`); returns the `disco` event.
    ///
    /// # Errors
    /// As [`WebrtcClient::request`]; [`Error::Peer`] if the query returns an error.
    pub fn disco(&mut self, to: &str, node: Option<&str>) -> Result<Event> {
        self.next_req += 1;
        let req = self.next_req;
        self.send(&json!({"cmd": "disco", "to": to, "node": node, "req": req}))?;
        let e = self.wait_match("disco", EVENT_TIMEOUT, |e| {
            (e.name() == "disco" || e.name() == "disco_error") && e.str("jid") == Some(to)
        })?;
        if e.name() == "disco_error" {
            return Err(Error::Peer {
                peer: self.name.clone(),
                message: format!("disco#info {to}: {}", e.str("error").unwrap_or("?")),
            });
        }
        Ok(e)
    }

    /// Waits for a presence of `kind` (`available`, `unavailable`, `subscribe`,
    /// `subscribed`, …) from `from`: a full JID, or a bare JID matching any of its
    /// resources. Returns the event (with `caps` for available presence).
    ///
    /// # Errors
    /// As [`WebrtcClient::wait_for`].
    pub fn wait_presence(&mut self, from: &str, kind: &str, timeout: Duration) -> Result<Event> {
        let what = format!("presence {kind} from {from}");
        self.wait_match(&what, timeout, |e| {
            e.name() == "presence"
                && e.str("type") == Some(kind)
                && e.str("from").is_some_and(|f| {
                    f == from || (!from.contains('/') && f.split('/').next() == Some(from))
                })
        })
    }

    /// Waits for a received XEP-0353 message with `action` (`propose`, `ringing`,
    /// `proceed`, `reject`, `retract`, `accept`, `finish`); the event carries `from`,
    /// `id`, `media` and `reason`.
    ///
    /// # Errors
    /// As [`WebrtcClient::wait_for`].
    pub fn wait_jmi(&mut self, action: &str, timeout: Duration) -> Result<Event> {
        self.wait_match(&format!("JMI {action}"), timeout, |e| {
            e.name() == "jmi" && e.str("action") == Some(action)
        })
    }

    /// Sends a presence subscription request to `to`.
    ///
    /// # Errors
    /// As [`WebrtcClient::request`].
    pub fn subscribe(&mut self, to: &str) -> Result<()> {
        self.request(
            json!({"cmd": "subscribe", "to": to}),
            "subscribe_sent",
            EVENT_TIMEOUT,
        )
        .map(drop)
    }

    /// Writes `xml` to the client's stream as is (for malformed or unusual stanzas).
    ///
    /// # Errors
    /// As [`WebrtcClient::request`].
    pub fn send_raw(&mut self, xml: &str) -> Result<()> {
        self.request(
            json!({"cmd": "send_raw", "xml": xml}),
            "raw_sent",
            EVENT_TIMEOUT,
        )
        .map(drop)
    }

    /// The stanzas the client logged so far (sent and received).
    ///
    /// # Errors
    /// [`Error::Io`] if the log cannot be read.
    pub fn stanzas(&self) -> Result<Vec<LoggedStanza>> {
        let text = std::fs::read_to_string(&self.stanza_log)
            .map_err(|e| Error::io(format!("read {}", self.stanza_log.display()), e))?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    /// The stanza log file.
    #[must_use]
    pub fn stanza_log(&self) -> &std::path::Path {
        &self.stanza_log
    }

    /// Asks the client to end its sessions, disconnect and exit, and waits up to 5 s;
    /// then kills it by pid whatever happened.
    pub fn quit(mut self) {
        if self.send(&json!({"cmd": "quit"})).is_ok() {
            let _ = self.process.wait_timeout(Duration::from_secs(5));
        }
        self.process.kill();
    }
}
