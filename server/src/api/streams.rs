//! Server-sent event streams: the event log for the admin
//! (`/api/v1/events/stream`), one order for its owner
//! (`/api/v1/orders/{id}/stream`) and one product's stock for anyone
//! (`/api/v1/inventory/{product_id}/stream`).
//!
//! A stream is long-lived, so it is bounded differently from a request: at
//! most `Limits::streams_max` are open at once (past that, `503
//! too_many_streams`), each follows the log from its own position without
//! saving it, and each ends when the client goes, when the server shuts
//! down ([`Streams::close`]), or (an order's) when the order is final. The
//! request deadline covers a stream only until its headers are sent: the
//! deadline middleware times the handler, which answers at once, and the
//! body is written afterwards.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use mercato_engine::{EventEnvelope, OrderId, OrderStatus, ProductId, Subscription, Uuid};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use utoipa::{IntoParams, ToSchema};

use crate::api::events::EventBody;
use crate::api::inventory::StockBody;
use crate::api::orders::{OrderBody, SagaEntryBody, visible_order};
use crate::auth::{Admin, Caller};
use crate::extract::{ApiPath, ApiQuery};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// How often an idle stream sends a comment line, so that proxies and
/// clients keep it open.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// The most events a stream reads from the log at once.
const STREAM_BATCH_MAX: usize = 200;
/// Messages waiting to be written to one slow client; the stream's task
/// waits (and reads nothing more) while they are.
const STREAM_BUFFER_MAX: usize = 16;
/// The consumer name streams read the log under (they never save a
/// position).
const STREAM_CONSUMER: &str = "http-stream";

/// The open streams: a cap and a way to end them all.
pub(crate) struct Streams {
    permits: Arc<Semaphore>,
    streams_max: usize,
    closing: watch::Sender<bool>,
}

impl Streams {
    pub(crate) fn new(streams_max: usize) -> Streams {
        Streams {
            permits: Arc::new(Semaphore::new(streams_max)),
            streams_max,
            closing: watch::channel(false).0,
        }
    }

    /// Room for one more stream, or `503 too_many_streams`.
    fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        if *self.closing.borrow() {
            return Err(ApiError::new(
                "shutting_down",
                "the server is shutting down",
            ));
        }
        self.permits.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                "too_many_streams",
                format!(
                    "{} event streams are open, the most this server allows; retry later",
                    self.streams_max
                ),
            )
            .with("streams_max", self.streams_max as u64)
        })
    }

    /// Ends every open stream and refuses new ones (at shutdown: the
    /// graceful shutdown waits for responses to finish, and a stream never
    /// would by itself).
    pub(crate) fn close(&self) {
        self.closing.send_replace(true);
    }
}

/// The receiving half of a stream's channel, as the `Stream` that
/// [`Sse`] writes.
struct Outgoing(mpsc::Receiver<SseEvent>);

impl futures_core::Stream for Outgoing {
    type Item = Result<SseEvent, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(context).map(|event| event.map(Ok))
    }
}

/// What a stream's task does with each batch of events: send messages,
/// and say whether the stream should go on.
trait Follow: Send + 'static {
    fn on_events(
        &mut self,
        state: &AppState,
        events: &[EventEnvelope],
    ) -> Result<(Vec<SseEvent>, bool), ApiError>;
}

/// Starts a stream: `first` now, then whatever `follow` makes of the log
/// after `after`, until the client leaves, the server closes streams or
/// `follow` says it is done.
fn start(
    state: &AppState,
    permit: OwnedSemaphorePermit,
    subscription: Subscription,
    first: Vec<SseEvent>,
    mut follow: impl Follow,
    done: bool,
) -> Response {
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER_MAX);
    let mut closing = state.streams.closing.subscribe();
    let state = state.clone();
    let mut subscription = subscription;
    tokio::spawn(async move {
        let _permit = permit;
        let send_all = async |messages: Vec<SseEvent>| {
            for message in messages {
                if sender.send(message).await.is_err() {
                    return false;
                }
            }
            true
        };
        if !send_all(first).await || done {
            return;
        }
        loop {
            let batch = tokio::select! {
                batch = subscription.next_batch(STREAM_BATCH_MAX) => batch,
                () = sender.closed() => return,
                _ = closing.wait_for(|&closing| closing) => return,
            };
            let Ok(events) = batch else {
                // The engine is stopping.
                return;
            };
            match follow.on_events(&state, &events) {
                Ok((messages, go_on)) => {
                    if !send_all(messages).await || !go_on {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(detail = error.detail(), "an event stream ended on an error");
                    return;
                }
            }
        }
    });
    Sse::new(Outgoing(receiver))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE_INTERVAL))
        .into_response()
}

