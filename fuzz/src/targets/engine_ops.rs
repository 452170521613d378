//! `engine_ops`: a sequence of stock operations (create a product, set and
//! adjust stock, reserve, commit, release, move the clock so that
//! reservations expire, reopen the store) applied to a real [`Engine`]
//! and to a small model of the contract's inventory rules. After every
//! step the engine's answer agrees with the model's, every product's
//! `reserved` is the sum of its active reservations and never exceeds
//! `on_hand` (nothing is oversold), and every reservation reads as the
//! model has it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use mercato_engine::{
    Engine, EngineConfig, Error, ManualClock, NewProduct, ON_HAND_MAX, OrderId, ProductId,
    RESERVATION_LINES_MAX, RESERVATION_QUANTITY_MAX, ReservationLine, ReservationStatus,
    ReserveRequest, Timestamp,
};

use super::support::memory_config;

/// The most operations in one run.
const OPERATIONS_MAX: usize = 48;
/// Products 1 to 3 exist or may be made; 0 and 4 never exist (0 is invalid).
const PRODUCT_IDS: u64 = 5;
/// Orders by number; a small set so that repeats and conflicts happen.
const ORDERS: u8 = 4;
/// The engine's default and longest reservation time-to-live.
const TTL_DEFAULT: Duration = Duration::from_secs(900);
const TTL_MAX: Duration = Duration::from_secs(86_400);
const START: Timestamp = Timestamp(1_700_000_000_000);

/// An amount drawn near the edges that matter.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Amount {
    Small(u8),
    Any(u64),
    OnHandMax,
    OnHandMaxPlusOne,
    QuantityMax,
    QuantityMaxPlusOne,
}

