//! The XMPP-side call layer on stanzas shaped after INTEROP.md E.2, fed through the
//! real [`Component`] responder, with a virtual clock.

use std::path::Path;
use std::time::{Duration, Instant};

use minidom::Element;
use xmpp::component::Component;
use xmpp::jingle::{ns, Jingle, Reason, ReasonCondition};

use super::{test_support, Calls, NOT_BRIDGED_TEXT};
use crate::config::Config;

const U: &str = "alice@example.org/Conversations.x1";
const N: &str = "+15551234567@gw.example.com";
const NR: &str = "+15551234567@gw.example.com/gw";

fn config() -> Config {
    Config::parse(
        r#"
        [xmpp]
        domain = "gw.example.com"
        secret = "s"
        [[sip.trunks]]
        name = "t"
        host = "127.0.0.1"
        [routing]
        allowed_callers = ["alice@example.org"]
        blocked_prefixes = ["+1900"]
        [[routing.routes]]
        prefix = "+1"
        trunks = ["t"]
        "#,
        Path::new("calls-test.toml"),
        Vec::new(),
    )
    .unwrap()
}

/// The call layer (not bridged) behind the component responder, on a virtual clock.
struct Harness {
    component: Component,
    calls: Calls,
    now: Instant,
}

impl Harness {
    fn new() -> Self {
        let config = config();
        Self {
            component: test_support::component(&config),
            calls: Calls::new(&config),
            now: Instant::now(),
        }
    }

    /// Delivers a stanza as the driver would, and returns everything sent in reply
    /// (the call layer's IQ sets are not acknowledged).
    fn deliver(&mut self, xml: &str) -> Vec<Element> {
        test_support::deliver(&mut self.component, &mut self.calls, self.now, xml, false)
    }
}

fn propose(from: &str, to: &str, sid: &str, media: &[&str]) -> String {
    let descriptions: String = media
        .iter()
        .map(|m| format!("<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='{m}'/>"))
        .collect();
    format!(
        "<message xmlns='jabber:component:accept' type='chat' id='jm-propose-{sid}' from='{from}' to='{to}'>\
         <propose xmlns='urn:xmpp:jingle-message:0' id='{sid}'>{descriptions}</propose>\
         <store xmlns='urn:xmpp:hints'/></message>"
    )
}

fn session_initiate(from: &str, sid: &str, id: &str) -> String {
    test_support::session_initiate(from, NR, sid, id, 40000)
}

fn jmi_child(m: &Element) -> &Element {
    m.children()
        .find(|c| c.ns() == ns::JMI)
        .unwrap_or_else(|| panic!("no JMI child in {}", String::from(m)))
}

fn reason_of(el: &Element) -> Reason {
    Reason::from_element(
        el.children()
            .find(|c| c.name() == "reason")
            .expect("a reason"),
    )
}

fn jingle_of(iq: &Element) -> Jingle {
    Jingle::from_element(iq.get_child("jingle", ns::JINGLE).expect("a jingle")).unwrap()
}

#[test]
fn allowed_propose_gets_proceed_from_the_full_number_jid() {
    let mut h = Harness::new();
    let out = h.deliver(&propose(U, N, "S", &["audio"]));
    let proceed = out
        .iter()
        .find(|m| m.name() == "message")
        .expect("a message");
    assert_eq!(proceed.attr("from"), Some(NR));
    assert_eq!(proceed.attr("to"), Some(U));
    assert_eq!(proceed.attr("type"), Some("chat"));
    let child = jmi_child(proceed);
    assert_eq!((child.name(), child.attr("id")), ("proceed", Some("S")));
    assert!(!h.calls.is_idle(), "the proposal is remembered");
}

#[test]
fn propose_from_a_jid_not_allowed_is_rejected_with_a_text() {
    let mut h = Harness::new();
    let out = h.deliver(&propose("mallory@evil.example/x", N, "S", &["audio"]));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].attr("to"), Some("mallory@evil.example/x"));
    assert_eq!(out[0].attr("from"), Some(NR));
    let reject = jmi_child(&out[0]);
    assert_eq!(reject.name(), "reject");
    let reason = reason_of(reject);
    // The same rule as bridged calls (routing::Denied::CallerNotAllowed).
    assert_eq!(reason.condition, ReasonCondition::SecurityError);
    assert!(reason.text.unwrap().contains("not allowed to call out"));
    assert!(h.calls.is_idle());
}

#[test]
fn video_blocked_and_unroutable_proposals_are_rejected() {
    let mut h = Harness::new();
    let out = h.deliver(&propose(U, N, "V", &["audio", "video"]));
    let reason = reason_of(jmi_child(&out[0]));
    assert_eq!(reason.condition, ReasonCondition::UnsupportedApplications);

    let out = h.deliver(&propose(U, "+19005550100@gw.example.com", "B", &["audio"]));
    let reason = reason_of(jmi_child(&out[0]));
    assert!(reason.text.unwrap().contains("blocked"));

    let out = h.deliver(&propose(U, "+445551234567@gw.example.com", "R", &["audio"]));
    let reason = reason_of(jmi_child(&out[0]));
    assert!(reason.text.unwrap().contains("no route"));
    assert!(h.calls.is_idle());
}

