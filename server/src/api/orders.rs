//! Orders: place, read, list a user's, read the saga log, cancel, ship,
//! deliver.
//!
//! Placing an order answers once its stock is reserved (or refused); the
//! payment runs afterwards in the saga runner, so clients poll the order
//! for `CONFIRMED` or `PAYMENT_FAILED`. A customer acts only on their own
//! orders: another user's order answers 404, as an unknown one does, so
//! that its existence is never revealed.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use mercato_engine::{
    CartId, Decimal, Error, NewOrder, Order, OrderId, OrderStatus, ProductId, ReservationLine,
    SagaEntry, UserId, Uuid, Write,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::cursor;
use crate::api::money;
use crate::api::products::page_limit;
use crate::api::write::{Rendered, run_write};
use crate::auth::{Admin, Caller, Principal};
use crate::extract::{ApiJson, ApiJsonOrEmpty, ApiPath, ApiQuery};
use crate::idempotency::IdempotencyContext;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// An order.
#[derive(Serialize, ToSchema)]
pub(crate) struct OrderBody {
    id: Uuid,
    user_id: String,
    /// `PENDING`, `AWAITING_PAYMENT`, `CONFIRMED`, `SHIPPED`, `DELIVERED`,
    /// `CANCELLED` or `PAYMENT_FAILED`.
    #[schema(example = "AWAITING_PAYMENT")]
    status: &'static str,
    /// The lines, at the prices locked when the order was placed.
    items: Vec<OrderLineBody>,
    /// Decimal string: the sum of the lines.
    #[schema(value_type = String, example = "39.98")]
    total_amount: Decimal,
    /// ISO 4217.
    currency: String,
    /// Why it was cancelled or failed: `insufficient_stock`,
    /// `reservation_expired`, `card_declined`, `insufficient_funds`, ...
    failure_reason: Option<String>,
    /// Its payment; `null` when stock was never reserved.
    payment_id: Option<Uuid>,
    email: Option<String>,
    shipping_address: Option<String>,
    /// The cart it was ordered from, if any.
    cart_id: Option<Uuid>,
    /// Set when shipped.
    carrier: Option<String>,
    /// Set when shipped.
    tracking_number: Option<String>,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    updated_at: String,
}

/// One line of an order.
#[derive(Serialize, ToSchema)]
pub(crate) struct OrderLineBody {
    product_id: u64,
    quantity: u64,
    /// Decimal string: the product's price when the order was placed.
    #[schema(value_type = String, example = "19.99")]
    unit_price: Decimal,
}

impl From<&Order> for OrderBody {
    fn from(order: &Order) -> OrderBody {
        OrderBody {
            id: order.id.0,
            user_id: order.user_id.clone(),
            status: order.status.as_str(),
            items: order
                .items
                .iter()
                .map(|line| OrderLineBody {
                    product_id: line.product_id.0,
                    quantity: line.quantity,
                    unit_price: money(line.unit_price),
                })
                .collect(),
            total_amount: money(order.total_amount),
            currency: order.currency.clone(),
            failure_reason: order.failure_reason.clone(),
            payment_id: order.payment_id.map(|id| id.0),
            email: order.email.clone(),
            shipping_address: order.shipping_address.clone(),
            cart_id: order.cart_id.map(|id| id.0),
            carrier: order.carrier.clone(),
            tracking_number: order.tracking_number.clone(),
            created_at: order.created_at.to_rfc3339(),
            updated_at: order.updated_at.to_rfc3339(),
        }
    }
}

