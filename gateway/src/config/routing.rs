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
    /// Default: nobody. Ignored when `allow_everyone` is `true`.
    #[serde(default)]
    pub allowed_callers: Vec<BareJid>,
    /// Lets **every** JID that can reach the component call out, whatever
    /// `allowed_callers` says: an open gateway.
    ///
    /// **Toll fraud warning**: every outbound call is paid by the trunk's account. On
    /// a server that federates (s2s) or allows in-band registration, anyone on the
    /// XMPP network can then dial premium-rate and international numbers at your
    /// expense. Only set it for a closed server whose every account you trust, and
    /// keep `blocked_prefixes` and `calls.max_calls_per_user` in place. Default
    /// `false` (issue 6: "the default is nobody, because an open gateway is a
    /// toll-fraud hole"). Feeds
    /// [`Router::allow_everyone`](crate::routing::Router::allow_everyone).
    #[serde(default)]
    pub allow_everyone: bool,
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
    /// `[routing.national_plan]`: how numbers written without `+` by a trunk are read
    /// on inbound calls (`From`, Request-URI). Default: none, such a number is read as
    /// E.164 without its `+`. Read it with [`Routing::national_plan`].
    #[serde(default)]
    pub national_plan: Option<NationalPlan>,
}

impl Routing {
    /// The `[routing.national_plan]` as [`crate::routing::Router::national_plan`]
    /// takes it; `None` when the section is absent.
    pub fn national_plan(&self) -> Option<crate::routing::NationalPlan> {
        self.national_plan
            .as_ref()
            .map(crate::routing::NationalPlan::from)
    }

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
    /// answers with a 5xx (server failure) or 408 (Request Timeout), or gives no final
    /// answer before the INVITE transaction times out
    /// ([RFC 3261 §17.1.1.2](https://www.rfc-editor.org/rfc/rfc3261#section-17.1.1.2),
    /// Timer B), issue 6. Any other final answer (486 busy, 603 decline, 404 unknown
    /// number, any 6xx) ends the call: it would be the same on every trunk. Required, at
    /// least one.
    #[serde(default)]
    pub trunks: Vec<String>,
}

/// `[routing.national_plan]`: a national numbering plan, to read national numbers
/// (without country code) that some trunks send on inbound calls into E.164
/// ([ITU-T E.164](https://www.itu.int/rec/T-REC-E.164)).
///
/// A number without `+` is national when it starts with `trunk_prefix` and the rest
/// has `national_number_length` digits (any length when unset), or when it has exactly
/// `national_number_length` digits; it then gets `country_code`. Any other number
/// without `+` is read as E.164 without its `+`. NANP:
///
/// ```toml
/// [routing.national_plan]
/// country_code = "1"
/// trunk_prefix = "1"
/// national_number_length = 10
/// ```
///
/// reads `5551234567` and `15551234567` as `+15551234567`; Germany (`"49"`, `"0"`, no
/// length) reads `030123456` as `+4930123456`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NationalPlan {
    /// The country code, 1 to 3 digits, not starting with 0 (`"1"`, `"44"`, `"49"`).
    /// A string. Required.
    #[serde(default)]
    pub country_code: String,
    /// The national (trunk) prefix dialled before a national number: `"0"` in most of
    /// Europe, `"1"` in NANP. Digits, as a string. Default `""` (none).
    #[serde(default)]
    pub trunk_prefix: String,
    /// How many digits a national significant number has, when that is fixed (10 in
    /// NANP). Count, 1 to 15 minus the length of `country_code`. Default: none
    /// (variable length; then `trunk_prefix` must be set).
    #[serde(default)]
    pub national_number_length: Option<usize>,
}

impl From<&NationalPlan> for crate::routing::NationalPlan {
    fn from(plan: &NationalPlan) -> Self {
        Self {
            country_code: plan.country_code.clone(),
            trunk_prefix: plan.trunk_prefix.clone(),
            national_len: plan.national_number_length,
        }
    }
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
