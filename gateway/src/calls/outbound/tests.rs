//! The bridged call layer's policies against a real SIP user agent and a raw UDP
//! trunk on loopback, with the call layer's clock virtual: the outbound ring timeout
//! (`calls.outbound_ring_timeout`), the early-media policy (`calls.early_media`),
//! `Retry-After` on a 503 for the call limit, and phone numbers redacted in log lines
//! (`log.redact_numbers`).
//!
//! The trunk's answers and the media driver's readiness arrive over real sockets and
//! tasks (each wait bounded by [`WAIT`]); every timer of the call layer fires from the
//! test's `now`, never from the wall clock.

use std::time::Duration;

use minidom::Element;
use xmpp::jingle::{ns, Action as JingleAction, Jingle, ReasonCondition};

use super::super::test_support::{session_initiate, trunk_sdp, Bed, WAIT};
use super::Redactor;

const U: &str = "alice@example.org/Conversations.x1";
const NUMBER: &str = "+15551234567";
const N: &str = "+15551234567@gw.example.com";
const NR: &str = "+15551234567@gw.example.com/gw";

/// What the outbound tests do with [`Bed`].
impl Bed {
    /// alice proposes a call to [`NUMBER`]; once the media driver is ready the INVITE
    /// leaves. Returns the INVITE as the trunk got it.
    async fn call(&mut self) -> String {
        let out = self.deliver(&format!(
            "<message xmlns='jabber:component:accept' type='chat' id='p1' from='{U}' to='{N}'>\
             <propose xmlns='urn:xmpp:jingle-message:0' id='S'>\
             <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose></message>"
        ));
        assert!(
            out.iter()
                .any(|m| m.children().any(|c| c.name() == "proceed")),
            "proceed: {out:?}"
        );
        self.media_ready().await;
        self.trunk.request("INVITE").await
    }

    /// The trunk answers `invite` with `status` (with [`trunk_sdp`] as the body when
    /// `sdp`); the user agent's events go to the call layer until one matches `until`.
    /// Returns what the call layer sent meanwhile.
    async fn trunk_answers(
        &mut self,
        invite: &str,
        (status, phrase): (u16, &str),
        sdp: bool,
        until: impl Fn(&sip::Event) -> bool,
    ) -> Vec<Element> {
        let body = trunk_sdp(self.rtp.local_addr().unwrap().port());
        self.trunk
            .respond(invite, status, phrase, sdp.then_some(body.as_str()))
            .await;
        self.sip_until(&status.to_string(), until).await
    }

    /// The trunk answers `invite` with 183 and SDP; the call layer's stanzas until the
    /// user agent's `EarlyMedia` event.
    async fn progress_183(&mut self, invite: &str) -> Vec<Element> {
        self.trunk_answers(invite, (183, "Session Progress"), true, |e| {
            matches!(e, sip::Event::EarlyMedia { .. })
        })
        .await
    }

    /// A bed with `calls` keys of `[calls]` in which alice called out and sent her
    /// `session-initiate`, and the trunk answered 183 with SDP: the bed, the INVITE
    /// and what the call layer sent for the 183.
    async fn early_media(calls: &str) -> (Self, String, Vec<Element>) {
        let mut bed = Self::start(calls, "").await;
        let invite = bed.call().await;
        bed.session_initiate();
        let out = bed.progress_183(&invite).await;
        (bed, invite, out)
    }

    /// The trunk answers `invite` with 486: the client's session ends with `<busy/>`
    /// and the text `486 Busy Here`.
    async fn busy_ends_with_busy(&mut self, invite: &str) {
        let out = self
            .trunk_answers(invite, (486, "Busy Here"), false, |e| {
                matches!(e, sip::Event::Ended { .. })
            })
            .await;
        let reason = jingles(&out, JingleAction::SessionTerminate)
            .first()
            .and_then(|j| j.reason.clone())
            .unwrap_or_else(|| panic!("session-terminate: {out:?}"));
        assert_eq!(reason.condition, ReasonCondition::Busy);
        assert_eq!(reason.text.as_deref(), Some("486 Busy Here"));
    }

