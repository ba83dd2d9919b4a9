//! The gateway configuration file (`deploy/gateway.toml`, documented key by key in
//! `docs/configuration.md`).
//!
//! One TOML file, read by [`Config::load`], with environment overrides: a variable
//! `JSG__SECTION__KEY` replaces `key` in `[section]` (`JSG__XMPP__SECRET` sets
//! `xmpp.secret`; a number selects an element of an array of tables, as in
//! `JSG__SIP__TRUNKS__0__PASSWORD`). A value from the environment is a string unless the
//! key wants another type, in which case it is read as a TOML value (`5348`, `true`,
//! `["a", "b"]`).
//!
//! The file is strict (STYLE.md R9): every struct denies unknown keys, and loading
//! reports **every** problem it finds, not only the first: unknown keys, values of the
//! wrong type, then the semantic checks (E.164 numbers, JIDs, trunk names used by
//! routes, port ranges). Each [`Problem`] names the file, the line when known, the key
//! with its section path (`xmpp.port`, `sip.trunks[1].transport`) and, for a value from
//! the environment, the variable.
//!
//! ```no_run
//! let config = gateway::config::Config::load("/etc/jingle-sip-gateway/gateway.toml", std::env::vars())?;
//! println!("component {} via {}:{}", config.xmpp.domain, config.xmpp.server, config.xmpp.port);
//! # Ok::<(), gateway::config::Error>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod load;
mod media;
mod routing;
mod sip;
mod types;
mod validate;
mod xmpp;

pub use media::Media;
pub use routing::{NationalPlan, Route, Routing, User};
pub use sip::{NumberFormat, Sip, Transport, Trunk, TrunkAuth};
pub use types::{Network, NumberPrefix, Secret, E164};
pub use xmpp::{Calls, EarlyMedia, Log, Xmpp};

/// Where the binary looks for its configuration file when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/jingle-sip-gateway/gateway.toml";

/// Prefix of the environment variables that override keys of the file; the parts of
/// a variable's name are separated by [`ENV_SEPARATOR`]: `JSG__XMPP__SECRET`.
pub const ENV_PREFIX: &str = "JSG";

/// Separator between the parts of an overriding environment variable's name.
pub const ENV_SEPARATOR: &str = "__";

/// The whole configuration file. Every section may be left out, but `[xmpp]` needs at
/// least `domain` and `secret`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[xmpp]`: the component connection (XEP-0114) and how the gateway presents itself.
    #[serde(default)]
    pub xmpp: Xmpp,
    /// `[log]`: the log filter.
    #[serde(default)]
    pub log: Log,
    /// `[calls]`: call limits and timers.
    #[serde(default)]
    pub calls: Calls,
    /// `[sip]`: the SIP user agent and its `[[sip.trunks]]`.
    #[serde(default)]
    pub sip: Sip,
    /// `[routing]`: who may call out, routes to trunks, caller IDs and DIDs.
    #[serde(default)]
    pub routing: Routing,
    /// `[media]`: media ports and announced addresses.
    #[serde(default)]
    pub media: Media,
}

impl Config {
    /// Reads, overrides from `env` and checks the configuration file at `path`.
    ///
    /// `env` is the environment to take `JSG__…` overrides from: pass
    /// `std::env::vars()` in the binary, an explicit list in tests. Variables without
    /// the prefix are ignored.
    ///
    /// # Errors
    ///
    /// - [`Error::Read`] when the file cannot be read;
    /// - [`Error::Invalid`] with every problem found (syntax, unknown keys, wrong types,
    ///   semantic checks).
    pub fn load(
        path: impl AsRef<Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path, env)
    }

    /// Like [`Config::load`], with the file's text given; `file` is only used to name it
    /// in problems.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] with every problem found.
    pub fn parse(
        text: &str,
        file: impl AsRef<Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, Error> {
        load::parse(text, file.as_ref(), env).map_err(Error::Invalid)
    }

    /// A one-line summary for `--check-config`, naming no secret.
    ///
    /// When `routing.allow_everyone` is set it says so instead of counting allowed
    /// callers, so the open gateway is visible in `--check-config` output.
    pub fn summary(&self) -> String {
        let callers = if self.routing.allow_everyone {
            "EVERY JID may call out (routing.allow_everyone)".to_owned()
        } else {
            format!("{} allowed caller(s)", self.routing.allowed_callers.len())
        };
        format!(
            "component {} via {}:{}; {} trunk(s), {} route(s), {} user(s), {callers}; media ports {}-{}",
            self.xmpp.domain,
            self.xmpp.server,
            self.xmpp.port,
            self.sip.trunks.len(),
            self.routing.routes.len(),
            self.routing.users.len(),
            self.media.port_min,
            self.media.port_max,
        )
    }

    /// The bridge's codec policy, from `[media]` (see [`Media::codec_policy`]).
    pub fn codec_policy(&self) -> crate::bridge::CodecPolicy {
        self.media.codec_policy()
    }

    /// The gateway's concurrent-call counter, from `[calls]` (see
    /// [`Calls::call_slots`]).
    pub fn call_slots(&self) -> crate::routing::CallSlots {
        self.calls.call_slots()
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read (missing, no permission).
    #[error("cannot read configuration file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The file (with its environment overrides) has one or more problems.
    #[error("{0}")]
    Invalid(Problems),
}

/// Every problem found in one configuration file; never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problems {
    /// The file.
    pub file: PathBuf,
    /// The problems, ordered by line (problems without a line last).
    pub problems: Vec<Problem>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration file {} ({} problem{})",
            self.file.display(),
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// One problem of a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// 1-based line in the file, when the problem is at a key written in the file.
    pub line: Option<usize>,
    /// The key with its section path, e.g. `xmpp.port` or `sip.trunks[1].transport`;
    /// empty for a problem of the whole file (a TOML syntax error).
    pub key: String,
    /// The environment variable that set the value, when it came from the environment.
    pub env_var: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if !self.key.is_empty() {
            f.write_str(&self.key)?;
            if let Some(var) = &self.env_var {
                write!(f, " (from environment variable {var})")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}
