//! Orders through the public API: placing (priced, reserved and logged in
//! one transaction), payment outcomes, every compensation, shipping, and
//! the state machine's refusals. The gateway is not involved here: the
//! tests report its outcomes as the saga runner would.

use std::sync::Arc;
use std::time::Duration;

use mercato_engine::{
    ChargeOutcome, Engine, Error, Event, ManualClock, NewOrder, OrderId, OrderStatus,
    PaymentResult, PaymentStatus, ProductId, ProductPatch, ReservationLine, ReservationStatus,
    SagaStatus,
};

use crate::support::{START, check_log_matches_stock, open, product};

fn lines(lines: &[(u64, u64)]) -> Vec<ReservationLine> {
    lines
        .iter()
        .map(|&(product, quantity)| ReservationLine {
            product_id: ProductId(product),
            quantity,
        })
        .collect()
}

fn place(engine: &Engine, user: &str, items: &[(u64, u64)]) -> mercato_engine::Order {
    engine
        .place_order(NewOrder::new(user, lines(items), "tok_visa"))
        .wait()
        .unwrap()
}

fn succeed(engine: &Engine, order: &mercato_engine::Order) -> mercato_engine::Payment {
    engine
        .record_payment_result(PaymentResult {
            payment_id: order.payment_id.unwrap(),
            outcome: ChargeOutcome::Succeeded {
                provider_reference: "ch_1".to_owned(),
            },
            webhook_event_id: None,
        })
        .wait()
        .unwrap()
}

fn fail(engine: &Engine, order: &mercato_engine::Order, reason: &str) {
    engine
        .record_payment_result(PaymentResult {
            payment_id: order.payment_id.unwrap(),
            outcome: ChargeOutcome::Failed {
                reason: reason.to_owned(),
            },
            webhook_event_id: None,
        })
        .wait()
        .unwrap();
}

fn steps(engine: &Engine, order_id: OrderId) -> Vec<String> {
    engine
        .saga(order_id)
        .unwrap()
        .into_iter()
        .map(|entry| {
            format!(
                "{}{} {}",
                if entry.is_compensating { "~" } else { "" },
                entry.step_name,
                entry.status.as_str()
            )
        })
        .collect()
}

fn engine_with_stock(dir: &std::path::Path, clock: &ManualClock) -> Engine {
    let engine = open(dir, clock);
    engine.create_product(product(1, 10)).wait().unwrap();
    engine.create_product(product(2, 5)).wait().unwrap();
    engine
}

#[test]
fn an_order_is_priced_reserved_paid_and_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = engine_with_stock(dir.path(), &clock);
    let order = place(&engine, "alice", &[(1, 2), (2, 1)]);
    assert_eq!(order.status, OrderStatus::AwaitingPayment);
    assert_eq!(order.total_amount, "29.97".parse().unwrap(), "3 x 9.99");
    assert_eq!(order.items[0].unit_price, "9.99".parse().unwrap());
    let reservation = engine.reservation(order.id).unwrap().unwrap();
    assert_eq!(reservation.status, ReservationStatus::Active);
    let payment = engine.payment_of_order(order.id).unwrap().unwrap();
    assert_eq!(payment.status, PaymentStatus::Pending);
    assert_eq!(payment.amount, order.total_amount);
    assert_eq!(Some(payment.id), order.payment_id);

    // A price change after the order does not touch it.
    let patch = ProductPatch {
        price: Some("1.00".parse().unwrap()),
        ..ProductPatch::default()
    };
    engine.update_product(ProductId(1), patch).wait().unwrap();

    let payment = succeed(&engine, &order);
    assert_eq!(payment.status, PaymentStatus::Succeeded);
    let order = engine.order(order.id).unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::Confirmed);
    assert_eq!(order.total_amount, "29.97".parse().unwrap());
    let stock = engine.stock(ProductId(1)).unwrap().unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (8, 0));
    assert_eq!(
        engine.reservation(order.id).unwrap().unwrap().status,
        ReservationStatus::Committed
    );
    assert_eq!(
        steps(&engine, order.id),
        [
            "RESERVE_INVENTORY STARTED",
            "RESERVE_INVENTORY COMPLETED",
            "PROCESS_PAYMENT STARTED",
            "PROCESS_PAYMENT COMPLETED",
            "COMMIT_INVENTORY COMPLETED",
        ]
    );
    let types: Vec<&str> = engine
        .events_after(0, 100)
        .unwrap()
        .iter()
        .map(|envelope| envelope.event.type_name())
        .filter(|name| name.starts_with("order.") || name.starts_with("payment."))
        .collect();
    assert_eq!(
        types,
        ["order.created", "payment.successful", "order.confirmed"]
    );
    // A repeated outcome changes nothing.
    succeed(&engine, &order);
    assert_eq!(engine.stock(ProductId(1)).unwrap().unwrap().on_hand, 8);
    check_log_matches_stock(&engine);
}

