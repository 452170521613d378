//! Replication, the engine's side: transport-agnostic hooks that let a
//! publisher ship a primary's write-ahead log records and let a follower
//! apply them. The NATS JetStream transport is in [`nats`] (feature `nats`).
//!
//! A log record is the physical changes of one batch (every key and value
//! it put or removed, see `wal.rs`), numbered without gaps. A primary
//! ([`ReplicationRole::Primary`](crate::ReplicationRole)) keeps each record
//! in `replication_log`, in the transaction of the batch itself (and again
//! when the log is replayed after a crash), until its publisher has shipped
//! it and trims it. A follower applies each record as a batch of its own
//! under the same number, so its own log, its store and its event log are
//! the primary's, record for record, and every read answers as the primary
//! did at that record. Records are idempotent when applied in order from
//! any earlier point, which is what a follower's restart does.

#[cfg(feature = "nats")]
pub mod nats;
pub(crate) mod writes;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Error;

/// The most records trimmed from `replication_log` by one command.
pub(crate) const TRIM_RECORDS_MAX: usize = 16_384;

/// One write-ahead log record, as shipped from a primary to its followers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaRecord {
    /// The record's number: consecutive, from 1.
    pub lsn: u64,
    /// The record's operations, opaque outside the engine.
    pub payload: Vec<u8>,
}

/// A consistent copy of a store at one log record, from which a follower
/// starts ([`Engine::bootstrap_follower`](crate::Engine::bootstrap_follower)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaSnapshot {
    /// The last log record the copy holds.
    pub lsn: u64,
    /// The store's currency (a follower must be opened with the same).
    pub currency: String,
    /// Every row of the store, as one record's operations.
    pub payload: Vec<u8>,
}

impl ReplicaSnapshot {
    const MAGIC: &'static [u8; 8] = b"MRCTSNAP";
    const VERSION: u32 = 1;

    /// The snapshot as bytes (for an object store):
    /// `"MRCTSNAP" | version u32 | lsn u64 | currency (3 bytes) | crc32 u32 | payload`.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(27 + self.payload.len());
        bytes.extend_from_slice(Self::MAGIC);
        bytes.extend_from_slice(&Self::VERSION.to_le_bytes());
        bytes.extend_from_slice(&self.lsn.to_le_bytes());
        let currency = self.currency.as_bytes();
        assert_eq!(currency.len(), 3, "a currency code is three letters");
        bytes.extend_from_slice(currency);
        bytes.extend_from_slice(&crc32fast::hash(&self.payload).to_le_bytes());
        bytes.extend_from_slice(&self.payload);
        bytes
    }

    /// Reads [`ReplicaSnapshot::encode`]'s bytes back, checking them.
    pub fn decode(bytes: &[u8]) -> Result<ReplicaSnapshot, Error> {
        let bad = |why: &str| Error::invalid("snapshot", why.to_owned());
        if bytes.len() < 27 || &bytes[..8] != Self::MAGIC {
            return Err(bad("not a Mercato snapshot"));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != Self::VERSION {
            return Err(bad(&format!(
                "snapshot format {version}; this build reads {}",
                Self::VERSION
            )));
        }
        let lsn = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
        let currency = std::str::from_utf8(&bytes[20..23])
            .map_err(|_| bad("currency"))?
            .to_owned();
        let crc = u32::from_le_bytes(bytes[23..27].try_into().expect("4 bytes"));
        let payload = bytes[27..].to_vec();
        if crc32fast::hash(&payload) != crc {
            return Err(bad("checksum mismatch: the snapshot is damaged"));
        }
        Ok(ReplicaSnapshot {
            lsn,
            currency,
            payload,
        })
    }
}

/// The most synced batches waiting for their replication before the log
/// thread waits too (and so, the writer behind it).
pub(crate) const GATE_BATCHES_MAX: usize = 1_024;

/// Answers (and the reads' view) held back, with synchronous replication,
/// until a batch's records are replicated.
pub(crate) type Release = Box<dyn FnOnce(Option<&Error>) + Send>;

