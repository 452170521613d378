//! The write-ahead log: how immediate durability is had without making the
//! writer wait for the disk.
//!
//! With [`Durability::Immediate`](crate::Durability::Immediate) the writer
//! commits each batch to redb without a sync (`Durability::None`), records
//! the batch's changes (every key and value it put or removed) as one log
//! record, and hands the record with the batch's answers to the log thread.
//! The log thread appends what has queued, syncs once, and only then
//! answers, while the writer is already applying the next batch: the sync
//! of batch N overlaps the work of batch N+1.
//!
//! Every `checkpoint_interval` (and when the log grows past
//! [`CHECKPOINT_BYTES`]) the writer commits a batch to redb with a sync
//! instead, recording in `meta` the last log record it covers; the log
//! thread then starts a new segment file and deletes the old one. At open,
//! [`recover`] replays the records redb does not yet hold.
//!
//! Record layout, little-endian:
//!
//! ```text
//! record  = payload_len: u32 | crc32(payload): u32 | payload
//! payload = lsn: u64 | op*
//! op      = 1: u8 | table: u8 | key_len: u32 | key | value_len: u32 | value   (insert)
//!         | 2: u8 | table: u8 | key_len: u32 | key                            (remove)
//! ```
//!
//! Keys and values are redb's own byte forms of the typed keys and values.

use std::borrow::Borrow;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use redb::{Database, Key, ReadableTable, Table, TableDefinition, Value, WriteTransaction};
use tokio::sync::watch;

use crate::error::Error;
use crate::observer::{LogSyncReport, WriterObserver};
use crate::storage;

/// The log grows to at most about this many bytes before a checkpoint.
pub(crate) const CHECKPOINT_BYTES: usize = 64 << 20;

/// A batch whose changes exceed this many bytes is made durable by a synced
/// redb commit (a checkpoint) instead of a log record.
pub(crate) const RECORD_BYTES_MAX: usize = 1 << 30;

/// Batches the writer may be ahead of the log's last sync.
const IN_FLIGHT_MAX: usize = 2;

/// The `meta` key holding the last log record redb holds durably.
pub(crate) const META_LOG_LSN: &str = "log_lsn";

const SEGMENT_PREFIX: &str = "mercato.wal.";
const RECORD_HEADER_LEN: usize = 8;
const OP_INSERT: u8 = 1;
const OP_REMOVE: u8 = 2;

/// The tables a log record may change. The numbers are on disk: never
/// reuse one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum TableId {
    Products = 1,
    ProductsByCategory = 2,
    Stock = 3,
    Reservations = 4,
    ReservationDeadlines = 5,
    Events = 6,
    ConsumerPositions = 7,
    Idempotency = 8,
    IdempotencyExpiry = 9,
}

impl TableId {
    fn from_u8(byte: u8) -> Option<TableId> {
        Some(match byte {
            1 => TableId::Products,
            2 => TableId::ProductsByCategory,
            3 => TableId::Stock,
            4 => TableId::Reservations,
            5 => TableId::ReservationDeadlines,
            6 => TableId::Events,
            7 => TableId::ConsumerPositions,
            8 => TableId::Idempotency,
            9 => TableId::IdempotencyExpiry,
            _ => return None,
        })
    }
}

/// The changes of one batch, being encoded as a log record.
pub(crate) struct LogBuffer {
    bytes: Vec<u8>,
}

