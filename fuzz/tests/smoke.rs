//! Runs every fuzz target body on seeded random inputs, so they are exercised on stable
//! without cargo-fuzz: `cargo test --no-default-features` in `fuzz/`.

use arbitrary::{Arbitrary, Unstructured};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

#[test]
fn stun_target_on_random_and_mutated_inputs() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    // A valid request to mutate.
    let base = ice::fuzzing::request(
        5,
        "abcd",
        "passwordpasswordpassword",
        true,
        Some(1),
        true,
        Some((true, 9)),
        Some(3),
        &[],
    );
    for _ in 0..20_000 {
        let mut data = base.clone();
        let n = rng.gen_range(0..4);
        for _ in 0..n {
            let i = rng.gen_range(0..data.len());
            data[i] = rng.gen();
        }
        if rng.gen_bool(0.1) {
            data.truncate(rng.gen_range(0..data.len()));
        }
        jsg_fuzz::stun(&data);
        let len = rng.gen_range(0..64);
        let random: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        jsg_fuzz::stun(&random);
    }
}

#[test]
fn agent_ops_on_random_sequences() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    for _ in 0..300 {
        let len = rng.gen_range(0..4096);
        let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let mut u = Unstructured::new(&bytes);
        if let Ok(ops) = Vec::<jsg_fuzz::Op>::arbitrary(&mut u) {
            jsg_fuzz::run_ops(&ops);
        }
    }
}

/// `data` with a few random byte changes, insertions or a truncation.
fn mutate(rng: &mut ChaCha20Rng, base: &[u8]) -> Vec<u8> {
    let mut data = base.to_vec();
    for _ in 0..rng.gen_range(0..4) {
        if data.is_empty() {
            break;
        }
        let i = rng.gen_range(0..data.len());
        match rng.gen_range(0..3) {
            0 => data[i] = rng.gen(),
            1 => {
                const SPECIAL: &[u8] = b"<>'\"=/ :;,\r\n0a";
                data[i] = SPECIAL[rng.gen_range(0..SPECIAL.len())];
            }
            _ => {
                data.remove(i);
            }
        }
    }
    if rng.gen_bool(0.1) && !data.is_empty() {
        data.truncate(rng.gen_range(0..data.len()));
    }
    data
}

fn random(rng: &mut ChaCha20Rng, max: usize) -> Vec<u8> {
    let len = rng.gen_range(0..max);
    (0..len).map(|_| rng.gen()).collect()
}

/// Runs `target` on `n` mutations of each seed and on `n` random inputs.
fn run(seed: u64, n: usize, seeds: &[&[u8]], target: fn(&[u8])) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    for s in seeds {
        target(s);
    }
    for _ in 0..n {
        for s in seeds {
            target(&mutate(&mut rng, s));
        }
        target(&random(&mut rng, 256));
    }
}

const JMI_PROPOSE: &str = include_str!("../../xmpp/tests/fixtures/jmi_propose_conversations.xml");
const TRICKLE: &str = include_str!("../../xmpp/tests/fixtures/conversations_trickle.xml");
const TERMINATE: &str = include_str!("../../xmpp/tests/fixtures/terminate_busy.xml");
const DTMF: &str = include_str!("../../xmpp/tests/fixtures/session_info_dtmf.xml");

#[test]
fn xmpp_stream_target_on_mutated_stanzas() {
    let disco = "<iq xmlns='jabber:component:accept' type='get' id='d1' from='alice@example.org/x' to='+15551234567@gw.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>";
    let stream_of = |s: &str| s.replace("gw.example.com", jsg_fuzz::DOMAIN);
    let seeds: Vec<String> = [
        jsg_fuzz::INITIATE,
        JMI_PROPOSE,
        TRICKLE,
        TERMINATE,
        disco,
        "<presence xmlns='jabber:component:accept' type='probe' from='a@b/c' to='+15551234567@gw.localhost'/></stream:stream>",
    ]
    .iter()
    .map(|s| stream_of(s))
    .collect();
    let all = seeds.concat();
    let mut refs: Vec<&[u8]> = seeds.iter().map(|s| s.as_bytes()).collect();
    refs.push(all.as_bytes());
    run(3, 150, &refs, jsg_fuzz::xmpp_stream);
}

