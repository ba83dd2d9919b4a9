//! Child processes bounded in time and killed by pid (and process group) on drop.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::{Error, Result};

/// Grace period `timeout(1)` gives a peer between SIGTERM and SIGKILL at its deadline.
const KILL_AFTER: Duration = Duration::from_secs(2);

/// Where a child's stdout goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    /// Into the log file, with stderr.
    Log,
    /// To a pipe the caller reads ([`Process::take_stdout`]); stderr still goes to the log.
    Piped,
}

/// How to start a peer: program, arguments, environment, time bound, output capture.
#[derive(Debug, Clone)]
#[must_use]
pub struct ProcessBuilder {
    name: String,
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    time_limit: Duration,
    stdin: bool,
    stdout: Stdout,
    log: Option<PathBuf>,
}

impl ProcessBuilder {
    /// A peer called `name` (used in logs and errors) running `program`.
    ///
    /// Defaults: 60 s time limit, no stdin, stdout and stderr into the log file.
    pub fn new(name: impl Into<String>, program: impl AsRef<OsStr>) -> Self {
        Self {
            name: name.into(),
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            time_limit: Duration::from_secs(60),
            stdin: false,
            stdout: Stdout::Log,
            log: None,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Sets the working directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Wall-clock bound: `timeout(1)` sends SIGTERM to the peer's whole process group
    /// after `limit`, then SIGKILL 2 s later, even if the test process died.
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    /// Gives the child a piped stdin ([`Process::take_stdin`]).
    pub fn piped_stdin(mut self) -> Self {
        self.stdin = true;
        self
    }

    /// Chooses where stdout goes (default [`Stdout::Log`]).
    pub fn stdout(mut self, stdout: Stdout) -> Self {
        self.stdout = stdout;
        self
    }

    /// The log file for stderr (and stdout with [`Stdout::Log`]); default `DIR/NAME.log`
    /// where DIR is the directory given to [`ProcessBuilder::spawn`].
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = Some(path.into());
        self
    }

    /// Starts the child in its own process group, under `timeout(1)`, with output
    /// captured to `log_dir/NAME.log` (or the file set by [`Self::log_file`]).
    ///
    /// # Errors
    /// [`Error::Io`] if the log file cannot be created or the program cannot be started.
    pub fn spawn(self, log_dir: &Path) -> Result<Process> {
        let log_path = self
            .log
            .clone()
            .unwrap_or_else(|| log_dir.join(format!("{}.log", sanitize(&self.name))));
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io(format!("create log {}", log_path.display()), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| Error::io("clone log file handle", e))?;
        let mut cmd = Command::new("timeout");
        cmd.arg(format!("--kill-after={}", KILL_AFTER.as_secs()))
            .arg(format!("{}", self.time_limit.as_secs_f64()))
            .arg(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::from(log2))
            .process_group(0);
        match self.stdout {
            Stdout::Log => cmd.stdout(Stdio::from(log)),
            Stdout::Piped => cmd.stdout(Stdio::piped()),
        };
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        let child = cmd.spawn().map_err(|e| {
            Error::io(
                format!("start {} ({})", self.name, self.program.to_string_lossy()),
                e,
            )
        })?;
        tracing::debug!(name = %self.name, pid = child.id(), log = %log_path.display(), "started peer");
        Ok(Process {
            name: self.name,
            child,
            log_path,
            started: Instant::now(),
            time_limit: self.time_limit,
            status: None,
        })
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A running peer. Dropping it kills its whole process group with SIGKILL and reaps
/// it; if the thread is panicking (a failed test), the tail of its log is printed.
///
/// The direct child is `timeout(1)`, which leads the process group; the peer and
/// anything it forks are in that group.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    log_path: PathBuf,
    started: Instant,
    time_limit: Duration,
    status: Option<ExitStatus>,
}

impl Process {
    /// The peer's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pid of the direct child (the process group id).
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log file (stderr, and stdout unless piped).
    #[must_use]
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `lines` lines of the log.
    #[must_use]
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path, lines)
    }

    /// Time left before `timeout(1)` ends the peer.
    #[must_use]
    pub fn time_left(&self) -> Duration {
        self.time_limit.saturating_sub(self.started.elapsed())
    }

