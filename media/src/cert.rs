//! The DTLS identity: a self-signed ECDSA P-256 certificate and its sha-256 fingerprint
//! ([RFC 8122 §5](https://www.rfc-editor.org/rfc/rfc8122#section-5),
//! [XEP-0320](https://xmpp.org/extensions/xep-0320.html)).
//!
//! The certificate is DER written here (a few fixed structures) and signed with
//! `p256`; randomness (key and serial) comes from the caller's RNG, and the validity
//! period is fixed (2025-01-01 to 2049-12-31): peers authenticate it by fingerprint,
//! not by time, and the core reads no clock.

use std::fmt;
use std::str::FromStr;

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A sha-256 certificate fingerprint, as in `a=fingerprint:sha-256 AB:CD:…`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// The hash function name used in Jingle/SDP (`hash='sha-256'`).
    pub const HASH: &'static str = "sha-256";

    /// Parses a fingerprint given its hash function name and colon-separated hex value.
    ///
    /// # Errors
    /// [`Error::PeerIncompatible`] for a hash other than sha-256; [`Error::Malformed`] for bad hex.
    pub fn parse(hash: &str, value: &str) -> Result<Self> {
        if !hash.eq_ignore_ascii_case(Self::HASH) {
            return Err(Error::PeerIncompatible(
                "fingerprint hash other than sha-256",
            ));
        }
        value.parse()
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let mut out = [0u8; 32];
        let mut n = 0;
        for part in s.trim().split(':') {
            if part.len() != 2 || n == 32 {
                return Err(Error::Malformed("fingerprint"));
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| Error::Malformed("fingerprint"))?;
            n += 1;
        }
        if n != 32 {
            return Err(Error::Malformed("fingerprint length"));
        }
        Ok(Self(out))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Our DTLS certificate and private key. `Debug` does not show the key.
#[derive(Clone)]
pub struct Certificate {
    pub(crate) inner: dimpl::DtlsCertificate,
    fingerprint: Fingerprint,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

fn der_tlv(tag: u8, content: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(content.len() + 4);
    der_tlv(tag, content, &mut v);
    v
}

const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]; // 1.2.840.10045.2.1
const OID_PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]; // 1.2.840.10045.3.1.7
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]; // 1.2.840.10045.4.3.2
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03]; // 2.5.4.3

impl Certificate {
    /// Generates a fresh ECDSA P-256 key and a self-signed X.509 v3 certificate
    /// (signature ecdsa-with-SHA256, common name `jingle-sip-gateway`).
    ///
    /// # Errors
    /// [`Error::Local`] if the RNG yields an invalid scalar 16 times in a row.
    pub fn generate(rng: &mut dyn RngCore) -> Result<Self> {
        let key = (0..16)
            .find_map(|_| {
                let mut k = [0u8; 32];
                rng.fill_bytes(&mut k);
                SigningKey::from_slice(&k).ok()
            })
            .ok_or_else(|| Error::Local("p-256 key generation".into()))?;
        let public = key.verifying_key().to_sec1_point(false);
        let mut serial = [0u8; 16];
        rng.fill_bytes(&mut serial);
        serial[0] &= 0x7f; // positive INTEGER
        serial[0] |= 0x01; // and minimal (no leading zero byte)

        let alg = tlv(0x30, &tlv(0x06, OID_ECDSA_SHA256));
        let name = tlv(
            0x30,
            &tlv(
                0x31,
                &tlv(
                    0x30,
                    &[tlv(0x06, OID_COMMON_NAME), tlv(0x0c, b"jingle-sip-gateway")].concat(),
                ),
            ),
        );
        let validity = tlv(
            0x30,
            &[tlv(0x17, b"250101000000Z"), tlv(0x17, b"491231235959Z")].concat(),
        );
        let spki = tlv(
            0x30,
            &[
                tlv(
                    0x30,
                    &[tlv(0x06, OID_EC_PUBLIC_KEY), tlv(0x06, OID_PRIME256V1)].concat(),
                ),
                tlv(0x03, &[&[0u8][..], public.as_bytes()].concat()),
            ]
            .concat(),
        );
        let version = tlv(0xa0, &tlv(0x02, &[2]));
        let tbs = tlv(
            0x30,
            &[
                version,
                tlv(0x02, &serial),
                alg.clone(),
                name.clone(),
                validity,
                name,
                spki,
            ]
            .concat(),
        );
        let sig: Signature = key.sign(&tbs);
        let sig_der = sig.to_der();
        let cert = tlv(
            0x30,
            &[
                tbs,
                alg,
                tlv(0x03, &[&[0u8][..], sig_der.as_bytes()].concat()),
            ]
            .concat(),
        );

        // SEC1 ECPrivateKey (RFC 5915): version 1, the scalar, the named curve.
        let private_key = tlv(
            0x30,
            &[
                tlv(0x02, &[1]),
                tlv(0x04, &key.to_bytes()),
                tlv(0xa0, &tlv(0x06, OID_PRIME256V1)),
            ]
            .concat(),
        );
        Ok(Self {
            fingerprint: Fingerprint::of_der(&cert),
            inner: dimpl::DtlsCertificate {
                certificate: cert,
                private_key,
            },
        })
    }

    /// The sha-256 fingerprint to signal in Jingle (`<fingerprint hash='sha-256'>`) or SDP.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The certificate in DER.
    pub fn der(&self) -> &[u8] {
        &self.inner.certificate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn fingerprint_text_round_trip() {
        let fp = Fingerprint([0xab; 32]);
        let s = fp.to_string();
        assert!(s.starts_with("AB:AB:"));
        assert_eq!(s.len(), 32 * 3 - 1);
        assert_eq!(
            Fingerprint::parse("SHA-256", &s.to_lowercase()).unwrap(),
            fp
        );
        assert!(Fingerprint::parse("sha-1", &s).is_err());
        assert!("AB:CD".parse::<Fingerprint>().is_err());
        assert!(s.replace("AB:AB", "ABAB").parse::<Fingerprint>().is_err());
    }

    #[test]
    fn generated_certificate_is_der_and_unique() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let a = Certificate::generate(&mut rng).unwrap();
        let b = Certificate::generate(&mut rng).unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        let der = a.der();
        assert_eq!(der[0], 0x30);
        assert_eq!(der[1], 0x82);
        assert_eq!(((der[2] as usize) << 8 | der[3] as usize) + 4, der.len());
        assert_eq!(Fingerprint::of_der(der), a.fingerprint());
    }
}
