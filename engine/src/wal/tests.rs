//! Unit tests of the write-ahead log: the record and segment formats,
//! recovery's reading of torn writes and damage, and the log thread's
//! settling of a group that ends in an abort.

use std::fs;
use std::sync::atomic::AtomicUsize;

use redb::ReadableDatabase;
use redb::backends::InMemoryBackend;

use super::*;
use crate::log_storage::LogDirectory;
use crate::{
    Engine, EngineConfig, NewProduct, OrderId, ProductId, ReservationLine, ReserveRequest,
};

/// Appends still to fail, for the one test that injects failures.
pub(super) static FAIL_APPENDS: AtomicUsize = AtomicUsize::new(0);

/// Held by every test whose log thread appends: an injected failure must
/// meet the test that injected it.
static APPENDS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn appends() -> std::sync::MutexGuard<'static, ()> {
    APPENDS.lock().unwrap_or_else(|poison| poison.into_inner())
}

const CAPACITY: u64 = 64 << 10;

#[test]
fn a_failed_log_write_is_answered_after_the_checkpoint_that_makes_it_durable() {
    let _appends = appends();
    let dir = tempfile::tempdir().unwrap();
    let open = || Engine::open(EngineConfig::new(dir.path())).unwrap();
    let engine = open();
    engine
        .create_product(NewProduct {
            id: Some(ProductId(1)),
            name: "One".to_owned(),
            price: "1.00".parse().unwrap(),
            on_hand: 10,
            ..NewProduct::default()
        })
        .wait()
        .unwrap();
    let order = OrderId(uuid::Uuid::now_v7());
    FAIL_APPENDS.store(1, Ordering::SeqCst);
    let reserved = engine
        .reserve(ReserveRequest {
            order_id: order,
            items: vec![ReservationLine {
                product_id: ProductId(1),
                quantity: 3,
            }],
            ttl: None,
        })
        .wait();
    assert_eq!(
        FAIL_APPENDS.load(Ordering::SeqCst),
        0,
        "the failure was injected"
    );
    assert!(reserved.is_ok(), "held, then made durable: {reserved:?}");
    assert!(engine.is_healthy(), "a fresh segment after the checkpoint");
    assert!(
        engine.reservation(order).unwrap().is_some(),
        "published with the checkpoint"
    );
    drop(engine);

    let engine = open();
    assert!(engine.reservation(order).unwrap().is_some());
    assert_eq!(engine.stock(ProductId(1)).unwrap().unwrap().reserved, 3);
}

fn database() -> Database {
    let db = Database::builder()
        .create_with_backend(InMemoryBackend::new())
        .unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(storage::META).unwrap();
    txn.open_table(storage::STOCK).unwrap();
    txn.commit().unwrap();
    db
}

/// A record setting stock key `product` to `value`.
fn record(lsn: u64, product: u64, value: &[u8]) -> Vec<u8> {
    let mut log = LogBuffer::new();
    log.op(
        OP_INSERT,
        TableId::Stock,
        &product.to_le_bytes(),
        Some(value),
    );
    log.op(
        OP_REMOVE,
        TableId::Stock,
        &(product + 100).to_le_bytes(),
        None,
    );
    log.finish(lsn).unwrap()
}

/// A segment of `CAPACITY` bytes holding `writes`, each a list of record
/// numbers written together (record n sets stock n to "n").
fn segment(writes: &[&[u64]]) -> Vec<u8> {
    let mut bytes = segment_header(CAPACITY).to_vec();
    for write in writes {
        for &lsn in *write {
            let at = bytes.len();
            bytes.extend(record(lsn, lsn, lsn.to_string().as_bytes()));
            seal_record(&mut bytes, at, write[0]);
        }
    }
    bytes.resize(CAPACITY as usize, 0);
    bytes
}

/// Where record `index` (0-based) of `segment` starts.
fn offset_of(bytes: &[u8], index: usize) -> usize {
    let mut at = SEGMENT_HEADER_LEN;
    for _ in 0..index {
        at += record_at(bytes, at).unwrap().len;
    }
    at
}

