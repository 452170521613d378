//! Every route and every error code of the contract's Conventions, Auth,
//! Products, Inventory and Events sections, through the router in process.

use std::sync::{Arc, Barrier, Mutex};

use axum::http::header;
use mercato_engine::{BatchReport, WriterObserver};
use mercato_server::Limits;
use serde_json::{Value, json};

use crate::support::{ADMIN, assert_problem, engine_config, request, server, server_with};

const ORDER: &str = "0193a5c4-0000-7000-8000-000000000001";

async fn product(server: &crate::support::TestServer, id: u64, on_hand: u64) {
    let created = server
        .admin("POST", "/api/v1/products", Some(json!({"id": id, "name": format!("Thing {id}"), "price": "2.50", "category": "things"})))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let stock = server
        .admin(
            "PUT",
            &format!("/api/v1/inventory/{id}"),
            Some(json!({"on_hand": on_hand})),
        )
        .await;
    assert_eq!(stock.status, 200, "{}", stock.text);
}

#[tokio::test]
async fn health_readiness_metrics_and_docs() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let health = server.call("GET", "/healthz", None, None).await;
    assert_eq!(
        (health.status.as_u16(), health.body.clone()),
        (200, json!({"status": "ok"}))
    );
    assert_eq!(server.call("GET", "/readyz", None, None).await.status, 200);
    server.state.set_ready(false);
    assert_eq!(server.call("GET", "/readyz", None, None).await.status, 503);
    server.state.set_ready(true);

    product(&server, 1, 5).await;
    server
        .admin(
            "POST",
            "/api/v1/inventory/reserve",
            Some(json!({"order_id": ORDER, "items": [{"product_id": 1, "quantity": 1}]})),
        )
        .await;
    let metrics = server.call("GET", "/metrics", None, None).await;
    assert_eq!(metrics.status, 200);
    for figure in [
        "mercato_http_requests_total{",
        "mercato_http_request_duration_seconds_bucket{",
        "mercato_writer_queue_depth ",
        "mercato_writer_batch_commands_bucket",
        "mercato_writer_commit_duration_seconds_bucket",
        "mercato_reservations_total{outcome=\"created\"} 1",
    ] {
        assert!(
            metrics.text.contains(figure),
            "{figure} missing from:\n{}",
            metrics.text
        );
    }

    let docs = server.call("GET", "/docs/", None, None).await;
    assert_eq!(docs.status, 200);
    assert!(
        docs.text.contains("swagger"),
        "the reference page is served locally"
    );
    assert!(
        !docs.text.contains("https://"),
        "nothing is fetched from outside"
    );
    let echoed = server
        .send(request(
            "GET",
            "/healthz",
            None,
            None,
            &[("x-request-id", "abc-123")],
        ))
        .await;
    assert_eq!(echoed.headers["x-request-id"], "abc-123");
    let generated = server.call("GET", "/healthz", None, None).await;
    assert!(generated.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let document = server.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(document.status, 200);
    let openapi = &document.body;
    assert_eq!(openapi["openapi"], "3.1.0");
    let routes = [
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("post", "/api/v1/auth/tokens"),
        ("post", "/api/v1/products"),
        ("get", "/api/v1/products"),
        ("get", "/api/v1/products/{id}"),
        ("patch", "/api/v1/products/{id}"),
        ("delete", "/api/v1/products/{id}"),
        ("get", "/api/v1/inventory/{product_id}"),
        ("put", "/api/v1/inventory/{product_id}"),
        ("post", "/api/v1/inventory/{product_id}/adjust"),
        ("post", "/api/v1/inventory/reserve"),
        ("post", "/api/v1/inventory/commit"),
        ("post", "/api/v1/inventory/release"),
        ("get", "/api/v1/inventory/reservations/{order_id}"),
        ("get", "/api/v1/events"),
        ("post", "/api/v1/orders"),
        ("get", "/api/v1/orders/{id}"),
        ("get", "/api/v1/orders/{id}/saga"),
        ("get", "/api/v1/orders/user/{user_id}"),
        ("post", "/api/v1/orders/{id}/cancel"),
        ("post", "/api/v1/orders/{id}/ship"),
        ("post", "/api/v1/orders/{id}/deliver"),
        ("get", "/api/v1/payments/{id}"),
        ("post", "/api/v1/payments/process"),
        ("post", "/api/v1/payments/{id}/refund"),
        ("post", "/api/v1/payments/webhook"),
        ("post", "/api/v1/auth/demo-sign-in"),
        ("get", "/api/v1/orders"),
        ("get", "/api/v1/inventory/reservations"),
        ("get", "/api/v1/events/stream"),
        ("get", "/api/v1/orders/{id}/stream"),
        ("get", "/api/v1/inventory/{product_id}/stream"),
    ];
    for (method, path) in routes {
        let operation = &openapi["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|r| !r.is_empty())
        );
    }
    // The server-sent event streams the pages follow say what they send.
    for path in [
        "/api/v1/events/stream",
        "/api/v1/orders/{id}/stream",
        "/api/v1/inventory/{product_id}/stream",
    ] {
        let content = &openapi["paths"][path]["get"]["responses"]["200"]["content"];
        assert!(
            content["text/event-stream"].is_object(),
            "GET {path} is not documented as text/event-stream: {content}"
        );
    }
    // It parses as an OpenAPI 3.1 document, operations and schemas included.
    let text = document.text;
    let spec = oas3::from_json(&text).expect("a valid OpenAPI 3.1 document");
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    assert!(spec.operations().count() >= routes.len());
    // Every schema reference resolves.
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            openapi["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
    assert_eq!(
        openapi,
        &serde_json::to_value(mercato_server::openapi()).unwrap()
    );
}

#[tokio::test]
async fn auth_tokens_and_the_errors_of_protected_routes() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let body = json!({"name": "Lamp", "price": "10.00"});
    assert_problem(
        &server
            .call("POST", "/api/v1/products", None, Some(body.clone()))
            .await,
        401,
        "unauthorized",
    );
    assert_problem(
        &server
            .call(
                "POST",
                "/api/v1/products",
                Some("wrong"),
                Some(body.clone()),
            )
            .await,
        401,
        "unauthorized",
    );
    let malformed = server
        .send(request(
            "POST",
            "/api/v1/products",
            None,
            Some(body.clone()),
            &[("authorization", "Basic abc")],
        ))
        .await;
    assert_problem(&malformed, 401, "unauthorized");

    let minted = server
        .admin(
            "POST",
            "/api/v1/auth/tokens",
            Some(json!({"user_id": "alice", "ttl_seconds": 60})),
        )
        .await;
    assert_eq!(minted.status, 201, "{}", minted.text);
    assert_eq!(minted.body["user_id"], "alice");
    assert!(minted.body["expires_at"].as_str().unwrap().ends_with('Z'));
    let customer = minted.body["token"].as_str().unwrap().to_owned();
    assert_problem(
        &server
            .call(
                "POST",
                "/api/v1/products",
                Some(&customer),
                Some(body.clone()),
            )
            .await,
        403,
        "forbidden",
    );
    assert_problem(
        &server
            .call(
                "POST",
                "/api/v1/auth/tokens",
                Some(&customer),
                Some(json!({"user_id": "bob"})),
            )
            .await,
        403,
        "forbidden",
    );
    assert_problem(
        &server
            .call("GET", "/api/v1/events", Some(&customer), None)
            .await,
        403,
        "forbidden",
    );
    // Public routes need no token.
    assert_eq!(
        server
            .call("GET", "/api/v1/products", None, None)
            .await
            .status,
        200
    );

    for bad in [
        json!({"user_id": ""}),
        json!({"user_id": "a".repeat(256)}),
        json!({"user_id": "a", "ttl_seconds": 0}),
        json!({"user_id": "a", "extra": 1}),
    ] {
        assert_problem(
            &server.admin("POST", "/api/v1/auth/tokens", Some(bad)).await,
            400,
            "invalid_request",
        );
    }
}

