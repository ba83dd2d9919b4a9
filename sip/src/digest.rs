//! HTTP digest authentication for SIP, as pure code.
//!
//! Implements the client side of [RFC 7616](https://www.rfc-editor.org/rfc/rfc7616)
//! (which obsoletes RFC 2617) as used by SIP ([RFC 3261 §22.4](https://www.rfc-editor.org/rfc/rfc3261#section-22.4)),
//! with the SHA-256 algorithms of [RFC 8760](https://www.rfc-editor.org/rfc/rfc8760):
//!
//! - [`parse_challenges`] reads one `WWW-Authenticate` or `Proxy-Authenticate`
//!   value, which may hold several challenges;
//! - [`Challenge::pick`] prefers SHA-256 over MD5 ([RFC 8760 §2.4](https://www.rfc-editor.org/rfc/rfc8760#section-2.4));
//! - [`Challenge::respond`] computes the `Authorization`/`Proxy-Authorization` value,
//!   with `qop=auth`, a client nonce and a nonce count when the server offers qop;
//! - [`Authenticator`] holds the per-request retry policy: one answer per realm,
//!   one more on `stale=true`, and [`Error::AuthRejected`] instead of a loop when
//!   the password is wrong.
//!
//! No clock and no random source: the client nonce comes in as an argument.

use std::fmt::Write as _;

use md5::{Digest as _, Md5};
use sha2::Sha256;

use crate::Error;

/// A digest hash algorithm ([RFC 7616 §3.3](https://www.rfc-editor.org/rfc/rfc7616#section-3.3)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// `MD5`, the default when a challenge names no algorithm.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` ([RFC 8760](https://www.rfc-editor.org/rfc/rfc8760)).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl Algorithm {
    /// Parses the `algorithm` parameter value, case-insensitively; `None` for an
    /// algorithm we do not implement (SHA-512-256, AKAv1-MD5, …).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "MD5" => Some(Self::Md5),
            "MD5-SESS" => Some(Self::Md5Sess),
            "SHA-256" => Some(Self::Sha256),
            "SHA-256-SESS" => Some(Self::Sha256Sess),
            _ => None,
        }
    }

    /// The name as written on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Self::Md5Sess | Self::Sha256Sess)
    }

    fn strength(self) -> u8 {
        match self {
            Self::Sha256 | Self::Sha256Sess => 2,
            Self::Md5 | Self::Md5Sess => 1,
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Self::Md5 | Self::Md5Sess => hex::encode(Md5::digest(data.as_bytes())),
            Self::Sha256 | Self::Sha256Sess => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }
}

/// One digest challenge from a `WWW-Authenticate` (401) or `Proxy-Authenticate`
/// (407) header ([RFC 7616 §3.3](https://www.rfc-editor.org/rfc/rfc7616#section-3.3)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed back unchanged.
    pub opaque: Option<String>,
    /// `algorithm`; `None` when the challenge names one we do not implement.
    pub algorithm: Option<Algorithm>,
    /// The `qop` options offered (`auth`, `auth-int`), lower-cased; empty for an
    /// RFC 2069 style challenge.
    pub qop: Vec<String>,
    /// `stale=true`: the nonce expired but the credentials were right, so retry
    /// with the new nonce.
    pub stale: bool,
    /// `userhash=true` ([RFC 7616 §3.4.4](https://www.rfc-editor.org/rfc/rfc7616#section-3.4.4)).
    pub userhash: bool,
}

/// Username and password for one trunk. `Debug` does not print the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (`username`, or the authorization user of a trunk).
    pub username: String,
    /// The password; never logged.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Splits a header value into comma-separated items, honouring quoted strings.
