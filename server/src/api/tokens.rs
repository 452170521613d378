//! `POST /api/v1/auth/tokens`: an admin mints a customer token.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mercato_engine::UserId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Admin;
use crate::extract::ApiJson;
use crate::problem::ApiError;
use crate::state::AppState;

/// The default lifetime of a customer token.
const TOKEN_TTL_DEFAULT_SECONDS: u64 = 86_400;
/// The longest lifetime of a customer token (one year).
const TOKEN_TTL_MAX_SECONDS: u64 = 365 * 86_400;

/// What to mint.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateToken {
    /// The user the token acts for (1 to 255 characters).
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    user_id: String,
    /// Lifetime in seconds (default 86400, at most 31536000).
    #[schema(minimum = 1, maximum = 31_536_000)]
    ttl_seconds: Option<u64>,
}

/// A minted token.
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenBody {
    /// The bearer token.
    token: String,
    /// The user it acts for.
    user_id: String,
    /// When it stops working (RFC 3339).
    expires_at: String,
}

/// Mint a customer token.
#[utoipa::path(post, path = "/api/v1/auth/tokens", tag = "auth", request_body = CreateToken,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Minted", body = TokenBody),
        (status = 400, description = "Invalid request", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    _admin: Admin,
    ApiJson(request): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<TokenBody>), ApiError> {
    // The engine's rule for user ids, so every token names a valid one.
    UserId::new(request.user_id.as_str())?;
    let ttl = request.ttl_seconds.unwrap_or(TOKEN_TTL_DEFAULT_SECONDS);
    if ttl == 0 || ttl > TOKEN_TTL_MAX_SECONDS {
        return Err(ApiError::invalid(
            "ttl_seconds",
            format!("must be between 1 and {TOKEN_TTL_MAX_SECONDS}"),
        ));
    }
    let expires_at = state
        .engine
        .config()
        .clock
        .now()
        .plus(Duration::from_secs(ttl));
    let token = state.auth.mint(&request.user_id, expires_at);
    Ok((
        StatusCode::CREATED,
        Json(TokenBody {
            token,
            user_id: request.user_id,
            expires_at: expires_at.to_rfc3339(),
        }),
    ))
}

/// The demo sign-in: a name or an email address, no password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DemoSignIn {
    /// Who is signing in (1 to 255 characters, no control characters, not
    /// only white space); trimmed, with ASCII letters lower-cased, it
    /// becomes the `user_id` (so `Ada@Example.com` is `ada@example.com`).
    #[schema(min_length = 1, max_length = 255, example = "ada@example.com")]
    name: String,
}

/// Sign in to the demo shop (no password).
///
/// Mints a customer token for the `user_id` named by `name`, valid for a
/// day, with no password: anyone may act as anyone. It exists so that the
/// storefront works out of the box, is off for an embedded router, and is
/// switched off on a server with `--no-demo-sign-in`
/// (`MERCATO_NO_DEMO_SIGN_IN=1`); a real deployment signs people in with
/// its own login and mints their tokens with `POST /api/v1/auth/tokens`.
#[utoipa::path(post, path = "/api/v1/auth/demo-sign-in", tag = "auth", request_body = DemoSignIn,
    responses(
        (status = 201, description = "Signed in: a customer token", body = TokenBody),
        (status = 400, description = "Invalid request", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "`demo_sign_in_disabled`: the operator switched the demo sign-in off", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn demo_sign_in(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<DemoSignIn>,
) -> Result<(StatusCode, Json<TokenBody>), ApiError> {
    if !state.is_demo_sign_in_enabled() {
        return Err(ApiError::new(
            "demo_sign_in_disabled",
            "the demo sign-in is switched off on this server: sign in through the shop's own login",
        ));
    }
    // ASCII only: a lower-cased letter elsewhere may be two characters,
    // and the id must stay within the length the name was checked for.
    let user_id = request.name.trim().to_ascii_lowercase();
    if user_id.is_empty() {
        return Err(ApiError::invalid("name", "must not be blank"));
    }
    UserId::new(user_id.as_str()).map_err(|error| match error {
        mercato_engine::Error::InvalidInput { message, .. } => ApiError::invalid("name", message),
        other => other.into(),
    })?;
    let expires_at = state
        .engine
        .config()
        .clock
        .now()
        .plus(Duration::from_secs(TOKEN_TTL_DEFAULT_SECONDS));
    let token = state.auth.mint(&user_id, expires_at);
    Ok((
        StatusCode::CREATED,
        Json(TokenBody {
            token,
            user_id,
            expires_at: expires_at.to_rfc3339(),
        }),
    ))
}
