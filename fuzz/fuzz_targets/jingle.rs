#![no_main]
//! See `jsg_fuzz::jingle`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jsg_fuzz::jingle(data);
});