    /// alice's `session-initiate` (one inline host candidate).
    fn session_initiate(&mut self) -> Vec<Element> {
        let port = self.client.local_addr().unwrap().port();
        self.deliver(&session_initiate(U, NR, "S", "si1", port))
    }
}

/// The Jingle payloads among `out` with `action`.
fn jingles(out: &[Element], action: JingleAction) -> Vec<Jingle> {
    out.iter()
        .filter_map(|s| s.get_child("jingle", ns::JINGLE))
        .filter_map(|j| Jingle::from_element(j).ok())
        .filter(|j| j.action == action)
        .collect()
}

fn rings(out: &[Element]) -> bool {
    out.iter()
        .filter_map(|s| s.get_child("jingle", ns::JINGLE))
        .any(|j| j.children().any(|c| c.name() == "ringing"))
}

#[tokio::test]
async fn unanswered_call_is_cancelled_at_the_outbound_ring_timeout() {
    let mut bed = Bed::start("outbound_ring_timeout = \"60s\"", "").await;
    let invited = bed.now;
    let invite = bed.call().await;
    bed.trunk_answers(&invite, (180, "Ringing"), false, |e| {
        matches!(e, sip::Event::Ringing { .. })
    })
    .await;
    let out = bed.session_initiate();
    assert!(
        rings(&out),
        "180 before the session-initiate rings it: {out:?}"
    );
    // The timer runs from the INVITE, on the call layer's clock only.
    assert_eq!(
        bed.calls.poll_timeout(),
        Some(invited + Duration::from_secs(60))
    );
    bed.now = invited + Duration::from_millis(59_999);
    bed.calls.handle_timeout(bed.now);
    let out = bed.flush();
    assert!(
        jingles(&out, JingleAction::SessionTerminate).is_empty(),
        "not yet: {out:?}"
    );
    bed.now = invited + Duration::from_secs(60);
    bed.calls.handle_timeout(bed.now);
    let out = bed.flush();
    let terminate = jingles(&out, JingleAction::SessionTerminate);
    let reason = terminate
        .first()
        .and_then(|j| j.reason.clone())
        .unwrap_or_else(|| panic!("session-terminate with a reason: {out:?}"));
    assert_eq!(reason.condition, ReasonCondition::Timeout);
    assert_eq!(reason.text.as_deref(), Some("no answer within 1m"));
    // CANCEL of the INVITE on the wire.
    let cancel = bed.trunk.request("CANCEL").await;
    let call_id = |m: &str| {
        m.lines()
            .find(|l| l.to_ascii_lowercase().starts_with("call-id:"))
            .map(str::to_owned)
    };
    assert_eq!(call_id(&cancel), call_id(&invite));
    // Nothing more to wait for on the outbound call.
    assert!(bed.calls.outbound_deadline().is_none());
}

#[tokio::test]
async fn early_media_accept_accepts_at_183_then_486_ends_with_busy() {
    let mut bed = Bed::start("early_media = \"accept\"", "").await;
    let invite = bed.call().await;
    let out = bed.session_initiate();
    assert!(jingles(&out, JingleAction::SessionAccept).is_empty());
    let out = bed.progress_183(&invite).await;
    let accept = jingles(&out, JingleAction::SessionAccept);
    assert_eq!(accept.len(), 1, "session-accept at the 183: {out:?}");
    assert!(!rings(&out), "accepted, not ringing");
    // Still unanswered: the ring timer keeps running.
    assert!(bed.calls.outbound_deadline().is_some());
    bed.busy_ends_with_busy(&invite).await;
    assert!(bed.logs.text().contains("early media: session-accept"));
}

