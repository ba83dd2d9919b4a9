#![no_main]
//! See `jsg_fuzz::xmpp_stream`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jsg_fuzz::xmpp_stream(data);
});
