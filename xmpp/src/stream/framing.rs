//! Incremental framing of an XMPP stream into top-level elements.
//!
//! Bytes go into an [`rxml::RawParser`]; its events are split at the stream
//! level (depth 1 below `<stream:stream>`) and each top-level element is built
//! into a [`minidom::Element`] by its own [`TreeBuilder`]. A top-level element
//! that breaks the size or depth limit, or that is not namespace-well-formed,
//! is *skipped* (its events are counted and discarded until its end tag) so the
//! stream survives; only a lexical error, a single token longer than the size
//! limit, or a skipped element growing past [`SKIP_FACTOR`] times the limit is
//! fatal.

use std::collections::{BTreeMap, VecDeque};

use minidom::tree_builder::TreeBuilder;
use minidom::Element;
use rxml::error::EndOrError;
use rxml::{Options, Parse, RawEvent, RawParser, WithOptions};

use crate::error::Error;

/// A skipped element may reach this many times the stanza size limit before
/// the stream is closed: past it, following the framing costs more memory
/// than the limit is meant to allow.
pub(crate) const SKIP_FACTOR: usize = 16;

/// What the framer found in the bytes.
#[derive(Debug)]
pub(crate) enum Frame {
    /// The root start tag (normally `<stream:stream>`).
    Header(RootHead),
    /// A complete top-level element.
    Element(Element),
    /// A top-level element that was skipped; `head` is the element with its
    /// attributes but without children, when its start tag was complete.
    Dropped {
        /// The start tag of the skipped element.
        head: Option<Element>,
        /// Why it was skipped.
        reason: Error,
    },
    /// `</stream:stream>`.
    End,
}

/// The start tag of the root element.
#[derive(Debug, Default)]
pub(crate) struct RootHead {
    /// Its prefix, if any (`stream`).
    pub(crate) prefix: Option<String>,
    /// Its local name (`stream`).
    pub(crate) name: String,
    /// Its attributes as `(prefix, local name, value)`, namespace
    /// declarations excluded.
    pub(crate) attrs: Vec<(Option<String>, String, String)>,
    /// Its namespace declarations, prefix → namespace (`None` = default).
    pub(crate) prefixes: BTreeMap<Option<String>, String>,
}

impl RootHead {
    /// The namespace of the root element itself.
    pub(crate) fn ns(&self) -> Option<&str> {
        self.prefixes.get(&self.prefix).map(String::as_str)
    }

    /// The value of the unprefixed attribute `name`.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(p, n, _)| p.is_none() && n == name)
            .map(|(_, _, v)| v.as_str())
    }
}

/// A top-level element being read.
struct Current {
    /// `None` once the element is being skipped.
    builder: Option<TreeBuilder>,
    /// Bytes consumed by this element so far.
    bytes: usize,
    /// The element's start tag, once complete.
    head: Option<Element>,
    /// Name, namespace and addressing attributes (`from`, `to`, `id`,
    /// `type`) of the start tag, kept even while skipping so that a skipped
    /// stanza can still be answered with an error.
    addressing: (String, Option<String>, Vec<(String, String)>),
    /// Why the element is being skipped.
    reason: Option<Error>,
}

/// Splits a byte stream into top-level elements (see the module doc).
pub(crate) struct Framer {
    parser: RawParser,
    max_size: usize,
    max_depth: usize,
    /// Element depth: 0 outside the root, 1 inside `<stream:stream>`.
    depth: usize,
    /// The root start tag while it is being read.
    root_head: Option<RootHead>,
    /// Namespace declarations of the root (prefix → namespace).
    root_prefixes: BTreeMap<Option<String>, String>,
    current: Option<Current>,
    ended: bool,
}

impl Framer {
    /// A framer with a top-level element limit of `max_size` bytes and
    /// `max_depth` levels (the stanza itself is level 1).
    pub(crate) fn new(max_size: usize, max_depth: usize) -> Self {
        let options = Options {
            max_token_length: max_size.max(64),
            ..Options::default()
        };
        Self {
            parser: RawParser::with_options(options),
            max_size,
            max_depth,
            depth: 0,
            root_head: None,
            root_prefixes: BTreeMap::new(),
            current: None,
            ended: false,
        }
    }