fn stock(db: &Database, product: u64) -> Option<Vec<u8>> {
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(storage::STOCK).unwrap();
    table
        .get(product)
        .unwrap()
        .map(|bytes| bytes.value().to_vec())
}

fn held(db: &Database) -> Vec<u64> {
    (1..=20).filter(|&n| stock(db, n).is_some()).collect()
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn an_empty_batch_makes_no_record() {
    assert!(LogBuffer::new().finish(1).is_none());
}

#[test]
fn recovery_replays_whole_records_and_takes_a_torn_last_write_for_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LogDirectory::new(dir.path());
    let db = database();
    let mut bytes = segment(&[&[1], &[2], &[3, 4]]);
    // The last write (records 3 and 4) was cut short in its first record.
    let third = offset_of(&bytes, 2);
    bytes[third + RECORD_HEADER_LEN + 3] ^= 0xff;
    fs::write(dir.path().join(segment_name(1)), &bytes).unwrap();

    let report = recover(&db, &storage, false, false).unwrap();
    assert_eq!(report.last_lsn, 2);
    assert_eq!(report.torn_records, 1, "record 4, of the same write");
    assert_eq!(held(&db), vec![1, 2]);
    assert!(
        names(dir.path()).is_empty(),
        "removed once the replay is durable"
    );

    // Records redb already holds are skipped; the next one applies.
    let bytes = segment(&[&[2], &[3]]);
    fs::write(dir.path().join(segment_name(2)), &bytes).unwrap();
    assert_eq!(recover(&db, &storage, false, false).unwrap().last_lsn, 3);
    assert_eq!(held(&db), vec![1, 2, 3]);
}

#[test]
fn a_flipped_bit_followed_by_later_writes_is_damage_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LogDirectory::new(dir.path());
    let db = database();
    let mut bytes = segment(&[&[1], &[2], &[3], &[4, 5]]);
    let second = offset_of(&bytes, 1);
    bytes[second + RECORD_HEADER_LEN] ^= 1;
    let name = segment_name(1);
    fs::write(dir.path().join(&name), &bytes).unwrap();

    let error = recover(&db, &storage, false, false).unwrap_err();
    let Error::LogDamaged(loss) = &error else {
        panic!("not damage: {error}");
    };
    assert_eq!(loss.offset, second as u64);
    assert_eq!(loss.first_lost_lsn, 2);
    assert_eq!(loss.last_lost_lsn, 5);
    assert_eq!(loss.intact_records_dropped, 3);
    assert!(error.to_string().contains(&name), "{error}");
    assert!(error.to_string().contains("--accept-loss"), "{error}");
    assert_eq!(error.code(), "log_damaged");
    assert_eq!(held(&db), Vec::<u64>::new(), "nothing replayed");
    assert_eq!(names(dir.path()), vec![name.clone()], "the segment is kept");

    let report = recover(&db, &storage, true, false).unwrap();
    assert_eq!(report.last_lsn, 1);
    let loss = report.loss.unwrap();
    assert_eq!(loss.intact_records_dropped, 3);
    assert_eq!(loss.set_aside, vec![format!("{name}.damaged")]);
    assert_eq!(held(&db), vec![1]);
    assert_eq!(names(dir.path()), vec![format!("{name}.damaged")]);
    // The set-aside segment is never read again.
    assert_eq!(recover(&db, &storage, false, false).unwrap().last_lsn, 1);
}

#[test]
fn a_segment_cut_short_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LogDirectory::new(dir.path());
    let db = database();
    let bytes = segment(&[&[1], &[2], &[3]]);
    let cut = offset_of(&bytes, 2) + 5;
    fs::write(dir.path().join(segment_name(1)), &bytes[..cut]).unwrap();
    let error = recover(&db, &storage, false, false).unwrap_err();
    assert!(
        matches!(&error, Error::LogDamaged(loss) if loss.offset == cut as u64),
        "{error}"
    );
    assert!(error.to_string().contains("cut short"), "{error}");
    assert_eq!(held(&db), Vec::<u64>::new());
}

