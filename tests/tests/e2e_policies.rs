//! The gateway's call policies end to end (issue 6; INTEROP.md E.2 "Early media
//! trade-off", E.6): the real `jingle-sip-gateway` on a real Prosody, the libwebrtc
//! client behaving like Conversations, and SIPp (scenarios in `tests/peers/sip/`) as
//! the trunk or the caller:
//!
//! - `calls.early_media = "accept"`: a 183 with SDP and RTP accepts the client's
//!   session, the carrier's audio reaches the client, the later 486 ends the session
//!   with `<busy/>`;
//! - the default (`"ringback"`): the same 183 only rings the client, the 486 ends it
//!   with `<busy/>` and `486 Busy Here` as the text;
//! - `calls.outbound_ring_timeout` (2 s here): a trunk that rings and never answers
//!   gets CANCEL, the client `<timeout/>`, both within [`BOTH_LEGS`](e2e_support::BOTH_LEGS) of the timer;
//! - an inbound call over `calls.max_calls_per_user` gets 503 with `Retry-After`
//!   (the SIPp scenario fails without the header).
//!
//! Times are measured on the test's clock by polling the client's events and SIPp's
//! message log every [`POLL`](e2e_support::POLL), and printed.
//!
//! Runs inside a loopback-only namespace (`scripts/test-all`, or
//! `unshare --net -- bash -c 'ip link set lo up; cargo test -p jsg-tests --test e2e_policies -- --test-threads=2 --nocapture'`);
//! needs `jingle-sip-gateway` built.

mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::{
    after, check_legs, loopback_scratch, outbound_to_sipp, sipp_passed, wait_accepted, wait_event,
    SippBed, NUMBER, POLL, WAIT,
};
use testbed::webrtc::OnPropose;
use testbed::WebrtcClient;

/// The Jingle stanzas the client received from the gateway.
fn jingle_in(client: &WebrtcClient) -> Vec<String> {
    client
        .stanzas()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.dir == "in" && s.xml.contains("urn:xmpp:jingle:1"))
        .map(|s| s.xml)
        .collect()
}

#[test]
fn early_media_accept_plays_the_183_and_the_486_ends_with_busy() {
    let (mut bed, mut sipp, mut alice, sid, _) =
        outbound_to_sipp("e2e-pol-early-accept", "uas_early_media_486.xml", |c| {
            c.set("calls.early_media", "accept");
        });
    let sent_183 = sipp.wait("SIP/2.0 183", WAIT).expect("sipp logged it");
    let accepted = wait_accepted(&mut alice, &sid);
    // The carrier's early media reaches the client before the 486 (4 s after the 183).
    let mut first_audio = None;
    while first_audio.is_none() && !sipp.saw("SIP/2.0 486") {
        let stats = alice.stats().expect("stats");
        if stats["inbound"][0]["packets"].as_u64().unwrap_or(0) > 0 {
            first_audio = Some(Instant::now());
        } else {
            std::thread::sleep(POLL);
        }
    }
    let first_audio = first_audio.unwrap_or_else(|| {
        panic!(
            "no early media at the client before the 486\n{}",
            bed.gateway_log()
        )
    });
    let sent_486 = sipp.wait("SIP/2.0 486", WAIT).expect("sipp logged it");
    let ended = bed.assert_terminated(&mut alice, &sid, "busy");
    sipp_passed(&mut sipp, "486 ACKed");
    let summary = bed.assert_summary("trunk", "busy");
    assert!(summary.contains("early_media=true"), "{summary}");
    let terminate = jingle_in(&alice)
        .into_iter()
        .find(|x| x.contains("session-terminate"))
        .expect("a session-terminate stanza");
    assert!(terminate.contains("486 Busy Here"), "{terminate}");
    eprintln!(
        "early media accept: 183 -> session accepted {} ms, 183 -> first audio at the client {} ms",
        after(accepted, sent_183).as_millis(),
        after(first_audio, sent_183).as_millis()
    );
    check_legs(
        "early media accept",
        &[("client session-terminate <busy/>", after(ended, sent_486))],
    );
    alice.quit();
}

