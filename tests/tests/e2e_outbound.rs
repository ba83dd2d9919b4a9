//! Outbound calls end to end (issue 6, INTEROP.md E.2): the libwebrtc client behaving
//! like Conversations (JMI, inline candidates, renomination) on a real Prosody calls
//! `+15551230000@gw.localhost` through our gateway; the trunk is baresip (auto-answer,
//! playing a 440 Hz tone, recording what it hears). Tones are verified both ways, the
//! client hangs up and the BYE reaches the phone.
//!
//! Runs inside a loopback-only namespace (`scripts/test-all`, or
//! `unshare --net -- bash -c 'ip link set lo up; cargo test -p jsg-tests --test e2e_outbound -- --nocapture'`);
//! needs `jingle-sip-gateway` built.

mod e2e_support;

use std::time::Duration;

use e2e_support::{outbound_call, start_bed, Outcome, CLIENT_HZ, PHONE_HZ};
use testbed::Namespace;

const LIMIT: Duration = Duration::from_secs(90);

fn check(o: &Outcome, client_codec: &str, transcoded: bool) {
    eprintln!("{o:#?}");
    assert!(
        o.client_codec
            .to_ascii_lowercase()
            .ends_with(&client_codec.to_ascii_lowercase()),
        "client codec {} (want {client_codec})",
        o.client_codec
    );
    assert!((o.client_heard_hz - PHONE_HZ).abs() <= PHONE_HZ * 0.02);
    assert!(
        (o.phone_heard_hz - CLIENT_HZ).abs() <= CLIENT_HZ * 0.02,
        "the phone heard {} Hz, want {CLIENT_HZ} Hz ±2 %",
        o.phone_heard_hz
    );
    assert!(
        o.summary.contains("hung_up_by=\"client\"") || o.summary.contains("hung_up_by=client"),
        "summary: {}",
        o.summary
    );
    assert!(
        o.summary.contains(&format!("transcoded={transcoded}")),
        "summary: {}",
        o.summary
    );
    assert!(
        o.summary.contains("trunk_codec=\"PCMU\"") || o.summary.contains("trunk_codec=PCMU"),
        "summary: {}",
        o.summary
    );
    if let Some(d) = o.propose_to_invite {
        eprintln!("propose -> INVITE sent: {} ms", d.as_millis());
    }
    if let Some(d) = o.answer_to_audio {
        eprintln!("SIP 200 -> first audio at the client: {} ms", d.as_millis());
    }
}

#[test]
fn outbound_pcmu_passthrough_tones_both_ways() {
    Namespace::require_loopback_only();
    let mut bed = start_bed("e2e-out-pcmu", LIMIT).unwrap_or_else(|e| panic!("{e}"));
    let o = outbound_call(&mut bed, &["PCMU"]).unwrap_or_else(|e| {
        panic!(
            "{e}\n--- gateway ---\n{}",
            bed.gateway.process().log_tail(60)
        )
    });
    check(&o, "PCMU", false);
    assert!(
        o.bye_reached_phone,
        "baresip log:\n{}",
        bed.phone.log_tail(30)
    );
}

#[test]
fn outbound_opus_to_pcmu_transcoded_tones_both_ways() {
    Namespace::require_loopback_only();
    let mut bed = start_bed("e2e-out-opus", LIMIT).unwrap_or_else(|e| panic!("{e}"));
    let o = outbound_call(&mut bed, &[]).unwrap_or_else(|e| {
        panic!(
            "{e}\n--- gateway ---\n{}",
            bed.gateway.process().log_tail(60)
        )
    });
    check(&o, "opus", true);
    assert!(
        o.bye_reached_phone,
        "baresip log:\n{}",
        bed.phone.log_tail(30)
    );
}
