//! The engine's errors.
//!
//! Business rejections (insufficient stock, a bad state transition, a
//! conflicting repeat) are ordinary values a caller handles; storage faults
//! are the `Storage` variant. Every error has a stable [`Error::code`] that
//! the HTTP layer maps to a status in one place.
//!
//! One enum rather than one per operation family: every operation shares most
//! failure modes (invalid input, overloaded, shutting down, storage), so
//! per-family enums would repeat them and callers would match the same codes
//! (see ARCHITECTURE.md).

use crate::ids::{CartId, NotificationId, OrderId, PaymentId, ProductId};
use crate::wal::LogLoss;

/// Everything an engine call can answer instead of success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument is out of range or malformed; `field` names it.
    #[error("invalid {field}: {message}")]
    InvalidInput {
        /// The offending field, e.g. `items[2].quantity`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// No such product, or it is archived.
    #[error("product {0} not found")]
    ProductNotFound(ProductId),
    /// A product with this id already exists (perhaps archived).
    #[error("product {0} already exists")]
    ProductExists(ProductId),
    /// No reservation is held for this order.
    #[error("no reservation for order {0}")]
    ReservationNotFound(OrderId),
    /// No such order.
    #[error("order {0} not found")]
    OrderNotFound(OrderId),
    /// No such payment.
    #[error("payment {0} not found")]
    PaymentNotFound(PaymentId),
    /// No such notification.
    #[error("notification {0} not found")]
    NotificationNotFound(NotificationId),
    /// The notification's status does not allow this (only a `failed`
    /// notification can be retried).
    #[error("notification {notification_id} is {status}")]
    InvalidNotificationState {
        /// The notification.
        notification_id: NotificationId,
        /// Its current status, e.g. `sent`.
        status: &'static str,
    },
    /// The order's status does not allow this (the contract's state machine).
    #[error("order {order_id} is {status}")]
    InvalidOrderState {
        /// The order.
        order_id: OrderId,
        /// Its current status, e.g. `SHIPPED`.
        status: &'static str,
    },
    /// The payment gateway refused or failed a call this request needed
    /// (after its retries); nothing was recorded. Retrying later (with the
    /// same idempotency key) is safe.
    #[error("payment gateway: {0}")]
    Gateway(String),
    /// A refund larger than what is left to refund.
    #[error("at most {refundable} can be refunded")]
    RefundExceedsCaptured {
        /// What is left to refund.
        refundable: rust_decimal::Decimal,
    },
    /// A reservation line cannot be met. Nothing was reserved.
    #[error(
        "insufficient stock for product {product_id}: requested {requested}, available {available}"
    )]
    InsufficientStock {
        /// The first product that could not be met.
        product_id: ProductId,
        /// How much the request asked for.
        requested: u64,
        /// How much was available.
        available: u64,
    },
    /// The reservation's current state does not allow this transition.
    #[error("reservation for order {order_id} is {state}")]
    InvalidState {
        /// The order whose reservation it is.
        order_id: OrderId,
        /// The reservation's current status, e.g. `committed`.
        state: &'static str,
    },
    /// Stock would fall below what active reservations hold.
    #[error(
        "product {product_id} has {reserved} reserved; on_hand cannot become {requested_on_hand}"
    )]
    BelowReserved {
        /// The product.
        product_id: ProductId,
        /// Units held by active reservations.
        reserved: u64,
        /// The on-hand figure the call would have produced.
        requested_on_hand: i128,
    },
    /// The same key (an order id) was used before with a different
    /// request, or the store's state rules a well-formed request out (no
    /// product id is left to assign).
    #[error("{0}")]
    Conflict(String),
    /// The writer's queue is full. Retry after a short pause.
    #[error("the writer's queue is full")]
    Overloaded,
    /// The engine is shutting down and takes no more writes.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// The store cannot take writes for now: the disk is full, or an I/O
    /// error made the engine close and reopen its store, which it does by
    /// itself once a write succeeds again. Reads keep working. A write
    /// refused while the store is unavailable was not applied. A write whose
    /// batch was in flight when the fault struck has an unknown outcome
    /// until the store is healthy again: retry it with the same idempotency
    /// key (or read it back) to learn the true outcome, which is never a
    /// second application.
    #[error("storage unavailable: {0}")]
    StorageUnavailable(String),
    /// The store holds data this build cannot read, or failed in a way the
    /// engine cannot recover from by itself. The outcome of the batch that
    /// met it is unknown until the store is healthy again (see
    /// [`Error::StorageUnavailable`] for how to learn it).
    #[error("storage failure: {0}")]
    Storage(String),
    /// The write-ahead log is damaged: opening would lose writes that were
    /// acknowledged. The store was not opened and nothing was changed. To
    /// keep every record before the damage and set the damaged segments
    /// aside, recover with `accept_loss` ([`Engine::recover`](crate::Engine::recover),
    /// `mercato recover --accept-loss`).
    #[error(
        "the write-ahead log is damaged: {0}. Opening would lose acknowledged writes, so the store \
         was not opened and nothing was changed. To keep every record before the damage and set \
         the damaged segments aside, run `mercato recover --accept-loss` (Engine::recover with \
         accept_loss)"
    )]
    LogDamaged(Box<LogLoss>),
    /// No such cart (it may have been removed after
    /// [`EngineConfig::cart_ttl`](crate::EngineConfig::cart_ttl) untouched).
    #[error("cart {0} not found")]
    CartNotFound(CartId),
    /// This engine takes no writes: it is a follower of another primary,
    /// or a primary that was deposed (fenced) because another one took
    /// over. Nothing was applied; send the write to the primary.
    #[error("not the primary: {reason}")]
    NotPrimary {
        /// Why (a follower, or deposed).
        reason: String,
        /// Where the primary is, when known (its advertised URL).
        primary: Option<String>,
    },
}