#[test]
fn early_media_accept_then_200_continues_the_same_session() {
    let (mut bed, mut sipp, mut alice, sid, _) =
        outbound_to_sipp("e2e-pol-early-200", "uas_early_media.xml", |c| {
            c.set("calls.early_media", "accept");
        });
    let sent_183 = sipp.wait("SIP/2.0 183", WAIT).expect("sipp logged it");
    let accepted = wait_accepted(&mut alice, &sid);
    let sent_200 = sipp.wait("SIP/2.0 200", WAIT).expect("sipp logged it");
    // Media keeps flowing after the 200 on the session accepted at the 183.
    let deadline = Instant::now() + WAIT;
    let mut packets = 0;
    while packets == 0 {
        let stats = alice.stats().expect("stats");
        packets = stats["inbound"][0]["packets"].as_u64().unwrap_or(0);
        assert!(
            Instant::now() < deadline,
            "no audio at the client
{}",
            bed.gateway_log()
        );
        std::thread::sleep(POLL);
    }
    std::thread::sleep(Duration::from_millis(500));
    alice.drain();
    assert!(
        !alice.history().iter().any(|e| e.name() == "terminated"),
        "the 200 does not end the session"
    );
    let accepts = jingle_in(&alice)
        .iter()
        .filter(|x| x.contains("session-accept"))
        .count();
    assert_eq!(accepts, 1, "one session-accept, at the 183");
    let hung_up = Instant::now();
    alice.hangup("success").expect("hangup");
    let bye = sipp.wait("BYE sip:", WAIT).expect("sipp logged it");
    sipp_passed(&mut sipp, "ACK, then BYE answered 200");
    let summary = bed.assert_summary("client", "success");
    assert!(summary.contains("early_media=true"), "{summary}");
    eprintln!(
        "early media accept + 200: 183 -> session accepted {} ms, 183 -> 200 {} ms",
        after(accepted, sent_183).as_millis(),
        after(sent_200, sent_183).as_millis()
    );
    check_legs(
        "early media accept + 200",
        &[("BYE at the trunk", after(bye, hung_up))],
    );
    alice.quit();
}

#[test]
fn early_media_ringback_default_only_rings_and_the_486_ends_with_busy() {
    let (mut bed, mut sipp, mut alice, sid, _) =
        outbound_to_sipp("e2e-pol-early-ringback", "uas_early_media_486.xml", |_| {});
    let sent_183 = sipp.wait("SIP/2.0 183", WAIT).expect("sipp logged it");
    let sent_486 = sipp.wait("SIP/2.0 486", WAIT).expect("sipp logged it");
    let ended = bed.assert_terminated(&mut alice, &sid, "busy");
    sipp_passed(&mut sipp, "486 ACKed");
    let summary = bed.assert_summary("trunk", "busy");
    assert!(summary.contains("early_media=false"), "{summary}");
    alice.drain();
    assert!(
        !alice.history().iter().any(|e| e.name() == "accepted"),
        "the session is never accepted in ringback mode"
    );
    let jingle = jingle_in(&alice);
    assert!(
        jingle
            .iter()
            .any(|x| x.contains("session-info") && x.contains("urn:xmpp:jingle:apps:rtp:info:1")),
        "the 183 rang the client: {jingle:?}"
    );
    assert!(
        !jingle.iter().any(|x| x.contains("session-accept")),
        "{jingle:?}"
    );
    let terminate = jingle
        .iter()
        .find(|x| x.contains("session-terminate"))
        .expect("a session-terminate stanza");
    assert!(terminate.contains("486 Busy Here"), "{terminate}");
    eprintln!(
        "early media ringback: 183 -> 486 {} ms at the trunk",
        after(sent_486, sent_183).as_millis()
    );
    check_legs(
        "early media ringback",
        &[("client session-terminate <busy/>", after(ended, sent_486))],
    );
    alice.quit();
}

