//! SRTP and SRTCP protection with replay protection,
//! [RFC 3711](https://www.rfc-editor.org/rfc/rfc3711) (AES-CM + HMAC-SHA1) and
//! [RFC 7714](https://www.rfc-editor.org/rfc/rfc7714) (AEAD AES-GCM).
//!
//! Written on the RustCrypto primitives that `dimpl` already uses (one crypto build,
//! AES-NI through `aes`); protection works in place on a `Vec<u8>` with spare capacity,
//! so the steady-state path does not allocate. See `media/DTLS.md` for why not
//! `webrtc-srtp`/`rtc-srtp`.

use aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes::{Aes128, Aes256};
use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::error::{Error, PeerMisbehaved, Result};

/// Size of the replay window in packets (RFC 3711 §3.3.2 asks for at least 64).
pub const REPLAY_WINDOW: u64 = 64;
/// At most this many SSRCs are tracked per direction; older ones are forgotten.
const MAX_STREAMS: usize = 8;

const LABEL_RTP_ENC: u8 = 0;
const LABEL_RTP_AUTH: u8 = 1;
const LABEL_RTP_SALT: u8 = 2;
const LABEL_RTCP_ENC: u8 = 3;
const LABEL_RTCP_AUTH: u8 = 4;
const LABEL_RTCP_SALT: u8 = 5;

/// SRTP protection profiles, [RFC 5764 §4.1.2](https://www.rfc-editor.org/rfc/rfc5764#section-4.1.2),
/// [RFC 7714 §14.2](https://www.rfc-editor.org/rfc/rfc7714#section-14.2) and the SDES crypto
/// suites of [RFC 4568 §6.2](https://www.rfc-editor.org/rfc/rfc4568#section-6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SrtpProfile {
    /// SRTP_AES128_CM_HMAC_SHA1_80 / AES_CM_128_HMAC_SHA1_80.
    Aes128CmHmacSha1_80,
    /// SRTP_AES128_CM_HMAC_SHA1_32 / AES_CM_128_HMAC_SHA1_32 (RTCP keeps an 80-bit tag).
    Aes128CmHmacSha1_32,
    /// SRTP_AEAD_AES_128_GCM / AEAD_AES_128_GCM.
    AeadAes128Gcm,
    /// SRTP_AEAD_AES_256_GCM / AEAD_AES_256_GCM.
    AeadAes256Gcm,
}

impl SrtpProfile {
    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Master salt length in bytes (14 for AES-CM, 12 for GCM).
    pub fn salt_len(self) -> usize {
        match self {
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 12,
            _ => 14,
        }
    }

    /// Bytes SRTP adds to an RTP packet (authentication tag).
    pub fn rtp_overhead(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 => 10,
            Self::Aes128CmHmacSha1_32 => 4,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 16,
        }
    }

    /// The SDES crypto-suite name (RFC 4568 §6.2, RFC 7714 §14.2).
    pub fn sdes_name(self) -> &'static str {
        match self {
            Self::Aes128CmHmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::Aes128CmHmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Self::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Self::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// Looks up an SDES crypto-suite name.
    pub fn from_sdes_name(name: &str) -> Option<Self> {
        [
            Self::Aes128CmHmacSha1_80,
            Self::Aes128CmHmacSha1_32,
            Self::AeadAes128Gcm,
            Self::AeadAes256Gcm,
        ]
        .into_iter()
        .find(|p| p.sdes_name().eq_ignore_ascii_case(name))
    }

    fn is_gcm(self) -> bool {
        matches!(self, Self::AeadAes128Gcm | Self::AeadAes256Gcm)
    }
}

