use jid::BareJid;
use xmpp::jingle::ReasonCondition;

use super::*;

const CONFIG: &str = r#"
[xmpp]
domain = "gw.example.com"
secret = "s3cr3t"

[[sip.trunks]]
name = "primary"
host = "sip.example.net"

[[sip.trunks]]
name = "backup"
host = "backup.example.net"
number_format = "e164-no-plus"
dial_prefix = "12345678*"

[routing]
allowed_callers = ["alice@example.org", "staff.example.org"]
blocked_prefixes = ["+1900", "+1976", "+4490"]
default_caller_id = "+15550000000"

[[routing.routes]]
prefix = "+"
trunks = ["backup"]

[[routing.routes]]
prefix = "+1"
trunks = ["primary", "backup"]

[[routing.routes]]
prefix = "+1555"
trunks = ["primary"]

[[routing.users]]
jid = "alice@example.org"
caller_id = "+15551230001"
dids = ["+15551230001", "+15551230002"]

[[routing.users]]
jid = "bob@example.org"
dids = ["+15551230003"]
"#;

fn router() -> Router {
    let config = Config::parse(CONFIG, "gateway.toml", Vec::new()).expect("valid config");
    Router::from_config(&config)
}

fn jid(s: &str) -> BareJid {
    s.parse().unwrap()
}

fn e164(s: &str) -> E164 {
    s.parse().unwrap()
}

#[test]
fn outbound_authorization_by_jid_domain_or_everyone() {
    let mut r = router();
    assert_eq!(r.authorize_outbound(&jid("alice@example.org")), Ok(()));
    assert_eq!(
        r.authorize_outbound(&jid("carol@staff.example.org")),
        Ok(())
    );
    assert_eq!(
        r.authorize_outbound(&jid("bob@example.org")),
        Err(Denied::CallerNotAllowed)
    );
    assert_eq!(
        r.authorize_outbound(&jid("mallory@evil.example")),
        Err(Denied::CallerNotAllowed)
    );
    r.allow_everyone(true);
    assert_eq!(r.authorize_outbound(&jid("mallory@evil.example")), Ok(()));
}

#[test]
fn default_config_lets_nobody_call_out() {
    let config = Config::parse(
        "[xmpp]\ndomain = \"gw.example.com\"\nsecret = \"x\"\n",
        "gateway.toml",
        Vec::new(),
    )
    .unwrap();
    let r = Router::from_config(&config);
    assert_eq!(
        r.authorize_outbound(&jid("alice@example.org")),
        Err(Denied::CallerNotAllowed)
    );
    assert!(matches!(
        r.route("+15551234567"),
        Err(Denied::NoRoute { .. })
    ));
}

#[test]
fn caller_id_per_user_default_or_anonymous() {
    let r = router();
    assert_eq!(
        r.caller_id_for(&jid("alice@example.org")).map(E164::as_str),
        Some("+15551230001")
    );
    assert_eq!(
        r.caller_id_for(&jid("bob@example.org")).map(E164::as_str),
        Some("+15550000000")
    );
    let mut routing = Config::parse(CONFIG, "gateway.toml", Vec::new())
        .unwrap()
        .routing;
    routing.default_caller_id = None;
    let r = Router::new(&routing, &[]);
    assert_eq!(r.caller_id_for(&jid("bob@example.org")), None);
}

#[test]
fn longest_prefix_gives_ordered_trunks() {
    let r = router();
    assert_eq!(r.route("+15551234567").unwrap(), ["primary"]);
    assert_eq!(r.route("+12125550100").unwrap(), ["primary", "backup"]);
    assert_eq!(r.route("+442071234567").unwrap(), ["backup"]);
}

#[test]
fn blocked_prefixes_are_denied_before_routes() {
    let r = router();
    let denied = r.route("+19005550100").unwrap_err();
    assert_eq!(
        denied,
        Denied::Blocked {
            prefix: "+1900".parse().unwrap()
        }
    );
    assert_eq!(
        denied.to_string(),
        "calls to numbers starting with +1900 are blocked"
    );
    assert!(matches!(
        r.route("+449012345678"),
        Err(Denied::Blocked { .. })
    ));
}

#[test]
fn invalid_numbers_are_denied() {
    let r = router();
    for bad in [
        "15551234567",
        "+",
        "+0123",
        "+1555abc",
        "+1234567890123456",
        "",
    ] {
        assert!(
            matches!(r.route(bad), Err(Denied::InvalidNumber { .. })),
            "{bad:?} routed"
        );
    }
}

#[test]
fn dids_map_to_users() {
    let r = router();
    assert_eq!(
        r.did_to_jid(&e164("+15551230001")),
        Some(jid("alice@example.org"))
    );
    assert_eq!(
        r.did_to_jid(&e164("+15551230002")),
        Some(jid("alice@example.org"))
    );
    assert_eq!(
        r.did_to_jid(&e164("+15551230003")),
        Some(jid("bob@example.org"))
    );
    assert_eq!(r.did_to_jid(&e164("+15551230004")), None);
    assert_eq!(Denied::UnknownDid.sip_rejection().status, 404);
}