    /// Feeds bytes; complete frames are appended to `out`.
    ///
    /// # Errors
    /// A fatal error after which the framing is lost:
    /// [`Error::NotWellFormed`], [`Error::StanzaTooLarge`] (a token longer than
    /// the limit, or a skipped element past [`SKIP_FACTOR`] times it).
    pub(crate) fn feed(&mut self, data: &[u8], out: &mut VecDeque<Frame>) -> Result<(), Error> {
        let mut buf = data;
        while !self.ended {
            match self.parser.parse(&mut buf, false) {
                Ok(Some(ev)) => self.process(ev, out)?,
                Ok(None) => break,
                Err(EndOrError::NeedMoreData) => {
                    if buf.is_empty() {
                        break;
                    }
                }
                Err(EndOrError::Error(rxml::Error::RestrictedXml(what))) => {
                    return Err(if what.contains("long") {
                        Error::StanzaTooLarge {
                            limit: self.max_size,
                        }
                    } else {
                        Error::NotWellFormed(format!("restricted xml: {what}"))
                    });
                }
                Err(EndOrError::Error(e)) => return Err(Error::NotWellFormed(e.to_string())),
            }
        }
        Ok(())
    }

    fn process(&mut self, ev: RawEvent, out: &mut VecDeque<Frame>) -> Result<(), Error> {
        let len = ev.metrics().len();
        match ev {
            RawEvent::XmlDeclaration(..) => return Ok(()),
            RawEvent::ElementHeadOpen(_, (prefix, name)) if self.depth == 0 => {
                self.depth = 1;
                self.root_head = Some(RootHead {
                    prefix: prefix.map(|p| p.to_string()),
                    name: name.to_string(),
                    ..RootHead::default()
                });
                return Ok(());
            }
            RawEvent::Attribute(_, (prefix, name), value) if self.root_head.is_some() => {
                let prefix = prefix.map(|p| p.to_string());
                match (prefix.as_deref(), name.as_str()) {
                    (None, "xmlns") => {
                        self.root_prefixes.insert(None, value.to_string());
                    }
                    (Some("xmlns"), p) => {
                        self.root_prefixes
                            .insert(Some(p.to_owned()), value.to_string());
                    }
                    _ => {
                        if let Some(head) = self.root_head.as_mut() {
                            head.attrs
                                .push((prefix, name.to_string(), value.to_string()));
                        }
                    }
                }
                return Ok(());
            }
            RawEvent::ElementHeadClose(_) if self.root_head.is_some() => {
                let mut head = self.root_head.take().unwrap_or_default();
                head.prefixes = self.root_prefixes.clone();
                out.push_back(Frame::Header(head));
                return Ok(());
            }
            RawEvent::ElementFoot(_) if self.depth == 1 => {
                self.depth = 0;
                self.ended = true;
                out.push_back(Frame::End);
                return Ok(());
            }
            RawEvent::Text(..) if self.depth == 1 => {
                // Whitespace keepalives between stanzas.
                return Ok(());
            }
            _ => {}
        }

        // Inside a top-level element.
        if let RawEvent::ElementHeadOpen(..) = ev {
            self.depth += 1;
            if self.depth == 2 {
                let prefixes = self.root_prefixes.clone();
                self.current = Some(Current {
                    builder: Some(TreeBuilder::new().with_prefixes_stack(vec![prefixes.into()])),
                    bytes: 0,
                    head: None,
                    addressing: (String::new(), None, Vec::new()),
                    reason: None,
                });
            }
        }
        let Some(cur) = self.current.as_mut() else {
            return Err(Error::NotWellFormed("event outside the stream".into()));
        };
        cur.bytes += len;
        if cur.bytes > self.max_size.saturating_mul(SKIP_FACTOR) {
            return Err(Error::StanzaTooLarge {
                limit: self.max_size,
            });
        }
        if cur.builder.is_some() {
            if cur.bytes > self.max_size {
                cur.builder = None;
                cur.reason = Some(Error::StanzaTooLarge {
                    limit: self.max_size,
                });
            } else if self.depth.saturating_sub(1) > self.max_depth {
                cur.builder = None;
                cur.reason = Some(Error::TooDeep {
                    limit: self.max_depth,
                });
            }
        }
        if self.depth == 2 && cur.head.is_none() {
            match &ev {
                RawEvent::ElementHeadOpen(_, (None, name)) => cur.addressing.0 = name.to_string(),
                RawEvent::Attribute(_, (None, name), value) => match name.as_str() {
                    "xmlns" => cur.addressing.1 = Some(value.to_string()),
                    "from" | "to" | "id" | "type" => {
                        cur.addressing.2.push((name.to_string(), value.to_string()));
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        let is_head_close = matches!(ev, RawEvent::ElementHeadClose(_));
        let is_foot = matches!(ev, RawEvent::ElementFoot(_));
        if let Some(builder) = cur.builder.as_mut() {
            if let Err(e) = builder.process_event(ev) {
                cur.builder = None;
                cur.reason = Some(Error::Malformed(e.to_string()));
            } else if is_head_close && self.depth == 2 {
                cur.head = builder.top().cloned();
            }
        }
        if is_foot {
            self.depth -= 1;
            if self.depth == 1 {
                let cur = self.current.take().expect("current element exists");
                let frame = match cur.builder.and_then(|b| b.root) {
                    Some(el) => Frame::Element(el),
                    None => Frame::Dropped {
                        head: cur
                            .head
                            .or_else(|| self.head_from_addressing(cur.addressing)),
                        reason: cur
                            .reason
                            .unwrap_or_else(|| Error::Malformed("incomplete element".into())),
                    },
                };
                out.push_back(frame);
            }
        }
        Ok(())
    }
}

impl Framer {
    /// Rebuilds a start tag from the addressing attributes of a skipped
    /// element whose head was too large to build.
    fn head_from_addressing(
        &self,
        (name, xmlns, attrs): (String, Option<String>, Vec<(String, String)>),
    ) -> Option<Element> {
        if name.is_empty() {
            return None;
        }
        let ns = xmlns.or_else(|| self.root_prefixes.get(&None).cloned())?;
        let mut el = Element::bare(name, ns);
        for (k, v) in attrs {
            if let Ok(k) = rxml::NcName::try_from(k) {
                el.set_attr(rxml::Namespace::NONE, k, v);
            }
        }
        Some(el)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(framer: &mut Framer, data: &[u8]) -> Vec<Frame> {
        let mut out = VecDeque::new();
        framer.feed(data, &mut out).expect("feed");
        out.into_iter().collect()
    }

    const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' from='gw.localhost' id='abc'>";

    #[test]
    fn splits_stanzas_fed_byte_by_byte() {
        let mut f = Framer::new(1024, 8);
        let mut all = Vec::new();
        let input = [
            HEADER,
            b"<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq> \n<message/></stream:stream>",
        ]
        .concat();
        for b in &input {
            all.extend(frames(&mut f, std::slice::from_ref(b)));
        }
        assert_eq!(all.len(), 4, "{all:?}");
        let Frame::Header(head) = &all[0] else {
            panic!("{:?}", all[0])
        };
        assert_eq!(head.attr("id"), Some("abc"));
        assert_eq!(head.ns(), Some("http://etherx.jabber.org/streams"));
        assert_eq!(head.name, "stream");
        let Frame::Element(iq) = &all[1] else {
            panic!("{:?}", all[1])
        };
        assert!(iq.is("iq", "jabber:component:accept"));
        assert!(iq.has_child("ping", "urn:xmpp:ping"));
        assert!(matches!(&all[2], Frame::Element(m) if m.is("message", "jabber:component:accept")));
        assert!(matches!(all[3], Frame::End));
    }

    #[test]
    fn oversized_and_deep_elements_are_skipped_and_stream_continues() {
        let mut f = Framer::new(200, 4);
        let mut input = HEADER.to_vec();
        input.extend_from_slice(b"<message from='a@b' id='big'><body>");
        input.extend(std::iter::repeat_n(b'x', 500));
        input.extend_from_slice(b"</body></message>");
        input.extend_from_slice(b"<iq id='deep'><a><b><c><d><e/></d></c></b></a></iq>");
        input.extend_from_slice(b"<iq id='undeclared'><p:x/></iq>");
        input.extend_from_slice(b"<iq id='ok'/>");
        let got = frames(&mut f, &input);
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(
            matches!(&got[1], Frame::Dropped { head: Some(h), reason: Error::StanzaTooLarge { limit: 200 } } if h.attr("id") == Some("big"))
        );
        assert!(
            matches!(&got[2], Frame::Dropped { head: Some(h), reason: Error::TooDeep { limit: 4 } } if h.attr("id") == Some("deep"))
        );
        assert!(matches!(
            &got[3],
            Frame::Dropped {
                reason: Error::Malformed(_),
                ..
            }
        ));
        assert!(matches!(&got[4], Frame::Element(e) if e.attr("id") == Some("ok")));
    }

    #[test]
    fn broken_framing_is_fatal() {
        let mut f = Framer::new(1024, 8);
        let mut out = VecDeque::new();
        f.feed(HEADER, &mut out).unwrap();
        let err = f.feed(b"<iq></message>", &mut out).unwrap_err();
        assert!(matches!(err, Error::NotWellFormed(_)), "{err:?}");
    }

    #[test]
    fn endless_skipped_element_is_fatal() {
        let mut f = Framer::new(100, 4);
        let mut out = VecDeque::new();
        f.feed(HEADER, &mut out).unwrap();
        f.feed(b"<message><body>", &mut out).unwrap();
        let chunk = vec![b'y'; 50];
        let mut res = Ok(());
        for _ in 0..100 {
            res = f.feed(&chunk, &mut out);
            if res.is_err() {
                break;
            }
        }
        assert_eq!(res, Err(Error::StanzaTooLarge { limit: 100 }));
    }
}
