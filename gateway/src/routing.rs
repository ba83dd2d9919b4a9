//! Call authorization and number routing (issue 6 "Routing config", INTEROP.md E.2/E.3):
//! who may call out, with which caller ID, through which trunks, which user a DID rings,
//! and how many calls may run at once.
//!
//! Everything here is pure: a [`Router`] is built once from the configuration and asked
//! per call; [`CallSlots`] counts calls in progress with an RAII [`SlotGuard`]. Every refusal
//! is a [`Denied`] that knows its SIP response ([`Denied::sip_rejection`]) and its Jingle
//! / JMI `<reason/>` ([`Denied::jingle_reason`],
//! [XEP-0353 §3.4](https://xmpp.org/extensions/xep-0353.html#reject)).
//!
//! ```
//! use gateway::config::Config;
//! use gateway::routing::Router;
//!
//! let config = Config::parse(
//!     r#"
//!     [xmpp]
//!     domain = "gw.example.com"
//!     secret = "s3cr3t"
//!     [[sip.trunks]]
//!     name = "carrier"
//!     host = "sip.example.net"
//!     [routing]
//!     allowed_callers = ["example.org"]
//!     [[routing.routes]]
//!     prefix = "+1"
//!     trunks = ["carrier"]
//!     "#,
//!     "gateway.toml",
//!     Vec::new(),
//! )?;
//! let router = Router::from_config(&config);
//! let alice = "alice@example.org".parse().unwrap();
//! router.authorize_outbound(&alice)?;
//! assert_eq!(router.route("+15551234567")?, ["carrier"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;

use jid::BareJid;

use crate::config::{Config, NumberFormat, NumberPrefix, Route, Routing, E164};

mod denied;
mod number;
mod slots;
#[cfg(test)]
mod tests;

pub use denied::{Denied, LimitReached, SipRejection, RETRY_AFTER_BUSY, RETRY_AFTER_DRAINING};
pub use number::NationalPlan;
pub use slots::{CallSlots, SlotGuard};

/// How one trunk writes numbers, for [`Router::normalize_inbound`] and
/// [`Router::outbound_user_part`] (from `[[sip.trunks]]` `number_format` and `dial_prefix`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrunkNumbering {
    /// `e164` (`+15551234567`) or `e164-no-plus` (`15551234567`). Default `e164`.
    pub format: NumberFormat,
    /// Text put before the number in the Request-URI (a carrier's technical prefix);
    /// stripped from inbound numbers that start with it. Default: empty.
    pub dial_prefix: String,
}

/// Who may call out, where numbers go, and which user a DID rings (INTEROP.md E.2, E.3).
///
/// Built with [`Router::from_config`] (or [`Router::new`] from the sections) and then
/// only read, so it can be shared as `Arc<Router>`.
#[derive(Clone, Debug)]
pub struct Router {
    routing: Routing,
    allow_everyone: bool,
    trunks: HashMap<String, TrunkNumbering>,
    national: Option<NationalPlan>,
}

impl Router {
    /// A router from the `[routing]` section and the `[[sip.trunks]]` (their names,
    /// `number_format` and `dial_prefix`). Nobody may call out unless listed in
    /// `routing.allowed_callers` (see [`Router::allow_everyone`]); numbers without `+`
    /// are read as E.164 without the `+` (see [`Router::national_plan`]).
    pub fn new(routing: &Routing, trunks: &[crate::config::Trunk]) -> Self {
        Self {
            routing: routing.clone(),
            allow_everyone: false,
            trunks: trunks
                .iter()
                .map(|t| {
                    (
                        t.name.clone(),
                        TrunkNumbering {
                            format: t.number_format,
                            dial_prefix: t.dial_prefix.clone(),
                        },
                    )
                })
                .collect(),
            national: None,
        }
    }

    /// A router from the whole configuration: [`Router::new`] with `config.routing` and
    /// `config.sip.trunks`, plus `routing.allow_everyone` and `[routing.national_plan]`.
    pub fn from_config(config: &Config) -> Self {
        let mut router = Self::new(&config.routing, &config.sip.trunks);
        router
            .allow_everyone(config.routing.allow_everyone)
            .national_plan(config.routing.national_plan());
        router
    }

    /// Lets every JID call out (an open gateway: only for closed XMPP servers, since it is
    /// a toll-fraud hole otherwise). Default `false`: only `routing.allowed_callers`.
    pub fn allow_everyone(&mut self, allow: bool) -> &mut Self {
        self.allow_everyone = allow;
        self
    }

    /// How national numbers from trunks are read ([`Router::normalize_inbound`]). Default:
    /// none (a number without `+` is E.164 without its `+`).
    pub fn national_plan(&mut self, plan: Option<NationalPlan>) -> &mut Self {
        self.national = plan;
        self
    }

