//! `/metrics`: request counts and latencies by route, and the writer's
//! figures (queue depth, batch sizes, commit latency, reservations by
//! outcome), in the Prometheus text format.

use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mercato_engine::{
    BatchReport, LogSyncReport, Notification, NotificationChannel, NotificationObserver,
    WriterObserver,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    kind: &'static str,
    channel: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    channel: &'static str,
    outcome: &'static str,
}

/// Every figure `/metrics` shows. Also the engine's [`WriterObserver`].
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram>,
    queue_depth: Gauge,
    batch_commands: Histogram,
    commit_seconds: Histogram,
    syncs: Counter,
    log_sync_commands: Histogram,
    log_sync_seconds: Histogram,
    reservations: Family<OutcomeLabels, Counter>,
    notifications_created: Family<NotificationLabels, Counter>,
    notifications_sent: Family<ChannelLabels, Counter>,
    notifications_failed: Family<ChannelLabels, Counter>,
    notification_delivery_seconds: Family<ChannelLabels, Histogram>,
    notification_attempts: Family<AttemptLabels, Counter>,
    replication_lsn: Gauge,
    replication_replicated_lsn: Gauge,
    replication_lag_records: Gauge,
    replication_lag_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 18))
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, registered.
    pub fn new() -> Metrics {
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let queue_depth = Gauge::default();
        let batch_commands = Histogram::new(exponential_buckets(1.0, 2.0, 15));
        let commit_seconds = latency_histogram();
        let syncs = Counter::default();
        let log_sync_commands = Histogram::new(exponential_buckets(1.0, 2.0, 15));
        let log_sync_seconds = latency_histogram();
        let reservations = Family::<OutcomeLabels, Counter>::default();
        let notifications_created = Family::<NotificationLabels, Counter>::default();
        let notifications_sent = Family::<ChannelLabels, Counter>::default();
        let notifications_failed = Family::<ChannelLabels, Counter>::default();
        // From 1 ms to about 9 hours: a delivery may wait out its retries.
        let notification_delivery_seconds =
            Family::<ChannelLabels, Histogram>::new_with_constructor(
                (|| Histogram::new(exponential_buckets(0.001, 3.0, 18))) as fn() -> Histogram,
            );
        let notification_attempts = Family::<AttemptLabels, Counter>::default();
        let replication_lsn = Gauge::default();
        let replication_replicated_lsn = Gauge::default();
        let replication_lag_records = Gauge::default();
        let replication_lag_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        let mut registry = Registry::with_prefix("mercato");
        registry.register(
            "replication_lsn",
            "The last durable write-ahead log record here (applied, on a follower)",
            replication_lsn.clone(),
        );
        registry.register(
            "replication_replicated_lsn",
            "Primary: the last record JetStream acknowledged; follower: the last applied",
            replication_replicated_lsn.clone(),
        );
        registry.register(
            "replication_lag_records",
            "Primary: records not yet acknowledged by JetStream; follower: records in the stream not yet applied",
            replication_lag_records.clone(),
        );
        registry.register(
            "replication_lag_seconds",
            "Follower: the age of the oldest record not yet applied (0 when caught up)",
            replication_lag_seconds.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            request_seconds.clone(),
        );
        registry.register(
            "writer_queue_depth",
            "Commands waiting for the writer",
            queue_depth.clone(),
        );
        registry.register(
            "writer_batch_commands",
            "Commands per committed batch",
            batch_commands.clone(),
        );
        registry.register(
            "writer_commit_duration_seconds",
            "Time in redb's commit, sync included",
            commit_seconds.clone(),
        );
        registry.register(
            "writer_syncs",
            "Commits that synced the store (checkpoints, or periodic syncs)",
            syncs.clone(),
        );
        registry.register(
            "log_sync_commands",
            "Commands made durable per sync of the write-ahead log",
            log_sync_commands.clone(),
        );
        registry.register(
            "log_sync_duration_seconds",
            "Time to append to the write-ahead log and sync it",
            log_sync_seconds.clone(),
        );
        registry.register(
            "reservations",
            "Reservations by outcome",
            reservations.clone(),
        );
        registry.register(
            "notifications_created",
            "Notifications made, by kind and channel",
            notifications_created.clone(),
        );
        registry.register(
            "notifications_sent",
            "Notifications delivered, by channel",
            notifications_sent.clone(),
        );
        registry.register(
            "notifications_failed",
            "Notifications given up on after their attempts, by channel",
            notifications_failed.clone(),
        );
        registry.register(
            "notification_delivery_duration_seconds",
            "From a notification's creation to its delivery, by channel",
            notification_delivery_seconds.clone(),
        );
        registry.register(
            "notification_attempts",
            "Delivery attempts, by channel and outcome",
            notification_attempts.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            replication_lsn,
            replication_replicated_lsn,
            replication_lag_records,
            replication_lag_seconds,
            notifications_created,
            notifications_sent,
            notifications_failed,
            notification_delivery_seconds,
            notification_attempts,
            requests,
            request_seconds,
            queue_depth,
            batch_commands,
            commit_seconds,
            syncs,
            log_sync_commands,
            log_sync_seconds,
            reservations,
        }
    }

    /// Sets the replication figures shown by the next render.
    pub(crate) fn set_replication(&self, report: &crate::replication::ReplicationReport) {
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.replication_lsn.set(gauge(report.lsn));
        self.replication_replicated_lsn
            .set(gauge(report.replicated_lsn));
        self.replication_lag_records.set(gauge(report.lag_records));
        self.replication_lag_seconds.set(report.lag_seconds);
    }

    fn render(&self, queue_depth: usize) -> String {
        self.queue_depth
            .set(i64::try_from(queue_depth).unwrap_or(i64::MAX));
        let mut text = String::new();
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        encode(&mut text, &registry).expect("writing to a String cannot fail");
        text
    }
}

