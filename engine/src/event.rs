//! The event log's entries.
//!
//! Every state change appends its events to the outbox table in the same
//! write transaction as the change, under a gapless sequence number starting
//! at 1. Consumers read from their own persisted position (see
//! [`Subscription`](crate::Subscription)).

use serde::{Deserialize, Serialize};

use crate::ids::{OrderId, ProductId, ReservationId, Timestamp};
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
            | Event::ReservationExpired { items, .. } => {
                items.iter().map(|line| line.product_id).collect()
            }
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
