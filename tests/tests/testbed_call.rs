//! Proof that the test bed is real: two libwebrtc clients (alice and bob) on a real
//! Prosody, no gateway, call each other like Conversations does (XEP-0353 propose to
//! the bare JID, proceed from the full JID, then Jingle), each hears the other's
//! tone, and the call ends cleanly.
//!
//! Runs only inside a loopback-only namespace (`scripts/test-all`, or by hand:
//! `unshare --net -- bash -c 'ip link set lo up; cargo test -p jsg-tests --test testbed_call'`).

use std::time::{Duration, Instant};

use serde_json::Value;
use testbed::{Candidates, Namespace, OnPropose, Prosody, Scratch, WebrtcClient, WebrtcConfig};

const ALICE_HZ: f64 = 440.0;
const BOB_HZ: f64 = 660.0;
/// Every wait in these tests; each peer process is also bounded (60 s).
const WAIT: Duration = Duration::from_secs(20);
const PEER_LIMIT: Duration = Duration::from_secs(60);

struct Bed {
    _scratch: Scratch,
    _prosody: Prosody,
    alice: WebrtcClient,
    bob: WebrtcClient,
}

/// Prosody with alice and bob as mutual contacts, both clients logged in and each
/// seeing the other's presence.
fn bed(
    name: &str,
    alice: impl FnOnce(&mut WebrtcConfig),
    bob: impl FnOnce(&mut WebrtcConfig),
) -> Bed {
    Namespace::require_loopback_only();
    let scratch = Scratch::new(name).expect("scratch dir");
    let mut prosody = Prosody::start_default(&scratch).expect("prosody starts");
    prosody
        .add_contacts(("alice", "alice-pw"), ("bob", "bob-pw"))
        .expect("accounts and rosters");
    let mut ca = WebrtcConfig::new(prosody.jid("alice"), "alice-pw");
    ca.tone_hz = ALICE_HZ;
    ca.time_limit = PEER_LIMIT;
    alice(&mut ca);
    let mut cb = WebrtcConfig::new(prosody.jid("bob"), "bob-pw");
    cb.tone_hz = BOB_HZ;
    cb.time_limit = PEER_LIMIT;
    bob(&mut cb);
    let mut alice = WebrtcClient::start(&scratch, &prosody, &ca).expect("alice logs in");
    let mut bob = WebrtcClient::start(&scratch, &prosody, &cb).expect("bob logs in");
    let (aj, bj) = (alice.jid().to_owned(), bob.jid().to_owned());
    alice
        .wait_presence(&bj, "available", WAIT)
        .expect("alice sees bob online (roster with subscription both)");
    bob.wait_presence(&aj, "available", WAIT)
        .expect("bob sees alice online");
    Bed {
        _scratch: scratch,
        _prosody: prosody,
        alice,
        bob,
    }
}