fn json_event(name: &'static str, body: &impl Serialize) -> SseEvent {
    SseEvent::default()
        .event(name)
        .json_data(body)
        .unwrap_or_else(|_| SseEvent::default().comment("unserializable"))
}

/// Where to start the event log stream.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StreamEvents {
    /// Send the events with `seq` greater than this first (default: the
    /// `Last-Event-ID` header, else the end of the log: only new events).
    after: Option<u64>,
}

struct FollowLog;

impl Follow for FollowLog {
    fn on_events(
        &mut self,
        _state: &AppState,
        events: &[EventEnvelope],
    ) -> Result<(Vec<SseEvent>, bool), ApiError> {
        Ok((events.iter().cloned().map(log_event).collect(), true))
    }
}

fn log_event(envelope: EventEnvelope) -> SseEvent {
    let seq = envelope.seq;
    let name = envelope.event.type_name();
    json_event(name, &EventBody::from(envelope)).id(seq.to_string())
}

/// Follow the event log as server-sent events.
///
/// Each event is `id:` its `seq`, `event:` its type, `data:` the JSON item
/// of `GET /api/v1/events`. First the events after `after` (or after the
/// `Last-Event-ID` header), then each new one once it is durable. A
/// comment line every 15 s keeps an idle connection open.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events", params(StreamEvents,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this `seq` (when `after` is absent)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`text/event-stream` of events, each `data:` an event item", content_type = "text/event-stream", body = String),
        (status = 400, description = "`after` past the end of the log, or not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`too_many_streams`: the cap on open streams is reached; `Retry-After` says when to try again", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn stream_events(
    State(state): State<AppState>,
    _admin: Admin,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<StreamEvents>,
) -> Result<Response, ApiError> {
    let after = match query.after {
        Some(after) => after,
        None => match headers.get("last-event-id") {
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|value| value.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::invalid("Last-Event-ID", "must be an event seq"))?,
            None => state.engine.last_event_seq(),
        },
    };
    let subscription = state
        .engine
        .subscribe_after(STREAM_CONSUMER, after)
        .map_err(|error| match error {
            mercato_engine::Error::InvalidInput { message, .. } => {
                ApiError::invalid("after", message)
            }
            other => other.into(),
        })?;
    let permit = state.streams.admit()?;
    Ok(start(
        &state,
        permit,
        subscription,
        Vec::new(),
        FollowLog,
        false,
    ))
}

/// What an order stream sends: the order and its saga log.
#[derive(Serialize, ToSchema)]
pub(crate) struct OrderSnapshot {
    order: OrderBody,
    /// The saga log, in the order it was written.
    saga: Vec<SagaEntryBody>,
}

struct FollowOrder {
    order_id: OrderId,
}

/// True once nothing more can happen to an order.
fn is_final(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Delivered | OrderStatus::Cancelled | OrderStatus::PaymentFailed
    )
}

fn order_snapshot(state: &AppState, order_id: OrderId) -> Result<(SseEvent, bool), ApiError> {
    let order = state
        .engine
        .order(order_id)?
        .ok_or_else(|| ApiError::not_found(format!("order {order_id} not found")))?;
    let saga = state.engine.saga(order_id)?;
    let done = is_final(order.status);
    let snapshot = OrderSnapshot {
        order: OrderBody::from(&order),
        saga: saga.into_iter().map(SagaEntryBody::from).collect(),
    };
    Ok((json_event("order", &snapshot), done))
}

impl Follow for FollowOrder {
    fn on_events(
        &mut self,
        state: &AppState,
        events: &[EventEnvelope],
    ) -> Result<(Vec<SseEvent>, bool), ApiError> {
        if !events
            .iter()
            .any(|envelope| envelope.event.order_id() == Some(self.order_id))
        {
            return Ok((Vec::new(), true));
        }
        let (snapshot, done) = order_snapshot(state, self.order_id)?;
        Ok((vec![snapshot], !done))
    }
}