/// A master key and salt for one direction. `Debug` does not print the key.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    /// The profile the key is for.
    pub profile: SrtpProfile,
    key: [u8; 32],
    salt: [u8; 14],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// Builds a master key from its key and salt bytes.
    ///
    /// # Errors
    /// [`Error::Malformed`] when the lengths do not match the profile.
    pub fn new(profile: SrtpProfile, key: &[u8], salt: &[u8]) -> Result<Self> {
        if key.len() != profile.key_len() || salt.len() != profile.salt_len() {
            return Err(Error::Malformed("srtp master key length"));
        }
        let mut k = [0; 32];
        k[..key.len()].copy_from_slice(key);
        let mut s = [0; 14];
        s[..salt.len()].copy_from_slice(salt);
        Ok(Self {
            profile,
            key: k,
            salt: s,
        })
    }

    /// A fresh random master key and salt for `profile` (our SDES `a=crypto` key), from
    /// the caller's RNG (STYLE.md R3: seeded in tests, OS-backed in production).
    pub fn generate(profile: SrtpProfile, rng: &mut dyn rand::RngCore) -> Self {
        let mut key = [0u8; 32];
        let mut salt = [0u8; 14];
        rng.fill_bytes(&mut key[..profile.key_len()]);
        rng.fill_bytes(&mut salt[..profile.salt_len()]);
        Self { profile, key, salt }
    }

    /// The key bytes.
    pub fn key(&self) -> &[u8] {
        &self.key[..self.profile.key_len()]
    }

    /// The salt bytes.
    pub fn salt(&self) -> &[u8] {
        &self.salt[..self.profile.salt_len()]
    }

    /// Splits DTLS-SRTP exported keying material into (client write, server write)
    /// keys, [RFC 5764 §4.2](https://www.rfc-editor.org/rfc/rfc5764#section-4.2):
    /// client key, server key, client salt, server salt.
    ///
    /// # Errors
    /// [`Error::Malformed`] when the material has the wrong length.
    pub fn from_dtls_export(profile: SrtpProfile, material: &[u8]) -> Result<(Self, Self)> {
        let (k, s) = (profile.key_len(), profile.salt_len());
        if material.len() != 2 * (k + s) {
            return Err(Error::Malformed("dtls-srtp keying material length"));
        }
        let client = Self::new(profile, &material[..k], &material[2 * k..2 * k + s])?;
        let server = Self::new(profile, &material[k..2 * k], &material[2 * k + s..])?;
        Ok((client, server))
    }

    /// Parses the key-params of an SDES `a=crypto` line, `inline:<base64 key||salt>[|lifetime][|MKI:len]`,
    /// [RFC 4568 §9.1](https://www.rfc-editor.org/rfc/rfc4568#section-9.1). Lifetime is ignored; an
    /// MKI is refused.
    ///
    /// # Errors
    /// [`Error::Malformed`] for bad base64 or lengths; [`Error::PeerIncompatible`] for an MKI.
    pub fn from_sdes_inline(profile: SrtpProfile, key_params: &str) -> Result<Self> {
        let rest = key_params
            .strip_prefix("inline:")
            .ok_or(Error::Malformed("sdes key-params"))?;
        let mut parts = rest.split('|');
        let b64 = parts.next().unwrap_or_default();
        for p in parts {
            if p.contains(':') {
                return Err(Error::PeerIncompatible("sdes mki"));
            }
        }
        let mut raw = [0u8; 48];
        let n = base64_decode(b64, &mut raw).ok_or(Error::Malformed("sdes base64"))?;
        let k = profile.key_len();
        if n != k + profile.salt_len() {
            return Err(Error::Malformed("sdes key length"));
        }
        Self::new(profile, &raw[..k], &raw[k..n])
    }

    /// Formats the key as SDES key-params `inline:<base64>` (RFC 4568 §6.1).
    pub fn to_sdes_inline(&self) -> String {
        let mut raw = Vec::with_capacity(46);
        raw.extend_from_slice(self.key());
        raw.extend_from_slice(self.salt());
        format!("inline:{}", base64_encode(&raw))
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str, out: &mut [u8]) -> Option<usize> {
    let s = s.trim_end_matches('=');
    let mut acc = 0u32;
    let mut bits = 0;
    let mut n = 0;
    for c in s.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
        }
    }
    Some(n)
}

