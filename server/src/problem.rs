//! [`ApiError`]: every error answer, as RFC 9457 problem details.
//!
//! This is the one place where error codes become HTTP statuses. Internal
//! errors are logged (inside the request's span, so with its request id) and
//! never sent to the client in detail.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// Seconds a client is asked to wait after a 503 (`overloaded`,
/// `storage_unavailable`).
const RETRY_AFTER_SECONDS: u64 = 1;

/// An error answer: a stable `code`, a human `detail`, and context members.
#[derive(Debug, Clone)]
pub struct ApiError {
    code: &'static str,
    detail: String,
    members: Map<String, Value>,
}

/// The status and title for each code the server answers.
fn status_and_title(code: &str) -> (StatusCode, &'static str) {
    match code {
        "invalid_request" => (StatusCode::BAD_REQUEST, "Invalid request"),
        "unauthorized" => (StatusCode::UNAUTHORIZED, "Unauthorized"),
        "invalid_signature" => (StatusCode::UNAUTHORIZED, "Invalid signature"),
        "forbidden" => (StatusCode::FORBIDDEN, "Forbidden"),
        "not_found" => (StatusCode::NOT_FOUND, "Not found"),
        "method_not_allowed" => (StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
        "insufficient_stock" => (StatusCode::CONFLICT, "Insufficient stock"),
        "invalid_state" => (StatusCode::CONFLICT, "Invalid state"),
        "conflict" => (StatusCode::CONFLICT, "Conflict"),
        "idempotency_key_in_use" => (StatusCode::CONFLICT, "Idempotency key in use"),
        "refund_exceeds_captured" => (StatusCode::CONFLICT, "Refund exceeds captured"),
        "gateway_error" => (StatusCode::BAD_GATEWAY, "Payment gateway error"),
        "request_timeout" => (StatusCode::REQUEST_TIMEOUT, "Request timeout"),
        "uri_too_long" => (StatusCode::URI_TOO_LONG, "URI too long"),
        "headers_too_large" => (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request header fields too large",
        ),
        "payload_too_large" => (StatusCode::PAYLOAD_TOO_LARGE, "Payload too large"),
        "unsupported_media_type" => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type"),
        "rate_limited" => (StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
        "overloaded" => (StatusCode::SERVICE_UNAVAILABLE, "Overloaded"),
        "shutting_down" => (StatusCode::SERVICE_UNAVAILABLE, "Shutting down"),
        "storage_unavailable" => (StatusCode::SERVICE_UNAVAILABLE, "Storage unavailable"),
        "search_unavailable" => (StatusCode::SERVICE_UNAVAILABLE, "Search unavailable"),
        "too_many_streams" => (StatusCode::SERVICE_UNAVAILABLE, "Too many streams"),
        "demo_sign_in_disabled" => (StatusCode::FORBIDDEN, "Demo sign-in disabled"),
        "not_primary" => (StatusCode::MISDIRECTED_REQUEST, "Not the primary"),
        "replica_behind" => (StatusCode::SERVICE_UNAVAILABLE, "Replica behind"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "Internal error"),
    }
}

impl ApiError {
    /// An error with `code` (one of the codes of the contract) and `detail`.
    pub fn new(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            code,
            detail: detail.into(),
            members: Map::new(),
        }
    }

    /// `400 invalid_request` naming `field`.
    pub fn invalid(field: &str, detail: impl std::fmt::Display) -> ApiError {
        ApiError::new("invalid_request", format!("{field}: {detail}")).with("field", field)
    }

    /// `401 unauthorized`.
    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new("unauthorized", detail)
    }

    /// `403 forbidden`.
    pub fn forbidden() -> ApiError {
        ApiError::new("forbidden", "this token may not do this")
    }

    /// `404 not_found`.
    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new("not_found", detail)
    }

    /// `500 internal`: logged here, sent to the client without details.
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, "internal error");
        ApiError::new("internal", "an internal error occurred; it has been logged")
    }

    /// Adds a context member to the problem document.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> ApiError {
        self.members.insert(name.to_owned(), value.into());
        self
    }

    /// The human detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        status_and_title(self.code).0
    }
}