/// Waits until `client` hears a tone near `expected_hz` (±2 %) at a non-trivial level
/// over a 1 s window, and returns the report.
fn hears_tone(client: &mut WebrtcClient, expected_hz: f64) -> testbed::AudioReport {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = client.audio(Duration::from_secs(1)).expect("audio report");
        let ok = r.frames_received >= 100
            && r.sample_rate > 0
            && r.samples >= r.sample_rate * 9 / 10
            && (r.frequency_hz - expected_hz).abs() <= expected_hz * 0.02
            && r.rms > 0.05;
        if ok {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{} never heard {expected_hz} Hz; last report {r:?}",
            client.name()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn is_loopback(addr: Option<&str>) -> bool {
    matches!(addr, Some("127.0.0.1" | "::1"))
}

/// RTP flowed both ways (at least 0.5 s of 20 ms packets) on a selected loopback
/// candidate pair, over DTLS-SRTP.
fn check_stats(client: &mut WebrtcClient, codec: Option<&str>) -> Value {
    let s = client.stats().expect("stats");
    let inbound = &s["inbound"][0];
    let outbound = &s["outbound"][0];
    assert!(
        inbound["packets"].as_u64().unwrap_or(0) >= 25,
        "{}: inbound RTP {s}",
        client.name()
    );
    assert!(
        outbound["packets"].as_u64().unwrap_or(0) >= 25,
        "{}: outbound RTP {s}",
        client.name()
    );
    assert!(
        is_loopback(s["local"]["address"].as_str()),
        "{}: local candidate {s}",
        client.name()
    );
    assert!(
        is_loopback(s["remote"]["address"].as_str()),
        "{}: remote candidate {s}",
        client.name()
    );
    assert_eq!(s["dtls_state"], "connected", "{}: {s}", client.name());
    if let Some(codec) = codec {
        assert_eq!(
            inbound["codec"].as_str(),
            Some(codec),
            "{}: inbound codec {s}",
            client.name()
        );
        assert_eq!(
            outbound["codec"].as_str(),
            Some(codec),
            "{}: outbound codec {s}",
            client.name()
        );
    }
    s
}

/// The stanzas `client` sent whose XML contains every one of `needles`.
fn sent_containing(client: &WebrtcClient, needles: &[&str]) -> Vec<String> {
    client
        .stanzas()
        .expect("stanza log")
        .into_iter()
        .filter(|s| s.dir == "out" && needles.iter().all(|n| s.xml.contains(n)))
        .map(|s| s.xml)
        .collect()
}

/// Like [`sent_containing`], but waits (up to [`WAIT`]) until at least one such stanza
/// is in the log: the client reports an action before the stanza is written.
fn wait_sent(client: &WebrtcClient, needles: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = sent_containing(client, needles);
        if !found.is_empty() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{} never sent a stanza containing {needles:?} (log {})",
            client.name(),
            client.stanza_log().display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The JMI + Jingle call flow, media checks and a clean hang-up. `inline` says whether
/// alice (caller) and bob (callee) are expected to put candidates inline.
fn jmi_call(mut bed: Bed, alice_inline: bool, bob_inline: bool) {
    let (alice_jid, bob_jid) = (bed.alice.jid().to_owned(), bed.bob.jid().to_owned());
    let alice = &mut bed.alice;
    let bob = &mut bed.bob;

    let sid = alice.call("bob@localhost", true).expect("call starts");

    // bob: propose (sent to the bare JID) arrives from alice's full JID
    let propose = bob
        .wait_jmi("propose", WAIT)
        .expect("bob receives the propose");
    assert_eq!(propose.str("from"), Some(alice_jid.as_str()));
    assert_eq!(propose.str("id"), Some(sid.as_str()));
    assert_eq!(propose.get("media"), Some(&serde_json::json!(["audio"])));
    let proposes = wait_sent(
        alice,
        &["<propose xmlns=\"urn:xmpp:jingle-message:0\"", &sid],
    );
    assert_eq!(proposes.len(), 1, "one propose: {proposes:?}");
    assert!(
        proposes[0].contains("to=\"bob@localhost\""),
        "propose goes to the bare JID: {}",
        proposes[0]
    );

    // alice learnt bob's features like Conversations: disco#info of his caps node,
    // with the XEP-0115 ver verified, before proposing
    let disco = alice
        .wait_match("disco of bob", WAIT, |e| {
            e.name() == "disco" && e.str("jid") == Some(&bob_jid)
        })
        .expect("alice discos bob's resource");
    assert_eq!(
        disco.get("caps_verified"),
        Some(&Value::Bool(true)),
        "{disco:?}"
    );
    assert!(
        disco.str("node").is_some_and(|n| n.contains('#')),
        "caps node#ver: {disco:?}"
    );
    let features = disco.get("features").expect("features").to_string();
    assert!(features.contains("urn:xmpp:jingle-message:0"), "{features}");
    assert_eq!(
        features.contains("urn:ietf:rfc:3264"),
        alice_inline,
        "{features}"
    );

    // alice: ringing, then proceed from bob's full JID
    for action in ["ringing", "proceed"] {
        let e = alice.wait_jmi(action, WAIT).expect("JMI answer");
        assert_eq!(
            e.str("from"),
            Some(bob_jid.as_str()),
            "{action} from bob's full JID"
        );
        assert_eq!(e.str("id"), Some(sid.as_str()));
    }

    // alice: session-initiate to that full JID, same sid, candidates per bob's caps
    let si = alice
        .wait_for("session_initiate_sent", WAIT)
        .expect("session-initiate");
    assert_eq!(si.str("to"), Some(bob_jid.as_str()));
    assert_eq!(si.str("sid"), Some(sid.as_str()));
    assert_eq!(
        si.get("inline"),
        Some(&Value::Bool(alice_inline)),
        "{:?}",
        si
    );
    let si_xml = wait_sent(alice, &["action=\"session-initiate\"", &sid]);
    assert_eq!(si_xml.len(), 1);
    assert_eq!(
        si_xml[0].contains("<candidate "),
        alice_inline,
        "{}",
        si_xml[0]
    );
    if alice_inline {
        assert!(si.f64("candidates").unwrap_or(0.0) >= 1.0);
    }

    let incoming = bob
        .wait_for("incoming", WAIT)
        .expect("bob gets the session");
    assert_eq!(
        incoming.get("jmi"),
        Some(&Value::Bool(true)),
        "session follows the proceed"
    );
    assert_eq!(incoming.str("from"), Some(alice_jid.as_str()));
    let sa = bob
        .wait_for("session_accept_sent", WAIT)
        .expect("bob accepts");
    assert_eq!(sa.get("inline"), Some(&Value::Bool(bob_inline)), "{:?}", sa);
    alice
        .wait_for("accepted", WAIT)
        .expect("alice gets session-accept");

    // trickled candidates went out in transport-info (only when not inline)
    let ti_alice = sent_containing(alice, &["action=\"transport-info\"", "<candidate "]);
    assert_eq!(
        ti_alice.is_empty(),
        alice_inline,
        "alice transport-info: {ti_alice:?}"
    );
    let ti_bob = sent_containing(bob, &["action=\"transport-info\"", "<candidate "]);
    assert_eq!(
        ti_bob.is_empty(),
        bob_inline,
        "bob transport-info: {ti_bob:?}"
    );

    // media: each hears the other's tone
    alice
        .wait_for("track", WAIT)
        .expect("alice gets bob's audio track");
    bob.wait_for("track", WAIT)
        .expect("bob gets alice's audio track");
    let heard_by_bob = hears_tone(bob, ALICE_HZ);
    let heard_by_alice = hears_tone(alice, BOB_HZ);
    eprintln!("bob heard {heard_by_bob:?}\nalice heard {heard_by_alice:?}");
    check_stats(alice, None);
    check_stats(bob, None);

    hang_up(bed, &sid);
}

/// alice hangs up: both sides see `success`, bob gets the JMI `<finish/>`, and both
/// clients exit.
fn hang_up(mut bed: Bed, sid: &str) {
    bed.alice.hangup("success").expect("hangup");
    let t = bed
        .bob
        .wait_for("terminated", WAIT)
        .expect("bob sees session-terminate");
    assert_eq!(t.str("sid"), Some(sid));
    assert_eq!(
        t.get("reason").and_then(|r| r.get("condition")),
        Some(&Value::from("success"))
    );
    let t = bed
        .alice
        .wait_for("terminated", WAIT)
        .expect("alice's session ends");
    assert_eq!(t.str("sid"), Some(sid));
    let sent = wait_sent(
        &bed.alice,
        &["action=\"session-terminate\"", sid, "<success/>"],
    );
    assert_eq!(
        sent.len(),
        1,
        "one session-terminate with success: {sent:?}"
    );
    bed.bob
        .wait_jmi("finish", WAIT)
        .expect("bob receives JMI finish");
    bed.alice.quit();
    bed.bob.quit();
}

#[test]
fn jmi_call_with_trickle_tone_both_ways() {
    // Neither side advertises urn:ietf:rfc:3264: both trickle, as Dino or Movim would.
    let bed = bed("call-trickle", |_| {}, |_| {});
    jmi_call(bed, false, false);
}

#[test]
fn jmi_call_with_inline_candidates_tone_both_ways() {
    // Both advertise urn:ietf:rfc:3264: all candidates inline, like Conversations.
    let bed = bed(
        "call-inline",
        |a| a.advertise_rfc3264 = true,
        |b| b.advertise_rfc3264 = true,
    );
    jmi_call(bed, true, true);
}

#[test]
fn direct_session_initiate_pcmu_with_renomination() {
    // No JMI (a peer like Gajim 1.x), G.711 forced on both sides with
    // setCodecPreferences, and alice's SDP munged with `renomination`.
    let mut bed = bed(
        "call-direct-pcmu",
        |a| {
            a.codecs = vec!["PCMU".into()];
            a.renomination = true;
            a.candidates = Candidates::Trickle;
        },
        |b| {
            b.codecs = vec!["PCMU".into()];
            b.candidates = Candidates::Inline;
        },
    );
    let bob_jid = bed.bob.jid().to_owned();
    let sid = bed.alice.call(&bob_jid, false).expect("call starts");
    let si = bed
        .alice
        .wait_for("session_initiate_sent", WAIT)
        .expect("session-initiate");
    assert_eq!(si.str("to"), Some(bob_jid.as_str()));
    let incoming = bed
        .bob
        .wait_for("incoming", WAIT)
        .expect("bob gets the session");
    assert_eq!(incoming.get("jmi"), Some(&Value::Bool(false)));
    let sa = bed
        .bob
        .wait_for("session_accept_sent", WAIT)
        .expect("bob accepts");
    assert_eq!(sa.get("inline"), Some(&Value::Bool(true)));
    bed.alice
        .wait_for("accepted", WAIT)
        .expect("alice gets session-accept");
    let offer = wait_sent(&bed.alice, &["action=\"session-initiate\""]);
    assert_eq!(offer.len(), 1);
    let pcmu = offer[0].find("name=\"PCMU\"").expect("PCMU offered");
    let opus = offer[0].find("name=\"opus\"").unwrap_or(usize::MAX);
    assert!(pcmu < opus, "PCMU offered first: {}", offer[0]);
    assert!(
        sent_containing(&bed.alice, &["<propose"]).is_empty(),
        "no JMI"
    );
    bed.alice
        .wait_for("track", WAIT)
        .expect("alice gets bob's audio track");
    bed.bob
        .wait_for("track", WAIT)
        .expect("bob gets alice's audio track");
    hears_tone(&mut bed.bob, ALICE_HZ);
    hears_tone(&mut bed.alice, BOB_HZ);
    let sa = check_stats(&mut bed.alice, Some("audio/PCMU"));
    let sb = check_stats(&mut bed.bob, Some("audio/PCMU"));
    // libwebrtc took alice's munged descriptions (local, and the remote one built from
    // bob's Jingle, as Conversations writes both); bob's are untouched
    let options = |s: &Value, key: &str| -> Vec<String> {
        s[key]
            .as_array()
            .map(|o| {
                o.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let has_renomination =
        |o: &[String]| !o.is_empty() && o.iter().all(|v| v.contains("renomination"));
    assert!(
        has_renomination(&options(&sa, "local_ice_options")),
        "alice local: {sa}"
    );
    assert!(
        has_renomination(&options(&sa, "remote_ice_options")),
        "alice remote: {sa}"
    );
    let bob_local = options(&sb, "local_ice_options");
    assert!(
        !bob_local.is_empty() && !bob_local.iter().any(|v| v.contains("renomination")),
        "bob: {sb}"
    );
    bed.alice.hangup("success").expect("hangup");
    let t = bed
        .bob
        .wait_for("terminated", WAIT)
        .expect("bob sees session-terminate");
    assert_eq!(t.str("sid"), Some(sid.as_str()));
    bed.alice.quit();
    bed.bob.quit();
}

#[test]
fn jmi_propose_rejected_busy() {
    let mut bed = bed("call-reject", |_| {}, |b| b.on_propose = OnPropose::Reject);
    let bob_jid = bed.bob.jid().to_owned();
    let sid = bed.alice.call("bob@localhost", true).expect("call starts");
    let reject = bed
        .alice
        .wait_jmi("reject", WAIT)
        .expect("alice receives the reject");
    assert_eq!(reject.str("from"), Some(bob_jid.as_str()));
    assert_eq!(reject.str("id"), Some(sid.as_str()));
    assert_eq!(
        reject.get("reason").and_then(|r| r.get("condition")),
        Some(&Value::from("busy"))
    );
    assert!(
        sent_containing(&bed.alice, &["session-initiate"]).is_empty(),
        "no Jingle after reject"
    );
    bed.alice.quit();
    bed.bob.quit();
}

#[test]
fn jmi_propose_ignored_is_retracted_after_the_timeout() {
    let mut bed = bed(
        "call-retract",
        |a| a.proceed_timeout_ms = 1500,
        |b| b.on_propose = OnPropose::Ignore,
    );
    let alice_jid = bed.alice.jid().to_owned();
    let sid = bed.alice.call("bob@localhost", true).expect("call starts");
    bed.alice
        .wait_for("propose_timeout", WAIT)
        .expect("alice gives up");
    let retract = bed
        .bob
        .wait_jmi("retract", WAIT)
        .expect("bob receives the retract");
    assert_eq!(retract.str("from"), Some(alice_jid.as_str()));
    assert_eq!(retract.str("id"), Some(sid.as_str()));
    assert!(
        sent_containing(&bed.bob, &["xmlns=\"urn:xmpp:jingle-message:0\""]).is_empty(),
        "bob stayed silent"
    );
    bed.alice.quit();
    bed.bob.quit();
}

#[test]
fn ice_restart_by_the_caller_keeps_the_tone_flowing() {
    // Conversations-like caller (inline candidates), then an ICE restart
    // (transport-info with new ufrag/pwd, no candidates) as in INTEROP.md E.8.
    let mut bed = bed(
        "call-ice-restart",
        |a| a.advertise_rfc3264 = true,
        |b| b.advertise_rfc3264 = true,
    );
    bed.alice.call("bob@localhost", true).expect("call starts");
    bed.bob
        .wait_for("track", WAIT)
        .expect("bob gets alice's audio track");
    bed.alice
        .wait_for("track", WAIT)
        .expect("alice gets bob's audio track");
    hears_tone(&mut bed.bob, ALICE_HZ);
    let before = bed.alice.stats().expect("stats");
    let new_ufrag = bed.alice.ice_restart().expect("restart");
    assert_ne!(Some(new_ufrag.as_str()), before["local_ufrag"].as_str());
    let restart = wait_sent(
        &bed.alice,
        &[
            "action=\"transport-info\"",
            &format!("ufrag=\"{new_ufrag}\""),
        ],
    );
    assert!(restart[0].contains("pwd="), "new pwd: {}", restart[0]);
    assert!(
        !restart[0].contains("<candidate "),
        "no candidates: {}",
        restart[0]
    );
    // bob adopts the new ufrag and answers with his own new one
    let deadline = Instant::now() + WAIT;
    loop {
        let (a, b) = (
            bed.alice.stats().expect("stats"),
            bed.bob.stats().expect("stats"),
        );
        let done = b["remote_ufrag"].as_str() == Some(new_ufrag.as_str())
            && a["remote_ufrag"] != before["remote_ufrag"]
            && a["remote_ufrag"] == b["local_ufrag"];
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restart not completed: alice {a} bob {b}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let frames = bed
        .bob
        .audio(Duration::from_secs(1))
        .expect("audio")
        .frames_received;
    std::thread::sleep(Duration::from_millis(1500));
    let after = hears_tone(&mut bed.bob, ALICE_HZ);
    assert!(
        after.frames_received > frames + 50,
        "audio kept arriving: {frames} -> {after:?}"
    );
    hears_tone(&mut bed.alice, BOB_HZ);
    bed.alice.hangup("success").expect("hangup");
    bed.bob
        .wait_for("terminated", WAIT)
        .expect("bob sees session-terminate");
    bed.alice.quit();
    bed.bob.quit();
}
