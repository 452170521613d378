//! The write-ahead log: how immediate durability is had without making the
//! writer wait for the disk.
//!
//! With [`Durability::Immediate`](crate::Durability::Immediate) the writer
//! commits each batch to redb without a sync (`Durability::None`), records
//! the batch's changes (every key and value it put or removed) as one log
//! record, and hands the record with the batch's answers to the log thread.
//! The log thread writes what has queued, syncs once, publishes the new
//! read snapshot and only then answers, while the writer is already
//! applying the next batch: the sync of batch N overlaps the work of N+1.
//!
//! Every `checkpoint_interval` (and when the log grows past
//! [`CHECKPOINT_BYTES`]) the writer commits a batch to redb with a sync
//! instead, recording in `meta` the last log record it covers; the log
//! thread then reuses its segment from the start. At open, [`recover`]
//! replays the records redb does not yet hold.
//!
//! A segment is a file of [`EngineConfig::log_segment_bytes`](crate::EngineConfig)
//! created at full length (its header says which), so a segment cut short is
//! damage, never a normal end. Records are 8-byte aligned and each carries
//! a header checksum of its own, so that recovery can look past a bad
//! record for intact later ones: a torn write at the end of the log is
//! normal after a crash, but a bad record followed by a record of a later
//! write means acknowledged writes would be lost, and the store refuses to
//! open (see [`recover`]).
//!
//! Layout, little-endian:
//!
//! ```text
//! segment = header | record* | (zeros, or records of the segment's earlier use)
//! header  = "MRCTOLOG" | version: u32 (2) | header_len: u32 (32) | capacity: u64
//!         | crc32(the 24 bytes before): u32 | 0: u32
//! record  = magic: u32 | payload_len: u32 | lsn: u64 | write_first: u64
//!         | crc32(payload): u32 | crc32(the 28 bytes before): u32
//!         | payload | zeros to a multiple of 8
//! payload = op*
//! op      = 1: u8 | table: u8 | key_len: u32 | key | value_len: u32 | value   (insert)
//!         | 2: u8 | table: u8 | key_len: u32 | key                            (remove)
//! ```
//!
//! `write_first` is the number of the first record of the write (one write
//! and sync of the log thread) the record was part of. Keys and values are
//! redb's own byte forms of the typed keys and values.

use std::borrow::Borrow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use redb::{
    Database, Key, ReadableTable, Table, TableDefinition, TableHandle, Value, WriteTransaction,
};
use tokio::sync::watch;

use crate::error::Error;
use crate::log_storage::{LogFile, LogStorage};
use crate::observer::{LogSyncReport, WriterObserver};
use crate::storage;
use crate::view::{Snapshot, View};

/// The log grows to at most about this many bytes before a checkpoint.
pub(crate) const CHECKPOINT_BYTES: usize = 64 << 20;

/// A batch whose changes exceed this many bytes is made durable by a synced
/// redb commit (a checkpoint) instead of a log record.
pub(crate) const RECORD_BYTES_MAX: usize = 1 << 30;

/// Batches the writer may be ahead of the log's last sync.
const IN_FLIGHT_MAX: usize = 2;

/// The `meta` key holding the last log record redb holds durably.
pub(crate) const META_LOG_LSN: &str = "log_lsn";

pub(crate) const SEGMENT_PREFIX: &str = "mercato.wal.";
/// Appended to the name of a segment set aside by a recovery that accepted
/// a loss: kept for a human, never read again.
const DAMAGED_SUFFIX: &str = ".damaged";
/// A segment being created; renamed once whole.
const TEMPORARY_SUFFIX: &str = ".tmp";
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"MRCTOLOG";
pub(crate) const SEGMENT_VERSION: u32 = 2;
pub(crate) const SEGMENT_HEADER_LEN: usize = 32;
pub(crate) const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"MREC");
pub(crate) const RECORD_HEADER_LEN: usize = 32;
pub(crate) const RECORD_ALIGN: usize = 8;
pub(crate) const OP_INSERT: u8 = 1;
pub(crate) const OP_REMOVE: u8 = 2;

