//! `Idempotency-Key` on writes (POST, PUT, PATCH, DELETE) under `/api/v1`.
//!
//! The first answer to a key (per caller) is stored durably in the engine
//! for `Limits::idempotency_ttl` (24 hours unless `--idempotency-ttl`). A
//! repeat with the same method, path and body replays it with `Idempotent-Replayed: true`; the same key with another request is
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
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::{Principal, Verified, principal};
use crate::problem::ApiError;
use crate::state::AppState;

/// The request header.
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header on a replayed answer.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// How long a first answer is kept by default (`Limits::idempotency_ttl`).
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The shortest time a first answer may be kept: a client's retry after a
/// lost answer must still find it.
pub const IDEMPOTENCY_TTL_MIN: Duration = Duration::from_secs(60);
/// The longest time a first answer may be kept.
pub const IDEMPOTENCY_TTL_MAX: Duration = Duration::from_secs(365 * 24 * 60 * 60);
const _: () = assert!(IDEMPOTENCY_TTL_MIN.as_secs() <= IDEMPOTENCY_TTL.as_secs());
const _: () = assert!(IDEMPOTENCY_TTL.as_secs() <= IDEMPOTENCY_TTL_MAX.as_secs());
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
        remint_token: false,
    };
    serde_json::to_vec(&stored).expect("a stored answer serializes")
}

#[derive(Serialize, Deserialize)]
struct StoredAnswer {
    fingerprint: String,
    status: u16,
    content_type: Option<String>,
    body: String,
    /// The body's `token` was left out (a secret is never stored): a
    /// replay mints it again from `user_id` and `expires_at`, which gives
    /// the same token.
    #[serde(default)]
    remint_token: bool,
}

/// The route whose answers hold a bearer token.
const TOKEN_ROUTE: &str = "/api/v1/auth/tokens";

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
    // Only routes that exist store answers: an unknown path is a 404
    // whatever the key.
    let Some(route) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|route| route.as_str().to_owned())
    else {
        return next.run(request).await;
    };
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
    // Only an authenticated caller's answers are stored, and nothing is
    // read first: an anonymous or badly authenticated request goes on to
    // its route, which refuses it.
    let Some(caller) = principal(request.headers(), &state) else {
        return next.run(request).await;
    };
    // Keys are per caller identity (not per Authorization bytes): the same
    // key from two users is two keys, from one user written two ways one.
    let caller_prefix = match &caller {
        Principal::Admin => format!("http:{}:", &digest(&[b"admin"])[..32]),
        Principal::Customer { user_id } => {
            format!(
                "http:{}:",
                &digest(&[b"customer", user_id.as_bytes()])[..32]
            )
        }
    };
    let storage_key = format!("{caller_prefix}{}", digest(&[key.as_bytes()]));
    let held_max = state.limits.idempotency_records_per_customer_max;
    if matches!(caller, Principal::Customer { .. }) {
        match state
            .engine
            .idempotency_records_with_prefix(&caller_prefix, held_max)
        {
            Ok(held) if held >= held_max => {
                // A record of this key may already be there: let a replay
                // through, refuse a new key.
                if !matches!(state.engine.idempotency_record(&storage_key), Ok(Some(_))) {
                    return ApiError::new(
                        "rate_limited",
                        format!(
                            "this user holds {held_max} Idempotency-Key \
                             answers from the last {}, the most kept; retry without a key \
                             or later",
                            humantime::format_duration(state.limits.idempotency_ttl)
                        ),
                    )
                    .into_response();
                }
            }
            Ok(_) => {}
            Err(error) => return ApiError::from(error).into_response(),
        }
    }

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
        Ok(Some(bytes)) => return replay(&state, &bytes, &fingerprint),
        Ok(None) => {}
        Err(error) => return ApiError::from(error).into_response(),
    }

    let mut parts = parts;
    parts.extensions.insert(Verified(caller));
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
    let value = if route == TOKEN_ROUTE && status == StatusCode::CREATED {
        match without_token(&fingerprint, status, &body) {
            Some(value) => value,
            // Not the shape expected: store nothing rather than a secret.
            None => return Response::from_parts(parts, Body::from(body)),
        }
    } else {
        stored_answer(
            &fingerprint,
            status,
            content_type(&parts.headers).as_deref(),
            &body,
        )
    };
    if let Err(error) = state
        .engine
        .save_idempotency_record(&storage_key, value, state.limits.idempotency_ttl)
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

/// A minted token's answer to store, its `token` left out.
fn without_token(fingerprint: &str, status: StatusCode, body: &[u8]) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object_mut()?;
    object.get("user_id")?.as_str()?;
    object.get("expires_at")?.as_str()?;
    object.insert("token".to_owned(), serde_json::Value::Null);
    let stored = StoredAnswer {
        fingerprint: fingerprint.to_owned(),
        status: status.as_u16(),
        content_type: Some("application/json".to_owned()),
        body: value.to_string(),
        remint_token: true,
    };
    Some(serde_json::to_vec(&stored).expect("a stored answer serializes"))
}

/// The stored token answer with its token minted again.
fn with_token(state: &AppState, body: &str) -> Option<String> {
    let mut value: serde_json::Value = serde_json::from_str(body).ok()?;
    let object = value.as_object_mut()?;
    let user_id = object.get("user_id")?.as_str()?.to_owned();
    let expires_at = humantime::parse_rfc3339(object.get("expires_at")?.as_str()?).ok()?;
    let millis = expires_at
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis();
    let token = state.auth.mint(
        &user_id,
        mercato_engine::Timestamp(u64::try_from(millis).ok()?),
    );
    object.insert("token".to_owned(), serde_json::Value::String(token));
    Some(value.to_string())
}

fn replay(state: &AppState, bytes: &[u8], fingerprint: &str) -> Response {
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
    let body = if stored.remint_token {
        match with_token(state, &stored.body) {
            Some(body) => body,
            None => {
                return ApiError::internal("unreadable stored token answer").into_response();
            }
        }
    } else {
        stored.body
    };
    let mut response = (status, body).into_response();
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
