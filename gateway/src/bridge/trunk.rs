//! The trunk (SIP) leg: our SDP offer and answer, and the trunk's description as the
//! media driver's [`TrunkMedia`] ([RFC 3264](https://www.rfc-editor.org/rfc/rfc3264),
//! [RFC 4568](https://www.rfc-editor.org/rfc/rfc4568) for SDES-SRTP).

use std::net::{IpAddr, SocketAddr};

use media::codec::Codec;
use media::config::Security;
use media::srtp::{MasterKey, SrtpProfile};
use rand::RngCore;
use sip::sdp::{LocalMedia, RemoteMedia, SdesKey};

use super::{media_codec, sip_codec, Error};
use crate::media_driver::TrunkMedia;

/// The payload type of `telephone-event/8000` in our SDP offers: 101, the value most
/// carriers and SIP phones use ([RFC 4733](https://www.rfc-editor.org/rfc/rfc4733)).
pub const TRUNK_TELEPHONE_EVENT_PT: u8 = 101;

/// The SDES tag of our offer's `a=crypto` line.
const SDES_TAG: u32 = 1;

fn sdes_key(tag: u32, key: &MasterKey) -> SdesKey {
    SdesKey {
        tag,
        suite: key.profile.sdes_name().to_owned(),
        key_salt: [key.key(), key.salt()].concat(),
    }
}

fn master_key(sdes: &SdesKey) -> Result<MasterKey, Error> {
    let profile = SrtpProfile::from_sdes_name(&sdes.suite)
        .ok_or_else(|| Error::TrunkSrtp(format!("unsupported crypto suite {}", sdes.suite)))?;
    let split = profile.key_len().min(sdes.key_salt.len());
    let (key, salt) = sdes.key_salt.split_at(split);
    MasterKey::new(profile, key, salt).map_err(|e| Error::TrunkSrtp(e.to_string()))
}

fn remote_addr(remote: &RemoteMedia) -> Result<Option<SocketAddr>, Error> {
    if remote.port == 0 {
        return Err(Error::PeerMisbehaved(
            "the trunk rejected the audio stream (port 0)".to_owned(),
        ));
    }
    // `c=0.0.0.0` (hold, RFC 3264 §8.4): wait for the trunk's first packet.
    Ok((!remote.address.is_unspecified()).then(|| SocketAddr::new(remote.address, remote.port)))
}

fn is_savp(remote: &RemoteMedia) -> bool {
    remote.protocol.to_ascii_uppercase().contains("SAVP")
}

/// Our SDP offer to a trunk for an outbound call (INTEROP.md E.2 step 2): our trunk-leg
/// RTP address (`trunk_rtp`, with its IP replaced by `announce`, the configured public
/// address, if any), PCMU and PCMA — `first` first when it is one of them, so a G.711
/// passthrough can be preferred — and `telephone-event/8000` on
/// [`TRUNK_TELEPHONE_EVENT_PT`]. With `local_key`, the stream is `RTP/SAVP` with our
/// `a=crypto` (the trunk's `srtp` setting; generate the key with
/// [`MasterKey::generate`]).
pub fn trunk_offer(
    trunk_rtp: SocketAddr,
    announce: Option<IpAddr>,
    session_id: u64,
    first: Option<Codec>,
    local_key: Option<&MasterKey>,
) -> LocalMedia {
    let mut local = LocalMedia::new(
        announce.unwrap_or(trunk_rtp.ip()),
        trunk_rtp.port(),
        session_id,
    );
    local.codecs = match first {
        Some(Codec::Pcma) => vec![sip::sdp::Codec::Pcma, sip::sdp::Codec::Pcmu],
        _ => vec![sip::sdp::Codec::Pcmu, sip::sdp::Codec::Pcma],
    };
    local.telephone_event_pt = TRUNK_TELEPHONE_EVENT_PT;
    local.srtp = local_key.map(|k| sdes_key(SDES_TAG, k));
    local
}

