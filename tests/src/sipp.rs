//! SIPp (`sip-tester`) as a scripted SIP peer: one scenario of `tests/peers/sip/`, one
//! call (`-m 1`), every message it sends or receives logged (`-trace_msg`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::ports::{free_port, free_port_range, is_udp_bound};
use crate::{Error, Process, ProcessBuilder, Result, Scratch};

/// How long SIPp may bind its port after it started.
const BIND_WAIT: Duration = Duration::from_secs(10);
/// How often [`Sipp::wait`] reads the message log.
const POLL: Duration = Duration::from_millis(10);

/// One SIPp process on 127.0.0.1, bounded in time and killed by pid when dropped.
#[derive(Debug)]
pub struct Sipp {
    process: Process,
    port: u16,
    messages: PathBuf,
}

impl Sipp {
    /// A UAS running `scenario` (a file name in `tests/peers/sip/`) on a free port.
    ///
    /// # Errors
    ///
    /// When SIPp cannot be started, exits early or does not bind its port in 10 s.
    pub fn uas(scratch: &Scratch, scenario: &str) -> Result<Self> {
        Self::start(scratch, scenario, &[])
    }

    /// A UAC running `scenario` toward `service` at `127.0.0.1:remote_port`.
    ///
    /// # Errors
    ///
    /// As [`Sipp::uas`].
    pub fn uac(scratch: &Scratch, scenario: &str, service: &str, remote_port: u16) -> Result<Self> {
        let remote = format!("127.0.0.1:{remote_port}");
        Self::start(scratch, scenario, &[&remote, "-s", service])
    }

    /// SIPp with `extra` arguments before the scenario; the process may run 90 s.
    fn start(scratch: &Scratch, scenario: &str, extra: &[&str]) -> Result<Self> {
        let port = free_port();
        // SIPp binds audio RTP/RTCP at -mp and -mp+1, video at -mp+2 and -mp+3.
        let media = free_port_range(4);
        let stem = scenario.trim_end_matches(".xml");
        let messages = scratch.join(format!("sipp-{stem}.messages.log"));
        let process = ProcessBuilder::new(format!("sipp-{stem}"), "sipp")
            .args(extra)
            .arg("-sf")
            .arg(crate::paths::peers_dir().join("sip").join(scenario))
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mi", "127.0.0.1", "-mp", &media.to_string()])
            .args(["-m", "1", "-nostdin", "-trace_msg", "-message_file"])
            .arg(&messages)
            .time_limit(Duration::from_secs(90))
            .spawn(scratch.path())?;
        let mut sipp = Self {
            process,
            port,
            messages,
        };
        let deadline = Instant::now() + BIND_WAIT;
        while !is_udp_bound(port) {
            sipp.process.check_running()?;
            if Instant::now() >= deadline {
                return Err(Error::TimedOut {
                    what: format!("sipp to bind UDP {port}"),
                    after: BIND_WAIT,
                    context: sipp.process.log_tail(20),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(sipp)
    }

    /// The UDP port SIPp listens on (127.0.0.1).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The SIPp process.
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// The last `lines` lines of SIPp's own output.
    #[must_use]
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// SIPp's message log so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.messages).unwrap_or_default()
    }

    /// Whether a logged message starts with the line `start` (`CANCEL sip:`,
    /// `SIP/2.0 486`).
    #[must_use]
    pub fn saw(&self, start: &str) -> bool {
        self.log().lines().any(|l| l.starts_with(start))
    }

    /// How many logged messages start with `start` (`INVITE sip:`).
    #[must_use]
    pub fn count(&self, start: &str) -> usize {
        self.log().lines().filter(|l| l.starts_with(start)).count()
    }

    /// Waits until [`Sipp::saw`]`(start)`, polling every 10 ms; the instant it was seen.
    ///
    /// # Errors
    ///
    /// [`Error::TimedOut`] with the message log.
    pub fn wait(&self, start: &str, timeout: Duration) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.saw(start) {
                return Ok(Instant::now());
            }
            if Instant::now() >= deadline {
                return Err(Error::TimedOut {
                    what: format!("SIPp to log {start:?}"),
                    after: timeout,
                    context: self.log(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits up to 10 s for SIPp to end its one call; `Ok` when it passed the whole
    /// scenario (exit 0).
    ///
    /// # Errors
    ///
    /// When SIPp does not finish or fails the scenario, with its log and messages.
    pub fn wait_passed(&mut self) -> Result<()> {
        let status = self.process.wait_timeout(Duration::from_secs(10))?;
        if status.success() {
            return Ok(());
        }
        Err(Error::Peer {
            peer: "sipp".to_owned(),
            message: format!(
                "failed the scenario ({status})\n{}\n{}",
                self.process.log_tail(20),
                self.log()
            ),
        })
    }
}
