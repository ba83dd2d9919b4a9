//! The driver against a tiny component-protocol server on 127.0.0.1:0.

use super::*;
use tokio::net::TcpListener;
use tokio::time::timeout;

const SERVER_HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' from='gw.localhost' id='abc123'>";
/// sha1("abc123" + "s3cr3t"), computed with sha1sum(1).
const GOOD_HANDSHAKE: &str = "<handshake>49fc1ea83a54123ae5a273341bed522fe7d4b91c</handshake>";
/// Bound on every wait, so a broken driver fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(10);

fn config(port: u16, secret: &str) -> DriverConfig {
    let mut stream = StreamConfig::new("gw.localhost", secret);
    stream.ping_interval(Duration::from_secs(3600));
    let mut c = DriverConfig::new("127.0.0.1", port, stream);
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(100);
    c
}

/// Reads from `s` into `acc` until `acc` contains `pat`; returns what came
/// before and including it, keeping the rest in `acc`.
async fn read_until(s: &mut TcpStream, acc: &mut String, pat: &str) -> String {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(i) = acc.find(pat) {
            let rest = acc.split_off(i + pat.len());
            return std::mem::replace(acc, rest);
        }
        let n = timeout(LIMIT, s.read(&mut buf))
            .await
            .expect("client wrote in time")
            .expect("read");
        assert!(
            n > 0,
            "client closed while waiting for {pat:?}; got {acc:?}"
        );
        acc.push_str(std::str::from_utf8(&buf[..n]).expect("utf-8"));
    }
}

/// Accepts one connection and runs the handshake; with `accept` false the
/// server answers `<not-authorized/>` when the hash is not the one of
/// `s3cr3t`, as Prosody does.
async fn accept(listener: &TcpListener) -> (TcpStream, String, bool) {
    let (mut s, _) = timeout(LIMIT, listener.accept())
        .await
        .expect("driver connected in time")
        .expect("accept");
    let mut acc = String::new();
    let header = read_until(&mut s, &mut acc, "'>").await;
    assert!(header.contains("<stream:stream"), "{header}");
    assert!(
        header.contains("xmlns='jabber:component:accept'"),
        "{header}"
    );
    assert!(header.contains("to='gw.localhost'"), "{header}");
    s.write_all(SERVER_HEADER).await.unwrap();
    let hs = read_until(&mut s, &mut acc, "</handshake>").await;
    let ok = hs == GOOD_HANDSHAKE;
    if ok {
        s.write_all(b"<handshake/>").await.unwrap();
    } else {
        s.write_all(b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Given token does not match calculated token</text></stream:error></stream:stream>")
            .await
            .unwrap();
    }
    (s, acc, ok)
}

async fn next(rx: &mut mpsc::Receiver<XmppEvent>) -> XmppEvent {
    timeout(LIMIT, rx.recv())
        .await
        .expect("event in time")
        .expect("driver alive")
}

#[tokio::test]
async fn handshake_stanzas_and_reconnect_after_server_close() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (handle, mut rx, task) = spawn(config(port, "s3cr3t"));

    let (mut s, mut acc, ok) = accept(&listener).await;
    assert!(ok);
    assert_eq!(next(&mut rx).await, XmppEvent::Connected);

    // Server → driver.
    s.write_all(b"<message from='alice@localhost/x' to='+15551230000@gw.localhost' id='m1'/>")
        .await
        .unwrap();
    let XmppEvent::Stanza(m) = next(&mut rx).await else {
        panic!("expected a stanza")
    };
    assert_eq!(m.attr("id"), Some("m1"));

    // Driver → server.
    let out: Element = "<presence xmlns='jabber:component:accept' from='+15551230000@gw.localhost/gw' to='alice@localhost'/>"
        .parse()
        .unwrap();
    handle.send(out).await.unwrap();
    let got = read_until(&mut s, &mut acc, "/>").await;
    assert!(got.starts_with("<presence"), "{got}");
    assert!(got.contains("to='alice@localhost'"), "{got}");

    // The server goes away (e.g. a restart): the driver reconnects.
    s.write_all(b"</stream:stream>").await.unwrap();
    drop(s);
    assert_eq!(
        next(&mut rx).await,
        XmppEvent::Disconnected {
            reason: DisconnectReason::Stream(XmppError::StreamClosed),
            retry_in: Duration::from_millis(20),
        }
    );
    let (s2, _, ok) = accept(&listener).await;
    assert!(ok);
    assert_eq!(next(&mut rx).await, XmppEvent::Connected);

    handle.shutdown().await.unwrap();
    // A server that just drops the connection also ends the close.
    drop(s2);
    timeout(LIMIT, task).await.expect("task ends").unwrap();
}

