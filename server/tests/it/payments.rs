//! The contract's Payments section through the router in process: reading
//! a payment, `process`, refunds, and the signed webhook (applied once;
//! unsigned, forged, tampered and stale deliveries refused with nothing
//! changed). Outcomes are polled with a deadline, never waited for by time.

use std::time::{Duration, Instant};

use mercato_engine::{Clock, SystemClock, Timestamp, WebhookSecret};
use serde_json::{Value, json};

use crate::support::{
    ADMIN, Answer, TestServer, WEBHOOK_SECRET, assert_problem, request, server, server_with_gateway,
};

const UNKNOWN: &str = "0193a5c4-0000-7000-8000-0000000000ff";

fn text(value: &Value, field: &str) -> String {
    value[field].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_is_read_by_its_owner_and_the_admin_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.product(1, "7.50", 10).await;
    let alice = server.customer("alice").await;
    let bob = server.customer("bob").await;
    let order = server.order(&alice, "alice", 1, 2, "tok_visa").await;
    server.settled(&text(&order, "id")).await;
    let path = format!("/api/v1/payments/{}", text(&order, "payment_id"));
    let read = server.call("GET", &path, Some(&alice), None).await;
    assert_eq!(read.status, 200, "{}", read.text);
    let payment = &read.body;
    for field in [
        "id",
        "order_id",
        "amount",
        "currency",
        "status",
        "failure_reason",
        "refunded_amount",
        "created_at",
        "updated_at",
    ] {
        assert!(payment.get(field).is_some(), "{field} missing: {payment}");
    }
    assert_eq!(payment["id"], order["payment_id"]);
    assert_eq!(payment["order_id"], order["id"]);
    assert_eq!(payment["amount"], "15.00");
    assert_eq!(payment["currency"], "USD");
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(payment["failure_reason"], Value::Null);
    assert_eq!(payment["refunded_amount"], "0.00");
    assert!(
        payment.get("token").is_none(),
        "the card token stays inside"
    );
    assert_eq!(server.admin("GET", &path, None).await.body, read.body);
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
            .admin("GET", &format!("/api/v1/payments/{UNKNOWN}"), None)
            .await,
        404,
        "not_found",
    );
    assert_problem(
        &server.admin("GET", "/api/v1/payments/nope", None).await,
        400,
        "invalid_request",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_answers_the_orders_own_payment() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.product(1, "7.50", 3).await;
    let alice = server.customer("alice").await;
    let order = server.order(ADMIN, "alice", 1, 2, "tok_visa").await;
    let order_id = text(&order, "id");
    let process =
        |amount: &str, token: &str| json!({"order_id": order_id, "amount": amount, "token": token});
    let answer = server
        .admin(
            "POST",
            "/api/v1/payments/process",
            Some(process("15.00", "tok_visa")),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text);
    assert_eq!(answer.body["id"], order["payment_id"]);
    assert_eq!(answer.body["order_id"], order["id"]);
    server.settled(&order_id).await;
    // Repeating it answers the same payment, whatever it became; never a second charge.
    let again = server
        .admin(
            "POST",
            "/api/v1/payments/process",
            Some(process("15", "tok_visa")),
        )
        .await;
    assert_eq!(again.status, 202, "{}", again.text);
    assert_eq!(again.body["id"], order["payment_id"]);
    assert_eq!(again.body["status"], "succeeded");
    let order_key = mercato_engine::OrderId(order_id.parse().unwrap());
    assert_eq!(server.gateway.charges_for(order_key).len(), 1);

    assert_problem(
        &server
            .admin(
                "POST",
                "/api/v1/payments/process",
                Some(process("14.99", "tok_visa")),
            )
            .await,
        409,
        "conflict",
    );
    assert_problem(
        &server
            .admin(
                "POST",
                "/api/v1/payments/process",
                Some(process("15.00", "tok_chargeDeclined")),
            )
            .await,
        409,
        "conflict",
    );
    assert_problem(
        &server
            .admin(
                "POST",
                "/api/v1/payments/process",
                Some(json!({"order_id": UNKNOWN, "amount": "1.00", "token": "tok_visa"})),
            )
            .await,
        404,
        "not_found",
    );
    assert_problem(
        &server
            .call(
                "POST",
                "/api/v1/payments/process",
                Some(&alice),
                Some(process("15.00", "tok_visa")),
            )
            .await,
        403,
        "forbidden",
    );
    for (body, field) in [
        (process("-1", "tok_visa"), "amount"),
        (process("0", "tok_visa"), "amount"),
        (process("abc", "tok_visa"), "amount"),
        (process("1.001", "tok_visa"), "amount"),
        (process("15.00", ""), "token"),
        (
            json!({"order_id": "x", "amount": "1.00", "token": "tok_visa"}),
            "order_id",
        ),
        (
            json!({"order_id": order_id, "amount": "15.00", "token": "tok_visa", "card": "4242"}),
            "card",
        ),
    ] {
        let answer = server
            .admin("POST", "/api/v1/payments/process", Some(body))
            .await;
        assert_problem(&answer, 400, "invalid_request");
        assert_eq!(answer.body["field"], field, "{}", answer.text);
    }
    // An order whose stock was never reserved has no payment.
    let short = server.order(ADMIN, "alice", 1, 5, "tok_visa").await;
    assert_eq!(short["status"], "CANCELLED");
    let none = server
        .admin(
            "POST",
            "/api/v1/payments/process",
            Some(json!({"order_id": short["id"], "amount": "37.50", "token": "tok_visa"})),
        )
        .await;
    assert_problem(&none, 409, "invalid_state");
    assert_eq!(none.body["state"], "CANCELLED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_follow_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.product(1, "7.50", 10).await;
    let alice = server.customer("alice").await;
    let order = server.order(ADMIN, "alice", 1, 2, "tok_visa").await;
    assert_eq!(
        server.settled(&text(&order, "id")).await["status"],
        "CONFIRMED"
    );
    let path = format!("/api/v1/payments/{}/refund", text(&order, "payment_id"));

    let partial = server
        .admin("POST", &path, Some(json!({"amount": "5.00"})))
        .await;
    assert_eq!(partial.status, 200, "{}", partial.text);
    assert_eq!(partial.body["status"], "partially_refunded");
    assert_eq!(partial.body["refunded_amount"], "5.00");
    let too_much = server
        .admin("POST", &path, Some(json!({"amount": "10.01"})))
        .await;
    assert_problem(&too_much, 409, "refund_exceeds_captured");
    assert_eq!(too_much.body["refundable"], "10.00");
    // A keyed refund is made once.
    let key = [("idempotency-key", "refund-one")];
    let one = json!({"amount": "1"});
    let keyed = server
        .send(request("POST", &path, Some(ADMIN), Some(one.clone()), &key))
        .await;
    assert_eq!(keyed.status, 200, "{}", keyed.text);
    assert_eq!(keyed.body["refunded_amount"], "6.00");
    let replayed = server
        .send(request("POST", &path, Some(ADMIN), Some(one), &key))
        .await;
    assert_eq!(
        (replayed.status, &replayed.body),
        (keyed.status, &keyed.body)
    );
    assert_eq!(replayed.headers["idempotent-replayed"], "true");
    // No amount: everything left.
    let rest = server
        .send(request("POST", &path, Some(ADMIN), None, &[]))
        .await;
    assert_eq!(rest.status, 200, "{}", rest.text);
    assert_eq!(rest.body["status"], "refunded");
    assert_eq!(rest.body["refunded_amount"], "15.00");
    let nothing_left = server.admin("POST", &path, Some(json!({}))).await;
    assert_problem(&nothing_left, 409, "refund_exceeds_captured");
    assert_eq!(nothing_left.body["refundable"], "0.00");
    let order_key = mercato_engine::OrderId(text(&order, "id").parse().unwrap());
    let charges = server.gateway.charges_for(order_key);
    assert_eq!(charges.len(), 1);
    assert_eq!(
        charges[0].refunded_amount,
        "15".parse::<mercato_engine::Decimal>().unwrap(),
        "the gateway gave back what the payment says"
    );
    let saga = server
        .admin(
            "GET",
            &format!("/api/v1/orders/{}/saga", text(&order, "id")),
            None,
        )
        .await;
    let refunds = saga.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|step| step["step_name"] == "REFUND_PAYMENT")
        .count();
    assert_eq!(refunds, 3);

    // A payment that never captured anything.
    let failed = server
        .order(ADMIN, "alice", 1, 1, "tok_chargeDeclined")
        .await;
    assert_eq!(
        server.settled(&text(&failed, "id")).await["status"],
        "PAYMENT_FAILED"
    );
    let not_captured = server
        .admin(
            "POST",
            &format!("/api/v1/payments/{}/refund", text(&failed, "payment_id")),
            None,
        )
        .await;
    assert_problem(&not_captured, 409, "invalid_state");
    assert_eq!(not_captured.body["state"], "failed");

    assert_problem(
        &server
            .admin("POST", &format!("/api/v1/payments/{UNKNOWN}/refund"), None)
            .await,
        404,
        "not_found",
    );
    assert_problem(
        &server.call("POST", &path, Some(&alice), None).await,
        403,
        "forbidden",
    );
    assert_problem(
        &server.call("POST", &path, None, None).await,
        401,
        "unauthorized",
    );
    for bad in [
        json!({"amount": "0"}),
        json!({"amount": "-2"}),
        json!({"amount": "0.001"}),
        json!({"amount": "lots"}),
        json!({"amount": "1", "reason": "x"}),
    ] {
        assert_problem(
            &server.admin("POST", &path, Some(bad)).await,
            400,
            "invalid_request",
        );
    }
}

