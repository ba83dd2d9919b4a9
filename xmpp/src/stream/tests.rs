//! Tests of the component stream against scripted server bytes, in virtual time.
#![allow(clippy::disallowed_methods)] // tests take their start time from the clock

use super::*;

const SERVER_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' from='gw.localhost' id='abc123'>";

fn config() -> Config {
    Config::new("gw.localhost", "s3cr3t")
}

fn out(s: &mut Stream) -> String {
    let mut all = Vec::new();
    while let Some(b) = s.poll_transmit() {
        all.extend(b);
    }
    String::from_utf8(all).expect("utf-8")
}

fn events(s: &mut Stream) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// A stream that completed the handshake at `t0`.
fn connected(t0: Instant) -> Stream {
    let mut s = Stream::new(config(), t0);
    let _ = out(&mut s);
    s.handle_bytes(t0, SERVER_HEADER.as_bytes());
    let _ = out(&mut s);
    s.handle_bytes(t0, b"<handshake/>");
    assert_eq!(events(&mut s), vec![Event::Connected]);
    s
}

#[test]
fn handshake_hashes_stream_id_and_secret() {
    let t0 = Instant::now();
    let mut s = Stream::new(config(), t0);
    let header = out(&mut s);
    assert!(
        header.contains("xmlns='jabber:component:accept'"),
        "{header}"
    );
    assert!(header.contains("to='gw.localhost'"), "{header}");
    assert!(!s.is_connected());
    // The header may arrive in pieces.
    let (a, b) = SERVER_HEADER.as_bytes().split_at(40);
    s.handle_bytes(t0, a);
    assert_eq!(out(&mut s), "");
    s.handle_bytes(t0, b);
    assert_eq!(s.stream_id(), Some("abc123"));
    // sha1("abc123" + "s3cr3t"), computed with sha1sum(1).
    assert_eq!(
        out(&mut s),
        "<handshake>49fc1ea83a54123ae5a273341bed522fe7d4b91c</handshake>"
    );
    assert!(events(&mut s).is_empty());
    s.handle_bytes(t0, b"<handshake/>");
    assert_eq!(events(&mut s), vec![Event::Connected]);
    assert!(s.is_connected());
}

#[test]
fn wrong_secret_is_reported_as_such() {
    let t0 = Instant::now();
    let mut s = Stream::new(config(), t0);
    s.handle_bytes(t0, SERVER_HEADER.as_bytes());
    let _ = out(&mut s);
    s.handle_bytes(
        t0,
        b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Given token does not match calculated token</text></stream:error></stream:stream>",
    );
    assert_eq!(
        events(&mut s),
        vec![Event::Closed {
            reason: Some(Error::SecretRejected)
        }]
    );
    assert_eq!(out(&mut s), "</stream:stream>");
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn stream_error_after_connect_carries_condition_and_text() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.handle_bytes(
        t0,
        b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced</text></stream:error>",
    );
    let ev = events(&mut s);
    assert_eq!(
        ev,
        vec![Event::Closed {
            reason: Some(Error::StreamError {
                condition: "conflict".into(),
                text: Some("Replaced".into())
            })
        }]
    );
    // Bytes after the close are ignored.
    s.handle_bytes(t0, b"<iq/>");
    assert!(events(&mut s).is_empty());
}

#[test]
fn server_closing_the_stream_is_answered_and_reported() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.handle_bytes(
        t0,
        b"<message from='a@b' to='+15551230000@gw.localhost'/></stream:stream>",
    );
    let ev = events(&mut s);
    assert!(matches!(&ev[0], Event::Stanza(m) if m.is("message", NS_COMPONENT)));
    assert_eq!(
        ev[1],
        Event::Closed {
            reason: Some(Error::StreamClosed)
        }
    );
    assert_eq!(out(&mut s), "</stream:stream>");
}

#[test]
fn eof_reports_closed() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.handle_eof(t0);
    assert_eq!(
        events(&mut s),
        vec![Event::Closed {
            reason: Some(Error::StreamClosed)
        }]
    );
}

#[test]
fn local_close_waits_for_the_server() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.close(t0);
    assert_eq!(out(&mut s), "</stream:stream>");
    assert!(events(&mut s).is_empty());
    s.handle_bytes(t0, b"</stream:stream>");
    assert_eq!(events(&mut s), vec![Event::Closed { reason: None }]);
}

#[test]
fn pings_the_server_when_idle_and_accepts_the_reply() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let due = s.poll_timeout().expect("ping timer");
    assert_eq!(due, t0 + Duration::from_secs(60));
    // Nothing happens early.
    s.handle_timeout(due - Duration::from_millis(1));
    assert_eq!(out(&mut s), "");
    s.handle_timeout(due);
    let ping = out(&mut s);
    assert_eq!(
        ping,
        "<iq type='get' id='jsg-ping-1' from='gw.localhost' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
    );
    assert_eq!(s.poll_timeout(), Some(due + Duration::from_secs(30)));
    // Prosody answers with an error when the target has no ping module; any
    // reply counts, and it is not passed up.
    let t1 = due + Duration::from_secs(1);
    s.handle_bytes(
        t1,
        b"<iq type='result' id='jsg-ping-1' from='localhost' to='gw.localhost'/>",
    );
    assert!(events(&mut s).is_empty());
    assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_secs(60)));
    s.handle_timeout(t1 + Duration::from_secs(60));
    assert!(out(&mut s).contains("id='jsg-ping-2'"));
}

