//! The Jingle session state machine: the outbound (we are responder) and
//! inbound (we are initiator) flows of INTEROP.md E.2/E.3/E.5/E.8, and every
//! error path. Virtual time only.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use minidom::Element;
use xmpp::jingle::{
    Action, Candidate, CandidateType, Content, Creator, Fingerprint, Group, IceUdpTransport,
    Jingle, Parameter, PayloadType, Reason, ReasonCondition, RtpDescription, SessionInfo, Setup,
    Transport,
};
use xmpp::session::{
    bad_request_reply, unknown_session_reply, EndCause, Event, JingleIq, JingleSession, Role,
    SessionConfig, State,
};

const U: &str = "alice@example.org/Conversations.x1Yz";
const NR: &str = "+15551234567@gw.example.com/gw";
const IN_NR: &str = "+18005550100@gw.example.com/gw";

fn fixture(name: &str) -> Element {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap().parse().unwrap()
}

fn iq(name: &str) -> JingleIq {
    JingleIq::from_stanza(&fixture(name)).unwrap().unwrap()
}

fn drain(s: &mut JingleSession) -> (Vec<Element>, Vec<Event>) {
    let mut out = Vec::new();
    while let Some(t) = s.poll_transmit() {
        out.push(t);
    }
    let mut ev = Vec::new();
    while let Some(e) = s.poll_event() {
        ev.push(e);
    }
    (out, ev)
}

fn jingle_of(el: &Element) -> Jingle {
    assert_eq!((el.name(), el.attr("type")), ("iq", Some("set")));
    Jingle::from_element(el.children().next().unwrap()).unwrap()
}

fn assert_result(el: &Element, id: &str, from: &str, to: &str) {
    assert_eq!(el.name(), "iq");
    assert_eq!(el.ns(), "jabber:component:accept");
    assert_eq!(el.attr("type"), Some("result"), "{el:?}");
    assert_eq!(el.attr("id"), Some(id));
    assert_eq!(el.attr("from"), Some(from));
    assert_eq!(el.attr("to"), Some(to));
}

/// (error type, stanza condition, jingle condition)
fn error_of(el: &Element) -> (String, String, Option<String>) {
    assert_eq!(el.attr("type"), Some("error"), "{el:?}");
    assert_eq!(el.ns(), "jabber:component:accept");
    let e = el.children().find(|c| c.name() == "error").unwrap();
    let cond = e
        .children()
        .find(|c| c.ns() == "urn:ietf:params:xml:ns:xmpp-stanzas")
        .unwrap();
    let j = e
        .children()
        .find(|c| c.ns() == "urn:xmpp:jingle:errors:1")
        .map(|c| c.name().to_owned());
    (
        e.attr("type").unwrap().to_owned(),
        cond.name().to_owned(),
        j,
    )
}

/// The peer's reply to one of our IQ sets.
fn reply(to_our: &Element, error: Option<(&str, Option<&str>)>) -> Element {
    let mut s = format!(
        "<iq xmlns='jabber:client' id='{}' from='{}' to='{}' type='{}'",
        to_our.attr("id").unwrap(),
        to_our.attr("to").unwrap(),
        to_our.attr("from").unwrap(),
        if error.is_some() { "error" } else { "result" }
    );
    match error {
        None => s.push_str("/>"),
        Some((cond, j)) => {
            s.push_str(&format!(
                "><error type='cancel'><{cond} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
            ));
            if let Some(j) = j {
                s.push_str(&format!("<{j} xmlns='urn:xmpp:jingle:errors:1'/>"));
            }
            s.push_str("</error></iq>");
        }
    }
    s.parse().unwrap()
}

fn answer_content(name: &str) -> Content {
    let mut te = PayloadType::new(126, "telephone-event", 8000);
    te.parameters.push(Parameter {
        name: String::new(),
        value: "0-15".to_owned(),
    });
    let mut c = Content::new(Creator::Responder, name); // creator is fixed up by accept
    c.description = Some(xmpp::jingle::Application::Rtp(RtpDescription::audio(vec![
        PayloadType::new(0, "PCMU", 8000),
        te,
    ])));
    c.transport = Some(Transport::IceUdp(gw_transport("gwU", Setup::Active)));
    c
}

