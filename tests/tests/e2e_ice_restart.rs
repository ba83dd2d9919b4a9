//! ICE restart during a bridged call (issue 6, INTEROP.md E.8): alice (the libwebrtc
//! client, Conversations-like: JMI, inline candidates, renomination) calls baresip
//! through the gateway; tones are verified; then alice restarts ICE as the session's
//! initiator, like Conversations: a `transport-info` with a new ufrag/pwd and no
//! candidates. The gateway acknowledges it, restarts its agent, answers with its own
//! `transport-info` (new ufrag/pwd, the same DTLS fingerprint, its candidates); ICE
//! selects a pair under the new credentials while DTLS and SRTP carry on; tones are
//! verified again both ways; alice hangs up and baresip gets BYE.
//!
//! The second test is the inbound case: a phone calls alice's DID, so the gateway sends
//! the session-initiate and alice is the Jingle responder. Conversations restarts ICE
//! whatever its role (on PeerConnectionState FAILED after having been connected): a new
//! local offer with new credentials, the same `transport-info`, and the gateway's
//! `transport-info` applied as the remote answer, keeping the DTLS roles.
//!
//! Runs inside a loopback-only namespace (`scripts/test-all`, or
//! `unshare --net -- bash -c 'ip link set lo up; cargo test -p jsg-tests --test e2e_ice_restart -- --nocapture'`);
//! needs `jingle-sip-gateway` built.

mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::{
    baresip_dialing, hears_tone, start_bed, tone_frequency_tail, CLIENT_HZ, DID, NUMBER, PHONE_HZ,
    WAIT,
};
use serde_json::json;
use testbed::{Candidates, Namespace, WebrtcClient, WebrtcConfig};

/// Seconds of the day of a tracing log line (`2026-11-23T19:20:01.123456Z  INFO …`).
fn line_time(line: &str) -> Option<f64> {
    let ts = line.split_whitespace().next()?;
    let time = ts.split('T').nth(1)?.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// The value of `key=` in a tracing line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    line[start..].split_whitespace().next()
}

/// alice as Conversations: inline candidates, renomination, a [`CLIENT_HZ`] tone.
fn alice_config(bed: &e2e_support::Bed) -> WebrtcConfig {
    let mut config = WebrtcConfig::new(bed.prosody.jid("alice"), "alice-pw");
    config.tone_hz = CLIENT_HZ;
    config.candidates = Candidates::Inline;
    config.renomination = true;
    config.time_limit = Duration::from_secs(90);
    config
}

