//! Jingle Message Initiation (XEP-0353) parsing and the stanzas of
//! INTEROP.md E.2/E.3/E.5.

use minidom::Element;
use xmpp::jingle::{Reason, ReasonCondition};
use xmpp::jmi::{JingleMessage, JmiAction};

fn fixture(name: &str) -> Element {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap().parse().unwrap()
}

fn jmi(name: &str) -> JingleMessage {
    JingleMessage::from_message(&fixture(name))
        .unwrap()
        .unwrap()
}

#[test]
fn conversations_propose_is_audio_only() {
    let m = jmi("jmi_propose_conversations.xml");
    assert_eq!(m.id, "G7f2nQ0aLw9jXkB1cRt4");
    assert_eq!(
        m.action,
        JmiAction::Propose {
            media: vec!["audio".to_owned()]
        }
    );
    assert!(m.is_audio_only_propose());
}

#[test]
fn video_propose_is_detected() {
    let m = jmi("jmi_propose_video.xml");
    assert!(!m.is_audio_only_propose());
    let JmiAction::Propose { media } = &m.action else {
        panic!("propose")
    };
    assert_eq!(media, &["audio", "video"]);
}

#[test]
fn proceed_with_device_child() {
    let m = jmi("jmi_proceed_device.xml");
    assert_eq!(m, JingleMessage::new("T1nb0und5e55", JmiAction::Proceed));
}

#[test]
fn monal_finish_with_migrated() {
    let m = jmi("jmi_finish_monal.xml");
    assert_eq!(
        m.action,
        JmiAction::Finish {
            reason: Some(Reason::with_text(ReasonCondition::Success, "Success")),
            migrated: Some("M0n4l5e56".to_owned()),
        }
    );
}

#[test]
fn retract_reject_accept() {
    assert_eq!(
        jmi("jmi_retract_movim.xml").action,
        JmiAction::Retract {
            reason: Some(Reason::new(ReasonCondition::Cancel))
        }
    );
    assert_eq!(
        jmi("jmi_reject_busy.xml").action,
        JmiAction::Reject {
            reason: Some(Reason::new(ReasonCondition::Busy))
        }
    );
    assert_eq!(jmi("jmi_ringing_dino_accept.xml").action, JmiAction::Accept);
}

#[test]
fn messages_without_jmi_or_without_id() {
    let plain: Element = "<message xmlns='jabber:client'><body>hi</body></message>"
        .parse()
        .unwrap();
    assert_eq!(JingleMessage::from_message(&plain).unwrap(), None);
    let no_id: Element = "<message xmlns='jabber:client'><ringing \
        xmlns='urn:xmpp:jingle-message:0'/></message>"
        .parse()
        .unwrap();
    assert!(JingleMessage::from_message(&no_id).is_err());
}

#[test]
fn round_trip_all_actions() {
    let all = [
        JingleMessage::propose_audio("S"),
        JingleMessage::new("S", JmiAction::Ringing),
        JingleMessage::new("S", JmiAction::Proceed),
        JingleMessage::new("S", JmiAction::Accept),
        JingleMessage::new("S", JmiAction::Reject { reason: None }),
        JingleMessage::new(
            "S",
            JmiAction::Reject {
                reason: Some(Reason::new(ReasonCondition::UnsupportedApplications)),
            },
        ),
        JingleMessage::new(
            "S",
            JmiAction::Retract {
                reason: Some(Reason::new(ReasonCondition::Cancel)),
            },
        ),
        JingleMessage::new(
            "S",
            JmiAction::Finish {
                reason: Some(Reason::with_text(ReasonCondition::Success, "bye")),
                migrated: Some("S2".to_owned()),
            },
        ),
    ];
    for m in all {
        let msg = m.to_message("n@gw/gw", "u@example.org/c");
        let mut buf = Vec::new();
        msg.write_to(&mut buf).unwrap();
        let back: Element = String::from_utf8(buf).unwrap().parse().unwrap();
        assert_eq!(JingleMessage::from_message(&back).unwrap(), Some(m));
    }
}

