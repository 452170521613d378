//! The redb tables, their record types and the conversions between records
//! and domain types. `docs/storage.md` describes every table listed here.

use std::collections::BTreeMap;

use redb::{ReadableTable, TableDefinition};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::catalog::{Product, ProductFields};
use crate::codec;
use crate::error::Error;
use crate::event::{Event, EventEnvelope};
use crate::ids::{OrderId, ProductId, ReservationId, Timestamp};
use crate::inventory::{Reservation, ReservationLine, ReservationStatus};

/// The layout version of the whole store, kept in `meta`.
pub(crate) const SCHEMA_VERSION: u64 = 1;

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(crate) const PRODUCTS: TableDefinition<u64, &[u8]> = TableDefinition::new("products");
pub(crate) const PRODUCTS_BY_CATEGORY: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("products_by_category");
pub(crate) const STOCK: TableDefinition<u64, &[u8]> = TableDefinition::new("stock");
pub(crate) const RESERVATIONS: TableDefinition<u128, &[u8]> = TableDefinition::new("reservations");
pub(crate) const RESERVATION_DEADLINES: TableDefinition<(u64, u128), ()> =
    TableDefinition::new("reservation_deadlines");
pub(crate) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
pub(crate) const CONSUMER_POSITIONS: TableDefinition<&str, u64> =
    TableDefinition::new("consumer_positions");

pub(crate) const IDEMPOTENCY: TableDefinition<&str, &[u8]> = TableDefinition::new("idempotency");
pub(crate) const IDEMPOTENCY_EXPIRY: TableDefinition<(u64, &str), ()> =
    TableDefinition::new("idempotency_expiry");

/// Makes `txn` a synced commit that also saves redb's allocator state
/// (quick repair), so that reopening after a crash needs no walk of the
/// whole file: the cost falls on these commits (checkpoints) only, while the
/// unsynced commits between them stay as cheap as before.
pub(crate) fn make_durable(txn: &mut redb::WriteTransaction) -> Result<(), Error> {
    txn.set_durability(redb::Durability::Immediate)?;
    txn.set_quick_repair(true);
    Ok(())
}

pub(crate) const META_SCHEMA_VERSION: &str = "schema_version";
pub(crate) const META_CURRENCY: &str = "currency";

const PRODUCT_VERSION: u8 = 1;
const STOCK_VERSION: u8 = 1;
const RESERVATION_VERSION: u8 = 1;
const EVENT_VERSION: u8 = 1;
const IDEMPOTENCY_VERSION: u8 = 1;

#[derive(Serialize, Deserialize)]
struct ProductRecordV1 {
    sku: String,
    name: String,
    description: String,
    category: String,
    brand: String,
    price: Decimal,
    attributes: Vec<(String, String)>,
    low_stock_threshold: u64,
    created_at_ms: u64,
    updated_at_ms: u64,
    archived: bool,
}

/// A product as stored: its fields, times and whether it is archived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredProduct {
    pub(crate) id: ProductId,
    pub(crate) fields: ProductFields,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    pub(crate) archived: bool,
}

