//! `wal_read`: the write-ahead log's reader over arbitrary and truncated
//! segment files. Segments are built from the input in the log's format
//! (see `engine/src/wal.rs`: checksummed headers and records, so that the
//! reader gets past its checksums) and then damaged as the input says: cut
//! short, bytes flipped, or replaced by raw bytes. They are written to a
//! temporary directory and the store beside them is recovered.
//!
//! Recovery must answer an error or a valid prefix, never panic: a log
//! whose framing is intact never counts as damaged; a log cut inside its
//! records keeps exactly the records before the cut; a recovery that
//! succeeded leaves nothing to replay for the next one; and the offline
//! checker reads whatever was replayed without panicking.

use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use mercato_engine::fuzzing::{
    OP_INSERT, OP_REMOVE, RECORD_ALIGN, RECORD_HEADER_LEN, RECORD_MAGIC, SEGMENT_HEADER_LEN,
    SEGMENT_MAGIC, SEGMENT_PREFIX, SEGMENT_VERSION, sample_records,
};
use mercato_engine::{Engine, EngineConfig, Error, InMemoryBackend, LogDirectory};
/// The log's tables, by their numbers on disk (1 to 23), and the width of
/// their keys in redb's byte form (`None`: variable).
const TABLE_KEYS: [Option<usize>; 23] = [
    Some(8),  // products: u64
    None,     // products_by_category: (&str, u64)
    Some(8),  // stock: u64
    Some(16), // reservations: u128
    Some(24), // reservation_deadlines: (u64, u128)
    Some(8),  // events: u64
    None,     // consumer_positions: &str
    None,     // idempotency: &str
    None,     // idempotency_expiry: (u64, &str)
    Some(16), // carts: u128
    None,     // carts_by_user: (&str, u128)
    Some(24), // cart_expiry: (u64, u128)
    Some(16), // orders: u128
    None,     // orders_by_user: (&str, u128)
    Some(20), // saga_log: (u128, u32)
    Some(16), // payments: u128
    Some(16), // payments_by_order: u128
    None,     // webhook_events: &str
    Some(16), // notifications: u128
    None,     // notifications_by_user: (&str, u128)
    Some(32), // notifications_by_order: (u128, u128)
    Some(9),  // notification_sources: (u64, u8)
    Some(24), // notification_due: (u64, u128)
];

/// The most segments, records per segment and operations per record.
const SEGMENTS_MAX: usize = 3;
const RECORDS_MAX: usize = 12;
const OPERATIONS_MAX: usize = 6;

#[derive(Arbitrary, Debug)]
struct Input {
    segments: Vec<SegmentInput>,
    accept_loss: bool,
}

#[derive(Arbitrary, Debug)]
enum SegmentInput {
    /// A file of arbitrary bytes under a segment's name.
    Raw { first_lsn: u8, bytes: Vec<u8> },
    /// A segment in the log's format, then damaged.
    Built(Built),
}

#[derive(Arbitrary, Debug)]
struct Built {
    /// Extra bytes of capacity past the records (in 8-byte units).
    spare: u8,
    header: HeaderInput,
    records: Vec<RecordInput>,
    /// Cut the file to this many bytes (modulo its length).
    cut: Option<u16>,
    /// (offset modulo the length, xor mask) pairs.
    flips: Vec<(u16, u8)>,
}

#[derive(Arbitrary, Debug)]
enum HeaderInput {
    Intact,
    Version(u32),
    Capacity(u64),
    Zeros,
    BadChecksum,
}

#[derive(Arbitrary, Debug)]
struct RecordInput {
    /// How the record's number follows the previous one's.
    lsn: LsnInput,
    /// The record starts a new write (else `write_first` is the previous).
    new_write: bool,
    payload: PayloadInput,
    bad_payload_checksum: bool,
}

#[derive(Arbitrary, Debug)]
enum LsnInput {
    Next,
    Same,
    Skip(u8),
    Back(u8),
}

