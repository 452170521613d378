//! [`WriterObserver`]: how an embedder sees what the writer does, for
//! metrics, without the engine depending on a metrics library.

use std::time::Duration;

/// What one committed batch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchReport {
    /// Commands applied in the batch (0 for a batch that only expired
    /// reservations or synced).
    pub commands: usize,
    /// Time spent in redb's commit, including the sync when there was one.
    /// With immediate durability most commits do not sync: the batch's
    /// changes are synced in the write-ahead log instead (see
    /// [`WriterObserver::log_synced`]).
    pub commit_latency: Duration,
    /// True when the commit synced to disk.
    pub synced: bool,
    /// Reservations created.
    pub reservations_created: u64,
    /// Reservations refused for insufficient stock.
    pub reservations_rejected: u64,
    /// Reservations committed.
    pub reservations_committed: u64,
    /// Reservations released by a caller.
    pub reservations_released: u64,
    /// Reservations expired by the engine.
    pub reservations_expired: u64,
}

/// What one sync of the write-ahead log did (immediate durability).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogSyncReport {
    /// Batches made durable by the sync.
    pub batches: usize,
    /// Commands in those batches.
    pub commands: usize,
    /// Bytes appended to the log.
    pub bytes: usize,
    /// Time spent writing and syncing.
    pub latency: Duration,
}

/// Told about every batch the writer commits. Called on the writer thread,
/// so it must be quick (bump counters, record a histogram).
pub trait WriterObserver: Send + Sync + 'static {
    /// A batch was committed and its callers are about to be answered.
    fn batch_committed(&self, report: &BatchReport);

    /// The write-ahead log was synced and the batches it covers are about
    /// to be answered. Called on the log thread. Does nothing by default.
    fn log_synced(&self, report: &LogSyncReport) {
        let _ = report;
    }
}
