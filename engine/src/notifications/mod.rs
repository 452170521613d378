//! Notifications: what a customer is told, made once from the event log and
//! delivered through channels with retries.
//!
//! The [`Notifications`] runner follows the log as the consumer
//! `notifications`. For each event of the five kinds it renders the kind's
//! templates ([`Templates`]) from the order, and writes one notification
//! per configured channel **in the same transaction as its own position**,
//! keyed by (event seq, channel) in `notification_sources`: a repeated
//! event or a crash between creating and saving the position never makes
//! a second one.
//!
//! Delivery is separate from creation. The `store` channel is delivered by
//! being stored (`sent` at once). Every other channel has a [`Notifier`];
//! a `pending` notification sits in `notification_due` until its next
//! attempt, the runner sends it outside the writer, and records the attempt
//! (time, outcome, error) as a writer command: `sent`, or due again after
//! an exponential backoff with jitter, or `failed` after the configured
//! number of attempts. A crash between a send and its record sends it once
//! more after the restart (at-least-once for external channels); a `sent`
//! notification is never sent again.

pub(crate) mod runner;
pub(crate) mod templates;
pub(crate) mod writes;

use redb::ReadableTable as _;
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::engine::{Engine, PAGE_LIMIT_MAX};
use crate::error::Error;
use crate::ids::{NotificationId, OrderId, Timestamp};
use crate::storage;

pub use runner::{
    NotificationObserver, Notifications, NotificationsConfig, Notifier, NotifyError, NotifyFuture,
};
pub use templates::{TemplateError, Templates};

/// The longest rendered subject, in bytes; longer ones are cut.
pub const NOTIFICATION_SUBJECT_LENGTH_MAX: usize = 1_024;
/// The longest rendered body (text or HTML), in bytes; longer ones are cut.
pub const NOTIFICATION_BODY_LENGTH_MAX: usize = 256 * 1_024;
/// The longest error kept for an attempt, in bytes; longer ones are cut.
pub const NOTIFICATION_ERROR_LENGTH_MAX: usize = 1_024;
/// The most recent attempts kept on a notification (the count is kept
/// whole; older attempts' details are dropped).
pub const NOTIFICATION_ATTEMPTS_KEPT_MAX: usize = 16;
/// The most delivery attempts a configuration may allow.
pub const NOTIFICATION_ATTEMPTS_MAX: u32 = 100;

const NOTIFICATION_VERSION: u8 = 1;

/// What a notification tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum NotificationKind {
    /// From `order.confirmed`.
    OrderConfirmation,
    /// From `payment.successful`.
    PaymentReceipt,
    /// From `payment.failed`.
    PaymentFailed,
    /// From `order.shipped`.
    ShippingUpdate,
    /// From `order.cancelled`.
    OrderCancelled,
}

impl NotificationKind {
    /// Every kind.
    pub const ALL: [NotificationKind; 5] = [
        NotificationKind::OrderConfirmation,
        NotificationKind::PaymentReceipt,
        NotificationKind::PaymentFailed,
        NotificationKind::ShippingUpdate,
        NotificationKind::OrderCancelled,
    ];

    /// The contract's name, e.g. `order_confirmation`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::OrderConfirmation => "order_confirmation",
            NotificationKind::PaymentReceipt => "payment_receipt",
            NotificationKind::PaymentFailed => "payment_failed",
            NotificationKind::ShippingUpdate => "shipping_update",
            NotificationKind::OrderCancelled => "order_cancelled",
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            NotificationKind::OrderConfirmation => 0,
            NotificationKind::PaymentReceipt => 1,
            NotificationKind::PaymentFailed => 2,
            NotificationKind::ShippingUpdate => 3,
            NotificationKind::OrderCancelled => 4,
        }
    }

    fn from_u8(byte: u8) -> Option<NotificationKind> {
        NotificationKind::ALL.get(usize::from(byte)).copied()
    }
}

/// How a notification reaches its recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum NotificationChannel {
    /// Kept in the database, readable over the API; delivered by being stored.
    Store,
    /// A signed HTTP POST to a configured URL.
    Webhook,
    /// An email to the order's address, through SMTP.
    Email,
}

