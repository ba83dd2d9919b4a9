//! Bodies of the `xmpp_stream` and `jingle` targets (public API of `jsg-xmpp` only).

use std::time::{Duration, Instant};

use minidom::{Element, Node};
use xmpp::component::{self, Component};
use xmpp::jingle::{Action, Content, Jingle};
use xmpp::jmi::JingleMessage;
use xmpp::session::{self, unknown_session_reply, JingleIq, JingleSession, SessionConfig, State};
use xmpp::stream::{self, Stream};

/// The component domain used by the targets.
pub const DOMAIN: &str = "gw.localhost";

/// The server's stream header that `xmpp_stream` feeds before the fuzz input.
pub const SERVER_HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' from='gw.localhost' id='abc123'>";

/// A valid session-initiate (Conversations, from `xmpp/tests/fixtures`): seed for the
/// smoke tests and the source of the audio content when we are initiator.
pub const INITIATE: &str = include_str!("../../xmpp/tests/fixtures/conversations_initiate.xml");

/// Serializes `el` with minidom, reparses it and checks that the result is the same XML:
/// every stanza the gateway emits must survive the wire. Compared as XML infosets
/// ([`same_xml`]), since minidom keeps empty and split text nodes that the wire does not
/// (`<fingerprint/>` with an empty text child is written `<fingerprint></fingerprint>`).
pub fn check_wire_round_trip(el: &Element) -> Element {
    let text = to_xml(el);
    let back: Element = text
        .parse()
        .unwrap_or_else(|e| panic!("our own stanza does not reparse ({e}): {text}"));
    assert!(same_xml(&back, el), "stanza changed on the wire: {text}");
    back
}

/// Name, namespace, attributes and children equal, text compared after merging adjacent
/// text nodes and dropping empty ones.
pub fn same_xml(a: &Element, b: &Element) -> bool {
    enum Item<'a> {
        El(&'a Element),
        Text(String),
    }
    fn items(e: &Element) -> Vec<Item<'_>> {
        let mut out: Vec<Item<'_>> = Vec::new();
        for n in e.nodes() {
            match n {
                Node::Element(c) => out.push(Item::El(c)),
                Node::Text(t) if t.is_empty() => {}
                Node::Text(t) => match out.last_mut() {
                    Some(Item::Text(prev)) => prev.push_str(t),
                    _ => out.push(Item::Text(t.clone())),
                },
            }
        }
        out
    }
    if a.name() != b.name() || a.ns() != b.ns() || a.attrs() != b.attrs() {
        return false;
    }
    let (x, y) = (items(a), items(b));
    x.len() == y.len()
        && x.iter().zip(&y).all(|p| match p {
            (Item::El(c), Item::El(d)) => same_xml(c, d),
            (Item::Text(s), Item::Text(t)) => s == t,
            _ => false,
        })
}

fn to_xml(el: &Element) -> String {
    let mut out = Vec::new();
    el.write_to(&mut out)
        .expect("minidom serializes into a Vec");
    String::from_utf8(out).expect("minidom writes UTF-8")
}

fn parse_xml(data: &[u8]) -> Option<Element> {
    std::str::from_utf8(data).ok()?.parse().ok()
}

/// The live Jingle sessions of one run, as the gateway would hold them.
#[derive(Default)]
struct Sessions {
    live: Vec<JingleSession>,
    out: Vec<Element>,
}

impl Sessions {
    /// Routes a Jingle IQ set like the call layer does.
    fn on_iq(&mut self, now: Instant, iq: JingleIq) {
        let i = self
            .live
            .iter()
            .position(|s| s.sid() == iq.jingle.sid && s.peer() == iq.from);
        match i {
            Some(i) => {
                self.live[i].handle_iq(now, iq);
                drain_session(&mut self.live[i], &mut self.out);
            }
            None if iq.jingle.action == Action::SessionInitiate => {
                let mut s = JingleSession::responder(now, &SessionConfig::default(), iq)
                    .expect("responder accepts every session-initiate");
                drain_session(&mut s, &mut self.out);
                if self.live.len() < 8 {
                    self.live.push(s);
                }
            }
            None => self.out.push(unknown_session_reply(&iq)),
        }
    }

