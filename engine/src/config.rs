//! [`EngineConfig`]: everything an embedder can set, with documented defaults.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::log_storage::{LogDirectory, LogStorage};
use crate::observer::WriterObserver;

/// When an acknowledged write reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Every answer is sent only after its batch is synced to disk. A write
    /// whose success was reported survives any crash. The default.
    ///
    /// The sync is of a write-ahead log next to the store, made by a thread
    /// of its own while the writer applies the next batch; the store itself
    /// is synced at each checkpoint (see
    /// [`EngineConfig::checkpoint_interval`]).
    Immediate,
    /// Batches are committed without a sync, and the disk is synced at most
    /// every `sync_interval` (and whenever the writer goes idle). A crash may
    /// lose the writes of that last window, never more, and never leaves the
    /// store inconsistent. For those who trade that window for throughput.
    Periodic {
        /// The longest time a committed batch waits for its sync.
        sync_interval: Duration,
    },
}

impl Durability {
    /// `Periodic` with the default interval of 100 ms.
    pub fn periodic() -> Durability {
        Durability::Periodic {
            sync_interval: Duration::from_millis(100),
        }
    }
}

/// The engine's part in replication (see `replication` in ARCHITECTURE.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplicationRole {
    /// No replication. The default.
    #[default]
    Standalone,
    /// Takes writes and keeps every log record (table `replication_log`)
    /// until a publisher has shipped it and trimmed it
    /// ([`Engine::replication_records_after`](crate::Engine::replication_records_after),
    /// [`Engine::trim_replication_log`](crate::Engine::trim_replication_log)).
    /// Needs [`Durability::Immediate`].
    Primary,
    /// Takes no writes of its own: it applies a primary's log records
    /// ([`Engine::apply_replicated`](crate::Engine::apply_replicated)) and
    /// serves reads; writes answer [`Error::NotPrimary`](crate::Error::NotPrimary)
    /// until [`Engine::promote`](crate::Engine::promote). Needs
    /// [`Durability::Immediate`].
    Follower,
}

