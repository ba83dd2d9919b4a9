//! The `[routing]` section: who may call out, through which trunk, and which numbers
//! ring whom.

use jid::BareJid;
use serde::Deserialize;

use super::types::{NumberPrefix, E164};

/// `[routing]`: authorization and number routing.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    /// Who may call out: bare JIDs (`alice@example.org`) or domains (`example.org`,
    /// meaning every user of that domain). A JMI propose from anyone else is rejected.
    /// Default: nobody.
    #[serde(default)]
    pub allowed_callers: Vec<BareJid>,
    /// Numbers that are never dialled, by prefix (e.g. `+1900` premium numbers). They
    /// are checked before the routes. Default: none.
    #[serde(default)]
    pub blocked_prefixes: Vec<NumberPrefix>,
    /// Caller ID sent for an outbound call by a user without a `caller_id` of their
    /// own. Default: none (the call goes out anonymous,
    /// [RFC 3325](https://www.rfc-editor.org/rfc/rfc3325)).
    #[serde(default)]
    pub default_caller_id: Option<E164>,
    /// Outbound routes (`[[routing.routes]]`): the route with the longest matching
    /// prefix is used. Default: none (no number can be called).
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Users (`[[routing.users]]`): their caller ID and the numbers (DIDs) that ring
    /// them. Default: none.
    #[serde(default)]
    pub users: Vec<User>,
}

impl Routing {
    /// Whether `caller` may place outbound calls: its bare JID or its domain is listed
    /// in `allowed_callers`.
    pub fn may_call_out(&self, caller: &BareJid) -> bool {
        self.allowed_callers
            .iter()
            .any(|allowed| match allowed.node() {
                Some(_) => allowed == caller,
                None => allowed.domain() == caller.domain(),
            })
    }

    /// Whether `number` starts with one of `blocked_prefixes`.
    pub fn is_blocked(&self, number: &E164) -> bool {
        self.blocked_prefixes.iter().any(|p| p.matches(number))
    }

    /// The route for `number`: the one with the longest matching prefix (the first one
    /// listed among equally long prefixes), or `None` when none matches.
    pub fn route_for(&self, number: &E164) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|r| r.prefix.matches(number))
            .fold(None, |best: Option<&Route>, r| match best {
                Some(b) if b.prefix.len() >= r.prefix.len() => Some(b),
                _ => Some(r),
            })
    }

    /// The caller ID for calls by `caller`: its user entry's `caller_id`, else
    /// `default_caller_id`.
    pub fn caller_id_for(&self, caller: &BareJid) -> Option<&E164> {
        self.users
            .iter()
            .find(|u| &u.jid == caller)
            .and_then(|u| u.caller_id.as_ref())
            .or(self.default_caller_id.as_ref())
    }

    /// The user whom a call to `did` rings, if any.
    pub fn user_for_did(&self, did: &E164) -> Option<&BareJid> {
        self.users
            .iter()
            .find(|u| u.dids.contains(did))
            .map(|u| &u.jid)
    }
}

/// One `[[routing.routes]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The numbers this route serves, by E.164 prefix: `+` alone for every number,
    /// `+1` for NANP, `+44` for the UK. Required.
    pub prefix: NumberPrefix,
    /// Names of `[[sip.trunks]]` to try, in order: the next one is tried when a trunk
    /// fails with a 5xx or 6xx other than busy/decline, or does not answer. Required, at
    /// least one.
    #[serde(default)]
    pub trunks: Vec<String>,
}

/// One `[[routing.users]]` entry: an XMPP user the gateway knows.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The user's bare JID, e.g. `alice@example.org`. Required.
    pub jid: BareJid,
    /// The number shown to the called party when this user calls out (SIP `From` and
    /// `P-Asserted-Identity`). Must be a number the trunk lets you use. Default:
    /// `routing.default_caller_id`.
    #[serde(default)]
    pub caller_id: Option<E164>,
    /// Numbers (DIDs) whose inbound calls ring this user, in E.164. Default: none.
    #[serde(default)]
    pub dids: Vec<E164>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing() -> Routing {
        toml::from_str(
            r#"
            allowed_callers = ["alice@example.org", "staff.example.org"]
            blocked_prefixes = ["+1900"]
            default_caller_id = "+15550000000"
            [[routes]]
            prefix = "+"
            trunks = ["a"]
            [[routes]]
            prefix = "+1"
            trunks = ["b", "a"]
            [[users]]
            jid = "alice@example.org"
            caller_id = "+15551230001"
            dids = ["+15551230001", "+15551230002"]
            "#,
        )
        .unwrap()
    }

    #[test]
    fn callers_by_jid_or_domain() {
        let r = routing();
        assert!(r.may_call_out(&"alice@example.org".parse().unwrap()));
        assert!(!r.may_call_out(&"bob@example.org".parse().unwrap()));
        assert!(r.may_call_out(&"bob@staff.example.org".parse().unwrap()));
        assert!(!Routing::default().may_call_out(&"alice@example.org".parse().unwrap()));
    }

    #[test]
    fn longest_prefix_wins() {
        let r = routing();
        assert_eq!(
            r.route_for(&"+15551234567".parse().unwrap())
                .unwrap()
                .trunks,
            ["b", "a"]
        );
        assert_eq!(
            r.route_for(&"+445551234567".parse().unwrap())
                .unwrap()
                .trunks,
            ["a"]
        );
        assert!(r.is_blocked(&"+19005550100".parse().unwrap()));
    }

    #[test]
    fn caller_ids_and_dids() {
        let r = routing();
        let alice: BareJid = "alice@example.org".parse().unwrap();
        assert_eq!(r.caller_id_for(&alice).unwrap().as_str(), "+15551230001");
        let bob: BareJid = "bob@example.org".parse().unwrap();
        assert_eq!(r.caller_id_for(&bob).unwrap().as_str(), "+15550000000");
        assert_eq!(
            r.user_for_did(&"+15551230002".parse().unwrap()),
            Some(&alice)
        );
        assert_eq!(r.user_for_did(&"+15551230003".parse().unwrap()), None);
    }
}
