//! Demultiplexing of STUN, DTLS and RTP/RTCP on one UDP port by the first byte
//! ([RFC 7983 §7](https://www.rfc-editor.org/rfc/rfc7983#section-7)), and routing of
//! STUN requests to their agent by ufrag ([STYLE.md R4]).

use crate::stun::looks_like_stun;

/// What a datagram on a multiplexed port is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PacketKind {
    /// First byte 0..=3: STUN.
    Stun,
    /// 16..=19: ZRTP.
    Zrtp,
    /// 20..=63: DTLS.
    Dtls,
    /// 64..=79: TURN channel data.
    TurnChannel,
    /// 128..=191: RTP or RTCP.
    Rtp,
    /// Anything else, or an empty datagram: drop it.
    Unknown,
}

/// Classifies a datagram by its first byte (RFC 7983).
pub fn classify(packet: &[u8]) -> PacketKind {
    match packet.first() {
        Some(0..=3) => PacketKind::Stun,
        Some(16..=19) => PacketKind::Zrtp,
        Some(20..=63) => PacketKind::Dtls,
        Some(64..=79) => PacketKind::TurnChannel,
        Some(128..=191) => PacketKind::Rtp,
        _ => PacketKind::Unknown,
    }
}

/// For a STUN Binding request, the local (first) ufrag of its USERNAME `LFRAG:RFRAG`
/// ([RFC 8445 §7.2.2](https://www.rfc-editor.org/rfc/rfc8445#section-7.2.2)): the key to
/// find the agent that owns it. `None` for anything else.
pub fn request_ufrag(packet: &[u8]) -> Option<String> {
    if !looks_like_stun(packet) {
        return None;
    }
    let d = crate::stun::decode(packet).ok()?;
    if d.class != crate::stun::Class::Request {
        return None;
    }
    let user = d.username?;
    Some(user.split(':').next().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_ranges() {
        assert_eq!(classify(&[0, 1]), PacketKind::Stun);
        assert_eq!(classify(&[22]), PacketKind::Dtls);
        assert_eq!(classify(&[0x80]), PacketKind::Rtp);
        assert_eq!(classify(&[191]), PacketKind::Rtp);
        assert_eq!(classify(&[64]), PacketKind::TurnChannel);
        assert_eq!(classify(&[17]), PacketKind::Zrtp);
        assert_eq!(classify(&[200]), PacketKind::Unknown);
        assert_eq!(classify(&[]), PacketKind::Unknown);
    }
}