impl LogBuffer {
    pub(crate) fn new() -> LogBuffer {
        let mut bytes = Vec::with_capacity(4_096);
        bytes.resize(RECORD_HEADER_LEN + 8, 0);
        LogBuffer { bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.len() == RECORD_HEADER_LEN + 8
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    fn op(&mut self, op: u8, table: TableId, key: &[u8], value: Option<&[u8]>) {
        self.bytes.push(op);
        self.bytes.push(table as u8);
        put_slice(&mut self.bytes, key);
        if let Some(value) = value {
            put_slice(&mut self.bytes, value);
        }
    }

    /// The finished record, or `None` when the batch changed nothing.
    pub(crate) fn finish(mut self, lsn: u64) -> Option<Vec<u8>> {
        if self.is_empty() {
            return None;
        }
        let payload_len = self.bytes.len() - RECORD_HEADER_LEN;
        let payload_len = u32::try_from(payload_len).expect("a batch's changes fit in 4 GiB");
        self.bytes[RECORD_HEADER_LEN..RECORD_HEADER_LEN + 8].copy_from_slice(&lsn.to_le_bytes());
        let crc = crc32fast::hash(&self.bytes[RECORD_HEADER_LEN..]);
        self.bytes[..4].copy_from_slice(&payload_len.to_le_bytes());
        self.bytes[4..8].copy_from_slice(&crc.to_le_bytes());
        Some(self.bytes)
    }
}

fn put_slice(bytes: &mut Vec<u8>, slice: &[u8]) {
    let len = u32::try_from(slice.len()).expect("redb keys and values fit in 4 GiB");
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(slice);
}

/// A table opened by the writer that records every change it makes in the
/// batch's log record (when there is one). Reads go to the table itself.
pub(crate) struct Logged<'a, 'txn, K: Key + 'static, V: Value + 'static> {
    pub(crate) table: &'a mut Table<'txn, K, V>,
    pub(crate) log: Option<&'a mut LogBuffer>,
    pub(crate) id: TableId,
}

impl<K: Key + 'static, V: Value + 'static> Logged<'_, '_, K, V> {
    pub(crate) fn insert<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<(), Error> {
        if let Some(log) = self.log.as_deref_mut() {
            log.op(
                OP_INSERT,
                self.id,
                K::as_bytes(key.borrow()).as_ref(),
                Some(V::as_bytes(value.borrow()).as_ref()),
            );
        }
        self.table.insert(key, value)?;
        Ok(())
    }

    pub(crate) fn remove<'k>(&mut self, key: impl Borrow<K::SelfType<'k>>) -> Result<(), Error> {
        if let Some(log) = self.log.as_deref_mut() {
            log.op(OP_REMOVE, self.id, K::as_bytes(key.borrow()).as_ref(), None);
        }
        self.table.remove(key)?;
        Ok(())
    }
}

impl<'txn, K: Key + 'static, V: Value + 'static> std::ops::Deref for Logged<'_, 'txn, K, V> {
    type Target = Table<'txn, K, V>;

    fn deref(&self) -> &Table<'txn, K, V> {
        self.table
    }
}

fn segment_path(dir: &Path, first_lsn: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{first_lsn:020}"))
}