/// An order to place.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlaceOrder {
    /// Whose order it is (1 to 255 characters); a customer token may only
    /// name its own user.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    user_id: String,
    /// What to order: 1 to 100 lines over distinct products, quantity at
    /// least 1. Exactly one of `items` and `cart_id`.
    #[schema(min_items = 1, max_items = 100)]
    items: Option<Vec<OrderItem>>,
    /// Order the lines of this cart (the user's own, not empty) at current
    /// prices instead; the cart is emptied once the order is confirmed.
    /// Exactly one of `items` and `cart_id`.
    cart_id: Option<Uuid>,
    /// How it is paid.
    payment: PaymentMethodBody,
    /// Where confirmations go (at most 1024 bytes).
    email: Option<String>,
    /// Where to ship (at most 1024 bytes).
    shipping_address: Option<String>,
}

/// One line to order.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrderItem {
    #[schema(minimum = 1)]
    product_id: u64,
    /// At least 1.
    #[schema(minimum = 1, maximum = 1_000_000)]
    quantity: u64,
}

/// The payment method.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PaymentMethodBody {
    method: PaymentMethod,
    /// The gateway's token for the card (1 to 255 bytes). The simulated
    /// gateway takes `tok_visa`, `tok_chargeDeclined`,
    /// `tok_insufficientFunds` and `tok_delayed`. (The schema's 63
    /// characters are the most that always fit in 255 bytes.)
    #[schema(example = "tok_visa", min_length = 1, max_length = 63)]
    token: String,
}

/// How an order is paid.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PaymentMethod {
    /// A card, by the gateway's token.
    Card,
}

/// Shipping details; both optional.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShipOrder {
    /// At most 1024 bytes.
    carrier: Option<String>,
    /// At most 1024 bytes.
    tracking_number: Option<String>,
}

/// An order's saga log.
#[derive(Serialize, ToSchema)]
pub(crate) struct SagaLog {
    /// The steps in the order they were written.
    items: Vec<SagaEntryBody>,
}

/// One entry of a saga log.
#[derive(Serialize, ToSchema)]
pub(crate) struct SagaEntryBody {
    /// `RESERVE_INVENTORY`, `PROCESS_PAYMENT`, `COMMIT_INVENTORY`,
    /// `RELEASE_INVENTORY`, `VOID_PAYMENT`, `REFUND_PAYMENT`, ...
    #[schema(example = "RESERVE_INVENTORY")]
    step_name: String,
    /// True for a compensation (a step that undoes an earlier one).
    is_compensating: bool,
    /// `STARTED`, `COMPLETED` or `FAILED`.
    #[schema(example = "COMPLETED")]
    status: &'static str,
    /// What happened: ids, amounts, reasons.
    details: String,
    /// RFC 3339.
    created_at: String,
}

impl From<SagaEntry> for SagaEntryBody {
    fn from(entry: SagaEntry) -> SagaEntryBody {
        SagaEntryBody {
            step_name: entry.step_name,
            is_compensating: entry.is_compensating,
            status: entry.status.as_str(),
            details: entry.details,
            created_at: entry.created_at.to_rfc3339(),
        }
    }
}

/// A page of orders, newest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct OrderPage {
    items: Vec<OrderBody>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    next_cursor: Option<String>,
}

/// Listing parameters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListOrders {
    /// Page size: default 50, larger values are clamped to 500.
    #[param(minimum = 1)]
    limit: Option<usize>,
    /// From a previous page's `next_cursor`.
    #[param(pattern = r"^o[0-9a-f]{32}$")]
    cursor: Option<String>,
}

/// The order `order_id` if `caller` may see it; 404 otherwise, whether it
/// is unknown or another user's.
pub(crate) fn visible_order(
    state: &AppState,
    caller: &Principal,
    order_id: OrderId,
) -> Result<Order, ApiError> {
    state
        .engine
        .order(order_id)?
        .filter(|order| caller.may_act_for(&order.user_id))
        .ok_or_else(|| ApiError::not_found(format!("order {order_id} not found")))
}

fn render_order(outcome: &Result<Order, Error>, status: StatusCode) -> Rendered {
    Rendered::outcome(outcome, status, |order| OrderBody::from(order))
}

