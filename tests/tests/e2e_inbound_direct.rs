//! Inbound call to a user without JMI (issue 6, INTEROP.md E.3 last paragraph): alice's
//! only resource is the libwebrtc client configured NOT to advertise
//! `urn:xmpp:jingle-message:0` (like Gajim 1.x). alice adds the caller's number JID to
//! her roster, so her presence (with XEP-0115 caps) reaches the gateway, which learns
//! her features by disco#info. baresip then calls her DID `+15551230001`: the gateway
//! sends `session-initiate` straight to `alice@…/testbed` without any JMI propose; the
//! client accepts; SIP 200 goes to the caller only after ICE and DTLS; tones are
//! verified both ways; alice hangs up and the caller gets BYE.
//!
//! Runs inside a loopback-only namespace (`scripts/test-all`, or
//! `unshare --net -- bash -c 'ip link set lo up; cargo test -p jsg-tests --test e2e_inbound_direct -- --nocapture'`);
//! needs `jingle-sip-gateway` built.

mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::{
    baresip_dialing, hears_tone, start_bed, tone_frequency, CLIENT_HZ, PHONE_HZ, WAIT,
};
use testbed::{Namespace, WebrtcClient, WebrtcConfig};

/// The caller's number (baresip's account in `e2e_support`).
const CALLER: &str = "+15551230000";
/// alice's DID in the test bed's gateway configuration.
const DID: &str = "+15551230001";

#[test]
fn a_user_without_jmi_gets_a_direct_session_initiate_and_tones_pass_both_ways() {
    Namespace::require_loopback_only();
    let mut bed =
        start_bed("e2e-in-direct", Duration::from_secs(90)).unwrap_or_else(|e| panic!("{e}"));
    let mut config = WebrtcConfig::new(bed.prosody.jid("alice"), "alice-pw");
    config.tone_hz = CLIENT_HZ;
    config.renomination = true;
    config.advertise_jmi = false;
    config.time_limit = Duration::from_secs(90);
    let mut alice = WebrtcClient::start(&bed.scratch, &bed.prosody, &config)
        .unwrap_or_else(|e| panic!("the client did not log in: {e}"));
    let gw_log = bed.gateway.process().log_path().to_owned();
    let fail = |what: String| -> ! {
        panic!(
            "{what}\n--- gateway ---\n{}",
            testbed::log_tail(&gw_log, 60)
        )
    };

    // alice adds the caller's number: mutual subscription, then her presence with caps
    // reaches the gateway, which asks for her features.
    let number_jid = format!("{CALLER}@{}", bed.prosody.component_domain());
    alice
        .subscribe(&number_jid)
        .unwrap_or_else(|e| fail(format!("subscribe: {e}")));
    alice
        .wait_presence(&number_jid, "subscribed", WAIT)
        .unwrap_or_else(|e| fail(format!("no subscribed: {e}")));
    bed.gateway
        .wait_for_log("caps learnt", WAIT)
        .unwrap_or_else(|e| fail(format!("the gateway did not learn alice's caps: {e}")));
    let log = std::fs::read_to_string(&gw_log).unwrap_or_default();
    let caps_line = log
        .lines()
        .find(|l| l.contains("caps learnt"))
        .unwrap_or("");
    assert!(
        caps_line.contains("jmi=false") && caps_line.contains("rtp_audio=true"),
        "alice's caps: {caps_line}"
    );

    // The caller dials alice's DID.
    let dir = bed.scratch.subdir("caller").unwrap();
    let started = Instant::now();
    let caller = baresip_dialing(&dir, DID, bed.gateway.sip_port(), Duration::from_secs(60))
        .unwrap_or_else(|e| fail(e));
    let incoming = alice.wait_for("incoming", WAIT).unwrap_or_else(|e| {
        fail(format!(
            "no call reached the client: {e}\n--- caller ---\n{}",
            testbed::log_tail(caller.log_path(), 20)
        ))
    });
    let dial_to_initiate = started.elapsed();
    assert_eq!(
        incoming.get("jmi").and_then(serde_json::Value::as_bool),
        Some(false),
        "a session-initiate without JMI: {incoming:?}"
    );
    assert!(
        incoming
            .str("from")
            .is_some_and(|f| f.starts_with(&format!("{CALLER}@"))),
        "from the caller's number JID: {incoming:?}"
    );
    assert!(
        !alice
            .history()
            .iter()
            .any(|e| e.name() == "jmi" && e.str("action") == Some("propose")),
        "no JMI propose reached the client"
    );
    let client_heard = hears_tone(&mut alice, PHONE_HZ).unwrap_or_else(|e| fail(e));
    std::thread::sleep(Duration::from_secs(2));
    alice
        .hangup("success")
        .unwrap_or_else(|e| fail(format!("hangup: {e}")));
    // baresip writes the recording's final header when the call ends.
    let recording =
        testbed::recording::wait_complete_wav(&dir, "-dec.wav", WAIT).unwrap_or_else(|e| {
            fail(format!(
                "the caller's recording: {e}\n{}",
                testbed::log_tail(caller.log_path(), 30)
            ))
        });
    let phone_heard = tone_frequency(&recording).unwrap_or_else(|e| fail(e));
    let log = std::fs::read_to_string(&gw_log).unwrap_or_default();
    let caller_log = std::fs::read_to_string(caller.log_path()).unwrap_or_default();
    eprintln!(
        "dial → session-initiate at the client: {} ms; client heard {client_heard:.1} Hz, \
         caller heard {phone_heard:.1} Hz",
        dial_to_initiate.as_millis()
    );
    assert!(
        log.contains("no JMI-capable resource: direct session-initiate"),
        "the gateway chose the direct initiate"
    );
    assert!(!log.contains("propose sent"), "no propose was sent");
    assert!((client_heard - PHONE_HZ).abs() <= PHONE_HZ * 0.02);
    assert!(
        (phone_heard - CLIENT_HZ).abs() <= CLIENT_HZ * 0.02,
        "the caller heard {phone_heard} Hz"
    );
    let (dtls, answered) = (
        log.find("dtls connected"),
        log.find("ICE and DTLS up: SIP 200 sent"),
    );
    assert!(
        matches!((dtls, answered), (Some(d), Some(a)) if d < a),
        "SIP 200 only after ICE and DTLS"
    );
    assert!(
        caller_log.contains("session closed: Connection reset by peer"),
        "alice's hangup reaches the caller as BYE"
    );
    alice.quit();
}
