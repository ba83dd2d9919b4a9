//! Starts our gateway binary (`jingle-sip-gateway`) against the test bed's XMPP server
//! (Prosody or ejabberd, see [`XmppServer`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::ports::{free_port, free_port_range};
use crate::process::{Process, ProcessBuilder};
use crate::{Error, Result, Scratch, XmppServer};

/// Number of media (RTP) ports given to each gateway instance.
pub const MEDIA_PORTS: u16 = 100;

/// How to configure a [`Gateway`]: a TOML file plus `JSG__SECTION__KEY` environment
/// overrides (the gateway's own override mechanism, see `docs/configuration.md`).
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The config file; default `deploy/testbed.toml`.
    pub template: PathBuf,
    /// Overrides by dotted key (`sip.trunks.0.port`), applied after the harness's own.
    pub overrides: BTreeMap<String, String>,
    /// Extra arguments (e.g. `-v`).
    pub args: Vec<String>,
    /// Wall-clock bound of the gateway process; default 120 s.
    pub time_limit: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            template: crate::paths::workspace_root()
                .join("deploy")
                .join("testbed.toml"),
            overrides: BTreeMap::new(),
            args: Vec::new(),
            time_limit: Duration::from_secs(120),
        }
    }
}

impl GatewayConfig {
    /// Overrides one key, by its dotted path in the TOML file (`xmpp.ping_interval`,
    /// `sip.trunks.0.port`); becomes the variable `JSG__XMPP__PING_INTERVAL`, ….
    pub fn set(&mut self, key: &str, value: impl ToString) -> &mut Self {
        self.overrides.insert(key.to_owned(), value.to_string());
        self
    }
}

/// `sip.trunks.0.port` → `JSG__SIP__TRUNKS__0__PORT`.
#[must_use]
pub fn env_name(key: &str) -> String {
    let mut name = String::from("JSG");
    for part in key.split('.') {
        name.push_str("__");
        name.push_str(&part.to_ascii_uppercase());
    }
    name
}

/// A running gateway, connected (or connecting) to an [`XmppServer`] ([`crate::Prosody`]
/// or [`crate::Ejabberd`]) as its component.
/// Dropping it kills it by pid.
///
/// The harness sets, through environment overrides: `xmpp.server` = 127.0.0.1,
/// `xmpp.port` / `xmpp.domain` / `xmpp.secret` from the server, fresh free
/// `sip.port` and `sip.tls_port`, and a free block of [`MEDIA_PORTS`] media ports.
#[derive(Debug)]
pub struct Gateway {
    process: Process,
    config_path: PathBuf,
    sip_port: u16,
    sip_tls_port: u16,
    media_ports: (u16, u16),
    env: BTreeMap<String, String>,
}

impl Gateway {
    /// Starts the built binary (see [`crate::paths::gateway_binary`]) with
    /// `--config FILE`, the file being a copy of `config.template` in the scratch dir.
    /// Returns once the process runs; use [`Gateway::wait_for_log`] or a client's disco
    /// to wait for the component to be connected.
    ///
    /// # Errors
    /// [`Error::Missing`] if the binary is not built, [`Error::Io`] on file errors,
    /// [`Error::Exited`] if it exits at once (e.g. a config error, in its log).
    pub fn start<S: XmppServer + ?Sized>(
        scratch: &Scratch,
        server: &S,
        config: &GatewayConfig,
    ) -> Result<Self> {
        let prepared = Prepared::new(scratch, server, config)?;
        let mut builder = ProcessBuilder::new("gateway", &prepared.binary)
            .arg("--config")
            .arg(&prepared.config_path)
            .args(&config.args)
            .time_limit(config.time_limit)
            .current_dir(&prepared.dir);
        for (k, v) in &prepared.env {
            builder = builder.env(k, v);
        }
        let mut process = builder.spawn(&prepared.dir)?;
        std::thread::sleep(Duration::from_millis(100));
        process.check_running()?;
        Ok(Self {
            process,
            config_path: prepared.config_path,
            sip_port: prepared.sip_port,
            sip_tls_port: prepared.sip_tls_port,
            media_ports: prepared.media_ports,
            env: prepared.env,
        })
    }

