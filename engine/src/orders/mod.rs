//! Orders, their saga log and their payments: the revenue path.
//!
//! An order is placed by one writer command that prices its lines from the
//! catalog, reserves its stock and starts its saga log in one transaction
//! (so the seed plan's synchronous reservation step is atomic). The rest of
//! the saga (charging the payment, then confirming or compensating) is
//! driven from the event log by the saga runner, whose gateway calls happen
//! outside the writer and come back as commands ([`PaymentResult`] and
//! friends) that move the order, commit or release its reservation and
//! append the saga log in one transaction each.
//!
//! Every status change goes through [`OrderStatus::can_become`], the one
//! state machine of the contract.

pub(crate) mod saga;
pub(crate) mod writes;

use rust_decimal::Decimal;

use crate::error::Error;
use crate::ids::{CartId, OrderId, PaymentId, ProductId, Timestamp, UserId};
use crate::inventory::ReservationLine;
use crate::payments::gateway::ChargeOutcome;

/// The most lines one order may have (as a reservation).
pub const ORDER_LINES_MAX: usize = crate::inventory::RESERVATION_LINES_MAX;
/// The longest email, shipping address, carrier or tracking number, in bytes.
pub const ORDER_TEXT_LENGTH_MAX: usize = 1_024;
/// The longest payment token, in bytes.
pub const PAYMENT_TOKEN_LENGTH_MAX: usize = 255;

/// An order's status. Only the transitions of [`OrderStatus::can_become`]
/// happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OrderStatus {
    /// Created; its stock is being reserved (never seen outside a batch).
    Pending,
    /// Stock reserved; the payment is being taken.
    AwaitingPayment,
    /// Paid; its stock is committed.
    Confirmed,
    /// Handed to a carrier.
    Shipped,
    /// Delivered. Final.
    Delivered,
    /// Cancelled, by a person or by the saga (insufficient stock, the
    /// reservation expired). Final.
    Cancelled,
    /// The payment failed; the stock was released. Final.
    PaymentFailed,
}

impl OrderStatus {
    /// Every status, in the order an order may pass through them.
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::Pending,
        OrderStatus::AwaitingPayment,
        OrderStatus::Confirmed,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
        OrderStatus::PaymentFailed,
    ];

    /// The contract's name, e.g. `AWAITING_PAYMENT`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::AwaitingPayment => "AWAITING_PAYMENT",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::Delivered => "DELIVERED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::PaymentFailed => "PAYMENT_FAILED",
        }
    }

    /// True when nothing can happen to the order any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderStatus::Delivered | OrderStatus::Cancelled | OrderStatus::PaymentFailed
        )
    }

    /// The state machine: whether an order in `self` may become `next`.
    pub fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Pending, AwaitingPayment | Cancelled)
                | (AwaitingPayment, Confirmed | PaymentFailed | Cancelled)
                | (Confirmed, Shipped | Cancelled)
                | (Shipped, Delivered)
        )
    }

    pub(crate) fn to_u8(self) -> u8 {
        match self {
            OrderStatus::Pending => 0,
            OrderStatus::AwaitingPayment => 1,
            OrderStatus::Confirmed => 2,
            OrderStatus::Shipped => 3,
            OrderStatus::Delivered => 4,
            OrderStatus::Cancelled => 5,
            OrderStatus::PaymentFailed => 6,
        }
    }

    pub(crate) fn from_u8(byte: u8) -> Option<OrderStatus> {
        Some(match byte {
            0 => OrderStatus::Pending,
            1 => OrderStatus::AwaitingPayment,
            2 => OrderStatus::Confirmed,
            3 => OrderStatus::Shipped,
            4 => OrderStatus::Delivered,
            5 => OrderStatus::Cancelled,
            6 => OrderStatus::PaymentFailed,
            _ => return None,
        })
    }
}

/// One line of an order, its price locked when the order was placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderLine {
    /// The product.
    pub product_id: ProductId,
    /// How many.
    pub quantity: u64,
    /// The product's price when the order was placed.
    pub unit_price: Decimal,
}