fn gw_transport(ufrag: &str, setup: Setup) -> IceUdpTransport {
    IceUdpTransport {
        ufrag: Some(ufrag.to_owned()),
        pwd: Some("gwPwd22charsOrMore0123".to_owned()),
        fingerprint: Some(Fingerprint {
            hash: "sha-256".to_owned(),
            setup: Some(setup),
            value: "AB:CD".to_owned(),
        }),
        trickle: false,
        candidates: vec![Candidate {
            component: 1,
            foundation: "1".to_owned(),
            generation: 0,
            id: Some("g1".to_owned()),
            ip: "203.0.113.10".to_owned(),
            port: 30000,
            priority: 2_130_706_431,
            protocol: "udp".to_owned(),
            kind: CandidateType::Host,
            rel_addr: None,
            rel_port: None,
            network: Some(0),
            tcptype: None,
        }],
    }
}

/// Checks the invariants of everything the session sends.
fn check_stanzas(out: &[Element], from: &str, to: &str, ids: &mut HashSet<String>) {
    for el in out {
        assert_eq!(el.ns(), "jabber:component:accept", "{el:?}");
        assert_eq!(el.attr("from"), Some(from), "{el:?}");
        assert_eq!(el.attr("to"), Some(to), "{el:?}");
        if el.attr("type") == Some("set") {
            assert!(
                ids.insert(el.attr("id").unwrap().to_owned()),
                "fresh id: {el:?}"
            );
        }
    }
}

fn outbound(now: Instant) -> JingleSession {
    JingleSession::responder(
        now,
        &SessionConfig::default(),
        iq("conversations_initiate.xml"),
    )
    .unwrap()
}

#[test]
fn outbound_call_flow() {
    let t0 = Instant::now();
    let mut ids = HashSet::new();
    let mut s = outbound(t0);
    assert_eq!((s.role(), s.state()), (Role::Responder, State::Pending));
    assert_eq!(
        (s.sid(), s.peer(), s.local()),
        ("G7f2nQ0aLw9jXkB1cRt4", U, NR)
    );
    let (out, ev) = drain(&mut s);
    assert_eq!(out.len(), 1);
    assert_result(&out[0], "EaRqw3bnTy8x", NR, U);
    let [Event::Offer { contents, group }] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(contents.len(), 1);
    assert_eq!(contents[0].ice_udp().unwrap().candidates.len(), 4);
    assert_eq!(group.as_ref().unwrap().contents, ["0"]);
    assert_eq!(s.poll_timeout(), None);

    // SIP 180 → session-info ringing
    s.ringing(t0).unwrap();
    let (out, ev) = drain(&mut s);
    check_stanzas(&out, NR, U, &mut ids);
    assert!(ev.is_empty());
    assert_eq!(jingle_of(&out[0]).info, Some(SessionInfo::Ringing));
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    assert!(s.handle_response(t0, &reply(&out[0], None)));
    assert_eq!(s.poll_timeout(), None);

    // trickled candidate
    s.handle_iq(t0, iq("conversations_trickle.xml"));
    let (out, ev) = drain(&mut s);
    assert_result(&out[0], "Tr1ckLe0001", NR, U);
    let [Event::TransportInfo { content, transport }] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(content, "0");
    assert_eq!(transport.candidates[0].ip, "198.51.100.7");

    // SIP 200 → session-accept
    s.accept(
        t0,
        vec![answer_content("0")],
        Some(Group::bundle(vec!["0".to_owned()])),
    )
    .unwrap();
    assert_eq!(s.state(), State::Active);
    let (out, _) = drain(&mut s);
    check_stanzas(&out, NR, U, &mut ids);
    let j = jingle_of(&out[0]);
    assert_eq!(j.action, Action::SessionAccept);
    assert_eq!(j.initiator.as_deref(), Some(U));
    assert_eq!(j.responder.as_deref(), Some(NR));
    assert_eq!(
        j.contents[0].creator,
        Creator::Initiator,
        "creator of the offer"
    );
    assert_eq!(
        j.contents[0]
            .ice_udp()
            .unwrap()
            .fingerprint
            .as_ref()
            .unwrap()
            .setup,
        Some(Setup::Active)
    );
    assert!(s.handle_response(t0, &reply(&out[0], None)));

    // our trickle
    s.send_transport_info(t0, "0", gw_transport("gwU", Setup::Active))
        .unwrap();
    let (out, _) = drain(&mut s);
    check_stanzas(&out, NR, U, &mut ids);
    assert_eq!(jingle_of(&out[0]).action, Action::TransportInfo);
    assert!(s.handle_response(t0, &reply(&out[0], None)));
    // not ours
    assert!(!s.handle_response(t0, &reply(&out[0], None)));

    // peer hangs up busy
    s.handle_iq(t0, iq("terminate_busy.xml"));
    let (out, ev) = drain(&mut s);
    assert_result(&out[0], "h1", NR, U);
    assert_eq!(
        ev,
        [Event::Ended {
            reason: Reason::with_text(ReasonCondition::Busy, "486 Busy Here"),
            cause: EndCause::PeerTerminated
        }]
    );
    assert_eq!(s.state(), State::Ended);
    assert_eq!(s.poll_timeout(), None);
    // hanging up again is a no-op
    s.terminate(t0, Reason::new(ReasonCondition::Success));
    assert_eq!(drain(&mut s), (vec![], vec![]));
}

