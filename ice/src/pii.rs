//! Redaction of IP addresses in logs ([STYLE.md R10]): with the `redact-pii` feature,
//! addresses print as `[redacted]:port`.

use std::fmt;
use std::net::SocketAddr;

/// Wraps personally identifying data (here: socket addresses) for logging.
pub(crate) struct Pii(pub(crate) SocketAddr);

impl fmt::Display for Pii {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if cfg!(feature = "redact-pii") {
            write!(f, "[redacted]:{}", self.0.port())
        } else {
            write!(f, "{}", self.0)
        }
    }
}
