//! The writer: one named thread that owns every redb write.
//!
//! Commands arrive on a bounded channel. The writer takes everything queued
//! (up to `batch_max`), applies the batch in one write transaction, commits
//! once, and only then answers each caller (group commit). Decisions about
//! stock are made by the in-memory [`Ledger`]; business rejections are
//! answers, and only a storage fault fails a batch. After a failed batch the
//! writer rebuilds its in-memory state from what is on disk.

use std::collections::HashSet;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use redb::{Database, ReadableDatabase, ReadableTable, Table, WriteTransaction};
use tokio::sync::{oneshot, watch};

use crate::catalog::{IMPORT_PRODUCTS_MAX, NewProduct, Product, ProductFields, ProductPatch};
use crate::clock::IdSource;
use crate::config::{Durability, EngineConfig};
use crate::error::Error;
use crate::event::Event;
use crate::ids::{OrderId, ProductId, ReservationId, Timestamp};
use crate::inventory::{
    Crossing, Ledger, ON_HAND_MAX, Reservation, ReservationStatus, ReserveRequest, Reserved, Stock,
    StockEntry, same_lines, validate_reserve,
};
use crate::observer::BatchReport;
use crate::storage::{self, StoredProduct};
use crate::store::{self, Opened};
use crate::view::View;
use crate::wal::{self, LogBuffer, LogItem, LogLink, LogShared, Logged, TableId};

/// The longest consumer name, in bytes.
pub(crate) const CONSUMER_NAME_LENGTH_MAX: usize = 64;

/// Where a command's answer goes, with the idempotency record (if any) to
/// save from it in the same write transaction.
pub(crate) struct Reply<T> {
    pub(crate) sender: oneshot::Sender<Result<T, Error>>,
    pub(crate) record: Option<Record<T>>,
}

/// Turns a write's outcome into a record value; `None` saves nothing.
pub(crate) type Render<T> = Box<dyn FnOnce(&Result<T, Error>) -> Option<Vec<u8>> + Send>;

/// An idempotency record to save with a write (see `Write::remember`).
pub(crate) struct Record<T> {
    pub(crate) key: String,
    pub(crate) ttl: std::time::Duration,
    pub(crate) render: Render<T>,
}

/// Everything the writer can be asked to do. Closed: one variant per write.
pub(crate) enum Command {
    CreateProduct {
        product: NewProduct,
        reply: Reply<Product>,
    },
    ImportProducts {
        products: Vec<NewProduct>,
        reply: Reply<Vec<Product>>,
    },
    UpdateProduct {
        product_id: ProductId,
        patch: ProductPatch,
        reply: Reply<Product>,
    },
    ArchiveProduct {
        product_id: ProductId,
        reply: Reply<()>,
    },
    SetStock {
        product_id: ProductId,
        on_hand: u64,
        reply: Reply<Stock>,
    },
    AdjustStock {
        product_id: ProductId,
        delta: i64,
        reply: Reply<Stock>,
    },
    Reserve {
        request: ReserveRequest,
        reply: Reply<Reserved>,
    },
    Commit {
        order_id: OrderId,
        reply: Reply<Reservation>,
    },
    Release {
        order_id: OrderId,
        reply: Reply<Reservation>,
    },
    SavePosition {
        consumer: String,
        seq: u64,
        reply: Reply<()>,
    },
    SaveIdempotency {
        key: String,
        value: Vec<u8>,
        expires_at: Timestamp,
        reply: Reply<()>,
    },
    /// Expire what is due and sync to disk now.
    Flush { reply: Reply<()> },
    /// Nothing: answered once every earlier batch is durable.
    Barrier { reply: Reply<()> },
    /// Finish the batch in hand, sync, answer the rest `ShuttingDown`, exit.
    Shutdown,
}

impl Command {
    /// Answers the command with `error` without applying it.
    pub(crate) fn fail(self, error: Error) {
        fn send<T>(reply: Reply<T>, error: Error) {
            // The caller may have stopped waiting; that is fine.
            let _ = reply.sender.send(Err(error));
        }
        match self {
            Command::CreateProduct { reply, .. } | Command::UpdateProduct { reply, .. } => {
                send(reply, error)
            }
            Command::ImportProducts { reply, .. } => send(reply, error),
            Command::ArchiveProduct { reply, .. } => send(reply, error),
            Command::SetStock { reply, .. } | Command::AdjustStock { reply, .. } => {
                send(reply, error)
            }
            Command::Reserve { reply, .. } => send(reply, error),
            Command::Commit { reply, .. } | Command::Release { reply, .. } => send(reply, error),
            Command::SavePosition { reply, .. }
            | Command::SaveIdempotency { reply, .. }
            | Command::Flush { reply }
            | Command::Barrier { reply } => send(reply, error),
            Command::Shutdown => {}
        }
    }
}

/// An answer held back until the batch's fate is known: called with `None`
/// after a successful commit, with the batch's error after a failed one.
pub(crate) type Answer = Box<dyn FnOnce(Option<&Error>) + Send>;

/// The tables a batch writes, each opened on first use in the write
/// transaction: redb flushes the root of every opened table at commit, so a
/// batch of reservations should not pay for the catalog's tables.
struct Tables<'txn> {
    txn: &'txn WriteTransaction,
    /// The batch's log record, when it is written to the log.
    log: Option<LogBuffer>,
    products: Option<Table<'txn, u64, &'static [u8]>>,
    products_by_category: Option<Table<'txn, (&'static str, u64), ()>>,
    stock: Option<Table<'txn, u64, &'static [u8]>>,
    reservations: Option<Table<'txn, u128, &'static [u8]>>,
    reservation_deadlines: Option<Table<'txn, (u64, u128), ()>>,
    events: Option<Table<'txn, u64, &'static [u8]>>,
    consumer_positions: Option<Table<'txn, &'static str, u64>>,
    idempotency: Option<Table<'txn, &'static str, &'static [u8]>>,
    idempotency_expiry: Option<Table<'txn, (u64, &'static str), ()>>,
}

