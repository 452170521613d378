//! The server-sent event streams, the operator's listings and the demo
//! sign-in, through the router in process: what a stream sends, that it
//! follows changes, that the cap refuses one stream too many in words,
//! that closing ends every stream, and that the request deadline does not
//! cut a stream.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Response, header};
use http_body_util::BodyExt;
use mercato_server::Limits;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{
    ADMIN, TestServer, assert_problem, engine_config, request, server, server_with,
};

/// The longest a test waits for one message.
const WAIT: Duration = Duration::from_secs(30);

/// A stream's messages as they arrive.
struct Messages {
    body: Body,
    buffer: String,
}

impl Messages {
    fn new(response: Response<Body>) -> Messages {
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        Messages {
            body: response.into_body(),
            buffer: String::new(),
        }
    }

    /// The next message with data: (event name, id, data), or `None` when
    /// the stream ended.
    async fn next(&mut self) -> Option<(String, Option<String>, Value)> {
        let deadline = Instant::now() + WAIT;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = "message".to_owned();
                let mut id = None;
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(rest) = line.strip_prefix("event:") {
                        name = rest.trim().to_owned();
                    } else if let Some(rest) = line.strip_prefix("id:") {
                        id = Some(rest.trim().to_owned());
                    } else if let Some(rest) = line.strip_prefix("data:") {
                        data.push(rest.trim_start().to_owned());
                    }
                }
                if !data.is_empty() {
                    return Some((name, id, serde_json::from_str(&data.join("\n")).unwrap()));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(left, self.body.frame())
                .await
                .expect("no message within the wait");
            match frame {
                None => return None,
                Some(frame) => {
                    if let Ok(data) = frame.unwrap().into_data() {
                        self.buffer.push_str(&String::from_utf8_lossy(&data));
                    }
                }
            }
        }
    }

    /// Skips messages until one satisfies `wanted`.
    async fn until(&mut self, wanted: impl Fn(&str, &Value) -> bool) -> Value {
        loop {
            let (name, _, data) = self.next().await.expect("the stream ended");
            if wanted(&name, &data) {
                return data;
            }
        }
    }
}

