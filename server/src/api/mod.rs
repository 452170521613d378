//! The v1 HTTP contract: the router and its OpenAPI document, both built
//! from the same handler list so the document cannot drift from the code.

pub(crate) mod carts;
pub(crate) mod cursor;
mod document;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod inventory;
pub(crate) mod notifications;
pub(crate) mod orders;
pub(crate) mod payments;
pub(crate) mod products;
pub(crate) mod replication;
pub(crate) mod search;
pub(crate) mod streams;
pub(crate) mod tokens;
pub(crate) mod write;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderName, HeaderValue};
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnRequest, DefaultOnResponse};
use tracing::Level;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::problem::ApiError;
use crate::state::AppState;
use crate::{idempotency, metrics, rate_limit};

/// A money amount as the API writes it: with the store's decimal places
/// (`"0.00"`, not `"0"`), as product prices are.
pub(crate) fn money(amount: mercato_engine::Decimal) -> mercato_engine::Decimal {
    let mut amount = amount;
    if amount.scale() < mercato_engine::PRODUCT_PRICE_SCALE_MAX {
        amount.rescale(mercato_engine::PRODUCT_PRICE_SCALE_MAX);
    }
    amount
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request ids for requests that bring none: a random prefix per process
/// and a counter, so making one costs no system call (a UUID v4 per request
/// would ask the kernel for randomness every time).
#[derive(Clone)]
struct SequentialRequestId {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl SequentialRequestId {
    fn new() -> SequentialRequestId {
        SequentialRequestId {
            prefix: format!("{:08x}", rand::random::<u32>()).into(),
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for SequentialRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n:012x}", self.prefix);
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Mercato",
        description = "The Mercato commerce engine's HTTP API, v1. Errors are RFC 9457 problem \
            details (`application/problem+json`) with a stable `code`. Every write (POST, PUT, \
            PATCH, DELETE) under /api/v1 accepts an `Idempotency-Key` header. Lists are paged with `limit` and `cursor`.",
    ),
    modifiers(&BearerAuth, &DocsPage),
    tags(
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "auth", description = "Customer tokens"),
        (name = "products", description = "The catalog"),
        (name = "inventory", description = "Stock and reservations"),
        (name = "events", description = "The event log"),
        (name = "carts", description = "Carts, priced at current prices"),
        (name = "orders", description = "Orders and their saga"),
        (name = "payments", description = "Payments, refunds and the gateway's webhook"),
        (name = "notifications", description = "What customers are told, and its delivery"),
        (name = "search", description = "Full-text search, facets and completions"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// `/docs` is served by Swagger UI rather than a handler; describe it here.
struct DocsPage;

impl Modify for DocsPage {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let page = ResponseBuilder::new()
            .description("The API reference, rendered from /api/v1/openapi.json with nothing fetched from outside")
            .content("text/html", ContentBuilder::new().build())
            .build();
        let operation = OperationBuilder::new()
            .tag("operations")
            .summary(Some("Human-readable API reference"))
            .response("200", page)
            .build();
        openapi.paths.paths.insert(
            "/docs".to_owned(),
            PathItem::new(HttpMethod::Get, operation),
        );
    }
}

/// The answers any operation may give whatever its handler does, added to
/// every operation that does not document them itself, so that the
/// document lists every status the server can send: `400` for a malformed
/// parameter or body, `401` (and `403`) where a token is needed, `408`,
/// `413`, `414`, `415`, `431` from the request guards, `429` when rate
/// limiting is on, `503` when the writer is overloaded or the store
/// unavailable.
struct StandardResponses;

impl Modify for StandardResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, Response};
        let problem = |description: &str| -> RefOr<Response> {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        crate::problem::PROBLEM_CONTENT_TYPE,
                        ContentBuilder::new()
                            .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                            .build(),
                    )
                    .build(),
            )
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let api = path.starts_with("/api/v1/");
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let has_body = operation.request_body.is_some();
                let has_parameters = operation
                    .parameters
                    .as_ref()
                    .is_some_and(|parameters| !parameters.is_empty());
                let secured = operation
                    .security
                    .as_ref()
                    .is_some_and(|security| !security.is_empty());
                let mut add = |status: &str, description: &str| {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem(description));
                };
                if has_body || has_parameters || api {
                    add(
                        "400",
                        "`invalid_request`: a malformed parameter, header or body; `detail` names the field",
                    );
                }
                if secured {
                    add("401", "`unauthorized`: no valid token");
                    add("403", "`forbidden`: a customer token on an admin operation");
                }
                if has_body {
                    add(
                        "413",
                        "`payload_too_large`: the body is over the configured limit",
                    );
                    add(
                        "415",
                        "`unsupported_media_type`: the body is not `application/json`",
                    );
                }
                add(
                    "408",
                    "`request_timeout`: the request took longer than the configured deadline",
                );
                add("414", "`uri_too_long`: the request target is over 8 KiB");
                add(
                    "431",
                    "`headers_too_large`: too many headers, or too many bytes of them",
                );
                add(
                    "429",
                    "`rate_limited`: too many requests from this client (when rate limiting is on)",
                );
                if api {
                    add(
                        "503",
                        "`overloaded`, `shutting_down` or `storage_unavailable`; `Retry-After` says when to try again",
                    );
                }
            }
        }
    }
}

