//! libFuzzer's entry for the `record_decode` target; the body is
//! [`mercato_fuzz::targets::record_decode`] (also replayed by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mercato_fuzz::targets::record_decode::run(data));
