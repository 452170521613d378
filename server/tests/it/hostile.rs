//! A hostile client: inputs and traffic meant to hurt the server. Each case
//! asserts a clear 4xx (or a bounded resource) and no state change.

use axum::body::Body;
use axum::http::Request;

use serde_json::{Value, json};

use mercato_server::Limits;

use crate::support::{ADMIN, assert_problem, engine_config, request, server, server_with};

#[tokio::test]
async fn made_up_methods_and_paths_do_not_grow_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let before = server.call("GET", "/metrics", None, None).await.text.len();
    for n in 0..300 {
        let method = format!("X{n}{}", "Y".repeat(200));
        let request = Request::builder()
            .method(method.as_str())
            .uri("/healthz")
            .body(Body::empty())
            .unwrap();
        let answer = server.send(request).await;
        assert_eq!(answer.status, 405);
        let answer = server
            .call("GET", &format!("/no/such/path/{n}"), None, None)
            .await;
        assert_eq!(answer.status, 404);
    }
    let metrics = server.call("GET", "/metrics", None, None).await.text;
    assert!(!metrics.contains("X1Y"), "a client's method became a label");
    assert!(
        !metrics.contains("/no/such/path"),
        "a client's path became a label"
    );
    assert!(metrics.contains("method=\"other\""));
    assert!(metrics.contains("route=\"unmatched\""));
    // Two new series (other on /healthz, GET on unmatched) and their
    // histograms: a few KB, not one series per request.
    assert!(
        metrics.len() < before + 16 * 1024,
        "metrics grew from {before} to {} bytes",
        metrics.len()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn money_is_a_plain_decimal_string_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.product(1, "5.00", 3).await;
    for (n, bad) in [
        json!("1.000000000000000000000000000001"),
        json!("1.001"),
        json!("1e2"),
        json!("1.5E-1"),
        json!("1_000.00"),
        json!("+1.00"),
        json!("-0.00"),
        json!(" 1.00"),
        json!(""),
        json!(1.5),
        json!(2),
        json!(null),
    ]
    .into_iter()
    .enumerate()
    {
        let id = 100 + n as u64;
        let created = server
            .admin(
                "POST",
                "/api/v1/products",
                Some(json!({"id": id, "name": "Cup", "price": bad})),
            )
            .await;
        assert_eq!(created.status, 400, "{bad}: {}", created.text);
        assert_eq!(created.body["code"], "invalid_request");
        assert!(created.text.contains("price"), "{}", created.text);
        let read = server
            .call("GET", &format!("/api/v1/products/{id}"), None, None)
            .await;
        assert_eq!(read.status, 404, "nothing was made");
        let changed = server
            .admin("PATCH", "/api/v1/products/1", Some(json!({"price": bad})))
            .await;
        if bad.is_null() {
            // An absent price: nothing to change.
            assert_eq!(changed.status, 200, "{}", changed.text);
        } else {
            assert_eq!(changed.status, 400, "{bad}: {}", changed.text);
        }
        let read = server.call("GET", "/api/v1/products/1", None, None).await;
        assert_eq!(read.body["price"], "5.00", "unchanged after {bad}");
    }
    server.shutdown().await;
}

/// How many idempotency answers the engine holds, in all.
fn stored_answers(server: &crate::support::TestServer) -> usize {
    server
        .state
        .engine
        .idempotency_records_with_prefix("http:", usize::MAX)
        .unwrap()
}

