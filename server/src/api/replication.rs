//! Replication's routes: where it stands, and the promotion of a follower.

use axum::Json;
use axum::extract::State;

use crate::auth::Admin;
use crate::problem::ApiError;
use crate::replication::ReplicationReport;
use crate::state::AppState;

/// `GET /api/v1/replication`: this server's role and position, and how far
/// behind it is.
#[utoipa::path(get, path = "/api/v1/replication", tag = "operations",
    responses(
        (status = 200, description = "Where replication stands", body = ReplicationReport),
        (status = 404, description = "This server does not replicate", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn replication_status(
    State(state): State<AppState>,
) -> Result<Json<ReplicationReport>, ApiError> {
    let replication = state.replication.as_ref().ok_or_else(|| {
        ApiError::not_found("this server does not replicate (no --nats or --follow)")
    })?;
    Ok(Json(replication.report(&state.engine)))
}

/// `POST /api/v1/replication/promote`: makes this follower the primary. It
/// first applies every record in the stream, then takes the stream over
/// (a deposed primary's next publish is refused), then takes writes.
#[utoipa::path(post, path = "/api/v1/replication/promote", tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Promoted: now the primary", body = ReplicationReport),
        (status = 401, description = "No valid token", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "This server does not replicate", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a follower, or the old primary published meanwhile (`conflict`): retry", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn promote(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<ReplicationReport>, ApiError> {
    let replication = state.replication.as_ref().ok_or_else(|| {
        ApiError::not_found("this server does not replicate (no --nats or --follow)")
    })?;
    replication.promote(&state.engine).await?;
    Ok(Json(replication.report(&state.engine)))
}
