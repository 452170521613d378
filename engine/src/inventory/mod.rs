//! Stock and reservations: the domain types and the pure decisions over them.
//!
//! [`Ledger`] is the writer's in-memory view of every product's stock. Its
//! methods decide (check every line, then apply) without touching storage,
//! so the rules can be read and tested apart from redb. The writer loads
//! records, asks the ledger, then writes what the ledger decided.

pub(crate) mod writes;

use std::collections::HashMap;
use std::time::Duration;

use crate::error::Error;
use crate::ids::{OrderId, ProductId, ReservationId, Timestamp};

/// The most lines in one reservation.
pub const RESERVATION_LINES_MAX: usize = 100;
/// The most units of one product in one reservation line.
pub const RESERVATION_QUANTITY_MAX: u64 = 1_000_000;
/// The most units a product may have on hand.
pub const ON_HAND_MAX: u64 = 1_000_000_000_000;

// A full reservation (every line at its maximum) fits in what a product may
// hold, and summing a reservation's lines cannot overflow.
const _: () = assert!(RESERVATION_QUANTITY_MAX <= ON_HAND_MAX);
const _: () = assert!((RESERVATION_LINES_MAX as u64) * RESERVATION_QUANTITY_MAX < u64::MAX / 2);

/// A product's stock figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stock {
    /// The product.
    pub product_id: ProductId,
    /// Units physically in stock.
    pub on_hand: u64,
    /// Units held by active reservations.
    pub reserved: u64,
}

impl Stock {
    /// Units that can still be reserved: `on_hand - reserved`.
    pub fn available(&self) -> u64 {
        debug_assert!(self.reserved <= self.on_hand);
        self.on_hand - self.reserved
    }
}

/// Where a reservation is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReservationStatus {
    /// Holding stock until committed, released or expired.
    Active,
    /// Turned into a sale: stock left `on_hand`.
    Committed,
    /// Given back before its deadline.
    Released,
    /// Given back by the engine when its deadline passed.
    Expired,
}

impl ReservationStatus {
    /// The lower-case name used in the HTTP API and in errors.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReservationStatus::Active => "active",
            ReservationStatus::Committed => "committed",
            ReservationStatus::Released => "released",
            ReservationStatus::Expired => "expired",
        }
    }
}

/// One line of a reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ReservationLine {
    /// The product held.
    pub product_id: ProductId,
    /// How many units, at least 1.
    pub quantity: u64,
}

/// A request to hold stock for an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReserveRequest {
    /// The order the stock is held for; one reservation per order.
    pub order_id: OrderId,
    /// 1 to [`RESERVATION_LINES_MAX`] lines over distinct products.
    pub items: Vec<ReservationLine>,
    /// How long to hold the stock; the engine's default when `None`.
    pub ttl: Option<Duration>,
}

/// A stock hold for one order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// The reservation's own id.
    pub reservation_id: ReservationId,
    /// The order it holds stock for.
    pub order_id: OrderId,
    /// Where it is in its life.
    pub status: ReservationStatus,
    /// The lines, as requested.
    pub items: Vec<ReservationLine>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When an active reservation expires.
    pub expires_at: Timestamp,
    /// When its status last changed.
    pub updated_at: Timestamp,
}

/// The answer to a reservation request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reserved {
    /// The reservation, new or the one already held for this order.
    pub reservation: Reservation,
    /// False when the request repeated an earlier one for the same order.
    pub created: bool,
}

/// Checks a reservation request on its own (lines, quantities, ttl) and
/// answers the ttl to use.
pub(crate) fn validate_reserve(
    request: &ReserveRequest,
    ttl_default: Duration,
    ttl_max: Duration,
) -> Result<Duration, Error> {
    if request.items.is_empty() {
        return Err(Error::invalid("items", "at least one line is required"));
    }
    if request.items.len() > RESERVATION_LINES_MAX {
        return Err(Error::invalid(
            "items",
            format!("at most {RESERVATION_LINES_MAX} lines"),
        ));
    }
    for (index, line) in request.items.iter().enumerate() {
        if line.product_id.0 == 0 {
            return Err(Error::invalid(
                format!("items[{index}].product_id"),
                "must be at least 1",
            ));
        }
        if line.quantity == 0 || line.quantity > RESERVATION_QUANTITY_MAX {
            return Err(Error::invalid(
                format!("items[{index}].quantity"),
                format!("must be between 1 and {RESERVATION_QUANTITY_MAX}"),
            ));
        }
        if request.items[..index]
            .iter()
            .any(|earlier| earlier.product_id == line.product_id)
        {
            return Err(Error::invalid(
                format!("items[{index}].product_id"),
                format!("product {} appears on more than one line", line.product_id),
            ));
        }
    }
    let ttl = request.ttl.unwrap_or(ttl_default);
    if ttl < Duration::from_secs(1) || ttl > ttl_max {
        return Err(Error::invalid(
            "ttl_seconds",
            format!("must be between 1 and {}", ttl_max.as_secs()),
        ));
    }
    Ok(ttl)
}