#[tokio::test]
async fn only_authenticated_callers_of_real_routes_store_idempotent_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    // Anonymous, with keys, to unknown and to real routes: nothing stored.
    for n in 0..50 {
        let key = format!("k{n}");
        let headers = [("idempotency-key", key.as_str())];
        let answer = server
            .send(request(
                "POST",
                &format!("/api/v1/nope/{n}"),
                None,
                Some(json!({})),
                &headers,
            ))
            .await;
        assert_eq!(answer.status, 404);
        let answer = server
            .send(request(
                "POST",
                "/api/v1/products",
                None,
                Some(json!({"name": "Cup", "price": "1.00"})),
                &headers,
            ))
            .await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.headers["www-authenticate"], "Bearer");
        let answer = server
            .send(request(
                "POST",
                "/api/v1/products",
                Some("not-a-token"),
                Some(json!({"name": "Cup", "price": "1.00"})),
                &headers,
            ))
            .await;
        assert_eq!(answer.status, 401);
    }
    assert_eq!(stored_answers(&server), 0);

    // One caller however the header is written: one product, then replays.
    let body = json!({"name": "Cup", "price": "1.00"});
    let mut ids = Vec::new();
    for authorization in [
        format!("Bearer {ADMIN}"),
        format!("bearer {ADMIN}"),
        format!("BEARER   {ADMIN}"),
    ] {
        let mut request = request(
            "POST",
            "/api/v1/products",
            None,
            Some(body.clone()),
            &[("idempotency-key", "same")],
        );
        request
            .headers_mut()
            .insert("authorization", authorization.parse().unwrap());
        let answer = server.send(request).await;
        assert_eq!(answer.status, 201, "{}", answer.text);
        ids.push(answer.body["id"].clone());
    }
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[1], ids[2]);
    assert_eq!(stored_answers(&server), 1);

    // Two Authorization headers: refused.
    let mut twice = request(
        "GET",
        "/api/v1/orders/0193a5c4-0000-7000-8000-000000000001",
        Some(ADMIN),
        None,
        &[],
    );
    twice
        .headers_mut()
        .append("authorization", "Bearer another".parse().unwrap());
    let answer = server.send(twice).await;
    assert_eq!(answer.status, 401, "{}", answer.text);
    server.shutdown().await;
}

#[tokio::test]
async fn a_customer_holds_a_bounded_number_of_idempotent_answers() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        idempotency_records_per_customer_max: 5,
        ..Limits::default()
    };
    let server = server_with(engine_config(dir.path(), None), limits);
    let ann = server.customer("ann").await;
    let bob = server.customer("bob").await;
    let make = |user: &'static str, token: &str, key: &str| {
        request(
            "POST",
            "/api/v1/carts",
            Some(token),
            Some(json!({"user_id": user})),
            &[("idempotency-key", key)],
        )
    };
    for n in 0..5 {
        let answer = server.send(make("ann", &ann, &format!("k{n}"))).await;
        assert_eq!(answer.status, 201, "{}", answer.text);
    }
    // A sixth key is refused and changes nothing; a replay still works;
    // another customer is not held back.
    let refused = server.send(make("ann", &ann, "k5")).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.body["code"], "rate_limited");
    let ann_id = mercato_engine::UserId::new("ann").unwrap();
    assert_eq!(server.state.engine.carts_of_user(&ann_id).unwrap().len(), 5);
    let replay = server.send(make("ann", &ann, "k0")).await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    let other = server.send(make("bob", &bob, "k5")).await;
    assert_eq!(other.status, 201, "{}", other.text);
    server.shutdown().await;
}

#[tokio::test]
async fn a_minted_token_is_never_stored_and_its_replay_is_the_same_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let mint = || {
        request(
            "POST",
            "/api/v1/auth/tokens",
            Some(ADMIN),
            Some(json!({"user_id": "cat"})),
            &[("idempotency-key", "mint-1")],
        )
    };
    let first = server.send(mint()).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let token = first.body["token"].as_str().unwrap().to_owned();
    let replay = server.send(mint()).await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(replay.body, first.body, "the same token, minted again");
    // The token works, and no file of the data directory holds it.
    let orders = server
        .call("GET", "/api/v1/orders/user/cat", Some(&token), None)
        .await;
    assert_eq!(orders.status, 200, "{}", orders.text);
    server.state.engine.flush().await.unwrap();
    server.shutdown().await;
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files += 1;
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes
                    .windows(token.len())
                    .any(|window| window == token.as_bytes()),
                "{} holds the token",
                path.display()
            );
        }
    }
    assert!(files > 0);
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_its_files_are_the_owners_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = server(&data);
    server.product(1, "1.00", 5).await;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    let mut files = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files += 1;
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    assert!(files >= 2, "the store and its log");
    server.shutdown().await;
}

