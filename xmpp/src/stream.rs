//! The sans-IO XEP-0114 component stream.
