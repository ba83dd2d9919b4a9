//! The `Gateway` launcher drives our built binary with the test bed's settings.
//!
//! Needs `jingle-sip-gateway` built (`cargo test --workspace` builds it; with
//! `-p jsg-tests` alone, `cargo build -p jingle-sip-gateway` first).

use std::time::Duration;

use testbed::{Gateway, GatewayConfig, Namespace, Prosody, Scratch, WebrtcClient, WebrtcConfig};

#[test]
fn launcher_overrides_reach_the_gateway_config() {
    Namespace::require_loopback_only();
    let scratch = Scratch::new("gateway-config").expect("scratch");
    let prosody = Prosody::start_default(&scratch).expect("prosody starts");
    let config = GatewayConfig::default();
    let (ok, out) = Gateway::check_config(&scratch, &prosody, &config).expect("check-config runs");
    assert!(
        ok,
        "deploy/testbed.toml with the harness's overrides is valid:\n{out}"
    );
    let expected = format!(
        "component {} via 127.0.0.1:{}",
        prosody.component_domain(),
        prosody.component_port()
    );
    assert!(
        out.contains(&expected),
        "component port from Prosody: {out}"
    );

    // a mistyped override is reported by the gateway, naming the key
    let mut bad = GatewayConfig::default();
    bad.set("xmpp.no_such_key", "1");
    let (ok, out) = Gateway::check_config(&scratch, &prosody, &bad).expect("check-config runs");
    assert!(!ok, "unknown key rejected: {out}");
    assert!(out.contains("no_such_key"), "{out}");
}

/// Live (non-zombie) processes in process group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() != Some(&"Z") && fields.get(2).and_then(|f| f.parse().ok()) == Some(pgid)
        {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn gateway_process_runs_under_the_harness_and_dies_with_it() {
    Namespace::require_loopback_only();
    let scratch = Scratch::new("gateway-process").expect("scratch");
    let prosody = Prosody::start_default(&scratch).expect("prosody starts");
    let config = GatewayConfig {
        time_limit: Duration::from_secs(30),
        ..GatewayConfig::default()
    };
    let mut gateway = Gateway::start(&scratch, &prosody, &config).expect("gateway starts");
    // a config problem would make it exit at once
    std::thread::sleep(Duration::from_millis(500));
    gateway
        .process()
        .check_running()
        .expect("gateway keeps running");
    let pgid = gateway.process().pid();
    let members = group_members(pgid);
    assert!(
        members.len() >= 2,
        "timeout(1) and the gateway: {members:?}"
    );
    gateway.kill();
    assert_eq!(
        group_members(pgid),
        Vec::<u32>::new(),
        "the whole group is gone"
    );
}

#[test]
fn gateway_joins_prosody_as_component_and_answers_disco() {
    Namespace::require_loopback_only();
    let scratch = Scratch::new("gateway-disco").expect("scratch");
    let mut prosody = Prosody::start_default(&scratch).expect("prosody starts");
    prosody.register("alice", "alice-pw").expect("register");
    let config = GatewayConfig {
        time_limit: Duration::from_secs(60),
        ..GatewayConfig::default()
    };
    let _gateway = Gateway::start(&scratch, &prosody, &config).expect("gateway starts");
    prosody
        .wait_component_authenticated(0, Duration::from_secs(20))
        .expect("the gateway completes the XEP-0114 handshake");
    let mut client_config = WebrtcConfig::new(prosody.jid("alice"), "alice-pw");
    client_config.time_limit = Duration::from_secs(60);
    let mut alice = WebrtcClient::start(&scratch, &prosody, &client_config).expect("alice logs in");
    let info = alice
        .disco(prosody.component_domain(), None)
        .expect("the gateway answers disco#info");
    let identities = info.get("identities").expect("identities").to_string();
    assert!(
        identities.contains("\"gateway\"") && identities.contains("\"pstn\""),
        "identity gateway/pstn: {identities}"
    );
    alice.quit();
}
