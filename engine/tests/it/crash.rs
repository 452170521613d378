//! Crash test: a child process hammers the engine and is killed with SIGKILL
//! at random moments, again and again. After each kill the store reopens with
//! every reservation whose success was reported, and the invariants hold.
//! A reader in the child polls reservations in flight and the stock while
//! the writers run: nothing it saw may be contradicted by the reopened store
//! (reads show only durable state, never a batch a crash could undo).
//!
//! The child is this same test binary, re-run with a filter that selects
//! [`crash_child`] and an environment variable naming the data directory.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mercato_engine::{
    Engine, EngineConfig, NewProduct, OrderId, ProductId, ReservationLine, ReservationStatus,
    ReserveRequest, Uuid,
};
use rand::Rng;

use crate::support::check_log_matches_stock;

const CHILD_DIR: &str = "MERCATO_CRASH_CHILD_DIR";
const PRODUCTS: u64 = 6;
const ROUNDS: usize = 6;
/// The child stops by itself after this long, should the parent not kill it.
const CHILD_LIFETIME: Duration = Duration::from_secs(30);

/// The child: does nothing unless started by the crash test.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let mut config = EngineConfig::new(dir);
    // Checkpoints (and new log segments) often, so kills land in every
    // phase: between checkpoints, during one, around a segment's rotation.
    config.checkpoint_interval = Duration::from_millis(20);
    let engine = Engine::open(config).unwrap();
    if engine.is_empty().unwrap() {
        let products = (1..=PRODUCTS)
            .map(|id| NewProduct {
                id: Some(ProductId(id)),
                name: format!("Product {id}"),
                price: "1.00".parse().unwrap(),
                on_hand: 1_000_000,
                ..NewProduct::default()
            })
            .collect();
        engine.import_products(products).wait().unwrap();
    }
    println!("READY");
    let started = Instant::now();
    // Orders being reserved now, for the reader to look at.
    let in_flight = Arc::new(Mutex::new(VecDeque::<OrderId>::new()));
    let reader = {
        let engine = engine.clone();
        let in_flight = in_flight.clone();
        std::thread::spawn(move || read_while_writing(&engine, &in_flight, started))
    };
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let engine = engine.clone();
            let in_flight = in_flight.clone();
            std::thread::spawn(move || {
                let mut rng = rand::rng();
                while started.elapsed() < CHILD_LIFETIME {
                    let order_id = OrderId(Uuid::now_v7());
                    {
                        let mut in_flight = in_flight.lock().unwrap();
                        in_flight.push_back(order_id);
                        if in_flight.len() > 16 {
                            in_flight.pop_front();
                        }
                    }
                    let first = rng.random_range(1..=PRODUCTS);
                    let lines = rng.random_range(1..=3_u64);
                    let items = (0..lines)
                        .map(|n| ReservationLine {
                            product_id: ProductId((first + n - 1) % PRODUCTS + 1),
                            quantity: rng.random_range(1..=3),
                        })
                        .collect();
                    let request = ReserveRequest {
                        order_id,
                        items,
                        ttl: None,
                    };
                    if engine.reserve(request).wait().is_ok() {
                        say(&format!("ACK {order_id}"));
                        match rng.random_range(0..4) {
                            0 if engine.commit_reservation(order_id).wait().is_ok() => {
                                say(&format!("COMMITTED {order_id}"));
                            }
                            1 if engine.release_reservation(order_id).wait().is_ok() => {
                                say(&format!("RELEASED {order_id}"));
                            }
                            _ => {}
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    reader.join().unwrap();
}

/// Polls the reservations in flight and every product's stock, printing
/// what it sees: `SEEN <order> <status>` and `STOCK <product> <on_hand>`.
fn read_while_writing(engine: &Engine, in_flight: &Mutex<VecDeque<OrderId>>, started: Instant) {
    let mut seen: HashMap<OrderId, ReservationStatus> = HashMap::new();
    let mut on_hand: HashMap<ProductId, u64> = HashMap::new();
    while started.elapsed() < CHILD_LIFETIME {
        let orders: Vec<OrderId> = in_flight.lock().unwrap().iter().copied().collect();
        for order_id in orders {
            if let Some(reservation) = engine.reservation(order_id).unwrap()
                && seen.insert(order_id, reservation.status) != Some(reservation.status)
            {
                say(&format!("SEEN {order_id} {}", reservation.status.as_str()));
            }
        }
        for id in 1..=PRODUCTS {
            let stock = engine.stock(ProductId(id)).unwrap().unwrap();
            if on_hand.insert(stock.product_id, stock.on_hand) != Some(stock.on_hand) {
                say(&format!("STOCK {id} {}", stock.on_hand));
            }
        }
    }
}

fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}").unwrap();
    stdout.flush().unwrap();
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if std::env::var(CHILD_DIR).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut expected: HashMap<OrderId, ReservationStatus> = HashMap::new();
    // The lowest on_hand the reader saw per product: only commits change
    // on_hand here, and they lower it, so the store may not show more.
    let mut on_hand_seen: HashMap<ProductId, u64> = HashMap::new();
    let mut rng = rand::rng();
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash::crash_child",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let (ready_sender, ready) = std::sync::mpsc::channel();
        let reader = {
            let lines = lines.clone();
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    // libtest prints the test's name on the same line.
                    if line.ends_with("READY") {
                        let _ = ready_sender.send(());
                    }
                    lines.lock().unwrap().push(line);
                }
            })
        };
        ready
            .recv_timeout(Duration::from_secs(60))
            .expect("the child starts");
        std::thread::sleep(Duration::from_millis(rng.random_range(20..400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();

        for line in lines.lock().unwrap().iter() {
            let words: Vec<&str> = line.split(' ').collect();
            // The last line may be cut off by the kill: every parse is checked.
            let status = match words.as_slice() {
                ["ACK", _] => ReservationStatus::Active,
                ["COMMITTED", _] => ReservationStatus::Committed,
                ["RELEASED", _] => ReservationStatus::Released,
                ["SEEN", _, "active"] => ReservationStatus::Active,
                ["SEEN", _, "committed"] => ReservationStatus::Committed,
                ["SEEN", _, "released"] => ReservationStatus::Released,
                ["STOCK", id, value] => {
                    if let (Ok(id), Ok(value)) = (id.parse(), value.parse::<u64>()) {
                        let seen = on_hand_seen.entry(ProductId(id)).or_insert(value);
                        *seen = (*seen).min(value);
                    }
                    continue;
                }
                _ => continue,
            };
            let Ok(order_id) = words[1].parse::<OrderId>() else {
                continue;
            };
            let entry = expected.entry(order_id).or_insert(status);
            if *entry == ReservationStatus::Active {
                *entry = status;
            }
        }

        let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
        for (order_id, status) in &expected {
            let reservation = engine.reservation(*order_id).unwrap().unwrap_or_else(|| {
                panic!("round {round}: {order_id}, acknowledged or seen by a reader, is lost")
            });
            if *status != ReservationStatus::Active {
                assert_eq!(reservation.status, *status, "round {round}: {order_id}");
            }
        }
        for (product_id, seen) in &on_hand_seen {
            let on_hand = engine.stock(*product_id).unwrap().unwrap().on_hand;
            assert!(
                on_hand <= *seen,
                "round {round}: a reader saw on_hand {seen} of {product_id}, the store has {on_hand}"
            );
        }
        check_log_matches_stock(&engine);
        engine.shutdown();
    }
    assert!(
        !expected.is_empty(),
        "the children acknowledged some reservations"
    );
}
