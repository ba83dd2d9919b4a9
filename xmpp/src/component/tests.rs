//! Tests of the responder with real stanza XML as Prosody delivers it.

use super::*;

const N: &str = "+15551234567@gw.example.com";
const NR: &str = "+15551234567@gw.example.com/gw";
const U: &str = "alice@example.org/Conversations.x1";
const UB: &str = "alice@example.org";

fn component() -> Component {
    Component::new(Config::new("gw.example.com"))
}

/// Parses one stanza written without the stream's default namespace.
fn st(xml: &str) -> Element {
    let i = xml.find([' ', '>', '/']).expect("a start tag");
    let with_ns = format!("{} xmlns='jabber:component:accept'{}", &xml[..i], &xml[i..]);
    with_ns.parse().expect("test stanza parses")
}

/// The stanzas to send; checks the invariants every sent stanza keeps.
fn sends(actions: &[Action]) -> Vec<&Element> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(e) => Some(e),
            _ => None,
        })
        .inspect(|e| {
            assert_eq!(e.ns(), NS_COMPONENT, "{e:?}");
            let from = Jid::new(e.attr("from").expect("from is set")).expect("from parses");
            assert_eq!(from.domain().as_str(), "gw.example.com", "{e:?}");
            assert!(e.attr("to").is_some(), "{e:?}");
        })
        .collect()
}

fn only_send(actions: &[Action]) -> &Element {
    let s = sends(actions);
    assert_eq!(s.len(), 1, "{actions:?}");
    assert_eq!(actions.len(), 1, "{actions:?}");
    s[0]
}

fn condition(e: &Element) -> (String, String) {
    assert_eq!(e.attr("type"), Some("error"), "{e:?}");
    let err = e.get_child("error", NS_COMPONENT).expect("error child");
    let cond = err
        .children()
        .find(|c| c.ns() == NS_STANZA_ERRORS)
        .expect("a defined condition");
    (err.attr("type").unwrap().to_owned(), cond.name().to_owned())
}

#[test]
fn e164_validation() {
    for ok in ["+15551234567", "+12", "+491701234567", "+123456789012345"] {
        assert!(is_e164(ok), "{ok}");
    }
    for bad in [
        "15551234567",
        "+0123",
        "+1",
        "+1234567890123456",
        "+1-555",
        "alice",
        "+",
        "",
    ] {
        assert!(!is_e164(bad), "{bad}");
    }
}

#[test]
fn subscribe_is_approved_reciprocated_and_followed_by_caps_presence() {
    let c = component();
    let out = c.handle_stanza(st(&format!(
        "<presence type='subscribe' from='{UB}' to='{N}'/>"
    )));
    let s = sends(&out);
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].attr("type"), Some("subscribed"));
    assert_eq!((s[0].attr("from"), s[0].attr("to")), (Some(N), Some(UB)));
    assert_eq!(s[1].attr("type"), Some("subscribe"));
    assert_eq!((s[1].attr("from"), s[1].attr("to")), (Some(N), Some(UB)));
    assert_eq!(s[2].attr("type"), None);
    assert_eq!((s[2].attr("from"), s[2].attr("to")), (Some(NR), Some(UB)));
    let caps = s[2].get_child("c", caps::NS_CAPS).expect("caps");
    assert_eq!(caps.attr("hash"), Some("sha-1"));
    assert_eq!(caps.attr("node"), Some("https://gw.example.com/caps"));
    assert_eq!(caps.attr("ver"), Some(c.ver()));
}

#[test]
fn subscribe_from_a_full_jid_is_answered_to_the_bare_jid() {
    let out = component().handle_stanza(st(&format!(
        "<presence type='subscribe' from='{U}' to='{N}' id='s1'/>"
    )));
    assert!(sends(&out).iter().all(|p| p.attr("to") == Some(UB)));
}

#[test]
fn probe_and_directed_presence_get_available_presence_with_caps() {
    let c = component();
    let p = only_send(&c.handle_stanza(st(&format!(
        "<presence type='probe' from='{UB}' to='{N}'/>"
    ))))
    .clone();
    assert_eq!(
        (p.attr("from"), p.attr("to"), p.attr("type")),
        (Some(NR), Some(UB), None)
    );
    assert!(p.has_child("c", caps::NS_CAPS));
    let out = c.handle_stanza(st(&format!("<presence from='{U}' to='{N}'/>")));
    let p = sends(&out)[0].clone();
    assert_eq!((p.attr("from"), p.attr("to")), (Some(NR), Some(U)));
    assert!(p.has_child("c", caps::NS_CAPS));
    // The call layer learns the resource.
    assert!(
        matches!(&out[..], [Action::Send(_), Action::Presence(i)] if i.number == "+15551234567" && i.from.as_str() == U),
        "{out:?}"
    );
}

