//! Prosody, the XMPP server of the test bed, with our component's port open.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::ports::free_port;
use crate::process::{run_bounded, Process, ProcessBuilder};
use crate::{Error, Result, Scratch};

/// How long `prosodyctl` and `openssl` may take.
const HELPER_LIMIT: Duration = Duration::from_secs(20);

/// Settings of a [`Prosody`] instance; [`Default`] gives the test bed's usual ones.
#[derive(Debug, Clone)]
pub struct ProsodyConfig {
    /// The virtual host users live on; default `localhost`.
    pub domain: String,
    /// The component (gateway) domain; default `gw.localhost`.
    pub component: String,
    /// The component's XEP-0114 shared secret; default `testbed-secret`.
    pub component_secret: String,
    /// Wall-clock bound of each server run; default 120 s.
    pub time_limit: Duration,
    /// How long to wait for the listening ports after a start; default 15 s.
    pub start_timeout: Duration,
}

impl Default for ProsodyConfig {
    fn default() -> Self {
        Self {
            domain: "localhost".into(),
            component: "gw.localhost".into(),
            component_secret: "testbed-secret".into(),
            time_limit: Duration::from_secs(120),
            start_timeout: Duration::from_secs(15),
        }
    }
}

/// A Prosody server with its own config, data directory and free loopback ports.
///
/// It listens on 127.0.0.1 and ::1 only: c2s (plain, STARTTLS optional, plain auth
/// allowed), the component port for `Component "gw.localhost"`, and HTTP for
/// WebSocket (`/xmpp-websocket`) and BOSH (`/http-bind`). `s2s` and `limits` are
/// disabled. It can be killed and started again on the same ports and data (the
/// gateway's reconnect test needs that). Dropping it kills it by pid.
#[derive(Debug)]
pub struct Prosody {
    config: ProsodyConfig,
    scratch: Scratch,
    dir: PathBuf,
    config_path: PathBuf,
    c2s_port: u16,
    component_port: u16,
    http_port: u16,
    rosters: BTreeMap<String, BTreeMap<String, String>>,
    process: Option<Process>,
    runs: u32,
}

impl Prosody {
    /// Writes the config (and a self-signed certificate for the domain), then starts
    /// the server and waits until its ports accept connections.
    ///
    /// # Errors
    /// [`Error::Io`] on file errors, [`Error::Peer`] if `openssl` fails,
    /// [`Error::Exited`] or [`Error::TimedOut`] if the server does not come up.
    pub fn start(scratch: &Scratch, config: ProsodyConfig) -> Result<Self> {
        let dir = scratch.subdir("prosody")?;
        let data = dir.join("data");
        let certs = dir.join("certs");
        for d in [&data, &certs] {
            std::fs::create_dir_all(d)
                .map_err(|e| Error::io(format!("mkdir {}", d.display()), e))?;
        }
        make_certificate(&certs, &config.domain)?;
        let mut prosody = Self {
            config_path: dir.join("prosody.cfg.lua"),
            c2s_port: free_port(),
            component_port: free_port(),
            http_port: free_port(),
            dir,
            config,
            scratch: scratch.clone(),
            rosters: BTreeMap::new(),
            process: None,
            runs: 0,
        };
        prosody.write_config()?;
        prosody.restart()?;
        Ok(prosody)
    }

    /// Starts with [`ProsodyConfig::default`].
    ///
    /// # Errors
    /// As [`Prosody::start`].
    pub fn start_default(scratch: &Scratch) -> Result<Self> {
        Self::start(scratch, ProsodyConfig::default())
    }

    fn write_config(&self) -> Result<()> {
        let c = &self.config;
        let dir = self.dir.display();
        let text = format!(
            r#"-- written by the jingle-sip-gateway test bed (tests/src/prosody.rs)
run_as_root = true
pidfile = "{dir}/prosody.pid"
data_path = "{dir}/data"
certificates = "{dir}/certs"
log = {{ debug = "{dir}/prosody.log" }}
plugin_paths = {{}}
interfaces = {{ "127.0.0.1", "::1" }}
local_interfaces = {{ "127.0.0.1", "::1" }}
c2s_ports = {{ {c2s} }}
c2s_direct_tls_ports = {{}}
s2s_ports = {{}}
component_ports = {{ {component} }}
component_interfaces = {{ "127.0.0.1", "::1" }}
http_ports = {{ {http} }}
http_interfaces = {{ "127.0.0.1", "::1" }}
https_ports = {{}}
https_interfaces = {{}}
modules_enabled = {{
  "roster"; "saslauth"; "tls"; "disco"; "ping"; "presence"; "message"; "iq";
  "carbons"; "posix"; "http"; "websocket"; "bosh";
}}
modules_disabled = {{ "s2s"; "limits" }}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
consider_websocket_secure = true
consider_bosh_secure = true
authentication = "internal_hashed"
storage = "internal"

VirtualHost "{domain}"

Component "{component_domain}"
  component_secret = "{secret}"
"#,
            c2s = self.c2s_port,
            component = self.component_port,
            http = self.http_port,
            domain = lua_escape(&c.domain),
            component_domain = lua_escape(&c.component),
            secret = lua_escape(&c.component_secret),
        );
        std::fs::write(&self.config_path, text)
            .map_err(|e| Error::io(format!("write {}", self.config_path.display()), e))
    }