#[tokio::test]
async fn products_are_created_read_listed_updated_and_archived() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let created = server
        .admin(
            "POST",
            "/api/v1/products",
            Some(json!({
                "name": "Kettle", "price": "30", "category": "kitchen", "brand": "Acme",
                "attributes": {"colour": "red"}, "description": "Boils water."
            })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let product = created.body;
    assert_eq!(product["id"], 1);
    assert_eq!(product["price"], "30.00");
    assert_eq!(product["currency"], "USD");
    assert_eq!(product["low_stock_threshold"], 10);
    for field in [
        "id",
        "sku",
        "name",
        "description",
        "category",
        "brand",
        "price",
        "currency",
        "attributes",
        "low_stock_threshold",
        "created_at",
        "updated_at",
    ] {
        assert!(product.get(field).is_some(), "{field}");
    }
    assert_eq!(
        server
            .call("GET", "/api/v1/products/1", None, None)
            .await
            .body,
        product
    );
    let taken = server
        .admin(
            "POST",
            "/api/v1/products",
            Some(json!({"id": 1, "name": "Again", "price": "1.00"})),
        )
        .await;
    assert_problem(&taken, 409, "conflict");

    for id in 2..=5 {
        product_with(&server, id).await;
    }
    let first = server
        .call("GET", "/api/v1/products?limit=2", None, None)
        .await;
    assert_eq!(ids(&first.body), [1, 2]);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = server
        .call(
            "GET",
            &format!("/api/v1/products?limit=10&cursor={cursor}"),
            None,
            None,
        )
        .await;
    assert_eq!(ids(&rest.body), [3, 4, 5]);
    assert_eq!(rest.body["next_cursor"], Value::Null);
    let kitchen = server
        .call("GET", "/api/v1/products?category=kitchen", None, None)
        .await;
    assert_eq!(ids(&kitchen.body), [1]);
    assert_problem(
        &server
            .call("GET", "/api/v1/products?cursor=garbage", None, None)
            .await,
        400,
        "invalid_request",
    );
    assert_problem(
        &server
            .call("GET", "/api/v1/products?limit=0", None, None)
            .await,
        400,
        "invalid_request",
    );
    assert_problem(
        &server
            .call("GET", "/api/v1/products?limit=-1", None, None)
            .await,
        400,
        "invalid_request",
    );
    assert_eq!(
        server
            .call("GET", "/api/v1/products?limit=100000", None, None)
            .await
            .status,
        200,
        "clamped"
    );

    let updated = server
        .admin(
            "PATCH",
            "/api/v1/products/1",
            Some(json!({"price": "25.5", "name": "Kettle 2"})),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(
        (updated.body["price"].clone(), updated.body["name"].clone()),
        (json!("25.50"), json!("Kettle 2"))
    );
    assert_problem(
        &server
            .admin("PATCH", "/api/v1/products/1", Some(json!({"price": "-1"})))
            .await,
        400,
        "invalid_request",
    );
    assert_problem(
        &server
            .admin("PATCH", "/api/v1/products/1", Some(json!({"colour": "x"})))
            .await,
        400,
        "invalid_request",
    );
    assert_problem(
        &server
            .admin("PATCH", "/api/v1/products/99", Some(json!({"name": "x"})))
            .await,
        404,
        "not_found",
    );

    assert_eq!(
        server
            .admin("DELETE", "/api/v1/products/1", None)
            .await
            .status,
        204
    );
    assert_problem(
        &server.call("GET", "/api/v1/products/1", None, None).await,
        404,
        "not_found",
    );
    assert_problem(
        &server.admin("DELETE", "/api/v1/products/1", None).await,
        404,
        "not_found",
    );
    assert_problem(
        &server.call("GET", "/api/v1/inventory/1", None, None).await,
        404,
        "not_found",
    );
    assert!(
        !ids(&server
            .call("GET", "/api/v1/products", None, None)
            .await
            .body)
        .contains(&1)
    );
    assert_problem(
        &server.call("GET", "/api/v1/products/abc", None, None).await,
        400,
        "invalid_request",
    );
    assert_problem(
        &server.call("GET", "/api/v1/nowhere", None, None).await,
        404,
        "not_found",
    );
    assert_problem(
        &server.call("PUT", "/api/v1/products", None, None).await,
        405,
        "method_not_allowed",
    );
}

async fn product_with(server: &crate::support::TestServer, id: u64) {
    let answer = server
        .admin(
            "POST",
            "/api/v1/products",
            Some(json!({"id": id, "name": format!("P{id}"), "price": "1.00"})),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
}

fn ids(page: &Value) -> Vec<u64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn malformed_bodies_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    product(&server, 1, 10).await;
    let before = server.state.engine.last_event_seq();
    let broken = server
        .send(
            axum::http::Request::builder()
                .method("POST")
                .uri("/api/v1/inventory/reserve")
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from("{\"order_id\": "))
                .unwrap(),
        )
        .await;
    assert_problem(&broken, 400, "invalid_request");
    let not_json = server
        .send(request(
            "POST",
            "/api/v1/inventory/reserve",
            Some(ADMIN),
            None,
            &[("content-type", "text/plain")],
        ))
        .await;
    assert_problem(&not_json, 415, "unsupported_media_type");
    let cases = [
        (
            json!({"order_id": ORDER, "items": [{"product_id": 1, "quantity": 0}]}),
            "items[0].quantity",
        ),
        (
            json!({"order_id": ORDER, "items": [{"product_id": 1, "quantity": -1}]}),
            "items[0].quantity",
        ),
        (
            json!({"order_id": ORDER, "items": [{"product_id": 1, "quantity": "2"}]}),
            "items[0].quantity",
        ),
        (json!({"order_id": ORDER, "items": []}), "items"),
        (
            json!({"order_id": ORDER, "items": [{"product_id": 1, "quantity": 1}, {"product_id": 1, "quantity": 1}]}),
            "items[1].product_id",
        ),
        (
            json!({"order_id": ORDER, "items": (1..=101).map(|id| json!({"product_id": id, "quantity": 1})).collect::<Vec<_>>()}),
            "items",
        ),
        (
            json!({"order_id": ORDER, "items": [{"product_id": 1, "quantity": 1}], "ttl_seconds": 0}),
            "ttl_seconds",
        ),
        (
            json!({"order_id": ORDER, "items": [{"product_id": 1, "quantity": 1}], "ttl_seconds": 86_401}),
            "ttl_seconds",
        ),
        (
            json!({"order_id": "not-a-uuid", "items": [{"product_id": 1, "quantity": 1}]}),
            "order_id",
        ),
        (json!({"items": [{"product_id": 1, "quantity": 1}]}), "."),
        (
            json!({"order_id": ORDER, "items": [{"product_id": 1, "quantity": 1, "note": "x"}]}),
            "items[0].note",
        ),
    ];
    for (body, field) in cases {
        let answer = server
            .admin("POST", "/api/v1/inventory/reserve", Some(body))
            .await;
        assert_problem(&answer, 400, "invalid_request");
        if field != "." {
            assert_eq!(answer.body["field"], field, "{}", answer.text);
        }
    }
    assert_problem(
        &server
            .admin("PUT", "/api/v1/inventory/1", Some(json!({"on_hand": -5})))
            .await,
        400,
        "invalid_request",
    );
    assert_problem(
        &server
            .admin(
                "POST",
                "/api/v1/inventory/1/adjust",
                Some(json!({"delta": 1.5})),
            )
            .await,
        400,
        "invalid_request",
    );
    assert_eq!(
        server.state.engine.last_event_seq(),
        before,
        "nothing changed"
    );
    let stock = server.call("GET", "/api/v1/inventory/1", None, None).await;
    assert_eq!(
        stock.body,
        json!({"product_id": 1, "on_hand": 10, "reserved": 0, "available": 10})
    );
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        body_bytes_max: 1_000,
        ..Limits::default()
    };
    let server = server_with(engine_config(dir.path(), None), limits);
    let big = json!({"name": "x".repeat(2_000), "price": "1.00"});
    assert_problem(
        &server
            .admin("POST", "/api/v1/products", Some(big.clone()))
            .await,
        413,
        "payload_too_large",
    );
    let keyed = server
        .send(request(
            "POST",
            "/api/v1/products",
            Some(ADMIN),
            Some(big),
            &[("idempotency-key", "k")],
        ))
        .await;
    assert_problem(&keyed, 413, "payload_too_large");
    assert!(server.state.engine.is_empty().unwrap());
}

