//! ejabberd (Debian 23.01), the second XMPP server of the test bed, with our
//! component's `ejabberd_service` listener.
//!
//! The server runs as root straight from `erl` (not through `ejabberdctl`, which
//! switches to the `ejabberd` user and uses the system's spool and log directories)
//! with its own config, Mnesia spool and log under the test's scratch directory. Its
//! Erlang node has its own name and a random cookie, and its distribution listens on
//! a fixed free port on 127.0.0.1 (`-erl_epmd_port PORT -start_epmd false`): no `epmd`
//! is started or needed, so parallel instances cannot collide through it and nothing
//! outlives the test. The admin commands (`register`, `add_rosteritem`) go through
//! `ejabberd_ctl` from a short-lived hidden node that dials that port directly
//! (`-dist_listen false`), which is what `ejabberdctl` does when `ERL_DIST_PORT` is set.

use std::collections::hash_map::RandomState;
use std::ffi::OsString;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::ports::free_port;
use crate::process::{run_bounded, Process, ProcessBuilder};
use crate::{Error, Result, Scratch, XmppServer};

/// How long one `ejabberd_ctl` command may take (an `erl` start plus an RPC).
const CTL_LIMIT: Duration = Duration::from_secs(60);

/// The log line ejabberd 23.01 writes (at `info`) when a component completed the
/// XEP-0114 handshake (`ejabberd_service.erl`).
const COMPONENT_ACCEPTED: &str = "Accepted external component";

/// The log line ejabberd 23.01 writes (at `info`, `ejabberd_app`) once every module is
/// loaded: "ejabberd 23.01-1 is started in the node NODE in 0.93s". Its listeners bind
/// their ports earlier, while the Mnesia tables (accounts among them) are still being
/// created.
const STARTED: &str = "is started in the node";

/// Settings of an [`Ejabberd`] instance; [`Default`] gives the test bed's usual ones.
#[derive(Debug, Clone)]
pub struct EjabberdConfig {
    /// The virtual host users live on; default `localhost`.
    pub domain: String,
    /// The component (gateway) domain; default `gw.localhost`.
    pub component: String,
    /// The component's XEP-0114 shared secret; default `testbed-secret`.
    pub component_secret: String,
    /// Wall-clock bound of each server run; default 180 s.
    pub time_limit: Duration,
    /// How long to wait for a start (the "is started" log line and the listening
    /// ports); default 90 s. Measured on 2 cores: about 1 to 1.5 s idle, 13.6 s with two
    /// busy loops beside the test suite, and over 30 s at times under that load.
    pub start_timeout: Duration,
    /// The `ejabberd_service` item of `listen` as YAML text (from its `  -` line, indented
    /// as in the file), to run an operator's listener (e.g. the one of
    /// `deploy/ejabberd.yml.snippet`) instead of the built-in one. It must listen on
    /// 127.0.0.1 at [`Ejabberd::component_port`] (chosen at start: use
    /// [`Ejabberd::start_with_listener`]) for `component` with `component_secret`.
    /// Default `None` (the built-in listener).
    pub component_listener: Option<String>,
    /// Load `mod_mam` (XEP-0313) with `default: always` and `assume_mam_usage: true`,
    /// as ejabberd's upstream example config does and most servers of Conversations
    /// users do; default false, as Debian's packaged config.
    pub mam: bool,
}

impl Default for EjabberdConfig {
    fn default() -> Self {
        Self {
            domain: "localhost".into(),
            component: "gw.localhost".into(),
            component_secret: "testbed-secret".into(),
            time_limit: Duration::from_secs(180),
            start_timeout: Duration::from_secs(90),
            component_listener: None,
            mam: false,
        }
    }
}

/// An ejabberd server with its own config, spool, log, Erlang node and free loopback
/// ports.
///
/// It listens on 127.0.0.1 only: `ejabberd_c2s` (no TLS: no certificate is configured,
/// so STARTTLS is not offered), `ejabberd_http` with `/ws` (`ejabberd_http_ws`,
/// RFC 7395) and `/bosh` (`mod_bosh`, XEP-0206), and `ejabberd_service` for the
/// component. No s2s listener and `s2s_access: none`; shapers are `none` everywhere
/// (no rate limit), `mod_fail2ban` and `mod_pres_counter` are not loaded. The modules
/// are those of Debian's default config that matter to a calling client
/// (`mod_carboncopy`, `mod_roster`, `mod_disco`, `mod_caps`, `mod_offline`,
/// `mod_stream_mgmt`, `mod_ping`, …), without `mod_mam`, which Debian's default
/// config does not load either ([`EjabberdConfig::mam`] adds it). It can be stopped or
/// killed and started again on the same ports and data. Dropping it kills it by pid
/// (its process group).
#[derive(Debug)]
pub struct Ejabberd {
    config: EjabberdConfig,
    scratch: Scratch,
    dir: PathBuf,
    config_path: PathBuf,
    node: String,
    cookie: String,
    c2s_port: u16,
    component_port: u16,
    http_port: u16,
    dist_port: u16,
    ebin_root: PathBuf,
    process: Option<Process>,
    runs: u32,
    last_start: Duration,
}

