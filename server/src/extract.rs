//! Extractors whose rejections are problem documents: JSON bodies (unknown
//! fields refused, the failing field named), path and query parameters.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, RawPathParams, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::guard::scrub;
use crate::problem::ApiError;

/// A JSON request body. Requires `Content-Type: application/json`.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        require_json(&request)?;
        let bytes = body_bytes(request, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON request body that may be left out: an empty body (with or
/// without a `Content-Type`) is `T::default()`, anything else is read as
/// [`ApiJson`] reads it.
pub(crate) struct ApiJsonOrEmpty<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for ApiJsonOrEmpty<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let json = require_json(&request);
        let bytes = body_bytes(request, state).await?;
        if bytes.is_empty() {
            return Ok(ApiJsonOrEmpty(T::default()));
        }
        json?;
        parse_json(&bytes).map(ApiJsonOrEmpty)
    }
}

/// `415 unsupported_media_type` unless the request says its body is JSON.
fn require_json(request: &Request) -> Result<(), ApiError> {
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json")
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        });
    if !json {
        return Err(ApiError::new(
            "unsupported_media_type",
            "the body must be JSON, with Content-Type: application/json",
        ));
    }
    Ok(())
}

async fn body_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    "payload_too_large",
                    "the body is larger than the server accepts",
                )
            } else {
                ApiError::new("invalid_request", rejection.body_text())
            }
        })
}

/// Parses a JSON document, naming the failing field in the error.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // The fast path: plain serde_json. Only a body that fails is parsed a
    // second time, with path tracking, to name the field in the answer.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    // JSON Schema's integers include whole-number floats (`1088.0`), so a
    // body that fails is read once more with those made integers.
    if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(bytes)
        && integral_floats(&mut value)
        && let Ok(parsed) = serde_json::from_value(value)
    {
        return Ok(parsed);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let inner = scrub(&inner.to_string());
        if path == "." {
            ApiError::new("invalid_request", format!("malformed JSON body: {inner}"))
        } else {
            ApiError::invalid(&path, inner)
        }
    })?;
    deserializer.end().map_err(|error| {
        ApiError::new(
            "invalid_request",
            format!("malformed JSON body: {}", scrub(&error.to_string())),
        )
    })?;
    Ok(value)
}

/// Makes every whole-number float in `value` an integer; whether any was.
fn integral_floats(value: &mut serde_json::Value) -> bool {
    use serde_json::{Number, Value};
    match value {
        Value::Number(number) if number.is_f64() => {
            let float = number.as_f64().unwrap_or(f64::NAN);
            let integer = if float.fract() != 0.0 || !float.is_finite() {
                None
            } else if (0.0..18_446_744_073_709_551_616.0).contains(&float) {
                Some(Number::from(float as u64))
            } else if (-9_223_372_036_854_775_808.0..0.0).contains(&float) {
                Some(Number::from(float as i64))
            } else {
                None
            };
            match integer {
                Some(integer) => {
                    *number = integer;
                    true
                }
                None => false,
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |any, item| integral_floats(item) | any),
        Value::Object(fields) => fields
            .values_mut()
            .fold(false, |any, field| integral_floats(field) | any),
        _ => false,
    }
}

/// Path parameters.
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // Ids have one spelling each: `+1`, `0001`, `1.0`, a dashless,
        // braced or `urn:` UUID are not other names of `1` or of the UUID,
        // so they name nothing.
        if let Ok(raw) = RawPathParams::from_request_parts(parts, state).await {
            for (name, value) in &raw {
                if is_alias(value) {
                    return Err(ApiError::not_found(format!(
                        "{name} {value:?} names nothing: ids are written one way (no sign, no leading zeros, no decimal point, UUIDs as 8-4-4-4-12 hex)"
                    )));
                }
            }
        }
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|rejection| ApiError::new("invalid_request", scrub(&rejection.body_text())))
    }
}

/// Whether a path parameter is another spelling of a number or a UUID:
/// a number with a sign, leading zeros or a zero fraction (`+1`, `01`,
/// `1.0`); a UUID other than 36 characters of 8-4-4-4-12 hex. Anything
/// else is what it is (and a wrong type is refused as one).
fn is_alias(value: &str) -> bool {
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    let unsigned = value.strip_prefix('+').unwrap_or(value);
    let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if digits(integer) && fraction.bytes().all(|byte| byte == b'0') {
        let signed = unsigned.len() != value.len();
        let pointed = unsigned.contains('.');
        let padded = integer.len() > 1 && integer.starts_with('0');
        return signed || pointed || padded;
    }
    if value.parse::<mercato_engine::Uuid>().is_ok() {
        return value.len() != 36
            || !value
                .char_indices()
                .all(|(index, c)| matches!(index, 8 | 13 | 18 | 23) == (c == '-'));
    }
    false
}

/// Query parameters (unknown ones are refused where the type says so).
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::new("invalid_request", scrub(&rejection.body_text())))
    }
}

/// The raw request body, bounded by the body limit, for routes that need
/// its exact bytes (a signed webhook).
pub(crate) struct RawBody(pub(crate) Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        body_bytes(request, state).await.map(RawBody)
    }
}
