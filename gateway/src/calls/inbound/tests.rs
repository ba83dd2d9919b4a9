//! How an inbound call rings, against a real SIP user agent and a raw UDP trunk on
//! loopback, with the call layer's clock virtual: a user whose only online resource
//! lacks JMI gets `session-initiate` directly (INTEROP.md E.3), its `session-terminate`
//! maps to the SIP status (E.6), it rings out with 480; a user without known presence
//! gets the JMI propose to the bare JID.

use std::path::Path;
use std::time::{Duration, Instant};

use minidom::Element;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use xmpp::caps::{DiscoInfo, Identity};
use xmpp::component::{self, Action, Component};
use xmpp::jingle::{ns, Action as JingleAction, Jingle, ReasonCondition};

use super::super::presence::{NS_JMI, RTP_AUDIO_FEATURES};
use super::super::Calls;
use super::CallInput;
use crate::config::Config;

const DID: &str = "+15551230001";
const CALLER: &str = "+15550001111";
const DEVICE: &str = "alice@example.org/gajim";
/// Every wait for the network or a task.
const WAIT: Duration = Duration::from_secs(10);

struct Bed {
    component: Component,
    calls: Calls,
    inputs: mpsc::UnboundedReceiver<CallInput>,
    sip: mpsc::UnboundedReceiver<sip::Event>,
    ua: sip::UserAgent,
    trunk: UdpSocket,
    rtp: UdpSocket,
    now: Instant,
    ring_timeout: Duration,
}

impl Bed {
    /// `calls`: keys of `[calls]`.
    async fn start(calls: &str) -> Self {
        let trunk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let trunk_port = trunk.local_addr().unwrap().port();
        let config = Config::parse(
            &format!(
                r#"
                [xmpp]
                domain = "gw.example.com"
                secret = "s"
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
            Path::new("inbound-test.toml"),
            Vec::new(),
        )
        .unwrap();
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
            trunk,
            rtp: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            now: Instant::now(),
            ring_timeout: config.calls.ring_timeout,
        }
    }

    /// Everything the call layer has to send; its IQ sets are acknowledged as the
    /// device would.
    fn flush(&mut self) -> Vec<Element> {
        let out: Vec<Element> = std::iter::from_fn(|| self.calls.poll_transmit()).collect();
        for s in &out {
            if s.name() == "iq" && s.attr("type") == Some("set") {
                let (id, from, to) = (
                    s.attr("id").unwrap_or_default(),
                    s.attr("from").unwrap_or_default(),
                    s.attr("to").unwrap_or_default(),
                );
                self.deliver(&format!(
                    "<iq xmlns='jabber:component:accept' type='result' id='{id}' from='{to}' to='{from}'/>"
                ));
            }
        }
        out
    }

    fn deliver(&mut self, xml: &str) -> Vec<Element> {
        let stanza: Element = xml.parse().expect(xml);
        let mut out = Vec::new();
        for action in self.component.handle_stanza(stanza) {
            match action {
                Action::Send(s) => out.push(s),
                Action::Jmi(i) => self.calls.handle_jmi(self.now, i),
                Action::Jingle(i) => self.calls.handle_jingle(self.now, i),
                Action::IqResponse(i) => self.calls.handle_iq_response(self.now, i),
                Action::Presence(i) => self.calls.handle_presence(self.now, i),
                other => panic!("unexpected {other:?}"),
            }
            out.extend(self.flush());
        }
        out
    }

    /// `DEVICE` comes online (presence to the gateway's domain, with caps) and answers
    /// the gateway's disco#info query with `features`.
    fn device_online(&mut self, features: &[&str]) {
        let info = DiscoInfo {
            identities: vec![Identity::new("client", "pc", None)],
            features: features.iter().map(|f| (*f).to_owned()).collect(),
            forms: Vec::new(),
        };
        let ver = info.ver();
        let out = self.deliver(&format!(
            "<presence xmlns='jabber:component:accept' from='{DEVICE}' to='gw.example.com'>\
             <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://gajim.org' ver='{ver}'/>\
             </presence>"
        ));
        let query = out
            .iter()
            .find(|s| s.name() == "iq" && s.attr("type") == Some("get"))
            .unwrap_or_else(|| panic!("a caps query: {out:?}"))
            .clone();
        assert_eq!(query.attr("to"), Some(DEVICE));
        let mut result: Element = format!(
            "<iq xmlns='jabber:component:accept' type='result' id='{}' from='{DEVICE}' to='{}'/>",
            query.attr("id").unwrap(),
            query.attr("from").unwrap()
        )
        .parse()
        .unwrap();
        result.append_child(info.to_query(Some(&format!("https://gajim.org#{ver}"))));
        let out = self.deliver(&String::from(&result));
        assert!(out.is_empty(), "the result is consumed: {out:?}");
    }