const _: () = assert!(SEGMENT_HEADER_LEN.is_multiple_of(RECORD_ALIGN));
const _: () = assert!(RECORD_HEADER_LEN.is_multiple_of(RECORD_ALIGN));
const _: () = assert!(RECORD_BYTES_MAX < u32::MAX as usize);

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
    Carts = 10,
    CartsByUser = 11,
    CartExpiry = 12,
    Orders = 13,
    OrdersByUser = 14,
    SagaLog = 15,
    Payments = 16,
    PaymentsByOrder = 17,
    WebhookEvents = 18,
    Notifications = 19,
    NotificationsByUser = 20,
    NotificationsByOrder = 21,
    NotificationSources = 22,
    NotificationDue = 23,
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
            10 => TableId::Carts,
            11 => TableId::CartsByUser,
            12 => TableId::CartExpiry,
            13 => TableId::Orders,
            14 => TableId::OrdersByUser,
            15 => TableId::SagaLog,
            16 => TableId::Payments,
            17 => TableId::PaymentsByOrder,
            18 => TableId::WebhookEvents,
            19 => TableId::Notifications,
            20 => TableId::NotificationsByUser,
            21 => TableId::NotificationsByOrder,
            22 => TableId::NotificationSources,
            23 => TableId::NotificationDue,
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
        bytes.resize(RECORD_HEADER_LEN, 0);
        LogBuffer { bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.len() == RECORD_HEADER_LEN
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The operations recorded so far (a record's payload).
    pub(crate) fn payload(&self) -> &[u8] {
        &self.bytes[RECORD_HEADER_LEN..]
    }

    /// A buffer holding `payload`, a record's operations made elsewhere (a
    /// primary's record applied by a follower).
    pub(crate) fn from_payload(payload: &[u8]) -> LogBuffer {
        let mut bytes = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
        bytes.resize(RECORD_HEADER_LEN, 0);
        bytes.extend_from_slice(payload);
        LogBuffer { bytes }
    }

    fn op(&mut self, op: u8, table: TableId, key: &[u8], value: Option<&[u8]>) {
        self.bytes.push(op);
        self.bytes.push(table as u8);
        put_slice(&mut self.bytes, key);
        if let Some(value) = value {
            put_slice(&mut self.bytes, value);
        }
    }

    /// The finished record, or `None` when the batch changed nothing. The
    /// log thread fills in `write_first` and the header's checksum.
    pub(crate) fn finish(mut self, lsn: u64) -> Option<Vec<u8>> {
        if self.is_empty() {
            return None;
        }
        let payload_len = self.bytes.len() - RECORD_HEADER_LEN;
        let payload_len = u32::try_from(payload_len).expect("a record is under RECORD_BYTES_MAX");
        let crc = crc32fast::hash(&self.bytes[RECORD_HEADER_LEN..]);
        self.bytes[0..4].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
        self.bytes[4..8].copy_from_slice(&payload_len.to_le_bytes());
        self.bytes[8..16].copy_from_slice(&lsn.to_le_bytes());
        self.bytes[24..28].copy_from_slice(&crc.to_le_bytes());
        let padded = self.bytes.len().next_multiple_of(RECORD_ALIGN);
        self.bytes.resize(padded, 0);
        Some(self.bytes)
    }
}

/// Completes a record's header inside `bytes` (at `at`) for a write whose
/// first record is `write_first`.
fn seal_record(bytes: &mut [u8], at: usize, write_first: u64) {
    bytes[at + 16..at + 24].copy_from_slice(&write_first.to_le_bytes());
    let crc = crc32fast::hash(&bytes[at..at + 28]);
    bytes[at + 28..at + 32].copy_from_slice(&crc.to_le_bytes());
}

fn put_slice(bytes: &mut Vec<u8>, slice: &[u8]) {
    let len = u32::try_from(slice.len()).expect("redb keys and values fit in 4 GiB");
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(slice);
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
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

fn segment_name(first_lsn: u64) -> String {
    format!("{SEGMENT_PREFIX}{first_lsn:020}")
}

/// The log's segments, oldest first, as (first record's number, name).
fn segments(storage: &dyn LogStorage) -> Result<Vec<(u64, String)>, Error> {
    let mut found = Vec::new();
    for name in storage.list()? {
        if let Some(number) = name.strip_prefix(SEGMENT_PREFIX)
            && number.len() == 20
            && let Ok(first_lsn) = number.parse::<u64>()
        {
            found.push((first_lsn, name));
        }
    }
    found.sort();
    Ok(found)
}

/// Whether the log has any segment (a store with a log has been created).
pub(crate) fn has_segments(storage: &dyn LogStorage) -> Result<bool, Error> {
    Ok(!segments(storage)?.is_empty())
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

/// What a recovery found and did. With `accept_loss` it may have dropped
/// damaged log records; [`RecoveryReport::loss`] says exactly which.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// The number of the last log record the store now holds.
    pub last_lsn: u64,
    /// Records replayed into the store.
    pub replayed_records: u64,
    /// Segments read.
    pub segments: usize,
    /// Records of a write cut short by the crash (never acknowledged),
    /// dropped as the normal end of the log.
    pub torn_records: u64,
    /// What a damaged log cost, when the recovery accepted a loss.
    pub loss: Option<LogLoss>,
}

/// Log records dropped because the log was damaged (see
/// [`Engine::recover`](crate::Engine::recover)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogLoss {
    /// The damaged segment.
    pub segment: String,
    /// Where in it the damage starts, in bytes.
    pub offset: u64,
    /// What is wrong there.
    pub reason: String,
    /// The first record number not replayed.
    pub first_lost_lsn: u64,
    /// The highest record number found intact beyond the damage.
    pub last_lost_lsn: u64,
    /// Intact records found beyond the damage and dropped with it (the
    /// damaged records themselves cannot be counted).
    pub intact_records_dropped: u64,
    /// The segments renamed with a `.damaged` suffix and kept, not read.
    pub set_aside: Vec<String>,
}

impl std::fmt::Display for LogLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at byte {}: {}; records from {} on cannot be replayed",
            self.segment, self.offset, self.reason, self.first_lost_lsn,
        )?;
        if self.intact_records_dropped > 0 {
            write!(
                f,
                " ({} intact records, up to {}, lie beyond the damage)",
                self.intact_records_dropped, self.last_lost_lsn,
            )?;
        }
        Ok(())
    }
}

/// One record found intact in a segment.
struct Found<'a> {
    lsn: u64,
    write_first: u64,
    payload: &'a [u8],
    /// The record's length on disk, padding included.
    len: usize,
}

