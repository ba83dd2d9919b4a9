//! What the call layer's unit tests share (`calls/tests.rs`, `inbound/tests.rs`,
//! `outbound/tests.rs`): stanzas fed to [`Calls`] through the real [`Component`]
//! responder on the test's virtual clock, and [`Bed`], the call layer bridged to a real
//! SIP user agent whose one trunk is a UDP socket played by hand on loopback.
//!
//! The trunk's messages and the media driver's readiness arrive over real sockets and
//! tasks, each wait bounded by [`WAIT`]; every timer of [`Calls`] fires from the
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

use super::{CallInput, Calls};
use crate::config::Config;

/// Every wait for the network or a task.
pub(super) const WAIT: Duration = Duration::from_secs(10);
/// alice's DID in [`Bed`]'s configuration.
pub(super) const DID: &str = "+15551230001";

/// The component responder for `config`'s domain and resource.
pub(super) fn component(config: &Config) -> Component {
    let mut c = component::Config::new(config.xmpp.domain.clone());
    c.resource(config.xmpp.resource.clone());
    Component::new(c)
}

/// Delivers the stanza `xml` to `component` and its actions to `calls` at `now`, as the
/// driver does; returns the responder's replies and, after each action, what the call
/// layer sends ([`flush`]). With `acknowledge`, the call layer's IQ sets are answered
/// with a result as the client would.
pub(super) fn deliver(
    component: &mut Component,
    calls: &mut Calls,
    now: Instant,
    xml: &str,
    acknowledge: bool,
) -> Vec<Element> {
    let stanza: Element = xml.parse().expect(xml);
    let mut out = Vec::new();
    for action in component.handle_stanza(stanza) {
        match action {
            Action::Send(s) => out.push(s),
            Action::Jmi(i) => calls.handle_jmi(now, i),
            Action::Jingle(i) => calls.handle_jingle(now, i),
            Action::IqResponse(i) => calls.handle_iq_response(now, i),
            Action::Presence(i) => calls.handle_presence(now, i),
            other => panic!("unexpected {other:?}"),
        }
        out.extend(flush(component, calls, now, acknowledge));
    }
    out
}

/// Everything `calls` has to send; with `acknowledge`, its IQ sets are answered with a
/// result (delivered in turn).
pub(super) fn flush(
    component: &mut Component,
    calls: &mut Calls,
    now: Instant,
    acknowledge: bool,
) -> Vec<Element> {
    let out: Vec<Element> = std::iter::from_fn(|| calls.poll_transmit()).collect();
    if !acknowledge {
        return out;
    }
    for s in &out {
        if s.name() == "iq" && s.attr("type") == Some("set") {
            let (id, from, to) = (
                s.attr("id").unwrap_or_default(),
                s.attr("from").unwrap_or_default(),
                s.attr("to").unwrap_or_default(),
            );
            deliver(
                component,
                calls,
                now,
                &format!(
                    "<iq xmlns='jabber:component:accept' type='result' id='{id}' from='{to}' to='{from}'/>"
                ),
                true,
            );
        }
    }
    out
}

/// The trunk's SDP: PCMU and telephone-event, RTP to `port`.
pub(super) fn trunk_sdp(port: u16) -> String {
    format!(
        "v=0\r\no=carrier 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
    )
}

/// A `session-initiate` from `from` to `to` (session `sid`, IQ `id`) offering Opus and
/// PCMU with rtcp-mux, DTLS-SRTP (`setup='actpass'`) and one inline host candidate at
/// `127.0.0.1:port`.
pub(super) fn session_initiate(from: &str, to: &str, sid: &str, id: &str, port: u16) -> String {
    format!(
        "<iq xmlns='jabber:component:accept' type='set' id='{id}' from='{from}' to='{to}'>\
         <jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='{sid}' initiator='{from}'>\
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
    )
}

/// A SIP trunk played by hand on a UDP socket.
pub(super) struct Trunk {
    pub(super) sock: UdpSocket,
    /// Where the gateway's user agent sends from.
    pub(super) peer: Option<SocketAddr>,
}