#[test]
fn pings_go_out_even_when_the_server_is_chatty() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    let _ = out(&mut s);
    for secs in [10, 20, 30, 40, 50] {
        s.handle_bytes(
            t0 + Duration::from_secs(secs),
            b"<presence from='a@b' to='+15551230000@gw.localhost' type='probe'/>",
        );
    }
    assert_eq!(events(&mut s).len(), 5);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    s.handle_timeout(t0 + Duration::from_secs(60));
    assert!(out(&mut s).contains("<ping xmlns='urn:xmpp:ping'/>"));
}

#[test]
fn unanswered_ping_closes_the_stream() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.ping_interval(Duration::from_secs(10))
        .ping_timeout(Duration::from_secs(5))
        .ping_to("example.net");
    let mut s = Stream::new(cfg, t0);
    s.handle_bytes(t0, SERVER_HEADER.as_bytes());
    s.handle_bytes(t0, b"<handshake/>");
    let _ = events(&mut s);
    let _ = out(&mut s);
    let t1 = t0 + Duration::from_secs(10);
    s.handle_timeout(t1);
    assert!(out(&mut s).contains("to='example.net'"));
    // A reply with another id does not count.
    s.handle_bytes(t1, b"<iq type='result' id='other' from='example.net'/>");
    assert!(matches!(&events(&mut s)[..], [Event::Stanza(_)]));
    s.handle_timeout(t1 + Duration::from_secs(5));
    assert_eq!(
        events(&mut s),
        vec![Event::Closed {
            reason: Some(Error::PingTimeout(Duration::from_secs(5)))
        }]
    );
    assert!(out(&mut s).contains("connection-timeout"));
}

#[test]
fn handshake_timeout() {
    let t0 = Instant::now();
    let mut s = Stream::new(config(), t0);
    s.handle_bytes(t0, SERVER_HEADER.as_bytes());
    let t = s.poll_timeout().expect("handshake timer");
    assert_eq!(t, t0 + Duration::from_secs(30));
    s.handle_timeout(t);
    assert_eq!(
        events(&mut s),
        vec![Event::Closed {
            reason: Some(Error::HandshakeTimeout(Duration::from_secs(30)))
        }]
    );
}

#[test]
fn wrong_stream_namespace_is_refused() {
    let t0 = Instant::now();
    let mut s = Stream::new(config(), t0);
    s.handle_bytes(t0, b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client' id='x'>");
    assert!(matches!(
        &events(&mut s)[..],
        [Event::Closed {
            reason: Some(Error::BadStreamHeader(_))
        }]
    ));
    assert!(out(&mut s).contains("<invalid-namespace"));
}

#[test]
fn bad_stanzas_never_end_the_stream() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.max_stanza_size(1000).max_depth(5);
    let mut s = Stream::new(cfg, t0);
    s.handle_bytes(t0, SERVER_HEADER.as_bytes());
    s.handle_bytes(t0, b"<handshake/>");
    let _ = events(&mut s);
    let _ = out(&mut s);
    let mut input = String::new();
    // Garbage elements, wrong namespaces, a huge attribute, deep nesting,
    // an undeclared prefix; then a good stanza.
    input.push_str("<foo xmlns='urn:garbage'><bar/></foo>");
    input.push_str("<iq xmlns='jabber:client' type='get' id='ns'/>");
    let x = "x".repeat(600);
    input.push_str(&format!("<message id='huge' a='{x}' b='{x}'/>"));
    input.push_str(&format!(
        "<iq id='deep'>{}{}</iq>",
        "<a>".repeat(10),
        "</a>".repeat(10)
    ));
    input.push_str("<iq id='prefix'><q:query/></iq>");
    input.push_str("<iq type='get' id='good' from='a@b/c' to='gw.localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    // 1,200 of them.
    for _ in 0..200 {
        s.handle_bytes(t0, input.as_bytes());
    }
    let ev = events(&mut s);
    assert_eq!(ev.len(), 200 * 6);
    assert!(s.is_connected());
    assert!(matches!(&ev[0], Event::Stanza(e) if e.is("foo", "urn:garbage")));
    assert!(matches!(&ev[1], Event::Stanza(e) if e.is("iq", "jabber:client")));
    assert!(
        matches!(&ev[2], Event::StanzaDropped { head: Some(h), reason: Error::StanzaTooLarge { limit: 1000 } } if h.attr("id") == Some("huge")),
        "{:?}",
        ev[2]
    );
    assert!(matches!(
        &ev[3],
        Event::StanzaDropped {
            reason: Error::TooDeep { limit: 5 },
            ..
        }
    ));
    assert!(matches!(
        &ev[4],
        Event::StanzaDropped {
            reason: Error::Malformed(_),
            ..
        }
    ));
    assert!(matches!(&ev[5], Event::Stanza(e) if e.attr("id") == Some("good")));
    assert_eq!(out(&mut s), "");
}

#[test]
fn broken_xml_closes_with_not_well_formed() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.handle_bytes(t0, b"<message id='ok'/><iq><</iq>");
    let ev = events(&mut s);
    assert!(matches!(&ev[0], Event::Stanza(e) if e.attr("id") == Some("ok")));
    assert!(matches!(
        &ev[1],
        Event::Closed {
            reason: Some(Error::NotWellFormed(_))
        }
    ));
    let bytes = out(&mut s);
    assert!(
        bytes.contains("<not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{bytes}"
    );
    assert!(bytes.ends_with("</stream:stream>"));
}

#[test]
fn token_longer_than_the_limit_is_a_policy_violation() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.max_stanza_size(1000);
    let mut s = Stream::new(cfg, t0);
    s.handle_bytes(t0, SERVER_HEADER.as_bytes());
    s.handle_bytes(t0, b"<handshake/>");
    let _ = events(&mut s);
    let _ = out(&mut s);
    s.handle_bytes(
        t0,
        format!("<message a='{}'/>", "x".repeat(5000)).as_bytes(),
    );
    assert_eq!(
        events(&mut s),
        vec![Event::Closed {
            reason: Some(Error::StanzaTooLarge { limit: 1000 })
        }]
    );
    assert!(out(&mut s).contains("<policy-violation"));
}

