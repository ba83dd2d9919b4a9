//! The client (Jingle) leg: reading the client's offer or answer, writing ours
//! ([XEP-0167](https://xmpp.org/extensions/xep-0167.html),
//! [XEP-0176](https://xmpp.org/extensions/xep-0176.html),
//! [XEP-0320](https://xmpp.org/extensions/xep-0320.html); INTEROP.md E.2, E.3, F).

use ice::Credentials;
use media::cert::Fingerprint;
use media::codec::Codec;
use media::dtls::Setup;
use xmpp::jingle::{
    self, Application, Content, Creator, IceUdpTransport, Jingle, Parameter, PayloadType,
    RtpDescription, Senders, Transport,
};

use super::candidates::{ice_candidate, jingle_candidates};
use super::{CodecPolicy, Error};
use crate::media_driver::{ClientDtls, ClientMedia, LocalDescription};

/// The content name of our `session-initiate` for inbound calls: short, no whitespace
/// (Conversations allows at most 16 characters, INTEROP.md F).
pub const INBOUND_CONTENT_NAME: &str = "a0";

/// Payload type ids of our inbound offer (E.3): the static G.711 ones, and the ids
/// WebRTC uses for Opus and telephone-event.
const PT_PCMU: u8 = 0;
const PT_PCMA: u8 = 8;
const PT_OPUS: u8 = 111;
const PT_TELEPHONE_EVENT_8000: u8 = 101;
const PT_TELEPHONE_EVENT_48000: u8 = 110;

/// RFC 4733 events we accept and send: the 16 DTMF digits
/// ([RFC 4733 §3.2](https://www.rfc-editor.org/rfc/rfc4733#section-3.2)).
const DTMF_EVENTS: &str = "0-15";

/// A codec the client offered, with its payload type id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Offered {
    codec: Codec,
    pt: u8,
}

/// What the gateway takes from a client's `session-initiate` (outbound calls, E.2 step 3).
#[derive(Clone, Debug)]
pub struct ClientOffer {
    /// The audio content's name, reused in our answer.
    pub content_name: String,
    /// The content's creator, reused in our answer.
    pub creator: Creator,
    /// The content's senders, reused in our answer.
    pub senders: Senders,
    offered: Vec<Offered>,
    telephone_events: Vec<(u32, u8)>,
    /// The client's ICE ufrag and pwd.
    pub ice: Credentials,
    /// The client's usable candidates (component 1, UDP, IP literal); empty when it
    /// trickles them (Movim) or sends none yet.
    pub candidates: Vec<ice::Candidate>,
    /// The client's certificate fingerprint; `None` only when unencrypted media is
    /// allowed ([`CodecPolicy::allow_unencrypted`]).
    pub fingerprint: Option<Fingerprint>,
    /// The `setup` we answer with: `active` for the client's `actpass` (or no setup),
    /// `passive` for `active`, `active` for `passive`; never `actpass`.
    pub answer_setup: Setup,
    /// Whether the client advertised trickle ICE (Conversations' `<trickle/>` option).
    pub trickle: bool,
}

/// The client codec picked for a call ([`ClientOffer::choose`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientChoice {
    /// The client leg's codec.
    pub codec: Codec,
    /// Its payload type id, the client's.
    pub payload_type: u8,
    /// The client's `telephone-event` id at the codec's clock rate, if offered.
    pub telephone_event: Option<u8>,
    /// Whether the codec equals the trunk's, so no transcoding happens.
    pub passthrough: bool,
}

