//! A sans-IO ICE agent: an [RFC 8445](https://www.rfc-editor.org/rfc/rfc8445) full agent
//! with [RFC 8838](https://www.rfc-editor.org/rfc/rfc8838) trickle, tolerant of libwebrtc's
//! renomination (NOMINATION 0xC001/0x0030), with [RFC 7675](https://www.rfc-editor.org/rfc/rfc7675)
//! consent freshness and ICE restart. It runs component 1 only (rtcp-mux).
//!
//! No sockets, no clock, no global RNG: `now` comes in on every call, randomness from
//! [`Config::rng_seed`], datagrams go out through [`Agent::poll_transmit`].
//!
//! ```no_run
//! use std::net::UdpSocket;
//! use std::time::Instant;
//! use ice::{Agent, Config, Event, Role};
//!
//! let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
//! let local = socket.local_addr().unwrap();
//! let mut cfg = Config::default();
//! cfg.rng_seed([7; 32]); // use OS entropy in production
//! let mut agent = Agent::new(cfg, Role::Controlled, Instant::now());
//! agent.add_local_host(Instant::now(), local).unwrap();
//! agent.set_remote_credentials(Instant::now(), "peerufrag", "peerpasswordpeerpassword").unwrap();
//! agent.add_remote_candidate(Instant::now(), "1 1 udp 2130706431 127.0.0.1 5000 typ host".parse().unwrap()).unwrap();
//! let mut buf = [0u8; 1500];
//! loop {
//!     while let Some(t) = agent.poll_transmit() {
//!         socket.send_to(&t.contents, t.destination).unwrap();
//!     }
//!     while let Some(ev) = agent.poll_event() {
//!         if let Event::SelectedPairChanged(p) = ev {
//!             println!("media goes to {}", p.remote.addr);
//!         }
//!     }
//!     let now = Instant::now();
//!     let wait = agent.poll_timeout().map(|t| t.saturating_duration_since(now));
//!     socket.set_read_timeout(wait.filter(|w| !w.is_zero())).unwrap();
//!     match socket.recv_from(&mut buf) {
//!         Ok((n, from)) if ice::classify(&buf[..n]) == ice::PacketKind::Stun => {
//!             let _ = agent.handle_receive(Instant::now(), from, local, &buf[..n]);
//!         }
//!         Ok(_) => { /* DTLS/RTP: hand to the media engine */ }
//!         Err(_) => agent.handle_timeout(Instant::now()),
//!     }
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod agent;
mod candidate;
mod config;
mod demux;
mod error;
mod pair;
mod pii;
pub mod stun;

#[cfg(test)]
mod tests;

#[cfg(feature = "_fuzz")]
#[doc(hidden)]
pub mod fuzzing;

pub use agent::{Agent, ConnectionState, Credentials, Event, Role, SelectedPair, Stats, Transmit};
pub use candidate::{candidate_priority, pair_priority, Candidate, CandidateKind, COMPONENT_RTP};
pub use config::Config;
pub use demux::{classify, request_ufrag, PacketKind};
pub use error::{ApiMisuse, Error, PeerMisbehaved};
pub use pair::PairState;
