#![no_main]
//! STUN parser round trip: parse, re-encode, re-parse, compare.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jsg_fuzz::stun(data);
});
