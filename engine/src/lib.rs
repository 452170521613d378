//! Mercato's transactional core: catalog, carts, stock, reservations that
//! expire, and a durable, ordered event log, over one embedded redb file.
//!
//! One writer thread owns every write. Calls become commands on a bounded
//! queue; the writer applies everything queued in one write transaction,
//! commits once (group commit), then answers each caller. Reads use their
//! own read transactions and never wait for the writer.
//!
//! ```no_run
//! use mercato_engine::{Engine, EngineConfig, NewProduct, OrderId, ReservationLine, ReserveRequest};
//!
//! # fn main() -> Result<(), mercato_engine::Error> {
//! let engine = Engine::open(EngineConfig::new("./data/db"))?;
//! let product = engine
//!     .create_product(NewProduct {
//!         name: "Espresso cup".into(),
//!         price: "12.50".parse().unwrap(),
//!         on_hand: 40,
//!         ..NewProduct::default()
//!     })
//!     .wait()?;
//! let order_id = OrderId(uuid::Uuid::now_v7());
//! let held = engine
//!     .reserve(ReserveRequest {
//!         order_id,
//!         items: vec![ReservationLine { product_id: product.id, quantity: 2 }],
//!         ttl: None,
//!     })
//!     .wait()?;
//! assert!(held.created);
//! engine.commit_reservation(order_id).wait()?;
//! assert_eq!(engine.stock(product.id)?.unwrap().on_hand, 38);
//! engine.shutdown();
//! # Ok(())
//! # }
//! ```

mod carts;
mod catalog;
mod check;
mod clock;
mod codec;
mod config;
mod engine;
mod error;
mod event;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod idempotency;
mod ids;
mod inventory;
mod log_storage;
mod notifications;
mod observer;
mod orders;
mod outbox;
mod payments;
mod replication;
mod retention;
mod storage;
mod store;
mod subscription;
mod view;
mod wal;
mod writer;

pub use carts::{CART_LINES_MAX, CART_QUANTITY_MAX, CARTS_PER_USER_MAX, Cart, CartLine};
pub use catalog::{
    IMPORT_PRODUCTS_MAX, LOW_STOCK_THRESHOLD_DEFAULT, LOW_STOCK_THRESHOLD_MAX, NewProduct,
    PRODUCT_ATTRIBUTE_KEY_LENGTH_MAX, PRODUCT_ATTRIBUTE_VALUE_LENGTH_MAX, PRODUCT_ATTRIBUTES_MAX,
    PRODUCT_DESCRIPTION_LENGTH_MAX, PRODUCT_LABEL_LENGTH_MAX, PRODUCT_NAME_LENGTH_MAX,
    PRODUCT_PRICE_MAX, PRODUCT_PRICE_SCALE_MAX, PRODUCT_SKU_LENGTH_MAX, Page, Product,
    ProductPatch, Upserted,
};
pub use check::CheckReport;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{CART_TTL_MAX, Durability, EngineConfig, LOG_SEGMENT_BYTES_MIN, ReplicationRole};
pub use engine::{
    DATABASE_FILE_NAME, Engine, ORDERS_SCANNED_MAX, PAGE_LIMIT_MAX, Pending,
    RESERVATIONS_SCANNED_MAX, Write,
};
pub use error::Error;
pub use event::{Event, EventEnvelope};
pub use ids::{
    CartId, NotificationId, OrderId, PaymentId, ProductId, ReservationId, Timestamp,
    USER_ID_LENGTH_MAX, UserId,
};
pub use inventory::{
    ON_HAND_MAX, RESERVATION_LINES_MAX, RESERVATION_QUANTITY_MAX, Reservation, ReservationLine,
    ReservationStatus, ReserveRequest, Reserved, Stock,
};
pub use log_storage::{LogDirectory, LogFile, LogStorage};
pub use notifications::{
    DeliveryAttempt, NOTIFICATION_ATTEMPTS_KEPT_MAX, NOTIFICATION_ATTEMPTS_MAX,
    NOTIFICATION_BODY_LENGTH_MAX, NOTIFICATION_ERROR_LENGTH_MAX, NOTIFICATION_SUBJECT_LENGTH_MAX,
    Notification, NotificationChannel, NotificationFilter, NotificationKind, NotificationObserver,
    NotificationPage, NotificationStatus, Notifications, NotificationsConfig, Notifier,
    NotifyError, NotifyFuture, TemplateError, Templates,
};
pub use observer::{BatchReport, LogSyncReport, WriterObserver};
pub use orders::saga::{Checkout, CheckoutConfig};
pub use orders::{
    NewOrder, ORDER_LINES_MAX, ORDER_TEXT_LENGTH_MAX, Order, OrderLine, OrderPage, OrderStatus,
    PAYMENT_TOKEN_LENGTH_MAX, Payment, PaymentResult, PaymentStatus, SagaEntry, SagaStatus,
};
pub use payments::gateway::{
    ChargeOutcome, ChargeRequest, GATEWAY_IDEMPOTENCY_KEY_LENGTH_MAX, GatewayError, GatewayFuture,
    PaymentGateway, RefundOutcome, RefundRequest, VoidOutcome, VoidRequest, WebhookError,
    WebhookEvent, WebhookOutcome, WebhookSink,
};
pub use payments::retry::{RETRY_ATTEMPTS_MAX, RetryPolicy, call_with_retries};
pub use payments::signature::{
    SIGNATURE_HEADER, SIGNATURE_TOLERANCE, SignatureError, WebhookSecret,
};
pub use payments::simulated::{
    ChargeStatus, SimulatedCharge, SimulatedGateway, SimulatedGatewayConfig,
};
#[cfg(feature = "nats")]
pub use replication::nats;
pub use replication::{GatedBatch, ReplicaRecord, ReplicaSnapshot, ReplicationGate};
pub use subscription::Subscription;
pub use wal::{LogLoss, RecoveryReport};

/// Re-exported so embedders name the same versions the engine uses.
pub use redb::StorageBackend;
pub use redb::backends::{FileBackend, InMemoryBackend};
pub use rust_decimal::Decimal;
pub use uuid::Uuid;