#[test]
fn inbound_call_flow() {
    let t0 = Instant::now();
    let mut ids = HashSet::new();
    let mut offer = answer_content("a0");
    offer.creator = Creator::Initiator;
    offer.transport = Some(Transport::IceUdp(gw_transport("gwI", Setup::ActPass)));
    let mut s = JingleSession::initiator(
        t0,
        &SessionConfig::default(),
        IN_NR,
        U,
        "T1nb0und5e55",
        vec![offer],
        None,
    )
    .unwrap();
    let (out, ev) = drain(&mut s);
    assert!(ev.is_empty());
    check_stanzas(&out, IN_NR, U, &mut ids);
    let j = jingle_of(&out[0]);
    assert_eq!(j.action, Action::SessionInitiate);
    assert_eq!(j.initiator.as_deref(), Some(IN_NR));
    assert_eq!(j.contents[0].name, "a0");
    assert!(s.handle_response(t0, &reply(&out[0], None)));

    s.handle_iq(t0, iq("session_info_ringing.xml"));
    let (out, ev) = drain(&mut s);
    assert_result(&out[0], "r1", IN_NR, U);
    assert_eq!(ev, [Event::Info(SessionInfo::Ringing)]);

    s.handle_iq(t0, iq("conversations_accept_inbound.xml"));
    let (out, ev) = drain(&mut s);
    assert_result(&out[0], "Acc3pt0001", IN_NR, U);
    let [Event::Accepted { contents, group }] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(
        contents[0].rtp().unwrap().payload_types[0].name.as_deref(),
        Some("PCMU")
    );
    assert_eq!(group.as_ref().unwrap().contents, ["a0"]);
    assert_eq!(s.state(), State::Active);

    // a second session-accept is out of order
    s.handle_iq(t0, iq("conversations_accept_inbound.xml"));
    let (out, _) = drain(&mut s);
    assert_eq!(
        error_of(&out[0]),
        (
            "wait".into(),
            "unexpected-request".into(),
            Some("out-of-order".into())
        )
    );

    s.terminate(t0, Reason::new(ReasonCondition::Success));
    let (out, ev) = drain(&mut s);
    check_stanzas(&out, IN_NR, U, &mut ids);
    let j = jingle_of(&out[0]);
    assert_eq!(j.action, Action::SessionTerminate);
    assert_eq!(j.reason.unwrap().condition, ReasonCondition::Success);
    assert_eq!(
        ev,
        [Event::Ended {
            reason: Reason::new(ReasonCondition::Success),
            cause: EndCause::LocalTerminated
        }]
    );
}

#[test]
fn unknown_session_answers() {
    let t0 = Instant::now();
    let mut s = outbound(t0);
    drain(&mut s);
    // another sid
    let mut other = iq("conversations_trickle.xml");
    other.jingle.sid = "nope".to_owned();
    s.handle_iq(t0, other.clone());
    let (out, ev) = drain(&mut s);
    assert!(ev.is_empty());
    let expect = (
        "cancel".into(),
        "item-not-found".into(),
        Some("unknown-session".into()),
    );
    assert_eq!(error_of(&out[0]), expect);
    assert_result_addr(&out[0], "Tr1ckLe0001");
    // another sender with the right sid
    let mut spoof = iq("conversations_trickle.xml");
    spoof.from = "mallory@example.org/x".to_owned();
    s.handle_iq(t0, spoof);
    let (out, ev) = drain(&mut s);
    assert!(ev.is_empty());
    assert_eq!(error_of(&out[0]), expect);
    assert_eq!(out[0].attr("to"), Some("mallory@example.org/x"));
    // the helper for sids that match no session at all
    assert_eq!(error_of(&unknown_session_reply(&other)), expect);
    // after the session ended
    s.terminate(t0, Reason::new(ReasonCondition::Success));
    drain(&mut s);
    s.handle_iq(t0, iq("conversations_trickle.xml"));
    let (out, ev) = drain(&mut s);
    assert!(ev.is_empty());
    assert_eq!(error_of(&out[0]), expect);
}

