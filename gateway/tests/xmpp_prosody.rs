//! The component stream, responder and driver against a real Prosody.
//!
//! Prosody runs with its own config and data in a scratch directory, on free
//! loopback ports, bounded in time and killed by pid. A raw c2s client
//! subscribes to a number JID and fetches its disco#info through Prosody; then
//! Prosody is killed and restarted and the driver reconnects.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use gateway::xmpp_driver::{self, DisconnectReason, DriverConfig, XmppEvent, XmppHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;
use xmpp::component::{Action, Component, Config as ComponentConfig};
use xmpp::error::Error as XmppError;
use xmpp::stream::Config as StreamConfig;

const SECRET: &str = "prosody-test-secret";
const COMPONENT: &str = "gw.localhost";
const NUMBER: &str = "+15551230000@gw.localhost";
/// Bound on each wait.
const LIMIT: Duration = Duration::from_secs(15);
/// Bound on each Prosody run.
const PROSODY_LIMIT: Duration = Duration::from_secs(90);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A Prosody process with its own config and data directory.
struct Prosody {
    dir: PathBuf,
    config: PathBuf,
    c2s: u16,
    component: u16,
    child: Option<Child>,
}

impl Prosody {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "jsg-gateway-xmpp-prosody-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).expect("scratch dir");
        let (c2s, component) = (free_port(), free_port());
        let d = dir.display();
        let config = dir.join("prosody.cfg.lua");
        std::fs::write(
            &config,
            format!(
                r#"run_as_root = true
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
log = {{ debug = "{d}/prosody.log" }}
plugin_paths = {{}}
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s} }}
c2s_direct_tls_ports = {{}}
s2s_ports = {{}}
component_ports = {{ {component} }}
component_interfaces = {{ "127.0.0.1" }}
http_ports = {{}}
https_ports = {{}}
modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping"; "presence"; "message"; "iq"; "posix" }}
modules_disabled = {{ "s2s"; "limits"; "tls" }}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"
VirtualHost "localhost"
Component "{COMPONENT}"
  component_secret = "{SECRET}"
"#
            ),
        )
        .expect("write config");
        Self {
            dir,
            config,
            c2s,
            component,
            child: None,
        }
    }

    fn start(&mut self) {
        self.kill();
        let child = Command::new("prosody")
            .arg("--config")
            .arg(&self.config)
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prosody is installed (scripts/apt-packages.txt)");
        // Bound the run: a watchdog kills this pid if the test hangs.
        let pid = child.id();
        std::thread::spawn(move || {
            std::thread::sleep(PROSODY_LIMIT);
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        });
        self.child = Some(child);
        let deadline = std::time::Instant::now() + LIMIT;
        for port in [self.c2s, self.component] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "prosody did not listen on {port}; log:\n{}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn register(&self, user: &str, password: &str) {
        let status = Command::new("timeout")
            .arg("20")
            .arg("prosodyctl")
            .arg("--config")
            .arg(&self.config)
            .args(["register", user, "localhost", password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("prosodyctl runs");
        assert!(status.success(), "prosodyctl register failed");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prosody.log")).unwrap_or_default()
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let mut err = std::io::stderr();
            let _ = writeln!(err, "--- prosody log (last lines, newest first) ---");
            for l in tail {
                let _ = writeln!(err, "{l}");
            }
        }
        remove_dir(&self.dir);
    }
}

fn remove_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

fn driver_config(port: u16, secret: &str) -> DriverConfig {
    let mut stream = StreamConfig::new(COMPONENT, secret);
    // Prosody's host `localhost` answers pings (mod_ping).
    stream
        .ping_to("localhost")
        .ping_interval(Duration::from_millis(100))
        .ping_timeout(Duration::from_millis(1500));
    let mut c = DriverConfig::new("127.0.0.1", port, stream);
    c.backoff_initial = Duration::from_millis(100);
    c.backoff_max = Duration::from_millis(400);
    c
}