/// An order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Order {
    /// The order's id (also its reservation's order id).
    pub id: OrderId,
    /// Whose it is.
    pub user_id: String,
    /// Where it stands.
    pub status: OrderStatus,
    /// What was ordered, at locked prices.
    pub items: Vec<OrderLine>,
    /// The sum of the lines.
    pub total_amount: Decimal,
    /// The store's currency.
    pub currency: String,
    /// Why it was cancelled or failed: `insufficient_stock`,
    /// `reservation_expired`, `card_declined`, ...
    pub failure_reason: Option<String>,
    /// Its payment, once one was started.
    pub payment_id: Option<PaymentId>,
    /// The customer's email, if given.
    pub email: Option<String>,
    /// Where to ship, if given.
    pub shipping_address: Option<String>,
    /// The cart it was ordered from, if any.
    pub cart_id: Option<CartId>,
    /// The carrier, once shipped.
    pub carrier: Option<String>,
    /// The tracking number, once shipped.
    pub tracking_number: Option<String>,
    /// When it was placed.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// A request to place an order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewOrder {
    /// The order's id; a new one is made when absent. Placing an order
    /// whose id exists answers the existing order when the request is the
    /// same, [`Error::Conflict`] otherwise.
    pub order_id: Option<OrderId>,
    /// Whose it is (a valid [`UserId`](crate::UserId): 1 to 255 characters,
    /// no control characters).
    pub user_id: String,
    /// What to order (the reservation rules: 1 to 100 lines, distinct
    /// products, quantity at least 1). Empty when ordering from a cart.
    pub items: Vec<ReservationLine>,
    /// Order the lines of this cart (the user's own) instead of `items`,
    /// at current prices; the cart is emptied once the order is confirmed.
    pub cart_id: Option<CartId>,
    /// The payment method's token, handed to the gateway.
    pub payment_token: String,
    /// The customer's email.
    pub email: Option<String>,
    /// Where to ship.
    pub shipping_address: Option<String>,
    /// How long the stock is held while the payment is taken; the
    /// engine's default reservation time-to-live when absent.
    pub ttl: Option<std::time::Duration>,
}

impl NewOrder {
    /// An order of `items` for `user_id`, paid with `payment_token`.
    pub fn new(
        user_id: impl Into<String>,
        items: Vec<ReservationLine>,
        payment_token: impl Into<String>,
    ) -> NewOrder {
        NewOrder {
            user_id: user_id.into(),
            items,
            payment_token: payment_token.into(),
            ..NewOrder::default()
        }
    }
}

/// A page of a user's orders, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OrderPage {
    /// The orders of this page.
    pub items: Vec<Order>,
    /// Pass as `before` for the next (older) page; `None` on the last.
    pub next_before: Option<OrderId>,
}

/// A payment's status, as the contract names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PaymentStatus {
    /// Sent to the gateway; no outcome yet.
    Pending,
    /// Captured.
    Succeeded,
    /// Refused by the gateway.
    Failed,
    /// Cancelled before it was captured.
    Voided,
    /// Everything captured was given back.
    Refunded,
    /// Part of what was captured was given back.
    PartiallyRefunded,
}

impl PaymentStatus {
    /// The contract's name, e.g. `partially_refunded`.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Voided => "voided",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
        }
    }

    /// True once money was captured (whatever was refunded since).
    pub fn was_captured(self) -> bool {
        matches!(
            self,
            PaymentStatus::Succeeded | PaymentStatus::Refunded | PaymentStatus::PartiallyRefunded
        )
    }

    pub(crate) fn to_u8(self) -> u8 {
        match self {
            PaymentStatus::Pending => 0,
            PaymentStatus::Succeeded => 1,
            PaymentStatus::Failed => 2,
            PaymentStatus::Voided => 3,
            PaymentStatus::Refunded => 4,
            PaymentStatus::PartiallyRefunded => 5,
        }
    }

    pub(crate) fn from_u8(byte: u8) -> Option<PaymentStatus> {
        Some(match byte {
            0 => PaymentStatus::Pending,
            1 => PaymentStatus::Succeeded,
            2 => PaymentStatus::Failed,
            3 => PaymentStatus::Voided,
            4 => PaymentStatus::Refunded,
            5 => PaymentStatus::PartiallyRefunded,
            _ => return None,
        })
    }
}

/// A payment of an order. At most one per order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Payment {
    /// The payment's id; also the idempotency key of its charge.
    pub id: PaymentId,
    /// The order it pays.
    pub order_id: OrderId,
    /// What is charged: the order's total.
    pub amount: Decimal,
    /// The store's currency.
    pub currency: String,
    /// Where it stands.
    pub status: PaymentStatus,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// What was given back so far.
    pub refunded_amount: Decimal,
    /// The token charged.
    pub token: String,
    /// The gateway's reference for the charge, once captured.
    pub provider_reference: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl Payment {
    /// What may still be refunded.
    pub fn refundable(&self) -> Decimal {
        if self.status.was_captured() {
            self.amount - self.refunded_amount
        } else {
            Decimal::ZERO
        }
    }
}

