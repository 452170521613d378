//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use mercato_engine::{
    Engine, EngineConfig, Event, ManualClock, NewProduct, OrderId, ProductId, ReservationLine,
    ReserveRequest, Timestamp, Uuid,
};

pub(crate) const START: Timestamp = Timestamp(1_800_000_000_000);

pub(crate) fn config(dir: &Path, clock: &ManualClock) -> EngineConfig {
    let mut config = EngineConfig::new(dir);
    config.clock = Arc::new(clock.clone());
    config
}

pub(crate) fn open(dir: &Path, clock: &ManualClock) -> Engine {
    Engine::open(config(dir, clock)).expect("engine opens")
}

pub(crate) fn product(id: u64, on_hand: u64) -> NewProduct {
    NewProduct {
        id: Some(ProductId(id)),
        name: format!("Product {id}"),
        category: Some(if id.is_multiple_of(2) { "even" } else { "odd" }.to_owned()),
        price: "9.99".parse().unwrap(),
        on_hand,
        ..NewProduct::default()
    }
}

pub(crate) fn order(n: u128) -> OrderId {
    OrderId(Uuid::from_u128(n))
}

pub(crate) fn request(order_id: OrderId, lines: &[(u64, u64)]) -> ReserveRequest {
    ReserveRequest {
        order_id,
        items: lines
            .iter()
            .map(|&(product, quantity)| ReservationLine {
                product_id: ProductId(product),
                quantity,
            })
            .collect(),
        ttl: None,
    }
}

/// Replays the whole event log and checks that the stock it implies is the
/// stock the engine reports, for every product the log mentions, and that
/// `0 <= reserved <= on_hand`. This is the contract's invariants 1 to 3 seen
/// through the log, which is written in the same transaction as the stock.
pub(crate) fn check_log_matches_stock(engine: &Engine) {
    let mut expected: BTreeMap<ProductId, (i128, i128)> = BTreeMap::new();
    let mut archived = Vec::new();
    let mut after = 0;
    let mut seq_expected = 1;
    loop {
        let events = engine.events_after(after, 500).unwrap();
        if events.is_empty() {
            break;
        }
        for envelope in &events {
            assert_eq!(envelope.seq, seq_expected, "the log has no gaps");
            seq_expected += 1;
            let apply = |expected: &mut BTreeMap<ProductId, (i128, i128)>,
                         items: &[ReservationLine],
                         on_hand_sign: i128,
                         reserved_sign: i128| {
                for line in items {
                    let entry = expected.entry(line.product_id).or_default();
                    entry.0 += on_hand_sign * i128::from(line.quantity);
                    entry.1 += reserved_sign * i128::from(line.quantity);
                }
            };
            match &envelope.event {
                Event::ProductCreated { product_id } => {
                    expected.entry(*product_id).or_default();
                }
                Event::StockUpdated {
                    product_id,
                    on_hand,
                    reserved,
                    ..
                } => {
                    let entry = expected.entry(*product_id).or_default();
                    assert_eq!(entry.1, i128::from(*reserved), "reserved at a stock update");
                    entry.0 = i128::from(*on_hand);
                }
                Event::InventoryReserved { items, .. } => apply(&mut expected, items, 0, 1),
                Event::InventoryCommitted { items, .. } => apply(&mut expected, items, -1, -1),
                Event::InventoryReleased { items, .. }
                | Event::ReservationExpired { items, .. } => apply(&mut expected, items, 0, -1),
                Event::ProductArchived { product_id } => archived.push(*product_id),
                _ => {}
            }
        }
        after = events.last().unwrap().seq;
    }
    assert_eq!(after, engine.last_event_seq());
    for (product_id, (on_hand, reserved)) in expected {
        assert!(
            0 <= reserved && reserved <= on_hand,
            "{product_id}: {reserved} of {on_hand}"
        );
        if archived.contains(&product_id) {
            assert_eq!(engine.stock(product_id).unwrap(), None);
            continue;
        }
        let stock = engine
            .stock(product_id)
            .unwrap()
            .expect("a live product has stock");
        assert_eq!(
            i128::from(stock.on_hand),
            on_hand,
            "on_hand of {product_id}"
        );
        assert_eq!(
            i128::from(stock.reserved),
            reserved,
            "reserved of {product_id}"
        );
    }
}
