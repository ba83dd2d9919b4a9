//! Test bed: starts real third-party peers inside a loopback-only namespace.
//!
//! Everything here follows `shared/TESTBED.md`: peers are real programs (Prosody, the
//! libwebrtc client, later SIPp, baresip, Kamailio and the gateway binary), each
//! started as a [`Process`] that is bounded in time by `timeout(1)` and killed by pid
//! (its whole process group) when the test ends, with its output in a log file under
//! a per-test [`Scratch`] directory that is kept when the test fails. Ports come from
//! [`ports::free_port`], so tests run in parallel.
//!
//! Peers: [`Prosody`] (the XMPP server, with our component's port) or [`Ejabberd`]
//! (the second server the gateway supports; both implement [`XmppServer`], which is
//! what the clients and the gateway take), [`WebrtcClient`]
//! (StanzaJS + libwebrtc behaving like Conversations, in `tests/peers/webrtc/`) and
//! [`Gateway`] (our built binary, configured from `deploy/testbed.toml`). Other peers
//! (SIPp, baresip, Kamailio, libnice) are started with [`ProcessBuilder`] directly.
//! [`Tshark`] captures on `lo` and decodes what went over the wire (SDP, RFC 4733).
//!
//! Every test that starts a peer first calls [`Namespace::require_loopback_only`]:
//! the suite runs inside `unshare --net` (see `scripts/test-all`), where `lo` is the
//! only interface. To run one test by hand (as root):
//!
//! ```text
//! unshare --net -- bash -c 'ip link set lo up; cargo test -p jsg-tests --test testbed_call'
//! ```
//!
//! A two-party call through Prosody:
//!
//! ```no_run
//! use std::time::Duration;
//! use testbed::{Namespace, Prosody, Scratch, WebrtcClient, WebrtcConfig};
//!
//! # fn main() -> testbed::Result<()> {
//! Namespace::require_loopback_only();
//! let scratch = Scratch::new("example")?;
//! let mut prosody = Prosody::start_default(&scratch)?;
//! prosody.add_contacts(("alice", "pw-a"), ("bob", "pw-b"))?;
//! let mut alice = WebrtcClient::start(&scratch, &prosody, &WebrtcConfig::new("alice@localhost", "pw-a"))?;
//! let mut bob = WebrtcClient::start(&scratch, &prosody, &{
//!     let mut c = WebrtcConfig::new("bob@localhost", "pw-b");
//!     c.tone_hz = 660.0;
//!     c
//! })?;
//! alice.call("bob@localhost", true)?;
//! bob.wait_for("track", Duration::from_secs(20))?;
//! let heard = bob.audio(Duration::from_secs(1))?;
//! assert!((heard.frequency_hz - 440.0).abs() < 8.8);
//! alice.hangup("success")?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod ejabberd;
mod error;
mod gateway;
mod namespace;
pub mod paths;
pub mod ports;
mod process;
mod prosody;
pub mod recording;
mod scratch;
mod server;
mod sipp;
mod tshark;
pub mod webrtc;

pub use ejabberd::{Ejabberd, EjabberdConfig};
pub use error::{Error, Result};
pub use gateway::{env_name, Gateway, GatewayConfig, MEDIA_PORTS};
pub use namespace::{Namespace, HOW_TO_RUN};
pub use process::{log_tail, run_bounded, Process, ProcessBuilder, Stdout};
pub use prosody::{Prosody, ProsodyConfig};
pub use scratch::Scratch;
pub use server::XmppServer;
pub use sipp::Sipp;
pub use tshark::{RtpEvent, RtpPacket, SipSdp, Tshark};
pub use webrtc::{
    AudioReport, Candidates, Engine, HeardDigit, OnPropose, WebrtcClient, WebrtcConfig,
};