/// The log's segment files in `dir`, oldest first.
fn segments(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(number) = name.strip_prefix(SEGMENT_PREFIX)
            && let Ok(first_lsn) = number.parse::<u64>()
        {
            found.push((first_lsn, entry.path()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, path)| path).collect())
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// The last log record redb holds durably (0 for none).
pub(crate) fn durable_lsn(txn: &WriteTransaction) -> Result<u64, Error> {
    let meta = txn.open_table(storage::META)?;
    let lsn = match meta.get(META_LOG_LSN)? {
        Some(bytes) => <[u8; 8]>::try_from(bytes.value())
            .map(u64::from_le_bytes)
            .map_err(|_| Error::corrupt("meta", "log_lsn"))?,
        None => 0,
    };
    Ok(lsn)
}

pub(crate) fn save_durable_lsn(txn: &WriteTransaction, lsn: u64) -> Result<(), Error> {
    txn.open_table(storage::META)?
        .insert(META_LOG_LSN, lsn.to_le_bytes().as_slice())?;
    Ok(())
}

/// Replays into redb every log record in `dir` that redb does not hold
/// yet, commits with a sync, and deletes the segments. A record cut short
/// or failing its checksum ends its segment: it was being written when the
/// process stopped, so its batch was never acknowledged (or it is left
/// from the segment's earlier use). Records must follow one another without
/// a gap. Returns the last record's number.
pub(crate) fn recover(db: &Database, dir: &Path) -> Result<u64, Error> {
    let paths = segments(dir)?;
    let mut txn = db.begin_write()?;
    storage::make_durable(&mut txn)?;
    let durable = durable_lsn(&txn)?;
    let mut last = durable;
    let mut replayed = 0usize;
    for path in &paths {
        let bytes = fs::read(path)?;
        let mut rest = bytes.as_slice();
        let mut previous: Option<u64> = None;
        while !rest.is_empty() {
            let Some(payload) = next_record(&mut rest) else {
                // A record cut short by a crash, or the remains of an
                // earlier use of the segment: the segment's end.
                tracing::debug!(
                    segment = %path.display(),
                    ignored_bytes = rest.len(),
                    "end of a log segment"
                );
                break;
            };
            let lsn = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
            // One use of a segment writes consecutive records from its
            // start; a record out of sequence is left from an earlier use
            // (a newer record over it was cut short): the segment's end.
            if previous.is_some_and(|previous| lsn != previous + 1) {
                break;
            }
            previous = Some(lsn);
            if lsn <= last {
                continue;
            }
            if lsn != last + 1 {
                return Err(Error::corrupt(
                    "log",
                    format!(
                        "{} holds record {lsn} but the store needs {} next",
                        path.display(),
                        last + 1
                    ),
                ));
            }
            replay(&txn, &payload[8..])
                .map_err(|error| Error::corrupt("log", format!("record {lsn}: {error}")))?;
            last = lsn;
            replayed += 1;
        }
    }
    if last != durable {
        save_durable_lsn(&txn, last)?;
    }
    txn.commit()?;
    if replayed > 0 {
        tracing::info!(records = replayed, last_lsn = last, "replayed the log");
    }
    for path in &paths {
        fs::remove_file(path)?;
    }
    if !paths.is_empty() {
        sync_dir(dir)?;
    }
    Ok(last)
}

/// Takes one whole, intact record's payload off the front of `rest`.
fn next_record<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let header = rest.get(..RECORD_HEADER_LEN)?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    let payload = rest.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN.checked_add(len)?)?;
    if len < 8 || crc32fast::hash(payload) != crc {
        return None;
    }
    *rest = &rest[RECORD_HEADER_LEN + len..];
    Some(payload)
}

fn take<'a>(ops: &mut &'a [u8], len: usize) -> Result<&'a [u8], String> {
    if ops.len() < len {
        return Err("an operation is cut short".to_owned());
    }
    let (head, tail) = ops.split_at(len);
    *ops = tail;
    Ok(head)
}

fn take_slice<'a>(ops: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let len = u32::from_le_bytes(take(ops, 4)?.try_into().expect("4 bytes"));
    take(ops, len as usize)
}

/// Applies one record's operations in `txn`.
fn replay(txn: &WriteTransaction, mut ops: &[u8]) -> Result<(), String> {
    while !ops.is_empty() {
        let head = take(&mut ops, 2)?;
        let table = TableId::from_u8(head[1]).ok_or_else(|| format!("table {}", head[1]))?;
        let key = take_slice(&mut ops)?;
        let value = match head[0] {
            OP_INSERT => Some(take_slice(&mut ops)?),
            OP_REMOVE => None,
            other => return Err(format!("operation {other}")),
        };
        let result = match table {
            TableId::Products => apply(txn, storage::PRODUCTS, key, value),
            TableId::ProductsByCategory => apply(txn, storage::PRODUCTS_BY_CATEGORY, key, value),
            TableId::Stock => apply(txn, storage::STOCK, key, value),
            TableId::Reservations => apply(txn, storage::RESERVATIONS, key, value),
            TableId::ReservationDeadlines => apply(txn, storage::RESERVATION_DEADLINES, key, value),
            TableId::Events => apply(txn, storage::EVENTS, key, value),
            TableId::ConsumerPositions => apply(txn, storage::CONSUMER_POSITIONS, key, value),
            TableId::Idempotency => apply(txn, storage::IDEMPOTENCY, key, value),
            TableId::IdempotencyExpiry => apply(txn, storage::IDEMPOTENCY_EXPIRY, key, value),
        };
        result.map_err(|error| error.to_string())?;
    }
    Ok(())
}

