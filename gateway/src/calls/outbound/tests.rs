//! The bridged call layer's policies against a real SIP user agent and a raw UDP
//! trunk on loopback, with the call layer's clock virtual: the outbound ring timeout
//! (`calls.outbound_ring_timeout`), the early-media policy (`calls.early_media`),
//! `Retry-After` on a 503 for the call limit, and phone numbers redacted in log lines
//! (`log.redact_numbers`).
//!
//! The trunk's answers and the media driver's readiness arrive over real sockets and
//! tasks (each wait bounded by [`WAIT`]); every timer of [`Calls`] fires from the
//! test's `now`, never from the wall clock.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minidom::Element;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use xmpp::component::{self, Action, Component};
use xmpp::jingle::{ns, Action as JingleAction, Jingle, ReasonCondition};

use super::super::Calls;
use super::{CallInput, Redactor};
use crate::config::Config;

const U: &str = "alice@example.org/Conversations.x1";
const NUMBER: &str = "+15551234567";
const N: &str = "+15551234567@gw.example.com";
const NR: &str = "+15551234567@gw.example.com/gw";
const DID: &str = "+15551230001";
/// Every wait for the network or a task.
const WAIT: Duration = Duration::from_secs(10);

/// A SIP trunk played by hand on a UDP socket.
struct Trunk {
    sock: UdpSocket,
    /// Where the gateway's user agent sends from.
    peer: Option<SocketAddr>,
}

