//! Calls that fail or end early, end to end (issue 6, "Done when" 4, 5 and 6;
//! INTEROP.md E.6): the real `jingle-sip-gateway` on a real Prosody, the libwebrtc
//! client behaving like Conversations, and SIPp (scenarios in `tests/peers/sip/`) or
//! baresip as the trunk. Every case checks that BOTH legs end with the mapped reason
//! within [`BOTH_LEGS`](e2e_support::BOTH_LEGS) of the event that ends the call, measured on the test's clock
//! by polling the client's events and SIPp's message log every [`POLL`](e2e_support::POLL):
//!
//! - callee busy (486) → `<busy/>`;
//! - the caller hangs up while the trunk rings → CANCEL, 487, ACK;
//! - the callee hangs up (BYE) → `<success/>`;
//! - no answer (the trunk rings, then 480) → `<timeout/>`;
//! - inbound: the user rejects the JMI propose with `<decline/>` → 603, with
//!   `<busy/>` → 486; nobody answers within `calls.ring_timeout` (1 s here) → 480 to
//!   the caller and `<retract/>` to the user;
//! - SIGTERM drains: BYE to the trunk, session-terminate to the client, exit 0;
//! - failover: the first trunk answers 503, the call completes on the second
//!   (baresip);
//! - an INVITE from a source no trunk allows gets 403 and no stanza reaches the user.
//!
//! Runs inside a loopback-only namespace (`scripts/test-all`, or
//! `unshare --net -- bash -c 'ip link set lo up; cargo test -p jsg-tests --test e2e_failures -- --test-threads=2 --nocapture'`);
//! needs `jingle-sip-gateway` built.

mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::{
    after, check_legs, loopback_scratch, outbound_to_sipp, sipp_passed, wait_accepted, wait_event,
    wait_terminated, SippBed, POLL, WAIT,
};
use nix::sys::signal::Signal;
use testbed::ports::free_port_range;
use testbed::webrtc::OnPropose;
use testbed::Sipp;

// ------------------------------------------------------------------ tests

#[test]
fn busy_486_ends_client_leg_with_busy() {
    let (mut bed, mut sipp, mut alice, sid, _) =
        outbound_to_sipp("e2e-fail-busy", "uas_busy_486.xml", |_| {});
    let sent_486 = sipp.wait("SIP/2.0 486", WAIT).expect("sipp logged it");
    let ended = bed.assert_terminated(&mut alice, &sid, "busy");
    sipp_passed(&mut sipp, "486 ACKed");
    bed.assert_summary("trunk", "busy");
    let acked = Instant::now();
    check_legs(
        "busy",
        &[
            ("client session-terminate <busy/>", after(ended, sent_486)),
            ("trunk 486 ACKed (sipp done)", after(acked, sent_486)),
        ],
    );
    alice.quit();
}

#[test]
fn caller_cancels_while_ringing_sends_cancel_and_completes_487() {
    let (mut bed, mut sipp, mut alice, sid, _) =
        outbound_to_sipp("e2e-fail-cancel", "uas_cancel.xml", |_| {});
    sipp.wait("SIP/2.0 180", WAIT).expect("sipp logged it");
    // The client is told it rings before it hangs up, like a user would.
    wait_event(&mut alice, "session initiated", WAIT, |e| {
        e.name() == "session_initiate_sent" && e.str("sid") == Some(sid.as_str())
    });
    std::thread::sleep(Duration::from_millis(300));
    let hung_up = Instant::now();
    alice.hangup("cancel").expect("hangup");
    let cancel = sipp.wait("CANCEL sip:", WAIT).expect("sipp logged it");
    let sent_487 = sipp.wait("SIP/2.0 487", WAIT).expect("sipp logged it");
    sipp_passed(&mut sipp, "CANCEL, 200, 487, ACK");
    let done = Instant::now();
    assert!(
        !sipp.saw("BYE sip:"),
        "a call that was never answered is cancelled, not BYEd"
    );
    bed.assert_summary("client", "cancel");
    check_legs(
        "cancel",
        &[
            ("CANCEL at the trunk", after(cancel, hung_up)),
            ("487 from the trunk", after(sent_487, hung_up)),
            ("487 ACKed (sipp done)", after(done, hung_up)),
        ],
    );
    alice.quit();
}

#[test]
fn callee_hangs_up_ends_client_leg_with_success() {
    let (mut bed, mut sipp, mut alice, sid, _) =
        outbound_to_sipp("e2e-fail-bye", "uas_answer_then_bye.xml", |_| {});
    wait_accepted(&mut alice, &sid);
    let bye = sipp.wait("BYE sip:", WAIT).expect("sipp logged it");
    let ended = bed.assert_terminated(&mut alice, &sid, "success");
    sipp_passed(&mut sipp, "BYE answered 200");
    let done = Instant::now();
    bed.assert_summary("trunk", "success");
    check_legs(
        "callee hangs up",
        &[
            ("client session-terminate <success/>", after(ended, bye)),
            ("BYE answered 200 (sipp done)", after(done, bye)),
        ],
    );
    alice.quit();
}