impl Error {
    /// A stable snake_case code for this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidInput { .. } => "invalid_request",
            Error::ProductNotFound(_)
            | Error::ReservationNotFound(_)
            | Error::OrderNotFound(_)
            | Error::PaymentNotFound(_)
            | Error::NotificationNotFound(_) => "not_found",
            Error::InvalidOrderState { .. } | Error::InvalidNotificationState { .. } => {
                "invalid_state"
            }
            Error::RefundExceedsCaptured { .. } => "refund_exceeds_captured",
            Error::Gateway(_) => "gateway_error",
            Error::ProductExists(_) | Error::Conflict(_) => "conflict",
            Error::InsufficientStock { .. } => "insufficient_stock",
            Error::InvalidState { .. } | Error::BelowReserved { .. } => "invalid_state",
            Error::Overloaded => "overloaded",
            Error::ShuttingDown => "shutting_down",
            Error::StorageUnavailable(_) => "storage_unavailable",
            Error::Storage(_) => "internal",
            Error::LogDamaged(_) => "log_damaged",
            Error::CartNotFound(_) => "not_found",
            Error::NotPrimary { .. } => "not_primary",
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// True for the errors that mean the store itself failed (and so the
    /// outcome of the batch that met it is unknown), as opposed to an
    /// answer about the request.
    pub fn is_storage_fault(&self) -> bool {
        matches!(self, Error::StorageUnavailable(_) | Error::Storage(_))
    }

    pub(crate) fn corrupt(what: &str, message: impl std::fmt::Display) -> Error {
        Error::Storage(format!("unreadable {what} record: {message}"))
    }
}

impl From<redb::Error> for Error {
    fn from(error: redb::Error) -> Error {
        match error {
            // redb latches an I/O error: the store must be closed and
            // reopened, which the writer does by itself.
            redb::Error::Io(_)
            | redb::Error::PreviousIo
            | redb::Error::DatabaseClosed
            | redb::Error::Backend(_) => Error::StorageUnavailable(error.to_string()),
            other => Error::Storage(other.to_string()),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Error {
        Error::StorageUnavailable(error.to_string())
    }
}

macro_rules! storage_error_from {
    ($($source:ty),*) => {$(
        impl From<$source> for Error {
            fn from(error: $source) -> Error {
                Error::from(redb::Error::from(error))
            }
        }
    )*};
}

storage_error_from!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError,
    redb::SetDurabilityError
);
