//! Entry points for the fuzz targets in `fuzz/`, compiled only with the
//! `fuzzing` feature: the decoders of the on-disk records are private to
//! the engine (they are the storage boundary), and reaching them through a
//! store would spend nearly every run in redb instead of in the decoders.
//!
//! Nothing here is part of the engine's API; it may change with any commit.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::carts::StoredCart;
use crate::catalog::ProductFields;
use crate::error::Error;
use crate::event::Event;
use crate::ids::UserId;
use crate::ids::{CartId, NotificationId, OrderId, PaymentId, ProductId, ReservationId, Timestamp};
use crate::inventory::{Reservation, ReservationLine, ReservationStatus};
use crate::notifications::{
    self, DeliveryAttempt, Notification, NotificationChannel, NotificationKind, NotificationStatus,
};
use crate::orders::{Order, OrderLine, OrderStatus, Payment, PaymentStatus, SagaEntry, SagaStatus};
use crate::storage::{self, StoredProduct};

// The log's on-disk format (docs/storage.md), for the target that writes
// segments of its own: one definition, the log's.

/// A segment's file name, before its first record number.
pub const SEGMENT_PREFIX: &str = crate::wal::SEGMENT_PREFIX;
/// A segment's first 8 bytes.
pub const SEGMENT_MAGIC: &[u8; 8] = crate::wal::SEGMENT_MAGIC;
/// The log format's version.
pub const SEGMENT_VERSION: u32 = crate::wal::SEGMENT_VERSION;
/// A segment header's length.
pub const SEGMENT_HEADER_LEN: usize = crate::wal::SEGMENT_HEADER_LEN;
/// A record header's first 4 bytes.
pub const RECORD_MAGIC: u32 = crate::wal::RECORD_MAGIC;
/// A record header's length.
pub const RECORD_HEADER_LEN: usize = crate::wal::RECORD_HEADER_LEN;
/// Records start at multiples of this.
pub const RECORD_ALIGN: usize = crate::wal::RECORD_ALIGN;
/// A record operation: insert or replace a row.
pub const OP_INSERT: u8 = crate::wal::OP_INSERT;
/// A record operation: remove a row.
pub const OP_REMOVE: u8 = crate::wal::OP_REMOVE;

/// The record types the store keeps, by the name their decoder reports in
/// its errors.
pub const RECORD_KINDS: [&str; 10] = [
    "product",
    "stock",
    "reservation",
    "event",
    "idempotency",
    "order",
    "saga",
    "payment",
    "cart",
    "notification",
];

/// The key every keyed decoder is given (an id it reports in errors).
const KEY: u128 = 0x0190_0000_0000_7000_8000_0000_0000_0001;
const CURRENCY: &str = "USD";

/// Decodes `bytes` as the record type `RECORD_KINDS[kind]`, as a read of
/// its table does. A record that decodes is encoded again (which asserts
/// the checks a write makes) and must decode to the same record: whatever
/// a read accepts, a write must accept and keep unchanged.
///
/// # Panics
///
/// When `kind` is out of range, and when a decoded record fails the
/// round trip (a bug the fuzz target reports).
pub fn decode_record(kind: usize, bytes: &[u8]) -> Result<(), Error> {
    match RECORD_KINDS[kind] {
        "product" => {
            let product = StoredProduct::decode(KEY as u64, bytes)?;
            let again = StoredProduct::decode(KEY as u64, &product.encode());
            assert_eq!(again.as_ref(), Ok(&product), "product round trip");
        }
        "stock" => {
            let (on_hand, reserved) = storage::decode_stock(bytes)?;
            let again = storage::decode_stock(&storage::encode_stock(on_hand, reserved));
            assert_eq!(again, Ok((on_hand, reserved)), "stock round trip");
        }
        "reservation" => {
            let reservation = storage::decode_reservation(KEY, bytes)?;
            let again =
                storage::decode_reservation(KEY, &storage::encode_reservation(&reservation));
            assert_eq!(again.as_ref(), Ok(&reservation), "reservation round trip");
        }
        "event" => {
            let event = storage::decode_event(1, bytes)?;
            let again =
                storage::decode_event(1, &storage::encode_event(event.created_at, &event.event));
            assert_eq!(again.as_ref(), Ok(&event), "event round trip");
        }
        "idempotency" => {
            let (expires_at, value) = storage::decode_idempotency(bytes)?;
            let again =
                storage::decode_idempotency(&storage::encode_idempotency(expires_at, &value));
            assert_eq!(again, Ok((expires_at, value)), "idempotency round trip");
        }
        "order" => {
            let order = storage::decode_order(KEY, bytes, CURRENCY)?;
            let again = storage::decode_order(KEY, &storage::encode_order(&order), CURRENCY);
            assert_eq!(again.as_ref(), Ok(&order), "order round trip");
        }
        "saga" => {
            let entry = storage::decode_saga(bytes)?;
            let again = storage::decode_saga(&storage::encode_saga(&entry));
            assert_eq!(again.as_ref(), Ok(&entry), "saga round trip");
        }
        "payment" => {
            let payment = storage::decode_payment(KEY, bytes, CURRENCY)?;
            let again = storage::decode_payment(KEY, &storage::encode_payment(&payment), CURRENCY);
            assert_eq!(again.as_ref(), Ok(&payment), "payment round trip");
        }
        "cart" => {
            let cart = storage::decode_cart(KEY, bytes)?;
            let again = storage::decode_cart(KEY, &storage::encode_cart(&cart));
            assert_eq!(again.as_ref(), Ok(&cart), "cart round trip");
        }
        "notification" => {
            let notification = notifications::decode(KEY, bytes)?;
            let again = notifications::decode(KEY, &notifications::encode(&notification));
            assert_eq!(again.as_ref(), Ok(&notification), "notification round trip");
        }
        other => unreachable!("record kind {other}"),
    }
    Ok(())
}

