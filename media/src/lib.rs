//! The sans-IO media engine of jingle-sip-gateway: per call, a [`Session`] terminates the
//! client's DTLS-SRTP ([RFC 5764](https://www.rfc-editor.org/rfc/rfc5764)) and the trunk's
//! RTP or SDES-SRTP, and moves audio between them: passthrough when both legs use the same
//! codec, Opus ↔ G.711 transcoding at 8 kHz otherwise; RFC 4733 telephone-events relayed;
//! RTCP terminated on each leg.
//!
//! No sockets, tasks or clocks: `now: Instant` comes in, datagrams go out through
//! [`Session::poll_transmit`]. After warm-up the packet path allocates nothing (buffers are
//! pooled; `tests/no_alloc.rs` counts). The transcoding path sorts packets and decides when
//! to conceal a gap in an adaptive reorder/jitter buffer (20–60 ms,
//! [`Config::reorder_max_delay`], [`stats::JitterBufferStats`]); passthrough forwards at
//! once. The DTLS handshake configuration is built once per [`Config`]
//! ([`dtls::DtlsContext`]). The gateway feeds each leg's datagrams from its validated
//! path (ICE-selected pair; latched trunk address), after handing STUN to the ICE agent
//! ([`demux::classify`], RFC 7983).
//!
//! ```no_run
//! use std::{sync::Arc, time::Instant};
//! use media::{cert::Certificate, codec::Codec, config::{Config, LegConfig, Security},
//!             dtls::{DtlsRole, Setup}, Leg, Session};
//! use rand::SeedableRng;
//!
//! # fn main() -> Result<(), media::Error> {
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! let cert = Certificate::generate(&mut rng)?; // signal cert.fingerprint() in Jingle
//! # let their_fp = cert.fingerprint();
//! let client = LegConfig {
//!     codec: Codec::Opus, payload_type: 111, telephone_event: Some(110),
//!     extra_telephone_events: vec![(101, 8000)],
//!     security: Security::Dtls {
//!         role: DtlsRole::from_local_setup(Setup::answer(Setup::Actpass))?,
//!         remote_fingerprint: their_fp,
//!     },
//!     ssrc: 0x1111,
//! };
//! let trunk = LegConfig {
//!     codec: Codec::Pcmu, payload_type: 0, telephone_event: Some(101),
//!     extra_telephone_events: Vec::new(),
//!     security: Security::Plain, ssrc: 0x2222,
//! };
//! let now = Instant::now();
//! let mut call = Session::new(Arc::new(Config::default()), &cert, client, trunk, &mut rng, now)?;
//! call.start_dtls(now)?; // when ICE has selected a pair
//! # let datagram = [0u8; 0];
//! call.handle_packet(now, Leg::Trunk, &datagram)?;
//! while let Some(t) = call.poll_transmit() {
//!     // send t.contents on t.leg's path
//! }
//! while let Some(_event) = call.poll_event() {}
//! let _wake_at = call.poll_timeout();
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cert;
pub mod codec;
pub mod config;
pub mod demux;
pub mod dtls;
mod dtmf;
pub mod error;
pub mod g711;
mod reorder;
mod rtcp;
pub mod rtp;
mod session;
mod silence;
pub mod srtp;
pub mod stats;

pub use config::Config;
pub use error::{Error, PeerMisbehaved, Result};
pub use session::{Event, Leg, Session, Transmit, TransmitKind};