impl Trunk {
    /// The next request whose first line starts with `method`; other datagrams
    /// (ACKs, retransmissions, responses) are skipped.
    async fn request(&mut self, method: &str) -> String {
        let mut buf = vec![0u8; 65535];
        loop {
            let (n, from) = tokio::time::timeout(WAIT, self.sock.recv_from(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no {method} at the trunk within {WAIT:?}"))
                .unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with(&format!("{method} ")) {
                self.peer = Some(from);
                return text;
            }
        }
    }

    /// Answers `request` with `status`, the dialog headers copied (a To tag added) and
    /// `sdp` as the body.
    async fn respond(&self, request: &str, status: u16, phrase: &str, sdp: Option<&str>) {
        let mut out = format!("SIP/2.0 {status} {phrase}\r\n");
        for line in request.lines() {
            let lower = line.to_ascii_lowercase();
            if ["via:", "from:", "call-id:", "cseq:"]
                .iter()
                .any(|h| lower.starts_with(h))
            {
                out += line;
                out += "\r\n";
            } else if lower.starts_with("to:") {
                out += line;
                if !lower.contains(";tag=") {
                    out += ";tag=trunk1";
                }
                out += "\r\n";
            }
        }
        let me = self.sock.local_addr().unwrap();
        out += &format!("Contact: <sip:trunk@{me}>\r\n");
        match sdp {
            Some(body) => {
                out += &format!(
                    "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
            None => out += "Content-Length: 0\r\n\r\n",
        }
        let to = self.peer.expect("a request came");
        self.sock.send_to(out.as_bytes(), to).await.unwrap();
    }
}

/// The trunk's SDP: PCMU and telephone-event, RTP to `port`.
fn trunk_sdp(port: u16) -> String {
    format!(
        "v=0\r\no=carrier 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
    )
}

/// Log lines written while a test runs (a thread-local subscriber: the call layer runs
/// on the test's thread).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The call layer bridged to a real user agent whose one trunk is [`Trunk`].
struct Bed {
    component: Component,
    calls: Calls,
    inputs: mpsc::UnboundedReceiver<CallInput>,
    sip: mpsc::UnboundedReceiver<sip::Event>,
    ua: sip::UserAgent,
    trunk: Trunk,
    /// Where the trunk's RTP and the client's candidate point (nothing reads them).
    rtp: UdpSocket,
    client: UdpSocket,
    now: Instant,
    logs: Logs,
    _log_guard: tracing::subscriber::DefaultGuard,
}

impl Bed {
    /// `calls_extra`: more keys of `[calls]`; `log_extra`: of `[log]`.
    async fn start(calls_extra: &str, log_extra: &str) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let trunk_port = sock.local_addr().unwrap().port();
        let config = Config::parse(
            &format!(
                r#"
                [xmpp]
                domain = "gw.example.com"
                secret = "s"
                [log]
                {log_extra}
                [calls]
                max_calls_per_user = 1
                {calls_extra}
                [[sip.trunks]]
                name = "t"
                host = "127.0.0.1"
                port = {trunk_port}
                allowed_sources = ["127.0.0.1"]
                [routing]
                allowed_callers = ["alice@example.org"]
                [[routing.routes]]
                prefix = "+1"
                trunks = ["t"]
                [[routing.users]]
                jid = "alice@example.org"
                dids = ["{DID}"]
                [media]
                bind_addresses = ["127.0.0.1"]
                port_min = 20000
                port_max = 29999
                "#
            ),
            Path::new("policy-test.toml"),
            Vec::new(),
        )
        .unwrap();
        // Logged as the binary does: `log.level` through `Log::directives`.
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                config.log.directives(&config.log.level),
            ))
            .finish();
        let log_guard = tracing::subscriber::set_default(subscriber);
        let mut sip_config = sip::Config::default();
        sip_config.bind("127.0.0.1:0".parse().unwrap()).trunk(
            sip::TrunkConfig::new("t", "127.0.0.1")
                .port(Some(trunk_port))
                .allowed_sources(vec![sip::IpNet::parse("127.0.0.1").unwrap()])
                .clone(),
        );
        let (ua, sip) = sip::UserAgent::start(sip_config).await.unwrap();
        let (tx, inputs) = mpsc::unbounded_channel();
        let mut c = component::Config::new(config.xmpp.domain.clone());
        c.resource(config.xmpp.resource.clone());
        Self {
            component: Component::new(c),
            calls: Calls::bridged(&config, ua.clone(), tx),
            inputs,
            sip,
            ua,
            trunk: Trunk { sock, peer: None },
            rtp: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            client: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            now: Instant::now(),
            logs,
            _log_guard: log_guard,
        }
    }

    /// Everything the call layer has to send; the gateway's IQ sets are answered with
    /// a result, as the client would.
    fn flush(&mut self) -> Vec<Element> {
        let out: Vec<Element> = std::iter::from_fn(|| self.calls.poll_transmit()).collect();
        for s in &out {
            if s.name() == "iq" && s.attr("type") == Some("set") {
                let id = s.attr("id").unwrap_or_default();
                self.deliver(&format!(
                    "<iq xmlns='jabber:component:accept' type='result' id='{id}' from='{U}' to='{NR}'/>"
                ));
            }
        }
        out
    }

    /// Delivers a stanza as the driver would; returns what the call layer sends.
    fn deliver(&mut self, xml: &str) -> Vec<Element> {
        let stanza: Element = xml.parse().expect(xml);
        let mut out = Vec::new();
        for action in self.component.handle_stanza(stanza) {
            match action {
                Action::Send(s) => out.push(s),
                Action::Jmi(i) => self.calls.handle_jmi(self.now, i),
                Action::Jingle(i) => self.calls.handle_jingle(self.now, i),
                Action::IqResponse(i) => self.calls.handle_iq_response(self.now, i),
                other => panic!("unexpected {other:?}"),
            }
            out.extend(self.flush());
        }
        out
    }

    /// alice proposes a call to [`NUMBER`]; once the media driver is ready the INVITE
    /// leaves. Returns the INVITE as the trunk got it.
    async fn call(&mut self) -> String {
        let out = self.deliver(&format!(
            "<message xmlns='jabber:component:accept' type='chat' id='p1' from='{U}' to='{N}'>\
             <propose xmlns='urn:xmpp:jingle-message:0' id='S'>\
             <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose></message>"
        ));
        assert!(
            out.iter()
                .any(|m| m.children().any(|c| c.name() == "proceed")),
            "proceed: {out:?}"
        );
        loop {
            let input = tokio::time::timeout(WAIT, self.inputs.recv())
                .await
                .expect("the media driver starts")
                .expect("channel open");
            let ready = matches!(input, CallInput::MediaReady { .. });
            self.calls.handle_input(self.now, input);
            if ready {
                break;
            }
        }
        self.flush();
        self.trunk.request("INVITE").await
    }

    /// alice's `session-initiate` (one inline host candidate).
    fn session_initiate(&mut self) -> Vec<Element> {
        let port = self.client.local_addr().unwrap().port();
        self.deliver(&format!(
            "<iq xmlns='jabber:component:accept' type='set' id='si1' from='{U}' to='{NR}'>\
             <jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='S' initiator='{U}'>\
             <content creator='initiator' name='0'>\
             <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>\
             <payload-type id='111' name='opus' clockrate='48000' channels='2'/>\
             <payload-type id='0' name='PCMU' clockrate='8000'/>\
             <rtcp-mux/></description>\
             <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='uf' pwd='passwordpasswordpassword'>\
             <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>\
             AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89\
             </fingerprint>\
             <candidate component='1' foundation='1' generation='0' id='c1' ip='127.0.0.1' port='{port}' \
             priority='2130706431' protocol='udp' type='host'/>\
             </transport></content></jingle></iq>"
        ))
    }

    /// Hands the user agent's events to the call layer until one matches `until`;
    /// returns what the call layer sent meanwhile.
    async fn sip_until(&mut self, what: &str, until: impl Fn(&sip::Event) -> bool) -> Vec<Element> {
        let mut out = Vec::new();
        loop {
            let event = tokio::time::timeout(WAIT, self.sip.recv())
                .await
                .unwrap_or_else(|_| panic!("no SIP {what} within {WAIT:?}"))
                .expect("user agent running");
            let done = until(&event);
            self.calls.handle_sip(self.now, event);
            out.extend(self.flush());
            if done {
                return out;
            }
        }
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        self.ua.shutdown();
    }
}

/// The Jingle payloads among `out` with `action`.
fn jingles(out: &[Element], action: JingleAction) -> Vec<Jingle> {
    out.iter()
        .filter_map(|s| s.get_child("jingle", ns::JINGLE))
        .filter_map(|j| Jingle::from_element(j).ok())
        .filter(|j| j.action == action)
        .collect()
}

fn rings(out: &[Element]) -> bool {
    out.iter()
        .filter_map(|s| s.get_child("jingle", ns::JINGLE))
        .any(|j| j.children().any(|c| c.name() == "ringing"))
}

#[tokio::test]
async fn unanswered_call_is_cancelled_at_the_outbound_ring_timeout() {
    let mut bed = Bed::start("outbound_ring_timeout = \"60s\"", "").await;
    let invited = bed.now;
    let invite = bed.call().await;
    bed.trunk.respond(&invite, 180, "Ringing", None).await;
    bed.sip_until("180", |e| matches!(e, sip::Event::Ringing { .. }))
        .await;
    let out = bed.session_initiate();
    assert!(
        rings(&out),
        "180 before the session-initiate rings it: {out:?}"
    );
    // The timer runs from the INVITE, on the call layer's clock only.
    assert_eq!(
        bed.calls.poll_timeout(),
        Some(invited + Duration::from_secs(60))
    );
    bed.now = invited + Duration::from_millis(59_999);
    bed.calls.handle_timeout(bed.now);
    let out = bed.flush();
    assert!(
        jingles(&out, JingleAction::SessionTerminate).is_empty(),
        "not yet: {out:?}"
    );
    bed.now = invited + Duration::from_secs(60);
    bed.calls.handle_timeout(bed.now);
    let out = bed.flush();
    let terminate = jingles(&out, JingleAction::SessionTerminate);
    let reason = terminate
        .first()
        .and_then(|j| j.reason.clone())
        .unwrap_or_else(|| panic!("session-terminate with a reason: {out:?}"));
    assert_eq!(reason.condition, ReasonCondition::Timeout);
    assert_eq!(reason.text.as_deref(), Some("no answer within 1m"));
    // CANCEL of the INVITE on the wire.
    let cancel = bed.trunk.request("CANCEL").await;
    let call_id = |m: &str| {
        m.lines()
            .find(|l| l.to_ascii_lowercase().starts_with("call-id:"))
            .map(str::to_owned)
    };
    assert_eq!(call_id(&cancel), call_id(&invite));
    // Nothing more to wait for on the outbound call.
    assert!(bed.calls.outbound_deadline().is_none());
}

#[tokio::test]
async fn early_media_accept_accepts_at_183_then_486_ends_with_busy() {
    let mut bed = Bed::start("early_media = \"accept\"", "").await;
    let invite = bed.call().await;
    let out = bed.session_initiate();
    assert!(jingles(&out, JingleAction::SessionAccept).is_empty());
    let sdp = trunk_sdp(bed.rtp.local_addr().unwrap().port());
    bed.trunk
        .respond(&invite, 183, "Session Progress", Some(&sdp))
        .await;
    let out = bed
        .sip_until("183", |e| matches!(e, sip::Event::EarlyMedia { .. }))
        .await;
    let accept = jingles(&out, JingleAction::SessionAccept);
    assert_eq!(accept.len(), 1, "session-accept at the 183: {out:?}");
    assert!(!rings(&out), "accepted, not ringing");
    // Still unanswered: the ring timer keeps running.
    assert!(bed.calls.outbound_deadline().is_some());
    bed.trunk.respond(&invite, 486, "Busy Here", None).await;
    let out = bed
        .sip_until("486", |e| matches!(e, sip::Event::Ended { .. }))
        .await;
    let reason = jingles(&out, JingleAction::SessionTerminate)
        .first()
        .and_then(|j| j.reason.clone())
        .unwrap_or_else(|| panic!("session-terminate: {out:?}"));
    assert_eq!(reason.condition, ReasonCondition::Busy);
    assert_eq!(reason.text.as_deref(), Some("486 Busy Here"));
    assert!(bed.logs.text().contains("early media: session-accept"));
}

#[tokio::test]
async fn early_media_accept_then_200_continues_without_a_second_accept() {
    let mut bed = Bed::start("early_media = \"accept\"", "").await;
    let invite = bed.call().await;
    bed.session_initiate();
    let sdp = trunk_sdp(bed.rtp.local_addr().unwrap().port());
    bed.trunk
        .respond(&invite, 183, "Session Progress", Some(&sdp))
        .await;
    let out = bed
        .sip_until("183", |e| matches!(e, sip::Event::EarlyMedia { .. }))
        .await;
    assert_eq!(jingles(&out, JingleAction::SessionAccept).len(), 1);
    bed.now += Duration::from_secs(5);
    bed.trunk.respond(&invite, 200, "OK", Some(&sdp)).await;
    let out = bed
        .sip_until("200", |e| matches!(e, sip::Event::Answered { .. }))
        .await;
    assert!(
        jingles(&out, JingleAction::SessionAccept).is_empty(),
        "one session-accept only: {out:?}"
    );
    assert!(
        jingles(&out, JingleAction::SessionTerminate).is_empty(),
        "{out:?}"
    );
    assert!(
        bed.calls.outbound_deadline().is_none(),
        "answered: no ring timer"
    );
    let text = bed.logs.text();
    assert!(text.contains("early_media=true"), "{text}");
    assert!(!text.contains("answered: session-accept"), "{text}");
}

#[tokio::test]
async fn early_media_ringback_only_rings_at_183() {
    let mut bed = Bed::start("", "").await;
    let invite = bed.call().await;
    bed.session_initiate();
    let sdp = trunk_sdp(bed.rtp.local_addr().unwrap().port());
    bed.trunk
        .respond(&invite, 183, "Session Progress", Some(&sdp))
        .await;
    let out = bed
        .sip_until("183", |e| matches!(e, sip::Event::EarlyMedia { .. }))
        .await;
    assert!(rings(&out), "a 183 rings: {out:?}");
    assert!(jingles(&out, JingleAction::SessionAccept).is_empty());
    bed.trunk.respond(&invite, 486, "Busy Here", None).await;
    let out = bed
        .sip_until("486", |e| matches!(e, sip::Event::Ended { .. }))
        .await;
    let reason = jingles(&out, JingleAction::SessionTerminate)
        .first()
        .and_then(|j| j.reason.clone())
        .unwrap_or_else(|| panic!("session-terminate: {out:?}"));
    assert_eq!(reason.condition, ReasonCondition::Busy);
    assert_eq!(reason.text.as_deref(), Some("486 Busy Here"));
}

/// An inbound call beyond `calls.max_calls_per_user` gets 503 with `Retry-After: 30`.
#[tokio::test]
async fn call_over_the_limit_gets_503_with_retry_after() {
    let mut bed = Bed::start("", "").await;
    let alice: jid::BareJid = "alice@example.org".parse().unwrap();
    let _held = bed
        .calls
        .slots
        .try_acquire(&alice)
        .expect("alice's one slot");
    let ua = bed.ua.local_addr();
    let me = bed.trunk.sock.local_addr().unwrap();
    let sdp = trunk_sdp(bed.rtp.local_addr().unwrap().port());
    let invite = format!(
        "INVITE sip:{DID}@{ua} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKlimit1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:+15550009999@{me}>;tag=in1\r\nTo: <sip:{DID}@{ua}>\r\n\
         Call-ID: limit1\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{me}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    bed.trunk.sock.send_to(invite.as_bytes(), ua).await.unwrap();
    bed.sip_until("INVITE", |e| matches!(e, sip::Event::Incoming { .. }))
        .await;
    let mut buf = vec![0u8; 65535];
    let response = loop {
        let (n, _) = tokio::time::timeout(WAIT, bed.trunk.sock.recv_from(&mut buf))
            .await
            .expect("a final response")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !text.starts_with("SIP/2.0 1") {
            break text;
        }
    };
    assert!(response.starts_with("SIP/2.0 503"), "{response}");
    assert!(
        response.lines().any(|l| l.trim_end() == "Retry-After: 30"),
        "{response}"
    );
    assert!(bed.calls.in_calls.is_empty(), "no call rings");
}

#[test]
fn redactor_hides_numbers_and_keeps_them_correlated() {
    let on = Redactor::new(true);
    let shown = on.show(NUMBER);
    assert!(shown.starts_with("pii:") && shown.len() == 12, "{shown}");
    assert!(!shown.contains("5551234567"));
    assert_eq!(on.show(NUMBER), shown, "one number, one hash in a run");
    assert_ne!(on.show("+15551234568"), shown);
    assert_eq!(Redactor::new(false).show(NUMBER), NUMBER);
}

/// With the default `log.redact_numbers = true` the call's log lines and summary name
/// no number; the span keeps the ids; `false` shows the number.
#[tokio::test]
async fn call_logs_redact_the_number_by_default() {
    for (log, redacted) in [("", true), ("redact_numbers = false", false)] {
        let mut bed = Bed::start("", log).await;
        let invite = bed.call().await;
        bed.trunk.respond(&invite, 486, "Busy Here", None).await;
        bed.sip_until("486", |e| matches!(e, sip::Event::Ended { .. }))
            .await;
        // The media driver stops and reports: the summary line.
        let deadline = tokio::time::Instant::now() + WAIT;
        while !bed.logs.text().contains("call summary") {
            let input = tokio::time::timeout_at(deadline, bed.inputs.recv())
                .await
                .expect("the call summary")
                .expect("channel open");
            bed.calls.handle_input(bed.now, input);
            bed.flush();
        }
        let text = bed.logs.text();
        assert!(text.contains("outbound call"), "{text}");
        assert!(text.contains("sid=S"), "the span names the sid: {text}");
        assert_eq!(text.contains("5551234567"), !redacted, "{text}");
        assert_eq!(text.contains("number=pii:"), redacted, "{text}");
    }
}
