//! The RTP application description
//! ([XEP-0167](https://xmpp.org/extensions/xep-0167.html)), with RTCP
//! feedback ([XEP-0293](https://xmpp.org/extensions/xep-0293.html)) and
//! header extensions ([XEP-0294](https://xmpp.org/extensions/xep-0294.html)).

use minidom::Element;
use tracing::debug;

use super::ns;
use super::xml::{elem, lenient_number, number, required, set_attr, set_opt};
use super::Senders;
use crate::error::Error;

/// `<description xmlns='urn:xmpp:jingle:apps:rtp:1'/>`
/// ([XEP-0167 §4](https://xmpp.org/extensions/xep-0167.html#format)).
///
/// `<ssrc/>` and `<ssrc-group/>` children
/// ([XEP-0339](https://xmpp.org/extensions/xep-0339.html)), encryption and
/// bandwidth elements are tolerated and dropped: the gateway does not use them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpDescription {
    /// The media type, e.g. `audio` or `video`.
    pub media: String,
    /// The optional `ssrc` attribute of the description.
    pub ssrc: Option<u32>,
    /// Payload types in the sender's order of preference.
    pub payload_types: Vec<PayloadType>,
    /// `<rtcp-mux/>` present ([XEP-0167 §4](https://xmpp.org/extensions/xep-0167.html#format)).
    pub rtcp_mux: bool,
    /// `<rtcp-fb/>` elements that apply to every payload type (XEP-0293).
    pub rtcp_fb: Vec<RtcpFb>,
    /// `<rtp-hdrext/>` elements (XEP-0294).
    pub hdrexts: Vec<RtpHdrext>,
}

impl RtpDescription {
    /// An audio description with these payload types and `<rtcp-mux/>`.
    pub fn audio(payload_types: Vec<PayloadType>) -> Self {
        Self {
            media: "audio".to_owned(),
            ssrc: None,
            payload_types,
            rtcp_mux: true,
            rtcp_fb: Vec::new(),
            hdrexts: Vec::new(),
        }
    }

    /// Whether `media` is `audio` (compared ASCII case-insensitively).
    pub fn is_audio(&self) -> bool {
        self.media.eq_ignore_ascii_case("audio")
    }

    /// Parses a `<description xmlns='urn:xmpp:jingle:apps:rtp:1'/>`.
    ///
    /// A payload type whose `id` is missing or not a number is skipped (it
    /// cannot be used), as are malformed `rtcp-fb`/`rtp-hdrext` children.
    ///
    /// # Errors
    /// [`Error::Malformed`] when `media` is missing.
    pub fn from_element(el: &Element) -> Result<Self, Error> {
        let media = required(el, "media")?.to_owned();
        let mut d = Self {
            media,
            ssrc: lenient_number(el, "ssrc"),
            payload_types: Vec::new(),
            rtcp_mux: false,
            rtcp_fb: Vec::new(),
            hdrexts: Vec::new(),
        };
        for c in el.children() {
            match (c.name(), c.ns().as_str()) {
                ("payload-type", ns::JINGLE_RTP) => match PayloadType::from_element(c) {
                    Ok(pt) => d.payload_types.push(pt),
                    Err(e) => debug!(error = %e, "skipping unusable payload-type"),
                },
                ("rtcp-mux", ns::JINGLE_RTP) => d.rtcp_mux = true,
                ("rtcp-fb", ns::JINGLE_RTCP_FB) => d.rtcp_fb.extend(RtcpFb::from_element(c)),
                ("rtp-hdrext", ns::JINGLE_RTP_HDREXT) => match RtpHdrext::from_element(c) {
                    Ok(h) => d.hdrexts.push(h),
                    Err(e) => debug!(error = %e, "skipping unusable rtp-hdrext"),
                },
                _ => {}
            }
        }
        Ok(d)
    }

    /// Serializes to `<description xmlns='urn:xmpp:jingle:apps:rtp:1'/>`.
    pub fn to_element(&self) -> Element {
        let mut el = elem("description", ns::JINGLE_RTP, &[("media", &self.media)]);
        set_opt(&mut el, "ssrc", self.ssrc);
        for pt in &self.payload_types {
            el.append_child(pt.to_element());
        }
        for fb in &self.rtcp_fb {
            el.append_child(fb.to_element());
        }
        for h in &self.hdrexts {
            el.append_child(h.to_element());
        }
        if self.rtcp_mux {
            el.append_child(Element::bare("rtcp-mux", ns::JINGLE_RTP));
        }
        el
    }
}

/// `<payload-type/>` ([XEP-0167 §4](https://xmpp.org/extensions/xep-0167.html#format)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadType {
    /// RTP payload type number, 0–127.
    pub id: u8,
    /// Encoding name, e.g. `PCMU`, `opus`, `telephone-event`; optional for
    /// static payload types.
    pub name: Option<String>,
    /// Clock rate in Hz, e.g. 8000 or 48000.
    pub clockrate: Option<u32>,
    /// Number of channels; defaults to 1 when the attribute is absent.
    pub channels: u8,
    /// Packet time in milliseconds (`ptime`).
    pub ptime: Option<u32>,
    /// Maximum packet time in milliseconds (`maxptime`).
    pub maxptime: Option<u32>,
    /// Format parameters (SDP `a=fmtp`), in document order. A parameter with
    /// an empty name carries a nameless fmtp value such as `0-15`.
    pub parameters: Vec<Parameter>,
    /// `<rtcp-fb/>` for this payload type (XEP-0293).
    pub rtcp_fb: Vec<RtcpFb>,
}

