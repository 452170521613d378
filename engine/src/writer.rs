//! The writer: one named thread that owns every redb write. Domain-agnostic
//! machinery: the queue, the batch, one write transaction, the commit, the
//! log, the answers, the reopen after a fault.
//!
//! Commands arrive on a bounded channel. The writer takes everything queued
//! (up to `batch_max`), applies the batch in one write transaction, commits
//! once, and only then answers each caller (group commit). What a command
//! does is its domain's business: each domain module (`catalog::writes`,
//! `inventory::writes`, `carts::writes`, `outbox`, `idempotency`) owns a
//! command enum and an `apply(&mut Batch, command)` that makes its
//! decisions (pure, over the in-memory state, such as the inventory's
//! `Ledger`) and writes their outcome through the [`Batch`]. Business rejections are answers; only a
//! storage fault fails a batch. After a failed batch the writer rebuilds its
//! in-memory state from what is on disk.
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use redb::{Database, ReadableDatabase, ReadableTable, Table, WriteTransaction};
use tokio::sync::{oneshot, watch};

use crate::carts::{self, writes::CartCommand};
use crate::catalog::{self, writes::CatalogCommand};
use crate::clock::IdSource;
use crate::config::ReplicationRole;
use crate::config::{Durability, EngineConfig};
use crate::error::Error;
use crate::event::Event;
use crate::idempotency::{self, IdempotencyCommand};
use crate::ids::Timestamp;
use crate::inventory::{self, Ledger, StockEntry, writes::InventoryCommand};
use crate::notifications::{self, writes::NotificationCommand};
use crate::observer::BatchReport;
use crate::orders::{self, writes::OrderCommand};
use crate::outbox::{self, OutboxCommand};
use crate::replication::RoleState;
use crate::replication::writes::{self as replication_writes, ReplicationCommand};
use crate::retention;
use crate::storage::{self, StoredProduct};
use crate::store::{self, Opened};
use crate::view::View;
use crate::wal::{self, LogBuffer, LogItem, LogLink, LogShared, Logged, TableId};

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

/// Everything the writer can be asked to do: each domain's commands, and
/// the writer's own. Adding a domain adds a variant here and a line in
/// [`apply`].
pub(crate) enum Command {
    Catalog(CatalogCommand),
    Inventory(InventoryCommand),
    Outbox(OutboxCommand),
    Idempotency(IdempotencyCommand),
    Orders(OrderCommand),
    Cart(CartCommand),
    Notifications(NotificationCommand),
    Replication(ReplicationCommand),
    /// Expire what is due and sync to disk now.
    Flush {
        reply: Reply<()>,
    },
    /// Nothing: answered once every earlier batch is durable.
    Barrier {
        reply: Reply<()>,
    },
    /// Finish the batch in hand, sync, answer the rest `ShuttingDown`, exit.
    Shutdown,
}

impl Command {
    /// True for the commands that change the shop (refused on a follower
    /// and on a fenced primary); false for the writer's own and
    /// replication's.
    pub(crate) fn is_shop_write(&self) -> bool {
        !matches!(
            self,
            Command::Replication(_)
                | Command::Flush { .. }
                | Command::Barrier { .. }
                | Command::Shutdown
        )
    }

    /// Answers the command with `error` without applying it.
    pub(crate) fn fail(self, error: Error) {
        match self {
            Command::Catalog(command) => command.fail(error),
            Command::Inventory(command) => command.fail(error),
            Command::Outbox(command) => command.fail(error),
            Command::Idempotency(command) => command.fail(error),
            Command::Orders(command) => command.fail(error),
            Command::Cart(command) => command.fail(error),
            Command::Notifications(command) => command.fail(error),
            Command::Replication(command) => command.fail(error),
            Command::Flush { reply } | Command::Barrier { reply } => refuse(reply, error),
            Command::Shutdown => {}
        }
    }
}

/// Answers `reply` with `error` at once.
pub(crate) fn refuse<T>(reply: Reply<T>, error: Error) {
    // The caller may have stopped waiting; that is fine.
    let _ = reply.sender.send(Err(error));
}

