//! The gateway as an XMPP component, end to end (issue 2, "Done when" bullets 3 and 4):
//! the real `jingle-sip-gateway` binary joined to a real Prosody, seen from the
//! libwebrtc client that behaves like Conversations.
//!
//! - a number JID is a callable contact: subscription approved and reciprocated,
//!   available presence with XEP-0115 caps, disco#info of the caps node with the call
//!   features (and the `ver` recomputed here, independently of the gateway);
//! - JMI propose → proceed from `NUMBER@gw.localhost/gw` → session-initiate with inline
//!   candidates → IQ result → session-terminate with a reason and a text, in bounded
//!   time. The number's route points at a SIPp UAS that answers every INVITE with
//!   `486 Busy Here` (`tests/peers/sip/uas_busy_486.xml`), so the call ends the same
//!   way whether the gateway bridges to SIP yet or not;
//! - a caller that `[routing]` does not allow gets a JMI reject (reason + text), and
//!   the trunk never sees an INVITE;
//! - Prosody killed and restarted: the component is back within the backoff cap and
//!   answers disco#info again.
//!
//! Needs `jingle-sip-gateway` built (`cargo build -p jingle-sip-gateway` when running
//! `-p jsg-tests` alone) and runs inside `unshare --net` (see `tests/README.md`).

use std::time::{Duration, Instant};

use serde_json::Value;
use testbed::webrtc::Event;
use testbed::{
    Gateway, GatewayConfig, Namespace, Prosody, Scratch, Sipp, WebrtcClient, WebrtcConfig,
};

/// The number every test calls (routed by the `+` route of `deploy/testbed.toml`).
const NUMBER: &str = "+15551230000";
/// The one user `[routing] allowed_callers` lets call out in these tests.
const ALLOWED: &str = "alice";
/// A user of the same domain that is not allowed.
const NOT_ALLOWED: &str = "bob";
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

/// Jingle reason conditions (XEP-0166 §7.4) the gateway may end a failed outbound call
/// with, all of which Conversations shows as a call end with a cause.
const FAILURE_REASONS: [&str; 10] = [
    "busy",
    "decline",
    "security-error",
    "general-error",
    "failed-application",
    "connectivity-error",
    "media-error",
    "timeout",
    "gone",
    "incompatible-parameters",
];

// ------------------------------------------------------------------ private helpers

/// Prosody, the busy trunk, the gateway (routing overridden so only `alice` may call
/// out, through the trunk `local` pointed at the busy SIPp) and registered users.
struct Bed {
    // Field order is drop order: clients first, then the gateway, SIPp, Prosody.
    gateway: Gateway,
    trunk: Sipp,
    prosody: Prosody,
    scratch: Scratch,
}

impl Bed {
    fn start(name: &str) -> Self {
        Namespace::require_loopback_only();
        let scratch = Scratch::new(name).expect("scratch");
        let mut prosody = Prosody::start_default(&scratch).expect("prosody starts");
        for user in [ALLOWED, NOT_ALLOWED] {
            prosody
                .register(user, &format!("{user}-pw"))
                .expect("register");
        }
        let trunk = Sipp::uas(&scratch, "uas_busy_486.xml").expect("sipp starts");
        let mut config = GatewayConfig {
            time_limit: Duration::from_secs(120),
            ..GatewayConfig::default()
        };
        config
            .set(
                "routing.allowed_callers",
                format!("[\"{}\"]", prosody.jid(ALLOWED)),
            )
            .set("routing.routes.0.trunks", "[\"local\"]")
            .set("sip.trunks.0.port", trunk.port())
            .set("xmpp.reconnect_backoff_initial", "100ms")
            .set("xmpp.reconnect_backoff_max", "2s");
        let gateway = Gateway::start(&scratch, &prosody, &config).expect("gateway starts");
        prosody
            .wait_component_authenticated(0, Duration::from_secs(20))
            .expect("the gateway completes the XEP-0114 handshake");
        Self {
            gateway,
            trunk,
            prosody,
            scratch,
        }
    }

    fn client(&self, user: &str) -> WebrtcClient {
        let mut config = WebrtcConfig::new(self.prosody.jid(user), format!("{user}-pw"));
        config.time_limit = Duration::from_secs(90);
        WebrtcClient::start(&self.scratch, &self.prosody, &config).expect("client logs in")
    }

