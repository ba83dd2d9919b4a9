//! The gateway: configuration, routing and the tokio drivers around the cores.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bridge;
pub mod calls;
pub mod config;
pub mod media_driver;
pub mod routing;
pub mod run;
pub mod xmpp_driver;

pub use run::run;