#[test]
fn no_answer_480_ends_client_leg_with_timeout() {
    let (mut bed, mut sipp, mut alice, sid, _) =
        outbound_to_sipp("e2e-fail-480", "uas_ring_480.xml", |_| {});
    let sent_480 = sipp.wait("SIP/2.0 480", WAIT).expect("sipp logged it");
    let ended = bed.assert_terminated(&mut alice, &sid, "timeout");
    sipp_passed(&mut sipp, "480 ACKed");
    bed.assert_summary("trunk", "timeout");
    let acked = Instant::now();
    check_legs(
        "no answer",
        &[
            (
                "client session-terminate <timeout/>",
                after(ended, sent_480),
            ),
            ("480 ACKed (sipp done)", after(acked, sent_480)),
        ],
    );
    alice.quit();
}

#[test]
fn inbound_decline_gives_603_to_the_caller() {
    let mut bed = SippBed::start(loopback_scratch("e2e-fail-decline"), |_| {});
    let mut alice = bed.alice(OnPropose::Reject);
    let mut sipp = bed.sipp_caller("uac_declined_603.xml");
    let (rejected, _) = wait_event(&mut alice, "JMI reject sent", WAIT, |e| {
        e.name() == "jmi_sent" && e.str("action") == Some("reject")
    });
    let got_603 = sipp.wait("SIP/2.0 603", WAIT).expect("sipp logged it");
    sipp_passed(&mut sipp, "603 received and ACKed");
    let done = Instant::now();
    alice.drain();
    assert!(
        !alice.history().iter().any(|e| e.name() == "incoming"),
        "no session after the reject"
    );
    bed.assert_summary("client", "decline");
    check_legs(
        "inbound decline",
        &[
            ("603 at the caller", after(got_603, rejected)),
            ("603 ACKed (sipp done)", after(done, rejected)),
        ],
    );
    alice.quit();
}

#[test]
fn sigterm_drains_an_established_call_on_both_legs_and_exits_0() {
    let (mut bed, mut sipp, mut alice, sid, _) =
        outbound_to_sipp("e2e-fail-drain", "uas_answer_wait_bye.xml", |_| {});
    wait_accepted(&mut alice, &sid);
    std::thread::sleep(Duration::from_millis(500));
    let signalled = Instant::now();
    bed.gateway
        .process()
        .signal(Signal::SIGTERM)
        .expect("SIGTERM to the gateway");
    let bye = sipp.wait("BYE sip:", WAIT).expect("sipp logged it");
    let (ended, condition) = wait_terminated(&mut alice, &sid, WAIT);
    assert!(
        !condition.is_empty() && condition != "success",
        "a drained call ends with a failure reason, got {condition:?}"
    );
    let status = bed
        .gateway
        .process()
        .wait_timeout(Duration::from_secs(10))
        .expect("the gateway exits after draining");
    let exited = Instant::now();
    assert!(
        status.success(),
        "gateway exit {status}\n{}",
        bed.gateway_log()
    );
    sipp_passed(&mut sipp, "BYE answered 200");
    bed.assert_summary("gateway", &condition);
    eprintln!("drain: client reason <{condition}/>");
    check_legs(
        "drain",
        &[
            ("BYE at the trunk", after(bye, signalled)),
            ("client session-terminate", after(ended, signalled)),
            ("gateway exited 0", after(exited, signalled)),
        ],
    );
    alice.quit();
}