    fn number_bare(&self) -> String {
        format!("{NUMBER}@{}", self.prosody.component_domain())
    }

    fn number_full(&self) -> String {
        format!("{}/gw", self.number_bare())
    }
}

/// Subscribes `client` to the number and waits for the gateway's approval, its own
/// subscription request and its available presence from `N/gw`; returns the caps
/// (`node`, `ver`) of that presence.
fn subscribe_to_number(client: &mut WebrtcClient, bed: &Bed) -> (String, String) {
    let bare = bed.number_bare();
    client.subscribe(&bare).expect("subscribe sent");
    let t = Duration::from_secs(10);
    client
        .wait_presence(&bare, "subscribed", t)
        .expect("the gateway approves the subscription");
    client
        .wait_presence(&bare, "subscribe", t)
        .expect("the gateway subscribes back");
    let available = client
        .wait_presence(&bed.number_full(), "available", t)
        .expect("available presence from N/gw");
    let caps = available
        .get("caps")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .unwrap_or_else(|| panic!("presence carries XEP-0115 caps: {}", available.0));
    assert_eq!(
        caps.get("algorithm").and_then(Value::as_str),
        Some("sha-1"),
        "{caps}"
    );
    let node = caps["node"].as_str().expect("caps node").to_owned();
    let ver = caps["value"].as_str().expect("caps ver").to_owned();
    (node, ver)
}

/// The value of attribute `name` in the start tag `tag` (`<identity category='…' …`),
/// XML entities decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    let mut rest = tag;
    loop {
        let i = rest.find(name)?;
        let before = rest[..i].chars().last();
        let after = &rest[i + name.len()..];
        rest = after;
        if !before.is_some_and(char::is_whitespace) {
            continue;
        }
        let after = after.trim_start();
        let Some(after) = after.strip_prefix('=') else {
            continue;
        };
        let after = after.trim_start();
        let quote = after.chars().next()?;
        if quote != '"' && quote != '\'' {
            return None;
        }
        let value = &after[1..];
        let end = value.find(quote)?;
        return Some(
            value[..end]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
    }
}

/// The start tags `<NAME …>` in `xml`.
fn start_tags<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    let mut tags = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let tail = &rest[i..];
        let next = tail[open.len()..].chars().next();
        let end = tail.find('>').map_or(tail.len(), |e| e + 1);
        if next.is_some_and(|c| c.is_whitespace() || c == '/' || c == '>') {
            tags.push(&tail[..end]);
        }
        rest = &tail[end.min(tail.len())..];
    }
    tags
}

/// The XEP-0115 §5.1 verification string of a disco#info result (identities and
/// features; the gateway sends no data forms), from the raw XML as received.
fn caps_string(query: &str) -> String {
    let mut identities: Vec<(String, String, String, String)> = start_tags(query, "identity")
        .iter()
        .map(|t| {
            (
                attr(t, "category").unwrap_or_default(),
                attr(t, "type").unwrap_or_default(),
                attr(t, "xml:lang").unwrap_or_default(),
                attr(t, "name").unwrap_or_default(),
            )
        })
        .collect();
    identities.sort();
    let mut features: Vec<String> = start_tags(query, "feature")
        .iter()
        .filter_map(|t| attr(t, "var"))
        .collect();
    features.sort();
    let mut s = String::new();
    for (c, t, l, n) in identities {
        s.push_str(&format!("{c}/{t}/{l}/{n}<"));
    }
    for f in features {
        s.push_str(&f);
        s.push('<');
    }
    s
}

