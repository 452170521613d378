//! The contract's Orders section through the router in process, with the
//! saga runner and the simulated gateway behind it: placing, reading, the
//! saga log, listing, cancelling, shipping and delivering, every error, the
//! test tokens end to end, a hundred buyers for ten units, and idempotent
//! placement across a restart. Outcomes are polled with a deadline, never
//! waited for by time.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    ADMIN, TestServer, assert_problem, order_body, request, server, server_with_gateway,
};

const UNKNOWN: &str = "0193a5c4-0000-7000-8000-0000000000ff";

fn steps(saga: &Value) -> Vec<String> {
    saga["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| {
            format!(
                "{} {}",
                step["step_name"].as_str().unwrap(),
                step["status"].as_str().unwrap()
            )
        })
        .collect()
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_placed_read_and_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.product(1, "2.50", 10).await;
    server.product(2, "10", 5).await;
    let alice = server.customer("alice").await;
    let bob = server.customer("bob").await;

    let placed = server
        .call(
            "POST",
            "/api/v1/orders",
            Some(&alice),
            Some(json!({
                "user_id": "alice",
                "items": [{"product_id": 1, "quantity": 2}, {"product_id": 2, "quantity": 1}],
                "payment": {"method": "card", "token": "tok_visa"},
                "email": "alice@example.com",
                "shipping_address": "1 Main St",
            })),
        )
        .await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    let order = &placed.body;
    for field in [
        "id",
        "user_id",
        "status",
        "items",
        "total_amount",
        "currency",
        "failure_reason",
        "payment_id",
        "created_at",
        "updated_at",
    ] {
        assert!(order.get(field).is_some(), "{field} missing: {order}");
    }
    assert_eq!(order["user_id"], "alice");
    assert_eq!(order["status"], "AWAITING_PAYMENT");
    assert_eq!(
        order["items"],
        json!([
            {"product_id": 1, "quantity": 2, "unit_price": "2.50"},
            {"product_id": 2, "quantity": 1, "unit_price": "10.00"},
        ])
    );
    assert_eq!(order["total_amount"], "15.00");
    assert_eq!(order["currency"], "USD");
    assert_eq!(order["failure_reason"], Value::Null);
    assert_eq!(order["email"], "alice@example.com");
    assert!(
        order["payment_id"]
            .as_str()
            .unwrap()
            .parse::<uuid::Uuid>()
            .is_ok()
    );
    assert!(order["created_at"].as_str().unwrap().ends_with('Z'));
    let order_id = id(order);

    let confirmed = server.settled(&order_id).await;
    assert_eq!(confirmed["status"], "CONFIRMED", "{confirmed}");
    let reservation = server
        .admin(
            "GET",
            &format!("/api/v1/inventory/reservations/{order_id}"),
            None,
        )
        .await;
    assert_eq!(reservation.body["status"], "committed");
    assert_eq!(
        server.stock(1).await,
        json!({"product_id": 1, "on_hand": 8, "reserved": 0, "available": 8})
    );

    // Reads: the owner and the admin; anyone else learns nothing.
    let path = format!("/api/v1/orders/{order_id}");
    let read = server.call("GET", &path, Some(&alice), None).await;
    assert_eq!((read.status.as_u16(), &read.body), (200, &confirmed));
    assert_eq!(server.admin("GET", &path, None).await.body, confirmed);
    assert_problem(
        &server.call("GET", &path, Some(&bob), None).await,
        404,
        "not_found",
    );
    assert_problem(
        &server.call("GET", &path, None, None).await,
        401,
        "unauthorized",
    );
    assert_problem(
        &server
            .admin("GET", &format!("/api/v1/orders/{UNKNOWN}"), None)
            .await,
        404,
        "not_found",
    );
    assert_problem(
        &server.admin("GET", "/api/v1/orders/not-a-uuid", None).await,
        400,
        "invalid_request",
    );

    // The saga log, in order.
    let saga_path = format!("/api/v1/orders/{order_id}/saga");
    let saga = server.call("GET", &saga_path, Some(&alice), None).await;
    assert_eq!(saga.status, 200, "{}", saga.text);
    assert_eq!(
        steps(&saga.body),
        [
            "RESERVE_INVENTORY STARTED",
            "RESERVE_INVENTORY COMPLETED",
            "PROCESS_PAYMENT STARTED",
            "PROCESS_PAYMENT COMPLETED",
            "COMMIT_INVENTORY COMPLETED",
        ]
    );
    for step in saga.body["items"].as_array().unwrap() {
        assert_eq!(step["is_compensating"], false);
        assert!(step["details"].is_string());
        assert!(step["created_at"].as_str().unwrap().ends_with('Z'));
    }
    assert_problem(
        &server.call("GET", &saga_path, Some(&bob), None).await,
        404,
        "not_found",
    );
    assert_problem(
        &server
            .admin("GET", &format!("/api/v1/orders/{UNKNOWN}/saga"), None)
            .await,
        404,
        "not_found",
    );

    // Not enough stock: the order is answered cancelled, nothing reserved.
    let short = server.order(&alice, "alice", 2, 100, "tok_visa").await;
    assert_eq!(short["status"], "CANCELLED");
    assert_eq!(short["failure_reason"], "insufficient_stock");
    assert_eq!(short["payment_id"], Value::Null);
    assert_eq!(
        server.stock(2).await,
        json!({"product_id": 2, "on_hand": 4, "reserved": 0, "available": 4})
    );
    let saga = server
        .admin("GET", &format!("/api/v1/orders/{}/saga", id(&short)), None)
        .await;
    assert_eq!(
        steps(&saga.body),
        ["RESERVE_INVENTORY STARTED", "RESERVE_INVENTORY FAILED"]
    );

    // A customer orders only for themselves; the admin for anyone.
    let theirs = server
        .call(
            "POST",
            "/api/v1/orders",
            Some(&alice),
            Some(order_body("bob", 1, 1, "tok_visa")),
        )
        .await;
    assert_problem(&theirs, 403, "forbidden");
    let for_bob = server.order(ADMIN, "bob", 1, 1, "tok_visa").await;
    assert_eq!(for_bob["user_id"], "bob");
    assert_problem(
        &server
            .call(
                "POST",
                "/api/v1/orders",
                None,
                Some(order_body("bob", 1, 1, "tok_visa")),
            )
            .await,
        401,
        "unauthorized",
    );
}

