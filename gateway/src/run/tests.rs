//! [`run`] end to end against a scripted XMPP server on 127.0.0.1: handshake with the
//! configured secret, disco, a JMI propose answered with proceed (and a receipt) and
//! an INVITE to a scripted SIP trunk on 127.0.0.1, a session-initiate acknowledged then
//! terminated with the reason mapped from the trunk's 486 (INTEROP.md E.6), and a
//! graceful shutdown that closes the stream. Every wait is bounded.

use std::path::Path;
use std::time::Duration;

use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::timeout;

use super::run;
use crate::config::Config;

const LIMIT: Duration = Duration::from_secs(10);
const STREAM_ID: &str = "run-test-1";
/// SHA-1 of `STREAM_ID` followed by the secret `run-secret` (XEP-0114 §3).
const HANDSHAKE: &str = "0bd4bd168815eb54195fa1c73bda01f74ace423d";
const U: &str = "alice@example.org/Conversations.x1";
const N: &str = "+15551234567@gw.example.com";
const NR: &str = "+15551234567@gw.example.com/gw";
/// A well-formed sha-256 fingerprint (the test never runs DTLS).
const FP: &str = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

fn config(port: u16, trunk_port: u16) -> Config {
    let text = format!(
        r#"
        [xmpp]
        server = "127.0.0.1"
        port = {port}
        domain = "gw.example.com"
        secret = "run-secret"
        reconnect_backoff_initial = "50ms"
        reconnect_backoff_max = "200ms"
        [calls]
        drain_timeout = "2s"
        [sip]
        bind_address = "127.0.0.1"
        port = 0
        [[sip.trunks]]
        name = "t"
        host = "127.0.0.1"
        port = {trunk_port}
        [media]
        bind_addresses = ["127.0.0.1"]
        [routing]
        allowed_callers = ["example.org"]
        [[routing.routes]]
        prefix = "+"
        trunks = ["t"]
        "#
    );
    Config::parse(&text, Path::new("run-test.toml"), Vec::new()).unwrap()
}

/// The server side of one component connection.
struct Server {
    tcp: TcpStream,
    acc: String,
}

impl Server {
    async fn accept(listener: &TcpListener) -> Self {
        let (tcp, _) = timeout(LIMIT, listener.accept())
            .await
            .expect("connected in time")
            .unwrap();
        let mut s = Self {
            tcp,
            acc: String::new(),
        };
        let header = s.read_until("'>", "\">").await;
        assert!(header.contains("jabber:component:accept"), "{header}");
        assert!(header.contains("gw.example.com"), "{header}");
        s.write(&format!(
            "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
             xmlns='jabber:component:accept' from='gw.example.com' id='{STREAM_ID}'>"
        ))
        .await;
        let handshake = s.read_until("</handshake>", "</handshake>").await;
        assert!(handshake.contains(HANDSHAKE), "wrong handshake {handshake}");
        s.write("<handshake/>").await;
        s
    }

    async fn write(&mut self, text: &str) {
        self.tcp.write_all(text.as_bytes()).await.unwrap();
    }

    /// Reads until `a` or `b` has arrived; returns the text up to and including it.
    async fn read_until(&mut self, a: &str, b: &str) -> String {
        let mut buf = [0u8; 8192];
        loop {
            let found = [a, b]
                .iter()
                .filter_map(|p| self.acc.find(p).map(|i| i + p.len()))
                .min();
            if let Some(end) = found {
                let rest = self.acc.split_off(end);
                return std::mem::replace(&mut self.acc, rest);
            }
            let n = timeout(LIMIT, self.tcp.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no {a:?} in time; got {:?}", self.acc))
                .unwrap();
            assert!(
                n > 0,
                "gateway closed while waiting for {a:?}; got {:?}",
                self.acc
            );
            self.acc.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
    }

    /// The next complete top-level stanza.
    async fn stanza(&mut self) -> Element {
        loop {
            if let Some(end) = stanza_end(&self.acc) {
                let rest = self.acc.split_off(end);
                let text = std::mem::replace(&mut self.acc, rest);
                return parse_stanza(text.trim());
            }
            let mut buf = [0u8; 8192];
            let n = timeout(LIMIT, self.tcp.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no stanza in time; got {:?}", self.acc))
                .unwrap();
            assert!(n > 0, "gateway closed; got {:?}", self.acc);
            self.acc.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
    }

    /// Skips stanzas until one satisfies `want` (e.g. skips pings and presence).
    async fn stanza_where(&mut self, want: impl Fn(&Element) -> bool) -> Element {
        for _ in 0..50 {
            let s = self.stanza().await;
            if want(&s) {
                return s;
            }
        }
        panic!("no wanted stanza among 50");
    }
}

/// Byte offset just after the first complete element of `text`, if there is one.
fn stanza_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(off) = text[i..].find('<') {
        let start = i + off;
        let end = start + text[start..].find('>')?;
        if bytes[start + 1] == b'/' {
            depth = depth.checked_sub(1)?;
        } else if bytes[end - 1] != b'/' {
            depth += 1;
        }
        i = end + 1;
        if depth == 0 {
            return Some(i);
        }
    }
    None
}

/// Parses a stanza written inside the stream (its namespace may be inherited).
fn parse_stanza(text: &str) -> Element {
    let with_ns = if text.contains("xmlns='jabber:component:accept'")
        || text.contains("xmlns=\"jabber:component:accept\"")
    {
        text.to_owned()
    } else {
        let name_end = text.find([' ', '>', '/']).unwrap();
        format!(
            "{} xmlns='jabber:component:accept'{}",
            &text[..name_end],
            &text[name_end..]
        )
    };
    with_ns.parse().unwrap_or_else(|e| panic!("{e}: {with_ns}"))
}

/// A SIP trunk that answers every INVITE with 486 Busy Here; returns the Request-URI.
async fn busy_trunk(sock: UdpSocket) -> String {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, from) = timeout(LIMIT, sock.recv_from(&mut buf))
            .await
            .expect("an INVITE in time")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if !text.starts_with("INVITE ") {
            continue;
        }
        let mut resp = String::from("SIP/2.0 486 Busy Here\r\n");
        for line in text.lines() {
            let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
            match name.as_str() {
                "via" | "from" | "call-id" | "cseq" => resp.push_str(&format!("{line}\r\n")),
                "to" => resp.push_str(&format!("{line};tag=busy1\r\n")),
                _ => {}
            }
        }
        resp.push_str("Content-Length: 0\r\n\r\n");
        sock.send_to(resp.as_bytes(), from).await.unwrap();
        return text.lines().next().unwrap_or_default().to_owned();
    }
}

fn is_iq(s: &Element, kind: &str, id: &str) -> bool {
    s.name() == "iq" && s.attr("type") == Some(kind) && s.attr("id") == Some(id)
}

#[tokio::test]
async fn answers_disco_proposes_and_initiates_then_shuts_down() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let trunk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let trunk_port = trunk.local_addr().unwrap().port();
    let trunk = tokio::spawn(busy_trunk(trunk));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let gateway = tokio::spawn(run(config(port, trunk_port), async {
        let _ = stop_rx.await;
    }));
    let mut server = Server::accept(&listener).await;

