//! An outbound call through Kamailio requiring SHA-256 digest (RFC 8760) as the trunk
//! (issue 6 "Done when": "SIPp behind Kamailio with SHA-256 digest, as the trunk"):
//! the gateway's `kamailio` trunk registers (REGISTER → 401 → REGISTER with
//! `Authorization`), the libwebrtc client calls `+15551230000`, the gateway's INVITE
//! gets 407 and is resent with `Proxy-Authorization` (algorithm SHA-256); Kamailio
//! record-routes it to baresip, which answers and plays its tone; tones are verified
//! both ways. Kamailio runs `tests/peers/sip/kamailio-digest.cfg.in`.
//!
//! Runs inside a loopback-only namespace (`scripts/test-all`, or
//! `unshare --net -- bash -c 'ip link set lo up; cargo test -p jsg-tests --test e2e_kamailio -- --nocapture'`);
//! needs `jingle-sip-gateway` built.

mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::{baresip_on_free_ports, outbound_call, Bed, CLIENT_HZ, PHONE_HZ, WAIT};
use testbed::ports::free_port;
use testbed::{Gateway, GatewayConfig, Namespace, Process, ProcessBuilder, Prosody, Scratch};

/// The trunk's digest password (Kamailio checks it with `pv_*_authenticate`).
const PASSWORD: &str = "kamailio-sha256-pw";

/// Kamailio as registrar and proxy on a free port, relaying authenticated INVITEs to
/// `127.0.0.1:uas_port`; bounded by 90 s.
fn kamailio(scratch: &Scratch, uas_port: u16) -> (Process, u16) {
    let port = free_port();
    let cfg =
        std::fs::read_to_string(testbed::paths::peers_dir().join("sip/kamailio-digest.cfg.in"))
            .expect("kamailio-digest.cfg.in")
            .replace("@KAM_PORT@", &port.to_string())
            .replace("@UAS_PORT@", &uas_port.to_string())
            .replace("@PASSWORD@", PASSWORD);
    let cfg_path = scratch.join("kamailio.cfg");
    std::fs::write(&cfg_path, cfg).expect("write kamailio.cfg");
    let run_dir = scratch.subdir("kamailio-run").expect("run dir");
    let mut process = ProcessBuilder::new("kamailio", "kamailio")
        .arg("-f")
        .arg(&cfg_path)
        .args(["-DD", "-E", "-n", "1", "-Y"])
        .arg(&run_dir)
        .arg("-P")
        .arg(scratch.join("kamailio.pid"))
        .time_limit(Duration::from_secs(90))
        .spawn(scratch.path())
        .expect("kamailio starts");
    let deadline = Instant::now() + WAIT;
    while std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        process.check_running().expect("kamailio keeps running");
        assert!(
            Instant::now() < deadline,
            "kamailio did not bind 127.0.0.1:{port}\n{}",
            process.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (process, port)
}

#[test]
fn outbound_call_through_kamailio_with_sha256_digest() {
    Namespace::require_loopback_only();
    let limit = Duration::from_secs(90);
    let scratch = Scratch::new("e2e-kamailio").expect("scratch");
    let mut prosody = Prosody::start_default(&scratch).expect("prosody");
    prosody
        .register("alice", "alice-pw")
        .expect("register alice");
    let phone_dir = scratch.subdir("baresip").expect("baresip dir");
    let (phone, phone_port) =
        baresip_on_free_ports(&phone_dir, limit, &[]).unwrap_or_else(|e| panic!("{e}"));
    let (mut kam, kam_port) = kamailio(&scratch, phone_port);

    let mut config = GatewayConfig {
        time_limit: limit,
        ..GatewayConfig::default()
    };
    // The `kamailio` trunk (deploy/testbed.toml: auth = "registration", username
    // "gateway") on our Kamailio, and first in the route.
    config.set("sip.trunks.1.port", kam_port);
    config.set("sip.trunks.1.password", PASSWORD);
    config.set("routing.routes.0.trunks.0", "kamailio");
    config.set("routing.routes.0.trunks.1", "local");
    config.set("media.prefer_g711_passthrough", false);
    let mut gateway = Gateway::start(&scratch, &prosody, &config).expect("gateway");
    prosody
        .wait_component_authenticated(0, WAIT)
        .expect("the gateway joins Prosody");
    gateway
        .wait_for_log("sip user agent running", WAIT)
        .expect("the gateway's SIP side starts");
    gateway
        .wait_for_log("registered", WAIT)
        .unwrap_or_else(|e| {
            panic!(
                "no registration with Kamailio: {e}\n--- kamailio ---\n{}",
                kam.log_tail(30)
            )
        });

    let mut bed = Bed {
        scratch,
        prosody,
        gateway,
        phone,
        phone_dir,
    };
    let o = outbound_call(&mut bed, &[]).unwrap_or_else(|e| {
        panic!(
            "{e}\n--- gateway ---\n{}\n--- kamailio ---\n{}",
            bed.gateway.process().log_tail(60),
            kam.log_tail(40)
        )
    });
    eprintln!("{o:#?}");
    let gw_log = std::fs::read_to_string(bed.gateway.process().log_path()).unwrap_or_default();
    let invite_sent = gw_log
        .lines()
        .find(|l| l.contains("INVITE sent"))
        .unwrap_or_default();
    assert!(
        invite_sent.contains("trunk=kamailio"),
        "the call went out on the kamailio trunk: {invite_sent}"
    );
    assert!(
        gw_log
            .lines()
            .any(|l| l.contains("INVITE challenged: answering with digest")
                && l.contains("status=407")),
        "the gateway answered Kamailio's 407 challenge:\n{}",
        bed.gateway.process().log_tail(60)
    );
    let kam_log = std::fs::read_to_string(kam.log_path()).unwrap_or_default();
    let notable: Vec<&str> = kam_log
        .lines()
        .filter(|l| l.contains("challenge") || l.contains("authorized"))
        .collect();
    eprintln!("--- kamailio ---\n{}", notable.join("\n"));
    assert!(
        kam_log
            .lines()
            .any(|l| l.contains("REGISTER from") && l.contains(": challenge"))
            && kam_log.contains("REGISTER authorized: Digest"),
        "REGISTER went through 401 and was authorized\n{kam_log}"
    );
    let invite_auth = kam_log
        .lines()
        .find(|l| l.contains("INVITE authorized: Digest"))
        .unwrap_or_else(|| panic!("the INVITE was never authorized\n{kam_log}"));
    assert!(
        kam_log
            .lines()
            .any(|l| l.contains("INVITE from") && l.contains(": challenge")),
        "the first INVITE was challenged (407)\n{kam_log}"
    );
    assert!(
        invite_auth.contains("algorithm=SHA-256"),
        "the gateway answered with SHA-256: {invite_auth}"
    );
    assert!(
        (o.client_heard_hz - PHONE_HZ).abs() <= PHONE_HZ * 0.02,
        "the client heard {} Hz",
        o.client_heard_hz
    );
    assert!(
        (o.phone_heard_hz - CLIENT_HZ).abs() <= CLIENT_HZ * 0.02,
        "the phone heard {} Hz",
        o.phone_heard_hz
    );
    assert!(
        o.bye_reached_phone,
        "alice's hangup reaches the phone (via Kamailio's route set)"
    );
    kam.kill();
}