#[test]
fn a_damaged_header_is_damage_and_an_unfinished_segment_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LogDirectory::new(dir.path());
    let db = database();
    let mut bytes = segment(&[&[1]]);
    bytes[3] ^= 1;
    fs::write(dir.path().join(segment_name(1)), &bytes).unwrap();
    assert!(matches!(
        recover(&db, &storage, false, false),
        Err(Error::LogDamaged(_))
    ));
    fs::remove_file(dir.path().join(segment_name(1))).unwrap();
    // Created at the crash, never written: nothing to replay or lose.
    fs::write(dir.path().join(segment_name(1)), vec![0; 100]).unwrap();
    assert_eq!(recover(&db, &storage, false, false).unwrap().last_lsn, 0);
    assert!(names(dir.path()).is_empty());
}

#[test]
fn a_record_out_of_sequence_ends_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LogDirectory::new(dir.path());
    let db = database();
    fs::write(dir.path().join(segment_name(1)), segment(&[&[1, 2, 3, 4]])).unwrap();
    assert_eq!(recover(&db, &storage, false, false).unwrap().last_lsn, 4);
    // The segment's second use after a checkpoint at 4: record 5 at its
    // start was cut short, so records of the first use follow.
    let mut bytes = segment(&[&[1, 2, 3, 4]]);
    let first = segment(&[&[5]]);
    // Its header and the start of its payload, up to before the removed
    // key, which differs from record 1's.
    let cut = SEGMENT_HEADER_LEN + RECORD_HEADER_LEN + 20;
    bytes[SEGMENT_HEADER_LEN..cut].copy_from_slice(&first[SEGMENT_HEADER_LEN..cut]);
    fs::write(dir.path().join(segment_name(5)), &bytes).unwrap();
    assert_eq!(recover(&db, &storage, false, false).unwrap().last_lsn, 4);
    assert_eq!(stock(&db, 5), None);
}

#[test]
fn a_gap_in_the_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LogDirectory::new(dir.path());
    let db = database();
    fs::write(dir.path().join(segment_name(5)), segment(&[&[5]])).unwrap();
    let error = recover(&db, &storage, false, false).unwrap_err();
    assert!(error.to_string().contains("needs 1 next"), "{error}");
    assert_eq!(stock(&db, 5), None);
    assert_eq!(names(dir.path()).len(), 1, "kept for a human");
}

#[test]
fn a_segment_of_another_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LogDirectory::new(dir.path());
    let db = database();
    let mut bytes = segment(&[&[1]]);
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..24]);
    bytes[24..28].copy_from_slice(&crc.to_le_bytes());
    fs::write(dir.path().join(segment_name(1)), &bytes).unwrap();
    let error = recover(&db, &storage, false, false).unwrap_err();
    assert!(error.to_string().contains("version 1"), "{error}");
    assert_eq!(names(dir.path()).len(), 1);
}

/// A log thread's state without its thread, to drive `settle` directly.
fn log_writer(dir: &std::path::Path, next_lsn: u64) -> LogWriter {
    let storage: Arc<dyn LogStorage> = Arc::new(LogDirectory::new(dir));
    let current = create_segment(&*storage, next_lsn, CAPACITY).unwrap();
    let db = database();
    let snapshot = Arc::new(db.begin_read().unwrap());
    LogWriter {
        held: Vec::new(),
        storage,
        segment_bytes: CAPACITY,
        current: Some(current),
        older: Vec::new(),
        dirty: false,
        buffer: Vec::new(),
        batch_max: 100,
        head: Arc::new(watch::channel(0).0),
        lsn_head: Arc::new(watch::channel(0).0),
        gate: None,
        view: Arc::new(View::new(snapshot)),
        failed: Arc::new(AtomicBool::new(false)),
        observer: None,
    }
}

fn item(lsn: Option<u64>, answers: &Arc<std::sync::Mutex<Vec<(u64, bool)>>>, name: u64) -> LogItem {
    let answers = answers.clone();
    LogItem {
        record: lsn.map(|lsn| record(lsn, lsn, b"v")),
        answers: vec![Box::new(move |error: Option<&Error>| {
            answers.lock().unwrap().push((name, error.is_none()));
        })],
        commands: 1,
        head: 0,
        lsn: lsn.unwrap_or(0),
        gated: false,
        snapshot: None,
        checkpoint: None,
        abort: None,
    }
}