#[test]
fn outbound_ring_timeout_cancels_the_invite_and_ends_with_timeout() {
    const RING: Duration = Duration::from_secs(2);
    let (mut bed, mut sipp, mut alice, sid, _) =
        outbound_to_sipp("e2e-pol-ring-timeout", "uas_cancel.xml", |c| {
            c.set("calls.outbound_ring_timeout", "2s");
        });
    // The gateway's timer starts with its INVITE.
    let invited = sipp.wait("INVITE sip:", WAIT).expect("sipp logged it");
    let cancel = sipp.wait("CANCEL sip:", WAIT).expect("sipp logged it");
    let ended = bed.assert_terminated(&mut alice, &sid, "timeout");
    sipp_passed(&mut sipp, "CANCEL, 200, 487, ACK");
    assert!(
        !sipp.saw("BYE sip:"),
        "an unanswered call is cancelled, not BYEd"
    );
    let summary = bed.assert_summary("gateway", "timeout");
    assert!(
        summary.contains("number=pii:") && !summary.contains(NUMBER),
        "log.redact_numbers (default true) hides the number: {summary}"
    );
    let terminate = jingle_in(&alice)
        .into_iter()
        .find(|x| x.contains("session-terminate"))
        .expect("a session-terminate stanza");
    assert!(terminate.contains("no answer within 2s"), "{terminate}");
    let rang = after(cancel, invited);
    eprintln!(
        "outbound ring timeout {RING:?}: INVITE -> CANCEL at the trunk {} ms",
        rang.as_millis()
    );
    assert!(
        rang + Duration::from_millis(100) >= RING,
        "CANCEL {rang:?} after the INVITE, before the timeout {RING:?}"
    );
    let deadline = invited + RING;
    check_legs(
        "outbound ring timeout",
        &[
            ("CANCEL at the trunk", after(cancel, deadline)),
            (
                "client session-terminate <timeout/>",
                after(ended, deadline),
            ),
        ],
    );
    alice.quit();
}

#[test]
fn inbound_call_over_the_limit_gets_503_with_retry_after() {
    let mut bed = SippBed::start(loopback_scratch("e2e-pol-limit"), |c| {
        c.set("calls.max_calls_per_user", 1)
            .set("calls.ring_timeout", "3s");
    });
    let mut alice = bed.alice(OnPropose::Ignore);
    // alice's one call: rings (unanswered) until the ring timeout gives 480.
    let mut first = bed.sipp_caller("uac_unanswered_480.xml");
    wait_event(&mut alice, "JMI propose", WAIT, |e| {
        e.name() == "jmi" && e.str("action") == Some("propose")
    });
    let mut second = bed.sipp_caller("uac_limit_503.xml");
    let invited = second.wait("INVITE sip:", WAIT).expect("sipp logged it");
    let got_503 = second.wait("SIP/2.0 503", WAIT).expect("sipp logged it");
    sipp_passed(&mut second, "503 with Retry-After, ACKed");
    let log = second.log();
    let retry = log
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("retry-after:"))
        .unwrap_or_else(|| panic!("no Retry-After in\n{log}"));
    assert_eq!(retry.trim_end(), "Retry-After: 30", "{log}");
    first.wait("SIP/2.0 480", WAIT).expect("sipp logged it");
    sipp_passed(&mut first, "the first call rings out with 480");
    let gw = std::fs::read_to_string(bed.gateway.process().log_path()).unwrap_or_default();
    assert!(
        gw.lines()
            .any(|l| l.contains("inbound call refused") && l.contains("status=503")),
        "{}",
        bed.gateway_log()
    );
    eprintln!(
        "call limit: INVITE -> 503 Retry-After {} ms",
        after(got_503, invited).as_millis()
    );
    alice.quit();
}