#[tokio::test]
async fn wrong_secret_is_reported_every_attempt_at_the_backoff_cap() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (handle, mut rx, task) = spawn(config(port, "not-the-secret"));
    for _ in 0..3 {
        let (_s, _, ok) = accept(&listener).await;
        assert!(!ok);
        assert_eq!(
            next(&mut rx).await,
            XmppEvent::Disconnected {
                reason: DisconnectReason::Stream(XmppError::SecretRejected),
                retry_in: Duration::from_millis(100),
            }
        );
    }
    drop(handle);
    drop(rx);
    timeout(LIMIT, task).await.expect("task ends").unwrap();
}

#[tokio::test]
async fn pings_are_sent_and_a_silent_server_is_dropped() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cfg = config(port, "s3cr3t");
    cfg.stream
        .ping_interval(Duration::from_millis(50))
        .ping_timeout(Duration::from_millis(200));
    let (handle, mut rx, task) = spawn(cfg);
    let (mut s, mut acc, _) = accept(&listener).await;
    assert_eq!(next(&mut rx).await, XmppEvent::Connected);

    // Answer two pings: the stream stays up.
    for n in 1..=2 {
        let ping = read_until(&mut s, &mut acc, "</iq>").await;
        assert!(ping.contains("<ping xmlns='urn:xmpp:ping'/>"), "{ping}");
        assert!(ping.contains("to='localhost'"), "{ping}");
        let id = format!("jsg-ping-{n}");
        assert!(ping.contains(&format!("id='{id}'")), "{ping}");
        s.write_all(
            format!("<iq type='result' id='{id}' from='localhost' to='gw.localhost'/>").as_bytes(),
        )
        .await
        .unwrap();
    }
    assert!(rx.try_recv().is_err(), "ping replies are not passed up");

    // Then stop answering.
    let _ = read_until(&mut s, &mut acc, "</iq>").await;
    assert_eq!(
        next(&mut rx).await,
        XmppEvent::Disconnected {
            reason: DisconnectReason::Stream(XmppError::PingTimeout(Duration::from_millis(200))),
            retry_in: Duration::from_millis(20),
        }
    );
    let (s2, _, _) = accept(&listener).await;
    assert_eq!(next(&mut rx).await, XmppEvent::Connected);
    handle.shutdown().await.unwrap();
    drop(s2);
    timeout(LIMIT, task).await.expect("task ends").unwrap();
}

#[tokio::test]
async fn refused_connections_back_off_exponentially_to_the_cap() {
    // A port with nobody listening.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let (handle, mut rx, task) = spawn(config(port, "s3cr3t"));
    let mut delays = Vec::new();
    for _ in 0..5 {
        match next(&mut rx).await {
            XmppEvent::Disconnected {
                reason: DisconnectReason::Io(_),
                retry_in,
            } => delays.push(retry_in.as_millis()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(delays, vec![20, 40, 80, 100, 100]);
    handle.shutdown().await.unwrap();
    timeout(LIMIT, task).await.expect("task ends").unwrap();
}

#[tokio::test]
async fn shutdown_closes_the_stream_cleanly() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (handle, mut rx, task) = spawn(config(port, "s3cr3t"));
    let (mut s, mut acc, _) = accept(&listener).await;
    assert_eq!(next(&mut rx).await, XmppEvent::Connected);
    handle.shutdown().await.unwrap();
    let _ = read_until(&mut s, &mut acc, "</stream:stream>").await;
    s.write_all(b"</stream:stream>").await.unwrap();
    timeout(LIMIT, task).await.expect("task ends").unwrap();
    // No reconnection after a shutdown.
    assert!(timeout(Duration::from_millis(200), listener.accept())
        .await
        .is_err());
}

#[test]
fn configs_come_from_the_xmpp_section() {
    let mut x = crate::config::Xmpp {
        domain: "gw.example.com".into(),
        port: 5999,
        ..crate::config::Xmpp::default()
    };
    x.reconnect_backoff_max = Duration::from_secs(7);
    let d = DriverConfig::from_config(&x);
    assert_eq!((d.host.as_str(), d.port), ("localhost", 5999));
    assert_eq!(d.backoff_max, Duration::from_secs(7));
    assert_eq!(d.stream.domain(), "gw.example.com");
    let c = xmpp::component::Component::new(component_config(&x));
    let p = c.presence("+15551230000", "alice@example.com");
    let caps = p.get_child("c", "http://jabber.org/protocol/caps").unwrap();
    assert_eq!(caps.attr("node"), Some("https://gw.example.com/caps"));
    assert_eq!(p.attr("from"), Some("+15551230000@gw.example.com/gw"));
}
