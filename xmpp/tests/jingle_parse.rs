//! Parsing of real-shaped Jingle stanzas (INTEROP.md E.2/E.3/E.8 and F) and
//! parse → serialize → parse round trips.

use minidom::Element;
use xmpp::jingle::{
    Action, Candidate, CandidateType, Content, Creator, Jingle, ReasonCondition, Senders,
    SessionInfo, Setup, Transport,
};
use xmpp::session::JingleIq;

fn fixture(name: &str) -> Element {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.parse().unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn jingle_iq(name: &str) -> JingleIq {
    JingleIq::from_stanza(&fixture(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .unwrap_or_else(|| panic!("{name}: not a jingle iq"))
}

const ALL_JINGLE: &[&str] = &[
    "conversations_initiate.xml",
    "conversations_ice_restart.xml",
    "conversations_trickle.xml",
    "conversations_accept_inbound.xml",
    "dino_initiate.xml",
    "dino_trickle_component2.xml",
    "movim_initiate.xml",
    "movim_trickle_tcp.xml",
    "stanzajs_initiate.xml",
    "creator_responder_trickle.xml",
    "terminate_busy.xml",
    "session_info_ringing.xml",
    "session_info_mute.xml",
    "session_info_dtmf.xml",
    "content_add_video.xml",
    "video_only_initiate.xml",
    "audio_video_initiate.xml",
    "stanzajs_captured_initiate.xml",
    "stanzajs_captured_trickle.xml",
    "stanzajs_captured_accept.xml",
    "stanzajs_captured_restart.xml",
];

fn audio(iq: &JingleIq) -> &Content {
    iq.jingle
        .contents
        .iter()
        .find(|c| c.is_audio())
        .expect("an audio content")
}

#[test]
fn conversations_initiate_inline_candidates_and_trickle_option() {
    let iq = jingle_iq("conversations_initiate.xml");
    assert_eq!(iq.id, "EaRqw3bnTy8x");
    assert_eq!(iq.from, "alice@example.org/Conversations.x1Yz");
    assert_eq!(iq.to, "+15551234567@gw.example.com/gw");
    let j = &iq.jingle;
    assert_eq!(j.action, Action::SessionInitiate);
    assert_eq!(j.sid, "G7f2nQ0aLw9jXkB1cRt4");
    assert!(!j.has_non_audio());
    let c = audio(&iq);
    assert_eq!(c.name, "0");
    assert_eq!(c.creator, Creator::Initiator);
    assert_eq!(c.senders, Senders::Both);
    let d = c.rtp().unwrap();
    assert!(d.rtcp_mux);
    let names: Vec<_> = d
        .payload_types
        .iter()
        .map(|p| p.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "opus",
            "red",
            "G722",
            "PCMU",
            "PCMA",
            "CN",
            "telephone-event",
            "telephone-event"
        ]
    );
    let opus = &d.payload_types[0];
    assert_eq!(
        (opus.id, opus.clockrate, opus.channels),
        (111, Some(48000), 2)
    );
    assert_eq!(opus.parameters.len(), 2);
    assert_eq!(opus.rtcp_fb[0].kind, "transport-cc");
    let pcmu = d.payload_types.iter().find(|p| p.is("pcmu")).unwrap();
    assert_eq!((pcmu.id, pcmu.clockrate, pcmu.channels), (0, Some(8000), 1));
    // red's nameless fmtp value
    assert_eq!(d.payload_types[1].parameters[0].name, "");
    assert_eq!(d.payload_types[1].parameters[0].value, "111/111");
    assert_eq!(d.hdrexts.len(), 3);
    let t = c.ice_udp().unwrap();
    assert_eq!(t.ufrag.as_deref(), Some("Xb9q"));
    assert_eq!(t.pwd.as_deref(), Some("kJ4mT0zQ2vR8pL6nB1cW5yHd"));
    assert!(t.trickle);
    let fp = t.fingerprint.as_ref().unwrap();
    assert_eq!(fp.hash, "sha-256");
    assert_eq!(fp.setup, Some(Setup::ActPass));
    assert!(fp.value.starts_with("7A:2C:91") && fp.value.len() == 95);
    assert_eq!(t.candidates.len(), 4);
    // Conversations' candidates carry no `network`.
    assert!(t.candidates.iter().all(|c| c.network.is_none()));
    let relay = &t.candidates[3];
    assert_eq!(relay.kind, CandidateType::Relay);
    assert_eq!(relay.rel_addr.as_deref(), Some("198.51.100.7"));
    assert_eq!(relay.rel_port, Some(51234));
    assert_eq!(
        t.candidates[1].addr(),
        Some("[2001:db8:85a3::8a2e:370:7334]:43120".parse().unwrap())
    );
    assert!(t.candidates.iter().all(Candidate::is_usable_rtp_udp));
    let g = j.group.as_ref().unwrap();
    assert_eq!(
        (g.semantics.as_str(), g.contents.as_slice()),
        ("BUNDLE", &["0".to_owned()][..])
    );
}

#[test]
fn dino_component_two_candidates_and_no_telephone_event() {
    let iq = jingle_iq("dino_initiate.xml");
    let c = audio(&iq);
    assert_eq!(c.name, "audio");
    let d = c.rtp().unwrap();
    assert!(!d.payload_types.iter().any(|p| p.is("telephone-event")));
    assert_eq!(d.payload_types.len(), 6);
    let t = c.ice_udp().unwrap();
    assert_eq!(t.candidates.len(), 4);
    let comp2: Vec<_> = t.candidates.iter().filter(|c| c.component == 2).collect();
    assert_eq!(comp2.len(), 2);
    assert!(comp2.iter().all(|c| !c.is_usable_rtp_udp()));
    assert!(t.candidates.iter().all(|c| c.network == Some(0)));
    assert!(!t.trickle);

    let trickle = jingle_iq("dino_trickle_component2.xml");
    let t = trickle.jingle.contents[0].ice_udp().unwrap();
    assert_eq!(t.candidates[0].component, 2);
    assert_eq!(t.candidates[0].network, Some(1));
    assert_eq!(
        t.candidates[0].addr(),
        Some("[2001:db8::8]:52003".parse().unwrap())
    );
}

#[test]
fn movim_candidates_without_id_tcp_and_bare_initiator() {
    let iq = jingle_iq("movim_initiate.xml");
    // Movim writes a bare JID as initiator; the IQ from is the full JID.
    assert_eq!(iq.jingle.initiator.as_deref(), Some("carol@movim.example"));
    assert_eq!(iq.from, "carol@movim.example/movim7Qd2");
    let c = audio(&iq);
    let d = c.rtp().unwrap();
    let te = d
        .payload_types
        .iter()
        .find(|p| p.is("telephone-event"))
        .unwrap();
    assert_eq!(te.parameters.len(), 1);
    assert_eq!(te.parameters[0].name, "");
    assert_eq!(te.parameters[0].value, "0-15");
    assert_eq!(d.hdrexts[1].senders, Some(Senders::Initiator));
    let t = c.ice_udp().unwrap();
    assert_eq!(t.candidates.len(), 4);
    assert!(t
        .candidates
        .iter()
        .all(|c| c.id.is_none() && c.network.is_none()));
    let tcp = &t.candidates[1];
    assert_eq!(tcp.protocol, "tcp");
    assert_eq!(tcp.tcptype.as_deref(), Some("active"));
    assert!(!tcp.is_usable_rtp_udp());
    // protocol='UDP' is normalised
    assert_eq!(t.candidates[2].protocol, "udp");
    assert!(t.candidates[2].is_usable_rtp_udp());
    // mDNS candidate: kept, but no address
    assert!(t.candidates[3].ip.ends_with(".local"));
    assert_eq!(t.candidates[3].addr(), None);
    assert!(!t.candidates[3].is_usable_rtp_udp());

    let trickle = jingle_iq("movim_trickle_tcp.xml");
    let t = trickle.jingle.contents[0].ice_udp().unwrap();
    assert_eq!(t.candidates.len(), 2);
    assert_eq!(t.candidates[0].protocol, "tcp");
    assert_eq!(t.candidates[1].kind, CandidateType::Srflx);
}

#[test]
fn stanzajs_libwebrtc_shape() {
    let iq = jingle_iq("stanzajs_initiate.xml");
    let c = audio(&iq);
    let d = c.rtp().unwrap();
    assert_eq!(d.ssrc, Some(2_911_453_187));
    assert_eq!(d.rtcp_fb.len(), 1);
    assert_eq!(d.rtcp_fb[0].kind, "nack");
    assert_eq!(
        d.hdrexts.iter().map(|h| h.id).collect::<Vec<_>>(),
        [1, 2, 4]
    );
    assert!(d.rtcp_mux);
    let t = c.ice_udp().unwrap();
    assert!(t.candidates.is_empty());
    assert_eq!(t.fingerprint.as_ref().unwrap().setup, Some(Setup::ActPass));
    assert_eq!(iq.jingle.group.as_ref().unwrap().contents, ["0"]);
}

#[test]
fn creator_responder_variant_is_kept() {
    let iq = jingle_iq("creator_responder_trickle.xml");
    assert_eq!(iq.jingle.contents[0].creator, Creator::Responder);
    assert_eq!(iq.jingle.contents[0].name, "audio");
}

#[test]
fn ice_restart_has_new_credentials_and_no_candidates() {
    let iq = jingle_iq("conversations_ice_restart.xml");
    assert_eq!(iq.jingle.action, Action::TransportInfo);
    let t = iq.jingle.contents[0].ice_udp().unwrap();
    assert_eq!(t.ufrag.as_deref(), Some("Nw3e"));
    assert!(t.candidates.is_empty());
    assert!(t.fingerprint.is_some());
}

#[test]
fn terminate_reason_with_text() {
    let iq = jingle_iq("terminate_busy.xml");
    let r = iq.jingle.reason.unwrap();
    assert_eq!(r.condition, ReasonCondition::Busy);
    assert_eq!(r.text.as_deref(), Some("486 Busy Here"));
}

#[test]
fn session_info_payloads() {
    assert_eq!(
        jingle_iq("session_info_ringing.xml").jingle.info,
        Some(SessionInfo::Ringing)
    );
    assert_eq!(
        jingle_iq("session_info_mute.xml").jingle.info,
        Some(SessionInfo::Mute {
            creator: Creator::Initiator,
            name: Some("audio".to_owned())
        })
    );
    assert_eq!(
        jingle_iq("session_info_dtmf.xml").jingle.info,
        Some(SessionInfo::Dtmf {
            code: "5".to_owned(),
            duration: Some(400)
        })
    );
}

#[test]
fn video_contents_are_detectable() {
    assert!(jingle_iq("content_add_video.xml").jingle.has_non_audio());
    let v = jingle_iq("video_only_initiate.xml");
    assert!(v.jingle.has_non_audio());
    assert!(!v.jingle.contents.iter().any(Content::is_audio));
    let av = jingle_iq("audio_video_initiate.xml");
    assert!(av.jingle.has_non_audio());
    assert_eq!(
        av.jingle.contents.iter().filter(|c| c.is_audio()).count(),
        1
    );
    // The video content carries a VP8 payload with rtcp-fb subtypes.
    let vc = jingle_iq("content_add_video.xml");
    let pt = &vc.jingle.contents[0].rtp().unwrap().payload_types[0];
    assert_eq!(pt.rtcp_fb[0].subtype.as_deref(), Some("pli"));
}

#[test]
fn round_trip_every_fixture() {
    for name in ALL_JINGLE {
        let iq = jingle_iq(name);
        let el = iq.jingle.to_element();
        let again = Jingle::from_element(&el).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(iq.jingle, again, "{name}: element round trip");
        // Through text as well: what goes on the wire parses back equal.
        let mut buf = Vec::new();
        el.write_to(&mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let reparsed: Element = text
            .parse()
            .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
        assert_eq!(
            Jingle::from_element(&reparsed).unwrap(),
            iq.jingle,
            "{name}: text round trip"
        );
    }
}

#[test]
fn serialization_matches_interop_shapes() {
    // Nameless parameter, channels omitted when 1, and candidate attributes.
    let iq = jingle_iq("movim_initiate.xml");
    let el = audio(&iq).to_element();
    let d = el.children().find(|c| c.name() == "description").unwrap();
    let te = d
        .children()
        .find(|c| c.attr("name") == Some("telephone-event"))
        .unwrap();
    assert_eq!(te.attr("channels"), None);
    let p = te.children().next().unwrap();
    assert_eq!((p.attr("name"), p.attr("value")), (Some(""), Some("0-15")));
    let opus = d
        .children()
        .find(|c| c.attr("name") == Some("opus"))
        .unwrap();
    assert_eq!(opus.attr("channels"), Some("2"));
    let t = el.children().find(|c| c.name() == "transport").unwrap();
    let cand = t.children().find(|c| c.name() == "candidate").unwrap();
    assert_eq!(cand.attr("id"), None, "absent id stays absent");
    assert_eq!(cand.attr("generation"), Some("0"));
}

#[test]
fn lenient_on_unknown_and_missing_optional_parts() {
    let el: Element = "<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='s' \
        foo='bar'><unknown xmlns='x:y'/><content name='c'><transport \
        xmlns='urn:xmpp:jingle:transports:ice-udp:1'><candidate ip='192.0.2.1' port='1' \
        priority='1' component='1' foundation='f'/><candidate ip='192.0.2.1' port='x' \
        priority='1' component='1' foundation='f'/><candidate port='3'/></transport>\
        </content></jingle>"
        .parse()
        .unwrap();
    let j = Jingle::from_element(&el).unwrap();
    let c = &j.contents[0];
    assert_eq!(c.creator, Creator::Initiator, "missing creator defaults");
    let Some(Transport::IceUdp(t)) = &c.transport else {
        panic!("ice-udp")
    };
    // Only the usable candidate survives; defaults applied.
    assert_eq!(t.candidates.len(), 1);
    assert_eq!(t.candidates[0].protocol, "udp");
    assert_eq!(t.candidates[0].kind, CandidateType::Host);
    assert_eq!(t.candidates[0].generation, 0);
}

#[test]
fn unusable_stanzas_are_errors() {
    for bad in [
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate'/>",
        "<jingle xmlns='urn:xmpp:jingle:1' sid='s'/>",
        "<jingle xmlns='urn:xmpp:jingle:1' action='' sid='s'/>",
        "<jingle xmlns='urn:xmpp:jingle:0' action='session-initiate' sid='s'/>",
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s'><content/></jingle>",
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s'><content name='a'>\
         <description xmlns='urn:xmpp:jingle:apps:rtp:1'/></content></jingle>",
    ] {
        let el: Element = bad.parse().unwrap();
        assert!(
            matches!(
                Jingle::from_element(&el),
                Err(xmpp::error::Error::Malformed(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn stanzajs_captured_offer_and_answer() {
    // Captured from StanzaJS 12 + libwebrtc M106 (capture_stanzajs.js).
    let iq = jingle_iq("stanzajs_captured_initiate.xml");
    assert_eq!(iq.jingle.action, Action::SessionInitiate);
    let c = audio(&iq);
    let d = c.rtp().unwrap();
    assert!(d.rtcp_mux && d.ssrc.is_some());
    // rtcp-fb and rtp-hdrext come with namespace prefixes.
    let opus = d.payload_types.iter().find(|p| p.is("opus")).unwrap();
    assert_eq!(opus.rtcp_fb[0].kind, "transport-cc");
    assert_eq!(d.hdrexts.len(), 4);
    // StanzaJS writes a nameless fmtp value as <parameter name='111/111'/>.
    let red = d.payload_types.iter().find(|p| p.is("red")).unwrap();
    assert_eq!(red.parameters[0].name, "");
    assert_eq!(red.parameters[0].value, "111/111");
    assert!(d.payload_types.iter().any(|p| p.is("PCMU") && p.id == 0));
    let t = c.ice_udp().unwrap();
    assert_eq!(t.fingerprint.as_ref().unwrap().setup, Some(Setup::ActPass));
    // no id, no generation, no network; UDP and TCP on 127.0.0.1 and ::1
    assert_eq!(t.candidates.len(), 4);
    assert!(t
        .candidates
        .iter()
        .all(|c| c.id.is_none() && c.network.is_none()));
    assert_eq!(
        t.candidates
            .iter()
            .filter(|c| c.is_usable_rtp_udp())
            .count(),
        2
    );
    assert!(t
        .candidates
        .iter()
        .all(|c| c.addr().unwrap().ip().is_loopback()));
    assert_eq!(iq.jingle.group.as_ref().unwrap().contents, ["0"]);

    let acc = jingle_iq("stanzajs_captured_accept.xml");
    assert_eq!(acc.jingle.action, Action::SessionAccept);
    assert_eq!(
        audio(&acc)
            .ice_udp()
            .unwrap()
            .fingerprint
            .as_ref()
            .unwrap()
            .setup,
        Some(Setup::Active)
    );

    let tr = jingle_iq("stanzajs_captured_trickle.xml");
    let t = tr.jingle.contents[0].ice_udp().unwrap();
    assert!(t.ufrag.is_some() && t.pwd.is_none());
    assert_eq!(t.candidates.len(), 1);

    let rs = jingle_iq("stanzajs_captured_restart.xml");
    let t = rs.jingle.contents[0].ice_udp().unwrap();
    assert!(t.candidates.is_empty() && t.pwd.is_some());
    assert_ne!(t.ufrag, c.ice_udp().unwrap().ufrag);
}

#[test]
fn debug_output_redacts_the_ice_password() {
    let iq = jingle_iq("conversations_initiate.xml");
    let t = audio(&iq).ice_udp().unwrap();
    let shown = format!("{t:?}");
    assert!(shown.contains("Xb9q") && shown.contains("<redacted>"));
    assert!(!shown.contains("kJ4mT0zQ2vR8pL6nB1cW5yHd"));
}
