//! Jingle Message Initiation (XEP-0353).
