//! Small local harness for the real-peer tests: free ports, peers started as
//! child processes bounded in time and killed by pid on drop, event waits.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use sip::{EndReason, Event};
use tokio::sync::mpsc::UnboundedReceiver;

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A UDP port free right now on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    init_tracing();
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on UDP `127.0.0.1:port` (our bind fails),
/// at most 5 s.
pub async fn wait_udp_bound(port: u16) {
    for _ in 0..500 {
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nothing bound UDP port {port} within 5 s");
}

/// `tests/peers/sip/` of the workspace.
pub fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/sip")
}

/// A scratch directory for one test, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("jsg-sip-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A child process killed (by its pid, through tokio's `kill_on_drop`) when
/// dropped; its stderr goes to a log file printed on failure.
pub struct Peer {
    pub name: &'static str,
    pub child: tokio::process::Child,
    pub log: PathBuf,
}

impl Peer {
    pub fn spawn(
        name: &'static str,
        program: &str,
        args: &[String],
        dir: &std::path::Path,
    ) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = tokio::process::Command::new(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{program} must be installed (scripts/install-deps): {e}"));
        Self { name, child, log }
    }

    /// Waits for the exit status, at most `limit`; kills it after that.
    pub async fn wait(&mut self, limit: Duration) -> Option<i32> {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => {
                let _ = self.child.start_kill();
                None
            }
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIPp named `name` running `scenario` on `port` (see [`sipp_args`]).
    pub fn sipp(
        name: &'static str,
        scratch: &Scratch,
        scenario: &str,
        (port, media_port): (u16, u16),
        extra: &[&str],
    ) -> Self {
        Self::spawn(
            name,
            "sipp",
            &sipp_args(scenario, port, media_port, extra),
            &scratch.0,
        )
    }

    /// Kamailio with the configuration `cfg` (written to `kamailio.cfg` of
    /// `scratch`, runtime files below it), one worker, in the foreground, logging
    /// to stderr, killed by `timeout` after 60 s.
    pub fn kamailio(scratch: &Scratch, cfg: &str) -> Self {
        let cfg_path = scratch.0.join("kamailio.cfg");
        std::fs::write(&cfg_path, cfg).unwrap();
        let run_dir = scratch.0.join("run");
        std::fs::create_dir_all(&run_dir).unwrap();
        // A Kamailio restarted in the same scratch refuses to start while the pid in
        // the previous one's pid file still exists (an exiting or unreaped process).
        let pid_file = scratch.0.join("kamailio.pid");
        let _ = std::fs::remove_file(&pid_file);
        Self::spawn(
            "kamailio",
            "timeout",
            &[
                "60".into(),
                "kamailio".into(),
                "-f".into(),
                cfg_path.display().to_string(),
                "-DD".into(),
                "-E".into(),
                "-n".into(),
                "1".into(),
                "-Y".into(),
                run_dir.display().to_string(),
                "-P".into(),
                pid_file.display().to_string(),
            ],
            &scratch.0,
        )
    }

    /// Waits (at most `limit`) for the peer to exit with status 0, as SIPp does when
    /// its scenario passed; panics with its log otherwise.
    pub async fn expect_success(&mut self, limit: Duration) {
        let code = self.wait(limit).await;
        assert_eq!(code, Some(0), "{} failed:\n{}", self.name, self.log_text());
    }
}

/// SIPp's arguments: `scenario` of [`peers_dir`] on `127.0.0.1:port`, media on
/// `media_port`, one call, failing after 30 s; `extra` appended.
pub fn sipp_args(scenario: &str, port: u16, media_port: u16, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "-sf".into(),
        peers_dir().join(scenario).display().to_string(),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
        "-mi".into(),
        "127.0.0.1".into(),
        "-mp".into(),
        media_port.to_string(),
        "-m".into(),
        "1".into(),
        "-timeout".into(),
        "30s".into(),
        "-timeout_error".into(),
        "-nostdin".into(),
        "-trace_err".into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

impl Drop for Peer {
    /// SIGTERM first (`timeout` forwards it to the peer, and Kamailio's main
    /// process stops its children on it), then SIGKILL by pid after 1 s.
    fn drop(&mut self) {
        if let (Ok(None), Some(pid)) = (self.child.try_wait(), self.child.id()) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            for _ in 0..100 {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.start_kill();
        }
    }
}

/// The next event, at most `limit` away.
pub async fn next_event(rx: &mut UnboundedReceiver<Event>, limit: Duration) -> Event {
    tokio::time::timeout(limit, rx.recv())
        .await
        .expect("timed out waiting for a SIP event")
        .expect("event stream closed")
}

/// Events until `pred` matches; panics after `limit`.
pub async fn wait_for(
    rx: &mut UnboundedReceiver<Event>,
    limit: Duration,
    mut pred: impl FnMut(&Event) -> bool,
) -> Event {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let e = next_event(rx, left).await;
        if pred(&e) {
            return e;
        }
    }
}

/// Events until `Ended`, at most 10 s away.
pub async fn wait_ended(rx: &mut UnboundedReceiver<Event>) -> Event {
    wait_for(rx, Duration::from_secs(10), |e| {
        matches!(e, Event::Ended { .. })
    })
    .await
}

/// [`wait_ended`], checking the call ended for `want`.
pub async fn expect_ended(rx: &mut UnboundedReceiver<Event>, want: EndReason) {
    match wait_ended(rx).await {
        Event::Ended { reason, .. } => assert_eq!(reason, want),
        _ => unreachable!("wait_ended returns Ended"),
    }
}

/// Events until `Answered` or `Ended`, at most 10 s away.
pub async fn wait_answered_or_ended(rx: &mut UnboundedReceiver<Event>) -> Event {
    wait_for(rx, Duration::from_secs(10), |e| {
        matches!(e, Event::Answered { .. } | Event::Ended { .. })
    })
    .await
}

/// Events until a `Registration`, at most 10 s away.
pub async fn wait_registration(rx: &mut UnboundedReceiver<Event>) -> Event {
    wait_for(rx, Duration::from_secs(10), |e| {
        matches!(e, Event::Registration { .. })
    })
    .await
}

/// A `200 OK` to `request`, its Via, From, To, Call-ID and CSeq copied.
pub fn ok_response(request: &str) -> String {
    let mut resp = String::from("SIP/2.0 200 OK\r\n");
    for l in request.lines() {
        let lower = l.to_ascii_lowercase();
        if ["via:", "from:", "to:", "call-id:", "cseq:"]
            .iter()
            .any(|h| lower.starts_with(h))
        {
            resp.push_str(l);
            resp.push_str("\r\n");
        }
    }
    resp.push_str("Content-Length: 0\r\n\r\n");
    resp
}

pub fn loopback_config(trunk_port: u16) -> sip::Config {
    let mut config = sip::Config::default();
    config.bind("127.0.0.1:0".parse().unwrap()).trunk(
        sip::TrunkConfig::new("peer", "127.0.0.1")
            .port(Some(trunk_port))
            .allowed_sources(vec![sip::IpNet::parse("127.0.0.0/8").unwrap()])
            .clone(),
    );
    config
}