#[test]
fn inbound_numbers_are_normalized_per_trunk() {
    let mut r = router();
    let n = |r: &Router, trunk: &str, s: &str| r.normalize_inbound(trunk, s).map(|e| e.to_string());
    assert_eq!(n(&r, "primary", "+15551230001").unwrap(), "+15551230001");
    assert_eq!(
        n(&r, "primary", "tel:+1-555-123-0001").unwrap(),
        "+15551230001"
    );
    assert_eq!(n(&r, "backup", "15551230001").unwrap(), "+15551230001");
    assert_eq!(
        n(&r, "backup", "12345678*15551230001").unwrap(),
        "+15551230001"
    );
    assert_eq!(
        n(&r, "primary", "0044 20 7123 4567").unwrap(),
        "+442071234567"
    );
    assert!(matches!(
        n(&r, "primary", "anonymous"),
        Err(Denied::InvalidNumber { .. })
    ));
    // Without a plan, a 10-digit national number is not E.164 of anyone we know.
    assert_eq!(n(&r, "primary", "5551230001").unwrap(), "+5551230001");

    r.national_plan(Some(NationalPlan::nanp()));
    assert_eq!(n(&r, "primary", "5551230001").unwrap(), "+15551230001");
    assert_eq!(n(&r, "primary", "15551230001").unwrap(), "+15551230001");
    assert_eq!(n(&r, "primary", "(555) 123-0001").unwrap(), "+15551230001");
    assert_eq!(
        n(&r, "primary", "011442071234567").unwrap(),
        "+442071234567"
    );

    r.national_plan(Some(NationalPlan {
        country_code: "49".into(),
        trunk_prefix: "0".into(),
        national_len: None,
    }));
    assert_eq!(n(&r, "primary", "030123456").unwrap(), "+4930123456");
    assert_eq!(n(&r, "primary", "004930123456").unwrap(), "+4930123456");
}

#[test]
fn outbound_user_part_follows_trunk_format() {
    let r = router();
    assert_eq!(
        r.outbound_user_part("primary", &e164("+15551234567")),
        "+15551234567"
    );
    assert_eq!(
        r.outbound_user_part("backup", &e164("+15551234567")),
        "12345678*15551234567"
    );
}

#[test]
fn call_slots_enforce_global_and_per_user_limits() {
    let slots = CallSlots::new(3, Some(2));
    let alice = jid("alice@example.org");
    let bob = jid("bob@example.org");
    let a1 = slots.try_acquire(&alice).unwrap();
    let a2 = slots.try_acquire(&alice).unwrap();
    assert_eq!(
        slots.try_acquire(&alice).unwrap_err(),
        LimitReached::User { max: 2 }
    );
    let b1 = slots.try_acquire(&bob).unwrap();
    assert_eq!(slots.in_use(), 3);
    assert_eq!(
        slots.try_acquire(&bob).unwrap_err(),
        LimitReached::Global { max: 3 }
    );
    drop(a1);
    assert_eq!(slots.in_use(), 2);
    assert_eq!(slots.in_use_by(&alice), 1);
    let a3 = slots.clone().try_acquire(&alice).unwrap();
    assert_eq!(a3.user(), &alice);
    drop((a2, a3, b1));
    assert_eq!(slots.in_use(), 0);
    assert_eq!(slots.in_use_by(&alice), 0);

    let none = CallSlots::new(0, None);
    assert_eq!(
        none.try_acquire(&alice).unwrap_err(),
        LimitReached::Global { max: 0 }
    );
}

#[test]
fn each_denial_maps_to_sip_status_and_jingle_reason() {
    let cases: Vec<(Denied, u16, Option<u64>, ReasonCondition)> = vec![
        (
            Denied::CallerNotAllowed,
            403,
            None,
            ReasonCondition::SecurityError,
        ),
        (
            Denied::Blocked {
                prefix: "+1900".parse().unwrap(),
            },
            403,
            None,
            ReasonCondition::Decline,
        ),
        (
            Denied::UnknownSource,
            403,
            None,
            ReasonCondition::GeneralError,
        ),
        (
            Denied::NoRoute {
                number: "+44".into(),
            },
            404,
            None,
            ReasonCondition::GeneralError,
        ),
        (Denied::UnknownDid, 404, None, ReasonCondition::GeneralError),
        (
            Denied::InvalidNumber {
                number: "x".into(),
                why: "not a number".into(),
            },
            484,
            None,
            ReasonCondition::GeneralError,
        ),
        (
            Denied::Limit(LimitReached::Global { max: 1 }),
            503,
            Some(30),
            ReasonCondition::Busy,
        ),
        (
            Denied::Limit(LimitReached::User { max: 1 }),
            503,
            Some(30),
            ReasonCondition::Busy,
        ),
        (
            Denied::Draining,
            503,
            Some(60),
            ReasonCondition::ConnectivityError,
        ),
    ];
    for (denied, status, retry, condition) in cases {
        let sip = denied.sip_rejection();
        assert_eq!(sip.status, status, "{denied:?}");
        assert_eq!(sip.retry_after.map(|d| d.as_secs()), retry, "{denied:?}");
        assert!(!sip.reason.is_empty());
        let reason = denied.jingle_reason();
        assert_eq!(reason.condition, condition, "{denied:?}");
        assert_eq!(reason.text.as_deref(), Some(denied.to_string().as_str()));
    }
}
