//! Personal data in logs: phone numbers, SIP URIs and IP addresses are
//! wrapped in [`Pii`] wherever they are logged.
//!
//! With the `redact-pii` cargo feature, a [`Pii`] value prints as
//! `pii:` followed by the first 8 hex digits of its SHA-256, so log lines
//! of one call still correlate while the value itself stays out of the logs
//! (GDPR art. 5(1)(c), data minimisation). Without the feature it prints
//! the value unchanged.

use std::fmt;

/// A value that identifies a person, printed redacted when the crate is
/// built with the `redact-pii` feature.
///
/// ```
/// let n = sip::Pii("+15551234567");
/// let shown = n.to_string();
/// if cfg!(feature = "redact-pii") {
///     assert!(shown.starts_with("pii:"));
/// } else {
///     assert_eq!(shown, "+15551234567");
/// }
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Pii<T>(pub T);

impl<T: fmt::Display> fmt::Display for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if cfg!(feature = "redact-pii") {
            use sha2::Digest;
            let h = sha2::Sha256::digest(self.0.to_string().as_bytes());
            write!(f, "pii:{}", hex::encode(&h[..4]))
        } else {
            self.0.fmt(f)
        }
    }
}

impl<T: fmt::Display> fmt::Debug for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::Pii;

    #[test]
    fn redacts_only_with_the_feature() {
        let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let shown = format!("{} {:?}", Pii(ip), Pii("sip:+15551234567@example.com"));
        if cfg!(feature = "redact-pii") {
            assert!(!shown.contains("192.0.2.7"), "{shown}");
            assert!(!shown.contains("5551234567"), "{shown}");
            assert_eq!(Pii(ip).to_string(), Pii(ip).to_string());
            assert_eq!(Pii(ip).to_string().len(), "pii:".len() + 8);
        } else {
            assert_eq!(shown, "192.0.2.7 sip:+15551234567@example.com");
        }
    }
}