fn apply<K: Key + 'static, V: Value + 'static>(
    txn: &WriteTransaction,
    definition: TableDefinition<'_, K, V>,
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<(), Error> {
    let mut table = txn.open_table(definition)?;
    match value {
        Some(value) => {
            table.insert(K::from_bytes(key), V::from_bytes(value))?;
        }
        None => {
            table.remove(K::from_bytes(key))?;
        }
    }
    Ok(())
}

/// A batch on its way to the disk: its record (if it changed anything) and
/// the answers to send once the record is synced.
pub(crate) struct LogItem {
    pub(crate) record: Option<Vec<u8>>,
    pub(crate) answers: Vec<crate::writer::Answer>,
    pub(crate) commands: usize,
    /// The event log's head after this batch.
    pub(crate) head: u64,
    /// `Some(lsn)`: this batch was committed to redb with a sync, which
    /// made every record up to `lsn` durable there; start a new segment.
    pub(crate) checkpoint: Option<u64>,
    /// `Some(error)`: a redb commit failed, so the batches held back since
    /// a failure of the log will not be made durable by a checkpoint soon:
    /// answer them with this error. Carries no answers of its own.
    pub(crate) abort: Option<Error>,
}

/// The writer's end of the log thread.
pub(crate) struct LogLink {
    pub(crate) items: Sender<LogItem>,
    pub(crate) failed: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl LogLink {
    /// Lets the log thread settle everything sent and waits for it to end.
    pub(crate) fn close(self) {
        drop(self.items);
        if self.handle.join().is_err() {
            tracing::error!("the log thread panicked");
        }
    }
}

/// The log thread: owns the current segment file.
struct LogWriter {
    /// Answers of batches applied while the log was failed: they become
    /// durable with the next checkpoint, and are answered then.
    held: Vec<crate::writer::Answer>,
    dir: PathBuf,
    path: PathBuf,
    file: Option<File>,
    buffer: Vec<u8>,
    batch_max: usize,
    head: Arc<watch::Sender<u64>>,
    failed: Arc<AtomicBool>,
    observer: Option<Arc<dyn WriterObserver>>,
}

/// Starts the log thread with a new segment whose first record is `next_lsn`.
pub(crate) fn start(
    dir: &Path,
    next_lsn: u64,
    batch_max: usize,
    head: Arc<watch::Sender<u64>>,
    failed: Arc<AtomicBool>,
    observer: Option<Arc<dyn WriterObserver>>,
) -> Result<LogLink, Error> {
    let path = segment_path(dir, next_lsn);
    let file = create_segment(dir, &path)?;
    let (items, receiver) = crossbeam_channel::bounded(IN_FLIGHT_MAX);
    let writer = LogWriter {
        held: Vec::new(),
        dir: dir.to_owned(),
        path,
        file: Some(file),
        buffer: Vec::with_capacity(1 << 20),
        batch_max,
        head,
        failed: failed.clone(),
        observer,
    };
    let handle = std::thread::Builder::new()
        .name("mercato-log".to_owned())
        .spawn(move || writer.run(receiver))?;
    Ok(LogLink {
        items,
        failed,
        handle,
    })
}

fn create_segment(dir: &Path, path: &Path) -> Result<File, Error> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)?;
    sync_dir(dir)?;
    Ok(file)
}

impl LogWriter {
    fn run(mut self, items: Receiver<LogItem>) {
        let mut group = Vec::new();
        while let Ok(first) = items.recv() {
            let mut commands = first.commands;
            let mut ends_group = first.checkpoint.is_some() || first.abort.is_some();
            group.push(first);
            while !ends_group && commands < self.batch_max {
                let Ok(item) = items.try_recv() else { break };
                commands += item.commands;
                ends_group = item.checkpoint.is_some() || item.abort.is_some();
                group.push(item);
            }
            self.settle(&mut group, commands);
        }
        let error = Error::ShuttingDown;
        for answer in self.held.drain(..) {
            answer(Some(&error));
        }
        tracing::debug!("log thread stopped");
    }

