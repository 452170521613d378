//! [`Notifications`]: the runner that makes notifications from the event
//! log and delivers them (see the module above for the guarantees).
//!
//! Two loops on the Tokio runtime:
//! - **creation** follows the log as its consumer; for each batch it reads
//!   the orders concerned, renders, and sends one writer command that makes
//!   the notifications and saves its position together;
//! - **delivery** takes the `pending` notifications that are due, sends
//!   them through their channel's [`Notifier`] (at most
//!   `sends_at_once_max` at a time, each under `send_timeout`), and records
//!   every attempt's outcome in one writer command.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng as _;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::engine::Engine;
use crate::error::Error;
use crate::event::{Event, EventEnvelope};
use crate::ids::{NotificationId, OrderId};
use crate::notifications::templates::{
    LineContext, OrderContext, PaymentContext, TemplateContext, Templates,
};
use crate::notifications::writes::{AttemptOutcome, NewNotification, NotificationCommand};
use crate::notifications::{
    NOTIFICATION_ATTEMPTS_MAX, Notification, NotificationChannel, NotificationKind,
    NotificationStatus,
};
use crate::orders::Order;
use crate::writer::Command;

/// What [`Notifier::send`] answers.
pub type NotifyFuture<'a> = Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>>;

/// Delivers notifications of one channel (webhook, email). Small and
/// object-safe: the server has an HTTP and an SMTP one; an embedder may
/// bring their own.
pub trait Notifier: Send + Sync + 'static {
    /// The channel it delivers (not [`NotificationChannel::Store`], which
    /// needs no notifier).
    fn channel(&self) -> NotificationChannel;

    /// Who receives `order`'s notifications on this channel; `None` when
    /// nobody can (an order without an email), which makes them `failed`
    /// at once with that reason.
    fn recipient(&self, order: &Order) -> Option<String>;

    /// Sends one notification. Called again after a failure (with backoff)
    /// and, after a crash between a send and its record, for a notification
    /// already sent: receivers should deduplicate by its id.
    fn send<'a>(&'a self, notification: &'a Notification) -> NotifyFuture<'a>;
}

/// Why a send failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NotifyError {
    /// What went wrong, kept on the attempt.
    pub message: String,
    /// No later attempt can succeed: the notification fails at once.
    pub permanent: bool,
}

impl NotifyError {
    /// A failure worth retrying (a timeout, a refused connection, a 5xx).
    pub fn transient(message: impl Into<String>) -> NotifyError {
        NotifyError {
            message: message.into(),
            permanent: false,
        }
    }

    /// A failure no retry can mend.
    pub fn permanent(message: impl Into<String>) -> NotifyError {
        NotifyError {
            message: message.into(),
            permanent: true,
        }
    }
}

/// Told what the runner does, for metrics. Called on the runner's tasks;
/// keep it quick. Every method does nothing by default.
pub trait NotificationObserver: Send + Sync + 'static {
    /// A notification was made (a `store` one is `sent` already).
    fn created(&self, notification: &Notification) {
        let _ = notification;
    }

    /// A notification was delivered (`sent_at - created_at` is its
    /// delivery latency).
    fn sent(&self, notification: &Notification) {
        let _ = notification;
    }

    /// A notification failed for good (until an admin retries it).
    fn failed(&self, notification: &Notification) {
        let _ = notification;
    }

    /// One send attempt took `duration`.
    fn attempted(&self, channel: NotificationChannel, duration: Duration, ok: bool) {
        let _ = (channel, duration, ok);
    }
}