/// The one audio content of `jingle`, refusing anything else (INTEROP.md E.2: reject
/// video with `<unsupported-applications/>`).
fn audio_content(jingle: &Jingle) -> Result<(&Content, &RtpDescription, &IceUdpTransport), Error> {
    let non_audio: Vec<&str> = jingle
        .contents
        .iter()
        .filter(|c| c.description.is_some() && c.rtp().is_none_or(|d| !d.is_audio()))
        .map(|c| match &c.description {
            Some(Application::Rtp(d)) => d.media.as_str(),
            _ => "non-RTP application",
        })
        .collect();
    if !non_audio.is_empty() {
        return Err(Error::UnsupportedApplications(format!(
            "{} content offered",
            non_audio.join(", ")
        )));
    }
    let (content, description) = jingle
        .contents
        .iter()
        .find_map(|c| c.rtp().map(|d| (c, d)))
        .ok_or_else(|| Error::UnsupportedApplications("no audio content".to_owned()))?;
    let Some(Transport::IceUdp(transport)) = &content.transport else {
        return Err(Error::UnsupportedTransports);
    };
    Ok((content, description, transport))
}

fn offered_codecs(d: &RtpDescription) -> (Vec<Offered>, Vec<(u32, u8)>) {
    let mut offered = Vec::new();
    let mut events = Vec::new();
    for pt in &d.payload_types {
        let (Some(name), Some(rate)) = (pt.name.as_deref(), pt.clockrate) else {
            // A static payload type without name (RFC 3551 §6): 0 and 8 are G.711.
            match pt.id {
                0 => offered.push(Offered {
                    codec: Codec::Pcmu,
                    pt: 0,
                }),
                8 => offered.push(Offered {
                    codec: Codec::Pcma,
                    pt: 8,
                }),
                _ => {}
            }
            continue;
        };
        if name.eq_ignore_ascii_case("telephone-event") {
            events.push((rate, pt.id));
        } else if let Some(codec) = Codec::from_name(name, rate) {
            if !offered.iter().any(|o: &Offered| o.codec == codec) {
                offered.push(Offered { codec, pt: pt.id });
            }
        }
    }
    (offered, events)
}

fn credentials(t: &IceUdpTransport) -> Result<Credentials, Error> {
    match (&t.ufrag, &t.pwd) {
        (Some(ufrag), Some(pwd)) if !ufrag.is_empty() && !pwd.is_empty() => Ok(Credentials {
            ufrag: ufrag.clone(),
            pwd: pwd.clone(),
        }),
        _ => Err(Error::MissingIceCredentials),
    }
}

fn fingerprint(t: &IceUdpTransport, policy: &CodecPolicy) -> Result<Option<Fingerprint>, Error> {
    match &t.fingerprint {
        Some(fp) => Fingerprint::parse(&fp.hash, &fp.value)
            .map(Some)
            .map_err(|e| Error::Security(format!("unusable fingerprint: {e}"))),
        None if policy.allow_unencrypted => Ok(None),
        None => Err(Error::Security(
            "the offer has no DTLS fingerprint".to_owned(),
        )),
    }
}

fn media_setup(s: Option<jingle::Setup>) -> Option<Setup> {
    s.map(|s| match s {
        jingle::Setup::ActPass => Setup::Actpass,
        jingle::Setup::Active => Setup::Active,
        jingle::Setup::Passive => Setup::Passive,
    })
}

fn jingle_setup(s: Setup) -> jingle::Setup {
    match s {
        Setup::Actpass => jingle::Setup::ActPass,
        Setup::Active => jingle::Setup::Active,
        Setup::Passive => jingle::Setup::Passive,
    }
}

impl ClientOffer {
    /// Reads a client's `session-initiate`.
    ///
    /// # Errors
    ///
    /// - [`Error::UnsupportedApplications`]: a video (or other non-audio) content, or no
    ///   content;
    /// - [`Error::UnsupportedTransports`]: the audio content is not over ICE-UDP;
    /// - [`Error::NoCommonCodec`]: none of Opus, PCMU, PCMA offered;
    /// - [`Error::RtcpMuxRequired`]: no `<rtcp-mux/>`;
    /// - [`Error::MissingIceCredentials`]: no `ufrag`/`pwd`;
    /// - [`Error::Security`]: no fingerprint (unless [`CodecPolicy::allow_unencrypted`]),
    ///   or one that is not sha-256 or malformed.
    pub fn parse(jingle: &Jingle, policy: &CodecPolicy) -> Result<Self, Error> {
        let (content, description, transport) = audio_content(jingle)?;
        let (offered, telephone_events) = offered_codecs(description);
        if offered.is_empty() {
            return Err(Error::NoCommonCodec(
                "the client offers none of opus, PCMU, PCMA".to_owned(),
            ));
        }
        if !description.rtcp_mux {
            return Err(Error::RtcpMuxRequired);
        }
        let ice = credentials(transport)?;
        let fingerprint = fingerprint(transport, policy)?;
        let offered_setup = transport
            .fingerprint
            .as_ref()
            .and_then(|f| media_setup(f.setup))
            .unwrap_or(Setup::Actpass);
        Ok(Self {
            content_name: content.name.clone(),
            creator: content.creator,
            senders: content.senders,
            offered,
            telephone_events,
            ice,
            candidates: transport
                .candidates
                .iter()
                .filter_map(ice_candidate)
                .collect(),
            fingerprint,
            answer_setup: Setup::answer(offered_setup),
            trickle: transport.trickle,
        })
    }