/// The AES-CM PRF of the SRTP key derivation, [RFC 3711 §4.3](https://www.rfc-editor.org/rfc/rfc3711#section-4.3),
/// with a key derivation rate of 0. A 12-byte GCM salt is zero-padded to 14 bytes (RFC 7714 §11).
fn derive(master: &MasterKey, label: u8, out: &mut [u8]) {
    let mut x = [0u8; 16];
    x[..14].copy_from_slice(&master.salt);
    x[7] ^= label;
    match master.profile.key_len() {
        32 => aes_cm_keystream(
            &Aes256::new_from_slice(master.key()).expect("32-byte key"),
            x,
            out,
        ),
        _ => aes_cm_keystream(
            &Aes128::new_from_slice(master.key()).expect("16-byte key"),
            x,
            out,
        ),
    }
}

/// Fills `out` with AES counter-mode keystream starting at counter block `iv`.
fn aes_cm_keystream<C: BlockCipherEncrypt<BlockSize = aes::cipher::consts::U16>>(
    cipher: &C,
    iv: [u8; 16],
    out: &mut [u8],
) {
    let start = u128::from_be_bytes(iv);
    let mut blocks = [aes::Block::default(); 8];
    let mut counter = 0u128;
    for chunk in out.chunks_mut(16 * 8) {
        let nblocks = chunk.len().div_ceil(16);
        for b in blocks[..nblocks].iter_mut() {
            *b = start.wrapping_add(counter).to_be_bytes().into();
            counter += 1;
        }
        cipher.encrypt_blocks(&mut blocks[..nblocks]);
        for (i, byte) in chunk.iter_mut().enumerate() {
            *byte = blocks[i / 16][i % 16];
        }
    }
}

/// XORs AES-CM keystream starting at `iv` into `data`.
fn aes_cm_xor(cipher: &Aes128, iv: [u8; 16], data: &mut [u8]) {
    let start = u128::from_be_bytes(iv);
    let mut blocks = [aes::Block::default(); 8];
    let mut counter = 0u128;
    for chunk in data.chunks_mut(16 * 8) {
        let nblocks = chunk.len().div_ceil(16);
        for b in blocks[..nblocks].iter_mut() {
            *b = start.wrapping_add(counter).to_be_bytes().into();
            counter += 1;
        }
        cipher.encrypt_blocks(&mut blocks[..nblocks]);
        for (i, byte) in chunk.iter_mut().enumerate() {
            *byte ^= blocks[i / 16][i % 16];
        }
    }
}

// The CM variant holds the AES key schedule and the keyed HMAC inline: one per leg and
// direction, read on every packet, so it is not boxed.
#[allow(clippy::large_enum_variant)]
enum Keys {
    Cm {
        cipher: Aes128,
        mac: Hmac<Sha1>,
        salt: [u8; 14],
    },
    Gcm128 {
        aead: Box<Aes128Gcm>,
        salt: [u8; 12],
    },
    Gcm256 {
        aead: Box<Aes256Gcm>,
        salt: [u8; 12],
    },
}

impl Keys {
    fn derive(master: &MasterKey, rtcp: bool) -> Self {
        let (l_enc, l_auth, l_salt) = if rtcp {
            (LABEL_RTCP_ENC, LABEL_RTCP_AUTH, LABEL_RTCP_SALT)
        } else {
            (LABEL_RTP_ENC, LABEL_RTP_AUTH, LABEL_RTP_SALT)
        };
        let mut enc = [0u8; 32];
        let enc = &mut enc[..master.profile.key_len()];
        derive(master, l_enc, enc);
        if master.profile.is_gcm() {
            let mut salt = [0u8; 12];
            derive(master, l_salt, &mut salt);
            if enc.len() == 32 {
                Self::Gcm256 {
                    aead: Box::new(Aes256Gcm::new_from_slice(enc).expect("key")),
                    salt,
                }
            } else {
                Self::Gcm128 {
                    aead: Box::new(Aes128Gcm::new_from_slice(enc).expect("key")),
                    salt,
                }
            }
        } else {
            let mut auth = [0u8; 20];
            derive(master, l_auth, &mut auth);
            let mut salt = [0u8; 14];
            derive(master, l_salt, &mut salt);
            Self::Cm {
                cipher: Aes128::new_from_slice(enc).expect("key"),
                mac: <Hmac<Sha1> as KeyInit>::new_from_slice(&auth).expect("any hmac key length"),
                salt,
            }
        }
    }
}

