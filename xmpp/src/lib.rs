//! The XMPP component (XEP-0114) and Jingle, as sans-IO state machines.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