fn split_items(input: &str) -> Result<Vec<&str>, Error> {
    let mut items = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in input.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                items.push(input[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if in_quotes {
        return Err(Error::malformed("challenge", "unterminated quoted string"));
    }
    items.push(input[start..].trim());
    Ok(items)
}

fn unquote(value: &str) -> String {
    let v = value.trim();
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        let inner = &v[1..v.len() - 1];
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        out
    } else {
        v.to_string()
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[derive(Default)]
struct RawChallenge {
    scheme: String,
    params: Vec<(String, String)>,
}

/// Parses one `WWW-Authenticate`/`Proxy-Authenticate` header value into its
/// challenges, in order. Non-digest challenges (`Basic`, …) are skipped.
///
/// # Errors
///
/// [`Error::Malformed`] when the value is not a list of `scheme param=value`
/// items, or a digest challenge lacks `realm` or `nonce`.
pub fn parse_challenges(value: &str) -> Result<Vec<Challenge>, Error> {
    let mut raws: Vec<RawChallenge> = Vec::new();
    for item in split_items(value)? {
        if item.is_empty() {
            continue;
        }
        // A new challenge starts with `scheme` followed by whitespace (and
        // usually its first parameter), or is a bare scheme token.
        let (head, rest) = match item.find(|c: char| c.is_ascii_whitespace()) {
            Some(sp) if !item[..sp].contains('=') => (&item[..sp], item[sp..].trim()),
            _ if is_token(item) => (item, ""),
            _ => ("", item),
        };
        if !head.is_empty() {
            raws.push(RawChallenge {
                scheme: head.to_string(),
                params: Vec::new(),
            });
            if rest.is_empty() {
                continue;
            }
        }
        let Some(current) = raws.last_mut() else {
            return Err(Error::malformed("challenge", "parameter before a scheme"));
        };
        let Some((name, val)) = rest.split_once('=') else {
            return Err(Error::malformed(
                "challenge",
                format!("bad parameter {rest:?}"),
            ));
        };
        let name = name.trim();
        if !is_token(name) {
            return Err(Error::malformed("challenge", format!("bad name {name:?}")));
        }
        current
            .params
            .push((name.to_ascii_lowercase(), unquote(val)));
    }
    let mut out = Vec::new();
    for raw in raws {
        if !raw.scheme.eq_ignore_ascii_case("digest") {
            continue;
        }
        let get = |n: &str| {
            raw.params
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
        };
        let realm = get("realm").ok_or_else(|| Error::malformed("challenge", "no realm"))?;
        let nonce = get("nonce").ok_or_else(|| Error::malformed("challenge", "no nonce"))?;
        let algorithm = match get("algorithm") {
            None => Some(Algorithm::Md5),
            Some(a) => Algorithm::from_name(&a),
        };
        let qop = get("qop")
            .map(|q| {
                q.split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let flag = |n: &str| get(n).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        out.push(Challenge {
            realm,
            nonce,
            opaque: get("opaque"),
            algorithm,
            qop,
            stale: flag("stale"),
            userhash: flag("userhash"),
        });
    }
    Ok(out)
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl Challenge {
    /// Picks the challenge to answer: the strongest supported algorithm
    /// (SHA-256 before MD5, [RFC 8760 §2.4](https://www.rfc-editor.org/rfc/rfc8760#section-2.4)),
    /// then, among equals, the first one; a challenge offering qop but not
    /// `auth` is skipped (we do not implement `auth-int`).
    pub fn pick(challenges: &[Self]) -> Option<&Self> {
        challenges
            .iter()
            .enumerate()
            .filter(|(_, c)| c.qop.is_empty() || c.qop.iter().any(|q| q == "auth"))
            .filter_map(|(i, c)| c.algorithm.map(|a| (a.strength(), std::cmp::Reverse(i), c)))
            .max_by_key(|(s, i, _)| (*s, *i))
            .map(|(_, _, c)| c)
    }

    /// Computes the credentials header value (`Digest username=…, response=…`)
    /// answering this challenge for a request ([RFC 7616 §3.4.1](https://www.rfc-editor.org/rfc/rfc7616#section-3.4.1)).
    ///
    /// `uri` is the Request-URI as sent, `cnonce` a fresh random string (used
    /// only when the challenge offers qop or a `-sess` algorithm), `nc` the
    /// nonce count of this use of the nonce, starting at 1.
    ///
    /// # Errors
    ///
    /// [`Error::PeerIncompatible`] when the algorithm is not implemented or the
    /// qop offered is only `auth-int`.
    pub fn respond(
        &self,
        credentials: &Credentials,
        method: &str,
        uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> Result<String, Error> {
        let alg = self
            .algorithm
            .ok_or_else(|| Error::PeerIncompatible("unsupported digest algorithm".into()))?;
        let qop_auth = if self.qop.is_empty() {
            false
        } else if self.qop.iter().any(|q| q == "auth") {
            true
        } else {
            return Err(Error::PeerIncompatible(
                "digest qop other than auth (auth-int is not implemented)".into(),
            ));
        };
        let nc_str = format!("{nc:08x}");
        let mut ha1 = alg.hash(&format!(
            "{}:{}:{}",
            credentials.username, self.realm, credentials.password
        ));
        if alg.is_sess() {
            ha1 = alg.hash(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = alg.hash(&format!("{method}:{uri}"));
        let response = if qop_auth {
            alg.hash(&format!(
                "{ha1}:{}:{nc_str}:{cnonce}:auth:{ha2}",
                self.nonce
            ))
        } else {
            alg.hash(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        let username = if self.userhash {
            alg.hash(&format!("{}:{}", credentials.username, self.realm))
        } else {
            credentials.username.clone()
        };
        let mut out = String::with_capacity(256);
        let _ = write!(
            out,
            "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
            quote(&username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri),
            alg.name()
        );
        if qop_auth || alg.is_sess() {
            let _ = write!(out, ", cnonce={}", quote(cnonce));
        }
        if qop_auth {
            let _ = write!(out, ", qop=auth, nc={nc_str}");
        }
        if let Some(opaque) = &self.opaque {
            let _ = write!(out, ", opaque={}", quote(opaque));
        }
        if self.userhash {
            out.push_str(", userhash=true");
        }
        Ok(out)
    }
}

/// Which header carried the challenge, and so which header the answer goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// 401 with `WWW-Authenticate`: answer in `Authorization`.
    Www,
    /// 407 with `Proxy-Authenticate`: answer in `Proxy-Authorization`.
    Proxy,
}

impl ChallengeKind {
    /// The header name in which the answer goes.
    pub fn answer_header(self) -> &'static str {
        match self {
            Self::Www => "Authorization",
            Self::Proxy => "Proxy-Authorization",
        }
    }
}

/// The retry policy for one request (one REGISTER refresh, one INVITE):
/// answers each realm once, answers again only on `stale=true` (once), and
/// reports [`Error::AuthRejected`] on a repeated challenge, so a wrong password
/// fails at the second 401/407 instead of looping.
#[derive(Debug, Default)]
pub struct Authenticator {
    answered: Vec<(String, bool)>, // (realm, stale retry used)
    nonce_counts: Vec<(String, u32)>,
}

impl Authenticator {
    /// A fresh policy for a new request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers a 401/407 response: `challenges` are the parsed values of all
    /// its challenge headers. Returns the header name and value to add to the
    /// retried request (with a new CSeq and branch).
    ///
    /// # Errors
    ///
    /// - [`Error::AuthRejected`] when this realm was already answered and the
    ///   new challenge is not `stale=true` (or a second stale one came);
    /// - [`Error::PeerIncompatible`] when no challenge uses an algorithm we
    ///   implement, or none was given.
    pub fn answer(
        &mut self,
        kind: ChallengeKind,
        challenges: &[Challenge],
        credentials: &Credentials,
        method: &str,
        uri: &str,
        cnonce: &str,
    ) -> Result<(&'static str, String), Error> {
        let ch = Challenge::pick(challenges).ok_or_else(|| {
            Error::PeerIncompatible(if challenges.is_empty() {
                "401/407 without a digest challenge".into()
            } else {
                "no supported digest algorithm offered".into()
            })
        })?;
        if let Some(entry) = self.answered.iter_mut().find(|(r, _)| *r == ch.realm) {
            if ch.stale && !entry.1 {
                entry.1 = true;
            } else {
                return Err(Error::AuthRejected {
                    realm: ch.realm.clone(),
                });
            }
        } else {
            self.answered.push((ch.realm.clone(), false));
        }
        let nc = match self.nonce_counts.iter_mut().find(|(n, _)| *n == ch.nonce) {
            Some((_, c)) => {
                *c += 1;
                *c
            }
            None => {
                self.nonce_counts.push((ch.nonce.clone(), 1));
                1
            }
        };
        let value = ch.respond(credentials, method, uri, cnonce, nc)?;
        Ok((kind.answer_header(), value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mufasa(password: &str) -> Credentials {
        Credentials {
            username: "Mufasa".into(),
            password: password.into(),
        }
    }

    fn param<'a>(header: &'a str, name: &str) -> &'a str {
        let key = format!("{name}=");
        let start = header.find(&key).expect(name) + key.len();
        let rest = &header[start..];
        let end = rest.find(", ").unwrap_or(rest.len());
        rest[..end].trim_matches('"')
    }

    /// RFC 7616 §3.9.1: both challenges in one header, SHA-256 picked.
    #[test]
    fn rfc7616_example_sha256_and_md5() {
        let value = r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let chs = parse_challenges(value).unwrap();
        assert_eq!(chs.len(), 2);
        assert_eq!(chs[1].algorithm, Some(Algorithm::Md5));
        assert_eq!(chs[0].qop, vec!["auth", "auth-int"]);
        let picked = Challenge::pick(&chs).unwrap();
        assert_eq!(picked.algorithm, Some(Algorithm::Sha256));
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let cred = mufasa("Circle of Life");
        let sha = picked
            .respond(&cred, "GET", "/dir/index.html", cnonce, 1)
            .unwrap();
        assert_eq!(
            param(&sha, "response"),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert_eq!(param(&sha, "nc"), "00000001");
        assert_eq!(param(&sha, "qop"), "auth");
        assert_eq!(param(&sha, "cnonce"), cnonce);
        assert_eq!(
            param(&sha, "opaque"),
            "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
        );
        let md5 = chs[1]
            .respond(&cred, "GET", "/dir/index.html", cnonce, 1)
            .unwrap();
        assert_eq!(param(&md5, "response"), "8ca523f5e9506fed4657c9700eebdbec");
    }

    /// RFC 2617 §3.5.
    #[test]
    fn rfc2617_example() {
        let value = r#"Digest
                 realm="testrealm@host.com",
                 qop="auth,auth-int",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let chs = parse_challenges(value).unwrap();
        assert_eq!(chs.len(), 1);
        assert_eq!(chs[0].algorithm, Some(Algorithm::Md5));
        let out = chs[0]
            .respond(
                &mufasa("Circle Of Life"),
                "GET",
                "/dir/index.html",
                "0a4f113b",
                1,
            )
            .unwrap();
        assert_eq!(param(&out, "response"), "6629fae49393a05397450978507c4ef1");
        // Wrong password gives another response.
        let bad = chs[0]
            .respond(&mufasa("x"), "GET", "/dir/index.html", "0a4f113b", 1)
            .unwrap();
        assert_ne!(param(&bad, "response"), "6629fae49393a05397450978507c4ef1");
    }

    /// RFC 2069 style (no qop): response = H(HA1:nonce:HA2), no nc/cnonce.
    #[test]
    fn no_qop_has_no_cnonce() {
        let chs = parse_challenges(r#"Digest realm="r", nonce="n""#).unwrap();
        let out = chs[0]
            .respond(&mufasa("p"), "REGISTER", "sip:r", "c", 1)
            .unwrap();
        assert!(!out.contains("cnonce"));
        assert!(!out.contains("nc="));
        let ha1 = Algorithm::Md5.hash("Mufasa:r:p");
        let ha2 = Algorithm::Md5.hash("REGISTER:sip:r");
        assert_eq!(
            param(&out, "response"),
            Algorithm::Md5.hash(&format!("{ha1}:n:{ha2}"))
        );
    }

    #[test]
    fn parse_skips_other_schemes_and_handles_escapes() {
        let chs =
            parse_challenges(r#"Basic realm="x", Digest realm="a\"b", nonce="n,1", stale=TRUE"#)
                .unwrap();
        assert_eq!(chs.len(), 1);
        assert_eq!(chs[0].realm, "a\"b");
        assert_eq!(chs[0].nonce, "n,1");
        assert!(chs[0].stale);
        let out = chs[0]
            .respond(&mufasa("p"), "INVITE", "sip:x", "c", 1)
            .unwrap();
        assert!(out.contains(r#"realm="a\"b""#));
    }

    #[test]
    fn parse_rejects_garbage() {
        assert!(parse_challenges(r#"Digest realm="unterminated"#).is_err());
        assert!(parse_challenges("Digest nonce=\"n\"").is_err());
        assert!(parse_challenges("realm=\"x\"").is_err());
        assert!(parse_challenges("Digest realm").is_err());
        // Fuzz-style: no panics on arbitrary bytes.
        for s in [
            "",
            ",",
            "Digest",
            "Digest ,,,",
            "\"",
            "Digest a=\"\\",
            "é=ü",
        ] {
            let _ = parse_challenges(s);
        }
    }

    #[test]
    fn unsupported_algorithm_is_skipped_then_incompatible() {
        let chs = parse_challenges(
            r#"Digest realm="r", nonce="n", algorithm=SHA-512-256, Digest realm="r", nonce="n", algorithm=MD5"#,
        )
        .unwrap();
        assert_eq!(
            Challenge::pick(&chs).unwrap().algorithm,
            Some(Algorithm::Md5)
        );
        let only = parse_challenges(r#"Digest realm="r", nonce="n", algorithm=AKAv1-MD5"#).unwrap();
        let mut auth = Authenticator::new();
        let err = auth
            .answer(
                ChallengeKind::Www,
                &only,
                &mufasa("p"),
                "REGISTER",
                "sip:r",
                "c",
            )
            .unwrap_err();
        assert!(matches!(err, Error::PeerIncompatible(_)));
    }

    #[test]
    fn sess_and_userhash() {
        let chs = parse_challenges(
            r#"Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256-sess, userhash=true"#,
        )
        .unwrap();
        let out = chs[0]
            .respond(&mufasa("p"), "INVITE", "sip:x", "c", 2)
            .unwrap();
        let a = Algorithm::Sha256;
        let ha1 = a.hash(&format!("{}:n:c", a.hash("Mufasa:r:p")));
        let ha2 = a.hash("INVITE:sip:x");
        assert_eq!(
            param(&out, "response"),
            a.hash(&format!("{ha1}:n:00000002:c:auth:{ha2}"))
        );
        assert_eq!(param(&out, "username"), a.hash("Mufasa:r"));
        assert_eq!(param(&out, "nc"), "00000002");
    }

    /// A second challenge for the same realm means wrong credentials: fail,
    /// do not loop. `stale=true` earns exactly one more try.
    #[test]
    fn authenticator_stale_once_then_rejects() {
        let cred = mufasa("p");
        let first = parse_challenges(r#"Digest realm="r", nonce="n1", qop="auth""#).unwrap();
        let stale =
            parse_challenges(r#"Digest realm="r", nonce="n2", qop="auth", stale=true"#).unwrap();
        let mut auth = Authenticator::new();
        let (h, _) = auth
            .answer(ChallengeKind::Proxy, &first, &cred, "INVITE", "sip:x", "c")
            .unwrap();
        assert_eq!(h, "Proxy-Authorization");
        auth.answer(ChallengeKind::Proxy, &stale, &cred, "INVITE", "sip:x", "c")
            .unwrap();
        let err = auth
            .answer(ChallengeKind::Proxy, &stale, &cred, "INVITE", "sip:x", "c")
            .unwrap_err();
        assert_eq!(err, Error::AuthRejected { realm: "r".into() });

        let mut auth = Authenticator::new();
        auth.answer(ChallengeKind::Www, &first, &cred, "REGISTER", "sip:x", "c")
            .unwrap();
        let err = auth
            .answer(ChallengeKind::Www, &first, &cred, "REGISTER", "sip:x", "c")
            .unwrap_err();
        assert!(matches!(err, Error::AuthRejected { .. }));
    }

    #[test]
    fn nonce_count_increments_on_reuse() {
        let cred = mufasa("p");
        let a = parse_challenges(r#"Digest realm="a", nonce="same", qop="auth""#).unwrap();
        let b = parse_challenges(r#"Digest realm="b", nonce="same", qop="auth""#).unwrap();
        let mut auth = Authenticator::new();
        let (_, v1) = auth
            .answer(ChallengeKind::Www, &a, &cred, "INVITE", "sip:x", "c")
            .unwrap();
        let (_, v2) = auth
            .answer(ChallengeKind::Proxy, &b, &cred, "INVITE", "sip:x", "c")
            .unwrap();
        assert_eq!(param(&v1, "nc"), "00000001");
        assert_eq!(param(&v2, "nc"), "00000002");
    }

    #[test]
    fn credentials_debug_hides_password() {
        let s = format!("{:?}", mufasa("secret-pw"));
        assert!(!s.contains("secret-pw"));
    }
}