/// Polls until the saga runner has handed the order's payment to the
/// gateway and the gateway accepted it as pending (its outcome to come by
/// webhook).
async fn until_accepted(server: &TestServer, order_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let saga = server
            .admin("GET", &format!("/api/v1/orders/{order_id}/saga"), None)
            .await;
        let accepted = saga.body["items"].as_array().unwrap().iter().any(|step| {
            step["details"]
                .as_str()
                .unwrap()
                .contains("accepted by the gateway")
        });
        if accepted {
            return;
        }
        assert!(Instant::now() < deadline, "not accepted: {}", saga.text);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn deliver(server: &TestServer, signature: Option<&str>, body: &str) -> Answer {
    let mut builder = axum::http::Request::builder()
        .method("POST")
        .uri("/api/v1/payments/webhook")
        .header("content-type", "application/json");
    if let Some(signature) = signature {
        builder = builder.header("mercato-signature", signature);
    }
    server
        .send(
            builder
                .body(axum::body::Body::from(body.to_owned()))
                .unwrap(),
        )
        .await
}

fn sign(body: &str, at: Timestamp) -> String {
    WebhookSecret::new(WEBHOOK_SECRET).sign(body.as_bytes(), at)
}

fn now() -> Timestamp {
    SystemClock.now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_verified_and_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    // The gateway's own webhooks would come after the test; these are sent by hand.
    let server = server_with_gateway(dir.path(), |gateway| {
        gateway.webhook_delay = Duration::from_secs(3_600);
    });
    server.product(1, "6.00", 10).await;
    let order = server.order(ADMIN, "hank", 1, 2, "tok_delayed").await;
    let order_id = text(&order, "id");
    let payment_id = text(&order, "payment_id");
    until_accepted(&server, &order_id).await;

    let body =
        json!({"id": "evt_1", "type": "payment.succeeded", "payment_id": payment_id}).to_string();
    let before = server.state.engine.last_event_seq();
    let minus = |seconds: u64| Timestamp(now().0 - seconds * 1_000);
    let refusals = [
        (None, body.clone()),
        (Some("garbage".to_owned()), body.clone()),
        (
            Some(WebhookSecret::new("another secret").sign(body.as_bytes(), now())),
            body.clone(),
        ),
        (Some(sign(&body, minus(301))), body.clone()),
        (
            Some(sign(&body, Timestamp(now().0 + 301_000))),
            body.clone(),
        ),
        (Some(sign(&body, now())), body.replace("evt_1", "evt_2")),
    ];
    for (signature, sent) in refusals {
        let answer = deliver(&server, signature.as_deref(), &sent).await;
        assert_problem(&answer, 401, "invalid_signature");
    }
    assert_eq!(
        server.state.engine.last_event_seq(),
        before,
        "nothing changed"
    );
    let still = server
        .admin("GET", &format!("/api/v1/orders/{order_id}"), None)
        .await;
    assert_eq!(still.body["status"], "AWAITING_PAYMENT");
    assert_eq!(server.stock(1).await["reserved"], 2);

    // Signed within the tolerance: applied.
    let applied = deliver(&server, Some(&sign(&body, minus(200))), &body).await;
    assert_eq!(applied.status, 200, "{}", applied.text);
    assert_eq!(
        applied.body,
        json!({"received": true, "event_id": "evt_1", "payment_id": payment_id, "payment_status": "succeeded"})
    );
    let confirmed = server
        .admin("GET", &format!("/api/v1/orders/{order_id}"), None)
        .await;
    assert_eq!(confirmed.body["status"], "CONFIRMED");
    assert_eq!(
        server.stock(1).await,
        json!({"product_id": 1, "on_hand": 8, "reserved": 0, "available": 8})
    );
    // A repeat (freshly signed, as a gateway's retry is) changes nothing.
    let after = server.state.engine.last_event_seq();
    let repeat = deliver(&server, Some(&sign(&body, now())), &body).await;
    assert_eq!(repeat.status, 200, "{}", repeat.text);
    assert_eq!(server.state.engine.last_event_seq(), after, "applied once");
    // So does another event about a payment already decided.
    let failed = json!({"id": "evt_3", "type": "payment.failed", "payment_id": payment_id, "failure_reason": "card_declined"})
        .to_string();
    let late = deliver(&server, Some(&sign(&failed, now())), &failed).await;
    assert_eq!(late.status, 200, "{}", late.text);
    assert_eq!(late.body["payment_status"], "succeeded");
    assert_eq!(server.state.engine.last_event_seq(), after);
    assert_eq!(
        server
            .admin("GET", &format!("/api/v1/orders/{order_id}"), None)
            .await
            .body,
        confirmed.body
    );
    // A failure by webhook fails the order and releases its stock.
    let second = server.order(ADMIN, "hank", 1, 3, "tok_delayed").await;
    let second_id = text(&second, "id");
    until_accepted(&server, &second_id).await;
    let declined = json!({"id": "evt_4", "type": "payment.failed", "payment_id": second["payment_id"], "failure_reason": "card_declined"})
        .to_string();
    // The webhook takes no token and no Idempotency-Key: a bearer token is ignored.
    let answer = server
        .send(request(
            "POST",
            "/api/v1/payments/webhook",
            Some("not-a-token"),
            None,
            &[],
        ))
        .await;
    assert_problem(&answer, 401, "invalid_signature");
    let applied = deliver(&server, Some(&sign(&declined, now())), &declined).await;
    assert_eq!(applied.status, 200, "{}", applied.text);
    let failed_order = server
        .admin("GET", &format!("/api/v1/orders/{second_id}"), None)
        .await;
    assert_eq!(failed_order.body["status"], "PAYMENT_FAILED");
    assert_eq!(failed_order.body["failure_reason"], "card_declined");
    assert_eq!(
        server.stock(1).await,
        json!({"product_id": 1, "on_hand": 8, "reserved": 0, "available": 8})
    );

    // Signed, but not an event the gateway sends; or about no payment.
    let refunded_type =
        json!({"id": "evt_5", "type": "payment.refunded", "payment_id": payment_id}).to_string();
    assert_problem(
        &deliver(&server, Some(&sign(&refunded_type, now())), &refunded_type).await,
        400,
        "invalid_request",
    );
    let nobody =
        json!({"id": "evt_6", "type": "payment.succeeded", "payment_id": UNKNOWN}).to_string();
    assert_problem(
        &deliver(&server, Some(&sign(&nobody, now())), &nobody).await,
        404,
        "not_found",
    );
}