impl From<mercato_engine::Error> for ApiError {
    fn from(error: mercato_engine::Error) -> ApiError {
        use mercato_engine::Error;
        match error {
            Error::InvalidInput { field, message } => ApiError::invalid(&field, message),
            Error::InsufficientStock {
                product_id,
                requested,
                available,
            } => ApiError::new("insufficient_stock", error.to_string())
                .with("product_id", product_id.0)
                .with("requested", requested)
                .with("available", available),
            Error::InvalidState { state, .. } => {
                ApiError::new("invalid_state", error.to_string()).with("state", state)
            }
            Error::InvalidOrderState { status, .. }
            | Error::InvalidNotificationState { status, .. } => {
                ApiError::new("invalid_state", error.to_string()).with("state", status)
            }
            Error::RefundExceedsCaptured { refundable } => {
                ApiError::new("refund_exceeds_captured", error.to_string())
                    .with("refundable", crate::api::money(refundable).to_string())
            }
            Error::BelowReserved { reserved, .. } => {
                ApiError::new("invalid_state", error.to_string())
                    .with("state", "reserved")
                    .with("reserved", reserved)
            }
            Error::StorageUnavailable(_) => {
                tracing::warn!(%error, "storage unavailable");
                ApiError::new(
                    "storage_unavailable",
                    "the store cannot take writes right now (for example, the disk is full) and \
                     recovers by itself; retry later, with the same Idempotency-Key to learn the \
                     outcome of a write that was in flight",
                )
            }
            Error::Storage(_) | Error::LogDamaged(_) => ApiError::internal(error),
            Error::NotPrimary { ref primary, .. } => {
                let primary = primary.clone();
                let problem = ApiError::new("not_primary", error.to_string());
                match primary {
                    Some(primary) => problem.with("primary", primary),
                    None => problem,
                }
            }
            other => ApiError::new(other.code(), other.to_string()),
        }
    }
}

impl ApiError {
    /// The status and the problem document's JSON text.
    pub(crate) fn to_status_and_body(&self) -> (StatusCode, String) {
        let (status, title) = status_and_title(self.code);
        let mut body = json!({
            "type": format!("urn:mercato:problem:{}", self.code),
            "title": title,
            "status": status.as_u16(),
            "detail": self.detail,
            "code": self.code,
        });
        if let Value::Object(map) = &mut body {
            for (name, value) in &self.members {
                map.entry(name.clone()).or_insert_with(|| value.clone());
            }
        }
        (status, body.to_string())
    }
}

/// The content type of every error answer.
pub(crate) const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Headers every answer with this status carries.
pub(crate) fn add_status_headers(status: StatusCode, headers: &mut axum::http::HeaderMap) {
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    }
    if status == StatusCode::UNAUTHORIZED {
        // RFC 6750: say which scheme the route takes.
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.to_status_and_body();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        add_status_headers(status, headers);
        response
    }
}

/// The problem document, for the OpenAPI description.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct Problem {
    /// `urn:mercato:problem:<code>`.
    r#type: String,
    /// A short human title for the code.
    title: String,
    /// The HTTP status.
    status: u16,
    /// What went wrong, for humans.
    detail: String,
    /// A stable snake_case code: `invalid_request`, `unauthorized`,
    /// `invalid_signature`, `forbidden`, `not_found`, `insufficient_stock`,
    /// `invalid_state`, `conflict`, `idempotency_key_in_use`,
    /// `refund_exceeds_captured`, `payload_too_large`,
    /// `unsupported_media_type`, `rate_limited`, `overloaded`,
    /// `shutting_down`, `storage_unavailable`, `search_unavailable`, `internal`. Context members
    /// follow some codes: `field` (`invalid_request`), `state`
    /// (`invalid_state`: the current status), `refundable`
    /// (`refund_exceeds_captured`: a decimal string), `product_id`,
    /// `requested` and `available` (`insufficient_stock`).
    code: String,
}
