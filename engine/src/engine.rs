//! [`Engine`]: the library's front door.
//!
//! Writes become [`Command`]s on the writer's bounded queue and answer a
//! [`Pending`], which is awaited in async code or [`Pending::wait`]ed in
//! blocking code. Reads open a redb read transaction of their own and never
//! wait for the writer.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use redb::ReadableTable;
use rust_decimal::Decimal;
use tokio::sync::{oneshot, watch};

use crate::carts::writes::CartCommand;
use crate::carts::{self, Cart, StoredCart};
use crate::catalog::writes::CatalogCommand;
use crate::catalog::{self, NewProduct, Page, Product, ProductPatch, UpsertTarget, Upserted};
use crate::config::EngineConfig;
use crate::config::ReplicationRole;
use crate::error::Error;
use crate::event::EventEnvelope;
use crate::idempotency::{self, IdempotencyCommand};
use crate::ids::{CartId, OrderId, PaymentId, ProductId, UserId};
use crate::inventory::writes::InventoryCommand;
use crate::inventory::{Reservation, ReserveRequest, Reserved, Stock};
use crate::orders::writes::OrderCommand;
use crate::orders::{self, NewOrder, Order, OrderPage, Payment, PaymentResult, SagaEntry};
use crate::outbox::{self, OutboxCommand};
use crate::replication::writes::ReplicationCommand;
use crate::replication::{ReplicaRecord, ReplicaSnapshot, RoleState};
use crate::storage::{self, StoredProduct};
use crate::store;
use crate::subscription::Subscription;
use crate::view::View;
use crate::wal::RecoveryReport;
use crate::writer::{self, Command, Writer};

/// The file inside the data directory that holds the store.
pub const DATABASE_FILE_NAME: &str = "mercato.redb";
/// The most items one listing or event read returns.
pub const PAGE_LIMIT_MAX: usize = 500;
/// The most orders one filtered [`Engine::orders`] page reads.
pub const ORDERS_SCANNED_MAX: usize = 10_000;
/// The most reservations one [`Engine::active_reservations`] call reads.
pub const RESERVATIONS_SCANNED_MAX: usize = 10_000;

/// An open store. Cheap to clone; every clone is the same engine. The
/// writer stops when [`Engine::shutdown`] is called or the last clone is
/// dropped.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    /// The durable snapshot reads use.
    view: Arc<View>,
    healthy: Arc<AtomicBool>,
    /// Set by the log thread while the write-ahead log is failed.
    log_failed: Arc<AtomicBool>,
    commands: Sender<Command>,
    head: watch::Receiver<u64>,
    /// The last durable log record's number.
    lsn_head: watch::Receiver<u64>,
    /// Whether writes are taken (follower, fenced).
    role: Arc<RoleState>,
    /// Synchronous replication's gate, until a publisher takes it.
    gate: Mutex<Option<crate::replication::ReplicationGate>>,
    config: EngineConfig,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        stop_writer(&self.commands, &self.writer);
    }
}

fn stop_writer(commands: &Sender<Command>, writer: &Mutex<Option<JoinHandle<()>>>) {
    let handle = writer
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .take();
    if let Some(handle) = handle {
        // A blocking send: shutdown waits for room in a full queue.
        let _ = commands.send(Command::Shutdown);
        if handle.join().is_err() {
            tracing::error!("the writer thread panicked");
        }
    }
}

/// The answer to a write, on its way. `.await` it in async code (it never
/// blocks a runtime thread) or call [`Pending::wait`] in blocking code.
#[must_use = "a write's outcome is only known once its answer is awaited"]
pub struct Pending<T> {
    state: PendingState<T>,
}

enum PendingState<T> {
    Waiting(oneshot::Receiver<Result<T, Error>>),
    Failed(Option<Error>),
}

impl<T> Pending<T> {
    /// Blocks the current thread until the answer arrives. Do not call this
    /// on an async runtime's thread; `.await` the `Pending` there instead.
    pub fn wait(self) -> Result<T, Error> {
        match self.state {
            PendingState::Waiting(receiver) => {
                receiver.blocking_recv().unwrap_or(Err(Error::ShuttingDown))
            }
            PendingState::Failed(error) => Err(error.unwrap_or(Error::ShuttingDown)),
        }
    }
}

impl<T> Future for Pending<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            PendingState::Waiting(receiver) => Pin::new(receiver)
                .poll(context)
                .map(|answer| answer.unwrap_or(Err(Error::ShuttingDown))),
            PendingState::Failed(error) => {
                Poll::Ready(Err(error.take().unwrap_or(Error::ShuttingDown)))
            }
        }
    }
}

impl Engine {
    /// Opens (or creates) the store in `config.data_dir` and starts the
    /// writer thread. Fails if the store is open in another process, was
    /// created with another currency, or cannot be read, and with
    /// [`Error::LogDamaged`] (changing nothing) when the write-ahead log is
    /// damaged so that opening would lose acknowledged writes.
    pub fn open(config: EngineConfig) -> Result<Engine, Error> {
        config.validate()?;
        let opened = store::open(
            &config,
            false,
            config.replication == ReplicationRole::Primary,
        )?;
        let (head_sender, head) = watch::channel(opened.state.last_seq());
        let (lsn_sender, lsn_head) = watch::channel(opened.recovery.last_lsn);
        let (gate_sender, gate) = if config.replication_sync {
            let (sender, receiver) =
                crossbeam_channel::bounded(crate::replication::GATE_BATCHES_MAX);
            (
                Some(sender),
                Some(crate::replication::ReplicationGate { receiver }),
            )
        } else {
            (None, None)
        };
        let role = Arc::new(RoleState::new(
            config.replication == ReplicationRole::Follower,
        ));
        let head_sender = Arc::new(head_sender);
        let view = Arc::new(View::new(opened.snapshot.clone()));
        let (commands, receiver) = crossbeam_channel::bounded(config.queue_max);
        let healthy = Arc::new(AtomicBool::new(true));
        let log_failed = Arc::new(AtomicBool::new(false));
        let shared = writer::Shared {
            head: head_sender,
            view: view.clone(),
            healthy: healthy.clone(),
            log_failed: log_failed.clone(),
            lsn_head: Arc::new(lsn_sender),
            role: role.clone(),
            gate: gate_sender,
        };
        let writer = Writer::start(config.clone(), opened, shared)?;
        let handle = std::thread::Builder::new()
            .name("mercato-writer".to_owned())
            .spawn(move || writer.run(receiver))?;
        tracing::info!(
            data_dir = %config.data_dir.display(),
            durability = ?config.durability,
            "engine open"
        );
        Ok(Engine {
            inner: Arc::new(Inner {
                view,
                healthy,
                log_failed,
                commands,
                head,
                lsn_head,
                role,
                gate: Mutex::new(gate),
                config,
                writer: Mutex::new(Some(handle)),
            }),
        })
    }