impl NotificationChannel {
    /// The contract's name, e.g. `webhook`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationChannel::Store => "store",
            NotificationChannel::Webhook => "webhook",
            NotificationChannel::Email => "email",
        }
    }

    pub(crate) fn to_u8(self) -> u8 {
        match self {
            NotificationChannel::Store => 0,
            NotificationChannel::Webhook => 1,
            NotificationChannel::Email => 2,
        }
    }

    fn from_u8(byte: u8) -> Option<NotificationChannel> {
        Some(match byte {
            0 => NotificationChannel::Store,
            1 => NotificationChannel::Webhook,
            2 => NotificationChannel::Email,
            _ => return None,
        })
    }
}

impl std::str::FromStr for NotificationChannel {
    type Err = Error;

    fn from_str(text: &str) -> Result<NotificationChannel, Error> {
        match text {
            "store" => Ok(NotificationChannel::Store),
            "webhook" => Ok(NotificationChannel::Webhook),
            "email" => Ok(NotificationChannel::Email),
            _ => Err(Error::invalid(
                "channel",
                format!("{text:?} is not one of store, webhook, email"),
            )),
        }
    }
}

/// Where a notification's delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotificationStatus {
    /// Not delivered yet; another attempt is due.
    Pending,
    /// Delivered.
    Sent,
    /// Given up on after its attempts (an admin may retry it).
    Failed,
}

impl NotificationStatus {
    /// The contract's name, e.g. `pending`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Pending => "pending",
            NotificationStatus::Sent => "sent",
            NotificationStatus::Failed => "failed",
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            NotificationStatus::Pending => 0,
            NotificationStatus::Sent => 1,
            NotificationStatus::Failed => 2,
        }
    }

    fn from_u8(byte: u8) -> Option<NotificationStatus> {
        Some(match byte {
            0 => NotificationStatus::Pending,
            1 => NotificationStatus::Sent,
            2 => NotificationStatus::Failed,
            _ => return None,
        })
    }
}

/// One delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// When it ended.
    pub at: Timestamp,
    /// Why it failed; `None` when it succeeded.
    pub error: Option<String>,
}

/// A notification.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Notification {
    /// Its id.
    pub id: NotificationId,
    /// What it tells.
    pub kind: NotificationKind,
    /// The order it is about.
    pub order_id: OrderId,
    /// The order's user.
    pub user_id: String,
    /// How it is delivered.
    pub channel: NotificationChannel,
    /// Who gets it: the user id (store), the URL (webhook), the address
    /// (email); `None` when the order gave none (an email to nobody).
    pub recipient: Option<String>,
    /// The rendered subject.
    pub subject: String,
    /// The rendered body, plain text.
    pub body: String,
    /// The rendered HTML body (the email channel), if any.
    pub html_body: Option<String>,
    /// Where its delivery stands.
    pub status: NotificationStatus,
    /// Delivery attempts made, in all.
    pub attempts: u32,
    /// `attempts` when its delivery (re)started: the attempts allowed
    /// count from here.
    pub attempts_base: u32,
    /// The most recent attempts (at most [`NOTIFICATION_ATTEMPTS_KEPT_MAX`]).
    pub attempt_log: Vec<DeliveryAttempt>,
    /// Why it failed, when it did (the last attempt's error, or why it
    /// could not be sent at all).
    pub last_error: Option<String>,
    /// The event it was made from.
    pub event_seq: u64,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it was delivered.
    pub sent_at: Option<Timestamp>,
    /// When the next attempt is due (`pending` only).
    pub next_attempt_at: Option<Timestamp>,
}

/// Which notifications a listing shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotificationFilter {
    /// Only this user's.
    pub user_id: Option<String>,
    /// Only about this order.
    pub order_id: Option<OrderId>,
}

impl NotificationFilter {
    /// Every notification.
    pub fn all() -> NotificationFilter {
        NotificationFilter::default()
    }

    /// One user's notifications.
    pub fn user(user_id: impl Into<String>) -> NotificationFilter {
        NotificationFilter {
            user_id: Some(user_id.into()),
            order_id: None,
        }
    }

    /// Only those about `order_id` too.
    pub fn order(mut self, order_id: OrderId) -> NotificationFilter {
        self.order_id = Some(order_id);
        self
    }
}

