#![allow(clippy::disallowed_methods)] // tests anchor virtual time at Instant::now()
use super::*;
use rand::SeedableRng;

fn certs() -> (Certificate, Certificate) {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    (
        Certificate::generate(&mut rng).unwrap(),
        Certificate::generate(&mut rng).unwrap(),
    )
}

/// Delivers datagrams both ways and advances virtual time to the next timeout until both
/// sides are idle or `max_steps` is reached. Returns (client events, server events, errors).
fn drive(
    client: &mut Dtls,
    server: &mut Dtls,
    mut now: Instant,
    max_steps: usize,
) -> (Vec<DtlsEvent>, Vec<DtlsEvent>, Vec<Error>) {
    let (mut ce, mut se, mut errs) = (vec![], vec![], vec![]);
    client.start(now).unwrap();
    server.start(now).unwrap();
    for _ in 0..max_steps {
        let mut moved = false;
        while let Some(p) = client.poll_transmit() {
            moved = true;
            if let Err(e) = server.handle_packet(now, &p) {
                errs.push(e);
            }
        }
        while let Some(p) = server.poll_transmit() {
            moved = true;
            if let Err(e) = client.handle_packet(now, &p) {
                errs.push(e);
            }
        }
        ce.extend(std::iter::from_fn(|| client.poll_event()));
        se.extend(std::iter::from_fn(|| server.poll_event()));
        if !errs.is_empty() || (client.is_connected() && server.is_connected() && !moved) {
            break;
        }
        if !moved {
            let next = [client.poll_timeout(), server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { break };
            now = now.max(next);
            let _ = client.handle_timeout(now).map_err(|e| errs.push(e));
            let _ = server.handle_timeout(now).map_err(|e| errs.push(e));
        }
    }
    (ce, se, errs)
}

#[test]
fn handshake_in_memory_exports_identical_keys() {
    let (c, s) = certs();
    let now = Instant::now();
    let cfg = DtlsConfig::default();
    let mut client = Dtls::new(&cfg, &c, DtlsRole::Client, s.fingerprint(), now).unwrap();
    let mut server = Dtls::new(&cfg, &s, DtlsRole::Server, c.fingerprint(), now).unwrap();
    let (ce, se, errs) = drive(&mut client, &mut server, now, 50);
    assert!(errs.is_empty(), "{errs:?}");
    let [DtlsEvent::Connected(ck)] = &ce[..] else {
        panic!("client events {ce:?}")
    };
    let [DtlsEvent::Connected(sk)] = &se[..] else {
        panic!("server events {se:?}")
    };
    assert_eq!(ck.profile, sk.profile);
    assert_eq!(ck.local, sk.remote);
    assert_eq!(ck.remote, sk.local);
    assert_ne!(ck.local, ck.remote);
}

#[test]
fn wrong_fingerprint_is_a_security_error() {
    let (c, s) = certs();
    let now = Instant::now();
    let cfg = DtlsConfig::default();
    let wrong = Fingerprint([0x42; 32]);
    // The client expects another server certificate.
    let mut client = Dtls::new(&cfg, &c, DtlsRole::Client, wrong, now).unwrap();
    let mut server = Dtls::new(&cfg, &s, DtlsRole::Server, c.fingerprint(), now).unwrap();
    let (ce, _, errs) = drive(&mut client, &mut server, now, 50);
    assert!(ce.is_empty());
    assert_eq!(
        errs.first(),
        Some(&Error::PeerMisbehaved(PeerMisbehaved::FingerprintMismatch))
    );
    assert!(errs[0].is_security());
    // The server expects another client certificate.
    let mut client = Dtls::new(&cfg, &c, DtlsRole::Client, s.fingerprint(), now).unwrap();
    let mut server = Dtls::new(&cfg, &s, DtlsRole::Server, wrong, now).unwrap();
    let (_, se, errs) = drive(&mut client, &mut server, now, 50);
    assert!(se.is_empty());
    assert_eq!(
        errs.first(),
        Some(&Error::PeerMisbehaved(PeerMisbehaved::FingerprintMismatch))
    );
}

#[test]
fn lost_flights_are_retransmitted_in_virtual_time() {
    let (c, s) = certs();
    let now = Instant::now();
    let cfg = DtlsConfig::default();
    let mut client = Dtls::new(&cfg, &c, DtlsRole::Client, s.fingerprint(), now).unwrap();
    let mut server = Dtls::new(&cfg, &s, DtlsRole::Server, c.fingerprint(), now).unwrap();
    client.start(now).unwrap();
    // Drop the first ClientHello.
    assert!(client.poll_transmit().is_some());
    let t = client.poll_timeout().expect("retransmit timer");
    assert!(t > now);
    client.handle_timeout(t).unwrap();
    let (ce, se, errs) = drive(&mut client, &mut server, t, 50);
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!((ce.len(), se.len()), (1, 1));
}

#[test]
fn setup_negotiation() {
    assert_eq!(Setup::answer(Setup::Actpass), Setup::Active);
    assert_eq!(Setup::answer(Setup::Active), Setup::Passive);
    assert_eq!(Setup::answer(Setup::Passive), Setup::Active);
    assert_eq!(
        DtlsRole::from_local_setup(Setup::Active).unwrap(),
        DtlsRole::Client
    );
    assert_eq!(
        DtlsRole::from_local_setup(Setup::Passive).unwrap(),
        DtlsRole::Server
    );
    assert!(matches!(
        DtlsRole::from_local_setup(Setup::Actpass),
        Err(Error::ApiMisuse(_))
    ));
    assert_eq!(Setup::parse("actpass"), Some(Setup::Actpass));
}

#[test]
fn one_shared_context_serves_many_handshakes() {
    let (c, s) = certs();
    let now = Instant::now();
    let ctx = DtlsContext::new(&DtlsConfig::default()).unwrap();
    for _ in 0..3 {
        let mut client = Dtls::with_context(&ctx, &c, DtlsRole::Client, s.fingerprint(), now);
        let mut server = Dtls::with_context(&ctx, &s, DtlsRole::Server, c.fingerprint(), now);
        let (ce, se, errs) = drive(&mut client, &mut server, now, 50);
        assert!(errs.is_empty(), "{errs:?}");
        let (Some(DtlsEvent::Connected(ck)), Some(DtlsEvent::Connected(sk))) =
            (ce.first(), se.first())
        else {
            panic!("{ce:?} {se:?}");
        };
        assert_eq!((&ck.local, &ck.remote), (&sk.remote, &sk.local));
    }
}

#[test]
fn the_engine_config_builds_the_context_once_and_rejects_bad_settings() {
    let cfg = crate::Config::default();
    let copy = cfg.clone();
    assert!(cfg
        .dtls_context()
        .unwrap()
        .ptr_eq(copy.dtls_context().unwrap()));
    let mut bad = crate::Config::default();
    bad.dtls(DtlsConfig {
        mtu: 10,
        ..DtlsConfig::default()
    });
    assert!(matches!(bad.dtls_context(), Err(Error::Local(_))));
    assert!(DtlsContext::new(&DtlsConfig {
        mtu: 10,
        ..DtlsConfig::default()
    })
    .is_err());
}
