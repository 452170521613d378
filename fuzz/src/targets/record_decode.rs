//! `record_decode`: every on-disk record type's decoder over arbitrary
//! bytes. Decoding must answer an error, never panic or allocate without
//! bound (libFuzzer's `-malloc_limit_mb` turns a huge allocation into a
//! crash); a record that decodes must survive being written again
//! unchanged (checked inside [`decode_record`]).

use mercato_engine::fuzzing::{RECORD_KINDS, decode_record};

/// The body: the same bytes through every decoder.
pub fn run(data: &[u8]) {
    for kind in 0..RECORD_KINDS.len() {
        // An error is the expected answer to garbage; only a panic is a bug.
        let _ = decode_record(kind, data);
    }
}
