//! The authorization matrix: every operation of the OpenAPI document,
//! called as {anonymous, another customer, the owner, the admin}. The
//! operations come from the server's own document, so a route added
//! without a row here fails this test.

use std::collections::BTreeMap;

use mercato_engine::{Notifications, NotificationsConfig};
use serde_json::{Value, json};

use crate::support::{ADMIN, request, server};

/// Who may call an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// Anyone.
    Public,
    /// The admin only: 401 anonymous, 403 customers.
    Admin,
    /// The owner and the admin: 401 anonymous; another customer learns
    /// nothing (404, or 403 where the request names the user).
    Owner,
    /// Nobody by token: a signature is needed (the gateway's webhook).
    Signed,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_kind_of_caller_as_its_access_says() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.state.set_demo_sign_in(true);
    let notifications =
        Notifications::start(server.state.engine.clone(), NotificationsConfig::default()).unwrap();
    server.product(1, "2.00", 100).await;
    server.product(2, "3.00", 100).await;
    let owner = server.customer("olga").await;
    let other = server.customer("omar").await;
    let order = server.order(ADMIN, "olga", 1, 1, "tok_visa").await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    let order = server
        .until_order(&order_id, |order| order["status"] == "CONFIRMED")
        .await;
    let payment_id = order["payment_id"].as_str().unwrap().to_owned();
    let cart = server
        .call(
            "POST",
            "/api/v1/carts",
            Some(&owner),
            Some(json!({"user_id": "olga"})),
        )
        .await;
    assert_eq!(cart.status, 201, "{}", cart.text);
    let cart_id = cart.body["id"].as_str().unwrap().to_owned();
    let notification_id = loop {
        let page = server
            .admin("GET", "/api/v1/notifications?user_id=olga", None)
            .await;
        if let Some(id) = page.body["items"][0]["id"].as_str() {
            break id.to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let reservation_order = "0193a5c4-0000-7000-8000-0000000000aa";

    // (method, path) → (access, the request's path, its body).
    let rows: BTreeMap<(&str, &str), (Access, String, Option<Value>)> = [
        (("get", "/healthz"), (Access::Public, "/healthz".into(), None)),
        (("get", "/readyz"), (Access::Public, "/readyz".into(), None)),
        (("get", "/metrics"), (Access::Public, "/metrics".into(), None)),
        (("get", "/docs"), (Access::Public, "/docs/".into(), None)),
        (
            ("post", "/api/v1/auth/tokens"),
            (Access::Admin, "/api/v1/auth/tokens".into(), Some(json!({"user_id": "x"}))),
        ),
        (
            ("post", "/api/v1/products"),
            (Access::Admin, "/api/v1/products".into(), Some(json!({"name": "N", "price": "1.00"}))),
        ),
        (("get", "/api/v1/products"), (Access::Public, "/api/v1/products".into(), None)),
        (("get", "/api/v1/products/{id}"), (Access::Public, "/api/v1/products/1".into(), None)),
        (
            ("patch", "/api/v1/products/{id}"),
            (Access::Admin, "/api/v1/products/2".into(), Some(json!({"name": "M"}))),
        ),
        (("delete", "/api/v1/products/{id}"), (Access::Admin, "/api/v1/products/2".into(), None)),
        (
            ("get", "/api/v1/inventory/{product_id}"),
            (Access::Public, "/api/v1/inventory/1".into(), None),
        ),
        (
            ("put", "/api/v1/inventory/{product_id}"),
            (Access::Admin, "/api/v1/inventory/1".into(), Some(json!({"on_hand": 100}))),
        ),
        (
            ("post", "/api/v1/inventory/{product_id}/adjust"),
            (Access::Admin, "/api/v1/inventory/1/adjust".into(), Some(json!({"delta": 1}))),
        ),
        (
            ("post", "/api/v1/inventory/reserve"),
            (
                Access::Admin,
                "/api/v1/inventory/reserve".into(),
                Some(json!({"order_id": reservation_order, "items": [{"product_id": 1, "quantity": 1}]})),
            ),
        ),
        (
            ("post", "/api/v1/inventory/commit"),
            (Access::Admin, "/api/v1/inventory/commit".into(), Some(json!({"order_id": reservation_order}))),
        ),
        (
            ("post", "/api/v1/inventory/release"),
            (Access::Admin, "/api/v1/inventory/release".into(), Some(json!({"order_id": reservation_order}))),
        ),
        (
            ("get", "/api/v1/inventory/reservations/{order_id}"),
            (Access::Admin, format!("/api/v1/inventory/reservations/{reservation_order}"), None),
        ),
        (("get", "/api/v1/events"), (Access::Admin, "/api/v1/events".into(), None)),
        (("get", "/api/v1/events/stream"), (Access::Admin, "/api/v1/events/stream".into(), None)),
        (
            ("get", "/api/v1/orders/{id}/stream"),
            (Access::Owner, format!("/api/v1/orders/{order_id}/stream"), None),
        ),
        (
            ("get", "/api/v1/inventory/{product_id}/stream"),
            (Access::Public, "/api/v1/inventory/1/stream".into(), None),
        ),
        (("get", "/api/v1/orders"), (Access::Admin, "/api/v1/orders?status=CONFIRMED".into(), None)),
        (
            ("get", "/api/v1/inventory/reservations"),
            (Access::Admin, "/api/v1/inventory/reservations?product_id=1".into(), None),
        ),
        (
            ("post", "/api/v1/auth/demo-sign-in"),
            (Access::Public, "/api/v1/auth/demo-sign-in".into(), Some(json!({"name": "dora"}))),
        ),
        (
            ("post", "/api/v1/carts"),
            (Access::Owner, "/api/v1/carts".into(), Some(json!({"user_id": "olga"}))),
        ),
        (("get", "/api/v1/carts/{id}"), (Access::Owner, format!("/api/v1/carts/{cart_id}"), None)),
        (
            ("put", "/api/v1/carts/{id}/items/{product_id}"),
            (Access::Owner, format!("/api/v1/carts/{cart_id}/items/1"), Some(json!({"quantity": 2}))),
        ),
        (
            ("delete", "/api/v1/carts/{id}/items/{product_id}"),
            (Access::Owner, format!("/api/v1/carts/{cart_id}/items/1"), None),
        ),
        (
            ("post", "/api/v1/orders"),
            (
                Access::Owner,
                "/api/v1/orders".into(),
                Some(json!({"user_id": "olga", "items": [{"product_id": 1, "quantity": 1}],
                            "payment": {"method": "card", "token": "tok_visa"}})),
            ),
        ),
        (("get", "/api/v1/orders/{id}"), (Access::Owner, format!("/api/v1/orders/{order_id}"), None)),
        (
            ("get", "/api/v1/orders/{id}/saga"),
            (Access::Owner, format!("/api/v1/orders/{order_id}/saga"), None),
        ),
        (
            ("get", "/api/v1/orders/user/{user_id}"),
            (Access::Owner, "/api/v1/orders/user/olga".into(), None),
        ),
        (
            ("post", "/api/v1/orders/{id}/ship"),
            (Access::Admin, format!("/api/v1/orders/{order_id}/ship"), Some(json!({}))),
        ),
        (
            ("post", "/api/v1/orders/{id}/deliver"),
            (Access::Admin, format!("/api/v1/orders/{order_id}/deliver"), None),
        ),
        (
            ("post", "/api/v1/orders/{id}/cancel"),
            (Access::Owner, format!("/api/v1/orders/{order_id}/cancel"), None),
        ),
        (
            ("get", "/api/v1/payments/{id}"),
            (Access::Owner, format!("/api/v1/payments/{payment_id}"), None),
        ),
        (
            ("post", "/api/v1/payments/process"),
            (
                Access::Admin,
                "/api/v1/payments/process".into(),
                Some(json!({"order_id": order_id, "amount": "2.00", "token": "tok_visa"})),
            ),
        ),
        (
            ("post", "/api/v1/payments/{id}/refund"),
            (Access::Admin, format!("/api/v1/payments/{payment_id}/refund"), Some(json!({"amount": "0.50"}))),
        ),
        (
            ("post", "/api/v1/payments/webhook"),
            (Access::Signed, "/api/v1/payments/webhook".into(), Some(json!({"id": "evt"}))),
        ),
        (
            ("get", "/api/v1/notifications"),
            (Access::Owner, "/api/v1/notifications?user_id=olga".into(), None),
        ),
        (
            ("get", "/api/v1/notifications/{id}"),
            (Access::Owner, format!("/api/v1/notifications/{notification_id}"), None),
        ),
        (
            ("post", "/api/v1/notifications/{id}/retry"),
            (Access::Admin, format!("/api/v1/notifications/{notification_id}/retry"), None),
        ),
        (
            ("get", "/api/v1/search"),
            (Access::Public, "/api/v1/search?q=thing".into(), None),
        ),
        (
            ("get", "/api/v1/search/suggest"),
            (Access::Public, "/api/v1/search/suggest?q=thi".into(), None),
        ),
        (
            ("get", "/api/v1/replication"),
            (Access::Public, "/api/v1/replication".into(), None),
        ),
        (
            ("post", "/api/v1/replication/promote"),
            (Access::Admin, "/api/v1/replication/promote".into(), None),
        ),
    ]
    .into_iter()
    .collect();

    let document = server
        .call("GET", "/api/v1/openapi.json", None, None)
        .await
        .body;
    let mut cells = 0;
    let mut covered = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let Some((access, uri, body)) = rows.get(&(method.as_str(), path.as_str())) else {
                panic!("{method} {path} has no row in the authorization matrix");
            };
            covered += 1;
            let method = method.to_uppercase();
            for (caller, token) in [
                ("anonymous", None),
                ("other", Some(other.as_str())),
                ("owner", Some(owner.as_str())),
                ("admin", Some(ADMIN)),
            ] {
                cells += 1;
                let answer = server
                    .send(request(&method, uri, token, body.clone(), &[]))
                    .await;
                let status = answer.status.as_u16();
                let ok = match (access, caller) {
                    (Access::Public, _) => status != 401 && status != 403,
                    (Access::Signed, _) => {
                        status == 401 && answer.body["code"] == "invalid_signature"
                    }
                    (_, "anonymous") => status == 401,
                    (Access::Admin, "other" | "owner") => status == 403,
                    (Access::Owner, "other") => status == 404 || status == 403,
                    (Access::Owner, "owner") => ![401, 403, 404].contains(&status),
                    (_, "admin") => status != 401 && status != 403,
                    _ => unreachable!(),
                };
                assert!(
                    ok,
                    "{method} {uri} as {caller} ({access:?}) answered {status}: {}",
                    answer.text
                );
                if status == 401 {
                    assert_eq!(
                        answer.body["code"]
                            .as_str()
                            .map(|code| code == "unauthorized" || code == "invalid_signature"),
                        Some(true)
                    );
                }
            }
        }
    }
    let rows_for_absent_routes: Vec<_> = rows
        .keys()
        .filter(|(method, path)| !document["paths"][*path][*method].is_object())
        .collect();
    // Rows for routes not (yet) in this build are allowed only for search,
    // which another part of the server adds.
    assert!(
        rows_for_absent_routes
            .iter()
            .all(|(_, path)| path.starts_with("/api/v1/search")),
        "rows without a route: {rows_for_absent_routes:?}"
    );
    assert!(covered >= 35, "{covered} operations");
    assert_eq!(cells, covered * 4);
    notifications.stop().await;
    server.shutdown().await;
}