impl Ejabberd {
    /// Writes the config, then starts the server and waits until it is started (its
    /// log says so) and its ports accept connections.
    ///
    /// # Errors
    /// [`Error::Missing`] if ejabberd is not installed, [`Error::Io`] on file errors,
    /// [`Error::Exited`] or [`Error::TimedOut`] if the server does not come up.
    pub fn start(scratch: &Scratch, config: EjabberdConfig) -> Result<Self> {
        Self::start_with_listener(scratch, config, |_| None)
    }

    /// As [`Ejabberd::start`], the component listener written by `listener`, which gets
    /// the free port chosen for it and returns the `ejabberd_service` item of `listen`
    /// (see [`EjabberdConfig::component_listener`]; `None` keeps the config's).
    ///
    /// # Errors
    /// As [`Ejabberd::start`].
    pub fn start_with_listener(
        scratch: &Scratch,
        mut config: EjabberdConfig,
        listener: impl FnOnce(u16) -> Option<String>,
    ) -> Result<Self> {
        let ebin_root = erlang_libs()?;
        let dir = scratch.subdir("ejabberd")?;
        for d in ["spool", "log"] {
            let d = dir.join(d);
            std::fs::create_dir_all(&d)
                .map_err(|e| Error::io(format!("mkdir {}", d.display()), e))?;
        }
        let dist_port = free_port();
        let component_port = free_port();
        if let Some(yaml) = listener(component_port) {
            config.component_listener = Some(yaml);
        }
        let mut server = Self {
            config_path: dir.join("ejabberd.yml"),
            node: format!("ejabberd-{dist_port}@localhost"),
            cookie: random_cookie(),
            c2s_port: free_port(),
            component_port,
            http_port: free_port(),
            dist_port,
            ebin_root,
            dir,
            config,
            scratch: scratch.clone(),
            process: None,
            runs: 0,
            last_start: Duration::ZERO,
        };
        server.write_config()?;
        server.restart()?;
        Ok(server)
    }

    /// Starts with [`EjabberdConfig::default`].
    ///
    /// # Errors
    /// As [`Ejabberd::start`].
    pub fn start_default(scratch: &Scratch) -> Result<Self> {
        Self::start(scratch, EjabberdConfig::default())
    }

    fn write_config(&self) -> Result<()> {
        let c = &self.config;
        let text = format!(
            r#"# written by the jingle-sip-gateway test bed (tests/src/ejabberd.rs), ejabberd 23.01
hosts:
  - {domain}
loglevel: info
log_rotate_count: 0
hide_sensitive_log_data: false
auth_method: internal
auth_password_format: scram
disable_sasl_mechanisms:
  - "digest-md5"
  - "X-OAUTH2"
s2s_access: none
listen:
  -
    port: {c2s}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    shaper: none
    access: c2s
    starttls_required: false
  -
    port: {http}
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /ws: ejabberd_http_ws
      /bosh: mod_bosh
{component_listener}
acl:
  local:
    user_regexp: ""
  loopback:
    ip:
      - 127.0.0.0/8
      - ::1/128
access_rules:
  local:
    allow: local
  c2s:
    allow: all
shaper_rules:
  max_user_sessions: 10
  max_user_offline_messages: 100
  c2s_shaper: none
  s2s_shaper: none
modules:
  mod_admin_extra: {{}}
  mod_blocking: {{}}
  mod_bosh: {{}}
  mod_caps: {{}}
  mod_carboncopy: {{}}
  mod_client_state: {{}}
  mod_disco: {{}}
  mod_last: {{}}
{mam}
  mod_offline:
    access_max_user_messages: max_user_offline_messages
  mod_ping: {{}}
  mod_privacy: {{}}
  mod_roster:
    versioning: true
  mod_stream_mgmt:
    resend_on_timeout: if_offline
  mod_version: {{}}
"#,
            domain = yaml_string(&c.domain),
            c2s = self.c2s_port,
            http = self.http_port,
            mam = if c.mam {
                "  mod_mam:\n    assume_mam_usage: true\n    default: always"
            } else {
                ""
            },
            component_listener = c.component_listener.clone().unwrap_or_else(|| {
                format!(
                    "  -\n    port: {}\n    ip: \"127.0.0.1\"\n    module: ejabberd_service\n    \
                     access: all\n    shaper: none\n    hosts:\n      {}:\n        password: {}",
                    self.component_port,
                    yaml_string(&c.component),
                    yaml_string(&c.component_secret)
                )
            }),
        );
        std::fs::write(&self.config_path, text)
            .map_err(|e| Error::io(format!("write {}", self.config_path.display()), e))
    }