    /// The trunk calls [`DID`]; returns what the call layer sent once the media driver
    /// is ready (the propose or the session-initiate).
    async fn incoming(&mut self) -> Vec<Element> {
        let ua = self.ua.local_addr();
        let me = self.trunk.local_addr().unwrap();
        let port = self.rtp.local_addr().unwrap().port();
        let sdp = format!(
            "v=0\r\no=carrier 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
        );
        let invite = format!(
            "INVITE sip:{DID}@{ua} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKdirect1;rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{CALLER}@{me}>;tag=in1\r\nTo: <sip:{DID}@{ua}>\r\n\
             Call-ID: direct1\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{me}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        self.trunk.send_to(invite.as_bytes(), ua).await.unwrap();
        let event = tokio::time::timeout(WAIT, self.sip.recv())
            .await
            .expect("the INVITE reaches the user agent")
            .unwrap();
        assert!(matches!(event, sip::Event::Incoming { .. }), "{event:?}");
        self.calls.handle_sip(self.now, event);
        let mut out = self.flush();
        loop {
            let input = tokio::time::timeout(WAIT, self.inputs.recv())
                .await
                .expect("the media driver starts")
                .expect("channel open");
            let ready = matches!(input, CallInput::MediaReady { .. });
            self.calls.handle_input(self.now, input);
            out.extend(self.flush());
            if ready {
                return out;
            }
        }
    }

    /// The trunk's next final response to the INVITE.
    async fn final_response(&mut self) -> String {
        let mut buf = vec![0u8; 65535];
        loop {
            let (n, _) = tokio::time::timeout(WAIT, self.trunk.recv_from(&mut buf))
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

impl Drop for Bed {
    fn drop(&mut self) {
        self.ua.shutdown();
    }
}

fn jingles(out: &[Element], action: JingleAction) -> Vec<(String, Jingle)> {
    out.iter()
        .filter_map(|s| {
            let j = Jingle::from_element(s.get_child("jingle", ns::JINGLE)?).ok()?;
            Some((s.attr("to").unwrap_or_default().to_owned(), j))
        })
        .filter(|(_, j)| j.action == action)
        .collect()
}

fn has_propose(out: &[Element]) -> bool {
    out.iter()
        .any(|m| m.name() == "message" && m.children().any(|c| c.name() == "propose"))
}

fn rtp_features(jmi: bool) -> Vec<&'static str> {
    let mut f = RTP_AUDIO_FEATURES.to_vec();
    if jmi {
        f.push(NS_JMI);
    }
    f
}

/// The device ends the direct session before answering with `condition`: the trunk
/// gets `status`.
async fn direct_then_terminate(condition: &str, status: &str) {
    let mut bed = Bed::start("").await;
    bed.device_online(&rtp_features(false));
    let out = bed.incoming().await;
    assert!(!has_propose(&out), "no JMI propose: {out:?}");
    let initiates = jingles(&out, JingleAction::SessionInitiate);
    assert_eq!(initiates.len(), 1, "{out:?}");
    let (to, j) = &initiates[0];
    assert_eq!(to, DEVICE);
    let sid = j.sid.clone();
    let out = bed.deliver(&format!(
        "<iq xmlns='jabber:component:accept' type='set' id='t1' from='{DEVICE}' to='{CALLER}@gw.example.com/gw'>\
         <jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='{sid}'>\
         <reason><{condition}/></reason></jingle></iq>"
    ));
    assert!(
        out.iter().any(|s| s.attr("type") == Some("result")),
        "acknowledged: {out:?}"
    );
    let response = bed.final_response().await;
    assert!(response.starts_with(status), "{condition}: {response}");
}

#[tokio::test]
async fn direct_initiate_declined_gives_603() {
    direct_then_terminate("decline", "SIP/2.0 603").await;
}

#[tokio::test]
async fn direct_initiate_busy_gives_486() {
    direct_then_terminate("busy", "SIP/2.0 486").await;
}

#[tokio::test]
async fn direct_initiate_rings_out_with_480_and_a_timeout_terminate() {
    let mut bed = Bed::start("").await;
    bed.device_online(&rtp_features(false));
    let out = bed.incoming().await;
    assert_eq!(jingles(&out, JingleAction::SessionInitiate).len(), 1);
    // The ring timeout still runs after the session-initiate.
    let deadline = bed.calls.poll_timeout().expect("a ring deadline");
    assert!(deadline <= bed.now + bed.ring_timeout);
    bed.now += bed.ring_timeout;
    bed.calls.handle_timeout(bed.now);
    let out = bed.flush();
    let terminates = jingles(&out, JingleAction::SessionTerminate);
    assert_eq!(terminates.len(), 1, "{out:?}");
    assert_eq!(terminates[0].0, DEVICE);
    assert_eq!(
        terminates[0].1.reason.as_ref().map(|r| r.condition.clone()),
        Some(ReasonCondition::Timeout)
    );
    let response = bed.final_response().await;
    assert!(response.starts_with("SIP/2.0 480"), "{response}");
}

#[tokio::test]
async fn jmi_capable_or_unknown_users_get_the_propose() {
    // Nothing known: the propose to the bare JID (offline push still rings).
    let mut bed = Bed::start("").await;
    let out = bed.incoming().await;
    assert!(has_propose(&out), "{out:?}");
    assert!(jingles(&out, JingleAction::SessionInitiate).is_empty());
    drop(bed);
    // A JMI-capable resource: the propose too.
    let mut bed = Bed::start("").await;
    bed.device_online(&rtp_features(true));
    let out = bed.incoming().await;
    let propose = out
        .iter()
        .find(|m| m.name() == "message" && m.children().any(|c| c.name() == "propose"))
        .unwrap_or_else(|| panic!("{out:?}"));
    assert_eq!(propose.attr("to"), Some("alice@example.org"));
    assert!(jingles(&out, JingleAction::SessionInitiate).is_empty());
}

#[tokio::test]
async fn direct_initiate_off_keeps_jmi() {
    let mut bed = Bed::start("direct_initiate = false").await;
    bed.device_online(&rtp_features(false));
    let out = bed.incoming().await;
    assert!(has_propose(&out), "{out:?}");
    assert!(jingles(&out, JingleAction::SessionInitiate).is_empty());
}

/// The device restarts ICE during the call (INTEROP.md E.8): the `transport-info` with
/// new credentials is acknowledged, our agent restarts, and our own `transport-info`
/// goes to the device with new credentials, the same fingerprint with our established
/// `setup` (passive: the device answered active) and our candidates.
#[tokio::test]
async fn device_ice_restart_is_answered_with_new_credentials_and_the_same_fingerprint() {
    let mut bed = Bed::start("").await;
    bed.device_online(&rtp_features(false));
    let out = bed.incoming().await;
    let (_, initiate) = jingles(&out, JingleAction::SessionInitiate)
        .pop()
        .expect("a session-initiate");
    let sid = initiate.sid.clone();
    let ours = initiate.contents[0]
        .ice_udp()
        .expect("our transport")
        .clone();
    let content = initiate.contents[0].name.clone();
    let local = format!("{CALLER}@gw.example.com/gw");
    let port = bed.rtp.local_addr().unwrap().port();
    let accept = |ufrag: &str| {
        format!(
            "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='{ufrag}' pwd='{ufrag}passwordpasswordpw'>\
             <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='active'>\
             AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89\
             </fingerprint>\
             <candidate component='1' foundation='1' generation='0' id='c1' ip='127.0.0.1' port='{port}' \
             priority='2130706431' protocol='udp' type='host'/></transport>"
        )
    };
    let out = bed.deliver(&format!(
        "<iq xmlns='jabber:component:accept' type='set' id='a1' from='{DEVICE}' to='{local}'>\
         <jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='{sid}' responder='{DEVICE}'>\
         <content creator='initiator' name='{content}'>\
         <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>\
         <payload-type id='0' name='PCMU' clockrate='8000'/><rtcp-mux/></description>{}\
         </content></jingle></iq>",
        accept("first")
    ));
    assert!(out
        .iter()
        .any(|s| s.attr("id") == Some("a1") && s.attr("type") == Some("result")));
    // The restart: new credentials, no candidates (Conversations).
    let out = bed.deliver(&format!(
        "<iq xmlns='jabber:component:accept' type='set' id='r1' from='{DEVICE}' to='{local}'>\
         <jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='{sid}'>\
         <content creator='initiator' name='{content}'>\
         <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='again' pwd='againpasswordpasswordpw'/>\
         </content></jingle></iq>"
    ));
    assert!(
        out.iter()
            .any(|s| s.attr("id") == Some("r1") && s.attr("type") == Some("result")),
        "acknowledged: {out:?}"
    );
    // Our answer, once the media driver restarted.
    let answer = loop {
        let input = tokio::time::timeout(WAIT, bed.inputs.recv())
            .await
            .expect("the media driver restarts ICE")
            .expect("channel open");
        bed.calls.handle_input(bed.now, input);
        let out = bed.flush();
        if let Some((to, j)) = jingles(&out, JingleAction::TransportInfo).pop() {
            assert_eq!(to, DEVICE);
            break j;
        }
    };
    let t = answer.contents[0].ice_udp().expect("a transport");
    assert_ne!(t.ufrag, ours.ufrag, "new credentials");
    assert!(t.ufrag.is_some() && t.pwd.is_some() && t.pwd != ours.pwd);
    let (f, f0) = (
        t.fingerprint.as_ref().unwrap(),
        ours.fingerprint.as_ref().unwrap(),
    );
    assert_eq!(f.value, f0.value, "the same DTLS certificate");
    assert_eq!(f.setup, Some(xmpp::jingle::Setup::Passive));
    assert_eq!(
        t.candidates.len(),
        ours.candidates.len(),
        "our candidates again"
    );
}
