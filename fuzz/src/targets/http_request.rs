//! `http_request`: requests built from the input (method, path, query,
//! headers, body) sent through the real router in process, over a fresh
//! engine with a product, stock, a cart and a reservation in it, and with
//! tokens for an admin and two customers. A few requests per run, so that
//! a later one can name what an earlier one made (`PathValue::Previous`).
//!
//! Every answer is below 500 (the one exception: `503
//! search_unavailable` from the search routes, since no search index is
//! attached), and every 4xx is a problem document:
//! `application/problem+json` whose `status` is the answer's.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use http_body_util::BodyExt;
use mercato_engine::{
    Checkout, CheckoutConfig, Engine, GatewayFuture, ManualClock, NewProduct, OrderId, ProductId,
    ReservationLine, ReserveRequest, SimulatedGateway, SimulatedGatewayConfig, Timestamp, UserId,
    WebhookSecret, WebhookSink,
};
use mercato_server::{AppState, Auth, Limits, Metrics, router};
use serde_json::{Map, Value};
use tower::ServiceExt;

use super::support::memory_config;

const ADMIN: &str = "admin-token-for-fuzzing-0123";
const WEBHOOK_SECRET: &str = "whsec_fuzz_secret_0123456789";
const START: Timestamp = Timestamp(1_700_000_000_000);
/// The most requests in one run, and the deepest JSON built.
const REQUESTS_MAX: usize = 4;
const JSON_DEPTH_MAX: usize = 6;
const HEADERS_MAX: usize = 6;
/// The order whose reservation the fixture holds.
const ORDER: u128 = 0x0190_0000_0000_7000_8000_0000_0000_00aa;

const METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT",
];

const FIELDS: [&str; 40] = [
    "id",
    "name",
    "price",
    "on_hand",
    "sku",
    "description",
    "category",
    "brand",
    "attributes",
    "low_stock_threshold",
    "delta",
    "order_id",
    "items",
    "product_id",
    "quantity",
    "ttl_seconds",
    "user_id",
    "cart_id",
    "email",
    "shipping_address",
    "payment_token",
    "token",
    "amount",
    "carrier",
    "tracking_number",
    "expires_in_seconds",
    "type",
    "data",
    "payment_id",
    "status",
    "reason",
    "limit",
    "cursor",
    "q",
    "sort",
    "min_price",
    "max_price",
    "prefix",
    "after",
    "event_id",
];

const QUERY_KEYS: [&str; 16] = [
    "limit",
    "cursor",
    "q",
    "category",
    "brand",
    "min_price",
    "max_price",
    "sort",
    "after",
    "user_id",
    "status",
    "offset",
    "facets",
    "in_stock",
    "prefix",
    "channel",
];

const STRINGS: [&str; 32] = [
    "",
    "1",
    "0",
    "-1",
    "19.99",
    "1.001",
    "1e2",
    "+1.00",
    "-0.00",
    "999999999999999999.99",
    "1000000000000000000",
    "18446744073709551615",
    "18446744073709551616",
    "alice",
    "bob",
    "tok_visa",
    "tok_chargeDeclined",
    "tok_insufficientFunds",
    "tok_delayed",
    "0190000000007000800000000000aa",
    "01900000-0000-7000-8000-0000000000aa",
    "urn:uuid:01900000-0000-7000-8000-0000000000aa",
    "00000000-0000-0000-0000-000000000000",
    "a@example.com",
    "price_asc",
    "price_desc",
    "newest",
    "relevance",
    "\u{0}",
    "\u{7f}\n",
    "é",
    "%00",
];

const PATH_VALUES: [&str; 18] = [
    "1",
    "2",
    "3",
    "0",
    "+1",
    "0001",
    "-1",
    "18446744073709551615",
    "18446744073709551616",
    "01900000-0000-7000-8000-0000000000aa",
    "0190000000007000800000000000aa",
    "urn:uuid:01900000-0000-7000-8000-0000000000aa",
    "00000000-0000-0000-0000-000000000000",
    "alice",
    "bob",
    "%2e%2e",
    "a%00b",
    "..",
];