/// Per-SSRC receive state: rollover counter, highest index and replay bitmap.
#[derive(Debug, Clone, Copy)]
struct StreamState {
    ssrc: u32,
    /// Highest authenticated packet index (48-bit for SRTP, 31-bit for SRTCP).
    highest: u64,
    /// Bit n set: packet `highest - n` was received.
    window: u64,
    /// Next index to send (sender side).
    next_tx: u64,
    started_rx: bool,
    started_tx: bool,
}

impl StreamState {
    fn new(ssrc: u32) -> Self {
        Self {
            ssrc,
            highest: 0,
            window: 0,
            next_tx: 0,
            started_rx: false,
            started_tx: false,
        }
    }

    fn check_replay(&self, index: u64) -> Result<()> {
        if !self.started_rx || index > self.highest {
            return Ok(());
        }
        let behind = self.highest - index;
        if behind >= REPLAY_WINDOW || self.window & (1 << behind) != 0 {
            return Err(Error::PeerMisbehaved(PeerMisbehaved::SrtpReplay));
        }
        Ok(())
    }

    fn accept(&mut self, index: u64) {
        if !self.started_rx {
            self.started_rx = true;
            self.highest = index;
            self.window = 1;
        } else if index > self.highest {
            let shift = index - self.highest;
            self.window = if shift >= 64 { 0 } else { self.window << shift };
            self.window |= 1;
            self.highest = index;
        } else {
            self.window |= 1 << (self.highest - index);
        }
    }

    /// Estimates the packet index of `seq`, RFC 3711 §3.3.1 / Appendix A.
    fn estimate_index(&self, seq: u16) -> u64 {
        if !self.started_rx {
            return seq as u64;
        }
        let s_l = (self.highest & 0xffff) as i64;
        let roc = (self.highest >> 16) as i64;
        let seq = seq as i64;
        let v = if s_l < 32768 {
            if seq - s_l > 32768 {
                roc - 1
            } else {
                roc
            }
        } else if s_l - 32768 > seq {
            roc + 1
        } else {
            roc
        };
        ((v.max(0) as u64) << 16) | seq as u64
    }
}

#[derive(Default)]
struct Streams(Vec<StreamState>);

impl Streams {
    fn get(&mut self, ssrc: u32) -> &mut StreamState {
        if let Some(i) = self.0.iter().position(|s| s.ssrc == ssrc) {
            return &mut self.0[i];
        }
        if self.0.len() == MAX_STREAMS {
            self.0.remove(0);
        }
        self.0.push(StreamState::new(ssrc));
        self.0.last_mut().expect("just pushed")
    }
}

/// One direction's SRTP + SRTCP crypto context (RFC 3711 §3.2): use one for what we send
/// (`protect_*`) and another, keyed with the peer's master key, for what we receive
/// (`unprotect_*`). Replay protection is always on for unprotect.
pub struct SrtpContext {
    profile: SrtpProfile,
    rtp: Keys,
    rtcp: Keys,
    rtp_streams: Streams,
    rtcp_streams: Streams,
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn gcm_iv(salt: &[u8; 12], ssrc: u32, hi: u32, lo: u32) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[6..10].copy_from_slice(&hi.to_be_bytes());
    iv[10..12].copy_from_slice(&(lo as u16).to_be_bytes());
    for (a, b) in iv.iter_mut().zip(salt) {
        *a ^= b;
    }
    iv
}

impl SrtpContext {
    /// Derives the session keys of a master key (RFC 3711 §4.3, key derivation rate 0).
    pub fn new(master: &MasterKey) -> Self {
        Self {
            profile: master.profile,
            rtp: Keys::derive(master, false),
            rtcp: Keys::derive(master, true),
            rtp_streams: Streams::default(),
            rtcp_streams: Streams::default(),
        }
    }

