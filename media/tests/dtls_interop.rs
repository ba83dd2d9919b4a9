#![allow(clippy::disallowed_methods)] // real sockets and real peers run on real time
//! DTLS-SRTP handshakes between our `media::dtls::Dtls` and third-party DTLS 1.2
//! implementations over loopback UDP, in both roles: OpenSSL's `s_server` / `s_client` and
//! GnuTLS' `gnutls-serv` / `gnutls-cli` (the library Dino uses).
//! The keying material OpenSSL exports (`-keymatexport EXTRACTOR-dtls_srtp`) must equal
//! ours, and a wrong fingerprint must fail with the security error.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use media::cert::{Certificate, Fingerprint};
use media::dtls::{Dtls, DtlsConfig, DtlsEvent, DtlsRole, SrtpKeys};
use media::{Error, PeerMisbehaved};
use rand::SeedableRng;

/// Kills the peer by pid when the test ends, however it ends.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let st = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(st.success(), "openssl {args:?}");
}

/// An ECDSA P-256 identity for OpenSSL; returns (dir, fingerprint of its certificate).
fn peer_identity(name: &str) -> (PathBuf, Fingerprint) {
    let dir = std::env::temp_dir().join(format!("jsg-media-dtls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    openssl(
        &dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "key.pem",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "30",
            "-subj",
            "/CN=openssl-peer",
        ],
    );
    openssl(
        &dir,
        &[
            "x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der",
        ],
    );
    let der = std::fs::read(dir.join("cert.der")).unwrap();
    (dir, Fingerprint::of_der(&der))
}

/// Reads the peer's stdout on a thread and sends every line.
fn watch_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Reads the peer's stdout on a thread and sends the exported keying material (hex).
fn watch_keying_material(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            // OpenSSL: "Keying material: HEX"; GnuTLS: "- Key material: HEX".
            let line = line.trim().trim_start_matches("- ");
            if let Some(hex) = line
                .strip_prefix("Keying material: ")
                .or_else(|| line.strip_prefix("Key material: "))
            {
                let _ = tx.send(hex.trim().to_ascii_uppercase());
            }
        }
    });
    rx
}

/// Runs our endpoint on `sock` until it connects, fails, or 20 s pass.
fn run(
    dtls: &mut Dtls,
    sock: &UdpSocket,
    peer: Option<std::net::SocketAddr>,
) -> Result<SrtpKeys, Error> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut peer = peer;
    dtls.start(Instant::now())?;
    let mut buf = [0u8; 2048];
    loop {
        if let Some(p) = peer {
            while let Some(d) = dtls.poll_transmit() {
                sock.send_to(&d, p).unwrap();
            }
        }
        if let Some(DtlsEvent::Connected(keys)) = dtls.poll_event() {
            return Ok(keys);
        }
        let now = Instant::now();
        assert!(now < deadline, "handshake did not finish in 20 s");
        let wait = dtls.poll_timeout().map_or(Duration::from_millis(200), |t| {
            t.saturating_duration_since(now)
        });
        sock.set_read_timeout(Some(
            wait.clamp(Duration::from_millis(5), Duration::from_millis(500)),
        ))
        .unwrap();
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                peer = Some(from);
                dtls.handle_packet(Instant::now(), &buf[..n])?;
            }
            Err(_) => dtls.handle_timeout(Instant::now())?,
        }
    }
}

