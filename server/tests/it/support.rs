//! Helpers: a router over a fresh store, and requests against it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use mercato_engine::{
    Checkout, CheckoutConfig, Engine, EngineConfig, GatewayFuture, PaymentGateway, RetryPolicy,
    SimulatedGateway, SimulatedGatewayConfig, WebhookSecret, WebhookSink, WriterObserver,
};
use mercato_server::{AppState, Auth, Limits, Metrics, router};
use serde_json::{Value, json};
use tower::ServiceExt;

pub(crate) const ADMIN: &str = "admin-token-for-tests-0123";
/// The secret the test gateway signs its webhooks with.
pub(crate) const WEBHOOK_SECRET: &str = "whsec_test_secret_0123456789";

pub(crate) struct TestServer {
    pub(crate) app: Router,
    pub(crate) state: AppState,
    /// The simulated gateway behind the saga runner.
    pub(crate) gateway: Arc<SimulatedGateway>,
    webhooks: Arc<InProcessWebhooks>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // The sink holds the router, which holds the gateway: let go.
        self.webhooks.app.lock().unwrap().take();
    }
}

/// Delivers the simulated gateway's webhooks through the router in
/// process, as the server's own sink does over a socket: the signature is
/// checked by the webhook route and the event applied there.
#[derive(Default)]
struct InProcessWebhooks {
    app: Mutex<Option<Router>>,
}

impl WebhookSink for InProcessWebhooks {
    fn deliver(
        &self,
        signature_header: String,
        body: Vec<u8>,
    ) -> GatewayFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let app = self.app.lock().unwrap().clone();
            let app = app.ok_or_else(|| "the server is gone".to_owned())?;
            let request = Request::builder()
                .method("POST")
                .uri("/api/v1/payments/webhook")
                .header("mercato-signature", signature_header)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap();
            let response = app.oneshot(request).await.unwrap();
            if response.status().is_success() {
                Ok(())
            } else {
                Err(format!("the webhook route answered {}", response.status()))
            }
        })
    }
}

/// The simulated gateway's configuration in tests: fast webhooks.
pub(crate) fn gateway_config() -> SimulatedGatewayConfig {
    let mut config = SimulatedGatewayConfig::new(WebhookSecret::new(WEBHOOK_SECRET));
    config.webhook_delay = Duration::from_millis(50);
    config.webhook_retry.backoff_base = Duration::from_millis(10);
    config
}

/// The saga runner's configuration in tests: short timeouts and backoff.
pub(crate) fn checkout_config() -> CheckoutConfig {
    let mut config = CheckoutConfig::default();
    config.retry = RetryPolicy {
        attempts_max: 4,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        attempt_timeout: Duration::from_secs(2),
    };
    config
}

/// A router over `engine` with the saga runner started over a simulated
/// gateway whose webhooks come back through the router.
pub(crate) fn server_over(
    engine: Engine,
    metrics: Arc<Metrics>,
    limits: Limits,
    gateway_config: SimulatedGatewayConfig,
) -> TestServer {
    let webhooks = Arc::new(InProcessWebhooks::default());
    let gateway = Arc::new(SimulatedGateway::new(gateway_config, webhooks.clone()).unwrap());
    let as_gateway: Arc<dyn PaymentGateway> = gateway.clone();
    let checkout = Checkout::start(engine.clone(), as_gateway, checkout_config()).unwrap();
    let auth = Auth::new(ADMIN.into(), b"test secret".to_vec());
    let state = AppState::new(engine, auth, metrics, limits, checkout);
    let app = router(state.clone());
    *webhooks.app.lock().unwrap() = Some(app.clone());
    TestServer {
        app,
        state,
        gateway,
        webhooks,
    }
}

pub(crate) fn engine_config(dir: &Path, observer: Option<Arc<dyn WriterObserver>>) -> EngineConfig {
    let mut config = EngineConfig::new(dir);
    config.observer = observer;
    config
}

pub(crate) fn server_with(config: EngineConfig, limits: Limits) -> TestServer {
    let engine = Engine::open(config).unwrap();
    server_over(engine, Arc::new(Metrics::new()), limits, gateway_config())
}

pub(crate) fn server(dir: &Path) -> TestServer {
    server_with_gateway(dir, |_| {})
}

