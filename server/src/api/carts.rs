//! Carts: a customer's own, or any user's for the admin.
//!
//! A customer never learns that another user's cart exists: it is `404`,
//! exactly as an unknown id. The check reads the cart before a write; a
//! cart's owner never changes, so the check cannot go stale before the
//! write (and a cart removed in between is `404` from the write itself).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use mercato_engine::{Cart, CartId, Decimal, Error, ProductId, UserId, Uuid, Write};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::write::{Rendered, run_write};
use crate::auth::{Caller, Principal};
use crate::extract::{ApiJson, ApiJsonOrEmpty, ApiPath};
use crate::idempotency::IdempotencyContext;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// A cart, priced at the catalog's current prices.
#[derive(Serialize, ToSchema)]
pub(crate) struct CartBody {
    id: Uuid,
    user_id: String,
    /// Lines in the order they were added. Lines of products archived since
    /// are left out (and dropped at the cart's next change).
    items: Vec<CartLineBody>,
    /// The sum of the lines' totals: a decimal string in `currency`.
    #[schema(value_type = String, example = "39.98")]
    subtotal: Decimal,
    /// ISO 4217.
    currency: String,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339. The cart is removed after 30 days (by default) without a change.
    updated_at: String,
}

/// One line of a cart.
#[derive(Serialize, ToSchema)]
pub(crate) struct CartLineBody {
    product_id: u64,
    /// 1 to 1000000.
    quantity: u64,
    /// The product's current price: a decimal string.
    #[schema(value_type = String, example = "19.99")]
    unit_price: Decimal,
    /// `unit_price * quantity`: a decimal string.
    #[schema(value_type = String, example = "39.98")]
    line_total: Decimal,
}

fn cart_body(cart: &Cart) -> CartBody {
    CartBody {
        id: cart.id.0,
        user_id: cart.user_id.to_string(),
        items: cart
            .items
            .iter()
            .map(|line| CartLineBody {
                product_id: line.product_id.0,
                quantity: line.quantity,
                unit_price: line.unit_price,
                line_total: line.line_total,
            })
            .collect(),
        subtotal: cart.subtotal,
        currency: cart.currency.clone(),
        created_at: cart.created_at.to_rfc3339(),
        updated_at: cart.updated_at.to_rfc3339(),
    }
}

/// Whose cart to create. The body may be left out.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateCart {
    /// Required with the admin token. A customer may leave it out or name
    /// their own user (another user is `403`).
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    user_id: Option<String>,
}

/// A line's new quantity.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetQuantity {
    /// 0 removes the line; at most 1000000.
    #[schema(maximum = 1_000_000)]
    quantity: u64,
}

fn render_cart(outcome: &Result<Cart, Error>) -> Rendered {
    Rendered::outcome(outcome, StatusCode::OK, cart_body)
}

fn render_created(outcome: &Result<Cart, Error>) -> Rendered {
    Rendered::outcome(outcome, StatusCode::CREATED, cart_body)
}

fn not_found(cart_id: CartId) -> ApiError {
    // The engine's words for an unknown cart, so the two cases read alike.
    ApiError::from(Error::CartNotFound(cart_id))
}

/// The cart, if `caller` may see it: the admin any, a customer their own.
fn visible_cart(state: &AppState, caller: &Principal, cart_id: CartId) -> Result<Cart, ApiError> {
    let cart = state
        .engine
        .cart(cart_id)?
        .ok_or_else(|| not_found(cart_id))?;
    match caller {
        Principal::Customer { user_id } if cart.user_id.as_str() != user_id => {
            Err(not_found(cart_id))
        }
        _ => Ok(cart),
    }
}

/// Refuses a customer's write to a cart that is not theirs (as `404`). The
/// admin's writes go straight to the engine, which answers `404` for an
/// unknown cart.
fn check_writable(state: &AppState, caller: &Principal, cart_id: CartId) -> Result<(), ApiError> {
    match caller {
        Principal::Admin => Ok(()),
        Principal::Customer { .. } => visible_cart(state, caller, cart_id).map(drop),
    }
}

/// Create an empty cart.
#[utoipa::path(post, path = "/api/v1/carts", tag = "carts",
    request_body(content = CreateCart, description = "May be left out (a customer's own cart)"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = CartBody),
        (status = 400, description = "Invalid request: no `user_id` with the admin token, an invalid `user_id`, or the user already holds 100 carts (`field` is `user_id`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A customer naming another user", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded`: retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_cart(
    State(state): State<AppState>,
    Caller(caller): Caller,
    context: Option<Extension<IdempotencyContext>>,
    ApiJsonOrEmpty(request): ApiJsonOrEmpty<CreateCart>,
) -> Result<Response, ApiError> {
    let user_id = match (caller, request.user_id) {
        (Principal::Admin, Some(user_id)) => user_id,
        (Principal::Admin, None) => {
            return Err(ApiError::invalid(
                "user_id",
                "required with the admin token",
            ));
        }
        (Principal::Customer { user_id }, None) => user_id,
        (Principal::Customer { user_id }, Some(named)) if named == user_id => user_id,
        (Principal::Customer { .. }, Some(_)) => return Err(ApiError::forbidden()),
    };
    let write = Write::create_cart(UserId::new(user_id)?);
    Ok(run_write(&state, context, write, render_created).await)
}

/// Read a cart, priced now.
#[utoipa::path(get, path = "/api/v1/carts/{id}", tag = "carts",
    params(("id" = Uuid, Path, description = "Cart id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cart", body = CartBody),
        (status = 400, description = "Not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown, expired, or another user's cart", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_cart(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<CartBody>, ApiError> {
    let cart = visible_cart(&state, &caller, CartId(id))?;
    Ok(Json(cart_body(&cart)))
}

/// Set how many units of a product the cart holds; 0 removes the line.
#[utoipa::path(put, path = "/api/v1/carts/{id}/items/{product_id}", tag = "carts",
    request_body = SetQuantity,
    params(
        ("id" = Uuid, Path, description = "Cart id"),
        ("product_id" = u64, Path, description = "Product id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cart", body = CartBody),
        (status = 400, description = "Invalid request: `quantity` out of range, or a 101st line (`field` is `items`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or another user's cart, or an unknown or archived product", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded`: retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn set_quantity(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath((id, product_id)): ApiPath<(Uuid, u64)>,
    context: Option<Extension<IdempotencyContext>>,
    ApiJson(request): ApiJson<SetQuantity>,
) -> Result<Response, ApiError> {
    let cart_id = CartId(id);
    check_writable(&state, &caller, cart_id)?;
    let write = Write::set_cart_quantity(cart_id, ProductId(product_id), request.quantity);
    Ok(run_write(&state, context, write, render_cart).await)
}

/// Remove a product's line; a cart without it is answered as it is.
#[utoipa::path(delete, path = "/api/v1/carts/{id}/items/{product_id}", tag = "carts",
    params(
        ("id" = Uuid, Path, description = "Cart id"),
        ("product_id" = u64, Path, description = "Product id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cart", body = CartBody),
        (status = 400, description = "Invalid path", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or another user's cart", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded`: retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn remove_line(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath((id, product_id)): ApiPath<(Uuid, u64)>,
    context: Option<Extension<IdempotencyContext>>,
) -> Result<Response, ApiError> {
    let cart_id = CartId(id);
    check_writable(&state, &caller, cart_id)?;
    let write = Write::remove_cart_line(cart_id, ProductId(product_id));
    Ok(run_write(&state, context, write, render_cart).await)
}