/// Runs the responder on the driver's events, as `gateway::run` will;
/// forwards connection events to `state`.
fn serve(
    handle: XmppHandle,
    mut rx: mpsc::Receiver<XmppEvent>,
    state: mpsc::UnboundedSender<XmppEvent>,
) {
    let component = Component::new(ComponentConfig::new(COMPONENT));
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            match ev {
                XmppEvent::Stanza(el) => {
                    for action in component.handle_stanza(el) {
                        if let Action::Send(out) = action {
                            let _ = handle.send(out).await;
                        }
                    }
                }
                XmppEvent::StanzaDropped { head, .. } => {
                    for action in component.handle_dropped(head.as_ref()) {
                        if let Action::Send(out) = action {
                            let _ = handle.send(out).await;
                        }
                    }
                }
                other => {
                    let _ = state.send(other);
                }
            }
        }
    });
}

/// A minimal c2s client: plain SASL, bind, raw XML.
struct Client {
    tcp: TcpStream,
    acc: String,
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Client {
    async fn login(port: u16, user: &str, password: &str) -> Self {
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("c2s connect");
        let mut c = Self {
            tcp,
            acc: String::new(),
        };
        let header = "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
        c.write(header).await;
        c.read_until("</stream:features>").await;
        let token = base64(format!("\0{user}\0{password}").as_bytes());
        c.write(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
        ))
        .await;
        let r = c.read_until("xmpp-sasl'").await;
        let r = r + &c.read_until(">").await;
        assert!(r.contains("<success"), "sasl: {r}");
        c.write(header).await;
        c.read_until("</stream:features>").await;
        c.write("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>test</resource></bind></iq>")
            .await;
        let r = c.read_until("</iq>").await;
        assert!(r.contains("<jid>"), "bind: {r}");
        c.write("<presence/>").await;
        c
    }

    async fn write(&mut self, s: &str) {
        self.tcp.write_all(s.as_bytes()).await.expect("c2s write");
    }