    /// Starts the server (again) on the same ports and data, after [`Prosody::kill`]
    /// or a crash; kills a running instance first. Waits until every port accepts.
    ///
    /// # Errors
    /// [`Error::Exited`] or [`Error::TimedOut`] if it does not come up.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.runs += 1;
        let process = ProcessBuilder::new(format!("prosody-run{}", self.runs), "prosody")
            .args([
                "--config".as_ref(),
                self.config_path.as_os_str(),
                "-F".as_ref(),
            ])
            .time_limit(self.config.time_limit)
            .spawn(&self.dir)?;
        self.process = Some(process);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + self.config.start_timeout;
        let ports = [self.c2s_port, self.component_port, self.http_port];
        loop {
            let process = self.process.as_mut().ok_or_else(|| Error::Peer {
                peer: "prosody".into(),
                message: "not started".into(),
            })?;
            process.check_running()?;
            // Read the kernel's socket table rather than connecting: a probe connection
            // would show up in Prosody's log as a component that came and went.
            let all = ports.iter().all(|&p| crate::ports::is_listening(p));
            if all {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::TimedOut {
                    what: format!("prosody to listen on {ports:?}"),
                    after: self.config.start_timeout,
                    context: crate::process::log_tail(&self.log_path(), 30),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// How many times a component has completed the XEP-0114 handshake with this server
    /// (all runs), from Prosody's log line "External component successfully
    /// authenticated".
    #[must_use]
    pub fn component_authentications(&self) -> usize {
        crate::server::log_count(
            &self.log_path(),
            "External component successfully authenticated",
        )
    }

    /// Waits until more than `seen` component handshakes have succeeded (see
    /// [`Prosody::component_authentications`]) and returns the new count: pass 0 after
    /// starting the gateway, or the previous count after a [`Prosody::restart`].
    ///
    /// # Errors
    /// [`Error::TimedOut`] with the log tail; [`Error::Exited`] if Prosody died.
    pub fn wait_component_authenticated(
        &mut self,
        seen: usize,
        timeout: Duration,
    ) -> Result<usize> {
        let log = self.log_path();
        crate::server::wait_log_count(
            "prosody",
            &log,
            "External component successfully authenticated",
            self.process.as_mut(),
            seen,
            timeout,
        )
    }

    /// Kills the server's process group with SIGKILL (by pid) and reaps it; the
    /// config, data and ports stay for [`Prosody::restart`].
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
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

    /// Creates an account with `prosodyctl register` (same config file).
    ///
    /// # Errors
    /// [`Error::Peer`] if `prosodyctl` fails.
    pub fn register(&self, user: &str, password: &str) -> Result<()> {
        run_bounded(
            "prosodyctl",
            [
                "--config".as_ref(),
                self.config_path.as_os_str(),
                "register".as_ref(),
                user.as_ref(),
                self.config.domain.as_ref(),
                password.as_ref(),
            ] as [&std::ffi::OsStr; 6],
            HELPER_LIMIT,
        )?;
        Ok(())
    }

    /// Puts `contact` (a JID) into `user`'s roster with `subscription`
    /// (`both`, `to`, `from`, `none`) by writing Prosody's roster data file.
    ///
    /// Prosody reads a roster from storage when the user logs in: call this before the
    /// user's client connects.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written.
    pub fn set_roster_item(&mut self, user: &str, contact: &str, subscription: &str) -> Result<()> {
        let roster = self.rosters.entry(user.to_owned()).or_default();
        roster.insert(contact.to_owned(), subscription.to_owned());
        let mut text =
            String::from("return {\n\t[false] = { [\"version\"] = 1; [\"pending\"] = {}; };\n");
        for (jid, sub) in roster.iter() {
            let name = jid.split('@').next().unwrap_or(jid);
            let _ = writeln!(
                text,
                "\t[\"{}\"] = {{ [\"subscription\"] = \"{}\"; [\"groups\"] = {{}}; [\"name\"] = \"{}\"; }};",
                lua_escape(jid),
                lua_escape(sub),
                lua_escape(name)
            );
        }
        text.push_str("};\n");
        let dir = self
            .dir
            .join("data")
            .join(prosody_encode(&self.config.domain))
            .join("roster");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("mkdir {}", dir.display()), e))?;
        let path = dir.join(format!("{}.dat", prosody_encode(user)));
        std::fs::write(&path, text).map_err(|e| Error::io(format!("write {}", path.display()), e))
    }

    /// Registers `a` and `b` (with their passwords) and makes them mutual contacts
    /// (subscription `both`), as two people who already added each other.
    ///
    /// # Errors
    /// As [`Prosody::register`] and [`Prosody::set_roster_item`].
    pub fn add_contacts(&mut self, a: (&str, &str), b: (&str, &str)) -> Result<()> {
        self.register(a.0, a.1)?;
        self.register(b.0, b.1)?;
        let (ja, jb) = (self.jid(a.0), self.jid(b.0));
        self.set_roster_item(a.0, &jb, "both")?;
        self.set_roster_item(b.0, &ja, "both")
    }

    /// `user@domain`.
    #[must_use]
    pub fn jid(&self, user: &str) -> String {
        format!("{user}@{}", self.config.domain)
    }

    /// The virtual host, e.g. `localhost`.
    #[must_use]
    pub fn domain(&self) -> &str {
        &self.config.domain
    }

    /// The component domain, e.g. `gw.localhost`.
    #[must_use]
    pub fn component_domain(&self) -> &str {
        &self.config.component
    }

    /// The component's shared secret.
    #[must_use]
    pub fn component_secret(&self) -> &str {
        &self.config.component_secret
    }

    /// The c2s (client) port on 127.0.0.1 and ::1.
    #[must_use]
    pub fn c2s_port(&self) -> u16 {
        self.c2s_port
    }

    /// The XEP-0114 component port on 127.0.0.1 and ::1.
    #[must_use]
    pub fn component_port(&self) -> u16 {
        self.component_port
    }

    /// The HTTP port (WebSocket and BOSH).
    #[must_use]
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// `ws://127.0.0.1:PORT/xmpp-websocket` (RFC 7395).
    #[must_use]
    pub fn websocket_url(&self) -> String {
        format!("ws://127.0.0.1:{}/xmpp-websocket", self.http_port)
    }

    /// `http://127.0.0.1:PORT/http-bind` (XEP-0206).
    #[must_use]
    pub fn bosh_url(&self) -> String {
        format!("http://127.0.0.1:{}/http-bind", self.http_port)
    }

    /// The server's log file (all levels).
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("prosody.log")
    }

