//! The gateway behind ejabberd (Debian 23.01), the second XMPP server it supports
//! (TESTBED.md), end to end: the same harness as the Prosody tests, with
//! [`testbed::Ejabberd`] as the [`testbed::XmppServer`].
//!
//! - the gateway joins ejabberd's `ejabberd_service` listener (XEP-0114), configured
//!   with the item of `deploy/ejabberd.yml.snippet` an operator pastes, and answers
//!   disco#info for its domain and a number; a number JID is a callable contact
//!   (subscription approved and reciprocated, available presence with XEP-0115 caps
//!   routed by ejabberd's roster);
//! - ejabberd stopped cleanly, then killed, and restarted each time: the gateway is back
//!   (same process, every retry delay in its log within its backoff cap), a client
//!   (WebSocket, then BOSH) reaches it again;
//! - an outbound call from the libwebrtc client (Conversations-like: JMI to the bare
//!   number JID, inline candidates, renomination, Opus) to baresip answering
//!   `+15551230000`, tones verified both ways, BYE reaching the phone;
//! - an inbound call from baresip to alice's DID, alice online on two devices: the
//!   gateway's JMI `<propose/>` (`type='chat'`, to alice's bare JID) is routed by
//!   ejabberd to both resources; one proceeds and accepts, tones pass both ways, the
//!   other gets no session; with `mod_mam` on, the propose is in alice's archive.
//!
//! Runs inside a loopback-only namespace (`scripts/test-all`, or
//! `unshare --net -- bash -c 'ip link set lo up; cargo test -p jsg-tests --test e2e_ejabberd -- --nocapture'`);
//! needs `jingle-sip-gateway` built and ejabberd installed (`scripts/install-deps`).

mod e2e_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use e2e_support::{
    baresip_dialing, baresip_on_free_ports, hears_tone, tone_frequency, CLIENT_HZ, DID, NUMBER,
    PHONE_HZ, WAIT,
};
use serde_json::Value;
use testbed::XmppServer as _;
use testbed::{
    Candidates, Ejabberd, EjabberdConfig, Gateway, GatewayConfig, Namespace, OnPropose, Process,
    Scratch, WebrtcClient, WebrtcConfig,
};

/// Wall-clock bound of every peer of a test.
const LIMIT: Duration = Duration::from_secs(180);
/// The reconnect backoff cap given to the gateway (`xmpp.reconnect_backoff_max`).
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Features INTEROP.md E.1 requires of a number JID.
const CALL_FEATURES: [&str; 7] = [
    "urn:xmpp:jingle:1",
    "urn:xmpp:jingle:apps:rtp:1",
    "urn:xmpp:jingle:apps:rtp:audio",
    "urn:xmpp:jingle:transports:ice-udp:1",
    "urn:xmpp:jingle:apps:dtls:0",
    "urn:xmpp:jingle-message:0",
    "urn:ietf:rfc:3264",
];

/// ejabberd with alice registered, the gateway joined as its component, and (for the
/// calls) baresip answering [`NUMBER`] as the `local` trunk.
struct Bed {
    // Field order is drop order: the gateway, the phone, then ejabberd.
    gateway: Gateway,
    phone: Option<(Process, PathBuf)>,
    ejabberd: Ejabberd,
    scratch: Scratch,
}

/// How ejabberd is set up beyond the test bed's defaults.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// [`EjabberdConfig::default`].
    Default,
    /// The component listener is the one of `deploy/ejabberd.yml.snippet`.
    OperatorListener,
    /// `mod_mam` loaded, archiving by default ([`EjabberdConfig::mam`]).
    Mam,
}