/// A synced batch (or several) whose answers wait for replication
/// ([`Engine::take_replication_gate`](crate::Engine::take_replication_gate)).
pub struct GatedBatch {
    /// Its log records, in order (possibly none: the answers still wait
    /// for every batch before them).
    pub records: Vec<ReplicaRecord>,
    /// In a mutex only to make the batch `Sync` (a publisher holds
    /// references to it across awaits); taken once.
    release: Mutex<Option<Release>>,
}

impl GatedBatch {
    pub(crate) fn new(records: Vec<ReplicaRecord>, release: Release) -> GatedBatch {
        GatedBatch {
            records,
            release: Mutex::new(Some(release)),
        }
    }

    /// The records are replicated: publish the batch to reads and answer
    /// its callers. Call in the order the batches came.
    pub fn release(self) {
        if let Some(release) = self.take() {
            release(None);
        }
    }

    fn take(&self) -> Option<Release> {
        self.release
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take()
    }

    /// Replication failed for good (this primary was deposed): answer the
    /// callers with `error`. The batch is in this store, not replicated.
    pub fn fail(self, error: &Error) {
        if let Some(release) = self.take() {
            release(Some(error));
        }
    }
}

impl Drop for GatedBatch {
    fn drop(&mut self) {
        if let Some(release) = self.take() {
            release(Some(&Error::ShuttingDown));
        }
    }
}

impl std::fmt::Debug for GatedBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatedBatch")
            .field("records", &self.records.len())
            .finish_non_exhaustive()
    }
}

/// Where a primary with synchronous replication hands its synced batches
/// to the publisher, in order.
pub struct ReplicationGate {
    pub(crate) receiver: crossbeam_channel::Receiver<GatedBatch>,
}

impl ReplicationGate {
    /// The next batch, waiting at most `timeout`; `None` on timeout or when
    /// the engine has stopped.
    pub fn next(&self, timeout: std::time::Duration) -> Option<GatedBatch> {
        self.receiver.recv_timeout(timeout).ok()
    }

    /// The next batch if one is waiting.
    pub fn try_next(&self) -> Option<GatedBatch> {
        self.receiver.try_recv().ok()
    }
}

impl std::fmt::Debug for ReplicationGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationGate")
            .field("waiting", &self.receiver.len())
            .finish()
    }
}

/// Whether this engine takes writes, shared by the engine's handles (which
/// refuse writes at once) and the writer (which checks again).
#[derive(Debug, Default)]
pub(crate) struct RoleState {
    follower: AtomicBool,
    /// Why writes are refused after a fencing, once fenced.
    fenced: Mutex<Option<String>>,
    /// Why writes wait, while a primary's publisher has not yet confirmed
    /// that the replicated log is still its own.
    held: Mutex<Option<String>>,
    /// Where the primary is, when known.
    primary: Mutex<Option<String>>,
}

impl RoleState {
    pub(crate) fn new(follower: bool) -> RoleState {
        RoleState {
            follower: AtomicBool::new(follower),
            ..RoleState::default()
        }
    }

    pub(crate) fn is_follower(&self) -> bool {
        self.follower.load(Ordering::SeqCst)
    }

    pub(crate) fn set_follower(&self, follower: bool) {
        self.follower.store(follower, Ordering::SeqCst);
    }

    pub(crate) fn fence(&self, reason: String) {
        *self
            .fenced
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(reason);
    }

    pub(crate) fn fenced(&self) -> Option<String> {
        self.fenced
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    pub(crate) fn set_primary(&self, primary: Option<String>) {
        *self
            .primary
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = primary;
    }

    pub(crate) fn primary(&self) -> Option<String> {
        self.primary
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    pub(crate) fn hold(&self, reason: Option<String>) {
        *self
            .held
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = reason;
    }

    /// The refusal of a write, when this engine takes none.
    pub(crate) fn refusal(&self) -> Option<Error> {
        let held = self
            .held
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone();
        let reason = if let Some(reason) = self.fenced() {
            reason
        } else if let Some(reason) = held {
            reason
        } else if self.is_follower() {
            "this server is a follower; it serves reads only".to_owned()
        } else {
            return None;
        };
        Some(Error::NotPrimary {
            reason,
            primary: self.primary(),
        })
    }
}