#[test]
fn unsubscriptions_and_other_presence_types() {
    let c = component();
    let p = only_send(&c.handle_stanza(st(&format!(
        "<presence type='unsubscribe' from='{UB}' to='{N}'/>"
    ))))
    .clone();
    assert_eq!(
        (p.attr("from"), p.attr("type")),
        (Some(NR), Some("unavailable"))
    );
    for kind in ["unsubscribed", "subscribed", "unavailable", "error"] {
        let out = c.handle_stanza(st(&format!(
            "<presence type='{kind}' from='{U}' to='{N}'/>"
        )));
        // No answer; unavailability goes to the call layer.
        assert!(sends(&out).is_empty(), "{kind}: {out:?}");
        let to_calls = matches!(&out[..], [Action::Presence(_)]);
        assert_eq!(
            to_calls,
            matches!(kind, "unavailable" | "error"),
            "{kind}: {out:?}"
        );
    }
    // Available presence to the domain (a user registered with the gateway).
    let out = c.handle_stanza(st(&format!("<presence from='{U}' to='gw.example.com'/>")));
    assert!(
        matches!(&out[..], [Action::Presence(i)] if i.number.is_empty()),
        "{out:?}"
    );
}

#[test]
fn presence_to_the_domain() {
    let c = component();
    let out = c.handle_stanza(st(&format!(
        "<presence type='subscribe' from='{UB}' to='gw.example.com'/>"
    )));
    let s = sends(&out);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].attr("type"), Some("subscribed"));
    assert_eq!(s[1].attr("from"), Some("gw.example.com"));
    let p = only_send(&c.handle_stanza(st(&format!(
        "<presence type='probe' from='{UB}' to='gw.example.com'/>"
    ))))
    .clone();
    assert!(p.has_child("c", caps::NS_CAPS));
}

#[test]
fn number_disco_info_bare_full_and_caps_node() {
    let c = component();
    let caps_node = format!("https://gw.example.com/caps#{}", c.ver());
    for (to, node) in [
        (N, None),
        (NR, None),
        (NR, Some(caps_node.as_str())),
        (N, Some(caps_node.as_str())),
    ] {
        let node_attr = node.map(|n| format!(" node='{n}'")).unwrap_or_default();
        let out = c.handle_stanza(st(&format!(
            "<iq type='get' id='d1' from='{U}' to='{to}'><query xmlns='http://jabber.org/protocol/disco#info'{node_attr}/></iq>"
        )));
        let r = only_send(&out);
        assert_eq!(r.attr("type"), Some("result"));
        assert_eq!(
            (r.attr("id"), r.attr("from"), r.attr("to")),
            (Some("d1"), Some(to), Some(U))
        );
        let q = r.get_child("query", NS_DISCO_INFO).expect("query");
        assert_eq!(q.attr("node"), node);
        let info = DiscoInfo::from_query(q).unwrap();
        assert_eq!(info.identities.len(), 1);
        assert_eq!(
            (
                info.identities[0].category.as_str(),
                info.identities[0].kind.as_str()
            ),
            ("client", "phone")
        );
        let mut got: Vec<&str> = info.features.iter().map(String::as_str).collect();
        got.sort_unstable();
        let mut want = vec![
            "http://jabber.org/protocol/caps",
            "http://jabber.org/protocol/disco#info",
            "urn:xmpp:jingle:1",
            "urn:xmpp:jingle:apps:rtp:1",
            "urn:xmpp:jingle:apps:rtp:audio",
            "urn:xmpp:jingle:transports:ice-udp:1",
            "urn:xmpp:jingle:apps:dtls:0",
            "urn:xmpp:jingle-message:0",
            "urn:ietf:rfc:3264",
            "urn:xmpp:receipts",
        ];
        want.sort_unstable();
        assert_eq!(got, want);
        // What a client recomputes from the result matches the presence ver.
        assert_eq!(info.ver(), c.ver());
    }
}

