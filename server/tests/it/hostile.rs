//! A hostile client: inputs and traffic meant to hurt the server. Each case
//! asserts a clear 4xx (or a bounded resource) and no state change.

use axum::body::Body;
use axum::http::Request;

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
    assert!(!metrics.contains("/no/such/path"), "a client's path became a label");
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
