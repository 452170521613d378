//! libFuzzer's entry for the `http_request` target; the body is
//! [`mercato_fuzz::targets::http_request`] (also replayed by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mercato_fuzz::targets::http_request::run(data));
