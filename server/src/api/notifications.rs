//! Notifications: list them (an admin any, a customer their own), read
//! one, and retry a failed one (admin). They are made by the engine's
//! notification runner from the event log, never through the API.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use mercato_engine::{
    Notification, NotificationFilter, NotificationId, OrderId, UserId, Uuid, Write,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::cursor;
use crate::api::products::page_limit;
use crate::api::write::{Rendered, run_write};
use crate::auth::{Admin, Caller, Principal};
use crate::extract::{ApiPath, ApiQuery};
use crate::idempotency::IdempotencyContext;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// A notification.
#[derive(Serialize, ToSchema)]
pub(crate) struct NotificationBody {
    id: Uuid,
    /// `order_confirmation`, `payment_receipt`, `payment_failed`,
    /// `shipping_update` or `order_cancelled`.
    #[schema(example = "order_confirmation")]
    kind: &'static str,
    order_id: Uuid,
    user_id: String,
    /// `store`, `webhook` or `email`.
    #[schema(example = "email")]
    channel: &'static str,
    /// The user id (store), the URL (webhook) or the address (email);
    /// `null` when the order gave none.
    recipient: Option<String>,
    subject: String,
    /// Plain text.
    body: String,
    /// `pending`, `sent` or `failed`.
    #[schema(example = "sent")]
    status: &'static str,
    /// Delivery attempts made (0 for `store`).
    attempts: u32,
    /// The most recent attempts (at most 16), oldest first.
    attempt_log: Vec<AttemptBody>,
    /// Why the last attempt failed, or why it cannot be sent.
    last_error: Option<String>,
    /// RFC 3339: when the next attempt is due (`pending` only).
    next_attempt_at: Option<String>,
    /// The `seq` of the event it was made from.
    event_seq: u64,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339; `null` until delivered.
    sent_at: Option<String>,
}

/// One delivery attempt.
#[derive(Serialize, ToSchema)]
pub(crate) struct AttemptBody {
    /// RFC 3339.
    at: String,
    /// `null` when it was delivered.
    error: Option<String>,
}

impl From<&Notification> for NotificationBody {
    fn from(notification: &Notification) -> NotificationBody {
        NotificationBody {
            id: notification.id.0,
            kind: notification.kind.as_str(),
            order_id: notification.order_id.0,
            user_id: notification.user_id.clone(),
            channel: notification.channel.as_str(),
            recipient: notification.recipient.clone(),
            subject: notification.subject.clone(),
            body: notification.body.clone(),
            status: notification.status.as_str(),
            attempts: notification.attempts,
            attempt_log: notification
                .attempt_log
                .iter()
                .map(|attempt| AttemptBody {
                    at: attempt.at.to_rfc3339(),
                    error: attempt.error.clone(),
                })
                .collect(),
            last_error: notification.last_error.clone(),
            next_attempt_at: notification.next_attempt_at.map(|time| time.to_rfc3339()),
            event_seq: notification.event_seq,
            created_at: notification.created_at.to_rfc3339(),
            sent_at: notification.sent_at.map(|time| time.to_rfc3339()),
        }
    }
}

/// A page of notifications, newest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct NotificationPageBody {
    items: Vec<NotificationBody>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// Which notifications to list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListNotifications {
    /// Only this user's. A customer sees only their own (another user's
    /// answers 404); without it, a customer gets their own and an admin
    /// everyone's.
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    user_id: Option<String>,
    /// Only those about this order.
    order_id: Option<Uuid>,
    /// Page size: default 50, larger values are clamped to 500.
    #[param(minimum = 1)]
    limit: Option<usize>,
    /// From a previous page's `next_cursor`.
    #[param(pattern = r"^n[0-9a-f]{32}$")]
    cursor: Option<String>,
}

/// List notifications.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications",
    params(ListNotifications),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page, newest first", body = NotificationPageBody),
        (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A customer asked for another user's", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_notifications(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<ListNotifications>,
) -> Result<Json<NotificationPageBody>, ApiError> {
    let user_id = match (&caller, query.user_id) {
        (_, Some(user_id)) => {
            UserId::new(user_id.as_str())?;
            if !caller.may_act_for(&user_id) {
                // Like another user's order: not found, never forbidden.
                return Err(ApiError::not_found(format!(
                    "no notifications of user {user_id} for this token"
                )));
            }
            Some(user_id)
        }
        (Principal::Customer { user_id }, None) => Some(user_id.clone()),
        (Principal::Admin, None) => None,
    };
    let mut filter = match user_id {
        Some(user_id) => NotificationFilter::user(user_id),
        None => NotificationFilter::all(),
    };
    if let Some(order_id) = query.order_id {
        filter = filter.order(OrderId(order_id));
    }
    let limit = page_limit(query.limit)?;
    let before = query
        .cursor
        .as_deref()
        .map(|cursor| cursor::NOTIFICATIONS.decode(cursor))
        .transpose()?
        .map(NotificationId::from_u128);
    let page = state.engine.notifications(&filter, before, limit)?;
    Ok(Json(NotificationPageBody {
        items: page.items.iter().map(NotificationBody::from).collect(),
        next_cursor: page
            .next_before
            .map(|before| cursor::NOTIFICATIONS.encode(before.as_u128())),
    }))
}

/// Read a notification.
#[utoipa::path(get, path = "/api/v1/notifications/{id}", tag = "notifications",
    params(("id" = Uuid, Path, description = "Notification id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The notification", body = NotificationBody),
        (status = 400, description = "Not a notification id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown, or another user's", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_notification(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<NotificationBody>, ApiError> {
    let id = NotificationId(id);
    match state.engine.notification(id)? {
        Some(notification) if caller.may_act_for(&notification.user_id) => {
            Ok(Json(NotificationBody::from(&notification)))
        }
        _ => Err(ApiError::from(mercato_engine::Error::NotificationNotFound(
            id,
        ))),
    }
}

/// Retry a failed notification.
#[utoipa::path(post, path = "/api/v1/notifications/{id}/retry", tag = "notifications",
    params(("id" = Uuid, Path, description = "Notification id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Back to `pending`, due now, with a fresh allowance of attempts", body = NotificationBody),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown notification", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_state`: not `failed`; `state` holds its status", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn retry_notification(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<Uuid>,
    context: Option<Extension<IdempotencyContext>>,
) -> Result<Response, ApiError> {
    let write = Write::retry_notification(NotificationId(id));
    let response = run_write(&state, context, write, |outcome| {
        Rendered::outcome(outcome, StatusCode::OK, |notification| {
            NotificationBody::from(notification)
        })
    })
    .await;
    if let Some(notifications) = state.notifications() {
        notifications.wake();
    }
    Ok(response)
}