    /// Recovers the store in `config.data_dir` without starting an engine:
    /// replays the write-ahead log and reports what it found. Without
    /// `accept_loss` a damaged log is refused with [`Error::LogDamaged`]
    /// and nothing changes. With `accept_loss` the store keeps every record
    /// before the damage, the damaged segment and those after it are
    /// renamed with a `.damaged` suffix and kept (never read again), and
    /// the report's [`RecoveryReport::loss`] says exactly what was dropped.
    /// `mercato recover` runs this.
    pub fn recover(config: EngineConfig, accept_loss: bool) -> Result<RecoveryReport, Error> {
        config.validate()?;
        let keep_records = config.replication == ReplicationRole::Primary;
        let opened = store::open(&config, accept_loss, keep_records)?;
        drop(opened.snapshot);
        store::close(opened.db);
        Ok(opened.recovery)
    }

    /// Lets the writer finish what is queued, sync, and stop. Writes after
    /// this answer [`Error::ShuttingDown`]; reads keep working. Idempotent.
    pub fn shutdown(&self) {
        stop_writer(&self.inner.commands, &self.inner.writer);
    }

    /// The configuration the engine was opened with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The store's currency code.
    pub fn currency(&self) -> &str {
        &self.inner.config.currency
    }

    /// False while the store cannot take writes: after an I/O fault (a full
    /// disk, say) writes answer [`Error::StorageUnavailable`] until the
    /// writer has reopened the store, which it tries by itself every second
    /// and which recovers every acknowledged write; after a failure of the
    /// write-ahead log, until a checkpoint has started it afresh. Reads keep
    /// working meanwhile.
    pub fn is_healthy(&self) -> bool {
        self.inner.healthy.load(Ordering::SeqCst) && !self.inner.log_failed.load(Ordering::SeqCst)
    }

    /// Commands waiting for the writer now.
    pub fn queue_depth(&self) -> usize {
        self.inner.commands.len()
    }

    /// The newest durable read snapshot (what every read uses).
    pub(crate) fn snapshot(&self) -> crate::view::Snapshot {
        self.inner.view.current()
    }

    /// The engine's clock's time now.
    pub(crate) fn now(&self) -> crate::ids::Timestamp {
        self.inner.config.clock.now()
    }

    pub(crate) fn submit<T>(
        &self,
        command: impl FnOnce(writer::Reply<T>) -> Command,
    ) -> Pending<T> {
        self.send(command, None)
    }

    fn send<T>(
        &self,
        command: impl FnOnce(writer::Reply<T>) -> Command,
        record: Option<writer::Record<T>>,
    ) -> Pending<T> {
        let (sender, receiver) = oneshot::channel();
        let reply = writer::Reply { sender, record };
        let command = command(reply);
        if command.is_shop_write()
            && let Some(refusal) = self.inner.role.refusal()
        {
            command.fail(refusal);
            return Pending {
                state: PendingState::Waiting(receiver),
            };
        }
        let state = match self.inner.commands.try_send(command) {
            Ok(()) => PendingState::Waiting(receiver),
            Err(TrySendError::Full(_)) => PendingState::Failed(Some(Error::Overloaded)),
            Err(TrySendError::Disconnected(_)) => PendingState::Failed(Some(Error::ShuttingDown)),
        };
        Pending { state }
    }

    /// Sends a [`Write`] to the writer. The methods below (`reserve`,
    /// `set_stock`, ...) are shorthands for `write(Write::reserve(..))` etc.;
    /// use `write` to attach an idempotency record with [`Write::remember`].
    pub fn write<T>(&self, write: Write<T>) -> Pending<T> {
        self.send(write.command, write.record)
    }

    /// Creates a product (with `on_hand` units in stock). Answers
    /// [`Error::ProductExists`] when its id is taken.
    pub fn create_product(&self, product: NewProduct) -> Pending<Product> {
        self.write(Write::create_product(product))
    }

    /// Creates many products in one transaction: all of them or, when any
    /// is invalid or its id is taken, none.
    pub fn import_products(&self, products: Vec<NewProduct>) -> Pending<Vec<Product>> {
        self.write(Write::import_products(products))
    }

    /// Makes the store match `products`, in one transaction, all of them or
    /// none: a product whose id is unknown is created; an existing one gets
    /// every field of its [`NewProduct`] (a `None` field takes the default a
    /// new product would get) and its `on_hand`; one that already matches
    /// is left alone (no event). Every product must name its `id`. Refused
    /// for an archived product's id (ids are not reused) and for an
    /// `on_hand` below what is reserved ([`Error::BelowReserved`]). At most
    /// [`IMPORT_PRODUCTS_MAX`](crate::IMPORT_PRODUCTS_MAX) products. Applying
    /// the same products again changes nothing, so a bulk import that
    /// stopped part way is completed by running it again.
    pub fn upsert_products(&self, products: Vec<NewProduct>) -> Pending<Upserted> {
        self.write(Write::upsert_products(products))
    }

    /// Whether [`Engine::upsert_products`] would accept `product` against
    /// the store as it is now: the same rules, checked without writing, so
    /// a bulk import can name every bad product before it writes any. The
    /// writer decides again when the write is applied.
    pub fn check_upsert(&self, product: &NewProduct) -> Result<(), Error> {
        let target = match product.id {
            Some(id) if id.0 != 0 => self.upsert_target(id)?,
            _ => None,
        };
        catalog::check_upsert(product, target).map(|_| ())
    }

