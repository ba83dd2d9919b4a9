//! A sans-IO ICE agent (RFC 8445 full agent, RFC 8838 trickle).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
