//! [`Engine::check`]: an offline verifier of a stopped store, for the
//! crash tests and for an operator after an incident (`mercato check`).
//!
//! It opens the store as a start would (replaying the write-ahead log, or
//! refusing a damaged one with [`Error::LogDamaged`]), has redb check the
//! file's integrity, then reads every table and checks the contract's
//! invariants against each other:
//!
//! 1. every product has stock, and `0 <= reserved <= on_hand`;
//! 2. `reserved` is the sum of the product's active reservations, and each
//!    active reservation has exactly one deadline entry (no other has one);
//! 3. the event log has no gap (but at its front, after retention) and,
//!    when it is whole from `seq` 1, replaying it gives the stock table;
//! 4. an order's total is the sum of its lines, and it has at most one
//!    payment, of exactly its total;
//! 5. every notification index entry names a notification, and a
//!    notification is due exactly when it is `pending`.
//!
//! Nothing is changed beyond what opening the store changes.

use std::collections::{BTreeMap, BTreeSet};

use redb::{ReadTransaction, ReadableDatabase as _, ReadableTable as _};

use crate::config::EngineConfig;
use crate::engine::Engine;
use crate::error::Error;
use crate::event::Event;
use crate::inventory::ReservationStatus;
use crate::notifications::{self, NotificationStatus};
use crate::storage::{self, StoredProduct};
use crate::store;
use crate::wal::RecoveryReport;

/// The most problems listed; the count goes on.
const PROBLEMS_LISTED_MAX: usize = 100;

/// What [`Engine::check`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// What opening the store replayed from the log.
    pub recovery: RecoveryReport,
    /// redb found the file damaged and repaired it.
    pub repaired: bool,
    /// Products read.
    pub products: u64,
    /// Active reservations read.
    pub active_reservations: u64,
    /// Events read.
    pub events: u64,
    /// Orders read.
    pub orders: u64,
    /// Notifications read.
    pub notifications: u64,
    /// Every invariant that does not hold (at most 100 listed).
    pub problems: Vec<String>,
    /// How many problems there were in all.
    pub problem_count: u64,
}

impl CheckReport {
    /// True when every invariant holds.
    pub fn is_sound(&self) -> bool {
        self.problem_count == 0
    }

    fn problem(&mut self, text: String) {
        self.problem_count += 1;
        if self.problems.len() < PROBLEMS_LISTED_MAX {
            self.problems.push(text);
        }
    }
}

impl Engine {
    /// Checks a stopped store (see the module's documentation). `Err` when
    /// it cannot be opened or read at all; otherwise the report, whose
    /// [`CheckReport::is_sound`] says whether every invariant holds.
    pub fn check(config: EngineConfig) -> Result<CheckReport, Error> {
        config.validate()?;
        let opened = store::open(
            &config,
            false,
            config.replication == crate::config::ReplicationRole::Primary,
        )?;
        let store::Opened {
            db,
            recovery,
            snapshot,
            ..
        } = opened;
        drop(snapshot);
        let mut db = db;
        let repaired = match std::sync::Arc::get_mut(&mut db) {
            Some(db) => !db
                .check_integrity()
                .map_err(|error| Error::Storage(format!("integrity check: {error}")))?,
            None => false,
        };
        let mut report = CheckReport {
            recovery,
            repaired,
            products: 0,
            active_reservations: 0,
            events: 0,
            orders: 0,
            notifications: 0,
            problems: Vec::new(),
            problem_count: 0,
        };
        let result = {
            let txn = db.begin_read()?;
            check_tables(&txn, &config.currency, &mut report)
        };
        store::close(db);
        result.map(|()| report)
    }
}

