//! Small value types of the configuration file: secrets, telephone numbers, number
//! prefixes and IP networks. Each one parses from a TOML string and says what was wrong
//! when it cannot.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::Deserialize;

/// A secret (the XEP-0114 component secret, a SIP digest password).
///
/// Its `Debug` and `Display` print `<redacted>`, so a secret never reaches a log line
/// (STYLE.md R10). Read the value with [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it (the component handshake,
    /// a digest computation).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string (the file did not set it).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A telephone number in E.164 form: `+`, a country code not starting with 0, and at
/// most 15 digits in total, as in `+15551234567`
/// ([ITU-T E.164 §6](https://www.itu.int/rec/T-REC-E.164), the form
/// [RFC 3966 §5.1.4](https://www.rfc-editor.org/rfc/rfc3966#section-5.1.4) calls a
/// global number, without visual separators).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct E164(String);

impl E164 {
    /// The number with its leading `+`, e.g. `+15551234567`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without the leading `+`, e.g. `15551234567`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

impl FromStr for E164 {
    type Err = String;

    /// # Errors
    ///
    /// A text that says what is wrong: no leading `+`, a non-digit, a leading 0, or
    /// fewer than 2 or more than 15 digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some(digits) = s.strip_prefix('+') else {
            return Err(format!(
                "`{s}` is not an E.164 number: it must start with `+`"
            ));
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "`{s}` is not an E.164 number: only digits may follow the `+`"
            ));
        }
        if digits.starts_with('0') {
            return Err(format!(
                "`{s}` is not an E.164 number: a country code never starts with 0"
            ));
        }
        if !(2..=15).contains(&digits.len()) {
            return Err(format!(
                "`{s}` is not an E.164 number: it has {} digits, E.164 allows 2 to 15",
                digits.len()
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for E164 {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The start of E.164 numbers: `+` followed by 0 to 15 digits. `+` alone matches every
/// number; `+1` matches the North American Numbering Plan; `+1900` its premium numbers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct NumberPrefix(String);

impl NumberPrefix {
    /// The prefix with its leading `+`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `number` starts with this prefix.
    pub fn matches(&self, number: &E164) -> bool {
        number.as_str().starts_with(&self.0)
    }

    /// How many digits the prefix has (the longest matching prefix wins a route).
    pub fn len(&self) -> usize {
        self.0.len() - 1
    }

    /// Whether the prefix is `+` alone (it matches every number).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromStr for NumberPrefix {
    type Err = String;

    /// # Errors
    ///
    /// A text that says what is wrong: no leading `+`, a non-digit, or more than 15 digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some(digits) = s.strip_prefix('+') else {
            return Err(format!(
                "`{s}` is not a number prefix: it must start with `+` (E.164)"
            ));
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 15 {
            return Err(format!(
                "`{s}` is not a number prefix: `+` followed by at most 15 digits"
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for NumberPrefix {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for NumberPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An IP network in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`) or a single address
/// (`192.0.2.7`, taken as a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Network(IpNet);

impl Network {
    /// The network.
    pub fn net(&self) -> IpNet {
        self.0
    }

    /// Whether `addr` lies in this network.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.0.contains(&addr)
    }
}

impl FromStr for Network {
    type Err = String;

    /// # Errors
    ///
    /// A text naming the value that is neither an IP address nor a CIDR network.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Self(net.trunc()));
        }
        match s.parse::<IpAddr>() {
            Ok(addr) => Ok(Self(IpNet::from(addr))),
            Err(_) => Err(format!(
                "`{s}` is neither an IP address nor a network in CIDR notation (e.g. 192.0.2.0/24)"
            )),
        }
    }
}

impl TryFrom<String> for Network {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_accepts_and_rejects() {
        assert_eq!(
            "+15551234567".parse::<E164>().unwrap().digits(),
            "15551234567"
        );
        for bad in [
            "15551234567",
            "+",
            "+0123",
            "+1555-123",
            "+1234567890123456",
            "+1",
        ] {
            assert!(bad.parse::<E164>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn prefix_matches() {
        let p: NumberPrefix = "+1900".parse().unwrap();
        assert!(p.matches(&"+19005550100".parse().unwrap()));
        assert!(!p.matches(&"+15551230000".parse().unwrap()));
        assert!("+".parse::<NumberPrefix>().unwrap().is_empty());
        assert!("1900".parse::<NumberPrefix>().is_err());
    }

    #[test]
    fn network_parses_cidr_and_address() {
        let n: Network = "192.0.2.7/24".parse().unwrap();
        assert_eq!(n.to_string(), "192.0.2.0/24");
        assert!(n.contains("192.0.2.200".parse().unwrap()));
        let a: Network = "2001:db8::1".parse().unwrap();
        assert_eq!(a.to_string(), "2001:db8::1/128");
        assert!("example.com".parse::<Network>().is_err());
    }

    #[test]
    fn secret_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
    }
}
