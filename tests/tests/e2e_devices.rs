//! An inbound call rings every device of the user (issue 6 "Done when" item 3,
//! INTEROP.md E.3): alice is logged in twice (resources `phone` and `laptop`, both
//! online with the default priority 0, so Prosody delivers the bare-JID `<propose/>`
//! to both); baresip calls alice's DID; `phone` proceeds and gets the
//! session-initiate, tones pass both ways; `laptop` proceeds late and gets a
//! `<retract/>` with a reason from the same full JID as the propose, and no
//! session-initiate.
//!
//! Runs inside a loopback-only namespace (`scripts/test-all`, or
//! `unshare --net -- bash -c 'ip link set lo up; cargo test -p jsg-tests --test e2e_devices -- --nocapture'`);
//! needs `jingle-sip-gateway` built.

mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::{baresip_dialing, start_bed, tone_frequency, CLIENT_HZ, PHONE_HZ, WAIT};
use testbed::{Namespace, OnPropose, Scratch, WebrtcClient, WebrtcConfig};

/// alice's DID (`deploy/testbed.toml`).
const DID: &str = "+15551230001";

/// Waits until `client` hears a tone near `hz` (±2 %, RMS > 0.02) over 1 s.
fn hears_tone(client: &mut WebrtcClient, hz: f64) -> f64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = client.audio(Duration::from_secs(1)).expect("audio report");
        if r.frames_received >= 50 && (r.frequency_hz - hz).abs() <= hz * 0.02 && r.rms > 0.02 {
            return r.frequency_hz;
        }
        assert!(
            Instant::now() < deadline,
            "the client never heard {hz} Hz from the caller; last report {r:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn inbound_call_rings_two_devices_one_answers_other_gets_retract() {
    Namespace::require_loopback_only();
    let mut bed =
        start_bed("e2e-devices", Duration::from_secs(90)).unwrap_or_else(|e| panic!("{e}"));
    // Each client names its logs after the account, so the second one lives in its
    // own scratch directory.
    let scratch_b = Scratch::new("e2e-devices-laptop").expect("scratch");
    let mut config = WebrtcConfig::new(bed.prosody.jid("alice"), "alice-pw");
    config.tone_hz = CLIENT_HZ;
    config.renomination = true;
    config.resource = "phone".into();
    let mut a = WebrtcClient::start(&bed.scratch, &bed.prosody, &config).expect("alice/phone");
    config.resource = "laptop".into();
    config.on_propose = OnPropose::Ignore;
    let mut b = WebrtcClient::start(&scratch_b, &bed.prosody, &config).expect("alice/laptop");

    let dir = bed.scratch.subdir("caller").expect("caller dir");
    let caller = baresip_dialing(&dir, DID, bed.gateway.sip_port(), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));

    let gw_log = |bed: &mut e2e_support::Bed| bed.gateway.process().log_tail(60);
    let pa = a
        .wait_jmi("propose", WAIT)
        .unwrap_or_else(|e| panic!("no propose at alice/phone: {e}\n{}", gw_log(&mut bed)));
    let pb = b.wait_jmi("propose", WAIT).unwrap_or_else(|e| {
        panic!(
            "no propose at alice/laptop (Prosody delivers a bare-JID chat message to every \
             resource of the highest non-negative priority): {e}\n{}",
            gw_log(&mut bed)
        )
    });
    let from = pa.str("from").unwrap_or_default().to_owned();
    let sid = pa.str("id").unwrap_or_default().to_owned();
    eprintln!("propose from {from}, id {sid}");
    assert_eq!(
        pb.str("from"),
        Some(from.as_str()),
        "both devices got the same propose"
    );
    assert_eq!(pb.str("id"), Some(sid.as_str()));
    assert!(
        from.starts_with(&format!("+15551230000@{}/", bed.prosody.component_domain())),
        "the propose comes from the caller's number JID (full): {from}"
    );

    a.wait_for("incoming", WAIT).unwrap_or_else(|e| {
        panic!(
            "alice/phone got no session-initiate: {e}\n{}",
            gw_log(&mut bed)
        )
    });
    let heard = hears_tone(&mut a, PHONE_HZ);
    eprintln!("alice/phone heard {heard:.1} Hz");

    // Nothing was retracted yet: the retract below answers the late proceed.
    b.drain();
    assert!(
        !b.history()
            .iter()
            .any(|e| e.name() == "jmi" && e.str("action") == Some("retract")),
        "alice/laptop got a retract before it proceeded: {:?}",
        b.history()
    );
    // The late device answers now.
    let proceed = format!(
        "<message xmlns='jabber:client' to='{from}' type='chat' id='late-proceed'>\
         <proceed xmlns='urn:xmpp:jingle-message:0' id='{sid}'/></message>"
    );
    b.send_raw(&proceed).expect("late proceed");
    let retract = b
        .wait_jmi("retract", WAIT)
        .unwrap_or_else(|e| panic!("no retract at alice/laptop: {e}\n{}", gw_log(&mut bed)));
    eprintln!("alice/laptop got {:?}", retract.0);
    assert_eq!(
        retract.str("from"),
        Some(from.as_str()),
        "retract from the propose's full JID"
    );
    assert_eq!(retract.str("id"), Some(sid.as_str()));
    let reason = retract.get("reason").cloned().unwrap_or_default();
    assert!(
        reason.get("condition").and_then(|c| c.as_str()).is_some(),
        "the retract carries a reason: {reason}"
    );

    // Let the caller record alice's tone, keep the call up while checking that the
    // late device got nothing else.
    std::thread::sleep(Duration::from_secs(2));
    b.drain();
    assert!(
        !b.history().iter().any(|e| e.name() == "incoming"),
        "alice/laptop must not get a session"
    );
    let b_stanzas = b.stanzas().expect("laptop stanzas");
    assert!(
        !b_stanzas
            .iter()
            .any(|s| s.dir == "in" && s.xml.contains("session-initiate")),
        "alice/laptop must get no session-initiate"
    );
    let still = a.audio(Duration::from_secs(1)).expect("audio");
    assert!(
        (still.frequency_hz - PHONE_HZ).abs() <= PHONE_HZ * 0.02,
        "the answered call survives the late proceed: {still:?}"
    );

    a.hangup("success").expect("hangup");
    // baresip writes the recording's final header when the call ends.
    let recording =
        testbed::recording::wait_complete_wav(&dir, "-dec.wav", WAIT).unwrap_or_else(|e| {
            panic!(
                "the caller's recording: {e}\n{}",
                testbed::log_tail(caller.log_path(), 30)
            )
        });
    let phone_heard = tone_frequency(&recording).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("the caller heard {phone_heard:.1} Hz");
    assert!(
        (phone_heard - CLIENT_HZ).abs() <= CLIENT_HZ * 0.02,
        "the caller heard {phone_heard} Hz"
    );
    a.quit();
    b.quit();
}
