//! Stock and reservations.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use mercato_engine::{
    Error, OrderId, ProductId, Reservation, ReservationLine, ReserveRequest, Reserved, Stock, Uuid,
    Write,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::write::{Rendered, run_write};
use crate::auth::Admin;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::idempotency::IdempotencyContext;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// A product's stock.
#[derive(Serialize, ToSchema)]
pub(crate) struct StockBody {
    product_id: u64,
    on_hand: u64,
    /// The sum of the product's active reservations.
    reserved: u64,
    /// `on_hand - reserved`.
    available: u64,
}

impl From<Stock> for StockBody {
    fn from(stock: Stock) -> StockBody {
        StockBody {
            product_id: stock.product_id.0,
            on_hand: stock.on_hand,
            reserved: stock.reserved,
            available: stock.available(),
        }
    }
}

/// Set `on_hand`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetStock {
    /// At least 0, and not below `reserved`.
    #[schema(maximum = 1_000_000_000_000_u64)]
    on_hand: u64,
}

/// Change `on_hand` by a delta.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdjustStock {
    /// May be negative; the result may not fall below `reserved`.
    delta: i64,
}

/// One reservation line.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LineBody {
    #[schema(minimum = 1)]
    product_id: u64,
    /// At least 1.
    #[schema(minimum = 1, maximum = 1_000_000)]
    quantity: u64,
}

/// Hold stock for an order.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reserve {
    order_id: Uuid,
    /// 1 to 100 lines over distinct products.
    #[schema(min_items = 1, max_items = 100)]
    items: Vec<LineBody>,
    /// Default 900, from 1 to 86400.
    ttl_seconds: Option<u64>,
}

/// Names an order.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrderRef {
    order_id: Uuid,
}

/// A reservation.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReservationBody {
    reservation_id: Uuid,
    order_id: Uuid,
    /// `active`, `committed`, `released` or `expired`.
    status: &'static str,
    items: Vec<LineBody>,
    /// RFC 3339.
    expires_at: String,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    updated_at: String,
}

impl From<Reservation> for ReservationBody {
    fn from(reservation: Reservation) -> ReservationBody {
        ReservationBody {
            reservation_id: reservation.reservation_id.0,
            order_id: reservation.order_id.0,
            status: reservation.status.as_str(),
            items: reservation
                .items
                .into_iter()
                .map(|line| LineBody {
                    product_id: line.product_id.0,
                    quantity: line.quantity,
                })
                .collect(),
            expires_at: reservation.expires_at.to_rfc3339(),
            created_at: reservation.created_at.to_rfc3339(),
            updated_at: reservation.updated_at.to_rfc3339(),
        }
    }
}

/// Which reservations to list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListReservations {
    /// Only the reservations holding this product.
    #[param(minimum = 1)]
    product_id: Option<u64>,
    /// At most this many: default 50, larger values are clamped to 500.
    #[param(minimum = 1)]
    limit: Option<usize>,
}

/// Active reservations.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReservationList {
    /// The soonest to expire first.
    items: Vec<ReservationBody>,
}

