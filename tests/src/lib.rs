//! Test bed: starts real third-party peers inside a loopback-only namespace.