#[derive(Arbitrary, Debug)]
enum PayloadInput {
    Operations(Vec<Operation>),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Operation {
    insert: bool,
    table: TableInput,
    key: KeyInput,
    value: ValueInput,
}

#[derive(Arbitrary, Debug)]
enum TableInput {
    Known(u8),
    Any(u8),
}

#[derive(Arbitrary, Debug)]
enum KeyInput {
    /// The table's key width, from these bytes (zero-padded).
    Fitting(Vec<u8>),
    Any(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum ValueInput {
    /// A valid record of one of the engine's kinds.
    Sample(u8),
    Any(Vec<u8>),
}

/// What the built log promises, for the checks after recovery.
#[derive(Debug, Default)]
struct Expectation {
    /// Every segment built, undamaged, records numbered 1, 2, 3, ... in
    /// order across segments, each segment named after its first record.
    framing_intact: bool,
    /// Records whole before a cut of the last segment (the only damage),
    /// when `framing_intact` holds but for that cut.
    whole_before_cut: Option<u64>,
}

/// The body.
pub fn run(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Ok(input) = Input::arbitrary(&mut input) else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (files, expectation) = build(&input);
    if files.is_empty() {
        return;
    }
    for (name, bytes) in &files {
        std::fs::write(dir.path().join(name), bytes).expect("a segment written");
    }
    let mut config = EngineConfig::new(dir.path());
    config.storage_backend = Some(Arc::new(InMemoryBackend::new()));
    config.log_storage = Some(Arc::new(LogDirectory::new(dir.path())));
    config.cache_size_bytes = 4 << 20;
    let recovered = Engine::recover(config.clone(), input.accept_loss);
    if expectation.framing_intact {
        assert!(
            !matches!(recovered, Err(Error::LogDamaged(_))),
            "an intact log was taken for damage: {recovered:?}"
        );
    }
    let Ok(report) = recovered else {
        return;
    };
    if let Some(whole) = expectation.whole_before_cut {
        assert_eq!(
            report.last_lsn, whole,
            "a cut log keeps the records before the cut"
        );
    }
    let again = Engine::recover(config.clone(), false).expect("a recovered store opens again");
    assert_eq!(again.replayed_records, 0, "the log was replayed once");
    assert_eq!(again.last_lsn, report.last_lsn);
    // The checker reads every table; what it finds is its report's business.
    let _ = Engine::check(config);
}

fn build(input: &Input) -> (Vec<(String, Vec<u8>)>, Expectation) {
    let samples = sample_records();
    let mut files = Vec::new();
    let mut framing_intact = true;
    let mut whole_before_cut = None;
    let mut lsn: u64 = 0;
    let mut write_first: u64 = 1;
    let segments = &input.segments[..input.segments.len().min(SEGMENTS_MAX)];
    for (index, segment) in segments.iter().enumerate() {
        let last = index + 1 == segments.len();
        match segment {
            SegmentInput::Raw { first_lsn, bytes } => {
                framing_intact = false;
                let name = format!("{SEGMENT_PREFIX}{:020}", u64::from(*first_lsn));
                files.push((name, bytes.clone()));
            }
            SegmentInput::Built(built) => {
                let first_lsn = lsn + 1;
                let mut bytes = vec![0; SEGMENT_HEADER_LEN];
                let mut ends = Vec::new();
                for record in built.records.iter().take(RECORDS_MAX) {
                    let previous = lsn;
                    lsn = match record.lsn {
                        LsnInput::Next => lsn + 1,
                        LsnInput::Same => lsn.max(1),
                        LsnInput::Skip(by) => lsn + 2 + u64::from(by),
                        LsnInput::Back(by) => lsn.saturating_sub(u64::from(by) + 1).max(1),
                    };
                    if lsn != previous + 1 {
                        framing_intact = false;
                    }
                    if record.new_write || write_first > lsn {
                        write_first = lsn;
                    }
                    let payload = payload(&record.payload, &samples);
                    framing_intact &= !record.bad_payload_checksum;
                    append_record(
                        &mut bytes,
                        lsn,
                        write_first,
                        &payload,
                        record.bad_payload_checksum,
                    );
                    // Read back up to its payload's end; its padding may be cut.
                    ends.push(bytes.len() - padding(payload.len()));
                }
                let capacity = (bytes.len() + usize::from(built.spare) * RECORD_ALIGN) as u64;
                let header = match built.header {
                    HeaderInput::Intact => segment_header(SEGMENT_VERSION, capacity, true),
                    HeaderInput::Version(version) => {
                        framing_intact &= version == SEGMENT_VERSION;
                        segment_header(version, capacity, true)
                    }
                    HeaderInput::Capacity(claimed) => {
                        framing_intact &= claimed <= capacity;
                        segment_header(SEGMENT_VERSION, claimed, true)
                    }
                    HeaderInput::Zeros => {
                        framing_intact = false;
                        [0; SEGMENT_HEADER_LEN]
                    }
                    HeaderInput::BadChecksum => {
                        framing_intact = false;
                        segment_header(SEGMENT_VERSION, capacity, false)
                    }
                };
                bytes[..SEGMENT_HEADER_LEN].copy_from_slice(&header);
                bytes.resize(capacity as usize, 0);
                for &(offset, mask) in &built.flips {
                    if mask != 0 {
                        framing_intact = false;
                        let at = usize::from(offset) % bytes.len();
                        bytes[at] ^= mask;
                    }
                }
                if let Some(cut) = built.cut {
                    let cut = usize::from(cut) % (bytes.len() + 1);
                    if cut < bytes.len() {
                        if framing_intact && last && input.accept_loss {
                            let whole = ends.iter().filter(|&&end| end <= cut).count() as u64;
                            whole_before_cut = Some(first_lsn - 1 + whole);
                        }
                        framing_intact = false;
                        bytes.truncate(cut);
                    }
                }
                let name = format!("{SEGMENT_PREFIX}{first_lsn:020}");
                files.push((name, bytes));
            }
        }
    }
    // Two segments under one name: the later replaces the earlier.
    let mut names: Vec<&String> = files.iter().map(|(name, _)| name).collect();
    names.sort();
    names.dedup();
    if names.len() != files.len() {
        framing_intact = false;
        whole_before_cut = None;
    }
    let expectation = Expectation {
        framing_intact,
        whole_before_cut,
    };
    (files, expectation)
}

/// A record's payload: operations as the writer encodes them (over known
/// tables with keys of their widths, or not), or raw bytes. Its contents
/// never make the log damaged: a record that cannot be replayed is an
/// error of its own.
fn payload(input: &PayloadInput, samples: &[Vec<u8>]) -> Vec<u8> {
    let operations = match input {
        PayloadInput::Raw(bytes) => return bytes.clone(),
        PayloadInput::Operations(operations) => operations,
    };
    let mut bytes = Vec::new();
    for operation in operations.iter().take(OPERATIONS_MAX) {
        let table = match operation.table {
            TableInput::Known(number) => number % TABLE_KEYS.len() as u8 + 1,
            TableInput::Any(number) => number,
        };
        let width = TABLE_KEYS
            .get(usize::from(table).wrapping_sub(1))
            .copied()
            .flatten();
        let key = match (&operation.key, width) {
            (KeyInput::Fitting(bytes), Some(width)) => {
                let mut key = bytes.clone();
                key.resize(width, 0);
                key
            }
            (KeyInput::Fitting(bytes), None) | (KeyInput::Any(bytes), _) => bytes.clone(),
        };
        bytes.push(if operation.insert {
            OP_INSERT
        } else {
            OP_REMOVE
        });
        bytes.push(table);
        put_slice(&mut bytes, &key);
        if operation.insert {
            let value = match &operation.value {
                ValueInput::Sample(kind) => samples[usize::from(*kind) % samples.len()].clone(),
                ValueInput::Any(bytes) => bytes.clone(),
            };
            put_slice(&mut bytes, &value);
        }
    }
    bytes
}

fn padding(payload_len: usize) -> usize {
    (RECORD_HEADER_LEN + payload_len).next_multiple_of(RECORD_ALIGN)
        - (RECORD_HEADER_LEN + payload_len)
}

fn put_slice(bytes: &mut Vec<u8>, slice: &[u8]) {
    let len = u32::try_from(slice.len()).expect("a short slice");
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(slice);
}

fn append_record(bytes: &mut Vec<u8>, lsn: u64, write_first: u64, payload: &[u8], bad: bool) {
    let at = bytes.len();
    let payload_len = u32::try_from(payload.len()).expect("a short payload");
    let mut crc = crc32fast::hash(payload);
    if bad {
        crc ^= 1;
    }
    bytes.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
    bytes.extend_from_slice(&payload_len.to_le_bytes());
    bytes.extend_from_slice(&lsn.to_le_bytes());
    bytes.extend_from_slice(&write_first.to_le_bytes());
    bytes.extend_from_slice(&crc.to_le_bytes());
    let header_crc = crc32fast::hash(&bytes[at..at + 28]);
    bytes.extend_from_slice(&header_crc.to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes.resize(bytes.len().next_multiple_of(RECORD_ALIGN), 0);
}

fn segment_header(version: u32, capacity: u64, good: bool) -> [u8; SEGMENT_HEADER_LEN] {
    let mut header = [0; SEGMENT_HEADER_LEN];
    header[..8].copy_from_slice(SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&version.to_le_bytes());
    header[12..16].copy_from_slice(&(SEGMENT_HEADER_LEN as u32).to_le_bytes());
    header[16..24].copy_from_slice(&capacity.to_le_bytes());
    let mut crc = crc32fast::hash(&header[..24]);
    if !good {
        crc ^= 1;
    }
    header[24..28].copy_from_slice(&crc.to_le_bytes());
    header
}
