//! An in-memory pair of Jingle sessions (STYLE.md R11): our initiator
//! session talks to a responder session over serialized stanzas, with
//! virtual time and an in-flight drop hook.

use std::time::{Duration, Instant};

use minidom::Element;
use xmpp::jingle::{
    Application, Candidate, CandidateType, Content, Creator, Fingerprint, IceUdpTransport,
    PayloadType, Reason, ReasonCondition, RtpDescription, SessionInfo, Setup, Transport,
};
use xmpp::session::{EndCause, Event, JingleIq, JingleSession, Role, SessionConfig, State};

const GW: &str = "+18005550100@gw.example.com/gw";
const USER: &str = "alice@example.org/res";

fn transport(ufrag: &str, setup: Setup, port: u16) -> IceUdpTransport {
    IceUdpTransport {
        ufrag: Some(ufrag.to_owned()),
        pwd: Some(format!("{ufrag}-password-0123456789")),
        fingerprint: Some(Fingerprint {
            hash: "sha-256".to_owned(),
            setup: Some(setup),
            value: "01:02:03".to_owned(),
        }),
        trickle: true,
        candidates: vec![Candidate {
            component: 1,
            foundation: "1".to_owned(),
            generation: 0,
            id: None,
            ip: "127.0.0.1".to_owned(),
            port,
            priority: 2_130_706_431,
            protocol: "udp".to_owned(),
            kind: CandidateType::Host,
            rel_addr: None,
            rel_port: None,
            network: None,
            tcptype: None,
        }],
    }
}

fn audio(name: &str, t: IceUdpTransport) -> Content {
    let mut c = Content::new(Creator::Initiator, name);
    c.description = Some(Application::Rtp(RtpDescription::audio(vec![
        PayloadType::new(0, "PCMU", 8000),
        PayloadType::new(101, "telephone-event", 8000),
    ])));
    c.transport = Some(Transport::IceUdp(t));
    c
}

/// The two sides: `a` is the gateway (initiator), `b` the user's client
/// (responder, created by the first session-initiate it receives).
struct Pair {
    now: Instant,
    config: SessionConfig,
    a: JingleSession,
    b: Option<JingleSession>,
    a_events: Vec<Event>,
    b_events: Vec<Event>,
    /// Return `false` to drop a stanza in flight.
    filter: Box<dyn FnMut(&Element) -> bool>,
}

impl Pair {
    fn new() -> Self {
        let now = Instant::now();
        let config = SessionConfig::default();
        let a = JingleSession::initiator(
            now,
            &config,
            GW,
            USER,
            "pair1",
            vec![audio("a0", transport("gwA", Setup::ActPass, 4000))],
            None,
        )
        .unwrap();
        Self {
            now,
            config,
            a,
            b: None,
            a_events: Vec::new(),
            b_events: Vec::new(),
            filter: Box::new(|_| true),
        }
    }

    fn b(&mut self) -> &mut JingleSession {
        self.b.as_mut().expect("responder exists")
    }

    /// Through the wire format, as the component stream would carry it.
    fn wire(el: &Element) -> Element {
        let mut buf = Vec::new();
        el.write_to(&mut buf).unwrap();
        String::from_utf8(buf).unwrap().parse().unwrap()
    }

    fn deliver_to_b(&mut self, el: Element) {
        if let Some(iq) = JingleIq::from_stanza(&el).unwrap() {
            match &mut self.b {
                Some(b) => b.handle_iq(self.now, iq),
                None => {
                    // The peer numbers its IQs differently, as a real one would.
                    let mut config = self.config.clone();
                    config.id_prefix("peer");
                    self.b = Some(JingleSession::responder(self.now, &config, iq).unwrap())
                }
            }
        } else {
            let now = self.now;
            assert!(self.b().handle_response(now, &el), "unclaimed {el:?}");
        }
    }

    fn deliver_to_a(&mut self, el: Element) {
        if let Some(iq) = JingleIq::from_stanza(&el).unwrap() {
            self.a.handle_iq(self.now, iq);
        } else {
            assert!(self.a.handle_response(self.now, &el), "unclaimed {el:?}");
        }
    }

    /// Delivers everything queued; returns whether anything moved.
    fn exchange(&mut self) -> bool {
        let mut moved = false;
        while let Some(el) = self.a.poll_transmit() {
            moved = true;
            if (self.filter)(&el) {
                self.deliver_to_b(Self::wire(&el));
            }
        }
        self.a_events
            .extend(std::iter::from_fn(|| self.a.poll_event()));
        if let Some(b) = &mut self.b {
            let out: Vec<Element> = std::iter::from_fn(|| b.poll_transmit()).collect();
            self.b_events.extend(std::iter::from_fn(|| b.poll_event()));
            for el in out {
                moved = true;
                if (self.filter)(&el) {
                    self.deliver_to_a(Self::wire(&el));
                }
            }
        }
        moved
    }

