use super::*;

const GW: &str = "+15551230000@gw.example.com/gw";

fn el(xml: &str) -> Element {
    xml.parse().expect("xml")
}

fn jid(s: &str) -> Jid {
    Jid::new(s).expect("jid")
}

fn info(features: &[&str]) -> DiscoInfo {
    DiscoInfo {
        identities: vec![xmpp::caps::Identity::new("client", "phone", None)],
        features: features.iter().map(|f| (*f).to_owned()).collect(),
        forms: Vec::new(),
    }
}

fn rtp_features(jmi: bool) -> Vec<&'static str> {
    let mut f = RTP_AUDIO_FEATURES.to_vec();
    f.push(NS_CAPS);
    if jmi {
        f.push(NS_JMI);
    }
    f
}

/// Sends available presence from `from` with caps of `info` (or no caps), returns the
/// disco query it caused, if any.
fn present(
    p: &mut Presences,
    from: &str,
    info: Option<&DiscoInfo>,
    extra: &str,
) -> Option<Element> {
    let caps = info.map_or(String::new(), |i| {
        format!(
            "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://c.example/caps' ver='{}'/>",
            i.ver()
        )
    });
    let xml = format!(
        "<presence xmlns='jabber:component:accept' from='{from}' to='{GW}'>{extra}{caps}</presence>"
    );
    p.handle_presence(&el(&xml), &jid(from), &jid(GW));
    p.poll_transmit()
}

fn answer(p: &mut Presences, query: &Element, info: &DiscoInfo) -> bool {
    let node = query
        .get_child("query", NS_DISCO_INFO)
        .and_then(|q| q.attr("node"));
    let mut result = el(&format!(
        "<iq xmlns='jabber:component:accept' type='result' id='{}' from='{}' to='{}'/>",
        query.attr("id").unwrap(),
        query.attr("to").unwrap(),
        query.attr("from").unwrap()
    ));
    result.append_child(info.to_query(node));
    p.handle_iq_response(&result)
}

fn user() -> BareJid {
    BareJid::new("alice@example.org").unwrap()
}

#[test]
fn no_presence_rings_with_jmi_to_the_bare_jid() {
    let p = Presences::new();
    assert_eq!(p.ring_target(&user()), RingTarget::Jmi);
}

#[test]
fn a_jmi_resource_gets_jmi_and_caps_are_queried_once_per_ver() {
    let mut p = Presences::new();
    let jmi = info(&rtp_features(true));
    let q = present(&mut p, "alice@example.org/phone", Some(&jmi), "").expect("query");
    assert_eq!(q.attr("to"), Some("alice@example.org/phone"));
    assert_eq!(q.attr("from"), Some(GW));
    let node = q.get_child("query", NS_DISCO_INFO).unwrap().attr("node");
    assert_eq!(
        node,
        Some(format!("https://c.example/caps#{}", jmi.ver()).as_str())
    );
    // Features unknown while the query is out: JMI (it may support it).
    assert_eq!(p.ring_target(&user()), RingTarget::Jmi);
    // A second resource with the same ver: no second query.
    assert!(present(&mut p, "alice@example.org/tablet", Some(&jmi), "").is_none());
    assert!(answer(&mut p, &q, &jmi));
    assert_eq!(p.caps_count(), 1);
    assert_eq!(p.ring_target(&user()), RingTarget::Jmi);
}

#[test]
fn without_jmi_the_most_available_rtp_resource_gets_a_direct_initiate() {
    let mut p = Presences::new();
    let rtp = info(&rtp_features(false));
    let chat_only = info(&[NS_CAPS, "urn:xmpp:receipts"]);
    let q = present(
        &mut p,
        "alice@example.org/away",
        Some(&rtp),
        "<show>away</show>",
    )
    .unwrap();
    assert!(answer(&mut p, &q, &rtp));
    assert_eq!(
        p.ring_target(&user()),
        RingTarget::Direct("alice@example.org/away".into())
    );
    // Online beats away at the same priority.
    assert!(present(&mut p, "alice@example.org/desk", Some(&rtp), "").is_none());
    assert_eq!(
        p.ring_target(&user()),
        RingTarget::Direct("alice@example.org/desk".into())
    );
    // Higher priority beats a better show; dnd with priority 5.
    assert!(present(
        &mut p,
        "alice@example.org/dnd",
        Some(&rtp),
        "<show>dnd</show><priority>5</priority>"
    )
    .is_none());
    assert_eq!(
        p.ring_target(&user()),
        RingTarget::Direct("alice@example.org/dnd".into())
    );
    // A chat-only client of higher priority is not a candidate.
    let q = present(
        &mut p,
        "alice@example.org/bot",
        Some(&chat_only),
        "<priority>9</priority>",
    )
    .unwrap();
    assert!(answer(&mut p, &q, &chat_only));
    assert_eq!(
        p.ring_target(&user()),
        RingTarget::Direct("alice@example.org/dnd".into())
    );
    // Unavailable drops the resource.
    let off = el(&format!(
        "<presence xmlns='jabber:component:accept' type='unavailable' from='alice@example.org/dnd' to='{GW}'/>"
    ));
    p.handle_presence(&off, &jid("alice@example.org/dnd"), &jid(GW));
    assert_eq!(
        p.ring_target(&user()),
        RingTarget::Direct("alice@example.org/desk".into())
    );
}