impl StoredProduct {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let fields = &self.fields;
        codec::encode(
            PRODUCT_VERSION,
            &ProductRecordV1 {
                sku: fields.sku.clone(),
                name: fields.name.clone(),
                description: fields.description.clone(),
                category: fields.category.clone(),
                brand: fields.brand.clone(),
                price: fields.price,
                attributes: fields.attributes.clone().into_iter().collect(),
                low_stock_threshold: fields.low_stock_threshold,
                created_at_ms: self.created_at.0,
                updated_at_ms: self.updated_at.0,
                archived: self.archived,
            },
        )
    }

    pub(crate) fn decode(id: u64, bytes: &[u8]) -> Result<StoredProduct, Error> {
        let record: ProductRecordV1 = codec::decode("product", PRODUCT_VERSION, bytes)?;
        if record.price.is_sign_negative() || record.updated_at_ms < record.created_at_ms {
            return Err(Error::corrupt(
                "product",
                format!("product {id} fails its checks"),
            ));
        }
        Ok(StoredProduct {
            id: ProductId(id),
            fields: ProductFields {
                sku: record.sku,
                name: record.name,
                description: record.description,
                category: record.category,
                brand: record.brand,
                price: record.price,
                attributes: record.attributes.into_iter().collect::<BTreeMap<_, _>>(),
                low_stock_threshold: record.low_stock_threshold,
            },
            created_at: Timestamp(record.created_at_ms),
            updated_at: Timestamp(record.updated_at_ms),
            archived: record.archived,
        })
    }

    pub(crate) fn to_product(&self, currency: &str) -> Product {
        let fields = self.fields.clone();
        Product {
            id: self.id,
            sku: fields.sku,
            name: fields.name,
            description: fields.description,
            category: fields.category,
            brand: fields.brand,
            price: fields.price,
            currency: currency.to_owned(),
            attributes: fields.attributes,
            low_stock_threshold: fields.low_stock_threshold,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct StockRecordV1 {
    on_hand: u64,
    reserved: u64,
}

pub(crate) fn encode_stock(on_hand: u64, reserved: u64) -> Vec<u8> {
    assert!(reserved <= on_hand);
    codec::encode(STOCK_VERSION, &StockRecordV1 { on_hand, reserved })
}

/// Answers `(on_hand, reserved)`.
pub(crate) fn decode_stock(bytes: &[u8]) -> Result<(u64, u64), Error> {
    let record: StockRecordV1 = codec::decode("stock", STOCK_VERSION, bytes)?;
    if record.reserved > record.on_hand {
        return Err(Error::corrupt("stock", "reserved exceeds on_hand"));
    }
    Ok((record.on_hand, record.reserved))
}

#[derive(Serialize, Deserialize)]
struct ReservationRecordV1 {
    reservation_id: u128,
    status: u8,
    items: Vec<(u64, u64)>,
    created_at_ms: u64,
    expires_at_ms: u64,
    updated_at_ms: u64,
}

fn status_to_byte(status: ReservationStatus) -> u8 {
    match status {
        ReservationStatus::Active => 0,
        ReservationStatus::Committed => 1,
        ReservationStatus::Released => 2,
        ReservationStatus::Expired => 3,
    }
}

fn status_from_byte(byte: u8) -> Result<ReservationStatus, Error> {
    Ok(match byte {
        0 => ReservationStatus::Active,
        1 => ReservationStatus::Committed,
        2 => ReservationStatus::Released,
        3 => ReservationStatus::Expired,
        other => return Err(Error::corrupt("reservation", format!("status {other}"))),
    })
}

pub(crate) fn encode_reservation(reservation: &Reservation) -> Vec<u8> {
    assert!(!reservation.items.is_empty());
    codec::encode(
        RESERVATION_VERSION,
        &ReservationRecordV1 {
            reservation_id: reservation.reservation_id.as_u128(),
            status: status_to_byte(reservation.status),
            items: reservation
                .items
                .iter()
                .map(|line| (line.product_id.0, line.quantity))
                .collect(),
            created_at_ms: reservation.created_at.0,
            expires_at_ms: reservation.expires_at.0,
            updated_at_ms: reservation.updated_at.0,
        },
    )
}

pub(crate) fn decode_reservation(order_id: u128, bytes: &[u8]) -> Result<Reservation, Error> {
    let record: ReservationRecordV1 = codec::decode("reservation", RESERVATION_VERSION, bytes)?;
    if record.items.is_empty() || record.items.iter().any(|&(_, quantity)| quantity == 0) {
        return Err(Error::corrupt(
            "reservation",
            "empty line list or zero quantity",
        ));
    }
    Ok(Reservation {
        reservation_id: ReservationId::from_u128(record.reservation_id),
        order_id: OrderId::from_u128(order_id),
        status: status_from_byte(record.status)?,
        items: record
            .items
            .into_iter()
            .map(|(product_id, quantity)| ReservationLine {
                product_id: ProductId(product_id),
                quantity,
            })
            .collect(),
        created_at: Timestamp(record.created_at_ms),
        expires_at: Timestamp(record.expires_at_ms),
        updated_at: Timestamp(record.updated_at_ms),
    })
}

#[derive(Serialize, Deserialize)]
struct EventRecordV1 {
    created_at_ms: u64,
    event: Event,
}

pub(crate) fn encode_event(created_at: Timestamp, event: &Event) -> Vec<u8> {
    codec::encode(
        EVENT_VERSION,
        &EventRecordV1 {
            created_at_ms: created_at.0,
            event: event.clone(),
        },
    )
}

pub(crate) fn decode_event(seq: u64, bytes: &[u8]) -> Result<EventEnvelope, Error> {
    let record: EventRecordV1 = codec::decode("event", EVENT_VERSION, bytes)?;
    Ok(EventEnvelope {
        seq,
        created_at: Timestamp(record.created_at_ms),
        event: record.event,
    })
}

#[derive(Serialize, Deserialize)]
struct IdempotencyRecordV1 {
    expires_at_ms: u64,
    value: Vec<u8>,
}

pub(crate) fn encode_idempotency(expires_at: Timestamp, value: &[u8]) -> Vec<u8> {
    codec::encode(
        IDEMPOTENCY_VERSION,
        &IdempotencyRecordV1 {
            expires_at_ms: expires_at.0,
            value: value.to_vec(),
        },
    )
}

/// Answers `(expires_at, value)`.
pub(crate) fn decode_idempotency(bytes: &[u8]) -> Result<(Timestamp, Vec<u8>), Error> {
    let record: IdempotencyRecordV1 = codec::decode("idempotency", IDEMPOTENCY_VERSION, bytes)?;
    Ok((Timestamp(record.expires_at_ms), record.value))
}

/// Reads a product by id from any table handle (read or write transaction).
pub(crate) fn read_product(
    table: &impl ReadableTable<u64, &'static [u8]>,
    id: ProductId,
) -> Result<Option<StoredProduct>, Error> {
    match table.get(id.0)? {
        Some(bytes) => Ok(Some(StoredProduct::decode(id.0, bytes.value())?)),
        None => Ok(None),
    }
}

/// Reads a reservation by order id from any table handle.
pub(crate) fn read_reservation(
    table: &impl ReadableTable<u128, &'static [u8]>,
    order_id: OrderId,
) -> Result<Option<Reservation>, Error> {
    match table.get(order_id.as_u128())? {
        Some(bytes) => Ok(Some(decode_reservation(order_id.as_u128(), bytes.value())?)),
        None => Ok(None),
    }
}

/// The last sequence number in the event log, 0 when it is empty.
pub(crate) fn last_seq(table: &impl ReadableTable<u64, &'static [u8]>) -> Result<u64, Error> {
    Ok(table.last()?.map_or(0, |(seq, _)| seq.value()))
}