    fn upsert_target(&self, product_id: ProductId) -> Result<Option<UpsertTarget>, Error> {
        let txn = self.inner.view.current();
        let products = txn.open_table(storage::PRODUCTS)?;
        let Some(product) = storage::read_product(&products, product_id)? else {
            return Ok(None);
        };
        let stock = txn.open_table(storage::STOCK)?;
        let bytes = stock
            .get(product_id.0)?
            .ok_or_else(|| Error::corrupt("stock", format!("product {product_id} has none")))?;
        let (_, reserved) = storage::decode_stock(bytes.value())?;
        Ok(Some(UpsertTarget {
            archived: product.archived,
            reserved,
        }))
    }

    /// Changes the fields a patch names. Archived products are not found.
    pub fn update_product(&self, product_id: ProductId, patch: ProductPatch) -> Pending<Product> {
        self.write(Write::update_product(product_id, patch))
    }

    /// Archives a product: no longer listed, read or reservable. Existing
    /// reservations keep their lines and can still be committed or released.
    pub fn archive_product(&self, product_id: ProductId) -> Pending<()> {
        self.write(Write::archive_product(product_id))
    }

    /// Sets a product's `on_hand`; refused below what is reserved.
    pub fn set_stock(&self, product_id: ProductId, on_hand: u64) -> Pending<Stock> {
        self.write(Write::set_stock(product_id, on_hand))
    }

    /// Adds `delta` (which may be negative) to a product's `on_hand`;
    /// refused when the result would fall below what is reserved.
    pub fn adjust_stock(&self, product_id: ProductId, delta: i64) -> Pending<Stock> {
        self.write(Write::adjust_stock(product_id, delta))
    }

    /// Holds stock for an order: every line or none. Repeating a request for
    /// the same order with the same lines answers the existing reservation
    /// (`created: false`); with other lines, [`Error::Conflict`].
    pub fn reserve(&self, request: ReserveRequest) -> Pending<Reserved> {
        self.write(Write::reserve(request))
    }

    /// Turns an order's active reservation into a sale. Idempotent.
    pub fn commit_reservation(&self, order_id: OrderId) -> Pending<Reservation> {
        self.write(Write::commit_reservation(order_id))
    }

    /// Gives an order's held stock back. Idempotent; an expired reservation
    /// answers as it is; a committed one is [`Error::InvalidState`].
    pub fn release_reservation(&self, order_id: OrderId) -> Pending<Reservation> {
        self.write(Write::release_reservation(order_id))
    }

    /// Expires every reservation now due and syncs everything committed to
    /// disk, then answers. Useful after moving a manual clock, and before a
    /// backup in periodic durability.
    pub fn flush(&self) -> Pending<()> {
        self.submit(|reply| Command::Flush { reply })
    }

    /// Resolves once everything the writer applied before this call is
    /// durable (and so visible to reads, which show only durable state):
    /// for a caller that sent writes without awaiting their answers. Cheap:
    /// no sync of its own. With periodic durability it waits only for the
    /// writer.
    pub fn wait_durable(&self) -> Pending<()> {
        self.submit(|reply| Command::Barrier { reply })
    }

    /// A product by id; `None` when unknown or archived.
    pub fn product(&self, product_id: ProductId) -> Result<Option<Product>, Error> {
        Ok(self.products(&[product_id])?.pop().flatten())
    }

    /// Products by id, in the order given, from one consistent view:
    /// `None` where unknown or archived. Cheaper than a `product` call per
    /// id (one table opened).
    pub fn products(&self, product_ids: &[ProductId]) -> Result<Vec<Option<Product>>, Error> {
        let txn = self.inner.view.current();
        let products = txn.open_table(storage::PRODUCTS)?;
        let currency = self.currency();
        product_ids
            .iter()
            .map(|&product_id| {
                Ok(storage::read_product(&products, product_id)?
                    .filter(|product| !product.archived)
                    .map(|product| product.into_product(currency)))
            })
            .collect()
    }

    /// True when the store holds no products at all (not even archived ones).
    pub fn is_empty(&self) -> Result<bool, Error> {
        let txn = self.inner.view.current();
        let products = txn.open_table(storage::PRODUCTS)?;
        Ok(products.first()?.is_none())
    }

    /// Live products in id order, after `after`, optionally of one category.
    /// `limit` is clamped to 1..=[`PAGE_LIMIT_MAX`].
    pub fn list_products(
        &self,
        category: Option<&str>,
        after: Option<ProductId>,
        limit: usize,
    ) -> Result<Page<Product>, Error> {
        let limit = limit.clamp(1, PAGE_LIMIT_MAX);
        let start = match after.map(|id| id.0.checked_add(1)) {
            None => 0,
            Some(Some(start)) => start,
            // Nothing comes after the last id.
            Some(None) => {
                return Ok(Page {
                    items: Vec::new(),
                    next_after: None,
                });
            }
        };
        let txn = self.inner.view.current();
        let products = txn.open_table(storage::PRODUCTS)?;
        let mut items = Vec::with_capacity(limit);
        let mut more = false;
        let mut take = |product: StoredProduct| {
            if items.len() == limit {
                more = true;
                return false;
            }
            items.push(product.into_product(self.currency()));
            true
        };
        match category {
            Some(category) => {
                let index = txn.open_table(storage::PRODUCTS_BY_CATEGORY)?;
                for entry in index.range((category, start)..=(category, u64::MAX))? {
                    let id = ProductId(entry?.0.value().1);
                    let product = storage::read_product(&products, id)?.ok_or_else(|| {
                        Error::corrupt("products_by_category", format!("product {id} is missing"))
                    })?;
                    if !take(product) {
                        break;
                    }
                }
            }
            None => {
                for entry in products.range(start..)? {
                    let (id, bytes) = entry?;
                    let product = StoredProduct::decode(id.value(), bytes.value())?;
                    if !product.archived && !take(product) {
                        break;
                    }
                }
            }
        }
        let next_after = if more {
            items.last().map(|product| product.id)
        } else {
            None
        };
        Ok(Page { items, next_after })
    }