/// Whether a saga step started, completed or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SagaStatus {
    /// The step's intent is recorded (with the idempotency key of a call).
    Started,
    /// The step's effect is done.
    Completed,
    /// The step failed (the details say why).
    Failed,
}

impl SagaStatus {
    /// The contract's name: `STARTED`, `COMPLETED` or `FAILED`.
    pub fn as_str(self) -> &'static str {
        match self {
            SagaStatus::Started => "STARTED",
            SagaStatus::Completed => "COMPLETED",
            SagaStatus::Failed => "FAILED",
        }
    }

    pub(crate) fn from_u8(byte: u8) -> Option<SagaStatus> {
        Some(match byte {
            0 => SagaStatus::Started,
            1 => SagaStatus::Completed,
            2 => SagaStatus::Failed,
            _ => return None,
        })
    }

    pub(crate) fn to_u8(self) -> u8 {
        match self {
            SagaStatus::Started => 0,
            SagaStatus::Completed => 1,
            SagaStatus::Failed => 2,
        }
    }
}

/// One entry of an order's saga log, written in the same transaction as
/// the step's effect.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SagaEntry {
    /// `RESERVE_INVENTORY`, `PROCESS_PAYMENT`, `COMMIT_INVENTORY`,
    /// `RELEASE_INVENTORY`, `REFUND_PAYMENT`, `VOID_PAYMENT`, ...
    pub step_name: String,
    /// True for a compensation (undoing an earlier step).
    pub is_compensating: bool,
    /// Started, completed or failed.
    pub status: SagaStatus,
    /// What happened, for people: ids, amounts, reasons.
    pub details: String,
    /// When.
    pub created_at: Timestamp,
}

/// A payment outcome to apply: from the saga runner's call, or from a
/// verified gateway webhook (whose event id is applied at most once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentResult {
    /// The payment.
    pub payment_id: PaymentId,
    /// What the gateway said. `Succeeded` with an empty reference (a
    /// webhook that does not name the charge) keeps the reference recorded
    /// with `Pending`.
    pub outcome: ChargeOutcome,
    /// The webhook event's id, when the outcome came by webhook.
    pub webhook_event_id: Option<String>,
}

pub(crate) fn validate_new_order(order: &NewOrder) -> Result<(), Error> {
    validate_user_id(&order.user_id)?;
    if order.payment_token.is_empty() || order.payment_token.len() > PAYMENT_TOKEN_LENGTH_MAX {
        return Err(Error::invalid(
            "payment.token",
            format!("between 1 and {PAYMENT_TOKEN_LENGTH_MAX} bytes"),
        ));
    }
    for (field, text) in [
        ("email", &order.email),
        ("shipping_address", &order.shipping_address),
    ] {
        if let Some(text) = text {
            validate_text(field, text)?;
        }
    }
    Ok(())
}

/// A `user_id`: the engine's one rule ([`UserId::new`]).
pub(crate) fn validate_user_id(user_id: &str) -> Result<(), Error> {
    UserId::new(user_id).map(|_| ())
}

pub(crate) fn validate_text(field: &str, text: &str) -> Result<(), Error> {
    if text.len() > ORDER_TEXT_LENGTH_MAX {
        return Err(Error::invalid(
            field,
            format!("at most {ORDER_TEXT_LENGTH_MAX} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_statuses_go_nowhere_and_nothing_returns_to_pending() {
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                if from.is_final() {
                    assert!(!from.can_become(to), "{from:?} -> {to:?}");
                }
                if to == OrderStatus::Pending {
                    assert!(!from.can_become(to), "{from:?} -> {to:?}");
                }
                assert!(!from.can_become(from), "no self transition: {from:?}");
            }
        }
    }

    #[test]
    fn the_contracts_paths_are_allowed() {
        use OrderStatus::*;
        for (from, to) in [
            (Pending, AwaitingPayment),
            (Pending, Cancelled),
            (AwaitingPayment, Confirmed),
            (AwaitingPayment, PaymentFailed),
            (AwaitingPayment, Cancelled),
            (Confirmed, Shipped),
            (Confirmed, Cancelled),
            (Shipped, Delivered),
        ] {
            assert!(from.can_become(to), "{from:?} -> {to:?}");
        }
        assert!(
            !Shipped.can_become(Cancelled),
            "shipped orders are not cancelled"
        );
        assert!(!AwaitingPayment.can_become(Shipped));
    }

    #[test]
    fn statuses_round_trip_through_their_bytes() {
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::from_u8(status.to_u8()), Some(status));
        }
        assert_eq!(OrderStatus::from_u8(7), None);
    }
}
