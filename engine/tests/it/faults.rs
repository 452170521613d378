//! Fault test: the disk fails under the writer, at a checkpoint (where the
//! store itself is synced). The failed batch is answered with
//! `StorageUnavailable`, the engine refuses writes and says it is unhealthy
//! while reads go on, and once the disk works again the engine reopens its
//! store by itself, recovering every acknowledged write. The failed batch
//! itself has an unknown outcome, as any write whose sync failed: its pages
//! may have reached the file anyway. What must hold is that it is there
//! whole or not at all, its idempotency record included.

use std::fs::OpenOptions;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mercato_engine::{
    DATABASE_FILE_NAME, Engine, Error, FileBackend, ManualClock, ProductId, StorageBackend, Write,
};

use crate::support::{START, check_log_matches_stock, config, open, order, product, request};

/// A file whose syncs fail while `failing` is set.
#[derive(Debug)]
struct FlakyDisk {
    file: FileBackend,
    failing: AtomicBool,
}

impl StorageBackend for FlakyDisk {
    fn len(&self) -> std::io::Result<u64> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.file.set_len(len)
    }

    fn sync_data(&self) -> std::io::Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected sync failure"));
        }
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.file.write(offset, data)
    }
}

#[test]
fn a_failed_sync_fails_its_batch_and_the_engine_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.path().join(DATABASE_FILE_NAME))
        .unwrap();
    let disk = Arc::new(FlakyDisk {
        file: FileBackend::new(file).unwrap(),
        failing: AtomicBool::new(false),
    });
    let mut flaky = config(dir.path(), &clock);
    flaky.storage_backend = Some(disk.clone());
    let engine = Engine::open(flaky).unwrap();
    engine.create_product(product(1, 100)).wait().unwrap();
    let remembered = |_: &Result<_, Error>| Some(b"answer".to_vec());
    let hour = Duration::from_secs(3_600);
    let first = Write::reserve(request(order(1), &[(1, 5)])).remember("key-1", hour, remembered);
    engine.write(first).wait().unwrap();
    assert!(engine.is_healthy());

    disk.failing.store(true, Ordering::SeqCst);
    // The store is synced at checkpoints (a flush forces one); a write in
    // the same batch shares its fate, a write in an earlier batch was
    // already made durable by the write-ahead log.
    let second = Write::reserve(request(order(2), &[(1, 7)])).remember("key-2", hour, remembered);
    let second = engine.write(second);
    let flushed = engine.flush().wait();
    assert!(
        matches!(flushed, Err(Error::StorageUnavailable(_))),
        "{flushed:?}"
    );
    assert_eq!(flushed.unwrap_err().code(), "storage_unavailable");
    let second_acknowledged = second.wait().is_ok();
    assert!(!engine.is_healthy());
    assert!(
        engine.reservation(order(1)).unwrap().is_some(),
        "reads keep working"
    );
    let refused = engine.reserve(request(order(3), &[(1, 1)])).wait();
    assert!(
        matches!(refused, Err(Error::StorageUnavailable(_))),
        "refused while the store is unavailable: {refused:?}"
    );

    // The disk works again: the engine reopens its store by itself, which
    // replays what the log synced. Poll (bounded) until a write succeeds.
    disk.failing.store(false, Ordering::SeqCst);
    let mut recovered = false;
    for _ in 0..300 {
        match engine.reserve(request(order(4), &[(1, 1)])).wait() {
            Ok(_) => {
                recovered = true;
                break;
            }
            Err(Error::StorageUnavailable(_)) => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    assert!(recovered, "writes resume once the disk works again");
    assert!(engine.is_healthy());
    check_after_fault(&engine, second_acknowledged, 1);
    engine.shutdown();
    drop(engine);
    drop(disk);

    let engine = open(dir.path(), &clock);
    assert!(engine.is_healthy());
    check_after_fault(&engine, second_acknowledged, 1);
    engine.reserve(request(order(5), &[(1, 1)])).wait().unwrap();
}

/// What must hold once the store is back: every acknowledged write is
/// there, the failed batch whole or not at all (its idempotency record
/// with it), nothing refused was applied, and `later` units were reserved
/// after the recovery.
fn check_after_fault(engine: &Engine, second_acknowledged: bool, later: u64) {
    assert!(
        engine.reservation(order(1)).unwrap().is_some(),
        "acknowledged before the fault"
    );
    assert_eq!(
        engine.idempotency_record("key-1").unwrap(),
        Some(b"answer".to_vec())
    );
    // The failed batch: whole or not at all, with its idempotency record.
    let second = engine.reservation(order(2)).unwrap();
    let second_record = engine.idempotency_record("key-2").unwrap();
    assert!(second.is_some() || !second_acknowledged, "acknowledged");
    assert_eq!(
        second.is_some(),
        second_record.is_some(),
        "a write and its record go together"
    );
    let reserved = if second.is_some() { 12 } else { 5 };
    assert_eq!(
        engine.stock(ProductId(1)).unwrap().unwrap().reserved,
        reserved + later
    );
    // Nothing refused during the fault was applied.
    assert_eq!(engine.reservation(order(3)).unwrap(), None);
    check_log_matches_stock(engine);
}
