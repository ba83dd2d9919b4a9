//! Per-engine settings ([`Config`], shared as `Arc<Config>`) and per-call leg parameters
//! ([`LegConfig`]).

use std::time::Duration;

use crate::cert::Fingerprint;
use crate::codec::{Codec, OpusSettings};
use crate::dtls::{DtlsConfig, DtlsContext, DtlsRole};
use crate::error::Error;
use crate::srtp::MasterKey;

/// Media engine settings. Quinn-style: documented setters returning `&mut Self`.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) no_media_timeout: Duration,
    pub(crate) reorder_min_delay: Duration,
    pub(crate) reorder_max_delay: Duration,
    pub(crate) max_concealed_frames: u16,
    pub(crate) opus: OpusSettings,
    pub(crate) allow_unencrypted_client: bool,
    pub(crate) dtls: DtlsConfig,
    /// Built from `dtls` once, shared by every session made with this config.
    pub(crate) dtls_context: Result<DtlsContext, Error>,
    pub(crate) rtcp_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            no_media_timeout: Duration::from_secs(30),
            // One 20 ms packet: reordering of neighbours is fixed even on a clean path.
            reorder_min_delay: Duration::from_millis(20),
            // Issue 4: bounded, at most 60 ms by default.
            reorder_max_delay: Duration::from_millis(60),
            max_concealed_frames: 5,
            opus: OpusSettings::default(),
            allow_unencrypted_client: false,
            dtls: DtlsConfig::default(),
            dtls_context: DtlsContext::new(&DtlsConfig::default()),
            // RFC 3550 §6.2: 5 s minimum interval.
            rtcp_interval: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// Silence after which [`Event::NoMedia`](crate::Event::NoMedia) fires for a direction;
    /// defaults to 30 s.
    pub fn no_media_timeout(&mut self, d: Duration) -> &mut Self {
        self.no_media_timeout = d;
        self
    }

    /// Upper bound of the adaptive target delay of the transcoding path's reorder/jitter
    /// buffer: how long packets behind a sequence gap wait (after their expected arrival)
    /// for the missing one before it is concealed; defaults to 60 ms (three 20 ms
    /// packets). The buffer never holds more than this much audio. Passthrough never
    /// waits. See [`JitterBufferStats`](crate::stats::JitterBufferStats).
    pub fn reorder_max_delay(&mut self, d: Duration) -> &mut Self {
        self.reorder_max_delay = d;
        self
    }

    /// Lower bound of that target delay, used on a steady path; defaults to 20 ms (one
    /// packet). Values above [`reorder_max_delay`](Self::reorder_max_delay) act as it.
    pub fn reorder_min_delay(&mut self, d: Duration) -> &mut Self {
        self.reorder_min_delay = d;
        self
    }

    /// Longest gap, in frames, that Opus FEC/PLC fills; longer gaps restart the stream
    /// with a marker bit. Defaults to 5 (100 ms).
    pub fn max_concealed_frames(&mut self, n: u16) -> &mut Self {
        self.max_concealed_frames = n;
        self
    }

    /// Opus encoder settings for the transcoding path.
    pub fn opus(&mut self, s: OpusSettings) -> &mut Self {
        self.opus = s;
        self
    }

    /// Allow plain RTP on the client leg when the client offered no fingerprint
    /// (Gajim 1.x); defaults to false.
    pub fn allow_unencrypted_client(&mut self, allow: bool) -> &mut Self {
        self.allow_unencrypted_client = allow;
        self
    }

    /// DTLS handshake settings. The handshake configuration is built here, once for every
    /// session made with this `Config` (see [`DtlsContext`]); an invalid one (an MTU under
    /// 64 bytes, a zero timeout) makes [`Session::new`](crate::Session::new) fail with
    /// [`Error::Local`] for DTLS calls.
    pub fn dtls(&mut self, d: DtlsConfig) -> &mut Self {
        self.dtls_context = DtlsContext::new(&d);
        self.dtls = d;
        self
    }

    /// The shared DTLS handshake configuration.
    ///
    /// # Errors
    /// [`Error::Local`] if the [`dtls`](Self::dtls) settings were rejected.
    pub fn dtls_context(&self) -> Result<&DtlsContext, Error> {
        self.dtls_context.as_ref().map_err(Clone::clone)
    }

    /// Interval between RTCP reports on each leg; defaults to 5 s (RFC 3550 §6.2).
    pub fn rtcp_interval(&mut self, d: Duration) -> &mut Self {
        self.rtcp_interval = d;
        self
    }
}

/// How a leg's media is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Security {
    /// Plain RTP/AVP (SIP trunks; the client leg only if [`Config::allow_unencrypted_client`]).
    Plain,
    /// SRTP with SDES keys from `a=crypto` ([RFC 4568](https://www.rfc-editor.org/rfc/rfc4568)):
    /// `local` protects what we send, `remote` is the peer's key.
    Sdes {
        /// Our key, signalled in our `a=crypto`.
        local: MasterKey,
        /// The peer's key from its `a=crypto`.
        remote: MasterKey,
    },
    /// DTLS-SRTP ([RFC 5764](https://www.rfc-editor.org/rfc/rfc5764)); client leg only.
    Dtls {
        /// Our role from the negotiated `setup`.
        role: DtlsRole,
        /// The peer's signalled sha-256 fingerprint.
        remote_fingerprint: Fingerprint,
    },
}

/// One leg's negotiated media parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegConfig {
    /// The audio codec negotiated on this leg.
    pub codec: Codec,
    /// Its payload type on this leg.
    pub payload_type: u8,
    /// Payload type of telephone-event ([RFC 4733](https://www.rfc-editor.org/rfc/rfc4733)) at the
    /// codec's clock rate, if negotiated.
    pub telephone_event: Option<u8>,
    /// Other telephone-event payload types the peer may send on this leg, each with its
    /// own clock rate in Hz (the unit of the event duration,
    /// [RFC 4733 §2.5.1.4](https://www.rfc-editor.org/rfc/rfc4733#section-2.5.1.4)). They
    /// are accepted on receive and relayed to the other leg on its own
    /// [`telephone_event`](Self::telephone_event), durations converted; we never send on
    /// them. libwebrtc (Chromium, Conversations) keeps both `telephone-event/8000` and
    /// `telephone-event/48000` of an offer and may send digits on the 8 kHz one while
    /// its audio is Opus; the RTP timestamps stay in the codec's clock. Default: empty.
    pub extra_telephone_events: Vec<(u8, u32)>,
    /// Media protection.
    pub security: Security,
    /// Our SSRC on this leg (from the caller's seeded RNG).
    pub ssrc: u32,
}