    /// The codecs the client offered that the gateway can use, in the client's order.
    pub fn codecs(&self) -> Vec<Codec> {
        self.offered.iter().map(|o| o.codec).collect()
    }

    /// The client's `telephone-event` payload type at `clock_rate` Hz, if offered.
    pub fn telephone_event(&self, clock_rate: u32) -> Option<u8> {
        self.telephone_events
            .iter()
            .find(|(rate, _)| *rate == clock_rate)
            .map(|(_, pt)| *pt)
    }

    /// Picks the client leg's codec, knowing the trunk's (`None` if not yet known):
    ///
    /// 1. with [`CodecPolicy::prefer_g711_passthrough`], the trunk's G.711 codec if the
    ///    client offers it (else, trunk codec unknown, the client's first G.711);
    /// 2. else Opus, if offered (transcoded to the trunk's G.711);
    /// 3. else the client's first G.711 (the trunk's own if offered).
    ///
    /// `telephone-event` is taken at the chosen codec's clock rate (INTEROP.md E.7).
    pub fn choose(&self, policy: &CodecPolicy, trunk: Option<Codec>) -> ClientChoice {
        let find = |c: Codec| self.offered.iter().copied().find(|o| o.codec == c);
        let g711_first = || {
            trunk
                .and_then(find)
                .filter(|o| o.codec != Codec::Opus)
                .or_else(|| {
                    self.offered
                        .iter()
                        .copied()
                        .find(|o| o.codec != Codec::Opus)
                })
        };
        let pick = if policy.prefer_g711_passthrough {
            g711_first().or_else(|| find(Codec::Opus))
        } else {
            find(Codec::Opus).or_else(g711_first)
        };
        // `parse` refused offers without any usable codec, so `offered` is not empty.
        let pick = pick.unwrap_or(self.offered[0]);
        ClientChoice {
            codec: pick.codec,
            payload_type: pick.pt,
            telephone_event: self.telephone_event(pick.codec.clock_rate()),
            passthrough: trunk == Some(pick.codec),
        }
    }

    /// The client leg's media for the media driver (`ClientLegParams::media`): the
    /// choice, and DTLS with our answer setup and the client's fingerprint (`None` for
    /// an unencrypted client, see [`CodecPolicy::allow_unencrypted`]).
    pub fn client_media(&self, choice: &ClientChoice) -> ClientMedia {
        ClientMedia {
            codec: choice.codec,
            payload_type: choice.payload_type,
            telephone_event: choice.telephone_event,
            extra_telephone_events: extra_events(&self.telephone_events, choice.telephone_event),
            dtls: self.fingerprint.map(|remote_fingerprint| ClientDtls {
                local_setup: self.answer_setup,
                remote_fingerprint,
            }),
        }
    }
}

/// Our `<payload-type/>` for `codec` with `id`.
fn payload_type(codec: Codec, id: u8) -> PayloadType {
    let mut pt = PayloadType::new(id, codec.name(), codec.clock_rate());
    if codec == Codec::Opus {
        // RFC 7587 §7: opus/48000/2 in signalling whatever is sent.
        pt.channels = 2;
        pt.parameters.push(Parameter {
            name: "useinbandfec".to_owned(),
            value: "1".to_owned(),
        });
    }
    pt
}