    /// The config file (`prosody --config` / `prosodyctl --config`).
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

impl crate::XmppServer for Prosody {
    fn server_name(&self) -> &str {
        "prosody"
    }

    fn domain(&self) -> &str {
        Self::domain(self)
    }

    fn jid(&self, user: &str) -> String {
        Self::jid(self, user)
    }

    fn component_domain(&self) -> &str {
        Self::component_domain(self)
    }

    fn component_secret(&self) -> &str {
        Self::component_secret(self)
    }

    fn component_port(&self) -> u16 {
        Self::component_port(self)
    }

    fn c2s_port(&self) -> u16 {
        Self::c2s_port(self)
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

impl Drop for Prosody {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "testbed: --- prosody log {} ---\n{}",
                self.log_path().display(),
                crate::process::log_tail(&self.log_path(), 40)
            );
        }
    }
}

/// A self-signed certificate for `domain` in `certs/DOMAIN.{crt,key}` (ECDSA P-256,
/// fast to make), which Prosody finds through its `certificates` directory.
fn make_certificate(certs: &Path, domain: &str) -> Result<()> {
    let key = certs.join(format!("{domain}.key"));
    let crt = certs.join(format!("{domain}.crt"));
    let subject = format!("/CN={domain}");
    let san = format!("subjectAltName=DNS:{domain},DNS:*.{domain}");
    run_bounded(
        "openssl",
        [
            "req".as_ref(),
            "-x509".as_ref(),
            "-newkey".as_ref(),
            "ec".as_ref(),
            "-pkeyopt".as_ref(),
            "ec_paramgen_curve:prime256v1".as_ref(),
            "-nodes".as_ref(),
            "-days".as_ref(),
            "3650".as_ref(),
            "-subj".as_ref(),
            subject.as_ref(),
            "-addext".as_ref(),
            san.as_ref(),
            "-keyout".as_ref(),
            key.as_os_str(),
            "-out".as_ref(),
            crt.as_os_str(),
        ] as [&std::ffi::OsStr; 17],
        HELPER_LIMIT,
    )?;
    Ok(())
}

/// Escapes a string for a double-quoted Lua literal.
fn lua_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Prosody's file-name encoding of hosts and user names (`util/datamanager.lua`):
/// every byte that is not ASCII alphanumeric becomes `%xx`.
fn prosody_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_prosody() {
        assert_eq!(prosody_encode("localhost"), "localhost");
        assert_eq!(prosody_encode("gw.localhost"), "gw%2elocalhost");
        assert_eq!(prosody_encode("+1555"), "%2b1555");
        assert_eq!(lua_escape(r#"a"b\c"#), r#"a\"b\\c"#);
    }
}
