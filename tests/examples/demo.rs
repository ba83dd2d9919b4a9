//! The main job on the local test bed (the README's first command, `scripts/demo`):
//! Prosody, the gateway and baresip as the phone on loopback; the libwebrtc client
//! (behaving like Conversations) calls `+15551230000` through the gateway, twice: once
//! with PCMU end to end, once with Opus on the client leg transcoded to PCMU. Each
//! call checks two-way audio (each side hears the other's tone) and prints what
//! happened. Exits 0 when both calls worked, 1 otherwise with the reason.
//!
//! Run it inside a loopback-only network namespace (`scripts/demo` does).

#[path = "../tests/e2e_support/mod.rs"]
mod e2e_support;

use std::process::ExitCode;
use std::time::Duration;

use e2e_support::{outbound_call, start_bed, Outcome, CLIENT_HZ, PHONE_HZ};

fn field<'a>(summary: &'a str, key: &str) -> &'a str {
    summary
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .map_or("?", |v| v.trim_matches('"'))
}

fn within(heard: f64, want: f64) -> bool {
    (heard - want).abs() <= want * 0.02
}

fn print(title: &str, o: &Outcome) -> bool {
    let s = &o.summary;
    let ok = within(o.client_heard_hz, PHONE_HZ) && within(o.phone_heard_hz, CLIENT_HZ);
    println!("== {title}");
    println!("   {} called {}", o.caller, o.callee);
    println!(
        "   codec path: client {} <-> gateway <-> phone {} ({})",
        field(s, "client_codec"),
        field(s, "trunk_codec"),
        if field(s, "transcoded") == "true" {
            "transcoded"
        } else {
            "passthrough"
        }
    );
    println!(
        "   time to connect (call pressed -> answered): {} ms",
        o.time_to_connect.as_millis()
    );
    if let Some(d) = o.propose_to_invite {
        println!("   propose -> SIP INVITE sent: {} ms", d.as_millis());
    }
    if let Some(d) = o.answer_to_audio {
        println!(
            "   SIP 200 -> first audio at the client: {} ms",
            d.as_millis()
        );
    }
    println!(
        "   client heard the phone: {:.1} Hz (sent {PHONE_HZ} Hz) {}",
        o.client_heard_hz,
        if within(o.client_heard_hz, PHONE_HZ) {
            "OK"
        } else {
            "WRONG"
        }
    );
    println!(
        "   phone heard the client: {:.1} Hz (sent {CLIENT_HZ} Hz) {}",
        o.phone_heard_hz,
        if within(o.phone_heard_hz, CLIENT_HZ) {
            "OK"
        } else {
            "WRONG"
        }
    );
    println!(
        "   ICE pair {}, packets client rx/tx {}/{}, trunk rx/tx {}/{}, hung up by {}",
        field(s, "pair"),
        field(s, "client_rx"),
        field(s, "client_tx"),
        field(s, "trunk_rx"),
        field(s, "trunk_tx"),
        field(s, "hung_up_by")
    );
    ok
}

fn main() -> ExitCode {
    if !testbed::Namespace::current().is_ok_and(|n| n.is_loopback_only()) {
        eprintln!(
            "demo: run me inside a loopback-only namespace: {}",
            testbed::HOW_TO_RUN
        );
        return ExitCode::FAILURE;
    }
    let mut all_ok = true;
    for (name, title, codecs) in [
        ("demo-pcmu", "call 1: PCMU end to end", &["PCMU"][..]),
        (
            "demo-opus",
            "call 2: Opus on the client leg, PCMU to the phone",
            &[][..],
        ),
    ] {
        let mut bed = match start_bed(name, Duration::from_secs(90)) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("demo: FAILED to start the test bed: {e}");
                return ExitCode::FAILURE;
            }
        };
        match outbound_call(&mut bed, codecs) {
            Ok(o) => all_ok &= print(title, &o),
            Err(e) => {
                eprintln!(
                    "demo: {title} FAILED: {e}\n--- gateway log (last lines) ---\n{}",
                    bed.gateway.process().log_tail(30)
                );
                return ExitCode::FAILURE;
            }
        }
    }
    if all_ok {
        println!("demo: OK, two-way audio through the gateway on both calls");
        ExitCode::SUCCESS
    } else {
        eprintln!("demo: FAILED, audio was not heard both ways (see above)");
        ExitCode::FAILURE
    }
}
