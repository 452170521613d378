//! Model-based test: random operation sequences run against the engine and
//! against a plain in-memory model, compared after every step, with the
//! contract's invariants 1 to 3 checked along the way and across reopens.

use std::collections::BTreeMap;
use std::time::Duration;

use mercato_engine::{Engine, Error, ManualClock, ProductId, ReservationStatus, Timestamp};
use proptest::prelude::*;

use crate::support::{START, check_log_matches_stock, open, order, product, request};

const PRODUCTS: u64 = 3;
const ORDERS: u128 = 10;

#[derive(Clone, Debug)]
enum Op {
    Set(u64, u64),
    Adjust(u64, i64),
    Reserve(u128, Vec<(u64, u64)>, u64),
    Commit(u128),
    Release(u128),
    Advance(u64),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let product = 1..=PRODUCTS;
    let order = 0..ORDERS;
    prop_oneof![
        2 => (product.clone(), 0..=20_u64).prop_map(|(p, n)| Op::Set(p, n)),
        2 => (product, -8..=8_i64).prop_map(|(p, d)| Op::Adjust(p, d)),
        6 => (order.clone(), prop::collection::btree_map(1..=PRODUCTS, 1..=6_u64, 1..=3), 1..=120_u64)
            .prop_map(|(o, lines, ttl)| Op::Reserve(o, lines.into_iter().collect(), ttl)),
        3 => order.clone().prop_map(Op::Commit),
        2 => order.prop_map(Op::Release),
        2 => (1..=90_u64).prop_map(Op::Advance),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Clone, Debug)]
struct Held {
    status: ReservationStatus,
    lines: Vec<(u64, u64)>,
    expires_at: u64,
}

#[derive(Debug)]
struct Model {
    now: u64,
    /// product → (on_hand, reserved)
    stock: BTreeMap<u64, (u64, u64)>,
    reservations: BTreeMap<u128, Held>,
}

impl Model {
    fn expire(&mut self) {
        for held in self.reservations.values_mut() {
            if held.status == ReservationStatus::Active && held.expires_at <= self.now {
                held.status = ReservationStatus::Expired;
                for &(product, quantity) in &held.lines {
                    self.stock.get_mut(&product).unwrap().1 -= quantity;
                }
            }
        }
    }

    /// Applies a write and answers the error code the engine must give.
    fn apply(&mut self, op: &Op) -> Result<(), &'static str> {
        self.expire();
        match op {
            Op::Set(product, on_hand) => self.set(*product, i128::from(*on_hand)),
            Op::Adjust(product, delta) => {
                let on_hand = self.stock[product].0;
                self.set(*product, i128::from(on_hand) + i128::from(*delta))
            }
            Op::Reserve(order, lines, ttl) => {
                if let Some(held) = self.reservations.get(order) {
                    return if held.lines == *lines {
                        Ok(())
                    } else {
                        Err("conflict")
                    };
                }
                for (product, quantity) in lines {
                    let (on_hand, reserved) = self.stock[product];
                    if *quantity > on_hand - reserved {
                        return Err("insufficient_stock");
                    }
                }
                for (product, quantity) in lines {
                    self.stock.get_mut(product).unwrap().1 += quantity;
                }
                let expires_at = self.now + ttl * 1_000;
                let held = Held {
                    status: ReservationStatus::Active,
                    lines: lines.clone(),
                    expires_at,
                };
                self.reservations.insert(*order, held);
                Ok(())
            }
            Op::Commit(order) => {
                let Some(held) = self.reservations.get_mut(order) else {
                    return Err("not_found");
                };
                match held.status {
                    ReservationStatus::Committed => Ok(()),
                    ReservationStatus::Active => {
                        held.status = ReservationStatus::Committed;
                        for &(product, quantity) in &held.lines {
                            let stock = self.stock.get_mut(&product).unwrap();
                            stock.0 -= quantity;
                            stock.1 -= quantity;
                        }
                        Ok(())
                    }
                    _ => Err("invalid_state"),
                }
            }
            Op::Release(order) => {
                let Some(held) = self.reservations.get_mut(order) else {
                    return Err("not_found");
                };
                match held.status {
                    ReservationStatus::Committed => Err("invalid_state"),
                    ReservationStatus::Active => {
                        held.status = ReservationStatus::Released;
                        for &(product, quantity) in &held.lines {
                            self.stock.get_mut(&product).unwrap().1 -= quantity;
                        }
                        Ok(())
                    }
                    _ => Ok(()),
                }
            }
            Op::Advance(_) | Op::Reopen => Ok(()),
        }
    }

    fn set(&mut self, product: u64, on_hand: i128) -> Result<(), &'static str> {
        let stock = self.stock.get_mut(&product).unwrap();
        if on_hand < i128::from(stock.1) {
            return Err("invalid_state");
        }
        stock.0 = u64::try_from(on_hand).unwrap();
        Ok(())
    }
}