fn assert_result_addr(el: &Element, id: &str) {
    assert_eq!(el.attr("id"), Some(id));
    assert_eq!(el.attr("from"), Some(NR));
    assert_eq!(el.attr("to"), Some(U));
}

#[test]
fn out_of_order_actions() {
    let t0 = Instant::now();
    let mut s = outbound(t0);
    drain(&mut s);
    let ooo = (
        "wait".into(),
        "unexpected-request".into(),
        Some("out-of-order".into()),
    );
    // the same session-initiate again
    s.handle_iq(t0, iq("conversations_initiate.xml"));
    let (out, ev) = drain(&mut s);
    assert!(ev.is_empty());
    assert_eq!(error_of(&out[0]), ooo);
    // session-accept sent to the responder
    let mut acc = iq("conversations_accept_inbound.xml");
    acc.jingle.sid = s.sid().to_owned();
    acc.to = NR.to_owned();
    s.handle_iq(t0, acc);
    let (out, _) = drain(&mut s);
    assert_eq!(error_of(&out[0]), ooo);
    // content-accept for a content-add we never sent
    let mut ca = iq("conversations_trickle.xml");
    ca.jingle.action = Action::ContentAccept;
    s.handle_iq(t0, ca);
    let (out, _) = drain(&mut s);
    assert_eq!(error_of(&out[0]), ooo);
    assert_eq!(s.state(), State::Pending, "errors leave the session alone");
}

#[test]
fn peer_ice_restart_then_trickle() {
    let t0 = Instant::now();
    let mut s = outbound(t0);
    drain(&mut s);
    s.accept(t0, vec![answer_content("0")], None).unwrap();
    drain(&mut s);
    s.handle_iq(t0, iq("conversations_ice_restart.xml"));
    let (out, ev) = drain(&mut s);
    assert_result(&out[0], "Rst9Kq2xWpLm", NR, U);
    let [Event::IceRestart { content, transport }] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(content, "0");
    assert_eq!(transport.ufrag.as_deref(), Some("Nw3e"));
    // answer with our new credentials
    s.send_transport_info(t0, "0", gw_transport("gwU2", Setup::Active))
        .unwrap();
    drain(&mut s);
    // a trickle under the new ufrag is a plain transport-info
    let mut tr = iq("conversations_trickle.xml");
    if let Some(Transport::IceUdp(t)) = &mut tr.jingle.contents[0].transport {
        t.ufrag = Some("Nw3e".to_owned());
    }
    s.handle_iq(t0, tr);
    let (_, ev) = drain(&mut s);
    assert!(
        matches!(ev.as_slice(), [Event::TransportInfo { .. }]),
        "{ev:?}"
    );
}

#[test]
fn simultaneous_ice_restart_initiator_wins_with_tie_break() {
    let t0 = Instant::now();
    let mut s = JingleSession::initiator(
        t0,
        &SessionConfig::default(),
        IN_NR,
        U,
        "T1nb0und5e55",
        vec![{
            let mut c = answer_content("a0");
            c.creator = Creator::Initiator;
            c
        }],
        None,
    )
    .unwrap();
    drain(&mut s);
    s.handle_iq(t0, iq("conversations_accept_inbound.xml"));
    drain(&mut s);
    s.restart_ice(t0, "a0", gw_transport("gwR", Setup::ActPass))
        .unwrap();
    let (ours, _) = drain(&mut s);
    // the peer restarts at the same time
    let mut theirs = iq("conversations_ice_restart.xml");
    theirs.jingle.sid = "T1nb0und5e55".to_owned();
    theirs.to = IN_NR.to_owned();
    theirs.jingle.contents[0].name = "a0".to_owned();
    s.handle_iq(t0, theirs);
    let (out, ev) = drain(&mut s);
    assert!(ev.is_empty(), "{ev:?}");
    assert_eq!(
        error_of(&out[0]),
        ("cancel".into(), "conflict".into(), Some("tie-break".into()))
    );
    // the peer accepts ours
    assert!(s.handle_response(t0, &reply(&ours[0], None)));
    assert_eq!(s.state(), State::Active);
}