#[tokio::test]
async fn framework_rejections_are_problem_documents_with_safe_headers() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.product(1, "1.00", 1).await;
    let long = format!("/api/v1/products?category={}", "x".repeat(9_000));
    let answer = server.call("GET", &long, None, None).await;
    assert_problem(&answer, 414, "uri_too_long");
    let mut many = request("GET", "/healthz", None, None, &[]);
    for n in 0..120 {
        many.headers_mut().insert(
            axum::http::HeaderName::from_bytes(format!("x-h{n}").as_bytes()).unwrap(),
            "v".parse().unwrap(),
        );
    }
    assert_problem(&server.send(many).await, 431, "headers_too_large");
    for path in ["/healthz", "/api/v1/products/1", "/api/v1/nope", "/docs/"] {
        let answer = server.call("GET", path, None, None).await;
        assert_eq!(
            answer.headers["x-content-type-options"], "nosniff",
            "{path}"
        );
    }
    let docs = server.call("GET", "/docs/", None, None).await;
    assert!(
        docs.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn ids_in_paths_have_one_spelling_and_errors_name_no_rust_types() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.product(1, "1.00", 1).await;
    assert_eq!(
        server
            .call("GET", "/api/v1/products/1", None, None)
            .await
            .status,
        200
    );
    for path in [
        "/api/v1/products/+1",
        "/api/v1/products/01",
        "/api/v1/products/0001",
        "/api/v1/inventory/+1",
        "/api/v1/orders/0193a5c400007000800000000000000f",
        "/api/v1/orders/urn:uuid:0193a5c4-0000-7000-8000-00000000000f",
        "/api/v1/orders/%7B0193a5c4-0000-7000-8000-00000000000f%7D",
        "/api/v1/products/1.0",
        "/api/v1/products/1.",
        "/api/v1/inventory/1.00",
    ] {
        // Another spelling of an id names nothing.
        let answer = server.admin("GET", path, None).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.text);
        assert_eq!(answer.body["code"], "not_found");
    }
    let unknown = server
        .admin(
            "GET",
            "/api/v1/orders/0193a5c4-0000-7000-8000-00000000000f",
            None,
        )
        .await;
    assert_eq!(unknown.status, 404);
    // Parser errors speak JSON, not Rust.
    for (path, body) in [
        ("/api/v1/products", json!({"name": 3, "price": "1.00"})),
        (
            "/api/v1/products",
            json!({"id": "x", "name": "a", "price": "1.00"}),
        ),
        ("/api/v1/products", json!(3)),
        (
            "/api/v1/products",
            json!({"name": "a", "price": "1.00", "attributes": [1]}),
        ),
    ] {
        let answer = server.admin("POST", path, Some(body.clone())).await;
        assert_eq!(answer.status, 400, "{body}");
        let detail = answer.body["detail"].as_str().unwrap();
        for rust in [
            "u64", "struct", "String", "BTreeMap", "Create", "usize", "Option",
        ] {
            assert!(!detail.contains(rust), "{body}: {detail}");
        }
    }
    let answer = server.call("GET", "/api/v1/products/abc", None, None).await;
    assert_eq!(answer.status, 400);
    assert!(!answer.text.contains("u64"), "{}", answer.text);
    let answer = server
        .call("GET", "/api/v1/products?limit=x", None, None)
        .await;
    assert_eq!(answer.status, 400);
    assert!(!answer.text.contains("usize"), "{}", answer.text);
    server.shutdown().await;
}