/// A page of notifications, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotificationPage {
    /// The notifications of this page.
    pub items: Vec<Notification>,
    /// Pass as `before` for the next (older) page; `None` on the last.
    pub next_before: Option<NotificationId>,
}

#[derive(Serialize, Deserialize)]
struct NotificationRecordV1 {
    kind: u8,
    order_id: u128,
    user_id: String,
    channel: u8,
    recipient: Option<String>,
    subject: String,
    body: String,
    html_body: Option<String>,
    status: u8,
    attempts: u32,
    attempts_base: u32,
    attempt_log: Vec<(u64, Option<String>)>,
    last_error: Option<String>,
    event_seq: u64,
    created_at_ms: u64,
    sent_at_ms: Option<u64>,
    next_attempt_at_ms: Option<u64>,
}

pub(crate) fn encode(notification: &Notification) -> Vec<u8> {
    assert!(consistent(notification), "{notification:?}");
    codec::encode(
        NOTIFICATION_VERSION,
        &NotificationRecordV1 {
            kind: notification.kind.to_u8(),
            order_id: notification.order_id.as_u128(),
            user_id: notification.user_id.clone(),
            channel: notification.channel.to_u8(),
            recipient: notification.recipient.clone(),
            subject: notification.subject.clone(),
            body: notification.body.clone(),
            html_body: notification.html_body.clone(),
            status: notification.status.to_u8(),
            attempts: notification.attempts,
            attempts_base: notification.attempts_base,
            attempt_log: notification
                .attempt_log
                .iter()
                .map(|attempt| (attempt.at.0, attempt.error.clone()))
                .collect(),
            last_error: notification.last_error.clone(),
            event_seq: notification.event_seq,
            created_at_ms: notification.created_at.0,
            sent_at_ms: notification.sent_at.map(|time| time.0),
            next_attempt_at_ms: notification.next_attempt_at.map(|time| time.0),
        },
    )
}

/// The invariants of a stored notification: checked before every write
/// and after every read.
fn consistent(notification: &Notification) -> bool {
    notification.attempts_base <= notification.attempts
        && notification.attempt_log.len() <= NOTIFICATION_ATTEMPTS_KEPT_MAX
        && notification.attempt_log.len() <= notification.attempts as usize
        && (notification.status == NotificationStatus::Pending)
            == notification.next_attempt_at.is_some()
        && (notification.status == NotificationStatus::Sent) == notification.sent_at.is_some()
}

pub(crate) fn decode(id: u128, bytes: &[u8]) -> Result<Notification, Error> {
    let record: NotificationRecordV1 = codec::decode("notification", NOTIFICATION_VERSION, bytes)?;
    let corrupt = |what: &str| Error::corrupt("notification", format!("{id:x}: {what}"));
    let notification = Notification {
        id: NotificationId::from_u128(id),
        kind: NotificationKind::from_u8(record.kind).ok_or_else(|| corrupt("kind"))?,
        order_id: OrderId::from_u128(record.order_id),
        user_id: record.user_id,
        channel: NotificationChannel::from_u8(record.channel).ok_or_else(|| corrupt("channel"))?,
        recipient: record.recipient,
        subject: record.subject,
        body: record.body,
        html_body: record.html_body,
        status: NotificationStatus::from_u8(record.status).ok_or_else(|| corrupt("status"))?,
        attempts: record.attempts,
        attempts_base: record.attempts_base,
        attempt_log: record
            .attempt_log
            .into_iter()
            .map(|(at, error)| DeliveryAttempt {
                at: Timestamp(at),
                error,
            })
            .collect(),
        last_error: record.last_error,
        event_seq: record.event_seq,
        created_at: Timestamp(record.created_at_ms),
        sent_at: record.sent_at_ms.map(Timestamp),
        next_attempt_at: record.next_attempt_at_ms.map(Timestamp),
    };
    if !consistent(&notification) {
        return Err(corrupt("fails its checks"));
    }
    Ok(notification)
}

fn read(
    table: &impl redb::ReadableTable<u128, &'static [u8]>,
    id: u128,
) -> Result<Option<Notification>, Error> {
    match table.get(id)? {
        Some(bytes) => Ok(Some(decode(id, bytes.value())?)),
        None => Ok(None),
    }
}