fn check_tables(
    txn: &ReadTransaction,
    currency: &str,
    report: &mut CheckReport,
) -> Result<(), Error> {
    // 1. Products and their stock.
    let products = txn.open_table(storage::PRODUCTS)?;
    let stock_table = txn.open_table(storage::STOCK)?;
    let mut stock: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut archived = BTreeSet::new();
    for entry in products.iter()? {
        let (id, bytes) = entry?;
        report.products += 1;
        let product = StoredProduct::decode(id.value(), bytes.value())?;
        if product.archived {
            archived.insert(id.value());
        }
        match stock_table.get(id.value())? {
            Some(bytes) => {
                let (on_hand, reserved) = storage::decode_stock(bytes.value())?;
                if reserved > on_hand {
                    report.problem(format!(
                        "product {}: reserved {reserved} is above on_hand {on_hand}",
                        id.value()
                    ));
                }
                stock.insert(id.value(), (on_hand, reserved));
            }
            None => report.problem(format!("product {} has no stock", id.value())),
        }
    }

    // 2. Active reservations against `reserved` and the deadline index.
    let reservations = txn.open_table(storage::RESERVATIONS)?;
    let deadlines = txn.open_table(storage::RESERVATION_DEADLINES)?;
    let mut held: BTreeMap<u64, u64> = BTreeMap::new();
    let mut with_deadline: BTreeMap<u128, u64> = BTreeMap::new();
    for entry in deadlines.iter()? {
        let (key, _) = entry?;
        let (_, order) = key.value();
        *with_deadline.entry(order).or_default() += 1;
    }
    for entry in reservations.iter()? {
        let (key, bytes) = entry?;
        let reservation = storage::decode_reservation(key.value(), bytes.value())?;
        let deadline_entries = with_deadline.remove(&key.value()).unwrap_or(0);
        if reservation.status == ReservationStatus::Active {
            report.active_reservations += 1;
            for line in &reservation.items {
                *held.entry(line.product_id.0).or_default() += line.quantity;
            }
            if deadline_entries != 1 {
                report.problem(format!(
                    "active reservation of order {} has {deadline_entries} deadline entries",
                    reservation.order_id
                ));
            }
        } else if deadline_entries != 0 {
            report.problem(format!(
                "{} reservation of order {} has a deadline entry",
                reservation.status.as_str(),
                reservation.order_id
            ));
        }
    }
    for order in with_deadline.keys() {
        report.problem(format!(
            "a deadline entry names order {order:x}, which has no reservation"
        ));
    }
    for (&product, &(_, reserved)) in &stock {
        let sum = held.remove(&product).unwrap_or(0);
        if sum != reserved {
            report.problem(format!(
                "product {product}: reserved {reserved}, its active reservations hold {sum}"
            ));
        }
    }
    for (product, sum) in held {
        report.problem(format!(
            "active reservations hold {sum} of product {product}, which has no stock"
        ));
    }

    // 3. The event log: no gaps; replayed from seq 1, the stock table.
    let events = txn.open_table(storage::EVENTS)?;
    let mut replayed: BTreeMap<u64, (i128, i128)> = BTreeMap::new();
    let mut first = None;
    let mut previous = None;
    for entry in events.iter()? {
        let (seq, bytes) = entry?;
        let seq = seq.value();
        report.events += 1;
        first.get_or_insert(seq);
        if let Some(previous) = previous
            && seq != previous + 1
        {
            report.problem(format!("the event log jumps from {previous} to {seq}"));
        }
        previous = Some(seq);
        if first != Some(1) {
            continue;
        }
        let envelope = storage::decode_event(seq, bytes.value())?;
        let mut apply = |items: &[crate::ReservationLine], on_hand: i128, reserved: i128| {
            for line in items {
                let entry = replayed.entry(line.product_id.0).or_default();
                entry.0 += on_hand * i128::from(line.quantity);
                entry.1 += reserved * i128::from(line.quantity);
            }
        };
        match &envelope.event {
            Event::ProductCreated { product_id } => {
                replayed.entry(product_id.0).or_default();
            }
            Event::StockUpdated {
                product_id,
                on_hand,
                ..
            } => replayed.entry(product_id.0).or_default().0 = i128::from(*on_hand),
            Event::InventoryReserved { items, .. } => apply(items, 0, 1),
            Event::InventoryCommitted { items, .. } => apply(items, -1, -1),
            Event::InventoryReleased { items, .. } | Event::ReservationExpired { items, .. } => {
                apply(items, 0, -1)
            }
            _ => {}
        }
    }
    if first == Some(1) {
        for (product, (on_hand, reserved)) in replayed {
            if archived.contains(&product) {
                continue;
            }
            match stock.get(&product) {
                Some(&(stored_on_hand, stored_reserved))
                    if i128::from(stored_on_hand) == on_hand
                        && i128::from(stored_reserved) == reserved => {}
                Some(&(stored_on_hand, stored_reserved)) => report.problem(format!(
                    "product {product}: the event log gives on_hand {on_hand}, reserved {reserved}; \
                     the stock table holds {stored_on_hand}, {stored_reserved}"
                )),
                None => report.problem(format!(
                    "product {product} is in the event log but has no stock"
                )),
            }
        }
    }

    // 4. Orders and their payments.
    let orders = txn.open_table(storage::ORDERS)?;
    let payments_by_order = txn.open_table(storage::PAYMENTS_BY_ORDER)?;
    let payments = txn.open_table(storage::PAYMENTS)?;
    for entry in orders.iter()? {
        let (key, bytes) = entry?;
        report.orders += 1;
        // Decoding checks the total against the lines.
        let order = match storage::decode_order(key.value(), bytes.value(), currency) {
            Ok(order) => order,
            Err(error) => {
                report.problem(format!("order {:x}: {error}", key.value()));
                continue;
            }
        };
        if let Some(payment_id) = payments_by_order.get(key.value())? {
            match payments.get(payment_id.value())? {
                Some(bytes) => {
                    let payment =
                        storage::decode_payment(payment_id.value(), bytes.value(), currency)?;
                    if payment.amount != order.total_amount {
                        report.problem(format!(
                            "order {}: payment of {} for a total of {}",
                            order.id, payment.amount, order.total_amount
                        ));
                    }
                }
                None => report.problem(format!("order {}: its payment is missing", order.id)),
            }
        }
    }

    // 5. Notifications and their indexes.
    let table = txn.open_table(storage::NOTIFICATIONS)?;
    let due = txn.open_table(storage::NOTIFICATION_DUE)?;
    let mut due_ids = BTreeSet::new();
    for entry in due.iter()? {
        due_ids.insert(entry?.0.value().1);
    }
    for entry in table.iter()? {
        let (key, bytes) = entry?;
        report.notifications += 1;
        let notification = notifications::decode(key.value(), bytes.value())?;
        let is_due = due_ids.remove(&key.value());
        if is_due != (notification.status == NotificationStatus::Pending) {
            report.problem(format!(
                "notification {} is {} but {} due",
                notification.id,
                notification.status.as_str(),
                if is_due { "is" } else { "is not" }
            ));
        }
    }
    for id in due_ids {
        report.problem(format!(
            "a due entry names notification {id:x}, which does not exist"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use redb::Database;

    use super::*;
    use crate::ids::{OrderId, ProductId};
    use crate::inventory::{ReservationLine, ReserveRequest};
    use crate::{ManualClock, NewProduct, Timestamp};

    fn config(dir: &std::path::Path) -> EngineConfig {
        let mut config = EngineConfig::new(dir);
        config.clock = std::sync::Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
        config
    }

    fn busy_store(dir: &std::path::Path) {
        let engine = Engine::open(config(dir)).unwrap();
        for id in 1..=3 {
            engine
                .create_product(NewProduct {
                    id: Some(ProductId(id)),
                    name: format!("P{id}"),
                    price: "1.00".parse().unwrap(),
                    on_hand: 10,
                    ..NewProduct::default()
                })
                .wait()
                .unwrap();
        }
        for n in 1..=4_u128 {
            engine
                .reserve(ReserveRequest {
                    order_id: OrderId::from_u128(n),
                    items: vec![ReservationLine {
                        product_id: ProductId(1 + (n as u64 % 3)),
                        quantity: 2,
                    }],
                    ttl: None,
                })
                .wait()
                .unwrap();
        }
        engine
            .commit_reservation(OrderId::from_u128(1))
            .wait()
            .unwrap();
        engine
            .release_reservation(OrderId::from_u128(2))
            .wait()
            .unwrap();
        engine.shutdown();
    }

    #[test]
    fn a_sound_store_passes_and_a_tampered_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        busy_store(dir.path());
        let report = Engine::check(config(dir.path())).unwrap();
        assert!(report.is_sound(), "{:?}", report.problems);
        assert_eq!(report.products, 3);
        assert_eq!(report.active_reservations, 2);
        assert!(report.events > 8);

        // Tamper with product 2's stock behind the engine's back.
        {
            let db = Database::open(dir.path().join(crate::DATABASE_FILE_NAME)).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut stock = txn.open_table(storage::STOCK).unwrap();
                stock
                    .insert(2, storage::encode_stock(7, 1).as_slice())
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        let report = Engine::check(config(dir.path())).unwrap();
        assert!(!report.is_sound());
        let text = report.problems.join("\n");
        assert!(
            text.contains("product 2: reserved 1, its active reservations hold 2"),
            "{text}"
        );
        assert!(text.contains("product 2: the event log gives"), "{text}");
    }
}
