//! A hostile client: inputs and traffic meant to hurt the server. Each case
//! asserts a clear 4xx (or a bounded resource) and no state change.

use axum::body::Body;
use axum::http::Request;

use serde_json::json;

use crate::support::server;

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