impl Trunk {
    /// The next request whose first line starts with `method`; other datagrams
    /// (ACKs, retransmissions, responses) are skipped.
    pub(super) async fn request(&mut self, method: &str) -> String {
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
    pub(super) async fn respond(
        &self,
        request: &str,
        status: u16,
        phrase: &str,
        sdp: Option<&str>,
    ) {
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

    /// Sends an INVITE from `caller` to [`DID`] at the user agent `ua` (dialog
    /// `call_id`), offering [`trunk_sdp`] with RTP to `rtp_port`.
    pub(super) async fn invite(&self, ua: SocketAddr, caller: &str, call_id: &str, rtp_port: u16) {
        let me = self.sock.local_addr().unwrap();
        let sdp = trunk_sdp(rtp_port);
        let invite = format!(
            "INVITE sip:{DID}@{ua} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call_id};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{caller}@{me}>;tag=in1\r\nTo: <sip:{DID}@{ua}>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{me}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        self.sock.send_to(invite.as_bytes(), ua).await.unwrap();
    }

    /// The next final response (a status line, not 1xx) the trunk receives.
    pub(super) async fn final_response(&self) -> String {
        let mut buf = vec![0u8; 65535];
        loop {
            let (n, _) = tokio::time::timeout(WAIT, self.sock.recv_from(&mut buf))
                .await
                .expect("a final response")
                .unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with("SIP/2.0 ") && !text.starts_with("SIP/2.0 1") {
                return text;
            }
        }
    }
}

/// Log lines written while a test runs (a thread-local subscriber: the call layer runs
/// on the test's thread).
#[derive(Clone, Default)]
pub(super) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub(super) fn text(&self) -> String {
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

/// The call layer bridged to a real user agent whose one trunk (`t`, routes `+1`,
/// alice's [`DID`]) is [`Trunk`], with its log lines captured in [`Logs`].
pub(super) struct Bed {
    pub(super) component: Component,
    pub(super) calls: Calls,
    pub(super) inputs: mpsc::UnboundedReceiver<CallInput>,
    pub(super) sip: mpsc::UnboundedReceiver<sip::Event>,
    pub(super) ua: sip::UserAgent,
    pub(super) trunk: Trunk,
    /// Where the trunk's RTP and the client's candidate point (nothing reads them).
    pub(super) rtp: UdpSocket,
    pub(super) client: UdpSocket,
    pub(super) now: Instant,
    /// `calls.ring_timeout` as configured.
    pub(super) ring_timeout: Duration,
    pub(super) logs: Logs,
    _log_guard: tracing::subscriber::DefaultGuard,
}

impl Bed {
    /// `calls`: keys of `[calls]`; `log`: of `[log]`.
    pub(super) async fn start(calls: &str, log: &str) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let trunk_port = sock.local_addr().unwrap().port();
        let config = Config::parse(
            &format!(
                r#"
                [xmpp]
                domain = "gw.example.com"
                secret = "s"
                [log]
                {log}
                [calls]
                {calls}
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
            Path::new("calls-test.toml"),
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
        Self {
            component: component(&config),
            calls: Calls::bridged(&config, ua.clone(), tx),
            inputs,
            sip,
            ua,
            trunk: Trunk { sock, peer: None },
            rtp: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            client: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            now: Instant::now(),
            ring_timeout: config.calls.ring_timeout,
            logs,
            _log_guard: log_guard,
        }
    }

    /// Everything the call layer has to send; its IQ sets are acknowledged as the
    /// client would.
    pub(super) fn flush(&mut self) -> Vec<Element> {
        flush(&mut self.component, &mut self.calls, self.now, true)
    }

    /// Delivers a stanza as the driver would; returns what is sent in reply.
    pub(super) fn deliver(&mut self, xml: &str) -> Vec<Element> {
        deliver(&mut self.component, &mut self.calls, self.now, xml, true)
    }

    /// The media driver's next input, handed to the call layer; returns what the call
    /// layer sent and whether it was `MediaReady`.
    pub(super) async fn next_input(&mut self, what: &str) -> (Vec<Element>, bool) {
        let input = tokio::time::timeout(WAIT, self.inputs.recv())
            .await
            .unwrap_or_else(|_| panic!("{what} within {WAIT:?}"))
            .expect("channel open");
        let ready = matches!(input, CallInput::MediaReady { .. });
        self.calls.handle_input(self.now, input);
        (self.flush(), ready)
    }

    /// Hands the media driver's inputs to the call layer until it is ready; returns
    /// what the call layer sent meanwhile.
    pub(super) async fn media_ready(&mut self) -> Vec<Element> {
        let mut out = Vec::new();
        loop {
            let (sent, ready) = self.next_input("the media driver starts").await;
            out.extend(sent);
            if ready {
                return out;
            }
        }
    }

    /// The user agent's next event.
    pub(super) async fn next_sip(&mut self, what: &str) -> sip::Event {
        tokio::time::timeout(WAIT, self.sip.recv())
            .await
            .unwrap_or_else(|_| panic!("no SIP {what} within {WAIT:?}"))
            .expect("user agent running")
    }

    /// Hands the user agent's events to the call layer until one matches `until`;
    /// returns what the call layer sent meanwhile.
    pub(super) async fn sip_until(
        &mut self,
        what: &str,
        until: impl Fn(&sip::Event) -> bool,
    ) -> Vec<Element> {
        let mut out = Vec::new();
        loop {
            let event = self.next_sip(what).await;
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