    /// Runs `jingle-sip-gateway --check-config FILE` with exactly the file and
    /// overrides [`Gateway::start`] would use, and returns its output (one line per
    /// problem, or `FILE: OK: summary`) and whether it exited 0.
    ///
    /// # Errors
    /// [`Error::Missing`] if the binary is not built, [`Error::Io`] if it cannot run.
    pub fn check_config<S: XmppServer + ?Sized>(
        scratch: &Scratch,
        server: &S,
        config: &GatewayConfig,
    ) -> Result<(bool, String)> {
        let prepared = Prepared::new(scratch, server, config)?;
        let out = std::process::Command::new("timeout")
            .arg("--signal=KILL")
            .arg("20")
            .arg(&prepared.binary)
            .arg("--check-config")
            .arg(&prepared.config_path)
            .envs(&prepared.env)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| Error::io("run jingle-sip-gateway --check-config", e))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.success(), text))
    }

    /// The SIP port (UDP and TCP) on 127.0.0.1.
    #[must_use]
    pub fn sip_port(&self) -> u16 {
        self.sip_port
    }

    /// The SIP TLS port on 127.0.0.1.
    #[must_use]
    pub fn sip_tls_port(&self) -> u16 {
        self.sip_tls_port
    }

    /// The media port range, inclusive.
    #[must_use]
    pub fn media_ports(&self) -> (u16, u16) {
        self.media_ports
    }

    /// The config file the gateway was started with.
    #[must_use]
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The `JSG__…` variables the gateway was started with.
    #[must_use]
    pub fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    /// The process (pid, log, signals).
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// Waits until the gateway's log contains `needle`.
    ///
    /// # Errors
    /// [`Error::TimedOut`] with the log tail, or [`Error::Exited`] if it died.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = std::fs::read_to_string(self.process.log_path()).unwrap_or_default();
            if log.contains(needle) {
                return Ok(());
            }
            self.process.check_running()?;
            if Instant::now() >= deadline {
                return Err(Error::TimedOut {
                    what: format!("gateway log to contain {needle:?}"),
                    after: timeout,
                    context: self.process.log_tail(30),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the gateway by pid (its process group).
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// What [`Gateway::start`] and [`Gateway::check_config`] share: the binary, a copy of
/// the config file, fresh ports and the `JSG__…` overrides.
struct Prepared {
    binary: PathBuf,
    dir: PathBuf,
    config_path: PathBuf,
    sip_port: u16,
    sip_tls_port: u16,
    media_ports: (u16, u16),
    env: BTreeMap<String, String>,
}

impl Prepared {
    fn new<S: XmppServer + ?Sized>(
        scratch: &Scratch,
        server: &S,
        config: &GatewayConfig,
    ) -> Result<Self> {
        let binary = crate::paths::gateway_binary()?;
        let dir = scratch.subdir("gateway")?;
        let config_path = dir.join("gateway.toml");
        std::fs::copy(&config.template, &config_path).map_err(|e| {
            Error::io(
                format!(
                    "copy {} to {}",
                    config.template.display(),
                    config_path.display()
                ),
                e,
            )
        })?;
        let sip_port = free_port();
        let sip_tls_port = free_port();
        let media_min = free_port_range(MEDIA_PORTS);
        let media_ports = (media_min, media_min + MEDIA_PORTS - 1);
        let mut keys: BTreeMap<String, String> = BTreeMap::new();
        keys.insert("xmpp.server".into(), "127.0.0.1".into());
        keys.insert("xmpp.port".into(), server.component_port().to_string());
        keys.insert("xmpp.domain".into(), server.component_domain().into());
        keys.insert("xmpp.secret".into(), server.component_secret().into());
        keys.insert("sip.port".into(), sip_port.to_string());
        keys.insert("sip.tls_port".into(), sip_tls_port.to_string());
        keys.insert("media.port_min".into(), media_ports.0.to_string());
        keys.insert("media.port_max".into(), media_ports.1.to_string());
        keys.extend(config.overrides.clone());
        let env = keys.iter().map(|(k, v)| (env_name(k), v.clone())).collect();
        Ok(Self {
            binary,
            dir,
            config_path,
            sip_port,
            sip_tls_port,
            media_ports,
            env,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_follow_the_gateway_convention() {
        assert_eq!(env_name("xmpp.secret"), "JSG__XMPP__SECRET");
        assert_eq!(env_name("sip.trunks.0.port"), "JSG__SIP__TRUNKS__0__PORT");
        assert_eq!(env_name("sip.tls_port"), "JSG__SIP__TLS_PORT");
    }
}