/// The record at `at`, if its header and payload are intact.
fn record_at(bytes: &[u8], at: usize) -> Option<Found<'_>> {
    let header = bytes.get(at..at.checked_add(RECORD_HEADER_LEN)?)?;
    if u32_at(header, 0) != RECORD_MAGIC || crc32fast::hash(&header[..28]) != u32_at(header, 28) {
        return None;
    }
    let payload_len = u32_at(header, 4) as usize;
    let start = at + RECORD_HEADER_LEN;
    let payload = bytes.get(start..start.checked_add(payload_len)?)?;
    if crc32fast::hash(payload) != u32_at(header, 24) {
        return None;
    }
    Some(Found {
        lsn: u64_at(header, 8),
        write_first: u64_at(header, 16),
        payload,
        len: (RECORD_HEADER_LEN + payload_len).next_multiple_of(RECORD_ALIGN),
    })
}

/// Every intact record at or after `from` with a number above `above`,
/// found by trying each aligned offset: what lies beyond a bad record.
fn intact_after(bytes: &[u8], from: usize, above: u64) -> Vec<Found<'_>> {
    let mut found = Vec::new();
    let mut at = from.next_multiple_of(RECORD_ALIGN);
    while at + RECORD_HEADER_LEN <= bytes.len() {
        // The magic first: a cheap test that rejects almost every offset.
        if u32_at(bytes, at) == RECORD_MAGIC
            && let Some(record) = record_at(bytes, at)
        {
            at += record.len;
            if record.lsn > above {
                found.push(record);
            }
            continue;
        }
        at += RECORD_ALIGN;
    }
    found
}

/// How a segment's header reads.
enum Header {
    /// Intact, with the capacity the segment was created with.
    Intact(u64),
    /// Nothing but zeros (or nothing at all): the segment was being created
    /// when the process stopped and never held a record.
    Unfinished,
    /// Written by another version of the log.
    Version(u32),
    Damaged,
}

fn read_header(bytes: &[u8]) -> Header {
    let Some(header) = bytes.get(..SEGMENT_HEADER_LEN) else {
        return if bytes.iter().all(|&byte| byte == 0) {
            Header::Unfinished
        } else {
            Header::Damaged
        };
    };
    if header.iter().all(|&byte| byte == 0) {
        return if bytes.iter().all(|&byte| byte == 0) {
            Header::Unfinished
        } else {
            Header::Damaged
        };
    }
    if &header[..8] != SEGMENT_MAGIC || crc32fast::hash(&header[..24]) != u32_at(header, 24) {
        return Header::Damaged;
    }
    let version = u32_at(header, 8);
    if version != SEGMENT_VERSION || u32_at(header, 12) as usize != SEGMENT_HEADER_LEN {
        return Header::Version(version);
    }
    Header::Intact(u64_at(header, 16))
}

