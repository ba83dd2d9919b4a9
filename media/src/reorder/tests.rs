use rand::{Rng, SeedableRng};

use super::*;

const MS: Duration = Duration::from_millis(1);

fn buffer() -> Reorder {
    Reorder::new(20 * MS, 60 * MS, 8000)
}

/// What a virtual-time run released and how the target moved.
#[derive(Default)]
struct Run {
    /// (seq, lost_before, release time offset from t0).
    released: Vec<(u16, u16, Duration)>,
    max_target: Duration,
    /// (arrival offset, target after it).
    targets: Vec<(Duration, Duration)>,
    rejected: usize,
}

/// Feeds `arrivals` (offset from `t0`, seq; 20 ms packets at 8 kHz, ts = seq × 160) in
/// arrival order, firing deadlines in between the way a driver would; drains at the end.
fn run(r: &mut Reorder, t0: Instant, arrivals: &mut [(Duration, u16)]) -> Run {
    arrivals.sort_by_key(|a| a.0);
    let mut out = Run::default();
    let drain = |r: &mut Reorder, now: Instant, out: &mut Run| {
        while let Some(rel) = r.pop(now) {
            out.released
                .push((rel.entry.seq, rel.lost_before, now - t0));
            r.recycle(rel.entry.payload);
        }
    };
    for &(at, seq) in arrivals.iter() {
        let now = t0 + at;
        while let Some(d) = r.deadline().filter(|d| *d <= now) {
            drain(r, d, &mut out);
        }
        if !r.push(now, seq, seq as u32 * 160, 0, false, true, b"x") {
            out.rejected += 1;
        }
        drain(r, now, &mut out);
        out.max_target = out.max_target.max(r.target());
        out.targets.push((at, r.target()));
    }
    while let Some(d) = r.deadline() {
        drain(r, d, &mut out);
    }
    out
}

fn clean(from: u16, n: u16, offset: Duration) -> Vec<(Duration, u16)> {
    (from..from + n)
        .map(|s| (offset + 20 * MS * s as u32, s))
        .collect()
}

/// Uniform ±`jitter_ms` around the nominal arrival, seeded.
fn jittery(from: u16, n: u16, jitter_ms: i64, seed: u64) -> Vec<(Duration, u16)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (from..from + n)
        .map(|s| {
            let j = rng.gen_range(-jitter_ms * 1000..=jitter_ms * 1000);
            let at = (100_000 + 20_000 * s as i64 + j) as u64;
            (Duration::from_micros(at), s)
        })
        .collect()
}

#[test]
fn clean_arrival_keeps_the_delay_at_the_minimum_and_adds_none() {
    let t0 = Instant::now();
    let mut r = buffer();
    let out = run(&mut r, t0, &mut clean(0, 500, 100 * MS));
    assert_eq!(out.max_target, 20 * MS);
    assert_eq!(r.target(), 20 * MS);
    assert_eq!(out.released.len(), 500);
    // In-order packets leave at the instant they arrive.
    for &(seq, lost, at) in &out.released {
        assert_eq!((lost, at), (0, 100 * MS + 20 * MS * seq as u32));
    }
    assert_eq!(r.counters(), Counters::default());
}

#[test]
fn jittery_arrival_grows_the_delay_but_never_above_the_maximum() {
    for seed in [1, 2, 3, 4, 5] {
        let t0 = Instant::now();
        let mut r = buffer();
        let out = run(&mut r, t0, &mut jittery(0, 500, 30, seed));
        assert!(
            out.max_target > 45 * MS && out.max_target <= 60 * MS,
            "seed {seed}: {:?}",
            out.max_target
        );
        assert!(r.target() > 45 * MS, "seed {seed}: {:?}", r.target());
        // Everything played leaves in sequence order, each slot once.
        let seqs: Vec<u16> = out.released.iter().map(|x| x.0).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seed {seed}");
        let c = r.counters();
        let lost: u64 = out.released.iter().map(|x| x.1 as u64).sum();
        assert_eq!(out.released.len() as u64 + c.late, 500, "seed {seed}");
        // A late packet's slot was concealed, or it came before the first one played.
        assert_eq!(lost + seqs[0] as u64, c.late, "seed {seed}");
        assert!(
            c.reordered > 50,
            "seed {seed}: ±30 ms reorders 20 ms packets: {c:?}"
        );
        // With the target near the 95th percentile few packets come too late.
        assert!(c.late < 25, "seed {seed}: {c:?}");
    }
}