#[test]
fn simultaneous_ice_restart_responder_yields() {
    let t0 = Instant::now();
    let mut s = outbound(t0);
    drain(&mut s);
    s.accept(t0, vec![answer_content("0")], None).unwrap();
    drain(&mut s);
    s.restart_ice(t0, "0", gw_transport("gwR", Setup::Active))
        .unwrap();
    let (ours, _) = drain(&mut s);
    s.handle_iq(t0, iq("conversations_ice_restart.xml"));
    let (out, ev) = drain(&mut s);
    assert_result(&out[0], "Rst9Kq2xWpLm", NR, U);
    assert!(matches!(ev.as_slice(), [Event::IceRestart { .. }]));
    // the initiator refuses ours with tie-break: not fatal
    assert!(s.handle_response(t0, &reply(&ours[0], Some(("conflict", Some("tie-break"))))));
    let (out, ev) = drain(&mut s);
    assert!(out.is_empty() && ev.is_empty(), "{out:?} {ev:?}");
    assert_eq!(s.state(), State::Active);
}

#[test]
fn video_only_initiate_is_refused() {
    let t0 = Instant::now();
    let mut s =
        JingleSession::responder(t0, &SessionConfig::default(), iq("video_only_initiate.xml"))
            .unwrap();
    let (out, ev) = drain(&mut s);
    assert_result(&out[0], "v1", NR, U);
    let j = jingle_of(&out[1]);
    assert_eq!(j.action, Action::SessionTerminate);
    assert_eq!(
        j.reason.as_ref().unwrap().condition,
        ReasonCondition::UnsupportedApplications
    );
    assert_eq!(
        ev,
        [Event::Ended {
            reason: Reason::new(ReasonCondition::UnsupportedApplications),
            cause: EndCause::Refused
        }]
    );
    assert_eq!(s.state(), State::Ended);
}

#[test]
fn audio_and_video_initiate_keeps_audio_and_removes_video() {
    let t0 = Instant::now();
    let mut s = JingleSession::responder(
        t0,
        &SessionConfig::default(),
        iq("audio_video_initiate.xml"),
    )
    .unwrap();
    let (out, ev) = drain(&mut s);
    assert_result(&out[0], "av1", NR, U);
    let j = jingle_of(&out[1]);
    assert_eq!(j.action, Action::ContentRemove);
    assert_eq!(j.contents.len(), 1);
    assert_eq!(j.contents[0].name, "1");
    let [Event::Offer { contents, .. }] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(contents.len(), 1);
    assert_eq!(contents[0].name, "0");
    // a refused content-remove does not end the call
    assert!(s.handle_response(t0, &reply(&out[1], Some(("bad-request", None)))));
    assert_eq!(s.state(), State::Pending);
    // accepting the removed video content is a caller bug
    assert!(s.accept(t0, vec![answer_content("1")], None).is_err());
}

#[test]
fn content_add_is_refused() {
    let t0 = Instant::now();
    let mut s = outbound(t0);
    drain(&mut s);
    s.accept(t0, vec![answer_content("0")], None).unwrap();
    drain(&mut s);
    s.handle_iq(t0, iq("content_add_video.xml"));
    let (out, ev) = drain(&mut s);
    assert!(ev.is_empty());
    assert_result(&out[0], "ca1", NR, U);
    let j = jingle_of(&out[1]);
    assert_eq!(j.action, Action::ContentReject);
    assert_eq!(j.contents[0].name, "1");
    assert_eq!(s.state(), State::Active);
}

#[test]
fn content_remove_of_last_content_terminates() {
    let t0 = Instant::now();
    let mut s = outbound(t0);
    drain(&mut s);
    let mut rm = iq("conversations_trickle.xml");
    rm.jingle.action = Action::ContentRemove;
    rm.jingle.contents[0].transport = None;
    s.handle_iq(t0, rm);
    let (out, ev) = drain(&mut s);
    assert_eq!(out[0].attr("type"), Some("result"));
    assert_eq!(jingle_of(&out[1]).action, Action::SessionTerminate);
    assert!(matches!(
        ev.as_slice(),
        [Event::Ended {
            cause: EndCause::PeerTerminated,
            ..
        }]
    ));
}