#[tokio::test]
async fn early_media_accept_then_200_continues_without_a_second_accept() {
    let (mut bed, invite, out) = Bed::early_media("early_media = \"accept\"").await;
    assert_eq!(jingles(&out, JingleAction::SessionAccept).len(), 1);
    bed.now += Duration::from_secs(5);
    let out = bed
        .trunk_answers(&invite, (200, "OK"), true, |e| {
            matches!(e, sip::Event::Answered { .. })
        })
        .await;
    assert!(
        jingles(&out, JingleAction::SessionAccept).is_empty(),
        "one session-accept only: {out:?}"
    );
    assert!(
        jingles(&out, JingleAction::SessionTerminate).is_empty(),
        "{out:?}"
    );
    assert!(
        bed.calls.outbound_deadline().is_none(),
        "answered: no ring timer"
    );
    let text = bed.logs.text();
    assert!(text.contains("early_media=true"), "{text}");
    assert!(!text.contains("answered: session-accept"), "{text}");
}

#[tokio::test]
async fn early_media_ringback_only_rings_at_183() {
    let (mut bed, invite, out) = Bed::early_media("").await;
    assert!(rings(&out), "a 183 rings: {out:?}");
    assert!(jingles(&out, JingleAction::SessionAccept).is_empty());
    bed.busy_ends_with_busy(&invite).await;
}

/// An inbound call beyond `calls.max_calls_per_user` gets 503 with `Retry-After: 30`.
#[tokio::test]
async fn call_over_the_limit_gets_503_with_retry_after() {
    let mut bed = Bed::start("max_calls_per_user = 1", "").await;
    let alice: jid::BareJid = "alice@example.org".parse().unwrap();
    let _held = bed
        .calls
        .slots
        .try_acquire(&alice)
        .expect("alice's one slot");
    let ua = bed.ua.local_addr();
    let port = bed.rtp.local_addr().unwrap().port();
    bed.trunk.invite(ua, "+15550009999", "limit1", port).await;
    bed.sip_until("INVITE", |e| matches!(e, sip::Event::Incoming { .. }))
        .await;
    let response = bed.trunk.final_response().await;
    assert!(response.starts_with("SIP/2.0 503"), "{response}");
    assert!(
        response.lines().any(|l| l.trim_end() == "Retry-After: 30"),
        "{response}"
    );
    assert!(bed.calls.in_calls.is_empty(), "no call rings");
}

#[test]
fn redactor_hides_numbers_and_keeps_them_correlated() {
    let on = Redactor::new(true);
    let shown = on.show(NUMBER);
    assert!(shown.starts_with("pii:") && shown.len() == 12, "{shown}");
    assert!(!shown.contains("5551234567"));
    assert_eq!(on.show(NUMBER), shown, "one number, one hash in a run");
    assert_ne!(on.show("+15551234568"), shown);
    assert_eq!(Redactor::new(false).show(NUMBER), NUMBER);
}

/// With the default `log.redact_numbers = true` the call's log lines and summary name
/// no number; the span keeps the ids; `false` shows the number.
#[tokio::test]
async fn call_logs_redact_the_number_by_default() {
    for (log, redacted) in [("", true), ("redact_numbers = false", false)] {
        let mut bed = Bed::start("", log).await;
        let invite = bed.call().await;
        bed.trunk_answers(&invite, (486, "Busy Here"), false, |e| {
            matches!(e, sip::Event::Ended { .. })
        })
        .await;
        // The media driver stops and reports: the summary line.
        let deadline = tokio::time::Instant::now() + WAIT;
        while !bed.logs.text().contains("call summary") {
            let input = tokio::time::timeout_at(deadline, bed.inputs.recv())
                .await
                .expect("the call summary")
                .expect("channel open");
            bed.calls.handle_input(bed.now, input);
            bed.flush();
        }
        let text = bed.logs.text();
        assert!(text.contains("outbound call"), "{text}");
        assert!(text.contains("sid=S"), "the span names the sid: {text}");
        assert_eq!(text.contains("5551234567"), !redacted, "{text}");
        assert_eq!(text.contains("number=pii:"), redacted, "{text}");
    }
}