/// One valid record of each kind, in the order of [`RECORD_KINDS`]: the
/// fuzz targets' seeds.
pub fn sample_records() -> Vec<Vec<u8>> {
    let at = Timestamp(1_700_000_000_000);
    let later = Timestamp(1_700_000_900_000);
    let order_id = OrderId::from_u128(KEY);
    let price: Decimal = "12.50".parse().expect("a price");
    let line = ReservationLine {
        product_id: ProductId(7),
        quantity: 2,
    };
    let product = StoredProduct {
        id: ProductId(7),
        fields: ProductFields {
            sku: "CUP-1".to_owned(),
            name: "Espresso cup".to_owned(),
            description: "White porcelain".to_owned(),
            category: "kitchen".to_owned(),
            brand: "Mercato".to_owned(),
            price,
            attributes: BTreeMap::from([("colour".to_owned(), "white".to_owned())]),
            low_stock_threshold: 5,
        },
        created_at: at,
        updated_at: later,
        archived: false,
    };
    let reservation = Reservation {
        reservation_id: ReservationId::from_u128(KEY + 1),
        order_id,
        status: ReservationStatus::Active,
        items: vec![line],
        created_at: at,
        expires_at: later,
        updated_at: at,
    };
    let event = Event::InventoryReserved {
        order_id,
        reservation_id: reservation.reservation_id,
        items: vec![line],
        expires_at: later,
    };
    let order = Order {
        id: order_id,
        user_id: "alice".to_owned(),
        status: OrderStatus::Confirmed,
        items: vec![OrderLine {
            product_id: ProductId(7),
            quantity: 2,
            unit_price: price,
        }],
        total_amount: price * Decimal::from(2),
        currency: CURRENCY.to_owned(),
        failure_reason: None,
        payment_id: Some(PaymentId::from_u128(KEY + 2)),
        email: Some("alice@example.com".to_owned()),
        shipping_address: Some("1 Main St".to_owned()),
        cart_id: Some(CartId::from_u128(KEY + 3)),
        carrier: None,
        tracking_number: None,
        created_at: at,
        updated_at: later,
    };
    let saga = SagaEntry {
        step_name: "PROCESS_PAYMENT".to_owned(),
        is_compensating: false,
        status: SagaStatus::Completed,
        details: "captured".to_owned(),
        created_at: at,
    };
    let payment = Payment {
        id: PaymentId::from_u128(KEY + 2),
        order_id,
        amount: order.total_amount,
        currency: CURRENCY.to_owned(),
        status: PaymentStatus::Succeeded,
        failure_reason: None,
        refunded_amount: "5.00".parse().expect("an amount"),
        token: "tok_visa".to_owned(),
        provider_reference: Some("ch_1".to_owned()),
        created_at: at,
        updated_at: later,
    };
    let cart = StoredCart {
        id: CartId::from_u128(KEY + 3),
        user_id: UserId::new("alice").expect("a user id"),
        lines: vec![(ProductId(7), 2), (ProductId(8), 1)],
        created_at: at,
        updated_at: later,
    };
    let notification = Notification {
        id: NotificationId::from_u128(KEY + 4),
        kind: NotificationKind::OrderConfirmation,
        order_id,
        user_id: "alice".to_owned(),
        channel: NotificationChannel::Email,
        recipient: Some("alice@example.com".to_owned()),
        subject: "Your order".to_owned(),
        body: "Thanks".to_owned(),
        html_body: Some("<p>Thanks</p>".to_owned()),
        status: NotificationStatus::Failed,
        attempts: 2,
        attempts_base: 0,
        attempt_log: vec![DeliveryAttempt {
            at,
            error: Some("refused".to_owned()),
        }],
        last_error: Some("refused".to_owned()),
        event_seq: 3,
        created_at: at,
        sent_at: None,
        next_attempt_at: None,
    };
    vec![
        product.encode(),
        storage::encode_stock(10, 2),
        storage::encode_reservation(&reservation),
        storage::encode_event(at, &event),
        storage::encode_idempotency(later, b"{\"status\":201}"),
        storage::encode_order(&order),
        storage::encode_saga(&saga),
        storage::encode_payment(&payment),
        storage::encode_cart(&cart),
        notifications::encode(&notification),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_decodes_as_its_own_kind() {
        for (kind, bytes) in sample_records().iter().enumerate() {
            assert_eq!(decode_record(kind, bytes), Ok(()), "{}", RECORD_KINDS[kind]);
        }
    }
}