#[test]
fn insufficient_stock_cancels_the_order_and_reserves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = engine_with_stock(dir.path(), &clock);
    let order = place(&engine, "bob", &[(1, 2), (2, 6)]);
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert_eq!(order.failure_reason.as_deref(), Some("insufficient_stock"));
    assert_eq!(order.payment_id, None);
    assert_eq!(engine.reservation(order.id).unwrap(), None);
    assert_eq!(engine.payment_of_order(order.id).unwrap(), None);
    assert_eq!(engine.stock(ProductId(1)).unwrap().unwrap().reserved, 0);
    assert_eq!(
        steps(&engine, order.id),
        ["RESERVE_INVENTORY STARTED", "RESERVE_INVENTORY FAILED"]
    );
}

#[test]
fn a_declined_payment_fails_the_order_and_releases_its_stock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = engine_with_stock(dir.path(), &clock);
    let order = place(&engine, "carol", &[(1, 3)]);
    fail(&engine, &order, "card_declined");
    let order = engine.order(order.id).unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::PaymentFailed);
    assert_eq!(order.failure_reason.as_deref(), Some("card_declined"));
    let stock = engine.stock(ProductId(1)).unwrap().unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (10, 0));
    assert_eq!(
        steps(&engine, order.id)[3..],
        ["PROCESS_PAYMENT FAILED", "~RELEASE_INVENTORY COMPLETED"]
    );
    // A late success for a failed payment changes nothing.
    succeed(&engine, &order);
    let payment = engine.payment_of_order(order.id).unwrap().unwrap();
    assert_eq!(payment.status, PaymentStatus::Failed);
    check_log_matches_stock(&engine);
}

#[test]
fn a_webhook_event_takes_effect_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = engine_with_stock(dir.path(), &clock);
    let order = place(&engine, "dan", &[(1, 1)]);
    let result = PaymentResult {
        payment_id: order.payment_id.unwrap(),
        outcome: ChargeOutcome::Succeeded {
            provider_reference: "ch_2".to_owned(),
        },
        webhook_event_id: Some("evt_1".to_owned()),
    };
    engine.record_payment_result(result.clone()).wait().unwrap();
    let events = engine.last_event_seq();
    engine.record_payment_result(result).wait().unwrap();
    assert_eq!(engine.last_event_seq(), events, "the repeat wrote nothing");
    assert_eq!(
        engine.order(order.id).unwrap().unwrap().status,
        OrderStatus::Confirmed
    );
}

