//! The fuzz targets' bodies: each `run` takes libFuzzer's bytes, builds its
//! structured input with `arbitrary` where it has one, and panics on a bug.
//! This directory is also compiled into the server's integration tests
//! (`server/tests/it/fuzz.rs`), which replay the seeds and regressions.

pub mod engine_ops;
pub mod http_request;
pub mod money_parse;
pub mod record_decode;
mod support;
pub mod wal_read;

/// A target's body: libFuzzer's bytes in, a panic for a bug.
pub type Body = fn(&[u8]);

/// Every target by the name of its directory under `fuzz/seeds` and
/// `fuzz/regressions`, with its body.
pub const TARGETS: [(&str, Body); 5] = [
    ("engine_ops", engine_ops::run),
    ("http_request", http_request::run),
    ("money_parse", money_parse::run),
    ("record_decode", record_decode::run),
    ("wal_read", wal_read::run),
];
