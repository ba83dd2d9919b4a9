#![no_main]
//! See `jsg_fuzz::rtp`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jsg_fuzz::rtp(data);
});
