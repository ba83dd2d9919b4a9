//! Robustness: every fixture with one attribute or one empty element removed
//! (thousands of variants) never panics, and every Jingle IQ set gets exactly
//! one answer — a result or a stanza error — from the session (or the
//! `bad-request` helper when it cannot be parsed).

use std::time::Instant;

use minidom::Element;
use xmpp::jingle::{
    Action, Application, Content, Creator, IceUdpTransport, PayloadType, RtpDescription, Transport,
};
use xmpp::session::{bad_request_reply, JingleIq, JingleSession, SessionConfig};

const FIXTURES: &[&str] = &[
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

fn read(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Every variant of `text` with one `name='value'` (or `name="value"`)
/// attribute removed.
fn without_one_attribute(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(off) = text[i..].find(['\'', '"']) {
        let open = i + off;
        if b[open - 1] != b'=' {
            i = open + 1;
            continue;
        }
        let quote = b[open] as char;
        let start = text[..open].rfind(' ').unwrap();
        let end = open + 1 + text[open + 1..].find(quote).unwrap() + 1;
        if b[start + 1] != b'<' {
            out.push(format!("{}{}", &text[..start], &text[end..]));
        }
        i = end;
    }
    out
}

/// Every variant of `text` with one self-closing element removed.
fn without_one_empty_element(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = text[i..].find('<') {
        let start = i + off;
        let end = start + text[start..].find('>').unwrap() + 1;
        if text[..end].ends_with("/>") && !text[start..].starts_with("<iq") {
            out.push(format!("{}{}", &text[..start], &text[end..]));
        }
        i = start + 1;
    }
    out
}

/// A live session for the sid and peer of `orig`, pending or active.
fn live_session(orig: &JingleIq, active: bool) -> JingleSession {
    let mut c = Content::new(Creator::Initiator, "0");
    c.description = Some(Application::Rtp(RtpDescription::audio(vec![
        PayloadType::new(0, "PCMU", 8000),
    ])));
    c.transport = Some(Transport::IceUdp(IceUdpTransport::default()));
    let mut names: Vec<String> = orig
        .jingle
        .contents
        .iter()
        .map(|c| c.name.clone())
        .collect();
    names.push("0".to_owned());
    let mut init = orig.clone();
    init.jingle.action = Action::SessionInitiate;
    init.jingle.contents = names
        .into_iter()
        .map(|n| Content {
            name: n,
            ..c.clone()
        })
        .collect();
    let now = Instant::now();
    let mut s = JingleSession::responder(now, &SessionConfig::default(), init).unwrap();
    if active {
        let mut answer = c.clone();
        answer.name = "0".to_owned();
        s.accept(now, vec![answer], None).unwrap();
    }
    while s.poll_transmit().is_some() {}
    while s.poll_event().is_some() {}
    s
}

fn answers(out: &[Element], id: &str, to: &str) -> usize {
    out.iter()
        .filter(|el| {
            matches!(el.attr("type"), Some("result" | "error"))
                && el.attr("id") == Some(id)
                && el.attr("to") == Some(to)
        })
        .count()
}

#[test]
fn every_variant_is_answered_exactly_once() {
    let mut checked = 0;
    for name in FIXTURES {
        let text = read(name);
        let orig = JingleIq::from_stanza(&text.parse().unwrap())
            .unwrap()
            .unwrap();
        let mut variants = without_one_attribute(&text);
        variants.extend(without_one_empty_element(&text));
        assert!(variants.len() > 3, "{name}");
        for v in variants {
            let Ok(stanza) = v.parse::<Element>() else {
                continue;
            };
            let now = Instant::now();
            match JingleIq::from_stanza(&stanza) {
                Ok(None) => {}
                Err(_) => {
                    let addressable = ["id", "from", "to"]
                        .iter()
                        .all(|a| stanza.attr(*a).is_some());
                    assert_eq!(bad_request_reply(&stanza).is_some(), addressable, "{v}");
                }
                Ok(Some(iq)) => {
                    for active in [false, true] {
                        let mut out = Vec::new();
                        if iq.jingle.action == Action::SessionInitiate && !active {
                            let mut s = JingleSession::responder(
                                now,
                                &SessionConfig::default(),
                                iq.clone(),
                            )
                            .unwrap();
                            out.extend(std::iter::from_fn(|| s.poll_transmit()));
                            while s.poll_event().is_some() {}
                        } else {
                            let mut s = live_session(&orig, active);
                            s.handle_iq(now, iq.clone());
                            out.extend(std::iter::from_fn(|| s.poll_transmit()));
                            while s.poll_event().is_some() {}
                        }
                        assert_eq!(answers(&out, &iq.id, &iq.from), 1, "{v}\n{out:?}");
                        assert!(out.iter().all(|el| el.ns() == "jabber:component:accept"));
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 500, "only {checked} variants reached a session");
}
