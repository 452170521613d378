//! `Idempotency-Key` on writes (POST, PUT, PATCH, DELETE) under `/api/v1`.
//!
//! The first answer to a key (per caller) is stored durably in the engine
//! for 24 hours. A repeat with the same method, path and body replays it
//! with `Idempotent-Replayed: true`; the same key with another request is
//! `409 conflict`; a repeat while the first is still running is `409
//! idempotency_key_in_use`. Answers that say "try again" (5xx, 429) are not
//! stored, so a retry runs again.
//!
//! A handler that writes through the engine stores the answer itself, in
//! the same write transaction as its change (see `api::write`), so a crash
//! can never keep the change and lose its answer. This middleware stores
//! the answers of everything else (refusals before any write, token minting).

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::problem::ApiError;
use crate::state::AppState;

/// The request header.
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header on a replayed answer.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// How long a first answer is kept.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest key a client may send.
pub(crate) const IDEMPOTENCY_KEY_LENGTH_MAX: usize = 255;
/// Routes that take no idempotency key (the gateway's webhook has event ids).
const EXEMPT_PATHS: &[&str] = &["/api/v1/payments/webhook"];
/// The largest answer stored for replay.
const STORED_BODY_BYTES_MAX: usize = 1 << 20;

/// Handed to handlers in the request's extensions when the request carries
/// an `Idempotency-Key` whose answer is not stored yet.
#[derive(Clone, Debug)]
pub(crate) struct IdempotencyContext {
    /// The engine's record key for this caller and key.
    pub(crate) storage_key: String,
    /// The hash of method, path and body the answer is bound to.
    pub(crate) fingerprint: String,
}

/// Put in a response's extensions when the engine already stored it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordedByEngine;

/// The bytes of a stored answer.
pub(crate) fn stored_answer(
    fingerprint: &str,
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
) -> Vec<u8> {
    let stored = StoredAnswer {
        fingerprint: fingerprint.to_owned(),
        status: status.as_u16(),
        content_type: content_type.map(str::to_owned),
        body: String::from_utf8_lossy(body).into_owned(),
    };
    serde_json::to_vec(&stored).expect("a stored answer serializes")
}

#[derive(Serialize, Deserialize)]
struct StoredAnswer {
    fingerprint: String,
    status: u16,
    content_type: Option<String>,
    body: String,
}

/// Removes the key from the in-flight set however the request ends.
struct InFlight<'a> {
    state: &'a AppState,
    key: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut in_flight = self
            .state
            .idempotency_in_flight
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        in_flight.remove(&self.key);
    }
}

fn digest(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// The middleware.
pub(crate) async fn idempotency(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if !matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) || !path.starts_with("/api/v1/")
        || EXEMPT_PATHS.contains(&path)
    {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(IDEMPOTENCY_KEY) else {
        return next.run(request).await;
    };
    let key = match key.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= IDEMPOTENCY_KEY_LENGTH_MAX => key.to_owned(),
        _ => {
            return ApiError::invalid(
                "Idempotency-Key",
                format!("must be 1 to {IDEMPOTENCY_KEY_LENGTH_MAX} visible ASCII characters"),
            )
            .into_response();
        }
    };
    // Keys are per caller: the same key from two tokens is two keys.
    let caller = request
        .headers()
        .get(header::AUTHORIZATION)
        .map_or(&b""[..], HeaderValue::as_bytes);
    let storage_key = format!("http:{}", digest(&[caller, key.as_bytes()]));

    let (parts, body) = request.into_parts();
    let body = match to_bytes(body, state.limits.body_bytes_max).await {
        Ok(body) => body,
        Err(_) => {
            return ApiError::new(
                "payload_too_large",
                "the body is larger than the server accepts",
            )
            .into_response();
        }
    };
    let target = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |target| target.as_str());
    let fingerprint = digest(&[parts.method.as_str().as_bytes(), target.as_bytes(), &body]);

    let _in_flight = {
        let mut in_flight = state
            .idempotency_in_flight
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if !in_flight.insert(storage_key.clone()) {
            return ApiError::new(
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still being processed",
            )
            .into_response();
        }
        InFlight {
            state: &state,
            key: storage_key.clone(),
        }
    };

    match state.engine.idempotency_record(&storage_key) {
        // Reads show only durable state, so a stored answer found here
        // rests on a write that a crash cannot take back.
        Ok(Some(bytes)) => return replay(&bytes, &fingerprint),
        Ok(None) => {}
        Err(error) => return ApiError::from(error).into_response(),
    }

    let mut parts = parts;
    parts.extensions.insert(IdempotencyContext {
        storage_key: storage_key.clone(),
        fingerprint: fingerprint.clone(),
    });
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    let status = response.status();
    if response.extensions().get::<RecordedByEngine>().is_some()
        || status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::UNAUTHORIZED
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = match to_bytes(body, STORED_BODY_BYTES_MAX).await {
        Ok(body) => body,
        Err(error) => {
            return ApiError::internal(format!("reading an answer to store it: {error}"))
                .into_response();
        }
    };
    let value = stored_answer(
        &fingerprint,
        status,
        content_type(&parts.headers).as_deref(),
        &body,
    );
    if let Err(error) = state
        .engine
        .save_idempotency_record(&storage_key, value, IDEMPOTENCY_TTL)
        .await
    {
        // The answer stands (nothing was written by it); a retry runs again.
        tracing::warn!(%error, "could not store the answer for an Idempotency-Key");
    }
    Response::from_parts(parts, Body::from(body))
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn replay(bytes: &[u8], fingerprint: &str) -> Response {
    let stored: StoredAnswer = match serde_json::from_slice(bytes) {
        Ok(stored) => stored,
        Err(error) => {
            return ApiError::internal(format!("unreadable stored answer: {error}"))
                .into_response();
        }
    };
    if stored.fingerprint != fingerprint {
        return ApiError::new(
            "conflict",
            "this Idempotency-Key was used with a different request",
        )
        .into_response();
    }
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    if let Some(content_type) = stored
        .content_type
        .and_then(|value| HeaderValue::from_str(&value).ok())
    {
        headers.insert(header::CONTENT_TYPE, content_type);
    }
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}