    /// Whether `caller` may place outbound calls: listed in `routing.allowed_callers` by
    /// bare JID or by domain, or everyone is allowed ([`Router::allow_everyone`]).
    ///
    /// # Errors
    ///
    /// [`Denied::CallerNotAllowed`]: reject the JMI propose (or terminate the session)
    /// with [`Denied::jingle_reason`], and send no INVITE.
    pub fn authorize_outbound(&self, caller: &BareJid) -> Result<(), Denied> {
        if self.allow_everyone || self.routing.may_call_out(caller) {
            Ok(())
        } else {
            Err(Denied::CallerNotAllowed)
        }
    }

    /// The caller ID (E.164) `caller` presents on outbound calls: its
    /// `[[routing.users]]` `caller_id`, else `routing.default_caller_id`; `None` means an
    /// anonymous call ([RFC 3325](https://www.rfc-editor.org/rfc/rfc3325)).
    pub fn caller_id_for(&self, caller: &BareJid) -> Option<&E164> {
        self.routing.caller_id_for(caller)
    }

    /// The trunks to try for `number`, in failover order: those of the route with the
    /// longest matching E.164 prefix (the first listed among equal prefixes).
    ///
    /// `number` is the number the user called: the localpart of the number JID, in
    /// E.164 (`+15551234567`).
    ///
    /// # Errors
    ///
    /// - [`Denied::InvalidNumber`] when `number` is not E.164;
    /// - [`Denied::Blocked`] when it starts with a `routing.blocked_prefixes` entry
    ///   (checked before the routes);
    /// - [`Denied::NoRoute`] when no route matches.
    pub fn route(&self, number: &str) -> Result<Vec<String>, Denied> {
        let e164: E164 = number
            .parse()
            .map_err(|why: String| Denied::InvalidNumber {
                number: number.to_owned(),
                why,
            })?;
        if let Some(prefix) = self.blocked_prefix(&e164) {
            return Err(Denied::Blocked {
                prefix: prefix.clone(),
            });
        }
        let route: Option<&Route> = self.routing.route_for(&e164);
        let trunks = route.map(|r| r.trunks.clone()).unwrap_or_default();
        if trunks.is_empty() {
            return Err(Denied::NoRoute {
                number: e164.as_str().to_owned(),
            });
        }
        Ok(trunks)
    }

    /// The blocked prefix `number` starts with, if any (the longest one).
    pub fn blocked_prefix(&self, number: &E164) -> Option<&NumberPrefix> {
        self.routing
            .blocked_prefixes
            .iter()
            .filter(|p| p.matches(number))
            .max_by_key(|p| p.len())
    }

    /// The user an inbound call to `did` rings (a user may have several DIDs); `None`
    /// for an unknown DID, which the caller answers with 404 ([`Denied::UnknownDid`]).
    pub fn did_to_jid(&self, did: &E164) -> Option<BareJid> {
        self.routing.user_for_did(did).cloned()
    }

    /// Reads a number as `trunk` wrote it (Request-URI or `To`/`From` user part) into
    /// E.164: strips the trunk's `dial_prefix`, a `tel:`/`sip:` scheme, visual separators
    /// (`-`, `.`, spaces, parentheses, [RFC 3966 §5.1.1](https://www.rfc-editor.org/rfc/rfc3966#section-5.1.1)),
    /// then: `+…` is E.164; `00…` (and `011…` in NANP) is international; with a
    /// [`NationalPlan`], a national number gets the country code; anything else is
    /// E.164 without its `+` (the `e164-no-plus` format).
    ///
    /// An unknown `trunk` name uses the default numbering (`e164`, no prefix).
    ///
    /// # Errors
    ///
    /// [`Denied::InvalidNumber`] when the result is not E.164 (answer 484 or 404).
    pub fn normalize_inbound(&self, trunk: &str, user_part: &str) -> Result<E164, Denied> {
        let numbering = self.trunks.get(trunk).cloned().unwrap_or_default();
        number::normalize(user_part, &numbering, self.national.as_ref())
    }

    /// The Request-URI user part for `number` on `trunk`: its `dial_prefix`, then the
    /// number in the trunk's format (`+15551234567` or `15551234567`).
    pub fn outbound_user_part(&self, trunk: &str, number: &E164) -> String {
        let numbering = self.trunks.get(trunk).cloned().unwrap_or_default();
        let n = match numbering.format {
            NumberFormat::E164NoPlus => number.digits(),
            _ => number.as_str(),
        };
        format!("{}{n}", numbering.dial_prefix)
    }
}
