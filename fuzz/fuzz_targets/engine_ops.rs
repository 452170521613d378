//! libFuzzer's entry for the `engine_ops` target; the body is
//! [`mercato_fuzz::targets::engine_ops`] (also replayed by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mercato_fuzz::targets::engine_ops::run(data));
