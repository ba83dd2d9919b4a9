//! The sans-IO XEP-0114 component stream.
//!
//! [`Stream`] speaks the [Jabber Component Protocol,
//! XEP-0114](https://xmpp.org/extensions/xep-0114.html) over bytes that the
//! caller moves between it and a TCP connection, and keeps the stream alive
//! with [XEP-0199](https://xmpp.org/extensions/xep-0199.html) pings.
//!
//! # Robustness
//!
//! * A top-level element that is well-formed XML but not a usable stanza is
//!   passed up as [`Event::Stanza`] (the [`crate::component`] layer answers it
//!   with a stanza error) and never ends the stream.
//! * A top-level element larger than [`Config::max_stanza_size`] or nested
//!   deeper than [`Config::max_depth`], or with an undeclared namespace
//!   prefix, is skipped up to its end tag and reported as
//!   [`Event::StanzaDropped`]; the stream stays up.
//! * Framing cannot be kept, and the stream is closed with a stream error,
//!   when the bytes are not well-formed XML (`<not-well-formed/>`), when a
//!   single token (a name, an attribute value) is longer than
//!   `max_stanza_size`, or when a skipped element keeps growing past 16 times
//!   `max_stanza_size` (`<policy-violation/>`): following its framing further
//!   would cost unbounded memory. The driver then reconnects.
//!
//! # Deviations from RFC 6120
//!
//! RFC 6120 §4.9.3 would close the stream with `<unsupported-stanza-type/>`,
//! `<invalid-namespace/>` or `<policy-violation/>` for the elements above
//! that are skipped or passed up instead; one bad stanza relayed by the
//! server must not cut every call (INTEROP.md: "never let one bad stanza end
//! the loop").

mod framing;

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use minidom::Element;
use sha1::{Digest, Sha1};

use crate::error::Error;
use framing::{Frame, Framer, RootHead};

/// The namespace of component streams and their stanzas
/// ([XEP-0114 §3](https://xmpp.org/extensions/xep-0114.html#protocol)).
pub const NS_COMPONENT: &str = "jabber:component:accept";
/// The stream namespace ([RFC 6120 §4.8.1](https://www.rfc-editor.org/rfc/rfc6120#section-4.8.1)).
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";
/// The namespace of stream error conditions
/// ([RFC 6120 §4.9.3](https://www.rfc-editor.org/rfc/rfc6120#section-4.9.3)).
pub const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// The XEP-0199 ping namespace.
pub const NS_PING: &str = "urn:xmpp:ping";

/// Settings of a [`Stream`]; quinn-style setters return `&mut Self`.
#[derive(Clone)]
pub struct Config {
    pub(crate) domain: String,
    pub(crate) secret: String,
    pub(crate) ping_to: String,
    pub(crate) ping_interval: Duration,
    pub(crate) ping_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_stanza_size: usize,
    pub(crate) max_depth: usize,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret (STYLE.md R10).
        f.debug_struct("Config")
            .field("domain", &self.domain)
            .field("ping_to", &self.ping_to)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_stanza_size", &self.max_stanza_size)
            .field("max_depth", &self.max_depth)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Settings for the component `domain` (e.g. `gw.example.com`) that
    /// authenticates with the shared `secret`.
    ///
    /// Pings go to the parent domain (`example.com`; the domain itself when
    /// it has a single label), see [`Self::ping_to`].
    pub fn new(domain: impl Into<String>, secret: impl Into<String>) -> Self {
        let domain = domain.into();
        let ping_to = match domain.split_once('.') {
            Some((_, parent)) if !parent.is_empty() => parent.to_owned(),
            _ => domain.clone(),
        };
        Self {
            domain,
            secret: secret.into(),
            ping_to,
            ping_interval: Duration::from_secs(60),
            ping_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(30),
            max_stanza_size: 256 * 1024,
            max_depth: 32,
        }
    }

    /// The component's domain, the `to` of the stream header.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Where XEP-0199 pings go: the XMPP server's domain. Any `result` or
    /// `error` reply proves the stream alive
    /// ([XEP-0199 §4.2](https://xmpp.org/extensions/xep-0199.html#c2s)).
    /// Defaults to the component domain minus its first label.
    pub fn ping_to(&mut self, domain: impl Into<String>) -> &mut Self {
        self.ping_to = domain.into();
        self
    }