/// The client's `telephone-event` payload types other than `main` (the one at the
/// codec's clock rate), as `(payload type, clock rate)` for
/// [`ClientMedia::extra_telephone_events`]: libwebrtc answers Opus keeping both our
/// telephone-events and then sends digits on the 8 kHz one.
fn extra_events(events: &[(u32, u8)], main: Option<u8>) -> Vec<(u8, u32)> {
    let mut extra: Vec<(u8, u32)> = Vec::new();
    for &(rate, pt) in events {
        if Some(pt) != main && !extra.iter().any(|(p, _)| *p == pt) {
            extra.push((pt, rate));
        }
    }
    extra
}

fn telephone_event_pt(id: u8, clock_rate: u32) -> PayloadType {
    let mut pt = PayloadType::new(id, "telephone-event", clock_rate);
    // Nameless fmtp value: INTEROP.md F (Conversations' form).
    pt.parameters.push(Parameter {
        name: String::new(),
        value: DTMF_EVENTS.to_owned(),
    });
    pt
}

fn our_transport(local: &LocalDescription, setup: Setup) -> IceUdpTransport {
    IceUdpTransport {
        ufrag: Some(local.ice.ufrag.clone()),
        pwd: Some(local.ice.pwd.clone()),
        fingerprint: Some(jingle::Fingerprint {
            hash: Fingerprint::HASH.to_owned(),
            setup: Some(jingle_setup(setup)),
            value: local.fingerprint.to_string(),
        }),
        trickle: false,
        candidates: jingle_candidates(&local.candidates),
    }
}

/// Our `session-accept` content for an outbound call (INTEROP.md E.2 step 6): the
/// client's content name, creator and payload type ids; the chosen codec first and only,
/// `telephone-event` at its clock rate with `0-15`, `<rtcp-mux/>`; our ICE credentials,
/// all our candidates inline, and our fingerprint with `setup` `active` or `passive`
/// ([`ClientOffer::answer_setup`], never `actpass`). Put it in a `session-accept` with a
/// BUNDLE group of [`ClientOffer::content_name`].
pub fn session_accept_content(
    offer: &ClientOffer,
    choice: &ClientChoice,
    local: &LocalDescription,
) -> Content {
    let mut pts = vec![payload_type(choice.codec, choice.payload_type)];
    if let Some(te) = choice.telephone_event {
        pts.push(telephone_event_pt(te, choice.codec.clock_rate()));
    }
    let mut content = Content::new(offer.creator, offer.content_name.clone());
    content.senders = offer.senders;
    content.description = Some(Application::Rtp(RtpDescription::audio(pts)));
    content.transport = Some(Transport::IceUdp(our_transport(local, offer.answer_setup)));
    content
}

/// Our `session-initiate` content for an inbound call (INTEROP.md E.3 step 3), named
/// `content_name` (use [`INBOUND_CONTENT_NAME`]): PCMU 0, PCMA 8, Opus 111
/// (`useinbandfec=1`) in that order, except that `first` (the trunk's codec, for a G.711
/// passthrough; or Opus, to prefer transcoding) moves to the front; then
/// `telephone-event` 101 at 8000 Hz and 110 at 48000 Hz (so DTMF works whichever codec
/// the client picks, E.7), `<rtcp-mux/>`; our ICE credentials and every candidate; our
/// fingerprint with `setup='actpass'`.
pub fn inbound_offer_content(
    local: &LocalDescription,
    content_name: &str,
    first: Option<Codec>,
) -> Content {
    let mut codecs = vec![
        (Codec::Pcmu, PT_PCMU),
        (Codec::Pcma, PT_PCMA),
        (Codec::Opus, PT_OPUS),
    ];
    if let Some(i) = codecs.iter().position(|(c, _)| Some(*c) == first) {
        let preferred = codecs.remove(i);
        codecs.insert(0, preferred);
    }
    let mut pts: Vec<PayloadType> = codecs
        .into_iter()
        .map(|(c, id)| payload_type(c, id))
        .collect();
    pts.push(telephone_event_pt(PT_TELEPHONE_EVENT_8000, 8000));
    pts.push(telephone_event_pt(PT_TELEPHONE_EVENT_48000, 48000));
    let mut content = Content::new(Creator::Initiator, content_name);
    content.description = Some(Application::Rtp(RtpDescription::audio(pts)));
    content.transport = Some(Transport::IceUdp(our_transport(local, Setup::Actpass)));
    content
}

