//! Crash test of checkout: a child process places a stream of orders with a
//! mix of test tokens while the saga runner charges them through the
//! simulated gateway, and is killed with SIGKILL at random moments, again
//! and again, so kills land in every saga step. After the last round the
//! store is reopened with a runner until every order has ended, and the
//! contract's invariants hold: stock as the log says (1 to 3), every
//! acknowledged order present (4), one payment per order whose amount is
//! the order's total (5), and each order's reservation as its status says
//! (6).
//!
//! The child is this same test binary, re-run with a filter that selects
//! [`checkout_crash_child`] and an environment variable naming the data
//! directory.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mercato_engine::{
    Checkout, CheckoutConfig, Engine, EngineConfig, GatewayFuture, NewOrder, NewProduct, OrderId,
    OrderStatus, PaymentGateway, PaymentStatus, ProductId, ReservationLine, ReservationStatus,
    SimulatedGateway, SimulatedGatewayConfig, WebhookSecret, WebhookSink,
};
use rand::Rng;

use crate::support::check_log_matches_stock;

const CHILD_DIR: &str = "MERCATO_CHECKOUT_CRASH_CHILD_DIR";
const PRODUCTS: u64 = 4;
const ROUNDS: usize = 5;
const CHILD_LIFETIME: Duration = Duration::from_secs(30);
/// Orders hold their stock this long, so the ones whose outcome the crash
/// lost (a delayed charge's webhook) end soon.
const ORDER_TTL: Duration = Duration::from_secs(2);
const TOKENS: [&str; 4] = [
    "tok_visa",
    "tok_visa",
    "tok_chargeDeclined",
    "tok_insufficientFunds",
];

/// Webhooks go nowhere here: only synchronous outcomes are used.
struct NoWebhooks;

impl WebhookSink for NoWebhooks {
    fn deliver(&self, _: String, _: Vec<u8>) -> GatewayFuture<'_, Result<(), String>> {
        Box::pin(async { Err("no webhooks in this test".to_owned()) })
    }
}

fn start_checkout(engine: &Engine) -> Checkout {
    let config = SimulatedGatewayConfig::new(WebhookSecret::new("whsec_crash"));
    let gateway: Arc<dyn PaymentGateway> =
        Arc::new(SimulatedGateway::new(config, Arc::new(NoWebhooks)).unwrap());
    Checkout::start(engine.clone(), gateway, CheckoutConfig::default()).unwrap()
}

fn config(dir: &str) -> EngineConfig {
    let mut config = EngineConfig::new(dir);
    config.checkpoint_interval = Duration::from_millis(20);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let engine = Engine::open(config(&dir)).unwrap();
    if engine.is_empty().unwrap() {
        let products = (1..=PRODUCTS)
            .map(|id| NewProduct {
                id: Some(ProductId(id)),
                name: format!("Product {id}"),
                price: "2.50".parse().unwrap(),
                on_hand: 1_000_000,
                ..NewProduct::default()
            })
            .collect();
        engine.import_products(products).await.unwrap();
    }
    let _checkout = start_checkout(&engine);
    say("READY");
    let started = Instant::now();
    let mut rng = rand::rng();
    while started.elapsed() < CHILD_LIFETIME {
        let token = TOKENS[rng.random_range(0..TOKENS.len())];
        let lines = (1..=rng.random_range(1..=3_u64))
            .map(|product| ReservationLine {
                product_id: ProductId(product),
                quantity: rng.random_range(1..=3),
            })
            .collect();
        let mut order = NewOrder::new("buyer", lines, token);
        order.ttl = Some(ORDER_TTL);
        if let Ok(order) = engine.place_order(order).await {
            say(&format!("PLACED {}", order.id));
        }
    }
}

fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}").unwrap();
    stdout.flush().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_ends_and_the_invariants_hold_across_crashes() {
    if std::env::var(CHILD_DIR).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_owned();
    let mut placed: Vec<OrderId> = Vec::new();
    let mut rng = rand::rng();
    for _ in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "checkout_crash::checkout_crash_child",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_DIR, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut ready = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.ends_with("READY") && ready.is_none() {
                    ready = Some(Instant::now());
                }
                lines.push(line);
            }
            lines
        });
        // Let it work for a while, then kill it wherever it is.
        std::thread::sleep(Duration::from_millis(rng.random_range(300..900)));
        child.kill().unwrap();
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            if let Some(id) = line.strip_prefix("PLACED ")
                && let Ok(id) = id.parse()
            {
                placed.push(id);
            }
        }
    }
    assert!(!placed.is_empty(), "the children placed orders");

    // Reopen with a runner until every order has ended.
    let engine = Engine::open(config(&path)).unwrap();
    let checkout = start_checkout(&engine);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut waiting: HashMap<OrderId, OrderStatus> = HashMap::new();
    loop {
        waiting.clear();
        for id in &placed {
            let order = engine
                .order(*id)
                .unwrap()
                .unwrap_or_else(|| panic!("acknowledged order {id} is lost"));
            if matches!(
                order.status,
                OrderStatus::AwaitingPayment | OrderStatus::Pending
            ) {
                waiting.insert(*id, order.status);
            }
        }
        // Orders acknowledged but not yet printed when the kill came end too.
        let reserved: u64 = (1..=PRODUCTS)
            .map(|product| engine.stock(ProductId(product)).unwrap().unwrap().reserved)
            .sum();
        if waiting.is_empty() && reserved == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "orders never ended: {waiting:?}");
        // Expire what the crash left without an outcome.
        engine.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    checkout.stop().await;

    for id in &placed {
        let order = engine.order(*id).unwrap().unwrap();
        let reservation = engine.reservation(*id).unwrap();
        let payment = engine.payment_of_order(*id).unwrap();
        match order.status {
            OrderStatus::Confirmed => {
                assert_eq!(
                    reservation.unwrap().status,
                    ReservationStatus::Committed,
                    "{id}"
                );
                let payment = payment.unwrap();
                assert_eq!(payment.status, PaymentStatus::Succeeded, "{id}");
                assert_eq!(payment.amount, order.total_amount, "{id}");
            }
            OrderStatus::PaymentFailed | OrderStatus::Cancelled => {
                if let Some(reservation) = reservation {
                    assert!(
                        matches!(
                            reservation.status,
                            ReservationStatus::Released | ReservationStatus::Expired
                        ),
                        "{id}: {reservation:?}"
                    );
                }
                if let Some(payment) = payment {
                    assert_ne!(payment.status, PaymentStatus::Succeeded, "{id}: kept money");
                }
            }
            other => panic!("{id} ended {other:?}"),
        }
    }
    let confirmed = placed
        .iter()
        .filter(|id| engine.order(**id).unwrap().unwrap().status == OrderStatus::Confirmed)
        .count();
    eprintln!(
        "checkout crash: {ROUNDS} kills, {} orders acknowledged, {confirmed} confirmed",
        placed.len()
    );
    check_log_matches_stock(&engine);
    for product in 1..=PRODUCTS {
        let stock = engine.stock(ProductId(product)).unwrap().unwrap();
        assert_eq!(stock.reserved, 0, "nothing left reserved");
    }
}