    /// Time from the handshake, and from each ping reply, to the next ping;
    /// defaults to 60 s, well under the usual server read timeouts (Prosody:
    /// 840 s). Pings go out whatever other traffic there is, so both
    /// directions see data at least this often.
    pub fn ping_interval(&mut self, interval: Duration) -> &mut Self {
        self.ping_interval = interval;
        self
    }

    /// How long a ping may go unanswered before the stream is closed with
    /// [`Error::PingTimeout`]; defaults to 30 s.
    pub fn ping_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.ping_timeout = timeout;
        self
    }

    /// How long the server may take to send its stream header and accept the
    /// handshake before [`Error::HandshakeTimeout`]; defaults to 30 s.
    pub fn handshake_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Largest top-level element accepted, in bytes of XML; defaults to
    /// 256 KiB (Prosody's default stanza size limit for c2s). Larger ones are
    /// dropped (see the module doc).
    pub fn max_stanza_size(&mut self, bytes: usize) -> &mut Self {
        self.max_stanza_size = bytes;
        self
    }

    /// Deepest element nesting accepted inside a stanza, the stanza being
    /// level 1; defaults to 32.
    pub fn max_depth(&mut self, levels: usize) -> &mut Self {
        self.max_depth = levels;
        self
    }
}

/// Something the caller should know about, from [`Stream::poll_event`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake succeeded: stanzas can be sent.
    Connected,
    /// A top-level element from the server (normally `iq`, `message` or
    /// `presence` in [`NS_COMPONENT`]); it has not been validated as a stanza.
    Stanza(Element),
    /// A top-level element was skipped without ending the stream.
    StanzaDropped {
        /// Its start tag (name and attributes, no children), when complete,
        /// so that a stanza error can be returned.
        head: Option<Element>,
        /// [`Error::StanzaTooLarge`], [`Error::TooDeep`] or
        /// [`Error::Malformed`].
        reason: Error,
    },
    /// The stream is over; the caller writes out the last
    /// [`Stream::poll_transmit`] bytes, closes the connection and may
    /// reconnect with a new [`Stream`].
    Closed {
        /// `None` after a local [`Stream::close`]; otherwise
        /// [`Error::SecretRejected`], [`Error::StreamError`],
        /// [`Error::StreamClosed`], [`Error::NotWellFormed`],
        /// [`Error::StanzaTooLarge`], [`Error::BadStreamHeader`],
        /// [`Error::PingTimeout`] or [`Error::HandshakeTimeout`].
        reason: Option<Error>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the server's stream header.
    AwaitHeader,
    /// Handshake sent, waiting for `<handshake/>`.
    Handshaking,
    Connected,
    /// We sent `</stream:stream>`, waiting for the server's.
    Closing,
    Closed,
}

/// Timers of the stream, an index into [`TimerTable`].
#[derive(Debug, Clone, Copy)]
enum Timer {
    /// End of the handshake allowance.
    Handshake = 0,
    /// When to send the next ping.
    Ping = 1,
    /// When the outstanding ping times out.
    PingReply = 2,
}

#[derive(Debug, Default)]
struct TimerTable([Option<Instant>; 3]);

impl TimerTable {
    fn set(&mut self, t: Timer, at: Instant) {
        self.0[t as usize] = Some(at);
    }
    fn stop(&mut self, t: Timer) {
        self.0[t as usize] = None;
    }
    fn expired(&self, t: Timer, now: Instant) -> bool {
        self.0[t as usize].is_some_and(|at| at <= now)
    }
    fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
}

