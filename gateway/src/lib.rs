//! The gateway: configuration, routing and the tokio drivers around the cores.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
pub mod xmpp_driver;