impl WriterObserver for Metrics {
    fn log_synced(&self, report: &LogSyncReport) {
        self.log_sync_commands.observe(report.commands as f64);
        self.log_sync_seconds.observe(report.latency.as_secs_f64());
    }

    fn batch_committed(&self, report: &BatchReport) {
        if report.commands > 0 {
            self.batch_commands.observe(report.commands as f64);
        }
        self.commit_seconds
            .observe(report.commit_latency.as_secs_f64());
        if report.synced {
            self.syncs.inc();
        }
        for (outcome, count) in [
            ("created", report.reservations_created),
            ("rejected", report.reservations_rejected),
            ("committed", report.reservations_committed),
            ("released", report.reservations_released),
            ("expired", report.reservations_expired),
        ] {
            if count > 0 {
                self.reservations
                    .get_or_create(&OutcomeLabels { outcome })
                    .inc_by(count);
            }
        }
    }
}

impl NotificationObserver for Metrics {
    fn created(&self, notification: &Notification) {
        self.notifications_created
            .get_or_create(&NotificationLabels {
                kind: notification.kind.as_str(),
                channel: notification.channel.as_str(),
            })
            .inc();
    }

    fn sent(&self, notification: &Notification) {
        let labels = ChannelLabels {
            channel: notification.channel.as_str(),
        };
        self.notifications_sent.get_or_create(&labels).inc();
        if let Some(sent_at) = notification.sent_at {
            let millis = sent_at
                .as_millis()
                .saturating_sub(notification.created_at.as_millis());
            self.notification_delivery_seconds
                .get_or_create(&labels)
                .observe(millis as f64 / 1_000.0);
        }
    }

    fn failed(&self, notification: &Notification) {
        self.notifications_failed
            .get_or_create(&ChannelLabels {
                channel: notification.channel.as_str(),
            })
            .inc();
    }

    fn attempted(&self, channel: NotificationChannel, _duration: std::time::Duration, ok: bool) {
        self.notification_attempts
            .get_or_create(&AttemptLabels {
                channel: channel.as_str(),
                outcome: if ok { "sent" } else { "failed" },
            })
            .inc();
    }
}

/// The `method` label: one of the standard methods, else `other`.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts and times every request under its route pattern.
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // No label takes its value from the client: a made-up method folds
    // into `other`, an unmatched path into `unmatched`.
    let method = method_label(request.method()).to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let metrics = &state.metrics;
    metrics
        .request_seconds
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// `GET /metrics`
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    if let Some(replication) = &state.replication {
        state
            .metrics
            .set_replication(&replication.report(&state.engine));
    }
    let text = state.metrics.render(state.engine.queue_depth());
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