/// A sans-IO XEP-0114 component stream (STYLE.md R2).
///
/// Methods:
/// * A, getters: [`Self::is_connected`], [`Self::stream_id`];
/// * B, input: [`Self::handle_bytes`], [`Self::handle_eof`],
///   [`Self::handle_timeout`];
/// * C, commands: [`Self::send`], [`Self::close`];
/// * D, output: [`Self::poll_transmit`], [`Self::poll_event`],
///   [`Self::poll_timeout`].
///
/// After every B or C call, drain `poll_transmit` (write the bytes to the
/// socket), then `poll_event`, then re-arm the timer from `poll_timeout`.
/// The stream opens itself: the first `poll_transmit` after [`Self::new`]
/// holds the stream header.
///
/// ```no_run
/// # use std::time::Instant;
/// # use xmpp::stream::{Config, Event, Stream};
/// # fn read(_: &mut [u8]) -> usize { 0 }
/// # fn write(_: &[u8]) {}
/// let mut stream = Stream::new(Config::new("gw.example.com", "secret"), Instant::now());
/// let mut buf = [0u8; 4096];
/// loop {
///     while let Some(bytes) = stream.poll_transmit() {
///         write(&bytes);
///     }
///     while let Some(event) = stream.poll_event() {
///         match event {
///             Event::Stanza(el) => { /* give it to xmpp::component */ }
///             Event::Closed { .. } => return,
///             _ => {}
///         }
///     }
///     // wait for readable or stream.poll_timeout(), then:
///     let n = read(&mut buf);
///     stream.handle_bytes(Instant::now(), &buf[..n]);
///     stream.handle_timeout(Instant::now());
/// }
/// ```
pub struct Stream {
    config: Config,
    state: State,
    framer: Framer,
    frames: VecDeque<Frame>,
    transmit: Vec<u8>,
    events: VecDeque<Event>,
    timers: TimerTable,
    stream_id: Option<String>,
    /// The id of the outstanding ping.
    ping_id: Option<String>,
    ping_counter: u64,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("domain", &self.config.domain)
            .field("state", &self.state)
            .field("stream_id", &self.stream_id)
            .finish_non_exhaustive()
    }
}

impl Stream {
    /// Starts a stream for one TCP connection that has just been opened;
    /// queues the stream header and starts the handshake timer at `now`.
    pub fn new(config: Config, now: Instant) -> Self {
        let framer = Framer::new(config.max_stanza_size, config.max_depth);
        let mut s = Self {
            state: State::AwaitHeader,
            framer,
            frames: VecDeque::new(),
            transmit: Vec::new(),
            events: VecDeque::new(),
            timers: TimerTable::default(),
            stream_id: None,
            ping_id: None,
            ping_counter: 0,
            config,
        };
        s.transmit.extend_from_slice(
            format!(
                "<?xml version='1.0'?><stream:stream xmlns='{NS_COMPONENT}' xmlns:stream='{NS_STREAM}' to='{}'>",
                escape(&s.config.domain)
            )
            .as_bytes(),
        );
        s.timers
            .set(Timer::Handshake, now + s.config.handshake_timeout);
        s
    }

    /// Whether the handshake has succeeded and the stream is still open.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// The stream id the server chose, once its header has arrived.
    pub fn stream_id(&self) -> Option<&str> {
        self.stream_id.as_deref()
    }