impl Bed {
    /// `with_phone`: baresip answers [`NUMBER`] as the `local` trunk.
    fn start(name: &str, with_phone: bool, setup: Setup) -> Self {
        Namespace::require_loopback_only();
        let scratch = Scratch::new(name).expect("scratch");
        let config = EjabberdConfig {
            mam: setup == Setup::Mam,
            ..EjabberdConfig::default()
        };
        let (domain, secret) = (config.component.clone(), config.component_secret.clone());
        let mut ejabberd = Ejabberd::start_with_listener(&scratch, config, |port| {
            (setup == Setup::OperatorListener).then(|| snippet_listener(port, &domain, &secret))
        })
        .expect("ejabberd starts");
        let registered = Instant::now();
        ejabberd.register("alice", "alice-pw").expect("register");
        eprintln!(
            "ejabberd figures: started and listening {:?} after erl started; register (ejabberd_ctl) {:?}",
            ejabberd.last_start(),
            registered.elapsed()
        );
        let mut config = GatewayConfig {
            time_limit: LIMIT,
            ..GatewayConfig::default()
        };
        config
            .set("routing.routes.0.trunks", "[\"local\"]")
            .set("xmpp.reconnect_backoff_initial", "100ms")
            .set("xmpp.reconnect_backoff_max", "2s")
            // Opus on the client leg (libwebrtc offers it first), PCMU to the phone.
            .set("media.prefer_g711_passthrough", false);
        let phone = with_phone.then(|| {
            let dir = scratch.subdir("baresip").expect("baresip dir");
            let (p, port) =
                baresip_on_free_ports(&dir, LIMIT, &[]).unwrap_or_else(|e| panic!("baresip: {e}"));
            config.set("sip.trunks.0.port", port);
            (p, dir)
        });
        let started = Instant::now();
        let mut gateway = Gateway::start(&scratch, &ejabberd, &config).expect("gateway starts");
        ejabberd
            .wait_component_authenticated(0, WAIT)
            .expect("the gateway completes the XEP-0114 handshake with ejabberd");
        eprintln!(
            "gateway joined ejabberd {:?} after its start",
            started.elapsed()
        );
        gateway
            .wait_for_log("sip user agent running", WAIT)
            .expect("the gateway's SIP side starts");
        Self {
            gateway,
            phone,
            ejabberd,
            scratch,
        }
    }

    fn alice(&self) -> WebrtcConfig {
        let mut config = WebrtcConfig::new(self.ejabberd.jid("alice"), "alice-pw");
        config.tone_hz = CLIENT_HZ;
        config.renomination = true;
        config.time_limit = LIMIT;
        config
    }

    fn number_bare(&self) -> String {
        format!("{NUMBER}@{}", self.ejabberd.component_domain())
    }

    fn number_full(&self) -> String {
        format!("{}/gw", self.number_bare())
    }

    fn gateway_log(&mut self) -> String {
        self.gateway.process().log_tail(60)
    }

