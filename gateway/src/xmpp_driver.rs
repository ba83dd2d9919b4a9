//! The tokio driver of the XEP-0114 component stream.
