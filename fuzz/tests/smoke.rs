//! Runs both fuzz target bodies on seeded random inputs, so they are exercised on stable
//! without cargo-fuzz: `cargo test --no-default-features` in `fuzz/`.

use arbitrary::{Arbitrary, Unstructured};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

#[test]
fn stun_target_on_random_and_mutated_inputs() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    // A valid request to mutate.
    let base = ice::fuzzing::request(
        5,
        "abcd",
        "passwordpasswordpassword",
        true,
        Some(1),
        true,
        Some((true, 9)),
        Some(3),
        &[],
    );
    for _ in 0..20_000 {
        let mut data = base.clone();
        let n = rng.gen_range(0..4);
        for _ in 0..n {
            let i = rng.gen_range(0..data.len());
            data[i] = rng.gen();
        }
        if rng.gen_bool(0.1) {
            data.truncate(rng.gen_range(0..data.len()));
        }
        jsg_fuzz::stun(&data);
        let len = rng.gen_range(0..64);
        let random: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        jsg_fuzz::stun(&random);
    }
}

#[test]
fn agent_ops_on_random_sequences() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    for _ in 0..300 {
        let len = rng.gen_range(0..4096);
        let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let mut u = Unstructured::new(&bytes);
        if let Ok(ops) = Vec::<jsg_fuzz::Op>::arbitrary(&mut u) {
            jsg_fuzz::run_ops(&ops);
        }
    }
}