#[test]
fn a_bigger_maximum_is_respected_and_not_exceeded() {
    let t0 = Instant::now();
    let mut r = Reorder::new(20 * MS, 100 * MS, 8000);
    let out = run(&mut r, t0, &mut jittery(0, 500, 60, 9));
    assert!(
        out.max_target > 60 * MS && out.max_target <= 100 * MS,
        "{:?}",
        out.max_target
    );
}

#[test]
fn late_packets_beyond_the_buffer_are_discarded_and_counted() {
    let t0 = Instant::now();
    let mut r = buffer();
    let mut arrivals = clean(0, 10, Duration::ZERO);
    // 10 is missing; 11 arrives on time, so 10's slot is concealed 20 ms later.
    arrivals.push((220 * MS, 11));
    arrivals.push((240 * MS, 12));
    // 10 turns up 100 ms late: discarded, not played.
    arrivals.push((300 * MS, 10));
    // A duplicate of a played packet.
    arrivals.push((301 * MS, 12));
    let out = run(&mut r, t0, &mut arrivals);
    let seqs: Vec<(u16, u16)> = out.released.iter().map(|x| (x.0, x.1)).collect();
    assert_eq!(&seqs[9..], &[(9, 0), (11, 1), (12, 0)]);
    // 11 waited the minimum delay for 10.
    assert_eq!(out.released[10].2, 240 * MS);
    assert_eq!(out.rejected, 2);
    let c = r.counters();
    assert_eq!((c.late, c.duplicates), (1, 1));
    // The late packet grew the target to the maximum (it was 80 ms behind), at once.
    assert_eq!(r.target(), 60 * MS);
}

#[test]
fn reordering_within_the_window_is_fixed() {
    let t0 = Instant::now();
    let mut r = buffer();
    let mut arrivals = clean(0, 20, Duration::ZERO);
    // 8 arrives 15 ms after 9 (within the minimum delay): put back in order.
    arrivals[8].0 = 195 * MS;
    let out = run(&mut r, t0, &mut arrivals);
    let seqs: Vec<u16> = out.released.iter().map(|x| x.0).collect();
    assert_eq!(seqs, (0..20).collect::<Vec<u16>>());
    assert!(out.released.iter().all(|x| x.1 == 0));
    // 9 waited for 8 and both left when 8 arrived.
    assert_eq!(out.released[8].2, 195 * MS);
    assert_eq!(out.released[9].2, 195 * MS);
    assert_eq!(r.counters().reordered, 1);
    assert_eq!(r.counters().late, 0);
}

#[test]
fn after_jitter_stops_the_delay_shrinks_back_to_the_minimum() {
    let t0 = Instant::now();
    let mut r = buffer();
    let peak = run(&mut r, t0, &mut jittery(0, 500, 30, 7)).max_target;
    assert!(peak > 45 * MS, "{peak:?}");
    // Then 10 s of clean arrival at the nominal times.
    let out = run(&mut r, t0, &mut clean(500, 500, 100 * MS));
    assert_eq!(out.released.len(), 500);
    assert_eq!(r.target(), 20 * MS);
    // Back at the minimum within 5 s: the jittery packets leave the 2.56 s window, then
    // the target decays.
    let clean_start = 100 * MS + 20 * MS * 500;
    let back = out
        .targets
        .iter()
        .find(|x| x.1 == 20 * MS)
        .expect("shrank")
        .0;
    assert!(
        back > clean_start + 2 * 1000 * MS && back < clean_start + 5 * 1000 * MS,
        "{back:?}"
    );
}

#[test]
fn telephone_events_do_not_feed_the_estimate() {
    let t0 = Instant::now();
    let mut r = buffer();
    // An event repeats its timestamp every 50 ms for 2 s: as audio that would look like
    // growing delay; as an event it must not move the target.
    for i in 0..40u16 {
        let now = t0 + 50 * MS * i as u32;
        assert!(r.push(now, i, 0, 101, false, false, b"e"));
        assert_eq!(r.pop(now).unwrap().entry.seq, i);
    }
    assert_eq!(r.target(), 20 * MS);
}

#[test]
fn bounded_and_wraps() {
    let t0 = Instant::now();
    let mut r = buffer();
    r.push(t0, 65535, 0, 0, false, true, b"x");
    assert_eq!(r.pop(t0).unwrap().entry.seq, 65535);
    // 0 lost; 1..=4 arrive at once: more than 3 held forces release without waiting.
    for s in 1..=4u16 {
        r.push(t0, s, s as u32 * 160, 0, false, true, b"y");
    }
    let first = r.pop(t0).unwrap();
    assert_eq!((first.entry.seq, first.lost_before), (1, 1));
    assert_eq!(r.counters().overflows, 1);
    assert!(!r.push(t0, 1, 160, 0, false, true, b"dup"));
    assert_eq!(r.counters().duplicates, 1);
}
