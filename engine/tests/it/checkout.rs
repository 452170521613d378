//! The saga runner ([`Checkout`]) with the built-in simulated gateway: the
//! contract's test tokens end to end, webhooks signed and verified as the
//! server does, gateway timeouts charged once, a gateway that keeps failing,
//! the late success refunded, and a restart that resumes every order.
//! Tests wait for outcomes with a bounded poll, never on timing.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mercato_engine::{
    ChargeOutcome, Checkout, CheckoutConfig, Engine, GatewayFuture, ManualClock, NewOrder, Order,
    OrderId, OrderStatus, PaymentGateway, PaymentResult, PaymentStatus, ProductId, ReservationLine,
    ReservationStatus, RetryPolicy, SimulatedGateway, SimulatedGatewayConfig, SystemClock,
    WebhookOutcome, WebhookSecret, WebhookSink,
};

use crate::support::{START, check_log_matches_stock, open, product};

/// Delivers the simulated gateway's webhooks the way the server's route
/// does: verify the signature, then apply the event once.
#[derive(Default)]
struct Webhooks {
    engine: OnceLock<Engine>,
    gateway: OnceLock<Arc<SimulatedGateway>>,
    /// While set, deliveries are refused (the gateway retries them).
    hold: std::sync::atomic::AtomicBool,
}

impl WebhookSink for Webhooks {
    fn deliver(
        &self,
        signature_header: String,
        body: Vec<u8>,
    ) -> GatewayFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if self.hold.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("held".to_owned());
            }
            let (Some(engine), Some(gateway)) = (self.engine.get(), self.gateway.get()) else {
                return Err("not ready".to_owned());
            };
            let headers = [("Mercato-Signature", signature_header.as_str())];
            let now = mercato_engine::Clock::now(&SystemClock);
            let event = gateway
                .verify_webhook(&headers, &body, now)
                .map_err(|error| error.to_string())?;
            let outcome = match event.outcome {
                WebhookOutcome::Succeeded => ChargeOutcome::Succeeded {
                    provider_reference: String::new(),
                },
                WebhookOutcome::Failed { reason } => ChargeOutcome::Failed { reason },
                _ => return Err("unknown outcome".to_owned()),
            };
            engine
                .record_payment_result(PaymentResult {
                    payment_id: event.payment_id,
                    outcome,
                    webhook_event_id: Some(event.id),
                })
                .await
                .map(|_| ())
                .map_err(|error| error.to_string())
        })
    }
}

struct Shop {
    engine: Engine,
    gateway: Arc<SimulatedGateway>,
    checkout: Checkout,
    webhooks: Arc<Webhooks>,
}

fn gateway_config() -> SimulatedGatewayConfig {
    let mut config = SimulatedGatewayConfig::new(WebhookSecret::new("whsec_test"));
    config.webhook_delay = Duration::from_millis(50);
    config.webhook_retry.backoff_base = Duration::from_millis(10);
    config
}

fn fast_retries() -> CheckoutConfig {
    let mut config = CheckoutConfig::default();
    config.retry = RetryPolicy {
        attempts_max: 4,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        attempt_timeout: Duration::from_millis(300),
    };
    config
}

fn shop(engine: Engine, configure: impl FnOnce(&mut SimulatedGatewayConfig)) -> Shop {
    let mut config = gateway_config();
    configure(&mut config);
    let sink = Arc::new(Webhooks::default());
    let gateway = Arc::new(SimulatedGateway::new(config, sink.clone()).unwrap());
    let _ = sink.engine.set(engine.clone());
    let _ = sink.gateway.set(gateway.clone());
    let as_gateway: Arc<dyn PaymentGateway> = gateway.clone();
    let checkout = Checkout::start(engine.clone(), as_gateway, fast_retries()).unwrap();
    Shop {
        engine,
        gateway,
        checkout,
        webhooks: sink,
    }
}