/// True when two sets of lines ask for the same thing, in any order.
pub(crate) fn same_lines(a: &[ReservationLine], b: &[ReservationLine]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_unstable_by_key(|line| line.product_id);
    b.sort_unstable_by_key(|line| line.product_id);
    a == b
}

/// A stock event the ledger asks the writer to emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Crossing {
    Low {
        product_id: ProductId,
        available: u64,
        threshold: u64,
    },
    Depleted {
        product_id: ProductId,
    },
}

/// What the ledger knows of one product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StockEntry {
    pub(crate) on_hand: u64,
    pub(crate) reserved: u64,
    pub(crate) low_stock_threshold: u64,
    pub(crate) archived: bool,
}

impl StockEntry {
    fn available(&self) -> u64 {
        assert!(self.reserved <= self.on_hand);
        self.on_hand - self.reserved
    }
}

/// The writer's view of every product's stock, with the set of products
/// changed since the last flush to storage.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    entries: HashMap<ProductId, StockEntry>,
    dirty: Vec<ProductId>,
}

impl Ledger {
    pub(crate) fn insert(&mut self, product_id: ProductId, entry: StockEntry) {
        assert!(entry.reserved <= entry.on_hand);
        self.entries.insert(product_id, entry);
        self.dirty.push(product_id);
    }

    pub(crate) fn get(&self, product_id: ProductId) -> Option<&StockEntry> {
        self.entries.get(&product_id)
    }

    /// A product that can be ordered: known and not archived.
    pub(crate) fn live(&self, product_id: ProductId) -> Result<&StockEntry, Error> {
        match self.entries.get(&product_id) {
            Some(entry) if !entry.archived => Ok(entry),
            _ => Err(Error::ProductNotFound(product_id)),
        }
    }

    pub(crate) fn stock(&self, product_id: ProductId) -> Result<Stock, Error> {
        let entry = self.live(product_id)?;
        Ok(Stock {
            product_id,
            on_hand: entry.on_hand,
            reserved: entry.reserved,
        })
    }

    pub(crate) fn set_product_details(
        &mut self,
        product_id: ProductId,
        threshold: u64,
        archived: bool,
    ) {
        let entry = self.entries.get_mut(&product_id).expect("product is known");
        entry.low_stock_threshold = threshold;
        entry.archived = archived;
    }

    /// Sets `on_hand`, never below what is reserved.
    pub(crate) fn set_on_hand(
        &mut self,
        product_id: ProductId,
        on_hand: i128,
        crossings: &mut Vec<Crossing>,
    ) -> Result<Stock, Error> {
        let entry = *self.live(product_id)?;
        if on_hand < i128::from(entry.reserved) {
            return Err(Error::BelowReserved {
                product_id,
                reserved: entry.reserved,
                requested_on_hand: on_hand,
            });
        }
        let on_hand = u64::try_from(on_hand).expect("not below reserved, so not negative");
        if on_hand > ON_HAND_MAX {
            return Err(Error::invalid(
                "on_hand",
                format!("must be at most {ON_HAND_MAX}"),
            ));
        }
        self.change(product_id, crossings, |entry| entry.on_hand = on_hand);
        self.stock(product_id)
    }

    /// Holds every line or none: checks all lines first, then applies them.
    /// `lines` are distinct products (checked by [`validate_reserve`]).
    pub(crate) fn reserve(
        &mut self,
        lines: &[ReservationLine],
        crossings: &mut Vec<Crossing>,
    ) -> Result<(), Error> {
        for line in lines {
            self.live(line.product_id)?;
        }
        for line in lines {
            let available = self.live(line.product_id)?.available();
            if line.quantity > available {
                return Err(Error::InsufficientStock {
                    product_id: line.product_id,
                    requested: line.quantity,
                    available,
                });
            }
        }
        for line in lines {
            self.change(line.product_id, crossings, |entry| {
                entry.reserved += line.quantity;
            });
        }
        Ok(())
    }

    /// Turns held units into a sale: `on_hand` and `reserved` both fall.
    pub(crate) fn commit(&mut self, lines: &[ReservationLine], crossings: &mut Vec<Crossing>) {
        for line in lines {
            self.change(line.product_id, crossings, |entry| {
                assert!(entry.reserved >= line.quantity);
                entry.reserved -= line.quantity;
                entry.on_hand -= line.quantity;
            });
        }
    }