    /// The environment every `erl` of this instance runs with.
    fn erl_env(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("ERL_LIBS", self.ebin_root.clone().into_os_string()),
            ("HOME", self.dir.clone().into_os_string()),
            (
                "EJABBERD_CONFIG_PATH",
                self.config_path.clone().into_os_string(),
            ),
            (
                "EJABBERD_LOG_PATH",
                self.dir.join("log").join("ejabberd.log").into_os_string(),
            ),
            (
                "EJABBERD_PID_PATH",
                self.dir.join("ejabberd.pid").into_os_string(),
            ),
            (
                "ERL_CRASH_DUMP",
                self.dir.join("log").join("erl_crash.dump").into_os_string(),
            ),
            ("ERL_CRASH_DUMP_BYTES", "0".into()),
        ]
    }

    /// Starts the server (again) on the same ports, node and spool, after
    /// [`Ejabberd::kill`] or a crash; kills a running instance first. Waits until it
    /// logged that it is started and every port listens, and records how long that
    /// took ([`Ejabberd::last_start`]).
    ///
    /// # Errors
    /// [`Error::Exited`] or [`Error::TimedOut`] if it does not come up.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.runs += 1;
        let spool = format!("\"{}\"", self.dir.join("spool").display());
        let mut builder = ProcessBuilder::new(format!("ejabberd-run{}", self.runs), "erl")
            .args(["-sname", &self.node, "-setcookie", &self.cookie])
            .args([
                "-erl_epmd_port",
                &self.dist_port.to_string(),
                "-start_epmd",
                "false",
            ])
            .args(["-kernel", "inet_dist_use_interface", "{127,0,0,1}"])
            .args(["-noinput", "-mnesia", "dir", &spool, "-s", "ejabberd"])
            .time_limit(self.config.time_limit)
            .current_dir(&self.dir);
        for (k, v) in self.erl_env() {
            builder = builder.env(k, v);
        }
        let starts_before = self.log_count(STARTED);
        let started = Instant::now();
        self.process = Some(builder.spawn(&self.dir)?);
        self.wait_ready(starts_before)?;
        self.last_start = started.elapsed();
        tracing::debug!(node = %self.node, took = ?self.last_start, "ejabberd listening");
        Ok(())
    }

    /// How many lines of ejabberd's log (all runs) contain `needle`.
    fn log_count(&self, needle: &str) -> usize {
        std::fs::read_to_string(self.log_path())
            .map(|log| log.matches(needle).count())
            .unwrap_or(0)
    }

    /// Waits for this run's "is started" log line (more than `starts_before` of them)
    /// and for every port to be listening.
    fn wait_ready(&mut self, starts_before: usize) -> Result<()> {
        let deadline = Instant::now() + self.config.start_timeout;
        let ports = [self.c2s_port, self.component_port, self.http_port];
        loop {
            let process = self.process.as_mut().ok_or_else(|| Error::Peer {
                peer: "ejabberd".into(),
                message: "not started".into(),
            })?;
            process.check_running()?;
            // The kernel's socket table, not a probe connection (which ejabberd would
            // log as a component or client that came and went).
            if self.log_count(STARTED) > starts_before
                && ports.iter().all(|&p| crate::ports::is_listening(p))
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::TimedOut {
                    what: format!("ejabberd to start and listen on {ports:?}"),
                    after: self.config.start_timeout,
                    context: crate::process::log_tail(&self.log_path(), 30),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// How long the last start took, from spawning `erl` until ejabberd logged that it
    /// is started and the c2s, HTTP and component ports were all listening.
    #[must_use]
    pub fn last_start(&self) -> Duration {
        self.last_start
    }

    /// Runs one `ejabberd_ctl` command (`ejabberdctl CMD ARGS…`) against this node and
    /// returns its output.
    ///
    /// # Errors
    /// [`Error::Peer`] if the command fails (exit status ≠ 0, e.g. a user that exists)
    /// or takes longer than 20 s.
    pub fn ctl(&self, args: &[&str]) -> Result<String> {
        static CTL: AtomicU32 = AtomicU32::new(0);
        let n = CTL.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "ctl-{}-{}-{n}@localhost",
            self.dist_port,
            std::process::id()
        );
        let mut argv: Vec<OsString> = self
            .erl_env()
            .into_iter()
            .map(|(k, v)| {
                let mut kv = OsString::from(k);
                kv.push("=");
                kv.push(v);
                kv
            })
            .collect();
        argv.push("erl".into());
        for a in [
            "-sname",
            &name,
            "-hidden",
            "-noinput",
            "-setcookie",
            &self.cookie,
            "-erl_epmd_port",
            &self.dist_port.to_string(),
            "-start_epmd",
            "false",
            "-dist_listen",
            "false",
            "-s",
            "ejabberd_ctl",
            "-extra",
            &self.node,
        ] {
            argv.push(a.into());
        }
        argv.extend(args.iter().map(OsString::from));
        let out = run_bounded("env", &argv, CTL_LIMIT).map_err(|e| Error::Peer {
            peer: "ejabberd_ctl".into(),
            message: format!("{args:?}: {e}"),
        })?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Creates an account with `ejabberd_ctl register USER DOMAIN PASSWORD`.
    ///
    /// # Errors
    /// As [`Ejabberd::ctl`] (a user that exists already is an error).
    pub fn register(&self, user: &str, password: &str) -> Result<()> {
        self.ctl(&["register", user, &self.config.domain, password])
            .map(drop)
    }

    /// Puts `contact` (a JID) into `user`'s roster with `subscription` (`both`, `to`,
    /// `from`, `none`) through `mod_admin_extra`'s `add_rosteritem`. Works while the
    /// user is online too (ejabberd pushes the item).
    ///
    /// # Errors
    /// As [`Ejabberd::ctl`].
    pub fn set_roster_item(&self, user: &str, contact: &str, subscription: &str) -> Result<()> {
        let (local, host) = contact.split_once('@').unwrap_or(("", contact));
        let nick = if local.is_empty() { host } else { local };
        self.ctl(&[
            "add_rosteritem",
            user,
            &self.config.domain,
            local,
            host,
            nick,
            "",
            subscription,
        ])
        .map(drop)
    }

    /// Registers `a` and `b` (with their passwords) and makes them mutual contacts
    /// (subscription `both`).
    ///
    /// # Errors
    /// As [`Ejabberd::register`] and [`Ejabberd::set_roster_item`].
    pub fn add_contacts(&self, a: (&str, &str), b: (&str, &str)) -> Result<()> {
        self.register(a.0, a.1)?;
        self.register(b.0, b.1)?;
        self.set_roster_item(a.0, &self.jid(b.0), "both")?;
        self.set_roster_item(b.0, &self.jid(a.0), "both")
    }

    /// How many times a component has completed the XEP-0114 handshake with this server
    /// (all runs), from the log line "Accepted external component … authentication".
    #[must_use]
    pub fn component_authentications(&self) -> usize {
        crate::server::log_count(&self.log_path(), COMPONENT_ACCEPTED)
    }

    /// Waits until more than `seen` component handshakes have succeeded (see
    /// [`Ejabberd::component_authentications`]) and returns the new count.
    ///
    /// # Errors
    /// [`Error::TimedOut`] with the log tail; [`Error::Exited`] if ejabberd died.
    pub fn wait_component_authenticated(
        &mut self,
        seen: usize,
        timeout: Duration,
    ) -> Result<usize> {
        let log = self.log_path();
        crate::server::wait_log_count(
            "ejabberd",
            &log,
            COMPONENT_ACCEPTED,
            self.process.as_mut(),
            seen,
            timeout,
        )
    }

    /// Kills the server's process group (`timeout`, `erl`, `beam.smp` and its port
    /// programs) with SIGKILL by pid and reaps it, like a crash; config, spool and ports
    /// stay for [`Ejabberd::restart`].
    ///
    /// Unlike Prosody's files, Mnesia keeps recent writes in its transaction log and
    /// dets buffers for a few seconds: accounts or roster items created just before a
    /// SIGKILL may be gone after the restart. [`Ejabberd::stop`] flushes them.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// Shuts the server down cleanly: SIGTERM to its process group (the Erlang VM runs
    /// `init:stop()`, ejabberd closes its streams and Mnesia flushes to the spool),
    /// then SIGKILL after `grace` if anything is left. Returns how long it took.
    pub fn stop(&mut self, grace: Duration) -> Duration {
        let started = Instant::now();
        if let Some(mut p) = self.process.take() {
            p.terminate(grace);
        }
        started.elapsed()
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(Process::is_running)
    }

    /// The pid of the server's process group leader, if running.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Process::pid)
    }

    /// The HTTP port (WebSocket and BOSH) on 127.0.0.1.
    #[must_use]
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The Erlang distribution port on 127.0.0.1 (no epmd).
    #[must_use]
    pub fn dist_port(&self) -> u16 {
        self.dist_port
    }

    /// The Erlang node name, `ejabberd-PORT@localhost`.
    #[must_use]
    pub fn node(&self) -> &str {
        &self.node
    }

    /// `ws://127.0.0.1:PORT/ws` (RFC 7395, `ejabberd_http_ws`).
    #[must_use]
    pub fn websocket_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.http_port)
    }

    /// `http://127.0.0.1:PORT/bosh` (XEP-0206, `mod_bosh`).
    #[must_use]
    pub fn bosh_url(&self) -> String {
        format!("http://127.0.0.1:{}/bosh", self.http_port)
    }

    /// ejabberd's own log file (`EJABBERD_LOG_PATH`, level `info`).
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("log").join("ejabberd.log")
    }

    /// The config file.
    #[must_use]
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The scratch directory this server writes into.
    #[must_use]
    pub fn scratch(&self) -> &Scratch {
        &self.scratch
    }
}