/// How to open an [`Engine`](crate::Engine). A plain struct: start from
/// [`EngineConfig::new`] and change the fields you care about.
#[derive(Clone)]
pub struct EngineConfig {
    /// The directory holding the store (`mercato.redb`). Created if missing.
    pub data_dir: PathBuf,
    /// When acknowledged writes reach the disk. Default: [`Durability::Immediate`].
    pub durability: Durability,
    /// The store's ISO 4217 currency code. Fixed at the store's first open;
    /// reopening with another currency is refused. Default: `USD`.
    pub currency: String,
    /// The most commands waiting for the writer. A submit to a full queue is
    /// answered at once with [`Error::Overloaded`](crate::Error::Overloaded).
    /// Default: 65,536.
    pub queue_max: usize,
    /// The most commands applied in one write transaction, and with
    /// immediate durability the most made durable by one sync of the log.
    /// Default: 8,192.
    pub batch_max: usize,
    /// The time-to-live of a reservation that does not name one. Default: 900 s.
    pub reservation_ttl_default: Duration,
    /// The longest time-to-live a reservation may ask for. Default: 86,400 s.
    pub reservation_ttl_max: Duration,
    /// How often an idle writer wakes to expire reservations and, with
    /// periodic durability, to sync. Expiry happens within this interval
    /// after a deadline passes. Default: 100 ms.
    pub tick_interval: Duration,
    /// The most reservations expired in one batch; the rest follow in the
    /// next batches. Default: 4,096.
    pub expiries_per_batch_max: usize,
    /// With immediate durability, how often the store is synced so that the
    /// write-ahead log can start afresh (also when it reaches 64 MiB). A
    /// longer interval means fewer store syncs and a longer replay after a
    /// crash. Default: 1 s.
    pub checkpoint_interval: Duration,
    /// Bytes of page cache for redb. Default: 256 MiB.
    pub cache_size_bytes: usize,
    /// Where time comes from. Default: [`SystemClock`].
    pub clock: Arc<dyn Clock>,
    /// Told about every committed batch (for metrics). Default: none.
    pub observer: Option<Arc<dyn WriterObserver>>,
    /// Where the store's bytes live. Default (`None`): the file
    /// `data_dir/mercato.redb`. A backend keeps them elsewhere: redb's
    /// [`InMemoryBackend`](crate::InMemoryBackend) for throwaway stores,
    /// or one of your own (tests inject faults this way). Give a
    /// throwaway store a throwaway log too (see `log_storage`), or a later
    /// open replays a log the new store cannot continue and fails.
    pub storage_backend: Option<Arc<dyn redb::StorageBackend>>,
    /// Where the write-ahead log of immediate durability keeps its segment
    /// files. Default (`None`): `data_dir` itself.
    pub log_storage: Option<Arc<dyn LogStorage>>,
    /// The size each log segment is created with (the file is preallocated
    /// to it, so that a segment cut short is told from one not yet full). A
    /// batch too big for the space left starts a new segment of its own
    /// size. Default: 72 MiB, a checkpoint's worth of log (64 MiB) and room
    /// for the batches in flight when it is due. At least 64 KiB.
    pub log_segment_bytes: u64,
    /// How long a cart may go unchanged before the writer removes it. A
    /// cart is touched by every change to it (reads do not count). Between
    /// 1 s and [`CART_TTL_MAX`]. Default: 30 days.
    pub cart_ttl: Duration,
    /// How long events are kept: an event older than this that every
    /// consumer with a saved position has passed is removed (the newest
    /// event is always kept). `None` keeps every event. Default: 30 days.
    pub event_retention: Option<Duration>,
    /// How long a finished reservation (committed, released, expired) is
    /// kept after it finished, unless its order can still change (a
    /// confirmed order may be cancelled). `None` keeps them all. Default:
    /// 30 days.
    pub reservation_retention: Option<Duration>,
    /// The most events removed, and the most reservations examined, in one
    /// batch by retention, which runs at most once a second (ten times a
    /// second while it is behind); the rest follow. Default: 1,024.
    pub compactions_per_batch_max: usize,
    /// The engine's part in replication. Default: [`ReplicationRole::Standalone`].
    pub replication: ReplicationRole,
    /// Synchronous replication: as a primary (also once promoted), a
    /// batch's answers, and what reads see of it, wait until a publisher
    /// has replicated its records
    /// ([`Engine::take_replication_gate`](crate::Engine::take_replication_gate)).
    /// Default: false.
    pub replication_sync: bool,
}

/// The longest [`EngineConfig::cart_ttl`]: ten years.
pub const CART_TTL_MAX: Duration = Duration::from_secs(3_650 * 86_400);

/// The smallest [`EngineConfig::log_segment_bytes`].
pub const LOG_SEGMENT_BYTES_MIN: u64 = 64 << 10;

