//! Inbound calls end to end (issue 6, INTEROP.md E.3): baresip calls the DID
//! `+15551230001` of alice through our gateway; alice's libwebrtc client gets a JMI
//! propose from `+15551230000@gw.localhost`, proceeds, accepts our session-initiate;
//! the gateway answers the SIP call once ICE and DTLS are up; tones are verified both
//! ways; alice hangs up.
//!
//! Runs inside a loopback-only namespace (`scripts/test-all`, or
//! `unshare --net -- bash -c 'ip link set lo up; cargo test -p jsg-tests --test e2e_inbound -- --nocapture'`);
//! needs `jingle-sip-gateway` built.

mod e2e_support;

use std::time::Duration;

use e2e_support::{inbound_call, start_bed, CLIENT_HZ, PHONE_HZ};
use testbed::Namespace;

#[test]
fn inbound_call_to_a_did_rings_the_user_and_tones_pass_both_ways() {
    Namespace::require_loopback_only();
    let mut bed = start_bed("e2e-in", Duration::from_secs(90)).unwrap_or_else(|e| panic!("{e}"));
    let o = inbound_call(&mut bed, "+15551230001").unwrap_or_else(|e| {
        panic!(
            "{e}\n--- gateway ---\n{}",
            bed.gateway.process().log_tail(60)
        )
    });
    eprintln!("{o:#?}");
    assert!(
        o.from.starts_with("+15551230000@"),
        "the propose comes from the caller's number JID: {}",
        o.from
    );
    assert!((o.client_heard_hz - PHONE_HZ).abs() <= PHONE_HZ * 0.02);
    assert!(
        (o.phone_heard_hz - CLIENT_HZ).abs() <= CLIENT_HZ * 0.02,
        "the caller heard {} Hz",
        o.phone_heard_hz
    );
    assert!(o.answered_after_dtls, "SIP 200 only after ICE and DTLS");
    assert!(
        o.bye_reached_caller,
        "alice's hangup reaches the caller as BYE"
    );
}