fn run(engine: &Engine, op: &Op) -> Result<(), Error> {
    match op {
        Op::Set(product, on_hand) => engine
            .set_stock(ProductId(*product), *on_hand)
            .wait()
            .map(drop),
        Op::Adjust(product, delta) => engine
            .adjust_stock(ProductId(*product), *delta)
            .wait()
            .map(drop),
        Op::Reserve(o, lines, ttl) => {
            let mut reserve = request(order(*o), lines);
            reserve.ttl = Some(Duration::from_secs(*ttl));
            engine.reserve(reserve).wait().map(drop)
        }
        Op::Commit(o) => engine.commit_reservation(order(*o)).wait().map(drop),
        Op::Release(o) => engine.release_reservation(order(*o)).wait().map(drop),
        Op::Advance(_) | Op::Reopen => Ok(()),
    }
}

fn compare(engine: &Engine, model: &Model) {
    for (&product, &(on_hand, reserved)) in &model.stock {
        let stock = engine.stock(ProductId(product)).unwrap().unwrap();
        assert_eq!(
            (stock.on_hand, stock.reserved),
            (on_hand, reserved),
            "product {product}"
        );
        assert!(stock.reserved <= stock.on_hand);
        let active: u64 = model
            .reservations
            .values()
            .filter(|held| held.status == ReservationStatus::Active)
            .flat_map(|held| held.lines.iter())
            .filter(|(p, _)| *p == product)
            .map(|(_, quantity)| quantity)
            .sum();
        assert_eq!(
            stock.reserved, active,
            "reserved is the sum of active reservations"
        );
    }
    for o in 0..ORDERS {
        let actual = engine.reservation(order(o)).unwrap().map(|r| r.status);
        assert_eq!(
            actual,
            model.reservations.get(&o).map(|held| held.status),
            "order {o}"
        );
    }
}

fn cases() -> u32 {
    std::env::var("MERCATO_MODEL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(START);
        let mut engine = open(dir.path(), &clock);
        engine.import_products((1..=PRODUCTS).map(|id| product(id, 10)).collect()).wait().unwrap();
        let mut model = Model {
            now: START.0,
            stock: (1..=PRODUCTS).map(|id| (id, (10, 0))).collect(),
            reservations: BTreeMap::new(),
        };
        for op in &ops {
            match op {
                Op::Advance(seconds) => {
                    clock.advance(Duration::from_secs(*seconds));
                    model.now += seconds * 1_000;
                    engine.flush().wait().unwrap();
                    model.expire();
                }
                Op::Reopen => {
                    engine.shutdown();
                    drop(engine);
                    engine = open(dir.path(), &clock);
                }
                _ => {
                    let expected = model.apply(op);
                    let actual = run(&engine, op).map_err(|error| error.code());
                    prop_assert_eq!(actual, expected, "{:?}", op);
                }
            }
            compare(&engine, &model);
        }
        check_log_matches_stock(&engine);
        prop_assert!(clock_is(&clock, model.now));
    }
}

fn clock_is(clock: &ManualClock, now: u64) -> bool {
    use mercato_engine::Clock;
    clock.now() == Timestamp(now)
}