/// How the runner works. A plain struct with documented defaults.
#[derive(Clone)]
#[non_exhaustive]
pub struct NotificationsConfig {
    /// The consumer name under which it saves its position. Default:
    /// `notifications`.
    pub consumer: String,
    /// Whether notifications are kept in the store channel. Default: true.
    pub store: bool,
    /// One notifier per other channel in use. Default: none.
    pub notifiers: Vec<Arc<dyn Notifier>>,
    /// What notifications say. Default: [`Templates::defaults`].
    pub templates: Templates,
    /// The shop's name, as templates show it. Default: `Mercato`.
    pub store_name: String,
    /// Attempts before a notification is `failed` (1 to 100). Default: 8.
    pub attempts_max: u32,
    /// The wait before the second attempt; it doubles each time, with
    /// jitter. Default: 1 s.
    pub backoff_initial: Duration,
    /// The longest wait between attempts. Default: 5 minutes.
    pub backoff_max: Duration,
    /// The longest one send may take. Default: 10 s.
    pub send_timeout: Duration,
    /// The most events read per batch. Default: 256.
    pub events_per_batch_max: usize,
    /// The most sends in flight at once. Default: 32.
    pub sends_at_once_max: usize,
    /// Told about every notification made, sent and failed.
    pub observer: Option<Arc<dyn NotificationObserver>>,
}

impl Default for NotificationsConfig {
    fn default() -> NotificationsConfig {
        NotificationsConfig {
            consumer: "notifications".to_owned(),
            store: true,
            notifiers: Vec::new(),
            templates: Templates::defaults(),
            store_name: "Mercato".to_owned(),
            attempts_max: 8,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            send_timeout: Duration::from_secs(10),
            events_per_batch_max: 256,
            sends_at_once_max: 32,
            observer: None,
        }
    }
}

impl NotificationsConfig {
    fn validate(&self) -> Result<(), Error> {
        if self.attempts_max == 0 || self.attempts_max > NOTIFICATION_ATTEMPTS_MAX {
            return Err(Error::invalid(
                "notifications.attempts_max",
                format!("between 1 and {NOTIFICATION_ATTEMPTS_MAX}"),
            ));
        }
        if self.events_per_batch_max == 0 || self.events_per_batch_max > 10_000 {
            return Err(Error::invalid(
                "notifications.events_per_batch_max",
                "between 1 and 10000",
            ));
        }
        if self.sends_at_once_max == 0 || self.sends_at_once_max > 1_024 {
            return Err(Error::invalid(
                "notifications.sends_at_once_max",
                "between 1 and 1024",
            ));
        }
        if self.send_timeout.is_zero() || self.backoff_initial > self.backoff_max {
            return Err(Error::invalid(
                "notifications.send_timeout",
                "a timeout above 0 and backoff_initial <= backoff_max",
            ));
        }
        let mut seen = Vec::new();
        for notifier in &self.notifiers {
            let channel = notifier.channel();
            if channel == NotificationChannel::Store || seen.contains(&channel) {
                return Err(Error::invalid(
                    "notifications.notifiers",
                    format!(
                        "at most one notifier per channel, none for store (got {} twice or for store)",
                        channel.as_str()
                    ),
                ));
            }
            seen.push(channel);
        }
        Ok(())
    }
}

/// The notification runner: started once per engine, on a Tokio runtime.
#[derive(Clone)]
pub struct Notifications {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    config: NotificationsConfig,
    /// Wakes the delivery loop (new pending notifications, a retry).
    wake: Notify,
    /// True once the runner is asked to stop.
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// Pause after the writer answered `Overloaded` or `StorageUnavailable`.
const WRITE_RETRY_INTERVAL: Duration = Duration::from_millis(100);
/// Pause after a loop failed (a read).
const LOOP_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// The longest an idle delivery loop sleeps before looking again.
const DELIVERY_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The longest a read position goes unsaved while events come in.
const POSITION_SAVE_INTERVAL: Duration = Duration::from_secs(1);

impl Notifications {
    /// Starts the runner on the current Tokio runtime. It resumes from its
    /// saved position and resumes every `pending` delivery. Fails when
    /// `config` is out of range.
    pub fn start(engine: Engine, config: NotificationsConfig) -> Result<Notifications, Error> {
        config.validate()?;
        let subscription = engine.subscribe(&config.consumer)?;
        let inner = Arc::new(Inner {
            engine,
            config,
            wake: Notify::new(),
            stop: watch::Sender::new(false),
            tasks: Mutex::new(Vec::new()),
        });
        let create = tokio::spawn(create_loop(inner.clone(), subscription));
        let deliver = tokio::spawn(deliver_loop(inner.clone()));
        inner
            .tasks
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .extend([create, deliver]);
        Ok(Notifications { inner })
    }