/// The accessors the harness needs (domain, component, ports) are only here: bring
/// [`XmppServer`] into scope to call them.
impl XmppServer for Ejabberd {
    fn server_name(&self) -> &str {
        "ejabberd"
    }

    fn domain(&self) -> &str {
        &self.config.domain
    }

    fn component_domain(&self) -> &str {
        &self.config.component
    }

    fn component_secret(&self) -> &str {
        &self.config.component_secret
    }

    fn component_port(&self) -> u16 {
        self.component_port
    }

    fn c2s_port(&self) -> u16 {
        self.c2s_port
    }

    fn websocket_url(&self) -> String {
        Self::websocket_url(self)
    }

    fn bosh_url(&self) -> String {
        Self::bosh_url(self)
    }

    fn register(&self, user: &str, password: &str) -> Result<()> {
        Self::register(self, user, password)
    }
}

impl Drop for Ejabberd {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "testbed: --- ejabberd log {} ---\n{}",
                self.log_path().display(),
                crate::process::log_tail(&self.log_path(), 40)
            );
        }
    }
}

/// The directory to put into `ERL_LIBS` so `erl` finds ejabberd's applications: the
/// one holding `ejabberd-VERSION/ebin/ejabberd.beam` (Debian: `/usr/lib/<multiarch>`).
fn erlang_libs() -> Result<PathBuf> {
    let missing = || Error::Missing {
        what: "ejabberd (ejabberd-*/ebin/ejabberd.beam under /usr/lib/*/) and erl".into(),
        hint: "run scripts/install-deps (apt-get install ejabberd)".into(),
    };
    let dirs = std::fs::read_dir("/usr/lib").map_err(|_| missing())?;
    for d in dirs.filter_map(std::result::Result::ok) {
        let Ok(inner) = std::fs::read_dir(d.path()) else {
            continue;
        };
        let found = inner.filter_map(std::result::Result::ok).any(|e| {
            e.file_name().to_string_lossy().starts_with("ejabberd-")
                && e.path().join("ebin").join("ejabberd.beam").is_file()
        });
        if found {
            return Ok(d.path());
        }
    }
    Err(missing())
}

/// A fresh Erlang cookie: 32 letters from the standard library's random hasher keys.
fn random_cookie() -> String {
    let mut cookie = String::with_capacity(32);
    while cookie.len() < 32 {
        let mut h = RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let mut x = h.finish();
        for _ in 0..8 {
            cookie.push(char::from(b'A' + (x % 26) as u8));
            x /= 26;
        }
    }
    cookie
}

/// A YAML double-quoted scalar (YAML 1.2 §7.3.1).
fn yaml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_letters_and_differ() {
        let (a, b) = (random_cookie(), random_cookie());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_uppercase()), "{a}");
        assert_ne!(a, b);
        assert_eq!(yaml_string(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
