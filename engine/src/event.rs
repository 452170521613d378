//! The event log's entries.
//!
//! Every state change appends its events to the outbox table in the same
//! write transaction as the change, under a gapless sequence number starting
//! at 1. Consumers read from their own persisted position (see
//! [`Subscription`](crate::Subscription)).

use serde::{Deserialize, Serialize};

use rust_decimal::Decimal;

use crate::ids::{OrderId, PaymentId, ProductId, ReservationId, Timestamp};
use crate::inventory::ReservationLine;

/// Something that happened, with the ids it concerns and its figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// `product.created`
    ProductCreated {
        /// The new product.
        product_id: ProductId,
    },
    /// `product.updated`
    ProductUpdated {
        /// The changed product.
        product_id: ProductId,
    },
    /// `product.archived`
    ProductArchived {
        /// The archived product.
        product_id: ProductId,
    },
    /// `inventory.stock.updated`: stock was set or adjusted by hand.
    StockUpdated {
        /// The product.
        product_id: ProductId,
        /// Units on hand after the change.
        on_hand: u64,
        /// Units reserved.
        reserved: u64,
        /// `on_hand - reserved`.
        available: u64,
    },
    /// `inventory.reserved`
    InventoryReserved {
        /// The order the stock is held for.
        order_id: OrderId,
        /// The reservation.
        reservation_id: ReservationId,
        /// What is held.
        items: Vec<ReservationLine>,
        /// When the hold expires.
        expires_at: Timestamp,
    },
    /// `inventory.committed`
    InventoryCommitted {
        /// The order.
        order_id: OrderId,
        /// The reservation.
        reservation_id: ReservationId,
        /// What left stock.
        items: Vec<ReservationLine>,
    },
    /// `inventory.released`
    InventoryReleased {
        /// The order.
        order_id: OrderId,
        /// The reservation.
        reservation_id: ReservationId,
        /// What was given back.
        items: Vec<ReservationLine>,
    },
    /// `inventory.reservation.expired`
    ReservationExpired {
        /// The order.
        order_id: OrderId,
        /// The reservation.
        reservation_id: ReservationId,
        /// What was given back.
        items: Vec<ReservationLine>,
    },
    /// `inventory.stock.low`: available fell to or below the threshold.
    StockLow {
        /// The product.
        product_id: ProductId,
        /// Units available now.
        available: u64,
        /// The product's low-stock threshold.
        threshold: u64,
    },
    /// `inventory.stock.depleted`: available reached 0.
    StockDepleted {
        /// The product.
        product_id: ProductId,
    },
    /// `order.created`: an order was placed (reserved, or cancelled for
    /// want of stock: an `order.cancelled` follows then).
    OrderCreated {
        /// The order.
        order_id: OrderId,
        /// Whose it is.
        user_id: String,
        /// What was ordered.
        items: Vec<ReservationLine>,
        /// Its total at locked prices.
        total_amount: Decimal,
        /// The payment to take, when stock was reserved.
        payment_id: Option<PaymentId>,
    },
    /// `order.confirmed`: paid, stock committed.
    OrderConfirmed {
        /// The order.
        order_id: OrderId,
        /// Its payment.
        payment_id: PaymentId,
    },
    /// `order.failed`: the payment failed; the stock was released.
    OrderFailed {
        /// The order.
        order_id: OrderId,
        /// Why.
        reason: String,
    },
    /// `order.cancelled`
    OrderCancelled {
        /// The order.
        order_id: OrderId,
        /// Why: `insufficient_stock`, `reservation_expired`, or none when a
        /// person cancelled it.
        reason: Option<String>,
    },
    /// `order.shipped`
    OrderShipped {
        /// The order.
        order_id: OrderId,
        /// The carrier, if given.
        carrier: Option<String>,
        /// The tracking number, if given.
        tracking_number: Option<String>,
    },
    /// `order.delivered`
    OrderDelivered {
        /// The order.
        order_id: OrderId,
    },
    /// `payment.successful`: the charge was captured.
    PaymentSucceeded {
        /// The payment.
        payment_id: PaymentId,
        /// Its order.
        order_id: OrderId,
        /// What was captured.
        amount: Decimal,
    },
    /// `payment.failed`
    PaymentFailed {
        /// The payment.
        payment_id: PaymentId,
        /// Its order.
        order_id: OrderId,
        /// The gateway's reason.
        reason: String,
    },
    /// `payment.refunded`: money was given back (all or part).
    PaymentRefunded {
        /// The payment.
        payment_id: PaymentId,
        /// Its order.
        order_id: OrderId,
        /// What this refund gave back.
        amount: Decimal,
        /// Everything given back so far.
        refunded_amount: Decimal,
    },
}