/// Applies one command in the batch; `None` for `Shutdown`.
fn apply(b: &mut Batch<'_, '_>, command: Command) -> Option<Answer> {
    Some(match command {
        Command::Catalog(command) => catalog::writes::apply(b, command),
        Command::Inventory(command) => inventory::writes::apply(b, command),
        Command::Outbox(command) => outbox::apply(b, command),
        Command::Idempotency(command) => idempotency::apply(b, command),
        Command::Orders(command) => orders::writes::apply(b, command),
        Command::Cart(command) => carts::writes::apply(b, command),
        Command::Notifications(command) => notifications::writes::apply(b, command),
        Command::Replication(command) => replication_writes::apply(b, command),
        Command::Flush { reply } | Command::Barrier { reply } => b.answer(reply, Ok(())),
        Command::Shutdown => return None,
    })
}

/// What a domain's writes work with inside one batch: its write
/// transaction's tables, the writer's in-memory state, the batch's time,
/// and the batch's report. Domain modules (`catalog::writes`,
/// `inventory::writes`, ...) take it as their first argument.
pub(crate) struct Batch<'a, 'txn> {
    pub(crate) tables: &'a mut Tables<'txn>,
    pub(crate) state: &'a mut WriterState,
    pub(crate) config: &'a EngineConfig,
    pub(crate) ids: &'a mut IdSource,
    /// The time the batch is applied at.
    pub(crate) now: Timestamp,
    pub(crate) report: &'a mut BatchReport,
    /// The storage fault that fails the whole batch, once one is met.
    failure: &'a mut Option<Error>,
}

impl Batch<'_, '_> {
    /// Appends an event to the outbox, in this batch's transaction.
    pub(crate) fn emit(&mut self, event: Event) -> Result<(), Error> {
        let seq = self.state.next_seq;
        self.tables
            .events()?
            .insert(seq, storage::encode_event(self.now, &event).as_slice())?;
        self.state.next_seq = seq + 1;
        Ok(())
    }

    /// Holds a command's answer until the batch's fate is known. A storage
    /// fault fails the whole batch. When the command asked for an
    /// idempotency record, it is rendered from the outcome and saved now, in
    /// the same write transaction as the command's own changes, so the two
    /// are durable together or not at all.
    pub(crate) fn answer<T: Send + 'static>(
        &mut self,
        reply: Reply<T>,
        result: Result<T, Error>,
    ) -> Answer {
        if let Err(error) = &result
            && error.is_storage_fault()
        {
            self.failure.get_or_insert_with(|| error.clone());
        }
        let Reply { sender, record } = reply;
        if let Some(record) = record
            && self.failure.is_none()
            && let Some(value) = (record.render)(&result)
        {
            let expires_at = self.now.plus(record.ttl);
            match idempotency::save(self, &record.key, &value, expires_at) {
                Ok(()) => {}
                Err(error) if error.is_storage_fault() => {
                    self.failure.get_or_insert(error);
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

    /// Records the batch's first storage fault, if `result` is one.
    fn check(&mut self, result: Result<(), Error>) {
        if let Err(error) = result {
            self.failure.get_or_insert(error);
        }
    }
}

/// An answer held back until the batch's fate is known: called with `None`
/// after a successful commit, with the batch's error after a failed one.
pub(crate) type Answer = Box<dyn FnOnce(Option<&Error>) + Send>;

/// The tables a batch writes, each opened on first use in the write
/// transaction: redb flushes the root of every opened table at commit, so a
/// batch of reservations should not pay for the catalog's tables.
pub(crate) struct Tables<'txn> {
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
    orders: Option<Table<'txn, u128, &'static [u8]>>,
    orders_by_user: Option<Table<'txn, (&'static str, u128), ()>>,
    saga_log: Option<Table<'txn, (u128, u32), &'static [u8]>>,
    payments: Option<Table<'txn, u128, &'static [u8]>>,
    payments_by_order: Option<Table<'txn, u128, u128>>,
    webhook_events: Option<Table<'txn, &'static str, u64>>,
    carts: Option<Table<'txn, u128, &'static [u8]>>,
    carts_by_user: Option<Table<'txn, (&'static str, u128), ()>>,
    cart_expiry: Option<Table<'txn, (u64, u128), ()>>,
    notifications: Option<Table<'txn, u128, &'static [u8]>>,
    notifications_by_user: Option<Table<'txn, (&'static str, u128), ()>>,
    notifications_by_order: Option<Table<'txn, (u128, u128), ()>>,
    notification_sources: Option<Table<'txn, (u64, u8), u128>>,
    notification_due: Option<Table<'txn, (u64, u128), ()>>,
}

