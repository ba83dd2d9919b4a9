//! The bridge against real clients' stanzas (xmpp/tests/fixtures/: Conversations, Dino,
//! Movim and StanzaJS captures) and real-shaped SDP, and every E.6 row.

use std::net::{IpAddr, SocketAddr};

use media::cert::Fingerprint;
use media::codec::Codec;
use media::config::Security;
use media::dtls::Setup;
use media::srtp::{MasterKey, SrtpProfile};
use minidom::Element;
use rand::SeedableRng;
use sip::sdp::RemoteMedia;
use xmpp::jingle::{
    self, Action, Application, CandidateType, Group, Jingle, Reason, ReasonCondition, Transport,
};
use xmpp::jmi::{JingleMessage, JmiAction};

use super::reasons::{self, CallDirection, SipAction};
use super::*;
use crate::media_driver::LocalDescription;

fn fixture_element(name: &str) -> Element {
    let path = format!(
        "{}/../xmpp/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.parse().unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture(name: &str) -> Jingle {
    let iq = fixture_element(name);
    let el = iq
        .children()
        .find(|c| c.name() == "jingle")
        .unwrap_or_else(|| panic!("{name}: no <jingle/>"));
    Jingle::from_element(el).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn strict() -> CodecPolicy {
    CodecPolicy::default()
}

fn passthrough() -> CodecPolicy {
    CodecPolicy {
        prefer_g711_passthrough: true,
        ..CodecPolicy::default()
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn local_description(setup: Setup) -> LocalDescription {
    LocalDescription {
        ice: ice::Credentials {
            ufrag: "gwU1".to_owned(),
            pwd: "gwPwd0123456789abcdefghij".to_owned(),
        },
        candidates: vec![
            ice::Candidate::host(addr("127.0.0.1:30000"), "1"),
            ice::Candidate::host(addr("[::1]:30002"), "2"),
        ],
        fingerprint: Fingerprint([0xAB; 32]),
        setup,
        trunk_rtp: addr("127.0.0.1:40000"),
    }
}

fn audio_content_mut(j: &mut Jingle) -> &mut jingle::Content {
    &mut j.contents[0]
}

fn transport_mut(j: &mut Jingle) -> &mut jingle::IceUdpTransport {
    match &mut audio_content_mut(j).transport {
        Some(Transport::IceUdp(t)) => t,
        _ => panic!("no ice-udp transport"),
    }
}

fn description_mut(j: &mut Jingle) -> &mut jingle::RtpDescription {
    match &mut audio_content_mut(j).description {
        Some(Application::Rtp(d)) => d,
        _ => panic!("no rtp description"),
    }
}

// ---- client offers (E.2 step 3, F) ----

#[test]
fn conversations_offer_choices() {
    let offer = ClientOffer::parse(&fixture("conversations_initiate.xml"), &strict()).unwrap();
    assert_eq!(offer.content_name, "0");
    // red, G722 and CN are not ours; opus, PCMU, PCMA in the client's order.
    assert_eq!(offer.codecs(), [Codec::Opus, Codec::Pcmu, Codec::Pcma]);
    assert_eq!(offer.telephone_event(48000), Some(110));
    assert_eq!(offer.telephone_event(8000), Some(126));
    assert_eq!(offer.ice.ufrag, "Xb9q");
    assert_eq!(offer.ice.pwd, "kJ4mT0zQ2vR8pL6nB1cW5yHd");
    assert!(offer.trickle);
    assert_eq!(
        offer.fingerprint.unwrap().to_string(),
        "7A:2C:91:0F:5E:B3:44:D8:1A:6C:E2:9B:30:F7:85:4D:C1:0E:63:AA:58:92:1D:B4:7F:E0:36:C9:21:8B:54:F6"
    );
    assert_eq!(offer.answer_setup, Setup::Active, "actpass → active");
    let cands: Vec<(SocketAddr, ice::CandidateKind)> =
        offer.candidates.iter().map(|c| (c.addr, c.kind)).collect();
    assert_eq!(
        cands,
        [
            (addr("192.168.1.23:51234"), ice::CandidateKind::Host),
            (
                addr("[2001:db8:85a3::8a2e:370:7334]:43120"),
                ice::CandidateKind::Host
            ),
            (
                addr("198.51.100.7:51234"),
                ice::CandidateKind::ServerReflexive
            ),
            (addr("203.0.113.50:61022"), ice::CandidateKind::Relayed),
        ]
    );
    assert_eq!(
        offer.candidates[2].related,
        Some(addr("192.168.1.23:51234"))
    );
    assert_eq!(offer.candidates[0].priority, 2122260223);

    // Transcoding by default: Opus with telephone-event at 48 kHz.
    let choice = offer.choose(&strict(), Some(Codec::Pcmu));
    assert_eq!(
        choice,
        ClientChoice {
            codec: Codec::Opus,
            payload_type: 111,
            telephone_event: Some(110),
            passthrough: false
        }
    );
    // Passthrough preferred: the trunk's G.711, telephone-event at 8 kHz.
    let choice = offer.choose(&passthrough(), Some(Codec::Pcmu));
    assert_eq!(
        choice,
        ClientChoice {
            codec: Codec::Pcmu,
            payload_type: 0,
            telephone_event: Some(126),
            passthrough: true
        }
    );
    let choice = offer.choose(&passthrough(), Some(Codec::Pcma));
    assert_eq!(
        (choice.codec, choice.payload_type, choice.passthrough),
        (Codec::Pcma, 8, true)
    );
    let choice = offer.choose(&passthrough(), None);
    assert_eq!((choice.codec, choice.passthrough), (Codec::Pcmu, false));

    let media = offer.client_media(&offer.choose(&strict(), Some(Codec::Pcmu)));
    assert_eq!(media.codec, Codec::Opus);
    assert_eq!(media.payload_type, 111);
    assert_eq!(media.telephone_event, Some(110));
    // The offer's telephone-event/8000 is accepted on receive too.
    assert_eq!(media.extra_telephone_events, [(126, 8000)]);
    let g711 = offer.client_media(&offer.choose(&passthrough(), Some(Codec::Pcmu)));
    assert_eq!(
        (g711.telephone_event, g711.extra_telephone_events),
        (Some(126), vec![(110, 48000)])
    );
    let dtls = media.dtls.unwrap();
    assert_eq!(dtls.local_setup, Setup::Active);
    assert_eq!(Some(dtls.remote_fingerprint), offer.fingerprint);
}

#[test]
fn dino_offer_drops_component_2_and_has_no_dtmf() {
    let offer = ClientOffer::parse(&fixture("dino_initiate.xml"), &strict()).unwrap();
    assert_eq!(offer.content_name, "audio");
    assert_eq!(offer.codecs(), [Codec::Opus, Codec::Pcmu, Codec::Pcma]);
    assert_eq!(offer.telephone_event(48000), None);
    assert_eq!(offer.telephone_event(8000), None);
    assert!(!offer.trickle);
    assert_eq!(offer.candidates.len(), 2, "{:?}", offer.candidates);
    assert!(offer.candidates.iter().all(|c| c.component == 1));
    assert_eq!(offer.candidates[0].addr, addr("10.0.0.8:52000"));
    assert_eq!(offer.candidates[1].addr, addr("198.51.100.20:52000"));
    let choice = offer.choose(&passthrough(), Some(Codec::Pcma));
    assert_eq!(
        choice,
        ClientChoice {
            codec: Codec::Pcma,
            payload_type: 8,
            telephone_event: None,
            passthrough: true
        }
    );
}

#[test]
fn movim_offer_drops_tcp_and_mdns_candidates() {
    let offer = ClientOffer::parse(&fixture("movim_initiate.xml"), &strict()).unwrap();
    assert_eq!(offer.codecs(), [Codec::Opus, Codec::Pcmu, Codec::Pcma]);
    let addrs: Vec<SocketAddr> = offer.candidates.iter().map(|c| c.addr).collect();
    assert_eq!(
        addrs,
        [addr("192.168.50.12:59871"), addr("198.51.100.99:59871")]
    );
    // telephone-event only at 8 kHz: none with Opus, 101 with G.711.
    let opus = offer.choose(&strict(), Some(Codec::Pcmu));
    assert_eq!(
        (opus.codec, opus.payload_type, opus.telephone_event),
        (Codec::Opus, 109, None)
    );
    let g711 = offer.choose(&passthrough(), Some(Codec::Pcmu));
    assert_eq!((g711.codec, g711.telephone_event), (Codec::Pcmu, Some(101)));
}

#[test]
fn stanzajs_offers() {
    let captured =
        ClientOffer::parse(&fixture("stanzajs_captured_initiate.xml"), &strict()).unwrap();
    let addrs: Vec<SocketAddr> = captured.candidates.iter().map(|c| c.addr).collect();
    assert_eq!(addrs, [addr("[::1]:60254"), addr("127.0.0.1:37571")]);
    assert_eq!(captured.codecs(), [Codec::Opus, Codec::Pcmu, Codec::Pcma]);
    assert_eq!(captured.telephone_event(48000), Some(110));
    assert_eq!(captured.answer_setup, Setup::Active);

    // Trickle: no candidates in the initiate.
    let trickle = ClientOffer::parse(&fixture("stanzajs_initiate.xml"), &strict()).unwrap();
    assert!(trickle.candidates.is_empty());
    assert_eq!(trickle.telephone_event(8000), Some(126));
    let c = trickle.choose(&strict(), None);
    assert_eq!((c.codec, c.telephone_event), (Codec::Opus, None));
}

#[test]
fn video_offers_are_refused() {
    for name in ["video_only_initiate.xml", "audio_video_initiate.xml"] {
        let err = ClientOffer::parse(&fixture(name), &strict()).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedApplications(_)),
            "{name}: {err:?}"
        );
        assert_eq!(
            err.jingle_reason().condition,
            ReasonCondition::UnsupportedApplications
        );
    }
}

#[test]
fn missing_fingerprint_needs_allow_unencrypted() {
    let mut j = fixture("conversations_initiate.xml");
    transport_mut(&mut j).fingerprint = None;
    let err = ClientOffer::parse(&j, &strict()).unwrap_err();
    assert!(matches!(err, Error::Security(_)), "{err:?}");
    let reason = err.jingle_reason();
    assert_eq!(reason.condition, ReasonCondition::SecurityError);
    assert!(reason.text.unwrap().contains("fingerprint"));

    let open = CodecPolicy {
        allow_unencrypted: true,
        ..CodecPolicy::default()
    };
    let offer = ClientOffer::parse(&j, &open).unwrap();
    assert_eq!(offer.fingerprint, None);
    assert_eq!(offer.client_media(&offer.choose(&open, None)).dtls, None);

    // A sha-1 fingerprint is not usable either.
    let mut j = fixture("conversations_initiate.xml");
    transport_mut(&mut j).fingerprint.as_mut().unwrap().hash = "sha-1".to_owned();
    assert!(matches!(
        ClientOffer::parse(&j, &open),
        Err(Error::Security(_))
    ));
}

#[test]
fn no_common_codec_and_no_rtcp_mux_are_incompatible() {
    let mut j = fixture("conversations_initiate.xml");
    description_mut(&mut j)
        .payload_types
        .retain(|pt| !(pt.is("opus") || pt.is("PCMU") || pt.is("PCMA")));
    let err = ClientOffer::parse(&j, &strict()).unwrap_err();
    assert!(matches!(err, Error::NoCommonCodec(_)), "{err:?}");
    assert_eq!(
        err.jingle_reason().condition,
        ReasonCondition::IncompatibleParameters
    );

    let mut j = fixture("dino_initiate.xml");
    description_mut(&mut j).rtcp_mux = false;
    let err = ClientOffer::parse(&j, &strict()).unwrap_err();
    assert_eq!(err, Error::RtcpMuxRequired);
    assert_eq!(
        err.jingle_reason().condition,
        ReasonCondition::IncompatibleParameters
    );

    let mut j = fixture("dino_initiate.xml");
    transport_mut(&mut j).pwd = None;
    assert_eq!(
        ClientOffer::parse(&j, &strict()).unwrap_err(),
        Error::MissingIceCredentials
    );
}

#[test]
fn offer_setup_gives_answer_setup() {
    for (offered, answer) in [
        (Some(jingle::Setup::ActPass), Setup::Active),
        (Some(jingle::Setup::Active), Setup::Passive),
        (Some(jingle::Setup::Passive), Setup::Active),
        (None, Setup::Active),
    ] {
        let mut j = fixture("conversations_initiate.xml");
        transport_mut(&mut j).fingerprint.as_mut().unwrap().setup = offered;
        let offer = ClientOffer::parse(&j, &strict()).unwrap();
        assert_eq!(offer.answer_setup, answer, "{offered:?}");
    }
}

// ---- our Jingle answer and offer (E.2 step 6, E.3 step 3) ----

fn round_trip(j: &Jingle) -> Jingle {
    let mut buf = Vec::new();
    j.to_element().write_to(&mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let el: Element = text.parse().unwrap_or_else(|e| panic!("{e}: {text}"));
    Jingle::from_element(&el).unwrap()
}

#[test]
fn session_accept_round_trips_through_the_parser() {
    let offer = ClientOffer::parse(&fixture("conversations_initiate.xml"), &strict()).unwrap();
    let choice = offer.choose(&passthrough(), Some(Codec::Pcmu));
    let local = local_description(offer.answer_setup);
    let mut accept = Jingle::new(Action::SessionAccept, "G7f2nQ0aLw9jXkB1cRt4");
    accept.contents = vec![session_accept_content(&offer, &choice, &local)];
    accept.group = Some(Group::bundle(vec![offer.content_name.clone()]));

    let parsed = round_trip(&accept);
    assert_eq!(parsed, accept);
    let content = &parsed.contents[0];
    assert_eq!(content.name, "0");
    let d = content.rtp().unwrap();
    assert!(d.rtcp_mux);
    let pts: Vec<(u8, &str, u32)> = d
        .payload_types
        .iter()
        .map(|p| (p.id, p.name.as_deref().unwrap(), p.clockrate.unwrap()))
        .collect();
    assert_eq!(pts, [(0, "PCMU", 8000), (126, "telephone-event", 8000)]);
    let te = &d.payload_types[1].parameters;
    assert_eq!((te[0].name.as_str(), te[0].value.as_str()), ("", "0-15"));
    let t = content.ice_udp().unwrap();
    assert_eq!(t.ufrag.as_deref(), Some("gwU1"));
    assert_eq!(t.pwd.as_deref(), Some("gwPwd0123456789abcdefghij"));
    let fp = t.fingerprint.as_ref().unwrap();
    assert_eq!(fp.hash, "sha-256");
    assert_eq!(fp.setup, Some(jingle::Setup::Active));
    assert_eq!(fp.value.parse::<Fingerprint>().unwrap(), local.fingerprint);
    let ids: Vec<Option<&str>> = t.candidates.iter().map(|c| c.id.as_deref()).collect();
    assert_eq!(ids, [Some("g1"), Some("g2")]);
    assert_eq!(t.candidates[1].ip, "::1");
    assert_eq!(t.candidates[0].kind, CandidateType::Host);
    assert_eq!(t.candidates[0].network, Some(0));
    // Our candidates come back unchanged through the Jingle form.
    let back: Vec<ice::Candidate> = t.candidates.iter().filter_map(ice_candidate).collect();
    assert_eq!(back, local.candidates);
    assert_eq!(parsed.group.unwrap().contents, ["0"]);

    // The Opus answer carries telephone-event at 48 kHz and opus/48000/2.
    let opus = offer.choose(&strict(), Some(Codec::Pcmu));
    let content = session_accept_content(&offer, &opus, &local);
    let d = content.rtp().unwrap();
    assert_eq!(d.payload_types[0].id, 111);
    assert_eq!(d.payload_types[0].channels, 2);
    assert_eq!(
        (d.payload_types[1].id, d.payload_types[1].clockrate),
        (110, Some(48000))
    );
}

#[test]
fn session_accept_setup_is_passive_for_an_active_offer() {
    let mut j = fixture("dino_initiate.xml");
    transport_mut(&mut j).fingerprint.as_mut().unwrap().setup = Some(jingle::Setup::Active);
    let offer = ClientOffer::parse(&j, &strict()).unwrap();
    let content = session_accept_content(
        &offer,
        &offer.choose(&strict(), None),
        &local_description(Setup::Actpass),
    );
    let fp = content.ice_udp().unwrap().fingerprint.clone().unwrap();
    assert_eq!(fp.setup, Some(jingle::Setup::Passive));
    assert_eq!(content.name, "audio");
    // Dino: one codec, no telephone-event.
    assert_eq!(content.rtp().unwrap().payload_types.len(), 1);
}

#[test]
fn inbound_offer_round_trips_and_offers_g711_first() {
    let local = local_description(Setup::Actpass);
    let mut initiate = Jingle::new(Action::SessionInitiate, "T1nb0und5e55");
    initiate.initiator = Some("+18005550100@gw.example.com/gw".to_owned());
    initiate.contents = vec![inbound_offer_content(&local, INBOUND_CONTENT_NAME, None)];
    let parsed = round_trip(&initiate);
    assert_eq!(parsed, initiate);
    let content = &parsed.contents[0];
    assert_eq!(content.name, "a0");
    let d = content.rtp().unwrap();
    assert!(d.rtcp_mux);
    let pts: Vec<(u8, &str, u32)> = d
        .payload_types
        .iter()
        .map(|p| (p.id, p.name.as_deref().unwrap(), p.clockrate.unwrap()))
        .collect();
    assert_eq!(
        pts,
        [
            (0, "PCMU", 8000),
            (8, "PCMA", 8000),
            (111, "opus", 48000),
            (101, "telephone-event", 8000),
            (110, "telephone-event", 48000),
        ]
    );
    let t = content.ice_udp().unwrap();
    assert_eq!(
        t.fingerprint.as_ref().unwrap().setup,
        Some(jingle::Setup::ActPass)
    );
    assert_eq!(t.candidates.len(), 2);

    // The trunk's PCMA first, for a passthrough.
    let pcma_first = inbound_offer_content(&local, INBOUND_CONTENT_NAME, Some(Codec::Pcma));
    let ids: Vec<u8> = pcma_first
        .rtp()
        .unwrap()
        .payload_types
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, [8, 0, 111, 101, 110]);
}

#[test]
fn conversations_accept_gives_client_media() {
    let answer = ClientAnswer::parse(
        &fixture("conversations_accept_inbound.xml"),
        INBOUND_CONTENT_NAME,
        &strict(),
    )
    .unwrap();
    assert_eq!(answer.media.codec, Codec::Pcmu);
    assert_eq!(answer.media.payload_type, 0);
    assert_eq!(answer.media.telephone_event, Some(101));
    let dtls = answer.media.dtls.unwrap();
    assert_eq!(
        dtls.local_setup,
        Setup::Passive,
        "client active → we are DTLS server"
    );
    assert_eq!(
        dtls.remote_fingerprint.to_string(),
        "A9:3E:70:1B:C6:D2:58:F4:0A:95:E3:67:2C:B8:41:DF:16:7A:C0:39:E5:82:4B:FD:03:6E:91:A2:D7:58:1C:B0"
    );
    assert_eq!(answer.ice.ufrag, "Qq7w");
    assert_eq!(answer.candidates.len(), 1);
    assert_eq!(answer.candidates[0].addr, addr("192.168.1.23:50500"));
}

/// Chromium's answer to our inbound offer: Opus, keeping both our telephone-events
/// (101 at 8 kHz, 110 at 48 kHz). Its RTCDTMFSender then sends on 101, so both are kept:
/// 110 (the codec's clock) to send on, 101 as an extra to receive on.
#[test]
fn answer_with_both_telephone_events_keeps_both() {
    let mut j = fixture("conversations_accept_inbound.xml");
    let Some(Application::Rtp(d)) = j.contents[0].description.as_mut() else {
        panic!("no rtp description");
    };
    d.payload_types = vec![
        jingle::PayloadType::new(111, "opus", 48000),
        jingle::PayloadType::new(101, "telephone-event", 8000),
        jingle::PayloadType::new(110, "telephone-event", 48000),
    ];
    let answer = ClientAnswer::parse(&j, INBOUND_CONTENT_NAME, &strict()).unwrap();
    assert_eq!(
        (
            answer.media.codec,
            answer.media.payload_type,
            answer.media.telephone_event
        ),
        (Codec::Opus, 111, Some(110))
    );
    assert_eq!(answer.media.extra_telephone_events, [(101, 8000)]);
    // A G.711 answer with both: 101 to send on, 110 (48 kHz durations) as the extra.
    let Some(Application::Rtp(d)) = j.contents[0].description.as_mut() else {
        unreachable!()
    };
    d.payload_types[0] = jingle::PayloadType::new(0, "PCMU", 8000);
    let answer = ClientAnswer::parse(&j, INBOUND_CONTENT_NAME, &strict()).unwrap();
    assert_eq!(
        (
            answer.media.telephone_event,
            answer.media.extra_telephone_events
        ),
        (Some(101), vec![(110, 48000)])
    );
}

#[test]
fn stanzajs_captured_accept_gives_client_media() {
    let answer =
        ClientAnswer::parse(&fixture("stanzajs_captured_accept.xml"), "0", &strict()).unwrap();
    assert_eq!(
        (
            answer.media.codec,
            answer.media.payload_type,
            answer.media.telephone_event
        ),
        (Codec::Opus, 111, Some(110))
    );
    // Every other telephone-event it kept, each with its own clock.
    assert_eq!(
        answer.media.extra_telephone_events,
        [(112, 32000), (113, 16000), (126, 8000)]
    );
    assert_eq!(answer.media.dtls.unwrap().local_setup, Setup::Passive);
    let addrs: Vec<SocketAddr> = answer.candidates.iter().map(|c| c.addr).collect();
    assert_eq!(addrs, [addr("[::1]:40997"), addr("127.0.0.1:50248")]);
}

#[test]
fn bad_accepts_are_refused() {
    let j = fixture("conversations_accept_inbound.xml");
    assert!(matches!(
        ClientAnswer::parse(&j, "other", &strict()),
        Err(Error::PeerMisbehaved(_))
    ));
    let mut j = fixture("conversations_accept_inbound.xml");
    transport_mut(&mut j).fingerprint.as_mut().unwrap().setup = Some(jingle::Setup::ActPass);
    let err = ClientAnswer::parse(&j, "a0", &strict()).unwrap_err();
    assert!(matches!(err, Error::PeerMisbehaved(_)), "{err:?}");
    let mut j = fixture("conversations_accept_inbound.xml");
    transport_mut(&mut j).fingerprint = None;
    assert!(matches!(
        ClientAnswer::parse(&j, "a0", &strict()),
        Err(Error::Security(_))
    ));
}

// ---- the trunk leg ----

const TRUNK_ANSWER_PCMA: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n";

fn key(seed: u64) -> MasterKey {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    MasterKey::generate(SrtpProfile::Aes128CmHmacSha1_80, &mut rng)
}

/// Our `a=crypto` line for `k`, as the SIP crate writes it.
fn crypto_line(k: &MasterKey) -> String {
    let sdp = trunk_offer(addr("127.0.0.1:40000"), None, 1, None, Some(k)).offer();
    let line = sdp
        .lines()
        .find(|l| l.starts_with("a=crypto:"))
        .expect("a=crypto line");
    format!("{}\r\n", line.trim_end())
}

#[test]
fn trunk_offer_lists_g711_and_telephone_event() {
    let local = trunk_offer(addr("127.0.0.1:40000"), None, 7, None, None);
    let sdp = local.offer();
    assert!(sdp.contains("m=audio 40000 RTP/AVP 0 8 101\r\n"), "{sdp}");
    assert!(sdp.contains("c=IN IP4 127.0.0.1\r\n"), "{sdp}");
    assert!(
        sdp.contains("a=rtpmap:101 telephone-event/8000\r\n"),
        "{sdp}"
    );

    let public: IpAddr = "203.0.113.10".parse().unwrap();
    let local = trunk_offer(
        addr("127.0.0.1:40000"),
        Some(public),
        7,
        Some(Codec::Pcma),
        None,
    );
    let sdp = local.offer();
    assert!(sdp.contains("m=audio 40000 RTP/AVP 8 0 101\r\n"), "{sdp}");
    assert!(sdp.contains("c=IN IP4 203.0.113.10\r\n"), "{sdp}");

    let k = key(1);
    let sdp = trunk_offer(addr("127.0.0.1:40000"), None, 7, None, Some(&k)).offer();
    assert!(sdp.contains("RTP/SAVP"), "{sdp}");
    let parsed = RemoteMedia::parse(&sdp).unwrap();
    assert_eq!(parsed.crypto.len(), 1);
    assert_eq!(parsed.crypto[0].suite, "AES_CM_128_HMAC_SHA1_80");
    assert_eq!(parsed.crypto[0].key_salt, [k.key(), k.salt()].concat());
}

#[test]
fn trunk_answer_maps_to_trunk_media() {
    let offer = trunk_offer(addr("127.0.0.1:40000"), None, 7, None, None);
    let answer = RemoteMedia::parse(TRUNK_ANSWER_PCMA).unwrap();
    let media = trunk_media_from_answer(&answer, &offer, None).unwrap();
    assert_eq!(media.codec, Codec::Pcma);
    assert_eq!(media.payload_type, 8);
    assert_eq!(media.telephone_event, Some(101));
    assert_eq!(media.security, Security::Plain);
    assert_eq!(media.remote, Some(addr("127.0.0.1:6000")));

    let rejected = RemoteMedia::parse(&TRUNK_ANSWER_PCMA.replace("audio 6000", "audio 0")).unwrap();
    assert!(matches!(
        trunk_media_from_answer(&rejected, &offer, None),
        Err(Error::PeerMisbehaved(_))
    ));
    let g722 = RemoteMedia::parse(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 9\r\n",
    )
    .unwrap();
    let err = trunk_media_from_answer(&g722, &offer, None).unwrap_err();
    assert!(matches!(err, Error::NoCommonCodec(_)), "{err:?}");
    assert_eq!(err.sip_status(), 488);

    let held =
        RemoteMedia::parse(&TRUNK_ANSWER_PCMA.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0"))
            .unwrap();
    assert_eq!(
        trunk_media_from_answer(&held, &offer, None).unwrap().remote,
        None
    );
}

#[test]
fn trunk_srtp_answer_uses_both_keys() {
    let ours = key(1);
    let theirs = key(2);
    let offer = trunk_offer(addr("127.0.0.1:40000"), None, 7, None, Some(&ours));
    let sdp = format!(
        "{}{}",
        TRUNK_ANSWER_PCMA.replace("RTP/AVP", "RTP/SAVP"),
        crypto_line(&theirs)
    );
    let answer = RemoteMedia::parse(&sdp).unwrap();
    let media = trunk_media_from_answer(&answer, &offer, Some(&ours)).unwrap();
    assert_eq!(
        media.security,
        Security::Sdes {
            local: ours.clone(),
            remote: theirs.clone()
        }
    );
    let plain_offer = trunk_offer(addr("127.0.0.1:40000"), None, 7, None, None);
    assert!(matches!(
        trunk_media_from_answer(&answer, &plain_offer, None),
        Err(Error::TrunkSrtp(_))
    ));
    let no_crypto = RemoteMedia::parse(&TRUNK_ANSWER_PCMA.replace("RTP/AVP", "RTP/SAVP")).unwrap();
    assert!(matches!(
        trunk_media_from_answer(&no_crypto, &offer, Some(&ours)),
        Err(Error::TrunkSrtp(_))
    ));
}

#[test]
fn inbound_trunk_offer_is_answered() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let offer = RemoteMedia::parse(
        "v=0\r\no=- 5 5 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 96\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-16\r\n",
    )
    .unwrap();
    let (local, media) =
        answer_trunk_offer(&offer, addr("127.0.0.1:40000"), None, 11, &mut rng).unwrap();
    assert_eq!(
        (media.codec, media.payload_type, media.telephone_event),
        (Codec::Pcmu, 0, Some(96))
    );
    assert_eq!(media.security, Security::Plain);
    assert_eq!(media.remote, Some(addr("127.0.0.1:6000")));
    let (sdp, _) = local.answer(&offer).unwrap();
    assert!(sdp.contains("m=audio 40000 RTP/AVP 0 96\r\n"), "{sdp}");

    // Opus-only trunk (dynamic payload type).
    let opus = RemoteMedia::parse(
        "v=0\r\no=- 5 5 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 98\r\na=rtpmap:98 opus/48000/2\r\n",
    )
    .unwrap();
    let (_, media) =
        answer_trunk_offer(&opus, addr("127.0.0.1:40000"), None, 11, &mut rng).unwrap();
    assert_eq!((media.codec, media.payload_type), (Codec::Opus, 98));

    let g722 = RemoteMedia::parse(
        "v=0\r\no=- 5 5 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 9\r\n",
    )
    .unwrap();
    let err = answer_trunk_offer(&g722, addr("127.0.0.1:40000"), None, 11, &mut rng).unwrap_err();
    assert!(matches!(err, Error::NoCommonCodec(_)), "{err:?}");
    assert_eq!(err.sip_status(), 488);
}

#[test]
fn inbound_srtp_offer_gets_our_key_under_their_tag() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let theirs = key(4);
    let sdp = format!(
        "v=0\r\no=- 5 5 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/SAVP 8\r\n{}",
        crypto_line(&theirs)
    );
    let offer = RemoteMedia::parse(&sdp).unwrap();
    let (local, media) =
        answer_trunk_offer(&offer, addr("127.0.0.1:40000"), None, 11, &mut rng).unwrap();
    let Security::Sdes {
        local: ours,
        remote,
    } = &media.security
    else {
        panic!("{:?}", media.security);
    };
    assert_eq!(remote, &theirs);
    assert_ne!(ours, &theirs);
    let (answer, _) = local.answer(&offer).unwrap();
    assert!(answer.contains("RTP/SAVP"), "{answer}");
    assert!(answer.contains(&crypto_line(ours)), "{answer}");
}

// ---- E.6 ----

#[test]
fn e6_sip_status_to_jingle_reason() {
    let rows: &[(u16, &str, Option<ReasonCondition>, &str)] = &[
        (
            486,
            "Busy Here",
            Some(ReasonCondition::Busy),
            "486 Busy Here",
        ),
        (600, "", Some(ReasonCondition::Busy), "600 Busy Everywhere"),
        (
            603,
            "Decline",
            Some(ReasonCondition::Decline),
            "603 Decline",
        ),
        (
            480,
            "",
            Some(ReasonCondition::Timeout),
            "480 Temporarily Unavailable",
        ),
        (
            408,
            "Request Timeout",
            Some(ReasonCondition::Timeout),
            "408 Request Timeout",
        ),
        (487, "Request Terminated", None, ""),
        (
            404,
            "Not Found",
            Some(ReasonCondition::GeneralError),
            "404 Not Found",
        ),
        (
            484,
            "",
            Some(ReasonCondition::GeneralError),
            "484 Address Incomplete",
        ),
        (410, "Gone", Some(ReasonCondition::GeneralError), "410 Gone"),
        (
            604,
            "",
            Some(ReasonCondition::GeneralError),
            "604 Does Not Exist Anywhere",
        ),
        (
            488,
            "",
            Some(ReasonCondition::IncompatibleParameters),
            "488 Not Acceptable Here",
        ),
        (
            606,
            "",
            Some(ReasonCondition::IncompatibleParameters),
            "606 Not Acceptable",
        ),
        (
            500,
            "",
            Some(ReasonCondition::ConnectivityError),
            "500 Server Internal Error",
        ),
        (
            503,
            "Service Unavailable",
            Some(ReasonCondition::ConnectivityError),
            "503 Service Unavailable",
        ),
        (599, "", Some(ReasonCondition::ConnectivityError), "599"),
        (
            403,
            "Forbidden",
            Some(ReasonCondition::GeneralError),
            "403 Forbidden",
        ),
        (200, "OK", None, ""),
    ];
    for (status, phrase, condition, text) in rows {
        let reason = reasons::jingle_reason_for_status(*status, phrase);
        assert_eq!(
            reason.as_ref().map(|r| r.condition.clone()),
            *condition,
            "{status}"
        );
        if let Some(r) = reason {
            assert_eq!(r.text.as_deref(), Some(*text), "{status}");
        }
    }
    for status in [408, 500, 502, 503, 504] {
        assert!(reasons::is_failover_status(status), "{status}");
    }
    for status in [404, 480, 486, 488, 600, 603] {
        assert!(!reasons::is_failover_status(status), "{status}");
    }
}

#[test]
fn e6_sip_end_to_jingle_reason() {
    let cases = [
        (sip::EndReason::RemoteHangup, ReasonCondition::Success),
        (sip::EndReason::LocalHangup, ReasonCondition::Success),
        (sip::EndReason::RemoteCancel, ReasonCondition::Cancel),
        (
            sip::EndReason::Rejected {
                status: 486,
                reason: "Busy Here".into(),
            },
            ReasonCondition::Busy,
        ),
        (
            sip::EndReason::Rejected {
                status: 487,
                reason: "Request Terminated".into(),
            },
            ReasonCondition::Cancel,
        ),
        (
            sip::EndReason::Failed(sip::Error::TimedOut("INVITE")),
            ReasonCondition::Timeout,
        ),
        (
            sip::EndReason::Failed(sip::Error::PeerIncompatible("no codec".into())),
            ReasonCondition::IncompatibleParameters,
        ),
        (
            sip::EndReason::Failed(sip::Error::Transport("refused".into())),
            ReasonCondition::ConnectivityError,
        ),
    ];
    for (end, condition) in cases {
        assert_eq!(
            reasons::jingle_reason_for_sip_end(&end).condition,
            condition,
            "{end:?}"
        );
    }
}

#[test]
fn e6_jingle_terminate_to_sip() {
    use CallDirection::{Inbound, Outbound};
    let r = |c: ReasonCondition| Some(Reason::new(c));
    let rows: &[(Option<Reason>, bool, CallDirection, SipAction)] = &[
        (
            r(ReasonCondition::Success),
            true,
            Outbound,
            SipAction::Bye { q850: 16 },
        ),
        (None, true, Inbound, SipAction::Bye { q850: 16 }),
        (
            r(ReasonCondition::Busy),
            false,
            Inbound,
            SipAction::Reject { status: 486 },
        ),
        (
            r(ReasonCondition::Decline),
            false,
            Inbound,
            SipAction::Reject { status: 603 },
        ),
        (
            r(ReasonCondition::Cancel),
            false,
            Outbound,
            SipAction::Cancel,
        ),
        (
            r(ReasonCondition::Timeout),
            false,
            Outbound,
            SipAction::Cancel,
        ),
        (
            r(ReasonCondition::Cancel),
            false,
            Inbound,
            SipAction::Reject { status: 487 },
        ),
        (
            r(ReasonCondition::Timeout),
            false,
            Inbound,
            SipAction::Reject { status: 480 },
        ),
        (
            r(ReasonCondition::ConnectivityError),
            true,
            Outbound,
            SipAction::Bye { q850: 38 },
        ),
        (
            r(ReasonCondition::FailedTransport),
            true,
            Inbound,
            SipAction::Bye { q850: 41 },
        ),
        (
            r(ReasonCondition::SecurityError),
            true,
            Outbound,
            SipAction::Bye { q850: 57 },
        ),
        (
            r(ReasonCondition::FailedApplication),
            true,
            Outbound,
            SipAction::Bye { q850: 58 },
        ),
        (
            r(ReasonCondition::FailedTransport),
            false,
            Inbound,
            SipAction::Reject { status: 480 },
        ),
        (
            r(ReasonCondition::SecurityError),
            false,
            Inbound,
            SipAction::Reject { status: 488 },
        ),
        (
            r(ReasonCondition::GeneralError),
            false,
            Inbound,
            SipAction::Reject { status: 500 },
        ),
    ];
    for (reason, answered, direction, action) in rows {
        assert_eq!(
            reasons::sip_action_for_terminate(reason.as_ref(), *answered, *direction),
            *action,
            "{reason:?} answered={answered} {direction:?}"
        );
    }
    assert_eq!(
        SipAction::Bye { q850: 16 }.reason_header().unwrap(),
        "Q.850;cause=16;text=\"Normal call clearing\""
    );
    assert_eq!(SipAction::Cancel.reason_header(), None);
    // Every listed condition has a text of its own.
    for (_, cause) in reasons::JINGLE_TO_Q850 {
        assert_ne!(reasons::q850_text(*cause), "Unspecified", "{cause}");
    }

    // The captured Conversations terminate after answer.
    let terminate = fixture("terminate_busy.xml");
    assert_eq!(terminate.action, Action::SessionTerminate);
    assert_eq!(
        reasons::sip_action_for_terminate(terminate.reason.as_ref(), true, Outbound),
        SipAction::Bye { q850: 17 }
    );
    assert_eq!(
        reasons::sip_action_for_terminate(terminate.reason.as_ref(), false, Inbound),
        SipAction::Reject { status: 486 }
    );
}

#[test]
fn e6_jmi_reject_to_sip_status() {
    let stanza = fixture_element("jmi_reject_busy.xml");
    let jmi = JingleMessage::from_message(&stanza).unwrap().unwrap();
    let JmiAction::Reject { reason } = &jmi.action else {
        panic!("{jmi:?}");
    };
    assert_eq!(reasons::sip_status_for_jmi_reject(reason.as_ref()), 486);
    assert_eq!(reasons::sip_status_for_jmi_reject(None), 603);
    assert_eq!(
        reasons::sip_status_for_jmi_reject(Some(&Reason::new(ReasonCondition::Decline))),
        603
    );
    assert_eq!(
        reasons::sip_status_for_jmi_reject(Some(&Reason::new(ReasonCondition::Timeout))),
        480
    );
    assert_eq!(reasons::RING_TIMEOUT_STATUS, 480);
}

#[test]
fn errors_map_to_reasons_and_statuses() {
    let rows = [
        (
            Error::UnsupportedApplications("video".into()),
            ReasonCondition::UnsupportedApplications,
            500,
        ),
        (
            Error::UnsupportedTransports,
            ReasonCondition::UnsupportedTransports,
            500,
        ),
        (
            Error::NoCommonCodec("x".into()),
            ReasonCondition::IncompatibleParameters,
            488,
        ),
        (
            Error::RtcpMuxRequired,
            ReasonCondition::IncompatibleParameters,
            500,
        ),
        (
            Error::Security("x".into()),
            ReasonCondition::SecurityError,
            500,
        ),
        (
            Error::MissingIceCredentials,
            ReasonCondition::FailedTransport,
            500,
        ),
        (
            Error::PeerMisbehaved("x".into()),
            ReasonCondition::FailedApplication,
            488,
        ),
        (
            Error::TrunkSrtp("x".into()),
            ReasonCondition::FailedApplication,
            488,
        ),
    ];
    for (err, condition, status) in rows {
        let reason = err.jingle_reason();
        assert_eq!(reason.condition, condition, "{err:?}");
        assert_eq!(reason.text, Some(err.to_string()));
        assert_eq!(err.sip_status(), status, "{err:?}");
    }
}