/// The trunk leg's media from the trunk's answer (`Event::Answered`, or `EarlyMedia`)
/// to our `offer`: the first codec of the answer among those we offered, the trunk's
/// `telephone-event`, SDES-SRTP when the trunk answered `RTP/SAVP` (our `local_key`
/// and its `a=crypto`), and its address.
///
/// # Errors
///
/// - [`Error::PeerMisbehaved`]: the answer rejects the stream (port 0);
/// - [`Error::NoCommonCodec`]: the answer has none of our codecs;
/// - [`Error::TrunkSrtp`]: `RTP/SAVP` without a usable `a=crypto`, or we offered no key.
pub fn trunk_media_from_answer(
    answer: &RemoteMedia,
    offer: &LocalMedia,
    local_key: Option<&MasterKey>,
) -> Result<TrunkMedia, Error> {
    let remote = remote_addr(answer)?;
    let (codec, payload_type) = answer
        .choose(&offer.codecs)
        .and_then(|(c, pt)| media_codec(c).map(|c| (c, pt)))
        .ok_or_else(|| Error::NoCommonCodec("the trunk answered none of our codecs".to_owned()))?;
    let security = if is_savp(answer) {
        let theirs = answer
            .crypto
            .first()
            .ok_or_else(|| Error::TrunkSrtp("RTP/SAVP answer without a=crypto".to_owned()))?;
        let ours = local_key
            .ok_or_else(|| Error::TrunkSrtp("RTP/SAVP answer to an RTP/AVP offer".to_owned()))?;
        Security::Sdes {
            local: ours.clone(),
            remote: master_key(theirs)?,
        }
    } else {
        Security::Plain
    };
    Ok(TrunkMedia {
        codec,
        payload_type,
        telephone_event: answer.telephone_event_pt,
        security,
        remote,
    })
}

/// Our answer to a trunk's offer for an inbound call (INTEROP.md E.3): the
/// [`LocalMedia`] to give the SIP user agent's `answer` (PCMU, PCMA and Opus, the
/// trunk's order winning, [RFC 3264 §6.1](https://www.rfc-editor.org/rfc/rfc3264#section-6.1);
/// at `trunk_rtp`, or `announce` as the address) and the trunk leg's media. For an
/// `RTP/SAVP` offer our SDES key is drawn from `rng` for the trunk's first usable suite,
/// under the trunk's tag.
///
/// # Errors
///
/// - [`Error::PeerMisbehaved`]: the offer's port is 0;
/// - [`Error::NoCommonCodec`]: none of PCMU, PCMA, Opus offered (answer 488);
/// - [`Error::TrunkSrtp`]: `RTP/SAVP` without a usable `a=crypto` (answer 488).
pub fn answer_trunk_offer(
    offer: &RemoteMedia,
    trunk_rtp: SocketAddr,
    announce: Option<IpAddr>,
    session_id: u64,
    rng: &mut dyn RngCore,
) -> Result<(LocalMedia, TrunkMedia), Error> {
    let remote = remote_addr(offer)?;
    let mut local = LocalMedia::new(
        announce.unwrap_or(trunk_rtp.ip()),
        trunk_rtp.port(),
        session_id,
    );
    local.codecs = vec![
        sip_codec(Codec::Pcmu),
        sip_codec(Codec::Pcma),
        sip_codec(Codec::Opus),
    ];
    local.telephone_event_pt = offer.telephone_event_pt.unwrap_or(TRUNK_TELEPHONE_EVENT_PT);
    let security = if is_savp(offer) {
        let (theirs, remote_key) = offer
            .crypto
            .iter()
            .find_map(|c| master_key(c).ok().map(|k| (c, k)))
            .ok_or_else(|| {
                Error::TrunkSrtp("RTP/SAVP offer without a usable a=crypto".to_owned())
            })?;
        let ours = MasterKey::generate(remote_key.profile, rng);
        local.srtp = Some(sdes_key(theirs.tag, &ours));
        Security::Sdes {
            local: ours,
            remote: remote_key,
        }
    } else {
        Security::Plain
    };
    let (_, negotiated) = local
        .answer(offer)
        .map_err(|e| Error::NoCommonCodec(e.to_string()))?;
    let codec = media_codec(negotiated.codec)
        .ok_or_else(|| Error::NoCommonCodec(format!("{:?} is not supported", negotiated.codec)))?;
    Ok((
        local,
        TrunkMedia {
            codec,
            payload_type: negotiated.payload_type,
            telephone_event: negotiated.telephone_event_pt,
            security,
            remote,
        },
    ))
}
