//! ICE restart during a bridged call (issue 6, INTEROP.md E.8): alice (the libwebrtc
//! client, Conversations-like: JMI, inline candidates, renomination) calls baresip
//! through the gateway; tones are verified; then alice restarts ICE as the session's
//! initiator, like Conversations: a `transport-info` with a new ufrag/pwd and no
//! candidates. The gateway acknowledges it, restarts its agent, answers with its own
//! `transport-info` (new ufrag/pwd, the same DTLS fingerprint, its candidates); ICE
//! selects a pair under the new credentials while DTLS and SRTP carry on; tones are
//! verified again both ways; alice hangs up and baresip gets BYE.
//!
//! Runs inside a loopback-only namespace (`scripts/test-all`, or
//! `unshare --net -- bash -c 'ip link set lo up; cargo test -p jsg-tests --test e2e_ice_restart -- --nocapture'`);
//! needs `jingle-sip-gateway` built.

mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::{hears_tone, start_bed, tone_frequency_tail, CLIENT_HZ, NUMBER, PHONE_HZ, WAIT};
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
    let mut config = WebrtcConfig::new(bed.prosody.jid("alice"), "alice-pw");
    config.tone_hz = CLIENT_HZ;
    config.candidates = Candidates::Inline;
    config.renomination = true;
    config.time_limit = Duration::from_secs(90);
    let mut alice = WebrtcClient::start(&bed.scratch, &bed.prosody, &config)
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
