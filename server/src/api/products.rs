//! Products: create, read, list, update, archive.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use mercato_engine::{
    Decimal, Error, NewProduct, PAGE_LIMIT_MAX, Product, ProductId, ProductPatch, Write,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::cursor;
use crate::api::write::{Rendered, run_write};
use crate::auth::Admin;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::idempotency::IdempotencyContext;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// The page size when `limit` is absent.
pub(crate) const PAGE_LIMIT_DEFAULT: usize = 50;

/// A product.
#[derive(Serialize, ToSchema)]
pub(crate) struct ProductBody {
    id: u64,
    sku: String,
    name: String,
    description: String,
    category: String,
    brand: String,
    /// Decimal string in the store currency.
    #[schema(value_type = String, example = "19.99")]
    price: Decimal,
    /// ISO 4217.
    currency: String,
    attributes: BTreeMap<String, String>,
    low_stock_threshold: u64,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    updated_at: String,
}

impl From<Product> for ProductBody {
    fn from(product: Product) -> ProductBody {
        ProductBody {
            id: product.id.0,
            sku: product.sku,
            name: product.name,
            description: product.description,
            category: product.category,
            brand: product.brand,
            price: product.price,
            currency: product.currency,
            attributes: product.attributes,
            low_stock_threshold: product.low_stock_threshold,
            created_at: product.created_at.to_rfc3339(),
            updated_at: product.updated_at.to_rfc3339(),
        }
    }
}

/// A product to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateProduct {
    /// Assigned when absent; a taken id is `409 conflict`.
    #[schema(minimum = 1)]
    id: Option<u64>,
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    sku: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    name: String,
    description: Option<String>,
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    category: Option<String>,
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    brand: Option<String>,
    /// Decimal string, at least 0, at most two decimal places.
    #[schema(value_type = String, example = "19.99", format = "money")]
    #[serde(deserialize_with = "crate::money::required")]
    price: Decimal,
    attributes: Option<BTreeMap<String, String>>,
    /// Default 10.
    low_stock_threshold: Option<u64>,
}

/// Fields to change; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateProduct {
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    sku: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    name: Option<String>,
    description: Option<String>,
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    category: Option<String>,
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    brand: Option<String>,
    #[schema(value_type = Option<String>, example = "19.99", format = "money")]
    #[serde(default, deserialize_with = "crate::money::optional")]
    price: Option<Decimal>,
    /// Replaces all attributes.
    attributes: Option<BTreeMap<String, String>>,
    low_stock_threshold: Option<u64>,
}

/// A page of products.
#[derive(Serialize, ToSchema)]
pub(crate) struct ProductPage {
    items: Vec<ProductBody>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// Listing parameters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListProducts {
    /// Only this category (empty: every category).
    #[param(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    category: Option<String>,
    /// Page size: default 50, larger values are clamped to 500.
    #[param(minimum = 1)]
    limit: Option<usize>,
    /// From a previous page's `next_cursor`.
    #[param(pattern = r"^p[0-9a-f]{16}$")]
    cursor: Option<String>,
}

pub(crate) fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(PAGE_LIMIT_DEFAULT),
        Some(0) => Err(ApiError::invalid("limit", "must be at least 1")),
        Some(limit) => Ok(limit.min(PAGE_LIMIT_MAX)),
    }
}

/// Create a product.
#[utoipa::path(post, path = "/api/v1/products", tag = "products", request_body = CreateProduct,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = ProductBody),
        (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The id is taken", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_product(
    State(state): State<AppState>,
    _admin: Admin,
    context: Option<Extension<IdempotencyContext>>,
    ApiJson(request): ApiJson<CreateProduct>,
) -> Result<Response, ApiError> {
    if request.id == Some(0) {
        return Err(ApiError::invalid("id", "must be at least 1"));
    }
    let write = Write::create_product(NewProduct {
        id: request.id.map(ProductId),
        sku: request.sku,
        name: request.name,
        description: request.description,
        category: request.category,
        brand: request.brand,
        price: request.price,
        attributes: request.attributes.unwrap_or_default(),
        low_stock_threshold: request.low_stock_threshold,
        on_hand: 0,
    });
    Ok(run_write(&state, context, write, |outcome| {
        render_product(outcome, StatusCode::CREATED)
    })
    .await)
}

fn render_product(outcome: &Result<Product, Error>, status: StatusCode) -> Rendered {
    Rendered::outcome(outcome, status, |product| {
        ProductBody::from(product.clone())
    })
}

/// Read a product.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "products",
    params(("id" = u64, Path, description = "Product id")),
    responses(
        (status = 200, description = "The product", body = ProductBody),
        (status = 404, description = "Unknown or archived", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_product(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
) -> Result<Json<ProductBody>, ApiError> {
    let product = state
        .engine
        .product(ProductId(id))?
        .ok_or_else(|| ApiError::not_found(format!("product {id} not found")))?;
    Ok(Json(product.into()))
}

/// List products, by page, optionally of one category.
#[utoipa::path(get, path = "/api/v1/products", tag = "products", params(ListProducts),
    responses(
        (status = 200, description = "A page of products", body = ProductPage),
        (status = 400, description = "Invalid parameters", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_products(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListProducts>,
) -> Result<Json<ProductPage>, ApiError> {
    let limit = page_limit(query.limit)?;
    let after = query
        .cursor
        .as_deref()
        .map(|cursor| cursor::PRODUCTS.decode(cursor))
        .transpose()?
        .map(|position| ProductId(u64::try_from(position).unwrap_or(u64::MAX)));
    let category = query
        .category
        .as_deref()
        .filter(|category| !category.is_empty());
    if let Some(category) = category
        && (category.chars().count() > mercato_engine::PRODUCT_LABEL_LENGTH_MAX
            || category.chars().any(char::is_control))
    {
        return Err(ApiError::invalid(
            "category",
            format!(
                "at most {} characters, without control characters",
                mercato_engine::PRODUCT_LABEL_LENGTH_MAX
            ),
        ));
    }
    let page = state.engine.list_products(category, after, limit)?;
    Ok(Json(ProductPage {
        items: page.items.into_iter().map(ProductBody::from).collect(),
        next_cursor: page
            .next_after
            .map(|after| cursor::PRODUCTS.encode(after.0.into())),
    }))
}

/// Change some of a product's fields.
#[utoipa::path(patch, path = "/api/v1/products/{id}", tag = "products", request_body = UpdateProduct,
    params(("id" = u64, Path, description = "Product id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated product", body = ProductBody),
        (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or archived", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn update_product(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<u64>,
    context: Option<Extension<IdempotencyContext>>,
    ApiJson(request): ApiJson<UpdateProduct>,
) -> Response {
    let patch = ProductPatch {
        sku: request.sku,
        name: request.name,
        description: request.description,
        category: request.category,
        brand: request.brand,
        price: request.price,
        attributes: request.attributes,
        low_stock_threshold: request.low_stock_threshold,
    };
    let write = Write::update_product(ProductId(id), patch);
    run_write(&state, context, write, |outcome| {
        render_product(outcome, StatusCode::OK)
    })
    .await
}

/// Archive a product: no longer listed, searchable or orderable.
#[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "products",
    params(("id" = u64, Path, description = "Product id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Archived"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or archived", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn archive_product(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<u64>,
    context: Option<Extension<IdempotencyContext>>,
) -> Response {
    let write = Write::archive_product(ProductId(id));
    run_write(&state, context, write, |outcome| match outcome {
        Ok(()) => Rendered::empty(StatusCode::NO_CONTENT),
        Err(error) => Rendered::error(error),
    })
    .await
}
