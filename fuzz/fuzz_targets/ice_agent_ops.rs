#![no_main]
//! The ICE agent fed random operation sequences.

libfuzzer_sys::fuzz_target!(|ops: Vec<jsg_fuzz::Op>| {
    jsg_fuzz::run_ops(&ops);
});
