//! Payments: read one, ask for an order's payment, refund, and the
//! gateway's signed webhook.
//!
//! An order's payment is created with the order and charged by the saga
//! runner, so `POST /payments/process` answers the payment that already
//! exists rather than starting another (at most one payment per order).
//! Refunds go through the runner, which calls the gateway and then records
//! what it gave back. The webhook takes no token: its `Mercato-Signature`
//! (HMAC-SHA256 under the webhook secret, checked in constant time, at most
//! 300 s old) is what proves it comes from the gateway, and a request that
//! fails the check changes nothing.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use mercato_engine::{
    ChargeOutcome, Decimal, Error, OrderId, PAYMENT_TOKEN_LENGTH_MAX, PRODUCT_PRICE_SCALE_MAX,
    Payment, PaymentId, PaymentResult, Uuid, WebhookOutcome,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::money;
use crate::auth::{Admin, Caller};
use crate::extract::{ApiJson, ApiJsonOrEmpty, ApiPath, RawBody};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// A payment.
#[derive(Serialize, ToSchema)]
pub(crate) struct PaymentBody {
    id: Uuid,
    order_id: Uuid,
    /// Decimal string: the order's total.
    #[schema(value_type = String, example = "39.98")]
    amount: Decimal,
    /// ISO 4217.
    currency: String,
    /// `pending`, `succeeded`, `failed`, `voided`, `refunded` or
    /// `partially_refunded`.
    #[schema(example = "succeeded")]
    status: &'static str,
    /// The gateway's reason when it failed: `card_declined`,
    /// `insufficient_funds`, ...
    failure_reason: Option<String>,
    /// Decimal string: what was given back so far.
    #[schema(value_type = String, example = "0.00")]
    refunded_amount: Decimal,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    updated_at: String,
}

impl From<Payment> for PaymentBody {
    fn from(payment: Payment) -> PaymentBody {
        PaymentBody {
            id: payment.id.0,
            order_id: payment.order_id.0,
            amount: money(payment.amount),
            currency: payment.currency,
            status: payment.status.as_str(),
            failure_reason: payment.failure_reason,
            refunded_amount: money(payment.refunded_amount),
            created_at: payment.created_at.to_rfc3339(),
            updated_at: payment.updated_at.to_rfc3339(),
        }
    }
}

/// Ask for an order's payment.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProcessPayment {
    order_id: Uuid,
    /// Decimal string; must equal the order's `total_amount`.
    #[schema(value_type = String, example = "39.98", format = "positive-money")]
    #[serde(deserialize_with = "crate::money::required")]
    amount: Decimal,
    /// The card's token; must be the one the order was placed with.
    #[schema(example = "tok_visa", min_length = 1, max_length = 63)]
    token: String,
}

/// A refund; everything left to refund when `amount` is absent.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefundPayment {
    /// Decimal string, positive, at most two decimal places.
    #[schema(value_type = Option<String>, example = "5.00", format = "positive-money")]
    #[serde(default, deserialize_with = "crate::money::optional")]
    amount: Option<Decimal>,
}

/// The answer to a webhook the server accepted.
#[derive(Serialize, ToSchema)]
pub(crate) struct WebhookReceived {
    /// Always true.
    received: bool,
    /// The event's id; each id takes effect once.
    event_id: String,
    /// The payment it concerns.
    payment_id: Uuid,
    /// The payment's status after the event.
    #[schema(example = "succeeded")]
    payment_status: &'static str,
}

/// A money amount from a request: positive, with at most the store's
/// decimal places.
fn validate_amount(field: &str, amount: Decimal) -> Result<(), ApiError> {
    if amount <= Decimal::ZERO {
        return Err(ApiError::invalid(field, "must be positive"));
    }
    if amount.normalize().scale() > PRODUCT_PRICE_SCALE_MAX {
        return Err(ApiError::invalid(
            field,
            format!("at most {PRODUCT_PRICE_SCALE_MAX} decimal places"),
        ));
    }
    Ok(())
}