#[test]
fn proceed_stanza_as_in_interop_e2() {
    let m = JingleMessage::new("S", JmiAction::Proceed).to_message(
        "+15551234567@gw.example.com/gw",
        "alice@example.org/Conversations.x1",
    );
    let expected: Element = "<message xmlns='jabber:component:accept' type='chat' \
        id='jm-proceed-S' from='+15551234567@gw.example.com/gw' \
        to='alice@example.org/Conversations.x1'>\
        <proceed xmlns='urn:xmpp:jingle-message:0' id='S'/>\
        <store xmlns='urn:xmpp:hints'/></message>"
        .parse()
        .unwrap();
    assert_eq!(m, expected);
}

#[test]
fn propose_stanza_as_in_interop_e3() {
    let m = JingleMessage::propose_audio("T")
        .to_message("+18005550100@gw.example.com/gw", "alice@example.org");
    let expected: Element = "<message xmlns='jabber:component:accept' type='chat' \
        id='jm-propose-T' from='+18005550100@gw.example.com/gw' to='alice@example.org'>\
        <propose xmlns='urn:xmpp:jingle-message:0' id='T'>\
        <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>\
        <request xmlns='urn:xmpp:receipts'/><store xmlns='urn:xmpp:hints'/></message>"
        .parse()
        .unwrap();
    assert_eq!(m, expected);
}

#[test]
fn retract_and_finish_stanzas_as_in_interop_e3_e5() {
    let retract = JingleMessage::new(
        "T",
        JmiAction::Retract {
            reason: Some(Reason::new(ReasonCondition::Cancel)),
        },
    )
    .to_message("+18005550100@gw.example.com/gw", "alice@example.org/Dino.y");
    let expected: Element = "<message xmlns='jabber:component:accept' type='chat' \
        id='jm-retract-T' from='+18005550100@gw.example.com/gw' to='alice@example.org/Dino.y'>\
        <retract xmlns='urn:xmpp:jingle-message:0' id='T'><reason xmlns='urn:xmpp:jingle:1'>\
        <cancel/></reason></retract><store xmlns='urn:xmpp:hints'/></message>"
        .parse()
        .unwrap();
    assert_eq!(retract, expected);

    let finish = JingleMessage::new(
        "S",
        JmiAction::Finish {
            reason: Some(Reason::new(ReasonCondition::Success)),
            migrated: None,
        },
    )
    .to_message("+15551234567@gw.example.com/gw", "alice@example.org");
    let expected: Element = "<message xmlns='jabber:component:accept' type='chat' \
        id='jm-finish-S' from='+15551234567@gw.example.com/gw' to='alice@example.org'>\
        <finish xmlns='urn:xmpp:jingle-message:0' id='S'><reason xmlns='urn:xmpp:jingle:1'>\
        <success/></reason></finish><store xmlns='urn:xmpp:hints'/></message>"
        .parse()
        .unwrap();
    assert_eq!(finish, expected);
}

#[test]
fn receipt_for_our_propose() {
    let r: Element = "<message xmlns='jabber:client' from='alice@example.org/c' \
        to='+18005550100@gw.example.com/gw'><received xmlns='urn:xmpp:receipts' \
        id='jm-propose-T1nb0und5e55'/></message>"
        .parse()
        .unwrap();
    assert_eq!(xmpp::jmi::propose_receipt(&r), Some("T1nb0und5e55"));
    let other: Element = "<message xmlns='jabber:client'><received xmlns='urn:xmpp:receipts' \
        id='msg-42'/></message>"
        .parse()
        .unwrap();
    assert_eq!(xmpp::jmi::propose_receipt(&other), None);
    assert_eq!(
        xmpp::jmi::propose_receipt(&fixture("jmi_propose_conversations.xml")),
        None
    );
}