#[test]
fn a_client_without_rtp_gets_jmi_and_offline_users_are_forgotten() {
    let mut p = Presences::new();
    let chat_only = info(&[NS_CAPS]);
    let q = present(&mut p, "alice@example.org/bot", Some(&chat_only), "").unwrap();
    assert!(answer(&mut p, &q, &chat_only));
    assert_eq!(p.ring_target(&user()), RingTarget::Jmi);
    assert_eq!(p.user_count(), 1);
    let off = el(&format!(
        "<presence xmlns='jabber:component:accept' type='unavailable' from='alice@example.org/bot' to='{GW}'/>"
    ));
    p.handle_presence(&off, &jid("alice@example.org/bot"), &jid(GW));
    assert_eq!(p.user_count(), 0);
}

#[test]
fn a_mismatching_ver_is_not_cached_but_counts_for_that_resource() {
    let mut p = Presences::new();
    let claimed = info(&rtp_features(true));
    let actual = info(&rtp_features(false));
    let q = present(&mut p, "alice@example.org/liar", Some(&claimed), "").unwrap();
    assert!(answer(&mut p, &q, &actual));
    assert_eq!(p.caps_count(), 0);
    assert_eq!(
        p.ring_target(&user()),
        RingTarget::Direct("alice@example.org/liar".into())
    );
    // An unrelated IQ result is not consumed.
    let other = el(
        "<iq xmlns='jabber:component:accept' type='result' id='x1' from='alice@example.org/liar'/>",
    );
    assert!(!p.handle_iq_response(&other));
}

#[test]
fn presence_without_caps_is_queried_without_node_and_errors_leave_it_unknown() {
    let mut p = Presences::new();
    let q = present(&mut p, "alice@example.org/old", None, "").unwrap();
    assert!(q
        .get_child("query", NS_DISCO_INFO)
        .unwrap()
        .attr("node")
        .is_none());
    let err = el(&format!(
        "<iq xmlns='jabber:component:accept' type='error' id='{}' from='alice@example.org/old'/>",
        q.attr("id").unwrap()
    ));
    assert!(p.handle_iq_response(&err));
    assert_eq!(p.ring_target(&user()), RingTarget::Jmi);
    // The next presence asks again; this time it answers.
    let q = present(&mut p, "alice@example.org/old", None, "").unwrap();
    assert!(answer(&mut p, &q, &info(&rtp_features(false))));
    assert_eq!(
        p.ring_target(&user()),
        RingTarget::Direct("alice@example.org/old".into())
    );
    // Known now: no more queries on presence updates.
    assert!(present(&mut p, "alice@example.org/old", None, "<show>away</show>").is_none());
}

#[test]
fn resources_and_caps_are_bounded() {
    let mut p = Presences::new();
    for i in 0..(MAX_RESOURCES + 5) {
        let _ = present(&mut p, &format!("alice@example.org/r{i}"), None, "");
    }
    assert_eq!(p.users.get(&user()).unwrap().len(), MAX_RESOURCES);
    for i in 0..(MAX_CAPS + 3) {
        let f = format!("urn:example:f{i}");
        let inf = info(&[f.as_str()]);
        let q = present(&mut p, &format!("u{i}@example.org/x"), Some(&inf), "").unwrap();
        assert!(answer(&mut p, &q, &inf));
    }
    assert_eq!(p.caps_count(), MAX_CAPS);
    assert!(p.pending.len() <= MAX_PENDING);
}
