//! The contract's Carts section through the router in process: each route,
//! who may see which cart, the 400s naming their field, prices that follow
//! the catalog, and Idempotency-Key on every cart write.

use mercato_engine::{NewProduct, ProductId, UserId, Uuid};
use serde_json::{Value, json};

use crate::support::{TestServer, assert_problem, request, server};

const UNKNOWN_CART: &str = "0193a5c4-0000-7000-8000-00000000abcd";

async fn product(server: &TestServer, id: u64, price: &str) {
    let created = server
        .admin(
            "POST",
            "/api/v1/products",
            Some(json!({"id": id, "name": format!("Thing {id}"), "price": price})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
}

async fn customer(server: &TestServer, user_id: &str) -> String {
    let minted = server
        .admin(
            "POST",
            "/api/v1/auth/tokens",
            Some(json!({"user_id": user_id})),
        )
        .await;
    assert_eq!(minted.status, 201, "{}", minted.text);
    minted.body["token"].as_str().unwrap().to_owned()
}

async fn new_cart(server: &TestServer, token: &str) -> String {
    let created = server
        .call("POST", "/api/v1/carts", Some(token), Some(json!({})))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.body["id"].as_str().unwrap().to_owned()
}

fn items(cart: &Value) -> Vec<(u64, u64, String, String)> {
    cart["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            (
                line["product_id"].as_u64().unwrap(),
                line["quantity"].as_u64().unwrap(),
                line["unit_price"].as_str().unwrap().to_owned(),
                line["line_total"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn line(product: u64, quantity: u64, unit: &str, total: &str) -> (u64, u64, String, String) {
    (product, quantity, unit.to_owned(), total.to_owned())
}

#[tokio::test]
async fn carts_follow_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    product(&server, 1, "2.50").await;
    product(&server, 2, "10").await;
    let alice = customer(&server, "alice").await;

    // A customer's own cart; the body may be left out.
    let created = server
        .call("POST", "/api/v1/carts", Some(&alice), None)
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let cart = &created.body;
    for field in [
        "id",
        "user_id",
        "items",
        "subtotal",
        "currency",
        "updated_at",
    ] {
        assert!(cart.get(field).is_some(), "{field} in {cart}");
    }
    assert_eq!(cart["user_id"], "alice");
    assert_eq!(cart["items"], json!([]));
    assert_eq!(cart["subtotal"], "0.00");
    assert_eq!(cart["currency"], "USD");
    assert!(cart["updated_at"].as_str().unwrap().ends_with('Z'));
    let id = cart["id"].as_str().unwrap().to_owned();
    assert_eq!(id.parse::<Uuid>().unwrap().get_version_num(), 7);
    let named = server
        .call(
            "POST",
            "/api/v1/carts",
            Some(&alice),
            Some(json!({"user_id": "alice"})),
        )
        .await;
    assert_eq!(named.status, 201, "{}", named.text);

    let items_uri = |product: u64| format!("/api/v1/carts/{id}/items/{product}");
    let put = server
        .call(
            "PUT",
            &items_uri(1),
            Some(&alice),
            Some(json!({"quantity": 2})),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(items(&put.body), [line(1, 2, "2.50", "5.00")]);
    assert_eq!(put.body["subtotal"], "5.00");
    let put = server
        .call(
            "PUT",
            &items_uri(2),
            Some(&alice),
            Some(json!({"quantity": 3})),
        )
        .await;
    assert_eq!(
        items(&put.body),
        [line(1, 2, "2.50", "5.00"), line(2, 3, "10.00", "30.00")]
    );
    assert_eq!(put.body["subtotal"], "35.00");
    let read = server
        .call("GET", &format!("/api/v1/carts/{id}"), Some(&alice), None)
        .await;
    assert_eq!((read.status.as_u16(), &read.body), (200, &put.body));

    // Prices follow the catalog.
    let patched = server
        .admin("PATCH", "/api/v1/products/1", Some(json!({"price": "3"})))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let read = server
        .call("GET", &format!("/api/v1/carts/{id}"), Some(&alice), None)
        .await;
    assert_eq!(
        items(&read.body),
        [line(1, 2, "3.00", "6.00"), line(2, 3, "10.00", "30.00")]
    );
    assert_eq!(read.body["subtotal"], "36.00");

    // Quantity 0 removes the line; DELETE removes one, and again is no error.
    let zero = server
        .call(
            "PUT",
            &items_uri(1),
            Some(&alice),
            Some(json!({"quantity": 0})),
        )
        .await;
    assert_eq!(items(&zero.body), [line(2, 3, "10.00", "30.00")]);
    let deleted = server
        .call("DELETE", &items_uri(2), Some(&alice), None)
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.body["items"], json!([]));
    assert_eq!(deleted.body["subtotal"], "0.00");
    let again = server
        .call("DELETE", &items_uri(2), Some(&alice), None)
        .await;
    assert_eq!(
        (again.status.as_u16(), &again.body["items"]),
        (200, &json!([]))
    );

    // Unknown and archived products are 404; an archived product's line
    // leaves the cart.
    assert_problem(
        &server
            .call(
                "PUT",
                &items_uri(99),
                Some(&alice),
                Some(json!({"quantity": 1})),
            )
            .await,
        404,
        "not_found",
    );
    server
        .call(
            "PUT",
            &items_uri(2),
            Some(&alice),
            Some(json!({"quantity": 1})),
        )
        .await;
    assert_eq!(
        server
            .admin("DELETE", "/api/v1/products/2", None)
            .await
            .status,
        204
    );
    assert_problem(
        &server
            .call(
                "PUT",
                &items_uri(2),
                Some(&alice),
                Some(json!({"quantity": 1})),
            )
            .await,
        404,
        "not_found",
    );
    let read = server
        .call("GET", &format!("/api/v1/carts/{id}"), Some(&alice), None)
        .await;
    assert_eq!(
        (read.body["items"].clone(), read.body["subtotal"].clone()),
        (json!([]), json!("0.00"))
    );
}

#[tokio::test]
async fn the_admin_creates_carts_for_anyone_and_customers_for_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let alice = customer(&server, "alice").await;
    let for_bob = server
        .admin("POST", "/api/v1/carts", Some(json!({"user_id": "bob"})))
        .await;
    assert_eq!(for_bob.status, 201, "{}", for_bob.text);
    assert_eq!(for_bob.body["user_id"], "bob");
    for body in [None, Some(json!({}))] {
        let answer = server.admin("POST", "/api/v1/carts", body).await;
        assert_problem(&answer, 400, "invalid_request");
        assert_eq!(answer.body["field"], "user_id");
    }
    assert_problem(
        &server
            .call(
                "POST",
                "/api/v1/carts",
                Some(&alice),
                Some(json!({"user_id": "bob"})),
            )
            .await,
        403,
        "forbidden",
    );
    // Bob's token sees the cart the admin made for him.
    let bob = customer(&server, "bob").await;
    let id = for_bob.body["id"].as_str().unwrap();
    let read = server
        .call("GET", &format!("/api/v1/carts/{id}"), Some(&bob), None)
        .await;
    assert_eq!((read.status.as_u16(), &read.body), (200, &for_bob.body));
}

#[tokio::test]
async fn another_users_cart_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    product(&server, 1, "1.00").await;
    let alice = customer(&server, "alice").await;
    let mallory = customer(&server, "mallory").await;
    let id = new_cart(&server, &alice).await;
    let put = server
        .call(
            "PUT",
            &format!("/api/v1/carts/{id}/items/1"),
            Some(&alice),
            Some(json!({"quantity": 1})),
        )
        .await;
    assert_eq!(put.status, 200);

    let theirs = server
        .call("GET", &format!("/api/v1/carts/{id}"), Some(&mallory), None)
        .await;
    assert_problem(&theirs, 404, "not_found");
    let unknown = server
        .call(
            "GET",
            &format!("/api/v1/carts/{UNKNOWN_CART}"),
            Some(&mallory),
            None,
        )
        .await;
    assert_problem(&unknown, 404, "not_found");
    assert_eq!(
        theirs.body["detail"].as_str().unwrap().replace(&id, "ID"),
        unknown.body["detail"]
            .as_str()
            .unwrap()
            .replace(UNKNOWN_CART, "ID"),
        "another user's cart reads exactly as an unknown one"
    );
    for (method, body) in [("PUT", Some(json!({"quantity": 5}))), ("DELETE", None)] {
        assert_problem(
            &server
                .call(
                    method,
                    &format!("/api/v1/carts/{id}/items/1"),
                    Some(&mallory),
                    body,
                )
                .await,
            404,
            "not_found",
        );
    }
    let read = server
        .call("GET", &format!("/api/v1/carts/{id}"), Some(&alice), None)
        .await;
    assert_eq!(read.body, put.body, "unchanged");

    // The admin sees and changes any cart; an unknown one is 404.
    let admin_read = server
        .admin("GET", &format!("/api/v1/carts/{id}"), None)
        .await;
    assert_eq!(admin_read.body, put.body);
    let admin_put = server
        .admin(
            "PUT",
            &format!("/api/v1/carts/{id}/items/1"),
            Some(json!({"quantity": 4})),
        )
        .await;
    assert_eq!(admin_put.body["items"][0]["quantity"], 4);
    for (method, uri, body) in [
        ("GET", format!("/api/v1/carts/{UNKNOWN_CART}"), None),
        (
            "PUT",
            format!("/api/v1/carts/{UNKNOWN_CART}/items/1"),
            Some(json!({"quantity": 1})),
        ),
        (
            "DELETE",
            format!("/api/v1/carts/{UNKNOWN_CART}/items/1"),
            None,
        ),
    ] {
        assert_problem(&server.admin(method, &uri, body).await, 404, "not_found");
    }
}

#[tokio::test]
async fn cart_requests_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    product(&server, 1, "1.00").await;
    let alice = customer(&server, "alice").await;
    let id = new_cart(&server, &alice).await;
    let item = format!("/api/v1/carts/{id}/items/1");

    for (method, uri, body) in [
        ("POST", "/api/v1/carts".to_owned(), Some(json!({}))),
        ("GET", format!("/api/v1/carts/{id}"), None),
        ("PUT", item.clone(), Some(json!({"quantity": 1}))),
        ("DELETE", item.clone(), None),
    ] {
        assert_problem(
            &server.call(method, &uri, None, body.clone()).await,
            401,
            "unauthorized",
        );
        assert_problem(
            &server
                .call(method, &uri, Some("mct_forged.token"), body)
                .await,
            401,
            "unauthorized",
        );
    }

    let cases = [
        (json!({"quantity": -1}), "quantity"),
        (json!({"quantity": "2"}), "quantity"),
        (json!({"quantity": 1.5}), "quantity"),
        (json!({"quantity": 1_000_001}), "quantity"),
        (json!({"quantity": 1, "note": "x"}), "note"),
    ];
    for (body, field) in cases {
        let answer = server.call("PUT", &item, Some(&alice), Some(body)).await;
        assert_problem(&answer, 400, "invalid_request");
        assert_eq!(answer.body["field"], field, "{}", answer.text);
    }
    let missing = server
        .call("PUT", &item, Some(&alice), Some(json!({})))
        .await;
    assert_problem(&missing, 400, "invalid_request");
    assert!(
        missing.body["detail"]
            .as_str()
            .unwrap()
            .contains("quantity")
    );
    for uri in [
        "/api/v1/carts/not-a-uuid".to_owned(),
        format!("/api/v1/carts/{id}/items/abc"),
    ] {
        let method = if uri.contains("items") {
            "DELETE"
        } else {
            "GET"
        };
        assert_problem(
            &server.call(method, &uri, Some(&alice), None).await,
            400,
            "invalid_request",
        );
    }
    for (body, field) in [
        (json!({"user_id": ""}), "user_id"),
        (json!({"user_id": "x".repeat(256)}), "user_id"),
        (json!({"user_id": 7}), "user_id"),
        (json!({"user_id": "bob", "extra": 1}), "extra"),
    ] {
        let answer = server.admin("POST", "/api/v1/carts", Some(body)).await;
        assert_problem(&answer, 400, "invalid_request");
        assert_eq!(answer.body["field"], field, "{}", answer.text);
    }
    let not_json = server
        .send(request(
            "POST",
            "/api/v1/carts",
            Some(&alice),
            None,
            &[("content-type", "text/plain")],
        ))
        .await;
    assert_eq!(
        not_json.status, 201,
        "an empty body is no body: {}",
        not_json.text
    );
    let text_body = server
        .send(
            axum::http::Request::builder()
                .method("POST")
                .uri("/api/v1/carts")
                .header("authorization", format!("Bearer {alice}"))
                .header("content-type", "text/plain")
                .body(axum::body::Body::from("user_id=alice"))
                .unwrap(),
        )
        .await;
    assert_problem(&text_body, 415, "unsupported_media_type");
}

#[tokio::test]
async fn limits_answer_400_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let products = (1..=101)
        .map(|id| NewProduct {
            id: Some(ProductId(id)),
            name: format!("P{id}"),
            price: "1.00".parse().unwrap(),
            ..NewProduct::default()
        })
        .collect();
    server.state.engine.import_products(products).await.unwrap();
    let alice = customer(&server, "alice").await;
    let id = new_cart(&server, &alice).await;
    for product in 1..=100 {
        let answer = server
            .call(
                "PUT",
                &format!("/api/v1/carts/{id}/items/{product}"),
                Some(&alice),
                Some(json!({"quantity": 1})),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let full = server
        .call(
            "PUT",
            &format!("/api/v1/carts/{id}/items/101"),
            Some(&alice),
            Some(json!({"quantity": 1})),
        )
        .await;
    assert_problem(&full, 400, "invalid_request");
    assert_eq!(full.body["field"], "items");

    for _ in 1..100 {
        new_cart(&server, &alice).await;
    }
    let too_many = server
        .call("POST", "/api/v1/carts", Some(&alice), None)
        .await;
    assert_problem(&too_many, 400, "invalid_request");
    assert_eq!(too_many.body["field"], "user_id");
}

#[tokio::test]
async fn idempotency_keys_work_on_every_cart_write() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    product(&server, 1, "1.00").await;
    let alice = customer(&server, "alice").await;
    let keyed = |method: &'static str, uri: String, body: Option<Value>, key: &'static str| {
        let token = alice.clone();
        let server = &server;
        async move {
            server
                .send(request(
                    method,
                    &uri,
                    Some(&token),
                    body,
                    &[("idempotency-key", key)],
                ))
                .await
        }
    };

    let first = keyed("POST", "/api/v1/carts".into(), None, "cart-1").await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = keyed("POST", "/api/v1/carts".into(), None, "cart-1").await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let id = first.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        server
            .state
            .engine
            .carts_of_user(&UserId::new("alice").unwrap())
            .unwrap()
            .len(),
        1,
        "created once"
    );

    let item = format!("/api/v1/carts/{id}/items/1");
    let put = keyed("PUT", item.clone(), Some(json!({"quantity": 2})), "put-1").await;
    assert_eq!(put.status, 200, "{}", put.text);
    // A change in between; the replay answers the first answer, unchanged.
    server
        .call("PUT", &item, Some(&alice), Some(json!({"quantity": 7})))
        .await;
    let replayed = keyed("PUT", item.clone(), Some(json!({"quantity": 2})), "put-1").await;
    assert_eq!((replayed.status, &replayed.body), (put.status, &put.body));
    assert_eq!(replayed.headers["idempotent-replayed"], "true");
    let read = server
        .call("GET", &format!("/api/v1/carts/{id}"), Some(&alice), None)
        .await;
    assert_eq!(read.body["items"][0]["quantity"], 7, "applied once");
    assert_problem(
        &keyed("PUT", item.clone(), Some(json!({"quantity": 3})), "put-1").await,
        409,
        "conflict",
    );

    let deleted = keyed("DELETE", item.clone(), None, "delete-1").await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let replayed = keyed("DELETE", item, None, "delete-1").await;
    assert_eq!(
        (replayed.status, &replayed.body),
        (deleted.status, &deleted.body)
    );
    assert_eq!(replayed.headers["idempotent-replayed"], "true");
}

#[tokio::test]
async fn the_openapi_document_lists_the_cart_routes() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let document = server.call("GET", "/api/v1/openapi.json", None, None).await;
    let openapi = &document.body;
    for (method, path) in [
        ("post", "/api/v1/carts"),
        ("get", "/api/v1/carts/{id}"),
        ("put", "/api/v1/carts/{id}/items/{product_id}"),
        ("delete", "/api/v1/carts/{id}/items/{product_id}"),
    ] {
        let operation = &openapi["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        assert_eq!(operation["tags"], json!(["carts"]));
        assert!(operation["responses"]["404"].is_object() || method == "post");
    }
    let cart = &openapi["components"]["schemas"]["CartBody"]["properties"];
    for field in [
        "id",
        "user_id",
        "items",
        "subtotal",
        "currency",
        "updated_at",
    ] {
        assert!(cart[field].is_object(), "{field}");
    }
    assert_eq!(
        cart["subtotal"]["type"], "string",
        "money is a decimal string"
    );
}