fn new_order(user: &str, product: u64, quantity: u64, token: &str) -> NewOrder {
    NewOrder::new(
        user,
        vec![ReservationLine {
            product_id: ProductId(product),
            quantity,
        }],
        token,
    )
}

/// Polls until `done` holds for the order, for at most 30 s.
async fn until(engine: &Engine, order_id: OrderId, done: impl Fn(&Order) -> bool) -> Order {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let order = engine.order(order_id).unwrap().unwrap();
        if done(&order) {
            return order;
        }
        assert!(Instant::now() < deadline, "order stuck: {order:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn is_final(order: &Order) -> bool {
    matches!(
        order.status,
        OrderStatus::Confirmed | OrderStatus::PaymentFailed | OrderStatus::Cancelled
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_tokens_end_as_the_contract_says() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &ManualClock::new(START));
    engine.create_product(product(1, 100)).await.unwrap();
    let shop = shop(engine, |_| {});
    let engine = &shop.engine;
    let mut placed = Vec::new();
    for token in [
        "tok_visa",
        "tok_chargeDeclined",
        "tok_insufficientFunds",
        "tok_delayed",
    ] {
        placed.push((
            token,
            engine
                .place_order(new_order("kim", 1, 2, token))
                .await
                .unwrap(),
        ));
    }
    for (token, order) in placed {
        let order = until(engine, order.id, is_final).await;
        let payment = engine.payment_of_order(order.id).unwrap().unwrap();
        let reservation = engine.reservation(order.id).unwrap().unwrap();
        match token {
            "tok_visa" | "tok_delayed" => {
                assert_eq!(order.status, OrderStatus::Confirmed, "{token}");
                assert_eq!(payment.status, PaymentStatus::Succeeded);
                assert_eq!(reservation.status, ReservationStatus::Committed);
                assert_eq!(shop.gateway.charges_for(order.id).len(), 1, "charged once");
            }
            _ => {
                assert_eq!(order.status, OrderStatus::PaymentFailed, "{token}");
                let reason = if token == "tok_chargeDeclined" {
                    "card_declined"
                } else {
                    "insufficient_funds"
                };
                assert_eq!(order.failure_reason.as_deref(), Some(reason));
                assert_eq!(reservation.status, ReservationStatus::Released);
            }
        }
    }
    let stock = engine.stock(ProductId(1)).unwrap().unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (96, 0));
    check_log_matches_stock(engine);
    shop.checkout.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_times_out_is_asked_again_and_charges_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &ManualClock::new(START));
    engine.create_product(product(1, 10)).await.unwrap();
    let shop = shop(engine, |config| config.timeout_first_calls = 2);
    let order = shop
        .engine
        .place_order(new_order("lee", 1, 1, "tok_visa"))
        .await
        .unwrap();
    let order = until(&shop.engine, order.id, is_final).await;
    assert_eq!(order.status, OrderStatus::Confirmed);
    assert_eq!(shop.gateway.charges_for(order.id).len(), 1);
    shop.checkout.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_keeps_failing_fails_the_order_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &ManualClock::new(START));
    engine.create_product(product(1, 10)).await.unwrap();
    let shop = shop(engine, |config| config.failure_rate = 1.0);
    let order = shop
        .engine
        .place_order(new_order("max", 1, 3, "tok_visa"))
        .await
        .unwrap();
    let order = until(&shop.engine, order.id, is_final).await;
    assert_eq!(order.status, OrderStatus::PaymentFailed);
    assert_eq!(order.failure_reason.as_deref(), Some("gateway_unavailable"));
    assert_eq!(
        shop.engine.stock(ProductId(1)).unwrap().unwrap().reserved,
        0
    );
    shop.checkout.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_after_the_reservation_expired_is_refunded() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = open(dir.path(), &clock);
    engine.create_product(product(1, 10)).await.unwrap();
    // The charge settles at the gateway, but its webhook is held back until
    // after the reservation expired (and the void found it settled).
    let shop = shop(engine, |config| {
        config.webhook_retry.attempts_max = mercato_engine::RETRY_ATTEMPTS_MAX;
        config.webhook_retry.backoff_max = Duration::from_millis(50);
    });
    shop.webhooks
        .hold
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let engine = &shop.engine;
    let mut new = new_order("ned", 1, 2, "tok_delayed");
    new.ttl = Some(Duration::from_secs(60));
    let order = engine.place_order(new).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while shop
        .gateway
        .charges_for(order.id)
        .first()
        .map(|charge| charge.status.clone())
        != Some(mercato_engine::ChargeStatus::Succeeded)
    {
        assert!(Instant::now() < deadline, "the charge never settled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while engine
        .payment_of_order(order.id)
        .unwrap()
        .unwrap()
        .provider_reference
        .is_none()
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    clock.advance(Duration::from_secs(61));
    engine.flush().await.unwrap();
    let order = engine.order(order.id).unwrap().unwrap();
    assert_eq!(order.failure_reason.as_deref(), Some("reservation_expired"));
    shop.webhooks
        .hold
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let payment = engine.payment_of_order(order.id).unwrap().unwrap();
        if payment.status == PaymentStatus::Refunded {
            assert_eq!(payment.refunded_amount, payment.amount);
            break;
        }
        assert!(Instant::now() < deadline, "not refunded: {payment:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let charges = shop.gateway.charges_for(order.id);
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].refunded_amount, charges[0].amount);
    let saga = engine.saga(order.id).unwrap();
    assert!(saga.iter().any(|entry| entry.step_name == "REFUND_PAYMENT"
        && entry.status == mercato_engine::SagaStatus::Completed));
    assert_eq!(
        engine.reservation(order.id).unwrap().unwrap().status,
        ReservationStatus::Expired
    );
    shop.checkout.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_every_order_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = open(dir.path(), &clock);
    engine.create_product(product(1, 50)).await.unwrap();
    // Orders placed while no runner was there (as after a crash).
    let mut orders = Vec::new();
    for n in 0..20 {
        orders.push(
            engine
                .place_order(new_order(&format!("u{n}"), 1, 1, "tok_visa"))
                .await
                .unwrap(),
        );
    }
    engine.shutdown();
    drop(engine);
    let engine = open(dir.path(), &clock);
    let shop = shop(engine, |_| {});
    for order in &orders {
        let order = until(&shop.engine, order.id, is_final).await;
        assert_eq!(order.status, OrderStatus::Confirmed);
        assert_eq!(shop.gateway.charges_for(order.id).len(), 1);
    }
    shop.checkout.stop().await;
    check_log_matches_stock(&shop.engine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_while_the_charge_is_pending_voids_it_at_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &ManualClock::new(START));
    engine.create_product(product(1, 10)).await.unwrap();
    let shop = shop(engine, |config| {
        config.webhook_delay = Duration::from_secs(3)
    });
    let engine = &shop.engine;
    let order = engine
        .place_order(new_order("ola", 1, 2, "tok_delayed"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while engine
        .payment_of_order(order.id)
        .unwrap()
        .unwrap()
        .provider_reference
        .is_none()
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    engine.cancel_order(order.id).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let saga = engine.saga(order.id).unwrap();
        if saga.iter().any(|entry| {
            entry.step_name == "VOID_PAYMENT"
                && entry.status == mercato_engine::SagaStatus::Completed
        }) {
            break;
        }
        assert!(Instant::now() < deadline, "not voided: {saga:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let charges = shop.gateway.charges_for(order.id);
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].status, mercato_engine::ChargeStatus::Voided);
    let payment = engine.payment_of_order(order.id).unwrap().unwrap();
    assert_eq!(payment.status, PaymentStatus::Voided);
    assert_eq!(engine.stock(ProductId(1)).unwrap().unwrap().reserved, 0);
    shop.checkout.stop().await;
}
