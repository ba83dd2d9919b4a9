//! The SIP user agent toward trunks, an adapter over rsipstack.
//!
//! The public surface is a handle, [`UserAgent`], plus the stream of
//! [`Event`]s returned by [`UserAgent::start`]. The pure parts are public
//! modules: [`digest`] (RFC 7616/8760 digest authentication) and [`sdp`]
//! (offer/answer for the trunk leg).
//!
//! ```no_run
//! # async fn run() -> Result<(), sip::Error> {
//! use sip::{Config, Event, TrunkConfig, UserAgent};
//! let mut config = Config::default();
//! config.trunk(TrunkConfig::new("carrier", "sip.example.net"));
//! let (ua, mut events) = UserAgent::start(config).await?;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         Event::Incoming { call, .. } => {
//!             let media = sip::sdp::LocalMedia::new("192.0.2.1".parse().unwrap(), 30000, 1);
//!             ua.answer(&call, media)?;
//!         }
//!         Event::Ended { call, reason } => tracing::info!(%call, ?reason, "ended"),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
pub mod digest;
mod error;
mod pii;
pub mod sdp;
mod text;
mod ua;

pub use config::{Config, IpNet, NumberFormat, Transport, TrunkConfig};
pub use error::Error;
pub use pii::Pii;
pub use ua::{CallId, EndReason, Event, OutboundCall, RegistrationState, UserAgent, WireStats};
