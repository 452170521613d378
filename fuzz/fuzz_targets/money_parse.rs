//! libFuzzer's entry for the `money_parse` target; the body is
//! [`mercato_fuzz::targets::money_parse`] (also replayed by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mercato_fuzz::targets::money_parse::run(data));