    /// Makes a group of batches durable (or learns they are) and answers them.
    ///
    /// An abort ends a group but changes nothing about the batches before
    /// it: they are committed to redb and own their record numbers, so their
    /// records are written and synced like any others (dropping them would
    /// leave a gap that recovery takes for the end of the log). The abort
    /// only fails the batches held since a failure of the log, which no
    /// checkpoint will make durable now.
    fn settle(&mut self, group: &mut Vec<LogItem>, commands: usize) {
        let abort = group.last_mut().and_then(|last| last.abort.take());
        if abort.is_some() {
            let item = group.pop().expect("a group has a batch");
            assert!(item.answers.is_empty(), "an abort carries no answers");
            assert!(item.record.is_none(), "an abort carries no record");
        }
        if !group.is_empty() {
            self.settle_batches(group, commands);
        }
        if let Some(error) = abort {
            for answer in self.held.drain(..) {
                answer(Some(&error));
            }
        }
    }

    fn settle_batches(&mut self, group: &mut Vec<LogItem>, commands: usize) {
        let last = group.last().expect("a group has a batch");
        let head = last.head;
        let outcome = match last.checkpoint {
            // redb synced everything up to here: nothing to write.
            Some(lsn) => {
                self.rotate(lsn);
                Ok(())
            }
            None => self.append(group, commands),
        };
        match outcome {
            Ok(()) => {
                self.head.send_replace(head);
                for answer in self.held.drain(..) {
                    answer(None);
                }
                for item in group.drain(..) {
                    for answer in item.answers {
                        answer(None);
                    }
                }
            }
            // The batches are applied; the writer's next commit is a
            // checkpoint, which makes them durable. Until then they wait.
            Err(()) => {
                for item in group.drain(..) {
                    self.held.extend(item.answers);
                }
            }
        }
    }

