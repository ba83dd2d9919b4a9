//! First-byte demultiplexing of one UDP flow carrying STUN, DTLS and (S)RTP/(S)RTCP,
//! [RFC 7983 §7](https://www.rfc-editor.org/rfc/rfc7983#section-7), and RTP vs RTCP by
//! payload type, [RFC 5761 §4](https://www.rfc-editor.org/rfc/rfc5761#section-4).
//!
//! Written here rather than taken from `jsg-ice` so that `media` does not depend on the
//! ICE agent's API while it is being written; it is a pure function of the bytes.

/// What a datagram on a multiplexed flow carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PacketKind {
    /// STUN (first byte 0..=3): belongs to the ICE agent.
    Stun,
    /// ZRTP (16..=19): not supported, dropped.
    Zrtp,
    /// DTLS record (20..=63).
    Dtls,
    /// TURN channel data (64..=79): belongs to the ICE agent.
    TurnChannel,
    /// RTP (128..=191, second byte's payload type outside 64..=95).
    Rtp,
    /// RTCP (128..=191, packet type 192..=223).
    Rtcp,
    /// Anything else: drop.
    Unknown,
}

/// Classifies a datagram by its first byte (RFC 7983) and, for RTP/RTCP, by its second
/// byte (RFC 5761: RTCP packet types 192–223 appear as payload types 64–95 with the marker).
pub fn classify(datagram: &[u8]) -> PacketKind {
    let Some(&b0) = datagram.first() else {
        return PacketKind::Unknown;
    };
    match b0 {
        0..=3 => PacketKind::Stun,
        16..=19 => PacketKind::Zrtp,
        20..=63 => PacketKind::Dtls,
        64..=79 => PacketKind::TurnChannel,
        128..=191 => match datagram.get(1) {
            Some(b1) if (192..=223).contains(b1) => PacketKind::Rtcp,
            Some(_) => PacketKind::Rtp,
            None => PacketKind::Unknown,
        },
        _ => PacketKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7983_ranges() {
        assert_eq!(classify(&[0x00, 0x01]), PacketKind::Stun);
        assert_eq!(classify(&[0x01, 0x01]), PacketKind::Stun);
        assert_eq!(classify(&[22, 0xfe, 0xfd]), PacketKind::Dtls); // handshake
        assert_eq!(classify(&[23, 0xfe, 0xfd]), PacketKind::Dtls); // application data
        assert_eq!(classify(&[0x40, 0]), PacketKind::TurnChannel);
        assert_eq!(classify(&[0x80, 0x00]), PacketKind::Rtp); // PCMU
        assert_eq!(classify(&[0x80, 0x6f]), PacketKind::Rtp); // opus 111
        assert_eq!(classify(&[0x80, 0xe0 | 0x60]), PacketKind::Rtp); // marker + PT 96
        assert_eq!(classify(&[0x80, 200]), PacketKind::Rtcp); // SR
        assert_eq!(classify(&[0x81, 201]), PacketKind::Rtcp); // RR
        assert_eq!(classify(&[0x10]), PacketKind::Zrtp);
        assert_eq!(classify(&[0xff, 0]), PacketKind::Unknown);
        assert_eq!(classify(&[]), PacketKind::Unknown);
        assert_eq!(classify(&[0x80]), PacketKind::Unknown);
    }
}