#[test]
fn malformed_stanzas_get_bad_request() {
    let no_sid: Element = format!(
        "<iq xmlns='jabber:client' type='set' id='b1' from='{U}' to='{NR}'>\
         <jingle xmlns='urn:xmpp:jingle:1' action='transport-info'/></iq>"
    )
    .parse()
    .unwrap();
    assert!(JingleIq::from_stanza(&no_sid).is_err());
    let r = bad_request_reply(&no_sid).unwrap();
    assert_eq!(error_of(&r), ("modify".into(), "bad-request".into(), None));
    assert_eq!(
        (r.attr("from"), r.attr("to"), r.attr("id")),
        (Some(NR), Some(U), Some("b1"))
    );
    // never answer a result or an error
    let result: Element = "<iq xmlns='jabber:client' type='result' id='x' from='a' to='b'/>"
        .parse()
        .unwrap();
    assert_eq!(bad_request_reply(&result), None);
    // not jingle at all
    let ping: Element = "<iq xmlns='jabber:client' type='get' id='p' from='a' to='b'>\
        <ping xmlns='urn:xmpp:ping'/></iq>"
        .parse()
        .unwrap();
    assert_eq!(JingleIq::from_stanza(&ping).unwrap(), None);

    // a session-initiate without content
    let mut empty = iq("conversations_initiate.xml");
    empty.jingle.contents.clear();
    let mut s = JingleSession::responder(Instant::now(), &SessionConfig::default(), empty).unwrap();
    let (out, ev) = drain(&mut s);
    assert_eq!(out.len(), 1);
    assert_eq!(error_of(&out[0]).1, "bad-request");
    assert!(matches!(
        ev.as_slice(),
        [Event::Ended {
            cause: EndCause::Malformed,
            ..
        }]
    ));
}