#[test]
fn an_expired_reservation_cancels_the_order_and_a_late_success_is_refunded() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = engine_with_stock(dir.path(), &clock);
    let mut new = NewOrder::new("erin", lines(&[(1, 4)]), "tok_delayed");
    new.ttl = Some(Duration::from_secs(60));
    let order = engine.place_order(new).wait().unwrap();
    clock.advance(Duration::from_secs(61));
    engine.flush().wait().unwrap();
    let cancelled = engine.order(order.id).unwrap().unwrap();
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(
        cancelled.failure_reason.as_deref(),
        Some("reservation_expired")
    );
    assert_eq!(
        engine.reservation(order.id).unwrap().unwrap().status,
        ReservationStatus::Expired
    );
    assert_eq!(engine.stock(ProductId(1)).unwrap().unwrap().reserved, 0);
    let payment = engine.payment_of_order(order.id).unwrap().unwrap();
    assert_eq!(payment.status, PaymentStatus::Voided);

    // The charge succeeded at the gateway anyway: recorded, then refunded.
    let payment = succeed(&engine, &order);
    assert_eq!(payment.status, PaymentStatus::Succeeded);
    assert_eq!(
        engine.order(order.id).unwrap().unwrap().status,
        OrderStatus::Cancelled,
        "stays cancelled"
    );
    assert_eq!(
        engine.reservation(order.id).unwrap().unwrap().status,
        ReservationStatus::Expired,
        "not committed, not released twice"
    );
    let log = engine.saga(order.id).unwrap();
    let last = log.last().unwrap();
    assert_eq!(last.step_name, "REFUND_PAYMENT");
    assert!(last.is_compensating);
    assert_eq!(last.status, SagaStatus::Started);

    let too_much = engine
        .record_refund(payment.id, payment.amount + rust_decimal::Decimal::ONE)
        .wait();
    assert!(
        matches!(too_much, Err(Error::RefundExceedsCaptured { .. })),
        "{too_much:?}"
    );
    let half = payment.amount / rust_decimal::Decimal::TWO;
    let partial = engine.record_refund(payment.id, half).wait().unwrap();
    assert_eq!(partial.status, PaymentStatus::PartiallyRefunded);
    let full = engine
        .record_refund(payment.id, payment.amount - half)
        .wait()
        .unwrap();
    assert_eq!(full.status, PaymentStatus::Refunded);
    assert_eq!(full.refunded_amount, payment.amount);
    check_log_matches_stock(&engine);
}

#[test]
fn cancel_follows_the_state_machine_at_each_status() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = engine_with_stock(dir.path(), &clock);

    // Awaiting payment: stock released, payment voided.
    let waiting = place(&engine, "fay", &[(1, 2)]);
    let cancelled = engine.cancel_order(waiting.id).wait().unwrap();
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(engine.stock(ProductId(1)).unwrap().unwrap().reserved, 0);
    assert_eq!(
        engine.payment_of_order(waiting.id).unwrap().unwrap().status,
        PaymentStatus::Voided
    );
    // Again: answered as it is.
    assert_eq!(
        engine.cancel_order(waiting.id).wait().unwrap().status,
        OrderStatus::Cancelled
    );

    // Confirmed: quantities back on hand, the reservation stays committed,
    // a refund is started.
    let confirmed = place(&engine, "fay", &[(2, 3)]);
    succeed(&engine, &confirmed);
    assert_eq!(engine.stock(ProductId(2)).unwrap().unwrap().on_hand, 2);
    engine.cancel_order(confirmed.id).wait().unwrap();
    assert_eq!(engine.stock(ProductId(2)).unwrap().unwrap().on_hand, 5);
    assert_eq!(
        engine.reservation(confirmed.id).unwrap().unwrap().status,
        ReservationStatus::Committed
    );
    assert!(
        steps(&engine, confirmed.id).contains(&"~REFUND_PAYMENT STARTED".to_owned()),
        "{:?}",
        steps(&engine, confirmed.id)
    );

    // Shipped and delivered: no cancel.
    let shipped = place(&engine, "fay", &[(1, 1)]);
    succeed(&engine, &shipped);
    let order = engine
        .ship_order(shipped.id, Some("UPS".to_owned()), Some("1Z9".to_owned()))
        .wait()
        .unwrap();
    assert_eq!(order.status, OrderStatus::Shipped);
    assert_eq!(order.tracking_number.as_deref(), Some("1Z9"));
    let refused = engine.cancel_order(shipped.id).wait().unwrap_err();
    assert_eq!(refused.code(), "invalid_state");
    assert_eq!(
        engine.deliver_order(shipped.id).wait().unwrap().status,
        OrderStatus::Delivered
    );
    assert!(engine.ship_order(shipped.id, None, None).wait().is_err());
    assert!(matches!(
        engine.deliver_order(waiting.id).wait(),
        Err(Error::InvalidOrderState { .. })
    ));
    let missing = engine
        .cancel_order(OrderId(mercato_engine::Uuid::now_v7()))
        .wait();
    assert!(matches!(missing, Err(Error::OrderNotFound(_))));
    check_log_matches_stock(&engine);
}