/// What the gateway takes from a client's `session-accept` of our inbound offer
/// (INTEROP.md E.3 step 4).
#[derive(Clone, Debug)]
pub struct ClientAnswer {
    /// The client leg's media for [`crate::media_driver::CallMediaHandle::set_client_media`].
    pub media: ClientMedia,
    /// The client's ICE ufrag and pwd.
    pub ice: Credentials,
    /// The client's usable candidates inline (Conversations in rfc3264 mode); others
    /// come in `transport-info`.
    pub candidates: Vec<ice::Candidate>,
}

impl ClientAnswer {
    /// Reads the client's `session-accept` of the offer we built with
    /// [`inbound_offer_content`] named `content_name`: the first codec it lists among
    /// PCMU, PCMA and Opus (Dino answers exactly one), `telephone-event` at that codec's
    /// clock rate (every other `telephone-event` it kept goes to
    /// [`ClientMedia::extra_telephone_events`]: Chromium answers Opus and sends digits on
    /// `telephone-event/8000`), and our DTLS role from its `setup` (`active` → we are `passive`,
    /// `passive` → `active`; absent means `active`,
    /// [RFC 4145 §4](https://www.rfc-editor.org/rfc/rfc4145#section-4)).
    ///
    /// # Errors
    ///
    /// - [`Error::PeerMisbehaved`]: no content named `content_name`, or
    ///   `setup='actpass'` in the answer;
    /// - [`Error::UnsupportedApplications`], [`Error::UnsupportedTransports`],
    ///   [`Error::NoCommonCodec`], [`Error::MissingIceCredentials`], [`Error::Security`]
    ///   as for [`ClientOffer::parse`]. A missing `<rtcp-mux/>` is accepted: we offered
    ///   it and mux anyway ([RFC 5761 §5.1.1](https://www.rfc-editor.org/rfc/rfc5761#section-5.1.1)).
    pub fn parse(jingle: &Jingle, content_name: &str, policy: &CodecPolicy) -> Result<Self, Error> {
        let (content, description, transport) = audio_content(jingle)?;
        if content.name != content_name {
            return Err(Error::PeerMisbehaved(format!(
                "the answer's content `{}` is not the offered `{content_name}`",
                content.name
            )));
        }
        let (offered, events) = offered_codecs(description);
        let first = offered.first().copied().ok_or_else(|| {
            Error::NoCommonCodec("the client answered none of opus, PCMU, PCMA".to_owned())
        })?;
        let ice = credentials(transport)?;
        let fingerprint = fingerprint(transport, policy)?;
        let their_setup = transport
            .fingerprint
            .as_ref()
            .and_then(|f| media_setup(f.setup))
            .unwrap_or(Setup::Active);
        if their_setup == Setup::Actpass {
            return Err(Error::PeerMisbehaved(
                "setup='actpass' in an answer (RFC 5763 §5)".to_owned(),
            ));
        }
        let clock = first.codec.clock_rate();
        let telephone_event = events.iter().find(|(r, _)| *r == clock).map(|(_, pt)| *pt);
        Ok(Self {
            media: ClientMedia {
                codec: first.codec,
                payload_type: first.pt,
                telephone_event,
                extra_telephone_events: extra_events(&events, telephone_event),
                dtls: fingerprint.map(|remote_fingerprint| ClientDtls {
                    local_setup: Setup::answer(their_setup),
                    remote_fingerprint,
                }),
            },
            ice,
            candidates: transport
                .candidates
                .iter()
                .filter_map(ice_candidate)
                .collect(),
        })
    }
}