/// List active reservations, the soonest to expire first.
///
/// Reads at most 10,000 active reservations in deadline order, so with
/// `product_id` on a very busy store the list may miss some that expire
/// later.
#[utoipa::path(get, path = "/api/v1/inventory/reservations", tag = "inventory",
    params(ListReservations),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Active reservations", body = ReservationList),
        (status = 400, description = "Invalid parameters", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_reservations(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<ListReservations>,
) -> Result<Json<ReservationList>, ApiError> {
    let limit = crate::api::products::page_limit(query.limit)?;
    if query.product_id == Some(0) {
        return Err(ApiError::invalid("product_id", "must be at least 1"));
    }
    let reservations = state
        .engine
        .active_reservations(query.product_id.map(ProductId), limit)?;
    Ok(Json(ReservationList {
        items: reservations
            .into_iter()
            .map(ReservationBody::from)
            .collect(),
    }))
}

/// Read a product's stock.
#[utoipa::path(get, path = "/api/v1/inventory/{product_id}", tag = "inventory",
    params(("product_id" = u64, Path, description = "Product id")),
    responses(
        (status = 200, description = "The stock", body = StockBody),
        (status = 404, description = "Unknown or archived product", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_stock(
    State(state): State<AppState>,
    ApiPath(product_id): ApiPath<u64>,
) -> Result<Json<StockBody>, ApiError> {
    let stock = state
        .engine
        .stock(ProductId(product_id))?
        .ok_or_else(|| ApiError::not_found(format!("product {product_id} not found")))?;
    Ok(Json(stock.into()))
}

/// Set a product's `on_hand`.
#[utoipa::path(put, path = "/api/v1/inventory/{product_id}", tag = "inventory", request_body = SetStock,
    params(("product_id" = u64, Path, description = "Product id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new stock", body = StockBody),
        (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or archived product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Below what is reserved (`invalid_state`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn set_stock(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(product_id): ApiPath<u64>,
    context: Option<Extension<IdempotencyContext>>,
    ApiJson(request): ApiJson<SetStock>,
) -> Response {
    let write = Write::set_stock(ProductId(product_id), request.on_hand);
    run_write(&state, context, write, render_stock).await
}

fn render_stock(outcome: &Result<Stock, Error>) -> Rendered {
    Rendered::outcome(outcome, StatusCode::OK, |stock| StockBody::from(*stock))
}

/// Add a delta to a product's `on_hand`.
#[utoipa::path(post, path = "/api/v1/inventory/{product_id}/adjust", tag = "inventory", request_body = AdjustStock,
    params(("product_id" = u64, Path, description = "Product id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new stock", body = StockBody),
        (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or archived product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Would fall below what is reserved (`invalid_state`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn adjust_stock(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(product_id): ApiPath<u64>,
    context: Option<Extension<IdempotencyContext>>,
    ApiJson(request): ApiJson<AdjustStock>,
) -> Response {
    let write = Write::adjust_stock(ProductId(product_id), request.delta);
    run_write(&state, context, write, render_stock).await
}

/// Reserve stock for an order: all lines or none.
#[utoipa::path(post, path = "/api/v1/inventory/reserve", tag = "inventory", request_body = Reserve,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Reserved", body = ReservationBody),
        (status = 200, description = "A repeat of an earlier request for this order", body = ReservationBody),
        (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or archived product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`insufficient_stock` (with `product_id`, `requested`, `available`) or `conflict`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded`: retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn reserve(
    State(state): State<AppState>,
    _admin: Admin,
    context: Option<Extension<IdempotencyContext>>,
    ApiJson(request): ApiJson<Reserve>,
) -> Response {
    let request = ReserveRequest {
        order_id: OrderId(request.order_id),
        items: request
            .items
            .into_iter()
            .map(|line| ReservationLine {
                product_id: ProductId(line.product_id),
                quantity: line.quantity,
            })
            .collect(),
        ttl: request.ttl_seconds.map(Duration::from_secs),
    };
    let write = Write::reserve(request);
    run_write(&state, context, write, render_reserved).await
}

fn render_reserved(outcome: &Result<Reserved, Error>) -> Rendered {
    let status = match outcome {
        Ok(reserved) if !reserved.created => StatusCode::OK,
        _ => StatusCode::CREATED,
    };
    Rendered::outcome(outcome, status, |reserved| {
        ReservationBody::from(reserved.reservation.clone())
    })
}

fn render_reservation(outcome: &Result<Reservation, Error>) -> Rendered {
    Rendered::outcome(outcome, StatusCode::OK, |reservation| {
        ReservationBody::from(reservation.clone())
    })
}

/// Commit an order's reservation: the stock leaves `on_hand`.
#[utoipa::path(post, path = "/api/v1/inventory/commit", tag = "inventory", request_body = OrderRef,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Committed", body = ReservationBody),
        (status = 404, description = "No reservation for this order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Released or expired (`invalid_state`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn commit(
    State(state): State<AppState>,
    _admin: Admin,
    context: Option<Extension<IdempotencyContext>>,
    ApiJson(request): ApiJson<OrderRef>,
) -> Response {
    let write = Write::commit_reservation(OrderId(request.order_id));
    run_write(&state, context, write, render_reservation).await
}

/// Release an order's reservation: the stock is available again.
#[utoipa::path(post, path = "/api/v1/inventory/release", tag = "inventory", request_body = OrderRef,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Released (or already expired)", body = ReservationBody),
        (status = 404, description = "No reservation for this order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Committed (`invalid_state`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn release(
    State(state): State<AppState>,
    _admin: Admin,
    context: Option<Extension<IdempotencyContext>>,
    ApiJson(request): ApiJson<OrderRef>,
) -> Response {
    let write = Write::release_reservation(OrderId(request.order_id));
    run_write(&state, context, write, render_reservation).await
}

/// Read an order's reservation.
#[utoipa::path(get, path = "/api/v1/inventory/reservations/{order_id}", tag = "inventory",
    params(("order_id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The reservation", body = ReservationBody),
        (status = 404, description = "No reservation for this order", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_reservation(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(order_id): ApiPath<Uuid>,
) -> Result<Json<ReservationBody>, ApiError> {
    let reservation = state
        .engine
        .reservation(OrderId(order_id))?
        .ok_or_else(|| ApiError::not_found(format!("no reservation for order {order_id}")))?;
    Ok(Json(reservation.into()))
}