#[test]
fn placing_is_idempotent_by_order_id_and_refuses_bad_input_without_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = engine_with_stock(dir.path(), &clock);
    let id = OrderId(mercato_engine::Uuid::now_v7());
    let mut new = NewOrder::new("gus", lines(&[(1, 1)]), "tok_visa");
    new.order_id = Some(id);
    let first = engine.place_order(new.clone()).wait().unwrap();
    let again = engine.place_order(new.clone()).wait().unwrap();
    assert_eq!(first, again);
    assert_eq!(engine.stock(ProductId(1)).unwrap().unwrap().reserved, 1);
    new.items = lines(&[(1, 2)]);
    assert!(matches!(
        engine.place_order(new).wait(),
        Err(Error::Conflict(_))
    ));

    let seq = engine.last_event_seq();
    engine.archive_product(ProductId(2)).wait().unwrap();
    let seq = seq + 1;
    for (bad, code) in [
        (
            NewOrder::new("", lines(&[(1, 1)]), "tok_visa"),
            "invalid_request",
        ),
        (
            NewOrder::new("gus", lines(&[]), "tok_visa"),
            "invalid_request",
        ),
        (
            NewOrder::new("gus", lines(&[(1, 0)]), "tok_visa"),
            "invalid_request",
        ),
        (
            NewOrder::new("gus", lines(&[(1, 1), (1, 1)]), "tok_visa"),
            "invalid_request",
        ),
        (
            NewOrder::new("gus", lines(&[(1, 1)]), ""),
            "invalid_request",
        ),
        (
            NewOrder::new("gus", lines(&[(1, 1), (2, 1)]), "tok_visa"),
            "not_found",
        ),
        (
            NewOrder::new("gus", lines(&[(99, 1)]), "tok_visa"),
            "not_found",
        ),
    ] {
        let error = engine.place_order(bad).wait().unwrap_err();
        assert_eq!(error.code(), code, "{error}");
    }
    assert_eq!(engine.last_event_seq(), seq, "nothing was written");
    assert_eq!(
        engine.orders_of_user("gus", None, 10).unwrap().items.len(),
        1
    );
}

#[test]
fn a_users_orders_page_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = engine_with_stock(dir.path(), &clock);
    let mut placed = Vec::new();
    for _ in 0..5 {
        clock.advance(Duration::from_millis(5));
        placed.push(place(&engine, "hal", &[(1, 1)]).id);
    }
    place(&engine, "ivy", &[(1, 1)]);
    let first = engine.orders_of_user("hal", None, 2).unwrap();
    let ids: Vec<_> = first.items.iter().map(|order| order.id).collect();
    assert_eq!(ids, [placed[4], placed[3]]);
    let second = engine.orders_of_user("hal", first.next_before, 10).unwrap();
    let ids: Vec<_> = second.items.iter().map(|order| order.id).collect();
    assert_eq!(ids, [placed[2], placed[1], placed[0]]);
    assert_eq!(second.next_before, None);
    assert!(
        engine
            .orders_of_user("nobody", None, 10)
            .unwrap()
            .items
            .is_empty()
    );
}