fn segment_header(capacity: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut header = [0; SEGMENT_HEADER_LEN];
    header[..8].copy_from_slice(SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&(SEGMENT_HEADER_LEN as u32).to_le_bytes());
    header[16..24].copy_from_slice(&capacity.to_le_bytes());
    let crc = crc32fast::hash(&header[..24]);
    header[24..28].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Damage found in the log: where, why, and what lies beyond it.
struct Damage {
    segment_index: usize,
    offset: u64,
    reason: String,
    first_lost_lsn: u64,
    last_lost_lsn: u64,
    intact_records_dropped: u64,
}

/// Replays into redb every log record that redb does not hold yet, commits
/// with a sync, and only then removes the segments.
///
/// A torn write at the end of the log (records of the last write cut short
/// or corrupt, nothing intact from a later write after them) is the normal
/// end after a crash: those records were never acknowledged. Anything else
/// that would drop a record is damage: a segment shorter than it was
/// created, a bad header, a bad record followed by an intact record of a
/// later write, or a gap between records. Damage refuses to open
/// ([`Error::LogDamaged`]) and changes nothing, unless `accept_loss`: then
/// the store keeps every record before the damage, the damaged segment and
/// those after it are renamed with a `.damaged` suffix and kept, and the
/// report says exactly what was dropped.
///
/// With `keep_records` (a replicating primary) every replayed record is
/// also put back in `replication_log`, whose rows are not themselves
/// logged, so that a publisher still finds every record it has not shipped.
pub(crate) fn recover(
    db: &Database,
    storage: &dyn LogStorage,
    accept_loss: bool,
    keep_records: bool,
) -> Result<RecoveryReport, Error> {
    let paths = segments(storage)?;
    let leftovers: Vec<String> = storage
        .list()?
        .into_iter()
        .filter(|name| name.starts_with(SEGMENT_PREFIX) && name.ends_with(TEMPORARY_SUFFIX))
        .collect();
    let mut txn = db.begin_write()?;
    storage::make_durable(&mut txn)?;
    let durable = durable_lsn(&txn)?;
    let mut report = RecoveryReport {
        last_lsn: durable,
        segments: paths.len(),
        ..RecoveryReport::default()
    };
    let mut damage = None;
    for (index, (_, name)) in paths.iter().enumerate() {
        let bytes = storage.read(name)?;
        let scanned = scan_segment(&txn, &bytes, index, keep_records, &mut report)
            .map_err(|error| match error {
                Scan::Failed(error) => error,
                Scan::Replay(lsn, message) => {
                    Error::corrupt("log", format!("{name}: record {lsn}: {message}"))
                }
                Scan::Version(version) => Error::Storage(format!(
                    "{} was written by log format version {version}; this build reads version {SEGMENT_VERSION}: \
                     recover it with the build that wrote it (start and stop it once), then start this one",
                    storage.describe(name)
                )),
            })?;
        if let Some(found) = scanned {
            damage = Some(found);
            break;
        }
    }
    let loss = match damage {
        None => None,
        Some(damage) => {
            let (_, name) = &paths[damage.segment_index];
            let loss = LogLoss {
                segment: storage.describe(name),
                offset: damage.offset,
                reason: damage.reason,
                first_lost_lsn: damage.first_lost_lsn,
                last_lost_lsn: damage.last_lost_lsn,
                intact_records_dropped: damage.intact_records_dropped,
                set_aside: paths[damage.segment_index..]
                    .iter()
                    .map(|(_, name)| format!("{name}{DAMAGED_SUFFIX}"))
                    .collect(),
            };
            if !accept_loss {
                drop(txn);
                return Err(Error::LogDamaged(Box::new(loss)));
            }
            tracing::error!(
                segment = %loss.segment,
                offset = loss.offset,
                reason = %loss.reason,
                first_lost_lsn = loss.first_lost_lsn,
                last_lost_lsn = loss.last_lost_lsn,
                intact_records_dropped = loss.intact_records_dropped,
                "the log is damaged; accepting the loss as asked: keeping every record before the damage"
            );
            Some((damage.segment_index, loss))
        }
    };
    if report.last_lsn != durable {
        save_durable_lsn(&txn, report.last_lsn)?;
    }
    txn.commit()?;
    if report.replayed_records > 0 {
        tracing::info!(
            records = report.replayed_records,
            last_lsn = report.last_lsn,
            "replayed the log"
        );
    }
    // The replay is durable: the segments can go, the damaged ones aside.
    let keep_from = loss.as_ref().map_or(paths.len(), |(index, _)| *index);
    for (index, (_, name)) in paths.iter().enumerate() {
        if index >= keep_from {
            storage.rename(name, &format!("{name}{DAMAGED_SUFFIX}"))?;
        } else {
            storage.remove(name)?;
        }
    }
    for name in &leftovers {
        // A segment whose creation was cut short: it never held a record.
        storage.remove(name)?;
    }
    if !paths.is_empty() || !leftovers.is_empty() {
        storage.sync_names()?;
    }
    report.loss = loss.map(|(_, loss)| loss);
    Ok(report)
}

enum Scan {
    Failed(Error),
    Replay(u64, String),
    Version(u32),
}

impl From<Error> for Scan {
    fn from(error: Error) -> Scan {
        Scan::Failed(error)
    }
}

/// Replays one segment's records that redb lacks. `Ok(Some(damage))` when
/// the segment is damaged: what was replayed before the damage stays in
/// `txn`, and nothing after it is read.
fn scan_segment(
    txn: &WriteTransaction,
    bytes: &[u8],
    index: usize,
    keep_records: bool,
    report: &mut RecoveryReport,
) -> Result<Option<Damage>, Scan> {
    let damage =
        |offset: usize, reason: String, report: &RecoveryReport, beyond: &[Found]| Damage {
            segment_index: index,
            offset: offset as u64,
            reason,
            first_lost_lsn: report.last_lsn + 1,
            last_lost_lsn: beyond
                .iter()
                .map(|record| record.lsn)
                .max()
                .unwrap_or(report.last_lsn + 1),
            intact_records_dropped: beyond.len() as u64,
        };
    let capacity = match read_header(bytes) {
        Header::Intact(capacity) => capacity,
        Header::Unfinished => return Ok(None),
        Header::Version(version) => return Err(Scan::Version(version)),
        Header::Damaged => {
            let beyond = intact_after(bytes, SEGMENT_HEADER_LEN, report.last_lsn);
            let reason = "the segment's header is damaged".to_owned();
            return Ok(Some(damage(0, reason, report, &beyond)));
        }
    };
    // A segment shorter than it was created has lost its end: damage, but
    // the intact records before the cut are replayed first.
    let cut_short = (bytes.len() as u64) < capacity;
    // The run of consecutive records from the start: one use of the segment.
    let mut at = SEGMENT_HEADER_LEN;
    let mut previous: Option<u64> = None;
    while let Some(record) = record_at(bytes, at) {
        if previous.is_some_and(|previous| record.lsn != previous + 1) {
            // Left from the segment's earlier use (numbered lower), or
            // damage (numbered higher, found again below).
            break;
        }
        previous = Some(record.lsn);
        if record.lsn <= report.last_lsn {
            at += record.len;
            continue;
        }
        if record.lsn != report.last_lsn + 1 {
            let reason = format!(
                "it holds record {} where the store needs {} next: records are missing",
                record.lsn,
                report.last_lsn + 1
            );
            let beyond = intact_after(bytes, at, report.last_lsn);
            return Ok(Some(damage(at, reason, report, &beyond)));
        }
        replay(txn, record.payload).map_err(|message| Scan::Replay(record.lsn, message))?;
        if keep_records {
            txn.open_table(storage::REPLICATION_LOG)
                .map_err(Error::from)?
                .insert(record.lsn, record.payload)
                .map_err(Error::from)?;
        }
        report.last_lsn = record.lsn;
        report.replayed_records += 1;
        at += record.len;
    }
    if cut_short {
        let beyond = intact_after(bytes, at, report.last_lsn);
        let reason = format!(
            "the segment is {} bytes long but was created with {capacity}: it was cut short",
            bytes.len()
        );
        return Ok(Some(damage(bytes.len(), reason, report, &beyond)));
    }
    // The run ended at `at`. Whatever follows numbered above the last
    // record held was written later than the record that should be at
    // `at`: from the same write, it is a torn write (never acknowledged);
    // from a later write, the write holding `at` was synced before it, so
    // it was damaged afterwards.
    let next = report.last_lsn + 1;
    let beyond = intact_after(bytes, at, report.last_lsn);
    if beyond.iter().any(|record| record.write_first > next) {
        let reason =
            format!("record {next} is unreadable but intact records of later writes follow it");
        return Ok(Some(damage(at, reason, report, &beyond)));
    }
    if !beyond.is_empty() {
        tracing::warn!(
            offset = at,
            dropped = beyond.len(),
            first_dropped_lsn = next,
            "the log's last write was cut short by the crash; its records were never acknowledged"
        );
        report.torn_records += beyond.len() as u64;
    }
    Ok(None)
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

/// Applies one record's operations in `txn` (recovery, and a follower
/// applying a primary's record).
pub(crate) fn replay(txn: &WriteTransaction, mut ops: &[u8]) -> Result<(), String> {
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
            TableId::Orders => apply(txn, storage::ORDERS, key, value),
            TableId::OrdersByUser => apply(txn, storage::ORDERS_BY_USER, key, value),
            TableId::SagaLog => apply(txn, storage::SAGA_LOG, key, value),
            TableId::Payments => apply(txn, storage::PAYMENTS, key, value),
            TableId::PaymentsByOrder => apply(txn, storage::PAYMENTS_BY_ORDER, key, value),
            TableId::WebhookEvents => apply(txn, storage::WEBHOOK_EVENTS, key, value),
            TableId::Carts => apply(txn, storage::CARTS, key, value),
            TableId::CartsByUser => apply(txn, storage::CARTS_BY_USER, key, value),
            TableId::CartExpiry => apply(txn, storage::CART_EXPIRY, key, value),
            TableId::Notifications => apply(txn, storage::NOTIFICATIONS, key, value),
            TableId::NotificationsByUser => apply(txn, storage::NOTIFICATIONS_BY_USER, key, value),
            TableId::NotificationsByOrder => {
                apply(txn, storage::NOTIFICATIONS_BY_ORDER, key, value)
            }
            TableId::NotificationSources => apply(txn, storage::NOTIFICATION_SOURCES, key, value),
            TableId::NotificationDue => apply(txn, storage::NOTIFICATION_DUE, key, value),
        };
        result.map_err(|error| error.to_string())?;
    }
    Ok(())
}

