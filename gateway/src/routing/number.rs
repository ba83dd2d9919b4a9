//! Reading telephone numbers as trunks write them into E.164
//! ([ITU-T E.164](https://www.itu.int/rec/T-REC-E.164),
//! [RFC 3966 §5.1](https://www.rfc-editor.org/rfc/rfc3966#section-5.1)).

use crate::config::E164;

use super::{Denied, TrunkNumbering};

/// A national numbering plan, to read national numbers (without country code) that some
/// trunks send in `From` or the Request-URI.
///
/// NANP is `country_code "1"`, `trunk_prefix "1"`, `national_len Some(10)`: `5551234567`
/// and `15551234567` both become `+15551234567`. Germany is `"49"`, `"0"`, `None`:
/// `030123456` becomes `+4930123456`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NationalPlan {
    /// The country code, digits only (`1`, `44`, `49`).
    pub country_code: String,
    /// The national (trunk) prefix dialled before a national number (`0` in most of
    /// Europe, `1` in NANP); empty for none.
    pub trunk_prefix: String,
    /// The length of a national significant number, when fixed (10 in NANP); `None`
    /// when variable.
    pub national_len: Option<usize>,
}

impl NationalPlan {
    /// The North American Numbering Plan: country code 1, trunk prefix 1, 10-digit
    /// national numbers.
    pub fn nanp() -> Self {
        Self {
            country_code: "1".to_owned(),
            trunk_prefix: "1".to_owned(),
            national_len: Some(10),
        }
    }

    /// The E.164 digits (without `+`) of `digits` read as a national number, if it is one.
    fn national(&self, digits: &str) -> Option<String> {
        let len_ok = |n: &str| self.national_len.is_none_or(|len| n.len() == len);
        if !self.trunk_prefix.is_empty() {
            if let Some(rest) = digits.strip_prefix(self.trunk_prefix.as_str()) {
                if len_ok(rest) && !rest.is_empty() {
                    return Some(format!("{}{rest}", self.country_code));
                }
            }
        }
        // Without a trunk prefix, only a number of the fixed national length is
        // national; anything else may already carry its country code.
        match self.national_len {
            Some(len) if digits.len() == len => Some(format!("{}{digits}", self.country_code)),
            _ => None,
        }
    }
}

/// See [`super::Router::normalize_inbound`].
pub(super) fn normalize(
    user_part: &str,
    numbering: &TrunkNumbering,
    national: Option<&NationalPlan>,
) -> Result<E164, Denied> {
    let invalid = |why: String| Denied::InvalidNumber {
        number: user_part.to_owned(),
        why,
    };
    let mut s = user_part.trim();
    for scheme in ["tel:", "sip:", "sips:"] {
        if s.len() >= scheme.len() && s[..scheme.len()].eq_ignore_ascii_case(scheme) {
            s = &s[scheme.len()..];
        }
    }
    // A `;phone-context=` or other parameter ends the number (RFC 3966 §3).
    let s = s.split([';', '@']).next().unwrap_or("");
    let s = if numbering.dial_prefix.is_empty() {
        s
    } else {
        s.strip_prefix(numbering.dial_prefix.as_str()).unwrap_or(s)
    };
    let plus = s.starts_with('+');
    let digits: String = s
        .chars()
        .skip(usize::from(plus))
        .filter(|c| !matches!(c, '-' | '.' | ' ' | '(' | ')'))
        .collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!("`{user_part}` is not a telephone number")));
    }
    let e164_digits = if plus {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_owned()
    } else if let Some(rest) = digits
        .strip_prefix("011")
        .filter(|_| national.is_some_and(|p| p.country_code == "1"))
    {
        rest.to_owned()
    } else if let Some(n) = national.and_then(|p| p.national(&digits)) {
        n
    } else {
        // `e164-no-plus` trunks, and `e164` trunks that dropped the `+`.
        digits
    };
    format!("+{e164_digits}").parse::<E164>().map_err(invalid)
}