#[test]
fn client_ice_restart_keeps_the_call_and_media_moves_to_the_new_credentials() {
    Namespace::require_loopback_only();
    let mut bed =
        start_bed("e2e-ice-restart", Duration::from_secs(90)).unwrap_or_else(|e| panic!("{e}"));
    let gw_log = bed.gateway.process().log_path().to_owned();
    let fail = |what: String| -> ! {
        panic!(
            "{what}\n--- gateway ---\n{}",
            testbed::log_tail(&gw_log, 80)
        )
    };
    let mut alice = WebrtcClient::start(&bed.scratch, &bed.prosody, &alice_config(&bed))
        .unwrap_or_else(|e| fail(format!("the client did not log in: {e}")));
    let callee = format!("{NUMBER}@{}", bed.prosody.component_domain());
    alice
        .call(&callee, true)
        .unwrap_or_else(|e| fail(format!("call: {e}")));
    alice
        .wait_for("accepted", WAIT)
        .unwrap_or_else(|e| fail(format!("the call was not answered: {e}")));
    hears_tone(&mut alice, PHONE_HZ).unwrap_or_else(|e| fail(e));
    let before = alice
        .stats()
        .unwrap_or_else(|e| fail(format!("stats: {e}")));
    let old_remote_ufrag = before["remote_ufrag"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let rx_before = before["inbound"][0]["packets"].as_u64().unwrap_or(0);
    std::thread::sleep(Duration::from_secs(1));

    // The restart.
    let restarted_at = Instant::now();
    let new_local = alice
        .ice_restart()
        .unwrap_or_else(|e| fail(format!("ice_restart: {e}")));
    // The gateway answers with new credentials; the client takes them.
    let deadline = Instant::now() + WAIT;
    let after = loop {
        let s = alice
            .stats()
            .unwrap_or_else(|e| fail(format!("stats: {e}")));
        let remote = s["remote_ufrag"].as_str().unwrap_or_default();
        if !remote.is_empty() && remote != old_remote_ufrag && s["ice_state"] == "connected"
            || s["ice_state"] == "completed" && remote != old_remote_ufrag
        {
            break s;
        }
        if Instant::now() > deadline {
            fail(format!("the client never got our new credentials: {s}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let client_saw_answer = restarted_at.elapsed();
    // Our answer: a transport-info with the new ufrag, the same DTLS fingerprint as in
    // the session-accept, and our candidates.
    let new_remote = after["remote_ufrag"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let stanzas = alice
        .stanzas()
        .unwrap_or_else(|e| fail(format!("stanza log: {e}")));
    let fingerprint = |xml: &str| -> Option<String> {
        let start = xml.find("<fingerprint")?;
        let body = &xml[start..];
        let open = body.find('>')? + 1;
        let close = body.find("</fingerprint>")?;
        Some(body[open..close].trim().to_owned())
    };
    let accept = stanzas
        .iter()
        .find(|s| s.dir == "in" && s.xml.contains("session-accept"))
        .unwrap_or_else(|| fail("no session-accept in the client's log".into()));
    let answer = stanzas
        .iter()
        .find(|s| {
            s.dir == "in"
                && s.xml.contains("transport-info")
                && (s.xml.contains(&format!("ufrag='{new_remote}'"))
                    || s.xml.contains(&format!("ufrag=\"{new_remote}\"")))
        })
        .unwrap_or_else(|| fail("no transport-info with our new ufrag".into()));
    assert!(answer.xml.contains("<candidate"), "{}", answer.xml);
    assert!(answer.xml.contains("pwd="), "{}", answer.xml);
    assert_eq!(
        fingerprint(&answer.xml),
        fingerprint(&accept.xml),
        "the same DTLS fingerprint"
    );
    assert!(fingerprint(&accept.xml).is_some());
    assert_eq!(after["local_ufrag"].as_str(), Some(new_local.as_str()));
    // ICE selects a pair under the new credentials (the agent reports it again).
    let deadline = Instant::now() + WAIT;
    let (restart_t, selected_t) = loop {
        let log = std::fs::read_to_string(&gw_log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let r = lines
            .iter()
            .position(|l| l.contains("ice restarted by the client"));
        if let Some(r) = r {
            if let Some(s) = lines[r..].iter().find(|l| l.contains("ice selected pair")) {
                break (line_time(lines[r]), line_time(s));
            }
        }
        if Instant::now() > deadline {
            fail("no pair selected after the restart".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(&gw_log).unwrap_or_default();
    assert!(
        log.contains("ice restart: our new credentials sent"),
        "the gateway answered the restart"
    );
    // libwebrtc gathers new sockets on a restart: media moved to a new pair.
    let remotes: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ice selected pair"))
        .filter_map(|l| field(l, "remote"))
        .collect();
    assert!(
        remotes.len() >= 2 && remotes.first() != remotes.last(),
        "a new pair after the restart: {remotes:?}"
    );
    // Media both ways afterwards: 2 s of packets, then the tone over the last second
    // (all of it after the new pair was selected).
    let rx_selected = alice
        .stats()
        .unwrap_or_else(|e| fail(format!("stats: {e}")))["inbound"][0]["packets"]
        .as_u64()
        .unwrap_or(0);
    std::thread::sleep(Duration::from_secs(2));
    let heard = hears_tone(&mut alice, PHONE_HZ).unwrap_or_else(|e| fail(e));
    let mid = alice
        .stats()
        .unwrap_or_else(|e| fail(format!("stats: {e}")));
    let rx_after = mid["inbound"][0]["packets"].as_u64().unwrap_or(0);
    assert!(
        rx_after >= rx_selected + 80,
        "audio keeps arriving at the client: {rx_selected} → {rx_after} in 2 s"
    );
    assert!(rx_selected > rx_before);
    std::thread::sleep(Duration::from_secs(2));
    let last = alice
        .stats()
        .unwrap_or_else(|e| fail(format!("stats: {e}")));
    let client_sent = last["outbound"][0]["packets"].as_u64().unwrap_or(0);
    assert_eq!(
        last["remote_ufrag"], after["remote_ufrag"],
        "no second restart"
    );
    alice
        .hangup("success")
        .unwrap_or_else(|e| fail(format!("hangup: {e}")));

    // The call summary: the gateway received (nearly) all that the client sent.
    let deadline = Instant::now() + WAIT;
    let summary = loop {
        let log = std::fs::read_to_string(&gw_log).unwrap_or_default();
        if let Some(l) = log.lines().find(|l| l.contains("call summary")) {
            break l.to_owned();
        }
        if Instant::now() > deadline {
            fail("no call summary".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let client_rx: u64 = field(&summary, "client_rx")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fail(format!("no client_rx in {summary}")));
    // 50 packets/s: at most 2 s lost over the whole call (start-up and restart).
    assert!(
        client_rx + 100 >= client_sent,
        "the gateway got {client_rx} of the client's {client_sent} packets"
    );
    assert_eq!(field(&summary, "reason"), Some("\"success\""), "{summary}");
    // The phone heard the client until the end.
    // baresip writes the recording's final header when the call ends.
    let recording = testbed::recording::wait_complete_wav(&bed.phone_dir, "-dec.wav", WAIT)
        .unwrap_or_else(|e| fail(format!("the phone's recording: {e}")));
    let phone_heard =
        tone_frequency_tail(&recording, Duration::from_secs(2)).unwrap_or_else(|e| fail(e));
    let phone_log = std::fs::read_to_string(bed.phone.log_path()).unwrap_or_default();
    let restart_to_selected_ms = match (restart_t, selected_t) {
        (Some(a), Some(b)) => ((b - a) * 1000.0).round(),
        _ => f64::NAN,
    };
    eprintln!(
        "restart → our transport-info at the client: {} ms; gateway restart → new pair \
         selected: {restart_to_selected_ms} ms; client heard {heard:.1} Hz after; phone \
         heard {phone_heard:.1} Hz at the end; gateway got {client_rx}/{client_sent} \
         client packets; pairs {remotes:?}\n{summary}",
        client_saw_answer.as_millis()
    );
    assert!((heard - PHONE_HZ).abs() <= PHONE_HZ * 0.02);
    assert!(
        (phone_heard - CLIENT_HZ).abs() <= CLIENT_HZ * 0.02,
        "the phone heard {phone_heard} Hz at the end"
    );
    assert!(
        phone_log.contains("session closed: Connection reset by peer"),
        "the hangup reached the phone as BYE"
    );
    alice.quit();
}

/// The value of the attribute `name` (either quote style) in the first element `<tag` of
/// `xml`.
fn attr(xml: &str, tag: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}"))?;
    let body = &xml[start..start + xml[start..].find('>')?];
    let at = body.find(&format!(" {name}="))? + name.len() + 2;
    let quote = body[at..].chars().next()?;
    let rest = &body[at + 1..];
    Some(rest[..rest.find(quote)?].to_owned())
}

/// The text of the first `<fingerprint …>…</fingerprint>` in `xml`.
fn fingerprint_text(xml: &str) -> Option<String> {
    let start = xml.find("<fingerprint")?;
    let body = &xml[start..];
    let open = body.find('>')? + 1;
    let close = body.find("</fingerprint>")?;
    Some(body[open..close].trim().to_owned())
}

/// Polls the gateway log at `path` until a line containing `after` is followed by one
/// containing `then`; returns both lines.
fn wait_log_sequence(path: &std::path::Path, after: &str, then: &str) -> Option<(String, String)> {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        if let Some(r) = lines.iter().position(|l| l.contains(after)) {
            if let Some(s) = lines[r..].iter().find(|l| l.contains(then)) {
                return Some((lines[r].to_owned(), (*s).to_owned()));
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn client_ice_restart_as_responder_on_an_inbound_call_keeps_media_both_ways() {
    Namespace::require_loopback_only();
    let mut bed =
        start_bed("e2e-ice-restart-in", Duration::from_secs(90)).unwrap_or_else(|e| panic!("{e}"));
    let gw_log = bed.gateway.process().log_path().to_owned();
    let fail = |what: String| -> ! {
        panic!(
            "{what}\n--- gateway ---\n{}",
            testbed::log_tail(&gw_log, 80)
        )
    };
    let mut alice = WebrtcClient::start(&bed.scratch, &bed.prosody, &alice_config(&bed))
        .unwrap_or_else(|e| fail(format!("the client did not log in: {e}")));

    // A phone (a second baresip, playing PHONE_HZ, recording) calls alice's DID.
    let caller_dir = bed
        .scratch
        .subdir("caller")
        .unwrap_or_else(|e| fail(e.to_string()));
    let caller = baresip_dialing(
        &caller_dir,
        DID,
        bed.gateway.sip_port(),
        Duration::from_secs(80),
    )
    .unwrap_or_else(|e| fail(e));
    let incoming = alice.wait_for("incoming", WAIT).unwrap_or_else(|e| {
        fail(format!(
            "no call reached the client: {e}\n--- caller ---\n{}",
            testbed::log_tail(caller.log_path(), 20)
        ))
    });
    assert!(
        incoming
            .str("from")
            .unwrap_or_default()
            .starts_with(&format!("{NUMBER}@")),
        "{incoming:?}"
    );
    hears_tone(&mut alice, PHONE_HZ).unwrap_or_else(|e| fail(e));
    let before = alice
        .stats()
        .unwrap_or_else(|e| fail(format!("stats: {e}")));
    assert_eq!(before["ice_role"], "controlled", "alice is the responder");
    let old_remote_ufrag = before["remote_ufrag"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let old_local_ufrag = before["local_ufrag"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let rx_before = before["inbound"][0]["packets"].as_u64().unwrap_or(0);
    std::thread::sleep(Duration::from_secs(1));

    // The restart, by the responder.
    let restarted_at = Instant::now();
    let restarted = alice
        .request(json!({"cmd": "ice_restart"}), "ice_restarted", WAIT)
        .unwrap_or_else(|e| fail(format!("ice_restart: {e}")));
    let acked_after = restarted_at.elapsed();
    assert_eq!(restarted.str("role"), Some("responder"), "{restarted:?}");
    assert_eq!(
        restarted.get("acked"),
        Some(&json!(true)),
        "the gateway acked"
    );
    let new_local = restarted.str("new_ufrag").unwrap_or_default().to_owned();
    assert_eq!(restarted.str("old_ufrag"), Some(old_local_ufrag.as_str()));
    assert!(!new_local.is_empty() && new_local != old_local_ufrag);
    let answered = alice
        .wait_for("ice_restart_answered", WAIT)
        .unwrap_or_else(|e| {
            fail(format!(
                "the gateway's transport-info never came or was not applied: {e}"
            ))
        });
    let gateway_answer_ms =
        answered.f64("t").unwrap_or(f64::NAN) - restarted.f64("sent_t").unwrap_or(f64::NAN);
    let new_remote = answered.str("remote_ufrag").unwrap_or_default().to_owned();
    assert!(!new_remote.is_empty() && new_remote != old_remote_ufrag);
    // The gateway keeps the DTLS roles negotiated by alice's session-accept.
    let local_setup = restarted.str("local_setup").unwrap_or_default().to_owned();
    assert!(
        local_setup == "active" || local_setup == "passive",
        "{restarted:?}"
    );
    assert_eq!(
        answered.str("peer_setup"),
        answered.str("applied_setup"),
        "the gateway's setup in its restart answer: {answered:?}"
    );
    assert_ne!(answered.str("peer_setup"), Some(local_setup.as_str()));
    assert!(
        answered.f64("candidates").unwrap_or(0.0) + answered.f64("early_candidates").unwrap_or(0.0)
            >= 1.0,
        "the gateway sent its candidates: {answered:?}"
    );

    // On the wire: our transport-info (new ufrag/pwd, no candidates), the gateway's (its
    // new ufrag/pwd, the fingerprint of its session-initiate, candidates).
    let stanzas = alice
        .stanzas()
        .unwrap_or_else(|e| fail(format!("stanza log: {e}")));
    let ours = stanzas
        .iter()
        .find(|s| {
            s.dir == "out"
                && s.xml.contains("transport-info")
                && attr(&s.xml, "transport", "ufrag").as_deref() == Some(new_local.as_str())
                && attr(&s.xml, "transport", "pwd").is_some()
        })
        .unwrap_or_else(|| fail("no transport-info with our new ufrag/pwd".into()));
    assert!(!ours.xml.contains("<candidate"), "{}", ours.xml);
    assert_eq!(
        attr(&ours.xml, "content", "creator").as_deref(),
        Some("initiator")
    );
    let initiate = stanzas
        .iter()
        .find(|s| s.dir == "in" && s.xml.contains("session-initiate"))
        .unwrap_or_else(|| fail("no session-initiate in the client's log".into()));
    assert_eq!(
        attr(&ours.xml, "content", "name"),
        attr(&initiate.xml, "content", "name"),
        "the session's content"
    );
    let theirs = stanzas
        .iter()
        .find(|s| {
            s.dir == "in"
                && s.xml.contains("transport-info")
                && attr(&s.xml, "transport", "ufrag").as_deref() == Some(new_remote.as_str())
        })
        .unwrap_or_else(|| fail("no transport-info with the gateway's new ufrag".into()));
    assert!(
        attr(&theirs.xml, "transport", "pwd").is_some(),
        "{}",
        theirs.xml
    );
    assert!(fingerprint_text(&initiate.xml).is_some());
    assert_eq!(
        fingerprint_text(&theirs.xml),
        fingerprint_text(&initiate.xml),
        "the same DTLS fingerprint"
    );

    // ICE selects a pair under the new credentials (gateway log).
    let (restart_line, selected_line) =
        wait_log_sequence(&gw_log, "ice restarted by the client", "ice selected pair")
            .unwrap_or_else(|| fail("no pair selected after the restart".into()));
    let restart_to_selected_ms = match (line_time(&restart_line), line_time(&selected_line)) {
        (Some(a), Some(b)) => ((b - a) * 1000.0).round(),
        _ => f64::NAN,
    };
    let log = std::fs::read_to_string(&gw_log).unwrap_or_default();
    assert!(
        log.contains("ice restart: our new credentials sent"),
        "the gateway answered the restart"
    );
    let remotes: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ice selected pair"))
        .filter_map(|l| field(l, "remote"))
        .collect();
    assert!(
        remotes.len() >= 2 && remotes.first() != remotes.last(),
        "a new pair after the restart: {remotes:?}"
    );
    let deadline = Instant::now() + WAIT;
    let after = loop {
        let s = alice
            .stats()
            .unwrap_or_else(|e| fail(format!("stats: {e}")));
        if s["ice_state"] == "connected" || s["ice_state"] == "completed" {
            break s;
        }
        if Instant::now() > deadline {
            fail(format!("the client's ICE did not reconnect: {s}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(after["local_ufrag"].as_str(), Some(new_local.as_str()));
    assert_eq!(after["remote_ufrag"].as_str(), Some(new_remote.as_str()));
    assert_eq!(after["dtls_state"], "connected", "DTLS carried on: {after}");
    let handshakes = std::fs::read_to_string(&gw_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("media_driver") && l.contains("dtls connected"))
        .count();
    assert_eq!(handshakes, 1, "no second DTLS handshake after the restart");

    // Media both ways afterwards.
    let rx_selected = after["inbound"][0]["packets"].as_u64().unwrap_or(0);
    std::thread::sleep(Duration::from_secs(2));
    let heard = hears_tone(&mut alice, PHONE_HZ).unwrap_or_else(|e| fail(e));
    let mid = alice
        .stats()
        .unwrap_or_else(|e| fail(format!("stats: {e}")));
    let rx_after = mid["inbound"][0]["packets"].as_u64().unwrap_or(0);
    assert!(rx_selected > rx_before);
    assert!(
        rx_after >= rx_selected + 80,
        "audio keeps arriving at the client: {rx_selected} → {rx_after}"
    );
    // The phone records alice's tone for a while after the new pair.
    std::thread::sleep(Duration::from_secs(2));
    let last = alice
        .stats()
        .unwrap_or_else(|e| fail(format!("stats: {e}")));
    assert_eq!(
        last["remote_ufrag"], after["remote_ufrag"],
        "no second restart"
    );
    let client_sent = last["outbound"][0]["packets"].as_u64().unwrap_or(0);
    alice
        .hangup("success")
        .unwrap_or_else(|e| fail(format!("hangup: {e}")));
    let deadline = Instant::now() + WAIT;
    let summary = loop {
        let log = std::fs::read_to_string(&gw_log).unwrap_or_default();
        if let Some(l) = log.lines().find(|l| l.contains("call summary")) {
            break l.to_owned();
        }
        if Instant::now() > deadline {
            fail("no call summary".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let client_rx: u64 = field(&summary, "client_rx")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fail(format!("no client_rx in {summary}")));
    // baresip writes the recording's final header when the call ends.
    let recording = testbed::recording::wait_complete_wav(&caller_dir, "-dec.wav", WAIT)
        .unwrap_or_else(|e| {
            fail(format!(
                "the caller's recording: {e}\n{}",
                testbed::log_tail(caller.log_path(), 30)
            ))
        });
    let phone_heard =
        tone_frequency_tail(&recording, Duration::from_secs(2)).unwrap_or_else(|e| fail(e));
    let caller_log = std::fs::read_to_string(caller.log_path()).unwrap_or_default();
    eprintln!(
        "responder restart: ack after {} ms; restart → the gateway's transport-info at the \
         client: {gateway_answer_ms} ms; gateway restart → new pair selected: \
         {restart_to_selected_ms} ms; DTLS setup alice {local_setup} / gateway {:?}; client \
         heard {heard:.1} Hz after; phone heard {phone_heard:.1} Hz at the end; gateway got \
         {client_rx}/{client_sent} client packets; pairs {remotes:?}\n{summary}",
        acked_after.as_millis(),
        answered.str("peer_setup"),
    );
    assert!((heard - PHONE_HZ).abs() <= PHONE_HZ * 0.02);
    assert!(
        (phone_heard - CLIENT_HZ).abs() <= CLIENT_HZ * 0.02,
        "the phone heard {phone_heard} Hz at the end"
    );
    // 50 packets/s: at most 2 s lost over the whole call (start-up and restart).
    assert!(
        client_rx + 100 >= client_sent,
        "the gateway got {client_rx} of the client's {client_sent} packets"
    );
    assert!(
        caller_log.contains("session closed: Connection reset by peer"),
        "the hangup reached the caller as BYE"
    );
    alice.quit();
}