/// SHA-1 (FIPS 180-4), as XEP-0115 §5.1 requires for `hash='sha-1'`.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Base64 (RFC 4648 §4, padded).
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The first stanza in `client`'s log (direction `dir`) for which `pred` holds,
/// waiting up to `timeout` for it to be logged.
fn wait_stanza(
    client: &WebrtcClient,
    dir: &str,
    timeout: Duration,
    what: &str,
    mut pred: impl FnMut(&str) -> bool,
) -> (u64, String) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = client
            .stanzas()
            .unwrap_or_default()
            .into_iter()
            .find(|s| s.dir == dir && pred(&s.xml))
        {
            return (s.t, s.xml);
        }
        assert!(
            Instant::now() < deadline,
            "{}: no {dir} stanza {what} within {timeout:?}; log {}",
            client.name(),
            client.stanza_log().display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `(condition, text)` of a Jingle `reason` object as StanzaJS reports it.
fn reason_of(event: &Event, key: &str) -> (String, String) {
    let reason = event.get(key).cloned().unwrap_or(Value::Null);
    let condition = reason
        .get("condition")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let text = reason
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    (condition, text)
}

fn ms(event: &Event) -> u64 {
    event.get("t").and_then(Value::as_u64).unwrap_or_default()
}

// ------------------------------------------------------------------ tests

#[test]
fn client_sees_number_as_callable_contact() {
    // The private SHA-1/base64 used to recompute the ver: FIPS 180-4's "abc" vector
    // and XEP-0115 §5.2's simple example.
    assert_eq!(base64(&sha1(b"abc")), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
    let example = "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<\
                   http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<\
                   http://jabber.org/protocol/muc<";
    assert_eq!(
        base64(&sha1(example.as_bytes())),
        "QgayPKawpkPSDYmwT/WM94uAlu0="
    );

    let bed = Bed::start("e2e-contact");
    let mut alice = bed.client(ALLOWED);

    let (node, ver) = subscribe_to_number(&mut alice, &bed);
    let caps_node = format!("{node}#{ver}");
    let full = bed.number_full();
    let info = alice
        .disco(&full, Some(&caps_node))
        .expect("disco#info of the caps node is answered");
    let features: Vec<String> = info
        .get("features")
        .and_then(Value::as_array)
        .expect("features")
        .iter()
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect();
    for f in CALL_FEATURES {
        assert!(features.iter().any(|x| x == f), "{f} missing: {features:?}");
    }
    assert!(
        !features.iter().any(|f| f.contains("video")),
        "no video feature: {features:?}"
    );

    // Recompute the ver from the result exactly as received (XEP-0115 §5.1, §5.4).
    let (_, result) = wait_stanza(
        &alice,
        "in",
        Duration::from_secs(5),
        "disco#info result for the caps node",
        |x| {
            x.contains("disco#info")
                && x.contains("result")
                && start_tags(x, "query")
                    .first()
                    .and_then(|q| attr(q, "node"))
                    .is_some_and(|n| n == caps_node)
        },
    );
    let s = caps_string(&result);
    let recomputed = base64(&sha1(s.as_bytes()));
    eprintln!("caps S = {s}\ncaps ver advertised {ver}, recomputed {recomputed}");
    assert_eq!(recomputed, ver, "XEP-0115 ver of {s}");

    // The bare number JID answers with the same features.
    let bare_info = alice
        .disco(&bed.number_bare(), None)
        .expect("disco#info of the bare number JID");
    let bare_features = bare_info.get("features").expect("features").to_string();
    for f in CALL_FEATURES {
        assert!(bare_features.contains(f), "{f} missing: {bare_features}");
    }

    // A localpart that is not E.164 is not an entity of the gateway.
    for bad in ["not-a-number", "15551230000", "+0123"] {
        let jid = format!("{bad}@{}", bed.prosody.component_domain());
        let err = alice
            .disco(&jid, None)
            .expect_err("non-E.164 localpart gets an error");
        assert!(
            err.to_string().contains("item-not-found"),
            "{jid}: item-not-found, got {err}"
        );
    }
    alice.quit();
}

#[test]
fn propose_proceed_initiate_is_acknowledged_and_ended_with_a_reason() {
    let mut bed = Bed::start("e2e-call");
    let mut alice = bed.client(ALLOWED);
    // Like Conversations: the number is a contact whose presence (with caps) we know.
    subscribe_to_number(&mut alice, &bed);

    let bare = bed.number_bare();
    let full = bed.number_full();
    let started = Instant::now();
    let sid = alice.call(&bare, true).expect("call placed");
    let propose = alice
        .wait_match("propose sent", Duration::from_secs(10), |e| {
            e.name() == "jmi_sent" && e.str("action") == Some("propose")
        })
        .expect("propose sent");
    assert_eq!(
        propose.str("to"),
        Some(bare.as_str()),
        "propose to the bare JID"
    );
    let proceed = alice
        .wait_jmi("proceed", Duration::from_secs(10))
        .expect("proceed from the gateway");
    assert_eq!(proceed.str("from"), Some(full.as_str()), "from N/gw");
    assert_eq!(proceed.str("id"), Some(sid.as_str()));
    let proceed_ms = ms(&proceed).saturating_sub(ms(&propose));

    let initiate = alice
        .wait_for("session_initiate_sent", Duration::from_secs(15))
        .expect("session-initiate sent");
    assert_eq!(initiate.str("to"), Some(full.as_str()));
    assert_eq!(
        initiate.get("inline").and_then(Value::as_bool),
        Some(true),
        "inline candidates, the gateway advertises urn:ietf:rfc:3264: {}",
        initiate.0
    );
    let inline_candidates = initiate.f64("candidates").unwrap_or_default();
    assert!(inline_candidates >= 1.0, "{}", initiate.0);

    // The session-initiate IQ is acknowledged by the gateway.
    let (t_init, init_xml) = wait_stanza(
        &alice,
        "out",
        Duration::from_secs(5),
        "session-initiate",
        |x| x.contains("session-initiate") && x.contains(&sid),
    );
    let iq_id = start_tags(&init_xml, "iq")
        .first()
        .and_then(|t| attr(t, "id"))
        .expect("session-initiate iq id");
    let (t_ack, _) = wait_stanza(
        &alice,
        "in",
        Duration::from_secs(10),
        "IQ result of the session-initiate",
        |x| {
            start_tags(x, "iq").first().is_some_and(|t| {
                attr(t, "type").as_deref() == Some("result")
                    && attr(t, "id").as_deref() == Some(iq_id.as_str())
                    && attr(t, "from").as_deref() == Some(full.as_str())
            })
        },
    );

    // Then the gateway ends the session with a reason, never a silent hang.
    let terminated = alice
        .wait_match("session terminated", Duration::from_secs(20), |e| {
            e.name() == "terminated" && e.str("sid") == Some(sid.as_str())
        })
        .expect("the gateway ends the session");
    let ended_after = started.elapsed();
    let (t_term, term_xml) = wait_stanza(
        &alice,
        "in",
        Duration::from_secs(5),
        "session-terminate",
        |x| x.contains("session-terminate") && x.contains(&sid),
    );
    assert!(
        start_tags(&term_xml, "iq")
            .first()
            .and_then(|t| attr(t, "from"))
            .is_some_and(|f| f == full),
        "session-terminate from N/gw: {term_xml}"
    );
    assert!(t_ack <= t_term, "acknowledged before it is ended");
    let (condition, text) = reason_of(&terminated, "reason");
    let invites = bed.trunk.count("INVITE sip:");
    eprintln!(
        "call figures: propose->proceed {proceed_ms} ms (client clock); \
         session-initiate->IQ result {} ms; session-initiate->terminate {} ms; \
         {inline_candidates} inline candidates; propose->terminated {ended_after:?} (test clock); \
         reason <{condition}/> text {text:?}; INVITEs at the trunk: {invites}",
        t_ack.saturating_sub(t_init),
        t_term.saturating_sub(t_init),
    );
    assert!(
        FAILURE_REASONS.contains(&condition.as_str()),
        "reason condition from the gateway's set: {condition:?} ({})",
        terminated.0
    );
    assert!(
        !text.trim().is_empty(),
        "the reason has a <text/>: {term_xml}"
    );
    if invites > 0 {
        // Bridged: the trunk's 486 Busy Here must reach the caller as such, and the
        // gateway ACKs the 486 (SIPp's one call then completes and it exits 0).
        assert!(
            ["busy", "general-error", "decline"].contains(&condition.as_str()),
            "486 from the trunk maps to busy/general-error, got {condition}"
        );
        let status = bed
            .trunk
            .process()
            .wait_timeout(Duration::from_secs(10))
            .expect("sipp ends its one call");
        assert!(
            status.success(),
            "sipp saw INVITE, sent 486 and got the ACK: {status}\n{}",
            bed.trunk.log_tail(20)
        );
    } else {
        assert_eq!(
            condition, "failed-application",
            "not bridged: failed-application"
        );
    }
    alice.quit();
}

#[test]
fn caller_not_allowed_gets_reject_with_reason() {
    let bed = Bed::start("e2e-not-allowed");
    let mut bob = bed.client(NOT_ALLOWED);
    subscribe_to_number(&mut bob, &bed);

    let sid = bob.call(&bed.number_bare(), true).expect("call placed");
    let reject = bob
        .wait_jmi("reject", Duration::from_secs(10))
        .expect("the gateway rejects the proposal");
    assert_eq!(reject.str("id"), Some(sid.as_str()));
    assert_eq!(reject.str("from"), Some(bed.number_full().as_str()));
    let (condition, text) = reason_of(&reject, "reason");
    eprintln!("reject of a caller not allowed: <{condition}/> text {text:?}");
    assert!(
        FAILURE_REASONS.contains(&condition.as_str()),
        "reject reason from the gateway's set: {}",
        reject.0
    );
    assert!(
        !text.trim().is_empty(),
        "reject has a <text/>: {}",
        reject.0
    );

    // Nothing else follows: no proceed, no session-initiate from the client.
    std::thread::sleep(Duration::from_secs(1));
    bob.drain();
    assert!(
        !bob.history()
            .iter()
            .any(|e| e.name() == "jmi" && e.str("action") == Some("proceed")),
        "no proceed after the reject"
    );
    assert!(
        !bob.history()
            .iter()
            .any(|e| e.name() == "session_initiate_sent"),
        "no session-initiate after the reject"
    );

    // A session-initiate sent directly (no JMI) is ended as well, with a reason.
    let direct = bob.call(&bed.number_full(), false).expect("direct call");
    let terminated = bob
        .wait_match("direct session terminated", Duration::from_secs(15), |e| {
            e.name() == "terminated" && e.str("sid") == Some(direct.as_str())
        })
        .expect("the gateway ends a direct session of a caller not allowed");
    let (condition, text) = reason_of(&terminated, "reason");
    eprintln!("direct session-initiate of a caller not allowed: <{condition}/> text {text:?}");
    assert!(
        FAILURE_REASONS.contains(&condition.as_str()),
        "{}",
        terminated.0
    );
    assert!(!text.trim().is_empty(), "{}", terminated.0);

    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        bed.trunk.count("INVITE sip:"),
        0,
        "the trunk sees no INVITE"
    );
    bob.quit();
}

#[test]
fn gateway_reconnects_after_prosody_restart_and_answers_disco() {
    let mut bed = Bed::start("e2e-reconnect");
    let domain = bed.prosody.component_domain().to_owned();
    let mut alice = bed.client(ALLOWED);
    alice
        .disco(&bed.number_bare(), None)
        .expect("disco answered before the restart");
    let gateway_pid = bed.gateway.process().pid();
    let seen = bed.prosody.component_authentications();
    assert_eq!(seen, 1);

    bed.prosody.kill();
    alice
        .wait_for("disconnected", Duration::from_secs(10))
        .expect("the client loses its stream");
    alice.quit();
    // Long enough for the gateway's backoff to reach its cap.
    std::thread::sleep(BACKOFF_MAX * 2);
    bed.gateway
        .process()
        .check_running()
        .expect("the gateway keeps running without its server");

    let restarted = Instant::now();
    bed.prosody.restart().expect("prosody restarts");
    let listening = restarted.elapsed();
    bed.prosody
        .wait_component_authenticated(seen, BACKOFF_MAX * 3)
        .expect("the gateway re-authenticates within the backoff cap");
    let back = restarted.elapsed();
    eprintln!(
        "reconnect figures: prosody listening {listening:?} after restart, \
         component authenticated {back:?} after restart (cap {BACKOFF_MAX:?})"
    );
    assert!(
        back <= listening + BACKOFF_MAX + Duration::from_secs(1),
        "re-authenticated {back:?} after restart, Prosody listened after {listening:?}, cap {BACKOFF_MAX:?}"
    );
    assert_eq!(
        bed.gateway.process().pid(),
        gateway_pid,
        "the same gateway process"
    );

    let mut carol = bed.client(NOT_ALLOWED);
    let info = carol
        .disco(&domain, None)
        .expect("the domain answers disco#info again");
    let identities = info.get("identities").expect("identities").to_string();
    assert!(
        identities.contains("\"gateway\"") && identities.contains("\"pstn\""),
        "{identities}"
    );
    let number = carol
        .disco(&bed.number_bare(), None)
        .expect("the number answers disco#info again");
    let features = number.get("features").expect("features").to_string();
    assert!(features.contains("urn:xmpp:jingle-message:0"), "{features}");
    carol.quit();
}