/// Every row of every logged table in `txn`, as one record's insert
/// operations: a consistent copy of the store that [`replay`] rebuilds into
/// an empty one (a replication snapshot).
pub(crate) fn dump(txn: &redb::ReadTransaction) -> Result<Vec<u8>, Error> {
    let mut log = LogBuffer::new();
    dump_table(txn, storage::PRODUCTS, TableId::Products, &mut log)?;
    dump_table(
        txn,
        storage::PRODUCTS_BY_CATEGORY,
        TableId::ProductsByCategory,
        &mut log,
    )?;
    dump_table(txn, storage::STOCK, TableId::Stock, &mut log)?;
    dump_table(txn, storage::RESERVATIONS, TableId::Reservations, &mut log)?;
    dump_table(
        txn,
        storage::RESERVATION_DEADLINES,
        TableId::ReservationDeadlines,
        &mut log,
    )?;
    dump_table(txn, storage::EVENTS, TableId::Events, &mut log)?;
    dump_table(
        txn,
        storage::CONSUMER_POSITIONS,
        TableId::ConsumerPositions,
        &mut log,
    )?;
    dump_table(txn, storage::IDEMPOTENCY, TableId::Idempotency, &mut log)?;
    dump_table(
        txn,
        storage::IDEMPOTENCY_EXPIRY,
        TableId::IdempotencyExpiry,
        &mut log,
    )?;
    dump_table(txn, storage::CARTS, TableId::Carts, &mut log)?;
    dump_table(txn, storage::CARTS_BY_USER, TableId::CartsByUser, &mut log)?;
    dump_table(txn, storage::CART_EXPIRY, TableId::CartExpiry, &mut log)?;
    dump_table(txn, storage::ORDERS, TableId::Orders, &mut log)?;
    dump_table(
        txn,
        storage::ORDERS_BY_USER,
        TableId::OrdersByUser,
        &mut log,
    )?;
    dump_table(txn, storage::SAGA_LOG, TableId::SagaLog, &mut log)?;
    dump_table(txn, storage::PAYMENTS, TableId::Payments, &mut log)?;
    dump_table(
        txn,
        storage::PAYMENTS_BY_ORDER,
        TableId::PaymentsByOrder,
        &mut log,
    )?;
    dump_table(
        txn,
        storage::WEBHOOK_EVENTS,
        TableId::WebhookEvents,
        &mut log,
    )?;
    dump_table(
        txn,
        storage::NOTIFICATIONS,
        TableId::Notifications,
        &mut log,
    )?;
    dump_table(
        txn,
        storage::NOTIFICATIONS_BY_USER,
        TableId::NotificationsByUser,
        &mut log,
    )?;
    dump_table(
        txn,
        storage::NOTIFICATIONS_BY_ORDER,
        TableId::NotificationsByOrder,
        &mut log,
    )?;
    dump_table(
        txn,
        storage::NOTIFICATION_SOURCES,
        TableId::NotificationSources,
        &mut log,
    )?;
    dump_table(
        txn,
        storage::NOTIFICATION_DUE,
        TableId::NotificationDue,
        &mut log,
    )?;
    Ok(log.payload().to_vec())
}

