#![no_main]
//! See `jsg_fuzz::sdp`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jsg_fuzz::sdp(data);
});
