//! The error type of the XMPP layer.