    fn on_response(&mut self, now: Instant, stanza: &Element) {
        for s in &mut self.live {
            if s.handle_response(now, stanza) {
                drain_session(s, &mut self.out);
                break;
            }
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        for s in &mut self.live {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
            drain_session(s, &mut self.out);
        }
    }
}

/// Drains a session and checks what it sends: addressed from our JID to the peer, and
/// unchanged by serialization.
fn drain_session(s: &mut JingleSession, out: &mut Vec<Element>) {
    while let Some(el) = s.poll_transmit() {
        assert_eq!(el.attr("from"), Some(s.local()), "{el:?}");
        assert_eq!(el.attr("to"), Some(s.peer()), "{el:?}");
        check_wire_round_trip(&el);
        out.push(el);
    }
    let mut ended = 0;
    while let Some(e) = s.poll_event() {
        if matches!(e, session::Event::Ended { .. }) {
            ended += 1;
        }
    }
    assert!(ended <= 1, "more than one Ended event");
    if ended == 1 {
        assert_eq!(s.state(), State::Ended);
    }
}

/// `xmpp_stream` target: `data` arrives on a connected component stream (in pieces whose
/// size depends on the input); every stanza goes through [`Component::handle_stanza`]
/// and the Jingle IQs/JMI messages/IQ responses it yields through the session layer.
/// Every stanza sent must reparse to itself.
pub fn xmpp_stream(data: &[u8]) {
    let t0 = Instant::now();
    let mut now = t0;
    let mut s = Stream::new(stream::Config::new(DOMAIN, "s3cr3t"), now);
    s.handle_bytes(now, SERVER_HEADER);
    s.handle_bytes(now, b"<handshake/>");
    while s.poll_transmit().is_some() {}
    assert_eq!(s.poll_event(), Some(stream::Event::Connected));
    assert!(s.is_connected());
    let component = Component::new(component::Config::new(DOMAIN));
    let mut sessions = Sessions::default();
    let hash = data.iter().fold(0usize, |a, b| {
        a.wrapping_mul(31).wrapping_add(usize::from(*b))
    });
    let chunk = if hash % 3 == 0 {
        data.len().max(1)
    } else {
        1 + hash % 61
    };
    let mut closed = false;
    for piece in data.chunks(chunk) {
        s.handle_bytes(now, piece);
        closed |= pump(&mut s, &component, &mut sessions, now);
        now += Duration::from_millis(700);
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        sessions.on_timeout(now);
        for el in sessions.out.drain(..) {
            let _ = s.send(&el);
        }
        while s.poll_transmit().is_some() {}
        if closed {
            assert!(!s.is_connected());
            break;
        }
    }
    // Let the keepalive and IQ timers fire.
    now += Duration::from_secs(120);
    s.handle_timeout(now);
    sessions.on_timeout(now);
    pump(&mut s, &component, &mut sessions, now);
    s.handle_eof(now);
    pump(&mut s, &component, &mut sessions, now);
    while s.poll_transmit().is_some() {}
    assert!(!s.is_connected());
}

/// Handles the stream's events; returns whether it closed.
fn pump(s: &mut Stream, component: &Component, sessions: &mut Sessions, now: Instant) -> bool {
    let mut closed = false;
    while let Some(ev) = s.poll_event() {
        let actions = match ev {
            stream::Event::Stanza(el) => component.handle_stanza(el),
            stream::Event::StanzaDropped { head, .. } => component.handle_dropped(head.as_ref()),
            stream::Event::Closed { .. } => {
                closed = true;
                Vec::new()
            }
            stream::Event::Connected => panic!("second Connected event"),
            _ => Vec::new(),
        };
        for a in actions {
            match a {
                component::Action::Send(el) => {
                    check_wire_round_trip(&el);
                    let _ = s.send(&el);
                }
                component::Action::Jingle(inb) => match JingleIq::from_stanza(&inb.stanza) {
                    Ok(Some(iq)) => sessions.on_iq(now, iq),
                    Ok(None) => panic!("Action::Jingle for a non-Jingle IQ: {:?}", inb.stanza),
                    Err(_) => {
                        if let Some(reply) = session::bad_request_reply(&inb.stanza) {
                            check_wire_round_trip(&reply);
                            let _ = s.send(&reply);
                        }
                    }
                },
                component::Action::Jmi(inb) => {
                    if let Ok(Some(m)) = JingleMessage::from_message(&inb.stanza) {
                        jmi_round_trip(&m);
                    }
                }
                component::Action::IqResponse(inb) => sessions.on_response(now, &inb.stanza),
                _ => {}
            }
        }
        for el in sessions.out.drain(..) {
            let _ = s.send(&el);
        }
    }
    closed
}

fn jmi_round_trip(m: &JingleMessage) {
    let el = check_wire_round_trip(&m.to_element());
    let back = JingleMessage::from_element(&el).expect("our JMI element parses");
    assert_eq!(&back, m);
    let msg =
        check_wire_round_trip(&m.to_message("alice@example.org/x", "+15551234567@gw.localhost"));
    let back = JingleMessage::from_message(&msg)
        .expect("our JMI message parses")
        .expect("our JMI message carries JMI");
    assert_eq!(&back, m);
}

fn jingle_round_trip(el: &Element) {
    let Ok(j) = Jingle::from_element(el) else {
        return;
    };
    let out = check_wire_round_trip(&j.to_element());
    let back = Jingle::from_element(&out).expect("our <jingle/> parses");
    assert_eq!(back, j, "Jingle changed in a round trip");
    assert!(same_xml(&back.to_element(), &out));
}

/// The audio content of [`INITIATE`], for sessions where we are initiator.
fn audio_contents() -> Vec<Content> {
    let el: Element = INITIATE.parse().expect("fixture parses");
    JingleIq::from_stanza(&el)
        .expect("fixture is a valid Jingle IQ")
        .expect("fixture is a Jingle IQ")
        .jingle
        .contents
}

/// `jingle` target: UTF-8 XML → [`Element`] → [`Jingle`] / [`JingleMessage`] round trips,
/// then [`JingleIq::from_stanza`] and a [`JingleSession`] (responder for a
/// session-initiate, else initiator of the same sid) fed the IQ, a duplicate, a response
/// and a timeout.
pub fn jingle(data: &[u8]) {
    let Some(el) = parse_xml(data) else {
        return;
    };
    jingle_round_trip(&el);
    for c in el.children() {
        jingle_round_trip(c);
        if let Ok(m) = JingleMessage::from_element(c) {
            jmi_round_trip(&m);
        }
    }
    if let Ok(Some(m)) = JingleMessage::from_message(&el) {
        jmi_round_trip(&m);
    }
    let now = Instant::now();
    let cfg = SessionConfig::default();
    let iq = match JingleIq::from_stanza(&el) {
        Ok(Some(iq)) => iq,
        Ok(None) | Err(_) => {
            // As a response to an IQ of a session we initiated.
            let mut out = Vec::new();
            if let Ok(mut s) = JingleSession::initiator(
                now,
                &cfg,
                "+15551234567@gw.localhost/gw",
                el.attr("from").unwrap_or("alice@example.org/x"),
                "sid1",
                audio_contents(),
                None,
            ) {
                drain_session(&mut s, &mut out);
                s.handle_response(now, &el);
                drain_session(&mut s, &mut out);
            }
            return;
        }
    };
    let mut out = Vec::new();
    let mut s = if iq.jingle.action == Action::SessionInitiate {
        let s = JingleSession::responder(now, &cfg, iq.clone());
        let mut s = s.expect("responder accepts every session-initiate");
        drain_session(&mut s, &mut out);
        s
    } else {
        let mut s = JingleSession::initiator(
            now,
            &cfg,
            &iq.to,
            &iq.from,
            &iq.jingle.sid,
            audio_contents(),
            None,
        )
        .expect("initiator with an audio content");
        drain_session(&mut s, &mut out);
        let initiate = out.pop().expect("session-initiate sent");
        let result = format!(
            "<iq xmlns='jabber:component:accept' type='result' id='{}' from='{}' to='{}'/>",
            initiate.attr("id").unwrap_or(""),
            xml_escape(s.peer()),
            xml_escape(s.local())
        );
        if let Ok(r) = result.parse::<Element>() {
            assert!(
                s.handle_response(now, &r),
                "result to our initiate not matched"
            );
        }
        drain_session(&mut s, &mut out);
        s
    };
    s.handle_iq(now, iq.clone());
    drain_session(&mut s, &mut out);
    s.handle_iq(now + Duration::from_millis(10), iq);
    drain_session(&mut s, &mut out);
    let later = now + Duration::from_secs(60);
    s.handle_timeout(later);
    drain_session(&mut s, &mut out);
    if s.state() != State::Ended {
        s.terminate(
            later,
            xmpp::jingle::Reason::new(xmpp::jingle::ReasonCondition::Success),
        );
        drain_session(&mut s, &mut out);
        assert_eq!(s.state(), State::Ended);
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('\'', "&apos;")
        .replace('<', "&lt;")
}
