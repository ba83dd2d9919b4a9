//! Agent configuration ([STYLE.md R9]: plain data, RFC-sourced defaults, quinn-style setters).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Configuration of one [`crate::Agent`].
///
/// Give every agent its own `rng_seed` (fresh OS entropy in production): ufrag, pwd,
/// tie-breaker and transaction ids all come from it.
#[derive(Clone)]
pub struct Config {
    pub(crate) ta: Duration,
    pub(crate) rto: Duration,
    pub(crate) max_rto: Duration,
    pub(crate) max_retransmits: u32,
    pub(crate) stun_servers: Vec<SocketAddr>,
    pub(crate) consent_interval: Duration,
    pub(crate) consent_timeout: Duration,
    pub(crate) disconnected_timeout: Duration,
    pub(crate) nomination_timeout: Duration,
    pub(crate) max_pairs: usize,
    pub(crate) rng_seed: [u8; 32],
}

impl Default for Config {
    fn default() -> Self {
        Self {
            // RFC 8445 §14.2: Ta defaults to 50 ms.
            ta: Duration::from_millis(50),
            // RFC 8445 §14.3 lets the RTO of connectivity checks be configured; the agent
            // uses MAX(rto, Ta * active pairs). A steady 250 ms (no doubling; libwebrtc
            // pings far more often) keeps a call connecting within 5 s under 30 % loss
            // (scenario test s7); see ice/docs/ice.md.
            rto: Duration::from_millis(250),
            max_rto: Duration::from_millis(250),
            // 21 transmissions: a transaction gives up after about 5.25 s (RFC 8489's
            // Rc = 7 with a 500 ms RTO that keeps doubling gives up after 39.5 s).
            max_retransmits: 20,
            stun_servers: Vec::new(),
            // RFC 7675 §5.1: a consent check every 5 s (randomised to 4–6 s).
            consent_interval: Duration::from_secs(5),
            // RFC 7675 §5.1: consent expires 30 s after the last response.
            consent_timeout: Duration::from_secs(30),
            disconnected_timeout: Duration::from_secs(8),
            nomination_timeout: Duration::from_millis(300),
            // RFC 8445 §6.1.2.5: limit the check list to 100 pairs.
            max_pairs: 100,
            rng_seed: [0; 32],
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The seed determines the ICE password: never print it.
        f.debug_struct("Config")
            .field("ta", &self.ta)
            .field("rto", &self.rto)
            .field("max_rto", &self.max_rto)
            .field("max_retransmits", &self.max_retransmits)
            .field("stun_servers", &self.stun_servers.len())
            .field("consent_interval", &self.consent_interval)
            .field("consent_timeout", &self.consent_timeout)
            .field("nomination_timeout", &self.nomination_timeout)
            .field("max_pairs", &self.max_pairs)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Pacing interval Ta between new STUN transactions; defaults to 50 ms
    /// ([RFC 8445 §14.2](https://www.rfc-editor.org/rfc/rfc8445#section-14.2)).
    pub fn ta(&mut self, ta: Duration) -> &mut Self {
        self.ta = ta.max(Duration::from_millis(5));
        self
    }

    /// Initial STUN retransmission timeout; defaults to 250 ms. For connectivity checks
    /// the agent uses `MAX(rto, Ta * (Waiting + In-Progress pairs))`. Doubles on each
    /// retransmission up to [`Config::max_rto`]
    /// ([RFC 8445 §14.3](https://www.rfc-editor.org/rfc/rfc8445#section-14.3),
    /// [RFC 8489 §6.2.1](https://www.rfc-editor.org/rfc/rfc8489#section-6.2.1)).
    pub fn rto(&mut self, rto: Duration) -> &mut Self {
        self.rto = rto;
        self
    }

    /// Upper bound of the retransmission interval; defaults to 250 ms (no back-off while
    /// checking).
    pub fn max_rto(&mut self, max_rto: Duration) -> &mut Self {
        self.max_rto = max_rto;
        self
    }

    /// Retransmissions per transaction (Rc − 1); defaults to 20, so that with the
    /// default RTOs a check gives up after about 5.25 s. A transaction fails one `max_rto`
    /// after its last transmission ([RFC 8489 §6.2.1](https://www.rfc-editor.org/rfc/rfc8489#section-6.2.1)).
    pub fn max_retransmits(&mut self, n: u32) -> &mut Self {
        self.max_retransmits = n;
        self
    }

    /// STUN servers for server-reflexive candidates
    /// ([RFC 8445 §5.1.1.2](https://www.rfc-editor.org/rfc/rfc8445#section-5.1.1.2)); none by default.
    pub fn stun_server(&mut self, server: SocketAddr) -> &mut Self {
        self.stun_servers.push(server);
        self
    }

    /// Interval of consent checks on the selected pair, randomised ±20 %; defaults to 5 s
    /// ([RFC 7675 §5.1](https://www.rfc-editor.org/rfc/rfc7675#section-5.1)). They are also
    /// the keepalives of [RFC 8445 §11](https://www.rfc-editor.org/rfc/rfc8445#section-11).
    pub fn consent_interval(&mut self, d: Duration) -> &mut Self {
        self.consent_interval = d;
        self
    }

    /// Consent is lost this long after the last consent response; defaults to 30 s
    /// ([RFC 7675 §5.1](https://www.rfc-editor.org/rfc/rfc7675#section-5.1)).
    pub fn consent_timeout(&mut self, d: Duration) -> &mut Self {
        self.consent_timeout = d;
        self
    }

    /// The state becomes `Disconnected` this long without a consent response; defaults to 8 s.
    pub fn disconnected_timeout(&mut self, d: Duration) -> &mut Self {
        self.disconnected_timeout = d;
        self
    }

    /// Controlling agent: nominate the best valid pair this long after the first pair
    /// became valid, unless the best possible pair succeeds earlier; defaults to 300 ms
    /// ([RFC 8445 §8.1.1](https://www.rfc-editor.org/rfc/rfc8445#section-8.1.1)).
    pub fn nomination_timeout(&mut self, d: Duration) -> &mut Self {
        self.nomination_timeout = d;
        self
    }

    /// Maximum candidate pairs in the check list; defaults to 100
    /// ([RFC 8445 §6.1.2.5](https://www.rfc-editor.org/rfc/rfc8445#section-6.1.2.5)).
    pub fn max_pairs(&mut self, n: usize) -> &mut Self {
        self.max_pairs = n.max(1);
        self
    }

    /// Seed of the agent's RNG (ufrag, pwd, tie-breaker, transaction ids). Defaults to
    /// all zeroes, which is only fit for tests: production drivers pass 32 bytes of OS
    /// entropy per agent.
    pub fn rng_seed(&mut self, seed: [u8; 32]) -> &mut Self {
        self.rng_seed = seed;
        self
    }

    /// Convenience for tests: seed from a `u64`.
    pub fn rng_seed_u64(&mut self, seed: u64) -> &mut Self {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&seed.to_le_bytes());
        s[31] = 1;
        self.rng_seed = s;
        self
    }
}