    /// A live product's stock; `None` when unknown or archived.
    pub fn stock(&self, product_id: ProductId) -> Result<Option<Stock>, Error> {
        let txn = self.inner.view.current();
        let products = txn.open_table(storage::PRODUCTS)?;
        match storage::read_product(&products, product_id)? {
            Some(product) if !product.archived => {}
            _ => return Ok(None),
        }
        let stock = txn.open_table(storage::STOCK)?;
        let bytes = stock
            .get(product_id.0)?
            .ok_or_else(|| Error::corrupt("stock", format!("product {product_id} has none")))?;
        let (on_hand, reserved) = storage::decode_stock(bytes.value())?;
        Ok(Some(Stock {
            product_id,
            on_hand,
            reserved,
        }))
    }

    /// The reservation held for an order, in whatever state it is.
    pub fn reservation(&self, order_id: OrderId) -> Result<Option<Reservation>, Error> {
        let txn = self.inner.view.current();
        let reservations = txn.open_table(storage::RESERVATIONS)?;
        storage::read_reservation(&reservations, order_id)
    }

    /// Up to `limit` events with `seq > after`, in order. `limit` is clamped
    /// to 1..=[`PAGE_LIMIT_MAX`].
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<EventEnvelope>, Error> {
        let limit = limit.clamp(1, PAGE_LIMIT_MAX);
        // Only events known to be durable: the writer may have applied
        // later batches whose sync is still under way.
        let head = self.last_event_seq();
        if after >= head {
            return Ok(Vec::new());
        }
        let txn = self.inner.view.current();
        let events = txn.open_table(storage::EVENTS)?;
        let mut items = Vec::with_capacity(limit);
        for entry in events.range(after + 1..=head)?.take(limit) {
            let (seq, bytes) = entry?;
            items.push(storage::decode_event(seq.value(), bytes.value())?);
        }
        Ok(items)
    }

    /// The sequence number of the last committed event (0 for none).
    pub fn last_event_seq(&self) -> u64 {
        *self.inner.head.borrow()
    }

    /// A consumer's saved position in the event log (0 when it has none).
    pub fn consumer_position(&self, consumer: &str) -> Result<u64, Error> {
        outbox::validate_consumer_name(consumer)?;
        let txn = self.inner.view.current();
        let positions = txn.open_table(storage::CONSUMER_POSITIONS)?;
        Ok(positions.get(consumer)?.map_or(0, |seq| seq.value()))
    }

    /// Saves a consumer's position: the last `seq` it has fully handled.
    pub fn save_consumer_position(&self, consumer: &str, seq: u64) -> Pending<()> {
        let consumer = consumer.to_owned();
        self.submit(|reply| {
            Command::Outbox(OutboxCommand::SavePosition {
                consumer,
                seq,
                reply,
            })
        })
    }

    /// How many idempotency records (expired ones not yet purged
    /// included) have keys starting with `prefix`, counting at most `max`.
    pub fn idempotency_records_with_prefix(
        &self,
        prefix: &str,
        max: usize,
    ) -> Result<usize, Error> {
        let txn = self.inner.view.current();
        let table = txn.open_table(storage::IDEMPOTENCY)?;
        let mut count = 0;
        for entry in table.range(prefix..)? {
            if count == max || !entry?.0.value().starts_with(prefix) {
                break;
            }
            count += 1;
        }
        Ok(count)
    }

    /// A saved idempotency record (an opaque value, e.g. the first answer to
    /// a request with an `Idempotency-Key`), unless it has expired.
    pub fn idempotency_record(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        idempotency::validate_idempotency_key(key)?;
        let txn = self.inner.view.current();
        let records = txn.open_table(storage::IDEMPOTENCY)?;
        let Some(bytes) = records.get(key)? else {
            return Ok(None);
        };
        let (expires_at, value) = storage::decode_idempotency(bytes.value())?;
        Ok((expires_at > self.inner.config.clock.now()).then_some(value))
    }

