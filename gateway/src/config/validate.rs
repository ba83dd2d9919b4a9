//! Semantic checks of a configuration that deserialized: required keys, JID and
//! domain syntax, trunk names used by routes, port ranges, addresses.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use super::load::{KeyPath, Seg};
use super::{Config, TrunkAuth};

/// Every problem of `config`, each with the path of the key it concerns.
pub(super) fn validate(config: &Config) -> Vec<(KeyPath, String)> {
    let mut v = Checker::default();
    xmpp(config, &mut v);
    v.check(
        tracing_subscriber::EnvFilter::builder()
            .parse(&config.log.level)
            .err()
            .map(|e| format!("`{}` is not a log filter: {e}", config.log.level)),
        &["log", "level"],
    );
    let calls = &config.calls;
    v.nonzero(u64::from(calls.max_calls), &["calls", "max_calls"]);
    v.positive(calls.ring_timeout, &["calls", "ring_timeout"]);
    v.positive(
        calls.outbound_ring_timeout,
        &["calls", "outbound_ring_timeout"],
    );
    sip(config, &mut v);
    routing(config, &mut v);
    media(config, &mut v);
    v.problems
}

#[derive(Default)]
struct Checker {
    problems: Vec<(KeyPath, String)>,
}

fn path(keys: &[&str]) -> KeyPath {
    keys.iter().map(|k| Seg::Key((*k).to_owned())).collect()
}

fn at(base: &[Seg], index: usize, key: &str) -> KeyPath {
    let mut p = base.to_vec();
    p.push(Seg::Index(index));
    if !key.is_empty() {
        p.push(Seg::Key(key.to_owned()));
    }
    p
}

impl Checker {
    fn push(&mut self, path: KeyPath, message: impl Into<String>) {
        self.problems.push((path, message.into()));
    }
    fn check(&mut self, problem: Option<String>, keys: &[&str]) {
        if let Some(message) = problem {
            self.push(path(keys), message);
        }
    }
    fn required(&mut self, value: &str, keys: &[&str], what: &str) {
        if value.trim().is_empty() {
            self.push(
                path(keys),
                format!("required key is missing or empty: {what}"),
            );
        }
    }
    fn nonzero(&mut self, value: u64, keys: &[&str]) {
        if value == 0 {
            self.push(path(keys), "must not be 0");
        }
    }
    fn positive(&mut self, value: Duration, keys: &[&str]) {
        if value.is_zero() {
            self.push(path(keys), "must be longer than 0 s");
        }
    }
}

fn xmpp(config: &Config, v: &mut Checker) {
    let x = &config.xmpp;
    v.required(
        &x.server,
        &["xmpp", "server"],
        "the XMPP server's host name or address",
    );
    v.nonzero(u64::from(x.port), &["xmpp", "port"]);
    v.required(
        &x.domain,
        &["xmpp", "domain"],
        "the component domain, e.g. gw.example.com",
    );
    if !x.domain.is_empty() {
        let problem = match jid::DomainPart::new(&x.domain) {
            Err(e) => Some(format!("`{}` is not a valid XMPP domain: {e}", x.domain)),
            Ok(d) if d.as_str() != x.domain => Some(format!(
                "`{}` is not in normalized form (write `{}`)",
                x.domain,
                d.as_str()
            )),
            Ok(_) => None,
        };
        v.check(problem, &["xmpp", "domain"]);
    }
    if x.secret.is_empty() {
        v.push(
            path(&["xmpp", "secret"]),
            "required key is missing or empty: the component secret (or set JSG__XMPP__SECRET)",
        );
    }
    v.positive(x.ping_interval, &["xmpp", "ping_interval"]);
    v.positive(x.ping_timeout, &["xmpp", "ping_timeout"]);
    v.positive(
        x.reconnect_backoff_initial,
        &["xmpp", "reconnect_backoff_initial"],
    );
    if x.reconnect_backoff_initial > x.reconnect_backoff_max {
        v.push(
            path(&["xmpp", "reconnect_backoff_max"]),
            format!(
                "must not be shorter than reconnect_backoff_initial ({})",
                humantime_serde::re::humantime::format_duration(x.reconnect_backoff_initial)
            ),
        );
    }
    if let Some(node) = &x.caps_node {
        v.required(node, &["xmpp", "caps_node"], "a URI");
    }
    v.required(&x.resource, &["xmpp", "resource"], "a resource, e.g. gw");
    if !x.resource.is_empty() {
        v.check(
            jid::ResourcePart::new(&x.resource)
                .err()
                .map(|e| format!("`{}` is not a valid resource: {e}", x.resource)),
            &["xmpp", "resource"],
        );
    }
    v.required(&x.identity_name, &["xmpp", "identity_name"], "a name");
}