impl Amount {
    fn value(self) -> u64 {
        match self {
            Amount::Small(value) => u64::from(value % 16),
            Amount::Any(value) => value,
            Amount::OnHandMax => ON_HAND_MAX,
            Amount::OnHandMaxPlusOne => ON_HAND_MAX + 1,
            Amount::QuantityMax => RESERVATION_QUANTITY_MAX,
            Amount::QuantityMaxPlusOne => RESERVATION_QUANTITY_MAX + 1,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Delta {
    Small(i8),
    Any(i64),
    Min,
    Max,
}

impl Delta {
    fn value(self) -> i64 {
        match self {
            Delta::Small(value) => i64::from(value % 16),
            Delta::Any(value) => value,
            Delta::Min => i64::MIN,
            Delta::Max => i64::MAX,
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum Operation {
    Create {
        product: u8,
        on_hand: Amount,
    },
    SetStock {
        product: u8,
        on_hand: Amount,
    },
    AdjustStock {
        product: u8,
        delta: Delta,
    },
    Reserve {
        order: u8,
        lines: Vec<(u8, Amount)>,
        ttl_seconds: Option<u32>,
    },
    Commit {
        order: u8,
    },
    Release {
        order: u8,
    },
    /// Moves the clock forward this many seconds (reservations expire).
    Advance {
        seconds: u16,
    },
    /// Stops the engine and opens the store again.
    Reopen,
}

/// The model's view of a reservation.
#[derive(Clone, Debug)]
struct Held {
    lines: Vec<(u64, u64)>,
    status: ReservationStatus,
    expires_at: u64,
}

#[derive(Default)]
struct Model {
    /// product → (on_hand, reserved)
    stock: BTreeMap<u64, (u64, u64)>,
    reservations: BTreeMap<u8, Held>,
    now: u64,
}

/// What the model expects of an operation: success, or the error's kind.
#[derive(Debug, PartialEq, Eq)]
enum Expected {
    Ok,
    Invalid,
    NotFound,
    Exists,
    BelowReserved,
    Insufficient,
    Conflict,
    InvalidState,
}

fn kind(error: &Error) -> Expected {
    match error {
        Error::InvalidInput { .. } => Expected::Invalid,
        Error::ProductNotFound(_) | Error::ReservationNotFound(_) => Expected::NotFound,
        Error::ProductExists(_) => Expected::Exists,
        Error::BelowReserved { .. } => Expected::BelowReserved,
        Error::InsufficientStock { .. } => Expected::Insufficient,
        Error::Conflict(_) => Expected::Conflict,
        Error::InvalidState { .. } => Expected::InvalidState,
        other => panic!("an answer the contract does not give here: {other:?}"),
    }
}

fn order_id(order: u8) -> OrderId {
    OrderId::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | u128::from(order % ORDERS))
}

impl Model {
    fn set_on_hand(&mut self, product: u64, on_hand: i128) -> Expected {
        // The bound is checked before the product is looked up.
        if on_hand > i128::from(ON_HAND_MAX) {
            return Expected::Invalid;
        }
        let Some(&(_, reserved)) = self.stock.get(&product) else {
            return Expected::NotFound;
        };
        if on_hand < i128::from(reserved) {
            return Expected::BelowReserved;
        }
        let on_hand = u64::try_from(on_hand).expect("at least reserved");
        self.stock.insert(product, (on_hand, reserved));
        Expected::Ok
    }

    fn reserve(&mut self, order: u8, lines: &[(u64, u64)], ttl: Option<Duration>) -> Expected {
        if lines.is_empty() || lines.len() > RESERVATION_LINES_MAX {
            return Expected::Invalid;
        }
        for (index, &(product, quantity)) in lines.iter().enumerate() {
            if product == 0 || quantity == 0 || quantity > RESERVATION_QUANTITY_MAX {
                return Expected::Invalid;
            }
            if lines[..index].iter().any(|&(other, _)| other == product) {
                return Expected::Invalid;
            }
        }
        let ttl = ttl.unwrap_or(TTL_DEFAULT);
        if ttl < Duration::from_secs(1) || ttl > TTL_MAX {
            return Expected::Invalid;
        }
        if let Some(held) = self.reservations.get(&order) {
            let mut asked = lines.to_vec();
            let mut have = held.lines.clone();
            asked.sort_unstable();
            have.sort_unstable();
            return if asked == have {
                Expected::Ok
            } else {
                Expected::Conflict
            };
        }
        if lines
            .iter()
            .any(|(product, _)| !self.stock.contains_key(product))
        {
            return Expected::NotFound;
        }
        for (product, quantity) in lines {
            let (on_hand, reserved) = self.stock[product];
            if *quantity > on_hand - reserved {
                return Expected::Insufficient;
            }
        }
        for (product, quantity) in lines {
            self.stock.get_mut(product).expect("checked").1 += quantity;
        }
        let expires_at = self.now + u64::try_from(ttl.as_millis()).expect("a short ttl");
        self.reservations.insert(
            order,
            Held {
                lines: lines.to_vec(),
                status: ReservationStatus::Active,
                expires_at,
            },
        );
        Expected::Ok
    }

    fn finish(&mut self, order: u8, target: ReservationStatus) -> Expected {
        let Some(held) = self.reservations.get_mut(&order) else {
            return Expected::NotFound;
        };
        match (target, held.status) {
            (_, ReservationStatus::Active) => {}
            (ReservationStatus::Committed, ReservationStatus::Committed)
            | (
                ReservationStatus::Released,
                ReservationStatus::Released | ReservationStatus::Expired,
            ) => return Expected::Ok,
            _ => return Expected::InvalidState,
        }
        held.status = target;
        for (product, quantity) in held.lines.clone() {
            let entry = self.stock.get_mut(&product).expect("a held product exists");
            entry.1 -= quantity;
            if target == ReservationStatus::Committed {
                entry.0 -= quantity;
            }
        }
        Expected::Ok
    }

    fn expire(&mut self) {
        for held in self.reservations.values_mut() {
            if held.status == ReservationStatus::Active && held.expires_at <= self.now {
                held.status = ReservationStatus::Expired;
                for &(product, quantity) in &held.lines {
                    self.stock
                        .get_mut(&product)
                        .expect("a held product exists")
                        .1 -= quantity;
                }
            }
        }
    }
}

/// The body.
pub fn run(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Ok(operations) = Vec::<Operation>::arbitrary(&mut input) else {
        return;
    };
    if operations.is_empty() {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let clock = ManualClock::new(START);
    let config = memory_config(dir.path(), Arc::new(clock.clone()));
    let mut engine = Engine::open(config.clone()).expect("a fresh store opens");
    let mut model = Model {
        now: START.0,
        ..Model::default()
    };
    for operation in operations.into_iter().take(OPERATIONS_MAX) {
        engine = step(engine, &config, &clock, &mut model, operation);
        check(&engine, &model);
    }
    engine.shutdown();
}

fn step(
    engine: Engine,
    config: &EngineConfig,
    clock: &ManualClock,
    model: &mut Model,
    operation: Operation,
) -> Engine {
    let (expected, answer) = match operation.clone() {
        Operation::Create { product, on_hand } => {
            let product = u64::from(product) % PRODUCT_IDS;
            let on_hand = on_hand.value();
            let expected = if product == 0 || on_hand > ON_HAND_MAX {
                Expected::Invalid
            } else {
                match model.stock.entry(product) {
                    std::collections::btree_map::Entry::Occupied(_) => Expected::Exists,
                    std::collections::btree_map::Entry::Vacant(entry) => {
                        entry.insert((on_hand, 0));
                        Expected::Ok
                    }
                }
            };
            let answer = engine
                .create_product(NewProduct {
                    id: Some(ProductId(product)),
                    name: format!("Product {product}"),
                    price: "1.00".parse().expect("a price"),
                    on_hand,
                    ..NewProduct::default()
                })
                .wait()
                .map(drop);
            (expected, answer)
        }
        Operation::SetStock { product, on_hand } => {
            let product = u64::from(product) % PRODUCT_IDS;
            let on_hand = on_hand.value();
            let expected = model.set_on_hand(product, i128::from(on_hand));
            let answer = engine.set_stock(ProductId(product), on_hand).wait();
            let answer = answer.map(|stock| assert_eq!(stock.on_hand, on_hand));
            (expected, answer)
        }
        Operation::AdjustStock { product, delta } => {
            let product = u64::from(product) % PRODUCT_IDS;
            let delta = delta.value();
            let expected = match model.stock.get(&product) {
                Some(&(on_hand, _)) => {
                    model.set_on_hand(product, i128::from(on_hand) + i128::from(delta))
                }
                None => Expected::NotFound,
            };
            let answer = engine
                .adjust_stock(ProductId(product), delta)
                .wait()
                .map(drop);
            (expected, answer)
        }
        Operation::Reserve {
            order,
            lines,
            ttl_seconds,
        } => {
            let order = order % ORDERS;
            let lines: Vec<(u64, u64)> = lines
                .iter()
                .map(|&(product, quantity)| (u64::from(product) % PRODUCT_IDS, quantity.value()))
                .collect();
            let ttl = ttl_seconds.map(|seconds| Duration::from_secs(u64::from(seconds)));
            let expected = model.reserve(order, &lines, ttl);
            let answer = engine
                .reserve(ReserveRequest {
                    order_id: order_id(order),
                    items: lines
                        .iter()
                        .map(|&(product, quantity)| ReservationLine {
                            product_id: ProductId(product),
                            quantity,
                        })
                        .collect(),
                    ttl,
                })
                .wait()
                .map(drop);
            (expected, answer)
        }
        Operation::Commit { order } => {
            let order = order % ORDERS;
            let expected = model.finish(order, ReservationStatus::Committed);
            let answer = engine.commit_reservation(order_id(order)).wait().map(drop);
            (expected, answer)
        }
        Operation::Release { order } => {
            let order = order % ORDERS;
            let expected = model.finish(order, ReservationStatus::Released);
            let answer = engine.release_reservation(order_id(order)).wait().map(drop);
            (expected, answer)
        }
        Operation::Advance { seconds } => {
            clock.advance(Duration::from_secs(u64::from(seconds)));
            model.now += u64::from(seconds) * 1_000;
            model.expire();
            // Every batch expires what is due before its commands.
            let answer = engine.flush().wait();
            (Expected::Ok, answer)
        }
        Operation::Reopen => {
            engine.shutdown();
            drop(engine);
            let engine = Engine::open(config.clone()).expect("the store reopens");
            return engine;
        }
    };
    let got = match &answer {
        Ok(()) => Expected::Ok,
        Err(error) => kind(error),
    };
    assert_eq!(got, expected, "{operation:?} answered {answer:?}");
    engine
}

fn check(engine: &Engine, model: &Model) {
    for product in 0..PRODUCT_IDS {
        let stock = engine.stock(ProductId(product)).expect("a read");
        match (stock, model.stock.get(&product)) {
            (None, None) => {}
            (Some(stock), Some(&(on_hand, reserved))) => {
                assert!(stock.reserved <= stock.on_hand, "oversold: {stock:?}");
                assert_eq!(
                    (stock.on_hand, stock.reserved),
                    (on_hand, reserved),
                    "product {product}"
                );
                let held: u64 = model
                    .reservations
                    .values()
                    .filter(|held| held.status == ReservationStatus::Active)
                    .flat_map(|held| held.lines.iter())
                    .filter(|(line_product, _)| *line_product == product)
                    .map(|(_, quantity)| quantity)
                    .sum();
                assert_eq!(
                    stock.reserved, held,
                    "product {product}: reserved is what is held"
                );
            }
            (stock, modelled) => panic!("product {product}: engine {stock:?}, model {modelled:?}"),
        }
    }
    for order in 0..ORDERS {
        let reservation = engine.reservation(order_id(order)).expect("a read");
        match (reservation, model.reservations.get(&order)) {
            (None, None) => {}
            (Some(reservation), Some(held)) => {
                assert_eq!(reservation.status, held.status, "order {order}");
                assert_eq!(reservation.expires_at.0, held.expires_at, "order {order}");
            }
            (reservation, held) => panic!("order {order}: engine {reservation:?}, model {held:?}"),
        }
    }
}