    /// Saves an idempotency record for `ttl`, replacing any record with the
    /// same key. The writer deletes it once it expires.
    pub fn save_idempotency_record(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Pending<()> {
        let key = key.to_owned();
        let expires_at = self.inner.config.clock.now().plus(ttl);
        self.submit(|reply| {
            Command::Idempotency(IdempotencyCommand::Save {
                key,
                value,
                expires_at,
                reply,
            })
        })
    }

    /// An order by id.
    pub fn order(&self, order_id: OrderId) -> Result<Option<Order>, Error> {
        let txn = self.inner.view.current();
        let orders = txn.open_table(storage::ORDERS)?;
        storage::read_order(&orders, order_id, self.currency())
    }

    /// A user's orders, newest first, older than `before`. `limit` is
    /// clamped to 1..=[`PAGE_LIMIT_MAX`].
    pub fn orders_of_user(
        &self,
        user_id: &str,
        before: Option<OrderId>,
        limit: usize,
    ) -> Result<OrderPage, Error> {
        orders::validate_user_id(user_id)?;
        let limit = limit.clamp(1, PAGE_LIMIT_MAX);
        let txn = self.inner.view.current();
        let index = txn.open_table(storage::ORDERS_BY_USER)?;
        let orders = txn.open_table(storage::ORDERS)?;
        let end = before.map_or(u128::MAX, |id| id.as_u128().saturating_sub(1));
        let mut items = Vec::with_capacity(limit);
        let mut more = false;
        if before.is_none_or(|id| id.as_u128() > 0) {
            for entry in index.range((user_id, 0)..=(user_id, end))?.rev() {
                let id = OrderId::from_u128(entry?.0.value().1);
                if items.len() == limit {
                    more = true;
                    break;
                }
                let order =
                    storage::read_order(&orders, id, self.currency())?.ok_or_else(|| {
                        Error::corrupt("orders_by_user", format!("order {id} is missing"))
                    })?;
                items.push(order);
            }
        }
        let next_before = if more {
            items.last().map(|order| order.id)
        } else {
            None
        };
        Ok(OrderPage { items, next_before })
    }

    /// Every order, newest first, older than `before`, and only those in
    /// `status` when it is given. `limit` is clamped to
    /// 1..=[`PAGE_LIMIT_MAX`]. A filtered page reads at most
    /// [`ORDERS_SCANNED_MAX`] orders (there is no index by status): a page
    /// that stopped there may hold fewer than `limit` orders and still have
    /// a `next_before`.
    pub fn orders(
        &self,
        before: Option<OrderId>,
        status: Option<orders::OrderStatus>,
        limit: usize,
    ) -> Result<OrderPage, Error> {
        let limit = limit.clamp(1, PAGE_LIMIT_MAX);
        let txn = self.inner.view.current();
        let table = txn.open_table(storage::ORDERS)?;
        let end = before.map_or(u128::MAX, |id| id.as_u128().saturating_sub(1));
        let mut items = Vec::with_capacity(limit);
        let mut next_before = None;
        let mut scanned = 0;
        let mut last_read = None;
        if before.is_none_or(|id| id.as_u128() > 0) {
            for entry in table.range(0..=end)?.rev() {
                let id = OrderId::from_u128(entry?.0.value());
                if items.len() == limit || scanned == ORDERS_SCANNED_MAX {
                    // More exist: the next page starts below the last order
                    // read, matching or not.
                    next_before = last_read;
                    break;
                }
                scanned += 1;
                last_read = Some(id);
                let order = storage::read_order(&table, id, self.currency())?
                    .ok_or_else(|| Error::corrupt("orders", format!("order {id} vanished")))?;
                if status.is_none_or(|status| order.status == status) {
                    items.push(order);
                }
            }
        }
        Ok(OrderPage { items, next_before })
    }

    /// Active reservations, the soonest to expire first, of `product_id`
    /// when given (every product's otherwise): at most `limit` (clamped to
    /// 1..=[`PAGE_LIMIT_MAX`]), from at most [`RESERVATIONS_SCANNED_MAX`]
    /// read in deadline order.
    pub fn active_reservations(
        &self,
        product_id: Option<ProductId>,
        limit: usize,
    ) -> Result<Vec<Reservation>, Error> {
        let limit = limit.clamp(1, PAGE_LIMIT_MAX);
        let txn = self.inner.view.current();
        let deadlines = txn.open_table(storage::RESERVATION_DEADLINES)?;
        let reservations = txn.open_table(storage::RESERVATIONS)?;
        let mut items = Vec::new();
        for entry in deadlines.iter()?.take(RESERVATIONS_SCANNED_MAX) {
            let order_id = OrderId::from_u128(entry?.0.value().1);
            let Some(reservation) = storage::read_reservation(&reservations, order_id)? else {
                return Err(Error::corrupt(
                    "reservation_deadlines",
                    format!("the reservation of order {order_id} is missing"),
                ));
            };
            if product_id.is_none_or(|product_id| {
                reservation
                    .items
                    .iter()
                    .any(|line| line.product_id == product_id)
            }) {
                items.push(reservation);
                if items.len() == limit {
                    break;
                }
            }
        }
        Ok(items)
    }

    /// An order's saga log, in order. Empty for an unknown order.
    pub fn saga(&self, order_id: OrderId) -> Result<Vec<SagaEntry>, Error> {
        let txn = self.inner.view.current();
        let log = txn.open_table(storage::SAGA_LOG)?;
        let key = order_id.as_u128();
        let mut entries = Vec::new();
        for entry in log.range((key, 0)..=(key, u32::MAX))? {
            let (_, bytes) = entry?;
            entries.push(storage::decode_saga(bytes.value())?);
        }
        Ok(entries)
    }

    /// A payment by id.
    pub fn payment(&self, payment_id: PaymentId) -> Result<Option<Payment>, Error> {
        let txn = self.inner.view.current();
        let payments = txn.open_table(storage::PAYMENTS)?;
        storage::read_payment(&payments, payment_id, self.currency())
    }

    /// An order's payment, if one was started.
    pub fn payment_of_order(&self, order_id: OrderId) -> Result<Option<Payment>, Error> {
        let txn = self.inner.view.current();
        let index = txn.open_table(storage::PAYMENTS_BY_ORDER)?;
        let Some(payment_id) = index.get(order_id.as_u128())?.map(|id| id.value()) else {
            return Ok(None);
        };
        let payments = txn.open_table(storage::PAYMENTS)?;
        storage::read_payment(&payments, PaymentId::from_u128(payment_id), self.currency())
    }

    /// Places an order: prices its lines from the catalog, reserves its
    /// stock and starts its saga in one transaction. Answers the order
    /// `AWAITING_PAYMENT` (its payment pending, for the saga runner to
    /// take), or `CANCELLED` with `failure_reason` `insufficient_stock` and
    /// nothing reserved. An unknown or archived product is
    /// [`Error::ProductNotFound`] and changes nothing.
    pub fn place_order(&self, order: NewOrder) -> Pending<Order> {
        self.write(Write::place_order(order))
    }

    /// Applies what the gateway said about a payment: confirms the order
    /// and commits its stock, or fails it and releases its stock. Applied
    /// once per webhook event id; an outcome for a payment already decided
    /// changes nothing, except a success after the order ended, which is
    /// recorded for a refund.
    pub fn record_payment_result(&self, result: PaymentResult) -> Pending<Payment> {
        self.write(Write::record_payment_result(result))
    }

    /// Cancels an order: from `PENDING` or `AWAITING_PAYMENT` its stock is
    /// released and a pending payment voided; from `CONFIRMED` its
    /// quantities go back to `on_hand` and its payment is to be refunded.
    /// Otherwise [`Error::InvalidOrderState`]. Cancelling a cancelled order
    /// answers it as it is.
    pub fn cancel_order(&self, order_id: OrderId) -> Pending<Order> {
        self.write(Write::cancel_order(order_id))
    }

    /// `CONFIRMED` to `SHIPPED`.
    pub fn ship_order(
        &self,
        order_id: OrderId,
        carrier: Option<String>,
        tracking_number: Option<String>,
    ) -> Pending<Order> {
        self.write(Write::ship_order(order_id, carrier, tracking_number))
    }

    /// `SHIPPED` to `DELIVERED`.
    pub fn deliver_order(&self, order_id: OrderId) -> Pending<Order> {
        self.write(Write::deliver_order(order_id))
    }

    /// Records that the gateway refunded `amount` of a payment. Refused
    /// beyond what is left ([`Error::RefundExceedsCaptured`]) and for a
    /// payment never captured.
    pub fn record_refund(&self, payment_id: PaymentId, amount: Decimal) -> Pending<Payment> {
        self.write(Write::record_refund(payment_id, amount))
    }

    /// The number of the last durable write-ahead log record (0 for none):
    /// on a follower, the last record applied. Replication's position.
    pub fn last_lsn(&self) -> u64 {
        *self.inner.lsn_head.borrow()
    }

    /// A watch of [`Engine::last_lsn`], for a publisher or a reader that
    /// waits for a position.
    pub fn watch_lsn(&self) -> watch::Receiver<u64> {
        self.inner.lsn_head.clone()
    }

    /// True while this engine takes no writes of its own: a follower, or
    /// a primary deposed by [`Engine::fence`].
    pub fn is_read_only(&self) -> bool {
        self.inner.role.refusal().is_some()
    }

    /// True for a follower (not yet promoted).
    pub fn is_follower(&self) -> bool {
        self.inner.role.is_follower()
    }

    /// Why writes are refused after a fencing, once fenced.
    pub fn fenced(&self) -> Option<String> {
        self.inner.role.fenced()
    }

    /// Records where the primary is (its advertised URL), which a refused
    /// write names ([`Error::NotPrimary`]).
    pub fn set_primary_hint(&self, primary: Option<String>) {
        self.inner.role.set_primary(primary);
    }

    /// Refuses writes ([`Error::NotPrimary`] with `reason`) until
    /// [`Engine::release_writes`]: a primary's publisher holds them at
    /// start until it has checked that the replicated log is still its
    /// own, so that a deposed primary restarting acknowledges nothing.
    pub fn hold_writes(&self, reason: impl Into<String>) {
        self.inner.role.hold(Some(reason.into()));
    }

    /// Ends [`Engine::hold_writes`].
    pub fn release_writes(&self) {
        self.inner.role.hold(None);
    }

    /// Where the primary is, as last recorded by
    /// [`Engine::set_primary_hint`].
    pub fn primary_hint(&self) -> Option<String> {
        self.inner.role.primary()
    }

    /// Stops taking writes for good: another primary took over (its
    /// publisher found the replicated log moved on without it). Every later
    /// write answers [`Error::NotPrimary`] with `reason`. Reads go on.
    pub fn fence(&self, reason: impl Into<String>) {
        let reason = reason.into();
        tracing::error!(%reason, "fenced: this primary takes no more writes");
        self.inner.role.fence(reason);
    }

    /// Synchronous replication ([`EngineConfig::replication_sync`]): where
    /// synced batches wait for their records to be replicated. The
    /// publisher takes it once (`None` after, or without sync replication),
    /// and must release every batch, in order, once its records are
    /// replicated; until then its callers wait and reads do not see it.
    pub fn take_replication_gate(&self) -> Option<crate::replication::ReplicationGate> {
        self.inner
            .gate
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take()
    }

    /// Hands the gate back (a publisher that stops, for the next one).
    pub fn return_replication_gate(&self, gate: crate::replication::ReplicationGate) {
        *self
            .inner
            .gate
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(gate);
    }

    /// Up to `limit` kept log records numbered above `after`, in order
    /// (a primary with [`ReplicationRole::Primary`]): what a publisher
    /// ships. Only durable records. `limit` is clamped to 1..=[`PAGE_LIMIT_MAX`].
    pub fn replication_records_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ReplicaRecord>, Error> {
        let limit = limit.clamp(1, PAGE_LIMIT_MAX);
        let txn = self.inner.view.current();
        let table = txn.open_table(storage::REPLICATION_LOG)?;
        let mut records = Vec::new();
        for entry in table.range(after.saturating_add(1)..)?.take(limit) {
            let (lsn, payload) = entry?;
            records.push(ReplicaRecord {
                lsn: lsn.value(),
                payload: payload.value().to_vec(),
            });
        }
        Ok(records)
    }

    /// The first kept log record's number, if any.
    pub fn first_kept_lsn(&self) -> Result<Option<u64>, Error> {
        let txn = self.inner.view.current();
        let table = txn.open_table(storage::REPLICATION_LOG)?;
        Ok(table.first()?.map(|(lsn, _)| lsn.value()))
    }

    /// Removes kept records numbered `upto` or less, once shipped (at most
    /// 16,384 per call); answers how many went.
    pub fn trim_replication_log(&self, upto: u64) -> Pending<u64> {
        self.submit(|reply| Command::Replication(ReplicationCommand::Trim { upto, reply }))
    }

    /// A consistent copy of the store as of the last durable record, for
    /// a follower to start from. Holds the whole store in memory.
    pub fn replication_snapshot(&self) -> Result<ReplicaSnapshot, Error> {
        let txn = self.inner.view.current();
        let lsn = {
            let meta = txn.open_table(storage::META)?;
            match meta.get(crate::wal::META_LOG_LSN)? {
                Some(bytes) => <[u8; 8]>::try_from(bytes.value())
                    .map(u64::from_le_bytes)
                    .map_err(|_| Error::corrupt("meta", "log_lsn"))?,
                None => 0,
            }
        };
        let payload = crate::wal::dump(&txn)?;
        Ok(ReplicaSnapshot {
            lsn,
            currency: self.currency().to_owned(),
            payload,
        })
    }

    /// Starts an empty follower from `snapshot`, or replaces the store of
    /// a follower behind it (whose next records its primary no longer
    /// keeps): every replicated table becomes the snapshot's, as if it had
    /// applied every record up to it. Made durable at once. A snapshot not
    /// past a non-empty follower's last record is refused
    /// ([`Error::Conflict`]).
    pub fn bootstrap_follower(&self, snapshot: ReplicaSnapshot) -> Pending<()> {
        self.submit(|reply| Command::Replication(ReplicationCommand::Bootstrap { snapshot, reply }))
    }

    /// Applies a primary's record on a follower, in order: a record already
    /// applied answers at once; one that does not follow the last applied
    /// is refused ([`Error::Conflict`]). Answers once the record is durable
    /// here and visible to reads.
    pub fn apply_replicated(&self, record: ReplicaRecord) -> Pending<()> {
        self.submit(|reply| Command::Replication(ReplicationCommand::Apply { record, reply }))
    }

    /// Makes a follower the primary: once every record sent before is
    /// applied, the writer reloads its state from the store and takes
    /// writes, keeping its records for a publisher. Answers the last
    /// record's number. The caller makes sure the follower has every
    /// record the old primary published (see ARCHITECTURE.md, "Failover").
    pub fn promote(&self) -> Pending<u64> {
        let role = self.inner.role.clone();
        let pending =
            self.submit(|reply| Command::Replication(ReplicationCommand::Promote { reply }));
        // Shop writes sent from now on queue behind the promotion.
        role.set_follower(false);
        pending
    }

    /// Follows the event log as `consumer`, from its saved position.
    pub fn subscribe(&self, consumer: &str) -> Result<Subscription, Error> {
        let position = self.consumer_position(consumer)?;
        Ok(Subscription::new(
            self.clone(),
            consumer.to_owned(),
            position,
            self.inner.head.clone(),
        ))
    }

    /// Follows the event log from the events with `seq > after`, for a
    /// consumer that keeps its position itself, beside its own effects (the
    /// search index keeps it in its own commits, so its documents and its
    /// position cannot disagree). [`Subscription::ack`] still saves the
    /// position as `consumer`'s. An `after` past the end of the log is
    /// refused: the events it would skip do not exist yet.
    pub fn subscribe_after(&self, consumer: &str, after: u64) -> Result<Subscription, Error> {
        outbox::validate_consumer_name(consumer)?;
        let head = self.last_event_seq();
        if after > head {
            return Err(Error::invalid("after", format!("the log ends at {head}")));
        }
        Ok(Subscription::new(
            self.clone(),
            consumer.to_owned(),
            after,
            self.inner.head.clone(),
        ))
    }
}

/// A write, built but not yet sent: one constructor per kind of write,
/// sent with [`Engine::write`].
#[must_use = "a Write does nothing until it is sent with Engine::write"]
pub struct Write<T> {
    command: Box<dyn FnOnce(writer::Reply<T>) -> Command + Send>,
    record: Option<writer::Record<T>>,
}

impl<T> Write<T> {
    fn new(command: impl FnOnce(writer::Reply<T>) -> Command + Send + 'static) -> Write<T> {
        Write {
            command: Box::new(command),
            record: None,
        }
    }