#[derive(Arbitrary, Debug)]
struct Input {
    requests: Vec<RequestInput>,
}

#[derive(Arbitrary, Debug)]
struct RequestInput {
    method: Choice,
    path: PathInput,
    query: Vec<(Choice, StringInput)>,
    auth: AuthInput,
    content_type: ContentType,
    idempotency_key: Option<StringInput>,
    headers: Vec<(String, String)>,
    body: BodyInput,
}

/// One of a list of known values, or anything.
#[derive(Arbitrary, Debug)]
enum Choice {
    Known(u8),
    Any(String),
}

impl Choice {
    fn pick(&self, known: &[&str]) -> String {
        match self {
            Choice::Known(index) => known[usize::from(*index) % known.len()].to_owned(),
            Choice::Any(text) => text.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum StringInput {
    Known(u8),
    /// An id from the previous answer.
    Previous,
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum PathInput {
    /// A route of the OpenAPI document, its parameters filled in.
    Route {
        route: u8,
        values: Vec<PathValue>,
    },
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum PathValue {
    Known(u8),
    Previous,
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum AuthInput {
    None,
    Admin,
    Alice,
    Bob,
    Expired,
    /// The admin token under another spelling of the scheme.
    Scheme(String),
    Twice,
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum ContentType {
    None,
    Json,
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum BodyInput {
    None,
    Json(Json),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Integer(i64),
    Unsigned(u64),
    Float(f64),
    String(StringInput),
    Array(Vec<Json>),
    Object(Vec<(Choice, Json)>),
}

/// What a run works on.
struct World {
    app: axum::Router,
    engine: Engine,
    checkout: Checkout,
    alice: String,
    bob: String,
    expired: String,
}

/// A webhook sink that drops what the simulated gateway sends: a run is
/// over before a webhook would arrive.
struct NoWebhooks;

impl WebhookSink for NoWebhooks {
    fn deliver(&self, _signature: String, _body: Vec<u8>) -> GatewayFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// The OpenAPI document's paths, once per process.
fn routes() -> &'static [String] {
    static ROUTES: OnceLock<Vec<String>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let document = mercato_server::openapi();
        let mut paths: Vec<String> = document["paths"]
            .as_object()
            .map(|paths| paths.keys().cloned().collect())
            .unwrap_or_default();
        paths.extend(["/docs/".to_owned(), "/docs/index.css".to_owned()]);
        paths
    })
}

async fn world(data_dir: &std::path::Path) -> World {
    let clock = ManualClock::new(START);
    let config = memory_config(data_dir, Arc::new(clock));
    let engine = Engine::open(config).expect("a fresh store opens");
    for (id, archived) in [(1, false), (2, true)] {
        engine
            .create_product(NewProduct {
                id: Some(ProductId(id)),
                name: format!("Product {id}"),
                price: "10.00".parse().expect("a price"),
                category: Some("kitchen".to_owned()),
                on_hand: 100,
                ..NewProduct::default()
            })
            .await
            .expect("a product");
        if archived {
            engine
                .archive_product(ProductId(id))
                .await
                .expect("archived");
        }
    }
    engine
        .reserve(ReserveRequest {
            order_id: OrderId::from_u128(ORDER),
            items: vec![ReservationLine {
                product_id: ProductId(1),
                quantity: 3,
            }],
            ttl: None,
        })
        .await
        .expect("a reservation");
    let cart = engine
        .create_cart(UserId::new("alice").expect("a user id"))
        .await
        .expect("a cart");
    engine
        .set_cart_quantity(cart.id, ProductId(1), 2)
        .await
        .expect("a cart line");
    let mut gateway = SimulatedGatewayConfig::new(WebhookSecret::new(WEBHOOK_SECRET));
    gateway.seed = Some(1);
    let gateway = SimulatedGateway::new(gateway, Arc::new(NoWebhooks)).expect("a gateway");
    let checkout = Checkout::start(engine.clone(), Arc::new(gateway), CheckoutConfig::default())
        .expect("the saga runner starts");
    let auth = Auth::new(ADMIN.into(), b"fuzzing secret".to_vec());
    let day = Duration::from_secs(86_400);
    let alice = auth.mint("alice", START.plus(day));
    let bob = auth.mint("bob", START.plus(day));
    let expired = auth.mint("alice", Timestamp(START.0 - 1));
    let state = AppState::new(
        engine.clone(),
        auth,
        Arc::new(Metrics::new()),
        Limits::default(),
        checkout.clone(),
    );
    World {
        app: router(state),
        engine,
        checkout,
        alice,
        bob,
        expired,
    }
}

/// The body.
pub fn run(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Ok(input) = Input::arbitrary(&mut input) else {
        return;
    };
    if input.requests.is_empty() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    runtime.block_on(async {
        let world = world(dir.path()).await;
        let mut previous: Option<String> = None;
        for request in input.requests.iter().take(REQUESTS_MAX) {
            let Some(request) = build(request, &world, previous.as_deref()) else {
                continue;
            };
            let described = format!("{} {}", request.method(), request.uri());
            let head = request.method() == Method::HEAD;
            let response = world
                .app
                .clone()
                .oneshot(request)
                .await
                .expect("the router is infallible");
            let status = response.status();
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
                .to_owned();
            if status.is_success() && content_type.starts_with("text/event-stream") {
                // A server-sent event stream never ends: its head is the
                // answer (the stream closes when the body is dropped).
                continue;
            }
            let bytes = response
                .into_body()
                .collect()
                .await
                .expect("a body")
                .to_bytes();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            check(&described, status.as_u16(), &content_type, &body, head);
            previous = body
                .get("id")
                .or_else(|| body.get("order_id"))
                .and_then(|id| match id {
                    Value::String(id) => Some(id.clone()),
                    Value::Number(id) => Some(id.to_string()),
                    _ => None,
                })
                .or(previous);
        }
        world.checkout.stop().await;
        world.engine.shutdown();
    });
}

fn check(request: &str, status: u16, content_type: &str, body: &Value, head: bool) {
    let code = body.get("code").and_then(Value::as_str).unwrap_or("");
    if status >= 500 {
        // A HEAD answer has no body to name its code.
        let search =
            request.contains("/search") && status == 503 && (code == "search_unavailable" || head);
        assert!(search, "{request} answered {status}: {body}");
        return;
    }
    if (400..500).contains(&status) {
        assert!(
            content_type.starts_with("application/problem+json"),
            "{request} answered {status} as {content_type:?}: {body}"
        );
        if !head {
            assert_eq!(
                body.get("status").and_then(Value::as_u64),
                Some(u64::from(status)),
                "{request} answered {status} with the problem {body}"
            );
        }
    }
}

fn string(input: &StringInput, previous: Option<&str>) -> String {
    match input {
        StringInput::Known(index) => STRINGS[usize::from(*index) % STRINGS.len()].to_owned(),
        StringInput::Previous => previous.unwrap_or("1").to_owned(),
        StringInput::Any(text) => text.clone(),
    }
}

/// Percent-encodes what a URI cannot hold as it is.
fn escape(text: &str, keep: &[u8]) -> String {
    let mut escaped = String::new();
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || keep.contains(&byte) {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

fn path(input: &PathInput, previous: Option<&str>) -> String {
    let (route, values) = match input {
        PathInput::Any(text) => return text.clone(),
        PathInput::Route { route, values } => {
            let routes = routes();
            (&routes[usize::from(*route) % routes.len()], values)
        }
    };
    let mut path = String::new();
    let mut values = values.iter();
    let mut rest = route.as_str();
    while let Some(open) = rest.find('{') {
        path.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .map_or(rest.len(), |close| open + close + 1);
        let value = match values.next() {
            None | Some(PathValue::Previous) => previous.unwrap_or("1").to_owned(),
            Some(PathValue::Known(index)) => {
                PATH_VALUES[usize::from(*index) % PATH_VALUES.len()].to_owned()
            }
            Some(PathValue::Any(text)) => escape(text, b"-._~%:+"),
        };
        path.push_str(&value);
        rest = &rest[close.min(rest.len())..];
    }
    path.push_str(rest);
    path
}

fn json(input: &Json, previous: Option<&str>, depth: usize) -> Value {
    if depth >= JSON_DEPTH_MAX {
        return Value::Null;
    }
    match input {
        Json::Null => Value::Null,
        Json::Bool(value) => Value::Bool(*value),
        Json::Integer(value) => Value::from(*value),
        Json::Unsigned(value) => Value::from(*value),
        Json::Float(value) => {
            serde_json::Number::from_f64(*value).map_or(Value::Null, Value::Number)
        }
        Json::String(text) => Value::String(string(text, previous)),
        Json::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| json(item, previous, depth + 1))
                .collect(),
        ),
        Json::Object(members) => {
            let mut object = Map::new();
            for (name, value) in members {
                object.insert(name.pick(&FIELDS), json(value, previous, depth + 1));
            }
            Value::Object(object)
        }
    }
}

fn build(input: &RequestInput, world: &World, previous: Option<&str>) -> Option<Request<Body>> {
    let method = Method::from_bytes(input.method.pick(&METHODS).as_bytes()).ok()?;
    let mut uri = path(&input.path, previous);
    if !input.query.is_empty() {
        let pairs: Vec<String> = input
            .query
            .iter()
            .map(|(key, value)| {
                format!(
                    "{}={}",
                    escape(&key.pick(&QUERY_KEYS), b"-._~"),
                    escape(&string(value, previous), b"-._~")
                )
            })
            .collect();
        uri = format!("{uri}?{}", pairs.join("&"));
    }
    let mut builder = Request::builder().method(method).uri(uri);
    let mut headers = axum::http::HeaderMap::new();
    let bearer = |token: &str| format!("Bearer {token}");
    let authorization = match &input.auth {
        AuthInput::None => None,
        AuthInput::Admin => Some(bearer(ADMIN)),
        AuthInput::Alice => Some(bearer(&world.alice)),
        AuthInput::Bob => Some(bearer(&world.bob)),
        AuthInput::Expired => Some(bearer(&world.expired)),
        AuthInput::Scheme(scheme) => Some(format!("{scheme} {ADMIN}")),
        AuthInput::Twice => {
            headers.append(
                header::AUTHORIZATION,
                HeaderValue::from_str(&bearer(ADMIN)).ok()?,
            );
            Some(bearer(&world.alice))
        }
        AuthInput::Any(text) => Some(text.clone()),
    };
    if let Some(authorization) = authorization {
        headers.append(
            header::AUTHORIZATION,
            HeaderValue::from_str(&authorization).ok()?,
        );
    }
    match &input.content_type {
        ContentType::None => {}
        ContentType::Json => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        ContentType::Any(text) => {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(text).ok()?);
        }
    }
    if let Some(key) = &input.idempotency_key {
        headers.insert(
            HeaderName::from_static("idempotency-key"),
            HeaderValue::from_str(&string(key, previous)).ok()?,
        );
    }
    for (name, value) in input.headers.iter().take(HEADERS_MAX) {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).ok()?,
            HeaderValue::from_str(value).ok()?,
        );
    }
    let body = match &input.body {
        BodyInput::None => Body::empty(),
        BodyInput::Json(value) => Body::from(json(value, previous, 0).to_string()),
        BodyInput::Raw(bytes) => Body::from(bytes.clone()),
    };
    for (name, value) in &headers {
        builder = builder.header(name, value);
    }
    builder.body(body).ok()
}