    /// Takes the piped stdin (see [`ProcessBuilder::piped_stdin`]).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// Takes the piped stdout (see [`Stdout::Piped`]).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// The exit status if the peer has ended, without blocking.
    ///
    /// # Errors
    /// [`Error::Io`] if waiting fails.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .map_err(|e| Error::io(format!("wait for {}", self.name), e))?;
        }
        Ok(self.status)
    }

    /// Whether the peer is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_wait(), Ok(None))
    }

    /// Fails with [`Error::Exited`] (log tail included) if the peer has ended.
    ///
    /// # Errors
    /// [`Error::Exited`] if it has ended; [`Error::Io`] if waiting fails.
    pub fn check_running(&mut self) -> Result<()> {
        match self.try_wait()? {
            None => Ok(()),
            Some(status) => Err(self.exited(status)),
        }
    }

    pub(crate) fn exited(&self, status: ExitStatus) -> Error {
        Error::Exited {
            name: self.name.clone(),
            status: status.to_string(),
            log: self.log_path.clone(),
            tail: self.log_tail(40),
        }
    }

    /// Waits up to `limit` for the peer to exit by itself.
    ///
    /// # Errors
    /// [`Error::TimedOut`] if it is still running; [`Error::Io`] if waiting fails.
    pub fn wait_timeout(&mut self, limit: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(Error::TimedOut {
                    what: format!("{} to exit", self.name),
                    after: limit,
                    context: self.log_tail(20),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` to the peer's whole process group.
    ///
    /// # Errors
    /// [`Error::Io`] if the group does not exist any more or cannot be signalled.
    pub fn signal(&mut self, signal: Signal) -> Result<()> {
        let pgid = Pid::from_raw(self.child.id() as i32);
        killpg(pgid, signal)
            .map_err(|e| Error::io(format!("killpg {} {signal}", self.name), e.into()))
    }

    /// SIGTERM to the group, then SIGKILL after `grace` if still running; reaps it.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if self.is_running() {
            let _ = self.signal(Signal::SIGTERM);
            if let Ok(status) = self.wait_timeout(grace) {
                // the leader is gone; make sure nothing else of the group survives
                let _ = self.signal(Signal::SIGKILL);
                return Some(status);
            }
        }
        self.kill()
    }

    /// SIGKILL to the whole process group (by pid), reaps the child, and waits (up to
    /// 5 s) until no process of the group is left alive, so its ports are free again.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let _ = self.signal(Signal::SIGKILL);
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
        let pgid = self.child.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        while group_alive(pgid) && Instant::now() < deadline {
            let _ = self.signal(Signal::SIGKILL);
            std::thread::sleep(Duration::from_millis(10));
        }
        tracing::debug!(name = %self.name, pid = self.child.id(), status = ?self.status, "peer stopped");
        self.status
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "testbed: --- {} (pid {}) log {} ---\n{}",
                self.name,
                self.child.id(),
                self.log_path.display(),
                self.log_tail(60)
            );
        }
    }
}

/// Whether any live (non-zombie) process belongs to process group `pgid`, from
/// `/proc/PID/stat` (fields after the command: state, ppid, pgrp).
fn group_alive(pgid: u32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .any(|stat| {
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next();
            let pgrp = fields.nth(1).and_then(|f| f.parse::<u32>().ok());
            state != Some("Z") && pgrp == Some(pgid)
        })
}

/// The last `lines` lines of a text file (empty if unreadable).
#[must_use]
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(f) = File::open(path) else {
        return String::new();
    };
    let all: Vec<String> = BufReader::new(f)
        .lines()
        .map_while(std::result::Result::ok)
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs a short command to completion under `timeout(1)` (SIGKILL after `limit`),
/// capturing its output. For helpers such as `openssl` and `prosodyctl`.
///
/// # Errors
/// [`Error::Io`] if it cannot be started; [`Error::Peer`] if it exits non-zero or
/// times out (exit status 124/137), with its output.
pub fn run_bounded<I, S>(program: &str, args: I, limit: Duration) -> Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = Command::new("timeout")
        .arg("--signal=KILL")
        .arg(format!("{}", limit.as_secs_f64()))
        .arg(program)
        .args(&args)
        .stdin(Stdio::null())
        .process_group(0)
        .output()
        .map_err(|e| Error::io(format!("run {program}"), e))?;
    if !out.status.success() {
        return Err(Error::Peer {
            peer: program.to_owned(),
            message: format!(
                "{:?} failed ({}):\n{}{}",
                args,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    Ok(out)
}