#[test]
fn a_hundred_buyers_for_ten_units_confirm_exactly_ten() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = Arc::new(open(dir.path(), &clock));
    engine.create_product(product(7, 10)).wait().unwrap();
    let buyers: Vec<_> = (0..100)
        .map(|n| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let order = engine
                    .place_order(NewOrder::new(
                        format!("buyer-{n}"),
                        lines(&[(7, 1)]),
                        "tok_visa",
                    ))
                    .wait()
                    .unwrap();
                if order.status == OrderStatus::AwaitingPayment {
                    succeed(&engine, &order);
                }
                engine.order(order.id).unwrap().unwrap()
            })
        })
        .collect();
    let orders: Vec<_> = buyers
        .into_iter()
        .map(|buyer| buyer.join().unwrap())
        .collect();
    let confirmed = orders
        .iter()
        .filter(|order| order.status == OrderStatus::Confirmed)
        .count();
    assert_eq!(confirmed, 10);
    assert!(
        orders
            .iter()
            .all(|order| order.status == OrderStatus::Confirmed
                || order.failure_reason.as_deref() == Some("insufficient_stock"))
    );
    let stock = engine.stock(ProductId(7)).unwrap().unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (0, 0));
    check_log_matches_stock(&engine);
}

#[test]
fn orders_payments_and_sagas_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = engine_with_stock(dir.path(), &clock);
    let order = place(&engine, "jo", &[(1, 1)]);
    succeed(&engine, &order);
    let before = (
        engine.order(order.id).unwrap(),
        engine.payment_of_order(order.id).unwrap(),
        engine.saga(order.id).unwrap(),
    );
    drop(engine);
    let engine = open(dir.path(), &clock);
    let after = (
        engine.order(order.id).unwrap(),
        engine.payment_of_order(order.id).unwrap(),
        engine.saga(order.id).unwrap(),
    );
    assert_eq!(before, after);
    let created = engine
        .events_after(0, 100)
        .unwrap()
        .into_iter()
        .any(|envelope| matches!(envelope.event, Event::OrderCreated { order_id, .. } if order_id == order.id));
    assert!(created);
}

#[test]
fn an_order_from_a_cart_uses_its_lines_at_current_prices_and_empties_it_once_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = engine_with_stock(dir.path(), &clock);
    let owner = mercato_engine::UserId::new("kay").unwrap();
    let cart = engine.create_cart(owner).wait().unwrap();
    engine
        .set_cart_quantity(cart.id, ProductId(1), 2)
        .wait()
        .unwrap();
    engine
        .set_cart_quantity(cart.id, ProductId(2), 1)
        .wait()
        .unwrap();
    let patch = ProductPatch {
        price: Some("5.00".parse().unwrap()),
        ..ProductPatch::default()
    };
    engine.update_product(ProductId(1), patch).wait().unwrap();

    let mut from_cart = NewOrder::new("kay", Vec::new(), "tok_visa");
    from_cart.cart_id = Some(cart.id);
    let order = engine.place_order(from_cart.clone()).wait().unwrap();
    assert_eq!(order.status, OrderStatus::AwaitingPayment);
    assert_eq!(order.cart_id, Some(cart.id));
    assert_eq!(
        order.total_amount,
        "19.99".parse().unwrap(),
        "2 x 5.00 + 9.99"
    );
    assert_eq!(
        engine.cart(cart.id).unwrap().unwrap().items.len(),
        2,
        "kept until confirmed"
    );
    succeed(&engine, &order);
    assert!(engine.cart(cart.id).unwrap().unwrap().items.is_empty());
    assert!(steps(&engine, order.id).contains(&"EMPTY_CART COMPLETED".to_owned()));

    // An empty cart, another user's cart, both items and a cart: refused.
    let empty = engine.place_order(from_cart.clone()).wait().unwrap_err();
    assert_eq!(empty.code(), "invalid_request", "{empty}");
    let mut stranger = NewOrder::new("lou", Vec::new(), "tok_visa");
    stranger.cart_id = Some(cart.id);
    assert_eq!(
        engine.place_order(stranger).wait().unwrap_err().code(),
        "not_found"
    );
    let mut both = NewOrder::new("kay", lines(&[(1, 1)]), "tok_visa");
    both.cart_id = Some(cart.id);
    assert_eq!(
        engine.place_order(both).wait().unwrap_err().code(),
        "invalid_request"
    );
    check_log_matches_stock(&engine);
}