fn material(keys: &SrtpKeys, we_are_client: bool) -> String {
    let (c, s) = if we_are_client {
        (&keys.local, &keys.remote)
    } else {
        (&keys.remote, &keys.local)
    };
    [c.key(), s.key(), c.salt(), s.salt()]
        .concat()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

fn our_cert() -> Certificate {
    Certificate::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(99)).unwrap()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_s_server(dir: &Path, port: u16) -> (Peer, mpsc::Receiver<String>) {
    let mut child = Command::new("timeout")
        .args(["30", "openssl", "s_server", "-dtls1_2", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .args([
            "-cert", "cert.pem", "-key", "key.pem", "-verify", "1", "-naccept", "1",
        ])
        .args([
            "-use_srtp",
            "SRTP_AES128_CM_SHA1_80",
            "-keymatexport",
            "EXTRACTOR-dtls_srtp",
            "-keymatexportlen",
            "60",
        ])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server starts");
    let rx = watch_keying_material(&mut child);
    (Peer(child), rx)
}

#[test]
fn we_are_client_openssl_s_server() {
    let (dir, peer_fp) = peer_identity("srv");
    let port = free_udp_port();
    let (_peer, rx) = start_s_server(&dir, port);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let cert = our_cert();
    let mut dtls = Dtls::new(
        &DtlsConfig::default(),
        &cert,
        DtlsRole::Client,
        peer_fp,
        Instant::now(),
    )
    .unwrap();
    // s_server may not listen yet: the ClientHello retransmission timer covers it.
    let keys = run(&mut dtls, &sock, Some(([127, 0, 0, 1], port).into()))
        .expect("handshake with s_server");
    let theirs = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("s_server printed its keying material");
    assert_eq!(material(&keys, true), theirs);
}

#[test]
fn we_are_server_openssl_s_client() {
    let (dir, peer_fp) = peer_identity("cli");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let mut child = Command::new("timeout")
        .args(["30", "openssl", "s_client", "-dtls1_2", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-cert", "cert.pem", "-key", "key.pem"])
        .args([
            "-use_srtp",
            "SRTP_AES128_CM_SHA1_80",
            "-keymatexport",
            "EXTRACTOR-dtls_srtp",
            "-keymatexportlen",
            "60",
        ])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client starts");
    let rx = watch_keying_material(&mut child);
    let _peer = Peer(child);
    let cert = our_cert();
    let mut dtls = Dtls::new(
        &DtlsConfig::default(),
        &cert,
        DtlsRole::Server,
        peer_fp,
        Instant::now(),
    )
    .unwrap();
    let keys = run(&mut dtls, &sock, None).expect("handshake with s_client");
    let theirs = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("s_client printed its keying material");
    assert_eq!(material(&keys, false), theirs);
}

#[test]
fn openssl_peer_with_wrong_fingerprint_fails_with_security_error() {
    let (dir, _) = peer_identity("bad");
    let port = free_udp_port();
    let (_peer, _rx) = start_s_server(&dir, port);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let cert = our_cert();
    let mut dtls = Dtls::new(
        &DtlsConfig::default(),
        &cert,
        DtlsRole::Client,
        Fingerprint([7; 32]),
        Instant::now(),
    )
    .unwrap();
    let err = run(&mut dtls, &sock, Some(([127, 0, 0, 1], port).into())).unwrap_err();
    assert_eq!(
        err,
        Error::PeerMisbehaved(PeerMisbehaved::FingerprintMismatch)
    );
    assert!(err.is_security());
}

fn gnutls_args(cmd: &mut Command) {
    cmd.args(["--udp", "--x509certfile=cert.pem", "--x509keyfile=key.pem"])
        .args([
            "--srtp-profiles=SRTP_AES128_CM_HMAC_SHA1_80",
            "--keymatexport=EXTRACTOR-dtls_srtp",
            "--keymatexportsize=60",
        ]);
}

#[test]
fn we_are_server_gnutls_cli() {
    let (dir, peer_fp) = peer_identity("gcli");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let mut cmd = Command::new("timeout");
    cmd.args(["30", "gnutls-cli", "--insecure", "-p"])
        .arg(port.to_string());
    gnutls_args(&mut cmd);
    cmd.arg("127.0.0.1");
    let mut child = cmd
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gnutls-cli starts");
    let rx = watch_keying_material(&mut child);
    let _peer = Peer(child);
    let cert = our_cert();
    let mut dtls = Dtls::new(
        &DtlsConfig::default(),
        &cert,
        DtlsRole::Server,
        peer_fp,
        Instant::now(),
    )
    .unwrap();
    let keys = run(&mut dtls, &sock, None).expect("handshake with gnutls-cli");
    let theirs = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("gnutls-cli printed its keying material");
    assert_eq!(material(&keys, false), theirs);
}

#[test]
fn we_are_client_gnutls_serv() {
    let (dir, peer_fp) = peer_identity("gsrv");
    let port = free_udp_port();
    let mut cmd = Command::new("timeout");
    cmd.args(["30", "gnutls-serv", "--require-client-cert", "-p"])
        .arg(port.to_string());
    gnutls_args(&mut cmd);
    let mut child = cmd
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gnutls-serv starts");
    let rx = watch_lines(&mut child);
    let _peer = Peer(child);
    let cert = our_cert();
    let mut dtls = Dtls::new(
        &DtlsConfig::default(),
        &cert,
        DtlsRole::Client,
        peer_fp,
        Instant::now(),
    )
    .unwrap();
    let keys = run(&mut dtls, &sock_any(), Some(([127, 0, 0, 1], port).into()))
        .expect("handshake with gnutls-serv");
    assert_eq!(keys.profile, media::srtp::SrtpProfile::Aes128CmHmacSha1_80);
    // gnutls-serv prints neither exported keys nor handshake results (gnutls-cli does:
    // see `we_are_server_gnutls_cli`). Our Connected event means GnuTLS sent its Finished,
    // which it does only after accepting the client certificate it required.
    drop(rx);
}

fn sock_any() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}