#[tokio::test]
async fn inventory_follows_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    product(&server, 1, 10).await;
    product(&server, 2, 3).await;
    let reserve = json!({"order_id": ORDER, "items": [{"product_id": 1, "quantity": 4}, {"product_id": 2, "quantity": 1}], "ttl_seconds": 60});
    let created = server
        .admin("POST", "/api/v1/inventory/reserve", Some(reserve.clone()))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["status"], "active");
    assert_eq!(created.body["order_id"], ORDER);
    assert!(created.body["reservation_id"].is_string() && created.body["expires_at"].is_string());
    let repeat = server
        .admin("POST", "/api/v1/inventory/reserve", Some(reserve))
        .await;
    assert_eq!((repeat.status.as_u16(), &repeat.body), (200, &created.body));
    let other = json!({"order_id": ORDER, "items": [{"product_id": 1, "quantity": 5}]});
    assert_problem(
        &server
            .admin("POST", "/api/v1/inventory/reserve", Some(other))
            .await,
        409,
        "conflict",
    );
    let stock = server.call("GET", "/api/v1/inventory/1", None, None).await;
    assert_eq!(
        stock.body,
        json!({"product_id": 1, "on_hand": 10, "reserved": 4, "available": 6})
    );

    let short = json!({"order_id": "0193a5c4-0000-7000-8000-000000000002", "items": [{"product_id": 1, "quantity": 1}, {"product_id": 2, "quantity": 3}]});
    let refused = server
        .admin("POST", "/api/v1/inventory/reserve", Some(short))
        .await;
    assert_problem(&refused, 409, "insufficient_stock");
    assert_eq!(
        (
            refused.body["product_id"].clone(),
            refused.body["requested"].clone(),
            refused.body["available"].clone()
        ),
        (json!(2), json!(3), json!(2))
    );
    let unknown = json!({"order_id": "0193a5c4-0000-7000-8000-000000000003", "items": [{"product_id": 77, "quantity": 1}]});
    assert_problem(
        &server
            .admin("POST", "/api/v1/inventory/reserve", Some(unknown))
            .await,
        404,
        "not_found",
    );

    assert_problem(
        &server
            .admin("PUT", "/api/v1/inventory/1", Some(json!({"on_hand": 3})))
            .await,
        409,
        "invalid_state",
    );
    assert_problem(
        &server
            .admin(
                "POST",
                "/api/v1/inventory/1/adjust",
                Some(json!({"delta": -7})),
            )
            .await,
        409,
        "invalid_state",
    );
    let adjusted = server
        .admin(
            "POST",
            "/api/v1/inventory/1/adjust",
            Some(json!({"delta": -6})),
        )
        .await;
    assert_eq!(adjusted.body["on_hand"], 4);
    assert_problem(
        &server
            .admin("PUT", "/api/v1/inventory/99", Some(json!({"on_hand": 3})))
            .await,
        404,
        "not_found",
    );

    let order = json!({"order_id": ORDER});
    let committed = server
        .admin("POST", "/api/v1/inventory/commit", Some(order.clone()))
        .await;
    assert_eq!(
        (committed.status.as_u16(), committed.body["status"].clone()),
        (200, json!("committed"))
    );
    assert_eq!(
        server
            .admin("POST", "/api/v1/inventory/commit", Some(order.clone()))
            .await
            .body,
        committed.body
    );
    let release = server
        .admin("POST", "/api/v1/inventory/release", Some(order.clone()))
        .await;
    assert_problem(&release, 409, "invalid_state");
    assert_eq!(release.body["state"], "committed");
    let stock = server.call("GET", "/api/v1/inventory/1", None, None).await;
    assert_eq!(
        stock.body,
        json!({"product_id": 1, "on_hand": 0, "reserved": 0, "available": 0})
    );
    let read = server
        .admin(
            "GET",
            &format!("/api/v1/inventory/reservations/{ORDER}"),
            None,
        )
        .await;
    assert_eq!(read.body, committed.body);

    let missing = json!({"order_id": "0193a5c4-0000-7000-8000-0000000000ff"});
    assert_problem(
        &server
            .admin("POST", "/api/v1/inventory/commit", Some(missing.clone()))
            .await,
        404,
        "not_found",
    );
    assert_problem(
        &server
            .admin("POST", "/api/v1/inventory/release", Some(missing))
            .await,
        404,
        "not_found",
    );
    assert_problem(
        &server
            .admin(
                "GET",
                "/api/v1/inventory/reservations/0193a5c4-0000-7000-8000-0000000000ff",
                None,
            )
            .await,
        404,
        "not_found",
    );

    let second = json!({"order_id": "0193a5c4-0000-7000-8000-000000000004", "items": [{"product_id": 2, "quantity": 2}]});
    server
        .admin("POST", "/api/v1/inventory/reserve", Some(second))
        .await;
    let order = json!({"order_id": "0193a5c4-0000-7000-8000-000000000004"});
    let released = server
        .admin("POST", "/api/v1/inventory/release", Some(order.clone()))
        .await;
    assert_eq!(released.body["status"], "released");
    assert_eq!(
        server
            .admin("POST", "/api/v1/inventory/release", Some(order.clone()))
            .await
            .body,
        released.body
    );
    let commit = server
        .admin("POST", "/api/v1/inventory/commit", Some(order))
        .await;
    assert_problem(&commit, 409, "invalid_state");
    assert_eq!(commit.body["state"], "released");
}