    /// Reads until `pat`; returns everything up to and including it.
    async fn read_until(&mut self, pat: &str) -> String {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(i) = self.acc.find(pat) {
                let rest = self.acc.split_off(i + pat.len());
                return std::mem::replace(&mut self.acc, rest);
            }
            let n = timeout(LIMIT, self.tcp.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {pat:?}; have {:?}", self.acc))
                .expect("c2s read");
            assert!(n > 0, "server closed while waiting for {pat:?}");
            self.acc.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }

    /// Fetches disco#info of `NUMBER/gw` with `node`; returns everything read
    /// up to and including the result.
    async fn disco(&mut self, id: &str, node: Option<&str>) -> String {
        let node = node.map(|n| format!(" node='{n}'")).unwrap_or_default();
        self.write(&format!(
            "<iq type='get' id='{id}' to='{NUMBER}/gw'><query xmlns='http://jabber.org/protocol/disco#info'{node}/></iq>"
        ))
        .await;
        let mut all = String::new();
        loop {
            let chunk = self.read_until("</iq>").await;
            let found =
                chunk.contains(&format!("id='{id}'")) || chunk.contains(&format!("id=\"{id}\""));
            all.push_str(&chunk);
            if found {
                return all;
            }
        }
    }
}

async fn next_state(rx: &mut mpsc::UnboundedReceiver<XmppEvent>) -> XmppEvent {
    timeout(LIMIT, rx.recv())
        .await
        .expect("driver event in time")
        .expect("driver alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn component_against_prosody() {
    let mut prosody = Prosody::new();
    prosody.start();
    prosody.register("alice", "alicepw");

    // A wrong secret is reported as such.
    let (bad, mut bad_rx, bad_task) = xmpp_driver::spawn(driver_config(prosody.component, "wrong"));
    match timeout(LIMIT, bad_rx.recv())
        .await
        .expect("event")
        .expect("alive")
    {
        XmppEvent::Disconnected { reason, retry_in } => {
            assert_eq!(reason, DisconnectReason::Stream(XmppError::SecretRejected));
            assert_eq!(retry_in, Duration::from_millis(400));
        }
        other => panic!("{other:?}"),
    }
    bad.shutdown().await.unwrap();
    timeout(LIMIT, bad_task)
        .await
        .expect("bad driver ends")
        .unwrap();

    // The right secret connects; pings every 100 ms are answered.
    let (handle, rx, task) = xmpp_driver::spawn(driver_config(prosody.component, SECRET));
    let (state_tx, mut state) = mpsc::unbounded_channel();
    serve(handle.clone(), rx, state_tx);
    assert_eq!(next_state(&mut state).await, XmppEvent::Connected);

    // Subscribe to a number and get presence with caps, then disco#info.
    let mut alice = Client::login(prosody.c2s, "alice", "alicepw").await;
    alice
        .write(&format!("<presence type='subscribe' to='{NUMBER}'/>"))
        .await;
    let caps = alice.read_until("http://jabber.org/protocol/caps").await;
    let rest = alice.read_until("/>").await;
    let c = format!("{caps}{rest}");
    assert!(c.contains(&format!("{NUMBER}/gw")), "{c}");
    // Prosody writes attributes in any order: look at the whole <c/>.
    let c_el = &c[c.rfind("<c ").expect("a <c/> element")..];
    let ver = c_el
        .split("ver='")
        .nth(1)
        .or_else(|| c_el.split("ver=\"").nth(1))
        .and_then(|v| v.split(['\'', '"']).next())
        .expect("caps ver")
        .to_owned();
    let expected = Component::new(ComponentConfig::new(COMPONENT));
    assert_eq!(ver, expected.ver());
    let node = format!("https://{COMPONENT}/caps#{ver}");
    let info = alice.disco("d1", Some(&node)).await;
    for feature in [
        "urn:ietf:rfc:3264",
        "urn:xmpp:jingle-message:0",
        "urn:xmpp:jingle:apps:rtp:audio",
    ] {
        assert!(info.contains(feature), "{feature} missing: {info}");
    }
    assert!(
        info.contains("type='result'") || info.contains("type=\"result\""),
        "{info}"
    );

    // 1,000 bad stanzas through Prosody: unknown payloads, huge attributes,
    // deep nesting, invalid numbers. The stream stays up and answers.
    let huge = "x".repeat(8 * 1024);
    let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
    let mut batch = String::new();
    for i in 0..250 {
        batch.push_str(&format!(
            "<iq type='get' id='g{i}' to='{NUMBER}/gw'><query xmlns='urn:garbage:{i}'/></iq>\
             <iq type='set' id='h{i}' to='{NUMBER}/gw'><x xmlns='urn:x' a='{huge}'/></iq>\
             <message id='m{i}' to='{NUMBER}'>{deep}</message>\
             <presence type='subscribe' to='+0{i}@{COMPONENT}'/>"
        ));
    }
    alice.write(&batch).await;
    let info = alice.disco("d1b", None).await;
    assert!(info.contains("urn:xmpp:jingle:1"), "{info}");
    // Every bad IQ and every over-deep message got its error, in order,
    // before the disco result.
    assert_eq!(info.matches("<service-unavailable").count(), 500);
    assert_eq!(info.matches("<policy-violation").count(), 250);
    assert!(state.try_recv().is_err(), "the stream stayed up");

    // Idle for longer than the ping timeout: pings keep the stream up.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(state.try_recv().is_err(), "the stream stayed up");

    // Kill and restart Prosody: the driver reconnects within the cap.
    prosody.kill();
    match next_state(&mut state).await {
        XmppEvent::Disconnected { .. } => {}
        other => panic!("{other:?}"),
    }
    prosody.start();
    loop {
        match next_state(&mut state).await {
            XmppEvent::Connected => break,
            XmppEvent::Disconnected { retry_in, .. } => {
                assert!(retry_in <= Duration::from_millis(400));
            }
            other => panic!("{other:?}"),
        }
    }
    let mut alice = Client::login(prosody.c2s, "alice", "alicepw").await;
    let info = alice.disco("d2", None).await;
    assert!(info.contains("urn:xmpp:jingle:1"), "{info}");

    handle.shutdown().await.unwrap();
    timeout(LIMIT, task).await.expect("driver ends").unwrap();
}
