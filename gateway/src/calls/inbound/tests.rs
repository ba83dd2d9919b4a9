//! How an inbound call rings, against a real SIP user agent and a raw UDP trunk on
//! loopback, with the call layer's clock virtual: a user whose only online resource
//! lacks JMI gets `session-initiate` directly (INTEROP.md E.3), its `session-terminate`
//! maps to the SIP status (E.6), it rings out with 480; a user without known presence
//! gets the JMI propose to the bare JID.

use minidom::Element;
use xmpp::caps::{DiscoInfo, Identity};
use xmpp::jingle::{ns, Action as JingleAction, Jingle, ReasonCondition};

use super::super::presence::{NS_JMI, RTP_AUDIO_FEATURES};
use super::super::test_support::Bed;

const CALLER: &str = "+15550001111";
const DEVICE: &str = "alice@example.org/gajim";

/// What the inbound tests do with [`Bed`].
impl Bed {
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

    /// The trunk calls the DID; returns what the call layer sent once the media driver
    /// is ready (the propose or the session-initiate).
    async fn incoming(&mut self) -> Vec<Element> {
        let ua = self.ua.local_addr();
        let port = self.rtp.local_addr().unwrap().port();
        self.trunk.invite(ua, CALLER, "direct1", port).await;
        let event = self.next_sip("INVITE").await;
        assert!(matches!(event, sip::Event::Incoming { .. }), "{event:?}");
        self.calls.handle_sip(self.now, event);
        let mut out = self.flush();
        out.extend(self.media_ready().await);
        out
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
    let mut bed = Bed::start("", "").await;
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
    let response = bed.trunk.final_response().await;
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
    let mut bed = Bed::start("", "").await;
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
    let response = bed.trunk.final_response().await;
    assert!(response.starts_with("SIP/2.0 480"), "{response}");
}

#[tokio::test]
async fn jmi_capable_or_unknown_users_get_the_propose() {
    // Nothing known: the propose to the bare JID (offline push still rings).
    let mut bed = Bed::start("", "").await;
    let out = bed.incoming().await;
    assert!(has_propose(&out), "{out:?}");
    assert!(jingles(&out, JingleAction::SessionInitiate).is_empty());
    drop(bed);
    // A JMI-capable resource: the propose too.
    let mut bed = Bed::start("", "").await;
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
    let mut bed = Bed::start("direct_initiate = false", "").await;
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
    let mut bed = Bed::start("", "").await;
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
        let (out, _) = bed.next_input("the media driver restarts ICE").await;
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