/// Read a payment.
#[utoipa::path(get, path = "/api/v1/payments/{id}", tag = "payments",
    params(("id" = Uuid, Path, description = "Payment id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The payment", body = PaymentBody),
        (status = 400, description = "Not a payment id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown, or the payment of another user's order", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_payment(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<PaymentBody>, ApiError> {
    let not_found = || ApiError::not_found(format!("payment {id} not found"));
    let payment = state.engine.payment(PaymentId(id))?.ok_or_else(not_found)?;
    // Only the owner of the order (or the admin) learns the payment exists.
    let order = state.engine.order(payment.order_id)?;
    if !order.is_some_and(|order| caller.may_act_for(&order.user_id)) {
        return Err(not_found());
    }
    Ok(Json(payment.into()))
}

/// Ask for an order's payment.
///
/// The payment was created with the order and is charged by the saga
/// runner; this answers it (202: its outcome may still be pending) when
/// the request matches it, so repeating it for the same order answers the
/// same payment and never charges twice.
#[utoipa::path(post, path = "/api/v1/payments/process", tag = "payments", request_body = ProcessPayment,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "The order's payment; poll it (or the order) for its outcome", body = PaymentBody),
        (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`conflict`: the amount is not the order's total, or the token not the order's; `invalid_state`: the order has no payment (its stock was never reserved), `state` holds its status", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn process_payment(
    State(state): State<AppState>,
    _admin: Admin,
    ApiJson(request): ApiJson<ProcessPayment>,
) -> Result<(StatusCode, Json<PaymentBody>), ApiError> {
    validate_amount("amount", request.amount)?;
    if request.token.is_empty() || request.token.len() > PAYMENT_TOKEN_LENGTH_MAX {
        return Err(ApiError::invalid(
            "token",
            format!("must be 1 to {PAYMENT_TOKEN_LENGTH_MAX} bytes"),
        ));
    }
    let order_id = OrderId(request.order_id);
    let order = state
        .engine
        .order(order_id)?
        .ok_or_else(|| ApiError::not_found(format!("order {order_id} not found")))?;
    let Some(payment) = state.engine.payment_of_order(order_id)? else {
        return Err(ApiError::new(
            "invalid_state",
            format!(
                "order {order_id} is {} and has no payment: its stock was never reserved",
                order.status.as_str()
            ),
        )
        .with("state", order.status.as_str()));
    };
    if request.amount != payment.amount {
        return Err(ApiError::new(
            "conflict",
            format!(
                "order {order_id} is paid by payment {} of {} {}, not {}",
                payment.id, payment.amount, payment.currency, request.amount
            ),
        ));
    }
    if request.token != payment.token {
        return Err(ApiError::new(
            "conflict",
            format!(
                "order {order_id} is paid by payment {} with another token",
                payment.id
            ),
        ));
    }
    Ok((StatusCode::ACCEPTED, Json(payment.into())))
}

/// Refund a captured payment.
#[utoipa::path(post, path = "/api/v1/payments/{id}/refund", tag = "payments",
    request_body(content = RefundPayment, description = "Optional; without `amount`, everything left to refund"),
    params(("id" = Uuid, Path, description = "Payment id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Refunded: `refunded` or `partially_refunded`", body = PaymentBody),
        (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown payment", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`refund_exceeds_captured` (with `refundable`, a decimal string) or `invalid_state` (never captured; `state` holds the payment's status)", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn refund_payment(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<Uuid>,
    idempotency: Option<axum::Extension<crate::idempotency::IdempotencyContext>>,
    ApiJsonOrEmpty(request): ApiJsonOrEmpty<RefundPayment>,
) -> Result<Json<PaymentBody>, ApiError> {
    if let Some(amount) = request.amount {
        validate_amount("amount", amount)?;
    }
    let payment_id = PaymentId(id);
    if request.amount.is_none()
        && let Some(payment) = state.engine.payment(payment_id)?
        && payment.status.was_captured()
        && payment.refundable().is_zero()
    {
        // "Everything left" when nothing is left: more than is left.
        return Err(Error::RefundExceedsCaptured {
            refundable: payment.refundable(),
        }
        .into());
    }
    // The gateway call is keyed by the request's Idempotency-Key, so a
    // retry after a crash between the refund and its record pays nothing.
    let request_key = idempotency.map(|context| context.0.storage_key.clone());
    match state
        .checkout
        .refund(payment_id, request.amount, request_key.as_deref())
        .await
    {
        Ok(payment) => Ok(Json(payment.into())),
        // The engine's error names a reservation; this one is a payment's.
        Err(Error::InvalidState { state, .. }) => Err(ApiError::new(
            "invalid_state",
            format!("payment {payment_id} is {state}; only a captured payment can be refunded"),
        )
        .with("state", state)),
        Err(error) => Err(error.into()),
    }
}

/// The payment gateway's webhook.
///
/// Takes no bearer token and no `Idempotency-Key`: the `Mercato-Signature`
/// header proves the sender, and each event `id` takes effect once.
#[utoipa::path(post, path = "/api/v1/payments/webhook", tag = "payments",
    request_body(content = String, content_type = "application/json",
        description = "`{\"id\", \"type\": \"payment.succeeded\" | \"payment.failed\", \"payment_id\", \"failure_reason\"?}`, signed: `Mercato-Signature: t=UNIX_SECONDS,v1=HEX`, HEX = HMAC-SHA256(webhook secret, t + \".\" + raw body)"),
    params(("Mercato-Signature" = String, Header, description = "`t=UNIX_SECONDS,v1=HEX`")),
    responses(
        (status = 200, description = "Applied, or a repeat of an event already applied (which changes nothing)", body = WebhookReceived),
        (status = 400, description = "Correctly signed, but not an event the gateway sends", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`invalid_signature`: missing, malformed, wrong, or more than 300 s from now; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown payment", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over the limit", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<WebhookReceived>, ApiError> {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let now = state.engine.config().clock.now();
    let event = state
        .checkout
        .gateway()
        .verify_webhook(&headers, &body, now)
        .map_err(|error| {
            tracing::warn!(%error, "payment webhook refused");
            ApiError::new(error.code(), error.to_string())
        })?;
    let outcome = match event.outcome {
        // The webhook does not name the charge; the engine keeps the
        // reference recorded when the charge was accepted as pending.
        WebhookOutcome::Succeeded => ChargeOutcome::Succeeded {
            provider_reference: String::new(),
        },
        WebhookOutcome::Failed { reason } => ChargeOutcome::Failed { reason },
        _ => {
            return Err(ApiError::new(
                "invalid_request",
                "the webhook reports an outcome this server does not know",
            ));
        }
    };
    let payment = state
        .engine
        .record_payment_result(PaymentResult {
            payment_id: event.payment_id,
            outcome,
            webhook_event_id: Some(event.id.clone()),
        })
        .await?;
    Ok(Json(WebhookReceived {
        received: true,
        event_id: event.id,
        payment_id: payment.id.0,
        payment_status: payment.status.as_str(),
    }))
}