    /// Also saves an idempotency record under `key` for `ttl`, rendered by
    /// `render` from this write's outcome (`None` saves nothing), in the
    /// same write transaction as the write itself: after a crash, either
    /// both the change and its record are there, or neither is. Read it
    /// back with [`Engine::idempotency_record`].
    pub fn remember(
        mut self,
        key: impl Into<String>,
        ttl: Duration,
        render: impl FnOnce(&Result<T, Error>) -> Option<Vec<u8>> + Send + 'static,
    ) -> Write<T> {
        self.record = Some(writer::Record {
            key: key.into(),
            ttl,
            render: Box::new(render),
        });
        self
    }
}

impl Write<Product> {
    /// See [`Engine::create_product`].
    pub fn create_product(product: NewProduct) -> Write<Product> {
        Write::new(|reply| Command::Catalog(CatalogCommand::Create { product, reply }))
    }

    /// See [`Engine::update_product`].
    pub fn update_product(product_id: ProductId, patch: ProductPatch) -> Write<Product> {
        Write::new(move |reply| {
            Command::Catalog(CatalogCommand::Update {
                product_id,
                patch,
                reply,
            })
        })
    }
}

impl Write<Vec<Product>> {
    /// See [`Engine::import_products`].
    pub fn import_products(products: Vec<NewProduct>) -> Write<Vec<Product>> {
        Write::new(|reply| Command::Catalog(CatalogCommand::Import { products, reply }))
    }
}

impl Write<Upserted> {
    /// See [`Engine::upsert_products`].
    pub fn upsert_products(products: Vec<NewProduct>) -> Write<Upserted> {
        Write::new(|reply| Command::Catalog(CatalogCommand::Upsert { products, reply }))
    }
}

impl Write<()> {
    /// See [`Engine::archive_product`].
    pub fn archive_product(product_id: ProductId) -> Write<()> {
        Write::new(move |reply| Command::Catalog(CatalogCommand::Archive { product_id, reply }))
    }
}

impl Write<Stock> {
    /// See [`Engine::set_stock`].
    pub fn set_stock(product_id: ProductId, on_hand: u64) -> Write<Stock> {
        Write::new(move |reply| {
            Command::Inventory(InventoryCommand::SetStock {
                product_id,
                on_hand,
                reply,
            })
        })
    }

