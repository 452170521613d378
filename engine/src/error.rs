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

use crate::ids::{OrderId, ProductId};

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
    /// The same key (an order id) was used before with a different request.
    #[error("{0}")]
    Conflict(String),
    /// The writer's queue is full. Retry after a short pause.
    #[error("the writer's queue is full")]
    Overloaded,
    /// The engine is shutting down and takes no more writes.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// The store failed or holds data this build cannot read. Nothing of the
    /// failed batch was applied.
    #[error("storage failure: {0}")]
    Storage(String),
}

impl Error {
    /// A stable snake_case code for this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidInput { .. } => "invalid_request",
            Error::ProductNotFound(_) | Error::ReservationNotFound(_) => "not_found",
            Error::ProductExists(_) | Error::Conflict(_) => "conflict",
            Error::InsufficientStock { .. } => "insufficient_stock",
            Error::InvalidState { .. } | Error::BelowReserved { .. } => "invalid_state",
            Error::Overloaded => "overloaded",
            Error::ShuttingDown => "shutting_down",
            Error::Storage(_) => "internal",
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn corrupt(what: &str, message: impl std::fmt::Display) -> Error {
        Error::Storage(format!("unreadable {what} record: {message}"))
    }
}

macro_rules! storage_error_from {
    ($($source:ty),*) => {$(
        impl From<$source> for Error {
            fn from(error: $source) -> Error {
                Error::Storage(error.to_string())
            }
        }
    )*};
}

storage_error_from!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError,
    redb::SetDurabilityError,
    std::io::Error
);
