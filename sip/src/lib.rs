//! The SIP user agent toward trunks, an adapter over rsipstack.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