#[test]
fn an_abort_ending_a_group_keeps_the_records_before_it() {
    let _appends = appends();
    let dir = tempfile::tempdir().unwrap();
    let answers = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut writer = log_writer(dir.path(), 1);
    // Batch 1 committed (record 1), then a batch failed: one group.
    let mut group = vec![
        item(Some(1), &answers, 1),
        LogItem {
            record: None,
            answers: Vec::new(),
            commands: 0,
            head: 0,
            lsn: 1,
            gated: false,
            snapshot: None,
            checkpoint: None,
            abort: Some(Error::Storage("a record this build cannot read".to_owned())),
        },
    ];
    writer.settle(&mut group, 1);
    let mut group = vec![item(Some(2), &answers, 3)];
    writer.settle(&mut group, 1);
    assert_eq!(*answers.lock().unwrap(), vec![(1, true), (3, true)]);

    let db = database();
    let report = recover(&db, &LogDirectory::new(dir.path()), false, false).unwrap();
    assert_eq!(report.last_lsn, 2, "both acknowledged batches are replayed");
    assert_eq!(held(&db), vec![1, 2]);
}

#[test]
fn a_write_that_does_not_fit_starts_a_new_segment_and_recovery_reads_both() {
    let _appends = appends();
    let dir = tempfile::tempdir().unwrap();
    let answers = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut writer = log_writer(dir.path(), 1);
    let mut lsn = 0;
    while writer.older.is_empty() {
        assert!(lsn < 10_000, "a 64 KiB segment fills");
        lsn += 1;
        let mut group = vec![item(Some(lsn), &answers, lsn)];
        writer.settle(&mut group, 1);
    }
    assert_eq!(names(dir.path()).len(), 2);
    let db = database();
    let report = recover(&db, &LogDirectory::new(dir.path()), false, false).unwrap();
    assert_eq!(report.last_lsn, lsn);
    assert_eq!(report.replayed_records, lsn);
}

#[test]
fn a_record_whose_bytes_do_not_fit_its_table_is_an_error_not_a_panic() {
    // Checksums right, but bytes redb's from_bytes panicked on: a stock key
    // of 3 bytes where a u64 is 8 (found by the wal_read fuzz target), a
    // category index key that is not UTF-8, one cut inside its length prefix.
    for (table, key) in [
        (TableId::Stock, vec![1, 2, 3]),
        (
            TableId::ProductsByCategory,
            vec![2, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 1],
        ),
        (TableId::ProductsByCategory, vec![254, 9]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let storage = LogDirectory::new(dir.path());
        let db = database();
        let mut log = LogBuffer::new();
        log.op(OP_INSERT, table, &key, Some(&[]));
        let mut bytes = segment_header(CAPACITY).to_vec();
        let at = bytes.len();
        bytes.extend(log.finish(1).unwrap());
        seal_record(&mut bytes, at, 1);
        bytes.resize(CAPACITY as usize, 0);
        fs::write(dir.path().join(segment_name(1)), &bytes).unwrap();

        let error = recover(&db, &storage, false, false).unwrap_err();
        assert!(
            error.to_string().contains("cannot hold"),
            "{table:?} {key:?}: {error}"
        );
        assert_eq!(names(dir.path()), vec![segment_name(1)], "nothing removed");
    }
}

#[test]
fn encodings_that_fit_are_redbs_own() {
    use redb::Value as _;
    let long = "x".repeat(300);
    for text in ["", "tea", long.as_str()] {
        let pair = <(&str, u64)>::as_bytes(&(text, 7));
        assert!(<(&str, u64)>::fits(&pair));
        assert!(!<(&str, u64)>::fits(&pair[..pair.len() - 1]));
        let pair = <(u64, &str)>::as_bytes(&(7, text));
        assert!(<(u64, &str)>::fits(&pair));
        assert!(!<(u64, &str)>::fits(&pair[..7]));
    }
    let pair = <(u64, u128)>::as_bytes(&(1, 2));
    assert!(<(u64, u128)>::fits(&pair));
    assert!(!<(u64, u128)>::fits(&pair[1..]));
    assert!(<()>::fits(&[]));
    assert!(!<u64>::fits(&[0; 9]));
}