    /// The profile in use.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Turns an RTP packet into SRTP in place, appending the tag
    /// ([RFC 3711 §3.3](https://www.rfc-editor.org/rfc/rfc3711#section-3.3),
    /// [RFC 7714 §8](https://www.rfc-editor.org/rfc/rfc7714#section-8)). Keep
    /// [`SrtpProfile::rtp_overhead`] bytes of spare capacity to avoid an allocation.
    ///
    /// # Errors
    /// [`Error::Malformed`] if `packet` is not RTP.
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<()> {
        let h = crate::rtp::RtpHeader::parse(packet)?;
        let st = self.rtp_streams.get(h.ssrc);
        // Sender index: ROC tracks wraps of the sequence numbers we are given.
        let index = if !st.started_tx {
            st.started_tx = true;
            h.sequence as u64
        } else {
            let roc = st.next_tx >> 16;
            let last = (st.next_tx & 0xffff) as u16;
            let roc = if h.sequence < last && last.wrapping_sub(h.sequence) > 0x8000 {
                roc + 1
            } else {
                roc
            };
            (roc << 16) | h.sequence as u64
        };
        st.next_tx = st.next_tx.max(index);
        let roc = (index >> 16) as u32;
        match &self.rtp {
            Keys::Cm { cipher, mac, salt } => {
                let iv = cm_iv(salt, h.ssrc, index);
                aes_cm_xor(cipher, iv, &mut packet[h.header_len..]);
                let mut m = mac.clone();
                m.update(packet);
                m.update(&roc.to_be_bytes());
                let tag = m.finalize().into_bytes();
                packet.extend_from_slice(&tag[..self.profile.rtp_overhead()]);
            }
            Keys::Gcm128 { aead, salt } => {
                let iv = gcm_iv(salt, h.ssrc, roc, h.sequence as u32);
                let (hdr, body) = packet.split_at_mut(h.header_len);
                let tag = aead
                    .encrypt_inout_detached(&iv.into(), hdr, body.into())
                    .map_err(|_| Error::Malformed("srtp length"))?;
                packet.extend_from_slice(&tag);
            }
            Keys::Gcm256 { aead, salt } => {
                let iv = gcm_iv(salt, h.ssrc, roc, h.sequence as u32);
                let (hdr, body) = packet.split_at_mut(h.header_len);
                let tag = aead
                    .encrypt_inout_detached(&iv.into(), hdr, body.into())
                    .map_err(|_| Error::Malformed("srtp length"))?;
                packet.extend_from_slice(&tag);
            }
        }
        Ok(())
    }

    /// Turns an SRTP packet back into RTP in place, checking the tag and the replay window.
    ///
    /// # Errors
    /// [`Error::Malformed`] for a short packet; `PeerMisbehaved(SrtpAuthFailed)` for a bad
    /// tag; `PeerMisbehaved(SrtpReplay)` for a replayed or too old packet.
    pub fn unprotect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<()> {
        let tag_len = self.profile.rtp_overhead();
        if packet.len() < crate::rtp::FIXED_HEADER_LEN + tag_len {
            return Err(Error::Malformed("srtp length"));
        }
        let body_end = packet.len() - tag_len;
        if packet[0] >> 6 != 2 {
            return Err(Error::Malformed("srtp version"));
        }
        // The padding byte is encrypted: the header length must not depend on it.
        let header_len =
            header_len_unpadded(&packet[..body_end]).ok_or(Error::Malformed("srtp header"))?;
        let h = Seq {
            sequence: u16::from_be_bytes([packet[2], packet[3]]),
            ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        };
        let st = self.rtp_streams.get(h.ssrc);
        let index = st.estimate_index(h.sequence);
        st.check_replay(index)?;
        let roc = (index >> 16) as u32;
        match &self.rtp {
            Keys::Cm { cipher, mac, salt } => {
                let mut m = mac.clone();
                m.update(&packet[..body_end]);
                m.update(&roc.to_be_bytes());
                let tag = m.finalize().into_bytes();
                if !ct_eq(&tag[..tag_len], &packet[body_end..]) {
                    return Err(Error::PeerMisbehaved(PeerMisbehaved::SrtpAuthFailed));
                }
                let iv = cm_iv(salt, h.ssrc, index);
                aes_cm_xor(cipher, iv, &mut packet[header_len..body_end]);
            }
            Keys::Gcm128 { aead, salt } => {
                let iv = gcm_iv(salt, h.ssrc, roc, h.sequence as u32);
                let (hdr, rest) = packet.split_at_mut(header_len);
                let (body, tag) = rest.split_at_mut(body_end - header_len);
                aead.decrypt_inout_detached(
                    &iv.into(),
                    hdr,
                    body.into(),
                    (&*tag).try_into().expect("16"),
                )
                .map_err(|_| Error::PeerMisbehaved(PeerMisbehaved::SrtpAuthFailed))?;
            }
            Keys::Gcm256 { aead, salt } => {
                let iv = gcm_iv(salt, h.ssrc, roc, h.sequence as u32);
                let (hdr, rest) = packet.split_at_mut(header_len);
                let (body, tag) = rest.split_at_mut(body_end - header_len);
                aead.decrypt_inout_detached(
                    &iv.into(),
                    hdr,
                    body.into(),
                    (&*tag).try_into().expect("16"),
                )
                .map_err(|_| Error::PeerMisbehaved(PeerMisbehaved::SrtpAuthFailed))?;
            }
        }
        self.rtp_streams.get(h.ssrc).accept(index);
        packet.truncate(body_end);
        Ok(())
    }