fn sip(config: &Config, v: &mut Checker) {
    let sip = &config.sip;
    if sip.port != 0 && sip.port == sip.tls_port {
        v.push(
            path(&["sip", "tls_port"]),
            format!("is the same as sip.port ({})", sip.port),
        );
    }
    v.required(
        &sip.user_agent,
        &["sip", "user_agent"],
        "a User-Agent value",
    );
    let base = path(&["sip", "trunks"]);
    let mut names = HashSet::new();
    for (i, t) in sip.trunks.iter().enumerate() {
        if t.name.trim().is_empty() {
            v.push(
                at(&base, i, "name"),
                "required key is missing or empty: the trunk's name",
            );
        } else if !names.insert(t.name.as_str()) {
            v.push(
                at(&base, i, "name"),
                format!("another trunk is already named `{}`", t.name),
            );
        }
        if t.host.trim().is_empty() {
            v.push(
                at(&base, i, "host"),
                "required key is missing or empty: the trunk's host name or address",
            );
        }
        if t.port == Some(0) {
            v.push(at(&base, i, "port"), "must not be 0");
        }
        if t.auth == TrunkAuth::Registration {
            if t.username.as_deref().is_none_or(str::is_empty) {
                v.push(
                    at(&base, i, "username"),
                    "required when auth = \"registration\"",
                );
            }
            if t.password.as_ref().is_none_or(|p| p.is_empty()) {
                v.push(
                    at(&base, i, "password"),
                    format!("required when auth = \"registration\" (or set JSG__SIP__TRUNKS__{i}__PASSWORD)"),
                );
            }
        }
        if t.register_expires.is_zero() {
            v.push(at(&base, i, "register_expires"), "must be longer than 0 s");
        }
    }
}

fn routing(config: &Config, v: &mut Checker) {
    let r = &config.routing;
    let trunks: HashSet<&str> = config.sip.trunks.iter().map(|t| t.name.as_str()).collect();
    let base = path(&["routing", "routes"]);
    let mut prefixes = HashSet::new();
    for (i, route) in r.routes.iter().enumerate() {
        if !prefixes.insert(route.prefix.as_str()) {
            v.push(
                at(&base, i, "prefix"),
                format!("another route already has prefix `{}`", route.prefix),
            );
        }
        if route.trunks.is_empty() {
            v.push(at(&base, i, "trunks"), "list at least one trunk name");
        }
        let trunk_base = at(&base, i, "trunks");
        for (j, name) in route.trunks.iter().enumerate() {
            if !trunks.contains(name.as_str()) {
                v.push(
                    at(&trunk_base, j, ""),
                    format!("no [[sip.trunks]] is named `{name}`"),
                );
            }
        }
    }
    let base = path(&["routing", "users"]);
    let mut jids = HashSet::new();
    let mut dids: HashMap<&str, usize> = HashMap::new();
    for (i, user) in r.users.iter().enumerate() {
        if user.jid.node().is_none() {
            v.push(
                at(&base, i, "jid"),
                format!("`{}` is a domain, not a user's bare JID", user.jid),
            );
        } else if !jids.insert(&user.jid) {
            v.push(
                at(&base, i, "jid"),
                format!("`{}` is listed twice", user.jid),
            );
        }
        let did_base = at(&base, i, "dids");
        for (j, did) in user.dids.iter().enumerate() {
            if let Some(other) = dids.insert(did.as_str(), i) {
                v.push(
                    at(&did_base, j, ""),
                    format!("{did} already rings routing.users[{other}]"),
                );
            }
        }
    }
    if let Some(plan) = &r.national_plan {
        national_plan(plan, v);
    }
}