#[tokio::test]
async fn order_requests_are_refused_naming_the_field_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.product(1, "1.00", 10).await;
    server.product(2, "1.00", 10).await;
    let before = server.state.engine.last_event_seq();
    let card = json!({"method": "card", "token": "tok_visa"});
    let line = json!([{"product_id": 1, "quantity": 1}]);
    let cases = [
        (json!({"user_id": "a", "payment": card}), "items"),
        (
            json!({"user_id": "a", "items": line, "cart_id": UNKNOWN, "payment": card}),
            "cart_id",
        ),
        (
            json!({"user_id": "a", "items": [], "payment": card}),
            "items",
        ),
        (
            json!({"user_id": "a", "items": [{"product_id": 1, "quantity": 0}], "payment": card}),
            "items[0].quantity",
        ),
        (
            json!({"user_id": "a", "items": [{"product_id": 1, "quantity": -1}], "payment": card}),
            "items[0].quantity",
        ),
        (
            json!({"user_id": "a", "items": [{"product_id": 1, "quantity": 1}, {"product_id": 1, "quantity": 2}], "payment": card}),
            "items[1].product_id",
        ),
        (
            json!({"user_id": "a", "items": (1..=101).map(|id| json!({"product_id": id, "quantity": 1})).collect::<Vec<_>>(), "payment": card}),
            "items",
        ),
        (
            json!({"user_id": "a", "items": [{"product_id": 1, "quantity": 1, "note": "x"}], "payment": card}),
            "items[0].note",
        ),
        (
            json!({"user_id": "a", "items": line, "payment": {"method": "cash", "token": "tok_visa"}}),
            "payment.method",
        ),
        (
            json!({"user_id": "a", "items": line, "payment": {"method": "card", "token": ""}}),
            "payment.token",
        ),
        (
            json!({"user_id": "a", "items": line, "payment": {"method": "card"}}),
            "payment",
        ),
        (
            json!({"user_id": "", "items": line, "payment": card}),
            "user_id",
        ),
        (
            json!({"user_id": "a".repeat(256), "items": line, "payment": card}),
            "user_id",
        ),
        (
            json!({"user_id": "a", "items": line, "payment": card, "email": "e".repeat(1_025)}),
            "email",
        ),
        (
            json!({"user_id": "a", "items": line, "payment": card, "coupon": "FREE"}),
            "coupon",
        ),
        (
            json!({"user_id": 7, "items": line, "payment": card}),
            "user_id",
        ),
    ];
    for (body, field) in cases {
        let answer = server.admin("POST", "/api/v1/orders", Some(body)).await;
        assert_problem(&answer, 400, "invalid_request");
        assert!(
            answer.body["detail"].as_str().unwrap().contains(field),
            "{field}: {}",
            answer.text
        );
        if !answer.body["field"].is_null() {
            assert_eq!(answer.body["field"], field, "{}", answer.text);
        }
    }
    let unknown = server
        .admin(
            "POST",
            "/api/v1/orders",
            Some(order_body("a", 99, 1, "tok_visa")),
        )
        .await;
    assert_problem(&unknown, 404, "not_found");
    assert_eq!(
        server.state.engine.last_event_seq(),
        before,
        "nothing changed"
    );
    server.admin("DELETE", "/api/v1/products/2", None).await;
    let archived_seq = server.state.engine.last_event_seq();
    let archived = server
        .admin(
            "POST",
            "/api/v1/orders",
            Some(order_body("a", 2, 1, "tok_visa")),
        )
        .await;
    assert_problem(&archived, 404, "not_found");
    assert_eq!(
        server.state.engine.last_event_seq(),
        archived_seq,
        "nothing changed"
    );
    assert_eq!(
        server.stock(1).await,
        json!({"product_id": 1, "on_hand": 10, "reserved": 0, "available": 10})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_orders_are_listed_newest_first_and_paged() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.product(1, "1.00", 100).await;
    let alice = server.customer("alice").await;
    let bob = server.customer("bob").await;
    let mut placed = Vec::new();
    for _ in 0..5 {
        placed.push(id(&server.order(&alice, "alice", 1, 1, "tok_visa").await));
    }
    server.order(&bob, "bob", 1, 1, "tok_visa").await;

    let mut listed = Vec::new();
    let mut path = "/api/v1/orders/user/alice?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = server.call("GET", &path, Some(&alice), None).await;
        assert_eq!(page.status, 200, "{}", page.text);
        pages += 1;
        for order in page.body["items"].as_array().unwrap() {
            assert_eq!(order["user_id"], "alice");
            listed.push(id(order));
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/orders/user/alice?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    placed.reverse();
    assert_eq!(listed, placed, "newest first, each once");

    let all = server.admin("GET", "/api/v1/orders/user/alice", None).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 5);
    assert_eq!(all.body["next_cursor"], Value::Null);
    assert_eq!(
        server
            .admin("GET", "/api/v1/orders/user/alice?limit=100000", None)
            .await
            .status,
        200,
        "clamped"
    );
    assert_eq!(
        server
            .admin("GET", "/api/v1/orders/user/nobody", None)
            .await
            .body,
        json!({"items": [], "next_cursor": null})
    );
    assert_problem(
        &server
            .call("GET", "/api/v1/orders/user/alice", Some(&bob), None)
            .await,
        404,
        "not_found",
    );
    assert_problem(
        &server
            .call("GET", "/api/v1/orders/user/alice", None, None)
            .await,
        401,
        "unauthorized",
    );
    for bad in ["limit=0", "limit=-1", "cursor=garbage", "colour=red"] {
        assert_problem(
            &server
                .admin("GET", &format!("/api/v1/orders/user/alice?{bad}"), None)
                .await,
            400,
            "invalid_request",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ship_and_deliver_follow_the_state_machine() {
    let dir = tempfile::tempdir().unwrap();
    // Delayed payments stay pending for the length of the test.
    let server = server_with_gateway(dir.path(), |gateway| {
        gateway.webhook_delay = Duration::from_secs(3_600);
    });
    server.product(1, "4.00", 20).await;
    let alice = server.customer("alice").await;
    let bob = server.customer("bob").await;

    // Confirmed, shipped, delivered.
    let shipped = id(&server.order(&alice, "alice", 1, 1, "tok_visa").await);
    assert_eq!(server.settled(&shipped).await["status"], "CONFIRMED");
    let deliver_early = server
        .admin("POST", &format!("/api/v1/orders/{shipped}/deliver"), None)
        .await;
    assert_problem(&deliver_early, 409, "invalid_state");
    assert_eq!(deliver_early.body["state"], "CONFIRMED");
    let ship_path = format!("/api/v1/orders/{shipped}/ship");
    assert_problem(
        &server
            .call("POST", &ship_path, Some(&alice), Some(json!({})))
            .await,
        403,
        "forbidden",
    );
    assert_problem(
        &server
            .admin(
                "POST",
                &ship_path,
                Some(json!({"carrier": "UPS", "by": "air"})),
            )
            .await,
        400,
        "invalid_request",
    );
    let answer = server
        .admin(
            "POST",
            &ship_path,
            Some(json!({"carrier": "UPS", "tracking_number": "1Z999"})),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["status"], "SHIPPED");
    assert_eq!(answer.body["carrier"], "UPS");
    assert_eq!(answer.body["tracking_number"], "1Z999");
    let again = server.admin("POST", &ship_path, None).await;
    assert_problem(&again, 409, "invalid_state");
    assert_eq!(again.body["state"], "SHIPPED");
    let cancel_shipped = server
        .call(
            "POST",
            &format!("/api/v1/orders/{shipped}/cancel"),
            Some(&alice),
            None,
        )
        .await;
    assert_problem(&cancel_shipped, 409, "invalid_state");
    assert_eq!(cancel_shipped.body["state"], "SHIPPED");
    let deliver_path = format!("/api/v1/orders/{shipped}/deliver");
    assert_problem(
        &server.call("POST", &deliver_path, Some(&alice), None).await,
        403,
        "forbidden",
    );
    let delivered = server.admin("POST", &deliver_path, None).await;
    assert_eq!(delivered.status, 200, "{}", delivered.text);
    assert_eq!(delivered.body["status"], "DELIVERED");
    let twice = server.admin("POST", &deliver_path, None).await;
    assert_problem(&twice, 409, "invalid_state");
    assert_eq!(twice.body["state"], "DELIVERED");
    let saga = server
        .admin("GET", &format!("/api/v1/orders/{shipped}/saga"), None)
        .await;
    assert!(steps(&saga.body).ends_with(&[
        "SHIP_ORDER COMPLETED".to_owned(),
        "DELIVER_ORDER COMPLETED".to_owned()
    ]));

    // Shipping without a body.
    let plain = id(&server.order(&alice, "alice", 1, 1, "tok_visa").await);
    assert_eq!(server.settled(&plain).await["status"], "CONFIRMED");
    let answer = server
        .send(request(
            "POST",
            &format!("/api/v1/orders/{plain}/ship"),
            Some(ADMIN),
            None,
            &[],
        ))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["carrier"], Value::Null);

    // Cancelled while the payment is pending: stock released, payment voided.
    let pending = server.order(&alice, "alice", 1, 3, "tok_delayed").await;
    let pending_id = id(&pending);
    assert_eq!(server.stock(1).await["reserved"], 3);
    let cancel_path = format!("/api/v1/orders/{pending_id}/cancel");
    assert_problem(
        &server.call("POST", &cancel_path, Some(&bob), None).await,
        404,
        "not_found",
    );
    let cancelled = server.call("POST", &cancel_path, Some(&alice), None).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.body["status"], "CANCELLED");
    let repeat = server.call("POST", &cancel_path, Some(&alice), None).await;
    assert_eq!(
        (repeat.status.as_u16(), &repeat.body),
        (200, &cancelled.body),
        "cancelling a cancelled order answers it"
    );
    assert_eq!(
        server.stock(1).await,
        json!({"product_id": 1, "on_hand": 18, "reserved": 0, "available": 18})
    );
    let reservation = server
        .admin(
            "GET",
            &format!("/api/v1/inventory/reservations/{pending_id}"),
            None,
        )
        .await;
    assert_eq!(reservation.body["status"], "released");
    let payment = server
        .admin(
            "GET",
            &format!(
                "/api/v1/payments/{}",
                pending["payment_id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(payment.body["status"], "voided");

    // Cancelled after confirmation: the stock comes back, the payment is refunded.
    let sold = server.order(ADMIN, "alice", 1, 2, "tok_visa").await;
    let sold_id = id(&sold);
    assert_eq!(server.settled(&sold_id).await["status"], "CONFIRMED");
    assert_eq!(server.stock(1).await["on_hand"], 16);
    let cancelled = server
        .admin("POST", &format!("/api/v1/orders/{sold_id}/cancel"), None)
        .await;
    assert_eq!(cancelled.body["status"], "CANCELLED", "{}", cancelled.text);
    assert_eq!(
        server.stock(1).await,
        json!({"product_id": 1, "on_hand": 18, "reserved": 0, "available": 18})
    );
    let reservation = server
        .admin(
            "GET",
            &format!("/api/v1/inventory/reservations/{sold_id}"),
            None,
        )
        .await;
    assert_eq!(reservation.body["status"], "committed");
    let payment_path = format!("/api/v1/payments/{}", sold["payment_id"].as_str().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let payment = server.admin("GET", &payment_path, None).await;
        if payment.body["status"] == "refunded" {
            assert_eq!(payment.body["refunded_amount"], "8.00");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not refunded: {}",
            payment.text
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A failed order cannot be cancelled; unknown orders are 404.
    let failed = id(&server
        .order(&alice, "alice", 1, 1, "tok_chargeDeclined")
        .await);
    assert_eq!(server.settled(&failed).await["status"], "PAYMENT_FAILED");
    let refused = server
        .call(
            "POST",
            &format!("/api/v1/orders/{failed}/cancel"),
            Some(&alice),
            None,
        )
        .await;
    assert_problem(&refused, 409, "invalid_state");
    assert_eq!(refused.body["state"], "PAYMENT_FAILED");
    for action in ["cancel", "ship", "deliver"] {
        assert_problem(
            &server
                .admin("POST", &format!("/api/v1/orders/{UNKNOWN}/{action}"), None)
                .await,
            404,
            "not_found",
        );
    }
    assert_problem(
        &server
            .call(
                "POST",
                &format!("/api/v1/orders/{UNKNOWN}/cancel"),
                Some(&alice),
                None,
            )
            .await,
        404,
        "not_found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_tokens_end_as_the_contract_says() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.product(1, "3.00", 20).await;
    let cases = [
        ("tok_visa", "CONFIRMED", None, "succeeded", "committed"),
        (
            "tok_chargeDeclined",
            "PAYMENT_FAILED",
            Some("card_declined"),
            "failed",
            "released",
        ),
        (
            "tok_insufficientFunds",
            "PAYMENT_FAILED",
            Some("insufficient_funds"),
            "failed",
            "released",
        ),
        // Settled by a signed webhook through the webhook route.
        ("tok_delayed", "CONFIRMED", None, "succeeded", "committed"),
    ];
    let mut placed = Vec::new();
    for (token, ..) in cases {
        placed.push(server.order(ADMIN, "carol", 1, 2, token).await);
    }
    for ((token, status, reason, payment_status, reservation_status), order) in
        cases.into_iter().zip(&placed)
    {
        let order_id = id(order);
        let settled = server.settled(&order_id).await;
        assert_eq!(settled["status"], status, "{token}: {settled}");
        assert_eq!(
            settled["failure_reason"],
            reason.map_or(Value::Null, Value::from),
            "{token}"
        );
        let payment = server
            .admin(
                "GET",
                &format!("/api/v1/payments/{}", order["payment_id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(payment.body["status"], payment_status, "{token}");
        assert_eq!(
            payment.body["failure_reason"],
            reason.map_or(Value::Null, Value::from),
            "{token}"
        );
        let reservation = server
            .admin(
                "GET",
                &format!("/api/v1/inventory/reservations/{order_id}"),
                None,
            )
            .await;
        assert_eq!(reservation.body["status"], reservation_status, "{token}");
        let saga = server
            .admin("GET", &format!("/api/v1/orders/{order_id}/saga"), None)
            .await;
        let steps = steps(&saga.body);
        if status == "CONFIRMED" {
            assert!(
                steps.contains(&"COMMIT_INVENTORY COMPLETED".to_owned()),
                "{steps:?}"
            );
        } else {
            assert!(
                steps.contains(&"PROCESS_PAYMENT FAILED".to_owned()),
                "{steps:?}"
            );
            assert!(
                steps.contains(&"RELEASE_INVENTORY COMPLETED".to_owned()),
                "{steps:?}"
            );
        }
        // One charge per order at the gateway, whatever happened.
        let order_key = mercato_engine::OrderId(order_id.parse().unwrap());
        assert_eq!(server.gateway.charges_for(order_key).len(), 1, "{token}");
        if status == "CONFIRMED" {
            // Captured, also by webhook, with the gateway's reference kept:
            // it refunds at the gateway.
            let refunded = server
                .admin(
                    "POST",
                    &format!(
                        "/api/v1/payments/{}/refund",
                        order["payment_id"].as_str().unwrap()
                    ),
                    Some(json!({"amount": "1.00"})),
                )
                .await;
            assert_eq!(refunded.status, 200, "{token}: {}", refunded.text);
            assert_eq!(refunded.body["status"], "partially_refunded");
        }
    }
    assert_eq!(
        server.stock(1).await,
        json!({"product_id": 1, "on_hand": 16, "reserved": 0, "available": 16})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_buyers_for_ten_units() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(server(dir.path()));
    server.product(1, "9.99", 10).await;
    let buyers: Vec<_> = (0..100)
        .map(|n| {
            let server = server.clone();
            tokio::spawn(async move {
                let user = format!("buyer{n}");
                let token = server.customer(&user).await;
                server
                    .call(
                        "POST",
                        "/api/v1/orders",
                        Some(&token),
                        Some(order_body(&user, 1, 1, "tok_visa")),
                    )
                    .await
            })
        })
        .collect();
    let mut awaiting = Vec::new();
    let mut refused = 0;
    for buyer in buyers {
        let answer = buyer.await.unwrap();
        assert_eq!(answer.status, 201, "{}", answer.text);
        match answer.body["status"].as_str().unwrap() {
            "AWAITING_PAYMENT" => awaiting.push(id(&answer.body)),
            "CANCELLED" => {
                assert_eq!(answer.body["failure_reason"], "insufficient_stock");
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    assert_eq!((awaiting.len(), refused), (10, 90));
    let mut confirmed = BTreeSet::new();
    for order_id in &awaiting {
        let order = server.settled(order_id).await;
        assert_eq!(order["status"], "CONFIRMED", "{order}");
        confirmed.insert(order_id.clone());
    }
    assert_eq!(confirmed.len(), 10);
    assert_eq!(
        server.stock(1).await,
        json!({"product_id": 1, "on_hand": 0, "reserved": 0, "available": 0})
    );
    assert_eq!(server.gateway.ledger().len(), 10, "ten charges, no more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_order_is_placed_once_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let body = order_body("erin", 1, 2, "tok_visa");
    let key = [("idempotency-key", "checkout-erin-1")];
    let (first, erin) = {
        let server = server(dir.path());
        server.product(1, "5.00", 10).await;
        let erin = server.customer("erin").await;
        let first = server
            .send(request(
                "POST",
                "/api/v1/orders",
                Some(&erin),
                Some(body.clone()),
                &key,
            ))
            .await;
        assert_eq!(first.status, 201, "{}", first.text);
        assert!(!first.headers.contains_key("idempotent-replayed"));
        let again = server
            .send(request(
                "POST",
                "/api/v1/orders",
                Some(&erin),
                Some(body.clone()),
                &key,
            ))
            .await;
        assert_eq!((again.status, &again.body), (first.status, &first.body));
        assert_eq!(again.headers["idempotent-replayed"], "true");
        let other = server
            .send(request(
                "POST",
                "/api/v1/orders",
                Some(&erin),
                Some(order_body("erin", 1, 3, "tok_visa")),
                &key,
            ))
            .await;
        assert_problem(&other, 409, "conflict");
        // A refusal is an answer too, and is replayed as such.
        let forbidden_key = [("idempotency-key", "for-someone-else")];
        let forbidden = server
            .send(request(
                "POST",
                "/api/v1/orders",
                Some(&erin),
                Some(order_body("frank", 1, 1, "tok_visa")),
                &forbidden_key,
            ))
            .await;
        assert_problem(&forbidden, 403, "forbidden");
        let forbidden_again = server
            .send(request(
                "POST",
                "/api/v1/orders",
                Some(&erin),
                Some(order_body("frank", 1, 1, "tok_visa")),
                &forbidden_key,
            ))
            .await;
        assert_eq!(forbidden_again.headers["idempotent-replayed"], "true");
        assert_eq!(
            server.settled(&id(&first.body)).await["status"],
            "CONFIRMED"
        );
        server.shutdown().await;
        (first, erin)
    };
    let server = server(dir.path());
    let replay = server
        .send(request(
            "POST",
            "/api/v1/orders",
            Some(&erin),
            Some(body),
            &key,
        ))
        .await;
    assert_eq!((replay.status, &replay.body), (first.status, &first.body));
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    let orders = server.admin("GET", "/api/v1/orders/user/erin", None).await;
    assert_eq!(
        orders.body["items"].as_array().unwrap().len(),
        1,
        "placed once"
    );
    assert_eq!(
        server.stock(1).await,
        json!({"product_id": 1, "on_hand": 8, "reserved": 0, "available": 8})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn keyed_cancellations_replay() {
    let dir = tempfile::tempdir().unwrap();
    let server: TestServer = server_with_gateway(dir.path(), |gateway| {
        gateway.webhook_delay = Duration::from_secs(3_600);
    });
    server.product(1, "1.00", 5).await;
    let order = id(&server.order(ADMIN, "gina", 1, 1, "tok_delayed").await);
    let key = [("idempotency-key", "cancel-gina")];
    let path = format!("/api/v1/orders/{order}/cancel");
    let first = server
        .send(request("POST", &path, Some(ADMIN), None, &key))
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let again = server
        .send(request("POST", &path, Some(ADMIN), None, &key))
        .await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert_eq!(again.headers["idempotent-replayed"], "true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_from_a_cart_empties_it_once_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.product(1, "2.00", 10).await;
    server.product(2, "3.50", 10).await;
    let alice = server.customer("alice").await;
    let bob = server.customer("bob").await;
    let cart = server
        .call("POST", "/api/v1/carts", Some(&alice), None)
        .await;
    assert_eq!(cart.status, 201, "{}", cart.text);
    let cart_id = id(&cart.body);
    let card = json!({"method": "card", "token": "tok_visa"});
    let from_cart = json!({"user_id": "alice", "cart_id": cart_id, "payment": card});

    // An empty cart is refused.
    let empty = server
        .call(
            "POST",
            "/api/v1/orders",
            Some(&alice),
            Some(from_cart.clone()),
        )
        .await;
    assert_problem(&empty, 400, "invalid_request");
    assert_eq!(empty.body["field"], "cart_id", "{}", empty.text);

    for (product_id, quantity) in [(1, 2), (2, 1)] {
        let line = server
            .call(
                "PUT",
                &format!("/api/v1/carts/{cart_id}/items/{product_id}"),
                Some(&alice),
                Some(json!({"quantity": quantity})),
            )
            .await;
        assert_eq!(line.status, 200, "{}", line.text);
    }
    // Both or neither of items and cart_id.
    let both = server
        .call(
            "POST",
            "/api/v1/orders",
            Some(&alice),
            Some(json!({"user_id": "alice", "cart_id": cart_id, "items": [{"product_id": 1, "quantity": 1}], "payment": card})),
        )
        .await;
    assert_problem(&both, 400, "invalid_request");
    // Another user's cart is not found.
    let theirs = server
        .call(
            "POST",
            "/api/v1/orders",
            Some(&bob),
            Some(json!({"user_id": "bob", "cart_id": cart_id, "payment": card})),
        )
        .await;
    assert_problem(&theirs, 404, "not_found");
    let unknown = server
        .call(
            "POST",
            "/api/v1/orders",
            Some(&alice),
            Some(json!({"user_id": "alice", "cart_id": UNKNOWN, "payment": card})),
        )
        .await;
    assert_problem(&unknown, 404, "not_found");

    let placed = server
        .call("POST", "/api/v1/orders", Some(&alice), Some(from_cart))
        .await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    assert_eq!(placed.body["cart_id"], cart_id.as_str());
    assert_eq!(
        placed.body["items"],
        json!([
            {"product_id": 1, "quantity": 2, "unit_price": "2.00"},
            {"product_id": 2, "quantity": 1, "unit_price": "3.50"},
        ])
    );
    assert_eq!(placed.body["total_amount"], "7.50");
    let confirmed = server.settled(&id(&placed.body)).await;
    assert_eq!(confirmed["status"], "CONFIRMED");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let cart = server
            .call(
                "GET",
                &format!("/api/v1/carts/{cart_id}"),
                Some(&alice),
                None,
            )
            .await;
        assert_eq!(cart.status, 200, "{}", cart.text);
        if cart.body["items"] == json!([]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not emptied: {}",
            cart.text
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