/// The OpenAPI document of every route, as an engine with the default
/// configuration serves it at `/api/v1/openapi.json`.
pub fn openapi() -> serde_json::Value {
    // The path is not part of the document; the defaults are.
    let defaults = mercato_engine::EngineConfig::new(std::path::PathBuf::new());
    document::exact(&routes_and_openapi().1, &defaults)
}

fn routes_and_openapi() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(tokens::create_token))
        .routes(routes!(products::create_product, products::list_products))
        .routes(routes!(
            products::get_product,
            products::update_product,
            products::archive_product
        ))
        .routes(routes!(inventory::get_stock, inventory::set_stock))
        .routes(routes!(inventory::adjust_stock))
        .routes(routes!(inventory::reserve))
        .routes(routes!(inventory::commit))
        .routes(routes!(inventory::release))
        .routes(routes!(inventory::get_reservation))
        .routes(routes!(events::list_events))
        .routes(routes!(streams::stream_events))
        .routes(routes!(streams::stream_order))
        .routes(routes!(streams::stream_stock))
        .routes(routes!(inventory::list_reservations))
        .routes(routes!(tokens::demo_sign_in))
        .routes(routes!(carts::create_cart))
        .routes(routes!(carts::get_cart))
        .routes(routes!(carts::set_quantity, carts::remove_line))
        .routes(routes!(orders::place_order, orders::list_orders))
        .routes(routes!(orders::get_order))
        .routes(routes!(orders::get_saga))
        .routes(routes!(orders::list_user_orders))
        .routes(routes!(orders::cancel_order))
        .routes(routes!(orders::ship_order))
        .routes(routes!(orders::deliver_order))
        .routes(routes!(payments::get_payment))
        .routes(routes!(payments::process_payment))
        .routes(routes!(payments::refund_payment))
        .routes(routes!(payments::webhook))
        .routes(routes!(notifications::list_notifications))
        .routes(routes!(notifications::get_notification))
        .routes(routes!(notifications::retry_notification))
        .routes(routes!(search::search))
        .routes(routes!(search::suggest))
        .routes(routes!(replication::replication_status))
        .routes(routes!(replication::promote))
        .split_for_parts();
    // Once every route is in: the answers every operation may give.
    let mut openapi = openapi;
    StandardResponses.modify(&mut openapi);
    (router, openapi)
}

/// The whole HTTP API over `state`, ready to serve or to mount in another
/// axum application.
pub fn router(state: AppState) -> Router {
    let (routes, openapi) = routes_and_openapi();
    let document = document::exact(&openapi, state.engine.config());
    let body_bytes_max = state.limits.body_bytes_max;
    routes
        .merge(crate::ui::routes())
        .merge(SwaggerUi::new("/docs").external_url_unchecked("/api/v1/openapi.json", document))
        .fallback(|| async { ApiError::not_found("no such route").into_response() })
        .method_not_allowed_fallback(|| async {
            ApiError::new("method_not_allowed", "this route does not take that method").into_response()
        })
        .layer(from_fn_with_state(state.clone(), idempotency::idempotency))
        .layer(from_fn_with_state(state.clone(), crate::replication::positions))
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .layer(from_fn_with_state(state.clone(), rate_limit::limit))
        .layer(from_fn_with_state(state.clone(), crate::listener::request_deadline))
        .layer(DefaultBodyLimit::max(body_bytes_max))
        .layer(axum::middleware::from_fn(crate::guard::guard))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, SequentialRequestId::new()))
                .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
                    let request_id = request
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id)
                })
                .on_request(DefaultOnRequest::new().level(Level::DEBUG))
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                // A 5xx answer is not an error of the server as such (a
                // 503 while the index opens, or overloaded): the response
                // line says it; internal errors are logged at ERROR where
                // they happen (`ApiError::internal`).
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(CatchPanicLayer::custom(|_| {
                    ApiError::internal("a handler panicked").into_response()
                })),
        )
        .with_state(state)
}