    /// Gives held units back: `reserved` falls.
    pub(crate) fn release(&mut self, lines: &[ReservationLine]) {
        let mut no_crossings = Vec::new();
        for line in lines {
            self.change(line.product_id, &mut no_crossings, |entry| {
                assert!(entry.reserved >= line.quantity);
                entry.reserved -= line.quantity;
            });
        }
        assert!(
            no_crossings.is_empty(),
            "a release never lowers availability"
        );
    }

    /// Takes the products changed since the last call.
    pub(crate) fn take_dirty(&mut self) -> Vec<ProductId> {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        dirty
    }

    fn change(
        &mut self,
        product_id: ProductId,
        crossings: &mut Vec<Crossing>,
        change: impl FnOnce(&mut StockEntry),
    ) {
        let entry = self.entries.get_mut(&product_id).expect("product is known");
        let before = entry.available();
        change(entry);
        assert!(
            entry.reserved <= entry.on_hand,
            "reserved never exceeds on_hand"
        );
        let after = entry.available();
        let threshold = entry.low_stock_threshold;
        if before > threshold && after <= threshold {
            crossings.push(Crossing::Low {
                product_id,
                available: after,
                threshold,
            });
        }
        if before > 0 && after == 0 {
            crossings.push(Crossing::Depleted { product_id });
        }
        self.dirty.push(product_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(on_hand: u64) -> Ledger {
        let mut ledger = Ledger::default();
        for id in 1..=3 {
            ledger.insert(
                ProductId(id),
                StockEntry {
                    on_hand,
                    reserved: 0,
                    low_stock_threshold: 10,
                    archived: false,
                },
            );
        }
        ledger.take_dirty();
        ledger
    }

    fn line(product: u64, quantity: u64) -> ReservationLine {
        ReservationLine {
            product_id: ProductId(product),
            quantity,
        }
    }

    #[test]
    fn reserve_is_all_or_nothing() {
        let mut ledger = ledger(5);
        let mut crossings = Vec::new();
        let error = ledger
            .reserve(&[line(1, 2), line(2, 6)], &mut crossings)
            .unwrap_err();
        assert_eq!(
            error,
            Error::InsufficientStock {
                product_id: ProductId(2),
                requested: 6,
                available: 5
            }
        );
        assert_eq!(ledger.stock(ProductId(1)).unwrap().reserved, 0);
        assert!(ledger.take_dirty().is_empty());
    }

    #[test]
    fn crossings_fire_once_per_crossing() {
        let mut ledger = ledger(12);
        let mut crossings = Vec::new();
        ledger.reserve(&[line(1, 1)], &mut crossings).unwrap();
        assert!(crossings.is_empty(), "12 -> 11 stays above 10");
        ledger.reserve(&[line(1, 1)], &mut crossings).unwrap();
        assert_eq!(crossings.len(), 1, "11 -> 10 crosses");
        ledger.reserve(&[line(1, 1)], &mut crossings).unwrap();
        assert_eq!(crossings.len(), 1, "10 -> 9 is below already");
        ledger.reserve(&[line(1, 9)], &mut crossings).unwrap();
        assert_eq!(
            crossings,
            vec![
                Crossing::Low {
                    product_id: ProductId(1),
                    available: 10,
                    threshold: 10
                },
                Crossing::Depleted {
                    product_id: ProductId(1)
                },
            ]
        );
        ledger.release(&[line(1, 12)]);
        ledger.reserve(&[line(1, 12)], &mut crossings).unwrap();
        assert_eq!(
            crossings.len(),
            4,
            "back above, then down again: both fire again"
        );
    }

    #[test]
    fn on_hand_never_falls_below_reserved() {
        let mut ledger = ledger(5);
        let mut crossings = Vec::new();
        ledger.reserve(&[line(1, 3)], &mut crossings).unwrap();
        assert!(matches!(
            ledger.set_on_hand(ProductId(1), 2, &mut crossings),
            Err(Error::BelowReserved { reserved: 3, .. })
        ));
        assert_eq!(
            ledger
                .set_on_hand(ProductId(1), 3, &mut crossings)
                .unwrap()
                .on_hand,
            3
        );
    }

    #[test]
    fn validation_names_the_line() {
        let request = ReserveRequest {
            order_id: OrderId::from_u128(1),
            items: vec![line(1, 1), line(1, 2)],
            ttl: None,
        };
        let ttl = Duration::from_secs(900);
        match validate_reserve(&request, ttl, ttl) {
            Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "items[1].product_id"),
            other => panic!("{other:?}"),
        }
        let request = ReserveRequest {
            items: vec![line(1, 0)],
            ..request
        };
        assert!(validate_reserve(&request, ttl, ttl).is_err());
    }
}
