//! The one network rule: tests run in a network namespace that holds only `lo`.

use std::fs;
use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

/// How to run one test by hand inside a loopback-only namespace (as root).
pub const HOW_TO_RUN: &str = "run the suite with scripts/test-all, or one test by hand with\n  \
     unshare --net -- bash -c 'ip link set lo up; cargo test -p jsg-tests --test NAME'";

/// The network namespace the test runs in.
///
/// Inside it, 127.0.0.1 and ::1 are the only addresses, so no peer (libwebrtc,
/// libnice, the gateway) can gather or probe anything else. See `shared/TESTBED.md`,
/// "The one network rule".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// Interface names from `/proc/self/net/dev`.
    pub interfaces: Vec<String>,
    /// Whether `lo` is administratively up.
    pub lo_up: bool,
}

impl Namespace {
    /// Reads the current namespace's interfaces from `/proc/self/net/dev` (not
    /// `/sys/class/net`, which shows the namespace that mounted `/sys`), and checks
    /// that `lo` is up by sending a datagram to ourselves on 127.0.0.1.
    ///
    /// # Errors
    /// [`crate::Error::Io`] if `/proc/self/net/dev` cannot be read.
    pub fn current() -> crate::Result<Self> {
        let dev = fs::read_to_string("/proc/self/net/dev")
            .map_err(|e| crate::Error::io("read /proc/self/net/dev", e))?;
        // two header lines, then "  NAME: counters…"
        let mut interfaces: Vec<String> = dev
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        interfaces.sort();
        Ok(Self {
            interfaces,
            lo_up: loopback_works(),
        })
    }

    /// Whether this namespace holds only `lo`, and `lo` is up.
    #[must_use]
    pub fn is_loopback_only(&self) -> bool {
        self.interfaces == ["lo"] && self.lo_up
    }

    /// Panics unless the test runs in a namespace whose only interface is `lo` (up).
    ///
    /// Call it first in every test that starts a real peer.
    ///
    /// # Panics
    /// Outside such a namespace, with a message saying how to run the test
    /// ([`HOW_TO_RUN`]).
    pub fn require_loopback_only() {
        let ns = match Self::current() {
            Ok(ns) => ns,
            Err(e) => panic!("cannot inspect the network namespace ({e}); {HOW_TO_RUN}"),
        };
        assert!(
            ns.is_loopback_only(),
            "this test starts real peers and must run in a network namespace holding only `lo` \
             (found interfaces {:?}, lo up: {}); {HOW_TO_RUN}",
            ns.interfaces,
            ns.lo_up
        );
    }
}

/// Whether a datagram sent to ourselves on 127.0.0.1 arrives (false when `lo` is down).
fn loopback_works() -> bool {
    let Ok(sock) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) else {
        return false;
    };
    let Ok(addr) = sock.local_addr() else {
        return false;
    };
    if sock
        .set_read_timeout(Some(Duration::from_millis(500)))
        .is_err()
        || sock.send_to(b"lo?", addr).is_err()
    {
        return false;
    }
    let mut buf = [0u8; 8];
    matches!(sock.recv_from(&mut buf), Ok((3, from)) if from == addr)
}