    /// Turns an RTCP compound packet into SRTCP in place (encrypted, E flag set),
    /// [RFC 3711 §3.4](https://www.rfc-editor.org/rfc/rfc3711#section-3.4),
    /// [RFC 7714 §9](https://www.rfc-editor.org/rfc/rfc7714#section-9).
    ///
    /// # Errors
    /// [`Error::Malformed`] if shorter than the 8-byte RTCP header.
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<()> {
        if packet.len() < 8 {
            return Err(Error::Malformed("rtcp length"));
        }
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let st = self.rtcp_streams.get(ssrc);
        let index = st.next_tx & 0x7fff_ffff;
        st.next_tx = st.next_tx.wrapping_add(1);
        let e_index = (index as u32 | 0x8000_0000).to_be_bytes();
        match &self.rtcp {
            Keys::Cm { cipher, mac, salt } => {
                aes_cm_xor(cipher, cm_iv(salt, ssrc, index), &mut packet[8..]);
                packet.extend_from_slice(&e_index);
                let mut m = mac.clone();
                m.update(packet);
                let tag = m.finalize().into_bytes();
                packet.extend_from_slice(&tag[..10]);
            }
            Keys::Gcm128 { aead, salt } => {
                let iv = gcm_iv(salt, ssrc, 0, 0);
                let iv = gcm_rtcp_iv(iv, index as u32);
                let mut aad = [0u8; 12];
                aad[..8].copy_from_slice(&packet[..8]);
                aad[8..].copy_from_slice(&e_index);
                let tag = aead
                    .encrypt_inout_detached(&iv.into(), &aad, (&mut packet[8..]).into())
                    .map_err(|_| Error::Malformed("srtcp length"))?;
                packet.extend_from_slice(&tag);
                packet.extend_from_slice(&e_index);
            }
            Keys::Gcm256 { aead, salt } => {
                let iv = gcm_iv(salt, ssrc, 0, 0);
                let iv = gcm_rtcp_iv(iv, index as u32);
                let mut aad = [0u8; 12];
                aad[..8].copy_from_slice(&packet[..8]);
                aad[8..].copy_from_slice(&e_index);
                let tag = aead
                    .encrypt_inout_detached(&iv.into(), &aad, (&mut packet[8..]).into())
                    .map_err(|_| Error::Malformed("srtcp length"))?;
                packet.extend_from_slice(&tag);
                packet.extend_from_slice(&e_index);
            }
        }
        Ok(())
    }