    /// See [`Engine::adjust_stock`].
    pub fn adjust_stock(product_id: ProductId, delta: i64) -> Write<Stock> {
        Write::new(move |reply| {
            Command::Inventory(InventoryCommand::AdjustStock {
                product_id,
                delta,
                reply,
            })
        })
    }
}

impl Write<Reserved> {
    /// See [`Engine::reserve`].
    pub fn reserve(request: ReserveRequest) -> Write<Reserved> {
        Write::new(|reply| Command::Inventory(InventoryCommand::Reserve { request, reply }))
    }
}

impl Write<Reservation> {
    /// See [`Engine::commit_reservation`].
    pub fn commit_reservation(order_id: OrderId) -> Write<Reservation> {
        Write::new(move |reply| Command::Inventory(InventoryCommand::Commit { order_id, reply }))
    }

    /// See [`Engine::release_reservation`].
    pub fn release_reservation(order_id: OrderId) -> Write<Reservation> {
        Write::new(move |reply| Command::Inventory(InventoryCommand::Release { order_id, reply }))
    }
}

impl Write<Order> {
    /// See [`Engine::place_order`].
    pub fn place_order(order: NewOrder) -> Write<Order> {
        Write::new(|reply| Command::Orders(OrderCommand::Place { order, reply }))
    }

    /// See [`Engine::cancel_order`].
    pub fn cancel_order(order_id: OrderId) -> Write<Order> {
        Write::new(move |reply| Command::Orders(OrderCommand::Cancel { order_id, reply }))
    }