    /// Appends the group's records and syncs. `Err` when the log is failed.
    fn append(&mut self, group: &[LogItem], commands: usize) -> Result<(), ()> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(());
        }
        #[cfg(test)]
        if tests::FAIL_APPENDS
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            tracing::error!("injected log write failure");
            self.failed.store(true, Ordering::SeqCst);
            return Err(());
        }
        self.buffer.clear();
        for item in group {
            if let Some(record) = &item.record {
                self.buffer.extend_from_slice(record);
            }
        }
        if self.buffer.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let file = self.file.as_mut().expect("a healthy log has a segment");
        let result = file.write_all(&self.buffer).and_then(|()| file.sync_data());
        match result {
            Ok(()) => {
                if let Some(observer) = &self.observer {
                    observer.log_synced(&LogSyncReport {
                        batches: group.len(),
                        commands,
                        bytes: self.buffer.len(),
                        latency: started.elapsed(),
                    });
                }
                Ok(())
            }
            Err(error) => {
                tracing::error!(
                    %error,
                    log = %self.path.display(),
                    "log write failed; answers wait for the next checkpoint"
                );
                self.failed.store(true, Ordering::SeqCst);
                Err(())
            }
        }
    }

    /// Starts a new segment after a checkpoint at `lsn` and deletes the old
    /// one, which redb now holds entirely. A failure leaves the log failed:
    /// the writer then checkpoints every batch until a rotation succeeds.
    fn rotate(&mut self, lsn: u64) {
        let path = segment_path(&self.dir, lsn + 1);
        let result = match self.file.as_mut() {
            // Reuse the segment: overwriting a file in place lets a sync
            // skip the file system's journal, which an append needs for the
            // new length. The old records left behind are all numbered at
            // most `lsn`, which redb holds, so recovery skips them.
            Some(file) if !self.failed.load(Ordering::SeqCst) => file
                .seek(SeekFrom::Start(0))
                .map_err(Error::from)
                .and_then(|_| {
                    fs::rename(&self.path, &path)?;
                    self.path = path;
                    Ok(())
                }),
            // After a failed write the segment may end in a partial record:
            // start a fresh one.
            _ => {
                self.file = None;
                create_segment(&self.dir, &path).and_then(|file| {
                    self.file = Some(file);
                    let old = std::mem::replace(&mut self.path, path);
                    if old != self.path {
                        // Not synced: should the old segment reappear after
                        // a crash, recovery skips its records, which redb holds.
                        fs::remove_file(&old)?;
                    }
                    Ok(())
                })
            }
        };
        match result {
            Ok(()) => {
                if self.failed.swap(false, Ordering::SeqCst) {
                    tracing::info!("the log recovered after a checkpoint");
                }
            }
            Err(error) => {
                tracing::error!(%error, "cannot start a new log segment");
                self.failed.store(true, Ordering::SeqCst);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use redb::ReadableDatabase;
    use redb::backends::InMemoryBackend;

    use super::*;
    use crate::{
        Engine, EngineConfig, NewProduct, OrderId, ProductId, ReservationLine, ReserveRequest,
    };

    /// Appends still to fail, for the one test that injects failures.
    pub(super) static FAIL_APPENDS: AtomicUsize = AtomicUsize::new(0);

    #[test]
    fn a_failed_log_write_is_answered_after_the_checkpoint_that_makes_it_durable() {
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
        engine.wait_durable().wait().unwrap();
        drop(engine);

        let engine = open();
        assert!(engine.reservation(order).unwrap().is_some());
        assert_eq!(engine.stock(ProductId(1)).unwrap().unwrap().reserved, 3);
    }

    #[test]
    fn a_record_out_of_sequence_ends_its_segment() {
        let dir = tempfile::tempdir().unwrap();
        let db = database();
        let mut bytes = Vec::new();
        for lsn in 1..=4 {
            bytes.extend(record(lsn, lsn, b"first use"));
        }
        fs::write(segment_path(dir.path(), 1), &bytes).unwrap();
        assert_eq!(recover(&db, dir.path()).unwrap(), 4);
        // The segment's second use: record 5 at its start was cut short, so
        // an intact record of the first use is there, then record 6.
        let mut bytes = record(2, 2, b"first use");
        bytes.extend(record(6, 6, b"second use"));
        fs::write(segment_path(dir.path(), 5), &bytes).unwrap();
        assert_eq!(recover(&db, dir.path()).unwrap(), 4);
        assert_eq!(stock(&db, 6), None);
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

    fn stock(db: &Database, product: u64) -> Option<Vec<u8>> {
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(storage::STOCK).unwrap();
        table
            .get(product)
            .unwrap()
            .map(|bytes| bytes.value().to_vec())
    }

    #[test]
    fn an_empty_batch_makes_no_record() {
        assert!(LogBuffer::new().finish(1).is_none());
    }

    #[test]
    fn recovery_replays_whole_records_and_ignores_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let db = database();
        let mut bytes = record(1, 1, b"one");
        bytes.extend(record(2, 2, b"two"));
        let third = record(3, 3, b"three");
        bytes.extend(&third[..third.len() - 1]);
        fs::write(segment_path(dir.path(), 1), &bytes).unwrap();

        assert_eq!(recover(&db, dir.path()).unwrap(), 2);
        assert_eq!(stock(&db, 1), Some(b"one".to_vec()));
        assert_eq!(stock(&db, 2), Some(b"two".to_vec()));
        assert_eq!(stock(&db, 3), None);
        assert!(segments(dir.path()).unwrap().is_empty());

        // Records redb already holds are skipped; the next one applies.
        let mut bytes = record(2, 2, b"stale");
        bytes.extend(record(3, 3, b"three"));
        fs::write(segment_path(dir.path(), 2), &bytes).unwrap();
        assert_eq!(recover(&db, dir.path()).unwrap(), 3);
        assert_eq!(stock(&db, 2), Some(b"two".to_vec()));
        assert_eq!(stock(&db, 3), Some(b"three".to_vec()));
    }

    #[test]
    fn a_gap_in_the_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = database();
        fs::write(segment_path(dir.path(), 5), record(5, 1, b"late")).unwrap();
        let error = recover(&db, dir.path()).unwrap_err();
        assert!(error.to_string().contains("needs 1 next"), "{error}");
        assert_eq!(stock(&db, 1), None);
        assert_eq!(segments(dir.path()).unwrap().len(), 1, "kept for a human");
    }

    #[test]
    fn a_flipped_bit_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let db = database();
        let mut bytes = record(1, 1, b"one");
        let flipped = bytes.len() - 1;
        bytes[flipped] ^= 1;
        fs::write(segment_path(dir.path(), 1), &bytes).unwrap();
        assert_eq!(recover(&db, dir.path()).unwrap(), 0);
        assert_eq!(stock(&db, 1), None);
    }
}