    /// Turns an SRTCP packet back into RTCP in place, checking tag and replay window.
    ///
    /// # Errors
    /// As [`unprotect_rtp`](Self::unprotect_rtp).
    pub fn unprotect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<()> {
        let gcm = self.profile.is_gcm();
        let trailer = if gcm { 4 + 16 } else { 4 + 10 };
        if packet.len() < 8 + trailer {
            return Err(Error::Malformed("srtcp length"));
        }
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let idx_pos = if gcm {
            packet.len() - 4
        } else {
            packet.len() - 14
        };
        let e_index: [u8; 4] = packet[idx_pos..idx_pos + 4].try_into().expect("4");
        let raw = u32::from_be_bytes(e_index);
        let encrypted = raw & 0x8000_0000 != 0;
        let index = (raw & 0x7fff_ffff) as u64;
        self.rtcp_streams.get(ssrc).check_replay(index)?;
        match &self.rtcp {
            Keys::Cm { cipher, mac, salt } => {
                let mut m = mac.clone();
                m.update(&packet[..idx_pos + 4]);
                let tag = m.finalize().into_bytes();
                if !ct_eq(&tag[..10], &packet[idx_pos + 4..]) {
                    return Err(Error::PeerMisbehaved(PeerMisbehaved::SrtpAuthFailed));
                }
                if encrypted {
                    aes_cm_xor(cipher, cm_iv(salt, ssrc, index), &mut packet[8..idx_pos]);
                }
                packet.truncate(idx_pos);
            }
            Keys::Gcm128 { .. } | Keys::Gcm256 { .. } => {
                if !encrypted {
                    return Err(Error::PeerIncompatible("unencrypted srtcp"));
                }
                let mut aad = [0u8; 12];
                aad[..8].copy_from_slice(&packet[..8]);
                aad[8..].copy_from_slice(&e_index);
                let (head, rest) = packet.split_at_mut(8);
                let _ = head;
                let (body, tail) = rest.split_at_mut(idx_pos - 8 - 16);
                let tag = &tail[..16];
                let ok = match &self.rtcp {
                    Keys::Gcm128 { aead, salt } => aead
                        .decrypt_inout_detached(
                            &gcm_rtcp_iv(gcm_iv(salt, ssrc, 0, 0), index as u32).into(),
                            &aad,
                            body.into(),
                            tag.try_into().expect("16"),
                        )
                        .is_ok(),
                    Keys::Gcm256 { aead, salt } => aead
                        .decrypt_inout_detached(
                            &gcm_rtcp_iv(gcm_iv(salt, ssrc, 0, 0), index as u32).into(),
                            &aad,
                            body.into(),
                            tag.try_into().expect("16"),
                        )
                        .is_ok(),
                    Keys::Cm { .. } => unreachable!("matched above"),
                };
                if !ok {
                    return Err(Error::PeerMisbehaved(PeerMisbehaved::SrtpAuthFailed));
                }
                packet.truncate(idx_pos - 16);
            }
        }
        self.rtcp_streams.get(ssrc).accept(index);
        Ok(())
    }
}

/// The SRTCP GCM IV: 00 00 || SSRC || 00 00 || 0 + index (31 bits), XOR salt (RFC 7714 §9.1).
fn gcm_rtcp_iv(ssrc_salted: [u8; 12], index: u32) -> [u8; 12] {
    let mut iv = ssrc_salted;
    let b = (index & 0x7fff_ffff).to_be_bytes();
    for (a, x) in iv[8..12].iter_mut().zip(b) {
        *a ^= x;
    }
    iv
}

/// The AES-CM IV: (salt·2^16) XOR (SSRC·2^64) XOR (index·2^16), RFC 3711 §4.1.1.
fn cm_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    for (a, b) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *a ^= b;
    }
    for (a, b) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *a ^= b;
    }
    iv
}

struct Seq {
    sequence: u16,
    ssrc: u32,
}

/// Header length of a packet ignoring the (encrypted) padding byte.
fn header_len_unpadded(packet: &[u8]) -> Option<usize> {
    if packet.len() < 12 {
        return None;
    }
    let mut len = 12 + 4 * (packet[0] & 0x0f) as usize;
    if packet[0] & 0x10 != 0 {
        let ext = packet.get(len..len + 4)?;
        len += 4 + 4 * u16::from_be_bytes([ext[2], ext[3]]) as usize;
    }
    (len <= packet.len()).then_some(len)
}

#[cfg(test)]
mod tests;
