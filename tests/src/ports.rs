//! Free ports on loopback, so tests (and test binaries) can run in parallel.
//!
//! Ports are handed out from 20000..32000, below Linux's default ephemeral range
//! (32768..60999), so a port we hand out never collides with one the kernel picks for
//! an unbound socket (libwebrtc's candidates, client connections). Within one test
//! binary a port is handed out at most once; different binaries start at different
//! offsets (derived from the process id) and every port is checked by binding it.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::Mutex;

/// First port the allocator hands out.
pub const FIRST: u16 = 20000;
/// One past the last port the allocator hands out.
pub const END: u16 = 32000;

static NEXT: Mutex<Option<u16>> = Mutex::new(None);

/// Whether `port` can be bound for TCP and UDP on 127.0.0.1 (and on ::1 when the
/// namespace has IPv6 loopback).
#[must_use]
pub fn is_free(port: u16) -> bool {
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    if TcpListener::bind(v4).is_err() || UdpSocket::bind(v4).is_err() {
        return false;
    }
    let ipv6_usable = UdpSocket::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))).is_ok();
    !ipv6_usable || (TcpListener::bind(v6).is_ok() && UdpSocket::bind(v6).is_ok())
}

/// Returns the first port of `count` consecutive ports that are free for TCP and UDP
/// on loopback (for peers that take a range, such as an RTP port range).
///
/// # Panics
/// If the whole range 20000..32000 is exhausted (it cycles, so only if nearly every
/// port is in use).
#[must_use]
pub fn free_port_range(count: u16) -> u16 {
    assert!(
        count > 0 && count < 1000,
        "unreasonable port range size {count}"
    );
    let mut next = NEXT.lock().unwrap_or_else(|e| e.into_inner());
    let span = END - FIRST;
    let mut start = next.unwrap_or_else(|| FIRST + (std::process::id() % 97) as u16 * 100);
    for _ in 0..span {
        if start + count > END {
            start = FIRST;
        }
        if (start..start + count).all(is_free) {
            *next = Some(start + count);
            return start;
        }
        start += 1;
    }
    panic!("no free loopback port range of {count} in {FIRST}..{END}");
}

/// Returns a port that is free for TCP and UDP on 127.0.0.1 and ::1, and never
/// returned before by this process.
#[must_use]
pub fn free_port() -> u16 {
    free_port_range(1)
}

/// Whether some socket listens on TCP `port` (any address) in this network namespace,
/// from `/proc/self/net/tcp` and `tcp6`, without connecting to it.
#[must_use]
pub fn is_listening(port: u16) -> bool {
    const LISTEN: &str = "0A";
    ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
        .iter()
        .any(|file| {
            std::fs::read_to_string(file).is_ok_and(|table| {
                table.lines().skip(1).any(|line| {
                    let mut cols = line.split_whitespace();
                    let local = cols.nth(1);
                    let state = cols.nth(1);
                    state == Some(LISTEN)
                        && local
                            .and_then(|l| l.rsplit(':').next())
                            .and_then(|p| u16::from_str_radix(p, 16).ok())
                            == Some(port)
                })
            })
        })
}

/// Whether some socket is bound to UDP `port` (any address) in this network namespace,
/// from `/proc/self/net/udp` and `udp6`, without sending a datagram.
#[must_use]
pub fn is_udp_bound(port: u16) -> bool {
    ["/proc/self/net/udp", "/proc/self/net/udp6"]
        .iter()
        .any(|file| {
            std::fs::read_to_string(file).is_ok_and(|table| {
                table.lines().skip(1).any(|line| {
                    line.split_whitespace()
                        .nth(1)
                        .and_then(|l| l.rsplit(':').next())
                        .and_then(|p| u16::from_str_radix(p, 16).ok())
                        == Some(port)
                })
            })
        })
}