/// Bad inputs across every writing route: each is a 4xx problem document
/// and leaves the event log (every change writes to it) as it was.
#[tokio::test]
async fn bad_inputs_everywhere_are_4xx_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.state.set_demo_sign_in(true);
    server.product(1, "2.00", 10).await;
    let customer = server.customer("pat").await;
    let cart = server
        .call(
            "POST",
            "/api/v1/carts",
            Some(&customer),
            Some(json!({"user_id": "pat"})),
        )
        .await;
    let cart_id = cart.body["id"].as_str().unwrap().to_owned();
    let order = server.order(ADMIN, "pat", 1, 1, "tok_visa").await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    let order = server
        .until_order(&order_id, |order| order["status"] != "AWAITING_PAYMENT")
        .await;
    let payment_id = order["payment_id"].as_str().unwrap().to_owned();
    let long = "x".repeat(300);
    let huge = "y".repeat(5_000);
    let uuid = "0193a5c4-0000-7000-8000-0000000000ee";
    let cases: Vec<(&str, String, Value)> = vec![
        // Products.
        ("POST", "/api/v1/products".into(), json!({})),
        (
            "POST",
            "/api/v1/products".into(),
            json!({"name": "", "price": "1.00"}),
        ),
        (
            "POST",
            "/api/v1/products".into(),
            json!({"name": huge, "price": "1.00"}),
        ),
        (
            "POST",
            "/api/v1/products".into(),
            json!({"name": "a", "price": "1.00", "bogus": 1}),
        ),
        (
            "POST",
            "/api/v1/products".into(),
            json!({"name": "a", "price": "1.00", "id": 0}),
        ),
        (
            "POST",
            "/api/v1/products".into(),
            json!({"name": "a", "price": "1.00", "id": 1}),
        ),
        (
            "POST",
            "/api/v1/products".into(),
            json!({"name": "a", "price": "1.00", "id": -1}),
        ),
        (
            "POST",
            "/api/v1/products".into(),
            json!({"name": "a", "price": "1.00", "id": 1.5}),
        ),
        (
            "POST",
            "/api/v1/products".into(),
            json!({"name": "a", "price": "1.00", "category": "a\u{0}b"}),
        ),
        (
            "POST",
            "/api/v1/products".into(),
            json!({"name": "a\nb", "price": "1.00"}),
        ),
        (
            "POST",
            "/api/v1/products".into(),
            json!({"name": "a", "price": "1.00", "low_stock_threshold": -3}),
        ),
        (
            "POST",
            "/api/v1/products".into(),
            json!({"name": "a", "price": "99999999999999999999.00"}),
        ),
        (
            "POST",
            "/api/v1/products".into(),
            json!({"name": "a", "price": "1.00", "attributes": {"k": huge}}),
        ),
        ("POST", "/api/v1/products".into(), json!([1, 2, 3])),
        ("POST", "/api/v1/products".into(), json!("text")),
        (
            "PATCH",
            "/api/v1/products/1".into(),
            json!({"price": "-1.00"}),
        ),
        ("PATCH", "/api/v1/products/1".into(), json!({"name": ""})),
        ("PATCH", "/api/v1/products/1".into(), json!({"nope": true})),
        ("PATCH", "/api/v1/products/999".into(), json!({"name": "x"})),
        ("PATCH", "/api/v1/products/abc".into(), json!({"name": "x"})),
        ("DELETE", "/api/v1/products/999".into(), json!(null)),
        (
            "DELETE",
            "/api/v1/products/18446744073709551616".into(),
            json!(null),
        ),
        // Inventory.
        ("PUT", "/api/v1/inventory/1".into(), json!({"on_hand": -1})),
        (
            "PUT",
            "/api/v1/inventory/1".into(),
            json!({"on_hand": "10"}),
        ),
        ("PUT", "/api/v1/inventory/999".into(), json!({"on_hand": 5})),
        (
            "PUT",
            "/api/v1/inventory/1".into(),
            json!({"on_hand": 1e30}),
        ),
        (
            "POST",
            "/api/v1/inventory/1/adjust".into(),
            json!({"delta": -1000}),
        ),
        (
            "POST",
            "/api/v1/inventory/1/adjust".into(),
            json!({"delta": "1"}),
        ),
        ("POST", "/api/v1/inventory/1/adjust".into(), json!({})),
        (
            "POST",
            "/api/v1/inventory/reserve".into(),
            json!({"order_id": uuid, "items": []}),
        ),
        (
            "POST",
            "/api/v1/inventory/reserve".into(),
            json!({"order_id": uuid, "items": [{"product_id": 1, "quantity": 0}]}),
        ),
        (
            "POST",
            "/api/v1/inventory/reserve".into(),
            json!({"order_id": uuid, "items": [{"product_id": 1, "quantity": 1000}]}),
        ),
        (
            "POST",
            "/api/v1/inventory/reserve".into(),
            json!({"order_id": uuid, "items": [{"product_id": 999, "quantity": 1}]}),
        ),
        (
            "POST",
            "/api/v1/inventory/reserve".into(),
            json!({"order_id": "not-a-uuid", "items": [{"product_id": 1, "quantity": 1}]}),
        ),
        (
            "POST",
            "/api/v1/inventory/reserve".into(),
            json!({"order_id": uuid, "items": [{"product_id": 1, "quantity": 1}, {"product_id": 1, "quantity": 1}]}),
        ),
        (
            "POST",
            "/api/v1/inventory/reserve".into(),
            json!({"order_id": uuid, "items": [{"product_id": 1, "quantity": 1}], "ttl_seconds": 0}),
        ),
        (
            "POST",
            "/api/v1/inventory/reserve".into(),
            json!({"order_id": uuid, "items": [{"product_id": 1, "quantity": 1}], "ttl_seconds": 999999999}),
        ),
        (
            "POST",
            "/api/v1/inventory/commit".into(),
            json!({"order_id": uuid}),
        ),
        (
            "POST",
            "/api/v1/inventory/release".into(),
            json!({"order_id": uuid}),
        ),
        ("POST", "/api/v1/inventory/commit".into(), json!({})),
        // Tokens.
        ("POST", "/api/v1/auth/tokens".into(), json!({"user_id": ""})),
        (
            "POST",
            "/api/v1/auth/tokens".into(),
            json!({"user_id": long}),
        ),
        (
            "POST",
            "/api/v1/auth/tokens".into(),
            json!({"user_id": "a", "ttl_seconds": 0}),
        ),
        (
            "POST",
            "/api/v1/auth/tokens".into(),
            json!({"user_id": "a", "ttl_seconds": 99999999999_u64}),
        ),
        // Carts.
        ("POST", "/api/v1/carts".into(), json!({"user_id": ""})),
        ("POST", "/api/v1/carts".into(), json!({"user_id": "a\u{7}"})),
        (
            "PUT",
            format!("/api/v1/carts/{cart_id}/items/999"),
            json!({"quantity": 1}),
        ),
        (
            "PUT",
            format!("/api/v1/carts/{cart_id}/items/1"),
            json!({"quantity": -1}),
        ),
        (
            "PUT",
            format!("/api/v1/carts/{cart_id}/items/1"),
            json!({"quantity": 10000001}),
        ),
        (
            "PUT",
            format!("/api/v1/carts/{uuid}/items/1"),
            json!({"quantity": 1}),
        ),
        (
            "DELETE",
            format!("/api/v1/carts/{uuid}/items/1"),
            json!(null),
        ),
        // Orders.
        (
            "POST",
            "/api/v1/orders".into(),
            json!({"user_id": "pat", "items": [], "payment": {"method": "card", "token": "tok_visa"}}),
        ),
        (
            "POST",
            "/api/v1/orders".into(),
            json!({"user_id": "pat", "items": [{"product_id": 1, "quantity": 1}]}),
        ),
        (
            "POST",
            "/api/v1/orders".into(),
            json!({"user_id": "pat", "items": [{"product_id": 1, "quantity": 1}], "cart_id": cart_id, "payment": {"method": "card", "token": "tok_visa"}}),
        ),
        (
            "POST",
            "/api/v1/orders".into(),
            json!({"user_id": "pat", "items": [{"product_id": 1, "quantity": 1}], "payment": {"method": "cheque", "token": "x"}}),
        ),
        (
            "POST",
            "/api/v1/orders".into(),
            json!({"user_id": "pat", "items": [{"product_id": 1, "quantity": 1}], "payment": {"method": "card", "token": huge}}),
        ),
        (
            "POST",
            "/api/v1/orders".into(),
            json!({"user_id": "pat", "items": [{"product_id": 1, "quantity": 1}], "payment": {"method": "card", "token": "tok_visa"}, "email": huge}),
        ),
        ("POST", format!("/api/v1/orders/{uuid}/cancel"), json!(null)),
        ("POST", format!("/api/v1/orders/{uuid}/ship"), json!({})),
        (
            "POST",
            format!("/api/v1/orders/{order_id}/deliver"),
            json!(null),
        ),
        (
            "POST",
            format!("/api/v1/orders/{order_id}/ship"),
            json!({"carrier": huge}),
        ),
        // Payments.
        (
            "POST",
            "/api/v1/payments/process".into(),
            json!({"order_id": order_id, "amount": "1.00", "token": "tok_visa"}),
        ),
        (
            "POST",
            "/api/v1/payments/process".into(),
            json!({"order_id": uuid, "amount": "2.00", "token": "tok_visa"}),
        ),
        (
            "POST",
            format!("/api/v1/payments/{payment_id}/refund"),
            json!({"amount": "100.00"}),
        ),
        (
            "POST",
            format!("/api/v1/payments/{payment_id}/refund"),
            json!({"amount": "0.00"}),
        ),
        (
            "POST",
            format!("/api/v1/payments/{payment_id}/refund"),
            json!({"amount": "0.001"}),
        ),
        ("POST", format!("/api/v1/payments/{uuid}/refund"), json!({})),
        // Notifications.
        (
            "POST",
            format!("/api/v1/notifications/{uuid}/retry"),
            json!(null),
        ),
        // Streams, the operator's listings, the demo sign-in.
        (
            "GET",
            "/api/v1/events/stream?after=99999999".into(),
            json!(null),
        ),
        ("GET", "/api/v1/events/stream?after=-1".into(), json!(null)),
        (
            "GET",
            "/api/v1/events/stream?after=1&from=2".into(),
            json!(null),
        ),
        ("GET", format!("/api/v1/orders/{uuid}/stream"), json!(null)),
        (
            "GET",
            "/api/v1/orders/not-a-uuid/stream".into(),
            json!(null),
        ),
        ("GET", "/api/v1/inventory/999/stream".into(), json!(null)),
        ("GET", "/api/v1/inventory/-1/stream".into(), json!(null)),
        ("GET", "/api/v1/orders?status=shipped".into(), json!(null)),
        ("GET", "/api/v1/orders?limit=0".into(), json!(null)),
        ("GET", "/api/v1/orders?cursor=zzz".into(), json!(null)),
        ("GET", format!("/api/v1/orders?status={huge}"), json!(null)),
        (
            "GET",
            "/api/v1/inventory/reservations?product_id=abc".into(),
            json!(null),
        ),
        (
            "GET",
            "/api/v1/inventory/reservations?limit=0".into(),
            json!(null),
        ),
        ("POST", "/api/v1/auth/demo-sign-in".into(), json!({})),
        (
            "POST",
            "/api/v1/auth/demo-sign-in".into(),
            json!({"name": ""}),
        ),
        (
            "POST",
            "/api/v1/auth/demo-sign-in".into(),
            json!({"name": long}),
        ),
        (
            "POST",
            "/api/v1/auth/demo-sign-in".into(),
            json!({"name": "x", "user_id": "y"}),
        ),
        (
            "POST",
            "/api/v1/auth/demo-sign-in".into(),
            json!({"name": "tab\there"}),
        ),
    ];
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let head = server.state.engine.last_event_seq();
    let stock = server.stock(1).await;
    for (method, uri, body) in &cases {
        let body = (!body.is_null()).then(|| body.clone());
        let answer = server.admin(method, uri, body.clone()).await;
        let status = answer.status.as_u16();
        assert!(
            (400..500).contains(&status),
            "{method} {uri} {body:?} answered {status}: {}",
            answer.text
        );
        assert_eq!(
            answer.headers["content-type"], "application/problem+json",
            "{method} {uri}"
        );
        assert_eq!(
            server.state.engine.last_event_seq(),
            head,
            "{method} {uri} {body:?} changed something"
        );
    }
    assert_eq!(server.stock(1).await, stock);
    server.shutdown().await;
}