    // disco#info of a number JID: the call features of INTEROP.md E.1.
    server
        .write(&format!(
            "<iq type='get' id='d1' from='{U}' to='{N}'>\
             <query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        ))
        .await;
    let info = server.stanza_where(|s| is_iq(s, "result", "d1")).await;
    let query = info.children().next().expect("a query");
    let features: Vec<&str> = query
        .children()
        .filter(|c| c.name() == "feature")
        .filter_map(|c| c.attr("var"))
        .collect();
    assert!(features.contains(&"urn:ietf:rfc:3264"), "{features:?}");
    assert!(
        features.contains(&"urn:xmpp:jingle-message:0"),
        "{features:?}"
    );

    // JMI propose → proceed from N/gw to the proposer's full JID.
    server
        .write(&format!(
            "<message type='chat' id='jm-propose-S' from='{U}' to='{N}'>\
             <propose xmlns='urn:xmpp:jingle-message:0' id='S'>\
             <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>\
             <request xmlns='urn:xmpp:receipts'/><store xmlns='urn:xmpp:hints'/></message>"
        ))
        .await;
    let proceed = server
        .stanza_where(|s| s.name() == "message" && s.children().any(|c| c.name() == "proceed"))
        .await;
    assert_eq!(proceed.attr("from"), Some(NR));
    assert_eq!(proceed.attr("to"), Some(U));

    // In parallel, the INVITE for the number goes to the trunk, which answers 486.
    let request_line = timeout(LIMIT, trunk)
        .await
        .expect("INVITE in time")
        .unwrap();
    assert!(
        request_line.starts_with("INVITE sip:+15551234567@127.0.0.1"),
        "{request_line}"
    );

    // session-initiate → acknowledged, then session-terminate with the mapped reason.
    server
        .write(&format!(
            "<iq type='set' id='i1' from='{U}' to='{NR}'>\
             <jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='S' initiator='{U}'>\
             <content creator='initiator' name='0'>\
             <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>\
             <payload-type id='0' name='PCMU' clockrate='8000'/><rtcp-mux/></description>\
             <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='uf' pwd='pwpwpwpwpwpwpwpwpwpwpw'>\
             <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>{FP}</fingerprint>\
             </transport></content></jingle></iq>"
        ))
        .await;
    let ack = server
        .stanza_where(|s| s.name() == "iq" && s.attr("id") == Some("i1"))
        .await;
    assert_eq!(ack.attr("type"), Some("result"));
    let terminate = server
        .stanza_where(|s| s.name() == "iq" && s.attr("type") == Some("set"))
        .await;
    let jingle = terminate.children().next().expect("a jingle");
    assert_eq!(jingle.attr("action"), Some("session-terminate"));
    let text: String = jingle
        .children()
        .find(|c| c.name() == "reason")
        .and_then(|r| r.children().find(|c| c.name() == "text"))
        .map(Element::text)
        .unwrap_or_default();
    assert_eq!(text, "486 Busy Here");
    let condition = jingle
        .children()
        .find(|c| c.name() == "reason")
        .and_then(|r| r.children().find(|c| c.name() != "text"))
        .map(|c| c.name().to_owned());
    assert_eq!(condition.as_deref(), Some("busy"));
    let id = terminate.attr("id").unwrap().to_owned();
    server
        .write(&format!(
            "<iq type='result' id='{id}' from='{U}' to='{NR}'/>"
        ))
        .await;

    // Graceful shutdown closes the stream, and run returns Ok.
    stop_tx.send(()).unwrap();
    server
        .read_until("</stream:stream>", "</stream:stream>")
        .await;
    server.write("</stream:stream>").await;
    let result = timeout(LIMIT, gateway)
        .await
        .expect("run returned in time")
        .unwrap();
    assert_eq!(result, Ok(()));
}

#[tokio::test]
async fn shutdown_while_the_server_is_unreachable_returns_promptly() {
    // A port with nothing listening: the driver keeps backing off.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let gateway = tokio::spawn(run(config(port, 9), async {
        let _ = stop_rx.await;
    }));
    tokio::task::yield_now().await;
    stop_tx.send(()).unwrap();
    let result = timeout(LIMIT, gateway)
        .await
        .expect("run returned in time")
        .unwrap();
    assert_eq!(result, Ok(()));
}
