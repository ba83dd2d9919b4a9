//! The gateway configuration file.