/// Follow an order as server-sent events.
///
/// Each `event: order` carries `data:` `{"order", "saga"}`: the order as
/// `GET /api/v1/orders/{id}` answers it and its saga log. The first is
/// sent at once, then one after each change to the order; the stream ends
/// after the order reaches a final status (`DELIVERED`, `CANCELLED`,
/// `PAYMENT_FAILED`).
#[utoipa::path(get, path = "/api/v1/orders/{id}/stream", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`text/event-stream` of `order` events, each `data:` an order snapshot", content_type = "text/event-stream", body = OrderSnapshot),
        (status = 400, description = "Not an order id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown, or another user's", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`too_many_streams`: the cap on open streams is reached; `Retry-After` says when to try again", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn stream_order(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let order_id = OrderId(id);
    visible_order(&state, &caller, order_id)?;
    // The log's head before the snapshot: a change after it is seen again.
    let head = state.engine.last_event_seq();
    let (first, done) = order_snapshot(&state, order_id)?;
    let subscription = state.engine.subscribe_after(STREAM_CONSUMER, head)?;
    let permit = state.streams.admit()?;
    Ok(start(
        &state,
        permit,
        subscription,
        vec![first],
        FollowOrder { order_id },
        done,
    ))
}

struct FollowStock {
    product_id: ProductId,
    last: Option<(u64, u64)>,
}

impl FollowStock {
    /// The product's stock as an event, when it changed since the last one
    /// sent; `None` in the second place once the product is archived.
    fn snapshot(&mut self, state: &AppState) -> Result<(Vec<SseEvent>, bool), ApiError> {
        let Some(stock) = state.engine.stock(self.product_id)? else {
            let gone = ApiError::not_found(format!("product {} not found", self.product_id));
            return Ok((vec![json_event("gone", &gone_body(&gone))], false));
        };
        let figures = (stock.on_hand, stock.reserved);
        if self.last == Some(figures) {
            return Ok((Vec::new(), true));
        }
        self.last = Some(figures);
        Ok((vec![json_event("stock", &StockBody::from(stock))], true))
    }
}

fn gone_body(error: &ApiError) -> serde_json::Value {
    serde_json::json!({"code": error.code(), "detail": error.detail()})
}

impl Follow for FollowStock {
    fn on_events(
        &mut self,
        state: &AppState,
        events: &[EventEnvelope],
    ) -> Result<(Vec<SseEvent>, bool), ApiError> {
        if !events
            .iter()
            .any(|envelope| envelope.event.product_ids().contains(&self.product_id))
        {
            return Ok((Vec::new(), true));
        }
        self.snapshot(state)
    }
}

/// Follow a product's stock as server-sent events.
///
/// Each `event: stock` carries `data:` the stock as `GET
/// /api/v1/inventory/{product_id}` answers it: the first at once, then
/// one whenever `on_hand` or `reserved` changes. When the product is
/// archived, one `event: gone` ends the stream.
#[utoipa::path(get, path = "/api/v1/inventory/{product_id}/stream", tag = "inventory",
    params(("product_id" = u64, Path, description = "Product id")),
    responses(
        (status = 200, description = "`text/event-stream` of `stock` events, each `data:` the product's stock", content_type = "text/event-stream", body = StockBody),
        (status = 400, description = "Not a product id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or archived product", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`too_many_streams`: the cap on open streams is reached; `Retry-After` says when to try again", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn stream_stock(
    State(state): State<AppState>,
    ApiPath(product_id): ApiPath<u64>,
) -> Result<Response, ApiError> {
    let product_id = ProductId(product_id);
    let head = state.engine.last_event_seq();
    if state.engine.stock(product_id)?.is_none() {
        return Err(ApiError::not_found(format!(
            "product {product_id} not found"
        )));
    }
    let mut follow = FollowStock {
        product_id,
        last: None,
    };
    let (first, go_on) = follow.snapshot(&state)?;
    let subscription = state.engine.subscribe_after(STREAM_CONSUMER, head)?;
    let permit = state.streams.admit()?;
    Ok(start(&state, permit, subscription, first, follow, !go_on))
}