/// Place an order.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = PlaceOrder,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Placed: `AWAITING_PAYMENT` with its stock reserved (the payment follows asynchronously), or `CANCELLED` with `failure_reason` `insufficient_stock` and nothing reserved", body = OrderBody),
        (status = 400, description = "Invalid request; `detail` and `field` name the field. Exactly one of `items` and `cart_id` is given; an empty cart is refused", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A customer token ordering for another `user_id`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "An unknown or archived product, or a cart that is unknown or not the user's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`conflict`: the `Idempotency-Key` was used with another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded`: retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn place_order(
    State(state): State<AppState>,
    Caller(caller): Caller,
    context: Option<Extension<IdempotencyContext>>,
    ApiJson(request): ApiJson<PlaceOrder>,
) -> Result<Response, ApiError> {
    UserId::new(request.user_id.as_str())?;
    if !caller.may_act_for(&request.user_id) {
        return Err(ApiError::new(
            "forbidden",
            "a customer token may place orders only for its own user_id",
        ));
    }
    let items = match (request.items, request.cart_id) {
        (Some(items), None) => items,
        (None, Some(_)) => Vec::new(),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "cart_id",
                "give items or cart_id, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "items",
                "required (or cart_id): the lines to order, [{\"product_id\", \"quantity\"}]",
            ));
        }
    };
    let PaymentMethodBody {
        method: PaymentMethod::Card,
        token,
    } = request.payment;
    let lines = items
        .into_iter()
        .map(|item| ReservationLine {
            product_id: ProductId(item.product_id),
            quantity: item.quantity,
        })
        .collect();
    let mut order = NewOrder::new(request.user_id, lines, token);
    order.email = request.email;
    order.shipping_address = request.shipping_address;
    order.cart_id = request.cart_id.map(CartId);
    let write = Write::place_order(order);
    Ok(run_write(&state, context, write, |outcome| {
        render_order(outcome, StatusCode::CREATED)
    })
    .await)
}

