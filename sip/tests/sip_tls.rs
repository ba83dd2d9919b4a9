//! SIP over TLS against a real peer: Kamailio's tls module on loopback, with
//! a throwaway CA and certificates made by `openssl` in the test's scratch
//! directory. Verification must succeed for a certificate of the trusted CA
//! naming the trunk host, and fail clearly for an untrusted issuer or a
//! different name.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use sip::sdp::LocalMedia;
use sip::{EndReason, Event, OutboundCall, RegistrationState, Transport, UserAgent};

fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("timeout")
        .arg("20")
        .arg("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed (scripts/install-deps)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes `<ca>.pem`/`<ca>.key`, a CA certificate, unless it exists.
fn make_ca(dir: &Path, ca: &str) {
    if dir.join(format!("{ca}.pem")).exists() {
        return;
    }
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
            "-subj",
            &format!("/CN={ca}"),
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// Makes `cert.pem`/`key.pem` for `dns_name`, signed by CA `ca`.
fn make_leaf(dir: &Path, ca: &str, dns_name: &str) {
    make_ca(dir, ca);
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
            "-subj",
            &format!("/CN={dns_name}"),
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        format!(
            "subjectAltName=DNS:{dns_name}\nbasicConstraints=critical,CA:FALSE\n\
             extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kamailio listening for TLS on 127.0.0.1 and ::1, with the
/// `cert.pem`/`key.pem` of `scratch`, and for UDP (callers to relay) on
/// the port returned second.
async fn start_kamailio_tls(scratch: &Scratch) -> (Peer, u16, u16) {
    start_kamailio_tls_on(scratch, free_tcp_port(), free_udp_port()).await
}

async fn start_kamailio_tls_on(scratch: &Scratch, port: u16, udp_port: u16) -> (Peer, u16, u16) {
    init_tracing();
    let dir = scratch.0.display().to_string();
    std::fs::write(
        scratch.0.join("tls.cfg"),
        format!(
            "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n\
             require_certificate = no\nprivate_key = {dir}/key.pem\n\
             certificate = {dir}/cert.pem\n"
        ),
    )
    .unwrap();
    let cfg = std::fs::read_to_string(peers_dir().join("kamailio-tls.cfg.in"))
        .unwrap()
        .replace("@KAM_PORT@", &port.to_string())
        .replace("@UDP_PORT@", &udp_port.to_string())
        .replace("@DIR@", &dir);
    let peer = Peer::kamailio(scratch, &cfg);
    for _ in 0..500 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            wait_udp_bound(udp_port).await;
            return (peer, port, udp_port);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("kamailio did not listen on TLS:\n{}", peer.log_text());
}

/// A TLS trunk toward `localhost:port`, trusting `roots`.
fn tls_config(port: u16, roots: &Path) -> sip::Config {
    let mut config = loopback_config(port);
    config
        .tls_roots(Some(roots.to_path_buf()))
        .trunk_mut("peer")
        .unwrap()
        .host("localhost")
        .transport(Transport::Tls)
        .register(true)
        .register_expires(Duration::from_secs(60));
    config
}

async fn first_registration(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
) -> RegistrationState {
    match wait_registration(events).await {
        Event::Registration { state, .. } => state,
        _ => unreachable!(),
    }
}

/// Kamailio for TLS with a `localhost` certificate of `trusted-ca` (both made in
/// `scratch`), and our user agent, trusting that CA, registered to it over TLS.
/// Returns Kamailio, its UDP port, the user agent and its events.
async fn registered_over_tls(
    scratch: &Scratch,
) -> (
    Peer,
    u16,
    UserAgent,
    tokio::sync::mpsc::UnboundedReceiver<Event>,
) {
    make_leaf(&scratch.0, "trusted-ca", "localhost");
    let (kam, port, kam_udp) = start_kamailio_tls(scratch).await;
    let (ua, mut events) = UserAgent::start(tls_config(port, &scratch.0.join("trusted-ca.pem")))
        .await
        .unwrap();
    let state = first_registration(&mut events).await;
    assert!(
        matches!(state, RegistrationState::Registered { .. }),
        "{state:?}\n{}",
        kam.log_text()
    );
    (kam, kam_udp, ua, events)
}

/// REGISTER and INVITE over TLS to Kamailio: the certificate of our CA for
/// `localhost` verifies (SNI `localhost`), Kamailio sees both requests
/// arrive over TLS, and its 486 ends the call with that status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_tls_register_and_invite() {
    let scratch = Scratch::new("tls-ok");
    let (kam, _, ua, mut events) = registered_over_tls(&scratch).await;
    ua.call(
        "peer",
        OutboundCall {
            to: "+15550000001".into(),
            caller_id: None,
            media: LocalMedia::new("127.0.0.1".parse().unwrap(), 41000, 1),
        },
    )
    .unwrap();
    let ended = wait_ended(&mut events).await;
    assert!(
        matches!(
            &ended,
            Event::Ended {
                reason: EndReason::Rejected { status: 486, .. },
                ..
            }
        ),
        "{ended:?}\n{}",
        kam.log_text()
    );
    let log = kam.log_text();
    assert!(log.contains("REGISTER over tls"), "{log}");
    assert!(log.contains("INVITE over tls"), "{log}");
    assert!(
        !log.contains("over udp") && !log.contains("over tcp"),
        "{log}"
    );
    ua.shutdown();
}

/// Expects the first registration to fail before any request reaches
/// Kamailio, with an error whose text contains `want`.
async fn expect_tls_failure(scratch: &Scratch, roots: &Path, want: &str) {
    let (kam, port, _) = start_kamailio_tls(scratch).await;
    let started = std::time::Instant::now();
    let (ua, mut events) = UserAgent::start(tls_config(port, roots)).await.unwrap();
    let state = first_registration(&mut events).await;
    let RegistrationState::Failed { reason, .. } = &state else {
        panic!("registered despite a bad certificate: {state:?}");
    };
    let text = reason.to_string();
    assert!(matches!(reason, sip::Error::Transport(_)), "{reason:?}");
    assert!(text.contains(want), "error lacks {want:?}: {text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let log = kam.log_text();
    assert!(
        !log.contains("REGISTER over"),
        "a request got through:\n{log}"
    );
    ua.shutdown();
}

/// A certificate from a CA we do not trust fails verification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_tls_untrusted_issuer_fails() {
    let scratch = Scratch::new("tls-untrusted");
    make_leaf(&scratch.0, "rogue-ca", "localhost");
    make_ca(&scratch.0, "trusted-ca");
    expect_tls_failure(&scratch, &scratch.0.join("trusted-ca.pem"), "UnknownIssuer").await;
}

/// A certificate of the trusted CA for another name fails: SNI and the name
/// checked are the trunk host, `localhost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_tls_wrong_name_fails() {
    let scratch = Scratch::new("tls-wrong-name");
    make_leaf(&scratch.0, "trusted-ca", "other.example");
    expect_tls_failure(
        &scratch,
        &scratch.0.join("trusted-ca.pem"),
        "certificate not valid for name \"localhost\"",
    )
    .await;
}

/// An inbound call over TLS: a SIPp carrier UAC calls Kamailio over UDP;
/// Kamailio relays the INVITE (record-routed) to our registered contact
/// over the TLS connection we opened (we do not listen for TLS: our Via
/// carries the RFC 5923 `alias`). We answer; SIPp holds and resumes by
/// re-INVITE and hangs up with BYE, all through Kamailio and our connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_tls_inbound_call_over_our_connection() {
    let scratch = Scratch::new("tls-inbound");
    let (kam, kam_udp, ua, mut events) = registered_over_tls(&scratch).await;
    let sipp_port = free_udp_port();
    let sipp_media = free_udp_port();
    let kam_addr = format!("127.0.0.1:{kam_udp}");
    let mut sipp = Peer::sipp(
        "sipp-uac",
        &scratch,
        "uac_carrier.xml",
        (sipp_port, sipp_media),
        &["-s", "gw", &kam_addr],
    );
    let call = match wait_for(&mut events, Duration::from_secs(10), |e| {
        matches!(e, Event::Incoming { .. } | Event::Ended { .. })
    })
    .await
    {
        Event::Incoming { call, from, .. } => {
            assert_eq!(from, "+15550001111");
            call
        }
        other => panic!(
            "expected Incoming, got {other:?}\n{}\n{}",
            kam.log_text(),
            sipp.log_text()
        ),
    };
    ua.answer(
        &call,
        LocalMedia::new("127.0.0.1".parse().unwrap(), 40010, 1),
    )
    .unwrap();
    for _ in 0..2 {
        let e = wait_for(&mut events, Duration::from_secs(10), |e| {
            matches!(e, Event::MediaUpdate { .. } | Event::Ended { .. })
        })
        .await;
        assert!(
            matches!(e, Event::MediaUpdate { .. }),
            "{e:?}\n{}",
            kam.log_text()
        );
    }
    expect_ended(&mut events, EndReason::RemoteHangup).await;
    sipp.expect_success(Duration::from_secs(15)).await;
    let log = kam.log_text();
    assert!(log.contains("INVITE relayed to sip:gw@"), "{log}");
    assert!(log.contains("transport=tls"), "{log}");
    ua.shutdown();
}

/// Network loss over TLS: Kamailio dies, the refresh fails (connection gone,
/// then Timer F), and once Kamailio is back on the same port we open a new
/// TLS connection and register again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_tls_reregisters_after_restart() {
    let scratch = Scratch::new("tls-restart");
    make_leaf(&scratch.0, "trusted-ca", "localhost");
    let (kam, port, udp_port) = start_kamailio_tls(&scratch).await;
    let mut config = tls_config(port, &scratch.0.join("trusted-ca.pem"));
    config
        .t1(Duration::from_millis(25))
        .trunk_mut("peer")
        .unwrap()
        .register_expires(Duration::from_secs(2));
    let (ua, mut events) = UserAgent::start(config).await.unwrap();
    let state = first_registration(&mut events).await;
    assert!(
        matches!(state, RegistrationState::Registered { .. }),
        "{state:?}"
    );
    drop(kam);
    let lost = std::time::Instant::now();
    let state = first_registration(&mut events).await;
    let RegistrationState::Failed { reason, retry_in } = state else {
        panic!("registered without a registrar: {state:?}");
    };
    eprintln!("failure noticed after {:?}: {reason}", lost.elapsed());
    assert_eq!(retry_in, Duration::from_secs(1));
    let (back, _, _) = start_kamailio_tls_on(&scratch, port, udp_port).await;
    let restarted = std::time::Instant::now();
    let state = wait_for(&mut events, Duration::from_secs(15), |e| {
        matches!(
            e,
            Event::Registration {
                state: RegistrationState::Registered { .. },
                ..
            }
        )
    })
    .await;
    eprintln!(
        "re-registered {:?} after the restart: {state:?}",
        restarted.elapsed()
    );
    assert!(restarted.elapsed() < Duration::from_secs(5));
    assert!(back.log_text().contains("REGISTER over tls"));
    ua.shutdown();
}