#[test]
fn unknown_disco_node_is_item_not_found() {
    let c = component();
    let r = only_send(&c.handle_stanza(st(&format!(
        "<iq type='get' id='d2' from='{U}' to='{NR}'><query xmlns='http://jabber.org/protocol/disco#info' node='https://gw.example.com/caps#stale='/></iq>"
    ))))
    .clone();
    assert_eq!(condition(&r), ("cancel".into(), "item-not-found".into()));
    assert_eq!(r.attr("id"), Some("d2"));
    let r = only_send(&c.handle_stanza(st(&format!(
        "<iq type='get' id='d3' from='{U}' to='gw.example.com'><query xmlns='http://jabber.org/protocol/disco#info' node='x'/></iq>"
    ))))
    .clone();
    assert_eq!(condition(&r).1, "item-not-found");
}

#[test]
fn domain_disco_info_is_a_pstn_gateway() {
    let c = component();
    let r = only_send(&c.handle_stanza(st(&format!(
        "<iq type='get' id='g1' from='{U}' to='gw.example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    ))))
    .clone();
    let info = DiscoInfo::from_query(r.get_child("query", NS_DISCO_INFO).unwrap()).unwrap();
    assert_eq!(info.identities[0].category, "gateway");
    assert_eq!(info.identities[0].kind, "pstn");
    assert!(info.features.iter().any(|f| f == NS_DISCO_INFO));
    assert_eq!(r.attr("from"), Some("gw.example.com"));
}

#[test]
fn disco_items_are_empty() {
    let c = component();
    for to in ["gw.example.com", N, NR] {
        let r = only_send(&c.handle_stanza(st(&format!(
            "<iq type='get' id='i1' from='{U}' to='{to}'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>"
        ))))
        .clone();
        assert_eq!(r.attr("type"), Some("result"));
        let q = r.get_child("query", NS_DISCO_ITEMS).expect("query");
        assert_eq!(q.children().count(), 0);
    }
}

#[test]
fn pings_from_anyone_are_answered() {
    let c = component();
    for (from, to) in [
        (U, "gw.example.com"),
        ("example.org", "gw.example.com"),
        (U, N),
        ("bob@x.test/r", NR),
    ] {
        let r = only_send(&c.handle_stanza(st(&format!(
            "<iq type='get' id='p1' from='{from}' to='{to}'><ping xmlns='urn:xmpp:ping'/></iq>"
        ))))
        .clone();
        assert_eq!(r.attr("type"), Some("result"));
        assert_eq!(
            (r.attr("id"), r.attr("to"), r.attr("from")),
            (Some("p1"), Some(from), Some(to))
        );
        assert_eq!(r.children().count(), 0);
    }
}

#[test]
fn non_e164_localparts_are_item_not_found() {
    let c = component();
    for local in ["15551234567", "+0123", "+1", "+1234567890123456", "alice"] {
        let to = format!("{local}@gw.example.com");
        let r = only_send(&c.handle_stanza(st(&format!(
            "<iq type='get' id='x' from='{U}' to='{to}/gw'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        ))))
        .clone();
        assert_eq!(
            condition(&r),
            ("cancel".into(), "item-not-found".into()),
            "{local}"
        );
        let p = only_send(&c.handle_stanza(st(&format!(
            "<presence type='subscribe' from='{UB}' to='{to}'/>"
        ))))
        .clone();
        assert_eq!(p.name(), "presence");
        assert_eq!(condition(&p).1, "item-not-found", "{local}");
        assert_eq!(p.attr("from"), Some(to.as_str()));
        let m = only_send(&c.handle_stanza(st(&format!(
            "<message type='chat' id='m' from='{U}' to='{to}'><body>hi</body></message>"
        ))))
        .clone();
        assert_eq!(condition(&m).1, "item-not-found");
        // No error in reply to unavailable presence.
        assert!(c
            .handle_stanza(st(&format!(
                "<presence type='unavailable' from='{U}' to='{to}'/>"
            )))
            .is_empty());
    }
}

#[test]
fn unhandled_iqs_are_service_unavailable() {
    let c = component();
    for (kind, payload, to) in [
        ("get", "<query xmlns='jabber:iq:version'/>", NR),
        ("get", "<vCard xmlns='vcard-temp'/>", N),
        (
            "set",
            "<query xmlns='jabber:iq:register'/>",
            "gw.example.com",
        ),
        (
            "get",
            "<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='s'/>",
            NR,
        ),
        (
            "set",
            "<query xmlns='http://jabber.org/protocol/disco#info'/>",
            NR,
        ),
    ] {
        let r = only_send(&c.handle_stanza(st(&format!(
            "<iq type='{kind}' id='u1' from='{U}' to='{to}'>{payload}</iq>"
        ))))
        .clone();
        assert_eq!(
            condition(&r),
            ("cancel".into(), "service-unavailable".into()),
            "{payload}"
        );
        assert_eq!(r.attr("id"), Some("u1"));
        assert_eq!(r.attr("from"), Some(to));
    }
    // An IQ to a resource the number does not have.
    let r = only_send(&c.handle_stanza(st(&format!(
        "<iq type='get' id='u2' from='{U}' to='{N}/other'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    ))))
    .clone();
    assert_eq!(condition(&r).1, "service-unavailable");
}

#[test]
fn iq_results_and_errors_are_never_answered() {
    let c = component();
    for kind in ["result", "error"] {
        // To the domain: handed to the call layer (answers to its caps queries).
        let out = c.handle_stanza(st(&format!(
            "<iq type='{kind}' id='unknown' from='{U}' to='gw.example.com'/>"
        )));
        assert!(
            matches!(&out[..], [Action::IqResponse(i)] if i.number.is_empty()),
            "{out:?}"
        );
        assert!(c
            .handle_stanza(st(&format!(
                "<iq type='{kind}' id='x' from='{U}' to='alice@gw.example.com'/>"
            )))
            .is_empty());
        // To a number: the call layer matches the id.
        let out = c.handle_stanza(st(&format!(
            "<iq type='{kind}' id='j1' from='{U}' to='{NR}'/>"
        )));
        assert!(
            matches!(&out[..], [Action::IqResponse(i)] if i.number == "+15551234567" && i.stanza.attr("id") == Some("j1"))
        );
    }
    // Nor a message error, even malformed.
    assert!(c
        .handle_stanza(st(&format!(
            "<message type='error' from='{U}' to='{N}'><body>x</body></message>"
        )))
        .is_empty());
    assert!(c
        .handle_stanza(st(&format!(
            "<message type='error' from='{U}' to='not a jid@@'/>"
        )))
        .is_empty());
}

#[test]
fn jingle_iq_goes_to_the_call_layer() {
    let c = component();
    let out = c.handle_stanza(st(&format!(
        "<iq type='set' id='i1' from='{U}' to='{NR}'><jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='S' initiator='{U}'/></iq>"
    )));
    let [Action::Jingle(inb)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(inb.number, "+15551234567");
    assert_eq!(inb.from.as_str(), U);
    assert_eq!(inb.to.as_str(), NR);
    assert!(inb.stanza.has_child("jingle", NS_JINGLE));
}

#[test]
fn jmi_propose_is_receipted_and_goes_to_the_call_layer() {
    let c = component();
    let out = c.handle_stanza(st(&format!(
        "<message type='chat' id='jm-propose-S' from='{U}' to='{N}'>\
           <propose xmlns='urn:xmpp:jingle-message:0' id='S'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>\
           <request xmlns='urn:xmpp:receipts'/><store xmlns='urn:xmpp:hints'/>\
         </message>"
    )));
    assert_eq!(out.len(), 2, "{out:?}");
    let receipt = sends(&out)[0];
    assert_eq!(
        (receipt.attr("from"), receipt.attr("to")),
        (Some(NR), Some(U))
    );
    let received = receipt
        .get_child("received", NS_RECEIPTS)
        .expect("received");
    assert_eq!(received.attr("id"), Some("jm-propose-S"));
    assert!(
        matches!(&out[1], Action::Jmi(i) if i.stanza.has_child("propose", NS_JMI) && i.to.as_str() == N)
    );
    // Without a receipt request: only the JMI action.
    let out = c.handle_stanza(st(&format!(
        "<message type='chat' from='{U}' to='{NR}'><retract xmlns='urn:xmpp:jingle-message:0' id='S'/></message>"
    )));
    assert!(matches!(&out[..], [Action::Jmi(_)]));
}

#[test]
fn chat_messages_are_refused_and_chat_states_ignored() {
    let c = component();
    let r = only_send(&c.handle_stanza(st(&format!(
        "<message type='chat' id='c1' from='{U}' to='{N}'><body>hello</body></message>"
    ))))
    .clone();
    assert_eq!(condition(&r).1, "service-unavailable");
    assert_eq!(r.name(), "message");
    assert!(c
        .handle_stanza(st(&format!(
            "<message type='chat' from='{U}' to='{N}'><active xmlns='http://jabber.org/protocol/chatstates'/></message>"
        )))
        .is_empty());
}

#[test]
fn malformed_stanzas_get_the_right_error_or_are_dropped() {
    let c = component();
    // No from: nobody to answer.
    assert!(c
        .handle_stanza(st(&format!(
            "<iq type='get' id='a' to='{N}'><ping xmlns='urn:xmpp:ping'/></iq>"
        )))
        .is_empty());
    // Unparsable from: dropped.
    assert!(c
        .handle_stanza(st(&format!(
            "<iq type='get' id='a' from='@@' to='{N}'><ping xmlns='urn:xmpp:ping'/></iq>"
        )))
        .is_empty());
    // No to: bad-request from the domain.
    let r = only_send(&c.handle_stanza(st(&format!(
        "<iq type='get' id='b' from='{U}'><ping xmlns='urn:xmpp:ping'/></iq>"
    ))))
    .clone();
    assert_eq!(condition(&r), ("modify".into(), "bad-request".into()));
    assert_eq!(r.attr("from"), Some("gw.example.com"));
    // Unparsable to: jid-malformed.
    let r = only_send(&c.handle_stanza(st(&format!(
        "<iq type='get' id='c' from='{U}' to='a@b@gw.example.com'><ping xmlns='urn:xmpp:ping'/></iq>"
    ))))
    .clone();
    assert_eq!(condition(&r).1, "jid-malformed");
    assert_eq!(r.attr("from"), Some("gw.example.com"));
    // Another domain.
    let r = only_send(&c.handle_stanza(st(&format!(
        "<iq type='get' id='d' from='{U}' to='other.example.com'><ping xmlns='urn:xmpp:ping'/></iq>"
    ))))
    .clone();
    assert_eq!(condition(&r).1, "item-not-found");
    assert_eq!(r.attr("from"), Some("gw.example.com"));
    // Wrong stanza namespace.
    let e: Element = format!(
        "<iq xmlns='jabber:client' type='get' id='e' from='{U}' to='{N}'><ping xmlns='urn:xmpp:ping'/></iq>"
    )
    .parse()
    .unwrap();
    assert_eq!(condition(only_send(&c.handle_stanza(e))).1, "bad-request");
    // IQ without a type, with no payload, with two payloads.
    for xml in [
        format!("<iq id='f' from='{U}' to='{N}'><ping xmlns='urn:xmpp:ping'/></iq>"),
        format!("<iq type='get' id='g' from='{U}' to='{N}'/>"),
        format!("<iq type='get' id='h' from='{U}' to='{N}'><ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/></iq>"),
        format!("<iq type='bogus' id='i' from='{U}' to='{N}'><ping xmlns='urn:xmpp:ping'/></iq>"),
    ] {
        let r = only_send(&c.handle_stanza(st(&xml))).clone();
        assert_eq!(condition(&r), ("modify".into(), "bad-request".into()), "{xml}");
    }
    // Not a stanza at all.
    assert!(c
        .handle_stanza(st(&format!("<foo from='{U}' to='{N}'/>")))
        .is_empty());
}

#[test]
fn dropped_stanzas_get_policy_violation() {
    let c = component();
    let head = st(&format!("<iq type='set' id='big' from='{U}' to='{NR}'/>"));
    let r = only_send(&c.handle_dropped(Some(&head))).clone();
    assert_eq!(condition(&r), ("modify".into(), "policy-violation".into()));
    assert_eq!((r.attr("id"), r.attr("from")), (Some("big"), Some(NR)));
    let head = st(&format!(
        "<iq type='result' id='big' from='{U}' to='{NR}'/>"
    ));
    assert!(c.handle_dropped(Some(&head)).is_empty());
    let head = st(&format!("<presence from='{U}' to='{NR}'/>"));
    assert!(c.handle_dropped(Some(&head)).is_empty());
    assert!(c.handle_dropped(None).is_empty());
}
