//! RTP fixed header reading and in-place rewriting,
//! [RFC 3550 §5.1](https://www.rfc-editor.org/rfc/rfc3550#section-5.1).

use crate::error::{Error, Result};

/// Length of the fixed RTP header in bytes.
pub const FIXED_HEADER_LEN: usize = 12;

/// The fields of an RTP header the media engine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marker bit (start of a talkspurt for audio, RFC 3551 §4.1).
    pub marker: bool,
    /// Payload type, 0..=127.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp in the payload's clock rate.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
    /// Bytes before the payload: fixed header, CSRCs and any header extension.
    pub header_len: usize,
    /// Payload bytes, excluding padding.
    pub payload_len: usize,
}

impl RtpHeader {
    /// Parses the header of a plain RTP packet.
    ///
    /// # Errors
    /// [`Error::Malformed`] when the version is not 2 or the lengths do not add up.
    pub fn parse(packet: &[u8]) -> Result<Self> {
        if packet.len() < FIXED_HEADER_LEN || packet[0] >> 6 != 2 {
            return Err(Error::Malformed("rtp header"));
        }
        let csrc_count = (packet[0] & 0x0f) as usize;
        let mut header_len = FIXED_HEADER_LEN + 4 * csrc_count;
        if packet[0] & 0x10 != 0 {
            // Header extension (RFC 3550 §5.3.1; RFC 8285 one- and two-byte forms).
            let ext = packet
                .get(header_len..header_len + 4)
                .ok_or(Error::Malformed("rtp extension"))?;
            header_len += 4 + 4 * u16::from_be_bytes([ext[2], ext[3]]) as usize;
        }
        if header_len > packet.len() {
            return Err(Error::Malformed("rtp header length"));
        }
        let padding = if packet[0] & 0x20 != 0 {
            *packet.last().unwrap_or(&0) as usize
        } else {
            0
        };
        if padding > packet.len() - header_len {
            return Err(Error::Malformed("rtp padding"));
        }
        Ok(Self {
            marker: packet[1] & 0x80 != 0,
            payload_type: packet[1] & 0x7f,
            sequence: u16::from_be_bytes([packet[2], packet[3]]),
            timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
            ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
            header_len,
            payload_len: packet.len() - header_len - padding,
        })
    }

    /// Reads the SSRC of an SRTP packet without needing the rest to be valid.
    pub fn ssrc_of(packet: &[u8]) -> Option<u32> {
        packet
            .get(8..12)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Writes a fixed 12-byte RTP header (no CSRC, no extension) into `out[..12]`.
///
/// # Panics
/// If `out` is shorter than 12 bytes.
pub fn write_header(
    out: &mut [u8],
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) {
    out[0] = 0x80;
    out[1] = (payload_type & 0x7f) | if marker { 0x80 } else { 0 };
    out[2..4].copy_from_slice(&sequence.to_be_bytes());
    out[4..8].copy_from_slice(&timestamp.to_be_bytes());
    out[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_write() {
        let mut p = vec![0u8; 12 + 160];
        write_header(&mut p, true, 0, 65535, 0xdead_beef, 0x1234_5678);
        let h = RtpHeader::parse(&p).unwrap();
        assert!(h.marker);
        assert_eq!(
            (h.payload_type, h.sequence, h.timestamp, h.ssrc),
            (0, 65535, 0xdead_beef, 0x1234_5678)
        );
        assert_eq!((h.header_len, h.payload_len), (12, 160));
    }

    #[test]
    fn csrc_extension_and_padding() {
        // V=2, P=1, X=1, CC=1; one CSRC, a one-word extension, 3 payload bytes, 2 padding.
        let mut p = vec![0xb1, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2];
        p.extend([0, 0, 0, 9]); // CSRC
        p.extend([0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0]); // RFC 8285 one-byte extension
        p.extend([1, 2, 3, 0, 2]);
        let h = RtpHeader::parse(&p).unwrap();
        assert_eq!(h.header_len, 24);
        assert_eq!(h.payload_len, 3);
        assert_eq!(h.payload_type, 111);
        assert!(!h.marker);
    }

    #[test]
    fn rejects_garbage() {
        assert!(RtpHeader::parse(&[0x80; 11]).is_err());
        assert!(RtpHeader::parse(&[0x40; 20]).is_err()); // version 1
        let mut p = vec![0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0, 9];
        assert!(RtpHeader::parse(&p).is_err()); // extension longer than packet
        p[0] = 0xa0;
        p.truncate(12);
        p.push(200);
        assert!(RtpHeader::parse(&p).is_err()); // padding longer than payload
    }
}