#[test]
fn failover_from_503_to_the_second_trunk_completes_the_call() {
    let scratch = loopback_scratch("e2e-fail-failover");
    let mut first = Sipp::uas(&scratch, "uas_unavailable_503.xml").expect("sipp starts");
    let phone_dir = scratch.subdir("baresip").expect("subdir");
    let phone_port = free_port_range(2);
    let mut phone = e2e_support::baresip(&phone_dir, phone_port, Duration::from_secs(90), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let first_port = first.port();
    let mut bed = SippBed::start(scratch, |c| {
        // The second trunk of the testbed (`kamailio`) turned into a plain IP trunk
        // pointing at baresip.
        c.set("sip.trunks.0.port", first_port)
            .set("sip.trunks.1.port", phone_port)
            .set("sip.trunks.1.auth", "ip")
            .set("routing.routes.0.trunks", "[\"local\", \"kamailio\"]");
    });
    let mut alice = bed.alice(OnPropose::Answer);
    let started = Instant::now();
    let sid = alice.call(&bed.number(), true).expect("call placed");
    let sent_503 = first.wait("SIP/2.0 503", WAIT).expect("sipp logged it");
    let accepted = wait_accepted(&mut alice, &sid);
    sipp_passed(&mut first, "503 ACKed");
    let invites = first
        .log()
        .lines()
        .filter(|l| l.starts_with("INVITE sip:"))
        .count();
    assert_eq!(invites, 1, "the first trunk is tried once");
    let phone_log = std::fs::read_to_string(phone.log_path()).unwrap_or_default();
    assert!(
        phone_log.contains("Call established") || phone_log.contains("call established"),
        "the second trunk (baresip) answered\n{}",
        phone.log_tail(30)
    );
    eprintln!(
        "failover: call -> 503 {} ms, 503 -> accepted via the second trunk {} ms",
        after(sent_503, started).as_millis(),
        after(accepted, sent_503).as_millis()
    );
    alice.hangup("success").expect("hangup");
    let deadline = Instant::now() + WAIT;
    while !std::fs::read_to_string(phone.log_path())
        .unwrap_or_default()
        .contains("session closed")
    {
        assert!(
            Instant::now() < deadline,
            "the second trunk never saw the call end\n{}\n{}",
            phone.log_tail(30),
            bed.gateway_log()
        );
        std::thread::sleep(POLL);
    }
    bed.assert_summary("client", "success");
    alice.quit();
    phone.kill();
}

#[test]
fn invite_from_unknown_source_gets_403_and_no_stanza() {
    let mut bed = SippBed::start(loopback_scratch("e2e-fail-403"), |c| {
        // No trunk trusts 127.0.0.1 any more: both are reached at ::1 (never used
        // here) and allow only ::1.
        for t in 0..2 {
            c.set(&format!("sip.trunks.{t}.host"), "::1")
                .set(&format!("sip.trunks.{t}.allowed_sources"), "[\"::1\"]");
        }
    });
    let mut alice = bed.alice(OnPropose::Answer);
    let mut sipp = bed.sipp_caller("uac_forbidden_403.xml");
    let got_403 = sipp.wait("SIP/2.0 403", WAIT).expect("sipp logged it");
    sipp_passed(&mut sipp, "403 received and ACKed");
    // Nothing may reach alice: give a stanza time to arrive, then look.
    while got_403.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(POLL);
    }
    alice.drain();
    let seen: Vec<String> = alice
        .history()
        .iter()
        .filter(|e| e.name() == "jmi" || e.name() == "incoming")
        .map(|e| e.0.to_string())
        .collect();
    assert!(seen.is_empty(), "stanzas reached the user: {seen:?}");
    let from_gateway = alice
        .stanzas()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.dir == "in" && s.xml.contains(bed.prosody.component_domain()))
        .filter(|s| s.xml.contains("propose") || s.xml.contains("jingle"))
        .count();
    assert_eq!(from_gateway, 0, "no call stanza from the gateway");
    let log = std::fs::read_to_string(bed.gateway.process().log_path()).unwrap_or_default();
    assert!(
        log.contains("unauthorized source"),
        "the 403 is the source check's\n{}",
        bed.gateway_log()
    );
    assert!(
        !log.contains("inbound call refused"),
        "the call never reached the call layer"
    );
    alice.quit();
}

#[test]
fn inbound_busy_reject_gives_486_to_the_caller() {
    let mut bed = SippBed::start(loopback_scratch("e2e-fail-in-busy"), |_| {});
    let mut alice = bed.alice_rejecting_with(OnPropose::Reject, "busy");
    let mut sipp = bed.sipp_caller("uac_busy_486.xml");
    let (rejected, _) = wait_event(&mut alice, "JMI reject sent", WAIT, |e| {
        e.name() == "jmi_sent" && e.str("action") == Some("reject")
    });
    let got_486 = sipp.wait("SIP/2.0 486", WAIT).expect("sipp logged it");
    sipp_passed(&mut sipp, "486 received and ACKed");
    bed.assert_summary("client", "busy");
    check_legs(
        "inbound busy",
        &[("486 at the caller", after(got_486, rejected))],
    );
    alice.quit();
}

#[test]
fn inbound_unanswered_rings_out_with_480_and_retract() {
    const RING: Duration = Duration::from_secs(1);
    let mut bed = SippBed::start(loopback_scratch("e2e-fail-in-noanswer"), |c| {
        c.set("calls.ring_timeout", "1s");
    });
    let mut alice = bed.alice(OnPropose::Ignore);
    let mut sipp = bed.sipp_caller("uac_unanswered_480.xml");
    // The gateway's ring timer starts with the INVITE.
    let invited = sipp.wait("INVITE sip:", WAIT).expect("sipp logged it");
    let (_, propose) = wait_event(&mut alice, "JMI propose", WAIT, |e| {
        e.name() == "jmi" && e.str("action") == Some("propose")
    });
    let id = propose.str("id").unwrap_or_default().to_owned();
    let got_480 = sipp.wait("SIP/2.0 480", WAIT).expect("sipp logged it");
    let (retracted, _) = wait_event(&mut alice, "JMI retract", WAIT, |e| {
        e.name() == "jmi" && e.str("action") == Some("retract") && e.str("id") == Some(&id)
    });
    sipp_passed(&mut sipp, "480 received and ACKed");
    bed.assert_summary("gateway", "timeout");
    let rang = after(got_480, invited);
    assert!(
        rang + Duration::from_millis(100) >= RING,
        "the 480 came {rang:?} after the INVITE, before the ring timeout {RING:?}"
    );
    // The trigger is the ring timeout's expiry, RING after the INVITE.
    let deadline = invited + RING;
    check_legs(
        "inbound no answer",
        &[
            ("480 at the caller", after(got_480, deadline)),
            ("retract at the client", after(retracted, deadline)),
        ],
    );
    alice.quit();
}