#[tokio::test]
async fn events_are_paged_in_commit_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    product(&server, 1, 12).await;
    server
        .admin(
            "POST",
            "/api/v1/inventory/reserve",
            Some(json!({"order_id": ORDER, "items": [{"product_id": 1, "quantity": 12}]})),
        )
        .await;
    let mut after = 0;
    let mut types = Vec::new();
    loop {
        let page = server
            .admin(
                "GET",
                &format!("/api/v1/events?after={after}&limit=2"),
                None,
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        for item in page.body["items"].as_array().unwrap() {
            after += 1;
            assert_eq!(item["seq"], after, "seq starts at 1 and has no gaps");
            assert!(item["created_at"].is_string());
            types.push(item["type"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => assert_eq!(cursor, after.to_string()),
            None => break,
        }
    }
    assert_eq!(
        types,
        [
            "product.created",
            "inventory.stock.updated",
            "inventory.reserved",
            "inventory.stock.low",
            "inventory.stock.depleted"
        ]
    );
    let reserved = server
        .admin("GET", "/api/v1/events?after=2&limit=1", None)
        .await;
    let payload = &reserved.body["items"][0]["payload"];
    assert_eq!(payload["order_id"], ORDER);
    assert_eq!(payload["items"], json!([{"product_id": 1, "quantity": 12}]));
    assert!(payload["expires_at"].as_str().unwrap().ends_with('Z'));
    let end = server
        .admin("GET", &format!("/api/v1/events?after={after}"), None)
        .await;
    assert_eq!(end.body, json!({"items": [], "next_cursor": null}));
    assert_problem(
        &server.admin("GET", "/api/v1/events?after=-1", None).await,
        400,
        "invalid_request",
    );
    assert_problem(
        &server.call("GET", "/api/v1/events", None, None).await,
        401,
        "unauthorized",
    );
}

#[tokio::test]
async fn idempotency_keys_replay_conflict_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let body = json!({"name": "Mug", "price": "5.00"});
    let first = {
        let server = server(dir.path());
        let key = [("idempotency-key", "create-mug-1")];
        let first = server
            .send(request(
                "POST",
                "/api/v1/products",
                Some(ADMIN),
                Some(body.clone()),
                &key,
            ))
            .await;
        assert_eq!(first.status, 201);
        let again = server
            .send(request(
                "POST",
                "/api/v1/products",
                Some(ADMIN),
                Some(body.clone()),
                &key,
            ))
            .await;
        assert_eq!((again.status, &again.body), (first.status, &first.body));
        assert_eq!(again.headers["idempotent-replayed"], "true");
        assert!(!first.headers.contains_key("idempotent-replayed"));
        let other = server
            .send(request(
                "POST",
                "/api/v1/products",
                Some(ADMIN),
                Some(json!({"name": "Cup", "price": "5.00"})),
                &key,
            ))
            .await;
        assert_problem(&other, 409, "conflict");
        let long = "k".repeat(256);
        let too_long = server
            .send(request(
                "POST",
                "/api/v1/products",
                Some(ADMIN),
                Some(body.clone()),
                &[("idempotency-key", &long)],
            ))
            .await;
        assert_problem(&too_long, 400, "invalid_request");
        // The same key from another caller is another key.
        let minted = server
            .admin(
                "POST",
                "/api/v1/auth/tokens",
                Some(json!({"user_id": "zoe"})),
            )
            .await;
        let customer = minted.body["token"].as_str().unwrap().to_owned();
        let theirs = server
            .send(request(
                "POST",
                "/api/v1/products",
                Some(&customer),
                Some(body.clone()),
                &key,
            ))
            .await;
        assert_problem(&theirs, 403, "forbidden");
        server.state.engine.shutdown();
        first
    };
    let server = server(dir.path());
    let after_restart = server
        .send(request(
            "POST",
            "/api/v1/products",
            Some(ADMIN),
            Some(body),
            &[("idempotency-key", "create-mug-1")],
        ))
        .await;
    assert_eq!(
        (after_restart.status, &after_restart.body),
        (first.status, &first.body)
    );
    assert_eq!(after_restart.headers["idempotent-replayed"], "true");
    assert_eq!(
        server
            .call("GET", "/api/v1/products", None, None)
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// Holds the writer inside a batch report until released, to fill its queue.
struct Gate {
    barrier: Arc<Barrier>,
    armed: Mutex<bool>,
}

impl WriterObserver for Gate {
    fn batch_committed(&self, _report: &BatchReport) {
        if std::mem::take(&mut *self.armed.lock().unwrap()) {
            self.barrier.wait();
            self.barrier.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_503_with_retry_after_and_reads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let gate = Arc::new(Gate {
        barrier: barrier.clone(),
        armed: Mutex::new(false),
    });
    let mut config = engine_config(dir.path(), Some(gate.clone()));
    config.queue_max = 2;
    config.batch_max = 2;
    let server = Arc::new(server_with(config, Limits::default()));
    product(&server, 1, 100).await;
    *gate.armed.lock().unwrap() = true;
    let reserve = |n: u32, key: Option<&'static str>| {
        let server = server.clone();
        tokio::spawn(async move {
            let body = json!({"order_id": format!("0193a5c4-0000-7000-8000-{n:012}"), "items": [{"product_id": 1, "quantity": 1}]});
            let headers: Vec<(&str, &str)> = key
                .map(|key| ("idempotency-key", key))
                .into_iter()
                .collect();
            server
                .send(request(
                    "POST",
                    "/api/v1/inventory/reserve",
                    Some(ADMIN),
                    Some(body),
                    &headers,
                ))
                .await
        })
    };
    let stuck = reserve(1, Some("slow-key"));
    let barrier_wait = barrier.clone();
    tokio::task::spawn_blocking(move || barrier_wait.wait())
        .await
        .unwrap();
    // The writer is stuck after committing the first reservation; fill its queue.
    let queued: Vec<_> = (2..=3).map(|n| reserve(n, None)).collect();
    while server.state.engine.queue_depth() < 2 {
        tokio::task::yield_now().await;
    }
    let refused = reserve(4, None).await.unwrap();
    assert_problem(&refused, 503, "overloaded");
    assert_eq!(refused.headers[header::RETRY_AFTER], "1");
    let in_use = reserve(1, Some("slow-key")).await.unwrap();
    assert_problem(&in_use, 409, "idempotency_key_in_use");
    let read = server.call("GET", "/api/v1/inventory/1", None, None).await;
    assert_eq!(read.status, 200, "reads do not wait for the writer");
    tokio::task::spawn_blocking(move || barrier.wait())
        .await
        .unwrap();
    assert_eq!(stuck.await.unwrap().status, 201);
    for answer in queued {
        assert_eq!(answer.await.unwrap().status, 201);
    }
    let stock = server.call("GET", "/api/v1/inventory/1", None, None).await;
    assert_eq!(stock.body["reserved"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_for_the_last_fifty_units() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(server(dir.path()));
    product(&server, 1, 50).await;
    let clients: Vec<_> = (0..1_000_u32)
        .map(|n| {
            let server = server.clone();
            tokio::spawn(async move {
                let body = json!({"order_id": format!("0193a5c4-0000-7000-9000-{n:012}"), "items": [{"product_id": 1, "quantity": 1}]});
                server.admin("POST", "/api/v1/inventory/reserve", Some(body)).await
            })
        })
        .collect();
    let (mut created, mut refused) = (0, 0);
    for client in clients {
        let answer = client.await.unwrap();
        match answer.status.as_u16() {
            201 => created += 1,
            409 => {
                assert_eq!(answer.body["code"], "insufficient_stock");
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    assert_eq!((created, refused), (50, 950));
    let stock = server.call("GET", "/api/v1/inventory/1", None, None).await;
    assert_eq!(
        stock.body,
        json!({"product_id": 1, "on_hand": 50, "reserved": 50, "available": 0})
    );
}

#[tokio::test]
async fn rate_limiting_answers_429_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        rate_limit_per_second: Some(2),
        ..Limits::default()
    };
    let server = server_with(engine_config(dir.path(), None), limits);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(server.call("GET", "/healthz", None, None).await);
    }
    let limited = statuses
        .iter()
        .find(|answer| answer.status == 429)
        .expect("some request is limited");
    assert_problem(limited, 429, "rate_limited");
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn a_keyed_adjustment_applies_once_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let key = [("idempotency-key", "restock-7")];
    let adjust = json!({"delta": 5});
    let first = {
        let server = server(dir.path());
        product(&server, 1, 10).await;
        let first = server
            .send(request(
                "POST",
                "/api/v1/inventory/1/adjust",
                Some(ADMIN),
                Some(adjust.clone()),
                &key,
            ))
            .await;
        assert_eq!(first.status, 200, "{}", first.text);
        assert_eq!(first.body["on_hand"], 15);
        // A refused adjustment is an answer too, and is replayed as such.
        let refused_key = [("idempotency-key", "too-much")];
        let too_much = json!({"delta": -100});
        let refused = server
            .send(request(
                "POST",
                "/api/v1/inventory/1/adjust",
                Some(ADMIN),
                Some(too_much.clone()),
                &refused_key,
            ))
            .await;
        assert_problem(&refused, 409, "invalid_state");
        let again = server
            .send(request(
                "POST",
                "/api/v1/inventory/1/adjust",
                Some(ADMIN),
                Some(too_much),
                &refused_key,
            ))
            .await;
        assert_eq!((again.status, &again.body), (refused.status, &refused.body));
        assert_eq!(again.headers["idempotent-replayed"], "true");
        server.state.engine.shutdown();
        first
    };
    let server = server(dir.path());
    let replay = server
        .send(request(
            "POST",
            "/api/v1/inventory/1/adjust",
            Some(ADMIN),
            Some(adjust),
            &key,
        ))
        .await;
    assert_eq!((replay.status, &replay.body), (first.status, &first.body));
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    let stock = server.call("GET", "/api/v1/inventory/1", None, None).await;
    assert_eq!(stock.body["on_hand"], 15, "applied once");
}