#[test]
fn error_reply_to_session_accept_ends_the_session() {
    let t0 = Instant::now();
    let mut s = outbound(t0);
    drain(&mut s);
    s.accept(t0, vec![answer_content("0")], None).unwrap();
    let (out, _) = drain(&mut s);
    assert!(s.handle_response(t0, &reply(&out[0], Some(("service-unavailable", None)))));
    let (out, ev) = drain(&mut s);
    assert_eq!(jingle_of(&out[0]).action, Action::SessionTerminate);
    let [Event::Ended { reason, cause }] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(reason.condition, ReasonCondition::GeneralError);
    assert_eq!(
        cause,
        &EndCause::IqError {
            action: Action::SessionAccept,
            condition: "service-unavailable".to_owned()
        }
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn no_reply_to_session_initiate_times_out() {
    let t0 = Instant::now();
    let mut cfg = SessionConfig::default();
    cfg.iq_timeout(Duration::from_secs(5)).id_prefix("test");
    let mut s = JingleSession::initiator(
        t0,
        &cfg,
        IN_NR,
        U,
        "sid1",
        vec![{
            let mut c = answer_content("a0");
            c.creator = Creator::Initiator;
            c
        }],
        None,
    )
    .unwrap();
    let (out, _) = drain(&mut s);
    assert_eq!(out[0].attr("id"), Some("test-sid1-1"));
    let deadline = s.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + Duration::from_secs(5));
    s.handle_timeout(deadline - Duration::from_millis(1));
    assert_eq!(drain(&mut s), (vec![], vec![]));
    s.handle_timeout(deadline);
    let (out, ev) = drain(&mut s);
    assert!(
        out.is_empty(),
        "nothing to terminate: the peer never took it"
    );
    assert!(matches!(
        ev.as_slice(),
        [Event::Ended {
            cause: EndCause::IqTimeout {
                action: Action::SessionInitiate
            },
            ..
        }]
    ));
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn no_reply_to_session_accept_terminates() {
    let t0 = Instant::now();
    let mut s = outbound(t0);
    drain(&mut s);
    s.accept(t0, vec![answer_content("0")], None).unwrap();
    drain(&mut s);
    let at = s.poll_timeout().unwrap();
    s.handle_timeout(at);
    let (out, ev) = drain(&mut s);
    let j = jingle_of(&out[0]);
    assert_eq!(j.action, Action::SessionTerminate);
    assert_eq!(
        j.reason.unwrap().condition,
        ReasonCondition::ConnectivityError
    );
    assert!(matches!(
        ev.as_slice(),
        [Event::Ended {
            cause: EndCause::IqTimeout { .. },
            ..
        }]
    ));
}

#[test]
fn ringing_error_is_not_fatal() {
    let t0 = Instant::now();
    let mut s = outbound(t0);
    drain(&mut s);
    s.ringing(t0).unwrap();
    let (out, _) = drain(&mut s);
    assert!(s.handle_response(
        t0,
        &reply(
            &out[0],
            Some(("feature-not-implemented", Some("unsupported-info")))
        )
    ));
    assert_eq!(drain(&mut s), (vec![], vec![]));
    assert_eq!(s.state(), State::Pending);
}

#[test]
fn session_info_variants() {
    let t0 = Instant::now();
    let mut s =
        JingleSession::responder(t0, &SessionConfig::default(), iq("dino_initiate.xml")).unwrap();
    drain(&mut s);
    let dino = "bob@example.net/dino.4f2a1c";
    s.handle_iq(t0, iq("session_info_mute.xml"));
    let (out, ev) = drain(&mut s);
    assert_result(&out[0], "m1", NR, dino);
    assert!(matches!(
        ev.as_slice(),
        [Event::Info(SessionInfo::Mute { .. })]
    ));
    s.handle_iq(t0, iq("session_info_dtmf.xml"));
    let (_, ev) = drain(&mut s);
    assert!(matches!(
        ev.as_slice(),
        [Event::Info(SessionInfo::Dtmf { .. })]
    ));
    // an empty session-info (ping) is acknowledged
    let mut ping = iq("session_info_mute.xml");
    ping.jingle.info = None;
    s.handle_iq(t0, ping);
    let (out, ev) = drain(&mut s);
    assert_eq!(out[0].attr("type"), Some("result"));
    assert!(ev.is_empty());
    // an unknown payload
    let odd: Element = format!(
        "<iq xmlns='jabber:client' type='set' id='o1' from='{dino}' to='{NR}'>\
         <jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='d1n0-5e55-10n'>\
         <whatever xmlns='urn:example:x'/></jingle></iq>"
    )
    .parse()
    .unwrap();
    s.handle_iq(t0, JingleIq::from_stanza(&odd).unwrap().unwrap());
    let (out, ev) = drain(&mut s);
    assert!(ev.is_empty());
    assert_eq!(
        error_of(&out[0]),
        (
            "modify".into(),
            "feature-not-implemented".into(),
            Some("unsupported-info".into())
        )
    );
}

#[test]
fn dino_component_two_and_creator_variants_do_not_disturb() {
    let t0 = Instant::now();
    let mut s =
        JingleSession::responder(t0, &SessionConfig::default(), iq("dino_initiate.xml")).unwrap();
    drain(&mut s);
    let dino = "bob@example.net/dino.4f2a1c";
    s.handle_iq(t0, iq("dino_trickle_component2.xml"));
    let (out, ev) = drain(&mut s);
    assert_result(&out[0], "c7d8e9f0-1a2b-4c3d-8e5f-6a7b8c9d0e1f", NR, dino);
    let [Event::TransportInfo { transport, .. }] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert!(!transport.candidates[0].is_usable_rtp_udp());
    s.handle_iq(t0, iq("creator_responder_trickle.xml"));
    let (out, ev) = drain(&mut s);
    assert_result(&out[0], "cr1", NR, dino);
    assert!(matches!(ev.as_slice(), [Event::TransportInfo { content, .. }] if content == "audio"));
    // our answer echoes the creator of the offer
    s.accept(t0, vec![answer_content("audio")], None).unwrap();
    let (out, _) = drain(&mut s);
    assert_eq!(jingle_of(&out[0]).contents[0].creator, Creator::Initiator);
    assert_eq!(s.state(), State::Active);
}

#[test]
fn movim_bare_initiator_uses_iq_from() {
    let t0 = Instant::now();
    let mut s =
        JingleSession::responder(t0, &SessionConfig::default(), iq("movim_initiate.xml")).unwrap();
    let movim = "carol@movim.example/movim7Qd2";
    assert_eq!(s.peer(), movim);
    drain(&mut s);
    s.handle_iq(t0, iq("movim_trickle_tcp.xml"));
    let (out, ev) = drain(&mut s);
    assert_result(&out[0], "1702474924.0081", NR, movim);
    assert_eq!(ev.len(), 1);
    s.accept(t0, vec![answer_content("0")], None).unwrap();
    let (out, _) = drain(&mut s);
    assert_eq!(out[0].attr("to"), Some(movim));
    assert_eq!(jingle_of(&out[0]).initiator.as_deref(), Some(movim));
}

#[test]
fn api_misuse_is_reported() {
    let t0 = Instant::now();
    let cfg = SessionConfig::default();
    assert!(JingleSession::responder(t0, &cfg, iq("conversations_trickle.xml")).is_err());
    assert!(JingleSession::initiator(t0, &cfg, IN_NR, U, "s", vec![], None).is_err());
    let mut s = outbound(t0);
    drain(&mut s);
    assert!(s
        .send_transport_info(t0, "nope", IceUdpTransport::default())
        .is_err());
    s.accept(t0, vec![answer_content("0")], None).unwrap();
    assert!(
        s.accept(t0, vec![answer_content("0")], None).is_err(),
        "twice"
    );
    assert!(s.ringing(t0).is_err(), "ringing after accept");
    s.terminate(t0, Reason::new(ReasonCondition::Success));
    assert!(s.send_info(t0, SessionInfo::Hold).is_err());
}

#[test]
fn audio_over_another_transport_is_refused_as_unsupported_transport() {
    let mut init = iq("conversations_initiate.xml");
    init.jingle.contents[0].transport = Some(Transport::Other(
        "urn:xmpp:jingle:transports:raw-udp:1".to_owned(),
    ));
    let mut s = JingleSession::responder(Instant::now(), &SessionConfig::default(), init).unwrap();
    let (out, ev) = drain(&mut s);
    assert_eq!(out[0].attr("type"), Some("result"));
    assert_eq!(
        jingle_of(&out[1]).reason.unwrap().condition,
        ReasonCondition::UnsupportedTransports
    );
    assert!(matches!(
        ev.as_slice(),
        [Event::Ended {
            cause: EndCause::Refused,
            ..
        }]
    ));
}

#[test]
fn rarely_used_actions() {
    let t0 = Instant::now();
    let mut s = outbound(t0);
    drain(&mut s);
    // transport-replace: acknowledged, then transport-reject
    let mut tr = iq("conversations_trickle.xml");
    tr.jingle.action = Action::TransportReplace;
    s.handle_iq(t0, tr);
    let (out, ev) = drain(&mut s);
    assert!(ev.is_empty());
    assert_eq!(out[0].attr("type"), Some("result"));
    assert_eq!(jingle_of(&out[1]).action, Action::TransportReject);
    // description-info: acknowledged and ignored
    let mut di = iq("conversations_trickle.xml");
    di.jingle.action = Action::DescriptionInfo;
    s.handle_iq(t0, di);
    let (out, ev) = drain(&mut s);
    assert_eq!((out.len(), ev.len()), (1, 0));
    assert_eq!(out[0].attr("type"), Some("result"));
    // an action XEP-0166 does not define
    let mut odd = iq("conversations_trickle.xml");
    odd.jingle.action = Action::parse("session-dance");
    s.handle_iq(t0, odd);
    let (out, _) = drain(&mut s);
    assert_eq!(
        error_of(&out[0]),
        ("modify".into(), "feature-not-implemented".into(), None)
    );
    assert_eq!(s.state(), State::Pending);
}

#[test]
fn xmpp_errors_map_to_jingle_reasons() {
    use xmpp::error::Error;
    assert_eq!(
        Reason::from(&Error::StreamClosed).condition,
        ReasonCondition::ConnectivityError
    );
    assert_eq!(
        Reason::from(&Error::Malformed("x".into())),
        Reason::new(ReasonCondition::GeneralError)
    );
}

#[test]
fn stanzajs_captured_flows() {
    let t0 = Instant::now();
    let dave = "dave@example.com/stanzajs-cap";
    let mut s = JingleSession::responder(
        t0,
        &SessionConfig::default(),
        iq("stanzajs_captured_initiate.xml"),
    )
    .unwrap();
    let (out, ev) = drain(&mut s);
    assert_result(&out[0], "cap-1", NR, dave);
    assert!(matches!(ev.as_slice(), [Event::Offer { .. }]));
    s.handle_iq(t0, iq("stanzajs_captured_trickle.xml"));
    let (_, ev) = drain(&mut s);
    assert!(
        matches!(ev.as_slice(), [Event::TransportInfo { .. }]),
        "{ev:?}"
    );
    s.handle_iq(t0, iq("stanzajs_captured_restart.xml"));
    let (out, ev) = drain(&mut s);
    assert_result(&out[0], "cap-4", NR, dave);
    assert!(
        matches!(ev.as_slice(), [Event::IceRestart { .. }]),
        "{ev:?}"
    );

    // The gateway as initiator, StanzaJS answering.
    let mut offer = answer_content("0");
    offer.creator = Creator::Initiator;
    offer.transport = Some(Transport::IceUdp(gw_transport("gwI", Setup::ActPass)));
    let mut s = JingleSession::initiator(
        t0,
        &SessionConfig::default(),
        NR,
        dave,
        "c4ptur3d5e55",
        vec![offer],
        None,
    )
    .unwrap();
    drain(&mut s);
    s.handle_iq(t0, iq("stanzajs_captured_accept.xml"));
    let (out, ev) = drain(&mut s);
    assert_result(&out[0], "cap-3", NR, dave);
    assert!(matches!(ev.as_slice(), [Event::Accepted { .. }]), "{ev:?}");
    assert_eq!(s.state(), State::Active);
}
