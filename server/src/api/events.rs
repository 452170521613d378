//! `GET /api/v1/events`: the event log, in commit order.

use axum::Json;
use axum::extract::State;
use mercato_engine::EventEnvelope;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::api::products::page_limit;
use crate::auth::Admin;
use crate::extract::ApiQuery;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// One event.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventBody {
    /// 1, 2, 3, ... in commit order, no gaps.
    seq: u64,
    /// e.g. `inventory.reserved`.
    r#type: &'static str,
    /// The ids the event concerns and its figures.
    #[schema(value_type = Object)]
    payload: Value,
    /// RFC 3339.
    created_at: String,
}

impl From<EventEnvelope> for EventBody {
    fn from(envelope: EventEnvelope) -> EventBody {
        // The event serializes as {"variant": {fields}}; the payload is the fields.
        let mut payload = match serde_json::to_value(&envelope.event) {
            Ok(Value::Object(map)) if map.len() == 1 => map
                .into_iter()
                .next()
                .map_or(Value::Null, |(_, fields)| fields),
            Ok(other) => other,
            Err(_) => Value::Null,
        };
        // Times are RFC 3339 strings everywhere in the API.
        if let Some(expires_at) = payload.get_mut("expires_at")
            && let Some(millis) = expires_at.as_u64()
        {
            *expires_at = Value::String(mercato_engine::Timestamp(millis).to_rfc3339());
        }
        EventBody {
            seq: envelope.seq,
            r#type: envelope.event.type_name(),
            payload,
            created_at: envelope.created_at.to_rfc3339(),
        }
    }
}

/// A page of events.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventPage {
    items: Vec<EventBody>,
    /// The last returned `seq` while more events exist; `null` at the end.
    next_cursor: Option<String>,
}

/// Reading parameters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListEvents {
    /// Events with `seq` greater than this (default 0).
    after: Option<u64>,
    /// Page size: default 50, larger values are clamped to 500.
    #[param(minimum = 1)]
    limit: Option<usize>,
}

/// Read the event log.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(ListEvents),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "Invalid parameters", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_events(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<ListEvents>,
) -> Result<Json<EventPage>, ApiError> {
    let limit = page_limit(query.limit)?;
    let events = state.engine.events_after(query.after.unwrap_or(0), limit)?;
    let last = events.last().map(|event| event.seq);
    let next_cursor = last
        .filter(|&last| last < state.engine.last_event_seq())
        .map(|last| last.to_string());
    Ok(Json(EventPage {
        items: events.into_iter().map(EventBody::from).collect(),
        next_cursor,
    }))
}
