//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::ApiError;
use crate::state::AppState;

/// A health answer.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok` or `ready`.
    status: &'static str,
    /// Where replication stands, when this server replicates (`/readyz`).
    #[serde(skip_serializing_if = "Option::is_none")]
    replication: Option<crate::replication::ReplicationReport>,
}

/// `GET /healthz`: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        replication: None,
    })
}

/// `GET /readyz`: storage (and the search index, when there is one) is open
/// and takes writes (a full or failing disk makes the server unready until
/// the engine has recovered, which it does by itself).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 503, description = "Starting, stopping (`shutting_down`), the search index opening, rebuilding or catching up with the log as it was at start (`search_unavailable`), or the store cannot take writes for now, e.g. the disk is full (`storage_unavailable`); reads keep working and writes resume by themselves", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    if !state.engine.is_healthy() {
        ApiError::new(
            "storage_unavailable",
            "the store cannot take writes for now (for example, the disk is full); \
             it recovers by itself once writes succeed again",
        )
        .into_response()
    } else if !state.is_search_ready() {
        ApiError::new(
            "search_unavailable",
            "the search index is opening, rebuilding or catching up with the store",
        )
        .into_response()
    } else if let Some(reason) = state.engine.fenced() {
        ApiError::new("not_primary", format!("this primary was deposed: {reason}")).into_response()
    } else if state
        .replication
        .as_ref()
        .is_some_and(|replication| !replication.is_ready(&state.engine))
    {
        ApiError::new(
            "replica_behind",
            "this follower is installing the primary's snapshot, or stopped following \
             (GET /api/v1/replication, and the server's log, say which)",
        )
        .into_response()
    } else if state.is_ready() {
        let replication = state
            .replication
            .as_ref()
            .map(|replication| replication.report(&state.engine));
        Json(Health {
            status: "ready",
            replication,
        })
        .into_response()
    } else {
        ApiError::new("shutting_down", "the server is starting or stopping").into_response()
    }
}