impl EngineConfig {
    /// The defaults, storing data in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> EngineConfig {
        EngineConfig {
            data_dir: data_dir.into(),
            durability: Durability::Immediate,
            currency: "USD".to_owned(),
            queue_max: 65_536,
            batch_max: 8_192,
            reservation_ttl_default: Duration::from_secs(900),
            reservation_ttl_max: Duration::from_secs(86_400),
            tick_interval: Duration::from_millis(100),
            expiries_per_batch_max: 4_096,
            checkpoint_interval: Duration::from_secs(1),
            cache_size_bytes: 256 << 20,
            clock: Arc::new(SystemClock),
            observer: None,
            storage_backend: None,
            log_storage: None,
            event_retention: Some(Duration::from_secs(30 * 86_400)),
            reservation_retention: Some(Duration::from_secs(30 * 86_400)),
            compactions_per_batch_max: 1_024,
            log_segment_bytes: 72 << 20,
            cart_ttl: Duration::from_secs(30 * 86_400),
            replication: ReplicationRole::Standalone,
            replication_sync: false,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), crate::Error> {
        let invalid = |field: &str, message: &str| {
            Err(crate::Error::invalid(format!("config.{field}"), message))
        };
        if !is_currency_code(&self.currency) {
            return invalid("currency", "must be three upper-case letters (ISO 4217)");
        }
        if self.replication != ReplicationRole::Standalone
            && self.durability != Durability::Immediate
        {
            return invalid(
                "replication",
                "replication ships the write-ahead log, which needs immediate durability",
            );
        }
        if self.replication_sync && self.replication == ReplicationRole::Standalone {
            return invalid(
                "replication_sync",
                "synchronous replication needs a primary or a follower",
            );
        }
        if self.queue_max == 0 {
            return invalid("queue_max", "must be at least 1");
        }
        if self.batch_max == 0 || self.batch_max > self.queue_max {
            return invalid("batch_max", "must be between 1 and queue_max");
        }
        if self.reservation_ttl_default.is_zero()
            || self.reservation_ttl_default > self.reservation_ttl_max
        {
            return invalid(
                "reservation_ttl_default",
                "must be positive and at most reservation_ttl_max",
            );
        }
        if self.tick_interval.is_zero() || self.tick_interval > Duration::from_secs(1) {
            return invalid("tick_interval", "must be between 1 ms and 1 s");
        }
        if self.expiries_per_batch_max == 0 {
            return invalid("expiries_per_batch_max", "must be at least 1");
        }
        if self.compactions_per_batch_max == 0 || self.compactions_per_batch_max > 65_536 {
            return invalid("compactions_per_batch_max", "must be between 1 and 65536");
        }
        if self
            .event_retention
            .is_some_and(|age| age < Duration::from_secs(60))
            || self
                .reservation_retention
                .is_some_and(|age| age < Duration::from_secs(60))
        {
            return invalid(
                "event_retention",
                "event_retention and reservation_retention must be at least 60 s (or None)",
            );
        }
        if self.checkpoint_interval.is_zero() || self.checkpoint_interval > Duration::from_secs(60)
        {
            return invalid("checkpoint_interval", "must be between 1 ms and 60 s");
        }
        if self.log_segment_bytes < LOG_SEGMENT_BYTES_MIN || self.log_segment_bytes > 1 << 40 {
            return invalid("log_segment_bytes", "must be between 64 KiB and 1 TiB");
        }
        if let Durability::Periodic { sync_interval } = self.durability
            && (sync_interval.is_zero() || sync_interval > Duration::from_secs(60))
        {
            return invalid("durability", "sync_interval must be between 1 ms and 60 s");
        }
        if self.cart_ttl < Duration::from_secs(1) || self.cart_ttl > CART_TTL_MAX {
            return invalid("cart_ttl", "must be between 1 s and 3650 days");
        }
        Ok(())
    }
}

impl fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineConfig")
            .field("data_dir", &self.data_dir)
            .field("durability", &self.durability)
            .field("currency", &self.currency)
            .field("queue_max", &self.queue_max)
            .field("batch_max", &self.batch_max)
            .field("reservation_ttl_default", &self.reservation_ttl_default)
            .field("reservation_ttl_max", &self.reservation_ttl_max)
            .field("tick_interval", &self.tick_interval)
            .field("expiries_per_batch_max", &self.expiries_per_batch_max)
            .field("checkpoint_interval", &self.checkpoint_interval)
            .field("cache_size_bytes", &self.cache_size_bytes)
            .field("log_storage", &self.log_storage)
            .field("log_segment_bytes", &self.log_segment_bytes)
            .field("cart_ttl", &self.cart_ttl)
            .field("replication", &self.replication)
            .field("replication_sync", &self.replication_sync)
            .finish_non_exhaustive()
    }
}

impl EngineConfig {
    /// The log's storage: `log_storage`, or the data directory.
    pub(crate) fn log(&self) -> Arc<dyn LogStorage> {
        match &self.log_storage {
            Some(storage) => storage.clone(),
            None => Arc::new(LogDirectory::new(&self.data_dir)),
        }
    }
}

pub(crate) fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|byte| byte.is_ascii_uppercase())
}
