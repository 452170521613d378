//! libFuzzer's entry for the `wal_read` target; the body is
//! [`mercato_fuzz::targets::wal_read`] (also replayed by `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mercato_fuzz::targets::wal_read::run(data));