async fn open(server: &TestServer, uri: &str, token: Option<&str>) -> Response<Body> {
    server
        .app
        .clone()
        .oneshot(request("GET", uri, token, None, &[]))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_replays_after_a_seq_then_follows() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.product(1, "2.00", 10).await;
    let mut events =
        Messages::new(open(&server, "/api/v1/events/stream?after=1", Some(ADMIN)).await);
    let (name, id, data) = events.next().await.unwrap();
    assert_eq!(id.as_deref(), Some("2"));
    assert_eq!(data["seq"], 2);
    assert_eq!(name, data["type"].as_str().unwrap());

    let adjusted = server
        .admin(
            "POST",
            "/api/v1/inventory/1/adjust",
            Some(json!({"delta": 5})),
        )
        .await;
    assert_eq!(adjusted.status, 200, "{}", adjusted.text);
    events
        .until(|_, data| data["payload"]["product_id"] == 1 && data["seq"].as_u64() > Some(2))
        .await;

    // Last-Event-ID resumes where a client left off.
    let response = server
        .app
        .clone()
        .oneshot(request(
            "GET",
            "/api/v1/events/stream",
            Some(ADMIN),
            None,
            &[("last-event-id", "1")],
        ))
        .await
        .unwrap();
    let (_, id, _) = Messages::new(response).next().await.unwrap();
    assert_eq!(id.as_deref(), Some("2"));

    // Past the end of the log, or not a number: refused in words.
    let beyond = server
        .admin("GET", "/api/v1/events/stream?after=999999", None)
        .await;
    assert_problem(&beyond, 400, "invalid_request");
    let garbled = server
        .send(request(
            "GET",
            "/api/v1/events/stream",
            Some(ADMIN),
            None,
            &[("last-event-id", "soon")],
        ))
        .await;
    assert_problem(&garbled, 400, "invalid_request");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_stream_follows_the_order_until_it_is_final() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.product(1, "2.00", 10).await;
    let olga = server.customer("olga").await;
    let omar = server.customer("omar").await;
    let order = server.order(&olga, "olga", 1, 1, "tok_visa").await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    let uri = format!("/api/v1/orders/{order_id}/stream");

    // Another customer learns nothing; nobody without a token.
    assert_problem(
        &server.call("GET", &uri, Some(&omar), None).await,
        404,
        "not_found",
    );
    assert_problem(
        &server.call("GET", &uri, None, None).await,
        401,
        "unauthorized",
    );

    let mut stream = Messages::new(open(&server, &uri, Some(&olga)).await);
    let first = stream.until(|name, _| name == "order").await;
    assert_eq!(first["order"]["id"], order_id.as_str());
    assert!(
        first["saga"]
            .as_array()
            .is_some_and(|saga| !saga.is_empty())
    );
    // The payment may have confirmed the order before the stream opened.
    if first["order"]["status"] != "CONFIRMED" {
        stream
            .until(|_, data| data["order"]["status"] == "CONFIRMED")
            .await;
    }
    let shipped = server
        .admin(
            "POST",
            &format!("/api/v1/orders/{order_id}/ship"),
            Some(json!({"carrier": "Parcelforce"})),
        )
        .await;
    assert_eq!(shipped.status, 200, "{}", shipped.text);
    let seen = stream
        .until(|_, data| data["order"]["status"] == "SHIPPED")
        .await;
    assert_eq!(seen["order"]["carrier"], "Parcelforce");
    let delivered = server
        .admin("POST", &format!("/api/v1/orders/{order_id}/deliver"), None)
        .await;
    assert_eq!(delivered.status, 200, "{}", delivered.text);
    stream
        .until(|_, data| data["order"]["status"] == "DELIVERED")
        .await;
    // Delivered is final: the stream ends.
    assert!(stream.next().await.is_none());

    // A final order's stream sends it once and ends.
    let mut again = Messages::new(open(&server, &uri, Some(ADMIN)).await);
    assert_eq!(
        again.next().await.unwrap().2["order"]["status"],
        "DELIVERED"
    );
    assert!(again.next().await.is_none());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_stream_sends_each_change_and_ends_when_the_product_goes() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.product(1, "2.00", 10).await;
    server.product(2, "2.00", 10).await;
    let mut stock = Messages::new(open(&server, "/api/v1/inventory/1/stream", None).await);
    let (name, _, first) = stock.next().await.unwrap();
    assert_eq!(name, "stock");
    assert_eq!(first["available"], 10);

    // Another product's change sends nothing; this one's does.
    server
        .admin(
            "POST",
            "/api/v1/inventory/2/adjust",
            Some(json!({"delta": 1})),
        )
        .await;
    server
        .admin(
            "POST",
            "/api/v1/inventory/1/adjust",
            Some(json!({"delta": 3})),
        )
        .await;
    let (_, _, next) = stock.next().await.unwrap();
    assert_eq!(next["product_id"], 1);
    assert_eq!(next["available"], 13);

    let archived = server.admin("DELETE", "/api/v1/products/1", None).await;
    assert_eq!(archived.status, 204, "{}", archived.text);
    let gone = stock.until(|name, _| name == "gone").await;
    assert_eq!(gone["code"], "not_found");
    assert!(stock.next().await.is_none());
    assert_problem(
        &server
            .call("GET", "/api/v1/inventory/1/stream", None, None)
            .await,
        404,
        "not_found",
    );
    assert_problem(
        &server
            .call("GET", "/api/v1/inventory/x/stream", None, None)
            .await,
        400,
        "invalid_request",
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stream_too_many_is_refused_and_closing_ends_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        streams_max: 2,
        ..Limits::default()
    };
    let server = server_with(engine_config(dir.path(), None), limits);
    server.product(1, "2.00", 10).await;
    let first = open(&server, "/api/v1/inventory/1/stream", None).await;
    let second = open(&server, "/api/v1/events/stream", Some(ADMIN)).await;
    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 200);
    let refused = server
        .call("GET", "/api/v1/inventory/1/stream", None, None)
        .await;
    assert_problem(&refused, 503, "too_many_streams");
    assert_eq!(refused.body["streams_max"], 2);
    assert!(refused.headers.contains_key(header::RETRY_AFTER));
    // Other requests are not affected by the cap.
    assert_eq!(
        server
            .call("GET", "/api/v1/inventory/1", None, None)
            .await
            .status,
        200
    );

    // A client that leaves gives its place back.
    drop(first);
    let deadline = Instant::now() + WAIT;
    let mut third = loop {
        let response = open(&server, "/api/v1/inventory/1/stream", None).await;
        if response.status() == 200 {
            break Messages::new(response);
        }
        assert!(Instant::now() < deadline, "the place was not given back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    third.next().await.unwrap();

    // Shutting down ends every stream and refuses new ones.
    server.state.close_streams();
    assert!(third.next().await.is_none());
    assert!(Messages::new(second).next().await.is_none());
    assert_problem(
        &server
            .call("GET", "/api/v1/inventory/1/stream", None, None)
            .await,
        503,
        "shutting_down",
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_deadline_does_not_cut_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        request_timeout: Duration::from_millis(100),
        ..Limits::default()
    };
    let server = server_with(engine_config(dir.path(), None), limits);
    server.product(1, "2.00", 10).await;
    let mut stock = Messages::new(open(&server, "/api/v1/inventory/1/stream", None).await);
    stock.next().await.unwrap();
    // Past the deadline, the stream still delivers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server
        .admin(
            "POST",
            "/api/v1/inventory/1/adjust",
            Some(json!({"delta": 1})),
        )
        .await;
    assert_eq!(stock.next().await.unwrap().2["available"], 11);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_sign_in_mints_a_customer_token_only_when_switched_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let body = json!({"name": "  Ada@Example.com "});
    server.state.set_demo_sign_in(false);
    let off = server
        .call(
            "POST",
            "/api/v1/auth/demo-sign-in",
            None,
            Some(body.clone()),
        )
        .await;
    assert_problem(&off, 403, "demo_sign_in_disabled");

    server.state.set_demo_sign_in(true);
    let on = server
        .call("POST", "/api/v1/auth/demo-sign-in", None, Some(body))
        .await;
    assert_eq!(on.status, 201, "{}", on.text);
    assert_eq!(on.body["user_id"], "ada@example.com");
    let token = on.body["token"].as_str().unwrap();
    // A customer token: its own cart, not the admin's routes.
    let cart = server
        .call(
            "POST",
            "/api/v1/carts",
            Some(token),
            Some(json!({"user_id": "ada@example.com"})),
        )
        .await;
    assert_eq!(cart.status, 201, "{}", cart.text);
    assert_problem(
        &server
            .call("GET", "/api/v1/orders", Some(token), None)
            .await,
        403,
        "forbidden",
    );
    for bad in [
        json!({"name": "   "}),
        json!({"name": ""}),
        json!({"name": "a\u{7}b"}),
        json!({"name": "x".repeat(256)}),
        json!({"name": "x", "admin": true}),
        json!({}),
    ] {
        let refused = server
            .call("POST", "/api/v1/auth/demo-sign-in", None, Some(bad.clone()))
            .await;
        assert_problem(&refused, 400, "invalid_request");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_lists_orders_by_status_and_active_reservations() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.product(1, "2.00", 10).await;
    server.product(2, "2.00", 10).await;
    let paid = server.order(ADMIN, "olga", 1, 1, "tok_visa").await;
    let paid_id = paid["id"].as_str().unwrap().to_owned();
    server.settled(&paid_id).await;
    let failed = server
        .order(ADMIN, "omar", 1, 1, "tok_chargeDeclined")
        .await;
    let failed_id = failed["id"].as_str().unwrap().to_owned();
    server.settled(&failed_id).await;
    let reserved = server
        .admin(
            "POST",
            "/api/v1/inventory/reserve",
            Some(json!({"order_id": "0193a5c4-0000-7000-8000-0000000000ab",
                        "items": [{"product_id": 2, "quantity": 3}]})),
        )
        .await;
    assert_eq!(reserved.status, 201, "{}", reserved.text);

    let all = server.admin("GET", "/api/v1/orders", None).await;
    assert_eq!(all.status, 200, "{}", all.text);
    let ids: Vec<&str> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|order| order["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [failed_id.as_str(), paid_id.as_str()], "newest first");
    let confirmed = server
        .admin("GET", "/api/v1/orders?status=CONFIRMED", None)
        .await;
    assert_eq!(confirmed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(confirmed.body["items"][0]["id"], paid_id.as_str());
    let first = server.admin("GET", "/api/v1/orders?limit=1", None).await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = server
        .admin(
            "GET",
            &format!("/api/v1/orders?limit=1&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(second.body["items"][0]["id"], paid_id.as_str());
    assert!(second.body["next_cursor"].is_null());
    for bad in ["status=SOLD", "limit=0", "cursor=nonsense", "sort=newest"] {
        let refused = server
            .admin("GET", &format!("/api/v1/orders?{bad}"), None)
            .await;
        assert_problem(&refused, 400, "invalid_request");
    }

    let active = server
        .admin("GET", "/api/v1/inventory/reservations?product_id=2", None)
        .await;
    assert_eq!(active.status, 200, "{}", active.text);
    let items = active.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", active.text);
    assert_eq!(items[0]["status"], "active");
    assert_eq!(items[0]["items"][0]["quantity"], 3);
    let none = server
        .admin("GET", "/api/v1/inventory/reservations?product_id=1", None)
        .await;
    assert!(
        none.body["items"].as_array().unwrap().is_empty(),
        "{}",
        none.text
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_are_served_with_a_strict_policy() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    for path in [
        "/",
        "/products/1",
        "/cart",
        "/checkout",
        "/orders",
        "/sign-in",
        "/admin",
        "/admin/orders",
        "/admin/events",
    ] {
        let page = server.call("GET", path, None, None).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            page.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let policy = page.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(
            policy.contains("script-src 'self'") && !policy.contains("unsafe"),
            "{policy}"
        );
        assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
        assert!(
            !page.text.contains("<script>"),
            "no inline script on {path}"
        );
    }
    for asset in ["/ui/app.css", "/ui/api.js", "/ui/shop.js", "/ui/admin.js"] {
        let answer = server.call("GET", asset, None, None).await;
        assert_eq!(answer.status, 200, "{asset}");
    }
    assert_problem(
        &server.call("GET", "/ui/nope.js", None, None).await,
        404,
        "not_found",
    );
    assert_problem(
        &server.call("GET", "/ui/..%2Fui.rs", None, None).await,
        404,
        "not_found",
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_do_not_hold_up_the_real_servers_shutdown() {
    use crate::binary::{TOKEN, start, wait_ready};
    let dir = tempfile::tempdir().unwrap();
    // A grace period far longer than the wait below: the server must stop
    // because its streams end, not because the grace runs out.
    let mut server = start(
        dir.path(),
        &["--empty", "--shutdown-grace-ms", "600000"],
        &[],
        Some(TOKEN),
    );
    let client = reqwest::Client::new();
    wait_ready(&server, &client).await;
    let mut stream = client
        .get(format!("{}/api/v1/events/stream?after=0", server.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    crate::binary::sigterm(&server);
    // The stream ends...
    let ended = tokio::time::timeout(WAIT, async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream was not ended at shutdown");
    // ...and the server exits cleanly.
    let exit =
        crate::binary::exit_status(&mut server, WAIT, "the server did not stop on SIGTERM").await;
    assert!(exit.success(), "exit status {exit}");
}