/// Cuts `text` to at most `max` bytes, at a character boundary.
pub(crate) fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Notifications: reads. They are made by the [`Notifications`] runner;
/// a failed one is retried with [`Engine::retry_notification`].
impl Engine {
    /// A notification by id.
    pub fn notification(&self, id: NotificationId) -> Result<Option<Notification>, Error> {
        let txn = self.snapshot();
        let table = txn.open_table(storage::NOTIFICATIONS)?;
        read(&table, id.as_u128())
    }

    /// Notifications matching `filter`, newest first, older than `before`.
    /// `limit` is clamped to 1..=[`PAGE_LIMIT_MAX`].
    pub fn notifications(
        &self,
        filter: &NotificationFilter,
        before: Option<NotificationId>,
        limit: usize,
    ) -> Result<NotificationPage, Error> {
        if let Some(user_id) = &filter.user_id {
            crate::orders::validate_user_id(user_id)?;
        }
        let limit = limit.clamp(1, PAGE_LIMIT_MAX);
        let end = match before {
            Some(id) if id.as_u128() == 0 => {
                return Ok(NotificationPage {
                    items: Vec::new(),
                    next_before: None,
                });
            }
            Some(id) => id.as_u128() - 1,
            None => u128::MAX,
        };
        let txn = self.snapshot();
        let table = txn.open_table(storage::NOTIFICATIONS)?;
        let mut items = Vec::with_capacity(limit);
        let mut more = false;
        let mut take = |id: u128| -> Result<bool, Error> {
            let notification = read(&table, id)?.ok_or_else(|| {
                Error::corrupt("notification index", format!("{id:x} is missing"))
            })?;
            if filter
                .user_id
                .as_ref()
                .is_some_and(|user| *user != notification.user_id)
            {
                return Ok(true);
            }
            if items.len() == limit {
                more = true;
                return Ok(false);
            }
            items.push(notification);
            Ok(true)
        };
        match (&filter.order_id, &filter.user_id) {
            (Some(order_id), _) => {
                let index = txn.open_table(storage::NOTIFICATIONS_BY_ORDER)?;
                let order = order_id.as_u128();
                for entry in index.range((order, 0)..=(order, end))?.rev() {
                    if !take(entry?.0.value().1)? {
                        break;
                    }
                }
            }
            (None, Some(user_id)) => {
                let index = txn.open_table(storage::NOTIFICATIONS_BY_USER)?;
                let user = user_id.as_str();
                for entry in index.range((user, 0)..=(user, end))?.rev() {
                    if !take(entry?.0.value().1)? {
                        break;
                    }
                }
            }
            (None, None) => {
                let all = txn.open_table(storage::NOTIFICATIONS)?;
                for entry in all.range(0..=end)?.rev() {
                    if !take(entry?.0.value())? {
                        break;
                    }
                }
            }
        }
        let next_before = if more {
            items.last().map(|notification| notification.id)
        } else {
            None
        };
        Ok(NotificationPage { items, next_before })
    }

    /// Up to `limit` `pending` notifications whose next attempt is due at
    /// `now`, the longest due first.
    pub(crate) fn notifications_due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Notification>, Error> {
        let txn = self.snapshot();
        let due = txn.open_table(storage::NOTIFICATION_DUE)?;
        let table = txn.open_table(storage::NOTIFICATIONS)?;
        let mut items = Vec::new();
        for entry in due.range((0, 0)..=(now.0, u128::MAX))?.take(limit) {
            let id = entry?.0.value().1;
            let notification = read(&table, id)?
                .ok_or_else(|| Error::corrupt("notification_due", format!("{id:x} is missing")))?;
            items.push(notification);
        }
        Ok(items)
    }

    /// When the next `pending` notification is due, if any is.
    pub(crate) fn next_notification_due(&self) -> Result<Option<Timestamp>, Error> {
        let txn = self.snapshot();
        let due = txn.open_table(storage::NOTIFICATION_DUE)?;
        Ok(due.first()?.map(|(key, _)| Timestamp(key.value().0)))
    }

    /// Moves a `failed` notification back to `pending`, due now, with a
    /// fresh allowance of attempts. Anything else is
    /// [`Error::InvalidNotificationState`].
    pub fn retry_notification(&self, id: NotificationId) -> crate::engine::Pending<Notification> {
        self.write(crate::engine::Write::retry_notification(id))
    }
}