#[test]
fn jingle_target_on_mutated_fixtures() {
    // An empty fingerprint: its empty text node is not on the wire (a harness false
    // positive the fuzzer found in an earlier version of the target).
    let start = jsg_fuzz::INITIATE.find("setup='actpass'>").unwrap() + 16;
    let end = jsg_fuzz::INITIATE.find("</fingerprint>").unwrap();
    let empty_fp = format!(
        "{}{}",
        &jsg_fuzz::INITIATE[..start],
        &jsg_fuzz::INITIATE[end..]
    );
    let seeds: Vec<&[u8]> = [
        jsg_fuzz::INITIATE,
        JMI_PROPOSE,
        TRICKLE,
        TERMINATE,
        DTMF,
        &empty_fp,
    ]
    .iter()
    .map(|s| s.as_bytes())
    .collect();
    run(4, 300, &seeds, jsg_fuzz::jingle);
}

#[test]
fn sdp_target_on_mutated_offers_and_random_descriptions() {
    run(5, 3000, &[jsg_fuzz::SDP_OFFER.as_bytes()], jsg_fuzz::sdp);
}

#[test]
fn sip_digest_target_on_mutated_challenges() {
    run(
        6,
        3000,
        &[jsg_fuzz::CHALLENGE.as_bytes()],
        jsg_fuzz::sip_digest,
    );
}

#[test]
fn sip_message_target_on_mutated_invites() {
    run(
        7,
        3000,
        &[jsg_fuzz::INVITE.as_bytes()],
        jsg_fuzz::sip_message,
    );
}

#[test]
fn rtp_target_on_mutated_packets() {
    let mut pcmu = vec![0x80, 0, 0x12, 0x34, 0, 0, 0, 160, 0xde, 0xad, 0xbe, 0xef];
    pcmu.extend([0xffu8; 160]);
    let mut opus = vec![0x80, 111, 0, 1, 0, 0, 3, 192, 0, 0, 0, 9];
    opus.extend([0xf8, 0xff, 0xfe]);
    let mut dtmf = vec![0x80, 101, 0, 2, 0, 0, 0, 0, 0, 0, 0, 9];
    dtmf.extend([5, 0x8a, 0, 160]);
    let ext = vec![
        0xb1, 8, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 9, 0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0, 1,
        2, 3, 0, 2,
    ];
    run(8, 150, &[&pcmu, &opus, &dtmf, &ext], jsg_fuzz::rtp);
}

#[test]
fn rtcp_target_on_mutated_reports() {
    // SR with one report block, then SDES CNAME.
    let mut sr = vec![0x81, 200, 0, 12, 0, 0, 0x22, 0x22];
    sr.extend([0u8; 20]);
    sr.extend([
        0, 0, 0x11, 0x11, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    sr.extend([
        0x81, 202, 0, 3, 0, 0, 0x22, 0x22, 1, 4, b'a', b'b', b'c', b'd', 0, 0,
    ]);
    let rr = vec![
        0x81, 201, 0, 7, 0, 0, 0x44, 0x44, 0, 0, 0x33, 0x33, 1, 0, 0, 2, 0, 0, 0, 9, 0, 0, 0, 1, 0,
        0, 0, 0, 0, 0, 0, 0,
    ];
    let bye = vec![0x81, 203, 0, 1, 0, 0, 0x22, 0x22];
    run(9, 150, &[&sr, &rr, &bye], jsg_fuzz::rtcp);
}

/// Pins the rsipstack 0.7.14 defect the `sip_message` target found (percent-encoding of
/// the Request-URI user part grows on every parse/serialize cycle), so that an upgrade
/// that fixes it shows up here and the target can assert byte-stable re-serialization.
#[test]
fn rsipstack_reencodes_uri_user_on_every_cycle() {
    let invite = jsg_fuzz::INVITE.replacen("sip:+1555", "sip:+1555\"", 1);
    let (first, second) = jsg_fuzz::sip_message_reserialization(invite.as_bytes())
        .expect("rsipstack 0.7.14 re-encodes; if this fails, tighten jsg_fuzz::sip_message");
    let first = String::from_utf8(first).unwrap();
    let second = String::from_utf8(second).unwrap();
    assert!(first.starts_with("INVITE sip:+1555%22"), "{first}");
    assert!(second.starts_with("INVITE sip:+1555%2522"), "{second}");
    // A plain INVITE is stable.
    assert_eq!(
        jsg_fuzz::sip_message_reserialization(jsg_fuzz::INVITE.as_bytes()),
        None
    );
}