    /// The gateway's `call summary` line, waiting for it.
    fn call_summary(&mut self) -> String {
        let path = self.gateway.process().log_path().to_owned();
        let deadline = Instant::now() + WAIT;
        loop {
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            if let Some(l) = log.lines().find(|l| l.contains("call summary")) {
                return l.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no call summary\n{}",
                self.gateway_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The `ejabberd_service` item of `deploy/ejabberd.yml.snippet` (what an operator
/// pastes), with its port, host and password replaced by the test bed's.
fn snippet_listener(port: u16, domain: &str, secret: &str) -> String {
    let path = testbed::paths::workspace_root()
        .join("deploy")
        .join("ejabberd.yml.snippet");
    let text = std::fs::read_to_string(&path).expect("deploy/ejabberd.yml.snippet");
    let item: String = text
        .lines()
        .skip_while(|l| l.trim_end() != "listen:")
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect();
    for (from, what) in [
        ("port: 5347", "the port"),
        ("\"gw.example.com\":", "the host"),
        ("password: \"change-me\"", "the password"),
    ] {
        assert!(
            item.contains(from),
            "the snippet's listener sets {what}: {item}"
        );
    }
    assert!(item.contains("module: ejabberd_service"), "{item}");
    item.replace("port: 5347", &format!("port: {port}"))
        .replace("\"gw.example.com\":", &format!("\"{domain}\":"))
        .replace(
            "password: \"change-me\"",
            &format!("password: \"{secret}\""),
        )
}

/// The `from` of the message forwarded inside a MAM result (XEP-0313 §4.2).
fn archived_sender(result: &str) -> String {
    let inner = result
        .find("<forwarded")
        .and_then(|i| result[i..].find("<message").map(|j| &result[i + j..]))
        .unwrap_or_default();
    let tag = &inner[..inner.find('>').unwrap_or(inner.len())];
    tag.split_once(" from='")
        .or_else(|| tag.split_once(" from=\""))
        .and_then(|(_, rest)| rest.split(['\'', '"']).next())
        .unwrap_or_default()
        .to_owned()
}

/// The frequency baresip heard, from its recording `*-dec.wav` in `dir`, once baresip
/// closed it (it writes the final header when its call ends).
fn recorded_tone(dir: &Path, log: &Path) -> f64 {
    let path = testbed::recording::wait_complete_wav(dir, "-dec.wav", WAIT)
        .unwrap_or_else(|e| panic!("baresip's recording: {e}\n{}", testbed::log_tail(log, 30)));
    tone_frequency(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn features(event: &testbed::webrtc::Event) -> Vec<String> {
    event
        .get("features")
        .and_then(Value::as_array)
        .expect("features")
        .iter()
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect()
}

// ------------------------------------------------------------------ tests

#[test]
fn gateway_joins_ejabberd_as_component_and_answers_disco() {
    let bed = Bed::start("e2e-ejabberd-disco", false, Setup::OperatorListener);
    let mut alice =
        WebrtcClient::start(&bed.scratch, &bed.ejabberd, &bed.alice()).expect("alice logs in");
    assert!(
        alice.jid().starts_with("alice@localhost/"),
        "bound to a full JID: {}",
        alice.jid()
    );

    let domain = bed.ejabberd.component_domain().to_owned();
    let info = alice
        .disco(&domain, None)
        .expect("the component domain answers disco#info through ejabberd");
    let identities = info.get("identities").expect("identities").to_string();
    assert!(
        identities.contains("\"gateway\"") && identities.contains("\"pstn\""),
        "{identities}"
    );

    let number = alice
        .disco(&bed.number_bare(), None)
        .expect("disco#info of the bare number JID");
    let got = features(&number);
    for f in CALL_FEATURES {
        assert!(got.iter().any(|x| x == f), "{f} missing: {got:?}");
    }
    let err = alice
        .disco(&format!("not-a-number@{domain}"), None)
        .expect_err("a localpart that is not E.164 gets an error");
    assert!(err.to_string().contains("item-not-found"), "{err}");

    // The number as a contact: ejabberd's mod_roster carries the subscription
    // handshake between the client and the component, then delivers the component's
    // available presence (with caps) to the subscribed user.
    let bare = bed.number_bare();
    let t = Duration::from_secs(10);
    let subscribed_at = Instant::now();
    alice.subscribe(&bare).expect("subscribe sent");
    alice
        .wait_presence(&bare, "subscribed", t)
        .expect("the gateway approves the subscription");
    alice
        .wait_presence(&bare, "subscribe", t)
        .expect("the gateway subscribes back");
    let available = alice
        .wait_presence(&bed.number_full(), "available", t)
        .expect("available presence from N/gw");
    eprintln!(
        "subscribe -> available presence from {}: {:?}",
        bed.number_full(),
        subscribed_at.elapsed()
    );
    let caps = available
        .get("caps")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .unwrap_or_else(|| panic!("presence carries XEP-0115 caps: {}", available.0));
    let node = caps["node"].as_str().expect("caps node");
    let ver = caps["value"].as_str().expect("caps ver");
    let by_caps = alice
        .disco(&bed.number_full(), Some(&format!("{node}#{ver}")))
        .expect("disco#info of the caps node");
    let got = features(&by_caps);
    for f in CALL_FEATURES {
        assert!(got.iter().any(|x| x == f), "{f} missing: {got:?}");
    }
    alice.quit();
}

/// The delays of the gateway's reconnect attempts, from its log lines
/// `xmpp component disconnected … retry_in=800ms` (Rust's `Duration` debug format).
fn retry_delays(log: &str) -> Vec<Duration> {
    log.lines()
        .filter(|l| l.contains("xmpp component disconnected"))
        .filter_map(|l| l.split("retry_in=").nth(1)?.split_whitespace().next())
        .filter_map(|v| {
            if let Some(ms) = v.strip_suffix("ms") {
                ms.parse::<f64>().ok().map(|m| m / 1000.0)
            } else if let Some(us) = v.strip_suffix("µs") {
                us.parse::<f64>().ok().map(|u| u / 1e6)
            } else {
                v.strip_suffix('s')?.parse::<f64>().ok()
            }
        })
        .map(Duration::from_secs_f64)
        .collect()
}

#[test]
fn gateway_reconnects_after_ejabberd_stop_and_crash() {
    let mut bed = Bed::start("e2e-ejabberd-reconnect", false, Setup::Default);
    let gateway_pid = bed.gateway.process().pid();
    let mut seen = bed.ejabberd.component_authentications();
    assert_eq!(seen, 1);
    // First a clean shutdown (Mnesia flushes alice's account to the spool), then a
    // crash (SIGKILL): the gateway comes back after both.
    for crash in [false, true] {
        let how = if crash { "SIGKILL" } else { "SIGTERM" };
        if crash {
            bed.ejabberd.kill();
        } else {
            let took = bed.ejabberd.stop(Duration::from_secs(10));
            eprintln!("ejabberd stopped cleanly in {took:?}");
        }
        // Long enough for the gateway's backoff to reach its cap.
        std::thread::sleep(BACKOFF_MAX * 2);
        bed.gateway
            .process()
            .check_running()
            .expect("the gateway keeps running without its server");
        let restarted = Instant::now();
        bed.ejabberd.restart().expect("ejabberd restarts");
        let listening = restarted.elapsed();
        seen = bed
            .ejabberd
            .wait_component_authenticated(seen, BACKOFF_MAX * 3 + Duration::from_secs(30))
            .expect("the gateway re-authenticates");
        let back = restarted.elapsed();
        // The cap is checked on the gateway's own schedule (its `retry_in` values), not
        // on wall time: on a loaded machine ejabberd's handshake alone can take seconds.
        let log = std::fs::read_to_string(bed.gateway.process().log_path()).unwrap_or_default();
        let retries = retry_delays(&log);
        let longest = retries.iter().copied().max().unwrap_or_default();
        eprintln!(
            "reconnect figures after {how}: ejabberd up {listening:?} after restart, \
             component authenticated {back:?} after restart (cap {BACKOFF_MAX:?}); \
             {} retries so far, the longest {longest:?}",
            retries.len()
        );
        assert!(!retries.is_empty(), "{how}: the gateway logged no retry");
        assert!(
            longest <= BACKOFF_MAX,
            "{how}: a retry after {longest:?}, above the cap {BACKOFF_MAX:?}"
        );
        assert_eq!(bed.gateway.process().pid(), gateway_pid, "the same process");
        // The account is in the spool; disco reaches the component again. The second
        // time over BOSH (`mod_bosh` at /bosh), the first over WebSocket.
        let mut config = bed.alice();
        config.bosh = crash;
        let mut alice = WebrtcClient::start(&bed.scratch, &bed.ejabberd, &config)
            .unwrap_or_else(|e| panic!("alice logs in (bosh: {crash}): {e}"));
        let number = alice
            .disco(&bed.number_bare(), None)
            .expect("the number answers disco#info again");
        assert!(features(&number)
            .iter()
            .any(|f| f == "urn:xmpp:jingle-message:0"));
        alice.quit();
    }
}

#[test]
fn outbound_call_through_ejabberd_tones_both_ways() {
    let mut bed = Bed::start("e2e-ejabberd-out", true, Setup::Default);
    let mut config = bed.alice();
    config.candidates = Candidates::Inline;
    let mut alice =
        WebrtcClient::start(&bed.scratch, &bed.ejabberd, &config).expect("alice logs in");
    let callee = bed.number_bare();
    let placed = Instant::now();
    let sid = alice.call(&callee, true).expect("call placed");
    let propose = alice
        .wait_match("propose sent", WAIT, |e| {
            e.name() == "jmi_sent" && e.str("action") == Some("propose")
        })
        .expect("propose sent");
    assert_eq!(propose.str("to"), Some(callee.as_str()), "to the bare JID");
    let proceed = alice
        .wait_jmi("proceed", WAIT)
        .unwrap_or_else(|e| panic!("no proceed through ejabberd: {e}\n{}", bed.gateway_log()));
    assert_eq!(proceed.str("from"), Some(bed.number_full().as_str()));
    assert_eq!(proceed.str("id"), Some(sid.as_str()));
    let to_proceed = placed.elapsed();
    alice
        .wait_for("accepted", WAIT)
        .unwrap_or_else(|e| panic!("the call was not answered: {e}\n{}", bed.gateway_log()));
    let to_accepted = placed.elapsed();
    let heard = hears_tone(&mut alice, PHONE_HZ).unwrap_or_else(|e| panic!("{e}"));
    let to_tone = placed.elapsed();
    let stats = alice.stats().expect("stats");
    let codec = stats["inbound"][0]["codec"]
        .as_str()
        .unwrap_or("?")
        .to_owned();
    // Let the phone record a while of the client's tone.
    std::thread::sleep(Duration::from_secs(2));
    alice.hangup("success").expect("hangup");
    let summary = bed.call_summary();
    let (phone, dir) = bed.phone.as_ref().expect("phone");
    let phone_log = phone.log_path().to_owned();
    let phone_heard = recorded_tone(dir, &phone_log);
    eprintln!(
        "outbound through ejabberd: propose->proceed {to_proceed:?}, call->accepted \
         {to_accepted:?}, call->tone heard {to_tone:?}; client heard {heard:.1} Hz ({codec}), \
         phone heard {phone_heard:.1} Hz\n{summary}"
    );
    assert!((heard - PHONE_HZ).abs() <= PHONE_HZ * 0.02, "{heard}");
    assert!(
        (phone_heard - CLIENT_HZ).abs() <= CLIENT_HZ * 0.02,
        "the phone heard {phone_heard} Hz, want {CLIENT_HZ} Hz ±2 %"
    );
    assert!(codec.to_ascii_lowercase().ends_with("opus"), "{codec}");
    assert!(summary.contains("transcoded=true"), "{summary}");
    assert!(summary.contains("hung_up_by=\"client\""), "{summary}");
    let deadline = Instant::now() + WAIT;
    while !std::fs::read_to_string(&phone_log)
        .unwrap_or_default()
        .contains("session closed: Connection reset by peer")
    {
        assert!(
            Instant::now() < deadline,
            "the BYE reaches the phone\n{}",
            testbed::log_tail(&phone_log, 30)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    alice.quit();
}

#[test]
fn inbound_call_through_ejabberd_rings_every_resource_and_tones_pass() {
    let mut bed = Bed::start("e2e-ejabberd-in", false, Setup::Mam);
    // alice on two devices, both at the default priority 0: `phone` answers, `laptop`
    // lets it ring (each client names its logs after the account, so the second one
    // has its own scratch directory).
    let mut config = bed.alice();
    config.resource = "phone".into();
    let mut alice = WebrtcClient::start(&bed.scratch, &bed.ejabberd, &config).expect("alice/phone");
    let scratch_b = Scratch::new("e2e-ejabberd-in-laptop").expect("scratch");
    config.resource = "laptop".into();
    config.on_propose = OnPropose::Ignore;
    let mut laptop = WebrtcClient::start(&scratch_b, &bed.ejabberd, &config).expect("alice/laptop");
    let dir = bed.scratch.subdir("caller").expect("caller dir");
    let dialed = Instant::now();
    let caller =
        baresip_dialing(&dir, DID, bed.gateway.sip_port(), LIMIT).unwrap_or_else(|e| panic!("{e}"));
    let propose = alice.wait_jmi("propose", WAIT).unwrap_or_else(|e| {
        panic!(
            "the gateway's propose did not reach alice's resource: {e}\n{}",
            bed.gateway_log()
        )
    });
    let to_propose = dialed.elapsed();
    let caller_jid = format!("{NUMBER}@{}/gw", bed.ejabberd.component_domain());
    assert_eq!(propose.str("from"), Some(caller_jid.as_str()));
    // ejabberd_sm routes a `chat` message to a bare JID to every available resource of
    // the highest non-negative priority, as Prosody does: both devices ring.
    let propose_b = laptop.wait_jmi("propose", WAIT).unwrap_or_else(|e| {
        panic!(
            "the propose did not reach alice's second resource: {e}\n{}",
            bed.gateway_log()
        )
    });
    assert_eq!(propose_b.str("from"), Some(caller_jid.as_str()));
    assert_eq!(propose_b.str("id"), propose.str("id"), "the same propose");
    let incoming = alice
        .wait_for("incoming", WAIT)
        .unwrap_or_else(|e| panic!("no session-initiate: {e}\n{}", bed.gateway_log()));
    let to_ring = dialed.elapsed();
    assert_eq!(incoming.str("from"), Some(caller_jid.as_str()));
    // How ejabberd delivered the propose: the message as alice's stream received it.
    let propose_xml = alice
        .stanzas()
        .expect("stanza log")
        .into_iter()
        .find(|s| s.dir == "in" && s.xml.contains("<propose") && s.xml.contains("<message"))
        .map(|s| s.xml)
        .expect("the propose in alice's stanza log");
    eprintln!("propose as delivered by ejabberd: {propose_xml}");
    assert!(
        propose_xml.contains("to=\"alice@localhost\"")
            || propose_xml.contains("to='alice@localhost'"),
        "addressed to the bare JID: {propose_xml}"
    );
    assert!(
        propose_xml.contains("type=\"chat\"") || propose_xml.contains("type='chat'"),
        "type chat: {propose_xml}"
    );
    let heard = hears_tone(&mut alice, PHONE_HZ).unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_secs(2));
    laptop.drain();
    assert!(
        !laptop.history().iter().any(|e| e.name() == "incoming"),
        "the device that did not proceed gets no session"
    );
    alice.hangup("success").expect("hangup");
    let phone_heard = recorded_tone(&dir, caller.log_path());
    let summary = bed.call_summary();
    eprintln!(
        "inbound through ejabberd: dial->propose {to_propose:?}, dial->session-initiate \
         {to_ring:?}; alice heard {heard:.1} Hz, caller heard {phone_heard:.1} Hz\n{summary}"
    );
    assert!((heard - PHONE_HZ).abs() <= PHONE_HZ * 0.02, "{heard}");
    assert!(
        (phone_heard - CLIENT_HZ).abs() <= CLIENT_HZ * 0.02,
        "the caller heard {phone_heard} Hz"
    );
    let gw_log = std::fs::read_to_string(bed.gateway.process().log_path()).unwrap_or_default();
    assert!(
        matches!(
            (gw_log.find("dtls connected"), gw_log.find("ICE and DTLS up: SIP 200 sent")),
            (Some(d), Some(a)) if d < a
        ),
        "SIP 200 only after ICE and DTLS\n{}",
        bed.gateway_log()
    );

    // With MAM on (most servers of Conversations users), the propose sits in alice's
    // archive: a device that catches up later must find the call's end there too.
    alice
        .send_raw(
            "<iq xmlns='jabber:client' type='set' id='mam-q'>\
             <query xmlns='urn:xmpp:mam:2' queryid='mam-q'/></iq>",
        )
        .expect("MAM query sent");
    let deadline = Instant::now() + WAIT;
    let archived: Vec<String> = loop {
        let stanzas = alice.stanzas().expect("stanza log");
        let done = stanzas
            .iter()
            .any(|s| s.dir == "in" && s.xml.contains("<fin") && s.xml.contains("urn:xmpp:mam:2"));
        if done {
            break stanzas
                .into_iter()
                .filter(|s| s.dir == "in" && s.xml.contains("queryid='mam-q'"))
                .map(|s| s.xml)
                .collect();
        }
        assert!(Instant::now() < deadline, "no MAM <fin/> for the query");
        std::thread::sleep(Duration::from_millis(50));
    };
    // (action, sender) of each archived JMI message.
    let actions: Vec<(&str, String)> = archived
        .iter()
        .flat_map(|x| {
            let from = archived_sender(x);
            [
                "propose", "ringing", "proceed", "accept", "reject", "retract", "finish",
            ]
            .into_iter()
            .filter(move |a| x.contains(&format!("<{a} xmlns='urn:xmpp:jingle-message:0'")))
            .map(move |a| (a, from.clone()))
        })
        .collect();
    eprintln!("alice's MAM archive holds these JMI messages, in order: {actions:?}");
    assert!(
        actions
            .iter()
            .any(|(a, from)| *a == "propose" && *from == caller_jid),
        "the gateway's propose is archived: {archived:?}"
    );
    assert!(
        propose_xml.contains("urn:xmpp:sid:0"),
        "ejabberd's MAM stamps a stanza-id on the delivered propose: {propose_xml}"
    );
    alice.quit();
    laptop.quit();
}