    /// See [`Engine::ship_order`].
    pub fn ship_order(
        order_id: OrderId,
        carrier: Option<String>,
        tracking_number: Option<String>,
    ) -> Write<Order> {
        Write::new(move |reply| {
            Command::Orders(OrderCommand::Ship {
                order_id,
                carrier,
                tracking_number,
                reply,
            })
        })
    }

    /// See [`Engine::deliver_order`].
    pub fn deliver_order(order_id: OrderId) -> Write<Order> {
        Write::new(move |reply| Command::Orders(OrderCommand::Deliver { order_id, reply }))
    }
}

impl Write<Payment> {
    /// See [`Engine::record_payment_result`].
    pub fn record_payment_result(result: PaymentResult) -> Write<Payment> {
        Write::new(|reply| Command::Orders(OrderCommand::PaymentResult { result, reply }))
    }

    /// The saga runner's report of a void at the gateway.
    pub(crate) fn voided_at_gateway(payment_id: PaymentId, details: String) -> Write<Payment> {
        Write::new(move |reply| {
            Command::Orders(OrderCommand::VoidedAtGateway {
                payment_id,
                details,
                reply,
            })
        })
    }

    /// See [`Engine::retry_notification`].
    pub fn retry_notification(id: crate::ids::NotificationId) -> Write<crate::Notification> {
        Write::new(move |reply| {
            Command::Notifications(crate::notifications::writes::NotificationCommand::Retry {
                id,
                reply,
            })
        })
    }

    /// See [`Engine::record_refund`].
    pub fn record_refund(payment_id: PaymentId, amount: Decimal) -> Write<Payment> {
        Write::new(move |reply| {
            Command::Orders(OrderCommand::Refunded {
                payment_id,
                amount,
                reply,
            })
        })
    }
}

/// Carts: what a customer means to buy. A cart stores product ids and
/// quantities; every answer prices it at the catalog's current prices, and
/// leaves out the lines of products archived since they were added.
impl Engine {
    /// Creates an empty cart for `user_id`. Refused ([`Error::InvalidInput`]
    /// naming `user_id`) when the user already holds
    /// [`CARTS_PER_USER_MAX`](crate::CARTS_PER_USER_MAX) carts.
    pub fn create_cart(&self, user_id: UserId) -> Pending<Cart> {
        self.write(Write::create_cart(user_id))
    }

    /// Sets how many units of a product the cart holds; 0 removes the line.
    /// The product must be live ([`Error::ProductNotFound`] otherwise),
    /// except to remove its line.
    pub fn set_cart_quantity(
        &self,
        cart_id: CartId,
        product_id: ProductId,
        quantity: u64,
    ) -> Pending<Cart> {
        self.write(Write::set_cart_quantity(cart_id, product_id, quantity))
    }

    /// Removes a product's line from the cart; a cart without that line is
    /// answered as it is.
    pub fn remove_cart_line(&self, cart_id: CartId, product_id: ProductId) -> Pending<Cart> {
        self.write(Write::remove_cart_line(cart_id, product_id))
    }

    /// Empties a cart (once an order placed from it is confirmed).
    /// Idempotent.
    pub fn clear_cart(&self, cart_id: CartId) -> Pending<Cart> {
        self.write(Write::clear_cart(cart_id))
    }

    /// A cart, priced now; `None` when unknown (or removed after
    /// [`EngineConfig::cart_ttl`] unchanged).
    pub fn cart(&self, cart_id: CartId) -> Result<Option<Cart>, Error> {
        let txn = self.inner.view.current();
        let carts = txn.open_table(storage::CARTS)?;
        let Some(cart) = storage::read_cart(&carts, cart_id)? else {
            return Ok(None);
        };
        let products = txn.open_table(storage::PRODUCTS)?;
        self.price_cart(&cart, &products).map(Some)
    }

    /// Every cart of a user (at most
    /// [`CARTS_PER_USER_MAX`](crate::CARTS_PER_USER_MAX)), oldest first,
    /// priced now.
    pub fn carts_of_user(&self, user_id: &UserId) -> Result<Vec<Cart>, Error> {
        let txn = self.inner.view.current();
        let index = txn.open_table(storage::CARTS_BY_USER)?;
        let carts = txn.open_table(storage::CARTS)?;
        let products = txn.open_table(storage::PRODUCTS)?;
        let user = user_id.as_str();
        let mut found = Vec::new();
        for entry in index.range((user, 0)..=(user, u128::MAX))? {
            let cart_id = CartId::from_u128(entry?.0.value().1);
            let cart = storage::read_cart(&carts, cart_id)?.ok_or_else(|| {
                Error::corrupt("carts_by_user", format!("cart {cart_id} is missing"))
            })?;
            found.push(self.price_cart(&cart, &products)?);
        }
        Ok(found)
    }

    fn price_cart(
        &self,
        cart: &StoredCart,
        products: &impl ReadableTable<u64, &'static [u8]>,
    ) -> Result<Cart, Error> {
        carts::price(cart, self.currency(), |product_id| {
            Ok(storage::read_product(products, product_id)?
                .filter(|product| !product.archived)
                .map(|product| product.fields.price))
        })
    }
}

impl Write<Cart> {
    /// See [`Engine::create_cart`].
    pub fn create_cart(user_id: UserId) -> Write<Cart> {
        Write::new(|reply| Command::Cart(CartCommand::Create { user_id, reply }))
    }

    /// See [`Engine::set_cart_quantity`].
    pub fn set_cart_quantity(cart_id: CartId, product_id: ProductId, quantity: u64) -> Write<Cart> {
        Write::new(move |reply| {
            Command::Cart(CartCommand::SetQuantity {
                cart_id,
                product_id,
                quantity,
                reply,
            })
        })
    }

    /// See [`Engine::remove_cart_line`].
    pub fn remove_cart_line(cart_id: CartId, product_id: ProductId) -> Write<Cart> {
        Write::new(move |reply| {
            Command::Cart(CartCommand::RemoveLine {
                cart_id,
                product_id,
                reply,
            })
        })
    }

    /// See [`Engine::clear_cart`].
    pub fn clear_cart(cart_id: CartId) -> Write<Cart> {
        Write::new(move |reply| Command::Cart(CartCommand::Clear { cart_id, reply }))
    }
}