/// Read an order.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The order", body = OrderBody),
        (status = 400, description = "Not an order id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown, or another user's", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_order(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<OrderBody>, ApiError> {
    let order = visible_order(&state, &caller, OrderId(id))?;
    Ok(Json(OrderBody::from(&order)))
}

/// Read an order's saga log.
#[utoipa::path(get, path = "/api/v1/orders/{id}/saga", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The saga log, in the order it was written", body = SagaLog),
        (status = 400, description = "Not an order id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown, or another user's", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_saga(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<SagaLog>, ApiError> {
    let order = visible_order(&state, &caller, OrderId(id))?;
    let entries = state.engine.saga(order.id)?;
    Ok(Json(SagaLog {
        items: entries.into_iter().map(SagaEntryBody::from).collect(),
    }))
}

/// List a user's orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders/user/{user_id}", tag = "orders",
    params(("user_id" = String, Path, description = "User id"), ListOrders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the user's orders, newest first", body = OrderPage),
        (status = 400, description = "Invalid parameters", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A customer token asking for another user's orders (never revealed)", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_user_orders(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(user_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListOrders>,
) -> Result<Json<OrderPage>, ApiError> {
    UserId::new(user_id.as_str())?;
    if !caller.may_act_for(&user_id) {
        // Like another user's order: not found, never forbidden, so that a
        // customer cannot learn which users exist.
        return Err(ApiError::not_found(format!(
            "no orders of user {user_id} for this token"
        )));
    }
    let limit = page_limit(query.limit)?;
    let before = before(query.cursor.as_deref())?;
    Ok(Json(OrderPage::from(
        state.engine.orders_of_user(&user_id, before, limit)?,
    )))
}

/// The order a page starts before, from a previous page's cursor.
fn before(cursor: Option<&str>) -> Result<Option<OrderId>, ApiError> {
    Ok(cursor
        .map(|cursor| cursor::ORDERS.decode(cursor))
        .transpose()?
        .map(OrderId::from_u128))
}

impl From<mercato_engine::OrderPage> for OrderPage {
    fn from(page: mercato_engine::OrderPage) -> OrderPage {
        OrderPage {
            items: page.items.iter().map(OrderBody::from).collect(),
            next_cursor: page
                .next_before
                .map(|before| cursor::ORDERS.encode(before.as_u128())),
        }
    }
}

/// Listing parameters of every order.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListAllOrders {
    /// Only orders in this status (`PENDING`, `AWAITING_PAYMENT`,
    /// `CONFIRMED`, `SHIPPED`, `DELIVERED`, `CANCELLED`, `PAYMENT_FAILED`).
    status: Option<String>,
    /// Page size: default 50, larger values are clamped to 500.
    #[param(minimum = 1)]
    limit: Option<usize>,
    /// From a previous page's `next_cursor`.
    #[param(pattern = r"^o[0-9a-f]{32}$")]
    cursor: Option<String>,
}

/// List every order, newest first (the operator's view).
///
/// With `status`, a page reads at most 10,000 orders: it may hold fewer
/// than `limit` and still have a `next_cursor`.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(ListAllOrders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of orders, newest first", body = OrderPage),
        (status = 400, description = "Invalid parameters", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_orders(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<ListAllOrders>,
) -> Result<Json<OrderPage>, ApiError> {
    let status = query
        .status
        .as_deref()
        .map(|wanted| {
            OrderStatus::ALL
                .into_iter()
                .find(|status| status.as_str() == wanted)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "status",
                        "one of PENDING, AWAITING_PAYMENT, CONFIRMED, SHIPPED, DELIVERED, CANCELLED, PAYMENT_FAILED",
                    )
                })
        })
        .transpose()?;
    let limit = page_limit(query.limit)?;
    let before = before(query.cursor.as_deref())?;
    Ok(Json(OrderPage::from(
        state.engine.orders(before, status, limit)?,
    )))
}

/// Cancel an order.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`CANCELLED` (also when it already was). From `PENDING` or `AWAITING_PAYMENT` the reservation is released and a pending payment voided; from `CONFIRMED` the payment is refunded and the quantities go back to `on_hand`", body = OrderBody),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown, or another user's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_state`: shipped, delivered or failed; `state` holds the order's status", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn cancel_order(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
    context: Option<Extension<IdempotencyContext>>,
) -> Result<Response, ApiError> {
    let order_id = OrderId(id);
    if !matches!(caller, Principal::Admin) {
        // A customer learns nothing about orders that are not theirs.
        visible_order(&state, &caller, order_id)?;
    }
    let write = Write::cancel_order(order_id);
    Ok(run_write(&state, context, write, |outcome| {
        render_order(outcome, StatusCode::OK)
    })
    .await)
}

/// Ship a confirmed order.
#[utoipa::path(post, path = "/api/v1/orders/{id}/ship", tag = "orders", request_body(content = ShipOrder, description = "Optional"),
    params(("id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`SHIPPED`", body = OrderBody),
        (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_state`: not `CONFIRMED`; `state` holds the order's status", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn ship_order(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<Uuid>,
    context: Option<Extension<IdempotencyContext>>,
    ApiJsonOrEmpty(request): ApiJsonOrEmpty<ShipOrder>,
) -> Response {
    let write = Write::ship_order(OrderId(id), request.carrier, request.tracking_number);
    run_write(&state, context, write, |outcome| {
        render_order(outcome, StatusCode::OK)
    })
    .await
}

/// Mark a shipped order delivered.
#[utoipa::path(post, path = "/api/v1/orders/{id}/deliver", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`DELIVERED`", body = OrderBody),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_state`: not `SHIPPED`; `state` holds the order's status", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn deliver_order(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<Uuid>,
    context: Option<Extension<IdempotencyContext>>,
) -> Response {
    let write = Write::deliver_order(OrderId(id));
    run_write(&state, context, write, |outcome| {
        render_order(outcome, StatusCode::OK)
    })
    .await
}