/// One getter per table: opens it on first use.
macro_rules! table_getters {
    ($($name:ident: $definition:expr => $key:ty, $value:ty, $id:ident;)*) => {
        impl<'txn> Tables<'txn> {
            $(
                fn $name(&mut self) -> Result<Logged<'_, 'txn, $key, $value>, Error> {
                    if self.$name.is_none() {
                        self.$name = Some(self.txn.open_table($definition)?);
                    }
                    Ok(Logged {
                        table: self.$name.as_mut().expect("opened above"),
                        log: self.log.as_mut(),
                        id: TableId::$id,
                    })
                }
            )*
        }
    };
}

table_getters! {
    products: storage::PRODUCTS => u64, &'static [u8], Products;
    products_by_category: storage::PRODUCTS_BY_CATEGORY => (&'static str, u64), (), ProductsByCategory;
    stock: storage::STOCK => u64, &'static [u8], Stock;
    reservations: storage::RESERVATIONS => u128, &'static [u8], Reservations;
    reservation_deadlines: storage::RESERVATION_DEADLINES => (u64, u128), (), ReservationDeadlines;
    events: storage::EVENTS => u64, &'static [u8], Events;
    consumer_positions: storage::CONSUMER_POSITIONS => &'static str, u64, ConsumerPositions;
    idempotency: storage::IDEMPOTENCY => &'static str, &'static [u8], Idempotency;
    idempotency_expiry: storage::IDEMPOTENCY_EXPIRY => (u64, &'static str), (), IdempotencyExpiry;
}

impl<'txn> Tables<'txn> {
    fn new(txn: &'txn WriteTransaction, log: Option<LogBuffer>) -> Tables<'txn> {
        Tables {
            txn,
            log,
            products: None,
            products_by_category: None,
            stock: None,
            reservations: None,
            reservation_deadlines: None,
            events: None,
            consumer_positions: None,
            idempotency: None,
            idempotency_expiry: None,
        }
    }
}

/// What the writer keeps in memory, rebuilt from disk at open and after a
/// failed batch.
pub(crate) struct WriterState {
    ledger: Ledger,
    next_seq: u64,
    next_product_id: u64,
    next_deadline: Option<Timestamp>,
    next_idempotency_expiry: Option<Timestamp>,
}

impl WriterState {
    pub(crate) fn load(db: &Database) -> Result<WriterState, Error> {
        let txn = db.begin_read()?;
        let products = txn.open_table(storage::PRODUCTS)?;
        let stock = txn.open_table(storage::STOCK)?;
        let mut ledger = Ledger::default();
        let mut next_product_id = 1;
        for entry in products.iter()? {
            let (id, bytes) = entry?;
            let product = StoredProduct::decode(id.value(), bytes.value())?;
            let (on_hand, reserved) = match stock.get(id.value())? {
                Some(bytes) => storage::decode_stock(bytes.value())?,
                None => {
                    return Err(Error::corrupt(
                        "stock",
                        format!("product {} has none", id.value()),
                    ));
                }
            };
            ledger.insert(
                product.id,
                StockEntry {
                    on_hand,
                    reserved,
                    low_stock_threshold: product.fields.low_stock_threshold,
                    archived: product.archived,
                },
            );
            next_product_id = product.id.0 + 1;
        }
        ledger.take_dirty();
        let events = txn.open_table(storage::EVENTS)?;
        let deadlines = txn.open_table(storage::RESERVATION_DEADLINES)?;
        let next_deadline = deadlines.first()?.map(|(key, _)| Timestamp(key.value().0));
        let idempotency_expiry = txn.open_table(storage::IDEMPOTENCY_EXPIRY)?;
        let next_idempotency_expiry = idempotency_expiry
            .first()?
            .map(|(key, _)| Timestamp(key.value().0));
        Ok(WriterState {
            ledger,
            next_seq: storage::last_seq(&events)? + 1,
            next_product_id,
            next_deadline,
            next_idempotency_expiry,
        })
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }
}

pub(crate) struct Writer {
    /// The store; `None` only while a reopen after a fault has not succeeded.
    db: Option<Arc<Database>>,
    config: EngineConfig,
    ids: IdSource,
    state: WriterState,
    /// When the oldest commit not yet synced by redb was made: the next
    /// sync (periodic durability) or checkpoint (immediate) is due from it.
    unsynced_since: Option<Instant>,
    /// The state on disk may differ from `state`: reload before the next batch.
    needs_reload: bool,
    /// `Some` after an I/O fault, which redb latches: the store must be
    /// closed and reopened before anything else is written, and until then
    /// every write is refused with this error.
    unavailable: Option<Error>,
    shared: Shared,
    /// When a batch, a reload or a reopen last failed: an idle writer
    /// retries at most once per [`FAILURE_RETRY_INTERVAL`] after that.
    last_failure: Option<Instant>,
    /// The write-ahead log (immediate durability).
    log: Option<LogLink>,
    /// The number of the last log record written.
    last_lsn: u64,
    /// Bytes logged since the last checkpoint.
    log_bytes: usize,
}

/// What the writer shares with the engine's readers.
pub(crate) struct Shared {
    /// The event log's head, published once the events are durable: by the
    /// writer itself with periodic durability, by the log thread otherwise.
    pub(crate) head: Arc<watch::Sender<u64>>,
    /// The snapshot reads see, published with the head.
    pub(crate) view: Arc<View>,
    /// True unless the store is unavailable or the last batch failed.
    pub(crate) healthy: Arc<AtomicBool>,
    /// Set by the log thread while the write-ahead log is failed.
    pub(crate) log_failed: Arc<AtomicBool>,
}

/// How often an idle writer retries after a storage failure.
const FAILURE_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// The least written and synced next to the store before reopening it
/// after a fault: a full disk that still has no room fails here, cheaply,
/// instead of halfway through the reopen, which closes the store that reads
/// use. The probe grows with the log the reopen will replay (see
/// [`reopen_probe_bytes`]).
const REOPEN_PROBE_BYTES_MIN: usize = 1 << 20;
/// How many bytes of store a byte of log may take when replayed: a record's
/// keys and values land in B-tree pages that are copied on write.
const REPLAY_GROWTH_FACTOR: usize = 4;
const REOPEN_PROBE_NAME: &str = "mercato.probe";

impl Writer {
    /// A writer over a freshly opened store; starts the log thread.
    pub(crate) fn start(
        config: EngineConfig,
        opened: Opened,
        shared: Shared,
    ) -> Result<Writer, Error> {
        let last_lsn = opened.recovery.last_lsn;
        let log = start_log(&config, last_lsn, &shared)?;
        Ok(Writer {
            db: Some(opened.db),
            config,
            ids: IdSource::new(),
            state: opened.state,
            unsynced_since: None,
            needs_reload: false,
            unavailable: None,
            shared,
            last_failure: None,
            log,
            last_lsn,
            log_bytes: 0,
        })
    }

    /// The writer thread's body: runs until a `Shutdown` command arrives or
    /// every sender is gone.
    pub(crate) fn run(mut self, commands: Receiver<Command>) {
        let batch_max = self.config.batch_max;
        let mut batch = Vec::with_capacity(batch_max);
        loop {
            match commands.recv_timeout(self.config.tick_interval) {
                Ok(command) => batch.push(command),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while batch.len() < batch_max {
                match commands.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            let shutdown = batch
                .iter()
                .any(|command| matches!(command, Command::Shutdown));
            if !batch.is_empty() || self.idle_work_due() {
                self.apply_batch(std::mem::take(&mut batch), shutdown);
            }
            if shutdown {
                break;
            }
        }
        if self.unsynced_since.is_some() && self.unavailable.is_none() {
            self.apply_batch(Vec::new(), true);
        }
        if let Some(log) = self.log.take() {
            log.close();
        }
        while let Ok(command) = commands.try_recv() {
            command.fail(Error::ShuttingDown);
        }
        tracing::debug!("writer stopped");
    }

    fn retry_due(&self) -> bool {
        self.last_failure
            .is_none_or(|failed| failed.elapsed() >= FAILURE_RETRY_INTERVAL)
    }

    fn idle_work_due(&self) -> bool {
        if self.needs_reload || self.unavailable.is_some() {
            // Nothing else is worth trying until the store is back.
            return self.retry_due();
        }
        let now = self.config.clock.now();
        let expiry_due = self
            .state
            .next_deadline
            .is_some_and(|deadline| deadline <= now);
        let purge_due = self
            .state
            .next_idempotency_expiry
            .is_some_and(|expiry| expiry <= now);
        expiry_due || purge_due || self.sync_due()
    }

    /// Whether the next commit should sync redb: periodic durability's
    /// sync, or immediate durability's checkpoint of the log.
    fn sync_due(&self) -> bool {
        let interval = match self.config.durability {
            Durability::Periodic { sync_interval } => sync_interval,
            Durability::Immediate => {
                if self.log_bytes >= wal::CHECKPOINT_BYTES || self.log_failed() {
                    return true;
                }
                self.config.checkpoint_interval
            }
        };
        self.unsynced_since
            .is_some_and(|since| since.elapsed() >= interval)
    }

    fn log_failed(&self) -> bool {
        self.log
            .as_ref()
            .is_some_and(|log| log.failed.load(Ordering::SeqCst))
    }

    /// Brings the store back after an I/O fault, when due: checks that the
    /// disk takes writes again, closes the store and the log, and opens
    /// them afresh, which replays every synced log record. Until this
    /// succeeds every write is refused. Reads keep using the last published
    /// snapshot until the old store is closed, a moment before the new one
    /// is published.
    fn restore(&mut self) -> Result<(), Error> {
        if let Some(error) = &self.unavailable {
            if !self.retry_due() {
                return Err(error.clone());
            }
            if let Err(error) = self.reopen() {
                self.last_failure = Some(Instant::now());
                tracing::warn!(%error, "the store is still unavailable");
                let error = match error {
                    error @ Error::StorageUnavailable(_) => error,
                    other => Error::StorageUnavailable(other.to_string()),
                };
                self.unavailable = Some(error.clone());
                return Err(error);
            }
        }
        if self.needs_reload {
            let db = self.db.as_ref().expect("an available store is open");
            match WriterState::load(db) {
                Ok(state) => {
                    self.state = state;
                    self.needs_reload = false;
                }
                Err(error) => {
                    self.shared.healthy.store(false, Ordering::SeqCst);
                    self.last_failure = Some(Instant::now());
                    tracing::error!(%error, "writer cannot reload its state; refusing writes");
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    fn reopen(&mut self) -> Result<(), Error> {
        probe_space(&self.config, reopen_probe_bytes(self.log_bytes))?;
        if let Some(log) = self.log.take() {
            log.close();
        }
        if let Some(db) = self.db.take() {
            store::close(db);
        }
        let opened = store::open(&self.config, false)?;
        let last_lsn = opened.recovery.last_lsn;
        let snapshot = opened.snapshot.clone();
        let log = match start_log(&self.config, last_lsn, &self.shared) {
            Ok(log) => log,
            Err(error) => {
                drop(opened.snapshot);
                store::close(opened.db);
                return Err(error);
            }
        };
        self.shared.view.publish(snapshot);
        self.shared.head.send_replace(opened.state.last_seq());
        self.db = Some(opened.db);
        self.state = opened.state;
        self.log = log;
        self.last_lsn = last_lsn;
        self.log_bytes = 0;
        self.unsynced_since = None;
        self.needs_reload = false;
        self.shared.healthy.store(true, Ordering::SeqCst);
        let error = self.unavailable.take().expect("reopened after a fault");
        tracing::info!(
            after = %error,
            replayed_records = opened.recovery.replayed_records,
            "the store is available again"
        );
        Ok(())
    }

    fn apply_batch(&mut self, commands: Vec<Command>, force_sync: bool) {
        if let Err(error) = self.restore() {
            for command in commands {
                command.fail(error.clone());
            }
            return;
        }
        let force_sync = force_sync
            || commands
                .iter()
                .any(|command| matches!(command, Command::Flush { .. }));
        let mut synced = force_sync || self.sync_due();
        let now = self.config.clock.now();
        let mut report = BatchReport {
            commands: commands.len(),
            synced,
            ..BatchReport::default()
        };
        // A batch synced by redb needs no log record.
        let log = (self.log.is_some() && !synced).then(LogBuffer::new);
        let mut answers = Vec::with_capacity(commands.len());
        let written = self.write_batch(commands, now, &mut synced, log, &mut answers, &mut report);
        report.synced = synced;
        match written {
            Ok(log) => self.committed(log, answers, synced, &report),
            Err(error) => self.failed(error, answers),
        }
    }

    /// A batch committed: hands it to the log thread, or (periodic
    /// durability) publishes and answers it at once.
    fn committed(
        &mut self,
        log: Option<LogBuffer>,
        answers: Vec<Answer>,
        synced: bool,
        report: &BatchReport,
    ) {
        if synced {
            self.unsynced_since = None;
        } else {
            self.unsynced_since.get_or_insert_with(Instant::now);
        }
        self.shared.healthy.store(true, Ordering::SeqCst);
        if let Some(observer) = &self.config.observer {
            observer.batch_committed(report);
        }
        let db = self
            .db
            .as_ref()
            .expect("a batch committed to an open store");
        let snapshot = match db.begin_read() {
            Ok(snapshot) => Some(Arc::new(snapshot)),
            Err(error) => {
                tracing::warn!(%error, "no read snapshot of the batch; reads stay on the last one");
                None
            }
        };
        let Some(link) = &self.log else {
            // Publish before answering, so a caller that reads after its
            // answer sees its own write and its events.
            if let Some(snapshot) = snapshot {
                self.shared.view.publish(snapshot);
            }
            self.shared.head.send_replace(self.state.last_seq());
            for answer in answers {
                answer(None);
            }
            return;
        };
        let record = log.and_then(|log| log.finish(self.last_lsn + 1));
        if let Some(record) = &record {
            self.last_lsn += 1;
            self.log_bytes += record.len();
        }
        if synced {
            self.log_bytes = 0;
        }
        let item = LogItem {
            record,
            answers,
            commands: report.commands,
            head: self.state.last_seq(),
            snapshot,
            checkpoint: synced.then_some(self.last_lsn),
            abort: None,
        };
        if let Err(unsent) = link.items.send(item) {
            // The log thread is gone (it panicked). From now on every batch
            // is a checkpoint, answered here.
            link.failed.store(true, Ordering::SeqCst);
            let unsent = unsent.into_inner();
            let error = (!synced)
                .then(|| Error::Storage("the log thread stopped; outcome unknown".to_owned()));
            if synced {
                if let Some(snapshot) = unsent.snapshot {
                    self.shared.view.publish(snapshot);
                }
                self.shared.head.send_replace(self.state.last_seq());
            }
            for answer in unsent.answers {
                answer(error.as_ref());
            }
        }
    }

    /// A batch failed: nothing of it was committed. An I/O fault makes the
    /// store unavailable until it is reopened; anything else only makes
    /// the writer reload its state from disk.
    fn failed(&mut self, error: Error, answers: Vec<Answer>) {
        tracing::error!(%error, commands = answers.len(), "batch failed; nothing applied");
        // Unhealthy before anyone hears of the failure.
        self.shared.healthy.store(false, Ordering::SeqCst);
        self.last_failure = Some(Instant::now());
        for answer in answers {
            answer(Some(&error));
        }
        if !matches!(error, Error::StorageUnavailable(_)) {
            self.needs_reload = true;
            return;
        }
        // redb latched the fault, so no checkpoint will make the batches
        // held back by a failed log durable: they are failed too (their
        // outcome is unknown until the store is reopened, which replays
        // only what the log synced). Batches already sent are settled first.
        if let Some(link) = &self.log {
            let _ = link.items.send(LogItem {
                record: None,
                answers: Vec::new(),
                commands: 0,
                head: self.state.last_seq(),
                snapshot: None,
                checkpoint: None,
                abort: Some(error.clone()),
            });
        }
        self.unavailable = Some(error);
    }

    /// Applies every command in one write transaction and commits, returning
    /// the batch's log record. On error nothing is committed and `answers`
    /// holds an answer for every command.
    fn write_batch(
        &mut self,
        commands: Vec<Command>,
        now: Timestamp,
        synced: &mut bool,
        log: Option<LogBuffer>,
        answers: &mut Vec<Answer>,
        report: &mut BatchReport,
    ) -> Result<Option<LogBuffer>, Error> {
        let mut failure: Option<Error> = None;
        let mut txn = match self.begin(*synced) {
            Ok(txn) => txn,
            Err(error) => {
                for command in commands {
                    command.fail(error.clone());
                }
                return Err(error);
            }
        };
        let mut log = {
            let mut tables = Tables::new(&txn, log);
            if let Err(error) = self.expire_due(&mut tables, now, report) {
                failure = Some(error);
            }
            if failure.is_none()
                && let Err(error) = self.purge_idempotency(&mut tables, now)
            {
                failure = Some(error);
            }
            for command in commands {
                if let Some(error) = &failure {
                    command.fail(error.clone());
                    continue;
                }
                if let Some(answer) = self.apply(&mut tables, command, now, report, &mut failure) {
                    answers.push(answer);
                }
            }
            if failure.is_none()
                && let Err(error) = self.flush_stock(&mut tables)
            {
                failure = Some(error);
            }
            tables.log
        };
        if failure.is_none()
            && self.log.is_some()
            && let Err(error) = self.seal(&mut txn, &mut log, synced)
        {
            failure = Some(error);
        }
        if let Some(error) = failure {
            if let Err(abort_error) = txn.abort() {
                tracing::error!(error = %abort_error, "abort failed");
            }
            return Err(error);
        }
        let started = Instant::now();
        txn.commit()?;
        report.commit_latency = started.elapsed();
        Ok(log)
    }

    /// With the write-ahead log: records in `meta` the last log record whose
    /// changes the transaction holds, and turns a batch too big for one
    /// record into a checkpoint.
    fn seal(
        &self,
        txn: &mut WriteTransaction,
        log: &mut Option<LogBuffer>,
        synced: &mut bool,
    ) -> Result<(), Error> {
        if log
            .as_ref()
            .is_some_and(|log| log.len() > wal::RECORD_BYTES_MAX)
        {
            storage::make_durable(txn)?;
            *log = None;
            *synced = true;
        }
        let lsn = match log {
            Some(log) if log.is_empty() => return Ok(()),
            Some(_) => self.last_lsn + 1,
            None => self.last_lsn,
        };
        wal::save_durable_lsn(txn, lsn)
    }

    fn begin(&self, synced: bool) -> Result<WriteTransaction, Error> {
        let db = self.db.as_ref().expect("an available store is open");
        let mut txn = db.begin_write()?;
        if synced {
            storage::make_durable(&mut txn)?;
        } else {
            txn.set_durability(redb::Durability::None)?;
        }
        Ok(txn)
    }

    fn apply(
        &mut self,
        tables: &mut Tables<'_>,
        command: Command,
        now: Timestamp,
        report: &mut BatchReport,
        failure: &mut Option<Error>,
    ) -> Option<Answer> {
        Some(match command {
            Command::CreateProduct { product, reply } => {
                let result =
                    self.import_products(tables, std::slice::from_ref(&product), true, now);
                let result = result.map(|mut created| created.pop().expect("one product"));
                self.hold(tables, now, reply, result, failure)
            }
            Command::ImportProducts { products, reply } => {
                let result = self.import_products(tables, &products, false, now);
                self.hold(tables, now, reply, result, failure)
            }
            Command::UpdateProduct {
                product_id,
                patch,
                reply,
            } => {
                let result = self.update_product(tables, product_id, &patch, now);
                self.hold(tables, now, reply, result, failure)
            }
            Command::ArchiveProduct { product_id, reply } => {
                let result = self.archive_product(tables, product_id, now);
                self.hold(tables, now, reply, result, failure)
            }
            Command::SetStock {
                product_id,
                on_hand,
                reply,
            } => {
                let result =
                    self.set_on_hand(tables, product_id, i128::from(on_hand), "on_hand", now);
                self.hold(tables, now, reply, result, failure)
            }
            Command::AdjustStock {
                product_id,
                delta,
                reply,
            } => {
                let result = self
                    .state
                    .ledger
                    .live(product_id)
                    .map(|entry| entry.on_hand);
                let result = result.and_then(|on_hand| {
                    let on_hand = i128::from(on_hand) + i128::from(delta);
                    self.set_on_hand(tables, product_id, on_hand, "delta", now)
                });
                self.hold(tables, now, reply, result, failure)
            }
            Command::Reserve { request, reply } => {
                let result = self.reserve(tables, &request, now);
                match &result {
                    Ok(reserved) if reserved.created => report.reservations_created += 1,
                    Err(Error::InsufficientStock { .. }) => report.reservations_rejected += 1,
                    _ => {}
                }
                self.hold(tables, now, reply, result, failure)
            }
            Command::Commit { order_id, reply } => {
                let result = self.finish(tables, order_id, ReservationStatus::Committed, now);
                if matches!(&result, Ok((_, true))) {
                    report.reservations_committed += 1;
                }
                let result = result.map(|(reservation, _)| reservation);
                self.hold(tables, now, reply, result, failure)
            }
            Command::Release { order_id, reply } => {
                let result = self.finish(tables, order_id, ReservationStatus::Released, now);
                if matches!(&result, Ok((_, true))) {
                    report.reservations_released += 1;
                }
                let result = result.map(|(reservation, _)| reservation);
                self.hold(tables, now, reply, result, failure)
            }
            Command::SavePosition {
                consumer,
                seq,
                reply,
            } => {
                let result = self.save_position(tables, &consumer, seq);
                self.hold(tables, now, reply, result, failure)
            }
            Command::SaveIdempotency {
                key,
                value,
                expires_at,
                reply,
            } => {
                let result = self.save_idempotency(tables, &key, &value, expires_at);
                self.hold(tables, now, reply, result, failure)
            }
            Command::Flush { reply } | Command::Barrier { reply } => {
                self.hold(tables, now, reply, Ok(()), failure)
            }
            Command::Shutdown => return None,
        })
    }

    /// Holds a command's answer until the batch's fate is known. A storage
    /// error fails the whole batch. When the command asked for an idempotency
    /// record, it is rendered from the outcome and saved now, in the same
    /// write transaction as the command's own changes, so the two are
    /// durable together or not at all.
    fn hold<T: Send + 'static>(
        &mut self,
        tables: &mut Tables<'_>,
        now: Timestamp,
        reply: Reply<T>,
        result: Result<T, Error>,
        failure: &mut Option<Error>,
    ) -> Answer {
        if let Err(error) = &result
            && error.is_storage_fault()
        {
            failure.get_or_insert_with(|| error.clone());
        }
        let Reply { sender, record } = reply;
        if let Some(record) = record
            && failure.is_none()
            && let Some(value) = (record.render)(&result)
        {
            let expires_at = now.plus(record.ttl);
            match self.save_idempotency(tables, &record.key, &value, expires_at) {
                Ok(()) => {}
                Err(error) if error.is_storage_fault() => {
                    failure.get_or_insert(error);
                }
                Err(error) => tracing::warn!(%error, "idempotency record not saved"),
            }
        }
        Box::new(move |batch_error| {
            let answer = match batch_error {
                Some(error) => Err(error.clone()),
                None => result,
            };
            let _ = sender.send(answer);
        })
    }

    fn emit(&mut self, tables: &mut Tables<'_>, now: Timestamp, event: Event) -> Result<(), Error> {
        let seq = self.state.next_seq;
        tables
            .events()?
            .insert(seq, storage::encode_event(now, &event).as_slice())?;
        self.state.next_seq = seq + 1;
        Ok(())
    }

    fn emit_crossings(
        &mut self,
        tables: &mut Tables<'_>,
        now: Timestamp,
        crossings: Vec<Crossing>,
    ) -> Result<(), Error> {
        for crossing in crossings {
            let event = match crossing {
                Crossing::Low {
                    product_id,
                    available,
                    threshold,
                } => Event::StockLow {
                    product_id,
                    available,
                    threshold,
                },
                Crossing::Depleted { product_id } => Event::StockDepleted { product_id },
            };
            self.emit(tables, now, event)?;
        }
        Ok(())
    }

    fn flush_stock(&mut self, tables: &mut Tables<'_>) -> Result<(), Error> {
        for product_id in self.state.ledger.take_dirty() {
            let entry = self
                .state
                .ledger
                .get(product_id)
                .expect("dirty products are known");
            let record = storage::encode_stock(entry.on_hand, entry.reserved);
            tables.stock()?.insert(product_id.0, record.as_slice())?;
        }
        Ok(())
    }

    fn import_products(
        &mut self,
        tables: &mut Tables<'_>,
        products: &[NewProduct],
        single: bool,
        now: Timestamp,
    ) -> Result<Vec<Product>, Error> {
        let field = |index: usize, name: &str| {
            if single {
                name.to_owned()
            } else {
                format!("products[{index}].{name}")
            }
        };
        if products.is_empty() || products.len() > IMPORT_PRODUCTS_MAX {
            return Err(Error::invalid(
                "products",
                format!("between 1 and {IMPORT_PRODUCTS_MAX} products"),
            ));
        }
        // Decide everything first, so a bad product changes nothing.
        let explicit: HashSet<u64> = products
            .iter()
            .filter_map(|product| product.id.map(|id| id.0))
            .collect();
        let mut next_id = self.state.next_product_id;
        let mut seen = HashSet::with_capacity(products.len());
        let mut planned = Vec::with_capacity(products.len());
        for (index, new) in products.iter().enumerate() {
            let id = match new.id {
                Some(ProductId(0)) => {
                    return Err(Error::invalid(field(index, "id"), "must be at least 1"));
                }
                Some(id) => id,
                None => {
                    while explicit.contains(&next_id)
                        || self.state.ledger.get(ProductId(next_id)).is_some()
                    {
                        next_id += 1;
                    }
                    next_id += 1;
                    ProductId(next_id - 1)
                }
            };
            if self.state.ledger.get(id).is_some() {
                return Err(Error::ProductExists(id));
            }
            if !seen.insert(id) {
                return Err(Error::invalid(
                    field(index, "id"),
                    format!("product {id} appears twice"),
                ));
            }
            let fields = ProductFields::from_new(id, new).map_err(|error| match error {
                Error::InvalidInput {
                    field: name,
                    message,
                } => Error::invalid(field(index, &name), message),
                other => other,
            })?;
            if new.on_hand > ON_HAND_MAX {
                return Err(Error::invalid(
                    field(index, "on_hand"),
                    format!("must be at most {ON_HAND_MAX}"),
                ));
            }
            planned.push((
                StoredProduct {
                    id,
                    fields,
                    created_at: now,
                    updated_at: now,
                    archived: false,
                },
                new.on_hand,
            ));
        }
        let mut created = Vec::with_capacity(planned.len());
        for (product, on_hand) in planned {
            let id = product.id;
            tables
                .products()?
                .insert(id.0, product.encode().as_slice())?;
            if !product.fields.category.is_empty() {
                tables
                    .products_by_category()?
                    .insert((product.fields.category.as_str(), id.0), ())?;
            }
            self.state.ledger.insert(
                id,
                StockEntry {
                    on_hand,
                    reserved: 0,
                    low_stock_threshold: product.fields.low_stock_threshold,
                    archived: false,
                },
            );
            self.state.next_product_id = self.state.next_product_id.max(id.0 + 1);
            self.emit(tables, now, Event::ProductCreated { product_id: id })?;
            if on_hand > 0 {
                self.emit(
                    tables,
                    now,
                    Event::StockUpdated {
                        product_id: id,
                        on_hand,
                        reserved: 0,
                        available: on_hand,
                    },
                )?;
            }
            created.push(product.to_product(&self.config.currency));
        }
        Ok(created)
    }

    fn live_product(
        &self,
        tables: &mut Tables<'_>,
        product_id: ProductId,
    ) -> Result<StoredProduct, Error> {
        match storage::read_product(&*tables.products()?, product_id)? {
            Some(product) if !product.archived => Ok(product),
            _ => Err(Error::ProductNotFound(product_id)),
        }
    }

    fn update_product(
        &mut self,
        tables: &mut Tables<'_>,
        product_id: ProductId,
        patch: &ProductPatch,
        now: Timestamp,
    ) -> Result<Product, Error> {
        let mut product = self.live_product(tables, product_id)?;
        if patch.is_empty() {
            return Ok(product.to_product(&self.config.currency));
        }
        let fields = product.fields.patched(patch)?;
        if fields.category != product.fields.category {
            if !product.fields.category.is_empty() {
                tables
                    .products_by_category()?
                    .remove((product.fields.category.as_str(), product_id.0))?;
            }
            if !fields.category.is_empty() {
                tables
                    .products_by_category()?
                    .insert((fields.category.as_str(), product_id.0), ())?;
            }
        }
        product.fields = fields;
        product.updated_at = now.max(product.created_at);
        tables
            .products()?
            .insert(product_id.0, product.encode().as_slice())?;
        self.state.ledger.set_product_details(
            product_id,
            product.fields.low_stock_threshold,
            false,
        );
        self.emit(tables, now, Event::ProductUpdated { product_id })?;
        Ok(product.to_product(&self.config.currency))
    }

    fn archive_product(
        &mut self,
        tables: &mut Tables<'_>,
        product_id: ProductId,
        now: Timestamp,
    ) -> Result<(), Error> {
        let mut product = self.live_product(tables, product_id)?;
        if !product.fields.category.is_empty() {
            tables
                .products_by_category()?
                .remove((product.fields.category.as_str(), product_id.0))?;
        }
        product.archived = true;
        product.updated_at = now.max(product.created_at);
        tables
            .products()?
            .insert(product_id.0, product.encode().as_slice())?;
        self.state
            .ledger
            .set_product_details(product_id, product.fields.low_stock_threshold, true);
        self.emit(tables, now, Event::ProductArchived { product_id })
    }

    fn set_on_hand(
        &mut self,
        tables: &mut Tables<'_>,
        product_id: ProductId,
        on_hand: i128,
        field: &str,
        now: Timestamp,
    ) -> Result<Stock, Error> {
        if on_hand > i128::from(ON_HAND_MAX) {
            return Err(Error::invalid(
                field,
                format!("on_hand would exceed {ON_HAND_MAX}"),
            ));
        }
        let mut crossings = Vec::new();
        let stock = self
            .state
            .ledger
            .set_on_hand(product_id, on_hand, &mut crossings)?;
        self.emit(
            tables,
            now,
            Event::StockUpdated {
                product_id,
                on_hand: stock.on_hand,
                reserved: stock.reserved,
                available: stock.available(),
            },
        )?;
        self.emit_crossings(tables, now, crossings)?;
        Ok(stock)
    }

    fn reserve(
        &mut self,
        tables: &mut Tables<'_>,
        request: &ReserveRequest,
        now: Timestamp,
    ) -> Result<Reserved, Error> {
        let ttl = validate_reserve(
            request,
            self.config.reservation_ttl_default,
            self.config.reservation_ttl_max,
        )?;
        let order_id = request.order_id;
        if let Some(existing) = storage::read_reservation(&*tables.reservations()?, order_id)? {
            if same_lines(&existing.items, &request.items) {
                return Ok(Reserved {
                    reservation: existing,
                    created: false,
                });
            }
            return Err(Error::Conflict(format!(
                "order {order_id} already holds a reservation with other items"
            )));
        }
        let mut crossings = Vec::new();
        self.state.ledger.reserve(&request.items, &mut crossings)?;
        let reservation = Reservation {
            reservation_id: ReservationId(self.ids.next(now)),
            order_id,
            status: ReservationStatus::Active,
            items: request.items.clone(),
            created_at: now,
            expires_at: now.plus(ttl),
            updated_at: now,
        };
        let key = order_id.as_u128();
        tables
            .reservations()?
            .insert(key, storage::encode_reservation(&reservation).as_slice())?;
        tables
            .reservation_deadlines()?
            .insert((reservation.expires_at.0, key), ())?;
        let deadline = &mut self.state.next_deadline;
        *deadline =
            Some(deadline.map_or(reservation.expires_at, |d| d.min(reservation.expires_at)));
        self.emit(
            tables,
            now,
            Event::InventoryReserved {
                order_id,
                reservation_id: reservation.reservation_id,
                items: reservation.items.clone(),
                expires_at: reservation.expires_at,
            },
        )?;
        self.emit_crossings(tables, now, crossings)?;
        Ok(Reserved {
            reservation,
            created: true,
        })
    }

    /// Commits or releases an order's reservation. Answers the reservation
    /// and whether this call changed it (false for an idempotent repeat).
    fn finish(
        &mut self,
        tables: &mut Tables<'_>,
        order_id: OrderId,
        target: ReservationStatus,
        now: Timestamp,
    ) -> Result<(Reservation, bool), Error> {
        let mut reservation = storage::read_reservation(&*tables.reservations()?, order_id)?
            .ok_or(Error::ReservationNotFound(order_id))?;
        let repeat = match (target, reservation.status) {
            (_, ReservationStatus::Active) => false,
            (ReservationStatus::Committed, ReservationStatus::Committed) => true,
            (
                ReservationStatus::Released,
                ReservationStatus::Released | ReservationStatus::Expired,
            ) => true,
            (_, state) => {
                return Err(Error::InvalidState {
                    order_id,
                    state: state.as_str(),
                });
            }
        };
        if repeat {
            return Ok((reservation, false));
        }
        let mut crossings = Vec::new();
        let event = if target == ReservationStatus::Committed {
            self.state.ledger.commit(&reservation.items, &mut crossings);
            Event::InventoryCommitted {
                order_id,
                reservation_id: reservation.reservation_id,
                items: reservation.items.clone(),
            }
        } else {
            self.state.ledger.release(&reservation.items);
            Event::InventoryReleased {
                order_id,
                reservation_id: reservation.reservation_id,
                items: reservation.items.clone(),
            }
        };
        let key = order_id.as_u128();
        tables
            .reservation_deadlines()?
            .remove((reservation.expires_at.0, key))?;
        reservation.status = target;
        reservation.updated_at = now.max(reservation.created_at);
        tables
            .reservations()?
            .insert(key, storage::encode_reservation(&reservation).as_slice())?;
        self.emit(tables, now, event)?;
        self.emit_crossings(tables, now, crossings)?;
        Ok((reservation, true))
    }

    /// Expires the active reservations whose deadline has passed, oldest
    /// first, at most `expiries_per_batch_max` per batch. Reads only the due
    /// part of the deadline index.
    fn expire_due(
        &mut self,
        tables: &mut Tables<'_>,
        now: Timestamp,
        report: &mut BatchReport,
    ) -> Result<(), Error> {
        match self.state.next_deadline {
            Some(deadline) if deadline <= now => {}
            _ => return Ok(()),
        }
        let mut due = Vec::new();
        for entry in tables
            .reservation_deadlines()?
            .range(..=(now.0, u128::MAX))?
        {
            let (key, _) = entry?;
            due.push(key.value());
            if due.len() == self.config.expiries_per_batch_max {
                break;
            }
        }
        for (deadline, key) in due {
            tables.reservation_deadlines()?.remove((deadline, key))?;
            let order_id = OrderId::from_u128(key);
            let Some(mut reservation) =
                storage::read_reservation(&*tables.reservations()?, order_id)?
            else {
                return Err(Error::corrupt(
                    "reservation_deadlines",
                    format!("order {order_id} has no reservation"),
                ));
            };
            if reservation.status != ReservationStatus::Active {
                return Err(Error::corrupt(
                    "reservation_deadlines",
                    format!("order {order_id} is not active"),
                ));
            }
            self.state.ledger.release(&reservation.items);
            reservation.status = ReservationStatus::Expired;
            reservation.updated_at = now.max(reservation.created_at);
            tables
                .reservations()?
                .insert(key, storage::encode_reservation(&reservation).as_slice())?;
            self.emit(
                tables,
                now,
                Event::ReservationExpired {
                    order_id,
                    reservation_id: reservation.reservation_id,
                    items: reservation.items,
                },
            )?;
            report.reservations_expired += 1;
        }
        self.state.next_deadline = tables
            .reservation_deadlines()?
            .first()?
            .map(|(key, _)| Timestamp(key.value().0));
        Ok(())
    }

    fn save_position(
        &mut self,
        tables: &mut Tables<'_>,
        consumer: &str,
        seq: u64,
    ) -> Result<(), Error> {
        validate_consumer_name(consumer)?;
        if seq > self.state.last_seq() {
            return Err(Error::invalid(
                "seq",
                format!("the log ends at {}", self.state.last_seq()),
            ));
        }
        tables.consumer_positions()?.insert(consumer, seq)?;
        Ok(())
    }

    fn save_idempotency(
        &mut self,
        tables: &mut Tables<'_>,
        key: &str,
        value: &[u8],
        expires_at: Timestamp,
    ) -> Result<(), Error> {
        validate_idempotency_key(key)?;
        if value.len() > IDEMPOTENCY_VALUE_LENGTH_MAX {
            return Err(Error::invalid(
                "value",
                format!("at most {IDEMPOTENCY_VALUE_LENGTH_MAX} bytes"),
            ));
        }
        let old = match tables.idempotency()?.get(key)? {
            Some(bytes) => Some(storage::decode_idempotency(bytes.value())?.0),
            None => None,
        };
        if let Some(old_expiry) = old {
            tables.idempotency_expiry()?.remove((old_expiry.0, key))?;
        }
        let record = storage::encode_idempotency(expires_at, value);
        tables.idempotency()?.insert(key, record.as_slice())?;
        tables
            .idempotency_expiry()?
            .insert((expires_at.0, key), ())?;
        let next = &mut self.state.next_idempotency_expiry;
        *next = Some(next.map_or(expires_at, |expiry| expiry.min(expires_at)));
        Ok(())
    }

    /// Deletes idempotency records past their expiry, oldest first, at most
    /// `expiries_per_batch_max` per batch.
    fn purge_idempotency(&mut self, tables: &mut Tables<'_>, now: Timestamp) -> Result<(), Error> {
        match self.state.next_idempotency_expiry {
            Some(expiry) if expiry <= now => {}
            _ => return Ok(()),
        }
        let mut due = Vec::new();
        for entry in tables
            .idempotency_expiry()?
            .range((0, "")..(now.0.saturating_add(1), ""))?
        {
            let (key, _) = entry?;
            let (expiry, name) = key.value();
            due.push((expiry, name.to_owned()));
            if due.len() == self.config.expiries_per_batch_max {
                break;
            }
        }
        for (expiry, key) in due {
            tables
                .idempotency_expiry()?
                .remove((expiry, key.as_str()))?;
            tables.idempotency()?.remove(key.as_str())?;
        }
        self.state.next_idempotency_expiry = tables
            .idempotency_expiry()?
            .first()?
            .map(|(key, _)| Timestamp(key.value().0));
        Ok(())
    }
}

/// The longest idempotency key, in bytes.
pub(crate) const IDEMPOTENCY_KEY_LENGTH_MAX: usize = 1_024;
/// The largest idempotency record value, in bytes.
pub(crate) const IDEMPOTENCY_VALUE_LENGTH_MAX: usize = 4 << 20;

pub(crate) fn validate_idempotency_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_LENGTH_MAX {
        return Err(Error::invalid(
            "key",
            format!("between 1 and {IDEMPOTENCY_KEY_LENGTH_MAX} bytes"),
        ));
    }
    Ok(())
}

pub(crate) fn validate_consumer_name(consumer: &str) -> Result<(), Error> {
    if consumer.is_empty() || consumer.len() > CONSUMER_NAME_LENGTH_MAX {
        return Err(Error::invalid(
            "consumer",
            format!("between 1 and {CONSUMER_NAME_LENGTH_MAX} bytes"),
        ));
    }
    Ok(())
}

/// Starts the log thread for immediate durability; `None` for periodic.
fn start_log(
    config: &EngineConfig,
    last_lsn: u64,
    shared: &Shared,
) -> Result<Option<LogLink>, Error> {
    match config.durability {
        Durability::Immediate => wal::start(
            config.log(),
            config.log_segment_bytes,
            last_lsn + 1,
            config.batch_max,
            LogShared {
                head: shared.head.clone(),
                view: shared.view.clone(),
                failed: shared.log_failed.clone(),
                observer: config.observer.clone(),
            },
        )
        .map(Some),
        Durability::Periodic { .. } => Ok(None),
    }
}

/// The room a reopen needs: enough to replay `log_bytes` of log.
fn reopen_probe_bytes(log_bytes: usize) -> usize {
    REOPEN_PROBE_BYTES_MIN.max(log_bytes.saturating_mul(REPLAY_GROWTH_FACTOR))
}

/// Writes, syncs and removes a file of `bytes` next to the store: does the
/// disk take that much again?
fn probe_space(config: &EngineConfig, bytes: usize) -> Result<(), Error> {
    let path = config.data_dir.join(REOPEN_PROBE_NAME);
    let result = std::fs::File::create(&path).and_then(|mut file| {
        let chunk = vec![0; REOPEN_PROBE_BYTES_MIN];
        let mut left = bytes;
        while left > 0 {
            let len = left.min(chunk.len());
            file.write_all(&chunk[..len])?;
            left -= len;
        }
        file.sync_all()
    });
    let removed = std::fs::remove_file(&path);
    result?;
    removed?;
    Ok(())
}