/// [`server`] with the simulated gateway configured by `configure`.
pub(crate) fn server_with_gateway(
    dir: &Path,
    configure: impl FnOnce(&mut SimulatedGatewayConfig),
) -> TestServer {
    let metrics = Arc::new(Metrics::new());
    let mut config = engine_config(dir, Some(metrics.clone()));
    config.queue_max = 1_024;
    config.batch_max = 1_024;
    let engine = Engine::open(config).unwrap();
    let mut gateway = gateway_config();
    configure(&mut gateway);
    server_over(engine, metrics, Limits::default(), gateway)
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) body: Value,
    pub(crate) text: String,
}

impl TestServer {
    pub(crate) async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let streaming = headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
        if streaming {
            // A stream does not end by itself: answer its head only
            // (dropping the body closes it). See streams.rs for its events.
            return Answer {
                status,
                headers,
                body: Value::Null,
                text: String::new(),
            };
        }
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        self.send(request(method, uri, token, body, &[])).await
    }

    pub(crate) async fn admin(&self, method: &str, uri: &str, body: Option<Value>) -> Answer {
        self.call(method, uri, Some(ADMIN), body).await
    }

    /// Stops the saga runner, then the engine, so the store can be reopened.
    pub(crate) async fn shutdown(&self) {
        self.state.checkout.stop().await;
        self.state.engine.shutdown();
    }

    /// A product with `price` and `on_hand` units.
    pub(crate) async fn product(&self, id: u64, price: &str, on_hand: u64) {
        let created = self
            .admin(
                "POST",
                "/api/v1/products",
                Some(json!({"id": id, "name": format!("Thing {id}"), "price": price})),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        let stock = self
            .admin(
                "PUT",
                &format!("/api/v1/inventory/{id}"),
                Some(json!({"on_hand": on_hand})),
            )
            .await;
        assert_eq!(stock.status, 200, "{}", stock.text);
    }

    /// A customer token for `user_id`.
    pub(crate) async fn customer(&self, user_id: &str) -> String {
        let minted = self
            .admin(
                "POST",
                "/api/v1/auth/tokens",
                Some(json!({"user_id": user_id})),
            )
            .await;
        assert_eq!(minted.status, 201, "{}", minted.text);
        minted.body["token"].as_str().unwrap().to_owned()
    }

    /// Places an order of `quantity` of `product_id` for `user_id` paid
    /// with `token`, as `caller`; asserts 201.
    pub(crate) async fn order(
        &self,
        caller: &str,
        user_id: &str,
        product_id: u64,
        quantity: u64,
        token: &str,
    ) -> Value {
        let placed = self
            .call(
                "POST",
                "/api/v1/orders",
                Some(caller),
                Some(order_body(user_id, product_id, quantity, token)),
            )
            .await;
        assert_eq!(placed.status, 201, "{}", placed.text);
        placed.body
    }

    /// The stock of a product.
    pub(crate) async fn stock(&self, product_id: u64) -> Value {
        let stock = self
            .call(
                "GET",
                &format!("/api/v1/inventory/{product_id}"),
                None,
                None,
            )
            .await;
        assert_eq!(stock.status, 200, "{}", stock.text);
        stock.body
    }

    /// Polls the order until `done` holds, for at most 30 seconds: tests
    /// wait for outcomes, never for a length of time.
    pub(crate) async fn until_order(&self, order_id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let order = self
                .admin("GET", &format!("/api/v1/orders/{order_id}"), None)
                .await;
            assert_eq!(order.status, 200, "{}", order.text);
            if done(&order.body) {
                return order.body;
            }
            assert!(Instant::now() < deadline, "order stuck: {}", order.text);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Polls until the order has left `AWAITING_PAYMENT`.
    pub(crate) async fn settled(&self, order_id: &str) -> Value {
        self.until_order(order_id, |order| order["status"] != "AWAITING_PAYMENT")
            .await
    }
}

/// The body of an order of one line.
pub(crate) fn order_body(user_id: &str, product_id: u64, quantity: u64, token: &str) -> Value {
    json!({
        "user_id": user_id,
        "items": [{"product_id": product_id, "quantity": quantity}],
        "payment": {"method": "card", "token": token},
    })
}

pub(crate) fn request(
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

/// Asserts a problem document with `status` and `code`.
pub(crate) fn assert_problem(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.text);
    assert_eq!(answer.body["code"], code, "{}", answer.text);
    assert_eq!(answer.body["status"], status);
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "application/problem+json",
        "{}",
        answer.text
    );
    assert!(answer.body["title"].is_string() && answer.body["detail"].is_string());
}