/// One getter per table: opens it on first use.
macro_rules! table_getters {
    ($($name:ident: $definition:expr => $key:ty, $value:ty, $id:ident;)*) => {
        impl<'txn> Tables<'txn> {
            $(
                pub(crate) fn $name(&mut self) -> Result<Logged<'_, 'txn, $key, $value>, Error> {
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
    orders: storage::ORDERS => u128, &'static [u8], Orders;
    orders_by_user: storage::ORDERS_BY_USER => (&'static str, u128), (), OrdersByUser;
    saga_log: storage::SAGA_LOG => (u128, u32), &'static [u8], SagaLog;
    payments: storage::PAYMENTS => u128, &'static [u8], Payments;
    payments_by_order: storage::PAYMENTS_BY_ORDER => u128, u128, PaymentsByOrder;
    webhook_events: storage::WEBHOOK_EVENTS => &'static str, u64, WebhookEvents;
    carts: storage::CARTS => u128, &'static [u8], Carts;
    carts_by_user: storage::CARTS_BY_USER => (&'static str, u128), (), CartsByUser;
    cart_expiry: storage::CART_EXPIRY => (u64, u128), (), CartExpiry;
    notifications: storage::NOTIFICATIONS => u128, &'static [u8], Notifications;
    notifications_by_user: storage::NOTIFICATIONS_BY_USER => (&'static str, u128), (), NotificationsByUser;
    notifications_by_order: storage::NOTIFICATIONS_BY_ORDER => (u128, u128), (), NotificationsByOrder;
    notification_sources: storage::NOTIFICATION_SOURCES => (u64, u8), u128, NotificationSources;
    notification_due: storage::NOTIFICATION_DUE => (u64, u128), (), NotificationDue;
}

impl<'txn> Tables<'txn> {
    /// The batch's write transaction, for tables that are not logged.
    pub(crate) fn transaction(&self) -> &'txn WriteTransaction {
        self.txn
    }

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
            orders: None,
            orders_by_user: None,
            saga_log: None,
            payments: None,
            payments_by_order: None,
            webhook_events: None,
            carts: None,
            carts_by_user: None,
            cart_expiry: None,
            notifications: None,
            notifications_by_user: None,
            notifications_by_order: None,
            notification_sources: None,
            notification_due: None,
        }
    }
}

/// What the writer keeps in memory, rebuilt from disk at open and after a
/// failed batch.
pub(crate) struct WriterState {
    /// Stock decisions (inventory).
    pub(crate) ledger: Ledger,
    /// The next event's seq (the outbox).
    pub(crate) next_seq: u64,
    /// The next product id to assign (catalog);
    /// `catalog::writes::ID_SPACE_EXHAUSTED` once none is left.
    pub(crate) next_product_id: u64,
    /// The earliest deadline of an active reservation (inventory).
    pub(crate) next_deadline: Option<Timestamp>,
    /// The earliest expiry of an idempotency record.
    pub(crate) next_idempotency_expiry: Option<Timestamp>,
    /// When the least recently changed cart was changed (carts): it
    /// expires `cart_ttl` after that. May be earlier than the truth (a cart
    /// changed since), never later.
    pub(crate) oldest_cart_change: Option<Timestamp>,
    /// When the next retention slice is due (`retention`).
    pub(crate) next_compaction: Timestamp,
    /// Where the next sweep of finished reservations starts (`retention`).
    pub(crate) reservation_sweep_from: u128,
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
            next_product_id = catalog::writes::next_id_after_creating(next_product_id, product.id);
        }
        ledger.take_dirty();
        let events = txn.open_table(storage::EVENTS)?;
        let deadlines = txn.open_table(storage::RESERVATION_DEADLINES)?;
        let next_deadline = deadlines.first()?.map(|(key, _)| Timestamp(key.value().0));
        let idempotency_expiry = txn.open_table(storage::IDEMPOTENCY_EXPIRY)?;
        let next_idempotency_expiry = idempotency_expiry
            .first()?
            .map(|(key, _)| Timestamp(key.value().0));
        let cart_expiry = txn.open_table(storage::CART_EXPIRY)?;
        let oldest_cart_change = cart_expiry
            .first()?
            .map(|(key, _)| Timestamp(key.value().0));
        Ok(WriterState {
            ledger,
            next_seq: storage::last_seq(&events)? + 1,
            next_product_id,
            next_deadline,
            next_idempotency_expiry,
            oldest_cart_change,
            next_compaction: Timestamp(0),
            reservation_sweep_from: 0,
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
    /// The engine's part in replication now (a follower may be promoted).
    role: ReplicationRole,
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
    /// The last durable log record's number, published with the head.
    pub(crate) lsn_head: Arc<watch::Sender<u64>>,
    /// Whether writes are taken (follower, fenced).
    pub(crate) role: Arc<RoleState>,
    /// Synchronous replication's gate (see `LogWriter::hand_to_gate`).
    pub(crate) gate: Option<crossbeam_channel::Sender<crate::replication::GatedBatch>>,
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
        shared.lsn_head.send_replace(last_lsn);
        Ok(Writer {
            role: config.replication,
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
        let carts_due = carts::writes::purge_due(&self.state, &self.config, now);
        let compaction_due = retention::due(&self.state, now);
        expiry_due || purge_due || carts_due || compaction_due || self.sync_due()
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
        let keep_records = self.role == ReplicationRole::Primary;
        let opened = store::open(&self.config, false, keep_records)?;
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
        self.shared.lsn_head.send_replace(last_lsn);
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
        if self.role == ReplicationRole::Follower {
            self.apply_follower_batch(commands, force_sync);
            return;
        }
        let commands = self.refuse_if_fenced(commands);
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
        // A batch synced by redb needs no log record, unless a publisher
        // ships it.
        let keep_records = self.role == ReplicationRole::Primary;
        let log = (self.log.is_some() && (!synced || keep_records)).then(LogBuffer::new);
        let mut answers = Vec::with_capacity(commands.len());
        let written = self.write_batch(commands, now, &mut synced, log, &mut answers, &mut report);
        report.synced = synced;
        match written {
            Ok(log) => self.committed(log, answers, synced, &report),
            Err(error) => self.failed(error, answers),
        }
    }

    /// Answers every shop write with the fencing's refusal once this
    /// primary was deposed; the rest go on.
    fn refuse_if_fenced(&self, commands: Vec<Command>) -> Vec<Command> {
        let Some(refusal) = self.shared.role.refusal() else {
            return commands;
        };
        let mut kept = Vec::with_capacity(commands.len());
        for command in commands {
            if command.is_shop_write() {
                command.fail(refusal.clone());
            } else {
                kept.push(command);
            }
        }
        kept
    }

    /// A follower's batch: each replicated record is applied in a write
    /// transaction of its own and logged under its own number, so that the
    /// follower's log is the primary's; a bootstrap installs a snapshot; a
    /// promotion makes this writer a primary. Shop writes are refused, and
    /// nothing is expired or purged here: the primary does that, and its
    /// records carry it.
    fn apply_follower_batch(&mut self, commands: Vec<Command>, force_sync: bool) {
        let mut commands = commands.into_iter();
        while let Some(command) = commands.next() {
            match command {
                Command::Replication(ReplicationCommand::Apply { record, reply }) => {
                    if record.lsn <= self.last_lsn {
                        // Applied before (a restart resumes from an earlier point).
                        let _ = reply.sender.send(Ok(()));
                        continue;
                    }
                    if record.lsn != self.last_lsn + 1 {
                        let error = Error::Conflict(format!(
                            "record {} cannot follow record {}: records are missing",
                            record.lsn, self.last_lsn
                        ));
                        let _ = reply.sender.send(Err(error));
                        continue;
                    }
                    let synced = force_sync || self.sync_due();
                    self.apply_replicated(record.lsn, &record.payload, synced, reply);
                }
                Command::Replication(ReplicationCommand::Bootstrap { snapshot, reply }) => {
                    let empty = self.last_lsn == 0 && self.state.last_seq() == 0;
                    if !empty && snapshot.lsn <= self.last_lsn {
                        let error = Error::Conflict(format!(
                            "a snapshot starts an empty follower or replaces the store of one \
                             behind it; this one is at record {}, the snapshot at {}",
                            self.last_lsn, snapshot.lsn
                        ));
                        let _ = reply.sender.send(Err(error));
                        continue;
                    }
                    if snapshot.currency != self.config.currency {
                        let error = Error::invalid(
                            "currency",
                            format!(
                                "the snapshot's store has currency {}, this one {}",
                                snapshot.currency, self.config.currency
                            ),
                        );
                        let _ = reply.sender.send(Err(error));
                        continue;
                    }
                    self.install_snapshot(snapshot.lsn, &snapshot.payload, !empty, reply);
                }
                Command::Replication(ReplicationCommand::Promote { reply }) => {
                    // Everything before is applied (answers in order); the
                    // writer reloads its state from the store before the
                    // next batch, which is a primary's.
                    self.role = ReplicationRole::Primary;
                    self.needs_reload = true;
                    let lsn = self.last_lsn;
                    let rest: Vec<Command> = commands.collect();
                    self.settle_without_record(vec![Box::new(move |error: Option<&Error>| {
                        let _ = reply.sender.send(match error {
                            Some(error) => Err(error.clone()),
                            None => Ok(lsn),
                        });
                    })]);
                    if !rest.is_empty() {
                        self.apply_batch(rest, force_sync);
                    }
                    return;
                }
                Command::Flush { reply } | Command::Barrier { reply } => {
                    self.settle_without_record(vec![Box::new(move |error: Option<&Error>| {
                        let _ = reply.sender.send(match error {
                            Some(error) => Err(error.clone()),
                            None => Ok(()),
                        });
                    })]);
                }
                Command::Shutdown => {}
                other => {
                    let refusal = self.shared.role.refusal().unwrap_or(Error::NotPrimary {
                        reason: "this server is a follower; it serves reads only".to_owned(),
                        primary: None,
                    });
                    other.fail(refusal);
                }
            }
        }
        if force_sync && self.unsynced_since.is_some() {
            // A shutdown or flush: a checkpoint with nothing in it.
            self.apply_replicated_checkpoint();
        }
    }

    /// Hands answers to the log thread, to be sent once everything before
    /// them is durable.
    fn settle_without_record(&mut self, answers: Vec<Answer>) {
        let Some(link) = &self.log else {
            for answer in answers {
                answer(None);
            }
            return;
        };
        let item = LogItem {
            record: None,
            answers,
            commands: 1,
            head: self.state.last_seq(),
            lsn: self.last_lsn,
            gated: false,
            snapshot: None,
            checkpoint: None,
            abort: None,
        };
        if let Err(unsent) = link.items.send(item) {
            let error = Error::Storage("the log thread stopped".to_owned());
            for answer in unsent.into_inner().answers {
                answer(Some(&error));
            }
        }
    }

    /// A follower's checkpoint: redb synced, the log started afresh.
    fn apply_replicated_checkpoint(&mut self) {
        let result = (|| -> Result<(), Error> {
            let mut txn = self.begin(true)?;
            storage::make_durable(&mut txn)?;
            wal::save_durable_lsn(&txn, self.last_lsn)?;
            txn.commit()?;
            Ok(())
        })();
        match result {
            Ok(()) => self.hand_to_log(None, Vec::new(), true),
            Err(error) => self.failed(error, Vec::new()),
        }
    }

    /// Installs a snapshot as record `lsn`, synced: into an empty store, or
    /// (`replace`) in place of every replicated table of a follower behind
    /// it, as if it had applied every record up to `lsn`.
    fn install_snapshot(&mut self, lsn: u64, payload: &[u8], replace: bool, reply: Reply<()>) {
        assert!(
            lsn > self.last_lsn || !replace,
            "a snapshot replaces an older store only"
        );
        self.apply_records(lsn, payload, true, replace, reply);
    }

    /// Applies one primary record in a write transaction of its own.
    fn apply_replicated(&mut self, lsn: u64, payload: &[u8], synced: bool, reply: Reply<()>) {
        assert_eq!(lsn, self.last_lsn + 1, "records are applied in order");
        self.apply_records(lsn, payload, synced, false, reply);
    }

    /// Applies `payload` (a record's or a snapshot's operations) as record
    /// `lsn`, after removing every replicated table when `replace`.
    fn apply_records(
        &mut self,
        lsn: u64,
        payload: &[u8],
        synced: bool,
        replace: bool,
        reply: Reply<()>,
    ) {
        let answer: Answer = Box::new(move |error: Option<&Error>| {
            let _ = reply.sender.send(match error {
                Some(error) => Err(error.clone()),
                None => Ok(()),
            });
        });
        let result = (|| -> Result<u64, Error> {
            let mut txn = self.begin(synced)?;
            if replace {
                let tables = storage::delete_logged_tables(&txn)?;
                tracing::info!(tables, lsn, "replacing this follower's store by a snapshot");
            }
            wal::replay(&txn, payload).map_err(|message| {
                Error::corrupt("replicated", format!("record {lsn}: {message}"))
            })?;
            let last_seq = {
                let events = txn.open_table(storage::EVENTS)?;
                storage::last_seq(&events)?
            };
            wal::save_durable_lsn(&txn, lsn)?;
            if synced {
                storage::make_durable(&mut txn)?;
            }
            txn.commit()?;
            Ok(last_seq)
        })();
        match result {
            Ok(last_seq) => {
                self.state.next_seq = last_seq + 1;
                self.last_lsn = lsn;
                let record = (!synced)
                    .then(|| LogBuffer::from_payload(payload).finish(lsn))
                    .flatten();
                if let Some(record) = &record {
                    self.log_bytes += record.len();
                }
                self.hand_to_log(record, vec![answer], synced);
            }
            Err(error) => self.failed(error, vec![answer]),
        }
    }

    /// Publishes a follower's committed transaction through the log thread.
    fn hand_to_log(&mut self, record: Option<Vec<u8>>, answers: Vec<Answer>, synced: bool) {
        if synced {
            self.unsynced_since = None;
            self.log_bytes = 0;
        } else {
            self.unsynced_since.get_or_insert_with(Instant::now);
        }
        self.shared.healthy.store(true, Ordering::SeqCst);
        let db = self
            .db
            .as_ref()
            .expect("a batch committed to an open store");
        let snapshot = db.begin_read().ok().map(Arc::new);
        let Some(link) = &self.log else {
            unreachable!("a follower has immediate durability")
        };
        let item = LogItem {
            record,
            answers,
            commands: 1,
            head: self.state.last_seq(),
            lsn: self.last_lsn,
            gated: false,
            snapshot,
            checkpoint: synced.then_some(self.last_lsn),
            abort: None,
        };
        if let Err(unsent) = link.items.send(item) {
            link.failed.store(true, Ordering::SeqCst);
            let error = Error::Storage("the log thread stopped; outcome unknown".to_owned());
            for answer in unsent.into_inner().answers {
                answer(Some(&error));
            }
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
            lsn: self.last_lsn,
            gated: self.role == ReplicationRole::Primary && self.config.replication_sync,
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
                lsn: self.last_lsn,
                gated: false,
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
            let mut b = Batch {
                tables: &mut tables,
                state: &mut self.state,
                config: &self.config,
                ids: &mut self.ids,
                now,
                report,
                failure: &mut failure,
            };
            // Each domain's work due whatever the commands.
            let expired = inventory::writes::expire_due(&mut b);
            b.check(expired);
            if b.failure.is_none() {
                let purged = idempotency::purge(&mut b);
                b.check(purged);
            }
            if b.failure.is_none() {
                let purged = carts::writes::purge(&mut b);
                b.check(purged);
            }
            if b.failure.is_none() {
                let compacted = retention::compact(&mut b);
                b.check(compacted);
            }
            for command in commands {
                if let Some(error) = b.failure.as_ref() {
                    command.fail(error.clone());
                    continue;
                }
                if let Some(answer) = apply(&mut b, command) {
                    answers.push(answer);
                }
            }
            if b.failure.is_none() {
                let flushed = inventory::writes::flush_stock(&mut b);
                b.check(flushed);
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
        let keep_records = self.role == ReplicationRole::Primary;
        if log
            .as_ref()
            .is_some_and(|log| log.len() > wal::RECORD_BYTES_MAX)
        {
            storage::make_durable(txn)?;
            if !keep_records {
                *log = None;
            }
            *synced = true;
        }
        let lsn = match log {
            Some(log) if log.is_empty() => return Ok(()),
            Some(log) => {
                let lsn = self.last_lsn + 1;
                if keep_records {
                    txn.open_table(storage::REPLICATION_LOG)?
                        .insert(lsn, log.payload())?;
                }
                lsn
            }
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
                lsn_head: shared.lsn_head.clone(),
                gate: shared.gate.clone(),
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
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = options.open(&path).and_then(|mut file| {
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
