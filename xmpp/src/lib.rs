//! The XMPP component (XEP-0114) and Jingle, as sans-IO state machines.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod caps;
pub mod component;
pub mod error;
pub mod jingle;
pub mod jmi;
pub mod session;
pub mod stream;