#[test]
fn session_initiate_is_acknowledged_then_terminated_with_a_reason() {
    let mut h = Harness::new();
    h.deliver(&propose(U, N, "S", &["audio"]));
    let out = h.deliver(&session_initiate(U, "S", "i1"));
    assert!(out.len() >= 2, "{out:?}");
    assert_eq!(out[0].attr("type"), Some("result"));
    assert_eq!(out[0].attr("id"), Some("i1"));
    assert_eq!(out[0].attr("to"), Some(U));
    let terminate = out.last().unwrap();
    assert_eq!(terminate.attr("type"), Some("set"));
    assert_eq!(terminate.attr("from"), Some(NR));
    let j = jingle_of(terminate);
    assert_eq!(j.action, xmpp::jingle::Action::SessionTerminate);
    assert_eq!(j.sid, "S");
    let reason = j.reason.unwrap();
    assert_eq!(reason.condition, ReasonCondition::FailedApplication);
    assert_eq!(reason.text.as_deref(), Some(NOT_BRIDGED_TEXT));

    // The client acknowledges the terminate: nothing is left.
    let id = terminate.attr("id").unwrap();
    let ack = format!(
        "<iq xmlns='jabber:component:accept' type='result' id='{id}' from='{U}' to='{NR}'/>"
    );
    assert!(h.deliver(&ack).is_empty());
    assert!(h.calls.is_idle(), "{:?}", h.calls);
}

#[test]
fn session_initiate_from_a_jid_not_allowed_is_declined() {
    let mut h = Harness::new();
    let from = "mallory@evil.example/x";
    let out = h.deliver(&session_initiate(from, "M", "i1"));
    assert_eq!(out[0].attr("type"), Some("result"));
    let reason = jingle_of(out.last().unwrap()).reason.unwrap();
    assert_eq!(reason.condition, ReasonCondition::SecurityError);
    assert!(reason.text.unwrap().contains("not allowed to call out"));
}

#[test]
fn jingle_for_an_unknown_session_gets_unknown_session() {
    let mut h = Harness::new();
    let xml = format!(
        "<iq xmlns='jabber:component:accept' type='set' id='t1' from='{U}' to='{NR}'>\
         <jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='nope'/></iq>"
    );
    let out = h.deliver(&xml);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].attr("type"), Some("error"));
    let error = out[0].children().find(|c| c.name() == "error").unwrap();
    assert!(error.children().any(|c| c.name() == "item-not-found"));
    assert!(error.children().any(|c| c.name() == "unknown-session"));
}

#[test]
fn unanswered_proposal_expires_after_the_ring_timeout() {
    let mut h = Harness::new();
    h.deliver(&propose(U, N, "S", &["audio"]));
    let deadline = h.calls.poll_timeout().expect("a timer");
    assert_eq!(deadline - h.now, Duration::from_secs(45));
    h.calls.handle_timeout(deadline - Duration::from_millis(1));
    assert!(!h.calls.is_idle());
    h.calls.handle_timeout(deadline);
    assert!(h.calls.is_idle());
    assert_eq!(h.calls.poll_timeout(), None);
}

#[test]
fn retract_forgets_the_proposal() {
    let mut h = Harness::new();
    h.deliver(&propose(U, N, "S", &["audio"]));
    let retract = format!(
        "<message xmlns='jabber:component:accept' type='chat' from='{U}' to='{N}'>\
         <retract xmlns='urn:xmpp:jingle-message:0' id='S'/></message>"
    );
    assert!(h.deliver(&retract).is_empty());
    assert!(h.calls.is_idle());
}

#[test]
fn terminate_all_finishes_proposals_and_ends_sessions() {
    let mut h = Harness::new();
    h.deliver(&propose(U, N, "P", &["audio"]));
    h.deliver(&propose(U, N, "S", &["audio"]));
    h.deliver(&session_initiate(U, "S", "i1"));
    let reason = Reason::with_text(ReasonCondition::GeneralError, "shutting down");
    h.calls.terminate_all(h.now, &reason);
    let out: Vec<Element> = std::iter::from_fn(|| h.calls.poll_transmit()).collect();
    let finish = out
        .iter()
        .find(|m| m.name() == "message")
        .expect("a finish");
    let child = jmi_child(finish);
    assert_eq!((child.name(), child.attr("id")), ("finish", Some("P")));
    assert_eq!(finish.attr("to"), Some(U));
    assert_eq!(reason_of(child).text.as_deref(), Some("shutting down"));
    // S had already been terminated: it gets no second session-terminate.
    assert!(
        !out.iter().any(|m| m.name() == "iq"),
        "{:?}",
        out.iter().map(String::from).collect::<Vec<_>>()
    );
    assert!(h.calls.is_idle(), "{:?}", h.calls);
}

#[test]
fn inbound_summary_names_who_hung_up_from_the_session_end_cause() {
    use super::inbound::hung_up_by_for;
    use super::outbound::HungUpBy;
    use xmpp::session::EndCause;
    assert_eq!(hung_up_by_for(&EndCause::PeerTerminated), HungUpBy::Client);
    assert_eq!(
        hung_up_by_for(&EndCause::LocalTerminated),
        HungUpBy::Gateway
    );
    assert_eq!(
        hung_up_by_for(&EndCause::IqTimeout {
            action: xmpp::jingle::Action::SessionInitiate
        }),
        HungUpBy::Gateway
    );
    assert_eq!(HungUpBy::Client.as_str(), "client");
}
