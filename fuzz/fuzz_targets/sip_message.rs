#![no_main]
//! See `jsg_fuzz::sip_message`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jsg_fuzz::sip_message(data);
});
