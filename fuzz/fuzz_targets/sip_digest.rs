#![no_main]
//! See `jsg_fuzz::sip_digest`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jsg_fuzz::sip_digest(data);
});