impl PayloadType {
    /// A payload type with `id`, `name`, `clockrate`, one channel and no
    /// parameters.
    pub fn new(id: u8, name: impl Into<String>, clockrate: u32) -> Self {
        Self {
            id,
            name: Some(name.into()),
            clockrate: Some(clockrate),
            channels: 1,
            ptime: None,
            maxptime: None,
            parameters: Vec::new(),
            rtcp_fb: Vec::new(),
        }
    }

    /// Whether the name equals `name`, ASCII case-insensitively.
    pub fn is(&self, name: &str) -> bool {
        self.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    }

    /// Parses a `<payload-type/>`.
    ///
    /// # Errors
    /// [`Error::Malformed`] when `id` is missing, not a number or above 127.
    pub fn from_element(el: &Element) -> Result<Self, Error> {
        let id: u8 = number(el, "id")?
            .ok_or_else(|| Error::Malformed("<payload-type/> lacks 'id'".to_owned()))?;
        if id > 127 {
            return Err(Error::Malformed(format!("payload-type id {id} above 127")));
        }
        let mut pt = Self {
            id,
            name: el.attr("name").map(str::to_owned),
            clockrate: lenient_number(el, "clockrate"),
            channels: lenient_number(el, "channels")
                .filter(|c| *c > 0)
                .unwrap_or(1),
            ptime: lenient_number(el, "ptime"),
            maxptime: lenient_number(el, "maxptime"),
            parameters: Vec::new(),
            rtcp_fb: Vec::new(),
        };
        for c in el.children() {
            match (c.name(), c.ns().as_str()) {
                ("parameter", ns::JINGLE_RTP) => pt.parameters.push(Parameter::from_element(c)),
                ("rtcp-fb", ns::JINGLE_RTCP_FB) => pt.rtcp_fb.extend(RtcpFb::from_element(c)),
                _ => {}
            }
        }
        Ok(pt)
    }

    /// Serializes to `<payload-type/>`; `channels` is written only when not 1.
    pub fn to_element(&self) -> Element {
        let mut el = elem("payload-type", ns::JINGLE_RTP, &[]);
        set_attr(&mut el, "id", self.id.to_string());
        set_opt(&mut el, "name", self.name.as_ref());
        set_opt(&mut el, "clockrate", self.clockrate);
        if self.channels != 1 {
            set_attr(&mut el, "channels", self.channels.to_string());
        }
        set_opt(&mut el, "ptime", self.ptime);
        set_opt(&mut el, "maxptime", self.maxptime);
        for p in &self.parameters {
            el.append_child(elem(
                "parameter",
                ns::JINGLE_RTP,
                &[("name", &p.name), ("value", &p.value)],
            ));
        }
        for fb in &self.rtcp_fb {
            el.append_child(fb.to_element());
        }
        el
    }
}

/// A format parameter `<parameter name='…' value='…'/>`
/// ([XEP-0167 §4](https://xmpp.org/extensions/xep-0167.html#format)).
///
/// Serialized as `<parameter name='' value='0-15'/>` for nameless values
/// (INTEROP.md F, Conversations' form; StanzaJS turns that into
/// `a=fmtp:<pt> =0-15`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    /// The name; empty for nameless fmtp values (`a=fmtp:101 0-15`).
    pub name: String,
    /// The value.
    pub value: String,
}

impl Parameter {
    /// Parses a `<parameter/>`. A nameless fmtp value comes in two shapes:
    /// Conversations writes `<parameter name='' value='0-15'/>`, StanzaJS
    /// writes `<parameter name='0-15'/>` (no `value`). Both give
    /// `name: ""`, `value: "0-15"`.
    fn from_element(el: &Element) -> Self {
        match (el.attr("name"), el.attr("value")) {
            (Some(name), None) => Self {
                name: String::new(),
                value: name.to_owned(),
            },
            (name, value) => Self {
                name: name.unwrap_or("").to_owned(),
                value: value.unwrap_or("").to_owned(),
            },
        }
    }
}

/// `<rtcp-fb type='nack' subtype='pli'/>`
/// ([XEP-0293 §3](https://xmpp.org/extensions/xep-0293.html#format)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpFb {
    /// The feedback type, e.g. `nack`, `transport-cc`.
    pub kind: String,
    /// The optional subtype, e.g. `pli`.
    pub subtype: Option<String>,
}

impl RtcpFb {
    fn from_element(el: &Element) -> Option<Self> {
        Some(Self {
            kind: el.attr("type")?.to_owned(),
            subtype: el.attr("subtype").map(str::to_owned),
        })
    }

    fn to_element(&self) -> Element {
        let mut el = elem("rtcp-fb", ns::JINGLE_RTCP_FB, &[("type", &self.kind)]);
        set_opt(&mut el, "subtype", self.subtype.as_ref());
        el
    }
}

/// `<rtp-hdrext id='1' uri='…'/>`
/// ([XEP-0294 §3](https://xmpp.org/extensions/xep-0294.html#format)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpHdrext {
    /// The extension id, 1–14 (one-byte) or 1–255 (two-byte header).
    pub id: u16,
    /// The extension URI.
    pub uri: String,
    /// The optional `senders` attribute.
    pub senders: Option<Senders>,
}

impl RtpHdrext {
    fn from_element(el: &Element) -> Result<Self, Error> {
        Ok(Self {
            id: number(el, "id")?
                .ok_or_else(|| Error::Malformed("<rtp-hdrext/> lacks 'id'".to_owned()))?,
            uri: required(el, "uri")?.to_owned(),
            senders: el.attr("senders").map(Senders::parse),
        })
    }

    fn to_element(&self) -> Element {
        let mut el = elem("rtp-hdrext", ns::JINGLE_RTP_HDREXT, &[("uri", &self.uri)]);
        set_attr(&mut el, "id", self.id.to_string());
        set_opt(&mut el, "senders", self.senders.map(Senders::as_str));
        el
    }
}