fn dump_table<K: Key + 'static, V: Value + 'static>(
    txn: &redb::ReadTransaction,
    definition: TableDefinition<'_, K, V>,
    id: TableId,
    log: &mut LogBuffer,
) -> Result<(), Error> {
    let table = match txn.open_table(definition) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    for entry in table.iter()? {
        let (key, value) = entry?;
        log.op(
            OP_INSERT,
            id,
            K::as_bytes(&key.value()).as_ref(),
            Some(V::as_bytes(&value.value()).as_ref()),
        );
    }
    Ok(())
}

fn apply<K: Key + Encoded + 'static, V: Value + Encoded + 'static>(
    txn: &WriteTransaction,
    definition: TableDefinition<'_, K, V>,
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<(), Error> {
    let table_name = definition.name();
    if !K::fits(key) || value.is_some_and(|value| !V::fits(value)) {
        return Err(Error::corrupt(
            "log",
            format!("an operation on {table_name} holds bytes its table cannot hold"),
        ));
    }
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

/// Whether bytes are redb's encoding of the type. redb's `from_bytes`
/// panics on a malformed encoding, and a log record whose checksums hold
/// may still carry one (a bug of the build that wrote it, or tampering):
/// [`apply`] checks first, so that replaying it is an error, not a panic.
/// Found by the `wal_read` fuzz target.
trait Encoded: Value {
    fn fits(bytes: &[u8]) -> bool;
}

macro_rules! encoded_as_fixed_width {
    ($($t:ty),+) => {$(
        impl Encoded for $t {
            fn fits(bytes: &[u8]) -> bool {
                bytes.len() == std::mem::size_of::<$t>()
            }
        }
    )+};
}

encoded_as_fixed_width!(u8, u32, u64, u128, ());

impl Encoded for &str {
    fn fits(bytes: &[u8]) -> bool {
        std::str::from_utf8(bytes).is_ok()
    }
}

impl Encoded for &[u8] {
    fn fits(_bytes: &[u8]) -> bool {
        true
    }
}

/// redb's pair: a variable-width first element is preceded by its length
/// (one byte below 254; 254 and a u16; 255 and a u32, little-endian), a
/// fixed-width one is not; the second element is the rest.
impl<A: Encoded, B: Encoded> Encoded for (A, B) {
    fn fits(bytes: &[u8]) -> bool {
        let (first, rest) = match A::fixed_width() {
            Some(width) if bytes.len() >= width => bytes.split_at(width),
            Some(_) => return false,
            None => {
                let (len, read) = match bytes.first() {
                    Some(&len @ 0..=253) => (usize::from(len), 1),
                    Some(254) => match bytes.get(1..3) {
                        Some(len) => (usize::from(u16::from_le_bytes([len[0], len[1]])), 3),
                        None => return false,
                    },
                    Some(_) => match bytes.get(1..5) {
                        Some(len) => (u32_at(len, 0) as usize, 5),
                        None => return false,
                    },
                    None => return false,
                };
                match bytes[read..].split_at_checked(len) {
                    Some(split) => split,
                    None => return false,
                }
            }
        };
        A::fits(first) && B::fits(rest)
    }
}

/// A batch on its way to the disk: its record (if it changed anything) and
/// the answers to send once the record is synced.
pub(crate) struct LogItem {
    pub(crate) record: Option<Vec<u8>>,
    pub(crate) answers: Vec<crate::writer::Answer>,
    pub(crate) commands: usize,
    /// The event log's head after this batch.
    pub(crate) head: u64,
    /// The number of the last log record as of this batch.
    pub(crate) lsn: u64,
    /// Synchronous replication: once durable, the batch waits at the gate
    /// for its records to be replicated before it is published and answered.
    pub(crate) gated: bool,
    /// What reads may see once this batch is durable.
    pub(crate) snapshot: Option<Snapshot>,
    /// `Some(lsn)`: this batch was committed to redb with a sync, which
    /// made every record up to `lsn` durable there; reuse the segment.
    pub(crate) checkpoint: Option<u64>,
    /// `Some(error)`: redb failed, so the batches held back since a failure
    /// of the log will not be made durable by a checkpoint: answer them
    /// with this error. Carries no record and no answers of its own.
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

/// The segment being written.
struct Segment {
    name: String,
    file: Box<dyn LogFile>,
    capacity: u64,
    /// Where the next record goes.
    offset: u64,
}

/// The log thread: owns the segment files.
struct LogWriter {
    /// Answers of batches applied while the log was failed: they become
    /// durable with the next checkpoint, and are answered then.
    held: Vec<crate::writer::Answer>,
    storage: Arc<dyn LogStorage>,
    segment_bytes: u64,
    current: Option<Segment>,
    /// Segments filled before the current one, since the last checkpoint.
    older: Vec<String>,
    /// Records were written since the last checkpoint.
    dirty: bool,
    buffer: Vec<u8>,
    batch_max: usize,
    head: Arc<watch::Sender<u64>>,
    lsn_head: Arc<watch::Sender<u64>>,
    view: Arc<View>,
    gate: Option<Sender<crate::replication::GatedBatch>>,
    failed: Arc<AtomicBool>,
    observer: Option<Arc<dyn WriterObserver>>,
}

/// What the log thread shares with the engine.
pub(crate) struct LogShared {
    pub(crate) head: Arc<watch::Sender<u64>>,
    /// The last durable log record's number.
    pub(crate) lsn_head: Arc<watch::Sender<u64>>,
    /// Synchronous replication's gate.
    pub(crate) gate: Option<Sender<crate::replication::GatedBatch>>,
    pub(crate) view: Arc<View>,
    pub(crate) failed: Arc<AtomicBool>,
    pub(crate) observer: Option<Arc<dyn WriterObserver>>,
}

/// Starts the log thread with a new segment whose first record is `next_lsn`.
pub(crate) fn start(
    storage: Arc<dyn LogStorage>,
    segment_bytes: u64,
    next_lsn: u64,
    batch_max: usize,
    shared: LogShared,
) -> Result<LogLink, Error> {
    let current = create_segment(&*storage, next_lsn, segment_bytes)?;
    let (items, receiver) = crossbeam_channel::bounded(IN_FLIGHT_MAX);
    shared.failed.store(false, Ordering::SeqCst);
    let writer = LogWriter {
        held: Vec::new(),
        storage,
        segment_bytes,
        current: Some(current),
        older: Vec::new(),
        dirty: false,
        buffer: Vec::with_capacity(1 << 20),
        batch_max,
        head: shared.head,
        lsn_head: shared.lsn_head,
        view: shared.view,
        gate: shared.gate,
        failed: shared.failed.clone(),
        observer: shared.observer,
    };
    let handle = std::thread::Builder::new()
        .name("mercato-log".to_owned())
        .spawn(move || writer.run(receiver))?;
    Ok(LogLink {
        items,
        failed: shared.failed,
        handle,
    })
}

/// Creates a segment at its full length with its header, synced, under a
/// temporary name, then renames it and makes the name durable: a segment
/// under its final name is always whole, whatever a power cut keeps of the
/// writes before its sync. Recovery removes temporary leftovers.
fn create_segment(
    storage: &dyn LogStorage,
    first_lsn: u64,
    capacity: u64,
) -> Result<Segment, Error> {
    let name = segment_name(first_lsn);
    let temporary = format!("{name}{TEMPORARY_SUFFIX}");
    let mut file = storage.create(&temporary)?;
    file.set_len(capacity)?;
    file.write_at(0, &segment_header(capacity))?;
    file.sync_data()?;
    storage.rename(&temporary, &name)?;
    storage.sync_names()?;
    Ok(Segment {
        name,
        file,
        capacity,
        offset: SEGMENT_HEADER_LEN as u64,
    })
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
        if !self.dirty && !self.failed.load(Ordering::SeqCst) {
            // A clean stop: the last checkpoint holds everything, so the
            // next open has no log to read.
            if let Err(error) = self.remove_segments() {
                tracing::warn!(%error, "cannot remove the log's segments at shutdown");
            }
        }
        tracing::debug!("log thread stopped");
    }

    fn remove_segments(&mut self) -> Result<(), Error> {
        let current = self.current.take().map(|segment| segment.name);
        for name in self.older.drain(..).chain(current) {
            self.storage.remove(&name)?;
        }
        self.storage.sync_names()?;
        Ok(())
    }

    /// Makes a group of batches durable (or learns they are) and answers them.
    ///
    /// An abort ends a group but changes nothing about the batches before
    /// it: they are committed to redb and own their record numbers, so their
    /// records are written and synced like any others (dropping them would
    /// leave a gap that recovery takes for damage). The abort only fails
    /// the batches held since a failure of the log, which no checkpoint
    /// will make durable now.
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
        let last = group.last_mut().expect("a group has a batch");
        let head = last.head;
        let lsn = last.lsn;
        let snapshot = last.snapshot.take();
        let outcome = match last.checkpoint {
            // redb synced everything up to here: nothing to write.
            Some(lsn) => {
                self.rotate(lsn);
                Ok(())
            }
            None => self.append(group, commands),
        };
        match outcome {
            Ok(()) if group.iter().any(|item| item.gated) && self.gate.is_some() => {
                self.hand_to_gate(group, snapshot, head, lsn);
            }
            Ok(()) => {
                if let Some(snapshot) = snapshot {
                    self.view.publish(snapshot);
                }
                self.head.send_replace(head);
                self.lsn_head.send_replace(lsn);
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
            // checkpoint, which makes them durable. Until then they wait,
            // and reads do not see them.
            Err(()) => {
                for item in group.drain(..) {
                    self.held.extend(item.answers);
                }
            }
        }
    }

    /// Synchronous replication: the group is durable here; its records go
    /// to the publisher, and its answers and snapshot wait for their
    /// replication (released in order by the publisher).
    fn hand_to_gate(
        &mut self,
        group: &mut Vec<LogItem>,
        snapshot: Option<Snapshot>,
        head: u64,
        lsn: u64,
    ) {
        let mut records = Vec::new();
        let mut answers: Vec<crate::writer::Answer> = self.held.drain(..).collect();
        for item in group.drain(..) {
            if let Some(record) = &item.record {
                let payload_len = u32_at(record, 4) as usize;
                records.push(crate::replication::ReplicaRecord {
                    lsn: u64_at(record, 8),
                    payload: record[RECORD_HEADER_LEN..RECORD_HEADER_LEN + payload_len].to_vec(),
                });
            }
            answers.extend(item.answers);
        }
        let view = self.view.clone();
        let head_sender = self.head.clone();
        let lsn_head = self.lsn_head.clone();
        let release: crate::replication::Release = Box::new(move |error: Option<&Error>| {
            if error.is_none() {
                if let Some(snapshot) = snapshot {
                    view.publish(snapshot);
                }
                head_sender.send_replace(head);
                lsn_head.send_replace(lsn);
            }
            for answer in answers {
                answer(error);
            }
        });
        let batch = crate::replication::GatedBatch::new(records, release);
        let gate = self.gate.as_ref().expect("checked by the caller");
        if let Err(unsent) = gate.send(batch) {
            // The publisher is gone (shutting down): the batch is answered
            // with ShuttingDown by its drop, outcome unknown to the caller.
            drop(unsent);
        }
    }

    /// Writes the group's records as one write and syncs. `Err` when the
    /// log is failed: it then stays failed until a checkpoint.
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
        let mut write_first = None;
        for item in group {
            if let Some(record) = &item.record {
                let at = self.buffer.len();
                self.buffer.extend_from_slice(record);
                let lsn = u64_at(record, 8);
                let first = *write_first.get_or_insert(lsn);
                seal_record(&mut self.buffer, at, first);
            }
        }
        let Some(write_first) = write_first else {
            return Ok(());
        };
        let started = Instant::now();
        let result = self.write(write_first);
        match result {
            Ok(()) => {
                self.dirty = true;
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
                    "log write failed; answers wait for the next checkpoint"
                );
                self.failed.store(true, Ordering::SeqCst);
                Err(())
            }
        }
    }

    /// Writes the buffer into the current segment, or into a new one when
    /// it does not fit, and syncs.
    fn write(&mut self, write_first: u64) -> Result<(), Error> {
        let len = self.buffer.len() as u64;
        let fits = self
            .current
            .as_ref()
            .is_some_and(|segment| segment.offset + len <= segment.capacity);
        if !fits {
            let capacity = self
                .segment_bytes
                .max((SEGMENT_HEADER_LEN as u64 + len).next_multiple_of(1 << 16));
            let segment = create_segment(&*self.storage, write_first, capacity)?;
            if let Some(old) = self.current.replace(segment) {
                self.older.push(old.name);
            }
        }
        let segment = self.current.as_mut().expect("a segment was made above");
        segment.file.write_at(segment.offset, &self.buffer)?;
        segment.file.sync_data()?;
        segment.offset += len;
        Ok(())
    }

    /// Starts the log afresh after a checkpoint at `lsn`: redb now holds
    /// every record so far, so the current segment is reused from its
    /// start under the next record's name (overwriting a file in place lets
    /// a sync skip the file system's journal, which an append needs for the
    /// new length) and older segments are removed. The records left behind
    /// are numbered at most `lsn`, which redb holds, so recovery skips
    /// them. After a failed write the segment may end in a partial record:
    /// a fresh one is made instead. A failure leaves the log failed: the
    /// writer then checkpoints every batch until a rotation succeeds.
    fn rotate(&mut self, lsn: u64) {
        let result = self.rotate_inner(lsn);
        match result {
            Ok(()) => {
                self.dirty = false;
                if self.failed.swap(false, Ordering::SeqCst) {
                    tracing::info!("the log recovered after a checkpoint");
                }
            }
            Err(error) => {
                tracing::error!(%error, "cannot start the log afresh after a checkpoint");
                self.failed.store(true, Ordering::SeqCst);
            }
        }
    }

    fn rotate_inner(&mut self, lsn: u64) -> Result<(), Error> {
        let name = segment_name(lsn + 1);
        let reusable = !self.failed.load(Ordering::SeqCst) && self.current.is_some();
        if reusable {
            let segment = self.current.as_mut().expect("checked above");
            if segment.name != name {
                self.storage.rename(&segment.name, &name)?;
                segment.name = name;
            }
            segment.offset = SEGMENT_HEADER_LEN as u64;
        } else {
            let old = self.current.take();
            self.older.extend(old.map(|segment| segment.name));
            self.older.retain(|old| *old != name);
            self.current = Some(create_segment(&*self.storage, lsn + 1, self.segment_bytes)?);
        }
        for old in std::mem::take(&mut self.older) {
            self.storage.remove(&old)?;
        }
        self.storage.sync_names()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