    /// Delivers, then advances virtual time to the earliest timer.
    fn step(&mut self) -> bool {
        if self.exchange() {
            return true;
        }
        let next = [
            self.a.poll_timeout(),
            self.b.as_ref().and_then(|b| b.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(t) => {
                self.now = self.now.max(t);
                self.a.handle_timeout(self.now);
                if let Some(b) = &mut self.b {
                    b.handle_timeout(self.now);
                }
                true
            }
            None => false,
        }
    }

    /// Steps until idle; panics after `n` steps (livelock).
    fn drive_bounded(&mut self, n: usize) {
        for _ in 0..n {
            if !self.step() {
                return;
            }
        }
        panic!("pair not idle after {n} steps");
    }

    fn drive(&mut self) {
        self.drive_bounded(100);
    }
}

#[test]
fn pair_full_call() {
    let mut p = Pair::new();
    p.drive();
    let b = p.b();
    assert_eq!(
        (b.role(), b.state(), b.peer(), b.local()),
        (Role::Responder, State::Pending, GW, USER)
    );
    let [Event::Offer { contents, .. }] = p.b_events.as_slice() else {
        panic!("{:?}", p.b_events)
    };
    assert_eq!(contents[0].ice_udp().unwrap().candidates[0].port, 4000);
    p.b_events.clear();

    let now = p.now;
    p.b().ringing(now).unwrap();
    p.drive();
    assert_eq!(p.a_events, [Event::Info(SessionInfo::Ringing)]);
    p.a_events.clear();

    p.b()
        .accept(
            now,
            vec![audio("a0", transport("uB", Setup::Active, 5000))],
            None,
        )
        .unwrap();
    p.drive();
    let [Event::Accepted { contents, .. }] = p.a_events.as_slice() else {
        panic!("{:?}", p.a_events)
    };
    let fp = contents[0].ice_udp().unwrap().fingerprint.clone().unwrap();
    assert_eq!(fp.setup, Some(Setup::Active));
    assert_eq!(p.a.state(), State::Active);
    p.a_events.clear();

    // trickle from the gateway, then an ICE restart by the client
    p.a.send_transport_info(now, "a0", transport("gwA", Setup::ActPass, 4001))
        .unwrap();
    p.drive();
    assert!(
        matches!(p.b_events.as_slice(), [Event::TransportInfo { .. }]),
        "{:?}",
        p.b_events
    );
    p.b_events.clear();
    let mut restart = transport("uB2", Setup::Active, 0);
    restart.candidates.clear();
    p.b().restart_ice(now, "a0", restart).unwrap();
    p.drive();
    let [Event::IceRestart { transport: t, .. }] = p.a_events.as_slice() else {
        panic!("{:?}", p.a_events)
    };
    assert_eq!(t.ufrag.as_deref(), Some("uB2"));
    p.a_events.clear();
    p.a.send_transport_info(now, "a0", transport("gwA2", Setup::ActPass, 4002))
        .unwrap();
    p.drive();
    assert!(
        matches!(p.b_events.as_slice(), [Event::IceRestart { .. }]),
        "{:?}",
        p.b_events
    );
    p.b_events.clear();

    // the user hangs up
    p.b().terminate(now, Reason::new(ReasonCondition::Success));
    p.drive();
    assert_eq!(
        p.a_events,
        [Event::Ended {
            reason: Reason::new(ReasonCondition::Success),
            cause: EndCause::PeerTerminated
        }]
    );
    assert!(matches!(
        p.b_events.as_slice(),
        [Event::Ended {
            cause: EndCause::LocalTerminated,
            ..
        }]
    ));
    assert_eq!(p.now, now, "no timer fired: every IQ was answered");
    assert_eq!((p.a.poll_timeout(), p.b().poll_timeout()), (None, None));
}

#[test]
fn pair_simultaneous_ice_restart() {
    let mut p = Pair::new();
    p.drive();
    let now = p.now;
    p.b()
        .accept(
            now,
            vec![audio("a0", transport("uB", Setup::Active, 5000))],
            None,
        )
        .unwrap();
    p.drive();
    p.a_events.clear();
    p.b_events.clear();
    let mut ra = transport("gwR", Setup::ActPass, 0);
    ra.candidates.clear();
    let mut rb = transport("uR", Setup::Active, 0);
    rb.candidates.clear();
    p.a.restart_ice(now, "a0", ra).unwrap();
    p.b().restart_ice(now, "a0", rb).unwrap();
    p.drive();
    // The initiator's restart wins: the client restarts, the gateway does not.
    assert!(p.a_events.is_empty(), "{:?}", p.a_events);
    let [Event::IceRestart { transport: t, .. }] = p.b_events.as_slice() else {
        panic!("{:?}", p.b_events)
    };
    assert_eq!(t.ufrag.as_deref(), Some("gwR"));
    assert_eq!((p.a.state(), p.b().state()), (State::Active, State::Active));
    assert_eq!(p.now, now);
}

#[test]
fn pair_lost_session_accept_ends_both_sides() {
    let mut p = Pair::new();
    p.drive();
    p.filter = Box::new(|el| {
        !el.children()
            .any(|j| j.name() == "jingle" && j.attr("action") == Some("session-accept"))
    });
    let now = p.now;
    p.b()
        .accept(
            now,
            vec![audio("a0", transport("uB", Setup::Active, 5000))],
            None,
        )
        .unwrap();
    p.drive_bounded(20);
    assert_eq!(
        p.now,
        now + Duration::from_secs(30),
        "the accept's IQ timer fired"
    );
    assert!(
        matches!(
            p.b_events.as_slice(),
            [
                Event::Offer { .. },
                Event::Ended {
                    cause: EndCause::IqTimeout { .. },
                    ..
                }
            ]
        ),
        "{:?}",
        p.b_events
    );
    assert!(
        matches!(
            p.a_events.as_slice(),
            [Event::Ended { cause: EndCause::PeerTerminated, reason }]
                if reason.condition == ReasonCondition::ConnectivityError
        ),
        "{:?}",
        p.a_events
    );
}
