#![no_main]
//! See `jsg_fuzz::rtcp`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jsg_fuzz::rtcp(data);
});