impl Event {
    /// The event's type name, e.g. `inventory.reserved`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::ProductCreated { .. } => "product.created",
            Event::ProductUpdated { .. } => "product.updated",
            Event::ProductArchived { .. } => "product.archived",
            Event::StockUpdated { .. } => "inventory.stock.updated",
            Event::InventoryReserved { .. } => "inventory.reserved",
            Event::InventoryCommitted { .. } => "inventory.committed",
            Event::InventoryReleased { .. } => "inventory.released",
            Event::ReservationExpired { .. } => "inventory.reservation.expired",
            Event::StockLow { .. } => "inventory.stock.low",
            Event::StockDepleted { .. } => "inventory.stock.depleted",
            Event::OrderCreated { .. } => "order.created",
            Event::OrderConfirmed { .. } => "order.confirmed",
            Event::OrderFailed { .. } => "order.failed",
            Event::OrderCancelled { .. } => "order.cancelled",
            Event::OrderShipped { .. } => "order.shipped",
            Event::OrderDelivered { .. } => "order.delivered",
            Event::PaymentSucceeded { .. } => "payment.successful",
            Event::PaymentFailed { .. } => "payment.failed",
            Event::PaymentRefunded { .. } => "payment.refunded",
        }
    }

    /// The products this event concerns.
    pub fn product_ids(&self) -> Vec<ProductId> {
        match self {
            Event::ProductCreated { product_id }
            | Event::ProductUpdated { product_id }
            | Event::ProductArchived { product_id }
            | Event::StockUpdated { product_id, .. }
            | Event::StockLow { product_id, .. }
            | Event::StockDepleted { product_id } => vec![*product_id],
            Event::InventoryReserved { items, .. }
            | Event::InventoryCommitted { items, .. }
            | Event::InventoryReleased { items, .. }
            | Event::ReservationExpired { items, .. }
            | Event::OrderCreated { items, .. } => {
                items.iter().map(|line| line.product_id).collect()
            }
            Event::OrderConfirmed { .. }
            | Event::OrderFailed { .. }
            | Event::OrderCancelled { .. }
            | Event::OrderShipped { .. }
            | Event::OrderDelivered { .. }
            | Event::PaymentSucceeded { .. }
            | Event::PaymentFailed { .. }
            | Event::PaymentRefunded { .. } => Vec::new(),
        }
    }

    /// The order this event concerns, if any.
    pub fn order_id(&self) -> Option<OrderId> {
        match self {
            Event::InventoryReserved { order_id, .. }
            | Event::InventoryCommitted { order_id, .. }
            | Event::InventoryReleased { order_id, .. }
            | Event::ReservationExpired { order_id, .. }
            | Event::OrderCreated { order_id, .. }
            | Event::OrderConfirmed { order_id, .. }
            | Event::OrderFailed { order_id, .. }
            | Event::OrderCancelled { order_id, .. }
            | Event::OrderShipped { order_id, .. }
            | Event::OrderDelivered { order_id }
            | Event::PaymentSucceeded { order_id, .. }
            | Event::PaymentFailed { order_id, .. }
            | Event::PaymentRefunded { order_id, .. } => Some(*order_id),
            _ => None,
        }
    }
}

/// An event as stored in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventEnvelope {
    /// Its position in the log: 1, 2, 3, ... with no gaps, in commit order.
    pub seq: u64,
    /// When it was committed.
    pub created_at: Timestamp,
    /// What happened.
    pub event: Event,
}