    /// Feeds bytes read from the connection.
    ///
    /// Problems show up as [`Event::StanzaDropped`] or [`Event::Closed`];
    /// bytes after the stream closed are ignored.
    pub fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        if matches!(self.state, State::Closed) {
            return;
        }
        if let Err(e) = self.framer.feed(data, &mut self.frames) {
            // Deliver what was complete before the error, then fail.
            self.process_frames(now);
            let condition = match e {
                Error::StanzaTooLarge { .. } => "policy-violation",
                _ => "not-well-formed",
            };
            tracing::warn!(error = %e, "xmpp stream framing lost");
            self.fail(condition, e);
            return;
        }
        self.process_frames(now);
    }

    /// Tells the stream that the connection reached end of file (or broke).
    pub fn handle_eof(&mut self, _now: Instant) {
        if matches!(self.state, State::Closing) {
            self.finish(None);
        } else if !matches!(self.state, State::Closed) {
            self.finish(Some(Error::StreamClosed));
        }
    }

    /// Runs the timers due at `now`: the handshake allowance, sending a
    /// ping, and the ping reply deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Closed => {}
            State::AwaitHeader | State::Handshaking => {
                if self.timers.expired(Timer::Handshake, now) {
                    self.timers.stop(Timer::Handshake);
                    let t = self.config.handshake_timeout;
                    self.fail("connection-timeout", Error::HandshakeTimeout(t));
                }
            }
            State::Connected | State::Closing => {
                if self.timers.expired(Timer::PingReply, now) {
                    let t = self.config.ping_timeout;
                    tracing::warn!(timeout = ?t, "xmpp server did not answer ping");
                    self.fail("connection-timeout", Error::PingTimeout(t));
                    return;
                }
                if self.state == State::Connected
                    && self.ping_id.is_none()
                    && self.timers.expired(Timer::Ping, now)
                {
                    self.send_ping(now);
                }
            }
        }
    }

    /// Queues a stanza for the server; it is serialized as is (nothing is
    /// stamped). Its top-level namespace must be [`NS_COMPONENT`].
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] when the stream is not connected or the element
    /// is in another namespace.
    pub fn send(&mut self, stanza: &Element) -> Result<(), Error> {
        if self.state != State::Connected {
            return Err(Error::ApiMisuse("stream not connected"));
        }
        if stanza.ns() != NS_COMPONENT {
            return Err(Error::ApiMisuse(
                "stanzas on a component stream must be in jabber:component:accept",
            ));
        }
        stanza
            .write_to(&mut self.transmit)
            .map_err(|e| Error::Malformed(e.to_string()))?;
        Ok(())
    }

    /// Closes the stream cleanly: sends `</stream:stream>`; the stream reports
    /// [`Event::Closed`] with `reason: None` once the server closes too or the
    /// connection ends ([RFC 6120 §4.4](https://www.rfc-editor.org/rfc/rfc6120#section-4.4)).
    pub fn close(&mut self, _now: Instant) {
        match self.state {
            State::Closed | State::Closing => {}
            _ => {
                self.transmit.extend_from_slice(b"</stream:stream>");
                self.state = State::Closing;
                self.timers.stop(Timer::Ping);
                self.timers.stop(Timer::Handshake);
            }
        }
    }

    /// Bytes to write to the connection, if any. Changes after every B and C
    /// method.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.transmit.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.transmit))
        }
    }

    /// The next event, if any. Changes after every B and C method.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] must be called next; `None` when no
    /// timer runs (e.g. after close). Changes after every B and C method.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            None
        } else {
            self.timers.next()
        }
    }

    fn process_frames(&mut self, now: Instant) {
        while let Some(frame) = self.frames.pop_front() {
            if self.state == State::Closed {
                self.frames.clear();
                return;
            }
            match frame {
                Frame::Header(head) => self.on_header(&head),
                Frame::End => {
                    if self.state != State::Closing {
                        tracing::info!("xmpp server closed the stream");
                        self.transmit.extend_from_slice(b"</stream:stream>");
                        self.finish(Some(Error::StreamClosed));
                    } else {
                        self.finish(None);
                    }
                }
                Frame::Element(el) => self.on_element(now, el),
                Frame::Dropped { head, reason } => {
                    tracing::warn!(error = %reason, "dropped an element from the xmpp server");
                    self.events.push_back(Event::StanzaDropped { head, reason });
                }
            }
        }
    }

    fn on_header(&mut self, head: &RootHead) {
        if self.state != State::AwaitHeader {
            return;
        }
        if head.name != "stream" || head.ns() != Some(NS_STREAM) {
            let e = Error::BadStreamHeader(format!("root element {:?} {:?}", head.name, head.ns()));
            return self.fail("invalid-namespace", e);
        }
        if head.prefixes.get(&None).map(String::as_str) != Some(NS_COMPONENT) {
            let e = Error::BadStreamHeader(format!(
                "default namespace {:?}, not {NS_COMPONENT}",
                head.prefixes.get(&None)
            ));
            return self.fail("invalid-namespace", e);
        }
        let Some(id) = head.attr("id") else {
            // Without an id there is nothing to hash; the server may still
            // send a stream error, which on_element reports.
            self.state = State::Handshaking;
            return;
        };
        self.stream_id = Some(id.to_owned());
        let mut sha = Sha1::new();
        sha.update(id.as_bytes());
        sha.update(self.config.secret.as_bytes());
        let digest = sha.finalize();
        let mut hex = String::with_capacity(40);
        for b in digest {
            hex.push_str(&format!("{b:02x}"));
        }
        self.transmit
            .extend_from_slice(format!("<handshake>{hex}</handshake>").as_bytes());
        self.state = State::Handshaking;
    }

    fn on_element(&mut self, now: Instant, el: Element) {
        if el.is("error", NS_STREAM) {
            return self.on_stream_error(&el);
        }
        match self.state {
            State::AwaitHeader => {}
            State::Handshaking => {
                if el.is("handshake", NS_COMPONENT) {
                    if self.stream_id.is_none() {
                        let e = Error::BadStreamHeader("stream header without id".into());
                        return self.fail("invalid-id", e);
                    }
                    tracing::info!(domain = %self.config.domain, "xmpp component connected");
                    self.state = State::Connected;
                    self.timers.stop(Timer::Handshake);
                    self.timers
                        .set(Timer::Ping, now + self.config.ping_interval);
                    self.events.push_back(Event::Connected);
                } else {
                    tracing::debug!(name = el.name(), "ignored element before handshake");
                }
            }
            State::Connected | State::Closing => {
                if self.is_ping_reply(&el) {
                    self.ping_id = None;
                    self.timers.stop(Timer::PingReply);
                    if self.state == State::Connected {
                        self.timers
                            .set(Timer::Ping, now + self.config.ping_interval);
                    }
                    return;
                }
                if el.ns() == NS_STREAM {
                    tracing::debug!(name = el.name(), "ignored stream-level element");
                    return;
                }
                self.events.push_back(Event::Stanza(el));
            }
            State::Closed => {}
        }
    }

    fn is_ping_reply(&self, el: &Element) -> bool {
        let Some(ping_id) = self.ping_id.as_deref() else {
            return false;
        };
        el.is("iq", NS_COMPONENT)
            && el.attr("id") == Some(ping_id)
            && matches!(el.attr("type"), Some("result" | "error"))
    }

    fn on_stream_error(&mut self, el: &Element) {
        let condition = el
            .children()
            .find(|c| c.ns() == NS_STREAM_ERRORS && c.name() != "text")
            .map(|c| c.name().to_owned())
            .unwrap_or_else(|| "undefined-condition".to_owned());
        let text = el
            .get_child("text", NS_STREAM_ERRORS)
            .map(Element::text)
            .filter(|t| !t.is_empty());
        let error = if condition == "not-authorized"
            && matches!(self.state, State::Handshaking | State::AwaitHeader)
        {
            Error::SecretRejected
        } else {
            Error::StreamError { condition, text }
        };
        // Answer with our closing tag (RFC 6120 §4.9.1.1).
        self.transmit.extend_from_slice(b"</stream:stream>");
        self.finish(Some(error));
    }

    fn send_ping(&mut self, now: Instant) {
        self.ping_counter += 1;
        let id = format!("jsg-ping-{}", self.ping_counter);
        self.transmit.extend_from_slice(
            format!(
                "<iq type='get' id='{id}' from='{}' to='{}'><ping xmlns='{NS_PING}'/></iq>",
                escape(&self.config.domain),
                escape(&self.config.ping_to)
            )
            .as_bytes(),
        );
        tracing::trace!(%id, "ping sent to xmpp server");
        self.ping_id = Some(id);
        self.timers.stop(Timer::Ping);
        self.timers
            .set(Timer::PingReply, now + self.config.ping_timeout);
    }

    /// Sends a stream error and the closing tag, then reports the close.
    fn fail(&mut self, condition: &str, error: Error) {
        if self.state == State::Closed {
            return;
        }
        self.transmit.extend_from_slice(
            format!(
                "<stream:error><{condition} xmlns='{NS_STREAM_ERRORS}'/></stream:error></stream:stream>"
            )
            .as_bytes(),
        );
        self.finish(Some(error));
    }

    fn finish(&mut self, reason: Option<Error>) {
        self.state = State::Closed;
        self.timers = TimerTable::default();
        self.ping_id = None;
        self.events.push_back(Event::Closed { reason });
    }
}

/// Escapes text for an XML attribute value in single quotes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