    /// The channels notifications are made for.
    pub fn channels(&self) -> Vec<NotificationChannel> {
        channels(&self.inner.config)
    }

    /// Moves a `failed` notification back to `pending` and delivers it
    /// now. Anything else is [`Error::InvalidNotificationState`].
    pub async fn retry(&self, id: NotificationId) -> Result<Notification, Error> {
        let notification = self.inner.engine.retry_notification(id).await?;
        self.inner.wake.notify_one();
        Ok(notification)
    }

    /// Looks for due deliveries now (after a retry made elsewhere, e.g.
    /// through [`Engine::retry_notification`]); otherwise the runner looks
    /// at least once a second.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Stops both loops (after the sends in hand are recorded) and waits.
    pub async fn stop(&self) {
        self.inner.stop.send_replace(true);
        let tasks: Vec<_> = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .drain(..)
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Inner {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves once the runner is asked to stop.
    async fn stopped(&self) {
        let mut stop = self.stop.subscribe();
        let _ = stop.wait_for(|stopped| *stopped).await;
    }
}

fn channels(config: &NotificationsConfig) -> Vec<NotificationChannel> {
    let mut channels = Vec::new();
    if config.store {
        channels.push(NotificationChannel::Store);
    }
    channels.extend(config.notifiers.iter().map(|notifier| notifier.channel()));
    channels
}

/// The kind of notification an event makes, if any.
fn kind_of(event: &Event) -> Option<(NotificationKind, OrderId, Option<String>)> {
    Some(match event {
        Event::OrderConfirmed { order_id, .. } => {
            (NotificationKind::OrderConfirmation, *order_id, None)
        }
        Event::PaymentSucceeded { order_id, .. } => {
            (NotificationKind::PaymentReceipt, *order_id, None)
        }
        Event::PaymentFailed {
            order_id, reason, ..
        } => (
            NotificationKind::PaymentFailed,
            *order_id,
            Some(reason.clone()),
        ),
        Event::OrderShipped { order_id, .. } => (NotificationKind::ShippingUpdate, *order_id, None),
        Event::OrderCancelled { order_id, reason } => {
            (NotificationKind::OrderCancelled, *order_id, reason.clone())
        }
        _ => return None,
    })
}

async fn create_loop(inner: Arc<Inner>, mut subscription: crate::Subscription) {
    let consumer = inner.config.consumer.clone();
    let mut unsaved: Option<u64> = None;
    let mut last_save = Instant::now();
    loop {
        let batch = tokio::select! {
            batch = subscription.next_batch(inner.config.events_per_batch_max) => batch,
            () = inner.stopped() => break,
            () = tokio::time::sleep(POSITION_SAVE_INTERVAL), if unsaved.is_some() => {
                if let Some(seq) = unsaved.take()
                    && write_created(&inner, &consumer, seq, Vec::new()).await.is_err()
                {
                    return;
                }
                last_save = Instant::now();
                continue;
            }
        };
        let events = match batch {
            Ok(events) => events,
            Err(Error::ShuttingDown) => break,
            Err(error) => {
                tracing::warn!(%error, "the notification runner cannot read the log; retrying");
                tokio::time::sleep(LOOP_RETRY_INTERVAL).await;
                continue;
            }
        };
        let Some(last) = events.last().map(|envelope| envelope.seq) else {
            continue;
        };
        // A read that fails (the store reopening after a fault) is tried
        // again: skipping the batch would lose its notifications.
        let made = loop {
            match render_batch(&inner, &events) {
                Ok(made) => break Some(made),
                Err(_) if inner.stopping() => break None,
                Err(error) => {
                    tracing::warn!(%error, "the notification runner cannot read an order; retrying");
                    tokio::time::sleep(LOOP_RETRY_INTERVAL).await;
                }
            }
        };
        let Some(made) = made else { break };
        // Batches that make nothing save the position at most once a
        // second: a write per batch would add a command to every batch of
        // every other workload.
        if made.is_empty() && last_save.elapsed() < POSITION_SAVE_INTERVAL {
            unsaved = Some(last);
            continue;
        }
        let pending = made
            .iter()
            .any(|new| new.channel != NotificationChannel::Store);
        match write_created(&inner, &consumer, last, made).await {
            Ok(()) => {}
            Err(_) => return,
        }
        unsaved = None;
        last_save = Instant::now();
        if pending {
            inner.wake.notify_one();
        }
    }
    if let Some(seq) = unsaved {
        let _ = write_created(&inner, &consumer, seq, Vec::new()).await;
    }
    tracing::debug!("notification creation stopped");
}

/// Writes `made` and the position `seq`; `Err` once the engine stops.
async fn write_created(
    inner: &Inner,
    consumer: &str,
    seq: u64,
    made: Vec<NewNotification>,
) -> Result<(), Error> {
    let created = write_until_done(inner, "notifications not made yet", |reply| {
        Command::Notifications(NotificationCommand::Create {
            consumer: consumer.to_owned(),
            position: seq,
            notifications: made.clone(),
            reply,
        })
    })
    .await?;
    for notification in &created {
        observe(inner, notification, true);
    }
    Ok(())
}

/// Sends the command `make` builds until the writer takes it, pausing
/// while it is overloaded or the store unavailable (a moment) or after
/// another failure (a second); `Err` once the engine or the runner stops.
async fn write_until_done<T: Send + 'static>(
    inner: &Inner,
    what: &str,
    make: impl Fn(crate::writer::Reply<T>) -> Command,
) -> Result<T, Error> {
    loop {
        match inner.engine.submit(&make).await {
            Ok(value) => return Ok(value),
            Err(Error::ShuttingDown) => return Err(Error::ShuttingDown),
            Err(_) if inner.stopping() => return Err(Error::ShuttingDown),
            Err(error) => {
                tracing::warn!(%error, "{what}; retrying");
                let pause = if matches!(error, Error::Overloaded | Error::StorageUnavailable(_)) {
                    WRITE_RETRY_INTERVAL
                } else {
                    LOOP_RETRY_INTERVAL
                };
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// Tells the observer about a notification just made or just attempted.
fn observe(inner: &Inner, notification: &Notification, created: bool) {
    let Some(observer) = &inner.config.observer else {
        return;
    };
    if created {
        observer.created(notification);
    }
    match notification.status {
        NotificationStatus::Sent => observer.sent(notification),
        NotificationStatus::Failed => observer.failed(notification),
        NotificationStatus::Pending => {}
    }
}

/// Renders the notifications a batch of events makes.
fn render_batch(inner: &Inner, events: &[EventEnvelope]) -> Result<Vec<NewNotification>, Error> {
    let config = &inner.config;
    let channels = channels(config);
    let mut made = Vec::new();
    if channels.is_empty() {
        return Ok(made);
    }
    let mut orders: BTreeMap<OrderId, Option<Order>> = BTreeMap::new();
    for envelope in events {
        let Some((kind, order_id, reason)) = kind_of(&envelope.event) else {
            continue;
        };
        let order = match orders.get(&order_id) {
            Some(order) => order.clone(),
            None => {
                let order = inner.engine.order(order_id)?;
                orders.insert(order_id, order.clone());
                order
            }
        };
        let Some(order) = order else {
            tracing::warn!(%order_id, seq = envelope.seq, "no order for a notification's event");
            continue;
        };
        let context = context(inner, kind, &order, reason)?;
        let html = channels.contains(&NotificationChannel::Email);
        let (rendered, render_error) = match config.templates.render_parts(kind, &context, html) {
            Ok(rendered) => (rendered, None),
            Err(error) => {
                tracing::error!(%error, kind = kind.as_str(), "a notification template failed");
                let fallback = crate::notifications::templates::Rendered {
                    subject: format!("{} {}", kind.as_str(), order.id),
                    body: format!("{} for order {}", kind.as_str(), order.id),
                    html_body: String::new(),
                };
                (fallback, Some(format!("the template failed: {error}")))
            }
        };
        for channel in &channels {
            let (recipient, undeliverable) = match channel {
                NotificationChannel::Store => (Some(order.user_id.clone()), None),
                channel => {
                    let notifier = config
                        .notifiers
                        .iter()
                        .find(|notifier| notifier.channel() == *channel)
                        .expect("every channel but store has a notifier");
                    match notifier.recipient(&order) {
                        Some(recipient) => (Some(recipient), render_error.clone()),
                        None => (
                            None,
                            Some(format!(
                                "no recipient: the order has no {} address",
                                channel.as_str()
                            )),
                        ),
                    }
                }
            };
            made.push(NewNotification {
                event_seq: envelope.seq,
                kind,
                order_id,
                user_id: order.user_id.clone(),
                channel: *channel,
                recipient,
                subject: rendered.subject.clone(),
                body: rendered.body.clone(),
                html_body: (*channel == NotificationChannel::Email
                    && !rendered.html_body.is_empty())
                .then(|| rendered.html_body.clone()),
                undeliverable,
            });
        }
    }
    Ok(made)
}

/// What the templates see for `order`.
fn context(
    inner: &Inner,
    kind: NotificationKind,
    order: &Order,
    reason: Option<String>,
) -> Result<TemplateContext, Error> {
    let engine = &inner.engine;
    let mut items = Vec::with_capacity(order.items.len());
    for line in &order.items {
        let name = engine.product(line.product_id)?.map_or_else(
            || format!("product {}", line.product_id.0),
            |product| product.name,
        );
        items.push(LineContext {
            product_id: line.product_id.0,
            name,
            quantity: line.quantity,
            unit_price: line.unit_price.to_string(),
            line_total: (line.unit_price * rust_decimal::Decimal::from(line.quantity)).to_string(),
        });
    }
    let payment = engine
        .payment_of_order(order.id)?
        .map(|payment| PaymentContext {
            id: payment.id.to_string(),
            amount: payment.amount.to_string(),
            status: payment.status.as_str(),
        });
    let status = match kind {
        NotificationKind::OrderConfirmation | NotificationKind::PaymentReceipt => "CONFIRMED",
        NotificationKind::PaymentFailed => "PAYMENT_FAILED",
        NotificationKind::ShippingUpdate => "SHIPPED",
        NotificationKind::OrderCancelled => "CANCELLED",
    };
    Ok(TemplateContext {
        store_name: inner.config.store_name.clone(),
        kind: kind.as_str(),
        reason,
        order: OrderContext {
            id: order.id.to_string(),
            user_id: order.user_id.clone(),
            status,
            items,
            total_amount: order.total_amount.to_string(),
            currency: order.currency.clone(),
            email: order.email.clone(),
            shipping_address: order.shipping_address.clone(),
            carrier: order.carrier.clone(),
            tracking_number: order.tracking_number.clone(),
            failure_reason: order.failure_reason.clone(),
            created_at: order.created_at.to_rfc3339(),
        },
        payment,
    })
}

async fn deliver_loop(inner: Arc<Inner>) {
    if inner.config.notifiers.is_empty() {
        return;
    }
    loop {
        if inner.stopping() {
            break;
        }
        let now = inner.engine.now();
        let due = match inner
            .engine
            .notifications_due(now, inner.config.sends_at_once_max)
        {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "the notification runner cannot read what is due; retrying");
                tokio::time::sleep(LOOP_RETRY_INTERVAL).await;
                continue;
            }
        };
        if due.is_empty() {
            let wait = match inner.engine.next_notification_due() {
                Ok(Some(at)) => Duration::from_millis(at.0.saturating_sub(now.0)),
                _ => DELIVERY_POLL_INTERVAL,
            }
            .clamp(Duration::from_millis(1), DELIVERY_POLL_INTERVAL);
            tokio::select! {
                () = inner.wake.notified() => {}
                () = inner.stopped() => break,
                () = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        let sends: Vec<_> = due
            .into_iter()
            .map(|notification| tokio::spawn(send(inner.clone(), notification)))
            .collect();
        let mut outcomes = Vec::with_capacity(sends.len());
        for send in sends {
            match send.await {
                Ok(outcome) => outcomes.push(outcome),
                Err(error) => tracing::error!(%error, "a notification send panicked"),
            }
        }
        if record(&inner, outcomes).await.is_err() {
            break;
        }
    }
    tracing::debug!("notification delivery stopped");
}

/// Sends one notification and says how it went.
async fn send(inner: Arc<Inner>, notification: Notification) -> AttemptOutcome {
    let config = &inner.config;
    let started = Instant::now();
    let result = match config
        .notifiers
        .iter()
        .find(|notifier| notifier.channel() == notification.channel)
    {
        None => Err(NotifyError::transient(format!(
            "no {} notifier is configured",
            notification.channel.as_str()
        ))),
        Some(_) if notification.recipient.is_none() => Err(NotifyError::permanent("no recipient")),
        Some(notifier) => {
            match tokio::time::timeout(config.send_timeout, notifier.send(&notification)).await {
                Ok(result) => result,
                Err(_) => Err(NotifyError::transient(format!(
                    "no answer within {} ms",
                    config.send_timeout.as_millis()
                ))),
            }
        }
    };
    if let Some(observer) = &config.observer {
        observer.attempted(notification.channel, started.elapsed(), result.is_ok());
    }
    let used = notification.attempts - notification.attempts_base;
    let now = inner.engine.now();
    let (error, permanent) = match result {
        Ok(()) => (None, false),
        Err(error) => {
            tracing::warn!(
                id = %notification.id,
                channel = notification.channel.as_str(),
                attempt = used + 1,
                error = %error.message,
                "a notification was not delivered"
            );
            (Some(error.message), error.permanent)
        }
    };
    AttemptOutcome {
        id: notification.id,
        at: now,
        error,
        permanent,
        retry_at: now.plus(backoff(config, used)),
        attempts_max: config.attempts_max,
    }
}

/// The wait after the `attempt`-th failure (0-based): exponential, capped,
/// with "equal jitter" (half fixed, half random) so retries spread out.
fn backoff(config: &NotificationsConfig, attempt: u32) -> Duration {
    let exponential = config
        .backoff_initial
        .saturating_mul(2_u32.saturating_pow(attempt.min(30)))
        .min(config.backoff_max);
    let half = exponential / 2;
    let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    let jitter = Duration::from_millis(rand::rng().random_range(0..=jitter_ms));
    half + jitter
}

/// Records attempts; `Err` once the engine stops (the attempts are then
/// repeated after a restart).
async fn record(inner: &Inner, outcomes: Vec<AttemptOutcome>) -> Result<(), Error> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let recorded = write_until_done(inner, "notification attempts not recorded yet", |reply| {
        Command::Notifications(NotificationCommand::Record {
            outcomes: outcomes.clone(),
            reply,
        })
    })
    .await?;
    for notification in &recorded {
        observe(inner, notification, false);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped_with_jitter() {
        let config = NotificationsConfig {
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1_000),
            ..NotificationsConfig::default()
        };
        for _ in 0..100 {
            let first = backoff(&config, 0);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = backoff(&config, 2);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let late = backoff(&config, 40);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_millis(1_000));
        }
    }
}