#[test]
fn send_serializes_and_checks_state_and_namespace() {
    let t0 = Instant::now();
    let mut s = Stream::new(config(), t0);
    let msg = Element::builder("message", NS_COMPONENT)
        .attr(rxml::NcName::try_from("to").unwrap(), "a@b")
        .build();
    assert_eq!(s.send(&msg), Err(Error::ApiMisuse("stream not connected")));
    let mut s = connected(t0);
    let _ = out(&mut s);
    s.send(&msg).unwrap();
    let bytes = out(&mut s);
    assert!(bytes.starts_with("<message"), "{bytes}");
    assert!(bytes.contains("to='a@b'"), "{bytes}");
    let client = Element::builder("message", "jabber:client").build();
    assert!(matches!(s.send(&client), Err(Error::ApiMisuse(_))));
}

#[test]
fn config_debug_hides_the_secret() {
    let c = config();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("s3cr3t"), "{dbg}");
    assert_eq!(c.ping_to, "localhost");
    assert_eq!(Config::new("localhost", "x").ping_to, "localhost");
}

/// Seeded mutations of a valid server stream (byte flips, cuts, repeats)
/// never panic, and the stream always ends in a defined state.
#[test]
fn mutated_streams_never_panic() {
    let t0 = Instant::now();
    let base = format!(
        "{SERVER_HEADER}<handshake/><iq type='get' id='1' from='a@b/c' to='gw.localhost'><query xmlns='http://jabber.org/protocol/disco#info' node='n'/></iq><message from='a@b' to='+1555@gw.localhost'><body>h&amp;i</body><x xmlns:p='urn:p'><p:y p:z='1'/></x></message><presence type='probe' from='a@b' to='+1555@gw.localhost'/></stream:stream>"
    )
    .into_bytes();
    let component = crate::component::Component::new(crate::component::Config::new("gw.localhost"));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..2000 {
        let mut input = base.clone();
        for _ in 0..(rand() % 4 + 1) {
            let i = (rand() as usize) % input.len();
            match rand() % 3 {
                0 => input[i] = rand() as u8,
                1 => {
                    input.remove(i);
                }
                _ => {
                    let j = (i + (rand() as usize) % 16).min(input.len());
                    let piece: Vec<u8> = input[i..j].to_vec();
                    input.splice(i..i, piece);
                }
            }
        }
        let mut cfg = config();
        cfg.max_stanza_size(120).max_depth(3);
        let mut s = Stream::new(cfg, t0);
        // Feed in random-sized pieces.
        let mut rest = &input[..];
        while !rest.is_empty() {
            let n = ((rand() as usize) % 40 + 1).min(rest.len());
            s.handle_bytes(t0, &rest[..n]);
            rest = &rest[n..];
        }
        s.handle_eof(t0);
        let ev = events(&mut s);
        // Whatever came through, the responder copes with it.
        for e in &ev {
            if let Event::Stanza(el) = e {
                let _ = component.handle_stanza(el.clone());
            }
        }
        assert!(
            matches!(ev.last(), Some(Event::Closed { .. })),
            "{:?}",
            String::from_utf8_lossy(&input)
        );
        let _ = out(&mut s);
    }
}