fn national_plan(plan: &super::NationalPlan, v: &mut Checker) {
    let key = |k: &str| path(&["routing", "national_plan", k]);
    let cc = plan.country_code.as_str();
    if cc.is_empty() {
        v.push(
            key("country_code"),
            "required key is missing or empty: the country code, e.g. \"1\"",
        );
    } else if !(1..=3).contains(&cc.len()) || !cc.bytes().all(|b| b.is_ascii_digit()) {
        v.push(
            key("country_code"),
            format!("`{cc}` is not a country code: 1 to 3 digits, without `+` (E.164)"),
        );
    } else if cc.starts_with('0') {
        v.push(
            key("country_code"),
            format!("`{cc}` is not a country code: it never starts with 0 (E.164)"),
        );
    }
    let tp = plan.trunk_prefix.as_str();
    if !tp.bytes().all(|b| b.is_ascii_digit()) {
        v.push(
            key("trunk_prefix"),
            format!("`{tp}` is not a trunk prefix: digits only, e.g. \"0\" or \"1\""),
        );
    }
    match plan.national_number_length {
        Some(len) if len == 0 || cc.len() + len > 15 => v.push(
            key("national_number_length"),
            format!(
                "must be 1 to {} (E.164 numbers have at most 15 digits with the country code)",
                15 - cc.len().min(3)
            ),
        ),
        None if tp.is_empty() => v.push(
            key("trunk_prefix"),
            "set trunk_prefix or national_number_length: with neither, no number is read as national",
        ),
        _ => {}
    }
}

fn media(config: &Config, v: &mut Checker) {
    let m = &config.media;
    if m.bind_addresses.is_empty() {
        v.push(
            path(&["media", "bind_addresses"]),
            "list at least one address",
        );
    }
    if m.port_min < 1024 {
        v.push(
            path(&["media", "port_min"]),
            "must be at least 1024 (no privileged ports)",
        );
    }
    if m.port_max < m.port_min.saturating_add(1) {
        v.push(
            path(&["media", "port_max"]),
            format!(
                "the range port_min..=port_max ({}..={}) must hold at least 2 ports",
                m.port_min, m.port_max
            ),
        );
    }
    let sip_ports = [config.sip.port, config.sip.tls_port];
    if let Some(p) = sip_ports
        .iter()
        .find(|p| (m.port_min..=m.port_max).contains(p))
    {
        v.push(
            path(&["media", "port_min"]),
            format!("the media port range contains the SIP port {p}"),
        );
    }
    for (key, addr) in [
        ("public_ipv4", m.public_ipv4.map(IpAddr::V4)),
        ("public_ipv6", m.public_ipv6.map(IpAddr::V6)),
    ] {
        if let Some(addr) = addr {
            if addr.is_unspecified()
                || addr.is_multicast()
                || addr == IpAddr::from([255, 255, 255, 255])
            {
                v.push(
                    path(&["media", key]),
                    format!("{addr} cannot be announced as a media address"),
                );
            }
        }
    }
    v.positive(m.no_media_timeout, &["media", "no_media_timeout"]);
    let (lo, hi) = (Duration::from_millis(20), Duration::from_millis(200));
    if !(lo..=hi).contains(&m.jitter_buffer_max) {
        v.push(
            path(&["media", "jitter_buffer_max"]),
            format!("{:?} is outside 20ms..=200ms", m.jitter_buffer_max),
        );
    }
    if m.jitter_buffer_min.is_zero() || m.jitter_buffer_min > m.jitter_buffer_max {
        v.push(
            path(&["media", "jitter_buffer_min"]),
            format!(
                "{:?} must be above 0 and at most jitter_buffer_max ({:?})",
                m.jitter_buffer_min, m.jitter_buffer_max
            ),
        );
    }
}
